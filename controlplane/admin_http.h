/*
 * admin_http.h - the admin API (admin_api.h) served over HTTP/1.1 by libmicrohttpd on a thread of its own.
 */
#ifndef BGW_ADMIN_HTTP_H
#define BGW_ADMIN_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "admin_api.h"

struct bgw_admin_http;

/* Listen on addr ("IP:PORT", numeric; port 0: any free port) and serve api (borrowed; must outlive the server). Returns NULL with
 * err filled ("--admin-listen ...: ...") when addr is not an address or cannot be bound. */
struct bgw_admin_http *bgw_admin_http_start(struct bgw_admin_api *api, const char *addr, char *err,
                                            size_t errlen);

/* The port the server listens on (the one chosen when addr asked for port 0), or -1. */
int bgw_admin_http_port(struct bgw_admin_http *h);

/* Whether addr ("IP:PORT") is a loopback address (127.0.0.0/8 or ::1). Returns -1 when addr is not a
 * numeric "IP:PORT", else 1 or 0. */
int bgw_admin_http_is_loopback(const char *addr);

/* Stop listening, finish, free. NULL is fine. */
void bgw_admin_http_stop(struct bgw_admin_http *h);

#endif
