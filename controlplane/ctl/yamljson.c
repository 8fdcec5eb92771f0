/*
 * yamljson.c - YAML to JSON (libyaml's event parser, core-schema scalar resolution, anchors expanded with
 * a size cap) and JSON to YAML (libyaml's emitter, quoting strings that would read back as another type).
 */
#include "yamljson.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#define BGW__YAML_MAX_DEPTH 128
#define BGW__YAML_MAX_NODES 1000000 /* nodes after alias expansion: stops "billion laughs" documents */

/* ---- scalar resolution (YAML 1.2 core schema) ---- */

static bool eq(const char *s, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

static bool plain_is_null(const char *s, size_t len)
{
    return len == 0 || eq(s, len, "~") || eq(s, len, "null") || eq(s, len, "Null") || eq(s, len, "NULL");
}

/* 1 true, 0 false, -1 not a boolean */
static int plain_bool(const char *s, size_t len)
{
    if (eq(s, len, "true") || eq(s, len, "True") || eq(s, len, "TRUE")) return 1;
    if (eq(s, len, "false") || eq(s, len, "False") || eq(s, len, "FALSE")) return 0;
    return -1;
}

static bool all_in(const char *s, size_t len, const char *set)
{
    if (len == 0) return false;
    for (size_t i = 0; i < len; i++)
        if (!s[i] || !strchr(set, s[i])) return false;
    return true;
}

/* 1 an integer stored in *out, 0 not an integer, -1 an integer out of range */
static int plain_int(const char *s, size_t len, json_int_t *out)
{
    char buf[72];
    int base = 10;
    const char *digits = s;
    size_t n = len;

    if (len > 2 && s[0] == '0' && s[1] == 'x') {
        base = 16, digits = s + 2, n = len - 2;
        if (!all_in(digits, n, "0123456789abcdefABCDEF")) return 0;
    } else if (len > 2 && s[0] == '0' && s[1] == 'o') {
        base = 8, digits = s + 2, n = len - 2;
        if (!all_in(digits, n, "01234567")) return 0;
    } else {
        size_t sign = (len > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
        if (!all_in(s + sign, len - sign, "0123456789")) return 0;
    }
    if (n >= sizeof buf) return -1;
    memcpy(buf, digits, n);
    buf[n] = '\0';
    errno = 0;
    if (base == 10) {
        long long v = strtoll(buf, NULL, 10);
        if (errno == ERANGE) return -1;
        *out = (json_int_t)v;
    } else {
        unsigned long long v = strtoull(buf, NULL, base);
        if (errno == ERANGE || v > (unsigned long long)INT64_MAX) return -1;
        *out = (json_int_t)v;
    }
    return 1;
}

/* 1 a float stored in *out, 0 not a float, -1 a float JSON cannot hold (.inf, .nan) */
static int plain_float(const char *s, size_t len, double *out)
{
    char buf[128];
    size_t i = 0;
    size_t mant = 0;

    const char *t = s;
    size_t tl = len;
    if (tl > 0 && (t[0] == '-' || t[0] == '+')) t++, tl--;
    if (eq(t, tl, ".inf") || eq(t, tl, ".Inf") || eq(t, tl, ".INF")) return -1;
    if (eq(s, len, ".nan") || eq(s, len, ".NaN") || eq(s, len, ".NAN")) return -1;

    if (i < len && (s[i] == '-' || s[i] == '+')) i++;
    while (i < len && s[i] >= '0' && s[i] <= '9') i++, mant++;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') i++, mant++;
    }
    if (mant == 0) return 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp = 0;
        i++;
        if (i < len && (s[i] == '-' || s[i] == '+')) i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') i++, exp++;
        if (exp == 0) return 0;
    }
    if (i != len) return 0;
    if (len >= sizeof buf) return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    *out = strtod(buf, NULL);
    if (errno == ERANGE && (*out > 1.0 || *out < -1.0)) return -1;
    return 1;
}

bool bgw_yaml_plain_is_string(const char *s, size_t len)
{
    json_int_t i;
    double d;

    if (plain_is_null(s, len) || plain_bool(s, len) >= 0) return false;
    if (plain_int(s, len, &i) != 0) return false;
    if (plain_float(s, len, &d) != 0) return false;
    return true;
}

/* ---- YAML -> JSON ---- */

struct bgw__yaml_anchor {
    char *name;
    json_t *value;
    size_t nodes;
};

struct bgw__yaml_loader {
    yaml_parser_t parser;
    char *err;
    size_t errlen;
    struct bgw__yaml_anchor *anchors;
    size_t n_anchors, cap_anchors;
    size_t nodes;               /* nodes produced so far, aliases counted expanded */
};

static void fail_at(struct bgw__yaml_loader *ld, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_at(struct bgw__yaml_loader *ld, yaml_mark_t mark, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(ld->err, ld->errlen, "line %zu, column %zu: %s", mark.line + 1, mark.column + 1, msg);
}

static int next_event(struct bgw__yaml_loader *ld, yaml_event_t *ev)
{
    if (yaml_parser_parse(&ld->parser, ev)) return 0;
    const yaml_parser_t *p = &ld->parser;
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->context)
        fail_at(ld, p->problem_mark, "%s %s", problem, p->context);
    else
        fail_at(ld, p->problem_mark, "%s", problem);
    return -1;
}

static int add_anchor(struct bgw__yaml_loader *ld, const yaml_char_t *name, json_t *value, size_t nodes)
{
    if (!name) return 0;
    if (ld->n_anchors == ld->cap_anchors) {
        size_t cap = ld->cap_anchors ? ld->cap_anchors * 2 : 8;
        struct bgw__yaml_anchor *a = realloc(ld->anchors, cap * sizeof *a);
        if (!a) return -1;
        ld->anchors = a;
        ld->cap_anchors = cap;
    }
    char *copy = strdup((const char *)name);
    if (!copy) return -1;
    ld->anchors[ld->n_anchors++] = (struct bgw__yaml_anchor){copy, json_incref(value), nodes};
    return 0;
}

static const struct bgw__yaml_anchor *find_anchor(const struct bgw__yaml_loader *ld, const yaml_char_t *name)
{
    for (size_t i = ld->n_anchors; i-- > 0;)    /* a redefined anchor: the latest wins */
        if (strcmp(ld->anchors[i].name, (const char *)name) == 0) return &ld->anchors[i];
    return NULL;
}

static json_t *load_scalar(struct bgw__yaml_loader *ld, const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    json_int_t i;
    double d;
    int r;

    if (tag && strcmp(tag, "!") != 0) {
        if (strcmp(tag, YAML_STR_TAG) == 0) return json_stringn(s, len);
        if (strcmp(tag, YAML_NULL_TAG) == 0 && plain_is_null(s, len)) return json_null();
        if (strcmp(tag, YAML_BOOL_TAG) == 0 && (r = plain_bool(s, len)) >= 0) return json_boolean(r);
        if (strcmp(tag, YAML_INT_TAG) == 0 && plain_int(s, len, &i) == 1) return json_integer(i);
        if (strcmp(tag, YAML_FLOAT_TAG) == 0) {
            if (plain_int(s, len, &i) == 1) return json_real((double)i);
            if (plain_float(s, len, &d) == 1) return json_real(d);
        }
        if (strcmp(tag, YAML_STR_TAG) != 0 && strcmp(tag, YAML_NULL_TAG) != 0 && strcmp(tag, YAML_BOOL_TAG) != 0
            && strcmp(tag, YAML_INT_TAG) != 0 && strcmp(tag, YAML_FLOAT_TAG) != 0) {
            fail_at(ld, ev->start_mark, "unsupported tag %s", tag);
            return NULL;
        }
        fail_at(ld, ev->start_mark, "\"%.*s\" does not match its tag %s", (int)(len > 64 ? 64 : len), s, tag);
        return NULL;
    }
    if (!plain || tag) return json_stringn(s, len);
    if (plain_is_null(s, len)) return json_null();
    if ((r = plain_bool(s, len)) >= 0) return json_boolean(r);
    if ((r = plain_int(s, len, &i)) == 1) return json_integer(i);
    if (r < 0) {
        fail_at(ld, ev->start_mark, "integer %.*s is out of range", (int)(len > 64 ? 64 : len), s);
        return NULL;
    }
    if ((r = plain_float(s, len, &d)) == 1) return json_real(d);
    if (r < 0) {
        fail_at(ld, ev->start_mark, "%.*s cannot be represented in JSON", (int)(len > 64 ? 64 : len), s);
        return NULL;
    }
    return json_stringn(s, len);
}

static json_t *load_node(struct bgw__yaml_loader *ld, yaml_event_t *ev, int depth);

static json_t *load_sequence(struct bgw__yaml_loader *ld, int depth)
{
    json_t *arr = json_array();
    if (!arr) return NULL;
    for (;;) {
        yaml_event_t ev;
        if (next_event(ld, &ev) < 0) break;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return arr;
        }
        json_t *item = load_node(ld, &ev, depth + 1);
        yaml_event_delete(&ev);
        if (!item || json_array_append_new(arr, item) < 0) break;
    }
    json_decref(arr);
    return NULL;
}

static json_t *load_mapping(struct bgw__yaml_loader *ld, int depth)
{
    json_t *obj = json_object();
    if (!obj) return NULL;
    for (;;) {
        yaml_event_t kev, vev;
        if (next_event(ld, &kev) < 0) break;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return obj;
        }
        if (kev.type != YAML_SCALAR_EVENT) {
            fail_at(ld, kev.start_mark, "mapping keys must be scalars");
            yaml_event_delete(&kev);
            break;
        }
        const char *key = (const char *)kev.data.scalar.value;
        size_t klen = kev.data.scalar.length;
        if (memchr(key, '\0', klen)) {
            fail_at(ld, kev.start_mark, "a mapping key contains a NUL character");
            yaml_event_delete(&kev);
            break;
        }
        if (kev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !kev.data.scalar.tag && eq(key, klen, "<<")) {
            fail_at(ld, kev.start_mark, "merge keys (<<) are not supported");
            yaml_event_delete(&kev);
            break;
        }
        if (json_object_get(obj, key)) {
            fail_at(ld, kev.start_mark, "duplicate key \"%.64s\"", key);
            yaml_event_delete(&kev);
            break;
        }
        if (next_event(ld, &vev) < 0) {
            yaml_event_delete(&kev);
            break;
        }
        json_t *value = load_node(ld, &vev, depth + 1);
        yaml_event_delete(&vev);
        int rc = value ? json_object_set_new(obj, key, value) : -1;
        yaml_event_delete(&kev);
        if (rc < 0) break;
    }
    json_decref(obj);
    return NULL;
}

/* Builds the node that starts with ev (which the caller still owns and deletes). NULL: ld->err is set. */
static json_t *load_node(struct bgw__yaml_loader *ld, yaml_event_t *ev, int depth)
{
    size_t before = ld->nodes;
    const yaml_char_t *anchor = NULL;
    json_t *v = NULL;

    if (depth > BGW__YAML_MAX_DEPTH) {
        fail_at(ld, ev->start_mark, "nested deeper than %d levels", BGW__YAML_MAX_DEPTH);
        return NULL;
    }
    if (++ld->nodes > BGW__YAML_MAX_NODES) {
        fail_at(ld, ev->start_mark, "the document has more than %d nodes", BGW__YAML_MAX_NODES);
        return NULL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        v = load_scalar(ld, ev);
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        v = load_sequence(ld, depth);
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        v = load_mapping(ld, depth);
        break;
    case YAML_ALIAS_EVENT: {
        const struct bgw__yaml_anchor *a = find_anchor(ld, ev->data.alias.anchor);
        if (!a) {
            fail_at(ld, ev->start_mark, "unknown alias *%s", (const char *)ev->data.alias.anchor);
            return NULL;
        }
        ld->nodes += a->nodes - 1;
        if (ld->nodes > BGW__YAML_MAX_NODES) {
            fail_at(ld, ev->start_mark, "aliases expand the document beyond %d nodes", BGW__YAML_MAX_NODES);
            return NULL;
        }
        return json_incref(a->value);
    }
    default:
        fail_at(ld, ev->start_mark, "unexpected YAML event");
        return NULL;
    }
    if (!v) {
        if (!ld->err[0]) snprintf(ld->err, ld->errlen, "out of memory");
        return NULL;
    }
    if (add_anchor(ld, anchor, v, ld->nodes - before) < 0) {
        snprintf(ld->err, ld->errlen, "out of memory");
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Reads one event that must be of type want (a structural event of the stream). */
static int expect(struct bgw__yaml_loader *ld, yaml_event_type_t want, yaml_event_t *ev)
{
    if (next_event(ld, ev) < 0) return -1;
    if (ev->type != want) {
        fail_at(ld, ev->start_mark, "unexpected YAML event");
        yaml_event_delete(ev);
        return -1;
    }
    return 0;
}

json_t *bgw_yaml_to_json(const char *text, size_t len, char *err, size_t errlen)
{
    struct bgw__yaml_loader ld = {.err = err, .errlen = errlen};
    yaml_event_t ev;
    json_t *doc = NULL;

    err[0] = '\0';
    if (!yaml_parser_initialize(&ld.parser)) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)text, len);
    if (expect(&ld, YAML_STREAM_START_EVENT, &ev) < 0) goto out;
    yaml_event_delete(&ev);
    if (next_event(&ld, &ev) < 0) goto out;
    if (ev.type == YAML_STREAM_END_EVENT) {
        snprintf(err, errlen, "the document is empty");
        yaml_event_delete(&ev);
        goto out;
    }
    yaml_event_delete(&ev);     /* DOCUMENT_START: the parser allows nothing else here */
    if (next_event(&ld, &ev) < 0) goto out;
    doc = load_node(&ld, &ev, 0);
    yaml_event_delete(&ev);
    if (!doc) goto out;
    if (expect(&ld, YAML_DOCUMENT_END_EVENT, &ev) < 0) goto fail;
    yaml_event_delete(&ev);
    if (next_event(&ld, &ev) < 0) goto fail;
    if (ev.type != YAML_STREAM_END_EVENT) {
        fail_at(&ld, ev.start_mark, "a second document: give one document only");
        yaml_event_delete(&ev);
        goto fail;
    }
    yaml_event_delete(&ev);
    goto out;
fail:
    json_decref(doc);
    doc = NULL;
out:
    for (size_t i = 0; i < ld.n_anchors; i++) {
        free(ld.anchors[i].name);
        json_decref(ld.anchors[i].value);
    }
    free(ld.anchors);
    yaml_parser_delete(&ld.parser);
    return doc;
}

/* ---- JSON -> YAML ---- */

struct bgw__yaml_out {
    char *buf;
    size_t len, cap;
    bool oom;
};

static int write_out(void *data, unsigned char *bytes, size_t size)
{
    struct bgw__yaml_out *o = data;
    if (o->len + size + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + size + 1) cap *= 2;
        char *b = realloc(o->buf, cap);
        if (!b) {
            o->oom = true;
            return 0;
        }
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, bytes, size);
    o->len += size;
    o->buf[o->len] = '\0';
    return 1;
}

static int emit(yaml_emitter_t *em, yaml_event_t *ev, int initialized)
{
    if (!initialized) return -1;
    return yaml_emitter_emit(em, ev) ? 0 : -1;
}

static int emit_plain(yaml_emitter_t *em, const char *s)
{
    yaml_event_t ev;
    int ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 0,
                                          YAML_PLAIN_SCALAR_STYLE);
    return emit(em, &ev, ok);
}

static int emit_string(yaml_emitter_t *em, const char *s, size_t len)
{
    yaml_event_t ev;
    yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;

    if (len > INT32_MAX) return -1;
    if (!bgw_yaml_plain_is_string(s, len)) style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    for (size_t i = 0; i < len && style == YAML_ANY_SCALAR_STYLE; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    int ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)len, 1, 1, style);
    return emit(em, &ev, ok);
}

static int emit_value(yaml_emitter_t *em, const json_t *v)
{
    yaml_event_t ev;
    char num[64];

    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        if (emit(em, &ev, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE)) < 0)
            return -1;
        json_object_foreach((json_t *)v, key, val) {
            if (emit_string(em, key, strlen(key)) < 0 || emit_value(em, val) < 0) return -1;
        }
        return emit(em, &ev, yaml_mapping_end_event_initialize(&ev));
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *val;
        if (emit(em, &ev, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE)) < 0)
            return -1;
        json_array_foreach(v, i, val) {
            if (emit_value(em, val) < 0) return -1;
        }
        return emit(em, &ev, yaml_sequence_end_event_initialize(&ev));
    }
    case JSON_STRING:
        return emit_string(em, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return emit_plain(em, num);
    case JSON_REAL:
        snprintf(num, sizeof num, "%.17g", json_real_value(v));
        if (!strpbrk(num, ".eEn")) strcat(num, ".0");
        return emit_plain(em, num);
    case JSON_TRUE:
        return emit_plain(em, "true");
    case JSON_FALSE:
        return emit_plain(em, "false");
    case JSON_NULL:
        return emit_plain(em, "null");
    }
    return -1;
}

char *bgw_yaml_from_json(const json_t *v)
{
    yaml_emitter_t em;
    yaml_event_t ev;
    struct bgw__yaml_out out = {0};
    int rc = -1;

    if (!yaml_emitter_initialize(&em)) return NULL;
    yaml_emitter_set_output(&em, write_out, &out);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    yaml_emitter_set_indent(&em, 2);
    if (emit(&em, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING)) < 0) goto out;
    if (emit(&em, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1)) < 0) goto out;
    if (emit_value(&em, v) < 0) goto out;
    if (emit(&em, &ev, yaml_document_end_event_initialize(&ev, 1)) < 0) goto out;
    if (emit(&em, &ev, yaml_stream_end_event_initialize(&ev)) < 0) goto out;
    if (!yaml_emitter_flush(&em)) goto out;
    rc = 0;
out:
    yaml_emitter_delete(&em);
    if (rc < 0 || out.oom || !out.buf) {
        free(out.buf);
        return NULL;
    }
    return out.buf;
}
