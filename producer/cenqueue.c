/* cenqueue.c - enqueue any function from a shell or a script, through libcq's client API.
 *
 *   cenqueue [options] FUNC [ARG...]    one job; prints its id
 *   cenqueue [options] --stdin          one job a line ("FUNC ARG..."), pipelined in batches
 *   cenqueue --list-functions           what the workers serve (the catalog in Redis)
 *   cenqueue --wait [--wait-timeout D] ...   then wait for the jobs, one line as each ends
 *
 * Every job is checked against the function catalog that workers publish, and the built-ins,
 * before anything is sent, so a typo in a function name or a wrong number or type of args
 * never reaches a queue. --wait waits through libcq's cq_wait_each2 (pub/sub, no polling), so a
 * shell script can run a job and act on its result; it subscribes to the jobs' ends before
 * each batch goes in (cq_wait_prepare), so that a job that ends before the wait begins, its
 * status dropped at once (cworker --result-ttl 0), is seen all the same.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cq/cq.h>

#include "cli.h"
#include "declare.h"
#include "jobwait.h"
#include "keys.h"
#include "queuewarn.h"
#include "util.h"

#define BATCH 10000

/* SIGINT or SIGTERM while jobs go in: no more are read or sent, the batch being sent
 * finishes, and the ids of every job that went in are printed (also with --wait, which keeps
 * them for the wait) before exit 1, where the signal killed cenqueue between a batch's LPUSH
 * and its ids. A second one, of either kind, ends it at once. stop_wake: run_stdin's wake
 * pipe, so that a reader waiting on stdin (tail -f | cenqueue --stdin) returns; stop_tty: the
 * line goes after a progress line on a terminal, not at its end. */
static stop_flag stopping;
static int stop_wake = -1, stop_tty;

static void on_stop(int sig)
{
    static const char msg[] = "cenqueue: interrupted: stopping once the jobs being sent are in "
                              "(interrupt again to quit at once)\n";
    int e = errno, wake = __atomic_load_n(&stop_wake, __ATOMIC_ACQUIRE);

    (void)sig;
    stop_signals_to(SIG_DFL, 0);                      /* the next one, of either kind, kills */
    __atomic_store_n(&stopping, 1, __ATOMIC_RELAXED); /* as stop_requested loads it */
    if (stop_tty) (void)!write(STDERR_FILENO, "\r\033[K", 4);
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    if (wake >= 0) (void)!write(wake, "s", 1);
    errno = e;
}

static void catch_stops(void)
{
    stop_tty = isatty(STDERR_FILENO);
    stop_signals_to(on_stop, SA_RESTART);
}

struct opts {
    const char *url, *prefix, *queue, *id;
    int retries;
    double timeout, at;
    int use_stdin, quiet, no_check, wait;
    double wait_timeout; /* 0 = no limit */
    char warned[8][65];  /* functions warned about already (one warning each) */
    char **ids;          /* with --wait: the ids enqueued, to wait for */
    size_t nids, capids;
};

enum {
    O_PREFIX = 256,
    O_ID,
    O_RETRIES,
    O_TIMEOUT,
    O_IN,
    O_AT,
    O_STDIN,
    O_QUIET,
    O_NO_CHECK,
    O_LIST,
    O_WAIT,
    O_WAIT_TIMEOUT
};

static const struct cli_option options[] = {
    CLI_URL,
    CLI_TLS,
    CLI_QUEUE,
    CLI_PREFIX(O_PREFIX),
    {"id", O_ID, "ID",
     "use this job id instead of a new UUID (not with --stdin);\n"
     "refused while a job of that id has not ended"},
    {"retries", O_RETRIES, "N", "retries after a transient failure (default: the function's)"},
    {"timeout", O_TIMEOUT, "D", "time limit of one attempt (default: the function's)"},
    {"in", O_IN, "D", "run no sooner than D from now (not with --at)"},
    {"at", O_AT, "T", "run no sooner than Unix time T (not with --in)"},
    {"stdin", O_STDIN, NULL, "read jobs from standard input"},
    {"quiet", O_QUIET, NULL,
     "do not print job ids (with --wait: nothing on stdout); needed\n"
     "when stdout is closed, where the ids would be lost"},
    {"no-check", O_NO_CHECK, NULL, "send jobs without checking them against the catalog"},
    {"wait", O_WAIT, NULL,
     "then wait until every job enqueued has ended, printing\n"
     "one line for each as it ends (see above)"},
    {"wait-timeout", O_WAIT_TIMEOUT, "D", "with --wait: stop waiting after D (default: no limit)"},
    {"list-functions", O_LIST, NULL,
     "print the functions workers serve, which live workers serve\n"
     "each, and when each was last served; then exit"},
    CLI_HELP,
    CLI_VERSION,
};

static void usage(FILE *f)
{
    fprintf(
        f,
        "Usage: cenqueue [OPTIONS] FUNC [ARG...]\n"
        "       cenqueue [OPTIONS] --stdin\n"
        "       cenqueue [OPTIONS] --list-functions\n"
        "\n"
        "Enqueue a job that calls the function FUNC with the ARGs, and print its id. The job is\n"
        "checked first against the functions workers have published in Redis (and the built-ins):\n"
        "an unknown function, or the wrong number or type of arguments, is refused; a function no\n"
        "live worker of the queue serves right now is accepted with a warning (the job waits for\n"
        "one, or fails when a live worker of the queue that lacks the function takes it).\n"
        "Arguments declared integer, number or json are sent as JSON values. Options go before\n"
        "FUNC: all that follows it is its arguments, one starting with '-' too (cenqueue noop\n"
        "--help enqueues noop with the argument \"--help\").\n"
        "\n"
        "With --stdin, read one job a line (FUNC ARG..., separated by spaces or tabs; \"double\n"
        "quotes\" keep spaces, with \\\" and \\\\ inside them; blank lines and lines starting with #\n"
        "are skipped) and enqueue them in pipelined batches of %d,%03d, printing one id a line.\n"
        "A batch goes once no more input is at hand, so from a stream (tail -f | cenqueue\n"
        "--stdin) each job goes as its line comes.\n"
        "\n"
        "With --wait, the ids are not printed when the jobs are enqueued; instead, once all are,\n"
        "cenqueue waits for them and prints one line for each as it ends:\n"
        "  ID finished RESULT      (the result text or JSON; nothing after \"finished\" if none)\n"
        "  ID failed ERROR\n"
        "  ID canceled [WHY]\n"
        "  ID unknown              (no status when the wait read it, and no end heard: it was\n"
        "                          deleted or lost with Redis's data, or a worker with\n"
        "                          --result-ttl 0 dropped it while the waiting connection was\n"
        "                          down; its outcome unknown, exit 1)\n"
        "(a control byte of the text shown as \\n, \\r or \\xHH: each job is one line), and\n"
        "\"N/TOTAL jobs ended\" on stderr meanwhile when that is a terminal. Waiting does not\n"
        "poll: it subscribes to each job's end before the job goes in (docs/PROTOCOL.md), so\n"
        "that a job that ends first is seen too, even where its worker keeps no status\n"
        "(--result-ttl 0). When enqueueing fails, the ids of the jobs that went in are printed\n"
        "as without --wait, and nothing is waited for.\n"
        "When the wait ends before every job has, each id enqueued is still printed once: the\n"
        "others as \"ID STATE\" after --wait-timeout (queued, started, ...), as \"ID\" alone when\n"
        "Redis was lost or on SIGINT/SIGTERM (the jobs go on; follow them with cqctl job ID).\n"
        "A line that cannot be written (its reader left: | head -1) ends the wait there, exit\n"
        "1, saying on stderr how many jobs go on without their ids.\n"
        "\n"
        "On SIGINT or SIGTERM while the jobs go in, no more input is read and no more jobs\n"
        "are sent: those being sent finish, the id of every job that went in is printed (with\n"
        "--wait too), and stderr says where the input stopped, exit 1. A second signal quits\n"
        "at once.\n"
        "\n"
        "Options:\n",
        BATCH / 1000, BATCH % 1000);
    cli_print(f, options, sizeof options / sizeof options[0]);
    fprintf(
        f,
        "\n" CLI_NOTE_DURATIONS
        "Exit status: 0 when every job was enqueued (with --wait: and every one finished); 1 when\n"
        "Redis failed (the ids printed are those of the jobs that were enqueued; jobs go in\n"
        "transactions of 1,000), when the --id is refused (see --id), when the ids could not be\n"
        "written to stdout (a full disk, or its reader left: no job goes in after that), when\n"
        "it was interrupted (SIGINT, SIGTERM), or with --wait when a job failed or was canceled\n"
        "or is unknown, the timeout passed first (stderr says how many did not end), or the\n"
        "outcomes could not all be written; 2 for a usage error, or a job the check refuses, or\n"
        "one no worker could read (over 1 MiB, or not UTF-8), checked or not (with --stdin,\n"
        "the lines before it are enqueued, nothing from it on).\n");
}

/* Split line into fields in place (see usage for the rules). Returns the field count, or -1
 * for an unterminated quote. */
static int split_fields(char *line, char **fields, int max)
{
    char *p = line, *o;
    int n = 0;

    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (*p == '\0') return n;
        if (n == max) return n + 1;
        fields[n++] = o = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            if (*p == '"') {
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) p++;
                    *o++ = *p++;
                }
                if (*p != '"') return -1;
                p++;
            } else {
                *o++ = *p++;
            }
        }
        if (*p) p++;
        *o = '\0';
    }
}

/* A refusal is the job's fault (exit 2); a failure to read the catalog is Redis's (exit 1). */
static int refusal_status(const char *err)
{
    return strncmp(err, "reading the ", 12) == 0 ? 1 : 2;
}

/* A function the catalog lacks is a typo, or one whose first worker has not started yet (a
 * new plugin or command: workers publish what they serve when they start). The list of the
 * known ones shows the first; say the second, and the way to send the job all the same. */
static void unknown_hint(char *err, size_t errlen)
{
    size_t n = strlen(err);

    if (strncmp(err, "unknown function '", 18) != 0 || n >= errlen) return;
    snprintf(err + n, errlen - n,
             ": a function is known once a worker that serves it has started (cworker --load, "
             "--command); --no-check sends the job unchecked");
}

/* Warn once per function that no live worker serves it. */
static void warn_once(struct opts *o, const char *func, const char *warning)
{
    size_t i;

    if (warning[0] == '\0') return;
    for (i = 0; i < sizeof o->warned / sizeof o->warned[0] && o->warned[i][0]; i++)
        if (strcmp(o->warned[i], func) == 0) return;
    if (i < sizeof o->warned / sizeof o->warned[0])
        str_copy(o->warned[i], sizeof o->warned[i], func);
    fprintf(stderr, "cenqueue: warning: %s\n", warning);
}

/* --at: seconds since the epoch, as cq_jobspec_set_at takes them. 0/-1. */
static int parse_unix_time(const char *s, double *out)
{
    char *end;
    double v;

    if (*s == '\0' || isspace((unsigned char)*s)) return -1;
    errno = 0;
    v = strtod_c(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < 0 || v >= CQ_TIME_MAX) return -1;
    *out = v;
    return 0;
}

static cq_jobspec *make_job(struct opts *o, cq_client *c, const char *func, const char *const *args,
                            int nargs, char *err, size_t errlen)
{
    cq_jobspec *j = cq_jobspec_new_argv(func, args, nargs);
    char warning[512];

    if (j == NULL) { /* not a function name: cq_jobspec_new says so in libcq's words */
        cq_jobspec_free(cq_jobspec_new(func, NULL, err, errlen));
        return NULL;
    }
    if (o->id != NULL) cq_jobspec_set_id(j, o->id);
    cq_jobspec_set_queue(j, o->queue);
    if (o->retries >= 0) cq_jobspec_set_retries(j, o->retries);
    /* The options' checks keep both in range; a refusal here is still not run as a job
     * without its timeout, or now rather than later. */
    if ((o->timeout > 0 && cq_jobspec_set_timeout(j, o->timeout) != 0) ||
        (o->at > 0 && cq_jobspec_set_at(j, o->at) != 0)) {
        snprintf(err, errlen, "the job's timeout or due time is out of range");
        cq_jobspec_free(j);
        return NULL;
    }
    if (!o->no_check) {
        if (cq_client_check(c, j, warning, sizeof warning, err, errlen) != 0) {
            unknown_hint(err, errlen);
            cq_jobspec_free(j);
            return NULL;
        }
        warn_once(o, func, warning);
    } else if (cq_jobspec_check(j, err, errlen) != 0) {
        cq_jobspec_free(j);
        return NULL;
    }
    return j;
}

/* Whether arg is one of cenqueue's options as written (--wait, --queue=x, -q, -qhigh). */
static int is_option(const char *arg)
{
    const struct cli_option *op;

    for (op = options; op < options + sizeof options / sizeof options[0]; op++) {
        if (op->name == NULL) continue; /* a heading */
        size_t n = strlen(op->name);
        if (arg[0] == '-' && arg[1] == '-' && strncmp(arg + 2, op->name, n) == 0 &&
            (arg[2 + n] == '\0' || arg[2 + n] == '='))
            return 1;
        if (op->key < 256 && arg[0] == '-' && arg[1] == op->key) return 1;
    }
    return 0;
}

/* A job the check refused whose arguments hold one of cenqueue's options (cenqueue sleep 1
 * --wait): the option went to the job, since all that follows FUNC is its arguments. Said
 * after the refusal, which counts it among them. */
static void option_hint(char *err, size_t errlen, const char *func, int nargs,
                        const char *const *args)
{
    char shown[STR_SHOWN_LEN], fshown[STR_SHOWN_LEN];
    size_t n = strlen(err);
    int i = 0;

    if (strncmp(err, "unknown function '", 18) == 0 || n >= errlen) return;
    while (i < nargs && !is_option(args[i])) i++;
    if (i == nargs) return;
    snprintf(err + n, errlen - n,
             "; '%s' follows %s, so it is one of the job's arguments: give cenqueue's options "
             "before FUNC",
             str_shown(args[i], shown, sizeof shown), str_shown(func, fshown, sizeof fshown));
}

/* Print the ids of the jobs that are in Redis (with --wait, keep them to wait for); returns
 * how many there are. */
static long print_ids(struct opts *o, cq_jobspec **jobs, size_t n)
{
    size_t i;
    long k = 0;

    for (i = 0; i < n; i++) {
        if (!cq_jobspec_enqueued(jobs[i])) continue;
        k++;
        if (o->wait) {
            if (o->nids == o->capids) {
                o->capids = o->capids ? o->capids * 2 : 64;
                o->ids = xrealloc(o->ids, o->capids * sizeof *o->ids);
            }
            o->ids[o->nids++] = xstrdup(cq_jobspec_id(jobs[i]));
        } else if (!o->quiet) {
            printf("%s\n", cq_jobspec_id(jobs[i]));
        }
    }
    return k;
}

/* With --wait, when enqueueing failed: the ids kept so far, as they would have been printed
 * without --wait, so that a rerun can skip those jobs. */
static void print_kept(const struct opts *o)
{
    size_t i;

    for (i = 0; i < o->nids && !o->quiet; i++) printf("%s\n", o->ids[i]);
}

static void free_kept(struct opts *o)
{
    size_t i;

    for (i = 0; i < o->nids; i++) free(o->ids[i]);
    free(o->ids);
    o->ids = NULL;
    o->nids = o->capids = 0;
}

/* The ids on stdout are the caller's only handle on the jobs: a write there that failed (a
 * full disk, /dev/full, a reader that left) fails the run rather than exit 0 with them lost.
 * 0, or -1 with err ("writing the job ids to stdout: REASON", cli.h). Unlike cli.h's rule, a
 * reader that left is told of too: the caller's line says which jobs went in without their
 * ids, and that the rest of the input did not, which silence would hide. */
static int ids_written(char *err, size_t errlen)
{
    if (cli_stdout_push() == 0) return 0;
    cli_stdout_failure("the job ids", err, errlen);
    return -1;
}

static void free_jobs(cq_jobspec **jobs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) cq_jobspec_free(jobs[i]);
}

/* ---- --stdin ----------------------------------------------------------------------------- */

/* Reading and enqueueing overlap: the main thread reads, parses and checks the lines of one
 * batch while a second thread enqueues the one before, on a connection of its own (a check
 * may read the catalog meanwhile), so that Redis is not idle while lines are parsed. Batches
 * go in the order read; ids are printed by the enqueuing thread as each batch goes in. */
struct feeder {
    struct opts *o;
    cq_client *c; /* the enqueuing thread's */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    cq_jobspec **jobs[2];
    size_t n[2];
    int full[2];   /* jobs[i] is handed over, not enqueued yet (else the reader frees them) */
    int last;      /* nothing is handed over after what is */
    int failed;    /* enqueueing failed (err says why), and its thread has ended */
    int ids_lost;  /* writing the ids failed: the jobs counted are in, their ids not all out */
    long total;    /* jobs enqueued */
    long handed;   /* jobs handed over to be enqueued (the reader's count) */
    long first[2]; /* the input's line where jobs[i] begins */
    long skipped;  /* interrupted: the line where the first batch not sent begins (0: none) */
    int progress;
    int wake[2]; /* a pipe: a byte once enqueueing failed, for a reader waiting on stdin */
    char err[1024];
};

static void *enqueuer_main(void *arg)
{
    struct feeder *f = arg;
    long long last = time_mono_ms();
    int i = 0;

    thread_name("cq-enqueue");
    for (;; i ^= 1) {
        char err[1024], werr[256];
        long k, rc;

        pthread_mutex_lock(&f->mu);
        while (!f->full[i] && !f->last) pthread_cond_wait(&f->cv, &f->mu);
        if (!f->full[i]) {
            pthread_mutex_unlock(&f->mu);
            return NULL;
        }
        if (stop_requested(&stopping)) { /* interrupted: handed over, but not sent */
            if (f->skipped == 0) f->skipped = f->first[i];
            f->full[i] = 0;
            pthread_cond_broadcast(&f->cv);
            pthread_mutex_unlock(&f->mu);
            continue;
        }
        pthread_mutex_unlock(&f->mu);
        /* With --wait, this client waits: it hears of the jobs' ends from before they go in
         * (cq_wait_prepare), so that none ends unseen before the wait begins. */
        rc = f->o->wait ? cq_wait_prepare(f->c, f->jobs[i], f->n[i], err, sizeof err) : 0;
        if (rc == 0) rc = cq_enqueue(f->c, f->jobs[i], f->n[i], CQ_NO_CHECK, err, sizeof err);
        /* Chunks of a batch are separate transactions: when one failed, others may be in
         * Redis. Their ids are printed, and counted, so that a rerun can skip them. */
        k = print_ids(f->o, f->jobs[i], f->n[i]);
        /* The batch's ids now, also through a pipe: from a stream a batch may be one job, and
         * stdio kept 4 KB of ids back, for good if a signal ends cenqueue (tail -f has no end).
         * Where they cannot be written, no more jobs go in; an enqueue that failed too is
         * what is said, its ids not printed. */
        if (ids_written(werr, sizeof werr) != 0) {
            f->ids_lost = 1;
            if (rc >= 0) str_copy(err, sizeof err, werr);
            rc = -1;
        }
        pthread_mutex_lock(&f->mu);
        f->total += k;
        f->full[i] = 0; /* the reading thread frees the jobs, while this one goes on */
        if (rc < 0) {
            f->failed = 1;
            str_copy(f->err, sizeof f->err, err);
        }
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        if (rc < 0) {
            (void)!write(f->wake[1], "x", 1);
            return NULL;
        }
        if (f->progress && time_mono_ms() - last > 200) {
            fprintf(stderr, "\rcenqueue: %ld jobs enqueued", f->total);
            last = time_mono_ms();
        }
    }
}

/* Wait until batch slot i may be filled, and empty it. 0, or -1 when enqueueing has failed. */
static int feeder_slot(struct feeder *f, int i)
{
    int failed;

    pthread_mutex_lock(&f->mu);
    while (f->full[i] && !f->failed) pthread_cond_wait(&f->cv, &f->mu);
    failed = f->failed;
    pthread_mutex_unlock(&f->mu);
    if (failed) return -1;
    free_jobs(f->jobs[i], f->n[i]);
    f->n[i] = 0;
    return 0;
}

/* Hand slot i over to be enqueued (when it holds jobs); last: it is the final one. */
static void feeder_hand(struct feeder *f, int i, int last)
{
    pthread_mutex_lock(&f->mu);
    if (f->n[i] > 0) f->full[i] = 1;
    f->handed += (long)f->n[i];
    if (last) f->last = 1;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* stdin a line at a time, for a producer that streams (tail -f | cenqueue --stdin): unlike
 * getline, it tells when no whole line is at hand, so that the jobs read so far go at once
 * rather than when a batch is full, and its wait for input ends when enqueueing fails. */
struct lines {
    int fd, wake;           /* stdin; the feeder's wake pipe, read end */
    char *buf;              /* unread input: buf[start, end) */
    size_t cap, start, end; /* end < cap always: room for a last line's NUL */
    int eof;
    int failed; /* reading failed: err says so, of no line in particular */
};

/* The next line, its newline replaced by a NUL, in *line (valid until the next call) and its
 * length in *len (a NUL inside it is the input's): 1; 0
 * when none is at hand and block is 0, or the wait was woken (enqueueing failed); -1 at the
 * end of the input; -2 when reading failed (errno). */
static int lines_next(struct lines *l, int block, char **line, size_t *len)
{
    for (;;) {
        char *nl = memchr(l->buf + l->start, '\n', l->end - l->start);
        struct pollfd p[2] = {{l->fd, POLLIN, 0}, {l->wake, POLLIN, 0}};
        ssize_t n;

        if (nl != NULL || (l->eof && l->start < l->end)) {
            if (nl == NULL) nl = l->buf + l->end; /* the last line, without a newline */
            *nl = '\0';
            *line = l->buf + l->start;
            *len = (size_t)(nl - *line);
            l->start = (size_t)(nl - l->buf) + (nl < l->buf + l->end);
            return 1;
        }
        if (l->eof) return -1;
        if (l->start > 0) { /* keep the part line at the front, then read after it */
            memmove(l->buf, l->buf + l->start, l->end - l->start);
            l->end -= l->start;
            l->start = 0;
        }
        if (l->cap - l->end < 4096) {
            l->cap *= 2;
            l->buf = xrealloc(l->buf, l->cap);
        }
        if (poll(p, 2, block ? -1 : 0) < 0) {
            if (errno == EINTR) continue;
            return -2;
        }
        if (p[1].revents != 0 || (!block && p[0].revents == 0)) return 0;
        n = read(l->fd, l->buf + l->end, l->cap - 1 - l->end);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) return -2;
        if (n == 0) l->eof = 1;
        l->end += (size_t)n;
    }
}

/* Read jobs into slot i until it is full, no more input is at hand (0 either way: partial, it
 * goes at once), the input ends (1), or a line is refused: -2 for the line's fault, -1 for
 * Redis's or stdin's (err says why, *lineno is the line). */
static int read_batch(struct opts *o, cq_client *c, struct feeder *f, int i, struct lines *in,
                      long *lineno, char *err, size_t errlen)
{
    char *fields[256], *line, *nul;
    size_t len;
    cq_jobspec *j;

    while (f->n[i] < BATCH && !stop_requested(&stopping)) {
        int nf, r = lines_next(in, f->n[i] == 0, &line, &len);
        if (r == 0) return 0;
        if (r == -1) return 1;
        if (r == -2) {
            err_set(err, errlen, "cannot read stdin: %s", strerror(errno));
            in->failed = 1;
            return -1;
        }
        (*lineno)++;
        /* The line would end there, what follows dropped without a word. */
        nul = memchr(line, '\0', len);
        if (nul != NULL) {
            err_set(err, errlen, "a NUL byte at column %zu (no argument can hold one)",
                    (size_t)(nul - line) + 1);
            return -2;
        }
        nf = split_fields(line, fields, 256);
        if (nf == 0 || fields[0][0] == '#') continue;
        if (nf < 0 || nf > 256) {
            str_copy(err, errlen, nf < 0 ? "unterminated quote" : "more than 255 args");
            return -2;
        }
        j = make_job(o, c, fields[0], (const char *const *)fields + 1, nf - 1, err, errlen);
        if (j == NULL) return refusal_status(err) == 1 ? -1 : -2;
        f->jobs[i][f->n[i]++] = j;
    }
    return 0;
}

/* Interrupted (on_stop): the ids kept for --wait, and what went in, said as a refused line
 * says it; resume is the first line whose job did not go in (0: every one did). 1. */
static int say_interrupted(const struct opts *o, const struct feeder *f, long resume)
{
    char err[256];
    const char *ids;

    print_kept(o);
    ids = o->quiet ? ""
        : f->ids_lost || ids_written(err, sizeof err) != 0
        ? " (their ids not all printed: stdout failed)"
        : " (ids printed)";
    if (resume == 0)
        fprintf(stderr, "cenqueue: interrupted: every job of the input went in, %ld in all%s\n",
                f->total, ids);
    else if (f->total == 0)
        fprintf(stderr, "cenqueue: interrupted: nothing was enqueued\n");
    else
        fprintf(stderr,
                "cenqueue: interrupted: the %ld job%s before line %ld went in%s; line %ld and the "
                "rest did not: enqueue from there (tail -n +%ld)\n",
                f->total, f->total == 1 ? "" : "s", resume, ids, resume, resume);
    return 1;
}

static int run_stdin(struct opts *o, cq_client *c, cq_client *ce)
{
    struct feeder f;
    struct lines in = {STDIN_FILENO, -1, NULL, 65536, 0, 0, 0, 0};
    pthread_t t;
    char err[1024];
    long lineno = 0, resume = 0; /* interrupted: the first line whose job did not go in */
    int i = 0, r = 0;

    memset(&f, 0, sizeof f);
    if (pipe2(f.wake, O_CLOEXEC) != 0) {
        fprintf(stderr, "cenqueue: cannot make a pipe: %s\n", strerror(errno));
        return 1;
    }
    in.wake = f.wake[0];
    in.buf = xmalloc(in.cap);
    f.o = o;
    f.c = ce;
    f.progress = isatty(STDERR_FILENO);
    f.jobs[0] = xcalloc(BATCH, sizeof *f.jobs[0]);
    f.jobs[1] = xcalloc(BATCH, sizeof *f.jobs[1]);
    pthread_mutex_init(&f.mu, NULL);
    pthread_cond_init(&f.cv, NULL);
    if (pthread_create(&t, NULL, enqueuer_main, &f) != 0) {
        fprintf(stderr, "cenqueue: cannot start a thread\n");
        free(f.jobs[0]);
        free(f.jobs[1]);
        free(in.buf);
        close(f.wake[0]);
        close(f.wake[1]);
        return 1;
    }
    __atomic_store_n(&stop_wake, f.wake[1], __ATOMIC_RELEASE);
    for (;; i ^= 1) {
        long first = lineno + 1;

        if (feeder_slot(&f, i) != 0) break; /* enqueueing failed: stop reading */
        if (!stop_requested(&stopping)) r = read_batch(o, c, &f, i, &in, &lineno, err, sizeof err);
        if (stop_requested(&stopping)) {
            /* The batch being read does not go in (an input that ended with none left
             * out is whole); the one being sent finishes. */
            if (r != 1 || f.n[i] > 0) resume = first;
            free_jobs(f.jobs[i], f.n[i]);
            f.n[i] = 0;
            feeder_hand(&f, i, 1);
            r = resume > 0 ? 0 : 1;
            break;
        }
        f.first[i] = first;
        if (r == -1) {
            /* Reading the catalog failed: nothing more goes in. */
            free_jobs(f.jobs[i], f.n[i]);
            f.n[i] = 0;
        }
        feeder_hand(&f, i, r != 0);
        if (r != 0) break;
    }
    pthread_join(t, NULL);
    __atomic_store_n(&stop_wake, -1, __ATOMIC_RELEASE); /* before the pipe is closed */
    /* The last batches, and any handed over but not enqueued after a failure. */
    free_jobs(f.jobs[0], f.n[0]);
    free_jobs(f.jobs[1], f.n[1]);
    free(in.buf);
    close(f.wake[0]);
    close(f.wake[1]);
    free(f.jobs[0]);
    free(f.jobs[1]);
    pthread_mutex_destroy(&f.mu);
    pthread_cond_destroy(&f.cv);
    if (r < 0 && !in.failed) fprintf(stderr, "cenqueue: stdin line %ld: %s\n", lineno, err);
    if (f.failed || r == -1) {
        const char *ids = o->quiet || f.total == 0 ? ""
            : f.ids_lost                           ? ", their ids not all printed"
                                                   : ", their ids printed";
        print_kept(o);
        /* The input read to its end and every job of it in: a failure after the writes
         * (?replicas=N not confirmed) leaves nothing to enqueue again. */
        if (r == 1 && f.total == f.handed)
            fprintf(stderr, "cenqueue: %s (every job of the input was enqueued, %ld in all%s)\n",
                    f.err, f.total, ids);
        else
            fprintf(stderr,
                    "cenqueue: %s (%ld job%s enqueued in all%s; the rest of the input "
                    "was not)\n",
                    r == -1 ? err : f.err, f.total, f.total == 1 ? " was" : "s were", ids);
        return 1;
    }
    if (f.progress) fprintf(stderr, "\r");
    if (f.skipped > 0) resume = f.skipped; /* batches are sent in the input's order */
    /* With --wait and the input whole, the wait's interrupt says it instead (main). */
    if (resume > 0 || (r == 1 && !o->wait && stop_requested(&stopping)))
        return say_interrupted(o, &f, resume);
    if (r == 1) {
        fprintf(stderr, "cenqueue: %ld job%s enqueued to queue %s\n", f.total,
                f.total == 1 ? "" : "s", o->queue);
        return 0;
    }
    /* Everything before the bad line went in, so that the rule is simple: a rerun starts at
     * that line. */
    print_kept(o);
    if (f.total == 0)
        fprintf(stderr, "cenqueue: nothing was enqueued; fix line %ld and run again\n", lineno);
    else
        fprintf(stderr,
                "cenqueue: the %ld job%s before line %ld went in%s; line %ld and the rest did "
                "not: fix it and enqueue from there (tail -n +%ld)\n",
                f.total, f.total == 1 ? "" : "s", lineno, o->quiet ? "" : " (ids printed)", lineno,
                lineno);
    return 2;
}

/* What the options and arguments must agree on. 0, or a usage error's status. */
static int check_usage(const struct cli *cli, const struct opts *o, int list, int argc, char **argv)
{
    if (list && (optind < argc || o->use_stdin))
        return cli_error(cli, "--list-functions takes no job");
    if (list) return 0;
    char shown[STR_SHOWN_LEN];

    if (!cq_valid_name(o->queue))
        return cli_error(cli, "--queue: '%s' is not a queue name (" KEYS_NAME_RULE ")",
                         str_shown(o->queue, shown, sizeof shown));
    if (o->id != NULL && o->use_stdin) return cli_error(cli, "--id does not go with --stdin");
    if (o->id != NULL && !cq_valid_name(o->id))
        return cli_error(cli, "--id: '%s' is not a job id (" KEYS_NAME_RULE ")",
                         str_shown(o->id, shown, sizeof shown));
    if (o->use_stdin && optind < argc)
        return cli_error(cli,
                         "--stdin and a job on the command line ('%s') do not go together: "
                         "give one",
                         str_shown(argv[optind], shown, sizeof shown));
    if (!o->use_stdin && optind >= argc)
        return cli_error(cli, "give either FUNC [ARG...] or --stdin");
    /* The ids are the caller's only handle on the jobs: they are not written to nothing. */
    if (cli->stdout_closed && !o->quiet)
        return cli_error(cli,
                         "standard output is closed: the jobs' ids would be lost; redirect it "
                         "(cenqueue ... >ids) or give --quiet");
    /* Closed, fd 0 would be the Redis connection's, whose replies --stdin waited for as jobs. */
    if (o->use_stdin && fcntl(STDIN_FILENO, F_GETFD) == -1)
        return cli_error(cli,
                         "--stdin: standard input is closed; give the jobs on it "
                         "(cenqueue --stdin <FILE)");
    return 0;
}

/* Parse the options into o. Returns -1 to go on, or an exit status. */
static int parse_options(struct opts *o, int *list, int argc, char **argv)
{
    struct cli cli;
    double d;
    long v;
    int c, rc = 0, wait_timeout = 0, in = 0, at = 0;

    /* Parsing stops at the first non-option, so job args may start with '-'. */
    cli_begin(&cli, "cenqueue", CQ_VERSION, usage, options, sizeof options / sizeof options[0], 1);
    while (rc == 0 && (c = cli_next(&cli, argc, argv)) != -1) {
        switch (c) {
        case CLI_STOP: rc = cli.status == 0 ? CLI_STOP : cli.status; break;
        case 'u': o->url = optarg; break;
        case CLI_O_TLS_CA:
        case CLI_O_TLS_CERT:
        case CLI_O_TLS_KEY: cli_tls(c, optarg); break;
        case 'q': o->queue = optarg; break;
        case O_PREFIX: o->prefix = optarg; break;
        case O_ID: o->id = optarg; break;
        case O_RETRIES:
            if ((rc = cli_long(&cli, optarg, 0, 1000, &v)) == 0) o->retries = (int)v;
            break;
        case O_TIMEOUT:
            rc = cli_duration(&cli, optarg, &o->timeout);
            if (rc == 0 && o->timeout <= 0)
                rc = cli_error(&cli, "--timeout: '%s' is not above 0", optarg);
            break;
        case O_IN:
            if ((rc = cli_duration(&cli, optarg, &d)) == 0) o->at = time_now() + d;
            in = 1;
            break;
        case O_AT:
            /* A date is the likely slip (2026-12-06T20:00Z): the line says how to turn one
             * into the seconds --at takes. */
            if (parse_unix_time(optarg, &o->at) != 0)
                rc = cli_error(&cli, "--at: '%s' is not a Unix time in seconds (0 to %.0f)%s",
                               optarg, CQ_TIME_MAX - 1,
                               optarg[strspn(optarg, "0123456789.eE+-")] != '\0'
                                   ? "; from a date: --at $(date -d 'DATE' +%s)"
                                   : "");
            at = 1;
            break;
        case O_STDIN: o->use_stdin = 1; break;
        case O_QUIET: o->quiet = 1; break;
        case O_NO_CHECK: o->no_check = 1; break;
        case O_LIST: *list = 1; break;
        case O_WAIT: o->wait = 1; break;
        case O_WAIT_TIMEOUT:
            rc = cli_duration(&cli, optarg, &o->wait_timeout);
            if (rc == 0 && o->wait_timeout <= 0)
                rc = cli_error(&cli, "--wait-timeout: '%s' is not above 0", optarg);
            wait_timeout = 1;
            break;
        default: rc = cli_error(&cli, "option '%s' is not handled", cli.opt); break;
        }
    }
    cli_end(&cli);
    if (rc == 0 && wait_timeout && !o->wait) rc = cli_error(&cli, "--wait-timeout needs --wait");
    if (rc == 0 && in && at) rc = cli_error(&cli, "--in and --at do not go together: give one");
    if (rc == 0) rc = check_usage(&cli, o, *list, argc, argv);
    return rc == CLI_STOP ? 0 : rc == 0 ? -1 : rc;
}

/* A queue no live worker takes from (a typo such as "defualt", or workers not started yet),
 * or a paused one: the jobs would wait in silence, so say so. A job due later is not warned
 * about. */
static void warn_unserved_queue(cq_client *cl, const char *queue, double at)
{
    if (at <= time_now() + 10) queue_warn("cenqueue", cl, queue);
}

/* A client that knows download_link as cworker declares it, even before any worker has
 * published it. NULL (message printed) when it cannot connect. */
static cq_client *connect_client(const struct opts *o, int *rc)
{
    char err[512];
    cq_client *c;

    /* A URL or prefix that cannot be used is refused before connecting: a usage error. */
    if (cli_check_settings(o->url, o->prefix, err, sizeof err) != 0) {
        fprintf(stderr, "cenqueue: %s\nTry 'cenqueue --help' for more information.\n", err);
        *rc = 2;
        return NULL;
    }
    c = cq_client_new(o->url, o->prefix, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "cenqueue: %s\n", err);
        *rc = 1;
        return NULL;
    }
    if (app_declare(cq_client_registry(c)) != 0) {
        fprintf(stderr, "cenqueue: %s\n", cq_registry_error(cq_client_registry(c)));
        cq_client_free(c);
        *rc = 1;
        return NULL;
    }
    return c;
}

int main(int argc, char **argv)
{
    struct opts o;
    cq_client *cl, *ce = NULL;
    char err[1024];
    int rc = 0, list = 0;

    memset(&o, 0, sizeof o);
    o.queue = "default";
    o.retries = -1;
    rc = parse_options(&o, &list, argc, argv);
    if (rc >= 0) return rc;
    rc = 0;
    if (list) {
        cl = connect_client(&o, &rc);
        if (cl == NULL) return rc;
        rc = cq_client_print_functions(cl, stdout, err, sizeof err);
        if (rc != 0) fprintf(stderr, "cenqueue: %s\n", err);
        cq_client_free(cl);
        if (cli_stdout_flush("cenqueue", "the functions") != 0) rc = 1;
        return rc == 0 ? 0 : 1;
    }
    cl = connect_client(&o, &rc);
    if (cl == NULL) return rc;
    catch_stops();
    if (!o.use_stdin) {
        cq_jobspec *j = make_job(&o, cl, argv[optind], (const char *const *)argv + optind + 1,
                                 argc - optind - 1, err, sizeof err);
        if (j == NULL) {
            int status = refusal_status(err);
            if (status == 2)
                option_hint(err, sizeof err, argv[optind], argc - optind - 1,
                            (const char *const *)argv + optind + 1);
            fprintf(stderr, "cenqueue: %s\n", err);
            cq_client_free(cl);
            return status;
        }
        if (stop_requested(&stopping)) { /* before the job went anywhere */
            fprintf(stderr, "cenqueue: interrupted: nothing was enqueued\n");
            rc = 1;
        } else if (o.wait && cq_wait_prepare(cl, &j, 1, err, sizeof err) != 0) {
            fprintf(stderr, "cenqueue: %s (nothing was enqueued)\n", err);
            rc = 1;
        } else if (cq_enqueue(cl, &j, 1, CQ_NO_CHECK, err, sizeof err) < 0) {
            /* It may be in nonetheless (?replicas=N not confirmed): its id printed, as
             * --stdin prints those that went in, so that nobody enqueues it twice. */
            long in = print_ids(&o, &j, 1);
            print_kept(&o);
            fprintf(stderr, "cenqueue: %s%s\n", err,
                    in == 0       ? ""
                        : o.quiet ? " (the job was enqueued)"
                                  : " (the job was enqueued, its id printed)");
            rc = 1;
        } else {
            /* After the enqueue: a refused job (an id not ended) has its one line alone. */
            warn_unserved_queue(cl, o.queue, o.at);
            print_ids(&o, &j, 1);
            if (ids_written(err, sizeof err) != 0) {
                /* One due later waits in cq:scheduled, not in its queue. */
                fprintf(stderr, "cenqueue: %s (the job was enqueued: cqctl jobs %s lists it)\n",
                        err, o.at > time_now() ? "scheduled" : o.queue);
                rc = 1;
            } else if (!o.wait && stop_requested(&stopping)) {
                fprintf(stderr, "cenqueue: interrupted: the job was enqueued%s\n",
                        o.quiet ? "" : " (its id printed)");
                rc = 1;
            }
        }
        cq_jobspec_free(j);
    } else {
        /* The enqueuing thread's own connection (see run_stdin), which waits after it. */
        ce = connect_client(&o, &rc);
        if (ce == NULL) {
            cq_client_free(cl);
            return rc;
        }
        warn_unserved_queue(cl, o.queue, o.at);
        rc = run_stdin(&o, cl, ce);
    }
    if (rc == 0 && o.wait) {
        /* The client that prepared the wait (cq_wait_prepare) has heard of the jobs that
         * ended before it begins. own_ids: a job whose status is gone all the same (deleted,
         * or lost with Redis's data, or its end unheard: a connection lost) would be waited
         * for for good. */
        struct jobwait jw = {"cenqueue", o.ids, o.nids, o.wait_timeout, o.quiet, 0, 1};
        /* Interrupted once every job was in: said as an interrupt of the wait says it. */
        jobwait_catch(&jw);
        if (stop_requested(&stopping)) raise(SIGINT);
        rc = jobwait_run(&jw, ce != NULL ? ce : cl);
        if (cli_stdout_flush("cenqueue", "the jobs' outcomes") != 0 && rc == 0) rc = 1;
    }
    free_kept(&o);
    cq_client_free(ce);
    cq_client_free(cl);
    return rc;
}
