/*
 * config_pb.h - the config document (JSON) and the config stream's Config message (proto/bgw/v1/
 * config.proto), both ways. Field names are the document's keys, so the conversion walks the message
 * descriptors; the few places where the two differ in shape are handled by name (endpoints written as
 * strings, "jwks" carried as JSON text, "forward_claims" as a map).
 *
 * Neither direction validates: a document goes to the wire after bgw_config_from_json() accepted it, and
 * a received message becomes a document that the receiver validates with bgw_config_from_json() (one
 * validator). Presence is kept: an absent optional number stays absent, a 0 stays 0.
 */
#ifndef BGW_CONFIG_PB_H
#define BGW_CONFIG_PB_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "bgw/v1/config.pb-c.h"
#include "bgw/v1/discovery.pb-c.h"

/*
 * Convert a config document (a JSON object) into a new Config message. Keys the message does not have
 * ("version", and anything else) are ignored. Endpoints may be "host:port" strings (healthy) or
 * {"address", "healthy"} objects; a service may carry both resolved endpoints and a kubernetes reference.
 * Returns 0 and *out (free with bgw_config_pb_free), or -1 with "FIELD.PATH: what is wrong" in err when
 * a value has the wrong JSON type or is out of range for its field.
 */
int bgw_config_pb_from_json(const json_t *doc, Bgw__V1__Config **out, char *err, size_t errlen);

/*
 * Convert a received Config message into a config document (new reference) for bgw_config_from_json().
 * Absent fields stay absent; an empty string counts as absent (as in proto3) except a header match's
 * "exact"; an endpoint without "healthy" is unhealthy (proto3's false); a service with resolved endpoints
 * drops its kubernetes reference (the proxy serves the endpoints). Returns NULL with err filled when "jwks"
 * is not a JSON object, a number does not fit JSON, or memory runs out.
 */
json_t *bgw_config_pb_to_json(const Bgw__V1__Config *cfg, char *err, size_t errlen);

/* Free a message built by bgw_config_pb_from_json() (or any message of these files built with malloc);
 * NULL is fine. */
void bgw_config_pb_free(Bgw__V1__Config *cfg);

#endif
