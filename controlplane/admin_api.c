/*
 * admin_api.c - the admin REST API's requests and replies (see admin_api.h): routing, the bearer token,
 * body checks, and the mapping of store results to status codes and JSON bodies.
 */
#include "admin_api.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "metrics.h"
#include "procstat.h"
#include "strbuf.h"

#define N_METHODS 6
#define MAX_CODES 24

static const char *const method_labels[N_METHODS] = {"GET", "HEAD", "PUT", "POST", "DELETE", "other"};

struct bgw_admin_api {
    struct bgw_store *store;
    struct bgw_xds_server *xds;
    struct bgw_builder *builder;      /* NULL: answer from the store */
    char *token;
    size_t token_len;
    pthread_mutex_t lock;
    unsigned codes[MAX_CODES];                          /* status codes seen, in order of first use */
    unsigned long long counts[N_METHODS][MAX_CODES];
    unsigned n_codes;
    struct { bgw_admin_metrics_fn fn; void *arg; } metrics[BGW_ADMIN_METRICS_MAX];
    unsigned n_metrics;
};

/* What a path names. */
enum endpoint {
    EP_NONE = 0,
    EP_HEALTHZ,
    EP_READYZ,
    EP_METRICS,
    EP_CONFIG,
    EP_DATAPLANES,
    EP_APPLY,
    EP_LIST,          /* /v1/{kind} */
    EP_OBJECT,        /* /v1/{kind}/{name} */
    EP_ENDPOINTS,     /* /v1/services/{name}/endpoints */
};

struct target {
    enum endpoint ep;
    bool v1;
    enum bgw_store_kind kind;
    char name[BGW_NAME_MAX + 2];     /* as in the path; may be invalid (checked by the handler) */
    bool name_too_long;
};

struct bgw_admin_api *bgw_admin_api_new(struct bgw_store *store, struct bgw_xds_server *xds, const char *token)
{
    struct bgw_admin_api *api = calloc(1, sizeof *api);

    if (!api)
        return NULL;
    api->store = store;
    api->xds = xds;
    if (token) {
        api->token = strdup(token);
        if (!api->token) {
            free(api);
            return NULL;
        }
        api->token_len = strlen(token);
    }
    pthread_mutex_init(&api->lock, NULL);
    return api;
}

void bgw_admin_api_set_builder(struct bgw_admin_api *api, struct bgw_builder *b)
{
    api->builder = b;
}

int bgw_admin_api_add_metrics(struct bgw_admin_api *api, bgw_admin_metrics_fn fn, void *arg)
{
    if (api->n_metrics == BGW_ADMIN_METRICS_MAX)
        return -1;
    api->metrics[api->n_metrics].fn = fn;
    api->metrics[api->n_metrics++].arg = arg;
    return 0;
}

void bgw_admin_api_free(struct bgw_admin_api *api)
{
    if (!api)
        return;
    if (api->token) {
        memset(api->token, 0, api->token_len);
        free(api->token);
    }
    pthread_mutex_destroy(&api->lock);
    free(api);
}

void bgw_admin_reply_free(struct bgw_admin_reply *rp)
{
    free(rp->body);
    rp->body = NULL;
    rp->len = 0;
}

void bgw_admin_api_count(struct bgw_admin_api *api, const char *method, unsigned status)
{
    unsigned m = N_METHODS - 1, c;

    for (unsigned i = 0; i + 1 < N_METHODS; i++)
        if (method && strcmp(method, method_labels[i]) == 0)
            m = i;
    pthread_mutex_lock(&api->lock);
    for (c = 0; c < api->n_codes && api->codes[c] != status; c++)
        ;
    if (c == api->n_codes && c < MAX_CODES)
        api->codes[api->n_codes++] = status;
    if (c < MAX_CODES)
        api->counts[m][c]++;
    pthread_mutex_unlock(&api->lock);
}

/* ---- replies ---- */

static void reply_reset(struct bgw_admin_reply *rp)
{
    memset(rp, 0, sizeof *rp);
}

/* rp = status with body text (copied). */
static void reply_text(struct bgw_admin_reply *rp, unsigned status, const char *type, const char *text)
{
    rp->status = status;
    rp->content_type = type;
    rp->body = strdup(text);
    rp->len = rp->body ? strlen(rp->body) : 0;
}

/* rp = status with doc as JSON; takes the reference to doc. */
static void reply_json(struct bgw_admin_reply *rp, unsigned status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;

    json_decref(doc);
    if (!text) {
        rp->status = 500;
        rp->content_type = "application/json";
        rp->body = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}\n");
        rp->len = rp->body ? strlen(rp->body) : 0;
        return;
    }
    size_t n = strlen(text);
    char *body = realloc(text, n + 2);
    if (body) {
        body[n++] = '\n';
        body[n] = '\0';
        text = body;
    }
    rp->status = status;
    rp->content_type = "application/json";
    rp->body = text;
    rp->len = strlen(text);
}

static const char *error_code(unsigned status)
{
    switch (status) {
    case 400: return "invalid_argument";
    case 401: return "unauthenticated";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 409: return "conflict";
    case 412: return "precondition_failed";
    case 413: return "payload_too_large";
    case 415: return "unsupported_media_type";
    default: return "internal";
    }
}

void bgw_admin_reply_error(struct bgw_admin_reply *rp, unsigned status, const char *field, const char *message)
{
    json_t *e = json_pack("{s:s,s:s}", "code", error_code(status), "message", message);

    if (e && (status == 400 || (field && *field)))
        json_object_set_new(e, "field", json_string(field ? field : ""));
    reply_json(rp, status, e ? json_pack("{s:o}", "error", e) : NULL);
}

static void reply_store_error(struct bgw_admin_reply *rp, const struct bgw_store_error *err)
{
    static const unsigned status[] = {
        [BGW_STORE_INVALID] = 400, [BGW_STORE_NOT_FOUND] = 404, [BGW_STORE_CONFLICT] = 409,
        [BGW_STORE_PRECONDITION] = 412, [BGW_STORE_IO] = 500, [BGW_STORE_TOO_LARGE] = 413,
    };
    unsigned st = err->status >= BGW_STORE_INVALID && err->status <= BGW_STORE_TOO_LARGE ? status[err->status]
                                                                                          : 500;

    bgw_admin_reply_error(rp, st, err->field, err->message);
}

/* ---- routing ---- */

/* Split the raw path into its segments (at most 4 matter); returns the count, or -1 for an empty segment
 * or too many. */
static int split(const char *path, char seg[4][BGW_NAME_MAX + 2], bool *too_long)
{
    int n = 0;
    const char *p = path;

    *too_long = false;
    if (*p != '/')
        return -1;
    while (*p == '/') {
        const char *start = ++p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - start);
        if (len == 0 || n == 4)
            return -1;
        if (len > BGW_NAME_MAX) {
            *too_long = true;
            len = BGW_NAME_MAX + 1;
        }
        memcpy(seg[n], start, len);
        seg[n][len] = '\0';
        n++;
    }
    return n;
}

static void resolve(const char *path, struct target *t)
{
    char seg[4][BGW_NAME_MAX + 2];
    bool too_long;
    int n;

    memset(t, 0, sizeof *t);
    if (strcmp(path, "/healthz") == 0) t->ep = EP_HEALTHZ;
    else if (strcmp(path, "/readyz") == 0) t->ep = EP_READYZ;
    else if (strcmp(path, "/metrics") == 0) t->ep = EP_METRICS;
    if (t->ep)
        return;
    t->v1 = strcmp(path, "/v1") == 0 || strncmp(path, "/v1/", 4) == 0;
    n = split(path, seg, &too_long);
    if (!t->v1 || n < 2)
        return;
    if (n == 2 && strcmp(seg[1], "config") == 0) t->ep = EP_CONFIG;
    else if (n == 2 && strcmp(seg[1], "dataplanes") == 0) t->ep = EP_DATAPLANES;
    else if (n == 2 && strcmp(seg[1], "apply") == 0) t->ep = EP_APPLY;
    if (t->ep || bgw_store_kind_parse(seg[1], &t->kind) < 0)
        return;
    if (n == 2) {
        t->ep = EP_LIST;
    } else if (n == 3) {
        t->ep = EP_OBJECT;
    } else if (n == 4 && t->kind == BGW_KIND_SERVICES && strcmp(seg[3], "endpoints") == 0) {
        t->ep = EP_ENDPOINTS;
    }
    if (n >= 3) {
        snprintf(t->name, sizeof t->name, "%s", seg[2]);
        t->name_too_long = too_long;
    }
}

/* The methods each endpoint allows (the Allow header of a 405). */
static const char *allowed(enum endpoint ep)
{
    switch (ep) {
    case EP_APPLY: return "POST";
    case EP_OBJECT: return "GET, HEAD, PUT, DELETE";
    default: return "GET, HEAD";
    }
}

static bool method_allowed(enum endpoint ep, const char *method)
{
    if (ep == EP_APPLY)
        return strcmp(method, "POST") == 0;
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
        return true;
    return ep == EP_OBJECT && (strcmp(method, "PUT") == 0 || strcmp(method, "DELETE") == 0);
}

/* Constant-time for a given token length: every byte of the presented value is compared. */
static bool token_ok(const struct bgw_admin_api *api, const char *authorization)
{
    const char *p = authorization;
    unsigned char diff = 0;
    size_t n;

    if (!api->token)
        return true;
    if (!p || strncasecmp(p, "Bearer ", 7) != 0)
        return false;
    p += 7;
    while (*p == ' ')
        p++;
    n = strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    diff = (unsigned char)(n != api->token_len);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(p[i] ^ api->token[i % (api->token_len ? api->token_len : 1)]);
    return diff == 0;
}

static bool is_json_type(const char *ct)
{
    static const char want[] = "application/json";
    size_t n = sizeof want - 1;

    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, want, n) != 0)
        return false;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

static bool has_body(const char *method)
{
    return strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0;
}

/* The checks shared by precheck and handle. Returns true with rp filled on refusal. */
static bool refuse(struct bgw_admin_api *api, const struct bgw_admin_request *rq, const struct target *t,
                   long long declared_len, struct bgw_admin_reply *rp)
{
    char msg[160];

    if (t->v1 && !token_ok(api, rq->authorization)) {
        bgw_admin_reply_error(rp, 401, NULL, rq->authorization ? "invalid bearer token"
                                                               : "missing bearer token (Authorization: Bearer TOKEN)");
        rp->www_authenticate = true;
        return true;
    }
    if (t->ep == EP_NONE) {
        bgw_admin_reply_error(rp, 404, NULL, "no such endpoint");
        return true;
    }
    if (!method_allowed(t->ep, rq->method)) {
        snprintf(msg, sizeof msg, "method %.32s not allowed here (allowed: %s)", rq->method, allowed(t->ep));
        bgw_admin_reply_error(rp, 405, NULL, msg);
        rp->allow = allowed(t->ep);
        return true;
    }
    if (has_body(rq->method) && !is_json_type(rq->content_type)) {
        bgw_admin_reply_error(rp, 415, NULL, "the body must be application/json");
        return true;
    }
    if (declared_len > (long long)BGW_ADMIN_BODY_MAX) {
        snprintf(msg, sizeof msg, "the body is larger than %u bytes", BGW_ADMIN_BODY_MAX);
        bgw_admin_reply_error(rp, 413, NULL, msg);
        return true;
    }
    return false;
}

bool bgw_admin_api_precheck(struct bgw_admin_api *api, const struct bgw_admin_request *rq, long long declared_len,
                            struct bgw_admin_reply *rp)
{
    struct target t;

    resolve(rq->path, &t);
    reply_reset(rp);
    return refuse(api, rq, &t, declared_len, rp);
}

/* ---- handlers ---- */

static void render_metrics(struct bgw_admin_api *api, struct bgw_admin_reply *rp)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = bgw_strbuf_printf(&buf, &len, &cap,
                               "# HELP bgw_admin_requests_total Admin API requests answered, by method and status.\n"
                               "# TYPE bgw_admin_requests_total counter\n");

    pthread_mutex_lock(&api->lock);
    for (unsigned m = 0; rc == 0 && m < N_METHODS; m++)
        for (unsigned c = 0; rc == 0 && c < api->n_codes; c++)
            if (api->counts[m][c])
                rc = bgw_strbuf_printf(&buf, &len, &cap, "bgw_admin_requests_total{method=\"%s\",code=\"%u\"} %llu\n",
                                       method_labels[m], api->codes[c], api->counts[m][c]);
    pthread_mutex_unlock(&api->lock);
    if (rc == 0)
        rc = bgw_strbuf_printf(&buf, &len, &cap,
                               "# HELP bgw_control_config_version The store's config version.\n"
                               "# TYPE bgw_control_config_version gauge\nbgw_control_config_version %" PRIu64 "\n",
                               bgw_store_version(api->store));
    if (rc == 0 && api->xds)
        rc = bgw_xds_server_render_metrics(api->xds, &buf, &len, &cap);
    for (unsigned i = 0; rc == 0 && i < api->n_metrics; i++)
        rc = api->metrics[i].fn(api->metrics[i].arg, &buf, &len, &cap);
    if (rc == 0)
        rc = bgw_cp_metrics_render(&buf, &len, &cap);
    if (rc == 0)
        rc = bgw_procstat_render(&buf, &len, &cap);
    if (rc < 0) {
        free(buf);
        reply_text(rp, 500, "text/plain", "out of memory\n");
        return;
    }
    rp->status = 200;
    rp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    rp->body = buf;
    rp->len = len;
}

/* Parse the body as a JSON value; false with rp filled (400) when it is not one. */
static bool parse_body(const struct bgw_admin_request *rq, json_t **out, struct bgw_admin_reply *rp)
{
    json_error_t jerr;
    char msg[300];

    *out = json_loadb(rq->body ? rq->body : "", rq->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (*out)
        return true;
    snprintf(msg, sizeof msg, "invalid JSON: line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    bgw_admin_reply_error(rp, 400, "", msg);
    return false;
}

static void set_etag(struct bgw_admin_reply *rp, const json_t *obj)
{
    snprintf(rp->etag, sizeof rp->etag, "\"%s\"", json_string_value(json_object_get(obj, "revision")));
}

static void handle_object(struct bgw_admin_api *api, const struct bgw_admin_request *rq, const struct target *t,
                          struct bgw_admin_reply *rp)
{
    struct bgw_store_error err;
    const char *kname = bgw_store_kind_name(t->kind);
    char msg[400];

    if (t->name_too_long || !bgw_store_name_valid(t->name)) {
        snprintf(msg, sizeof msg, "name: \"%.40s%s\" is not a valid name (1-%d characters of A-Za-z0-9._-)",
                 t->name, strlen(t->name) > 40 ? "..." : "", BGW_NAME_MAX);
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        bgw_admin_reply_error(rp, 400, "name", msg);
        return;
    }
    if (strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0) {
        json_t *obj = bgw_store_get(api->store, t->kind, t->name, NULL);
        if (!obj) {
            snprintf(msg, sizeof msg, "%s/%s not found", kname, t->name);
            bgw_admin_reply_error(rp, 404, NULL, msg);
            return;
        }
        set_etag(rp, obj);
        reply_json(rp, 200, obj);
        return;
    }
    if (strcmp(rq->method, "DELETE") == 0) {
        if (bgw_store_delete(api->store, t->kind, t->name, rq->if_match, &err) < 0) {
            reply_store_error(rp, &err);
            return;
        }
        rp->status = 204;
        return;
    }
    /* PUT */
    json_t *body, *obj = NULL;
    bool created = false;
    if (!parse_body(rq, &body, rp))
        return;
    int rc = bgw_store_put(api->store, t->kind, t->name, body, rq->if_match, &created, &obj, &err);
    json_decref(body);
    if (rc < 0) {
        reply_store_error(rp, &err);
        return;
    }
    set_etag(rp, obj);
    if (created)
        snprintf(rp->location, sizeof rp->location, "/v1/%s/%s", kname, t->name);
    reply_json(rp, created ? 201 : 200, obj);
}

void bgw_admin_api_handle(struct bgw_admin_api *api, const struct bgw_admin_request *rq,
                          struct bgw_admin_reply *rp)
{
    struct bgw_store_error err;
    struct target t;
    json_t *doc;
    char msg[300];

    resolve(rq->path, &t);
    reply_reset(rp);
    if (refuse(api, rq, &t, (long long)rq->body_len, rp))
        return;
    switch (t.ep) {
    case EP_HEALTHZ:
        reply_text(rp, 200, "text/plain", "ok\n");
        return;
    case EP_READYZ:
        reply_text(rp, 200, "text/plain", "ready\n");
        return;
    case EP_METRICS:
        render_metrics(api, rp);
        return;
    case EP_CONFIG:
        doc = api->builder ? bgw_builder_snapshot(api->builder) : NULL;
        reply_json(rp, 200, doc ? doc : bgw_store_snapshot(api->store));
        return;
    case EP_DATAPLANES:
        doc = api->xds ? bgw_xds_server_dataplanes(api->xds) : json_array();
        reply_json(rp, 200, doc ? json_pack("{s:o}", "items", doc) : NULL);
        return;
    case EP_LIST:
        reply_json(rp, 200, bgw_store_list(api->store, t.kind));
        return;
    case EP_ENDPOINTS:
        if (t.name_too_long || !bgw_store_name_valid(t.name)) {
            bgw_admin_reply_error(rp, 400, "name", "name: not a valid name (1-128 characters of A-Za-z0-9._-)");
            return;
        }
        doc = api->builder ? bgw_builder_endpoints(api->builder, t.name) : bgw_store_endpoints(api->store, t.name);
        if (!doc) {
            snprintf(msg, sizeof msg, "services/%s not found", t.name);
            bgw_admin_reply_error(rp, 404, NULL, msg);
            return;
        }
        reply_json(rp, 200, doc);
        return;
    case EP_OBJECT:
        handle_object(api, rq, &t, rp);
        return;
    case EP_APPLY:
        if (!parse_body(rq, &doc, rp))
            return;
        json_t *summary = NULL;
        int rc = bgw_store_apply(api->store, doc, &summary, &err);
        json_decref(doc);
        if (rc < 0)
            reply_store_error(rp, &err);
        else
            reply_json(rp, 200, summary);
        return;
    case EP_NONE:
        break;
    }
    bgw_admin_reply_error(rp, 404, NULL, "no such endpoint");
}
