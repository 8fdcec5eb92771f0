/*
 * main.c - bgwctl: the CLI for bgw-control's admin API. Global flags, then one command:
 *
 *   bgwctl [--server URL] [--token-file F] [--timeout SECONDS] COMMAND [ARGS]
 *
 * get, apply, delete, status, endpoints, version (docs/bgwctl.md has the reference). Exit status: 0 on
 * success, 1 on an API error (the server's message and field printed) or when the server cannot be reached,
 * 2 on a usage error (usage on stderr).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "cli.h"
#include "fileio.h"
#include "apiclient.h"
#include "table.h"
#include "views.h"
#include "yamljson.h"

#define BGW__CTL_OK 0
#define BGW__CTL_ERROR 1
#define BGW__CTL_USAGE 2

#define BGW__CTL_DEFAULT_SERVER "http://127.0.0.1:9000"
#define BGW__CTL_DEFAULT_TIMEOUT_S 10.0
#define BGW__CTL_MAX_FILE (64u << 20)
#define BGW__CTL_ERR 1024

enum bgw__format { BGW__FMT_TABLE = 0, BGW__FMT_JSON, BGW__FMT_YAML };

/* What the flags and the command line say. */
struct bgw__ctl {
    const char *server;
    const char *token_file;
    double timeout_s;
    enum bgw__format format;
    bool format_given;
    const char *file;
    char **args;                /* positional arguments after the command */
    int nargs;
    bool have_token;
    struct bgw_apiclient client;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bgwctl [--server URL] [--token-file FILE] [--timeout SECONDS] COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  get KIND [NAME] [-o table|json|yaml]    list the objects of a kind, or show one\n"
            "  apply -f FILE [-o table|json|yaml]      create or replace every object of a document\n"
            "                                          (JSON or YAML; -f - reads standard input)\n"
            "  delete KIND NAME                        delete one object\n"
            "  status [-o table|json|yaml]             the proxies known to bgw-control\n"
            "  endpoints SERVICE [-o table|json|yaml]  a service's endpoints and their health\n"
            "  version [-o table|json|yaml]            bgwctl's version and the server's config version\n"
            "\n"
            "KIND: services, routes, rate_limits, auth_policies (also singular, and with - for _)\n"
            "\n"
            "flags (each also read from BGW_<FLAG>: BGW_SERVER, BGW_TOKEN_FILE, BGW_TIMEOUT,\n"
            "BGW_OUTPUT for -o, BGW_FILENAME for -f; the command line wins):\n"
            "  --server URL         the admin API (default %s)\n"
            "  --token-file FILE    a file holding the bearer token for the admin API\n"
            "  --timeout SECONDS    give up on a request after this long (default %g)\n"
            "  -h, --help           print this help\n"
            "  --version            print \"bgwctl VERSION\"\n"
            "\n"
            "exit status: 0 success, 1 API error or server unreachable, 2 usage error\n",
            BGW__CTL_DEFAULT_SERVER, BGW__CTL_DEFAULT_TIMEOUT_S);
}

/* Prints "bgwctl: MESSAGE" and the usage on stderr; returns the usage exit status. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bgwctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
    usage(stderr);
    return BGW__CTL_USAGE;
}

static void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bgwctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
}

/* ---- talking to the server ---- */

static int connect_client(struct bgw__ctl *ctl)
{
    char err[BGW__CTL_ERR];
    char *token = NULL;

    if (ctl->token_file && *ctl->token_file) {
        token = bgw_apiclient_read_token(ctl->token_file, err, sizeof err);
        if (!token) {
            errorf("%s", err);
            return -1;
        }
        ctl->have_token = true;
    }
    int rc = bgw_apiclient_init(&ctl->client, ctl->server, token, ctl->timeout_s, err, sizeof err);
    free(token);
    if (rc < 0) errorf("%s", err);
    return rc;
}

/* Prints the server's error answer; returns the exit status for it. */
static int api_error(const struct bgw__ctl *ctl, const struct bgw_apiclient_response *r)
{
    json_t *doc = json_loadb(r->body, r->len, 0, NULL);
    json_t *e = json_object_get(doc, "error");

    if (json_is_object(e)) {
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        const char *field = json_string_value(json_object_get(e, "field"));
        char tail[160] = "";
        if (code && *code) snprintf(tail, sizeof tail, " (%s)", code);
        else snprintf(tail, sizeof tail, " (HTTP %ld)", r->status);
        if (!msg || !*msg) msg = "no message";
        if (field && *field && !strstr(msg, field))     /* the field, unless the message names it */
            errorf("%s: %s%s", field, msg, tail);
        else
            errorf("%s%s", msg, tail);
    } else if (json_is_string(e)) {
        errorf("%s (HTTP %ld)", json_string_value(e), r->status);
    } else {
        size_t n = strcspn(r->body, "\r\n");
        if (n > 200) n = 200;
        if (n > 0) errorf("the server answered HTTP %ld: %.*s", r->status, (int)n, r->body);
        else errorf("the server answered HTTP %ld", r->status);
    }
    if (r->status == 401 && !ctl->have_token)
        errorf("the admin API wants a token: give --token-file FILE (or BGW_TOKEN_FILE)");
    json_decref(doc);
    return BGW__CTL_ERROR;
}

/*
 * method path [body]; on a 2xx answer returns 0 and, when out is not NULL, the answer's JSON in *out (an
 * empty answer is JSON null). Otherwise prints what went wrong and returns the exit status.
 */
static int call(struct bgw__ctl *ctl, const char *method, const char *path, const char *body, json_t **out)
{
    struct bgw_apiclient_response r;
    char err[BGW__CTL_ERR];

    if (bgw_apiclient_call(&ctl->client, method, path, body, &r, err, sizeof err) < 0) {
        errorf("%s", err);
        return BGW__CTL_ERROR;
    }
    if (r.status < 200 || r.status > 299) {
        int rc = api_error(ctl, &r);
        bgw_apiclient_response_free(&r);
        return rc;
    }
    if (out) {
        json_error_t jerr;
        if (r.len == 0) {
            *out = json_null();
        } else if (!(*out = json_loadb(r.body, r.len, JSON_DECODE_ANY, &jerr))) {
            errorf("%s %s: the server's answer is not JSON (%s)", method, path, jerr.text);
            bgw_apiclient_response_free(&r);
            return BGW__CTL_ERROR;
        }
    }
    bgw_apiclient_response_free(&r);
    return BGW__CTL_OK;
}

/* ---- output ---- */

static int print_doc(const json_t *v, enum bgw__format format)
{
    char *s = NULL;

    if (format == BGW__FMT_YAML) {
        s = bgw_yaml_from_json(v);
        if (s) fputs(s, stdout);
    } else {
        s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
        if (s) printf("%s\n", s);
    }
    if (!s) {
        errorf("out of memory");
        return BGW__CTL_ERROR;
    }
    free(s);
    return BGW__CTL_OK;
}

static int print_table(int rc_fill, struct bgw_table *t)
{
    if (rc_fill < 0) {
        errorf("out of memory");
        return BGW__CTL_ERROR;
    }
    bgw_table_print(t, stdout);
    bgw_table_free(t);
    return BGW__CTL_OK;
}

/* The list in an answer: the answer itself when it is an array, else its "items" (or "endpoints"). */
static const json_t *answer_items(const json_t *ans)
{
    if (json_is_array(ans)) return ans;
    const json_t *items = json_object_get(ans, "items");
    if (!json_is_array(items)) items = json_object_get(ans, "endpoints");
    return json_is_array(items) ? items : NULL;
}

static int expect_items(const json_t *ans, const char *path, const json_t **items)
{
    *items = answer_items(ans);
    if (*items) return 0;
    errorf("GET %s: the answer has no \"items\" list", path);
    return -1;
}

/* ---- commands ---- */

static int kind_arg(const char *s, enum bgw_ctl_kind *kind)
{
    if (bgw_ctl_kind_parse(s, kind) == 0) return 0;
    usage_error("unknown kind \"%s\" (services, routes, rate_limits, auth_policies)", s);
    return -1;
}

/* "/v1/KIND" or "/v1/KIND/NAME" (escaped) into a new string, or NULL when out of memory. */
static char *object_path(enum bgw_ctl_kind kind, const char *name, const char *suffix)
{
    char *esc = name ? bgw_apiclient_escape(name) : NULL;
    char *p = NULL;

    if (name && !esc) return NULL;
    if (asprintf(&p, "/v1/%s%s%s%s", bgw_ctl_kind_name(kind), esc ? "/" : "", esc ? esc : "", suffix ? suffix : "") < 0)
        p = NULL;
    free(esc);
    return p;
}

static int cmd_get(struct bgw__ctl *ctl)
{
    enum bgw_ctl_kind kind;
    json_t *ans = NULL;
    const json_t *items;
    struct bgw_table t;

    if (ctl->nargs < 1) return usage_error("get: missing KIND");
    if (ctl->nargs > 2) return usage_error("get: unexpected argument \"%s\"", ctl->args[2]);
    if (kind_arg(ctl->args[0], &kind) < 0) return BGW__CTL_USAGE;
    const char *name = ctl->nargs == 2 ? ctl->args[1] : NULL;
    char *path = object_path(kind, name, NULL);
    if (!path) {
        errorf("out of memory");
        return BGW__CTL_ERROR;
    }
    if (connect_client(ctl) < 0) {
        free(path);
        return BGW__CTL_ERROR;
    }
    int rc = call(ctl, "GET", path, NULL, &ans);
    if (rc != BGW__CTL_OK) goto out;
    if (ctl->format != BGW__FMT_TABLE) {
        rc = print_doc(ans, ctl->format);
    } else if (name) {
        json_t *one = json_pack("[O]", ans);
        rc = one ? print_table(bgw_view_objects(kind, one, &t), &t) : BGW__CTL_ERROR;
        json_decref(one);
    } else if (expect_items(ans, path, &items) < 0) {
        rc = BGW__CTL_ERROR;
    } else {
        rc = print_table(bgw_view_objects(kind, items, &t), &t);
    }
out:
    json_decref(ans);
    free(path);
    return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

/* The document in file ("-": standard input), JSON or YAML. NULL: the error is printed. */
static json_t *load_document(const char *file)
{
    bool is_stdin = strcmp(file, "-") == 0;
    const char *label = is_stdin ? "<stdin>" : file;
    FILE *f = is_stdin ? stdin : fopen(file, "rb");
    char err[BGW__CTL_ERR];
    json_error_t jerr;
    size_t len = 0;
    json_t *doc = NULL;

    if (!f) {
        errorf("%s: cannot read: %s", label, strerror(errno));
        return NULL;
    }
    errno = 0;
    char *text = bgw_read_stream(f, BGW__CTL_MAX_FILE, &len);
    int saved = errno;
    if (!is_stdin) fclose(f);
    if (!text) {
        errorf("%s: cannot read: %s", label, strerror(saved));
        return NULL;
    }
    if (strlen(text) != len) {
        errorf("%s: the file contains a NUL byte", label);
        free(text);
        return NULL;
    }
    size_t lead = strspn(text, " \t\r\n");
    bool yaml = ends_with(file, ".yaml") || ends_with(file, ".yml");
    bool json = ends_with(file, ".json") || (!yaml && (text[lead] == '{' || text[lead] == '['));
    if (json) {
        doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc && !ends_with(file, ".json")) doc = bgw_yaml_to_json(text, len, err, sizeof err);
        if (!doc) errorf("%s: line %d, column %d: %s", label, jerr.line, jerr.column, jerr.text);
    } else {
        doc = bgw_yaml_to_json(text, len, err, sizeof err);
        if (!doc) errorf("%s: %s", label, err);
    }
    free(text);
    if (doc && !json_is_object(doc)) {
        errorf("%s: the document must be a mapping (services, routes, rate_limits, auth_policies)", label);
        json_decref(doc);
        doc = NULL;
    }
    return doc;
}

/* One line per object: the server's summary ({"items": [{"kind", "name", "result"}...]}) when it gives one,
 * else the objects of the document; then the config version. */
static void print_applied(const json_t *doc, const json_t *ans)
{
    static const enum bgw_ctl_kind order[] = {BGW_CTL_KIND_SERVICES, BGW_CTL_KIND_RATE_LIMITS,
                                              BGW_CTL_KIND_AUTH_POLICIES, BGW_CTL_KIND_ROUTES};
    const json_t *summary = json_object_get(ans, "items");
    size_t count = 0, i;
    json_t *item;

    if (json_is_array(summary)) {
        json_array_foreach(summary, i, item) {
            const char *kind = json_string_value(json_object_get(item, "kind"));
            const char *name = json_string_value(json_object_get(item, "name"));
            const char *result = json_string_value(json_object_get(item, "result"));
            printf("%s/%s %s\n", kind ? kind : "?", name ? name : "?", result ? result : "applied");
            count++;
        }
    } else {
        for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
            const json_t *list = json_object_get(doc, bgw_ctl_kind_name(order[k]));
            json_array_foreach(list, i, item) {
                const char *name = json_string_value(json_object_get(item, "name"));
                printf("%s/%s applied\n", bgw_ctl_kind_name(order[k]), name ? name : "?");
                count++;
            }
        }
    }
    if (count == 0) printf("nothing to apply\n");
    const json_t *version = json_object_get(ans, "version");
    if (json_is_string(version))
        printf("config version %s\n", json_string_value(version));
    else if (json_is_integer(version))
        printf("config version %" JSON_INTEGER_FORMAT "\n", json_integer_value(version));
}

static int cmd_apply(struct bgw__ctl *ctl)
{
    json_t *ans = NULL;

    if (!ctl->file) return usage_error("apply: missing -f FILE");
    if (ctl->nargs > 0) return usage_error("apply: unexpected argument \"%s\"", ctl->args[0]);
    json_t *doc = load_document(ctl->file);
    if (!doc) return BGW__CTL_ERROR;
    char *body = json_dumps(doc, JSON_COMPACT);
    int rc = BGW__CTL_ERROR;
    if (!body) errorf("out of memory");
    else if (connect_client(ctl) == 0 && (rc = call(ctl, "POST", "/v1/apply", body, &ans)) == BGW__CTL_OK) {
        if (ctl->format != BGW__FMT_TABLE) rc = print_doc(ans, ctl->format);
        else print_applied(doc, ans);
    }
    free(body);
    json_decref(ans);
    json_decref(doc);
    return rc;
}

static int cmd_delete(struct bgw__ctl *ctl)
{
    enum bgw_ctl_kind kind;

    if (ctl->format_given) return usage_error("delete: -o is not an option of delete");
    if (ctl->nargs < 2) return usage_error("delete: missing KIND or NAME (delete KIND NAME)");
    if (ctl->nargs > 2) return usage_error("delete: unexpected argument \"%s\"", ctl->args[2]);
    if (kind_arg(ctl->args[0], &kind) < 0) return BGW__CTL_USAGE;
    char *path = object_path(kind, ctl->args[1], NULL);
    if (!path) {
        errorf("out of memory");
        return BGW__CTL_ERROR;
    }
    int rc = connect_client(ctl) < 0 ? BGW__CTL_ERROR : call(ctl, "DELETE", path, NULL, NULL);
    if (rc == BGW__CTL_OK) printf("%s/%s deleted\n", bgw_ctl_kind_name(kind), ctl->args[1]);
    free(path);
    return rc;
}

static int cmd_status(struct bgw__ctl *ctl)
{
    static const char path[] = "/v1/dataplanes";
    json_t *ans = NULL;
    const json_t *items;
    struct bgw_table t;

    if (ctl->nargs > 0) return usage_error("status: unexpected argument \"%s\"", ctl->args[0]);
    if (connect_client(ctl) < 0) return BGW__CTL_ERROR;
    int rc = call(ctl, "GET", path, NULL, &ans);
    if (rc == BGW__CTL_OK) {
        if (ctl->format != BGW__FMT_TABLE) rc = print_doc(ans, ctl->format);
        else if (expect_items(ans, path, &items) < 0) rc = BGW__CTL_ERROR;
        else rc = print_table(bgw_view_dataplanes(items, &t), &t);
    }
    json_decref(ans);
    return rc;
}

static int cmd_endpoints(struct bgw__ctl *ctl)
{
    json_t *ans = NULL;
    const json_t *items;
    struct bgw_table t;

    if (ctl->nargs < 1) return usage_error("endpoints: missing SERVICE");
    if (ctl->nargs > 1) return usage_error("endpoints: unexpected argument \"%s\"", ctl->args[1]);
    char *path = object_path(BGW_CTL_KIND_SERVICES, ctl->args[0], "/endpoints");
    if (!path) {
        errorf("out of memory");
        return BGW__CTL_ERROR;
    }
    int rc = connect_client(ctl) < 0 ? BGW__CTL_ERROR : call(ctl, "GET", path, NULL, &ans);
    if (rc == BGW__CTL_OK) {
        if (ctl->format != BGW__FMT_TABLE) rc = print_doc(ans, ctl->format);
        else if (expect_items(ans, path, &items) < 0) rc = BGW__CTL_ERROR;
        else rc = print_table(bgw_view_endpoints(items, &t), &t);
    }
    json_decref(ans);
    free(path);
    return rc;
}

/* bgwctl's version, then the server's config version when the server answers (exit 0 either way). */
static int cmd_version(struct bgw__ctl *ctl)
{
    json_t *ans = NULL;
    json_t *server_version = NULL;

    if (ctl->nargs > 0) return usage_error("version: unexpected argument \"%s\"", ctl->args[0]);
    if (connect_client(ctl) == 0 && call(ctl, "GET", "/v1/config", NULL, &ans) == BGW__CTL_OK) {
        server_version = json_object_get(ans, "version");
        if (!server_version) errorf("GET /v1/config: the answer has no \"version\"");
    }
    if (ctl->format == BGW__FMT_TABLE) {
        printf("bgwctl %s\n", BGW_VERSION);
        if (json_is_string(server_version))
            printf("server config version %s\n", json_string_value(server_version));
        else if (server_version)
            printf("server config version %" JSON_INTEGER_FORMAT "\n", json_integer_value(server_version));
    } else {
        json_t *v = json_pack("{s:s, s:s, s:O?}", "bgwctl", BGW_VERSION, "server", ctl->server,
                              "config_version", server_version);
        if (!v || print_doc(v, ctl->format) != BGW__CTL_OK) {
            json_decref(v);
            json_decref(ans);
            return BGW__CTL_ERROR;
        }
        json_decref(v);
    }
    json_decref(ans);
    return BGW__CTL_OK;
}

/* ---- command line ---- */

enum { OPT_SERVER = 1, OPT_TOKEN_FILE, OPT_TIMEOUT };

static const struct option global_opts[] = {
    {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, 'V'},
    {"server", required_argument, 0, OPT_SERVER},
    {"token-file", required_argument, 0, OPT_TOKEN_FILE},
    {"timeout", required_argument, 0, OPT_TIMEOUT},
    {0, 0, 0, 0},
};

/* Options after the command: its own, plus the global ones (so they may come last). */
static const struct option command_opts[] = {
    {"help", no_argument, 0, 'h'},
    {"output", required_argument, 0, 'o'},
    {"filename", required_argument, 0, 'f'},
    {"file", required_argument, 0, 'f'},
    {"server", required_argument, 0, OPT_SERVER},
    {"token-file", required_argument, 0, OPT_TOKEN_FILE},
    {"timeout", required_argument, 0, OPT_TIMEOUT},
    {0, 0, 0, 0},
};

static const struct {
    const char *name;
    int (*run)(struct bgw__ctl *);
    bool output;    /* takes -o */
    bool file;      /* takes -f */
} commands[] = {
    {"get", cmd_get, true, false},
    {"apply", cmd_apply, true, true},
    {"delete", cmd_delete, false, false},
    {"status", cmd_status, true, false},
    {"endpoints", cmd_endpoints, true, false},
    {"version", cmd_version, true, false},
};

/* Sets ctl->format from s ("table", "json", "yaml"); -1 after a usage message naming where s came from. */
static int output_format(struct bgw__ctl *ctl, const char *s, const char *from)
{
    if (strcmp(s, "table") == 0) ctl->format = BGW__FMT_TABLE;
    else if (strcmp(s, "json") == 0) ctl->format = BGW__FMT_JSON;
    else if (strcmp(s, "yaml") == 0 || strcmp(s, "yml") == 0) ctl->format = BGW__FMT_YAML;
    else {
        usage_error("%s: unknown output format \"%s\" (table, json, yaml)", from, s);
        return -1;
    }
    ctl->format_given = true;
    return 0;
}

/* Handles a global flag (c); returns 0, or an exit status to stop with. */
static int global_flag(struct bgw__ctl *ctl, int c, const char *arg)
{
    char *end;
    switch (c) {
    case OPT_SERVER: ctl->server = arg; return 0;
    case OPT_TOKEN_FILE: ctl->token_file = arg; return 0;
    case OPT_TIMEOUT:
        errno = 0;
        ctl->timeout_s = strtod(arg, &end);
        if (errno || end == arg || *end || !(ctl->timeout_s > 0) || ctl->timeout_s > 86400)
            return usage_error("--timeout: \"%s\" is not a number of seconds (0 < SECONDS <= 86400)", arg);
        return 0;
    default: return -1;
    }
}

int main(int argc, char **argv)
{
    struct bgw__ctl ctl = {.server = BGW__CTL_DEFAULT_SERVER, .timeout_s = BGW__CTL_DEFAULT_TIMEOUT_S};
    int n, c, rc;
    char **av = bgw_cli_with_env(argc, argv, global_opts, &n);

    opterr = 0;
    while ((c = getopt_long(n, av, "+h", global_opts, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return BGW__CTL_OK;
        case 'V': printf("bgwctl %s\n", BGW_VERSION); return BGW__CTL_OK;
        case '?':
            return usage_error("unknown or incomplete flag \"%s\"", av[optind - 1]);
        default:
            if ((rc = global_flag(&ctl, c, optarg)) != 0) return rc;
        }
    }
    if (optind >= n) return usage_error("missing COMMAND");

    const char *name = av[optind];
    size_t ci;
    for (ci = 0; ci < sizeof commands / sizeof commands[0]; ci++)
        if (strcmp(commands[ci].name, name) == 0) break;
    if (ci == sizeof commands / sizeof commands[0]) return usage_error("unknown command \"%s\"", name);

    char **sub = av + optind;
    int nsub = n - optind;
    optind = 0;     /* restart getopt on the command's arguments */
    while ((c = getopt_long(nsub, sub, "ho:f:", command_opts, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return BGW__CTL_OK;
        case 'o':
            if (!commands[ci].output) return usage_error("-o is not an option of %s", name);
            if (output_format(&ctl, optarg, "-o") < 0) return BGW__CTL_USAGE;
            break;
        case 'f':
            if (!commands[ci].file) return usage_error("-f is not an option of %s", name);
            ctl.file = optarg;
            break;
        case '?':
            return usage_error("unknown or incomplete flag \"%s\"", sub[optind - 1]);
        default:
            if ((rc = global_flag(&ctl, c, optarg)) != 0) return rc;
        }
    }
    ctl.args = sub + optind;
    ctl.nargs = nsub - optind;
    /* The command's own flags from the environment, for the commands that take them. */
    const char *env = getenv("BGW_OUTPUT");
    if (env && !ctl.format_given && commands[ci].output && output_format(&ctl, env, "BGW_OUTPUT") < 0)
        return BGW__CTL_USAGE;
    env = getenv("BGW_FILENAME");
    if (env && !ctl.file && commands[ci].file) ctl.file = env;

    rc = commands[ci].run(&ctl);
    bgw_apiclient_cleanup(&ctl.client);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        errorf("writing the output: %s", strerror(errno));
        if (rc == BGW__CTL_OK) rc = BGW__CTL_ERROR;
    }
    return rc;
}
