/*
 * worker.h - one share-nothing worker: an epoll loop on its own thread with its own SO_REUSEPORT
 * listener, timers, buffer pool, upstream pools and stats. Nothing here is shared with other workers
 * except the published config snapshot (taken by reference) and the stats tables (read by the scraper).
 */
#ifndef BGW_WORKER_H
#define BGW_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "http1.h"
#include "snapshot.h"
#include "stats.h"
#include "timer.h"

/* What an epoll event points at: every pollable object starts with this. */
enum bgw_ev_kind { BGW_EV_LISTENER = 1, BGW_EV_WAKE, BGW_EV_CLIENT, BGW_EV_UPSTREAM, BGW_EV_REDIS };
struct bgw_ev {
    uint8_t kind;
    int fd;
};

struct bgw_proxy_limits {
    uint32_t header_timeout_ms;
    uint32_t idle_timeout_ms;
    uint32_t upstream_idle_timeout_ms;
    uint32_t max_connections;         /* per worker */
    uint32_t workers;                 /* how many workers share a service's max_connections */
};

struct bgw_wsnap;
struct bgw_client;
struct bgw_upconn;
struct bgw_svc_rt;
struct bgw_rlredis;
struct bgw_jwt_cache;

struct bgw_worker {
    unsigned id;
    pthread_t thread;
    int epfd;
    struct bgw_ev listener;
    struct bgw_ev wake;               /* eventfd: a new snapshot, or drain */
    struct bgw_timers timers;
    struct bgw_bufpool bufs;
    struct bgw_proxy_limits limits;
    uint64_t now_ms;                  /* cached at each loop turn */
    uint64_t rng[2];                  /* xorshift128+ state */
    uint64_t generation;              /* of the snapshot in use */
    struct bgw_wsnap *snap;           /* the worker's view of the current snapshot (NULL before one) */
    struct bgw_svc_rt *svcs;          /* per-service runtime state, carried across snapshots by name */
    uint32_t n_clients;
    struct bgw_client *clients;       /* every open client connection */
    bool draining;                    /* the worker's own copy, read on the request path */
    bool drain_requested;             /* set by the main thread */
    /* objects closed during this loop turn, freed at its end */
    struct bgw_client *dead_clients;
    struct bgw_upconn *dead_upconns;
    struct bgw_rlredis *rlredis;      /* the worker's Redis connection for global rate limits (lazy) */
    /* scratch for the synchronous part of request handling */
    struct bgw_http_head head;
    char path[BGW_HTTP_MAX_REQUEST_HEAD + 1];          /* the normalised path */
    char rewritten[2 * BGW_HTTP_MAX_REQUEST_HEAD];     /* the path after rewrite_prefix */
    struct bgw_stats stats;
    struct bgw_jwt_cache *jwt_cache;  /* verified tokens (jwt_auth.h), created on first use */
};

/* Random 64 bits from the worker's generator. */
uint64_t bgw_worker_rand(struct bgw_worker *w);

/*
 * Create n workers listening on listen_addr with SO_REUSEPORT (bound before this returns, so a bad or
 * busy address is reported here). Returns an array of n started workers, or NULL with err filled.
 */
struct bgw_worker **bgw_workers_start(unsigned n, const char *listen_addr, const struct bgw_proxy_limits *lim,
                                      char *err, size_t errlen);
/* Wake every worker to pick up a newly published snapshot. */
void bgw_workers_notify(struct bgw_worker **ws, unsigned n);
/* Stop accepting, finish in-flight requests; waits at most timeout_ms for the workers to end. */
void bgw_workers_drain(struct bgw_worker **ws, unsigned n, uint32_t timeout_ms);

/* epoll registration shared by the connection modules (edge-triggered, in + out). */
int bgw_worker_watch(struct bgw_worker *w, struct bgw_ev *ev);

#endif
