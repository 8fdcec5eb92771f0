/*
 * proxy.h - the request lifecycle on a client connection: read a head, normalise, route, pick an endpoint,
 * forward the head and stream the body up, stream the response down, keep the connection alive.
 *
 * Bodies are re-framed both ways (Content-Length kept, chunked re-encoded, close-delimited responses
 * chunked for HTTP/1.1 clients) through bounded buffers: a side whose output buffer is full stops reading
 * its input, so memory per connection is bounded whatever the body size.
 */
#ifndef BGW_PROXY_H
#define BGW_PROXY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "cors.h"
#include "http1.h"
#include "rate_limit.h"
#include "timer.h"
#include "upstream.h"
#include "worker.h"

/* A worker's view of one snapshot: the snapshot and, per service and endpoint, the worker's runtime state. */
struct bgw_wsnap {
    struct bgw_snapshot *snap;
    uint32_t users;                  /* requests still running on it, plus one while it is current */
    struct bgw_svc_rt **svc;         /* per snapshot service */
    struct bgw_pool ***pools;        /* per snapshot service, per endpoint */
};

/* BGW_C_RLWAIT: a request head waits (unconsumed in c->in) for a global rate-limit answer; it is parsed
 * again when the answer comes. */
enum bgw_client_state { BGW_C_IDLE = 1, BGW_C_HEAD, BGW_C_PROXY, BGW_C_CLOSING, BGW_C_DEAD, BGW_C_RLWAIT };

struct bgw_request {
    struct bgw_wsnap *ws;            /* holds a use of it while the request runs */
    long route;                      /* index into the snapshot's routes, -1 before routing */
    uint64_t start_ns;
    uint64_t up_start_ns;            /* when the request went to its upstream connection */
    uint16_t method;                 /* stats label index */
    uint16_t status;                 /* status sent to the client */
    bool head_method;
    bool keep_alive;                 /* the client allows reuse */
    bool http10;
    bool body_done;                  /* the request body was fully read */
    bool up_chunked;                 /* the body goes upstream chunk-encoded */
    bool resp_started;               /* bytes of the response were queued for the client */
    bool resp_chunked;               /* the response body goes to the client chunk-encoded */
    bool resp_until_close;           /* HTTP/1.0 client, body delimited by close */
    bool retried;                    /* already moved once from a stale pooled connection */
    bool counted;                    /* in-flight gauge incremented */
    uint64_t body_bytes;             /* request body bytes forwarded so far */
    uint64_t max_body;               /* UINT64_MAX: no limit */
    uint32_t service;                /* index into the snapshot's services */
    uint32_t endpoint;
    /* resilience (retries, circuit breaker, outlier detection: see docs/internals/resilience.md) */
    uint32_t retries;                /* retries made */
    uint32_t last_endpoint;          /* the endpoint of the failed try, avoided by the next one */
    bool held_request;               /* counted in the service's active requests */
    bool held_retry;                 /* counted in the service's active retries */
    bool pending;                    /* counted in the service's pending requests (waiting queue) */
    bool backing_off;                /* try_timer is the wait before the next try */
    bool replay_lost;                /* request bytes were dropped from upout: no further try */
    bool overloaded;                 /* answered 503 by a circuit breaker (X-Bgw-Overloaded) */
    struct bgw_timer try_timer;      /* per-try timeout, or the backoff before the next try */
    const char *auth_headers;        /* JWT claim headers for the upstream (jwt_auth.h), with their length */
    uint32_t auth_headers_len;
    const char *auth_claims;         /* the verified token's kept claims (rate-limit keys), with length */
    uint32_t auth_claims_len;
    const char *www_authenticate;    /* the WWW-Authenticate line of a 401, or NULL */
    struct bgw_cors_verdict cors;    /* the route's CORS outcome, for the response headers */
    char request_id[129];
    uint8_t rl_headers_len;
    char rl_headers[160];            /* RateLimit-* and Retry-After lines of a 429 */
    /* observability: the traceparent sent upstream, and what the access log reports */
    bool trace_kept;                 /* the client's trace context was valid and is continued */
    char traceparent[56];
    uint64_t up_ns;                  /* upstream response time, 0 when none */
    uint64_t resp_bytes;             /* response body bytes sent to the client */
    char log_path[256];              /* the request target without its query (only with an access log) */
};

struct bgw_client {
    struct bgw_ev ev;                /* first: epoll data points here */
    uint8_t state;
    bool eof;                        /* the client closed its side */
    bool close_after;                /* close once the output is flushed */
    bool want_continue;              /* send 100 Continue before reading the body */
    bool lingering;                  /* answer sent, FIN sent, dropping input until the client closes */
    bool read_pending;               /* the client sent more while a response was awaited: read it after */
    struct bgw_worker *w;
    struct bgw_client *next;         /* the service's waiting queue, or the worker's dead list */
    struct bgw_client *all_prev, *all_next;   /* every client of the worker */
    struct bgw_upconn *up;
    struct bgw_iobuf in;             /* from the client */
    struct bgw_iobuf out;            /* to the client */
    struct bgw_iobuf upout;          /* to the upstream: the request head, then body pieces */
    struct bgw_http1 codec;
    struct bgw_timer timer;          /* idle, header-read or request timeout */
    struct bgw_request req;
    struct bgw_rl_wait *rl_wait;     /* a pending global rate-limit answer (state BGW_C_RLWAIT) */
    uint8_t rl_verdict;              /* 0, or the answer to use when the waiting head is parsed again */
    struct bgw_rl_result rl_res;
    char peer[INET6_ADDRSTRLEN];
};

/* A new client connection fd (non-blocking) accepted by w from peer. */
void bgw_proxy_accept(struct bgw_worker *w, int fd, const struct sockaddr_storage *peer);
/* Event from epoll for c. */
void bgw_proxy_on_event(struct bgw_client *c, uint32_t events);

/* Called by the upstream module. */
void bgw_proxy_upstream_ready(struct bgw_client *c, struct bgw_upconn *u);    /* connected or reused */
void bgw_proxy_upstream_readable(struct bgw_client *c);                       /* response bytes in u->in */
void bgw_proxy_upstream_writable(struct bgw_client *c);
enum bgw_up_failure { BGW_UP_CONNECT_FAILED, BGW_UP_CONNECT_TIMEOUT };
void bgw_proxy_upstream_failed(struct bgw_client *c, enum bgw_up_failure why);  /* u is gone */
void bgw_proxy_dispatch_waiting(struct bgw_client *c, struct bgw_upconn *u);  /* a queued request gets u */

/* Draining: close c now if it is idle, else once its current response is sent. */
void bgw_proxy_drain(struct bgw_client *c);

/* Release one use of a worker snapshot view; frees it when unused and no longer current. */
void bgw_wsnap_release(struct bgw_worker *w, struct bgw_wsnap *ws);
/* Build the worker's view of s. NULL when out of memory. */
struct bgw_wsnap *bgw_wsnap_build(struct bgw_worker *w, struct bgw_snapshot *s);

/* Free the clients closed during this loop turn. */
void bgw_proxy_reap(struct bgw_worker *w);

#endif
