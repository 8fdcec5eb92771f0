/*
 * config_policy.c - the named policies routes refer to: rate_limits[] (token buckets and what they are
 * keyed by) and auth_policies[] (JWT validation: issuer, audiences, algorithms, keys, forwarded claims).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"

static const char *const rate_limit_fields[] = {"name", "requests", "per", "burst", "key", "scope", NULL};
static const char *const auth_fields[] = {
    "name", "issuer", "audiences", "algorithms", "jwks", "jwks_uri", "forward_claims", "clock_skew_s", NULL,
};

/* Headers a claim may not be copied into: they frame the message or belong to the connection. */
static const char *const reserved_headers[] = {
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te",
    "trailer", "upgrade",
};

/* ---- rate_limits[] ---- */

#define KEY_SYNTAX "must be client_ip, route, header:NAME or claim:NAME"

/* rl->key as written into key_kind / key_name, at the path of "key". */
static int split_key(struct bgw__cfg_ctx *c, struct bgw_rate_limit *rl)
{
    const char *k = rl->key, *why;

    if (strcmp(k, "client_ip") == 0) {
        rl->key_kind = BGW_RL_KEY_CLIENT_IP;
        return 0;
    }
    if (strcmp(k, "route") == 0) {
        rl->key_kind = BGW_RL_KEY_ROUTE;
        return 0;
    }
    if (strncmp(k, "header:", 7) == 0) {
        rl->key_kind = BGW_RL_KEY_HEADER;
        if ((why = bgw__check_header_name(k + 7)) != NULL)
            return bgw__fail(c, "header:NAME: NAME %s", why);
        if (bgw__strdup(c, k + 7, &rl->key_name) < 0)
            return -1;
        for (char *p = rl->key_name; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        return 0;
    }
    if (strncmp(k, "claim:", 6) == 0) {
        rl->key_kind = BGW_RL_KEY_CLAIM;
        if ((why = bgw__check_nonempty_printable(k + 6)) != NULL)
            return bgw__fail(c, "claim:NAME: NAME %s", why);
        return bgw__strdup(c, k + 6, &rl->key_name);
    }
    return bgw__fail(c, KEY_SYNTAX);
}

static int parse_key(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_rate_limit *rl)
{
    size_t mark;
    int rc;

    if (bgw__read_string(c, v, "key", 0, NULL, &rl->key) < 0)
        return -1;
    if (!rl->key)
        return bgw__strdup(c, "client_ip", &rl->key);
    mark = bgw__path_field(c, "key");
    rc = split_key(c, rl);
    bgw__path_restore(c, mark);
    return rc;
}

int bgw__parse_rate_limit(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_rate_limit *rl)
{
    int per, scope;

    if (bgw__check_fields(c, v, rate_limit_fields) < 0 || bgw__read_name(c, v, &rl->name) < 0 ||
        bgw__read_u64(c, v, "requests", BGW__REQUIRED, 0, 1, UINT64_MAX, &rl->requests, NULL) < 0 ||
        bgw__read_enum(c, v, "per", bgw__rl_per_names, BGW__COUNT(bgw__rl_per_names), BGW_RL_SECOND, &per) < 0 ||
        bgw__read_u64(c, v, "burst", 0, rl->requests, 0, UINT64_MAX, &rl->burst, NULL) < 0 ||
        parse_key(c, v, rl) < 0 ||
        bgw__read_enum(c, v, "scope", bgw__rl_scope_names, BGW__COUNT(bgw__rl_scope_names), BGW_RL_LOCAL,
                       &scope) < 0)
        return -1;
    rl->per = (enum bgw_rl_per)per;
    rl->scope = (enum bgw_rl_scope)scope;
    return 0;
}

void bgw__rate_limit_free(struct bgw_rate_limit *rl)
{
    free(rl->name);
    free(rl->key_name);
    free(rl->key);
}

/* ---- auth_policies[] ---- */

static const char *check_algorithm(const char *s)
{
    if (strcasecmp(s, "none") == 0)
        return "\"none\" is not allowed: unsigned tokens are always refused";
    for (size_t i = 0; i < BGW__COUNT(bgw__jwt_algorithms); i++)
        if (strcmp(s, bgw__jwt_algorithms[i]) == 0)
            return NULL;
    return "must be one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, HS256, HS384, HS512";
}

static const char *check_claim_header(const char *s)
{
    const char *why = bgw__check_header_name(s);

    if (why)
        return why;
    for (size_t i = 0; i < BGW__COUNT(reserved_headers); i++)
        if (strcmp(s, reserved_headers[i]) == 0)
            return "must not be a hop-by-hop or message framing header";
    return NULL;
}

/* "jwks": a JWK Set, {"keys": [ {...}, ... ]}, kept as compact JSON text. */
static int read_jwks(struct bgw__cfg_ctx *c, const json_t *jwks, char **out)
{
    const json_t *keys = json_object_get(jwks, "keys");
    size_t i;
    json_t *k;

    if (!json_is_object(jwks))
        return bgw__fail(c, "must be an object");
    if (!keys)
        return bgw__fail_at(c, "keys", "is required");
    if (!json_is_array(keys))
        return bgw__fail_at(c, "keys", "must be an array");
    json_array_foreach((json_t *)keys, i, k) {
        if (!json_is_object(k)) {
            size_t mark = bgw__path_field(c, "keys");

            bgw__path_index(c, i);
            bgw__fail(c, "must be an object");
            bgw__path_restore(c, mark);
            return -1;
        }
    }
    *out = json_dumps(jwks, JSON_COMPACT);
    return *out ? 0 : bgw__fail(c, "out of memory");
}

static int parse_keys(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_auth_policy *a)
{
    const json_t *jwks = json_object_get(v, "jwks");

    if (jwks) {
        size_t mark = bgw__path_field(c, "jwks");
        int rc = read_jwks(c, jwks, &a->jwks_json);

        bgw__path_restore(c, mark);
        if (rc < 0)
            return -1;
    }
    if (bgw__read_string(c, v, "jwks_uri", 0, bgw__check_http_url, &a->jwks_uri) < 0)
        return -1;
    if (!a->jwks_json && !a->jwks_uri)
        return bgw__fail(c, "one of jwks or jwks_uri is required");
    return 0;
}

/* The header named by claim i must not be named by an earlier claim. */
static int check_claim_unique(struct bgw__cfg_ctx *c, const struct bgw_auth_policy *a, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(a->forward_claim_headers[j], a->forward_claim_headers[i]) == 0)
            return bgw__fail(c, "header \"%s\" already receives claim \"%.128s\"", a->forward_claim_headers[i],
                             a->forward_claim_names[j]);
    return 0;
}

static int read_forward_claims(struct bgw__cfg_ctx *c, const json_t *o, struct bgw_auth_policy *a)
{
    size_t n = json_object_size(o), i = 0;
    const char *claim;
    json_t *hdr;

    if (!json_is_object(o))
        return bgw__fail(c, "must be an object (claim name -> header name)");
    if (bgw__calloc(c, n, sizeof(char *), (void **)&a->forward_claim_names) < 0 ||
        bgw__calloc(c, n, sizeof(char *), (void **)&a->forward_claim_headers) < 0)
        return -1;
    a->n_forward_claims = n;
    json_object_foreach((json_t *)o, claim, hdr) {
        size_t mark = bgw__path_field(c, claim);
        int rc = bgw__strdup(c, claim, &a->forward_claim_names[i]);

        if (rc == 0 && !*claim)
            rc = bgw__fail(c, "claim name must not be empty");
        if (rc == 0)
            rc = bgw__take_string(c, hdr, BGW__LOWER, check_claim_header, &a->forward_claim_headers[i]);
        if (rc == 0)
            rc = check_claim_unique(c, a, i);
        bgw__path_restore(c, mark);
        if (rc < 0)
            return -1;
        i++;
    }
    return 0;
}

static int parse_forward_claims(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_auth_policy *a)
{
    const json_t *o = json_object_get(v, "forward_claims");
    size_t mark;
    int rc;

    if (!o)
        return 0;
    mark = bgw__path_field(c, "forward_claims");
    rc = read_forward_claims(c, o, a);
    bgw__path_restore(c, mark);
    return rc;
}

int bgw__parse_auth_policy(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_auth_policy *a)
{
    if (bgw__check_fields(c, v, auth_fields) < 0 || bgw__read_name(c, v, &a->name) < 0 ||
        bgw__read_string(c, v, "issuer", BGW__REQUIRED, bgw__check_nonempty_printable, &a->issuer) < 0 ||
        bgw__read_strings(c, v, "audiences", 0, bgw__check_nonempty_printable, &a->audiences,
                          &a->n_audiences) < 0 ||
        bgw__read_strings(c, v, "algorithms", BGW__REQUIRED | BGW__NONEMPTY, check_algorithm, &a->algorithms,
                          &a->n_algorithms) < 0 ||
        parse_keys(c, v, a) < 0 || parse_forward_claims(c, v, a) < 0 ||
        bgw__read_u32(c, v, "clock_skew_s", BGW_DEFAULT_CLOCK_SKEW_S, 0, UINT32_MAX, &a->clock_skew_s) < 0)
        return -1;
    return 0;
}

void bgw__auth_policy_free(struct bgw_auth_policy *a)
{
    free(a->name);
    free(a->issuer);
    bgw__free_strings(a->audiences, a->n_audiences);
    bgw__free_strings(a->algorithms, a->n_algorithms);
    free(a->jwks_json);
    free(a->jwks_uri);
    for (size_t i = 0; i < a->n_forward_claims; i++) {
        free(a->forward_claim_names[i]);
        free(a->forward_claim_headers[i]);
    }
    free(a->forward_claim_names);
    free(a->forward_claim_headers);
}
