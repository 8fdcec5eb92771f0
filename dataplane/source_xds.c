/*
 * source_xds.c - managed mode (see source_xds.h). The gRPC thread of the stream module only hands over
 * what arrives (the latest response, or the end of the stream) under a mutex; this module's own thread
 * does the slow work (decode, validate, resolve, compile, publish, write the cache) and answers.
 */
#include "source_xds.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "config_pb.h"
#include "grpc_stream.h"
#include "log.h"

#define XDS_METHOD "/bgw.v1.ConfigDiscovery/StreamConfig"
#define CACHE_FILE "config.json"

struct bgw_xds_source {
    struct bgw_xds_source_opts o;
    struct bgw_grpc_client *client;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    /* handed over by the stream callbacks */
    struct bgw_grpc_stream *st;
    uint8_t *msg;                 /* the latest response not yet handled */
    size_t msg_len;
    bool opened, closed;
    int close_status;
    char close_detail[256];
    /* this thread's */
    char version[256];            /* last accepted version ("" before any) */
    uint64_t rng;
};

static atomic_bool g_connected;

bool bgw_xds_connected(void)
{
    return atomic_load(&g_connected);
}

/* ---------------------------------------------------------------------------------------------------- */
/* Cache */

static int cache_path(const char *dir, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

struct bgw_snapshot *bgw_xds_cache_load(const char *cache_dir, char *err, size_t errlen)
{
    char path[4096];
    err[0] = 0;
    if (cache_path(cache_dir, CACHE_FILE, path, sizeof path) < 0) {
        snprintf(err, errlen, "--cache-dir: path too long");
        return NULL;
    }
    if (access(path, F_OK) != 0) return NULL;
    struct bgw_config *cfg = NULL;
    if (bgw_config_load_file(path, &cfg, err, errlen) < 0) return NULL;
    char version[80];
    snprintf(version, sizeof version, "%s", cfg->version ? cfg->version : "");
    return bgw_snapshot_build(cfg, version, err, errlen);
}

/* Write doc (with "version") to the cache atomically: temp file, fsync, rename, fsync the directory. */
static int cache_store(const char *dir, json_t *doc, char *err, size_t errlen)
{
    char path[4096], tmp[4096];
    if (cache_path(dir, CACHE_FILE, path, sizeof path) < 0 || cache_path(dir, CACHE_FILE ".tmp", tmp, sizeof tmp) < 0) {
        snprintf(err, errlen, "path too long");
        return -1;
    }
    mkdir(dir, 0700);
    char *text = json_dumps(doc, JSON_INDENT(1));
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%.400s: %s", tmp, strerror(errno));
        free(text);
        return -1;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        off += (size_t)n;
    }
    free(text);
    if (off < len || fsync(fd) < 0) {
        snprintf(err, errlen, "%.400s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        snprintf(err, errlen, "%.400s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------------- */
/* Stream callbacks (gRPC thread) */

static void on_message(struct bgw_grpc_stream *st, void *ud, const uint8_t *data, size_t len)
{
    struct bgw_xds_source *x = ud;
    (void)st;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return;
    memcpy(copy, data, len);
    pthread_mutex_lock(&x->lock);
    free(x->msg);   /* state of the world: an unhandled older response is superseded */
    x->msg = copy;
    x->msg_len = len;
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
}

static void on_open(struct bgw_grpc_stream *st, void *ud)
{
    struct bgw_xds_source *x = ud;
    (void)st;
    pthread_mutex_lock(&x->lock);
    x->opened = true;
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
}

static void on_close(struct bgw_grpc_stream *st, void *ud, int status, const char *detail)
{
    struct bgw_xds_source *x = ud;
    (void)st;
    pthread_mutex_lock(&x->lock);
    x->closed = true;
    x->close_status = status;
    snprintf(x->close_detail, sizeof x->close_detail, "%s", detail);
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
}

static const struct bgw_grpc_handler handler = {on_open, on_message, on_close};

/* ---------------------------------------------------------------------------------------------------- */
/* The source thread */

static void send_request(struct bgw_xds_source *x, struct bgw_grpc_stream *st, const char *nonce, const char *error)
{
    Bgw__V1__DiscoveryRequest r = BGW__V1__DISCOVERY_REQUEST__INIT;
    r.node_id = (char *)x->o.node_id;
    r.version_info = x->version;
    r.response_nonce = (char *)nonce;
    r.error_detail = (char *)error;
    size_t len = bgw__v1__discovery_request__get_packed_size(&r);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return;
    bgw__v1__discovery_request__pack(&r, buf);
    bgw_grpc_stream_send(st, buf, len);
    free(buf);
}

/* Apply one response. Returns 0 (ACK) or -1 with the reason in err (NACK). */
static int apply(struct bgw_xds_source *x, const Bgw__V1__DiscoveryResponse *resp, char *err, size_t errlen)
{
    const char *version = resp->version_info ? resp->version_info : "";
    if (!*version) {
        snprintf(err, errlen, "version_info: is required");
        return -1;
    }
    if (strlen(version) >= 80) {
        snprintf(err, errlen, "version_info: longer than 79 characters");
        return -1;
    }
    Bgw__V1__Config empty = BGW__V1__CONFIG__INIT;
    json_t *doc = bgw_config_pb_to_json(resp->config ? resp->config : &empty, err, errlen);
    if (!doc) return -1;
    if (json_object_set_new(doc, "version", json_string(version)) < 0) {
        json_decref(doc);
        snprintf(err, errlen, "version_info: not valid UTF-8");
        return -1;
    }
    struct bgw_config *cfg = NULL;
    char e[BGW_ERR_MAX];
    if (bgw_config_from_json(doc, &cfg, e, sizeof e) < 0) {
        json_decref(doc);
        snprintf(err, errlen, "%s", e);
        return -1;
    }
    struct bgw_snapshot *s = bgw_snapshot_build(cfg, version, e, sizeof e);
    if (!s) {
        json_decref(doc);
        snprintf(err, errlen, "%s", e);
        return -1;
    }
    bgw_snapshot_publish(s);
    bgw_snapshot_count_update(true);
    if (x->o.workers) bgw_workers_notify(x->o.workers, x->o.n_workers);
    snprintf(x->version, sizeof x->version, "%s", version);
    bgw_log_info("config version %s from the control plane is in use", version);
    if (x->o.cache_dir && cache_store(x->o.cache_dir, doc, e, sizeof e) < 0)
        bgw_log_error("--cache-dir: cannot keep version %s: %s", version, e);
    json_decref(doc);
    return 0;
}

static void handle(struct bgw_xds_source *x, struct bgw_grpc_stream *st, const uint8_t *data, size_t len)
{
    char err[1024];
    Bgw__V1__DiscoveryResponse *resp = bgw__v1__discovery_response__unpack(NULL, len, data);
    if (!resp) {
        bgw_snapshot_count_update(false);
        bgw_log_error("config from the control plane rejected: malformed DiscoveryResponse");
        send_request(x, st, "", "malformed DiscoveryResponse");
        return;
    }
    const char *nonce = resp->nonce ? resp->nonce : "";
    if (apply(x, resp, err, sizeof err) == 0) {
        send_request(x, st, nonce, "");
    } else {
        bgw_snapshot_count_update(false);
        bgw_log_error("config version %s from the control plane rejected, keeping version %s: %s",
                      resp->version_info ? resp->version_info : "", x->version[0] ? x->version : "(none)", err);
        send_request(x, st, nonce, err);
    }
    bgw__v1__discovery_response__free_unpacked(resp, NULL);
    /* Decoding, checking and compiling a config allocates several times its size for a moment; give the
     * freed heap back to the system instead of keeping it (glibc would), so a large config does not leave
     * the proxy's memory at its peak. This thread is off the request path. */
    malloc_trim(0);
}

static uint64_t next_random(struct bgw_xds_source *x)
{
    x->rng ^= x->rng << 13;
    x->rng ^= x->rng >> 7;
    x->rng ^= x->rng << 17;
    return x->rng;
}

/* Wait ms unless stopped first. Returns true when stopped. Called with x->lock held. */
static bool wait_stop_locked(struct bgw_xds_source *x, unsigned ms)
{
    struct timespec dl = bgw_clock_deadline(ms);
    while (!x->stop && pthread_cond_timedwait(&x->cond, &x->lock, &dl) == 0) {
    }
    return x->stop;
}

static void *source_main(void *arg)
{
    struct bgw_xds_source *x = arg;
    unsigned failures = 0;
    pthread_mutex_lock(&x->lock);
    while (!x->stop) {
        x->closed = x->opened = false;
        pthread_mutex_unlock(&x->lock);
        struct bgw_grpc_stream *st = bgw_grpc_client_open(x->client, XDS_METHOD, &handler, x);
        pthread_mutex_lock(&x->lock);
        bool answered = false;
        if (st) {
            x->st = st;
            pthread_mutex_unlock(&x->lock);
            send_request(x, st, "", "");
            pthread_mutex_lock(&x->lock);
            for (;;) {
                while (!x->stop && !x->closed && !x->msg && !(x->opened && !answered))
                    pthread_cond_wait(&x->cond, &x->lock);
                if (x->opened && !answered) {
                    /* The control plane answered: the stream is up. */
                    answered = true;
                    failures = 0;
                    atomic_store(&g_connected, true);
                    bgw_log_info("config stream to %s is up", x->o.control_plane);
                }
                if (x->msg) {
                    uint8_t *m = x->msg;
                    size_t len = x->msg_len;
                    x->msg = NULL;
                    pthread_mutex_unlock(&x->lock);
                    handle(x, st, m, len);
                    free(m);
                    pthread_mutex_lock(&x->lock);
                    continue;
                }
                if (!x->stop && !x->closed) continue;
                if (!x->closed) {
                    pthread_mutex_unlock(&x->lock);
                    bgw_grpc_stream_close(st, 1 /* CANCELLED */, "proxy stopping");
                    pthread_mutex_lock(&x->lock);
                    while (!x->closed) pthread_cond_wait(&x->cond, &x->lock);
                }
                break;
            }
            x->st = NULL;
            free(x->msg);
            x->msg = NULL;
            pthread_mutex_unlock(&x->lock);
            bgw_grpc_stream_release(st);
            pthread_mutex_lock(&x->lock);
        }
        atomic_store(&g_connected, false);
        if (x->stop) break;
        /* Jittered exponential backoff: a delay drawn from [d/2, d], d doubling up to the maximum. */
        unsigned d = x->o.backoff_base_ms;
        for (unsigned i = 0; i < failures && d < x->o.backoff_max_ms; i++) d *= 2;
        if (d > x->o.backoff_max_ms) d = x->o.backoff_max_ms;
        unsigned delay = d / 2 + (unsigned)(next_random(x) % (d / 2 + 1));
        failures++;
        bgw_log_error("config stream to %s ended (%d %s); serving version %s; retrying in %u ms",
                      x->o.control_plane, x->close_status, x->close_detail, x->version[0] ? x->version : "(none)",
                      delay);
        if (wait_stop_locked(x, delay)) break;
    }
    pthread_mutex_unlock(&x->lock);
    return NULL;
}

struct bgw_xds_source *bgw_xds_source_start(const struct bgw_xds_source_opts *o, const char *initial_version,
                                            char *err, size_t errlen)
{
    struct bgw_xds_source *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    x->o = *o;
    if (!x->o.backoff_base_ms) x->o.backoff_base_ms = 250;
    if (!x->o.backoff_max_ms) x->o.backoff_max_ms = 10000;
    if (x->o.backoff_max_ms < x->o.backoff_base_ms) x->o.backoff_max_ms = x->o.backoff_base_ms;
    snprintf(x->version, sizeof x->version, "%s", initial_version ? initial_version : "");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    x->rng = ((uint64_t)now.tv_nsec << 20) ^ (uint64_t)now.tv_sec ^ ((uint64_t)getpid() << 40) ^ 0x9e3779b97f4a7c15ull;
    pthread_mutex_init(&x->lock, NULL);
    pthread_cond_init(&x->cond, NULL);
    struct bgw_grpc_tls tls = {o->ca_file, o->cert_file, o->key_file};
    bool use_tls = o->ca_file || o->cert_file || o->key_file;
    x->client = bgw_grpc_client_new(o->control_plane, use_tls ? &tls : NULL, err, errlen);
    if (!x->client || pthread_create(&x->thread, NULL, source_main, x) != 0) {
        if (x->client) {
            snprintf(err, errlen, "cannot start a thread");
            bgw_grpc_client_free(x->client);
        }
        pthread_cond_destroy(&x->cond);
        pthread_mutex_destroy(&x->lock);
        free(x);
        return NULL;
    }
    return x;
}

void bgw_xds_source_stop(struct bgw_xds_source *x)
{
    if (!x) return;
    pthread_mutex_lock(&x->lock);
    x->stop = true;
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
    pthread_join(x->thread, NULL);
    bgw_grpc_client_free(x->client);
    free(x->msg);
    pthread_cond_destroy(&x->cond);
    pthread_mutex_destroy(&x->lock);
    free(x);
}
