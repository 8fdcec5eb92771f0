/*
 * source_xds.h - bgw-proxy's managed mode: config from bgw-control over the config stream
 * (proto/bgw/v1/discovery.proto), with the last accepted config kept in a cache directory.
 *
 * A thread of its own opens the stream, sends the first request (node id and the last accepted version),
 * and turns every response into a snapshot through the same path as a file reload (validate with
 * bgw_config_from_json, bgw_snapshot_build, bgw_snapshot_publish, bgw_workers_notify), then ACKs it; a
 * response that fails is NACKed with the reason and the running config stays. A stream that ends is
 * reopened after a jittered exponential backoff; the proxy keeps serving meanwhile.
 */
#ifndef BGW_SOURCE_XDS_H
#define BGW_SOURCE_XDS_H

#include <stdbool.h>
#include <stddef.h>

#include "snapshot.h"
#include "worker.h"

struct bgw_xds_source;

struct bgw_xds_source_opts {
    const char *control_plane;      /* "HOST:PORT" */
    const char *node_id;
    const char *cache_dir;          /* NULL: no cache */
    const char *ca_file, *cert_file, *key_file;   /* TLS: all NULL for plaintext; ca_file turns TLS on */
    struct bgw_worker **workers;    /* notified after each publication */
    unsigned n_workers;
    unsigned backoff_base_ms, backoff_max_ms;     /* 0: 250 ms and 10 s */
};

/*
 * The config kept in cache_dir by an earlier run, as a snapshot (version = the one it was accepted as), or
 * NULL when there is none or it does not validate (err says why; err[0] == 0 when there is simply none).
 */
struct bgw_snapshot *bgw_xds_cache_load(const char *cache_dir, char *err, size_t errlen);

/*
 * Start the stream thread. initial_version is the version already being served (from the cache) or
 * NULL. o is copied (its strings must outlive the source). Returns NULL with err filled when TLS files
 * cannot be read or a thread cannot start.
 */
struct bgw_xds_source *bgw_xds_source_start(const struct bgw_xds_source_opts *o, const char *initial_version,
                                            char *err, size_t errlen);

/* End the stream, stop the thread and free the source. */
void bgw_xds_source_stop(struct bgw_xds_source *x);

/* true while a stream to the control plane is open and has answered (bgw_control_plane_connected). */
bool bgw_xds_connected(void);

#endif
