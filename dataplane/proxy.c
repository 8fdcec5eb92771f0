/*
 * proxy.c - the request lifecycle on a client connection (see proxy.h).
 *
 * Flow: client bytes -> head parsed (http1) -> path normalised -> route -> endpoint (lb) -> upstream head
 * built into c->upout -> upstream connection (pooled or new) -> body pumped client.in -> upout -> upstream;
 * response: upstream in -> head rebuilt into c->out -> body pumped u.in -> c->out -> client.
 * Objects are never freed inside a call chain: closing moves them to the worker's dead lists, freed at the
 * end of the loop turn, so a caller may look at an object's state after any call.
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "circuit_breaker.h"
#include "jwt_auth.h"
#include "access_log.h"
#include "lb.h"
#include "log.h"
#include "outlier.h"
#include "pathnorm.h"
#include "rate_limit.h"
#include "retry.h"
#include "router.h"
#include "tracecontext.h"

#define BODY_MARGIN 64   /* room kept in an output buffer for chunk framing around a decoded piece */

static void client_close(struct bgw_client *c);
static void client_process(struct bgw_client *c);
static void client_flush(struct bgw_client *c);
static void pump_request_body(struct bgw_client *c);
static void respond_local(struct bgw_client *c, unsigned status, const char *code, const char *message,
                          bool close_conn);
static void resil_end(struct bgw_client *c);
static void pending_done(struct bgw_client *c);

/* ---- small output helpers ---- */

static int out_reserve(struct bgw_iobuf *b, struct bgw_bufpool *pool, size_t n)
{
    if (bgw_iobuf_get(b, pool) < 0) return -1;
    if (bgw_iobuf_space(b) >= n) return 0;
    bgw_iobuf_compact(b);
    if (bgw_iobuf_space(b) >= n) return 0;
    size_t cap = b->cap;
    while (cap - bgw_iobuf_len(b) < n) cap *= 2;
    return bgw_iobuf_grow(b, (uint32_t)cap);
}

static inline void out_put(struct bgw_iobuf *b, const void *s, size_t n)
{
    memcpy(b->base + b->w, s, n);
    b->w += (uint32_t)n;
}

#define PUT_LIT(b, lit) out_put((b), lit, sizeof(lit) - 1)

static void put_uint(struct bgw_iobuf *b, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    out_put(b, tmp + sizeof tmp - n, (size_t)n);
}

static void put_chunk_size(struct bgw_iobuf *b, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[20];
    int k = 0;
    do {
        tmp[sizeof tmp - 1 - k++] = hex[n & 15];
        n >>= 4;
    } while (n);
    out_put(b, tmp + sizeof tmp - k, (size_t)k);
    PUT_LIT(b, "\r\n");
}

static const char *status_reason(unsigned s)
{
    switch (s) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* ---- request ids ---- */

static bool request_id_ok(const char *v, uint32_t n)
{
    if (n == 0 || n > 128) return false;
    for (uint32_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static void request_id_new(struct bgw_worker *w, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t a = bgw_worker_rand(w), b = bgw_worker_rand(w);
    unsigned char bytes[16];
    memcpy(bytes, &a, 8);
    memcpy(bytes + 8, &b, 8);
    bytes[6] = (unsigned char)((bytes[6] & 0x0f) | 0x40);   /* UUID version 4 */
    bytes[8] = (unsigned char)((bytes[8] & 0x3f) | 0x80);
    int k = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[k++] = '-';
        out[k++] = hex[bytes[i] >> 4];
        out[k++] = hex[bytes[i] & 15];
    }
    out[k] = 0;
}

/* ---- request bookkeeping ---- */

static const struct bgw_route *req_route(const struct bgw_request *r)
{
    return r->ws && r->route >= 0 ? &r->ws->snap->cfg->routes[r->route] : NULL;
}

/* The request is over (answered or abandoned): count it and let go of the snapshot. */
static void request_end(struct bgw_client *c, unsigned status)
{
    struct bgw_request *r = &c->req;
    struct bgw_worker *w = c->w;
    /* Policy outcomes point into the snapshot: none may outlive the request (a later error answer on the
     * connection, before the next start_request, must not see them). */
    r->cors.policy = NULL;
    r->www_authenticate = NULL;
    r->auth_headers_len = 0;
    r->auth_claims_len = 0;
    if (!r->counted) return;
    const struct bgw_route *rt = req_route(r);
    const char *route = rt ? rt->name : "no_route";
    const char *service = rt ? r->ws->snap->cfg->services[r->service].name : "";
    bgw_stats_request(&w->stats, route, service, r->method, status, bgw_now_ns() - r->start_ns);
    if (bgw_access_log_on) bgw_access_log_request(w->id, r, status);
    bgw_stats_gauge_add(&w->stats.in_flight, -1);
    r->counted = false;
    resil_end(c);
    if (r->ws) {
        if (rt && r->endpoint != UINT32_MAX) {
            struct bgw_pool *p = r->ws->pools[r->service][r->endpoint];
            if (p->n_active) p->n_active--;
            r->endpoint = UINT32_MAX;
        }
        bgw_wsnap_release(w, r->ws);
        r->ws = NULL;
    }
}

static void unqueue(struct bgw_client *c)
{
    struct bgw_request *r = &c->req;
    if (!r->ws || r->route < 0) return;
    pending_done(c);
    struct bgw_svc_rt *svc = r->ws->svc[r->service];
    struct bgw_client *prev = NULL;
    for (struct bgw_client *x = svc->waiting_head; x; prev = x, x = x->next) {
        if (x != c) continue;
        if (prev) prev->next = x->next;
        else svc->waiting_head = x->next;
        if (svc->waiting_tail == x) svc->waiting_tail = prev;
        x->next = NULL;
        return;
    }
}

/* Detach and close the request's upstream connection (not reusable). */
static void abort_upstream(struct bgw_client *c)
{
    struct bgw_upconn *u = c->up;
    if (!u) return;
    c->up = NULL;
    u->client = NULL;
    bgw_upstream_release(u, false);
}

/* The route timeout bounds the wait for the response head, then any pause while a body streams. */
static void request_progress(struct bgw_client *c)
{
    const struct bgw_route *rt = req_route(&c->req);
    if (rt && rt->timeout_ms) bgw_timer_set(&c->w->timers, &c->timer, c->w->now_ms + rt->timeout_ms);
}

/* ---- client connection ---- */

static void client_timeout(struct bgw_timer *t);

void bgw_proxy_accept(struct bgw_worker *w, int fd, const struct sockaddr_storage *peer)
{
    struct bgw_client *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->ev.kind = BGW_EV_CLIENT;
    c->ev.fd = fd;
    c->w = w;
    c->state = BGW_C_IDLE;
    c->timer.cb = client_timeout;
    c->req.endpoint = UINT32_MAX;
    bgw_http1_init(&c->codec, false);
    if (peer->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, c->peer, sizeof c->peer);
    else if (peer->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, c->peer, sizeof c->peer);
    c->all_next = w->clients;
    if (w->clients) w->clients->all_prev = c;
    w->clients = c;
    w->n_clients++;
    bgw_stats_gauge_add(&w->stats.downstream_active, 1);
    if (bgw_worker_watch(w, &c->ev) < 0) {
        client_close(c);
        return;
    }
    /* A new connection must send its first request within the header timeout. */
    bgw_timer_set(&w->timers, &c->timer, w->now_ms + w->limits.header_timeout_ms);
}

static void client_close(struct bgw_client *c)
{
    if (c->state == BGW_C_DEAD) return;
    struct bgw_worker *w = c->w;
    abort_upstream(c);
    unqueue(c);
    bgw_rl_wait_cancel(c->rl_wait);
    c->rl_wait = NULL;
    request_end(c, 499);      /* no-op when the request was answered */
    bgw_timer_stop(&w->timers, &c->timer);
    if (c->ev.fd >= 0) close(c->ev.fd);
    c->ev.fd = -1;
    bgw_iobuf_put(&c->in, &w->bufs);
    bgw_iobuf_put(&c->out, &w->bufs);
    bgw_iobuf_put(&c->upout, &w->bufs);
    if (c->all_prev) c->all_prev->all_next = c->all_next;
    else w->clients = c->all_next;
    if (c->all_next) c->all_next->all_prev = c->all_prev;
    w->n_clients--;
    bgw_stats_gauge_add(&w->stats.downstream_active, -1);
    c->state = BGW_C_DEAD;
    c->next = w->dead_clients;
    w->dead_clients = c;
}

void bgw_proxy_reap(struct bgw_worker *w)
{
    while (w->dead_clients) {
        struct bgw_client *c = w->dead_clients;
        w->dead_clients = c->next;
        free(c);
    }
}

static void client_timeout(struct bgw_timer *t)
{
    struct bgw_client *c = (struct bgw_client *)((char *)t - offsetof(struct bgw_client, timer));
    switch (c->state) {
    case BGW_C_HEAD:
        respond_local(c, 408, "request_timeout", "the request head was not received in time", true);
        break;
    case BGW_C_PROXY:
        if (c->req.resp_started) client_close(c);
        else respond_local(c, 504, "upstream_timeout", "the upstream did not answer in time", false);
        break;
    default:
        client_close(c);
        break;
    }
}

/* Read from the client into c->in. Returns 2 when the buffer filled, 1 when bytes arrived, 0 when none
 * (EAGAIN or no room), -1 on EOF or error (c->eof set on EOF). */
static int client_fill(struct bgw_client *c)
{
    if (bgw_iobuf_get(&c->in, &c->w->bufs) < 0) return -1;
    if (bgw_iobuf_space(&c->in) == 0) {
        bgw_iobuf_compact(&c->in);
        if (bgw_iobuf_space(&c->in) == 0) {
            if (c->state != BGW_C_HEAD || c->in.cap > BGW_HTTP_MAX_REQUEST_HEAD) return 0;
            if (bgw_iobuf_grow(&c->in, BGW_HTTP_MAX_REQUEST_HEAD + 4096) < 0) return -1;
        }
    }
    size_t want = bgw_iobuf_space(&c->in);
    ssize_t n = read(c->ev.fd, c->in.base + c->in.w, want);
    if (n > 0) {
        c->in.w += (uint32_t)n;
        return (size_t)n == want ? 2 : 1;
    }
    if (n == 0) {
        c->eof = true;
        return -1;
    }
    if (errno == EAGAIN || errno == EINTR) return 0;
    return -1;
}

static void client_read(struct bgw_client *c)
{
    for (;;) {
        if (c->state == BGW_C_RLWAIT) {          /* read once the rate-limit answer came */
            c->read_pending = true;
            return;
        }
        if (c->state == BGW_C_PROXY) {
            /* While a body streams, the pump reads as the upstream side has room; after it, what the
             * client sends (a pipelined request, its close) is read once the response is done. */
            if (c->req.body_done) c->read_pending = true;
            else pump_request_body(c);
            return;
        }
        if (c->state == BGW_C_CLOSING) {
            /* Dropping what the client still sends while our answer goes out. */
            char sink[4096];
            ssize_t n;
            while ((n = read(c->ev.fd, sink, sizeof sink)) > 0) {}
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                c->eof = true;
                if (c->lingering || bgw_iobuf_len(&c->out) == 0) client_close(c);
            }
            return;
        }
        int rc = client_fill(c);
        if (rc < 0) {
            if (c->state == BGW_C_HEAD || c->state == BGW_C_IDLE) {
                if (bgw_iobuf_len(&c->in) == 0 || !c->eof) {
                    client_close(c);
                    return;
                }
                client_process(c);  /* pipelined requests before the EOF still get answers */
                if (c->state == BGW_C_IDLE || c->state == BGW_C_HEAD) client_close(c);
                else c->close_after = true;
            }
            return;
        }
        if (rc == 0) return;
        client_process(c);
        if (rc == 1 || c->state == BGW_C_DEAD) return;
    }
}

void bgw_proxy_on_event(struct bgw_client *c, uint32_t events)
{
    if (c->state == BGW_C_DEAD) return;
    if (events & EPOLLOUT) {
        client_flush(c);
        if (c->state == BGW_C_DEAD) return;
        if (c->state == BGW_C_PROXY && c->up && c->up->head_done) bgw_proxy_upstream_readable(c);
        if (c->state == BGW_C_DEAD) return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) client_read(c);
}

/* The answer is out and the connection is to close. Closing with unread client bytes would reset the
 * connection, and the client could lose the answer: send FIN, read and drop what still comes until the
 * client closes too, for at most LINGER_MS. */
#define LINGER_MS 2000

static void linger(struct bgw_client *c)
{
    if (c->lingering) return;
    c->lingering = true;
    c->state = BGW_C_CLOSING;
    if (c->eof || shutdown(c->ev.fd, SHUT_WR) < 0) {
        client_close(c);
        return;
    }
    bgw_iobuf_put(&c->in, &c->w->bufs);
    bgw_timer_set(&c->w->timers, &c->timer, c->w->now_ms + LINGER_MS);
}

/* Write c->out. Closes the client on error; once everything is out, lingers when the connection is to
 * close. */
static void client_flush(struct bgw_client *c)
{
    while (bgw_iobuf_len(&c->out)) {
        ssize_t n = write(c->ev.fd, c->out.base + c->out.r, bgw_iobuf_len(&c->out));
        if (n > 0) {
            c->out.r += (uint32_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        client_close(c);
        return;
    }
    if (c->out.base && c->state != BGW_C_PROXY) bgw_iobuf_put(&c->out, &c->w->bufs);
    else c->out.r = c->out.w = 0;
    if (c->state == BGW_C_CLOSING || (c->close_after && c->state != BGW_C_PROXY)) linger(c);
}

/* Response headers of the route's policies (CORS, WWW-Authenticate); room reserved by the caller. */
static void put_policy_headers(struct bgw_iobuf *o, const struct bgw_request *r)
{
    if (r->www_authenticate) out_put(o, r->www_authenticate, strlen(r->www_authenticate));
    if (r->cors.policy) o->w += (uint32_t)bgw_cors_response_headers(&r->cors, o->base + o->w, bgw_iobuf_space(o));
}

/* Answer the current request ourselves with a JSON error body. */
static void respond_local(struct bgw_client *c, unsigned status, const char *code, const char *message,
                          bool close_conn)
{
    struct bgw_request *r = &c->req;
    if (r->resp_started) {
        client_close(c);
        return;
    }
    abort_upstream(c);
    unqueue(c);
    if (c->state == BGW_C_PROXY && !r->body_done) close_conn = true;   /* the rest of the body is unread */
    if (!r->keep_alive || c->eof || c->w->draining) close_conn = true;
    char body[320];
    int blen = strcmp(code, "no_route") == 0
                   ? snprintf(body, sizeof body, "{\"error\":\"no_route\"}")
                   : snprintf(body, sizeof body, "{\"error\":\"%s\",\"message\":\"%s\"}", code, message);
    if (r->request_id[0] == 0) request_id_new(c->w, r->request_id);
    size_t policy_max = bgw_cors_response_headers_max(&r->cors) + (r->www_authenticate ? 256 : 0) +
                        (status == 429 ? r->rl_headers_len : 0);
    if (out_reserve(&c->out, &c->w->bufs, 512 + policy_max + (size_t)blen) < 0) {
        client_close(c);
        return;
    }
    struct bgw_iobuf *o = &c->out;
    PUT_LIT(o, "HTTP/1.1 ");
    put_uint(o, status);
    PUT_LIT(o, " ");
    out_put(o, status_reason(status), strlen(status_reason(status)));
    PUT_LIT(o, "\r\nContent-Type: application/json\r\nContent-Length: ");
    put_uint(o, (uint64_t)blen);
    PUT_LIT(o, "\r\nX-Request-Id: ");
    out_put(o, r->request_id, strlen(r->request_id));
    if (close_conn) PUT_LIT(o, "\r\nConnection: close");
    PUT_LIT(o, "\r\n");
    if (status == 429) out_put(o, r->rl_headers, r->rl_headers_len);
    put_policy_headers(o, r);
    if (r->overloaded) PUT_LIT(o, "X-Bgw-Overloaded: true\r\n");
    r->overloaded = false;
    PUT_LIT(o, "\r\n");
    if (!r->head_method) out_put(o, body, (size_t)blen);
    r->status = (uint16_t)status;
    request_end(c, status);
    bgw_timer_stop(&c->w->timers, &c->timer);
    c->state = close_conn ? BGW_C_CLOSING : BGW_C_IDLE;
    c->close_after = close_conn;
    client_flush(c);
    if (c->state == BGW_C_IDLE)
        bgw_timer_set(&c->w->timers, &c->timer, c->w->now_ms + c->w->limits.idle_timeout_ms);
}

/* ---- starting a request ---- */

static const char *lookup_header(void *ctx, const char *name, size_t name_len, size_t *value_len)
{
    const struct bgw_http_head *h = ctx;
    int i = bgw_http_head_find(h, name, name_len);
    if (i < 0) return NULL;
    *value_len = h->headers[i].value_len;
    return h->headers[i].value;
}

/* Build the upstream request head into c->upout. */
static int build_upstream_head(struct bgw_client *c, const struct bgw_http_head *h, const char *path,
                               size_t path_len, const char *query, size_t query_len, const char *host,
                               size_t host_len, bool host_from_target, const char *endpoint_address)
{
    struct bgw_request *r = &c->req;
    size_t need = h->head_len + path_len + query_len + host_len * 2 + strlen(c->peer) + 512 + r->auth_headers_len;
    if (out_reserve(&c->upout, &c->w->bufs, need) < 0) return -1;
    struct bgw_iobuf *o = &c->upout;
    out_put(o, h->method, h->method_len);
    PUT_LIT(o, " ");
    out_put(o, path, path_len);
    out_put(o, query, query_len);
    PUT_LIT(o, " HTTP/1.1\r\n");
    if (host_from_target || h->host < 0) {
        PUT_LIT(o, "Host: ");
        if (host_len) out_put(o, host, host_len);
        else out_put(o, endpoint_address, strlen(endpoint_address));
        PUT_LIT(o, "\r\n");
    }
    bool xff = false;
    for (uint32_t i = 0; i < h->n_headers; i++) {
        const struct bgw_http_header *x = &h->headers[i];
        if (x->hop) continue;
        switch (x->id) {
        case BGW_HDR_X_FORWARDED_PROTO: case BGW_HDR_X_FORWARDED_HOST: case BGW_HDR_X_REQUEST_ID:
        case BGW_HDR_EXPECT: case BGW_HDR_TRACEPARENT:
            continue;
        case BGW_HDR_TRACESTATE:
            if (!r->trace_kept) continue;    /* belongs to a trace context we replaced */
            break;
        case BGW_HDR_HOST:
            if (host_from_target) continue;
            break;
        case BGW_HDR_X_FORWARDED_FOR:
            if (x->value_len == 0) continue;
            if (!xff) PUT_LIT(o, "X-Forwarded-For: ");
            else PUT_LIT(o, ", ");
            out_put(o, x->value, x->value_len);
            xff = true;
            continue;
        default:
            break;
        }
        out_put(o, x->name, x->name_len);
        PUT_LIT(o, ": ");
        out_put(o, x->value, x->value_len);
        PUT_LIT(o, "\r\n");
    }
    /* X-Forwarded-For values are gathered in one header, with the peer appended. */
    if (xff) PUT_LIT(o, ", ");
    else PUT_LIT(o, "X-Forwarded-For: ");
    out_put(o, c->peer, strlen(c->peer));
    PUT_LIT(o, "\r\nX-Forwarded-Proto: http\r\n");
    if (host_len) {
        PUT_LIT(o, "X-Forwarded-Host: ");
        out_put(o, host, host_len);
        PUT_LIT(o, "\r\n");
    }
    PUT_LIT(o, "X-Request-Id: ");
    out_put(o, r->request_id, strlen(r->request_id));
    PUT_LIT(o, "\r\ntraceparent: ");
    out_put(o, r->traceparent, BGW_TRACEPARENT_LEN);
    PUT_LIT(o, "\r\n");
    if (r->auth_headers_len) out_put(o, r->auth_headers, r->auth_headers_len);   /* JWT claims */
    if (h->chunked) {
        PUT_LIT(o, "Transfer-Encoding: chunked\r\n");
    } else if (h->has_content_length) {
        PUT_LIT(o, "Content-Length: ");
        put_uint(o, h->content_length);
        PUT_LIT(o, "\r\n");
    }
    PUT_LIT(o, "\r\n");
    return 0;
}

static bool starts_with_ci(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && strncasecmp(s, lit, l) == 0;
}

static void attach(struct bgw_client *c, struct bgw_upconn *u)
{
    c->up = u;
    u->client = c;
    u->codec.head_request = c->req.head_method;
    c->req.up_start_ns = bgw_now_ns();
    if (u->state == BGW_UP_ACTIVE) bgw_proxy_upstream_ready(c, u);
}

/* ---- resilience: circuit breaker, retries, outlier detection (policies in circuit_breaker.c, retry.c,
 * outlier.c; see docs/internals/resilience.md) ---- */

static const struct bgw_service *req_service_cfg(const struct bgw_request *r)
{
    return r->ws->snap->services[r->service].cfg;
}

/* Take one unit of kind in the service's breaker, limited when the service configures one; false when it
 * is full (the caller answers). bgw_circuit_breaker_open follows the limits that refuse requests
 * (max_requests, max_pending_requests), not max_retries, whose overflow only skips a retry. */
static bool cb_take(struct bgw_client *c, enum bgw_cb_kind kind, uint32_t limit)
{
    struct bgw_request *r = &c->req;
    const struct bgw_service *cfg = req_service_cfg(r);
    struct bgw_cb *cb = r->ws->svc[r->service]->cb;
    if (!cfg->has_circuit_breaker) {
        bgw_cb_add(cb, kind);
        return true;
    }
    struct bgw_cb_result res = bgw_cb_acquire(cb, kind, limit);
    if (res.opened && kind != BGW_CB_RETRIES) bgw_stats_circuit(&c->w->stats, cfg->name, 1);
    return res.granted;
}

static void cb_give(struct bgw_client *c, enum bgw_cb_kind kind, uint32_t limit)
{
    struct bgw_request *r = &c->req;
    const struct bgw_service *cfg = req_service_cfg(r);
    if (bgw_cb_release(r->ws->svc[r->service]->cb, kind, cfg->has_circuit_breaker ? limit : UINT32_MAX) &&
        kind != BGW_CB_RETRIES)
        bgw_stats_circuit(&c->w->stats, cfg->name, -1);
}

static void respond_overloaded(struct bgw_client *c, const char *what)
{
    char msg[96];
    snprintf(msg, sizeof msg, "circuit breaker open: %s reached", what);
    c->req.overloaded = true;
    respond_local(c, 503, "overloaded", msg, !c->req.body_done);
}

/* Count a routed request among its service's active requests; answers 503 when max_requests is reached. */
static bool resil_admit(struct bgw_client *c)
{
    struct bgw_request *r = &c->req;
    if (!cb_take(c, BGW_CB_REQUESTS, req_service_cfg(r)->circuit_breaker.max_requests)) {
        respond_overloaded(c, "max_requests");
        return false;
    }
    r->held_request = true;
    /* Bodies are kept for a replay only when the route retries. */
    const struct bgw_route *rt = req_route(r);
    r->replay_lost = !rt->has_retry || rt->retry.attempts == 0;
    return true;
}

static void pending_done(struct bgw_client *c)
{
    struct bgw_request *r = &c->req;
    if (!r->pending) return;
    r->pending = false;
    cb_give(c, BGW_CB_PENDING, req_service_cfg(r)->circuit_breaker.max_pending_requests);
}

/* The end of a request: give back what it holds in the breaker, stop its try timer. */
static void resil_end(struct bgw_client *c)
{
    struct bgw_request *r = &c->req;
    bgw_timer_stop(&c->w->timers, &r->try_timer);
    r->backing_off = false;
    if (!r->ws || r->route < 0) return;
    pending_done(c);
    const struct bgw_service *cfg = req_service_cfg(r);
    if (r->held_retry) cb_give(c, BGW_CB_RETRIES, cfg->circuit_breaker.max_retries);
    if (r->held_request) cb_give(c, BGW_CB_REQUESTS, cfg->circuit_breaker.max_requests);
    r->held_retry = r->held_request = false;
}

/* Wait in the service's FIFO for a connection; answers 503 when max_pending_requests are waiting. */
static void queue_wait(struct bgw_client *c)
{
    struct bgw_request *r = &c->req;
    if (!cb_take(c, BGW_CB_PENDING, req_service_cfg(r)->circuit_breaker.max_pending_requests)) {
        respond_overloaded(c, "max_pending_requests");
        return;
    }
    r->pending = true;
    struct bgw_svc_rt *svc = r->ws->svc[r->service];
    c->next = NULL;
    if (svc->waiting_tail) svc->waiting_tail->next = c;
    else svc->waiting_head = c;
    svc->waiting_tail = c;
}

/* Tell outlier detection how the current try's endpoint did. */
static void outlier_report(struct bgw_client *c, bool failure)
{
    struct bgw_request *r = &c->req;
    const struct bgw_snap_service *ss = &r->ws->snap->services[r->service];
    if (!ss->cfg->has_outlier_detection || r->endpoint == UINT32_MAX) return;
    struct bgw_pool *p = r->ws->pools[r->service][r->endpoint];
    struct bgw_svc_rt *svc = r->ws->svc[r->service];
    if (!p->od || !bgw_outlier_report(svc->od, p->od, failure, &ss->cfg->outlier_detection, ss->n_eps,
                                      c->w->now_ms))
        return;
    bgw_stats_outlier_ejection(&c->w->stats, ss->cfg->name);
    bgw_log_warn("outlier detection: endpoint %s of service %s ejected for %llu ms", p->address, ss->cfg->name,
                 (unsigned long long)(atomic_load(&p->od->ejected_until) - c->w->now_ms));
}

/* Start a try's per-try timeout. */
static void try_begin(struct bgw_client *c)
{
    const struct bgw_route *rt = req_route(&c->req);
    if (rt->has_retry && rt->retry.per_try_timeout_ms)
        bgw_timer_set(&c->w->timers, &c->req.try_timer, c->w->now_ms + rt->retry.per_try_timeout_ms);
}

/*
 * The current try failed (the upstream connection, if any, already let go) before any byte of its answer
 * reached the client. Schedule another try after a backoff when the route's policy, the replay buffer,
 * the retry budget and the breaker's max_retries allow. Returns false when the caller must answer.
 */
static bool retry_start(struct bgw_client *c, enum bgw_try_failure why, unsigned status)
{
    struct bgw_request *r = &c->req;
    struct bgw_worker *w = c->w;
    const struct bgw_route *rt = req_route(r);
    if (!rt || !rt->has_retry || r->resp_started || r->replay_lost || !c->upout.base) return false;
    const char *m = bgw_stats_method_names[r->method];
    if (!bgw_retry_allowed(&rt->retry, why, status, m, strlen(m), r->retries)) return false;
    if (!r->held_retry) {
        struct bgw_cb *cb = r->ws->svc[r->service]->cb;
        if (!bgw_cb_budget_allows(atomic_load_explicit(&cb->count[BGW_CB_REQUESTS], memory_order_relaxed),
                                  atomic_load_explicit(&cb->count[BGW_CB_RETRIES], memory_order_relaxed)))
            return false;
        if (!cb_take(c, BGW_CB_RETRIES, req_service_cfg(r)->circuit_breaker.max_retries)) return false;
        r->held_retry = true;
    }
    abort_upstream(c);
    unqueue(c);
    if (r->endpoint != UINT32_MAX) {
        struct bgw_pool *p = r->ws->pools[r->service][r->endpoint];
        if (p->n_active) p->n_active--;
    }
    r->last_endpoint = r->endpoint;
    r->endpoint = UINT32_MAX;
    r->retries++;
    bgw_stats_retry(&w->stats, rt->name);
    r->backing_off = true;
    bgw_timer_set(&w->timers, &r->try_timer, w->now_ms + bgw_retry_backoff_ms(r->retries, bgw_worker_rand(w)));
    return true;
}

/* A try failed before its answer started: report it, then retry or answer status. */
static void try_failed(struct bgw_client *c, enum bgw_try_failure why, unsigned status, const char *code,
                       const char *message, bool close_conn)
{
    if (c->req.ws && c->req.route >= 0) {
        outlier_report(c, true);
        if (retry_start(c, why, status)) return;
    }
    respond_local(c, status, code, message, close_conn);
}

/* The next try after a backoff: another endpoint when there is one, the request replayed from upout. */
static void next_try(struct bgw_client *c)
{
    struct bgw_request *r = &c->req;
    struct bgw_worker *w = c->w;
    const struct bgw_snap_service *ss = &r->ws->snap->services[r->service];
    struct bgw_svc_rt *svc = r->ws->svc[r->service];
    struct bgw_pool **pools = r->ws->pools[r->service];
    long ep = bgw_lb_pick_except(w, ss, svc, pools, r->last_endpoint);
    if (ep < 0) {
        respond_local(c, 503, "no_healthy_upstream", "the service has no healthy endpoint", !r->body_done);
        return;
    }
    r->endpoint = (uint32_t)ep;
    pools[ep]->n_active++;
    c->upout.r = 0;
    try_begin(c);
    bool failed;
    struct bgw_upconn *u = bgw_upstream_acquire(w, svc, pools[ep], ss->cfg->connect_timeout_ms, false, &failed);
    if (failed) {
        try_failed(c, BGW_TRY_CONNECT_FAILURE, 502, "upstream_unavailable", "cannot connect to the upstream",
                   !r->body_done);
        return;
    }
    if (!u) {
        queue_wait(c);
        return;
    }
    attach(c, u);
}

static void try_timeout(struct bgw_timer *t)
{
    struct bgw_client *c = (struct bgw_client *)((char *)t - offsetof(struct bgw_client, req.try_timer));
    struct bgw_request *r = &c->req;
    if (c->state != BGW_C_PROXY || r->resp_started) return;
    if (r->backing_off) {
        r->backing_off = false;
        next_try(c);
        return;
    }
    /* per_try_timeout_ms passed without a response head */
    bool on_endpoint = c->up != NULL;
    abort_upstream(c);
    unqueue(c);
    if (on_endpoint) outlier_report(c, true);
    if (retry_start(c, BGW_TRY_TIMEOUT, 504)) return;
    respond_local(c, 504, "upstream_timeout", "the upstream did not answer in time", !r->body_done);
}

/* A final response head with status arrived on the current try. Returns true when the try is dropped for
 * another (a retried 5xx), false when the response goes to the client. */
static bool response_head_check(struct bgw_client *c, unsigned status)
{
    struct bgw_request *r = &c->req;
    bgw_timer_stop(&c->w->timers, &r->try_timer);
    outlier_report(c, status >= 500);
    if (status < 500) return false;
    uint64_t dur = bgw_now_ns() - r->up_start_ns;
    if (!retry_start(c, BGW_TRY_5XX, status)) return false;
    bgw_stats_upstream(&c->w->stats, req_service_cfg(r)->name, status, dur);
    return true;
}

/* Room for n more bytes in upout. While the request may still be replayed, the bytes already written stay
 * (no compaction) up to BGW_RETRY_REPLAY_MAX; past that the replay is given up. */
static int upout_reserve(struct bgw_client *c, size_t n)
{
    struct bgw_iobuf *b = &c->upout;
    if (c->req.replay_lost || !b->base) return out_reserve(b, &c->w->bufs, n);
    if (bgw_iobuf_space(b) >= n) return 0;
    size_t cap = b->cap;
    while (cap - b->w < n) cap *= 2;
    uint32_t rd = b->r, wr = b->w;
    char *nb = malloc(cap);
    if (!nb) return -1;
    memcpy(nb, b->base, wr);
    bgw_iobuf_put(b, &c->w->bufs);
    b->base = nb;
    b->cap = (uint32_t)cap;
    b->r = rd;
    b->w = wr;
    return 0;
}

/* Everything in upout was written: keep it for a replay while that is possible, else drop it. */
static bool replay_keep(struct bgw_client *c)
{
    struct bgw_request *r = &c->req;
    if (r->replay_lost) return false;
    /* A method that is not idempotent is retried only when it never reached an upstream: its body, once
     * sent, is not kept. */
    const char *m = bgw_stats_method_names[r->method];
    if (c->upout.w >= BGW_RETRY_REPLAY_MAX || !bgw_retry_idempotent(m, strlen(m))) {
        r->replay_lost = true;
        return false;
    }
    return true;
}

/* ---- rate limits ---- */

static void rate_limit_answer(void *owner, enum bgw_rl_verdict v, const struct bgw_rl_result *res)
{
    struct bgw_client *c = owner;
    c->rl_wait = NULL;
    c->rl_verdict = (uint8_t)v;
    c->rl_res = *res;
    c->state = BGW_C_HEAD;
    client_process(c);               /* parses the waiting head again; start_request takes the answer */
    if (c->state != BGW_C_DEAD && c->read_pending) {
        c->read_pending = false;
        client_read(c);
    }
}

/* A claim of the request's verified token (kept for rate-limit keys by jwt_auth). */
static const char *lookup_claim(void *ctx, const char *name, size_t name_len, size_t *value_len)
{
    const struct bgw_request *r = ctx;
    return bgw_jwt_claim_find(r->auth_claims, r->auth_claims_len, name, name_len, value_len);
}

/* The rate-limit policy of the routed request. Returns true to go on; false when the request was answered
 * (429) or parked until a global answer comes (the head stays unconsumed, the request is undone). */
static bool rate_limit_admits(struct bgw_client *c, const struct bgw_http_head *h, const struct bgw_route *route,
                              uint32_t head_len)
{
    struct bgw_request *r = &c->req;
    const struct bgw_rl_limit *l = bgw_rl_for_route(r->ws->snap->ratelimits, r->route);
    if (!l) return true;
    struct bgw_rl_result res;
    enum bgw_rl_verdict v;
    if (c->rl_verdict) {
        v = (enum bgw_rl_verdict)c->rl_verdict;
        res = c->rl_res;
        c->rl_verdict = 0;
    } else {
        struct bgw_rl_request rq = {.client_ip = c->peer, .route = route->name, .header = lookup_header,
                                    .header_ctx = (void *)h, .claim = r->auth_claims_len ? lookup_claim : NULL,
                                    .claim_ctx = r};
        v = bgw_rl_check(c->w, l, &rq, &res, rate_limit_answer, c, &c->rl_wait);
    }
    if (v == BGW_RL_CONTINUE) return true;
    if (v == BGW_RL_PENDING) {
        r->counted = false;
        bgw_stats_gauge_add(&c->w->stats.in_flight, -1);
        bgw_wsnap_release(c->w, r->ws);
        r->ws = NULL;
        r->route = -1;
        c->state = BGW_C_RLWAIT;
        return false;
    }
    r->rl_headers_len = (uint8_t)bgw_rl_format_headers(&res, r->rl_headers, sizeof r->rl_headers);
    bgw_stats_ratelimit_rejected(&c->w->stats, route->name);
    c->in.r += head_len;
    respond_local(c, 429, "rate_limited", "too many requests", !r->body_done);
    return false;
}

/* Answer an allowed CORS preflight: 204 with the policy's Access-Control-Allow-* headers. */
static void respond_preflight(struct bgw_client *c, const struct bgw_http_head *h)
{
    struct bgw_request *r = &c->req;
    bool close_conn = !r->body_done || !r->keep_alive || c->eof || c->w->draining;
    char extra[2048];
    size_t n = bgw_cors_preflight_headers(&r->cors, h, extra, sizeof extra);
    if (out_reserve(&c->out, &c->w->bufs, 256 + n) < 0) {
        client_close(c);
        return;
    }
    struct bgw_iobuf *o = &c->out;
    PUT_LIT(o, "HTTP/1.1 204 No Content\r\nX-Request-Id: ");
    out_put(o, r->request_id, strlen(r->request_id));
    PUT_LIT(o, "\r\n");
    out_put(o, extra, n);
    if (close_conn) PUT_LIT(o, "Connection: close\r\n");
    PUT_LIT(o, "\r\n");
    r->status = 204;
    request_end(c, 204);
    bgw_timer_stop(&c->w->timers, &c->timer);
    c->state = close_conn ? BGW_C_CLOSING : BGW_C_IDLE;
    c->close_after = close_conn;
    client_flush(c);
    if (c->state == BGW_C_IDLE)
        bgw_timer_set(&c->w->timers, &c->timer, c->w->now_ms + c->w->limits.idle_timeout_ms);
}

/* The route's policies, each one call that says continue or answer now: CORS (preflights are answered
 * before auth: they carry no credentials), then JWT auth. Returns true when the request was answered. */
static bool run_policies(struct bgw_client *c, const struct bgw_snapshot *snap, long idx, uint32_t head_len)
{
    struct bgw_worker *w = c->w;
    struct bgw_request *r = &c->req;
    enum bgw_cors_action ca = bgw_cors_request(snap->route_cors[idx], &w->head, &r->cors);
    if (ca != BGW_CORS_CONTINUE) c->in.r += head_len;   /* the head stays readable until we return */
    if (ca == BGW_CORS_PREFLIGHT_OK) {
        respond_preflight(c, &w->head);
        return true;
    }
    if (ca == BGW_CORS_PREFLIGHT_DENIED) {
        respond_local(c, 403, "cors_denied", "the CORS preflight is not allowed for this origin, method or headers",
                      !r->body_done);
        return true;
    }
    const struct bgw_jwt_policy *auth = snap->route_auth[idx];
    if (auth) {
        struct bgw_jwt_verdict v;
        enum bgw_jwt_result jr = bgw_jwt_auth_request(auth, &w->jwt_cache, &w->head, (int64_t)time(NULL), &v);
        if (jr != BGW_JWT_OK) {
            bgw_stats_auth_rejected(&w->stats, snap->cfg->routes[idx].name, bgw_jwt_reason(jr));
            r->www_authenticate = bgw_jwt_www_authenticate(jr);
            c->in.r += head_len;
            respond_local(c, 401, jr == BGW_JWT_MISSING ? "missing_token" : "invalid_token", bgw_jwt_message(jr),
                          !r->body_done);
            return true;
        }
        r->auth_headers = v.add_headers;
        r->auth_headers_len = (uint32_t)v.add_headers_len;
        r->auth_claims = v.claims;
        r->auth_claims_len = (uint32_t)v.claims_len;
    }
    return false;
}

/* Route, pick an endpoint and get an upstream connection for the head just parsed into w->head. */
static void start_request(struct bgw_client *c, const struct bgw_http_head *h)
{
    struct bgw_worker *w = c->w;
    struct bgw_request *r = &c->req;
    memset(r, 0, sizeof *r);
    r->route = -1;
    r->endpoint = UINT32_MAX;
    r->last_endpoint = UINT32_MAX;
    r->try_timer.cb = try_timeout;
    r->max_body = UINT64_MAX;
    r->start_ns = bgw_now_ns();
    r->keep_alive = h->keep_alive;
    r->http10 = h->minor == 0;
    r->head_method = h->method_len == 4 && memcmp(h->method, "HEAD", 4) == 0;
    r->method = bgw_stats_method(h->method, h->method_len);
    r->body_done = !h->has_body;
    r->up_chunked = h->chunked;
    r->counted = true;
    bgw_stats_gauge_add(&w->stats.in_flight, 1);
    c->state = BGW_C_PROXY;
    c->want_continue = false;

    int ri = bgw_http_head_find(h, "x-request-id", 12);
    if (ri >= 0 && request_id_ok(h->headers[ri].value, h->headers[ri].value_len)) {
        memcpy(r->request_id, h->headers[ri].value, h->headers[ri].value_len);
        r->request_id[h->headers[ri].value_len] = 0;
    } else {
        request_id_new(w, r->request_id);
    }
    int tp = bgw_http_head_find(h, "traceparent", 11);
    uint64_t rnd[3] = {bgw_worker_rand(w), bgw_worker_rand(w), bgw_worker_rand(w)};
    r->trace_kept = bgw_traceparent_next(tp >= 0 ? h->headers[tp].value : NULL,
                                         tp >= 0 ? h->headers[tp].value_len : 0, rnd, r->traceparent);
    if (bgw_access_log_on) bgw_access_log_note_target(r->log_path, sizeof r->log_path, h->target, h->target_len);
    uint32_t head_len = h->head_len;

    if (!w->snap) {
        c->in.r += head_len;
        respond_local(c, 503, "no_config", "the proxy has no config yet", true);
        return;
    }
    r->ws = w->snap;
    r->ws->users++;
    const struct bgw_snapshot *snap = r->ws->snap;

    /* Request target: origin-form, or absolute-form whose authority replaces Host. */
    const char *t = h->target, *host = NULL;
    size_t tl = h->target_len, host_len = 0;
    bool host_from_target = false;
    if (starts_with_ci(t, tl, "http://") || starts_with_ci(t, tl, "https://")) {
        size_t skip = t[4] == ':' ? 7 : 8;
        const char *a = t + skip;
        size_t al = 0;
        while (skip + al < tl && a[al] != '/' && a[al] != '?') al++;
        host = a;
        host_len = al;
        host_from_target = true;
        t = a + al;
        tl -= skip + al;
    } else if (tl == 0 || t[0] != '/') {
        c->in.r += head_len;
        respond_local(c, 400, "bad_request", "unsupported request target", true);
        return;
    }
    if (!host_from_target && h->host >= 0) {
        host = h->headers[h->host].value;
        host_len = h->headers[h->host].value_len;
    }
    const char *q = memchr(t, '?', tl);
    size_t plen = q ? (size_t)(q - t) : tl;
    const char *query = q ? q : "";
    size_t query_len = q ? tl - plen : 0;
    long n = plen ? bgw_pathnorm(t, plen, w->path) : (w->path[0] = '/', w->path[1] = 0, 1);
    if (n < 0) {
        c->in.r += head_len;
        respond_local(c, 400, "bad_request", "invalid request path", true);
        return;
    }

    /* A CORS preflight is routed as the request it announces. */
    const char *method = h->method;
    size_t method_len = h->method_len;
    if (method_len == 7 && memcmp(method, "OPTIONS", 7) == 0 && bgw_http_head_find(h, "origin", 6) >= 0) {
        int k = bgw_http_head_find(h, "access-control-request-method", 29);
        if (k >= 0 && h->headers[k].value_len) {
            method = h->headers[k].value;
            method_len = h->headers[k].value_len;
        }
    }
    struct bgw_route_input in = {
        .path = w->path, .path_len = (size_t)n, .method = method, .method_len = method_len,
        .host = host, .host_len = host_len, .header = lookup_header, .ctx = (void *)h,
    };
    long idx = bgw_router_match(snap->router, &in);
    if (idx < 0) {
        c->in.r += head_len;
        respond_local(c, 404, "no_route", "", !r->body_done);
        return;
    }
    const struct bgw_route *route = &snap->cfg->routes[idx];
    r->route = idx;
    r->service = (uint32_t)route->service_index;
    if (run_policies(c, snap, idx, head_len)) return;   /* answered by a policy (CORS preflight, 401) */
    if (route->rate_limit && !rate_limit_admits(c, h, route, head_len)) return;
    if (route->has_max_body_bytes) {
        r->max_body = route->max_body_bytes;
        if (h->has_content_length && h->content_length > r->max_body) {
            c->in.r += head_len;
            respond_local(c, 413, "body_too_large", "the request body is larger than this route allows", true);
            return;
        }
    }

    /* rewrite_prefix replaces the matched prefix, without doubling a slash at the seam. */
    const char *path = w->path;
    size_t path_len = (size_t)n;
    if (route->rewrite_prefix && route->match.path_prefix) {
        size_t pl = strlen(route->match.path_prefix);
        if (pl == 1) pl = 0;                      /* "/" matched: everything is the rest */
        const char *rest = w->path + pl;
        size_t rest_len = path_len - pl;
        size_t rl = strlen(route->rewrite_prefix);
        if (rl + rest_len + 2 > sizeof w->rewritten) {
            c->in.r += head_len;
            respond_local(c, 400, "bad_request", "the rewritten path is too long", true);
            return;
        }
        char *out = w->rewritten;
        memcpy(out, route->rewrite_prefix, rl);
        size_t k = rl;
        if (k && out[k - 1] == '/' && rest_len && rest[0] == '/') {
            rest++;
            rest_len--;
        } else if (k && out[k - 1] != '/' && rest_len && rest[0] != '/') {
            out[k++] = '/';
        }
        memcpy(out + k, rest, rest_len);
        k += rest_len;
        if (k == 0) out[k++] = '/';
        path = out;
        path_len = k;
    }

    const struct bgw_snap_service *ss = &snap->services[r->service];
    struct bgw_svc_rt *svc = r->ws->svc[r->service];
    struct bgw_pool **pools = r->ws->pools[r->service];
    long ep = bgw_lb_pick(w, ss, svc, pools);
    if (ep < 0) {
        c->in.r += head_len;
        respond_local(c, 503, "no_healthy_upstream", "the service has no healthy endpoint", !r->body_done);
        return;
    }
    r->endpoint = (uint32_t)ep;
    struct bgw_pool *pool = pools[ep];
    pool->n_active++;

    int rc = build_upstream_head(c, h, path, path_len, query, query_len, host, host_len, host_from_target,
                                 ss->eps[ep].address);
    c->in.r += head_len;
    if (rc < 0) {
        respond_local(c, 503, "overloaded", "out of memory", true);
        return;
    }
    if (!resil_admit(c)) return;
    c->want_continue = h->expect_continue && h->has_body;
    if (route->timeout_ms) bgw_timer_set(&w->timers, &c->timer, w->now_ms + route->timeout_ms);
    else bgw_timer_stop(&w->timers, &c->timer);

    try_begin(c);
    bool failed;
    struct bgw_upconn *u = bgw_upstream_acquire(w, svc, pool, ss->cfg->connect_timeout_ms, false, &failed);
    if (failed) {
        try_failed(c, BGW_TRY_CONNECT_FAILURE, 502, "upstream_unavailable", "cannot connect to the upstream",
                   !r->body_done);
        return;
    }
    if (!u) {                                     /* at the connection bound: wait for one */
        queue_wait(c);
        return;
    }
    attach(c, u);
}

static void client_process(struct bgw_client *c)
{
    struct bgw_worker *w = c->w;
    while (c->state == BGW_C_IDLE || c->state == BGW_C_HEAD) {
        if (bgw_iobuf_len(&c->in) == 0) {
            bgw_iobuf_put(&c->in, &w->bufs);
            if (c->state == BGW_C_HEAD) c->state = BGW_C_IDLE;
            return;
        }
        if (c->state == BGW_C_IDLE) {
            c->state = BGW_C_HEAD;
            bgw_timer_set(&w->timers, &c->timer, w->now_ms + w->limits.header_timeout_ms);
        }
        const char *reason;
        int rc = bgw_http1_parse_head(&c->codec, c->in.base + c->in.r, bgw_iobuf_len(&c->in), &w->head, &reason);
        if (rc == 0) return;
        if (rc < 0) {
            c->req.counted = true;
            c->req.route = -1;
            c->req.ws = NULL;
            c->req.start_ns = bgw_now_ns();
            c->req.method = bgw_stats_method("OTHER", 5);
            c->req.keep_alive = false;
            c->req.request_id[0] = 0;
            c->req.resp_started = false;
            c->req.head_method = false;
            bgw_stats_gauge_add(&w->stats.in_flight, 1);
            const char *code = -rc == 431 ? "header_too_large" : -rc == 501 ? "not_implemented" : "bad_request";
            respond_local(c, (unsigned)-rc, code, reason, true);
            return;
        }
        start_request(c, &w->head);
    }
    if (c->state == BGW_C_PROXY) pump_request_body(c);
}

/* ---- request body: client -> upstream ---- */

static int request_body_piece(void *ctx, const char *data, size_t len)
{
    struct bgw_client *c = ctx;
    struct bgw_request *r = &c->req;
    r->body_bytes += len;
    if (r->body_bytes > r->max_body) return -1;
    if (upout_reserve(c, len + BODY_MARGIN) < 0) return -1;
    if (r->up_chunked) put_chunk_size(&c->upout, len);
    out_put(&c->upout, data, len);
    if (r->up_chunked) PUT_LIT(&c->upout, "\r\n");
    return 0;
}

static void upstream_write_failed(struct bgw_client *c);

static void pump_request_body(struct bgw_client *c)
{
    struct bgw_request *r = &c->req;
    for (;;) {
        struct bgw_upconn *u = c->up;
        if (!u || u->state != BGW_UP_ACTIVE) return;
        while (bgw_iobuf_len(&c->upout)) {
            ssize_t n = write(u->ev.fd, c->upout.base + c->upout.r, bgw_iobuf_len(&c->upout));
            if (n > 0) {
                c->upout.r += (uint32_t)n;
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;   /* resumes on EPOLLOUT */
            upstream_write_failed(c);
            return;
        }
        if (r->body_done) return;
        if (!replay_keep(c)) c->upout.r = c->upout.w = 0;
        if (bgw_iobuf_len(&c->in) == 0) {
            int rc = client_fill(c);
            if (rc == 0) return;
            if (rc < 0) {                         /* the client went away mid-body */
                client_close(c);
                return;
            }
        }
        if (c->want_continue) c->want_continue = false;   /* the client did not wait for it */
        size_t room = c->upout.base ? bgw_iobuf_space(&c->upout) : BGW_BUF_SIZE;
        size_t feed = bgw_iobuf_len(&c->in);
        if (room < 2 * BODY_MARGIN) room = 2 * BODY_MARGIN;
        if (feed > room - BODY_MARGIN) feed = room - BODY_MARGIN;
        long n = bgw_http1_body(&c->codec, c->in.base + c->in.r, feed, request_body_piece, c);
        if (n < 0) {
            if (r->body_bytes > r->max_body)
                respond_local(c, 413, "body_too_large", "the request body is larger than this route allows", true);
            else
                respond_local(c, 400, "bad_request", "malformed request body", true);
            return;
        }
        c->in.r += (uint32_t)n;
        if (n > 0) request_progress(c);
        if (c->codec.complete) {
            r->body_done = true;
            if (r->up_chunked) {
                if (upout_reserve(c, 8) < 0) {
                    client_close(c);
                    return;
                }
                PUT_LIT(&c->upout, "0\r\n\r\n");
            }
        }
    }
}

void bgw_proxy_upstream_ready(struct bgw_client *c, struct bgw_upconn *u)
{
    (void)u;
    if (c->want_continue && bgw_iobuf_len(&c->in) == 0) {
        c->want_continue = false;
        if (out_reserve(&c->out, &c->w->bufs, 32) == 0) {
            PUT_LIT(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
            client_flush(c);
            if (c->state == BGW_C_DEAD) return;
        }
    }
    pump_request_body(c);
}

void bgw_proxy_upstream_writable(struct bgw_client *c)
{
    pump_request_body(c);
}

/* Move the request to a fresh connection after a pooled one turned out dead before answering.
 * Only for requests without a body, whose head is still whole in upout. */
static bool retry_on_fresh(struct bgw_client *c)
{
    struct bgw_request *r = &c->req;
    if (r->retried || !r->body_done || r->body_bytes || !c->upout.base) return false;
    r->retried = true;
    c->upout.r = 0;
    struct bgw_pool *pool = r->ws->pools[r->service][r->endpoint];
    struct bgw_svc_rt *svc = r->ws->svc[r->service];
    bool failed;
    struct bgw_upconn *u = bgw_upstream_acquire(c->w, svc, pool, r->ws->snap->services[r->service].cfg->connect_timeout_ms,
                                                true, &failed);
    if (!u) return false;
    attach(c, u);
    return true;
}

static void upstream_write_failed(struct bgw_client *c)
{
    struct bgw_upconn *u = c->up;
    bool reused = u->reused && !u->got_response_bytes;
    abort_upstream(c);
    if (reused && retry_on_fresh(c)) return;
    try_failed(c, BGW_TRY_RESET, 502, "upstream_unavailable", "the upstream connection failed", true);
}

void bgw_proxy_upstream_failed(struct bgw_client *c, enum bgw_up_failure why)
{
    c->up = NULL;
    if (why == BGW_UP_CONNECT_TIMEOUT)
        try_failed(c, BGW_TRY_CONNECT_FAILURE, 504, "upstream_timeout", "connecting to the upstream timed out",
                   !c->req.body_done);
    else
        try_failed(c, BGW_TRY_CONNECT_FAILURE, 502, "upstream_unavailable", "cannot connect to the upstream",
                   !c->req.body_done);
}

void bgw_proxy_dispatch_waiting(struct bgw_client *c, struct bgw_upconn *u)
{
    struct bgw_request *r = &c->req;
    pending_done(c);
    if (!u) {
        bool failed;
        struct bgw_svc_rt *svc = r->ws->svc[r->service];
        struct bgw_pool *pool = r->ws->pools[r->service][r->endpoint];
        u = bgw_upstream_acquire(c->w, svc, pool, r->ws->snap->services[r->service].cfg->connect_timeout_ms, false,
                                 &failed);
        if (!u) {
            try_failed(c, BGW_TRY_CONNECT_FAILURE, 502, "upstream_unavailable", "cannot connect to the upstream",
                       !r->body_done);
            return;
        }
    }
    attach(c, u);
}

/* ---- response: upstream -> client ---- */

static int response_body_piece(void *ctx, const char *data, size_t len)
{
    struct bgw_client *c = ctx;
    if (out_reserve(&c->out, &c->w->bufs, len + BODY_MARGIN) < 0) return -1;
    if (c->req.resp_chunked) put_chunk_size(&c->out, len);
    out_put(&c->out, data, len);
    c->req.resp_bytes += len;
    if (c->req.resp_chunked) PUT_LIT(&c->out, "\r\n");
    return 0;
}

static int build_response_head(struct bgw_client *c, const struct bgw_http_head *h)
{
    struct bgw_request *r = &c->req;
    if (out_reserve(&c->out, &c->w->bufs, h->head_len + 256 + bgw_cors_response_headers_max(&r->cors)) < 0)
        return -1;
    struct bgw_iobuf *o = &c->out;
    PUT_LIT(o, "HTTP/1.1 ");
    put_uint(o, h->status);
    PUT_LIT(o, " ");
    out_put(o, h->reason, h->reason_len);
    PUT_LIT(o, "\r\n");
    bool has_id = false;
    for (uint32_t i = 0; i < h->n_headers; i++) {
        const struct bgw_http_header *x = &h->headers[i];
        if (x->hop) continue;
        if (r->cors.policy && bgw_cors_owns_header(x->name, x->name_len)) continue;   /* the proxy's own */
        if (x->id == BGW_HDR_X_REQUEST_ID) has_id = true;
        out_put(o, x->name, x->name_len);
        PUT_LIT(o, ": ");
        out_put(o, x->value, x->value_len);
        PUT_LIT(o, "\r\n");
    }
    if (!has_id) {
        PUT_LIT(o, "X-Request-Id: ");
        out_put(o, r->request_id, strlen(r->request_id));
        PUT_LIT(o, "\r\n");
    }
    put_policy_headers(o, r);
    if (h->has_body) {
        if (h->has_content_length) {
            PUT_LIT(o, "Content-Length: ");
            put_uint(o, h->content_length);
            PUT_LIT(o, "\r\n");
        } else if (!r->http10) {
            r->resp_chunked = true;
            PUT_LIT(o, "Transfer-Encoding: chunked\r\n");
        } else {
            r->resp_until_close = true;
            c->close_after = true;
        }
    } else if (h->has_content_length && (r->head_method || h->status == 304)) {
        PUT_LIT(o, "Content-Length: ");
        put_uint(o, h->content_length);
        PUT_LIT(o, "\r\n");
    } else if (h->status >= 200 && h->status != 204 && h->status != 304) {
        PUT_LIT(o, "Content-Length: 0\r\n");
    }
    if (!r->keep_alive || c->eof || c->w->draining || !r->body_done) c->close_after = true;
    if (c->close_after) PUT_LIT(o, "Connection: close\r\n");
    else if (r->http10) PUT_LIT(o, "Connection: keep-alive\r\n");
    PUT_LIT(o, "\r\n");
    r->status = (uint16_t)h->status;
    r->resp_started = true;
    return 0;
}

static void response_done(struct bgw_client *c)
{
    struct bgw_request *r = &c->req;
    struct bgw_worker *w = c->w;
    struct bgw_upconn *u = c->up;
    if (r->resp_chunked) {
        if (out_reserve(&c->out, &w->bufs, 8) < 0) {
            client_close(c);
            return;
        }
        PUT_LIT(&c->out, "0\r\n\r\n");
    }
    bool reusable = u->codec.complete && u->keep_alive && r->body_done && bgw_iobuf_len(&c->upout) == 0;
    r->up_ns = bgw_now_ns() - r->up_start_ns;
    bgw_stats_upstream(&w->stats, r->ws->snap->cfg->services[r->service].name, r->status, r->up_ns);
    c->up = NULL;
    u->client = NULL;
    bgw_upstream_release(u, reusable);
    if (!r->body_done) c->close_after = true;
    request_end(c, r->status);
    bgw_iobuf_put(&c->upout, &w->bufs);
    c->state = c->close_after ? BGW_C_CLOSING : BGW_C_IDLE;
    client_flush(c);
    if (c->state != BGW_C_IDLE) return;
    bgw_timer_set(&w->timers, &c->timer, w->now_ms + w->limits.idle_timeout_ms);
    if (bgw_iobuf_len(&c->in)) client_process(c);          /* a pipelined request */
    else if (bgw_iobuf_len(&c->out) == 0) bgw_iobuf_put(&c->in, &w->bufs);
    if (c->read_pending && (c->state == BGW_C_IDLE || c->state == BGW_C_HEAD)) {
        c->read_pending = false;
        client_read(c);
    }
}

/* Parse and forward what is in u->in. Returns false when the client's side is full (paused) or the
 * request ended. */
static bool forward_response(struct bgw_client *c, struct bgw_upconn *u)
{
    struct bgw_worker *w = c->w;
    while (!u->head_done) {
        const char *reason;
        int rc = bgw_http1_parse_head(&u->codec, u->in.base + u->in.r, bgw_iobuf_len(&u->in), &w->head, &reason);
        if (rc == 0) {
            if (bgw_iobuf_space(&u->in) == 0 && u->in.r == 0 && u->in.cap <= BGW_HTTP_MAX_RESPONSE_HEAD &&
                bgw_iobuf_grow(&u->in, BGW_HTTP_MAX_RESPONSE_HEAD + 4096) < 0) {
                abort_upstream(c);
                respond_local(c, 502, "upstream_unavailable", "out of memory", true);
                return false;
            }
            return true;
        }
        if (rc < 0) {
            bgw_log_warn("upstream %s sent a malformed response head: %s", u->pool->address, reason);
            abort_upstream(c);
            respond_local(c, 502, "bad_upstream_response", "the upstream sent a malformed response", true);
            return false;
        }
        if (w->head.status >= 100 && w->head.status < 200) {
            u->in.r += (uint32_t)rc;
            if (w->head.status == 101) {
                abort_upstream(c);
                respond_local(c, 502, "bad_upstream_response", "protocol upgrades are not supported", true);
                return false;
            }
            bgw_http1_init(&u->codec, true);
            u->codec.head_request = c->req.head_method;
            continue;                       /* interim response: the final one follows */
        }
        if (response_head_check(c, w->head.status)) return false;   /* retried */
        if (build_response_head(c, &w->head) < 0) {
            client_close(c);
            return false;
        }
        u->in.r += (uint32_t)rc;
        u->head_done = true;
        u->keep_alive = w->head.keep_alive;
        if (!w->head.has_body) {
            response_done(c);
            return false;
        }
    }
    while (!u->codec.complete && bgw_iobuf_len(&u->in)) {
        if (out_reserve(&c->out, &w->bufs, 0) < 0) {
            client_close(c);
            return false;
        }
        if (bgw_iobuf_space(&c->out) < 2 * BODY_MARGIN) {
            bgw_iobuf_compact(&c->out);
            if (bgw_iobuf_space(&c->out) < 2 * BODY_MARGIN) {
                client_flush(c);
                if (c->state == BGW_C_DEAD) return false;
                bgw_iobuf_compact(&c->out);
                if (bgw_iobuf_space(&c->out) < 2 * BODY_MARGIN) return false;  /* paused until EPOLLOUT */
            }
        }
        size_t feed = bgw_iobuf_len(&u->in);
        if (feed > bgw_iobuf_space(&c->out) - BODY_MARGIN) feed = bgw_iobuf_space(&c->out) - BODY_MARGIN;
        long n = bgw_http1_body(&u->codec, u->in.base + u->in.r, feed, response_body_piece, c);
        if (n < 0) {
            bgw_log_warn("upstream %s sent a malformed response body", u->pool->address);
            abort_upstream(c);
            client_close(c);
            return false;
        }
        u->in.r += (uint32_t)n;
        if (n > 0 && c->req.resp_started) request_progress(c);
    }
    if (u->codec.complete) {
        response_done(c);
        return false;
    }
    return true;
}

void bgw_proxy_upstream_readable(struct bgw_client *c)
{
    for (;;) {
        struct bgw_upconn *u = c->up;
        if (!u || c->state != BGW_C_PROXY) return;
        int rc = bgw_upstream_fill(u);
        if (rc < 0) {
            if (!u->head_done) {
                bool stale = u->reused && !u->got_response_bytes;
                abort_upstream(c);
                if (stale && retry_on_fresh(c)) return;
                try_failed(c, BGW_TRY_RESET, 502, "upstream_unavailable",
                           "the upstream closed the connection before answering", true);
                return;
            }
            /* EOF: ends a close-delimited body, anything else was cut short. */
            if (forward_response(c, u) && c->up == u) {
                if (bgw_http1_eof(&u->codec) == 0 && u->codec.complete) {
                    response_done(c);
                    if (c->state != BGW_C_DEAD) client_flush(c);
                } else {
                    abort_upstream(c);
                    client_flush(c);
                    client_close(c);
                }
            }
            return;
        }
        if (bgw_iobuf_len(&u->in) == 0) return;
        if (!forward_response(c, u)) return;
        if (c->state == BGW_C_DEAD) return;
        client_flush(c);
        /* Edge-triggered: bytes and the FIN may come in one event; read on to see the end. */
        if (rc != 2 && !(u->peer_closed && c->up == u)) return;
    }
}

void bgw_proxy_drain(struct bgw_client *c)
{
    if (c->state == BGW_C_IDLE || c->state == BGW_C_HEAD) client_close(c);
    else c->close_after = true;
}
