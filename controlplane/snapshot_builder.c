/* snapshot_builder.c - the stored document resolved against Kubernetes endpoints and health results, and
 * the versions it is published under (see snapshot_builder.h). */
#include "snapshot_builder.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

#define MAX_WATCHERS 8

struct watcher {
    bgw_builder_watch_fn fn;
    void *arg;
};

struct bgw_builder {
    bgw_builder_publish_fn publish;
    void *publish_arg;
    bgw_builder_k8s_lookup_fn k8s;
    void *k8s_arg;
    bgw_builder_jwks_lookup_fn jwks;
    void *jwks_arg;
    struct watcher watchers[MAX_WATCHERS];
    int n_watchers;

    pthread_mutex_t rebuild_lock;      /* one rebuild (and its callbacks) at a time */

    pthread_mutex_t lock;              /* the state below */
    json_t *doc;                       /* the stored document (a reference; nobody modifies it) */
    char store_version[32];
    unsigned long long gen;            /* source-driven rebuilds within store_version */
    json_t *resolved;                  /* last published resolved document, without "version" */
    char version[64];                  /* its version */
    json_t *health;                    /* "service\naddress" -> {"healthy", "last_check", "last_error"} */

    pthread_mutex_t wake_lock;
    pthread_cond_t wake;
    bool dirty, stop;
    int64_t window_ms;                 /* the coalescing window of the next source-driven rebuild */
    pthread_t thread;
};

static int64_t mono_ms(void)
{
    return bgw_clock_ms(CLOCK_MONOTONIC);
}

static void health_key(char *out, size_t n, const char *service, const char *address)
{
    snprintf(out, n, "%s\n%s", service, address);
}

/* Whether the health checker says service/address is down. Call with b->lock held. */
static bool reported_down(struct bgw_builder *b, const char *service, const char *address)
{
    char key[512];
    health_key(key, sizeof key, service, address);
    json_t *h = json_object_get(b->health, key);
    return h && json_is_false(json_object_get(h, "healthy"));
}

/* One resolved endpoint object. */
static json_t *endpoint(const char *address, bool healthy)
{
    return json_pack("{s:s,s:b}", "address", address, "healthy", healthy);
}

/* Every auth policy with a jwks_uri gets the keys fetched from it appended to its inline "jwks" keys
 * (a policy whose URI was never fetched keeps what it has). out shares its policies with the stored
 * document, which is never modified: the array and each changed policy are replaced by copies. Returns 0,
 * or -1 when out of memory. */
static int merge_jwks(struct bgw_builder *b, json_t *out)
{
    size_t i;
    json_t *pol;
    json_t *policies = json_object_get(out, "auth_policies");
    if (!b->jwks || !json_array_size(policies)) return 0;
    json_t *copy = json_array();
    if (!copy || json_object_set_new(out, "auth_policies", copy) < 0) return -1;
    json_array_foreach(policies, i, pol) {
        const char *uri = json_string_value(json_object_get(pol, "jwks_uri"));
        json_t *fetched = uri ? b->jwks(b->jwks_arg, uri) : NULL;
        if (!fetched) {
            if (json_array_append(copy, pol) < 0) return -1;
            continue;
        }
        json_t *keys = json_deep_copy(json_object_get(json_object_get(pol, "jwks"), "keys"));
        if (!keys) keys = json_array();
        json_t *merged = json_copy(pol);
        int rc = keys && merged ? json_array_extend(keys, fetched) : -1;
        json_decref(fetched);
        if (rc == 0) rc = json_object_set_new(merged, "jwks", json_pack("{s:o}", "keys", keys));
        else json_decref(keys);
        if (rc < 0 || json_array_append_new(copy, merged) < 0) {
            json_decref(merged);
            return -1;
        }
    }
    return 0;
}

/*
 * The resolved document for doc: a deep copy whose services carry their endpoints as resolved objects.
 * Kubernetes references are looked up (with no builder state lock held); health is applied afterwards
 * under the state lock. Returns a new reference or NULL when out of memory.
 */
static json_t *resolve(struct bgw_builder *b, const json_t *doc)
{
    /* Shallow copies down to the services: routes and policies are shared with doc, never modified. */
    json_t *out = json_copy((json_t *)doc), *services = json_array();
    if (!out || !services || json_object_set_new(out, "services", services) < 0) {
        json_decref(out);
        return NULL;
    }
    size_t i;
    json_t *svc;
    json_array_foreach(json_object_get(doc, "services"), i, svc) {
        if (json_array_append_new(services, json_copy(svc)) < 0) goto oom;
    }
    json_array_foreach(services, i, svc) {
        json_t *k8s = json_object_get(svc, "kubernetes");
        json_t *eps = json_array();
        if (!eps) goto oom;
        if (k8s) {
            const char *ns = json_string_value(json_object_get(k8s, "namespace"));
            const char *name = json_string_value(json_object_get(k8s, "service"));
            json_t *port = json_object_get(k8s, "port");
            char portbuf[32];
            const char *p = json_string_value(port);
            if (!p && json_is_integer(port)) {
                snprintf(portbuf, sizeof portbuf, "%lld", (long long)json_integer_value(port));
                p = portbuf;
            }
            json_t *found = (b->k8s && ns && name && p) ? b->k8s(b->k8s_arg, ns, name, p) : NULL;
            size_t k;
            json_t *a;
            json_array_foreach(found, k, a) {
                if (json_is_string(a)) json_array_append_new(eps, endpoint(json_string_value(a), true));
            }
            json_decref(found);
        } else {
            size_t k;
            json_t *e;
            json_array_foreach(json_object_get(svc, "endpoints"), k, e) {
                const char *addr = json_is_string(e) ? json_string_value(e)
                                                     : json_string_value(json_object_get(e, "address"));
                bool healthy = json_is_string(e) || !json_is_false(json_object_get(e, "healthy"));
                if (addr) json_array_append_new(eps, endpoint(addr, healthy));
            }
        }
        if (json_object_set_new(svc, "endpoints", eps) < 0) goto oom;
    }

    if (merge_jwks(b, out) < 0) goto oom;

    pthread_mutex_lock(&b->lock);
    json_array_foreach(services, i, svc) {
        const char *name = json_string_value(json_object_get(svc, "name"));
        size_t k;
        json_t *e;
        json_array_foreach(json_object_get(svc, "endpoints"), k, e) {
            if (name && reported_down(b, name, json_string_value(json_object_get(e, "address"))))
                json_object_set_new(e, "healthy", json_false());
        }
    }
    pthread_mutex_unlock(&b->lock);
    return out;
oom:
    json_decref(out);
    return NULL;
}

/* Rebuild from the current document and publish when the result differs. from_store: a new stored
 * document (always published, generation reset). Call with rebuild_lock held. */
static void rebuild(struct bgw_builder *b, bool from_store)
{
    pthread_mutex_lock(&b->lock);
    json_t *doc = json_incref(b->doc);
    json_t *prev = json_incref(b->resolved);
    pthread_mutex_unlock(&b->lock);
    if (!doc) {
        json_decref(prev);
        return;
    }

    json_t *resolved = resolve(b, doc);
    json_decref(doc);
    if (!resolved || (!from_store && prev && json_equal(resolved, prev))) {
        json_decref(resolved);
        json_decref(prev);
        return;
    }
    json_decref(prev);

    pthread_mutex_lock(&b->lock);
    if (from_store) b->gen = 0;
    else b->gen++;
    if (b->gen == 0) snprintf(b->version, sizeof b->version, "%s", b->store_version);
    else snprintf(b->version, sizeof b->version, "%s.%llu", b->store_version, b->gen);
    json_decref(b->resolved);
    b->resolved = json_incref(resolved);
    char version[64];
    memcpy(version, b->version, sizeof version);
    pthread_mutex_unlock(&b->lock);

    if (b->publish) b->publish(b->publish_arg, version, resolved);
    for (int i = 0; i < b->n_watchers; i++) b->watchers[i].fn(b->watchers[i].arg, resolved);
    json_decref(resolved);
}

/* The coalescing thread: a source change is rebuilt BGW_BUILDER_WINDOW_MS after the first call of a burst. */
static void *run(void *arg)
{
    struct bgw_builder *b = arg;
    pthread_mutex_lock(&b->wake_lock);
    for (;;) {
        while (!b->dirty && !b->stop) pthread_cond_wait(&b->wake, &b->wake_lock);
        if (b->stop) break;
        int64_t until = mono_ms() + b->window_ms;
        for (int64_t left; !b->stop && (left = until - mono_ms()) > 0;) {
            struct timespec ts = bgw_clock_deadline((uint64_t)left);
            pthread_cond_timedwait(&b->wake, &b->wake_lock, &ts);
        }
        if (b->stop) break;
        b->dirty = false;
        pthread_mutex_unlock(&b->wake_lock);
        int64_t t0 = mono_ms();
        pthread_mutex_lock(&b->rebuild_lock);
        rebuild(b, false);
        pthread_mutex_unlock(&b->rebuild_lock);
        /* The next window is at least as long as this rebuild took (and half again): under a steady stream
         * of source changes a large config is rebuilt and published at most 40% of the time, while a small
         * one keeps the short window. */
        int64_t took = mono_ms() - t0;
        b->window_ms = took * 3 / 2 > BGW_BUILDER_WINDOW_MS ? took * 3 / 2 : BGW_BUILDER_WINDOW_MS;
        if (b->window_ms > BGW_BUILDER_WINDOW_MAX_MS) b->window_ms = BGW_BUILDER_WINDOW_MAX_MS;
        pthread_mutex_lock(&b->wake_lock);
    }
    pthread_mutex_unlock(&b->wake_lock);
    return NULL;
}

struct bgw_builder *bgw_builder_new(bgw_builder_publish_fn fn, void *arg)
{
    struct bgw_builder *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->publish = fn;
    b->publish_arg = arg;
    b->health = json_object();
    b->window_ms = BGW_BUILDER_WINDOW_MS;
    pthread_mutex_init(&b->rebuild_lock, NULL);
    pthread_mutex_init(&b->lock, NULL);
    pthread_mutex_init(&b->wake_lock, NULL);
    pthread_cond_init(&b->wake, NULL);
    if (!b->health || pthread_create(&b->thread, NULL, run, b) != 0) {
        json_decref(b->health);
        free(b);
        return NULL;
    }
    return b;
}

void bgw_builder_free(struct bgw_builder *b)
{
    if (!b) return;
    pthread_mutex_lock(&b->wake_lock);
    b->stop = true;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->wake_lock);
    pthread_join(b->thread, NULL);
    json_decref(b->doc);
    json_decref(b->resolved);
    json_decref(b->health);
    pthread_cond_destroy(&b->wake);
    pthread_mutex_destroy(&b->wake_lock);
    pthread_mutex_destroy(&b->lock);
    pthread_mutex_destroy(&b->rebuild_lock);
    free(b);
}

void bgw_builder_set_k8s(struct bgw_builder *b, bgw_builder_k8s_lookup_fn fn, void *arg)
{
    b->k8s = fn;
    b->k8s_arg = arg;
}

void bgw_builder_set_jwks(struct bgw_builder *b, bgw_builder_jwks_lookup_fn fn, void *arg)
{
    b->jwks = fn;
    b->jwks_arg = arg;
}

void bgw_builder_add_watcher(struct bgw_builder *b, bgw_builder_watch_fn fn, void *arg)
{
    if (b->n_watchers < MAX_WATCHERS) b->watchers[b->n_watchers++] = (struct watcher){fn, arg};
}

void bgw_builder_set_document(struct bgw_builder *b, const char *version, json_t *doc)
{
    json_t *copy = json_incref(doc);
    pthread_mutex_lock(&b->rebuild_lock);
    pthread_mutex_lock(&b->lock);
    json_decref(b->doc);
    b->doc = copy;
    snprintf(b->store_version, sizeof b->store_version, "%s", version);
    pthread_mutex_unlock(&b->lock);
    rebuild(b, true);
    pthread_mutex_unlock(&b->rebuild_lock);
}

void bgw_builder_sources_changed(struct bgw_builder *b)
{
    pthread_mutex_lock(&b->wake_lock);
    if (!b->dirty) {
        b->dirty = true;
        pthread_cond_signal(&b->wake);
    }
    pthread_mutex_unlock(&b->wake_lock);
}

void bgw_builder_set_health(struct bgw_builder *b, const char *service, const char *address, bool healthy,
                            int64_t last_check_ms, const char *last_error)
{
    char key[512];
    health_key(key, sizeof key, service, address);
    pthread_mutex_lock(&b->lock);
    json_t *h = json_object_get(b->health, key);
    bool was_healthy = !h || !json_is_false(json_object_get(h, "healthy"));
    json_object_set_new(b->health, key,
                        json_pack("{s:b,s:I,s:s}", "healthy", healthy, "last_check", (json_int_t)last_check_ms,
                                  "last_error", last_error ? last_error : ""));
    pthread_mutex_unlock(&b->lock);
    if (was_healthy != healthy) bgw_builder_sources_changed(b);
}

static json_t *rfc3339_ms(int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[40];
    if (!gmtime_r(&t, &tm)) return json_null();
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%03dZ", (int)(ms % 1000));
    return json_string(buf);
}

json_t *bgw_builder_endpoints(struct bgw_builder *b, const char *service)
{
    json_t *out = NULL;
    pthread_mutex_lock(&b->lock);
    size_t i;
    json_t *svc;
    json_array_foreach(json_object_get(b->resolved, "services"), i, svc) {
        if (strcmp(json_string_value(json_object_get(svc, "name")) ?: "", service) != 0) continue;
        const char *source = json_object_get(svc, "kubernetes") ? "kubernetes" : "static";
        json_t *items = json_array();
        size_t k;
        json_t *e;
        json_array_foreach(json_object_get(svc, "endpoints"), k, e) {
            const char *addr = json_string_value(json_object_get(e, "address"));
            char key[512];
            health_key(key, sizeof key, service, addr ? addr : "");
            json_t *h = json_object_get(b->health, key);
            const char *err = h ? json_string_value(json_object_get(h, "last_error")) : NULL;
            json_t *item = json_deep_copy(e);
            json_object_set_new(item, "source", json_string(source));
            json_object_set_new(item, "last_check",
                                h ? rfc3339_ms(json_integer_value(json_object_get(h, "last_check"))) : json_null());
            json_object_set_new(item, "last_error", err && *err ? json_string(err) : json_null());
            json_array_append_new(items, item);
        }
        out = json_pack("{s:s,s:o}", "service", service, "items", items);
        break;
    }
    pthread_mutex_unlock(&b->lock);
    return out;
}

json_t *bgw_builder_snapshot(struct bgw_builder *b)
{
    json_t *out = NULL;
    pthread_mutex_lock(&b->lock);
    if (b->resolved) {
        out = json_deep_copy(b->resolved);
        if (out) json_object_set_new(out, "version", json_string(b->version));
    }
    pthread_mutex_unlock(&b->lock);
    return out;
}
