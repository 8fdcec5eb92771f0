/* cli.c - merges BGW_<FLAG> environment variables into argv ahead of the real flags (see cli.h). */
#include "cli.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *xstrdup_printf(const char *a, const char *b)
{
    size_t n = strlen(a) + (b ? strlen(b) + 1 : 0) + 3;
    char *s = malloc(n);
    if (!s) abort();
    if (b) snprintf(s, n, "--%s=%s", a, b);
    else snprintf(s, n, "--%s", a);
    return s;
}

/* The merged argv lives as long as the process (getopt hands out pointers into it). */
static char **volatile g_argv;

char **bgw_cli_with_env(int argc, char **argv, const struct option *opts, int *out_argc)
{
    size_t nopts = 0;
    while (opts[nopts].name) nopts++;
    char **out = calloc((size_t)argc + nopts + 1, sizeof *out);
    if (!out) abort();
    int n = 0;
    out[n++] = argv[0];
    for (size_t i = 0; i < nopts; i++) {
        const char *name = opts[i].name;
        if (strcmp(name, "help") == 0 || strcmp(name, "version") == 0) continue;
        char env[128] = "BGW_";
        size_t k = 4;
        for (const char *p = name; *p && k + 1 < sizeof env; p++)
            env[k++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        env[k] = 0;
        const char *v = getenv(env);
        if (!v) continue;
        if (opts[i].has_arg == no_argument) {
            if (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0)
                out[n++] = xstrdup_printf(name, NULL);
        } else {
            out[n++] = xstrdup_printf(name, v);
        }
    }
    for (int i = 1; i < argc; i++) out[n++] = argv[i];
    out[n] = NULL;
    *out_argc = n;
    g_argv = out;
    return out;
}
