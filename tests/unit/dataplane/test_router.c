/*
 * test_router.c - unit tests for the compiled route table (dataplane/router.h). Configs are built by hand
 * (no parser): each test declares its routes as a small table and probes the router with requests.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

/* One route as a test writes it. Lists are NULL-terminated; headers are "name", "value" pairs. */
struct spec {
    const char *prefix;
    const char *exact;
    const char *methods[4];
    const char *hosts[4];
    const char *headers[5];
};

static size_t count(const char *const *v, size_t max)
{
    size_t n = 0;
    while (n < max && v[n])
        n++;
    return n;
}

static char **dup_list(const char *const *v, size_t n)
{
    if (n == 0)
        return NULL;
    char **out = calloc(n, sizeof *out);
    for (size_t i = 0; i < n; i++)
        out[i] = strdup(v[i]);
    return out;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static struct bgw_config *make_config(const struct spec *specs, size_t n)
{
    struct bgw_config *cfg = calloc(1, sizeof *cfg);
    cfg->routes = calloc(n ? n : 1, sizeof *cfg->routes);
    cfg->n_routes = n;
    for (size_t i = 0; i < n; i++) {
        struct bgw_route *rt = &cfg->routes[i];
        struct bgw_match *m = &rt->match;
        char name[32];
        snprintf(name, sizeof name, "r%zu", i);
        rt->name = strdup(name);
        m->path_prefix = specs[i].prefix ? strdup(specs[i].prefix) : NULL;
        m->path_exact = specs[i].exact ? strdup(specs[i].exact) : NULL;
        m->n_methods = count(specs[i].methods, 4);
        m->methods = dup_list(specs[i].methods, m->n_methods);
        m->n_hosts = count(specs[i].hosts, 4);
        m->hosts = dup_list(specs[i].hosts, m->n_hosts);
        m->n_headers = count(specs[i].headers, 5) / 2;
        m->headers = m->n_headers ? calloc(m->n_headers, sizeof *m->headers) : NULL;
        for (size_t k = 0; k < m->n_headers; k++) {
            m->headers[k].name = strdup(specs[i].headers[2 * k]);
            m->headers[k].exact = strdup(specs[i].headers[2 * k + 1]);
        }
    }
    return cfg;
}

static void free_config(struct bgw_config *cfg)
{
    for (size_t i = 0; i < cfg->n_routes; i++) {
        struct bgw_match *m = &cfg->routes[i].match;
        free(cfg->routes[i].name);
        free(m->path_prefix);
        free(m->path_exact);
        free_list(m->methods, m->n_methods);
        free_list(m->hosts, m->n_hosts);
        for (size_t k = 0; k < m->n_headers; k++) {
            free(m->headers[k].name);
            free(m->headers[k].exact);
        }
        free(m->headers);
    }
    free(cfg->routes);
    free(cfg);
}

/* Request headers for the header() callback: "name", "value" pairs, NULL-terminated. */
struct req_headers {
    const char *const *kv;
};

static const char *get_header(void *ctx, const char *name, size_t name_len, size_t *value_len)
{
    const struct req_headers *h = ctx;
    for (size_t i = 0; h->kv && h->kv[i]; i += 2) {
        if (strlen(h->kv[i]) == name_len && strncasecmp(h->kv[i], name, name_len) == 0) {
            *value_len = strlen(h->kv[i + 1]);
            return h->kv[i + 1];
        }
    }
    return NULL;
}

/* Match method, host (NULL: none) and path, with optional headers. */
static long match_h(const struct bgw_router *r, const char *method, const char *host, const char *path,
                    const char *const *headers)
{
    struct req_headers h = { headers };
    struct bgw_route_input in = {
        .path = path, .path_len = strlen(path),
        .method = method, .method_len = strlen(method),
        .host = host, .host_len = host ? strlen(host) : 0,
        .header = get_header, .ctx = &h,
    };
    return bgw_router_match(r, &in);
}

static long match(const struct bgw_router *r, const char *method, const char *host, const char *path)
{
    return match_h(r, method, host, path, NULL);
}

static struct bgw_config *g_cfg;

static struct bgw_router *build(const struct spec *specs, size_t n)
{
    char err[256] = "";
    g_cfg = make_config(specs, n);
    struct bgw_router *r = bgw_router_build(g_cfg, err, sizeof err);
    ck_assert_msg(r != NULL, "build failed: %s", err);
    return r;
}

static void done(struct bgw_router *r)
{
    bgw_router_free(r);
    free_config(g_cfg);
    g_cfg = NULL;
}

#define BUILD(...) build((const struct spec[]){ __VA_ARGS__ }, \
                         sizeof((const struct spec[]){ __VA_ARGS__ }) / sizeof(struct spec))

START_TEST(test_empty)
{
    struct bgw_config cfg = { 0 };
    char err[64];
    struct bgw_router *r = bgw_router_build(&cfg, err, sizeof err);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(match(r, "GET", NULL, "/"), -1);
    bgw_router_free(r);
    bgw_router_free(NULL);
}
END_TEST

START_TEST(test_no_match)
{
    struct bgw_router *r = BUILD({ .prefix = "/api" }, { .exact = "/health" });
    ck_assert_int_eq(match(r, "GET", NULL, "/other"), -1);
    ck_assert_int_eq(match(r, "GET", NULL, "/"), -1);
    ck_assert_int_eq(match(r, "GET", NULL, "/health/x"), -1);
    ck_assert_int_eq(match(r, "GET", NULL, "/healt"), -1);
    ck_assert_int_eq(match(r, "GET", NULL, "/ap"), -1);
    done(r);
}
END_TEST

START_TEST(test_root_catches_all)
{
    struct bgw_router *r = BUILD({ .prefix = "/" });
    ck_assert_int_eq(match(r, "GET", NULL, "/"), 0);
    ck_assert_int_eq(match(r, "GET", NULL, "/a"), 0);
    ck_assert_int_eq(match(r, "DELETE", "x", "/a/b/c/"), 0);
    done(r);
}
END_TEST

START_TEST(test_segment_boundary)
{
    struct bgw_router *r = BUILD({ .prefix = "/api" });
    ck_assert_int_eq(match(r, "GET", NULL, "/api"), 0);
    ck_assert_int_eq(match(r, "GET", NULL, "/api/"), 0);
    ck_assert_int_eq(match(r, "GET", NULL, "/api/x"), 0);
    ck_assert_int_eq(match(r, "GET", NULL, "/api/x/y/"), 0);
    ck_assert_int_eq(match(r, "GET", NULL, "/apix"), -1);
    ck_assert_int_eq(match(r, "GET", NULL, "/apix/y"), -1);
    ck_assert_int_eq(match(r, "GET", NULL, "/ap"), -1);
    ck_assert_int_eq(match(r, "GET", NULL, "/x/api"), -1);
    done(r);
}
END_TEST

START_TEST(test_trailing_slash_prefix)
{
    struct bgw_router *r = BUILD({ .prefix = "/api/" });
    ck_assert_int_eq(match(r, "GET", NULL, "/api"), -1);
    ck_assert_int_eq(match(r, "GET", NULL, "/api/"), 0);
    ck_assert_int_eq(match(r, "GET", NULL, "/api/x"), 0);
    ck_assert_int_eq(match(r, "GET", NULL, "/apix"), -1);
    done(r);
    /* "/api/" is longer than "/api", so more specific for what both match */
    r = BUILD({ .prefix = "/api" }, { .prefix = "/api/" });
    ck_assert_int_eq(match(r, "GET", NULL, "/api"), 0);
    ck_assert_int_eq(match(r, "GET", NULL, "/api/"), 1);
    ck_assert_int_eq(match(r, "GET", NULL, "/api/x"), 1);
    done(r);
}
END_TEST

START_TEST(test_exact)
{
    struct bgw_router *r = BUILD({ .exact = "/a/b" }, { .exact = "/a/b/" }, { .exact = "/" });
    ck_assert_int_eq(match(r, "GET", NULL, "/a/b"), 0);
    ck_assert_int_eq(match(r, "GET", NULL, "/a/b/"), 1);
    ck_assert_int_eq(match(r, "GET", NULL, "/"), 2);
    ck_assert_int_eq(match(r, "GET", NULL, "/a/b/c"), -1);
    ck_assert_int_eq(match(r, "GET", NULL, "/a"), -1);
    done(r);
}
END_TEST

START_TEST(test_exact_beats_longer_prefix)
{
    /* the exact route is shorter and has fewer conditions, and is declared last: it still wins */
    struct bgw_router *r = BUILD({ .prefix = "/a/b/c", .methods = { "GET" }, .hosts = { "h" } },
                                 { .prefix = "/a" },
                                 { .exact = "/a/b/c" });
    ck_assert_int_eq(match(r, "GET", "h", "/a/b/c"), 2);
    ck_assert_int_eq(match(r, "GET", "h", "/a/b/c/"), 0);
    ck_assert_int_eq(match(r, "POST", "h", "/a/b/c/d"), 1);
    done(r);
    /* an exact route whose conditions fail falls through to prefixes */
    r = BUILD({ .exact = "/a", .methods = { "POST" } }, { .prefix = "/a" });
    ck_assert_int_eq(match(r, "POST", NULL, "/a"), 0);
    ck_assert_int_eq(match(r, "GET", NULL, "/a"), 1);
    done(r);
}
END_TEST

START_TEST(test_longer_prefix_beats_shorter_with_more_conditions)
{
    struct bgw_router *r = BUILD(
        { .prefix = "/api", .methods = { "GET" }, .hosts = { "x.com" }, .headers = { "x-a", "1" } },
        { .prefix = "/api/v1" },
        { .prefix = "/" , .methods = { "GET" }, .hosts = { "x.com" } });
    const char *hdr[] = { "x-a", "1", NULL };
    ck_assert_int_eq(match_h(r, "GET", "x.com", "/api/v1/users", hdr), 1);
    ck_assert_int_eq(match_h(r, "GET", "x.com", "/api/v2", hdr), 0);
    ck_assert_int_eq(match_h(r, "GET", "x.com", "/api/v2", NULL), 2);
    ck_assert_int_eq(match_h(r, "GET", "y.com", "/api/v2", hdr), -1);
    done(r);
}
END_TEST

START_TEST(test_more_conditions_beat_fewer)
{
    struct bgw_router *r = BUILD({ .prefix = "/p" },
                                 { .prefix = "/p", .methods = { "GET" } },
                                 { .prefix = "/p", .methods = { "GET" }, .headers = { "x-canary", "1" } },
                                 { .prefix = "/p", .hosts = { "a.com" } });
    const char *canary[] = { "X-Canary", "1", NULL };
    const char *other[] = { "x-canary", "2", NULL };
    ck_assert_int_eq(match_h(r, "GET", "b.com", "/p/x", canary), 2);
    ck_assert_int_eq(match_h(r, "GET", "b.com", "/p/x", other), 1);
    /* 1 and 3 both have one condition: document order decides */
    ck_assert_int_eq(match_h(r, "GET", "a.com", "/p/x", other), 1);
    ck_assert_int_eq(match_h(r, "POST", "a.com", "/p/x", other), 3);
    ck_assert_int_eq(match_h(r, "POST", "b.com", "/p", NULL), 0);
    done(r);
    /* the number of values within a list does not count */
    r = BUILD({ .prefix = "/p", .methods = { "GET", "POST", "PUT" } },
              { .prefix = "/p", .methods = { "GET" } });
    ck_assert_int_eq(match(r, "GET", NULL, "/p"), 0);
    done(r);
}
END_TEST

START_TEST(test_document_order)
{
    struct bgw_router *r = BUILD({ .prefix = "/q", .methods = { "GET" } },
                                 { .prefix = "/q", .hosts = { "h" } },
                                 { .prefix = "/q", .methods = { "GET" } },
                                 { .exact = "/q" }, { .exact = "/q" });
    ck_assert_int_eq(match(r, "GET", "h", "/q/1"), 0);
    ck_assert_int_eq(match(r, "PUT", "h", "/q/1"), 1);
    ck_assert_int_eq(match(r, "GET", "h", "/q"), 3);
    done(r);
}
END_TEST

START_TEST(test_methods)
{
    struct bgw_router *r = BUILD({ .prefix = "/m", .methods = { "GET", "HEAD" } },
                                 { .prefix = "/m", .methods = { "POST" } });
    ck_assert_int_eq(match(r, "GET", NULL, "/m"), 0);
    ck_assert_int_eq(match(r, "HEAD", NULL, "/m"), 0);
    ck_assert_int_eq(match(r, "POST", NULL, "/m"), 1);
    ck_assert_int_eq(match(r, "PUT", NULL, "/m"), -1);
    ck_assert_int_eq(match(r, "get", NULL, "/m"), -1);      /* methods compare exactly */
    ck_assert_int_eq(match(r, "GETX", NULL, "/m"), -1);
    ck_assert_int_eq(match(r, "GE", NULL, "/m"), -1);
    done(r);
}
END_TEST

START_TEST(test_hosts)
{
    struct bgw_router *r = BUILD({ .prefix = "/", .hosts = { "api.example.com" } },
                                 { .prefix = "/", .hosts = { "*.example.com" } },
                                 { .prefix = "/", .hosts = { "::1", "127.0.0.1" } },
                                 { .prefix = "/", .hosts = { "[fe80::2]" } });
    ck_assert_int_eq(match(r, "GET", "api.example.com", "/"), 0);
    ck_assert_int_eq(match(r, "GET", "API.Example.COM", "/"), 0);
    ck_assert_int_eq(match(r, "GET", "api.example.com:8080", "/"), 0);
    ck_assert_int_eq(match(r, "GET", "api.example.com.", "/"), 0);
    ck_assert_int_eq(match(r, "GET", "a.example.com", "/"), 1);
    ck_assert_int_eq(match(r, "GET", "a.b.example.com:443", "/"), 1);
    ck_assert_int_eq(match(r, "GET", "A.B.EXAMPLE.COM", "/"), 1);
    ck_assert_int_eq(match(r, "GET", "example.com", "/"), -1);
    ck_assert_int_eq(match(r, "GET", ".example.com", "/"), -1);
    ck_assert_int_eq(match(r, "GET", "badexample.com", "/"), -1);
    ck_assert_int_eq(match(r, "GET", "api.example.co", "/"), -1);
    ck_assert_int_eq(match(r, "GET", "[::1]:8080", "/"), 2);
    ck_assert_int_eq(match(r, "GET", "[::1]", "/"), 2);
    ck_assert_int_eq(match(r, "GET", "127.0.0.1:80", "/"), 2);
    ck_assert_int_eq(match(r, "GET", "[fe80::2]:1", "/"), 3);
    ck_assert_int_eq(match(r, "GET", "[::2]:8080", "/"), -1);
    ck_assert_int_eq(match(r, "GET", NULL, "/"), -1);        /* no Host: host conditions fail */
    ck_assert_int_eq(match(r, "GET", "", "/"), -1);
    done(r);
}
END_TEST

START_TEST(test_headers)
{
    struct bgw_router *r = BUILD({ .prefix = "/h", .headers = { "x-a", "1", "X-B", "two" } },
                                 { .prefix = "/h", .headers = { "x-a", "1" } },
                                 { .prefix = "/h" });
    const char *both[] = { "x-a", "1", "x-b", "two", NULL };
    const char *a_only[] = { "X-A", "1", NULL };
    const char *b_case[] = { "x-a", "1", "x-b", "TWO", NULL };
    const char *a_wrong[] = { "x-a", "10", "x-b", "two", NULL };
    ck_assert_int_eq(match_h(r, "GET", NULL, "/h", both), 0);
    ck_assert_int_eq(match_h(r, "GET", NULL, "/h", a_only), 1);
    ck_assert_int_eq(match_h(r, "GET", NULL, "/h", b_case), 1);  /* values compare exactly */
    ck_assert_int_eq(match_h(r, "GET", NULL, "/h", a_wrong), 2);
    ck_assert_int_eq(match_h(r, "GET", NULL, "/h", NULL), 2);
    done(r);
}
END_TEST

/* The header callback is asked with lower-case names. */
static const char *strict_header(void *ctx, const char *name, size_t name_len, size_t *value_len)
{
    for (size_t i = 0; i < name_len; i++)
        if (name[i] >= 'A' && name[i] <= 'Z')
            return NULL;
    if (name_len == 7 && memcmp(name, "x-token", 7) == 0) {
        *value_len = 3;
        return "abc";
    }
    return NULL;
}

START_TEST(test_header_names_lowercased)
{
    struct bgw_router *r = BUILD({ .prefix = "/", .headers = { "X-Token", "abc" } });
    struct bgw_route_input in = { .path = "/", .path_len = 1, .method = "GET", .method_len = 3,
                                  .header = strict_header };
    ck_assert_int_eq(bgw_router_match(r, &in), 0);
    in.header = NULL;       /* no callback: header conditions fail */
    ck_assert_int_eq(bgw_router_match(r, &in), -1);
    done(r);
}
END_TEST

START_TEST(test_route_paths_normalised)
{
    /* routes are keyed by their normalised path, as requests are */
    struct bgw_router *r = BUILD({ .prefix = "/a/%7Eb" }, { .exact = "//x//y" }, { .prefix = "/bad%2F" });
    ck_assert_int_eq(match(r, "GET", NULL, "/a/~b/c"), 0);
    ck_assert_int_eq(match(r, "GET", NULL, "/x/y"), 1);
    ck_assert_int_eq(match(r, "GET", NULL, "/bad%2F"), -1);
    done(r);
}
END_TEST

START_TEST(test_deep_path)
{
    /* more segment boundaries than the matcher hashes in one pass: the shallow prefix is still found */
    char path[1024];
    size_t n = 0;
    for (int k = 0; k < 200; k++)
        n += (size_t)snprintf(path + n, sizeof path - n, "/s");
    struct bgw_router *r = BUILD({ .prefix = "/s" }, { .prefix = "/s/s/s/s" }, { .prefix = "/t" });
    ck_assert_int_eq(match(r, "GET", NULL, path), 1);
    done(r);
    r = BUILD({ .prefix = "/s" }, { .prefix = "/s/t" });
    ck_assert_int_eq(match(r, "GET", NULL, path), 0);
    done(r);
    /* a long prefix key: every boundary up to it is probed */
    char key[512];
    memcpy(key, path, 300);
    key[300] = '\0';
    r = BUILD({ .prefix = "/" }, { .prefix = key });
    ck_assert_int_eq(match(r, "GET", NULL, path), 1);
    ck_assert_int_eq(match(r, "GET", NULL, "/s/s"), 0);
    done(r);
    /* a long key that does not match: the short one is found below the deepest boundaries */
    char key2[512];
    memcpy(key2, key, 300);
    memcpy(key2 + 300, "/zz", 4);
    r = BUILD({ .prefix = "/s/s" }, { .prefix = key2 }, { .prefix = "/s/s/s/t" });
    ck_assert_int_eq(match(r, "GET", NULL, path), 0);
    done(r);
}
END_TEST

START_TEST(test_many_routes)
{
    enum { N = 10000 };
    struct spec *specs = calloc(N, sizeof *specs);
    char (*paths)[48] = calloc(N, sizeof *paths);
    for (size_t i = 0; i < N; i++) {
        switch (i % 4) {
        case 0:
            snprintf(paths[i], sizeof paths[i], "/svc%zu/api", i);
            specs[i].prefix = paths[i];
            break;
        case 1:
            snprintf(paths[i], sizeof paths[i], "/svc%zu/item", i);
            specs[i].exact = paths[i];
            break;
        case 2:
            /* same path as the route before-before, with a method: more specific */
            snprintf(paths[i], sizeof paths[i], "/svc%zu/api", i - 2);
            specs[i].prefix = paths[i];
            specs[i].methods[0] = "POST";
            break;
        default:
            snprintf(paths[i], sizeof paths[i], "/svc%zu", i);
            specs[i].prefix = paths[i];
            specs[i].hosts[0] = "*.example.com";
            break;
        }
    }
    struct bgw_router *r = build(specs, N);
    ck_assert_int_eq(match(r, "GET", NULL, "/svc0/api"), 0);
    ck_assert_int_eq(match(r, "POST", NULL, "/svc0/api/x"), 2);
    ck_assert_int_eq(match(r, "GET", NULL, "/svc9996/api/orders/7"), 9996);
    ck_assert_int_eq(match(r, "POST", NULL, "/svc9996/api/orders/7"), 9998);
    ck_assert_int_eq(match(r, "GET", NULL, "/svc5001/item"), 5001);
    ck_assert_int_eq(match(r, "GET", NULL, "/svc5001/item/"), -1);
    ck_assert_int_eq(match(r, "GET", "x.example.com", "/svc9999/anything"), 9999);
    ck_assert_int_eq(match(r, "GET", "example.com", "/svc9999/anything"), -1);
    ck_assert_int_eq(match(r, "GET", NULL, "/svc9997/api"), -1);
    ck_assert_int_eq(match(r, "GET", NULL, "/svc10000/api"), -1);
    ck_assert_int_eq(match(r, "GET", NULL, "/svc0/apix"), -1);
    for (size_t i = 0; i < N; i += 4) {
        char p[64];
        snprintf(p, sizeof p, "/svc%zu/api/x", i);
        ck_assert_int_eq(match(r, "GET", NULL, p), (long)i);
    }
    done(r);
    free(paths);
    free(specs);
}
END_TEST

static Suite *router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("paths");
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_no_match);
    tcase_add_test(tc, test_root_catches_all);
    tcase_add_test(tc, test_segment_boundary);
    tcase_add_test(tc, test_trailing_slash_prefix);
    tcase_add_test(tc, test_exact);
    tcase_add_test(tc, test_route_paths_normalised);
    tcase_add_test(tc, test_deep_path);
    suite_add_tcase(s, tc);
    tc = tcase_create("specificity");
    tcase_add_test(tc, test_exact_beats_longer_prefix);
    tcase_add_test(tc, test_longer_prefix_beats_shorter_with_more_conditions);
    tcase_add_test(tc, test_more_conditions_beat_fewer);
    tcase_add_test(tc, test_document_order);
    suite_add_tcase(s, tc);
    tc = tcase_create("conditions");
    tcase_add_test(tc, test_methods);
    tcase_add_test(tc, test_hosts);
    tcase_add_test(tc, test_headers);
    tcase_add_test(tc, test_header_names_lowercased);
    suite_add_tcase(s, tc);
    tc = tcase_create("scale");
    tcase_add_test(tc, test_many_routes);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(router_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
