/*
 * retry.h - the retry policy of a route: which failed tries are tried again, and how long to wait first.
 *
 * Pure functions: the request lifecycle (proxy.c) asks them at each failure point and keeps the state
 * (tries made, the replay of the request, the backoff timer). See docs/internals/resilience.md.
 */
#ifndef BGW_RETRY_H
#define BGW_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define BGW_RETRY_BACKOFF_BASE_MS 25u
#define BGW_RETRY_BACKOFF_MAX_MS 250u
#define BGW_RETRY_REPLAY_MAX (64u * 1024u)   /* request bytes (head + body) kept to replay a try */

/* Why a try failed. */
enum bgw_try_failure {
    BGW_TRY_CONNECT_FAILURE = 1,   /* no connection: refused, unreachable, connect timeout */
    BGW_TRY_RESET,                 /* the connection ended before a response head */
    BGW_TRY_TIMEOUT,               /* per_try_timeout_ms passed before a response head */
    BGW_TRY_5XX,                   /* a response head with status 500-599 */
};

/*
 * Whether a try that failed with why (status for BGW_TRY_5XX) may be retried under policy p, for a request
 * with method m (len bytes) after `retries_done` retries. Methods that are not idempotent (POST, PATCH,
 * CONNECT, and methods the proxy does not know) are retried only after a connect failure.
 * Conditions: connect-failure retries connect failures; reset retries resets and per-try timeouts; 5xx
 * retries any of those and 500-599; gateway-error retries connect failures, resets, per-try timeouts and
 * 502, 503, 504.
 */
bool bgw_retry_allowed(const struct bgw_retry *p, enum bgw_try_failure why, unsigned status, const char *m,
                       size_t len, uint32_t retries_done);

/* Whether method m is idempotent for retries. */
bool bgw_retry_idempotent(const char *m, size_t len);

/*
 * Milliseconds to wait before retry number `retry` (1 for the first): full jitter, uniform in
 * [0, min(BGW_RETRY_BACKOFF_MAX_MS, BGW_RETRY_BACKOFF_BASE_MS << (retry - 1))], from the random rnd.
 */
uint32_t bgw_retry_backoff_ms(uint32_t retry, uint64_t rnd);

#endif
