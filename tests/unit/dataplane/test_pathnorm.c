/*
 * test_pathnorm.c - unit tests for bgw_pathnorm (dataplane/pathnorm.h): a table of inputs with their
 * normalised form or refusal, each case also checked for idempotence and for staying within len + 1 bytes.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "pathnorm.h"

struct pn_case {
    const char *in;
    size_t len;         /* 0: strlen(in) */
    const char *want;   /* NULL: refused */
};

static const struct pn_case cases[] = {
    /* already normal */
    { "/", 0, "/" },
    { "/a", 0, "/a" },
    { "/a/b/c", 0, "/a/b/c" },
    { "/a/b/", 0, "/a/b/" },
    { "/api/v1/orders/7", 0, "/api/v1/orders/7" },
    { "/a;p=1/b,c/@d:e!$&'()*+=", 0, "/a;p=1/b,c/@d:e!$&'()*+=" },
    /* duplicate slashes */
    { "//", 0, "/" },
    { "///a//b///", 0, "/a/b/" },
    { "/a//", 0, "/a/" },
    /* RFC 3986 5.4.1 / 5.4.2 results, as absolute paths (base "/b/c/d;p") */
    { "/b/c/g", 0, "/b/c/g" },
    { "/b/c/./g", 0, "/b/c/g" },
    { "/b/c/g/", 0, "/b/c/g/" },
    { "/b/c/.", 0, "/b/c/" },
    { "/b/c/./", 0, "/b/c/" },
    { "/b/c/..", 0, "/b/" },
    { "/b/c/../", 0, "/b/" },
    { "/b/c/../g", 0, "/b/g" },
    { "/b/c/../..", 0, "/" },
    { "/b/c/../../", 0, "/" },
    { "/b/c/../../g", 0, "/g" },
    { "/b/c/../../../g", 0, "/g" },
    { "/b/c/../../../../g", 0, "/g" },
    { "/./g", 0, "/g" },
    { "/../g", 0, "/g" },
    { "/b/c/g.", 0, "/b/c/g." },
    { "/b/c/.g", 0, "/b/c/.g" },
    { "/b/c/g..", 0, "/b/c/g.." },
    { "/b/c/..g", 0, "/b/c/..g" },
    { "/b/c/./../g", 0, "/b/g" },
    { "/b/c/./g/.", 0, "/b/c/g/" },
    { "/b/c/g/./h", 0, "/b/c/g/h" },
    { "/b/c/g/../h", 0, "/b/c/h" },
    { "/b/c/g;x=1/./y", 0, "/b/c/g;x=1/y" },
    { "/b/c/g;x=1/../y", 0, "/b/c/y" },
    { "/a/b/c/./../../g", 0, "/a/g" },          /* RFC 3986 5.2.4 example */
    { "/mid/content=5/../6", 0, "/mid/6" },     /* RFC 3986 5.2.4 example */
    /* dot segments and the root */
    { "/..", 0, "/" },
    { "/.", 0, "/" },
    { "/../..", 0, "/" },
    { "/a/.", 0, "/a/" },
    { "/a/..", 0, "/" },
    { "/a/../", 0, "/" },
    { "/...", 0, "/..." },
    { "/a/.../b", 0, "/a/.../b" },
    { "/a//../b", 0, "/b" },
    /* unreserved escapes decoded, in any case */
    { "/%41%62%7e%2D%5f%2e%30", 0, "/Ab~-_.0" },
    { "/%7Euser", 0, "/~user" },
    { "/a%2db", 0, "/a-b" },
    /* other escapes kept, hex upper-cased */
    { "/a%3ab", 0, "/a%3Ab" },
    { "/a%3Ab", 0, "/a%3Ab" },
    { "/%20x", 0, "/%20x" },
    { "/%25", 0, "/%25" },
    { "/%252e%252e/x", 0, "/%252e%252e/x" },    /* no double decoding */
    { "/%c3%a9", 0, "/%C3%A9" },
    { "/%ff", 0, "/%FF" },
    { "/%0a", 0, "/%0A" },
    /* dot segments formed by decoding */
    { "/%2e%2e/etc", 0, "/etc" },
    { "/%2E%2E/etc/passwd", 0, "/etc/passwd" },
    { "/a/b/%2e%2e/c", 0, "/a/c" },
    { "/.%2E/x", 0, "/x" },
    { "/%2e./x", 0, "/x" },
    { "/a/%2E/b", 0, "/a/b" },
    { "/a/%2e", 0, "/a/" },
    { "/a/b/%2e%2E", 0, "/a/" },
    { "/%2e%2e%2e", 0, "/..." },
    /* refused: encoded separators, any case */
    { "/a%2Fb", 0, NULL },
    { "/a%2fb", 0, NULL },
    { "/a%5Cb", 0, NULL },
    { "/a%5cb", 0, NULL },
    { "/%2e%2e%2f", 0, NULL },
    /* refused: raw backslash, '#', NUL escape */
    { "/a\\b", 0, NULL },
    { "/..\\x", 0, NULL },
    { "/a#frag", 0, NULL },
    { "/a%00", 0, NULL },
    /* refused: malformed escapes */
    { "/%G1", 0, NULL },
    { "/%1G", 0, NULL },
    { "/%4", 0, NULL },
    { "/%", 0, NULL },
    { "/a%", 0, NULL },
    { "/%%41", 0, NULL },
    { "/% 1", 0, NULL },
    /* refused: control characters, space, DEL, bytes >= 0x80 */
    { "/a b", 0, NULL },
    { "/a\tb", 0, NULL },
    { "/a\rb", 0, NULL },
    { "/a\nb", 0, NULL },
    { "/a\x01", 0, NULL },
    { "/a\x7f", 0, NULL },
    { "/a\x80", 0, NULL },
    { "/\xc3\xa9", 0, NULL },
    { "/\xff", 0, NULL },
    { "/a\0b", 4, NULL },
    /* refused: not an absolute path */
    { "", 0, NULL },
    { "a/b", 0, NULL },
    { "*", 0, NULL },
    { "http://x/a", 0, NULL },
    { "%2Fa", 0, NULL },
};

#define N_CASES (sizeof cases / sizeof cases[0])

START_TEST(test_table)
{
    const struct pn_case *c = &cases[_i];
    size_t len = c->len ? c->len : strlen(c->in);
    char *out = malloc(len + 1);  /* exactly the documented minimum, so ASan sees any overrun */
    ck_assert_ptr_nonnull(out);
    long n = bgw_pathnorm(c->in, len, out);
    if (!c->want) {
        ck_assert_msg(n == -1, "case %d \"%s\": want refusal, got %ld \"%.*s\"", _i, c->in, n,
                      n > 0 ? (int)n : 0, out);
    } else {
        ck_assert_msg(n >= 1, "case %d \"%s\": refused, want \"%s\"", _i, c->in, c->want);
        ck_assert_msg((size_t)n == strlen(c->want) && memcmp(out, c->want, (size_t)n) == 0 &&
                          out[n] == '\0',
                      "case %d \"%s\": got \"%.*s\", want \"%s\"", _i, c->in, (int)n, out, c->want);
        /* normalising is idempotent */
        char *again = malloc((size_t)n + 1);
        ck_assert_ptr_nonnull(again);
        long m = bgw_pathnorm(out, (size_t)n, again);
        ck_assert_int_eq(m, n);
        ck_assert_mem_eq(again, out, (size_t)n);
        free(again);
    }
    free(out);
}
END_TEST

/* The input is read only up to len: bytes after it do not matter. */
START_TEST(test_len_bounds_input)
{
    char out[16];
    ck_assert_int_eq(bgw_pathnorm("/a/b?x=%zz", 4, out), 4);
    ck_assert_str_eq(out, "/a/b");
    ck_assert_int_eq(bgw_pathnorm("/a/..\\", 5, out), 1);
    ck_assert_str_eq(out, "/");
    ck_assert_int_eq(bgw_pathnorm("/%41", 3, out), -1);  /* "%4" then the end: malformed */
}
END_TEST

/* The input buffer may be normalised in place (out == path): the writer never passes the reader. */
START_TEST(test_in_place)
{
    char buf[] = "//a/./b/%2e%2e/%7e%3a//c/";
    long n = bgw_pathnorm(buf, strlen(buf), buf);
    ck_assert_int_eq(n, (long)strlen("/a/~%3A/c/"));
    ck_assert_str_eq(buf, "/a/~%3A/c/");
}
END_TEST

/* A long path: no quadratic behaviour or overrun when many ".." unwind many segments. */
START_TEST(test_long_path)
{
    size_t segs = 5000;
    size_t cap = segs * 3 + segs * 3 + 8;
    char *in = malloc(cap), *out = malloc(cap);
    size_t n = 0;
    for (size_t k = 0; k < segs; k++) {
        memcpy(in + n, "/ab", 3);
        n += 3;
    }
    for (size_t k = 0; k < segs - 1; k++) {
        memcpy(in + n, "/..", 3);
        n += 3;
    }
    ck_assert_int_eq(bgw_pathnorm(in, n, out), 4);    /* a final ".." leaves its slash */
    ck_assert_str_eq(out, "/ab/");
    free(in);
    free(out);
}
END_TEST

static Suite *pathnorm_suite(void)
{
    Suite *s = suite_create("pathnorm");
    TCase *tc = tcase_create("table");
    tcase_add_loop_test(tc, test_table, 0, (int)N_CASES);
    suite_add_tcase(s, tc);
    tc = tcase_create("edges");
    tcase_add_test(tc, test_len_bounds_input);
    tcase_add_test(tc, test_in_place);
    tcase_add_test(tc, test_long_path);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pathnorm_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
