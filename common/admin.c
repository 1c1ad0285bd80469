/* admin.c - what an operator reads and changes in Redis (cqctl); see admin.h.
 *
 * DESIGN. Reads are pipelined rounds of plain commands (the sets, then one LLEN or HMGET per
 * queue and worker, then the in-flight lists of live workers), so that a picture of a
 * thousand queues costs three round trips; none reads a whole list, only counts and pages.
 * Changes are Lua scripts, one per job or per batch of 1,000 records, so that a worker sees
 * a job either before or after an operator's change, never half of it:
 *
 *   requeue   failed hash + failed set       -> record LPUSHed to its queue, status queued
 *   cancel    queued/scheduled/retrying      -> status canceled, id in the cancel set (the
 *                                               worker that takes the record drops it), or
 *                                               the scheduled record removed outright
 *             started                        -> id in the cancel set: its worker stops it
 *   delete    any                            -> cancel if not ended, then the hash is gone
 *   empty     queue                          -> records popped, their statuses canceled
 *   pause     paused set                     -> workers skip the queue
 *
 * Why requeue encodes the new record here and not in Lua: Redis's cjson turns an empty
 * array into {} and rounds numbers to 14 digits, so a record re-encoded there could come
 * out as a job with "args":{}. The script instead gets the record it must find (a
 * compare-and-set on the hash's record field) and the new one made with cJSON here.
 */
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "catalog.h"
#include "job.h"
#include "util.h"

#define LIST_MAX       10000 /* entries one page may hold */
#define FIND_PAGE      1000  /* records read at a time when looking for a job's record */
#define FIND_END_PAGES 5     /* ...at most this many pages from each end of a queue */
#define REQUEUE_PAGE   1000
#define EMPTY_BATCH    1000
/* How long the status of a job canceled before it ran is kept: a worker's default
 * --failure-ttl (a year), which is what a worker sets when it drops such a record itself. */
#define CANCELED_TTL "31536000"

const char *const admin_bucket_bounds[ADMIN_BUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",  "1",
    "2.5",   "5",    "10",    "30",   "60",  "300",  "+Inf",
};

/* ---- connection ------------------------------------------------------------------- */

int admin_init(struct admin *a, const char *url, const char *prefix, char *err, size_t errlen)
{
    struct rconn_url u;
    char db[32] = "";

    memset(a, 0, sizeof *a);
    if (rconn_parse_default_url(url, &u, err, errlen) != 0) return -1;
    if (keys_init_default(&a->k, prefix, err, errlen) != 0) return -1;
    rconn_init(&a->r, &u, 10.0);
    /* the database as the URL gives it: HOST:PORT/2, or /path.sock?db=2 (a path's /2 would
     * read as a file of a directory) */
    if (u.db != 0) snprintf(db, sizeof db, u.unix_path[0] ? "?db=%d" : "/%d", u.db);
    if (u.unix_path[0])
        snprintf(a->where, sizeof a->where, "%s%s", u.unix_path, db);
    else
        snprintf(a->where, sizeof a->where, "%s:%d%s", u.host, u.port, db);
    return 0;
}

int admin_connect(struct admin *a, char *err, size_t errlen)
{
    if (rconn_connect(&a->r) == 0) return 0;
    err_set(err, errlen, "%s", a->r.errstr);
    return -1;
}

void admin_close(struct admin *a)
{
    rconn_close(&a->r);
}

/* ---- replies ---------------------------------------------------------------------- */

static int io_error(struct admin *a, char *err, size_t errlen)
{
    err_set(err, errlen, "%s", a->r.errstr[0] ? a->r.errstr : "redis: not connected");
    return -1;
}

static void free_replies(redisReply **reps, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (reps[i] != NULL) freeReplyObject(reps[i]);
        reps[i] = NULL;
    }
}

/* Read n pipelined replies into reps. -1 (none kept) when the connection failed. */
static int read_replies(struct admin *a, redisReply **reps, size_t n, char *err, size_t errlen)
{
    size_t i;

    for (i = 0; i < n; i++) {
        reps[i] = rconn_read(&a->r);
        if (reps[i] == NULL) {
            free_replies(reps, i);
            return io_error(a, err, errlen);
        }
    }
    return 0;
}

/* A single command's reply: NULL (err set) on an I/O error or an error reply, which names
 * what; a script's own error ("cq: " and a line in cq's words) is that line alone. */
static redisReply *checked(struct admin *a, redisReply *rep, const char *what, char *err,
                           size_t errlen)
{
    if (rep == NULL) {
        io_error(a, err, errlen);
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "cq: ", 4) == 0) {
        err_set(err, errlen, "%s", rep->str + 4);
        freeReplyObject(rep);
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        rconn_error(&a->r, what, rep->str, err, errlen);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* ---- keys of another type ---------------------------------------------------------- */

/* A key of cq's, for naming it when Redis says one is of another type (WRONGTYPE, also from
 * inside a script, which does not say which key): what it is to an operator, its key, the
 * type cq keeps there. */
struct kept {
    const char *what; /* "the known queues", "queue 'q'", "job ID" */
    const char *key;
    const char *type; /* as TYPE says it: "list", "set", "zset", "hash" */
};

static int wrongtype(const redisReply *rep)
{
    return rep != NULL && rep->type == REDIS_REPLY_ERROR && strstr(rep->str, "WRONGTYPE") != NULL;
}

/* The first of the n keys whose TYPE is neither its own nor none, said in err in cq's words:
 * "the known queues: its key cq:queues is a string, not a set". 0 when one was, -1 when none
 * was (or Redis failed: err is then left alone, and the caller says what it has). Not to be
 * called while replies are pending. */
static int name_wrongtype(struct admin *a, const struct kept *k, size_t n, char *err, size_t errlen)
{
    size_t i;
    int rc = -1;

    for (i = 0; i < n && rc != 0; i++) {
        redisReply *t = rconn_commandf(&a->r, "TYPE %s", k[i].key);
        if (t != NULL && t->type == REDIS_REPLY_STATUS && strcmp(t->str, "none") != 0 &&
            strcmp(t->str, k[i].type) != 0) {
            err_set(err, errlen, "%s: its key %s is a %s, not a %s", k[i].what, k[i].key, t->str,
                    k[i].type);
            rc = 0;
        }
        if (t != NULL) freeReplyObject(t);
    }
    return rc;
}

/* What an error reply rep about the one key of k says, in err: "WHAT: its key KEY is a
 * string, not a hash" for a key of another type, else "WHAT: key KEY: redis HOST:PORT:
 * ERROR; FIX" (rconn_error). */
static void key_error(struct admin *a, const redisReply *rep, const struct kept *k, char *err,
                      size_t errlen)
{
    char ctx[2 * KEYS_KEY_MAX];

    if (wrongtype(rep) && name_wrongtype(a, k, 1, err, errlen) == 0) return;
    snprintf(ctx, sizeof ctx, "%s: key %s", k->what, k->key);
    rconn_error(&a->r, ctx, rep->str, err, errlen);
}

/* checked(), where a WRONGTYPE names the key of k[0..n-1] that is of another type. */
static redisReply *checked_kept(struct admin *a, redisReply *rep, const char *what,
                                const struct kept *k, size_t n, char *err, size_t errlen)
{
    if (wrongtype(rep) && name_wrongtype(a, k, n, err, errlen) == 0) {
        freeReplyObject(rep);
        return NULL;
    }
    return checked(a, rep, what, err, errlen);
}

static int is_error(const redisReply *rep)
{
    return rep == NULL || rep->type == REDIS_REPLY_ERROR;
}

/* An integer reply, or a number in a string reply (HMGET); dflt for nil or anything else. */
static long long as_ll(const redisReply *rep, long long dflt)
{
    char *end;
    long long v;

    if (rep == NULL) return dflt;
    if (rep->type == REDIS_REPLY_INTEGER) return rep->integer;
    if (rep->type != REDIS_REPLY_STRING) return dflt;
    v = strtoll(rep->str, &end, 10);
    if (end == rep->str) return dflt;
    return v;
}

static double as_double(const redisReply *rep)
{
    if (rep == NULL || rep->type != REDIS_REPLY_STRING) return 0;
    return strtod_c(rep->str, NULL);
}

/* A copy of a string reply, or of "" when it is not one. */
static char *as_str(const redisReply *rep)
{
    if (rep == NULL || rep->type != REDIS_REPLY_STRING) return xstrdup("");
    return xstrdup(rep->str);
}

/* A copy of a string reply, or NULL when it is not one (nil). */
static char *str_or_null(const redisReply *rep)
{
    return rep != NULL && rep->type == REDIS_REPLY_STRING ? xstrdup(rep->str) : NULL;
}

/* The i-th element of an array reply, or NULL. */
static const redisReply *elem(const redisReply *rep, size_t i)
{
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || i >= rep->elements) return NULL;
    return rep->element[i];
}

/* ---- queues and workers ----------------------------------------------------------- */

static int by_queue(const void *x, const void *y)
{
    return strcmp(((const struct admin_queue *)x)->name, ((const struct admin_queue *)y)->name);
}

static int by_worker(const void *x, const void *y)
{
    return strcmp(((const struct admin_worker *)x)->id, ((const struct admin_worker *)y)->id);
}

/* Remember the first key of another type met (k says what it is) and count the others; the
 * read goes on without them. Called once every reply of a pipeline is read. */
static void note(struct admin *a, struct admin_info *in, const redisReply *rep,
                 const struct kept *k)
{
    if (!is_error(rep)) return;
    if (in->nwarn++ == 0) key_error(a, rep, k, in->warn, sizeof in->warn);
}

/* Add the valid names of a set's members to the queue list (duplicates are removed
 * later). */
static void add_queue_names(struct admin_info *in, const redisReply *set, size_t *cap)
{
    size_t i;

    for (i = 0; set != NULL && set->type == REDIS_REPLY_ARRAY && i < set->elements; i++) {
        const redisReply *e = set->element[i];
        if (e->type != REDIS_REPLY_STRING || !keys_valid_name(e->str)) continue;
        if (in->nqueues == *cap) {
            *cap = *cap ? *cap * 2 : 16;
            in->queues = xrealloc(in->queues, *cap * sizeof *in->queues);
        }
        memset(&in->queues[in->nqueues], 0, sizeof in->queues[0]);
        str_copy(in->queues[in->nqueues].name, sizeof in->queues[0].name, e->str);
        in->nqueues++;
    }
}

static struct admin_queue *find_queue(struct admin_info *in, const char *name)
{
    struct admin_queue key;

    /* No queues: in->queues is NULL, which bsearch must not be given. */
    if (in->nqueues == 0 || str_copy(key.name, sizeof key.name, name) != 0) return NULL;
    return bsearch(&key, in->queues, in->nqueues, sizeof key, by_queue);
}

/* The sets and counters. */
static int read_heads(struct admin *a, struct admin_info *in, char *err, size_t errlen)
{
    char kq[KEYS_KEY_MAX], kw[KEYS_KEY_MAX], kp[KEYS_KEY_MAX], ks[KEYS_KEY_MAX];
    char kf[KEYS_KEY_MAX], kd[KEYS_KEY_MAX];
    redisReply *h[6];
    size_t i, cap = 0, o;

    keys_queues(&a->k, kq, sizeof kq);
    keys_workers(&a->k, kw, sizeof kw);
    keys_paused(&a->k, kp, sizeof kp);
    keys_scheduled(&a->k, ks, sizeof ks);
    keys_failed(&a->k, kf, sizeof kf);
    keys_dead(&a->k, kd, sizeof kd);
    if (rconn_appendf(&a->r, "SMEMBERS %s", kq) != 0 ||
        rconn_appendf(&a->r, "SMEMBERS %s", kw) != 0 ||
        rconn_appendf(&a->r, "SMEMBERS %s", kp) != 0 || rconn_appendf(&a->r, "ZCARD %s", ks) != 0 ||
        rconn_appendf(&a->r, "ZCARD %s", kf) != 0 || rconn_appendf(&a->r, "LLEN %s", kd) != 0)
        return io_error(a, err, errlen);
    if (read_replies(a, h, 6, err, errlen) != 0) return -1;
    for (i = 0; i < 3; i++) {
        if (is_error(h[i])) {
            const struct kept k = {i == 0       ? "the known queues"
                                       : i == 1 ? "the registered workers"
                                                : "the paused queues",
                                   i == 0       ? kq
                                       : i == 1 ? kw
                                                : kp,
                                   "set"};
            key_error(a, h[i], &k, err, errlen);
            free_replies(h, 6);
            return -1;
        }
    }
    add_queue_names(in, h[0], &cap);
    add_queue_names(in, h[2], &cap);
    if (in->nqueues > 0) qsort(in->queues, in->nqueues, sizeof *in->queues, by_queue);
    for (i = 0, o = 0; i < in->nqueues; i++) /* unique names */
        if (o == 0 || strcmp(in->queues[o - 1].name, in->queues[i].name) != 0)
            in->queues[o++] = in->queues[i];
    in->nqueues = o;
    for (i = 0; i < h[2]->elements; i++) {
        struct admin_queue *q = find_queue(in, h[2]->element[i]->str);
        if (q != NULL) q->paused = 1;
    }
    in->workers = xcalloc(h[1]->elements ? h[1]->elements : 1, sizeof *in->workers);
    for (i = 0; i < h[1]->elements; i++) {
        const redisReply *e = h[1]->element[i];
        if (e->type != REDIS_REPLY_STRING || !keys_valid_name(e->str)) continue;
        str_copy(in->workers[in->nworkers].id, sizeof in->workers[0].id, e->str);
        in->nworkers++;
    }
    if (in->nworkers > 0) qsort(in->workers, in->nworkers, sizeof *in->workers, by_worker);
    in->scheduled = as_ll(h[3], -1);
    in->failed = as_ll(h[4], -1);
    in->dead = as_ll(h[5], -1);
    {
        const struct kept k[3] = {{"the scheduled set", ks, "zset"},
                                  {"the failed set", kf, "zset"},
                                  {"the dead list", kd, "list"}};
        for (i = 0; i < 3; i++) note(a, in, h[3 + i], &k[i]);
    }
    free_replies(h, 6);
    return 0;
}

static const char *const worker_fields[] = {"host",         "pid",       "queues", "concurrency",
                                            "busy",         "processed", "failed", "started_at",
                                            "heartbeat_at", "functions"};
#define NWF (sizeof worker_fields / sizeof worker_fields[0])

/* Each queue's depth and throughput, each worker's hash and lease. */
static int read_details(struct admin *a, struct admin_info *in, char *err, size_t errlen)
{
    size_t nq = in->nqueues, nw = in->nworkers, n = 2 * nq + 2 * nw, i, f;
    long minute = (long)(in->now / 60);
    redisReply **reps;
    char key[KEYS_KEY_MAX];

    if (n == 0) return 0;
    for (i = 0; i < nq; i++) {
        const char *name = in->queues[i].name;
        if (rconn_appendf(&a->r, "LLEN %s", keys_queue(&a->k, name, key, sizeof key)) != 0 ||
            rconn_appendf(&a->r, "HMGET %s %ld %ld", keys_counts(&a->k, name, key, sizeof key),
                          minute, minute - 1) != 0)
            return io_error(a, err, errlen);
    }
    for (i = 0; i < nw; i++) {
        const char *argv[2 + NWF];
        argv[0] = "HMGET";
        argv[1] = keys_worker(&a->k, in->workers[i].id, key, sizeof key);
        for (f = 0; f < NWF; f++) argv[2 + f] = worker_fields[f];
        if (rconn_append(&a->r, 2 + NWF, argv, NULL) != 0 ||
            rconn_appendf(&a->r, "EXISTS %s",
                          keys_worker_lease(&a->k, in->workers[i].id, key, sizeof key)) != 0)
            return io_error(a, err, errlen);
    }
    reps = xcalloc(n, sizeof *reps);
    if (read_replies(a, reps, n, err, errlen) != 0) {
        free(reps);
        return -1;
    }
    for (i = 0; i < nq; i++) {
        struct admin_queue *q = &in->queues[i];
        char what[KEYS_NAME_MAX + 16];
        struct kept k = {what, key, "list"};
        q->depth = as_ll(reps[2 * i], -1);
        snprintf(what, sizeof what, "queue '%s'", q->name);
        keys_queue(&a->k, q->name, key, sizeof key);
        if (is_error(reps[2 * i])) note(a, in, reps[2 * i], &k);
        q->last_minute = as_ll(elem(reps[2 * i + 1], 0), 0) + as_ll(elem(reps[2 * i + 1], 1), 0);
    }
    for (i = 0; i < nw; i++) {
        struct admin_worker *w = &in->workers[i];
        const redisReply *h = reps[2 * nq + 2 * i];
        if (is_error(h)) { /* shown with what it has: nothing but its id and lease */
            char what[KEYS_NAME_MAX + 16];
            struct kept k = {what, key, "hash"};
            snprintf(what, sizeof what, "worker %s", w->id);
            keys_worker(&a->k, w->id, key, sizeof key);
            note(a, in, h, &k);
        }
        w->host = as_str(elem(h, 0));
        w->pid = (long)as_ll(elem(h, 1), 0);
        w->queues = as_str(elem(h, 2));
        w->concurrency = (long)as_ll(elem(h, 3), 0);
        w->busy = (long)as_ll(elem(h, 4), 0);
        w->processed = as_ll(elem(h, 5), 0);
        w->failed = as_ll(elem(h, 6), 0);
        w->started_at = as_double(elem(h, 7));
        w->heartbeat_at = as_double(elem(h, 8));
        w->functions = as_str(elem(h, 9));
        w->live = as_ll(reps[2 * nq + 2 * i + 1], 0) == 1;
        if (w->live) in->live++;
    }
    free_replies(reps, n);
    free(reps);
    return 0;
}

/* What workers hold, per queue: one LLEN per (worker, queue it serves). A gone worker's are
 * counted until a live worker's recovery returns them: with no live worker, nothing does, and
 * they would be nowhere to see. */
static int read_inflight(struct admin *a, struct admin_info *in, char *err, size_t errlen)
{
    struct admin_queue **of = NULL;
    redisReply **reps;
    size_t n = 0, cap = 0, i;
    char key[KEYS_KEY_MAX];

    for (i = 0; i < in->nworkers; i++) {
        const struct admin_worker *w = &in->workers[i];
        const char *p = w->queues;
        while (*p) {
            size_t len = strcspn(p, ",");
            char q[KEYS_NAME_MAX + 1];
            struct admin_queue *aq = NULL;
            if (len > 0 && len < sizeof q) {
                memcpy(q, p, len);
                q[len] = '\0';
                aq = find_queue(in, q);
            }
            p += len + (p[len] == ',');
            if (aq == NULL) continue;
            if (rconn_appendf(&a->r, "LLEN %s",
                              keys_inflight(&a->k, w->id, aq->name, key, sizeof key)) != 0) {
                free(of);
                return io_error(a, err, errlen);
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                of = xrealloc(of, cap * sizeof *of);
            }
            of[n++] = aq;
        }
    }
    if (n == 0) return 0;
    reps = xcalloc(n, sizeof *reps);
    if (read_replies(a, reps, n, err, errlen) != 0) {
        free(reps);
        free(of);
        return -1;
    }
    for (i = 0; i < n; i++) {
        long long v = as_ll(reps[i], 0);
        if (v > 0) of[i]->inflight += v;
    }
    free_replies(reps, n);
    free(reps);
    free(of);
    return 0;
}

int admin_info_read(struct admin *a, struct admin_info *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->now = time_now();
    if (read_heads(a, out, err, errlen) != 0 || read_details(a, out, err, errlen) != 0 ||
        read_inflight(a, out, err, errlen) != 0) {
        admin_info_free(out);
        return -1;
    }
    return 0;
}

void admin_info_free(struct admin_info *in)
{
    size_t i;

    for (i = 0; i < in->nworkers; i++) {
        free(in->workers[i].host);
        free(in->workers[i].queues);
        free(in->workers[i].functions);
    }
    free(in->workers);
    free(in->queues);
    memset(in, 0, sizeof *in);
}

int admin_minutes_read(struct admin *a, const struct admin_info *in, int minutes, long long *out,
                       char *err, size_t errlen)
{
    const char *argv[2 + ADMIN_MINUTES_MAX];
    char key[KEYS_KEY_MAX], fields[ADMIN_MINUTES_MAX][24];
    long now = (long)(time_now() / 60);
    redisReply **reps;
    size_t i;
    int m;

    if (minutes < 1 || minutes > ADMIN_MINUTES_MAX) {
        err_set(err, errlen, "minutes: 1 to %d", ADMIN_MINUTES_MAX);
        return -1;
    }
    if (in->nqueues == 0) return 0;
    argv[0] = "HMGET";
    for (m = 0; m < minutes; m++) {
        snprintf(fields[m], sizeof fields[m], "%ld", now - (minutes - 1 - m));
        argv[2 + m] = fields[m];
    }
    for (i = 0; i < in->nqueues; i++) {
        argv[1] = keys_counts(&a->k, in->queues[i].name, key, sizeof key);
        if (rconn_append(&a->r, 2 + minutes, argv, NULL) != 0) return io_error(a, err, errlen);
    }
    reps = xcalloc(in->nqueues, sizeof *reps);
    if (read_replies(a, reps, in->nqueues, err, errlen) != 0) {
        free(reps);
        return -1;
    }
    for (i = 0; i < in->nqueues; i++) /* a key of another type: zeros (info warns of it) */
        for (m = 0; m < minutes; m++)
            out[i * (size_t)minutes + (size_t)m] = as_ll(elem(reps[i], (size_t)m), 0);
    free_replies(reps, in->nqueues);
    free(reps);
    return 0;
}

/* The counters of the stats hash, in the order of struct admin_counters. */
#define STATS_FIELDS "processed failed retried recovered handed_back"

static void counters_from(struct admin_counters *c, const redisReply *rep)
{
    c->processed = as_ll(elem(rep, 0), 0);
    c->failed = as_ll(elem(rep, 1), 0);
    c->retried = as_ll(elem(rep, 2), 0);
    c->recovered = as_ll(elem(rep, 3), 0);
    c->handed_back = as_ll(elem(rep, 4), 0);
}

int admin_counters_read(struct admin *a, struct admin_counters *out, char *err, size_t errlen)
{
    char ks[KEYS_KEY_MAX];
    const struct kept k = {"the stats", ks, "hash"};
    redisReply *rep;

    memset(out, 0, sizeof *out);
    keys_stats(&a->k, ks, sizeof ks);
    rep = checked_kept(a, rconn_commandf(&a->r, "HMGET %s " STATS_FIELDS, ks), ks, &k, 1, err,
                       errlen);
    if (rep == NULL) return -1;
    counters_from(out, rep);
    freeReplyObject(rep);
    return 0;
}

/* ---- lists of jobs ---------------------------------------------------------------- */

static char *json_string(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? xstrdup(v->valuestring) : NULL;
}

/* Fill e from a record: a copy of it, and what can be read from it. */
static void entry_from_record(struct admin_entry *e, const char *rec, size_t len)
{
    cJSON *o, *v;

    e->record = xmalloc(len + 1);
    memcpy(e->record, rec, len);
    e->record[len] = '\0';
    e->len = len;
    o = cJSON_ParseWithLength(rec, len);
    if (cJSON_IsObject(o)) {
        e->id = json_string(o, "id");
        e->func = json_string(o, "func");
        e->queue = json_string(o, "queue");
        v = cJSON_GetObjectItemCaseSensitive(o, "args");
        if (v != NULL) e->args = job_json_print(v);
        v = cJSON_GetObjectItemCaseSensitive(o, "enqueued_at");
        if (cJSON_IsNumber(v)) e->enqueued_at = v->valuedouble;
    }
    cJSON_Delete(o);
}

static int list_records(struct admin *a, const char *key, long long first, long long last,
                        int reverse, struct admin_page *out, char *err, size_t errlen)
{
    redisReply *rep;
    size_t i;

    rep = checked(a, rconn_commandf(&a->r, "LRANGE %s %lld %lld", key, first, last), key, err,
                  errlen);
    if (rep == NULL) return -1;
    out->items = xcalloc(rep->elements ? rep->elements : 1, sizeof *out->items);
    for (i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[reverse ? rep->elements - 1 - i : i];
        if (e->type == REDIS_REPLY_STRING)
            entry_from_record(&out->items[out->n++], e->str, (size_t)e->len);
    }
    freeReplyObject(rep);
    return 0;
}

static int list_scheduled(struct admin *a, const char *key, long offset, long limit,
                          struct admin_page *out, char *err, size_t errlen)
{
    redisReply *rep;
    size_t i;

    rep = checked(
        a, rconn_commandf(&a->r, "ZRANGE %s %ld %ld WITHSCORES", key, offset, offset + limit - 1),
        key, err, errlen);
    if (rep == NULL) return -1;
    out->items = xcalloc(rep->elements / 2 + 1, sizeof *out->items);
    for (i = 0; i + 1 < rep->elements; i += 2) {
        struct admin_entry *e = &out->items[out->n];
        if (rep->element[i]->type != REDIS_REPLY_STRING) continue;
        entry_from_record(e, rep->element[i]->str, (size_t)rep->element[i]->len);
        e->score = as_double(rep->element[i + 1]);
        out->n++;
    }
    freeReplyObject(rep);
    return 0;
}

/* The failed set holds ids: their function, queue and error come from the status hashes. */
static int list_failed(struct admin *a, const char *key, long offset, long limit,
                       struct admin_page *out, char *err, size_t errlen)
{
    char kj[KEYS_KEY_MAX];
    redisReply *rep, **h;
    size_t i;

    rep = checked(
        a,
        rconn_commandf(&a->r, "ZREVRANGE %s %ld %ld WITHSCORES", key, offset, offset + limit - 1),
        key, err, errlen);
    if (rep == NULL) return -1;
    out->items = xcalloc(rep->elements / 2 + 1, sizeof *out->items);
    for (i = 0; i + 1 < rep->elements; i += 2) {
        struct admin_entry *e = &out->items[out->n];
        const char *id = rep->element[i]->str;
        if (rep->element[i]->type != REDIS_REPLY_STRING || !keys_valid_name(id)) continue;
        e->id = xstrdup(id);
        e->score = as_double(rep->element[i + 1]);
        out->n++;
    }
    freeReplyObject(rep);
    for (i = 0; i < out->n; i++)
        if (rconn_appendf(&a->r, "HMGET %s func queue error enqueued_at",
                          keys_job(&a->k, out->items[i].id, kj, sizeof kj)) != 0)
            return io_error(a, err, errlen);
    if (out->n == 0) return 0;
    h = xcalloc(out->n, sizeof *h);
    if (read_replies(a, h, out->n, err, errlen) != 0) {
        free(h);
        return -1;
    }
    for (i = 0; i < out->n; i++) {
        struct admin_entry *e = &out->items[i];
        e->func = str_or_null(elem(h[i], 0));
        e->queue = str_or_null(elem(h[i], 1));
        e->error = str_or_null(elem(h[i], 2));
        e->enqueued_at = as_double(elem(h[i], 3));
    }
    free_replies(h, out->n);
    free(h);
    return 0;
}

/* Each running entry's started_at, from its status hash (one pipelined HGET each). */
static int started_times(struct admin *a, struct admin_page *out, char *err, size_t errlen)
{
    char kj[KEYS_KEY_MAX];
    redisReply **reps;
    size_t i;

    for (i = 0; i < out->n; i++) {
        const char *id = out->items[i].id;
        if (rconn_appendf(&a->r, "HGET %s started_at",
                          id != NULL && keys_valid_name(id) ? keys_job(&a->k, id, kj, sizeof kj)
                                                            : "") != 0)
            return io_error(a, err, errlen);
    }
    reps = xcalloc(out->n ? out->n : 1, sizeof *reps);
    if (read_replies(a, reps, out->n, err, errlen) != 0) {
        free(reps);
        return -1;
    }
    for (i = 0; i < out->n; i++) out->items[i].score = as_double(reps[i]);
    free_replies(reps, out->n);
    free(reps);
    return 0;
}

/* One in-flight list of a live worker: its key, whose it is, its length. */
struct inflight {
    char key[KEYS_KEY_MAX];
    const char *worker;
    long long len;
};

/* The in-flight lists of the live workers of in, in order of worker and queue, with their
 * lengths (one pipelined LLEN each). *n of them, malloc'ed; NULL with -1 when Redis failed. */
static struct inflight *inflight_lists(struct admin *a, const struct admin_info *in, size_t *n,
                                       char *err, size_t errlen)
{
    struct inflight *l = NULL;
    redisReply **reps;
    size_t cap = 0, i;

    *n = 0;
    for (i = 0; i < in->nworkers; i++) {
        const struct admin_worker *w = &in->workers[i];
        const char *p = w->queues;
        while (w->live && *p) {
            size_t len = strcspn(p, ",");
            char q[KEYS_NAME_MAX + 1];
            if (len > 0 && len < sizeof q) {
                memcpy(q, p, len);
                q[len] = '\0';
                if (*n == cap) {
                    cap = cap ? cap * 2 : 16;
                    l = xrealloc(l, cap * sizeof *l);
                }
                if (keys_inflight(&a->k, w->id, q, l[*n].key, sizeof l[*n].key) != NULL) {
                    l[*n].worker = w->id;
                    (*n)++;
                }
            }
            p += len + (p[len] == ',');
        }
    }
    for (i = 0; i < *n; i++)
        if (rconn_appendf(&a->r, "LLEN %s", l[i].key) != 0) {
            free(l);
            io_error(a, err, errlen);
            return NULL;
        }
    reps = xcalloc(*n ? *n : 1, sizeof *reps);
    if (read_replies(a, reps, *n, err, errlen) != 0) {
        free(reps);
        free(l);
        return NULL;
    }
    for (i = 0; i < *n; i++) l[i].len = as_ll(reps[i], 0); /* not a list: none */
    free_replies(reps, *n);
    free(reps);
    if (l == NULL) l = xmalloc(1);
    return l;
}

/* The page's window of each list that has part of it: one pipelined LRANGE each (from the
 * right end, oldest first), then each job's started_at. */
static int running_page(struct admin *a, struct inflight *l, size_t n, long offset, long limit,
                        struct admin_page *out, char *err, size_t errlen)
{
    long long skip = offset, want = limit;
    size_t i, j, e, nreq = 0;
    redisReply **reps;

    for (i = 0; i < n; i++) out->total += l[i].len;
    out->items = xcalloc((size_t)limit, sizeof *out->items);
    for (i = 0; i < n && want > 0; i++) {
        long long from = skip < l[i].len ? skip : l[i].len, take = l[i].len - from;
        skip -= from;
        if (take > want) take = want;
        l[i].len = take; /* from here: what is read of it */
        if (take <= 0) continue;
        if (rconn_appendf(&a->r, "LRANGE %s %lld %lld", l[i].key, -from - take, -from - 1) != 0)
            return io_error(a, err, errlen);
        want -= take;
        nreq = i + 1;
    }
    reps = xcalloc(nreq ? nreq : 1, sizeof *reps);
    for (i = 0, j = 0; i < nreq; i++) {
        if (l[i].len <= 0) continue;
        reps[j] = rconn_read(&a->r);
        if (reps[j] == NULL) {
            free_replies(reps, j);
            free(reps);
            return io_error(a, err, errlen);
        }
        for (e = reps[j]->type == REDIS_REPLY_ARRAY ? reps[j]->elements : 0; e > 0; e--) {
            const redisReply *r = reps[j]->element[e - 1];
            struct admin_entry *en = &out->items[out->n];
            if (r->type != REDIS_REPLY_STRING || out->n >= (size_t)limit) continue;
            entry_from_record(en, r->str, (size_t)r->len);
            en->worker = xstrdup(l[i].worker);
            out->n++;
        }
        j++;
    }
    free_replies(reps, j);
    free(reps);
    return started_times(a, out, err, errlen);
}

static int list_running(struct admin *a, long offset, long limit, struct admin_page *out, char *err,
                        size_t errlen)
{
    struct admin_info in;
    struct inflight *l;
    size_t n;
    int rc;

    if (admin_info_read(a, &in, err, errlen) != 0) return -1;
    l = inflight_lists(a, &in, &n, err, errlen);
    rc = l == NULL ? -1 : running_page(a, l, n, offset, limit, out, err, errlen);
    free(l);
    admin_info_free(&in);
    return rc;
}

int admin_list(struct admin *a, enum admin_list which, const char *queue, long offset, long limit,
               struct admin_page *out, char *err, size_t errlen)
{
    char key[KEYS_KEY_MAX];
    redisReply *rep;
    int rc;

    memset(out, 0, sizeof *out);
    out->offset = offset;
    if (offset < 0 || limit < 1 || limit > LIST_MAX) {
        err_set(err, errlen, "a page is 1 to %d entries from an offset of 0 or more", LIST_MAX);
        return -1;
    }
    switch (which) {
    case ADMIN_LIST_QUEUE:
        if (keys_check_name("queue", queue, err, errlen) != 0) return -1;
        keys_queue(&a->k, queue, key, sizeof key);
        break;
    case ADMIN_LIST_SCHEDULED: keys_scheduled(&a->k, key, sizeof key); break;
    case ADMIN_LIST_FAILED: keys_failed(&a->k, key, sizeof key); break;
    case ADMIN_LIST_DEAD: keys_dead(&a->k, key, sizeof key); break;
    case ADMIN_LIST_RUNNING:
        rc = list_running(a, offset, limit, out, err, errlen);
        if (rc != 0) admin_page_free(out);
        return rc;
    }
    rep = rconn_commandf(&a->r, "%s %s",
                         which == ADMIN_LIST_QUEUE || which == ADMIN_LIST_DEAD ? "LLEN" : "ZCARD",
                         key);
    {
        /* An operator's stray key, named as requeue and empty name it. */
        char what[KEYS_NAME_MAX + 16];
        const struct kept k = {
            what, key, which == ADMIN_LIST_QUEUE || which == ADMIN_LIST_DEAD ? "list" : "zset"};
        if (which == ADMIN_LIST_QUEUE)
            snprintf(what, sizeof what, "queue '%s'", queue);
        else
            snprintf(what, sizeof what, "the %s",
                     which == ADMIN_LIST_SCHEDULED    ? "scheduled set"
                         : which == ADMIN_LIST_FAILED ? "failed set"
                                                      : "dead list");
        rep = checked_kept(a, rep, key, &k, 1, err, errlen);
    }
    if (rep == NULL) return -1;
    out->total = rep->integer;
    freeReplyObject(rep);
    switch (which) {
    case ADMIN_LIST_QUEUE:
        /* Workers take from the right: the page counts from there, oldest first. */
        rc = list_records(a, key, -(long long)offset - limit, -(long long)offset - 1, 1, out, err,
                          errlen);
        break;
    case ADMIN_LIST_DEAD:
        rc = list_records(a, key, offset, (long long)offset + limit - 1, 0, out, err, errlen);
        break;
    case ADMIN_LIST_SCHEDULED: rc = list_scheduled(a, key, offset, limit, out, err, errlen); break;
    default: rc = list_failed(a, key, offset, limit, out, err, errlen); break;
    }
    if (rc != 0) admin_page_free(out);
    return rc;
}

void admin_page_free(struct admin_page *p)
{
    size_t i;

    for (i = 0; i < p->n; i++) {
        struct admin_entry *e = &p->items[i];
        free(e->record);
        free(e->id);
        free(e->func);
        free(e->queue);
        free(e->args);
        free(e->error);
        free(e->worker);
    }
    free(p->items);
    memset(p, 0, sizeof *p);
}

/* ---- one job ---------------------------------------------------------------------- */

const char *admin_job_field(const struct admin_job *j, const char *name)
{
    size_t i;

    for (i = 0; i + 1 < j->nfields; i += 2)
        if (strcmp(j->fields[i], name) == 0) return j->fields[i + 1];
    return NULL;
}

/* 1 when rec is the record of job id. */
static int record_of(const char *rec, size_t len, const char *id)
{
    cJSON *o, *v;
    int yes;

    if (memmem(rec, len, id, strlen(id)) == NULL) return 0;
    o = cJSON_ParseWithLength(rec, len);
    v = cJSON_GetObjectItemCaseSensitive(o, "id");
    yes = cJSON_IsString(v) && strcmp(v->valuestring, id) == 0;
    cJSON_Delete(o);
    return yes;
}

/* Look for id's record among the elements of an array reply; keep a copy in j. */
static int take_record(struct admin_job *j, const redisReply *rep, const char *id)
{
    size_t i;

    for (i = 0; rep != NULL && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        if (e->type == REDIS_REPLY_STRING && record_of(e->str, (size_t)e->len, id)) {
            j->record = xstrdup(e->str);
            return 1;
        }
    }
    return 0;
}

/* Search the first pages of a list from one end. Returns 1 when found, 2 when the whole list
 * was read without finding it, 0 when not found in the pages read (or the key is not a
 * list), -1 when Redis failed. */
static int find_in_list(struct admin *a, struct admin_job *j, const char *key, const char *id,
                        int pages, int from_right, char *err, size_t errlen)
{
    int p;

    for (p = 0; p < pages; p++) {
        long long s = (long long)p * FIND_PAGE, e = s + FIND_PAGE - 1;
        redisReply *rep;
        int found, end, list;
        if (from_right)
            rep = rconn_commandf(&a->r, "LRANGE %s %lld %lld", key, -e - 1, -s - 1);
        else
            rep = rconn_commandf(&a->r, "LRANGE %s %lld %lld", key, s, e);
        if (rep == NULL) return io_error(a, err, errlen);
        found = take_record(j, rep, id);
        list = rep->type == REDIS_REPLY_ARRAY;
        end = !list || rep->elements < FIND_PAGE;
        freeReplyObject(rep);
        if (found) return 1;
        if (end) return list ? 2 : 0;
    }
    return 0;
}

/* Find the record of a job that is not failed, where its status says it is. Best effort:
 * a key of another type just means no record. */
static int find_record(struct admin *a, struct admin_job *j, const char *id, char *err,
                       size_t errlen)
{
    const char *st = admin_job_field(j, "status"), *q = admin_job_field(j, "queue");
    const char *wk = admin_job_field(j, "worker");
    char key[KEYS_KEY_MAX];
    redisReply *rep;
    int rc = 0;

    if (st == NULL) return 0;
    if (strcmp(st, "scheduled") == 0 || strcmp(st, "retrying") == 0) {
        const char *at = admin_job_field(j, st[0] == 's' ? "scheduled_for" : "retry_at");
        if (at == NULL) return 0;
        keys_scheduled(&a->k, key, sizeof key);
        rep = rconn_commandf(&a->r, "ZRANGEBYSCORE %s %s %s", key, at, at);
        if (rep == NULL) return io_error(a, err, errlen);
        rc = take_record(j, rep, id);
        freeReplyObject(rep);
        if (rc) snprintf(j->record_from, sizeof j->record_from, "the scheduled set %s", key);
        return 0;
    }
    if (q == NULL || !keys_valid_name(q)) return 0;
    if (strcmp(st, "started") == 0 && wk != NULL && keys_valid_name(wk)) {
        keys_inflight(&a->k, wk, q, key, sizeof key);
        rep = rconn_commandf(&a->r, "LRANGE %s 0 %d", key, FIND_PAGE - 1);
        if (rep == NULL) return io_error(a, err, errlen);
        rc = take_record(j, rep, id);
        freeReplyObject(rep);
        if (rc) snprintf(j->record_from, sizeof j->record_from, "the in-flight list %s", key);
        return 0;
    }
    if (strcmp(st, "queued") != 0 && strcmp(st, "canceled") != 0) return 0;
    /* A queue may be long: its oldest and newest records are read, not all of it. */
    keys_queue(&a->k, q, key, sizeof key);
    rc = find_in_list(a, j, key, id, FIND_END_PAGES, 1, err, errlen);
    if (rc == 0) rc = find_in_list(a, j, key, id, FIND_END_PAGES, 0, err, errlen);
    if (rc < 0) return -1;
    if (rc == 1) snprintf(j->record_from, sizeof j->record_from, "the queue %s", key);
    if (rc == 0) {
        rep = rconn_commandf(&a->r, "LLEN %s", key);
        if (rep == NULL) return io_error(a, err, errlen);
        if (rep->type == REDIS_REPLY_INTEGER && rep->integer > 2LL * FIND_END_PAGES * FIND_PAGE)
            snprintf(j->record_note, sizeof j->record_note,
                     "not among the %d oldest and %d newest of the %lld records of %s: a long "
                     "queue is not read whole",
                     FIND_END_PAGES * FIND_PAGE, FIND_END_PAGES * FIND_PAGE, rep->integer, key);
        freeReplyObject(rep);
    }
    return 0;
}

/* The function and the enqueue time of a job whose hash lacks them (a record pushed by hand,
 * before a worker takes it: docs/PROTOCOL.md), from its record when it was found. */
static void fields_from_record(struct admin_job *j)
{
    static const char *const names[] = {"func", "enqueued_at"};
    cJSON *o;
    size_t i;

    if (j->record == NULL) return;
    o = cJSON_Parse(j->record);
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, names[i]);
        char t[32], *val;

        if (admin_job_field(j, names[i]) != NULL) continue;
        if (cJSON_IsString(v)) {
            val = xstrdup(v->valuestring);
        } else if (cJSON_IsNumber(v) && v->valuedouble > 0) {
            time_format(t, v->valuedouble);
            val = xstrdup(t);
        } else {
            continue;
        }
        j->fields = xrealloc(j->fields, (j->nfields + 2) * sizeof *j->fields);
        j->fields[j->nfields++] = xstrdup(names[i]);
        j->fields[j->nfields++] = val;
    }
    cJSON_Delete(o);
}

int admin_job_read(struct admin *a, const char *id, struct admin_job *out, char *err, size_t errlen)
{
    char kj[KEYS_KEY_MAX], kc[KEYS_KEY_MAX];
    redisReply *r[3];
    const char *rec;
    size_t i;

    memset(out, 0, sizeof *out);
    if (keys_check_name("job id", id, err, errlen) != 0) return -1;
    keys_job(&a->k, id, kj, sizeof kj);
    keys_cancel(&a->k, kc, sizeof kc);
    if (rconn_appendf(&a->r, "HGETALL %s", kj) != 0 || rconn_appendf(&a->r, "TTL %s", kj) != 0 ||
        rconn_appendf(&a->r, "SISMEMBER %s %s", kc, id) != 0)
        return io_error(a, err, errlen);
    if (read_replies(a, r, 3, err, errlen) != 0) return -1;
    if (is_error(r[0])) {
        char what[KEYS_NAME_MAX + 8];
        const struct kept k = {what, kj, "hash"};
        snprintf(what, sizeof what, "job %s", id);
        key_error(a, r[0], &k, err, errlen);
        free_replies(r, 3);
        return -1;
    }
    if (r[0]->elements == 0) {
        err_set(err, errlen, ADMIN_NO_STATUS_FMT, id);
        free_replies(r, 3);
        return -1;
    }
    out->fields = xcalloc(r[0]->elements, sizeof *out->fields);
    for (i = 0; i < r[0]->elements; i++) out->fields[i] = as_str(r[0]->element[i]);
    out->nfields = r[0]->elements;
    out->ttl = as_ll(r[1], -1);
    out->cancel_requested = as_ll(r[2], 0) == 1;
    free_replies(r, 3);
    rec = admin_job_field(out, "record");
    if (rec != NULL) {
        out->record = xstrdup(rec);
        snprintf(out->record_from, sizeof out->record_from, "the status hash");
    } else if (find_record(a, out, id, err, errlen) != 0) {
        admin_job_free(out);
        return -1;
    }
    fields_from_record(out);
    return 0;
}

void admin_job_free(struct admin_job *j)
{
    size_t i;

    for (i = 0; i < j->nfields; i++) free(j->fields[i]);
    free(j->fields);
    free(j->record);
    memset(j, 0, sizeof *j);
}

/* ---- scripts ---------------------------------------------------------------------- */

/* Every change is a script (admin.h), sent as rconn_script_head says: its body once a
 * connection, then its SHA-1. */
#define SCRIPT_TRIES 3 /* sends of one call at most: then a NOSCRIPT is its error */

/* Call script s with argv[2..argc-1] (argv[0] and argv[1] are set here) and return its reply,
 * NULL when Redis failed: a call that did not run (NOSCRIPT after a SCRIPT FLUSH or a
 * restart, EVALSHA refused by the user's ACL) goes again at once, with the body. */
static redisReply *script_call(struct admin *a, struct rconn_script *s, int argc, const char **argv)
{
    redisReply *rep = NULL;
    int tries;

    for (tries = 1; tries <= SCRIPT_TRIES; tries++) {
        if (rep != NULL) freeReplyObject(rep);
        rconn_script_head(&a->r, s, argv);
        rep = rconn_command(&a->r, argc, argv, NULL);
        if (!rconn_script_again(rep)) break;
    }
    return rep;
}

/* bad(what, key, type): nil when key is of that type or none, else the error that names it
 * in cq's words ("cq: " and the line checked() shows), as name_wrongtype says it. */
#define LUA_BAD                                                                               \
    "local function bad(what, key, want)\n"                                                   \
    "  local t = redis.call('TYPE', key).ok\n"                                                \
    "  if t == want or t == 'none' then return nil end\n"                                     \
    "  return redis.error_reply('cq: ' .. what .. ': its key ' .. key .. ' is a ' .. t .. \n" \
    "                           ', not a ' .. want)\n"                                        \
    "end\n"

/* ---- requeue ---------------------------------------------------------------------- */

/* ARGV: job key, failed set, queue key, queues set, id, the record the hash must hold, the
 * new record, the queue name. Reply {1} requeued; {0, status} the job is no longer the
 * failed job that was read (it changed meanwhile); {-1, type} the queue key is not a list;
 * the error of bad() for the failed set or the known queues. */
static const char requeue_lua[] = LUA_BAD
    "local h = redis.call('HMGET', ARGV[1], 'status', 'record')\n"
    "if h[1] ~= 'failed' or h[2] ~= ARGV[6] then return {0, h[1] or ''} end\n"
    "local t = redis.call('TYPE', ARGV[3]).ok\n"
    "if t ~= 'list' and t ~= 'none' then return {-1, t} end\n"
    "local e = bad('the failed set', ARGV[2], 'zset') or bad('the known queues', ARGV[4], 'set')\n"
    "if e then return e end\n"
    "redis.call('LPUSH', ARGV[3], ARGV[7])\n"
    "redis.call('SADD', ARGV[4], ARGV[8])\n"
    "redis.call('ZREM', ARGV[2], ARGV[5])\n"
    "redis.call('HSET', ARGV[1], 'status', 'queued', 'queue', ARGV[8], 'attempts', '0')\n"
    "redis.call('HDEL', ARGV[1], 'error', 'ended_at', 'started_at', 'worker', 'retry_at',\n"
    "           'record', 'recovered')\n"
    "redis.call('PERSIST', ARGV[1])\n"
    "return {1}\n";
/* Sent once a job, up to a page of 1,000 in one pipeline: its body once a connection, then
 * EVALSHA (rconn_script_head); a call that meets NOSCRIPT, or an ACL without EVALSHA, goes
 * again (requeue_read). */
static struct rconn_script requeue_script = RCONN_SCRIPT(requeue_lua);

/* The record to requeue: the old one with attempts 0, no hand-offs, no recoveries (a job
 * failed for too many starts its count afresh, as its hash's attempts and recovered do), and
 * its queue spelled out (the record's, else the hash's, else "default"), which goes into
 * queue. NULL with err
 * when the old one is not a JSON object, or goes on after it (job_decode refuses that: the
 * object re-printed alone would run, and the rest, maybe another record, be dropped). */
static char *requeue_record(const char *id, const char *old, const char *hash_queue, char *queue,
                            size_t qlen, char *err, size_t errlen)
{
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithOpts(old, &end, 0), *q;
    char *rec, shown[STR_SHOWN_LEN];

    if (!cJSON_IsObject(o)) {
        err_set(err, errlen, "job %s: its saved record is not a JSON object", id);
        cJSON_Delete(o);
        return NULL;
    }
    if (*job_json_rest(end) != '\0') {
        err_set(err, errlen,
                "job %s: its saved record goes on after its JSON object ('%s'), which no worker "
                "runs: enqueue the job afresh",
                id, str_shown(job_json_rest(end), shown, sizeof shown));
        cJSON_Delete(o);
        return NULL;
    }
    q = cJSON_GetObjectItemCaseSensitive(o, "queue");
    if (cJSON_IsString(q) && keys_valid_name(q->valuestring))
        str_copy(queue, qlen, q->valuestring);
    else if (hash_queue != NULL && keys_valid_name(hash_queue))
        str_copy(queue, qlen, hash_queue);
    else
        str_copy(queue, qlen, "default");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "queue");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "attempts");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "handoffs");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "recovered");
    xcheck(cJSON_AddStringToObject(o, "queue", queue), "a record");
    xcheck(cJSON_AddNumberToObject(o, "attempts", 0), "a record");
    rec = job_json_print(o);
    cJSON_Delete(o);
    return rec;
}

/* One job of a requeue, between its HMGET and its script. */
struct requeue {
    const char *id;
    char kj[KEYS_KEY_MAX], kq[KEYS_KEY_MAX];
    char q[KEYS_NAME_MAX + 1];
    const char *old; /* the record the hash holds (in the HMGET reply) */
    char *rec;       /* the record to push, NULL when the job is not requeued */
    int skipped;     /* 1: of another queue than only_queue, 2: its status gone (requeue_page: -1
                      requeued, -2 unknown, -3 dropped from the failed set) */
    int again;       /* its script did not run (NOSCRIPT, EVALSHA refused): it goes again */
    char err[512];   /* why not, when rec is NULL and it is not skipped */
};

/* What the hash read by HMGET status record queue (h) makes of the job: rq->rec set (to be
 * sent), rq->skipped, or rq->err. */
static void requeue_prepare(struct requeue *rq, const redisReply *h, const char *only_queue)
{
    const char *id = rq->id;

    if (h->type != REDIS_REPLY_ARRAY || h->elements != 3) {
        err_set(rq->err, sizeof rq->err, "job %s: HMGET %s: an unexpected reply", id, rq->kj);
    } else if (elem(h, 0)->type != REDIS_REPLY_STRING) {
        err_set(rq->err, sizeof rq->err, ADMIN_NO_STATUS_FMT, id);
        rq->skipped = 2; /* in the failed set, its status gone: nothing left to requeue */
    } else if (strcmp(elem(h, 0)->str, "failed") != 0) {
        err_set(rq->err, sizeof rq->err,
                "job %s: it is %s, not failed: only failed jobs are requeued", id, elem(h, 0)->str);
    } else if (elem(h, 1)->type != REDIS_REPLY_STRING) {
        err_set(rq->err, sizeof rq->err,
                "job %s: failed, but its status keeps no record to requeue", id);
    } else {
        rq->old = elem(h, 1)->str;
        rq->rec = requeue_record(id, rq->old,
                                 elem(h, 2)->type == REDIS_REPLY_STRING ? elem(h, 2)->str : NULL,
                                 rq->q, sizeof rq->q, rq->err, sizeof rq->err);
        if (rq->rec != NULL && only_queue != NULL && strcmp(rq->q, only_queue) != 0) {
            rq->skipped = 1;
            free(rq->rec);
            rq->rec = NULL;
        }
    }
}

/* Append the requeue script for a prepared job. 0, or -1 on an I/O error. */
static int requeue_append(struct admin *a, struct requeue *rq)
{
    char kf[KEYS_KEY_MAX], kqs[KEYS_KEY_MAX];
    const char *argv[11];

    rconn_script_head(&a->r, &requeue_script, argv);
    argv[2] = "0";
    argv[3] = rq->kj;
    argv[4] = keys_failed(&a->k, kf, sizeof kf);
    argv[5] = keys_queue(&a->k, rq->q, rq->kq, sizeof rq->kq);
    argv[6] = keys_queues(&a->k, kqs, sizeof kqs);
    argv[7] = rq->id;
    argv[8] = rq->old;
    argv[9] = rq->rec;
    argv[10] = rq->q;
    return rconn_append(&a->r, 11, argv, NULL);
}

/* The script's reply: 0 when requeued, else -1 with rq->err (a reply of NULL: Redis failed,
 * with the error in rq->err and the connection closed). */
static int requeue_result(struct admin *a, struct requeue *rq, redisReply *rep)
{
    int rc = -1;

    free(rq->rec);
    rq->rec = NULL;
    rep = checked(a, rep, "requeue", rq->err, sizeof rq->err);
    if (rep == NULL) return -1;
    if (as_ll(elem(rep, 0), 0) == 1) {
        rc = 0;
    } else if (as_ll(elem(rep, 0), 0) == -1) {
        err_set(rq->err, sizeof rq->err, "job %s: queue '%s': its key %s is a %s, not a list",
                rq->id, rq->q, rq->kq, elem(rep, 1) ? elem(rep, 1)->str : "?");
    } else {
        err_set(rq->err, sizeof rq->err,
                "job %s: its status changed meanwhile (now %s); not requeued", rq->id,
                elem(rep, 1) && elem(rep, 1)->str[0] ? elem(rep, 1)->str : "gone");
    }
    freeReplyObject(rep);
    return rc;
}

/* Read the reply of rq's script, sent in a pipeline (or not, when !*sent): 1 when it did not
 * run (rconn_script_again) and retry is set (rq is kept to go again, now with the body),
 * else 0 with rq told: skipped -1 when requeued, rq->err when not; -2 with *sent 0 and err
 * when Redis failed, not the job. */
static int requeue_read(struct admin *a, struct requeue *rq, int retry, int *sent, char *err,
                        size_t errlen)
{
    redisReply *rep;

    if (!*sent) {
        free(rq->rec);
        rq->rec = NULL;
        rq->skipped = -2;
        return 0;
    }
    rep = rconn_read(&a->r);
    if (retry && rconn_script_again(rep)) {
        freeReplyObject(rep);
        return 1;
    }
    if (requeue_result(a, rq, rep) == 0) {
        rq->skipped = -1;
    } else if (a->r.ctx == NULL) { /* Redis failed, not the job */
        err_set(err, errlen, "%s", rq->err);
        rq->skipped = -2;
        *sent = 0;
    }
    return 0;
}

int admin_requeue(struct admin *a, const char *id, char *queue, size_t qlen, char *err,
                  size_t errlen)
{
    struct requeue rq = {.id = id};
    char what[KEYS_NAME_MAX + 8];
    const struct kept k = {what, rq.kj, "hash"};
    redisReply *h;
    int rc = -1, tries, sent = 1;

    if (keys_check_name("job id", id, err, errlen) != 0) return -1;
    keys_job(&a->k, id, rq.kj, sizeof rq.kj);
    snprintf(what, sizeof what, "job %s", id);
    h = checked_kept(a, rconn_commandf(&a->r, "HMGET %s status record queue", rq.kj), rq.kj, &k, 1,
                     err, errlen);
    if (h == NULL) return -1;
    requeue_prepare(&rq, h, NULL);
    rq.again = rq.rec != NULL;
    for (tries = 1; rq.again; tries++) {
        if (requeue_append(a, &rq) != 0) sent = 0;
        rq.again = requeue_read(a, &rq, tries < SCRIPT_TRIES, &sent, err, errlen);
    }
    if (rq.skipped == -1) {
        str_copy(queue, qlen, rq.q);
        rc = 0;
    } else if (rq.skipped == -2) { /* Redis failed */
        io_error(a, err, errlen);
    } else {
        err_set(err, errlen, "%s", rq.err);
    }
    freeReplyObject(h);
    return rc;
}

/* KEYS: a job's status hash, the failed set; ARGV: the id. An id whose status is gone
 * (expired after --failure-ttl) leaves the failed set, unless a status came back meanwhile
 * (the id enqueued again). 1 when it left. */
static const char drop_gone_lua[] = "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
                                    "return redis.call('ZREM', KEYS[2], ARGV[1])\n";
static struct rconn_script drop_gone_script = RCONN_SCRIPT(drop_gone_lua);

/* Append rq's script: the requeue one, or for a job whose status is gone (skipped 2) the
 * drop. 0, or -1 on an I/O error. */
static int page_append(struct admin *a, struct requeue *rq, const char *kf)
{
    const char *argv[6];

    if (rq->skipped != 2) return requeue_append(a, rq);
    rconn_script_head(&a->r, &drop_gone_script, argv);
    argv[2] = "2";
    argv[3] = rq->kj;
    argv[4] = kf;
    argv[5] = rq->id;
    return rconn_append(&a->r, 6, argv, NULL);
}

/* Read the reply of rq's script, as requeue_read does; a drop's leaves skipped -3 when the
 * id left the failed set. */
static int page_read(struct admin *a, struct requeue *rq, int retry, int *sent, char *err,
                     size_t errlen)
{
    redisReply *r;

    if (rq->skipped != 2) return requeue_read(a, rq, retry, sent, err, errlen);
    r = *sent ? rconn_read(&a->r) : NULL;
    if (r == NULL) {
        *sent = 0;
        return 0;
    }
    if (retry && rconn_script_again(r)) {
        freeReplyObject(r);
        return 1;
    }
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
        rq->skipped = -3;
    } else if (r->type == REDIS_REPLY_ERROR) { /* the job stays told as not requeued: why */
        char ctx[KEYS_NAME_MAX + 64];
        snprintf(ctx, sizeof ctx, "job %s: its status is gone, and leaving the failed set", rq->id);
        rconn_error(&a->r, ctx, r->str, rq->err, sizeof rq->err);
    }
    freeReplyObject(r);
    return 0;
}

/* One page of ids from the failed set, requeued in two pipelines (their HMGETs, then their
 * scripts): two round trips a page, not two a job. Each job is told to each in order; kept
 * counts those that stay in the set (refused or skipped); dropped, the ids whose status was
 * gone, which leave it. 0, or -1 when Redis failed. */
static int requeue_page(struct admin *a, const redisReply *ids, size_t n, const char *only_queue,
                        void (*each)(void *, const char *, const char *, const char *), void *ctx,
                        long *requeued, long *refused, long *dropped, long long *kept, char *err,
                        size_t errlen)
{
    char kf[KEYS_KEY_MAX];
    struct requeue *rq = xcalloc(n ? n : 1, sizeof *rq);
    redisReply **h = xcalloc(n ? n : 1, sizeof *h);
    size_t i, got = 0, again = 0;
    int rc = -1, sent = 1, tries;

    for (i = 0; i < n; i++) {
        rq[i].id = ids->element[i]->str;
        keys_job(&a->k, rq[i].id, rq[i].kj, sizeof rq[i].kj);
        if (rconn_appendf(&a->r, "HMGET %s status record queue", rq[i].kj) != 0) sent = 0;
    }
    for (got = 0; sent && got < n; got++) {
        h[got] = rconn_read(&a->r);
        if (h[got] == NULL) break;
    }
    if (!sent || got < n) {
        io_error(a, err, errlen);
        goto out;
    }
    keys_failed(&a->k, kf, sizeof kf);
    for (i = 0; i < n; i++) {
        if (h[i]->type == REDIS_REPLY_ERROR) { /* this job's key, not Redis (WRONGTYPE) */
            char what[KEYS_NAME_MAX + 8];
            const struct kept k = {what, rq[i].kj, "hash"};
            snprintf(what, sizeof what, "job %s", rq[i].id);
            key_error(a, h[i], &k, rq[i].err, sizeof rq[i].err);
        } else {
            requeue_prepare(&rq[i], h[i], only_queue);
        }
    }
    for (i = 0; i < n; i++) /* once the TYPEs above are read: a pipeline of the scripts */
        if ((rq[i].rec != NULL || rq[i].skipped == 2) && page_append(a, &rq[i], kf) != 0) sent = 0;
    /* skipped: -1 requeued, -2 not known (Redis failed before its reply was read) */
    for (i = 0; i < n; i++) {
        if (rq[i].rec == NULL && rq[i].skipped != 2) continue;
        rq[i].again = page_read(a, &rq[i], 1, &sent, err, errlen);
        again += rq[i].again;
    }
    /* Scripts that met NOSCRIPT (a SCRIPT FLUSH before or during the page) or an ACL without
     * EVALSHA did not run: they go again, in one pipeline, the first (or each) with the body. */
    for (tries = 2; again > 0; tries++) {
        for (i = 0; i < n; i++)
            if (rq[i].again && sent && page_append(a, &rq[i], kf) != 0) sent = 0;
        for (again = 0, i = 0; i < n; i++) {
            if (!rq[i].again) continue;
            rq[i].again = page_read(a, &rq[i], tries < SCRIPT_TRIES, &sent, err, errlen);
            again += rq[i].again;
        }
    }
    /* What is known is told, also when Redis failed part-way. */
    for (i = 0; i < n; i++) {
        if (rq[i].skipped == -1) {
            (*requeued)++;
            if (each) each(ctx, rq[i].id, rq[i].q, NULL);
        } else if (rq[i].skipped == -3) {
            (*dropped)++;
        } else if (rq[i].skipped == 1) {
            (*kept)++;
        } else if (rq[i].skipped == 0 || rq[i].skipped == 2) {
            (*kept)++;
            (*refused)++;
            if (each) each(ctx, rq[i].id, NULL, rq[i].err);
        }
    }
    if (!sent) {
        if (err[0] == '\0') io_error(a, err, errlen);
        goto out;
    }
    rc = 0;
out:
    for (i = 0; i < got; i++)
        if (h[i] != NULL) freeReplyObject(h[i]);
    free(h);
    free(rq);
    return rc;
}

int admin_requeue_failed(struct admin *a, const char *only_queue,
                         void (*each)(void *ctx, const char *id, const char *queue,
                                      const char *err),
                         void *ctx, long *requeued, long *refused, long *dropped, char *err,
                         size_t errlen)
{
    char kf[KEYS_KEY_MAX], before[32];
    const struct kept k = {"the failed set", kf, "zset"};
    long long kept = 0, seen = 0, total;
    redisReply *rep;

    *requeued = *refused = *dropped = 0;
    keys_failed(&a->k, kf, sizeof kf);
    /* Only jobs that failed before now, and no more than were there: a requeued job that
     * fails again during the walk is not requeued a second time. */
    time_format(before, time_now());
    rep = checked_kept(a, rconn_commandf(&a->r, "ZCARD %s", kf), kf, &k, 1, err, errlen);
    if (rep == NULL) return -1;
    total = rep->integer;
    freeReplyObject(rep);
    while (seen < total) {
        size_t n;
        int rc;
        rep = checked(a,
                      rconn_commandf(&a->r, "ZRANGEBYSCORE %s -inf %s LIMIT %lld %d", kf, before,
                                     kept, REQUEUE_PAGE),
                      kf, err, errlen);
        if (rep == NULL) return -1;
        if (rep->elements == 0) {
            freeReplyObject(rep);
            break;
        }
        n = rep->elements;
        if ((long long)n > total - seen) n = (size_t)(total - seen);
        err[0] = '\0';
        rc = requeue_page(a, rep, n, only_queue, each, ctx, requeued, refused, dropped, &kept, err,
                          errlen);
        freeReplyObject(rep);
        if (rc != 0) return -1;
        seen += (long long)n;
    }
    return 0;
}

/* ---- cancel and delete ------------------------------------------------------------ */

/* ARGV of both scripts: job key, cancel set, scheduled set, ended channel, id, now, failed
 * set, the TTL of a canceled status. stop(status) ends a job that has not: a started one is left to its worker (id in the
 * cancel set, 2); a waiting one is canceled now (1): a scheduled record is removed (found at
 * its due time), any other has its id put in the cancel set for the worker that takes it. */
#define LUA_STOP                                                                     \
    "local function stop(st)\n"                                                      \
    "  if st == 'started' then redis.call('SADD', ARGV[2], ARGV[5]); return 2 end\n" \
    "  local gone = false\n"                                                         \
    "  local f = ({scheduled = 'scheduled_for', retrying = 'retry_at'})[st]\n"       \
    "  local at = f and redis.call('HGET', ARGV[1], f)\n"                            \
    "  if at then\n"                                                                 \
    "    for _, rec in ipairs(redis.call('ZRANGEBYSCORE', ARGV[3], at, at)) do\n"    \
    "      local ok, j = pcall(cjson.decode, rec)\n"                                 \
    "      if ok and type(j) == 'table' and j.id == ARGV[5] then\n"                  \
    "        redis.call('ZREM', ARGV[3], rec)\n"                                     \
    "        gone = true\n"                                                          \
    "        break\n"                                                                \
    "      end\n"                                                                    \
    "    end\n"                                                                      \
    "  end\n"                                                                        \
    "  if not gone then redis.call('SADD', ARGV[2], ARGV[5]) end\n"                  \
    "  redis.call('HSET', ARGV[1], 'status', 'canceled', 'ended_at', ARGV[6])\n"     \
    "  redis.call('HDEL', ARGV[1], 'retry_at', 'scheduled_for', 'error')\n"          \
    "  redis.call('EXPIRE', ARGV[1], ARGV[8])\n"                                     \
    "  redis.call('PUBLISH', ARGV[4], 'canceled')\n"                                 \
    "  return 1\n"                                                                   \
    "end\n"                                                                          \
    "local ended = {finished = true, failed = true, canceled = true}\n"              \
    "local st = redis.call('HGET', ARGV[1], 'status')\n"

/* Reply {outcome, status}: 0 refused (status '' when unknown), else what stop returned. */
static const char cancel_lua[] = LUA_STOP "if not st then return {0, ''} end\n"
                                          "if ended[st] then return {0, st} end\n"
                                          "return {stop(st), st}\n";

/* Reply {1, status} deleted; {1, ''} only a failed-set entry was left; {0, ''} unknown. */
static const char delete_lua[] = LUA_STOP "local z = redis.call('ZREM', ARGV[7], ARGV[5])\n"
                                          "if not st then return {z, ''} end\n"
                                          "if not ended[st] then stop(st) end\n"
                                          "redis.call('DEL', ARGV[1])\n"
                                          "return {1, st}\n";
static struct rconn_script cancel_script = RCONN_SCRIPT(cancel_lua);
static struct rconn_script delete_script = RCONN_SCRIPT(delete_lua);

/* Run the cancel or the delete script for id; returns the reply or NULL (err set). */
static redisReply *stop_script(struct admin *a, struct rconn_script *s, const char *id, char *err,
                               size_t errlen)
{
    char kj[KEYS_KEY_MAX], kc[KEYS_KEY_MAX], ks[KEYS_KEY_MAX], ke[KEYS_KEY_MAX];
    char kf[KEYS_KEY_MAX], now[32], what[KEYS_NAME_MAX + 16];
    const char *argv[11];

    if (keys_check_name("job id", id, err, errlen) != 0) return NULL;
    time_format(now, time_now());
    argv[2] = "0";
    argv[3] = keys_job(&a->k, id, kj, sizeof kj);
    argv[4] = keys_cancel(&a->k, kc, sizeof kc);
    argv[5] = keys_scheduled(&a->k, ks, sizeof ks);
    argv[6] = keys_ended(&a->k, id, ke, sizeof ke);
    argv[7] = id;
    argv[8] = now;
    argv[9] = keys_failed(&a->k, kf, sizeof kf);
    argv[10] = CANCELED_TTL;
    snprintf(what, sizeof what, "job %s", id);
    {
        const struct kept k[] = {{what, kj, "hash"},
                                 {"the cancel requests", kc, "set"},
                                 {"the scheduled set", ks, "zset"},
                                 {"the failed set", kf, "zset"}};
        return checked_kept(a, script_call(a, s, 11, argv), what, k, 4, err, errlen);
    }
}

/* Whether the worker that runs job id (status started) is gone (admin_cancel says how it is
 * told): 1 gone, with its id in wid and the job's queue in queue; 0 live, or the job is not
 * running (wid ""); -1 when Redis failed, or refused one of the commands (err set). A gone
 * worker's jobs stay in its in-flight lists until a live worker's recovery returns them to
 * their queues. */
static int job_worker_gone(struct admin *a, const char *id, char *wid, size_t widlen, char *queue,
                           size_t qlen, char *err, size_t errlen)
{
    char kj[KEYS_KEY_MAX], kl[KEYS_KEY_MAX], kw[KEYS_KEY_MAX], what[2][KEYS_NAME_MAX + 24];
    redisReply *h, *r[2] = {NULL, NULL}, *list = NULL;
    const char *clients;
    int gone = 0, i;

    wid[0] = queue[0] = '\0';
    if (keys_check_name("job id", id, err, errlen) != 0) return -1;
    keys_job(&a->k, id, kj, sizeof kj);
    h = checked(a, rconn_commandf(&a->r, "HMGET %s status worker queue", kj), kj, err, errlen);
    if (h == NULL) return -1;
    if (elem(h, 0) == NULL || elem(h, 0)->type != REDIS_REPLY_STRING ||
        strcmp(elem(h, 0)->str, "started") != 0 || elem(h, 1)->type != REDIS_REPLY_STRING ||
        !keys_valid_name(elem(h, 1)->str)) {
        freeReplyObject(h); /* ended meanwhile, or no worker named: nothing to tell */
        return 0;
    }
    str_copy(wid, widlen, elem(h, 1)->str);
    if (elem(h, 2)->type == REDIS_REPLY_STRING) str_copy(queue, qlen, elem(h, 2)->str);
    freeReplyObject(h);
    if (rconn_appendf(&a->r, "EXISTS %s", keys_worker_lease(&a->k, wid, kl, sizeof kl)) != 0 ||
        rconn_appendf(&a->r, "HGET %s clients", keys_worker(&a->k, wid, kw, sizeof kw)) != 0)
        return io_error(a, err, errlen);
    if (read_replies(a, r, 2, err, errlen) != 0) return -1;
    /* An error reply (NOPERM for a user without EXISTS) told nothing: it was read as a lease
     * that stands, and the worker taken for live without a word. */
    snprintf(what[0], sizeof what[0], "worker %s's lease", wid);
    snprintf(what[1], sizeof what[1], "worker %s", wid);
    for (i = 0; i < 2; i++) {
        if (is_error(r[i])) {
            const struct kept k[] = {{what[0], kl, "string"}, {what[1], kw, "hash"}};
            key_error(a, r[i], &k[i], err, errlen);
            free_replies(r, 2);
            return -1;
        }
    }
    clients = r[1]->type == REDIS_REPLY_STRING ? r[1]->str : "";
    if (r[0]->type == REDIS_REPLY_INTEGER && r[0]->integer == 0) {
        gone = 1; /* its lease expired, or a live worker found it dead and deleted it */
    } else if (clients[0] != '\0') {
        /* Its lease stands, but its process may have died: then none of the connections it
         * registered is open. An error reply (a user refused CLIENT LIST, a renamed command)
         * cannot tell, and is said as the refusals above are: it was the worker taken for
         * live without a word. */
        list = rconn_commandf(&a->r, "CLIENT LIST TYPE normal");
        if (list == NULL) {
            free_replies(r, 2);
            return io_error(a, err, errlen);
        }
        if (list->type == REDIS_REPLY_ERROR) {
            rconn_error(&a->r, "CLIENT LIST", list->str, err, errlen);
            freeReplyObject(list);
            free_replies(r, 2);
            return -1;
        }
        if (list->type == REDIS_REPLY_STRING) gone = !rconn_clients_listed(list->str, clients);
        freeReplyObject(list);
    }
    free_replies(r, 2);
    return gone;
}

int admin_cancel(struct admin *a, const char *id, struct admin_cancel *out, char *err,
                 size_t errlen)
{
    redisReply *rep = stop_script(a, &cancel_script, id, err, errlen);
    long long outcome;
    const char *st;
    char why[768]; /* a key's error: the worker's id twice, Redis's words, the fix */
    int gone;

    out->was[0] = out->worker[0] = out->queue[0] = '\0';
    if (rep == NULL) return -1;
    outcome = as_ll(elem(rep, 0), 0);
    st = elem(rep, 1) && elem(rep, 1)->type == REDIS_REPLY_STRING ? elem(rep, 1)->str : "";
    str_copy(out->was, sizeof out->was, st);
    if (outcome == 0 && st[0] == '\0')
        err_set(err, errlen, ADMIN_NO_STATUS_FMT, id);
    else if (outcome == 0)
        err_set(err, errlen, "job %s: it is %s already: only a job that has not ended is canceled",
                id, st);
    freeReplyObject(rep);
    if (outcome == 1) return ADMIN_CANCELED;
    if (outcome != 2) return -1;
    /* Asked of a running job: a worker that is gone cannot stop it. Redis failing here (or
     * refusing a command) leaves the cancel asked, and says that whether it is heard could
     * not be told: it was lost, the worker taken for live. */
    gone = job_worker_gone(a, id, out->worker, sizeof out->worker, out->queue, sizeof out->queue,
                           why, sizeof why);
    if (gone == 1) return ADMIN_CANCEL_ORPHAN;
    out->worker[0] = out->queue[0] = '\0';
    if (gone < 0) {
        err_set(err, errlen,
                "job %s: its cancel is asked (it is running), but whether its worker is there to "
                "stop it could not be told: %s",
                id, why);
        return -1;
    }
    return ADMIN_CANCEL_ASKED;
}

int admin_delete(struct admin *a, const char *id, char *was, size_t wlen, char *err, size_t errlen)
{
    redisReply *rep = stop_script(a, &delete_script, id, err, errlen);
    int rc = 0;

    if (rep == NULL) return -1;
    str_copy(was, wlen,
             elem(rep, 1) && elem(rep, 1)->type == REDIS_REPLY_STRING ? elem(rep, 1)->str : "");
    if (as_ll(elem(rep, 0), 0) != 1) {
        err_set(err, errlen, ADMIN_NO_STATUS_FMT, id);
        rc = -1;
    }
    freeReplyObject(rep);
    return rc;
}

/* ---- empty, pause ------------------------------------------------------------------ */

/* ARGV: queue key, job template, cancel set, ended template, now, batch size, the TTL of a
 * canceled status, the queue. Pops up to a batch from the oldest end; each record with a usable id has
 * its job marked canceled, unless it was already (canceled while queued: its end time and
 * its waiters' message stand). Returns how many records it removed (0: the queue is empty).
 * A key of another type (the queue's, the cancel set's, a job's of the batch) is found
 * before anything is removed: an error "cq: " and what to show. */
static const char empty_lua[] = LUA_BAD
    "local function job(rec)\n"
    "  local ok, j = pcall(cjson.decode, rec)\n"
    "  if ok and type(j) == 'table' and type(j.id) == 'string' and j.id:match('^[%w_.@-]+$') "
    "then\n"
    "    return j.id, string.format(ARGV[2], j.id)\n"
    "  end\n"
    "end\n"
    "local e = bad('queue \\'' .. ARGV[8] .. '\\'', ARGV[1], 'list') or\n"
    "  bad('the cancel requests', ARGV[3], 'set')\n"
    "if e then return e end\n"
    "for _, rec in ipairs(redis.call('LRANGE', ARGV[1], -tonumber(ARGV[6]), -1)) do\n"
    "  local id, jk = job(rec)\n"
    "  e = id and bad('job ' .. id, jk, 'hash')\n"
    "  if e then return e end\n"
    "end\n"
    "local recs = redis.call('RPOP', ARGV[1], tonumber(ARGV[6]))\n"
    "if not recs then return 0 end\n"
    "for _, rec in ipairs(recs) do\n"
    "  local id, jk = job(rec)\n"
    "  if id then\n"
    "    if redis.call('HGET', jk, 'status') ~= 'canceled' then\n"
    "      redis.call('HSET', jk, 'status', 'canceled', 'ended_at', ARGV[5])\n"
    "      redis.call('EXPIRE', jk, ARGV[7])\n"
    "      redis.call('PUBLISH', string.format(ARGV[4], id), 'canceled')\n"
    "    end\n"
    "    redis.call('SREM', ARGV[3], id)\n"
    "  end\n"
    "end\n"
    "return #recs\n";
static struct rconn_script empty_script = RCONN_SCRIPT(empty_lua);

static int check_queue_name(const char *queue, char *err, size_t errlen)
{
    return keys_check_name("queue", queue, err, errlen);
}

long admin_empty(struct admin *a, const char *queue, char *err, size_t errlen)
{
    char kq[KEYS_KEY_MAX], tj[KEYS_KEY_MAX], kc[KEYS_KEY_MAX], te[KEYS_KEY_MAX], now[32];
    char batch[16], what[KEYS_NAME_MAX + 16];
    const char *argv[11];
    long total = 0;

    if (check_queue_name(queue, err, errlen) != 0) return -1;
    snprintf(batch, sizeof batch, "%d", EMPTY_BATCH);
    snprintf(what, sizeof what, "queue '%s'", queue);
    argv[2] = "0";
    argv[3] = keys_queue(&a->k, queue, kq, sizeof kq);
    argv[4] = keys_template(&a->k, KEYS_JOB, tj, sizeof tj);
    argv[5] = keys_cancel(&a->k, kc, sizeof kc);
    argv[6] = keys_template(&a->k, KEYS_ENDED, te, sizeof te);
    argv[7] = now;
    argv[8] = batch;
    argv[9] = CANCELED_TTL;
    argv[10] = queue;
    for (;;) {
        redisReply *rep;
        long long n;
        time_format(now, time_now());
        rep = checked(a, script_call(a, &empty_script, 11, argv), what, err, errlen);
        if (rep == NULL) return -1;
        n = as_ll(rep, 0);
        freeReplyObject(rep);
        if (n <= 0) return total;
        total += (long)n;
    }
}

int admin_pause(struct admin *a, const char *queue, int pause, char *err, size_t errlen)
{
    char kp[KEYS_KEY_MAX];
    const struct kept k = {"the paused queues", kp, "set"};
    redisReply *rep;
    int changed;

    if (check_queue_name(queue, err, errlen) != 0) return -1;
    keys_paused(&a->k, kp, sizeof kp);
    rep = rconn_commandf(&a->r, "%s %s %s", pause ? "SADD" : "SREM", kp, queue);
    rep = checked_kept(a, rep, kp, &k, 1, err, errlen);
    if (rep == NULL) return -1;
    changed = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    freeReplyObject(rep);
    return changed;
}

/* ARGV: queues set, queue key, paused set, workers set, worker template, counts key, the
 * queue. Reply {0, known, paused} forgotten; {1, type} its key is not a list; {2, n} it holds
 * n jobs; {3, wid} a registered worker serves it; the error of bad() for a set or a worker's
 * hash of another type. */
static const char forget_lua[] = LUA_BAD
    "local t = redis.call('TYPE', ARGV[2]).ok\n"
    "if t ~= 'none' and t ~= 'list' then return {1, t} end\n"
    "local e = bad('the known queues', ARGV[1], 'set') or\n"
    "  bad('the paused queues', ARGV[3], 'set') or bad('the registered workers', ARGV[4], 'set')\n"
    "if e then return e end\n"
    "local n = redis.call('LLEN', ARGV[2])\n"
    "if n > 0 then return {2, n} end\n"
    "for _, wid in ipairs(redis.call('SMEMBERS', ARGV[4])) do\n"
    "  local wk = string.format(ARGV[5], wid)\n"
    "  e = bad('worker ' .. wid, wk, 'hash')\n"
    "  if e then return e end\n"
    "  local qs = redis.call('HGET', wk, 'queues') or ''\n"
    "  for q in string.gmatch(qs, '[^,]+') do\n"
    "    if q == ARGV[7] then return {3, wid} end\n"
    "  end\n"
    "end\n"
    "local known = redis.call('SREM', ARGV[1], ARGV[7])\n"
    "redis.call('DEL', ARGV[6])\n"
    "return {0, known, redis.call('SREM', ARGV[3], ARGV[7])}\n";
static struct rconn_script forget_script = RCONN_SCRIPT(forget_lua);

int admin_forget(struct admin *a, const char *queue, int *was_known, int *was_paused, char *err,
                 size_t errlen)
{
    char kqs[KEYS_KEY_MAX], kq[KEYS_KEY_MAX], kp[KEYS_KEY_MAX], kws[KEYS_KEY_MAX];
    char tw[KEYS_KEY_MAX], kc[KEYS_KEY_MAX], what[KEYS_NAME_MAX + 16];
    const char *argv[10];
    const redisReply *why;
    const char *name;
    redisReply *rep;
    long long code;
    int rc = 0;

    if (check_queue_name(queue, err, errlen) != 0) return -1;
    snprintf(what, sizeof what, "queue '%s'", queue);
    argv[2] = "0";
    argv[3] = keys_queues(&a->k, kqs, sizeof kqs);
    argv[4] = keys_queue(&a->k, queue, kq, sizeof kq);
    argv[5] = keys_paused(&a->k, kp, sizeof kp);
    argv[6] = keys_workers(&a->k, kws, sizeof kws);
    argv[7] = keys_template(&a->k, KEYS_WORKER, tw, sizeof tw);
    argv[8] = keys_counts(&a->k, queue, kc, sizeof kc);
    argv[9] = queue;
    rep = checked(a, script_call(a, &forget_script, 10, argv), what, err, errlen);
    if (rep == NULL) return -1;
    code = as_ll(elem(rep, 0), -1);
    why = elem(rep, 1);
    name = why != NULL && why->type == REDIS_REPLY_STRING ? why->str : "?";
    if (code == 0) {
        *was_known = as_ll(why, 0) == 1;
        *was_paused = as_ll(elem(rep, 2), 0) == 1;
    } else if (code == 1) {
        err_set(err, errlen, "queue %s: its key %s is a %s, not a list", queue, kq, name);
        rc = -1;
    } else if (code == 2) {
        err_set(err, errlen,
                "queue %s holds %lld job%s: only an empty queue is forgotten (cqctl empty %s "
                "first, to drop them)",
                queue, as_ll(why, 0), as_ll(why, 0) == 1 ? "" : "s", queue);
        rc = -1;
    } else if (code == 3) {
        err_set(err, errlen,
                "queue %s: worker %s serves it: stop that worker, or start it without the "
                "queue, first",
                queue, name);
        rc = -1;
    } else {
        err_set(err, errlen, "queue %s: unexpected reply from the forget script", queue);
        rc = -1;
    }
    freeReplyObject(rep);
    return rc;
}

int admin_queue_known(struct admin *a, const char *queue, char *err, size_t errlen)
{
    char kq[KEYS_KEY_MAX];
    redisReply *rep;
    int known, live;

    keys_queues(&a->k, kq, sizeof kq);
    rep = checked(a, rconn_commandf(&a->r, "SISMEMBER %s %s", kq, queue), kq, err, errlen);
    if (rep == NULL) return -1;
    known = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    freeReplyObject(rep);
    if (known) return 1;
    live = catalog_queue_live(&a->r, &a->k, queue, err, errlen); /* as the producers ask */
    return live < 0 ? -1 : live > 0;
}

/* ---- metrics ---------------------------------------------------------------------- */

static int by_func(const void *x, const void *y)
{
    return strcmp(((const struct admin_histogram *)x)->func,
                  ((const struct admin_histogram *)y)->func);
}

/* One HMGET per function of the catalog: its buckets, sum and count. A name no worker could
 * have written (not a valid name: written into Redis by hand) is left out, as queues' are:
 * it would make the metrics' text invalid, and a scrape of it fails whole. */
static int read_histograms(struct admin *a, struct admin_metrics *m, const redisReply *funcs,
                           char *err, size_t errlen)
{
    const char *argv[2 + ADMIN_BUCKETS + 2];
    char fields[ADMIN_BUCKETS][16], key[KEYS_KEY_MAX];
    redisReply **reps;
    size_t n = funcs->elements, i, b;

    if (n == 0) return 0;
    argv[0] = "HMGET";
    for (b = 0; b < ADMIN_BUCKETS; b++) {
        snprintf(fields[b], sizeof fields[b], "le_%s", admin_bucket_bounds[b]);
        argv[2 + b] = fields[b];
    }
    argv[2 + ADMIN_BUCKETS] = "sum";
    argv[3 + ADMIN_BUCKETS] = "count";
    for (i = 0; i < n; i++) {
        const redisReply *f = funcs->element[i];
        argv[1] = f->type == REDIS_REPLY_STRING && keys_valid_name(f->str)
            ? keys_durations(&a->k, f->str, key, sizeof key)
            : NULL;
        if (argv[1] == NULL) argv[1] = ""; /* asked all the same: one reply a name */
        if (rconn_append(&a->r, 4 + ADMIN_BUCKETS, argv, NULL) != 0)
            return io_error(a, err, errlen);
    }
    reps = xcalloc(n, sizeof *reps);
    if (read_replies(a, reps, n, err, errlen) != 0) {
        free(reps);
        return -1;
    }
    m->hist = xcalloc(n, sizeof *m->hist);
    for (i = 0; i < n; i++) {
        struct admin_histogram *h = &m->hist[m->nhist];
        const redisReply *r = reps[i];
        long long prev = 0;
        int any = 0;
        if (funcs->element[i]->type != REDIS_REPLY_STRING ||
            !keys_valid_name(funcs->element[i]->str))
            continue;
        for (b = 0; b < ADMIN_BUCKETS + 2; b++)
            if (elem(r, b) != NULL && elem(r, b)->type == REDIS_REPLY_STRING) any = 1;
        if (!any) continue; /* no durations hash: not run since workers kept them */
        h->func = xstrdup(funcs->element[i]->str);
        h->count = as_ll(elem(r, ADMIN_BUCKETS + 1), 0);
        h->sum = as_double(elem(r, ADMIN_BUCKETS));
        /* Cumulative: a bucket missing from the hash has what the one below it has. */
        for (b = 0; b < ADMIN_BUCKETS; b++) {
            h->buckets[b] = as_ll(elem(r, b), b == ADMIN_BUCKETS - 1 ? h->count : prev);
            if (h->buckets[b] < prev) h->buckets[b] = prev;
            prev = h->buckets[b];
        }
        if (h->count < prev) h->count = prev;
        m->nhist++;
    }
    free_replies(reps, n);
    free(reps);
    if (m->nhist > 1) qsort(m->hist, m->nhist, sizeof *m->hist, by_func);
    return 0;
}

int admin_metrics_read(struct admin *a, struct admin_metrics *out, char *err, size_t errlen)
{
    char ks[KEYS_KEY_MAX], kfn[KEYS_KEY_MAX];
    struct admin_counters c;
    redisReply *r[2];
    int rc = -1;

    memset(out, 0, sizeof *out);
    if (admin_info_read(a, &out->info, err, errlen) != 0) return -1;
    keys_stats(&a->k, ks, sizeof ks);
    keys_functions(&a->k, kfn, sizeof kfn);
    if (rconn_appendf(&a->r, "HMGET %s " STATS_FIELDS, ks) != 0 ||
        rconn_appendf(&a->r, "HKEYS %s", kfn) != 0) {
        io_error(a, err, errlen);
        goto out;
    }
    if (read_replies(a, r, 2, err, errlen) != 0) goto out;
    if (is_error(r[0]) || is_error(r[1])) {
        const struct kept k = {is_error(r[0]) ? "the stats" : "the function catalog",
                               is_error(r[0]) ? ks : kfn, "hash"};
        const redisReply *bad = is_error(r[0]) ? r[0] : r[1];
        key_error(a, bad, &k, err, errlen);
        free_replies(r, 2);
        goto out;
    }
    counters_from(&c, r[0]);
    out->processed = c.processed;
    out->failed = c.failed;
    out->retried = c.retried;
    out->recovered = c.recovered;
    out->handed_back = c.handed_back;
    rc = read_histograms(a, out, r[1], err, errlen);
    free_replies(r, 2);
out:
    if (rc != 0) admin_metrics_free(out);
    return rc;
}

void admin_metrics_free(struct admin_metrics *m)
{
    size_t i;

    admin_info_free(&m->info);
    for (i = 0; i < m->nhist; i++) free(m->hist[i].func);
    free(m->hist);
    memset(m, 0, sizeof *m);
}
