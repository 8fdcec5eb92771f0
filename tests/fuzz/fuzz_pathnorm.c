/*
 * fuzz_pathnorm.c - libFuzzer target for bgw_pathnorm (dataplane/pathnorm.h).
 *
 * The input is a raw path. Each run checks that the result is either a refusal (-1) or a normalised
 * path: it starts with '/', holds no "//", no "." or ".." segment, no %2F or %5C, no escape of an
 * unreserved character, only upper-case hex in escapes and only bytes 0x21..0x7e; it is no longer than
 * the input, NUL-terminated, and normalising it again gives it back unchanged. Normalising in place
 * (out == path) gives the same answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pathnorm.h"

static int is_hex_upper(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static unsigned hexval(unsigned char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'A' + 10);
}

static int is_unreserved(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static void check_normal(const char *p, size_t n)
{
    if (n == 0 || p[0] != '/')
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x21 || c > 0x7e || c == '\\' || c == '#')
            abort();
        if (c == '%') {
            if (n - i < 3 || !is_hex_upper((unsigned char)p[i + 1]) || !is_hex_upper((unsigned char)p[i + 2]))
                abort();
            unsigned v = hexval((unsigned char)p[i + 1]) << 4 | hexval((unsigned char)p[i + 2]);
            if (v == 0 || v == '/' || v == '\\' || is_unreserved(v))
                abort();
        }
        if (c == '/') {
            /* the segment after this slash is not empty unless the path ends here, and is no dot segment */
            size_t e = i + 1;
            while (e < n && p[e] != '/')
                e++;
            size_t seg = e - (i + 1);
            if (seg == 0 && e < n)
                abort();                                    /* "//" */
            if ((seg == 1 && p[i + 1] == '.') || (seg == 2 && p[i + 1] == '.' && p[i + 2] == '.'))
                abort();                                    /* "/./", "/../", trailing "/." or "/.." */
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size heap buffers, so that ASan flags any read past len or write past len + 1. */
    char *in = malloc(size ? size : 1);
    char *out = malloc(size + 1);
    if (!in || !out)
        abort();
    if (size)
        memcpy(in, data, size);

    long n = bgw_pathnorm(in, size, out);
    if (n != -1) {
        if (n < 1 || (size_t)n > size || out[n] != '\0')
            abort();
        check_normal(out, (size_t)n);

        char *again = malloc((size_t)n + 1);
        if (!again)
            abort();
        long m = bgw_pathnorm(out, (size_t)n, again);
        if (m != n || memcmp(again, out, (size_t)n) != 0)
            abort();

        /* normalising in place (out == path) gives the same result */
        char *inplace = malloc(size + 1);
        if (!inplace)
            abort();
        memcpy(inplace, in, size);
        if (bgw_pathnorm(inplace, size, inplace) != n || memcmp(inplace, out, (size_t)n + 1) != 0)
            abort();
        free(inplace);
        free(again);
    } else {
        /* in place refuses too */
        char *inplace = malloc(size + 1);
        if (!inplace)
            abort();
        if (size)
            memcpy(inplace, in, size);
        if (bgw_pathnorm(inplace, size, inplace) != -1)
            abort();
        free(inplace);
    }
    free(in);
    free(out);
    return 0;
}
