/*
 * lb.h - choosing an endpoint of a service: round_robin, least_request, random, over healthy endpoints.
 *
 * With outlier detection on, ejected endpoints are left out, unless fewer than BGW_OUTLIER_PANIC_PCT of
 * the healthy endpoints remain (panic mode: balance over every healthy endpoint, ejected or not).
 */
#ifndef BGW_LB_H
#define BGW_LB_H

#include <stdint.h>

#include "snapshot.h"
#include "upstream.h"

/*
 * Index into ss->eps of the endpoint for the next request, or -1 when none is healthy.
 * pools[i] is the worker's pool of ss->eps[i] (its n_active drives least_request, its od the ejection).
 */
long bgw_lb_pick(struct bgw_worker *w, const struct bgw_snap_service *ss, struct bgw_svc_rt *rt,
                 struct bgw_pool *const *pools);

/* The same, avoiding the endpoint `avoid` (an index into ss->eps, or UINT32_MAX) when another one is
 * available: a retry goes to another endpoint when there is one. */
long bgw_lb_pick_except(struct bgw_worker *w, const struct bgw_snap_service *ss, struct bgw_svc_rt *rt,
                        struct bgw_pool *const *pools, uint32_t avoid);

#endif
