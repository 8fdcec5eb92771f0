/*
 * store_configmap.h - bgw-control's store kept in a Kubernetes ConfigMap (--state-configmap NS/NAME): a
 * struct bgw_store_backend over the API server, plus a watch of that one ConfigMap so states written by
 * other replicas are loaded.
 *
 * The state (the text of state.json) is the data key "state.json". Loads are GETs; saves are a PUT naming
 * the resourceVersion last seen (409 Conflict, or 404 after a deletion: "someone else wrote", the store
 * loads and retries), or a POST when the ConfigMap does not exist (409 AlreadyExists: the same). A state
 * over BGW_STORE_CONFIGMAP_MAX bytes is refused before any request (BGW_STORE_TOO_LARGE). The watch is
 * `?watch=1&fieldSelector=metadata.name=NAME` on the namespace's configmaps (never a list), from the last
 * resourceVersion, with bookmarks; 410 Gone: GET again; failures: the backoff of watch_policy.h.
 *
 * Permissions needed: get, update, watch on the ConfigMap; create on configmaps of the namespace.
 */
#ifndef BGW_STORE_CONFIGMAP_H
#define BGW_STORE_CONFIGMAP_H

#include <stddef.h>

#include "k8s_conn.h"
#include "store.h"

#define BGW_STORE_CONFIGMAP_KEY "state.json"
/* ConfigMaps hold at most 1 MiB; room is left for the metadata. */
#define BGW_STORE_CONFIGMAP_MAX (1048576 - 16384)

struct bgw_store_configmap;

/* A backend for the ConfigMap ns_name ("NAMESPACE/NAME") reached through conn (taken over: freed with the
 * backend, also on failure; the caller neither uses nor frees *conn afterwards). Fills *out (its close frees
 * the backend). Returns 0, or -1 with err naming the flag's problem. */
int bgw_store_configmap_new(struct bgw_k8s_conn *conn, const char *ns_name, struct bgw_store_backend *out,
                            char *err, size_t errlen);

/* Start watching the ConfigMap of backend impl (out->impl of bgw_store_configmap_new) for store s, which
 * must be the store opened on it: each newer valid state is passed to bgw_store_reload(); an invalid one is
 * logged and ignored. The watch stops when the store is closed. watch_timeout_s: timeoutSeconds of each
 * watch in [t, 2t) (0: 300). Returns 0 or -1 with err. */
int bgw_store_configmap_watch(void *impl, struct bgw_store *s, unsigned watch_timeout_s, char *err,
                              size_t errlen);

#endif
