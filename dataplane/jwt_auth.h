/*
 * jwt_auth.h - the JWT auth policy of a route: a compiled auth policy (its keys turned into verifiable
 * keys once per snapshot) and one call on the request path that answers "continue" or "respond 401".
 *
 * Hardening (see docs/security.md): the token's `alg` must be one of the policy's algorithms and match
 * the type of the key it is checked with (RSA for RS and PS, EC on the right curve for ES, oct for HS)
 * before any signature is checked; `none` always fails; `kid` only selects among the policy's own keys;
 * `jku`, `x5u`, `x5c` and `jwk` headers are ignored; tokens over BGW_JWT_MAX_TOKEN bytes are refused
 * before they are parsed. Signatures: libjwt for RS and ES, OpenSSL for PS (libjwt 1.10 has none) and HS
 * (constant-time compare).
 *
 * Time is passed in (`now`, Unix seconds), so expiry is tested with any clock.
 */
#ifndef BGW_JWT_AUTH_H
#define BGW_JWT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "http1.h"

#define BGW_JWT_MAX_TOKEN 8192          /* bytes; longer tokens are refused unparsed */
#define BGW_JWT_CACHE_ENTRIES 1024      /* verified tokens remembered per worker */

/* Why a request was refused: the `reason` label of bgw_auth_rejected_total. */
enum bgw_jwt_result {
    BGW_JWT_OK = 0,
    BGW_JWT_MISSING,           /* no Authorization: Bearer token */
    BGW_JWT_TOO_LARGE,         /* token over BGW_JWT_MAX_TOKEN */
    BGW_JWT_MALFORMED,         /* not three base64url segments of JSON, bad claim types, crit header */
    BGW_JWT_BAD_ALG,           /* alg none, not in the policy, or no key of its type */
    BGW_JWT_UNKNOWN_KID,       /* kid matches none of the policy's keys */
    BGW_JWT_BAD_SIGNATURE,
    BGW_JWT_EXPIRED,           /* exp + clock_skew_s is past */
    BGW_JWT_NOT_YET_VALID,     /* nbf - clock_skew_s is ahead */
    BGW_JWT_BAD_ISSUER,
    BGW_JWT_BAD_AUDIENCE,
};

struct bgw_jwt_policy;
struct bgw_jwt_cache;

/* What the request path needs after a check. */
struct bgw_jwt_verdict {
    enum bgw_jwt_result result;
    const char *add_headers;   /* OK: "name: value\r\n"... for the forwarded claims (may be empty); valid
                                * until the next bgw_jwt_check() with the same cache */
    size_t add_headers_len;
    const char *claims;        /* OK: the kept claims (bgw_jwt_policy_keep_claim) as "name\0value\0"...;
                                * same lifetime as add_headers */
    size_t claims_len;
};

/*
 * Compile an auth policy: every usable key of its `jwks` (RSA n/e, EC crv/x/y, oct k) is converted once.
 * Keys that cannot be used (unknown kty, bad encoding, "use" other than "sig") are skipped and counted in
 * *skipped (may be NULL). Returns the policy or NULL with err filled (only out of memory or a jwks that is
 * not a JWK Set). The policy keeps pointers into cfg, which must outlive it.
 */
struct bgw_jwt_policy *bgw_jwt_policy_compile(const struct bgw_auth_policy *cfg, size_t *skipped, char *err,
                                              size_t errlen);
void bgw_jwt_policy_free(struct bgw_jwt_policy *p);
/* Keep claim `name` (borrowed; must outlive p) of accepted tokens, for bgw_jwt_claim_find() (a rate limit
 * keyed by a claim). Call after compiling, before the policy is used. Returns 0, or -1 when more than
 * BGW_JWT_MAX_KEPT_CLAIMS are asked for (the claim is then not kept). */
#define BGW_JWT_MAX_KEPT_CLAIMS 8
int bgw_jwt_policy_keep_claim(struct bgw_jwt_policy *p, const char *name);

/* The value of claim name in a verdict's kept claims (v->claims, v->claims_len), as its header text
 * (strings as they are, numbers as JSON text). NULL when the claim was absent or not kept. */
const char *bgw_jwt_claim_find(const char *claims, size_t claims_len, const char *name, size_t name_len,
                               size_t *value_len);

/* How many keys the policy can check signatures with. */
size_t bgw_jwt_policy_keys(const struct bgw_jwt_policy *p);

/* A cache of verified tokens (entries slots, 0: BGW_JWT_CACHE_ENTRIES), keyed by a hash of the policy and
 * the whole token, compared in full; an entry lives until the token's exp (+ skew). NULL when out of memory. */
struct bgw_jwt_cache *bgw_jwt_cache_new(size_t entries);
void bgw_jwt_cache_free(struct bgw_jwt_cache *cache);
/* Hits and misses so far (for tests and benchmarks). */
void bgw_jwt_cache_stats(const struct bgw_jwt_cache *cache, uint64_t *hits, uint64_t *misses);

/*
 * Check a token against p at time now (Unix seconds). token is the bearer token itself (not the header),
 * NULL or empty when missing. cache may be NULL (no caching). Returns v->result; on BGW_JWT_OK
 * v->add_headers holds the claim headers to send upstream.
 */
enum bgw_jwt_result bgw_jwt_check(const struct bgw_jwt_policy *p, struct bgw_jwt_cache *cache, const char *token,
                                  size_t token_len, int64_t now, struct bgw_jwt_verdict *v);

/*
 * The request path's one call: remove every client-sent header that p fills from claims (marked as not
 * forwarded in h, whatever the outcome), take the bearer token from the Authorization header and check it.
 * *cache is created on first use (per worker). Returns v->result.
 */
enum bgw_jwt_result bgw_jwt_auth_request(const struct bgw_jwt_policy *p, struct bgw_jwt_cache **cache,
                                         struct bgw_http_head *h, int64_t now, struct bgw_jwt_verdict *v);

/* The reason label of a result ("missing", "expired", ...): a fixed, small set. */
const char *bgw_jwt_reason(enum bgw_jwt_result r);
/* A short sentence for the response body and the WWW-Authenticate error_description. */
const char *bgw_jwt_message(enum bgw_jwt_result r);

/* The WWW-Authenticate header line ("WWW-Authenticate: Bearer ...\r\n") for a refusal. */
const char *bgw_jwt_www_authenticate(enum bgw_jwt_result r);

#endif
