/*
 * watch_policy.c - the decisions of the Kubernetes list+watch loop (see watch_policy.h), kept apart from
 * the I/O so they are tested with a fixed random number.
 */
#include "watch_policy.h"

#include <stdbool.h>

uint32_t bgw_k8s_backoff_ms(unsigned failures, uint32_t rnd)
{
    uint32_t d = BGW_K8S_BACKOFF_BASE_MS;

    for (unsigned i = 1; i < failures && d < BGW_K8S_BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > BGW_K8S_BACKOFF_MAX_MS)
        d = BGW_K8S_BACKOFF_MAX_MS;
    return d / 2 + rnd % (d / 2 + 1);
}

struct bgw_k8s_step bgw_k8s_policy_next(struct bgw_k8s_policy *p, enum bgw_k8s_outcome outcome,
                                        unsigned retry_after_s, uint32_t rnd, int64_t now_ms)
{
    struct bgw_k8s_step s = {false, 0};

    switch (outcome) {
    case BGW_K8S_LISTED:
    case BGW_K8S_WATCH_ENDED:
        p->failures = 0;
        return s;
    case BGW_K8S_GONE: {
        bool again = p->last_gone_ms && now_ms - p->last_gone_ms < BGW_K8S_GONE_WINDOW_MS;
        p->last_gone_ms = now_ms;
        s.relist = true;
        if (!again)
            return s;
        break;
    }
    case BGW_K8S_WATCH_ERROR:
    case BGW_K8S_LIST_FAILED:
        s.relist = true;
        break;
    case BGW_K8S_WATCH_EMPTY:
    case BGW_K8S_WATCH_FAILED:
        break;
    }
    p->failures++;
    s.delay_ms = bgw_k8s_backoff_ms(p->failures, rnd);
    if (retry_after_s) {
        uint64_t ra = (uint64_t)retry_after_s * 1000;
        if (ra > BGW_K8S_RETRY_AFTER_MAX_MS)
            ra = BGW_K8S_RETRY_AFTER_MAX_MS;
        if (ra > s.delay_ms)
            s.delay_ms = (uint32_t)ra;
    }
    return s;
}

uint32_t bgw_k8s_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return (uint32_t)(x >> 16);
}
