/*
 * cors.h - the CORS policy of a route: compiled once per snapshot, one call on the request path.
 *
 * A preflight (OPTIONS with Origin and Access-Control-Request-Method) on a route with cors is answered by
 * the proxy: 204 with Access-Control-Allow-Origin/-Methods/-Headers (+ -Max-Age, -Credentials) when the
 * origin, the method and every requested header are allowed, else 403. Other requests from an allowed
 * origin get Access-Control-Allow-Origin (+ -Credentials, -Expose-Headers) on their response. Every
 * response of a route with cors carries `Vary: Origin`. A "*" origin answers "*"; the config validator
 * refuses "*" together with allow_credentials, so credentials always go with an echoed, listed origin.
 */
#ifndef BGW_CORS_H
#define BGW_CORS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "http1.h"

struct bgw_cors_policy;

enum bgw_cors_action {
    BGW_CORS_CONTINUE = 0,           /* not a preflight: route the request (add response headers later) */
    BGW_CORS_PREFLIGHT_OK,           /* answer 204 with bgw_cors_preflight_headers() */
    BGW_CORS_PREFLIGHT_DENIED,       /* answer 403 */
};

/* What a request carries forward to its response. Points only into the policy (never into the head), so
 * it stays valid while the request holds its snapshot. */
struct bgw_cors_verdict {
    const struct bgw_cors_policy *policy;   /* NULL: the route has no cors */
    const char *allow_origin;                /* Access-Control-Allow-Origin value; NULL: origin not allowed */
};

/* Compile cfg (which must outlive the policy). NULL with err filled when out of memory. */
struct bgw_cors_policy *bgw_cors_compile(const struct bgw_cors *cfg, char *err, size_t errlen);
void bgw_cors_free(struct bgw_cors_policy *p);

/*
 * The request path's one call, after routing: classifies the request (h: its head; preflight: OPTIONS with
 * Origin and Access-Control-Request-Method) and fills v. p may be NULL (no cors: v->policy NULL, CONTINUE).
 */
enum bgw_cors_action bgw_cors_request(const struct bgw_cors_policy *p, const struct bgw_http_head *h,
                                      struct bgw_cors_verdict *v);

/* Header lines ("Name: value\r\n"...) for the 204 answer to an allowed preflight of head h, into buf.
 * Returns the length (0 when cap is too small). */
size_t bgw_cors_preflight_headers(const struct bgw_cors_verdict *v, const struct bgw_http_head *h, char *buf,
                                  size_t cap);

/* Header lines for any other response of the request (Vary: Origin always; the Allow-Origin family when
 * allowed), into buf. Returns the length (0 when v->policy is NULL or cap is too small). */
size_t bgw_cors_response_headers(const struct bgw_cors_verdict *v, char *buf, size_t cap);
/* An upper bound of bgw_cors_response_headers()'s length for v. */
size_t bgw_cors_response_headers_max(const struct bgw_cors_verdict *v);

/* Whether an upstream response header (name, case-insensitive) is one the policy sets itself and so is
 * dropped from the upstream's response on routes with cors. */
bool bgw_cors_owns_header(const char *name, size_t len);

#endif
