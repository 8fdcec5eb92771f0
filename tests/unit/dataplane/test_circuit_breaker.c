/* test_circuit_breaker.c - shared breakers: limits, open/close transitions, sharing by name, threads,
 * the retry budget. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>

#include "circuit_breaker.h"

START_TEST(limit_refuses_and_opens_once)
{
    struct bgw_cb *cb = bgw_cb_get("svc-limit");
    ck_assert_ptr_nonnull(cb);
    for (int i = 0; i < 3; i++) {
        struct bgw_cb_result r = bgw_cb_acquire(cb, BGW_CB_REQUESTS, 3);
        ck_assert(r.granted);
        ck_assert(!r.opened);
    }
    struct bgw_cb_result r = bgw_cb_acquire(cb, BGW_CB_REQUESTS, 3);
    ck_assert(!r.granted);
    ck_assert(r.opened);                         /* the first refusal opens it */
    r = bgw_cb_acquire(cb, BGW_CB_REQUESTS, 3);
    ck_assert(!r.granted);
    ck_assert(!r.opened);                        /* already open */
    /* other kinds are independent */
    ck_assert(bgw_cb_acquire(cb, BGW_CB_PENDING, 1).granted);
    /* a release that brings the count below the limit closes it, once */
    ck_assert(bgw_cb_release(cb, BGW_CB_REQUESTS, 3));
    ck_assert(bgw_cb_acquire(cb, BGW_CB_REQUESTS, 3).granted);
    ck_assert(!bgw_cb_release(cb, BGW_CB_REQUESTS, 3));
    ck_assert(!bgw_cb_release(cb, BGW_CB_REQUESTS, 3));
    ck_assert_uint_eq(atomic_load(&cb->count[BGW_CB_REQUESTS]), 1);
    /* limit 0 refuses everything */
    ck_assert(!bgw_cb_acquire(cb, BGW_CB_RETRIES, 0).granted);
    bgw_cb_registry_free();
}
END_TEST

START_TEST(shared_by_name)
{
    struct bgw_cb *a = bgw_cb_get("orders"), *b = bgw_cb_get("users"), *a2 = bgw_cb_get("orders");
    ck_assert_ptr_eq(a, a2);
    ck_assert_ptr_ne(a, b);
    bgw_cb_add(a, BGW_CB_REQUESTS);
    ck_assert_uint_eq(atomic_load(&a2->count[BGW_CB_REQUESTS]), 1);
    ck_assert_uint_eq(atomic_load(&b->count[BGW_CB_REQUESTS]), 0);
    bgw_cb_registry_free();
}
END_TEST

#define THREADS 4
#define ROUNDS 20000

static void *hammer(void *arg)
{
    struct bgw_cb *cb = arg;
    for (int i = 0; i < ROUNDS; i++) {
        if (bgw_cb_acquire(cb, BGW_CB_REQUESTS, 5).granted) {
            unsigned now = atomic_load(&cb->count[BGW_CB_REQUESTS]);
            if (now > 5) return (void *)1;       /* the limit was overrun */
            bgw_cb_release(cb, BGW_CB_REQUESTS, 5);
        }
    }
    return NULL;
}

START_TEST(threads_never_overrun_the_limit)
{
    struct bgw_cb *cb = bgw_cb_get("threads");
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, hammer, cb);
    for (int i = 0; i < THREADS; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        ck_assert_ptr_null(rv);
    }
    ck_assert_uint_eq(atomic_load(&cb->count[BGW_CB_REQUESTS]), 0);
    bgw_cb_registry_free();
}
END_TEST

START_TEST(retry_budget)
{
    /* the minimum allowance for little traffic */
    ck_assert(bgw_cb_budget_allows(0, 0));
    ck_assert(bgw_cb_budget_allows(1, 2));
    ck_assert(!bgw_cb_budget_allows(1, BGW_RETRY_BUDGET_MIN));
    /* 20% of the active requests beyond that */
    ck_assert(bgw_cb_budget_allows(100, 19));
    ck_assert(!bgw_cb_budget_allows(100, 20));
    ck_assert(bgw_cb_budget_allows(50, 9));
    ck_assert(!bgw_cb_budget_allows(50, 10));
    ck_assert(!bgw_cb_budget_allows(10, 3));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("circuit_breaker");
    TCase *tc = tcase_create("breaker");
    tcase_add_test(tc, limit_refuses_and_opens_once);
    tcase_add_test(tc, shared_by_name);
    tcase_add_test(tc, threads_never_overrun_the_limit);
    tcase_add_test(tc, retry_budget);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
