/*
 * test_json_splitter.c - unit tests of the watch stream splitter (controlplane/k8s/json_splitter.h): one
 * object per chunk, several per chunk, an object over many chunks down to single bytes, braces and quotes
 * inside strings, whitespace between objects, garbage, the size limit, a stopping callback, reset.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "json_splitter.h"

struct got {
    int n;
    char objs[16][256];
};

static int collect(void *arg, const char *obj, size_t len)
{
    struct got *g = arg;
    if (g->n < 16 && len < 256) {
        memcpy(g->objs[g->n], obj, len);
        g->objs[g->n][len] = '\0';
    }
    g->n++;
    return 0;
}

static int feed_str(struct bgw_jsonsplit *s, const char *text, struct got *g)
{
    char err[128];
    return bgw_jsonsplit_feed(s, text, strlen(text), collect, g, err, sizeof err);
}

static const char STREAM[] =
    "{\"type\":\"ADDED\",\"object\":{\"a\":[1,2,{\"b\":\"}{\"}]}}\n"
    "{\"type\":\"MODIFIED\",\"object\":{\"s\":\"quote \\\" and \\\\\",\"n\":null}}\n"
    "  \r\n{\"type\":\"BOOKMARK\",\"object\":{}}\n";

START_TEST(test_whole_and_several_per_chunk)
{
    struct bgw_jsonsplit s;
    struct got g = {0};
    bgw_jsonsplit_init(&s, 0);
    ck_assert_int_eq(feed_str(&s, STREAM, &g), 0);
    ck_assert_int_eq(g.n, 3);
    ck_assert_str_eq(g.objs[0], "{\"type\":\"ADDED\",\"object\":{\"a\":[1,2,{\"b\":\"}{\"}]}}");
    ck_assert_str_eq(g.objs[1], "{\"type\":\"MODIFIED\",\"object\":{\"s\":\"quote \\\" and \\\\\",\"n\":null}}");
    ck_assert_str_eq(g.objs[2], "{\"type\":\"BOOKMARK\",\"object\":{}}");
    ck_assert(!bgw_jsonsplit_pending(&s));
    bgw_jsonsplit_free(&s);
}
END_TEST

/* Every way of cutting the stream in two, and byte by byte, gives the same objects. */
START_TEST(test_any_chunking)
{
    size_t n = strlen(STREAM);
    struct got whole = {0};
    struct bgw_jsonsplit s;
    char err[128];

    bgw_jsonsplit_init(&s, 0);
    feed_str(&s, STREAM, &whole);
    bgw_jsonsplit_free(&s);
    for (size_t cut = 0; cut <= n; cut++) {
        struct got g = {0};
        bgw_jsonsplit_init(&s, 0);
        ck_assert_int_eq(bgw_jsonsplit_feed(&s, STREAM, cut, collect, &g, err, sizeof err), 0);
        ck_assert_int_eq(bgw_jsonsplit_feed(&s, STREAM + cut, n - cut, collect, &g, err, sizeof err), 0);
        ck_assert_int_eq(g.n, 3);
        for (int i = 0; i < 3; i++)
            ck_assert_str_eq(g.objs[i], whole.objs[i]);
        bgw_jsonsplit_free(&s);
    }
    struct got g = {0};
    bgw_jsonsplit_init(&s, 0);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(bgw_jsonsplit_feed(&s, STREAM + i, 1, collect, &g, err, sizeof err), 0);
        if (i == 10)
            ck_assert(bgw_jsonsplit_pending(&s));
    }
    ck_assert_int_eq(g.n, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_str_eq(g.objs[i], whole.objs[i]);
    bgw_jsonsplit_free(&s);
}
END_TEST

START_TEST(test_garbage_between_objects)
{
    struct bgw_jsonsplit s;
    struct got g = {0};
    char err[128] = "";
    bgw_jsonsplit_init(&s, 0);
    ck_assert_int_eq(feed_str(&s, "{\"a\":1} x {\"b\":2}", &g), -1);
    ck_assert_int_eq(g.n, 1);
    ck_assert_int_eq(bgw_jsonsplit_feed(&s, "{}", 2, collect, &g, err, sizeof err), -1);    /* stays failed */
    ck_assert_ptr_nonnull(strstr(err, "failed"));
    bgw_jsonsplit_reset(&s);
    ck_assert_int_eq(feed_str(&s, "{}", &g), 0);
    ck_assert_int_eq(g.n, 2);
    ck_assert_int_eq(feed_str(&s, "[1]", &g), -1);
    bgw_jsonsplit_free(&s);
}
END_TEST

START_TEST(test_limit)
{
    struct bgw_jsonsplit s;
    struct got g = {0};
    bgw_jsonsplit_init(&s, 16);
    ck_assert_int_eq(feed_str(&s, "{\"a\":\"0123\"}", &g), 0);
    ck_assert_int_eq(feed_str(&s, "{\"a\":\"0123456789", &g), 0);
    ck_assert_int_eq(feed_str(&s, "abcdef\"}", &g), -1);
    ck_assert_int_eq(g.n, 1);
    bgw_jsonsplit_reset(&s);
    ck_assert_int_eq(feed_str(&s, "{\"a\":\"0123456789abcdef\"}", &g), -1);   /* whole in one feed too */
    bgw_jsonsplit_free(&s);
}
END_TEST

static int stop_at_second(void *arg, const char *obj, size_t len)
{
    (void)obj; (void)len;
    return ++*(int *)arg == 2 ? -1 : 0;
}

START_TEST(test_callback_stops)
{
    struct bgw_jsonsplit s;
    char err[128];
    int n = 0;
    bgw_jsonsplit_init(&s, 0);
    ck_assert_int_eq(bgw_jsonsplit_feed(&s, "{}{}{}", 6, stop_at_second, &n, err, sizeof err), -1);
    ck_assert_int_eq(n, 2);
    bgw_jsonsplit_free(&s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("json_splitter");
    TCase *tc = tcase_create("json_splitter");
    tcase_add_test(tc, test_whole_and_several_per_chunk);
    tcase_add_test(tc, test_any_chunking);
    tcase_add_test(tc, test_garbage_between_objects);
    tcase_add_test(tc, test_limit);
    tcase_add_test(tc, test_callback_stops);
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
