/* worker.h - the worker daemon's run loop: takes jobs from Redis and runs them on a pool of
 * threads. Its public face is cq_worker_* in cq.h (worker.c); cworker is a thin main()
 * around it. */
#ifndef CQ_WORKER_H
#define CQ_WORKER_H

#include <signal.h>
#include <stddef.h>

#include "queue.h"
#include "registry.h"

struct worker_config {
    const char *url;           /* redis:// URL; NULL: $CQ_REDIS_URL, else the local one */
    const char *prefix;        /* key prefix; NULL: $CQ_PREFIX, else "cq:" */
    const char *const *queues; /* in priority order */
    size_t nqueues;
    int concurrency;               /* jobs run at once (-c) */
    int burst;                     /* exit once the queues are empty and nothing runs */
    long max_jobs;                 /* exit after this many jobs; 0 = no limit */
    int max_recoveries;            /* a job taken back from dead workers more often fails unrun */
    double shutdown_timeout;       /* seconds running jobs get to finish on SIGTERM */
    double retry_base;             /* first retry delay in seconds; doubles per attempt */
    const char *root;              /* absolute path: cq_job_root */
    const struct cq_registry *reg; /* the functions served */
    struct queue_ttls ttls;
    int log_level;
    int log_json;            /* log lines as JSON objects (--log-format json) */
    double summary_interval; /* seconds between two summary lines at info; 0 = none */
    double lease;            /* seconds a silent worker keeps its jobs (--lease) */
};

/* Run until the queues are drained (burst), max_jobs are done, or *signals becomes non-zero
 * (a drain: running jobs get shutdown_timeout to finish, the rest go back to their queues);
 * a second signal (*signals >= 2) puts everything back at once. Returns the process exit
 * code: 0 for a clean stop, 1 when it could not start. *abandoned is set when handlers that
 * ignored the stop were left running: what they use must then stay until the process exits. */
/* How the worker makes its threads: pthread_create, replaced by tests to inject failures. */
#include <pthread.h>
extern int (*worker_thread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

int worker_run(const struct worker_config *cfg, volatile sig_atomic_t *signals, int *abandoned);

#endif
