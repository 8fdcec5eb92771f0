/* stats.c - per-worker counters, gauges and latency histograms, and their Prometheus text (see stats.h). */
#include "stats.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

const double bgw_hist_bounds[BGW_HIST_BOUNDS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                 0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10, 30};

const char *const bgw_stats_method_names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS",
                                              "TRACE", "PATCH", "OTHER"};
#define N_METHODS (sizeof bgw_stats_method_names / sizeof bgw_stats_method_names[0])

uint16_t bgw_stats_method(const char *m, size_t len)
{
    for (uint16_t i = 0; (size_t)i + 1 < N_METHODS; i++)
        if (strlen(bgw_stats_method_names[i]) == len && memcmp(bgw_stats_method_names[i], m, len) == 0) return i;
    return (uint16_t)(N_METHODS - 1);
}

static uint64_t hash_str(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define INC(x, d) STORE(x, LOAD(x) + (d))

/* Interned label strings live as long as the process: names come from configs and are few. */
static const char *intern(const char *s)
{
    char *d = strdup(s);
    return d ? d : "?";
}

/* A slot's key hash: the label strings hashed once (labels_hash), then mixed with the small fields, so
 * that a request's counter and histogram share one pass over its route and service names. */
static uint64_t labels_hash(const char *a, const char *b)
{
    return hash_str(hash_str(0xcbf29ce484222325ull, a) * 31u, b);
}

static uint64_t key_mix(uint64_t lh, uint8_t family, uint16_t method, uint16_t code)
{
    uint64_t h = (lh ^ ((uint64_t)family << 56) ^ ((uint64_t)method << 48) ^ ((uint64_t)code << 32)) *
                 0x9e3779b97f4a7c15ull;
    return h ? h : 1;
}

static uint64_t key_hash(uint8_t family, const char *a, const char *b, uint16_t method, uint16_t code)
{
    return key_mix(labels_hash(a, b), family, method, code);
}

/* The histogram bounds in nanoseconds (bgw_hist_bounds x 1e9), for an integer bucket search. */
static const uint64_t hist_bounds_ns[BGW_HIST_BOUNDS] = {
    100000ull,    250000ull,    500000ull,    1000000ull,    2500000ull,    5000000ull,
    10000000ull,  25000000ull,  50000000ull,  100000000ull,  250000000ull,  500000000ull,
    1000000000ull, 2500000000ull, 5000000000ull, 10000000000ull, 30000000000ull};

static void counter_add_h(struct bgw_stats *s, uint64_t lh, uint8_t family, const char *a, const char *b,
                          uint16_t method, uint16_t code, int64_t d)
{
#ifdef BGW_STATS_OFF
    if (family != BGW_STAT_UPSTREAM_CONNS) return;    /* benchmark baseline: count nothing per request */
#endif
    uint64_t h = key_mix(lh, family, method, code);
    for (uint32_t i = 0; i < BGW_STATS_COUNTER_SLOTS; i++) {
        struct bgw_stat_counter *e = &s->counters[(h + i) & (BGW_STATS_COUNTER_SLOTS - 1)];
        uint64_t eh = LOAD(e->hash);
        if (eh == 0) {
            e->a = intern(a);
            e->b = intern(b);
            e->family = family;
            e->method = method;
            e->code = code;
            e->value = d;
            __atomic_store_n(&e->hash, h, __ATOMIC_RELEASE);
            return;
        }
        if (eh == h && e->family == family && e->method == method && e->code == code && !strcmp(e->a, a) &&
            !strcmp(e->b, b)) {
            INC(e->value, d);
            return;
        }
    }
}

static void counter_add(struct bgw_stats *s, uint8_t family, const char *a, const char *b, uint16_t method,
                        uint16_t code, int64_t d)
{
    counter_add_h(s, labels_hash(a, b), family, a, b, method, code, d);
}

static void hist_add_h(struct bgw_stats *s, uint64_t lh, uint8_t family, const char *a, const char *b, uint64_t ns)
{
#ifdef BGW_STATS_OFF
    return;
#endif
    uint64_t h = key_mix(lh, family, 0, 0);
    for (uint32_t i = 0; i < BGW_STATS_HIST_SLOTS; i++) {
        struct bgw_stat_hist *e = &s->hist[(h + i) & (BGW_STATS_HIST_SLOTS - 1)];
        uint64_t eh = LOAD(e->hash);
        if (eh == 0) {
            e->a = intern(a);
            e->b = intern(b);
            e->family = family;
            __atomic_store_n(&e->hash, h, __ATOMIC_RELEASE);
        } else if (eh != h || e->family != family || strcmp(e->a, a) != 0 || strcmp(e->b, b) != 0) {
            continue;
        }
        int k = 0;
        while (k < BGW_HIST_BOUNDS && ns > hist_bounds_ns[k]) k++;
        INC(e->buckets[k], 1);
        INC(e->sum_ns, ns);
        INC(e->count, 1);
        return;
    }
}

void bgw_stats_request(struct bgw_stats *s, const char *route, const char *service, uint16_t method,
                       unsigned code, uint64_t duration_ns)
{
    uint64_t lh = labels_hash(route, service);
    counter_add_h(s, lh, BGW_STAT_REQUESTS, route, service, method, (uint16_t)code, 1);
    hist_add_h(s, lh, BGW_STAT_REQUEST_DURATION, route, service, duration_ns);
}

void bgw_stats_upstream(struct bgw_stats *s, const char *service, unsigned code, uint64_t duration_ns)
{
    uint64_t lh = labels_hash(service, "");
    counter_add_h(s, lh, BGW_STAT_UPSTREAM_REQUESTS, service, "", 0, (uint16_t)code, 1);
    hist_add_h(s, lh, BGW_STAT_UPSTREAM_DURATION, service, "", duration_ns);
}

void bgw_stats_upstream_conns(struct bgw_stats *s, const char *service, int d)
{
    counter_add(s, BGW_STAT_UPSTREAM_CONNS, service, "", 0, 0, d);
}

void bgw_stats_retry(struct bgw_stats *s, const char *route)
{
    counter_add(s, BGW_STAT_RETRIES, route, "", 0, 0, 1);
}

void bgw_stats_ratelimit_rejected(struct bgw_stats *s, const char *route)
{
    counter_add(s, BGW_STAT_RATELIMIT_REJECTED, route, "", 0, 0, 1);
}

void bgw_stats_auth_rejected(struct bgw_stats *s, const char *route, const char *reason)
{
    counter_add(s, BGW_STAT_AUTH_REJECTED, route, reason, 0, 0, 1);
}

void bgw_stats_outlier_ejection(struct bgw_stats *s, const char *service)
{
    counter_add(s, BGW_STAT_OUTLIER_EJECTIONS, service, "", 0, 0, 1);
}

void bgw_stats_circuit(struct bgw_stats *s, const char *service, int d)
{
    counter_add(s, BGW_STAT_CIRCUIT_OPEN, service, "", 0, 0, d);
}

/* ---- scrape ---- */

/* Label values are config names ([A-Za-z0-9._-]) and fixed strings: nothing to escape. */

struct agg {
    const struct bgw_stat_counter *key;
    int64_t value;
};

struct agg_hist {
    const struct bgw_stat_hist *key;
    uint64_t buckets[BGW_HIST_BOUNDS + 1];
    uint64_t sum_ns, count;
};

/* A small open-addressing map from a slot's labels to its sum over workers. */
static size_t agg_find(struct agg *t, size_t cap, const struct bgw_stat_counter *e, uint64_t h)
{
    for (size_t i = 0;; i++) {
        size_t k = (h + i) & (cap - 1);
        const struct bgw_stat_counter *x = t[k].key;
        if (!x || (x->family == e->family && x->method == e->method && x->code == e->code && !strcmp(x->a, e->a) &&
                   !strcmp(x->b, e->b)))
            return k;
    }
}

static size_t agg_hist_find(struct agg_hist *t, size_t cap, const struct bgw_stat_hist *e, uint64_t h)
{
    for (size_t i = 0;; i++) {
        size_t k = (h + i) & (cap - 1);
        const struct bgw_stat_hist *x = t[k].key;
        if (!x || (x->family == e->family && !strcmp(x->a, e->a) && !strcmp(x->b, e->b))) return k;
    }
}

#define P(...) do { if (bgw_strbuf_printf(buf, len, cap, __VA_ARGS__) < 0) return -1; } while (0)

static int render_counters(const struct agg *t, size_t cap, uint8_t family, char **buf, size_t *len, size_t *ncap)
{
    size_t *cp = ncap;
    for (size_t k = 0; k < cap; k++) {
        const struct bgw_stat_counter *e = t[k].key;
        if (!e || e->family != family) continue;
        unsigned long long v = (unsigned long long)(t[k].value < 0 ? 0 : t[k].value);
        int rc = 0;
        switch (family) {
        case BGW_STAT_REQUESTS:
            rc = bgw_strbuf_printf(buf, len, cp,
                                   "bgw_http_requests_total{route=\"%s\",service=\"%s\",method=\"%s\",code=\"%u\"} %llu\n",
                                   e->a, e->b, bgw_stats_method_names[e->method], e->code, v);
            break;
        case BGW_STAT_UPSTREAM_REQUESTS:
            rc = bgw_strbuf_printf(buf, len, cp, "bgw_upstream_requests_total{service=\"%s\",code=\"%u\"} %llu\n",
                                   e->a, e->code, v);
            break;
        case BGW_STAT_UPSTREAM_CONNS:
            rc = bgw_strbuf_printf(buf, len, cp, "bgw_upstream_connections_active{service=\"%s\"} %llu\n", e->a, v);
            break;
        case BGW_STAT_RETRIES:
            rc = bgw_strbuf_printf(buf, len, cp, "bgw_retries_total{route=\"%s\"} %llu\n", e->a, v);
            break;
        case BGW_STAT_RATELIMIT_REJECTED:
            rc = bgw_strbuf_printf(buf, len, cp, "bgw_ratelimit_rejected_total{route=\"%s\"} %llu\n", e->a, v);
            break;
        case BGW_STAT_AUTH_REJECTED:
            rc = bgw_strbuf_printf(buf, len, cp, "bgw_auth_rejected_total{route=\"%s\",reason=\"%s\"} %llu\n",
                                   e->a, e->b, v);
            break;
        case BGW_STAT_OUTLIER_EJECTIONS:
            rc = bgw_strbuf_printf(buf, len, cp, "bgw_outlier_ejections_total{service=\"%s\"} %llu\n", e->a, v);
            break;
        case BGW_STAT_CIRCUIT_OPEN:
            rc = bgw_strbuf_printf(buf, len, cp, "bgw_circuit_breaker_open{service=\"%s\"} %d\n", e->a, v > 0);
            break;
        default:
            break;
        }
        if (rc < 0) return -1;
    }
    return 0;
}

static int render_hists(const struct agg_hist *t, size_t tcap, uint8_t family, const char *name, char **buf,
                        size_t *len, size_t *cap)
{
    for (size_t k = 0; k < tcap; k++) {
        const struct bgw_stat_hist *e = t[k].key;
        if (!e || e->family != family) continue;
        char labels[300];
        if (family == BGW_STAT_REQUEST_DURATION)
            snprintf(labels, sizeof labels, "route=\"%s\",service=\"%s\"", e->a, e->b);
        else
            snprintf(labels, sizeof labels, "service=\"%s\"", e->a);
        uint64_t cum = 0;
        for (int b = 0; b < BGW_HIST_BOUNDS; b++) {
            cum += t[k].buckets[b];
            P("%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, bgw_hist_bounds[b], (unsigned long long)cum);
        }
        cum += t[k].buckets[BGW_HIST_BOUNDS];
        P("%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
        P("%s_sum{%s} %.9f\n", name, labels, (double)t[k].sum_ns / 1e9);
        P("%s_count{%s} %llu\n", name, labels, (unsigned long long)t[k].count);
    }
    return 0;
}

/* Families that get a 0 series for every configured route (by_route) or service. */
static const uint8_t seed_route_families[] = {BGW_STAT_RETRIES, BGW_STAT_RATELIMIT_REJECTED};
static const uint8_t seed_service_families[] = {BGW_STAT_UPSTREAM_CONNS, BGW_STAT_OUTLIER_EJECTIONS,
                                                BGW_STAT_CIRCUIT_OPEN};
#define N_SEED_ROUTE (sizeof seed_route_families / sizeof seed_route_families[0])
#define N_SEED_SERVICE (sizeof seed_service_families / sizeof seed_service_families[0])

/* Insert the 0 series of cfg that the workers have not created yet. seeds has room for every one; its
 * entries are keys of ct and must outlive the rendering. */
static void seed_series(struct agg *ct, size_t ccap, const struct bgw_config *cfg, struct bgw_stat_counter *seeds)
{
    size_t k = 0;
    for (size_t f = 0; f < N_SEED_ROUTE + N_SEED_SERVICE; f++) {
        bool by_route = f < N_SEED_ROUTE;
        uint8_t family = by_route ? seed_route_families[f] : seed_service_families[f - N_SEED_ROUTE];
        size_t count = by_route ? cfg->n_routes : cfg->n_services;
        for (size_t i = 0; i < count; i++) {
            struct bgw_stat_counter *e = &seeds[k];
            e->a = by_route ? cfg->routes[i].name : cfg->services[i].name;
            e->b = "";
            e->family = family;
            e->method = 0;
            e->code = 0;
            e->value = 0;
            e->hash = key_hash(family, e->a, e->b, 0, 0);
            size_t slot = agg_find(ct, ccap, e, e->hash);
            if (ct[slot].key) continue;
            ct[slot].key = e;
            k++;
        }
    }
}

int bgw_stats_render(struct bgw_stats *const *workers, size_t n, const struct bgw_config *cfg, char **buf,
                     size_t *len, size_t *cap)
{
    size_t mult = 1;
    while (mult < n) mult *= 2;                   /* room for every worker's distinct series */
    size_t n_seeds = cfg ? N_SEED_ROUTE * cfg->n_routes + N_SEED_SERVICE * cfg->n_services : 0;
    size_t ccap = 2 * BGW_STATS_COUNTER_SLOTS * mult;
    while (ccap < 2 * (BGW_STATS_COUNTER_SLOTS * mult + n_seeds)) ccap *= 2;
    const size_t hcap = 2 * BGW_STATS_HIST_SLOTS * mult;
    struct agg *ct = calloc(ccap, sizeof *ct);
    struct agg_hist *ht = calloc(hcap, sizeof *ht);
    struct bgw_stat_counter *seeds = n_seeds ? calloc(n_seeds, sizeof *seeds) : NULL;
    int rc = -1;
    if (!ct || !ht || (n_seeds && !seeds)) goto out;
    int64_t in_flight = 0, active = 0;
    for (size_t w = 0; w < n; w++) {
        const struct bgw_stats *s = workers[w];
        in_flight += LOAD(s->in_flight);
        active += LOAD(s->downstream_active);
        for (uint32_t i = 0; i < BGW_STATS_COUNTER_SLOTS; i++) {
            const struct bgw_stat_counter *e = &s->counters[i];
            uint64_t h = __atomic_load_n(&e->hash, __ATOMIC_ACQUIRE);
            if (!h) continue;
            size_t k = agg_find(ct, ccap, e, h);
            if (!ct[k].key) ct[k].key = e;
            ct[k].value += LOAD(e->value);
        }
        for (uint32_t i = 0; i < BGW_STATS_HIST_SLOTS; i++) {
            const struct bgw_stat_hist *e = &s->hist[i];
            uint64_t h = __atomic_load_n(&e->hash, __ATOMIC_ACQUIRE);
            if (!h) continue;
            size_t k = agg_hist_find(ht, hcap, e, h);
            if (!ht[k].key) ht[k].key = e;
            for (int b = 0; b <= BGW_HIST_BOUNDS; b++) ht[k].buckets[b] += LOAD(e->buckets[b]);
            ht[k].sum_ns += LOAD(e->sum_ns);
            ht[k].count += LOAD(e->count);
        }
    }
    if (cfg) seed_series(ct, ccap, cfg, seeds);
#undef P
#define P(...) do { if (bgw_strbuf_printf(buf, len, cap, __VA_ARGS__) < 0) goto out; } while (0)
    P("# HELP bgw_http_requests_total Requests answered, by route, service, method and status code.\n"
      "# TYPE bgw_http_requests_total counter\n");
    if (render_counters(ct, ccap, BGW_STAT_REQUESTS, buf, len, cap) < 0) goto out;
    P("# HELP bgw_http_request_duration_seconds Time from a request's head to the end of its response.\n"
      "# TYPE bgw_http_request_duration_seconds histogram\n");
    if (render_hists(ht, hcap, BGW_STAT_REQUEST_DURATION, "bgw_http_request_duration_seconds", buf, len, cap) < 0)
        goto out;
    P("# HELP bgw_http_requests_in_flight Requests being served.\n# TYPE bgw_http_requests_in_flight gauge\n"
      "bgw_http_requests_in_flight %lld\n", (long long)in_flight);
    P("# HELP bgw_downstream_connections_active Open client connections.\n"
      "# TYPE bgw_downstream_connections_active gauge\nbgw_downstream_connections_active %lld\n",
      (long long)active);
    P("# HELP bgw_upstream_requests_total Responses received from upstreams, by service and status code.\n"
      "# TYPE bgw_upstream_requests_total counter\n");
    if (render_counters(ct, ccap, BGW_STAT_UPSTREAM_REQUESTS, buf, len, cap) < 0) goto out;
    P("# HELP bgw_upstream_request_duration_seconds Time from sending a request upstream to the end of its response.\n"
      "# TYPE bgw_upstream_request_duration_seconds histogram\n");
    if (render_hists(ht, hcap, BGW_STAT_UPSTREAM_DURATION, "bgw_upstream_request_duration_seconds", buf, len, cap) < 0)
        goto out;
    P("# HELP bgw_upstream_connections_active Open upstream connections, by service.\n"
      "# TYPE bgw_upstream_connections_active gauge\n");
    if (render_counters(ct, ccap, BGW_STAT_UPSTREAM_CONNS, buf, len, cap) < 0) goto out;
    P("# HELP bgw_retries_total Requests sent again to an upstream after a failed try, by route.\n"
      "# TYPE bgw_retries_total counter\n");
    if (render_counters(ct, ccap, BGW_STAT_RETRIES, buf, len, cap) < 0) goto out;
    P("# HELP bgw_ratelimit_rejected_total Requests answered 429 by a rate limit, by route.\n"
      "# TYPE bgw_ratelimit_rejected_total counter\n");
    if (render_counters(ct, ccap, BGW_STAT_RATELIMIT_REJECTED, buf, len, cap) < 0) goto out;
    P("# HELP bgw_auth_rejected_total Requests answered 401 by an auth policy, by route and reason.\n"
      "# TYPE bgw_auth_rejected_total counter\n");
    if (render_counters(ct, ccap, BGW_STAT_AUTH_REJECTED, buf, len, cap) < 0) goto out;
    P("# HELP bgw_outlier_ejections_total Endpoints ejected by outlier detection, by service.\n"
      "# TYPE bgw_outlier_ejections_total counter\n");
    if (render_counters(ct, ccap, BGW_STAT_OUTLIER_EJECTIONS, buf, len, cap) < 0) goto out;
    P("# HELP bgw_circuit_breaker_open 1 while a service's circuit breaker refuses requests.\n"
      "# TYPE bgw_circuit_breaker_open gauge\n");
    if (render_counters(ct, ccap, BGW_STAT_CIRCUIT_OPEN, buf, len, cap) < 0) goto out;
#undef P
    rc = 0;
out:
    free(ct);
    free(ht);
    free(seeds);
    return rc;
}
