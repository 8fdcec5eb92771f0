/*
 * store_configmap.c - the store's state in a Kubernetes ConfigMap (see store_configmap.h): load and save
 * for the store (called with the store's lock held, one libcurl handle), and a thread watching the one
 * ConfigMap that hands newer states to bgw_store_reload().
 */
#include "store_configmap.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "clock.h"
#include "json_splitter.h"
#include "log.h"
#include "watch_policy.h"

#define REQUEST_TIMEOUT_S 15
#define BODY_MAX (4u << 20)
#define EVENT_MAX (4u << 20)

struct buf {
    char *p;
    size_t len, cap;
};

struct bgw_store_configmap {
    struct bgw_k8s_conn conn;
    char *ns, *name;
    char what[300];                 /* "ConfigMap NS/NAME" for messages */
    CURL *curl;                     /* load and save (the store's lock serialises them) */
    pthread_mutex_t lock;           /* guards rv and labels */
    char rv[BGW_STORE_TOKEN_MAX];   /* the resourceVersion last loaded or saved: where the watch starts */
    json_t *meta_keep;              /* labels and annotations of the object last loaded, kept on saves */
    /* the watch */
    struct bgw_store *store;
    pthread_t thread;
    bool watching;
    atomic_bool stopping;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    unsigned watch_timeout_s;
    CURL *wcurl;
    struct bgw_jsonsplit split;
    char wrv[BGW_STORE_TOKEN_MAX];  /* the watch's resourceVersion ("": GET first) */
    long wstatus;
    int error_code;
    bool bad_stream, got_bytes;
    struct buf werr;
    uint64_t rnd;
};

/* ---- requests ---- */

static int buf_append(struct buf *b, const char *data, size_t n, size_t max)
{
    if (b->len + n + 1 > max)
        return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static size_t body_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    return buf_append(arg, data, size * nmemb, BODY_MAX) < 0 ? 0 : size * nmemb;
}

static int xfer_cb(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct bgw_store_configmap *c = arg;
    (void)dt; (void)dn; (void)ut; (void)un;
    return atomic_load(&c->stopping) ? 1 : 0;
}

/* Set e up for one request to url; returns the header list to free after it. */
static struct curl_slist *prepare(struct bgw_store_configmap *c, CURL *e, const char *url, bool json_body)
{
    return bgw_k8s_conn_prepare(&c->conn, e, url, json_body, xfer_cb, c);
}

/* One request (method, url, body may be NULL) on the load/save handle: *status the HTTP status, *resp the
 * answer (parsed JSON, may be NULL). Returns 0, or -1 with err filled (network). */
static int request(struct bgw_store_configmap *c, const char *method, const char *url, const char *body,
                   long *status, json_t **resp, struct bgw_store_error *err)
{
    struct buf b = {0};
    struct curl_slist *h = prepare(c, c->curl, url, body != NULL);
    CURLcode rc;

    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, (long)REQUEST_TIMEOUT_S);
    rc = curl_easy_perform(c->curl);
    curl_slist_free_all(h);
    *status = 0;
    *resp = NULL;
    if (rc != CURLE_OK) {
        free(b.p);
        err->status = BGW_STORE_IO;
        err->field[0] = '\0';
        snprintf(err->message, sizeof err->message, "%.200s: the API server cannot be reached: %.200s", c->what,
                 curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
    if (b.p)
        *resp = json_loadb(b.p, b.len, 0, NULL);
    free(b.p);
    return 0;
}

/* err for an unexpected answer: "ConfigMap NS/NAME: VERB: HTTP 503 message". */
static int http_fail(struct bgw_store_configmap *c, const char *verb, long status, const json_t *resp,
                     struct bgw_store_error *err)
{
    const char *m = json_string_value(json_object_get(resp, "message"));

    err->status = BGW_STORE_IO;
    err->field[0] = '\0';
    snprintf(err->message, sizeof err->message, "%.200s: %s: the API server answered %ld%s%.200s", c->what, verb,
             status, m ? ": " : "", m ? m : "");
    return -1;
}

static const char *object_rv(const json_t *o)
{
    return json_string_value(json_object_get(json_object_get(o, "metadata"), "resourceVersion"));
}

/* The state text and resourceVersion of a ConfigMap object; remembers rv and metadata to keep. */
static void take_object(struct bgw_store_configmap *c, const json_t *o, char **text, char token[])
{
    const char *rv = object_rv(o), *t;
    const json_t *md = json_object_get(o, "metadata");

    t = json_string_value(json_object_get(json_object_get(o, "data"), BGW_STORE_CONFIGMAP_KEY));
    if (text)
        *text = t ? strdup(t) : NULL;
    snprintf(token, BGW_STORE_TOKEN_MAX, "%s", rv ? rv : "");
    pthread_mutex_lock(&c->lock);
    snprintf(c->rv, sizeof c->rv, "%s", rv ? rv : "");
    json_t *keep = json_object();
    if (keep && json_object_get(md, "labels"))
        json_object_set(keep, "labels", json_object_get(md, "labels"));
    if (keep && json_object_get(md, "annotations"))
        json_object_set(keep, "annotations", json_object_get(md, "annotations"));
    json_decref(c->meta_keep);
    c->meta_keep = keep;
    pthread_mutex_unlock(&c->lock);
}

/* ---- the backend ---- */

static int cm_load(void *impl, char **text, char token[BGW_STORE_TOKEN_MAX], struct bgw_store_error *err)
{
    struct bgw_store_configmap *c = impl;
    char url[2048];
    long status;
    json_t *resp;

    *text = NULL;
    token[0] = '\0';
    snprintf(url, sizeof url, "%s/api/v1/namespaces/%s/configmaps/%s", c->conn.server, c->ns, c->name);
    if (request(c, "GET", url, NULL, &status, &resp, err) < 0)
        return -1;
    if (status == 404) {
        json_decref(resp);
        pthread_mutex_lock(&c->lock);
        c->rv[0] = '\0';
        pthread_mutex_unlock(&c->lock);
        return 0;
    }
    if (status != 200 || !object_rv(resp)) {
        http_fail(c, "read", status, resp, err);
        json_decref(resp);
        return -1;
    }
    take_object(c, resp, text, token);
    json_decref(resp);
    return 0;
}

static int cm_save(void *impl, const char *text, char token[BGW_STORE_TOKEN_MAX], struct bgw_store_error *err)
{
    struct bgw_store_configmap *c = impl;
    char url[2048];
    size_t len = strlen(text);
    long status;
    json_t *obj, *md, *resp;
    char *body;
    bool create = token[0] == '\0';

    if (len > BGW_STORE_CONFIGMAP_MAX) {
        err->status = BGW_STORE_TOO_LARGE;
        err->field[0] = '\0';
        snprintf(err->message, sizeof err->message, "%.200s: the state would take %zu bytes, more than the %d a "
                 "ConfigMap can hold: change refused", c->what, len, BGW_STORE_CONFIGMAP_MAX);
        return -1;
    }
    md = json_pack("{s:s,s:s}", "name", c->name, "namespace", c->ns);
    pthread_mutex_lock(&c->lock);
    if (md && c->meta_keep)
        json_object_update(md, c->meta_keep);
    pthread_mutex_unlock(&c->lock);
    if (md && !create)
        json_object_set_new(md, "resourceVersion", json_string(token));
    obj = md ? json_pack("{s:s,s:s,s:o,s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap", "metadata", md, "data",
                         BGW_STORE_CONFIGMAP_KEY, text)
             : NULL;
    body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!body) {
        err->status = BGW_STORE_IO;
        err->field[0] = '\0';
        snprintf(err->message, sizeof err->message, "out of memory");
        return -1;
    }
    if (create)
        snprintf(url, sizeof url, "%s/api/v1/namespaces/%s/configmaps", c->conn.server, c->ns);
    else
        snprintf(url, sizeof url, "%s/api/v1/namespaces/%s/configmaps/%s", c->conn.server, c->ns, c->name);
    int rc = request(c, create ? "POST" : "PUT", url, body, &status, &resp, err);
    free(body);
    if (rc < 0)
        return -1;
    if (status == 409 || (status == 404 && !create)) {     /* changed, created or deleted by someone else */
        json_decref(resp);
        return 1;
    }
    if ((status != 200 && status != 201) || !object_rv(resp)) {
        http_fail(c, create ? "create" : "update", status, resp, err);
        const char *m = json_string_value(json_object_get(resp, "message"));
        if (status == 413 || (status == 422 && m && strstr(m, "Too long")))
            err->status = BGW_STORE_TOO_LARGE;      /* the API server's own size limits */
        json_decref(resp);
        return -1;
    }
    take_object(c, resp, NULL, token);
    json_decref(resp);
    return 0;
}

static void cm_close(void *impl)
{
    struct bgw_store_configmap *c = impl;

    if (!c)
        return;
    if (c->watching) {
        pthread_mutex_lock(&c->stop_lock);
        atomic_store(&c->stopping, true);
        pthread_cond_broadcast(&c->stop_cond);
        pthread_mutex_unlock(&c->stop_lock);
        pthread_join(c->thread, NULL);
    }
    if (c->curl)
        curl_easy_cleanup(c->curl);
    if (c->wcurl)
        curl_easy_cleanup(c->wcurl);
    bgw_jsonsplit_free(&c->split);
    free(c->werr.p);
    json_decref(c->meta_keep);
    bgw_k8s_conn_free(&c->conn);
    free(c->ns);
    free(c->name);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->stop_lock);
    pthread_cond_destroy(&c->stop_cond);
    free(c);
}

/* A DNS-1123 subdomain (names) or label (namespaces), roughly: lower-case alphanumerics, '-' and '.'. */
static bool k8s_name_ok(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

int bgw_store_configmap_new(struct bgw_k8s_conn *conn, const char *ns_name, struct bgw_store_backend *out,
                            char *err, size_t errlen)
{
    const char *slash = strchr(ns_name, '/');
    struct bgw_store_configmap *c;

    if (!slash || !k8s_name_ok(ns_name, (size_t)(slash - ns_name), 63) ||
        !k8s_name_ok(slash + 1, strlen(slash + 1), 253) || strchr(slash + 1, '/')) {
        snprintf(err, errlen, "--state-configmap: \"%s\" is not NAMESPACE/NAME (lower-case letters, digits, "
                 "'-' and '.')", ns_name);
        bgw_k8s_conn_free(conn);
        return -1;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        bgw_k8s_conn_free(conn);
        return -1;
    }
    c->conn = *conn;                            /* taken over: the caller does not free it */
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->stop_lock, NULL);
    pthread_cond_init(&c->stop_cond, NULL);
    c->ns = strndup(ns_name, (size_t)(slash - ns_name));
    c->name = strdup(slash + 1);
    c->curl = curl_easy_init();
    c->wcurl = curl_easy_init();
    bgw_jsonsplit_init(&c->split, EVENT_MAX);
    snprintf(c->what, sizeof c->what, "ConfigMap %s", ns_name);
    if (!c->ns || !c->name || !c->curl || !c->wcurl) {
        snprintf(err, errlen, "out of memory");
        cm_close(c);
        return -1;
    }
    out->impl = c;
    out->load = cm_load;
    out->save = cm_save;
    out->close = cm_close;
    return 0;
}

/* ---- the watch ---- */

static bool sleep_or_stop(struct bgw_store_configmap *c, uint32_t ms)
{
    struct timespec ts = bgw_clock_deadline(ms);

    pthread_mutex_lock(&c->stop_lock);
    while (!atomic_load(&c->stopping))
        if (pthread_cond_timedwait(&c->stop_cond, &c->stop_lock, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&c->stop_lock);
    return atomic_load(&c->stopping);
}

/* A state seen by the watch (or its GET): to the store. */
static void offer(struct bgw_store_configmap *c, const json_t *o)
{
    const char *text = json_string_value(json_object_get(json_object_get(o, "data"), BGW_STORE_CONFIGMAP_KEY));
    const char *rv = object_rv(o);
    struct bgw_store_error err;
    int rc;

    if (!rv)
        return;
    if (!text) {
        bgw_log_warn("store: %s at resourceVersion %s has no %s key; ignored", c->what, rv,
                     BGW_STORE_CONFIGMAP_KEY);
        return;
    }
    rc = bgw_store_reload(c->store, text, rv, &err);
    if (rc < 0)
        bgw_log_error("store: %s at resourceVersion %s holds an invalid state, ignored (the last good state "
                      "stays): %s", c->what, rv, err.message);
    else if (rc > 0)
        bgw_log_info("store: loaded the state of %s at resourceVersion %s (version %llu)", c->what, rv,
                     (unsigned long long)bgw_store_version(c->store));
}

/* GET the ConfigMap for the watch (after a 410 or at the start): offered to the store, wrv set. */
static enum bgw_k8s_outcome watch_get(struct bgw_store_configmap *c)
{
    char url[2048];
    struct buf b = {0};
    long status = 0;

    snprintf(url, sizeof url, "%s/api/v1/namespaces/%s/configmaps/%s", c->conn.server, c->ns, c->name);
    struct curl_slist *h = prepare(c, c->wcurl, url, false);
    curl_easy_setopt(c->wcurl, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(c->wcurl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c->wcurl, CURLOPT_TIMEOUT, (long)REQUEST_TIMEOUT_S);
    CURLcode rc = curl_easy_perform(c->wcurl);
    curl_slist_free_all(h);
    curl_easy_getinfo(c->wcurl, CURLINFO_RESPONSE_CODE, &status);
    json_t *o = rc == CURLE_OK && b.p ? json_loadb(b.p, b.len, 0, NULL) : NULL;
    free(b.p);
    if (atomic_load(&c->stopping)) {
        json_decref(o);
        return BGW_K8S_LISTED;
    }
    if (rc == CURLE_OK && status == 404) {      /* not there (yet): watch for its creation */
        json_decref(o);
        c->wrv[0] = '\0';
        return BGW_K8S_LISTED;
    }
    if (rc != CURLE_OK || status != 200 || !object_rv(o)) {
        bgw_log_warn("store: watch of %s: get: %s", c->what,
                     rc != CURLE_OK ? curl_easy_strerror(rc) : status ? "unexpected answer" : "no answer");
        json_decref(o);
        return BGW_K8S_LIST_FAILED;
    }
    offer(c, o);
    snprintf(c->wrv, sizeof c->wrv, "%s", object_rv(o));
    json_decref(o);
    return BGW_K8S_LISTED;
}

static int on_event(void *arg, const char *data, size_t len)
{
    struct bgw_store_configmap *c = arg;
    json_t *ev = json_loadb(data, len, 0, NULL);
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *o = json_object_get(ev, "object");

    if (!type || !json_is_object(o)) {
        json_decref(ev);
        c->bad_stream = true;
        return -1;
    }
    if (strcmp(type, "ERROR") == 0) {
        json_int_t code = json_integer_value(json_object_get(o, "code"));
        c->error_code = code ? (int)code : 500;
        if (c->error_code != 410)
            bgw_log_warn("store: watch of %s: ERROR %d %s", c->what, c->error_code,
                         json_string_value(json_object_get(o, "message")) ?: "");
        json_decref(ev);
        return -1;
    }
    const char *name = json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));
    if ((strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) && name && strcmp(name, c->name) == 0)
        offer(c, o);
    else if (strcmp(type, "DELETED") == 0)
        bgw_log_warn("store: %s was deleted; the state in memory stays and the next change creates it again",
                     c->what);
    const char *rv = object_rv(o);
    if (rv && *rv)
        snprintf(c->wrv, sizeof c->wrv, "%s", rv);
    json_decref(ev);
    return 0;
}

static size_t watch_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct bgw_store_configmap *c = arg;
    size_t n = size * nmemb;
    char err[128];

    if (c->wstatus == 0)
        curl_easy_getinfo(c->wcurl, CURLINFO_RESPONSE_CODE, &c->wstatus);
    if (c->wstatus != 200)
        return buf_append(&c->werr, data, n, 65536) < 0 ? 0 : n;
    c->got_bytes = true;
    if (bgw_jsonsplit_feed(&c->split, data, n, on_event, c, err, sizeof err) < 0) {
        if (!c->error_code && !c->bad_stream) {
            bgw_log_warn("store: watch of %s: %s", c->what, err);
            c->bad_stream = true;
        }
        return 0;
    }
    return n;
}

static enum bgw_k8s_outcome watch_once(struct bgw_store_configmap *c, unsigned *ra)
{
    char url[4096];
    unsigned t = c->watch_timeout_s, timeout = t + bgw_k8s_rand(&c->rnd) % t;
    struct timespec t0, t1;

    snprintf(url, sizeof url, "%s/api/v1/namespaces/%s/configmaps?watch=1&fieldSelector=metadata.name%%3D%s"
             "&resourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=%u", c->conn.server, c->ns, c->name,
             c->wrv, timeout);
    struct curl_slist *h = prepare(c, c->wcurl, url, false);
    curl_easy_setopt(c->wcurl, CURLOPT_WRITEFUNCTION, watch_cb);
    curl_easy_setopt(c->wcurl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->wcurl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c->wcurl, CURLOPT_LOW_SPEED_TIME, (long)timeout + 30);
    bgw_jsonsplit_reset(&c->split);
    c->wstatus = 0;
    c->error_code = 0;
    c->bad_stream = c->got_bytes = false;
    c->werr.len = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CURLcode rc = curl_easy_perform(c->wcurl);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    curl_slist_free_all(h);
    if (atomic_load(&c->stopping))
        return BGW_K8S_WATCH_ENDED;
    if (c->wstatus == 0)
        curl_easy_getinfo(c->wcurl, CURLINFO_RESPONSE_CODE, &c->wstatus);
    if (c->error_code == 410 || c->wstatus == 410)
        return BGW_K8S_GONE;
    if (c->error_code || c->bad_stream)
        return BGW_K8S_WATCH_ERROR;
    if (c->wstatus != 200) {
        curl_off_t r = 0;
        if (curl_easy_getinfo(c->wcurl, CURLINFO_RETRY_AFTER, &r) == CURLE_OK && r > 0)
            *ra = r > 3600 ? 3600 : (unsigned)r;
        if (c->wstatus)
            bgw_log_warn("store: watch of %s: HTTP %ld", c->what, c->wstatus);
        else
            bgw_log_warn("store: watch of %s: %s", c->what, curl_easy_strerror(rc));
        return BGW_K8S_WATCH_FAILED;
    }
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return (c->got_bytes || secs >= 1.0) ? BGW_K8S_WATCH_ENDED : BGW_K8S_WATCH_EMPTY;
}

static void *watch_main(void *arg)
{
    struct bgw_store_configmap *c = arg;
    struct bgw_k8s_policy policy = {0};
    bool get = c->wrv[0] == '\0';

    while (!atomic_load(&c->stopping)) {
        unsigned ra = 0;
        enum bgw_k8s_outcome o = get ? watch_get(c) : watch_once(c, &ra);
        if (atomic_load(&c->stopping))
            break;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + 1;
        struct bgw_k8s_step step = bgw_k8s_policy_next(&policy, o, ra, bgw_k8s_rand(&c->rnd), now_ms);
        get = step.relist;
        if (step.delay_ms && sleep_or_stop(c, step.delay_ms))
            break;
    }
    return NULL;
}

int bgw_store_configmap_watch(void *impl, struct bgw_store *s, unsigned watch_timeout_s, char *err,
                              size_t errlen)
{
    struct bgw_store_configmap *c = impl;

    c->store = s;
    c->watch_timeout_s = watch_timeout_s ? watch_timeout_s : 300;
    c->rnd = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)(uintptr_t)c;
    if (!c->rnd)
        c->rnd = 1;
    pthread_mutex_lock(&c->lock);
    memcpy(c->wrv, c->rv, sizeof c->wrv);
    pthread_mutex_unlock(&c->lock);
    if (pthread_create(&c->thread, NULL, watch_main, c) != 0) {
        snprintf(err, errlen, "%s: cannot start the watch thread", c->what);
        return -1;
    }
    c->watching = true;
    return 0;
}
