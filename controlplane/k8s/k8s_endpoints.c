/*
 * k8s_endpoints.c - the index of Services and EndpointSlices behind service discovery (see
 * k8s_endpoints.h). Objects are reduced on arrival to what lookups need and kept in jansson objects used as
 * hash tables keyed "namespace/name", so a lookup costs the slices of one Service, not the cluster.
 *
 *   services   "ns/name"      → [[port name, port number]...]
 *   slices     "ns/slice"     → {"svc": "ns/service", "ports": [[name, number]...], "addrs": [ip...], "v6": bool}
 *   by_service "ns/service"   → {"ns/slice": true...}
 *   cache      "ns/service"   → {port: the last lookup's result}: a rebuild looks up every service while an
 *                               event changes one, so results are kept until the Service or one of its
 *                               slices changes
 */
#include "k8s_endpoints.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERVICE_NAME_LABEL "kubernetes.io/service-name"

struct bgw_k8s_index {
    pthread_mutex_t lock;
    json_t *services, *slices, *by_service, *cache;
};

struct bgw_k8s_index *bgw_k8s_index_new(void)
{
    struct bgw_k8s_index *x = calloc(1, sizeof *x);

    if (!x)
        return NULL;
    pthread_mutex_init(&x->lock, NULL);
    x->services = json_object();
    x->slices = json_object();
    x->by_service = json_object();
    x->cache = json_object();
    if (!x->services || !x->slices || !x->by_service || !x->cache) {
        bgw_k8s_index_free(x);
        return NULL;
    }
    return x;
}

void bgw_k8s_index_free(struct bgw_k8s_index *x)
{
    if (!x)
        return;
    json_decref(x->services);
    json_decref(x->slices);
    json_decref(x->by_service);
    json_decref(x->cache);
    pthread_mutex_destroy(&x->lock);
    free(x);
}

/* "ns/name" of an object into key; false when the metadata lacks either. */
static bool object_key(const json_t *obj, char *key, size_t keylen, const char **ns_out)
{
    const json_t *md = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const char *name = json_string_value(json_object_get(md, "name"));

    if (!ns || !name || !*name)
        return false;
    if ((size_t)snprintf(key, keylen, "%s/%s", ns, name) >= keylen)
        return false;
    if (ns_out)
        *ns_out = ns;
    return true;
}

/* [[name, number]...] from a ports array ("port" for slices, "port" for Service ports too). */
static json_t *reduce_ports(const json_t *ports)
{
    json_t *out = json_array();
    size_t i;
    const json_t *p;

    if (!out)
        return NULL;
    json_array_foreach(ports, i, p) {
        const json_t *num = json_object_get(p, "port");
        const char *name = json_string_value(json_object_get(p, "name"));

        if (!json_is_integer(num))
            continue;
        json_array_append_new(out, json_pack("[sI]", name ? name : "", json_integer_value(num)));
    }
    return out;
}

static json_t *reduce_service(const json_t *obj)
{
    return reduce_ports(json_object_get(json_object_get(obj, "spec"), "ports"));
}

/* The reduced slice, or NULL (not ours: no service label, FQDN addresses; or out of memory). */
static json_t *reduce_slice(const json_t *obj, const char *ns)
{
    const json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    const char *svc = json_string_value(json_object_get(labels, SERVICE_NAME_LABEL));
    const char *type = json_string_value(json_object_get(obj, "addressType"));
    const json_t *eps = json_object_get(obj, "endpoints");  /* may be null or absent: no endpoints */
    char key[512];
    size_t i;
    const json_t *e;

    if (!svc || !*svc || (type && strcmp(type, "IPv4") != 0 && strcmp(type, "IPv6") != 0))
        return NULL;
    if ((size_t)snprintf(key, sizeof key, "%s/%s", ns, svc) >= sizeof key)
        return NULL;
    json_t *addrs = json_array();
    json_array_foreach(eps, i, e) {
        const json_t *cond = json_object_get(e, "conditions");
        const char *ip = json_string_value(json_array_get(json_object_get(e, "addresses"), 0));

        if (!ip || json_is_false(json_object_get(cond, "ready")) ||
            json_is_true(json_object_get(cond, "terminating")))
            continue;
        json_array_append_new(addrs, json_string(ip));
    }
    return json_pack("{s:s, s:o, s:o, s:b}", "svc", key,
                     "ports", reduce_ports(json_object_get(obj, "ports")), "addrs", addrs,
                     "v6", type && strcmp(type, "IPv6") == 0);
}

static void unlink_slice(struct bgw_k8s_index *x, const char *slice_key)
{
    json_t *old = json_object_get(x->slices, slice_key);
    const char *svc = json_string_value(json_object_get(old, "svc"));

    if (!old)
        return;
    if (svc) {
        json_object_del(x->cache, svc);
        json_t *set = json_object_get(x->by_service, svc);
        json_object_del(set, slice_key);
        if (set && json_object_size(set) == 0)
            json_object_del(x->by_service, svc);
    }
    json_object_del(x->slices, slice_key);
}

/* Hold the reduced slice r (reference stolen) under slice_key. */
static int link_slice(struct bgw_k8s_index *x, const char *slice_key, json_t *r)
{
    const char *svc = json_string_value(json_object_get(r, "svc"));
    json_t *set;

    unlink_slice(x, slice_key);                 /* may drop the service's set: look it up after */
    json_object_del(x->cache, svc);
    set = json_object_get(x->by_service, svc);
    if (!set) {
        set = json_object();
        if (!set || json_object_set_new(x->by_service, svc, set) < 0) {
            json_decref(r);
            return -1;
        }
    }
    if (json_object_set_new(set, slice_key, json_true()) < 0 || json_object_set_new(x->slices, slice_key, r) < 0)
        return -1;
    return 0;
}

/* Apply under the lock. */
static int apply_locked(struct bgw_k8s_index *x, enum bgw_k8s_kind kind, const char *type, const json_t *obj)
{
    char key[512];
    const char *ns;
    bool del = strcmp(type, "DELETED") == 0;

    if (!del && strcmp(type, "ADDED") != 0 && strcmp(type, "MODIFIED") != 0)
        return 0;
    if (!object_key(obj, key, sizeof key, &ns))
        return 0;
    if (kind == BGW_K8S_SERVICES) {
        if (del) {
            if (!json_object_get(x->services, key))
                return 0;
            json_object_del(x->services, key);
            json_object_del(x->cache, key);
            return 1;
        }
        json_t *r = reduce_service(obj);
        if (!r)
            return -1;
        if (json_equal(r, json_object_get(x->services, key))) {
            json_decref(r);
            return 0;
        }
        json_object_del(x->cache, key);
        return json_object_set_new(x->services, key, r) < 0 ? -1 : 1;
    }
    if (del) {
        if (!json_object_get(x->slices, key))
            return 0;
        unlink_slice(x, key);
        return 1;
    }
    json_t *r = reduce_slice(obj, ns);
    if (!r) {
        bool had = json_object_get(x->slices, key) != NULL;
        unlink_slice(x, key);   /* e.g. the label was removed: no longer a slice of a Service */
        return had ? 1 : 0;
    }
    if (json_equal(r, json_object_get(x->slices, key))) {
        json_decref(r);
        return 0;
    }
    return link_slice(x, key, r) < 0 ? -1 : 1;
}

int bgw_k8s_index_apply(struct bgw_k8s_index *x, enum bgw_k8s_kind kind, const char *type, const json_t *obj)
{
    pthread_mutex_lock(&x->lock);
    int rc = apply_locked(x, kind, type, obj);
    pthread_mutex_unlock(&x->lock);
    return rc;
}

static bool in_namespace(const char *key, const char *ns)
{
    size_t n = strlen(ns);
    return !*ns || (strncmp(key, ns, n) == 0 && key[n] == '/');
}

int bgw_k8s_index_replace(struct bgw_k8s_index *x, enum bgw_k8s_kind kind, const char *ns, const json_t *items)
{
    const char *key;
    json_t *v;
    void *tmp;
    size_t i;
    const json_t *obj;
    int rc = 0;

    pthread_mutex_lock(&x->lock);
    json_object_clear(x->cache);
    json_t *table = kind == BGW_K8S_SERVICES ? x->services : x->slices;
    json_object_foreach_safe(table, tmp, key, v) {
        (void)v;
        if (!in_namespace(key, ns))
            continue;
        if (kind == BGW_K8S_SERVICES)
            json_object_del(table, key);
        else
            unlink_slice(x, key);
    }
    json_array_foreach(items, i, obj) {
        if (apply_locked(x, kind, "ADDED", obj) < 0)
            rc = -1;
    }
    pthread_mutex_unlock(&x->lock);
    return rc;
}

size_t bgw_k8s_index_count(struct bgw_k8s_index *x, enum bgw_k8s_kind kind)
{
    pthread_mutex_lock(&x->lock);
    size_t n = json_object_size(kind == BGW_K8S_SERVICES ? x->services : x->slices);
    pthread_mutex_unlock(&x->lock);
    return n;
}

/* The slice port (name, number) the reference's port selects in one slice; -1 when none. */
static long slice_port(const json_t *ports, const char *want_name, long want_number)
{
    size_t i;
    const json_t *p;

    json_array_foreach(ports, i, p) {
        const char *name = json_string_value(json_array_get(p, 0));
        long num = (long)json_integer_value(json_array_get(p, 1));

        if (want_name ? strcmp(name, want_name) == 0 : num == want_number)
            return num;
    }
    return -1;
}

static int cmp_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *bgw_k8s_index_lookup(struct bgw_k8s_index *x, const char *ns, const char *service, const char *port)
{
    char key[512];
    const char *want_name = port;
    long want_number = -1;
    json_t *seen = NULL, *out = NULL;

    if ((size_t)snprintf(key, sizeof key, "%s/%s", ns, service) >= sizeof key || !port || !*port)
        return NULL;
    pthread_mutex_lock(&x->lock);
    const json_t *svc = json_object_get(x->services, key);
    if (!svc)
        goto done;
    json_t *cached = json_object_get(json_object_get(x->cache, key), port);
    if (cached) {
        out = json_copy(cached);            /* a new array sharing the (immutable) strings */
        pthread_mutex_unlock(&x->lock);
        return out;
    }
    if (strspn(port, "0123456789") == strlen(port)) {
        /* a number: the Service port of that number names the slice port; else the number itself */
        size_t i;
        const json_t *p;
        want_name = NULL;
        want_number = strtol(port, NULL, 10);
        json_array_foreach(svc, i, p) {
            if (json_integer_value(json_array_get(p, 1)) == want_number) {
                want_name = json_string_value(json_array_get(p, 0));
                break;
            }
        }
    }
    seen = json_object();
    const json_t *set = json_object_get(x->by_service, key);
    const char *slice_key;
    json_t *unused;
    json_object_foreach((json_t *)set, slice_key, unused) {
        const json_t *s = json_object_get(x->slices, slice_key);
        long num = slice_port(json_object_get(s, "ports"), want_name, want_number);
        bool v6 = json_is_true(json_object_get(s, "v6"));
        size_t i;
        const json_t *a;

        if (num < 0)
            continue;
        json_array_foreach(json_object_get(s, "addrs"), i, a) {
            char addr[128];
            snprintf(addr, sizeof addr, v6 ? "[%s]:%ld" : "%s:%ld", json_string_value(a), num);
            json_object_set_new(seen, addr, json_true());
        }
    }
done:
    if (!seen) {
        pthread_mutex_unlock(&x->lock);
        return NULL;
    }
    size_t n = json_object_size(seen), k = 0;
    const char **names = malloc((n ? n : 1) * sizeof *names);
    out = json_array();
    if (names && out) {
        const char *a;
        json_t *unused2;
        json_object_foreach(seen, a, unused2)
            names[k++] = a;
        qsort(names, k, sizeof *names, cmp_strings);
        for (size_t i = 0; i < k; i++)
            json_array_append_new(out, json_string(names[i]));
    } else {
        json_decref(out);
        out = NULL;
    }
    free(names);
    json_decref(seen);
    if (out) {
        json_t *per = json_object_get(x->cache, key);
        if (!per && (per = json_object()) && json_object_set_new(x->cache, key, per) < 0)
            per = NULL;
        if (per)
            json_object_set_new(per, port, json_copy(out));
    }
    pthread_mutex_unlock(&x->lock);
    return out;
}
