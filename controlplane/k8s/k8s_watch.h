/*
 * k8s_watch.h - bgw-control's Kubernetes source: list+watch of Services and EndpointSlices (all namespaces
 * or the given ones) over libcurl, kept in a bgw_k8s_index, with a callback after every change.
 *
 * One thread per (resource, namespace) runs the loop of watch_policy.h: list with limit/continue, then
 * watch from the list's resourceVersion with allowWatchBookmarks and timeoutSeconds, applying each event
 * as it arrives (the stream is cut into events by json_splitter.h, not by chunk). EndpointSlices are
 * listed and watched with the label selector kubernetes.io/service-name. Events and lists are counted in
 * metrics.h (bgw_k8s_watch_events_total, bgw_k8s_relists_total).
 */
#ifndef BGW_K8S_WATCH_H
#define BGW_K8S_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "k8s_conn.h"

struct bgw_k8s_watcher;

struct bgw_k8s_watcher_config {
    struct bgw_k8s_conn conn;           /* taken over by the watcher (freed by bgw_k8s_watcher_stop) */
    const char *const *namespaces;      /* n_namespaces names (copied); none = all namespaces */
    size_t n_namespaces;
    void (*changed)(void *arg);         /* after events changed the index; from the watch threads */
    void *changed_arg;
    unsigned watch_timeout_s;           /* timeoutSeconds of each watch is in [t, 2t); 0: 300 */
};

/* Start the watch threads. Returns the watcher, or NULL with err filled (cfg->conn is then freed). */
struct bgw_k8s_watcher *bgw_k8s_watcher_start(struct bgw_k8s_watcher_config *cfg, char *err, size_t errlen);

/* Wait until every loop has completed its first list, or timeout_ms passes. True when synced. */
bool bgw_k8s_watcher_wait_synced(struct bgw_k8s_watcher *w, unsigned timeout_ms);

/* The endpoints of a reference (bgw_builder_k8s_lookup_fn; arg is the watcher): see bgw_k8s_index_lookup. */
json_t *bgw_k8s_watcher_lookup(void *arg, const char *ns, const char *service, const char *port);


/* Stop the threads (each within about a second) and free everything. NULL is fine. */
void bgw_k8s_watcher_stop(struct bgw_k8s_watcher *w);

#endif
