/*
 * test_admin_api.c - unit tests of the admin API's request handling (controlplane/admin_api.h) without
 * HTTP: routing, methods and Allow, the bearer token, Content-Type, size limits, status codes, ETags and
 * error bodies, over an in-memory store.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api.h"

static struct bgw_store *g_store;
static struct bgw_admin_api *g_api;

static void setup(void)
{
    g_store = bgw_store_open(NULL, NULL);
    g_api = bgw_admin_api_new(g_store, NULL, "s3cret");
    ck_assert_ptr_nonnull(g_api);
}

static void teardown(void)
{
    bgw_admin_api_free(g_api);
    bgw_store_close(g_store);
}

/* One request with the right token and a JSON content type; rp must be freed. */
static void call(const char *method, const char *path, const char *body, struct bgw_admin_reply *rp)
{
    struct bgw_admin_request rq = {
        .method = method, .path = path, .authorization = "Bearer s3cret",
        .content_type = "application/json; charset=utf-8", .body = body, .body_len = body ? strlen(body) : 0,
    };
    bgw_admin_api_handle(g_api, &rq, rp);
}

static json_t *reply_json(const struct bgw_admin_reply *rp)
{
    json_error_t jerr;
    json_t *v = json_loadb(rp->body, rp->len, 0, &jerr);

    ck_assert_msg(v != NULL, "reply is not JSON: %.*s", (int)rp->len, rp->body ? rp->body : "");
    return v;
}

static const char *error_code(const struct bgw_admin_reply *rp)
{
    static char buf[64];
    json_t *v = reply_json(rp);

    snprintf(buf, sizeof buf, "%s", json_string_value(json_object_get(json_object_get(v, "error"), "code")));
    json_decref(v);
    return buf;
}

START_TEST(test_health_without_token)
{
    struct bgw_admin_request rq = {.method = "GET", .path = "/healthz"};
    struct bgw_admin_reply rp;

    bgw_admin_api_handle(g_api, &rq, &rp);
    ck_assert_uint_eq(rp.status, 200);
    bgw_admin_reply_free(&rp);
    rq.path = "/metrics";
    bgw_admin_api_handle(g_api, &rq, &rp);
    ck_assert_uint_eq(rp.status, 200);
    ck_assert_ptr_nonnull(strstr(rp.body, "process_open_fds"));
    bgw_admin_reply_free(&rp);
    rq.path = "/readyz";
    bgw_admin_api_handle(g_api, &rq, &rp);
    ck_assert_uint_eq(rp.status, 200);
    bgw_admin_reply_free(&rp);
}
END_TEST

START_TEST(test_token)
{
    struct bgw_admin_request rq = {.method = "GET", .path = "/v1/routes"};
    struct bgw_admin_reply rp;
    const char *bad[] = {NULL, "Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "Bearer ", "bearer S3CRET"};

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rq.authorization = bad[i];
        bgw_admin_api_handle(g_api, &rq, &rp);
        ck_assert_msg(rp.status == 401, "%s: %u", bad[i] ? bad[i] : "(none)", rp.status);
        ck_assert(rp.www_authenticate);
        ck_assert_str_eq(error_code(&rp), "unauthenticated");
        bgw_admin_reply_free(&rp);
    }
    rq.path = "/v1/nothing-here";          /* no token: 401 before 404 */
    rq.authorization = NULL;
    bgw_admin_api_handle(g_api, &rq, &rp);
    ck_assert_uint_eq(rp.status, 401);
    bgw_admin_reply_free(&rp);
    rq.path = "/v1/routes";
    rq.authorization = "bearer s3cret";
    bgw_admin_api_handle(g_api, &rq, &rp);
    ck_assert_uint_eq(rp.status, 200);
    bgw_admin_reply_free(&rp);
}
END_TEST

START_TEST(test_routing_and_methods)
{
    struct bgw_admin_reply rp;
    static const struct { const char *method, *path; unsigned status; const char *allow; } cases[] = {
        {"GET", "/v1/widgets", 404, NULL},
        {"GET", "/v1/routes/a/b", 404, NULL},
        {"GET", "/v1/routes/", 404, NULL},
        {"GET", "/v1//routes", 404, NULL},
        {"GET", "/nothing", 404, NULL},
        {"POST", "/v1/routes", 405, "GET, HEAD"},
        {"DELETE", "/v1/config", 405, "GET, HEAD"},
        {"GET", "/v1/apply", 405, "POST"},
        {"POST", "/v1/routes/x", 405, "GET, HEAD, PUT, DELETE"},
        {"PATCH", "/v1/routes/x", 405, "GET, HEAD, PUT, DELETE"},
        {"PUT", "/healthz", 405, "GET, HEAD"},
        {"GET", "/v1/routes/a%2Fb", 400, NULL},
        {"GET", "/v1/routes/a%00", 400, NULL},
        {"GET", "/v1/services/x/endpoints", 404, NULL},
        {"GET", "/v1/routes/x/endpoints", 404, NULL},
        {"GET", "/v1/dataplanes", 200, NULL},
        {"GET", "/v1/config", 200, NULL},
        {"HEAD", "/v1/services", 200, NULL},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        call(cases[i].method, cases[i].path, NULL, &rp);
        ck_assert_msg(rp.status == cases[i].status, "%s %s: %u", cases[i].method, cases[i].path, rp.status);
        if (cases[i].allow)
            ck_assert_str_eq(rp.allow, cases[i].allow);
        else
            ck_assert_ptr_null(rp.allow);
        bgw_admin_reply_free(&rp);
    }
}
END_TEST

START_TEST(test_content_type_and_size)
{
    struct bgw_admin_request rq = {.method = "PUT", .path = "/v1/services/a", .authorization = "Bearer s3cret",
                                   .body = "{}", .body_len = 2};
    struct bgw_admin_reply rp;
    const char *bad[] = {NULL, "text/plain", "application/jsonx", "application/x-www-form-urlencoded"};

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rq.content_type = bad[i];
        ck_assert(bgw_admin_api_precheck(g_api, &rq, 2, &rp));
        ck_assert_uint_eq(rp.status, 415);
        bgw_admin_reply_free(&rp);
    }
    rq.content_type = "Application/JSON";
    ck_assert(!bgw_admin_api_precheck(g_api, &rq, 2, &rp));
    ck_assert(!bgw_admin_api_precheck(g_api, &rq, BGW_ADMIN_BODY_MAX, &rp));
    ck_assert(bgw_admin_api_precheck(g_api, &rq, BGW_ADMIN_BODY_MAX + 1, &rp));
    ck_assert_uint_eq(rp.status, 413);
    ck_assert_str_eq(error_code(&rp), "payload_too_large");
    bgw_admin_reply_free(&rp);
    ck_assert_uint_eq(bgw_store_version(g_store), 0);
}
END_TEST

START_TEST(test_crud)
{
    struct bgw_admin_reply rp;
    json_t *v;

    call("PUT", "/v1/services/orders", "{\"endpoints\": [\"127.0.0.1:1\"]}", &rp);
    ck_assert_uint_eq(rp.status, 201);
    ck_assert_str_eq(rp.etag, "\"1\"");
    ck_assert_str_eq(rp.location, "/v1/services/orders");
    bgw_admin_reply_free(&rp);
    call("PUT", "/v1/services/orders", "{\"name\": \"orders\", \"endpoints\": [\"127.0.0.1:2\"]}", &rp);
    ck_assert_uint_eq(rp.status, 200);
    ck_assert_str_eq(rp.etag, "\"2\"");
    bgw_admin_reply_free(&rp);
    call("GET", "/v1/services/orders", NULL, &rp);
    ck_assert_uint_eq(rp.status, 200);
    ck_assert_str_eq(rp.etag, "\"2\"");
    v = reply_json(&rp);
    ck_assert_str_eq(json_string_value(json_object_get(v, "revision")), "2");
    json_decref(v);
    bgw_admin_reply_free(&rp);
    call("GET", "/v1/services", NULL, &rp);
    v = reply_json(&rp);
    ck_assert_str_eq(json_string_value(json_object_get(v, "version")), "2");
    ck_assert_uint_eq(json_array_size(json_object_get(v, "items")), 1);
    json_decref(v);
    bgw_admin_reply_free(&rp);
    call("GET", "/v1/services/orders/endpoints", NULL, &rp);
    ck_assert_uint_eq(rp.status, 200);
    bgw_admin_reply_free(&rp);
    call("PUT", "/v1/routes/r", "{\"match\": {\"path_prefix\": \"/\"}, \"service\": \"orders\"}", &rp);
    ck_assert_uint_eq(rp.status, 201);
    bgw_admin_reply_free(&rp);
    call("DELETE", "/v1/services/orders", NULL, &rp);
    ck_assert_uint_eq(rp.status, 409);
    ck_assert_str_eq(error_code(&rp), "conflict");
    bgw_admin_reply_free(&rp);
    call("DELETE", "/v1/routes/r", NULL, &rp);
    ck_assert_uint_eq(rp.status, 204);
    ck_assert_uint_eq(rp.len, 0);
    bgw_admin_reply_free(&rp);
    call("DELETE", "/v1/routes/r", NULL, &rp);
    ck_assert_uint_eq(rp.status, 404);
    bgw_admin_reply_free(&rp);
    call("GET", "/v1/routes/r", NULL, &rp);
    ck_assert_uint_eq(rp.status, 404);
    ck_assert_str_eq(error_code(&rp), "not_found");
    bgw_admin_reply_free(&rp);
}
END_TEST

START_TEST(test_bad_bodies)
{
    struct bgw_admin_reply rp;
    static const struct { const char *method, *path, *body, *field; } cases[] = {
        {"PUT", "/v1/services/a", "{", ""},
        {"PUT", "/v1/services/a", "", ""},
        {"PUT", "/v1/services/a", "{\"endpoints\": [], \"endpoints\": []}", ""},
        {"PUT", "/v1/services/a", "[]", ""},
        {"PUT", "/v1/services/a", "{\"endpoints\": [\"nohost\"]}", "endpoints[0]"},
        {"PUT", "/v1/services/a", "{\"name\": \"b\", \"endpoints\": []}", "name"},
        {"PUT", "/v1/routes/r", "{\"match\": {\"path_prefix\": \"/\"}, \"service\": \"ghost\"}", "service"},
        {"POST", "/v1/apply", "{\"routes\": [{\"name\": \"r\", \"match\": {}, \"service\": \"s\"}]}", "routes[0].match"},
        {"POST", "/v1/apply", "\"x\"", ""},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        call(cases[i].method, cases[i].path, cases[i].body, &rp);
        ck_assert_msg(rp.status == 400, "%s: %u", cases[i].body, rp.status);
        json_t *v = reply_json(&rp), *e = json_object_get(v, "error");
        ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "invalid_argument");
        ck_assert_msg(strcmp(json_string_value(json_object_get(e, "field")), cases[i].field) == 0, "%s: field %s",
                      cases[i].body, json_string_value(json_object_get(e, "field")));
        ck_assert_ptr_nonnull(json_string_value(json_object_get(e, "message")));
        json_decref(v);
        bgw_admin_reply_free(&rp);
    }
    ck_assert_uint_eq(bgw_store_version(g_store), 0);
}
END_TEST

START_TEST(test_metrics_count)
{
    struct bgw_admin_reply rp;

    bgw_admin_api_count(g_api, "GET", 200);
    bgw_admin_api_count(g_api, "GET", 200);
    bgw_admin_api_count(g_api, "PATCH", 405);
    call("GET", "/metrics", NULL, &rp);
    ck_assert_ptr_nonnull(strstr(rp.body, "bgw_admin_requests_total{method=\"GET\",code=\"200\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(rp.body, "bgw_admin_requests_total{method=\"other\",code=\"405\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(rp.body, "# TYPE bgw_admin_requests_total counter\n"));
    bgw_admin_reply_free(&rp);
}
END_TEST

static Suite *admin_suite(void)
{
    Suite *s = suite_create("admin_api");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_health_without_token);
    tcase_add_test(tc, test_token);
    tcase_add_test(tc, test_routing_and_methods);
    tcase_add_test(tc, test_content_type_and_size);
    tcase_add_test(tc, test_crud);
    tcase_add_test(tc, test_bad_bodies);
    tcase_add_test(tc, test_metrics_count);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(admin_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
