/*
 * fuzz_config_pb.c - what a proxy does with bytes from the config stream: decode a DiscoveryResponse,
 * turn its Config into a document and validate it with the one validator. Nothing may crash, leak or
 * read out of bounds, whatever the bytes; an accepted config must survive the way back to the wire.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "config.h"
#include "config_pb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Bgw__V1__DiscoveryResponse *resp = bgw__v1__discovery_response__unpack(NULL, size, data);
    if (!resp) return 0;
    char err[BGW_ERR_MAX];
    Bgw__V1__Config empty = BGW__V1__CONFIG__INIT;
    json_t *doc = bgw_config_pb_to_json(resp->config ? resp->config : &empty, err, sizeof err);
    if (doc) {
        struct bgw_config *cfg = NULL;
        if (bgw_config_from_json(doc, &cfg, err, sizeof err) == 0) {
            json_t *canon = bgw_config_to_json(cfg);
            Bgw__V1__Config *back = NULL;
            if (canon && bgw_config_pb_from_json(canon, &back, err, sizeof err) != 0) abort();
            bgw_config_pb_free(back);
            json_decref(canon);
            bgw_config_free(cfg);
        }
        json_decref(doc);
    }
    bgw__v1__discovery_response__free_unpacked(resp, NULL);
    return 0;
}
