/* stats.c - per-worker request counters and latency histograms, and their Prometheus text (see stats.h). */
#include "stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void bgw_stats_request(struct bgw_stats *s, const char *route, const char *service, uint16_t method,
                       unsigned code, uint64_t duration_ns)
{
    uint64_t rs = hash_str(hash_str(0xcbf29ce484222325ull, route) * 31u, service);
    uint64_t h = (rs ^ ((uint64_t)method << 48) ^ ((uint64_t)code << 32)) * 0x9e3779b97f4a7c15ull;
    if (h == 0) h = 1;
    for (uint32_t i = 0; i < BGW_STATS_REQ_SLOTS; i++) {
        struct bgw_stat_req *e = &s->req[(h + i) & (BGW_STATS_REQ_SLOTS - 1)];
        uint64_t eh = LOAD(e->hash);
        if (eh == h && e->method == method && e->code == code && strcmp(e->route, route) == 0 &&
            strcmp(e->service, service) == 0) {
            INC(e->count, 1);
            break;
        }
        if (eh == 0) {
            e->route = intern(route);
            e->service = intern(service);
            e->method = method;
            e->code = (uint16_t)code;
            e->count = 1;
            __atomic_store_n(&e->hash, h, __ATOMIC_RELEASE);
            break;
        }
    }
    uint64_t hh = rs ? rs : 1;
    for (uint32_t i = 0; i < BGW_STATS_HIST_SLOTS; i++) {
        struct bgw_stat_hist *e = &s->hist[(hh + i) & (BGW_STATS_HIST_SLOTS - 1)];
        uint64_t eh = LOAD(e->hash);
        if (eh == 0) {
            e->route = intern(route);
            e->service = intern(service);
            __atomic_store_n(&e->hash, hh, __ATOMIC_RELEASE);
        } else if (eh != hh || strcmp(e->route, route) != 0 || strcmp(e->service, service) != 0) {
            continue;
        }
        double secs = (double)duration_ns / 1e9;
        int b = 0;
        while (b < BGW_HIST_BOUNDS && secs > bgw_hist_bounds[b]) b++;
        INC(e->buckets[b], 1);
        INC(e->sum_ns, duration_ns);
        INC(e->count, 1);
        break;
    }
}

/* Label values are config names ([A-Za-z0-9._-]) and fixed strings: nothing to escape. */

struct agg_req { const char *route, *service; uint16_t method, code; uint64_t count; };
struct agg_hist { const char *route, *service; uint64_t buckets[BGW_HIST_BOUNDS + 1]; uint64_t sum_ns, count; };

int bgw_stats_render(struct bgw_stats *const *workers, size_t n, char **buf, size_t *len, size_t *cap)
{
    /* Sum across workers with a simple quadratic merge: label sets are small. */
    size_t nreq = 0, nhist = 0;
    struct agg_req *ar = calloc(BGW_STATS_REQ_SLOTS, sizeof *ar);
    struct agg_hist *ah = calloc(BGW_STATS_HIST_SLOTS, sizeof *ah);
    int rc = -1;
    if (!ar || !ah) goto out;
    int64_t in_flight = 0, active = 0;
    for (size_t w = 0; w < n; w++) {
        const struct bgw_stats *s = workers[w];
        in_flight += LOAD(s->in_flight);
        active += LOAD(s->downstream_active);
        for (uint32_t i = 0; i < BGW_STATS_REQ_SLOTS; i++) {
            const struct bgw_stat_req *e = &s->req[i];
            if (!__atomic_load_n(&e->hash, __ATOMIC_ACQUIRE)) continue;
            size_t k = 0;
            for (; k < nreq; k++)
                if (ar[k].method == e->method && ar[k].code == e->code && !strcmp(ar[k].route, e->route) &&
                    !strcmp(ar[k].service, e->service)) break;
            if (k == nreq) {
                if (nreq == BGW_STATS_REQ_SLOTS) continue;
                ar[nreq++] = (struct agg_req){e->route, e->service, e->method, e->code, 0};
            }
            ar[k].count += LOAD(e->count);
        }
        for (uint32_t i = 0; i < BGW_STATS_HIST_SLOTS; i++) {
            const struct bgw_stat_hist *e = &s->hist[i];
            if (!__atomic_load_n(&e->hash, __ATOMIC_ACQUIRE)) continue;
            size_t k = 0;
            for (; k < nhist; k++)
                if (!strcmp(ah[k].route, e->route) && !strcmp(ah[k].service, e->service)) break;
            if (k == nhist) {
                if (nhist == BGW_STATS_HIST_SLOTS) continue;
                ah[nhist].route = e->route;
                ah[nhist].service = e->service;
                nhist++;
            }
            for (int b = 0; b <= BGW_HIST_BOUNDS; b++) ah[k].buckets[b] += LOAD(e->buckets[b]);
            ah[k].sum_ns += LOAD(e->sum_ns);
            ah[k].count += LOAD(e->count);
        }
    }
#define P(...) do { if (bgw_strbuf_printf(buf, len, cap, __VA_ARGS__) < 0) goto out; } while (0)
    P("# HELP bgw_http_requests_total Requests answered, by route, service, method and status code.\n"
      "# TYPE bgw_http_requests_total counter\n");
    for (size_t k = 0; k < nreq; k++)
        P("bgw_http_requests_total{route=\"%s\",service=\"%s\",method=\"%s\",code=\"%u\"} %llu\n", ar[k].route,
          ar[k].service, bgw_stats_method_names[ar[k].method], ar[k].code, (unsigned long long)ar[k].count);
    P("# HELP bgw_http_request_duration_seconds Time from a request's head to the end of its response.\n"
      "# TYPE bgw_http_request_duration_seconds histogram\n");
    for (size_t k = 0; k < nhist; k++) {
        uint64_t cum = 0;
        for (int b = 0; b < BGW_HIST_BOUNDS; b++) {
            cum += ah[k].buckets[b];
            P("bgw_http_request_duration_seconds_bucket{route=\"%s\",service=\"%s\",le=\"%g\"} %llu\n",
              ah[k].route, ah[k].service, bgw_hist_bounds[b], (unsigned long long)cum);
        }
        cum += ah[k].buckets[BGW_HIST_BOUNDS];
        P("bgw_http_request_duration_seconds_bucket{route=\"%s\",service=\"%s\",le=\"+Inf\"} %llu\n",
          ah[k].route, ah[k].service, (unsigned long long)cum);
        P("bgw_http_request_duration_seconds_sum{route=\"%s\",service=\"%s\"} %.9f\n", ah[k].route,
          ah[k].service, (double)ah[k].sum_ns / 1e9);
        P("bgw_http_request_duration_seconds_count{route=\"%s\",service=\"%s\"} %llu\n", ah[k].route,
          ah[k].service, (unsigned long long)ah[k].count);
    }
    P("# HELP bgw_http_requests_in_flight Requests being served.\n# TYPE bgw_http_requests_in_flight gauge\n"
      "bgw_http_requests_in_flight %lld\n", (long long)in_flight);
    P("# HELP bgw_downstream_connections_active Open client connections.\n"
      "# TYPE bgw_downstream_connections_active gauge\nbgw_downstream_connections_active %lld\n",
      (long long)active);
#undef P
    rc = 0;
out:
    free(ar);
    free(ah);
    return rc;
}
