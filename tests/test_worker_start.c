/* test_worker_start.c - a worker that cannot start frees everything it made and leaves no
 * registration behind, whichever step failed: a bad URL or prefix, no Redis, or a thread that
 * cannot be made (each executor and watcher in turn, through the worker_thread_create seam).
 * An executor that cannot be made later, as jobs wait, leaves the worker running its jobs on
 * the threads it has; a job waiting there for an executor that is taken again (recovered
 * while the worker was out of touch) runs once, from its new take. The ASan pass of
 * scripts/test turns any leak into a failed run; Redis is read back for the registration and
 * the jobs' statuses. */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "cq/cq.h"

#include "check.h"
#include "redis_server.h"
#include "registry.h"
#include "worker.h"

static int calls, fail_at; /* the fail_at-th thread (from 1) cannot be made */
static int fail_from;      /* nor, when not 0, any from the fail_from-th on */

static int failing_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
    ++calls;
    if (calls == fail_at || (fail_from > 0 && calls >= fail_from)) return EAGAIN;
    return pthread_create(t, a, fn, arg);
}

static char url[256];
static const char *const queues[] = {"q1", "q2"};

static void config(struct worker_config *c, struct cq_registry *reg)
{
    memset(c, 0, sizeof *c);
    c->url = url;
    c->prefix = "cq:";
    c->queues = queues;
    c->nqueues = 2;
    c->concurrency = 3;
    c->burst = 1;
    c->shutdown_timeout = 1;
    c->retry_base = 1;
    c->root = "/tmp";
    c->reg = reg;
    c->ttls.result_ttl = 500;
    c->ttls.failure_ttl = 500;
    c->log_level = -1; /* quiet: the failures are expected */
}

static long long workers(void)
{
    redisReply *rep = rconn_commandf(&R, "SCARD cq:workers");
    long long n = rep != NULL && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;

    if (rep != NULL) freeReplyObject(rep);
    return n;
}

static void test_bad_settings(void)
{
    struct cq_registry *reg = registry_new();
    struct worker_config c;
    volatile sig_atomic_t sig = 0;
    int abandoned = 0;

    config(&c, reg);
    c.url = "http://nowhere";
    CHECK_EQ(worker_run(&c, &sig, &abandoned), 1);
    config(&c, reg);
    c.prefix = "bad prefix";
    CHECK_EQ(worker_run(&c, &sig, &abandoned), 1);
    config(&c, reg);
    c.url = "unix:///nonexistent/redis.sock";
    CHECK_EQ(worker_run(&c, &sig, &abandoned), 1);
    CHECK_EQ(abandoned, 0);
    CHECK_EQ(workers(), 0);
    registry_free(reg);
}

/* The executors a worker of -c c starts with: two a CPU. */
static int first_executors_of(int c)
{
    int cpus = cpus_usable();
    return 2 * cpus < c ? 2 * cpus : c;
}

static int first_executors(void)
{
    return first_executors_of(3);
}

/* The first executors and 2 watchers: failing each thread in turn covers every spot. */
static void test_thread_failures(void)
{
    struct cq_registry *reg = registry_new();
    struct worker_config c;
    volatile sig_atomic_t sig = 0;
    int abandoned = 0, threads = first_executors() + 2;

    registry_add_builtins(reg);
    worker_thread_create = failing_create;
    for (fail_at = 1; fail_at <= threads; fail_at++) {
        calls = 0;
        config(&c, reg);
        CHECK_EQ(worker_run(&c, &sig, &abandoned), 1);
        CHECK_EQ(calls, fail_at);
        CHECK_EQ(workers(), 0);
    }
    /* And with every thread made, the same worker starts and (burst, empty queues) stops. */
    fail_at = 0;
    calls = 0;
    config(&c, reg);
    CHECK_EQ(worker_run(&c, &sig, &abandoned), 0);
    CHECK_EQ(calls, threads);
    CHECK_EQ(abandoned, 0);
    CHECK_EQ(workers(), 0);
    worker_thread_create = pthread_create;
    registry_free(reg);
}

static long long finished(const char *id)
{
    redisReply *rep = rconn_commandf(&R, "HGET cq:job:%s status", id);
    long long ok =
        rep != NULL && rep->type == REDIS_REPLY_STRING && strcmp(rep->str, "finished") == 0;

    if (rep != NULL) freeReplyObject(rep);
    return ok;
}

/* Jobs of "gather": each holds its executor until gather_target of them run at once, or for
 * 10 s; gather_most is the most that ran at once. The control's one wave, seen as it
 * happens, where a time bound (under 0.55 s for jobs of sleep 0.3) failed when a loaded
 * machine was slow to start the worker or its executors. */
static pthread_mutex_t gather_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gather_cv = PTHREAD_COND_INITIALIZER;
static int gather_target, gather_in, gather_most;

static int gather_handler(cq_job *job, void *udata)
{
    struct timespec until;

    (void)job;
    (void)udata;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&gather_mu);
    if (++gather_in > gather_most) gather_most = gather_in;
    pthread_cond_broadcast(&gather_cv);
    while (gather_most < gather_target &&
           pthread_cond_timedwait(&gather_cv, &gather_mu, &until) == 0)
        continue;
    gather_in--;
    pthread_mutex_unlock(&gather_mu);
    return 0;
}

/* A worker of -c 2F (F: the executors it starts with) whose later executors cannot be made,
 * and 2F jobs that hold their threads (sleep 0.3): each is run, on the F executors there are
 * (which try again each second), in two waves where 2F executors would have run one. */
#define LATER_MAX 256

static void test_later_thread_failure(void)
{
    struct cq_registry *reg = registry_new();
    struct worker_config c;
    volatile sig_atomic_t sig = 0;
    int abandoned = 0, i, first = first_executors_of(LATER_MAX), n = 2 * first;
    cq_jobspec *jobs[2 * LATER_MAX];
    cq_client *cl;
    char err[512];
    const char *args[] = {"0.3"};
    double t0, took;

    registry_add_builtins(reg);
    REQUIRE(cq_function_add(reg, "gather", "", gather_handler, NULL) != NULL);
    cl = cq_client_new(url, "cq:", err, sizeof err);
    CHECK(cl != NULL);
    for (i = 0; i < n; i++) {
        jobs[i] = cq_jobspec_new_argv("sleep", args, 1);
        cq_jobspec_set_queue(jobs[i], "q1");
    }
    CHECK_EQ(cq_enqueue(cl, jobs, (size_t)n, CQ_CHECK, err, sizeof err), n);
    worker_thread_create = failing_create;
    calls = 0;
    fail_at = 0;
    fail_from = first + 2 + 1; /* every executor made later */
    config(&c, reg);
    c.concurrency = n;
    t0 = time_now();
    CHECK_EQ(worker_run(&c, &sig, &abandoned), 0);
    took = time_now() - t0;
    fail_from = 0;
    CHECK(calls >= first + 2 + 1); /* it tried */
    CHECK(took >= 0.6 - 0.05);     /* two waves */
    for (i = 0; i < n; i++) {
        CHECK(finished(cq_jobspec_id(jobs[i])));
        cq_jobspec_free(jobs[i]);
    }
    /* The control: as many jobs where every executor can be made run in one wave (the
     * executors grow to -c as they wait on held ones): all 2F at once, where F would run
     * at a time on a worker that made no more (each then held the 10 s, and the check
     * fails). */
    for (i = 0; i < n; i++) {
        jobs[i] = cq_jobspec_new_argv("gather", NULL, 0);
        cq_jobspec_set_queue(jobs[i], "q1");
    }
    CHECK_EQ(cq_enqueue(cl, jobs, (size_t)n, CQ_NO_CHECK, err, sizeof err), n);
    calls = 0;
    gather_target = n;
    gather_most = 0;
    CHECK_EQ(worker_run(&c, &sig, &abandoned), 0);
    CHECK_EQ(calls, n + 2);   /* every executor, and the two watchers */
    CHECK_EQ(gather_most, n); /* one wave */
    for (i = 0; i < n; i++) {
        CHECK(finished(cq_jobspec_id(jobs[i])));
        cq_jobspec_free(jobs[i]);
    }
    CHECK_EQ(workers(), 0);
    worker_thread_create = pthread_create;
    cq_client_free(cl);
    registry_free(reg);
}

/* Jobs of "hold": the first run of each waits until hold_released; every run is counted by
 * job id. */
#define HOLD_MAX 300

static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static int hold_released, hold_n;
static char hold_ids[HOLD_MAX][64];
static int hold_runs[HOLD_MAX];

static int hold_handler(cq_job *job, void *udata)
{
    int i;

    (void)udata;
    pthread_mutex_lock(&hold_mu);
    for (i = 0; i < hold_n && strcmp(hold_ids[i], cq_job_id(job)) != 0; i++) continue;
    if (i == hold_n && hold_n < HOLD_MAX)
        snprintf(hold_ids[hold_n++], sizeof hold_ids[0], "%s", cq_job_id(job));
    if (i < HOLD_MAX && ++hold_runs[i] == 1) {
        pthread_cond_broadcast(&hold_cv);
        while (!hold_released) pthread_cond_wait(&hold_cv, &hold_mu);
    }
    pthread_mutex_unlock(&hold_mu);
    return 0;
}

/* How many runs of id the handler saw. */
static int hold_runs_of(const char *id)
{
    int i, n = 0;

    pthread_mutex_lock(&hold_mu);
    for (i = 0; i < hold_n; i++)
        if (strcmp(hold_ids[i], id) == 0) n = hold_runs[i];
    pthread_mutex_unlock(&hold_mu);
    return n;
}

static int hold_started(void)
{
    int n;

    pthread_mutex_lock(&hold_mu);
    n = hold_n;
    pthread_mutex_unlock(&hold_mu);
    return n;
}

static char *reply_str(const char *fmt, const char *a, const char *b)
{
    redisReply *rep = rconn_commandf(&R, fmt, a, b);
    char *s = rep != NULL && rep->type == REDIS_REPLY_STRING ? strdup(rep->str) : NULL;

    if (rep != NULL) freeReplyObject(rep);
    return s;
}

static long long reply_int(const char *fmt, const char *a)
{
    redisReply *rep = rconn_commandf(&R, fmt, a);
    long long n = rep != NULL && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;

    if (rep != NULL) freeReplyObject(rep);
    return n;
}

static int status_is(const char *id, const char *status)
{
    char *s = reply_str("HGET cq:job:%s %s", id, "status");
    int ok = s != NULL && strcmp(s, status) == 0;

    free(s);
    return ok;
}

struct run_args {
    struct worker_config *c;
    volatile sig_atomic_t sig;
    int abandoned, rc;
};

static void *run_worker(void *arg)
{
    struct run_args *a = arg;

    a->rc = worker_run(a->c, &a->sig, &a->abandoned);
    return NULL;
}

/* Poll cond(arg) every 10 ms for up to 20 s. */
#define WAIT_UNTIL(cond)                                      \
    do {                                                      \
        double until_ = time_now() + 20;                      \
        while (!(cond) && time_now() < until_) usleep(10000); \
    } while (0)

/* A job waiting for an executor (all F busy, no more can be made) that comes again in a take
 * (another worker recovered it while this one was out of touch, and it took the record back)
 * is not run twice: the waiting task is dropped unrun (held_supersede's unrun branch) and the
 * job runs once, from its new take. F jobs of "hold" block the F executors; the F+1th waits;
 * its record is moved from the worker's in-flight list back to the queue, as a recovery does,
 * and its status set back to queued: the new take's start mark says it was taken again. */
static void test_unrun_taken_again(void)
{
    struct cq_registry *reg = registry_new();
    struct worker_config c;
    struct run_args a = {&c, 0, 0, -1};
    int first = first_executors_of(HOLD_MAX), n = first + 1, i;
    cq_jobspec *jobs[HOLD_MAX];
    cq_client *cl;
    char err[512], key[256], *waiting = NULL, *rec = NULL;
    redisReply *rep;
    pthread_t t;

    REQUIRE(n <= HOLD_MAX);
    REQUIRE(cq_function_add(reg, "hold", "", hold_handler, NULL) != NULL);
    cl = cq_client_new(url, "cq:", err, sizeof err);
    REQUIRE(cl != NULL);
    for (i = 0; i < n; i++) {
        jobs[i] = cq_jobspec_new_argv("hold", NULL, 0);
        cq_jobspec_set_queue(jobs[i], "q1");
    }
    REQUIRE(cq_enqueue(cl, jobs, (size_t)n, CQ_NO_CHECK, err, sizeof err) == n);
    worker_thread_create = failing_create;
    calls = 0;
    fail_at = 0;
    fail_from = first + 2 + 1; /* every executor made later */
    config(&c, reg);
    c.concurrency = n + 1; /* one slot free for the take that brings the job again */
    REQUIRE(pthread_create(&t, NULL, run_worker, &a) == 0);

    /* F run; the other is taken, marked started, and waits for an executor. */
    WAIT_UNTIL(hold_started() == first);
    CHECK_EQ(hold_started(), first);
    for (i = 0; i < n; i++)
        if (hold_runs_of(cq_jobspec_id(jobs[i])) == 0) waiting = (char *)cq_jobspec_id(jobs[i]);
    REQUIRE(waiting != NULL);
    WAIT_UNTIL(status_is(waiting, "started"));
    CHECK(status_is(waiting, "started"));
    rep = rconn_commandf(&R, "KEYS cq:inflight:*:q1");
    REQUIRE(rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1);
    snprintf(key, sizeof key, "%s", rep->element[0]->str);
    freeReplyObject(rep);
    CHECK_EQ(reply_int("LLEN %s", key), n);
    rep = rconn_commandf(&R, "LRANGE %s 0 -1", key);
    REQUIRE(rep != NULL && rep->type == REDIS_REPLY_ARRAY);
    for (i = 0; i < (int)rep->elements; i++)
        if (strstr(rep->element[i]->str, waiting) != NULL) rec = strdup(rep->element[i]->str);
    freeReplyObject(rep);
    REQUIRE(rec != NULL);

    /* The recovery: the record back at the head of its queue, the job queued again. */
    DO("MULTI");
    DO("LREM %s 1 %s", key, rec);
    DO("RPUSH cq:queue:q1 %s", rec);
    DO("HSET cq:job:%s status queued", waiting);
    DO("EXEC");
    WAIT_UNTIL(status_is(waiting, "started")); /* the new take's start mark */
    CHECK(status_is(waiting, "started"));
    CHECK_EQ(reply_int("LLEN %s", key), n);
    CHECK_EQ(hold_runs_of(waiting), 0);

    pthread_mutex_lock(&hold_mu);
    hold_released = 1;
    pthread_cond_broadcast(&hold_cv);
    pthread_mutex_unlock(&hold_mu);
    pthread_join(t, NULL); /* burst: returns once every job ended */
    CHECK_EQ(a.rc, 0);
    fail_from = 0;
    worker_thread_create = pthread_create;
    CHECK_EQ(hold_runs_of(waiting), 1); /* once: the waiting task was dropped, not run */
    for (i = 0; i < n; i++) {
        CHECK(finished(cq_jobspec_id(jobs[i])));
        CHECK_EQ(hold_runs_of(cq_jobspec_id(jobs[i])), 1);
        cq_jobspec_free(jobs[i]);
    }
    CHECK_EQ(reply_int("EXISTS %s", key), 0);
    CHECK_EQ(workers(), 0);
    free(rec);
    cq_client_free(cl);
    registry_free(reg);
}

/* A stop asked before cq_worker_run (a signal while the program sets up) is not lost: the
 * run starts, sees it, and returns 0 at once, though it was not in burst mode; the next run
 * is a fresh one, which another stop ends. */
static int stop_after_ms;

static void *stop_later(void *w)
{
    usleep((useconds_t)stop_after_ms * 1000); /* a cancellation point */
    cq_worker_stop(w);
    return NULL;
}

static void test_stop_before_run(void)
{
    cq_worker *w = cq_worker_new();
    char err[256];
    double t0;
    pthread_t t;

    REQUIRE(w != NULL);
    REQUIRE(cq_worker_set(w, "url", url, err, sizeof err) == 0);
    REQUIRE(cq_worker_set(w, "log-level", "error", err, sizeof err) == 0);
    REQUIRE(cq_worker_add_queue(w, "stopq", err, sizeof err) == 0);
    CHECK_EQ(cq_worker_add_command(w, NULL, err, sizeof err), -1); /* not a crash */
    CHECK_HAS(err, "no spec");
    cq_worker_stop(w);
    stop_after_ms = 5000; /* lost, the run would last until this one */
    REQUIRE(pthread_create(&t, NULL, stop_later, w) == 0);
    t0 = time_now();
    CHECK_EQ(cq_worker_run(w), 0);
    CHECK(time_now() - t0 < 3.0);
    pthread_cancel(t);
    pthread_join(t, NULL);
    CHECK_EQ(workers(), 0);
    stop_after_ms = 300;
    REQUIRE(pthread_create(&t, NULL, stop_later, w) == 0);
    t0 = time_now();
    CHECK_EQ(cq_worker_run(w), 0); /* not stopped by the first run's stop */
    CHECK(time_now() - t0 >= 0.25);
    pthread_join(t, NULL);
    cq_worker_free(w);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    server_start();
    snprintf(url, sizeof url, "unix://%s", sock_path);
    test_bad_settings();
    test_thread_failures();
    test_later_thread_failure();
    test_unrun_taken_again();
    test_stop_before_run();
    return check_report();
}
