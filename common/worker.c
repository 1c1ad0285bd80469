/* worker.c - the cworker daemon.
 *
 * DESIGN. One process, three kinds of threads:
 *
 *   dispatcher (the main thread) owns the control connection to Redis and is the only thread
 *     that changes job state there: it takes records (queue_take_*, in priority order, up to
 *     the number of free slots), marks them started, hands them to executors, and applies
 *     their outcomes in batches (queue_apply_*). It also heartbeats, moves due scheduled jobs,
 *     and recovers the jobs of dead workers.
 *   executors each run one handler at a time, keeping per-thread state for the functions
 *     that ask for it (cq_function_set_thread_hooks). Up to -c N jobs run at once; the
 *     executors are two a CPU at the start and more, up to N, as jobs wait while every one
 *     is held by a call (wake_executors). A job its handler defers (cq_job_defer) holds no
 *     executor until cq_job_resume queues it again (task_resumed); download_link's do so
 *     while their transfers run. Executors never touch Redis, so a slow job never holds up
 *     bookkeeping.
 *   watchers (one per queue) each own a connection and, only while the dispatcher is idle,
 *     block on "BLMOVE q q RIGHT RIGHT" - a rotation that leaves the list as it was - purely to
 *     learn that the queue is no longer empty. The dispatcher then takes in priority order.
 *     Taking is never done by a blocked connection, so a connection that dies while blocked
 *     can never move a record anywhere (see docs/DESIGN.md, "Why watchers do not take").
 *
 * Handlers run in-process: a handler that crashes the process loses nothing, because every
 * job it held is in this worker's in-flight lists, which any live worker puts back once this
 * worker's lease expires.
 */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "audience.h"
#include "call.h"
#include "catalog.h"
#include "command.h"
#include "health.h"
#include "plugin.h"
#include "job.h"
#include "keys.h"
#include "log.h"
#include "rconn.h"
#include "registry.h"
#include "util.h"

#define TAKE_BATCH      256 /* most records taken in one round trip */
#define HEARTBEAT_MS    2000
#define RECOVER_MS      1000
#define SCHEDULE_MS     250
#define WATCH_TIMEOUT   1.0    /* seconds a watcher blocks before it looks around */
#define RETRY_CAP       3600.0 /* longest retry delay, seconds */
#define HANDOFF_MAX     600    /* hand-offs (HANDOFF_DELAY apart) before such a job fails */
#define HANDOFF_DELAY   1.0    /* seconds before a handed-back job is due again */
#define STOP_GRACE_MS   6000   /* how long an exiting worker waits for handlers it stopped */
#define HOST_DELAY      1.0    /* seconds before a job the host failed is due again */
#define BENCH_HOLD_MS   1000   /* no take this long after one that held only jobs it gives back */
#define REFUSED_HOLD_MS 1000   /* nor after a take Redis refused (an error reply) */
/* A job's start is recorded once it has run this long, or with its end if that comes first:
 * most jobs of a busy queue are short, and a start mark costs Redis a script's LPOS, HSET and
 * PERSIST. started_at is the real start either way. */
#define START_MARK_S    0.020
#define LOADING_POLL_MS 1000 /* at start, how often a Redis loading its data is asked again */

/* A job in this process: taken from Redis, run by an executor, then applied. */
struct task {
    struct taken taken;
    struct job *job;
    const struct cq_function *fn;
    /* filled by the executor */
    int rc;
    int transient;
    int host;                           /* this host failed it, not the job (CQ_HOST) */
    int give_back;                      /* a host failure that hands the job back, its
                                         * attempt not counted (decide) */
    int quiet;                          /* refused for a benched function: log at debug */
    int aborted;                        /* gave up because of a hard stop: goes back, not failed */
    int refused;                        /* never ran: kind was decided when it was taken */
    int lost;                           /* its end was dropped: another worker had recovered it */
    int overruled;                      /* its end was recorded canceled: cqctl cancel ended
                                         * the job after this worker took it */
    int superseded;                     /* taken again here (held_supersede): no start, no end */
    int counted;                        /* in w->held_ids (held_id_add) */
    unsigned held_hash;                 /* its job id's, for w->held_ids */
    int json;                           /* text is a JSON result */
    int cancel;                         /* cqctl cancel asked it to stop (atomic off dispatcher) */
    stop_flag stop;                     /* its handler should give up: a hard stop or cancel */
    struct task *held_prev, *held_next; /* every task this worker holds (dispatcher only) */
    int start_pending;            /* its start is not recorded in Redis yet (dispatcher only) */
    unsigned start_sent;          /* the round trip its start mark is in, 0: none */
    int ending;                   /* in the batch of ends being applied (dispatcher only) */
    double taken_at;              /* wall clock, set once when taken */
    unsigned long long seq;       /* take order, which is the in-flight list's (outcomes) */
    enum queue_outcome_kind kind; /* what it came to */
    double retry_after;
    double retry_at;       /* refused and handed back: when it is due again */
    double started, ended; /* wall clock */
    char *text;            /* result or error line */
    struct task *next;
    /* deferred (cq_job_defer): the call it keeps between its handler and its continuation */
    struct worker *w;
    struct cq_job *call; /* non-NULL from the first deferral until the job ends */
    int parked;          /* deferred, its handler has returned: cq_job_resume queues it */
    int resume_early;    /* cq_job_resume came before its handler returned (under mu) */
};

/* One round trip of the dispatcher, from trip_send to trip_read. */
struct trip {
    unsigned id;       /* its start marks carry it in start_sent */
    struct task *ends; /* the tasks whose outcomes it carries (no longer pending) */
    int frees;         /* how many of them free a slot once applied */
    size_t take_max;   /* the take it asked for, 0 for none */
    struct queue_outcome *o;
    struct task **ot; /* o[i]'s task, where o[i] is an end */
    unsigned char *lost;
    size_t n;
    int nrep;
    int ok; /* sent without an error */
    char err[512];
    /* its replies (trip_recv) */
    int received;
    int rok; /* applied without an error (the outcomes and start marks are recorded) */
    struct taken *tk;
    int taken; /* -1: the take failed (terr, where Redis answered with an error) */
    char terr[512];
    struct queue_take_notes notes;
};

struct watcher {
    struct worker *w;
    const char *queue;
    struct rconn rc;
    int blocking;        /* in BLMOVE now (under w->mu) */
    int sock;            /* dup of the blocked socket while blocking, else -1 */
    int started;         /* the thread runs (it is joined at the end) */
    long long client_id; /* Redis's CLIENT ID of rc, 0 unknown (under w->mu) */
    unsigned long id_of; /* the rc.connects it was asked on */
    pthread_t thread;
};

struct worker {
    const struct worker_config *cfg;
    struct logger lg;
    struct logger jlg; /* lg with a buffer: the dispatcher's line a job, one write a cycle */
    struct log_buf jbuf;
    struct keys keys;
    char wid[KEYS_NAME_MAX + 1];
    char host[256];
    char queues_csv[4096];
    char *functions; /* the names it serves, comma-separated (its hash's functions field) */
    struct {
        char func[REGISTRY_NAME_MAX + 1];
        char queue[KEYS_NAME_MAX + 1];
        int live;      /* live workers of queue that serve func */
        int elsewhere; /* live workers serving func on other queues only */
        long long at;  /* time_mono_ms of the answer */
    } live_cache[8];   /* catalog_live_on answers for functions it lacks, kept a second */
    double started_at;
    struct rconn ctl;

    pthread_mutex_t mu;
    pthread_cond_t wake;  /* dispatcher: a completion or a watcher fired */
    pthread_cond_t work;  /* executors: a task is waiting */
    pthread_cond_t watch; /* watchers: start or stop watching */
    struct task *todo, *todo_tail;
    long long todo_since; /* when tasks last went to todo, or a wake-up last ran */
    struct task *done;
    int watching;         /* dispatcher idle with free slots: watchers may block */
    int ready;            /* a watcher saw a record */
    int stopping;         /* threads exit */
    stop_flag hard_stop;  /* handlers give up now (atomic stores) */
    int running;          /* jobs begun and not ended, deferred ones too (under mu) */
    pthread_cond_t quiet; /* running dropped to 0 with nothing to do */

    pthread_t *executors;
    struct watcher *watchers;
    int idle_executors;     /* executors waiting for a task (under mu) */
    int dispatcher_waiting; /* the dispatcher sleeps on wake (under mu) */
    int ndone;              /* tasks in done (under mu) */
    int wake_done;          /* > 0: write efd once ndone reaches it (under mu; send_next) */
    int efd;                /* an eventfd the dispatcher polls with Redis's socket, or -1 */
    struct task **starts;   /* handed out, not yet marked started (dispatcher only) */
    int nstarts, capstarts;
    int outstanding;            /* taken and not yet applied (dispatcher only) */
    struct task *held;          /* every task taken and not yet freed (dispatcher only) */
    unsigned short *held_ids;   /* counts of the held tasks' job ids by hash (held_id_add) */
    unsigned held_mask;         /* held_ids has held_mask + 1 entries */
    unsigned long reconciled;   /* the ctl.connects the in-flight lists were last checked on */
    unsigned long trips_total;  /* round trips sent */
    unsigned long trips_second; /* of them, sent while the one ahead was unread */
    struct trip *unread;        /* sent behind the one being read (ctl_quiet) */
    char last_error[512];       /* the last Redis error reported, and when */
    long long last_error_at;
    /* At the first registration: its error is said in the start's one line (report_error
     * keeps it to itself). */
    int starting;
    long taken_total;
    unsigned long long next_seq; /* the next task's seq (dispatcher only) */

    /* the dispatcher's loop (dispatcher only) */
    volatile sig_atomic_t *signals;
    unsigned long long paused; /* bit i: queues[i] is paused (under mu: watchers read it) */
    long cancel_waiting;       /* jobs asked to stop, as the last take saw (dispatcher) */
    struct histogram *hist;    /* run times per function (reg->v[i]), to flush */
    struct task *pending;      /* ended or refused, outcome not yet applied */
    struct task *recorded, **recorded_tail; /* outcome applied, line not yet logged */
    long long next_hb, next_recover, next_sched, next_connect;
    long long down_since, drain_deadline;
    long backoff;                /* ms before the next reconnection attempt */
    int draining;                /* a first signal: take nothing new */
    int drain_noted;             /* said that the drain waits for Redis alone */
    int idle;                    /* the last take found the queues empty */
    int down;                    /* the control connection is lost */
    int executors_started;       /* made so far, up to -c, as jobs wait for one (under mu) */
    long long spawn_after;       /* time_mono_us before which no executor is made (under mu) */
    int spawn_warned;            /* one could not be made, and that was said (under mu) */
    long long executor_back;     /* time_mono_us an executor last ended a call (under mu) */
    int sync_inited;             /* mu and the condition variables exist */
    struct health *health;       /* functions benched for host failures (dispatcher only) */
    long long ctl_id;            /* CLIENT ID of ctl */
    unsigned long ctl_id_of;     /* the ctl.connects it was asked on, and last registered */
    unsigned long registered_on; /* the ctl.connects of the last registration that went in */
    int clients_refused;         /* Redis refuses CLIENT LIST: leases alone tell the dead */
    unsigned long grace_of;      /* the ctl.connects recovery last waited after (recovery_grace) */
    long long grace_since;       /* when the graces since the last recovery pass began (0: none) */
    int recovered_once;          /* a recovery pass has run: --burst exits only after one */
    long long loaded_at;         /* time_mono_ms this worker, started while Redis loaded its
                                  * data, found the load done (connect_at_start); 0: none */
    struct {
        char wid[KEYS_NAME_MAX + 1];
        int passes; /* recovery passes in a row that found its connections gone */
    } gone[32];
    int ngone;
    long long hold_until; /* time_mono_ms before which nothing is taken (refuse_benched) */
    struct {
        long long since; /* time_mono_ms the period began */
        long finished, failed, retried, canceled, host;
    } period;                          /* outcomes since the last summary line (dispatcher only) */
    long total_finished, total_failed; /* since the start: its hash's processed and failed */
};

/* ---- executors ---------------------------------------------------------------------- */

#define WAKE_AFTER_US 500 /* tasks waiting this long get another executor woken */
/* File descriptors the table is made for at the start: this many a job in flight (a download
 * holds its directory, its file and its connection), and FDS_OWN for the worker's own. */
#define FDS_PER_JOB 4
#define FDS_OWN     64

static void *executor_main(void *arg);
static void start_grace(struct worker *w, long long now);
static int stops_asked(const struct worker *w);
static void info_field(const char *info, const char *field, char *out, size_t outlen);

/* A seam for tests: how threads are made (tests/test_worker_start.c makes it fail). */
int (*worker_thread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
                            void *) = pthread_create;

/* Called with w->mu held: one more executor, unless -c are made or the worker stops. Where
 * one cannot be made, the worker goes on with those it has, says so once, and tries again a
 * second later. */
static void spawn_executor(struct worker *w, long long now)
{
    int n = w->executors_started;

    if (n >= w->cfg->concurrency || w->stopping || now < w->spawn_after) return;
    if (worker_thread_create(&w->executors[n], NULL, executor_main, w) != 0) {
        w->spawn_after = now + 1000000;
        if (!w->spawn_warned)
            LOG(&w->lg, CQ_LOG_WARN,
                "cannot start executor thread %d of %d (%s): running jobs on the %d there are "
                "(trying again each second); lower %s or raise the limits on threads "
                "(ulimit -u)",
                n + 1, w->cfg->concurrency, audience_pick("-c", "the concurrency setting"), n,
                audience_pick("-c", "it"));
        w->spawn_warned = 1;
        return;
    }
    w->executors_started++;
}

/* Called with w->mu held: if tasks have waited WAKE_AFTER_US, the executors awake are not
 * keeping up - wake as many more as there are tasks. Where none is idle and none has come
 * back for a task in that time either (each is held by a long or blocking handler), make
 * one more: jobs that block their threads get up to -c threads within milliseconds, one each
 * WAKE_AFTER_US, while short jobs and deferred ones (which give their thread back at once)
 * keep to the threads there are, two a CPU at the start. */
static void wake_executors(struct worker *w)
{
    struct task *t;
    long long now;
    int n = 0;

    if (w->todo == NULL) return;
    now = time_mono_us();
    if (now - w->todo_since < WAKE_AFTER_US) return;
    if (w->idle_executors == 0 && now - w->executor_back >= WAKE_AFTER_US) spawn_executor(w, now);
    for (t = w->todo; t && n < w->idle_executors; t = t->next) n++;
    while (n-- > 0) pthread_cond_signal(&w->work);
    w->todo_since = now;
}

/* Called with w->mu held: t joins the end of the executors' queue. */
static void todo_append(struct worker *w, struct task *t)
{
    t->next = NULL;
    if (w->todo_tail)
        w->todo_tail->next = t;
    else
        w->todo = t;
    w->todo_tail = t;
}

/* Called with w->mu held: t out of the executors' queue where it waits to start (not a
 * deferred job's continuation: its call is read only once t is found there, where no
 * executor writes it). 1 when it did. */
static int todo_remove_unstarted(struct worker *w, struct task *t)
{
    struct task **p, *prev = NULL;

    for (p = &w->todo; *p != NULL; prev = *p, p = &(*p)->next) {
        if (*p != t) continue;
        if (t->call != NULL) return 0;
        *p = t->next;
        if (w->todo_tail == t) w->todo_tail = prev;
        t->next = NULL;
        return 1;
    }
    return 0;
}

/* Called with w->mu held: t goes (back) to the executors, which are told. */
static void todo_push(struct worker *w, struct task *t)
{
    if (w->todo == NULL) w->todo_since = time_mono_us();
    todo_append(w, t);
    if (w->idle_executors > 0)
        pthread_cond_signal(&w->work);
    else if (w->dispatcher_waiting)
        pthread_cond_signal(&w->wake); /* to make an executor if none frees up */
}

/* cq_job_resume's end (any thread): the deferred task goes back to the executors, or, when
 * its handler has not returned yet, to the executor that runs it as soon as it has. */
static void task_resumed(void *owner)
{
    struct task *t = owner;
    struct worker *w = t->w;

    pthread_mutex_lock(&w->mu);
    if (t->parked) {
        t->parked = 0;
        todo_push(w, t);
    } else {
        t->resume_early = 1;
    }
    pthread_mutex_unlock(&w->mu);
}

/* Run t's handler, or the continuation its cq_job_resume named, on this executor. *cp is the
 * executor's own call (NULL when it gave its last one to a deferred job) and ct its thread
 * states, both reused from job to job; a deferred job keeps the call it ran in. Returns 1
 * when the job ended (its outcome in t), 0 when it was deferred. */
static int run_task(struct worker *w, struct cq_job **cp, struct call_thread *ct, struct task *t)
{
    double timeout = t->job->timeout > 0 ? t->job->timeout : t->fn->timeout;
    struct cq_job *c = t->call;

    if (c != NULL) {
        t->rc = call_continue(c, ct);
    } else if (stop_requested(&w->hard_stop)) {
        /* Taken but not started when the worker gave up: it goes back unrun. */
        t->started = t->ended = time_now();
        t->rc = -1;
        t->aborted = 1;
        t->text = xstrdup("not started: the worker is stopping");
        return 1;
    } else {
        if (*cp == NULL) *cp = xcalloc(1, sizeof **cp);
        c = *cp;
        c->requeue = task_resumed;
        c->owner = t;
        t->started = time_now();
        LOG(&w->lg, CQ_LOG_DEBUG, "%s: %s %s started (attempt %d)", t->taken.queue, t->job->func,
            t->job->id, t->job->attempts);
        t->rc = call_run(c, ct, t->job, t->fn, w->cfg->root, &t->stop, timeout, &w->lg);
    }
    if (t->rc == CALL_DEFERRED) {
        if (c == *cp) *cp = NULL;
        t->call = c;
        return 0;
    }
    t->ended = time_now();
    t->transient = c->transient;
    t->host = c->host;
    t->retry_after = c->retry_after;
    t->aborted = t->rc != 0 && stop_requested(&w->hard_stop) &&
        !__atomic_load_n(&t->cancel, __ATOMIC_RELAXED);
    t->json = t->rc == 0 && c->result_json;
    t->text = xstrdup(t->rc == 0 ? (c->result ? c->result : "") : c->error);
    call_end(c);
    if (c != *cp) { /* the job's own, from its deferral: the executor keeps it, or it goes */
        t->call = NULL;
        if (*cp == NULL) {
            *cp = c;
        } else {
            call_free(c);
        }
    }
    return 1;
}

static void *executor_main(void *arg)
{
    struct worker *w = arg;
    struct cq_job *c = NULL;
    struct call_thread ct;
    int ended;

    thread_name("cq-exec");
    call_thread_init(&ct, w->cfg->reg);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct task *t;
        /* At a stop, an executor stays while deferred jobs run: their continuations still
         * come, and each must run (a job's resources, its outcome). */
        while (w->todo == NULL && (!w->stopping || w->running > 0)) {
            w->idle_executors++;
            pthread_cond_wait(&w->work, &w->mu);
            w->idle_executors--;
        }
        if (w->todo == NULL) break;
        t = w->todo;
        w->todo = t->next;
        if (w->todo == NULL)
            w->todo_tail = NULL;
        else
            wake_executors(w);
        if (t->call == NULL) w->running++; /* not for a deferred job's continuation */
        pthread_mutex_unlock(&w->mu);

        ended = run_task(w, &c, &ct, t);

        pthread_mutex_lock(&w->mu);
        w->executor_back = time_mono_us();
        if (!ended) {
            if (t->resume_early) {
                t->resume_early = 0;
                todo_push(w, t);
            } else {
                t->parked = 1;
            }
            continue;
        }
        if (--w->running == 0 && w->todo == NULL) {
            pthread_cond_broadcast(&w->quiet);
            if (w->stopping) pthread_cond_broadcast(&w->work); /* the last one: all may go */
        }
        t->next = w->done;
        w->done = t;
        if (++w->ndone == w->wake_done && w->efd >= 0) {
            w->wake_done = 0;
            (void)eventfd_write(w->efd, 1);
        }
        /* One wake-up per batch of completions is enough: the dispatcher takes them all. */
        if (w->dispatcher_waiting && t->next == NULL) pthread_cond_signal(&w->wake);
    }
    pthread_mutex_unlock(&w->mu);
    call_thread_free(&ct);
    call_free(c);
    return NULL;
}

/* ---- watchers ----------------------------------------------------------------------- */

/* The CLIENT ID Redis gave connection r (0 when it cannot say): workers register theirs, so
 * that others can tell a dead worker by its connections being gone (find_gone). */
static long long client_id(struct rconn *r)
{
    redisReply *rep = rconn_commandf(r, "CLIENT ID");
    long long id = rep != NULL && rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;

    if (rep != NULL) freeReplyObject(rep);
    return id;
}

/* Connect wa's connection if it is not, and register its CLIENT ID once a connection. 0, or
 * -1 with wa->rc.errstr saying why: a connection lost while its id was asked is no
 * connection to block on (the next turn makes another). */
static int watcher_connect(struct watcher *wa)
{
    struct worker *w = wa->w;

    if (wa->rc.ctx == NULL && rconn_connect(&wa->rc) != 0) return -1;
    if (wa->id_of != wa->rc.connects) {
        long long id = client_id(&wa->rc);
        pthread_mutex_lock(&w->mu);
        wa->client_id = id;
        wa->id_of = wa->rc.connects;
        pthread_mutex_unlock(&w->mu);
    }
    return wa->rc.ctx != NULL ? 0 : -1;
}

/* Wait *backoff ms, then double it for the next time (up to 5 s), unless the worker stops
 * meanwhile (stop_watchers broadcasts watch). Called, and returns, with w->mu held. */
static void watcher_pause(struct worker *w, long *backoff)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts); /* watch's clock (init_sync) */
    ts.tv_sec += *backoff / 1000;
    ts.tv_nsec += (*backoff % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (!w->stopping && pthread_cond_timedwait(&w->watch, &w->mu, &ts) == 0)
        ; /* woken for another reason (a pause, watching on or off): wait on */
    *backoff = *backoff * 2 > 5000 ? 5000 : *backoff * 2;
}

static void *watcher_main(void *arg)
{
    struct watcher *wa = arg;
    struct worker *w = wa->w;
    char kq[KEYS_KEY_MAX];
    long backoff = 100;

    thread_name("cq-watch");
    keys_queue(&w->keys, wa->queue, kq, sizeof kq);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        redisReply *rep;
        /* A paused queue is not watched: its records would wake the dispatcher for nothing. */
        while (!w->stopping && (!w->watching || w->ready || (w->paused >> (wa - w->watchers) & 1)))
            pthread_cond_wait(&w->watch, &w->mu);
        if (w->stopping) break;
        pthread_mutex_unlock(&w->mu);

        if (watcher_connect(wa) != 0) {
            LOG(&w->lg, CQ_LOG_DEBUG, "watcher %s: %s", wa->queue, wa->rc.errstr);
            pthread_mutex_lock(&w->mu);
            watcher_pause(w, &backoff);
            continue;
        }
        pthread_mutex_lock(&w->mu);
        if (w->stopping) break;
        /* A duplicate of the socket lets stop_watchers shut the connection down while we
         * block, without touching the context, which this thread may free on an error. */
        wa->sock = fcntl(wa->rc.ctx->fd, F_DUPFD_CLOEXEC, 0);
        wa->blocking = 1;
        pthread_mutex_unlock(&w->mu);

        rep = rconn_commandf(&wa->rc, "BLMOVE %s %s RIGHT RIGHT %.3f", kq, kq, WATCH_TIMEOUT);

        pthread_mutex_lock(&w->mu);
        wa->blocking = 0;
        if (wa->sock >= 0) close(wa->sock);
        wa->sock = -1;
        if (rep == NULL) {
            /* At a stop, stop_watchers shut the socket: that is no error to mention. A
             * connection lost at once again and again (a server that drops each new client)
             * is waited on as one refused. */
            if (!w->stopping) {
                LOG(&w->lg, CQ_LOG_DEBUG, "watcher %s: %s", wa->queue, wa->rc.errstr);
                watcher_pause(w, &backoff);
            }
        } else if (rep->type == REDIS_REPLY_ERROR) {
            /* A key of another type under the queue's name fails at once, every time: wait
             * as after a lost connection. The take names the queue (report_error). */
            char why[600];
            rconn_error(&wa->rc, NULL, rep->str, why, sizeof why);
            LOG(&w->lg, CQ_LOG_DEBUG, "watcher %s: %s", wa->queue, why);
            freeReplyObject(rep);
            watcher_pause(w, &backoff);
        } else {
            if (rep->type == REDIS_REPLY_STRING) {
                w->ready = 1;
                pthread_cond_signal(&w->wake);
            }
            backoff = 100;
            freeReplyObject(rep);
        }
    }
    pthread_mutex_unlock(&w->mu);
    rconn_close(&wa->rc);
    return NULL;
}

/* ---- dispatcher helpers ------------------------------------------------------------- */

/* Held job ids, counted by hash (a counting filter, no keys): held_supersede walks the held
 * list only for a taken job whose id's count was not 0, so that a take costs O(1) a job at
 * any -c rather than a walk of every task held. Returns the count before t. */
static unsigned short held_id_add(struct worker *w, struct task *t)
{
    unsigned short was;
    const unsigned char *p;
    unsigned h = 2166136261u; /* FNV-1a */

    if (w->held_ids == NULL) {
        unsigned n = 1024;
        while (n < 4u * (unsigned)w->cfg->concurrency) n *= 2;
        w->held_ids = xcalloc(n, sizeof *w->held_ids);
        w->held_mask = n - 1;
    }
    for (p = (const unsigned char *)t->job->id; *p; p++) h = (h ^ *p) * 16777619u;
    t->held_hash = h;
    was = w->held_ids[h & w->held_mask];
    if (was < USHRT_MAX) w->held_ids[h & w->held_mask]++;
    t->counted = 1;
    return was;
}

static void held_id_remove(struct worker *w, struct task *t)
{
    unsigned short *c;

    if (!t->counted) return;
    t->counted = 0;
    c = &w->held_ids[t->held_hash & w->held_mask];
    if (*c > 0 && *c < USHRT_MAX) (*c)--; /* a saturated count stays: only more walks */
}

/* t is no longer this worker's: out of the held list. */
static void task_release(struct worker *w, struct task *t)
{
    held_id_remove(w, t);
    if (t->held_prev)
        t->held_prev->held_next = t->held_next;
    else if (w->held == t)
        w->held = t->held_next;
    if (t->held_next) t->held_next->held_prev = t->held_prev;
    t->held_prev = t->held_next = NULL;
}

static void task_free(struct worker *w, struct task *t)
{
    task_release(w, t);
    queue_taken_free(&t->taken);
    job_free(t->job);
    free(t->text);
    free(t);
}

/* Seconds until a failed attempt is tried again: exponential with jitter, or what the
 * server asked for (Retry-After) when it said. */
static double retry_delay(const struct worker *w, int attempt, double retry_after)
{
    double d = w->cfg->retry_base * pow(2.0, attempt > 1 ? attempt - 1 : 0);
    double jitter = 0.75 + 0.5 * ((double)rand() / RAND_MAX);

    if (d > RETRY_CAP) d = RETRY_CAP;
    d *= jitter;
    if (retry_after > 0) d = retry_after + 0.1 * jitter;
    return d;
}

/* An error from Redis that is not a lost connection (which the main loop reports once per
 * outage): say it at WARN, but the same text at most once a minute, since the loop retries
 * it every turn. */
static void report_error(struct worker *w, const char *err)
{
    long long now = time_mono_ms();

    if (w->ctl.ctx == NULL) return;
    if (strcmp(err, w->last_error) == 0 && now - w->last_error_at < 60000) return;
    str_copy(w->last_error, sizeof w->last_error, err);
    w->last_error_at = now;
    if (!w->starting) LOG(&w->lg, CQ_LOG_WARN, "%s", err);
}

/* What a task that ran (or was refused) comes to. */
static enum queue_outcome_kind decide(struct worker *w, struct task *t, double *retry_at)
{
    int retries;

    if (t->refused) {
        *retry_at = t->retry_at;
        return t->kind;
    }
    if (t->rc == 0) return QUEUE_FINISHED;
    if (t->cancel) return QUEUE_CANCELED;
    /* Not the job's fault: back to its queue for another worker, this attempt not counted
     * in its record (queue_apply_append), while its hand-offs last (the bench in health.h
     * keeps this worker from taking it again). Past HANDOFF_MAX hand-offs a host failure
     * counts as a transient one, so that a job that always fails so still ends. Called
     * again for the same task when an apply failed: no side effect but t->give_back. */
    t->give_back = t->host && t->job->handoffs < HANDOFF_MAX;
    if (t->give_back) {
        *retry_at = t->ended + HOST_DELAY;
        return QUEUE_RETRY;
    }
    retries = t->job->retries >= 0 ? t->job->retries : t->fn->retries;
    if ((t->transient || t->host) && t->job->attempts <= retries) {
        *retry_at = t->ended + retry_delay(w, t->job->attempts, t->retry_after);
        return QUEUE_RETRY;
    }
    return QUEUE_FAILED;
}

/* A duration in seconds with three decimals: whole milliseconds, rounded, written as
 * integers (no floating point formatting in a line a job). buf: 32 bytes. */
static const char *secs3(char *buf, double s)
{
    long long ms = s > 0 && s < 1e12 ? (long long)(s * 1000 + 0.5) : 0;
    char *p = uint_format(buf, (unsigned long long)(ms / 1000));

    *p++ = '.';
    *p++ = (char)('0' + ms / 100 % 10);
    *p++ = (char)('0' + ms / 10 % 10);
    *p++ = (char)('0' + ms % 10);
    *p = '\0';
    return buf;
}

static void log_outcome(struct worker *w, const struct task *t)
{
    char took[32];

    if (t->kind == QUEUE_CANCELED) {
        LOG(&w->jlg, CQ_LOG_INFO, "%s: %s %s canceled%s", t->taken.queue, t->job->func, t->job->id,
            t->refused ? " before it ran"
                : t->overruled
                ? " after this worker took it (cqctl cancel): the end it came to is not "
                  "recorded"
                : "");
    } else if (t->refused && t->quiet) {
        LOG(&w->jlg, CQ_LOG_DEBUG, "%s: job %s handed back: %s", t->taken.queue, t->job->id,
            t->text);
    } else if (t->give_back) {
        LOG(&w->jlg, CQ_LOG_WARN,
            "%s: %s %s went back to its queue (this host failed, not the job): %s", t->taken.queue,
            t->job->func, t->job->id, t->text);
    } else if (t->refused) {
        if (t->kind == QUEUE_DEAD)
            LOG(&w->jlg, CQ_LOG_WARN, "%s: record moved to the dead list: %s", t->taken.queue,
                t->text);
        else
            LOG(&w->jlg, CQ_LOG_WARN, "%s: job %s %s: %s", t->taken.queue, t->job->id,
                t->kind == QUEUE_RETRY ? "handed back" : "failed", t->text);
    } else if (t->rc == 0) {
        /* The line a job at info: from its parts, with no format to read. */
        LOG_PARTS(&w->jlg, CQ_LOG_INFO, t->taken.queue, ": ", t->job->func, " ", t->job->id,
                  " finished in ", secs3(took, t->ended - t->started), "s", t->text[0] ? ": " : "",
                  t->text);
    } else {
        LOG(&w->jlg, CQ_LOG_WARN, "%s: %s %s %s (attempt %d): %s", t->taken.queue, t->job->func,
            t->job->id, t->kind == QUEUE_RETRY ? "will retry" : "failed", t->job->attempts,
            t->text);
    }
}

/* The lines of the jobs whose outcomes Redis recorded, written and their tasks freed. The
 * dispatcher writes them once the next round trip's commands are sent, while Redis runs
 * them, instead of between a reply and the next round trip, where a line a job made the
 * whole drain wait; and before it sleeps, stops or leaves a cycle with nothing sent. */
static void log_recorded(struct worker *w)
{
    struct task *t;

    while ((t = w->recorded) != NULL) {
        w->recorded = t->next;
        log_outcome(w, t);
        task_free(w, t);
    }
    w->recorded_tail = &w->recorded;
    log_flush(&w->jlg);
}

/* After an outcome is recorded: the summary's counts, and the bench of a function that this
 * host keeps failing (health.h). */
static void note_outcome(struct worker *w, const struct task *t)
{
    long long cooldown;

    switch (t->kind) {
    case QUEUE_FINISHED:
        w->period.finished++;
        w->total_finished++;
        break;
    case QUEUE_FAILED:
        w->period.failed++;
        w->total_failed++;
        break;
    case QUEUE_CANCELED: w->period.canceled++; break;
    case QUEUE_RETRY:
        if (t->give_back)
            w->period.host++;
        else if (!t->refused)
            w->period.retried++;
        break;
    default: break;
    }
    if (t->fn == NULL || t->refused || t->kind == QUEUE_CANCELED) return;
    cooldown = health_note(w->health, t->fn->index, t->host, t->text, time_mono_ms());
    if (cooldown > 0)
        LOG(&w->lg, CQ_LOG_ERROR,
            "%s: %d jobs in a row failed because of this host, not the jobs; this worker "
            "takes no %s job for %llds (they go back to their queues for other workers); fix "
            "the host: %s",
            t->fn->name, HEALTH_STREAK, t->fn->name, cooldown / 1000, t->text);
}

/* Every summary-interval at info: what this worker did meanwhile, in one line. Nothing
 * when it did nothing and holds nothing. */
static void summary(struct worker *w, long long now)
{
    double secs = (double)(now - w->period.since) / 1000.0;
    long ended = w->period.finished + w->period.failed + w->period.canceled;

    if (w->cfg->summary_interval <= 0 || secs < w->cfg->summary_interval) return;
    log_recorded(w); /* the lines of the jobs it counts come first */
    if (ended > 0 || w->period.retried > 0 || w->period.host > 0 || w->outstanding > 0)
        LOG(&w->lg, CQ_LOG_INFO,
            "summary: %ld job%s ended in %.0fs (%.1f/s): %ld finished, %ld failed, %ld "
            "canceled; %ld retries, %ld back for a host failure; %d in flight of %d",
            ended, ended == 1 ? "" : "s", secs, secs > 0 ? (double)ended / secs : 0.0,
            w->period.finished, w->period.failed, w->period.canceled, w->period.retried,
            w->period.host, w->outstanding, w->cfg->concurrency);
    memset(&w->period, 0, sizeof w->period);
    w->period.since = now;
}

/* ---- stops, cancels, pauses, run times ---------------------------------------------- */

/* A hard stop: every handler running or about to run is told to give up. */
static void stop_all(struct worker *w)
{
    struct task *t;

    __atomic_store_n(&w->hard_stop, 1, __ATOMIC_RELAXED);
    for (t = w->held; t; t = t->held_next) __atomic_store_n(&t->stop, 1, __ATOMIC_RELAXED);
}

static void ctl_quiet(struct worker *w);

/* Which of ids[0..n-1] an operator asked to stop (the cancel set): hit[i] = 1. 0, or -1 when
 * Redis cannot say (then nothing is marked: asked again later). */
static int canceled_among(struct worker *w, const char *const *ids, size_t n, unsigned char *hit)
{
    char key[KEYS_KEY_MAX];
    const char **argv = xcalloc(n + 2, sizeof *argv);
    redisReply *rep;
    size_t i;
    int rc = -1;

    argv[0] = "SMISMEMBER";
    argv[1] = keys_cancel(&w->keys, key, sizeof key);
    for (i = 0; i < n; i++) argv[i + 2] = ids[i];
    ctl_quiet(w);
    rep = rconn_command(&w->ctl, (int)n + 2, argv, NULL);
    free(argv);
    if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == n) {
        for (i = 0; i < n; i++)
            hit[i] = rep->element[i]->type == REDIS_REPLY_INTEGER && rep->element[i]->integer;
        rc = 0;
    }
    if (rep != NULL) freeReplyObject(rep);
    return rc;
}

/* Every SCHEDULE_MS while jobs run: stop the handlers of those an operator canceled. The
 * handler sees cq_job_stopping (a command's group gets TERM) and the job ends canceled. */
static void check_cancels(struct worker *w)
{
    redisReply *rep;
    const char **ids;
    struct task *t, **ts;
    unsigned char *hit;
    char key[KEYS_KEY_MAX];
    size_t n = 0, i;

    if (w->outstanding == 0 || w->ctl.ctx == NULL) return;
    rep = rconn_commandf(&w->ctl, "SCARD %s", keys_cancel(&w->keys, key, sizeof key));
    w->cancel_waiting = rep != NULL && rep->type == REDIS_REPLY_INTEGER ? (long)rep->integer : 0;
    if (rep != NULL) freeReplyObject(rep);
    if (w->cancel_waiting == 0) return;
    for (t = w->held; t; t = t->held_next) n++;
    ids = xcalloc(n ? n : 1, sizeof *ids);
    ts = xcalloc(n ? n : 1, sizeof *ts);
    hit = xcalloc(n ? n : 1, 1);
    n = 0;
    for (t = w->held; t; t = t->held_next) {
        if (t->refused || t->job == NULL || t->cancel) continue;
        ts[n] = t;
        ids[n++] = t->job->id;
    }
    if (n > 0 && canceled_among(w, ids, n, hit) == 0) {
        for (i = 0; i < n; i++) {
            if (!hit[i]) continue;
            __atomic_store_n(&ts[i]->cancel, 1, __ATOMIC_RELAXED);
            __atomic_store_n(&ts[i]->stop, 1, __ATOMIC_RELAXED);
            LOG(&w->lg, CQ_LOG_INFO, "%s: %s %s: canceled by an operator, stopping it",
                ts[i]->taken.queue, ts[i]->job->func, ts[i]->job->id);
        }
    }
    free(ids);
    free(ts);
    free(hit);
}

/* What a take said: which queues are paused (watchers of those rest), whether jobs wait to
 * be canceled. */
static void note_take(struct worker *w, const struct queue_take_notes *notes)
{
    w->cancel_waiting = notes->cancel;
    pthread_mutex_lock(&w->mu);
    if (w->paused != notes->paused) {
        w->paused = notes->paused;
        pthread_cond_broadcast(&w->watch);
    }
    pthread_mutex_unlock(&w->mu);
}

/* Run times per function, as a histogram that heartbeats add to <prefix>durations:<func>
 * (cqctl metrics). Bounds in seconds; counts are cumulative, as Prometheus has them. */
static const double hist_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                     1,     2.5,  5,     10,   30,  60,   300};
#define HIST_N (sizeof hist_bounds / sizeof hist_bounds[0])

struct histogram {
    long long le[HIST_N + 1]; /* le[HIST_N]: +Inf */
    double sum;
    long long count;
};

static void hist_add(struct worker *w, const struct task *t)
{
    struct histogram *h;
    double d = t->ended - t->started;
    size_t i;

    if (t->refused || t->aborted || t->fn == NULL) return;
    if (w->hist == NULL) w->hist = xcalloc((size_t)w->cfg->reg->n, sizeof *w->hist);
    h = &w->hist[t->fn->index];
    for (i = 0; i < HIST_N; i++)
        if (d <= hist_bounds[i]) h->le[i]++;
    h->le[HIST_N]++;
    h->sum += d > 0 ? d : 0;
    h->count++;
}

/* Add what was counted since the last flush to Redis, one pipeline. The counts are kept
 * for the next flush when the pipeline could not be sent (Redis down: a failed append drops
 * what was appended before it), and dropped once it was: when the connection is lost while
 * the replies are read, Redis may have applied them, and a histogram counted twice in part
 * would say more than happened. */
static void hist_flush(struct worker *w)
{
    int f, sent = 0, i, rc = 0;

    for (f = 0; rc == 0 && w->hist != NULL && f < w->cfg->reg->n; f++) {
        struct histogram *h = &w->hist[f];
        char key[KEYS_KEY_MAX];
        if (h->count == 0) continue;
        keys_durations(&w->keys, w->cfg->reg->v[f]->name, key, sizeof key);
        for (i = 0; rc == 0 && i <= (int)HIST_N; i++) {
            if (h->le[i] == 0) continue;
            if (i == (int)HIST_N) /* rconn_appendf's %g has a point in any locale */
                rc = rconn_appendf(&w->ctl, "HINCRBY %s le_+Inf %lld", key, h->le[i]);
            else
                rc = rconn_appendf(&w->ctl, "HINCRBY %s le_%g %lld", key, hist_bounds[i], h->le[i]);
            sent++;
        }
        if (rc == 0) rc = rconn_appendf(&w->ctl, "HINCRBYFLOAT %s sum %.6f", key, h->sum);
        if (rc == 0) rc = rconn_appendf(&w->ctl, "HINCRBY %s count %lld", key, h->count);
        sent += 2;
    }
    if (rc != 0 || sent == 0) return;
    for (f = 0; f < w->cfg->reg->n; f++) memset(&w->hist[f], 0, sizeof w->hist[f]);
    while (sent-- > 0) {
        redisReply *rep = rconn_read(&w->ctl);
        if (rep == NULL) break;
        freeReplyObject(rep);
    }
}

/* How many live workers serve func and take from queue, the ones that could run such a job
 * from there (catalog_live_on), and, where none does, in *elsewhere how many serve it on
 * other queues: remembered for a second so that a take of 256 such records asks once. -1
 * when Redis cannot say. */
static int live_servers(struct worker *w, const char *func, const char *queue, int *elsewhere,
                        char *err, size_t errlen)
{
    size_t n = sizeof w->live_cache / sizeof w->live_cache[0], i, oldest = 0;
    long long now = time_mono_ms();
    int live;

    for (i = 0; i < n; i++) {
        if (strcmp(w->live_cache[i].func, func) == 0 &&
            strcmp(w->live_cache[i].queue, queue) == 0 && now - w->live_cache[i].at < 1000) {
            *elsewhere = w->live_cache[i].elsewhere;
            return w->live_cache[i].live;
        }
        if (w->live_cache[i].at < w->live_cache[oldest].at) oldest = i;
    }
    ctl_quiet(w);
    live = catalog_live_on(&w->ctl, &w->keys, func, queue, elsewhere, err, errlen);
    if (live >= 0) {
        str_copy(w->live_cache[oldest].func, sizeof w->live_cache[oldest].func, func);
        str_copy(w->live_cache[oldest].queue, sizeof w->live_cache[oldest].queue, queue);
        w->live_cache[oldest].live = live;
        w->live_cache[oldest].elsewhere = *elsewhere;
        w->live_cache[oldest].at = now;
    }
    return live;
}

/* A job names a function this worker does not serve. During a rolling deploy another live
 * worker that takes from the job's queue may serve it: then the job is handed back (due
 * again in HANDOFF_DELAY, its attempt not counted) at most HANDOFF_MAX times, and fails for
 * good only after that or when no live worker serves the function on that queue (one that
 * serves it on other queues only would never take it). */
static void refuse_unknown(struct worker *w, struct task *t)
{
    const char *queue = t->taken.queue;
    char known[1024], err[512];
    int live, any = 0;

    registry_unknown(w->cfg->reg, t->job->func, known, sizeof known);
    live = live_servers(w, t->job->func, queue, &any, err, sizeof err);
    /* When Redis cannot say, hand it back: that is safe, and bounded. */
    live = live != 0;
    t->refused = 1;
    if (live && t->job->handoffs < HANDOFF_MAX) {
        t->kind = QUEUE_RETRY;
        t->job->attempts--;
        t->job->handoffs++;
        t->retry_at = time_now() + HANDOFF_DELAY;
        t->text = xstrdup_printf("%s: this worker does not serve %s; handed back for a live "
                                 "worker of queue %s that does (%d of %d)",
                                 w->wid, t->job->func, queue, t->job->handoffs, HANDOFF_MAX);
    } else if (live) {
        t->kind = QUEUE_FAILED;
        t->text = xstrdup_printf("%s: handed back too often (the workers of queue %s that serve "
                                 "it do not take it)",
                                 known, queue);
    } else { /* served elsewhere (any)? Then the fix is the queue, not a deploy */
        t->kind = QUEUE_FAILED;
        t->text = any > 0
            ? xstrdup_printf("%s: no live worker of queue %s serves it (%d serve%s it "
                             "on other queues: enqueue it to theirs, or start one "
                             "that takes from %s; cqctl workers lists them)",
                             known, queue, any, any == 1 ? "s" : "", queue)
            : xstrdup_printf("%s: no live worker serves it", known);
    }
}

/* A job of a function benched on this worker (health.h) goes back untouched, due again in
 * HANDOFF_DELAY for any worker. A take that brought nothing else makes this worker hold off
 * taking for BENCH_HOLD_MS (accept_taken), so that a healthy worker gets them first and a
 * benched one alone does not spin on them. */
static void refuse_benched(struct worker *w, struct task *t)
{
    long long left = health_benched(w->health, t->fn->index, time_mono_ms());

    /* Handed back too often already: it runs here, and a host failure then counts. */
    if (left <= 0 || t->job->handoffs >= HANDOFF_MAX) return;
    t->refused = 1;
    t->quiet = 1;
    t->kind = QUEUE_RETRY;
    t->job->attempts--;
    t->job->handoffs++;
    t->retry_at = time_now() + HANDOFF_DELAY;
    t->text = xstrdup_printf("%s: this worker does not take %s for another %llds (%s)", w->wid,
                             t->fn->name, (left + 999) / 1000, health_why(w->health, t->fn->index));
}

/* A job whose workers kept dying while they ran it (a poison pill: a handler that crashes
 * the process, runs it out of memory, or gets it killed) would otherwise be recovered and run
 * again for ever, taking a worker down each time. The recovery script counts each time in the
 * record itself ("recovered", queue.c's recover_lua), so the worker that takes it knows without
 * asking Redis; past max-recoveries it fails the job unrun, as any permanent failure ends. */
static void refuse_recovered(struct worker *w, struct task *t)
{
    int n = t->job->recovered;

    t->refused = 1;
    t->kind = QUEUE_FAILED;
    t->job->attempts--; /* not run: the runs started stay attempts + recovered */
    t->text = xstrdup_printf(
        "%s: the workers running it died %d time%s (a crash, an OOM kill or a SIGKILL while it "
        "ran, or silent past their lease): not run again (%s: %d); cqctl requeue %s runs "
        "it again",
        t->job->func, n, n == 1 ? "" : "s",
        audience_pick("--max-recoveries", "the max-recoveries setting"), w->cfg->max_recoveries,
        t->job->id);
}

/* A task for one taken record, decoded and checked; refused (kind decided) when it cannot
 * run. Dispatcher only: no lock (refuse_unknown asks Redis). */
static struct task *make_task(struct worker *w, const struct taken *tk)
{
    struct task *t = xcalloc(1, sizeof *t);
    char why[512];

    t->taken = *tk;
    t->w = w;
    t->taken_at = t->ended = time_now();
    t->seq = w->next_seq++;
    t->held_next = w->held;
    if (w->held) w->held->held_prev = t;
    w->held = t;
    if (job_decode(t->taken.record, t->taken.len, &t->job, why, sizeof why) != 0) {
        t->refused = 1;
        t->kind = t->job == NULL ? QUEUE_DEAD : QUEUE_FAILED;
        t->text = xstrdup(why);
        return t;
    }
    t->job->attempts++;
    /* A record without a queue belongs to the one it was taken from; its retry record must
     * say so, or it would be scheduled back to "default". */
    if (t->job->queue[0] == '\0') str_copy(t->job->queue, sizeof t->job->queue, t->taken.queue);
    if (t->job->recovered > w->cfg->max_recoveries) {
        refuse_recovered(w, t);
        return t;
    }
    t->fn = registry_find(w->cfg->reg, t->job->func);
    if (t->fn == NULL) {
        refuse_unknown(w, t);
    } else if (registry_check_args(t->fn, t->job->args, 0, why, sizeof why) != 0) {
        t->refused = 1;
        t->kind = QUEUE_FAILED;
        t->text = xstrdup(why);
    } else {
        refuse_benched(w, t);
    }
    return t;
}

/* A job this worker holds came again in a take: another worker recovered it while this one
 * was out of touch past its lease (frozen, starved, cut off), and this one took back the
 * record that went to its queue. Were that record byte for byte the old one, the old run's
 * outcome would be applied to it (the recovery writes its count into the record, so it
 * seldom is; recover_lua leaves alone only a record it cannot count in): a run that
 * began before the recovery would be recorded as the job's end while a later run goes on,
 * whose own outcome would then find no record. So the old task is superseded: its start and
 * end are never sent (its run goes on, as on any worker whose job was recovered), and the job's
 * end is the new run's. Where the old task's end is on its way already, in a round trip sent
 * after this take (earlier ones were read before it), that end will take the record if it
 * is the same bytes: the new task is not run (returns 1), and the job's end is the old run's
 * (else that end is dropped as lost, and the new run goes on). Only tasks of earlier
 * takes (seq before first) count: a take that brought one record twice (a queue holding a
 * duplicate) runs both, as before. */
static int held_supersede(struct worker *w, struct task *n, unsigned long long first)
{
    struct task *t;
    int ending = 0, superseded = 0, unrun, s, k;

    if (n->job == NULL || held_id_add(w, n) == 0) return 0;
    for (t = w->held; t; t = t->held_next) {
        if (t == n || t->seq >= first || t->job == NULL || t->superseded ||
            strcmp(t->job->id, n->job->id) != 0)
            continue;
        if (t->ending) {
            /* That end finds the record only if it is byte for byte the one taken now; a
             * recovery that counted itself in the record (recover_lua) changed it, and the
             * old end will be dropped as lost: then the new run is the job's. */
            if (t->taken.len == n->taken.len &&
                memcmp(t->taken.record, n->taken.record, n->taken.len) == 0)
                ending = 1;
            continue;
        }
        t->superseded = 1;
        superseded = 1;
        /* Its start mark goes nowhere: out of the starts to send. */
        for (s = k = 0; s < w->nstarts; s++)
            if (w->starts[s] != t) w->starts[k++] = w->starts[s];
        w->nstarts = k;
        t->start_pending = 0;
        t->start_sent = 0;
        /* Not run yet (waiting for an executor, not a deferred job's continuation): it never
         * runs, and goes as ended, to be dropped with the next apply. */
        pthread_mutex_lock(&w->mu);
        unrun = todo_remove_unstarted(w, t);
        pthread_mutex_unlock(&w->mu);
        if (unrun) {
            t->started = t->ended = time_now();
            t->next = w->pending;
            w->pending = t;
        }
    }
    if (ending)
        LOG(&w->lg, CQ_LOG_WARN,
            "%s: %s %s: taken again while the outcome of its earlier run here is being "
            "recorded, which ends the job: not run again",
            n->taken.queue, n->job->func, n->job->id);
    else if (superseded)
        LOG(&w->lg, CQ_LOG_WARN,
            "%s: %s %s: taken again after another worker recovered it from this one (out of "
            "touch past its lease): the run under way here goes on, but only the new run's "
            "outcome will be recorded",
            n->taken.queue, n->job->func, n->job->id);
    return ending;
}

/* Jobs an operator canceled before they ran end canceled here, unrun. */
static void refuse_canceled(struct worker *w, struct task **ts, int n)
{
    const char **ids = xcalloc((size_t)n, sizeof *ids);
    unsigned char *hit = xcalloc((size_t)n, 1);
    int i, m = 0;

    for (i = 0; i < n; i++)
        if (ts[i]->job != NULL && (!ts[i]->refused || ts[i]->kind != QUEUE_DEAD))
            ids[m++] = ts[i]->job->id;
    if (m > 0 && canceled_among(w, ids, (size_t)m, hit) == 0) {
        for (i = 0, m = 0; i < n; i++) {
            if (ts[i]->job == NULL || (ts[i]->refused && ts[i]->kind == QUEUE_DEAD)) continue;
            if (!hit[m++]) continue;
            free(ts[i]->text);
            ts[i]->refused = 1;
            ts[i]->kind = QUEUE_CANCELED;
            ts[i]->text = xstrdup("");
        }
    }
    free(ids);
    free(hit);
}

/* Decode taken records into tasks. Runnable ones go to w->starts (to be marked started in the
 * next transaction) and to the executors; ones that cannot run (unreadable, unknown
 * function, wrong arguments, canceled) go to *pending with their outcome already decided. */
static void accept_taken(struct worker *w, struct taken *tk, int n, struct task **pending)
{
    struct task **ts = xcalloc((size_t)(n ? n : 1), sizeof *ts);
    unsigned long long first = w->next_seq;
    int i, m = 0, benched = 0;

    /* A take that brought only jobs this worker gives back, of benched functions or handed
     * back for a live worker that serves theirs (refuse_unknown), holds its takes off, so
     * that when they are due again another worker gets them rather than this one again. */
    for (i = 0; i < n; i++) {
        struct task *t = make_task(w, &tk[i]);
        if (held_supersede(w, t, first)) {
            task_free(w, t);
            continue;
        }
        ts[m++] = t;
        benched += t->quiet || (t->refused && t->fn == NULL && t->kind == QUEUE_RETRY);
    }
    if (m > 0 && benched == m) w->hold_until = time_mono_ms() + BENCH_HOLD_MS;
    if (w->cancel_waiting > 0) refuse_canceled(w, ts, m);
    pthread_mutex_lock(&w->mu);
    for (i = 0; i < m; i++) {
        struct task *t = ts[i];
        if (t->refused) {
            t->next = *pending;
            *pending = t;
            continue;
        }
        w->outstanding++;
        if (w->nstarts == w->capstarts) {
            w->capstarts = w->capstarts ? w->capstarts * 2 : 64;
            w->starts = xrealloc(w->starts, sizeof *w->starts * (size_t)w->capstarts);
        }
        w->starts[w->nstarts++] = t;
        t->start_pending = 1;
        todo_append(w, t);
    }
    w->todo_since = time_mono_us();
    /* Wake one executor now; more only if tasks are still waiting a moment later (see
     * wake_executors). Short jobs are then run by the few threads already awake instead of
     * waking one thread per job, while long ones still fan out over every idle thread
     * within a fraction of a millisecond. */
    if (w->todo != NULL && w->idle_executors > 0) pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    free(ts);
    w->taken_total += m;
}

/* Put back what our in-flight lists hold that we do not (the records of the tasks held,
 * ended ones whose outcomes are not recorded yet among them, stay). Due on every new
 * connection after the first (reconcile_due), before anything is taken on it: a take whose
 * reply was lost (its connection with it) leaves records we do not know of, and the Redis
 * answering may be behind the one before (a failover's new primary, a restart that lost the
 * AOF's last writes), with the record of a job this worker has ended still in flight here,
 * where nobody would ever recover it from a live worker. Returns 0 when done (or nothing to
 * do), -1 to try again later. */
static int reconcile_due(const struct worker *w)
{
    return w->reconciled != w->ctl.connects;
}

static int reconcile(struct worker *w)
{
    const struct taken **held;
    struct task *t;
    size_t n = 0;
    char err[512];
    long moved;

    for (t = w->held; t; t = t->held_next) n++;
    held = xcalloc(n ? n : 1, sizeof *held);
    n = 0;
    for (t = w->held; t; t = t->held_next) held[n++] = &t->taken;
    moved = queue_reconcile(&w->ctl, &w->keys, w->wid, w->cfg->queues, w->cfg->nqueues, held, n,
                            err, sizeof err);
    free(held);
    if (moved < 0) {
        report_error(w, err);
        return -1;
    }
    if (moved > 0)
        LOG(&w->lg, CQ_LOG_WARN,
            "put back %ld job%s that this worker's in-flight lists held and it did not (taken "
            "when a reply from redis was lost, or ended where redis, after a failover or a "
            "restart, lacks the record of it): %s run again",
            moved, moved == 1 ? "" : "s", moved == 1 ? "it will" : "they will");
    w->reconciled = w->ctl.connects;
    return 0;
}

/* Whether a task's start mark is due: it has run START_MARK_S (taken_at is when it was
 * handed to the executors). */
static int start_due(const struct task *t, double now)
{
    return now - t->taken_at >= START_MARK_S;
}

/* How many start marks are due now (starts are kept oldest first). */
static int starts_due(const struct worker *w, double now)
{
    int s = 0;

    while (s < w->nstarts && start_due(w->starts[s], now)) s++;
    return s;
}

/* After an apply: the start marks still to send, oldest first (those sent, and those of tasks
 * whose end was in the batch, are dropped). */
static void starts_compact(struct worker *w)
{
    int s, k = 0;

    for (s = 0; s < w->nstarts; s++)
        if (w->starts[s]->start_pending) w->starts[k++] = w->starts[s];
    w->nstarts = k;
}

static int by_seq(const void *a, const void *b)
{
    unsigned long long x = (*(struct task *const *)a)->seq, y = (*(struct task *const *)b)->seq;
    return x < y ? -1 : x > y;
}

/* The outcomes of one apply into o (room for every start and every end): the due starts not
 * ended in the same batch nor sent in a round trip still unread, each marked with trip, then
 * an end for each task of ends that was not aborted, whose task goes to ot at the same index.
 * Returns how many.
 *
 * The ends go in the order their jobs were taken. The in-flight list holds records in that
 * order, the oldest at its tail, and the apply script removes each with an LREM from the tail:
 * in take order each LREM finds its record at once, while in the order the jobs ended (newest
 * first, as they come from the executors) a batch of 64 made each LREM step over 32 records
 * on average, 14,600 of Redis's 84,000 instructions a job. */
static size_t outcomes(struct worker *w, struct task *ends, unsigned trip, struct queue_outcome *o,
                       struct task **ot)
{
    struct task *t;
    size_t i = 0, first_end, n;
    int s, due = starts_due(w, time_now());

    for (s = 0; s < due; s++) {
        t = w->starts[s];
        if (t->ending || t->start_sent || t->superseded) continue; /* its end records it */
        t->start_sent = trip;
        o[i].kind = QUEUE_STARTED;
        o[i].taken = &t->taken;
        o[i].job = t->job;
        o[i].started_at = o[i].at = t->taken_at;
        i++;
    }
    first_end = n = i;
    for (t = ends; t; t = t->next)
        /* an aborted one is left in flight (the drain puts it back); a superseded one's
         * record is another task's (held_supersede) */
        if (!t->aborted && !t->superseded) ot[n++] = t;
    qsort(ot + first_end, n - first_end, sizeof *ot, by_seq);
    for (; i < n; i++) {
        t = ot[i];
        o[i].retry_at = 0;
        t->kind = decide(w, t, &o[i].retry_at);
        o[i].kind = t->kind;
        o[i].taken = &t->taken;
        o[i].job = t->job;
        o[i].text = t->text;
        o[i].json = t->json;
        o[i].at = t->ended;
        o[i].started_at = t->started;
        o[i].with_start = !t->refused && t->start_pending;
        o[i].handback = t->refused || t->give_back;
        o[i].give_back = t->give_back;
    }
    return n;
}

/* Send one round trip: mark taken jobs started and record the pending outcomes (one script
 * call), and, when take_max > 0, take more in the same pipeline. The pending tasks move to
 * tr->ends; trip_recv reads the replies, trip_handle handles them. Nothing is read here, so a second trip may be sent
 * before the first is read (dispatch). */
static void trip_send(struct worker *w, struct trip *tr, size_t take_max)
{
    struct task *t;
    size_t n = (size_t)w->nstarts;

    memset(tr, 0, sizeof *tr);
    tr->id = (unsigned)++w->trips_total;
    if (tr->id == 0) tr->id = (unsigned)++w->trips_total; /* 0 is "in no trip" */
    tr->ends = w->pending;
    w->pending = NULL;
    for (t = tr->ends; t; t = t->next) {
        n++;
        t->ending = !t->aborted && !t->superseded;
        if (!t->refused && !t->aborted) tr->frees++;
    }
    tr->o = xcalloc(n ? n : 1, sizeof *tr->o);
    tr->ot = xcalloc(n ? n : 1, sizeof *tr->ot);
    tr->lost = xcalloc(n ? n : 1, 1);
    tr->n = outcomes(w, tr->ends, tr->id, tr->o, tr->ot);
    tr->ok = queue_apply_append(&w->ctl, &w->keys, w->wid, tr->o, tr->n, &w->cfg->ttls, &tr->nrep,
                                tr->err, sizeof tr->err) == 0;
    if (tr->ok && take_max > 0) {
        if (queue_take_append(&w->ctl, &w->keys, w->wid, w->cfg->queues, w->cfg->nqueues, take_max,
                              tr->err, sizeof tr->err) != 0)
            tr->ok = 0;
        else
            tr->take_max = take_max;
    }
    if (tr->ok && rconn_flush(&w->ctl) == 0) log_recorded(w); /* while Redis runs them */
}

/* Read a round trip's replies into tr, for trip_handle. */
static void trip_recv(struct worker *w, struct trip *tr)
{
    char warn[512];

    tr->received = 1;
    tr->rok = tr->ok;
    if (tr->rok &&
        queue_apply_read(&w->ctl, tr->nrep, tr->lost, tr->n, warn, sizeof warn, tr->err,
                         sizeof tr->err) != 0)
        tr->rok = 0;
    else if (tr->rok && warn[0] != '\0')
        report_error(w, warn);
    /* The take's failure is its own: the apply ahead of it in the pipeline ran or failed
     * as its reply says, and a failed take must not send applied outcomes again (they
     * would come back as no longer in this worker's hands, and go uncounted here). With
     * the connection lost, the take may have run with its reply lost: the next connection
     * reconciles before taking again. */
    if (tr->take_max > 0) {
        tr->taken = -1;
        if (w->ctl.ctx != NULL) {
            tr->tk = xcalloc(tr->take_max, sizeof *tr->tk);
            tr->taken = queue_take_read(&w->ctl, tr->take_max, tr->tk, &tr->notes, warn,
                                        sizeof warn, tr->terr, sizeof tr->terr);
        }
        if (tr->taken >= 0 && warn[0] != '\0') report_error(w, warn);
    }
}

/* Before a command of the dispatcher's own on the control connection (accept_taken asks
 * Redis about some jobs): the round trip sent behind the one being handled is read first,
 * as its replies come before this command's, and handled in its turn. */
static void ctl_quiet(struct worker *w)
{
    if (w->unread == NULL) return;
    trip_recv(w, w->unread);
    w->unread = NULL;
}

/* Handle a round trip's replies (read by trip_recv first, unless they are already). Returns
 * the number taken, or -1 when the apply or the take failed. Where the apply failed, its
 * outcomes go back to the pending ones for the next try (nothing is lost, and an outcome
 * applied once already is dropped the second time - see queue_apply_append); where only the
 * take failed, they are recorded. */
static int trip_handle(struct worker *w, struct trip *tr)
{
    struct task *t;
    int ok, taken, s;

    if (!tr->received) trip_recv(w, tr);
    ok = tr->rok;
    taken = tr->taken;
    if (taken >= 0 && tr->take_max > 0) note_take(w, &tr->notes);
    for (s = 0; ok && (size_t)s < tr->n; s++) {
        if (!tr->lost[s] || tr->ot[s] == NULL) continue;
        if (tr->lost[s] == QUEUE_LOST_CANCELED) { /* recorded as the cancel's end */
            tr->ot[s]->kind = QUEUE_CANCELED;
            tr->ot[s]->overruled = 1;
            continue;
        }
        /* Not in our in-flight list any more: either this very batch was applied once
         * already and only its reply was lost, or another worker recovered the job while we
         * were out of touch for longer than our lease. */
        tr->ot[s]->lost = 1;
        if (tr->ot[s]->job != NULL)
            LOG(&w->lg, CQ_LOG_WARN,
                "%s: %s %s: outcome not recorded again: the job was no "
                "longer in this worker's hands (recorded before a lost reply, or recovered "
                "by another worker)",
                tr->ot[s]->taken.queue, tr->ot[s]->job->func, tr->ot[s]->job->id);
        else /* a record that was no job, bound for the dead list */
            LOG(&w->lg, CQ_LOG_WARN,
                "%s: a record that is no job: not moved to the dead list again: it was no "
                "longer in this worker's hands (moved before a lost reply, or recovered by "
                "another worker)",
                tr->ot[s]->taken.queue);
    }
    free(tr->o);
    free(tr->ot);
    free(tr->lost);
    if (!ok) report_error(w, tr->err);
    if (tr->take_max > 0 && taken < 0 && tr->terr[0] != '\0') report_error(w, tr->terr);
    for (s = 0; s < w->nstarts; s++) {
        if (w->starts[s]->start_sent != tr->id) continue;
        if (ok) w->starts[s]->start_pending = 0;
        w->starts[s]->start_sent = 0;
    }
    if (ok) {
        for (t = tr->ends; t; t = t->next) t->start_pending = 0; /* ended, or going back */
        starts_compact(w);
        while (tr->ends) {
            t = tr->ends;
            tr->ends = t->next;
            if (!t->aborted && !t->refused) w->outstanding--;
            if (t->aborted || t->lost || t->superseded) {
                task_free(w, t);
                continue;
            }
            note_outcome(w, t);
            hist_add(w, t);
            task_release(w, t);
            t->next = NULL;
            *w->recorded_tail = t;
            w->recorded_tail = &t->next;
        }
    } else if (tr->ends != NULL) { /* kept, ahead of what ended since */
        for (t = tr->ends; t->next; t = t->next) continue;
        t->next = w->pending;
        w->pending = tr->ends;
        tr->ends = NULL;
    }
    if (taken > 0) accept_taken(w, tr->tk, taken, &w->pending);
    free(tr->tk);
    return ok && taken >= 0 ? taken : -1;
}

/* One round trip, sent and read; where it fails (-1), err says why. */
static int cycle(struct worker *w, size_t take_max, char *err, size_t errlen)
{
    struct trip tr;
    int rc;

    trip_send(w, &tr, take_max);
    rc = trip_handle(w, &tr);
    if (rc < 0) str_copy(err, errlen, !tr.rok ? tr.err : tr.terr);
    return rc;
}

static void make_identity(struct worker *w)
{
    char host[256] = "localhost";
    char *p;
    unsigned long long rnd;
    FILE *f;

    if (gethostname(host, sizeof host) != 0) str_copy(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    str_copy(w->host, sizeof w->host, host);
    for (p = host; *p; p++) {
        int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_';
        if (!ok) *p = '_';
    }
    host[64] = '\0';
    /* 48 random bits: containers on one host network share the host name and often the pid
     * (1), so the suffix alone must keep two workers' ids apart. */
    rnd = ((unsigned long long)getpid() << 32) ^ (unsigned long long)time_mono_ms();
    f = fopen("/dev/urandom", "rb");
    if (f != NULL) {
        if (fread(&rnd, sizeof rnd, 1, f) != 1) rnd ^= (unsigned long long)time_mono_ms();
        fclose(f);
    }
    srand((unsigned)rnd);
    err_set(w->wid, sizeof w->wid, "%.64s.%ld.%012llx", host, (long)getpid(),
            rnd & 0xffffffffffffULL);
}

/* The CLIENT IDs of this worker's connections, comma-separated: its control connection's and
 * its watchers'. */
static const char *clients_csv(struct worker *w, char *buf, size_t len)
{
    size_t i, n = 0;

    if (w->ctl_id_of != w->ctl.connects && w->ctl.ctx != NULL) {
        w->ctl_id = client_id(&w->ctl);
        w->ctl_id_of = w->ctl.connects;
    }
    buf[0] = '\0';
    if (w->ctl_id > 0) n = (size_t)snprintf(buf, len, "%lld", w->ctl_id);
    if (!w->sync_inited) return buf; /* at start: no watcher yet */
    pthread_mutex_lock(&w->mu);
    for (i = 0; w->watchers != NULL && i < w->cfg->nqueues && n < len; i++)
        if (w->watchers[i].client_id > 0)
            n += (size_t)snprintf(buf + n, len - n, "%s%lld", n ? "," : "",
                                  w->watchers[i].client_id);
    pthread_mutex_unlock(&w->mu);
    return buf;
}

/* Renew the lease and tell the catalog this worker's functions are served; with publish,
 * (re)publish their declarations too (at start and after an outage). */
static int heartbeat(struct worker *w, int publish)
{
    struct queue_worker_info info;
    char err[512], clients[512];
    long lease;
    int added = 0;

    info.wid = w->wid;
    info.host = w->host;
    info.pid = (long)getpid();
    info.queues = w->queues_csv;
    info.concurrency = w->cfg->concurrency;
    info.busy = w->outstanding;
    info.started_at = w->started_at;
    info.functions = w->functions;
    info.clients = clients_csv(w, clients, sizeof clients);
    /* A config made by hand (tests) may leave the lease 0: the default then. */
    lease = w->cfg->lease > 0 ? (long)ceil(w->cfg->lease) : 10;
    if (queue_register(&w->ctl, &w->keys, &info, lease, &added, err, sizeof err) != 0) {
        report_error(w, err);
        return -1;
    }
    /* Registered on a connection whose module question got LOADING (Redis loaded in
     * between): asked again, or its takes and outcomes went as the scripts till it closed. */
    if (rconn_module_settle(&w->ctl) != 0) return -1;
    /* Out of the registry, though registered on this very connection: the lease lapsed while
     * the connection stayed open (the process frozen, or starved of CPU, past --lease), and
     * another worker took this one for dead and sent its jobs back to their queues. */
    if (added && w->registered_on == w->ctl.connects)
        LOG(&w->lg, CQ_LOG_WARN,
            "this worker was taken for dead: no heartbeat reached redis within its lease (%lds: "
            "the process was likely frozen or starved of CPU), so the jobs it held went back to their "
            "queues, and those still running here may run twice; registered again",
            lease);
    /* Registered again after a recovery deleted its hash: its counts since the start come
     * back (the applies add to them from there), rather than starting over at 0. */
    if (added && w->registered_on != 0) {
        char kw[KEYS_KEY_MAX];
        redisReply *rep = rconn_commandf(&w->ctl, "HSET %s processed %ld failed %ld",
                                         keys_worker(&w->keys, w->wid, kw, sizeof kw),
                                         w->total_finished, w->total_failed);
        if (rep == NULL) return -1;
        if (rep->type == REDIS_REPLY_ERROR) { /* the worker runs on; its counts start over */
            rconn_error(&w->ctl, NULL, rep->str, err, sizeof err);
            LOG(&w->lg, CQ_LOG_WARN,
                "the worker's counts (processed, failed) were not restored, so they count from "
                "0 again: %s",
                err);
        }
        freeReplyObject(rep);
    }
    if (publish) {
        if (catalog_publish(&w->ctl, &w->keys, w->cfg->reg, err, sizeof err) != 0) {
            report_error(w, err);
            return -1;
        }
    } else {
        int appended = 0;
        if (catalog_seen_append(&w->ctl, &w->keys, w->cfg->reg, &appended) == 0 && appended) {
            redisReply *rep = rconn_read(&w->ctl);
            if (rep == NULL) return -1;
            freeReplyObject(rep);
        }
        hist_flush(w);
    }
    w->registered_on = w->ctl.connects;
    return 0;
}

/* Production Redis must keep what it acknowledged and must not evict job data. */
static void check_redis_config(struct worker *w)
{
    redisReply *rep = rconn_commandf(&w->ctl, "CONFIG GET appendonly");

    if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[1]->type == REDIS_REPLY_STRING && strcmp(rep->element[1]->str, "yes") != 0)
        LOG(&w->lg, CQ_LOG_WARN,
            "redis has appendonly %s: jobs acknowledged since the last snapshot are lost if it "
            "restarts (production: appendonly yes)",
            rep->element[1]->str);
    if (rep != NULL) freeReplyObject(rep);
    rep = rconn_commandf(&w->ctl, "CONFIG GET maxmemory-policy");
    if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[1]->type == REDIS_REPLY_STRING &&
        strcmp(rep->element[1]->str, "noeviction") != 0)
        LOG(&w->lg, CQ_LOG_WARN,
            "redis has maxmemory-policy %s: it may evict queued jobs (production: noeviction)",
            rep->element[1]->str);
    if (rep != NULL) freeReplyObject(rep);
}

/* A paused queue (cqctl pause) is served by no worker until it is resumed: say so once, at
 * warn, as the producers do, or a worker started on one would sit idle beside its jobs with
 * no word of why. */
static void check_paused(struct worker *w)
{
    char kp[KEYS_KEY_MAX];
    redisReply *rep = rconn_commandf(&w->ctl, "SMEMBERS %s", keys_paused(&w->keys, kp, sizeof kp));
    size_t i, j;

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        if (rep != NULL) freeReplyObject(rep);
        return;
    }
    for (i = 0; i < w->cfg->nqueues; i++)
        for (j = 0; j < rep->elements; j++)
            if (rep->element[j]->type == REDIS_REPLY_STRING &&
                strcmp(rep->element[j]->str, w->cfg->queues[i]) == 0) {
                LOG(&w->lg, CQ_LOG_WARN,
                    "queue %s is paused: this worker takes nothing from it until 'cqctl "
                    "resume %s'",
                    w->cfg->queues[i], w->cfg->queues[i]);
                break;
            }
    freeReplyObject(rep);
}

/* A queue no producer ever enqueued to may be a typo (cworker defualt), or one that is not
 * used yet (cworker high default low): say so once, at info, naming the queues producers
 * did use (cq:queues). */
static void check_queues(struct worker *w)
{
    char kq[KEYS_KEY_MAX], known[1024] = "";
    redisReply *rep = rconn_commandf(&w->ctl, "SMEMBERS %s", keys_queues(&w->keys, kq, sizeof kq));
    size_t i, j, len = 0;

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        if (rep != NULL) freeReplyObject(rep);
        return;
    }
    for (j = 0; j < rep->elements && len < sizeof known; j++)
        if (rep->element[j]->type == REDIS_REPLY_STRING)
            len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", len ? ", " : "",
                                    rep->element[j]->str);
    if (len >= sizeof known) memcpy(known + sizeof known - 5, " ...", 5); /* too many to say */
    for (i = 0; i < w->cfg->nqueues; i++) {
        for (j = 0; j < rep->elements; j++)
            if (rep->element[j]->type == REDIS_REPLY_STRING &&
                strcmp(rep->element[j]->str, w->cfg->queues[i]) == 0)
                break;
        if (j < rep->elements) continue;
        if (rep->elements == 0)
            LOG(&w->lg, CQ_LOG_INFO,
                "queue %s: no producer has enqueued to it yet (none has to any queue of this "
                "redis); waiting for one",
                w->cfg->queues[i]);
        else
            LOG(&w->lg, CQ_LOG_INFO,
                "queue %s: no producer has ever enqueued to it; the queues in use are: %s",
                w->cfg->queues[i], known);
    }
    freeReplyObject(rep);
}

static void set_watching(struct worker *w, int on)
{
    pthread_mutex_lock(&w->mu);
    if (w->watching != on) {
        w->watching = on;
        pthread_cond_broadcast(&w->watch);
    }
    pthread_mutex_unlock(&w->mu);
}

/* Stop the watchers, interrupting any blocked BLMOVE, and wait for them. */
static void stop_watchers(struct worker *w)
{
    size_t i;

    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    for (i = 0; i < w->cfg->nqueues; i++) {
        struct watcher *wa = &w->watchers[i];
        if (wa->blocking && wa->sock >= 0) shutdown(wa->sock, SHUT_RDWR);
    }
    pthread_cond_broadcast(&w->watch);
    pthread_cond_broadcast(&w->work);
    pthread_mutex_unlock(&w->mu);
    for (i = 0; i < w->cfg->nqueues; i++)
        if (w->watchers[i].started) pthread_join(w->watchers[i].thread, NULL);
}

/* ---- the loop ----------------------------------------------------------------------- */

/* Free what worker_start made. With stopped == 0 the executors still run a handler: they are
 * detached and the worker itself is left for the exiting process. */
static void worker_free(struct worker *w, int stopped)
{
    size_t i, n;

    if (w->sync_inited) pthread_mutex_lock(&w->mu); /* all made by now: none after the stop */
    n = (size_t)w->executors_started;
    if (w->sync_inited) pthread_mutex_unlock(&w->mu);
    if (!stopped) {
        for (i = 0; i < n; i++) pthread_detach(w->executors[i]);
        return;
    }
    for (i = 0; i < n; i++) pthread_join(w->executors[i], NULL);
    log_recorded(w);
    while (w->pending) {
        struct task *t = w->pending->next;
        task_free(w, w->pending);
        w->pending = t;
    }
    for (i = 0; w->watchers != NULL && i < w->cfg->nqueues; i++) rconn_close(&w->watchers[i].rc);
    free(w->executors);
    free(w->watchers);
    free(w->starts);
    free(w->held_ids);
    free(w->functions);
    free(w->hist);
    health_free(w->health);
    rconn_close(&w->ctl);
    if (w->efd >= 0) close(w->efd);
    if (w->sync_inited) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->wake);
        pthread_cond_destroy(&w->work);
        pthread_cond_destroy(&w->watch);
        pthread_cond_destroy(&w->quiet);
    }
    free(w);
}

static void init_sync(struct worker *w)
{
    /* The timed waits must not stretch when the wall clock steps back. */
    pthread_condattr_t ca;

    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &ca);
    pthread_cond_init(&w->quiet, &ca);
    pthread_cond_init(&w->watch, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&w->work, NULL);
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->sync_inited = 1;
}

/* Start two executors a CPU, -c at most (the others come as jobs wait: wake_executors), and
 * the watchers: with short jobs, one executor hands its ends over while another runs (no-op
 * drains ran 2-10% faster on 4 executors than on 2, on 2 CPUs). 0, or -1 when a thread could
 * not be made: then what did start is stopped again. */
static int start_threads(struct worker *w, const struct rconn_url *url)
{
    const struct worker_config *cfg = w->cfg;
    int cpus = cpus_usable();
    int first = 2 * cpus < cfg->concurrency ? 2 * cpus : cfg->concurrency;
    size_t i;

    /* Before the first thread: a table that grew while the executors ran would stall each
     * of them making a descriptor then (a burst of downloads opening files and sockets
     * stalled for milliseconds, and executors were made for the jobs waiting meanwhile). */
    fd_table_reserve(FDS_OWN + FDS_PER_JOB * cfg->concurrency);
    w->executors = xcalloc((size_t)cfg->concurrency, sizeof *w->executors);
    while (w->executors_started < first &&
           worker_thread_create(&w->executors[w->executors_started], NULL, executor_main, w) == 0)
        w->executors_started++;
    w->watchers = xcalloc(cfg->nqueues, sizeof *w->watchers);
    for (i = 0; w->executors_started == first && i < cfg->nqueues; i++) {
        w->watchers[i].w = w;
        w->watchers[i].queue = cfg->queues[i];
        w->watchers[i].sock = -1;
        rconn_init(&w->watchers[i].rc, url, 0);
        if (worker_thread_create(&w->watchers[i].thread, NULL, watcher_main, &w->watchers[i]) != 0)
            break;
        w->watchers[i].started = 1;
    }
    if (w->executors_started == first && i == cfg->nqueues) return 0;
    LOG(&w->lg, CQ_LOG_ERROR,
        "cannot start %d executor and %zu watcher threads (started %d and %zu): raise the "
        "limits on threads (ulimit -u)",
        first, cfg->nqueues, w->executors_started, i);
    stop_watchers(w);
    return -1;
}

/* How far Redis is in loading its data, for a line: " (37% done)" from INFO persistence's
 * loading_loaded_perc, "" where it does not say (INFO refused: an ACL without +info). */
static void loading_progress(struct worker *w, char *buf, size_t len)
{
    redisReply *rep = rconn_commandf(&w->ctl, "INFO persistence");
    char perc[32] = "";

    buf[0] = '\0';
    if (rep != NULL && rep->type == REDIS_REPLY_STRING)
        info_field(rep->str, "loading_loaded_perc", perc, sizeof perc);
    if (perc[0] != '\0') snprintf(buf, len, " (%.*s%% done)", (int)strcspn(perc, "."), perc);
    if (rep != NULL) freeReplyObject(rep);
}

/* Connect and register at start. A Redis that refuses the registration with LOADING (it
 * restarted and reads its AOF or RDB back, which can take minutes) is there, at the URL
 * given: waited for, asked again every LOADING_POLL_MS on a new connection (so that the
 * module's commands are asked about once it has loaded), with one line at info, where the
 * worker exited 1 and its supervisor started it again and again for as long as the load went
 * on. A stop (SIGTERM, SIGINT) ends the wait. Anything else (a refused connection, a wrong
 * password, maxmemory) still ends the start at once, so that a wrong URL or a Redis never
 * started is said, not waited on in silence. When it waited, loaded_at is when it saw the load
 * done: start_grace counts from there, not from Redis's start. Returns 0 registered, -1 not
 * (the caller says why), 1 stopped while Redis loaded (said here). */
static int connect_at_start(struct worker *w)
{
    long long began = 0;
    char where[300], progress[32];
    int i;

    for (;;) {
        w->last_error[0] = '\0';
        if (rconn_connect(&w->ctl) == 0 && heartbeat(w, 1) == 0) break;
        /* report_error's text: "[context: ]redis HOST:PORT: LOADING Redis is loading ..." */
        if (w->ctl.ctx == NULL || strstr(w->last_error, ": LOADING ") == NULL) return -1;
        if (began == 0) {
            began = time_mono_ms();
            loading_progress(w, progress, sizeof progress);
            LOG(&w->lg, CQ_LOG_INFO,
                "redis at %s is loading its data%s; waiting, and starting once it has",
                rconn_where(&w->ctl, where, sizeof where), progress);
        }
        rconn_close(&w->ctl);
        for (i = 0; i < LOADING_POLL_MS / 100 && !stops_asked(w); i++) sleep_ms(100);
        if (stops_asked(w)) {
            LOG(&w->lg, CQ_LOG_INFO,
                "worker %s stopped before it started: redis was still loading its data", w->wid);
            return 1;
        }
    }
    if (began != 0) {
        w->loaded_at = time_mono_ms();
        LOG(&w->lg, CQ_LOG_INFO, "redis has loaded its data, after %.1fs of waiting",
            (double)(w->loaded_at - began) / 1000.0);
    }
    return 0;
}

/* Everything before the first turn: identity, registration, threads. Returns the worker, or
 * NULL (logged, everything freed) when it does not start: *status is then the exit status, 1
 * when it cannot start, 0 when a stop came while Redis was loading its data. */
static struct worker *worker_start(const struct worker_config *cfg, volatile sig_atomic_t *signals,
                                   int *status)
{
    struct worker *w = xcalloc(1, sizeof *w);
    struct rconn_url url;
    char err[512];
    size_t i, o;
    int rc;

    *status = 1;
    w->cfg = cfg;
    w->signals = signals;
    w->efd = -1;
    /* Lines are named after the program: cworker, or one that embeds a worker. */
    w->lg.prog =
        program_invocation_short_name[0] != '\0' ? program_invocation_short_name : "cworker";
    w->lg.level = cfg->log_level;
    w->lg.json = cfg->log_json;
    w->jlg = w->lg;
    w->recorded_tail = &w->recorded;
    w->jlg.buf = &w->jbuf;
    w->started_at = time_now();
    w->backoff = 100;
    w->health = health_new();
    w->period.since = time_mono_ms();
    if (keys_init_default(&w->keys, cfg->prefix, err, sizeof err) != 0 ||
        rconn_parse_default_url(cfg->url, &url, err, sizeof err) != 0) {
        LOG(&w->lg, CQ_LOG_ERROR, "%s", err);
        worker_free(w, 1);
        return NULL;
    }
    for (i = 0, o = 0; i < cfg->nqueues; i++) {
        int n = snprintf(w->queues_csv + o, sizeof w->queues_csv - o, "%s%s", i ? "," : "",
                         cfg->queues[i]);
        if (n < 0 || (size_t)n >= sizeof w->queues_csv - o) {
            LOG(&w->lg, CQ_LOG_ERROR, "too many queues");
            worker_free(w, 1);
            return NULL;
        }
        o += (size_t)n;
    }
    make_identity(w);
    w->functions = catalog_names(cfg->reg);
    rconn_init(&w->ctl, &url, 5.0);
    w->ctl.want_module = RCONN_MODULE_WORKER; /* outcomes through CQ.APPLY1 where Redis has it */
    w->starting = 1;
    rc = connect_at_start(w);
    if (rc > 0) {
        *status = 0;
        worker_free(w, 1);
        return NULL;
    }
    if (rc < 0) {
        /* Connected, and Redis refused the registration (an ACL, maxmemory): its reply. */
        if (w->ctl.ctx != NULL && w->last_error[0] != '\0')
            LOG(&w->lg, CQ_LOG_ERROR, "cannot register this worker: %s", w->last_error);
        else
            LOG(&w->lg, CQ_LOG_ERROR, "%s",
                w->ctl.errstr[0] ? w->ctl.errstr : "cannot register this worker");
        worker_free(w, 1);
        return NULL;
    }
    w->starting = 0;
    w->reconciled = w->ctl.connects; /* nothing taken yet on the first connection */
    w->grace_of = w->ctl.connects;   /* nor has anyone else lost a connection */
    start_grace(w, time_mono_ms());  /* unless Redis itself came back a moment ago */
    check_redis_config(w);
    check_queues(w);
    check_paused(w);
    init_sync(w);
    if (start_threads(w, &url) != 0) {
        /* Nothing was taken yet: deregister, and free what started. */
        queue_recover(&w->ctl, &w->keys, w->wid, NULL, 0, err, sizeof err);
        worker_free(w, 1);
        return NULL;
    }
    LOG(&w->lg, CQ_LOG_INFO, "worker %s started: queues %s, concurrency %d%s%s", w->wid,
        w->queues_csv, cfg->concurrency, cfg->burst ? ", burst" : "",
        w->ctl.module ? "; takes and outcomes through cq's Redis module" : "");
    return w;
}

/* The stop requests so far (cq_worker_stop: a signal handler, on any thread, or another
 * thread): read atomically, as they are written. */
static int stops_asked(const struct worker *w)
{
    return __atomic_load_n(w->signals, __ATOMIC_RELAXED);
}

/* Signals: the first starts a drain, a second stops at once (returns 1: leave the loop). */
static int check_signals(struct worker *w, long long now)
{
    if (stops_asked(w) >= 2) {
        LOG(&w->lg, CQ_LOG_INFO, "second signal: putting back running jobs now");
        stop_all(w);
        return 1;
    }
    if (stops_asked(w) >= 1 && !w->draining) {
        w->draining = 1;
        w->drain_deadline = now + (long long)(w->cfg->shutdown_timeout * 1000);
        /* Redis already lost: ask for it again within 250 ms, not after a long backoff. */
        if (w->backoff > 250) w->backoff = 250;
        if (w->down && w->next_connect > now + 250) w->next_connect = now + 250;
        set_watching(w, 0);
        if (w->outstanding == 0) /* nothing to wait for: no "waiting up to 25s" */
            LOG(&w->lg, CQ_LOG_INFO, "stopping: no job running");
        else
            LOG(&w->lg, CQ_LOG_INFO, "stopping: %d job%s running, waiting up to %.0fs",
                w->outstanding, w->outstanding == 1 ? "" : "s", w->cfg->shutdown_timeout);
    }
    return 0;
}

/* The longest wait between two reconnection attempts. Through sentinels, an outage is most
 * often a failover that ends within seconds: asked again at least every second. */
static long reconnect_cap(const struct worker *w)
{
    return w->ctl.url.nsentinels > 0 ? 1000 : 5000;
}

/* Reconnect with capped backoff; one line when an outage starts and one when it ends. */
static void keep_connected(struct worker *w, long long now)
{
    if (w->ctl.ctx != NULL) return;
    if (!w->down) {
        w->down = 1;
        w->down_since = now;
        /* rconn's line for a lost connection says already that it is opened again */
        LOG(&w->lg, CQ_LOG_WARN, "lost redis: %s%s", w->ctl.errstr,
            w->ctl.lost ? "" : "; reconnecting");
    }
    if (now < w->next_connect) return;
    if (rconn_connect(&w->ctl) == 0 && heartbeat(w, 1) == 0) {
        LOG(&w->lg, CQ_LOG_INFO, "redis is back after %.1fs",
            (double)(now - w->down_since) / 1000.0);
        w->down = 0;
        /* Attempts that failed: an outage, whose end the others see too, each in its own
         * time: a grace of its own, however long the one before went on (recovery_grace). */
        if (w->backoff > 100) w->grace_since = 0;
        w->backoff = 100;
        w->idle = 0;
        w->next_hb = now + HEARTBEAT_MS;
    } else {
        /* Connected but not registered (Redis still loading its data, out of memory: the
         * heartbeat says why): not back yet. Closed, so that a later turn connects and
         * registers again; left open, the worker stayed down for good, its housekeeping
         * (heartbeat, recovery, scheduled jobs) stopped and its lease let lapse. */
        if (w->ctl.ctx != NULL) rconn_close(&w->ctl);
        /* A drain has only its shutdown timeout left to record what ended: it asks every
         * 250 ms. */
        long cap = w->draining ? 250 : reconnect_cap(w);
        w->next_connect = now + w->backoff;
        w->backoff = w->backoff * 2 > cap ? cap : w->backoff * 2;
    }
}

/* How long a worker takes no one for dead after Redis came back (recovery_grace,
 * start_grace): a lease (this worker's --lease, as the others' are most often the same),
 * and at least a reconnection backoff and two recovery passes. */
static long long grace_ms(const struct worker *w)
{
    long long lease = w->cfg->lease > 0 ? (long long)(w->cfg->lease * 1000) : 10000;
    long long least = reconnect_cap(w) + 2 * RECOVER_MS;

    return lease > least ? lease : least;
}

/* The registered client ids of the other workers, from pipelined HGETs: wids[i]'s in
 * ids[i] (malloc'ed, NULL when it has none). Returns how many workers, or -1. */
static int workers_clients(struct worker *w, char ***wids, char ***ids)
{
    char kws[KEYS_KEY_MAX], kw[KEYS_KEY_MAX];
    redisReply *set =
        rconn_commandf(&w->ctl, "SMEMBERS %s", keys_workers(&w->keys, kws, sizeof kws));
    size_t i, n = 0;

    if (set == NULL || set->type != REDIS_REPLY_ARRAY) {
        if (set != NULL) freeReplyObject(set);
        return -1;
    }
    *wids = xcalloc(set->elements + 1, sizeof **wids);
    *ids = xcalloc(set->elements + 1, sizeof **ids);
    for (i = 0; i < set->elements; i++) {
        if (set->element[i]->type != REDIS_REPLY_STRING) continue;
        if (rconn_appendf(&w->ctl, "HGET %s clients",
                          keys_worker(&w->keys, set->element[i]->str, kw, sizeof kw)) != 0)
            break;
        (*wids)[n++] = xstrdup(set->element[i]->str);
    }
    freeReplyObject(set);
    for (i = 0; i < n; i++) {
        redisReply *rep = rconn_read(&w->ctl);
        if (rep == NULL) break;
        if (rep->type == REDIS_REPLY_STRING && rep->str[0] != '\0') (*ids)[i] = xstrdup(rep->str);
        freeReplyObject(rep);
    }
    return (int)n;
}

/* A worker whose process died is known to Redis at once: its connections close. Every
 * recovery pass (RECOVER_MS), the registered client ids of the other workers are looked up
 * in CLIENT LIST; a worker with none of them connected in two passes in a row (so that one
 * that is reconnecting, which registers its new id at once, is not taken for dead) gets its
 * lease deleted, and the recovery that follows puts its jobs back: 1 to 2 s after the death
 * (the first pass that misses it comes within RECOVER_MS), where its lease would take 8 to
 * 11 (--lease, 10 s, from a heartbeat up to HEARTBEAT_MS before the death, then a pass). A
 * host that vanishes without closing its connections is still found by its lease. An ACL
 * that refuses CLIENT LIST leaves the leases alone, said once. */
static void find_gone(struct worker *w)
{
    char **wids = NULL, **ids = NULL, kl[KEYS_KEY_MAX];
    redisReply *list;
    int n, i, j, ngone = 0;
    struct {
        char wid[KEYS_NAME_MAX + 1];
        int passes;
    } gone[32];

    if (w->clients_refused) return;
    list = rconn_commandf(&w->ctl, "CLIENT LIST TYPE normal");
    if (list == NULL) return;
    if (list->type != REDIS_REPLY_STRING) {
        w->clients_refused = 1;
        LOG(&w->lg, CQ_LOG_WARN,
            "redis refuses CLIENT LIST (%s): a dead worker's jobs come back only when its "
            "lease (%s) expires",
            list->type == REDIS_REPLY_ERROR ? list->str : "not a string",
            audience_pick("--lease", "the lease setting"));
        freeReplyObject(list);
        return;
    }
    n = workers_clients(w, &wids, &ids);
    for (i = 0; i < n; i++) {
        if (ids[i] == NULL || strcmp(wids[i], w->wid) == 0) continue;
        /* Any one of its ids in the list means it lives. */
        if (rconn_clients_listed(list->str, ids[i]) || ngone == 32) continue;
        str_copy(gone[ngone].wid, sizeof gone[ngone].wid, wids[i]);
        gone[ngone].passes = 1;
        for (j = 0; j < w->ngone; j++)
            if (strcmp(w->gone[j].wid, wids[i]) == 0) gone[ngone].passes = w->gone[j].passes + 1;
        if (gone[ngone].passes >= 2) {
            redisReply *del = rconn_commandf(&w->ctl, "DEL %s",
                                             keys_worker_lease(&w->keys, wids[i], kl, sizeof kl));
            if (del != NULL) freeReplyObject(del);
            LOG(&w->lg, CQ_LOG_INFO,
                "worker %s: its connections to redis are gone (seen twice, a second apart): "
                "its process died; recovering its jobs now",
                wids[i]);
        } else {
            ngone++;
        }
    }
    memcpy(w->gone, gone, sizeof gone[0] * (size_t)ngone);
    w->ngone = ngone;
    for (i = 0; i < n; i++) {
        free(wids[i]);
        free(ids[i]);
    }
    free(wids);
    free(ids);
    freeReplyObject(list);
}

/* After a new control connection: what Redis lost, every worker lost (a restart, a
 * failover), and the others come back each in its own time, up to a reconnection backoff
 * later, their leases perhaps run out meanwhile (a failover through Sentinel takes 30 s by
 * default). Without a wait, the first worker back took those later ones for dead and ran
 * their jobs again: a second pass that found their connections gone, or a lease expired
 * while no primary was there to renew it on. So none is taken for dead until a lease (this
 * worker's --lease, as the others' are most often the same) has passed since this one came
 * back, and at least a reconnection backoff and two recovery passes. A worker that died
 * meanwhile is found after that, as one whose lease ran out would be. A connection made
 * again at once during a grace makes it longer, but not past two graces from the first one's
 * start: one lost again and again (a Redis that drops its clients or stalls past the command
 * timeout, a flaky link), each time before the grace ended, put the pass off for as long as
 * that went on, and a dead worker's jobs never came back. After an outage (keep_connected's
 * attempts failed), a grace starts afresh. */
static void recovery_grace(struct worker *w, long long now)
{
    long long grace = grace_ms(w), until;

    if (w->ctl.ctx == NULL || w->grace_of == w->ctl.connects) return;
    w->grace_of = w->ctl.connects;
    if (w->grace_since == 0) w->grace_since = now;
    until = now + grace;
    if (until > w->grace_since + 2 * grace) until = w->grace_since + 2 * grace;
    if (w->next_recover < until) w->next_recover = until;
    w->ngone = 0;
    LOG(&w->lg, CQ_LOG_DEBUG,
        "connected to redis again: the other workers have %.1fs to come back before a recovery pass",
        (double)(until - now) / 1000.0);
}

/* The value of field in the text of an INFO reply (lines "field:value") into out, "" where
 * there is no such line. */
static void info_field(const char *info, const char *field, char *out, size_t outlen)
{
    size_t n = strlen(field), len;
    const char *p = info;

    out[0] = '\0';
    while (p != NULL && *p != '\0') {
        if (strncmp(p, field, n) == 0 && p[n] == ':') {
            len = strcspn(p + n + 1, "\r\n");
            if (len >= outlen) len = outlen - 1;
            memcpy(out, p + n + 1, len);
            out[len] = '\0';
            return;
        }
        p = strchr(p, '\n');
        if (p != NULL) p++;
    }
}

/* The age in seconds of the oldest of ids (a worker's registered connections, as
 * rconn_clients_listed takes them) in list, the text of CLIENT LIST; -1 when none is there. */
static long long clients_age(const char *list, const char *ids)
{
    long long oldest = -1, age;
    const char *p, *line, *field;
    size_t linelen;

    for (p = ids; *p != '\0'; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
        char pat[40];
        int len = (int)strcspn(p, ",");
        if (len == 0 || len > 30) continue;
        snprintf(pat, sizeof pat, "\nid=%.*s ", len, p);
        line = strncmp(list, pat + 1, strlen(pat + 1)) == 0 ? list : strstr(list, pat);
        if (line == NULL) continue;
        if (line != list) line++;
        linelen = strcspn(line, "\n");
        field = strstr(line, " age=");
        if (field == NULL || field > line + linelen) continue;
        age = strtoll(field + 5, NULL, 10);
        if (age > oldest) oldest = age;
    }
    return oldest;
}

/* Whether a registered worker other than this one has none of its connections in CLIENT
 * LIST: 1, 0 when every one has (or there is none), -1 when Redis does not say (CLIENT LIST
 * refused, a connection lost). *oldest_ms: the age of the oldest connection of the others
 * that are there, -1 when none is. Workers without ids are left out, as find_gone does. */
static int census(struct worker *w, long long *oldest_ms)
{
    char **wids = NULL, **ids = NULL;
    redisReply *list = NULL;
    int n = workers_clients(w, &wids, &ids), i, others = 0, absent = 0;
    long long age;

    *oldest_ms = -1;
    for (i = 0; i < n; i++)
        if (ids[i] != NULL && strcmp(wids[i], w->wid) != 0) others++;
    if (others > 0) list = rconn_commandf(&w->ctl, "CLIENT LIST TYPE normal");
    if (n < 0 || (others > 0 && (list == NULL || list->type != REDIS_REPLY_STRING))) absent = -1;
    for (i = 0; i < n; i++) {
        if (absent >= 0 && ids[i] != NULL && strcmp(wids[i], w->wid) != 0) {
            age = clients_age(list->str, ids[i]);
            if (age < 0)
                absent = 1;
            else if (age > LLONG_MAX / 1000)
                *oldest_ms = LLONG_MAX; /* no age Redis gives */
            else if (age * 1000 > *oldest_ms)
                *oldest_ms = age * 1000;
        }
        free(wids[i]);
        free(ids[i]);
    }
    free(wids);
    free(ids);
    if (list != NULL) freeReplyObject(list);
    return absent;
}

/* recovery_grace waits after a connection made again. A worker that starts just after Redis
 * came back (a restart, a failover) makes its first connection, not one again, and took the
 * others, still on their way back, for dead about a second after it started: two passes
 * that missed their connections, or their leases run out during the outage. So at its first
 * connection it asks Redis how long it has served; where that is less than a grace and a
 * registered worker is not connected, it waits until the others have had a grace since
 * Redis came back, and at least a backoff and two passes from this connection. How long it
 * has served: INFO server's uptime, which a restart sets to 0; for a worker that started
 * while Redis loaded its data (connect_at_start), the time since it saw the load done, since
 * the uptime counts the load, when no one could register (one started after the load is
 * not covered: Redis keeps no trace of when it ended). A replica promoted (a failover,
 * REPLICAOF NO ONE: INFO replication's master_replid2 is not all zeros) does not say when,
 * in any version of Redis: for it, the age of the oldest connection of another registered worker,
 * made after the promotion (a worker connects to a primary only); none there, 0. So too
 * where INFO is refused (an ACL without +info, a proxy) or has no uptime, as long as
 * CLIENT LIST answers (without either, no wait: nothing says Redis came back). Both are
 * bounds from below, so the wait is not cut short; it is longer than needed where a
 * promoted node's workers are all young or all gone. A worker registered and connected
 * says that this start is no return from an outage: workers started together on a fresh
 * Redis wait for no one. INFO twice in one round trip, CLIENT LIST and the workers' ids,
 * once a process. */
static void start_grace(struct worker *w, long long now)
{
    long long grace = grace_ms(w), least = reconnect_cap(w) + 2 * RECOVER_MS, served = -1;
    long long oldest, until, secs;
    redisReply *server = NULL, *repl = NULL;
    char up[32] = "", replid2[64] = "", *end;
    int absent, promoted;

    if (rconn_appendf(&w->ctl, "INFO server") != 0 ||
        rconn_appendf(&w->ctl, "INFO replication") != 0)
        return;
    server = rconn_read(&w->ctl);
    if (server != NULL) repl = rconn_read(&w->ctl);
    if (server == NULL || repl == NULL) { /* the connection lost: nothing is known */
        LOG(&w->lg, CQ_LOG_DEBUG, "redis does not say how long it has served (INFO): %s",
            w->ctl.errstr);
        if (server != NULL) freeReplyObject(server);
        return;
    }
    if (server->type == REDIS_REPLY_STRING)
        info_field(server->str, "uptime_in_seconds", up, sizeof up);
    if (repl->type == REDIS_REPLY_STRING)
        info_field(repl->str, "master_replid2", replid2, sizeof replid2);
    secs = strtoll(up, &end, 10);
    /* An uptime that does not fit in milliseconds is none Redis gives. */
    if (end != up && secs >= 0 && secs <= LLONG_MAX / 1000) served = secs * 1000;
    /* INFO refused (an ACL without +info, a proxy), or without an uptime (or one before
     * its start: a clock set back): as on a promoted replica, the other workers'
     * connections say how long at least, where CLIENT LIST answers. */
    if (served < 0)
        LOG(&w->lg, CQ_LOG_DEBUG,
            "redis does not say how long it has served (INFO: %s): the other workers' "
            "connections say it",
            server->type == REDIS_REPLY_ERROR ? server->str : "no uptime_in_seconds");
    freeReplyObject(server);
    freeReplyObject(repl);
    /* Started while Redis loaded its data: it has served since this worker saw the load
     * done (a bound from below, as the others), where the uptime counts the load too, when
     * no one could register, and a load longer than a grace made it look long enough. */
    if (w->loaded_at != 0 && (served < 0 || now - w->loaded_at < served))
        served = now - w->loaded_at;
    promoted = replid2[0] != '\0' && replid2[strspn(replid2, "0")] != '\0';
    if (!promoted && served >= grace) return;
    absent = census(w, &oldest);
    /* Neither INFO nor CLIENT LIST: nothing says that Redis came back, and a wait at every
     * start (a fleet's --max-jobs workers) would be for nothing as often as not. */
    if (absent == 0 || (absent < 0 && served < 0 && !promoted)) return;
    if (promoted || served < 0)
        served = oldest < 0 ? 0 : served >= 0 && served < oldest ? served : oldest;
    if (served >= grace) return;
    until = now - served + grace;
    if (until < now + least) until = now + least;
    if (w->next_recover < until) w->next_recover = until;
    LOG(&w->lg, CQ_LOG_DEBUG,
        "redis has served%s for %.0fs%s, and a registered worker is not connected%s: the other "
        "workers have %.1fs to come back before a recovery pass",
        promoted ? " as a promoted replica (at least)" : "", (double)served / 1000.0,
        w->loaded_at != 0 ? " since it loaded its data" : "",
        absent < 0 ? " (or redis does not say)" : "", (double)(until - now) / 1000.0);
}

/* The timers: heartbeat, recovery of dead workers, due scheduled jobs. */
static void housekeeping(struct worker *w, long long now)
{
    char err[512], warn[512];
    long n;

    summary(w, now);
    if (w->down) return;
    recovery_grace(w, now);
    /* A new control connection (rconn reconnects by itself) is a new client id: register it
     * now, before another worker's find_gone sees the old one gone. */
    if (w->ctl.ctx != NULL && w->ctl_id_of != w->ctl.connects) w->next_hb = now;
    /* Each timer below is a round trip of its own, on a Redis that may be slow: the lines of
     * the jobs Redis recorded go out first, not after them. */
    if (now >= w->next_hb || now >= w->next_recover || now >= w->next_sched) log_recorded(w);
    if (now >= w->next_hb) {
        if (heartbeat(w, 0) != 0 && w->ctl.ctx != NULL && w->registered_on != w->ctl.connects) {
            /* A connection that rconn made again by itself (a command of the turn found the
             * old one dead), on which Redis refuses the registration (out of memory,
             * loading): the worker is not back, as keep_connected has it. Closed, so that
             * the outage is said, and the registration asked again until it goes in. */
            rconn_close(&w->ctl);
            str_copy(w->ctl.errstr, sizeof w->ctl.errstr, w->last_error);
            w->ctl.lost = 0; /* a refusal: the line says that the worker reconnects */
        }
        w->next_hb = now + HEARTBEAT_MS;
    }
    if (now >= w->next_recover && w->ctl.ctx) {
        w->grace_since = 0;
        find_gone(w);
        n = queue_recover(&w->ctl, &w->keys, NULL, warn, sizeof warn, err, sizeof err);
        if (n < 0)
            report_error(w, err);
        else if (warn[0] != '\0')
            report_error(w, warn);
        if (n > 0) {
            LOG(&w->lg, CQ_LOG_WARN, "recovered %ld job%s from dead workers", n, n == 1 ? "" : "s");
            w->idle = 0; /* in the queues now: a take finds them, where --burst stopped */
        }
        w->recovered_once = 1;
        w->next_recover = now + RECOVER_MS;
    }
    if (now >= w->next_sched && w->ctl.ctx) {
        check_cancels(w);
        /* With a queue paused, take every tick anyway: that is how a resume is seen. */
        if (w->paused != 0) w->idle = 0;
        n = queue_schedule_due(&w->ctl, &w->keys, time_now(), 1000, warn, sizeof warn, err,
                               sizeof err);
        if (n < 0)
            report_error(w, err);
        else if (warn[0] != '\0')
            report_error(w, warn);
        if (n > 0) w->idle = 0;
        w->next_sched = now + (n >= 1000 ? 0 : SCHEDULE_MS);
    }
}

/* Move what the executors finished to the front of pending. */
static void collect_done(struct worker *w)
{
    struct task *done, *tail;

    pthread_mutex_lock(&w->mu);
    done = w->done;
    w->done = NULL;
    w->ndone = 0;
    pthread_mutex_unlock(&w->mu);
    if (done == NULL) return;
    for (tail = done; tail->next; tail = tail->next) continue;
    tail->next = w->pending;
    w->pending = done;
}

/* Slots free once pending outcomes are applied (they go in the same pipeline as the take),
 * with inflight (NULL: none) a round trip sent and not read yet. */
static int free_slots(const struct worker *w, const struct trip *inflight)
{
    const struct task *t;
    int n = w->cfg->concurrency - w->outstanding;
    long taken = w->taken_total;

    for (t = w->pending; t; t = t->next)
        if (!t->refused && !t->aborted) n++;
    if (inflight != NULL) { /* as if its outcomes applied and its take were full */
        n += inflight->frees - (int)inflight->take_max;
        taken += (long)inflight->take_max;
    }
    if (w->cfg->max_jobs > 0 && w->cfg->max_jobs - taken < n) n = (int)(w->cfg->max_jobs - taken);
    return n;
}

/* Whether the dispatcher's turn is wanted for something other than jobs: a timer, a summary
 * line, a signal (turn). */
static int turn_due(const struct worker *w, long long now)
{
    return stops_asked(w) != 0 || now >= w->next_hb || now >= w->next_recover ||
        now >= w->next_sched ||
        (w->cfg->summary_interval > 0 &&
         (double)(now - w->period.since) / 1000.0 >= w->cfg->summary_interval);
}

/* What the next round trip would carry now, with cur in flight: *want jobs to take and the
 * outcomes pending, with those of the *done jobs that ended and are not collected yet
 * (returned). */
static size_t next_size(struct worker *w, const struct trip *cur, long long now, size_t *want,
                        int *done)
{
    const struct task *t;
    size_t n;
    int slots;

    pthread_mutex_lock(&w->mu);
    *done = w->ndone;
    pthread_mutex_unlock(&w->mu);
    slots = free_slots(w, cur) + *done;
    *want = 0;
    if (!w->idle && slots > 0 && now >= w->hold_until)
        *want = (size_t)slots < TAKE_BATCH ? (size_t)slots : TAKE_BATCH;
    for (n = (size_t)*done, t = w->pending; t; t = t->next) n++;
    return n;
}

/* Before cur's replies are read: wait for them, or for enough jobs to end that the next round
 * trip (their outcomes, and a take for the slots they free) is worth sending first. Redis
 * then runs it while the dispatcher reads and hands out cur's jobs: with one round trip at a
 * time the two take turns, each idle while the other works (docs/BENCHMARKS.md). Worth it
 * means at least half the slots' worth (a smaller batch costs Redis more a job). Not while
 * housekeeping is due, whose commands need a connection with no reply unread, nor when cur's
 * replies were read already (ctl_quiet): its jobs are handed out at once. The jobs that end
 * meanwhile are counted where they are (done) and collected only for a trip that goes. Returns
 * 1 when next was sent. */
static int send_next(struct worker *w, const struct trip *cur, struct trip *next)
{
    size_t want, n, min = (size_t)w->cfg->concurrency / 2;
    long long now;
    int done;

    if (min < 1) min = 1;
    for (;;) {
        int need, enough, replied;
        now = time_mono_ms();
        if (cur->received || !cur->ok || w->ctl.ctx == NULL || reconcile_due(w) || w->draining ||
            turn_due(w, now))
            return 0;
        n = next_size(w, cur, now, &want, &done);
        if (want + n >= min) break;
        need = (int)(min - want - n); /* each job that ends adds one at least */
        pthread_mutex_lock(&w->mu);
        enough = w->ndone - done >= need;
        if (!enough) w->wake_done = done + need; /* the executor that ends that one writes efd */
        pthread_mutex_unlock(&w->mu);
        if (enough) continue;
        replied = rconn_poll(&w->ctl, w->efd, 20);
        pthread_mutex_lock(&w->mu);
        w->wake_done = 0;
        pthread_mutex_unlock(&w->mu);
        if (w->efd >= 0) {
            eventfd_t v;
            (void)eventfd_read(w->efd, &v);
        }
        if (replied) return 0; /* the jobs that ended stay in done: the next turn takes them */
    }
    collect_done(w);
    n = next_size(w, cur, now, &want, &done);
    trip_send(w, next, want);
    w->trips_second++;
    return 1;
}

/* Apply outcomes and take more in one round trip, and go on with a second one in flight
 * while there is enough to send (send_next). Returns 1 when there is more to do at once (a
 * full take, or starts to mark), else 0. Nothing is left unread on return. */
static int dispatch(struct worker *w)
{
    struct trip trips[2], *cur = &trips[0], *next = &trips[1], *sent;
    size_t want = 0;
    int ready, took, took_any = 0, more = 0, slots = free_slots(w, NULL);

    if (w->ctl.ctx != NULL && reconcile_due(w)) reconcile(w);
    if (w->ctl.ctx == NULL || reconcile_due(w)) return 0;
    pthread_mutex_lock(&w->mu);
    ready = w->ready;
    if (ready) {
        /* The watcher that fired waits for this before it blocks again. */
        w->ready = 0;
        pthread_cond_broadcast(&w->watch);
    }
    pthread_mutex_unlock(&w->mu);
    if (!w->draining && slots > 0 && (!w->idle || ready) && time_mono_ms() >= w->hold_until)
        want = (size_t)slots < TAKE_BATCH ? (size_t)slots : TAKE_BATCH;
    if (want == 0 && w->pending == NULL && starts_due(w, time_now()) == 0) return 0;
    trip_send(w, cur, want);
    for (;;) {
        sent = send_next(w, cur, next) ? next : NULL;
        w->unread = sent;
        took = trip_handle(w, cur);
        w->unread = NULL;
        if (took > 0) took_any = 1;
        /* A take Redis refused (the paused set of another type, an ACL without one of its
         * commands) is refused again: held off a while, the watchers too (turn), where an
         * idle worker's watcher, its queue not empty, woke it at once, again and again
         * (18,000 refused takes a second). The connection lost, reconnecting paces it. */
        if (cur->take_max > 0 && cur->taken < 0 && w->ctl.ctx != NULL)
            w->hold_until = time_mono_ms() + REFUSED_HOLD_MS;
        if (took >= 0 && cur->take_max > 0) {
            w->idle = (size_t)took < cur->take_max;
            more = !w->idle;
        }
        if (sent == NULL) break;
        pthread_mutex_lock(&w->mu);
        wake_executors(w);
        pthread_mutex_unlock(&w->mu);
        next = cur;
        cur = sent;
    }
    /* Jobs refused when taken (by any of the round trips) have their outcomes recorded on the
     * next turn, without waiting; start marks wait for their time (wait_for_work). */
    if (w->pending != NULL) more = more || took_any;
    return more;
}

/* The tasks that ended (or were refused) and whose outcomes Redis has not recorded yet: how
 * many, and in ids the first few job ids, for a message. */
static int unrecorded(const struct worker *w, char *ids, size_t len)
{
    const struct task *t;
    size_t used = 0;
    int n = 0;

    ids[0] = '\0';
    for (t = w->pending; t != NULL; t = t->next) {
        if (t->aborted || t->superseded) continue;
        if (n < 5 && used < len)
            used += (size_t)snprintf(ids + used, len - used, "%s%s", n ? ", " : "",
                                     t->job != NULL ? t->job->id : "(a record without an id)");
        n++;
    }
    if (n > 5 && used < len) snprintf(ids + used, len - used, ", ...");
    return n;
}

/* Jobs whose handlers still run: taken, not yet ended. */
static int still_running(const struct worker *w)
{
    const struct task *t;
    int n = w->outstanding;

    for (t = w->pending; t != NULL; t = t->next)
        if (!t->aborted && !t->refused) n--;
    return n;
}

/* Whether the loop ends now: max-jobs done, burst drained, or a drain finished or timed out.
 * A drain whose jobs have all ended waits on, up to its deadline, only while Redis is down:
 * to record their outcomes when it is back, so that they do not run again. */
static int should_stop(struct worker *w, long long now)
{
    int quiet = w->outstanding == 0 && w->pending == NULL && w->nstarts == 0;
    char ids[256];

    /* Not before a first recovery pass either (below): a worker that lives less than the
     * grace start_grace holds it back for, on a promoted replica where no other is
     * connected, ran none, and where every worker lived as short (--max-jobs 1 and short
     * jobs) a dead worker's jobs stayed in flight for good. Redis lost, there is no pass to
     * wait for. */
    if (w->cfg->max_jobs > 0 && w->taken_total >= w->cfg->max_jobs && quiet &&
        (w->recovered_once || w->down)) {
        LOG(&w->lg, CQ_LOG_INFO, "done %ld jobs (%s)", w->taken_total,
            audience_pick("--max-jobs", "the max-jobs setting"));
        return 1;
    }
    /* Not before a first recovery pass, which a worker started just after Redis came back
     * holds back for a grace (start_grace): --burst drains the dead workers' jobs too, as
     * it did when that pass ran at once. Nor while a worker whose connections a pass found
     * gone waits for the next to be taken for dead (find_gone: two passes a second apart),
     * where one started just after a SIGKILL left the dead worker's jobs in flight until
     * its lease ran out and another worker came. */
    if (w->cfg->burst && w->idle && quiet && !w->down && w->recovered_once && w->ngone == 0) {
        unsigned long long paused;
        pthread_mutex_lock(&w->mu);
        paused = w->paused;
        pthread_mutex_unlock(&w->mu);
        /* A paused queue's jobs are not taken, empty or not: not "empty" then. */
        LOG(&w->lg, CQ_LOG_INFO, "queues empty%s, nothing running: exiting (%s)",
            paused ? " or paused" : "", audience_pick("--burst", "the burst setting"));
        return 1;
    }
    if (w->draining && !quiet && w->down && !w->drain_noted && still_running(w) == 0 &&
        now < w->drain_deadline) {
        int n = unrecorded(w, ids, sizeof ids);
        w->drain_noted = 1;
        LOG(&w->lg, CQ_LOG_WARN,
            "stopping: every job has ended; waiting up to %.0fs for redis to record %d "
            "outcome%s (%s)",
            (double)(w->drain_deadline - now) / 1000.0, n, n == 1 ? "" : "s", ids);
    }
    if (w->draining && (quiet || now >= w->drain_deadline)) {
        int running = still_running(w);
        if (running > 0)
            LOG(&w->lg, CQ_LOG_WARN, "shutdown timeout: stopping %d job%s still running", running,
                running == 1 ? "" : "s");
        return 1;
    }
    return 0;
}

/* Sleep until a completion, a watcher, a signal (EINTR wakes nothing here, so the wait is
 * short) or the next timer. */
static void wait_for_work(struct worker *w)
{
    struct timespec ts;
    long long now = time_mono_ms();
    long long wait_ms = w->next_sched - now;

    if (w->next_hb - now < wait_ms) wait_ms = w->next_hb - now;
    if (w->nstarts > 0) {
        /* the oldest start mark's time, rounded up */
        long long due =
            (long long)((w->starts[0]->taken_at + START_MARK_S - time_now()) * 1000) + 1;
        if (due < wait_ms) wait_ms = due;
    }
    if (w->down) wait_ms = w->next_connect - now;
    if (wait_ms > 100) wait_ms = 100;
    if (wait_ms < 1) wait_ms = 1;
    pthread_mutex_lock(&w->mu);
    wake_executors(w);
    if (w->todo != NULL && (w->idle_executors > 0 || w->executors_started < w->cfg->concurrency))
        wait_ms = 0; /* back within WAKE_AFTER_US, to wake or make an executor */
    pthread_mutex_unlock(&w->mu);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += wait_ms / 1000;
    ts.tv_nsec += wait_ms > 0 ? (wait_ms % 1000) * 1000000L : WAKE_AFTER_US * 1000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    if (w->done == NULL && !w->ready) {
        w->dispatcher_waiting = 1;
        pthread_cond_timedwait(&w->wake, &w->mu, &ts);
        w->dispatcher_waiting = 0;
    }
    pthread_mutex_unlock(&w->mu);
}

/* One turn of the dispatcher. Returns 1 to leave the loop. */
static int turn(struct worker *w)
{
    long long now = time_mono_ms();
    int more;

    if (check_signals(w, now)) return 1;
    keep_connected(w, now);
    housekeeping(w, now);
    collect_done(w);
    more = dispatch(w);
    set_watching(w,
                 w->idle && !w->draining && w->ctl.ctx != NULL &&
                     w->cfg->concurrency - w->outstanding > 0 && now >= w->hold_until);
    if (!more) log_recorded(w);
    if (should_stop(w, now)) return 1;
    pthread_mutex_lock(&w->mu);
    wake_executors(w);
    pthread_mutex_unlock(&w->mu);
    if (!more) wait_for_work(w);
    return 0;
}

/* Tell running handlers to give up (a command's group gets TERM, then KILL) and give them
 * STOP_GRACE_MS to do so, so that no command outlives the worker nor runs on while another
 * worker starts its job again. Returns 1 when every executor is idle. */
static int stop_handlers(struct worker *w)
{
    struct timespec ts;
    int stopped;

    stop_all(w);
    stop_watchers(w);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += STOP_GRACE_MS / 1000;
    pthread_mutex_lock(&w->mu);
    while (w->running > 0 || w->todo != NULL)
        if (pthread_cond_timedwait(&w->quiet, &w->mu, &ts) != 0) break;
    stopped = w->running == 0 && w->todo == NULL;
    pthread_mutex_unlock(&w->mu);
    collect_done(w);
    return stopped;
}

/* Record what finished, put back the rest, deregister. Returns the exit code. */
static int drain(struct worker *w)
{
    char err[512], warn[512];
    int tries, unclean = 0;
    long n;

    if (w->pending != NULL || w->nstarts > 0) {
        char ids[256];
        int ended = unrecorded(w, ids, sizeof ids);

        if (w->ctl.ctx == NULL) rconn_connect(&w->ctl);
        if (cycle(w, 0, err, sizeof err) < 0 && ended > 0) {
            /* Why: the round trip's error, where Redis refused the outcomes (a key of another
             * type, an ACL) with the connection up, which rconn's errstr does not hold. Up,
             * the deregistration below puts the jobs back at once. */
            LOG(&w->lg, CQ_LOG_ERROR,
                "could not record the outcome%s of %d ended job%s (%s): %s; %s run again%s",
                ended == 1 ? "" : "s", ended, ended == 1 ? "" : "s", ids, err,
                ended == 1 ? "it will" : "they will",
                w->ctl.ctx == NULL ? " once redis is back and this worker's lease has expired"
                                   : "");
            unclean = 1;
        }
    }
    log_recorded(w);
    hist_flush(w);
    for (tries = 0; tries < 3; tries++) {
        /* Redis back meanwhile: record what ended before recovery puts it back to run. */
        if (tries > 0 && w->pending != NULL && cycle(w, 0, err, sizeof err) == 0) {
            log_recorded(w);
            LOG(&w->lg, CQ_LOG_INFO, "redis is back: the ended jobs' outcomes are recorded");
            unclean = 0;
        }
        n = queue_recover(&w->ctl, &w->keys, w->wid, warn, sizeof warn, err, sizeof err);
        if (n >= 0) {
            if (n > 0)
                LOG(&w->lg, CQ_LOG_INFO, "put back %ld unfinished job%s", n, n == 1 ? "" : "s");
            if (warn[0] == '\0') return unclean;
            LOG(&w->lg, CQ_LOG_ERROR, "%s", warn);
            return 1;
        }
        sleep_ms(200);
    }
    LOG(&w->lg, CQ_LOG_ERROR,
        "could not deregister: %s; live workers will recover this "
        "worker's jobs when its lease expires",
        err);
    return 1;
}

int worker_run(const struct worker_config *cfg, volatile sig_atomic_t *signals, int *abandoned)
{
    int rc, stopped;
    struct worker *w = worker_start(cfg, signals, &rc);

    if (w == NULL) return rc;
    while (!turn(w)) continue;
    stopped = stop_handlers(w);
    rc = drain(w);
    LOG(&w->lg, CQ_LOG_DEBUG,
        "%lu round trips to redis for jobs, %lu of them sent before the one ahead was read",
        w->trips_total, w->trips_second);
    LOG(&w->lg, CQ_LOG_INFO, "worker %s stopped", w->wid);
    /* Executors still running a handler that ignores the stop are abandoned: their jobs are
     * back in the queues and the process is about to exit. */
    *abandoned = !stopped;
    if (!stopped) {
        int running;
        pthread_mutex_lock(&w->mu);
        running = w->running;
        pthread_mutex_unlock(&w->mu);
        LOG(&w->lg, CQ_LOG_WARN,
            "%d job%s did not stop within %d s; left running as the "
            "worker exits (they are back in their queues)",
            running, running == 1 ? "" : "s", STOP_GRACE_MS / 1000);
    }
    worker_free(w, stopped);
    return rc;
}

/* ---- cq_worker: the embeddable face of the above (cq.h) ----------------------------- */

#define WORKER_QUEUES_MAX 64

struct cq_worker {
    struct worker_config cfg;
    struct cq_registry *reg;
    char *url, *prefix, *root;
    char *queues[WORKER_QUEUES_MAX];
    size_t nqueues;
    void **plugins; /* dlopen handles, closed by cq_worker_free */
    size_t nplugins;
    int abandoned; /* handlers that ignored the stop still run: keep what they
                                     use (the registry, plugins) mapped until the exit */
    volatile sig_atomic_t signals;
};

cq_worker *cq_worker_new(void)
{
    cq_worker *w = xcalloc(1, sizeof *w);

    w->cfg.concurrency = 64;
    w->cfg.shutdown_timeout = 25.0;
    w->cfg.max_recoveries = 3;
    w->cfg.retry_base = 1.0;
    w->cfg.ttls.result_ttl = 500;
    w->cfg.ttls.failure_ttl = 365L * 24 * 3600;
    w->cfg.log_level = CQ_LOG_INFO;
    w->cfg.summary_interval = 60.0;
    w->cfg.lease = 10.0;
    w->reg = registry_new();
    /* Adding two well-formed functions to an empty registry cannot fail. */
    registry_add_builtins(w->reg);
    return w;
}

cq_registry *cq_worker_registry(cq_worker *w)
{
    return w->reg;
}

void cq_worker_free(cq_worker *w)
{
    size_t i;

    if (w == NULL || w->abandoned) return;
    registry_free(w->reg);
    for (i = 0; i < w->nplugins; i++) plugin_close(w->plugins[i]);
    free(w->plugins);
    for (i = 0; i < w->nqueues; i++) free(w->queues[i]);
    free(w->url);
    free(w->prefix);
    free(w->root);
    free(w);
}

static int set_string(char **dst, const char *value)
{
    free(*dst);
    *dst = xstrdup(value);
    return 0;
}

/* A setting's value of each kind: 0, or -1 with err "NAME: 'VALUE' is not ...". */
static int set_long(const char *name, const char *value, long min, long max, long *out, char *err,
                    size_t errlen)
{
    char msg[256];

    if (parse_long_msg(value, min, max, out, msg, sizeof msg) == 0) return 0;
    err_set(err, errlen, "%s: %s", name, msg);
    return -1;
}

static int set_duration(const char *name, const char *value, double *out, char *err, size_t errlen)
{
    char msg[256];

    if (parse_duration_msg(value, out, msg, sizeof msg) == 0) return 0;
    err_set(err, errlen, "%s: %s", name, msg);
    return -1;
}

/* A status TTL: -1 (keep), or a duration of whole seconds up to 100 years (500, 5m, 30d;
 * 0 = drop at once), as the other time settings take. */
static int set_ttl(const char *name, const char *value, long *out, char *err, size_t errlen)
{
    double d;

    if (strcmp(value, "-1") == 0) {
        *out = -1;
        return 0;
    }
    if (parse_duration_unbounded(value, &d) != 0) {
        err_set(err, errlen,
                "%s: '%s' is not a duration such as 500s, 5m or 30d (0 = drop at once, -1 = keep)",
                name, value);
        return -1;
    }
    /* Over 100 years (parse_duration's bound), or not whole seconds: in milliseconds first,
     * since 4.1m is 246 s, though 4.1 * 60 is not exactly 246. */
    if (d > DURATION_MAX || llround(d * 1000) % 1000 != 0) {
        err_set(err, errlen, "%s: '%s' is not whole seconds up to 100 years", name, value);
        return -1;
    }
    *out = (long)llround(d);
    return 0;
}

static int set_choice(const char *name, const char *value, const char *const *choices, size_t n,
                      int *out, char *err, size_t errlen)
{
    char msg[256];

    if (parse_choice(value, choices, n, out, msg, sizeof msg) == 0) return 0;
    err_set(err, errlen, "%s: %s", name, msg);
    return -1;
}

int cq_worker_set(cq_worker *w, const char *name, const char *value, char *err, size_t errlen)
{
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    static const char *const formats[] = {"text", "json"};
    struct worker_config *c = &w->cfg;
    long v;

    if (name == NULL || value == NULL) {
        err_set(err, errlen, "cq_worker_set: no name or value");
        return -1;
    }
    if (strcmp(name, "url") == 0) {
        struct rconn_url u;
        if (*value == '\0') { /* none, as cq_client_new takes "": $CQ_REDIS_URL, else local */
            free(w->url);
            w->url = NULL;
            return 0;
        }
        if (rconn_parse_url(value, &u, err, errlen) != 0) return -1;
        return set_string(&w->url, value);
    }
    if (strcmp(name, "prefix") == 0) {
        struct keys k;
        if (keys_init(&k, value, err, errlen) != 0) return -1;
        return set_string(&w->prefix, value);
    }
    if (strcmp(name, "root") == 0) {
        char path[PATH_MAX];
        if (realpath(value, path) == NULL) {
            err_set(err, errlen, "root '%s': %s", value, strerror(errno));
            return -1;
        }
        return set_string(&w->root, path);
    }
    if (strcmp(name, "concurrency") == 0) {
        if (set_long(name, value, 1, 4096, &v, err, errlen) != 0) return -1;
        c->concurrency = (int)v;
    } else if (strcmp(name, "burst") == 0) {
        if (set_long(name, value, 0, 1, &v, err, errlen) != 0) return -1;
        c->burst = (int)v;
    } else if (strcmp(name, "max-jobs") == 0) {
        return set_long(name, value, 0, LONG_MAX, &c->max_jobs, err, errlen);
    } else if (strcmp(name, "max-recoveries") == 0) {
        if (set_long(name, value, 0, 1000000, &v, err, errlen) != 0) return -1;
        c->max_recoveries = (int)v;
    } else if (strcmp(name, "shutdown-timeout") == 0) {
        return set_duration(name, value, &c->shutdown_timeout, err, errlen);
    } else if (strcmp(name, "retry-base") == 0) {
        return set_duration(name, value, &c->retry_base, err, errlen);
    } else if (strcmp(name, "lease") == 0) {
        double d;
        if (set_duration(name, value, &d, err, errlen) != 0) return -1;
        if (d < 3 || d > 3600) {
            err_set(err, errlen, "%s: '%s' is not from 3s (a heartbeat is every 2s) to 1h", name,
                    value);
            return -1;
        }
        c->lease = d;
    } else if (strcmp(name, "summary-interval") == 0) {
        return set_duration(name, value, &c->summary_interval, err, errlen);
    } else if (strcmp(name, "result-ttl") == 0) {
        return set_ttl(name, value, &c->ttls.result_ttl, err, errlen);
    } else if (strcmp(name, "failure-ttl") == 0) {
        return set_ttl(name, value, &c->ttls.failure_ttl, err, errlen);
    } else if (strcmp(name, "log-level") == 0) {
        return set_choice(name, value, levels, 4, &c->log_level, err, errlen);
    } else if (strcmp(name, "log-format") == 0) {
        return set_choice(name, value, formats, 2, &c->log_json, err, errlen);
    } else {
        /* The names, for a program's author who guessed one: as cq.h lists them. */
        err_set(err, errlen,
                "unknown setting '%s': the settings are url, prefix, root, concurrency, burst, "
                "max-jobs, max-recoveries, shutdown-timeout, retry-base, lease, summary-interval, "
                "result-ttl, failure-ttl, log-level and log-format",
                name);
        return -1;
    }
    return 0;
}

int cq_worker_add_queue(cq_worker *w, const char *queue, char *err, size_t errlen)
{
    if (keys_check_name("queue", queue, err, errlen) != 0) return -1;
    if (w->nqueues == WORKER_QUEUES_MAX) {
        err_set(err, errlen, "queue '%s': at most %d queues", queue, WORKER_QUEUES_MAX);
        return -1;
    }
    w->queues[w->nqueues++] = xstrdup(queue);
    return 0;
}

int cq_worker_load(cq_worker *w, const char *path, char *err, size_t errlen)
{
    void *h = plugin_load(w->reg, path, err, errlen);

    if (h == NULL) return -1;
    w->plugins = xrealloc(w->plugins, sizeof *w->plugins * (w->nplugins + 1));
    w->plugins[w->nplugins++] = h;
    return 0;
}

int cq_worker_add_command(cq_worker *w, const char *spec, char *err, size_t errlen)
{
    if (spec == NULL) {
        err_set(err, errlen, "cq_worker_add_command: no spec (NAME=PROGRAM)");
        return -1;
    }
    return command_add(w->reg, spec, err, errlen);
}

int cq_command_check(const char *spec, char *err, size_t errlen)
{
    if (spec == NULL) {
        err_set(err, errlen, "cq_command_check: no spec (NAME=PROGRAM)");
        return -1;
    }
    return command_check(NULL, spec, err, errlen);
}

int cq_worker_check_command(cq_worker *w, const char *spec, char *err, size_t errlen)
{
    if (spec == NULL) {
        err_set(err, errlen, "cq_worker_check_command: no spec (NAME=PROGRAM)");
        return -1;
    }
    return command_check(w->reg, spec, err, errlen);
}

int cq_worker_run(cq_worker *w)
{
    static const char *const default_queues[] = {"default"};
    char cwd[PATH_MAX];
    int rc;

    w->cfg.url = w->url; /* NULL: $CQ_REDIS_URL, else the local default (worker_start) */
    w->cfg.prefix = w->prefix;
    if (w->nqueues > 0) {
        w->cfg.queues = (const char *const *)w->queues;
        w->cfg.nqueues = w->nqueues;
    } else {
        w->cfg.queues = default_queues;
        w->cfg.nqueues = 1;
    }
    if (w->root == NULL && getcwd(cwd, sizeof cwd) != NULL) w->root = xstrdup(cwd);
    w->cfg.root = w->root;
    w->cfg.reg = w->reg;
    /* A stop asked before the run (a SIGTERM while plugins load) stops this run; the next
     * run starts afresh. */
    rc = worker_run(&w->cfg, &w->signals, &w->abandoned);
    __atomic_store_n(&w->signals, 0, __ATOMIC_RELAXED);
    return rc;
}

void cq_worker_stop(cq_worker *w)
{
    /* Atomic, so that another thread may call it too; a signal handler sees no lock. */
    sig_atomic_t n = __atomic_load_n(&w->signals, __ATOMIC_RELAXED);
    while (
        n < 2 &&
        !__atomic_compare_exchange_n(&w->signals, &n, n + 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        continue;
}

const char *cq_version(void)
{
    return CQ_VERSION;
}
