/*
 * test_http1.c - unit tests for the HTTP/1.1 codec (dataplane/http1.h): valid request and response
 * heads and what is read from them, every refusal with its exact status, bodies (Content-Length,
 * chunked, until close) fed whole, split and byte by byte, and pipelined messages.
 * Every input is copied into an exact-size heap buffer, so that a sanitizer build flags a read past it.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http1.h"

/* ---- helpers ---- */

static char *dup_exact(const char *s, size_t len)
{
    char *b = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(b);
    memcpy(b, s, len);
    return b;
}

struct sink {
    char data[4096];
    size_t len;
    unsigned calls;
    int refuse_after;   /* > 0: refuse the call with this number */
};

static int sink_cb(void *ctx, const char *data, size_t len)
{
    struct sink *k = ctx;
    k->calls++;
    if (k->refuse_after > 0 && k->calls >= (unsigned)k->refuse_after) return -1;
    ck_assert_uint_le(k->len + len, sizeof k->data);
    memcpy(k->data + k->len, data, len);
    k->len += len;
    return 0;
}

/* Parse a whole head held in raw[0..len) (len 0: strlen) on a fresh codec. */
static int parse(struct bgw_http1 *c, bool response, const char *raw, size_t len, struct bgw_http_head *h,
                 char **bufp)
{
    if (len == 0) len = strlen(raw);
    char *buf = dup_exact(raw, len);
    const char *why = NULL;
    bgw_http1_init(c, response);
    int rc = bgw_http1_parse_head(c, buf, len, h, &why);
    ck_assert_ptr_nonnull(why);
    if (bufp) *bufp = buf;
    else free(buf);
    return rc;
}

static bool value_is(const struct bgw_http_head *h, int k, const char *want)
{
    return k >= 0 && h->headers[k].value_len == strlen(want) && memcmp(h->headers[k].value, want, strlen(want)) == 0;
}

/* The two heads say the same thing about their buffers (pointers compared as offsets). */
static void assert_same_head(const struct bgw_http_head *a, const char *abuf, const struct bgw_http_head *b,
                             const char *bbuf)
{
    ck_assert_uint_eq(a->head_len, b->head_len);
    ck_assert_uint_eq(a->n_headers, b->n_headers);
    ck_assert_int_eq(a->host, b->host);
    ck_assert_int_eq(a->keep_alive, b->keep_alive);
    ck_assert_int_eq(a->has_body, b->has_body);
    ck_assert_int_eq(a->chunked, b->chunked);
    ck_assert_int_eq(a->has_content_length, b->has_content_length);
    ck_assert_int_eq(a->until_close, b->until_close);
    ck_assert_int_eq(a->expect_continue, b->expect_continue);
    ck_assert_uint_eq(a->content_length, b->content_length);
    ck_assert_uint_eq(a->major, b->major);
    ck_assert_uint_eq(a->minor, b->minor);
    ck_assert_uint_eq(a->status, b->status);
    ck_assert_uint_eq(a->method_len, b->method_len);
    ck_assert_uint_eq(a->target_len, b->target_len);
    if (a->method) ck_assert_int_eq(a->method - abuf, b->method - bbuf);
    if (a->target) ck_assert_int_eq(a->target - abuf, b->target - bbuf);
    for (uint32_t k = 0; k < a->n_headers; k++) {
        ck_assert_int_eq(a->headers[k].name - abuf, b->headers[k].name - bbuf);
        ck_assert_int_eq(a->headers[k].value - abuf, b->headers[k].value - bbuf);
        ck_assert_uint_eq(a->headers[k].name_len, b->headers[k].name_len);
        ck_assert_uint_eq(a->headers[k].value_len, b->headers[k].value_len);
        ck_assert_uint_eq(a->headers[k].id, b->headers[k].id);
        ck_assert_uint_eq(a->headers[k].hop, b->headers[k].hop);
    }
}

/* ---- valid requests ---- */

struct req_ok {
    const char *raw;
    const char *method, *target;
    int minor;
    bool keep_alive, has_body, chunked, has_cl, expect;
    uint64_t cl;
    int host;           /* index of Host, or -1 */
};

static const struct req_ok req_ok_cases[] = {
    { "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/", 1, true, false, false, false, false, 0, 0 },
    { "GET /x?y=1 HTTP/1.0\r\n\r\n", "GET", "/x?y=1", 0, false, false, false, false, false, 0, -1 },
    { "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET", "/x", 0, true, false, false, false, false, 0, -1 },
    { "GET /x HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: a\r\n\r\n", "GET", "/x", 0, true, false, false, false,
      false, 0, 1 },
    { "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "GET", "/", 1, false, false, false, false, false, 0, 0 },
    { "GET / HTTP/1.1\r\nConnection: keep-alive, close\r\nHost: a\r\n\r\n", "GET", "/", 1, false, false, false,
      false, false, 0, 1 },
    { "GET http://example.com:8080/p?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", "GET",
      "http://example.com:8080/p?q=1", 1, true, false, false, false, false, 0, 0 },
    { "POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", "POST", "/f", 1, true, true, false, true, false, 5, 0 },
    { "POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", "POST", "/f", 1, true, false, false, true, false, 0, 0 },
    { "PUT /f HTTP/1.1\r\nContent-Length: 0005\r\nHost: a\r\n\r\n", "PUT", "/f", 1, true, true, false, true, false, 5, 1 },
    { "POST /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", "POST", "/f", 1, true, true, true, false,
      false, 0, 0 },
    { "POST /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", "POST", "/f", 1, true, true, true, false,
      false, 0, 0 },
    { "POST /f HTTP/1.0\r\nContent-Length: 3\r\n\r\n", "POST", "/f", 0, false, true, false, true, false, 3, -1 },
    { "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "OPTIONS", "*", 1, true, false, false, false, false, 0, 0 },
    { "\r\n\r\nGET /after-crlf HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/after-crlf", 1, true, false, false, false,
      false, 0, 0 },
    { "POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n", "POST", "/e", 1, true,
      true, false, true, true, 2, 0 },
    { "POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n", "POST", "/e", 1, true,
      true, false, true, true, 2, 0 },
    { "POST /e HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\nContent-Length: 2\r\n\r\n", "POST", "/e", 1, true,
      true, false, true, false, 2, 0 },
    /* RFC 9110 10.1.1: 100-continue from an HTTP/1.0 client is ignored (it cannot read a 1xx) */
    { "POST /e HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n", "POST", "/e", 0, false, true, false,
      true, false, 2, -1 },
    /* characters browsers send unescaped in a query pass (pathnorm judges the path) */
    { "GET /a?x={1}|^`\\%20 HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/a?x={1}|^`\\%20", 1, true, false, false, false,
      false, 0, 0 },
    { "DELETE /d HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", "DELETE", "/d", 1, true, false, false, false, false, 0, 0 },
    { "GET / HTTP/1.1\r\nHost:\r\n\r\n", "GET", "/", 1, true, false, false, false, false, 0, 0 },
    { "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", "GET", "/ws", 1, true,
      false, false, false, false, 0, 0 },
    { "PATCH /p HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n", "PATCH", "/p", 1, true, true,
      false, true, false, 999999999999999999ull, 0 },
};
#define N_REQ_OK (sizeof req_ok_cases / sizeof req_ok_cases[0])

START_TEST(test_request_ok)
{
    const struct req_ok *t = &req_ok_cases[_i];
    struct bgw_http1 c;
    struct bgw_http_head h;
    char *buf;
    int rc = parse(&c, false, t->raw, 0, &h, &buf);
    ck_assert_msg(rc == (int)strlen(t->raw), "%s: rc %d", t->raw, rc);
    ck_assert_uint_eq(h.head_len, strlen(t->raw));
    ck_assert_uint_eq(h.method_len, strlen(t->method));
    ck_assert(memcmp(h.method, t->method, h.method_len) == 0);
    ck_assert_uint_eq(h.target_len, strlen(t->target));
    ck_assert(memcmp(h.target, t->target, h.target_len) == 0);
    ck_assert_uint_eq(h.major, 1);
    ck_assert_uint_eq(h.minor, (unsigned)t->minor);
    ck_assert_int_eq(h.keep_alive, t->keep_alive);
    ck_assert_int_eq(h.has_body, t->has_body);
    ck_assert_int_eq(h.chunked, t->chunked);
    ck_assert_int_eq(h.has_content_length, t->has_cl);
    ck_assert_uint_eq(h.content_length, t->cl);
    ck_assert_int_eq(h.expect_continue, t->expect);
    ck_assert_int_eq(h.host, t->host);
    ck_assert(!h.until_close);
    /* a message without body is complete at its head; one with a body is not */
    ck_assert_int_eq(c.complete, !t->has_body);
    free(buf);
}
END_TEST

/* ---- refused requests ---- */

struct req_bad {
    const char *name;
    const char *raw;
    size_t len;         /* 0: strlen */
    int want;
};

#define POST_H "POST /f HTTP/1.1\r\nHost: a\r\n"
#define GET_H "GET / HTTP/1.1\r\nHost: a\r\n"

static const struct req_bad req_bad_cases[] = {
    /* Content-Length and Transfer-Encoding */
    { "cl_then_te", POST_H "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 0, -400 },
    { "te_then_cl", POST_H "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 0, -400 },
    { "cl_te_http10", "POST /f HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 0, -400 },
    { "cl_duplicate_same", POST_H "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", 0, -400 },
    { "cl_duplicate_different", POST_H "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 0, -400 },
    { "cl_plus", POST_H "Content-Length: +5\r\n\r\n", 0, -400 },
    { "cl_minus", POST_H "Content-Length: -5\r\n\r\n", 0, -400 },
    { "cl_space_inside", POST_H "Content-Length: 5 5\r\n\r\n", 0, -400 },
    { "cl_comma_list", POST_H "Content-Length: 5,5\r\n\r\n", 0, -400 },
    { "cl_comma_space_list", POST_H "Content-Length: 5, 5\r\n\r\n", 0, -400 },
    { "cl_non_digit", POST_H "Content-Length: 5a\r\n\r\n", 0, -400 },
    { "cl_hex", POST_H "Content-Length: 0x5\r\n\r\n", 0, -400 },
    { "cl_empty", POST_H "Content-Length:\r\n\r\n", 0, -400 },
    { "cl_19_digits", POST_H "Content-Length: 1000000000000000000\r\n\r\n", 0, -400 },
    { "cl_20_digits", POST_H "Content-Length: 18446744073709551616\r\n\r\n", 0, -400 },
    { "cl_vertical_tab", POST_H "Content-Length: \x0b" "5\r\n\r\n", 0, -400 },
    { "te_gzip", POST_H "Transfer-Encoding: gzip\r\n\r\n", 0, -501 },
    { "te_gzip_chunked", POST_H "Transfer-Encoding: gzip, chunked\r\n\r\n", 0, -501 },
    { "te_chunked_chunked_list", POST_H "Transfer-Encoding: chunked, chunked\r\n\r\n", 0, -501 },
    { "te_xchunked", POST_H "Transfer-Encoding: xchunked\r\n\r\n", 0, -501 },
    { "te_chunkedx", POST_H "Transfer-Encoding: chunkedx\r\n\r\n", 0, -501 },
    { "te_identity", POST_H "Transfer-Encoding: identity\r\n\r\n", 0, -501 },
    { "te_empty", POST_H "Transfer-Encoding:\r\n\r\n", 0, -501 },
    { "te_quoted", POST_H "Transfer-Encoding: \"chunked\"\r\n\r\n", 0, -501 },
    { "te_chunked_twice_headers", POST_H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 0, -400 },
    { "te_chunked_trailing_tab", POST_H "Transfer-Encoding: chunked\t\r\n\r\n", 0, -400 },
    { "te_vertical_tab", POST_H "Transfer-Encoding: \x0b" "chunked\r\n\r\n", 0, -400 },
    { "te_obs_fold", POST_H "Transfer-Encoding:\r\n chunked\r\n\r\n", 0, -501 },   /* the empty TE first */
    { "te_space_before_colon", POST_H "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n", 0, -400 },
    { "te_in_http10", "POST /f HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 0, -400 },
    /* Host */
    { "host_missing_http11", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 0, -400 },
    { "host_duplicate_same", GET_H "Host: a\r\n\r\n", 0, -400 },
    { "host_duplicate_different", GET_H "Host: b\r\n\r\n", 0, -400 },
    { "host_duplicate_http10", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 0, -400 },
    { "host_with_space", "GET / HTTP/1.1\r\nHost: exa mple\r\n\r\n", 0, -400 },
    { "host_with_userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 0, -400 },
    { "host_with_slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 0, -400 },
    { "host_with_high_byte", "GET / HTTP/1.1\r\nHost: \xc3\xa9t\xc3\xa9\r\n\r\n", 0, -400 },
    /* header syntax */
    { "obs_fold_space", GET_H "X-Foo: a\r\n  b\r\n\r\n", 0, -400 },
    { "obs_fold_tab", GET_H "X-Foo: a\r\n\tb\r\n\r\n", 0, -400 },
    { "obs_fold_first_header", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 0, -400 },
    { "bare_cr_in_value", GET_H "X-Foo: a\rb\r\n\r\n", 0, -400 },
    { "bare_cr_line_end", GET_H "X-Foo: a\rX-Bar: b\r\n\r\n", 0, -400 },
    { "bare_cr_request_line", "GET / HTTP/1.1\rHost: a\r\n\r\n", 0, -400 },
    { "bare_cr_start", "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "bare_lf_start", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "bare_lf_request_line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 0, -400 },
    { "bare_lf_everywhere", "GET / HTTP/1.1\nHost: a\n\n", 0, -400 },
    { "bare_lf_one_header", GET_H "X-Foo: a\nX-Bar: b\r\n\r\n", 0, -400 },
    { "bare_lf_end_of_head", GET_H "\n", 0, -400 },
    { "space_before_colon", GET_H "X-Foo : a\r\n\r\n", 0, -400 },
    { "tab_before_colon", GET_H "X-Foo\t: a\r\n\r\n", 0, -400 },
    { "space_before_colon_cl", POST_H "Content-Length : 5\r\n\r\n", 0, -400 },
    { "nul_in_value", GET_H "X-Foo: a\0b\r\n\r\n", sizeof(GET_H "X-Foo: a\0b\r\n\r\n") - 1, -400 },
    { "nul_in_name", GET_H "X-F\0oo: a\r\n\r\n", sizeof(GET_H "X-F\0oo: a\r\n\r\n") - 1, -400 },
    { "nul_in_target", "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n", sizeof("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n") - 1,
      -400 },
    { "ctl_in_name", GET_H "X-F\x01oo: a\r\n\r\n", 0, -400 },
    { "del_in_name", GET_H "X-F\x7foo: a\r\n\r\n", 0, -400 },
    { "ctl_in_value", GET_H "X-Foo: a\x01" "b\r\n\r\n", 0, -400 },
    { "del_in_value", GET_H "X-Foo: a\x7f\r\n\r\n", 0, -400 },
    { "escape_in_value", GET_H "X-Foo: \x1b[31m\r\n\r\n", 0, -400 },
    { "space_in_name", GET_H "X Foo: a\r\n\r\n", 0, -400 },
    { "separator_in_name", GET_H "X(Foo): a\r\n\r\n", 0, -400 },
    { "empty_name", GET_H ": a\r\n\r\n", 0, -400 },
    { "no_colon", GET_H "X-Foo a\r\n\r\n", 0, -400 },
    /* request line */
    { "method_invalid_chars", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "method_ctl", "GE\x01T / HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "method_lowercase", "get / HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "method_unknown", "FROB / HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "request_line_double_space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "request_line_double_space_2", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "request_line_trailing_space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 0, -400 },
    { "request_line_leading_space", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "request_line_tabs", "GET\t/\tHTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "request_line_missing_version", "GET /\r\nHost: a\r\n\r\n", 0, -400 },
    { "request_line_http09", "GET /\r\n\r\n", 0, -400 },
    { "version_2_0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 0, -505 },
    { "version_1_2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 0, -505 },
    { "version_0_9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 0, -505 },
    { "version_9_9", "GET / HTTP/9.9\r\nHost: a\r\n\r\n", 0, -505 },
    { "version_garbage", "GET / HTTP/1.x\r\nHost: a\r\n\r\n", 0, -400 },
    { "version_lowercase", "GET / http/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "version_long", "GET / HTTP/11.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "version_short", "GET / HTTP/1\r\nHost: a\r\n\r\n", 0, -400 },
    { "target_no_slash", "GET a HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "target_ctl", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "target_del", "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "target_high_byte", "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "target_angle_quote", "GET /fra<\"ming\"> HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "target_quote_in_query", "GET /a?q=\"x\" HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "target_gt", "GET /a> HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "target_fragment", "GET /public#/../admin HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "target_fragment_absolute", "GET http://a/p#f HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
    { "connect_with_body", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 5\r\n\r\n", 0, -400 },
    { "five_leading_crlf", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, -400 },
};
#define N_REQ_BAD (sizeof req_bad_cases / sizeof req_bad_cases[0])

START_TEST(test_request_refused)
{
    const struct req_bad *t = &req_bad_cases[_i];
    struct bgw_http1 c;
    struct bgw_http_head h;
    size_t len = t->len ? t->len : strlen(t->raw);
    char *buf = dup_exact(t->raw, len);
    const char *why = NULL;
    bgw_http1_init(&c, false);
    int rc = bgw_http1_parse_head(&c, buf, len, &h, &why);
    ck_assert_msg(rc == t->want, "%s: got %d (%s), want %d", t->name, rc, why ? why : "?", t->want);
    ck_assert_ptr_nonnull(why);
    ck_assert_msg(why[0] != '\0', "%s: no reason given", t->name);
    free(buf);
}
END_TEST

/* ---- header values, ids, hop-by-hop ---- */

START_TEST(test_header_values_trimmed)
{
    struct bgw_http1 c;
    struct bgw_http_head h;
    char *buf;
    const char *raw = "GET / HTTP/1.1\r\nHost:  \t a.example \t \r\nX-A:   v  v\t\r\nX-Empty:\r\nX-Blank: \t \r\n"
                      "X-Tab:\tt\r\nX-Colon: a:b: c\r\nX-Obs: caf\xc3\xa9\r\n\r\n";
    ck_assert_int_gt(parse(&c, false, raw, 0, &h, &buf), 0);
    ck_assert_uint_eq(h.n_headers, 7);
    ck_assert(value_is(&h, 0, "a.example"));
    ck_assert(value_is(&h, 1, "v  v"));
    ck_assert(value_is(&h, 2, ""));
    ck_assert(value_is(&h, 3, ""));
    ck_assert(value_is(&h, 4, "t"));
    ck_assert(value_is(&h, 5, "a:b: c"));
    ck_assert(value_is(&h, 6, "caf\xc3\xa9"));
    ck_assert_uint_eq(h.headers[1].name_len, 3);
    ck_assert(memcmp(h.headers[1].name, "X-A", 3) == 0);
    /* pointers point into the caller's buffer */
    for (uint32_t k = 0; k < h.n_headers; k++) {
        ck_assert(h.headers[k].name >= buf && h.headers[k].name + h.headers[k].name_len <= buf + h.head_len);
        ck_assert(h.headers[k].value >= buf && h.headers[k].value + h.headers[k].value_len <= buf + h.head_len);
    }
    free(buf);
}
END_TEST

static const struct {
    const char *name;
    enum bgw_hdr_id id;
    bool hop;
} id_cases[] = {
    { "Host", BGW_HDR_HOST, false },
    { "content-length", BGW_HDR_CONTENT_LENGTH, true },
    { "Transfer-Encoding", BGW_HDR_TRANSFER_ENCODING, true },
    { "CONNECTION", BGW_HDR_CONNECTION, true },
    { "Keep-Alive", BGW_HDR_KEEP_ALIVE, true },
    { "Proxy-Connection", BGW_HDR_PROXY_CONNECTION, true },
    { "TE", BGW_HDR_TE, true },
    { "Trailer", BGW_HDR_TRAILER, true },
    { "Upgrade", BGW_HDR_UPGRADE, true },
    { "X-Forwarded-For", BGW_HDR_X_FORWARDED_FOR, false },
    { "x-forwarded-proto", BGW_HDR_X_FORWARDED_PROTO, false },
    { "X-Forwarded-Host", BGW_HDR_X_FORWARDED_HOST, false },
    { "X-Request-Id", BGW_HDR_X_REQUEST_ID, false },
    { "Expect", BGW_HDR_EXPECT, false },
    { "Hosts", BGW_HDR_OTHER, false },
    { "X-Host", BGW_HDR_OTHER, false },
    { "Content-Lengthx", BGW_HDR_OTHER, false },
    { "Authorization", BGW_HDR_OTHER, false },
    { "Trailers", BGW_HDR_OTHER, false },
};

START_TEST(test_header_ids)
{
    char raw[8192];
    size_t n = (size_t)snprintf(raw, sizeof raw, "GET / HTTP/1.0\r\n");
    size_t count = sizeof id_cases / sizeof id_cases[0];
    for (size_t k = 0; k < count; k++) {
        const char *v = id_cases[k].id == BGW_HDR_CONTENT_LENGTH ? "0"
                        : id_cases[k].id == BGW_HDR_HOST        ? "a"
                        : id_cases[k].id == BGW_HDR_TRANSFER_ENCODING ? NULL : "x";
        if (!v) continue;   /* Transfer-Encoding is not allowed in HTTP/1.0: checked below */
        n += (size_t)snprintf(raw + n, sizeof raw - n, "%s: %s\r\n", id_cases[k].name, v);
    }
    n += (size_t)snprintf(raw + n, sizeof raw - n, "\r\n");
    struct bgw_http1 c;
    struct bgw_http_head h;
    int rc = parse(&c, false, raw, n, &h, NULL);
    ck_assert_int_eq(rc, (int)n);
    ck_assert_uint_eq(h.n_headers, count - 1);
    size_t j = 0;
    for (size_t k = 0; k < count; k++) {
        if (id_cases[k].id == BGW_HDR_TRANSFER_ENCODING) continue;
        ck_assert_msg(h.headers[j].id == id_cases[k].id, "%s: id %u", id_cases[k].name, h.headers[j].id);
        ck_assert_msg(h.headers[j].hop == id_cases[k].hop, "%s: hop %u", id_cases[k].name, h.headers[j].hop);
        j++;
    }
    /* and Transfer-Encoding, in a 1.1 request */
    rc = parse(&c, false, POST_H "transfer-ENCODING: chunked\r\n\r\n", 0, &h, NULL);
    ck_assert_int_gt(rc, 0);
    ck_assert_uint_eq(h.headers[1].id, BGW_HDR_TRANSFER_ENCODING);
    ck_assert_uint_eq(h.headers[1].hop, 1);
}
END_TEST

START_TEST(test_connection_tokens)
{
    struct bgw_http1 c;
    struct bgw_http_head h;
    const char *raw = "GET / HTTP/1.1\r\nHost: a\r\nX-Foo: 1\r\nx-bar: 2\r\nX-Baz: 3\r\nAuthorization: t\r\n"
                      "Connection: close, X-FOO ,\tX-Bar,,host\r\nConnection: authorization\r\n\r\n";
    ck_assert_int_gt(parse(&c, false, raw, 0, &h, NULL), 0);
    ck_assert(!h.keep_alive);
    ck_assert_int_eq(h.host, 0);
    ck_assert_uint_eq(h.headers[0].hop, 0);     /* Host is never stripped: the request was routed on it */
    ck_assert_uint_eq(h.headers[1].hop, 1);     /* X-Foo */
    ck_assert_uint_eq(h.headers[2].hop, 1);     /* x-bar */
    ck_assert_uint_eq(h.headers[3].hop, 0);     /* X-Baz: not listed */
    ck_assert_uint_eq(h.headers[4].hop, 1);     /* Authorization: listed by the second Connection */
    ck_assert_uint_eq(h.headers[5].hop, 1);     /* Connection itself */
    ck_assert_uint_eq(h.headers[6].hop, 1);
}
END_TEST

/* At most 64 Connection tokens per message, over all its Connection headers. */
static int parse_connection_tokens(int count, int per_header)
{
    char *raw = malloc(64 + (size_t)count * 24);
    size_t n = (size_t)sprintf(raw, "GET / HTTP/1.1\r\nHost: a");
    for (int k = 0; k < count; k++)
        n += (size_t)sprintf(raw + n, k % per_header ? ", t%d" : "\r\nConnection: t%d", k);
    n += (size_t)sprintf(raw + n, "\r\n\r\n");
    struct bgw_http1 c;
    struct bgw_http_head h;
    int rc = parse(&c, false, raw, n, &h, NULL);
    free(raw);
    return rc;
}

START_TEST(test_connection_token_cap)
{
    ck_assert_int_gt(parse_connection_tokens(64, 64), 0);
    ck_assert_int_gt(parse_connection_tokens(64, 3), 0);
    ck_assert_int_eq(parse_connection_tokens(65, 65), -400);
    ck_assert_int_eq(parse_connection_tokens(65, 5), -400);
    ck_assert_int_eq(parse_connection_tokens(3000, 100), -400);
}
END_TEST

START_TEST(test_head_find)
{
    struct bgw_http1 c;
    struct bgw_http_head h;
    char *buf;
    ck_assert_int_gt(parse(&c, false, "GET / HTTP/1.1\r\nHost: a\r\nX-Api-Key: k\r\nACCEPT: */*\r\n\r\n", 0, &h, &buf), 0);
    ck_assert_int_eq(bgw_http_head_find(&h, "x-api-key", 9), 1);
    ck_assert_int_eq(bgw_http_head_find(&h, "accept", 6), 2);
    ck_assert_int_eq(bgw_http_head_find(&h, "host", 4), 0);
    ck_assert_int_eq(bgw_http_head_find(&h, "x-api", 5), -1);
    ck_assert_int_eq(bgw_http_head_find(&h, "cookie", 6), -1);
    free(buf);
}
END_TEST

/* ---- incremental arrival ---- */

static const char *incremental_heads[] = {
    "GET /inc HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n",
    "\r\n\r\nPOST /inc HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
    "POST /inc HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    "GET / HTTP/1.0\r\n\r\n",
};

START_TEST(test_incremental_prefixes)
{
    const char *raw = incremental_heads[_i];
    size_t len = strlen(raw);
    struct bgw_http1 c, c1;
    struct bgw_http_head whole, part;
    char *wbuf;
    int want = parse(&c1, false, raw, 0, &whole, &wbuf);
    ck_assert_int_eq(want, (int)len);
    /* the same growing buffer, one more byte each call: 0 until the last byte */
    char *buf = malloc(len);
    bgw_http1_init(&c, false);
    const char *why;
    for (size_t n = 0; n < len; n++) {
        buf[n] = raw[n];
        int rc = bgw_http1_parse_head(&c, buf, n + 1, &part, &why);
        if (n + 1 < len) ck_assert_msg(rc == 0, "prefix %zu of %s: %d", n + 1, raw, rc);
        else ck_assert_int_eq(rc, want);
    }
    assert_same_head(&whole, wbuf, &part, buf);
    ck_assert_int_eq(c.complete, c1.complete);
    /* every prefix on a fresh codec gives 0 too */
    for (size_t n = 0; n < len; n++) {
        struct bgw_http1 f;
        bgw_http1_init(&f, false);
        char *p = dup_exact(raw, n);
        ck_assert_int_eq(bgw_http1_parse_head(&f, p, n, &part, &why), 0);
        free(p);
    }
    free(buf);
    free(wbuf);
}
END_TEST

/* A 30 KiB head fed one byte at a time: each call only looks at the new bytes. */
START_TEST(test_byte_by_byte_not_quadratic)
{
    size_t cap = 31 * 1024;
    char *raw = malloc(cap);
    size_t n = (size_t)snprintf(raw, cap, "GET /big HTTP/1.1\r\nHost: a\r\n");
    for (int k = 0; k < 98; k++) {
        n += (size_t)snprintf(raw + n, cap - n, "X-H%02d: ", k);
        memset(raw + n, 'v', 310);
        n += 310;
        memcpy(raw + n, "\r\n", 2);
        n += 2;
    }
    memcpy(raw + n, "\r\n", 2);
    n += 2;
    ck_assert_uint_gt(n, 30 * 1024);
    ck_assert_uint_lt(n, BGW_HTTP_MAX_REQUEST_HEAD);

    char *buf = malloc(n);
    struct bgw_http1 c;
    struct bgw_http_head h;
    const char *why;
    bgw_http1_init(&c, false);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        buf[i] = raw[i];
        rc = bgw_http1_parse_head(&c, buf, i + 1, &h, &why);
        if (i + 1 < n) {
            ck_assert_int_eq(rc, 0);
            /* the next call starts searching near the end, not at the start */
            ck_assert_uint_ge(c.scanned + 3, i + 1);
        }
    }
    ck_assert_int_eq(rc, (int)n);
    ck_assert_uint_eq(h.n_headers, 99);
    free(buf);
    free(raw);
}
END_TEST

/* ---- size limits ---- */

START_TEST(test_head_too_large)
{
    size_t len = BGW_HTTP_MAX_REQUEST_HEAD + 64;
    char *raw = malloc(len);
    size_t n = (size_t)snprintf(raw, len, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(raw + n, 'a', len - n);
    struct bgw_http1 c;
    struct bgw_http_head h;
    const char *why;
    /* incomplete and over the limit */
    bgw_http1_init(&c, false);
    ck_assert_int_eq(bgw_http1_parse_head(&c, raw, len, &h, &why), -431);
    /* incomplete, at the limit: still waiting */
    bgw_http1_init(&c, false);
    ck_assert_int_eq(bgw_http1_parse_head(&c, raw, BGW_HTTP_MAX_REQUEST_HEAD, &h, &why), 0);
    /* complete and over the limit */
    memcpy(raw + len - 4, "\r\n\r\n", 4);
    bgw_http1_init(&c, false);
    ck_assert_int_eq(bgw_http1_parse_head(&c, raw, len, &h, &why), -431);
    free(raw);
}
END_TEST

static int parse_n_headers(int count)
{
    char *raw = malloc(64 + (size_t)count * 16);
    size_t n = (size_t)sprintf(raw, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int k = 1; k < count; k++) n += (size_t)sprintf(raw + n, "X-%d: v\r\n", k);
    n += (size_t)sprintf(raw + n, "\r\n");
    struct bgw_http1 c;
    struct bgw_http_head h;
    int rc = parse(&c, false, raw, n, &h, NULL);
    if (rc > 0) ck_assert_uint_eq(h.n_headers, (unsigned)count);
    free(raw);
    return rc;
}

START_TEST(test_header_count_limit)
{
    ck_assert_int_gt(parse_n_headers(BGW_HTTP_MAX_HEADERS), 0);
    ck_assert_int_eq(parse_n_headers(BGW_HTTP_MAX_HEADERS + 1), -431);
    ck_assert_int_eq(parse_n_headers(300), -431);
}
END_TEST

/* ---- request bodies ---- */

struct body_case {
    const char *name;
    const char *head;       /* the request head */
    const char *body;       /* bytes after it */
    size_t body_len;        /* 0: strlen */
    long want_consumed;     /* -1: refused */
    const char *want_data;  /* decoded bytes (when not refused) */
};

#define TE_H POST_H "Transfer-Encoding: chunked\r\n\r\n"
#define CL5_H POST_H "Content-Length: 5\r\n\r\n"

static const struct body_case body_cases[] = {
    { "cl", CL5_H, "hello", 0, 5, "hello" },
    { "cl_pipelined", CL5_H, "helloGET / HTTP/1.1\r\n", 0, 5, "hello" },
    { "chunked", TE_H, "5\r\nhello\r\n0\r\n\r\n", 0, 15, "hello" },
    { "chunked_two", TE_H, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 0, 26, "hello world" },
    { "chunked_upper_hex", TE_H, "A\r\n0123456789\r\n0\r\n\r\n", 0, 20, "0123456789" },
    { "chunked_leading_zeros", TE_H, "0005\r\nhello\r\n000\r\n\r\n", 0, 20, "hello" },
    { "chunked_ext", TE_H, "5;name=value\r\nhello\r\n0;x\r\n\r\n", 0, 28, "hello" },
    { "chunked_ext_quoted", TE_H, "5;n=\"a b;c\"\r\nhello\r\n0\r\n\r\n", 0, 25, "hello" },
    { "chunked_ext_bws", TE_H, "5 ; n=v\r\nhello\r\n0\r\n\r\n", 0, 21, "hello" },
    { "chunked_trailing_ws", TE_H, "5 \r\nhello\r\n0\t\r\n\r\n", 0, 17, "hello" },
    { "chunked_trailers", TE_H, "5\r\nhello\r\n0\r\nX-T: 1\r\nX-U:\r\n\r\n", 0, 29, "hello" },
    { "chunked_pipelined", TE_H, "5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n", 0, 15, "hello" },
    { "chunked_no_crlf_after_data", TE_H, "5\r\nhelloXX0\r\n\r\n", 0, -1, NULL },
    { "chunked_lf_after_data", TE_H, "5\r\nhello\n0\r\n\r\n", 0, -1, NULL },
    { "chunked_cr_after_data", TE_H, "5\r\nhello\r0\r\n\r\n", 0, -1, NULL },
    { "chunked_data_too_long", TE_H, "3\r\nhello\r\n0\r\n\r\n", 0, -1, NULL },
    { "chunked_bare_lf_size", TE_H, "5\nhello\r\n0\r\n\r\n", 0, -1, NULL },
    { "chunked_bare_cr_size", TE_H, "5\rhello\r\n0\r\n\r\n", 0, -1, NULL },
    { "chunked_lf_in_ext", TE_H, "5;a\nb\r\nhello\r\n0\r\n\r\n", 0, -1, NULL },
    { "chunked_cr_in_ext", TE_H, "5;a\rb\r\nhello\r\n0\r\n\r\n", 0, -1, NULL },
    { "chunked_nul_in_ext", TE_H, "5;a\0b\r\nhello\r\n0\r\n\r\n", sizeof("5;a\0b\r\nhello\r\n0\r\n\r\n") - 1, -1, NULL },
    { "chunked_last_bare_lf", TE_H, "5\r\nhello\r\n0\n\n", 0, -1, NULL },
    { "chunked_end_bare_lf", TE_H, "5\r\nhello\r\n0\r\n\n", 0, -1, NULL },
    { "chunked_size_negative", TE_H, "-5\r\nhello\r\n0\r\n\r\n", 0, -1, NULL },
    { "chunked_size_plus", TE_H, "+5\r\nhello\r\n0\r\n\r\n", 0, -1, NULL },
    { "chunked_size_0x", TE_H, "0x5\r\nhello\r\n0\r\n\r\n", 0, -1, NULL },
    { "chunked_size_leading_space", TE_H, " 5\r\nhello\r\n0\r\n\r\n", 0, -1, NULL },
    { "chunked_size_not_hex", TE_H, "zz\r\nhello\r\n0\r\n\r\n", 0, -1, NULL },
    { "chunked_size_junk_after_ws", TE_H, "5 5\r\nhello\r\n0\r\n\r\n", 0, -1, NULL },
    { "chunked_size_empty", TE_H, "\r\nhello\r\n0\r\n\r\n", 0, -1, NULL },
    { "chunked_size_overflow", TE_H, "10000000000000000\r\nhello\r\n0\r\n\r\n", 0, -1, NULL },
    { "chunked_trailer_bare_lf", TE_H, "5\r\nhello\r\n0\r\nX: y\n\r\n", 0, -1, NULL },
    { "chunked_trailer_obs_fold", TE_H, "5\r\nhello\r\n0\r\nX: y\r\n z\r\n\r\n", 0, -1, NULL },
    { "chunked_trailer_space_before_colon", TE_H, "5\r\nhello\r\n0\r\nX : y\r\n\r\n", 0, -1, NULL },
    { "chunked_trailer_no_colon", TE_H, "5\r\nhello\r\n0\r\nXy\r\n\r\n", 0, -1, NULL },
    { "chunked_trailer_ctl", TE_H, "5\r\nhello\r\n0\r\nX: a\x01" "b\r\n\r\n", 0, -1, NULL },
    { "chunked_trailer_nul", TE_H, "5\r\nhello\r\n0\r\nX: a\0b\r\n\r\n",
      sizeof("5\r\nhello\r\n0\r\nX: a\0b\r\n\r\n") - 1, -1, NULL },
};
#define N_BODY (sizeof body_cases / sizeof body_cases[0])

/* Feed body bytes in pieces of `step` bytes (0: all at once), the way a connection would: what is not
 * consumed stays for the next call. */
static long feed_body(struct bgw_http1 *c, const char *body, size_t len, size_t step, struct sink *k)
{
    size_t off = 0, avail = 0;
    for (;;) {
        avail = step ? (avail + step > len ? len : avail + step) : len;
        long n = bgw_http1_body(c, body + off, avail - off, sink_cb, k);
        if (n < 0) return -1;
        off += (size_t)n;
        if (c->complete || avail == len) return (long)off;
    }
}

START_TEST(test_request_body)
{
    const struct body_case *t = &body_cases[_i];
    size_t blen = t->body_len ? t->body_len : strlen(t->body);
    static const size_t steps[] = { 0, 1, 2, 3, 7 };
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        struct bgw_http1 c;
        struct bgw_http_head h;
        char *hbuf;
        ck_assert_int_gt(parse(&c, false, t->head, 0, &h, &hbuf), 0);
        ck_assert(h.has_body);
        char *body = dup_exact(t->body, blen);
        struct sink k = { .len = 0 };
        long n = feed_body(&c, body, blen, steps[s], &k);
        ck_assert_msg(n == t->want_consumed, "%s step %zu: consumed %ld, want %ld", t->name, steps[s], n,
                      t->want_consumed);
        if (n >= 0) {
            ck_assert(c.complete);
            ck_assert_uint_eq(k.len, strlen(t->want_data));
            ck_assert(memcmp(k.data, t->want_data, k.len) == 0);
            /* after the end, nothing more is consumed */
            if ((size_t)n < blen) ck_assert_int_eq(bgw_http1_body(&c, body + n, blen - (size_t)n, sink_cb, &k), 0);
            ck_assert_int_eq(bgw_http1_eof(&c), 0);
        } else {
            ck_assert(!c.complete);
            /* a refused body stays refused */
            ck_assert_int_eq(bgw_http1_body(&c, "0\r\n\r\n", 5, sink_cb, &k), -1);
        }
        free(body);
        free(hbuf);
    }
}
END_TEST

START_TEST(test_body_cb_refuses)
{
    /* Content-Length and chunked: the callback's -1 fails the parse */
    const char *heads[] = { CL5_H, TE_H };
    const char *bodies[] = { "hello", "5\r\nhello\r\n0\r\n\r\n" };
    for (int k = 0; k < 2; k++) {
        struct bgw_http1 c;
        struct bgw_http_head h;
        ck_assert_int_gt(parse(&c, false, heads[k], 0, &h, NULL), 0);
        struct sink s = { .refuse_after = 1 };
        ck_assert_int_eq(bgw_http1_body(&c, bodies[k], strlen(bodies[k]), sink_cb, &s), -1);
        ck_assert(!c.complete);
    }
}
END_TEST

START_TEST(test_chunked_limits)
{
    struct bgw_http1 c;
    struct bgw_http_head h;
    struct sink k = { .len = 0 };
    /* a chunk-size line of 5000 bytes (leading zeros) is refused; one of 100 is fine */
    size_t len = 5000 + 15;
    char *b = malloc(len);
    memset(b, '0', 5000);
    memcpy(b + 5000, "5\r\nhello\r\n0\r\n\r\n", 15);
    ck_assert_int_gt(parse(&c, false, TE_H, 0, &h, NULL), 0);
    ck_assert_int_eq(bgw_http1_body(&c, b, len, sink_cb, &k), -1);
    ck_assert_int_gt(parse(&c, false, TE_H, 0, &h, NULL), 0);
    ck_assert_int_eq(bgw_http1_body(&c, b + 4900, len - 4900, sink_cb, &k), (long)(len - 4900));
    ck_assert(c.complete);
    free(b);
    /* a trailer section over 32 KiB is refused */
    len = 3 + 40 * 1024 + 2;
    b = malloc(len);
    memcpy(b, "0\r\n", 3);
    for (size_t i = 3; i + 1024 <= len - 2; i += 1024) {
        memset(b + i, 'a', 1022);
        b[i + 1] = ':';
        memcpy(b + i + 1022, "\r\n", 2);
    }
    memcpy(b + len - 2, "\r\n", 2);
    ck_assert_int_gt(parse(&c, false, TE_H, 0, &h, NULL), 0);
    ck_assert_int_eq(bgw_http1_body(&c, b, len, sink_cb, &k), -1);
    free(b);
    /* the largest 64-bit chunk size is read (and waits for its data) */
    ck_assert_int_gt(parse(&c, false, TE_H, 0, &h, NULL), 0);
    ck_assert_int_eq(bgw_http1_body(&c, "ffffffffffffffff\r\nab", 20, sink_cb, &k), 20);
    ck_assert(!c.complete);
    ck_assert_int_eq(bgw_http1_eof(&c), -1);
}
END_TEST

START_TEST(test_request_pipelined)
{
    const char *raw = "POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                      "POST /2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n"
                      "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n"
                      "GET /4 HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t len = strlen(raw);
    char *buf = dup_exact(raw, len);
    const char *targets[] = { "/1", "/2", "/3", "/4" };
    const char *bodies[] = { "abc", "de", "", "" };
    struct bgw_http1 c;
    bgw_http1_init(&c, false);
    size_t off = 0;
    for (int m = 0; m < 4; m++) {
        struct bgw_http_head h;
        const char *why;
        int rc = bgw_http1_parse_head(&c, buf + off, len - off, &h, &why);
        ck_assert_int_gt(rc, 0);
        ck_assert_uint_eq(h.target_len, 2);
        ck_assert(memcmp(h.target, targets[m], 2) == 0);
        off += (size_t)rc;
        struct sink k = { .len = 0 };
        if (h.has_body) {
            long n = bgw_http1_body(&c, buf + off, len - off, sink_cb, &k);
            ck_assert_int_gt(n, 0);
            off += (size_t)n;
        }
        ck_assert(c.complete);
        ck_assert_uint_eq(k.len, strlen(bodies[m]));
        ck_assert(memcmp(k.data, bodies[m], k.len) == 0);
    }
    ck_assert_uint_eq(off, len);
    free(buf);
}
END_TEST

START_TEST(test_request_upgrade_with_body)
{
    struct bgw_http1 c;
    struct bgw_http_head h;
    const char *raw = "POST /u HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: x\r\nContent-Length: 2\r\n\r\n";
    ck_assert_int_gt(parse(&c, false, raw, 0, &h, NULL), 0);
    ck_assert(h.has_body);
    ck_assert(!c.complete);
    struct sink k = { .len = 0 };
    ck_assert_int_eq(bgw_http1_body(&c, "okGET", 5, sink_cb, &k), 2);
    ck_assert(c.complete);
    ck_assert_uint_eq(h.headers[1].hop, 1);
    ck_assert_uint_eq(h.headers[2].hop, 1);
}
END_TEST

/* ---- responses ---- */

struct resp_ok {
    const char *raw;
    bool head_request;
    unsigned status;
    const char *reason;
    int minor;
    bool keep_alive, has_body, chunked, until_close;
    uint64_t cl;
};

static const struct resp_ok resp_ok_cases[] = {
    { "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, 200, "OK", 1, true, true, false, false, 5 },
    { "HTTP/1.1 200\r\nContent-Length: 5\r\n\r\n", false, 200, "", 1, true, true, false, false, 5 },
    { "HTTP/1.1 200 \r\nContent-Length: 5\r\n\r\n", false, 200, "", 1, true, true, false, false, 5 },
    { "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false, 404, "Not Found", 1, true, false, false, false, 0 },
    { "HTTP/1.1 599 Odd\t Reason \xe2\x9c\x93\r\nContent-Length: 0\r\n\r\n", false, 599, "Odd\t Reason \xe2\x9c\x93", 1,
      true, false, false, false, 0 },
    { "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", false, 200, "OK", 0, false, true, false, false, 5 },
    { "HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n", false, 200, "OK", 0, true, true,
      false, false, 5 },
    { "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\n", false, 200, "OK", 1, false, true, false,
      false, 5 },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, 200, "OK", 1, true, true, true, false, 0 },
    { "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, 200, "OK", 0, false, true, true, false, 0 },
    { "HTTP/1.1 200 OK\r\n\r\n", false, 200, "OK", 1, false, true, false, true, 0 },
    { "HTTP/1.0 200 OK\r\nServer: x\r\n\r\n", false, 200, "OK", 0, false, true, false, true, 0 },
    { "HTTP/1.1 204 No Content\r\n\r\n", false, 204, "No Content", 1, true, false, false, false, 0 },
    { "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", false, 204, "No Content", 1, true, false, false, false, 0 },
    { "HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n", false, 304, "Not Modified", 1, true, false, false,
      false, 1234 },
    { "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false, 304, "Not Modified", 1, true, false,
      true, false, 0 },
    { "HTTP/1.1 100 Continue\r\n\r\n", false, 100, "Continue", 1, true, false, false, false, 0 },
    { "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", false, 103, "Early Hints", 1, true, false,
      false, false, 0 },
    { "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: ws\r\n\r\n", false, 101,
      "Switching Protocols", 1, true, false, false, false, 0 },
    /* framing on 1xx / 204: no body read, but the connection is not reused */
    { "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false, 204, "No Content", 1, false, false, false,
      false, 5 },
    { "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", false, 204, "No Content", 1, false, false,
      true, false, 0 },
    { "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n", false, 100, "Continue", 1, false, false, false, false, 5 },
    /* responses to HEAD */
    { "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true, 200, "OK", 1, true, false, false, false, 100 },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, 200, "OK", 1, true, false, true, false, 0 },
    { "HTTP/1.1 200 OK\r\n\r\n", true, 200, "OK", 1, true, false, false, false, 0 },
    { "HTTP/1.0 200 OK\r\n\r\n", true, 200, "OK", 0, false, false, false, false, 0 },
    /* Host in a response is just a header */
    { "HTTP/1.1 200 OK\r\nHost: a b\r\nHost: c\r\nContent-Length: 1\r\n\r\n", false, 200, "OK", 1, true, true, false,
      false, 1 },
};
#define N_RESP_OK (sizeof resp_ok_cases / sizeof resp_ok_cases[0])

START_TEST(test_response_ok)
{
    const struct resp_ok *t = &resp_ok_cases[_i];
    struct bgw_http1 c;
    struct bgw_http_head h;
    size_t len = strlen(t->raw);
    char *buf = dup_exact(t->raw, len);
    const char *why;
    bgw_http1_init(&c, true);
    c.head_request = t->head_request;
    int rc = bgw_http1_parse_head(&c, buf, len, &h, &why);
    ck_assert_msg(rc == (int)len, "%s: %d (%s)", t->raw, rc, why);
    ck_assert_uint_eq(h.status, t->status);
    ck_assert_uint_eq(h.reason_len, strlen(t->reason));
    ck_assert(memcmp(h.reason, t->reason, h.reason_len) == 0);
    ck_assert_uint_eq(h.major, 1);
    ck_assert_uint_eq(h.minor, (unsigned)t->minor);
    ck_assert_msg(h.keep_alive == t->keep_alive, "%s: keep_alive %d", t->raw, h.keep_alive);
    ck_assert_int_eq(h.has_body, t->has_body);
    ck_assert_int_eq(h.chunked, t->chunked);
    ck_assert_int_eq(h.until_close, t->until_close);
    ck_assert_uint_eq(h.content_length, t->cl);
    ck_assert_int_eq(h.host, -1);
    ck_assert_int_eq(c.complete, !t->has_body);
    if (!t->has_body) {
        /* bytes after a bodiless response are the next response's, not a body */
        struct sink k = { .len = 0 };
        ck_assert_int_eq(bgw_http1_body(&c, "hello", 5, sink_cb, &k), 0);
        ck_assert_uint_eq(k.calls, 0);
        ck_assert_int_eq(bgw_http1_eof(&c), 0);
    }
    free(buf);
}
END_TEST

static const struct req_bad resp_bad_cases[] = {
    { "status_two_digits", "HTTP/1.1 20 OK\r\n\r\n", 0, -400 },
    { "status_four_digits", "HTTP/1.1 2000 OK\r\n\r\n", 0, -400 },
    { "status_letters", "HTTP/1.1 abc OK\r\n\r\n", 0, -400 },
    { "status_000", "HTTP/1.1 000 Zero\r\n\r\n", 0, -400 },
    { "status_099", "HTTP/1.1 099 Low\r\n\r\n", 0, -400 },
    { "status_600", "HTTP/1.1 600 High\r\n\r\n", 0, -400 },
    { "status_double_space", "HTTP/1.1  200 OK\r\n\r\n", 0, -400 },
    { "status_tab", "HTTP/1.1\t200 OK\r\n\r\n", 0, -400 },
    { "status_no_code", "HTTP/1.1\r\n\r\n", 0, -400 },
    { "status_http2", "HTTP/2 200 OK\r\n\r\n", 0, -400 },
    { "status_http20", "HTTP/2.0 200 OK\r\n\r\n", 0, -400 },
    { "status_http12", "HTTP/1.2 200 OK\r\n\r\n", 0, -400 },
    { "status_lowercase", "http/1.1 200 OK\r\n\r\n", 0, -400 },
    { "status_icy", "ICY 200 OK\r\n\r\n", 0, -400 },
    { "status_leading_crlf", "\r\nHTTP/1.1 200 OK\r\n\r\n", 0, -400 },
    { "status_reason_ctl", "HTTP/1.1 200 O\x01K\r\n\r\n", 0, -400 },
    { "status_reason_bare_cr", "HTTP/1.1 200 O\rK\r\n\r\n", 0, -400 },
    { "status_bare_lf", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", 0, -400 },
    { "resp_cl_te", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 0, -400 },
    { "resp_cl_duplicate", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 0, -400 },
    { "resp_cl_bad", "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n", 0, -400 },
    { "resp_te_gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, -501 },
    { "resp_te_gzip_chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0, -501 },
    { "resp_te_chunked_tab", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\t\r\n\r\n", 0, -400 },
    { "resp_obs_fold", "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\n\r\n", 0, -400 },
    { "resp_space_before_colon", "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", 0, -400 },
    { "resp_nul_in_value", "HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n", sizeof("HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n") - 1,
      -400 },
};
#define N_RESP_BAD (sizeof resp_bad_cases / sizeof resp_bad_cases[0])

START_TEST(test_response_refused)
{
    const struct req_bad *t = &resp_bad_cases[_i];
    struct bgw_http1 c;
    struct bgw_http_head h;
    size_t len = t->len ? t->len : strlen(t->raw);
    char *buf = dup_exact(t->raw, len);
    const char *why = NULL;
    bgw_http1_init(&c, true);
    int rc = bgw_http1_parse_head(&c, buf, len, &h, &why);
    ck_assert_msg(rc == t->want, "%s: got %d (%s), want %d", t->name, rc, why ? why : "?", t->want);
    ck_assert(why && why[0]);
    free(buf);
}
END_TEST

START_TEST(test_response_head_too_large)
{
    size_t len = BGW_HTTP_MAX_RESPONSE_HEAD + 64;
    char *raw = malloc(len);
    size_t n = (size_t)snprintf(raw, len, "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(raw + n, 'a', len - n);
    struct bgw_http1 c;
    struct bgw_http_head h;
    const char *why;
    bgw_http1_init(&c, true);
    ck_assert_int_eq(bgw_http1_parse_head(&c, raw, BGW_HTTP_MAX_REQUEST_HEAD + 100, &h, &why), 0);
    ck_assert_int_eq(bgw_http1_parse_head(&c, raw, len, &h, &why), -431);
    free(raw);
}
END_TEST

START_TEST(test_response_bodies_split)
{
    /* each response body fed 1..7 bytes at a time */
    static const struct {
        const char *head, *body, *want;
    } cases[] = {
        { "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", "hello worldHTTP/1.1", "hello world" },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\nhello\r\n1;e=1\r\n \r\n5\r\nworld\r\n0\r\n"
          "Server-Timing: x\r\n\r\nHTTP/1.1", "hello world" },
    };
    for (size_t k = 0; k < 2; k++) {
        for (size_t step = 1; step <= 7; step++) {
            struct bgw_http1 c;
            struct bgw_http_head h;
            ck_assert_int_gt(parse(&c, true, cases[k].head, 0, &h, NULL), 0);
            struct sink s = { .len = 0 };
            size_t blen = strlen(cases[k].body);
            long n = feed_body(&c, cases[k].body, blen, step, &s);
            ck_assert_int_eq(n, (long)(blen - strlen("HTTP/1.1")));
            ck_assert(c.complete);
            ck_assert_uint_eq(s.len, 11);
            ck_assert(memcmp(s.data, cases[k].want, 11) == 0);
            if (step == 1) ck_assert_uint_eq(s.calls, 11);
        }
    }
}
END_TEST

START_TEST(test_response_until_close)
{
    struct bgw_http1 c;
    struct bgw_http_head h;
    ck_assert_int_gt(parse(&c, true, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", 0, &h, NULL), 0);
    ck_assert(h.until_close);
    ck_assert(h.has_body);
    ck_assert(!h.keep_alive);
    struct sink k = { .len = 0 };
    ck_assert_int_eq(bgw_http1_body(&c, "part one, ", 10, sink_cb, &k), 10);
    ck_assert_int_eq(bgw_http1_body(&c, "HTTP/1.1 200 OK\r\n", 17, sink_cb, &k), 17);
    ck_assert(!c.complete);
    ck_assert_int_eq(bgw_http1_eof(&c), 0);
    ck_assert(c.complete);
    ck_assert_uint_eq(k.len, 27);
    ck_assert(memcmp(k.data, "part one, HTTP/1.1 200 OK\r\n", 27) == 0);
    ck_assert_int_eq(bgw_http1_eof(&c), 0);
}
END_TEST

START_TEST(test_response_cut_short)
{
    struct bgw_http1 c;
    struct bgw_http_head h;
    struct sink k = { .len = 0 };
    /* Content-Length not reached */
    ck_assert_int_gt(parse(&c, true, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 0, &h, NULL), 0);
    ck_assert_int_eq(bgw_http1_body(&c, "hello", 5, sink_cb, &k), 5);
    ck_assert_int_eq(bgw_http1_eof(&c), -1);
    ck_assert(!c.complete);
    /* chunked: mid-chunk, and after data but before the last chunk */
    ck_assert_int_gt(parse(&c, true, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, &h, NULL), 0);
    ck_assert_int_eq(bgw_http1_body(&c, "5\r\nhel", 6, sink_cb, &k), 6);
    ck_assert_int_eq(bgw_http1_eof(&c), -1);
    ck_assert_int_gt(parse(&c, true, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, &h, NULL), 0);
    ck_assert_int_eq(bgw_http1_body(&c, "5\r\nhello\r\n", 10, sink_cb, &k), 10);
    ck_assert_int_eq(bgw_http1_eof(&c), -1);
    /* before any body byte */
    ck_assert_int_gt(parse(&c, true, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", 0, &h, NULL), 0);
    ck_assert_int_eq(bgw_http1_eof(&c), -1);
}
END_TEST

START_TEST(test_response_bad_chunk)
{
    static const char *bad[] = { "x\r\n", "5\r\nhelloXY", "-1\r\n", "5\nhello", "0\r\nX: y\n\n" };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        struct bgw_http1 c;
        struct bgw_http_head h;
        struct sink s = { .len = 0 };
        ck_assert_int_gt(parse(&c, true, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, &h, NULL), 0);
        ck_assert_msg(bgw_http1_body(&c, bad[k], strlen(bad[k]), sink_cb, &s) == -1, "%s", bad[k]);
    }
}
END_TEST

START_TEST(test_response_pipelined)
{
    const char *raw = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
                      "HTTP/1.1 204 No Content\r\n\r\n"
                      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ndef\r\n0\r\n\r\n"
                      "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"
                      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\ngh";
    size_t len = strlen(raw);
    char *buf = dup_exact(raw, len);
    static const unsigned status[] = { 200, 204, 200, 304, 200 };
    static const char *bodies[] = { "abc", "", "def", "", "gh" };
    struct bgw_http1 c;
    bgw_http1_init(&c, true);
    size_t off = 0;
    for (int m = 0; m < 5; m++) {
        struct bgw_http_head h;
        const char *why;
        int rc = bgw_http1_parse_head(&c, buf + off, len - off, &h, &why);
        ck_assert_int_gt(rc, 0);
        ck_assert_uint_eq(h.status, status[m]);
        ck_assert(h.keep_alive);
        off += (size_t)rc;
        struct sink k = { .len = 0 };
        if (h.has_body) off += (size_t)bgw_http1_body(&c, buf + off, len - off, sink_cb, &k);
        ck_assert(c.complete);
        ck_assert_uint_eq(k.len, strlen(bodies[m]));
        ck_assert(memcmp(k.data, bodies[m], k.len) == 0);
    }
    ck_assert_uint_eq(off, len);
    free(buf);
}
END_TEST

START_TEST(test_response_incremental)
{
    const char *raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\n";
    size_t len = strlen(raw);
    char *buf = malloc(len);
    struct bgw_http1 c;
    struct bgw_http_head h;
    const char *why;
    bgw_http1_init(&c, true);
    for (size_t n = 0; n < len; n++) {
        buf[n] = raw[n];
        int rc = bgw_http1_parse_head(&c, buf, n + 1, &h, &why);
        ck_assert_int_eq(rc, n + 1 < len ? 0 : (int)len);
    }
    ck_assert_uint_eq(h.status, 200);
    ck_assert_uint_eq(h.content_length, 2);
    ck_assert(value_is(&h, 1, "b"));
    free(buf);
}
END_TEST

static Suite *http1_suite(void)
{
    Suite *s = suite_create("http1");
    TCase *tc = tcase_create("requests");
    tcase_add_loop_test(tc, test_request_ok, 0, (int)N_REQ_OK);
    tcase_add_loop_test(tc, test_request_refused, 0, (int)N_REQ_BAD);
    tcase_add_test(tc, test_header_values_trimmed);
    tcase_add_test(tc, test_header_ids);
    tcase_add_test(tc, test_connection_tokens);
    tcase_add_test(tc, test_connection_token_cap);
    tcase_add_test(tc, test_head_find);
    tcase_add_loop_test(tc, test_incremental_prefixes, 0,
                        (int)(sizeof incremental_heads / sizeof incremental_heads[0]));
    tcase_add_test(tc, test_byte_by_byte_not_quadratic);
    tcase_add_test(tc, test_head_too_large);
    tcase_add_test(tc, test_header_count_limit);
    suite_add_tcase(s, tc);

    tc = tcase_create("bodies");
    tcase_add_loop_test(tc, test_request_body, 0, (int)N_BODY);
    tcase_add_test(tc, test_body_cb_refuses);
    tcase_add_test(tc, test_chunked_limits);
    tcase_add_test(tc, test_request_pipelined);
    tcase_add_test(tc, test_request_upgrade_with_body);
    suite_add_tcase(s, tc);

    tc = tcase_create("responses");
    tcase_add_loop_test(tc, test_response_ok, 0, (int)N_RESP_OK);
    tcase_add_loop_test(tc, test_response_refused, 0, (int)N_RESP_BAD);
    tcase_add_test(tc, test_response_head_too_large);
    tcase_add_test(tc, test_response_bodies_split);
    tcase_add_test(tc, test_response_until_close);
    tcase_add_test(tc, test_response_cut_short);
    tcase_add_test(tc, test_response_bad_chunk);
    tcase_add_test(tc, test_response_pipelined);
    tcase_add_test(tc, test_response_incremental);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http1_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
