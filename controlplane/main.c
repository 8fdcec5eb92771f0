/*
 * main.c - bgw-control, the control-plane daemon: flags, the durable store (state directory, bootstrap),
 * the snapshot builder and the health checker feeding it, the config stream server every resolved document
 * is published to, the admin REST API, and signals
 * (SIGTERM / SIGINT stop it cleanly, exit 0).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin_api.h"
#include "admin_http.h"
#include "cli.h"
#include "fileio.h"
#include "jwks.h"
#include "health_check.h"
#include "k8s_watch.h"
#include "log.h"
#include "store.h"
#include "store_configmap.h"
#include "xds_server.h"

#define TOKEN_FILE_MAX 4096
#define MAX_WATCH_NAMESPACES 64
#define K8S_SYNC_WAIT_MS 2000

struct opts {
    const char *state_dir, *bootstrap, *xds_listen, *admin_listen, *token_file;
    const char *xds_cert, *xds_key, *xds_client_ca;
    const char *kubeconfig;
    bool in_cluster;
    const char *state_configmap;
    const char *namespaces[MAX_WATCH_NAMESPACES];
    size_t n_namespaces;
    uint32_t jwks_refresh_s;
    enum bgw_log_format log_format;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bgw-control [--state-dir DIR] [--bootstrap FILE] [--xds-listen ADDR:PORT]\n"
            "                   [--xds-cert FILE --xds-key FILE [--xds-client-ca FILE]]\n"
            "                   [--admin-listen ADDR:PORT] [--admin-token-file FILE] [--log-format text|json]\n"
            "                   [--kubeconfig FILE | --in-cluster] [--watch-namespace NS]...\n"
            "                   [--state-configmap NAMESPACE/NAME]\n"
            "       bgw-control --help | --version\n"
            "\n"
            "  --state-dir DIR          where the store is kept (default ./bgw-state)\n"
            "  --bootstrap FILE         a config document loaded into an empty state at first start\n"
            "  --xds-listen ADDR:PORT   the config stream for proxies (default 0.0.0.0:18000)\n"
            "  --xds-cert, --xds-key    TLS certificate and key of the config stream (PEM)\n"
            "  --xds-client-ca FILE     require proxies' client certificates signed by this CA (mTLS)\n"
            "  --admin-listen ADDR:PORT the admin REST API (default 127.0.0.1:9000)\n"
            "  --admin-token-file FILE  bearer token required on /v1; without it only loopback addresses\n"
            "  --log-format text|json   log lines on stderr (default text)\n"
            "  --kubeconfig FILE        watch Services and EndpointSlices of the cluster this kubeconfig names\n"
            "  --in-cluster             the same with the pod's service account\n"
            "  --watch-namespace NS     only watch namespace NS (repeatable; default all namespaces)\n"
            "  --state-configmap NS/NAME  keep the store in this ConfigMap instead of --state-dir, shared by\n"
            "                           replicas (needs --kubeconfig or --in-cluster)\n"
            "  --jwks-refresh-interval SECONDS\n"
            "                           refetch every jwks_uri this often (default 300)\n"
            "Every flag can also be set as BGW_<FLAG> (e.g. BGW_ADMIN_TOKEN_FILE).\n");
}

enum {
    OPT_STATE_DIR = 1, OPT_BOOTSTRAP, OPT_XDS_LISTEN, OPT_XDS_CERT, OPT_XDS_KEY, OPT_XDS_CLIENT_CA,
    OPT_ADMIN_LISTEN, OPT_TOKEN_FILE, OPT_LOG_FORMAT, OPT_KUBECONFIG, OPT_IN_CLUSTER, OPT_STATE_CONFIGMAP,
    OPT_WATCH_NAMESPACE, OPT_JWKS_REFRESH,
};

/* A DNS label as Kubernetes names namespaces: 1-63 of [a-z0-9-], not starting or ending with '-'. */
static bool namespace_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return false;
    return true;
}

/* Returns -1 to go on, else the exit code. */
static int parse_flags(int argc, char **argv, struct opts *o)
{
    static const struct option opts[] = {
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {"state-dir", required_argument, 0, OPT_STATE_DIR},
        {"bootstrap", required_argument, 0, OPT_BOOTSTRAP},
        {"xds-listen", required_argument, 0, OPT_XDS_LISTEN},
        {"xds-cert", required_argument, 0, OPT_XDS_CERT},
        {"xds-key", required_argument, 0, OPT_XDS_KEY},
        {"xds-client-ca", required_argument, 0, OPT_XDS_CLIENT_CA},
        {"admin-listen", required_argument, 0, OPT_ADMIN_LISTEN},
        {"admin-token-file", required_argument, 0, OPT_TOKEN_FILE},
        {"log-format", required_argument, 0, OPT_LOG_FORMAT},
        {"kubeconfig", required_argument, 0, OPT_KUBECONFIG},
        {"in-cluster", no_argument, 0, OPT_IN_CLUSTER},
        {"state-configmap", required_argument, 0, OPT_STATE_CONFIGMAP},
        {"watch-namespace", required_argument, 0, OPT_WATCH_NAMESPACE},
        {"jwks-refresh-interval", required_argument, 0, OPT_JWKS_REFRESH},
        {0, 0, 0, 0},
    };
    static char **av;       /* getopt hands out pointers into it: kept for the life of the process */
    int n, c;

    av = bgw_cli_with_env(argc, argv, opts, &n);

    while ((c = getopt_long(n, av, "", opts, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'V': printf("bgw-control %s\n", BGW_VERSION); return 0;
        case OPT_STATE_DIR: o->state_dir = optarg; break;
        case OPT_BOOTSTRAP: o->bootstrap = optarg; break;
        case OPT_XDS_LISTEN: o->xds_listen = optarg; break;
        case OPT_XDS_CERT: o->xds_cert = optarg; break;
        case OPT_XDS_KEY: o->xds_key = optarg; break;
        case OPT_XDS_CLIENT_CA: o->xds_client_ca = optarg; break;
        case OPT_ADMIN_LISTEN: o->admin_listen = optarg; break;
        case OPT_TOKEN_FILE: o->token_file = optarg; break;
        case OPT_LOG_FORMAT:
            if (bgw_log_format_parse(optarg, &o->log_format) < 0) {
                fprintf(stderr, "bgw-control: --log-format: \"%s\" is not text or json\n", optarg);
                return 2;
            }
            break;
        case OPT_KUBECONFIG: o->kubeconfig = optarg; break;
        case OPT_IN_CLUSTER: o->in_cluster = true; break;
        case OPT_STATE_CONFIGMAP: o->state_configmap = optarg; break;
        case OPT_WATCH_NAMESPACE:
            if (!namespace_valid(optarg)) {
                fprintf(stderr, "bgw-control: --watch-namespace: \"%s\" is not a namespace name\n", optarg);
                return 2;
            }
            if (o->n_namespaces == MAX_WATCH_NAMESPACES) {
                fprintf(stderr, "bgw-control: --watch-namespace: at most %d namespaces\n", MAX_WATCH_NAMESPACES);
                return 2;
            }
            o->namespaces[o->n_namespaces++] = optarg;
            break;
        case OPT_JWKS_REFRESH: {
            char *end;
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 1 || v > 86400 || optarg[0] == '-') {
                fprintf(stderr, "bgw-control: --jwks-refresh-interval: \"%s\" is not a number of seconds "
                                "from 1 to 86400\n", optarg);
                return 2;
            }
            o->jwks_refresh_s = (uint32_t)v;
            break;
        }
        default: usage(stderr); return 2;
        }
    }
    if (optind < n) {
        fprintf(stderr, "bgw-control: unexpected argument \"%s\"\n", av[optind]);
        usage(stderr);
        return 2;
    }
    return -1;
}

/* The admin token from --admin-token-file; NULL with err filled (naming the flag and the file). */
static char *read_token(const char *path, char *err, size_t errlen)
{
    char why[512];
    char *tok = bgw_read_token(path, TOKEN_FILE_MAX, why, sizeof why);
    if (!tok) snprintf(err, errlen, "--admin-token-file %s", why);
    return tok;
}

/* The store's listener: every accepted change goes to the builder, which resolves and publishes it. */
static void store_changed(void *arg, const char *version, json_t *doc)
{
    bgw_builder_set_document(arg, version, doc);
}

/* The Kubernetes watch applied events: the builder rebuilds soon (coalesced). */
static void k8s_changed(void *arg)
{
    bgw_builder_sources_changed(arg);
}

static void publish(void *arg, const char *version, const json_t *doc)
{
    struct bgw_xds_server *xds = arg;

    if (bgw_xds_server_publish(xds, version, doc) < 0)
        bgw_log_error("config version %s could not be published to the config stream", version);
    else
        bgw_log_info("config version %s published", version);
}

/* Every health-check result goes to the builder, which keeps last_check / last_error for the endpoints view
 * and rebuilds (and pushes) only when an endpoint's `healthy` changes. */
static void health_report(void *arg, const char *service, const char *address, bool healthy,
                          int64_t last_check_ms, const char *last_error, bool transition)
{
    (void)transition;
    bgw_builder_set_health(arg, service, address, healthy, last_check_ms, last_error);
}

int main(int argc, char **argv)
{
    struct opts o = {
        .state_dir = "./bgw-state",
        .xds_listen = "0.0.0.0:18000",
        .admin_listen = "127.0.0.1:9000",
        .log_format = BGW_LOG_TEXT,
    };
    char err[1024];
    int rc = parse_flags(argc, argv, &o);

    if (rc >= 0)
        return rc;
    bgw_log_init("bgw-control", o.log_format, BGW_LOG_INFO);
    if (o.state_configmap && !o.kubeconfig && !o.in_cluster) {
        bgw_log_error("--state-configmap needs --kubeconfig or --in-cluster");
        return 1;
    }
    if (o.kubeconfig && o.in_cluster) {
        bgw_log_error("--kubeconfig and --in-cluster are mutually exclusive");
        return 1;
    }
    if (o.n_namespaces && !o.kubeconfig && !o.in_cluster) {
        bgw_log_error("--watch-namespace needs --kubeconfig or --in-cluster");
        return 1;
    }

    struct bgw_k8s_watcher_config kcfg = {.namespaces = o.namespaces, .n_namespaces = o.n_namespaces};
    if (o.kubeconfig && bgw_k8s_conn_from_kubeconfig(&kcfg.conn, o.kubeconfig, err, sizeof err) < 0) {
        bgw_log_error("%s", err);
        return 1;
    }
    if (o.in_cluster && bgw_k8s_conn_in_cluster(&kcfg.conn, err, sizeof err) < 0) {
        bgw_log_error("%s", err);
        return 1;
    }
    if (!o.xds_cert != !o.xds_key) {
        bgw_log_error("--xds-cert and --xds-key go together");
        bgw_k8s_conn_free(&kcfg.conn);
        return 1;
    }
    if (o.xds_client_ca && !o.xds_cert) {
        bgw_log_error("--xds-client-ca needs --xds-cert and --xds-key");
        bgw_k8s_conn_free(&kcfg.conn);
        return 1;
    }

    char *token = NULL;
    if (o.token_file && !(token = read_token(o.token_file, err, sizeof err))) {
        bgw_log_error("%s", err);
        bgw_k8s_conn_free(&kcfg.conn);
        return 1;
    }
    int loopback = bgw_admin_http_is_loopback(o.admin_listen);
    if (loopback < 0) {
        bgw_log_error("--admin-listen: \"%s\" is not a numeric IP:PORT", o.admin_listen);
        free(token);
        bgw_k8s_conn_free(&kcfg.conn);
        return 1;
    }
    if (!loopback && !token) {
        bgw_log_error("--admin-listen %s is not a loopback address: refusing to serve the admin API there "
                      "without --admin-token-file", o.admin_listen);
        bgw_k8s_conn_free(&kcfg.conn);
        return 1;
    }

    /* Signals are taken synchronously by this thread; the server threads inherit the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct bgw_store_error serr;
    struct bgw_store *store = NULL;
    struct bgw_store_backend cm = {0};
    if (o.state_configmap) {
        struct bgw_k8s_conn cmconn;     /* a connection of its own, taken over by the backend */
        int crc = o.kubeconfig ? bgw_k8s_conn_from_kubeconfig(&cmconn, o.kubeconfig, err, sizeof err)
                               : bgw_k8s_conn_in_cluster(&cmconn, err, sizeof err);
        if (crc == 0)
            crc = bgw_store_configmap_new(&cmconn, o.state_configmap, &cm, err, sizeof err);
        if (crc < 0) {
            bgw_log_error("%s", err);
            free(token);
            bgw_k8s_conn_free(&kcfg.conn);
            return 1;
        }
        store = bgw_store_open_backend(&cm, &serr);
    } else {
        store = bgw_store_open(o.state_dir, &serr);
    }
    if (!store) {
        bgw_log_error("%s", serr.message);
        free(token);
        bgw_k8s_conn_free(&kcfg.conn);
        return 1;
    }
    if (o.bootstrap) {
        bool applied;
        if (bgw_store_bootstrap(store, o.bootstrap, &applied, &serr) < 0) {
            bgw_log_error("%s", serr.message);
            bgw_store_close(store);
            free(token);
            bgw_k8s_conn_free(&kcfg.conn);
            return 1;
        }
        if (applied)
            bgw_log_info("bootstrap %s loaded into the empty state: version %llu", o.bootstrap,
                         (unsigned long long)bgw_store_version(store));
        else
            bgw_log_info("bootstrap %s ignored: the state in %s already has a history", o.bootstrap,
                         o.state_configmap ? o.state_configmap : o.state_dir);
    }
    if (o.state_configmap) {
        /* a ConfigMap that did not exist is created now (empty, or with what bootstrap loaded) */
        int wrc = bgw_store_ensure_saved(store, &serr);
        if (wrc < 0)
            snprintf(err, sizeof err, "%s", serr.message);
        else
            wrc = bgw_store_configmap_watch(cm.impl, store, 0, err, sizeof err);
        if (wrc < 0) {
            bgw_log_error("%s", err);
            bgw_store_close(store);
            free(token);
            bgw_k8s_conn_free(&kcfg.conn);
            return 1;
        }
    }

    struct bgw_xds_tls tls = {o.xds_cert, o.xds_key, o.xds_client_ca};
    struct bgw_xds_server *xds = bgw_xds_server_start(o.xds_listen, o.xds_cert ? &tls : NULL, err, sizeof err);
    if (!xds) {
        bgw_log_error("--xds-listen: %s", err);
        bgw_store_close(store);
        free(token);
        bgw_k8s_conn_free(&kcfg.conn);
        return 1;
    }
    struct bgw_builder *builder = bgw_builder_new(publish, xds);
    if (!builder) {
        bgw_log_error("out of memory");
        bgw_xds_server_stop(xds);
        bgw_store_close(store);
        free(token);
        bgw_k8s_conn_free(&kcfg.conn);
        return 1;
    }
    struct bgw_health_options hopts = {.report = health_report, .report_arg = builder,
                                       .seed = (unsigned)getpid()};
    struct bgw_health *health = bgw_health_new(&hopts);
    if (!health || bgw_health_start(health, err, sizeof err) < 0) {
        bgw_log_error("%s", health ? err : "out of memory");
        bgw_health_free(health);
        bgw_builder_free(builder);
        bgw_xds_server_stop(xds);
        bgw_store_close(store);
        free(token);
        return 1;
    }
    bgw_builder_add_watcher(builder, bgw_health_update, health);
    struct bgw_k8s_watcher *k8s = NULL;
    if (o.kubeconfig || o.in_cluster) {
        kcfg.changed = k8s_changed;
        kcfg.changed_arg = builder;
        char *server = strdup(kcfg.conn.server);
        k8s = bgw_k8s_watcher_start(&kcfg, err, sizeof err);
        if (!k8s) {
            bgw_log_error("%s", err);
            free(server);
            bgw_health_stop(health);
            bgw_builder_free(builder);
            bgw_health_free(health);
            bgw_xds_server_stop(xds);
            bgw_store_close(store);
            free(token);
            return 1;
        }
        bgw_builder_set_k8s(builder, bgw_k8s_watcher_lookup, k8s);
        /* the first push should carry the cluster's endpoints: wait (bounded) for the first lists */
        if (bgw_k8s_watcher_wait_synced(k8s, K8S_SYNC_WAIT_MS))
            bgw_log_info("kubernetes: watching Services and EndpointSlices of %s", server ? server : "");
        else
            bgw_log_warn("kubernetes: %s not listed within %d ms; serving meanwhile, endpoints follow when the "
                         "lists succeed", server ? server : "the API server", K8S_SYNC_WAIT_MS);
        free(server);
    }
    /* The JWKS fetcher feeds the builder: registered before the first document reaches it. */
    struct bgw_jwks_options jo = {.refresh_s = o.jwks_refresh_s, .state_dir = o.state_dir};
    struct bgw_jwks *jwks = bgw_jwks_start(builder, &jo);
    if (!jwks) {
        bgw_log_error("out of memory");
        bgw_health_stop(health);
        bgw_k8s_watcher_stop(k8s);
        bgw_builder_free(builder);
        bgw_health_free(health);
        bgw_xds_server_stop(xds);
        bgw_store_close(store);
        free(token);
        return 1;
    }
    bgw_builder_set_jwks(builder, bgw_jwks_lookup, jwks);
    bgw_builder_add_watcher(builder, bgw_jwks_watch, jwks);
    bgw_store_set_listener(store, store_changed, builder);

    struct bgw_admin_api *api = bgw_admin_api_new(store, xds, token);
    if (api)
        bgw_admin_api_set_builder(api, builder);
    struct bgw_admin_http *http = api ? bgw_admin_http_start(api, o.admin_listen, err, sizeof err) : NULL;
    if (!http) {
        bgw_log_error("%s", api ? err : "out of memory");
        bgw_admin_api_free(api);
        bgw_store_set_listener(store, NULL, NULL);
        bgw_jwks_stop(jwks);
        bgw_health_stop(health);
        bgw_k8s_watcher_stop(k8s);
        bgw_builder_free(builder);
        bgw_health_free(health);
        bgw_jwks_free(jwks);
        bgw_xds_server_stop(xds);
        bgw_store_close(store);
        free(token);
        return 1;
    }
    bgw_log_info("serving state %s%s (version %llu); admin API on %s (port %d)%s; config stream on %s%s",
                 o.state_configmap ? "in ConfigMap " : "", o.state_configmap ? o.state_configmap : o.state_dir,
                 (unsigned long long)bgw_store_version(store), o.admin_listen,
                 bgw_admin_http_port(http),
                 token ? " (bearer token required)" : "", o.xds_listen,
                 o.xds_client_ca ? " (mTLS)" : o.xds_cert ? " (TLS)" : "");

    for (;;) {
        int sig = sigwaitinfo(&set, NULL);
        if (sig < 0)
            continue;
        bgw_log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }
    bgw_admin_http_stop(http);
    bgw_admin_api_free(api);
    bgw_store_set_listener(store, NULL, NULL);
    bgw_jwks_stop(jwks);            /* no more source changes, then no more lookups, then free */
    bgw_health_stop(health);        /* no more reports to the builder */
    bgw_k8s_watcher_stop(k8s);
    bgw_builder_free(builder);      /* no more watcher calls into the checker or the fetcher */
    bgw_health_free(health);
    bgw_jwks_free(jwks);
    bgw_xds_server_stop(xds);
    bgw_store_close(store);
    free(token);
    bgw_log_info("stopped");
    return 0;
}
