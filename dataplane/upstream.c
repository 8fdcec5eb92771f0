/* upstream.c - upstream connections and per-service keep-alive pools (see upstream.h). */
#include "upstream.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "log.h"
#include "proxy.h"

struct bgw_svc_rt *bgw_svc_rt_get(struct bgw_worker *w, const char *name)
{
    for (struct bgw_svc_rt *s = w->svcs; s; s = s->next)
        if (strcmp(s->name, name) == 0) return s;
    struct bgw_svc_rt *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->name = strdup(name);
    if (!s->name) {
        free(s);
        return NULL;
    }
    s->cb = bgw_cb_get(name);
    s->od = bgw_outlier_svc_get(name);
    if (!s->cb || !s->od) {
        free(s->name);
        free(s);
        return NULL;
    }
    s->rr = (uint32_t)bgw_worker_rand(w);
    s->next = w->svcs;
    w->svcs = s;
    return s;
}

struct bgw_pool *bgw_pool_get(struct bgw_svc_rt *svc, const struct sockaddr_storage *addr, socklen_t addrlen,
                              const char *address)
{
    for (struct bgw_pool *p = svc->pools; p; p = p->next)
        if (p->addrlen == addrlen && memcmp(&p->addr, addr, addrlen) == 0) return p;
    struct bgw_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->od = bgw_outlier_ep_get(svc->od, address);
    if (!p->od) {
        free(p);
        return NULL;
    }
    memcpy(&p->addr, addr, addrlen);
    p->addrlen = addrlen;
    snprintf(p->address, sizeof p->address, "%s", address);
    p->next = svc->pools;
    svc->pools = p;
    return p;
}

static void upconn_timeout(struct bgw_timer *t);

static void unlink_idle(struct bgw_upconn *u)
{
    struct bgw_upconn **pp = &u->pool->idle;
    while (*pp && *pp != u) pp = &(*pp)->next;
    if (*pp) {
        *pp = u->next;
        u->pool->n_idle--;
    }
    u->next = NULL;
}

void bgw_upstream_close(struct bgw_upconn *u)
{
    if (u->state == BGW_UP_DEAD) return;
    struct bgw_worker *w = u->w;
    if (u->state == BGW_UP_IDLE) unlink_idle(u);
    bgw_timer_stop(&w->timers, &u->timer);
    if (u->ev.fd >= 0) close(u->ev.fd);     /* close() also removes it from epoll */
    u->ev.fd = -1;
    bgw_iobuf_put(&u->in, &w->bufs);
    u->svc->n_conns--;
    bgw_stats_upstream_conns(&w->stats, u->svc->name, -1);
    u->state = BGW_UP_DEAD;
    u->client = NULL;
    u->next = w->dead_upconns;
    w->dead_upconns = u;
}

void bgw_upstream_reap(struct bgw_worker *w)
{
    while (w->dead_upconns) {
        struct bgw_upconn *u = w->dead_upconns;
        w->dead_upconns = u->next;
        free(u);
    }
}

struct bgw_upconn *bgw_upstream_acquire(struct bgw_worker *w, struct bgw_svc_rt *svc, struct bgw_pool *pool,
                                        uint32_t connect_timeout_ms, bool fresh, bool *failed)
{
    *failed = false;
    while (pool->idle && !fresh) {
        struct bgw_upconn *u = pool->idle;
        pool->idle = u->next;
        pool->n_idle--;
        u->next = NULL;
        bgw_timer_stop(&w->timers, &u->timer);
        u->state = BGW_UP_ACTIVE;
        u->reused = true;
        return u;
    }
    if (svc->n_conns >= svc->max_conns) {
        if (!fresh || !pool->idle) return NULL;
        bgw_upstream_close(pool->idle);   /* make room: a fresh connection was asked for */
    }

    int fd = socket(pool->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *failed = true;
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct bgw_upconn *u = calloc(1, sizeof *u);
    if (!u) {
        close(fd);
        *failed = true;
        return NULL;
    }
    u->ev.kind = BGW_EV_UPSTREAM;
    u->ev.fd = fd;
    u->w = w;
    u->svc = svc;
    u->pool = pool;
    u->timer.cb = upconn_timeout;
    svc->n_conns++;
    bgw_stats_upstream_conns(&w->stats, svc->name, 1);
    bgw_http1_init(&u->codec, true);
    int rc = connect(fd, (const struct sockaddr *)&pool->addr, pool->addrlen);
    if (rc < 0 && errno != EINPROGRESS) {
        u->state = BGW_UP_CONNECTING;
        bgw_upstream_close(u);
        *failed = true;
        return NULL;
    }
    u->state = rc == 0 ? BGW_UP_ACTIVE : BGW_UP_CONNECTING;
    if (bgw_worker_watch(w, &u->ev) < 0) {
        bgw_upstream_close(u);
        *failed = true;
        return NULL;
    }
    if (u->state == BGW_UP_CONNECTING && connect_timeout_ms)
        bgw_timer_set(&w->timers, &u->timer, w->now_ms + connect_timeout_ms);
    return u;
}

void bgw_upstream_release(struct bgw_upconn *u, bool reusable)
{
    struct bgw_worker *w = u->w;
    struct bgw_svc_rt *svc = u->svc;
    u->client = NULL;
    /* n_active counts requests, not connections: the request's end (proxy.c) gives it back. */
    if (!reusable || !u->pool->present || w->draining || bgw_iobuf_len(&u->in) != 0) {
        bgw_upstream_close(u);
        /* A slot freed: a waiting request may open a new connection. */
        if (svc->waiting_head) {
            struct bgw_client *c = svc->waiting_head;
            svc->waiting_head = c->next;
            if (!svc->waiting_head) svc->waiting_tail = NULL;
            c->next = NULL;
            bgw_proxy_dispatch_waiting(c, NULL);
        }
        return;
    }
    bgw_iobuf_put(&u->in, &w->bufs);
    bgw_http1_init(&u->codec, true);
    u->got_response_bytes = false;
    u->head_done = false;
    if (svc->waiting_head) {
        struct bgw_client *c = svc->waiting_head;
        svc->waiting_head = c->next;
        if (!svc->waiting_head) svc->waiting_tail = NULL;
        c->next = NULL;
        u->state = BGW_UP_ACTIVE;
        u->reused = true;
        bgw_proxy_dispatch_waiting(c, u);
        return;
    }
    u->state = BGW_UP_IDLE;
    u->next = u->pool->idle;
    u->pool->idle = u;
    u->pool->n_idle++;
    bgw_timer_set(&w->timers, &u->timer, w->now_ms + w->limits.upstream_idle_timeout_ms);
}

static void upconn_timeout(struct bgw_timer *t)
{
    struct bgw_upconn *u = (struct bgw_upconn *)((char *)t - offsetof(struct bgw_upconn, timer));
    if (u->state == BGW_UP_CONNECTING) {
        struct bgw_client *c = u->client;
        bgw_upstream_close(u);
        if (c) bgw_proxy_upstream_failed(c, BGW_UP_CONNECT_TIMEOUT);
    } else if (u->state == BGW_UP_IDLE) {
        bgw_upstream_close(u);
    }
}

int bgw_upstream_fill(struct bgw_upconn *u)
{
    if (bgw_iobuf_get(&u->in, &u->w->bufs) < 0) return -1;
    if (bgw_iobuf_space(&u->in) == 0) {
        bgw_iobuf_compact(&u->in);
        if (bgw_iobuf_space(&u->in) == 0) return 2;    /* full: the client side drains it, then reads again */
    }
    size_t want = bgw_iobuf_space(&u->in);
    ssize_t n = read(u->ev.fd, u->in.base + u->in.w, want);
    if (n > 0) {
        u->in.w += (uint32_t)n;
        u->got_response_bytes = true;
        return (size_t)n == want ? 2 : 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    return -1;
}

void bgw_upstream_on_event(struct bgw_upconn *u, uint32_t events)
{
    if (u->state == BGW_UP_DEAD) return;
    if (u->state == BGW_UP_IDLE) {
        /* An idle connection has nothing to say: data, EOF or error all end it. */
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) bgw_upstream_close(u);
        return;
    }
    if (u->state == BGW_UP_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(u->ev.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
            struct bgw_client *c = u->client;
            bgw_upstream_close(u);
            if (c) bgw_proxy_upstream_failed(c, BGW_UP_CONNECT_FAILED);
            return;
        }
        bgw_timer_stop(&u->w->timers, &u->timer);
        u->state = BGW_UP_ACTIVE;
        if (u->client) bgw_proxy_upstream_ready(u->client, u);
        return;
    }
    struct bgw_client *c = u->client;
    if (!c) return;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) u->peer_closed = true;
    if (events & EPOLLOUT) {
        bgw_proxy_upstream_writable(c);
        if (u->state != BGW_UP_ACTIVE || u->client != c) return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) bgw_proxy_upstream_readable(c);
}

void bgw_upstream_gc(struct bgw_worker *w)
{
    struct bgw_svc_rt **sp = &w->svcs;
    while (*sp) {
        struct bgw_svc_rt *s = *sp;
        struct bgw_pool **pp = &s->pools;
        while (*pp) {
            struct bgw_pool *p = *pp;
            if (!p->present) {
                while (p->idle) bgw_upstream_close(p->idle);
                if (p->n_active == 0) {
                    /* No request uses it; connections still closing point at it only until reaped,
                     * and they no longer read it. */
                    bool used = false;
                    for (struct bgw_upconn *d = w->dead_upconns; d; d = d->next) used |= d->pool == p;
                    if (!used) {
                        *pp = p->next;
                        free(p);
                        continue;
                    }
                }
            }
            pp = &p->next;
        }
        if (!s->present && !s->pools && s->n_conns == 0 && !s->waiting_head) {
            *sp = s->next;
            free(s->name);
            free(s);
            continue;
        }
        sp = &s->next;
    }
}
