/* jwks.c - the JWKS fetcher: fetch, keep last good, refresh, persist, hand keys to the builder (see
 * jwks.h). */
#include "jwks.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "clock.h"
#include "fileio.h"
#include "log.h"

#define CACHE_FILE "jwks-cache.json"

struct source {
    char *uri;
    json_t *keys;              /* the last good keys (array) or NULL */
    int64_t next_ms;           /* monotonic ms of the next fetch */
    bool wanted;               /* named by the current document */
    struct source *next;
};

struct bgw_jwks {
    struct bgw_builder *builder;
    uint32_t refresh_s, retry_s, timeout_ms;
    char *cache_path;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    struct source *sources;
    uint64_t ok, failed;
    pthread_t thread;
};

static int64_t mono_ms(void)
{
    return bgw_clock_ms(CLOCK_MONOTONIC);
}

static struct source *find(struct bgw_jwks *j, const char *uri)
{
    for (struct source *s = j->sources; s; s = s->next)
        if (strcmp(s->uri, uri) == 0) return s;
    return NULL;
}

static struct source *add(struct bgw_jwks *j, const char *uri)
{
    struct source *s = calloc(1, sizeof *s);
    if (!s || !(s->uri = strdup(uri))) {
        free(s);
        return NULL;
    }
    s->next = j->sources;
    j->sources = s;
    return s;
}

static void source_free(struct source *s)
{
    free(s->uri);
    json_decref(s->keys);
    free(s);
}

/* ---- the document ---- */

/*
 * The keys of a JWK Set body: a new array of its key objects without private members, or NULL (with why)
 * when the body is not a JWK Set.
 */
static json_t *parse_jwks(const char *body, size_t len, const char **why)
{
    static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};
    json_error_t e;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
    json_t *keys = json_object_get(doc, "keys");
    json_t *out = NULL;
    if (!json_is_object(doc)) {
        *why = "not a JSON object";
    } else if (!json_is_array(keys)) {
        *why = "no \"keys\" array";
    } else if ((out = json_array())) {
        size_t i;
        json_t *k;
        json_array_foreach(keys, i, k) {
            if (!json_is_object(k) || !json_is_string(json_object_get(k, "kty"))) {
                *why = "a key that is not an object with \"kty\"";
                json_decref(out);
                out = NULL;
                break;
            }
            json_t *copy = json_deep_copy(k);
            for (size_t m = 0; copy && m < sizeof private_members / sizeof private_members[0]; m++)
                if (strcmp(json_string_value(json_object_get(copy, "kty")), "oct") != 0)
                    json_object_del(copy, private_members[m]);
            json_array_append_new(out, copy);
        }
    }
    json_decref(doc);
    return out;
}

/* ---- fetching ---- */

struct body {
    char *data;
    size_t len;
    bool too_big;
};

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    size_t add = size * n;
    if (b->len + add > BGW_JWKS_MAX_BYTES) {
        b->too_big = true;
        return 0;
    }
    char *p = realloc(b->data, b->len + add + 1);
    if (!p) return 0;
    memcpy(p + b->len, ptr, add);
    b->data = p;
    b->len += add;
    b->data[b->len] = 0;
    return add;
}

/* Fetch uri. Returns the keys (new array) or NULL with err filled. */
static json_t *fetch(struct bgw_jwks *j, const char *uri, char *err, size_t errlen)
{
    CURL *c = curl_easy_init();
    struct body b = {0};
    json_t *keys = NULL;
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/jwk-set+json, application/json");
    if (!c || !hdrs) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, uri);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)j->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)j->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "bgw-control/" BGW_VERSION);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (b.too_big) {
        snprintf(err, errlen, "the answer is larger than %d bytes", BGW_JWKS_MAX_BYTES);
    } else if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s", curl_easy_strerror(rc));
    } else if (status < 200 || status > 299) {
        snprintf(err, errlen, "HTTP status %ld", status);
    } else {
        const char *why = "not a JWK Set";
        keys = parse_jwks(b.data ? b.data : "", b.len, &why);
        if (!keys) snprintf(err, errlen, "not a JWK Set: %s", why);
    }
out:
    curl_slist_free_all(hdrs);
    if (c) curl_easy_cleanup(c);
    free(b.data);
    return keys;
}

/* ---- the cache file ---- */

static void cache_load(struct bgw_jwks *j)
{
    size_t len;
    char *text = bgw_read_file(j->cache_path, 64 * BGW_JWKS_MAX_BYTES, &len);
    if (!text) return;
    json_t *doc = json_loadb(text, len, 0, NULL);
    free(text);
    const char *uri;
    json_t *v;
    size_t n = 0;
    json_object_foreach(doc, uri, v) {
        json_t *keys = json_object_get(v, "keys");
        struct source *s;
        if (!json_is_array(keys) || !(s = add(j, uri))) continue;
        s->keys = json_incref(keys);
        s->wanted = true;
        n++;
    }
    json_decref(doc);
    if (n) bgw_log_info("jwks: %zu key set(s) loaded from %s", n, j->cache_path);
}

/* Write the last good keys of the wanted URIs: temp file, fsync, rename. Call without the lock. */
static void cache_save(struct bgw_jwks *j)
{
    if (!j->cache_path) return;
    json_t *doc = json_object();
    pthread_mutex_lock(&j->lock);
    for (struct source *s = j->sources; s; s = s->next)
        if (s->keys && s->wanted) json_object_set_new(doc, s->uri, json_pack("{s:O}", "keys", s->keys));
    pthread_mutex_unlock(&j->lock);
    char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    if (!text) return;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", j->cache_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len = strlen(text), off = 0;
    bool ok = fd >= 0;
    while (ok && off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) ok = false;
        else off += (size_t)w;
    }
    if (ok && fsync(fd) < 0) ok = false;
    if (fd >= 0) close(fd);
    if (ok && rename(tmp, j->cache_path) < 0) ok = false;
    if (!ok) {
        bgw_log_warn("jwks: cannot write %s: %s", j->cache_path, strerror(errno));
        unlink(tmp);
    }
    free(text);
}

/* ---- the thread ---- */

static void *run(void *arg)
{
    struct bgw_jwks *j = arg;
    pthread_mutex_lock(&j->lock);
    while (!j->stop) {
        int64_t now = mono_ms(), next = INT64_MAX;
        struct source *due = NULL;
        for (struct source *s = j->sources; s; s = s->next) {
            if (!s->wanted) continue;
            if (s->next_ms <= now) {
                due = s;
                break;
            }
            if (s->next_ms < next) next = s->next_ms;
        }
        if (!due) {
            if (next == INT64_MAX) {
                pthread_cond_wait(&j->wake, &j->lock);
            } else {
                struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000};
                pthread_cond_timedwait(&j->wake, &j->lock, &ts);
            }
            continue;
        }
        char *uri = strdup(due->uri);
        due->next_ms = now + (int64_t)j->retry_s * 1000;     /* until the fetch says otherwise */
        pthread_mutex_unlock(&j->lock);
        if (!uri) {
            pthread_mutex_lock(&j->lock);
            continue;
        }
        char err[512] = "";
        json_t *keys = fetch(j, uri, err, sizeof err);
        bool changed = false;
        pthread_mutex_lock(&j->lock);
        struct source *s = find(j, uri);
        if (keys) {
            j->ok++;
            if (s) {
                s->next_ms = mono_ms() + (int64_t)j->refresh_s * 1000;
                if (!s->keys || !json_equal(s->keys, keys)) {
                    bgw_log_info("jwks: %s: %zu key(s)%s", uri, json_array_size(keys), s->keys ? " (changed)" : "");
                    json_decref(s->keys);
                    s->keys = json_incref(keys);
                    changed = true;
                }
            }
            json_decref(keys);
        } else {
            j->failed++;
            bgw_log_warn("jwks: %s: fetch failed (%s); %s; retrying in %us", uri, err,
                         s && s->keys ? "keeping the last good keys" : "no keys yet", j->retry_s);
        }
        free(uri);
        if (changed) {
            pthread_mutex_unlock(&j->lock);
            cache_save(j);
            bgw_builder_sources_changed(j->builder);
            pthread_mutex_lock(&j->lock);
        }
    }
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

/* ---- the builder's callbacks ---- */

void bgw_jwks_watch(void *arg, const json_t *resolved)
{
    struct bgw_jwks *j = arg;
    bool added = false;
    pthread_mutex_lock(&j->lock);
    for (struct source *s = j->sources; s; s = s->next) s->wanted = false;
    size_t i;
    json_t *pol;
    json_array_foreach(json_object_get(resolved, "auth_policies"), i, pol) {
        const char *uri = json_string_value(json_object_get(pol, "jwks_uri"));
        if (!uri) continue;
        struct source *s = find(j, uri);
        if (!s && (s = add(j, uri))) added = true;       /* next_ms 0: fetched at once */
        if (s) s->wanted = true;
    }
    /* forget what no policy uses any more */
    for (struct source **pp = &j->sources; *pp;) {
        struct source *s = *pp;
        if (s->wanted) {
            pp = &s->next;
            continue;
        }
        *pp = s->next;
        source_free(s);
    }
    if (added) pthread_cond_signal(&j->wake);
    pthread_mutex_unlock(&j->lock);
}

json_t *bgw_jwks_lookup(void *arg, const char *uri)
{
    struct bgw_jwks *j = arg;
    json_t *keys = NULL;
    pthread_mutex_lock(&j->lock);
    struct source *s = find(j, uri);
    if (s && s->keys) keys = json_deep_copy(s->keys);
    pthread_mutex_unlock(&j->lock);
    return keys;
}

void bgw_jwks_counts(struct bgw_jwks *j, uint64_t *ok, uint64_t *failed)
{
    pthread_mutex_lock(&j->lock);
    *ok = j->ok;
    *failed = j->failed;
    pthread_mutex_unlock(&j->lock);
}

/* ---- life ---- */

struct bgw_jwks *bgw_jwks_start(struct bgw_builder *b, const struct bgw_jwks_options *o)
{
    struct bgw_jwks *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->builder = b;
    j->refresh_s = o && o->refresh_s ? o->refresh_s : BGW_JWKS_DEFAULT_REFRESH_S;
    j->retry_s = o && o->retry_s ? o->retry_s : (j->refresh_s < 30 ? j->refresh_s : 30);
    j->timeout_ms = o && o->timeout_ms ? o->timeout_ms : 5000;
    if (o && o->state_dir) {
        size_t n = strlen(o->state_dir) + sizeof CACHE_FILE + 2;
        if (!(j->cache_path = malloc(n))) {
            free(j);
            return NULL;
        }
        snprintf(j->cache_path, n, "%s/%s", o->state_dir, CACHE_FILE);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&j->lock, NULL);
    if (j->cache_path) cache_load(j);
    if (pthread_create(&j->thread, NULL, run, j) != 0) {
        pthread_cond_destroy(&j->wake);
        pthread_mutex_destroy(&j->lock);
        while (j->sources) {
            struct source *s = j->sources;
            j->sources = s->next;
            source_free(s);
        }
        free(j->cache_path);
        free(j);
        return NULL;
    }
    return j;
}

void bgw_jwks_stop(struct bgw_jwks *j)
{
    if (!j) return;
    pthread_mutex_lock(&j->lock);
    bool running = !j->stop;
    j->stop = true;
    pthread_cond_signal(&j->wake);
    pthread_mutex_unlock(&j->lock);
    if (running) pthread_join(j->thread, NULL);
}

void bgw_jwks_free(struct bgw_jwks *j)
{
    if (!j) return;
    bgw_jwks_stop(j);
    while (j->sources) {
        struct source *s = j->sources;
        j->sources = s->next;
        source_free(s);
    }
    pthread_cond_destroy(&j->wake);
    pthread_mutex_destroy(&j->lock);
    free(j->cache_path);
    free(j);
}
