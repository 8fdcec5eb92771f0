/* lb.c - endpoint choice per service (see lb.h). */
#include "lb.h"

long bgw_lb_pick(struct bgw_worker *w, const struct bgw_snap_service *ss, struct bgw_svc_rt *rt,
                 struct bgw_pool *const *pools)
{
    uint32_t n = ss->n_healthy;
    if (n == 0) return -1;
    if (n == 1) return ss->healthy[0];
    switch (ss->cfg->lb) {
    case BGW_LB_RANDOM:
        return ss->healthy[bgw_worker_rand(w) % n];
    case BGW_LB_LEAST_REQUEST: {
        /* Fewest requests in flight; ties broken by a rotating start so equals share the load. */
        uint32_t start = rt->rr++ % n, best = ss->healthy[start];
        for (uint32_t k = 1; k < n; k++) {
            uint32_t i = ss->healthy[(start + k) % n];
            if (pools[i]->n_active < pools[best]->n_active) best = i;
        }
        return best;
    }
    case BGW_LB_ROUND_ROBIN:
    default:
        return ss->healthy[rt->rr++ % n];
    }
}
