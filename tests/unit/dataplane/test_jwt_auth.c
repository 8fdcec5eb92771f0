/* test_jwt_auth.c - the JWT auth policy module with a fake clock: alg pinning, key types, kid, claims and
 * their time bounds, the verified-token cache, forwarded claim headers and the header stripping. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include "jwt_auth.h"

#define NOW 1700000000LL
#define SKEW 60

static const unsigned char SECRET[32] = "0123456789abcdef0123456789abcdef";

/* ---- token making ---- */

static void b64u(const unsigned char *in, size_t n, char *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        if (i + 1 < n) out[o++] = al[v >> 6 & 63];
        if (i + 2 < n) out[o++] = al[v & 63];
    }
    out[o] = 0;
}

static EVP_PKEY *g_rsa;

/* header.payload.signature with alg (HS256 over SECRET, RS256 with g_rsa, "none": empty signature). */
static char *make_token(const char *header_json, const char *payload_json, const char *alg)
{
    char *t = malloc(16384);
    b64u((const unsigned char *)header_json, strlen(header_json), t);
    strcat(t, ".");
    b64u((const unsigned char *)payload_json, strlen(payload_json), t + strlen(t));
    size_t input_len = strlen(t);
    unsigned char sig[1024];
    size_t sig_len = 0;
    if (strcmp(alg, "HS256") == 0) {
        unsigned int l = 0;
        HMAC(EVP_sha256(), SECRET, sizeof SECRET, (unsigned char *)t, input_len, sig, &l);
        sig_len = l;
    } else if (strcmp(alg, "RS256") == 0) {
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        sig_len = sizeof sig;
        ck_assert_int_eq(EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, g_rsa), 1);
        ck_assert_int_eq(EVP_DigestSign(m, sig, &sig_len, (unsigned char *)t, input_len), 1);
        EVP_MD_CTX_free(m);
    }
    strcat(t, ".");
    b64u(sig, sig_len, t + strlen(t));
    return t;
}

static char *hs(const char *payload)
{
    return make_token("{\"alg\":\"HS256\",\"kid\":\"h1\"}", payload, "HS256");
}

static char *claims(const char *extra)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "{\"iss\":\"https://issuer.test\",\"aud\":\"api\",\"sub\":\"u1\",\"exp\":%lld%s%s}",
             NOW + 3600, extra && *extra ? "," : "", extra ? extra : "");
    return buf;
}

/* ---- policies ---- */

static char g_jwks[8192];
static char *algs_hs[] = {"HS256"};
static char *algs_rs[] = {"RS256"};
static char *algs_both[] = {"RS256", "HS256"};
static char *auds[] = {"api", "api-2"};
static char *claim_names[] = {"sub", "scope", "roles"};
static char *claim_headers[] = {"x-user-id", "x-scope", "x-roles"};

static struct bgw_auth_policy policy_cfg(char **algs, size_t n_algs)
{
    struct bgw_auth_policy a = {
        .name = "p", .issuer = "https://issuer.test", .audiences = auds, .n_audiences = 2,
        .algorithms = algs, .n_algorithms = n_algs, .jwks_json = g_jwks,
        .forward_claim_names = claim_names, .forward_claim_headers = claim_headers, .n_forward_claims = 3,
        .clock_skew_s = SKEW,
    };
    return a;
}

static void setup(void)
{
    g_rsa = EVP_RSA_gen(2048);
    ck_assert_ptr_nonnull(g_rsa);
    BIGNUM *n = NULL, *e = NULL;
    EVP_PKEY_get_bn_param(g_rsa, OSSL_PKEY_PARAM_RSA_N, &n);
    EVP_PKEY_get_bn_param(g_rsa, OSSL_PKEY_PARAM_RSA_E, &e);
    unsigned char nb[512], eb[8];
    int nl = BN_bn2bin(n, nb), el = BN_bn2bin(e, eb);
    char n64[1024], e64[16], k64[64];
    b64u(nb, (size_t)nl, n64);
    b64u(eb, (size_t)el, e64);
    b64u(SECRET, sizeof SECRET, k64);
    snprintf(g_jwks, sizeof g_jwks,
             "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r1\",\"n\":\"%s\",\"e\":\"%s\"},"
             "{\"kty\":\"oct\",\"kid\":\"h1\",\"k\":\"%s\"},"
             "{\"kty\":\"RSA\",\"kid\":\"weak\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
             "{\"kty\":\"EC\",\"kid\":\"bad-ec\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"},"
             "{\"kty\":\"oct\",\"kid\":\"enc\",\"use\":\"enc\",\"k\":\"%s\"}]}",
             n64, e64, k64, k64);
    BN_free(n);
    BN_free(e);
}

static void teardown(void)
{
    EVP_PKEY_free(g_rsa);
}

static struct bgw_jwt_policy *compile(char **algs, size_t n, struct bgw_auth_policy *cfg)
{
    *cfg = policy_cfg(algs, n);
    char err[256];
    size_t skipped = 0;
    struct bgw_jwt_policy *p = bgw_jwt_policy_compile(cfg, &skipped, err, sizeof err);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(bgw_jwt_policy_keys(p), 2);    /* weak RSA, off-curve EC and use=enc skipped */
    ck_assert_uint_eq(skipped, 3);
    return p;
}

static enum bgw_jwt_result check_at(const struct bgw_jwt_policy *p, struct bgw_jwt_cache *c, const char *tok,
                                    long long now)
{
    struct bgw_jwt_verdict v;
    return bgw_jwt_check(p, c, tok, strlen(tok), now, &v);
}

/* ---- tests ---- */

START_TEST(hs256_and_rs256_accepted)
{
    struct bgw_auth_policy cfg;
    struct bgw_jwt_policy *p = compile(algs_both, 2, &cfg);
    char *a = hs(claims(NULL));
    char *b = make_token("{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims(NULL), "RS256");
    char *c = make_token("{\"alg\":\"RS256\"}", claims(NULL), "RS256");    /* no kid: keys of the type */
    ck_assert_int_eq(check_at(p, NULL, a, NOW), BGW_JWT_OK);
    ck_assert_int_eq(check_at(p, NULL, b, NOW), BGW_JWT_OK);
    ck_assert_int_eq(check_at(p, NULL, c, NOW), BGW_JWT_OK);
    free(a), free(b), free(c);
    bgw_jwt_policy_free(p);
}
END_TEST

START_TEST(alg_pinning)
{
    struct bgw_auth_policy cfg;
    struct bgw_jwt_policy *p = compile(algs_rs, 1, &cfg);
    char *a = hs(claims(NULL));                                         /* HS256 not in the policy */
    char *b = make_token("{\"alg\":\"none\"}", claims(NULL), "none");
    char *c = make_token("{\"alg\":\"RS257\"}", claims(NULL), "none");
    char *d = make_token("{\"alg\":\"HS256\",\"kid\":\"r1\"}", claims(NULL), "HS256");
    ck_assert_int_eq(check_at(p, NULL, a, NOW), BGW_JWT_BAD_ALG);
    ck_assert_int_eq(check_at(p, NULL, b, NOW), BGW_JWT_BAD_ALG);
    ck_assert_int_eq(check_at(p, NULL, c, NOW), BGW_JWT_BAD_ALG);
    ck_assert_int_eq(check_at(p, NULL, d, NOW), BGW_JWT_BAD_ALG);
    free(a), free(b), free(c), free(d);
    bgw_jwt_policy_free(p);
    /* with both allowed, an HS256 token naming the RSA key's kid finds no oct key of that kid */
    p = compile(algs_both, 2, &cfg);
    d = make_token("{\"alg\":\"HS256\",\"kid\":\"r1\"}", claims(NULL), "HS256");
    ck_assert_int_eq(check_at(p, NULL, d, NOW), BGW_JWT_UNKNOWN_KID);
    free(d);
    bgw_jwt_policy_free(p);
}
END_TEST

START_TEST(kid_lookup)
{
    struct bgw_auth_policy cfg;
    struct bgw_jwt_policy *p = compile(algs_hs, 1, &cfg);
    char *a = make_token("{\"alg\":\"HS256\",\"kid\":\"../../etc/passwd\"}", claims(NULL), "HS256");
    char *b = make_token("{\"alg\":\"HS256\",\"kid\":\"h2\"}", claims(NULL), "HS256");
    char *c = make_token("{\"alg\":\"HS256\",\"kid\":7}", claims(NULL), "HS256");
    char *d = make_token("{\"alg\":\"HS256\",\"kid\":\"enc\"}", claims(NULL), "HS256");    /* use=enc skipped */
    char *e = make_token("{\"alg\":\"HS256\",\"kid\":\"h1\",\"jku\":\"http://x/\",\"x5u\":\"http://y/\","
                         "\"jwk\":{\"kty\":\"oct\",\"k\":\"AAAA\"}}", claims(NULL), "HS256");
    ck_assert_int_eq(check_at(p, NULL, a, NOW), BGW_JWT_UNKNOWN_KID);
    ck_assert_int_eq(check_at(p, NULL, b, NOW), BGW_JWT_UNKNOWN_KID);
    ck_assert_int_eq(check_at(p, NULL, c, NOW), BGW_JWT_MALFORMED);
    ck_assert_int_eq(check_at(p, NULL, d, NOW), BGW_JWT_UNKNOWN_KID);
    ck_assert_int_eq(check_at(p, NULL, e, NOW), BGW_JWT_OK);          /* remote-key headers ignored */
    free(a), free(b), free(c), free(d), free(e);
    bgw_jwt_policy_free(p);
}
END_TEST

START_TEST(time_bounds_with_skew)
{
    struct bgw_auth_policy cfg;
    struct bgw_jwt_policy *p = compile(algs_hs, 1, &cfg);
    char payload[512];
    char *t;
    snprintf(payload, sizeof payload, "{\"iss\":\"https://issuer.test\",\"aud\":\"api\",\"exp\":%lld,\"nbf\":%lld}",
             NOW + 1000, NOW + 100);
    t = hs(payload);
    ck_assert_int_eq(check_at(p, NULL, t, NOW + 100 - SKEW - 1), BGW_JWT_NOT_YET_VALID);
    ck_assert_int_eq(check_at(p, NULL, t, NOW + 100 - SKEW), BGW_JWT_OK);
    ck_assert_int_eq(check_at(p, NULL, t, NOW + 1000 + SKEW), BGW_JWT_OK);
    ck_assert_int_eq(check_at(p, NULL, t, NOW + 1000 + SKEW + 1), BGW_JWT_EXPIRED);
    free(t);
    t = hs("{\"iss\":\"https://issuer.test\",\"aud\":\"api\",\"exp\":1e300}");        /* absurd, but valid */
    struct bgw_jwt_cache *c = bgw_jwt_cache_new(0);
    ck_assert_int_eq(check_at(p, c, t, NOW), BGW_JWT_OK);
    ck_assert_int_eq(check_at(p, c, t, NOW + 86400), BGW_JWT_OK);                         /* cached a day */
    bgw_jwt_cache_free(c);
    free(t);
    t = hs("{\"iss\":\"https://issuer.test\",\"aud\":\"api\",\"exp\":\"soon\"}");
    ck_assert_int_eq(check_at(p, NULL, t, NOW), BGW_JWT_MALFORMED);
    free(t);
    bgw_jwt_policy_free(p);
}
END_TEST

START_TEST(issuer_and_audience)
{
    struct bgw_auth_policy cfg;
    struct bgw_jwt_policy *p = compile(algs_hs, 1, &cfg);
    const char *bad[][2] = {
        {"{\"iss\":\"https://issuer.test/\",\"aud\":\"api\"}", "iss"},
        {"{\"aud\":\"api\"}", "iss"},
        {"{\"iss\":7,\"aud\":\"api\"}", "iss"},
        {"{\"iss\":\"https://issuer.test\",\"aud\":\"API\"}", "aud"},
        {"{\"iss\":\"https://issuer.test\",\"aud\":[\"a\",\"b\"]}", "aud"},
        {"{\"iss\":\"https://issuer.test\"}", "aud"},
        {"{\"iss\":\"https://issuer.test\",\"aud\":{\"api\":1}}", "aud"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *t = hs(bad[i][0]);
        ck_assert_int_eq(check_at(p, NULL, t, NOW), bad[i][1][0] == 'i' ? BGW_JWT_BAD_ISSUER : BGW_JWT_BAD_AUDIENCE);
        free(t);
    }
    char *t = hs("{\"iss\":\"https://issuer.test\",\"aud\":[\"x\",\"api-2\"]}");
    ck_assert_int_eq(check_at(p, NULL, t, NOW), BGW_JWT_OK);
    free(t);
    t = hs("{\"iss\":\"https://issuer.test\",\"aud\":\"api\",\"aud\":\"x\"}");          /* duplicate claim */
    ck_assert_int_eq(check_at(p, NULL, t, NOW), BGW_JWT_MALFORMED);
    free(t);
    bgw_jwt_policy_free(p);
}
END_TEST

START_TEST(malformed_tokens)
{
    struct bgw_auth_policy cfg;
    struct bgw_jwt_policy *p = compile(algs_hs, 1, &cfg);
    char *good = hs(claims(NULL));
    char buf[20000];
    const char *dot1 = strchr(good, '.'), *dot2 = strchr(dot1 + 1, '.');
    ck_assert_int_eq(check_at(p, NULL, "", NOW), BGW_JWT_MISSING);
    snprintf(buf, sizeof buf, "%.*s", (int)(dot2 - good), good);                      /* 2 segments */
    ck_assert_int_eq(check_at(p, NULL, buf, NOW), BGW_JWT_MALFORMED);
    snprintf(buf, sizeof buf, "%s.%s", good, dot2 + 1);                              /* 4 segments */
    ck_assert_int_eq(check_at(p, NULL, buf, NOW), BGW_JWT_MALFORMED);
    snprintf(buf, sizeof buf, "%s", good);
    buf[3] = '+';                                                                     /* not base64url */
    ck_assert_int_eq(check_at(p, NULL, buf, NOW), BGW_JWT_MALFORMED);
    snprintf(buf, sizeof buf, "%s=", good);                                          /* padding */
    ck_assert_int_eq(check_at(p, NULL, buf, NOW), BGW_JWT_MALFORMED);
    ck_assert_int_eq(check_at(p, NULL, "..", NOW), BGW_JWT_MALFORMED);
    ck_assert_int_eq(check_at(p, NULL, "e30.e30.e30", NOW), BGW_JWT_MALFORMED);      /* {} header: no alg */
    char *crit = make_token("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", claims(NULL), "HS256");
    ck_assert_int_eq(check_at(p, NULL, crit, NOW), BGW_JWT_MALFORMED);
    char *dup = make_token("{\"alg\":\"HS256\",\"alg\":\"none\"}", claims(NULL), "HS256");
    ck_assert_int_eq(check_at(p, NULL, dup, NOW), BGW_JWT_MALFORMED);
    memset(buf, 'a', sizeof buf);
    buf[BGW_JWT_MAX_TOKEN + 1] = 0;
    ck_assert_int_eq(check_at(p, NULL, buf, NOW), BGW_JWT_TOO_LARGE);
    buf[BGW_JWT_MAX_TOKEN] = 0;
    ck_assert_int_eq(check_at(p, NULL, buf, NOW), BGW_JWT_MALFORMED);
    /* a flipped signature byte */
    snprintf(buf, sizeof buf, "%s", good);
    buf[strlen(buf) - 2] = buf[strlen(buf) - 2] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(check_at(p, NULL, buf, NOW), BGW_JWT_BAD_SIGNATURE);
    free(good), free(crit), free(dup);
    bgw_jwt_policy_free(p);
}
END_TEST

START_TEST(cache_hits_until_exp)
{
    struct bgw_auth_policy cfg;
    struct bgw_jwt_policy *p = compile(algs_hs, 1, &cfg);
    struct bgw_jwt_cache *c = bgw_jwt_cache_new(4);
    char *t = hs(claims(NULL));
    uint64_t hits, misses;
    ck_assert_int_eq(check_at(p, c, t, NOW), BGW_JWT_OK);
    ck_assert_int_eq(check_at(p, c, t, NOW + 10), BGW_JWT_OK);
    ck_assert_int_eq(check_at(p, c, t, NOW + 3600 + SKEW), BGW_JWT_OK);
    bgw_jwt_cache_stats(c, &hits, &misses);
    ck_assert_uint_eq(hits, 2);
    ck_assert_uint_eq(misses, 1);
    ck_assert_int_eq(check_at(p, c, t, NOW + 3600 + SKEW + 1), BGW_JWT_EXPIRED);    /* the clock moved on */
    bgw_jwt_cache_stats(c, &hits, &misses);
    ck_assert_uint_eq(hits, 2);
    /* another policy (other fingerprint) does not share entries */
    struct bgw_auth_policy cfg2 = policy_cfg(algs_hs, 1);
    cfg2.issuer = "https://other.test";
    char err[128];
    struct bgw_jwt_policy *p2 = bgw_jwt_policy_compile(&cfg2, NULL, err, sizeof err);
    ck_assert_int_eq(check_at(p, c, t, NOW), BGW_JWT_OK);
    ck_assert_int_eq(check_at(p2, c, t, NOW), BGW_JWT_BAD_ISSUER);
    /* refused tokens are never cached */
    char *bad = hs("{\"iss\":\"https://issuer.test\",\"aud\":\"nope\"}");
    ck_assert_int_eq(check_at(p, c, bad, NOW), BGW_JWT_BAD_AUDIENCE);
    ck_assert_int_eq(check_at(p, c, bad, NOW), BGW_JWT_BAD_AUDIENCE);
    /* a token that differs in one byte is not a hit */
    t[strlen(t) - 1] ^= 1;
    ck_assert_int_ne(check_at(p, c, t, NOW), BGW_JWT_OK);
    free(t), free(bad);
    bgw_jwt_policy_free(p2);
    bgw_jwt_cache_free(c);
    bgw_jwt_policy_free(p);
}
END_TEST

START_TEST(forwarded_claim_headers)
{
    struct bgw_auth_policy cfg;
    struct bgw_jwt_policy *p = compile(algs_hs, 1, &cfg);
    struct bgw_jwt_cache *c = bgw_jwt_cache_new(0);
    struct bgw_jwt_verdict v;
    char *t = hs(claims("\"scope\":\" read \",\"roles\":[\"a\",\"b\"]"));
    for (int i = 0; i < 2; i++) {                                     /* computed, then from the cache */
        ck_assert_int_eq(bgw_jwt_check(p, c, t, strlen(t), NOW, &v), BGW_JWT_OK);
        ck_assert_str_eq(v.add_headers, "x-user-id: u1\r\nx-scope: read\r\nx-roles: [\"a\",\"b\"]\r\n");
        ck_assert_uint_eq(v.add_headers_len, strlen(v.add_headers));
    }
    free(t);
    t = hs("{\"iss\":\"https://issuer.test\",\"aud\":\"api\",\"sub\":42,\"scope\":\"a\\r\\nx-admin: 1\","
           "\"roles\":null}");                                          /* CRLF: not forwarded */
    ck_assert_int_eq(bgw_jwt_check(p, NULL, t, strlen(t), NOW, &v), BGW_JWT_OK);
    ck_assert_str_eq(v.add_headers, "x-user-id: 42\r\n");
    free(t);
    bgw_jwt_cache_free(c);
    bgw_jwt_policy_free(p);
}
END_TEST

START_TEST(kept_claims_for_rate_limits)
{
    struct bgw_auth_policy cfg;
    struct bgw_jwt_policy *p = compile(algs_hs, 1, &cfg);
    struct bgw_jwt_cache *c = bgw_jwt_cache_new(0);
    struct bgw_jwt_verdict v;
    size_t n;
    char *t = hs(claims("\"tenant\":\"t-9\",\"n\":12"));
    ck_assert_int_eq(bgw_jwt_check(p, c, t, strlen(t), NOW, &v), BGW_JWT_OK);    /* cached without kept claims */
    ck_assert_uint_eq(v.claims_len, 0);
    ck_assert_int_eq(bgw_jwt_policy_keep_claim(p, "tenant"), 0);
    ck_assert_int_eq(bgw_jwt_policy_keep_claim(p, "n"), 0);
    ck_assert_int_eq(bgw_jwt_policy_keep_claim(p, "absent"), 0);
    ck_assert_int_eq(bgw_jwt_policy_keep_claim(p, "tenant"), 0);                 /* once */
    for (int i = 0; i < 2; i++) {                  /* computed (new fingerprint: not the old entry), then cached */
        ck_assert_int_eq(bgw_jwt_check(p, c, t, strlen(t), NOW, &v), BGW_JWT_OK);
        const char *x = bgw_jwt_claim_find(v.claims, v.claims_len, "tenant", 6, &n);
        ck_assert_ptr_nonnull(x);
        ck_assert_int_eq((int)n, 3);
        ck_assert(memcmp(x, "t-9", 3) == 0);
        x = bgw_jwt_claim_find(v.claims, v.claims_len, "n", 1, &n);
        ck_assert_ptr_nonnull(x);
        ck_assert(n == 2 && memcmp(x, "12", 2) == 0);
        ck_assert_ptr_null(bgw_jwt_claim_find(v.claims, v.claims_len, "absent", 6, &n));
        ck_assert_ptr_null(bgw_jwt_claim_find(v.claims, v.claims_len, "tenan", 5, &n));
    }
    uint64_t hits, misses;
    bgw_jwt_cache_stats(c, &hits, &misses);
    ck_assert_uint_eq(hits, 1);
    static const char *more[] = {"c4", "c5", "c6", "c7", "c8", "c9"};
    for (int i = 0; i < BGW_JWT_MAX_KEPT_CLAIMS - 3; i++) ck_assert_int_eq(bgw_jwt_policy_keep_claim(p, more[i]), 0);
    ck_assert_int_eq(bgw_jwt_policy_keep_claim(p, more[5]), -1);                  /* over the bound */
    free(t);
    bgw_jwt_cache_free(c);
    bgw_jwt_policy_free(p);
}
END_TEST

static void add_header(struct bgw_http_head *h, const char *name, const char *value)
{
    struct bgw_http_header *x = &h->headers[h->n_headers++];
    x->name = name;
    x->name_len = (uint32_t)strlen(name);
    x->value = value;
    x->value_len = (uint32_t)strlen(value);
}

START_TEST(request_strips_claim_headers_whatever_the_outcome)
{
    struct bgw_auth_policy cfg;
    struct bgw_jwt_policy *p = compile(algs_hs, 1, &cfg);
    struct bgw_jwt_cache *c = NULL;
    struct bgw_jwt_verdict v;
    static struct bgw_http_head h;
    char *t = hs(claims(NULL));
    char authz[4096];
    snprintf(authz, sizeof authz, "bearer   %s", t);
    memset(&h, 0, sizeof h);
    add_header(&h, "X-User-Id", "admin");
    add_header(&h, "Authorization", authz);
    add_header(&h, "x-scope", "all");
    add_header(&h, "Accept", "*/*");
    ck_assert_int_eq(bgw_jwt_auth_request(p, &c, &h, NOW, &v), BGW_JWT_OK);
    ck_assert_int_eq(h.headers[0].hop, 1);
    ck_assert_int_eq(h.headers[1].hop, 0);
    ck_assert_int_eq(h.headers[2].hop, 1);
    ck_assert_int_eq(h.headers[3].hop, 0);
    ck_assert_ptr_nonnull(c);
    /* refused: still stripped */
    memset(&h, 0, sizeof h);
    add_header(&h, "x-user-id", "admin");
    ck_assert_int_eq(bgw_jwt_auth_request(p, &c, &h, NOW, &v), BGW_JWT_MISSING);
    ck_assert_int_eq(h.headers[0].hop, 1);
    add_header(&h, "Authorization", "Basic YTpi");
    ck_assert_int_eq(bgw_jwt_auth_request(p, &c, &h, NOW, &v), BGW_JWT_MISSING);
    add_header(&h, "authorization", authz);
    ck_assert_int_eq(bgw_jwt_auth_request(p, &c, &h, NOW, &v), BGW_JWT_MALFORMED);   /* two of them */
    free(t);
    bgw_jwt_cache_free(c);
    bgw_jwt_policy_free(p);
}
END_TEST

START_TEST(reasons_are_a_small_fixed_set)
{
    const char *want[] = {"ok", "missing", "too_large", "malformed", "bad_alg", "unknown_kid", "bad_signature",
                          "expired", "not_yet_valid", "bad_issuer", "bad_audience"};
    for (int r = BGW_JWT_OK; r <= BGW_JWT_BAD_AUDIENCE; r++) {
        ck_assert_str_eq(bgw_jwt_reason((enum bgw_jwt_result)r), want[r]);
        ck_assert_ptr_nonnull(strstr(bgw_jwt_www_authenticate((enum bgw_jwt_result)r), "Bearer"));
    }
    ck_assert_ptr_null(strstr(bgw_jwt_www_authenticate(BGW_JWT_MISSING), "error="));
    ck_assert_ptr_nonnull(strstr(bgw_jwt_www_authenticate(BGW_JWT_EXPIRED), "error=\"invalid_token\""));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jwt_auth");
    TCase *tc = tcase_create("policy");
    tcase_add_unchecked_fixture(tc, setup, teardown);   /* one RSA key for the suite */
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, hs256_and_rs256_accepted);
    tcase_add_test(tc, alg_pinning);
    tcase_add_test(tc, kid_lookup);
    tcase_add_test(tc, time_bounds_with_skew);
    tcase_add_test(tc, issuer_and_audience);
    tcase_add_test(tc, malformed_tokens);
    tcase_add_test(tc, cache_hits_until_exp);
    tcase_add_test(tc, forwarded_claim_headers);
    tcase_add_test(tc, request_strips_claim_headers_whatever_the_outcome);
    tcase_add_test(tc, reasons_are_a_small_fixed_set);
    tcase_add_test(tc, kept_claims_for_rate_limits);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
