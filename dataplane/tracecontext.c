/* tracecontext.c - W3C traceparent validation and the proxy's next hop (see tracecontext.h). */
#include "tracecontext.h"

#include <string.h>

static bool lower_hex(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f'))) return false;
    return true;
}

static bool all_zero(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] != '0') return false;
    return true;
}

bool bgw_traceparent_valid(const char *v, size_t n)
{
    if (!v || n < BGW_TRACEPARENT_LEN) return false;
    if (!lower_hex(v, 2) || memcmp(v, "ff", 2) == 0) return false;
    if (memcmp(v, "00", 2) == 0 ? n != BGW_TRACEPARENT_LEN : (n > BGW_TRACEPARENT_LEN && v[55] != '-'))
        return false;
    if (v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
    if (!lower_hex(v + 3, 32) || !lower_hex(v + 36, 16) || !lower_hex(v + 53, 2)) return false;
    return !all_zero(v + 3, 32) && !all_zero(v + 36, 16);
}

static void put_hex(char *out, uint64_t x)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, x >>= 4) out[i] = hex[x & 15];
}

bool bgw_traceparent_next(const char *in, size_t in_len, const uint64_t rnd[3], char out[BGW_TRACEPARENT_LEN + 1])
{
    bool keep = bgw_traceparent_valid(in, in_len);
    memcpy(out, "00-", 3);
    if (keep) {
        memcpy(out + 3, in + 3, 32);
        memcpy(out + 53, in + 53, 2);
    } else {
        put_hex(out + 3, rnd[0]);
        put_hex(out + 19, rnd[1] ? rnd[1] : 1);    /* never all zeros */
        memcpy(out + 53, "00", 2);
    }
    out[35] = '-';
    put_hex(out + 36, rnd[2] ? rnd[2] : 1);
    out[52] = '-';
    out[55] = 0;
    return keep;
}
