/*
 * views.c - kind names and table rows for bgwctl (see views.h).
 */
#include "views.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "strbuf.h"

#define BGW__VIEW_MAX_COLS 8

static const struct {
    const char *plural, *singular;
} kinds[] = {
    [BGW_CTL_KIND_SERVICES] = {"services", "service"},
    [BGW_CTL_KIND_ROUTES] = {"routes", "route"},
    [BGW_CTL_KIND_RATE_LIMITS] = {"rate_limits", "rate_limit"},
    [BGW_CTL_KIND_AUTH_POLICIES] = {"auth_policies", "auth_policy"},
};

int bgw_ctl_kind_parse(const char *s, enum bgw_ctl_kind *out)
{
    char norm[32];
    size_t n = strlen(s);

    if (n == 0 || n >= sizeof norm) return -1;
    for (size_t i = 0; i <= n; i++) norm[i] = s[i] == '-' ? '_' : (char)tolower((unsigned char)s[i]);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (strcmp(norm, kinds[k].plural) == 0 || strcmp(norm, kinds[k].singular) == 0) {
            *out = (enum bgw_ctl_kind)k;
            return 0;
        }
    }
    return -1;
}

const char *bgw_ctl_kind_name(enum bgw_ctl_kind kind)
{
    return kinds[kind].plural;
}

const char *bgw_ctl_kind_singular(enum bgw_ctl_kind kind)
{
    return kinds[kind].singular;
}

/* ---- cells ---- */

struct bgw__cells {
    char *text[BGW__VIEW_MAX_COLS];
    size_t len[BGW__VIEW_MAX_COLS], cap[BGW__VIEW_MAX_COLS];
    bool oom;
};

static void put(struct bgw__cells *c, int col, const char *s)
{
    if (bgw_strbuf_printf(&c->text[col], &c->len[col], &c->cap[col], "%s", s) < 0) c->oom = true;
}

/* A scalar as text; arrays of scalars joined with ","; objects as compact JSON; null as nothing. */
static void put_value(struct bgw__cells *c, int col, const json_t *v)
{
    char num[64];

    if (!v) return;
    switch (json_typeof(v)) {
    case JSON_STRING: put(c, col, json_string_value(v)); return;
    case JSON_INTEGER: snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: snprintf(num, sizeof num, "%g", json_real_value(v)); break;
    case JSON_TRUE: put(c, col, "true"); return;
    case JSON_FALSE: put(c, col, "false"); return;
    case JSON_NULL: return;
    case JSON_ARRAY: {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            if (i > 0) put(c, col, ",");
            put_value(c, col, item);
        }
        return;
    }
    case JSON_OBJECT: {
        char *s = json_dumps(v, JSON_COMPACT);
        if (!s) c->oom = true;
        else put(c, col, s);
        free(s);
        return;
    }
    }
    put(c, col, num);
}

static void put_field(struct bgw__cells *c, int col, const json_t *obj, const char *key)
{
    put_value(c, col, json_object_get(obj, key));
}

/* A time as the server gave it: text as is; a number as seconds (or milliseconds) since the epoch, UTC. */
static void put_time(struct bgw__cells *c, int col, const json_t *v)
{
    if (!json_is_number(v)) {
        put_value(c, col, v);
        return;
    }
    double t = json_number_value(v);
    if (t > 1e11) t /= 1000.0;   /* milliseconds */
    time_t secs = (time_t)t;
    struct tm tm;
    char buf[32];
    if (!gmtime_r(&secs, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
        put_value(c, col, v);
        return;
    }
    put(c, col, buf);
}

/* The first of keys present (and not null) in obj, or NULL. */
static const json_t *first_of(const json_t *obj, const char *const *keys)
{
    for (; *keys; keys++) {
        const json_t *v = json_object_get(obj, *keys);
        if (v && !json_is_null(v)) return v;
    }
    return NULL;
}

static int add_cells(struct bgw_table *t, struct bgw__cells *c)
{
    const char *row[BGW__VIEW_MAX_COLS] = {0};
    int rc = c->oom ? -1 : 0;

    for (size_t i = 0; i < t->ncols; i++) row[i] = c->text[i];
    if (rc == 0) rc = bgw_table_add_row(t, row);
    for (size_t i = 0; i < BGW__VIEW_MAX_COLS; i++) free(c->text[i]);
    *c = (struct bgw__cells){0};
    return rc;
}

/* ---- rows per kind ---- */

static void service_row(struct bgw__cells *c, const json_t *o)
{
    const json_t *k8s = json_object_get(o, "kubernetes");
    const json_t *eps = json_object_get(o, "endpoints");

    put_field(c, 0, o, "name");
    if (json_is_object(k8s)) {
        put(c, 1, "kubernetes:");
        put_field(c, 1, k8s, "namespace");
        put(c, 1, "/");
        put_field(c, 1, k8s, "service");
        put(c, 1, ":");
        put_field(c, 1, k8s, "port");
    } else if (json_is_array(eps)) {
        size_t i;
        json_t *ep;
        json_array_foreach(eps, i, ep) {
            if (i > 0) put(c, 1, ",");
            if (json_is_object(ep)) {
                put_field(c, 1, ep, "address");
                if (json_is_false(json_object_get(ep, "healthy"))) put(c, 1, "(unhealthy)");
            } else {
                put_value(c, 1, ep);
            }
        }
    }
    put_field(c, 2, o, "lb");
    put_field(c, 3, o, "revision");
}

static void route_row(struct bgw__cells *c, const json_t *o)
{
    const json_t *m = json_object_get(o, "match");

    put_field(c, 0, o, "name");
    if (json_is_object(m)) {
        const json_t *v;
        if ((v = json_object_get(m, "path_exact")) && json_is_string(v)) {
            put(c, 1, "exact ");
            put_value(c, 1, v);
        } else if ((v = json_object_get(m, "path_prefix")) && json_is_string(v)) {
            put(c, 1, "prefix ");
            put_value(c, 1, v);
        }
        if (json_array_size(json_object_get(m, "methods")) > 0) {
            put(c, 1, " methods=");
            put_field(c, 1, m, "methods");
        }
        if (json_array_size(json_object_get(m, "hosts")) > 0) {
            put(c, 1, " hosts=");
            put_field(c, 1, m, "hosts");
        }
        const json_t *hs = json_object_get(m, "headers");
        size_t i;
        json_t *h;
        json_array_foreach(hs, i, h) {
            put(c, 1, i == 0 ? " headers=" : ",");
            put_field(c, 1, h, "name");
            put(c, 1, "=");
            put_field(c, 1, h, "exact");
        }
    }
    put_field(c, 2, o, "service");
    put_field(c, 3, o, "revision");
}

static void rate_limit_row(struct bgw__cells *c, const json_t *o)
{
    put_field(c, 0, o, "name");
    put_field(c, 1, o, "requests");
    if (json_object_get(o, "per")) {
        put(c, 1, "/");
        put_field(c, 1, o, "per");
    }
    put_field(c, 2, o, "burst");
    put_field(c, 3, o, "key");
    put_field(c, 4, o, "scope");
    put_field(c, 5, o, "revision");
}

static void auth_policy_row(struct bgw__cells *c, const json_t *o)
{
    const json_t *jwks = json_object_get(o, "jwks");
    const json_t *uri = json_object_get(o, "jwks_uri");

    put_field(c, 0, o, "name");
    put_field(c, 1, o, "issuer");
    put_field(c, 2, o, "algorithms");
    if (jwks && !json_is_null(jwks)) put(c, 3, "inline");
    if (json_is_string(uri)) {
        if (jwks && !json_is_null(jwks)) put(c, 3, ",");
        put_value(c, 3, uri);
    }
    put_field(c, 4, o, "revision");
}

static int fill(struct bgw_table *t, size_t ncols, const char *const *headers, const json_t *items,
                void (*row)(struct bgw__cells *, const json_t *))
{
    struct bgw__cells c = {0};
    size_t i;
    json_t *item;

    if (bgw_table_init(t, ncols, headers) < 0) {
        bgw_table_free(t);
        return -1;
    }
    json_array_foreach(items, i, item) {
        if (!json_is_object(item)) continue;
        row(&c, item);
        if (add_cells(t, &c) < 0) {
            bgw_table_free(t);
            return -1;
        }
    }
    return 0;
}

int bgw_view_objects(enum bgw_ctl_kind kind, const json_t *items, struct bgw_table *t)
{
    static const char *const h_services[] = {"NAME", "ENDPOINTS", "LB", "REVISION"};
    static const char *const h_routes[] = {"NAME", "MATCH", "SERVICE", "REVISION"};
    static const char *const h_rl[] = {"NAME", "RATE", "BURST", "KEY", "SCOPE", "REVISION"};
    static const char *const h_auth[] = {"NAME", "ISSUER", "ALGORITHMS", "JWKS", "REVISION"};

    switch (kind) {
    case BGW_CTL_KIND_SERVICES: return fill(t, 4, h_services, items, service_row);
    case BGW_CTL_KIND_ROUTES: return fill(t, 4, h_routes, items, route_row);
    case BGW_CTL_KIND_RATE_LIMITS: return fill(t, 6, h_rl, items, rate_limit_row);
    case BGW_CTL_KIND_AUTH_POLICIES: return fill(t, 5, h_auth, items, auth_policy_row);
    }
    return -1;
}

static void dataplane_row(struct bgw__cells *c, const json_t *o)
{
    static const char *const change[] = {"last_change", "status_since", "connected_since", NULL};

    put_field(c, 0, o, "node_id");
    put_field(c, 1, o, "address");
    put_field(c, 2, o, "status");
    put_field(c, 3, o, "acked_version");
    put_time(c, 4, first_of(o, change));
    put_field(c, 5, o, "last_error");
}

int bgw_view_dataplanes(const json_t *items, struct bgw_table *t)
{
    static const char *const h[] = {"NODE", "ADDRESS", "STATUS", "ACKED VERSION", "LAST CHANGE", "LAST ERROR"};
    return fill(t, 6, h, items, dataplane_row);
}

static void endpoint_row(struct bgw__cells *c, const json_t *o)
{
    static const char *const source[] = {"source", "origin", "from", NULL};
    static const char *const check[] = {"last_check", "last_checked", "checked_at", NULL};
    const json_t *healthy = json_object_get(o, "healthy");

    put_field(c, 0, o, "address");
    put_value(c, 1, first_of(o, source));
    if (json_is_boolean(healthy)) put(c, 2, json_is_true(healthy) ? "yes" : "no");
    else put_value(c, 2, healthy);
    put_time(c, 3, first_of(o, check));
}

int bgw_view_endpoints(const json_t *items, struct bgw_table *t)
{
    static const char *const h[] = {"ADDRESS", "SOURCE", "HEALTHY", "LAST CHECK"};
    return fill(t, 4, h, items, endpoint_row);
}
