/*
 * fileio.h - reading whole files and secrets from files, one way for every program.
 */
#ifndef BGW_FILEIO_H
#define BGW_FILEIO_H

#include <stddef.h>
#include <stdio.h>

/* All of f into a new NUL-terminated buffer (caller frees); *len is its length without the NUL.
 * Returns NULL with errno set: EFBIG when f holds more than max bytes, ENOMEM, or the read error. */
char *bgw_read_stream(FILE *f, size_t max, size_t *len);

/* The same for the file at path (opened and closed here). */
char *bgw_read_file(const char *path, size_t max, size_t *len);

/*
 * A secret kept in a file, such as a bearer token: surrounding whitespace and the final newline are
 * removed. Returns a new string, or NULL with err set to "PATH: why" (unreadable, over max bytes, empty,
 * a NUL byte, or whitespace or control characters inside the token). The read buffer is wiped.
 */
char *bgw_read_token(const char *path, size_t max, char *err, size_t errlen);

#endif
