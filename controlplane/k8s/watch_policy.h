/*
 * watch_policy.h - what a Kubernetes list+watch loop does after each outcome: list again, watch again
 * from the last resourceVersion, and how long to wait first (exponential backoff with jitter).
 *
 *   listed                  → watch from the list's resourceVersion at once
 *   watch ended (timeout, dropped connection, after events or a second or more) → watch again at once
 *   watch ended at once without a byte → a failure: watch again after a backoff
 *   410 Gone (HTTP, or an ERROR event with code 410) → list again at once (the history is compacted);
 *                           a 410 within BGW_K8S_GONE_WINDOW_MS of the previous one counts as a failure
 *                           (backoff), so a server that expires every watch at once is not hammered
 *   ERROR event (other code), unreadable stream     → list again after a backoff
 *   HTTP error (5xx, 429, 401...) or network error  → the same step (list or watch) again after a backoff,
 *                                                     at least Retry-After when the server sent one
 *
 * The backoff after the k-th consecutive failure is d = min(BASE * 2^(k-1), MAX), waited as d/2 plus a
 * random part up to d/2 ("equal jitter"), so replicas do not retry in step. Pure: the random number is
 * passed in, so tests are deterministic.
 */
#ifndef BGW_WATCH_POLICY_H
#define BGW_WATCH_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#define BGW_K8S_BACKOFF_BASE_MS 250
#define BGW_K8S_BACKOFF_MAX_MS 10000
#define BGW_K8S_RETRY_AFTER_MAX_MS 60000
#define BGW_K8S_GONE_WINDOW_MS 1000

enum bgw_k8s_outcome {
    BGW_K8S_LISTED,         /* a complete list was applied */
    BGW_K8S_LIST_FAILED,    /* a list failed (HTTP error other than 410, network) */
    BGW_K8S_WATCH_ENDED,    /* a watch stream ended after events or after a while */
    BGW_K8S_WATCH_EMPTY,    /* a watch stream ended at once without a byte */
    BGW_K8S_WATCH_FAILED,   /* a watch request failed (HTTP error other than 410, network) */
    BGW_K8S_GONE,           /* 410: HTTP status or ERROR event */
    BGW_K8S_WATCH_ERROR,    /* another ERROR event, or a stream that is not JSON */
};

struct bgw_k8s_policy {
    unsigned failures;      /* consecutive failures so far */
    int64_t last_gone_ms;   /* when the last 410 came (0: never) */
};

struct bgw_k8s_step {
    bool relist;            /* list (true) or watch (false) next */
    uint32_t delay_ms;      /* wait this long first */
};

/* The next step after outcome; retry_after_s: the server's Retry-After (0 when none); rnd: a uniformly
 * random 32-bit number; now_ms: a monotonic clock in milliseconds (> 0). Updates *p. */
struct bgw_k8s_step bgw_k8s_policy_next(struct bgw_k8s_policy *p, enum bgw_k8s_outcome outcome,
                                        unsigned retry_after_s, uint32_t rnd, int64_t now_ms);

/* The next number of a xorshift generator (*state: any non-zero seed), for the rnd above and for watch
 * timeouts: enough to keep replicas out of step, not for secrets. */
uint32_t bgw_k8s_rand(uint64_t *state);

/* The backoff after `failures` consecutive failures (>= 1) with the random number rnd. */
uint32_t bgw_k8s_backoff_ms(unsigned failures, uint32_t rnd);

#endif
