/*
 * router.c - the compiled route table (see router.h and docs/internals/routing.md).
 *
 * Building: every route gets a key, its path_exact or path_prefix normalised with bgw_pathnorm() (so a
 * route written "/a/%7Eb" is keyed like the requests "/a/~b" that reach it). Routes with the same kind
 * and key form one entry of an open-addressing hash table (one table for exact keys, one for prefixes);
 * an entry's candidates are a contiguous run of compiled rules sorted by (number of non-empty condition
 * lists desc, document order asc). Condition strings are measured once and host patterns and header
 * names lower-cased once, so matching never calls strlen() or allocates.
 *
 * Matching: one forward pass over the request path computes the FNV-1a hash of every segment-boundary
 * prefix at once (FNV-1a is a running state, so the hash of path[0..i) is the state after i bytes). Then
 * the exact table is probed with the whole path, and the prefix table with each boundary prefix, longest
 * first; in each entry the first candidate whose methods, hosts and headers all match wins. The cost is
 * O(path length + candidates sharing a key), independent of the number of routes.
 */
#include "router.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pathnorm.h"

#define FNV_BASIS 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull
#define PROBE_RING 64           /* boundary prefixes hashed in the forward pass; deeper ones are rehashed */

/* A measured string. */
struct bgw__str {
    const char *p;
    size_t n;
    bool wildcard;              /* a host pattern "*.example.com", stored as its suffix ".example.com" */
};

/* One route's conditions, compiled. The ranges index bgw_router.strs. */
struct bgw__rule {
    uint32_t route;             /* index in cfg->routes */
    uint32_t n_conds;           /* non-empty lists among methods, hosts, headers */
    uint32_t methods, n_methods;
    uint32_t hosts, n_hosts;    /* lower-cased, without brackets */
    uint32_t headers, n_headers;/* pairs: lower-cased name at headers + 2k, value at headers + 2k + 1 */
};

/* A hash table entry: every route sharing one key. key == NULL marks an empty slot. */
struct bgw__entry {
    const char *key;
    size_t len;
    uint64_t hash;
    uint32_t first, count;      /* rules[first .. first + count) */
};

struct bgw__table {
    struct bgw__entry *slots;
    size_t mask;                /* capacity - 1; capacity is a power of two, at least twice the entries */
    size_t n;
    size_t max_len;             /* longest key */
};

struct bgw_router {
    struct bgw__table exact, prefix;
    struct bgw__rule *rules;    /* grouped by entry, each group in candidate order */
    struct bgw__str *strs;      /* condition strings */
    char *text;                 /* normalised keys and lower-cased copies, NUL-terminated */
};

/* A segment-boundary prefix of the request path, hashed. */
struct bgw__probe {
    size_t len;
    uint64_t hash;
};

/* A route being compiled: sorted into entry order. */
struct bgw__pending {
    const char *key;
    size_t len;
    uint64_t hash;
    bool exact;
    struct bgw__rule rule;
};

static inline uint64_t fnv_step(uint64_t h, unsigned char c)
{
    return (h ^ c) * FNV_PRIME;
}

static uint64_t fnv_hash(const char *s, size_t n)
{
    uint64_t h = FNV_BASIS;
    for (size_t i = 0; i < n; i++)
        h = fnv_step(h, (unsigned char)s[i]);
    return h;
}

/* Spread FNV's state over the low bits used as a table index (a murmur3-style finaliser). */
static inline size_t slot_of(uint64_t h, size_t mask)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (size_t)h & mask;
}

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* a (any case) equals b (already lower-case), both n bytes. */
static bool eq_lower(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != (unsigned char)b[i])
            return false;
    return true;
}

static const struct bgw__entry *table_find(const struct bgw__table *t, const char *key, size_t len,
                                           uint64_t hash)
{
    if (t->n == 0 || len > t->max_len)
        return NULL;
    for (size_t s = slot_of(hash, t->mask);; s = (s + 1) & t->mask) {
        const struct bgw__entry *e = &t->slots[s];
        if (!e->key)
            return NULL;
        if (e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0)
            return e;
    }
}

static void table_insert(struct bgw__table *t, const struct bgw__entry *in)
{
    size_t s = slot_of(in->hash, t->mask);
    while (t->slots[s].key)
        s = (s + 1) & t->mask;
    t->slots[s] = *in;
    t->n++;
    if (in->len > t->max_len)
        t->max_len = in->len;
}

static int table_init(struct bgw__table *t, size_t entries)
{
    size_t cap = 8;
    while (cap < entries * 2)
        cap *= 2;
    t->slots = calloc(cap, sizeof *t->slots);
    t->mask = cap - 1;
    t->n = 0;
    t->max_len = 0;
    return t->slots ? 0 : -1;
}

/* The request's host, reduced for comparison: ":port" removed, "[v6]" unbracketed, one trailing dot
 * dropped. Case is left as received. */
static struct bgw__str host_of(const char *h, size_t n)
{
    struct bgw__str r = { .p = h, .n = 0 };
    if (!h || n == 0)
        return r;
    if (h[0] == '[') {
        const char *end = memchr(h, ']', n);
        if (end) {
            r.p = h + 1;
            r.n = (size_t)(end - h) - 1;
            return r;
        }
        r.n = n;                        /* malformed: compare as received */
        return r;
    }
    const char *colon = memchr(h, ':', n);
    r.n = colon ? (size_t)(colon - h) : n;
    if (r.n > 1 && h[r.n - 1] == '.')
        r.n--;
    return r;
}

static bool host_matches(const struct bgw_router *r, const struct bgw__rule *rule, struct bgw__str host)
{
    if (!host.p)
        return false;
    for (uint32_t k = 0; k < rule->n_hosts; k++) {
        const struct bgw__str *pat = &r->strs[rule->hosts + k];
        if (pat->wildcard) {
            /* pat is ".example.com"; the host needs at least one more byte before it */
            if (host.n > pat->n && eq_lower(host.p + host.n - pat->n, pat->p, pat->n))
                return true;
        } else if (host.n == pat->n && eq_lower(host.p, pat->p, pat->n)) {
            return true;
        }
    }
    return false;
}

static bool rule_matches(const struct bgw_router *r, const struct bgw__rule *rule,
                         const struct bgw_route_input *in, struct bgw__str host)
{
    if (rule->n_methods) {
        uint32_t k;
        for (k = 0; k < rule->n_methods; k++) {
            const struct bgw__str *m = &r->strs[rule->methods + k];
            if (m->n == in->method_len && in->method && memcmp(m->p, in->method, m->n) == 0)
                break;
        }
        if (k == rule->n_methods)
            return false;
    }
    if (rule->n_hosts && !host_matches(r, rule, host))
        return false;
    for (uint32_t k = 0; k < rule->n_headers; k++) {
        const struct bgw__str *name = &r->strs[rule->headers + 2 * k];
        const struct bgw__str *want = &r->strs[rule->headers + 2 * k + 1];
        size_t vlen = 0;
        const char *v = in->header ? in->header(in->ctx, name->p, name->n, &vlen) : NULL;
        if (!v || vlen != want->n || memcmp(v, want->p, vlen) != 0)
            return false;
    }
    return true;
}

/* First matching candidate of e, or -1. */
static long entry_match(const struct bgw_router *r, const struct bgw__entry *e,
                        const struct bgw_route_input *in, struct bgw__str host)
{
    for (uint32_t k = 0; k < e->count; k++) {
        const struct bgw__rule *rule = &r->rules[e->first + k];
        if (rule_matches(r, rule, in, host))
            return (long)rule->route;
    }
    return -1;
}

static long prefix_probe(const struct bgw_router *r, const struct bgw_route_input *in, size_t len,
                         uint64_t hash, struct bgw__str host)
{
    const struct bgw__entry *e = table_find(&r->prefix, in->path, len, hash);
    return e ? entry_match(r, e, in, host) : -1;
}

long bgw_router_match(const struct bgw_router *r, const struct bgw_route_input *in)
{
    struct bgw__probe ring[PROBE_RING];
    const char *p = in->path;
    size_t plen = in->path_len;
    struct bgw__str host = host_of(in->host, in->host_len);
    long found;

    if (!r || !p || plen == 0)
        return -1;

    bool want_exact = r->exact.n && plen <= r->exact.max_len;
    size_t pmax = r->prefix.n ? r->prefix.max_len : 0;
    size_t limit = want_exact ? plen : (plen < pmax ? plen : pmax);

    /* Forward pass: h is the hash of p[0..i). p[0..i) is a segment-boundary prefix when it is the whole
     * path, or it is followed by '/', or it ends with '/'. */
    uint64_t h = FNV_BASIS;
    size_t nb = 0;
    for (size_t i = 0;; i++) {
        if (i >= 1 && i <= pmax && (i == plen || p[i] == '/' || p[i - 1] == '/')) {
            ring[nb % PROBE_RING].len = i;
            ring[nb % PROBE_RING].hash = h;
            nb++;
        }
        if (i == limit)
            break;
        h = fnv_step(h, (unsigned char)p[i]);
    }

    if (want_exact) {
        const struct bgw__entry *e = table_find(&r->exact, p, plen, h);
        if (e && (found = entry_match(r, e, in, host)) >= 0)
            return found;
    }

    /* Prefixes, longest first: those recorded in the ring ... */
    size_t lowest = nb > PROBE_RING ? nb - PROBE_RING : 0;
    for (size_t k = nb; k-- > lowest;) {
        if ((found = prefix_probe(r, in, ring[k % PROBE_RING].len, ring[k % PROBE_RING].hash, host)) >= 0)
            return found;
    }
    /* ... then, for a path deeper than the ring, the shorter ones, hashed one by one. */
    if (nb > PROBE_RING) {
        size_t i = ring[lowest % PROBE_RING].len;
        while (--i >= 1) {
            if (p[i] == '/' || p[i - 1] == '/') {
                if ((found = prefix_probe(r, in, i, fnv_hash(p, i), host)) >= 0)
                    return found;
            }
        }
    }
    return -1;
}

/* Entry order: kind, key, then candidate order (more conditions first, then document order). */
static int pending_cmp(const void *a, const void *b)
{
    const struct bgw__pending *x = a, *y = b;
    if (x->exact != y->exact)
        return x->exact ? -1 : 1;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    int c = memcmp(x->key, y->key, x->len);
    if (c)
        return c;
    if (x->rule.n_conds != y->rule.n_conds)
        return x->rule.n_conds > y->rule.n_conds ? -1 : 1;
    return x->rule.route < y->rule.route ? -1 : x->rule.route > y->rule.route;
}

static bool same_key(const struct bgw__pending *a, const struct bgw__pending *b)
{
    return a->exact == b->exact && a->len == b->len && memcmp(a->key, b->key, a->len) == 0;
}

/* Copy s (n bytes) into the text arena at *pos, lower-cased if asked; returns the copy. */
static const char *text_put(char *text, size_t *pos, const char *s, size_t n, bool lower_case)
{
    char *d = text + *pos;
    for (size_t i = 0; i < n; i++)
        d[i] = lower_case ? (char)lower((unsigned char)s[i]) : s[i];
    d[n] = '\0';
    *pos += n + 1;
    return d;
}

struct bgw_router *bgw_router_build(const struct bgw_config *cfg, char *err, size_t errlen)
{
    struct bgw_router *r = calloc(1, sizeof *r);
    struct bgw__pending *pend = NULL;
    size_t n_routes = cfg ? cfg->n_routes : 0;
    size_t n_strs = 0, n_text = 1, n_pend = 0;

    if (!r)
        goto oom;
    if (n_routes > UINT32_MAX - 1) {
        if (err && errlen)
            snprintf(err, errlen, "routes: too many routes (%zu)", n_routes);
        free(r);
        return NULL;
    }

    /* Sizes: every key and condition string is copied once into the text arena. */
    for (size_t i = 0; i < n_routes; i++) {
        const struct bgw_match *m = &cfg->routes[i].match;
        const char *path = m->path_exact ? m->path_exact : m->path_prefix;
        n_text += (path ? strlen(path) : 0) + 1;
        for (size_t k = 0; k < m->n_hosts; k++)
            n_text += strlen(m->hosts[k]) + 1;
        for (size_t k = 0; k < m->n_headers; k++)
            n_text += strlen(m->headers[k].name) + 1;
        n_strs += m->n_methods + m->n_hosts + 2 * m->n_headers;
    }
    if (n_strs > UINT32_MAX) {
        if (err && errlen)
            snprintf(err, errlen, "routes: too many match conditions (%zu)", n_strs);
        free(r);
        return NULL;
    }
    r->text = malloc(n_text);
    r->strs = calloc(n_strs ? n_strs : 1, sizeof *r->strs);
    r->rules = calloc(n_routes ? n_routes : 1, sizeof *r->rules);
    pend = calloc(n_routes ? n_routes : 1, sizeof *pend);
    if (!r->text || !r->strs || !r->rules || !pend)
        goto oom;

    size_t tpos = 0;
    uint32_t spos = 0;
    for (size_t i = 0; i < n_routes; i++) {
        const struct bgw_match *m = &cfg->routes[i].match;
        const char *path = m->path_exact ? m->path_exact : m->path_prefix;
        if (!path)
            continue;                   /* no path: the validator refuses it; never matches */

        /* The key: the path as a request reaching it would be normalised. A path the normaliser refuses
         * could only match requests that are refused first, so the route can never match. */
        size_t plen = strlen(path);
        char *key = r->text + tpos;
        long klen = bgw_pathnorm(path, plen, key);
        if (klen < 0)
            continue;
        tpos += (size_t)klen + 1;

        struct bgw__pending *pd = &pend[n_pend++];
        pd->key = key;
        pd->len = (size_t)klen;
        pd->hash = fnv_hash(key, (size_t)klen);
        pd->exact = m->path_exact != NULL;

        struct bgw__rule *rule = &pd->rule;
        rule->route = (uint32_t)i;
        rule->n_conds = (m->n_methods > 0) + (m->n_hosts > 0) + (m->n_headers > 0);
        rule->methods = spos;
        rule->n_methods = (uint32_t)m->n_methods;
        for (size_t k = 0; k < m->n_methods; k++, spos++) {
            r->strs[spos].p = m->methods[k];
            r->strs[spos].n = strlen(m->methods[k]);
        }
        rule->hosts = spos;
        rule->n_hosts = (uint32_t)m->n_hosts;
        for (size_t k = 0; k < m->n_hosts; k++, spos++) {
            const char *hp = m->hosts[k];
            size_t hn = strlen(hp);
            if (hn >= 2 && hp[0] == '*' && hp[1] == '.') {
                hp++;                   /* "*.example.com" is kept as ".example.com" */
                hn--;
                r->strs[spos].wildcard = true;
            } else if (hn >= 2 && hp[0] == '[' && hp[hn - 1] == ']') {
                hp++;                   /* "[::1]" compares as "::1", like the request's host */
                hn -= 2;
            }
            r->strs[spos].p = text_put(r->text, &tpos, hp, hn, true);
            r->strs[spos].n = hn;
        }
        rule->headers = spos;
        rule->n_headers = (uint32_t)m->n_headers;
        for (size_t k = 0; k < m->n_headers; k++, spos += 2) {
            const char *name = m->headers[k].name;
            const char *val = m->headers[k].exact ? m->headers[k].exact : "";
            size_t nn = strlen(name);
            r->strs[spos].p = text_put(r->text, &tpos, name, nn, true);
            r->strs[spos].n = nn;
            r->strs[spos + 1].p = val;
            r->strs[spos + 1].n = strlen(val);
        }
    }

    qsort(pend, n_pend, sizeof *pend, pending_cmp);

    size_t keys_exact = 0, keys_prefix = 0;
    for (size_t i = 0; i < n_pend; i++)
        if (i == 0 || !same_key(&pend[i - 1], &pend[i]))
            *(pend[i].exact ? &keys_exact : &keys_prefix) += 1;
    if (table_init(&r->exact, keys_exact) < 0 || table_init(&r->prefix, keys_prefix) < 0)
        goto oom;

    for (size_t i = 0; i < n_pend;) {
        size_t j = i + 1;
        while (j < n_pend && same_key(&pend[i], &pend[j]))
            j++;
        struct bgw__entry e = { pend[i].key, pend[i].len, pend[i].hash, (uint32_t)i, (uint32_t)(j - i) };
        for (size_t k = i; k < j; k++)
            r->rules[k] = pend[k].rule;
        table_insert(pend[i].exact ? &r->exact : &r->prefix, &e);
        i = j;
    }
    free(pend);
    return r;

oom:
    if (err && errlen)
        snprintf(err, errlen, "routes: out of memory compiling the route table");
    free(pend);
    bgw_router_free(r);
    return NULL;
}

void bgw_router_free(struct bgw_router *r)
{
    if (!r)
        return;
    free(r->exact.slots);
    free(r->prefix.slots);
    free(r->rules);
    free(r->strs);
    free(r->text);
    free(r);
}
