/*
 * clock.h - time for both daemons: milliseconds on a clock, and the absolute deadlines that
 * pthread_cond_timedwait() and pthread_timedjoin_np() take (CLOCK_REALTIME, unless a condition variable was
 * set up with another clock).
 */
#ifndef BGW_CLOCK_H
#define BGW_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on clock id (CLOCK_MONOTONIC for intervals, CLOCK_REALTIME for wall time). */
int64_t bgw_clock_ms(clockid_t id);

/* CLOCK_REALTIME now plus ms, normalised: the deadline of a wait of ms milliseconds. */
struct timespec bgw_clock_deadline(uint64_t ms);

#endif
