/*
 * snapshot_builder.h - what bgw-control pushes: the stored document resolved against its sources.
 *
 * The store holds what users wrote (services with static endpoints or a Kubernetes reference, routes,
 * policies). The sources know what changes underneath: the endpoints of Kubernetes Services, the health
 * of every endpoint, fetched keys. The builder joins them into the resolved document (every service with
 * its endpoints as {"address", "healthy"}, every auth policy with a jwks_uri with the keys fetched from it
 * merged into its "jwks") and hands each new one to the config stream with a
 * version of its own:
 *
 *   "N"    the store's version N, while no source changed since it;
 *   "N.G"  after the G-th source-driven rebuild within store version N.
 *
 * A store change publishes at once; source changes are coalesced over a short window (BGW_BUILDER_WINDOW_MS,
 * or 1.5 times as long as the previous source-driven rebuild took, at most BGW_BUILDER_WINDOW_MAX_MS) so a
 * burst of watch events or health transitions becomes one push, and a large config under constant churn is
 * not rebuilt back to back. A rebuild that changes nothing in the
 * resolved document publishes nothing.
 *
 * Threads: every call is thread-safe. The callbacks (Kubernetes lookup, publish, watchers) run one rebuild
 * at a time and must not call back into the builder. bgw_builder_sources_changed() and
 * bgw_builder_set_health() only take short internal locks (never one held across a callback), so a source
 * may call them while holding its own lock, even one its callbacks take.
 */
#ifndef BGW_SNAPSHOT_BUILDER_H
#define BGW_SNAPSHOT_BUILDER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#define BGW_BUILDER_WINDOW_MS 10       /* the coalescing window, at least */
#define BGW_BUILDER_WINDOW_MAX_MS 200  /* and at most (it grows with the time a rebuild takes) */

struct bgw_builder;

/* Receives each resolved document to push: version as text and the document (borrowed for the call). */
typedef void (*bgw_builder_publish_fn)(void *arg, const char *version, const json_t *doc);

/* The endpoints of a Kubernetes reference: a new JSON array of "IP:PORT" strings (ready, not terminating),
 * or NULL when the Service is unknown (the service then has no endpoints). */
typedef json_t *(*bgw_builder_k8s_lookup_fn)(void *arg, const char *ns, const char *service, const char *port);

/* The last good keys fetched from a jwks_uri: a new JSON array of JWK objects, or NULL when none was
 * fetched yet. They are appended to the policy's inline `jwks` keys in the resolved document. */
typedef json_t *(*bgw_builder_jwks_lookup_fn)(void *arg, const char *uri);

/* Called after every rebuild that changed the resolved document, with that document (borrowed for the
 * call). Every service has "endpoints": [{"address", "healthy"}...] (from Kubernetes when it has a
 * "kubernetes" reference, else from the document); "healthy" already includes health-check results. */
typedef void (*bgw_builder_watch_fn)(void *arg, const json_t *resolved);

/* A builder that publishes through fn(arg, ...). Starts its coalescing thread. NULL when out of memory. */
struct bgw_builder *bgw_builder_new(bgw_builder_publish_fn fn, void *arg);

/* Stop the thread and free everything. NULL is fine. */
void bgw_builder_free(struct bgw_builder *b);

/* Register a source or a watcher; before the first bgw_builder_set_document(). */
void bgw_builder_set_k8s(struct bgw_builder *b, bgw_builder_k8s_lookup_fn fn, void *arg);
void bgw_builder_add_watcher(struct bgw_builder *b, bgw_builder_watch_fn fn, void *arg);
void bgw_builder_set_jwks(struct bgw_builder *b, bgw_builder_jwks_lookup_fn fn, void *arg);

/* The stored document changed (the store's listener: version as text, the validated document in
 * bgw_config_to_json form). The builder keeps a reference to doc, which nobody may modify afterwards.
 * Rebuilds and publishes before returning. */
void bgw_builder_set_document(struct bgw_builder *b, const char *version, json_t *doc);

/* A source changed: rebuild within the coalescing window (see the top of this file), coalescing further calls. */
void bgw_builder_sources_changed(struct bgw_builder *b);

/* A health check result for one endpoint of a service. last_check_ms: wall-clock milliseconds since the
 * epoch; last_error: "" when the check passed (copied). A change of `healthy` schedules a rebuild.
 * Endpoints never reported are healthy. */
void bgw_builder_set_health(struct bgw_builder *b, const char *service, const char *address, bool healthy,
                            int64_t last_check_ms, const char *last_error);

/* {"service": NAME, "items": [{"address", "healthy", "source", "last_check", "last_error"}...]} for the
 * service in the last resolved document (last_check: RFC 3339 UTC or null; last_error: null when none), or
 * NULL when there is no such service. New reference. */
json_t *bgw_builder_endpoints(struct bgw_builder *b, const char *service);

/* The last resolved document with its "version" (NULL before the first set_document). New reference. */
json_t *bgw_builder_snapshot(struct bgw_builder *b);

#endif
