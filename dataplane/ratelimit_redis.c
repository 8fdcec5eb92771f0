/*
 * ratelimit_redis.c - global rate limits through Redis (see ratelimit_redis.h).
 *
 * One asynchronous hiredis connection per worker, driven by the worker's own epoll loop through a small
 * adapter (level-triggered, read/write interest as hiredis asks). A request that needs a global decision
 * sends EVALSHA and waits (the client connection parks; nothing blocks); the answer, a lost connection or
 * the per-request deadline resumes it. Connecting is lazy: the first global request connects, and after a
 * failure the next attempt waits a backoff (100 ms doubling to 5 s) during which requests fail open at once.
 */
#include "ratelimit_redis.h"

#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "log.h"
#include "timer.h"
#include "worker.h"

#define ANSWER_TIMEOUT_MS 250     /* a later answer is not waited for: fail open */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define LOG_EVERY_MS 10000
#define MAX_KEY 200               /* longer keys go to Redis as a hash */

const char bgw_rlredis_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local T = tonumber(ARGV[1])\n"
    "local tau = T * tonumber(ARGV[2])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1])) or now\n"
    "if tat < now then tat = now end\n"
    "local nxt = tat + T\n"
    "if nxt - now > tau then\n"
    "  return {0, 0, math.ceil(tat - now), math.ceil(nxt - now - tau)}\n"
    "end\n"
    "redis.call('SET', KEYS[1], string.format('%.3f', nxt), 'PX', math.floor((nxt - now) / 1000) + 1)\n"
    "return {1, math.floor((tau - (nxt - now)) / T), math.ceil(nxt - now), 0}\n";

static char g_host[256];
static int g_port;
static bool g_enabled;
static _Atomic uint64_t g_errors;
static _Atomic uint64_t g_last_log_ms;
static char g_sha[41];            /* the script's SHA1 once Redis told it (written by workers, same value) */
static _Atomic int g_sha_known;

struct bgw_rlredis {
    struct bgw_ev ev;             /* first: epoll data points here */
    struct bgw_worker *w;
    redisAsyncContext *ac;        /* NULL when disconnected */
    bool connected;
    bool in_epoll, rd, wr;
    uint32_t mask;
    uint64_t next_try_ms;
    uint32_t backoff_ms;
};

struct bgw_rl_wait {
    struct bgw_timer timer;       /* first */
    struct bgw_worker *w;
    bgw_rl_done_fn done;
    void *owner;                  /* NULL once answered, timed out or cancelled */
    uint64_t burst;
};

int bgw_rlredis_configure(const char *hostport, char *err, size_t errlen)
{
    uint16_t port;
    if (bgw_parse_hostport(hostport, g_host, sizeof g_host, &port) < 0 || port == 0) {
        snprintf(err, errlen, "--redis: \"%s\" is not HOST:PORT", hostport);
        return -1;
    }
    g_port = port;
    g_enabled = true;
    return 0;
}

bool bgw_rlredis_enabled(void)
{
    return g_enabled;
}

uint64_t bgw_rlredis_errors(void)
{
    return atomic_load_explicit(&g_errors, memory_order_relaxed);
}

/* Count one decision made without Redis; log at most once every LOG_EVERY_MS per process. */
static void redis_error(struct bgw_worker *w, const char *what)
{
    atomic_fetch_add_explicit(&g_errors, 1, memory_order_relaxed);
    uint64_t last = atomic_load_explicit(&g_last_log_ms, memory_order_relaxed);
    if (last && w->now_ms < last + LOG_EVERY_MS) return;
    if (!atomic_compare_exchange_strong(&g_last_log_ms, &last, w->now_ms ? w->now_ms : 1)) return;
    bgw_log_warn("redis %s:%d: %s; global rate limits fail open (admitting) until it answers (%llu errors so far)",
                 g_host, g_port, what, (unsigned long long)atomic_load(&g_errors));
}

/* ---- the epoll adapter ---- */

static void ev_apply(struct bgw_rlredis *r)
{
    if (!r->ac) return;
    uint32_t mask = (r->rd ? EPOLLIN : 0) | (r->wr ? EPOLLOUT : 0);
    if (r->in_epoll && mask == r->mask) return;
    struct epoll_event e = {.events = mask, .data.ptr = &r->ev};
    r->ev.fd = r->ac->c.fd;
    if (!r->in_epoll) {
        if (epoll_ctl(r->w->epfd, EPOLL_CTL_ADD, r->ev.fd, &e) == 0) r->in_epoll = true;
    } else {
        epoll_ctl(r->w->epfd, EPOLL_CTL_MOD, r->ev.fd, &e);
    }
    r->mask = mask;
}

static void ad_add_read(void *p) { struct bgw_rlredis *r = p; r->rd = true; ev_apply(r); }
static void ad_del_read(void *p) { struct bgw_rlredis *r = p; r->rd = false; ev_apply(r); }
static void ad_add_write(void *p) { struct bgw_rlredis *r = p; r->wr = true; ev_apply(r); }
static void ad_del_write(void *p) { struct bgw_rlredis *r = p; r->wr = false; ev_apply(r); }

static void ad_cleanup(void *p)
{
    struct bgw_rlredis *r = p;
    if (r->in_epoll && r->ev.fd >= 0) epoll_ctl(r->w->epfd, EPOLL_CTL_DEL, r->ev.fd, NULL);
    r->in_epoll = r->rd = r->wr = false;
    r->mask = 0;
    r->ev.fd = -1;
}

void bgw_rlredis_on_event(struct bgw_worker *w, struct bgw_ev *ev, uint32_t events)
{
    (void)w;
    struct bgw_rlredis *r = (struct bgw_rlredis *)ev;
    if (r->ac && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) redisAsyncHandleRead(r->ac);
    if (r->ac && (events & EPOLLOUT)) redisAsyncHandleWrite(r->ac);
}

/* ---- connection ---- */

static void backoff(struct bgw_rlredis *r)
{
    r->next_try_ms = r->w->now_ms + r->backoff_ms;
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct bgw_rlredis *r = ac->data;
    if (status != REDIS_OK) {
        r->ac = NULL;           /* hiredis frees the context after this */
        r->connected = false;
        redis_error(r->w, ac->errstr[0] ? ac->errstr : "cannot connect");
        backoff(r);
        return;
    }
    r->connected = true;
    r->backoff_ms = BACKOFF_MIN_MS;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct bgw_rlredis *r = ac->data;
    r->ac = NULL;
    r->connected = false;
    if (status != REDIS_OK) {
        redis_error(r->w, ac->errstr[0] ? ac->errstr : "connection lost");
        backoff(r);
    }
}

static void on_script_loaded(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    (void)privdata;
    redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_STRING && rep->len == 40 && !atomic_load(&g_sha_known)) {
        memcpy(g_sha, rep->str, 40);
        g_sha[40] = 0;
        atomic_store(&g_sha_known, 1);
    }
}

static void redis_connect(struct bgw_rlredis *r)
{
    redisAsyncContext *ac = redisAsyncConnect(g_host, g_port);
    if (!ac) {
        redis_error(r->w, "out of memory");
        backoff(r);
        return;
    }
    if (ac->err) {
        redis_error(r->w, ac->errstr);
        redisAsyncFree(ac);
        backoff(r);
        return;
    }
    r->ac = ac;
    ac->data = r;
    ac->ev.data = r;
    ac->ev.addRead = ad_add_read;
    ac->ev.delRead = ad_del_read;
    ac->ev.addWrite = ad_add_write;
    ac->ev.delWrite = ad_del_write;
    ac->ev.cleanup = ad_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ev.fd = ac->c.fd;
    /* Connecting: wait for writability (hiredis asks through addWrite on the first command). */
    ad_add_write(r);
    if (!atomic_load(&g_sha_known))
        redisAsyncCommand(ac, on_script_loaded, NULL, "SCRIPT LOAD %s", bgw_rlredis_script);
}

static struct bgw_rlredis *worker_redis(struct bgw_worker *w)
{
    if (w->rlredis) return w->rlredis;
    struct bgw_rlredis *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->ev.kind = BGW_EV_REDIS;
    r->ev.fd = -1;
    r->w = w;
    r->backoff_ms = BACKOFF_MIN_MS;
    w->rlredis = r;
    return r;
}

/* ---- decisions ---- */

static void fail_open(const struct bgw_rl_wait *x, struct bgw_rl_result *res)
{
    memset(res, 0, sizeof *res);
    res->allowed = true;
    res->limit = x ? x->burst : 0;
    res->remaining = res->limit;
}

static void finish(struct bgw_rl_wait *x, const struct bgw_rl_result *res)
{
    void *owner = x->owner;
    x->owner = NULL;
    bgw_timer_stop(&x->w->timers, &x->timer);
    if (owner) x->done(owner, res->allowed ? BGW_RL_CONTINUE : BGW_RL_REJECT, res);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct bgw_rl_wait *x = privdata;
    redisReply *rep = reply;
    struct bgw_rl_result res;
    if (x->owner) {
        if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 4) {
            res.allowed = rep->element[0]->integer == 1;
            res.limit = x->burst;
            res.remaining = (uint64_t)(rep->element[1]->integer > 0 ? rep->element[1]->integer : 0);
            res.reset_ns = (uint64_t)(rep->element[2]->integer > 0 ? rep->element[2]->integer : 0) * 1000u;
            res.retry_ns = (uint64_t)(rep->element[3]->integer > 0 ? rep->element[3]->integer : 0) * 1000u;
        } else {
            if (rep && rep->type == REDIS_REPLY_ERROR && strstr(rep->str, "NOSCRIPT"))
                atomic_store(&g_sha_known, 0);
            redis_error(x->w, rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "connection lost");
            fail_open(x, &res);
        }
        finish(x, &res);
    }
    free(x);
}

static void on_timeout(struct bgw_timer *t)
{
    struct bgw_rl_wait *x = (struct bgw_rl_wait *)t;
    if (!x->owner) return;
    struct bgw_rl_result res;
    fail_open(x, &res);
    redis_error(x->w, "no answer in time");
    finish(x, &res);      /* the reply, if it ever comes, only frees x */
}

int bgw_rlredis_take(struct bgw_worker *w, const struct bgw_rl_limit *l, const char *key, size_t klen,
                     bgw_rl_done_fn done, void *owner, struct bgw_rl_wait **wait, struct bgw_rl_result *res)
{
    struct bgw_rlredis *r = worker_redis(w);
    if (r && !r->ac && w->now_ms >= r->next_try_ms) redis_connect(r);
    struct bgw_rl_wait *x = r && r->ac ? calloc(1, sizeof *x) : NULL;
    if (!x) {
        struct bgw_rl_wait tmp = {.burst = l->burst};
        fail_open(&tmp, res);
        redis_error(w, r && r->ac ? "out of memory" : "not connected");
        return 0;
    }
    x->w = w;
    x->done = done;
    x->owner = owner;
    x->burst = l->burst;
    x->timer.cb = on_timeout;
    char hexkey[17];
    if (klen > MAX_KEY) {
        snprintf(hexkey, sizeof hexkey, "%016llx", (unsigned long long)bgw_rl_hash(l->name_hash, key, klen));
        key = hexkey;
        klen = 16;
    }
    char interval[32], burst[24];
    snprintf(interval, sizeof interval, "%.3f", (double)l->interval_ns / 1000.0);
    snprintf(burst, sizeof burst, "%llu", (unsigned long long)l->burst);
    const char *name = l->cfg->name;
    int rc;
    if (atomic_load(&g_sha_known))
        rc = redisAsyncCommand(r->ac, on_reply, x, "EVALSHA %s 1 bgw:rl:%s:%b %s %s", g_sha, name, key, klen,
                               interval, burst);
    else
        rc = redisAsyncCommand(r->ac, on_reply, x, "EVAL %s 1 bgw:rl:%s:%b %s %s", bgw_rlredis_script, name,
                               key, klen, interval, burst);
    if (rc != REDIS_OK) {
        free(x);
        struct bgw_rl_wait tmp = {.burst = l->burst};
        fail_open(&tmp, res);
        redis_error(w, "cannot send");
        return 0;
    }
    bgw_timer_set(&w->timers, &x->timer, w->now_ms + ANSWER_TIMEOUT_MS);
    *wait = x;
    return 1;
}

void bgw_rl_wait_cancel(struct bgw_rl_wait *wait)
{
    if (!wait || !wait->owner) return;
    wait->owner = NULL;
    bgw_timer_stop(&wait->w->timers, &wait->timer);
}
