/*
 * grpc_stream.c - bidirectional streams on gRPC core (see grpc_stream.h).
 *
 * Per stream, at most one batch of each kind is outstanding (gRPC core allows one op of each type per
 * call): META (send initial metadata), RECV (receive one message; the first also takes the initial
 * metadata), SEND (one message), STATUS (client: the final status; server: the close notification) and
 * END (server: send the final status). Each kind has its own tag inside the stream, and `pending` counts
 * the batches in flight. The call has ended when STATUS completes; then the call is cancelled so every
 * other batch returns, and once none is pending on_close fires. The stream is freed when on_close has
 * fired and the owner released it.
 */
#include "grpc_stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

#include "fileio.h"
#include "log.h"

/* gRPC core's own messages become one log line each, like every other event (it writes multi-line text
 * to stderr otherwise); below ERROR it stays quiet. */
static void grpc_log_line(gpr_log_func_args *args)
{
    char line[1024];
    size_t n = 0;
    for (const char *p = args->message; *p && n + 4 < sizeof line; p++) {
        if (*p == '\n' || *p == '\r') {
            if (n && line[n - 1] != ' ') line[n++] = ' ';
        } else {
            line[n++] = *p;
        }
    }
    line[n] = 0;
    bgw_log(args->severity == GPR_LOG_SEVERITY_ERROR ? BGW_LOG_WARN : BGW_LOG_DEBUG, "grpc: %s", line);
}

static void grpc_setup_once(void)
{
    gpr_set_log_verbosity(GPR_LOG_SEVERITY_ERROR);
    gpr_set_log_function(grpc_log_line);
}

/* grpc_init() with our logging in place. */
static void stream_grpc_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, grpc_setup_once);
    grpc_init();
}

enum tag_kind { TAG_META, TAG_META_IN, TAG_RECV, TAG_SEND, TAG_STATUS, TAG_END, TAG_NEW_CALL, TAG_SHUTDOWN };

struct tag {
    enum tag_kind kind;
    void *owner;        /* the stream, or the server */
};

/* What clients and servers share: the completion queue, its thread, and the live streams. */
struct engine {
    grpc_completion_queue *cq;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct bgw_grpc_stream *streams;   /* live streams (not yet freed) */
    unsigned n_streams;
    void (*on_tag)(struct engine *e, struct tag *t, bool ok);
};

struct bgw_grpc_stream {
    struct engine *eng;
    struct bgw_grpc_stream *prev, *next;
    pthread_mutex_t lock;
    grpc_call *call;
    grpc_channel *channel;           /* client streams own their channel */
    bool server;
    const struct bgw_grpc_handler *h;
    void *ud;
    struct tag t_meta, t_meta_in, t_recv, t_send, t_status, t_end;
    unsigned pending;                /* batches in flight */
    bool ended;                      /* STATUS completed */
    bool closed_fired, released;
    bool in_close_cb, freeing;
    bool end_sent;                   /* server: final status started */
    grpc_metadata_array initial_md, trailing_md;
    grpc_byte_buffer *recv_bb, *send_bb, *pending_bb;
    grpc_status_code status;         /* client: received status */
    grpc_slice status_details;
    int cancelled;                   /* server: RECV_CLOSE_ON_SERVER result */
    grpc_slice end_details;          /* server: detail of the status it sends */
    int close_status;                /* what bgw_grpc_stream_close asked for */
};

struct bgw_grpc_client {
    struct engine eng;
    char *target;
    grpc_channel_credentials *creds;
};

struct bgw_grpc_server {
    struct engine eng;
    grpc_server *server;
    int port;
    char *method;
    bgw_grpc_accept_fn on_accept;
    const struct bgw_grpc_handler *h;
    void *ud;
    /* The one outstanding request for a new call. */
    struct tag t_new, t_shutdown;
    grpc_call *new_call;
    grpc_call_details details;
    grpc_metadata_array request_md;
    bool shutting_down, shutdown_done;
};

static const struct bgw_grpc_handler no_handler;

/* ---------------------------------------------------------------------------------------------------- */
/* Engine */

static void *engine_main(void *arg)
{
    struct engine *e = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(e->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        if (ev.type != GRPC_OP_COMPLETE) continue;
        e->on_tag(e, ev.tag, ev.success != 0);
    }
    return NULL;
}

static int engine_start(struct engine *e, void (*on_tag)(struct engine *, struct tag *, bool))
{
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    e->on_tag = on_tag;
    e->cq = grpc_completion_queue_create_for_next(NULL);
    if (!e->cq) return -1;
    return 0;
}

static int engine_run(struct engine *e)
{
    return pthread_create(&e->thread, NULL, engine_main, e) == 0 ? 0 : -1;
}

/* Wait until every stream of the engine is gone, then stop the queue and its thread. */
static void engine_finish(struct engine *e, bool thread_running)
{
    pthread_mutex_lock(&e->lock);
    while (e->n_streams) pthread_cond_wait(&e->cond, &e->lock);
    pthread_mutex_unlock(&e->lock);
    grpc_completion_queue_shutdown(e->cq);
    if (thread_running) {
        pthread_join(e->thread, NULL);
    } else {
        while (grpc_completion_queue_next(e->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN) {
        }
    }
    grpc_completion_queue_destroy(e->cq);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
}

static void engine_cancel_all(struct engine *e)
{
    pthread_mutex_lock(&e->lock);
    for (struct bgw_grpc_stream *st = e->streams; st; st = st->next) bgw_grpc_stream_close(st, GRPC_STATUS_CANCELLED, "shutting down");
    pthread_mutex_unlock(&e->lock);
}

/* A PEM file, NUL-terminated, as gRPC wants it; NULL with err filled. */
static char *read_pem(const char *path, char *err, size_t errlen)
{
    size_t len;
    errno = 0;
    char *buf = bgw_read_file(path, (size_t)1 << 20, &len);
    if (!buf) snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
    return buf;
}

/* ---------------------------------------------------------------------------------------------------- */
/* Streams */

static struct bgw_grpc_stream *stream_new(struct engine *e, grpc_call *call, bool server,
                                          const struct bgw_grpc_handler *h, void *ud)
{
    struct bgw_grpc_stream *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->eng = e;
    st->call = call;
    st->server = server;
    st->h = h ? h : &no_handler;
    st->ud = ud;
    pthread_mutex_init(&st->lock, NULL);
    st->t_meta = (struct tag){TAG_META, st};
    st->t_meta_in = (struct tag){TAG_META_IN, st};
    st->t_recv = (struct tag){TAG_RECV, st};
    st->t_send = (struct tag){TAG_SEND, st};
    st->t_status = (struct tag){TAG_STATUS, st};
    st->t_end = (struct tag){TAG_END, st};
    grpc_metadata_array_init(&st->initial_md);
    grpc_metadata_array_init(&st->trailing_md);
    st->status_details = grpc_empty_slice();
    st->end_details = grpc_empty_slice();
    pthread_mutex_lock(&e->lock);
    st->next = e->streams;
    if (e->streams) e->streams->prev = st;
    e->streams = st;
    e->n_streams++;
    pthread_mutex_unlock(&e->lock);
    return st;
}

static void stream_free(struct bgw_grpc_stream *st)
{
    struct engine *e = st->eng;
    pthread_mutex_lock(&e->lock);
    if (st->prev) st->prev->next = st->next;
    else e->streams = st->next;
    if (st->next) st->next->prev = st->prev;
    e->n_streams--;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    if (st->call) grpc_call_unref(st->call);
    if (st->channel) grpc_channel_destroy(st->channel);
    grpc_metadata_array_destroy(&st->initial_md);
    grpc_metadata_array_destroy(&st->trailing_md);
    grpc_slice_unref(st->status_details);
    grpc_slice_unref(st->end_details);
    if (st->recv_bb) grpc_byte_buffer_destroy(st->recv_bb);
    if (st->send_bb) grpc_byte_buffer_destroy(st->send_bb);
    if (st->pending_bb) grpc_byte_buffer_destroy(st->pending_bb);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

/* Start a batch; counts it as pending. Called with st->lock held. */
static bool start_batch(struct bgw_grpc_stream *st, const grpc_op *ops, size_t n, struct tag *t)
{
    if (grpc_call_start_batch(st->call, ops, n, t, NULL) != GRPC_CALL_OK) return false;
    st->pending++;
    return true;
}

static void arm_recv_locked(struct bgw_grpc_stream *st)
{
    grpc_op ops[1];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n].data.recv_message.recv_message = &st->recv_bb;
    n++;
    if (!start_batch(st, ops, n, &st->t_recv)) grpc_call_cancel(st->call, NULL);
}

static void start_send_locked(struct bgw_grpc_stream *st, grpc_byte_buffer *bb)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    st->send_bb = bb;
    if (!start_batch(st, &op, 1, &st->t_send)) {
        st->send_bb = NULL;
        grpc_byte_buffer_destroy(bb);
        grpc_call_cancel(st->call, NULL);
    }
}

/* Server: send the final status (once). Called with st->lock held. */
static void send_end_locked(struct bgw_grpc_stream *st, grpc_status_code code, const char *detail)
{
    if (st->end_sent || st->ended) return;
    st->end_sent = true;
    grpc_slice_unref(st->end_details);
    st->end_details = grpc_slice_from_copied_string(detail ? detail : "");
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op.data.send_status_from_server.status = code;
    op.data.send_status_from_server.status_details = &st->end_details;
    if (!start_batch(st, &op, 1, &st->t_end)) grpc_call_cancel(st->call, NULL);
}

/* The first batches of a stream: initial metadata out, end-of-call notification, first receive. */
static bool stream_begin(struct bgw_grpc_stream *st)
{
    grpc_op op;
    bool ok = true;
    pthread_mutex_lock(&st->lock);
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    ok = start_batch(st, &op, 1, &st->t_meta);
    memset(&op, 0, sizeof op);
    if (st->server) {
        op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        op.data.recv_close_on_server.cancelled = &st->cancelled;
    } else {
        op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        op.data.recv_status_on_client.trailing_metadata = &st->trailing_md;
        op.data.recv_status_on_client.status = &st->status;
        op.data.recv_status_on_client.status_details = &st->status_details;
    }
    if (ok) ok = start_batch(st, &op, 1, &st->t_status);
    if (ok && !st->server) {
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_RECV_INITIAL_METADATA;
        op.data.recv_initial_metadata.recv_initial_metadata = &st->initial_md;
        ok = start_batch(st, &op, 1, &st->t_meta_in);
    }
    if (ok) arm_recv_locked(st);
    if (!ok) grpc_call_cancel(st->call, NULL);
    pthread_mutex_unlock(&st->lock);
    return ok;
}

/* After any completion: fire on_close once nothing is pending, free once released too. */
static void stream_settle(struct bgw_grpc_stream *st)
{
    pthread_mutex_lock(&st->lock);
    bool fire = st->ended && st->pending == 0 && !st->closed_fired;
    int code = 0;
    char detail[256] = "";
    if (fire) {
        st->closed_fired = true;
        st->in_close_cb = true;
        if (st->server) {
            code = st->close_status ? st->close_status : (st->cancelled ? GRPC_STATUS_CANCELLED : GRPC_STATUS_OK);
            snprintf(detail, sizeof detail, "%s", st->cancelled ? "cancelled" : "ended");
        } else {
            code = (int)st->status;
            size_t n = GRPC_SLICE_LENGTH(st->status_details);
            if (n >= sizeof detail) n = sizeof detail - 1;
            memcpy(detail, GRPC_SLICE_START_PTR(st->status_details), n);
            detail[n] = 0;
        }
    }
    pthread_mutex_unlock(&st->lock);
    if (fire && st->h->on_close) st->h->on_close(st, st->ud, code, detail);
    pthread_mutex_lock(&st->lock);
    st->in_close_cb = false;
    bool done = st->closed_fired && st->released && st->pending == 0 && !st->freeing;
    if (done) st->freeing = true;
    pthread_mutex_unlock(&st->lock);
    if (done) stream_free(st);
}

static void stream_on_tag(struct bgw_grpc_stream *st, enum tag_kind kind, bool ok)
{
    pthread_mutex_lock(&st->lock);
    st->pending--;
    switch (kind) {
    case TAG_META:
    case TAG_END:
        if (!ok) grpc_call_cancel(st->call, NULL);
        break;
    case TAG_META_IN:
        if (ok && !st->ended && st->close_status == 0 && st->h->on_open) {
            pthread_mutex_unlock(&st->lock);
            st->h->on_open(st, st->ud);
            pthread_mutex_lock(&st->lock);
        }
        break;
    case TAG_SEND:
        if (st->send_bb) grpc_byte_buffer_destroy(st->send_bb);
        st->send_bb = NULL;
        if (ok && st->pending_bb && !st->ended) {
            grpc_byte_buffer *bb = st->pending_bb;
            st->pending_bb = NULL;
            start_send_locked(st, bb);
        }
        break;
    case TAG_RECV: {
        grpc_byte_buffer *bb = st->recv_bb;
        st->recv_bb = NULL;
        if (ok && bb) {
            grpc_byte_buffer_reader r;
            grpc_slice all = grpc_empty_slice();
            bool read = grpc_byte_buffer_reader_init(&r, bb) != 0;
            if (read) {
                all = grpc_byte_buffer_reader_readall(&r);
                grpc_byte_buffer_reader_destroy(&r);
            }
            grpc_byte_buffer_destroy(bb);
            pthread_mutex_unlock(&st->lock);
            if (read && st->h->on_message)
                st->h->on_message(st, st->ud, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
            grpc_slice_unref(all);
            pthread_mutex_lock(&st->lock);
            if (!st->ended && st->close_status == 0) arm_recv_locked(st);
        } else {
            if (bb) grpc_byte_buffer_destroy(bb);
            /* End of the peer's messages: a server ends the stream (half-close does not end a bidi call). */
            if (st->server && ok) send_end_locked(st, GRPC_STATUS_OK, "");
            else grpc_call_cancel(st->call, NULL);
        }
        break;
    }
    case TAG_STATUS:
        st->ended = true;
        if (st->pending_bb) grpc_byte_buffer_destroy(st->pending_bb);
        st->pending_bb = NULL;
        grpc_call_cancel(st->call, NULL);   /* returns every other batch */
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&st->lock);
    stream_settle(st);
}

int bgw_grpc_stream_send(struct bgw_grpc_stream *st, const void *data, size_t len)
{
    grpc_slice s = grpc_slice_from_copied_buffer(data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    if (!bb) return -1;
    pthread_mutex_lock(&st->lock);
    if (st->ended || st->close_status) {
        pthread_mutex_unlock(&st->lock);
        grpc_byte_buffer_destroy(bb);
        return -1;
    }
    if (st->send_bb) {
        if (st->pending_bb) grpc_byte_buffer_destroy(st->pending_bb);
        st->pending_bb = bb;
    } else {
        start_send_locked(st, bb);
    }
    pthread_mutex_unlock(&st->lock);
    return 0;
}

void bgw_grpc_stream_close(struct bgw_grpc_stream *st, int status, const char *detail)
{
    pthread_mutex_lock(&st->lock);
    if (!st->ended && !st->close_status) {
        st->close_status = status ? status : GRPC_STATUS_CANCELLED;
        if (st->server) {
            /* The status ends the call; cancelling now could overtake it on the wire (the peer would see
             * CANCELLED). The other batches return once the call is over (TAG_STATUS). */
            send_end_locked(st, (grpc_status_code)st->close_status, detail);
        } else {
            grpc_call_cancel_with_status(st->call, (grpc_status_code)st->close_status, detail ? detail : "closed", NULL);
        }
    }
    pthread_mutex_unlock(&st->lock);
}

void bgw_grpc_stream_release(struct bgw_grpc_stream *st)
{
    pthread_mutex_lock(&st->lock);
    st->released = true;
    /* Released inside on_close: stream_settle frees it when the callback returns. */
    bool done = st->closed_fired && st->pending == 0 && !st->in_close_cb && !st->freeing;
    if (done) st->freeing = true;
    pthread_mutex_unlock(&st->lock);
    if (done) stream_free(st);
}

/* ---------------------------------------------------------------------------------------------------- */
/* Client */

static void client_on_tag(struct engine *e, struct tag *t, bool ok)
{
    (void)e;
    stream_on_tag(t->owner, t->kind, ok);
}

static void channel_args(grpc_arg *a, size_t *n, bool server)
{
    size_t i = 0;
    a[i].type = GRPC_ARG_INTEGER; a[i].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH; a[i++].value.integer = (int)BGW_GRPC_MAX_MESSAGE;
    a[i].type = GRPC_ARG_INTEGER; a[i].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH; a[i++].value.integer = (int)BGW_GRPC_MAX_MESSAGE;
    a[i].type = GRPC_ARG_INTEGER; a[i].key = (char *)GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS; a[i++].value.integer = 1;
    if (server) {
        a[i].type = GRPC_ARG_INTEGER; a[i].key = (char *)GRPC_ARG_KEEPALIVE_TIME_MS; a[i++].value.integer = 30000;
        a[i].type = GRPC_ARG_INTEGER; a[i].key = (char *)GRPC_ARG_KEEPALIVE_TIMEOUT_MS; a[i++].value.integer = 10000;
        a[i].type = GRPC_ARG_INTEGER; a[i].key = (char *)GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS; a[i++].value.integer = 5000;
        a[i].type = GRPC_ARG_INTEGER; a[i].key = (char *)GRPC_ARG_ALLOW_REUSEPORT; a[i++].value.integer = 0;
    } else {
        a[i].type = GRPC_ARG_INTEGER; a[i].key = (char *)GRPC_ARG_KEEPALIVE_TIME_MS; a[i++].value.integer = 10000;
        a[i].type = GRPC_ARG_INTEGER; a[i].key = (char *)GRPC_ARG_KEEPALIVE_TIMEOUT_MS; a[i++].value.integer = 5000;
        a[i].type = GRPC_ARG_INTEGER; a[i].key = (char *)GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA; a[i++].value.integer = 0;
        a[i].type = GRPC_ARG_INTEGER; a[i].key = (char *)GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS; a[i++].value.integer = 200;
        a[i].type = GRPC_ARG_INTEGER; a[i].key = (char *)GRPC_ARG_MAX_RECONNECT_BACKOFF_MS; a[i++].value.integer = 2000;
    }
    *n = i;
}

struct bgw_grpc_client *bgw_grpc_client_new(const char *target, const struct bgw_grpc_tls *tls, char *err, size_t errlen)
{
    struct bgw_grpc_client *c = calloc(1, sizeof *c);
    if (!c || !(c->target = strdup(target))) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (tls) {
        char *ca = NULL, *cert = NULL, *key = NULL;
        if (tls->ca_file && !(ca = read_pem(tls->ca_file, err, errlen))) goto fail;
        if ((tls->cert_file != NULL) != (tls->key_file != NULL)) {
            snprintf(err, errlen, "a client certificate needs both --cert and --key");
            free(ca);
            goto fail;
        }
        if (tls->cert_file && (!(cert = read_pem(tls->cert_file, err, errlen)) || !(key = read_pem(tls->key_file, err, errlen)))) {
            free(ca);
            free(cert);
            goto fail;
        }
        stream_grpc_init();
        grpc_ssl_pem_key_cert_pair pair = {key, cert};
        c->creds = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
        free(ca);
        free(cert);
        free(key);
    } else {
        stream_grpc_init();
        c->creds = grpc_insecure_credentials_create();
    }
    if (!c->creds || engine_start(&c->eng, client_on_tag) < 0 || engine_run(&c->eng) < 0) {
        snprintf(err, errlen, "cannot set up the gRPC client");
        if (c->creds) grpc_channel_credentials_release(c->creds);
        free(c->target);
        free(c);
        grpc_shutdown();
        return NULL;
    }
    return c;
fail:
    free(c->target);
    free(c);
    return NULL;
}

struct bgw_grpc_stream *bgw_grpc_client_open(struct bgw_grpc_client *c, const char *method,
                                             const struct bgw_grpc_handler *h, void *ud)
{
    grpc_arg a[16];
    size_t n;
    channel_args(a, &n, false);
    grpc_channel_args args = {n, a};
    grpc_channel *ch = grpc_channel_create(c->target, c->creds, &args);
    if (!ch) return NULL;
    grpc_slice m = grpc_slice_from_copied_string(method);
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->eng.cq, m, NULL,
                                               gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_slice_unref(m);
    if (!call) {
        grpc_channel_destroy(ch);
        return NULL;
    }
    struct bgw_grpc_stream *st = stream_new(&c->eng, call, false, h, ud);
    if (!st) {
        grpc_call_unref(call);
        grpc_channel_destroy(ch);
        return NULL;
    }
    st->channel = ch;
    stream_begin(st);   /* a failure shows as on_close */
    return st;
}

void bgw_grpc_client_free(struct bgw_grpc_client *c)
{
    if (!c) return;
    engine_cancel_all(&c->eng);
    engine_finish(&c->eng, true);
    grpc_channel_credentials_release(c->creds);
    free(c->target);
    free(c);
    grpc_shutdown_blocking();
}

/* ---------------------------------------------------------------------------------------------------- */
/* Server */

static void request_new_call(struct bgw_grpc_server *s)
{
    grpc_call_details_init(&s->details);
    grpc_metadata_array_init(&s->request_md);
    s->new_call = NULL;
    if (grpc_server_request_call(s->server, &s->new_call, &s->details, &s->request_md, s->eng.cq, s->eng.cq,
                                 &s->t_new) != GRPC_CALL_OK) {
        grpc_call_details_destroy(&s->details);
        grpc_metadata_array_destroy(&s->request_md);
    }
}

static void server_new_call(struct bgw_grpc_server *s, bool ok)
{
    grpc_call *call = s->new_call;
    bool ours = ok && call && grpc_slice_str_cmp(s->details.method, s->method) == 0;
    grpc_call_details_destroy(&s->details);
    grpc_metadata_array_destroy(&s->request_md);
    pthread_mutex_lock(&s->eng.lock);
    bool stopping = s->shutting_down;
    pthread_mutex_unlock(&s->eng.lock);
    if (ok && !stopping) request_new_call(s);
    if (!ok || !call) return;
    struct bgw_grpc_stream *st = stream_new(&s->eng, call, true, ours ? s->h : NULL, NULL);
    if (!st) {
        grpc_call_cancel(call, NULL);
        grpc_call_unref(call);
        return;
    }
    if (!ours || stopping) {
        st->released = true;   /* nobody owns it: it ends and frees itself */
        stream_begin(st);
        bgw_grpc_stream_close(st, stopping ? GRPC_STATUS_UNAVAILABLE : GRPC_STATUS_UNIMPLEMENTED,
                              stopping ? "shutting down" : "unknown method");
        return;
    }
    char *peer = grpc_call_get_peer(call);
    st->ud = s->on_accept(st, s->ud, peer ? peer : "");
    gpr_free(peer);
    stream_begin(st);
}

static void server_on_tag(struct engine *e, struct tag *t, bool ok)
{
    struct bgw_grpc_server *s = (struct bgw_grpc_server *)e;   /* eng is the first member */
    if (t->kind == TAG_NEW_CALL) {
        server_new_call(s, ok);
    } else if (t->kind == TAG_SHUTDOWN) {
        pthread_mutex_lock(&e->lock);
        s->shutdown_done = true;
        pthread_cond_broadcast(&e->cond);
        pthread_mutex_unlock(&e->lock);
    } else {
        stream_on_tag(t->owner, t->kind, ok);
    }
}

struct bgw_grpc_server *bgw_grpc_server_start(const char *addr, const struct bgw_grpc_tls *tls, const char *method,
                                              bgw_grpc_accept_fn on_accept, const struct bgw_grpc_handler *h,
                                              void *server_ud, char *err, size_t errlen)
{
    struct bgw_grpc_server *s = calloc(1, sizeof *s);
    if (!s || !(s->method = strdup(method))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->on_accept = on_accept;
    s->h = h;
    s->ud = server_ud;
    s->t_new = (struct tag){TAG_NEW_CALL, s};
    s->t_shutdown = (struct tag){TAG_SHUTDOWN, s};
    grpc_server_credentials *creds = NULL;
    if (tls) {
        char *ca = NULL, *cert = NULL, *key = NULL;
        if (!tls->cert_file || !tls->key_file) {
            snprintf(err, errlen, "TLS needs a server certificate and key");
            goto fail;
        }
        if ((tls->ca_file && !(ca = read_pem(tls->ca_file, err, errlen))) ||
            !(cert = read_pem(tls->cert_file, err, errlen)) || !(key = read_pem(tls->key_file, err, errlen))) {
            free(ca);
            free(cert);
            goto fail;
        }
        stream_grpc_init();
        grpc_ssl_pem_key_cert_pair pair = {key, cert};
        creds = grpc_ssl_server_credentials_create_ex(
            ca, &pair, 1, ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
            NULL);
        free(ca);
        free(cert);
        free(key);
    } else {
        stream_grpc_init();
        creds = grpc_insecure_server_credentials_create();
    }
    grpc_arg a[16];
    size_t n;
    channel_args(a, &n, true);
    grpc_channel_args args = {n, a};
    s->server = grpc_server_create(&args, NULL);
    engine_start(&s->eng, server_on_tag);
    grpc_server_register_completion_queue(s->server, s->eng.cq, NULL);
    s->port = grpc_server_add_http2_port(s->server, addr, creds);
    grpc_server_credentials_release(creds);
    if (s->port <= 0) {
        snprintf(err, errlen, "%s: cannot listen (address in use or not available)", addr);
        grpc_server_destroy(s->server);
        engine_finish(&s->eng, false);
        free(s->method);
        free(s);
        grpc_shutdown_blocking();
        return NULL;
    }
    grpc_server_start(s->server);
    request_new_call(s);
    if (engine_run(&s->eng) < 0) {
        snprintf(err, errlen, "cannot start the gRPC server thread");
        grpc_server_shutdown_and_notify(s->server, s->eng.cq, &s->t_shutdown);
        grpc_server_cancel_all_calls(s->server);
        engine_finish(&s->eng, false);   /* drains the queue on this thread: no stream was accepted */
        grpc_server_destroy(s->server);
        free(s->method);
        free(s);
        grpc_shutdown_blocking();
        return NULL;
    }
    return s;
fail:
    free(s->method);
    free(s);
    return NULL;
}

int bgw_grpc_server_port(const struct bgw_grpc_server *s)
{
    return s->port;
}

void bgw_grpc_server_stop(struct bgw_grpc_server *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->eng.lock);
    s->shutting_down = true;
    pthread_mutex_unlock(&s->eng.lock);
    grpc_server_shutdown_and_notify(s->server, s->eng.cq, &s->t_shutdown);
    grpc_server_cancel_all_calls(s->server);
    engine_cancel_all(&s->eng);
    pthread_mutex_lock(&s->eng.lock);
    while (!s->shutdown_done) pthread_cond_wait(&s->eng.cond, &s->eng.lock);
    pthread_mutex_unlock(&s->eng.lock);
    engine_finish(&s->eng, true);
    grpc_server_destroy(s->server);
    free(s->method);
    free(s);
    grpc_shutdown_blocking();
}
