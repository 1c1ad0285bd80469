/* cli.h - one table per program for its options: getopt_long's tables and the options part
 * of --help are both made from it, so that the help lists exactly what is parsed, and the
 * options every cq command shares (CLI_URL, CLI_PREFIX, ...) read the same everywhere.
 * For the programs (producer/, worker/), not libcq's API. */
#ifndef CQ_CLI_H
#define CQ_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include "rconn.h" /* RCONN_DEFAULT_URL, in CLI_URL's help */

struct cli_option {
    const char *name; /* the long name without "--"; NULL: a heading, help is its text */
    int key;          /* the short letter, or a number >= 256 for a long-only option */
    const char *arg;  /* the argument's name in --help ("URL"); NULL for a flag */
    const char *help; /* the help, lines separated by '\n' */
};

#define CLI_URL                                                              \
    {                                                                        \
        "url", 'u', "URL",                                                   \
            "Redis URL: redis://[[user]:pass@]host[:port][/db],\n"           \
            "rediss://... (TLS), unix://[[user]:pass@]/path.sock[?db=N],\n"  \
            "or "                                                            \
            "redis+sentinel://[[user]:pass@]host[:port][,host[:port]...]\n"  \
            "/MASTER[/db] (default: $CQ_REDIS_URL, else\n" RCONN_DEFAULT_URL \
            "); ?replicas=N after a TCP one:\n"                              \
            "cenqueue's and cproducer's enqueues and cworker's outcomes\n"   \
            "wait up to 1 s for N replicas (cqctl's writes do not)"          \
    }
/* rediss:// files: every command takes them, and hands them to libcq through the
 * environment (cli_tls), where rconn reads them. */
#define CLI_O_TLS_CA   1001
#define CLI_O_TLS_CERT 1002
#define CLI_O_TLS_KEY  1003
#define CLI_TLS                                                         \
    {"tls-ca", CLI_O_TLS_CA, "FILE",                                    \
     "with rediss://: the CAs to trust, PEM (default: $CQ_TLS_CA,\n"    \
     "else the system's)"},                                             \
        {"tls-cert", CLI_O_TLS_CERT, "FILE",                            \
         "with rediss://: a client certificate, PEM, for a server\n"    \
         "that asks for one (default: $CQ_TLS_CERT)"},                  \
    {                                                                   \
        "tls-key", CLI_O_TLS_KEY, "FILE",                               \
            "its private key, PEM (default: $CQ_TLS_KEY, else in the\n" \
            "--tls-cert file)"                                          \
    }
#define CLI_PREFIX(key)                                                              \
    {                                                                                \
        "prefix", (key), "P", "Redis key prefix (default: $CQ_PREFIX, else \"cq:\")" \
    }
#define CLI_QUEUE                                                      \
    {                                                                  \
        "queue", 'q', "NAME", "queue to enqueue to (default: default)" \
    }
#define CLI_LOG_LEVEL(key)                                                        \
    {                                                                             \
        "log-level", (key), "LEVEL", "error, warn, info or debug (default: info)" \
    }
#define CLI_LOG_FORMAT(key)                                                 \
    {                                                                       \
        "log-format", (key), "FORMAT",                                      \
            "text, or json: one JSON object a line with the keys time,\n"   \
            "level, program, pid and msg, for log shippers (default: text)" \
    }
#define CLI_HELP                                      \
    {                                                 \
        "help", 'h', NULL, "print this help and exit" \
    }
#define CLI_VERSION                                        \
    {                                                      \
        "version", 'V', NULL, "print the version and exit" \
    }

/* An option a program does not take but a user may well try (another command's), and what
 * to do instead: said after "unknown option 'OPT'". */
struct cli_hint {
    const char *opt;  /* as written: "-q", "--queue" */
    const char *hint; /* "the queues are arguments: ..." */
};

/* One command line being parsed. The fields are cli.c's; set them with cli_begin. */
struct cli {
    const char *prog;      /* "cworker": every message starts with it */
    const char *version;   /* printed by -V */
    void (*usage)(FILE *); /* -h prints it and stops; NULL: -h is returned like any option */
    const struct cli_option *opts;
    size_t n;
    const char *command; /* a command of the program's (cqctl's): errors point to its --help */
    const char *opt;     /* the long name of the option cli_next returned last */
    int status;          /* with CLI_STOP: the exit status (0 after -h/-V, 2 after an error) */
    int stdout_closed;   /* the process started with stdout closed (now /dev/null) */
    const struct cli_hint *hints; /* NULL, or ended by {NULL, NULL}: set after cli_begin */
    struct option *longopts;
    char *shortopts;
};

/* Prepare to parse with the table opts[0..n-1]. With stop_at_arg, parsing stops at the first
 * argument that is not an option (cenqueue FUNC ARG...: the ARGs may start with '-'). It
 * also tells libcq that the process is one of cq's commands, so that libcq's messages name
 * their options (--burst, --tls-ca) rather than cq_worker_set's settings and the variables
 * (audience.h): call it before starting a thread. */
void cli_begin(struct cli *c, const char *prog, const char *version, void (*usage)(FILE *),
               const struct cli_option *opts, size_t n, int stop_at_arg);
void cli_end(struct cli *c);
/* The first argument that is not an option or an option's value (a program's command), found
 * by a pass over a copy of argv with the same options that prints nothing; NULL when there is
 * none. The next cli_next starts from the beginning. */
const char *cli_first_operand(struct cli *c, int argc, char **argv);

/* The next option's key (optarg as getopt sets it), or -1 after the last option (optind is
 * then the first argument). -h (when usage is set) and -V are handled here; an unknown
 * option or a missing argument is reported in one line plus the pointer to --help. Both
 * return CLI_STOP with c->status the exit status. */
#define CLI_STOP (-2)
int cli_next(struct cli *c, int argc, char **argv);

/* stdout, the same in every command. A write there that failed means one thing everywhere:
 *   - its reader left (EPIPE: | head -1): nothing is said. The output was not delivered
 *     whole, so a command whose output is its result (ids, a listing, JSON, the outcomes, the
 *     links) exits 1; --help and --version exit 0 (text, not a result).
 *   - any other error (a full disk, /dev/full: ENOSPC; EIO): one line on stderr,
 *     "PROG: writing WHAT to stdout: REASON", and exit 1.
 * REASON is that of the first write that failed: a flush after it, or after a write stdio
 * made on its own, no longer has it.
 *
 * cli_stdout_flush flushes stdout and says so: 0 when everything written there is out,
 * CLI_STDOUT_GONE when its reader left, -1 after the line on stderr (said once, however many
 * flushes fail after). -h and -V check theirs here: cli_next's c->status is then 1 for -1. */
#define CLI_STDOUT_GONE 1
int cli_stdout_flush(const char *prog, const char *what);
/* Flush stdout as a line is written (a stream's, through a pipe): 0, or -1 with the reason
 * kept for the cli_stdout_flush at the end. */
int cli_stdout_push(void);
/* After a push that failed, for a caller that says more than the failure in its line (which
 * jobs went in): "writing WHAT to stdout: REASON" into buf; returns CLI_STDOUT_GONE when the
 * reader left, else -1. */
int cli_stdout_failure(const char *what, char *buf, size_t len);
/* After the caller's own line of that failure: cli_stdout_flush says it no more (it still
 * returns -1), so that it is one line. */
void cli_stdout_said(void);
/* Before a --help that nothing was written before: the whole text goes out in one write at
 * the flush, so that where it fails, cli_stdout_flush has the system's reason (a write stdio
 * made on its own while printing leaves none behind). */
void cli_help_buffer(void);

/* A usage error: "PROG: MESSAGE" and "Try 'PROG --help' for more information." on stderr.
 * Returns 2, the exit status of a usage error. */
int cli_error(const struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Check the -u and --prefix values (NULL: not given, so $CQ_REDIS_URL or $CQ_PREFIX, else
 * the defaults; "": given empty, refused) before anything connects: 0, or -1 with err naming
 * the option, as for any other ("--url: redis URL '...': ..."), or the variable
 * ("$CQ_PREFIX: ..."): a usage error. */
int cli_check_settings(const char *url, const char *prefix, char *err, size_t errlen);

/* The current option's value, as each kind reads everywhere; 0, or cli_error's 2 with
 * "PROG: --OPTION: 'VALUE' is not <what the kind takes>". */
int cli_duration(const struct cli *c, const char *val, double *out);
int cli_size(const struct cli *c, const char *val, long long *out);
int cli_long(const struct cli *c, const char *val, long min, long max, long *out);
/* One of choices[0..n-1] (e.g. the log levels): its index in *out. */
int cli_choice(const struct cli *c, const char *val, const char *const *choices, size_t n,
               int *out);

/* --tls-ca, --tls-cert, --tls-key (key): the file into the environment, $CQ_TLS_CA, ... */
void cli_tls(int key, const char *file);

/* The text each --help prints after its options, so that they say it alike. */
#define CLI_NOTE_DURATIONS \
    "Durations take a unit: 250ms, 30s, 5m, 2h, 30d (a bare number is seconds), up to 100 years.\n"
#define CLI_NOTE_SIZES "Sizes take a unit: 512K, 50M, 1G (a bare number is bytes).\n"

/* The options part of --help: "  -u, --url URL            help", the help in one column and
 * its lines below each other; a heading on a line of its own after a blank line. */
void cli_print(FILE *f, const struct cli_option *opts, size_t n);

#endif
