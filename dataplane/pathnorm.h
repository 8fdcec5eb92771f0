/*
 * pathnorm.h - request-target path normalisation, done once per request before routing.
 *
 * What routing, policies and the upstream all see is the normalised path:
 *   - unreserved percent-escapes (ALPHA DIGIT - . _ ~) decoded; other escapes kept, hex upper-cased;
 *   - duplicate slashes merged;
 *   - dot segments ("." and "..", also once decoded from %2E) removed per RFC 3986 5.2.4
 *     (".." above the root stays at the root);
 * and these are refused (the caller answers 400): %2F and %5C (any case), a raw '\', a malformed
 * escape (%G1, "%4" at the end), %00, control characters, space, bytes >= 0x80, '#', a path that does
 * not start with '/'.
 */
#ifndef BGW_PATHNORM_H
#define BGW_PATHNORM_H

#include <stddef.h>

/*
 * Normalise path[0..len) (the path only: no query, no scheme or authority) into out, which must hold at
 * least len + 1 bytes (normalising never lengthens a path). Returns the normalised length (>= 1, out is
 * NUL-terminated), or -1 if the path is refused (out then holds unspecified bytes).
 *
 * Details: a trailing slash is kept ("/a/b/" stays "/a/b/"), and a final dot segment leaves its slash
 * ("/a/." -> "/a/", "/a/b/.." -> "/a/"). Dot segments are recognised after decoding ("/%2e%2E/x" ->
 * "/x"); there is no second round of decoding ("%252e" stays "%252e"). Escapes of other bytes, including
 * controls and bytes >= 0x80, are kept encoded ("%0a" -> "%0A"). Control characters include DEL (0x7f).
 * Other printable ASCII is kept as is. The result is a fixed point: normalising it again returns it.
 * Reads only path[0..len); no allocation; out may be path itself (normalising in place).
 */
long bgw_pathnorm(const char *path, size_t len, char *out);

#endif
