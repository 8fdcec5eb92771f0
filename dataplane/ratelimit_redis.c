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
#define MAX_BATCHES 64            /* distinct limit+key pairs gathered per loop turn before sending */

#define KNOWN_SLOTS 1024          /* keys whose last answer a worker remembers */
#define KNOWN_FRESH_MS 1000       /* how long an answer may be used to admit ahead of Redis */
#define EARLY_FLUSH_MS 20         /* requests admitted ahead are sent to Redis within this time */
#define EARLY_SHARE 16            /* a worker admits ahead at most 1/16 of the tokens Redis said were left */

struct rl_batch;

/* What Redis last said about a key, for admitting ahead of its answer while far from the limit. */
struct rl_known {
    uint64_t hash;
    uint64_t remaining;           /* tokens left after that answer */
    uint64_t unconfirmed;         /* admitted ahead since, not yet answered */
    uint64_t updated_ms;
};

const char bgw_rlredis_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local T = tonumber(ARGV[1])\n"
    "local tau = T * tonumber(ARGV[2])\n"
    "local n = tonumber(ARGV[3])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1])) or now\n"
    "if tat < now then tat = now end\n"
    "local k = math.floor((tau - (tat - now)) / T + 1e-9)\n"
    "if k > n then k = n end\n"
    "if k < 0 then k = 0 end\n"
    "local nxt = tat + k * T\n"
    "if k > 0 then\n"
    "  redis.call('SET', KEYS[1], string.format('%.3f', nxt), 'PX', math.floor((nxt - now) / 1000) + 1)\n"
    "end\n"
    "local retry = 0\n"
    "if k < n then retry = math.ceil(nxt + T - now - tau) end\n"
    "return {k, math.floor((tau - (nxt - now)) / T + 1e-9), math.ceil(nxt - now), retry}\n";

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
    struct rl_batch *open[MAX_BATCHES];   /* this loop turn's checks, one per limit and key */
    uint32_t n_open;
    struct rl_known known[KNOWN_SLOTS];   /* the last answer per key (direct-mapped by key hash) */
    struct bgw_timer flush_timer;         /* wakes the loop to send batches kept open */
};

struct bgw_rl_wait {
    struct bgw_timer timer;       /* first */
    struct bgw_worker *w;
    bgw_rl_done_fn done;
    void *owner;                  /* NULL once answered, timed out or cancelled */
    uint64_t burst;
    struct bgw_rl_wait *next;     /* in its batch, in arrival order */
};

/* The requests of one loop turn for one limit and key: one script call takes tokens for all of them. */
struct rl_batch {
    uint64_t interval_ns, burst;  /* the limit's numbers (of the newest request) */
    uint64_t created_ms;
    uint64_t hash;
    uint32_t n;                   /* requests waiting for the answer */
    uint32_t n_early;             /* requests already admitted (far from the limit) */
    struct bgw_rlredis *r;
    struct bgw_rl_wait *head, *tail;
    char name[160];               /* bgw:rl:<limit>: copied, for the reply's life */
    size_t klen;
    char key[MAX_KEY + 1];
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

static void flush_timer_cb(struct bgw_timer *t)
{
    (void)t;      /* only wakes the loop: batches are sent at the end of the turn */
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
    r->flush_timer.cb = flush_timer_cb;
    w->rlredis = r;
    return r;
}

/* ---- decisions ---- */

static void fail_open(uint64_t burst, struct bgw_rl_result *res)
{
    memset(res, 0, sizeof *res);
    res->allowed = true;
    res->limit = burst;
    res->remaining = burst;
}

static void finish(struct bgw_rl_wait *x, const struct bgw_rl_result *res)
{
    void *owner = x->owner;
    x->owner = NULL;
    bgw_timer_stop(&x->w->timers, &x->timer);
    if (owner) x->done(owner, res->allowed ? BGW_RL_CONTINUE : BGW_RL_REJECT, res);
}

/* Answer every request of a batch: the first `admitted` get a token, the others 429 (or all fail open
 * when rep is not a valid answer); then free the batch. */
static void batch_answer(struct rl_batch *b, redisReply *rep)
{
    bool ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 4;
    for (size_t i = 0; ok && i < 4; i++) ok = rep->element[i]->type == REDIS_REPLY_INTEGER;
    if (!ok) {
        const char *what = rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "connection lost";
        if (rep && rep->type == REDIS_REPLY_ERROR && strstr(rep->str, "NOSCRIPT")) atomic_store(&g_sha_known, 0);
        for (struct bgw_rl_wait *x = b->head; x; x = x->next)
            if (x->owner) redis_error(x->w, what);
        for (uint32_t i = 0; i < b->n_early; i++) redis_error(b->r->w, what);   /* admitted without Redis */
    }
    long long admitted = ok ? rep->element[0]->integer : 0;
    long long remaining = ok && rep->element[1]->integer > 0 ? rep->element[1]->integer : 0;
    struct rl_known *e = &b->r->known[b->hash & (KNOWN_SLOTS - 1)];
    if (e->hash == b->hash) e->unconfirmed = e->unconfirmed > b->n_early ? e->unconfirmed - b->n_early : 0;
    else if (ok) *e = (struct rl_known){.hash = b->hash};
    if (ok) {
        e->remaining = (uint64_t)remaining;
        e->updated_ms = b->r->w->now_ms;
    } else if (e->hash == b->hash) {
        e->updated_ms = 0;        /* no admitting ahead until Redis answers again */
    }
    admitted -= b->n_early;       /* the early ones had theirs */
    uint64_t reset = ok && rep->element[2]->integer > 0 ? (uint64_t)rep->element[2]->integer * 1000u : 0;
    uint64_t retry = ok && rep->element[3]->integer > 0 ? (uint64_t)rep->element[3]->integer * 1000u : 0;
    long long i = 0;
    for (struct bgw_rl_wait *x = b->head, *next; x; x = next, i++) {
        next = x->next;
        struct bgw_rl_result res;
        if (!ok) {
            fail_open(x->burst, &res);
        } else {
            res.limit = x->burst;
            res.allowed = i < admitted;
            res.remaining = res.allowed ? (uint64_t)(remaining + (admitted - 1 - i)) : 0;
            res.reset_ns = reset;
            res.retry_ns = res.allowed ? 0 : retry;
        }
        if (x->owner) finish(x, &res);
        free(x);
    }
    free(b);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    batch_answer(privdata, reply);
}

static void on_timeout(struct bgw_timer *t)
{
    struct bgw_rl_wait *x = (struct bgw_rl_wait *)t;
    if (!x->owner) return;
    struct bgw_rl_result res;
    fail_open(x->burst, &res);
    redis_error(x->w, "no answer in time");
    finish(x, &res);      /* the batch's answer, if it ever comes, only frees x */
}

/* Send the open batches: all of them (force), or those with a waiting request or older than
 * EARLY_FLUSH_MS (requests admitted ahead are debited in Redis at most that much later). */
static void flush(struct bgw_worker *w, bool force)
{
    struct bgw_rlredis *r = w->rlredis;
    if (!r || r->n_open == 0) return;
    /* An answer given at once (fail open) may resume a request that starts a new batch: work on a copy. */
    struct rl_batch *batch[MAX_BATCHES];
    uint32_t n = 0, keep = 0;
    for (uint32_t i = 0; i < r->n_open; i++) {
        struct rl_batch *b = r->open[i];
        if (!force && b->n == 0 && r->ac && w->now_ms < b->created_ms + EARLY_FLUSH_MS) r->open[keep++] = b;
        else batch[n++] = b;
    }
    r->n_open = keep;
    if (keep && !r->flush_timer.idx) bgw_timer_set(&w->timers, &r->flush_timer, w->now_ms + EARLY_FLUSH_MS);
    for (uint32_t i = 0; i < n; i++) {
        struct rl_batch *b = batch[i];
        int rc = REDIS_ERR;
        if (r->ac) {
            char interval[32], burst[24], want[16];
            snprintf(interval, sizeof interval, "%.3f", (double)b->interval_ns / 1000.0);
            snprintf(burst, sizeof burst, "%llu", (unsigned long long)b->burst);
            snprintf(want, sizeof want, "%u", b->n + b->n_early);
            if (atomic_load(&g_sha_known))
                rc = redisAsyncCommand(r->ac, on_reply, b, "EVALSHA %s 1 %s%b %s %s %s", g_sha, b->name, b->key,
                                       b->klen, interval, burst, want);
            else
                rc = redisAsyncCommand(r->ac, on_reply, b, "EVAL %s 1 %s%b %s %s %s", bgw_rlredis_script, b->name,
                                       b->key, b->klen, interval, burst, want);
        }
        if (rc != REDIS_OK) batch_answer(b, NULL);   /* fail open at once */
    }
    /* Out now, not after another epoll turn; a forced flush may run inside a hiredis callback: it leaves the
     * writing to the loop. */
    if (n && !force && r->ac && r->connected) redisAsyncHandleWrite(r->ac);
}

void bgw_rlredis_flush(struct bgw_worker *w)
{
    flush(w, false);
}

int bgw_rlredis_take(struct bgw_worker *w, const struct bgw_rl_limit *l, const char *key, size_t klen,
                     bgw_rl_done_fn done, void *owner, struct bgw_rl_wait **wait, struct bgw_rl_result *res)
{
    struct bgw_rlredis *r = worker_redis(w);
    if (r && !r->ac && w->now_ms >= r->next_try_ms) redis_connect(r);
    if (!r || !r->ac) {
        fail_open(l->burst, res);
        redis_error(w, r ? "not connected" : "out of memory");
        return 0;
    }
    char hexkey[17];
    if (klen > MAX_KEY) {
        snprintf(hexkey, sizeof hexkey, "%016llx", (unsigned long long)bgw_rl_hash(l->name_hash, key, klen));
        key = hexkey;
        klen = 16;
    }
    uint64_t hash = bgw_rl_hash(l->name_hash, key, klen);
    /* Far from the limit (a small share of the tokens Redis said were left, recently): admit now, and take
     * the token in this turn's script call all the same. */
    struct rl_known *e = &r->known[hash & (KNOWN_SLOTS - 1)];
    bool early = e->hash == hash && w->now_ms < e->updated_ms + KNOWN_FRESH_MS &&
                 e->unconfirmed < e->remaining / EARLY_SHARE;
    struct rl_batch *b = NULL;
    for (uint32_t i = 0; i < r->n_open && !b; i++)
        if (r->open[i]->hash == hash && r->open[i]->klen == klen &&
            memcmp(r->open[i]->key, key, klen) == 0)
            b = r->open[i];
    if (!b && r->n_open == MAX_BATCHES) flush(w, true);
    struct bgw_rl_wait *x = early ? NULL : calloc(1, sizeof *x);
    if (!b && (x || early) && r->ac) {
        b = calloc(1, sizeof *b);
        if (b) {
            b->r = r;
            b->created_ms = w->now_ms;
            b->hash = hash;
            b->klen = klen;
            memcpy(b->key, key, klen);
            snprintf(b->name, sizeof b->name, "bgw:rl:%s:", l->cfg->name);
            r->open[r->n_open++] = b;
        }
    }
    if (b) {
        b->interval_ns = l->interval_ns;
        b->burst = l->burst;
    }
    if (early && b) {
        b->n_early++;
        e->unconfirmed++;
        memset(res, 0, sizeof *res);
        res->allowed = true;
        res->limit = l->burst;
        res->remaining = e->remaining - e->unconfirmed;
        return 0;
    }
    if (!x || !b) {
        free(x);
        fail_open(l->burst, res);
        redis_error(w, "out of memory");
        return 0;
    }
    x->w = w;
    x->done = done;
    x->owner = owner;
    x->burst = l->burst;
    x->timer.cb = on_timeout;
    if (b->tail) b->tail->next = x;
    else b->head = x;
    b->tail = x;
    b->n++;
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
