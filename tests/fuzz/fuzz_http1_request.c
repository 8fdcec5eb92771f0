/*
 * fuzz_http1_request.c - libFuzzer target for the HTTP/1.1 codec (dataplane/http1.h), request side.
 * fuzz_http1_response.c includes this file with FUZZ_HTTP1_RESPONSE set to 1 for the response side.
 *
 * The input is what a connection receives: a stream of messages. Each head is parsed; on success the
 * head is checked (see check_head: pointers inside the buffer, names are tokens, values hold no CR, LF
 * or NUL, at most one Content-Length and one Transfer-Encoding and never both, the framing flags agree
 * with the headers...), then its body is decoded with a callback that checks every piece lies in the
 * body bytes of the input, and the next message is read from where the body stopped. At the end of the
 * input an unfinished body is ended with bgw_http1_eof (only a close-delimited response may end so).
 * The same stream is read three ways: whole, in two pieces split at a point taken from the data, and
 * (when short) one byte at a time; each piece lands in a fresh heap buffer of exactly the bytes that
 * have arrived, so ASan flags any read past them. All readings must give the same events (a hash of
 * every head field, refusal, body byte and eof result). Any broken invariant calls __builtin_trap().
 * Responses alternate head_request (as if answering HEAD) from message to message, starting from a bit
 * of the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http1.h"

#ifndef FUZZ_HTTP1_RESPONSE
#define FUZZ_HTTP1_RESPONSE 0
#endif

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

#define MAX_MESSAGES 256
#define BYTEWISE_MAX 512        /* inputs up to this size are also fed one byte at a time */

static bool is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) return true;
    return ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool name_eq(const struct bgw_http_header *x, const char *lit)
{
    size_t n = strlen(lit);
    return x->name_len == n && strncasecmp(x->name, lit, n) == 0;
}

static bool value_eq(const struct bgw_http_header *x, const char *lit)
{
    size_t n = strlen(lit);
    return x->value_len == n && strncasecmp(x->value, lit, n) == 0;
}

static bool inside(const char *p, size_t n, const char *lo, const char *hi)
{
    return p && p >= lo && p <= hi && n <= (size_t)(hi - p);
}

/* ---- one reading of the stream ---- */

struct reading {
    const uint8_t *in;
    size_t size;
    bool response;
    bool head_bit;          /* head_request of the first message (responses) */
    char *buf;              /* the bytes arrived so far, in an exact-size heap buffer */
    size_t avail;
    size_t step;            /* bytes per arrival after the first (0: all the rest) */
    size_t body_lo;         /* pieces of body lie in buf[body_lo, avail) */
    uint64_t body_bytes;
    uint64_t hash;
};

static void mix(struct reading *r, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        r->hash ^= s[i];
        r->hash *= 1099511628211ull;
    }
}

static void mix_u64(struct reading *r, uint64_t v)
{
    mix(r, &v, sizeof v);
}

/* More bytes arrive: a new exact-size buffer holding all of them. Returns false at the end of input. */
static bool arrive(struct reading *r)
{
    if (r->buf && r->avail == r->size) return false;
    size_t next = r->step ? r->avail + r->step : r->size;
    if (next > r->size) next = r->size;
    char *b = malloc(next ? next : 1);
    CHECK(b);
    if (next) memcpy(b, r->in, next);
    free(r->buf);
    r->buf = b;
    r->avail = next;
    return true;
}

static int body_piece(void *ctx, const char *data, size_t len)
{
    struct reading *r = ctx;
    CHECK(len > 0);
    CHECK(inside(data, len, r->buf + r->body_lo, r->buf + r->avail));
    mix(r, data, len);
    r->body_bytes += len;
    return 0;
}

static void check_head(const struct bgw_http1 *c, const struct bgw_http_head *h, const char *b, size_t len,
                       int rc, bool response)
{
    CHECK(rc > 0 && (size_t)rc <= len && h->head_len == (uint32_t)rc);
    size_t limit = response ? BGW_HTTP_MAX_RESPONSE_HEAD : BGW_HTTP_MAX_REQUEST_HEAD;
    CHECK(h->head_len <= limit + 8);                               /* + skipped leading CRLFs */
    CHECK(h->head_len >= 4 && memcmp(b + h->head_len - 4, "\r\n\r\n", 4) == 0);
    CHECK(h->n_headers <= BGW_HTTP_MAX_HEADERS);
    CHECK(h->major == 1 && h->minor <= 1);
    const char *end = b + h->head_len;

    int n_cl = 0, n_te = 0, n_host = 0, cl_at = -1;
    for (uint32_t k = 0; k < h->n_headers; k++) {
        const struct bgw_http_header *x = &h->headers[k];
        CHECK(inside(x->name, x->name_len, b, end));
        CHECK(inside(x->value, x->value_len, b, end));
        CHECK(x->name_len > 0 && x->name[x->name_len] == ':');
        CHECK(x->name == b || x->name[-1] == '\n');                 /* a name starts a line */
        for (uint32_t i = 0; i < x->name_len; i++) CHECK(is_tchar((unsigned char)x->name[i]));
        CHECK(x->value > x->name + x->name_len);
        for (uint32_t i = 0; i < x->value_len; i++) {
            unsigned char ch = (unsigned char)x->value[i];
            CHECK(ch != '\r' && ch != '\n' && ch != 0 && ch != 0x7f && (ch >= 0x20 || ch == '\t'));
        }
        if (x->value_len) {
            CHECK(x->value[0] != ' ' && x->value[0] != '\t');
            CHECK(x->value[x->value_len - 1] != ' ' && x->value[x->value_len - 1] != '\t');
        }
        CHECK((x->id == BGW_HDR_CONTENT_LENGTH) == name_eq(x, "content-length"));
        CHECK((x->id == BGW_HDR_TRANSFER_ENCODING) == name_eq(x, "transfer-encoding"));
        CHECK((x->id == BGW_HDR_HOST) == name_eq(x, "host"));
        CHECK((x->id == BGW_HDR_CONNECTION) == name_eq(x, "connection"));
        switch (x->id) {
        case BGW_HDR_CONNECTION: case BGW_HDR_KEEP_ALIVE: case BGW_HDR_PROXY_CONNECTION: case BGW_HDR_TE:
        case BGW_HDR_TRAILER: case BGW_HDR_UPGRADE: case BGW_HDR_TRANSFER_ENCODING: case BGW_HDR_CONTENT_LENGTH:
            CHECK(x->hop == 1);
            break;
        case BGW_HDR_HOST:
            CHECK(response || x->hop == 0);                         /* never stripped from a request */
            break;
        default:
            CHECK(x->hop <= 1);
            break;
        }
        if (x->id == BGW_HDR_CONTENT_LENGTH) {
            n_cl++;
            cl_at = (int)k;
        }
        if (x->id == BGW_HDR_TRANSFER_ENCODING) {
            n_te++;
            CHECK(value_eq(x, "chunked"));
        }
        if (x->id == BGW_HDR_HOST) n_host++;
    }
    /* framing: at most one Content-Length, at most one Transfer-Encoding (chunked), never both */
    CHECK(n_cl <= 1 && n_te <= 1 && !(n_cl && n_te));
    CHECK(h->has_content_length == (n_cl == 1));
    CHECK(h->chunked == (n_te == 1));
    CHECK(!(h->chunked && h->has_content_length));
    if (h->has_content_length) {
        const struct bgw_http_header *x = &h->headers[cl_at];
        CHECK(x->value_len >= 1 && x->value_len <= 18);
        uint64_t v = 0;
        for (uint32_t i = 0; i < x->value_len; i++) {
            CHECK(x->value[i] >= '0' && x->value[i] <= '9');
            v = v * 10 + (uint64_t)(x->value[i] - '0');
        }
        CHECK(v == h->content_length);
    } else {
        CHECK(h->content_length == 0);
    }
    /* what the head says agrees with what the decoder will do */
    CHECK(h->has_body == !c->complete);

    if (!response) {
        size_t skip = 0;
        while (skip + 1 < h->head_len && b[skip] == '\r' && b[skip + 1] == '\n') skip += 2;
        CHECK(skip <= 8);
        CHECK(h->method == b + skip && h->method_len > 0);
        for (uint32_t i = 0; i < h->method_len; i++) CHECK(is_tchar((unsigned char)h->method[i]));
        CHECK(h->method[h->method_len] == ' ');
        CHECK(inside(h->target, h->target_len, b, end) && h->target_len > 0);
        CHECK(h->target == h->method + h->method_len + 1);
        for (uint32_t i = 0; i < h->target_len; i++) {
            unsigned char ch = (unsigned char)h->target[i];
            CHECK(ch > 0x20 && ch < 0x7f && ch != '"' && ch != '<' && ch != '>' && ch != '#');
        }
        CHECK(memcmp(h->target + h->target_len, " HTTP/1.", 8) == 0);
        CHECK(n_host <= 1);
        CHECK((h->host >= 0) == (n_host == 1));
        if (h->host >= 0) {
            CHECK((uint32_t)h->host < h->n_headers && h->headers[h->host].id == BGW_HDR_HOST);
            const struct bgw_http_header *x = &h->headers[h->host];
            for (uint32_t i = 0; i < x->value_len; i++) {
                unsigned char ch = (unsigned char)x->value[i];
                CHECK(ch > 0x20 && ch < 0x7f && ch != '/' && ch != '@' && ch != '?' && ch != '#');
            }
        }
        if (h->minor == 1) CHECK(h->host >= 0);
        if (h->minor == 0) CHECK(!h->chunked);
        CHECK(h->has_body == (h->chunked || h->content_length > 0));
        CHECK(!h->until_close);
        CHECK(h->status == 0);
    } else {
        CHECK(h->status >= 100 && h->status <= 599);
        CHECK(memcmp(b, "HTTP/1.", 7) == 0);
        CHECK(h->host == -1);
        CHECK(h->reason_len == 0 || inside(h->reason, h->reason_len, b, end));
        for (uint32_t i = 0; i < h->reason_len; i++) CHECK(h->reason[i] != '\r' && h->reason[i] != '\n');
        bool bodiless = c->head_request || h->status / 100 == 1 || h->status == 204 || h->status == 304;
        if (bodiless) CHECK(!h->has_body && !h->until_close);
        if (h->until_close) CHECK(h->has_body && !h->chunked && !h->has_content_length && !h->keep_alive);
        if (h->has_body) CHECK((int)h->chunked + (int)(h->content_length > 0) + (int)h->until_close == 1);
        if ((h->status / 100 == 1 || h->status == 204) && (h->chunked || h->content_length > 0))
            CHECK(!h->keep_alive);                                  /* odd framing: never reused */
    }
}

static void mix_head(struct reading *r, const struct bgw_http_head *h, const char *b)
{
    uint64_t flags = (uint64_t)h->keep_alive | (uint64_t)h->has_body << 1 | (uint64_t)h->chunked << 2 |
                     (uint64_t)h->has_content_length << 3 | (uint64_t)h->until_close << 4 |
                     (uint64_t)h->expect_continue << 5 | (uint64_t)h->minor << 6;
    mix_u64(r, flags);
    mix_u64(r, h->content_length);
    mix_u64(r, h->status);
    mix_u64(r, (uint64_t)(int64_t)h->host);
    mix_u64(r, h->n_headers);
    if (h->method) mix_u64(r, (uint64_t)(h->method - b) << 32 | h->method_len);
    if (h->target) mix_u64(r, (uint64_t)(h->target - b) << 32 | h->target_len);
    mix_u64(r, h->reason_len);
    for (uint32_t k = 0; k < h->n_headers; k++) {
        const struct bgw_http_header *x = &h->headers[k];
        mix_u64(r, (uint64_t)(x->name - b) << 32 | x->name_len);
        mix_u64(r, (uint64_t)(x->value - b) << 32 | x->value_len);
        mix_u64(r, (uint64_t)x->id << 8 | x->hop);
    }
}

static uint64_t read_stream(const uint8_t *in, size_t size, bool response, bool head_bit, size_t first,
                            size_t step)
{
    struct reading r = { .in = in, .size = size, .response = response, .head_bit = head_bit, .step = step,
                         .hash = 14695981039346656037ull };
    struct bgw_http1 c;
    bgw_http1_init(&c, response);
    /* the first arrival */
    r.buf = malloc(first ? first : 1);
    CHECK(r.buf);
    if (first) memcpy(r.buf, in, first);
    r.avail = first;

    static struct bgw_http_head h;      /* ~3 KiB: keep it off libFuzzer's stack */
    size_t off = 0;
    for (unsigned msg = 0; msg < MAX_MESSAGES; msg++) {
        int rc;
        const char *why;
        for (;;) {
            if (response) c.head_request = (msg & 1) ^ head_bit;
            why = NULL;
            rc = bgw_http1_parse_head(&c, r.buf + off, r.avail - off, &h, &why);
            CHECK(why != NULL);
            if (rc != 0 || !arrive(&r)) break;
        }
        mix_u64(&r, (uint64_t)(int64_t)rc);
        if (rc == 0) {
            /* incomplete at the end of the input: never more than the limit waited for */
            CHECK(r.avail - off <= (response ? BGW_HTTP_MAX_RESPONSE_HEAD : BGW_HTTP_MAX_REQUEST_HEAD) + 8);
            break;
        }
        if (rc < 0) {
            CHECK(rc == -400 || rc == -431 || rc == -501 || rc == -505);
            CHECK(why[0] != '\0');
            break;
        }
        check_head(&c, &h, r.buf + off, r.avail - off, rc, response);
        mix_head(&r, &h, r.buf + off);
        off += (size_t)rc;

        r.body_lo = off;
        r.body_bytes = 0;
        bool ended_by_eof = false;
        if (h.has_body) {
            for (;;) {
                size_t given = r.avail - off;
                long n = bgw_http1_body(&c, r.buf + off, given, body_piece, &r);
                if (n < 0) break;
                CHECK((size_t)n <= given);
                off += (size_t)n;
                if (c.complete) break;
                CHECK((size_t)n == given);                          /* not complete: all taken */
                if (!arrive(&r)) break;
                r.body_lo = off;
            }
            if (!c.complete) {
                /* a refused body, or the input ended inside it */
                long again = bgw_http1_body(&c, r.buf + off, r.avail - off, body_piece, &r);
                mix_u64(&r, (uint64_t)again);
                int e = bgw_http1_eof(&c);
                mix_u64(&r, (uint64_t)(int64_t)e);
                if (e == 0) CHECK(response && h.until_close && c.complete && again >= 0);
                else CHECK(!c.complete);
                ended_by_eof = true;
            }
        } else {
            CHECK(c.complete);
            CHECK(bgw_http1_body(&c, r.buf + off, r.avail - off, body_piece, &r) == 0);
            CHECK(bgw_http1_eof(&c) == 0);
        }
        mix_u64(&r, r.body_bytes);
        if (c.complete && h.has_body && !h.chunked && !h.until_close) CHECK(r.body_bytes == h.content_length);
        if (ended_by_eof) break;
    }
    free(r.buf);
    return r.hash;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool response = FUZZ_HTTP1_RESPONSE;
    bool head_bit = size > 0 && (data[size - 1] & 1);
    uint64_t whole = read_stream(data, size, response, head_bit, size, 0);
    /* two pieces, split at a point the data chooses */
    size_t split = 0;
    if (size > 1) split = ((size_t)data[0] * 131 + (size_t)data[size / 2] * 7 + (size_t)data[size - 1]) % size;
    CHECK(read_stream(data, size, response, head_bit, split, 0) == whole);
    if (size <= BYTEWISE_MAX) CHECK(read_stream(data, size, response, head_bit, 0, 1) == whole);
    return 0;
}
