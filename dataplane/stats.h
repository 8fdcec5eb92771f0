/*
 * stats.h - per-worker request statistics, summed by the admin thread at scrape time.
 *
 * The request path writes only its own worker's tables, with plain (relaxed atomic) stores: no locks, no
 * read-modify-write atomics. Slots are claimed once and never move, so a scraper may read them while the
 * worker writes. Label values are bounded: route and service names from the config, a fixed method set,
 * status codes.
 */
#ifndef BGW_STATS_H
#define BGW_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

struct bgw_config;

#define BGW_STATS_COUNTER_SLOTS 4096
#define BGW_STATS_HIST_SLOTS 1024
#define BGW_HIST_BOUNDS 17

/* Upper bounds of the latency histogram buckets, in seconds (+Inf is implicit). */
extern const double bgw_hist_bounds[BGW_HIST_BOUNDS];

/* Series families kept in the tables. */
enum bgw_stat_family {
    BGW_STAT_REQUESTS = 1,        /* counter {route, service, method, code} */
    BGW_STAT_UPSTREAM_REQUESTS,   /* counter {service, code} */
    BGW_STAT_UPSTREAM_CONNS,      /* gauge {service} */
    BGW_STAT_REQUEST_DURATION,    /* histogram {route, service} */
    BGW_STAT_UPSTREAM_DURATION,   /* histogram {service} */
    BGW_STAT_RETRIES,             /* counter {route} */
    BGW_STAT_RATELIMIT_REJECTED,  /* counter {route} */
    BGW_STAT_AUTH_REJECTED,       /* counter {route, reason} */
    BGW_STAT_OUTLIER_EJECTIONS,   /* counter {service} */
    BGW_STAT_CIRCUIT_OPEN,        /* gauge {service}: workers whose breaker for the service is open */
};

struct bgw_stat_counter {
    uint64_t hash;              /* 0: free slot; published last */
    const char *a, *b;          /* label values (interned) */
    uint8_t family;
    uint16_t method;            /* index into bgw_stats_method_names */
    uint16_t code;
    int64_t value;
};

struct bgw_stat_hist {
    uint64_t hash;
    const char *a, *b;
    uint8_t family;
    uint64_t buckets[BGW_HIST_BOUNDS + 1];   /* non-cumulative; last is +Inf */
    uint64_t sum_ns;
    uint64_t count;
};

struct bgw_stats {
    struct bgw_stat_counter counters[BGW_STATS_COUNTER_SLOTS];
    struct bgw_stat_hist hist[BGW_STATS_HIST_SLOTS];
    int64_t in_flight;
    int64_t downstream_active;
};

extern const char *const bgw_stats_method_names[];

/* The label index of a method (unknown methods share "OTHER"). */
uint16_t bgw_stats_method(const char *m, size_t len);

/* Count one finished request. route is "no_route" and service "" for unmatched requests. */
void bgw_stats_request(struct bgw_stats *s, const char *route, const char *service, uint16_t method,
                       unsigned code, uint64_t duration_ns);
/* Count one response received from an upstream of service, duration_ns after the request was sent. */
void bgw_stats_upstream(struct bgw_stats *s, const char *service, unsigned code, uint64_t duration_ns);
/* Add d to the open upstream connections of service. */
void bgw_stats_upstream_conns(struct bgw_stats *s, const char *service, int d);

/* Policy outcomes. reason is a fixed string of the auth module ("missing", "malformed", "expired", ...). */
void bgw_stats_retry(struct bgw_stats *s, const char *route);
void bgw_stats_ratelimit_rejected(struct bgw_stats *s, const char *route);
void bgw_stats_auth_rejected(struct bgw_stats *s, const char *route, const char *reason);
void bgw_stats_outlier_ejection(struct bgw_stats *s, const char *service);
/* A worker's circuit breaker for service opened (d = 1) or closed (d = -1). bgw_circuit_breaker_open is 1
 * while any worker's is open. */
void bgw_stats_circuit(struct bgw_stats *s, const char *service, int d);

static inline void bgw_stats_gauge_add(int64_t *g, int64_t d)
{
    __atomic_store_n(g, __atomic_load_n(g, __ATOMIC_RELAXED) + d, __ATOMIC_RELAXED);
}

/* Append the Prometheus text of these families, summed over n workers, to a growing string. When cfg is
 * not NULL, the route-labelled policy families (bgw_retries_total, bgw_ratelimit_rejected_total) get a
 * 0 series for each of its routes and the service-labelled ones (bgw_upstream_connections_active,
 * bgw_outlier_ejections_total, bgw_circuit_breaker_open) one for each of its services, so that a rate()
 * or an alert sees the series before the first event. Series of routes or services no longer in the
 * config keep their last values (counters never go backwards). Returns 0 or -1 (out of memory). */
int bgw_stats_render(struct bgw_stats *const *workers, size_t n, const struct bgw_config *cfg, char **buf,
                     size_t *len, size_t *cap);

#endif
