/*
 * k8s_conn.c - the API server's address and credentials from a kubeconfig or the in-cluster service
 * account (see k8s_conn.h).
 */
#include "k8s_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fileio.h"
#include "yamljson.h"

#define KUBECONFIG_MAX (4u << 20)
#define TOKEN_MAX 65536
#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Decode base64 (standard alphabet, padding and whitespace tolerated). NULL on a bad character. */
static char *base64_decode(const char *in, size_t *outlen)
{
    size_t n = strlen(in), o = 0;
    unsigned acc = 0;
    int bits = 0;
    char *out = malloc(n / 4 * 3 + 4);

    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)in[i], v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+') v = 62;
        else if (c == '/') v = 63;
        else if (c == '=' || c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
        else { free(out); return NULL; }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

/* The entry of a kubeconfig list (clusters, contexts, users) named name: its `field` object. */
static const json_t *named(const json_t *doc, const char *list, const char *name, const char *field)
{
    size_t i;
    const json_t *e;

    json_array_foreach(json_object_get(doc, list), i, e) {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && strcmp(n, name) == 0)
            return json_object_get(e, field);
    }
    return NULL;
}

/* A file name from the kubeconfig, relative to its directory unless absolute. */
static char *resolve(const char *dir, const char *file)
{
    if (!file)
        return NULL;
    if (file[0] == '/' || !dir)
        return strdup(file);
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, file);
    return p;
}

static int data_field(const json_t *o, const char *field, char **out, size_t *len, const char *path,
                      char *err, size_t errlen)
{
    const char *v = json_string_value(json_object_get(o, field));

    if (!v)
        return 0;
    if (!(*out = base64_decode(v, len))) {
        snprintf(err, errlen, "%s: %s is not valid base64", path, field);
        return -1;
    }
    return 0;
}

static char *read_token_file(const char *path)
{
    char why[256];
    return bgw_read_token(path, TOKEN_MAX, why, sizeof why);
}

int bgw_k8s_conn_from_kubeconfig(struct bgw_k8s_conn *c, const char *path, char *err, size_t errlen)
{
    size_t len;
    char yerr[256];
    char *text = bgw_read_file(path, KUBECONFIG_MAX, &len);
    json_t *doc;
    int rc = -1;

    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    if (!text) {
        snprintf(err, errlen, "--kubeconfig %s: %s", path, strerror(errno));
        return -1;
    }
    doc = bgw_yaml_to_json(text, len, yerr, sizeof yerr);
    free(text);
    if (!doc) {
        snprintf(err, errlen, "--kubeconfig %s: %s", path, yerr);
        return -1;
    }
    char *dir = strdup(path), *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = '\0';
    else if (dir) {
        free(dir);
        dir = NULL;
    }
    const char *ctx_name = json_string_value(json_object_get(doc, "current-context"));
    const json_t *ctx = ctx_name ? named(doc, "contexts", ctx_name, "context") : NULL;
    if (!ctx_name || !*ctx_name) {
        snprintf(err, errlen, "--kubeconfig %s: current-context is not set", path);
        goto out;
    }
    if (!ctx) {
        snprintf(err, errlen, "--kubeconfig %s: contexts: no context named \"%s\"", path, ctx_name);
        goto out;
    }
    const char *cluster_name = json_string_value(json_object_get(ctx, "cluster"));
    const char *user_name = json_string_value(json_object_get(ctx, "user"));
    const json_t *cluster = cluster_name ? named(doc, "clusters", cluster_name, "cluster") : NULL;
    const json_t *user = user_name ? named(doc, "users", user_name, "user") : NULL;
    if (!cluster) {
        snprintf(err, errlen, "--kubeconfig %s: clusters: no cluster named \"%s\"", path,
                 cluster_name ? cluster_name : "");
        goto out;
    }
    const char *server = json_string_value(json_object_get(cluster, "server"));
    if (!server || (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)) {
        snprintf(err, errlen, "--kubeconfig %s: clusters[%s].cluster.server: an http(s):// URL is required", path,
                 cluster_name);
        goto out;
    }
    c->server = strdup(server);
    if (c->server[strlen(c->server) - 1] == '/')
        c->server[strlen(c->server) - 1] = '\0';
    c->namespace_ = dup_or_null(json_string_value(json_object_get(ctx, "namespace")));
    c->insecure = json_is_true(json_object_get(cluster, "insecure-skip-tls-verify"));
    c->ca_file = resolve(dir, json_string_value(json_object_get(cluster, "certificate-authority")));
    if (data_field(cluster, "certificate-authority-data", &c->ca_pem, &c->ca_pem_len, path, err, errlen) < 0)
        goto out;
    if (user) {
        c->token = dup_or_null(json_string_value(json_object_get(user, "token")));
        c->token_file = resolve(dir, json_string_value(json_object_get(user, "tokenFile")));
        c->cert_file = resolve(dir, json_string_value(json_object_get(user, "client-certificate")));
        c->key_file = resolve(dir, json_string_value(json_object_get(user, "client-key")));
        if (data_field(user, "client-certificate-data", &c->cert_pem, &c->cert_pem_len, path, err, errlen) < 0 ||
            data_field(user, "client-key-data", &c->key_pem, &c->key_pem_len, path, err, errlen) < 0)
            goto out;
        if (json_object_get(user, "exec") || json_object_get(user, "auth-provider")) {
            snprintf(err, errlen, "--kubeconfig %s: users[%s].user: exec and auth-provider credentials are not "
                     "supported (use a token or a client certificate)", path, user_name);
            goto out;
        }
    }
    if (c->token_file && !c->token && !(c->token = read_token_file(c->token_file))) {
        snprintf(err, errlen, "--kubeconfig %s: tokenFile %s cannot be read", path, c->token_file);
        goto out;
    }
    c->token_read = time(NULL);
    rc = 0;
out:
    free(dir);
    json_decref(doc);
    if (rc < 0)
        bgw_k8s_conn_free(c);
    return rc;
}

int bgw_k8s_conn_in_cluster(struct bgw_k8s_conn *c, char *err, size_t errlen)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    const char *dir = getenv("BGW_K8S_SERVICEACCOUNT_DIR");
    char path[1024];

    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    if (!dir || !*dir)
        dir = SA_DIR;
    if (!host || !*host || !port || !*port) {
        snprintf(err, errlen, "--in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set "
                 "(is bgw-control running in a pod?)");
        return -1;
    }
    size_t n = strlen(host) + strlen(port) + 16;
    if (!(c->server = malloc(n))) {
        snprintf(err, errlen, "--in-cluster: out of memory");
        return -1;
    }
    snprintf(c->server, n, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
    snprintf(path, sizeof path, "%s/token", dir);
    c->token_file = strdup(path);
    if (!(c->token = read_token_file(path))) {
        snprintf(err, errlen, "--in-cluster: the service account token %s cannot be read", path);
        bgw_k8s_conn_free(c);
        return -1;
    }
    c->token_read = time(NULL);
    snprintf(path, sizeof path, "%s/ca.crt", dir);
    c->ca_file = strdup(path);
    snprintf(path, sizeof path, "%s/namespace", dir);
    c->namespace_ = read_token_file(path);
    return 0;
}

bool bgw_k8s_conn_auth_header(struct bgw_k8s_conn *c, char *buf, size_t len)
{
    bool ok;

    pthread_mutex_lock(&c->lock);
    if (c->token_file && time(NULL) - c->token_read >= BGW_K8S_TOKEN_REFRESH_S) {
        char *t = read_token_file(c->token_file);
        c->token_read = time(NULL);
        if (t) {            /* keep the old token when the file is briefly missing (being rotated) */
            free(c->token);
            c->token = t;
        }
    }
    ok = c->token && (size_t)snprintf(buf, len, "Authorization: Bearer %s", c->token) < len;
    pthread_mutex_unlock(&c->lock);
    return ok;
}

struct curl_slist *bgw_k8s_conn_prepare(struct bgw_k8s_conn *k, CURL *e, const char *url, bool json_body,
                                        curl_xferinfo_callback progress, void *progress_arg)
{
    struct curl_slist *h = NULL;
    char auth[8192];

    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)BGW_K8S_CONNECT_TIMEOUT_S);
    if (progress) {
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, progress);
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, progress_arg);
    }
    curl_easy_setopt(e, CURLOPT_USERAGENT, "bgw-control/" BGW_VERSION);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    h = curl_slist_append(h, "Accept: application/json");
    if (json_body)
        h = curl_slist_append(h, "Content-Type: application/json");
    if (bgw_k8s_conn_auth_header(k, auth, sizeof auth))
        h = curl_slist_append(h, auth);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    if (k->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, k->ca_file);
    if (k->ca_pem) {
        struct curl_blob b = {k->ca_pem, k->ca_pem_len, CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
    }
    if (k->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (k->cert_file)
        curl_easy_setopt(e, CURLOPT_SSLCERT, k->cert_file);
    if (k->key_file)
        curl_easy_setopt(e, CURLOPT_SSLKEY, k->key_file);
    if (k->cert_pem) {
        struct curl_blob b = {k->cert_pem, k->cert_pem_len, CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (k->key_pem) {
        struct curl_blob b = {k->key_pem, k->key_pem_len, CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    }
    return h;
}

void bgw_k8s_conn_free(struct bgw_k8s_conn *c)
{
    free(c->server);
    free(c->namespace_);
    free(c->ca_file);
    free(c->ca_pem);
    free(c->cert_file);
    free(c->key_file);
    free(c->cert_pem);
    free(c->key_pem);
    free(c->token);
    free(c->token_file);
    pthread_mutex_destroy(&c->lock);
    memset(c, 0, sizeof *c);
}
