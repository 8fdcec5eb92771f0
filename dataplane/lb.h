/*
 * lb.h - choosing an endpoint of a service: round_robin, least_request, random, over healthy endpoints.
 */
#ifndef BGW_LB_H
#define BGW_LB_H

#include <stdint.h>

#include "snapshot.h"
#include "upstream.h"

/*
 * Index into ss->eps of the endpoint for the next request, or -1 when none is healthy.
 * pools[i] is the worker's pool of ss->eps[i] (its n_active drives least_request).
 */
long bgw_lb_pick(struct bgw_worker *w, const struct bgw_snap_service *ss, struct bgw_svc_rt *rt,
                 struct bgw_pool *const *pools);

#endif
