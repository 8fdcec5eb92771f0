/* lb.c - endpoint choice per service (see lb.h). */
#include "lb.h"

#include <stdbool.h>

#include "outlier.h"

long bgw_lb_pick(struct bgw_worker *w, const struct bgw_snap_service *ss, struct bgw_svc_rt *rt,
                 struct bgw_pool *const *pools)
{
    return bgw_lb_pick_except(w, ss, rt, pools, UINT32_MAX);
}

/* Which healthy endpoints are candidates: not ejected (unless in panic), not `avoid` (unless alone). */
struct cand {
    bool skip_ejected;
    uint32_t avoid;
    uint64_t now;
};

static bool is_cand(const struct cand *k, struct bgw_pool *const *pools, uint32_t i)
{
    if (i == k->avoid) return false;
    return !k->skip_ejected || !pools[i]->od || !bgw_outlier_ejected(pools[i]->od, k->now);
}

long bgw_lb_pick_except(struct bgw_worker *w, const struct bgw_snap_service *ss, struct bgw_svc_rt *rt,
                        struct bgw_pool *const *pools, uint32_t avoid)
{
    uint32_t n = ss->n_healthy;
    if (n == 0) return -1;
    if (n == 1) return ss->healthy[0];
    struct cand k = {ss->cfg->has_outlier_detection, UINT32_MAX, w->now_ms};
    uint32_t m = n;
    if (k.skip_ejected) {
        m = 0;
        for (uint32_t j = 0; j < n; j++) m += is_cand(&k, pools, ss->healthy[j]);
        if (bgw_outlier_panic(m, n)) {
            k.skip_ejected = false;
            m = n;
        }
    }
    if (avoid != UINT32_MAX) {
        k.avoid = avoid;
        uint32_t m2 = 0;
        for (uint32_t j = 0; j < n; j++) m2 += is_cand(&k, pools, ss->healthy[j]);
        if (m2 == 0) k.avoid = UINT32_MAX;
        else m = m2;
    }
    if (!k.skip_ejected && k.avoid == UINT32_MAX) {
        /* Every healthy endpoint is a candidate: the plain policies. */
        switch (ss->cfg->lb) {
        case BGW_LB_RANDOM:
            return ss->healthy[bgw_worker_rand(w) % n];
        case BGW_LB_LEAST_REQUEST: {
            /* Fewest requests in flight; ties broken by a rotating start so equals share the load. */
            uint32_t start = rt->rr++ % n, best = ss->healthy[start];
            for (uint32_t j = 1; j < n; j++) {
                uint32_t i = ss->healthy[(start + j) % n];
                if (pools[i]->n_active < pools[best]->n_active) best = i;
            }
            return best;
        }
        case BGW_LB_ROUND_ROBIN:
        default:
            return ss->healthy[rt->rr++ % n];
        }
    }
    /* m candidates among the healthy ones: the same policies over them. */
    uint32_t target = ss->cfg->lb == BGW_LB_RANDOM ? (uint32_t)(bgw_worker_rand(w) % m) : rt->rr++ % m;
    long best = -1;
    for (uint32_t j = 0, seen = 0; j < n; j++) {
        uint32_t i = ss->healthy[j];
        if (!is_cand(&k, pools, i)) continue;
        if (ss->cfg->lb == BGW_LB_LEAST_REQUEST) {
            /* rotating start: candidates from `target` on win ties */
            if (best < 0 || pools[i]->n_active < pools[best]->n_active ||
                (pools[i]->n_active == pools[best]->n_active && seen == target))
                best = i;
        } else if (seen == target) {
            return i;
        }
        seen++;
    }
    return best;
}
