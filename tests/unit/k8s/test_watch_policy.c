/*
 * test_watch_policy.c - unit tests of the list+watch decisions (controlplane/k8s/watch_policy.h): what
 * follows each outcome, the backoff's growth, cap and jitter bounds, Retry-After, reset after success.
 */
#include <check.h>
#include <stdlib.h>

#include "watch_policy.h"

START_TEST(test_steps)
{
    struct bgw_k8s_policy p = {0};
    struct bgw_k8s_step s;

    s = bgw_k8s_policy_next(&p, BGW_K8S_LISTED, 0, 7, 1);
    ck_assert(!s.relist);
    ck_assert_uint_eq(s.delay_ms, 0);
    s = bgw_k8s_policy_next(&p, BGW_K8S_WATCH_ENDED, 0, 7, 1);         /* timeout or drop: rewatch at once */
    ck_assert(!s.relist);
    ck_assert_uint_eq(s.delay_ms, 0);
    s = bgw_k8s_policy_next(&p, BGW_K8S_GONE, 0, 7, 1);                /* 410: relist at once */
    ck_assert(s.relist);
    ck_assert_uint_eq(s.delay_ms, 0);
    ck_assert_uint_eq(p.failures, 0);
    s = bgw_k8s_policy_next(&p, BGW_K8S_WATCH_FAILED, 0, 0, 1);        /* 500 on watch: rewatch after backoff */
    ck_assert(!s.relist);
    ck_assert_uint_eq(s.delay_ms, BGW_K8S_BACKOFF_BASE_MS / 2);
    s = bgw_k8s_policy_next(&p, BGW_K8S_WATCH_ERROR, 0, 0, 1);         /* ERROR event: relist after backoff */
    ck_assert(s.relist);
    ck_assert_uint_eq(s.delay_ms, BGW_K8S_BACKOFF_BASE_MS);
    s = bgw_k8s_policy_next(&p, BGW_K8S_LIST_FAILED, 0, 0, 1);
    ck_assert(s.relist);
    ck_assert_uint_eq(p.failures, 3);
    s = bgw_k8s_policy_next(&p, BGW_K8S_WATCH_EMPTY, 0, 0, 1);         /* an empty stream counts as a failure */
    ck_assert_uint_eq(p.failures, 4);
    s = bgw_k8s_policy_next(&p, BGW_K8S_LISTED, 0, 0, 1);
    ck_assert_uint_eq(p.failures, 0);
}
END_TEST

/* A 410 right after another is a failure: a server expiring every watch at once gets a backoff. */
START_TEST(test_repeated_gone)
{
    struct bgw_k8s_policy p = {0};
    struct bgw_k8s_step s = bgw_k8s_policy_next(&p, BGW_K8S_GONE, 0, 0, 5000);
    ck_assert(s.relist);
    ck_assert_uint_eq(s.delay_ms, 0);
    s = bgw_k8s_policy_next(&p, BGW_K8S_LISTED, 0, 0, 5010);
    s = bgw_k8s_policy_next(&p, BGW_K8S_GONE, 0, 0, 5020);
    ck_assert(s.relist);
    ck_assert_uint_eq(s.delay_ms, BGW_K8S_BACKOFF_BASE_MS / 2);
    s = bgw_k8s_policy_next(&p, BGW_K8S_GONE, 0, 0, 5030);
    ck_assert_uint_eq(s.delay_ms, BGW_K8S_BACKOFF_BASE_MS);
    s = bgw_k8s_policy_next(&p, BGW_K8S_WATCH_ENDED, 0, 0, 9000);
    s = bgw_k8s_policy_next(&p, BGW_K8S_GONE, 0, 0, 9000 + BGW_K8S_GONE_WINDOW_MS);   /* a while later: at once */
    ck_assert_uint_eq(s.delay_ms, 0);
}
END_TEST

START_TEST(test_backoff_bounds)
{
    uint32_t prev_lo = 0;
    for (unsigned k = 1; k < 40; k++) {
        uint32_t lo = bgw_k8s_backoff_ms(k, 0);            /* half the step: the least it waits */
        ck_assert_uint_ge(lo, prev_lo);                     /* never shrinks */
        ck_assert_uint_le(lo, BGW_K8S_BACKOFF_MAX_MS / 2);
        for (uint32_t r = 0; r < 1000; r += 37) {
            uint32_t d = bgw_k8s_backoff_ms(k, r * 2654435761u);
            ck_assert_uint_ge(d, lo);
            ck_assert_uint_le(d, 2 * lo);
            ck_assert_uint_le(d, BGW_K8S_BACKOFF_MAX_MS);
        }
        ck_assert_uint_eq(bgw_k8s_backoff_ms(k, lo), 2 * lo);   /* the top of the range is reached */
        prev_lo = lo;
    }
    ck_assert_uint_eq(bgw_k8s_backoff_ms(1, 0), BGW_K8S_BACKOFF_BASE_MS / 2);
    ck_assert_uint_eq(bgw_k8s_backoff_ms(2, 0), BGW_K8S_BACKOFF_BASE_MS);
    ck_assert_uint_eq(bgw_k8s_backoff_ms(30, 0), BGW_K8S_BACKOFF_MAX_MS / 2);
    ck_assert_uint_ne(bgw_k8s_backoff_ms(3, 1), bgw_k8s_backoff_ms(3, 400));   /* jitter */
}
END_TEST

START_TEST(test_retry_after)
{
    struct bgw_k8s_policy p = {0};
    struct bgw_k8s_step s = bgw_k8s_policy_next(&p, BGW_K8S_WATCH_FAILED, 3, 0, 1);
    ck_assert_uint_eq(s.delay_ms, 3000);
    s = bgw_k8s_policy_next(&p, BGW_K8S_LIST_FAILED, 100000, 0, 1);
    ck_assert_uint_eq(s.delay_ms, BGW_K8S_RETRY_AFTER_MAX_MS);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("watch_policy");
    TCase *tc = tcase_create("watch_policy");
    tcase_add_test(tc, test_steps);
    tcase_add_test(tc, test_repeated_gone);
    tcase_add_test(tc, test_backoff_bounds);
    tcase_add_test(tc, test_retry_after);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
