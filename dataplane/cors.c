/* cors.c - CORS policies: preflight answers and response headers (see cors.h). */
#include "cors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct bgw_cors_policy {
    const struct bgw_cors *cfg;
    bool any_origin, any_method, any_header;
    char *methods;          /* "GET, POST" (NULL: none listed) */
    char *headers;          /* "authorization, content-type" (NULL: none listed) */
    char *expose;           /* NULL: none */
    size_t max_origin;      /* longest listed origin */
};

static char *join(char **v, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++) len += strlen(v[i]) + 2;
    char *s = malloc(len), *p = s;
    if (!s) return NULL;
    *p = 0;
    for (size_t i = 0; i < n; i++) p += sprintf(p, "%s%s", i ? ", " : "", v[i]);
    return s;
}

static bool has(char **v, size_t n, const char *x)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], x) == 0) return true;
    return false;
}

struct bgw_cors_policy *bgw_cors_compile(const struct bgw_cors *cfg, char *err, size_t errlen)
{
    struct bgw_cors_policy *p = calloc(1, sizeof *p);
    if (!p) goto oom;
    p->cfg = cfg;
    p->any_origin = has(cfg->allow_origins, cfg->n_allow_origins, "*");
    p->any_method = has(cfg->allow_methods, cfg->n_allow_methods, "*");
    p->any_header = has(cfg->allow_headers, cfg->n_allow_headers, "*");
    for (size_t i = 0; i < cfg->n_allow_origins; i++)
        if (strlen(cfg->allow_origins[i]) > p->max_origin) p->max_origin = strlen(cfg->allow_origins[i]);
    if (cfg->n_allow_methods && !p->any_method && !(p->methods = join(cfg->allow_methods, cfg->n_allow_methods)))
        goto oom;
    if (cfg->n_allow_headers && !p->any_header && !(p->headers = join(cfg->allow_headers, cfg->n_allow_headers)))
        goto oom;
    if (cfg->n_expose_headers && !(p->expose = join(cfg->expose_headers, cfg->n_expose_headers))) goto oom;
    return p;
oom:
    snprintf(err, errlen, "out of memory");
    bgw_cors_free(p);
    return NULL;
}

void bgw_cors_free(struct bgw_cors_policy *p)
{
    if (!p) return;
    free(p->methods);
    free(p->headers);
    free(p->expose);
    free(p);
}

/* The listed origin equal (case-insensitively: the list is lower-cased) to o, "*", or NULL. */
static const char *match_origin(const struct bgw_cors_policy *p, const char *o, size_t len)
{
    const struct bgw_cors *cfg = p->cfg;
    for (size_t i = 0; i < cfg->n_allow_origins; i++) {
        const char *a = cfg->allow_origins[i];
        if (strlen(a) == len && strncasecmp(a, o, len) == 0) return a;
    }
    if (p->any_origin && !cfg->allow_credentials) return "*";
    return NULL;
}

static bool method_allowed(const struct bgw_cors_policy *p, const char *m, size_t len)
{
    static const char *const safelisted[] = {"GET", "HEAD", "POST"};
    if (p->any_method) return true;
    for (size_t i = 0; i < 3; i++)
        if (len == strlen(safelisted[i]) && memcmp(m, safelisted[i], len) == 0) return true;
    for (size_t i = 0; i < p->cfg->n_allow_methods; i++) {
        const char *a = p->cfg->allow_methods[i];
        if (strlen(a) == len && memcmp(a, m, len) == 0) return true;
    }
    return false;
}

static bool header_allowed(const struct bgw_cors_policy *p, const char *n, size_t len)
{
    static const char *const safelisted[] = {"accept", "accept-language", "content-language"};
    if (p->any_header) return true;
    for (size_t i = 0; i < 3; i++)
        if (len == strlen(safelisted[i]) && strncasecmp(n, safelisted[i], len) == 0) return true;
    for (size_t i = 0; i < p->cfg->n_allow_headers; i++) {
        const char *a = p->cfg->allow_headers[i];
        if (strlen(a) == len && strncasecmp(a, n, len) == 0) return true;
    }
    return false;
}

/* Every name of a comma-separated Access-Control-Request-Headers value is allowed. */
static bool headers_allowed(const struct bgw_cors_policy *p, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == ',')) i++;
        size_t start = i;
        while (i < len && s[i] != ',' && s[i] != ' ' && s[i] != '\t') i++;
        if (i > start && !header_allowed(p, s + start, i - start)) return false;
    }
    return true;
}

static int find(const struct bgw_http_head *h, const char *name)
{
    return bgw_http_head_find(h, name, strlen(name));
}

enum bgw_cors_action bgw_cors_request(const struct bgw_cors_policy *p, const struct bgw_http_head *h,
                                      struct bgw_cors_verdict *v)
{
    v->policy = p;
    v->allow_origin = NULL;
    if (!p) return BGW_CORS_CONTINUE;
    int oi = find(h, "origin");
    if (oi >= 0) v->allow_origin = match_origin(p, h->headers[oi].value, h->headers[oi].value_len);
    int mi = find(h, "access-control-request-method");
    bool preflight = oi >= 0 && mi >= 0 && h->method_len == 7 && memcmp(h->method, "OPTIONS", 7) == 0;
    if (!preflight) return BGW_CORS_CONTINUE;
    int hi = find(h, "access-control-request-headers");
    if (!v->allow_origin || h->headers[mi].value_len == 0 ||
        !method_allowed(p, h->headers[mi].value, h->headers[mi].value_len) ||
        (hi >= 0 && !headers_allowed(p, h->headers[hi].value, h->headers[hi].value_len))) {
        v->allow_origin = NULL;                  /* the 403 grants nothing */
        return BGW_CORS_PREFLIGHT_DENIED;
    }
    return BGW_CORS_PREFLIGHT_OK;
}

/* Appends "name: value\r\n" when it fits; returns false when it does not. */
static bool put(char *buf, size_t cap, size_t *n, const char *name, const char *value, size_t vlen)
{
    size_t nl = strlen(name);
    if (*n + nl + 2 + vlen + 2 > cap) return false;
    memcpy(buf + *n, name, nl);
    memcpy(buf + *n + nl, ": ", 2);
    memcpy(buf + *n + nl + 2, value, vlen);
    memcpy(buf + *n + nl + 2 + vlen, "\r\n", 2);
    *n += nl + 2 + vlen + 2;
    return true;
}

#define PUTS(name, value) put(buf, cap, &n, name, value, strlen(value))

size_t bgw_cors_preflight_headers(const struct bgw_cors_verdict *v, const struct bgw_http_head *h, char *buf,
                                  size_t cap)
{
    const struct bgw_cors_policy *p = v->policy;
    size_t n = 0;
    if (!p || !v->allow_origin) return 0;
    int mi = find(h, "access-control-request-method"), hi = find(h, "access-control-request-headers");
    bool ok = PUTS("Access-Control-Allow-Origin", v->allow_origin);
    if (p->methods) ok = ok && PUTS("Access-Control-Allow-Methods", p->methods);
    else if (mi >= 0) ok = ok && put(buf, cap, &n, "Access-Control-Allow-Methods", h->headers[mi].value,
                                     h->headers[mi].value_len);
    if (p->any_header && hi >= 0)
        ok = ok && put(buf, cap, &n, "Access-Control-Allow-Headers", h->headers[hi].value, h->headers[hi].value_len);
    else if (p->headers)
        ok = ok && PUTS("Access-Control-Allow-Headers", p->headers);
    if (p->cfg->max_age_s) {
        char num[16];
        snprintf(num, sizeof num, "%u", p->cfg->max_age_s);
        ok = ok && PUTS("Access-Control-Max-Age", num);
    }
    if (p->cfg->allow_credentials) ok = ok && PUTS("Access-Control-Allow-Credentials", "true");
    ok = ok && PUTS("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
    return ok ? n : 0;
}

size_t bgw_cors_response_headers(const struct bgw_cors_verdict *v, char *buf, size_t cap)
{
    const struct bgw_cors_policy *p = v->policy;
    size_t n = 0;
    if (!p) return 0;
    bool ok = true;
    if (v->allow_origin) {
        ok = PUTS("Access-Control-Allow-Origin", v->allow_origin);
        if (p->cfg->allow_credentials) ok = ok && PUTS("Access-Control-Allow-Credentials", "true");
        if (p->expose) ok = ok && PUTS("Access-Control-Expose-Headers", p->expose);
    }
    ok = ok && PUTS("Vary", "Origin");
    return ok ? n : 0;
}

size_t bgw_cors_response_headers_max(const struct bgw_cors_verdict *v)
{
    const struct bgw_cors_policy *p = v->policy;
    if (!p) return 0;
    return 160 + p->max_origin + (p->expose ? strlen(p->expose) : 0);
}

bool bgw_cors_owns_header(const char *name, size_t len)
{
    static const char *const owned[] = {"access-control-allow-origin", "access-control-allow-credentials",
                                        "access-control-expose-headers"};
    for (size_t i = 0; i < 3; i++)
        if (len == strlen(owned[i]) && strncasecmp(name, owned[i], len) == 0) return true;
    return false;
}
