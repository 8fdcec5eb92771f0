/*
 * metrics.h - counters of bgw-control's event sources (Kubernetes watcher, health checker) and their
 * Prometheus text.
 *
 * Process-wide, thread-safe (one mutex; the callers are control-plane threads, never a request path).
 * Label values are copied; keep them bounded: resource and type are fixed words, service a configured
 * service name, result "healthy"/"unhealthy"/... from the health checker's own small set. At most
 * BGW_CP_METRICS_MAX_SERIES distinct series are kept; beyond that new series are dropped (and counted in
 * bgw_cp_metrics_overflow, kept internal).
 */
#ifndef BGW_CP_METRICS_H
#define BGW_CP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define BGW_CP_METRICS_MAX_SERIES 4096

/* One event seen on a Kubernetes watch: resource "services" | "endpointslices" | ..., type "ADDED" |
 * "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR" (as the API server names it). bgw_k8s_watch_events_total. */
void bgw_cp_metrics_k8s_event(const char *resource, const char *type);

/* One list of a resource after its first (a watch ended with 410 Gone or an error). bgw_k8s_relists_total. */
void bgw_cp_metrics_relist(void);

/* One finished active health check of an endpoint of service: result "success" | "failure" | "timeout"
 * (or another word of the checker's fixed set). bgw_health_checks_total. */
void bgw_cp_metrics_health_check(const char *service, const char *result);

/* Append bgw_k8s_watch_events_total{resource,type}, bgw_k8s_relists_total and
 * bgw_health_checks_total{service,result}, each with HELP and TYPE even before the first event.
 * Returns 0 or -1 (out of memory). */
int bgw_cp_metrics_render(char **buf, size_t *len, size_t *cap);

/* Forget every series (for tests). */
void bgw_cp_metrics_reset(void);

#endif
