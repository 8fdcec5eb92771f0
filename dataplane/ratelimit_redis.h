/*
 * ratelimit_redis.h - global rate limits: one token bucket per limit and key in Redis, shared by every
 * proxy, taken with an atomic Lua script (GCRA on the Redis server's clock).
 *
 * Each worker has its own asynchronous hiredis connection driven by the worker's epoll loop: a request
 * waits for its answer without blocking the loop. The requests of one loop turn for the same limit and key
 * are one script call (taking up to N tokens at once), and the calls of one loop turn go out together
 * (pipelined). When Redis cannot be reached, or answers too late, requests are admitted (fail open),
 * counted in bgw_ratelimit_redis_errors_total and logged at most once every 10 seconds per proxy; the
 * connection is retried with backoff.
 */
#ifndef BGW_RATELIMIT_REDIS_H
#define BGW_RATELIMIT_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rate_limit.h"

struct bgw_worker;
struct bgw_ev;

/* Use Redis at "host:port" for global limits (called once, before workers start). Returns 0, or -1 with
 * err naming the flag when the address does not parse. */
int bgw_rlredis_configure(const char *hostport, char *err, size_t errlen);
/* Whether --redis was given. Without it, global limits are enforced per proxy like local ones. */
bool bgw_rlredis_enabled(void);

/*
 * Take one token of limit l for key through w's Redis connection. Returns 1 when the answer will come
 * through done(owner, ...) on w's thread (*wait set), or 0 when decided at once (*res filled: fail open
 * when Redis is not connected).
 */
int bgw_rlredis_take(struct bgw_worker *w, const struct bgw_rl_limit *l, const char *key, size_t klen,
                     bgw_rl_done_fn done, void *owner, struct bgw_rl_wait **wait, struct bgw_rl_result *res);

/* Send the checks gathered during this loop turn (one script call per limit and key, pipelined). Called by
 * the worker at the end of every loop turn. */
void bgw_rlredis_flush(struct bgw_worker *w);

/* An epoll event for w's Redis connection. */
void bgw_rlredis_on_event(struct bgw_worker *w, struct bgw_ev *ev, uint32_t events);

/* Redis errors so far (failed connects, lost connections, error replies, late answers). */
uint64_t bgw_rlredis_errors(void);

/* The Lua script (KEYS[1]: bucket key; ARGV[1]: refill interval in µs; ARGV[2]: burst; ARGV[3]: tokens
 * wanted). It returns {tokens granted, remaining, reset µs, retry-after µs (when not all granted)}. */
extern const char bgw_rlredis_script[];

#endif
