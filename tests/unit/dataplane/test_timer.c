/* test_timer.c - the worker timer heap: order, lazy extension, stop, re-arm from a callback. */
#include <check.h>
#include <stdlib.h>

#include "timer.h"

#define N 64

static int fired[N * 4];
static int nfired;
static struct bgw_timer timers[N];
static struct bgw_timers *g_ts;

static void record(struct bgw_timer *t)
{
    fired[nfired++] = (int)(t - timers);
}

static void setup_timers(void)
{
    nfired = 0;
    for (int i = 0; i < N; i++) timers[i] = (struct bgw_timer){.cb = record};
}

START_TEST(fires_in_deadline_order)
{
    struct bgw_timers ts = {0};
    setup_timers();
    /* a scrambled set of deadlines */
    for (int i = 0; i < N; i++) ck_assert_int_eq(bgw_timer_set(&ts, &timers[i], 1000 + (uint64_t)((i * 37) % N)), 0);
    ck_assert_int_eq(bgw_timers_wait_ms(&ts, 990), 10);
    bgw_timers_run(&ts, 1000 + N);
    ck_assert_int_eq(nfired, N);
    for (int k = 1; k < N; k++)
        ck_assert_uint_le(timers[fired[k - 1]].deadline, timers[fired[k]].deadline);
    ck_assert_int_eq(bgw_timers_wait_ms(&ts, 0), -1);
    bgw_timers_destroy(&ts);
}
END_TEST

START_TEST(only_due_timers_fire)
{
    struct bgw_timers ts = {0};
    setup_timers();
    bgw_timer_set(&ts, &timers[0], 100);
    bgw_timer_set(&ts, &timers[1], 200);
    bgw_timers_run(&ts, 150);
    ck_assert_int_eq(nfired, 1);
    ck_assert_int_eq(fired[0], 0);
    ck_assert_int_eq(bgw_timers_wait_ms(&ts, 150), 50);
    bgw_timers_destroy(&ts);
}
END_TEST

START_TEST(lazy_extension_moves_the_deadline)
{
    struct bgw_timers ts = {0};
    setup_timers();
    bgw_timer_set(&ts, &timers[0], 100);
    bgw_timer_set(&ts, &timers[1], 150);
    bgw_timer_set(&ts, &timers[0], 300);   /* pushed later: nothing fires at 100 */
    ck_assert_int_eq(bgw_timers_wait_ms(&ts, 0), 150);
    bgw_timers_run(&ts, 200);
    ck_assert_int_eq(nfired, 1);
    ck_assert_int_eq(fired[0], 1);
    bgw_timers_run(&ts, 299);
    ck_assert_int_eq(nfired, 1);
    bgw_timers_run(&ts, 300);
    ck_assert_int_eq(nfired, 2);
    ck_assert_int_eq(fired[1], 0);
    bgw_timers_destroy(&ts);
}
END_TEST

START_TEST(earlier_deadline_takes_effect)
{
    struct bgw_timers ts = {0};
    setup_timers();
    bgw_timer_set(&ts, &timers[0], 500);
    bgw_timer_set(&ts, &timers[1], 400);
    bgw_timer_set(&ts, &timers[0], 100);   /* pulled earlier */
    bgw_timers_run(&ts, 100);
    ck_assert_int_eq(nfired, 1);
    ck_assert_int_eq(fired[0], 0);
    bgw_timers_destroy(&ts);
}
END_TEST

START_TEST(stop_disarms)
{
    struct bgw_timers ts = {0};
    setup_timers();
    for (int i = 0; i < 10; i++) bgw_timer_set(&ts, &timers[i], 100 + (uint64_t)i);
    for (int i = 0; i < 10; i += 2) bgw_timer_stop(&ts, &timers[i]);
    bgw_timer_stop(&ts, &timers[0]);       /* stopping twice is harmless */
    bgw_timers_run(&ts, 1000);
    ck_assert_int_eq(nfired, 5);
    for (int k = 0; k < 5; k++) ck_assert_int_eq(fired[k] % 2, 1);
    bgw_timers_destroy(&ts);
}
END_TEST

static void rearm(struct bgw_timer *t)
{
    record(t);
    if (nfired < 3) bgw_timer_set(g_ts, t, t->deadline + 10);
}

START_TEST(callback_may_rearm)
{
    struct bgw_timers ts = {0};
    g_ts = &ts;
    setup_timers();
    timers[0].cb = rearm;
    bgw_timer_set(&ts, &timers[0], 10);
    bgw_timers_run(&ts, 10);
    ck_assert_int_eq(nfired, 1);
    bgw_timers_run(&ts, 100);
    ck_assert_int_eq(nfired, 3);
    ck_assert_int_eq(bgw_timers_wait_ms(&ts, 100), -1);
    bgw_timers_destroy(&ts);
}
END_TEST

/* Each timer fires at the first run whose time reaches its last deadline, never before. */
START_TEST(random_operations_fire_on_time)
{
    struct bgw_timers ts = {0};
    setup_timers();
    srand(7);
    for (int round = 0; round < 2000; round++) {
        struct bgw_timer *t = &timers[rand() % N];
        if (rand() % 4 == 0) bgw_timer_stop(&ts, t);
        else bgw_timer_set(&ts, t, (uint64_t)(rand() % 1000));
    }
    int armed = 0;
    for (int i = 0; i < N; i++) armed += timers[i].idx != 0;
    for (uint64_t now = 0; now < 1000; now++) {
        int before = nfired;
        bgw_timers_run(&ts, now);
        for (int k = before; k < nfired; k++) ck_assert_uint_eq(timers[fired[k]].deadline, now);
    }
    ck_assert_int_eq(nfired, armed);
    bgw_timers_destroy(&ts);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("timer");
    TCase *tc = tcase_create("heap");
    tcase_add_test(tc, fires_in_deadline_order);
    tcase_add_test(tc, only_due_timers_fire);
    tcase_add_test(tc, lazy_extension_moves_the_deadline);
    tcase_add_test(tc, earlier_deadline_takes_effect);
    tcase_add_test(tc, stop_disarms);
    tcase_add_test(tc, callback_may_rearm);
    tcase_add_test(tc, random_operations_fire_on_time);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
