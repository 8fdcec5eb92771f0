/* access_log.c - per-worker rings of access records, drained by one writer thread (see access_log.h). */
#include "access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proxy.h"
#include "snapshot.h"
#include "stats.h"
#include "timer.h"
#include "strbuf.h"

volatile int bgw_access_log_on;

struct ring {
    _Alignas(64) uint64_t head;          /* next slot the worker fills; written by the worker only */
    uint64_t dropped;                    /* written by the worker only */
    _Alignas(64) uint64_t tail;          /* next slot the writer reads; written by the writer only */
    struct bgw_access_rec *recs;
};

static struct {
    struct ring *rings;
    unsigned n;
    int fd;
    bool own_fd;
    pthread_t thread;
    int stop;                            /* atomic */
    uint64_t written;                    /* atomic; records written */
    uint64_t write_errors;
} g = {.fd = -1};

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define MASK (BGW_ACCESS_LOG_RING - 1)

struct bgw_access_rec *bgw_access_log_slot(unsigned worker)
{
    if (worker >= g.n) return NULL;
    struct ring *r = &g.rings[worker];
    uint64_t head = r->head;
    if (head - __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) >= BGW_ACCESS_LOG_RING) {
        __atomic_store_n(&r->dropped, r->dropped + 1, __ATOMIC_RELAXED);
        return NULL;
    }
    struct bgw_access_rec *rec = &r->recs[head & MASK];
    memset(rec, 0, offsetof(struct bgw_access_rec, method));
    rec->method[0] = rec->request_id[0] = rec->trace_id[0] = 0;
    rec->route[0] = rec->service[0] = rec->endpoint[0] = rec->path[0] = 0;
    return rec;
}

void bgw_access_log_commit(unsigned worker)
{
    struct ring *r = &g.rings[worker];
    __atomic_store_n(&r->head, r->head + 1, __ATOMIC_RELEASE);
}

static void copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

void bgw_access_log_note_target(char *out, size_t cap, const char *target, size_t len)
{
    const char *q = target ? memchr(target, '?', len) : NULL;
    size_t n = q ? (size_t)(q - target) : (target ? len : 0);
    if (n >= cap) n = cap - 1;
    if (n) memcpy(out, target, n);
    out[n] = 0;
}

void bgw_access_log_request(unsigned worker, const struct bgw_request *r, unsigned status)
{
    struct bgw_access_rec *rec = bgw_access_log_slot(worker);
    if (!rec) return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    rec->time_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    rec->total_ns = bgw_now_ns() - r->start_ns;
    rec->upstream_ns = r->up_ns;
    rec->bytes_in = r->body_bytes;
    rec->bytes_out = r->resp_bytes;
    rec->status = (uint16_t)status;
    copy(rec->method, sizeof rec->method, bgw_stats_method_names[r->method]);
    copy(rec->request_id, sizeof rec->request_id, r->request_id);
    if (r->traceparent[0]) {
        memcpy(rec->trace_id, r->traceparent + 3, 32);
        rec->trace_id[32] = 0;
    }
    copy(rec->path, sizeof rec->path, r->log_path);
    if (r->ws && r->route >= 0) {
        const struct bgw_snapshot *s = r->ws->snap;
        copy(rec->route, sizeof rec->route, s->cfg->routes[r->route].name);
        copy(rec->service, sizeof rec->service, s->cfg->services[r->service].name);
        if (r->endpoint != UINT32_MAX && r->endpoint < s->services[r->service].n_eps)
            copy(rec->endpoint, sizeof rec->endpoint, s->services[r->service].eps[r->endpoint].address);
    }
    bgw_access_log_commit(worker);
}

/* ---- formatting ---- */

struct out {
    char *p;
    size_t n, cap;
    bool overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->n + n > o->cap) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

#define PUTS(o, lit) put((o), (lit), sizeof(lit) - 1)

/* A JSON string (or null when empty and null_if_empty): escapes quotes, backslashes, control characters
 * and bytes outside ASCII (as \u00XX, so the line is valid UTF-8 whatever the client sent). */
static void put_str(struct out *o, const char *s, bool null_if_empty)
{
    if (null_if_empty && !*s) {
        PUTS(o, "null");
        return;
    }
    static const char hex[] = "0123456789abcdef";
    PUTS(o, "\"");
    const unsigned char *c = (const unsigned char *)s;
    while (*c) {
        const unsigned char *run = c;      /* a run of bytes that need no escape goes in one copy */
        while (*c >= 0x20 && *c < 0x7f && *c != '"' && *c != '\\') c++;
        if (c > run) put(o, (const char *)run, (size_t)(c - run));
        if (!*c) break;
        if (*c == '"' || *c == '\\') {
            char e[2] = {'\\', (char)*c};
            put(o, e, 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[*c >> 4], hex[*c & 15]};
            put(o, e, 6);
        }
        c++;
    }
    PUTS(o, "\"");
}

static void put_u64(struct out *o, uint64_t v)
{
    char b[24];
    int i = sizeof b;
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, b + i, sizeof b - (size_t)i);
}

/* Nanoseconds as seconds with 6 decimals ("0.001359"). */
static void put_secs(struct out *o, uint64_t ns)
{
    uint64_t us = ns / 1000;
    put_u64(o, us / 1000000);
    char frac[7] = {'.'};
    uint64_t f = us % 1000000;
    for (int i = 6; i >= 1; i--, f /= 10) frac[i] = (char)('0' + f % 10);
    put(o, frac, 7);
}

/* "2026-11-27T03:03:44.218Z": the part up to the seconds is formatted once per second. */
static void put_time(struct out *o, int64_t time_ms)
{
    static __thread time_t cached_secs = -1;
    static __thread char cached[24];
    time_t secs = (time_t)(time_ms / 1000);
    if (secs != cached_secs) {
        struct tm tm;
        gmtime_r(&secs, &tm);
        strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_secs = secs;
    }
    put(o, cached, strlen(cached));
    int ms = (int)(time_ms % 1000);
    char frac[5] = {'.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10), 'Z'};
    put(o, frac, 5);
}

size_t bgw_access_log_format(const struct bgw_access_rec *r, char *buf, size_t cap)
{
    struct out o = {buf, 0, cap, false};
    PUTS(&o, "{\"time\":\"");
    put_time(&o, r->time_ms);
    PUTS(&o, "\",\"request_id\":");
    put_str(&o, r->request_id, true);
    PUTS(&o, ",\"trace_id\":");
    put_str(&o, r->trace_id, true);
    PUTS(&o, ",\"route\":");
    put_str(&o, r->route, true);
    PUTS(&o, ",\"service\":");
    put_str(&o, r->service, true);
    PUTS(&o, ",\"endpoint\":");
    put_str(&o, r->endpoint, true);
    PUTS(&o, ",\"method\":");
    put_str(&o, r->method, false);
    PUTS(&o, ",\"path\":");
    put_str(&o, r->path, false);
    PUTS(&o, ",\"status\":");
    put_u64(&o, r->status);
    PUTS(&o, ",\"duration_s\":");
    put_secs(&o, r->total_ns);
    PUTS(&o, ",\"upstream_duration_s\":");
    if (r->upstream_ns) put_secs(&o, r->upstream_ns);
    else PUTS(&o, "null");
    PUTS(&o, ",\"bytes_in\":");
    put_u64(&o, r->bytes_in);
    PUTS(&o, ",\"bytes_out\":");
    put_u64(&o, r->bytes_out);
    PUTS(&o, "}\n");
    return o.overflow ? 0 : o.n;
}

/* ---- the writer ---- */

static void write_all(const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(g.fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            g.write_errors++;
            return;                      /* the lines are lost; the proxy goes on */
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Drain every ring once. Returns how many records were written. */
static size_t drain(char *buf, size_t cap)
{
    size_t len = 0, total = 0;
    for (unsigned i = 0; i < g.n; i++) {
        struct ring *r = &g.rings[i];
        uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
        for (uint64_t t = r->tail; t != head; t++) {
            if (cap - len < BGW_ACCESS_LOG_LINE_MAX) {
                write_all(buf, len);
                len = 0;
            }
            len += bgw_access_log_format(&r->recs[t & MASK], buf + len, cap - len);
            __atomic_store_n(&r->tail, t + 1, __ATOMIC_RELEASE);
            total++;
        }
    }
    if (len) write_all(buf, len);
    __atomic_store_n(&g.written, LOAD(g.written) + total, __ATOMIC_RELAXED);
    return total;
}

static void *writer(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "bgw-access-log");   /* visible in top -H, ps -L, /proc */
    size_t cap = 256 * 1024;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        int stopping = __atomic_load_n(&g.stop, __ATOMIC_ACQUIRE);
        size_t n = drain(buf, cap);
        if (stopping) break;
        /* Each wake-up and write() costs far more than formatting a line (measured: about 30 us against
         * 0.3 us), so batches are kept large: after a small drain wait 10 ms (a worker at 35k requests/s,
         * about its limit, fills 350 of its 2048 slots meanwhile), after a larger one 2 ms, and drain again
         * at once when half a ring's worth came in. */
        long wait_ms = n < BGW_ACCESS_LOG_RING / 8 ? 10 : n < BGW_ACCESS_LOG_RING / 2 ? 2 : 0;
        if (wait_ms) {
            struct timespec ts = {0, wait_ms * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    free(buf);
    return NULL;
}

int bgw_access_log_start(const char *target, unsigned n_workers, char *err, size_t errlen)
{
    if (strcmp(target, "-") == 0) {
        g.fd = STDOUT_FILENO;
        g.own_fd = false;
    } else {
        g.fd = open(target, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (g.fd < 0) {
            snprintf(err, errlen, "--access-log %s: cannot open: %s", target, strerror(errno));
            return -1;
        }
        g.own_fd = true;
    }
    g.rings = calloc(n_workers, sizeof *g.rings);
    if (!g.rings) goto oom;
    g.n = n_workers;
    for (unsigned i = 0; i < n_workers; i++) {
        g.rings[i].recs = malloc(BGW_ACCESS_LOG_RING * sizeof(struct bgw_access_rec));
        if (!g.rings[i].recs) goto oom;
    }
    if (pthread_create(&g.thread, NULL, writer, NULL) != 0) goto oom;
    bgw_access_log_on = 1;
    return 0;
oom:
    snprintf(err, errlen, "--access-log %s: out of memory", target);
    for (unsigned i = 0; g.rings && i < n_workers; i++) free(g.rings[i].recs);
    free(g.rings);
    g.rings = NULL;
    g.n = 0;
    if (g.own_fd) close(g.fd);
    g.fd = -1;
    return -1;
}

void bgw_access_log_stop(void)
{
    if (!bgw_access_log_on) return;
    bgw_access_log_on = 0;
    __atomic_store_n(&g.stop, 1, __ATOMIC_RELEASE);
    pthread_join(g.thread, NULL);
    if (g.own_fd) close(g.fd);
    g.fd = -1;
    /* the rings stay: a worker still running may look at them (it finds bgw_access_log_on cleared) */
}

int bgw_access_log_render_metrics(char **buf, size_t *len, size_t *cap)
{
    uint64_t dropped = 0;
    for (unsigned i = 0; i < g.n; i++) dropped += LOAD(g.rings[i].dropped);
    return bgw_strbuf_printf(buf, len, cap,
                             "# HELP bgw_access_log_records_total Access log lines written.\n"
                             "# TYPE bgw_access_log_records_total counter\nbgw_access_log_records_total %llu\n"
                             "# HELP bgw_access_log_dropped_total Access log records dropped because a worker's "
                             "ring was full.\n"
                             "# TYPE bgw_access_log_dropped_total counter\nbgw_access_log_dropped_total %llu\n",
                             (unsigned long long)LOAD(g.written), (unsigned long long)dropped);
}
