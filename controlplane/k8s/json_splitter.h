/*
 * json_splitter.h - cut a byte stream into top-level JSON objects, whatever the chunking.
 *
 * A Kubernetes watch answers with a chunked stream of JSON objects (one watch event each, usually one per
 * line). Chunk boundaries carry no meaning: an object may span several chunks and a chunk may hold several
 * objects. The splitter keeps only the bytes of the object being received, follows strings and escapes so
 * braces inside strings do not count, and hands every complete object to a callback. Whitespace between
 * objects is skipped; anything else between objects is an error. It does not validate the object's
 * contents (the callback's JSON parser does).
 */
#ifndef BGW_JSON_SPLITTER_H
#define BGW_JSON_SPLITTER_H

#include <stdbool.h>
#include <stddef.h>

struct bgw_jsonsplit {
    char *buf;              /* bytes of the object being received */
    size_t len, cap;
    size_t max;             /* longest object accepted */
    int depth;              /* nesting depth inside the current object; 0 between objects */
    bool in_string, escaped;
    bool failed;            /* after an error every feed fails until reset */
};

/* Receives one complete object: len bytes starting with '{' and ending with '}' (not NUL-terminated).
 * Returns 0 to go on, -1 to stop the feed (bgw_jsonsplit_feed then returns -1). */
typedef int (*bgw_jsonsplit_fn)(void *arg, const char *obj, size_t len);

/* An empty splitter accepting objects up to max bytes (0: 64 MiB). */
void bgw_jsonsplit_init(struct bgw_jsonsplit *s, size_t max);

/* Free the buffer; the splitter may be initialised again. */
void bgw_jsonsplit_free(struct bgw_jsonsplit *s);

/* Forget any partial object (a new stream starts). */
void bgw_jsonsplit_reset(struct bgw_jsonsplit *s);

/* Feed n bytes; fn is called for each object completed by them, in order. Returns 0, or -1 with err filled:
 * a byte other than whitespace or '{' between objects, an object over the limit, out of memory, or fn
 * asked to stop. After -1 the splitter stays failed until reset. */
int bgw_jsonsplit_feed(struct bgw_jsonsplit *s, const char *data, size_t n, bgw_jsonsplit_fn fn, void *arg,
                       char *err, size_t errlen);

/* Whether bytes of an unfinished object are buffered (a stream ending now was cut in the middle). */
bool bgw_jsonsplit_pending(const struct bgw_jsonsplit *s);

#endif
