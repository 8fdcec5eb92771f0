/* test_tracecontext.c - W3C traceparent: validation, continuing a trace, starting one. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "tracecontext.h"

#define VALID "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static bool valid(const char *v)
{
    return bgw_traceparent_valid(v, strlen(v));
}

START_TEST(validation)
{
    ck_assert(valid(VALID));
    ck_assert(!valid(""));
    ck_assert(!valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"));        /* short */
    ck_assert(!valid(VALID "x"));                                                        /* 00: exactly 55 */
    ck_assert(!valid("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));       /* upper case */
    ck_assert(!valid("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));       /* zero trace id */
    ck_assert(!valid("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));       /* zero parent id */
    ck_assert(!valid("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));       /* version ff */
    ck_assert(!valid("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    ck_assert(!valid("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"));
    ck_assert(valid("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future")); /* later version */
    ck_assert(!valid("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01future"));
}
END_TEST

START_TEST(keeps_the_trace_with_a_new_parent)
{
    uint64_t rnd[3] = {1, 2, 0xabcdef};
    char out[BGW_TRACEPARENT_LEN + 1];
    ck_assert(bgw_traceparent_next(VALID, strlen(VALID), rnd, out));
    ck_assert_str_eq(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000abcdef-01");
    ck_assert(valid(out));
}
END_TEST

START_TEST(starts_a_trace_when_absent_or_invalid)
{
    uint64_t rnd[3] = {0x0123456789abcdefull, 0xfedcba9876543210ull, 0x1111111111111111ull};
    char out[BGW_TRACEPARENT_LEN + 1];
    ck_assert(!bgw_traceparent_next(NULL, 0, rnd, out));
    ck_assert_str_eq(out, "00-0123456789abcdeffedcba9876543210-1111111111111111-00");
    const char *bad = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
    ck_assert(!bgw_traceparent_next(bad, strlen(bad), rnd, out));
    ck_assert_str_eq(out, "00-0123456789abcdeffedcba9876543210-1111111111111111-00");
    uint64_t zeros[3] = {0, 0, 0};
    ck_assert(!bgw_traceparent_next(NULL, 0, zeros, out));
    ck_assert(valid(out));                     /* never an all-zero id */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tracecontext");
    TCase *tc = tcase_create("traceparent");
    tcase_add_test(tc, validation);
    tcase_add_test(tc, keeps_the_trace_with_a_new_parent);
    tcase_add_test(tc, starts_a_trace_when_absent_or_invalid);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
