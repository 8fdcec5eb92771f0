/*
 * config_json.c - a struct bgw_config back to its JSON document, every default written out, in the key
 * order of the contract's example. bgw_config_from_json() of the result gives an equal config.
 *
 * Absent optional objects (health_check, retry, cors, ...) and absent optional strings are left out;
 * endpoints are always written as {"address", "healthy"} objects; an empty methods list is left out
 * (the document does not allow "methods": []).
 */
#include <stdlib.h>

#include "config_internal.h"

/* Builders record the first failure in *ok and keep going; the caller drops the result if !*ok. */
static void put(json_t *obj, const char *key, json_t *v, bool *ok)
{
    if (!v || json_object_set_new(obj, key, v) < 0)
        *ok = false;
}

static json_t *str(const char *s)
{
    return json_string(s);
}

static json_t *num(uint64_t v)
{
    return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static void append(json_t *arr, json_t *v, bool *ok)
{
    if (!v || json_array_append_new(arr, v) < 0)
        *ok = false;
}

static json_t *strings(char *const *v, size_t n)
{
    json_t *arr = json_array();
    bool ok = arr != NULL;

    for (size_t i = 0; ok && i < n; i++)
        append(arr, str(v[i]), &ok);
    if (!ok) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/* obj itself when ok, else NULL (and obj released). */
static json_t *done(json_t *obj, bool ok)
{
    if (ok)
        return obj;
    json_decref(obj);
    return NULL;
}

/* ---- services ---- */

static json_t *endpoints_json(const struct bgw_service *s)
{
    json_t *arr = json_array();
    bool ok = arr != NULL;

    for (size_t i = 0; ok && i < s->n_endpoints; i++) {
        json_t *e = json_object();

        ok = e != NULL;
        if (ok) {
            put(e, "address", str(s->endpoints[i].address), &ok);
            put(e, "healthy", json_boolean(s->endpoints[i].healthy), &ok);
        }
        append(arr, e, &ok);
    }
    return done(arr, ok);
}

static json_t *kubernetes_json(const struct bgw_k8s_ref *k)
{
    json_t *o = json_object();
    bool ok = o != NULL;

    if (ok) {
        put(o, "namespace", str(k->namespace_), &ok);
        put(o, "service", str(k->service), &ok);
        put(o, "port", str(k->port), &ok);
    }
    return done(o, ok);
}

static json_t *health_check_json(const struct bgw_health_check *h)
{
    json_t *o = json_object();
    bool ok = o != NULL;

    if (ok) {
        put(o, "path", str(h->path), &ok);
        put(o, "interval_ms", num(h->interval_ms), &ok);
        put(o, "timeout_ms", num(h->timeout_ms), &ok);
        put(o, "healthy_threshold", num(h->healthy_threshold), &ok);
        put(o, "unhealthy_threshold", num(h->unhealthy_threshold), &ok);
    }
    return done(o, ok);
}

static json_t *circuit_breaker_json(const struct bgw_circuit_breaker *b)
{
    json_t *o = json_object();
    bool ok = o != NULL;

    if (ok) {
        put(o, "max_pending_requests", num(b->max_pending_requests), &ok);
        put(o, "max_requests", num(b->max_requests), &ok);
        put(o, "max_retries", num(b->max_retries), &ok);
    }
    return done(o, ok);
}

static json_t *outlier_detection_json(const struct bgw_outlier_detection *d)
{
    json_t *o = json_object();
    bool ok = o != NULL;

    if (ok) {
        put(o, "consecutive_5xx", num(d->consecutive_5xx), &ok);
        put(o, "base_ejection_ms", num(d->base_ejection_ms), &ok);
        put(o, "max_ejection_percent", num(d->max_ejection_percent), &ok);
    }
    return done(o, ok);
}

static json_t *service_json(const void *item)
{
    const struct bgw_service *s = item;
    json_t *o = json_object();
    bool ok = o != NULL;

    if (!ok)
        return NULL;
    put(o, "name", str(s->name), &ok);
    if (s->has_kubernetes)
        put(o, "kubernetes", kubernetes_json(&s->kubernetes), &ok);
    else
        put(o, "endpoints", endpoints_json(s), &ok);
    put(o, "lb", str(bgw_lb_kind_name(s->lb)), &ok);
    put(o, "connect_timeout_ms", num(s->connect_timeout_ms), &ok);
    put(o, "max_connections", num(s->max_connections), &ok);
    if (s->has_health_check)
        put(o, "health_check", health_check_json(&s->health_check), &ok);
    if (s->has_circuit_breaker)
        put(o, "circuit_breaker", circuit_breaker_json(&s->circuit_breaker), &ok);
    if (s->has_outlier_detection)
        put(o, "outlier_detection", outlier_detection_json(&s->outlier_detection), &ok);
    return done(o, ok);
}

/* ---- routes ---- */

static json_t *headers_json(const struct bgw_match *m)
{
    json_t *arr = json_array();
    bool ok = arr != NULL;

    for (size_t i = 0; ok && i < m->n_headers; i++) {
        json_t *h = json_object();

        ok = h != NULL;
        if (ok) {
            put(h, "name", str(m->headers[i].name), &ok);
            put(h, "exact", str(m->headers[i].exact), &ok);
        }
        append(arr, h, &ok);
    }
    return done(arr, ok);
}

static json_t *match_json(const struct bgw_match *m)
{
    json_t *o = json_object();
    bool ok = o != NULL;

    if (!ok)
        return NULL;
    if (m->path_prefix)
        put(o, "path_prefix", str(m->path_prefix), &ok);
    else
        put(o, "path_exact", str(m->path_exact), &ok);
    if (m->n_methods)
        put(o, "methods", strings(m->methods, m->n_methods), &ok);
    put(o, "hosts", strings(m->hosts, m->n_hosts), &ok);
    put(o, "headers", headers_json(m), &ok);
    return done(o, ok);
}

static json_t *retry_json(const struct bgw_retry *r)
{
    json_t *o = json_object(), *on = json_array();
    bool ok = o && on;

    for (size_t b = 0; ok && b < BGW__COUNT(bgw__retry_on_names); b++)
        if (r->on & (1u << b))
            append(on, str(bgw__retry_on_names[b]), &ok);
    if (ok) {
        put(o, "attempts", num(r->attempts), &ok);
        put(o, "on", on, &ok);
        on = NULL;
        put(o, "per_try_timeout_ms", num(r->per_try_timeout_ms), &ok);
    }
    json_decref(on);
    return done(o, ok);
}

static json_t *cors_json(const struct bgw_cors *c)
{
    json_t *o = json_object();
    bool ok = o != NULL;

    if (ok) {
        put(o, "allow_origins", strings(c->allow_origins, c->n_allow_origins), &ok);
        put(o, "allow_methods", strings(c->allow_methods, c->n_allow_methods), &ok);
        put(o, "allow_headers", strings(c->allow_headers, c->n_allow_headers), &ok);
        put(o, "expose_headers", strings(c->expose_headers, c->n_expose_headers), &ok);
        put(o, "max_age_s", num(c->max_age_s), &ok);
        put(o, "allow_credentials", json_boolean(c->allow_credentials), &ok);
    }
    return done(o, ok);
}

static json_t *route_json(const void *item)
{
    const struct bgw_route *r = item;
    json_t *o = json_object();
    bool ok = o != NULL;

    if (!ok)
        return NULL;
    put(o, "name", str(r->name), &ok);
    put(o, "match", match_json(&r->match), &ok);
    put(o, "service", str(r->service), &ok);
    if (r->rewrite_prefix)
        put(o, "rewrite_prefix", str(r->rewrite_prefix), &ok);
    put(o, "timeout_ms", num(r->timeout_ms), &ok);
    if (r->has_retry)
        put(o, "retry", retry_json(&r->retry), &ok);
    if (r->rate_limit)
        put(o, "rate_limit", str(r->rate_limit), &ok);
    if (r->auth)
        put(o, "auth", str(r->auth), &ok);
    if (r->has_cors)
        put(o, "cors", cors_json(&r->cors), &ok);
    if (r->has_max_body_bytes)
        put(o, "max_body_bytes", num(r->max_body_bytes), &ok);
    return done(o, ok);
}

/* ---- policies ---- */

static json_t *rate_limit_json(const void *item)
{
    const struct bgw_rate_limit *rl = item;
    json_t *o = json_object();
    bool ok = o != NULL;

    if (ok) {
        put(o, "name", str(rl->name), &ok);
        put(o, "requests", num(rl->requests), &ok);
        put(o, "per", str(bgw__rl_per_names[rl->per]), &ok);
        put(o, "burst", num(rl->burst), &ok);
        put(o, "key", str(rl->key), &ok);
        put(o, "scope", str(bgw__rl_scope_names[rl->scope]), &ok);
    }
    return done(o, ok);
}

static json_t *forward_claims_json(const struct bgw_auth_policy *a)
{
    json_t *o = json_object();
    bool ok = o != NULL;

    for (size_t i = 0; ok && i < a->n_forward_claims; i++)
        put(o, a->forward_claim_names[i], str(a->forward_claim_headers[i]), &ok);
    return done(o, ok);
}

static json_t *auth_policy_json(const void *item)
{
    const struct bgw_auth_policy *a = item;
    json_t *o = json_object();
    bool ok = o != NULL;

    if (!ok)
        return NULL;
    put(o, "name", str(a->name), &ok);
    put(o, "issuer", str(a->issuer), &ok);
    put(o, "audiences", strings(a->audiences, a->n_audiences), &ok);
    put(o, "algorithms", strings(a->algorithms, a->n_algorithms), &ok);
    if (a->jwks_json)
        put(o, "jwks", json_loads(a->jwks_json, 0, NULL), &ok);
    if (a->jwks_uri)
        put(o, "jwks_uri", str(a->jwks_uri), &ok);
    put(o, "forward_claims", forward_claims_json(a), &ok);
    put(o, "clock_skew_s", num(a->clock_skew_s), &ok);
    return done(o, ok);
}

/* ---- the document ---- */

/* items[0..n) (each `size` bytes) as a JSON array of item(items[i]). */
static json_t *list_json(const void *items, size_t n, size_t size, json_t *(*item)(const void *))
{
    json_t *arr = json_array();
    bool ok = arr != NULL;

    for (size_t i = 0; ok && i < n; i++)
        append(arr, item((const char *)items + i * size), &ok);
    return done(arr, ok);
}

json_t *bgw_config_to_json(const struct bgw_config *cfg)
{
    json_t *doc = json_object();
    bool ok = doc != NULL;

    if (!ok)
        return NULL;
    if (cfg->version)
        put(doc, "version", str(cfg->version), &ok);
    put(doc, "services", list_json(cfg->services, cfg->n_services, sizeof(*cfg->services), service_json), &ok);
    put(doc, "routes", list_json(cfg->routes, cfg->n_routes, sizeof(*cfg->routes), route_json), &ok);
    put(doc, "rate_limits",
        list_json(cfg->rate_limits, cfg->n_rate_limits, sizeof(*cfg->rate_limits), rate_limit_json), &ok);
    put(doc, "auth_policies",
        list_json(cfg->auth_policies, cfg->n_auth_policies, sizeof(*cfg->auth_policies), auth_policy_json),
        &ok);
    return done(doc, ok);
}
