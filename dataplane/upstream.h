/*
 * upstream.h - upstream connections and the per-worker, per-service keep-alive pools.
 *
 * A service's runtime state (struct bgw_svc_rt) lives in its worker and is found by name, so pools,
 * load-balancer cursors and waiting requests survive a config swap. Each service keeps, per endpoint
 * address, a LIFO of idle connections; the connections of a service in one worker are bounded by
 * ceil(max_connections / workers). A request that finds the bound reached waits in the service's FIFO
 * and gets the next connection released. A service and an endpoint address also point at their
 * proxy-wide circuit breaker and outlier state (circuit_breaker.h, outlier.h), found by name once.
 */
#ifndef BGW_UPSTREAM_H
#define BGW_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"
#include "circuit_breaker.h"
#include "http1.h"
#include "outlier.h"
#include "timer.h"
#include "worker.h"

enum bgw_up_state { BGW_UP_CONNECTING = 1, BGW_UP_ACTIVE, BGW_UP_IDLE, BGW_UP_DEAD };

struct bgw_pool {                     /* one endpoint address of one service */
    struct bgw_pool *next;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char address[80];
    struct bgw_upconn *idle;          /* LIFO */
    uint32_t n_idle;
    uint32_t n_active;                /* requests in flight (least_request) */
    bool present;                     /* still an endpoint of the service in the current snapshot */
    struct bgw_outlier_ep *od;        /* the proxy-wide outlier state of this address */
};

struct bgw_svc_rt {
    struct bgw_svc_rt *next;
    char *name;
    struct bgw_pool *pools;
    uint32_t n_conns;                 /* all connections of the service in this worker */
    uint32_t max_conns;
    uint32_t rr;                      /* round-robin cursor */
    struct bgw_client *waiting_head, *waiting_tail;
    bool present;
    struct bgw_cb *cb;                /* the proxy-wide circuit breaker of the service */
    struct bgw_outlier_svc *od;       /* the proxy-wide outlier state of the service */
};

struct bgw_upconn {
    struct bgw_ev ev;                 /* first: epoll data points here */
    uint8_t state;
    bool reused;                      /* served a request before this one */
    bool got_response_bytes;
    bool head_done;                   /* the response head was forwarded */
    bool keep_alive;                  /* the response head allows reuse */
    bool peer_closed;                 /* epoll saw the upstream's FIN or an error: read to the end */
    struct bgw_worker *w;
    struct bgw_svc_rt *svc;
    struct bgw_pool *pool;
    struct bgw_client *client;        /* the request using it, when ACTIVE or CONNECTING */
    struct bgw_upconn *next;          /* idle list, or the worker's dead list */
    struct bgw_iobuf in;
    struct bgw_http1 codec;
    struct bgw_timer timer;           /* connect timeout, or idle timeout while pooled */
};

/* Find or create the runtime state of a service by name. NULL when out of memory. */
struct bgw_svc_rt *bgw_svc_rt_get(struct bgw_worker *w, const char *name);
/* Find or create the pool of an endpoint address within a service. NULL when out of memory. */
struct bgw_pool *bgw_pool_get(struct bgw_svc_rt *svc, const struct sockaddr_storage *addr, socklen_t addrlen,
                              const char *address);

/*
 * A connection for a request of client to pool: an idle one (state ACTIVE), a new one (CONNECTING), or NULL
 * when the service is at its connection bound (the caller queues) or the socket could not be created
 * (*failed set).
 */
struct bgw_upconn *bgw_upstream_acquire(struct bgw_worker *w, struct bgw_svc_rt *svc, struct bgw_pool *pool,
                                        uint32_t connect_timeout_ms, bool fresh, bool *failed);

/* Read what the upstream sent into u->in. Returns 2 when the buffer is full (more may wait), 1 when bytes
 * arrived and the socket is drained for now, 0 when nothing was there, -1 on EOF or error. */
int bgw_upstream_fill(struct bgw_upconn *u);

/* The request is done with u: pool it when reusable, else close it. Then serve a waiting request. */
void bgw_upstream_release(struct bgw_upconn *u, bool reusable);

/* Close u now (its client, if any, must already have let go of it). */
void bgw_upstream_close(struct bgw_upconn *u);

/* Event from epoll for u. */
void bgw_upstream_on_event(struct bgw_upconn *u, uint32_t events);

/* Close idle connections of pools that left the config; drop empty, absent pools and services. */
void bgw_upstream_gc(struct bgw_worker *w);

/* Free the upconns closed during this loop turn. */
void bgw_upstream_reap(struct bgw_worker *w);

#endif
