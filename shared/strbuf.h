/*
 * strbuf.h - a growing string for building text answers (metrics, JSON) off the request path.
 * The caller owns *buf and frees it with free().
 */
#ifndef BGW_STRBUF_H
#define BGW_STRBUF_H

#include <stddef.h>

/* printf-style append to (*buf, *len, *cap), growing it as needed. Returns 0, or -1 when out of memory. */
int bgw_strbuf_printf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
