/*
 * snapshot.h - an immutable, compiled config: what workers serve from.
 *
 * Built and validated whole on the config thread (file loader, later the gRPC stream), published with one
 * pointer store under a short lock; workers notice the new generation at the top of their loop and take a
 * reference. A snapshot is freed when its last reference goes. Nothing in it changes after publication.
 */
#ifndef BGW_SNAPSHOT_H
#define BGW_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "router.h"

struct bgw_rl_set;

struct bgw_snap_endpoint {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const char *address;     /* as in the config ("host:port") */
    bool healthy;
};

struct bgw_snap_service {
    const struct bgw_service *cfg;
    struct bgw_snap_endpoint *eps;
    uint32_t n_eps;
    uint32_t *healthy;        /* indexes into eps of the healthy endpoints */
    uint32_t n_healthy;
};

struct bgw_jwt_policy;
struct bgw_cors_policy;

struct bgw_snapshot {
    atomic_int refs;
    uint64_t generation;      /* increases with every publication */
    struct bgw_config *cfg;
    struct bgw_router *router;
    struct bgw_rl_set *ratelimits;       /* compiled rate limits (rate_limit.h) */
    struct bgw_snap_service *services;   /* cfg->n_services entries, same order */
    /* policies, compiled (jwt_auth.h, cors.h) */
    struct bgw_jwt_policy **auth;        /* cfg->n_auth_policies entries, same order */
    struct bgw_jwt_policy **route_auth;  /* per route: its auth policy (borrowed from auth) or NULL */
    struct bgw_cors_policy **route_cors; /* per route: its compiled cors or NULL */
    char version[80];
};

/*
 * Compile cfg (ownership passes to the snapshot, also on failure) into a snapshot with the given version.
 * Host names of endpoints are resolved here. Returns NULL with err filled on failure.
 */
struct bgw_snapshot *bgw_snapshot_build(struct bgw_config *cfg, const char *version, char *err, size_t errlen);

/* The config of s as served by GET /config (indented JSON with "version"); malloc()ed, NULL when out of
 * memory. */
char *bgw_snapshot_render(const struct bgw_snapshot *s);

void bgw_snapshot_ref(struct bgw_snapshot *s);
void bgw_snapshot_unref(struct bgw_snapshot *s);

/* Make s the current snapshot (takes over the caller's reference) and drop the previous one's. */
void bgw_snapshot_publish(struct bgw_snapshot *s);
/* A new reference to the current snapshot, or NULL before the first publication. */
struct bgw_snapshot *bgw_snapshot_current(void);
/* The generation of the current snapshot (0 before the first); cheap enough for every loop turn. */
uint64_t bgw_snapshot_generation(void);

/* Count a config update that was accepted or rejected (bgw_config_updates_total). */
void bgw_snapshot_count_update(bool accepted);
void bgw_snapshot_update_counts(uint64_t *accepted, uint64_t *rejected);

/* A version string for a document without "version": 16 hex digits of a 64-bit hash of its bytes. */
void bgw_snapshot_hash_version(const char *text, size_t len, char out[17]);

#endif
