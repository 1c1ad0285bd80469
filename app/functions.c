/* functions.c - download_link as a registered function (see functions.h).
 *
 * A download holds no worker thread while its bytes come: the handler prepares the file and
 * the request on an executor (download_begin), hands the transfer to one of cworker's
 * transfer threads (fetch.h, whose multi handles hold the connections, DNS answers and CA
 * store that every transfer shares) and defers its job (cq_job_defer). The transfer's end
 * resumes the job, and download_end (fsync, link, rename: nothing that may block a transfer
 * thread) runs on an executor again. So `cworker -c 64` runs 64 downloads on a few executor
 * threads, not 64, and the worker's memory is that of its transfers.
 *
 * Each download in flight has a curl handle of its own, taken from a pool that keeps every
 * handle made (as many as downloads ever ran at once, -c at most) for the next download: its
 * connection settings and buffers are reused, as each executor's own handle was.
 */
#include "functions.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "declare.h"
#include "download.h"
#include "fetch.h"
#include "util.h"

static struct http_limits limits; /* set once by app_register, read-only afterwards */

/* The curl handles of no download now. They stay until the process exits, as the transfer
 * threads do. */
static struct {
    pthread_mutex_t mu;
    struct http **free;
    int nfree, cap;
} pool = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};

static struct http *handle_get(char *err, size_t errlen)
{
    struct http *h = NULL;

    pthread_mutex_lock(&pool.mu);
    if (pool.nfree > 0) h = pool.free[--pool.nfree];
    pthread_mutex_unlock(&pool.mu);
    return h != NULL ? h : http_new(err, errlen);
}

static void handle_put(struct http *h)
{
    pthread_mutex_lock(&pool.mu);
    if (pool.nfree == pool.cap) {
        pool.cap = pool.cap ? pool.cap * 2 : 16;
        pool.free = xrealloc(pool.free, sizeof *pool.free * (size_t)pool.cap);
    }
    pool.free[pool.nfree++] = h;
    pthread_mutex_unlock(&pool.mu);
}

/* One download between its handler and its end. */
struct transfer {
    cq_job *job;
    struct http *h;
    struct download d;
    CURLcode rc;
};

/* The job's outcome from the transfer's end (on an executor), and the handle back. */
static int end_download(cq_job *job, void *arg)
{
    struct transfer *x = arg;
    struct download_result res;
    char err[1024], *line;
    int rc;

    memset(&res, 0, sizeof res);
    rc = download_end(&x->d, x->h, x->rc, &res, err, sizeof err);
    handle_put(x->h);
    free(x);
    if (rc != 0)
        return cq_job_fail(job,
                           res.host            ? CQ_HOST
                               : res.transient ? CQ_TRANSIENT
                                               : CQ_PERMANENT,
                           res.retry_after, "%s", err);
    line = xstrdup_printf("%s (%lld bytes)", res.path, res.bytes);
    cq_job_result(job, line);
    free(line);
    download_result_free(&res);
    return 0;
}

/* On the transfer thread, as the transfer goes: whether its job was canceled or its worker
 * is stopping, or its deadline passed (cq_job_stopping may be read from any thread). A
 * deadline's stop is named a timeout; libcurl's own timeout, set at the start to the time
 * left, may end the transfer first. */
static enum http_stop transfer_stopping(void *arg)
{
    const cq_job *job = arg;
    double deadline;

    if (!cq_job_stopping(job)) return HTTP_GO_ON;
    deadline = cq_job_deadline(job);
    return deadline > 0 && time_now() >= deadline ? HTTP_TIMED_OUT : HTTP_STOP;
}

/* On the transfer thread: the job goes back to an executor for its end. */
static void transfer_done(CURLcode rc, void *arg)
{
    struct transfer *x = arg;

    x->rc = rc;
    cq_job_resume(x->job, end_download, x);
}

static int fn_download_link(cq_job *job, void *udata)
{
    const char *dir = cq_job_arg_string(job, 0), *link = cq_job_arg_string(job, 1);
    struct http_limits lim = limits;
    struct transfer *x;
    double deadline = cq_job_deadline(job);
    char err[1024];

    (void)udata;
    if (dir == NULL || link == NULL)
        return cq_job_fail(job, CQ_PERMANENT, 0,
                           "download_link: directory and link must be strings");
    if (deadline > 0) {
        lim.timeout = deadline - time_now();
        if (lim.timeout < 0.001) lim.timeout = 0.001;
    }
    x = xcalloc(1, sizeof *x);
    x->job = job;
    x->h = handle_get(err, sizeof err);
    if (x->h == NULL) {
        free(x);
        return cq_job_fail(job, CQ_TRANSIENT, 0, "download_link: cannot set up a transfer: %s",
                           err);
    }
    if (download_begin(&x->d, x->h, cq_job_root(job), dir, link, &lim, err, sizeof err) != 0) {
        int host = x->d.host;

        handle_put(x->h);
        free(x);
        return cq_job_fail(job, host ? CQ_HOST : CQ_PERMANENT, 0, "%s", err);
    }
    http_set_stop(x->h, transfer_stopping, job);
    if (fetch_start(x->h, transfer_done, x) == 0) return cq_job_defer(job);
    x->rc = http_perform(x->h); /* no transfer thread: on this one */
    return end_download(job, x);
}

int app_register(cq_registry *reg, const struct http_limits *lim)
{
    cq_function *f;

    limits = *lim;
    f = app_declare_download_link(reg, fn_download_link, NULL);
    return f == NULL ? -1 : 0;
}
