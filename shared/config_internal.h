/*
 * config_internal.h - what the files of the config module share and nobody else uses.
 *
 * The module is split by subject:
 *   config.c          entry points, the top-level document, cross-references, freeing
 *   config_read.c     the parse context: field path, error line, typed readers for JSON members
 *   config_syntax.c   lexical checks of strings (names, paths, hosts, header names, URLs, host:port)
 *   config_service.c  services[]
 *   config_route.c    routes[]
 *   config_policy.c   rate_limits[] and auth_policies[]
 *   config_json.c     the model back to JSON
 *
 * Readers report errors as "PATH: what is wrong" into the context and return -1; 0 on success.
 */
#ifndef BGW_CONFIG_INTERNAL_H
#define BGW_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"

#define BGW__PATH_MAX 256

/* The state of one validation: where we are in the document and where the error goes. */
struct bgw__cfg_ctx {
    char *err;
    size_t errlen;
    char path[BGW__PATH_MAX];   /* "routes[3].match"; empty at the top level */
    size_t plen;
};

/* ---- field path (config_read.c) ---- */

/* Append ".field" (or "field" at the top) / "[i]"; both return a mark for bgw__path_restore(). */
size_t bgw__path_field(struct bgw__cfg_ctx *c, const char *field);
size_t bgw__path_index(struct bgw__cfg_ctx *c, size_t i);
void bgw__path_restore(struct bgw__cfg_ctx *c, size_t mark);

/* Write "PATH: message" into the error buffer; returns -1. */
int bgw__fail(struct bgw__cfg_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same for the member `field` of the current path. */
int bgw__fail_at(struct bgw__cfg_ctx *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- typed readers (config_read.c) ----
 * Each reads member `key` of obj, with the error path ending in ".key". An absent member is left at the
 * default (or is an error with BGW__REQUIRED). JSON types are never converted. */

enum {
    BGW__REQUIRED = 1u << 0,   /* absent is an error */
    BGW__NONEMPTY = 1u << 1,   /* arrays: at least one element */
    BGW__LOWER = 1u << 2,      /* strings: stored lower-cased (before the check runs) */
};

/* A check of a string's syntax: NULL when fine, else what is wrong ("must start with '/'"). */
typedef const char *(*bgw__str_check)(const char *s);

/* Fails with "unknown field" on the first member of obj not listed in allowed (NULL-terminated). */
int bgw__check_fields(struct bgw__cfg_ctx *c, const json_t *obj, const char *const *allowed);

/* Member as an object whose fields are all in allowed; *out = NULL when absent. */
int bgw__read_object(struct bgw__cfg_ctx *c, const json_t *obj, const char *key, unsigned flags,
                     const char *const *allowed, const json_t **out);
/* Member as an array; *out = NULL when absent. */
int bgw__read_array(struct bgw__cfg_ctx *c, const json_t *obj, const char *key, unsigned flags,
                    const json_t **out);
/* Member as a string copied into *out (freshly allocated; left NULL when absent), checked by check. */
int bgw__read_string(struct bgw__cfg_ctx *c, const json_t *obj, const char *key, unsigned flags,
                     bgw__str_check check, char **out);
/* Member as an array of strings, each checked; *out and *n stay NULL and 0 when absent. */
int bgw__read_strings(struct bgw__cfg_ctx *c, const json_t *obj, const char *key, unsigned flags,
                      bgw__str_check check, char ***out, size_t *n);
/* Member as a JSON integer in min..max; *out = def when absent; *present (may be NULL) says which. */
int bgw__read_u64(struct bgw__cfg_ctx *c, const json_t *obj, const char *key, unsigned flags, uint64_t def,
                  uint64_t min, uint64_t max, uint64_t *out, bool *present);
int bgw__read_u32(struct bgw__cfg_ctx *c, const json_t *obj, const char *key, uint32_t def, uint32_t min,
                  uint32_t max, uint32_t *out);
int bgw__read_bool(struct bgw__cfg_ctx *c, const json_t *obj, const char *key, bool def, bool *out);
/* Member as one of names[0..n-1]; *out = index, def when absent. */
int bgw__read_enum(struct bgw__cfg_ctx *c, const json_t *obj, const char *key, const char *const *names,
                   size_t n, int def, int *out);
/* The string value v (at the current path) copied, with the same NUL and check rules. */
int bgw__take_string(struct bgw__cfg_ctx *c, const json_t *v, unsigned flags, bgw__str_check check,
                     char **out);
/* Copy of s, "out of memory" at the current path on failure. */
int bgw__strdup(struct bgw__cfg_ctx *c, const char *s, char **out);
/* calloc(n, size) or NULL when n is 0; fails with "out of memory". */
int bgw__calloc(struct bgw__cfg_ctx *c, size_t n, size_t size, void **out);

/* Objects' common "name" member: required, 1..128 of [A-Za-z0-9._-]. */
int bgw__read_name(struct bgw__cfg_ctx *c, const json_t *obj, char **out);

void bgw__free_strings(char **v, size_t n);

/* ---- syntax checks (config_syntax.c); NULL = fine, else the reason ---- */
const char *bgw__check_name(const char *s);
const char *bgw__check_path(const char *s);            /* normalised absolute path */
const char *bgw__check_request_path(const char *s);    /* "/..." with no spaces or control chars */
const char *bgw__check_method(const char *s);          /* [A-Z]+ */
const char *bgw__check_host_pattern(const char *s);    /* lower-case host or "*.host", no port */
const char *bgw__check_header_name(const char *s);     /* RFC 9110 token */
const char *bgw__check_header_or_star(const char *s);  /* token or "*" */
const char *bgw__check_method_or_star(const char *s);  /* token or "*" */
const char *bgw__check_origin(const char *s);          /* "*" or scheme://host[:port] */
const char *bgw__check_http_url(const char *s);        /* http:// or https:// URL */
const char *bgw__check_dns_label(const char *s);       /* Kubernetes object name */
const char *bgw__check_printable(const char *s);       /* no control characters */
const char *bgw__check_nonempty_printable(const char *s);
/* Split "host:port" / "[v6]:port"; *why says what is wrong on failure. */
int bgw__hostport(const char *s, char *host, size_t hostcap, uint16_t *port, const char **why);

/* ---- per kind: parse one item (an object, at the current path) and free it ---- */
int bgw__parse_service(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_service *s);
void bgw__service_free(struct bgw_service *s);
int bgw__parse_route(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_route *r);
void bgw__route_free(struct bgw_route *r);
int bgw__parse_rate_limit(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_rate_limit *rl);
void bgw__rate_limit_free(struct bgw_rate_limit *rl);
int bgw__parse_auth_policy(struct bgw__cfg_ctx *c, const json_t *v, struct bgw_auth_policy *a);
void bgw__auth_policy_free(struct bgw_auth_policy *a);

/* ---- names of enumerations, indexed by value (config.c) ---- */
extern const char *const bgw__lb_names[3];
extern const char *const bgw__rl_per_names[3];
extern const char *const bgw__rl_scope_names[2];
extern const char *const bgw__retry_on_names[4];   /* bit i of retry.on */
extern const char *const bgw__jwt_algorithms[12];

#define BGW__COUNT(a) (sizeof(a) / sizeof((a)[0]))

#endif
