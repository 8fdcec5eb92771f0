/* fileio.c - whole files and secrets from files (see fileio.h). */
#include "fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

char *bgw_read_stream(FILE *f, size_t max, size_t *len)
{
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 1 >= cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                errno = ENOMEM;
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n > max) {
            free(buf);
            errno = EFBIG;
            return NULL;
        }
        if (got == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        if (!errno) errno = EIO;
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

char *bgw_read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    errno = 0;
    char *buf = bgw_read_stream(f, max, len);
    int saved = errno;
    fclose(f);
    errno = saved;
    return buf;
}

static int is_space(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

char *bgw_read_token(const char *path, size_t max, char *err, size_t errlen)
{
    size_t n;
    char *buf = bgw_read_file(path, max + 2, &n);   /* room for a final CRLF beyond the limit */
    if (!buf) {
        snprintf(err, errlen, "%s: cannot read: %s", path, errno == EFBIG ? "file too large" : strerror(errno));
        return NULL;
    }
    char *tok = NULL;
    size_t start = 0, end = n;
    while (start < end && is_space((unsigned char)buf[start])) start++;
    while (end > start && is_space((unsigned char)buf[end - 1])) end--;
    if (memchr(buf, 0, n)) {
        snprintf(err, errlen, "%s: contains a NUL byte", path);
    } else if (end == start) {
        snprintf(err, errlen, "%s: the file is empty", path);
    } else if (end - start > max) {
        snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
    } else {
        size_t i = start;
        while (i < end && (unsigned char)buf[i] > 0x20 && buf[i] != 0x7f) i++;
        if (i < end) snprintf(err, errlen, "%s: the token contains whitespace or control characters", path);
        else if (!(tok = strndup(buf + start, end - start))) snprintf(err, errlen, "out of memory");
    }
    memset(buf, 0, n);
    free(buf);
    return tok;
}
