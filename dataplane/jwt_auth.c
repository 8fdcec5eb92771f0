/*
 * jwt_auth.c - JWT auth policies: JWK Set -> verifiable keys (compiled once per snapshot), the per-worker
 * cache of verified tokens, and the token check of the request path (see jwt_auth.h).
 *
 * A check, in order: size; three base64url segments; the header (alg, kid, crit) parsed by us; alg in the
 * policy and never none; candidate keys = the policy's keys of the alg's type (and curve), narrowed by kid
 * when the token has one; signature against a candidate; then iss, aud, exp, nbf. Only a token that
 * passed everything enters the cache, until its exp.
 */
#include "jwt_auth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#define MIN_RSA_BITS 2048
#define NO_EXP_CACHE_S 60           /* how long a token without exp stays cached */
#define MAX_CACHE_S 86400           /* how long any token stays cached */
#define MAX_CLAIM_HEADERS 4096      /* bytes of forwarded claim headers per request */
#define MAX_CLAIM_VALUE 2048

enum key_kind { KEY_RSA = 1, KEY_EC, KEY_OCT };
enum sig_kind { SIG_HMAC = 1, SIG_PKCS1, SIG_PSS, SIG_ECDSA };

struct alg_info {
    const char *name;
    enum key_kind key;
    enum sig_kind sig;
    int hash_bits;
    int curve_bits;          /* EC: 256, 384, 521 */
    jwt_alg_t libjwt;
};

static const struct alg_info g_algs[] = {
    {"HS256", KEY_OCT, SIG_HMAC, 256, 0, JWT_ALG_HS256},
    {"HS384", KEY_OCT, SIG_HMAC, 384, 0, JWT_ALG_HS384},
    {"HS512", KEY_OCT, SIG_HMAC, 512, 0, JWT_ALG_HS512},
    {"RS256", KEY_RSA, SIG_PKCS1, 256, 0, JWT_ALG_RS256},
    {"RS384", KEY_RSA, SIG_PKCS1, 384, 0, JWT_ALG_RS384},
    {"RS512", KEY_RSA, SIG_PKCS1, 512, 0, JWT_ALG_RS512},
    {"PS256", KEY_RSA, SIG_PSS, 256, 0, JWT_ALG_NONE},
    {"PS384", KEY_RSA, SIG_PSS, 384, 0, JWT_ALG_NONE},
    {"PS512", KEY_RSA, SIG_PSS, 512, 0, JWT_ALG_NONE},
    {"ES256", KEY_EC, SIG_ECDSA, 256, 256, JWT_ALG_ES256},
    {"ES384", KEY_EC, SIG_ECDSA, 384, 384, JWT_ALG_ES384},
    {"ES512", KEY_EC, SIG_ECDSA, 512, 521, JWT_ALG_ES512},
};
#define N_ALGS (sizeof g_algs / sizeof g_algs[0])

struct jwk {
    char *kid;               /* NULL when the key has none */
    enum key_kind kind;
    int curve_bits;          /* EC */
    int only_alg;            /* index into g_algs when the key names its "alg", else -1 */
    EVP_PKEY *pkey;          /* RSA, EC */
    char *pem;               /* RSA, EC: SubjectPublicKeyInfo PEM for libjwt */
    size_t pem_len;
    unsigned char *secret;   /* oct */
    size_t secret_len;
};

struct bgw_jwt_policy {
    const struct bgw_auth_policy *cfg;
    uint32_t algs;           /* bit i: g_algs[i] allowed */
    struct jwk *keys;
    size_t n_keys;
    uint64_t fingerprint;    /* hash of everything that decides a verdict */
    const char *kept[BGW_JWT_MAX_KEPT_CLAIMS];   /* claims kept for the request path (rate-limit keys) */
    size_t n_kept;
};

struct cache_entry {
    uint64_t hash;
    uint64_t policy;
    int64_t expires;         /* Unix seconds; the entry is used while now <= expires */
    uint32_t token_len, headers_len, claims_len;
    char *data;              /* token bytes, the claim headers, NUL, the kept claims */
};

struct bgw_jwt_cache {
    size_t mask;
    struct cache_entry *e;
    uint64_t hits, misses;
};

/* ---- hashing (cache keys, policy fingerprints; not a security boundary: hits compare the token) ---- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static uint64_t hash_bytes(uint64_t seed, const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t h = mix64(seed ^ (n * 0x9e3779b97f4a7c15ull));
    while (n >= 8) {
        uint64_t k;
        memcpy(&k, p, 8);
        h = mix64(h ^ k) + 0x9e3779b97f4a7c15ull;
        p += 8;
        n -= 8;
    }
    uint64_t k = 0;
    memcpy(&k, p, n);
    return mix64(h ^ k ^ ((uint64_t)n << 56));
}

static uint64_t hash_str(uint64_t seed, const char *s)
{
    return s ? hash_bytes(seed, s, strlen(s) + 1) : mix64(seed + 1);
}

/* ---- base64url ---- */

static int b64_val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '-') return 62;
    if (ch == '_') return 63;
    return -1;
}

/* Strict base64url without padding. out needs len * 3 / 4 + 3 bytes. Returns the decoded length or -1. */
static long b64url_decode(const char *in, size_t len, unsigned char *out)
{
    if (len % 4 == 1) return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_val((unsigned char)in[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (bits && (acc & ((1u << bits) - 1))) return -1;   /* non-canonical trailing bits */
    return (long)o;
}

/* A JWK member decoded from base64url into a new buffer. */
static unsigned char *b64_member(const json_t *k, const char *name, size_t *len)
{
    const char *s = json_string_value(json_object_get(k, name));
    if (!s || !*s) return NULL;
    size_t n = strlen(s);
    unsigned char *out = malloc(n * 3 / 4 + 3);
    if (!out) return NULL;
    long r = b64url_decode(s, n, out);
    if (r <= 0) {
        free(out);
        return NULL;
    }
    *len = (size_t)r;
    return out;
}

/* ---- JWK -> key ---- */

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
    if (ctx && EVP_PKEY_fromdata_init(ctx) == 1) {
        if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *rsa_key(const json_t *k)
{
    size_t nl = 0, el = 0;
    unsigned char *n = b64_member(k, "n", &nl), *e = b64_member(k, "e", &el);
    EVP_PKEY *pkey = NULL;
    BIGNUM *bn = n ? BN_bin2bn(n, (int)nl, NULL) : NULL, *be = e ? BN_bin2bn(e, (int)el, NULL) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bn && be && bld && BN_num_bits(bn) >= MIN_RSA_BITS && !BN_is_zero(be) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1)
        pkey = pkey_fromdata("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return pkey;
}

static EVP_PKEY *ec_key(const json_t *k, int *curve_bits)
{
    const char *crv = json_string_value(json_object_get(k, "crv"));
    const char *group;
    size_t csize;
    if (!crv) return NULL;
    if (strcmp(crv, "P-256") == 0) group = "prime256v1", csize = 32, *curve_bits = 256;
    else if (strcmp(crv, "P-384") == 0) group = "secp384r1", csize = 48, *curve_bits = 384;
    else if (strcmp(crv, "P-521") == 0) group = "secp521r1", csize = 66, *curve_bits = 521;
    else return NULL;
    size_t xl = 0, yl = 0;
    unsigned char *x = b64_member(k, "x", &xl), *y = b64_member(k, "y", &yl);
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    unsigned char pub[1 + 2 * 66];
    if (x && y && bld && xl == csize && yl == csize) {
        pub[0] = 0x04;
        memcpy(pub + 1, x, csize);
        memcpy(pub + 1 + csize, y, csize);
        if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1 &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * csize) == 1)
            pkey = pkey_fromdata("EC", bld);
    }
    if (pkey) {                                   /* the point must be on the curve */
        EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!chk || EVP_PKEY_public_check(chk) != 1) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
        EVP_PKEY_CTX_free(chk);
    }
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return pkey;
}

static int to_pem(struct jwk *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio) return -1;
    char *data;
    long n;
    int rc = -1;
    if (PEM_write_bio_PUBKEY(bio, key->pkey) == 1 && (n = BIO_get_mem_data(bio, &data)) > 0 &&
        (key->pem = malloc((size_t)n + 1))) {
        memcpy(key->pem, data, (size_t)n);
        key->pem[n] = 0;
        key->pem_len = (size_t)n;
        rc = 0;
    }
    BIO_free(bio);
    return rc;
}

static void jwk_free(struct jwk *key)
{
    free(key->kid);
    EVP_PKEY_free(key->pkey);
    free(key->pem);
    if (key->secret) OPENSSL_clear_free(key->secret, key->secret_len);
}

/* One JWK into *key. Returns 0, or -1 when the key cannot be used (skipped). */
static int jwk_load(const json_t *k, struct jwk *key)
{
    memset(key, 0, sizeof *key);
    key->only_alg = -1;
    const char *kty = json_string_value(json_object_get(k, "kty"));
    const char *use = json_string_value(json_object_get(k, "use"));
    const json_t *kid = json_object_get(k, "kid");
    const char *alg = json_string_value(json_object_get(k, "alg"));
    if (!kty || (use && strcmp(use, "sig") != 0) || (kid && !json_is_string(kid))) return -1;
    if (alg) {
        for (size_t i = 0; i < N_ALGS; i++)
            if (strcmp(alg, g_algs[i].name) == 0) key->only_alg = (int)i;
        if (key->only_alg < 0) return -1;
    }
    if (strcmp(kty, "RSA") == 0) {
        key->kind = KEY_RSA;
        key->pkey = rsa_key(k);
    } else if (strcmp(kty, "EC") == 0) {
        key->kind = KEY_EC;
        key->pkey = ec_key(k, &key->curve_bits);
    } else if (strcmp(kty, "oct") == 0) {
        key->kind = KEY_OCT;
        key->secret = b64_member(k, "k", &key->secret_len);
        if (!key->secret) return -1;
    } else {
        return -1;
    }
    if (key->only_alg >= 0 && g_algs[key->only_alg].key != key->kind) goto bad;
    if (key->kind != KEY_OCT && (!key->pkey || to_pem(key) < 0)) goto bad;
    if (kid && !(key->kid = strdup(json_string_value(kid)))) goto bad;
    return 0;
bad:
    jwk_free(key);
    return -1;
}

struct bgw_jwt_policy *bgw_jwt_policy_compile(const struct bgw_auth_policy *cfg, size_t *skipped, char *err,
                                              size_t errlen)
{
    struct bgw_jwt_policy *p = calloc(1, sizeof *p);
    json_t *jwks = NULL;
    if (!p) goto oom;
    p->cfg = cfg;
    if (skipped) *skipped = 0;
    for (size_t i = 0; i < cfg->n_algorithms; i++)
        for (size_t a = 0; a < N_ALGS; a++)
            if (strcmp(cfg->algorithms[i], g_algs[a].name) == 0) p->algs |= 1u << a;

    uint64_t fp = hash_str(0x6a7774, cfg->name);
    fp = hash_str(fp, cfg->issuer);
    for (size_t i = 0; i < cfg->n_audiences; i++) fp = hash_str(fp, cfg->audiences[i]);
    fp = hash_bytes(fp, &p->algs, sizeof p->algs);
    fp = hash_str(fp, cfg->jwks_json);
    for (size_t i = 0; i < cfg->n_forward_claims; i++)
        fp = hash_str(hash_str(fp, cfg->forward_claim_names[i]), cfg->forward_claim_headers[i]);
    fp = hash_bytes(fp, &cfg->clock_skew_s, sizeof cfg->clock_skew_s);
    p->fingerprint = fp;

    if (cfg->jwks_json) {
        json_error_t je;
        jwks = json_loads(cfg->jwks_json, 0, &je);
        const json_t *keys = json_object_get(jwks, "keys");
        if (!json_is_array(keys)) {
            snprintf(err, errlen, "auth_policies[%s].jwks: not a JWK Set", cfg->name);
            goto fail;
        }
        size_t n = json_array_size(keys);
        p->keys = calloc(n ? n : 1, sizeof *p->keys);
        if (!p->keys) goto oom;
        for (size_t i = 0; i < n; i++) {
            if (jwk_load(json_array_get(keys, i), &p->keys[p->n_keys]) == 0) p->n_keys++;
            else if (skipped) (*skipped)++;
        }
    }
    json_decref(jwks);
    return p;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    json_decref(jwks);
    bgw_jwt_policy_free(p);
    return NULL;
}

void bgw_jwt_policy_free(struct bgw_jwt_policy *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n_keys; i++) jwk_free(&p->keys[i]);
    free(p->keys);
    free(p);
}

size_t bgw_jwt_policy_keys(const struct bgw_jwt_policy *p)
{
    return p->n_keys;
}

int bgw_jwt_policy_keep_claim(struct bgw_jwt_policy *p, const char *name)
{
    for (size_t i = 0; i < p->n_kept; i++)
        if (strcmp(p->kept[i], name) == 0) return 0;
    if (p->n_kept == BGW_JWT_MAX_KEPT_CLAIMS) return -1;
    p->kept[p->n_kept++] = name;
    p->fingerprint = hash_str(p->fingerprint, name);    /* entries cached without it are not reused */
    return 0;
}

const char *bgw_jwt_claim_find(const char *claims, size_t claims_len, const char *name, size_t name_len,
                               size_t *value_len)
{
    size_t i = 0;
    while (i < claims_len) {
        const char *n = claims + i;
        size_t nl = strnlen(n, claims_len - i);
        if (i + nl + 1 >= claims_len) return NULL;
        const char *v = n + nl + 1;
        size_t vl = strnlen(v, claims_len - (i + nl + 1));
        if (nl == name_len && memcmp(n, name, nl) == 0) {
            *value_len = vl;
            return v;
        }
        i += nl + 1 + vl + 1;
    }
    return NULL;
}

/* ---- the cache ---- */

struct bgw_jwt_cache *bgw_jwt_cache_new(size_t entries)
{
    size_t n = 1;
    if (!entries) entries = BGW_JWT_CACHE_ENTRIES;
    while (n < entries) n <<= 1;
    struct bgw_jwt_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->e = calloc(n, sizeof *c->e);
    if (!c->e) {
        free(c);
        return NULL;
    }
    c->mask = n - 1;
    return c;
}

void bgw_jwt_cache_free(struct bgw_jwt_cache *c)
{
    if (!c) return;
    for (size_t i = 0; i <= c->mask; i++) free(c->e[i].data);
    free(c->e);
    free(c);
}

void bgw_jwt_cache_stats(const struct bgw_jwt_cache *c, uint64_t *hits, uint64_t *misses)
{
    *hits = c ? c->hits : 0;
    *misses = c ? c->misses : 0;
}

static void cache_put(struct bgw_jwt_cache *c, uint64_t hash, uint64_t policy, const char *token, size_t tlen,
                      const char *headers, size_t hlen, const char *claims, size_t clen, int64_t expires)
{
    struct cache_entry *e = &c->e[hash & c->mask];
    char *data = malloc(tlen + hlen + 1 + clen);
    if (!data) return;
    memcpy(data, token, tlen);
    memcpy(data + tlen, headers, hlen);
    data[tlen + hlen] = 0;
    memcpy(data + tlen + hlen + 1, claims, clen);
    free(e->data);
    e->data = data;
    e->hash = hash;
    e->policy = policy;
    e->expires = expires;
    e->token_len = (uint32_t)tlen;
    e->headers_len = (uint32_t)hlen;
    e->claims_len = (uint32_t)clen;
}

/* ---- results ---- */

const char *bgw_jwt_reason(enum bgw_jwt_result r)
{
    switch (r) {
    case BGW_JWT_OK: return "ok";
    case BGW_JWT_MISSING: return "missing";
    case BGW_JWT_TOO_LARGE: return "too_large";
    case BGW_JWT_MALFORMED: return "malformed";
    case BGW_JWT_BAD_ALG: return "bad_alg";
    case BGW_JWT_UNKNOWN_KID: return "unknown_kid";
    case BGW_JWT_BAD_SIGNATURE: return "bad_signature";
    case BGW_JWT_EXPIRED: return "expired";
    case BGW_JWT_NOT_YET_VALID: return "not_yet_valid";
    case BGW_JWT_BAD_ISSUER: return "bad_issuer";
    case BGW_JWT_BAD_AUDIENCE: return "bad_audience";
    }
    return "malformed";
}

const char *bgw_jwt_message(enum bgw_jwt_result r)
{
    switch (r) {
    case BGW_JWT_OK: return "ok";
    case BGW_JWT_MISSING: return "a bearer token is required";
    case BGW_JWT_TOO_LARGE: return "the token is too large";
    case BGW_JWT_MALFORMED: return "the token is malformed";
    case BGW_JWT_BAD_ALG: return "the token's algorithm is not accepted";
    case BGW_JWT_UNKNOWN_KID: return "the token's key is unknown";
    case BGW_JWT_BAD_SIGNATURE: return "the token's signature is invalid";
    case BGW_JWT_EXPIRED: return "the token has expired";
    case BGW_JWT_NOT_YET_VALID: return "the token is not valid yet";
    case BGW_JWT_BAD_ISSUER: return "the token's issuer is not accepted";
    case BGW_JWT_BAD_AUDIENCE: return "the token's audience is not accepted";
    }
    return "the token is malformed";
}

const char *bgw_jwt_www_authenticate(enum bgw_jwt_result r)
{
    switch (r) {
    case BGW_JWT_MISSING:
        return "WWW-Authenticate: Bearer realm=\"bgw\"\r\n";
    case BGW_JWT_EXPIRED:
        return "WWW-Authenticate: Bearer realm=\"bgw\", error=\"invalid_token\", "
               "error_description=\"the token has expired\"\r\n";
    default:
        return "WWW-Authenticate: Bearer realm=\"bgw\", error=\"invalid_token\"\r\n";
    }
}

/* ---- signatures ---- */

static const EVP_MD *digest(int bits)
{
    return bits == 256 ? EVP_sha256() : bits == 384 ? EVP_sha384() : EVP_sha512();
}

static bool verify_hmac(const struct jwk *key, const struct alg_info *a, const char *input, size_t input_len,
                        const unsigned char *sig, size_t sig_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (key->secret_len < (size_t)a->hash_bits / 8) return false;   /* RFC 7518 3.2: key >= hash size */
    if (!HMAC(digest(a->hash_bits), key->secret, (int)key->secret_len, (const unsigned char *)input, input_len,
              mac, &mac_len))
        return false;
    return mac_len == sig_len && CRYPTO_memcmp(mac, sig, sig_len) == 0;
}

static bool verify_pss(const struct jwk *key, const struct alg_info *a, const char *input, size_t input_len,
                       const unsigned char *sig, size_t sig_len)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok = m && EVP_DigestVerifyInit(m, &pctx, digest(a->hash_bits), NULL, key->pkey) == 1 &&
              EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
              EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
              EVP_DigestVerify(m, sig, sig_len, (const unsigned char *)input, input_len) == 1;
    EVP_MD_CTX_free(m);
    return ok;
}

/* RS and ES through libjwt, with the algorithm already pinned: libjwt takes the alg from the header we
 * checked, and the key is of that alg's type. */
static bool verify_libjwt(const struct jwk *key, const struct alg_info *a, const char *token)
{
    jwt_t *jwt = NULL;
    int rc = jwt_decode(&jwt, token, (const unsigned char *)key->pem, (int)key->pem_len);
    bool ok = rc == 0 && jwt && jwt_get_alg(jwt) == a->libjwt;
    jwt_free(jwt);
    return ok;
}

static bool key_fits(const struct jwk *key, const struct alg_info *a, int ai)
{
    if (key->kind != a->key) return false;
    if (key->only_alg >= 0 && key->only_alg != ai) return false;
    if (a->key == KEY_EC && key->curve_bits != a->curve_bits) return false;
    return true;
}

/* ---- claims ---- */

static bool aud_ok(const struct bgw_auth_policy *cfg, const json_t *aud)
{
    if (cfg->n_audiences == 0) return true;
    for (size_t i = 0; i < cfg->n_audiences; i++) {
        if (json_is_string(aud) && strcmp(json_string_value(aud), cfg->audiences[i]) == 0) return true;
        size_t k;
        json_t *x;
        json_array_foreach(aud, k, x) {
            if (json_is_string(x) && strcmp(json_string_value(x), cfg->audiences[i]) == 0) return true;
        }
    }
    return false;
}

/* A numeric claim: 1 absent, 0 present (in *v), -1 of the wrong type. */
static int num_claim(const json_t *claims, const char *name, double *v)
{
    const json_t *x = json_object_get(claims, name);
    if (!x) return 1;
    if (!json_is_number(x)) return -1;
    *v = json_number_value(x);
    return isfinite(*v) ? 0 : -1;
}

/* One claim value as header text into buf (cap bytes). Returns its length, or -1 when it cannot be a header
 * value (control characters, too long). */
static long claim_text(const json_t *x, char *buf, size_t cap)
{
    const char *s;
    size_t n;
    char *dumped = NULL;
    char num[64];
    if (json_is_string(x)) {
        s = json_string_value(x);
        n = json_string_length(x);
    } else if (json_is_integer(x)) {
        n = (size_t)snprintf(num, sizeof num, "%lld", (long long)json_integer_value(x));
        s = num;
    } else if (json_is_real(x)) {
        n = (size_t)snprintf(num, sizeof num, "%.17g", json_real_value(x));
        s = num;
    } else if (json_is_boolean(x)) {
        s = json_is_true(x) ? "true" : "false";
        n = strlen(s);
    } else {
        dumped = json_dumps(x, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
        if (!dumped) return -1;
        s = dumped;
        n = strlen(s);
    }
    long rc = -1;
    if (n <= MAX_CLAIM_VALUE && n < cap) {
        rc = (long)n;
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)s[i];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) rc = -1;
        }
        if (rc >= 0) memcpy(buf, s, n);
    }
    free(dumped);
    return rc;
}

/* The forwarded claim headers into buf, NUL-terminated. Returns the length. */
static size_t claim_headers(const struct bgw_auth_policy *cfg, const json_t *claims, char *buf, size_t cap)
{
    size_t n = 0;
    char val[MAX_CLAIM_VALUE + 1];
    for (size_t i = 0; i < cfg->n_forward_claims; i++) {
        const json_t *x = json_object_get(claims, cfg->forward_claim_names[i]);
        if (!x || json_is_null(x)) continue;
        long vl = claim_text(x, val, sizeof val);
        if (vl < 0) continue;
        /* strip surrounding whitespace: a header value has none */
        size_t a = 0, b = (size_t)vl;
        while (a < b && (val[a] == ' ' || val[a] == '\t')) a++;
        while (b > a && (val[b - 1] == ' ' || val[b - 1] == '\t')) b--;
        size_t hl = strlen(cfg->forward_claim_headers[i]);
        if (n + hl + 2 + (b - a) + 2 >= cap) continue;
        memcpy(buf + n, cfg->forward_claim_headers[i], hl);
        n += hl;
        memcpy(buf + n, ": ", 2);
        n += 2;
        memcpy(buf + n, val + a, b - a);
        n += b - a;
        memcpy(buf + n, "\r\n", 2);
        n += 2;
    }
    buf[n] = 0;
    return n;
}

/* ---- the check ---- */

static __thread char t_headers[MAX_CLAIM_HEADERS];
static __thread char t_claims[BGW_JWT_MAX_KEPT_CLAIMS * (MAX_CLAIM_VALUE + 130)];

/* The kept claims of claims into buf as "name\0value\0"... Returns the length. */
static size_t kept_claims(const struct bgw_jwt_policy *p, const json_t *claims, char *buf, size_t cap)
{
    size_t n = 0;
    char val[MAX_CLAIM_VALUE + 1];
    for (size_t i = 0; i < p->n_kept; i++) {
        const json_t *x = json_object_get(claims, p->kept[i]);
        long vl = x && !json_is_null(x) ? claim_text(x, val, sizeof val) : -1;
        size_t nl = strlen(p->kept[i]);
        if (vl < 0 || memchr(val, 0, (size_t)vl) || n + nl + 1 + (size_t)vl + 1 > cap) continue;
        memcpy(buf + n, p->kept[i], nl + 1);
        n += nl + 1;
        memcpy(buf + n, val, (size_t)vl);
        n += (size_t)vl;
        buf[n++] = 0;
    }
    return n;
}

static enum bgw_jwt_result fail(struct bgw_jwt_verdict *v, enum bgw_jwt_result r)
{
    v->result = r;
    v->add_headers = "";
    v->add_headers_len = 0;
    v->claims = "";
    v->claims_len = 0;
    return r;
}

enum bgw_jwt_result bgw_jwt_check(const struct bgw_jwt_policy *p, struct bgw_jwt_cache *cache, const char *token,
                                  size_t token_len, int64_t now, struct bgw_jwt_verdict *v)
{
    const struct bgw_auth_policy *cfg = p->cfg;
    if (!token || token_len == 0) return fail(v, BGW_JWT_MISSING);
    if (token_len > BGW_JWT_MAX_TOKEN) return fail(v, BGW_JWT_TOO_LARGE);

    uint64_t hash = 0;
    if (cache) {
        hash = hash_bytes(p->fingerprint, token, token_len);
        struct cache_entry *e = &cache->e[hash & cache->mask];
        if (e->data && e->hash == hash && e->policy == p->fingerprint && e->token_len == token_len &&
            memcmp(e->data, token, token_len) == 0) {
            if (now <= e->expires) {
                cache->hits++;
                v->result = BGW_JWT_OK;
                v->add_headers = e->data + e->token_len;
                v->add_headers_len = e->headers_len;
                v->claims = e->data + e->token_len + e->headers_len + 1;
                v->claims_len = e->claims_len;
                return BGW_JWT_OK;
            }
            free(e->data);
            memset(e, 0, sizeof *e);
        }
        cache->misses++;
    }

    /* three segments of base64url */
    const char *d1 = memchr(token, '.', token_len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', token_len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', token_len - (size_t)(d2 + 1 - token))) return fail(v, BGW_JWT_MALFORMED);
    size_t hlen = (size_t)(d1 - token), plen = (size_t)(d2 - d1 - 1), slen = token_len - (size_t)(d2 + 1 - token);
    if (!hlen || !plen) return fail(v, BGW_JWT_MALFORMED);      /* an empty signature fails later */
    unsigned char buf[BGW_JWT_MAX_TOKEN];       /* decoded segments, one at a time */
    long n = b64url_decode(token, hlen, buf);
    if (n < 0) return fail(v, BGW_JWT_MALFORMED);
    json_t *hdr = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(hdr)) {
        json_decref(hdr);
        return fail(v, BGW_JWT_MALFORMED);
    }
    const json_t *alg_j = json_object_get(hdr, "alg"), *kid_j = json_object_get(hdr, "kid");
    if (!json_is_string(alg_j) || (kid_j && !json_is_string(kid_j)) || json_object_get(hdr, "crit")) {
        json_decref(hdr);
        return fail(v, BGW_JWT_MALFORMED);
    }
    int ai = -1;
    for (size_t i = 0; i < N_ALGS; i++)
        if (strcmp(json_string_value(alg_j), g_algs[i].name) == 0) ai = (int)i;
    if (ai < 0 || !(p->algs & (1u << ai))) {          /* none, unknown, or not this policy's */
        json_decref(hdr);
        return fail(v, BGW_JWT_BAD_ALG);
    }
    const struct alg_info *a = &g_algs[ai];
    const char *kid = kid_j ? json_string_value(kid_j) : NULL;
    size_t kid_len = kid_j ? json_string_length(kid_j) : 0;

    /* candidate keys: the policy's own, of the alg's type, with the token's kid when it has one */
    bool any_type = false, any_kid = false;
    for (size_t i = 0; i < p->n_keys; i++) {
        const struct jwk *k = &p->keys[i];
        if (!key_fits(k, a, ai)) continue;
        any_type = true;
        if (kid && (!k->kid || strlen(k->kid) != kid_len || memcmp(k->kid, kid, kid_len) != 0)) continue;
        any_kid = true;
    }
    enum bgw_jwt_result early = kid && !any_kid ? BGW_JWT_UNKNOWN_KID : !any_type ? BGW_JWT_BAD_ALG : BGW_JWT_OK;
    if (early == BGW_JWT_OK && (n = b64url_decode(d2 + 1, slen, buf)) <= 0) early = BGW_JWT_MALFORMED;
    if (early != BGW_JWT_OK) {
        json_decref(hdr);
        return fail(v, early);
    }
    size_t sig_len = (size_t)n;
    char tok[BGW_JWT_MAX_TOKEN + 1];              /* NUL-terminated copy for libjwt */
    memcpy(tok, token, token_len);
    tok[token_len] = 0;
    bool ok = false;
    size_t input_len = (size_t)(d2 - token);
    for (size_t i = 0; i < p->n_keys && !ok; i++) {
        const struct jwk *k = &p->keys[i];
        if (!key_fits(k, a, ai)) continue;
        if (kid && (!k->kid || strlen(k->kid) != kid_len || memcmp(k->kid, kid, kid_len) != 0)) continue;
        switch (a->sig) {
        case SIG_HMAC: ok = verify_hmac(k, a, token, input_len, buf, sig_len); break;
        case SIG_PSS: ok = verify_pss(k, a, token, input_len, buf, sig_len); break;
        case SIG_PKCS1: case SIG_ECDSA: ok = verify_libjwt(k, a, tok); break;
        }
    }
    json_decref(hdr);                             /* kid pointed into it */
    if (!ok) return fail(v, BGW_JWT_BAD_SIGNATURE);

    /* claims */
    n = b64url_decode(d1 + 1, plen, buf);
    if (n < 0) return fail(v, BGW_JWT_MALFORMED);
    json_t *claims = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    enum bgw_jwt_result r = BGW_JWT_OK;
    double exp = 0, nbf = 0;
    int has_exp = 1, has_nbf = 1;
    const json_t *iss = json_object_get(claims, "iss");
    if (!json_is_object(claims) || (has_exp = num_claim(claims, "exp", &exp)) < 0 ||
        (has_nbf = num_claim(claims, "nbf", &nbf)) < 0)
        r = BGW_JWT_MALFORMED;
    else if (!json_is_string(iss) || strcmp(json_string_value(iss), cfg->issuer) != 0)
        r = BGW_JWT_BAD_ISSUER;
    else if (!aud_ok(cfg, json_object_get(claims, "aud")))
        r = BGW_JWT_BAD_AUDIENCE;
    else if (has_exp == 0 && (double)now > exp + (double)cfg->clock_skew_s)
        r = BGW_JWT_EXPIRED;
    else if (has_nbf == 0 && (double)now + (double)cfg->clock_skew_s < nbf)
        r = BGW_JWT_NOT_YET_VALID;
    if (r != BGW_JWT_OK) {
        json_decref(claims);
        return fail(v, r);
    }
    size_t hl = claim_headers(cfg, claims, t_headers, sizeof t_headers);
    size_t cl = kept_claims(p, claims, t_claims, sizeof t_claims);
    json_decref(claims);
    v->result = BGW_JWT_OK;
    v->add_headers = t_headers;
    v->add_headers_len = hl;
    v->claims = t_claims;
    v->claims_len = cl;
    if (cache) {
        /* until exp (+ skew), at most a day: far-future (even absurd) exp values stay in range */
        double until = has_exp == 0 ? floor(exp) + (double)cfg->clock_skew_s : (double)(now + NO_EXP_CACHE_S);
        if (until > (double)now + MAX_CACHE_S) until = (double)now + MAX_CACHE_S;
        int64_t expires = (int64_t)until;
        cache_put(cache, hash, p->fingerprint, token, token_len, t_headers, hl, t_claims, cl, expires);
    }
    return BGW_JWT_OK;
}

/* ---- the request path ---- */

static bool ieq(const char *a, size_t al, const char *b)
{
    size_t bl = strlen(b);
    return al == bl && strncasecmp(a, b, bl) == 0;
}

enum bgw_jwt_result bgw_jwt_auth_request(const struct bgw_jwt_policy *p, struct bgw_jwt_cache **cache,
                                         struct bgw_http_head *h, int64_t now, struct bgw_jwt_verdict *v)
{
    const struct bgw_auth_policy *cfg = p->cfg;
    const char *token = NULL;
    size_t token_len = 0;
    int n_authz = 0;
    for (uint32_t i = 0; i < h->n_headers; i++) {
        struct bgw_http_header *x = &h->headers[i];
        for (size_t k = 0; k < cfg->n_forward_claims; k++)
            if (ieq(x->name, x->name_len, cfg->forward_claim_headers[k])) x->hop = 1;
        if (!ieq(x->name, x->name_len, "authorization")) continue;
        if (++n_authz > 1) continue;
        const char *s = x->value;
        size_t l = x->value_len;
        if (l > 6 && strncasecmp(s, "bearer", 6) == 0 && (s[6] == ' ' || s[6] == '\t')) {
            size_t k = 6;
            while (k < l && (s[k] == ' ' || s[k] == '\t')) k++;
            token = s + k;
            token_len = l - k;
        }
    }
    if (n_authz > 1) return fail(v, BGW_JWT_MALFORMED);
    if (!*cache) *cache = bgw_jwt_cache_new(0);
    return bgw_jwt_check(p, *cache, token, token_len, now, v);
}
