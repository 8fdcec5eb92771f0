/*
 * router.h - the compiled route table.
 *
 * Built once per config snapshot from bgw_config.routes; read-only afterwards, so any number of workers
 * may match against it concurrently. Matching cost does not grow with the number of routes: exact paths
 * are a hash lookup, prefixes are one hash lookup per path segment (longest first).
 *
 * Most specific wins: any matching path_exact route over any prefix route; a longer prefix over a shorter;
 * among routes with the same path, more conditions (methods, hosts, headers, counted as the number of those
 * lists that are non-empty) over fewer; then the order in the document.
 * A prefix matches whole segments: "/api" matches "/api", "/api/", "/api/x", not "/apix"; "/" matches all.
 * A trailing slash in a prefix ("/api/") matches "/api/" and below, not "/api".
 * Hosts compare case-insensitively with any ":port" of the request's host removed; "*.example.com"
 * matches any host ending in ".example.com". Methods compare exactly. Header names compare
 * case-insensitively, values exactly.
 *
 * Details: a route's path_exact / path_prefix is itself normalised with bgw_pathnorm() when the table is
 * built, so "/a/%7Eb" or "//a" in a route reach the requests normalised to "/a/~b" or "/a"; a route whose
 * path bgw_pathnorm() refuses can never match and is left out. Among hosts, "[::1]" in a route and
 * "[::1]:8080" in a request both compare as "::1", and one trailing dot of the request's host is ignored.
 * A request without a Host (host NULL or empty) fails every route that has hosts; one without a header()
 * callback fails every route that has headers. Matching never allocates.
 */
#ifndef BGW_ROUTER_H
#define BGW_ROUTER_H

#include <stddef.h>

#include "config.h"

struct bgw_router;

/* What a request offers to the matcher. */
struct bgw_route_input {
    const char *path; size_t path_len;       /* normalised path */
    const char *method; size_t method_len;   /* effective method (a CORS preflight's requested method) */
    const char *host; size_t host_len;       /* Host header as received (may carry ":port"); may be NULL */
    /* Returns the value of the first header named `name` (lower-case, name_len bytes), or NULL. */
    const char *(*header)(void *ctx, const char *name, size_t name_len, size_t *value_len);
    void *ctx;
};

/* Compile the routes of cfg. cfg must outlive the router (method names and header values are not
 * copied). Returns NULL with err filled on failure (out of memory, or more than 2^32 - 2 routes); a
 * config without routes gives a router that matches nothing. */
struct bgw_router *bgw_router_build(const struct bgw_config *cfg, char *err, size_t errlen);

/* Index into cfg->routes of the best route for in, or -1 if none matches (also when r is NULL or the
 * path is empty). Thread-safe; does not allocate; costs O(path length + routes sharing one path). */
long bgw_router_match(const struct bgw_router *r, const struct bgw_route_input *in);

/* Free a router from bgw_router_build(); NULL is fine. */
void bgw_router_free(struct bgw_router *r);

#endif
