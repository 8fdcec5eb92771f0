/*
 * config_route.c - one entry of routes[]: what requests it matches (path, methods, hosts, headers), the
 * service it sends them to, and its per-route policies (rewrite, timeout, retry, CORS, body limit, and the
 * names of its rate limit and auth policy).
 *
 * References to services, rate limits and auth policies are only read here; config.c resolves them once
 * the whole document is known. An absent retry object leaves attempts and on at 0 (no retries).
 */
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

static const char *const route_fields[] = {
    "name", "match", "service", "rewrite_prefix", "timeout_ms", "retry", "rate_limit", "auth", "cors",
    "max_body_bytes", NULL,
};
static const char *const match_fields[] = {"path_prefix", "path_exact", "methods", "hosts", "headers", NULL};
static const char *const header_fields[] = {"name", "exact", NULL};
static const char *const retry_fields[] = {"attempts", "on", "per_try_timeout_ms", NULL};
static const char *const cors_fields[] = {
    "allow_origins", "allow_methods", "allow_headers", "expose_headers", "max_age_s", "allow_credentials", NULL,
};

#define DEFAULT_RETRY_ON (BGW_RETRY_CONNECT_FAILURE | BGW_RETRY_RESET | BGW_RETRY_5XX)

/* ---- match ---- */

static int parse_header_match(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_header_match *h)
{
    if (!json_is_object(v))
        return bgw__fail(c, "must be an object");
    if (bgw__check_fields(c, v, header_fields) < 0 ||
        bgw__read_string(c, v, "name", BGW__REQUIRED | BGW__LOWER, bgw__check_header_name, &h->name) < 0 ||
        bgw__read_string(c, v, "exact", BGW__REQUIRED, NULL, &h->exact) < 0)
        return -1;
    return 0;
}

static int parse_header_matches(struct bgw__cfg_ctx *c, const json_t *m, struct bgw_match *out)
{
    const json_t *arr;
    size_t n, mark;
    int rc;

    if (bgw__read_array(c, m, "headers", 0, &arr) < 0)
        return -1;
    n = json_array_size(arr);   /* 0 when absent */
    if (bgw__calloc(c, n, sizeof(*out->headers), (void **)&out->headers) < 0)
        return -1;
    out->n_headers = n;
    mark = bgw__path_field(c, "headers");
    rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t imark = bgw__path_index(c, i);

        rc = parse_header_match(c, json_array_get(arr, i), &out->headers[i]);
        bgw__path_restore(c, imark);
    }
    bgw__path_restore(c, mark);
    return rc;
}

/* Exactly one of path_prefix / path_exact, in normalised form. */
static int parse_match_path(struct bgw__cfg_ctx *c, const json_t *m, struct bgw_match *out)
{
    bool prefix = json_object_get(m, "path_prefix") != NULL;
    bool exact = json_object_get(m, "path_exact") != NULL;

    if (prefix && exact)
        return bgw__fail(c, "path_prefix and path_exact are mutually exclusive");
    if (!prefix && !exact)
        return bgw__fail(c, "one of path_prefix or path_exact is required");
    if (prefix)
        return bgw__read_string(c, m, "path_prefix", 0, bgw__check_path, &out->path_prefix);
    return bgw__read_string(c, m, "path_exact", 0, bgw__check_path, &out->path_exact);
}

static int parse_match(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_match *out)
{
    const json_t *m;
    size_t mark;
    int rc;

    if (bgw__read_object(c, v, "match", BGW__REQUIRED, match_fields, &m) < 0)
        return -1;
    mark = bgw__path_field(c, "match");
    rc = parse_match_path(c, m, out);
    if (rc == 0)
        rc = bgw__read_strings(c, m, "methods", BGW__NONEMPTY, bgw__check_method, &out->methods, &out->n_methods);
    if (rc == 0)
        rc = bgw__read_strings(c, m, "hosts", BGW__LOWER, bgw__check_host_pattern, &out->hosts, &out->n_hosts);
    if (rc == 0)
        rc = parse_header_matches(c, m, out);
    bgw__path_restore(c, mark);
    return rc;
}

/* ---- retry ---- */

static const char *check_retry_on(const char *s)
{
    for (size_t i = 0; i < BGW__COUNT(bgw__retry_on_names); i++)
        if (strcmp(s, bgw__retry_on_names[i]) == 0)
            return NULL;
    return "must be one of connect-failure, reset, 5xx or gateway-error";
}

static int read_retry_on(struct bgw__cfg_ctx *c, const json_t *o, uint32_t *bits)
{
    char **names = NULL;
    size_t n = 0;

    *bits = DEFAULT_RETRY_ON;
    if (bgw__read_strings(c, o, "on", BGW__NONEMPTY, check_retry_on, &names, &n) < 0)
        return -1;
    if (!names)
        return 0;
    *bits = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t b = 0; b < BGW__COUNT(bgw__retry_on_names); b++)
            if (strcmp(names[i], bgw__retry_on_names[b]) == 0)
                *bits |= 1u << b;
    bgw__free_strings(names, n);
    return 0;
}

static int parse_retry(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_route *r)
{
    const json_t *o;
    size_t mark;
    int rc;

    if (bgw__read_object(c, v, "retry", 0, retry_fields, &o) < 0)
        return -1;
    r->has_retry = o != NULL;
    if (!o)
        return 0;
    mark = bgw__path_field(c, "retry");
    rc = bgw__read_u32(c, o, "attempts", BGW_DEFAULT_RETRY_ATTEMPTS, 0, UINT32_MAX, &r->retry.attempts);
    if (rc == 0)
        rc = read_retry_on(c, o, &r->retry.on);
    if (rc == 0)
        rc = bgw__read_u32(c, o, "per_try_timeout_ms", 0, 0, UINT32_MAX, &r->retry.per_try_timeout_ms);
    bgw__path_restore(c, mark);
    return rc;
}

/* ---- cors ---- */

static bool has_star(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], "*") == 0)
            return true;
    return false;
}

static int read_cors(struct bgw__cfg_ctx *c, const json_t *o, struct bgw_cors *cors)
{
    if (bgw__read_strings(c, o, "allow_origins", BGW__REQUIRED | BGW__NONEMPTY | BGW__LOWER, bgw__check_origin,
                          &cors->allow_origins, &cors->n_allow_origins) < 0 ||
        bgw__read_strings(c, o, "allow_methods", 0, bgw__check_method_or_star, &cors->allow_methods,
                          &cors->n_allow_methods) < 0 ||
        bgw__read_strings(c, o, "allow_headers", 0, bgw__check_header_or_star, &cors->allow_headers,
                          &cors->n_allow_headers) < 0 ||
        bgw__read_strings(c, o, "expose_headers", 0, bgw__check_header_or_star, &cors->expose_headers,
                          &cors->n_expose_headers) < 0 ||
        bgw__read_u32(c, o, "max_age_s", 0, 0, UINT32_MAX, &cors->max_age_s) < 0 ||
        bgw__read_bool(c, o, "allow_credentials", false, &cors->allow_credentials) < 0)
        return -1;
    if (cors->allow_credentials && has_star(cors->allow_origins, cors->n_allow_origins))
        return bgw__fail_at(c, "allow_credentials", "must not be true when allow_origins contains \"*\"");
    return 0;
}

static int parse_cors(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_route *r)
{
    const json_t *o;
    size_t mark;
    int rc;

    if (bgw__read_object(c, v, "cors", 0, cors_fields, &o) < 0)
        return -1;
    r->has_cors = o != NULL;
    if (!o)
        return 0;
    mark = bgw__path_field(c, "cors");
    rc = read_cors(c, o, &r->cors);
    bgw__path_restore(c, mark);
    return rc;
}

/* ---- the route ---- */

static int parse_rewrite(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_route *r)
{
    if (json_object_get(v, "rewrite_prefix") && !r->match.path_prefix)
        return bgw__fail_at(c, "rewrite_prefix", "is allowed only with match.path_prefix");
    return bgw__read_string(c, v, "rewrite_prefix", 0, bgw__check_path, &r->rewrite_prefix);
}

int bgw__parse_route(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_route *r)
{
    if (bgw__check_fields(c, v, route_fields) < 0 || bgw__read_name(c, v, &r->name) < 0 ||
        parse_match(c, v, &r->match) < 0 ||
        bgw__read_string(c, v, "service", BGW__REQUIRED, NULL, &r->service) < 0 ||
        parse_rewrite(c, v, r) < 0 ||
        bgw__read_u32(c, v, "timeout_ms", BGW_DEFAULT_ROUTE_TIMEOUT_MS, 0, UINT32_MAX, &r->timeout_ms) < 0 ||
        parse_retry(c, v, r) < 0 ||
        bgw__read_string(c, v, "rate_limit", 0, NULL, &r->rate_limit) < 0 ||
        bgw__read_string(c, v, "auth", 0, NULL, &r->auth) < 0 ||
        parse_cors(c, v, r) < 0 ||
        bgw__read_u64(c, v, "max_body_bytes", 0, 0, 0, UINT64_MAX, &r->max_body_bytes,
                      &r->has_max_body_bytes) < 0)
        return -1;
    return 0;
}

static void match_free(struct bgw_match *m)
{
    free(m->path_prefix);
    free(m->path_exact);
    bgw__free_strings(m->methods, m->n_methods);
    bgw__free_strings(m->hosts, m->n_hosts);
    for (size_t i = 0; i < m->n_headers; i++) {
        free(m->headers[i].name);
        free(m->headers[i].exact);
    }
    free(m->headers);
}

static void cors_free(struct bgw_cors *cors)
{
    bgw__free_strings(cors->allow_origins, cors->n_allow_origins);
    bgw__free_strings(cors->allow_methods, cors->n_allow_methods);
    bgw__free_strings(cors->allow_headers, cors->n_allow_headers);
    bgw__free_strings(cors->expose_headers, cors->n_expose_headers);
}

void bgw__route_free(struct bgw_route *r)
{
    free(r->name);
    match_free(&r->match);
    free(r->service);
    free(r->rewrite_prefix);
    free(r->rate_limit);
    free(r->auth);
    cors_free(&r->cors);
}
