/*
 * yamljson.h - YAML documents to and from JSON values, for bgwctl's `apply -f` and `-o yaml`.
 *
 * Scalars follow the YAML 1.2 core schema: a plain (unquoted) scalar is null (`~`, `null`, empty), a
 * boolean (`true`, `false` in three casings), an integer (decimal, `0x`, `0o`), a float, or else a string;
 * a quoted scalar is always a string, and so is one tagged `!!str`. YAML 1.1 spellings (`yes`, `on`, `0755`
 * as octal) are strings or decimals, so `on:` as a key stays the string "on". Anchors and aliases are
 * expanded; mapping keys must be scalars and are taken as text; duplicate keys and merge keys (`<<`) are
 * not supported.
 */
#ifndef BGW_YAMLJSON_H
#define BGW_YAMLJSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/*
 * Parse text (one YAML document, UTF-8) into a JSON value. Returns a new reference, or NULL and one line
 * in err: "line L, column C: what is wrong" (1-based). An empty stream is an error ("the document is
 * empty"), and so is a second document.
 */
json_t *bgw_yaml_to_json(const char *text, size_t len, char *err, size_t errlen);

/*
 * Render v as a block-style YAML document ending in a newline: strings that would read back as another
 * type are double-quoted, lines are never folded, empty arrays and objects are `[]` and `{}`.
 * Returns a malloc'd NUL-terminated string the caller frees, or NULL when out of memory.
 */
char *bgw_yaml_from_json(const json_t *v);

/* Whether the plain (unquoted) scalar s of len bytes reads back as a string under the rules above. */
bool bgw_yaml_plain_is_string(const char *s, size_t len);

#endif
