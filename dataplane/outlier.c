/*
 * outlier.c - passive outlier detection shared by the workers of a proxy (see outlier.h).
 *
 * The hot path is a relaxed atomic counter per endpoint; the ejection decision (how many of the service's
 * endpoints are ejected now) runs under the service's mutex, only when a run of failures completes.
 */
#include "outlier.h"

#include <stdlib.h>
#include <string.h>

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bgw_outlier_svc *g_list;

struct bgw_outlier_svc *bgw_outlier_svc_get(const char *service)
{
    pthread_mutex_lock(&g_lock);
    struct bgw_outlier_svc *s = g_list;
    while (s && strcmp(s->name, service) != 0) s = s->next;
    if (!s && (s = calloc(1, sizeof *s))) {
        if (!(s->name = strdup(service))) {
            free(s);
            s = NULL;
        } else {
            pthread_mutex_init(&s->lock, NULL);
            s->next = g_list;
            g_list = s;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return s;
}

struct bgw_outlier_ep *bgw_outlier_ep_get(struct bgw_outlier_svc *s, const char *address)
{
    pthread_mutex_lock(&s->lock);
    struct bgw_outlier_ep *ep = s->eps;
    while (ep && strcmp(ep->address, address) != 0) ep = ep->next;
    if (!ep && (ep = calloc(1, sizeof *ep))) {
        if (!(ep->address = strdup(address))) {
            free(ep);
            ep = NULL;
        } else {
            atomic_init(&ep->consecutive, 0);
            atomic_init(&ep->ejected_until, 0);
            ep->next = s->eps;
            s->eps = ep;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return ep;
}

void bgw_outlier_registry_free(void)
{
    pthread_mutex_lock(&g_lock);
    while (g_list) {
        struct bgw_outlier_svc *s = g_list;
        g_list = s->next;
        while (s->eps) {
            struct bgw_outlier_ep *ep = s->eps;
            s->eps = ep->next;
            free(ep->address);
            free(ep);
        }
        pthread_mutex_destroy(&s->lock);
        free(s->name);
        free(s);
    }
    pthread_mutex_unlock(&g_lock);
}

uint64_t bgw_outlier_ejection_ms(const struct bgw_outlier_detection *cfg, uint32_t times)
{
    uint64_t cap = cfg->base_ejection_ms > BGW_OUTLIER_MAX_EJECTION_MS ? cfg->base_ejection_ms
                                                                       : BGW_OUTLIER_MAX_EJECTION_MS;
    uint64_t ms = (uint64_t)cfg->base_ejection_ms * (times ? times : 1);
    return ms < cap ? ms : cap;
}

bool bgw_outlier_report(struct bgw_outlier_svc *s, struct bgw_outlier_ep *ep, bool failure,
                        const struct bgw_outlier_detection *cfg, uint32_t n_endpoints, uint64_t now_ms)
{
    if (!failure) {
        if (atomic_load_explicit(&ep->consecutive, memory_order_relaxed))
            atomic_store_explicit(&ep->consecutive, 0, memory_order_relaxed);
        return false;
    }
    unsigned n = atomic_fetch_add_explicit(&ep->consecutive, 1, memory_order_relaxed) + 1;
    if (n < cfg->consecutive_5xx) return false;
    bool ejected = false;
    pthread_mutex_lock(&s->lock);
    if (!bgw_outlier_ejected(ep, now_ms) && atomic_load_explicit(&ep->consecutive, memory_order_relaxed) >=
                                                 cfg->consecutive_5xx) {
        uint32_t n_ejected = 0;
        for (struct bgw_outlier_ep *x = s->eps; x; x = x->next) n_ejected += bgw_outlier_ejected(x, now_ms);
        /* Envoy's rule: eject while the ejected share is below the maximum. */
        if (n_endpoints && (uint64_t)n_ejected * 100 < (uint64_t)n_endpoints * cfg->max_ejection_percent) {
            uint64_t until = atomic_load_explicit(&ep->ejected_until, memory_order_relaxed);
            /* A long clean run after the last ejection forgets the earlier ones. */
            if (until && now_ms - until >= bgw_outlier_ejection_ms(cfg, ep->times_ejected))
                ep->times_ejected = 0;
            ep->times_ejected++;
            atomic_store_explicit(&ep->ejected_until, now_ms + bgw_outlier_ejection_ms(cfg, ep->times_ejected),
                                  memory_order_relaxed);
            ejected = true;
        }
        atomic_store_explicit(&ep->consecutive, 0, memory_order_relaxed);
    }
    pthread_mutex_unlock(&s->lock);
    return ejected;
}
