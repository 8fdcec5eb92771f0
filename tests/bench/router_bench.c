/*
 * router_bench.c - micro-benchmark of bgw_router_match (dataplane/router.h): the same request against a
 * table of 10 routes and one of 10,000, to show that matching cost does not grow with the route count.
 *
 * Not built by default. From the repository root:
 *   cc -std=gnu11 -O2 -D_GNU_SOURCE -Idataplane -Ishared $(pkg-config --cflags jansson) \
 *      tests/bench/router_bench.c dataplane/router.c dataplane/pathnorm.c -o /tmp/router_bench
 *   /tmp/router_bench [ITERATIONS]        (default 5000000 per measurement)
 *
 * Every route is a path_prefix "/svcI/api" with a methods and a hosts condition, plus an exact route
 * "/svcI/health"; the probes hit the last-declared routes (the worst case for a linear scan), and a
 * path that matches nothing. Prints ns/match for each table size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router.h"

static char *methods_get[] = { "GET", "HEAD" };
static char *hosts_api[] = { "api.example.com", "*.internal.example.com" };

static struct bgw_config *make_config(size_t n_svc)
{
    struct bgw_config *cfg = calloc(1, sizeof *cfg);
    cfg->n_routes = 2 * n_svc;
    cfg->routes = calloc(cfg->n_routes, sizeof *cfg->routes);
    for (size_t i = 0; i < n_svc; i++) {
        char buf[64];
        struct bgw_route *health = &cfg->routes[2 * i], *api = &cfg->routes[2 * i + 1];
        snprintf(buf, sizeof buf, "/svc%zu/health", i);
        health->match.path_exact = strdup(buf);
        snprintf(buf, sizeof buf, "/svc%zu/api", i);
        api->match.path_prefix = strdup(buf);
        api->match.methods = methods_get;
        api->match.n_methods = 2;
        api->match.hosts = hosts_api;
        api->match.n_hosts = 2;
    }
    return cfg;
}

static void free_config(struct bgw_config *cfg)
{
    for (size_t i = 0; i < cfg->n_routes; i++) {
        free(cfg->routes[i].match.path_exact);
        free(cfg->routes[i].match.path_prefix);
    }
    free(cfg->routes);
    free(cfg);
}

static const char *no_headers(void *ctx, const char *name, size_t name_len, size_t *value_len)
{
    return NULL;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ns per bgw_router_match() for path; exits if the answer is not want. */
static double time_match(const struct bgw_router *r, const char *path, long want, long iters)
{
    struct bgw_route_input in = {
        .path = path, .path_len = strlen(path),
        .method = "GET", .method_len = 3,
        .host = "api.example.com:8443", .host_len = strlen("api.example.com:8443"),
        .header = no_headers,
    };
    long got = bgw_router_match(r, &in);
    if (got != want) {
        fprintf(stderr, "router_bench: %s matched %ld, want %ld\n", path, got, want);
        exit(1);
    }
    volatile long sink = 0;
    double t0 = now_ns();
    for (long k = 0; k < iters; k++)
        sink += bgw_router_match(r, &in);
    double t1 = now_ns();
    (void)sink;
    return (t1 - t0) / (double)iters;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 5000000;
    const size_t sizes[] = { 5, 5000 };     /* 2 routes per service: 10 and 10,000 routes */

    if (iters <= 0)
        iters = 5000000;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n_svc = sizes[s];
        struct bgw_config *cfg = make_config(n_svc);
        char err[256];
        struct bgw_router *r = bgw_router_build(cfg, err, sizeof err);
        if (!r) {
            fprintf(stderr, "router_bench: %s\n", err);
            return 1;
        }
        char prefix_path[96], exact_path[64];
        size_t last = n_svc - 1;
        snprintf(prefix_path, sizeof prefix_path, "/svc%zu/api/v1/orders/12345/items", last);
        snprintf(exact_path, sizeof exact_path, "/svc%zu/health", last);

        double t_prefix = time_match(r, prefix_path, (long)(2 * last + 1), iters);
        double t_exact = time_match(r, exact_path, (long)(2 * last), iters);
        double t_miss = time_match(r, "/nothing/here/at/all", -1, iters);
        printf("%6zu routes: last prefix route %6.1f ns/match, last exact route %6.1f ns/match, "
               "no match %6.1f ns/match\n", cfg->n_routes, t_prefix, t_exact, t_miss);
        bgw_router_free(r);
        free_config(cfg);
    }
    return 0;
}
