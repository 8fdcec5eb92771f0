/*
 * test_health_check.c - unit tests of the health checker (controlplane/health_check.h): the engine
 * stepped by hand against a fake clock (first-check jitter, schedule, thresholds counted per endpoint,
 * reports on every result with transitions flagged, targets following documents with state kept, the
 * in-flight cap, counters and their metrics), then the runner against real local sockets (a 2xx passes,
 * a 503, a refused connection and a silent server fail, the latter as a timeout).
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "health_check.h"
#include "metrics.h"

/* ---- a fake clock and a report sink ---- */

static int64_t g_now;

static int64_t fake_now(void *arg)
{
    (void)arg;
    return g_now;
}

static int64_t fake_wall(void *arg)
{
    (void)arg;
    return 1700000000000LL + g_now;
}

static const struct bgw_health_clock fake_clock = {fake_now, fake_wall, NULL};

struct report {
    char service[64], address[64], error[128];
    bool healthy, transition;
    int64_t at;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct report g_reports[256];
static int g_n;

static void sink(void *arg, const char *service, const char *address, bool healthy, int64_t last_check_ms,
                 const char *last_error, bool transition)
{
    (void)arg;
    pthread_mutex_lock(&g_lock);
    if (g_n < 256) {
        struct report *r = &g_reports[g_n++];
        snprintf(r->service, sizeof r->service, "%s", service);
        snprintf(r->address, sizeof r->address, "%s", address);
        snprintf(r->error, sizeof r->error, "%s", last_error);
        r->healthy = healthy;
        r->transition = transition;
        r->at = last_check_ms;
    }
    pthread_mutex_unlock(&g_lock);
}

static int reports(void)
{
    pthread_mutex_lock(&g_lock);
    int n = g_n;
    pthread_mutex_unlock(&g_lock);
    return n;
}

/* bgw_health_checks_total{service,result} as rendered by metrics.h, or -1 when the series is absent. */
static long metric_value(const char *service, const char *result)
{
    char *buf = NULL, want[160];
    size_t len = 0, cap = 0;
    ck_assert_int_eq(bgw_cp_metrics_render(&buf, &len, &cap), 0);
    snprintf(want, sizeof want, "bgw_health_checks_total{service=\"%s\",result=\"%s\"} ", service, result);
    const char *at = strstr(buf, want);
    long v = at ? strtol(at + strlen(want), NULL, 10) : -1;
    free(buf);
    return v;
}

static struct bgw_health *engine(unsigned cap, bool jitter)
{
    bgw_cp_metrics_reset();
    struct bgw_health_options o = {sink, NULL, &fake_clock, cap, 7, !jitter};
    g_now = 1000;
    g_n = 0;
    struct bgw_health *h = bgw_health_new(&o);
    ck_assert_ptr_nonnull(h);
    return h;
}

/* A resolved document: service "orders" checked with the given interval and thresholds, endpoints from a
 * space-separated list; service "plain" without a health check. */
static json_t *doc(const char *addrs, unsigned interval, unsigned healthy_thr, unsigned unhealthy_thr)
{
    json_t *eps = json_array();
    char buf[512];
    snprintf(buf, sizeof buf, "%s", addrs);
    for (char *save = NULL, *a = strtok_r(buf, " ", &save); a; a = strtok_r(NULL, " ", &save))
        json_array_append_new(eps, json_pack("{s:s,s:b}", "address", a, "healthy", 1));
    return json_pack("{s:[{s:s,s:o,s:{s:s,s:i,s:i,s:i,s:i}},{s:s,s:[{s:s,s:b}]}]}", "services",
                     "name", "orders", "endpoints", eps, "health_check", "path", "/healthz", "interval_ms",
                     (int)interval, "timeout_ms", (int)(interval / 2), "healthy_threshold", (int)healthy_thr,
                     "unhealthy_threshold", (int)unhealthy_thr,
                     "name", "plain", "endpoints", "address", "10.0.0.99:80", "healthy", 1);
}

static void update(struct bgw_health *h, const char *addrs, unsigned interval, unsigned hthr, unsigned uthr)
{
    json_t *d = doc(addrs, interval, hthr, uthr);
    bgw_health_update(h, d);
    json_decref(d);
}

/* Move the clock to the next due check, take it (asserting it is the only one) and complete it. */
static void check_one(struct bgw_health *h, const char *address, bool passed, const char *error)
{
    struct bgw_health_probe p[4];
    int64_t due = bgw_health_next_due(h);
    if (due > g_now) g_now = due;
    size_t n = bgw_health_take_due(h, p, 4);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(p[0].address, address);
    uint64_t id = p[0].id;
    bgw_health_probe_release(&p[0]);
    bgw_health_complete(h, id, passed, error);
}

/* ---- engine ---- */

START_TEST(test_targets_follow_health_checked_services)
{
    struct bgw_health *h = engine(0, false);
    update(h, "10.0.0.1:80 10.0.0.2:80", 1000, 2, 3);
    ck_assert(bgw_health_is_target(h, "orders", "10.0.0.1:80"));
    ck_assert(bgw_health_is_target(h, "orders", "10.0.0.2:80"));
    ck_assert(!bgw_health_is_target(h, "plain", "10.0.0.99:80"));   /* no health_check: not checked */
    ck_assert(bgw_health_healthy(h, "orders", "10.0.0.1:80"));      /* new endpoints start healthy */

    struct bgw_health_probe p[4];
    ck_assert_uint_eq(bgw_health_take_due(h, p, 4), 2);
    ck_assert_str_eq(p[0].url, "http://10.0.0.1:80/healthz");
    ck_assert_uint_eq(p[0].timeout_ms, 500);
    ck_assert_str_eq(p[0].service, "orders");
    for (int i = 0; i < 2; i++) bgw_health_probe_release(&p[i]);
    /* In flight: not handed out twice, and not "next due". */
    ck_assert_uint_eq(bgw_health_take_due(h, p, 4), 0);
    ck_assert_int_eq(bgw_health_next_due(h), -1);
    bgw_health_free(h);
}
END_TEST

START_TEST(test_first_check_within_jitter)
{
    struct bgw_health *h = engine(0, true);
    update(h, "10.0.0.1:80 10.0.0.2:80 10.0.0.3:80 10.0.0.4:80", 2000, 2, 3);
    int64_t due = bgw_health_next_due(h);
    ck_assert_int_ge(due, 1000);
    ck_assert_int_le(due, 1000 + 200);      /* a tenth of the interval at most */
    g_now += 200;
    struct bgw_health_probe p[8];
    size_t n = bgw_health_take_due(h, p, 8);
    ck_assert_uint_eq(n, 4);                /* every first check due by then */
    for (size_t i = 0; i < n; i++) bgw_health_probe_release(&p[i]);

    /* Long intervals: the jitter is capped at BGW_HEALTH_JITTER_MAX_MS. */
    update(h, "10.0.0.1:80 10.0.0.2:80 10.0.0.3:80 10.0.0.4:80 10.0.0.5:80", 600000, 2, 3);
    due = bgw_health_next_due(h);
    ck_assert_int_ge(due, g_now);
    ck_assert_int_le(due, g_now + BGW_HEALTH_JITTER_MAX_MS);
    bgw_health_free(h);
}
END_TEST

START_TEST(test_schedule_from_due_time)
{
    struct bgw_health *h = engine(0, false);
    update(h, "10.0.0.1:80", 1000, 2, 3);
    struct bgw_health_probe p[2];
    ck_assert_uint_eq(bgw_health_take_due(h, p, 2), 1);
    bgw_health_probe_release(&p[0]);
    g_now += 300;                           /* the check took 300 ms */
    bgw_health_complete(h, p[0].id, true, "");
    ck_assert_int_eq(bgw_health_next_due(h), 2000);   /* interval after it was due (and started) */
    g_now = 1999;
    ck_assert_uint_eq(bgw_health_take_due(h, p, 2), 0);
    g_now = 2250;                                     /* started 250 ms late */
    ck_assert_uint_eq(bgw_health_take_due(h, p, 2), 1);
    bgw_health_probe_release(&p[0]);
    g_now = 2400;
    bgw_health_complete(h, p[0].id, true, "");
    ck_assert_int_eq(bgw_health_next_due(h), 3000);   /* the schedule is not pushed back */
    ck_assert_uint_eq(bgw_health_take_due(h, p, 2), 0);
    g_now = 5200;                                     /* more than an interval behind: */
    ck_assert_uint_eq(bgw_health_take_due(h, p, 2), 1);
    bgw_health_probe_release(&p[0]);
    bgw_health_complete(h, p[0].id, true, "");
    ck_assert_int_eq(bgw_health_next_due(h), 6200);   /* the schedule starts again, no catching up */
    bgw_health_free(h);
}
END_TEST

START_TEST(test_unhealthy_after_threshold_failures)
{
    struct bgw_health *h = engine(0, false);
    update(h, "10.0.0.1:80", 1000, 2, 3);

    check_one(h, "10.0.0.1:80", false, "HTTP 503");
    check_one(h, "10.0.0.1:80", false, "HTTP 503");
    ck_assert(bgw_health_healthy(h, "orders", "10.0.0.1:80"));
    ck_assert_int_eq(reports(), 2);
    ck_assert(g_reports[1].healthy && !g_reports[1].transition);
    ck_assert_str_eq(g_reports[1].error, "HTTP 503");   /* last_error reported before any transition */

    check_one(h, "10.0.0.1:80", false, "timeout after 500 ms");
    ck_assert_int_eq(g_now, 1000 + 2 * 1000);          /* the third check, two intervals after the first */
    ck_assert(!bgw_health_healthy(h, "orders", "10.0.0.1:80"));
    ck_assert_int_eq(reports(), 3);
    ck_assert(!g_reports[2].healthy && g_reports[2].transition);
    ck_assert_str_eq(g_reports[2].service, "orders");
    ck_assert_str_eq(g_reports[2].address, "10.0.0.1:80");
    ck_assert_str_eq(g_reports[2].error, "timeout after 500 ms");
    ck_assert_int_eq(g_reports[2].at, 1700000000000LL + g_now);

    /* Further failures: reported, no transition. */
    check_one(h, "10.0.0.1:80", false, "HTTP 500");
    ck_assert(!g_reports[3].healthy && !g_reports[3].transition);
    bgw_health_free(h);
}
END_TEST

START_TEST(test_a_pass_resets_the_failure_count)
{
    struct bgw_health *h = engine(0, false);
    update(h, "10.0.0.1:80", 1000, 2, 3);
    check_one(h, "10.0.0.1:80", false, "HTTP 503");
    check_one(h, "10.0.0.1:80", false, "HTTP 503");
    check_one(h, "10.0.0.1:80", true, "");
    ck_assert_str_eq(g_reports[2].error, "");
    check_one(h, "10.0.0.1:80", false, "HTTP 503");
    check_one(h, "10.0.0.1:80", false, "HTTP 503");
    ck_assert(bgw_health_healthy(h, "orders", "10.0.0.1:80"));   /* only 2 in a row */
    check_one(h, "10.0.0.1:80", false, "HTTP 503");
    ck_assert(!bgw_health_healthy(h, "orders", "10.0.0.1:80"));
    bgw_health_free(h);
}
END_TEST

START_TEST(test_healthy_again_after_threshold_passes)
{
    struct bgw_health *h = engine(0, false);
    update(h, "10.0.0.1:80", 1000, 3, 1);
    check_one(h, "10.0.0.1:80", false, "connection refused");
    ck_assert(!bgw_health_healthy(h, "orders", "10.0.0.1:80"));   /* unhealthy_threshold 1 */
    ck_assert(g_reports[0].transition);
    check_one(h, "10.0.0.1:80", true, "");
    check_one(h, "10.0.0.1:80", true, "");
    ck_assert(!bgw_health_healthy(h, "orders", "10.0.0.1:80"));
    ck_assert(!g_reports[2].transition && !g_reports[2].healthy);
    check_one(h, "10.0.0.1:80", false, "HTTP 500");              /* resets the passes */
    check_one(h, "10.0.0.1:80", true, "");
    check_one(h, "10.0.0.1:80", true, "");
    ck_assert(!bgw_health_healthy(h, "orders", "10.0.0.1:80"));
    check_one(h, "10.0.0.1:80", true, "");
    ck_assert(bgw_health_healthy(h, "orders", "10.0.0.1:80"));
    ck_assert(g_reports[6].healthy && g_reports[6].transition);
    ck_assert_str_eq(g_reports[6].error, "");
    bgw_health_free(h);
}
END_TEST

START_TEST(test_thresholds_are_per_endpoint)
{
    struct bgw_health *h = engine(0, false);
    update(h, "10.0.0.1:80 10.0.0.2:80", 1000, 1, 2);
    struct bgw_health_probe p[4];
    for (int round = 0; round < 2; round++) {
        ck_assert_uint_eq(bgw_health_take_due(h, p, 4), 2);
        for (int i = 0; i < 2; i++) {
            bool first = strcmp(p[i].address, "10.0.0.1:80") == 0;
            bgw_health_complete(h, p[i].id, !first, first ? "HTTP 503" : "");
            bgw_health_probe_release(&p[i]);
        }
        g_now += 1000;
    }
    ck_assert(!bgw_health_healthy(h, "orders", "10.0.0.1:80"));
    ck_assert(bgw_health_healthy(h, "orders", "10.0.0.2:80"));
    bgw_health_free(h);
}
END_TEST

START_TEST(test_state_kept_for_endpoints_that_stay)
{
    struct bgw_health *h = engine(0, false);
    update(h, "10.0.0.1:80 10.0.0.2:80", 1000, 2, 1);
    struct bgw_health_probe p[4];
    ck_assert_uint_eq(bgw_health_take_due(h, p, 4), 2);
    int i1 = strcmp(p[0].address, "10.0.0.1:80") == 0 ? 0 : 1;
    bgw_health_complete(h, p[i1].id, false, "HTTP 503");       /* .1 unhealthy */
    uint64_t pending = p[1 - i1].id;                            /* .2 still in flight */
    for (int i = 0; i < 2; i++) bgw_health_probe_release(&p[i]);
    ck_assert(!bgw_health_healthy(h, "orders", "10.0.0.1:80"));

    /* A new document: .1 stays (unhealthy, its schedule kept), .2 goes, .3 comes. */
    g_now += 10;
    update(h, "10.0.0.3:80 10.0.0.1:80", 1000, 2, 1);
    ck_assert(!bgw_health_healthy(h, "orders", "10.0.0.1:80"));
    ck_assert(!bgw_health_is_target(h, "orders", "10.0.0.2:80"));
    ck_assert(bgw_health_healthy(h, "orders", "10.0.0.3:80"));
    ck_assert_int_eq(bgw_health_next_due(h), 1010);             /* .3 at once */
    int before = reports();
    bgw_health_complete(h, pending, false, "HTTP 503");         /* .2's late result: ignored */
    ck_assert_int_eq(reports(), before);
    ck_assert_int_eq(metric_value("orders", "failure"), 1);   /* .1's failure only */

    /* .1 leaves while unhealthy: reported healthy once, as a transition, on the next take. */
    update(h, "10.0.0.3:80", 1000, 2, 1);
    ck_assert_int_eq(reports(), before);                        /* not from the update itself */
    ck_assert_uint_eq(bgw_health_take_due(h, p, 4), 1);         /* .3 (the freed slot is reusable) */
    bgw_health_probe_release(&p[0]);
    ck_assert_int_eq(reports(), before + 1);
    struct report *r = &g_reports[before];
    ck_assert_str_eq(r->address, "10.0.0.1:80");
    ck_assert(r->healthy && r->transition);
    ck_assert_str_eq(r->error, "");

    /* It comes back later: a new endpoint again, healthy. */
    update(h, "10.0.0.3:80 10.0.0.1:80", 1000, 2, 1);
    ck_assert(bgw_health_healthy(h, "orders", "10.0.0.1:80"));
    bgw_health_free(h);
}
END_TEST

START_TEST(test_parameter_changes_apply_to_kept_endpoints)
{
    struct bgw_health *h = engine(0, false);
    update(h, "10.0.0.1:80", 1000, 2, 3);
    check_one(h, "10.0.0.1:80", false, "HTTP 503");
    check_one(h, "10.0.0.1:80", false, "HTTP 503");
    update(h, "10.0.0.1:80", 4000, 2, 2);          /* threshold lowered: the count so far is kept */
    g_now += 1000;
    struct bgw_health_probe p[1];
    ck_assert_uint_eq(bgw_health_take_due(h, p, 1), 1);
    ck_assert_uint_eq(p[0].timeout_ms, 2000);
    bgw_health_complete(h, p[0].id, false, "HTTP 503");
    bgw_health_probe_release(&p[0]);
    ck_assert(!bgw_health_healthy(h, "orders", "10.0.0.1:80"));
    ck_assert_int_eq(bgw_health_next_due(h), g_now + 4000);
    /* A shorter interval counts from the last check, not from when the longer one would have run out. */
    g_now += 100;
    update(h, "10.0.0.1:80", 1000, 2, 2);
    ck_assert_int_eq(bgw_health_next_due(h), g_now - 100 + 1000);
    g_now += 5000;
    update(h, "10.0.0.1:80", 500, 2, 2);
    ck_assert_int_eq(bgw_health_next_due(h), g_now);                /* overdue: at once */

    /* The health check removed from the service: no more targets, the verdict withdrawn. */
    json_t *d = json_pack("{s:[{s:s,s:[s]}]}", "services", "name", "orders", "endpoints", "10.0.0.1:80");
    bgw_health_update(h, d);
    json_decref(d);
    ck_assert(!bgw_health_is_target(h, "orders", "10.0.0.1:80"));
    int before = reports();
    ck_assert_uint_eq(bgw_health_take_due(h, p, 1), 0);
    ck_assert_int_eq(reports(), before + 1);
    ck_assert(g_reports[before].healthy);
    ck_assert_int_eq(bgw_health_next_due(h), -1);
    bgw_health_free(h);
}
END_TEST

START_TEST(test_in_flight_cap_most_overdue_first)
{
    struct bgw_health *h = engine(2, false);
    update(h, "10.0.0.1:80", 1000, 2, 3);
    g_now += 500;
    update(h, "10.0.0.1:80 10.0.0.2:80 10.0.0.3:80", 1000, 2, 3);
    g_now += 100;
    struct bgw_health_probe p[8];
    /* .1 has waited longest; then .2 and .3 (equal), capped at 2. */
    ck_assert_uint_eq(bgw_health_take_due(h, p, 8), 2);
    ck_assert_str_eq(p[0].address, "10.0.0.1:80");
    uint64_t a = p[0].id;
    bgw_health_probe_release(&p[0]);
    bgw_health_probe_release(&p[1]);
    ck_assert_uint_eq(bgw_health_take_due(h, p, 8), 0);     /* the cap holds */
    ck_assert_int_eq(bgw_health_next_due(h), -1);           /* nothing can start before a completion */
    bgw_health_complete(h, a, true, "");
    ck_assert_int_le(bgw_health_next_due(h), g_now);        /* .3 waited: overdue */
    ck_assert_uint_eq(bgw_health_take_due(h, p, 8), 1);     /* one slot freed */
    bgw_health_probe_release(&p[0]);
    bgw_health_free(h);
}
END_TEST

START_TEST(test_counters_and_metrics)
{
    struct bgw_health *h = engine(0, false);
    update(h, "10.0.0.1:80", 1000, 2, 3);
    check_one(h, "10.0.0.1:80", true, "");
    check_one(h, "10.0.0.1:80", true, "");
    check_one(h, "10.0.0.1:80", false, "HTTP 500");
    check_one(h, "10.0.0.1:80", false, "timeout after 500 ms");     /* a timeout is a failure */
    ck_assert_int_eq(metric_value("orders", "success"), 2);
    ck_assert_int_eq(metric_value("orders", "failure"), 2);
    ck_assert_int_eq(metric_value("plain", "success"), -1);        /* never checked: no series */
    bgw_health_free(h);
}
END_TEST

START_TEST(test_duplicate_addresses_checked_once)
{
    struct bgw_health *h = engine(0, false);
    update(h, "10.0.0.1:80 10.0.0.1:80", 1000, 2, 3);
    struct bgw_health_probe p[4];
    ck_assert_uint_eq(bgw_health_take_due(h, p, 4), 1);
    bgw_health_probe_release(&p[0]);
    update(h, "10.0.0.1:80 10.0.0.2:80 10.0.0.2:80", 1000, 2, 3);
    ck_assert_uint_eq(bgw_health_take_due(h, p, 4), 1);       /* .2 once; .1 still in flight */
    ck_assert_str_eq(p[0].address, "10.0.0.2:80");
    bgw_health_probe_release(&p[0]);
    bgw_health_free(h);
}
END_TEST

/* ---- runner, over real sockets ---- */

enum mode { ANSWER_200, ANSWER_503, SILENT };

struct server {
    int fd, port;
    enum mode mode;
    pthread_t thread;
};

static void *serve(void *arg)
{
    struct server *s = arg;
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) return NULL;
        char buf[2048];
        ssize_t n = read(c, buf, sizeof buf);
        (void)n;
        const char *ans = s->mode == ANSWER_200 ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                                                : "HTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\n\r\n";
        if (s->mode == SILENT) {
            nanosleep(&(struct timespec){0, 400000000}, NULL);
        } else if (write(c, ans, strlen(ans)) < 0) {
            /* the checker gave up */
        }
        close(c);
    }
}

static int listen_port(int *fd_out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *fd_out = fd;
    return ntohs(a.sin_port);
}

static void server_start(struct server *s, enum mode m)
{
    s->mode = m;
    s->port = listen_port(&s->fd);
    pthread_create(&s->thread, NULL, serve, s);
}

/* The last report for address, waiting up to 5 s for one with transition set. */
static bool wait_transition(const char *address, struct report *out)
{
    for (int i = 0; i < 5000; i++) {
        pthread_mutex_lock(&g_lock);
        for (int k = 0; k < g_n; k++)
            if (strcmp(g_reports[k].address, address) == 0 && g_reports[k].transition) {
                *out = g_reports[k];
                pthread_mutex_unlock(&g_lock);
                return true;
            }
        pthread_mutex_unlock(&g_lock);
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return false;
}

START_TEST(test_runner_checks_over_http)
{
    struct server ok, bad, silent;
    server_start(&ok, ANSWER_200);
    server_start(&bad, ANSWER_503);
    server_start(&silent, SILENT);
    int closed_fd;
    int closed = listen_port(&closed_fd);
    close(closed_fd);                     /* nothing listens there any more: refused */

    g_n = 0;
    struct bgw_health_options o = {.report = sink};
    struct bgw_health *h = bgw_health_new(&o);
    char err[256];
    ck_assert_int_eq(bgw_health_start(h, err, sizeof err), 0);
    char a_ok[32], a_bad[32], a_silent[32], a_closed[32], addrs[160];
    snprintf(a_ok, sizeof a_ok, "127.0.0.1:%d", ok.port);
    snprintf(a_bad, sizeof a_bad, "127.0.0.1:%d", bad.port);
    snprintf(a_silent, sizeof a_silent, "127.0.0.1:%d", silent.port);
    snprintf(a_closed, sizeof a_closed, "127.0.0.1:%d", closed);
    snprintf(addrs, sizeof addrs, "%s %s %s %s", a_ok, a_bad, a_silent, a_closed);
    update(h, addrs, 200, 1, 1);          /* timeout 100 ms */

    struct report r;
    ck_assert(wait_transition(a_bad, &r));
    ck_assert(!r.healthy);
    ck_assert_str_eq(r.error, "HTTP 503");
    ck_assert(wait_transition(a_silent, &r));
    ck_assert_str_eq(r.error, "timeout after 100 ms");
    ck_assert(wait_transition(a_closed, &r));
    ck_assert(!r.healthy);
    ck_assert_str_eq(r.error, "connect: Connection refused");
    /* The healthy one keeps passing: reported, never a transition. */
    for (int i = 0; i < 5000 && metric_value("orders", "success") < 2; i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    ck_assert_int_ge(metric_value("orders", "success"), 2);
    ck_assert(bgw_health_healthy(h, "orders", a_ok));
    pthread_mutex_lock(&g_lock);
    for (int k = 0; k < g_n; k++)
        ck_assert(strcmp(g_reports[k].address, a_ok) != 0 || (g_reports[k].healthy && !g_reports[k].transition));
    pthread_mutex_unlock(&g_lock);
    bgw_health_free(h);                   /* stops the runner with checks possibly in flight */
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("health_check");
    TCase *e = tcase_create("engine");
    tcase_add_test(e, test_targets_follow_health_checked_services);
    tcase_add_test(e, test_first_check_within_jitter);
    tcase_add_test(e, test_schedule_from_due_time);
    tcase_add_test(e, test_unhealthy_after_threshold_failures);
    tcase_add_test(e, test_a_pass_resets_the_failure_count);
    tcase_add_test(e, test_healthy_again_after_threshold_passes);
    tcase_add_test(e, test_thresholds_are_per_endpoint);
    tcase_add_test(e, test_state_kept_for_endpoints_that_stay);
    tcase_add_test(e, test_parameter_changes_apply_to_kept_endpoints);
    tcase_add_test(e, test_in_flight_cap_most_overdue_first);
    tcase_add_test(e, test_counters_and_metrics);
    tcase_add_test(e, test_duplicate_addresses_checked_once);
    suite_add_tcase(s, e);
    TCase *r = tcase_create("runner");
    tcase_set_timeout(r, 30);
    tcase_add_test(r, test_runner_checks_over_http);
    suite_add_tcase(s, r);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
