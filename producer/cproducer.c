/* cproducer - enqueue one download_link(DIR, LINK) job per image of an Imgur gallery.
 *
 * The lesson's producer as a command for cron and deploy scripts. The get-links step is
 * gallery_get_links() in common/gallery.c, so that the local modes can reuse it; this file
 * only parses options, enqueues and (with --wait) watches the jobs.
 *
 * Decisions:
 *   - stdout carries the result and nothing else: the links (--dry-run), the line
 *     "enqueued N jobs to queue Q", and with --wait "Took N.NNs" and the summary. Errors,
 *     warnings, -v logging and the progress line go to stderr, so that
 *     `cproducer --dry-run > links.txt` is clean.
 *   - Redis is connected (and the URL checked) before the API is asked, so that a wrong -u
 *     fails at once instead of after spending rate-limit credits.
 *   - All links are gathered before the first job is enqueued: a run that fails on page 3
 *     enqueues nothing rather than two thirds of the gallery.
 *   - Jobs go in pipelined batches of BATCH (one MULTI/EXEC round trip each).
 *   - --wait polls the status of every unfinished job with pipelined HMGETs every POLL_MS.
 *     A status hash that has vanished (this run wrote it with its job) went with the job's
 *     end (a worker's --result-ttl 0 or --failure-ttl 0), or was deleted or lost with
 *     Redis's data: its outcome is unknown, counted so and not as finished (exit 1), in
 *     cenqueue --wait's words (jobwait_say_gone). "Took" is measured from the start of the
 *     program, as in the lesson, so it includes fetching and enqueueing.
 *   - -v logs the rate-limit credits and the counts; -vv also every request and job id.
 *   - Two options beyond the list: --max-wait (the run's budget for rate-limit and
 *     retry waits, default 60s, so that cron never hangs on a throttled API) and
 *     --wait-timeout (so that --wait without a running worker still ends).
 *   - --dry-run needs no Redis; --dry-run with --wait is a usage error.
 *   - SIGINT/SIGTERM: the current step stops at the next safe point (between requests,
 *     between batches, between polls) and the run exits 1; a second signal kills at once.
 *   - --mode sequential|threads|processes|async downloads the links here instead
 *     of enqueueing them, as the lesson does before it reaches for Redis; producer/local.c
 *     runs them with the same download_link code as cworker, with cworker's limits: its
 *     default deny list and --content image, and its --deny-networks, --allow-hosts and
 *     --content (dlopts.h), which go only with --mode (the jobs are cworker's). No Redis
 *     is touched, so the options that only mean something for Redis (-u, -q, --prefix,
 *     --wait, --wait-timeout) and --dry-run are refused with it rather than silently
 *     ignored, and -j/--download-root are refused without it. The files go to ./DIR (or
 *     --download-root/DIR), as the lesson's images/. stdout gets "Took N.NNs" and
 *     "downloaded D, failed F, B bytes"; each failed link is one line on stderr as it
 *     happens; stop on a signal works as for --wait (the transfers running finish, the rest
 *     are counted "not started").
 *
 * Exit status: 0 success; 1 runtime error (API, Redis), interrupted, with --wait a job
 * failed, was canceled, has no status to say its outcome or did not end in time, with --mode a link failed, or the result not all written
 * to stdout (cli.h); 2 usage error or IMGUR_CLIENT_ID missing.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include <cq/cq.h>

#include "cli.h"
#include "jobwait.h"
#include "dlopts.h"
#include "functions.h"
#include "download.h"
#include "gallery.h"
#include "http.h"
#include "keys.h"
#include "local.h"
#include "log.h"
#include "queuewarn.h"
#include "util.h"

#ifndef CQ_VERSION
#define CQ_VERSION "dev"
#endif

#define PROG          "cproducer"
#define FUNC          "download_link"
#define BATCH         1000 /* jobs per MULTI/EXEC */
#define POLL_BATCH    1000 /* HMGETs per pipelined round trip while waiting */
#define POLL_MS       150
#define SHOW_FAILED   10  /* failed jobs named in the summary */
#define ID_MAX        128 /* longest job id */
#define REDIS_RETRY_S 30  /* --wait keeps reconnecting this long before giving up */

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

struct config {
    struct gallery_opts g;
    const char *types;
    int expand;
    const char *dir;
    const char *queue;
    const char *url;
    const char *prefix;
    int dry_run;
    int wait;
    double wait_timeout; /* seconds; 0 = no limit */
    int wait_timeout_given;
    int verbose;
    int local; /* --mode given: download here, no Redis */
    enum local_mode mode;
    int jobs;                  /* -j; 0 = not given */
    const char *download_root; /* NULL = not given (the current directory) */
    struct dlopts dl;          /* --deny-networks, --allow-hosts, --content: as cworker's */
    struct http_limits limits; /* with --mode: download_link's, the policy dl's */
    const char *redis_opt;     /* the first Redis-only option given, for the usage error */
};

static stop_flag stopping;

/* Atomic, as stop_requested reads it: the local modes' threads read it while the handler
 * runs on the main thread (ThreadSanitizer saw the plain store race with them). */
static void on_signal(int sig)
{
    (void)sig;
    __atomic_store_n(&stopping, 1, __ATOMIC_RELAXED);
}

enum {
    O_API = 256,
    O_SECTION,
    O_SORT,
    O_WINDOW,
    O_PAGE,
    O_PAGES,
    O_TYPES,
    O_ALBUMS,
    O_DIR,
    O_PREFIX,
    O_DRY,
    O_WAIT,
    O_WAIT_TIMEOUT,
    O_MAX_WAIT,
    O_MODE,
    O_ROOT
};

static const struct cli_option options[] = {
    {NULL, 0, NULL, "Gallery:"},
    {"api-url", O_API, "URL",
     "gallery base URL (default: $IMGUR_API_URL, else\n" GALLERY_DEFAULT_API_URL ");\n"
     "album URLs are derived from it by removing \"gallery/\""},
    {"section", O_SECTION, "S", "hot, top or user (default: hot)"},
    {"sort", O_SORT, "S", "viral, top, time or rising (default: viral)"},
    {"window", O_WINDOW, "W", "day, week, month, year or all (default: day; only top uses it)"},
    {"page", O_PAGE, "N", "first page, from 0 (default: 0)"},
    {"pages", O_PAGES, "K",
     "pages to fetch, 1 to 1000 (default: 1); stops at an empty page\n"
     "(without --section/--sort/--window/--page/--pages the bare\n"
     "gallery URL is asked, as in the lesson)"},
    {"types", O_TYPES, "LIST",
     "keep images of these MIME types instead, comma-separated,\n"
     "e.g. image/jpeg,image/png (image/* for every image);\n"
     "default: keep links ending in \".jpg\", the lesson's rule"},
    {"albums", O_ALBUMS, "MODE",
     "drop (the default) or expand: fetch each album's images\n"
     "and filter them like the others"},
    {"max-wait", O_MAX_WAIT, "D",
     "time the run may spend waiting on rate limits and retries, at\n"
     "most 1d (default: 60s); a longer wait fails the run at once"},
    {NULL, 0, NULL, "Jobs:"},
    {"dir", O_DIR, "DIR", "directory argument of every job (default: images)"},
    CLI_QUEUE,
    CLI_URL,
    CLI_TLS,
    CLI_PREFIX(O_PREFIX),
    {"dry-run", O_DRY, NULL, "print the links, one a line, and enqueue nothing (no Redis)"},
    {"wait", O_WAIT, NULL,
     "wait until every job of this run has ended (finished, failed\n"
     "or canceled), with a progress line when stderr is a terminal;\n"
     "then print \"Took N.NNs\" and a summary"},
    {"wait-timeout", O_WAIT_TIMEOUT, "D", "with --wait: stop waiting after D (default: no limit)"},
    {NULL, 0, NULL,
     "Local modes (no Redis, no cworker: download the links here, as the lesson does):"},
    {"mode", O_MODE, "MODE",
     "sequential  one link after another (the lesson's single.py)\n"
     "threads     N threads fed by a queue (DownloadWorker)\n"
     "processes   N forked processes sharing the links (Pool(N).map)\n"
     "async       one thread, N transfers in flight (curl multi)\n"
     "then print \"Took N.NNs\" and \"downloaded D, failed F, B bytes\";\n"
     "a failed link is reported on stderr and does not stop the run"},
    {"jobs", 'j', "N",
     "downloads at once: threads, processes or transfers in flight,\n"
     "1 to 256 (default: 8; sequential ignores it), as make -j; not\n"
     "queue jobs (cworker calls its own -c, --concurrency)"},
    DLOPTS_CLI_OPTIONS,
    {"download-root", O_ROOT, "ROOT",
     "write to ROOT/DIR instead of ./DIR (made with its parents if\n"
     "missing), as cworker --download-root.\n"
     "(-u, -q, --prefix, --tls-ca, --tls-cert, --tls-key, --wait,\n"
     "--wait-timeout and --dry-run do not go with --mode.)"},
    {NULL, 0, NULL, "Other:"},
    {"verbose", 'v', NULL,
     "log rate-limit credits and counts to stderr; twice: also every\n"
     "request and every job id"},
    CLI_HELP,
    CLI_VERSION,
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " [OPTIONS]\n"
            "\n"
            "Ask the Imgur API for a gallery and enqueue one job " FUNC
            "(DIR, LINK) per image link,\n"
            "for cworker to run.\n");
    cli_print(f, options, sizeof options / sizeof options[0]);
    fprintf(
        f,
        "\n"
        "Links are enqueued once each, in the order the API listed them. stdout carries only the\n"
        "result: the links (--dry-run), \"enqueued N jobs to queue Q\", and with --wait the time\n"
        "and the summary; everything else goes to stderr.\n"
        "\n" CLI_NOTE_DURATIONS "\n"
        "Environment:\n"
        "  IMGUR_CLIENT_ID          required: the client id of your Imgur application, sent as\n"
        "                           \"Authorization: Client-ID <id>\"\n"
        "  IMGUR_API_URL            default for --api-url\n"
        "  CQ_REDIS_URL             default for -u\n"
        "  CQ_PREFIX                default for --prefix\n"
        "  CQ_DENY_NETWORKS         with --mode: networks denied before --deny-networks\n"
        "  CQ_ALLOW_HOSTS           with --mode: hosts allowed besides --allow-hosts\n"
        "\n"
        "Exit status: 0 when done; 1 for a runtime error (Imgur API, Redis), when interrupted,\n"
        "with --wait when a job failed, was canceled, had no status to say how it ended\n"
        "(\"unknown\": a worker's --result-ttl 0 drops a finished job's at once) or did not end\n"
        "before --wait-timeout, with --mode when a link failed, or when the result could not all\n"
        "be written to stdout (a full disk, or its reader left: | head); 2 for a usage error, or\n"
        "when IMGUR_CLIENT_ID is not set.\n");
}

static struct cli cli; /* the command line, for usage errors (cli_error) */

#define usage_error(...) cli_error(&cli, __VA_ARGS__)

/* A duration option up to max seconds, shown as max_shown ("1d"). 0, or EXIT_USAGE. */
static int parse_seconds(const char *s, double max, const char *max_shown, double *out)
{
    if (cli_duration(&cli, s, out) != 0) return EXIT_USAGE;
    if (*out > max) return usage_error("--%s: '%s' is longer than %s", cli.opt, s, max_shown);
    return 0;
}

/* Remember the first option that only makes sense with Redis: --mode refuses it. */
static void note_redis_opt(struct config *c, const char *opt)
{
    if (c->redis_opt == NULL) c->redis_opt = opt;
}

/* Returns -1 to go on, or the exit status (help, version, usage error). */
static int check_args(struct config *c);
static int parse_loop(int argc, char **argv, struct config *c);

static int parse_args(int argc, char **argv, struct config *c)
{
    int rc;

    memset(c, 0, sizeof *c);
    gallery_opts_default(&c->g);
    if (getenv("IMGUR_API_URL") != NULL && getenv("IMGUR_API_URL")[0] != '\0')
        c->g.api_url = getenv("IMGUR_API_URL");
    c->dir = "images";
    c->queue = "default";
    dlopts_init(&c->dl);
    cli_begin(&cli, PROG, CQ_VERSION, usage, options, sizeof options / sizeof options[0], 0);
    rc = parse_loop(argc, argv, c);
    cli_end(&cli);
    if (rc >= 0) return rc;
    if (optind < argc) return usage_error("unexpected argument \"%s\"", argv[optind]);
    return check_args(c);
}

/* The getopt loop of parse_args. Returns -1 when every option was taken, or an exit status. */
static int parse_loop(int argc, char **argv, struct config *c)
{
    long n;
    int opt;

    for (;;) {
        opt = cli_next(&cli, argc, argv);
        if (opt == -1) break;
        switch (opt) {
        case CLI_STOP: return cli.status;
        case O_API: c->g.api_url = optarg; break;
        case O_SECTION: c->g.section = optarg; break;
        case O_SORT: c->g.sort = optarg; break;
        case O_WINDOW: c->g.window = optarg; break;
        case O_PAGE:
            if (cli_long(&cli, optarg, 0, 1000000, &n) != 0) return EXIT_USAGE;
            c->g.page = n;
            break;
        case O_PAGES:
            if (cli_long(&cli, optarg, 1, 1000, &n) != 0) return EXIT_USAGE;
            c->g.pages = n;
            break;
        case O_TYPES: c->types = optarg; break;
        case O_ALBUMS: {
            static const char *const albums[] = {"drop", "expand"};
            if (cli_choice(&cli, optarg, albums, 2, &c->expand) != 0) return EXIT_USAGE;
            break;
        }
        case O_MAX_WAIT:
            if (parse_seconds(optarg, 86400, "1d", &c->g.max_wait) != 0) return EXIT_USAGE;
            break;
        case O_DIR: c->dir = optarg; break;
        case 'q':
            c->queue = optarg;
            note_redis_opt(c, "-q");
            break;
        case 'u':
            c->url = optarg;
            note_redis_opt(c, "-u");
            break;
        case CLI_O_TLS_CA:
        case CLI_O_TLS_CERT:
        case CLI_O_TLS_KEY:
            cli_tls(opt, optarg);
            note_redis_opt(c, "--tls-*");
            break;
        case O_PREFIX:
            c->prefix = optarg;
            note_redis_opt(c, "--prefix");
            break;
        case O_DRY: c->dry_run = 1; break;
        case O_WAIT:
            c->wait = 1;
            note_redis_opt(c, "--wait");
            break;
        case O_WAIT_TIMEOUT:
            if (cli_duration(&cli, optarg, &c->wait_timeout) != 0) return EXIT_USAGE;
            /* As cenqueue's and cqctl's: no limit is the option left out. */
            if (c->wait_timeout <= 0)
                return usage_error("--wait-timeout: '%s' is not above 0", optarg);
            c->wait_timeout_given = 1;
            note_redis_opt(c, "--wait-timeout");
            break;
        case O_MODE:
            if (local_mode_parse(optarg, &c->mode) != 0)
                return usage_error("--mode: '%s' is not one of sequential, threads, processes or "
                                   "async",
                                   optarg);
            c->local = 1;
            break;
        case 'j':
            if (cli_long(&cli, optarg, 1, LOCAL_JOBS_MAX, &n) != 0) return EXIT_USAGE;
            c->jobs = (int)n;
            break;
        case O_ROOT: c->download_root = optarg; break;
        case 'v': c->verbose++; break;
        default:
            /* --deny-networks, --allow-hosts, --content: read as cworker reads them */
            switch (dlopts_take(&cli, &c->dl, opt, optarg)) {
            case 0: break;
            case 1: return usage_error("option '%s' is not handled", cli.opt);
            default: return EXIT_USAGE;
            }
            break;
        }
    }
    return -1;
}

/* The options that exclude each other, and the values checked only together. Returns -1
 * when all is well, or an exit status. */
static int check_args(struct config *c)
{
    if (c->dry_run && c->wait)
        return usage_error("%s", "--dry-run and --wait do not go together: give one");
    if (c->wait_timeout_given && !c->wait && !c->local)
        return usage_error("%s", "--wait-timeout needs --wait");
    if (c->local && c->redis_opt)
        return usage_error("%s does not go with --mode %s: local modes use no Redis", c->redis_opt,
                           local_mode_name(c->mode));
    if (c->local && c->dry_run)
        return usage_error("--dry-run does not go with --mode %s", local_mode_name(c->mode));
    if (!c->local && c->jobs) return usage_error("%s", "-j needs --mode");
    if (!c->local && c->download_root) return usage_error("%s", "--download-root needs --mode");
    if (!c->local && c->dl.given)
        return usage_error("%s needs --mode (cworker takes it for the jobs)", c->dl.given);
    if (c->download_root && c->download_root[0] == '\0')
        return usage_error("%s", "--download-root: must not be empty");
    if (c->dir[0] == '\0' || strlen(c->dir) > 1024)
        return usage_error("%s", "--dir: must be 1..1024 characters");
    {
        char why[1200];
        if (download_check_dir(c->dir, why, sizeof why) != 0)
            return usage_error("--dir: %s (give a directory below the worker's --download-root)",
                               why);
    }
    if (!cq_valid_name(c->queue)) {
        char shown[STR_SHOWN_LEN];
        return usage_error("--queue: '%s' is not a queue name (" KEYS_NAME_RULE ")",
                           str_shown(c->queue, shown, sizeof shown));
    }

    char err[256];
    if (gallery_filter_init(&c->g.filter, c->types, c->expand, err, sizeof err) != 0)
        return usage_error("%s", err);
    c->g.client_id = getenv("IMGUR_CLIENT_ID");
    if (gallery_opts_check(&c->g, err, sizeof err) != 0) return usage_error("%s", err);
    /* The local modes fetch what cworker would, no more: its default deny list and
     * --content image, then $CQ_DENY_NETWORKS, $CQ_ALLOW_HOSTS and the options. */
    http_limits_default(&c->limits);
    if (c->local && dlopts_finish(&cli, &c->dl, &c->limits) != 0) return EXIT_USAGE;
    return -1;
}

static void notify(void *arg, int level, const char *line)
{
    LOG((const struct logger *)arg, level, "%s", line);
}

static void log_credits(const struct logger *lg, const struct gallery_credits *cr,
                        const struct gallery_stats *st)
{
    LOG(lg, CQ_LOG_INFO,
        "imgur: %ld requests, %ld pages, %ld items (%ld albums, %ld fetched), "
        "%ld links kept, %ld duplicates, %ld filtered out, %ld malformed",
        st->requests, st->pages, st->items, st->albums, st->albums_fetched, st->kept,
        st->duplicates, st->filtered, st->skipped);
    if (cr->client_remaining < 0 && cr->user_remaining < 0) {
        LOG(lg, CQ_LOG_INFO, "imgur: no rate-limit headers seen");
        return;
    }
    long long in = cr->user_reset > 0 ? cr->user_reset - (long long)time(NULL) : -1;
    LOG(lg, CQ_LOG_INFO,
        "imgur credits: client %ld of %ld left, user %ld of %ld left, "
        "user credits reset in %llds",
        cr->client_remaining, cr->client_limit, cr->user_remaining, cr->user_limit,
        in > 0 ? in : 0);
}

static int get_links(struct config *c, const struct logger *lg, struct gallery_links *links)
{
    char err[512];
    struct gallery_credits cr;
    struct gallery_stats st;

    if (http_global_init(err, sizeof err) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return -1;
    }
    struct http *h = http_new(err, sizeof err);
    if (!h) {
        fprintf(stderr, PROG ": %s\n", err);
        return -1;
    }
    c->g.stop = &stopping;
    c->g.notify = notify;
    c->g.notify_arg = (void *)lg;
    int rc = gallery_get_links(h, &c->g, links, &cr, &st, err, sizeof err);
    http_free(h);
    log_credits(lg, &cr, &st);
    if (rc != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return -1;
    }
    return 0;
}

/* Enqueue one job per link; ids[] receives the job ids. Returns 0 or -1 (message printed). */
static int enqueue(const struct config *c, const struct logger *lg, cq_client *cl,
                   const struct gallery_links *links, char (*ids)[ID_MAX + 1])
{
    cq_jobspec *jobs[BATCH];
    char err[1024], warn[512];

    for (size_t off = 0; off < links->n; off += BATCH) {
        size_t m = links->n - off < BATCH ? links->n - off : BATCH;
        if (stopping) {
            fprintf(stderr, PROG ": interrupted after %zu of %zu jobs\n", off, links->n);
            return -1;
        }
        for (size_t i = 0; i < m; i++) {
            const char *argv[2] = {c->dir, links->v[off + i]};
            jobs[i] = cq_jobspec_new_argv(FUNC, argv, 2);
            cq_jobspec_set_queue(jobs[i], c->queue);
        }
        /* One check is enough: every job names the same function with the same shapes. */
        long rc = 0;
        if (off == 0 && cq_client_check(cl, jobs[0], warn, sizeof warn, err, sizeof err) != 0)
            rc = -1;
        else if (off == 0 && warn[0])
            LOG(lg, CQ_LOG_WARN, "%s", warn);
        if (rc == 0) rc = cq_enqueue(cl, jobs, m, CQ_NO_CHECK, err, sizeof err);
        size_t in = 0; /* of this batch: all, none, or (Redis failed after) some */
        for (size_t i = 0; i < m; i++) {
            if (cq_jobspec_enqueued(jobs[i])) {
                str_copy(ids[off + i], ID_MAX + 1, cq_jobspec_id(jobs[i]));
                LOG(lg, CQ_LOG_DEBUG, "job %s %s", ids[off + i], links->v[off + i]);
                in++;
            }
            cq_jobspec_free(jobs[i]);
        }
        if (rc < 0) {
            fprintf(stderr, PROG ": %s (%zu of %zu jobs enqueued)\n", err, off + in, links->n);
            return -1;
        }
    }
    return 0;
}

/* ---- --wait -------------------------------------------------------------------------- */

enum { ST_PENDING, ST_FINISHED, ST_FAILED, ST_CANCELED, ST_GONE };

struct watch {
    char (*ids)[ID_MAX + 1];
    unsigned char *state;
    size_t n;
    size_t finished, failed, canceled, gone;
    size_t queued, running, retrying; /* of the jobs not ended, at the last poll */
    char *errors[SHOW_FAILED];        /* error text of the first failed jobs */
    size_t failed_idx[SHOW_FAILED];
};

static void note_end(struct watch *w, size_t i, const char *status, const char *error)
{
    if (!status) {
        w->state[i] = ST_GONE;
        w->gone++;
    } else if (strcmp(status, "queued") == 0 || strcmp(status, "scheduled") == 0) {
        w->queued++;
    } else if (strcmp(status, "started") == 0) {
        w->running++;
    } else if (strcmp(status, "retrying") == 0) {
        w->retrying++;
    } else if (strcmp(status, "canceled") == 0) {
        w->state[i] = ST_CANCELED;
        w->canceled++;
    } else if (strcmp(status, "finished") == 0) {
        w->state[i] = ST_FINISHED;
        w->finished++;
    } else if (strcmp(status, "failed") == 0) {
        w->state[i] = ST_FAILED;
        if (w->failed < SHOW_FAILED) {
            w->errors[w->failed] = xstrdup(error ? error : "(no error recorded)");
            w->failed_idx[w->failed] = i;
        }
        w->failed++;
    }
}

/* One pass over the unfinished jobs. Returns 0, or -1 on a Redis I/O error. */
static int poll_once(cq_client *cl, struct watch *w, char *err, size_t errlen)
{
    const char *ids[POLL_BATCH];
    size_t batch[POLL_BATCH];
    cq_status *st[POLL_BATCH];
    size_t i = 0;

    w->queued = w->running = w->retrying = 0;
    while (i < w->n) {
        size_t m = 0;
        for (; i < w->n && m < POLL_BATCH; i++) {
            if (w->state[i] != ST_PENDING) continue;
            ids[m] = w->ids[i];
            batch[m++] = i;
        }
        if (m == 0) break;
        if (cq_status_get_many(cl, ids, m, st, err, errlen) != 0) return -1;
        for (size_t b = 0; b < m; b++) {
            /* The status as Redis has it, so that a state this build does not name still
             * counts as what it is. */
            note_end(w, batch[b], cq_status_field(st[b], "status"),
                     cq_status_field(st[b], "error"));
            cq_status_free(st[b]);
        }
    }
    return 0;
}

/* "\r 42% 420/1000: 300 queued, 64 running, 3 retrying, 410 finished, 10 failed; 35.2 jobs/s,
 * ETA 16s" on one terminal line, redrawn in place ("..., 10 failed, 2 canceled, 1 unknown;
 * ..." once there are such). */
static void progress(const struct watch *w, long long since_ms)
{
    double secs = (double)(time_mono_ms() - since_ms) / 1000.0;
    size_t ended = w->finished + w->failed + w->canceled + w->gone;
    double rate = secs > 0 ? (double)ended / secs : 0.0;
    char eta[32] = "", canceled[32] = "", unknown[32] = "";

    if (rate > 0 && ended < w->n) snprintf(eta, sizeof eta, ", ETA %.0fs", (w->n - ended) / rate);
    if (w->canceled > 0) snprintf(canceled, sizeof canceled, ", %zu canceled", w->canceled);
    if (w->gone > 0) snprintf(unknown, sizeof unknown, ", %zu unknown", w->gone);
    fprintf(stderr,
            "\r%3.0f%% %zu/%zu: %zu queued, %zu running, %zu retrying, %zu finished, %zu failed%s%s"
            "; %.1f jobs/s%s   ",
            w->n ? 100.0 * (double)ended / (double)w->n : 100.0, ended, w->n, w->queued, w->running,
            w->retrying, w->finished, w->failed, canceled, unknown, rate, eta);
    fflush(stderr);
}

/* Returns the exit status of the run. */
static int wait_jobs(const struct config *c, const struct logger *lg, cq_client *cl,
                     char (*ids)[ID_MAX + 1], size_t n, long long t_start)
{
    struct watch w;
    int tty = isatty(STDERR_FILENO);
    long long t_wait = time_mono_ms();
    long long t_fail = 0;
    int shown = 0, rc = EXIT_OK;
    char err[512];

    memset(&w, 0, sizeof w);
    w.ids = ids;
    w.n = n;
    w.state = xcalloc(n ? n : 1, 1);
    for (;;) {
        if (poll_once(cl, &w, err, sizeof err) != 0) {
            /* A Redis restart should not lose a long wait: reconnect for a while. */
            if (!t_fail) {
                LOG(lg, CQ_LOG_WARN, "lost Redis while waiting: %s; reconnecting", err);
                t_fail = time_mono_ms();
            } else if (time_mono_ms() - t_fail > REDIS_RETRY_S * 1000LL) {
                if (shown) fputc('\n', stderr);
                fprintf(stderr, PROG ": %s\n", err);
                rc = EXIT_RUNTIME;
                goto out;
            }
            sleep_ms(1000);
            continue;
        }
        t_fail = 0;
        if (tty) {
            progress(&w, t_wait);
            shown = 1;
        }
        if (w.finished + w.failed + w.canceled + w.gone == n) break;
        if (stopping ||
            (c->wait_timeout > 0 &&
             time_mono_ms() - t_wait > (long long)(c->wait_timeout * 1000))) {
            break;
        }
        sleep_ms(POLL_MS);
    }
    if (shown) fputc('\n', stderr);

    size_t open = n - w.finished - w.failed - w.canceled - w.gone;
    printf("Took %.2fs\n", (double)(time_mono_ms() - t_start) / 1000.0);
    printf("%zu jobs: %zu finished, %zu failed", n, w.finished, w.failed);
    if (w.canceled) printf(", %zu canceled", w.canceled);
    if (w.gone) printf(", %zu unknown", w.gone);
    if (open) printf(", %zu not ended", open);
    printf("\n");
    cli_stdout_push(); /* its reason, for the flush at the end */
    for (size_t i = 0; i < w.failed && i < SHOW_FAILED; i++)
        fprintf(stderr, PROG ": job %s failed: %s\n", ids[w.failed_idx[i]], w.errors[i]);
    if (w.failed > SHOW_FAILED)
        fprintf(stderr, PROG ": ... and %zu more failed jobs\n", w.failed - SHOW_FAILED);
    if (w.failed)
        fprintf(stderr,
                PROG ": to run the failed jobs again: cqctl requeue --all-failed --queue %s\n",
                c->queue);
    if (w.gone) jobwait_say_gone(PROG, w.gone);
    if (open) {
        fprintf(stderr,
                PROG ": %s with %zu jobs not ended: they stay queued and run when a worker takes "
                     "them (cqctl info shows them)\n",
                stopping ? "interrupted" : "--wait-timeout reached", open);
    }
    if (w.failed || w.canceled || w.gone || open) rc = EXIT_RUNTIME;
    LOG(lg, CQ_LOG_INFO, "waited %.2fs for %zu jobs", (double)(time_mono_ms() - t_wait) / 1000.0,
        n);
out:
    for (size_t i = 0; i < w.failed && i < SHOW_FAILED; i++) free(w.errors[i]);
    free(w.state);
    return rc;
}

/* ---- --mode: download here ----------------------------------------------------------- */

/* The root must be a directory we can write in, and ROOT/DIR one download_link takes, before
 * the API is asked, so that a typo fails before spending credits; as with cworker, the root
 * is made if missing. Returns 0 or an exit status. */
static int open_root(const struct config *c)
{
    const char *root = c->download_root ? c->download_root : ".";
    char err[1024];

    if (download_check_root(root, err, sizeof err) != 0) {
        fprintf(stderr, PROG ": --download-root: %s\n", err);
        return EXIT_RUNTIME;
    }
    /* ROOT/DIR too, as far as it exists: a DIR that is a symlink (the user's own, to put the
     * images elsewhere) is refused by every download_link, which follows none; said once
     * here, where it failed every link, one line each. */
    if (download_check_target(root, c->dir, err, sizeof err) != 0) {
        fprintf(stderr, PROG ": --dir: %s\n", err);
        return EXIT_RUNTIME;
    }
    return 0;
}

/* Download the links here; prints the time and the summary. Returns the exit status. */
static int run_local(const struct config *c, const struct logger *lg,
                     const struct gallery_links *links, long long t_start)
{
    struct local_opts o;
    struct local_summary sum;

    memset(&o, 0, sizeof o);
    o.mode = c->mode;
    o.jobs = c->jobs ? c->jobs : LOCAL_JOBS_DEFAULT;
    o.prog = PROG;
    o.root = c->download_root ? c->download_root : ".";
    o.dir = c->dir;
    o.limits = c->limits;
    o.progress = isatty(STDERR_FILENO);
    o.stop = &stopping;
    o.lg = lg;
    if (links->n == 0) LOG(lg, CQ_LOG_WARN, "no links matched: nothing to download");
    if (local_run(&o, (const char *const *)links->v, links->n, &sum) != 0) return EXIT_RUNTIME;
    printf("Took %.2fs\n", (double)(time_mono_ms() - t_start) / 1000.0);
    printf("downloaded %zu, failed %zu, %lld bytes", sum.downloaded, sum.failed, sum.bytes);
    if (sum.not_started) printf(", %zu not started", sum.not_started);
    printf("\n");
    cli_stdout_push(); /* its reason, for the flush at the end */
    if (sum.not_started)
        fprintf(stderr, PROG ": interrupted with %zu links not started\n", sum.not_started);
    return sum.failed || sum.not_started ? EXIT_RUNTIME : EXIT_OK;
}

/* ---- main ---------------------------------------------------------------------------- */

static void setup_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    /* One-shot: the first signal asks for a stop, the second one kills. */
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Connect to Redis, knowing download_link as cworker declares it. Returns 0, or an exit
 * status. */
static int open_redis(const struct config *c, cq_client **cl)
{
    char err[512];
    struct http_limits lim;

    /* A URL or prefix that cannot be used is refused before connecting. */
    if (cli_check_settings(c->url, c->prefix, err, sizeof err) != 0) return usage_error("%s", err);
    *cl = cq_client_new(c->url, c->prefix, err, sizeof err);
    if (*cl == NULL) {
        fprintf(stderr, PROG ": %s\n", err);
        return EXIT_RUNTIME;
    }
    http_limits_default(&lim);
    if (app_register(cq_client_registry(*cl), &lim) != 0) {
        fprintf(stderr, PROG ": %s\n", cq_registry_error(cq_client_registry(*cl)));
        return EXIT_RUNTIME;
    }
    return 0;
}

int main(int argc, char **argv)
{
    long long t_start = time_mono_ms();
    struct config c;
    struct logger logger = {PROG, CQ_LOG_WARN, 0, NULL};
    const struct logger *lg = &logger;
    struct gallery_links links;
    cq_client *cl = NULL;
    char(*ids)[ID_MAX + 1] = NULL;
    int rc;

    rc = parse_args(argc, argv, &c);
    if (rc >= 0) {
        dlopts_free(&c.dl);
        return rc;
    }
    logger.level = c.verbose >= 2 ? CQ_LOG_DEBUG : c.verbose == 1 ? CQ_LOG_INFO : CQ_LOG_WARN;
    setup_signals();
    rc = 0;
    if (c.local)
        rc = open_root(&c);
    else if (!c.dry_run)
        rc = open_redis(&c, &cl);
    if (rc != 0) {
        dlopts_free(&c.dl);
        return rc;
    }

    gallery_links_init(&links);
    rc = EXIT_RUNTIME;
    if (get_links(&c, lg, &links) != 0) goto out;
    if (c.local) {
        rc = run_local(&c, lg, &links, t_start);
        goto out;
    }
    if (c.dry_run) {
        for (size_t i = 0; i < links.n; i++) printf("%s\n", links.v[i]);
        rc = EXIT_OK;
        goto out;
    }
    if (links.n == 0) LOG(lg, CQ_LOG_WARN, "no links matched: nothing to enqueue");
    ids = xcalloc(links.n ? links.n : 1, sizeof *ids);
    if (enqueue(&c, lg, cl, &links, ids) != 0) goto out;
    printf("enqueued %zu jobs to queue %s\n", links.n, c.queue);
    /* A typo such as -q defualt would otherwise wait forever in silence. */
    if (links.n > 0) queue_warn(PROG, cl, c.queue);
    /* The line before the wait; where it cannot be written, there is no waiting for a summary
     * that could not be either. */
    if (cli_stdout_flush(PROG, "the result") != 0) goto out;
    rc = c.wait ? wait_jobs(&c, lg, cl, ids, links.n, t_start) : EXIT_OK;
out:
    /* stdout carries only the result (the links, "enqueued N jobs", the summary): one not
     * written whole fails the run, as cli.h says for every command (a full disk said with
     * its reason, a reader that left not told of), also after a run that failed otherwise. */
    if (cli_stdout_flush(PROG, c.dry_run ? "the links" : "the result") != 0 && rc == EXIT_OK)
        rc = EXIT_RUNTIME;
    free(ids);
    dlopts_free(&c.dl);
    gallery_links_free(&links);
    cq_client_free(cl);
    return rc;
}
