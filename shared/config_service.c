/*
 * config_service.c - one entry of services[]: where its endpoints come from (a static list or a Kubernetes
 * Service), how requests are balanced over them, and the health check, circuit breaker and outlier
 * detection settings.
 *
 * The optional objects health_check, circuit_breaker and outlier_detection set has_* when present; their
 * numeric fields hold the defaults either way (health_check.path stays NULL when absent).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

static const char *const service_fields[] = {
    "name", "endpoints", "kubernetes", "lb", "connect_timeout_ms", "max_connections",
    "health_check", "circuit_breaker", "outlier_detection", NULL,
};
static const char *const endpoint_fields[] = {"address", "healthy", NULL};
static const char *const k8s_fields[] = {"namespace", "service", "port", NULL};
static const char *const hc_fields[] = {
    "path", "interval_ms", "timeout_ms", "healthy_threshold", "unhealthy_threshold", NULL,
};
static const char *const cb_fields[] = {"max_pending_requests", "max_requests", "max_retries", NULL};
static const char *const od_fields[] = {"consecutive_5xx", "base_ejection_ms", "max_ejection_percent", NULL};

/* Split the already owned e->address (the value at the current path) into host and port. */
static int split_address(struct bgw__cfg_ctx *c, struct bgw_endpoint *e)
{
    char host[256];
    const char *why;

    if (bgw__hostport(e->address, host, sizeof(host), &e->port, &why) < 0)
        return bgw__fail(c, "%s", why);
    return bgw__strdup(c, host, &e->host);
}

/* "host:port" or {"address": "host:port", "healthy": bool}, at the current path. */
static int parse_endpoint(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_endpoint *e)
{
    size_t mark;
    int rc;

    e->healthy = true;
    if (json_is_string(v)) {
        if (bgw__take_string(c, v, 0, NULL, &e->address) < 0)
            return -1;
        return split_address(c, e);
    }
    if (!json_is_object(v))
        return bgw__fail(c, "must be a \"host:port\" string or an object");
    if (bgw__check_fields(c, v, endpoint_fields) < 0 ||
        bgw__read_string(c, v, "address", BGW__REQUIRED, NULL, &e->address) < 0)
        return -1;
    mark = bgw__path_field(c, "address");
    rc = split_address(c, e);
    bgw__path_restore(c, mark);
    if (rc < 0)
        return -1;
    return bgw__read_bool(c, v, "healthy", true, &e->healthy);
}

static int parse_endpoints(struct bgw__cfg_ctx *c, const json_t *arr, struct bgw_service *s)
{
    size_t n = json_array_size(arr);
    size_t mark = bgw__path_field(c, "endpoints");
    int rc = bgw__calloc(c, n, sizeof(*s->endpoints), (void **)&s->endpoints);

    if (rc == 0)
        s->n_endpoints = n;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t imark = bgw__path_index(c, i);

        rc = parse_endpoint(c, json_array_get(arr, i), &s->endpoints[i]);
        bgw__path_restore(c, imark);
    }
    bgw__path_restore(c, mark);
    return rc;
}

/* kubernetes.port: a port name, or a number given as an integer or a string; kept as text. */
static int parse_k8s_port(struct bgw__cfg_ctx *c, const json_t *k8s, char **out)
{
    const json_t *v = json_object_get(k8s, "port");
    char buf[16];
    size_t mark;
    int rc;

    if (!v)
        return bgw__fail_at(c, "port", "is required");
    mark = bgw__path_field(c, "port");
    if (json_is_integer(v)) {
        json_int_t p = json_integer_value(v);

        if (p < 1 || p > 65535)
            rc = bgw__fail(c, "must be between 1 and 65535");
        else {
            snprintf(buf, sizeof(buf), "%d", (int)p);
            rc = bgw__strdup(c, buf, out);
        }
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        bool numeric = *s && strspn(s, "0123456789") == strlen(s);

        if (numeric && (strlen(s) > 5 || atol(s) < 1 || atol(s) > 65535))
            rc = bgw__fail(c, "must be between 1 and 65535");
        else
            rc = bgw__take_string(c, v, 0, numeric ? NULL : bgw__check_dns_label, out);
    } else {
        rc = bgw__fail(c, "must be a string or an integer");
    }
    bgw__path_restore(c, mark);
    return rc;
}

static int parse_kubernetes(struct bgw__cfg_ctx *c, const json_t *k8s, struct bgw_k8s_ref *k)
{
    size_t mark = bgw__path_field(c, "kubernetes");
    int rc = -1;

    if (bgw__read_string(c, k8s, "namespace", BGW__REQUIRED, bgw__check_dns_label, &k->namespace_) == 0 &&
        bgw__read_string(c, k8s, "service", BGW__REQUIRED, bgw__check_dns_label, &k->service) == 0)
        rc = parse_k8s_port(c, k8s, &k->port);
    bgw__path_restore(c, mark);
    return rc;
}

static void health_check_defaults(struct bgw_health_check *h)
{
    h->interval_ms = BGW_DEFAULT_HC_INTERVAL_MS;
    h->timeout_ms = BGW_DEFAULT_HC_TIMEOUT_MS;
    h->healthy_threshold = BGW_DEFAULT_HC_HEALTHY;
    h->unhealthy_threshold = BGW_DEFAULT_HC_UNHEALTHY;
}

static int read_health_check(struct bgw__cfg_ctx *c, const json_t *o, struct bgw_health_check *h)
{
    if (bgw__read_string(c, o, "path", BGW__REQUIRED, bgw__check_request_path, &h->path) < 0 ||
        bgw__read_u32(c, o, "interval_ms", BGW_DEFAULT_HC_INTERVAL_MS, 1, UINT32_MAX, &h->interval_ms) < 0 ||
        bgw__read_u32(c, o, "timeout_ms", BGW_DEFAULT_HC_TIMEOUT_MS, 1, UINT32_MAX, &h->timeout_ms) < 0 ||
        bgw__read_u32(c, o, "healthy_threshold", BGW_DEFAULT_HC_HEALTHY, 1, UINT32_MAX,
                      &h->healthy_threshold) < 0 ||
        bgw__read_u32(c, o, "unhealthy_threshold", BGW_DEFAULT_HC_UNHEALTHY, 1, UINT32_MAX,
                      &h->unhealthy_threshold) < 0)
        return -1;
    if (h->timeout_ms > h->interval_ms)
        return bgw__fail_at(c, "timeout_ms", "must not exceed interval_ms (%u)", (unsigned)h->interval_ms);
    return 0;
}

static int read_circuit_breaker(struct bgw__cfg_ctx *c, const json_t *o, struct bgw_circuit_breaker *b)
{
    if (bgw__read_u32(c, o, "max_pending_requests", BGW_DEFAULT_CB_MAX, 0, UINT32_MAX,
                      &b->max_pending_requests) < 0 ||
        bgw__read_u32(c, o, "max_requests", BGW_DEFAULT_CB_MAX, 0, UINT32_MAX, &b->max_requests) < 0 ||
        bgw__read_u32(c, o, "max_retries", BGW_DEFAULT_CB_MAX_RETRIES, 0, UINT32_MAX, &b->max_retries) < 0)
        return -1;
    return 0;
}

static int read_outlier_detection(struct bgw__cfg_ctx *c, const json_t *o, struct bgw_outlier_detection *d)
{
    if (bgw__read_u32(c, o, "consecutive_5xx", BGW_DEFAULT_OD_CONSECUTIVE_5XX, 1, UINT32_MAX,
                      &d->consecutive_5xx) < 0 ||
        bgw__read_u32(c, o, "base_ejection_ms", BGW_DEFAULT_OD_BASE_EJECTION_MS, 1, UINT32_MAX,
                      &d->base_ejection_ms) < 0 ||
        bgw__read_u32(c, o, "max_ejection_percent", BGW_DEFAULT_OD_MAX_EJECTION_PCT, 0, 100,
                      &d->max_ejection_percent) < 0)
        return -1;
    return 0;
}

/* health_check, circuit_breaker, outlier_detection: each optional, has_* set when present. */
static int parse_options(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_service *s)
{
    const json_t *hc, *cb, *od;
    size_t mark;
    int rc = 0;

    if (bgw__read_object(c, v, "health_check", 0, hc_fields, &hc) < 0 ||
        bgw__read_object(c, v, "circuit_breaker", 0, cb_fields, &cb) < 0 ||
        bgw__read_object(c, v, "outlier_detection", 0, od_fields, &od) < 0)
        return -1;
    s->has_health_check = hc != NULL;
    s->has_circuit_breaker = cb != NULL;
    s->has_outlier_detection = od != NULL;
    if (hc) {
        mark = bgw__path_field(c, "health_check");
        rc = read_health_check(c, hc, &s->health_check);
        bgw__path_restore(c, mark);
    }
    if (rc == 0 && cb) {
        mark = bgw__path_field(c, "circuit_breaker");
        rc = read_circuit_breaker(c, cb, &s->circuit_breaker);
        bgw__path_restore(c, mark);
    }
    if (rc == 0 && od) {
        mark = bgw__path_field(c, "outlier_detection");
        rc = read_outlier_detection(c, od, &s->outlier_detection);
        bgw__path_restore(c, mark);
    }
    return rc;
}

static void service_defaults(struct bgw_service *s)
{
    s->lb = BGW_LB_ROUND_ROBIN;
    s->connect_timeout_ms = BGW_DEFAULT_CONNECT_TIMEOUT_MS;
    s->max_connections = BGW_DEFAULT_MAX_CONNECTIONS;
    health_check_defaults(&s->health_check);
    s->circuit_breaker.max_pending_requests = BGW_DEFAULT_CB_MAX;
    s->circuit_breaker.max_requests = BGW_DEFAULT_CB_MAX;
    s->circuit_breaker.max_retries = BGW_DEFAULT_CB_MAX_RETRIES;
    s->outlier_detection.consecutive_5xx = BGW_DEFAULT_OD_CONSECUTIVE_5XX;
    s->outlier_detection.base_ejection_ms = BGW_DEFAULT_OD_BASE_EJECTION_MS;
    s->outlier_detection.max_ejection_percent = BGW_DEFAULT_OD_MAX_EJECTION_PCT;
}

/* endpoints xor kubernetes. */
static int parse_source(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_service *s)
{
    const json_t *eps, *k8s;

    if (bgw__read_array(c, v, "endpoints", 0, &eps) < 0 ||
        bgw__read_object(c, v, "kubernetes", 0, k8s_fields, &k8s) < 0)
        return -1;
    if (eps && k8s)
        return bgw__fail(c, "endpoints and kubernetes are mutually exclusive");
    if (!eps && !k8s)
        return bgw__fail(c, "one of endpoints or kubernetes is required");
    s->has_kubernetes = k8s != NULL;
    return eps ? parse_endpoints(c, eps, s) : parse_kubernetes(c, k8s, &s->kubernetes);
}

int bgw__parse_service(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_service *s)
{
    int lb;

    service_defaults(s);
    if (bgw__check_fields(c, v, service_fields) < 0 || bgw__read_name(c, v, &s->name) < 0 ||
        parse_source(c, v, s) < 0 ||
        bgw__read_enum(c, v, "lb", bgw__lb_names, BGW__COUNT(bgw__lb_names), BGW_LB_ROUND_ROBIN, &lb) < 0 ||
        bgw__read_u32(c, v, "connect_timeout_ms", BGW_DEFAULT_CONNECT_TIMEOUT_MS, 1, UINT32_MAX,
                      &s->connect_timeout_ms) < 0 ||
        bgw__read_u32(c, v, "max_connections", BGW_DEFAULT_MAX_CONNECTIONS, 1, UINT32_MAX,
                      &s->max_connections) < 0)
        return -1;
    s->lb = (enum bgw_lb_kind)lb;
    return parse_options(c, v, s);
}

void bgw__service_free(struct bgw_service *s)
{
    free(s->name);
    for (size_t i = 0; i < s->n_endpoints; i++) {
        free(s->endpoints[i].address);
        free(s->endpoints[i].host);
    }
    free(s->endpoints);
    free(s->kubernetes.namespace_);
    free(s->kubernetes.service);
    free(s->kubernetes.port);
    free(s->health_check.path);
}
