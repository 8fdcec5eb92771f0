/*
 * tracecontext.h - W3C Trace Context (traceparent) for requests sent upstream.
 *
 * The proxy keeps the caller's trace: a valid incoming traceparent keeps its trace id and flags and gets
 * a new parent id (the proxy's own span); an absent or invalid one is replaced by a new trace (fresh
 * trace id and parent id, flags 00: the proxy records no spans itself).
 */
#ifndef BGW_TRACECONTEXT_H
#define BGW_TRACECONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define BGW_TRACEPARENT_LEN 55

/*
 * Whether v (n bytes, a traceparent header value) is valid per W3C Trace Context level 1: version 00
 * with exactly 55 characters, or a later version (not ff) with 55 characters or more followed by '-';
 * lower-case hex; trace id and parent id not all zeros.
 */
bool bgw_traceparent_valid(const char *v, size_t n);

/*
 * Write the traceparent to send upstream into out (55 characters and a NUL). in/in_len: the incoming
 * header value (NULL when absent). rnd: three random 64-bit numbers (a new trace id takes two, the new
 * parent id one). Returns true when the incoming trace was kept, false when a new one was started.
 */
bool bgw_traceparent_next(const char *in, size_t in_len, const uint64_t rnd[3], char out[BGW_TRACEPARENT_LEN + 1]);

#endif
