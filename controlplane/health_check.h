/*
 * health_check.h - active HTTP health checks of every endpoint of every service that has a
 * "health_check" object, run by bgw-control on a thread of their own.
 *
 * The targets follow the resolved documents (bgw_health_update() is a snapshot-builder watcher): a new
 * endpoint is first checked within a small jitter, a removed one stops being checked, an endpoint that
 * stays keeps its state. A check is GET http://ADDRESS/PATH; a 2xx answer within timeout_ms passes,
 * anything else (another status, a refused or reset connection, a timeout) fails. Every endpoint starts
 * healthy; unhealthy_threshold consecutive failures mark it unhealthy, healthy_threshold consecutive
 * passes mark it healthy again. Every result goes to the report callback (bgw_builder_set_health() in
 * bgw-control, which rebuilds only when `healthy` changes).
 *
 * Every check is counted in bgw_health_checks_total{service,result="success"|"failure"} (metrics.h; a
 * timeout is a failure).
 *
 * Two layers: the engine (targets, schedule, thresholds; driven by bgw_health_take_due() and
 * bgw_health_complete() against an injectable clock, so unit tests step time by hand) and the runner
 * (bgw_health_start(): a thread that performs the due checks with libcurl multi, at most max_in_flight
 * at once).
 *
 * Threads: every call is thread-safe. The report callback is called with the checker's lock held, from
 * bgw_health_take_due() or bgw_health_complete() (the runner's thread), never from bgw_health_update(),
 * so it may call into the snapshot builder.
 */
#ifndef BGW_HEALTH_CHECK_H
#define BGW_HEALTH_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define BGW_HEALTH_MAX_IN_FLIGHT 256      /* default cap on checks in flight */
#define BGW_HEALTH_JITTER_MAX_MS 1000     /* a new endpoint's first check: within min(interval/10, this) */
#define BGW_HEALTH_ERROR_MAX 256          /* longest last_error kept */

struct bgw_health;

/* Where time comes from. now_ms: a monotonic clock (schedule, thresholds); wall_ms: milliseconds since the
 * epoch (last_check). NULL members (or a NULL clock): CLOCK_MONOTONIC / CLOCK_REALTIME. */
struct bgw_health_clock {
    int64_t (*now_ms)(void *arg);
    int64_t (*wall_ms)(void *arg);
    void *arg;
};

/* One result for service/address: healthy after this result, the wall-clock time of the check, the error
 * ("" when it passed). transition: `healthy` changed with this result (or the endpoint stopped being
 * checked while unhealthy: then healthy is true, last_error "", and it is reported once so that whoever
 * keeps the health forgets the old verdict). */
typedef void (*bgw_health_report_fn)(void *arg, const char *service, const char *address, bool healthy,
                                     int64_t last_check_ms, const char *last_error, bool transition);

struct bgw_health_options {
    bgw_health_report_fn report;      /* may be NULL */
    void *report_arg;
    const struct bgw_health_clock *clock;   /* copied; NULL: the system clocks */
    unsigned max_in_flight;           /* 0: BGW_HEALTH_MAX_IN_FLIGHT */
    unsigned seed;                    /* of the first-check jitter (0 is a valid seed) */
    bool no_jitter;                   /* first checks at once (tests) */
};

/* One check to perform, handed out by bgw_health_take_due(). url is owned by the probe: release it with
 * bgw_health_probe_release(). */
struct bgw_health_probe {
    uint64_t id;
    char *url;                        /* http://ADDRESS/PATH */
    unsigned timeout_ms;
    char service[128], address[256];  /* for logs */
};

/* A checker with no targets (the runner not started). NULL when out of memory. */
struct bgw_health *bgw_health_new(const struct bgw_health_options *opts);

/* Stop the runner if started (checks in flight are abandoned) and free everything. NULL is fine. */
void bgw_health_free(struct bgw_health *h);

/* Follow a resolved document (borrowed): every endpoint address of every service with a "health_check"
 * becomes a target; targets no longer in it are dropped (their pending results ignored). Signature of a
 * snapshot-builder watcher (arg is the checker). Wakes the runner. */
void bgw_health_update(void *h, const json_t *resolved);

/* Engine: hand out up to max checks that are due at now_ms and not in flight, the most overdue first,
 * within the in-flight cap; each one is in flight until bgw_health_complete(). Also delivers the pending
 * "stopped being checked" reports. Returns how many were written to out. */
size_t bgw_health_take_due(struct bgw_health *h, struct bgw_health_probe *out, size_t max);

/* Engine: the result of probe id (taken from bgw_health_take_due()): passed, or failed with error (a short
 * text, e.g. "HTTP 503" or "timeout after 1000 ms"). Applies the thresholds, counts the check, reports.
 * The next check of the endpoint is due interval_ms after this one was due (at once when that is past), so
 * a late start does not push the schedule back. Unknown ids (the target was
 * dropped meanwhile) only free the in-flight slot. */
void bgw_health_complete(struct bgw_health *h, uint64_t id, bool passed, const char *error);

/* Free a probe's URL. */
void bgw_health_probe_release(struct bgw_health_probe *p);

/* Engine: the clock time (now_ms) at which the next check can start, or -1 when nothing is to be checked
 * or every in-flight slot is taken (only a completion can start the next one). */
int64_t bgw_health_next_due(struct bgw_health *h);

/* Engine: whether service/address is a target, and its current verdict (false when not a target). */
bool bgw_health_is_target(struct bgw_health *h, const char *service, const char *address);
bool bgw_health_healthy(struct bgw_health *h, const char *service, const char *address);

/* Runner: start the thread that performs due checks over HTTP. 0, or -1 with err filled. */
int bgw_health_start(struct bgw_health *h, char *err, size_t errlen);

/* Runner: stop the thread (checks in flight are abandoned; no report is made after this returns). The
 * engine stays usable. Idempotent; a no-op when not started. */
void bgw_health_stop(struct bgw_health *h);

#endif
