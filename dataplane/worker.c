/*
 * worker.c - the per-worker event loop (see worker.h): accept on the worker's own SO_REUSEPORT socket,
 * dispatch epoll events to connections, run timers, pick up new snapshots, drain on request.
 */
#include "worker.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "jwt_auth.h"
#include "log.h"
#include "netaddr.h"
#include "proxy.h"
#include "ratelimit_redis.h"
#include "upstream.h"

#define MAX_EVENTS 256

uint64_t bgw_worker_rand(struct bgw_worker *w)
{
    uint64_t s1 = w->rng[0];
    const uint64_t s0 = w->rng[1];
    w->rng[0] = s0;
    s1 ^= s1 << 23;
    w->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return w->rng[1] + s0;
}

int bgw_worker_watch(struct bgw_worker *w, struct bgw_ev *ev)
{
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = ev};
    return epoll_ctl(w->epfd, EPOLL_CTL_ADD, ev->fd, &e);
}

/* ---- the worker's view of a snapshot ---- */

static void wsnap_free(struct bgw_wsnap *ws)
{
    size_t n = ws->snap->cfg->n_services;
    if (ws->pools)
        for (size_t i = 0; i < n; i++) free(ws->pools[i]);
    free(ws->pools);
    free(ws->svc);
    bgw_snapshot_unref(ws->snap);
    free(ws);
}

struct bgw_wsnap *bgw_wsnap_build(struct bgw_worker *w, struct bgw_snapshot *s)
{
    struct bgw_wsnap *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->snap = s;
    ws->users = 1;
    size_t n = s->cfg->n_services;
    ws->svc = calloc(n ? n : 1, sizeof *ws->svc);
    ws->pools = calloc(n ? n : 1, sizeof *ws->pools);
    if (!ws->svc || !ws->pools) goto fail;
    for (struct bgw_svc_rt *rt = w->svcs; rt; rt = rt->next) {
        rt->present = false;
        for (struct bgw_pool *p = rt->pools; p; p = p->next) p->present = false;
    }
    for (size_t i = 0; i < n; i++) {
        const struct bgw_snap_service *ss = &s->services[i];
        struct bgw_svc_rt *rt = bgw_svc_rt_get(w, ss->cfg->name);
        if (!rt) goto fail;
        rt->present = true;
        rt->max_conns = (ss->cfg->max_connections + w->limits.workers - 1) / w->limits.workers;
        ws->svc[i] = rt;
        ws->pools[i] = calloc(ss->n_eps ? ss->n_eps : 1, sizeof **ws->pools);
        if (!ws->pools[i]) goto fail;
        for (uint32_t k = 0; k < ss->n_eps; k++) {
            struct bgw_pool *p = bgw_pool_get(rt, &ss->eps[k].addr, ss->eps[k].addrlen, ss->eps[k].address);
            if (!p) goto fail;
            p->present = true;
            ws->pools[i][k] = p;
        }
    }
    return ws;
fail:
    /* Leave the runtime marked as in use, as it was: nothing is collected on this path. */
    for (struct bgw_svc_rt *rt = w->svcs; rt; rt = rt->next) {
        rt->present = true;
        for (struct bgw_pool *p = rt->pools; p; p = p->next) p->present = true;
    }
    ws->snap = s;
    wsnap_free(ws);
    return NULL;
}

void bgw_wsnap_release(struct bgw_worker *w, struct bgw_wsnap *ws)
{
    (void)w;
    if (--ws->users == 0) wsnap_free(ws);
}

/* Take the newest snapshot if it changed since the last look. */
static void pick_up_snapshot(struct bgw_worker *w)
{
    uint64_t g = bgw_snapshot_generation();
    if (g == w->generation) return;
    struct bgw_snapshot *s = bgw_snapshot_current();
    if (!s) return;
    struct bgw_wsnap *ws = bgw_wsnap_build(w, s);
    if (!ws) {
        bgw_snapshot_unref(s);
        bgw_log_error("worker %u: out of memory taking config %s; keeping the previous one", w->id, s->version);
        return;
    }
    w->generation = s->generation;
    struct bgw_wsnap *old = w->snap;
    w->snap = ws;
    if (old) bgw_wsnap_release(w, old);
    bgw_upstream_gc(w);
}

/* ---- accept ---- */

static void on_accept(struct bgw_worker *w)
{
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int fd = accept4(w->listener.fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE)
                bgw_log_warn("worker %u: out of file descriptors, not accepting for now", w->id);
            return;
        }
        if (w->n_clients >= w->limits.max_connections || w->draining) {
            close(fd);
            continue;
        }
        bgw_proxy_accept(w, fd, &peer);
    }
}

/* ---- the loop ---- */

static void *worker_main(void *arg)
{
    struct bgw_worker *w = arg;
    struct epoll_event evs[MAX_EVENTS];
    bool listening = true;
    for (;;) {
        pick_up_snapshot(w);
        if (!w->draining && __atomic_load_n(&w->drain_requested, __ATOMIC_ACQUIRE)) w->draining = true;
        if (w->draining) {
            if (listening) {
                epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listener.fd, NULL);
                close(w->listener.fd);
                w->listener.fd = -1;
                listening = false;
                for (struct bgw_client *c = w->clients, *next; c; c = next) {
                    next = c->all_next;
                    bgw_proxy_drain(c);
                }
                bgw_proxy_reap(w);
                bgw_upstream_reap(w);
            }
            if (w->n_clients == 0) break;
        }
        w->now_ms = bgw_now_ms();
        int timeout = bgw_timers_wait_ms(&w->timers, w->now_ms);
        int n = epoll_wait(w->epfd, evs, MAX_EVENTS, timeout);
        if (n < 0 && errno != EINTR) {
            bgw_log_error("worker %u: epoll_wait: %s", w->id, strerror(errno));
            break;
        }
        w->now_ms = bgw_now_ms();
        for (int i = 0; i < n; i++) {
            struct bgw_ev *ev = evs[i].data.ptr;
            switch (ev->kind) {
            case BGW_EV_LISTENER:
                on_accept(w);
                break;
            case BGW_EV_WAKE: {
                uint64_t v;
                ssize_t r = read(w->wake.fd, &v, sizeof v);
                (void)r;
                break;
            }
            case BGW_EV_CLIENT:
                bgw_proxy_on_event((struct bgw_client *)ev, evs[i].events);
                break;
            case BGW_EV_UPSTREAM:
                bgw_upstream_on_event((struct bgw_upconn *)ev, evs[i].events);
                break;
            case BGW_EV_REDIS:
                bgw_rlredis_on_event(w, ev, evs[i].events);
                break;
            default:
                break;
            }
        }
        bgw_timers_run(&w->timers, w->now_ms);
        if (w->rlredis) bgw_rlredis_flush(w);
        bgw_proxy_reap(w);
        bgw_upstream_reap(w);
    }
    bgw_jwt_cache_free(w->jwt_cache);
    w->jwt_cache = NULL;
    return NULL;
}

static int open_listener(const char *addr, bool probe, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (bgw_listen_addr("--listen", addr, &ss, &sl, err, errlen) < 0) return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "--listen %s: socket: %s", addr, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (probe) {
        /* SO_REUSEPORT would let us share the port with another process that already listens there;
         * bind once without it first, so a busy address is refused instead. */
        if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
            snprintf(err, errlen, "--listen %s: %s", addr, strerror(errno));
            close(fd);
            return -1;
        }
        close(fd);
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(err, errlen, "--listen %s: socket: %s", addr, strerror(errno));
            return -1;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 4096) < 0) {
        snprintf(err, errlen, "--listen %s: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

struct bgw_worker **bgw_workers_start(unsigned n, const char *listen_addr, const struct bgw_proxy_limits *lim,
                                      char *err, size_t errlen)
{
    struct bgw_worker **ws = calloc(n, sizeof *ws);
    if (!ws) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (unsigned i = 0; i < n; i++) {
        struct bgw_worker *w = calloc(1, sizeof *w);
        if (!w) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        ws[i] = w;
        w->id = i;
        w->limits = *lim;
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->listener.kind = BGW_EV_LISTENER;
        w->listener.fd = open_listener(listen_addr, i == 0, err, errlen);
        if (w->listener.fd < 0) return NULL;
        w->wake.kind = BGW_EV_WAKE;
        w->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        struct epoll_event le = {.events = EPOLLIN | EPOLLET, .data.ptr = &w->listener};
        struct epoll_event we = {.events = EPOLLIN | EPOLLET, .data.ptr = &w->wake};
        if (w->epfd < 0 || w->wake.fd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->listener.fd, &le) < 0 ||
            epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake.fd, &we) < 0) {
            snprintf(err, errlen, "worker %u: %s", i, strerror(errno));
            return NULL;
        }
        bgw_bufpool_init(&w->bufs, 256);   /* at most 4 MiB of spare buffers per worker */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        w->rng[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull + i + 1;
        w->rng[1] = ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 8) ^ (i * 0xbf58476d1ce4e5b9ull) ^ 1;
    }
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&ws[i]->thread, NULL, worker_main, ws[i]) != 0) {
            snprintf(err, errlen, "cannot start worker %u", i);
            return NULL;
        }
    }
    return ws;
}

void bgw_workers_notify(struct bgw_worker **ws, unsigned n)
{
    uint64_t one = 1;
    for (unsigned i = 0; i < n; i++) {
        ssize_t r = write(ws[i]->wake.fd, &one, sizeof one);
        (void)r;
    }
}

void bgw_workers_drain(struct bgw_worker **ws, unsigned n, uint32_t timeout_ms)
{
    for (unsigned i = 0; i < n; i++) __atomic_store_n(&ws[i]->drain_requested, true, __ATOMIC_RELEASE);
    bgw_workers_notify(ws, n);
    struct timespec deadline = bgw_clock_deadline(timeout_ms);
    for (unsigned i = 0; i < n; i++) {
        if (pthread_timedjoin_np(ws[i]->thread, NULL, &deadline) != 0) {
            bgw_log_warn("worker %u did not finish its requests within the drain timeout", i);
        }
    }
}
