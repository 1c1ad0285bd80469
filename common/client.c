/* client.c - libcq for producers: connect, check, enqueue, read and wait (cq.h).
 *
 * A client checks a job against the function catalog that workers publish (catalog.c),
 * falling back on the functions it knows itself (the built-ins, and what its program adds to
 * cq_client_registry). Declarations read from the catalog are cached for the client's life,
 * so checking a million jobs of one function costs one catalog read.
 *
 * Waiting (cq_wait_many) does not poll. A worker PUBLISHes a job's end on the job's channel
 * (keys_ended) in the script that writes its final status; a waiter SUBSCRIBEs on a second
 * connection of the client, opened the first time it waits, and only once Redis has
 * confirmed the subscription reads the status hash on the first connection. A job that ended
 * before that is seen in the hash, one that ends after it in a message: none falls between.
 * Messages are lost while the connection is down, so after a reconnection the statuses are
 * read again; they are also read every client_wait_recheck seconds of silence (30), which
 * only matters for jobs ended by workers that predate the channel.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cq/cq.h"
#include "catalog.h"
#include "client.h"
#include "job.h"
#include "keys.h"
#include "queue.h"
#include "rconn.h"
#include "registry.h"
#include "util.h"

/* What the catalog said of a function when the client first looked it up. */
struct served {
    double last;   /* when a worker last served it (0: never) */
    int live;      /* live workers serving it then on queue; -1 not asked yet, or the asking
                    failed */
    int elsewhere; /* live workers serving it on other queues only */
    int takers;    /* where live is 0: live workers taking from queue (which fail its jobs) */
    char queue[KEYS_NAME_MAX + 1]; /* the queue live was asked for */
};

/* A message cq_wait_prepare read while it waited for its confirmations: a job's end, kept for
 * the next wait. */
struct heard {
    char *chan, *said;
};

struct cq_client {
    struct rconn r;
    struct rconn sub;    /* waiting: subscribe mode, connected by the first wait or prepare */
    struct heard *heard; /* what cq_wait_prepare read, for the next wait */
    size_t nheard, capheard;
    struct keys k;
    struct cq_registry *known; /* built-ins and the program's own */
    struct cq_registry *cache; /* declarations read from the catalog */
    struct served *served;     /* of cache->v[i], when first looked up */
};

struct cq_jobspec {
    struct job *job;
    double at;
    int convert; /* built from strings (argv): the check turns them into the declared types,
                    once */
};

struct cq_status {
    enum cq_state state;
    size_t n;
    char **names, **values;
};

int cq_url_check(const char *url, char *err, size_t errlen)
{
    struct rconn_url u;

    return rconn_parse_default_url(url, &u, err, errlen);
}

int cq_prefix_check(const char *prefix, char *err, size_t errlen)
{
    struct keys k;

    return keys_init_default(&k, prefix, err, errlen);
}

cq_client *cq_client_new(const char *url, const char *prefix, char *err, size_t errlen)
{
    cq_client *c = xcalloc(1, sizeof *c);
    struct rconn_url u;

    if (keys_init_default(&c->k, prefix, err, errlen) != 0 ||
        rconn_parse_default_url(url, &u, err, errlen) != 0) {
        free(c);
        return NULL;
    }
    rconn_init(&c->r, &u, 5.0);
    rconn_init(&c->sub, &u, 5.0);
    /* A new connection holds no subscription: only wait_run opens it, and subscribes. */
    c->sub.explicit_connect = 1;
    if (rconn_connect(&c->r) != 0) {
        err_set(err, errlen, "%s", c->r.errstr);
        free(c);
        return NULL;
    }
    c->known = registry_new();
    c->cache = registry_new();
    registry_add_builtins(c->known);
    c->known->declarations = 1; /* what the program adds may come without a handler */
    return c;
}

static void heard_clear(cq_client *c)
{
    size_t i;

    for (i = 0; i < c->nheard; i++) {
        free(c->heard[i].chan);
        free(c->heard[i].said);
    }
    free(c->heard);
    c->heard = NULL;
    c->nheard = c->capheard = 0;
}

void cq_client_free(cq_client *c)
{
    if (c == NULL) return;
    rconn_close(&c->r);
    rconn_close(&c->sub);
    heard_clear(c);
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

int cq_client_queue_workers(cq_client *c, const char *queue, char *err, size_t errlen)
{
    if (keys_check_name("queue", queue, err, errlen) != 0) return -1;
    return catalog_queue_live(&c->r, &c->k, queue, err, errlen);
}

int cq_client_queue_paused(cq_client *c, const char *queue, char *err, size_t errlen)
{
    char kp[KEYS_KEY_MAX];
    redisReply *rep;
    int paused;

    if (keys_check_name("queue", queue, err, errlen) != 0) return -1;
    rep = rconn_commandf(&c->r, "SISMEMBER %s %s", keys_paused(&c->k, kp, sizeof kp), queue);
    if (rep == NULL) {
        err_set(err, errlen, "reading the paused queues: %s", c->r.errstr);
        return -1;
    }
    if (rep->type != REDIS_REPLY_INTEGER) {
        if (rep->type == REDIS_REPLY_ERROR)
            rconn_error(&c->r, "reading the paused queues", rep->str, err, errlen);
        else
            err_set(err, errlen, "reading the paused queues: redis: an unexpected reply");
        freeReplyObject(rep);
        return -1;
    }
    paused = rep->integer == 1;
    freeReplyObject(rep);
    return paused;
}

int cq_valid_name(const char *name)
{
    return name != NULL && keys_valid_name(name);
}

/* ---- job specs ------------------------------------------------------------------------ */

cq_jobspec *cq_jobspec_new(const char *func, const char *args_json, char *err, size_t errlen)
{
    cJSON *args = NULL;
    locale_t loc;
    cq_jobspec *s;

    if (registry_check_name(func, err, errlen) != 0) return NULL;
    if (args_json != NULL) {
        if (job_json_has_nul(args_json, strlen(args_json))) {
            err_set(err, errlen,
                    "%s: args hold a NUL character (\\u0000), which a C function cannot be "
                    "passed; send the bytes another way (e.g. base64)",
                    func);
            return NULL;
        }
        loc = locale_c_enter(); /* numbers read with a point, whatever the program's locale */
        args = cJSON_ParseWithOpts(args_json, NULL, 1); /* nothing after the array */
        locale_c_leave(loc);
        if (args == NULL && job_json_too_deep(args_json)) {
            err_set(err, errlen,
                    "%s: args nest arrays or objects deeper than %d levels, which cq's JSON "
                    "reader takes",
                    func, CJSON_NESTING_LIMIT);
            return NULL;
        }
        if (!cJSON_IsArray(args)) {
            cJSON_Delete(args);
            err_set(err, errlen, "%s: args must be a JSON array, e.g. [\"a\", 1]", func);
            return NULL;
        }
        if (!job_json_finite(args)) {
            cJSON_Delete(args);
            err_set(err, errlen,
                    "%s: args hold a number beyond a double's range (such as 1e400); send it "
                    "as a string",
                    func);
            return NULL;
        }
        /* cJSON's leniency, which a json argument's text is not allowed either (registry.c):
         * [0755] would arrive as [755], a raw tab in a string as a tab. */
        if (!job_json_strict(args_json)) {
            char shown[STR_SHOWN_LEN];
            cJSON_Delete(args);
            err_set(err, errlen,
                    "%s: args '%s' are not JSON as RFC 8259 writes it: a number has no leading "
                    "zero ([0755] would arrive as [755]), a string no raw control character "
                    "(write \\n, \\t), and only space, tab, CR and LF separate",
                    func, str_shown(args_json, shown, sizeof shown));
            return NULL;
        }
    }
    s = xcalloc(1, sizeof *s);
    s->job = job_new(func, args);
    /* cq_client_check asks who serves the job's queue before cq_enqueue */
    str_copy(s->job->queue, sizeof s->job->queue, "default");
    return s;
}

cq_jobspec *cq_jobspec_new_argv(const char *func, const char *const *argv, int argc)
{
    cJSON *args;
    cq_jobspec *s;
    int i;

    if (func == NULL || !registry_valid_name(func)) return NULL;
    args = xcheck(cJSON_CreateArray(), "job arguments");
    for (i = 0; i < argc; i++)
        cJSON_AddItemToArray(args,
                             xcheck(cJSON_CreateString(argv[i] ? argv[i] : ""), "a job argument"));
    s = xcalloc(1, sizeof *s);
    s->job = job_new(func, args);
    /* cq_client_check asks who serves the job's queue before cq_enqueue */
    str_copy(s->job->queue, sizeof s->job->queue, "default");
    s->convert = 1;
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
    /* The caller's id, checked at the enqueue, also in place of one cq_wait_prepare made. */
    s->job->id_fresh = 0;
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
    if (!isfinite(seconds) || seconds <= 0 || seconds >= CQ_TIME_MAX) return -1;
    s->job->timeout = seconds;
    return 0;
}

int cq_jobspec_set_at(cq_jobspec *s, double unix_time)
{
    if (!isfinite(unix_time) || unix_time < 0 || unix_time >= CQ_TIME_MAX) return -1;
    s->at = unix_time;
    return 0;
}

int cq_jobspec_check(const cq_jobspec *s, char *err, size_t errlen)
{
    return queue_check_record(s->job, err, errlen);
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

/* A function this client knows without the catalog: a built-in (noop, sleep), which every
 * cworker serves, or one the program declared as its workers' own (cenqueue's
 * download_link), taken as served alike. */
static int is_known(const cq_client *c, const char *func)
{
    return registry_find(c->known, func) != NULL;
}

/* f (in c->cache) and its served entry, live not asked yet. */
static const struct cq_function *cache_served(cq_client *c, const struct cq_function *f,
                                              double seen)
{
    c->served = xrealloc(c->served, sizeof *c->served * (size_t)c->cache->n);
    c->served[f->index].last = seen;
    c->served[f->index].live = -1;
    c->served[f->index].queue[0] = '\0';
    return f;
}

int cq_client_check(cq_client *c, cq_jobspec *s, char *warning, size_t warnlen, char *err,
                    size_t errlen)
{
    const char *func = s->job->func;
    const struct cq_function *f = registry_find(c->cache, func);
    double seen = 0;
    int known = is_known(c, func), live;

    if (warning != NULL && warnlen > 0) warning[0] = '\0';
    if (f == NULL) {
        int got = catalog_get(&c->r, &c->k, func, c->cache, &seen, err, errlen);
        if (got < 0) return -1;
        if (got == 1) {
            f = cache_served(c, registry_find(c->cache, func), seen);
        } else { /* not in the catalog: one this program knows? */
            const struct cq_function *k = registry_find(c->known, func);
            if (k == NULL) {
                unknown(c, func, err, errlen);
                return -1;
            }
            f = registry_describe(c->cache, func, k->spec, err, errlen);
            if (f == NULL) return -1;
            cache_served(c, f, 0);
        }
    }
    seen = c->served[f->index].last;
    live = c->served[f->index].live;
    /* Who serves it on the job's queue is asked once per function and client (a producer
     * feeding a million jobs pays for it once), again when the queue is not the one asked
     * for last, and by the next call where it could not be. */
    if (live < 0 || strcmp(c->served[f->index].queue, s->job->queue) != 0) {
        struct served *sv = &c->served[f->index];
        sv->elsewhere = 0;
        sv->takers = 0;
        live = known
            ? 1
            : catalog_live_on(&c->r, &c->k, func, s->job->queue, &sv->elsewhere, err, errlen);
        if (live < 0) return -1;
        /* A job no worker of its queue serves waits only while no worker takes from the
         * queue: one that does and lacks the function fails it when it takes it. */
        if (live == 0) {
            sv->takers = catalog_queue_live(&c->r, &c->k, s->job->queue, err, errlen);
            if (sv->takers < 0) return -1;
        }
        sv->live = live;
        str_copy(sv->queue, sizeof sv->queue, s->job->queue);
    }
    if (registry_check_args(f, s->job->args, s->convert, err, errlen) != 0) return -1;
    s->convert = 0;
    /* What cq_enqueue would refuse of it, said here with the rest: a caller that checks
     * each job as it reads it names the one at fault, before the others go. */
    if (cq_jobspec_check(s, err, errlen) != 0) return -1;
    /* Known functions (built-ins, the program's own) are taken as served: no worker yet is a
     * deploy still to come. */
    if (!known && warning != NULL && warnlen > 0 && live == 0) {
        double age = time_now() - seen;
        int elsewhere = c->served[f->index].elsewhere, takers = c->served[f->index].takers;
        char fate[KEYS_NAME_MAX + 96];
        if (takers == 0)
            str_copy(fate, sizeof fate, "the job waits until one does");
        else if (takers == 1)
            snprintf(fate, sizeof fate,
                     "the live worker of queue %s lacks it: the job fails when that worker "
                     "takes it",
                     s->job->queue);
        else
            snprintf(fate, sizeof fate,
                     "the %d live workers of queue %s lack it: the job fails when one of them "
                     "takes it",
                     takers, s->job->queue);
        if (elsewhere > 0)
            err_set(warning, warnlen,
                    "function %s: no live worker of queue %s serves it (%d serve%s it on other "
                    "queues: enqueue it to theirs, or start one that takes from %s; cqctl "
                    "workers lists them); %s",
                    func, s->job->queue, elsewhere, elsewhere == 1 ? "s" : "", s->job->queue, fate);
        else if (seen <= 0)
            err_set(warning, warnlen,
                    "function %s: no live worker serves it now (never served); %s", func, fate);
        else
            err_set(warning, warnlen,
                    "function %s: no live worker serves it now (last served "
                    "%.0f%s ago); %s",
                    func,
                    age < 120        ? age
                        : age < 7200 ? age / 60
                                     : age / 3600,
                    age < 120        ? "s"
                        : age < 7200 ? "m"
                                     : "h",
                    fate);
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
    /* queue_enqueue takes one due time per call: one call per run of equal times. Where
     * there are several, the records and the ids are checked for the whole first, so that a
     * refused one keeps out every job, as in one call. */
    for (i = 1; i < n && jobs[i]->at == jobs[0]->at; i++) continue;
    if (i < n) rc = queue_check_records(v, n, err, errlen);
    if (i < n && rc == 0) rc = queue_check_ids(&c->r, &c->k, v, n, err, errlen);
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
    [CQ_FAILED] = "failed",   [CQ_CANCELED] = "canceled",
};

const char *cq_status_state_name(enum cq_state state)
{
    return (unsigned)state < sizeof state_names / sizeof state_names[0] ? state_names[state]
                                                                        : "unknown";
}

int cq_state_ended(enum cq_state state)
{
    return state == CQ_FINISHED || state == CQ_FAILED || state == CQ_CANCELED;
}

static enum cq_state state_of(const char *name)
{
    size_t k;

    for (k = 1; k < sizeof state_names / sizeof state_names[0]; k++)
        if (strcmp(name, state_names[k]) == 0) return (enum cq_state)k;
    return CQ_UNKNOWN;
}

static cq_status *status_from(const redisReply *rep)
{
    cq_status *st = xcalloc(1, sizeof *st);
    size_t i;

    if (rep->type != REDIS_REPLY_ARRAY) return st;
    st->n = rep->elements / 2;
    st->names = xcalloc(st->n + 1, sizeof *st->names);
    st->values = xcalloc(st->n + 1, sizeof *st->values);
    for (i = 0; i < st->n; i++) {
        st->names[i] = xstrdup(rep->element[2 * i]->str ? rep->element[2 * i]->str : "");
        st->values[i] = xstrdup(rep->element[2 * i + 1]->str ? rep->element[2 * i + 1]->str : "");
        if (strcmp(st->names[i], "status") == 0) st->state = state_of(st->values[i]);
    }
    return st;
}

/* Read n statuses in one pipelined round trip (ids already checked). 0, or -1 with err and
 * *io set where the connection failed (1: the next call reconnects) or Redis answered LOADING
 * (2: restarted, it reads its data back and answers once it has), rather than refused. */
static int status_read(cq_client *c, const char *const *ids, size_t n, cq_status **out, int *io,
                       char *err, size_t errlen)
{
    char key[KEYS_KEY_MAX];
    size_t i, got = 0;

    *io = 0;
    for (i = 0; i < n; i++) out[i] = NULL;
    if (c->r.ctx == NULL && rconn_connect(&c->r) != 0) {
        err_set(err, errlen, "%s", c->r.errstr);
        *io = 1;
        return -1;
    }
    for (i = 0; i < n; i++)
        if (rconn_appendf(&c->r, "HGETALL %s", keys_job(&c->k, ids[i], key, sizeof key)) != 0)
            break;
    for (got = 0; got < i; got++) {
        redisReply *rep = rconn_read(&c->r);
        if (rep == NULL) break;
        if (rep->type == REDIS_REPLY_ERROR) {
            char what[200];
            snprintf(what, sizeof what, "job %s", ids[got]);
            if (strncmp(rep->str, "LOADING", 7) == 0) *io = 2;
            rconn_error(&c->r, what, rep->str, err, errlen);
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
        *io = 1;
        return -1;
    }
    return 0;
}

/* 0 when every id is a valid name, else -1 with err naming the first that is not. */
static int check_ids(const char *const *ids, size_t n, char *err, size_t errlen)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (keys_check_name("job id", ids[i], err, errlen) != 0) return -1;
    return 0;
}

int cq_status_get_many(cq_client *c, const char *const *ids, size_t n, cq_status **out, char *err,
                       size_t errlen)
{
    size_t i;
    int io;

    for (i = 0; i < n; i++) out[i] = NULL;
    if (check_ids(ids, n, err, errlen) != 0) return -1;
    return status_read(c, ids, n, out, &io, err, errlen);
}

int cq_status_get(cq_client *c, const char *id, cq_status **out, char *err, size_t errlen)
{
    return cq_status_get_many(c, &id, 1, out, err, errlen);
}

/* ---- waiting -------------------------------------------------------------------------- */

#define WAIT_BATCH      1000 /* channels a SUBSCRIBE, statuses a pipelined read */
#define WAIT_RETRY      30.0 /* seconds Redis may stay unreachable before a wait fails */
#define WAIT_IO_TIMEOUT 5.0  /* seconds a connect or a SUBSCRIBE's replies may take, at most */

/* Seconds of silence after which the awaited statuses are read (client.h: tests set it). */
double client_wait_recheck = 30.0;
void (*client_wait_pending_hook)(void);

/* W_READ: its status read once; W_LISTED: in w->notified, so that no job is there twice */
enum { W_DONE = 1, W_NOTIFIED = 2, W_READ = 4, W_LISTED = 8 };

/* A job's channel, to find the jobs a message is about (ids may repeat). */
struct chan {
    char *name;
    size_t i;
};

struct wait {
    cq_client *c;
    const char *const *ids;
    cq_status **out;
    size_t n, left;              /* left: jobs not seen ended */
    struct chan *chans;          /* sorted by name */
    const char **chan_of;        /* chan_of[i]: the channel of ids[i] */
    unsigned char *flags;        /* W_DONE, W_NOTIFIED, W_READ, W_LISTED */
    unsigned char *said;         /* the state a message announced */
    size_t *notified, nnotified; /* jobs a message named, to read: n at most (W_LISTED) */
    size_t confirmed;            /* SUBSCRIBE confirmations read */
    unsigned options;            /* cq_wait_each2's flags */
    cq_seen_fn fn;
    void *udata;
    int stopped; /* fn said stop: no more calls, the wait returns CQ_WAIT_STOPPED */
    char *err;
    size_t errlen;
};

static int chan_cmp(const void *a, const void *b)
{
    const struct chan *x = a, *y = b;
    int d = strcmp(x->name, y->name);

    return d != 0 ? d : x->i < y->i ? -1 : x->i > y->i;
}

/* A status that says only what a message said: for a job whose hash is gone already. */
static cq_status *status_said(enum cq_state state)
{
    cq_status *st = xcalloc(1, sizeof *st);

    st->state = state;
    st->n = 1;
    st->names = xcalloc(2, sizeof *st->names);
    st->values = xcalloc(2, sizeof *st->values);
    st->names[0] = xstrdup("status");
    st->values[0] = xstrdup(cq_status_state_name(state));
    return st;
}

/* Note a message on channel name with payload said: its jobs are to be read. */
static void on_message(struct wait *w, const char *name, const char *said)
{
    enum cq_state st = state_of(said);
    size_t lo = 0, hi = w->n;

    /* The first of the run of channels with this name (a job id may be given twice). */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(w->chans[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < w->n && strcmp(w->chans[lo].name, name) == 0; lo++) {
        size_t i = w->chans[lo].i;
        if (w->flags[i] & (W_DONE | W_NOTIFIED)) continue;
        w->flags[i] |= W_NOTIFIED;
        w->said[i] = (unsigned char)st;
        /* Listed once: a job read since (its flag cleared) and named again, requeued and
         * ended again, is listed already. */
        if (w->flags[i] & W_LISTED) continue;
        w->flags[i] |= W_LISTED;
        w->notified[w->nnotified++] = i;
    }
}

/* One reply on the waiting connection: a message, a confirmation or a pong. 0, or -1 with
 * err for an error reply (an ACL user without the channel, ...). */
static int on_reply(struct wait *w, const redisReply *rep)
{
    const char *kind;

    if (rep->type == REDIS_REPLY_ERROR) {
        rconn_error(&w->c->sub, "waiting for jobs", rep->str, w->err, w->errlen);
        return -1;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 || rep->element[0]->str == NULL)
        return 0;
    kind = rep->element[0]->str;
    if (strcmp(kind, "message") == 0 && rep->elements == 3 && rep->element[1]->str != NULL &&
        rep->element[2]->str != NULL)
        on_message(w, rep->element[1]->str, rep->element[2]->str);
    else if (strcmp(kind, "subscribe") == 0)
        w->confirmed++;
    return 0;
}

/* Read the messages that came on the waiting connection before now. A job whose end dropped
 * its hash at once (--result-ttl 0) had its message published before a status read that
 * found no hash; a SUBSCRIBE sent after that read, to chan, a channel it holds already (a
 * waiter may, where PING may be refused), is confirmed after that message on the same
 * connection, so everything up to the confirmation holds it. 0, or -1 with err and *io
 * where the connection failed or the confirmation did not come (the connection closed): its
 * subscriptions are lost, and the caller subscribes every channel again, on a new one. An
 * error reply ends the read (the channel is subscribed already). */
static int read_pending(struct wait *w, const char *chan, int *io)
{
    cq_client *c = w->c;
    const char *argv[2] = {"SUBSCRIBE", chan};
    redisReply *rep;
    int last = 0, got = 0;

    if (client_wait_pending_hook != NULL) client_wait_pending_hook();
    if (rconn_append(&c->sub, 2, argv, NULL) == 0) {
        while (!last && (got = rconn_read_timed(&c->sub, c->sub.timeout, &rep)) == 1) {
            last = rep->type == REDIS_REPLY_ERROR ||
                (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
                 rep->element[0]->str != NULL && strcmp(rep->element[0]->str, "subscribe") == 0 &&
                 rep->element[1]->str != NULL && strcmp(rep->element[1]->str, chan) == 0);
            if (rep->type != REDIS_REPLY_ERROR) (void)on_reply(w, rep);
            freeReplyObject(rep);
        }
        if (last) return 0;
        if (got == 0) {
            char where[300];
            rconn_where(&c->sub, where, sizeof where);
            rconn_close(&c->sub);
            err_set(c->sub.errstr, sizeof c->sub.errstr,
                    "redis %s: no reply to SUBSCRIBE %s within %g s", where, chan, c->sub.timeout);
        }
    }
    err_set(w->err, w->errlen, "waiting for jobs: %s", c->sub.errstr);
    *io = 1;
    return -1;
}

/* The first job of got (ids idx, m of them) read for the first time without a status, which
 * CQ_WAIT_UNKNOWN_ENDS stops waiting for: its index into w->ids, or w->n for none. */
static size_t first_unknown(const struct wait *w, const size_t *idx, cq_status *const *got,
                            size_t m)
{
    size_t j;

    if (!(w->options & CQ_WAIT_UNKNOWN_ENDS)) return w->n;
    for (j = 0; j < m; j++)
        if (got[j]->state == CQ_UNKNOWN && !(w->flags[idx[j]] & (W_READ | W_DONE))) return idx[j];
    return w->n;
}

/* Read the statuses of the jobs idx[0..k), WAIT_BATCH a round trip, and mark those ended
 * (with CQ_WAIT_UNKNOWN_ENDS, also those without a status at their first read). A job seen
 * ended keeps the status it ended with: a read again (its message came in the meantime)
 * finds the same, or no hash where it was dropped at once. A message read after the
 * statuses were asked for (read_pending's) may be of an end that came after the read: its
 * job stays notified (w->notified holds it), to be read again. 0, or -1 with err (*io: the
 * connection failed), or -1 with w->stopped when fn said stop (the batch's statuses are
 * kept all the same). */
static int read_statuses(struct wait *w, const size_t *idx, size_t k, int *io)
{
    const char *ids[WAIT_BATCH];
    cq_status *got[WAIT_BATCH];
    unsigned char known[WAIT_BATCH]; /* W_NOTIFIED where the message came before the read */
    size_t from, j;

    for (from = 0; from < k; from += WAIT_BATCH) {
        size_t m = k - from < WAIT_BATCH ? k - from : WAIT_BATCH;
        for (j = 0; j < m; j++) {
            ids[j] = w->ids[idx[from + j]];
            known[j] = w->flags[idx[from + j]] & W_NOTIFIED;
        }
        if (status_read(w->c, ids, m, got, io, w->err, w->errlen) != 0) return -1;
        j = first_unknown(w, idx + from, got, m);
        if (j < w->n && read_pending(w, w->chan_of[j], io) != 0) {
            for (j = 0; j < m; j++) cq_status_free(got[j]);
            return -1;
        }
        for (j = 0; j < m; j++) {
            size_t i = idx[from + j];
            enum cq_state said = (enum cq_state)w->said[i];
            int first = !(w->flags[i] & W_READ), gone;
            if (w->flags[i] & W_DONE) {
                cq_status_free(got[j]);
                continue;
            }
            if (got[j]->state == CQ_UNKNOWN && (w->flags[i] & W_NOTIFIED) && cq_state_ended(said)) {
                cq_status_free(got[j]);
                got[j] = status_said(said);
            }
            /* No status when first read, which is after subscribing (a job enqueued later,
             * or ended later, would be seen): not waited for, where the caller asks so. */
            gone = first && got[j]->state == CQ_UNKNOWN && (w->options & CQ_WAIT_UNKNOWN_ENDS);
            w->flags[i] = (unsigned char)((w->flags[i] & ~known[j]) | W_READ);
            cq_status_free(w->out[i]);
            w->out[i] = got[j];
            if (cq_state_ended(got[j]->state) || gone) {
                w->flags[i] |= W_DONE;
                w->left--;
                if (w->fn != NULL && !w->stopped && w->fn(i, got[j], w->udata) != 0) w->stopped = 1;
            }
        }
        if (w->stopped) return -1;
    }
    return 0;
}

/* Indexes of the jobs not seen ended, into idx (n entries); returns how many. */
static size_t awaited(const struct wait *w, size_t *idx)
{
    size_t i, k = 0;

    for (i = 0; i < w->n; i++)
        if (!(w->flags[i] & W_DONE)) idx[k++] = i;
    return k;
}

/* Read the statuses of the jobs not seen ended (*idx: room for their indexes, made on the
 * first call). 0, or -1 as read_statuses. */
static int read_awaited(struct wait *w, size_t **idx, int *io)
{
    size_t k;

    if (*idx == NULL) *idx = xcalloc(w->n, sizeof **idx);
    k = awaited(w, *idx);
    return k > 0 ? read_statuses(w, *idx, k, io) : 0;
}

/* Empty the list of the jobs a message named, into out (n entries) where it is not NULL:
 * how many there were. */
static size_t take_notified(struct wait *w, size_t *out)
{
    size_t j, k = w->nnotified;

    for (j = 0; j < k; j++) {
        w->flags[w->notified[j]] &= (unsigned char)~W_LISTED;
        if (out != NULL) out[j] = w->notified[j];
    }
    w->nnotified = 0;
    return k;
}

/* Subscribe to the channels of every job not seen ended, WAIT_BATCH a command, and read
 * each batch's statuses once Redis has confirmed its subscriptions. With
 * CQ_WAIT_UNKNOWN_ENDS, each read of a new connection's is a first read: a job whose hash
 * went while the last one was down (--result-ttl 0), its message lost with it, is not
 * waited for for good. 0, or -1 with err (*io: a connection failed). */
static int subscribe_all(struct wait *w, int *io)
{
    cq_client *c = w->c;
    const char *argv[WAIT_BATCH + 1];
    size_t *idx = xcalloc(w->n, sizeof *idx), k = awaited(w, idx), from, j;
    int rc = 0;

    *io = 0;
    /* Every job awaited is read below: the ones a message named are among them (their
     * flags still say what the message said), and the list starts again. */
    take_notified(w, NULL);
    if (w->options & CQ_WAIT_UNKNOWN_ENDS)
        for (j = 0; j < k; j++) w->flags[idx[j]] &= (unsigned char)~W_READ;
    argv[0] = "SUBSCRIBE";
    for (from = 0; from < k && rc == 0; from += WAIT_BATCH) {
        size_t m = k - from < WAIT_BATCH ? k - from : WAIT_BATCH;
        for (j = 0; j < m; j++) argv[j + 1] = w->chan_of[idx[from + j]];
        rc = rconn_append(&c->sub, (int)m + 1, argv, NULL);
        w->confirmed = 0;
        while (rc == 0 && w->confirmed < m) {
            redisReply *rep;
            int got = rconn_read_timed(&c->sub, c->sub.timeout, &rep);
            if (got == 1) {
                rc = on_reply(w, rep);
                freeReplyObject(rep);
                continue;
            }
            if (got == 0) {
                char where[300];
                rconn_where(&c->sub, where, sizeof where);
                rconn_close(&c->sub);
                err_set(c->sub.errstr, sizeof c->sub.errstr,
                        "redis %s: no reply to SUBSCRIBE within %g s", where, c->sub.timeout);
            }
            rc = -1;
        }
        if (rc != 0 && c->sub.ctx == NULL) {
            err_set(w->err, w->errlen, "waiting for jobs: %s", c->sub.errstr);
            *io = 1;
        }
        if (rc == 0) rc = read_statuses(w, idx + from, m, io);
    }
    free(idx);
    return rc;
}

/* Read what has arrived (at most a batch's worth), waiting up to seconds for the first. 0,
 * or -1 with err (*io: the connection failed). */
static int read_messages(struct wait *w, double seconds, int *io)
{
    redisReply *rep;
    int got, k;

    *io = 0;
    for (k = 0; k < WAIT_BATCH; k++) {
        got = rconn_read_timed(&w->c->sub, k == 0 ? seconds : 0, &rep);
        if (got == 0) return 0;
        if (got < 0) {
            err_set(w->err, w->errlen, "waiting for jobs: %s", w->c->sub.errstr);
            *io = 1;
            return -1;
        }
        got = on_reply(w, rep);
        freeReplyObject(rep);
        if (got != 0) return -1;
    }
    return 0;
}

/* Leave subscribe mode, so that the next wait starts on a clean connection; a connection
 * holding many channels is closed instead (reconnecting costs less than reading a reply for
 * each channel), and so is one whose reply does not come within UNSUBSCRIBE_WAIT seconds
 * (a Redis that stopped answering, which the wait has already waited for). */
#define UNSUBSCRIBE_WAIT 0.5

static void unsubscribe(cq_client *c, size_t channels)
{
    double t = c->sub.timeout < UNSUBSCRIBE_WAIT ? c->sub.timeout : UNSUBSCRIBE_WAIT;
    redisReply *rep;

    if (c->sub.ctx == NULL) return;
    if (channels <= WAIT_BATCH && rconn_appendf(&c->sub, "UNSUBSCRIBE") == 0) {
        while (rconn_read_timed(&c->sub, t, &rep) == 1) {
            int last = rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
                rep->element[0]->str != NULL && strcmp(rep->element[0]->str, "unsubscribe") == 0 &&
                rep->element[2]->type == REDIS_REPLY_INTEGER && rep->element[2]->integer == 0;
            freeReplyObject(rep);
            if (last) return;
        }
    }
    rconn_close(&c->sub);
}

static double mono_now(void)
{
    return (double)time_mono_ms() / 1000.0;
}

/* Subscribe, read, then wait for messages until every job has ended or the time is up;
 * reconnect and start over when a connection fails. */
static int wait_run(struct wait *w, double timeout)
{
    cq_client *c = w->c;
    double until = timeout > 0 ? mono_now() + timeout : 0, down_since = 0, recheck = 0;
    long pause = 50;
    int subscribed = 0, io = 0;
    size_t *idx = NULL, k;

    for (;;) {
        double now, left;

        if (!subscribed) {
            /* Connecting and subscribing wait for Redis no longer than the time left, but 1 s
             * at least, so that a short wait on a Redis that is only slow to answer a new
             * connection still reads the statuses. */
            left = until > 0 ? until - mono_now() : WAIT_IO_TIMEOUT;
            c->sub.timeout = left < 1.0 ? 1.0 : left > WAIT_IO_TIMEOUT ? WAIT_IO_TIMEOUT : left;
            if (c->sub.ctx == NULL && rconn_connect(&c->sub) != 0) {
                err_set(w->err, w->errlen, "waiting for jobs: %s", c->sub.errstr);
                io = 1;
            } else if (subscribe_all(w, &io) == 0) {
                subscribed = 1;
                down_since = 0;
                pause = 50;
                recheck = mono_now() + client_wait_recheck;
            } else if (!io) {
                break;
            }
        }
        if (subscribed && w->nnotified > 0) {
            /* From a copy: a message read meanwhile (read_pending's) lists its job again. */
            if (idx == NULL) idx = xcalloc(w->n, sizeof *idx);
            k = take_notified(w, idx);
            if (read_statuses(w, idx, k, &io) != 0) {
                if (!io) break;
                subscribed = 0; /* messages lost while it reconnects: read all again */
            }
        }
        if (subscribed && w->left == 0) {
            free(idx);
            return 0;
        }
        now = mono_now();
        if (subscribed && until > 0 && now >= until) {
            /* Time is up: the jobs still open are said as they are now, not as they were
             * when last read (a job queued then may have started since). Where that read
             * fails, they are said as last read, as before it. */
            if (read_awaited(w, &idx, &io) != 0 && w->errlen > 0) w->err[0] = '\0';
            free(idx);
            return w->stopped ? CQ_WAIT_STOPPED : 0;
        }
        if (subscribed) {
            left = recheck - now;
            if (until > 0 && until - now < left) left = until - now;
            if (read_messages(w, left > 0 ? left : 0, &io) != 0) {
                if (!io) break;
                subscribed = 0;
            } else if (w->nnotified > 0) {
                recheck = mono_now() + client_wait_recheck;
            } else if (mono_now() >= recheck) {
                if (read_awaited(w, &idx, &io) != 0) {
                    if (!io) break;
                    subscribed = 0;
                }
                recheck = mono_now() + client_wait_recheck;
            }
        }
        if (!subscribed) {
            /* Redis is unreachable or a connection failed: try again, for a while. */
            rconn_close(&c->sub);
            now = mono_now();
            /* A Redis that answers LOADING is back and reads its data: waited for as long as
             * the load takes (to the timeout), as a worker waits for it, where that answer
             * failed the wait at once (the statuses' read took it for a refusal). */
            if (down_since == 0 || io == 2) down_since = now;
            if (now - down_since >= WAIT_RETRY || (until > 0 && now >= until)) break;
            if (until > 0 && (until - now) * 1000 < pause) pause = (long)((until - now) * 1000) + 1;
            sleep_ms(pause);
            pause = pause * 2 > 2000 ? 2000 : pause * 2;
        }
    }
    free(idx);
    return w->stopped ? CQ_WAIT_STOPPED : -1;
}

int cq_wait_each2(cq_client *c, const char *const *ids, size_t n, double timeout, unsigned flags,
                  cq_status **out, cq_seen_fn fn, void *udata, char *err, size_t errlen)
{
    char name[KEYS_KEY_MAX];
    struct wait w;
    size_t i;
    int rc;

    for (i = 0; i < n; i++) out[i] = NULL;
    if (!(timeout >= 0)) { /* NaN too */
        err_set(err, errlen, "waiting for jobs: a timeout of %g s: give 0 (none) or more", timeout);
        return -1;
    }
    if (check_ids(ids, n, err, errlen) != 0) return -1;
    if (n == 0) return 0;
    memset(&w, 0, sizeof w);
    w.c = c;
    w.ids = ids;
    w.out = out;
    w.n = w.left = n;
    w.options = flags;
    w.fn = fn;
    w.udata = udata;
    w.err = err;
    w.errlen = errlen;
    w.chans = xcalloc(n, sizeof *w.chans);
    w.flags = xcalloc(n, 1);
    w.said = xcalloc(n, 1);
    w.notified = xcalloc(n, sizeof *w.notified);
    for (i = 0; i < n; i++) {
        w.chans[i].name = xstrdup(keys_ended(&c->k, ids[i], name, sizeof name));
        w.chans[i].i = i;
    }
    qsort(w.chans, n, sizeof *w.chans, chan_cmp);
    w.chan_of = xcalloc(n, sizeof *w.chan_of);
    for (i = 0; i < n; i++) w.chan_of[w.chans[i].i] = w.chans[i].name;
    /* The ends cq_wait_prepare read come first, as they came. */
    for (i = 0; i < c->nheard; i++) on_message(&w, c->heard[i].chan, c->heard[i].said);
    heard_clear(c);
    rc = wait_run(&w, timeout);
    unsubscribe(c, n);
    if (rc < 0)
        for (i = 0; i < n; i++) {
            cq_status_free(out[i]);
            out[i] = NULL;
        }
    for (i = 0; i < n; i++) free(w.chans[i].name);
    free(w.chans);
    free(w.chan_of);
    free(w.flags);
    free(w.said);
    free(w.notified);
    return rc;
}

/* cq_wait_each's fn, called through cq_wait_each2's, which never stops the wait. */
struct ended_call {
    cq_ended_fn fn;
    void *udata;
};

static int on_ended(size_t i, const cq_status *st, void *udata)
{
    const struct ended_call *e = udata;

    e->fn(i, st, e->udata);
    return 0;
}

int cq_wait_each(cq_client *c, const char *const *ids, size_t n, double timeout, cq_status **out,
                 cq_ended_fn fn, void *udata, char *err, size_t errlen)
{
    struct ended_call e = {fn, udata};

    return cq_wait_each2(c, ids, n, timeout, 0, out, fn != NULL ? on_ended : NULL, &e, err, errlen);
}

int cq_wait_many(cq_client *c, const char *const *ids, size_t n, double timeout, cq_status **out,
                 char *err, size_t errlen)
{
    return cq_wait_each2(c, ids, n, timeout, 0, out, NULL, NULL, err, errlen);
}

int cq_wait(cq_client *c, const char *id, double timeout, cq_status **out, char *err, size_t errlen)
{
    return cq_wait_many(c, &id, 1, timeout, out, err, errlen);
}

/* One reply to cq_wait_prepare's SUBSCRIBE: a confirmation (1), a job's end, kept for the
 * next wait (0), or an error reply (-1 with err). */
static int prepare_reply(cq_client *c, const redisReply *rep, char *err, size_t errlen)
{
    const char *kind;

    if (rep->type == REDIS_REPLY_ERROR) {
        rconn_error(&c->sub, "subscribing to the jobs' ends", rep->str, err, errlen);
        return -1;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 || rep->element[0]->str == NULL)
        return 0;
    kind = rep->element[0]->str;
    if (strcmp(kind, "subscribe") == 0) return 1;
    if (strcmp(kind, "message") == 0 && rep->elements == 3 && rep->element[1]->str != NULL &&
        rep->element[2]->str != NULL) {
        if (c->nheard == c->capheard) {
            c->capheard = c->capheard ? 2 * c->capheard : 64;
            c->heard = xrealloc(c->heard, c->capheard * sizeof *c->heard);
        }
        c->heard[c->nheard].chan = xstrdup(rep->element[1]->str);
        c->heard[c->nheard++].said = xstrdup(rep->element[2]->str);
    }
    return 0;
}

/* SUBSCRIBE c->sub, connected, to the channels of jobs[0..n), WAIT_BATCH a command, reading
 * up to each batch's confirmations (prepare_reply). 0, or -1 with err, *io set where the
 * connection failed rather than Redis refused. */
static int prepare_subscribe(cq_client *c, cq_jobspec *const *jobs, size_t n, int *io, char *err,
                             size_t errlen)
{
    const char *argv[WAIT_BATCH + 1];
    char *chans[WAIT_BATCH], name[KEYS_KEY_MAX];
    size_t from, j, m;
    int rc = 0;

    *io = 0;
    argv[0] = "SUBSCRIBE";
    for (from = 0; from < n && rc == 0; from += m) {
        size_t confirmed = 0;
        m = n - from < WAIT_BATCH ? n - from : WAIT_BATCH;
        for (j = 0; j < m; j++) {
            chans[j] = xstrdup(keys_ended(&c->k, jobs[from + j]->job->id, name, sizeof name));
            argv[j + 1] = chans[j];
        }
        rc = rconn_append(&c->sub, (int)m + 1, argv, NULL);
        if (rc != 0) {
            err_set(err, errlen, "subscribing to the jobs' ends: %s", c->sub.errstr);
            *io = 1;
        }
        while (rc == 0 && confirmed < m) {
            redisReply *rep;
            int got = rconn_read_timed(&c->sub, c->sub.timeout, &rep);
            if (got == 1) {
                int k = prepare_reply(c, rep, err, errlen);
                freeReplyObject(rep);
                if (k < 0) rc = -1;
                confirmed += (size_t)(k > 0);
                continue;
            }
            if (got == 0) {
                char where[300];
                rconn_where(&c->sub, where, sizeof where);
                err_set(err, errlen,
                        "subscribing to the jobs' ends: redis %s: no reply to SUBSCRIBE within "
                        "%g s",
                        where, c->sub.timeout);
            } else {
                err_set(err, errlen, "subscribing to the jobs' ends: %s", c->sub.errstr);
                *io = 1;
            }
            rc = -1;
        }
        for (j = 0; j < m; j++) free(chans[j]);
    }
    return rc;
}

int cq_wait_prepare(cq_client *c, cq_jobspec *const *jobs, size_t n, char *err, size_t errlen)
{
    struct job **v;
    size_t j;
    int rc, io, held;

    if (n == 0) return 0;
    v = xcalloc(n, sizeof *v);
    for (j = 0; j < n; j++) v[j] = jobs[j]->job;
    job_fill_ids(v, n);
    free(v);
    c->sub.timeout = WAIT_IO_TIMEOUT;
    held = c->sub.ctx != NULL; /* open since an earlier prepare: Redis may have closed it */
    if (!held && rconn_connect(&c->sub) != 0) {
        err_set(err, errlen, "subscribing to the jobs' ends: %s", c->sub.errstr);
        return -1;
    }
    rc = prepare_subscribe(c, jobs, n, &io, err, errlen);
    /* A connection an earlier prepare left, closed since (CLIENT KILL TYPE pubsub, its output
     * buffer's limit, a restart): once more on a new one, where the run stopped there. The
     * ends it carried meanwhile are lost with it: the wait reads those jobs' statuses. */
    if (rc != 0 && io && held) {
        rconn_close(&c->sub);
        if (rconn_connect(&c->sub) != 0)
            err_set(err, errlen, "subscribing to the jobs' ends: %s", c->sub.errstr);
        else
            rc = prepare_subscribe(c, jobs, n, &io, err, errlen);
    }
    /* Half subscribed, or with replies still to come: a wait starts on a new connection. */
    if (rc != 0) rconn_close(&c->sub);
    return rc;
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
