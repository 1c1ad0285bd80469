/* local.h - cproducer's local modes: download the links on this machine, without Redis.
 *
 * The lesson's four ways of running download_link over a list of links, each calling the
 * same download_link code as cworker does, with the limits the caller gives (cproducer gives
 * cworker's: its default deny list, --content image, and the same options, dlopts.h):
 *   sequential  one link after another (the lesson's single.py);
 *   threads     `jobs` threads taking link indexes from a thread-safe queue (DownloadWorker);
 *   processes   `jobs` forked children taking link indexes from a pipe (Pool(8).map);
 *   async       one thread, up to `jobs` transfers in flight on a curl multi handle
 *               (download_begin / download_end around curl_multi_*).
 *
 * Every failed link is reported on stderr as one line "<prog>: <error>" as soon as it is
 * known, and does not stop the run. With `progress` set a progress line is kept up to date
 * on stderr with '\r'. Nothing is printed on stdout: the caller prints the summary.
 */
#ifndef CQ_LOCAL_H
#define CQ_LOCAL_H

#include <signal.h>
#include <stddef.h>

#include "http.h"
#include "log.h"
#include "util.h"

#define LOCAL_JOBS_MAX     256 /* each job holds a socket and two fds: stay under 1024 */
#define LOCAL_JOBS_DEFAULT 8   /* the lesson's 8 threads, 8 processes */

enum local_mode { LOCAL_SEQUENTIAL, LOCAL_THREADS, LOCAL_PROCESSES, LOCAL_ASYNC };

struct local_opts {
    enum local_mode mode;
    int jobs;                  /* 1..LOCAL_JOBS_MAX; sequential ignores it */
    const char *prog;          /* prefix of every line on stderr */
    const char *root;          /* download root: an existing directory */
    const char *dir;           /* directory argument of every download_link */
    struct http_limits limits; /* its policy must outlive the run */
    int progress;              /* 1: a progress line on stderr */
    const stop_flag *stop;     /* set by a signal: finish what runs, start nothing */
    const struct logger *lg;   /* -v: the plan; -vv: every link downloaded */
};

struct local_summary {
    size_t total;       /* links given */
    size_t downloaded;  /* on disk under their final name */
    size_t failed;      /* reported on stderr */
    size_t not_started; /* left alone because of a stop */
    long long bytes;    /* body bytes of the downloaded files */
};

/* "sequential", "threads", "processes" or "async". Returns 0, or -1 for anything else. */
int local_mode_parse(const char *s, enum local_mode *mode);
const char *local_mode_name(enum local_mode mode);

/* Download every link into o->root/o->dir. Returns 0 when the run took place (sum says how
 * it went; failed links are counted there, not returned), or -1 when it could not start (no
 * curl handle, no thread, no pipe, no child process: a line on stderr says which), in which
 * case nothing was downloaded. */
int local_run(const struct local_opts *o, const char *const *links, size_t n,
              struct local_summary *sum);

#endif
