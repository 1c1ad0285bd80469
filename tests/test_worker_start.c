/* test_worker_start.c - a worker that cannot start frees everything it made and leaves no
 * registration behind, whichever step failed: a bad URL or prefix, no Redis, or a thread that
 * cannot be made (each executor and watcher in turn, through the worker_thread_create seam).
 * An executor that cannot be made later, as jobs wait, leaves the worker running its jobs on
 * the threads it has. The ASan pass of scripts/test turns any leak into a failed run; Redis
 * is read back for the registration and the jobs' statuses. */
#include <pthread.h>
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
    /* The control: the same jobs where every executor can be made run in one wave (the
     * executors grow to -c as they wait on held ones). */
    for (i = 0; i < n; i++) {
        jobs[i] = cq_jobspec_new_argv("sleep", args, 1);
        cq_jobspec_set_queue(jobs[i], "q1");
    }
    CHECK_EQ(cq_enqueue(cl, jobs, (size_t)n, CQ_CHECK, err, sizeof err), n);
    calls = 0;
    t0 = time_now();
    CHECK_EQ(worker_run(&c, &sig, &abandoned), 0);
    took = time_now() - t0;
    CHECK_EQ(calls, n + 2);   /* every executor, and the two watchers */
    CHECK(took < 0.6 - 0.05); /* one wave */
    for (i = 0; i < n; i++) {
        CHECK(finished(cq_jobspec_id(jobs[i])));
        cq_jobspec_free(jobs[i]);
    }
    CHECK_EQ(workers(), 0);
    worker_thread_create = pthread_create;
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
    test_stop_before_run();
    return check_report();
}
