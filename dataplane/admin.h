/*
 * admin.h - bgw-proxy's admin listener on libmicrohttpd, on its own thread:
 * GET /healthz, /readyz, /metrics (Prometheus text), /config (the config in use, with "version").
 */
#ifndef BGW_ADMIN_H
#define BGW_ADMIN_H

#include <stddef.h>

#include "worker.h"

struct bgw_admin;

/* Listen on addr ("ADDR:PORT", numeric) and serve. workers (n of them) are read for stats.
 * Returns NULL with err filled when the address cannot be bound. */
struct bgw_admin *bgw_admin_start(const char *addr, struct bgw_worker **workers, unsigned n, char *err,
                                  size_t errlen);
void bgw_admin_stop(struct bgw_admin *a);

#endif
