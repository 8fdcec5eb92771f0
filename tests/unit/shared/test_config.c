/*
 * test_config.c - unit tests of the config model (shared/config.h): the contract's example document, the
 * defaults, the round trip through bgw_config_to_json(), host:port parsing, and one case per validation
 * rule asserting the exact error line, field path included.
 *
 * Documents in this file are written with single quotes for readability; q() turns them into JSON.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/* ---- helpers ---- */

/* s with every ' replaced by " (a static buffer: one document at a time). */
static const char *q(const char *s)
{
    static char buf[16384];
    size_t n = strlen(s);

    ck_assert_uint_lt(n, sizeof(buf));
    for (size_t i = 0; i <= n; i++)
        buf[i] = s[i] == '\'' ? '"' : s[i];
    return buf;
}

static struct bgw_config *parse_ok(const char *doc)
{
    struct bgw_config *cfg = NULL;
    char err[BGW_ERR_MAX] = "";
    const char *text = q(doc);

    ck_assert_msg(bgw_config_parse(text, strlen(text), &cfg, err, sizeof(err)) == 0, "%s: %s", doc, err);
    ck_assert_ptr_nonnull(cfg);
    return cfg;
}

/* Parses doc, which must fail; returns the error line (static). */
static const char *parse_err(const char *doc)
{
    static char err[BGW_ERR_MAX];
    struct bgw_config *cfg = NULL;
    const char *text = q(doc);

    err[0] = '\0';
    ck_assert_msg(bgw_config_parse(text, strlen(text), &cfg, err, sizeof(err)) == -1, "accepted: %s", doc);
    ck_assert_ptr_null(cfg);
    ck_assert_msg(strchr(err, '\n') == NULL, "error is not one line: %s", err);
    return err;
}

/* ---- documents ---- */

#define CONTRACT_SERVICE_HEAD                                                                              \
    "{'name': 'orders',"                                                                                   \
    " 'endpoints': ['127.0.0.1:9001', '127.0.0.1:9002'],"
#define CONTRACT_SERVICE_TAIL                                                                              \
    " 'lb': 'round_robin', 'connect_timeout_ms': 1000, 'max_connections': 100,"                           \
    " 'health_check': {'path': '/healthz', 'interval_ms': 5000, 'timeout_ms': 1000,"                      \
    "                  'healthy_threshold': 2, 'unhealthy_threshold': 3},"                                 \
    " 'circuit_breaker': {'max_pending_requests': 1024, 'max_requests': 1024, 'max_retries': 3},"         \
    " 'outlier_detection': {'consecutive_5xx': 5, 'base_ejection_ms': 30000, 'max_ejection_percent': 50}}"
#define CONTRACT_REST                                                                                      \
    " 'routes': [{"                                                                                        \
    "  'name': 'orders-api',"                                                                              \
    "  'match': {'path_prefix': '/api/orders', 'methods': ['GET', 'POST'], 'hosts': ['api.example.com'],"  \
    "            'headers': [{'name': 'x-canary', 'exact': '1'}]},"                                        \
    "  'service': 'orders', 'rewrite_prefix': '/', 'timeout_ms': 15000,"                                   \
    "  'retry': {'attempts': 2, 'on': ['connect-failure', 'reset', '5xx'], 'per_try_timeout_ms': 5000},"    \
    "  'rate_limit': 'per-client', 'auth': 'users-jwt',"                                                   \
    "  'cors': {'allow_origins': ['https://app.example.com'], 'allow_methods': ['GET', 'POST'],"           \
    "           'allow_headers': ['authorization', 'content-type'], 'max_age_s': 600,"                     \
    "           'allow_credentials': true}}],"                                                             \
    " 'rate_limits': [{'name': 'per-client', 'requests': 100, 'per': 'second', 'burst': 50,"               \
    "                  'key': 'client_ip', 'scope': 'local'}],"                                            \
    " 'auth_policies': [{'name': 'users-jwt', 'issuer': 'https://auth.example.com', 'audiences': ['api'],"  \
    "                    'algorithms': ['RS256'], 'jwks': {'keys': []},"                                   \
    "                    'jwks_uri': 'https://auth.example.com/jwks',"                                     \
    "                    'forward_claims': {'sub': 'x-user-id'}, 'clock_skew_s': 60}]}"

/* The contract's example, which shows both endpoint sources; a service takes one of them. */
static const char contract_as_written[] =
    "{'services': [" CONTRACT_SERVICE_HEAD
    " 'kubernetes': {'namespace': 'shop', 'service': 'orders', 'port': 'http'}," CONTRACT_SERVICE_TAIL
    "]," CONTRACT_REST;
/* The example with static endpoints. */
static const char contract_endpoints[] = "{'services': [" CONTRACT_SERVICE_HEAD CONTRACT_SERVICE_TAIL "]," CONTRACT_REST;
/* The example with the Kubernetes source. */
static const char contract_kubernetes[] =
    "{'services': [{'name': 'orders', 'kubernetes': {'namespace': 'shop', 'service': 'orders', 'port': 'http'},"
    CONTRACT_SERVICE_TAIL "]," CONTRACT_REST;

/* Smallest objects of each kind; the table below appends fields to them. */
#define SVC(extra) "{'name':'s','endpoints':['127.0.0.1:80']" extra "}"
#define DOC_S(svc) "{'services':[" svc "]}"
#define ROUTE_M(match, extra) "{'name':'r','match':{" match "},'service':'s'" extra "}"
#define ROUTE(extra) ROUTE_M("'path_prefix':'/'", extra)
#define DOC_R(route) "{'services':[" SVC("") "],'routes':[" route "]}"
#define RL(extra) "{'name':'rl','requests':10" extra "}"
#define DOC_RL(rl) "{'rate_limits':[" rl "]}"
#define AUTH_BASE "'name':'a','issuer':'https://issuer'"
#define AUTH(extra) "{" AUTH_BASE ",'algorithms':['RS256'],'jwks_uri':'https://issuer/jwks'" extra "}"
#define DOC_A(a) "{'auth_policies':[" a "]}"

static const char minimal_doc[] =
    "{'services':[" SVC("") "],"
    " 'routes':[" ROUTE("") "],"
    " 'rate_limits':[" RL("") "],"
    " 'auth_policies':[" AUTH("") "]}";

/* ---- the contract's example ---- */

START_TEST(test_contract_example_as_written)
{
    ck_assert_str_eq(parse_err(contract_as_written), "services[0]: endpoints and kubernetes are mutually exclusive");
}
END_TEST

START_TEST(test_contract_example_services)
{
    struct bgw_config *cfg = parse_ok(contract_endpoints);
    const struct bgw_service *s;

    ck_assert_uint_eq(cfg->n_services, 1);
    s = &cfg->services[0];
    ck_assert_str_eq(s->name, "orders");
    ck_assert_uint_eq(s->n_endpoints, 2);
    ck_assert_str_eq(s->endpoints[0].address, "127.0.0.1:9001");
    ck_assert_str_eq(s->endpoints[0].host, "127.0.0.1");
    ck_assert_uint_eq(s->endpoints[0].port, 9001);
    ck_assert(s->endpoints[0].healthy);
    ck_assert_uint_eq(s->endpoints[1].port, 9002);
    ck_assert(!s->has_kubernetes);
    ck_assert_int_eq(s->lb, BGW_LB_ROUND_ROBIN);
    ck_assert_uint_eq(s->connect_timeout_ms, 1000);
    ck_assert_uint_eq(s->max_connections, 100);
    ck_assert(s->has_health_check);
    ck_assert_str_eq(s->health_check.path, "/healthz");
    ck_assert_uint_eq(s->health_check.interval_ms, 5000);
    ck_assert_uint_eq(s->health_check.timeout_ms, 1000);
    ck_assert_uint_eq(s->health_check.healthy_threshold, 2);
    ck_assert_uint_eq(s->health_check.unhealthy_threshold, 3);
    ck_assert(s->has_circuit_breaker);
    ck_assert_uint_eq(s->circuit_breaker.max_pending_requests, 1024);
    ck_assert_uint_eq(s->circuit_breaker.max_requests, 1024);
    ck_assert_uint_eq(s->circuit_breaker.max_retries, 3);
    ck_assert(s->has_outlier_detection);
    ck_assert_uint_eq(s->outlier_detection.consecutive_5xx, 5);
    ck_assert_uint_eq(s->outlier_detection.base_ejection_ms, 30000);
    ck_assert_uint_eq(s->outlier_detection.max_ejection_percent, 50);
    ck_assert_ptr_null(cfg->version);
    bgw_config_free(cfg);
}
END_TEST

START_TEST(test_contract_example_route)
{
    struct bgw_config *cfg = parse_ok(contract_endpoints);
    const struct bgw_route *r;

    ck_assert_uint_eq(cfg->n_routes, 1);
    r = &cfg->routes[0];
    ck_assert_str_eq(r->name, "orders-api");
    ck_assert_str_eq(r->match.path_prefix, "/api/orders");
    ck_assert_ptr_null(r->match.path_exact);
    ck_assert_uint_eq(r->match.n_methods, 2);
    ck_assert_str_eq(r->match.methods[0], "GET");
    ck_assert_str_eq(r->match.methods[1], "POST");
    ck_assert_uint_eq(r->match.n_hosts, 1);
    ck_assert_str_eq(r->match.hosts[0], "api.example.com");
    ck_assert_uint_eq(r->match.n_headers, 1);
    ck_assert_str_eq(r->match.headers[0].name, "x-canary");
    ck_assert_str_eq(r->match.headers[0].exact, "1");
    ck_assert_str_eq(r->service, "orders");
    ck_assert_uint_eq(r->service_index, 0);
    ck_assert_str_eq(r->rewrite_prefix, "/");
    ck_assert_uint_eq(r->timeout_ms, 15000);
    ck_assert(r->has_retry);
    ck_assert_uint_eq(r->retry.attempts, 2);
    ck_assert_uint_eq(r->retry.on, BGW_RETRY_CONNECT_FAILURE | BGW_RETRY_RESET | BGW_RETRY_5XX);
    ck_assert_uint_eq(r->retry.per_try_timeout_ms, 5000);
    ck_assert_str_eq(r->rate_limit, "per-client");
    ck_assert_str_eq(r->auth, "users-jwt");
    ck_assert(r->has_cors);
    ck_assert_uint_eq(r->cors.n_allow_origins, 1);
    ck_assert_str_eq(r->cors.allow_origins[0], "https://app.example.com");
    ck_assert_uint_eq(r->cors.n_allow_methods, 2);
    ck_assert_uint_eq(r->cors.n_allow_headers, 2);
    ck_assert_str_eq(r->cors.allow_headers[1], "content-type");
    ck_assert_uint_eq(r->cors.n_expose_headers, 0);
    ck_assert_uint_eq(r->cors.max_age_s, 600);
    ck_assert(r->cors.allow_credentials);
    ck_assert(!r->has_max_body_bytes);
    bgw_config_free(cfg);
}
END_TEST

START_TEST(test_contract_example_policies)
{
    struct bgw_config *cfg = parse_ok(contract_endpoints);
    const struct bgw_rate_limit *rl;
    const struct bgw_auth_policy *a;

    ck_assert_uint_eq(cfg->n_rate_limits, 1);
    rl = &cfg->rate_limits[0];
    ck_assert_str_eq(rl->name, "per-client");
    ck_assert_uint_eq(rl->requests, 100);
    ck_assert_int_eq(rl->per, BGW_RL_SECOND);
    ck_assert_uint_eq(rl->burst, 50);
    ck_assert_int_eq(rl->key_kind, BGW_RL_KEY_CLIENT_IP);
    ck_assert_str_eq(rl->key, "client_ip");
    ck_assert_ptr_null(rl->key_name);
    ck_assert_int_eq(rl->scope, BGW_RL_LOCAL);

    ck_assert_uint_eq(cfg->n_auth_policies, 1);
    a = &cfg->auth_policies[0];
    ck_assert_str_eq(a->name, "users-jwt");
    ck_assert_str_eq(a->issuer, "https://auth.example.com");
    ck_assert_uint_eq(a->n_audiences, 1);
    ck_assert_str_eq(a->audiences[0], "api");
    ck_assert_uint_eq(a->n_algorithms, 1);
    ck_assert_str_eq(a->algorithms[0], "RS256");
    ck_assert_str_eq(a->jwks_json, "{\"keys\":[]}");
    ck_assert_str_eq(a->jwks_uri, "https://auth.example.com/jwks");
    ck_assert_uint_eq(a->n_forward_claims, 1);
    ck_assert_str_eq(a->forward_claim_names[0], "sub");
    ck_assert_str_eq(a->forward_claim_headers[0], "x-user-id");
    ck_assert_uint_eq(a->clock_skew_s, 60);
    bgw_config_free(cfg);
}
END_TEST

START_TEST(test_contract_example_kubernetes)
{
    struct bgw_config *cfg = parse_ok(contract_kubernetes);
    const struct bgw_service *s = &cfg->services[0];

    ck_assert(s->has_kubernetes);
    ck_assert_uint_eq(s->n_endpoints, 0);
    ck_assert_ptr_null(s->endpoints);
    ck_assert_str_eq(s->kubernetes.namespace_, "shop");
    ck_assert_str_eq(s->kubernetes.service, "orders");
    ck_assert_str_eq(s->kubernetes.port, "http");
    bgw_config_free(cfg);
}
END_TEST

/* ---- defaults and normalisation ---- */

START_TEST(test_defaults)
{
    struct bgw_config *cfg = parse_ok(minimal_doc);
    const struct bgw_service *s = &cfg->services[0];
    const struct bgw_route *r = &cfg->routes[0];
    const struct bgw_rate_limit *rl = &cfg->rate_limits[0];
    const struct bgw_auth_policy *a = &cfg->auth_policies[0];

    ck_assert_int_eq(s->lb, BGW_LB_ROUND_ROBIN);
    ck_assert_uint_eq(s->connect_timeout_ms, BGW_DEFAULT_CONNECT_TIMEOUT_MS);
    ck_assert_uint_eq(s->max_connections, BGW_DEFAULT_MAX_CONNECTIONS);
    ck_assert(!s->has_health_check && !s->has_circuit_breaker && !s->has_outlier_detection);
    ck_assert_uint_eq(s->circuit_breaker.max_pending_requests, BGW_DEFAULT_CB_MAX);
    ck_assert_uint_eq(s->outlier_detection.max_ejection_percent, BGW_DEFAULT_OD_MAX_EJECTION_PCT);

    ck_assert_uint_eq(r->timeout_ms, BGW_DEFAULT_ROUTE_TIMEOUT_MS);
    ck_assert(!r->has_retry && !r->has_cors && !r->has_max_body_bytes);
    ck_assert_uint_eq(r->retry.attempts, 0);
    ck_assert_ptr_null(r->rewrite_prefix);
    ck_assert_ptr_null(r->rate_limit);
    ck_assert_ptr_null(r->auth);
    ck_assert_uint_eq(r->match.n_methods + r->match.n_hosts + r->match.n_headers, 0);

    ck_assert_int_eq(rl->per, BGW_RL_SECOND);
    ck_assert_uint_eq(rl->burst, 10);
    ck_assert_int_eq(rl->key_kind, BGW_RL_KEY_CLIENT_IP);
    ck_assert_str_eq(rl->key, "client_ip");
    ck_assert_int_eq(rl->scope, BGW_RL_LOCAL);

    ck_assert_uint_eq(a->clock_skew_s, BGW_DEFAULT_CLOCK_SKEW_S);
    ck_assert_uint_eq(a->n_audiences, 0);
    ck_assert_ptr_null(a->jwks_json);
    ck_assert_uint_eq(a->n_forward_claims, 0);
    bgw_config_free(cfg);
}
END_TEST

START_TEST(test_object_defaults)
{
    struct bgw_config *cfg = parse_ok(
        "{'services':[" SVC(",'health_check':{'path':'/h'},'circuit_breaker':{},'outlier_detection':{}") "],"
        " 'routes':[" ROUTE(",'retry':{},'cors':{'allow_origins':['*']},'max_body_bytes':0") "]}");
    const struct bgw_service *s = &cfg->services[0];
    const struct bgw_route *r = &cfg->routes[0];

    ck_assert(s->has_health_check && s->has_circuit_breaker && s->has_outlier_detection);
    ck_assert_uint_eq(s->health_check.interval_ms, BGW_DEFAULT_HC_INTERVAL_MS);
    ck_assert_uint_eq(s->health_check.timeout_ms, BGW_DEFAULT_HC_TIMEOUT_MS);
    ck_assert_uint_eq(s->health_check.healthy_threshold, BGW_DEFAULT_HC_HEALTHY);
    ck_assert_uint_eq(s->health_check.unhealthy_threshold, BGW_DEFAULT_HC_UNHEALTHY);
    ck_assert_uint_eq(s->circuit_breaker.max_pending_requests, BGW_DEFAULT_CB_MAX);
    ck_assert_uint_eq(s->circuit_breaker.max_requests, BGW_DEFAULT_CB_MAX);
    ck_assert_uint_eq(s->circuit_breaker.max_retries, BGW_DEFAULT_CB_MAX_RETRIES);
    ck_assert_uint_eq(s->outlier_detection.consecutive_5xx, BGW_DEFAULT_OD_CONSECUTIVE_5XX);
    ck_assert_uint_eq(s->outlier_detection.base_ejection_ms, BGW_DEFAULT_OD_BASE_EJECTION_MS);
    ck_assert_uint_eq(s->outlier_detection.max_ejection_percent, BGW_DEFAULT_OD_MAX_EJECTION_PCT);

    ck_assert(r->has_retry);
    ck_assert_uint_eq(r->retry.attempts, BGW_DEFAULT_RETRY_ATTEMPTS);
    ck_assert_uint_eq(r->retry.on, BGW_RETRY_CONNECT_FAILURE | BGW_RETRY_RESET | BGW_RETRY_5XX);
    ck_assert_uint_eq(r->retry.per_try_timeout_ms, 0);
    ck_assert(r->has_cors);
    ck_assert(!r->cors.allow_credentials);
    ck_assert_uint_eq(r->cors.max_age_s, 0);
    ck_assert(r->has_max_body_bytes);
    ck_assert_uint_eq(r->max_body_bytes, 0);
    bgw_config_free(cfg);
}
END_TEST

START_TEST(test_zero_values_kept)
{
    struct bgw_config *cfg = parse_ok(
        "{'services':[" SVC(",'circuit_breaker':{'max_pending_requests':0,'max_requests':0,'max_retries':0},"
                            "'outlier_detection':{'max_ejection_percent':0}") "],"
        " 'routes':[" ROUTE(",'timeout_ms':0,'retry':{'attempts':0,'on':['gateway-error']}") "],"
        " 'rate_limits':[" RL(",'burst':0") "]}");

    ck_assert_uint_eq(cfg->services[0].circuit_breaker.max_pending_requests, 0);
    ck_assert_uint_eq(cfg->services[0].circuit_breaker.max_retries, 0);
    ck_assert_uint_eq(cfg->services[0].outlier_detection.max_ejection_percent, 0);
    ck_assert_uint_eq(cfg->routes[0].timeout_ms, 0);
    ck_assert_uint_eq(cfg->routes[0].retry.attempts, 0);
    ck_assert_uint_eq(cfg->routes[0].retry.on, BGW_RETRY_GATEWAY_ERROR);
    ck_assert_uint_eq(cfg->rate_limits[0].burst, 0);
    bgw_config_free(cfg);
}
END_TEST

START_TEST(test_normalisation)
{
    struct bgw_config *cfg = parse_ok(
        "{'version':'v42','services':[{'name':'s','endpoints':['[::1]:8080',"
        "   {'address':'backend.local:81','healthy':false}]},"
        "  {'name':'k','kubernetes':{'namespace':'ns','service':'svc','port':8080}}],"
        " 'routes':[{'name':'r','service':'k','max_body_bytes':1048576,"
        "   'match':{'path_exact':'/x','hosts':['API.Example.COM','*.Example.org','[::1]'],"
        "            'headers':[{'name':'X-Canary','exact':'Yes'}]},"
        "   'cors':{'allow_origins':['HTTPS://App.Example.com:8443'],'expose_headers':['X-Id']}}],"
        " 'rate_limits':[" RL(",'key':'header:X-Api-Key','per':'minute','scope':'global'") ","
                           "{'name':'c','requests':1,'key':'claim:sub','per':'hour'}],"
        " 'auth_policies':[" AUTH(",'forward_claims':{'sub':'X-User-Id','email':'x-email'}") "]}");
    const struct bgw_service *s = &cfg->services[0];
    const struct bgw_route *r = &cfg->routes[0];

    ck_assert_str_eq(cfg->version, "v42");
    ck_assert_str_eq(s->endpoints[0].host, "::1");
    ck_assert_uint_eq(s->endpoints[0].port, 8080);
    ck_assert_str_eq(s->endpoints[0].address, "[::1]:8080");
    ck_assert(s->endpoints[0].healthy);
    ck_assert_str_eq(s->endpoints[1].host, "backend.local");
    ck_assert(!s->endpoints[1].healthy);
    ck_assert_str_eq(cfg->services[1].kubernetes.port, "8080");

    ck_assert_uint_eq(r->service_index, 1);
    ck_assert_str_eq(r->match.path_exact, "/x");
    ck_assert_str_eq(r->match.hosts[0], "api.example.com");
    ck_assert_str_eq(r->match.hosts[1], "*.example.org");
    ck_assert_str_eq(r->match.headers[0].name, "x-canary");
    ck_assert_str_eq(r->match.headers[0].exact, "Yes");
    ck_assert_str_eq(r->cors.allow_origins[0], "https://app.example.com:8443");
    ck_assert_str_eq(r->cors.expose_headers[0], "X-Id");
    ck_assert_uint_eq(r->max_body_bytes, 1048576);

    ck_assert_int_eq(cfg->rate_limits[0].key_kind, BGW_RL_KEY_HEADER);
    ck_assert_str_eq(cfg->rate_limits[0].key_name, "x-api-key");
    ck_assert_str_eq(cfg->rate_limits[0].key, "header:X-Api-Key");
    ck_assert_int_eq(cfg->rate_limits[0].per, BGW_RL_MINUTE);
    ck_assert_int_eq(cfg->rate_limits[0].scope, BGW_RL_GLOBAL);
    ck_assert_int_eq(cfg->rate_limits[1].key_kind, BGW_RL_KEY_CLAIM);
    ck_assert_str_eq(cfg->rate_limits[1].key_name, "sub");
    ck_assert_int_eq(cfg->rate_limits[1].per, BGW_RL_HOUR);

    ck_assert_uint_eq(cfg->auth_policies[0].n_forward_claims, 2);
    ck_assert_str_eq(cfg->auth_policies[0].forward_claim_names[0], "sub");
    ck_assert_str_eq(cfg->auth_policies[0].forward_claim_headers[0], "x-user-id");
    ck_assert_str_eq(cfg->auth_policies[0].forward_claim_headers[1], "x-email");
    bgw_config_free(cfg);
}
END_TEST

START_TEST(test_empty_document)
{
    struct bgw_config *cfg = parse_ok("{}");

    ck_assert_uint_eq(cfg->n_services + cfg->n_routes + cfg->n_rate_limits + cfg->n_auth_policies, 0);
    bgw_config_free(cfg);
    bgw_config_free(NULL);
}
END_TEST

/* ---- round trip ---- */

static void assert_round_trip(const char *doc)
{
    struct bgw_config *a = parse_ok(doc), *b = NULL;
    json_t *ja = bgw_config_to_json(a), *jb;
    char err[BGW_ERR_MAX] = "";

    ck_assert_ptr_nonnull(ja);
    ck_assert_msg(bgw_config_from_json(ja, &b, err, sizeof(err)) == 0, "to_json output refused: %s", err);
    jb = bgw_config_to_json(b);
    ck_assert_ptr_nonnull(jb);
    ck_assert(json_equal(ja, jb));
    json_decref(ja);
    json_decref(jb);
    bgw_config_free(a);
    bgw_config_free(b);
}

START_TEST(test_round_trip)
{
    assert_round_trip(contract_endpoints);
    assert_round_trip(contract_kubernetes);
    assert_round_trip(minimal_doc);
    assert_round_trip("{'version':'7','services':[{'name':'s','endpoints':[]}],"
                      " 'routes':[" ROUTE(",'retry':{'on':['gateway-error','reset']},'max_body_bytes':5") "],"
                      " 'rate_limits':[" RL(",'key':'header:X-Key','burst':0") "]}");
}
END_TEST

START_TEST(test_to_json_explicit_defaults)
{
    struct bgw_config *cfg = parse_ok(minimal_doc);
    json_t *doc = bgw_config_to_json(cfg);
    json_t *s = json_array_get(json_object_get(doc, "services"), 0);
    json_t *r = json_array_get(json_object_get(doc, "routes"), 0);
    json_t *rl = json_array_get(json_object_get(doc, "rate_limits"), 0);
    json_t *a = json_array_get(json_object_get(doc, "auth_policies"), 0);
    json_t *ep = json_array_get(json_object_get(s, "endpoints"), 0);

    ck_assert_ptr_null(json_object_get(doc, "version"));
    ck_assert_str_eq(json_string_value(json_object_get(s, "lb")), "round_robin");
    ck_assert_int_eq(json_integer_value(json_object_get(s, "connect_timeout_ms")), 1000);
    ck_assert_int_eq(json_integer_value(json_object_get(s, "max_connections")), 1024);
    ck_assert_ptr_null(json_object_get(s, "health_check"));
    ck_assert_ptr_null(json_object_get(s, "kubernetes"));
    ck_assert_str_eq(json_string_value(json_object_get(ep, "address")), "127.0.0.1:80");
    ck_assert(json_is_true(json_object_get(ep, "healthy")));
    ck_assert_int_eq(json_integer_value(json_object_get(r, "timeout_ms")), 15000);
    ck_assert_ptr_null(json_object_get(r, "retry"));
    ck_assert_ptr_null(json_object_get(r, "cors"));
    ck_assert_ptr_null(json_object_get(r, "rewrite_prefix"));
    ck_assert_str_eq(json_string_value(json_object_get(rl, "per")), "second");
    ck_assert_int_eq(json_integer_value(json_object_get(rl, "burst")), 10);
    ck_assert_str_eq(json_string_value(json_object_get(rl, "key")), "client_ip");
    ck_assert_str_eq(json_string_value(json_object_get(rl, "scope")), "local");
    ck_assert_int_eq(json_integer_value(json_object_get(a, "clock_skew_s")), 60);
    ck_assert_ptr_null(json_object_get(a, "jwks"));
    json_decref(doc);
    bgw_config_free(cfg);
}
END_TEST

START_TEST(test_to_json_contract_values)
{
    struct bgw_config *cfg = parse_ok(contract_endpoints);
    json_t *doc = bgw_config_to_json(cfg);
    json_t *r = json_array_get(json_object_get(doc, "routes"), 0);
    json_t *on = json_object_get(json_object_get(r, "retry"), "on");
    json_t *a = json_array_get(json_object_get(doc, "auth_policies"), 0);
    char *jwks = json_dumps(json_object_get(a, "jwks"), JSON_COMPACT);

    ck_assert_uint_eq(json_array_size(on), 3);
    ck_assert_str_eq(json_string_value(json_array_get(on, 0)), "connect-failure");
    ck_assert_str_eq(json_string_value(json_array_get(on, 2)), "5xx");
    ck_assert_str_eq(jwks, "{\"keys\":[]}");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(a, "forward_claims"), "sub")), "x-user-id");
    free(jwks);
    json_decref(doc);
    bgw_config_free(cfg);
}
END_TEST

/* ---- host:port ---- */

START_TEST(test_parse_hostport)
{
    char host[64];
    uint16_t port = 0;

    ck_assert_int_eq(bgw_parse_hostport("127.0.0.1:9001", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_uint_eq(port, 9001);
    ck_assert_int_eq(bgw_parse_hostport("[2001:db8::1]:443", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "2001:db8::1");
    ck_assert_uint_eq(port, 443);
    ck_assert_int_eq(bgw_parse_hostport("orders.shop.svc:65535", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "orders.shop.svc");
    ck_assert_uint_eq(port, 65535);

    ck_assert_int_eq(bgw_parse_hostport("127.0.0.1", host, sizeof(host), &port), -1);
    ck_assert_int_eq(bgw_parse_hostport("1.2.3.4:0", host, sizeof(host), &port), -1);
    ck_assert_int_eq(bgw_parse_hostport("1.2.3.4:70000", host, sizeof(host), &port), -1);
    ck_assert_int_eq(bgw_parse_hostport("1.2.3.4:", host, sizeof(host), &port), -1);
    ck_assert_int_eq(bgw_parse_hostport("1.2.3.4:8o", host, sizeof(host), &port), -1);
    ck_assert_int_eq(bgw_parse_hostport("[::1:80", host, sizeof(host), &port), -1);
    ck_assert_int_eq(bgw_parse_hostport("[::1]", host, sizeof(host), &port), -1);
    ck_assert_int_eq(bgw_parse_hostport("[zz]:80", host, sizeof(host), &port), -1);
    ck_assert_int_eq(bgw_parse_hostport("::1:80", host, sizeof(host), &port), -1);
    ck_assert_int_eq(bgw_parse_hostport(":80", host, sizeof(host), &port), -1);
    ck_assert_int_eq(bgw_parse_hostport("a..b:80", host, sizeof(host), &port), -1);
    ck_assert_int_eq(bgw_parse_hostport("a.b.:80", host, sizeof(host), &port), -1);
    ck_assert_int_eq(bgw_parse_hostport("a_b:80", host, sizeof(host), &port), -1);
    ck_assert_int_eq(bgw_parse_hostport("256.1.1.1:80", host, sizeof(host), &port), -1);
    ck_assert_int_eq(bgw_parse_hostport("1.2.3:80", host, sizeof(host), &port), -1);
    ck_assert_int_eq(bgw_parse_hostport("averylonghostname.example.com:80", host, 8, &port), -1);
    ck_assert_str_eq(bgw_lb_kind_name(BGW_LB_LEAST_REQUEST), "least_request");
    ck_assert_str_eq(bgw_lb_kind_name(BGW_LB_RANDOM), "random");
}
END_TEST

/* ---- one case per rule: the document and the exact error line ---- */

struct err_case {
    const char *doc;
    const char *err;
};

static const struct err_case err_cases[] = {
    /* top level */
    {"[]", "document: must be a JSON object"},
    {"{'servics':[]}", "servics: unknown field"},
    {"{'services':{}}", "services: must be an array"},
    {"{'version':1}", "version: must be a string"},
    {"{'services':[1]}", "services[0]: must be an object"},
    /* services */
    {DOC_S(SVC(",'foo':1")), "services[0].foo: unknown field"},
    {DOC_S("{'endpoints':[]}"), "services[0].name: is required"},
    {DOC_S("{'name':'a b','endpoints':[]}"), "services[0].name: must contain only letters, digits, '.', '_' and '-'"},
    {DOC_S("{'name':'','endpoints':[]}"), "services[0].name: must not be empty"},
    {DOC_S("{'name':5,'endpoints':[]}"), "services[0].name: must be a string"},
    {"{'services':[" SVC("") "," SVC("") "]}", "services[1].name: duplicate name \"s\""},
    {DOC_S("{'name':'s','endpoints':['127.0.0.1']}"), "services[0].endpoints[0]: missing port (expected host:port)"},
    {DOC_S("{'name':'s','endpoints':['1.2.3.4:80','1.2.3.4:0']}"),
     "services[0].endpoints[1]: port must be between 1 and 65535"},
    {DOC_S("{'name':'s','endpoints':['1.2.3.4:70000']}"), "services[0].endpoints[0]: port must be between 1 and 65535"},
    {DOC_S("{'name':'s','endpoints':['[::1:80']}"), "services[0].endpoints[0]: unterminated '[' in IPv6 address"},
    {DOC_S("{'name':'s','endpoints':['::1:80']}"),
     "services[0].endpoints[0]: IPv6 addresses must be in brackets ([::1]:80)"},
    {DOC_S("{'name':'s','endpoints':['a..b:80']}"), "services[0].endpoints[0]: host name has an empty label"},
    {DOC_S("{'name':'s','endpoints':['999.1.1.1:80']}"), "services[0].endpoints[0]: invalid IPv4 address"},
    {DOC_S("{'name':'s','endpoints':[5]}"), "services[0].endpoints[0]: must be a \"host:port\" string or an object"},
    {DOC_S("{'name':'s','endpoints':[{'address':'x'}]}"),
     "services[0].endpoints[0].address: missing port (expected host:port)"},
    {DOC_S("{'name':'s','endpoints':[{'healthy':true}]}"), "services[0].endpoints[0].address: is required"},
    {DOC_S("{'name':'s','endpoints':[{'address':'x:1','healthy':'yes'}]}"),
     "services[0].endpoints[0].healthy: must be a boolean"},
    {DOC_S("{'name':'s','endpoints':[{'address':'x:1','weight':1}]}"), "services[0].endpoints[0].weight: unknown field"},
    {DOC_S("{'name':'s','endpoints':'x:1'}"), "services[0].endpoints: must be an array"},
    {DOC_S(SVC(",'kubernetes':{'namespace':'a','service':'b','port':80}")),
     "services[0]: endpoints and kubernetes are mutually exclusive"},
    {DOC_S("{'name':'s'}"), "services[0]: one of endpoints or kubernetes is required"},
    {DOC_S("{'name':'s','kubernetes':{'namespace':'a','service':'b'}}"), "services[0].kubernetes.port: is required"},
    {DOC_S("{'name':'s','kubernetes':{'ns':'a','service':'b','port':1}}"), "services[0].kubernetes.ns: unknown field"},
    {DOC_S("{'name':'s','kubernetes':{'namespace':'A_b','service':'b','port':1}}"),
     "services[0].kubernetes.namespace: must contain only lower-case letters, digits and '-'"},
    {DOC_S("{'name':'s','kubernetes':{'namespace':'a','service':'b','port':0}}"),
     "services[0].kubernetes.port: must be between 1 and 65535"},
    {DOC_S("{'name':'s','kubernetes':{'namespace':'a','service':'b','port':true}}"),
     "services[0].kubernetes.port: must be a string or an integer"},
    {DOC_S(SVC(",'lb':'fastest'")), "services[0].lb: must be one of round_robin, least_request or random"},
    {DOC_S(SVC(",'lb':1")), "services[0].lb: must be a string"},
    {DOC_S(SVC(",'connect_timeout_ms':0")), "services[0].connect_timeout_ms: must be at least 1"},
    {DOC_S(SVC(",'connect_timeout_ms':'5'")), "services[0].connect_timeout_ms: must be an integer"},
    {DOC_S(SVC(",'connect_timeout_ms':1.5")), "services[0].connect_timeout_ms: must be an integer"},
    {DOC_S(SVC(",'connect_timeout_ms':1000.0")), "services[0].connect_timeout_ms: must be an integer"},
    {DOC_S(SVC(",'max_connections':4294967296")), "services[0].max_connections: must be at most 4294967295"},
    {DOC_S(SVC(",'max_connections':-1")), "services[0].max_connections: must not be negative"},
    {DOC_S(SVC(",'health_check':{'path':'healthz'}")), "services[0].health_check.path: must start with '/'"},
    {DOC_S(SVC(",'health_check':{'interval_ms':10}")), "services[0].health_check.path: is required"},
    {DOC_S(SVC(",'health_check':{'path':'/h','interval_ms':500}")),
     "services[0].health_check.timeout_ms: must not exceed interval_ms (500)"},
    {DOC_S(SVC(",'health_check':{'path':'/h','unhealthy_threshold':0}")),
     "services[0].health_check.unhealthy_threshold: must be at least 1"},
    {DOC_S(SVC(",'health_check':{'path':'/h','port':80}")), "services[0].health_check.port: unknown field"},
    {DOC_S(SVC(",'health_check':true")), "services[0].health_check: must be an object"},
    {DOC_S(SVC(",'circuit_breaker':{'max_retries':'x'}")), "services[0].circuit_breaker.max_retries: must be an integer"},
    {DOC_S(SVC(",'circuit_breaker':{'max_connections':1}")), "services[0].circuit_breaker.max_connections: unknown field"},
    {DOC_S(SVC(",'outlier_detection':{'max_ejection_percent':101}")),
     "services[0].outlier_detection.max_ejection_percent: must be between 0 and 100"},
    {DOC_S(SVC(",'outlier_detection':{'consecutive_5xx':0}")),
     "services[0].outlier_detection.consecutive_5xx: must be at least 1"},
    /* routes */
    {DOC_R(ROUTE(",'timeout':1")), "routes[0].timeout: unknown field"},
    {DOC_R(ROUTE_M("'path_prefx':'/'", "")), "routes[0].match.path_prefx: unknown field"},
    {DOC_R("{'name':'r','service':'s'}"), "routes[0].match: is required"},
    {DOC_R("{'name':'r','match':'/','service':'s'}"), "routes[0].match: must be an object"},
    {DOC_R(ROUTE_M("'path_prefix':'api'", "")), "routes[0].match.path_prefix: must start with '/'"},
    {DOC_R(ROUTE_M("'path_prefix':''", "")), "routes[0].match.path_prefix: must start with '/'"},
    {DOC_R(ROUTE_M("'path_prefix':'/a//b'", "")), "routes[0].match.path_prefix: must be normalised (no \"//\")"},
    {DOC_R(ROUTE_M("'path_prefix':'/a/../b'", "")),
     "routes[0].match.path_prefix: must be normalised (no \".\" or \"..\" segments)"},
    {DOC_R(ROUTE_M("'path_exact':'/a/.'", "")),
     "routes[0].match.path_exact: must be normalised (no \".\" or \"..\" segments)"},
    {DOC_R(ROUTE_M("'path_prefix':'/a%20b'", "")),
     "routes[0].match.path_prefix: must not contain '%' (write the path decoded)"},
    {DOC_R(ROUTE_M("'path_prefix':'/a?b=1'", "")),
     "routes[0].match.path_prefix: must not contain '?' (a path has no query string)"},
    {DOC_R(ROUTE_M("'path_prefix':'/a#b'", "")), "routes[0].match.path_prefix: must not contain '#'"},
    {DOC_R(ROUTE_M("'path_prefix':'/a\\\\b'", "")), "routes[0].match.path_prefix: must not contain '\\'"},
    {DOC_R(ROUTE_M("'path_exact':'/a b'", "")),
     "routes[0].match.path_exact: must not contain spaces, control or non-ASCII characters"},
    {DOC_R(ROUTE_M("'path_exact':'/caf\xc3\xa9'", "")),
     "routes[0].match.path_exact: must not contain spaces, control or non-ASCII characters"},
    {DOC_R(ROUTE_M("'path_prefix':'/','path_exact':'/'", "")),
     "routes[0].match: path_prefix and path_exact are mutually exclusive"},
    {DOC_R(ROUTE_M("'methods':['GET']", "")), "routes[0].match: one of path_prefix or path_exact is required"},
    {DOC_R(ROUTE_M("'path_prefix':'/','methods':['get']", "")),
     "routes[0].match.methods[0]: must be an upper-case method name (A-Z)"},
    {DOC_R(ROUTE_M("'path_prefix':'/','methods':[]", "")), "routes[0].match.methods: must not be empty"},
    {DOC_R(ROUTE_M("'path_prefix':'/','methods':'GET'", "")), "routes[0].match.methods: must be an array of strings"},
    {DOC_R(ROUTE_M("'path_prefix':'/','methods':['GET',1]", "")),
     "routes[0].match.methods: must be an array of strings"},
    {DOC_R(ROUTE_M("'path_prefix':'/','hosts':['api.example.com:8080']", "")),
     "routes[0].match.hosts[0]: must be a host name without a port"},
    {DOC_R(ROUTE_M("'path_prefix':'/','hosts':['api.*.com']", "")),
     "routes[0].match.hosts[0]: a wildcard is allowed only as a leading \"*.\""},
    {DOC_R(ROUTE_M("'path_prefix':'/','hosts':['*']", "")),
     "routes[0].match.hosts[0]: a wildcard is allowed only as a leading \"*.\""},
    {DOC_R(ROUTE_M("'path_prefix':'/','headers':[{'name':'x y','exact':'1'}]", "")),
     "routes[0].match.headers[0].name: must be a header name (letters, digits and !#$%&'*+-.^_`|~)"},
    {DOC_R(ROUTE_M("'path_prefix':'/','headers':[{'name':'x'}]", "")), "routes[0].match.headers[0].exact: is required"},
    {DOC_R(ROUTE_M("'path_prefix':'/','headers':[{'name':'x','exact':'1','regex':'a'}]", "")),
     "routes[0].match.headers[0].regex: unknown field"},
    {DOC_R(ROUTE_M("'path_prefix':'/','headers':['x']", "")), "routes[0].match.headers[0]: must be an object"},
    {DOC_R("{'name':'r','match':{'path_prefix':'/'}}"), "routes[0].service: is required"},
    {DOC_R("{'name':'r','match':{'path_prefix':'/'},'service':'x'}"), "routes[0].service: unknown service \"x\""},
    {DOC_R(ROUTE(",'rate_limit':'nope'")), "routes[0].rate_limit: unknown rate limit \"nope\""},
    {DOC_R(ROUTE(",'auth':'nope'")), "routes[0].auth: unknown auth policy \"nope\""},
    {DOC_R(ROUTE(",'auth':5")), "routes[0].auth: must be a string"},
    {DOC_R(ROUTE_M("'path_exact':'/a'", ",'rewrite_prefix':'/b'")),
     "routes[0].rewrite_prefix: is allowed only with match.path_prefix"},
    {DOC_R(ROUTE(",'rewrite_prefix':'v2'")), "routes[0].rewrite_prefix: must start with '/'"},
    {DOC_R(ROUTE(",'timeout_ms':'15s'")), "routes[0].timeout_ms: must be an integer"},
    {DOC_R(ROUTE(",'retry':{'on':['timeout']}")),
     "routes[0].retry.on[0]: must be one of connect-failure, reset, 5xx or gateway-error"},
    {DOC_R(ROUTE(",'retry':{'on':[]}")), "routes[0].retry.on: must not be empty"},
    {DOC_R(ROUTE(",'retry':{'attempts':-1}")), "routes[0].retry.attempts: must not be negative"},
    {DOC_R(ROUTE(",'retry':{'backoff':1}")), "routes[0].retry.backoff: unknown field"},
    {DOC_R(ROUTE(",'cors':{'allow_origins':['*'],'allow_credentials':true}")),
     "routes[0].cors.allow_credentials: must not be true when allow_origins contains \"*\""},
    {DOC_R(ROUTE(",'cors':{'allow_methods':['GET']}")), "routes[0].cors.allow_origins: is required"},
    {DOC_R(ROUTE(",'cors':{'allow_origins':[]}")), "routes[0].cors.allow_origins: must not be empty"},
    {DOC_R(ROUTE(",'cors':{'allow_origins':['https://app.example.com/x']}")),
     "routes[0].cors.allow_origins[0]: must be scheme://host[:port] without a path"},
    {DOC_R(ROUTE(",'cors':{'allow_origins':['app.example.com']}")),
     "routes[0].cors.allow_origins[0]: must be \"*\" or scheme://host[:port]"},
    {DOC_R(ROUTE(",'cors':{'allow_origins':['*'],'allow_credentials':1}")),
     "routes[0].cors.allow_credentials: must be a boolean"},
    {DOC_R(ROUTE(",'cors':{'allow_origins':['*'],'max_age':1}")), "routes[0].cors.max_age: unknown field"},
    {DOC_R(ROUTE(",'max_body_bytes':-5")), "routes[0].max_body_bytes: must not be negative"},
    {DOC_R(ROUTE(",'max_body_bytes':'1M'")), "routes[0].max_body_bytes: must be an integer"},
    {"{'services':[" SVC("") "],'routes':[" ROUTE("") "," ROUTE("") "]}", "routes[1].name: duplicate name \"r\""},
    /* rate_limits */
    {DOC_RL("{'name':'rl'}"), "rate_limits[0].requests: is required"},
    {DOC_RL("{'name':'rl','requests':0}"), "rate_limits[0].requests: must be at least 1"},
    {DOC_RL(RL(",'per':'day'")), "rate_limits[0].per: must be one of second, minute or hour"},
    {DOC_RL(RL(",'burst':-1")), "rate_limits[0].burst: must not be negative"},
    {DOC_RL(RL(",'key':'ip'")), "rate_limits[0].key: must be client_ip, route, header:NAME or claim:NAME"},
    {DOC_RL(RL(",'key':'header:'")), "rate_limits[0].key: header:NAME: NAME must not be empty"},
    {DOC_RL(RL(",'key':'claim:'")), "rate_limits[0].key: claim:NAME: NAME must not be empty"},
    {DOC_RL(RL(",'scope':'cluster'")), "rate_limits[0].scope: must be one of local or global"},
    {DOC_RL(RL(",'window':1")), "rate_limits[0].window: unknown field"},
    {DOC_RL(RL("") "," RL("")), "rate_limits[1].name: duplicate name \"rl\""},
    /* auth_policies */
    {DOC_A("{" AUTH_BASE ",'jwks_uri':'https://x'}"), "auth_policies[0].algorithms: is required"},
    {DOC_A("{" AUTH_BASE ",'algorithms':[],'jwks_uri':'https://x'}"), "auth_policies[0].algorithms: must not be empty"},
    {DOC_A("{" AUTH_BASE ",'algorithms':['none'],'jwks_uri':'https://x'}"),
     "auth_policies[0].algorithms[0]: \"none\" is not allowed: unsigned tokens are always refused"},
    {DOC_A("{" AUTH_BASE ",'algorithms':['RS256','none'],'jwks_uri':'https://x'}"),
     "auth_policies[0].algorithms[1]: \"none\" is not allowed: unsigned tokens are always refused"},
    {DOC_A("{" AUTH_BASE ",'algorithms':['RS1'],'jwks_uri':'https://x'}"),
     "auth_policies[0].algorithms[0]: must be one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, "
     "HS256, HS384, HS512"},
    {DOC_A("{" AUTH_BASE ",'algorithms':['RS256']}"), "auth_policies[0]: one of jwks or jwks_uri is required"},
    {DOC_A("{'name':'a','algorithms':['RS256'],'jwks_uri':'https://x'}"), "auth_policies[0].issuer: is required"},
    {DOC_A("{" AUTH_BASE ",'algorithms':['RS256'],'jwks_uri':'ftp://x/jwks'}"),
     "auth_policies[0].jwks_uri: must be an http:// or https:// URL"},
    {DOC_A("{" AUTH_BASE ",'algorithms':['RS256'],'jwks':{}}"), "auth_policies[0].jwks.keys: is required"},
    {DOC_A("{" AUTH_BASE ",'algorithms':['RS256'],'jwks':{'keys':{}}}"), "auth_policies[0].jwks.keys: must be an array"},
    {DOC_A("{" AUTH_BASE ",'algorithms':['RS256'],'jwks':[]}"), "auth_policies[0].jwks: must be an object"},
    {DOC_A(AUTH(",'forward_claims':{'sub':'x user'}")),
     "auth_policies[0].forward_claims.sub: must be a header name (letters, digits and !#$%&'*+-.^_`|~)"},
    {DOC_A(AUTH(",'forward_claims':{'sub':5}")), "auth_policies[0].forward_claims.sub: must be a string"},
    {DOC_A(AUTH(",'forward_claims':{'sub':'Host'}")),
     "auth_policies[0].forward_claims.sub: must not be a hop-by-hop or message framing header"},
    {DOC_A(AUTH(",'forward_claims':{'sub':'x-user','uid':'X-User'}")),
     "auth_policies[0].forward_claims.uid: header \"x-user\" already receives claim \"sub\""},
    {DOC_A(AUTH(",'forward_claims':['sub']")),
     "auth_policies[0].forward_claims: must be an object (claim name -> header name)"},
    {DOC_A(AUTH(",'leeway':5")), "auth_policies[0].leeway: unknown field"},
    {DOC_A(AUTH(",'audiences':'api'")), "auth_policies[0].audiences: must be an array of strings"},
    {DOC_A(AUTH(",'clock_skew_s':1.0")), "auth_policies[0].clock_skew_s: must be an integer"},
    {DOC_A(AUTH("") "," AUTH("")), "auth_policies[1].name: duplicate name \"a\""},
};

START_TEST(test_error_case)
{
    const struct err_case *tc = &err_cases[_i];

    ck_assert_str_eq(parse_err(tc->doc), tc->err);
}
END_TEST

/* ---- errors outside the table ---- */

START_TEST(test_name_too_long)
{
    char doc[512];

    snprintf(doc, sizeof(doc), "{'services':[{'name':'%0129d','endpoints':[]}]}", 0);
    ck_assert_str_eq(parse_err(doc), "services[0].name: must be at most 128 characters");
    snprintf(doc, sizeof(doc), "{'services':[{'name':'%0128d','endpoints':[]}]}", 0);
    bgw_config_free(parse_ok(doc));
}
END_TEST

START_TEST(test_control_characters_stay_on_one_line)
{
    const char *err = parse_err("{'services':[{'name':'s','endpoints':[],'bad\\nkey':1}]}");

    ck_assert_str_eq(err, "services[0].bad?key: unknown field");
}
END_TEST

START_TEST(test_json_syntax_error)
{
    const char *err = parse_err("{\n  'services': [\n    {'name': 's',}\n  ]\n}");

    ck_assert_msg(strncmp(err, "line 3 column ", 14) == 0, "%s", err);
    err = parse_err("{'services': [], 'services': []}");
    ck_assert_msg(strncmp(err, "line 1 column ", 14) == 0 && strstr(err, "duplicate"), "%s", err);
    err = parse_err("");
    ck_assert_msg(strncmp(err, "line ", 5) == 0, "%s", err);
}
END_TEST

START_TEST(test_from_json_not_object)
{
    json_t *doc = json_string("x");
    struct bgw_config *cfg = NULL;
    char err[BGW_ERR_MAX];

    ck_assert_int_eq(bgw_config_from_json(doc, &cfg, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "document: must be a JSON object");
    ck_assert_ptr_null(cfg);
    json_decref(doc);
}
END_TEST

START_TEST(test_small_error_buffer)
{
    struct bgw_config *cfg = NULL;
    const char *text = q(DOC_R(ROUTE(",'bogus':1")));
    char err[8];

    ck_assert_int_eq(bgw_config_parse(text, strlen(text), &cfg, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "routes[");
    ck_assert_int_eq(bgw_config_parse(text, strlen(text), &cfg, NULL, 0), -1);
}
END_TEST

/* ---- files ---- */

static char *write_temp(const char *content)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char *path = malloc(strlen(dir) + 32);
    int fd;

    ck_assert_ptr_nonnull(path);
    sprintf(path, "%s/bgw-config-XXXXXX", dir);
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

START_TEST(test_load_file)
{
    char *path = write_temp(q(contract_endpoints));
    struct bgw_config *cfg = NULL;
    char err[BGW_ERR_MAX] = "";

    ck_assert_msg(bgw_config_load_file(path, &cfg, err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(cfg->routes[0].name, "orders-api");
    bgw_config_free(cfg);
    unlink(path);
    free(path);
}
END_TEST

START_TEST(test_load_file_errors)
{
    char *path = write_temp(q(DOC_R(ROUTE_M("'path_prefix':'/api//x'", ""))));
    struct bgw_config *cfg = NULL;
    char err[BGW_ERR_MAX], want[BGW_ERR_MAX + 64];

    ck_assert_int_eq(bgw_config_load_file(path, &cfg, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: routes[0].match.path_prefix: must be normalised (no \"//\")", path);
    ck_assert_str_eq(err, want);
    unlink(path);
    free(path);

    path = write_temp("{\"services\": [\n  oops\n]}");
    ck_assert_int_eq(bgw_config_load_file(path, &cfg, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: line 2 column ", path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
    unlink(path);
    free(path);

    ck_assert_int_eq(bgw_config_load_file("/nonexistent/bgw.json", &cfg, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "/nonexistent/bgw.json: cannot read: No such file or directory");
    ck_assert_int_eq(bgw_config_load_file("/", &cfg, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "/: cannot read: Is a directory");
    ck_assert_ptr_null(cfg);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_contract_example_as_written);
    tcase_add_test(tc, test_contract_example_services);
    tcase_add_test(tc, test_contract_example_route);
    tcase_add_test(tc, test_contract_example_policies);
    tcase_add_test(tc, test_contract_example_kubernetes);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_object_defaults);
    tcase_add_test(tc, test_zero_values_kept);
    tcase_add_test(tc, test_normalisation);
    tcase_add_test(tc, test_empty_document);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_to_json_explicit_defaults);
    tcase_add_test(tc, test_to_json_contract_values);
    tcase_add_test(tc, test_parse_hostport);
    tcase_add_loop_test(tc, test_error_case, 0, (int)(sizeof(err_cases) / sizeof(err_cases[0])));
    tcase_add_test(tc, test_name_too_long);
    tcase_add_test(tc, test_control_characters_stay_on_one_line);
    tcase_add_test(tc, test_json_syntax_error);
    tcase_add_test(tc, test_from_json_not_object);
    tcase_add_test(tc, test_small_error_buffer);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_load_file_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
