/* cenqueue.c - enqueue any registered function from a shell or a script.
 *
 *   cenqueue [options] FUNC [ARG...]    one job; prints its id
 *   cenqueue [options] --stdin          one job a line ("FUNC ARG..."), pipelined in batches
 *
 * Every job is checked against the function registry before anything is sent, so a typo in
 * a function name or a wrong number of args never reaches a queue.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "job.h"
#include "keys.h"
#include "queue.h"
#include "rconn.h"
#include "registry.h"
#include "util.h"

#define BATCH 10000

struct opts {
    const char *url, *prefix, *queue, *id;
    int retries;
    double timeout, at;
    int use_stdin, quiet;
};

static void usage(FILE *f)
{
    size_t n, i;
    const struct registry_entry *e = registry_all(&n);

    fprintf(f,
"Usage: cenqueue [OPTIONS] FUNC [ARG...]\n"
"       cenqueue [OPTIONS] --stdin\n"
"\n"
"Enqueue a job that calls the registered function FUNC with the string ARGs, and print its\n"
"id. With --stdin, read one job a line (FUNC ARG..., separated by spaces or tabs; \"double\n"
"quotes\" keep spaces, with \\\" and \\\\ inside them; blank lines and lines starting with #\n"
"are skipped) and enqueue them in pipelined batches of %d, printing one id a line.\n"
"\n"
"Options:\n"
"  -u, --url URL        Redis URL, redis://[[user]:pass@]host[:port][/db] or\n"
"                       unix:///path.sock[?db=N] (default: $CQ_REDIS_URL, else\n"
"                       redis://127.0.0.1:6379)\n"
"  -q, --queue NAME     queue to add to (default: default)\n"
"      --prefix P       key prefix (default: $CQ_PREFIX, else \"cq:\")\n"
"      --id ID          use this job id instead of a new UUID (not with --stdin)\n"
"      --retries N      retries after a transient failure (default: the function's)\n"
"      --timeout D      time limit of one attempt (default: the function's)\n"
"      --in D           run no sooner than D from now (e.g. 30s, 5m)\n"
"      --at T           run no sooner than Unix time T\n"
"      --stdin          read jobs from standard input\n"
"      --quiet          do not print job ids\n"
"  -h, --help           print this help and exit\n"
"  -V, --version        print the version and exit\n"
"\n"
"Functions:\n", BATCH);
    for (i = 0; i < n; i++) fprintf(f, "  %-28s %s\n", e[i].usage, e[i].summary);
    fprintf(f,
"\n"
"Exit status: 0 when every job was enqueued; 1 when Redis failed (the ids printed are those\n"
"of the jobs that were enqueued; jobs go in transactions of 1,000); 2 for a usage error or\n"
"a job the registry refuses (nothing from that line on is enqueued).\n");
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

static struct job *make_job(const struct opts *o, const char *func, char **args, int nargs,
                            char *err, size_t errlen)
{
    cJSON *arr;
    struct job *j;
    int i;

    if (registry_check(func, nargs, err, errlen) != 0) return NULL;
    arr = cJSON_CreateArray();
    for (i = 0; i < nargs; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(args[i]));
    j = job_new(func, arr);
    if (o->id != NULL) str_copy(j->id, sizeof j->id, o->id);
    str_copy(j->queue, sizeof j->queue, o->queue);
    j->retries = o->retries;
    j->timeout = o->timeout;
    return j;
}

/* Print the ids of the jobs that are in Redis; returns how many there are. */
static long print_ids(const struct opts *o, struct job **jobs, size_t n)
{
    size_t i;
    long k = 0;

    for (i = 0; i < n; i++) {
        if (!jobs[i]->enqueued) continue;
        k++;
        if (!o->quiet) printf("%s\n", jobs[i]->id);
    }
    return k;
}

static void free_jobs(struct job **jobs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) job_free(jobs[i]);
}

static int run_stdin(const struct opts *o, struct rconn *r, const struct keys *k)
{
    struct job *jobs[BATCH];
    char *line = NULL, *fields[256], err[512];
    size_t cap = 0, n = 0;
    long lineno = 0, total = 0;
    long long last = time_mono_ms();
    int progress = isatty(STDERR_FILENO);
    ssize_t len;

    while ((len = getline(&line, &cap, stdin)) != -1) {
        int nf;
        lineno++;
        nf = split_fields(line, fields, 256);
        if (nf == 0 || fields[0][0] == '#') continue;
        if (nf < 0 || nf > 256) {
            fprintf(stderr, "cenqueue: stdin line %ld: %s\n", lineno,
                    nf < 0 ? "unterminated quote" : "more than 255 args");
            goto fail2;
        }
        jobs[n] = make_job(o, fields[0], fields + 1, nf - 1, err, sizeof err);
        if (jobs[n] == NULL) {
            fprintf(stderr, "cenqueue: stdin line %ld: %s\n", lineno, err);
            goto fail2;
        }
        if (++n == BATCH) {
            if (queue_enqueue(r, k, jobs, n, o->at, err, sizeof err) != 0) goto fail1;
            print_ids(o, jobs, n);
            free_jobs(jobs, n);
            total += (long)n;
            n = 0;
            if (progress && time_mono_ms() - last > 200) {
                fprintf(stderr, "\rcenqueue: %ld jobs enqueued", total);
                last = time_mono_ms();
            }
        }
    }
    if (n > 0 && queue_enqueue(r, k, jobs, n, o->at, err, sizeof err) != 0) goto fail1;
    print_ids(o, jobs, n);
    free_jobs(jobs, n);
    total += (long)n;
    free(line);
    if (progress) fprintf(stderr, "\r");
    fprintf(stderr, "cenqueue: %ld job%s enqueued to queue %s\n", total, total == 1 ? "" : "s",
            o->queue);
    return 0;
fail1:
    /* Chunks of a batch are separate transactions: some may be in Redis. Their ids are
     * printed, and counted, so that a rerun can skip them. */
    total += print_ids(o, jobs, n);
    fprintf(stderr, "cenqueue: %s (%ld jobs were enqueued in all, their ids printed; the "
            "rest of the input was not)\n", err, total);
    free_jobs(jobs, n);
    free(line);
    return 1;
fail2:
    fprintf(stderr, "cenqueue: nothing from line %ld on was enqueued (%ld jobs were before)\n",
            lineno, total);
    free_jobs(jobs, n);
    free(line);
    return 2;
}

static int bad(const char *opt, const char *val)
{
    fprintf(stderr, "cenqueue: invalid value '%s' for %s (see cenqueue --help)\n", val, opt);
    return 2;
}

int main(int argc, char **argv)
{
    enum { O_PREFIX = 256, O_ID, O_RETRIES, O_TIMEOUT, O_IN, O_AT, O_STDIN, O_QUIET };
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},
        {"queue", required_argument, NULL, 'q'},
        {"prefix", required_argument, NULL, O_PREFIX},
        {"id", required_argument, NULL, O_ID},
        {"retries", required_argument, NULL, O_RETRIES},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"in", required_argument, NULL, O_IN},
        {"at", required_argument, NULL, O_AT},
        {"stdin", no_argument, NULL, O_STDIN},
        {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct opts o;
    struct rconn_url url;
    struct rconn r;
    struct keys k;
    char err[512];
    double d;
    long v;
    int c, rc;

    memset(&o, 0, sizeof o);
    o.queue = "default";
    o.retries = -1;
    /* "+" stops at the first non-option, so job args may start with '-'. */
    while ((c = getopt_long(argc, argv, "+u:q:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'u': o.url = optarg; break;
        case 'q': o.queue = optarg; break;
        case O_PREFIX: o.prefix = optarg; break;
        case O_ID: o.id = optarg; break;
        case O_RETRIES:
            if (parse_long(optarg, 0, 1000, &v) != 0) return bad("--retries", optarg);
            o.retries = (int)v;
            break;
        case O_TIMEOUT:
            if (parse_duration(optarg, &o.timeout) != 0 || o.timeout <= 0)
                return bad("--timeout", optarg);
            break;
        case O_IN:
            if (parse_duration(optarg, &d) != 0) return bad("--in", optarg);
            o.at = time_now() + d;
            break;
        case O_AT:
            if (parse_duration(optarg, &d) != 0) return bad("--at", optarg);
            o.at = d;
            break;
        case O_STDIN: o.use_stdin = 1; break;
        case O_QUIET: o.quiet = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("cenqueue %s\n", CQ_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!keys_valid_name(o.queue)) {
        fprintf(stderr, "cenqueue: queue '%s': use 1-%d characters of A-Z a-z 0-9 _ . @ -\n",
                o.queue, KEYS_NAME_MAX);
        return 2;
    }
    if (o.id != NULL && (!keys_valid_name(o.id) || o.use_stdin)) {
        fprintf(stderr, "cenqueue: --id '%s': %s\n", o.id,
                o.use_stdin ? "not with --stdin" : "use 1-128 characters of A-Z a-z 0-9 _ . @ -");
        return 2;
    }
    if (o.use_stdin == (optind < argc)) {
        fprintf(stderr, "cenqueue: give either FUNC [ARG...] or --stdin (see cenqueue --help)\n");
        return 2;
    }
    if (keys_init(&k, keys_default_prefix(o.prefix), err, sizeof err) != 0 ||
        rconn_parse_url(rconn_default_url(o.url), &url, err, sizeof err) != 0) {
        fprintf(stderr, "cenqueue: %s\n", err);
        return 2;
    }
    if (!o.use_stdin) {
        struct job *j = make_job(&o, argv[optind], argv + optind + 1, argc - optind - 1, err,
                                 sizeof err);
        if (j == NULL) {
            fprintf(stderr, "cenqueue: %s\n", err);
            return 2;
        }
        rconn_init(&r, &url, 5.0);
        if (rconn_connect(&r) != 0) {
            fprintf(stderr, "cenqueue: %s\n", r.errstr);
            job_free(j);
            return 1;
        }
        rc = queue_enqueue(&r, &k, &j, 1, o.at, err, sizeof err);
        if (rc != 0) fprintf(stderr, "cenqueue: %s\n", err);
        else print_ids(&o, &j, 1);
        job_free(j);
        rconn_close(&r);
        return rc == 0 ? 0 : 1;
    }
    rconn_init(&r, &url, 5.0);
    if (rconn_connect(&r) != 0) {
        fprintf(stderr, "cenqueue: %s\n", r.errstr);
        return 1;
    }
    rc = run_stdin(&o, &r, &k);
    rconn_close(&r);
    return rc;
}
