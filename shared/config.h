/*
 * config.h - the gateway's config model: the JSON document of the contract, validated into an immutable
 * in-memory struct. One validator for every way config arrives (file, admin API, gRPC stream).
 *
 * Ownership: a struct bgw_config owns every string and array reachable from it; bgw_config_free() frees
 * all of it. Nothing here depends on the proxy or the control plane.
 */
#ifndef BGW_CONFIG_H
#define BGW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define BGW_NAME_MAX 128            /* object names: 1..128 chars of [A-Za-z0-9._-] */
#define BGW_ERR_MAX 512             /* a good size for caller error buffers */

/* Defaults, applied by the parser when a field is absent. */
#define BGW_DEFAULT_CONNECT_TIMEOUT_MS 1000u
#define BGW_DEFAULT_MAX_CONNECTIONS 1024u
#define BGW_DEFAULT_ROUTE_TIMEOUT_MS 15000u
#define BGW_DEFAULT_HC_INTERVAL_MS 5000u
#define BGW_DEFAULT_HC_TIMEOUT_MS 1000u
#define BGW_DEFAULT_HC_HEALTHY 2u
#define BGW_DEFAULT_HC_UNHEALTHY 3u
#define BGW_DEFAULT_CB_MAX 1024u           /* max_pending_requests, max_requests */
#define BGW_DEFAULT_CB_MAX_RETRIES 3u
#define BGW_DEFAULT_OD_CONSECUTIVE_5XX 5u
#define BGW_DEFAULT_OD_BASE_EJECTION_MS 30000u
#define BGW_DEFAULT_OD_MAX_EJECTION_PCT 10u
#define BGW_DEFAULT_RETRY_ATTEMPTS 1u
#define BGW_DEFAULT_CLOCK_SKEW_S 60u

enum bgw_lb_kind { BGW_LB_ROUND_ROBIN = 0, BGW_LB_LEAST_REQUEST, BGW_LB_RANDOM };

/* retry.on bits */
enum bgw_retry_on {
    BGW_RETRY_CONNECT_FAILURE = 1u << 0,
    BGW_RETRY_RESET = 1u << 1,
    BGW_RETRY_5XX = 1u << 2,
    BGW_RETRY_GATEWAY_ERROR = 1u << 3, /* 502, 503, 504 */
};

enum bgw_rl_per { BGW_RL_SECOND = 0, BGW_RL_MINUTE, BGW_RL_HOUR };
enum bgw_rl_key_kind { BGW_RL_KEY_CLIENT_IP = 0, BGW_RL_KEY_ROUTE, BGW_RL_KEY_HEADER, BGW_RL_KEY_CLAIM };
enum bgw_rl_scope { BGW_RL_LOCAL = 0, BGW_RL_GLOBAL };

struct bgw_endpoint {
    char *address;      /* "host:port" or "[v6]:port" as written */
    char *host;         /* host part without brackets */
    uint16_t port;
    bool healthy;       /* true unless the document says "healthy": false */
};

struct bgw_k8s_ref {
    char *namespace_;
    char *service;
    char *port;         /* a port name or number, as text */
};

struct bgw_health_check {
    char *path;
    uint32_t interval_ms, timeout_ms, healthy_threshold, unhealthy_threshold;
};

struct bgw_circuit_breaker {
    uint32_t max_pending_requests, max_requests, max_retries;
};

struct bgw_outlier_detection {
    uint32_t consecutive_5xx, base_ejection_ms, max_ejection_percent;
};

struct bgw_service {
    char *name;
    struct bgw_endpoint *endpoints;   /* n_endpoints entries; empty when kubernetes is used */
    size_t n_endpoints;
    bool has_kubernetes;
    struct bgw_k8s_ref kubernetes;
    enum bgw_lb_kind lb;
    uint32_t connect_timeout_ms;
    uint32_t max_connections;
    bool has_health_check;
    struct bgw_health_check health_check;
    bool has_circuit_breaker;
    struct bgw_circuit_breaker circuit_breaker;
    bool has_outlier_detection;
    struct bgw_outlier_detection outlier_detection;
};

struct bgw_header_match {
    char *name;         /* lower-cased */
    char *exact;        /* value to compare byte for byte */
};

struct bgw_match {
    char *path_prefix;  /* exactly one of path_prefix / path_exact is non-NULL */
    char *path_exact;
    char **methods;     /* upper-case method names; n_methods == 0: any */
    size_t n_methods;
    char **hosts;       /* lower-cased; "*.example.com" allowed; n_hosts == 0: any */
    size_t n_hosts;
    struct bgw_header_match *headers;
    size_t n_headers;
};

struct bgw_retry {
    uint32_t attempts;            /* retries after the first try */
    uint32_t on;                  /* enum bgw_retry_on bits */
    uint32_t per_try_timeout_ms;  /* 0: none beyond the route timeout */
};

struct bgw_cors {
    char **allow_origins; size_t n_allow_origins;   /* "*" allowed */
    char **allow_methods; size_t n_allow_methods;
    char **allow_headers; size_t n_allow_headers;
    char **expose_headers; size_t n_expose_headers;
    uint32_t max_age_s;
    bool allow_credentials;
};

struct bgw_route {
    char *name;
    struct bgw_match match;
    char *service;            /* name of a service in the same config */
    size_t service_index;     /* index into bgw_config.services, resolved by the validator */
    char *rewrite_prefix;     /* NULL: none; only with path_prefix */
    uint32_t timeout_ms;
    bool has_retry;
    struct bgw_retry retry;
    char *rate_limit;         /* NULL or a name in rate_limits */
    char *auth;               /* NULL or a name in auth_policies */
    bool has_cors;
    struct bgw_cors cors;
    bool has_max_body_bytes;
    uint64_t max_body_bytes;
};

struct bgw_rate_limit {
    char *name;
    uint64_t requests;
    enum bgw_rl_per per;
    uint64_t burst;           /* default: requests */
    enum bgw_rl_key_kind key_kind;
    char *key_name;           /* header name (lower-cased) or claim name; NULL otherwise */
    char *key;                /* the key as written ("header:x-api-key") */
    enum bgw_rl_scope scope;
};

struct bgw_auth_policy {
    char *name;
    char *issuer;
    char **audiences; size_t n_audiences;
    char **algorithms; size_t n_algorithms;
    char *jwks_json;          /* the inline "jwks" object serialised as compact JSON; NULL if absent */
    char *jwks_uri;           /* NULL if absent */
    char **forward_claim_names;    /* claim -> header pairs, n_forward_claims of each */
    char **forward_claim_headers;  /* header names lower-cased */
    size_t n_forward_claims;
    uint32_t clock_skew_s;
};

struct bgw_config {
    struct bgw_service *services; size_t n_services;
    struct bgw_route *routes; size_t n_routes;
    struct bgw_rate_limit *rate_limits; size_t n_rate_limits;
    struct bgw_auth_policy *auth_policies; size_t n_auth_policies;
    char *version;            /* "version" key of the document if present, else NULL */
};

/*
 * Parse and validate a whole document (a JSON object). On success returns 0 and stores a new config in
 * *out (caller frees with bgw_config_free). On failure returns -1, *out untouched, and writes one line
 * "FIELD.PATH: what is wrong" into err (e.g. "routes[3].match.path_prefix: must start with '/'").
 * Unknown fields are errors. Cross-references (route -> service, rate_limit, auth) are checked.
 */
int bgw_config_from_json(const json_t *doc, struct bgw_config **out, char *err, size_t errlen);

/* Same, from text. A JSON syntax error is reported as "line L column C: message". */
int bgw_config_parse(const char *text, size_t len, struct bgw_config **out, char *err, size_t errlen);

/* Same, from a file. Errors are "FILE: FIELD.PATH: what is wrong" (or "FILE: cannot read: strerror"). */
int bgw_config_load_file(const char *path, struct bgw_config **out, char *err, size_t errlen);

/* The document as JSON (new reference), every default made explicit; endpoints as
 * {"address": "...", "healthy": bool}. bgw_config_from_json() accepts this output back. */
json_t *bgw_config_to_json(const struct bgw_config *cfg);

void bgw_config_free(struct bgw_config *cfg);

/* Small helpers shared with other modules. */
const char *bgw_lb_kind_name(enum bgw_lb_kind kind);
/* Parse "host:port" / "[v6]:port". Returns 0 and fills host (NUL-terminated, no brackets) and port. */
int bgw_parse_hostport(const char *s, char *host, size_t hostcap, uint16_t *port);

#endif
