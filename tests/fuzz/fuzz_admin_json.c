/*
 * fuzz_admin_json.c - arbitrary bytes as the body of the admin API's changes, through the same request
 * handling the HTTP server uses (admin_api.h over an in-memory store: nothing is written to disk).
 *
 * The first byte picks the request (PUT of one of the four kinds, or POST /v1/apply); the rest is the
 * body. A small valid base state is applied first so references and replacements are exercised. Checks:
 * the reply is a status the contract allows with a JSON body; a rejected change leaves the snapshot as it
 * was; an accepted one leaves a snapshot that applies back as a no-op.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api.h"

static const char base_doc[] =
    "{\"services\": [{\"name\": \"orders\", \"endpoints\": [\"127.0.0.1:9001\"]}],"
    " \"rate_limits\": [{\"name\": \"rl\", \"requests\": 10, \"per\": \"second\", \"key\": \"client_ip\"}],"
    " \"auth_policies\": [{\"name\": \"jwt\", \"issuer\": \"https://i\", \"algorithms\": [\"RS256\"],"
    "                     \"jwks\": {\"keys\": []}}],"
    " \"routes\": [{\"name\": \"api\", \"match\": {\"path_prefix\": \"/api\"}, \"service\": \"orders\"}]}";

static const char *const paths[] = {
    "/v1/services/orders", "/v1/services/fresh", "/v1/routes/api", "/v1/routes/fresh",
    "/v1/rate_limits/rl", "/v1/auth_policies/jwt", "/v1/apply", "/v1/apply",
};

static char *snapshot_text(struct bgw_store *s)
{
    json_t *snap = bgw_store_snapshot(s);
    char *t = json_dumps(snap, JSON_COMPACT);

    json_decref(snap);
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bgw_store *store;
    struct bgw_admin_api *api;
    struct bgw_admin_reply rp;
    const char *path;
    char *before, *after;
    json_t *base;

    if (size < 1)
        return 0;
    store = bgw_store_open(NULL, NULL);
    api = bgw_admin_api_new(store, NULL, NULL);
    if (!store || !api)
        abort();
    base = json_loads(base_doc, 0, NULL);
    if (!base || bgw_store_apply(store, base, NULL, NULL) < 0)
        abort();
    json_decref(base);

    path = paths[data[0] % (sizeof paths / sizeof paths[0])];
    struct bgw_admin_request rq = {
        .method = strcmp(path, "/v1/apply") == 0 ? "POST" : "PUT",
        .path = path,
        .content_type = "application/json",
        .body = (const char *)data + 1,
        .body_len = size - 1,
    };
    before = snapshot_text(store);
    bgw_admin_api_handle(api, &rq, &rp);
    after = snapshot_text(store);
    if (!before || !after)
        abort();
    switch (rp.status) {
    case 200:
    case 201:
        break;
    case 400:
    case 413:
        if (strcmp(before, after) != 0)
            abort();          /* a rejected change changed something */
        break;
    default:
        fprintf(stderr, "unexpected status %u\n", rp.status);
        abort();
    }
    json_t *reply = json_loadb(rp.body, rp.len, 0, NULL);
    if (!reply)
        abort();              /* every reply of a change is JSON */
    json_decref(reply);
    if (rp.status < 300) {
        /* What was accepted is a valid document: it applies back without a change. */
        json_t *snap = bgw_store_snapshot(store);
        uint64_t v = bgw_store_version(store);
        struct bgw_store_error err;
        if (bgw_store_apply(store, snap, NULL, &err) < 0 || bgw_store_version(store) != v)
            abort();
        json_decref(snap);
    }
    bgw_admin_reply_free(&rp);
    free(before);
    free(after);
    bgw_admin_api_free(api);
    bgw_store_close(store);
    return 0;
}
