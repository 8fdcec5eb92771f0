/* admin.c - the proxy's admin listener (see admin.h). */
#include "admin.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access_log.h"
#include "log.h"
#include "netaddr.h"
#include "outlier.h"
#include "procstat.h"
#include "snapshot.h"
#include "source_xds.h"
#include "stats.h"
#include "ratelimit_redis.h"
#include "strbuf.h"
#include "timer.h"

struct bgw_admin {
    struct MHD_Daemon *d;
    struct bgw_worker **workers;
    unsigned n;
};

/* libmicrohttpd's own messages become log lines like every other event. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
    bgw_log_warn("admin: %s", msg);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type, char *body,
                             size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

#define REPLY_STATIC(conn, status, type, lit) \
    reply((conn), (status), (type), (char *)(lit), sizeof(lit) - 1, MHD_RESPMEM_PERSISTENT)

/* bgw_upstream_endpoint_healthy: every endpoint of every service of the snapshot, 1 when it may be picked:
 * healthy in the config in use (the control plane's health checks, or the document) and not ejected by
 * outlier detection right now. */
static int render_endpoints(const struct bgw_snapshot *s, char **buf, size_t *len, size_t *cap)
{
    int rc = bgw_strbuf_printf(buf, len, cap,
                               "# HELP bgw_upstream_endpoint_healthy 1 while an upstream endpoint may receive "
                               "requests, by service and endpoint.\n"
                               "# TYPE bgw_upstream_endpoint_healthy gauge\n");
    uint64_t now = bgw_now_ms();
    for (size_t i = 0; rc == 0 && s && i < s->cfg->n_services; i++) {
        const struct bgw_service *svc = &s->cfg->services[i];
        struct bgw_outlier_svc *od = svc->has_outlier_detection ? bgw_outlier_svc_get(svc->name) : NULL;
        for (uint32_t e = 0; rc == 0 && e < s->services[i].n_eps; e++) {
            const struct bgw_snap_endpoint *ep = &s->services[i].eps[e];
            struct bgw_outlier_ep *oe = od ? bgw_outlier_ep_get(od, ep->address) : NULL;
            bool up = ep->healthy && !(oe && bgw_outlier_ejected(oe, now));
            rc = bgw_strbuf_printf(buf, len, cap, "bgw_upstream_endpoint_healthy{service=\"%s\",endpoint=\"%s\"} %d\n",
                                   svc->name, ep->address, up ? 1 : 0);
        }
    }
    return rc;
}

static char *render_metrics(struct bgw_admin *a, size_t *out_len)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    struct bgw_stats *stats[256];
    unsigned n = a->n < 256 ? a->n : 256;
    for (unsigned i = 0; i < n; i++) stats[i] = &a->workers[i]->stats;
    struct bgw_snapshot *s = bgw_snapshot_current();
    int rc = bgw_stats_render(stats, n, s ? s->cfg : NULL, &buf, &len, &cap);
    if (rc == 0) rc = render_endpoints(s, &buf, &len, &cap);
    if (rc == 0) rc = bgw_access_log_render_metrics(&buf, &len, &cap);
    uint64_t acc, rej;
    bgw_snapshot_update_counts(&acc, &rej);
    if (rc == 0)
        rc = bgw_strbuf_printf(&buf, &len, &cap,
                               "# HELP bgw_config_version_info The config version in use.\n"
                               "# TYPE bgw_config_version_info gauge\n");
    if (rc == 0 && s) rc = bgw_strbuf_printf(&buf, &len, &cap, "bgw_config_version_info{version=\"%s\"} 1\n", s->version);
    bgw_snapshot_unref(s);
    if (rc == 0)
        rc = bgw_strbuf_printf(
            &buf, &len, &cap,
            "# HELP bgw_config_updates_total Config updates, by result.\n# TYPE bgw_config_updates_total counter\n"
            "bgw_config_updates_total{result=\"accepted\"} %llu\nbgw_config_updates_total{result=\"rejected\"} %llu\n"
            "# HELP bgw_control_plane_connected 1 while the config stream to the control plane is up.\n"
            "# TYPE bgw_control_plane_connected gauge\nbgw_control_plane_connected %d\n"
            "# HELP bgw_build_info The running build.\n# TYPE bgw_build_info gauge\n"
            "bgw_build_info{version=\"%s\"} 1\n",
            (unsigned long long)acc, (unsigned long long)rej, bgw_xds_connected() ? 1 : 0, BGW_VERSION);
    if (rc == 0)
        rc = bgw_strbuf_printf(&buf, &len, &cap,
                               "# HELP bgw_ratelimit_redis_errors_total Global rate-limit decisions Redis could not "
                               "make (admitted: fail open).\n# TYPE bgw_ratelimit_redis_errors_total counter\n"
                               "bgw_ratelimit_redis_errors_total %llu\n",
                               (unsigned long long)bgw_rlredis_errors());
    if (rc == 0) rc = bgw_procstat_render(&buf, &len, &cap);
    if (rc < 0) goto fail;
    *out_len = len;
    return buf;
fail:
    free(buf);
    return NULL;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **con_cls)
{
    struct bgw_admin *a = cls;
    (void)version;
    (void)upload_data;
    (void)con_cls;
    if (*upload_data_size) {
        *upload_data_size = 0;     /* bodies are ignored: every endpoint is a GET */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return REPLY_STATIC(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
                            "{\"error\":\"method_not_allowed\"}\n");
    if (strcmp(url, "/healthz") == 0) return REPLY_STATIC(conn, MHD_HTTP_OK, "text/plain", "ok\n");
    if (strcmp(url, "/readyz") == 0) {
        if (bgw_snapshot_generation() == 0)
            return REPLY_STATIC(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", "no config\n");
        return REPLY_STATIC(conn, MHD_HTTP_OK, "text/plain", "ready\n");
    }
    if (strcmp(url, "/metrics") == 0) {
        size_t len = 0;
        char *body = render_metrics(a, &len);
        if (!body) return REPLY_STATIC(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "out of memory\n");
        return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len, MHD_RESPMEM_MUST_FREE);
    }
    if (strcmp(url, "/config") == 0) {
        struct bgw_snapshot *s = bgw_snapshot_current();
        if (!s) return REPLY_STATIC(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", "{\"error\":\"no_config\"}\n");
        char *body = bgw_snapshot_render(s);    /* rendered on demand: rarely asked, large for big configs */
        bgw_snapshot_unref(s);
        if (!body) return REPLY_STATIC(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "out of memory\n");
        return reply(conn, MHD_HTTP_OK, "application/json", body, strlen(body), MHD_RESPMEM_MUST_FREE);
    }
    return REPLY_STATIC(conn, MHD_HTTP_NOT_FOUND, "application/json", "{\"error\":\"not_found\"}\n");
}

struct bgw_admin *bgw_admin_start(const char *addr, struct bgw_worker **workers, unsigned n, char *err,
                                  size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (bgw_listen_addr("--admin", addr, &ss, &sl, err, errlen) < 0) return NULL;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    uint16_t port;
    if (ss.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    struct bgw_admin *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->workers = workers;
    a->n = n;
    a->d = MHD_start_daemon(flags, port, NULL, NULL, handle, a, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_END);
    if (!a->d) {
        snprintf(err, errlen, "--admin %s: cannot listen (address in use or not available)", addr);
        free(a);
        return NULL;
    }
    return a;
}

void bgw_admin_stop(struct bgw_admin *a)
{
    if (!a) return;
    MHD_stop_daemon(a->d);
    free(a);
}
