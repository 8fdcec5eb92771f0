/* timer.c - min-heap timers with lazy extension (see timer.h). */
#include "timer.h"

#include <stdlib.h>
#include <time.h>

uint64_t bgw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t bgw_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void place(struct bgw_timers *ts, uint32_t i, struct bgw_timer *t)
{
    ts->heap[i] = t;
    t->idx = i + 1;
}

static void sift_up(struct bgw_timers *ts, uint32_t i)
{
    struct bgw_timer *t = ts->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (ts->heap[parent]->key <= t->key) break;
        place(ts, i, ts->heap[parent]);
        i = parent;
    }
    place(ts, i, t);
}

static void sift_down(struct bgw_timers *ts, uint32_t i)
{
    struct bgw_timer *t = ts->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= ts->n) break;
        if (c + 1 < ts->n && ts->heap[c + 1]->key < ts->heap[c]->key) c++;
        if (ts->heap[c]->key >= t->key) break;
        place(ts, i, ts->heap[c]);
        i = c;
    }
    place(ts, i, t);
}

static void remove_at(struct bgw_timers *ts, uint32_t i)
{
    struct bgw_timer *last = ts->heap[--ts->n];
    ts->heap[i]->idx = 0;
    if (i == ts->n) return;
    place(ts, i, last);
    if (i > 0 && ts->heap[(i - 1) / 2]->key > last->key) sift_up(ts, i);
    else sift_down(ts, i);
}

int bgw_timer_set(struct bgw_timers *ts, struct bgw_timer *t, uint64_t deadline)
{
    if (t->idx) {
        t->deadline = deadline;
        if (deadline >= t->key) return 0;       /* lazy: fixed up when it reaches the top */
        t->key = deadline;
        sift_up(ts, t->idx - 1);
        return 0;
    }
    if (ts->n == ts->cap) {
        uint32_t cap = ts->cap ? ts->cap * 2 : 256;
        struct bgw_timer **h = realloc(ts->heap, cap * sizeof *h);
        if (!h) return -1;
        ts->heap = h;
        ts->cap = cap;
    }
    t->deadline = t->key = deadline;
    ts->heap[ts->n++] = t;
    sift_up(ts, ts->n - 1);
    return 0;
}

void bgw_timer_stop(struct bgw_timers *ts, struct bgw_timer *t)
{
    if (t->idx) remove_at(ts, t->idx - 1);
}

int bgw_timers_wait_ms(struct bgw_timers *ts, uint64_t now)
{
    while (ts->n) {
        struct bgw_timer *t = ts->heap[0];
        if (t->key == t->deadline) return t->key <= now ? 0 : (int)(t->key - now > 86400000 ? 86400000 : t->key - now);
        t->key = t->deadline;                   /* stale top: move it to its real place */
        sift_down(ts, 0);
    }
    return -1;
}

void bgw_timers_run(struct bgw_timers *ts, uint64_t now)
{
    while (ts->n && ts->heap[0]->key <= now) {
        struct bgw_timer *t = ts->heap[0];
        if (t->deadline > now) {
            t->key = t->deadline;
            sift_down(ts, 0);
            continue;
        }
        remove_at(ts, 0);
        t->cb(t);
    }
}

void bgw_timers_destroy(struct bgw_timers *ts)
{
    free(ts->heap);
    ts->heap = NULL;
    ts->n = ts->cap = 0;
}
