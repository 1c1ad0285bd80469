/* later.c - an example cq plugin: a job that ends some time later without holding a worker
 * thread meanwhile (cq_job_defer), as a job waiting on a network reply, a rate limit or
 * another system's callback would.
 *
 *   cworker --load ./libcq_later.so -c 1000
 *   cenqueue later 30s              finishes 30 s later: "waited 30 s in 1 step"
 *   cenqueue later 1 5              five waits of 1 s, each a deferral of its own
 *
 * One timer thread of the plugin keeps the waits. The handler puts the job's wait in its list
 * and defers the job; when the wait is over, the timer thread resumes the job, and the
 * continuation (step) runs on a worker thread: it ends the job, or defers it for the next
 * wait. A job that the worker wants to stop (a deadline, cqctl cancel, a second signal) is
 * resumed at once and fails transiently: "later: job timed out after 0 of 1 waits" past its
 * deadline (cq_job_deadline), "later: asked to stop after ..." otherwise. A wait of 0 is resumed by the handler itself, before
 * it has returned: cq allows that too. 1,000 jobs waiting cost 1,000 small entries here and
 * no thread each.
 *
 * Build: cc -shared -fPIC later.c -o libcq_later.so $(pkg-config --cflags --libs cq) -lpthread
 */
#include <cq/cq.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

CQ_PLUGIN_DECLARE;

#define POLL_NS 50000000L /* how often the waits are checked for a job asked to stop */

/* One job's waits; the list holds those under way. */
struct wait {
    cq_job *job;
    double seconds;      /* each wait */
    long steps, done;    /* waits in all, and over */
    struct timespec due; /* CLOCK_MONOTONIC */
    int stopped;         /* resumed because the worker wants the job to stop */
    struct wait *next;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* a wait was added; on CLOCK_MONOTONIC, as the waits are */
    struct wait *list;
    pthread_t thread;
    int started;
} timer = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0};

static int step(cq_job *job, void *arg);

static int before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec <= b->tv_nsec);
}

static void add_ns(struct timespec *t, double ns)
{
    long long total = (long long)t->tv_nsec + (long long)ns;

    t->tv_sec += (time_t)(total / 1000000000LL);
    t->tv_nsec = (long)(total % 1000000000LL);
}

/* The timer thread: resumes each job whose wait is over, or that is to stop. */
static void *timer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&timer.mu);
    for (;;) {
        struct wait **p = &timer.list, *ready = NULL;
        struct timespec now, until;

        clock_gettime(CLOCK_MONOTONIC, &now);
        until = now;
        add_ns(&until, POLL_NS);
        while (*p != NULL) {
            struct wait *x = *p;

            x->stopped = cq_job_stopping(x->job);
            if (x->stopped || before(&x->due, &now)) {
                *p = x->next;
                x->next = ready;
                ready = x;
                continue;
            }
            if (before(&x->due, &until)) until = x->due;
            p = &x->next;
        }
        if (ready != NULL) {
            /* Outside the lock: a continuation may run at once and add the next wait. */
            pthread_mutex_unlock(&timer.mu);
            while (ready != NULL) {
                struct wait *x = ready;

                ready = x->next;
                cq_job_resume(x->job, step, x);
            }
            pthread_mutex_lock(&timer.mu);
            continue;
        }
        pthread_cond_timedwait(&timer.cond, &timer.mu, &until);
    }
    return NULL;
}

/* Start x's next wait, or resume its job at once for a wait of 0. Returns what the handler
 * (or the continuation) returns: the job is deferred either way. */
static int wait_next(struct wait *x)
{
    int rc = cq_job_defer(x->job);

    if (x->seconds == 0) {
        cq_job_resume(x->job, step, x);
        return rc;
    }
    clock_gettime(CLOCK_MONOTONIC, &x->due);
    add_ns(&x->due, x->seconds * 1e9);
    pthread_mutex_lock(&timer.mu);
    x->next = timer.list;
    timer.list = x;
    pthread_cond_signal(&timer.cond);
    pthread_mutex_unlock(&timer.mu);
    return rc;
}

/* A wait is over (on a worker thread): the next one, or the job's end. */
static int step(cq_job *job, void *arg)
{
    struct wait *x = arg;
    long done = ++x->done, steps = x->steps;
    double seconds = x->seconds;
    char line[128];

    if (x->stopped) {
        /* The job's error is this text: a deadline that passed is named as a timeout, any
         * other stop (a cancel, a second signal) as a stop. */
        double deadline = cq_job_deadline(job);
        struct timespec now;

        free(x);
        clock_gettime(CLOCK_REALTIME, &now);
        if (deadline > 0 && (double)now.tv_sec + (double)now.tv_nsec / 1e9 >= deadline)
            return cq_job_fail(job, CQ_TRANSIENT, 0, "later: job timed out after %ld of %ld waits",
                               done - 1, steps);
        return cq_job_fail(job, CQ_TRANSIENT, 0, "later: asked to stop after %ld of %ld waits",
                           done - 1, steps);
    }
    if (done < steps) return wait_next(x);
    free(x);
    snprintf(line, sizeof line, "waited %g s in %ld step%s", seconds * (double)steps, steps,
             steps == 1 ? "" : "s");
    return cq_job_result(job, line);
}

static int fn_later(cq_job *job, void *udata)
{
    struct wait *x;
    double seconds;
    long long steps = 1;

    (void)udata;
    if (cq_job_arg_duration(job, 0, &seconds) != 0 || seconds > 86400)
        return cq_job_fail(job, CQ_PERMANENT, 0,
                           "later: SECONDS must be a duration of a day "
                           "at most");
    if (cq_job_nargs(job) > 1 &&
        (cq_job_arg_integer(job, 1, &steps) != 0 || steps < 1 || steps > 1000))
        return cq_job_fail(job, CQ_PERMANENT, 0, "later: STEPS must be an integer 1-1000");
    x = calloc(1, sizeof *x);
    if (x == NULL) return cq_job_fail(job, CQ_TRANSIENT, 0, "later: out of memory");
    x->job = job;
    x->seconds = seconds;
    x->steps = (long)steps;
    return wait_next(x);
}

int cq_plugin_init(cq_registry *reg)
{
    cq_function *f;
    int err;

    f = cq_function_add(reg, "later", "SECONDS:duration [STEPS:integer]", fn_later, NULL);
    if (f == NULL) return -1;
    cq_function_set_summary(f, "end SECONDS later (STEPS times), holding no worker thread");
    if (!timer.started) {
        /* The timed waits count on CLOCK_MONOTONIC: a condition variable's default clock is
         * the wall clock, against which every deadline here would have passed. */
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&timer.cond, &ca);
        pthread_condattr_destroy(&ca);
        /* The thread stays for the process's life, as the plugin does. */
        err = pthread_create(&timer.thread, NULL, timer_main, NULL);
        if (err != 0) {
            cq_plugin_fail(reg, "later: cannot start its timer thread: error %d", err);
            return -1;
        }
        pthread_detach(timer.thread);
        timer.started = 1;
    }
    return 0;
}
