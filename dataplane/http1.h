/*
 * http1.h - the HTTP/1.1 codec of the request path, for requests (from clients) and responses (from
 * upstreams), on Debian's libhttp-parser with our own strictness on top.
 *
 * A head is parsed only once it is complete in one buffer (the caller accumulates bytes until then), so
 * header pointers point into the caller's buffer and stay valid while that buffer is untouched.
 * Before http-parser sees a head, bgw_http1_parse_head() checks what http-parser lets through:
 * every line ends in CRLF (no bare CR or LF), no obs-fold, a header name is a token directly followed by
 * ':', no control characters or NUL, exactly one well-formed Content-Length at most, Transfer-Encoding
 * exactly "chunked" (requests: and only in HTTP/1.1), never both, exactly one Host in HTTP/1.1 requests,
 * a strict request line ("METHOD SP target SP HTTP/1.x").
 * Bodies are decoded (Content-Length and until-close by http-parser, chunked by our own strict decoder,
 * since Debian's http-parser is built lenient) and handed out as plain bytes: the caller re-frames them,
 * so odd framing never reaches the other side.
 */
#ifndef BGW_HTTP1_H
#define BGW_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#define BGW_HTTP_MAX_HEADERS 100
#define BGW_HTTP_MAX_REQUEST_HEAD (32 * 1024)
#define BGW_HTTP_MAX_RESPONSE_HEAD (64 * 1024)

/* Headers the proxy treats specially, recognised once while parsing. */
enum bgw_hdr_id {
    BGW_HDR_OTHER = 0,
    BGW_HDR_HOST,
    BGW_HDR_CONTENT_LENGTH,
    BGW_HDR_TRANSFER_ENCODING,
    BGW_HDR_CONNECTION,
    BGW_HDR_KEEP_ALIVE,
    BGW_HDR_PROXY_CONNECTION,
    BGW_HDR_TE,
    BGW_HDR_TRAILER,
    BGW_HDR_UPGRADE,
    BGW_HDR_X_FORWARDED_FOR,
    BGW_HDR_X_FORWARDED_PROTO,
    BGW_HDR_X_FORWARDED_HOST,
    BGW_HDR_X_REQUEST_ID,
    BGW_HDR_EXPECT,
    BGW_HDR_TRACEPARENT,
    BGW_HDR_TRACESTATE,
};

struct bgw_http_header {
    const char *name;
    const char *value;      /* leading and trailing whitespace removed */
    uint32_t name_len;
    uint32_t value_len;
    uint8_t id;             /* enum bgw_hdr_id */
    uint8_t hop;            /* hop-by-hop: never forwarded (fixed list + names listed in Connection) */
};

struct bgw_http_head {
    /* request */
    const char *method; uint32_t method_len;
    const char *target; uint32_t target_len;
    /* response */
    unsigned status;
    const char *reason; uint32_t reason_len;   /* reason phrase, may be empty */
    /* both */
    uint8_t major, minor;
    bool keep_alive;        /* the sender allows the connection to be reused after this message */
    bool has_body;          /* a body follows (Content-Length > 0, chunked, or until close) */
    bool chunked;
    bool has_content_length;
    bool until_close;       /* response body delimited by the connection's close */
    bool expect_continue;
    uint64_t content_length;
    int host;               /* index of the Host header, or -1 */
    uint32_t head_len;      /* bytes of the head, final CRLF CRLF included */
    uint32_t n_headers;
    struct bgw_http_header headers[BGW_HTTP_MAX_HEADERS];
};

/* Called with each piece of decoded body. Returns 0 to go on, -1 to stop (the parse then fails). */
typedef int (*bgw_http1_body_cb)(void *ctx, const char *data, size_t len);

/* A message decoder for one direction of one connection. Zero-initialise, then bgw_http1_init(). */
struct bgw_http1 {
    http_parser parser;
    struct bgw_http_head *head;   /* set during bgw_http1_parse_head only */
    bgw_http1_body_cb body_cb;
    void *body_ctx;
    bool complete;                /* the current message ended */
    bool response;
    bool head_request;            /* (responses) the request was HEAD: no body whatever the headers say */
    uint32_t scanned;             /* bytes already searched for the end of an incomplete head */
};

/* Prepare for a stream of requests (response = false) or responses (response = true). */
void bgw_http1_init(struct bgw_http1 *c, bool response);

/*
 * Parse one message head at the start of buf[0..len).
 * Returns head->head_len (> 0) when a complete, valid head was parsed into *head; 0 when more bytes are
 * needed (and len is still within the limit); or a negative HTTP status when the head is refused:
 * -400 (malformed), -431 (head over the limit or too many headers), -501 (unknown transfer coding),
 * -505 (HTTP version other than 1.0/1.1). For responses the caller maps any error to 502.
 * *reason is set to a short static text naming what was wrong.
 * Leading CRLFs before a request line are skipped (counted in head_len).
 * After success, the body (if head->has_body) is decoded with bgw_http1_body().
 */
int bgw_http1_parse_head(struct bgw_http1 *c, const char *buf, size_t len, struct bgw_http_head *head,
                         const char **reason);

/*
 * Decode body bytes data[0..len) of the current message, calling cb for each decoded piece. Stops at the
 * end of the message (c->complete becomes true); bytes after it are not consumed.
 * Returns the number of bytes consumed, or -1 on a framing error (bad chunk, cb refused).
 */
long bgw_http1_body(struct bgw_http1 *c, const char *data, size_t len, bgw_http1_body_cb cb, void *ctx);

/* The peer closed: ends a body delimited by close (c->complete true). Returns 0, or -1 when the message
 * was cut short. */
int bgw_http1_eof(struct bgw_http1 *c);

/* Find header `name` (lower-case, name_len bytes) in head; returns its index or -1. */
int bgw_http_head_find(const struct bgw_http_head *head, const char *name, size_t name_len);

#endif
