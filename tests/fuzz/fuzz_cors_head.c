/*
 * fuzz_cors_head.c - libFuzzer target for the policy header handling of the request path: a request head
 * parsed by the real codec (dataplane/http1.h), then the CORS policy (cors.h) and the JWT auth call
 * (jwt_auth.h) on it, for a strict and a wildcard CORS policy.
 *
 * Each run checks: an allowed preflight answer and the response headers are well-formed header lines
 * (no CR, LF or NUL inside a line, "Name: value"), fit the bounds the proxy reserves
 * (bgw_cors_response_headers_max), carry Vary; Access-Control-Allow-Origin is only ever "*" (wildcard
 * policy) or a listed origin; a preflight is OK only for OPTIONS with an Origin and a request method;
 * after the auth call no header named by forward_claims is left to be forwarded.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cors.h"
#include "http1.h"
#include "jwt_auth.h"

static char *origins[] = {"https://app.example.com", "http://localhost:3000"};
static char *methods[] = {"GET", "PUT", "DELETE"};
static char *hdrs[] = {"authorization", "x-trace"};
static char *expose[] = {"x-request-id"};
static char *star[] = {"*"};
static struct bgw_cors g_strict = {origins, 2, methods, 3, hdrs, 2, expose, 1, 600, true};
static struct bgw_cors g_wild = {star, 1, star, 1, star, 1, NULL, 0, 0, false};
static struct bgw_cors_policy *g_p[2];
static struct bgw_jwt_policy *g_auth;
static struct bgw_jwt_cache *g_cache;
static char *algs[] = {"RS256"};
static char *names[] = {"sub", "email"};
static char *claim_headers[] = {"x-user-id", "x-email"};
static struct bgw_auth_policy g_cfg = {.name = "p", .issuer = "i", .algorithms = algs, .n_algorithms = 1,
                                       .jwks_json = "{\"keys\":[]}", .forward_claim_names = names,
                                       .forward_claim_headers = claim_headers, .n_forward_claims = 2};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char err[128];
    g_p[0] = bgw_cors_compile(&g_strict, err, sizeof err);
    g_p[1] = bgw_cors_compile(&g_wild, err, sizeof err);
    g_auth = bgw_jwt_policy_compile(&g_cfg, NULL, err, sizeof err);
    if (!g_p[0] || !g_p[1] || !g_auth) abort();
    return 0;
}

static void check_lines(const char *h, size_t n)
{
    size_t i = 0;
    bool vary = false;
    while (i < n) {
        const char *eol = memmem(h + i, n - i, "\r\n", 2);
        if (!eol) abort();
        const char *colon = memchr(h + i, ':', (size_t)(eol - h - i));
        if (!colon || colon == h + i || colon[1] != ' ') abort();
        for (const char *p = h + i; p < eol; p++)
            if (*p == '\r' || *p == '\n' || *p == 0) abort();
        if (strncmp(h + i, "Vary: ", 6) == 0) vary = true;
        if (strncmp(h + i, "Access-Control-Allow-Origin: ", 29) == 0) {
            size_t vl = (size_t)(eol - h - i) - 29;
            const char *v = h + i + 29;
            bool listed = (vl == 1 && v[0] == '*');
            for (int k = 0; k < 2; k++)
                if (strlen(origins[k]) == vl && memcmp(origins[k], v, vl) == 0) listed = true;
            if (!listed) abort();
        }
        i = (size_t)(eol - h) + 2;
    }
    if (n && !vary) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct bgw_http_head head;
    struct bgw_http1 codec;
    const char *reason;
    memset(&codec, 0, sizeof codec);
    bgw_http1_init(&codec, false);
    if (bgw_http1_parse_head(&codec, (const char *)data, size, &head, &reason) <= 0) return 0;

    for (int k = 0; k < 2; k++) {
        struct bgw_cors_verdict v;
        enum bgw_cors_action a = bgw_cors_request(g_p[k], &head, &v);
        bool options = head.method_len == 7 && memcmp(head.method, "OPTIONS", 7) == 0;
        bool has_origin = bgw_http_head_find(&head, "origin", 6) >= 0;
        bool has_acrm = bgw_http_head_find(&head, "access-control-request-method", 29) >= 0;
        if (a != BGW_CORS_CONTINUE && !(options && has_origin && has_acrm)) abort();
        char buf[8192];
        if (a == BGW_CORS_PREFLIGHT_OK) {
            if (!v.allow_origin) abort();
            size_t n = bgw_cors_preflight_headers(&v, &head, buf, sizeof buf);
            check_lines(buf, n);
        }
        size_t n = bgw_cors_response_headers(&v, buf, sizeof buf);
        if (n == 0 || n > bgw_cors_response_headers_max(&v)) abort();
        check_lines(buf, n);
    }

    struct bgw_jwt_verdict jv;
    enum bgw_jwt_result r = bgw_jwt_auth_request(g_auth, &g_cache, &head, 1700000000LL, &jv);
    if (r == BGW_JWT_OK) abort();                    /* the policy has no key */
    for (uint32_t i = 0; i < head.n_headers; i++) {
        const struct bgw_http_header *x = &head.headers[i];
        for (int c = 0; c < 2; c++)
            if (!x->hop && x->name_len == strlen(claim_headers[c]) &&
                strncasecmp(x->name, claim_headers[c], x->name_len) == 0)
                abort();                                 /* a client copy would be forwarded */
    }
    return 0;
}
