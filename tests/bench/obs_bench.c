/*
 * obs_bench.c - micro-benchmark of what observability adds to one proxied request: the per-worker
 * counters (bgw_stats_request + bgw_stats_upstream, dataplane/stats.h), the access-log record a worker
 * fills (bgw_access_log_request, dataplane/access_log.h) and the line the writer thread formats from it.
 * Steadier than a throughput comparison on a shared machine: compare the ns here with the proxy's CPU per
 * request (docs/performance.md).
 *
 * Not built by default. From the repository root:
 *   cc -std=gnu11 -O2 -D_GNU_SOURCE -Idataplane -Ishared $(pkg-config --cflags jansson) \
 *      tests/bench/obs_bench.c dataplane/stats.c dataplane/access_log.c dataplane/timer.c shared/strbuf.c \
 *      -lpthread -o /tmp/obs_bench
 *   /tmp/obs_bench [ITERATIONS]        (default 5000000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "access_log.h"
#include "proxy.h"
#include "stats.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);    /* this thread's CPU: steadier than wall time on a busy machine */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 5000000;
    static struct bgw_stats st;
    uint16_t get = bgw_stats_method("GET", 3);
    const char *routes[] = {"orders-api", "catalog", "users", "payments"};

    /* counters: 4 routes, 3 status codes, realistic spread of durations */
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        const char *route = routes[i & 3];
        unsigned code = (i % 97) == 0 ? 503 : 200;
        uint64_t ns = 200000 + (uint64_t)(i % 1000) * 1000;
        bgw_stats_request(&st, route, "orders", get, code, ns);
        bgw_stats_upstream(&st, "orders", code, ns - 50000);
    }
    double counting = (now_s() - t0) / (double)n * 1e9;

    /* access log, worker side: slot, fill, commit (a writer thread drains to /dev/null meanwhile) */
    char err[256];
    if (bgw_access_log_start("/dev/null", 1, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct bgw_request r;
    memset(&r, 0, sizeof r);
    r.route = -1;
    r.endpoint = UINT32_MAX;
    r.method = get;
    r.status = 200;
    strcpy(r.request_id, "3b5a8bb6-d42d-471d-9528-720b361e1da0");
    strcpy(r.traceparent, "00-9804bd88118e8446ccec6aa96f3dcda8-f91047d39aed7db3-00");
    bgw_access_log_note_target(r.log_path, sizeof r.log_path, "/api/orders/12345?x=1", 20);
    long logged = n / 5;
    t0 = now_s();
    for (long i = 0; i < logged; i++) {
        r.start_ns = bgw_now_ns() - 1000000;
        bgw_access_log_request(0, &r, 200);
    }
    double worker_side = (now_s() - t0) / (double)logged * 1e9;
    bgw_access_log_stop();
    char *buf = NULL;
    size_t len = 0, cap = 0;
    bgw_access_log_render_metrics(&buf, &len, &cap);
    unsigned long long dropped = 0;
    const char *d = strstr(buf, "bgw_access_log_dropped_total ");
    if (d) dropped = strtoull(d + strlen("bgw_access_log_dropped_total "), NULL, 10);
    free(buf);

    /* access log, writer side: one line */
    struct bgw_access_rec rec = {.time_ms = 1795748383123LL, .total_ns = 1359000, .upstream_ns = 849000,
                                 .bytes_in = 0, .bytes_out = 263, .status = 200};
    strcpy(rec.method, "GET");
    strcpy(rec.request_id, r.request_id);
    strcpy(rec.trace_id, "9804bd88118e8446ccec6aa96f3dcda8");
    strcpy(rec.route, "orders-api");
    strcpy(rec.service, "orders");
    strcpy(rec.endpoint, "127.0.0.1:9001");
    strcpy(rec.path, "/api/orders/12345");
    char line[BGW_ACCESS_LOG_LINE_MAX];
    size_t total = 0;
    t0 = now_s();
    for (long i = 0; i < logged; i++) {
        rec.time_ms += i & 1;
        total += bgw_access_log_format(&rec, line, sizeof line);
    }
    double writer_side = (now_s() - t0) / (double)logged * 1e9;

    printf("counters per request (bgw_stats_request + bgw_stats_upstream): %.1f ns\n", counting);
    printf("access log, worker side per request (slot, fill, commit):     %.1f ns  (%llu of %ld dropped)\n",
           worker_side, dropped, logged);
    printf("access log, writer side per line (format):                    %.1f ns  (%zu bytes/line)\n",
           writer_side, total / (size_t)logged);
    return 0;
}
