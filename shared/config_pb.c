/*
 * config_pb.c - config document <-> Config message (see config_pb.h). One walk per direction over the
 * protobuf-c descriptors, with the field path kept for error messages ("routes[2].retry.attempts").
 */
#include "config_pb.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct conv {
    char path[512];
    size_t len;
    char *err;
    size_t errlen;
};

/* Append n bytes to the field path (truncated at its capacity); no printf: it runs for every field. */
static void path_put(struct conv *c, const char *s, size_t n)
{
    size_t room = sizeof c->path - 1 - c->len;
    if (n > room) n = room;
    memcpy(c->path + c->len, s, n);
    c->len += n;
    c->path[c->len] = 0;
}

static size_t push_field(struct conv *c, const char *name)
{
    size_t mark = c->len;
    if (c->len) path_put(c, ".", 1);
    path_put(c, name, strlen(name));
    return mark;
}

static size_t push_index(struct conv *c, size_t i)
{
    size_t mark = c->len;
    char buf[24];
    size_t n = sizeof buf;
    buf[--n] = ']';
    do buf[--n] = (char)('0' + i % 10);
    while ((i /= 10) != 0);
    buf[--n] = '[';
    path_put(c, buf + n, sizeof buf - n);
    return mark;
}

static void pop(struct conv *c, size_t mark)
{
    c->len = mark;
    c->path[mark] = 0;
}

__attribute__((format(printf, 2, 3))) static int fail(struct conv *c, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->err && c->errlen) snprintf(c->err, c->errlen, "%s: %s", c->len ? c->path : "config", msg);
    return -1;
}

/* Fields whose shape differs between the document and the message. */
static bool is_field(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                     const ProtobufCMessageDescriptor *want, const char *name)
{
    return d == want && strcmp(f->name, name) == 0;
}

#define MEMBER(msg, off, type) ((type *)((char *)(msg) + (off)))
#define CMEMBER(msg, off, type) ((const type *)((const char *)(msg) + (off)))

/* ---------------------------------------------------------------------------------------------------- */
/* JSON -> message */

static int from_json_message(struct conv *c, const json_t *obj, ProtobufCMessage *msg);

static ProtobufCMessage *new_message(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = malloc(d->sizeof_message);
    if (m) d->message_init(m);
    return m;
}

static int dup_string(struct conv *c, const json_t *v, char **out)
{
    if (!json_is_string(v)) return fail(c, "must be a string");
    *out = strdup(json_string_value(v));
    return *out ? 0 : fail(c, "out of memory");
}

/* One value into the slot of a non-repeated field (or an element of a repeated one: has == NULL). */
static int from_json_value(struct conv *c, const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                           const json_t *v, void *slot, protobuf_c_boolean *has)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        if (is_field(d, f, &bgw__v1__auth_policy__descriptor, "jwks") && !json_is_string(v)) {
            if (!json_is_object(v)) return fail(c, "must be an object");
            *(char **)slot = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
            return *(char **)slot ? 0 : fail(c, "cannot be serialised");
        }
        return dup_string(c, v, (char **)slot);
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v)) return fail(c, "must be true or false");
        *(protobuf_c_boolean *)slot = json_is_true(v);
        break;
    case PROTOBUF_C_TYPE_UINT32:
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (json_int_t)UINT32_MAX)
            return fail(c, "must be a whole number from 0 to %u", (unsigned)UINT32_MAX);
        *(uint32_t *)slot = (uint32_t)json_integer_value(v);
        break;
    case PROTOBUF_C_TYPE_UINT64:
        if (!json_is_integer(v) || json_integer_value(v) < 0) return fail(c, "must be a whole number from 0");
        *(uint64_t *)slot = (uint64_t)json_integer_value(v);
        break;
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *sd = f->descriptor;
        ProtobufCMessage *sub = new_message(sd);
        if (!sub) return fail(c, "out of memory");
        *(ProtobufCMessage **)slot = sub;
        if (sd == &bgw__v1__endpoint__descriptor) {
            Bgw__V1__Endpoint *e = (Bgw__V1__Endpoint *)sub;
            e->has_healthy = 1;
            e->healthy = 1;   /* the document's default */
            if (json_is_string(v)) return dup_string(c, v, &e->address);
        }
        return from_json_message(c, v, sub);
    }
    default:
        return fail(c, "field type %d is not supported", (int)f->type);
    }
    if (has) *has = 1;
    return 0;
}

static int from_json_map(struct conv *c, const json_t *v, const ProtobufCFieldDescriptor *f, ProtobufCMessage *msg)
{
    if (!json_is_object(v)) return fail(c, "must be an object");
    size_t n = json_object_size(v);
    Bgw__V1__AuthPolicy__ForwardClaimsEntry **arr = calloc(n ? n : 1, sizeof *arr);
    if (!arr) return fail(c, "out of memory");
    *MEMBER(msg, f->offset, void *) = arr;
    size_t *count = MEMBER(msg, f->quantifier_offset, size_t);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val) {
        size_t mark = push_field(c, key);
        Bgw__V1__AuthPolicy__ForwardClaimsEntry *e = malloc(sizeof *e);
        if (!e) return fail(c, "out of memory");
        bgw__v1__auth_policy__forward_claims_entry__init(e);
        arr[(*count)++] = e;
        e->key = strdup(key);
        if (!e->key) return fail(c, "out of memory");
        if (dup_string(c, val, &e->value) < 0) return -1;
        pop(c, mark);
    }
    return 0;
}

static int from_json_repeated(struct conv *c, const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                              const json_t *v, ProtobufCMessage *msg)
{
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->descriptor == &bgw__v1__auth_policy__forward_claims_entry__descriptor)
        return from_json_map(c, v, f, msg);
    if (!json_is_array(v)) return fail(c, "must be an array");
    if (f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
        return fail(c, "repeated field type %d is not supported", (int)f->type);
    size_t n = json_array_size(v);
    void **arr = calloc(n ? n : 1, sizeof *arr);   /* char * or ProtobufCMessage * elements */
    if (!arr) return fail(c, "out of memory");
    *MEMBER(msg, f->offset, void **) = arr;
    size_t *count = MEMBER(msg, f->quantifier_offset, size_t);
    for (size_t i = 0; i < n; i++) {
        size_t mark = push_index(c, i);
        int rc = from_json_value(c, d, f, json_array_get(v, i), &arr[i], NULL);
        if (arr[i]) (*count)++;   /* counted as soon as it exists, so that freeing finds it */
        if (rc < 0) return -1;
        pop(c, mark);
    }
    return 0;
}

static int from_json_message(struct conv *c, const json_t *obj, ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    if (!json_is_object(obj)) return fail(c, "must be an object");
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const json_t *v = json_object_get(obj, f->name);
        if (!v || json_is_null(v)) continue;
        size_t mark = push_field(c, f->name);
        int rc;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            rc = from_json_repeated(c, d, f, v, msg);
        } else {
            bool scalar = f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE;
            protobuf_c_boolean *has = scalar ? MEMBER(msg, f->quantifier_offset, protobuf_c_boolean) : NULL;
            rc = from_json_value(c, d, f, v, MEMBER(msg, f->offset, void), has);
        }
        if (rc < 0) return -1;
        pop(c, mark);
    }
    return 0;
}

int bgw_config_pb_from_json(const json_t *doc, Bgw__V1__Config **out, char *err, size_t errlen)
{
    struct conv c = {.err = err, .errlen = errlen};
    Bgw__V1__Config *cfg = malloc(sizeof *cfg);
    if (!cfg) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    bgw__v1__config__init(cfg);
    if (from_json_message(&c, doc, &cfg->base) < 0) {
        bgw_config_pb_free(cfg);
        return -1;
    }
    *out = cfg;
    return 0;
}

void bgw_config_pb_free(Bgw__V1__Config *cfg)
{
    if (cfg) protobuf_c_message_free_unpacked(&cfg->base, NULL);
}

/* ---------------------------------------------------------------------------------------------------- */
/* message -> JSON */

static json_t *to_json_message(struct conv *c, const ProtobufCMessage *msg);

static int put(struct conv *c, json_t *obj, const char *key, json_t *v)
{
    if (!v) return -1;   /* the maker already failed (and said why) or ran out of memory */
    if (json_object_set_new(obj, key, v) < 0) return fail(c, "out of memory");
    return 0;
}

static json_t *oom(struct conv *c)
{
    fail(c, "out of memory");
    return NULL;
}

static json_t *string_json(const char *s)
{
    return json_string(s ? s : "");
}

static json_t *jwks_json(struct conv *c, const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        fail(c, "is not valid JSON: %s", je.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        fail(c, "must be a JSON object");
        return NULL;
    }
    return v;
}

static json_t *to_json_repeated(struct conv *c, const ProtobufCFieldDescriptor *f, const ProtobufCMessage *msg, size_t n)
{
    void *const *arr = *(void *const *const *)((const char *)msg + f->offset);
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->descriptor == &bgw__v1__auth_policy__forward_claims_entry__descriptor) {
        json_t *o = json_object();
        if (!o) return oom(c);
        for (size_t i = 0; i < n; i++) {
            const Bgw__V1__AuthPolicy__ForwardClaimsEntry *e = arr[i];
            if (json_object_set_new(o, e->key ? e->key : "", string_json(e->value)) < 0) {
                json_decref(o);
                return oom(c);
            }
        }
        return o;
    }
    json_t *a = json_array();
    if (!a) return oom(c);
    for (size_t i = 0; i < n; i++) {
        size_t mark = push_index(c, i);
        json_t *v = f->type == PROTOBUF_C_TYPE_STRING ? string_json(arr[i]) : to_json_message(c, arr[i]);
        if (!v || json_array_append_new(a, v) < 0) {
            if (v) oom(c);
            else if (f->type == PROTOBUF_C_TYPE_STRING) oom(c);
            json_decref(a);
            return NULL;
        }
        pop(c, mark);
    }
    return a;
}

/* A non-repeated field's JSON value; *absent set when the field is not there (then NULL is no error). */
static json_t *to_json_single(struct conv *c, const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                              const ProtobufCMessage *msg, bool *absent)
{
    *absent = false;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *CMEMBER(msg, f->offset, char *const);
        bool always = is_field(d, f, &bgw__v1__header_match__descriptor, "exact");
        if (!s || (!*s && !always)) {
            if (!always) {
                *absent = true;
                return NULL;
            }
            s = "";
        }
        if (is_field(d, f, &bgw__v1__auth_policy__descriptor, "jwks")) return jwks_json(c, s);
        json_t *v = json_string(s);
        return v ? v : oom(c);
    }
    case PROTOBUF_C_TYPE_BOOL:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_UINT64: {
        bool has = *CMEMBER(msg, f->quantifier_offset, protobuf_c_boolean);
        if (!has && !is_field(d, f, &bgw__v1__endpoint__descriptor, "healthy")) {
            *absent = true;
            return NULL;
        }
        json_t *v;
        if (f->type == PROTOBUF_C_TYPE_BOOL) {
            v = json_boolean(has && *CMEMBER(msg, f->offset, protobuf_c_boolean));
        } else if (f->type == PROTOBUF_C_TYPE_UINT32) {
            v = json_integer(*CMEMBER(msg, f->offset, uint32_t));
        } else {
            uint64_t u = *CMEMBER(msg, f->offset, uint64_t);
            if (u > (uint64_t)INT64_MAX) {
                fail(c, "%llu is too large", (unsigned long long)u);
                return NULL;
            }
            v = json_integer((json_int_t)u);
        }
        return v ? v : oom(c);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *CMEMBER(msg, f->offset, ProtobufCMessage *const);
        if (!sub) {
            *absent = true;
            return NULL;
        }
        return to_json_message(c, sub);
    }
    default:
        *absent = true;   /* not used by these messages */
        return NULL;
    }
}

static json_t *to_json_message(struct conv *c, const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    json_t *o = json_object();
    if (!o) return oom(c);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        size_t mark = push_field(c, f->name);
        json_t *v;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *CMEMBER(msg, f->quantifier_offset, size_t);
            if (n == 0) {
                pop(c, mark);
                continue;
            }
            v = to_json_repeated(c, f, msg, n);
        } else {
            bool absent;
            v = to_json_single(c, d, f, msg, &absent);
            if (absent) {
                pop(c, mark);
                continue;
            }
        }
        if (put(c, o, f->name, v) < 0) {
            json_decref(o);
            return NULL;
        }
        pop(c, mark);
    }
    if (d == &bgw__v1__service__descriptor && json_object_get(o, "endpoints")) json_object_del(o, "kubernetes");
    return o;
}

json_t *bgw_config_pb_to_json(const Bgw__V1__Config *cfg, char *err, size_t errlen)
{
    struct conv c = {.err = err, .errlen = errlen};
    if (err && errlen) err[0] = 0;
    json_t *doc = to_json_message(&c, &cfg->base);
    if (!doc && err && errlen && !err[0]) snprintf(err, errlen, "out of memory");
    return doc;
}
