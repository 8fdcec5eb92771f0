/* buf.c - pooled I/O buffers (see buf.h). */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

void bgw_bufpool_init(struct bgw_bufpool *p, uint32_t max_cached)
{
    p->free = calloc(max_cached ? max_cached : 1, sizeof *p->free);
    p->n = 0;
    p->max = p->free ? max_cached : 0;
}

void bgw_bufpool_destroy(struct bgw_bufpool *p)
{
    for (uint32_t i = 0; i < p->n; i++) free(p->free[i]);
    free(p->free);
    p->free = NULL;
    p->n = p->max = 0;
}

int bgw_iobuf_get(struct bgw_iobuf *b, struct bgw_bufpool *p)
{
    if (b->base) return 0;
    b->base = p->n ? p->free[--p->n] : malloc(BGW_BUF_SIZE);
    if (!b->base) return -1;
    b->cap = BGW_BUF_SIZE;
    b->r = b->w = 0;
    return 0;
}

void bgw_iobuf_put(struct bgw_iobuf *b, struct bgw_bufpool *p)
{
    if (!b->base) return;
    if (b->cap == BGW_BUF_SIZE && p->n < p->max) p->free[p->n++] = b->base;
    else free(b->base);
    b->base = NULL;
    b->r = b->w = b->cap = 0;
}

int bgw_iobuf_grow(struct bgw_iobuf *b, uint32_t cap)
{
    if (b->cap >= cap) return 0;
    char *n = malloc(cap);
    if (!n) return -1;
    uint32_t len = b->w - b->r;
    if (b->base) memcpy(n, b->base + b->r, len);
    free(b->base);   /* a pooled buffer leaves the pool here: the pool refills itself with new ones */
    b->base = n;
    b->r = 0;
    b->w = len;
    b->cap = cap;
    return 0;
}

void bgw_iobuf_compact(struct bgw_iobuf *b)
{
    if (b->r == 0) return;
    uint32_t len = b->w - b->r;
    if (len) memmove(b->base, b->base + b->r, len);
    b->r = 0;
    b->w = len;
}
