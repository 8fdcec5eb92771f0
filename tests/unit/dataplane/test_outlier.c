/* test_outlier.c - outlier detection with an injected clock: runs of failures, ejection time growth and
 * cap, max_ejection_percent, panic threshold, state kept by name and address. */
#include <check.h>
#include <stdlib.h>

#include "outlier.h"

static const struct bgw_outlier_detection cfg3 = {.consecutive_5xx = 3, .base_ejection_ms = 1000,
                                                  .max_ejection_percent = 50};

static int fail_n(struct bgw_outlier_svc *s, struct bgw_outlier_ep *ep, int n, uint32_t n_eps, uint64_t now)
{
    int ejections = 0;
    for (int i = 0; i < n; i++) ejections += bgw_outlier_report(s, ep, true, &cfg3, n_eps, now);
    return ejections;
}

START_TEST(run_of_failures_ejects_and_expires)
{
    struct bgw_outlier_svc *s = bgw_outlier_svc_get("orders");
    struct bgw_outlier_ep *a = bgw_outlier_ep_get(s, "127.0.0.1:1");
    ck_assert_ptr_nonnull(a);
    uint64_t now = 5000;
    ck_assert_int_eq(fail_n(s, a, 2, 2, now), 0);
    /* a success breaks the run */
    ck_assert(!bgw_outlier_report(s, a, false, &cfg3, 2, now));
    ck_assert_int_eq(fail_n(s, a, 2, 2, now), 0);
    ck_assert(!bgw_outlier_ejected(a, now));
    ck_assert(bgw_outlier_report(s, a, true, &cfg3, 2, now));   /* the third in a row */
    ck_assert(bgw_outlier_ejected(a, now));
    ck_assert(bgw_outlier_ejected(a, now + 999));
    ck_assert(!bgw_outlier_ejected(a, now + 1000));
    /* failures while ejected do not eject again */
    ck_assert_int_eq(fail_n(s, a, 5, 2, now + 10), 0);
    bgw_outlier_registry_free();
}
END_TEST

START_TEST(ejection_time_grows_and_is_capped)
{
    ck_assert_uint_eq(bgw_outlier_ejection_ms(&cfg3, 1), 1000);
    ck_assert_uint_eq(bgw_outlier_ejection_ms(&cfg3, 2), 2000);
    ck_assert_uint_eq(bgw_outlier_ejection_ms(&cfg3, 1000), BGW_OUTLIER_MAX_EJECTION_MS);
    struct bgw_outlier_detection big = {.consecutive_5xx = 1, .base_ejection_ms = 600000,
                                        .max_ejection_percent = 100};
    ck_assert_uint_eq(bgw_outlier_ejection_ms(&big, 3), 600000);   /* the base itself is never cut */

    struct bgw_outlier_svc *s = bgw_outlier_svc_get("grow");
    struct bgw_outlier_ep *a = bgw_outlier_ep_get(s, "a:1");
    uint64_t now = 1000;
    ck_assert_int_eq(fail_n(s, a, 3, 2, now), 1);
    /* failing again right after the ejection ends: twice as long */
    now += 1000;
    ck_assert(!bgw_outlier_ejected(a, now));
    ck_assert_int_eq(fail_n(s, a, 3, 2, now), 1);
    ck_assert(bgw_outlier_ejected(a, now + 1999));
    ck_assert(!bgw_outlier_ejected(a, now + 2000));
    /* after a long clean period the multiplier starts over */
    now += 2000 + 100000;
    ck_assert_int_eq(fail_n(s, a, 3, 2, now), 1);
    ck_assert(!bgw_outlier_ejected(a, now + 1000));
    bgw_outlier_registry_free();
}
END_TEST

START_TEST(max_ejection_percent)
{
    struct bgw_outlier_svc *s = bgw_outlier_svc_get("pct");
    struct bgw_outlier_ep *e[4];
    const char *names[] = {"a:1", "b:1", "c:1", "d:1"};
    for (int i = 0; i < 4; i++) e[i] = bgw_outlier_ep_get(s, names[i]);
    uint64_t now = 100;
    /* 4 endpoints, 50%: two may be ejected, not a third */
    ck_assert_int_eq(fail_n(s, e[0], 3, 4, now), 1);
    ck_assert_int_eq(fail_n(s, e[1], 3, 4, now), 1);
    ck_assert_int_eq(fail_n(s, e[2], 9, 4, now), 0);
    ck_assert(!bgw_outlier_ejected(e[2], now));
    /* once one returns, the next run of failures ejects */
    now += 1000;
    ck_assert_int_eq(fail_n(s, e[2], 3, 4, now), 1);
    /* 0% never ejects */
    struct bgw_outlier_detection never = cfg3;
    never.max_ejection_percent = 0;
    for (int i = 0; i < 10; i++) ck_assert(!bgw_outlier_report(s, e[3], true, &never, 4, now));
    bgw_outlier_registry_free();
}
END_TEST

START_TEST(state_is_kept_by_name_and_address)
{
    struct bgw_outlier_svc *s = bgw_outlier_svc_get("keep");
    struct bgw_outlier_ep *a = bgw_outlier_ep_get(s, "10.0.0.1:80");
    ck_assert_int_eq(fail_n(s, a, 3, 2, 50), 1);
    /* a new config looks the same names up again: same state */
    struct bgw_outlier_svc *s2 = bgw_outlier_svc_get("keep");
    ck_assert_ptr_eq(s2, s);
    struct bgw_outlier_ep *a2 = bgw_outlier_ep_get(s2, "10.0.0.1:80");
    ck_assert_ptr_eq(a2, a);
    ck_assert(bgw_outlier_ejected(a2, 60));
    ck_assert_ptr_ne(bgw_outlier_ep_get(s2, "10.0.0.2:80"), a);
    ck_assert_ptr_ne(bgw_outlier_svc_get("other"), s);
    bgw_outlier_registry_free();
}
END_TEST

START_TEST(panic_threshold)
{
    ck_assert(!bgw_outlier_panic(2, 2));
    ck_assert(!bgw_outlier_panic(1, 2));     /* half left: still balanced over the rest */
    ck_assert(bgw_outlier_panic(0, 2));
    ck_assert(bgw_outlier_panic(1, 3));
    ck_assert(!bgw_outlier_panic(2, 3));
    ck_assert(bgw_outlier_panic(4, 10));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("outlier");
    TCase *tc = tcase_create("detection");
    tcase_add_test(tc, run_of_failures_ejects_and_expires);
    tcase_add_test(tc, ejection_time_grows_and_is_capped);
    tcase_add_test(tc, max_ejection_percent);
    tcase_add_test(tc, state_is_kept_by_name_and_address);
    tcase_add_test(tc, panic_threshold);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
