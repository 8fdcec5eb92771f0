/*
 * fuzz_json_splitter.c - libFuzzer target for the watch stream splitter (controlplane/k8s/json_splitter.h).
 * The input is fed whole and again in chunks whose sizes come from the input itself; both feeds must
 * yield the same objects (each starting with '{' and ending with '}') and the same success, so chunk
 * boundaries never change what is seen. Each object also goes through the JSON parser, as in bgw-control.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "json_splitter.h"

struct seen {
    size_t n;
    uint64_t hash;
};

static int on_obj(void *arg, const char *obj, size_t len)
{
    struct seen *s = arg;
    if (len < 2 || obj[0] != '{' || obj[len - 1] != '}')
        abort();
    s->n++;
    for (size_t i = 0; i < len; i++)
        s->hash = (s->hash ^ (unsigned char)obj[i]) * 1099511628211ull;
    s->hash = (s->hash ^ 0x100) * 1099511628211ull;
    json_decref(json_loadb(obj, len, 0, NULL));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bgw_jsonsplit a, b;
    struct seen sa = {0, 14695981039346656037ull}, sb = sa;
    char err[128];
    unsigned seed = size ? data[0] : 0;

    bgw_jsonsplit_init(&a, 1 << 16);
    bgw_jsonsplit_init(&b, 1 << 16);
    int ra = bgw_jsonsplit_feed(&a, (const char *)data, size, on_obj, &sa, err, sizeof err);
    int rb = 0;
    for (size_t off = 0; off < size && rb == 0;) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 16) % 17;
        if (n > size - off)
            n = size - off;
        rb = bgw_jsonsplit_feed(&b, (const char *)data + off, n, on_obj, &sb, err, sizeof err);
        off += n;
    }
    if (ra != rb || sa.n != sb.n || sa.hash != sb.hash)
        abort();
    if (ra == 0 && bgw_jsonsplit_pending(&a) != bgw_jsonsplit_pending(&b))
        abort();
    bgw_jsonsplit_free(&a);
    bgw_jsonsplit_free(&b);
    return 0;
}
