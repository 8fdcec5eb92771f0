/*
 * circuit_breaker.c - per-proxy, per-service circuit breakers and the retry budget (see circuit_breaker.h).
 *
 * The registry is a list under a mutex, searched only when a worker first meets a service name; the
 * request path touches only the atomics of a breaker it already holds.
 */
#include "circuit_breaker.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bgw_cb *g_list;

struct bgw_cb *bgw_cb_get(const char *service)
{
    pthread_mutex_lock(&g_lock);
    struct bgw_cb *cb = g_list;
    while (cb && strcmp(cb->name, service) != 0) cb = cb->next;
    if (!cb) {
        cb = calloc(1, sizeof *cb);
        if (cb && !(cb->name = strdup(service))) {
            free(cb);
            cb = NULL;
        }
        if (cb) {
            for (int k = 0; k < BGW_CB_KINDS; k++) atomic_init(&cb->count[k], 0);
            atomic_init(&cb->open, 0);
            cb->next = g_list;
            g_list = cb;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return cb;
}

void bgw_cb_registry_free(void)
{
    pthread_mutex_lock(&g_lock);
    while (g_list) {
        struct bgw_cb *cb = g_list;
        g_list = cb->next;
        free(cb->name);
        free(cb);
    }
    pthread_mutex_unlock(&g_lock);
}

struct bgw_cb_result bgw_cb_acquire(struct bgw_cb *cb, enum bgw_cb_kind kind, uint32_t limit)
{
    struct bgw_cb_result res = {false, false};
    unsigned cur = atomic_load_explicit(&cb->count[kind], memory_order_relaxed);
    while (cur < limit) {
        if (atomic_compare_exchange_weak_explicit(&cb->count[kind], &cur, cur + 1, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            res.granted = true;
            return res;
        }
    }
    unsigned bit = 1u << kind;
    res.opened = !(atomic_fetch_or_explicit(&cb->open, bit, memory_order_relaxed) & bit);
    return res;
}

void bgw_cb_add(struct bgw_cb *cb, enum bgw_cb_kind kind)
{
    atomic_fetch_add_explicit(&cb->count[kind], 1, memory_order_relaxed);
}

bool bgw_cb_release(struct bgw_cb *cb, enum bgw_cb_kind kind, uint32_t limit)
{
    unsigned before = atomic_fetch_sub_explicit(&cb->count[kind], 1, memory_order_relaxed);
    unsigned bit = 1u << kind;
    if (before - 1 >= limit || !(atomic_load_explicit(&cb->open, memory_order_relaxed) & bit)) return false;
    return atomic_fetch_and_explicit(&cb->open, ~bit, memory_order_relaxed) & bit;
}

bool bgw_cb_budget_allows(uint32_t active_requests, uint32_t active_retries)
{
    uint64_t allowed = (uint64_t)active_requests * BGW_RETRY_BUDGET_PCT / 100;
    if (allowed < BGW_RETRY_BUDGET_MIN) allowed = BGW_RETRY_BUDGET_MIN;
    return active_retries < allowed;
}
