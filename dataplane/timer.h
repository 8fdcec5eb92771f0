/*
 * timer.h - per-worker timers: a binary min-heap with lazy extension.
 *
 * Pushing a deadline later (the common case: an idle timeout refreshed by traffic) only writes a field;
 * the heap is fixed up when the stale entry reaches the top. Times are milliseconds of CLOCK_MONOTONIC.
 * Single-threaded: a timer set belongs to one worker.
 */
#ifndef BGW_TIMER_H
#define BGW_TIMER_H

#include <stdint.h>

struct bgw_timer;
typedef void (*bgw_timer_cb)(struct bgw_timer *t);

struct bgw_timer {
    uint64_t deadline;   /* when it fires */
    uint64_t key;        /* its place in the heap (<= deadline) */
    uint32_t idx;        /* 1-based heap slot, 0 when not armed */
    bgw_timer_cb cb;
};

struct bgw_timers {
    struct bgw_timer **heap;
    uint32_t n, cap;
};

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t bgw_now_ms(void);
/* Nanoseconds of CLOCK_MONOTONIC. */
uint64_t bgw_now_ns(void);

/* Arm (or re-arm) t to fire at deadline. Returns 0, or -1 when out of memory (t not armed). */
int bgw_timer_set(struct bgw_timers *ts, struct bgw_timer *t, uint64_t deadline);
/* Disarm t; no-op when it is not armed. */
void bgw_timer_stop(struct bgw_timers *ts, struct bgw_timer *t);
/* Milliseconds until the next deadline (0 if due), or -1 when no timer is armed. */
int bgw_timers_wait_ms(struct bgw_timers *ts, uint64_t now);
/* Fire every timer whose deadline is <= now. A callback may set or stop any timer. */
void bgw_timers_run(struct bgw_timers *ts, uint64_t now);
void bgw_timers_destroy(struct bgw_timers *ts);

#endif
