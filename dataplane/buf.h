/*
 * buf.h - I/O buffers and the per-worker pool they come from.
 *
 * A connection holds a buffer only while it has bytes in flight: an idle keep-alive connection holds none.
 * Standard buffers (BGW_BUF_SIZE) are recycled through the worker's pool; a buffer grown for a large
 * head is allocated apart and freed on release. Single-threaded: a pool belongs to one worker.
 */
#ifndef BGW_BUF_H
#define BGW_BUF_H

#include <stdbool.h>
#include <stdint.h>

#define BGW_BUF_SIZE (16 * 1024)

struct bgw_iobuf {
    char *base;       /* NULL when the connection holds no buffer */
    uint32_t r, w;    /* unread bytes are [r, w) */
    uint32_t cap;
};

struct bgw_bufpool {
    char **free;
    uint32_t n, max;
};

void bgw_bufpool_init(struct bgw_bufpool *p, uint32_t max_cached);
void bgw_bufpool_destroy(struct bgw_bufpool *p);

/* Make sure b has a buffer. Returns 0, or -1 when out of memory. */
int bgw_iobuf_get(struct bgw_iobuf *b, struct bgw_bufpool *p);

/* Give the buffer back (its contents are dropped). No-op without a buffer. */
void bgw_iobuf_put(struct bgw_iobuf *b, struct bgw_bufpool *p);

/* Grow the buffer to at least cap bytes, keeping its contents. Returns 0 or -1. */
int bgw_iobuf_grow(struct bgw_iobuf *b, uint32_t cap);

/* Move the unread bytes to the start. */
void bgw_iobuf_compact(struct bgw_iobuf *b);

static inline uint32_t bgw_iobuf_len(const struct bgw_iobuf *b) { return b->w - b->r; }
static inline uint32_t bgw_iobuf_space(const struct bgw_iobuf *b) { return b->cap - b->w; }

#endif
