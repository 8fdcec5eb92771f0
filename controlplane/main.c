/*
 * main.c - bgw-control: the control-plane daemon. For now only its command-line surface exists; the
 * store, admin API and config stream are not built yet, and running it says so.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bgw-control [--state-dir DIR] [--bootstrap FILE] [--xds-listen ADDR:PORT]\n"
            "                   [--admin-listen ADDR:PORT] [--admin-token-file FILE] [--log-format text|json]\n"
            "       bgw-control --help | --version\n"
            "The control plane is not available in this build yet: run bgw-proxy --config FILE.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, 0, 'h'},          {"version", no_argument, 0, 'V'},
        {"state-dir", required_argument, 0, 1}, {"bootstrap", required_argument, 0, 2},
        {"xds-listen", required_argument, 0, 3}, {"admin-listen", required_argument, 0, 4},
        {"admin-token-file", required_argument, 0, 5}, {"log-format", required_argument, 0, 6},
        {0, 0, 0, 0},
    };
    int n;
    char **av = bgw_cli_with_env(argc, argv, opts, &n);
    int c;
    while ((c = getopt_long(n, av, "", opts, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'V': printf("bgw-control %s\n", BGW_VERSION); return 0;
        case '?': usage(stderr); return 2;
        default: break;
        }
    }
    if (optind < n) { usage(stderr); return 2; }
    fprintf(stderr, "bgw-control: the control plane is not implemented in this build yet\n");
    return 1;
}
