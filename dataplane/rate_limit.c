/*
 * rate_limit.c - token buckets shared by the workers of a proxy, compiled rate limits, keys, headers
 * (see rate_limit.h; the Redis side of global limits is ratelimit_redis.c).
 *
 * A token bucket that refills one token every T and holds at most B tokens is kept as GCRA: the
 * theoretical arrival time TAT of the next request. A request at `now` is admitted when
 * max(TAT, now) + T - now <= B*T, and then TAT becomes max(TAT, now) + T. The bucket is full when
 * TAT <= now. One 64-bit word per key, updated with compare-and-swap: no locks between workers.
 */
#include "rate_limit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ratelimit_redis.h"
#include "timer.h"

#define PROBE 8                     /* slots looked at from a key's home slot */

/* ---- clock ---- */

static _Atomic(bgw_rl_clock_fn) g_clock;

void bgw_rl_set_clock(bgw_rl_clock_fn fn)
{
    atomic_store(&g_clock, fn);
}

uint64_t bgw_rl_now_ns(void)
{
    bgw_rl_clock_fn fn = atomic_load_explicit(&g_clock, memory_order_relaxed);
    return fn ? fn() : bgw_now_ns();
}

/* ---- bucket tables ---- */

struct bgw_rl_slot {
    _Atomic uint64_t key;           /* key hash; 0: free */
    _Atomic uint64_t tat;           /* theoretical arrival time, ns; <= now: full bucket */
};

struct bgw_rl_table {
    char *name;
    int refs;                       /* snapshots' sets using it (under g_lock) */
    uint32_t mask;
    uint64_t interval_ns;           /* of the last set built on it (under g_lock); 0: none yet */
    struct bgw_rl_slot *slots;
    struct bgw_rl_table *next;      /* registry */
};

struct bgw_rl_table *bgw_rl_table_new(const char *name, uint32_t slots)
{
    struct bgw_rl_table *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->name = strdup(name);
    t->slots = calloc(slots, sizeof *t->slots);
    if (!t->name || !t->slots) {
        bgw_rl_table_free(t);
        return NULL;
    }
    t->mask = slots - 1;
    return t;
}

void bgw_rl_table_free(struct bgw_rl_table *t)
{
    if (!t) return;
    free(t->name);
    free(t->slots);
    free(t);
}

/* The slot of key: found, or claimed from a free, full or soonest-full bucket near its home. */
static struct bgw_rl_slot *table_slot(struct bgw_rl_table *t, uint64_t key, uint64_t now)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        struct bgw_rl_slot *victim = NULL;
        uint64_t victim_key = 0, victim_tat = UINT64_MAX;
        for (uint32_t i = 0; i < PROBE; i++) {
            struct bgw_rl_slot *s = &t->slots[(key + i) & t->mask];
            uint64_t k = atomic_load_explicit(&s->key, memory_order_acquire);
            if (k == key) return s;
            if (k == 0) {
                /* Keys are only ever placed in the first free slot of their probe, so a free slot ends
                 * the search. */
                victim = s;
                victim_key = 0;
                break;
            }
            uint64_t tat = atomic_load_explicit(&s->tat, memory_order_relaxed);
            uint64_t rank = tat <= now ? 0 : tat;     /* a full bucket is as good as a new one */
            if (rank < victim_tat) {
                victim = s;
                victim_key = k;
                victim_tat = rank;
            }
        }
        if (atomic_compare_exchange_strong_explicit(&victim->key, &victim_key, key, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            atomic_store_explicit(&victim->tat, 0, memory_order_release);   /* a new bucket: full */
            return victim;
        }
        if (victim_key == key) return victim;        /* another worker placed the same key there */
    }
    return NULL;
}

void bgw_rl_table_take(struct bgw_rl_table *t, uint64_t key_hash, uint64_t interval_ns, uint64_t burst,
                       uint64_t now, struct bgw_rl_result *res)
{
    uint64_t T = interval_ns ? interval_ns : 1;
    uint64_t tau = burst * T;
    res->limit = burst;
    struct bgw_rl_slot *s = table_slot(t, key_hash, now);
    if (!s) {                 /* lost every race for a slot: admit, as a new bucket would */
        res->allowed = burst > 0;
        res->remaining = burst ? burst - 1 : 0;
        res->reset_ns = res->allowed ? T : 0;
        res->retry_ns = res->allowed ? 0 : T;
        return;
    }
    uint64_t tat = atomic_load_explicit(&s->tat, memory_order_relaxed);
    for (;;) {
        uint64_t base = tat > now ? tat : now;
        uint64_t next = base + T;
        if (next - now > tau) {
            res->allowed = false;
            res->remaining = 0;
            res->reset_ns = tat > now ? tat - now : 0;
            res->retry_ns = next - now - tau;
            return;
        }
        if (atomic_compare_exchange_weak_explicit(&s->tat, &tat, next, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            res->allowed = true;
            res->remaining = (tau - (next - now)) / T;
            res->reset_ns = next - now;
            res->retry_ns = 0;
            return;
        }
    }
}

/* ---- the registry of tables by limit name ---- */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bgw_rl_table *g_tables;

static struct bgw_rl_table *table_acquire(const char *name, uint32_t slots)
{
    pthread_mutex_lock(&g_lock);
    struct bgw_rl_table *t = g_tables;
    while (t && strcmp(t->name, name) != 0) t = t->next;
    if (!t) {
        t = bgw_rl_table_new(name, slots);
        if (t) {
            t->next = g_tables;
            g_tables = t;
        }
    }
    if (t) t->refs++;
    pthread_mutex_unlock(&g_lock);
    return t;
}

/* A limit's rate changed: keep each bucket's missing tokens, now refilled at the new interval. */
static void table_rescale(struct bgw_rl_table *t, uint64_t interval_ns, uint64_t now)
{
    pthread_mutex_lock(&g_lock);
    uint64_t old = t->interval_ns;
    t->interval_ns = interval_ns;
    pthread_mutex_unlock(&g_lock);
    if (old == 0 || old == interval_ns) return;
    for (uint32_t i = 0; i <= t->mask; i++) {
        struct bgw_rl_slot *s = &t->slots[i];
        if (atomic_load_explicit(&s->key, memory_order_relaxed) == 0) continue;
        uint64_t tat = atomic_load_explicit(&s->tat, memory_order_relaxed);
        while (tat > now) {
            uint64_t scaled = now + (uint64_t)((unsigned __int128)(tat - now) * interval_ns / old);
            if (atomic_compare_exchange_weak_explicit(&s->tat, &tat, scaled, memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        }
    }
}

static void table_release(struct bgw_rl_table *t)
{
    if (!t) return;
    pthread_mutex_lock(&g_lock);
    if (--t->refs == 0) {
        struct bgw_rl_table **pp = &g_tables;
        while (*pp != t) pp = &(*pp)->next;
        *pp = t->next;
        bgw_rl_table_free(t);
    }
    pthread_mutex_unlock(&g_lock);
}

/* ---- compiled limits ---- */

static uint64_t per_ns(enum bgw_rl_per per)
{
    switch (per) {
    case BGW_RL_MINUTE: return 60ull * 1000000000ull;
    case BGW_RL_HOUR: return 3600ull * 1000000000ull;
    default: return 1000000000ull;
    }
}

struct bgw_rl_set *bgw_rl_set_build(const struct bgw_config *cfg, char *err, size_t errlen)
{
    struct bgw_rl_set *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->limits = calloc(cfg->n_rate_limits ? cfg->n_rate_limits : 1, sizeof *s->limits);
    s->route_limit = calloc(cfg->n_routes ? cfg->n_routes : 1, sizeof *s->route_limit);
    if (!s->limits || !s->route_limit) goto oom;
    for (size_t i = 0; i < cfg->n_rate_limits; i++) {
        const struct bgw_rate_limit *rl = &cfg->rate_limits[i];
        struct bgw_rl_limit *l = &s->limits[i];
        l->cfg = rl;
        uint64_t requests = rl->requests ? rl->requests : 1;
        l->interval_ns = per_ns(rl->per) / requests;
        if (l->interval_ns == 0) l->interval_ns = 1;
        l->burst = rl->burst;
        l->name_hash = bgw_rl_hash(0x9e3779b97f4a7c15ull, rl->name, strlen(rl->name));
        l->table = table_acquire(rl->name, rl->key_kind == BGW_RL_KEY_ROUTE ? BGW_RL_TABLE_SLOTS_ROUTE
                                                                             : BGW_RL_TABLE_SLOTS);
        if (!l->table) goto oom;
        table_rescale(l->table, l->interval_ns, bgw_rl_now_ns());
        s->n_limits = i + 1;
    }
    for (size_t r = 0; r < cfg->n_routes; r++) {
        s->route_limit[r] = -1;
        const char *name = cfg->routes[r].rate_limit;
        if (!name) continue;
        for (size_t i = 0; i < cfg->n_rate_limits; i++)
            if (strcmp(cfg->rate_limits[i].name, name) == 0) s->route_limit[r] = (long)i;
    }
    return s;
oom:
    snprintf(err, errlen, "out of memory");
    bgw_rl_set_free(s);
    return NULL;
}

void bgw_rl_set_free(struct bgw_rl_set *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n_limits; i++) table_release(s->limits[i].table);
    free(s->limits);
    free(s->route_limit);
    free(s);
}

const struct bgw_rl_limit *bgw_rl_for_route(const struct bgw_rl_set *s, long route)
{
    if (!s || route < 0) return NULL;
    long i = s->route_limit[route];
    return i < 0 ? NULL : &s->limits[i];
}

/* ---- keys ---- */

uint64_t bgw_rl_hash(uint64_t seed, const char *s, size_t n)
{
    uint64_t h = seed ^ 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

const char *bgw_rl_key(const struct bgw_rate_limit *l, const struct bgw_rl_request *rq, size_t *len)
{
    const char *v = NULL;
    size_t n = 0;
    switch (l->key_kind) {
    case BGW_RL_KEY_CLIENT_IP:
        v = rq->client_ip;
        n = v ? strlen(v) : 0;
        break;
    case BGW_RL_KEY_ROUTE:
        v = rq->route;
        n = v ? strlen(v) : 0;
        break;
    case BGW_RL_KEY_HEADER:
        if (rq->header && l->key_name) v = rq->header(rq->header_ctx, l->key_name, strlen(l->key_name), &n);
        break;
    case BGW_RL_KEY_CLAIM:
        if (rq->claim && l->key_name) v = rq->claim(rq->claim_ctx, l->key_name, strlen(l->key_name), &n);
        break;
    }
    if (!v) {
        v = "";
        n = 0;
    }
    *len = n;
    return v;
}

/* ---- headers ---- */

size_t bgw_rl_format_headers(const struct bgw_rl_result *r, char *buf, size_t cap)
{
    int n;
    if (r->allowed)
        n = snprintf(buf, cap, "RateLimit-Limit: %llu\r\nRateLimit-Remaining: %llu\r\nRateLimit-Reset: %llu\r\n",
                     (unsigned long long)r->limit, (unsigned long long)r->remaining,
                     (unsigned long long)bgw_rl_ceil_s(r->reset_ns));
    else
        n = snprintf(buf, cap,
                     "Retry-After: %llu\r\nRateLimit-Limit: %llu\r\nRateLimit-Remaining: 0\r\nRateLimit-Reset: %llu\r\n",
                     (unsigned long long)(r->retry_ns ? bgw_rl_ceil_s(r->retry_ns) : 1),
                     (unsigned long long)r->limit, (unsigned long long)bgw_rl_ceil_s(r->reset_ns));
    if (n < 0) return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

/* ---- the request path ---- */

enum bgw_rl_verdict bgw_rl_check(struct bgw_worker *w, const struct bgw_rl_limit *l, const struct bgw_rl_request *rq,
                                 struct bgw_rl_result *res, bgw_rl_done_fn done, void *owner,
                                 struct bgw_rl_wait **wait)
{
    size_t klen;
    const char *key = bgw_rl_key(l->cfg, rq, &klen);
    if (l->cfg->scope == BGW_RL_GLOBAL && bgw_rlredis_enabled()) {
        int rc = bgw_rlredis_take(w, l, key, klen, done, owner, wait, res);
        if (rc == 1) return BGW_RL_PENDING;
        return res->allowed ? BGW_RL_CONTINUE : BGW_RL_REJECT;
    }
    bgw_rl_table_take(l->table, bgw_rl_hash(l->name_hash, key, klen), l->interval_ns, l->burst, bgw_rl_now_ns(), res);
    return res->allowed ? BGW_RL_CONTINUE : BGW_RL_REJECT;
}
