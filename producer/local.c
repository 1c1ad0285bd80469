/* local.c - cproducer --mode sequential|threads|processes|async: the lesson's comparison,
 * run on this machine without Redis.
 *
 * DESIGN. Every mode downloads with download.c's own steps, so the four differ only in how
 * they drive them: sequential, threads and processes call download_link() with one struct
 * http per thread or process; async calls download_begin() and download_end() (the two
 * halves of download_link) around a curl multi handle, with one struct http per transfer in
 * flight. A result, wherever it comes from, goes through note(), which counts it, prints a
 * failure at once and redraws the progress line; a mutex makes that safe for the threads.
 *
 * threads: as the lesson's DownloadWorker, the workers are started first and then fed link
 * indexes through a queue (a mutex, a condition variable and an array); closing the queue
 * after the last index lets them end once it is empty, and the main thread joins them.
 *
 * processes: the children are forked after get_links, so each has the links in its copy of
 * memory and only indexes travel. The parent writes 4-byte indexes into a pipe that every
 * child reads; a write of at most PIPE_BUF bytes is atomic, and since only whole indexes are
 * ever written the pipe holds whole indexes, so a read of 4 bytes takes exactly one, and a
 * child that is done early simply takes the next (better balance than i, i+N, ...). Each
 * child sends one message per link (index, outcome, bytes, error text; at most PIPE_BUF
 * bytes, so the messages of two children never interleave) back through a second pipe, and
 * the parent prints and counts. The parent polls both pipes, so neither side can fill a pipe
 * and wait for the other. A child creates its struct http after the fork: a curl handle must
 * not be shared across processes.
 *
 * Stopping (SIGINT/SIGTERM, seen through o->stop): no new link is started, the transfers
 * running are finished, and the links never tried are counted as not started. Children
 * cannot see the parent's flag, so the parent forwards the stop with SIGUSR1 (which means
 * "drain" and nothing else, so a Ctrl-C that reached the children too is not counted twice;
 * the children are forked with it blocked until their handler is in, so that it never kills
 * one); a second SIGINT or SIGTERM kills a child at once, as it does the parent, and a child dies
 * with its parent (PR_SET_PDEATHSIG) rather than download for no one.
 */
#include "local.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "download.h"
#include "util.h"

#define DRAW_MS     100 /* progress redraws at most this often */
#define POLL_MS     100 /* how soon a stop is noticed while waiting on transfers */
#define INDEX_BATCH 256 /* indexes per write to the work pipe: 1 KiB, under PIPE_BUF */

/* ---- results ------------------------------------------------------------------------- */

struct run {
    const struct local_opts *o;
    const char *const *links;
    size_t n;
    struct local_summary *sum;
    unsigned char *ended; /* per link: 1 once its outcome was noted */
    pthread_mutex_t mu;   /* guards sum, ended and the progress line */
    long long t0;         /* when the downloads started, for the rate */
    long long drawn_at;
    size_t drawn_len; /* length of the progress line on screen; 0 when none */
};

static int stopped(const struct run *r)
{
    return stop_requested(r->o->stop);
}

/* Called with mu held. */
static void draw(struct run *r, int force)
{
    char line[160];
    long long now = time_mono_ms();
    double secs = (double)(now - r->t0) / 1000.0;
    size_t ended = r->sum->downloaded + r->sum->failed;
    int w;

    if (!r->o->progress || (!force && now - r->drawn_at < DRAW_MS)) return;
    w = snprintf(line, sizeof line, "%zu done, %zu failed, %zu total, %.1f links/s",
                 r->sum->downloaded, r->sum->failed, r->n, secs > 0 ? (double)ended / secs : 0.0);
    if (w < 0) return;
    /* Pad over the end of a longer previous line. */
    fprintf(stderr, "\r%-*s", (int)r->drawn_len, line);
    fflush(stderr);
    if ((size_t)w > r->drawn_len) r->drawn_len = (size_t)w;
    r->drawn_at = now;
}

/* Called with mu held: blank the progress line so that a message starts on a clean one. */
static void undraw(struct run *r)
{
    if (r->drawn_len > 0) {
        fprintf(stderr, "\r%*s\r", (int)r->drawn_len, "");
        r->drawn_len = 0;
        r->drawn_at = 0;
    }
}

/* The outcome of link i: ok with bytes, or a failure with its one-line error. */
static void note(struct run *r, size_t i, int ok, long long bytes, const char *err)
{
    pthread_mutex_lock(&r->mu);
    if (i < r->n && !r->ended[i]) {
        r->ended[i] = 1;
        if (ok) {
            r->sum->downloaded++;
            r->sum->bytes += bytes;
            LOG(r->o->lg, CQ_LOG_DEBUG, "downloaded %s (%lld bytes)", r->links[i], bytes);
        } else {
            r->sum->failed++;
            undraw(r);
            fprintf(stderr, "%s: %s\n", r->o->prog, err);
        }
        draw(r, 0);
    }
    pthread_mutex_unlock(&r->mu);
}

static void note_download(struct run *r, size_t i, int rc, struct download_result *res,
                          const char *err)
{
    note(r, i, rc == 0, res->bytes, err);
    download_result_free(res);
}

/* Links that never got an outcome: not started after a stop, failed otherwise (a child
 * process that died, say), so that every link is accounted for. */
static void account_rest(struct run *r, const char *why)
{
    char err[1024];

    for (size_t i = 0; i < r->n; i++) {
        if (r->ended[i]) continue;
        if (stopped(r)) {
            r->ended[i] = 1;
            r->sum->not_started++;
        } else {
            err_set(err, sizeof err, "download_link: %s: not downloaded: %s", r->links[i], why);
            note(r, i, 0, 0, err);
        }
    }
}

/* ---- sequential ---------------------------------------------------------------------- */

static int run_sequential(struct run *r)
{
    const struct local_opts *o = r->o;
    struct download_result res;
    char err[1024];
    struct http *h = http_new(err, sizeof err);

    if (h == NULL) {
        fprintf(stderr, "%s: %s\n", o->prog, err);
        return -1;
    }
    for (size_t i = 0; i < r->n && !stopped(r); i++) {
        int rc = download_link(h, o->root, o->dir, r->links[i], &o->limits, &res, err, sizeof err);

        note_download(r, i, rc, &res, err);
    }
    http_free(h);
    account_rest(r, "interrupted");
    return 0;
}

/* ---- threads ------------------------------------------------------------------------- */

/* The lesson's Queue: put, get (blocking while empty) and, instead of daemon threads and
 * queue.join(), close: get returns -1 once the queue is closed and empty. */
struct work_queue {
    pthread_mutex_t mu;
    pthread_cond_t nonempty;
    size_t *items;
    size_t head, tail, cap;
    int closed;
};

static void work_put(struct work_queue *q, size_t item)
{
    pthread_mutex_lock(&q->mu);
    if (q->tail == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 64;
        q->items = xrealloc(q->items, q->cap * sizeof *q->items);
    }
    q->items[q->tail++] = item;
    pthread_cond_signal(&q->nonempty);
    pthread_mutex_unlock(&q->mu);
}

static void work_close(struct work_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->nonempty);
    pthread_mutex_unlock(&q->mu);
}

static int work_get(struct work_queue *q, size_t *item)
{
    int rc = -1;

    pthread_mutex_lock(&q->mu);
    while (q->head == q->tail && !q->closed) pthread_cond_wait(&q->nonempty, &q->mu);
    if (q->head < q->tail) {
        *item = q->items[q->head++];
        rc = 0;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

struct worker {
    struct run *r;
    struct work_queue *q;
    struct http *h;
    pthread_t tid;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    const struct local_opts *o = w->r->o;
    struct download_result res;
    char err[1024];
    size_t i;

    thread_name("cq-download");
    while (!stopped(w->r) && work_get(w->q, &i) == 0) {
        int rc =
            download_link(w->h, o->root, o->dir, w->r->links[i], &o->limits, &res, err, sizeof err);

        note_download(w->r, i, rc, &res, err);
    }
    return NULL;
}

static int run_threads(struct run *r, int jobs)
{
    struct work_queue q;
    struct worker *w = xcalloc((size_t)jobs, sizeof *w);
    char err[256];
    int started = 0, rc = 0;

    memset(&q, 0, sizeof q);
    pthread_mutex_init(&q.mu, NULL);
    pthread_cond_init(&q.nonempty, NULL);
    /* The handles first: a failure here leaves nothing running to undo. */
    for (int k = 0; k < jobs; k++) {
        w[k].r = r;
        w[k].q = &q;
        w[k].h = http_new(err, sizeof err);
        if (w[k].h == NULL) {
            fprintf(stderr, "%s: %s\n", r->o->prog, err);
            rc = -1;
            goto out;
        }
    }
    for (; started < jobs; started++) {
        int e = pthread_create(&w[started].tid, NULL, worker_main, &w[started]);

        if (e != 0) {
            fprintf(stderr, "%s: pthread_create: %s\n", r->o->prog, strerror(e));
            break;
        }
    }
    if (started == 0) {
        rc = -1;
        goto out;
    }
    if (started < jobs)
        LOG(r->o->lg, CQ_LOG_WARN, "threads: going on with %d of %d workers", started, jobs);
    for (size_t i = 0; i < r->n; i++) work_put(&q, i);
    work_close(&q);
    for (int k = 0; k < started; k++) pthread_join(w[k].tid, NULL);
    account_rest(r, "interrupted");
out:
    for (int k = 0; k < jobs; k++) http_free(w[k].h);
    free(w);
    free(q.items);
    pthread_cond_destroy(&q.nonempty);
    pthread_mutex_destroy(&q.mu);
    return rc;
}

/* ---- processes ----------------------------------------------------------------------- */

/* One result message from a child; `len` bytes of error text follow (none when ok). */
struct msg_head {
    uint32_t index;
    uint32_t ok;
    int64_t bytes;
    uint32_t len;
};

#define MSG_TEXT_MAX (PIPE_BUF - sizeof(struct msg_head))

/* Only a child process runs these handlers; the flag lives here, not in the run, because a
 * signal handler can reach nothing else. */
static volatile sig_atomic_t child_stop;

static void on_child_signal(int sig)
{
    (void)sig;
    child_stop = 1;
}

static void child_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_child_signal;
    /* No SA_RESTART: a read() waiting for an index returns EINTR, so the stop is seen. */
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_flags = SA_RESETHAND; /* the second SIGINT/SIGTERM kills, as in the parent */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* SIGUSR1 blocked (SIG_BLOCK, the mask before it into old) or unblocked (SIG_UNBLOCK) in
 * this thread. The parent forks its children with it blocked, so that its stop, sent to a
 * child not yet past child_signals(), waits there rather than kill it (SIGUSR1's default
 * action); the child unblocks it once its handler is in, the parent puts its mask back once
 * every child is forked. */
static void mask_usr1(int how, sigset_t *old)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(how, &set, old);
}

/* Read one index. Returns 1, 0 at EOF, -1 when interrupted (look at child_stop) or broken. */
static int read_index(int fd, uint32_t *index)
{
    unsigned char buf[sizeof *index];
    size_t got = 0;

    while (got < sizeof buf) {
        ssize_t k = read(fd, buf + got, sizeof buf - got);

        if (k == 0) return 0;
        if (k < 0) {
            /* Only a signal before any byte came is a reason to look up; the writer never
             * leaves part of an index, so the rest is already there. */
            if (errno == EINTR && got == 0) return -1;
            if (errno == EINTR) continue;
            return -1;
        }
        got += (size_t)k;
    }
    memcpy(index, buf, sizeof *index);
    return 1;
}

static int send_result(int fd, uint32_t index, int ok, long long bytes, const char *err)
{
    char buf[PIPE_BUF];
    struct msg_head m;
    size_t len = ok ? 0 : strlen(err);

    if (len > MSG_TEXT_MAX) len = MSG_TEXT_MAX;
    memset(&m, 0, sizeof m); /* the padding goes down the pipe too */
    m.index = index;
    m.ok = ok != 0;
    m.bytes = bytes;
    m.len = (uint32_t)len;
    memcpy(buf, &m, sizeof m);
    memcpy(buf + sizeof m, err, len);
    for (;;) {
        ssize_t w = write(fd, buf, sizeof m + len);

        if (w >= 0) return w == (ssize_t)(sizeof m + len) ? 0 : -1;
        if (errno != EINTR) return -1;
    }
}

/* The body of a child: take indexes until the pipe ends or a stop. Returns the exit status. */
static int child_main(struct run *r, int workfd, int resfd, pid_t parent)
{
    const struct local_opts *o = r->o;
    struct download_result res;
    char err[1024];
    struct http *h;
    uint32_t i;
    int status = 0;

    child_signals();
    mask_usr1(SIG_UNBLOCK, NULL); /* a stop the parent sent meanwhile comes now */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* the parent died before prctl took effect */
        return 1;
    h = http_new(err, sizeof err);
    if (h == NULL) {
        fprintf(stderr, "%s: %s\n", o->prog, err);
        return 1;
    }
    /* stopped(r) too: a signal that came between the fork and child_signals() went to the
     * parent's handler, whose flag this copy of memory also has. */
    while (!child_stop && !stopped(r)) {
        int got = read_index(workfd, &i);

        if (got == 0) break;
        if (got < 0) {
            if (errno == EINTR) continue;
            status = 1;
            break;
        }
        /* A stop that came while waiting: this index stays not started. */
        if (child_stop || stopped(r) || i >= r->n) break;
        int rc = download_link(h, o->root, o->dir, r->links[i], &o->limits, &res, err, sizeof err);
        download_result_free(&res);
        if (send_result(resfd, i, rc == 0, res.bytes, err) < 0) {
            status = 1; /* the parent is gone: nobody to download for */
            break;
        }
    }
    http_free(h);
    return status;
}

/* Parse the complete messages at the start of buf; returns the bytes consumed. */
static size_t take_messages(struct run *r, char *buf, size_t fill)
{
    size_t off = 0;

    while (fill - off >= sizeof(struct msg_head)) {
        struct msg_head m;
        char text[MSG_TEXT_MAX + 1];

        memcpy(&m, buf + off, sizeof m);
        if (m.len > MSG_TEXT_MAX) {
            /* Cannot happen with our children; drop the stream rather than misread it. */
            LOG(r->o->lg, CQ_LOG_ERROR, "processes: malformed result message");
            return fill;
        }
        if (fill - off < sizeof m + m.len) break;
        memcpy(text, buf + off + sizeof m, m.len);
        text[m.len] = '\0';
        note(r, m.index, m.ok != 0, m.bytes, text);
        off += sizeof m + m.len;
    }
    return off;
}

/* Write as many indexes as the pipe takes without blocking. Returns 0, or -1 when no child
 * reads any more (EPIPE) or on an error. */
static int feed(int fd, size_t *next, size_t n)
{
    uint32_t batch[INDEX_BATCH];

    while (*next < n) {
        size_t k = n - *next < INDEX_BATCH ? n - *next : INDEX_BATCH;
        ssize_t w;

        for (size_t j = 0; j < k; j++) batch[j] = (uint32_t)(*next + j);
        w = write(fd, batch, k * sizeof batch[0]);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN ? 0 : -1;
        }
        /* At most PIPE_BUF bytes: all or nothing, so w is the whole batch. */
        *next += (size_t)w / sizeof batch[0];
    }
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static int run_processes(struct run *r, int jobs)
{
    const char *prog = r->o->prog;
    pid_t pids[LOCAL_JOBS_MAX];
    int work[2] = {-1, -1}, results[2] = {-1, -1};
    int nkids = 0, dead = 0, drained = 0;
    size_t next = 0, fill = 0;
    char buf[2 * PIPE_BUF];
    pid_t self = getpid();
    sigset_t mask; /* the parent's, before SIGUSR1 is blocked for the forks */

    if (pipe2(work, O_CLOEXEC) < 0 || pipe2(results, O_CLOEXEC) < 0) {
        fprintf(stderr, "%s: pipe: %s\n", prog, strerror(errno));
        close_fd(&work[0]);
        close_fd(&work[1]);
        return -1;
    }
    /* Whatever stdio holds would otherwise be written again by every child. */
    fflush(NULL);
    mask_usr1(SIG_BLOCK, &mask);
    for (; nkids < jobs; nkids++) {
        pid_t pid = fork();

        if (pid < 0) {
            fprintf(stderr, "%s: fork: %s\n", prog, strerror(errno));
            break;
        }
        if (pid == 0) {
            int status;

            close(work[1]);
            close(results[0]);
            status = child_main(r, work[0], results[1], self);
            /* _exit: the parent's stdio buffers and atexit handlers are not ours to run. */
            _exit(status);
        }
        pids[nkids] = pid;
    }
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
    close_fd(&work[0]);
    close_fd(&results[1]);
    if (nkids == 0) {
        close_fd(&work[1]);
        close_fd(&results[0]);
        return -1;
    }
    if (nkids < jobs)
        LOG(r->o->lg, CQ_LOG_WARN, "processes: going on with %d of %d children", nkids, jobs);
    fcntl(work[1], F_SETFL, fcntl(work[1], F_GETFL) | O_NONBLOCK);
    fcntl(results[0], F_SETFL, fcntl(results[0], F_GETFL) | O_NONBLOCK);

    for (;;) {
        struct pollfd p[2];
        nfds_t np = 0;
        ssize_t k;

        if (stopped(r) && !drained) {
            /* Take nothing new: close the supply and tell the children to finish up. */
            drained = 1;
            close_fd(&work[1]);
            for (int c = 0; c < nkids; c++) kill(pids[c], SIGUSR1);
        }
        if (work[1] >= 0 && feed(work[1], &next, r->n) < 0)
            close_fd(&work[1]); /* EPIPE: every child is gone; results will say so */
        if (work[1] >= 0 && next == r->n)
            close_fd(&work[1]); /* all handed out: EOF tells the children to end */
        p[np].fd = results[0];
        p[np++].events = POLLIN;
        if (work[1] >= 0) {
            p[np].fd = work[1];
            p[np++].events = POLLOUT;
        }
        if (poll(p, np, POLL_MS) < 0 && errno != EINTR) {
            fprintf(stderr, "%s: poll: %s\n", prog, strerror(errno));
            break;
        }
        pthread_mutex_lock(&r->mu);
        draw(r, 0);
        pthread_mutex_unlock(&r->mu);
        k = read(results[0], buf + fill, sizeof buf - fill);
        if (k == 0) break; /* every child has closed its end: all have exited */
        if (k < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            fprintf(stderr, "%s: read: %s\n", prog, strerror(errno));
            break;
        }
        fill += (size_t)k;
        {
            size_t used = take_messages(r, buf, fill);

            memmove(buf, buf + used, fill - used);
            fill -= used;
        }
    }
    close_fd(&work[1]);
    close_fd(&results[0]);
    for (int c = 0; c < nkids; c++) {
        int st;

        while (waitpid(pids[c], &st, 0) < 0 && errno == EINTR)
            ;
        if (WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0)) {
            dead++;
            LOG(r->o->lg, CQ_LOG_WARN, "processes: child %ld ended with %s %d", (long)pids[c],
                WIFSIGNALED(st) ? "signal" : "status",
                WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        }
    }
    account_rest(r, dead ? "a worker process died" : "no worker process took it");
    return 0;
}

/* ---- async --------------------------------------------------------------------------- */

struct slot {
    struct http *h;
    struct download d;
    size_t index;
    int busy; /* its handle is in the multi handle */
};

/* Start link i in slot s. Returns 0 when it is in flight, -1 when it already failed (and
 * was noted). */
static int start_one(struct run *r, CURLM *m, struct slot *s, size_t i)
{
    const struct local_opts *o = r->o;
    struct download_result res;
    char err[1024];
    CURLMcode mc;

    if (download_begin(&s->d, s->h, o->root, o->dir, r->links[i], &o->limits, err, sizeof err) <
        0) {
        note(r, i, 0, 0, err);
        return -1;
    }
    s->index = i;
    s->busy = 1;
    /* After download_begin: setting up the transfer resets the handle's options. */
    curl_easy_setopt(http_curl(s->h), CURLOPT_PRIVATE, (void *)s);
    mc = curl_multi_add_handle(m, http_curl(s->h));
    if (mc != CURLM_OK) {
        s->busy = 0;
        download_end(&s->d, s->h, CURLE_FAILED_INIT, &res, err, sizeof err);
        err_set(err, sizeof err, "download_link: %s: curl_multi_add_handle: %s", r->links[i],
                curl_multi_strerror(mc));
        note(r, i, 0, 0, err);
        return -1;
    }
    return 0;
}

/* Collect the transfers libcurl has finished; their slots go back on the free stack. */
static void reap_done(struct run *r, CURLM *m, struct slot **free_slots, int *nfree)
{
    struct download_result res;
    char err[1024];
    CURLMsg *msg;
    int left;

    for (;;) {
        struct slot *s;
        char *priv = NULL;
        CURL *e;
        CURLcode rc;
        int ok;

        msg = curl_multi_info_read(m, &left);
        if (msg == NULL) break;
        if (msg->msg != CURLMSG_DONE) continue;
        /* msg does not survive curl_multi_remove_handle: copy what is needed first. */
        e = msg->easy_handle;
        rc = msg->data.result;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
        s = (struct slot *)priv;
        curl_multi_remove_handle(m, e);
        s->busy = 0;
        ok = download_end(&s->d, s->h, rc, &res, err, sizeof err) == 0;
        download_result_free(&res);
        note(r, s->index, ok, res.bytes, err);
        free_slots[(*nfree)++] = s;
    }
}

static int run_async(struct run *r, int jobs)
{
    struct slot *slots = xcalloc((size_t)jobs, sizeof *slots);
    struct slot **free_slots = xcalloc((size_t)jobs, sizeof *free_slots);
    int nfree = 0, rc = 0;
    size_t next = 0;
    char err[256];
    CURLM *m = curl_multi_init();

    if (m == NULL) {
        fprintf(stderr, "%s: curl_multi_init failed\n", r->o->prog);
        rc = -1;
        goto out;
    }
    for (int k = 0; k < jobs; k++) {
        slots[k].h = http_new(err, sizeof err);
        if (slots[k].h == NULL) {
            fprintf(stderr, "%s: %s\n", r->o->prog, err);
            rc = -1;
            goto out;
        }
        free_slots[nfree++] = &slots[k];
    }
    for (;;) {
        int running = 0;
        CURLMcode mc;

        while (nfree > 0 && next < r->n && !stopped(r)) {
            struct slot *s = free_slots[--nfree];

            if (start_one(r, m, s, next++) < 0) free_slots[nfree++] = s;
        }
        if (nfree == jobs) break; /* nothing in flight and nothing more to start */
        mc = curl_multi_perform(m, &running);
        if (mc != CURLM_OK) {
            /* Not a per-link failure: the multi handle itself is broken. End what is in
             * flight (each is reported) and leave the rest to account_rest. */
            fprintf(stderr, "%s: curl_multi_perform: %s\n", r->o->prog, curl_multi_strerror(mc));
            for (int k = 0; k < jobs; k++) {
                struct slot *s = &slots[k];
                struct download_result res;
                char msg[1024];

                if (!s->busy) continue;
                curl_multi_remove_handle(m, http_curl(s->h));
                s->busy = 0;
                download_end(&s->d, s->h, CURLE_ABORTED_BY_CALLBACK, &res, msg, sizeof msg);
                note(r, s->index, 0, 0, msg);
            }
            break;
        }
        reap_done(r, m, free_slots, &nfree);
        pthread_mutex_lock(&r->mu);
        draw(r, 0);
        pthread_mutex_unlock(&r->mu);
        /* Freed slots and links waiting: start them before sleeping. */
        if (nfree > 0 && next < r->n && !stopped(r)) continue;
        if (nfree < jobs) curl_multi_poll(m, NULL, 0, POLL_MS, NULL);
    }
    account_rest(r, "curl_multi_perform failed");
out:
    for (int k = 0; k < jobs; k++) http_free(slots[k].h);
    curl_multi_cleanup(m);
    free(free_slots);
    free(slots);
    return rc;
}

/* ---- entry --------------------------------------------------------------------------- */

static const char *const mode_names[] = {"sequential", "threads", "processes", "async"};

int local_mode_parse(const char *s, enum local_mode *mode)
{
    for (size_t i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++) {
        if (strcmp(s, mode_names[i]) == 0) {
            *mode = (enum local_mode)i;
            return 0;
        }
    }
    return -1;
}

const char *local_mode_name(enum local_mode mode)
{
    return (size_t)mode < sizeof mode_names / sizeof mode_names[0] ? mode_names[mode] : "?";
}

int local_run(const struct local_opts *o, const char *const *links, size_t n,
              struct local_summary *sum)
{
    struct run r;
    int jobs = o->jobs < 1 ? 1 : o->jobs > LOCAL_JOBS_MAX ? LOCAL_JOBS_MAX : o->jobs;
    int rc;

    memset(sum, 0, sizeof *sum);
    sum->total = n;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.links = links;
    r.n = n;
    r.sum = sum;
    r.ended = xcalloc(n ? n : 1, 1);
    pthread_mutex_init(&r.mu, NULL);
    /* More workers than links would only sit idle (and cost a fork each). */
    if ((size_t)jobs > n) jobs = n ? (int)n : 1;
    if (o->mode == LOCAL_SEQUENTIAL) jobs = 1;
    LOG(o->lg, CQ_LOG_INFO, "%s: %zu links, %d at a time, into %s/%s", local_mode_name(o->mode), n,
        jobs, o->root, o->dir);
    r.t0 = time_mono_ms();
    switch (o->mode) {
    case LOCAL_THREADS: rc = run_threads(&r, jobs); break;
    case LOCAL_PROCESSES: rc = run_processes(&r, jobs); break;
    case LOCAL_ASYNC: rc = run_async(&r, jobs); break;
    default: rc = run_sequential(&r); break;
    }
    pthread_mutex_lock(&r.mu);
    if (r.drawn_len > 0) {
        draw(&r, 1);
        fputc('\n', stderr);
    }
    pthread_mutex_unlock(&r.mu);
    pthread_mutex_destroy(&r.mu);
    free(r.ended);
    return rc;
}
