/* snapshot.c - compile, reference-count and publish config snapshots (see snapshot.h). */
#include "snapshot.h"

#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cors.h"
#include "jwt_auth.h"
#include "log.h"
#include "rate_limit.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bgw_snapshot *g_current;
static atomic_uint_fast64_t g_generation;
static atomic_uint_fast64_t g_accepted, g_rejected;

void bgw_snapshot_count_update(bool accepted)
{
    atomic_fetch_add(accepted ? &g_accepted : &g_rejected, 1);
}

void bgw_snapshot_update_counts(uint64_t *accepted, uint64_t *rejected)
{
    *accepted = atomic_load(&g_accepted);
    *rejected = atomic_load(&g_rejected);
}

static void snapshot_free(struct bgw_snapshot *s)
{
    if (!s) return;
    if (s->services) {
        for (size_t i = 0; i < s->cfg->n_services; i++) {
            free(s->services[i].eps);
            free(s->services[i].healthy);
        }
        free(s->services);
    }
    if (s->auth)
        for (size_t i = 0; i < s->cfg->n_auth_policies; i++) bgw_jwt_policy_free(s->auth[i]);
    if (s->route_cors)
        for (size_t i = 0; i < s->cfg->n_routes; i++) bgw_cors_free(s->route_cors[i]);
    free(s->auth);
    free(s->route_auth);
    free(s->route_cors);
    if (s->router) bgw_router_free(s->router);
    bgw_rl_set_free(s->ratelimits);
    bgw_config_free(s->cfg);
    free(s);
}

static int resolve(const struct bgw_endpoint *ep, struct bgw_snap_endpoint *out, char *err, size_t errlen,
                   const char *svc, size_t idx)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", ep->port);
    int rc = getaddrinfo(ep->host, port, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "services[%s].endpoints[%zu]: cannot resolve \"%s\": %s", svc, idx, ep->host,
                 gai_strerror(rc));
        return -1;
    }
    memcpy(&out->addr, res->ai_addr, res->ai_addrlen);
    out->addrlen = res->ai_addrlen;
    out->address = ep->address;
    out->healthy = ep->healthy;
    freeaddrinfo(res);
    return 0;
}

/* Auth and CORS policies compiled once per snapshot; routes point at theirs. */
static int compile_policies(struct bgw_snapshot *s, char *err, size_t errlen)
{
    const struct bgw_config *cfg = s->cfg;
    s->auth = calloc(cfg->n_auth_policies ? cfg->n_auth_policies : 1, sizeof *s->auth);
    s->route_auth = calloc(cfg->n_routes ? cfg->n_routes : 1, sizeof *s->route_auth);
    s->route_cors = calloc(cfg->n_routes ? cfg->n_routes : 1, sizeof *s->route_cors);
    if (!s->auth || !s->route_auth || !s->route_cors) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cfg->n_auth_policies; i++) {
        size_t skipped = 0;
        s->auth[i] = bgw_jwt_policy_compile(&cfg->auth_policies[i], &skipped, err, errlen);
        if (!s->auth[i]) return -1;
        if (skipped)
            bgw_log_warn("auth_policies[%s]: %zu key(s) of the JWK Set cannot be used and are ignored",
                         cfg->auth_policies[i].name, skipped);
    }
    for (size_t r = 0; r < cfg->n_routes; r++) {
        const struct bgw_route *rt = &cfg->routes[r];
        if (rt->auth)
            for (size_t i = 0; i < cfg->n_auth_policies; i++)
                if (strcmp(cfg->auth_policies[i].name, rt->auth) == 0) s->route_auth[r] = s->auth[i];
        /* a rate limit keyed by a claim reads it from the route's verified token */
        for (size_t i = 0; rt->rate_limit && s->route_auth[r] && i < cfg->n_rate_limits; i++) {
            const struct bgw_rate_limit *rl = &cfg->rate_limits[i];
            if (strcmp(rl->name, rt->rate_limit) == 0 && rl->key_kind == BGW_RL_KEY_CLAIM && rl->key_name &&
                bgw_jwt_policy_keep_claim(s->route_auth[r], rl->key_name) < 0)
                bgw_log_warn("routes[%s]: rate limit %s: claim %s not kept (over %d claims per auth policy)",
                             rt->name, rl->name, rl->key_name, BGW_JWT_MAX_KEPT_CLAIMS);
        }
        if (rt->has_cors && !(s->route_cors[r] = bgw_cors_compile(&rt->cors, err, errlen))) return -1;
    }
    return 0;
}

struct bgw_snapshot *bgw_snapshot_build(struct bgw_config *cfg, const char *version, char *err, size_t errlen)
{
    struct bgw_snapshot *s = calloc(1, sizeof *s);
    if (!s) {
        bgw_config_free(cfg);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->cfg = cfg;
    snprintf(s->version, sizeof s->version, "%s", version);
    s->services = calloc(cfg->n_services ? cfg->n_services : 1, sizeof *s->services);
    if (!s->services) goto oom;
    for (size_t i = 0; i < cfg->n_services; i++) {
        const struct bgw_service *svc = &cfg->services[i];
        struct bgw_snap_service *ss = &s->services[i];
        ss->cfg = svc;
        ss->eps = calloc(svc->n_endpoints ? svc->n_endpoints : 1, sizeof *ss->eps);
        ss->healthy = calloc(svc->n_endpoints ? svc->n_endpoints : 1, sizeof *ss->healthy);
        if (!ss->eps || !ss->healthy) goto oom;
        for (size_t k = 0; k < svc->n_endpoints; k++) {
            if (resolve(&svc->endpoints[k], &ss->eps[k], err, errlen, svc->name, k) < 0) goto fail;
            if (ss->eps[k].healthy) ss->healthy[ss->n_healthy++] = (uint32_t)k;
        }
        ss->n_eps = (uint32_t)svc->n_endpoints;
    }
    if (compile_policies(s, err, errlen) < 0) goto fail;
    s->router = bgw_router_build(cfg, err, errlen);
    if (!s->router) goto fail;
    s->ratelimits = bgw_rl_set_build(cfg, err, errlen);
    if (!s->ratelimits) goto fail;
    return s;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    snapshot_free(s);
    return NULL;
}

char *bgw_snapshot_render(const struct bgw_snapshot *s)
{
    json_t *doc = bgw_config_to_json(s->cfg);
    if (!doc) return NULL;
    json_object_set_new(doc, "version", json_string(s->version));
    char *out = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    return out;
}

void bgw_snapshot_ref(struct bgw_snapshot *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void bgw_snapshot_unref(struct bgw_snapshot *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) snapshot_free(s);
}

void bgw_snapshot_publish(struct bgw_snapshot *s)
{
    pthread_mutex_lock(&g_lock);
    struct bgw_snapshot *old = g_current;
    s->generation = atomic_load(&g_generation) + 1;
    g_current = s;
    atomic_store_explicit(&g_generation, s->generation, memory_order_release);
    pthread_mutex_unlock(&g_lock);
    bgw_snapshot_unref(old);
}

struct bgw_snapshot *bgw_snapshot_current(void)
{
    pthread_mutex_lock(&g_lock);
    struct bgw_snapshot *s = g_current;
    if (s) bgw_snapshot_ref(s);
    pthread_mutex_unlock(&g_lock);
    return s;
}

uint64_t bgw_snapshot_generation(void)
{
    return atomic_load_explicit(&g_generation, memory_order_acquire);
}

void bgw_snapshot_hash_version(const char *text, size_t len, char out[17])
{
    uint64_t h = 0xcbf29ce484222325ull;          /* FNV-1a 64 */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)text[i];
        h *= 0x100000001b3ull;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}
