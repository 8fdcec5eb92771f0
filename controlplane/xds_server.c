/*
 * xds_server.c - placeholder for the config stream server (see xds_server.h): it keeps the latest
 * published version and reports no proxies. The gRPC implementation replaces this file.
 */
#include "xds_server.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

struct bgw_xds_server {
    pthread_mutex_t lock;
    char version[128];
};

struct bgw_xds_server *bgw_xds_server_start(const char *addr, const struct bgw_xds_tls *tls, char *err,
                                            size_t errlen)
{
    (void)addr;
    (void)tls;
    struct bgw_xds_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

int bgw_xds_server_publish(struct bgw_xds_server *s, const char *version, const json_t *doc)
{
    (void)doc;
    pthread_mutex_lock(&s->lock);
    snprintf(s->version, sizeof s->version, "%s", version);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

json_t *bgw_xds_server_dataplanes(struct bgw_xds_server *s)
{
    (void)s;
    return json_array();
}

int bgw_xds_server_render_metrics(struct bgw_xds_server *s, char **buf, size_t *len, size_t *cap)
{
    (void)s;
    return bgw_strbuf_printf(buf, len, cap,
                             "# HELP bgw_xds_connected_proxies Proxies with an open config stream.\n"
                             "# TYPE bgw_xds_connected_proxies gauge\nbgw_xds_connected_proxies 0\n");
}

void bgw_xds_server_stop(struct bgw_xds_server *s)
{
    if (!s) return;
    pthread_mutex_destroy(&s->lock);
    free(s);
}
