/*
 * test_config_pb.c - the config document <-> Config message conversion: the contract's example survives
 * JSON -> message -> wire -> message -> JSON -> validator; optional zeros stay zeros and absent numbers
 * take the validator's defaults; the proto3 readings of absent strings and booleans; errors name fields.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_pb.h"

static const char *example =
    "{\"services\": [{\"name\": \"orders\", \"endpoints\": [\"127.0.0.1:9001\", {\"address\": \"127.0.0.1:9002\", \"healthy\": false}],"
    " \"lb\": \"least_request\", \"connect_timeout_ms\": 1000, \"max_connections\": 100,"
    " \"health_check\": {\"path\": \"/healthz\", \"interval_ms\": 5000, \"timeout_ms\": 1000, \"healthy_threshold\": 2, \"unhealthy_threshold\": 3},"
    " \"circuit_breaker\": {\"max_pending_requests\": 0, \"max_requests\": 1024, \"max_retries\": 0},"
    " \"outlier_detection\": {\"consecutive_5xx\": 5, \"base_ejection_ms\": 30000, \"max_ejection_percent\": 0}},"
    " {\"name\": \"k8s\", \"kubernetes\": {\"namespace\": \"shop\", \"service\": \"orders\", \"port\": \"http\"}}],"
    " \"routes\": [{\"name\": \"orders-api\", \"match\": {\"path_prefix\": \"/api/orders\", \"methods\": [\"GET\", \"POST\"],"
    " \"hosts\": [\"api.example.com\"], \"headers\": [{\"name\": \"x-canary\", \"exact\": \"\"}]}, \"service\": \"orders\","
    " \"rewrite_prefix\": \"/\", \"timeout_ms\": 0, \"retry\": {\"attempts\": 0, \"on\": [\"connect-failure\", \"5xx\"], \"per_try_timeout_ms\": 5000},"
    " \"rate_limit\": \"per-client\", \"auth\": \"users-jwt\", \"max_body_bytes\": 0,"
    " \"cors\": {\"allow_origins\": [\"https://app.example.com\"], \"allow_methods\": [\"GET\"], \"max_age_s\": 0, \"allow_credentials\": true}},"
    " {\"name\": \"plain\", \"match\": {\"path_exact\": \"/x\"}, \"service\": \"orders\"}],"
    " \"rate_limits\": [{\"name\": \"per-client\", \"requests\": 100, \"per\": \"second\", \"burst\": 0, \"key\": \"client_ip\", \"scope\": \"local\"}],"
    " \"auth_policies\": [{\"name\": \"users-jwt\", \"issuer\": \"https://auth.example.com\", \"audiences\": [\"api\"],"
    " \"algorithms\": [\"RS256\"], \"jwks\": {\"keys\": []}, \"jwks_uri\": \"https://auth.example.com/jwks\","
    " \"forward_claims\": {\"sub\": \"x-user-id\", \"email\": \"x-user-email\"}, \"clock_skew_s\": 0}]}";

/* Empty arrays mean the same as absent ones (the message cannot tell them apart): drop them. */
static void drop_empty_arrays(json_t *v)
{
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) drop_empty_arrays(json_array_get(v, i));
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, x) {
            if (json_is_array(x) && json_array_size(x) == 0) json_object_del(v, k);
            else if (strcmp(k, "jwks") != 0) drop_empty_arrays(x);
        }
    }
}

/* JSON text -> message -> bytes -> message -> JSON; the returned document is the receiver's. */
static json_t *through_wire(const char *text)
{
    json_error_t je;
    json_t *doc = json_loads(text, 0, &je);
    ck_assert_msg(doc != NULL, "bad test JSON: %s", je.text);
    Bgw__V1__Config *cfg = NULL;
    char err[BGW_ERR_MAX];
    ck_assert_msg(bgw_config_pb_from_json(doc, &cfg, err, sizeof err) == 0, "%s", err);
    json_decref(doc);
    size_t len = bgw__v1__config__get_packed_size(cfg);
    uint8_t *buf = malloc(len + 1);
    bgw__v1__config__pack(cfg, buf);
    bgw_config_pb_free(cfg);
    Bgw__V1__Config *back = bgw__v1__config__unpack(NULL, len, buf);
    free(buf);
    ck_assert_ptr_nonnull(back);
    json_t *out = bgw_config_pb_to_json(back, err, sizeof err);
    ck_assert_msg(out != NULL, "%s", err);
    bgw__v1__config__free_unpacked(back, NULL);
    return out;
}

START_TEST(example_round_trip_validates)
{
    json_t *doc = through_wire(example);
    struct bgw_config *cfg = NULL;
    char err[BGW_ERR_MAX];
    ck_assert_msg(bgw_config_from_json(doc, &cfg, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(cfg->n_services, 2);
    ck_assert_uint_eq(cfg->services[0].n_endpoints, 2);
    ck_assert(cfg->services[0].endpoints[0].healthy);
    ck_assert(!cfg->services[0].endpoints[1].healthy);
    ck_assert_int_eq(cfg->services[0].lb, BGW_LB_LEAST_REQUEST);
    ck_assert(cfg->services[1].has_kubernetes);
    ck_assert_str_eq(cfg->services[1].kubernetes.port, "http");
    /* optional zeros stay zeros */
    ck_assert_uint_eq(cfg->services[0].circuit_breaker.max_pending_requests, 0);
    ck_assert_uint_eq(cfg->services[0].circuit_breaker.max_retries, 0);
    ck_assert_uint_eq(cfg->services[0].outlier_detection.max_ejection_percent, 0);
    ck_assert_uint_eq(cfg->routes[0].timeout_ms, 0);
    ck_assert_uint_eq(cfg->routes[0].retry.attempts, 0);
    ck_assert(cfg->routes[0].has_max_body_bytes);
    ck_assert_uint_eq(cfg->routes[0].max_body_bytes, 0);
    ck_assert_uint_eq(cfg->routes[0].cors.max_age_s, 0);
    ck_assert_uint_eq(cfg->rate_limits[0].burst, 0);
    ck_assert_uint_eq(cfg->auth_policies[0].clock_skew_s, 0);
    ck_assert_str_eq(cfg->routes[0].match.headers[0].exact, "");
    ck_assert_uint_eq(cfg->auth_policies[0].n_forward_claims, 2);
    ck_assert_str_eq(cfg->auth_policies[0].jwks_json, "{\"keys\":[]}");
    /* absent numbers take the defaults */
    ck_assert_uint_eq(cfg->routes[1].timeout_ms, BGW_DEFAULT_ROUTE_TIMEOUT_MS);
    ck_assert(!cfg->routes[1].has_max_body_bytes);
    ck_assert_uint_eq(cfg->services[1].connect_timeout_ms, BGW_DEFAULT_CONNECT_TIMEOUT_MS);
    bgw_config_free(cfg);
    json_decref(doc);
}
END_TEST

START_TEST(to_json_is_a_fixed_point)
{
    /* validated -> to_json (every default explicit) -> wire -> JSON gives the same document */
    struct bgw_config *cfg = NULL;
    char err[BGW_ERR_MAX];
    ck_assert_msg(bgw_config_parse(example, strlen(example), &cfg, err, sizeof err) == 0, "%s", err);
    json_t *canon = bgw_config_to_json(cfg);
    bgw_config_free(cfg);
    char *text = json_dumps(canon, JSON_COMPACT);
    json_t *back = through_wire(text);
    free(text);
    json_object_del(canon, "version");
    drop_empty_arrays(canon);
    ck_assert_msg(json_equal(canon, back), "differs:\n%s\n%s", json_dumps(canon, JSON_COMPACT), json_dumps(back, JSON_COMPACT));
    json_decref(canon);
    json_decref(back);
}
END_TEST

START_TEST(absent_strings_and_booleans_read_as_proto3)
{
    Bgw__V1__Config c = BGW__V1__CONFIG__INIT;
    Bgw__V1__Service s = BGW__V1__SERVICE__INIT;
    Bgw__V1__Endpoint e = BGW__V1__ENDPOINT__INIT;
    Bgw__V1__Kubernetes k = BGW__V1__KUBERNETES__INIT;
    Bgw__V1__Service *sp = &s;
    Bgw__V1__Endpoint *ep = &e;
    s.name = "svc";
    s.lb = "";                 /* empty: absent, the default applies */
    e.address = "10.0.0.1:80"; /* healthy not set: false, as proto3 reads it */
    s.n_endpoints = 1;
    s.endpoints = &ep;
    k.namespace_ = "ns";
    k.service = "svc";
    k.port = "80";
    s.kubernetes = &k;         /* with resolved endpoints: dropped */
    c.n_services = 1;
    c.services = &sp;
    char err[BGW_ERR_MAX];
    json_t *doc = bgw_config_pb_to_json(&c, err, sizeof err);
    ck_assert_msg(doc != NULL, "%s", err);
    json_t *svc = json_array_get(json_object_get(doc, "services"), 0);
    ck_assert_ptr_null(json_object_get(svc, "lb"));
    ck_assert_ptr_null(json_object_get(svc, "kubernetes"));
    json_t *ep0 = json_array_get(json_object_get(svc, "endpoints"), 0);
    ck_assert(json_is_false(json_object_get(ep0, "healthy")));
    struct bgw_config *cfg = NULL;
    ck_assert_msg(bgw_config_from_json(doc, &cfg, err, sizeof err) == 0, "%s", err);
    bgw_config_free(cfg);
    json_decref(doc);
}
END_TEST

START_TEST(bad_jwks_names_the_field)
{
    Bgw__V1__Config c = BGW__V1__CONFIG__INIT;
    Bgw__V1__AuthPolicy a = BGW__V1__AUTH_POLICY__INIT;
    Bgw__V1__AuthPolicy *ap = &a;
    a.name = "p";
    a.jwks = "{not json";
    c.n_auth_policies = 1;
    c.auth_policies = &ap;
    char err[BGW_ERR_MAX];
    ck_assert_ptr_null(bgw_config_pb_to_json(&c, err, sizeof err));
    ck_assert_msg(strncmp(err, "auth_policies[0].jwks: ", 23) == 0, "%s", err);
}
END_TEST

START_TEST(wrong_types_name_the_field)
{
    const char *cases[][2] = {
        {"{\"routes\": [{\"name\": \"r\", \"timeout_ms\": -1}]}", "routes[0].timeout_ms: "},
        {"{\"routes\": [{}, {\"retry\": {\"attempts\": 4294967296}}]}", "routes[1].retry.attempts: "},
        {"{\"services\": [{\"endpoints\": [7]}]}", "services[0].endpoints[0]: "},
        {"{\"auth_policies\": [{\"forward_claims\": {\"sub\": 1}}]}", "auth_policies[0].forward_claims.sub: "},
        {"{\"services\": {}}", "services: "},
        {"[]", "config: "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *doc = json_loads(cases[i][0], 0, NULL);
        ck_assert_ptr_nonnull(doc);
        Bgw__V1__Config *cfg = NULL;
        char err[BGW_ERR_MAX];
        ck_assert_int_eq(bgw_config_pb_from_json(doc, &cfg, err, sizeof err), -1);
        ck_assert_msg(strncmp(err, cases[i][1], strlen(cases[i][1])) == 0, "case %zu: %s", i, err);
        ck_assert_ptr_null(cfg);
        json_decref(doc);
    }
}
END_TEST

START_TEST(presence_on_the_wire)
{
    /* An optional zero is encoded (field present); an absent one is not. */
    json_t *doc = json_loads("{\"rate_limits\": [{\"name\": \"a\", \"requests\": 1, \"burst\": 0}, {\"name\": \"b\", \"requests\": 1}]}", 0, NULL);
    Bgw__V1__Config *cfg = NULL;
    char err[BGW_ERR_MAX];
    ck_assert_int_eq(bgw_config_pb_from_json(doc, &cfg, err, sizeof err), 0);
    ck_assert(cfg->rate_limits[0]->has_burst);
    ck_assert_uint_eq(cfg->rate_limits[0]->burst, 0);
    ck_assert(!cfg->rate_limits[1]->has_burst);
    size_t len = bgw__v1__config__get_packed_size(cfg);
    uint8_t *buf = malloc(len);
    bgw__v1__config__pack(cfg, buf);
    Bgw__V1__Config *back = bgw__v1__config__unpack(NULL, len, buf);
    ck_assert(back->rate_limits[0]->has_burst);
    ck_assert(!back->rate_limits[1]->has_burst);
    bgw__v1__config__free_unpacked(back, NULL);
    free(buf);
    bgw_config_pb_free(cfg);
    json_decref(doc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config_pb");
    TCase *tc = tcase_create("config_pb");
    tcase_add_test(tc, example_round_trip_validates);
    tcase_add_test(tc, to_json_is_a_fixed_point);
    tcase_add_test(tc, absent_strings_and_booleans_read_as_proto3);
    tcase_add_test(tc, bad_jwks_names_the_field);
    tcase_add_test(tc, wrong_types_name_the_field);
    tcase_add_test(tc, presence_on_the_wire);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
