/*
 * access_log.h - the optional JSON access log of bgw-proxy, written off the request path.
 *
 * Each worker owns one single-producer ring of fixed-size records. At the end of a request the worker
 * fills the next free slot (a few hundred bytes copied, no lock, no system call) and publishes it with a
 * release store; when its ring is full the record is dropped and counted in
 * bgw_access_log_dropped_total, the worker never waits. One writer thread drains every ring, formats
 * one JSON object per line and writes them with one write() per batch to a file (opened for appending)
 * or to standard output.
 */
#ifndef BGW_ACCESS_LOG_H
#define BGW_ACCESS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest line a record can make (every byte of every field escaped as \u00XX). */
#define BGW_ACCESS_LOG_LINE_MAX 8192

/* Records a worker's ring holds; a power of two. */
#define BGW_ACCESS_LOG_RING 2048

/* Field sizes: longer values are cut (the path keeps its first 255 bytes). */
struct bgw_access_rec {
    int64_t time_ms;              /* wall clock at the end of the request, ms since the epoch */
    uint64_t total_ns;            /* head received -> response finished (or request abandoned) */
    uint64_t upstream_ns;         /* sent upstream -> upstream response finished; 0 when none */
    uint64_t bytes_in, bytes_out; /* request body bytes forwarded, response body bytes sent */
    uint16_t status;              /* status sent to the client; 499: the client left before the end */
    char method[12];
    char request_id[129];
    char trace_id[33];            /* 32 lower-case hex digits, or "" */
    char route[128];              /* "" when no route matched */
    char service[128];
    char endpoint[128];           /* "" when no endpoint was picked */
    char path[256];
};

/* Non-zero while an access log is open; read on the request path before building a record. */
extern volatile int bgw_access_log_on;

/*
 * Open the access log for n_workers rings: target is a file name (created if missing, appended to) or
 * "-" for standard output. Starts the writer thread. Returns 0, or -1 with err naming --access-log.
 * Call once, before the workers start.
 */
int bgw_access_log_start(const char *target, unsigned n_workers, char *err, size_t errlen);

/*
 * The next free record of worker's ring (cleared), or NULL when the ring is full (the record is counted
 * as dropped). Only the worker itself calls this, then bgw_access_log_commit() once it has filled it.
 */
struct bgw_access_rec *bgw_access_log_slot(unsigned worker);
void bgw_access_log_commit(unsigned worker);

struct bgw_request;

/* Copy a request target without its query into out (cut to cap - 1 bytes). */
void bgw_access_log_note_target(char *out, size_t cap, const char *target, size_t len);

/* Fill and commit worker's next record for request r, answered with status (0: none), while r still
 * holds its snapshot. Drops (and counts) the record when the ring is full. */
void bgw_access_log_request(unsigned worker, const struct bgw_request *r, unsigned status);

/* Write what the rings still hold, stop the writer thread and close the file. Safe when never started. */
void bgw_access_log_stop(void);

/* Append bgw_access_log_records_total and bgw_access_log_dropped_total (always present, 0 when the log
 * is off). Returns 0 or -1 (out of memory). */
int bgw_access_log_render_metrics(char **buf, size_t *len, size_t *cap);

/* Format one record as a JSON line (with the final newline) into out; returns its length, or 0 when
 * cap is too small (BGW_ACCESS_LOG_LINE_MAX always suffices). */
size_t bgw_access_log_format(const struct bgw_access_rec *r, char *out, size_t cap);

#endif
