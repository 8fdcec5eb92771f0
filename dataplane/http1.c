/*
 * http1.c - HTTP/1.1 message heads and bodies (see http1.h): a strict pre-scan of the head, then
 * http-parser for the request/status line semantics and Content-Length / until-close bodies. Chunked
 * bodies are decoded here (chunked_body below): Debian's libhttp-parser is built without
 * HTTP_PARSER_STRICT and is lenient exactly where a chunked body can be smuggled through.
 * docs/internals/http1.md says what is accepted and refused, and why.
 */
#include "http1.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 tchar */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1, ['-'] = 1,
    ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1,
    ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

/* Characters allowed in a Host value: reg-name, IP literals, port. */
static bool host_char(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) return true;
    return strchr("-._~:[]!$&'()*+,;=%", ch) != NULL && ch != 0;
}

/* Bytes a request-target may hold: VCHAR except '"', '<' and '>' (browsers always escape them; raw they
 * only serve markup and log injection) and '#' (a fragment has no place in a request: an upstream that
 * cuts it off routes another path than we did; Envoy refuses it too). '{', '}', '|', '^', '`' and the
 * backslash stay: browsers send them unescaped in queries, and pathnorm refuses a backslash in a path. */
static bool target_char(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f && ch != '"' && ch != '<' && ch != '>' && ch != '#';
}

static bool name_is(const char *name, uint32_t len, const char *lit, uint32_t litlen)
{
    return len == litlen && strncasecmp(name, lit, len) == 0;
}

#define NAME_IS(n, l, lit) name_is((n), (l), lit, sizeof(lit) - 1)

static uint8_t classify(const char *n, uint32_t len)
{
    switch (len) {
    case 2: if (NAME_IS(n, len, "te")) return BGW_HDR_TE; break;
    case 4: if (NAME_IS(n, len, "host")) return BGW_HDR_HOST; break;
    case 6: if (NAME_IS(n, len, "expect")) return BGW_HDR_EXPECT; break;
    case 7:
        if (NAME_IS(n, len, "upgrade")) return BGW_HDR_UPGRADE;
        if (NAME_IS(n, len, "trailer")) return BGW_HDR_TRAILER;
        break;
    case 10:
        if (NAME_IS(n, len, "connection")) return BGW_HDR_CONNECTION;
        if (NAME_IS(n, len, "keep-alive")) return BGW_HDR_KEEP_ALIVE;
        if (NAME_IS(n, len, "tracestate")) return BGW_HDR_TRACESTATE;
        break;
    case 11: if (NAME_IS(n, len, "traceparent")) return BGW_HDR_TRACEPARENT; break;
    case 12: if (NAME_IS(n, len, "x-request-id")) return BGW_HDR_X_REQUEST_ID; break;
    case 14: if (NAME_IS(n, len, "content-length")) return BGW_HDR_CONTENT_LENGTH; break;
    case 15: if (NAME_IS(n, len, "x-forwarded-for")) return BGW_HDR_X_FORWARDED_FOR; break;
    case 16:
        if (NAME_IS(n, len, "proxy-connection")) return BGW_HDR_PROXY_CONNECTION;
        if (NAME_IS(n, len, "x-forwarded-host")) return BGW_HDR_X_FORWARDED_HOST;
        break;
    case 17:
        if (NAME_IS(n, len, "transfer-encoding")) return BGW_HDR_TRANSFER_ENCODING;
        if (NAME_IS(n, len, "x-forwarded-proto")) return BGW_HDR_X_FORWARDED_PROTO;
        break;
    default: break;
    }
    return BGW_HDR_OTHER;
}

static bool is_hop_by_hop(uint8_t id)
{
    switch (id) {
    case BGW_HDR_CONNECTION: case BGW_HDR_KEEP_ALIVE: case BGW_HDR_PROXY_CONNECTION: case BGW_HDR_TE:
    case BGW_HDR_TRAILER: case BGW_HDR_UPGRADE: case BGW_HDR_TRANSFER_ENCODING: case BGW_HDR_CONTENT_LENGTH:
        return true;   /* Content-Length and Transfer-Encoding: the proxy writes its own framing */
    default:
        return false;
    }
}

/* ---- http-parser callbacks ---- */

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct bgw_http1 *c = p->data;
    if (c->head) {
        if (c->head->target) return -1;        /* split URL: cannot happen for a whole head */
        c->head->target = at;
        c->head->target_len = (uint32_t)len;
    }
    return 0;
}

/* http_should_keep_alive() without its "needs EOF" part: that part reads F_SKIPBODY, which is set only
 * after on_headers_complete returns, so it called every response to HEAD without Content-Length
 * close-delimited. A close-delimited body is handled by the caller (until_close). */
static bool sender_keeps_alive(const http_parser *p)
{
    if (p->http_major > 0 && p->http_minor > 0) return (p->flags & F_CONNECTION_CLOSE) == 0;
    return (p->flags & F_CONNECTION_KEEP_ALIVE) != 0;
}

static int on_headers_complete(http_parser *p)
{
    struct bgw_http1 *c = p->data;
    struct bgw_http_head *h = c->head;
    if (!h) return -1;
    /* The pre-scan and http-parser must agree on the framing, or one of them is being fooled
     * ("chunked<HTAB>" is chunked to one and an unknown coding to the other). */
    bool chunked = (p->flags & F_CHUNKED) != 0;
    if (chunked != h->chunked) return -1;
    if (h->has_content_length && ((p->flags & F_CONTENTLENGTH) == 0 || p->content_length != h->content_length))
        return -1;
    h->major = (uint8_t)p->http_major;
    h->minor = (uint8_t)p->http_minor;
    h->keep_alive = sender_keeps_alive(p);
    if (c->response) {
        h->status = p->status_code;
        bool no_content = h->status / 100 == 1 || h->status == 204;
        bool bodiless = c->head_request || no_content || h->status == 304;
        if (bodiless) {
            h->has_body = false;
            /* 1xx and 204 must not carry framing (RFC 9112 6.1, RFC 9110 8.6): if one does, the upstream
             * may well send a body after all, so its connection is not reused. */
            if (no_content && (h->chunked || h->content_length > 0)) h->keep_alive = false;
        } else if (h->chunked) {
            h->has_body = true;
        } else if (h->has_content_length) {
            h->has_body = h->content_length > 0;
        } else {
            h->has_body = true;
            h->until_close = true;
            h->keep_alive = false;
        }
        return bodiless ? 1 : 0;   /* 1: http-parser skips the body and completes the message */
    }
    h->has_body = h->chunked || (h->has_content_length && h->content_length > 0);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct bgw_http1 *c = p->data;
    if (!c->body_cb) return -1;
    return c->body_cb(c->body_ctx, at, len) == 0 ? 0 : -1;
}

static int on_message_complete(http_parser *p)
{
    struct bgw_http1 *c = p->data;
    c->complete = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void bgw_http1_init(struct bgw_http1 *c, bool response)
{
    memset(c, 0, sizeof *c);
    c->response = response;
    http_parser_init(&c->parser, response ? HTTP_RESPONSE : HTTP_REQUEST);
    c->parser.data = c;
}

/* ---- the strict pre-scan ---- */

#define FAIL(code, why) do { *reason = (why); return -(code); } while (0)

static int scan_request_line(const char *s, size_t len, struct bgw_http_head *h, const char **reason)
{
    size_t i = 0;
    while (i < len && tchar[(unsigned char)s[i]]) i++;
    if (i == 0 || i >= len || s[i] != ' ') FAIL(400, "malformed request line");
    h->method = s;
    h->method_len = (uint32_t)i;
    size_t t = ++i;
    while (i < len && target_char((unsigned char)s[i])) i++;
    if (i < len && s[i] != ' ' && (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f)
        FAIL(400, "character not allowed in request target");
    if (i == t || i >= len || s[i] != ' ') FAIL(400, "malformed request line");
    i++;
    if (len - i != 8 || memcmp(s + i, "HTTP/", 5) != 0 || s[i + 6] != '.' ||
        s[i + 5] < '0' || s[i + 5] > '9' || s[i + 7] < '0' || s[i + 7] > '9')
        FAIL(400, "malformed HTTP version");
    if (s[i + 5] != '1' || (s[i + 7] != '0' && s[i + 7] != '1')) FAIL(505, "HTTP version not supported");
    return 0;
}

static int scan_status_line(const char *s, size_t len, struct bgw_http_head *h, const char **reason)
{
    if (len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
        FAIL(400, "malformed status line");
    for (int k = 9; k < 12; k++)
        if (s[k] < '0' || s[k] > '9') FAIL(400, "malformed status code");
    if (s[9] < '1' || s[9] > '5') FAIL(400, "status code outside 100-599");   /* RFC 9110 15 */
    if (len > 12 && s[12] != ' ') FAIL(400, "malformed status line");
    for (size_t i = 13; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) FAIL(400, "control character in reason phrase");
    }
    h->reason = len > 13 ? s + 13 : "";
    h->reason_len = len > 13 ? (uint32_t)(len - 13) : 0;
    return 0;
}

/* Parse a Content-Length value: 1*DIGIT, at most 18 digits. */
static int parse_content_length(const char *v, uint32_t len, uint64_t *out)
{
    if (len == 0 || len > 18) return -1;
    uint64_t n = 0;
    for (uint32_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    *out = n;
    return 0;
}

/* Mark the headers named by a Connection value as hop-by-hop. Host is never marked: the request was
 * routed on it, so it must reach the upstream ("Connection: host" would otherwise strip it).
 * Each token is compared with every header, so the tokens of a message are capped (*n counts them over
 * all its Connection headers): 16 K tokens against 100 headers cost 1.4 ms a head, 17 times the parse.
 * Returns 0, or -1 past the cap. */
#define MAX_CONNECTION_TOKENS 64

static int mark_connection_tokens(struct bgw_http_head *h, const char *v, uint32_t len, uint32_t *n)
{
    uint32_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        uint32_t s = i;
        while (i < len && v[i] != ',' && v[i] != ' ' && v[i] != '\t') i++;
        if (i == s) continue;
        if (++*n > MAX_CONNECTION_TOKENS) return -1;
        for (uint32_t k = 0; k < h->n_headers; k++) {
            struct bgw_http_header *x = &h->headers[k];
            if (x->id != BGW_HDR_HOST && x->name_len == i - s && strncasecmp(x->name, v + s, i - s) == 0)
                x->hop = 1;
        }
    }
    return 0;
}

static int scan_header_line(const char *s, size_t len, struct bgw_http_head *h, bool response,
                            const char **reason)
{
    if (s[0] == ' ' || s[0] == '\t') FAIL(400, "obsolete line folding");
    size_t i = 0;
    while (i < len && tchar[(unsigned char)s[i]]) i++;
    if (i == 0 || i >= len || s[i] != ':') FAIL(400, "malformed header name");
    if (h->n_headers >= BGW_HTTP_MAX_HEADERS) FAIL(431, "too many headers");
    size_t name_len = i++;
    while (i < len && (s[i] == ' ' || s[i] == '\t')) i++;
    size_t vs = i, ve = len;
    while (ve > vs && (s[ve - 1] == ' ' || s[ve - 1] == '\t')) ve--;
    for (size_t k = vs; k < ve; k++) {
        unsigned char ch = (unsigned char)s[k];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) FAIL(400, "control character in header value");
    }
    struct bgw_http_header *x = &h->headers[h->n_headers++];
    x->name = s;
    x->name_len = (uint32_t)name_len;
    x->value = s + vs;
    x->value_len = (uint32_t)(ve - vs);
    x->id = classify(s, x->name_len);
    x->hop = is_hop_by_hop(x->id);

    switch (x->id) {
    case BGW_HDR_CONTENT_LENGTH:
        if (h->has_content_length) FAIL(400, "duplicate Content-Length");
        if (parse_content_length(x->value, x->value_len, &h->content_length) < 0)
            FAIL(400, "malformed Content-Length");
        h->has_content_length = true;
        break;
    case BGW_HDR_TRANSFER_ENCODING:
        if (h->chunked) FAIL(400, "duplicate Transfer-Encoding");
        if (!NAME_IS(x->value, x->value_len, "chunked")) FAIL(501, "unsupported Transfer-Encoding");
        h->chunked = true;
        break;
    case BGW_HDR_HOST:
        if (response) break;
        if (h->host >= 0) FAIL(400, "duplicate Host");
        for (uint32_t k = 0; k < x->value_len; k++)
            if (!host_char((unsigned char)x->value[k])) FAIL(400, "malformed Host");
        h->host = (int)(h->n_headers - 1);
        break;
    case BGW_HDR_EXPECT:
        if (!response && NAME_IS(x->value, x->value_len, "100-continue")) h->expect_continue = true;
        break;
    default:
        break;
    }
    return 0;
}

/* Locate the end of the head: returns its length, 0 if not there yet. Bare LF also ends a "line" here,
 * so that a head using them is found and then refused rather than waited for. */
static size_t find_head_end(const char *buf, size_t len, size_t from)
{
    const char *p = buf + from, *end = buf + len;
    while (p < end) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        if (!lf) return 0;
        if (lf + 1 < end && lf[1] == '\n') return (size_t)(lf + 2 - buf);
        if (lf + 2 < end && lf[1] == '\r' && lf[2] == '\n') return (size_t)(lf + 3 - buf);
        p = lf + 1;
    }
    return 0;
}

int bgw_http1_parse_head(struct bgw_http1 *c, const char *buf, size_t len, struct bgw_http_head *h,
                         const char **reason)
{
    size_t limit = c->response ? BGW_HTTP_MAX_RESPONSE_HEAD : BGW_HTTP_MAX_REQUEST_HEAD;
    size_t skip = 0;
    *reason = "";
    if (!c->response)
        while (skip + 1 < len && skip < 8 && buf[skip] == '\r' && buf[skip + 1] == '\n') skip += 2;
    if (skip < len && (buf[skip] == '\n' || (skip + 1 < len && buf[skip] == '\r' && buf[skip + 1] != '\n')))
        FAIL(400, "bare CR or LF");

    size_t from = c->scanned > skip ? c->scanned : skip;
    size_t end = find_head_end(buf, len, from);
    if (end == 0) {
        if (len - skip > limit) FAIL(431, "header section too large");
        c->scanned = len > 3 ? (uint32_t)(len - 3) : 0;   /* the end may straddle what comes next */
        return 0;
    }
    c->scanned = 0;
    if (end - skip > limit) FAIL(431, "header section too large");

    memset(h, 0, offsetof(struct bgw_http_head, headers));
    h->host = -1;

    /* Line by line: every line ends in CRLF, no CR elsewhere, no NUL. */
    const char *p = buf + skip, *stop = buf + end;
    bool first = true;
    while (p < stop) {
        const char *lf = memchr(p, '\n', (size_t)(stop - p));
        if (!lf || lf == p || lf[-1] != '\r') FAIL(400, "bare LF");
        size_t ll = (size_t)(lf - 1 - p);
        if (memchr(p, '\r', ll) || memchr(p, '\0', ll)) FAIL(400, "bare CR or NUL");
        if (ll == 0) break;             /* the empty line */
        int rc = first ? (c->response ? scan_status_line(p, ll, h, reason) : scan_request_line(p, ll, h, reason))
                       : scan_header_line(p, ll, h, c->response, reason);
        if (rc < 0) return rc;
        first = false;
        p = lf + 1;
    }
    if (first) FAIL(400, "empty request");

    if (h->chunked && h->has_content_length) FAIL(400, "both Content-Length and Transfer-Encoding");
    uint32_t n_tokens = 0;
    for (uint32_t k = 0; k < h->n_headers; k++)
        if (h->headers[k].id == BGW_HDR_CONNECTION &&
            mark_connection_tokens(h, h->headers[k].value, h->headers[k].value_len, &n_tokens) < 0)
            FAIL(400, "too many Connection options");

    /* http-parser: request/status line semantics, method, URL characters, framing state. */
    http_parser_init(&c->parser, c->response ? HTTP_RESPONSE : HTTP_REQUEST);
    c->parser.data = c;
    c->complete = false;
    c->head = h;
    c->body_cb = NULL;
    size_t n = http_parser_execute(&c->parser, &settings, buf + skip, end - skip);
    c->head = NULL;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) {
        http_parser_pause(&c->parser, 0);
    } else if (e == HPE_CB_headers_complete) {
        FAIL(400, "Transfer-Encoding or Content-Length read differently by http-parser");
    } else if (e != HPE_OK || n != end - skip) {
        FAIL(400, http_errno_description(e));
    }
    if (!c->response) {
        if (h->minor == 1 && h->host < 0) FAIL(400, "missing Host");
        if (h->minor == 0 && h->chunked) FAIL(400, "Transfer-Encoding in HTTP/1.0");
        if (h->minor == 0) h->expect_continue = false;   /* RFC 9110 10.1.1: ignored from 1.0 clients */
        if (!h->target) FAIL(400, "missing request target");
    }
    /* What the head says and what the decoder will do must agree: http-parser ends a CONNECT (and an
     * Upgrade without body) at its head, so a body announced there would be read as the next request. */
    if (h->has_body == c->complete) FAIL(400, "body on a message that ends at its head");
    if (h->chunked && !c->complete) {
        c->parser.nread = 0;            /* chunked_body's state: CK_SIZE_START, nothing counted */
        c->parser.content_length = 0;
    }
    h->head_len = (uint32_t)end;
    return (int)end;
}

/* ---- chunked bodies (RFC 9112 7.1) ----
 * chunk-size (1*HEXDIG, no sign, no "0x", fits 64 bits) [BWS] [";" chunk-ext] CRLF, chunk-data, CRLF;
 * after the last chunk, trailer lines (token ":" value, CRLF) up to an empty line. CR and LF only ever
 * as CRLF, no control characters in extensions or trailers, no obs-fold or whitespace before a trailer's
 * colon. Extensions and trailers are checked and dropped: the caller re-frames the body and sends none.
 * http-parser in Debian (not strict) takes any two bytes after chunk-data as CRLF, anything but CR in an
 * extension (LF and NUL too), and bare LF, obs-fold and "name : value" in trailers: each of those reads
 * differently in another parser in front of or behind us, which is how requests get smuggled.
 * http-parser is idle during a chunked body, so its fields carry our state between calls: nread holds
 * the phase (top 4 bits) and the bytes of the current size line or trailer section (the rest),
 * content_length the bytes left in the current chunk (or the size being read). */
enum ck_phase {
    CK_SIZE_START = 0, CK_SIZE, CK_SIZE_WS, CK_EXT, CK_SIZE_LF, CK_DATA, CK_DATA_CR, CK_DATA_LF,
    CK_TRAILER_START, CK_TRAILER_NAME, CK_TRAILER_VALUE, CK_TRAILER_LF, CK_FINAL_LF, CK_ERROR,
};
#define CK_LINE_MAX 4096                /* a chunk-size line, extensions included */
#define CK_TRAILER_MAX (32 * 1024)      /* the whole trailer section */
#define CK_COUNT_MASK 0x0fffffffu

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static bool is_ctl(unsigned char ch)
{
    return (ch < 0x20 && ch != '\t') || ch == 0x7f;
}

static long chunked_body(struct bgw_http1 *c, const char *data, size_t len, bgw_http1_body_cb cb, void *ctx)
{
    unsigned phase = c->parser.nread >> 28;
    uint32_t count = c->parser.nread & CK_COUNT_MASK;
    uint64_t left = c->parser.content_length;
    size_t i = 0;
    while (i < len) {
        if (phase == CK_DATA) {
            size_t n = len - i;
            if (n > left) n = (size_t)left;
            if (!cb || cb(ctx, data + i, n) != 0) goto fail;
            i += n;
            left -= n;
            if (left == 0) phase = CK_DATA_CR;
            continue;
        }
        unsigned char ch = (unsigned char)data[i++];
        int d;
        switch (phase) {
        case CK_SIZE_START:
        case CK_SIZE:
            if ((d = hexval(ch)) >= 0) {
                if (left > (UINT64_MAX >> 4)) goto fail;                /* over 64 bits */
                left = left << 4 | (uint64_t)d;
                phase = CK_SIZE;
            } else if (phase == CK_SIZE_START) {
                goto fail;                                              /* no digits */
            } else if (ch == ' ' || ch == '\t') {
                phase = CK_SIZE_WS;
            } else if (ch == ';') {
                phase = CK_EXT;
            } else if (ch == '\r') {
                phase = CK_SIZE_LF;
            } else {
                goto fail;
            }
            break;
        case CK_SIZE_WS:
            if (ch == ';') phase = CK_EXT;
            else if (ch == '\r') phase = CK_SIZE_LF;
            else if (ch != ' ' && ch != '\t') goto fail;
            break;
        case CK_EXT:
            if (ch == '\r') phase = CK_SIZE_LF;
            else if (is_ctl(ch)) goto fail;
            break;
        case CK_SIZE_LF:
            if (ch != '\n') goto fail;
            phase = left ? CK_DATA : CK_TRAILER_START;
            count = 0;
            continue;
        case CK_DATA_CR:
            if (ch != '\r') goto fail;
            phase = CK_DATA_LF;
            continue;
        case CK_DATA_LF:
            if (ch != '\n') goto fail;
            phase = CK_SIZE_START;
            count = 0;
            continue;
        case CK_TRAILER_START:
            if (ch == '\r') phase = CK_FINAL_LF;
            else if (tchar[ch]) phase = CK_TRAILER_NAME;
            else goto fail;                                             /* obs-fold, bare LF, ... */
            break;
        case CK_TRAILER_NAME:
            if (ch == ':') phase = CK_TRAILER_VALUE;
            else if (!tchar[ch]) goto fail;
            break;
        case CK_TRAILER_VALUE:
            if (ch == '\r') phase = CK_TRAILER_LF;
            else if (is_ctl(ch)) goto fail;
            break;
        case CK_TRAILER_LF:
            if (ch != '\n') goto fail;
            phase = CK_TRAILER_START;
            break;
        case CK_FINAL_LF:
            if (ch != '\n') goto fail;
            c->complete = true;
            c->parser.nread = 0;
            c->parser.content_length = 0;
            return (long)i;
        default:
            goto fail;
        }
        if (++count > (phase >= CK_TRAILER_START ? CK_TRAILER_MAX : CK_LINE_MAX)) goto fail;
    }
    c->parser.nread = (uint32_t)phase << 28 | count;
    c->parser.content_length = left;
    return (long)i;
fail:
    c->parser.nread = (uint32_t)CK_ERROR << 28;
    return -1;
}

long bgw_http1_body(struct bgw_http1 *c, const char *data, size_t len, bgw_http1_body_cb cb, void *ctx)
{
    if (c->complete || len == 0) return 0;
    if (c->parser.flags & F_CHUNKED) return chunked_body(c, data, len, cb, ctx);
    c->body_cb = cb;
    c->body_ctx = ctx;
    size_t n = http_parser_execute(&c->parser, &settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) {
        http_parser_pause(&c->parser, 0);
        return (long)n;
    }
    if (e != HPE_OK) return -1;
    return (long)n;
}

int bgw_http1_eof(struct bgw_http1 *c)
{
    if (c->complete) return 0;
    if (c->parser.flags & F_CHUNKED) return -1;     /* chunked_body's: the last chunk never came */
    http_parser_execute(&c->parser, &settings, NULL, 0);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) http_parser_pause(&c->parser, 0);
    return c->complete ? 0 : -1;
}

int bgw_http_head_find(const struct bgw_http_head *h, const char *name, size_t name_len)
{
    for (uint32_t k = 0; k < h->n_headers; k++)
        if (h->headers[k].name_len == name_len && strncasecmp(h->headers[k].name, name, name_len) == 0)
            return (int)k;
    return -1;
}
