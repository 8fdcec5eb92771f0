/*
 * views.h - how bgwctl names and shows the admin API's objects: kind names as typed on the command line,
 * and the table columns of each kind, of the proxies (`status`) and of a service's endpoints.
 *
 * Columns:
 *   services       NAME  ENDPOINTS  LB  REVISION
 *   routes         NAME  MATCH  SERVICE  REVISION
 *   rate_limits    NAME  RATE  BURST  KEY  SCOPE  REVISION
 *   auth_policies  NAME  ISSUER  ALGORITHMS  JWKS  REVISION
 *   status         NODE  ADDRESS  STATUS  ACKED VERSION  LAST CHANGE  LAST ERROR
 *   endpoints      ADDRESS  HEALTHY  SOURCE  LAST CHECK
 * A field the server does not send shows as "-".
 */
#ifndef BGW_VIEWS_H
#define BGW_VIEWS_H

#include <jansson.h>

#include "table.h"

enum bgw_ctl_kind { BGW_CTL_KIND_SERVICES = 0, BGW_CTL_KIND_ROUTES, BGW_CTL_KIND_RATE_LIMITS, BGW_CTL_KIND_AUTH_POLICIES };

/*
 * Parse a kind as typed: the API's plural ("rate_limits"), the singular ("rate_limit"), with dashes
 * instead of underscores ("rate-limits"), in any case. Returns 0 and sets *out, or -1.
 */
int bgw_ctl_kind_parse(const char *s, enum bgw_ctl_kind *out);

/* The API's name of a kind ("rate_limits": the /v1 path segment and the document key). */
const char *bgw_ctl_kind_name(enum bgw_ctl_kind kind);

/* The singular ("rate_limit"), for messages. */
const char *bgw_ctl_kind_singular(enum bgw_ctl_kind kind);

/*
 * Fill t (initialised here; the caller frees it with bgw_table_free) with one row per object of items
 * (a JSON array; non-objects are skipped). Returns 0, or -1 when out of memory (t freed).
 */
int bgw_view_objects(enum bgw_ctl_kind kind, const json_t *items, struct bgw_table *t);

/* Same for the items of GET /v1/dataplanes. */
int bgw_view_dataplanes(const json_t *items, struct bgw_table *t);

/* Same for the endpoints of GET /v1/services/{name}/endpoints. */
int bgw_view_endpoints(const json_t *items, struct bgw_table *t);

#endif
