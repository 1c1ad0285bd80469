/* call.c - what a handler sees of a job, and how its outcome comes back (cq.h). */
#include "call.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void call_thread_init(struct call_thread *ct, const struct cq_registry *reg)
{
    memset(ct, 0, sizeof *ct);
    ct->reg = reg;
}

void call_thread_free(struct call_thread *ct)
{
    int i;

    for (i = 0; i < ct->n; i++) {
        const struct cq_function *f = ct->reg->v[i];
        if (ct->inited[i] && f->thread_free != NULL) f->thread_free(ct->state[i], f->udata);
    }
    free(ct->state);
    free(ct->inited);
    memset(ct, 0, sizeof *ct);
}

/* Say why the call failed, in c->error (made on first use). */
static void call_verror(struct cq_job *c, const char *fmt, va_list ap) CQ_PRINTF(2, 0);
static void call_verror(struct cq_job *c, const char *fmt, va_list ap)
{
    if (c->error == NULL) c->error = xmalloc(CALL_ERROR_MAX);
    vsnprintf(c->error, CALL_ERROR_MAX, fmt, ap);
}

static void call_error(struct cq_job *c, const char *fmt, ...) CQ_PRINTF(2, 3);
static void call_error(struct cq_job *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    call_verror(c, fmt, ap);
    va_end(ap);
}

/* The calling thread's state for fn, made on first use. 0, or -1 with c->error set. */
static int thread_state(struct cq_job *c, struct call_thread *ct, const struct cq_function *fn)
{
    char err[512] = "";

    c->thread_state = NULL;
    if (fn->thread_init == NULL) return 0;
    if (fn->index >= ct->n) {
        int n = ct->reg->n;
        ct->state = xrealloc(ct->state, sizeof *ct->state * (size_t)n);
        ct->inited = xrealloc(ct->inited, (size_t)n);
        memset(ct->state + ct->n, 0, sizeof *ct->state * (size_t)(n - ct->n));
        memset(ct->inited + ct->n, 0, (size_t)(n - ct->n));
        ct->n = n;
    }
    if (!ct->inited[fn->index]) {
        void *s = fn->thread_init(fn->udata, err, sizeof err);
        if (s == NULL) {
            call_error(c, "%s: cannot set up this worker thread: %s", fn->name,
                       err[0] ? err : "its thread_init failed");
            c->failed = 1;
            c->transient = 1;
            return -1;
        }
        ct->state[fn->index] = s;
        ct->inited[fn->index] = 1;
    }
    c->thread_state = ct->state[fn->index];
    return 0;
}

/* What a handler's (or a continuation's) rc comes to: deferred (whatever it returned: the
 * job's cq_job_resume will come), 0, or -1 with a reason. A 0 after cq_job_fail finishes the
 * job as cq.h says, and the log tells the failure that goes unrecorded: the handler most
 * likely meant `return cq_job_fail(...)`. */
static int ended(struct cq_job *c, int rc)
{
    if (c->deferred) return CALL_DEFERRED;
    if (rc == 0) { /* finished: no kind of failure stays (a CQ_HOST one counted against the host) */
        if (c->failed && c->error != NULL && c->error[0] != '\0')
            LOG(c->lg, CQ_LOG_WARN,
                "%s %s: finished, as its handler returned 0, though it called cq_job_fail (%s): "
                "to fail the job, return cq_job_fail's -1",
                c->fn->name, c->job->id, c->error);
        c->failed = c->transient = c->host = 0;
        c->retry_after = 0;
        return 0;
    }
    if (c->error == NULL || c->error[0] == '\0') {
        if (c->refused != NULL) /* a handler's `return cq_job_result_json(...)` */
            call_error(c, "%s: its result was refused (cq_job_result_json): %s", c->fn->name,
                       c->refused);
        else
            call_error(c, "%s failed (its handler gave no reason)", c->fn->name);
    }
    if (!c->failed) c->transient = c->host = 0;
    return -1;
}

#define CALL_INDEX_MIN 16 /* arguments from which a job's are indexed */

static void index_args(struct cq_job *c)
{
    const cJSON *a;
    int n = 0;

    c->argc = 0;
    if (!cJSON_IsArray(c->job->args)) return;
    for (a = c->job->args->child; a != NULL && n <= CALL_INDEX_MIN; a = a->next) n++;
    if (n <= CALL_INDEX_MIN) return;
    n = cJSON_GetArraySize(c->job->args);
    if (n > c->capargv) {
        c->argv = xrealloc(c->argv, sizeof *c->argv * (size_t)n);
        c->capargv = n;
    }
    for (n = 0, a = c->job->args->child; a != NULL; a = a->next) c->argv[n++] = a;
    c->argc = n;
}

int call_run(struct cq_job *c, struct call_thread *ct, const struct job *job,
             const struct cq_function *fn, const char *root, const stop_flag *stop, double timeout,
             const struct logger *lg)
{
    c->job = job;
    c->fn = fn;
    c->root = root;
    c->stop = stop;
    c->lg = lg;
    c->deadline = timeout > 0 ? time_now() + timeout : 0;
    c->timeout = timeout > 0 ? timeout : 0;
    c->result = NULL;
    c->result_json = 0;
    c->refused = NULL;
    c->failed = 0;
    c->transient = 0;
    c->host = 0;
    c->retry_after = 0;
    if (c->error != NULL) c->error[0] = '\0';
    c->deferred = 0;
    c->resume = NULL;
    c->resume_arg = NULL;
    index_args(c);
    if (thread_state(c, ct, fn) != 0) return -1;
    return ended(c, fn->fn(c, fn->udata));
}

int call_continue(struct cq_job *c, struct call_thread *ct)
{
    cq_resume_fn fn = c->resume;
    void *arg = c->resume_arg;

    c->deferred = 0;
    c->resume = NULL;
    c->resume_arg = NULL;
    /* Where this thread's state cannot be made, fn runs without it (its arg is its own to
     * free); the job then fails with that reason, whatever fn says. */
    if (thread_state(c, ct, c->fn) != 0) {
        char why[CALL_ERROR_MAX];

        str_copy(why, sizeof why, c->error);
        c->thread_state = NULL;
        if (ended(c, fn(c, arg)) == CALL_DEFERRED) return CALL_DEFERRED;
        free(c->result);
        c->result = NULL;
        c->failed = c->transient = 1;
        c->host = 0;
        str_copy(c->error, CALL_ERROR_MAX, why);
        return -1;
    }
    return ended(c, fn(c, arg));
}

int cq_job_defer(cq_job *job)
{
    job->deferred = 1;
    return CQ_DEFERRED;
}

void cq_job_resume(cq_job *job, cq_resume_fn fn, void *arg)
{
    /* Nothing here is read before the owner's requeue has ordered it with the executor that
     * saw the handler return (and that may still be returning). */
    job->resume = fn;
    job->resume_arg = arg;
    job->requeue(job->owner);
}

void call_free(struct cq_job *c)
{
    if (c == NULL) return;
    call_end(c);
    free(c->scratch);
    free(c->argv);
    free(c->error);
    free(c);
}

void call_end(struct cq_job *c)
{
    int i;

    free(c->result);
    c->result = NULL;
    for (i = 0; i < c->nscratch; i++) free(c->scratch[i]);
    c->nscratch = 0;
}

/* ---- the accessors of cq.h ----------------------------------------------------------- */

const char *cq_job_id(const cq_job *job)
{
    return job->job->id;
}
const char *cq_job_func(const cq_job *job)
{
    return job->job->func;
}
const char *cq_job_queue(const cq_job *job)
{
    return job->job->queue;
}
int cq_job_attempt(const cq_job *job)
{
    return job->job->attempts;
}
double cq_job_deadline(const cq_job *job)
{
    return job->deadline;
}
void *cq_job_thread_state(const cq_job *job)
{
    return job->thread_state;
}
const char *cq_job_root(const cq_job *job)
{
    return job->root ? job->root : ".";
}

int cq_job_stopping(const cq_job *job)
{
    if (stop_requested(job->stop)) return 1;
    return job->deadline > 0 && time_now() >= job->deadline;
}

int cq_job_nargs(const cq_job *job)
{
    return job->argc > 0 ? job->argc : job_nargs(job->job);
}

static const cJSON *arg(const cq_job *job, int i)
{
    if (job->argc > 0) return i >= 0 && i < job->argc ? job->argv[i] : NULL;
    return i < 0 ? NULL : cJSON_GetArrayItem(job->job->args, i);
}

const char *cq_job_arg_string(const cq_job *job, int i)
{
    const cJSON *a = arg(job, i);
    return cJSON_IsString(a) ? a->valuestring : NULL;
}

int cq_job_arg_number(const cq_job *job, int i, double *out)
{
    const cJSON *a = arg(job, i);
    char *end;
    double v;

    if (cJSON_IsNumber(a)) {
        *out = a->valuedouble;
        return 0;
    }
    if (!cJSON_IsString(a)) return -1;
    v = strtod_c(a->valuestring, &end);
    if (end == a->valuestring || *end != '\0' || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int cq_job_arg_integer(const cq_job *job, int i, long long *out)
{
    const cJSON *a = arg(job, i);
    long v;

    if (cJSON_IsNumber(a)) {
        if (a->valuedouble != floor(a->valuedouble) || fabs(a->valuedouble) >= 9e15) return -1;
        *out = (long long)a->valuedouble;
        return 0;
    }
    if (!cJSON_IsString(a) || parse_long(a->valuestring, -LONG_MAX, LONG_MAX, &v) != 0) return -1;
    *out = v;
    return 0;
}

int cq_job_arg_duration(const cq_job *job, int i, double *out)
{
    const cJSON *a = arg(job, i);

    if (cJSON_IsNumber(a)) {
        if (!isfinite(a->valuedouble) || a->valuedouble < 0 || a->valuedouble > DURATION_MAX)
            return -1;
        *out = a->valuedouble;
        return 0;
    }
    return cJSON_IsString(a) && parse_duration(a->valuestring, out) == 0 ? 0 : -1;
}

const char *cq_job_arg_json(cq_job *job, int i)
{
    const cJSON *a = arg(job, i);
    char *s;

    if (a == NULL) return NULL;
    s = job_json_print(a);
    if (job->nscratch == job->capscratch) {
        job->capscratch = job->capscratch ? job->capscratch * 2 : 4;
        job->scratch = xrealloc(job->scratch, sizeof *job->scratch * (size_t)job->capscratch);
    }
    job->scratch[job->nscratch++] = s;
    return s;
}

void cq_job_log(const cq_job *job, int level, const char *fmt, ...)
{
    char line[2048];
    va_list ap;

    if (job->lg == NULL || level > job->lg->level) return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_emit(job->lg, level, 0, "%s %s: %s", job->job->func, job->job->id, line);
}

/* One line of UTF-8 text of at most max bytes: control characters become spaces, so a status
 * field never spans lines, and a byte that is no part of a UTF-8 character a '?', so that a
 * reader in another language can decode it. */
static char *one_line(const char *s, size_t max)
{
    size_t n = strnlen(s, max), i = 0, o = 0, k;
    char *out;

    /* Cut at max bytes, not inside a UTF-8 character: back to the start of the one cut. */
    if (n == max)
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    out = xmalloc(n + 1);
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            out[o++] = c < 0x20 ? ' ' : (char)c;
            i++;
        } else if ((k = utf8_char((const unsigned char *)s + i, n - i)) == 0) {
            out[o++] = '?';
            i++;
        } else {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        }
    }
    out[o] = '\0';
    return out;
}

int cq_job_result(cq_job *job, const char *text)
{
    free(job->result);
    job->result = one_line(text ? text : "", CQ_RESULT_MAX);
    job->result_json = 0;
    job->refused = NULL;
    return 0;
}

/* cq_job_result_json's -1, with why for the job's error should the handler return it. */
static int refuse_result(cq_job *job, const char *why)
{
    job->refused = why;
    return -1;
}

int cq_job_result_json(cq_job *job, const char *json)
{
    cJSON *v;
    locale_t loc;
    char *s;

    if (json == NULL) return refuse_result(job, "NULL, not JSON text");
    if (strnlen(json, CQ_RESULT_MAX + 1) > CQ_RESULT_MAX)
        return refuse_result(job, "more than 65536 bytes of JSON text");
    if (job_json_has_nul(json, strlen(json))) /* cJSON would cut the string there */
        return refuse_result(job, "it holds a \\u0000");
    loc = locale_c_enter(); /* numbers read with a point, whatever the program's locale */
    v = cJSON_ParseWithOpts(json, NULL, 1); /* one value, nothing after it */
    locale_c_leave(loc);
    if (v == NULL || !job_json_finite(v) || !job_json_utf8(v)) {
        const char *why = v == NULL ? "not one valid JSON value"
            : !job_json_finite(v)   ? "a number beyond a double's range"
                                    : "a string that is not UTF-8";
        cJSON_Delete(v);
        return refuse_result(job, why);
    }
    /* Re-printed compact: one line, and exactly what was validated. */
    s = job_json_print(v);
    cJSON_Delete(v);
    if (strlen(s) > CQ_RESULT_MAX) {
        free(s);
        return refuse_result(job, "more than 65536 bytes of JSON text");
    }
    free(job->result);
    job->result = s;
    job->result_json = 1;
    job->refused = NULL;
    return 0;
}

int cq_job_fail(cq_job *job, enum cq_failure kind, double retry_after, const char *fmt, ...)
{
    va_list ap;
    size_t i;

    va_start(ap, fmt);
    call_verror(job, fmt, ap);
    va_end(ap);
    for (i = 0; job->error[i]; i++)
        if ((unsigned char)job->error[i] < 0x20) job->error[i] = ' ';
    job->failed = 1;
    job->transient = kind == CQ_TRANSIENT;
    job->host = kind == CQ_HOST;
    job->retry_after = isfinite(retry_after) && retry_after > 0 ? retry_after : 0;
    return -1;
}
