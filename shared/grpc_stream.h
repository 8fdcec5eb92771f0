/*
 * grpc_stream.h - bidirectional gRPC streams over gRPC core, behind a plain API shared by both daemons:
 * a client opens streams to one target, a server accepts them on one method; either side sends whole
 * messages (bytes) and is called back with each message received and once when the stream ends.
 *
 * Threads: each client or server runs one completion-queue thread of its own; callbacks run on it, one
 * at a time per client or server, and may call bgw_grpc_stream_send/close/release. Sending never blocks:
 * one message is in flight per stream and the next waits in a single "latest pending" slot, where a newer
 * message replaces an older one that has not gone out yet (right for state-of-the-world streams and for
 * ACKs). Nothing outside this module touches gRPC calls, tags or batches.
 *
 * Lifetime of a stream: its owner holds one reference from open/accept until bgw_grpc_stream_release();
 * on_close fires exactly once, after which no callback for the stream fires again; the stream is freed
 * when both have happened. Keepalive is on at both ends (client pings every 10 s; the server accepts pings
 * every 5 s and more seldom).
 */
#ifndef BGW_GRPC_STREAM_H
#define BGW_GRPC_STREAM_H

#include <stddef.h>
#include <stdint.h>

struct bgw_grpc_stream;
struct bgw_grpc_client;
struct bgw_grpc_server;

/* Largest message either side accepts (a whole config). */
#define BGW_GRPC_MAX_MESSAGE (64u * 1024 * 1024)

struct bgw_grpc_handler {
    /* Client streams only, optional: the server answered with its initial metadata (the stream is up). */
    void (*on_open)(struct bgw_grpc_stream *st, void *ud);
    /* A message arrived; data is valid during the call only. */
    void (*on_message)(struct bgw_grpc_stream *st, void *ud, const uint8_t *data, size_t len);
    /* The stream ended with a gRPC status code (0 OK, 14 UNAVAILABLE, ...) and its detail text. */
    void (*on_close)(struct bgw_grpc_stream *st, void *ud, int status, const char *detail);
};

struct bgw_grpc_tls {
    const char *ca_file;     /* client: CA for the server's certificate; server: CA for client certificates
                                (NULL: client certificates are not asked for) */
    const char *cert_file;   /* client: own certificate (mTLS, optional); server: required */
    const char *key_file;
};

/*
 * A client of target ("HOST:PORT"), plaintext when tls is NULL. Certificate files are read here.
 * Returns NULL with err filled when a file cannot be read. Free with bgw_grpc_client_free().
 */
struct bgw_grpc_client *bgw_grpc_client_new(const char *target, const struct bgw_grpc_tls *tls, char *err,
                                            size_t errlen);

/*
 * Open a stream calling method ("/pkg.Service/Method") on a fresh connection attempt. Returns the stream
 * (one reference for the caller), or NULL when the call cannot be created. A server that cannot be
 * reached shows as on_close with UNAVAILABLE shortly after.
 */
struct bgw_grpc_stream *bgw_grpc_client_open(struct bgw_grpc_client *c, const char *method,
                                             const struct bgw_grpc_handler *h, void *ud);

/* Cancel the client's streams, wait until they have ended and been released, stop its thread, free it. */
void bgw_grpc_client_free(struct bgw_grpc_client *c);

/*
 * Accept callback: a proxy opened a stream on the server's method. peer is the transport address
 * ("ipv4:127.0.0.1:5555"). Returns the stream's user data; the server's reference to the stream is the
 * caller's from here on (release it, typically in on_close).
 */
typedef void *(*bgw_grpc_accept_fn)(struct bgw_grpc_stream *st, void *server_ud, const char *peer);

/*
 * Listen on addr ("ADDR:PORT") for streams on method; other methods get UNIMPLEMENTED. tls NULL: plaintext;
 * with tls->ca_file, clients must present a certificate signed by it. Returns NULL with err filled when
 * the address cannot be bound or a file cannot be read.
 */
struct bgw_grpc_server *bgw_grpc_server_start(const char *addr, const struct bgw_grpc_tls *tls, const char *method,
                                              bgw_grpc_accept_fn on_accept, const struct bgw_grpc_handler *h,
                                              void *server_ud, char *err, size_t errlen);

/* The port the server is bound to (useful with port 0). */
int bgw_grpc_server_port(const struct bgw_grpc_server *s);

/* Stop accepting, end every stream (CANCELLED), wait until their owners released them, stop, free. */
void bgw_grpc_server_stop(struct bgw_grpc_server *s);

/* Queue one message (copied). Returns 0, or -1 when the stream has ended or memory ran out. */
int bgw_grpc_stream_send(struct bgw_grpc_stream *st, const void *data, size_t len);

/* End the stream: a server stream ends with status and detail, a client stream is cancelled. on_close
 * follows (from the stream thread). Safe to call more than once and after the stream ended. */
void bgw_grpc_stream_close(struct bgw_grpc_stream *st, int status, const char *detail);

/* Drop the owner's reference. The stream must not be used afterwards. */
void bgw_grpc_stream_release(struct bgw_grpc_stream *st);

#endif
