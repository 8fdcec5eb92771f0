/*
 * apiclient.h - HTTP calls to bgw-control's admin API (libcurl), one request at a time.
 */
#ifndef BGW_APICLIENT_H
#define BGW_APICLIENT_H

#include <stddef.h>

struct bgw_apiclient {
    void *curl;                 /* CURL *, reused across requests (keep-alive) */
    char *base;                 /* server URL without a trailing slash */
    char *auth_header;          /* "Authorization: Bearer TOKEN" or NULL */
    long timeout_ms;
};

struct bgw_apiclient_response {
    long status;                /* HTTP status */
    char *body;                 /* NUL-terminated, owned; never NULL after a successful call */
    size_t len;
};

/*
 * Prepare a client for server ("http://host:port", or "host:port" for http; a trailing slash is dropped).
 * token: the bearer token or NULL. timeout_s: a limit for each whole request. Returns 0, or -1 with a
 * message in err.
 */
int bgw_apiclient_init(struct bgw_apiclient *c, const char *server, const char *token, double timeout_s, char *err,
                    size_t errlen);

/*
 * method path (starting with "/v1/...") with an optional JSON body (sent as application/json). On an HTTP
 * answer of any status returns 0 with *resp filled (free it with bgw_apiclient_response_free). When no answer arrives
 * (connection refused, timeout, ...) returns -1 with one line in err naming the server.
 */
int bgw_apiclient_call(struct bgw_apiclient *c, const char *method, const char *path, const char *body,
                    struct bgw_apiclient_response *resp, char *err, size_t errlen);

/* name percent-encoded for a path segment; malloc'd (caller frees), NULL when out of memory. */
char *bgw_apiclient_escape(const char *name);

void bgw_apiclient_response_free(struct bgw_apiclient_response *resp);
void bgw_apiclient_cleanup(struct bgw_apiclient *c);

/*
 * Read a token file: surrounding whitespace and the final newline are dropped. Returns a malloc'd token,
 * or NULL with a message in err (unreadable, empty, or a control character inside).
 */
char *bgw_apiclient_read_token(const char *path, char *err, size_t errlen);

#endif
