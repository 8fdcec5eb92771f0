/*
 * circuit_breaker.h - per-proxy circuit breakers per service, with Envoy's meaning: limits on the requests
 * active at a service (max_requests), waiting for a connection (max_pending_requests) and being retried
 * (max_retries). The counters are shared by every worker of the proxy (atomics in a registry keyed by
 * service name), so a limit holds per proxy and survives config swaps.
 *
 * Also the retry budget: retries may be at most BGW_RETRY_BUDGET_PCT of the service's active requests,
 * with an allowance of BGW_RETRY_BUDGET_MIN so a service with little traffic may still retry.
 */
#ifndef BGW_CIRCUIT_BREAKER_H
#define BGW_CIRCUIT_BREAKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define BGW_RETRY_BUDGET_PCT 20u
#define BGW_RETRY_BUDGET_MIN 3u

enum bgw_cb_kind { BGW_CB_REQUESTS = 0, BGW_CB_PENDING, BGW_CB_RETRIES, BGW_CB_KINDS };

struct bgw_cb {
    struct bgw_cb *next;              /* registry list */
    char *name;                       /* the service */
    atomic_uint count[BGW_CB_KINDS];  /* in use now */
    atomic_uint open;                 /* bits (1 << kind) of the limits that refused something */
};

/* The shared breaker of a service, created on first use; it lives until bgw_cb_registry_free().
 * Thread-safe. NULL when out of memory. */
struct bgw_cb *bgw_cb_get(const char *service);
/* Free every breaker (at exit, when no worker runs). */
void bgw_cb_registry_free(void);

/* Outcome of an acquire: whether it was granted and whether this call opened the breaker (the caller
 * counts that in its bgw_circuit_breaker_open gauge with +1). */
struct bgw_cb_result {
    bool granted;
    bool opened;
};

/*
 * Take one unit of kind if fewer than limit are in use. A refusal marks the limit open (opened tells
 * whether this call was the one to open it). Thread-safe.
 */
struct bgw_cb_result bgw_cb_acquire(struct bgw_cb *cb, enum bgw_cb_kind kind, uint32_t limit);
/* Take one unit of kind without a limit (counted for the retry budget). */
void bgw_cb_add(struct bgw_cb *cb, enum bgw_cb_kind kind);
/*
 * Give back one unit of kind taken by bgw_cb_acquire or bgw_cb_add. Returns true when this call closed
 * the limit (the count fell below limit while it was open): the caller counts -1 in its gauge.
 */
bool bgw_cb_release(struct bgw_cb *cb, enum bgw_cb_kind kind, uint32_t limit);

/*
 * Whether one more retry fits the retry budget: retries in progress below
 * max(BGW_RETRY_BUDGET_MIN, active requests * BGW_RETRY_BUDGET_PCT / 100). Pure; used with the counts.
 */
bool bgw_cb_budget_allows(uint32_t active_requests, uint32_t active_retries);

#endif
