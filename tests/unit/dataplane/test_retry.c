/* test_retry.c - the retry policy: which failures are retried for which conditions and methods, backoff. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "retry.h"

static bool allowed(uint32_t on, enum bgw_try_failure why, unsigned status, const char *m, uint32_t done)
{
    struct bgw_retry p = {.attempts = 2, .on = on, .per_try_timeout_ms = 0};
    return bgw_retry_allowed(&p, why, status, m, strlen(m), done);
}

START_TEST(conditions)
{
    /* connect-failure: only connect failures */
    ck_assert(allowed(BGW_RETRY_CONNECT_FAILURE, BGW_TRY_CONNECT_FAILURE, 0, "GET", 0));
    ck_assert(!allowed(BGW_RETRY_CONNECT_FAILURE, BGW_TRY_RESET, 0, "GET", 0));
    ck_assert(!allowed(BGW_RETRY_CONNECT_FAILURE, BGW_TRY_TIMEOUT, 0, "GET", 0));
    ck_assert(!allowed(BGW_RETRY_CONNECT_FAILURE, BGW_TRY_5XX, 503, "GET", 0));
    /* reset: resets and per-try timeouts */
    ck_assert(allowed(BGW_RETRY_RESET, BGW_TRY_RESET, 0, "GET", 0));
    ck_assert(allowed(BGW_RETRY_RESET, BGW_TRY_TIMEOUT, 0, "GET", 0));
    ck_assert(!allowed(BGW_RETRY_RESET, BGW_TRY_CONNECT_FAILURE, 0, "GET", 0));
    ck_assert(!allowed(BGW_RETRY_RESET, BGW_TRY_5XX, 500, "GET", 0));
    /* 5xx: every 5xx and the failures without a response */
    ck_assert(allowed(BGW_RETRY_5XX, BGW_TRY_5XX, 500, "GET", 0));
    ck_assert(allowed(BGW_RETRY_5XX, BGW_TRY_5XX, 599, "GET", 0));
    ck_assert(!allowed(BGW_RETRY_5XX, BGW_TRY_5XX, 499, "GET", 0));
    ck_assert(allowed(BGW_RETRY_5XX, BGW_TRY_RESET, 0, "GET", 0));
    ck_assert(allowed(BGW_RETRY_5XX, BGW_TRY_CONNECT_FAILURE, 0, "GET", 0));
    /* gateway-error: 502, 503, 504 only */
    ck_assert(!allowed(BGW_RETRY_GATEWAY_ERROR, BGW_TRY_5XX, 500, "GET", 0));
    ck_assert(!allowed(BGW_RETRY_GATEWAY_ERROR, BGW_TRY_5XX, 501, "GET", 0));
    for (unsigned s = 502; s <= 504; s++) ck_assert(allowed(BGW_RETRY_GATEWAY_ERROR, BGW_TRY_5XX, s, "GET", 0));
    ck_assert(!allowed(BGW_RETRY_GATEWAY_ERROR, BGW_TRY_5XX, 505, "GET", 0));
    ck_assert(allowed(BGW_RETRY_GATEWAY_ERROR, BGW_TRY_TIMEOUT, 0, "GET", 0));
    ck_assert(!allowed(0, BGW_TRY_CONNECT_FAILURE, 0, "GET", 0));
}
END_TEST

START_TEST(attempts_bound_retries)
{
    uint32_t all = BGW_RETRY_CONNECT_FAILURE | BGW_RETRY_RESET | BGW_RETRY_5XX;
    ck_assert(allowed(all, BGW_TRY_5XX, 503, "GET", 1));
    ck_assert(!allowed(all, BGW_TRY_5XX, 503, "GET", 2));
    struct bgw_retry none = {.attempts = 0, .on = all};
    ck_assert(!bgw_retry_allowed(&none, BGW_TRY_CONNECT_FAILURE, 0, "GET", 3, 0));
    ck_assert(!bgw_retry_allowed(NULL, BGW_TRY_CONNECT_FAILURE, 0, "GET", 3, 0));
}
END_TEST

START_TEST(non_idempotent_methods_only_on_connect_failure)
{
    uint32_t all = BGW_RETRY_CONNECT_FAILURE | BGW_RETRY_RESET | BGW_RETRY_5XX | BGW_RETRY_GATEWAY_ERROR;
    const char *unsafe[] = {"POST", "PATCH", "CONNECT", "OTHER"};
    for (size_t i = 0; i < sizeof unsafe / sizeof *unsafe; i++) {
        ck_assert(allowed(all, BGW_TRY_CONNECT_FAILURE, 0, unsafe[i], 0));
        ck_assert(!allowed(all, BGW_TRY_RESET, 0, unsafe[i], 0));
        ck_assert(!allowed(all, BGW_TRY_TIMEOUT, 0, unsafe[i], 0));
        ck_assert(!allowed(all, BGW_TRY_5XX, 503, unsafe[i], 0));
    }
    const char *safe[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"};
    for (size_t i = 0; i < sizeof safe / sizeof *safe; i++) {
        ck_assert(bgw_retry_idempotent(safe[i], strlen(safe[i])));
        ck_assert(allowed(all, BGW_TRY_5XX, 503, safe[i], 0));
    }
    ck_assert(!bgw_retry_idempotent("GETX", 4));
}
END_TEST

START_TEST(backoff_is_jittered_exponential_and_capped)
{
    /* the bound doubles from the base up to the cap */
    ck_assert_uint_eq(bgw_retry_backoff_ms(1, UINT64_MAX), UINT64_MAX % (BGW_RETRY_BACKOFF_BASE_MS + 1));
    uint32_t bounds[] = {25, 50, 100, 200, 250, 250, 250};
    for (uint32_t n = 1; n <= 7; n++) {
        uint32_t max = 0;
        for (uint64_t rnd = 0; rnd < 1000; rnd++) {
            uint32_t ms = bgw_retry_backoff_ms(n, rnd * 7919);
            ck_assert_uint_le(ms, bounds[n - 1]);
            if (ms > max) max = ms;
        }
        ck_assert_uint_eq(max, bounds[n - 1]);    /* the whole range is reachable */
    }
    ck_assert_uint_le(bgw_retry_backoff_ms(1000, 12345), BGW_RETRY_BACKOFF_MAX_MS);
    ck_assert_uint_eq(bgw_retry_backoff_ms(3, 0), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("retry");
    TCase *tc = tcase_create("policy");
    tcase_add_test(tc, conditions);
    tcase_add_test(tc, attempts_bound_retries);
    tcase_add_test(tc, non_idempotent_methods_only_on_connect_failure);
    tcase_add_test(tc, backoff_is_jittered_exponential_and_capped);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
