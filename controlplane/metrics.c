/* metrics.c - counters of bgw-control's Kubernetes watcher and health checker (see metrics.h). */
#include "metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

enum family { FAM_K8S_EVENTS, FAM_HEALTH_CHECKS };

struct series {
    enum family family;
    char *a, *b;
    uint64_t value;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct series *series;
static size_t n_series, cap_series;
static uint64_t relists;

static void count(enum family f, const char *a, const char *b)
{
    if (!a) a = "";
    if (!b) b = "";
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_series; i++) {
        struct series *s = &series[i];
        if (s->family == f && strcmp(s->a, a) == 0 && strcmp(s->b, b) == 0) {
            s->value++;
            pthread_mutex_unlock(&lock);
            return;
        }
    }
    if (n_series == cap_series && n_series < BGW_CP_METRICS_MAX_SERIES) {
        size_t nc = cap_series ? cap_series * 2 : 32;
        struct series *ns = realloc(series, nc * sizeof *ns);
        if (ns) {
            series = ns;
            cap_series = nc;
        }
    }
    if (n_series < cap_series) {
        char *ca = strdup(a), *cb = strdup(b);
        if (ca && cb) series[n_series++] = (struct series){f, ca, cb, 1};
        else {
            free(ca);
            free(cb);
        }
    }
    pthread_mutex_unlock(&lock);
}

void bgw_cp_metrics_k8s_event(const char *resource, const char *type)
{
    count(FAM_K8S_EVENTS, resource, type);
}

void bgw_cp_metrics_relist(void)
{
    pthread_mutex_lock(&lock);
    relists++;
    pthread_mutex_unlock(&lock);
}

void bgw_cp_metrics_health_check(const char *service, const char *result)
{
    count(FAM_HEALTH_CHECKS, service, result);
}

/* A label value as Prometheus text wants it: backslash, quote and newline escaped. */
static int put_label(char **buf, size_t *len, size_t *cap, const char *v)
{
    for (const char *p = v; *p; p++) {
        int rc;
        if (*p == '\\') rc = bgw_strbuf_printf(buf, len, cap, "\\\\");
        else if (*p == '"') rc = bgw_strbuf_printf(buf, len, cap, "\\\"");
        else if (*p == '\n') rc = bgw_strbuf_printf(buf, len, cap, "\\n");
        else rc = bgw_strbuf_printf(buf, len, cap, "%c", *p);
        if (rc < 0) return -1;
    }
    return 0;
}

static int render_family(enum family f, const char *name, const char *la, const char *lb, char **buf, size_t *len,
                         size_t *cap)
{
    for (size_t i = 0; i < n_series; i++) {
        const struct series *s = &series[i];
        if (s->family != f) continue;
        if (bgw_strbuf_printf(buf, len, cap, "%s{%s=\"", name, la) < 0 || put_label(buf, len, cap, s->a) < 0 ||
            bgw_strbuf_printf(buf, len, cap, "\",%s=\"", lb) < 0 || put_label(buf, len, cap, s->b) < 0 ||
            bgw_strbuf_printf(buf, len, cap, "\"} %llu\n", (unsigned long long)s->value) < 0)
            return -1;
    }
    return 0;
}

int bgw_cp_metrics_render(char **buf, size_t *len, size_t *cap)
{
    pthread_mutex_lock(&lock);
    int rc = bgw_strbuf_printf(buf, len, cap,
                               "# HELP bgw_k8s_watch_events_total Kubernetes watch events received, by resource and "
                               "event type.\n# TYPE bgw_k8s_watch_events_total counter\n");
    if (rc == 0)
        rc = render_family(FAM_K8S_EVENTS, "bgw_k8s_watch_events_total", "resource", "type", buf, len, cap);
    if (rc == 0)
        rc = bgw_strbuf_printf(buf, len, cap,
                               "# HELP bgw_k8s_relists_total Full lists of a watched Kubernetes resource (start, "
                               "410 Gone).\n# TYPE bgw_k8s_relists_total counter\nbgw_k8s_relists_total %llu\n"
                               "# HELP bgw_health_checks_total Active health checks done, by service and result.\n"
                               "# TYPE bgw_health_checks_total counter\n",
                               (unsigned long long)relists);
    if (rc == 0)
        rc = render_family(FAM_HEALTH_CHECKS, "bgw_health_checks_total", "service", "result", buf, len, cap);
    pthread_mutex_unlock(&lock);
    return rc;
}

void bgw_cp_metrics_reset(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_series; i++) {
        free(series[i].a);
        free(series[i].b);
    }
    free(series);
    series = NULL;
    n_series = cap_series = 0;
    relists = 0;
    pthread_mutex_unlock(&lock);
}
