/* queue.c - the protocol operations of cq: how a record moves between Redis keys.
 *
 * DESIGN. A job record (job.h) lives in exactly one place at a time:
 *
 *   producer --LPUSH--> queue:<q> --take--> inflight:<wid>:<q> --apply--> done (status hash)
 *                          ^   ^                 |        |               failed set + hash
 *                          |   +----recover------+        +--retry------> scheduled zset
 *                          +--------schedule_due-------------------------------+
 *
 * Each arrow is one atomic step: a Lua script (take, schedule_due, recover, apply,
 * reconcile) or a MULTI/EXEC block (enqueue); where Redis loaded cq's module (module/), the
 * take and the apply are its commands CQ.TAKE1 and CQ.APPLY1 instead, with the same
 * arguments, effects and replies, and a bulk enqueue's transactions are CQ.ENQUEUE1 calls
 * with the same effects (rconn's module bits say which). Redis runs a script or a transaction without
 * interleaving other clients' commands, so no observer ever sees a record in two places or
 * in none. Redis does not undo a script's writes when a later command in it fails, so each
 * script checks its destinations before it moves anything (see docs/DESIGN.md). A script
 * goes as EVAL with its body the first time on a connection and as EVALSHA after that (the
 * apply script is 6 KB, which Redis would hash with SHA-1 at every call): a new connection
 * (a restart, a failover) starts with EVAL again, and a NOSCRIPT reply (SCRIPT FLUSH) fails
 * that one call, whose caller's retry then sends the body (rconn_script_head).
 *
 * Scripts build key names from templates made by keys.c (keys_template), so the schema is
 * still spelled only there. cq targets a single Redis primary (not Redis Cluster): scripts
 * touch keys they compute, which Cluster forbids.
 */
#include "queue.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- a growable argv for pipelined commands ----------------------------------------- */

/* Short strings a command formats (numbers, times) are carved from chunks of an arena that
 * lives as long as the cmd, instead of one malloc each: a worker formats several per job. */
struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    char data[];
};

struct cmd {
    const char **argv;
    size_t *lens;
    char **owned; /* malloc'ed strings this cmd frees */
    struct arena_chunk *arena;
    int argc, cap, nowned, capowned;
};

static void cmd_add(struct cmd *c, const char *s, size_t len)
{
    if (c->argc == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->argv = xrealloc(c->argv, sizeof *c->argv * (size_t)c->cap);
        c->lens = xrealloc(c->lens, sizeof *c->lens * (size_t)c->cap);
    }
    c->argv[c->argc] = s;
    c->lens[c->argc] = len;
    c->argc++;
}

static void cmd_str(struct cmd *c, const char *s)
{
    cmd_add(c, s, strlen(s));
}

/* Add a malloc'ed string, which the cmd frees. */
static void cmd_own(struct cmd *c, char *s)
{
    if (c->nowned == c->capowned) {
        c->capowned = c->capowned ? c->capowned * 2 : 16;
        c->owned = xrealloc(c->owned, sizeof *c->owned * (size_t)c->capowned);
    }
    c->owned[c->nowned++] = s;
    cmd_str(c, s);
}

/* Add a copy of s (n bytes) carved from the arena. */
static void cmd_copy(struct cmd *c, const char *s, size_t n)
{
    struct arena_chunk *a = c->arena;
    char *d;

    if (a == NULL || a->cap - a->used < n + 1) {
        size_t cap = n + 1 > 16384 ? n + 1 : 16384;
        a = xmalloc(sizeof *a + cap);
        a->next = c->arena;
        a->used = 0;
        a->cap = cap;
        c->arena = a;
    }
    d = a->data + a->used;
    memcpy(d, s, n);
    d[n] = '\0';
    a->used += n + 1;
    cmd_add(c, d, n);
}

/* Add a formatted argument. */
static void cmd_fmt(struct cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cmd_fmt(struct cmd *c, const char *fmt, ...)
{
    char buf[128], *s = NULL;
    locale_t loc = locale_c_enter(); /* a %f with a point, whatever the program's locale */
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= sizeof buf) {
        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
    }
    locale_c_leave(loc);
    if (n < 0) xcheck(NULL, "a command argument");
    if (s != NULL)
        cmd_own(c, s);
    else
        cmd_copy(c, buf, (size_t)n);
}

/* Add a Unix time as seconds with six decimals. */
static void cmd_time(struct cmd *c, double t)
{
    char buf[32];
    size_t n = time_format(buf, t);

    cmd_copy(c, buf, n);
}

/* Queue the command for sending and start a new one (owned strings live until cmd_free). */
static int cmd_send(struct rconn *r, struct cmd *c)
{
    int rc = rconn_append(r, c->argc, c->argv, c->lens);
    c->argc = 0;
    return rc;
}

static void cmd_free(struct cmd *c)
{
    int i;

    for (i = 0; i < c->nowned; i++) free(c->owned[i]);
    free(c->owned);
    while (c->arena != NULL) {
        struct arena_chunk *next = c->arena->next;
        free(c->arena);
        c->arena = next;
    }
    free(c->argv);
    free(c->lens);
    memset(c, 0, sizeof *c);
}

/* Read n pipelined replies. The reply of the EXEC (the last one) decides: 0 when it is an
 * array none of whose elements is an error, else -1 with err. Replies are all read even after
 * an error, to keep the connection in step. With exec, EXEC's reply is handed back there (NULL
 * when the call failed), for the caller to read and free. */
static int read_multi_exec(struct rconn *r, int n, redisReply **exec, char *err, size_t errlen)
{
    int i, rc = 0;

    if (exec != NULL) *exec = NULL;
    for (i = 0; i < n; i++) {
        redisReply *rep = rconn_read(r);
        if (rep == NULL) {
            err_set(err, errlen, "%s", r->errstr);
            return -1;
        }
        if (rep->type == REDIS_REPLY_ERROR && rc == 0) {
            rconn_error(r, NULL, rep->str, err, errlen);
            rc = -1;
        }
        if (i == n - 1 && rep->type != REDIS_REPLY_ARRAY && rc == 0) {
            err_set(err, errlen, "redis: transaction aborted");
            rc = -1;
        }
        if (i == n - 1 && rep->type == REDIS_REPLY_ARRAY && rc == 0) {
            /* Redis runs the rest of a transaction when one command fails: say so. */
            size_t e;
            for (e = 0; e < rep->elements && rc == 0; e++) {
                if (rep->element[e]->type != REDIS_REPLY_ERROR) continue;
                rconn_error(r, NULL, rep->element[e]->str, err, errlen);
                rc = -1;
            }
        }
        if (i == n - 1 && rc == 0 && exec != NULL)
            *exec = rep;
        else
            freeReplyObject(rep);
    }
    return rc;
}

static int read_multi(struct rconn *r, int n, char *err, size_t errlen)
{
    return read_multi_exec(r, n, NULL, err, errlen);
}

#define QUEUE_WAIT_MS 1000 /* ?replicas=N: how long a write waits for the replicas */

static int reply_error(struct rconn *r, redisReply *rep, const char *what, char *err, size_t errlen)
{
    if (rep == NULL) {
        err_set(err, errlen, "%s", r->errstr);
        return -1;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        rconn_error(r, what, rep->str, err, errlen);
        freeReplyObject(rep);
        return -1;
    }
    return 0;
}

/* The reply to a WAIT after writes: 0 when enough replicas have them, else -1 with err. */
static int check_wait(struct rconn *r, redisReply *rep, const char *what, char *err, size_t errlen)
{
    if (reply_error(r, rep, what, err, errlen) != 0) return -1;
    if (rep->type == REDIS_REPLY_INTEGER && rep->integer >= r->url.wait_replicas) {
        freeReplyObject(rep);
        return 0;
    }
    err_set(err, errlen,
            "%s: %lld of %d replicas confirmed the write within %d ms: a failover now could "
            "lose it",
            what, rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0LL, r->url.wait_replicas,
            QUEUE_WAIT_MS);
    freeReplyObject(rep);
    return -1;
}

/* The scripts sent with EVALSHA once a connection has sent their bodies (the DESIGN note). */
enum script_id {
    SCRIPT_TAKE,
    SCRIPT_APPLY,
    SCRIPT_DUE,
    SCRIPT_RECONCILE,
    SCRIPT_RECOVER,
    SCRIPT_N
};
static struct rconn_script script[SCRIPT_N]; /* defined below, after the scripts */

/* The scripts cq's Redis module runs as commands (module/cqmodule.c): the same arguments,
 * effects and reply, without Lua. */
static const char *const script_command[SCRIPT_N] = {
    [SCRIPT_TAKE] = "CQ.TAKE1",
    [SCRIPT_APPLY] = "CQ.APPLY1",
};

/* The head of a script call: where the connection found cq's module, the script's command;
 * else EVALSHA and the script's SHA-1 when this connection has sent the body already, else
 * EVAL and the body (which caches it in Redis); then no KEYS (the scripts compute key names
 * from templates, see keys_template). */
static void cmd_script(struct cmd *c, struct rconn *r, enum script_id id)
{
    const char *head[2];

    if ((r->module & RCONN_MODULE_WORKER) && script_command[id] != NULL) {
        cmd_str(c, script_command[id]);
        return;
    }
    rconn_script_head(r, &script[id], head);
    cmd_str(c, head[0]);
    cmd_str(c, head[1]);
    cmd_str(c, "0");
}

/* The head of a script call on queues and in-flight lists (cmd_script), then the templates of
 * a queue and of an in-flight list (tq and ti hold them, KEYS_KEY_MAX bytes each). */
static void cmd_eval(struct cmd *c, struct rconn *r, enum script_id id, const struct keys *k,
                     char *tq, char *ti)
{
    cmd_script(c, r, id);
    cmd_str(c, keys_template(k, KEYS_QUEUE, tq, KEYS_KEY_MAX));
    cmd_str(c, keys_template(k, KEYS_INFLIGHT, ti, KEYS_KEY_MAX));
}

/* ---- producers ---------------------------------------------------------------------- */

#define ENQUEUE_CHUNK 1000

/* What the chunks of one call share, kept across them so that formatting a chunk allocates
 * nothing: the request buffer (a chunk's commands, handed to the connection at once), the
 * record encoder, key names and the due time formatted once, and the part of a status HSET
 * after the key, formatted once per queue. */
struct enqueue_fmt {
    struct rconn_buf b;
    struct job_encoder enc;
    char kqs[KEYS_KEY_MAX], ks[KEYS_KEY_MAX];
    char at[32]; /* the due time */
    size_t atlen;
    int scheduled;
    struct rconn_buf head, tail; /* "HSET", then status, queue (and due time) */
    char tail_queue[KEYS_NAME_MAX + 1];
};

#define BUF_LIT(b, s) rconn_buf_arg(b, s, sizeof s - 1)

static void enqueue_fmt_init(struct enqueue_fmt *f, const struct keys *k, double at, int scheduled)
{
    memset(f, 0, sizeof *f);
    keys_queues(k, f->kqs, sizeof f->kqs);
    keys_scheduled(k, f->ks, sizeof f->ks);
    f->atlen = time_format(f->at, at);
    f->scheduled = scheduled;
    rconn_buf_array(&f->head, scheduled ? 12 : 10);
    BUF_LIT(&f->head, "HSET");
}

static void enqueue_fmt_free(struct enqueue_fmt *f)
{
    rconn_buf_free(&f->b);
    rconn_buf_free(&f->head);
    rconn_buf_free(&f->tail);
    job_encoder_free(&f->enc);
}

/* The status hash of a job: status, queue, func and enqueued_at (docs/PROTOCOL.md). They
 * cost Redis here once, where a worker would have to add them to the hash when the job
 * starts or ends, the part of a job's life that limits a worker (its apply script writes
 * them only into a hash without a status: a record pushed by hand). An id used before also
 * gets HDEL (before the HSET) and PERSIST, so as not to inherit that run's expiry, what it
 * ended with, nor its attempts, worker, recoveries, due time or failed record. Returns the
 * number of commands. */
static int enqueue_status(struct enqueue_fmt *f, const struct keys *k, const struct job *j,
                          int fresh)
{
    struct rconn_buf *b = &f->b;
    char kj[KEYS_KEY_MAX];
    size_t kjlen = strlen(keys_job(k, j->id, kj, sizeof kj));

    if (f->tail.len == 0 || strcmp(f->tail_queue, j->queue) != 0) {
        f->tail.len = 0;
        BUF_LIT(&f->tail, "status");
        if (f->scheduled)
            BUF_LIT(&f->tail, "scheduled");
        else
            BUF_LIT(&f->tail, "queued");
        BUF_LIT(&f->tail, "queue");
        rconn_buf_str(&f->tail, j->queue);
        if (f->scheduled) {
            BUF_LIT(&f->tail, "scheduled_for");
            rconn_buf_arg(&f->tail, f->at, f->atlen);
        }
        str_copy(f->tail_queue, sizeof f->tail_queue, j->queue);
    }
    if (!fresh) {
        static const char *const old[] = {"result",     "result_json", "error",        "ended_at",
                                          "started_at", "retry_at",    "worker",       "attempts",
                                          "recovered",  "record",      "scheduled_for"};
        size_t i;
        rconn_buf_array(b, 2 + sizeof old / sizeof old[0]);
        BUF_LIT(b, "HDEL");
        rconn_buf_arg(b, kj, kjlen);
        for (i = 0; i < sizeof old / sizeof old[0]; i++) rconn_buf_str(b, old[i]);
    }
    rconn_buf_raw(b, f->head.data, f->head.len);
    rconn_buf_arg(b, kj, kjlen);
    rconn_buf_raw(b, f->tail.data, f->tail.len);
    BUF_LIT(b, "func");
    rconn_buf_str(b, j->func);
    BUF_LIT(b, "enqueued_at");
    {
        char t[32];
        rconn_buf_arg(b, t, time_format(t, j->enqueued_at));
    }
    if (fresh) return 1;
    rconn_buf_array(b, 2);
    BUF_LIT(b, "PERSIST");
    rconn_buf_arg(b, kj, kjlen);
    return 3;
}

/* Format one chunk's transaction into f->b (no I/O); returns how many replies it will
 * produce. fresh[i] says jobs[i] got its id here, so it cannot have an old status hash to
 * un-expire. */
static int enqueue_chunk_format(struct enqueue_fmt *f, const struct keys *k,
                                struct job *const *jobs, const unsigned char *fresh, size_t n)
{
    struct rconn_buf *b = &f->b;
    char kq[KEYS_KEY_MAX];
    size_t i, m, run;
    int sent = 0;

    rconn_buf_array(b, 1);
    BUF_LIT(b, "MULTI");
    sent++;
    /* Records for the same queue go out in one variadic LPUSH (or ZADD). */
    for (i = 0; i < n; i = run) {
        const char *q = jobs[i]->queue;
        for (run = i + 1; run < n && strcmp(jobs[run]->queue, q) == 0; run++) {
        }
        rconn_buf_array(b, 3);
        BUF_LIT(b, "SADD");
        rconn_buf_str(b, f->kqs);
        rconn_buf_str(b, q);
        if (f->scheduled) {
            rconn_buf_array(b, 2 + 2 * (run - i));
            BUF_LIT(b, "ZADD");
            rconn_buf_str(b, f->ks);
        } else {
            rconn_buf_array(b, 2 + (run - i));
            BUF_LIT(b, "LPUSH");
            rconn_buf_str(b, keys_queue(k, q, kq, sizeof kq));
        }
        for (m = i; m < run; m++) {
            if (f->scheduled) rconn_buf_arg(b, f->at, f->atlen);
            job_encoder_put(&f->enc, jobs[m]);
            rconn_buf_arg(b, f->enc.buf, f->enc.len);
        }
        sent += 2;
    }
    for (i = 0; i < n; i++) sent += enqueue_status(f, k, jobs[i], fresh[i]);
    rconn_buf_array(b, 1);
    BUF_LIT(b, "EXEC");
    return sent + 1;
}

/* Where the run of jobs from i ends: those after it that share its queue, func and
 * enqueued_at (a bulk enqueue is one run a queue). */
static size_t run_end(struct job *const *jobs, size_t i, size_t n)
{
    size_t e;

    for (e = i + 1; e < n; e++)
        if (strcmp(jobs[e]->queue, jobs[i]->queue) != 0 ||
            strcmp(jobs[e]->func, jobs[i]->func) != 0 ||
            jobs[e]->enqueued_at != jobs[i]->enqueued_at)
            break;
    return e;
}

/* The same chunk as one CQ.ENQUEUE1 of cq's Redis module (module/cqmodule.c), for jobs whose
 * ids were made here and that are due now: the same writes, in one command instead of a
 * transaction of a command a job. Its arguments: the queues set, then for each run of jobs
 * (run_end) the queue's name, its key, the func, the time and the count, and for each job
 * its key and record. One reply. */
static int enqueue_chunk_module(struct enqueue_fmt *f, const struct keys *k,
                                struct job *const *jobs, size_t n)
{
    struct rconn_buf *b = &f->b;
    char kq[KEYS_KEY_MAX], kj[KEYS_KEY_MAX], t[32];
    size_t i, m, run, runs = 0;

    for (i = 0; i < n; i = run_end(jobs, i, n)) runs++;
    rconn_buf_array(b, 2 + 5 * runs + 2 * n);
    BUF_LIT(b, "CQ.ENQUEUE1");
    rconn_buf_str(b, f->kqs);
    for (i = 0; i < n; i = run) {
        run = run_end(jobs, i, n);
        rconn_buf_str(b, jobs[i]->queue);
        rconn_buf_str(b, keys_queue(k, jobs[i]->queue, kq, sizeof kq));
        rconn_buf_str(b, jobs[i]->func);
        rconn_buf_arg(b, t, time_format(t, jobs[i]->enqueued_at));
        rconn_buf_arg(b, t, (size_t)snprintf(t, sizeof t, "%zu", run - i));
        for (m = i; m < run; m++) {
            rconn_buf_str(b, keys_job(k, jobs[m]->id, kj, sizeof kj));
            job_encoder_put(&f->enc, jobs[m]);
            rconn_buf_arg(b, f->enc.buf, f->enc.len);
        }
    }
    return 1;
}

/* A status a job has before it ends (docs/PROTOCOL.md). */
static int status_open(const char *status)
{
    static const char *const open[] = {"queued", "scheduled", "started", "retrying"};
    size_t i;

    for (i = 0; i < sizeof open / sizeof open[0]; i++)
        if (strcmp(status, open[i]) == 0) return 1;
    return 0;
}

static int by_id(const void *a, const void *b)
{
    return strcmp((*(struct job *const *)a)->id, (*(struct job *const *)b)->id);
}

/* An id names one job at a time: of the jobs whose ids the caller gave (fresh[i] == 0), one
 * is refused, and nothing of the call is enqueued, where two runs would share one status
 * hash: its job has not ended; or it was canceled while queued and its record still waits in
 * a queue, where a worker would take the new run for the canceled one (status canceled and
 * the id in the cancel set; the set alone is a cancel asked before the job was enqueued,
 * which stands); or it comes twice in the call. (A producer that sends an enqueue again
 * after a lost reply learns so that it went in.) An ACL that forbids SISMEMBER or ZSCORE (a
 * producer's from before they were needed) leaves the cancel unchecked, or the failed set as
 * it is. The reads and the transaction are two round trips: two producers that enqueue one
 * id at the same moment can both pass.
 *
 * In two halves, so that queue_enqueue sends these reads in the round trip of its TYPEs:
 * ids_send appends a HGET, a SISMEMBER and a ZSCORE an id (none when one comes twice: then
 * it returns -1 with err); ids_read reads what was sent, and keeps the jobs whose id is in
 * the failed set (its last run failed; or its status is gone, expired after --failure-ttl),
 * for forget_failed. */
struct id_check {
    struct job **own;    /* the jobs whose ids the caller gave, by id */
    size_t m, sent;      /* how many; how many have their reads sent */
    struct job **failed; /* of those, the ones in the failed set (n of own's room) */
    size_t nfailed;
};

static int ids_send(struct rconn *r, const struct keys *k, struct job *const *jobs,
                    const unsigned char *fresh, size_t n, struct id_check *ic, char *err,
                    size_t errlen)
{
    char key[KEYS_KEY_MAX], kc[KEYS_KEY_MAX], kf[KEYS_KEY_MAX];
    size_t i;

    memset(ic, 0, sizeof *ic);
    ic->own = xcalloc(n ? n : 1, sizeof *ic->own);
    ic->failed = xcalloc(n ? n : 1, sizeof *ic->failed);
    for (i = 0; i < n; i++)
        if (!fresh[i]) ic->own[ic->m++] = jobs[i];
    qsort(ic->own, ic->m, sizeof *ic->own, by_id);
    for (i = 1; i < ic->m; i++)
        if (strcmp(ic->own[i]->id, ic->own[i - 1]->id) == 0) {
            err_set(err, errlen, "job id %s comes twice: an id names one job at a time",
                    ic->own[i]->id);
            return -1;
        }
    keys_cancel(k, kc, sizeof kc);
    keys_failed(k, kf, sizeof kf);
    for (; ic->sent < ic->m; ic->sent++)
        if (rconn_appendf(r, "HGET %s status",
                          keys_job(k, ic->own[ic->sent]->id, key, sizeof key)) != 0 ||
            rconn_appendf(r, "SISMEMBER %s %s", kc, ic->own[ic->sent]->id) != 0 ||
            rconn_appendf(r, "ZSCORE %s %s", kf, ic->own[ic->sent]->id) != 0) {
            err_set(err, errlen, "%s", r->errstr);
            return -1; /* the connection was dropped: nothing more will be read */
        }
    return 0;
}

/* Read the replies ids_send sent; free ic's own, not its failed. rc: 0, or -1 when err
 * already says why the call fails (the replies are read all the same). 0, or -1 with err. */
static int ids_read(struct rconn *r, struct id_check *ic, int rc, char *err, size_t errlen)
{
    size_t i;

    for (i = 0; i < ic->sent; i++) {
        redisReply *st = rconn_read(r), *cancel = st ? rconn_read(r) : NULL;
        redisReply *failed = cancel ? rconn_read(r) : NULL;
        const char *id = ic->own[i]->id;
        if (failed == NULL) {
            if (rc == 0) err_set(err, errlen, "%s", r->errstr);
            if (st != NULL) freeReplyObject(st);
            if (cancel != NULL) freeReplyObject(cancel);
            rc = -1;
            break;
        }
        if (rc == 0 && st->type == REDIS_REPLY_STRING && status_open(st->str)) {
            err_set(err, errlen,
                    "job %s is %s, not ended: an id names one job at a time; wait for it to "
                    "end, or give another id",
                    id, st->str);
            rc = -1;
        } else if (rc == 0 && cancel->type == REDIS_REPLY_INTEGER && cancel->integer == 1 &&
                   st->type == REDIS_REPLY_STRING && strcmp(st->str, "canceled") == 0) {
            err_set(err, errlen,
                    "job %s was canceled and its record still waits in its queue: an id "
                    "names one job at a time; give another id, or wait until a worker has "
                    "dropped it",
                    id);
            rc = -1;
        } else if (rc == 0 && st->type == REDIS_REPLY_ERROR &&
                   strncmp(st->str, "WRONGTYPE", 9) != 0) {
            rconn_error(r, NULL, st->str, err, errlen); /* WRONGTYPE: the TYPE check's */
            rc = -1;
        }
        if (failed->type == REDIS_REPLY_STRING) ic->failed[ic->nfailed++] = ic->own[i];
        freeReplyObject(st);
        freeReplyObject(cancel);
        freeReplyObject(failed);
    }
    free(ic->own);
    ic->own = NULL;
    return rc;
}

/* Whether j's id is made here, by the enqueue or by cq_wait_prepare before it (job.h's
 * id_fresh): a UUID no job in Redis has, so none of a caller's id's checks. */
static int id_made_here(const struct job *j)
{
    return j->id[0] == '\0' || j->id_fresh;
}

int queue_check_ids(struct rconn *r, const struct keys *k, struct job *const *jobs, size_t n,
                    char *err, size_t errlen)
{
    unsigned char *fresh = xmalloc(n ? n : 1);
    struct id_check ic;
    size_t i;
    int rc;

    for (i = 0; i < n; i++) fresh[i] = id_made_here(jobs[i]);
    rc = ids_send(r, k, jobs, fresh, n, &ic, err, errlen);
    rc = ids_read(r, &ic, rc, err, errlen);
    free(ic.failed);
    free(fresh);
    return rc;
}

/* The keys a call writes to must be of their type: a queue key that is not a list (or a
 * scheduled set that is not a sorted set, a queues set that is not a set, the status hash of
 * a reused id that is not a hash) would make one command fail inside a transaction whose
 * other writes still happen. Checked once per call, before anything is sent: an operator's
 * stray key is refused with its name, not half written. The reads of ids_send go in the
 * same round trip, after the TYPEs; and before them the question ask (an RCONN_MODULE_*
 * group, or 0), whose answer says whether the call may go as CQ.ENQUEUE1. 0, or -1 with
 * err. */
struct dest {
    enum keys_kind kind; /* KEYS_QUEUES, KEYS_SCHEDULED, KEYS_QUEUE or KEYS_JOB */
    const char *name;    /* the queue or the job id (NULL for the first two) */
};

static const char *dest_key(const struct keys *k, const struct dest *d, char *buf, size_t len)
{
    switch (d->kind) {
    case KEYS_QUEUES: return keys_queues(k, buf, len);
    case KEYS_SCHEDULED: return keys_scheduled(k, buf, len);
    case KEYS_QUEUE: return keys_queue(k, d->name, buf, len);
    default: return keys_job(k, d->name, buf, len);
    }
}

static const char *dest_type(const struct dest *d)
{
    return d->kind == KEYS_QUEUES   ? "set"
        : d->kind == KEYS_SCHEDULED ? "zset"
        : d->kind == KEYS_QUEUE     ? "list"
                                    : "hash";
}

static int check_destinations(struct rconn *r, const struct keys *k, struct job *const *jobs,
                              const unsigned char *fresh, size_t n, int scheduled, unsigned ask,
                              struct id_check *ic, char *err, size_t errlen)
{
    struct dest *d = xcalloc(2 * n + 2, sizeof *d);
    char key[KEYS_KEY_MAX];
    size_t i, e, nd = 0, sent;
    int rc = 0, own = 0;

    if (ask && rconn_module_append(r, ask) != 0) {
        err_set(err, errlen, "%s", r->errstr);
        free(d);
        return -1;
    }

    d[nd++].kind = KEYS_QUEUES;
    if (scheduled) d[nd++].kind = KEYS_SCHEDULED;
    for (i = 0; i < n; i++) {
        /* Jobs of one call share a queue or a few: a queue is looked up only when it differs
         * from the previous job's. */
        if (!scheduled && (i == 0 || strcmp(jobs[i]->queue, jobs[i - 1]->queue) != 0)) {
            for (e = 0; e < nd; e++)
                if (d[e].kind == KEYS_QUEUE && strcmp(d[e].name, jobs[i]->queue) == 0) break;
            if (e == nd) {
                d[nd].kind = KEYS_QUEUE;
                d[nd++].name = jobs[i]->queue;
            }
        }
        if (!fresh[i]) {
            d[nd].kind = KEYS_JOB;
            d[nd++].name = jobs[i]->id;
            own = 1;
        }
    }
    for (sent = 0; sent < nd; sent++)
        if (rconn_appendf(r, "TYPE %s", dest_key(k, &d[sent], key, sizeof key)) != 0) break;
    if (sent < nd) {
        err_set(err, errlen, "%s", r->errstr[0] ? r->errstr : "cannot build a TYPE command");
        rc = -1;
    }
    if (rc == 0 && own) rc = ids_send(r, k, jobs, fresh, n, ic, err, errlen);
    if (ask && rconn_module_read(r, ask) != 0) goto lost;
    for (i = 0; i < sent; i++) {
        redisReply *t = rconn_read(r);
        if (t == NULL) goto lost;
        if (rc == 0 && t->type == REDIS_REPLY_STATUS && strcmp(t->str, "none") != 0 &&
            strcmp(t->str, dest_type(&d[i])) != 0) {
            err_set(err, errlen, "key %s is a %s, not a %s: remove or rename it",
                    dest_key(k, &d[i], key, sizeof key), t->str, dest_type(&d[i]));
            rc = -1;
        } else if (rc == 0 && t->type == REDIS_REPLY_ERROR) {
            rconn_error(r, NULL, t->str, err, errlen);
            rc = -1;
        }
        freeReplyObject(t);
    }
    rc = ids_read(r, ic, rc, err, errlen);
    free(d);
    return rc;
lost:
    if (rc == 0) err_set(err, errlen, "%s", r->errstr);
    free(ic->own);
    ic->own = NULL;
    free(d);
    return -1;
}

/* An id in the failed set that is enqueued again leaves it, as a requeue takes it out: its job
 * is queued now, and `cqctl requeue --all-failed` would refuse it. One ZREM, its own round
 * trip (rare: only such ids), before the transaction rather than after it, where a worker
 * could already have failed the new run and ZADDed it again. A producer whose ACL has no
 * ZREM (from before it was needed) leaves the entry, as before, and so does a connection
 * lost here (the transaction then fails too); a transaction that fails after it leaves the
 * job failed and out of the set, and the caller is told the enqueue failed. */
static void forget_failed(struct rconn *r, const struct keys *k, const struct id_check *ic)
{
    const char **argv;
    char kf[KEYS_KEY_MAX];
    redisReply *rep;
    size_t i;

    if (ic->nfailed == 0) return;
    argv = xcalloc(ic->nfailed + 2, sizeof *argv);
    argv[0] = "ZREM";
    argv[1] = keys_failed(k, kf, sizeof kf);
    for (i = 0; i < ic->nfailed; i++) argv[i + 2] = ic->failed[i]->id;
    rep = rconn_command(r, (int)ic->nfailed + 2, argv, NULL);
    if (rep != NULL) freeReplyObject(rep);
    free(argv);
}

static void mark_enqueued(struct job *const *jobs, size_t at, size_t n)
{
    size_t i;

    for (i = at; i < at + n; i++) jobs[i]->enqueued = 1;
}

/* At most how long j's record can be, without writing it: a string argument escapes to six
 * bytes a byte at most. SIZE_MAX where an argument is an array or an object. */
static size_t record_bound(const struct job *j)
{
    const cJSON *a;
    size_t n = 512 + strlen(j->func) + strlen(j->id) + strlen(j->queue);

    for (a = j->args != NULL ? j->args->child : NULL; a != NULL; a = a->next) {
        if (cJSON_IsString(a))
            n += 6 * strlen(a->valuestring) + 3;
        else if (cJSON_IsArray(a) || cJSON_IsObject(a) || cJSON_IsRaw(a))
            return SIZE_MAX;
        else
            n += 32;
    }
    return n;
}

/* A record no worker would read (job_decode refuses one over JOB_RECORD_MAX) is refused here,
 * before anything is sent, with room kept for what a retry or a hand-back adds to it (its
 * attempts, handoffs, recovered: QUEUE_RECORD_ROOM): it is written out only where it could
 * be that long. */
#define QUEUE_RECORD_ROOM 64
static int record_fits(const struct job *j, char *err, size_t errlen)
{
    char *rec;
    size_t len;

    if (record_bound(j) <= JOB_RECORD_MAX - QUEUE_RECORD_ROOM) return 0;
    rec = job_encode(j);
    len = strlen(rec) + (j->id[0] == '\0' ? 36 : 0); /* the UUID it is yet to get */
    free(rec);
    if (len <= JOB_RECORD_MAX - QUEUE_RECORD_ROOM) return 0;
    err_set(err, errlen,
            "%s: a job record of %zu bytes is over the %d bytes a worker reads (less %d for "
            "the counters a retry adds): pass large data by reference (a path or a URL)",
            j->func, len, JOB_RECORD_MAX, QUEUE_RECORD_ROOM);
    return -1;
}

/* The first argument of j that is not UTF-8 text, as a refusal names it: its position, and
 * a string shown escaped (str_shown: "argument 2, 'caf\xe9',"), so that the caller can tell
 * which of its values it was; an array or an object by its position alone. */
static void name_not_utf8(const struct job *j, char *buf, size_t len)
{
    char shown[STR_SHOWN_LEN];
    const cJSON *a;
    int i = 1;

    for (a = cJSON_IsArray(j->args) ? j->args->child : NULL; a != NULL; a = a->next, i++) {
        if (job_json_utf8(a)) continue;
        if (cJSON_IsString(a))
            snprintf(buf, len, "argument %d, '%s', is", i,
                     str_shown(a->valuestring, shown, sizeof shown));
        else
            snprintf(buf, len, "argument %d holds a string that is", i);
        return;
    }
    str_copy(buf, len, "an argument is");
}

int queue_check_record(const struct job *j, char *err, size_t errlen)
{
    char which[STR_SHOWN_LEN + 64];

    if (record_fits(j, err, errlen) != 0) return -1;
    if (!job_json_utf8(j->args)) {
        name_not_utf8(j, which, sizeof which);
        err_set(err, errlen,
                "%s: %s not UTF-8 text, which JSON's strings must be (a reader in another "
                "language could not decode the record): send bytes as base64",
                j->func, which);
        return -1;
    }
    return 0;
}

int queue_check_records(struct job *const *jobs, size_t n, char *err, size_t errlen)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (queue_check_record(jobs[i], err, errlen) != 0) return -1;
    return 0;
}

/* Check what jobs will be enqueued as: ids (those not made here), queues, times, sizes. */
static int enqueue_prepare(struct job *const *jobs, const unsigned char *fresh, size_t n,
                           double now, char *err, size_t errlen)
{
    size_t i;

    for (i = 0; i < n; i++) {
        struct job *j = jobs[i];
        if (j->queue[0] == '\0') str_copy(j->queue, sizeof j->queue, "default");
        if (j->enqueued_at <= 0) j->enqueued_at = now;
        /* Ids made here are UUIDs; a queue is checked when it differs from the last one. */
        if (!fresh[i] && keys_check_name("job id", j->id, err, errlen) != 0) return -1;
        if ((i == 0 || strcmp(j->queue, jobs[i - 1]->queue) != 0) &&
            keys_check_name("queue", j->queue, err, errlen) != 0)
            return -1;
        if (queue_check_record(j, err, errlen) != 0) return -1;
    }
    return 0;
}

/* A chunk's replies: n of a transaction, or the one of a CQ.ENQUEUE1 (module). 0 when it was
 * enqueued; 1 when Redis refused CQ.ENQUEUE1 itself (the module unloaded, or the user's ACL
 * changed: rconn then forgets the module), so that nothing of it was written and it can go
 * again as a transaction; else -1 with err (the module's own errors: nothing was written
 * either, but for a job key of another type, as in the transaction). */
static int read_chunk(struct rconn *r, int module, int n, char *err, size_t errlen)
{
    redisReply *rep;
    int rc = 0;

    if (!module) return read_multi(r, n, err, errlen);
    rep = rconn_read(r);
    if (rep == NULL) {
        err_set(err, errlen, "%s", r->errstr);
        return -1;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        rc = (rconn_module_refused(rep->str) & RCONN_MODULE_ENQUEUE) ? 1 : -1;
        if (rc < 0) rconn_error(r, NULL, rep->str, err, errlen);
    }
    freeReplyObject(rep);
    return rc;
}

static int all_fresh(const unsigned char *fresh, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (!fresh[i]) return 0;
    return 1;
}

/* Chunks are pipelined one ahead: chunk i is sent as soon as it is formatted, and Redis
 * runs it while chunk i+1 is formatted and chunk i-1's replies are read, so that neither this
 * process nor Redis waits for the other. Each chunk is its own MULTI/EXEC, or CQ.ENQUEUE1
 * where module says to and the connection still has it: a chunk is enqueued whole or not at
 * all. Ids are made chunk by chunk, so that Redis has the first
 * chunk sooner. Where Redis refuses CQ.ENQUEUE1 itself (read_chunk), no further chunk is
 * sent; once the one in flight is read, the jobs from the chunk refused on that are not in
 * go again as transactions, so that they keep their order, after the types of their keys
 * are checked (check_destinations), which a call through the module left to it. */
static int enqueue_chunks(struct rconn *r, const struct keys *k, struct job *const *jobs,
                          const unsigned char *fresh, size_t n, double at, int scheduled,
                          int module, char *err, size_t errlen)
{
    struct enqueue_fmt f;
    size_t i, prev_at = 0, prev_n = 0, redo = n;
    int prev = -1, prev_mod = 0, rc = 0, x;

    enqueue_fmt_init(&f, k, at, scheduled);
    for (i = 0; i < n && rc == 0 && redo == n; i += ENQUEUE_CHUNK) {
        size_t m = n - i < ENQUEUE_CHUNK ? n - i : ENQUEUE_CHUNK;
        int sent, mod;
        if (module && !(r->module & RCONN_MODULE_ENQUEUE)) {
            /* The module lost without a refusal read here (a connection made again): no
             * chunk of this call goes as a transaction behind one of CQ.ENQUEUE1. */
            redo = i;
            break;
        }
        job_fill_ids(jobs + i, m);
        mod = module;
        sent = mod ? enqueue_chunk_module(&f, k, jobs + i, m)
                   : enqueue_chunk_format(&f, k, jobs + i, fresh + i, m);
        if (rconn_append_buf(r, &f.b) != 0 || rconn_flush(r) != 0) {
            err_set(err, errlen, "%s", r->errstr);
            rc = -1;
            break;
        }
        if (prev >= 0) {
            x = read_chunk(r, prev_mod, prev, err, errlen);
            if (x == 0)
                mark_enqueued(jobs, prev_at, prev_n);
            else if (x > 0)
                redo = prev_at;
            else
                rc = -1;
        }
        prev = sent;
        prev_mod = mod;
        prev_at = i;
        prev_n = m;
    }
    enqueue_fmt_free(&f);
    /* The last chunk's replies, also after an error, to keep the connection in step: a
     * chunk sent before an earlier one failed may still have been enqueued. */
    if (prev >= 0 && r->ctx != NULL) {
        char err2[256];
        x = read_chunk(r, prev_mod, prev, rc == 0 ? err : err2, rc == 0 ? errlen : sizeof err2);
        if (x == 0)
            mark_enqueued(jobs, prev_at, prev_n);
        else if (x > 0 && prev_at < redo)
            redo = prev_at;
        else if (x < 0)
            rc = -1;
    }
    if (rc == 0 && redo < n) {
        struct job **left = xcalloc(n - redo, sizeof *left);
        unsigned char *lf = xmalloc(n - redo);
        size_t nl = 0;
        struct id_check ic = {0};
        for (i = redo; i < n; i++) {
            if (jobs[i]->enqueued) continue;
            left[nl] = jobs[i];
            lf[nl++] = fresh[i];
        }
        rc = check_destinations(r, k, left, lf, nl, scheduled, 0, &ic, err, errlen);
        free(ic.failed);
        if (rc == 0) rc = enqueue_chunks(r, k, left, lf, nl, at, scheduled, 0, err, errlen);
        free(left);
        free(lf);
    }
    return rc;
}

int queue_enqueue(struct rconn *r, const struct keys *k, struct job *const *jobs, size_t n,
                  double at, char *err, size_t errlen)
{
    double now = time_now();
    unsigned char *fresh = xmalloc(n ? n : 1);
    struct id_check ic = {0};
    size_t i;
    int rc, cand, module;

    for (i = 0; i < n; i++) {
        fresh[i] = id_made_here(jobs[i]);
        jobs[i]->enqueued = 0;
    }
    rc = enqueue_prepare(jobs, fresh, n, now, err, errlen);
    /* Through cq's module where Redis has it and all the call's ids are made here (a call is
     * all transactions or all CQ.ENQUEUE1, so that a fallback keeps the order). CQ.ENQUEUE1
     * checks the keys' types itself and writes nothing where one is wrong, so once a
     * connection knows it has the module, a call leaves out the TYPE round trip a
     * transaction needs first: one round trip, even for one job. Until it knows, the
     * question goes in the TYPEs' round trip (once a connection). */
    cand = rc == 0 && at <= now && n > 0 && all_fresh(fresh, n);
    /* What the connection knows of the module is its own: a connection lost since (whose
     * bits stay until the next connect clears them) is made again first. */
    if (cand && r->ctx == NULL && rconn_connect(r) != 0) {
        err_set(err, errlen, "%s", r->errstr);
        rc = -1;
        cand = 0;
    }
    module = cand && (r->module_asked & RCONN_MODULE_ENQUEUE) && (r->module & RCONN_MODULE_ENQUEUE);
    if (rc == 0 && !module) {
        unsigned ask = cand && !(r->module_asked & RCONN_MODULE_ENQUEUE) ? RCONN_MODULE_ENQUEUE : 0;
        rc = check_destinations(r, k, jobs, fresh, n, at > now, ask, &ic, err, errlen);
        module = rc == 0 && ask && (r->module & RCONN_MODULE_ENQUEUE);
    }
    if (rc == 0) forget_failed(r, k, &ic);
    if (rc == 0) rc = enqueue_chunks(r, k, jobs, fresh, n, at, at > now, module, err, errlen);
    free(ic.failed);
    /* ?replicas=N: the jobs are in, but enqueueing succeeds only once N replicas have them. */
    if (rc == 0 && r->url.wait_replicas > 0)
        rc = check_wait(r, rconn_commandf(r, "WAIT %d %d", r->url.wait_replicas, QUEUE_WAIT_MS),
                        "enqueue", err, errlen);
    job_fill_ids(jobs, n); /* every job has its id, also those a failure kept out */
    /* Sent now, or maybe (a failure): an enqueue of the same job again checks its id. */
    for (i = 0; i < n; i++) jobs[i]->id_fresh = 0;
    free(fresh);
    return rc;
}

/* ---- taking ------------------------------------------------------------------------- */

/* Redis does not undo a script's earlier writes when a later command fails, so every
 * script here checks that a destination is a list before it moves a record there, and
 * leaves the record where it is otherwise (naming the queue in its reply). */
#define LUA_LISTABLE                           \
    "local function listable(key)\n"           \
    "  local t = redis.call('TYPE', key).ok\n" \
    "  return t == 'list' or t == 'none'\n"    \
    "end\n"

/* ARGV: queue template, inflight template, wid, max, paused key, cancel key, queue names in
 * priority order. RPOP with a count takes the oldest records first; they are pushed to the
 * in-flight list in the same script, so they are never only in the reply; in slices, since
 * Lua's unpack has a limit of about 8,000 values. Reply, in pairs but for the records:
 * ("#", count of cancel requests) when there are any; ("~", index) for each paused queue;
 * ("=" queue, n) and then that queue's n records (the name once a queue, not once a record:
 * every element of the reply costs Redis and the worker); ("!" queue, error) for a queue key
 * that cannot be popped (another type of key under that name), which is skipped so that one
 * bad key does not stop the other queues. The SCARD and every queue's SISMEMBER come before
 * anything moves, so that where they fail (another type, an ACL) the script fails with
 * nothing moved. Where an LPUSH to the in-flight list fails (an ACL without it: Redis keeps
 * the RPOP), the records it did not push go back to the queue's tail, in their order, and
 * the queue is named with the command and the cause ("!"): those pushed before it are taken.
 * A user that may not RPUSH them back either loses them: that is said too, and Redis's log
 * has each one. As CQ.TAKE1 does (module/cqmodule.c). */
static const char take_lua[] =
    LUA_LISTABLE "local out, n, max = {}, 0, tonumber(ARGV[4])\n"
                 "local function refused(cmd, key, r)\n"
                 "  return redis.error_reply('take: ' .. cmd .. ' ' .. key .. ': ' .. r.err)\n"
                 "end\n"
                 "local nc = redis.pcall('SCARD', ARGV[6])\n"
                 "if type(nc) == 'table' then return refused('SCARD', ARGV[6], nc) end\n"
                 "if nc > 0 then out[1] = '#'; out[2] = tostring(nc) end\n"
                 "local paused = {}\n"
                 "for i = 7, #ARGV do\n"
                 "  local p = redis.pcall('SISMEMBER', ARGV[5], ARGV[i])\n"
                 "  if type(p) == 'table' then\n"
                 "    return refused('SISMEMBER', ARGV[5] .. ' ' .. ARGV[i], p)\n"
                 "  end\n"
                 "  paused[i] = p == 1\n"
                 "end\n"
                 "local function put_back(qk, recs, from, why)\n"
                 "  local back, e = {}\n"
                 "  for k = #recs, from, -1 do back[#back + 1] = recs[k] end\n"
                 "  for s = 1, #back, 1000 do\n"
                 "    e = redis.pcall('RPUSH', qk, unpack(back, s, math.min(s + 999, #back)))\n"
                 "    if type(e) == 'table' then\n"
                 "      for k = s, #back do\n"
                 "        redis.log(redis.LOG_WARNING, 'cq: take: lost from ' .. qk .. ': ' ..\n"
                 "          back[k])\n"
                 "      end\n"
                 "      e = why .. '; RPUSH ' .. qk .. ' to put them back: ' .. e.err .. ': ' ..\n"
                 "        (#back - s + 1) .. (s == #back and ' record' or ' records') ..\n"
                 "        ' LOST (each in Redis\\'s log)'\n"
                 "      return e\n"
                 "    end\n"
                 "  end\n"
                 "  return why .. ' (' .. #back .. (#back == 1 and ' record' or ' records') ..\n"
                 "    ' left in ' .. qk .. ')'\n"
                 "end\n"
                 "for i = 7, #ARGV do\n"
                 "  local q = ARGV[i]\n"
                 "  local inf = string.format(ARGV[2], ARGV[3], q)\n"
                 "  local qk = string.format(ARGV[1], q)\n"
                 "  local recs\n"
                 "  if paused[i] then\n"
                 "    out[#out + 1] = '~'; out[#out + 1] = tostring(i - 7)\n"
                 "  elseif n >= max then\n"
                 "    recs = nil\n"
                 "  elseif listable(inf) then\n"
                 "    recs = redis.pcall('RPOP', qk, max - n)\n"
                 "    local e = type(recs) == 'table' and recs.err\n"
                 "    if e and e:sub(1, 9) == 'WRONGTYPE' then\n"
                 "      recs.err = 'its key ' .. qk .. ' is a ' ..\n"
                 "        redis.call('TYPE', qk).ok .. ', not a list: remove or rename it'\n"
                 "    end\n"
                 "  else\n"
                 "    recs = {err = 'in-flight list ' .. inf .. ' is not a list'}\n"
                 "  end\n"
                 "  if type(recs) == 'table' and recs.err then\n"
                 "    out[#out + 1] = '!' .. q; out[#out + 1] = recs.err\n"
                 "  elseif recs then\n"
                 "    local pushed, why = 0\n"
                 "    for s = 1, #recs, 1000 do\n"
                 "      local e = math.min(s + 999, #recs)\n"
                 "      local r = redis.pcall('LPUSH', inf, unpack(recs, s, e))\n"
                 "      if type(r) == 'table' then\n"
                 "        why = put_back(qk, recs, s, 'LPUSH ' .. inf .. ': ' .. r.err)\n"
                 "        break\n"
                 "      end\n"
                 "      pushed = e\n"
                 "    end\n"
                 "    if pushed > 0 then\n"
                 "      local m = #out + 2\n"
                 "      out[m - 1] = '=' .. q; out[m] = pushed\n"
                 "      for k = 1, pushed do out[m + k] = recs[k] end\n"
                 "      n = n + pushed\n"
                 "    end\n"
                 "    if why then out[#out + 1] = '!' .. q; out[#out + 1] = why end\n"
                 "  end\n"
                 "end\n"
                 "return out\n";

static void taken_set(struct taken *t, const char *q, const char *rec, size_t len)
{
    t->record = xmalloc(len + 1);
    memcpy(t->record, rec, len);
    t->record[len] = '\0';
    t->len = len;
    str_copy(t->queue, sizeof t->queue, q);
}

int queue_take_append(struct rconn *r, const struct keys *k, const char *wid,
                      const char *const *queues, size_t nq, size_t max, char *err, size_t errlen)
{
    struct cmd c = {0};
    char tq[KEYS_KEY_MAX], ti[KEYS_KEY_MAX], kp[KEYS_KEY_MAX], kc[KEYS_KEY_MAX];
    size_t i;
    int rc;

    cmd_eval(&c, r, SCRIPT_TAKE, k, tq, ti);
    cmd_str(&c, wid);
    cmd_fmt(&c, "%zu", max);
    cmd_str(&c, keys_paused(k, kp, sizeof kp));
    cmd_str(&c, keys_cancel(k, kc, sizeof kc));
    for (i = 0; i < nq; i++) cmd_str(&c, queues[i]);
    rc = cmd_send(r, &c);
    cmd_free(&c);
    if (rc != 0) err_set(err, errlen, "%s", r->errstr);
    return rc;
}

int queue_take_read(struct rconn *r, size_t max, struct taken *out, struct queue_take_notes *notes,
                    char *warn, size_t warnlen, char *err, size_t errlen)
{
    redisReply *rep = rconn_read(r);
    size_t i, n = 0, o = 0;

    if (warn != NULL && warnlen > 0) warn[0] = '\0';
    if (notes != NULL) memset(notes, 0, sizeof *notes);
    if (reply_error(r, rep, "take", err, errlen) != 0) return -1;
    if (rep->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i + 1 < rep->elements; i += 2) {
            redisReply *q = rep->element[i], *rec = rep->element[i + 1];
            if (q->type == REDIS_REPLY_STRING && q->str[0] == '=') {
                /* a queue's records follow it ("=" names no queue: queue names are
                 * checked); without a count, what follows cannot be read */
                size_t k, m;
                if (rec->type != REDIS_REPLY_INTEGER || rec->integer < 0) break;
                m = (size_t)rec->integer;
                if (m > rep->elements - i - 2) m = rep->elements - i - 2;
                for (k = 0; k < m; k++) {
                    redisReply *e = rep->element[i + 2 + k];
                    if (n < max && e->type == REDIS_REPLY_STRING)
                        taken_set(&out[n++], q->str + 1, e->str, e->len);
                }
                i += m;
                continue;
            }
            if (q->type != REDIS_REPLY_STRING || rec->type != REDIS_REPLY_STRING) continue;
            if (q->str[0] == '#' || q->str[0] == '~') {
                long v = strtol(rec->str, NULL, 10);
                if (notes != NULL && q->str[0] == '#') notes->cancel = v;
                if (notes != NULL && q->str[0] == '~' && v >= 0 && v < 64)
                    notes->paused |= 1ULL << v;
                continue;
            }
            if (q->str[0] == '!') {
                /* Every queue skipped is named, one after the other. */
                if (warn != NULL && o < warnlen) {
                    int w = snprintf(warn + o, warnlen - o,
                                     "%squeue '%s': cannot take from "
                                     "it: %s",
                                     o ? "; " : "", q->str + 1, rec->str);
                    if (w > 0) o += (size_t)w;
                }
            }
        }
    }
    freeReplyObject(rep);
    return (int)n;
}

void queue_taken_free(struct taken *t)
{
    if (t == NULL) return;
    free(t->record);
    t->record = NULL;
    t->len = 0;
}

/* ---- outcomes ----------------------------------------------------------------------- */

/* ARGV: wid, job template, inflight template, stats key, worker key, failed key, scheduled
 * key, dead key, result ttl, failure ttl, ended channel template, counts template, cancel
 * key, the minute the batch is counted in (ends per queue and minute); then per outcome its
 * kind and as many arguments as the kind needs (the script's arity table):
 *   Q (the queue of the outcomes that follow, until the next Q)
 *                          queue
 *   S (started)            record, id, started_at, attempts
 *   F (finished)           record, id, result, at, started_at
 *   f (finished)           record, id, result, at, started_at, attempts
 *   X (failed), C (canceled)
 *                          record, id, error, at, started_at, attempts
 *   R (retry), H (handed back)
 *                          record, id, error, at, started_at, attempts, retry_at, the record
 *                          to schedule
 *   D (dead)               record
 * started_at is '' when the start was recorded already. A finish is F for a job's first
 * attempt, never handed back (attempts 1, nothing to clear), f for any other, whose error
 * fields from an earlier attempt or hand-back are cleared; J and j the same for a result that
 * goes to result_json. Every argument costs Redis about 1,000 instructions (parsed, made an
 * object, then a Lua string), hence the queue once a run of outcomes and the common finish's
 * facts in its kind.
 *
 * Every effect of an end is conditional on the LREM that takes the record out of this
 * worker's in-flight list: if another worker recovered it meanwhile (this one was cut off
 * longer than its lease), or this very batch already ran once and only its reply was lost,
 * the LREM finds nothing and the outcome is dropped, so a job can never end up in two
 * places or be counted twice. A start is marked only while the record is still in flight
 * here (LPOS from the tail, where the oldest records are).
 *
 * A job stays queued from its take until its start mark, so cqctl cancel can end it (status
 * canceled, published, its id in the cancel set) while this worker holds its record. Such a
 * job's start mark writes nothing, and its end, whatever it is (finish, failure, retry, the
 * worker's own cancel), is applied as the worker's cancel is (C), without a second PUBLISH,
 * and flagged in the reply (-1 - its index) for the worker's log. A cancel only asked of a
 * started job leaves the end as the worker says. Found by the cancel set's SCARD, which the
 * batch read already (an end drops its id from the set), and, only while the set is not
 * empty, by the SREM that drops an end's id (its reply says whether the id was there: no
 * command more), a SISMEMBER for a start or a retry, and an HGET of the status of an id
 * found there.
 *
 * The shared destinations are checked first (a key of another type there would make a write
 * fail after its record left the in-flight list); a status hash of another type does not stop
 * the batch (pcall).
 *
 * What it costs Redis is what limits a worker (docs/BENCHMARKS.md), so a job's end is one
 * LREM, one HSET and one PEXPIREAT (the batch's expiry times computed once, from TIME), and a
 * PUBLISH only when someone may listen (below): the hash's func, queue and enqueued_at, which
 * the producer wrote, are written (from the record) only when the hash had no status yet (a
 * record pushed by hand); counters go once a batch, ends counted in the minute the batch is
 * sent. A queue's counts hash keeps an hour: the minute's first ends (HINCRBY answers n) also
 * delete its minutes from 122 to 61 before, which with the hash's expiry (61 minutes after its
 * last ends) is every minute older than an hour; without it, a queue with ends every hour
 * grew a field a minute for good. Measured with Redis under callgrind (tests/test_perf_callgrind.sh counts the whole:
 * about 62k instructions a no-op job, take included), the HSET of an end costs 11.6k, its
 * LREM 3k (the worker sends ends in the order it took them, so each record is at the list's
 * tail; in the order they ended, 14.6k), the PEXPIREAT 2.2k, and the Lua interpreter around
 * them most of the rest: a few hundred a statement (a tonumber() and math.floor() a job were
 * 8k). Reply: the 0-based indexes of the dropped outcomes, -1 - the index of each end applied
 * as a cancel instead (above), and a string for each status hash that could not be written. */
static const char apply_lua[] =
    "local wid = ARGV[1]\n"
    "local arity = {Q = 1, S = 4, F = 5, f = 6, J = 5, j = 6, X = 6, C = 6, R = 8, H = 8, D = 1}\n"
    /* a finish's kind: its result's field, and whether it is a first attempt (attempts 1,
     * nothing to clear) */
    "local finish = {F = {'result', true}, f = {'result', false}, J = {'result_json', true},\n"
    "                j = {'result_json', false}}\n"
    "local fin, fail, retr, hand, dead, canc, lost, infs = 0, 0, 0, 0, 0, 0, {}, {}\n"
    "local function kind_ok(key, want)\n"
    "  local t = redis.call('TYPE', key).ok\n"
    "  return t == 'none' or t == want\n"
    "end\n"
    "local need, b, nend = {}, 15, 0\n"
    "local ending = {F = 1, f = 1, J = 1, j = 1, X = 1, C = 1}\n"
    "while b <= #ARGV do\n"
    "  local a = arity[ARGV[b]]\n"
    "  if not a then return redis.error_reply('apply: unknown outcome kind ' .. ARGV[b]) end\n"
    "  if b == 15 and ARGV[b] ~= 'Q' then\n"
    "    return redis.error_reply('apply: the first outcome names no queue')\n"
    "  end\n"
    "  need[ARGV[b]] = true\n"
    "  nend = nend + (ending[ARGV[b]] or 0)\n"
    "  b = b + a + 1\n"
    "end\n"
    "local dests = {{'X', 6, 'zset', 'failed set'}, {'R', 7, 'zset', 'scheduled set'},\n"
    "               {'H', 7, 'zset', 'scheduled set'},\n"
    "               {'D', 8, 'list', 'dead list'}, {'', 4, 'hash', 'stats hash'},\n"
    "               {'', 5, 'hash', 'worker hash'}}\n"
    "for _, d in ipairs(dests) do\n"
    "  if (d[1] == '' or need[d[1]]) and not kind_ok(ARGV[d[2]], d[3]) then\n"
    "    return redis.error_reply(d[4] .. ' ' .. ARGV[d[2]] .. ' has another type: remove '\n"
    "      .. 'or rename it; no outcome applied')\n"
    "  end\n"
    "end\n"
    /* A job's key and channel by concatenation, around the templates' "%s" (a '%' of the
     * prefix is doubled in a template: undone here). */
    "local function around(t)\n"
    "  local pre, post = string.match(t, '^(.*)%%s(.*)$')\n"
    "  return (string.gsub(pre, '%%%%', '%%')), (string.gsub(post, '%%%%', '%%'))\n"
    "end\n"
    "local jpre, jpost = around(ARGV[2])\n"
    "local cpre, cpost = around(ARGV[11])\n"
    "local rttl, fttl = tonumber(ARGV[9]), tonumber(ARGV[10])\n"
    /* A TTL as an absolute time from Redis's clock, once a batch: PEXPIREAT is what Redis
     * turns an EXPIRE into before it runs it (3,000 instructions a job). An ACL without TIME
     * (or PEXPIREAT) leaves the relative EXPIRE. */
    "local now = redis.pcall('TIME')\n"
    "local rexp, fexp\n"
    /* A TTL too long for a time in milliseconds (cworker takes up to LONG_MAX seconds)
     * expires at the latest time Redis can hold, as the module does, not an error. */
    "local function at(ms, t)\n"
    "  local v = ms + t * 1000\n"
    "  if v >= 9.2e18 then return '9223372036854775807' end\n"
    "  return string.format('%.0f', v)\n"
    "end\n"
    "if type(now) == 'table' and not now.err then\n"
    "  local ms = now[1] * 1000 + math.floor(now[2] / 1000)\n"
    "  rexp, fexp = at(ms, rttl), at(ms, fttl)\n"
    "end\n"
    "local function expire(key, t, at)\n"
    "  if at then\n"
    "    local r = redis.pcall('PEXPIREAT', key, at)\n"
    "    if type(r) ~= 'table' or not r.err then return end\n"
    "  end\n"
    /* In whole digits (Redis writes a Lua number such as 1e17 as "1e+17"), at most what
     * EXPIRE takes: 9e15 seconds, beyond any real time. */
    "  redis.call('EXPIRE', key, string.format('%.0f', math.min(t, 9e15)))\n"
    "end\n"
    /* After an HSET of nh values (field-value pairs, status first) that replied r: false when the
     * hash could not be written; a hash that had no status gets the record's func, queue and
     * enqueued_at too. */
    "local function hset_done(jk, nh, r, q, rec)\n"
    "  if type(r) ~= 'number' then\n"
    "    lost[#lost + 1] = 'status hash ' .. jk .. ': ' .. r.err\n"
    "    return false\n"
    "  end\n"
    "  if r * 2 == nh then\n"
    "    local ok, j = pcall(cjson.decode, rec)\n"
    "    local f = {'queue', q}\n"
    "    if ok and type(j) == 'table' then\n"
    "      if type(j.func) == 'string' then f[#f + 1] = 'func'; f[#f + 1] = j.func end\n"
    "      if type(j.enqueued_at) == 'number' then\n"
    "        f[#f + 1] = 'enqueued_at'; f[#f + 1] = string.format('%.6f', j.enqueued_at)\n"
    "      end\n"
    "    end\n"
    "    redis.call('HSET', jk, unpack(f))\n"
    "  end\n"
    "  return true\n"
    "end\n"
    "local function hset(jk, h, q, rec)\n"
    "  return hset_done(jk, #h, redis.pcall('HSET', jk, unpack(h)), q, rec)\n"
    "end\n"
    "local function ttl(key, t, at)\n"
    "  if t > 0 then expire(key, t, at)\n"
    "  elseif t == 0 then redis.call('DEL', key)\n"
    "  else redis.call('PERSIST', key) end\n"
    "end\n"
    /* The start's fields: worker, started_at, attempts. */
    "local function starts(h, st, att)\n"
    "  h[#h + 1] = 'worker'; h[#h + 1] = wid\n"
    "  h[#h + 1] = 'started_at'; h[#h + 1] = st\n"
    "  h[#h + 1] = 'attempts'; h[#h + 1] = att\n"
    "end\n"
    "local ended = {}\n"
    "local asked = redis.call('SCARD', ARGV[13]) > 0\n"
    /* An end is published only on a channel someone listens on (a waiter subscribes before
     * it reads the status, so one that subscribes after this script sees the status
     * instead), against a PUBLISH a job (about 4,400 instructions with its channel's name,
     * nobody listening). Asking costs one INFO stats (about 110,000 instructions, whatever
     * the load), which pays from about 25 ends, so a batch of 32 ends or more asks: no
     * channel at all, nothing is published; up to 64 channels, their names (PUBSUB
     * CHANNELS) say which ends to publish. More channels (a waiter of 100,000 jobs subscribes
     * to each), a pattern subscription, or an ACL without INFO or PUBSUB, and every end is
     * published as before. */
    "local listening\n"
    "if nend >= 32 then\n"
    "  local info = redis.pcall('INFO', 'stats')\n"
    "  if type(info) == 'string' then\n"
    "    local nch = tonumber(string.match(info, 'pubsub_channels:(%d+)'))\n"
    "    local npat = tonumber(string.match(info, 'pubsub_patterns:(%d+)'))\n"
    "    if nch == 0 and npat == 0 then\n"
    "      listening = false\n"
    "    elseif nch and nch <= 64 and npat == 0 then\n"
    "      local glob = function(s) return (string.gsub(s, '[%*%?%[%]\\\\]', '\\\\%0')) end\n"
    "      local heard = redis.pcall('PUBSUB', 'CHANNELS', glob(cpre) .. '*' .. glob(cpost))\n"
    "      if type(heard) == 'table' and not heard.err then\n"
    "        listening = {}\n"
    "        for _, ch in ipairs(heard) do listening[ch] = true end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    /* (An end's id left the cancel set before: below, where a canceled end is found.) */
    "local function ends(q, id, status, told)\n"
    "  if listening ~= false and not told then\n"
    "    local ch = cpre .. id .. cpost\n"
    "    if not listening or listening[ch] then redis.call('PUBLISH', ch, status) end\n"
    "  end\n"
    "  ended[q] = (ended[q] or 0) + 1\n"
    "end\n"
    /* A canceled end: the worker's own (C), or any end of a job cqctl cancel ended while this
     * worker held it, which the cancel published already (told). */
    "local function cancels(q, id, jk, rec, at, st, att, told)\n"
    "  local h = {'status', 'canceled', 'ended_at', at}\n"
    "  if st ~= '' then starts(h, st, att) end\n"
    "  if hset(jk, h, q, rec) then\n"
    "    redis.call('HDEL', jk, 'retry_at', 'error', 'scheduled_for')\n"
    "    ttl(jk, fttl, fexp)\n"
    "  end\n"
    "  canc = canc + 1\n"
    "  ends(q, id, 'canceled', told)\n"
    "end\n"
    "local i, b, nargv, q, inf = 0, 15, #ARGV\n"
    "while b <= nargv do\n"
    "  local kind, rec = ARGV[b], ARGV[b + 1]\n"
    "  local fx = finish[kind]\n"
    "  if kind == 'Q' then\n"
    "    q = rec\n"
    "    inf = infs[q]\n"
    "    if not inf then inf = string.format(ARGV[3], wid, q); infs[q] = inf end\n"
    "    i = i - 1\n"
    "  elseif kind == 'S' then\n"
    "    local jk = jpre .. ARGV[b + 2] .. jpost\n"
    "    if redis.call('LPOS', inf, rec, 'RANK', '-1') and\n"
    "       not (asked and redis.pcall('SISMEMBER', ARGV[13], ARGV[b + 2]) == 1 and\n"
    "            redis.pcall('HGET', jk, 'status') == 'canceled') then\n"
    "      local h = {'status', 'started', 'worker', wid, 'started_at', ARGV[b + 3],\n"
    "                 'attempts', ARGV[b + 4]}\n"
    "      if hset(jk, h, q, rec) then redis.call('PERSIST', jk) end\n"
    "    end\n"
    "  elseif redis.call('LREM', inf, '-1', rec) == 0 then\n"
    "    lost[#lost + 1] = i\n"
    "  elseif kind == 'D' then\n"
    "    redis.call('LPUSH', ARGV[8], rec)\n"
    "    dead = dead + 1\n"
    "  else\n"
    "    local id, text, at, st = ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]\n"
    "    local jk = jpre .. id .. jpost\n"
    /* Whether cqctl cancel ended this job while this worker held it (taken, its status still
     * queued): its id in the cancel set (asked only where the set is not empty) and its
     * status canceled. An end's id leaves the set here, and SREM's reply says whether it was
     * there, so that an end costs no command more; a retry's stays, for the take that meets
     * it again (SISMEMBER), as a start's does, for the worker's look at its running jobs.
     * Inline: a Lua function call here cost 490 instructions an end. A refusal of the SREM
     * or SISMEMBER (an ACL without them) is read as no cancel, as CQ.APPLY1 reads it: the end
     * is written, where redis.call stopped the script with the record out of flight. */
    "    if asked and redis.pcall(ending[kind] and 'SREM' or 'SISMEMBER', ARGV[13], id) == 1 and\n"
    "       redis.pcall('HGET', jk, 'status') == 'canceled' then\n"
    "      if kind ~= 'C' then lost[#lost + 1] = -1 - i end\n"
    "      if not ending[kind] then redis.call('SREM', ARGV[13], id) end\n" /* a retry's */
    "      cancels(q, id, jk, rec, at, st, (kind == 'F' or kind == 'J') and '1' or ARGV[b + 6],\n"
    "              true)\n"
    "    elseif fx then\n"
    "      local rf, first, r, n = fx[1], fx[2]\n"
    "      if st ~= '' then\n"
    "        r = redis.pcall('HSET', jk, 'status', 'finished', 'ended_at', at, rf, text, 'worker',\n"
    "                        wid, 'started_at', st, 'attempts', first and '1' or ARGV[b + 6])\n"
    "        n = 6\n"
    "      else\n"
    "        r = redis.pcall('HSET', jk, 'status', 'finished', 'ended_at', at, rf, text)\n"
    "        n = 3\n"
    "      end\n"
    "      if (type(r) == 'number' and r < n) or hset_done(jk, n * 2, r, q, rec) then\n"
    "        if not first then redis.call('HDEL', jk, 'error', 'retry_at') end\n"
    "        if rttl > 0 then expire(jk, rttl, rexp) else ttl(jk, rttl) end\n"
    "      end\n"
    "      fin = fin + 1\n"
    "      ends(q, id, 'finished')\n"
    "    elseif kind == 'X' then\n"
    "      local h = {'status', 'failed', 'ended_at', at, 'error', text, 'record', rec}\n"
    "      if st ~= '' then\n"
    "        starts(h, st, ARGV[b + 6])\n"
    "      else\n"
    "        h[#h + 1] = 'worker'; h[#h + 1] = wid\n"
    "        h[#h + 1] = 'attempts'; h[#h + 1] = ARGV[b + 6]\n"
    "      end\n"
    "      if hset(jk, h, q, rec) then\n"
    "        redis.call('HDEL', jk, 'retry_at')\n"
    "        ttl(jk, fttl, fexp)\n"
    "      end\n"
    "      if fttl ~= 0 then redis.call('ZADD', ARGV[6], at, id) end\n"
    "      fail = fail + 1\n"
    "      ends(q, id, 'failed')\n"
    "    elseif kind == 'C' then\n"
    "      cancels(q, id, jk, rec, at, st, ARGV[b + 6])\n"
    "    else\n"
    "      redis.call('ZADD', ARGV[7], ARGV[b + 7], ARGV[b + 8])\n"
    "      local h = {'status', 'retrying', 'error', text, 'retry_at', ARGV[b + 7]}\n"
    "      if st ~= '' then starts(h, st, ARGV[b + 6]) end\n"
    "      hset(jk, h, q, rec)\n"
    "      if kind == 'R' then retr = retr + 1 else hand = hand + 1 end\n"
    "    end\n"
    "  end\n"
    "  i = i + 1\n"
    "  b = b + arity[kind] + 1\n"
    "end\n"
    "if fin > 0 then\n"
    "  redis.call('HINCRBY', ARGV[4], 'processed', fin)\n"
    "  redis.call('HINCRBY', ARGV[5], 'processed', fin)\n"
    "end\n"
    "if fail > 0 then\n"
    "  redis.call('HINCRBY', ARGV[4], 'failed', fail)\n"
    "  redis.call('HINCRBY', ARGV[5], 'failed', fail)\n"
    "end\n"
    "if retr > 0 then redis.call('HINCRBY', ARGV[4], 'retried', retr) end\n"
    "if hand > 0 then redis.call('HINCRBY', ARGV[4], 'handed_back', hand) end\n"
    "if dead > 0 then redis.call('HINCRBY', ARGV[4], 'dead', dead) end\n"
    "if canc > 0 then redis.call('HINCRBY', ARGV[4], 'canceled', canc) end\n"
    "for q, n in pairs(ended) do\n"
    "  local ck = string.format(ARGV[12], q)\n"
    "  if redis.call('HINCRBY', ck, ARGV[14], n) == n then\n"
    "    local m, old = tonumber(ARGV[14]), {}\n"
    "    for k = m - 122, m - 61 do old[#old + 1] = tostring(k) end\n"
    "    redis.call('HDEL', ck, unpack(old))\n"
    "  end\n"
    "  redis.call('EXPIRE', ck, '3660')\n"
    "end\n"
    "return lost\n";

/* One outcome's arguments (as apply_lua's comment lists them). */
static void apply_args(struct cmd *c, const struct queue_outcome *x)
{
    static const char kinds[] = {
        [QUEUE_STARTED] = 'S', [QUEUE_FINISHED] = 'F', [QUEUE_FAILED] = 'X',
        [QUEUE_RETRY] = 'R',   [QUEUE_DEAD] = 'D',     [QUEUE_CANCELED] = 'C',
    };
    const struct job *j = x->job;
    char kind = x->kind == QUEUE_RETRY && x->handback ? 'H' : kinds[x->kind];

    if (x->kind == QUEUE_FINISHED) {
        /* A first attempt never handed back (F, J) has nothing to clear and its attempts go
         * without saying; any other (f, j) may have error fields from before to clear. */
        int first = j != NULL && j->attempts == 1 && j->handoffs == 0;
        kind = x->json ? (first ? 'J' : 'j') : (first ? 'F' : 'f');
    }
    cmd_copy(c, &kind, 1);
    cmd_add(c, x->taken->record, x->taken->len);
    if (x->kind == QUEUE_DEAD) return;
    cmd_str(c, j ? j->id : "");
    if (x->kind == QUEUE_STARTED) {
        cmd_time(c, x->started_at);
        cmd_fmt(c, "%d", j ? j->attempts : 0);
        return;
    }
    cmd_str(c, x->text ? x->text : "");
    cmd_time(c, x->at);
    if (x->with_start)
        cmd_time(c, x->started_at);
    else
        cmd_str(c, "");
    if (kind == 'F' || kind == 'J') return;
    cmd_fmt(c, "%d", j ? j->attempts : 0);
    if (x->kind == QUEUE_RETRY) {
        cmd_time(c, x->retry_at);
        if (x->give_back) {
            struct job back = *j; /* the record only: the status keeps the attempt made */
            back.attempts--;
            back.handoffs++;
            cmd_own(c, job_encode(&back));
        } else {
            cmd_own(c, job_encode(j)); /* carries the attempts */
        }
    }
}

int queue_apply_append(struct rconn *r, const struct keys *k, const char *wid,
                       const struct queue_outcome *o, size_t n, const struct queue_ttls *ttls,
                       int *nreplies, char *err, size_t errlen)
{
    struct cmd c = {0};
    char tj[KEYS_KEY_MAX], ti[KEYS_KEY_MAX], ks[KEYS_KEY_MAX], kw[KEYS_KEY_MAX];
    char kf[KEYS_KEY_MAX], ksch[KEYS_KEY_MAX], kd[KEYS_KEY_MAX];
    char te[KEYS_KEY_MAX], tc[KEYS_KEY_MAX], kc[KEYS_KEY_MAX];
    size_t i;
    int rc;

    *nreplies = 0;
    if (n == 0) return 0;
    cmd_script(&c, r, SCRIPT_APPLY);
    cmd_str(&c, wid);
    cmd_str(&c, keys_template(k, KEYS_JOB, tj, sizeof tj));
    cmd_str(&c, keys_template(k, KEYS_INFLIGHT, ti, sizeof ti));
    cmd_str(&c, keys_stats(k, ks, sizeof ks));
    cmd_str(&c, keys_worker(k, wid, kw, sizeof kw));
    cmd_str(&c, keys_failed(k, kf, sizeof kf));
    cmd_str(&c, keys_scheduled(k, ksch, sizeof ksch));
    cmd_str(&c, keys_dead(k, kd, sizeof kd));
    cmd_fmt(&c, "%ld", ttls->result_ttl);
    cmd_fmt(&c, "%ld", ttls->failure_ttl);
    cmd_str(&c, keys_template(k, KEYS_ENDED, te, sizeof te));
    cmd_str(&c, keys_template(k, KEYS_COUNTS, tc, sizeof tc));
    cmd_str(&c, keys_cancel(k, kc, sizeof kc));
    cmd_fmt(&c, "%lld", (long long)(time_now() / 60));
    for (i = 0; i < n; i++) {
        if (i == 0 || strcmp(o[i].taken->queue, o[i - 1].taken->queue) != 0) {
            cmd_str(&c, "Q");
            cmd_str(&c, o[i].taken->queue);
        }
        apply_args(&c, &o[i]);
    }
    rc = cmd_send(r, &c);
    cmd_free(&c);
    if (rc == 0 && r->url.wait_replicas > 0)
        rc = rconn_appendf(r, "WAIT %d %d", r->url.wait_replicas, QUEUE_WAIT_MS);
    if (rc != 0) {
        err_set(err, errlen, "%s", r->errstr);
        return -1;
    }
    *nreplies = r->url.wait_replicas > 0 ? 2 : 1;
    return 0;
}

int queue_apply_read(struct rconn *r, int nreplies, unsigned char *lost, size_t n, char *warn,
                     size_t warnlen, char *err, size_t errlen)
{
    redisReply *rep;
    size_t i;

    if (warn != NULL && warnlen > 0) warn[0] = '\0';
    if (nreplies == 0) return 0;
    rep = rconn_read(r);
    if (reply_error(r, rep, "apply", err, errlen) != 0) {
        if (nreplies == 2 && r->ctx != NULL) freeReplyObject(rconn_read(r));
        return -1;
    }
    for (i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        if (e->type == REDIS_REPLY_INTEGER && lost != NULL && e->integer >= 0 &&
            (size_t)e->integer < n)
            lost[e->integer] = QUEUE_LOST;
        else if (e->type == REDIS_REPLY_INTEGER && lost != NULL && e->integer < 0 &&
                 (unsigned long long)(-1 - e->integer) < n)
            lost[-1 - e->integer] = QUEUE_LOST_CANCELED;
        else if (e->type == REDIS_REPLY_STRING && warn != NULL && warn[0] == '\0')
            err_set(warn, warnlen, "apply: %s (its record moved all the same)", e->str);
    }
    freeReplyObject(rep);
    /* With ?replicas=N, outcomes no replica confirmed in time are said in warn: applying them
     * again would not make a replica have them sooner. */
    if (nreplies == 2) {
        char why[256];
        rep = rconn_read(r);
        if (rep == NULL) {
            /* The batch is applied (its reply is read): only the replicas' answer went with
             * the connection. Failing it would send its outcomes again, to be found gone
             * from the in-flight list and dropped, uncounted by the worker. */
            if (warn != NULL && warn[0] == '\0')
                err_set(warn, warnlen,
                        "apply: the connection was lost before %d replica%s confirmed the "
                        "write: a failover now could lose it",
                        r->url.wait_replicas, r->url.wait_replicas == 1 ? "" : "s");
            return 0;
        }
        if (check_wait(r, rep, "apply", why, sizeof why) != 0 && warn != NULL && warn[0] == '\0')
            str_copy(warn, warnlen, why);
    }
    return 0;
}

/* ---- scheduling --------------------------------------------------------------------- */

/* ARGV: scheduled key, queue template, job template, queues key, now, limit. A record with
 * no usable queue goes to "default"; one with a usable id has its status set to queued.
 * Reply: {moved, queue names that could not be written to...}. Records for such a queue stay
 * scheduled (and, were there over `limit` of them, would hold back the rest until the key is
 * mended). */
static const char due_lua[] =
    LUA_LISTABLE "local due = redis.call('ZRANGEBYSCORE', ARGV[1], '-inf', ARGV[5], 'LIMIT', 0, "
                 "tonumber(ARGV[6]))\n"
                 "local moved, bad, seen = 0, {}, {}\n"
                 "for _, rec in ipairs(due) do\n"
                 "  local ok, j = pcall(cjson.decode, rec)\n"
                 "  if not ok or type(j) ~= 'table' then j = {} end\n"
                 "  local q = j.queue\n"
                 "  if type(q) ~= 'string' or not q:match('^[%w_.@-]+$') then q = 'default' end\n"
                 "  local dst = string.format(ARGV[2], q)\n"
                 "  if listable(dst) then\n"
                 "    redis.call('ZREM', ARGV[1], rec)\n"
                 "    redis.call('LPUSH', dst, rec)\n"
                 "    redis.call('SADD', ARGV[4], q)\n"
                 "    if type(j.id) == 'string' and j.id:match('^[%w_.@-]+$') then\n"
                 "      redis.pcall('HSET', string.format(ARGV[3], j.id), 'status', 'queued')\n"
                 "    end\n"
                 "    moved = moved + 1\n"
                 "  elseif not seen[q] then\n"
                 "    seen[q] = true\n"
                 "    bad[#bad + 1] = q\n"
                 "  end\n"
                 "end\n"
                 "return {moved, unpack(bad)}\n";

/* Read a script's {count, bad queue...} reply; the bad queues go into err (else err is
 * emptied). Returns the count, or -1. */
static long script_result(struct rconn *r, redisReply *rep, const char *what, char *warn,
                          size_t warnlen, char *err, size_t errlen)
{
    long n = 0;
    size_t i, o = 0;

    if (warn != NULL && warnlen > 0) warn[0] = '\0';
    if (reply_error(r, rep, what, err, errlen) != 0) return -1;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
        rep->element[0]->type == REDIS_REPLY_INTEGER)
        n = (long)rep->element[0]->integer;
    for (i = 1; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        int w;
        if (rep->element[i]->type != REDIS_REPLY_STRING || warn == NULL) continue;
        w = snprintf(warn + o, warnlen - o, "%s'%s'", i == 1 ? "" : ", ", rep->element[i]->str);
        if (w < 0 || (size_t)w >= warnlen - o) break;
        o += (size_t)w;
    }
    if (o > 0) {
        char names[256];
        str_copy(names, sizeof names, warn);
        err_set(warn, warnlen,
                "%s: queue %s is not a list: records for it stay where they are "
                "until the key is removed",
                what, names);
    }
    freeReplyObject(rep);
    return n;
}

long queue_schedule_due(struct rconn *r, const struct keys *k, double now, long limit, char *warn,
                        size_t warnlen, char *err, size_t errlen)
{
    char ks[KEYS_KEY_MAX], tq[KEYS_KEY_MAX], tj[KEYS_KEY_MAX], kqs[KEYS_KEY_MAX];
    struct cmd c = {0};
    redisReply *rep;

    cmd_script(&c, r, SCRIPT_DUE);
    cmd_str(&c, keys_scheduled(k, ks, sizeof ks));
    cmd_str(&c, keys_template(k, KEYS_QUEUE, tq, sizeof tq));
    cmd_str(&c, keys_template(k, KEYS_JOB, tj, sizeof tj));
    cmd_str(&c, keys_queues(k, kqs, sizeof kqs));
    cmd_fmt(&c, "%.6f", now);
    cmd_fmt(&c, "%ld", limit);
    rep = rconn_command(r, c.argc, c.argv, c.lens);
    cmd_free(&c);
    return script_result(r, rep, "schedule", warn, warnlen, err, errlen);
}

/* ---- reconciling ------------------------------------------------------------------- */

/* ARGV: queue template, inflight template, job template, wid, number of queues, the queue
 * names, then each record the worker holds after its queue's name. Every other record in the
 * worker's in-flight lists goes back to the head of its queue; counting the held records of
 * each queue as a multiset keeps one copy per held record when two records are byte for byte
 * the same, in that queue's list and not another's. A job moved back is queued again unless it
 * is canceled (as recover_lua). */
static const char reconcile_lua[] =
    LUA_LISTABLE "local nq = tonumber(ARGV[5])\n"
                 "local held, moved = {}, 0\n"
                 "for i = 6 + nq, #ARGV - 1, 2 do\n"
                 "  local h = held[ARGV[i]] or {}\n"
                 "  held[ARGV[i]] = h\n"
                 "  h[ARGV[i + 1]] = (h[ARGV[i + 1]] or 0) + 1\n"
                 "end\n"
                 "for i = 6, 5 + nq do\n"
                 "  local q = ARGV[i]\n"
                 "  local inf = string.format(ARGV[2], ARGV[4], q)\n"
                 "  local dst = string.format(ARGV[1], q)\n"
                 "  local h = held[q] or {}\n"
                 "  if listable(dst) and listable(inf) then\n"
                 "    for _, rec in ipairs(redis.call('LRANGE', inf, 0, -1)) do\n"
                 "      if (h[rec] or 0) > 0 then\n"
                 "        h[rec] = h[rec] - 1\n"
                 "      else\n"
                 "        redis.call('LREM', inf, '-1', rec)\n"
                 "        redis.call('RPUSH', dst, rec)\n"
                 "        moved = moved + 1\n"
                 "        local ok, j = pcall(cjson.decode, rec)\n"
                 "        if ok and type(j) == 'table' and type(j.id) == 'string' and "
                 "j.id:match('^[%w_.@-]+$') then\n"
                 "          local jk = string.format(ARGV[3], j.id)\n"
                 "          if redis.pcall('HGET', jk, 'status') ~= 'canceled' then\n"
                 "            redis.pcall('HSET', jk, 'status', 'queued')\n"
                 "            redis.pcall('HDEL', jk, 'started_at', 'worker')\n"
                 "          end\n"
                 "        end\n"
                 "      end\n"
                 "    end\n"
                 "  end\n"
                 "end\n"
                 "return moved\n";

long queue_reconcile(struct rconn *r, const struct keys *k, const char *wid,
                     const char *const *queues, size_t nq, const struct taken *const *held,
                     size_t nheld, char *err, size_t errlen)
{
    struct cmd c = {0};
    char tq[KEYS_KEY_MAX], ti[KEYS_KEY_MAX], tj[KEYS_KEY_MAX];
    redisReply *rep;
    size_t i;
    long n;

    cmd_eval(&c, r, SCRIPT_RECONCILE, k, tq, ti);
    cmd_str(&c, keys_template(k, KEYS_JOB, tj, sizeof tj));
    cmd_str(&c, wid);
    cmd_fmt(&c, "%zu", nq);
    for (i = 0; i < nq; i++) cmd_str(&c, queues[i]);
    for (i = 0; i < nheld; i++) {
        cmd_str(&c, held[i]->queue);
        cmd_add(&c, held[i]->record, held[i]->len);
    }
    rep = rconn_command(r, c.argc, c.argv, c.lens);
    cmd_free(&c);
    if (reply_error(r, rep, "reconcile", err, errlen) != 0) return -1;
    n = rep->type == REDIS_REPLY_INTEGER ? (long)rep->integer : 0;
    freeReplyObject(rep);
    return n;
}

/* ---- worker registry and recovery --------------------------------------------------- */

int queue_register(struct rconn *r, const struct keys *k, const struct queue_worker_info *w,
                   long lease_s, int *added, char *err, size_t errlen)
{
    char kws[KEYS_KEY_MAX], kw[KEYS_KEY_MAX], kl[KEYS_KEY_MAX];
    redisReply *exec;
    int sent = 0, rc;

    keys_workers(k, kws, sizeof kws);
    keys_worker(k, w->wid, kw, sizeof kw);
    keys_worker_lease(k, w->wid, kl, sizeof kl);
    if (rconn_appendf(r, "MULTI") != 0) goto io;
    sent++;
    if (rconn_appendf(r, "SADD %s %s", kws, w->wid) != 0) goto io;
    sent++;
    if (rconn_appendf(r,
                      "HSET %s host %s pid %ld queues %s concurrency %d busy %d "
                      "started_at %.6f heartbeat_at %.6f functions %s clients %s",
                      kw, w->host, w->pid, w->queues, w->concurrency, w->busy, w->started_at,
                      time_now(), w->functions ? w->functions : "",
                      w->clients ? w->clients : "") != 0)
        goto io;
    sent++;
    if (rconn_appendf(r, "SET %s 1 EX %ld", kl, lease_s) != 0) goto io;
    sent++;
    if (rconn_appendf(r, "EXEC") != 0) goto io;
    sent++;
    rc = read_multi_exec(r, sent, &exec, err, errlen);
    if (rc == 0 && added != NULL)
        *added = exec->elements > 0 && exec->element[0]->type == REDIS_REPLY_INTEGER &&
            exec->element[0]->integer == 1;
    if (exec != NULL) freeReplyObject(exec);
    return rc;
io:
    err_set(err, errlen, "%s", r->errstr);
    return -1;
}

/* ARGV: workers key, worker template, lease template, inflight template, queue template,
 * job template, stats key, only_wid ('' = every worker whose lease is gone).
 * In-flight lists are LPUSHed, so their oldest record is at the right: moving from the left
 * of the in-flight list to the right of the queue puts the oldest back at the very head.
 * Each job moved is queued again, unless a cancel ended it while the dead worker held it: a
 * canceled status stays (its id waits in the cancel set, and the worker that takes the record
 * drops it), where queued over it undid what cqctl had said and published.
 * A dead worker's record (not one a worker puts back itself, only_wid) goes back counted: its
 * "recovered" member one higher, or ",\"recovered\":1" before its closing brace, so that the
 * worker that takes it learns how often it came back with no extra command, and fails it past
 * its max-recoveries (worker.c: refuse_recovered). Written into the string as it is, not
 * through cjson.encode, which would reorder the members and round numbers (enqueued_at): the
 * last member so named whose value reads as the one decoded (cq's records have it after
 * args, so an object among the args cannot take its place). A record that decodes with no
 * valid id, or a "recovered" no worker reads (which fails it as malformed), moves as it is. */
static const char recover_lua[] = LUA_LISTABLE
    "local total, bad = 0, {}\n"
    "local function counted(rec, j)\n"
    "  local r, want = j.recovered, nil\n"
    "  if r == nil then\n"
    "    local p = rec:match('^.*()}')\n"
    "    if not p then return nil end\n"
    "    return rec:sub(1, p - 1) .. ',\"recovered\":1' .. rec:sub(p)\n"
    "  end\n"
    "  if r == cjson.null then want, r = 'null', 0\n"
    "  elseif type(r) ~= 'number' or r < 0 or r >= 1000000 or r ~= math.floor(r) then\n"
    "    return nil\n"
    "  end\n"
    "  local at, stop, i = nil, nil, 1\n"
    "  while true do\n"
    "    local s, e, v = rec:find('\"recovered\"%s*:%s*([%w%.%+%-]+)', i)\n"
    "    if not s then break end\n"
    "    if v == want or (not want and tonumber(v) == r) then at, stop = e - #v + 1, e end\n"
    "    i = e + 1\n"
    "  end\n"
    "  if not at then return nil end\n"
    "  return rec:sub(1, at - 1) .. string.format('%d', r + 1) .. rec:sub(stop + 1)\n"
    "end\n"
    "local function recover(wid, count)\n"
    "  local wkey = string.format(ARGV[2], wid)\n"
    "  local qs = redis.call('HGET', wkey, 'queues') or ''\n"
    "  local whole = true\n"
    "  for q in string.gmatch(qs, '[^,]+') do\n"
    "    local inf = string.format(ARGV[4], wid, q)\n"
    "    local dst = string.format(ARGV[5], q)\n"
    "    if redis.call('EXISTS', inf) == 1 and not listable(dst) then\n"
    "      whole = false; bad[#bad + 1] = q; inf = nil\n"
    "    end\n"
    "    while inf do\n"
    "      local rec = redis.call('LMOVE', inf, dst, 'LEFT', 'RIGHT')\n"
    "      if not rec then break end\n"
    "      total = total + 1\n"
    "      local ok, j = pcall(cjson.decode, rec)\n"
    "      if ok and type(j) == 'table' and type(j.id) == 'string' and "
    "j.id:match('^[%w_.@-]+$') then\n"
    "        local jk = string.format(ARGV[6], j.id)\n"
    "        if redis.pcall('HGET', jk, 'status') ~= 'canceled' then\n"
    "          redis.pcall('HSET', jk, 'status', 'queued')\n"
    "          redis.pcall('HDEL', jk, 'started_at', 'worker')\n"
    "        end\n"
    "        if count then\n"
    "          redis.call('HINCRBY', jk, 'recovered', 1)\n"
    "          local c = counted(rec, j)\n"
    "          if c then\n"
    "            redis.call('RPOP', dst)\n"
    "            redis.call('RPUSH', dst, c)\n"
    "          end\n"
    "        end\n"
    "      end\n"
    "      if count then redis.call('HINCRBY', ARGV[7], 'recovered', 1) end\n"
    "    end\n"
    "  end\n"
    "  if whole then\n"
    "    redis.call('DEL', wkey, string.format(ARGV[3], wid))\n"
    "    redis.call('SREM', ARGV[1], wid)\n"
    "  end\n"
    "end\n"
    "if ARGV[8] ~= '' then\n"
    "  recover(ARGV[8], false)\n"
    "else\n"
    "  for _, wid in ipairs(redis.call('SMEMBERS', ARGV[1])) do\n"
    "    if redis.call('EXISTS', string.format(ARGV[3], wid)) == 0 then recover(wid, true) end\n"
    "  end\n"
    "end\n"
    "return {total, unpack(bad)}\n";

long queue_recover(struct rconn *r, const struct keys *k, const char *only_wid, char *warn,
                   size_t warnlen, char *err, size_t errlen)
{
    struct cmd c = {0};
    char kws[KEYS_KEY_MAX], tw[KEYS_KEY_MAX], tl[KEYS_KEY_MAX], ti[KEYS_KEY_MAX];
    char tq[KEYS_KEY_MAX], tj[KEYS_KEY_MAX], ks[KEYS_KEY_MAX];
    redisReply *rep;

    cmd_script(&c, r, SCRIPT_RECOVER);
    cmd_str(&c, keys_workers(k, kws, sizeof kws));
    cmd_str(&c, keys_template(k, KEYS_WORKER, tw, sizeof tw));
    cmd_str(&c, keys_template(k, KEYS_WORKER_LEASE, tl, sizeof tl));
    cmd_str(&c, keys_template(k, KEYS_INFLIGHT, ti, sizeof ti));
    cmd_str(&c, keys_template(k, KEYS_QUEUE, tq, sizeof tq));
    cmd_str(&c, keys_template(k, KEYS_JOB, tj, sizeof tj));
    cmd_str(&c, keys_stats(k, ks, sizeof ks));
    cmd_str(&c, only_wid ? only_wid : "");
    rep = rconn_command(r, c.argc, c.argv, c.lens);
    cmd_free(&c);
    return script_result(r, rep, "recover", warn, warnlen, err, errlen);
}

static struct rconn_script script[SCRIPT_N] = {
    [SCRIPT_TAKE] = RCONN_SCRIPT(take_lua),       [SCRIPT_APPLY] = RCONN_SCRIPT(apply_lua),
    [SCRIPT_DUE] = RCONN_SCRIPT(due_lua),         [SCRIPT_RECONCILE] = RCONN_SCRIPT(reconcile_lua),
    [SCRIPT_RECOVER] = RCONN_SCRIPT(recover_lua),
};
