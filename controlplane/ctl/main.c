/*
 * main.c - bgwctl: the CLI for bgw-control's admin API. For now only its command-line surface exists.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bgwctl [--server URL] [--token-file F] COMMAND\n"
            "commands: get KIND [NAME] [-o table|json|yaml], apply -f FILE, delete KIND NAME,\n"
            "          status, endpoints SERVICE, version\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'},
        {"server", required_argument, 0, 1}, {"token-file", required_argument, 0, 2},
        {0, 0, 0, 0},
    };
    int n;
    char **av = bgw_cli_with_env(argc, argv, opts, &n);
    int c;
    while ((c = getopt_long(n, av, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'V': printf("bgwctl %s\n", BGW_VERSION); return 0;
        case '?': usage(stderr); return 2;
        default: break;
        }
    }
    if (optind < n && strcmp(av[optind], "version") == 0) { printf("bgwctl %s\n", BGW_VERSION); return 0; }
    if (optind >= n) { usage(stderr); return 2; }
    fprintf(stderr, "bgwctl: the admin API is not implemented in this build yet\n");
    return 1;
}
