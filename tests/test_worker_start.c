/* test_worker_start.c - a worker that cannot start frees everything it made and leaves no
 * registration behind, whichever step failed: a bad URL or prefix, no Redis, or a thread that
 * cannot be made (each executor and watcher in turn, through the worker_thread_create seam).
 * The ASan pass of scripts/test turns any leak into a failed run; Redis is read back for the
 * registration. */
#include <pthread.h>

#include "check.h"
#include "redis_server.h"
#include "registry.h"
#include "worker.h"

static int calls, fail_at; /* the fail_at-th thread (from 1) cannot be made */

static int failing_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
    if (++calls == fail_at) return EAGAIN;
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

/* 3 executors and 2 watchers: failing the 1st to the 5th thread covers every spot. */
static void test_thread_failures(void)
{
    struct cq_registry *reg = registry_new();
    struct worker_config c;
    volatile sig_atomic_t sig = 0;
    int abandoned = 0;

    registry_add_builtins(reg);
    worker_thread_create = failing_create;
    for (fail_at = 1; fail_at <= 5; fail_at++) {
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
    CHECK_EQ(calls, 5);
    CHECK_EQ(abandoned, 0);
    CHECK_EQ(workers(), 0);
    worker_thread_create = pthread_create;
    registry_free(reg);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    server_start();
    snprintf(url, sizeof url, "unix://%s", sock_path);
    test_bad_settings();
    test_thread_failures();
    return check_report();
}
