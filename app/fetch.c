/* fetch.c - cworker's transfers, all on one curl multi handle on one thread (see fetch.h).
 *
 * DESIGN. curl_easy_perform drives each easy handle through a multi handle of its own, and
 * libcurl keeps its caches per multi handle: connections, DNS answers, and (7.87 and later)
 * the parsed CA bundle of https (when no CA directory is set: http.c). With one
 * curl_easy_perform per executor, `cworker -c 64` kept 64 of each: over https 64 copies of
 * the system's CA bundle (about 0.9 MB and 40 ms of CPU each), and over plain http an
 * internal easy handle and the hash tables of each multi (about 7 KB a thread). One multi
 * handle keeps one of each, and connections are reused across executors, not only within
 * one.
 *
 * The multi handle belongs to the transfer thread alone; executors never call into it. An
 * executor puts a request (its easy handle, set up by http.c, and a condition variable, on its
 * own stack) on the pending list, wakes the thread with curl_multi_wakeup (which any thread
 * may call) and waits. The thread adds pending handles, runs curl_multi_perform, and for each
 * transfer that ended removes the handle, stores the result and signals its executor. The
 * callbacks of http.c (body, headers, network policy) run on the transfer thread, between
 * the executor's handing over and its wake-up, so the mutex orders them with both.
 *
 * The thread starts with the first transfer and runs until the process exits, like the
 * executors that might still wait on it (cworker never joins it; tests end it with
 * fetch_stop before curl_global_cleanup). While no transfer runs it sleeps in
 * curl_multi_poll, woken by curl_multi_wakeup.
 */
#include "fetch.h"

#include <pthread.h>
#include <stddef.h>

/* One transfer handed to the thread; it lives in the waiting executor's frame. */
struct request {
    CURL *easy;
    CURLcode rc;
    int done;            /* the thread has ended it (under mu) */
    pthread_cond_t cond; /* signalled when done */
    struct request *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct request *pending, **pending_tail = &pending; /* to add (under mu) */
static int stopping;                                       /* fetch_stop (under mu) */
static CURLM *multi;                                       /* the thread's */
static pthread_t thread;
static int running_thread; /* set by start(), cleared by fetch_stop() */
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Tell the executor of r that it is over. */
static void finish(struct request *r, CURLcode rc)
{
    pthread_mutex_lock(&mu);
    r->rc = rc;
    r->done = 1;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&mu);
}

/* Add what executors handed over since the last turn. Returns how many are in flight now,
 * or -1 when the thread is to end (fetch_stop, nothing in flight). */
static int add_pending(int in_flight, long *most)
{
    struct request *r;

    pthread_mutex_lock(&mu);
    r = pending;
    pending = NULL;
    pending_tail = &pending;
    if (r == NULL && in_flight == 0 && stopping) {
        pthread_mutex_unlock(&mu);
        return -1;
    }
    pthread_mutex_unlock(&mu);
    while (r != NULL) {
        struct request *next = r->next;

        curl_easy_setopt(r->easy, CURLOPT_PRIVATE, (void *)r);
        if (curl_multi_add_handle(multi, r->easy) != CURLM_OK) {
            finish(r, CURLE_OUT_OF_MEMORY);
        } else if (++in_flight > *most) {
            /* Keep as many idle connections as transfers ever ran at once, as the executors
             * each kept theirs; libcurl's default follows the handles added right now, which
             * drops to nothing between bursts. */
            *most = in_flight;
            curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, *most);
        }
        r = next;
    }
    return in_flight;
}

/* End the transfers libcurl has finished. Returns how many are still in flight. */
static int reap(int in_flight)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
        struct request *r = NULL;
        CURL *e = msg->easy_handle;
        CURLcode rc = msg->data.result;

        if (msg->msg != CURLMSG_DONE) continue;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
        curl_multi_remove_handle(multi, e); /* msg is gone from here on */
        in_flight--;
        finish(r, rc);
    }
    return in_flight;
}

static void *fetch_main(void *arg)
{
    int in_flight = 0, still = 0;
    long most = 0;

    (void)arg;
    for (;;) {
        in_flight = add_pending(in_flight, &most);
        if (in_flight < 0) break;
        /* An error here is libcurl out of memory; the transfers themselves fail (and are
         * reaped) on their own, so there is nothing to do but go on. */
        curl_multi_perform(multi, &still);
        in_flight = reap(in_flight);
        curl_multi_poll(multi, NULL, 0, in_flight > 0 ? 1000 : 60000, NULL);
    }
    return NULL;
}

static void start(void)
{
    multi = curl_multi_init();
    if (multi == NULL) return;
    if (pthread_create(&thread, NULL, fetch_main, NULL) == 0) {
        running_thread = 1;
    } else {
        curl_multi_cleanup(multi);
        multi = NULL;
    }
}

/* fetch_stop before any transfer: the thread is never started. */
static void start_nothing(void)
{
}

void fetch_stop(void)
{
    pthread_once(&once, start_nothing);
    if (!running_thread) return;
    pthread_mutex_lock(&mu);
    stopping = 1;
    pthread_mutex_unlock(&mu);
    curl_multi_wakeup(multi);
    pthread_join(thread, NULL);
    running_thread = 0;
    curl_multi_cleanup(multi);
    multi = NULL;
}

CURLcode fetch_perform(struct http *h)
{
    struct request r;

    pthread_once(&once, start);
    if (!running_thread) return http_perform(h);
    r.easy = http_curl(h);
    r.rc = CURLE_OK;
    r.done = 0;
    r.next = NULL;
    pthread_cond_init(&r.cond, NULL);
    pthread_mutex_lock(&mu);
    *pending_tail = &r;
    pending_tail = &r.next;
    pthread_mutex_unlock(&mu);
    curl_multi_wakeup(multi);
    pthread_mutex_lock(&mu);
    while (!r.done) pthread_cond_wait(&r.cond, &mu);
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&r.cond);
    return r.rc;
}
