/*
 * config.c - entry points of the config model: a JSON document (text, file or jansson value) is validated
 * whole into an immutable struct bgw_config, or refused with one line naming the field that is wrong.
 *
 * This file handles the top level: the four named lists, unique names, references from routes to
 * services, rate limits and auth policies, and freeing. Each kind of item is parsed in its own file
 * (config_service.c, config_route.c, config_policy.c); see config_internal.h for the map.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "fileio.h"

#define CONFIG_FILE_MAX (64u << 20)

const char *const bgw__lb_names[3] = {"round_robin", "least_request", "random"};
const char *const bgw__rl_per_names[3] = {"second", "minute", "hour"};
const char *const bgw__rl_scope_names[2] = {"local", "global"};
const char *const bgw__retry_on_names[4] = {"connect-failure", "reset", "5xx", "gateway-error"};
const char *const bgw__jwt_algorithms[12] = {
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "HS256", "HS384", "HS512",
};

static const char *const top_fields[] = {"version", "services", "routes", "rate_limits", "auth_policies", NULL};

const char *bgw_lb_kind_name(enum bgw_lb_kind kind)
{
    return (unsigned)kind < BGW__COUNT(bgw__lb_names) ? bgw__lb_names[kind] : "unknown";
}

/* ---- the named lists ---- */

/* How to parse one kind of list item; items is the array, i the index. */
struct kind {
    const char *key;
    size_t size;
    int (*parse)(struct bgw__cfg_ctx *c, const json_t *v, void *items, size_t i);
    const char *(*name)(const void *items, size_t i);
};

static int service_parse(struct bgw__cfg_ctx *c, const json_t *v, void *items, size_t i)
{
    return bgw__parse_service(c, v, &((struct bgw_service *)items)[i]);
}
static const char *service_name(const void *items, size_t i)
{
    return ((const struct bgw_service *)items)[i].name;
}
static int route_parse(struct bgw__cfg_ctx *c, const json_t *v, void *items, size_t i)
{
    return bgw__parse_route(c, v, &((struct bgw_route *)items)[i]);
}
static const char *route_name(const void *items, size_t i)
{
    return ((const struct bgw_route *)items)[i].name;
}
static int rate_limit_parse(struct bgw__cfg_ctx *c, const json_t *v, void *items, size_t i)
{
    return bgw__parse_rate_limit(c, v, &((struct bgw_rate_limit *)items)[i]);
}
static const char *rate_limit_name(const void *items, size_t i)
{
    return ((const struct bgw_rate_limit *)items)[i].name;
}
static int auth_parse(struct bgw__cfg_ctx *c, const json_t *v, void *items, size_t i)
{
    return bgw__parse_auth_policy(c, v, &((struct bgw_auth_policy *)items)[i]);
}
static const char *auth_name(const void *items, size_t i)
{
    return ((const struct bgw_auth_policy *)items)[i].name;
}

static const struct kind services_kind = {"services", sizeof(struct bgw_service), service_parse, service_name};
static const struct kind routes_kind = {"routes", sizeof(struct bgw_route), route_parse, route_name};
static const struct kind rate_limits_kind = {"rate_limits", sizeof(struct bgw_rate_limit), rate_limit_parse,
                                             rate_limit_name};
static const struct kind auth_kind = {"auth_policies", sizeof(struct bgw_auth_policy), auth_parse, auth_name};

/* Item i (at the current path): an object, parsed, whose name is not yet in names (name -> index). */
static int parse_item(struct bgw__cfg_ctx *c, const struct kind *k, const json_t *v, void *items, size_t i,
                      json_t *names)
{
    const char *name;
    json_t *idx;

    if (!json_is_object(v))
        return bgw__fail(c, "must be an object");
    if (k->parse(c, v, items, i) < 0)
        return -1;
    name = k->name(items, i);
    if (json_object_get(names, name))
        return bgw__fail_at(c, "name", "duplicate name \"%s\"", name);
    idx = json_integer((json_int_t)i);
    if (!idx || json_object_set_new(names, name, idx) < 0)
        return bgw__fail(c, "out of memory");
    return 0;
}

/* The list doc[k->key] into *items / *n (absent: empty); names receives name -> index. */
static int parse_list(struct bgw__cfg_ctx *c, const json_t *doc, const struct kind *k, void **items, size_t *n,
                      json_t *names)
{
    const json_t *arr;
    size_t count, mark;
    int rc = 0;

    if (bgw__read_array(c, doc, k->key, 0, &arr) < 0)
        return -1;
    count = json_array_size(arr);
    if (bgw__calloc(c, count, k->size, items) < 0)
        return -1;
    *n = count;
    mark = bgw__path_field(c, k->key);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        size_t imark = bgw__path_index(c, i);

        rc = parse_item(c, k, json_array_get(arr, i), *items, i, names);
        bgw__path_restore(c, imark);
    }
    bgw__path_restore(c, mark);
    return rc;
}

/* ---- references ---- */

/* The member `field` of the current route names an entry of names (or is NULL and optional). */
static int check_ref(struct bgw__cfg_ctx *c, const char *field, const char *what, const char *ref,
                     const json_t *names, size_t *index)
{
    const json_t *idx;

    if (!ref)
        return 0;
    idx = json_object_get(names, ref);
    if (!idx)
        return bgw__fail_at(c, field, "unknown %s \"%.128s\"", what, ref);
    if (index)
        *index = (size_t)json_integer_value(idx);
    return 0;
}

struct name_index {
    json_t *services, *routes, *rate_limits, *auth_policies;
};

static int resolve_routes(struct bgw__cfg_ctx *c, struct bgw_config *cfg, const struct name_index *ix)
{
    size_t mark = bgw__path_field(c, "routes");
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < cfg->n_routes; i++) {
        struct bgw_route *r = &cfg->routes[i];
        size_t imark = bgw__path_index(c, i);

        if (check_ref(c, "service", "service", r->service, ix->services, &r->service_index) < 0 ||
            check_ref(c, "rate_limit", "rate limit", r->rate_limit, ix->rate_limits, NULL) < 0 ||
            check_ref(c, "auth", "auth policy", r->auth, ix->auth_policies, NULL) < 0)
            rc = -1;
        bgw__path_restore(c, imark);
    }
    bgw__path_restore(c, mark);
    return rc;
}

/* ---- the document ---- */

static int parse_document(struct bgw__cfg_ctx *c, const json_t *doc, struct bgw_config *cfg,
                          const struct name_index *ix)
{
    if (!json_is_object(doc))
        return bgw__fail(c, "must be a JSON object");
    if (bgw__check_fields(c, doc, top_fields) < 0 ||
        bgw__read_string(c, doc, "version", 0, bgw__check_printable, &cfg->version) < 0 ||
        parse_list(c, doc, &services_kind, (void **)&cfg->services, &cfg->n_services, ix->services) < 0 ||
        parse_list(c, doc, &rate_limits_kind, (void **)&cfg->rate_limits, &cfg->n_rate_limits,
                   ix->rate_limits) < 0 ||
        parse_list(c, doc, &auth_kind, (void **)&cfg->auth_policies, &cfg->n_auth_policies,
                   ix->auth_policies) < 0 ||
        parse_list(c, doc, &routes_kind, (void **)&cfg->routes, &cfg->n_routes, ix->routes) < 0)
        return -1;
    return resolve_routes(c, cfg, ix);
}

/* One line of printable text: control characters (from keys or values in the document) become '?'. */
static void one_line(char *err, size_t errlen)
{
    if (!err || errlen == 0)
        return;
    for (unsigned char *p = (unsigned char *)err; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
}

static void set_error(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    one_line(err, errlen);
}

int bgw_config_from_json(const json_t *doc, struct bgw_config **out, char *err, size_t errlen)
{
    struct bgw__cfg_ctx c = {.err = err, .errlen = errlen};
    struct name_index ix = {json_object(), json_object(), json_object(), json_object()};
    struct bgw_config *cfg = calloc(1, sizeof(*cfg));
    int rc;

    if (!cfg || !ix.services || !ix.routes || !ix.rate_limits || !ix.auth_policies)
        rc = bgw__fail(&c, "out of memory");
    else
        rc = parse_document(&c, doc, cfg, &ix);
    json_decref(ix.services);
    json_decref(ix.routes);
    json_decref(ix.rate_limits);
    json_decref(ix.auth_policies);
    if (rc < 0) {
        bgw_config_free(cfg);
        one_line(err, errlen);
        return -1;
    }
    *out = cfg;
    return 0;
}

int bgw_config_parse(const char *text, size_t len, struct bgw_config **out, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc;

    if (!doc) {
        if (json_error_code(&jerr) == json_error_out_of_memory || jerr.line < 0)
            set_error(err, errlen, "%s", jerr.text[0] ? jerr.text : "out of memory");
        else
            set_error(err, errlen, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        return -1;
    }
    rc = bgw_config_from_json(doc, out, err, errlen);
    json_decref(doc);
    return rc;
}

int bgw_config_load_file(const char *path, struct bgw_config **out, char *err, size_t errlen)
{
    char inner[1024];
    char *text;
    size_t len;
    int rc;

    errno = 0;
    if (!(text = bgw_read_file(path, CONFIG_FILE_MAX, &len))) {
        set_error(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    rc = bgw_config_parse(text, len, out, inner, sizeof(inner));
    free(text);
    if (rc < 0)
        set_error(err, errlen, "%s: %s", path, inner);
    return rc;
}

void bgw_config_free(struct bgw_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_services; i++)
        bgw__service_free(&cfg->services[i]);
    for (size_t i = 0; i < cfg->n_routes; i++)
        bgw__route_free(&cfg->routes[i]);
    for (size_t i = 0; i < cfg->n_rate_limits; i++)
        bgw__rate_limit_free(&cfg->rate_limits[i]);
    for (size_t i = 0; i < cfg->n_auth_policies; i++)
        bgw__auth_policy_free(&cfg->auth_policies[i]);
    free(cfg->services);
    free(cfg->routes);
    free(cfg->rate_limits);
    free(cfg->auth_policies);
    free(cfg->version);
    free(cfg);
}
