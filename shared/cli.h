/*
 * cli.h - flags from the command line and from the environment.
 *
 * Every long flag --some-flag can also be given as BGW_SOME_FLAG in the environment; the command line
 * wins over the environment. Boolean flags take "1", "true" or "yes" from the environment.
 */
#ifndef BGW_CLI_H
#define BGW_CLI_H

#include <getopt.h>

/*
 * Returns a new argv (argv[0], then one "--flag=value" / "--flag" per environment variable found for
 * opts, then argv[1..]) and stores its length in *out_argc. The array and its strings live as long as
 * the process (getopt hands out pointers into them). Never NULL (aborts on out of memory).
 */
char **bgw_cli_with_env(int argc, char **argv, const struct option *opts, int *out_argc);

#endif
