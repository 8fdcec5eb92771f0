/*
 * main.c - bgw-proxy: flags, the config source (a file, or the control plane's config stream), workers,
 * the admin listener, signals.
 *
 * Standalone mode: the main thread builds a snapshot from the file, publishes it, wakes the workers, and
 * waits for signals (SIGHUP: reload the file; SIGTERM/SIGINT: drain and exit 0). Managed mode: the same,
 * except that snapshots come from the stream thread of source_xds.c (and from --cache-dir at start).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "access_log.h"
#include "admin.h"
#include "cli.h"
#include "config.h"
#include "fileio.h"
#include "log.h"
#include "ratelimit_redis.h"
#include "snapshot.h"
#include "source_xds.h"
#include "worker.h"

/* Workers and everything they hold live until exit; a global keeps them reachable to leak checkers. */
static struct bgw_worker **volatile g_workers;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bgw-proxy --config FILE [options]\n"
            "       bgw-proxy --control-plane HOST:PORT --node-id ID [--cache-dir DIR] [options]\n"
            "\n"
            "  --config FILE             serve the config document in FILE (SIGHUP re-reads it)\n"
            "  --listen ADDR:PORT        where clients connect (default 0.0.0.0:8080)\n"
            "  --admin ADDR:PORT         admin listener: /healthz /readyz /metrics /config (default 127.0.0.1:9901)\n"
            "  --workers N               worker threads (default: CPU count)\n"
            "  --drain-timeout SECONDS   on SIGTERM, time given to in-flight requests (default 15)\n"
            "  --header-timeout-ms MS    time for a client to send a request head (default 10000)\n"
            "  --idle-timeout-ms MS      keep-alive idle time of a client connection (default 60000)\n"
            "  --max-connections N       client connections held at once (default 100000)\n"
            "  --log-format text|json    log line format (default text)\n"
            "  --access-log FILE|-       write a JSON access log line per request to FILE (appended) or stdout\n"
            "  --control-plane HOST:PORT managed mode: config from bgw-control's config stream\n"
            "  --node-id ID              this proxy's name towards the control plane (managed mode)\n"
            "  --cache-dir DIR           keep the last accepted config in DIR and start from it\n"
            "  --ca FILE                 TLS to the control plane, trusting this CA (PEM)\n"
            "  --cert FILE, --key FILE   client certificate and key for mTLS (PEM)\n"
            "  --redis HOST:PORT         Redis for rate limits of scope global (unreachable: fail open)\n"
            "  --help, --version\n"
            "Every flag can also be set as BGW_<FLAG>, e.g. BGW_LISTEN=127.0.0.1:8080.\n");
}

struct opts {
    const char *config, *listen, *admin, *control_plane;
    const char *node_id, *cache_dir, *ca, *cert, *key, *redis;
    const char *access_log;
    unsigned workers;
    unsigned drain_timeout_s;
    struct bgw_proxy_limits lim;
    enum bgw_log_format log_format;
};

static int parse_uint(const char *flag, const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *s == 0 || *end || s[0] == '-' || v < min || v > max) {
        fprintf(stderr, "bgw-proxy: --%s: \"%s\" is not a whole number from %lu to %lu\n", flag, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

/* Returns -1 to go on, or an exit code. */
static int parse_flags(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {"config", required_argument, 0, 'c'},
        {"listen", required_argument, 0, 'l'},
        {"admin", required_argument, 0, 'a'},
        {"workers", required_argument, 0, 'w'},
        {"drain-timeout", required_argument, 0, 'd'},
        {"header-timeout-ms", required_argument, 0, 'H'},
        {"idle-timeout-ms", required_argument, 0, 'I'},
        {"max-connections", required_argument, 0, 'm'},
        {"log-format", required_argument, 0, 'f'},
        {"control-plane", required_argument, 0, 'p'},
        {"node-id", required_argument, 0, 'n'},
        {"cache-dir", required_argument, 0, 'C'},
        {"ca", required_argument, 0, 1},
        {"cert", required_argument, 0, 2},
        {"key", required_argument, 0, 3},
        {"redis", required_argument, 0, 4},
        {"access-log", required_argument, 0, 5},
        {0, 0, 0, 0},
    };
    int n;
    char **av = bgw_cli_with_env(argc, argv, longopts, &n);
    unsigned long v;
    int c;
    opterr = 1;
    while ((c = getopt_long(n, av, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'V': printf("bgw-proxy %s\n", BGW_VERSION); return 0;
        case 'c': o->config = optarg; break;
        case 'l': o->listen = optarg; break;
        case 'a': o->admin = optarg; break;
        case 'w': if (parse_uint("workers", optarg, 1, 256, &v) < 0) return 2; o->workers = (unsigned)v; break;
        case 'd': if (parse_uint("drain-timeout", optarg, 0, 3600, &v) < 0) return 2; o->drain_timeout_s = (unsigned)v; break;
        case 'H': if (parse_uint("header-timeout-ms", optarg, 1, 3600000, &v) < 0) return 2; o->lim.header_timeout_ms = (uint32_t)v; break;
        case 'I': if (parse_uint("idle-timeout-ms", optarg, 1, 86400000, &v) < 0) return 2; o->lim.idle_timeout_ms = (uint32_t)v; break;
        case 'm': if (parse_uint("max-connections", optarg, 1, 10000000, &v) < 0) return 2; o->lim.max_connections = (uint32_t)v; break;
        case 'f':
            if (bgw_log_format_parse(optarg, &o->log_format) < 0) {
                fprintf(stderr, "bgw-proxy: --log-format: \"%s\" is not text or json\n", optarg);
                return 2;
            }
            break;
        case 'p': o->control_plane = optarg; break;
        case 'n': o->node_id = optarg; break;
        case 'C': o->cache_dir = optarg; break;
        case 1: o->ca = optarg; break;
        case 2: o->cert = optarg; break;
        case 3: o->key = optarg; break;
        case 4: o->redis = optarg; break;
        case 5: o->access_log = optarg; break;
        default: usage(stderr); return 2;
        }
    }
    if (optind < n) {
        fprintf(stderr, "bgw-proxy: unexpected argument \"%s\"\n", av[optind]);
        usage(stderr);
        return 2;
    }
    return -1;
}

/* Read, validate and compile the config file. Returns a snapshot, or NULL with one line in err. */
static struct bgw_snapshot *load_file(const char *path, char *err, size_t errlen)
{
    size_t len;
    errno = 0;
    char *text = bgw_read_file(path, (size_t)64 << 20, &len);
    if (!text) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    struct bgw_config *cfg = NULL;
    char e[BGW_ERR_MAX];
    if (bgw_config_parse(text, len, &cfg, e, sizeof e) < 0) {
        free(text);
        snprintf(err, errlen, "%s: %s", path, e);
        return NULL;
    }
    char version[80];
    if (cfg->version) snprintf(version, sizeof version, "%s", cfg->version);
    else bgw_snapshot_hash_version(text, len, version);
    free(text);
    struct bgw_snapshot *s = bgw_snapshot_build(cfg, version, e, sizeof e);
    if (!s) snprintf(err, errlen, "%s: %s", path, e);
    return s;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    struct opts o = {
        .listen = "0.0.0.0:8080",
        .admin = "127.0.0.1:9901",
        .drain_timeout_s = 15,
        .lim = {.header_timeout_ms = 10000, .idle_timeout_ms = 60000, .upstream_idle_timeout_ms = 30000,
                .max_connections = 100000},
    };
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o.workers = ncpu > 0 ? (unsigned)ncpu : 1;
    int rc = parse_flags(argc, argv, &o);
    if (rc >= 0) return rc;
    bgw_log_init("bgw-proxy", o.log_format, BGW_LOG_INFO);
    if (o.control_plane && o.config) {
        fprintf(stderr, "bgw-proxy: --config and --control-plane exclude each other\n");
        usage(stderr);
        return 2;
    }
    if (!o.config && !o.control_plane) {
        fprintf(stderr, "bgw-proxy: --config FILE or --control-plane HOST:PORT is required\n");
        usage(stderr);
        return 2;
    }
    if (o.control_plane && (!o.node_id || !*o.node_id)) {
        fprintf(stderr, "bgw-proxy: --control-plane needs --node-id ID\n");
        usage(stderr);
        return 2;
    }
    if (!o.control_plane && (o.node_id || o.cache_dir || o.ca || o.cert || o.key)) {
        fprintf(stderr, "bgw-proxy: --node-id, --cache-dir, --ca, --cert and --key are for managed mode (--control-plane)\n");
        usage(stderr);
        return 2;
    }
    if (o.redis) {
        char rerr[300];
        if (bgw_rlredis_configure(o.redis, rerr, sizeof rerr) < 0) {
            fprintf(stderr, "bgw-proxy: %s\n", rerr);
            return 2;
        }
    }
    if (!o.cert != !o.key) {
        fprintf(stderr, "bgw-proxy: --cert and --key go together\n");
        return 2;
    }

    /* Signals are taken synchronously by this thread; workers inherit the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    char err[1024];
    char version[80] = "";
    if (o.config) {
        struct bgw_snapshot *s = load_file(o.config, err, sizeof err);
        if (!s) {
            bgw_log_error("%s", err);
            return 1;
        }
        snprintf(version, sizeof version, "%s", s->version);
        bgw_snapshot_publish(s);
        bgw_snapshot_count_update(true);
    } else if (o.cache_dir) {
        struct bgw_snapshot *s = bgw_xds_cache_load(o.cache_dir, err, sizeof err);
        if (s) {
            snprintf(version, sizeof version, "%s", s->version);
            bgw_snapshot_publish(s);
            bgw_log_info("serving the cached config (version %s) from %s until the control plane answers", version,
                         o.cache_dir);
        } else if (err[0]) {
            bgw_log_error("--cache-dir: ignoring the cached config: %s", err);
        }
    }

    if (o.access_log && *o.access_log && bgw_access_log_start(o.access_log, o.workers, err, sizeof err) < 0) {
        bgw_log_error("%s", err);
        return 1;
    }
    o.lim.workers = o.workers;
    o.lim.max_connections = (o.lim.max_connections + o.workers - 1) / o.workers;
    struct bgw_worker **ws = g_workers = bgw_workers_start(o.workers, o.listen, &o.lim, err, sizeof err);
    if (!ws) {
        bgw_log_error("%s", err);
        return 1;
    }
    struct bgw_admin *admin = bgw_admin_start(o.admin, ws, o.workers, err, sizeof err);
    if (!admin) {
        bgw_log_error("%s", err);
        return 1;
    }
    struct bgw_xds_source *xds = NULL;
    if (o.control_plane) {
        struct bgw_xds_source_opts xo = {
            .control_plane = o.control_plane, .node_id = o.node_id, .cache_dir = o.cache_dir,
            .ca_file = o.ca, .cert_file = o.cert, .key_file = o.key, .workers = ws, .n_workers = o.workers,
        };
        xds = bgw_xds_source_start(&xo, version[0] ? version : NULL, err, sizeof err);
        if (!xds) {
            bgw_log_error("--control-plane %s: %s", o.control_plane, err);
            return 1;
        }
        bgw_log_info("managed by %s as node %s on %s with %u workers; admin on %s", o.control_plane, o.node_id,
                     o.listen, o.workers, o.admin);
    } else {
        bgw_log_info("serving %s (version %s) on %s with %u workers; admin on %s", o.config, version, o.listen,
                     o.workers, o.admin);
    }

    for (;;) {
        int sig = sigwaitinfo(&set, NULL);
        if (sig < 0) continue;
        if (sig == SIGHUP && !o.config) {
            bgw_log_info("SIGHUP ignored: the config comes from the control plane");
            continue;
        }
        if (sig == SIGHUP) {
            struct bgw_snapshot *ns = load_file(o.config, err, sizeof err);
            if (!ns) {
                bgw_snapshot_count_update(false);
                bgw_log_error("reload rejected, keeping the running config: %s", err);
                continue;
            }
            snprintf(version, sizeof version, "%s", ns->version);
            bgw_snapshot_publish(ns);
            bgw_snapshot_count_update(true);
            bgw_workers_notify(ws, o.workers);
            bgw_log_info("config reloaded from %s: version %s", o.config, version);
            continue;
        }
        bgw_log_info("%s: draining (at most %u s)", sig == SIGTERM ? "SIGTERM" : "SIGINT", o.drain_timeout_s);
        bgw_xds_source_stop(xds);   /* the config stays as it is while in-flight requests finish */
        bgw_workers_drain(ws, o.workers, o.drain_timeout_s * 1000u);
        bgw_admin_stop(admin);
        bgw_access_log_stop();
        bgw_log_info("stopped");
        return 0;
    }
}
