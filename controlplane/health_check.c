/*
 * health_check.c - active HTTP health checks (see health_check.h): the engine (targets kept sorted by
 * "service\naddress", per-endpoint thresholds, a schedule against an injectable clock; every check
 * counted in bgw_health_checks_total through metrics.h) and the runner (a thread driving libcurl multi,
 * at most max_in_flight checks at once).
 */
#include "health_check.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "strbuf.h"

#define PROBE_BATCH 64

struct target {
    char *key;                   /* "service\naddress": the sort key */
    char *service, *address;     /* point into key (split copies) */
    char *path;
    unsigned interval_ms, timeout_ms, healthy_threshold, unhealthy_threshold;
    bool healthy;
    unsigned passes, failures;   /* consecutive */
    int64_t next_due;            /* clock ms */
    int64_t last_due;            /* when the last check was due: the schedule's anchor (0: never) */
    uint64_t inflight_id;        /* 0: not in flight */
    bool kept;                   /* bgw_health_update(): still in the new document */
};

struct slot {
    uint64_t id;                 /* 0: free */
    struct target *t;            /* NULL when the target was dropped while its check ran */
};

struct dropped {
    char *service, *address;
};

struct transfer;

struct bgw_health {
    bgw_health_report_fn report;
    void *report_arg;
    struct bgw_health_clock clock;
    unsigned max_in_flight;
    uint64_t rng;
    bool no_jitter;

    pthread_mutex_t lock;        /* everything below */
    struct target **targets;     /* sorted by key */
    size_t n_targets;
    struct slot *slots;          /* max_in_flight of them */
    unsigned in_flight;
    uint64_t next_id;
    struct dropped *dropped;     /* "stopped being checked while unhealthy", to report */
    size_t n_dropped;

    /* runner */
    CURLM *multi;
    struct transfer *transfers;  /* runner thread only */
    pthread_t thread;
    bool running, stop;
};

/* ---- clock ---- */


static int64_t now_ms(struct bgw_health *h)
{
    return h->clock.now_ms ? h->clock.now_ms(h->clock.arg) : bgw_clock_ms(CLOCK_MONOTONIC);
}

static int64_t wall_ms(struct bgw_health *h)
{
    return h->clock.wall_ms ? h->clock.wall_ms(h->clock.arg) : bgw_clock_ms(CLOCK_REALTIME);
}

/* xorshift64*: the first-check jitter only. */
static uint64_t next_random(struct bgw_health *h)
{
    h->rng ^= h->rng >> 12;
    h->rng ^= h->rng << 25;
    h->rng ^= h->rng >> 27;
    return h->rng * 2685821657736338717ULL;
}

/* ---- targets ---- */

static void target_free(struct target *t)
{
    if (!t) return;
    free(t->key);
    free(t->service);
    free(t->path);
    free(t);
}

static int cmp_target(const void *a, const void *b)
{
    return strcmp((*(struct target *const *)a)->key, (*(struct target *const *)b)->key);
}

/* The target with key, or NULL. Call with h->lock held. */
static struct target **find_target(struct bgw_health *h, const char *key)
{
    struct target probe = {.key = (char *)key}, *pp = &probe;
    if (!h->n_targets) return NULL;
    return bsearch(&pp, h->targets, h->n_targets, sizeof *h->targets, cmp_target);
}

static char *make_key(const char *service, const char *address)
{
    size_t a = strlen(service), b = strlen(address);
    char *k = malloc(a + b + 2);
    if (!k) return NULL;
    memcpy(k, service, a);
    k[a] = '\n';
    memcpy(k + a + 1, address, b + 1);
    return k;
}

static unsigned u32_field(const json_t *o, const char *name, unsigned dflt)
{
    json_t *v = json_object_get(o, name);
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > UINT32_MAX) return dflt;
    return (unsigned)json_integer_value(v);
}

/* Fill t's check parameters from a health_check object (defaults as in the document schema). */
static int set_params(struct target *t, const json_t *hc)
{
    const char *path = json_string_value(json_object_get(hc, "path"));
    if (!path || !*path) path = "/";
    if (!t->path || strcmp(t->path, path) != 0) {
        char *p = strdup(path);
        if (!p) return -1;
        free(t->path);
        t->path = p;
    }
    t->interval_ms = u32_field(hc, "interval_ms", 5000);
    t->timeout_ms = u32_field(hc, "timeout_ms", 1000);
    t->healthy_threshold = u32_field(hc, "healthy_threshold", 2);
    t->unhealthy_threshold = u32_field(hc, "unhealthy_threshold", 3);
    return 0;
}

static struct target *target_new(const char *service, const char *address)
{
    struct target *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->key = make_key(service, address);
    t->service = t->key ? strdup(t->key) : NULL;
    if (!t->service) {
        target_free(t);
        return NULL;
    }
    t->service[strlen(service)] = '\0';
    t->address = t->service + strlen(service) + 1;
    t->healthy = true;
    return t;
}

/* Remember to tell the report callback that an unhealthy target is no longer checked. Call locked. */
static void note_dropped(struct bgw_health *h, const struct target *t)
{
    struct dropped *d = realloc(h->dropped, (h->n_dropped + 1) * sizeof *d);
    if (!d) return;
    h->dropped = d;
    d[h->n_dropped].service = strdup(t->service);
    d[h->n_dropped].address = strdup(t->address);
    if (d[h->n_dropped].service && d[h->n_dropped].address) h->n_dropped++;
    else {
        free(d[h->n_dropped].service);
        free(d[h->n_dropped].address);
    }
}

/* Drop t: forget its check in flight, report it once if it was unhealthy. Call locked. */
static void drop_target(struct bgw_health *h, struct target *t)
{
    if (t->inflight_id)
        for (unsigned i = 0; i < h->max_in_flight; i++)
            if (h->slots[i].id == t->inflight_id) h->slots[i].t = NULL;
    if (!t->healthy) note_dropped(h, t);
    target_free(t);
}

/* ---- engine ---- */

struct bgw_health *bgw_health_new(const struct bgw_health_options *opts)
{
    struct bgw_health *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    if (opts) {
        h->report = opts->report;
        h->report_arg = opts->report_arg;
        if (opts->clock) h->clock = *opts->clock;
        h->max_in_flight = opts->max_in_flight;
        h->rng = opts->seed;
        h->no_jitter = opts->no_jitter;
    }
    if (!h->max_in_flight) h->max_in_flight = BGW_HEALTH_MAX_IN_FLIGHT;
    h->rng = (h->rng ^ 0x9e3779b97f4a7c15ULL) | 1;
    h->slots = calloc(h->max_in_flight, sizeof *h->slots);
    if (!h->slots) {
        free(h);
        return NULL;
    }
    pthread_mutex_init(&h->lock, NULL);
    return h;
}

void bgw_health_update(void *arg, const json_t *resolved)
{
    struct bgw_health *h = arg;
    struct target **next = NULL;
    size_t n = 0, cap = 0;
    size_t i, k;
    json_t *svc, *e;

    pthread_mutex_lock(&h->lock);
    int64_t now = now_ms(h);
    json_array_foreach(json_object_get(resolved, "services"), i, svc) {
        const char *name = json_string_value(json_object_get(svc, "name"));
        const json_t *hc = json_object_get(svc, "health_check");
        if (!name || !json_is_object(hc)) continue;
        json_array_foreach(json_object_get(svc, "endpoints"), k, e) {
            const char *addr = json_is_string(e) ? json_string_value(e)
                                                 : json_string_value(json_object_get(e, "address"));
            if (!addr || !*addr) continue;
            char *key = make_key(name, addr);
            if (!key) continue;
            struct target **old = find_target(h, key), *t;
            free(key);
            bool is_new = !old;
            if (old && (*old)->kept) continue;     /* a duplicate address within the service */
            if (old) {
                t = *old;
                t->kept = true;
            } else {
                if (!(t = target_new(name, addr))) continue;
                t->next_due = now;
            }
            unsigned old_interval = t->interval_ms;
            if (set_params(t, hc) < 0) goto skip;
            /* A shorter interval applies from the last check, not after the old one runs out. */
            if (!is_new && t->interval_ms < old_interval && !t->inflight_id && t->last_due &&
                t->next_due > t->last_due + t->interval_ms)
                t->next_due = t->last_due + t->interval_ms > now ? t->last_due + t->interval_ms : now;
            if (is_new && !h->no_jitter) {
                unsigned bound = t->interval_ms / 10;
                if (bound > BGW_HEALTH_JITTER_MAX_MS) bound = BGW_HEALTH_JITTER_MAX_MS;
                t->next_due = now + (int64_t)(next_random(h) % (bound + 1));
            }
            if (n == cap) {
                size_t c = cap ? cap * 2 : 16;
                struct target **g = realloc(next, c * sizeof *g);
                if (!g) goto skip;
                next = g;
                cap = c;
            }
            next[n++] = t;
            continue;
        skip:
            if (is_new) target_free(t);
            else t->kept = false;        /* dropped below with the others */
        }
    }
    /* Whatever stayed in the old array is gone from the document. */
    for (i = 0; i < h->n_targets; i++)
        if (!h->targets[i]->kept) drop_target(h, h->targets[i]);
    free(h->targets);
    for (i = 0; i < n; i++) next[i]->kept = false;
    if (n) qsort(next, n, sizeof *next, cmp_target);
    /* The same new address listed twice in one service: keep the first. */
    size_t w = 0;
    for (i = 0; i < n; i++) {
        if (w && strcmp(next[w - 1]->key, next[i]->key) == 0) {
            drop_target(h, next[i]);
            continue;
        }
        next[w++] = next[i];
    }
    h->targets = next;
    h->n_targets = w;
    if (h->multi) curl_multi_wakeup(h->multi);      /* under the lock: bgw_health_stop() frees it */
    pthread_mutex_unlock(&h->lock);
}

static int cmp_due(const void *a, const void *b)
{
    const struct target *x = *(struct target *const *)a, *y = *(struct target *const *)b;
    return (x->next_due > y->next_due) - (x->next_due < y->next_due);
}

static char *make_url(const struct target *t)
{
    size_t n = strlen("http://") + strlen(t->address) + strlen(t->path) + 2;
    char *u = malloc(n);
    if (u) snprintf(u, n, "http://%s%s%s", t->address, t->path[0] == '/' ? "" : "/", t->path);
    return u;
}

size_t bgw_health_take_due(struct bgw_health *h, struct bgw_health_probe *out, size_t max)
{
    size_t n = 0;

    pthread_mutex_lock(&h->lock);
    if (h->n_dropped) {
        int64_t wall = wall_ms(h);
        for (size_t i = 0; i < h->n_dropped; i++) {
            if (h->report) h->report(h->report_arg, h->dropped[i].service, h->dropped[i].address, true, wall, "", true);
            free(h->dropped[i].service);
            free(h->dropped[i].address);
        }
        free(h->dropped);
        h->dropped = NULL;
        h->n_dropped = 0;
    }
    size_t room = h->max_in_flight - h->in_flight;
    if (room > max) room = max;
    if (room == 0) goto out;

    int64_t now = now_ms(h);
    size_t n_due = 0;
    for (size_t i = 0; i < h->n_targets; i++)
        if (!h->targets[i]->inflight_id && h->targets[i]->next_due <= now) n_due++;
    if (n_due == 0) goto out;
    struct target **due = malloc(n_due * sizeof *due);
    if (!due) goto out;
    n_due = 0;
    for (size_t i = 0; i < h->n_targets; i++)
        if (!h->targets[i]->inflight_id && h->targets[i]->next_due <= now) due[n_due++] = h->targets[i];
    qsort(due, n_due, sizeof *due, cmp_due);

    unsigned s = 0;
    for (size_t i = 0; i < n_due && n < room; i++) {
        struct target *t = due[i];
        char *url = make_url(t);
        if (!url) break;
        while (h->slots[s].id) s++;        /* room > 0 guarantees a free slot */
        uint64_t id = ++h->next_id;
        h->slots[s] = (struct slot){id, t};
        h->in_flight++;
        t->inflight_id = id;
        /* Late by less than an interval: keep the schedule; more: start it again from now. */
        t->last_due = now - t->next_due < (int64_t)t->interval_ms ? t->next_due : now;
        struct bgw_health_probe *p = &out[n++];
        p->id = id;
        p->url = url;
        p->timeout_ms = t->timeout_ms;
        snprintf(p->service, sizeof p->service, "%s", t->service);
        snprintf(p->address, sizeof p->address, "%s", t->address);
    }
    free(due);
out:
    pthread_mutex_unlock(&h->lock);
    return n;
}

void bgw_health_complete(struct bgw_health *h, uint64_t id, bool passed, const char *error)
{
    pthread_mutex_lock(&h->lock);
    struct target *t = NULL;
    bool found = false;
    for (unsigned i = 0; i < h->max_in_flight; i++) {
        if (h->slots[i].id != id || id == 0) continue;
        t = h->slots[i].t;
        h->slots[i] = (struct slot){0, NULL};
        h->in_flight--;
        found = true;
        break;
    }
    if (!found || !t) {
        pthread_mutex_unlock(&h->lock);
        return;
    }
    int64_t now = now_ms(h);
    t->inflight_id = 0;
    t->next_due = t->last_due + t->interval_ms;
    if (t->next_due < now) t->next_due = now;

    bgw_cp_metrics_health_check(t->service, passed ? "success" : "failure");
    bool was = t->healthy;
    if (passed) {
        t->failures = 0;
        if (t->passes < UINT32_MAX) t->passes++;
        if (!t->healthy && t->passes >= t->healthy_threshold) t->healthy = true;
    } else {
        t->passes = 0;
        if (t->failures < UINT32_MAX) t->failures++;
        if (t->healthy && t->failures >= t->unhealthy_threshold) t->healthy = false;
    }
    char err[BGW_HEALTH_ERROR_MAX];
    snprintf(err, sizeof err, "%s", passed ? "" : (error && *error ? error : "failed"));
    if (was != t->healthy) {
        if (t->healthy)
            bgw_log_info("health check: service %s endpoint %s is healthy again (%u passed in a row)",
                         t->service, t->address, t->passes);
        else
            bgw_log_warn("health check: service %s endpoint %s is unhealthy (%u failed in a row, last: %s)",
                         t->service, t->address, t->failures, err);
    }
    if (h->report)
        h->report(h->report_arg, t->service, t->address, t->healthy, wall_ms(h), err, was != t->healthy);
    pthread_mutex_unlock(&h->lock);
}

void bgw_health_probe_release(struct bgw_health_probe *p)
{
    free(p->url);
    p->url = NULL;
}

int64_t bgw_health_next_due(struct bgw_health *h)
{
    int64_t best = -1;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; h->in_flight < h->max_in_flight && i < h->n_targets; i++) {
        const struct target *t = h->targets[i];
        if (!t->inflight_id && (best < 0 || t->next_due < best)) best = t->next_due;
    }
    pthread_mutex_unlock(&h->lock);
    return best;
}

/* The target service/address. Call locked. */
static struct target *lookup(struct bgw_health *h, const char *service, const char *address)
{
    char *key = make_key(service, address);
    struct target **t = key ? find_target(h, key) : NULL;
    free(key);
    return t ? *t : NULL;
}

bool bgw_health_is_target(struct bgw_health *h, const char *service, const char *address)
{
    pthread_mutex_lock(&h->lock);
    bool yes = lookup(h, service, address) != NULL;
    pthread_mutex_unlock(&h->lock);
    return yes;
}

bool bgw_health_healthy(struct bgw_health *h, const char *service, const char *address)
{
    pthread_mutex_lock(&h->lock);
    struct target *t = lookup(h, service, address);
    bool yes = t && t->healthy;
    pthread_mutex_unlock(&h->lock);
    return yes;
}

/* ---- runner ---- */

struct transfer {
    struct transfer *prev, *next;      /* the runner's list of transfers in flight */
    CURL *easy;
    uint64_t id;
    unsigned timeout_ms;
    char errbuf[CURL_ERROR_SIZE];
};

static size_t discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
    (void)ptr;
    (void)arg;
    return size * nmemb;
}

/* Add one probe to the multi handle. On failure the probe completes at once as failed. */
static void start_probe(struct bgw_health *h, struct bgw_health_probe *p)
{
    struct transfer *tr = calloc(1, sizeof *tr);
    CURL *e = tr ? curl_easy_init() : NULL;
    if (!e) {
        free(tr);
        bgw_health_complete(h, p->id, false, "out of memory");
        return;
    }
    tr->id = p->id;
    tr->timeout_ms = p->timeout_ms;
    curl_easy_setopt(e, CURLOPT_URL, p->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "bgw-health-check/" BGW_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, tr->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, tr);
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        free(tr);
        bgw_health_complete(h, p->id, false, "could not start the check");
        return;
    }
    tr->easy = e;
    tr->next = h->transfers;
    if (h->transfers) h->transfers->prev = tr;
    h->transfers = tr;
}

/* Collect finished transfers and complete their probes. */
static void finish_done(struct bgw_health *h)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(h->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *e = msg->easy_handle;
        CURLcode res = msg->data.result;
        struct transfer *tr = NULL;
        long code = 0, os_errno = 0;
        char err[BGW_HEALTH_ERROR_MAX] = "";
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&tr);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        bool passed = false;
        if (res == CURLE_OPERATION_TIMEDOUT)
            snprintf(err, sizeof err, "timeout after %u ms", tr->timeout_ms);
        else if (res == CURLE_COULDNT_CONNECT && curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK &&
                 os_errno)
            snprintf(err, sizeof err, "connect: %s", strerror((int)os_errno));
        else if (res != CURLE_OK)
            snprintf(err, sizeof err, "%s", tr->errbuf[0] ? tr->errbuf : curl_easy_strerror(res));
        else if (code < 200 || code > 299)
            snprintf(err, sizeof err, "HTTP %ld", code);
        else
            passed = true;
        curl_multi_remove_handle(h->multi, e);
        curl_easy_cleanup(e);
        if (tr->prev) tr->prev->next = tr->next;
        else h->transfers = tr->next;
        if (tr->next) tr->next->prev = tr->prev;
        bgw_health_complete(h, tr->id, passed, err);
        free(tr);
    }
}

static void *run(void *arg)
{
    struct bgw_health *h = arg;
    struct bgw_health_probe probes[PROBE_BATCH];

    for (;;) {
        pthread_mutex_lock(&h->lock);
        bool stop = h->stop;
        pthread_mutex_unlock(&h->lock);
        if (stop) break;

        size_t n;
        while ((n = bgw_health_take_due(h, probes, PROBE_BATCH)) > 0) {
            for (size_t i = 0; i < n; i++) {
                start_probe(h, &probes[i]);
                bgw_health_probe_release(&probes[i]);
            }
            if (n < PROBE_BATCH) break;
        }
        int running = 0;
        curl_multi_perform(h->multi, &running);
        finish_done(h);

        int64_t due = bgw_health_next_due(h), wait = 1000;
        if (due >= 0) {
            wait = due - now_ms(h);
            if (wait < 0) wait = 0;
            if (wait > 1000) wait = 1000;
        }
        curl_multi_poll(h->multi, NULL, 0, (int)wait, NULL);
    }
    /* Abandon whatever is still in flight. */
    while (h->transfers) {
        struct transfer *tr = h->transfers;
        h->transfers = tr->next;
        curl_multi_remove_handle(h->multi, tr->easy);
        curl_easy_cleanup(tr->easy);
        free(tr);
    }
    return NULL;
}

int bgw_health_start(struct bgw_health *h, char *err, size_t errlen)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(h->multi = curl_multi_init())) {
        snprintf(err, errlen, "health checks: libcurl could not be initialised");
        return -1;
    }
    if (pthread_create(&h->thread, NULL, run, h) != 0) {
        curl_multi_cleanup(h->multi);
        h->multi = NULL;
        snprintf(err, errlen, "health checks: could not start a thread");
        return -1;
    }
    h->running = true;
    return 0;
}

void bgw_health_stop(struct bgw_health *h)
{
    if (!h || !h->running) return;
    pthread_mutex_lock(&h->lock);
    h->stop = true;
    pthread_mutex_unlock(&h->lock);
    curl_multi_wakeup(h->multi);
    pthread_join(h->thread, NULL);
    pthread_mutex_lock(&h->lock);
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    h->running = false;
    pthread_mutex_unlock(&h->lock);
}

void bgw_health_free(struct bgw_health *h)
{
    if (!h) return;
    bgw_health_stop(h);
    for (size_t i = 0; i < h->n_targets; i++) target_free(h->targets[i]);
    free(h->targets);
    for (size_t i = 0; i < h->n_dropped; i++) {
        free(h->dropped[i].service);
        free(h->dropped[i].address);
    }
    free(h->dropped);
    free(h->slots);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
