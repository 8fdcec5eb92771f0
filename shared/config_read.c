/*
 * config_read.c - the parse context of the config validator: the field path ("routes[3].match"), the
 * one-line error, and readers that take one typed member out of a JSON object.
 *
 * Every reader appends ".key" to the path before it looks at the member, so an error names the exact field.
 * JSON types are never converted: "5" is not an integer, 5.0 is not an integer, 1 is not a boolean.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

/* ---- field path ---- */

/* Append n bytes of s to the path (truncated at its capacity). Every field read goes through here, so no
 * printf: a large document has tens of thousands of fields. */
static void path_put(struct bgw__cfg_ctx *c, const char *s, size_t n)
{
    size_t room = sizeof(c->path) - 1 - c->plen;
    if (n > room)
        n = room;
    memcpy(c->path + c->plen, s, n);
    c->plen += n;
    c->path[c->plen] = '\0';
}

size_t bgw__path_field(struct bgw__cfg_ctx *c, const char *field)
{
    size_t mark = c->plen;

    if (c->plen)
        path_put(c, ".", 1);
    path_put(c, field, strlen(field));
    return mark;
}

size_t bgw__path_index(struct bgw__cfg_ctx *c, size_t i)
{
    size_t mark = c->plen;
    char buf[24];
    size_t n = sizeof buf;

    buf[--n] = ']';
    do
        buf[--n] = (char)('0' + i % 10);
    while ((i /= 10) != 0);
    buf[--n] = '[';
    path_put(c, buf + n, sizeof buf - n);
    return mark;
}

void bgw__path_restore(struct bgw__cfg_ctx *c, size_t mark)
{
    c->plen = mark;
    c->path[mark] = '\0';
}

/* ---- errors ---- */

static int vfail(struct bgw__cfg_ctx *c, const char *fmt, va_list ap)
{
    int n;

    if (!c->err || c->errlen == 0)
        return -1;
    n = snprintf(c->err, c->errlen, "%s: ", c->plen ? c->path : "document");
    if (n >= 0 && (size_t)n < c->errlen)
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    return -1;
}

int bgw__fail(struct bgw__cfg_ctx *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(c, fmt, ap);
    va_end(ap);
    return -1;
}

int bgw__fail_at(struct bgw__cfg_ctx *c, const char *field, const char *fmt, ...)
{
    size_t mark = bgw__path_field(c, field);
    va_list ap;

    va_start(ap, fmt);
    vfail(c, fmt, ap);
    va_end(ap);
    bgw__path_restore(c, mark);
    return -1;
}

/* ---- memory ---- */

int bgw__strdup(struct bgw__cfg_ctx *c, const char *s, char **out)
{
    *out = strdup(s);
    return *out ? 0 : bgw__fail(c, "out of memory");
}

int bgw__calloc(struct bgw__cfg_ctx *c, size_t n, size_t size, void **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    *out = calloc(n, size);
    return *out ? 0 : bgw__fail(c, "out of memory");
}

void bgw__free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- readers ---- */

int bgw__check_fields(struct bgw__cfg_ctx *c, const json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)obj, key, v) {
        size_t i = 0;

        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (!allowed[i])
            return bgw__fail_at(c, key, "unknown field");
    }
    return 0;
}

/* The member `key`; NULL when absent (an error with BGW__REQUIRED, reported at the current path). */
static int member(struct bgw__cfg_ctx *c, const json_t *obj, const char *key, unsigned flags, const json_t **out)
{
    *out = json_object_get(obj, key);
    if (!*out && (flags & BGW__REQUIRED))
        return bgw__fail(c, "is required");
    return 0;
}

int bgw__read_object(struct bgw__cfg_ctx *c, const json_t *obj, const char *key, unsigned flags,
                     const char *const *allowed, const json_t **out)
{
    size_t mark = bgw__path_field(c, key);
    int rc = member(c, obj, key, flags, out);

    if (rc == 0 && *out) {
        if (!json_is_object(*out))
            rc = bgw__fail(c, "must be an object");
        else
            rc = bgw__check_fields(c, *out, allowed);
    }
    bgw__path_restore(c, mark);
    return rc;
}

int bgw__read_array(struct bgw__cfg_ctx *c, const json_t *obj, const char *key, unsigned flags,
                    const json_t **out)
{
    size_t mark = bgw__path_field(c, key);
    int rc = member(c, obj, key, flags, out);

    if (rc == 0 && *out) {
        if (!json_is_array(*out))
            rc = bgw__fail(c, "must be an array");
        else if ((flags & BGW__NONEMPTY) && json_array_size(*out) == 0)
            rc = bgw__fail(c, "must not be empty");
    }
    bgw__path_restore(c, mark);
    return rc;
}

int bgw__take_string(struct bgw__cfg_ctx *c, const json_t *v, unsigned flags, bgw__str_check check,
                     char **out)
{
    const char *why;
    char *s;

    if (!json_is_string(v))
        return bgw__fail(c, "must be a string");
    if (strlen(json_string_value(v)) != json_string_length(v))
        return bgw__fail(c, "must not contain NUL characters");
    if (bgw__strdup(c, json_string_value(v), &s) < 0)
        return -1;
    if (flags & BGW__LOWER)
        for (char *p = s; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    why = check ? check(s) : NULL;
    if (why) {
        free(s);
        return bgw__fail(c, "%s", why);
    }
    *out = s;
    return 0;
}

int bgw__read_string(struct bgw__cfg_ctx *c, const json_t *obj, const char *key, unsigned flags,
                     bgw__str_check check, char **out)
{
    size_t mark = bgw__path_field(c, key);
    const json_t *v;
    int rc = member(c, obj, key, flags, &v);

    if (rc == 0 && v)
        rc = bgw__take_string(c, v, flags, check, out);
    bgw__path_restore(c, mark);
    return rc;
}

static int take_strings(struct bgw__cfg_ctx *c, const json_t *arr, unsigned flags, bgw__str_check check,
                        char ***out, size_t *n)
{
    size_t count = json_array_size(arr);
    char **v;

    for (size_t i = 0; i < count; i++)
        if (!json_is_string(json_array_get(arr, i)))
            return bgw__fail(c, "must be an array of strings");
    if (bgw__calloc(c, count, sizeof(*v), (void **)&v) < 0)
        return -1;
    for (size_t i = 0; i < count; i++) {
        size_t mark = bgw__path_index(c, i);
        int rc = bgw__take_string(c, json_array_get(arr, i), flags, check, &v[i]);

        bgw__path_restore(c, mark);
        if (rc < 0) {
            bgw__free_strings(v, i);
            return -1;
        }
    }
    *out = v;
    *n = count;
    return 0;
}

int bgw__read_strings(struct bgw__cfg_ctx *c, const json_t *obj, const char *key, unsigned flags,
                      bgw__str_check check, char ***out, size_t *n)
{
    size_t mark = bgw__path_field(c, key);
    const json_t *v;
    int rc = member(c, obj, key, flags, &v);

    if (rc == 0 && v) {
        if (!json_is_array(v))
            rc = bgw__fail(c, "must be an array of strings");
        else if ((flags & BGW__NONEMPTY) && json_array_size(v) == 0)
            rc = bgw__fail(c, "must not be empty");
        else
            rc = take_strings(c, v, flags, check, out, n);
    }
    bgw__path_restore(c, mark);
    return rc;
}

static int check_range(struct bgw__cfg_ctx *c, const json_t *v, uint64_t min, uint64_t max, uint64_t *out)
{
    json_int_t i;

    if (!json_is_integer(v))
        return bgw__fail(c, "must be an integer");
    i = json_integer_value(v);
    if (i < 0)
        return bgw__fail(c, "must not be negative");
    if ((uint64_t)i < min || (uint64_t)i > max) {
        if (max <= UINT16_MAX)
            return bgw__fail(c, "must be between %llu and %llu", (unsigned long long)min,
                             (unsigned long long)max);
        if ((uint64_t)i < min)
            return bgw__fail(c, "must be at least %llu", (unsigned long long)min);
        return bgw__fail(c, "must be at most %llu", (unsigned long long)max);
    }
    *out = (uint64_t)i;
    return 0;
}

int bgw__read_u64(struct bgw__cfg_ctx *c, const json_t *obj, const char *key, unsigned flags, uint64_t def,
                  uint64_t min, uint64_t max, uint64_t *out, bool *present)
{
    size_t mark = bgw__path_field(c, key);
    const json_t *v;
    int rc = member(c, obj, key, flags, &v);

    if (rc == 0) {
        if (v)
            rc = check_range(c, v, min, max, out);
        else
            *out = def;
        if (present)
            *present = v != NULL;
    }
    bgw__path_restore(c, mark);
    return rc;
}

int bgw__read_u32(struct bgw__cfg_ctx *c, const json_t *obj, const char *key, uint32_t def, uint32_t min,
                  uint32_t max, uint32_t *out)
{
    uint64_t v;

    if (bgw__read_u64(c, obj, key, 0, def, min, max, &v, NULL) < 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int bgw__read_bool(struct bgw__cfg_ctx *c, const json_t *obj, const char *key, bool def, bool *out)
{
    const json_t *v = json_object_get(obj, key);

    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return bgw__fail_at(c, key, "must be a boolean");
    *out = json_is_true(v);
    return 0;
}

/* "a, b or c" into buf. */
static void join_names(const char *const *names, size_t n, char *buf, size_t cap)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && len < cap; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        int w = snprintf(buf + len, cap - len, "%s%s", sep, names[i]);

        if (w < 0)
            break;
        len += (size_t)w;
    }
}

int bgw__read_enum(struct bgw__cfg_ctx *c, const json_t *obj, const char *key, const char *const *names,
                   size_t n, int def, int *out)
{
    const json_t *v = json_object_get(obj, key);
    char list[256];

    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_string(v))
        return bgw__fail_at(c, key, "must be a string");
    for (size_t i = 0; i < n; i++) {
        if (strcmp(json_string_value(v), names[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    join_names(names, n, list, sizeof(list));
    return bgw__fail_at(c, key, "must be %s%s", n > 1 ? "one of " : "", list);
}

int bgw__read_name(struct bgw__cfg_ctx *c, const json_t *obj, char **out)
{
    return bgw__read_string(c, obj, "name", BGW__REQUIRED, bgw__check_name, out);
}
