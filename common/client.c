/* client.c - libcq for producers: connect, check, enqueue, read and wait (cq.h).
 *
 * A client checks a job against the function catalog that workers publish (catalog.c),
 * falling back on the functions it knows itself (the built-ins, and what its program adds to
 * cq_client_registry). Declarations read from the catalog are cached for the client's life,
 * so checking a million jobs of one function costs one catalog read.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cq/cq.h"
#include "catalog.h"
#include "job.h"
#include "keys.h"
#include "queue.h"
#include "rconn.h"
#include "registry.h"
#include "util.h"

/* What the catalog said of a function when the client first looked it up. */
struct served {
    double last; /* when a worker last served it (0: never) */
    int live;    /* live workers serving it then */
};

struct cq_client {
    struct rconn r;
    struct keys k;
    struct cq_registry *known; /* built-ins and the program's own */
    struct cq_registry *cache; /* declarations read from the catalog */
    struct served *served;     /* of cache->v[i], when first looked up */
};

struct cq_jobspec {
    struct job *job;
    double at;
};

struct cq_status {
    enum cq_state state;
    size_t n;
    char **names, **values;
};

cq_client *cq_client_new(const char *url, const char *prefix, char *err, size_t errlen)
{
    cq_client *c = xcalloc(1, sizeof *c);
    struct rconn_url u;

    if (keys_init(&c->k, keys_default_prefix(prefix), err, errlen) != 0 ||
        rconn_parse_url(rconn_default_url(url), &u, err, errlen) != 0) {
        free(c);
        return NULL;
    }
    rconn_init(&c->r, &u, 5.0);
    if (rconn_connect(&c->r) != 0) {
        err_set(err, errlen, "%s", c->r.errstr);
        free(c);
        return NULL;
    }
    c->known = registry_new();
    c->cache = registry_new();
    registry_add_builtins(c->known);
    return c;
}

void cq_client_free(cq_client *c)
{
    if (c == NULL) return;
    rconn_close(&c->r);
    registry_free(c->known);
    registry_free(c->cache);
    free(c->served);
    free(c);
}

cq_registry *cq_client_registry(cq_client *c)
{
    return c->known;
}

int cq_client_print_functions(cq_client *c, FILE *f, char *err, size_t errlen)
{
    return catalog_print(&c->r, &c->k, c->known, f, err, errlen);
}

int cq_valid_name(const char *name)
{
    return name != NULL && keys_valid_name(name);
}

/* ---- job specs ------------------------------------------------------------------------ */

cq_jobspec *cq_jobspec_new(const char *func, const char *args_json, char *err, size_t errlen)
{
    cJSON *args = NULL;
    cq_jobspec *s;

    if (func == NULL || func[0] == '\0' || strlen(func) > JOB_FUNC_MAX) {
        err_set(err, errlen, "function name '%s': 1-%d characters", func ? func : "", JOB_FUNC_MAX);
        return NULL;
    }
    if (args_json != NULL) {
        args = cJSON_Parse(args_json);
        if (!cJSON_IsArray(args)) {
            cJSON_Delete(args);
            err_set(err, errlen, "%s: args must be a JSON array, e.g. [\"a\", 1]", func);
            return NULL;
        }
    }
    s = xcalloc(1, sizeof *s);
    s->job = job_new(func, args);
    return s;
}

cq_jobspec *cq_jobspec_new_argv(const char *func, const char *const *argv, int argc)
{
    cJSON *args = xcheck(cJSON_CreateArray(), "job arguments");
    cq_jobspec *s;
    int i;

    for (i = 0; i < argc; i++) cJSON_AddItemToArray(args, cJSON_CreateString(argv[i]));
    s = xcalloc(1, sizeof *s);
    s->job = job_new(func, args);
    return s;
}

void cq_jobspec_free(cq_jobspec *s)
{
    if (s == NULL) return;
    job_free(s->job);
    free(s);
}

int cq_jobspec_set_id(cq_jobspec *s, const char *id)
{
    if (id == NULL || !keys_valid_name(id)) return -1;
    return str_copy(s->job->id, sizeof s->job->id, id);
}

int cq_jobspec_set_queue(cq_jobspec *s, const char *queue)
{
    if (queue == NULL || !keys_valid_name(queue)) return -1;
    return str_copy(s->job->queue, sizeof s->job->queue, queue);
}

int cq_jobspec_set_retries(cq_jobspec *s, int retries)
{
    if (retries < 0 || retries > 1000) return -1;
    s->job->retries = retries;
    return 0;
}

int cq_jobspec_set_timeout(cq_jobspec *s, double seconds)
{
    if (!isfinite(seconds) || seconds <= 0 || seconds >= 1e11) return -1;
    s->job->timeout = seconds;
    return 0;
}

int cq_jobspec_set_at(cq_jobspec *s, double unix_time)
{
    if (!isfinite(unix_time) || unix_time < 0 || unix_time >= 1e11) return -1;
    s->at = unix_time;
    return 0;
}

const char *cq_jobspec_id(const cq_jobspec *s)
{
    return s->job->id;
}

int cq_jobspec_enqueued(const cq_jobspec *s)
{
    return s->job->enqueued;
}

/* ---- checking ------------------------------------------------------------------------- */

/* "unknown function 'x' (known: ...)" listing the catalog's functions and the known ones. */
static void unknown(cq_client *c, const char *func, char *err, size_t errlen)
{
    struct cq_registry *all = registry_new();
    char kf[KEYS_KEY_MAX];
    redisReply *rep;
    size_t i;
    int j;

    rep = rconn_commandf(&c->r, "HKEYS %s", keys_functions(&c->k, kf, sizeof kf));
    for (i = 0; rep != NULL && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++)
        registry_describe(all, rep->element[i]->str, "", NULL, 0);
    if (rep) freeReplyObject(rep);
    for (j = 0; j < c->known->n; j++)
        if (registry_find(all, c->known->v[j]->name) == NULL)
            registry_describe(all, c->known->v[j]->name, "", NULL, 0);
    registry_unknown(all, func, err, errlen);
    registry_free(all);
}

int cq_client_check(cq_client *c, cq_jobspec *s, char *warning, size_t warnlen, char *err,
                    size_t errlen)
{
    const char *func = s->job->func;
    const struct cq_function *f = registry_find(c->cache, func);
    double seen = 0;
    int builtin = 0, live = 1;

    if (warning != NULL && warnlen > 0) warning[0] = '\0';
    if (f != NULL) {
        seen = c->served[f->index].last;
        live = c->served[f->index].live;
    } else {
        int got = catalog_get(&c->r, &c->k, func, c->cache, &seen, err, errlen);
        if (got < 0) return -1;
        if (got == 1) {
            /* Who serves it is asked once per function and client: a producer feeding a
             * million jobs pays for it once. */
            live = registry_find(c->known, func) != NULL
                ? 1
                : catalog_live(&c->r, &c->k, func, NULL, 0, err, errlen);
            if (live < 0) return -1;
            f = registry_find(c->cache, func);
            c->served = xrealloc(c->served, sizeof *c->served * (size_t)c->cache->n);
            c->served[f->index].last = seen;
            c->served[f->index].live = live;
        }
    }
    if (f == NULL) {
        f = registry_find(c->known, func);
        if (f == NULL) {
            unknown(c, func, err, errlen);
            return -1;
        }
        builtin = 1;
    } else if (registry_find(c->known, func) != NULL) {
        builtin = 1;
    }
    if (registry_check_args(f, s->job->args, 1, err, errlen) != 0) return -1;
    /* Built-ins are served by every cworker: no worker yet is a deploy still to come. */
    if (!builtin && warning != NULL && warnlen > 0 && live == 0) {
        double age = time_now() - seen;
        err_set(warning, warnlen,
                "function %s: no live worker serves it now (last served "
                "%.0f%s ago); the job waits until one does",
                func,
                age < 120        ? age
                    : age < 7200 ? age / 60
                                 : age / 3600,
                age < 120        ? "s"
                    : age < 7200 ? "m"
                                 : "h");
    }
    return 0;
}

/* ---- enqueueing ----------------------------------------------------------------------- */

long cq_enqueue(cq_client *c, cq_jobspec *const *jobs, size_t n, enum cq_check check, char *err,
                size_t errlen)
{
    struct job **v;
    size_t i, start;
    long done = 0;
    int rc = 0;

    if (check == CQ_CHECK) {
        for (i = 0; i < n; i++) {
            char why[1024];
            if (cq_client_check(c, jobs[i], NULL, 0, why, sizeof why) != 0) {
                err_set(err, errlen, "job %zu of %zu: %s (nothing was enqueued)", i + 1, n, why);
                return -1;
            }
        }
    }
    v = xcalloc(n ? n : 1, sizeof *v);
    for (i = 0; i < n; i++) {
        v[i] = jobs[i]->job;
        if (v[i]->queue[0] == '\0') str_copy(v[i]->queue, sizeof v[i]->queue, "default");
    }
    /* queue_enqueue takes one due time per call: one call per run of equal times. */
    for (start = 0; start < n && rc == 0; start = i) {
        for (i = start + 1; i < n && jobs[i]->at == jobs[start]->at; i++) continue;
        rc = queue_enqueue(&c->r, &c->k, v + start, i - start, jobs[start]->at, err, errlen);
    }
    for (i = 0; i < n; i++) done += v[i]->enqueued ? 1 : 0;
    free(v);
    return rc == 0 ? done : -1;
}

/* ---- status --------------------------------------------------------------------------- */

static const char *const state_names[] = {
    [CQ_UNKNOWN] = "unknown", [CQ_QUEUED] = "queued",     [CQ_SCHEDULED] = "scheduled",
    [CQ_STARTED] = "started", [CQ_RETRYING] = "retrying", [CQ_FINISHED] = "finished",
    [CQ_FAILED] = "failed",
};

const char *cq_status_state_name(enum cq_state state)
{
    return (unsigned)state < sizeof state_names / sizeof state_names[0] ? state_names[state]
                                                                        : "unknown";
}

static cq_status *status_from(const redisReply *rep)
{
    cq_status *st = xcalloc(1, sizeof *st);
    size_t i, k;

    if (rep->type != REDIS_REPLY_ARRAY) return st;
    st->n = rep->elements / 2;
    st->names = xcalloc(st->n + 1, sizeof *st->names);
    st->values = xcalloc(st->n + 1, sizeof *st->values);
    for (i = 0; i < st->n; i++) {
        st->names[i] = xstrdup(rep->element[2 * i]->str ? rep->element[2 * i]->str : "");
        st->values[i] = xstrdup(rep->element[2 * i + 1]->str ? rep->element[2 * i + 1]->str : "");
        if (strcmp(st->names[i], "status") == 0)
            for (k = 1; k < sizeof state_names / sizeof state_names[0]; k++)
                if (strcmp(st->values[i], state_names[k]) == 0) st->state = (enum cq_state)k;
    }
    return st;
}

int cq_status_get_many(cq_client *c, const char *const *ids, size_t n, cq_status **out, char *err,
                       size_t errlen)
{
    char key[KEYS_KEY_MAX];
    size_t i, got = 0;

    for (i = 0; i < n; i++) {
        out[i] = NULL;
        if (!keys_valid_name(ids[i])) {
            err_set(err, errlen, "job id '%s': use 1-%d characters of A-Z a-z 0-9 _ . @ -", ids[i],
                    KEYS_NAME_MAX);
            return -1;
        }
    }
    if (c->r.ctx == NULL && rconn_connect(&c->r) != 0) {
        err_set(err, errlen, "%s", c->r.errstr);
        return -1;
    }
    for (i = 0; i < n; i++)
        if (rconn_appendf(&c->r, "HGETALL %s", keys_job(&c->k, ids[i], key, sizeof key)) != 0)
            break;
    for (got = 0; got < i; got++) {
        redisReply *rep = rconn_read(&c->r);
        if (rep == NULL) break;
        if (rep->type == REDIS_REPLY_ERROR) {
            err_set(err, errlen, "job %s: redis: %s", ids[got], rep->str);
            freeReplyObject(rep);
            while (got > 0) cq_status_free(out[--got]);
            /* The other replies are still to come: drop the connection rather than read
             * them one by one. */
            rconn_close(&c->r);
            return -1;
        }
        out[got] = status_from(rep);
        freeReplyObject(rep);
    }
    if (got < n) {
        err_set(err, errlen, "reading job status: %s", c->r.errstr);
        while (got > 0) cq_status_free(out[--got]);
        return -1;
    }
    return 0;
}

int cq_status_get(cq_client *c, const char *id, cq_status **out, char *err, size_t errlen)
{
    return cq_status_get_many(c, &id, 1, out, err, errlen);
}

int cq_wait(cq_client *c, const char *id, double timeout, cq_status **out, char *err, size_t errlen)
{
    double until = timeout > 0 ? time_now() + timeout : 0;
    long pause = 5;

    for (;;) {
        if (cq_status_get(c, id, out, err, errlen) != 0) return -1;
        if ((*out)->state == CQ_FINISHED || (*out)->state == CQ_FAILED) return 0;
        if (until > 0 && time_now() >= until) return 0;
        cq_status_free(*out);
        *out = NULL;
        sleep_ms(pause);
        pause = pause * 2 > 200 ? 200 : pause * 2;
    }
}

enum cq_state cq_status_state(const cq_status *st)
{
    return st->state;
}

const char *cq_status_field(const cq_status *st, const char *name)
{
    size_t i;

    for (i = 0; i < st->n; i++)
        if (strcmp(st->names[i], name) == 0) return st->values[i];
    return NULL;
}

int cq_status_result_is_json(const cq_status *st)
{
    return cq_status_field(st, "result_json") != NULL;
}

void cq_status_free(cq_status *st)
{
    size_t i;

    if (st == NULL) return;
    for (i = 0; i < st->n; i++) {
        free(st->names[i]);
        free(st->values[i]);
    }
    free(st->names);
    free(st->values);
    free(st);
}
