/* retry.c - the retry policy of a route (see retry.h). */
#include "retry.h"

#include <string.h>

static bool is(const char *m, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(m, lit, len) == 0;
}

bool bgw_retry_idempotent(const char *m, size_t len)
{
    return is(m, len, "GET") || is(m, len, "HEAD") || is(m, len, "PUT") || is(m, len, "DELETE") ||
           is(m, len, "OPTIONS") || is(m, len, "TRACE");
}

bool bgw_retry_allowed(const struct bgw_retry *p, enum bgw_try_failure why, unsigned status, const char *m,
                       size_t len, uint32_t retries_done)
{
    if (!p || retries_done >= p->attempts) return false;
    if (why != BGW_TRY_CONNECT_FAILURE && !bgw_retry_idempotent(m, len)) return false;
    uint32_t on = p->on;
    switch (why) {
    case BGW_TRY_CONNECT_FAILURE:
        return on & (BGW_RETRY_CONNECT_FAILURE | BGW_RETRY_5XX | BGW_RETRY_GATEWAY_ERROR);
    case BGW_TRY_RESET:
    case BGW_TRY_TIMEOUT:
        return on & (BGW_RETRY_RESET | BGW_RETRY_5XX | BGW_RETRY_GATEWAY_ERROR);
    case BGW_TRY_5XX:
        if (status < 500 || status > 599) return false;
        if (on & BGW_RETRY_5XX) return true;
        return (on & BGW_RETRY_GATEWAY_ERROR) && status >= 502 && status <= 504;
    }
    return false;
}

uint32_t bgw_retry_backoff_ms(uint32_t retry, uint64_t rnd)
{
    uint32_t shift = retry ? retry - 1 : 0;
    uint64_t cap = shift >= 16 ? BGW_RETRY_BACKOFF_MAX_MS : (uint64_t)BGW_RETRY_BACKOFF_BASE_MS << shift;
    if (cap > BGW_RETRY_BACKOFF_MAX_MS) cap = BGW_RETRY_BACKOFF_MAX_MS;
    return (uint32_t)(rnd % (cap + 1));
}
