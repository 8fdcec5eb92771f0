/*
 * fuzz_http1_response.c - libFuzzer target for the HTTP/1.1 codec (dataplane/http1.h), response side:
 * the input is what an upstream connection receives, read as a stream of responses. The driver and the
 * invariants are those of fuzz_http1_request.c (read it for the list); here the codec is in response
 * mode, head_request alternates from one response to the next, and a close-delimited body is ended by
 * bgw_http1_eof at the end of the input.
 */
#define FUZZ_HTTP1_RESPONSE 1
#include "fuzz_http1_request.c"
