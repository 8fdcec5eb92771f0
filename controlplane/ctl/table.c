/*
 * table.c - aligned text tables (see table.h).
 */
#include "table.h"

#include <stdlib.h>
#include <string.h>

#define BGW__TABLE_GAP 3

/* Display width of a UTF-8 string: its code points (continuation bytes do not count). */
static size_t display_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) w++;
    return w;
}

static char *clean_copy(const char *s)
{
    if (!s || !*s) s = "-";
    char *c = strdup(s);
    if (!c) return NULL;
    for (char *p = c; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
    return c;
}

static int add_row(struct bgw_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, cap * t->ncols * sizeof *c);
        if (!c) return -1;
        t->cells = c;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = clean_copy(cells[i]);
        if (!row[i]) {
            while (i-- > 0) free(row[i]);
            return -1;
        }
    }
    t->nrows++;
    return 0;
}

int bgw_table_init(struct bgw_table *t, size_t ncols, const char *const *headers)
{
    *t = (struct bgw_table){.ncols = ncols};
    if (ncols == 0) return -1;
    return add_row(t, headers);
}

int bgw_table_add_row(struct bgw_table *t, const char *const *cells)
{
    return add_row(t, cells);
}

void bgw_table_print(const struct bgw_table *t, FILE *f)
{
    size_t *width = calloc(t->ncols, sizeof *width);
    if (!width) return;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t w = display_width(t->cells[r * t->ncols + c]);
            if (w > width[c]) width[c] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            fputs(cell, f);
            if (c + 1 < t->ncols)
                fprintf(f, "%*s", (int)(width[c] - display_width(cell) + BGW__TABLE_GAP), "");
        }
        fputc('\n', f);
    }
    free(width);
}

void bgw_table_free(struct bgw_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++) free(t->cells[i]);
    free(t->cells);
    *t = (struct bgw_table){0};
}
