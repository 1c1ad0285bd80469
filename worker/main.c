/* main.c - cworker: parse options, register the functions (built-ins, download_link,
 * plugins, commands), set up signals, and run libcq's worker. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cq/cq.h>

#include "functions.h"
#include "cli.h"
#include "http.h"
#include "util.h"

static cq_worker *the_worker;

static void on_signal(int sig)
{
    (void)sig;
    cq_worker_stop(the_worker);
}

enum {
    O_PREFIX = 256,
    O_MAX_JOBS,
    O_SHUTDOWN,
    O_ROOT,
    O_MAX_SIZE,
    O_CONNECT,
    O_RETRY_BASE,
    O_RESULT_TTL,
    O_FAILURE_TTL,
    O_LOG_LEVEL,
    O_LIST,
    O_LOAD,
    O_COMMAND,
    O_COMMAND_FILE
};

static const struct cli_option options[] = {
    CLI_URL,
    CLI_PREFIX(O_PREFIX),
    {"concurrency", 'c', "N", "jobs run at once, each on its own thread (default 16)"},
    {"burst", 'b', NULL,
     "exit 0 once the queues are empty and no job is running\n"
     "(jobs scheduled for later, retries included, stay for\n"
     "other workers, as with rq worker --burst)"},
    {"max-jobs", O_MAX_JOBS, "N", "exit 0 after taking N jobs and finishing them"},
    {"shutdown-timeout", O_SHUTDOWN, "D",
     "on SIGTERM/SIGINT, time running jobs get to finish before they\n"
     "go back to their queues (default 25s); a second signal puts\n"
     "them back at once"},
    {"download-root", O_ROOT, "DIR",
     "download_link writes only below DIR (default: the working\n"
     "directory); created if missing"},
    {"max-size", O_MAX_SIZE, "SIZE", "largest download, e.g. 50M (default 50M)"},
    {"connect-timeout", O_CONNECT, "D", "HTTP connect timeout (default 10s)"},
    {"retry-base", O_RETRY_BASE, "D",
     "delay before the first retry, doubled for each further one,\n"
     "with jitter (default 1s; capped at 1h)"},
    {"result-ttl", O_RESULT_TTL, "SECS",
     "keep a finished job's status this long (default 500; 0 = drop\n"
     "at once; -1 = keep)"},
    {"failure-ttl", O_FAILURE_TTL, "SECS",
     "keep a failed job's status this long (default 31536000, a year)"},
    {"log-level", O_LOG_LEVEL, "LEVEL", "error, warn, info or debug (default info)"},
    {"load", O_LOAD, "PATH.so",
     "load a plugin: a shared object whose cq_plugin_init registers\n"
     "functions (repeatable; also $CQ_PLUGINS, paths separated by\n"
     "':'); see docs/EXTENDING.md"},
    {"command", O_COMMAND, "NAME=PROGRAM",
     "serve the function NAME by running PROGRAM with the job's args\n"
     "as its argv, never through a shell; NAME:ARGS=PROGRAM declares\n"
     "the arguments (e.g. 'resize:FILE WIDTH:integer=/usr/bin/x');\n"
     "exit 0 finishes the job, 75 fails it transiently (retried),\n"
     "any other status fails it (repeatable)"},
    {"command-file", O_COMMAND_FILE, "FILE",
     "one NAME=PROGRAM or NAME:ARGS=PROGRAM a line (# comments)"},
    {"list-functions", O_LIST, NULL, "print the functions this worker would serve and exit"},
    CLI_HELP,
    CLI_VERSION,
};

static void usage(FILE *f)
{
    fprintf(
        f,
        "Usage: cworker [OPTIONS] [QUEUE...]\n"
        "\n"
        "Take jobs from the Redis lists of the QUEUEs (default: \"default\") and run them through\n"
        "the function registry. With several queues, a queue is served only while those before it\n"
        "are empty (strict priority: cworker high default low).\n"
        "\n"
        "Options:\n");
    cli_print(f, options, sizeof options / sizeof options[0]);
    fprintf(
        f,
        "\n"
        "Durations take a unit: 250ms, 30s, 5m, 2h (a bare number is seconds).\n"
        "Exit status: 0 after a clean stop (signal, --burst, --max-jobs); 1 when the worker could\n"
        "not start (Redis unreachable, bad download root, a plugin or command that cannot load, no\n"
        "threads), or could not deregister when it stopped (its unfinished jobs then return to\n"
        "their queues when its lease expires); 2 for a usage error.\n");
}

static int bad(const char *opt, const char *val)
{
    fprintf(stderr, "cworker: invalid value '%s' for %s (see cworker --help)\n", val, opt);
    return 2;
}

/* --command-file: one command spec a line. */
static int add_command_file(cq_worker *w, const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL, err[512];
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;

    if (f == NULL) {
        fprintf(stderr, "cworker: --command-file %s: %s\n", path, strerror(errno));
        return 1;
    }
    while (rc == 0 && (len = getline(&line, &cap, f)) != -1) {
        char *p = line;
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\0' || *p == '#') continue;
        if (cq_worker_add_command(w, p, err, sizeof err) != 0) {
            fprintf(stderr, "cworker: %s line %ld: %s\n", path, lineno, err);
            rc = 1;
        }
    }
    free(line);
    fclose(f);
    return rc;
}

/* $CQ_PLUGINS: paths separated by ':'. */
static int load_env_plugins(cq_worker *w)
{
    const char *env = getenv("CQ_PLUGINS");
    char *copy, *p, *next, err[1024];
    int rc = 0;

    if (env == NULL || env[0] == '\0') return 0;
    copy = xstrdup(env);
    for (p = copy; p != NULL && rc == 0; p = next) {
        next = strchr(p, ':');
        if (next != NULL) *next++ = '\0';
        if (*p == '\0') continue;
        if (cq_worker_load(w, p, err, sizeof err) != 0) {
            fprintf(stderr, "cworker: $CQ_PLUGINS: %s\n", err);
            rc = 1;
        }
    }
    free(copy);
    return rc;
}

/* What the options ask for beyond the worker's own settings. */
struct opts {
    struct http_limits limits;
    const char *root;
    const char *loads[64], *commands[64], *command_files[16];
    int nloads, ncommands, nfiles, list;
};

/* Append optarg to list (of cap) for option name. 0, or a usage error's exit status. */
static int add_to(const char **list, int *n, int cap, const char *name)
{
    if (*n == cap) {
        fprintf(stderr, "cworker: --%s: at most %d (see cworker --help)\n", name, cap);
        return 2;
    }
    list[(*n)++] = optarg;
    return 0;
}

/* A setting of the worker itself, by the name cq_worker_set takes. 0 or 2. */
static int set(cq_worker *w, const char *name, const char *value)
{
    char err[512];

    if (cq_worker_set(w, name, value, err, sizeof err) == 0) return 0;
    if (strncmp(err, "invalid value", 13) == 0) {
        /* The library names the setting; the command line names the option. */
        const char *rest = strstr(err, name);
        fprintf(stderr, "cworker: invalid value '%s' for --%s%s (see cworker --help)\n", value,
                name, rest ? rest + strlen(name) : "");
        return 2;
    }
    fprintf(stderr, "cworker: --%s: %s (see cworker --help)\n", name, err);
    return 2;
}

/* Parse the command line into w and o. Returns -1 to go on, or an exit status. */
static int parse_options(cq_worker *w, struct opts *o, int argc, char **argv)
{
    /* Options that are the worker's own settings, by the names cq_worker_set takes. */
    static const char *const setting[] = {
        [O_PREFIX - 256] = "prefix",
        [O_MAX_JOBS - 256] = "max-jobs",
        [O_SHUTDOWN - 256] = "shutdown-timeout",
        [O_RETRY_BASE - 256] = "retry-base",
        [O_RESULT_TTL - 256] = "result-ttl",
        [O_FAILURE_TTL - 256] = "failure-ttl",
        [O_LOG_LEVEL - 256] = "log-level",
    };
    struct option *longopts;
    char err[512], *shortopts;
    int c, rc = 0, i;

    cli_getopt(options, sizeof options / sizeof options[0], 0, &longopts, &shortopts);
    while (rc == 0 && (c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        switch (c) {
        case 'u': rc = set(w, "url", optarg); break;
        case 'c': rc = set(w, "concurrency", optarg); break;
        case 'b': rc = set(w, "burst", "1"); break;
        case O_PREFIX:
        case O_MAX_JOBS:
        case O_SHUTDOWN:
        case O_RETRY_BASE:
        case O_RESULT_TTL:
        case O_FAILURE_TTL:
        case O_LOG_LEVEL: rc = set(w, setting[c - 256], optarg); break;
        case O_ROOT: o->root = optarg; break;
        case O_MAX_SIZE:
            if (parse_size(optarg, &o->limits.max_bytes) != 0) rc = bad("--max-size", optarg);
            break;
        case O_CONNECT:
            if (parse_duration(optarg, &o->limits.connect_timeout) != 0)
                rc = bad("--connect-timeout", optarg);
            break;
        case O_LIST: o->list = 1; break;
        case O_LOAD: rc = add_to(o->loads, &o->nloads, 64, "load"); break;
        case O_COMMAND: rc = add_to(o->commands, &o->ncommands, 64, "command"); break;
        case O_COMMAND_FILE: rc = add_to(o->command_files, &o->nfiles, 16, "command-file"); break;
        default: rc = cli_standard(c, "cworker", CQ_VERSION, usage); break;
        }
    }
    cli_free(longopts, shortopts);
    if (rc != 0) return rc == CLI_DONE ? 0 : rc;
    for (i = optind; i < argc; i++) {
        if (cq_worker_add_queue(w, argv[i], err, sizeof err) != 0) {
            fprintf(stderr, "cworker: %s\n", err);
            return 2;
        }
    }
    return -1;
}

/* Every function in place before anything else: one that cannot load stops the worker here,
 * with one line, before it takes a job. 0 or 1. */
static int add_functions(cq_worker *w, const struct opts *o)
{
    char err[1024] = "";
    int i, rc;

    if (http_global_init(err, sizeof err) != 0 ||
        app_register(cq_worker_registry(w), &o->limits) != 0) {
        fprintf(stderr, "cworker: %s\n", err[0] ? err : cq_registry_error(cq_worker_registry(w)));
        return 1;
    }
    rc = load_env_plugins(w);
    for (i = 0; rc == 0 && i < o->nloads; i++) {
        if (cq_worker_load(w, o->loads[i], err, sizeof err) != 0) {
            fprintf(stderr, "cworker: --load %s\n", err);
            rc = 1;
        }
    }
    for (i = 0; rc == 0 && i < o->ncommands; i++) {
        if (cq_worker_add_command(w, o->commands[i], err, sizeof err) != 0) {
            fprintf(stderr, "cworker: --command %s\n", err);
            rc = 1;
        }
    }
    for (i = 0; rc == 0 && i < o->nfiles; i++) rc = add_command_file(w, o->command_files[i]);
    return rc;
}

/* --download-root: created if missing (its parent must exist). 0 or 1. */
static int set_root(cq_worker *w, const char *root)
{
    char path[PATH_MAX], err[512];

    if (mkdir(root, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "cworker: --download-root '%s': %s\n", root, strerror(errno));
        return 1;
    }
    if (realpath(root, path) == NULL || cq_worker_set(w, "root", path, err, sizeof err) != 0) {
        fprintf(stderr, "cworker: --download-root '%s': %s\n", root, strerror(errno));
        return 1;
    }
    return 0;
}

static void setup_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Everything but the worker's lifetime, which main owns. */
static int run(cq_worker *w, int argc, char **argv)
{
    struct opts o;
    int rc;

    memset(&o, 0, sizeof o);
    o.root = ".";
    http_limits_default(&o.limits);
    rc = parse_options(w, &o, argc, argv);
    if (rc >= 0) return rc;
    if (add_functions(w, &o) != 0) return 1;
    if (o.list) {
        cq_registry_print(cq_worker_registry(w), stdout);
        return 0;
    }
    if (set_root(w, o.root) != 0) return 1;
    the_worker = w;
    setup_signals();
    return cq_worker_run(w);
}

int main(int argc, char **argv)
{
    cq_worker *w = cq_worker_new();
    int rc = run(w, argc, argv);

    cq_worker_free(w);
    return rc;
}
