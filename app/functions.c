/* functions.c - download_link as a registered function (see functions.h).
 *
 * Each worker thread gets its own HTTP handle the first time it runs a download (thread
 * hooks), so a worker that only runs other functions never makes one. The handler prepares
 * the file and the request on its own thread, but the transfer runs on cworker's one
 * transfer thread (fetch.h), whose multi handle holds the connections, DNS answers and CA
 * store that every thread's transfers share.
 */
#include "functions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "declare.h"
#include "download.h"
#include "fetch.h"
#include "util.h"

static struct http_limits limits; /* set once by app_register, read-only afterwards */

static void *thread_init(void *udata, char *err, size_t errlen)
{
    (void)udata;
    return http_new(err, errlen);
}

static void thread_free(void *state, void *udata)
{
    (void)udata;
    http_free(state);
}

static int fn_download_link(cq_job *job, void *udata)
{
    const char *dir = cq_job_arg_string(job, 0), *link = cq_job_arg_string(job, 1);
    struct http_limits lim = limits;
    struct http *h = cq_job_thread_state(job);
    struct download d;
    struct download_result res;
    int rc;
    double deadline = cq_job_deadline(job);
    char err[1024], *line;

    (void)udata;
    if (dir == NULL || link == NULL)
        return cq_job_fail(job, CQ_PERMANENT, 0,
                           "download_link: directory and link must be strings");
    if (deadline > 0) {
        lim.timeout = deadline - time_now();
        if (lim.timeout < 0.001) lim.timeout = 0.001;
    }
    memset(&res, 0, sizeof res);
    if (download_begin(&d, h, cq_job_root(job), dir, link, &lim, err, sizeof err) != 0) {
        res.host = d.host;
        rc = -1;
    } else {
        rc = download_end(&d, h, fetch_perform(h), &res, err, sizeof err);
    }
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

int app_register(cq_registry *reg, const struct http_limits *lim)
{
    cq_function *f;

    limits = *lim;
    f = app_declare_download_link(reg, fn_download_link, NULL);
    if (f == NULL) return -1;
    cq_function_set_thread_hooks(f, thread_init, thread_free);
    return 0;
}
