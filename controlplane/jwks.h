/*
 * jwks.h - the JWKS fetcher of bgw-control: every `jwks_uri` of the auth policies in the resolved
 * document is fetched (libcurl), kept, refreshed every refresh interval, and handed to the snapshot
 * builder, which merges the keys into the policy's `jwks` pushed to proxies (a proxy never fetches keys).
 *
 * Keep-last-good: a failed fetch (network error, non-2xx, body that is not a JWK Set) changes nothing;
 * the keys of the last good fetch stay in the pushed config, and the fetch is retried sooner
 * (retry interval). A fetch that returns the same keys publishes nothing. When a state directory is
 * given, the last good keys of every URI are kept in it (jwks-cache.json, written atomically), so a
 * restarted bgw-control pushes them at once even while the key server is down.
 *
 * Unknown `kid`: proxies cannot report one over the config stream, so rotation is picked up by the
 * periodic refresh only (docs/internals/policies.md explains the choice).
 *
 * Threads: one fetch thread. bgw_jwks_watch() and bgw_jwks_lookup() are the builder's callbacks and are
 * thread-safe; neither calls back into the builder while holding the fetcher's lock.
 */
#ifndef BGW_JWKS_H
#define BGW_JWKS_H

#include <stdint.h>

#include <jansson.h>

#include "snapshot_builder.h"

#define BGW_JWKS_DEFAULT_REFRESH_S 300
#define BGW_JWKS_MAX_BYTES (1024 * 1024)

struct bgw_jwks;

struct bgw_jwks_options {
    uint32_t refresh_s;        /* refetch every URI this often (0: BGW_JWKS_DEFAULT_REFRESH_S) */
    uint32_t retry_s;          /* after a failed fetch (0: min(30, refresh_s)) */
    uint32_t timeout_ms;       /* whole fetch (0: 5000) */
    const char *state_dir;     /* where jwks-cache.json is kept; NULL: not kept */
};

/* Start the fetcher for builder b (sources_changed is called when a URI's keys change). Loads the
 * cache from state_dir first. NULL when out of memory or the thread cannot start. */
struct bgw_jwks *bgw_jwks_start(struct bgw_builder *b, const struct bgw_jwks_options *o);
/* Stop the fetch thread (no more builder calls after it returns); the lookups keep working. NULL is fine. */
void bgw_jwks_stop(struct bgw_jwks *j);
/* Free everything (after bgw_jwks_stop() and after the builder is gone). NULL is fine. */
void bgw_jwks_free(struct bgw_jwks *j);

/* The builder's watcher (bgw_builder_watch_fn): learns the set of jwks_uri of resolved; new URIs are
 * fetched at once, URIs no longer used are forgotten. */
void bgw_jwks_watch(void *arg, const json_t *resolved);

/* The builder's key source: a new JSON array of the last good keys of uri, or NULL when it never was
 * fetched successfully. */
json_t *bgw_jwks_lookup(void *arg, const char *uri);

/* Fetches so far, for tests and logs: successes, failures. */
void bgw_jwks_counts(struct bgw_jwks *j, uint64_t *ok, uint64_t *failed);

#endif
