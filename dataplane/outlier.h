/*
 * outlier.h - passive outlier detection: an endpoint that fails consecutive_5xx times in a row (5xx
 * responses, connect failures, resets, per-try timeouts) is ejected from load balancing for
 * base_ejection_ms x the number of times it was ejected (capped), while at most max_ejection_percent of
 * the service's endpoints are ejected at once.
 *
 * State is per proxy: a registry keyed by service name, then endpoint address, shared by every worker
 * (atomics; a per-service mutex around the ejection decision). It survives config swaps. Time is passed
 * in (milliseconds of CLOCK_MONOTONIC in the proxy, anything monotonic in tests).
 */
#ifndef BGW_OUTLIER_H
#define BGW_OUTLIER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#define BGW_OUTLIER_MAX_EJECTION_MS 300000u    /* an ejection lasts at most max(this, base_ejection_ms) */
#define BGW_OUTLIER_PANIC_PCT 50u              /* below this share of endpoints available: use them all */

struct bgw_outlier_ep {
    struct bgw_outlier_ep *next;
    char *address;
    atomic_uint consecutive;          /* failures in a row */
    atomic_uint_fast64_t ejected_until;   /* 0, or the time the ejection ends */
    uint32_t times_ejected;           /* under the service's lock */
};

struct bgw_outlier_svc {
    struct bgw_outlier_svc *next;
    char *name;
    pthread_mutex_t lock;
    struct bgw_outlier_ep *eps;       /* every address seen for the service */
};

/* The shared state of a service / of an endpoint address of it, created on first use; it lives until
 * bgw_outlier_registry_free(). Thread-safe. NULL when out of memory. */
struct bgw_outlier_svc *bgw_outlier_svc_get(const char *service);
struct bgw_outlier_ep *bgw_outlier_ep_get(struct bgw_outlier_svc *s, const char *address);
/* Free everything (at exit, when no worker runs; tests). */
void bgw_outlier_registry_free(void);

/* Whether ep is ejected at now_ms. */
static inline bool bgw_outlier_ejected(const struct bgw_outlier_ep *ep, uint64_t now_ms)
{
    return atomic_load_explicit(&((struct bgw_outlier_ep *)ep)->ejected_until, memory_order_relaxed) > now_ms;
}

/*
 * Report the outcome of one try on ep, an endpoint of s, which has n_endpoints endpoints in the config in
 * use. A success resets the run of failures. A failure that completes a run of cfg->consecutive_5xx ejects
 * ep, unless ejecting it would take the ejected share of the service over cfg->max_ejection_percent.
 * Returns true when this call ejected ep (the caller counts bgw_outlier_ejections_total).
 */
bool bgw_outlier_report(struct bgw_outlier_svc *s, struct bgw_outlier_ep *ep, bool failure,
                        const struct bgw_outlier_detection *cfg, uint32_t n_endpoints, uint64_t now_ms);

/* How long the next ejection of an endpoint ejected `times` times before lasts. */
uint64_t bgw_outlier_ejection_ms(const struct bgw_outlier_detection *cfg, uint32_t times);

/* Panic mode: with `available` of `total` endpoints usable, whether to balance over all of them instead. */
static inline bool bgw_outlier_panic(uint32_t available, uint32_t total)
{
    return (uint64_t)available * 100 < (uint64_t)total * BGW_OUTLIER_PANIC_PCT;
}

#endif
