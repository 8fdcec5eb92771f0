/*
 * k8s_endpoints.h - what the Kubernetes watch knows: Services and EndpointSlices by namespace, and the
 * endpoints of a service reference {"namespace", "service", "port"} computed from them.
 *
 * An EndpointSlice belongs to the Service named by its label kubernetes.io/service-name. The endpoints of
 * a reference are, over all slices of the Service, every address of every endpoint that is ready
 * (conditions.ready true or absent) and not terminating (conditions.terminating not true), joined with
 * the slice's port selected by the reference's port:
 *
 *   - a name ("http"): the slice port of that name (EndpointSlice ports carry the Service port's name);
 *   - a number N: the Service port whose `port` is N selects the slice port of the same name, so N is the
 *     Service port as clients of the Service see it, and the address gets the target port as the slice
 *     lists it (targetPort, by number or by name, resolved per pod by Kubernetes). When the Service has no
 *     port N, N is matched against the slices' port numbers (the target port itself).
 *
 * Addresses are deduplicated (during a rollout an endpoint may sit in two slices), sorted, and IPv6
 * addresses are bracketed ("[fd00::1]:8080"). A reference to a Service the index does not hold has no
 * endpoints at all (NULL), which is how a deleted Service empties its service.
 *
 * Thread-safe: one internal lock, never held across a callback.
 */
#ifndef BGW_K8S_ENDPOINTS_H
#define BGW_K8S_ENDPOINTS_H

#include <jansson.h>

enum bgw_k8s_kind { BGW_K8S_SERVICES = 0, BGW_K8S_ENDPOINTSLICES = 1 };

struct bgw_k8s_index;

/* An empty index, or NULL when out of memory. */
struct bgw_k8s_index *bgw_k8s_index_new(void);
void bgw_k8s_index_free(struct bgw_k8s_index *x);

/* Apply one watch event: type "ADDED", "MODIFIED" or "DELETED" with the object (borrowed). Returns 1 when
 * the index changed, 0 when not (an unknown type, an object without namespace/name, a slice without the
 * service-name label that was not held), -1 when out of memory. */
int bgw_k8s_index_apply(struct bgw_k8s_index *x, enum bgw_k8s_kind kind, const char *type, const json_t *obj);

/* Replace every object of kind in namespace ns ("" = all namespaces) by the items of a fresh list (a JSON
 * array, borrowed): what a relist does, dropping objects deleted while no watch was open. 0 or -1. */
int bgw_k8s_index_replace(struct bgw_k8s_index *x, enum bgw_k8s_kind kind, const char *ns, const json_t *items);

/* The endpoints of a reference as a new JSON array of "IP:PORT" strings (rules above), or NULL when the
 * Service is not held. port: a name or a decimal number. Results are cached until the Service or one of
 * its slices changes: the array is new, its strings may be shared with later results (do not modify them). */
json_t *bgw_k8s_index_lookup(struct bgw_k8s_index *x, const char *ns, const char *service, const char *port);

/* Counts of held objects, for logs and tests. */
size_t bgw_k8s_index_count(struct bgw_k8s_index *x, enum bgw_k8s_kind kind);

#endif
