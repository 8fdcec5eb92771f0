/*
 * admin_http.c - libmicrohttpd glue for the admin API (see admin_http.h).
 *
 * libmicrohttpd decodes %XX in the URL it hands to the handler (so "%2F" would split a name and "%00"
 * would cut it); the raw request target is kept from the URI log callback instead, and the API sees it
 * undecoded. Requests that can be refused from their head (token, route, method, Content-Type, declared
 * length) are refused before any body is stored, and a body that grows past the limit is refused as it
 * arrives: nothing beyond BGW_ADMIN_BODY_MAX is ever kept in memory (see refuse_after_body() for when the
 * answer itself waits for the end of the body).
 */
#include "admin_http.h"

#include <arpa/inet.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "netaddr.h"

struct bgw_admin_http {
    struct MHD_Daemon *d;
    struct bgw_admin_api *api;
};

/* Per request: the raw target, the body received so far, and a refusal waiting for the body's end. */
struct request_ctx {
    char *target;
    bool started;
    bool draining;              /* refused: what is left of the body is read and dropped, then `refusal` */
    struct bgw_admin_reply refusal;
    size_t drained;
    char *body;
    size_t len, cap;
};

static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct request_ctx *ctx = calloc(1, sizeof *ctx);

    (void)cls;
    (void)conn;
    if (ctx) {
        ctx->target = strdup(uri ? uri : "");
        if (ctx->target)
            ctx->target[strcspn(ctx->target, "?#")] = '\0';
    }
    return ctx;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    struct request_ctx *ctx = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (!ctx)
        return;
    bgw_admin_reply_free(&ctx->refusal);
    free(ctx->target);
    free(ctx->body);
    free(ctx);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    size_t n;

    (void)cls;
    vsnprintf(line, sizeof line, fmt, ap);
    n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    bgw_log_warn("admin http: %s", line);
}

static enum MHD_Result send_reply(struct bgw_admin_http *h, struct MHD_Connection *conn, const char *method,
                                  struct bgw_admin_reply *rp)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(rp->len, rp->body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret;

    if (!r) {
        bgw_admin_reply_free(rp);
        return MHD_NO;
    }
    rp->body = NULL;        /* owned by the response now */
    if (rp->content_type)
        MHD_add_response_header(r, "Content-Type", rp->content_type);
    if (rp->etag[0])
        MHD_add_response_header(r, "ETag", rp->etag);
    if (rp->allow)
        MHD_add_response_header(r, "Allow", rp->allow);
    if (rp->location[0])
        MHD_add_response_header(r, "Location", rp->location);
    if (rp->www_authenticate)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"bgw-control\"");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    ret = MHD_queue_response(conn, rp->status, r);
    MHD_destroy_response(r);
    if (ret == MHD_YES)
        bgw_admin_api_count(h->api, method, rp->status);
    return ret;
}

static void fill_request(struct MHD_Connection *conn, const struct request_ctx *ctx, const char *method,
                         struct bgw_admin_request *rq)
{
    memset(rq, 0, sizeof *rq);
    rq->method = method;
    rq->path = ctx->target;
    rq->authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    rq->content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    rq->if_match = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_MATCH);
    rq->body = ctx->body;
    rq->body_len = ctx->len;
}

/* The declared Content-Length (-1: none or not a number). */
static long long declared_length(struct MHD_Connection *conn)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    char *end;
    unsigned long long v;

    if (!cl)
        return -1;
    v = strtoull(cl, &end, 10);
    if (end == cl || *end)
        return -1;
    return v > (unsigned long long)LLONG_MAX ? LLONG_MAX : (long long)v;
}

/*
 * Whether a refusal made from the head should wait for the body. A client that sent the body along
 * (no "Expect: 100-continue") and is still writing it would see its connection reset, and lose the answer,
 * if we answered and closed now; so a body up to BGW_ADMIN_DRAIN_MAX is read and dropped (never stored)
 * and the answer sent at its end. A client waiting for 100 Continue is answered at once (it then sends
 * nothing), as is one announcing more than BGW_ADMIN_DRAIN_MAX.
 */
static bool refuse_after_body(struct MHD_Connection *conn, long long declared)
{
    const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);

    if (expect && strcasecmp(expect, "100-continue") == 0)
        return false;
    if (declared > 0)
        return declared <= (long long)BGW_ADMIN_DRAIN_MAX;
    return te != NULL;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **con_cls)
{
    struct bgw_admin_http *h = cls;
    struct request_ctx *ctx = *con_cls;
    struct bgw_admin_request rq;
    struct bgw_admin_reply rp;

    (void)url;
    (void)version;
    if (!ctx || !ctx->target)
        return MHD_NO;
    if (!ctx->started) {
        long long declared = declared_length(conn);

        ctx->started = true;
        fill_request(conn, ctx, method, &rq);
        if (!bgw_admin_api_precheck(h->api, &rq, declared, &rp))
            return MHD_YES;
        if (!refuse_after_body(conn, declared))
            return send_reply(h, conn, method, &rp);
        ctx->refusal = rp;
        ctx->draining = true;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;

        *upload_data_size = 0;
        if (!ctx->draining && ctx->len + n > BGW_ADMIN_BODY_MAX) {
            /* Too large as it arrives (no Content-Length): refuse, drop the rest. */
            bgw_admin_reply_error(&ctx->refusal, 413, NULL, "the body is larger than 1048576 bytes");
            ctx->draining = true;
            free(ctx->body);
            ctx->body = NULL;
            ctx->len = ctx->cap = 0;
        }
        if (ctx->draining) {
            ctx->drained += n;
            if (ctx->drained > BGW_ADMIN_DRAIN_MAX) {
                bgw_log_warn("admin: %s %s: body still arriving after %u bytes refused, connection closed",
                             method, ctx->target, BGW_ADMIN_DRAIN_MAX);
                return MHD_NO;
            }
            return MHD_YES;
        }
        if (ctx->len + n + 1 > ctx->cap) {
            size_t cap = ctx->cap ? ctx->cap : 4096;
            while (cap < ctx->len + n + 1)
                cap *= 2;
            char *b = realloc(ctx->body, cap);
            if (!b)
                return MHD_NO;
            ctx->body = b;
            ctx->cap = cap;
        }
        memcpy(ctx->body + ctx->len, upload_data, n);
        ctx->len += n;
        ctx->body[ctx->len] = '\0';
        return MHD_YES;
    }
    if (ctx->draining) {
        rp = ctx->refusal;
        memset(&ctx->refusal, 0, sizeof ctx->refusal);
        return send_reply(h, conn, method, &rp);
    }
    fill_request(conn, ctx, method, &rq);
    bgw_admin_api_handle(h->api, &rq, &rp);
    if (rp.status >= 500)
        bgw_log_error("admin: %s %s: %d %.*s", method, ctx->target, rp.status, (int)rp.len,
                      rp.body ? rp.body : "");
    else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 && rp.status >= 400)
        bgw_log_info("admin: %s %s: %u %.*s", method, ctx->target, rp.status,
                     (int)(rp.len && rp.body[rp.len - 1] == '\n' ? rp.len - 1 : rp.len), rp.body ? rp.body : "");
    else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        bgw_log_info("admin: %s %s: %u", method, ctx->target, rp.status);
    return send_reply(h, conn, method, &rp);
}

/* Fill ss from "IP:PORT" (port 0: any free port, reported in the log); returns 0, or -1 with err filled. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, bool *v6, char *err, size_t errlen)
{
    socklen_t len;
    if (bgw_listen_addr("--admin-listen", addr, ss, &len, err, errlen) < 0)
        return -1;
    *v6 = ss->ss_family == AF_INET6;
    return 0;
}

int bgw_admin_http_is_loopback(const char *addr)
{
    struct sockaddr_storage ss;
    char err[256];
    bool v6;

    if (parse_addr(addr, &ss, &v6, err, sizeof err) < 0)
        return -1;
    if (v6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return 1;
        if (IN6_IS_ADDR_V4MAPPED(a))
            return a->s6_addr[12] == 127;
        return 0;
    }
    return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
}

struct bgw_admin_http *bgw_admin_http_start(struct bgw_admin_api *api, const char *addr, char *err,
                                            size_t errlen)
{
    struct sockaddr_storage ss;
    bool v6;
    /* epoll rather than select(): descriptors above FD_SETSIZE (many proxy streams) must not matter */
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    struct bgw_admin_http *h;

    if (parse_addr(addr, &ss, &v6, err, errlen) < 0)
        return NULL;
    if (v6)
        flags |= MHD_USE_IPv6;
    h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->api = api;
    h->d = MHD_start_daemon(flags, ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port),
                            NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_URI_LOG_CALLBACK, uri_logger, NULL,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)128, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "--admin-listen %s: cannot listen (address in use or not available)", addr);
        free(h);
        return NULL;
    }
    return h;
}

int bgw_admin_http_port(struct bgw_admin_http *h)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);

    return info ? (int)info->port : -1;
}

void bgw_admin_http_stop(struct bgw_admin_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
