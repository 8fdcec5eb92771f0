/*
 * k8s_conn.h - how to reach the Kubernetes API server: the server URL and the credentials, from a
 * kubeconfig file (--kubeconfig) or from the pod's service account (--in-cluster).
 *
 * kubeconfig: the current-context's cluster (server, certificate-authority or certificate-authority-data,
 * insecure-skip-tls-verify) and user (token or tokenFile, client-certificate[-data] and client-key[-data]);
 * relative file names are relative to the kubeconfig's directory. The YAML is read with libyaml.
 *
 * in-cluster: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, with the token, CA and namespace
 * in /var/run/secrets/kubernetes.io/serviceaccount/ (BGW_K8S_SERVICEACCOUNT_DIR overrides the directory).
 * The token file is read again when older than BGW_K8S_TOKEN_REFRESH_S, as projected tokens rotate.
 */
#ifndef BGW_K8S_CONN_H
#define BGW_K8S_CONN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <curl/curl.h>

#define BGW_K8S_TOKEN_REFRESH_S 60

struct bgw_k8s_conn {
    char *server;               /* "https://host:port" without a trailing slash */
    char *namespace_;           /* the context's or the service account's namespace (may be NULL) */
    char *ca_file;              /* CA bundle file, or */
    char *ca_pem; size_t ca_pem_len;    /* CA PEM from certificate-authority-data */
    bool insecure;
    char *cert_file, *key_file; /* client certificate and key files, or data: */
    char *cert_pem; size_t cert_pem_len;
    char *key_pem; size_t key_pem_len;
    pthread_mutex_t lock;       /* guards token and token_read */
    char *token;                /* bearer token (may be NULL) */
    char *token_file;           /* re-read periodically when set */
    time_t token_read;
};

/* Fill c from a kubeconfig file. Returns 0, or -1 with err naming the file and the field. */
int bgw_k8s_conn_from_kubeconfig(struct bgw_k8s_conn *c, const char *path, char *err, size_t errlen);

/* Fill c from the in-cluster environment. Returns 0, or -1 with err saying what is missing. */
int bgw_k8s_conn_in_cluster(struct bgw_k8s_conn *c, char *err, size_t errlen);

/* "Authorization: Bearer ..." header text for the next request into buf (re-reading token_file when it is
 * older than BGW_K8S_TOKEN_REFRESH_S); returns false when there is no token. Thread-safe. */
bool bgw_k8s_conn_auth_header(struct bgw_k8s_conn *c, char *buf, size_t len);

#define BGW_K8S_CONNECT_TIMEOUT_S 10

/*
 * Set the curl handle e (reset first) up for one request to url on c: connect timeout, TCP keep-alive,
 * user agent, "Accept: application/json" (and "Content-Type: application/json" when json_body), the bearer
 * token, the server CA and the client certificate. progress (may be NULL) is installed as the transfer
 * progress callback with progress_arg (return non-zero from it to abort). Returns the header list, to free
 * with curl_slist_free_all() after the request.
 */
struct curl_slist *bgw_k8s_conn_prepare(struct bgw_k8s_conn *c, CURL *e, const char *url, bool json_body,
                                        curl_xferinfo_callback progress, void *progress_arg);

/* Free what c holds. */
void bgw_k8s_conn_free(struct bgw_k8s_conn *c);

#endif
