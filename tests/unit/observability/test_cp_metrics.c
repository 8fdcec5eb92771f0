/* test_cp_metrics.c - bgw-control's source counters: families present when empty, counts, escaping, threads. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static char *render(void)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    ck_assert_int_eq(bgw_cp_metrics_render(&buf, &len, &cap), 0);
    return buf;
}

START_TEST(families_present_when_empty)
{
    bgw_cp_metrics_reset();
    char *t = render();
    ck_assert_ptr_nonnull(strstr(t, "# TYPE bgw_k8s_watch_events_total counter\n"));
    ck_assert_ptr_nonnull(strstr(t, "# TYPE bgw_k8s_relists_total counter\nbgw_k8s_relists_total 0\n"));
    ck_assert_ptr_nonnull(strstr(t, "# TYPE bgw_health_checks_total counter\n"));
    ck_assert_ptr_null(strstr(t, "bgw_health_checks_total{"));
    free(t);
}
END_TEST

START_TEST(counts_by_labels)
{
    bgw_cp_metrics_reset();
    bgw_cp_metrics_k8s_event("endpointslices", "ADDED");
    bgw_cp_metrics_k8s_event("endpointslices", "ADDED");
    bgw_cp_metrics_k8s_event("services", "DELETED");
    bgw_cp_metrics_relist();
    bgw_cp_metrics_health_check("orders", "success");
    bgw_cp_metrics_health_check("orders", "failure");
    bgw_cp_metrics_health_check("orders", "success");
    bgw_cp_metrics_health_check("we\"ird", "success");
    char *t = render();
    ck_assert_ptr_nonnull(strstr(t, "bgw_k8s_watch_events_total{resource=\"endpointslices\",type=\"ADDED\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(t, "bgw_k8s_watch_events_total{resource=\"services\",type=\"DELETED\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "bgw_k8s_relists_total 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "bgw_health_checks_total{service=\"orders\",result=\"success\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(t, "bgw_health_checks_total{service=\"orders\",result=\"failure\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "bgw_health_checks_total{service=\"we\\\"ird\",result=\"success\"} 1\n"));
    free(t);
}
END_TEST

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10000; i++) bgw_cp_metrics_health_check("s", (i & 1) ? "success" : "failure");
    return NULL;
}

START_TEST(thread_safe)
{
    bgw_cp_metrics_reset();
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, hammer, NULL);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    char *t = render();
    ck_assert_ptr_nonnull(strstr(t, "bgw_health_checks_total{service=\"s\",result=\"success\"} 20000\n"));
    ck_assert_ptr_nonnull(strstr(t, "bgw_health_checks_total{service=\"s\",result=\"failure\"} 20000\n"));
    free(t);
}
END_TEST

START_TEST(series_are_bounded)
{
    bgw_cp_metrics_reset();
    char name[32];
    for (int i = 0; i < BGW_CP_METRICS_MAX_SERIES + 10; i++) {
        snprintf(name, sizeof name, "svc%d", i);
        bgw_cp_metrics_health_check(name, "success");
    }
    char *t = render();
    ck_assert_ptr_nonnull(strstr(t, "service=\"svc0\""));
    ck_assert_ptr_null(strstr(t, "service=\"svc4100\""));
    free(t);
    bgw_cp_metrics_reset();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cp_metrics");
    TCase *tc = tcase_create("counters");
    tcase_add_test(tc, families_present_when_empty);
    tcase_add_test(tc, counts_by_labels);
    tcase_add_test(tc, thread_safe);
    tcase_add_test(tc, series_are_bounded);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
