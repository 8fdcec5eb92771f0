/*
 * json_splitter.c - the streaming splitter of watch responses into JSON objects (see json_splitter.h):
 * a byte-at-a-time scanner over strings, escapes and nesting, buffering only the current object.
 */
#include "json_splitter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BGW__JSONSPLIT_DEFAULT_MAX (64u << 20)

void bgw_jsonsplit_init(struct bgw_jsonsplit *s, size_t max)
{
    memset(s, 0, sizeof *s);
    s->max = max ? max : BGW__JSONSPLIT_DEFAULT_MAX;
}

void bgw_jsonsplit_free(struct bgw_jsonsplit *s)
{
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
}

void bgw_jsonsplit_reset(struct bgw_jsonsplit *s)
{
    s->len = 0;
    s->depth = 0;
    s->in_string = s->escaped = s->failed = false;
}

bool bgw_jsonsplit_pending(const struct bgw_jsonsplit *s)
{
    return s->depth > 0;
}

static int fail(struct bgw_jsonsplit *s, char *err, size_t errlen, const char *msg)
{
    s->failed = true;
    if (errlen)
        snprintf(err, errlen, "%s", msg);
    return -1;
}

/* Append data[0..n) to the object buffer. */
static int keep(struct bgw_jsonsplit *s, const char *data, size_t n, char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    if (s->len + n > s->max)
        return fail(s, err, errlen, "watch event larger than the limit");
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n)
            cap *= 2;
        char *nb = realloc(s->buf, cap);
        if (!nb)
            return fail(s, err, errlen, "out of memory");
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    return 0;
}

int bgw_jsonsplit_feed(struct bgw_jsonsplit *s, const char *data, size_t n, bgw_jsonsplit_fn fn, void *arg,
                       char *err, size_t errlen)
{
    size_t i = 0, start = 0;    /* data[start..i) belongs to the current object and is not buffered yet */

    if (s->failed)
        return fail(s, err, errlen, "the stream already failed");
    while (i < n) {
        char c = data[i];

        if (s->depth == 0) {
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                i++;
                continue;
            }
            if (c != '{')
                return fail(s, err, errlen, "unexpected byte between watch events");
            s->depth = 1;
            s->len = 0;
            start = i++;
            continue;
        }
        i++;
        if (s->in_string) {
            if (s->escaped)
                s->escaped = false;
            else if (c == '\\')
                s->escaped = true;
            else if (c == '"')
                s->in_string = false;
            continue;
        }
        if (c == '"') {
            s->in_string = true;
        } else if (c == '{' || c == '[') {
            if (++s->depth > 10000)
                return fail(s, err, errlen, "watch event nested too deeply");
        } else if (c == '}' || c == ']') {
            if (--s->depth == 0) {
                const char *obj;
                size_t len;

                if (s->len) {
                    if (keep(s, data + start, i - start, err, errlen) < 0)
                        return -1;
                    obj = s->buf;
                    len = s->len;
                } else {
                    obj = data + start;     /* whole object within this feed: no copy */
                    len = i - start;
                    if (len > s->max)
                        return fail(s, err, errlen, "watch event larger than the limit");
                }
                s->len = 0;
                if (c != '}')
                    return fail(s, err, errlen, "watch event is not a JSON object");
                if (fn(arg, obj, len) < 0)
                    return fail(s, err, errlen, "stopped by the event handler");
            }
        }
    }
    if (s->depth > 0 && keep(s, data + start, n - start, err, errlen) < 0)
        return -1;
    return 0;
}
