/*
 * xds_server.h - bgw-control's config stream server (proto/bgw/v1/discovery.proto): one bidirectional
 * gRPC stream per proxy, state of the world on every response, versions, nonces, ACK/NACK, and the
 * per-proxy status shown by GET /v1/dataplanes and `bgwctl status`.
 *
 * Thread-safe: publish() and the status/metrics calls may be made from any thread.
 */
#ifndef BGW_XDS_SERVER_H
#define BGW_XDS_SERVER_H

#include <stddef.h>

#include <jansson.h>

struct bgw_xds_server;

struct bgw_xds_tls {
    const char *cert_file, *key_file;   /* server certificate and key (PEM) */
    const char *client_ca_file;         /* CA that must have signed every proxy's client certificate */
};

/* Listen on addr ("ADDR:PORT") and serve streams on a thread of its own. tls NULL: plaintext.
 * Returns NULL with err filled when the address cannot be bound. */
struct bgw_xds_server *bgw_xds_server_start(const char *addr, const struct bgw_xds_tls *tls, char *err,
                                            size_t errlen);

/* The port the server listens on (the one chosen when addr asked for port 0). */
int bgw_xds_server_port(struct bgw_xds_server *s);

/* Make (version, doc) the config every proxy should have, and push it to every connected proxy. doc is
 * a whole, already validated config document (borrowed: the server keeps what it needs). Bursts of calls
 * may be coalesced into one push of the latest. Returns 0, or -1 when the document cannot be encoded. */
int bgw_xds_server_publish(struct bgw_xds_server *s, const char *version, const json_t *doc);

/* Every connected or known proxy as a JSON array (new reference) of objects with node_id, address,
 * connected_since (null while disconnected), acked_version, status (SYNCED: acked the current version,
 * STALE: connected, not there yet, NACKED: rejected the current version, DISCONNECTED), last_error (the
 * reason of its latest NACK, null after an ACK) and last_change (the time of its latest status change).
 * Times are RFC 3339 UTC. Returns NULL when memory runs out. */
json_t *bgw_xds_server_dataplanes(struct bgw_xds_server *s);

/* Append the server's Prometheus families (bgw_xds_connected_proxies, bgw_xds_pushes_total,
 * bgw_xds_push_duration_seconds, bgw_config_convergence_seconds, bgw_xds_nacks_total,
 * bgw_xds_proxies{status}). Returns 0 or -1. */
int bgw_xds_server_render_metrics(struct bgw_xds_server *s, char **buf, size_t *len, size_t *cap);

/* End every stream, stop the server and free it. */
void bgw_xds_server_stop(struct bgw_xds_server *s);

#endif
