/*
 * admin_api.h - bgw-control's admin REST API (the /v1 table of the contract, /healthz, /readyz,
 * /metrics), independent of any HTTP server: a request goes in, a reply comes out. admin_http.h serves it
 * over HTTP; tests and the fuzz target call it directly.
 *
 * Thread-safe as far as the store and the config stream server are; the request counters take a lock.
 */
#ifndef BGW_ADMIN_API_H
#define BGW_ADMIN_API_H

#include <stdbool.h>
#include <stddef.h>

#include "snapshot_builder.h"
#include "store.h"
#include "xds_server.h"

#define BGW_ADMIN_BODY_MAX (1024u * 1024u)     /* larger request bodies get 413 */
#define BGW_ADMIN_DRAIN_MAX (16u * 1024u * 1024u) /* a refused body up to this size is read (and dropped)
                                                    so the client can read the answer */

struct bgw_admin_api;

/* One request, as received. path: the raw request path (no query, %XX not decoded). Header values are
 * NULL when absent. */
struct bgw_admin_request {
    const char *method;
    const char *path;
    const char *authorization;
    const char *content_type;
    const char *if_match;
    const char *body;
    size_t body_len;
};

/* One reply. body (may be NULL when len is 0) is owned by the reply: bgw_admin_reply_free(). */
struct bgw_admin_reply {
    unsigned status;
    char *body;
    size_t len;
    const char *content_type;
    char etag[40];                /* "" or the ETag header value, quotes included */
    const char *allow;            /* NULL or the Allow header of a 405 */
    char location[320];           /* "" or the Location header of a 201 */
    bool www_authenticate;        /* add WWW-Authenticate: Bearer (401) */
};

/* A new API over store and xds (xds may be NULL: no proxies, no stream metrics). token: the bearer token
 * /v1 requires (copied), NULL: none required. Returns NULL when out of memory. */
struct bgw_admin_api *bgw_admin_api_new(struct bgw_store *store, struct bgw_xds_server *xds, const char *token);
void bgw_admin_api_free(struct bgw_admin_api *api);

/* Answer GET /v1/config and GET /v1/services/{name}/endpoints from the builder's resolved document (what
 * the proxies get) instead of the store. Call before serving. */
void bgw_admin_api_set_builder(struct bgw_admin_api *api, struct bgw_builder *b);

/* A source of more metrics for GET /metrics: fn appends Prometheus text to (*buf, *len, *cap) and returns
 * 0, or -1 when out of memory. Up to BGW_ADMIN_METRICS_MAX sources; call before serving. Returns 0 or -1. */
#define BGW_ADMIN_METRICS_MAX 8
typedef int (*bgw_admin_metrics_fn)(void *arg, char **buf, size_t *len, size_t *cap);
int bgw_admin_api_add_metrics(struct bgw_admin_api *api, bgw_admin_metrics_fn fn, void *arg);

/* The checks that need no body (route, method, token, Content-Type, declared length; declared_len < 0:
 * unknown). Returns true with rp filled when the request is refused before its body is read; false (rp
 * untouched) when the body should be read and bgw_admin_api_handle() called. */
bool bgw_admin_api_precheck(struct bgw_admin_api *api, const struct bgw_admin_request *rq, long long declared_len,
                            struct bgw_admin_reply *rp);

/* Answer rq (body complete) into rp. Always fills rp. */
void bgw_admin_api_handle(struct bgw_admin_api *api, const struct bgw_admin_request *rq,
                          struct bgw_admin_reply *rp);

/* An error reply {"error": {"code", "message"[, "field"]}} for status. */
void bgw_admin_reply_error(struct bgw_admin_reply *rp, unsigned status, const char *field, const char *message);

/* Count one answered request in bgw_admin_requests_total{method,code}. */
void bgw_admin_api_count(struct bgw_admin_api *api, const char *method, unsigned status);

void bgw_admin_reply_free(struct bgw_admin_reply *rp);

#endif
