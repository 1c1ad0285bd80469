/* call.h - one call of a function on a job: the struct behind cq.h's cq_job.
 *
 * An executor thread owns one struct cq_job and reuses it for every job it runs: call_begin
 * resets what a handler reads and reports, the handler runs, and the outcome is read back
 * from the fields below. Per-thread states of functions (thread hooks) live in a struct
 * call_thread that the same executor owns.
 *
 * A handler that defers its job (cq_job_defer) hands its struct cq_job over: the job's
 * owner keeps it, the executor takes a new one, and cq_job_resume (any thread) calls the
 * owner's requeue, which has an executor run call_continue on it later.
 */
#ifndef CQ_CALL_H
#define CQ_CALL_H

#include "cq/cq.h"
#include "job.h"
#include "log.h"
#include "registry.h"
#include "util.h"

#define CALL_ERROR_MAX 1024

/* The per-thread states of one executor, one slot per function of the registry. */
struct call_thread {
    void **state;
    unsigned char *inited;
    int n;
    const struct cq_registry *reg;
};

struct cq_job {
    /* in */
    const struct job *job;
    const struct cq_function *fn;
    const char *root;
    const stop_flag *stop; /* the worker's hard stop */
    double deadline;       /* Unix seconds; 0 = none */
    double timeout;        /* seconds the deadline was set at; 0 = none */
    const struct logger *lg;
    void *thread_state;
    /* out */
    char *result; /* malloc'ed, NULL for none */
    int result_json;
    const char *refused; /* why cq_job_result_json refused the last result given (or NULL) */
    int failed;          /* cq_job_fail was called */
    int transient;
    int host; /* cq_job_fail(CQ_HOST): this host, not the job, failed */
    double retry_after;
    char *error; /* CALL_ERROR_MAX bytes, made at the call's first failure; NULL: none */
    /* scratch: strings handed out by cq_job_arg_json, freed by call_end */
    char **scratch;
    int nscratch, capscratch;
    /* the arguments by index, for a job of many (cJSON's lookup walks them from the first,
     * which would make a handler that reads each of 100,000 take quadratic time); argc is 0
     * where they are few and not indexed */
    const cJSON **argv;
    int argc, capargv;
    /* deferral: set by the handler (cq_job_defer) and by cq_job_resume */
    int deferred;        /* cq_job_defer was called (by the handler's thread) */
    cq_resume_fn resume; /* what call_continue runs */
    void *resume_arg;
    void (*requeue)(void *owner); /* the owner's: run call_continue on an executor */
    void *owner;
};

/* call_run's and call_continue's third outcome: the job was deferred (the handler called
 * cq_job_defer). c now belongs with the job until cq_job_resume has it continued. */
#define CALL_DEFERRED 1

void call_thread_init(struct call_thread *ct, const struct cq_registry *reg);
/* Runs each thread_free hook of the states made. */
void call_thread_free(struct call_thread *ct);

/* Run fn on job; returns the handler's 0/-1 and leaves the outcome in *c (result, error,
 * transient, retry_after), or CALL_DEFERRED. */
int call_run(struct cq_job *c, struct call_thread *ct, const struct job *job,
             const struct cq_function *fn, const char *root, const stop_flag *stop, double timeout,
             const struct logger *lg);

/* Run what cq_job_resume named on the deferred job c, on this executor (ct: its thread
 * states): 0, -1 or CALL_DEFERRED, as call_run. */
int call_continue(struct cq_job *c, struct call_thread *ct);

/* Free c and all it holds (a call no executor or job keeps any more). */
void call_free(struct cq_job *c);

/* Free what the last call left (result, scratch). */
void call_end(struct cq_job *c);

#endif
