/* test_cors.c - the CORS policy module: preflight classification, the 204 headers, response headers,
 * wildcards and the headers the policy owns. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cors.h"

static char *origins[] = {"https://app.example.com", "http://localhost:3000"};
static char *methods[] = {"GET", "PUT", "DELETE"};
static char *headers[] = {"authorization", "x-trace"};
static char *expose[] = {"x-request-id", "etag"};
static char *star[] = {"*"};

static struct bgw_http_head g_head;

static void head(const char *method)
{
    memset(&g_head, 0, sizeof g_head);
    g_head.method = method;
    g_head.method_len = (uint32_t)strlen(method);
}

static void hdr(const char *name, const char *value)
{
    struct bgw_http_header *x = &g_head.headers[g_head.n_headers++];
    x->name = name;
    x->name_len = (uint32_t)strlen(name);
    x->value = value;
    x->value_len = (uint32_t)strlen(value);
}

static struct bgw_cors strict_cfg(void)
{
    struct bgw_cors c = {origins, 2, methods, 3, headers, 2, expose, 2, 600, true};
    return c;
}

static struct bgw_cors_policy *compile(const struct bgw_cors *cfg)
{
    char err[128];
    struct bgw_cors_policy *p = bgw_cors_compile(cfg, err, sizeof err);
    ck_assert_ptr_nonnull(p);
    return p;
}

static enum bgw_cors_action preflight(const struct bgw_cors_policy *p, const char *origin, const char *method,
                                      const char *req_headers, struct bgw_cors_verdict *v)
{
    head("OPTIONS");
    hdr("Origin", origin);
    hdr("Access-Control-Request-Method", method);
    if (req_headers) hdr("Access-Control-Request-Headers", req_headers);
    return bgw_cors_request(p, &g_head, v);
}

START_TEST(allowed_preflight_headers)
{
    struct bgw_cors cfg = strict_cfg();
    struct bgw_cors_policy *p = compile(&cfg);
    struct bgw_cors_verdict v;
    char buf[1024];
    ck_assert_int_eq(preflight(p, "https://App.Example.com", "DELETE", "X-Trace,authorization", &v),
                     BGW_CORS_PREFLIGHT_OK);
    size_t n = bgw_cors_preflight_headers(&v, &g_head, buf, sizeof buf);
    buf[n] = 0;
    ck_assert_str_eq(buf, "Access-Control-Allow-Origin: https://app.example.com\r\n"
                          "Access-Control-Allow-Methods: GET, PUT, DELETE\r\n"
                          "Access-Control-Allow-Headers: authorization, x-trace\r\n"
                          "Access-Control-Max-Age: 600\r\n"
                          "Access-Control-Allow-Credentials: true\r\n"
                          "Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers\r\n");
    ck_assert_uint_eq(bgw_cors_preflight_headers(&v, &g_head, buf, 20), 0);   /* does not fit: nothing */
    /* safelisted methods and request headers are always allowed */
    ck_assert_int_eq(preflight(p, "http://localhost:3000", "POST", "accept, content-language", &v),
                     BGW_CORS_PREFLIGHT_OK);
    bgw_cors_free(p);
}
END_TEST

START_TEST(denied_preflights)
{
    struct bgw_cors cfg = strict_cfg();
    struct bgw_cors_policy *p = compile(&cfg);
    struct bgw_cors_verdict v;
    ck_assert_int_eq(preflight(p, "https://evil.test", "GET", NULL, &v), BGW_CORS_PREFLIGHT_DENIED);
    ck_assert_ptr_null(v.allow_origin);
    ck_assert_int_eq(preflight(p, "https://app.example.com.evil.test", "GET", NULL, &v), BGW_CORS_PREFLIGHT_DENIED);
    ck_assert_int_eq(preflight(p, "https://app.example.co", "GET", NULL, &v), BGW_CORS_PREFLIGHT_DENIED);
    ck_assert_int_eq(preflight(p, "null", "GET", NULL, &v), BGW_CORS_PREFLIGHT_DENIED);
    ck_assert_int_eq(preflight(p, "https://app.example.com", "PATCH", NULL, &v), BGW_CORS_PREFLIGHT_DENIED);
    ck_assert_ptr_null(v.allow_origin);                 /* a denied preflight grants nothing */
    ck_assert_int_eq(preflight(p, "https://app.example.com", "delete", NULL, &v), BGW_CORS_PREFLIGHT_DENIED);
    ck_assert_int_eq(preflight(p, "https://app.example.com", "", NULL, &v), BGW_CORS_PREFLIGHT_DENIED);
    ck_assert_int_eq(preflight(p, "https://app.example.com", "GET", "x-trace, x-other", &v),
                     BGW_CORS_PREFLIGHT_DENIED);
    bgw_cors_free(p);
}
END_TEST

START_TEST(not_a_preflight)
{
    struct bgw_cors cfg = strict_cfg();
    struct bgw_cors_policy *p = compile(&cfg);
    struct bgw_cors_verdict v;
    head("OPTIONS");                                   /* no Access-Control-Request-Method */
    hdr("Origin", "https://app.example.com");
    ck_assert_int_eq(bgw_cors_request(p, &g_head, &v), BGW_CORS_CONTINUE);
    ck_assert_str_eq(v.allow_origin, "https://app.example.com");
    head("GET");
    hdr("Origin", "https://app.example.com");
    hdr("Access-Control-Request-Method", "GET");      /* not OPTIONS */
    ck_assert_int_eq(bgw_cors_request(p, &g_head, &v), BGW_CORS_CONTINUE);
    ck_assert_int_eq(bgw_cors_request(NULL, &g_head, &v), BGW_CORS_CONTINUE);
    ck_assert_ptr_null(v.policy);
    bgw_cors_free(p);
}
END_TEST

START_TEST(response_headers)
{
    struct bgw_cors cfg = strict_cfg();
    struct bgw_cors_policy *p = compile(&cfg);
    struct bgw_cors_verdict v;
    char buf[1024];
    head("GET");
    hdr("Origin", "http://localhost:3000");
    bgw_cors_request(p, &g_head, &v);
    size_t n = bgw_cors_response_headers(&v, buf, sizeof buf);
    buf[n] = 0;
    ck_assert_str_eq(buf, "Access-Control-Allow-Origin: http://localhost:3000\r\n"
                          "Access-Control-Allow-Credentials: true\r\n"
                          "Access-Control-Expose-Headers: x-request-id, etag\r\n"
                          "Vary: Origin\r\n");
    ck_assert_uint_le(n, bgw_cors_response_headers_max(&v));
    head("GET");                                      /* no Origin: only Vary */
    bgw_cors_request(p, &g_head, &v);
    n = bgw_cors_response_headers(&v, buf, sizeof buf);
    buf[n] = 0;
    ck_assert_str_eq(buf, "Vary: Origin\r\n");
    v.policy = NULL;
    ck_assert_uint_eq(bgw_cors_response_headers(&v, buf, sizeof buf), 0);
    ck_assert_uint_eq(bgw_cors_response_headers_max(&v), 0);
    bgw_cors_free(p);
}
END_TEST

START_TEST(wildcards)
{
    struct bgw_cors cfg = {star, 1, star, 1, star, 1, NULL, 0, 0, false};
    struct bgw_cors_policy *p = compile(&cfg);
    struct bgw_cors_verdict v;
    char buf[1024];
    ck_assert_int_eq(preflight(p, "https://any.test", "PURGE", "x-a, x-b", &v), BGW_CORS_PREFLIGHT_OK);
    size_t n = bgw_cors_preflight_headers(&v, &g_head, buf, sizeof buf);
    buf[n] = 0;
    ck_assert_str_eq(buf, "Access-Control-Allow-Origin: *\r\n"
                          "Access-Control-Allow-Methods: PURGE\r\n"
                          "Access-Control-Allow-Headers: x-a, x-b\r\n"
                          "Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers\r\n");
    bgw_cors_free(p);
    /* "*" with credentials (refused by the validator): never answered with "*" */
    cfg.allow_credentials = true;
    p = compile(&cfg);
    ck_assert_int_eq(preflight(p, "https://any.test", "GET", NULL, &v), BGW_CORS_PREFLIGHT_DENIED);
    bgw_cors_free(p);
}
END_TEST

START_TEST(owned_headers)
{
    ck_assert(bgw_cors_owns_header("Access-Control-Allow-Origin", 27));
    ck_assert(bgw_cors_owns_header("access-control-allow-credentials", 32));
    ck_assert(bgw_cors_owns_header("ACCESS-CONTROL-EXPOSE-HEADERS", 29));
    ck_assert(!bgw_cors_owns_header("Vary", 4));
    ck_assert(!bgw_cors_owns_header("Access-Control-Allow-Originx", 28));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cors");
    TCase *tc = tcase_create("policy");
    tcase_add_test(tc, allowed_preflight_headers);
    tcase_add_test(tc, denied_preflights);
    tcase_add_test(tc, not_a_preflight);
    tcase_add_test(tc, response_headers);
    tcase_add_test(tc, wildcards);
    tcase_add_test(tc, owned_headers);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
