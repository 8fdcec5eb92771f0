/* test_access_log.c - access log records: JSON formatting, escaping, the ring dropping when full, the writer. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access_log.h"
#include "strbuf.h"

START_TEST(formats_one_json_line)
{
    struct bgw_access_rec r = {.time_ms = 1700000000123LL, .total_ns = 1500000, .upstream_ns = 1000000,
                               .bytes_in = 5, .bytes_out = 42, .status = 200};
    strcpy(r.method, "GET");
    strcpy(r.request_id, "abc");
    strcpy(r.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    strcpy(r.route, "orders-api");
    strcpy(r.service, "orders");
    strcpy(r.endpoint, "127.0.0.1:9001");
    strcpy(r.path, "/a\"b\\c\x01\xff");
    char out[4096];
    size_t n = bgw_access_log_format(&r, out, sizeof out);
    ck_assert_uint_gt(n, 0);
    out[n] = 0;
    ck_assert_str_eq(out, "{\"time\":\"2023-11-14T22:13:20.123Z\",\"request_id\":\"abc\","
                          "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"route\":\"orders-api\","
                          "\"service\":\"orders\",\"endpoint\":\"127.0.0.1:9001\",\"method\":\"GET\","
                          "\"path\":\"/a\\\"b\\\\c\\u0001\\u00ff\",\"status\":200,\"duration_s\":0.001500,"
                          "\"upstream_duration_s\":0.001000,\"bytes_in\":5,\"bytes_out\":42}\n");
}
END_TEST

START_TEST(absent_values_are_null)
{
    struct bgw_access_rec r = {.time_ms = 0, .status = 404};
    strcpy(r.method, "GET");
    strcpy(r.path, "/nope");
    char out[4096];
    size_t n = bgw_access_log_format(&r, out, sizeof out);
    out[n] = 0;
    ck_assert_ptr_nonnull(strstr(out, "\"route\":null,\"service\":null,\"endpoint\":null"));
    ck_assert_ptr_nonnull(strstr(out, "\"upstream_duration_s\":null"));
    ck_assert_uint_eq(bgw_access_log_format(&r, out, 20), 0);     /* too small: nothing */
}
END_TEST

START_TEST(worst_case_fits)
{
    struct bgw_access_rec r;
    memset(&r, 0x01, sizeof r);              /* every string full of bytes that need \u escapes */
    r.method[sizeof r.method - 1] = r.request_id[sizeof r.request_id - 1] = r.trace_id[sizeof r.trace_id - 1] = 0;
    r.route[sizeof r.route - 1] = r.service[sizeof r.service - 1] = r.endpoint[sizeof r.endpoint - 1] = 0;
    r.path[sizeof r.path - 1] = 0;
    char out[8192];
    ck_assert_uint_gt(bgw_access_log_format(&r, out, sizeof out), 0);
}
END_TEST

START_TEST(full_ring_drops_and_writer_writes)
{
    char path[] = "/tmp/bgw_access_log_testXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    char err[256];
    ck_assert_int_eq(bgw_access_log_start(path, 1, err, sizeof err), 0);
    ck_assert(bgw_access_log_on);
    /* fill faster than the writer drains: at most one ring's worth is in flight at once */
    unsigned dropped_seen = 0, written = 0;
    for (unsigned i = 0; i < 4 * BGW_ACCESS_LOG_RING; i++) {
        struct bgw_access_rec *r = bgw_access_log_slot(0);
        if (!r) {
            dropped_seen++;
            continue;
        }
        r->status = 200;
        strcpy(r->method, "GET");
        strcpy(r->path, "/x");
        bgw_access_log_commit(0);
        written++;
    }
    ck_assert_ptr_null(bgw_access_log_slot(7));            /* no such worker */
    bgw_access_log_stop();
    char *buf = NULL;
    size_t len = 0, cap = 0;
    ck_assert_int_eq(bgw_access_log_render_metrics(&buf, &len, &cap), 0);
    char want[128];
    snprintf(want, sizeof want, "bgw_access_log_records_total %u\n", written);
    ck_assert_ptr_nonnull(strstr(buf, want));
    snprintf(want, sizeof want, "bgw_access_log_dropped_total %u\n", dropped_seen);
    ck_assert_ptr_nonnull(strstr(buf, want));
    free(buf);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    unsigned lines = 0;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        ck_assert_ptr_nonnull(strstr(line, "\"path\":\"/x\""));
        lines++;
    }
    fclose(f);
    unlink(path);
    ck_assert_uint_eq(lines, written);
}
END_TEST

START_TEST(unopenable_file_is_an_error)
{
    char err[256];
    ck_assert_int_eq(bgw_access_log_start("/nonexistent-dir/x.log", 1, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "--access-log /nonexistent-dir/x.log"));
    ck_assert(!bgw_access_log_on);
}
END_TEST

START_TEST(target_without_query)
{
    char out[8];
    bgw_access_log_note_target(out, sizeof out, "/a?b=1", 6);
    ck_assert_str_eq(out, "/a");
    bgw_access_log_note_target(out, sizeof out, "/abcdefghij", 11);
    ck_assert_str_eq(out, "/abcdef");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("access_log");
    TCase *tc = tcase_create("access_log");
    tcase_add_test(tc, formats_one_json_line);
    tcase_add_test(tc, absent_values_are_null);
    tcase_add_test(tc, worst_case_fits);
    tcase_add_test(tc, full_ring_drops_and_writer_writes);
    tcase_add_test(tc, unopenable_file_is_an_error);
    tcase_add_test(tc, target_without_query);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
