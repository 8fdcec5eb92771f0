/* test_stats.c - per-worker stats tables: sums over workers, 0 series for configured names, histograms. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "stats.h"

/* Label strings are interned for the life of the process (as in the proxy, whose workers never go away):
 * the tables stay reachable here so that leak checkers agree. */
static struct bgw_stats *kept[8];
static int n_kept;

static struct bgw_stats *new_stats(void)
{
    struct bgw_stats *s = calloc(1, sizeof *s);
    ck_assert_ptr_nonnull(s);
    kept[n_kept++] = s;
    return s;
}

static char *render(struct bgw_stats **w, size_t n, const struct bgw_config *cfg)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    ck_assert_int_eq(bgw_stats_render(w, n, cfg, &buf, &len, &cap), 0);
    ck_assert_uint_eq(strlen(buf), len);
    return buf;
}

START_TEST(sums_over_workers)
{
    struct bgw_stats *w[2] = {new_stats(), new_stats()};
    uint16_t get = bgw_stats_method("GET", 3);
    bgw_stats_request(w[0], "r1", "s1", get, 200, 1000);
    bgw_stats_request(w[1], "r1", "s1", get, 200, 1000);
    bgw_stats_request(w[1], "r1", "s1", get, 200, 20 * 1000 * 1000);
    bgw_stats_retry(w[0], "r1");
    bgw_stats_retry(w[1], "r1");
    bgw_stats_circuit(w[0], "s1", 1);
    bgw_stats_circuit(w[1], "s1", 1);
    char *t = render(w, 2, NULL);
    ck_assert_ptr_nonnull(strstr(t, "bgw_http_requests_total{route=\"r1\",service=\"s1\",method=\"GET\",code=\"200\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(t, "bgw_retries_total{route=\"r1\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(t, "bgw_circuit_breaker_open{service=\"s1\"} 1\n"));
    /* 1 us lands in the first bucket (0.0001 s); 20 ms in 0.025 */
    ck_assert_ptr_nonnull(strstr(t, "bgw_http_request_duration_seconds_bucket{route=\"r1\",service=\"s1\",le=\"0.0001\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(t, "bgw_http_request_duration_seconds_bucket{route=\"r1\",service=\"s1\",le=\"0.01\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(t, "bgw_http_request_duration_seconds_bucket{route=\"r1\",service=\"s1\",le=\"0.025\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(t, "bgw_http_request_duration_seconds_count{route=\"r1\",service=\"s1\"} 3\n"));
    free(t);
}
END_TEST

START_TEST(configured_names_start_at_zero)
{
    const char *doc = "{\"services\":[{\"name\":\"orders\",\"endpoints\":[\"127.0.0.1:1\"]},"
                      "{\"name\":\"catalog\",\"endpoints\":[\"127.0.0.1:2\"]}],"
                      "\"routes\":[{\"name\":\"orders-api\",\"match\":{\"path_prefix\":\"/o\"},\"service\":\"orders\"}]}";
    struct bgw_config *cfg = NULL;
    char err[256];
    ck_assert_int_eq(bgw_config_parse(doc, strlen(doc), &cfg, err, sizeof err), 0);
    struct bgw_stats *w[1] = {new_stats()};
    bgw_stats_ratelimit_rejected(w[0], "orders-api");
    char *t = render(w, 1, cfg);
    ck_assert_ptr_nonnull(strstr(t, "bgw_retries_total{route=\"orders-api\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(t, "bgw_ratelimit_rejected_total{route=\"orders-api\"} 1\n"));
    ck_assert_ptr_null(strstr(t, "bgw_ratelimit_rejected_total{route=\"orders-api\"} 0\n"));
    const char *svcs[] = {"orders", "catalog"};
    for (int i = 0; i < 2; i++) {
        char want[200];
        snprintf(want, sizeof want, "bgw_circuit_breaker_open{service=\"%s\"} 0\n", svcs[i]);
        ck_assert_ptr_nonnull(strstr(t, want));
        snprintf(want, sizeof want, "bgw_outlier_ejections_total{service=\"%s\"} 0\n", svcs[i]);
        ck_assert_ptr_nonnull(strstr(t, want));
        snprintf(want, sizeof want, "bgw_upstream_connections_active{service=\"%s\"} 0\n", svcs[i]);
        ck_assert_ptr_nonnull(strstr(t, want));
    }
    /* every family has its HELP and TYPE even without series */
    ck_assert_ptr_nonnull(strstr(t, "# TYPE bgw_auth_rejected_total counter\n"));
    ck_assert_ptr_nonnull(strstr(t, "# TYPE bgw_upstream_request_duration_seconds histogram\n"));
    free(t);
    bgw_config_free(cfg);
}
END_TEST

START_TEST(gauges_go_down)
{
    struct bgw_stats *w[1] = {new_stats()};
    bgw_stats_upstream_conns(w[0], "s", 1);
    bgw_stats_upstream_conns(w[0], "s", 1);
    bgw_stats_upstream_conns(w[0], "s", -1);
    bgw_stats_gauge_add(&w[0]->in_flight, 3);
    bgw_stats_gauge_add(&w[0]->in_flight, -1);
    char *t = render(w, 1, NULL);
    ck_assert_ptr_nonnull(strstr(t, "bgw_upstream_connections_active{service=\"s\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "bgw_http_requests_in_flight 2\n"));
    free(t);
}
END_TEST

START_TEST(unknown_methods_share_other)
{
    ck_assert_str_eq(bgw_stats_method_names[bgw_stats_method("GET", 3)], "GET");
    ck_assert_str_eq(bgw_stats_method_names[bgw_stats_method("BREW", 4)], "OTHER");
    ck_assert_str_eq(bgw_stats_method_names[bgw_stats_method("GE", 2)], "OTHER");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("render");
    tcase_add_test(tc, sums_over_workers);
    tcase_add_test(tc, configured_names_start_at_zero);
    tcase_add_test(tc, gauges_go_down);
    tcase_add_test(tc, unknown_methods_share_other);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
