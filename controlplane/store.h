/*
 * store.h - bgw-control's durable store: the services, routes, rate limits and auth policies of the admin
 * API, each with a revision, and a config version that increases with every change.
 *
 * Every change is checked as the whole document it would produce (bgw_config_from_json, references
 * included) and written to the state directory (temp file, fsync, rename, fsync of the directory), or
 * saved by the store's backend (bgw_store_open_backend: a ConfigMap), before the call returns; a rejected change leaves the store exactly as it was. The revision of an object is the
 * value of the store-wide version counter at its last change. A change that leaves every object as it was
 * is accepted without a new version.
 *
 * Thread-safe: every call takes the store's lock. Objects handed out are new references the caller owns.
 */
#ifndef BGW_STORE_H
#define BGW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"

struct bgw_store;

enum bgw_store_kind {
    BGW_KIND_SERVICES = 0,
    BGW_KIND_ROUTES,
    BGW_KIND_RATE_LIMITS,
    BGW_KIND_AUTH_POLICIES,
    BGW_KIND_COUNT
};

/* Why a call failed: the admin API maps these to 400, 404, 409, 412, 500 and 413. */
enum bgw_store_status {
    BGW_STORE_INVALID = 1,      /* the request or the document it would produce is invalid */
    BGW_STORE_NOT_FOUND,        /* no such object */
    BGW_STORE_CONFLICT,         /* the object is still referenced */
    BGW_STORE_PRECONDITION,     /* If-Match did not match */
    BGW_STORE_IO,               /* the state could not be read or made durable */
    BGW_STORE_TOO_LARGE,        /* the state would exceed what the backend can hold (413) */
};

/* The caller's error buffer of every call that can fail. field: where in the request the problem is
 * ("match.path_prefix" for a PUT body, "routes[0].match" for an applied document; "" when it is not one
 * field); message: one line, the field path first when there is one. */
struct bgw_store_error {
    enum bgw_store_status status;
    char field[256];
    char message[BGW_ERR_MAX];
};

/* Called with the store's lock held after every accepted change that changed something, and once from
 * bgw_store_set_listener(): version as text, and the whole validated document (bgw_config_to_json form:
 * defaults explicit, endpoints as {"address", "healthy"}), made for this call: the listener may keep a
 * reference (json_incref); nobody modifies it. */
typedef void (*bgw_store_listener)(void *arg, const char *version, json_t *doc);

/* "services" -> BGW_KIND_SERVICES etc. Returns 0, or -1 when s names no kind. */
int bgw_store_kind_parse(const char *s, enum bgw_store_kind *out);
const char *bgw_store_kind_name(enum bgw_store_kind kind);

/* Whether s is a valid object name (1..BGW_NAME_MAX characters of A-Za-z0-9._-). */
bool bgw_store_name_valid(const char *s);

/*
 * Open the state in dir: created (one level) when missing, locked against a second bgw-control, loaded
 * from dir/state.json when it exists and checked in full (a corrupt or invalid file is an error, never an
 * empty start). dir NULL: a store in memory only, nothing written (tests, fuzzing). Returns the store, or
 * NULL with err filled (status BGW_STORE_IO or BGW_STORE_INVALID, message naming the file).
 */
struct bgw_store *bgw_store_open(const char *dir, struct bgw_store_error *err);

/* Release the store (and its lock on the directory). NULL is fine. */
void bgw_store_close(struct bgw_store *s);

/* Install the change listener (NULL: none) and call it once with the current state. */
void bgw_store_set_listener(struct bgw_store *s, bgw_store_listener fn, void *arg);

/* Load the document in file into the store when the store has never had a change (version 0): each of
 * its objects is created as by bgw_store_apply(). A state that already has a history is left alone
 * (*applied = false). The file is validated either way; errors are "FILE: FIELD.PATH: what is wrong".
 * Returns 0 or -1. */
int bgw_store_bootstrap(struct bgw_store *s, const char *file, bool *applied, struct bgw_store_error *err);

/* The current version counter (0: never changed). */
uint64_t bgw_store_version(struct bgw_store *s);

/* {"items": [object + "revision"...], "version": "V"} for kind, in document order. */
json_t *bgw_store_list(struct bgw_store *s, enum bgw_store_kind kind);

/* The object named name with its "revision", or NULL when there is none. *revision (may be NULL) gets the
 * revision. */
json_t *bgw_store_get(struct bgw_store *s, enum bgw_store_kind kind, const char *name, uint64_t *revision);

/* The current document: {"version": "V", "services": [...], "routes": [...], "rate_limits": [...],
 * "auth_policies": [...]}, objects as stored (without revisions); bgw_store_apply() accepts it back. */
json_t *bgw_store_snapshot(struct bgw_store *s);

/* {"service": NAME, "items": [{"address", "healthy", "source": "static"}...]} for the service, or NULL
 * when there is none. */
json_t *bgw_store_endpoints(struct bgw_store *s, const char *service);

/*
 * Create or replace kind/name with body (a JSON object; a "name" member must equal name and is added when
 * absent; a "revision" member is ignored). if_match: NULL, or an If-Match value ("*", a revision quoted or
 * bare, or a comma-separated list of them) that must match the current object. On success returns 0,
 * *created says which, and *out (may be NULL) gets the stored object with its revision. Errors: INVALID
 * (field relative to the body), PRECONDITION, IO.
 */
int bgw_store_put(struct bgw_store *s, enum bgw_store_kind kind, const char *name, const json_t *body,
                  const char *if_match, bool *created, json_t **out, struct bgw_store_error *err);

/* Delete kind/name. Errors: NOT_FOUND, CONFLICT (a route still uses it; the message names the route),
 * PRECONDITION, IO. Returns 0 or -1. */
int bgw_store_delete(struct bgw_store *s, enum bgw_store_kind kind, const char *name, const char *if_match,
                     struct bgw_store_error *err);

/*
 * Create or replace every object of doc (a config document; its "version" and the objects' "revision"
 * members are ignored) and leave the others, all or nothing. On success returns 0 and *summary (may be
 * NULL) gets {"version": "V", "items": [{"kind", "name", "result": "created|replaced|unchanged",
 * "revision"}...]}. Errors: INVALID (field path inside doc), IO.
 */
int bgw_store_apply(struct bgw_store *s, const json_t *doc, json_t **summary, struct bgw_store_error *err);

/* ---- persistence backends other than the state directory (store_configmap.c) ---- */

#define BGW_STORE_TOKEN_MAX 128

/*
 * Where a store keeps its state when it is not a state directory: one text (the JSON of DIR/state.json)
 * with an opaque token (e.g. a resourceVersion) naming the stored version, written with optimistic
 * concurrency. The store calls these with its lock held.
 */
struct bgw_store_backend {
    void *impl;
    /* The stored state: *text (malloc'd; NULL when nothing is stored yet) and its token ("" when there is
     * nothing to name). Returns 0, or -1 with err filled (BGW_STORE_IO). */
    int (*load)(void *impl, char **text, char token[BGW_STORE_TOKEN_MAX], struct bgw_store_error *err);
    /* Store text in place of the state named token ("": create it). Returns 0 and token updated, 1 when
     * the stored state is no longer the one token names (someone else wrote: load and try again), or -1
     * with err filled (BGW_STORE_IO, BGW_STORE_TOO_LARGE). */
    int (*save)(void *impl, const char *text, char token[BGW_STORE_TOKEN_MAX], struct bgw_store_error *err);
    /* Release impl (called first by bgw_store_close; stops anything calling bgw_store_reload). May be NULL. */
    void (*close)(void *impl);
};

/*
 * Open a store kept by backend b (copied; its close is called by bgw_store_close, or on failure here):
 * the stored state is loaded and checked in full (an invalid one is an error). Every change is saved
 * with the token last seen; when the save reports a newer stored state the store loads it and applies
 * the change again on top of it (If-Match, references and validation checked anew), up to
 * BGW_STORE_RETRIES times, then fails with BGW_STORE_CONFLICT. Returns the store or NULL with err filled.
 */
#define BGW_STORE_RETRIES 8
struct bgw_store *bgw_store_open_backend(const struct bgw_store_backend *b, struct bgw_store_error *err);

/* Make sure the backend holds a state: when it had none at open (and no change saved one since), save the
 * current state (an empty one, or what bootstrap loaded). No-op for other stores. Returns 0 or -1. */
int bgw_store_ensure_saved(struct bgw_store *s, struct bgw_store_error *err);

/*
 * A state written by someone else (a watch event of the backend): text with its token. Ignored (returns
 * 0) when token is the one last seen or text's version is older than the current one; otherwise checked
 * in full and, when valid, made current and passed to the listener (returns 1). Invalid: returns -1 with
 * err filled and the current state kept.
 */
int bgw_store_reload(struct bgw_store *s, const char *text, const char *token, struct bgw_store_error *err);

#endif
