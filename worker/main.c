/* main.c - cworker: parse options, set up signals, run the worker. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "keys.h"
#include "log.h"
#include "registry.h"
#include "rconn.h"
#include "util.h"
#include "worker.h"

static volatile sig_atomic_t signals_seen;

static void on_signal(int sig)
{
    (void)sig;
    if (signals_seen < 2) signals_seen++;
}

static void usage(FILE *f)
{
    fprintf(f,
"Usage: cworker [OPTIONS] [QUEUE...]\n"
"\n"
"Take jobs from the Redis lists of the QUEUEs (default: \"default\") and run them through\n"
"the function registry. With several queues, a queue is served only while those before it\n"
"are empty (strict priority: cworker high default low).\n"
"\n"
"Options:\n"
"  -u, --url URL            Redis URL, redis://[[user]:pass@]host[:port][/db] or\n"
"                           unix:///path.sock[?db=N] (default: $CQ_REDIS_URL, else\n"
"                           redis://127.0.0.1:6379)\n"
"      --prefix P           key prefix (default: $CQ_PREFIX, else \"cq:\")\n"
"  -c, --concurrency N      jobs run at once, each on its own thread (default 16)\n"
"  -b, --burst              exit 0 once the queues are empty and no job is running\n"
"                           (jobs scheduled for later, retries included, stay for\n"
"                           other workers, as with rq worker --burst)\n"
"      --max-jobs N         exit 0 after taking N jobs and finishing them\n"
"      --shutdown-timeout D on SIGTERM/SIGINT, time running jobs get to finish before they\n"
"                           go back to their queues (default 25s); a second signal puts\n"
"                           them back at once\n"
"      --download-root DIR  download_link writes only below DIR (default: the working\n"
"                           directory); created if missing\n"
"      --max-size SIZE      largest download, e.g. 50M (default 50M)\n"
"      --connect-timeout D  HTTP connect timeout (default 10s)\n"
"      --retry-base D       delay before the first retry, doubled for each further one,\n"
"                           with jitter (default 1s; capped at 1h)\n"
"      --result-ttl SECS    keep a finished job's status this long (default 500; 0 = drop\n"
"                           at once; -1 = keep)\n"
"      --failure-ttl SECS   keep a failed job's status this long (default 31536000, a year)\n"
"      --log-level LEVEL    error, warn, info or debug (default info)\n"
"      --list-functions     print the function registry and exit\n"
"  -h, --help               print this help and exit\n"
"  -V, --version            print the version and exit\n"
"\n"
"Durations take a unit: 250ms, 30s, 5m, 2h (a bare number is seconds).\n"
"Exit status: 0 after a clean stop (signal, --burst, --max-jobs); 1 when the worker could\n"
"not start (Redis unreachable, bad download root, no threads), or could not deregister when\n"
"it stopped (its unfinished jobs then return to their queues when its lease expires); 2 for\n"
"a usage error.\n");
}

static int bad(const char *opt, const char *val)
{
    fprintf(stderr, "cworker: invalid value '%s' for %s (see cworker --help)\n", val, opt);
    return 2;
}

int main(int argc, char **argv)
{
    enum { O_PREFIX = 256, O_MAX_JOBS, O_SHUTDOWN, O_ROOT, O_MAX_SIZE, O_CONNECT, O_RETRY_BASE,
           O_RESULT_TTL, O_FAILURE_TTL, O_LOG_LEVEL, O_LIST };
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"prefix", required_argument, NULL, O_PREFIX},
        {"concurrency", required_argument, NULL, 'c'},
        {"burst", no_argument, NULL, 'b'},
        {"max-jobs", required_argument, NULL, O_MAX_JOBS},
        {"shutdown-timeout", required_argument, NULL, O_SHUTDOWN},
        {"download-root", required_argument, NULL, O_ROOT},
        {"max-size", required_argument, NULL, O_MAX_SIZE},
        {"connect-timeout", required_argument, NULL, O_CONNECT},
        {"retry-base", required_argument, NULL, O_RETRY_BASE},
        {"result-ttl", required_argument, NULL, O_RESULT_TTL},
        {"failure-ttl", required_argument, NULL, O_FAILURE_TTL},
        {"log-level", required_argument, NULL, O_LOG_LEVEL},
        {"list-functions", no_argument, NULL, O_LIST},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    static const char *const default_queues[] = {"default"};
    struct worker_config cfg;
    struct sigaction sa;
    const char *root = ".";
    char rootbuf[PATH_MAX], err[256];
    long v;
    int c;

    memset(&cfg, 0, sizeof cfg);
    cfg.concurrency = 16;
    cfg.shutdown_timeout = 25.0;
    cfg.retry_base = 1.0;
    cfg.ttls.result_ttl = 500;
    cfg.ttls.failure_ttl = 365L * 24 * 3600;
    cfg.log_level = LOG_INFO;
    http_limits_default(&cfg.limits);

    while ((c = getopt_long(argc, argv, "u:c:bhV", opts, NULL)) != -1) {
        switch (c) {
        case 'u': cfg.url = optarg; break;
        case O_PREFIX: cfg.prefix = optarg; break;
        case 'c':
            if (parse_long(optarg, 1, 4096, &v) != 0) return bad("--concurrency", optarg);
            cfg.concurrency = (int)v;
            break;
        case 'b': cfg.burst = 1; break;
        case O_MAX_JOBS:
            if (parse_long(optarg, 1, LONG_MAX, &cfg.max_jobs) != 0)
                return bad("--max-jobs", optarg);
            break;
        case O_SHUTDOWN:
            if (parse_duration(optarg, &cfg.shutdown_timeout) != 0)
                return bad("--shutdown-timeout", optarg);
            break;
        case O_ROOT: root = optarg; break;
        case O_MAX_SIZE:
            if (parse_size(optarg, &cfg.limits.max_bytes) != 0) return bad("--max-size", optarg);
            break;
        case O_CONNECT:
            if (parse_duration(optarg, &cfg.limits.connect_timeout) != 0)
                return bad("--connect-timeout", optarg);
            break;
        case O_RETRY_BASE:
            if (parse_duration(optarg, &cfg.retry_base) != 0) return bad("--retry-base", optarg);
            break;
        case O_RESULT_TTL:
            if (parse_long(optarg, -1, LONG_MAX, &cfg.ttls.result_ttl) != 0)
                return bad("--result-ttl", optarg);
            break;
        case O_FAILURE_TTL:
            if (parse_long(optarg, -1, LONG_MAX, &cfg.ttls.failure_ttl) != 0)
                return bad("--failure-ttl", optarg);
            break;
        case O_LOG_LEVEL:
            if (strcmp(optarg, "error") == 0) cfg.log_level = LOG_ERROR;
            else if (strcmp(optarg, "warn") == 0) cfg.log_level = LOG_WARN;
            else if (strcmp(optarg, "info") == 0) cfg.log_level = LOG_INFO;
            else if (strcmp(optarg, "debug") == 0) cfg.log_level = LOG_DEBUG;
            else return bad("--log-level", optarg);
            break;
        case O_LIST: registry_print(stdout); return 0;
        case 'h': usage(stdout); return 0;
        case 'V': printf("cworker %s\n", CQ_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        int i;
        for (i = optind; i < argc; i++) {
            if (!keys_valid_name(argv[i])) {
                fprintf(stderr, "cworker: queue '%s': use 1-%d characters of A-Z a-z 0-9 _ . @ -\n",
                        argv[i], KEYS_NAME_MAX);
                return 2;
            }
        }
        cfg.queues = (const char *const *)&argv[optind];
        cfg.nqueues = (size_t)(argc - optind);
    } else {
        cfg.queues = default_queues;
        cfg.nqueues = 1;
    }
    cfg.url = rconn_default_url(cfg.url);
    cfg.prefix = keys_default_prefix(cfg.prefix);

    if (mkdir(root, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "cworker: --download-root '%s': %s\n", root, strerror(errno));
        return 1;
    }
    if (realpath(root, rootbuf) == NULL) {
        fprintf(stderr, "cworker: --download-root '%s': %s\n", root, strerror(errno));
        return 1;
    }
    cfg.download_root = rootbuf;

    if (http_global_init(err, sizeof err) != 0) {
        fprintf(stderr, "cworker: %s\n", err);
        return 1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    return worker_run(&cfg, &signals_seen);
}
