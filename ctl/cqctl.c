/* cqctl.c - cq for operators: what waits, runs and failed, and who runs it; requeue, cancel,
 * delete; empty, pause and resume queues; Prometheus metrics.
 *
 *   cqctl [OPTIONS] COMMAND [ARG...]     (cqctl --help lists the commands)
 *
 * Options and output only: what each command reads or changes in Redis is common/admin.c.
 * Every command prints text for people, or with --json one JSON document for programs.
 * Exit status: 0 done, 1 Redis failed, a key of cq's has another type, or a job or a queue
 * was refused (one line on stderr each), or the output was not all written (cli.h), 2 a
 * usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "admin.h"
#include "cli.h"
#include "job.h"
#include "jobwait.h"
#include "keys.h"
#include "log.h"
#include "render.h"
#include "serve.h"
#include "util.h"

enum {
    O_PREFIX = 256,
    O_JSON,
    O_INTERVAL,
    O_OFFSET,
    O_ALL_FAILED,
    O_LISTEN,
    O_TOKEN,
    O_INSECURE,
    O_ORIGIN,
    O_REQUEST_TIMEOUT,
    O_ANSWER_TIMEOUT,
    O_LOG_LEVEL,
    O_LOG_FORMAT,
    O_WAIT_TIMEOUT
};

static struct cli cli; /* the command line, for usage errors (cli_error) */

static const struct cli_option options[] = {
    CLI_URL,
    CLI_TLS,
    CLI_PREFIX(O_PREFIX),
    {"json", O_JSON, NULL,
     "print JSON instead of text: one document (info --watch: one\n"
     "per refresh, a line each; wait: one per job, a line each;\n"
     "serve: its log lines, as --log-format json)"},
    CLI_HELP,
    CLI_VERSION,
    {NULL, 0, NULL, "info:"},
    {"watch", 'w', NULL, "redraw every second (or --interval) until Ctrl-C"},
    {"interval", O_INTERVAL, "D",
     "with --watch: the time between two redraws, 50ms to 24h\n"
     "(default: 1s)"},
    {NULL, 0, NULL, "jobs:"},
    {"limit", 'n', "N", "list at most N entries (default: 20, at most 10000)"},
    {"offset", O_OFFSET, "N", "skip the first N entries (default: 0)"},
    {NULL, 0, NULL, "requeue:"},
    {"all-failed", O_ALL_FAILED, NULL, "requeue every job of the failed set"},
    {"queue", 'q', "NAME", "with --all-failed: only the failed jobs of queue NAME"},
    {NULL, 0, NULL, "wait:"},
    {"wait-timeout", O_WAIT_TIMEOUT, "D", "stop waiting after D (default: no limit)"},
    {NULL, 0, NULL, "serve:"},
    {"listen", O_LISTEN, "HOST:PORT",
     "the address to serve on (default: " SERVE_LISTEN_DEFAULT ");\n"
     "[V6]:PORT for IPv6; port 0: any free port (logged)"},
    {"token", O_TOKEN, "T",
     "every request must carry T (default: $CQ_DASHBOARD_TOKEN):\n"
     "16 or more of A-Z a-z 0-9 - _ . ~"},
    {"insecure", O_INSECURE, NULL, "serve a non-loopback address without a token"},
    {"origin", O_ORIGIN, "URL",
     "behind a proxy: the origin the page is reached at (e.g.\n"
     "https://dash.example.com), whose Host and Origin are then\n"
     "accepted too"},
    {"request-timeout", O_REQUEST_TIMEOUT, "D",
     "a connection's time for a whole request, headers and\n"
     "body, from its opening or its last answer; then it is\n"
     "closed (default: 10s; " SERVE_TIMEOUT_RANGE_TEXT ")"},
    {"answer-timeout", O_ANSWER_TIMEOUT, "D",
     "a client's time to take the whole of an answer once it\n"
     "is made; then its connection is reset (default: 30s;\n" SERVE_TIMEOUT_RANGE_TEXT ")"},
    CLI_LOG_LEVEL(O_LOG_LEVEL),
    CLI_LOG_FORMAT(O_LOG_FORMAT),
};
#define NOPTIONS (sizeof options / sizeof options[0])

struct ctl {
    struct admin a;
    int json, watch, tty, cols, all_failed;
    int log_format; /* --log-format: 0 text, 1 json, -1 not given (then --json decides) */
    double interval, wait_timeout;
    int interval_given;
    long limit, offset;
    const char *url, *prefix, *queue;
    struct serve_options serve;
};

struct command {
    const char *name, *args, *summary, *help;
    int opts[8]; /* its own options (0: none), besides -u, --prefix, --json and --help */
    int min, max;
    int (*run)(struct ctl *c, char **args, int n);
    int lazy; /* it connects to Redis by itself, and runs while Redis is down */
    int ids;  /* its arguments are job ids ('-' too: stdin's), checked before Redis is asked */
};

static stop_flag stopping;

/* --log-level's words, in the order of enum cq_log_level; --log-format's, as cworker's. */
static const char *const log_levels[] = {"error", "warn", "info", "debug"};
static const char *const log_formats[] = {"text", "json"};

static void on_signal(int sig)
{
    (void)sig;
    __atomic_store_n(&stopping, 1, __ATOMIC_RELAXED); /* as stop_requested loads it */
}

/* 0 when name is a valid WHAT ("queue", "job id"), else the usage error's 2, said. */
static int check_name(const char *what, const char *name)
{
    char err[512];

    if (keys_check_name(what, name, err, sizeof err) == 0) return 0;
    return cli_error(&cli, "%s", err);
}

/* ---- formatting ------------------------------------------------------------------- */

/* A time a status or a record may hold (CQ_TIME_MAX, cq.h): another (0, 1e308, inf, nan,
 * written by hand) is shown as unknown, not converted to an integer it does not fit. */
static int known_time(double t)
{
    return t > 0 && t < CQ_TIME_MAX;
}

/* "2026-01-01T12:00:00.250Z", or "-" for an unknown time. */
static const char *iso(char *buf, size_t len, double t)
{
    struct tm tm;
    time_t s = known_time(t) ? (time_t)t : 0;
    char day[32];

    if (!known_time(t) || gmtime_r(&s, &tm) == NULL) return "-";
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", day, (int)((t - (double)s) * 1000.0));
    return buf;
}

/* A length of time: "250ms", "12.3s", "5m03s", "2h05m", "3d04h". */
static const char *span(char *buf, size_t len, double s)
{
    long v;

    if (!(s >= 0)) s = 0; /* and NaN */
    if (s > CQ_TIME_MAX) s = CQ_TIME_MAX;
    v = (long)s;
    if (s < 1)
        snprintf(buf, len, "%dms", (int)(s * 1000.0));
    else if (s < 60)
        snprintf(buf, len, "%.1fs", s);
    else if (v < 3600)
        snprintf(buf, len, "%ldm%02lds", v / 60, v % 60);
    else if (v < 86400)
        snprintf(buf, len, "%ldh%02ldm", v / 3600, v % 3600 / 60);
    else
        snprintf(buf, len, "%ldd%02ldh", v / 86400, v % 86400 / 3600);
    return buf;
}

/* "5m03s ago" or "in 5.0s" from now; "-" for an unknown time. */
static const char *ago(char *buf, size_t len, double t, double now)
{
    char s[32];

    if (!known_time(t)) return "-";
    if (t <= now)
        snprintf(buf, len, "%s ago", span(s, sizeof s, now - t));
    else
        snprintf(buf, len, "in %s", span(s, sizeof s, t - now));
    return buf;
}

/* Print s on one line: control bytes as '?', and on a terminal at most room columns (a cut
 * ends in "..." and never splits a UTF-8 character). */
static void put_cut(FILE *f, const struct ctl *c, const char *s, int room)
{
    size_t n = strlen(s), i, limit = n;

    if (c->tty && room > 3 && n > (size_t)room) {
        limit = (size_t)room - 3;
        while (limit > 0 && ((unsigned char)s[limit] & 0xC0) == 0x80) limit--;
    }
    for (i = 0; i < limit; i++) {
        unsigned char ch = (unsigned char)s[i];
        fputc(ch < ' ' || ch == 0x7f ? '?' : ch, f);
    }
    if (limit < n) fputs("...", f);
}

static int width_of(const char *s, int at_least)
{
    int n = (int)strlen(s);
    return n > at_least ? n : at_least;
}

/* ---- JSON ------------------------------------------------------------------------- */

static void json_print(cJSON *o)
{
    char *s = job_json_print_text(o);

    puts(s);
    free(s);
    cJSON_Delete(o);
}

/* ---- info and workers --------------------------------------------------------------- */

/* A copy of s with its control bytes as '?', for a field of Redis's in a table: a host name
 * written by hand with a newline in it broke the table's line. Not util.c's str_shown, with
 * which an error line quotes: that writes a control byte as two or four bytes (\n, \x1b)
 * and cuts after 64 bytes, where a table cell keeps one column a byte (its width is measured
 * on s) and every byte of a worker's id. The rule is put_cut's. The caller frees it. */
static char *one_line(const char *s)
{
    char *d = xstrdup(s), *p;

    for (p = d; *p != '\0'; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f) *p = '?';
    return d;
}

static void print_workers(FILE *f, const struct admin_info *in)
{
    int wid = 6, wh = 4, wq = 6;
    size_t i;

    if (in->nworkers == 0) {
        fputs("no workers registered\n", f);
        return;
    }
    for (i = 0; i < in->nworkers; i++) {
        wid = width_of(in->workers[i].id, wid);
        wh = width_of(in->workers[i].host, wh);
        wq = width_of(in->workers[i].queues, wq);
    }
    fprintf(f, "%-*s  %-*s  %7s  %-*s  %9s  %9s  %7s  %9s  %s\n", wid, "WORKER", wh, "HOST", "PID",
            wq, "QUEUES", "BUSY", "PROCESSED", "FAILED", "HEARTBEAT", "LEASE");
    for (i = 0; i < in->nworkers; i++) {
        const struct admin_worker *w = &in->workers[i];
        char busy[48], hb[32], *id = one_line(w->id), *host = one_line(w->host),
                               *queues = one_line(w->queues);
        snprintf(busy, sizeof busy, "%ld/%ld", w->busy, w->concurrency);
        if (w->heartbeat_at > 0)
            span(hb, sizeof hb, in->now - w->heartbeat_at);
        else
            str_copy(hb, sizeof hb, "-");
        fprintf(f, "%-*s  %-*s  %7ld  %-*s  %9s  %9lld  %7lld  %9s  %s\n", wid, id, wh, host,
                w->pid, wq, queues, busy, w->processed, w->failed, hb,
                w->live        ? "live"
                    : in->live ? "gone (a live worker returns its jobs to their queues)"
                               : "gone (its jobs wait in flight: no live worker to return them; "
                                 "start one)");
        free(id);
        free(host);
        free(queues);
    }
}

static void print_queues(FILE *f, const struct ctl *c, const struct admin_info *in)
{
    long long top = 0;
    int wn = 5, bar = 0;
    size_t i;

    for (i = 0; i < in->nqueues; i++) {
        wn = width_of(in->queues[i].name, wn);
        if (in->queues[i].depth > top) top = in->queues[i].depth;
    }
    if (c->tty) {
        bar = c->cols - (wn + 2 + 9 + 2 + 9 + 2 + 8 + 2 + 6 + 2) - 1;
        if (bar > 40) bar = 40;
    }
    if (in->nqueues == 0) {
        fputs("no queues yet\n", f);
    } else {
        fprintf(f, "%-*s  %9s  %9s  %8s  %s\n", wn, "QUEUE", "DEPTH", "IN FLIGHT", "PER MIN",
                "STATE");
        for (i = 0; i < in->nqueues; i++) {
            const struct admin_queue *q = &in->queues[i];
            char depth[32];
            if (q->depth >= 0)
                snprintf(depth, sizeof depth, "%lld", q->depth);
            else
                str_copy(depth, sizeof depth, "?");
            fprintf(f, "%-*s  %9s  %9lld  %8lld  %-6s", wn, q->name, depth, q->inflight,
                    q->last_minute, q->paused ? "paused" : "active");
            if (bar >= 5 && top > 0 && q->depth > 0) {
                long long len = q->depth * bar / top;
                fputs("  ", f);
                for (; len > 0; len--) fputc('#', f);
                if (q->depth * bar / top == 0) fputc('#', f);
            }
            fputc('\n', f);
        }
    }
    fprintf(f, "\nscheduled %lld   failed %lld   dead %lld\n", in->scheduled, in->failed, in->dead);
}

/* The first key Redis refused on the way, and how many more (info's and workers' last line;
 * stderr's for metrics, after prefix). */
static void print_info_warning(FILE *f, const char *prefix, const struct admin_info *in)
{
    if (in->warn[0] == '\0') return;
    fprintf(f, "%swarning: %s", prefix, in->warn);
    if (in->nwarn > 1)
        fprintf(f, " (and %zu more key%s that Redis refused)", in->nwarn - 1,
                in->nwarn == 2 ? "" : "s");
    fputc('\n', f);
}

static void print_info(FILE *f, const struct ctl *c, const struct admin_info *in)
{
    char t[40];

    fprintf(f, "cq at %s, prefix %s, %s\n\n", c->a.where, c->a.k.prefix, iso(t, sizeof t, in->now));
    print_queues(f, c, in);
    fputc('\n', f);
    print_workers(f, in);
    print_info_warning(f, "\n", in);
}

/* One picture into a memory buffer, written at once so that a redraw does not flicker. */
static int info_once(struct ctl *c, int workers_only, int clear)
{
    struct admin_info in;
    char err[512], *buf = NULL;
    size_t len = 0;
    FILE *f;

    if (admin_info_read(&c->a, &in, err, sizeof err) != 0) {
        if (clear) fputs("\033[H\033[2J", stdout);
        cli_stdout_push(); /* before the error, and its reason for the flush at the exit */
        fprintf(stderr, "cqctl: %s\n", err);
        return 1;
    }
    if (c->json) {
        if (workers_only) {
            cJSON *o = render_object();
            cJSON_AddItemToObject(o, "workers", render_workers(&in));
            json_print(o);
        } else {
            json_print(render_info(&c->a, &in));
        }
        admin_info_free(&in);
        return 0;
    }
    f = xcheck(open_memstream(&buf, &len), "an output buffer");
    if (clear) fputs("\033[H\033[2J", f);
    if (workers_only) {
        print_workers(f, &in);
        print_info_warning(f, "\n", &in);
    } else
        print_info(f, c, &in);
    fclose(f);
    fwrite(buf, 1, len, stdout);
    free(buf);
    admin_info_free(&in);
    return 0;
}

static int run_info(struct ctl *c, char **args, int n)
{
    int first = 1;

    (void)args;
    (void)n;
    if (!c->watch) return info_once(c, 0, 0);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    while (!stop_requested(&stopping)) {
        long long until = time_mono_ms() + (long long)(c->interval * 1000.0);
        if (!first && !c->tty && !c->json) putchar('\n');
        /* A Redis not reached for the first picture (a wrong URL, none started) ends it as
         * without --watch; one lost later is said each interval until it is back. */
        if (info_once(c, 0, c->tty && !c->json) != 0 && first) return 1;
        if (cli_stdout_push() != 0) break; /* nobody reads it any more (main says why) */
        first = 0;
        while (!stop_requested(&stopping) && time_mono_ms() < until) sleep_ms(50);
    }
    return 0;
}

static int run_workers(struct ctl *c, char **args, int n)
{
    (void)args;
    (void)n;
    return info_once(c, 1, 0);
}

/* ---- jobs --------------------------------------------------------------------------- */

static void print_page(const struct ctl *c, enum admin_list which, const char *name,
                       const struct admin_page *p)
{
    static const char *const order[] = {"oldest (next to run) first", "soonest first",
                                        "newest first", "newest first",
                                        "by worker, each one's oldest first"};
    double now = time_now();
    int wid = 2, wf = 4, wq = 5, ww = 6;
    size_t i;

    if (which == ADMIN_LIST_QUEUE)
        printf("queue %s: %lld waiting", name, p->total);
    else
        printf("%s: %lld", name, p->total);
    if (p->n > 0)
        printf("; %ld-%ld, %s\n", p->offset + 1, p->offset + (long)p->n, order[which]);
    else
        printf("%s\n", p->total > 0 ? "; none from this offset" : "");
    if (p->n == 0) return;
    for (i = 0; i < p->n; i++) {
        wid = width_of(p->items[i].id ? p->items[i].id : "?", wid);
        wf = width_of(p->items[i].func ? p->items[i].func : "?", wf);
        wq = width_of(p->items[i].queue ? p->items[i].queue : "-", wq);
        ww = width_of(p->items[i].worker ? p->items[i].worker : "?", ww);
    }
    switch (which) {
    case ADMIN_LIST_QUEUE:
        printf("%6s  %-*s  %-*s  %-14s  %s\n", "#", wid, "ID", wf, "FUNC", "ENQUEUED", "ARGS");
        break;
    case ADMIN_LIST_SCHEDULED:
        printf("%-14s  %-*s  %-*s  %-*s  %s\n", "DUE", wid, "ID", wf, "FUNC", wq, "QUEUE", "ARGS");
        break;
    case ADMIN_LIST_FAILED:
        printf("%-14s  %-*s  %-*s  %-*s  %s\n", "FAILED", wid, "ID", wf, "FUNC", wq, "QUEUE",
               "ERROR");
        break;
    case ADMIN_LIST_DEAD: printf("%6s  %s\n", "#", "RECORD"); break;
    case ADMIN_LIST_RUNNING:
        printf("%-14s  %-*s  %-*s  %-*s  %-*s  %s\n", "STARTED", wid, "ID", wf, "FUNC", wq, "QUEUE",
               ww, "WORKER", "ARGS");
        break;
    }
    for (i = 0; i < p->n; i++) {
        const struct admin_entry *e = &p->items[i];
        const char *id = e->id ? e->id : "?", *func = e->func ? e->func : "?";
        const char *q = e->queue ? e->queue : "-";
        char t[48];
        int used = 0;
        switch (which) {
        case ADMIN_LIST_QUEUE:
            used = printf("%6ld  %-*s  %-*s  %-14s  ", p->offset + (long)i + 1, wid, id, wf, func,
                          ago(t, sizeof t, e->enqueued_at, now));
            put_cut(stdout, c, e->args ? e->args : "(not a valid record)", c->cols - used);
            break;
        case ADMIN_LIST_SCHEDULED:
            used = printf("%-14s  %-*s  %-*s  %-*s  ", ago(t, sizeof t, e->score, now), wid, id, wf,
                          func, wq, q);
            put_cut(stdout, c, e->args ? e->args : "(not a valid record)", c->cols - used);
            break;
        case ADMIN_LIST_FAILED:
            used = printf("%-14s  %-*s  %-*s  %-*s  ", ago(t, sizeof t, e->score, now), wid, id, wf,
                          func, wq, q);
            put_cut(stdout, c, e->error ? e->error : "(no status left)", c->cols - used);
            break;
        case ADMIN_LIST_DEAD:
            used = printf("%6ld  ", p->offset + (long)i + 1);
            put_cut(stdout, c, e->record, c->cols - used);
            break;
        case ADMIN_LIST_RUNNING:
            used = printf("%-14s  %-*s  %-*s  %-*s  %-*s  ", ago(t, sizeof t, e->score, now), wid,
                          id, wf, func, wq, q, ww, e->worker ? e->worker : "?");
            put_cut(stdout, c, e->args ? e->args : "(not a valid record)", c->cols - used);
            break;
        }
        putchar('\n');
    }
    if (p->offset + (long long)p->n < p->total)
        printf("(%lld more: --offset %ld)\n", p->total - p->offset - (long long)p->n,
               p->offset + (long)p->n);
}

/* A queue operand: NAME, or queue:NAME (as jobs takes it, for a queue named like a list). */
static const char *queue_operand(const char *arg)
{
    return strncmp(arg, "queue:", 6) == 0 ? arg + 6 : arg;
}

/* A queue not among the known queues (no job enqueued to it, or forgotten) and that no live
 * worker serves is most likely a typo: said on stderr, and the command goes on (pausing a
 * queue before its first job is fine). */
static void warn_unknown_queue(struct ctl *c, const char *queue)
{
    char err[512];

    if (admin_queue_known(&c->a, queue, err, sizeof err) == 0)
        fprintf(stderr,
                "cqctl: warning: queue '%s' is not among the known queues (cq:queues) and no "
                "live worker serves it: a typo? (cqctl info lists them)\n",
                queue);
}

static int run_jobs(struct ctl *c, char **args, int n)
{
    enum admin_list which = ADMIN_LIST_QUEUE;
    const char *name = args[0];
    struct admin_page p;
    char err[512];

    (void)n;
    if (strcmp(name, "scheduled") == 0)
        which = ADMIN_LIST_SCHEDULED;
    else if (strcmp(name, "failed") == 0)
        which = ADMIN_LIST_FAILED;
    else if (strcmp(name, "dead") == 0)
        which = ADMIN_LIST_DEAD;
    else if (strcmp(name, "running") == 0)
        which = ADMIN_LIST_RUNNING;
    else
        name = queue_operand(name); /* queue:NAME, for a queue named like one of the lists */
    if (which == ADMIN_LIST_QUEUE && check_name("queue", name) != 0) return 2;
    if (which == ADMIN_LIST_QUEUE) warn_unknown_queue(c, name);
    if (admin_list(&c->a, which, name, c->offset, c->limit, &p, err, sizeof err) != 0) {
        fprintf(stderr, "cqctl: %s\n", err);
        return 1;
    }
    if (c->json) {
        json_print(render_page(which, name, c->limit, &p));
    } else {
        print_page(c, which, name, &p);
    }
    admin_page_free(&p);
    return 0;
}

/* ---- job ---------------------------------------------------------------------------- */

static int shown_field(const char *name, const char *const *list, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0) return 1;
    return 0;
}

/* One "  label        value" line of print_job; a long value is cut on a terminal. */
static void row(const struct ctl *c, const char *label, const char *value)
{
    printf("  %-13s ", label);
    put_cut(stdout, c, value, c->cols - 16);
    putchar('\n');
}

static void print_job(const struct ctl *c, const char *id, const struct admin_job *j,
                      const char *args)
{
    static const char *const shown[] = {"status", "func",        "queue", "worker",
                                        "result", "result_json", "error", "record"};
    static const char *const times[][2] = {{"enqueued_at", "enqueued"},
                                           {"started_at", "started"},
                                           {"ended_at", "ended"},
                                           {"retry_at", "retry at"},
                                           {"scheduled_for", "scheduled for"}};
    double now = time_now(), rt = render_job_duration(j, now);
    const char *st = admin_job_field(j, "status");
    const char *attempts = admin_job_field(j, "attempts");
    const char *recovered = admin_job_field(j, "recovered");
    int running = st != NULL && strcmp(st, "started") == 0;
    char line[1024], t[48], a[48];
    size_t i;

    printf("job %s\n", id);
    row(c, "status", st ? st : "-");
    if (admin_job_field(j, "func")) row(c, "function", admin_job_field(j, "func"));
    if (admin_job_field(j, "queue")) row(c, "queue", admin_job_field(j, "queue"));
    if (args != NULL) {
        printf("  %-13s ", "args");
        put_cut(stdout, c, args, c->cols - 16 - 9 - (int)strlen(j->record_from));
        printf("  (from %s)\n", j->record_from);
    } else if (j->record_note[0] != '\0') {
        snprintf(line, sizeof line, "(its record is %s)", j->record_note);
        row(c, "args", line);
    } else {
        row(c, "args", "(no record found: it is kept while the job waits, runs or failed)");
    }
    for (i = 0; i < sizeof times / sizeof times[0]; i++) {
        double tv = render_job_time(j, times[i][0]);
        if (tv <= 0) continue;
        snprintf(line, sizeof line, "%s (%s)", iso(t, sizeof t, tv), ago(a, sizeof a, tv, now));
        row(c, times[i][1], line);
    }
    if (rt >= 0) row(c, running ? "running for" : "ran", span(t, sizeof t, rt));
    if (admin_job_field(j, "worker")) row(c, "worker", admin_job_field(j, "worker"));
    row(c, "attempts", attempts ? attempts : "0");
    row(c, "recovered", recovered ? recovered : "0");
    if (admin_job_field(j, "result")) row(c, "result", admin_job_field(j, "result"));
    if (admin_job_field(j, "result_json")) row(c, "result_json", admin_job_field(j, "result_json"));
    if (admin_job_field(j, "error")) row(c, "error", admin_job_field(j, "error"));
    for (i = 0; i + 1 < j->nfields; i += 2) { /* fields this version does not know of */
        const char *name = j->fields[i];
        if (shown_field(name, shown, sizeof shown / sizeof shown[0]) ||
            render_is_time_field(name) || render_is_count_field(name))
            continue;
        row(c, name, j->fields[i + 1]);
    }
    if (j->ttl >= 0) {
        snprintf(line, sizeof line, "in %s", span(t, sizeof t, (double)j->ttl));
        row(c, "expires", line);
    }
    if (j->cancel_requested)
        row(c, "cancel",
            running ? "requested: its worker is stopping it"
                    : "requested: a worker that takes it drops it");
}

static int run_job(struct ctl *c, char **args, int n)
{
    struct admin_job j;
    char err[512], *jargs;

    (void)n;
    if (admin_job_read(&c->a, args[0], &j, err, sizeof err) != 0) {
        if (c->json) { /* one document, as every --json prints: the dashboard's /api/job too */
            cJSON *o = render_object();
            render_str(o, "id", args[0]);
            render_str(o, "error", err);
            json_print(o);
        }
        fprintf(stderr, "cqctl: %s\n", err);
        return 1;
    }
    if (c->json) {
        json_print(render_job(args[0], &j));
    } else {
        jargs = render_job_args(&j);
        print_job(c, args[0], &j, jargs);
        free(jargs);
    }
    admin_job_free(&j);
    return 0;
}

/* ---- wait --------------------------------------------------------------------------- */

/* A line of stdin into buf (len bytes), without its '\n': its length, -1 at the end of stdin
 * or an error (an interrupt: a line cut there is no id), or len when it is longer than
 * len - 1 bytes, of which buf then holds those: a stream without newlines (< /dev/zero) is
 * not held in memory whole. */
static ssize_t read_id_line(char *buf, size_t len)
{
    size_t n = 0;
    int ch;

    while ((ch = getc(stdin)) != EOF && ch != '\n') {
        if (n == len - 1) {
            buf[n] = '\0';
            return (ssize_t)len;
        }
        buf[n++] = (char)ch;
    }
    buf[n] = '\0';
    return ch == EOF && (n == 0 || ferror(stdin)) ? -1 : (ssize_t)n;
}

/* The ids of wait's arguments, or of stdin's lines for "-" (blank ones skipped): each checked
 * (a usage error, 2, naming stdin's line; else 0 with *ids, *n). */
static int wait_ids(char **args, int nargs, char ***ids, size_t *n)
{
    size_t cap = 0, lineno = 0;
    char line[KEYS_NAME_MAX + 2], err[512], shown[STR_SHOWN_LEN]; /* an id, '\r', '\0' */
    ssize_t len;
    struct sigaction sa;
    int i;

    /* An interrupt sets stopping (run_wait says it, with the ids read): without SA_RESTART,
     * so that a read of stdin that waits returns. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    *ids = NULL;
    *n = 0;
    for (i = 0; i < nargs; i++) {
        if (strcmp(args[i], "-") != 0) { /* checked by main */
            if (*n == cap) *ids = xrealloc(*ids, (cap = cap ? 2 * cap : 64) * sizeof **ids);
            (*ids)[(*n)++] = xstrdup(args[i]);
            continue;
        }
        while (!stop_requested(&stopping) && (len = read_id_line(line, sizeof line)) >= 0) {
            lineno++;
            if ((size_t)len == sizeof line) {
                err_set(err, sizeof err,
                        "job id '%s': longer than %d bytes: use 1-%d characters of A-Z a-z 0-9 "
                        "_ . @ -",
                        str_shown(line, shown, sizeof shown), KEYS_NAME_MAX, KEYS_NAME_MAX);
                return cli_error(&cli, "stdin line %zu: %s", lineno, err);
            }
            while (len > 0 && line[len - 1] == '\r') line[--len] = '\0';
            if (len == 0) continue;
            /* A NUL ends the string early: "a\0b" would be job a. */
            if (strlen(line) != (size_t)len) {
                err_set(err, sizeof err,
                        "job id '%s' followed by a NUL byte: use 1-%d characters of A-Z a-z "
                        "0-9 _ . @ -",
                        str_shown(line, shown, sizeof shown), KEYS_NAME_MAX);
                return cli_error(&cli, "stdin line %zu: %s", lineno, err);
            }
            if (keys_check_name("job id", line, err, sizeof err) != 0)
                return cli_error(&cli, "stdin line %zu: %s", lineno, err);
            if (*n == cap) *ids = xrealloc(*ids, (cap = cap ? 2 * cap : 64) * sizeof **ids);
            (*ids)[(*n)++] = xstrdup(line);
        }
        if (stop_requested(&stopping)) return 0;
        if (ferror(stdin)) {
            fprintf(stderr, "cqctl: reading job ids from stdin: %s\n", strerror(errno));
            return 1;
        }
    }
    return 0;
}

static int run_wait(struct ctl *c, char **args, int nargs)
{
    struct jobwait jw;
    cq_client *cl = NULL;
    char **ids = NULL, err[512];
    size_t n = 0, i;
    int rc = wait_ids(args, nargs, &ids, &n);

    /* From here an interrupt prints every id, as one during the wait prints those not ended:
     * an id read from stdin is nowhere else (cenqueue --stdin | cqctl wait -). One that came
     * while stdin was read (wait_ids) is raised again for it. */
    memset(&jw, 0, sizeof jw);
    jw.prog = "cqctl";
    jw.ids = ids;
    jw.n = n;
    jw.timeout = c->wait_timeout;
    jw.json = c->json;
    /* A job without a status would be waited for for good: a typo, or one whose status
     * expired after it ended. The wait says each (with --json on stdout too) as it reads
     * the statuses, once subscribed, and waits for the others (jobwait.h). No read of
     * cqctl's own before it: one round trip less, and a status that expired between that
     * read and the subscription is no longer waited for for good. */
    if (rc == 0) {
        jobwait_catch(&jw);
        if (stop_requested(&stopping)) raise(SIGINT);
    }
    if (rc == 0 && n == 0) rc = cli_error(&cli, "wait: no job id on stdin");
    if (rc == 0 && (cl = cq_client_new(c->url, c->prefix, err, sizeof err)) == NULL) {
        fprintf(stderr, "cqctl: %s\n", err);
        rc = 1;
    }
    if (rc == 0) rc = jobwait_run(&jw, cl);
    jobwait_release();
    /* Lines that could not be written: said with the reason cli_stdout_push kept (main's
     * flush would find none left: 'Input/output error'); a reader that left (EPIPE) is exit
     * 1 without a word, as for cqctl's other commands. */
    if (cli_stdout_flush("cqctl", "the jobs' outcomes") != 0 || ferror(stdout)) rc = 1;
    for (i = 0; i < n; i++) free(ids[i]);
    free(ids);
    if (cl != NULL) cq_client_free(cl);
    return rc;
}

/* ---- requeue, cancel, delete --------------------------------------------------------- */

/* What the actions on jobs report: a line each (text), or {"jobs":[...]} (JSON). */
struct report {
    const struct ctl *c;
    cJSON *doc, *jobs;
    long refused;
    char last[512]; /* the last refusal printed, and how often it came again since */
    long again;
};

/* A refusal that names no job (a key of cq's of another type: every job of a page meets it)
 * is printed once, then counted: "(the same for N more jobs)". */
static void report_again(struct report *r)
{
    if (r->again > 0)
        fprintf(stderr, "cqctl: (the same for %ld more job%s)\n", r->again,
                r->again == 1 ? "" : "s");
    r->again = 0;
}

static void report_init(struct report *r, const struct ctl *c)
{
    memset(r, 0, sizeof *r);
    r->c = c;
    if (c->json) {
        r->doc = render_object();
        r->jobs = render_array(r->doc, "jobs");
    }
}

/* One job's outcome: err NULL when it went well (text: the line), else the refusal (on
 * stderr as one line, whatever the format). */
static void report_job(struct report *r, const char *id, const char *outcome, const char *key,
                       const char *value, const char *line, const char *err)
{
    if (err != NULL && strcmp(err, r->last) == 0) {
        r->again++;
        r->refused++;
    } else if (err != NULL) {
        report_again(r);
        fprintf(stderr, "cqctl: %s\n", err);
        str_copy(r->last, sizeof r->last, err);
        r->refused++;
    } else if (!r->c->json) {
        printf("%s\n", line);
    }
    if (r->jobs != NULL) {
        cJSON *o = render_object();
        render_str(o, "id", id);
        render_str(o, "outcome", err ? "refused" : outcome);
        if (err != NULL)
            render_str(o, "error", err);
        else if (key != NULL)
            render_str(o, key, value);
        cJSON_AddItemToArray(r->jobs, o);
    }
}

static int report_end(struct report *r)
{
    report_again(r);
    if (r->doc != NULL) {
        render_num(r->doc, "refused", (double)r->refused);
        json_print(r->doc);
    }
    return r->refused > 0 ? 1 : 0;
}

static void requeued_one(void *ctx, const char *id, const char *queue, const char *err)
{
    char line[512];

    snprintf(line, sizeof line, "requeued %s to queue %s", id, queue ? queue : "");
    report_job(ctx, id, "requeued", "queue", queue, line, err);
}

/* requeue's arguments, checked before Redis is: 0, or a usage error's status. */
static int requeue_usage(const struct ctl *c, int n)
{
    if (c->all_failed && n > 0)
        return cli_error(&cli, "requeue: job ids and --all-failed do not go together: give one");
    if (!c->all_failed && n == 0) return cli_error(&cli, "requeue: give job ids or --all-failed");
    if (c->queue != NULL && !c->all_failed)
        return cli_error(&cli, "requeue: --queue needs --all-failed");
    if (c->queue != NULL && !keys_valid_name(c->queue)) { /* as cenqueue's --queue */
        char shown[STR_SHOWN_LEN];
        return cli_error(&cli, "--queue: '%s' is not a queue name (" KEYS_NAME_RULE ")",
                         str_shown(c->queue, shown, sizeof shown));
    }
    return 0;
}

static int run_requeue(struct ctl *c, char **args, int n)
{
    struct report r;
    char err[512];
    int i;

    report_init(&r, c);
    if (c->all_failed) {
        long done, refused, dropped;
        if (c->queue != NULL) warn_unknown_queue(c, c->queue);
        if (admin_requeue_failed(&c->a, c->queue, requeued_one, &r, &done, &refused, &dropped, err,
                                 sizeof err) != 0) {
            fprintf(stderr, "cqctl: %s\n", err);
            report_end(&r);
            return 1;
        }
        report_again(&r); /* before the count */
        if (c->json) {
            render_num(r.doc, "dropped", (double)dropped);
        } else {
            printf("requeued %ld failed job%s%s%s; %ld refused", done, done == 1 ? "" : "s",
                   c->queue ? " of queue " : "", c->queue ? c->queue : "", refused);
            if (dropped > 0)
                printf("; %ld dropped from the failed set (their status had expired)", dropped);
            printf("\n");
        }
        return report_end(&r);
    }
    for (i = 0; i < n; i++) {
        char q[KEYS_NAME_MAX + 1];
        if (admin_requeue(&c->a, args[i], q, sizeof q, err, sizeof err) == 0)
            requeued_one(&r, args[i], q, NULL);
        else
            requeued_one(&r, args[i], NULL, err);
    }
    return report_end(&r);
}

static int run_cancel(struct ctl *c, char **args, int n)
{
    struct report r;
    int i;

    report_init(&r, c);
    for (i = 0; i < n; i++) {
        struct admin_cancel out;
        char err[1024], line[768]; /* err: a running job's, a cancel asked and a key's error */
        int rc = admin_cancel(&c->a, args[i], &out, err, sizeof err);
        if (rc == ADMIN_CANCELED) {
            snprintf(line, sizeof line, "canceled %s (it was %s)", args[i], out.was);
            report_job(&r, args[i], "canceled", "was", out.was, line, NULL);
        } else if (rc == ADMIN_CANCEL_ORPHAN) {
            /* No worker to stop it: recovery returns it to its queue, where the take that
             * meets it sees its cancel and ends it unrun (worker.c's refuse_canceled). */
            snprintf(line, sizeof line,
                     "canceling %s: its worker %s is gone; it ends canceled, without running "
                     "again, once a live worker returns it to queue %s",
                     args[i], out.worker, out.queue[0] ? out.queue : "?");
            report_job(&r, args[i], "canceling", "was", out.was, line, NULL);
        } else if (rc == ADMIN_CANCEL_ASKED) {
            snprintf(line, sizeof line,
                     "canceling %s: it is running; its worker stops it and records canceled",
                     args[i]);
            report_job(&r, args[i], "stopping", "was", out.was, line, NULL);
        } else {
            report_job(&r, args[i], NULL, NULL, NULL, NULL, err);
        }
    }
    return report_end(&r);
}

static int run_delete(struct ctl *c, char **args, int n)
{
    struct report r;
    int i;

    report_init(&r, c);
    for (i = 0; i < n; i++) {
        char was[32], err[512], line[512];
        if (admin_delete(&c->a, args[i], was, sizeof was, err, sizeof err) != 0) {
            report_job(&r, args[i], NULL, NULL, NULL, NULL, err);
            continue;
        }
        if (was[0] == '\0')
            snprintf(line, sizeof line, "deleted %s (only its failed-set entry was left)", args[i]);
        else if (strcmp(was, "finished") == 0 || strcmp(was, "failed") == 0 ||
                 strcmp(was, "canceled") == 0)
            snprintf(line, sizeof line, "deleted %s (it was %s)", args[i], was);
        else
            snprintf(line, sizeof line, "deleted %s (it was %s: canceled first)", args[i], was);
        report_job(&r, args[i], "deleted", "was", was, line, NULL);
    }
    return report_end(&r);
}

/* ---- queues ------------------------------------------------------------------------- */

static int check_queue(const char *q)
{
    return check_name("queue", q);
}

static int run_empty(struct ctl *c, char **args, int n)
{
    const char *q = queue_operand(args[0]);
    char err[512];
    long removed;

    (void)n;
    if (check_queue(q) != 0) return 2;
    warn_unknown_queue(c, q);
    removed = admin_empty(&c->a, q, err, sizeof err);
    if (removed < 0) {
        fprintf(stderr, "cqctl: %s\n", err);
        return 1;
    }
    if (c->json) {
        cJSON *o = render_object();
        render_str(o, "queue", q);
        render_num(o, "removed", (double)removed);
        json_print(o);
    } else {
        printf("emptied queue %s: %ld job%s removed and canceled\n", q, removed,
               removed == 1 ? "" : "s");
    }
    return 0;
}

static int pause_or_resume(struct ctl *c, const char *q, int pause)
{
    char err[512];
    int changed;

    q = queue_operand(q);
    if (check_queue(q) != 0) return 2;
    warn_unknown_queue(c, q);
    changed = admin_pause(&c->a, q, pause, err, sizeof err);
    if (changed < 0) {
        fprintf(stderr, "cqctl: %s\n", err);
        return 1;
    }
    if (c->json) {
        cJSON *o = render_object();
        render_str(o, "queue", q);
        render_bool(o, "paused", pause);
        render_bool(o, "changed", changed);
        json_print(o);
    } else if (pause) {
        printf(changed ? "paused queue %s: workers take nothing more from it (running jobs "
                         "finish)\n"
                       : "queue %s was paused already\n",
               q);
    } else {
        printf(changed ? "resumed queue %s\n" : "queue %s was not paused\n", q);
    }
    return 0;
}

static int run_pause(struct ctl *c, char **args, int n)
{
    (void)n;
    return pause_or_resume(c, args[0], 1);
}

static int run_resume(struct ctl *c, char **args, int n)
{
    (void)n;
    return pause_or_resume(c, args[0], 0);
}

static int run_forget(struct ctl *c, char **args, int n)
{
    const char *q = queue_operand(args[0]);
    char err[512];
    int was_known = 0, was_paused = 0;

    (void)n;
    if (check_queue(q) != 0) return 2;
    if (admin_forget(&c->a, q, &was_known, &was_paused, err, sizeof err) != 0) {
        fprintf(stderr, "cqctl: %s\n", err);
        return 1;
    }
    if (c->json) {
        cJSON *o = render_object();
        render_str(o, "queue", q);
        render_bool(o, "was_known", was_known);
        render_bool(o, "was_paused", was_paused);
        json_print(o);
    } else if (was_known) {
        printf("forgot queue %s%s: info, metrics and the dashboard no longer show it\n", q,
               was_paused ? " (and its pause)" : "");
    } else {
        printf("queue %s was not known%s\n", q, was_paused ? "; its pause was dropped" : "");
    }
    return 0;
}

/* ---- metrics ------------------------------------------------------------------------ */

static int run_metrics(struct ctl *c, char **args, int n)
{
    struct admin_metrics m;
    char err[512];

    (void)args;
    (void)n;
    if (admin_metrics_read(&c->a, &m, err, sizeof err) != 0) {
        fprintf(stderr, "cqctl: %s\n", err);
        return 1;
    }
    if (c->json)
        json_print(render_metrics(&c->a, &m));
    else
        render_metrics_text(stdout, &m);
    print_info_warning(stderr, "cqctl: ", &m.info);
    admin_metrics_free(&m);
    return 0;
}

/* ---- serve -------------------------------------------------------------------------- */

static int run_serve(struct ctl *c, char **args, int n)
{
    (void)args;
    (void)n;
    c->serve.log_json = c->log_format >= 0 ? c->log_format : c->json;
    c->serve.url = c->url;
    c->serve.prefix = c->prefix;
    return serve_run(&c->serve);
}

/* ---- commands and options ----------------------------------------------------------- */

static const struct command commands[] = {
    {"info",
     "[--watch [--interval D]]",
     "queues, counters and workers at a glance",
     "Each queue: its depth (records waiting), the records workers hold from it (a gone\n"
     "worker's too, until a live worker's recovery returns them), the jobs of it that ended\n"
     "in this minute and the one before, and whether it is paused; the scheduled, failed and\n"
     "dead counts; each worker: host, pid, queues, busy/concurrency, jobs processed and\n"
     "failed, the age of its last heartbeat and whether its lease is current. On a terminal\n"
     "each queue gets a bar, its depth against the deepest. --watch redraws in place until\n"
     "Ctrl-C (on a non-terminal: one picture per interval); a Redis it cannot reach for its\n"
     "first picture ends it (exit 1), one lost later is said each interval until it is back.\n",
     {'w', O_INTERVAL, 0},
     0,
     0,
     run_info,
     0,
     0},
    {"workers",
     "",
     "the workers alone",
     "The worker table of info: every registered worker, with its lease (\"gone\": no heartbeat\n"
     "within its --lease, or a live worker found its connections closed; a live worker's\n"
     "next recovery returns its jobs to their queues).\n",
     {0},
     0,
     0,
     run_workers,
     0,
     0},
    {"jobs",
     "QUEUE|running|scheduled|failed|dead [--limit N] [--offset N]",
     "one page of a list",
     "A queue oldest first (the next to run on top); the running jobs (in live workers'\n"
     "hands) by worker, with when each started; the scheduled set soonest first, with its due\n"
     "times; the failed set newest first, with each job's error; the dead list (records\n"
     "without a usable id) newest first, raw. Only the page is read from Redis. A queue named\n"
     "running, scheduled, failed or dead is written queue:NAME.\n",
     {'n', O_OFFSET, 0},
     1,
     1,
     run_jobs,
     0,
     0},
    {"job",
     "ID",
     "one job's status, readable",
     "The status hash of the job: times as UTC dates and ages, its run time, args (from its\n"
     "record, when it is kept where the status says), result or error, attempts, recoveries,\n"
     "worker, when the status expires.\n",
     {0},
     1,
     1,
     run_job,
     0,
     1},
    {"wait",
     "ID...|- [--wait-timeout D]",
     "wait until jobs end, a line as each does",
     "Wait for jobs enqueued earlier (by any producer) until each has ended or --wait-timeout\n"
     "passes; '-' reads the ids from stdin, one a line (cenqueue --stdin | cqctl wait -). As\n"
     "cenqueue --wait: a line on stdout for each job as it ends, 'ID finished RESULT', 'ID\n"
     "failed ERROR' or 'ID canceled ...' (a control byte of the text as \\n, \\r or \\xHH; with\n"
     "--json, a JSON object a line: id, state, and result, result_json or error); after\n"
     "--wait-timeout, 'ID STATE' for each job not ended; a count of the outcomes on stderr,\n"
     "and while stderr is a terminal, how many have ended. No polling: it subscribes to each\n"
     "job's channel (docs/PROTOCOL.md). An id without a status (a typo, or a job whose status\n"
     "expired) is said on stderr (with --json, also as {\"id\":ID,\"state\":\"unknown\"} on\n"
     "stdout) and not waited for. Ctrl-C prints the ids not ended (before the wait, those\n"
     "read) and exits 1; the jobs go on. A line that cannot be written (its reader left)\n"
     "ends the wait there.\n"
     "Exit status: 0 when every job finished; 1 when one failed, was canceled, did not end\n"
     "in time or has no status, or Redis or stdin failed; 2 for a usage error (stdin's\n"
     "names its line).\n",
     {O_WAIT_TIMEOUT, 0},
     1,
     -1,
     run_wait,
     1,
     1},
    {"requeue",
     "ID... | --all-failed [--queue NAME]",
     "run failed jobs again",
     "Put failed jobs back on their queues, attempts at 0: each in one script that moves the\n"
     "record, takes the id out of the failed set and marks the job queued. A job that is not\n"
     "failed is refused (exit 1). --all-failed walks the failed set page by page (with\n"
     "--queue, only the jobs of that queue).\n",
     {O_ALL_FAILED, 'q', 0},
     0,
     -1,
     run_requeue,
     0,
     1},
    {"cancel",
     "ID...",
     "cancel jobs that have not ended",
     "A waiting job (queued, scheduled, retrying) is canceled at once: no worker runs it. A\n"
     "running one is stopped by its worker within a second (a sleep returns, a command's\n"
     "process group gets SIGTERM), which then records it canceled. One whose worker is gone\n"
     "(killed) ends canceled, without running again, when a live worker's recovery returns\n"
     "it to its queue and a worker takes it. Jobs that ended are refused (exit 1).\n",
     {0},
     1,
     -1,
     run_cancel,
     0,
     1},
    {"delete",
     "ID...",
     "delete jobs' statuses (canceling those not ended)",
     "Cancel the job when it has not ended, then delete its status and remove it from the\n"
     "failed set. A running job's status comes back, canceled, when its worker stops it, and\n"
     "a queued one's when a worker drops its record or cqctl empty removes it: delete it\n"
     "again then.\n",
     {0},
     1,
     -1,
     run_delete,
     0,
     1},
    {"empty",
     "QUEUE",
     "drop every job waiting in a queue",
     "Remove the records of the queue, 1,000 at a time, and mark each job canceled. Jobs that\n"
     "are running go on. Prints how many were removed.\n",
     {0},
     1,
     1,
     run_empty,
     0,
     0},
    {"pause",
     "QUEUE",
     "stop workers taking from a queue",
     "Workers take nothing more from the queue (within a second); jobs running finish;\n"
     "producers can still enqueue.\n",
     {0},
     1,
     1,
     run_pause,
     0,
     0},
    {"resume",
     "QUEUE",
     "let workers take from a paused queue again",
     "Workers take from the queue again within a second.\n",
     {0},
     1,
     1,
     run_resume,
     0,
     0},
    {"forget",
     "QUEUE",
     "remove an empty queue from the known queues",
     "Remove the queue from the known queues (cq:queues) and the paused set, and its\n"
     "throughput counts, so that info, metrics and the dashboard stop showing it: a mistyped\n"
     "name, or a queue no longer used. Only a queue that is empty and that no registered\n"
     "worker serves; a producer that enqueues to it later makes it known again.\n",
     {0},
     1,
     1,
     run_forget,
     0,
     0},
    {"metrics",
     "",
     "Prometheus text format",
     "Gauges, counters and the run-time histogram in the Prometheus text exposition format\n"
     "0.0.4, for a textfile collector (docs/OPERATIONS.md); cqctl serve serves the same text\n"
     "at /metrics for a scrape. With --json, the same numbers as one JSON document.\n",
     {0},
     0,
     0,
     run_metrics,
     0,
     0},
    {"serve",
     "[--listen HOST:PORT] [--token T | --insecure] [--origin URL]",
     "the dashboard: a web page and its JSON API",
     "Serve a web page of the queues (depth, in flight, paused, jobs per minute), the\n"
     "throughput of the last minutes, the workers, the jobs of each queue and of the scheduled,\n"
     "failed and dead lists a page at a time, and each job; with buttons for requeue, requeue\n"
     "all failed, cancel, delete, empty, pause and resume, each behind a confirmation. The page\n"
     "redraws itself every second. The same data as JSON under /api/, the text of 'cqctl\n"
     "metrics' at /metrics, and /healthz: 200 while Redis answers, else 503. Everything the\n"
     "page needs is in this binary.\n"
     "\n"
     "Safety: the default address is loopback, where only requests naming 127.0.0.1, localhost\n"
     "or [::1] with the port in their Host header are served. Any other address needs --token\n"
     "(or --insecure). With a token, every request carries it: open /?token=T once in a\n"
     "browser (it sets a cookie and redirects to the page), or send 'Authorization: Bearer T';\n"
     "else 401. Actions are POST requests with the header 'X-CQ-Action: 1' (the page sends it),\n"
     "from the page's own origin (http or https, or the one --origin names). Use a TLS proxy\n"
     "in front of a token that crosses a network, with --origin set to the URL it serves.\n"
     "\n"
     "Logs go to stderr: the address served (port 0: the port chosen), each action, refusals.\n"
     "SIGINT or SIGTERM stops it.\n"
     "Exit status: 0 after a signal, 1 when the address cannot be listened on, 2 for a usage\n"
     "error (a non-loopback address without --token).\n",
     {O_LISTEN, O_TOKEN, O_INSECURE, O_ORIGIN, O_REQUEST_TIMEOUT, O_ANSWER_TIMEOUT, O_LOG_LEVEL,
      O_LOG_FORMAT},
     0,
     0,
     run_serve,
     1,
     0},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct command *find_command(const char *name)
{
    size_t i;

    for (i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

/* The options every command takes. */
static int common_option(int key)
{
    return key == 'u' || key == O_PREFIX || key == O_JSON || key == 'h' || key == 'V' ||
        key == CLI_O_TLS_CA || key == CLI_O_TLS_CERT || key == CLI_O_TLS_KEY;
}

static int own_option(const struct command *cmd, int key)
{
    size_t i;

    for (i = 0; i < sizeof cmd->opts / sizeof cmd->opts[0] && cmd->opts[i]; i++)
        if (cmd->opts[i] == key) return 1;
    return 0;
}

#define EXIT_STATUS                                                                           \
    "Exit status: 0 when done; 1 when Redis failed, a key of cq's has another type, a job\n"  \
    "or a queue was refused (each named on stderr), or the output could not all be written\n" \
    "to stdout (a full disk, or its reader left: | head); 2 for a usage error.\n"

static void usage(FILE *f)
{
    size_t i;

    fprintf(f,
            "Usage: cqctl [OPTIONS] COMMAND [ARG...]\n"
            "\n"
            "Look at and steer a cq deployment through its Redis: queues, jobs, workers.\n"
            "\n"
            "Commands:\n");
    for (i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'cqctl COMMAND --help' tells more of each.\n\nOptions:\n");
    cli_print(f, options, NOPTIONS);
    fprintf(f, "\n" CLI_NOTE_DURATIONS EXIT_STATUS);
}

static void command_usage(FILE *f, const struct command *cmd)
{
    struct cli_option mine[NOPTIONS];
    size_t i, n = 0;
    int durations = 0;

    for (i = 0; i < NOPTIONS; i++)
        if (options[i].name != NULL &&
            (common_option(options[i].key) || own_option(cmd, options[i].key))) {
            mine[n++] = options[i];
            durations |= options[i].arg != NULL && strcmp(options[i].arg, "D") == 0;
        }
    /* A command's own exit statuses (serve's) end its help: they go last, as cqctl's. */
    const char *own = strstr(cmd->help, "\nExit status: ");

    fprintf(f, "Usage: cqctl %s%s%s [OPTIONS]\n\n%.*s\nOptions:\n", cmd->name,
            cmd->args[0] ? " " : "", cmd->args,
            own != NULL ? (int)(own + 1 - cmd->help) : (int)strlen(cmd->help), cmd->help);
    cli_print(f, mine, n);
    fprintf(f, "\n%s%s", durations ? CLI_NOTE_DURATIONS : "", own != NULL ? own + 1 : EXIT_STATUS);
}

/* --request-timeout, --answer-timeout: a duration in SERVE_TIMEOUT_RANGE_TEXT. */
static int serve_timeout(struct ctl *c, int opt, const char *val)
{
    double *out = opt == O_REQUEST_TIMEOUT ? &c->serve.request_timeout : &c->serve.answer_timeout;
    int rc = cli_duration(&cli, val, out);

    if (rc == 0 && (*out < SERVE_TIMEOUT_MIN || *out > SERVE_TIMEOUT_MAX))
        rc = cli_error(&cli, "--%s: '%s' is not from " SERVE_TIMEOUT_RANGE_TEXT,
                       opt == O_REQUEST_TIMEOUT ? "request-timeout" : "answer-timeout", val);
    return rc;
}

static const char *option_name(int key)
{
    size_t i;

    for (i = 0; i < NOPTIONS; i++)
        if (options[i].name != NULL && options[i].key == key) return options[i].name;
    return "?";
}

/* Parse every option, before and after the command (getopt permutes). Returns -1 to go on,
 * or an exit status; seen[] collects the options given, *help whether --help was. */
static int parse_options(struct ctl *c, int argc, char **argv, int *seen, size_t *nseen, int *help)
{
    int opt, rc = 0;

    /* -h is ours: after a command it prints that command's help. */
    cli_begin(&cli, "cqctl", CQ_VERSION, NULL, options, NOPTIONS, 0);
    {
        /* A usage error after the command points to that command's --help. */
        const char *first = cli_first_operand(&cli, argc, argv);
        const struct command *cmd = first != NULL ? find_command(first) : NULL;
        if (cmd != NULL) cli.command = cmd->name;
    }
    while (rc == 0 && (opt = cli_next(&cli, argc, argv)) != -1) {
        if (opt != CLI_STOP && *nseen < 32) seen[(*nseen)++] = opt;
        switch (opt) {
        case CLI_STOP: rc = cli.status == 0 ? CLI_STOP : cli.status; break;
        case 'u': c->url = optarg; break;
        case CLI_O_TLS_CA:
        case CLI_O_TLS_CERT:
        case CLI_O_TLS_KEY: cli_tls(opt, optarg); break;
        case O_PREFIX: c->prefix = optarg; break;
        case O_JSON: c->json = 1; break;
        case 'w': c->watch = 1; break;
        case O_INTERVAL:
            rc = cli_duration(&cli, optarg, &c->interval);
            if (rc == 0 && (c->interval < 0.05 || c->interval > 86400))
                rc = cli_error(&cli, "--interval: '%s' is not from 50ms to 24h", optarg);
            c->interval_given = 1;
            break;
        case O_WAIT_TIMEOUT:
            rc = cli_duration(&cli, optarg, &c->wait_timeout);
            if (rc == 0 && c->wait_timeout <= 0)
                rc = cli_error(&cli, "--wait-timeout: '%s' is not above 0", optarg);
            break;
        case 'n': rc = cli_long(&cli, optarg, 1, 10000, &c->limit); break;
        case O_OFFSET: rc = cli_long(&cli, optarg, 0, 1000000000L, &c->offset); break;
        case O_ALL_FAILED: c->all_failed = 1; break;
        case 'q': c->queue = optarg; break;
        case O_LISTEN: c->serve.listen = optarg; break;
        case O_TOKEN:
            c->serve.token = optarg;
            c->serve.token_from = NULL; /* --token's own */
            break;
        case O_INSECURE: c->serve.insecure = 1; break;
        case O_ORIGIN: c->serve.origin = optarg; break;
        case O_REQUEST_TIMEOUT:
        case O_ANSWER_TIMEOUT: rc = serve_timeout(c, opt, optarg); break;
        case O_LOG_LEVEL: rc = cli_choice(&cli, optarg, log_levels, 4, &c->serve.log_level); break;
        case O_LOG_FORMAT: rc = cli_choice(&cli, optarg, log_formats, 2, &c->log_format); break;
        case 'h': *help = 1; break;
        default: rc = cli_error(&cli, "option '%s' is not handled", cli.opt); break;
        }
    }
    cli_end(&cli);
    return rc == CLI_STOP ? 0 : rc == 0 ? -1 : rc;
}

int main(int argc, char **argv)
{
    const struct command *cmd;
    struct ctl c;
    char err[512];
    int seen[32], help = 0, rc, n;
    size_t nseen = 0, i;

    memset(&c, 0, sizeof c);
    c.interval = 1.0;
    c.limit = 20;
    c.serve.listen = SERVE_LISTEN_DEFAULT;
    c.serve.token = getenv("CQ_DASHBOARD_TOKEN");
    if (c.serve.token != NULL && c.serve.token[0] == '\0') c.serve.token = NULL;
    if (c.serve.token != NULL) c.serve.token_from = "$CQ_DASHBOARD_TOKEN";
    c.serve.log_level = CQ_LOG_INFO;
    c.serve.request_timeout = SERVE_REQUEST_TIMEOUT;
    c.serve.answer_timeout = SERVE_ANSWER_TIMEOUT;
    c.log_format = -1;
    rc = parse_options(&c, argc, argv, seen, &nseen, &help);
    if (rc >= 0) return rc;
    if (optind >= argc && help) {
        cli_help_buffer();
        usage(stdout);
        return cli_stdout_flush("cqctl", "the help") < 0 ? 1 : 0;
    }
    if (optind >= argc) return cli_error(&cli, "give a command");
    cmd = find_command(argv[optind]);
    if (cmd == NULL) return cli_error(&cli, "unknown command '%s'", argv[optind]);
    if (help) {
        cli_help_buffer();
        command_usage(stdout, cmd);
        return cli_stdout_flush("cqctl", "the help") < 0 ? 1 : 0;
    }
    /* cli.command is cmd's name (parse_options): these point to its --help. */
    for (i = 0; i < nseen; i++)
        if (!common_option(seen[i]) && !own_option(cmd, seen[i]))
            return cli_error(&cli, "--%s is not an option of %s", option_name(seen[i]), cmd->name);
    n = argc - optind - 1;
    if (n < cmd->min || (cmd->max >= 0 && n > cmd->max))
        return cli_error(&cli, "%s: %s (usage: cqctl %s%s%s)", cmd->name,
                         n < cmd->min ? "missing argument" : "too many arguments", cmd->name,
                         cmd->args[0] ? " " : "", cmd->args);
    if (cmd->run == run_requeue && (rc = requeue_usage(&c, n)) != 0) return rc;
    if (c.interval_given && !c.watch)
        return cli_error(&cli, "%s: --interval needs --watch", cmd->name);
    c.tty = isatty(STDOUT_FILENO);
    c.cols = 80;
    if (c.tty) {
        struct winsize ws;
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) c.cols = ws.ws_col;
    }
    if (cli_check_settings(c.url, c.prefix, err, sizeof err) != 0 ||
        admin_init(&c.a, c.url, c.prefix, err, sizeof err) != 0)
        return cli_error(&cli, "%s", err);
    /* A bad id is a usage error (2) whether Redis answers or not. */
    for (int k = optind + 1; cmd->ids && k < argc; k++)
        if (strcmp(argv[k], "-") != 0 && check_name("job id", argv[k]) != 0) return 2;
    if (!cmd->lazy && admin_connect(&c.a, err, sizeof err) != 0 && !c.watch) {
        fprintf(stderr, "cqctl: %s\n", err);
        return 1;
    }
    rc = cmd->run(&c, argv + optind + 1, n);
    admin_close(&c.a);
    /* The output is the command's result: one not written whole is exit 1 (cli.h). */
    if (cli_stdout_flush("cqctl", "the output") != 0) return rc ? rc : 1;
    return rc;
}
