/* fetch.c - cworker's transfers, on a few curl multi handles each on a thread (see fetch.h).
 *
 * DESIGN. curl_easy_perform drives each easy handle through a multi handle of its own, and
 * libcurl keeps its caches per multi handle: connections, DNS answers, and (7.87 and later)
 * the parsed CA bundle of https (when no CA directory is set: http.c). With one
 * curl_easy_perform per executor, `cworker -c 64` kept 64 of each: over https 64 copies of
 * the system's CA bundle (about 0.9 MB and 40 ms of CPU each), and over plain http an
 * internal easy handle and the hash tables of each multi (about 7 KB a thread). A transfer
 * thread per CPU, each with one multi handle, keeps that many, and connections are reused
 * across the executors that a thread serves, not only within one. One thread for all would
 * keep one of each, but would put every transfer's reads, writes and TLS on one core: three
 * 200 MB downloads over loopback took 18% longer so than on three executors.
 *
 * A multi handle belongs to its transfer thread alone; executors never call into it. An
 * executor picks a thread in turn, puts a request (the easy handle, set up by http.c, and
 * how to tell its end) on that thread's pending list and wakes it with curl_multi_wakeup
 * (which any thread may call). The thread adds pending handles, runs curl_multi_perform, and
 * for each transfer that ended removes the handle and calls the request's done
 * (download_link's job is deferred meanwhile, and the executors run other jobs). The
 * callbacks of http.c (body, headers, network policy, the stop check, which reads the job)
 * run on the transfer thread, between the handing over and the end, so the thread's mutex
 * (and, for a deferred job, the worker's) orders them with both.
 *
 * The threads start with the first transfer and run until the process exits: a transfer
 * may still run for a job that a stopping worker left behind (cworker never joins them;
 * tests end them with fetch_stop before curl_global_cleanup). While no transfer runs a thread
 * sleeps in curl_multi_poll, woken by curl_multi_wakeup; while transfers run it wakes at
 * least every FETCH_STOP_CHECK_MS, so that libcurl asks each transfer's stop check (a
 * canceled job's download ends within that, though its server sends nothing).
 */
#include "fetch.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util.h"

#define LOOPS_MAX 64 /* transfer threads at most, whatever the CPUs */

/* One transfer handed to a thread, allocated until its done has run. */
struct request {
    struct http *h;
    CURL *easy;
    void (*done_fn)(CURLcode rc, void *arg);
    void *arg;
    struct request *next;
};

/* A transfer thread and what it owns. */
struct loop {
    pthread_mutex_t mu;
    struct request *pending, **pending_tail; /* to add (under mu) */
    int stopping;                            /* fetch_stop (under mu) */
    CURLM *multi;                            /* the thread's */
    pthread_t thread;
};

static struct loop *loops;
static int nloops; /* threads running: set by start(), cleared by fetch_stop() */
static unsigned next_loop;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Tell r's owner that it is over. */
static void finish(struct request *r, CURLcode rc)
{
    r->done_fn(rc, r->arg);
    free(r);
}

/* Add what executors handed over since the last turn. Returns how many are in flight now,
 * or -1 when the thread is to end (fetch_stop, nothing in flight). */
static int add_pending(struct loop *l, int in_flight, long *most)
{
    struct request *r;
    CURLMcode mc;

    pthread_mutex_lock(&l->mu);
    r = l->pending;
    l->pending = NULL;
    l->pending_tail = &l->pending;
    if (r == NULL && in_flight == 0 && l->stopping) {
        pthread_mutex_unlock(&l->mu);
        return -1;
    }
    pthread_mutex_unlock(&l->mu);
    while (r != NULL) {
        struct request *next = r->next;

        curl_easy_setopt(r->easy, CURLOPT_PRIVATE, (void *)r);
        mc = curl_multi_add_handle(l->multi, r->easy);
        if (mc != CURLM_OK) {
            /* Said as libcurl says it, where every refusal was 'Out of memory'. */
            char why[CURL_ERROR_SIZE];

            snprintf(why, sizeof why, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
            http_set_error(r->h, why);
            finish(r, mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT);
        } else if (++in_flight > *most) {
            /* Keep as many idle connections as transfers ever ran at once, as the executors
             * each kept theirs; libcurl's default follows the handles added right now, which
             * drops to nothing between bursts. */
            *most = in_flight;
            curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, *most);
        }
        r = next;
    }
    return in_flight;
}

/* End the transfers libcurl has finished. Returns how many are still in flight. */
static int reap(struct loop *l, int in_flight)
{
    CURLMsg *msg;
    int left;

    for (;;) {
        struct request *r = NULL;
        CURL *e;
        CURLcode rc;

        msg = curl_multi_info_read(l->multi, &left);
        if (msg == NULL) break;
        if (msg->msg != CURLMSG_DONE) continue;
        e = msg->easy_handle;
        rc = msg->data.result;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
        curl_multi_remove_handle(l->multi, e); /* msg is gone from here on */
        in_flight--;
        finish(r, rc);
    }
    return in_flight;
}

static void *loop_main(void *arg)
{
    struct loop *l = arg;
    int in_flight = 0, still = 0;
    long most = 0;

    thread_name("cq-fetch");
    for (;;) {
        in_flight = add_pending(l, in_flight, &most);
        if (in_flight < 0) break;
        /* An error here is libcurl out of memory; the transfers themselves fail (and are
         * reaped) on their own, so there is nothing to do but go on. */
        curl_multi_perform(l->multi, &still);
        in_flight = reap(l, in_flight);
        if (in_flight == 0) {
            int stopping;

            /* fetch_stop's wake-up may have ended an earlier poll, while transfers ran: the
             * last one's end must not be followed by a poll of a minute. */
            pthread_mutex_lock(&l->mu);
            stopping = l->stopping;
            pthread_mutex_unlock(&l->mu);
            if (stopping) continue;
        }
        curl_multi_poll(l->multi, NULL, 0, in_flight > 0 ? FETCH_STOP_CHECK_MS : 60000, NULL);
    }
    return NULL;
}

/* One transfer thread per CPU this process may use; as many as start (none: fetch_start
 * returns -1). */
static void start(void)
{
    int cpus = cpus_usable();
    int want = cpus > LOOPS_MAX ? LOOPS_MAX : cpus;

    loops = xcalloc((size_t)want, sizeof *loops);
    while (nloops < want) {
        struct loop *l = &loops[nloops];

        pthread_mutex_init(&l->mu, NULL);
        l->pending_tail = &l->pending;
        l->multi = curl_multi_init();
        if (l->multi == NULL || pthread_create(&l->thread, NULL, loop_main, l) != 0) {
            curl_multi_cleanup(l->multi); /* NULL is fine */
            pthread_mutex_destroy(&l->mu);
            break;
        }
        nloops++;
    }
}

int fetch_start(struct http *h, void (*done)(CURLcode rc, void *arg), void *arg)
{
    struct request *r;
    struct loop *l;

    pthread_once(&once, start);
    if (nloops == 0) return -1;
    r = xcalloc(1, sizeof *r);
    r->h = h;
    r->easy = http_curl(h);
    r->done_fn = done;
    r->arg = arg;
    l = &loops[__atomic_fetch_add(&next_loop, 1, __ATOMIC_RELAXED) % (unsigned)nloops];
    pthread_mutex_lock(&l->mu);
    *l->pending_tail = r;
    l->pending_tail = &r->next;
    pthread_mutex_unlock(&l->mu);
    curl_multi_wakeup(l->multi);
    return 0;
}

int fetch_threads(void)
{
    pthread_once(&once, start);
    return nloops;
}

/* fetch_stop before any transfer: the threads are never started. */
static void start_nothing(void)
{
}

void fetch_stop(void)
{
    pthread_once(&once, start_nothing);
    for (int i = 0; i < nloops; i++) {
        pthread_mutex_lock(&loops[i].mu);
        loops[i].stopping = 1;
        pthread_mutex_unlock(&loops[i].mu);
        curl_multi_wakeup(loops[i].multi);
    }
    for (int i = 0; i < nloops; i++) {
        pthread_join(loops[i].thread, NULL);
        curl_multi_cleanup(loops[i].multi);
        pthread_mutex_destroy(&loops[i].mu);
    }
    nloops = 0;
    free(loops);
    loops = NULL;
}
