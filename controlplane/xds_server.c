/*
 * xds_server.c - bgw-control's config stream server (see xds_server.h and proto/README.md).
 *
 * State of the world: publish() converts the document into a packed Config once; a pusher thread, woken by
 * publish() and waiting a few milliseconds so that a burst becomes one push, sends every connected proxy a
 * DiscoveryResponse made of its own version and nonce followed by those same Config bytes (a message's
 * fields may come in any order, so no per-proxy re-encoding). Sends never block: each stream keeps the
 * latest unsent response only. Requests on a stream are ACKs (error_detail empty) or NACKs of the response
 * whose nonce they carry; answers to older nonces are ignored.
 *
 * One mutex guards the proxies, the streams and the current config; stream callbacks run on the gRPC
 * thread and take it too.
 */
#include "xds_server.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "config_pb.h"
#include "grpc_stream.h"
#include "log.h"
#include "strbuf.h"

#define XDS_METHOD "/bgw.v1.ConfigDiscovery/StreamConfig"
#define COALESCE_MS 5
#define FIELD_MAX 256

enum proxy_status { ST_SYNCED, ST_STALE, ST_NACKED, ST_DISCONNECTED };
static const char *const status_names[] = {"SYNCED", "STALE", "NACKED", "DISCONNECTED"};

/* Buckets of both histograms, in seconds. */
static const double hist_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define N_BOUNDS (sizeof hist_bounds / sizeof hist_bounds[0])

struct hist {
    uint64_t counts[N_BOUNDS + 1];
    double sum;
    uint64_t count;
};

struct conn;

/* A proxy known by node id; it outlives its streams (DISCONNECTED). */
struct proxy {
    struct proxy *next;
    char node_id[FIELD_MAX];
    char address[FIELD_MAX];
    time_t connected_since, last_change;
    char acked_version[FIELD_MAX];
    char nacked_version[FIELD_MAX];   /* the version of the latest response it rejected ("" if none) */
    char last_error[1024];
    struct conn *conn;                /* its open stream, or NULL */
};

/* One open stream. */
struct conn {
    struct conn *next;
    struct bgw_xds_server *srv;
    struct bgw_grpc_stream *st;
    struct proxy *proxy;              /* NULL until its first request names the node */
    char peer[FIELD_MAX];
    char sent_version[FIELD_MAX];
    char sent_nonce[32];
};

struct bgw_xds_server {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct bgw_grpc_server *grpc;
    pthread_t pusher;
    bool stop, dirty;
    struct proxy *proxies;
    struct conn *conns;
    uint64_t nonce_seq;
    /* the current config */
    char *version;
    uint8_t *config;                  /* packed bgw.v1.Config */
    size_t config_len;
    struct timespec published_at;     /* monotonic, for convergence */
    bool converging;
    /* metrics */
    uint64_t pushes, nacks;
    struct hist push_duration, convergence;
};

static double since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void hist_observe(struct hist *h, double v)
{
    size_t i = 0;
    while (i < N_BOUNDS && v > hist_bounds[i]) i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

static int hist_render(const struct hist *h, const char *name, const char *help, char **buf, size_t *len, size_t *cap)
{
    int rc = bgw_strbuf_printf(buf, len, cap, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (size_t i = 0; rc == 0 && i < N_BOUNDS; i++) {
        cum += h->counts[i];
        rc = bgw_strbuf_printf(buf, len, cap, "%s_bucket{le=\"%g\"} %llu\n", name, hist_bounds[i], (unsigned long long)cum);
    }
    if (rc == 0)
        rc = bgw_strbuf_printf(buf, len, cap, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9f\n%s_count %llu\n", name,
                               (unsigned long long)h->count, name, h->sum, name, (unsigned long long)h->count);
    return rc;
}

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* ---------------------------------------------------------------------------------------------------- */
/* Responses */

/* DiscoveryResponse{version_info, nonce} followed by field 3 (config) as raw bytes. */
static uint8_t *encode_response(const char *version, const char *nonce, const uint8_t *cfg, size_t cfg_len,
                                size_t *out_len)
{
    Bgw__V1__DiscoveryResponse r = BGW__V1__DISCOVERY_RESPONSE__INIT;
    r.version_info = (char *)version;
    r.nonce = (char *)nonce;
    size_t head = bgw__v1__discovery_response__get_packed_size(&r);
    uint8_t *buf = malloc(head + 11 + cfg_len);
    if (!buf) return NULL;
    bgw__v1__discovery_response__pack(&r, buf);
    size_t n = head;
    buf[n++] = (3 << 3) | 2;   /* field 3, length-delimited */
    uint64_t v = cfg_len;
    do {
        buf[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    memcpy(buf + n, cfg, cfg_len);
    *out_len = n + cfg_len;
    return buf;
}

/* Send the current config to one stream. Called with s->lock held. */
static void push_locked(struct bgw_xds_server *s, struct conn *c)
{
    if (!s->version || !c->proxy) return;
    char nonce[32];
    snprintf(nonce, sizeof nonce, "%llu", (unsigned long long)++s->nonce_seq);
    size_t len;
    uint8_t *msg = encode_response(s->version, nonce, s->config, s->config_len, &len);
    if (!msg) return;
    if (bgw_grpc_stream_send(c->st, msg, len) == 0) {
        copy(c->sent_version, sizeof c->sent_version, s->version);
        copy(c->sent_nonce, sizeof c->sent_nonce, nonce);
        s->pushes++;
    }
    free(msg);
}

static enum proxy_status status_of(const struct bgw_xds_server *s, const struct proxy *p)
{
    if (!p->conn) return ST_DISCONNECTED;
    if (s->version && strcmp(p->nacked_version, s->version) == 0) return ST_NACKED;
    if (s->version && strcmp(p->acked_version, s->version) == 0) return ST_SYNCED;
    return s->version ? ST_STALE : ST_SYNCED;
}

/* After an ACK, a NACK or a disconnection: when every connected proxy has ACKed the current version, the
 * publication has converged. Called with s->lock held. */
static void check_convergence_locked(struct bgw_xds_server *s)
{
    if (!s->converging) return;
    bool any = false;
    for (struct proxy *p = s->proxies; p; p = p->next) {
        if (!p->conn) continue;
        any = true;
        if (status_of(s, p) != ST_SYNCED) return;
    }
    s->converging = false;
    if (!any) return;   /* nobody to wait for: nothing to measure */
    hist_observe(&s->convergence, since(&s->published_at));
}

static void *pusher_main(void *arg)
{
    struct bgw_xds_server *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->dirty && !s->stop) pthread_cond_wait(&s->cond, &s->lock);
        if (s->stop) break;
        /* Let a burst of publications settle into one push. */
        struct timespec dl = bgw_clock_deadline(COALESCE_MS);
        while (!s->stop && pthread_cond_timedwait(&s->cond, &s->lock, &dl) == 0) {
        }
        if (s->stop) break;
        s->dirty = false;
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        unsigned n = 0;
        for (struct conn *c = s->conns; c; c = c->next) {
            if (!c->proxy) continue;
            if (strcmp(c->proxy->acked_version, s->version) == 0) continue;   /* it has this version already */
            if (strcmp(c->sent_version, s->version) == 0) continue;          /* sent: its answer is awaited */
            push_locked(s, c);
            n++;
        }
        if (n) hist_observe(&s->push_duration, since(&t0));
        check_convergence_locked(s);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------------- */
/* Streams */

static struct proxy *find_proxy_locked(struct bgw_xds_server *s, const char *node_id)
{
    for (struct proxy *p = s->proxies; p; p = p->next)
        if (strcmp(p->node_id, node_id) == 0) return p;
    struct proxy *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    copy(p->node_id, sizeof p->node_id, node_id);
    p->next = s->proxies;
    s->proxies = p;
    return p;
}

static void *on_accept(struct bgw_grpc_stream *st, void *server_ud, const char *peer)
{
    struct bgw_xds_server *s = server_ud;
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        bgw_grpc_stream_close(st, 8 /* RESOURCE_EXHAUSTED */, "out of memory");
        bgw_grpc_stream_release(st);
        return NULL;
    }
    c->srv = s;
    c->st = st;
    const char *colon = strchr(peer, ':');
    copy(c->peer, sizeof c->peer, (strncmp(peer, "ipv4:", 5) == 0 || strncmp(peer, "ipv6:", 5) == 0) && colon ? colon + 1 : peer);
    pthread_mutex_lock(&s->lock);
    c->next = s->conns;
    s->conns = c;
    pthread_mutex_unlock(&s->lock);
    return c;
}

static void first_request_locked(struct bgw_xds_server *s, struct conn *c, const char *node, const char *version)
{
    struct proxy *p = find_proxy_locked(s, node);
    if (!p) {
        bgw_grpc_stream_close(c->st, 8, "out of memory");
        return;
    }
    if (p->conn && p->conn != c) {
        /* The same node again (a restart the old stream has not noticed yet): the newest stream wins. */
        struct conn *old = p->conn;
        old->proxy = NULL;
        bgw_grpc_stream_close(old->st, 6 /* ALREADY_EXISTS */, "replaced by a newer stream of the same node");
    }
    c->proxy = p;
    p->conn = c;
    copy(p->address, sizeof p->address, c->peer);
    p->connected_since = p->last_change = time(NULL);
    copy(p->acked_version, sizeof p->acked_version, version);
    p->nacked_version[0] = 0;
    bgw_log_info("config stream: node %s connected from %s (has version \"%s\")", p->node_id, p->address,
                 p->acked_version);
    if (s->version && strcmp(p->acked_version, s->version) != 0) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        push_locked(s, c);
        hist_observe(&s->push_duration, since(&t0));
    }
}

static void on_message(struct bgw_grpc_stream *st, void *ud, const uint8_t *data, size_t len)
{
    struct conn *c = ud;
    if (!c) return;
    struct bgw_xds_server *s = c->srv;
    Bgw__V1__DiscoveryRequest *req = bgw__v1__discovery_request__unpack(NULL, len, data);
    if (!req) {
        bgw_grpc_stream_close(st, 3 /* INVALID_ARGUMENT */, "malformed DiscoveryRequest");
        return;
    }
    const char *node = req->node_id ? req->node_id : "";
    const char *nonce = req->response_nonce ? req->response_nonce : "";
    const char *error = req->error_detail ? req->error_detail : "";
    const char *version = req->version_info ? req->version_info : "";
    pthread_mutex_lock(&s->lock);
    if (!c->proxy) {
        if (!*node) {
            bgw_grpc_stream_close(st, 3, "the first request must carry node_id");
        } else {
            first_request_locked(s, c, node, version);
        }
    } else if (*nonce && strcmp(nonce, c->sent_nonce) == 0) {
        struct proxy *p = c->proxy;
        p->last_change = time(NULL);
        if (*error) {
            s->nacks++;
            copy(p->nacked_version, sizeof p->nacked_version, c->sent_version);
            copy(p->last_error, sizeof p->last_error, error);
            bgw_log_error("config stream: node %s rejected version %s: %s", p->node_id, c->sent_version, error);
        } else {
            copy(p->acked_version, sizeof p->acked_version, version);
            p->nacked_version[0] = 0;
            p->last_error[0] = 0;
        }
        check_convergence_locked(s);
    }
    pthread_mutex_unlock(&s->lock);
    bgw__v1__discovery_request__free_unpacked(req, NULL);
}

static void on_close(struct bgw_grpc_stream *st, void *ud, int status, const char *detail)
{
    struct conn *c = ud;
    if (c) {
        struct bgw_xds_server *s = c->srv;
        pthread_mutex_lock(&s->lock);
        for (struct conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
            if (*pp == c) {
                *pp = c->next;
                break;
            }
        }
        if (c->proxy && c->proxy->conn == c) {
            c->proxy->conn = NULL;
            c->proxy->last_change = time(NULL);
            bgw_log_info("config stream: node %s disconnected (%d %s)", c->proxy->node_id, status, detail);
            check_convergence_locked(s);
        }
        pthread_mutex_unlock(&s->lock);
        free(c);
    }
    bgw_grpc_stream_release(st);
}

static const struct bgw_grpc_handler handler = {NULL, on_message, on_close};

/* ---------------------------------------------------------------------------------------------------- */
/* API */

struct bgw_xds_server *bgw_xds_server_start(const char *addr, const struct bgw_xds_tls *tls, char *err,
                                            size_t errlen)
{
    struct bgw_xds_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    struct bgw_grpc_tls gt;
    if (tls) gt = (struct bgw_grpc_tls){tls->client_ca_file, tls->cert_file, tls->key_file};
    s->grpc = bgw_grpc_server_start(addr, tls ? &gt : NULL, XDS_METHOD, on_accept, &handler, s, err, errlen);
    if (!s->grpc || pthread_create(&s->pusher, NULL, pusher_main, s) != 0) {
        if (s->grpc) {
            snprintf(err, errlen, "cannot start a thread");
            bgw_grpc_server_stop(s->grpc);
        }
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    return s;
}

int bgw_xds_server_port(struct bgw_xds_server *s)
{
    return bgw_grpc_server_port(s->grpc);
}

int bgw_xds_server_publish(struct bgw_xds_server *s, const char *version, const json_t *doc)
{
    Bgw__V1__Config *cfg = NULL;
    char err[512];
    if (bgw_config_pb_from_json(doc, &cfg, err, sizeof err) < 0) {
        bgw_log_error("config stream: cannot encode version %s: %s", version, err);
        return -1;
    }
    size_t len = bgw__v1__config__get_packed_size(cfg);
    uint8_t *bytes = malloc(len ? len : 1);
    char *v = strdup(version);
    if (!bytes || !v) {
        free(bytes);
        free(v);
        bgw_config_pb_free(cfg);
        return -1;
    }
    bgw__v1__config__pack(cfg, bytes);
    bgw_config_pb_free(cfg);
    pthread_mutex_lock(&s->lock);
    free(s->version);
    free(s->config);
    s->version = v;
    s->config = bytes;
    s->config_len = len;
    clock_gettime(CLOCK_MONOTONIC, &s->published_at);
    s->converging = true;
    s->dirty = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static json_t *time_json(time_t t)
{
    if (!t) return json_null();
    struct tm tm;
    char buf[32];
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

json_t *bgw_xds_server_dataplanes(struct bgw_xds_server *s)
{
    json_t *arr = json_array();
    if (!arr) return NULL;
    pthread_mutex_lock(&s->lock);
    for (struct proxy *p = s->proxies; p; p = p->next) {
        json_t *o = json_pack("{s:s, s:s, s:o, s:s, s:s, s:o, s:o}", "node_id", p->node_id, "address", p->address,
                              "connected_since", p->conn ? time_json(p->connected_since) : json_null(),
                              "acked_version", p->acked_version, "status", status_names[status_of(s, p)],
                              "last_error", p->last_error[0] ? json_string(p->last_error) : json_null(),
                              "last_change", time_json(p->last_change));
        if (!o || json_array_append_new(arr, o) < 0) {
            pthread_mutex_unlock(&s->lock);
            json_decref(arr);
            return NULL;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return arr;
}

int bgw_xds_server_render_metrics(struct bgw_xds_server *s, char **buf, size_t *len, size_t *cap)
{
    pthread_mutex_lock(&s->lock);
    unsigned connected = 0, by_status[4] = {0, 0, 0, 0};
    for (struct proxy *p = s->proxies; p; p = p->next) {
        connected += p->conn != NULL;
        by_status[status_of(s, p)]++;
    }
    struct hist pd = s->push_duration, cv = s->convergence;
    uint64_t pushes = s->pushes, nacks = s->nacks;
    pthread_mutex_unlock(&s->lock);
    int rc = bgw_strbuf_printf(buf, len, cap,
                               "# HELP bgw_xds_connected_proxies Proxies with an open config stream.\n"
                               "# TYPE bgw_xds_connected_proxies gauge\nbgw_xds_connected_proxies %u\n"
                               "# HELP bgw_xds_pushes_total Config responses sent to proxies.\n"
                               "# TYPE bgw_xds_pushes_total counter\nbgw_xds_pushes_total %llu\n"
                               "# HELP bgw_xds_nacks_total Config responses rejected by proxies.\n"
                               "# TYPE bgw_xds_nacks_total counter\nbgw_xds_nacks_total %llu\n",
                               connected, (unsigned long long)pushes, (unsigned long long)nacks);
    if (rc == 0)
        rc = bgw_strbuf_printf(buf, len, cap,
                               "# HELP bgw_xds_proxies Known proxies by config sync status (as in GET /v1/dataplanes).\n"
                               "# TYPE bgw_xds_proxies gauge\n");
    for (int i = 0; rc == 0 && i < 4; i++)
        rc = bgw_strbuf_printf(buf, len, cap, "bgw_xds_proxies{status=\"%s\"} %u\n", status_names[i], by_status[i]);
    if (rc == 0)
        rc = hist_render(&pd, "bgw_xds_push_duration_seconds", "Time to send one config to every connected proxy.",
                         buf, len, cap);
    if (rc == 0)
        rc = hist_render(&cv, "bgw_config_convergence_seconds",
                         "From a config change to every connected proxy having ACKed it.", buf, len, cap);
    return rc;
}

void bgw_xds_server_stop(struct bgw_xds_server *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->pusher, NULL);
    bgw_grpc_server_stop(s->grpc);   /* ends every stream; on_close frees each conn */
    while (s->proxies) {
        struct proxy *p = s->proxies;
        s->proxies = p->next;
        free(p);
    }
    free(s->version);
    free(s->config);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
