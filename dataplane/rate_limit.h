/*
 * rate_limit.h - the rate-limit policy: token buckets per limit and key, shared by every worker of a proxy
 * (scope "local") or by every proxy through Redis (scope "global", see ratelimit_redis.h).
 *
 * A bucket is kept in its GCRA form: one "theoretical arrival time" (TAT) per key, updated with one
 * compare-and-swap, so workers share buckets without locks. Buckets live in fixed-capacity tables, one per
 * limit name, that outlive config swaps: a new config with the same limit name keeps its buckets and
 * applies its new numbers to them. Time comes from an injectable clock.
 */
#ifndef BGW_RATE_LIMIT_H
#define BGW_RATE_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define BGW_RL_TABLE_SLOTS 16384        /* keys tracked per limit (client_ip, header, claim keys) */
#define BGW_RL_TABLE_SLOTS_ROUTE 256    /* keys tracked per limit keyed by route */

/* Nanoseconds of a monotonic clock. */
typedef uint64_t (*bgw_rl_clock_fn)(void);
/* Replace the clock (tests); NULL restores CLOCK_MONOTONIC. */
void bgw_rl_set_clock(bgw_rl_clock_fn fn);
uint64_t bgw_rl_now_ns(void);

/* What a decision tells the client (the 429 headers, and the draft RateLimit-* fields). */
struct bgw_rl_result {
    bool allowed;
    uint64_t limit;          /* burst: the most requests admitted at once */
    uint64_t remaining;      /* requests that would still be admitted right now */
    uint64_t reset_ns;       /* until the bucket is full again */
    uint64_t retry_ns;       /* (rejected) until one request would be admitted */
};

/* A process-wide bucket table of one limit name. */
struct bgw_rl_table;

/* A new table of `slots` (a power of two) buckets, registered under name (a second table of the same name
 * is a distinct table: use bgw_rl_set_build for sharing by name). NULL when out of memory. */
struct bgw_rl_table *bgw_rl_table_new(const char *name, uint32_t slots);
void bgw_rl_table_free(struct bgw_rl_table *t);

/*
 * Take one token for key_hash from t: the bucket refills one token every interval_ns and holds at most
 * burst tokens. Fills *res. Lock-free; safe from any thread. A key not in the table gets a new (full)
 * bucket, taking the slot of an empty or full bucket near its home slot, or else of the bucket there that
 * will be full soonest.
 */
void bgw_rl_table_take(struct bgw_rl_table *t, uint64_t key_hash, uint64_t interval_ns, uint64_t burst,
                       uint64_t now_ns, struct bgw_rl_result *res);

/* One config rate limit, compiled. */
struct bgw_rl_limit {
    const struct bgw_rate_limit *cfg;
    struct bgw_rl_table *table;        /* shared by name across snapshots */
    uint64_t interval_ns;              /* time to refill one token */
    uint64_t burst;
    uint64_t name_hash;
};

/* The rate limits of one snapshot: compiled limits and, per route, the index of its limit. */
struct bgw_rl_set {
    struct bgw_rl_limit *limits;
    size_t n_limits;
    long *route_limit;                 /* cfg->n_routes entries; -1: the route has no limit */
};

/* Compile the rate limits of cfg (which must outlive the set); tables are found by limit name or created.
 * Returns NULL with err filled when out of memory. */
struct bgw_rl_set *bgw_rl_set_build(const struct bgw_config *cfg, char *err, size_t errlen);
void bgw_rl_set_free(struct bgw_rl_set *s);
/* The limit of route index route, or NULL. */
const struct bgw_rl_limit *bgw_rl_for_route(const struct bgw_rl_set *s, long route);

/* Looks up a request attribute by name (a header, lower-case name; or a JWT claim). Returns the value and
 * its length, or NULL when absent. */
typedef const char *(*bgw_rl_lookup_fn)(void *ctx, const char *name, size_t name_len, size_t *value_len);

/* What keys are made of. claim may be NULL (no verified token): claim keys are then "". */
struct bgw_rl_request {
    const char *client_ip;
    const char *route;
    bgw_rl_lookup_fn header;
    void *header_ctx;
    bgw_rl_lookup_fn claim;
    void *claim_ctx;
};

/* The key of a request under limit l: points into the request (no copy); a missing header or claim is the
 * empty key "" (all such requests share one bucket). */
const char *bgw_rl_key(const struct bgw_rate_limit *l, const struct bgw_rl_request *rq, size_t *len);


/* 64-bit hash of a limit's key (never 0). */
uint64_t bgw_rl_hash(uint64_t seed, const char *s, size_t n);

/* Seconds, rounded up, of a duration in nanoseconds. */
static inline uint64_t bgw_rl_ceil_s(uint64_t ns)
{
    return (ns + 999999999ull) / 1000000000ull;
}

/*
 * The response headers of a decision, each ending in CRLF: RateLimit-Limit, RateLimit-Remaining,
 * RateLimit-Reset, and Retry-After when rejected. Returns the length written (always < cap for cap >= 160).
 */
size_t bgw_rl_format_headers(const struct bgw_rl_result *r, char *buf, size_t cap);

enum bgw_rl_verdict { BGW_RL_CONTINUE = 1, BGW_RL_REJECT, BGW_RL_PENDING };

struct bgw_worker;
struct bgw_rl_wait;
/* Called once on the worker's thread with the verdict of a request that was pending. */
typedef void (*bgw_rl_done_fn)(void *owner, enum bgw_rl_verdict v, const struct bgw_rl_result *res);

/*
 * The policy's one call on the request path. Local limits answer at once (CONTINUE or REJECT, *res
 * filled). Global limits ask Redis through the worker's connection and return PENDING with *wait set: done
 * is then called later on the worker's thread, exactly once, unless bgw_rl_wait_cancel(*wait) is called
 * first. When Redis is unusable the answer is CONTINUE at once (fail open; counted and logged).
 */
enum bgw_rl_verdict bgw_rl_check(struct bgw_worker *w, const struct bgw_rl_limit *l, const struct bgw_rl_request *rq,
                                 struct bgw_rl_result *res, bgw_rl_done_fn done, void *owner,
                                 struct bgw_rl_wait **wait);

/* The owner goes away: done will not be called. */
void bgw_rl_wait_cancel(struct bgw_rl_wait *wait);

#endif
