/* cli.h - one table per program for its options: getopt_long's tables and the options part
 * of --help are both made from it, so that the help lists exactly what is parsed, and the
 * options every cq command shares (CLI_URL, CLI_PREFIX, ...) read the same everywhere.
 * For the programs (producer/, worker/), not libcq's API. */
#ifndef CQ_CLI_H
#define CQ_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

struct cli_option {
    const char *name; /* the long name without "--"; NULL: a heading, help is its text */
    int key;          /* the short letter, or a number >= 256 for a long-only option */
    const char *arg;  /* the argument's name in --help ("URL"); NULL for a flag */
    const char *help; /* the help, lines separated by '\n' */
};

#define CLI_URL                                                        \
    {                                                                  \
        "url", 'u', "URL",                                             \
            "Redis URL: redis://[[user]:pass@]host[:port][/db] or\n"   \
            "unix:///path.sock[?db=N] (default: $CQ_REDIS_URL, else\n" \
            "redis://127.0.0.1:6379)"                                  \
    }
#define CLI_PREFIX(key)                                                              \
    {                                                                                \
        "prefix", (key), "P", "Redis key prefix (default: $CQ_PREFIX, else \"cq:\")" \
    }
#define CLI_QUEUE                                                      \
    {                                                                  \
        "queue", 'q', "NAME", "queue to enqueue to (default: default)" \
    }
#define CLI_HELP                                      \
    {                                                 \
        "help", 'h', NULL, "print this help and exit" \
    }
#define CLI_VERSION                                        \
    {                                                      \
        "version", 'V', NULL, "print the version and exit" \
    }

/* getopt_long's tables for opts[0..n-1]: *longopts (ending in a zero entry) and *shortopts
 * ("u:c:bhV"; with stop_at_arg, starting with '+' so that parsing stops at the first
 * non-option). Both are malloc'ed; free them with cli_free. */
void cli_getopt(const struct cli_option *opts, size_t n, int stop_at_arg, struct option **longopts,
                char **shortopts);
void cli_free(struct option *longopts, char *shortopts);

/* The options every command handles alike, for the default case of its getopt switch: -h
 * prints usage to stdout, -V "prog version"; both return CLI_DONE (exit 0). Anything else is
 * an unknown option (getopt has named it): a pointer to --help on stderr, and 2. */
#define CLI_DONE (-2)
int cli_standard(int opt, const char *prog, const char *version, void (*usage)(FILE *));

/* The options part of --help: "  -u, --url URL            help", the help in one column and
 * its lines below each other; a heading on a line of its own after a blank line. */
void cli_print(FILE *f, const struct cli_option *opts, size_t n);

#endif
