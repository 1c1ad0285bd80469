/* main.c - cworker: parse options, register the functions (built-ins, download_link,
 * plugins, commands), set up signals, and run libcq's worker. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cq/cq.h>

#include "dlopts.h"
#include "download.h"
#include "functions.h"
#include "cli.h"
#include "http.h"
#include "netpolicy.h"
#include "util.h"

static cq_worker *the_worker;
static struct netpolicy *running_policy; /* the policy of the run, kept until exit */

static void on_signal(int sig)
{
    (void)sig;
    cq_worker_stop(the_worker);
}

enum {
    O_PREFIX = 256,
    O_MAX_JOBS,
    O_MAX_RECOVERIES,
    O_SHUTDOWN,
    O_ROOT,
    O_MAX_SIZE,
    O_CONNECT,
    O_RETRY_BASE,
    O_RESULT_TTL,
    O_FAILURE_TTL,
    O_LOG_LEVEL,
    O_LOG_FORMAT,
    O_SUMMARY,
    O_LEASE,
    O_LIST,
    O_LOAD,
    O_COMMAND,
    O_COMMAND_FILE
};

static const struct cli_option options[] = {
    CLI_URL,
    CLI_TLS,
    CLI_PREFIX(O_PREFIX),
    {"concurrency", 'c', "N",
     "jobs run at once (default: 64): a thread each for jobs that\n"
     "hold one; download_link's (deferred while their bytes come)\n"
     "share a few"},
    {"burst", 'b', NULL,
     "exit 0 once the queues are empty and no job is running\n"
     "(jobs scheduled for later, retries included, stay for\n"
     "other workers, as with rq worker --burst)"},
    {"max-jobs", O_MAX_JOBS, "N",
     "exit 0 after taking N jobs and finishing them (default: 0 = no\n"
     "limit)"},
    {"max-recoveries", O_MAX_RECOVERIES, "N",
     "fail a job unrun once it came back from dead workers more\n"
     "than N times (each died while it ran it: a crash, an OOM\n"
     "kill, a SIGKILL; or went silent past its lease), so that a\n"
     "job that kills every worker that takes it ends (default: 3;\n"
     "0 = fail it the first time it comes back)"},
    {"shutdown-timeout", O_SHUTDOWN, "D",
     "on SIGTERM, SIGINT or SIGHUP, time running jobs get to finish\n"
     "before they go back to their queues (default: 25s); a second\n"
     "signal puts them back at once"},
    {"download-root", O_ROOT, "DIR",
     "download_link writes only below DIR (default: the working\n"
     "directory); made with its parents if missing; cworker does\n"
     "not start unless it is a directory it can write in (the\n"
     "working directory, when no DIR is given: a warning)"},
    {"max-size", O_MAX_SIZE, "SIZE", "largest download (default: 50M; 0 = no limit)"},
    {"connect-timeout", O_CONNECT, "D",
     "HTTP connect timeout (default: 10s; 0 = libcurl's own, 300s)"},
    DLOPTS_CLI_OPTIONS,
    {"retry-base", O_RETRY_BASE, "D",
     "delay before the first retry, doubled for each further one,\n"
     "capped at 1h, then a jitter of +-25% (default: 1s)"},
    {"lease", O_LEASE, "D",
     "how long a worker may go without a heartbeat (one every 2s)\n"
     "before it is dead and others put its jobs back, a second\n"
     "later at most (3s to 1h; default: 10s); a worker whose\n"
     "process died is found sooner, 1-2s after, by its connections\n"
     "to Redis closing"},
    {"result-ttl", O_RESULT_TTL, "D",
     "keep a finished job's status this long, in whole seconds\n"
     "(default: 500s; 0 = drop at once; -1 = keep)"},
    {"failure-ttl", O_FAILURE_TTL, "D",
     "keep a failed job's status this long, in whole seconds\n"
     "(default: 365d; 0 = drop at once, and not list it among\n"
     "the failed, cq:failed; -1 = keep)"},
    CLI_LOG_LEVEL(O_LOG_LEVEL),
    CLI_LOG_FORMAT(O_LOG_FORMAT),
    {"summary-interval", O_SUMMARY, "D",
     "log a summary line at info this often when there was work:\n"
     "jobs ended and per second, failures, retries, in flight\n"
     "(default: 60s; 0 = never)"},
    {"load", O_LOAD, "PATH.so",
     "load a plugin: a shared object whose cq_plugin_init registers\n"
     "functions (repeatable; also $CQ_PLUGINS, paths separated by\n"
     "':'); see docs/EXTENDING.md"},
    {"command", O_COMMAND, "NAME=PROGRAM",
     "serve the function NAME by running PROGRAM with the job's args\n"
     "as its argv, never through a shell; NAME:ARGS=PROGRAM declares\n"
     "the arguments (e.g. 'resize:FILE WIDTH:integer=/usr/bin/x');\n"
     "exit 0 finishes the job, 75 fails it transiently (retried),\n"
     "73 or 74 (EX_CANTCREAT, EX_IOERR) says this host failed (the\n"
     "job goes back for another worker), any other status fails\n"
     "it (repeatable)"},
    {"command-file", O_COMMAND_FILE, "FILE",
     "one NAME=PROGRAM or NAME:ARGS=PROGRAM a line, as --command\n"
     "takes it, after every --command (# comments; repeatable)"},
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
        "\n" CLI_NOTE_DURATIONS CLI_NOTE_SIZES
        "At start, a Redis that answers LOADING (it reads its data back after a restart) is\n"
        "waited for, said once, until the load is done or a signal stops the wait; one that\n"
        "cannot be reached, or refuses the worker otherwise, ends the start at once.\n"
        "Exit status: 0 after a clean stop (signal, --burst, --max-jobs); 1 when the worker could\n"
        "not start (Redis unreachable, bad download root, a plugin or command that cannot load, no\n"
        "threads), or when it stopped with Redis unreachable, so that it could not record the\n"
        "outcome of an ended job or deregister (the jobs it held then return to their queues when\n"
        "its lease expires, and run again); 2 for a usage error, a --command's or a\n"
        "--command-file line's too: wrong as written, or with a name another function has (a\n"
        "built-in's, a plugin's, an earlier --command's or line's).\n");
}

/* Add one command spec, given where (what an error line starts with: "--command ", or
 * "--command-file F line N: "): one wrong as written, or whose name is taken, is a usage
 * error (2, cli_error); a program that cannot run stops the worker as a plugin that cannot
 * load does (1). */
static int add_one_command(const struct cli *cli, cq_worker *w, const char *spec, const char *where)
{
    char err[512];

    if (cq_worker_check_command(w, spec, err, sizeof err) != 0)
        return cli_error(cli, "%s%s", where, err);
    if (cq_worker_add_command(w, spec, err, sizeof err) != 0) {
        fprintf(stderr, "cworker: %s%s\n", where, err);
        return 1;
    }
    return 0;
}

/* --command-file: one command spec a line. A line wrong as written, or whose name is taken,
 * is a usage error as the same --command is (2, cli_error); a program that cannot run, or a
 * file that cannot be read, stops the worker as a plugin that cannot load does (1). */
static int add_command_file(const struct cli *cli, cq_worker *w, const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL, where[PATH_MAX + 64];
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;

    if (f == NULL) {
        fprintf(stderr, "cworker: --command-file %s: %s\n", path, strerror(errno));
        return 1;
    }
    while (rc == 0 && (len = getline(&line, &cap, f)) != -1) {
        char *p = line, *nul;
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        snprintf(where, sizeof where, "--command-file %s line %ld: ", path, lineno);
        while (*p == ' ' || *p == '\t') p++;
        /* A comment is read no further than its '#', so a NUL byte in it drops nothing: it
         * is let be, as any other byte there (it refused the whole file). */
        if (*p == '#') continue;
        /* Elsewhere the line would end there, what follows dropped without a word
         * (a=/bin/x\0junk served a as /bin/x; blanks, then \0a=/bin/x, served nothing). */
        nul = memchr(line, '\0', (size_t)len);
        if (nul != NULL) {
            rc = cli_error(cli, "%sa NUL byte at column %zu (a spec holds none)", where,
                           (size_t)(nul - line) + 1);
            break;
        }
        if (*p == '\0') continue;
        rc = add_one_command(cli, w, p, where);
    }
    /* getline's -1 is also a read error (a directory: EISDIR), which is no empty file. */
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "cworker: --command-file %s: %s\n", path, strerror(errno));
        rc = 1;
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
    struct dlopts dl; /* --deny-networks, --allow-hosts, --content: limits.policy, owned */
    int nloads, ncommands, nfiles, list;
    const char *url, *prefix; /* --url, --prefix: NULL, the environment's, if set */
};

/* Append optarg to list (of cap) for the current option. 0, or a usage error's status. */
static int add_to(const struct cli *cli, const char **list, int *n, int cap)
{
    if (*n == cap) return cli_error(cli, "--%s: at most %d", cli->opt, cap);
    list[(*n)++] = optarg;
    return 0;
}

/* A file's path for list: an empty one is a usage error (it read "--load plugin : No such
 * file or directory", exit 1). 0 or 2. */
static int add_path(const struct cli *cli, const char **list, int *n, int cap, const char *what)
{
    if (optarg[0] == '\0') return cli_error(cli, "--%s: empty path; give %s", cli->opt, what);
    return add_to(cli, list, n, cap);
}

/* --command NAME=PROGRAM: a spec that is wrong as written is a usage error here; one whose
 * program cannot be found fails later, as the worker starts (add_functions). 0 or 2. */
static int add_command(const struct cli *cli, struct opts *o)
{
    char err[512];

    if (cq_command_check(optarg, err, sizeof err) != 0) return cli_error(cli, "--command %s", err);
    return add_to(cli, o->commands, &o->ncommands, 64);
}

/* A setting of the worker itself: the option's name is the name cq_worker_set takes, and
 * its error starts with that name. 0 or 2. */
static int set(const struct cli *cli, cq_worker *w, const char *value)
{
    char err[512];
    size_t len = strlen(cli->opt);

    if (cq_worker_set(w, cli->opt, value, err, sizeof err) == 0) return 0;
    if (strncmp(err, cli->opt, len) == 0 && err[len] == ':') return cli_error(cli, "--%s", err);
    return cli_error(cli, "--%s: %s", cli->opt, err);
}

/* $CQ_REDIS_URL and $CQ_PREFIX, which the worker reads where --url and --prefix were not
 * given, and an empty --url or --prefix: checked with the options, so that a bad one is a
 * usage error that names the variable or the option, as in cenqueue and cqctl. 0 or 2. */
static int check_env(const struct cli *cli, const struct opts *o)
{
    char err[512];

    if (cli_check_settings(o->url, o->prefix, err, sizeof err) != 0)
        return cli_error(cli, "%s", err);
    return 0;
}

/* A setting of the worker's own (the current option): --url and --prefix are also kept in o
 * for check_env. 0 or 2. */
static int set_setting(const struct cli *cli, cq_worker *w, struct opts *o)
{
    int redis = strcmp(cli->opt, "url") == 0 || strcmp(cli->opt, "prefix") == 0;

    if (strcmp(cli->opt, "url") == 0) o->url = optarg;
    if (strcmp(cli->opt, "prefix") == 0) o->prefix = optarg;
    /* an empty one is refused as cenqueue and cqctl refuse it */
    return redis && *optarg == '\0' ? check_env(cli, o) : set(cli, w, optarg);
}

#define QUEUES_HINT "cworker takes its queues as arguments: cworker high default low"

/* Parse the command line into w and o, with cli (kept for the usage errors found later).
 * Returns -1 to go on, or an exit status. */
static int parse_options(struct cli *cli, cq_worker *w, struct opts *o, int argc, char **argv)
{
    char err[512];
    int c, rc = 0, i;

    /* cenqueue, cproducer and cqctl requeue take -q/--queue, so a first worker is often
     * started with it; a worker's queues are its arguments. */
    static const struct cli_hint hints[] = {
        {"-q", QUEUES_HINT}, {"--queue", QUEUES_HINT}, {"--queues", QUEUES_HINT}, {NULL, NULL}};

    cli_begin(cli, "cworker", CQ_VERSION, usage, options, sizeof options / sizeof options[0], 0);
    cli->hints = hints;
    while (rc == 0 && (c = cli_next(cli, argc, argv)) != -1) {
        switch (c) {
        case CLI_STOP: rc = cli->status == 0 ? CLI_STOP : cli->status; break;
        case 'b': rc = set(cli, w, "1"); break;
        case O_ROOT: o->root = optarg; break;
        case CLI_O_TLS_CA:
        case CLI_O_TLS_CERT:
        case CLI_O_TLS_KEY: cli_tls(c, optarg); break;
        case O_MAX_SIZE: rc = cli_size(cli, optarg, &o->limits.max_bytes); break;
        case O_CONNECT: rc = cli_duration(cli, optarg, &o->limits.connect_timeout); break;
        case O_LIST: o->list = 1; break;
        case O_LOAD: rc = add_path(cli, o->loads, &o->nloads, 64, "the plugin's .so file"); break;
        case O_COMMAND: rc = add_command(cli, o); break;
        case O_COMMAND_FILE:
            rc = add_path(cli, o->command_files, &o->nfiles, 16, "a file of NAME=PROGRAM lines");
            break;
        default: /* what download_link may fetch (dlopts.h), or the worker's own settings */
            rc = dlopts_take(cli, &o->dl, c, optarg);
            if (rc == 1) rc = set_setting(cli, w, o);
            break;
        }
    }
    cli_end(cli);
    if (rc != 0) return rc == CLI_STOP ? 0 : rc;
    rc = check_env(cli, o);
    if (rc == 0) rc = dlopts_finish(cli, &o->dl, &o->limits);
    if (rc != 0) return rc;
    for (i = optind; i < argc; i++) {
        if (cq_worker_add_queue(w, argv[i], err, sizeof err) == 0) continue;
        /* cqctl info and this worker's log show its queues as high,default,low, the unit
         * takes cworker@high:default:low and the image's CQ_QUEUES commas: a list in one
         * argument is a likely slip, and the fix is the command line's own form. */
        if (strpbrk(argv[i], ",: \t") != NULL)
            return cli_error(
                cli, "%s; give the queues as separate arguments: cworker high default low", err);
        return cli_error(cli, "%s", err);
    }
    return -1;
}

/* Every function in place before anything else: one that cannot load stops the worker here,
 * with one line, before it takes a job. A --command (or a --command-file line) whose name is
 * taken (a built-in's, a plugin's, an earlier one's) is a usage error, as one wrong as written
 * is; that is known only now, with the functions loaded before it. 0, 1, or 2 (cli_error). */
static int add_functions(const struct cli *cli, cq_worker *w, const struct opts *o)
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
    for (i = 0; rc == 0 && i < o->ncommands; i++)
        rc = add_one_command(cli, w, o->commands[i], "--command ");
    for (i = 0; rc == 0 && i < o->nfiles; i++) rc = add_command_file(cli, w, o->command_files[i]);
    return rc;
}

/* --download-root: made if missing, and a directory cworker can write in; otherwise it does
 * not start (rather than send back every download_link job it takes). Without the option
 * the working directory is the root, and a worker that serves other functions may well run
 * where it cannot write (systemd's /, a read-only container): it only says so. 0 or 1. */
static int set_root(cq_worker *w, const char *root)
{
    char err[1024], cwd[PATH_MAX];
    const char *dir = root;

    /* The working directory named by its path in the warning, where it said '.' */
    if (dir == NULL) dir = getcwd(cwd, sizeof cwd) != NULL ? cwd : ".";
    if (download_check_root(dir, err, sizeof err) != 0) {
        if (root != NULL) {
            fprintf(stderr, "cworker: --download-root: %s\n", err);
            return 1;
        }
        fprintf(stderr,
                "cworker: warning: download_link cannot write in the working directory: %s "
                "(give --download-root)\n",
                err);
    }
    if (cq_worker_set(w, "root", root ? root : ".", err, sizeof err) != 0) {
        fprintf(stderr, "cworker: --download-root: %s\n", err);
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
    /* A closing terminal (or a habit of "kill -HUP to reload"): a clean stop, not death
     * without deregistering, which would leave the jobs held until the lease expires. Unless
     * it was started to ignore hangups (nohup): then it still does. */
    {
        struct sigaction old;
        if (sigaction(SIGHUP, NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(SIGHUP, &sa, NULL);
    }
}

/* Everything but the worker's lifetime, which main owns. */
static int run(cq_worker *w, int argc, char **argv)
{
    struct opts o;
    struct cli cli;
    int rc;

    memset(&o, 0, sizeof o);
    http_limits_default(&o.limits);
    dlopts_init(&o.dl);
    rc = parse_options(&cli, w, &o, argc, argv);
    if (rc < 0) {
        rc = add_functions(&cli, w, &o);
        if (rc == 0) rc = -1;
    }
    if (rc < 0 && o.list) {
        cq_registry_print(cq_worker_registry(w), stdout);
        rc = cli_stdout_flush("cworker", "the functions") == 0 ? 0 : 1;
    }
    if (rc < 0 && set_root(w, o.root) != 0) rc = 1;
    if (rc < 0) {
        /* A handler that ignored the stop may still run after cq_worker_run returns (the
         * worker then leaves it behind as the process exits), and a download reads the
         * policy: it stays until exit, reachable from here. */
        running_policy = o.dl.policy;
        the_worker = w;
        setup_signals();
        return cq_worker_run(w);
    }
    dlopts_free(&o.dl);
    return rc;
}

/* One malloc arena a CPU the process may use, where glibc would make up to 8 (one per thread
 * that allocates, until then). cworker's threads are few a CPU (executors made as jobs need
 * them, a transfer thread a CPU), and a job's memory moves between them (a deferred
 * download's state is made on one executor and freed on another): each arena more keeps its
 * own free pages. Measured (docs/BENCHMARKS.md): 0.1 MB of the 4.0 MB `cworker -c 64` has
 * downloading, no-op drains as fast. The environment's choice, if it made one
 * (MALLOC_ARENA_MAX, or glibc.malloc.arena_max in GLIBC_TUNABLES), stands. Before any thread. */
static void set_malloc_arenas(void)
{
    const char *t = getenv("GLIBC_TUNABLES");

    if (getenv("MALLOC_ARENA_MAX") != NULL || (t != NULL && strstr(t, "arena_max") != NULL)) return;
    mallopt(M_ARENA_MAX, cpus_usable());
}

int main(int argc, char **argv)
{
    cq_worker *w;
    int rc;

    set_malloc_arenas();
    w = cq_worker_new();
    rc = run(w, argc, argv);

    cq_worker_free(w);
    return rc;
}
