/*
 * table.h - aligned text tables for bgwctl's default output: a header row, then one row per object,
 * columns padded to their widest cell and separated by three spaces.
 */
#ifndef BGW_TABLE_H
#define BGW_TABLE_H

#include <stddef.h>
#include <stdio.h>

struct bgw_table {
    size_t ncols;
    size_t nrows;       /* rows including the header */
    size_t cap;         /* rows allocated */
    char **cells;       /* nrows * ncols strings, row by row; owned */
};

/* Starts a table with ncols columns and the given header cells. Returns 0, or -1 when out of memory. */
int bgw_table_init(struct bgw_table *t, size_t ncols, const char *const *headers);

/*
 * Appends a row of t->ncols cells (copied). A NULL or empty cell is shown as "-"; control characters
 * (newlines, tabs) are shown as spaces so a row stays one line. Returns 0, or -1 when out of memory.
 */
int bgw_table_add_row(struct bgw_table *t, const char *const *cells);

/* Writes the table to f: the last column is not padded, lines end in "\n". Widths count UTF-8 code points. */
void bgw_table_print(const struct bgw_table *t, FILE *f);

/* Frees the cells; t can be initialised again. */
void bgw_table_free(struct bgw_table *t);

#endif
