/*
 * k8s_watch.c - the Kubernetes list+watch loops of bgw-control (see k8s_watch.h): libcurl requests to the
 * API server, pages of lists joined and applied as one replacement, watch streams cut into events and
 * applied one by one, the next step chosen by watch_policy.c.
 */
#include "k8s_watch.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "clock.h"
#include "json_splitter.h"
#include "k8s_endpoints.h"
#include "log.h"
#include "metrics.h"
#include "watch_policy.h"

#define LIST_PAGE 500
#define LIST_BODY_MAX (512u << 20)
#define ERROR_BODY_MAX 65536
#define EVENT_MAX (64u << 20)
#define LIST_TIMEOUT_S 120
#define SLICE_SELECTOR "kubernetes.io%2Fservice-name"

enum { EV_ADDED, EV_MODIFIED, EV_DELETED, EV_BOOKMARK, EV_ERROR, EV_TYPES };
static const char *const ev_names[EV_TYPES] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};
static const char *const kind_names[2] = {"services", "endpointslices"};

struct informer {
    struct bgw_k8s_watcher *w;
    enum bgw_k8s_kind kind;
    char *ns;                       /* "" = all namespaces */
    pthread_t thread;
    bool started, synced;
    CURL *curl;
    char rv[64];                    /* last resourceVersion seen */
    uint64_t rnd;                   /* xorshift state */
    struct bgw_k8s_policy policy;
    /* the current watch */
    struct bgw_jsonsplit split;
    long http_status;
    int error_code;                 /* code of an ERROR event; 0 none */
    bool bad_stream, changed, got_bytes;
    char *body; size_t body_len, body_cap;  /* non-200 answers and lists */
};

struct bgw_k8s_watcher {
    struct bgw_k8s_conn conn;
    struct bgw_k8s_index *index;
    void (*changed)(void *arg);
    void *changed_arg;
    unsigned watch_timeout_s;
    struct informer *inf;
    size_t n_inf;
    pthread_mutex_t lock;           /* guards stopping, n_synced with cond */
    pthread_cond_t cond;
    atomic_bool stopping;
    size_t n_synced;
};

/* Sleep up to ms, returning early (true) when the watcher stops. */
static bool sleep_or_stop(struct bgw_k8s_watcher *w, uint32_t ms)
{
    struct timespec ts = bgw_clock_deadline(ms);

    pthread_mutex_lock(&w->lock);
    while (!atomic_load(&w->stopping))
        if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&w->lock);
    return atomic_load(&w->stopping);
}

/* ---- requests ---- */

static int xfer_cb(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct informer *f = arg;
    (void)dt; (void)dn; (void)ut; (void)un;
    return atomic_load(&f->w->stopping) ? 1 : 0;
}

static void collection_path(const struct informer *f, char *buf, size_t len)
{
    const char *group = f->kind == BGW_K8S_SERVICES ? "/api/v1" : "/apis/discovery.k8s.io/v1";
    if (*f->ns)
        snprintf(buf, len, "%s%s/namespaces/%s/%s", f->w->conn.server, group, f->ns, kind_names[f->kind]);
    else
        snprintf(buf, len, "%s%s/%s", f->w->conn.server, group, kind_names[f->kind]);
}

/* Set up the handle for one request to url; returns the header list to free after it. */
static struct curl_slist *prepare(struct informer *f, const char *url)
{
    return bgw_k8s_conn_prepare(&f->w->conn, f->curl, url, false, xfer_cb, f);
}

static int body_append(struct informer *f, const char *data, size_t n, size_t max)
{
    if (f->body_len + n + 1 > max)
        return -1;
    if (f->body_len + n + 1 > f->body_cap) {
        size_t cap = f->body_cap ? f->body_cap : 65536;
        while (cap < f->body_len + n + 1)
            cap *= 2;
        char *nb = realloc(f->body, cap);
        if (!nb)
            return -1;
        f->body = nb;
        f->body_cap = cap;
    }
    memcpy(f->body + f->body_len, data, n);
    f->body_len += n;
    f->body[f->body_len] = '\0';
    return 0;
}

static size_t body_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct informer *f = arg;
    return body_append(f, data, size * nmemb, LIST_BODY_MAX) < 0 ? 0 : size * nmemb;
}

/* The message of a Status body, for logs. */
static void status_message(const struct informer *f, char *buf, size_t len)
{
    json_t *s = f->body_len ? json_loadb(f->body, f->body_len, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(s, "message"));
    snprintf(buf, len, "%s", m ? m : "");
    json_decref(s);
}

static unsigned retry_after(CURL *e)
{
    curl_off_t ra = 0;
    if (curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &ra) != CURLE_OK || ra < 0)
        return 0;
    return ra > 3600 ? 3600 : (unsigned)ra;
}

/* ---- list ---- */

static enum bgw_k8s_outcome do_list(struct informer *f, unsigned *ra)
{
    char base[2048], url[4096], msg[256];
    json_t *items = json_array();
    char *cont = NULL;
    enum bgw_k8s_outcome out = BGW_K8S_LIST_FAILED;

    collection_path(f, base, sizeof base);
    for (;;) {
        char *esc = cont ? curl_easy_escape(f->curl, cont, 0) : NULL;
        snprintf(url, sizeof url, "%s?limit=%d%s%s%s", base, LIST_PAGE,
                 f->kind == BGW_K8S_ENDPOINTSLICES ? "&labelSelector=" SLICE_SELECTOR : "",
                 esc ? "&continue=" : "", esc ? esc : "");
        curl_free(esc);
        struct curl_slist *h = prepare(f, url);
        curl_easy_setopt(f->curl, CURLOPT_WRITEFUNCTION, body_cb);
        curl_easy_setopt(f->curl, CURLOPT_WRITEDATA, f);
        curl_easy_setopt(f->curl, CURLOPT_TIMEOUT, (long)LIST_TIMEOUT_S);
        f->body_len = 0;
        CURLcode rc = curl_easy_perform(f->curl);
        curl_slist_free_all(h);
        long st = 0;
        curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &st);
        if (atomic_load(&f->w->stopping))
            goto done;
        if (rc != CURLE_OK) {
            bgw_log_warn("kubernetes: list %s: %s", url, curl_easy_strerror(rc));
            goto done;
        }
        if (st != 200) {
            status_message(f, msg, sizeof msg);
            *ra = retry_after(f->curl);
            bgw_log_warn("kubernetes: list %s: HTTP %ld %s", url, st, msg);
            /* 410 here is a continue token gone stale: list again from the start, after a short backoff so
             * that a server answering every list with 410 is not hammered */
            out = BGW_K8S_LIST_FAILED;
            goto done;
        }
        json_error_t jerr;
        json_t *page = json_loadb(f->body, f->body_len, 0, &jerr);
        json_t *pitems = json_object_get(page, "items");
        const json_t *md = json_object_get(page, "metadata");
        const char *rv = json_string_value(json_object_get(md, "resourceVersion"));
        if (!page || (!json_is_array(pitems) && !json_is_null(pitems) && pitems) || !rv) {
            bgw_log_warn("kubernetes: list %s: not a list (%s)", url, page ? "no items or resourceVersion" : jerr.text);
            json_decref(page);
            goto done;
        }
        json_array_extend(items, pitems);
        snprintf(f->rv, sizeof f->rv, "%s", rv);
        free(cont);
        cont = NULL;
        const char *c = json_string_value(json_object_get(md, "continue"));
        if (c && *c)
            cont = strdup(c);
        json_decref(page);
        if (!cont)
            break;
    }
    if (bgw_k8s_index_replace(f->w->index, f->kind, f->ns, items) < 0)
        bgw_log_error("kubernetes: out of memory applying the list of %s", kind_names[f->kind]);
    if (f->synced)
        bgw_cp_metrics_relist();
    bgw_log_info("kubernetes: listed %zu %s%s%s at resourceVersion %s", json_array_size(items), kind_names[f->kind],
                 *f->ns ? " in " : "", f->ns, f->rv);
    out = BGW_K8S_LISTED;
done:
    free(cont);
    json_decref(items);
    return out;
}

/* ---- watch ---- */

static int on_event(void *arg, const char *obj, size_t len)
{
    struct informer *f = arg;
    json_t *ev = json_loadb(obj, len, 0, NULL);
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *o = json_object_get(ev, "object");
    int t;

    if (!type || !json_is_object(o)) {
        json_decref(ev);
        f->bad_stream = true;
        return -1;
    }
    for (t = 0; t < EV_TYPES && strcmp(type, ev_names[t]) != 0; t++)
        ;
    if (t < EV_TYPES)
        bgw_cp_metrics_k8s_event(kind_names[f->kind], ev_names[t]);
    if (t == EV_ERROR) {
        json_int_t code = json_integer_value(json_object_get(o, "code"));
        f->error_code = code ? (int)code : 500;
        bgw_log_warn("kubernetes: watch %s: ERROR %d %s", kind_names[f->kind], f->error_code,
                     json_string_value(json_object_get(o, "message")) ?: "");
        json_decref(ev);
        return -1;
    }
    const char *rv = json_string_value(json_object_get(json_object_get(o, "metadata"), "resourceVersion"));
    if (t < EV_BOOKMARK) {
        int rc = bgw_k8s_index_apply(f->w->index, f->kind, type, o);
        if (rc > 0)
            f->changed = true;
        else if (rc < 0)
            bgw_log_error("kubernetes: out of memory applying a %s event", type);
    }
    if (rv && *rv)
        snprintf(f->rv, sizeof f->rv, "%s", rv);
    json_decref(ev);
    return 0;
}

static size_t watch_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct informer *f = arg;
    size_t n = size * nmemb;
    char err[128];

    if (f->http_status == 0)
        curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &f->http_status);
    if (f->http_status != 200)
        return body_append(f, data, n, ERROR_BODY_MAX) < 0 ? 0 : n;
    f->got_bytes = true;
    int rc = bgw_jsonsplit_feed(&f->split, data, n, on_event, f, err, sizeof err);
    if (f->changed) {
        f->changed = false;
        f->w->changed(f->w->changed_arg);
    }
    if (rc < 0) {
        if (!f->error_code && !f->bad_stream) {
            bgw_log_warn("kubernetes: watch %s: %s", kind_names[f->kind], err);
            f->bad_stream = true;
        }
        return 0;
    }
    return n;
}

static enum bgw_k8s_outcome do_watch(struct informer *f, unsigned *ra)
{
    char base[2048], url[4096], msg[256];
    unsigned t = f->w->watch_timeout_s;
    unsigned timeout = t + bgw_k8s_rand(&f->rnd) % t;
    struct timespec t0, t1;

    collection_path(f, base, sizeof base);
    snprintf(url, sizeof url, "%s?watch=1&resourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=%u%s", base,
             f->rv, timeout, f->kind == BGW_K8S_ENDPOINTSLICES ? "&labelSelector=" SLICE_SELECTOR : "");
    struct curl_slist *h = prepare(f, url);
    curl_easy_setopt(f->curl, CURLOPT_WRITEFUNCTION, watch_cb);
    curl_easy_setopt(f->curl, CURLOPT_WRITEDATA, f);
    /* the server ends the stream after timeoutSeconds; a silent connection well past that is dead */
    curl_easy_setopt(f->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(f->curl, CURLOPT_LOW_SPEED_TIME, (long)timeout + 30);
    bgw_jsonsplit_reset(&f->split);
    f->http_status = 0;
    f->error_code = 0;
    f->bad_stream = f->changed = f->got_bytes = false;
    f->body_len = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CURLcode rc = curl_easy_perform(f->curl);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    curl_slist_free_all(h);
    if (atomic_load(&f->w->stopping))
        return BGW_K8S_WATCH_ENDED;
    if (f->http_status == 0)
        curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &f->http_status);
    if (f->error_code == 410 || f->http_status == 410)
        return BGW_K8S_GONE;
    if (f->error_code || f->bad_stream)
        return BGW_K8S_WATCH_ERROR;
    if (f->http_status != 200) {
        if (f->http_status) {
            status_message(f, msg, sizeof msg);
            *ra = retry_after(f->curl);
            bgw_log_warn("kubernetes: watch %s: HTTP %ld %s", kind_names[f->kind], f->http_status, msg);
        } else {
            bgw_log_warn("kubernetes: watch %s: %s", kind_names[f->kind], curl_easy_strerror(rc));
        }
        return BGW_K8S_WATCH_FAILED;
    }
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (rc != CURLE_OK)
        bgw_log_info("kubernetes: watch %s ended: %s; watching again from %s", kind_names[f->kind],
                     curl_easy_strerror(rc), f->rv);
    return (f->got_bytes || secs >= 1.0) ? BGW_K8S_WATCH_ENDED : BGW_K8S_WATCH_EMPTY;
}

/* ---- the loop ---- */

static void mark_synced(struct informer *f)
{
    if (f->synced)
        return;
    f->synced = true;
    pthread_mutex_lock(&f->w->lock);
    f->w->n_synced++;
    pthread_cond_broadcast(&f->w->cond);
    pthread_mutex_unlock(&f->w->lock);
}

static void *informer_main(void *arg)
{
    struct informer *f = arg;
    struct bgw_k8s_watcher *w = f->w;
    bool relist = true;

    while (!atomic_load(&w->stopping)) {
        unsigned ra = 0;
        enum bgw_k8s_outcome o;

        if (relist) {
            o = do_list(f, &ra);
            if (o == BGW_K8S_LISTED) {
                w->changed(w->changed_arg);
                mark_synced(f);
            }
        } else {
            o = do_watch(f, &ra);
        }
        if (atomic_load(&w->stopping))
            break;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        struct bgw_k8s_step s = bgw_k8s_policy_next(&f->policy, o, ra, bgw_k8s_rand(&f->rnd),
                                                    (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + 1);
        if (s.relist && !relist && o == BGW_K8S_GONE)
            bgw_log_info("kubernetes: %s resourceVersion %s is too old (410 Gone): listing again",
                         kind_names[f->kind], f->rv);
        relist = s.relist;
        if (s.delay_ms && sleep_or_stop(w, s.delay_ms))
            break;
    }
    return NULL;
}

struct bgw_k8s_watcher *bgw_k8s_watcher_start(struct bgw_k8s_watcher_config *cfg, char *err, size_t errlen)
{
    struct bgw_k8s_watcher *w = calloc(1, sizeof *w);
    size_t n_ns = cfg->n_namespaces ? cfg->n_namespaces : 1;

    if (!w || !(w->index = bgw_k8s_index_new()) || !(w->inf = calloc(2 * n_ns, sizeof *w->inf))) {
        snprintf(err, errlen, "out of memory");
        if (w)
            bgw_k8s_index_free(w->index);
        free(w);
        bgw_k8s_conn_free(&cfg->conn);
        return NULL;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (strncmp(cfg->conn.server, "http://", 7) == 0 && (cfg->conn.token || cfg->conn.token_file))
        bgw_log_warn("kubernetes: %s is plain HTTP: the bearer token travels unencrypted", cfg->conn.server);
    w->conn = cfg->conn;
    memset(&cfg->conn, 0, sizeof cfg->conn);
    pthread_mutex_init(&w->conn.lock, NULL);
    w->changed = cfg->changed;
    w->changed_arg = cfg->changed_arg;
    w->watch_timeout_s = cfg->watch_timeout_s ? cfg->watch_timeout_s : 300;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->n_inf = 2 * n_ns;
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)w << 7);
    for (size_t i = 0; i < w->n_inf; i++) {
        struct informer *f = &w->inf[i];
        f->w = w;
        f->kind = i % 2 ? BGW_K8S_ENDPOINTSLICES : BGW_K8S_SERVICES;
        f->ns = strdup(cfg->n_namespaces ? cfg->namespaces[i / 2] : "");
        f->rnd = (seed + i * 0x9E3779B97F4A7C15ull) | 1;
        f->curl = curl_easy_init();
        bgw_jsonsplit_init(&f->split, EVENT_MAX);
        if (!f->ns || !f->curl) {
            snprintf(err, errlen, "out of memory");
            bgw_k8s_watcher_stop(w);
            return NULL;
        }
    }
    for (size_t i = 0; i < w->n_inf; i++) {
        if (pthread_create(&w->inf[i].thread, NULL, informer_main, &w->inf[i]) != 0) {
            snprintf(err, errlen, "cannot start a watch thread");
            bgw_k8s_watcher_stop(w);
            return NULL;
        }
        w->inf[i].started = true;
    }
    return w;
}

bool bgw_k8s_watcher_wait_synced(struct bgw_k8s_watcher *w, unsigned timeout_ms)
{
    struct timespec ts = bgw_clock_deadline(timeout_ms);
    bool ok;

    pthread_mutex_lock(&w->lock);
    while (w->n_synced < w->n_inf && !atomic_load(&w->stopping))
        if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
            break;
    ok = w->n_synced == w->n_inf;
    pthread_mutex_unlock(&w->lock);
    return ok;
}

json_t *bgw_k8s_watcher_lookup(void *arg, const char *ns, const char *service, const char *port)
{
    struct bgw_k8s_watcher *w = arg;
    return bgw_k8s_index_lookup(w->index, ns, service, port);
}

void bgw_k8s_watcher_stop(struct bgw_k8s_watcher *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    atomic_store(&w->stopping, true);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    for (size_t i = 0; i < w->n_inf; i++) {
        struct informer *f = &w->inf[i];
        if (f->started)
            pthread_join(f->thread, NULL);
        if (f->curl)
            curl_easy_cleanup(f->curl);
        bgw_jsonsplit_free(&f->split);
        free(f->body);
        free(f->ns);
    }
    free(w->inf);
    bgw_k8s_index_free(w->index);
    bgw_k8s_conn_free(&w->conn);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
