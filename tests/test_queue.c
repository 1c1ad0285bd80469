/* test_queue.c - every move of common/queue.c against a real Redis: enqueue, take, apply,
 * schedule_due, recover, reconcile and register, on the normal path and on the error
 * branches (keys of the wrong type, outcomes for records no longer in flight).
 *
 * The program starts its own redis-server (no TCP: a Unix socket in a mkdtemp directory)
 * and stops it on every way out: at exit, and from SIGTERM/SIGINT/SIGHUP through a handler
 * that uses only async-signal-safe calls; the server also gets SIGKILL from the kernel if
 * this process dies without either (PR_SET_PDEATHSIG, e.g. a sanitizer abort). Each case
 * starts from FLUSHALL and checks what a user would: keys in Redis read back with
 * redis commands (names as docs/PROTOCOL.md spells them), return values and error text. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "admin.h"
#include "check.h"
#include "redis_server.h"

static struct keys K;
static char warn[1024]; /* what a call reports without failing */
#include "job.h"
#include "keys.h"
#include "queue.h"
#include "rconn.h"
#include "util.h"

/* ---- reading Redis back -------------------------------------------------------------- */

#define NO_INT LLONG_MIN

/* The integer of a reply (freed here), or NO_INT for a reply of another kind. */
static long long integer(redisReply *rep)
{
    long long v = NO_INT;

    if (rep != NULL && rep->type == REDIS_REPLY_INTEGER) v = rep->integer;
    if (rep != NULL) freeReplyObject(rep);
    return v;
}

/* The string of a reply (freed here) in one of a few rotating buffers, or NULL for nil or an
 * error. Good for a few strings per check. */
static const char *string(redisReply *rep)
{
    static char bufs[8][16384];
    static int next;
    char *b = NULL;

    if (rep != NULL && (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS)) {
        b = bufs[next++ % 8];
        str_copy(b, sizeof bufs[0], rep->str);
    }
    if (rep != NULL) freeReplyObject(rep);
    return b;
}

/* Redis's total_reads_processed: about one a round trip of its clients. */
static long long reads_processed(void)
{
    const char *info = string(rconn_commandf(&R, "INFO stats")), *p;

    p = info != NULL ? strstr(info, "total_reads_processed:") : NULL;
    return p != NULL ? atoll(p + strlen("total_reads_processed:")) : -1;
}

/* The first element of an array reply, as string() does it. */
static const char *first(redisReply *rep)
{
    redisReply *e;
    const char *s;

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
        if (rep != NULL) freeReplyObject(rep);
        return NULL;
    }
    /* Detach the element so that string() frees it and the array separately. */
    e = rep->element[0];
    rep->element[0] = NULL;
    s = string(e);
    freeReplyObject(rep);
    return s;
}

/* A number read back from Redis (a hash field or a score), NAN when missing. */
static double number(redisReply *rep)
{
    const char *s = string(rep);
    return s != NULL ? strtod(s, NULL) : NAN;
}

#define HGET(key, field) string(rconn_commandf(&R, "HGET %s %s", (key), (field)))
#define LLEN(key)        integer(rconn_commandf(&R, "LLEN %s", (key)))
#define EXISTS(key)      integer(rconn_commandf(&R, "EXISTS %s", (key)))
#define TTL(key)         integer(rconn_commandf(&R, "TTL %s", (key)))
#define LINDEX(key, i)   string(rconn_commandf(&R, "LINDEX %s %d", (key), (i)))

/* ---- making jobs and moving them, as producers and workers do ------------------------ */

/* A fixed time with an exact binary fraction, so that times written with six decimals read
 * back equal to the double that was sent. */
#define T0 1767225600.25

/* Now, in whole seconds (so that now + 0.5 and the like are exact too). */
static double whole_now(void)
{
    return (double)(long long)time_now();
}

static struct job *mkjob(const char *id, const char *queue)
{
    struct job *j = job_new("noop", cJSON_Parse("[\"a\",1]"));

    str_copy(j->id, sizeof j->id, id);
    if (queue != NULL) str_copy(j->queue, sizeof j->queue, queue);
    j->enqueued_at = T0;
    return j;
}

/* Enqueue one job now (at 0). Returns queue_enqueue's result. */
static int put(const char *id, const char *queue)
{
    struct job *j = mkjob(id, queue);
    char err[256];
    int rc = queue_enqueue(&R, &K, &j, 1, 0, err, sizeof err);

    if (rc != 0) fprintf(stderr, "put %s: %s\n", id, err);
    job_free(j);
    return rc;
}

/* queue_take_append then queue_take_read, as one worker cycle with nothing to apply. */
static int take(const char *wid, const char *const *queues, size_t nq, size_t max,
                struct taken *out, char *err, size_t errlen)
{
    if (queue_take_append(&R, &K, wid, queues, nq, max, err, errlen) != 0) return -1;
    return queue_take_read(&R, max, out, NULL, warn, sizeof warn, err, errlen);
}

static int apply(const char *wid, const struct queue_outcome *o, size_t n,
                 const struct queue_ttls *ttls, unsigned char *lost, char *err, size_t errlen)
{
    int nrep = 0;

    if (queue_apply_append(&R, &K, wid, o, n, ttls, &nrep, err, errlen) != 0) return -1;
    return queue_apply_read(&R, nrep, lost, n, warn, sizeof warn, err, errlen);
}

static struct job *decoded(const struct taken *t)
{
    struct job *j = NULL;
    char err[256];

    if (job_decode(t->record, t->len, &j, err, sizeof err) != 0) {
        job_free(j);
        return NULL;
    }
    return j;
}

static struct queue_outcome outcome(enum queue_outcome_kind kind, const struct taken *t,
                                    const struct job *j, const char *text, double at)
{
    struct queue_outcome o;

    memset(&o, 0, sizeof o);
    o.kind = kind;
    o.taken = t;
    o.job = j;
    o.text = text;
    o.at = at;
    o.started_at = kind == QUEUE_STARTED ? at : 0;
    return o;
}

static void free_taken(struct taken *t, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) queue_taken_free(&t[i]);
}

static const struct queue_ttls default_ttls = {500, 365L * 24 * 3600};

/* ---- enqueue ------------------------------------------------------------------------- */

static void test_enqueue_one(void)
{
    struct job *j = mkjob("e1", NULL), *anon = mkjob("", "default");
    struct job *both[2] = {j, anon};
    char err[256] = "", *enc;

    CHECK_EQ(queue_enqueue(&R, &K, both, 2, 0, err, sizeof err), 0);
    CHECK_STREQ(err, "");
    CHECK_EQ(j->enqueued, 1);
    CHECK_EQ(anon->enqueued, 1);
    CHECK_STREQ(j->queue, "default"); /* an empty queue is "default" */
    CHECK_EQ(strlen(anon->id), 36);   /* an empty id gets a UUID */

    /* The record is the job's encoding, the oldest at the right end. */
    CHECK_EQ(LLEN("cq:queue:default"), 2);
    enc = job_encode(j);
    CHECK_STREQ(LINDEX("cq:queue:default", -1), enc);
    free(enc);
    CHECK_EQ(integer(rconn_commandf(&R, "SISMEMBER cq:queues default")), 1);

    /* Status hash: status, queue, func and enqueued_at (the record holds the last two too). */
    CHECK_STREQ(HGET("cq:job:e1", "status"), "queued");
    CHECK_STREQ(HGET("cq:job:e1", "queue"), "default");
    CHECK_STREQ(HGET("cq:job:e1", "func"), "noop");
    CHECK_STREQ(HGET("cq:job:e1", "enqueued_at"), "1767225600.250000");
    CHECK_EQ(integer(rconn_commandf(&R, "HLEN cq:job:e1")), 4);
    CHECK_HAS(LINDEX("cq:queue:default", -1), "\"func\":\"noop\"");
    CHECK_HAS(LINDEX("cq:queue:default", -1), "\"enqueued_at\":1767225600.250000");
    CHECK(HGET("cq:job:e1", "scheduled_for") == NULL);
    CHECK_EQ(TTL("cq:job:e1"), -1);
    CHECK_STREQ(string(rconn_commandf(&R, "HGET cq:job:%s status", anon->id)), "queued");

    /* An id used before: its old status hash, about to expire, is kept for good now, and
     * what its last run ended with goes. */
    DO("EXPIRE cq:job:e1 100");
    DO("HSET cq:job:e1 status finished result r result_json 1 error e started_at 1 ended_at 2 "
       "retry_at 3 worker w func sleep enqueued_at 4");
    CHECK_EQ(queue_enqueue(&R, &K, &j, 1, 0, err, sizeof err), 0);
    CHECK_EQ(TTL("cq:job:e1"), -1);
    CHECK_EQ(LLEN("cq:queue:default"), 3);
    CHECK_STREQ(HGET("cq:job:e1", "status"), "queued");
    CHECK(HGET("cq:job:e1", "result") == NULL && HGET("cq:job:e1", "result_json") == NULL);
    CHECK(HGET("cq:job:e1", "error") == NULL && HGET("cq:job:e1", "started_at") == NULL);
    CHECK(HGET("cq:job:e1", "ended_at") == NULL && HGET("cq:job:e1", "retry_at") == NULL);
    CHECK_STREQ(HGET("cq:job:e1", "func"), "noop"); /* this run's, not the last one's */

    /* ... but not while it has not ended: refused, nothing of the call written. */
    CHECK_EQ(queue_enqueue(&R, &K, both, 2, 0, err, sizeof err), -1);
    CHECK_HAS(err, "is queued, not ended"); /* both are: the first by id is named */
    CHECK_EQ(LLEN("cq:queue:default"), 3);
    DO("HSET cq:job:e1 status started");
    CHECK_EQ(queue_enqueue(&R, &K, &j, 1, 0, err, sizeof err), -1);
    CHECK_HAS(err, "job e1 is started, not ended");
    DO("HSET cq:job:e1 status canceled");
    DO("SADD cq:cancel e1"); /* canceled while queued: its record still waits */
    CHECK_EQ(queue_enqueue(&R, &K, &j, 1, 0, err, sizeof err), -1);
    CHECK_HAS(err, "job e1 was canceled and its record still waits in its queue");
    DO("SREM cq:cancel e1");
    {
        /* Two round trips for a job given an id: the TYPE checks and the id's reads in one,
         * the transaction in the other (Redis's reads, this INFO's included, as the first
         * INFO's is). */
        long long before = reads_processed(), after;
        CHECK_EQ(queue_enqueue(&R, &K, &j, 1, 0, err, sizeof err), 0);
        after = reads_processed();
        CHECK_EQ(after - before, 3);
    }
    CHECK_EQ(LLEN("cq:queue:default"), 4);
    /* An id whose last run failed: queued again, it leaves the failed set (as a requeue
     * does), and its hash keeps nothing of that run: attempts, worker, record, recoveries. */
    DO("HSET cq:job:e1 status failed worker w attempts 3 recovered 1 record r error boom "
       "scheduled_for 5");
    DO("ZADD cq:failed 1 e1");
    DO("ZADD cq:failed 2 other");
    CHECK_EQ(queue_enqueue(&R, &K, &j, 1, 0, err, sizeof err), 0);
    CHECK_EQ(LLEN("cq:queue:default"), 5);
    CHECK_STREQ(HGET("cq:job:e1", "status"), "queued");
    CHECK(string(rconn_commandf(&R, "ZSCORE cq:failed e1")) == NULL);
    CHECK_EQ(integer(rconn_commandf(&R, "ZCARD cq:failed")), 1); /* "other" stays */
    CHECK_EQ(integer(rconn_commandf(&R, "HLEN cq:job:e1")), 4);
    DO("DEL cq:failed");
    {
        /* ... also when its failed status is gone (expired after --failure-ttl): the id is
         * still in the failed set, which nothing else trims. */
        struct job *g = mkjob("gone", NULL);
        DO("ZADD cq:failed 1 gone");
        CHECK_EQ(queue_enqueue(&R, &K, &g, 1, 0, err, sizeof err), 0);
        CHECK(string(rconn_commandf(&R, "ZSCORE cq:failed gone")) == NULL);
        CHECK_STREQ(HGET("cq:job:gone", "status"), "queued");
        DO("DEL cq:job:gone");
        DO("LREM cq:queue:default 1 %s", LINDEX("cq:queue:default", 0));
        job_free(g);
    }
    {
        /* One id twice in a call: neither has a status yet, and both would run. */
        struct job *a = mkjob("twice", NULL), *b = mkjob("twice", NULL);
        struct job *pair[2] = {a, b};
        CHECK_EQ(queue_enqueue(&R, &K, pair, 2, 0, err, sizeof err), -1);
        CHECK_HAS(err, "job id twice comes twice");
        CHECK_EQ(LLEN("cq:queue:default"), 5);
        CHECK(HGET("cq:job:twice", "status") == NULL);
        job_free(a);
        job_free(b);
    }

    /* Nothing to enqueue is no error. */
    CHECK_EQ(queue_enqueue(&R, &K, both, 0, 0, err, sizeof err), 0);
    job_free(j);
    job_free(anon);
}

/* Names that cannot be keys are refused before anything is written. */
static void test_enqueue_bad_names(void)
{
    struct job *j = mkjob("ok", "a:b");
    char err[256] = "";

    CHECK_EQ(queue_enqueue(&R, &K, &j, 1, 0, err, sizeof err), -1);
    CHECK_HAS(err, "queue 'a:b'");
    CHECK_EQ(j->enqueued, 0);
    str_copy(j->queue, sizeof j->queue, "q");
    str_copy(j->id, sizeof j->id, "bad id");
    CHECK_EQ(queue_enqueue(&R, &K, &j, 1, 0, err, sizeof err), -1);
    CHECK_HAS(err, "job id 'bad id'");
    /* A bad queue or id after good ones is found as well. */
    {
        struct job *ok = mkjob("ok1", "q"), *bad = mkjob("ok2", "q/x");
        struct job *two[2] = {ok, bad};
        CHECK_EQ(queue_enqueue(&R, &K, two, 2, 0, err, sizeof err), -1);
        CHECK_HAS(err, "queue 'q/x'");
        str_copy(bad->queue, sizeof bad->queue, "q");
        str_copy(bad->id, sizeof bad->id, "a b");
        CHECK_EQ(queue_enqueue(&R, &K, two, 2, 0, err, sizeof err), -1);
        CHECK_HAS(err, "job id 'a b'");
        CHECK_EQ(ok->enqueued, 0);
        job_free(ok);
        job_free(bad);
    }
    CHECK_EQ(integer(rconn_commandf(&R, "DBSIZE")), 0);
    job_free(j);
}

/* 2,500 jobs go as three transactions of at most 1,000; runs of one queue straddle them. */
static void test_enqueue_batch(void)
{
    enum { N = 2500, NA = 1200 };
    struct job **jobs = xcalloc(N, sizeof *jobs);
    char err[256] = "", id[32], *enc;
    const char *info;
    size_t i;
    int all, bad;

    for (i = 0; i < N; i++) {
        snprintf(id, sizeof id, "b-%zu", i);
        jobs[i] = mkjob(id, i < NA ? "qa" : "qb");
    }
    DO("CONFIG RESETSTAT");
    CHECK_EQ(queue_enqueue(&R, &K, jobs, N, 0, err, sizeof err), 0);
    CHECK_STREQ(err, "");
    info = string(rconn_commandf(&R, "INFO commandstats"));
    CHECK_HAS(info, "cmdstat_exec:calls=3,");
    CHECK_HAS(info, "cmdstat_multi:calls=3,");

    for (i = 0, all = 1; i < N; i++) all = all && jobs[i]->enqueued == 1;
    CHECK(all);
    CHECK_EQ(LLEN("cq:queue:qa"), NA);
    CHECK_EQ(LLEN("cq:queue:qb"), N - NA);
    CHECK_EQ(integer(rconn_commandf(&R, "SCARD cq:queues")), 2);
    /* First in, first out: job 0 at the right end of qa, job NA - 1 at its left. */
    enc = job_encode(jobs[0]);
    CHECK_STREQ(LINDEX("cq:queue:qa", -1), enc);
    free(enc);
    enc = job_encode(jobs[NA - 1]);
    CHECK_STREQ(LINDEX("cq:queue:qa", 0), enc);
    free(enc);
    enc = job_encode(jobs[N - 1]);
    CHECK_STREQ(LINDEX("cq:queue:qb", 0), enc);
    free(enc);

    /* Every status hash, read back in one pipeline. */
    for (i = 0; i < N; i++) {
        snprintf(id, sizeof id, "cq:job:b-%zu", i);
        rconn_appendf(&R, "HGET %s status", id);
    }
    for (i = 0, bad = 0; i < N; i++) {
        const char *s = string(rconn_read(&R));
        if (s == NULL || strcmp(s, "queued") != 0) bad++;
    }
    CHECK_EQ(bad, 0);
    CHECK_STREQ(HGET("cq:job:b-1999", "queue"), "qb");

    for (i = 0; i < N; i++) job_free(jobs[i]);
    free(jobs);
}

/* A job due later waits in the scheduled set; one due already goes straight to its queue. */
static void test_enqueue_scheduled(void)
{
    double at = whole_now() + 3600.5;
    struct job *j = mkjob("s1", "q"), *past = mkjob("s2", "q");
    char err[256] = "", *enc;

    CHECK_EQ(queue_enqueue(&R, &K, &j, 1, at, err, sizeof err), 0);
    CHECK_EQ(j->enqueued, 1);
    CHECK_EQ(EXISTS("cq:queue:q"), 0);
    CHECK_EQ(integer(rconn_commandf(&R, "ZCARD cq:scheduled")), 1);
    enc = job_encode(j);
    CHECK_DBL_EQ(number(rconn_commandf(&R, "ZSCORE cq:scheduled %s", enc)), at);
    free(enc);
    CHECK_STREQ(HGET("cq:job:s1", "status"), "scheduled");
    CHECK_DBL_EQ(number(rconn_commandf(&R, "HGET cq:job:s1 scheduled_for")), at);
    CHECK_STREQ(HGET("cq:job:s1", "queue"), "q");
    CHECK_EQ(integer(rconn_commandf(&R, "SISMEMBER cq:queues q")), 1);

    CHECK_EQ(queue_enqueue(&R, &K, &past, 1, time_now() - 10, err, sizeof err), 0);
    CHECK_EQ(LLEN("cq:queue:q"), 1);
    CHECK_STREQ(HGET("cq:job:s2", "status"), "queued");
    CHECK_EQ(integer(rconn_commandf(&R, "ZCARD cq:scheduled")), 1);
    job_free(j);
    job_free(past);
}

/* A queue key of another type: nothing of the batch is written (the destinations are
 * checked before the transaction is sent: Redis runs the rest of a transaction when one
 * command fails), and the error names the key. */
static void test_enqueue_wrong_type(void)
{
    struct job *j = mkjob("w1", "bad");
    char err[256] = "";
    int rc;

    DO("SET cq:queue:bad not-a-list");
    rc = queue_enqueue(&R, &K, &j, 1, 0, err, sizeof err);
    CHECK_EQ(rc, -1);
    CHECK(err[0] != '\0');
    CHECK_EQ(j->enqueued, 0);
    CHECK(HGET("cq:job:w1", "status") == NULL);
    CHECK_STREQ(string(rconn_commandf(&R, "GET cq:queue:bad")), "not-a-list");
    job_free(j);
    /* A job kept out by the failure still gets its id, as one that went in does. */
    j = mkjob("", "bad");
    CHECK_EQ(queue_enqueue(&R, &K, &j, 1, 0, err, sizeof err), -1);
    CHECK_EQ(j->enqueued, 0);
    CHECK_EQ(strlen(j->id), 36);
    job_free(j);
}

/* ---- take ---------------------------------------------------------------------------- */

static void test_take_priority(void)
{
    const char *queues[] = {"high", "low"};
    struct taken t[4];
    char err[256] = "x";
    int n;

    memset(t, 0, sizeof t);
    REQUIRE(put("l1", "low") == 0 && put("h1", "high") == 0 && put("l2", "low") == 0 &&
            put("h2", "high") == 0 && put("l3", "low") == 0);

    n = take("w1", queues, 2, 4, t, err, sizeof err);
    CHECK_EQ(n, 4);
    CHECK_STREQ(warn, "");
    REQUIRE(n == 4);
    /* high first, each queue oldest first */
    CHECK_HAS(t[0].record, "\"id\":\"h1\"");
    CHECK_HAS(t[1].record, "\"id\":\"h2\"");
    CHECK_HAS(t[2].record, "\"id\":\"l1\"");
    CHECK_HAS(t[3].record, "\"id\":\"l2\"");
    CHECK_STREQ(t[0].queue, "high");
    CHECK_STREQ(t[1].queue, "high");
    CHECK_STREQ(t[2].queue, "low");
    CHECK_STREQ(t[3].queue, "low");
    CHECK_EQ(t[0].len, strlen(t[0].record));

    /* The records are in this worker's in-flight lists, byte for byte, oldest at the right. */
    CHECK_EQ(LLEN("cq:queue:high"), 0);
    CHECK_EQ(LLEN("cq:queue:low"), 1);
    CHECK_EQ(LLEN("cq:inflight:w1:high"), 2);
    CHECK_EQ(LLEN("cq:inflight:w1:low"), 2);
    CHECK_STREQ(LINDEX("cq:inflight:w1:high", -1), t[0].record);
    CHECK_STREQ(LINDEX("cq:inflight:w1:high", 0), t[1].record);
    CHECK_STREQ(LINDEX("cq:inflight:w1:low", -1), t[2].record);
    free_taken(t, 4);

    CHECK_EQ(take("w1", queues, 2, 4, t, err, sizeof err), 1);
    CHECK_HAS(t[0].record, "\"id\":\"l3\"");
    free_taken(t, 1);
    CHECK_EQ(take("w1", queues, 2, 4, t, err, sizeof err), 0);
    CHECK_STREQ(warn, "");
    CHECK_EQ(LLEN("cq:inflight:w1:low"), 3);
}

static void test_take_max(void)
{
    const char *queues[] = {"q"};
    struct taken t[10];
    char err[256], id[16];
    int i;

    memset(t, 0, sizeof t);
    for (i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "m%d", i);
        REQUIRE(put(id, "q") == 0);
    }
    CHECK_EQ(take("w1", queues, 1, 3, t, err, sizeof err), 3);
    free_taken(t, 3);
    CHECK_EQ(LLEN("cq:queue:q"), 7);
    CHECK_EQ(LLEN("cq:inflight:w1:q"), 3);
    CHECK_EQ(take("w1", queues, 1, 0, t, err, sizeof err), 0);
    CHECK_EQ(LLEN("cq:queue:q"), 7);
    CHECK_EQ(take("w2", queues, 1, 10, t, err, sizeof err), 7);
    CHECK_HAS(t[0].record, "\"id\":\"m3\"");
    free_taken(t, 7);
    CHECK_EQ(LLEN("cq:inflight:w2:q"), 7);
    CHECK_EQ(EXISTS("cq:queue:q"), 0);
}

/* The worker's dispatcher sends a second round trip before it reads the one ahead, and waits
 * for either a reply or its executors with rconn_poll (worker.c, send_next). Two takes in
 * flight come back in order, each with its own records. rconn_poll says a reply is there
 * without reading it, also when its bytes came in with the reply before it (then they wait
 * in hiredis's buffer, not on the socket); it returns 0 at once when the other descriptor is
 * readable first, and 1 for a closed connection (the read then says so). */
static void test_pipelined_takes(void)
{
    const char *queues[] = {"pt"};
    struct taken a[2], b[2];
    struct queue_take_notes notes;
    char err[256];
    long long t0;
    int p[2];

    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    REQUIRE(put("pt1", "pt") == 0);
    REQUIRE(put("pt2", "pt") == 0);
    REQUIRE(put("pt3", "pt") == 0);
    REQUIRE(pipe(p) == 0);
    CHECK_EQ(rconn_poll(&R, p[0], 0), 0); /* nothing sent, nothing to read */
    CHECK_EQ(queue_take_append(&R, &K, "w1", queues, 1, 2, err, sizeof err), 0);
    CHECK_EQ(queue_take_append(&R, &K, "w1", queues, 1, 2, err, sizeof err), 0);
    CHECK_EQ(rconn_flush(&R), 0);
    CHECK_EQ(rconn_poll(&R, p[0], 5000), 1);
    sleep_ms(100); /* both replies arrive: the first read takes in the second's bytes too */
    CHECK_EQ(queue_take_read(&R, 2, a, &notes, warn, sizeof warn, err, sizeof err), 2);
    t0 = time_mono_ms();
    CHECK_EQ(rconn_poll(&R, p[0], 5000), 1);
    CHECK(time_mono_ms() - t0 < 2500);
    CHECK_EQ(queue_take_read(&R, 2, b, &notes, warn, sizeof warn, err, sizeof err), 1);
    CHECK_HAS(a[0].record, "\"id\":\"pt1\"");
    CHECK_HAS(a[1].record, "\"id\":\"pt2\"");
    CHECK_HAS(b[0].record, "\"id\":\"pt3\"");
    free_taken(a, 2);
    free_taken(b, 1);
    CHECK_EQ(LLEN("cq:inflight:w1:pt"), 3);
    /* Nothing in flight and the other descriptor readable: 0, without waiting. */
    CHECK_EQ(write(p[1], "x", 1), 1);
    t0 = time_mono_ms();
    CHECK_EQ(rconn_poll(&R, p[0], 5000), 0);
    CHECK(time_mono_ms() - t0 < 2500);
    close(p[0]);
    close(p[1]);
    rconn_close(&R);
    CHECK_EQ(rconn_poll(&R, -1, 5000), 1);
    REQUIRE(rconn_connect(&R) == 0);
}

/* A script goes as EVAL on a connection's first call, then as EVALSHA; after SCRIPT FLUSH
 * the next call fails with NOSCRIPT (nothing taken), and the one after sends the body again.
 * The scripts' path, also where Redis has cq's module (which has no script to flush). */
static void test_script_flushed(void)
{
    const char *queues[] = {"sf"};
    struct taken t[2];
    char err[256], wrn[256];
    int module = R.module;

    R.module = 0;
    memset(t, 0, sizeof t);
    REQUIRE(put("sf1", "sf") == 0);
    REQUIRE(put("sf2", "sf") == 0);
    DO("CONFIG RESETSTAT");
    R.scripts = 0; /* as on a new connection */
    CHECK_EQ(take("w1", queues, 1, 1, t, err, sizeof err), 1);
    free_taken(t, 1);
    CHECK(R.scripts != 0);
    CHECK_EQ(take("w1", queues, 1, 0, t, err, sizeof err), 0);
    CHECK_HAS(string(rconn_commandf(&R, "INFO commandstats")), "cmdstat_evalsha:calls=1,");
    DO("SCRIPT FLUSH");
    CHECK_EQ(take("w1", queues, 1, 1, t, err, sizeof err), -1);
    CHECK_HAS(err, "NOSCRIPT");
    CHECK_EQ(R.scripts, 0);
    CHECK_EQ(LLEN("cq:queue:sf"), 1);
    CHECK_EQ(take("w1", queues, 1, 1, t, err, sizeof err), 1);
    free_taken(t, 1);
    CHECK_EQ(LLEN("cq:queue:sf"), 0);
    CHECK_EQ(LLEN("cq:inflight:w1:sf"), 2);
    /* The scheduled-jobs script too, which a worker runs every 250 ms: its body once. */
    DO("CONFIG RESETSTAT");
    R.scripts = 0;
    CHECK_EQ(queue_schedule_due(&R, &K, time_now(), 100, wrn, sizeof wrn, err, sizeof err), 0);
    CHECK_EQ(queue_schedule_due(&R, &K, time_now(), 100, wrn, sizeof wrn, err, sizeof err), 0);
    CHECK_HAS(string(rconn_commandf(&R, "INFO commandstats")), "cmdstat_eval:calls=1,");
    CHECK_HAS(string(rconn_commandf(&R, "INFO commandstats")), "cmdstat_evalsha:calls=1,");
    R.module = module;
}

/* A queue key of another type is skipped and named; the other queues are still taken. So is
 * a queue whose in-flight list is of another type (nothing is popped from it). */
static void test_take_wrong_type(void)
{
    const char *queues[] = {"bad", "good"}, *queues2[] = {"good2", "good"};
    struct taken t[4];
    char err[256] = "";
    int n;

    memset(t, 0, sizeof t);
    DO("SET cq:queue:bad not-a-list");
    REQUIRE(put("g1", "good") == 0 && put("g2", "good") == 0 && put("g3", "good2") == 0);
    n = take("w1", queues, 2, 4, t, err, sizeof err);
    CHECK_EQ(n, 2);
    CHECK_HAS(warn,
              "queue 'bad': cannot take from it: its key cq:queue:bad is a string, not a "
              "list: remove or rename it");
    free_taken(t, n > 0 ? (size_t)n : 0);
    CHECK_EQ(LLEN("cq:inflight:w1:good"), 2);
    CHECK_STREQ(string(rconn_commandf(&R, "GET cq:queue:bad")), "not-a-list");
    CHECK_EQ(EXISTS("cq:inflight:w1:bad"), 0);

    DO("SET cq:inflight:w1:good2 not-a-list");
    REQUIRE(put("g4", "good") == 0);
    n = take("w1", queues2, 2, 4, t, err, sizeof err);
    CHECK_EQ(n, 1);
    CHECK_HAS(warn, "queue 'good2'");
    CHECK_HAS(warn, "cq:inflight:w1:good2 is not a list");
    free_taken(t, n > 0 ? (size_t)n : 0);
    CHECK_EQ(LLEN("cq:queue:good2"), 1); /* g3 stays queued */
}

/* Records pushed by hand that look like the take reply's markers ("=", "#", "!", "~" and a
 * number) are taken as records, each with its queue, around a queue that cannot be popped. */
static void test_take_marker_like_records(void)
{
    const char *queues[] = {"m1", "bad", "m2"};
    const char *want[][2] = {{"m1", "=m2"}, {"m1", "3"},  {"m2", "=m1"},
                             {"m2", "#2"},  {"m2", "~0"}, {"m2", "!x"}};
    struct taken t[6];
    char err[256] = "";
    int n, i;

    memset(t, 0, sizeof t);
    DO("RPUSH cq:queue:m1 3 =m2");
    DO("SET cq:queue:bad x");
    DO("RPUSH cq:queue:m2 !x ~0 #2 =m1");
    n = take("w1", queues, 3, 6, t, err, sizeof err);
    CHECK_EQ(n, 6);
    CHECK_HAS(warn, "queue 'bad'");
    REQUIRE(n == 6);
    for (i = 0; i < 6; i++) {
        CHECK_STREQ(t[i].queue, want[i][0]);
        CHECK_STREQ(t[i].record, want[i][1]);
    }
    free_taken(t, 6);
    CHECK_EQ(LLEN("cq:inflight:w1:m2"), 4);
}

/* Two unusable queues: warn names each of them, and the good queue is still taken from. */
static void test_take_two_wrong_types(void)
{
    const char *queues[] = {"bad1", "bad2", "good"};
    struct taken t[2];
    char err[512] = "";
    int n;

    memset(t, 0, sizeof t);
    DO("SET cq:queue:bad1 x");
    DO("SET cq:queue:bad2 x");
    REQUIRE(put("g1", "good") == 0);
    n = take("w1", queues, 3, 2, t, err, sizeof err);
    CHECK_EQ(n, 1);
    free_taken(t, n > 0 ? (size_t)n : 0);
    CHECK_HAS(warn, "'bad2'");
    CHECK_HAS(warn, "'bad1'");
}

/* A take of more than Lua's unpack limit (about 8,000 values) moves every record: the
 * in-flight list is pushed in slices. */
static void test_take_large_max(void)
{
    enum { N = 8500 };
    const char *queues[] = {"big"};
    struct job **jobs = xcalloc(N, sizeof *jobs);
    struct taken *t = xcalloc(N, sizeof *t);
    char err[256] = "", id[16];
    size_t i;
    int n;

    for (i = 0; i < N; i++) {
        snprintf(id, sizeof id, "x%zu", i);
        jobs[i] = mkjob(id, "big");
    }
    CHECK_EQ(queue_enqueue(&R, &K, jobs, N, 0, err, sizeof err), 0);
    for (i = 0; i < N; i++) job_free(jobs[i]);
    free(jobs);
    n = take("w1", queues, 1, N, t, err, sizeof err);
    /* All of them, or as many as a documented cap allows - but each taken one in flight and
     * the others still queued. */
    CHECK(n > 0);
    if (n < 0) fprintf(stderr, "   take: %s\n", err);
    CHECK_EQ(LLEN("cq:inflight:w1:big"), n > 0 ? n : 0);
    CHECK_EQ(LLEN("cq:queue:big") + LLEN("cq:inflight:w1:big"), N);
    free_taken(t, n > 0 ? (size_t)n : 0);
    free(t);
}

/* AUTH as user (any password: made "nopass"); 0 when it took. */
static int as_user(const char *user)
{
    const char *ok = string(rconn_commandf(&R, "AUTH %s x", user));

    return ok != NULL && strcmp(ok, "OK") == 0 ? 0 : -1;
}

/* A user whose ACL refuses LPUSH: the records a take popped go back to the queue's tail, in
 * their order, none taken and none in flight, and each queue is named with the command, the
 * in-flight list and the cause, where cq's module returned them as taken and in no list (the
 * job ran untracked, its status queued for good) and the script failed with them lost. As
 * the default user again, the next take gets them, oldest first. A user that may not RPUSH
 * either: the script cannot put them back, and says they are lost (Redis's log has each);
 * cq's module puts them back all the same (its RPUSH undoes its own RPOP, without the ACL). */
static void test_take_push_refused(void)
{
    const char *queues[] = {"q", "q2"};
    struct taken t[4];
    char err[256] = "", before[3][128];
    int n, i;

    memset(t, 0, sizeof t);
    REQUIRE(put("p1", "q") == 0 && put("p2", "q") == 0 && put("p3", "q") == 0 &&
            put("p4", "q2") == 0);
    for (i = 0; i < 3; i++) {
        const char *rec = LINDEX("cq:queue:q", i);
        str_copy(before[i], sizeof before[i], rec != NULL ? rec : "");
    }
    DO("ACL SETUSER nopush on nopass ~* &* +@all -lpush");
    REQUIRE(as_user("nopush") == 0);
    n = take("w1", queues, 2, 4, t, err, sizeof err);
    CHECK_EQ(n, 0);
    free_taken(t, n > 0 ? (size_t)n : 0);
    CHECK_HAS(warn, "queue 'q': cannot take from it: LPUSH cq:inflight:w1:q: ");
    CHECK_HAS(warn, "can't run this command");
    CHECK_HAS(warn, " (3 records left in cq:queue:q); ");
    CHECK_HAS(warn, "queue 'q2': cannot take from it: LPUSH cq:inflight:w1:q2: ");
    CHECK_HAS(warn, " (1 record left in cq:queue:q2)");
    CHECK_STREQ(string(rconn_commandf(&R, "AUTH default x")), "OK");
    CHECK_EQ(EXISTS("cq:inflight:w1:q"), 0);
    CHECK_EQ(EXISTS("cq:inflight:w1:q2"), 0);
    CHECK_EQ(LLEN("cq:queue:q"), 3);
    for (i = 0; i < 3; i++) CHECK_STREQ(LINDEX("cq:queue:q", i), before[i]);
    CHECK_EQ(LLEN("cq:queue:q2"), 1);
    n = take("w1", queues, 2, 4, t, err, sizeof err);
    CHECK_EQ(n, 4);
    CHECK_STREQ(warn, "");
    if (n == 4) CHECK_HAS(t[0].record, "\"id\":\"p1\"");
    free_taken(t, n > 0 ? (size_t)n : 0);

    REQUIRE(put("p5", "q") == 0);
    DO("ACL SETUSER nopush -rpush");
    REQUIRE(as_user("nopush") == 0);
    n = take("w1", queues, 1, 4, t, err, sizeof err);
    CHECK_EQ(n, 0);
    free_taken(t, n > 0 ? (size_t)n : 0);
    CHECK_STREQ(string(rconn_commandf(&R, "AUTH default x")), "OK");
    if (R.module) {
        CHECK_HAS(warn, " (1 record left in cq:queue:q)");
        CHECK_EQ(LLEN("cq:queue:q"), 1);
    } else {
        CHECK_HAS(warn, "; RPUSH cq:queue:q to put them back: ");
        CHECK_HAS(warn, ": 1 record LOST (each in Redis's log)");
        CHECK(server_log_has("cq: take: lost from cq:queue:q: {\"id\":\"p5\""));
        CHECK_EQ(EXISTS("cq:queue:q"), 0);
    }
    CHECK_EQ(EXISTS("cq:inflight:w1:q"), 1); /* p1-p3, taken above */
    DO("ACL DELUSER nopush");
}

/* The paused set or the cancel set the take cannot read (a user without SISMEMBER or SCARD,
 * a key of another type) fails the take before anything moves, with the key, the queue and
 * the cause, where cq's module ignored SISMEMBER's error and took from a paused queue (and
 * the queues before it). */
static void test_take_sets_unreadable(void)
{
    const char *queues[] = {"open", "q"};
    struct taken t[2];
    char err[512] = "";
    int n, k;

    memset(t, 0, sizeof t);
    REQUIRE(put("u1", "open") == 0 && put("u2", "q") == 0);
    DO("SADD cq:paused q");
    DO("ACL SETUSER nosis on nopass ~* &* +@all -sismember");
    DO("ACL SETUSER noscard on nopass ~* &* +@all -scard");
    for (k = 0; k < 3; k++) {
        err[0] = '\0';
        if (k == 0) REQUIRE(as_user("nosis") == 0);
        if (k == 1) {
            DO("DEL cq:paused");
            DO("SET cq:paused x");
        }
        if (k == 2) REQUIRE(as_user("noscard") == 0);
        n = take("w1", queues, 2, 2, t, err, sizeof err);
        CHECK_EQ(n, -1);
        free_taken(t, n > 0 ? (size_t)n : 0);
        CHECK_HAS(err, k == 2 ? "take: SCARD cq:cancel: " : "take: SISMEMBER cq:paused open: ");
        CHECK_HAS(err, k == 1 ? "WRONGTYPE" : "can't run this command");
        CHECK_STREQ(string(rconn_commandf(&R, "AUTH default x")), "OK");
        CHECK_EQ(LLEN("cq:queue:open"), 1);
        CHECK_EQ(LLEN("cq:queue:q"), 1);
        CHECK_EQ(EXISTS("cq:inflight:w1:open"), 0);
        CHECK_EQ(EXISTS("cq:inflight:w1:q"), 0);
    }
    DO("ACL DELUSER nosis noscard");
}

/* ---- apply --------------------------------------------------------------------------- */

/* Take the one record put in queue q as wid, with its decoded job. */
static int take_one(const char *wid, const char *q, struct taken *t, struct job **j)
{
    const char *queues[] = {q};
    char err[256];

    memset(t, 0, sizeof *t);
    *j = NULL;
    if (take(wid, queues, 1, 1, t, err, sizeof err) != 1) return -1;
    *j = decoded(t);
    return *j != NULL ? 0 : -1;
}

static void test_apply_started(void)
{
    struct taken t;
    struct job *j;
    struct queue_outcome o;
    unsigned char lost[1] = {0};
    char err[256] = "";

    REQUIRE(put("st", "q") == 0);
    REQUIRE(take_one("w1", "q", &t, &j) == 0);
    j->attempts = 1; /* as the worker counts the attempt it starts */
    DO("EXPIRE cq:job:st 100");
    o = outcome(QUEUE_STARTED, &t, j, NULL, T0 + 1);
    CHECK_EQ(apply("w1", &o, 1, &default_ttls, lost, err, sizeof err), 0);
    CHECK_EQ(lost[0], 0);
    CHECK_STREQ(HGET("cq:job:st", "status"), "started");
    CHECK_STREQ(HGET("cq:job:st", "worker"), "w1");
    CHECK_STREQ(HGET("cq:job:st", "queue"), "q");
    CHECK_STREQ(HGET("cq:job:st", "func"), "noop");
    CHECK_STREQ(HGET("cq:job:st", "attempts"), "1");
    CHECK_DBL_EQ(number(rconn_commandf(&R, "HGET cq:job:st started_at")), T0 + 1);
    CHECK_DBL_EQ(number(rconn_commandf(&R, "HGET cq:job:st enqueued_at")), T0);
    CHECK_EQ(TTL("cq:job:st"), -1);
    CHECK_EQ(LLEN("cq:inflight:w1:q"), 1); /* a start leaves the record in flight */

    /* A start for a record no longer in flight writes nothing (and is not an end to flag). */
    DO("DEL cq:inflight:w1:q");
    DO("HSET cq:job:st status queued");
    CHECK_EQ(apply("w1", &o, 1, &default_ttls, lost, err, sizeof err), 0);
    CHECK_EQ(lost[0], 0);
    CHECK_STREQ(HGET("cq:job:st", "status"), "queued");
    queue_taken_free(&t);
    job_free(j);
}

/* A TTL too long for a time in milliseconds (cworker takes any up to LONG_MAX seconds) ends
 * the job all the same, its status hash kept as good as for ever: the expiry is the latest
 * Redis can hold, not an error that would fail the whole batch. The same through the
 * relative EXPIRE, for a user whose ACL refuses TIME and PEXPIREAT. */
static void test_apply_huge_ttl(void)
{
    static const long ttls[] = {100000000000000000L, LONG_MAX};
    struct taken t;
    struct job *j;
    struct queue_outcome o;
    unsigned char lost[1] = {0};
    char err[256] = "", id[16], key[32];
    size_t i;

    for (i = 0; i < 4; i++) {
        struct queue_ttls huge = {ttls[i % 2], ttls[i % 2]};
        snprintf(id, sizeof id, "huge%zu", i);
        snprintf(key, sizeof key, "cq:job:%s", id);
        REQUIRE(put(id, "q") == 0 && take_one("w1", "q", &t, &j) == 0);
        if (i >= 2) {
            DO("ACL SETUSER lim on nopass ~* &* +@all -time -pexpireat");
            DO("AUTH lim x");
        }
        o = outcome(QUEUE_FINISHED, &t, j, "done", T0 + 1);
        CHECK_EQ(apply("w1", &o, 1, &huge, lost, err, sizeof err), 0);
        if (err[0]) fprintf(stderr, "  %s, result_ttl %ld: %s\n", id, ttls[i % 2], err);
        if (i >= 2) {
            DO("AUTH default x");
            DO("ACL DELUSER lim");
        }
        CHECK_STREQ(HGET(key, "status"), "finished");
        CHECK(TTL(key) > 100000000000L);
        free_taken(&t, 1);
        job_free(j);
    }
    CHECK_EQ(EXISTS("cq:inflight:w1:q"), 0);
}

/* Finished: status, result, ended_at, and the status hash's lifetime from result_ttl. */
static void test_apply_finished(void)
{
    struct taken t[3];
    struct job *j[3];
    struct queue_outcome o;
    struct queue_ttls keep = {-1, 0}, drop = {0, 0};
    unsigned char lost[1] = {0};
    char err[256] = "";
    long long ttl;

    REQUIRE(put("f1", "q") == 0 && take_one("w1", "q", &t[0], &j[0]) == 0);
    REQUIRE(put("f2", "q") == 0 && take_one("w1", "q", &t[1], &j[1]) == 0);
    REQUIRE(put("f3", "q") == 0 && take_one("w1", "q", &t[2], &j[2]) == 0);

    /* result_ttl 500: expires. A first attempt (as the worker counts it) with its start: the
     * attempts go without saying (kind F) and are written all the same. */
    j[0]->attempts = 1;
    o = outcome(QUEUE_FINISHED, &t[0], j[0], "done", T0 + 2.5);
    o.with_start = 1;
    o.started_at = T0 + 2;
    CHECK_EQ(apply("w1", &o, 1, &default_ttls, lost, err, sizeof err), 0);
    CHECK_EQ(lost[0], 0);
    CHECK_STREQ(HGET("cq:job:f1", "status"), "finished");
    CHECK_STREQ(HGET("cq:job:f1", "attempts"), "1");
    CHECK_STREQ(HGET("cq:job:f1", "worker"), "w1");
    CHECK_DBL_EQ(number(rconn_commandf(&R, "HGET cq:job:f1 started_at")), T0 + 2);
    CHECK_STREQ(HGET("cq:job:f1", "result"), "done");
    CHECK(HGET("cq:job:f1", "result_json") == NULL);
    CHECK_DBL_EQ(number(rconn_commandf(&R, "HGET cq:job:f1 ended_at")), T0 + 2.5);
    ttl = TTL("cq:job:f1");
    CHECK(ttl > 490 && ttl <= 500);
    CHECK_EQ(LLEN("cq:inflight:w1:q"), 2);

    /* result_ttl 0: the status hash goes at once. */
    o = outcome(QUEUE_FINISHED, &t[1], j[1], "done", T0 + 3);
    CHECK_EQ(apply("w1", &o, 1, &drop, lost, err, sizeof err), 0);
    CHECK_EQ(EXISTS("cq:job:f2"), 0);

    /* result_ttl -1: kept for good. A later attempt's success clears the earlier error; an
     * end that also records its start (same batch) writes the start fields too. */
    j[2]->attempts = 2;
    DO("HSET cq:job:f3 error earlier-failure");
    DO("EXPIRE cq:job:f3 100");
    o = outcome(QUEUE_FINISHED, &t[2], j[2], "done", T0 + 4);
    o.with_start = 1;
    o.started_at = T0 + 3.5;
    CHECK_EQ(apply("w1", &o, 1, &keep, lost, err, sizeof err), 0);
    CHECK_EQ(TTL("cq:job:f3"), -1);
    CHECK(HGET("cq:job:f3", "error") == NULL);
    CHECK_STREQ(HGET("cq:job:f3", "worker"), "w1");
    CHECK_STREQ(HGET("cq:job:f3", "attempts"), "2");
    CHECK_DBL_EQ(number(rconn_commandf(&R, "HGET cq:job:f3 started_at")), T0 + 3.5);

    CHECK_EQ(EXISTS("cq:inflight:w1:q"), 0);
    CHECK_STREQ(HGET("cq:stats", "processed"), "3");
    CHECK_STREQ(HGET("cq:worker:w1", "processed"), "3");
    free_taken(t, 3);
    job_free(j[0]);
    j[0] = NULL;

    /* A first attempt that was handed back once (kind f): its error fields are cleared too. */
    REQUIRE(put("f4", "q") == 0 && take_one("w1", "q", &t[0], &j[0]) == 0);
    j[0]->attempts = 1;
    j[0]->handoffs = 1;
    DO("HSET cq:job:f4 error host-failure retry_at 1");
    o = outcome(QUEUE_FINISHED, &t[0], j[0], "done", T0 + 5);
    CHECK_EQ(apply("w1", &o, 1, &default_ttls, lost, err, sizeof err), 0);
    CHECK_STREQ(HGET("cq:job:f4", "status"), "finished");
    CHECK(HGET("cq:job:f4", "error") == NULL && HGET("cq:job:f4", "retry_at") == NULL);
    free_taken(t, 1);
    job_free(j[0]);
    job_free(j[1]);
    job_free(j[2]);
}

#define PUB_BATCH 40 /* ends in one apply: enough for the script to ask who listens */

/* Finish n jobs "<prefix><i>" (taken in one batch) as the user named (NULL: default), with
 * default_ttls. After the take, the key bad (when not NULL) is made a string, and gone is
 * deleted. The apply's result; warn has what it reported. */
static int finish_as(const char *prefix, int n, const char *user, const char *bad, const char *gone)
{
    const char *queues[] = {"q"};
    struct taken t[PUB_BATCH];
    struct job *j[PUB_BATCH];
    struct queue_outcome o[PUB_BATCH];
    unsigned char lost[PUB_BATCH] = {0};
    char err[256] = "", id[32];
    int i, got, rc = -1;

    if (n > PUB_BATCH) return -1;
    memset(t, 0, sizeof t);
    for (i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%s%d", prefix, i);
        if (put(id, "q") != 0) return -1;
    }
    got = take("w1", queues, 1, (size_t)n, t, err, sizeof err);
    if (bad != NULL) DO("SET %s not-a-hash", bad);
    if (gone != NULL) DO("DEL %s", gone);
    for (i = 0; i < got; i++) {
        j[i] = decoded(&t[i]);
        if (j[i] != NULL) j[i]->attempts = 1; /* as the worker counts it: a finish of kind F */
        o[i] = outcome(QUEUE_FINISHED, &t[i], j[i], "done", T0 + 1);
    }
    if (user != NULL) DO("AUTH %s x", user);
    if (got == n) rc = apply("w1", o, (size_t)n, &default_ttls, lost, err, sizeof err);
    if (user != NULL) DO("AUTH default x");
    if (err[0]) fprintf(stderr, "  finish_as %s: %s\n", prefix, err);
    for (i = 0; i < got; i++) job_free(j[i]);
    free_taken(t, got > 0 ? (size_t)got : 0);
    return rc;
}

/* Put n jobs "<prefix><i>" in queue q, take them as w1 and finish them in one apply. */
static int finish_batch(const char *prefix, int n)
{
    return finish_as(prefix, n, NULL, NULL, NULL);
}

/* One of Redis's counts for a command since the last CONFIG RESETSTAT (INFO commandstats:
 * "calls", "failed_calls", ...): 0 for a command not called since, -1 where its line has no
 * such field. */
static long long cmdstat(const char *cmd, const char *field)
{
    const char *info = string(rconn_commandf(&R, "INFO commandstats"));
    char pat[64];
    const char *line, *end, *at;
    size_t n;

    snprintf(pat, sizeof pat, "cmdstat_%s:", cmd);
    line = info != NULL ? strstr(info, pat) : NULL;
    if (line == NULL) return 0;
    line += strlen(pat) - 1; /* at the ':', so that each field follows a ':' or a ',' */
    end = line + strcspn(line, "\r\n");
    n = strlen(field);
    for (at = line; at < end; at = at + 1 + strcspn(at + 1, ","))
        if (strncmp(at + 1, field, n) == 0 && at[1 + n] == '=')
            return strtoll(at + 2 + n, NULL, 10);
    return -1;
}

/* Redis's count of a command's calls since the last CONFIG RESETSTAT. */
static long long calls(const char *cmd)
{
    return cmdstat(cmd, "calls");
}

/* n jobs with no id (queue_enqueue makes them): the first na to qa, the rest to qb; in qa,
 * the jobs from na / 2 call "sleep", not "noop", and those from na / 2 + 10 have another
 * enqueued_at (runs of one queue, func and time, as CQ.ENQUEUE1 takes them). */
static struct job **fresh_jobs(size_t n, size_t na)
{
    struct job **jobs = xcalloc(n, sizeof *jobs);
    size_t i;

    for (i = 0; i < n; i++) {
        jobs[i] = mkjob("", i < na ? "qa" : "qb");
        if (i >= na / 2 && i < na) str_copy(jobs[i]->func, sizeof jobs[i]->func, "sleep");
        if (i >= na / 2 + 10 && i < na) jobs[i]->enqueued_at = T0 + 1;
    }
    return jobs;
}

/* An HGETALL reply as "field=value " pairs, or "" for another reply (overwritten by the next
 * call). */
static const char *fields_of(const redisReply *rep)
{
    static char out[512];
    size_t e, len = 0;

    out[0] = '\0';
    if (rep != NULL && rep->type == REDIS_REPLY_ARRAY)
        for (e = 0; e + 1 < rep->elements && len < sizeof out; e += 2)
            len += (size_t)snprintf(out + len, sizeof out - len, "%s=%s ", rep->element[e]->str,
                                    rep->element[e + 1]->str);
    return out;
}

/* What fresh_jobs made is in Redis, each once, in order: the queues' records, every status
 * hash (read in one pipeline), the queues set. */
static void check_fresh_jobs(struct job **jobs, size_t n, size_t na)
{
    char key[KEYS_KEY_MAX], *enc;
    size_t i;
    int all, bad;

    for (i = 0, all = 1; i < n; i++) all = all && jobs[i]->enqueued == 1 && jobs[i]->id[0];
    CHECK(all);
    CHECK_EQ(LLEN("cq:queue:qa"), (long long)na);
    CHECK_EQ(LLEN("cq:queue:qb"), (long long)(n - na));
    CHECK_EQ(integer(rconn_commandf(&R, "SCARD cq:queues")), 2);
    enc = job_encode(jobs[0]);
    CHECK_STREQ(LINDEX("cq:queue:qa", -1), enc);
    free(enc);
    enc = job_encode(jobs[na / 2]);
    CHECK_STREQ(LINDEX("cq:queue:qa", (int)(na - na / 2 - 1)), enc);
    free(enc);
    enc = job_encode(jobs[n - 1]);
    CHECK_STREQ(LINDEX("cq:queue:qb", 0), enc);
    free(enc);
    for (i = 0; i < n; i++) {
        snprintf(key, sizeof key, "cq:job:%s", jobs[i]->id);
        rconn_appendf(&R, "HGETALL %s", key);
    }
    for (i = 0, bad = 0; i < n; i++) {
        redisReply *rep = rconn_read(&R);
        char want[256];
        snprintf(want, sizeof want, "status=queued queue=%s func=%s enqueued_at=%s ",
                 jobs[i]->queue, jobs[i]->func,
                 jobs[i]->enqueued_at == T0 ? "1767225600.250000" : "1767225601.250000");
        if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 8) {
            bad++;
        } else {
            const char *got = fields_of(rep);
            if (strcmp(got, want) != 0) {
                if (bad == 0) fprintf(stderr, "    %s: %s, not %s\n", jobs[i]->id, got, want);
                bad++;
            }
        }
        discard(rep);
    }
    CHECK_EQ(bad, 0);
}

/* 2,500 fresh jobs (fresh_jobs) in one call, then the checks of how they went: through cq's
 * module where Redis has it, one CQ.ENQUEUE1 a chunk, with `copies` COPYs of status hashes;
 * without it, the transactions. */
static void enqueue_fresh_batch(long long copies)
{
    enum { N = 2500, NA = 1200 };
    struct job **jobs = fresh_jobs(N, NA);
    char err[256] = "";
    size_t i;

    DO("CONFIG RESETSTAT");
    R.module_asked &= ~RCONN_MODULE_ENQUEUE; /* as on a new connection */
    CHECK_EQ(queue_enqueue(&R, &K, jobs, N, 0, err, sizeof err), 0);
    CHECK_STREQ(err, "");
    /* the question (the module's own "wrong number of arguments": a failed call), then one
     * call a chunk */
    CHECK_EQ(calls("cq.enqueue1"), R.module ? 1 + 3 : 0);
    CHECK_EQ(calls("exec"), R.module ? 0 : 3);
    /* a chunk's consecutive runs of one queue in one LPUSH: qa; qa and qb; qb */
    CHECK_EQ(calls("lpush"), 4);
    CHECK_EQ(calls("sadd"), 4);
    CHECK_EQ(calls("hset"), R.module ? 0 : N);
    CHECK_EQ(calls("copy"), copies);
    check_fresh_jobs(jobs, N, NA);
    for (i = 0; i < N; i++) job_free(jobs[i]);
    free(jobs);
}

/* A call whose ids are made here goes through cq's module where Redis has it: one CQ.ENQUEUE1
 * a chunk of 1,000 instead of a transaction, with no TYPE round trip before it; without the
 * module, the TYPE checks and the transactions. Either way the same keys, fields and order. */
static void test_enqueue_fresh_batch(void)
{
    enum { N = 2500, NA = 1200 };
    struct job **jobs;
    char err[256] = "";
    size_t i;

    /* the module makes each run's first status hash and copies it for the rest of the run:
     * six runs in the three chunks (qa noop, sleep, sleep later; qa sleep later, qb; qb) */
    enqueue_fresh_batch(R.module ? N - 6 : 0);

    /* A small call alike, down to one job: with the module, the question once a connection,
     * in the first call's round trip of TYPEs, then one CQ.ENQUEUE1 a call and no TYPE once
     * the connection knows; without, the TYPEs and a transaction a call. */
    DO("FLUSHALL");
    DO("CONFIG RESETSTAT");
    R.module_asked &= ~RCONN_MODULE_ENQUEUE;
    jobs = fresh_jobs(99, 60);
    CHECK_EQ(queue_enqueue(&R, &K, jobs, 98, 0, err, sizeof err), 0);
    CHECK_EQ(queue_enqueue(&R, &K, jobs + 98, 1, 0, err, sizeof err), 0);
    CHECK_EQ(calls("exec"), R.module ? 0 : 2);
    CHECK_EQ(calls("cq.enqueue1"), R.module ? 1 + 2 : 0);
    CHECK_EQ(calls("type"), R.module ? 3 : 3 + 2); /* the queues set and each call's queues */
    check_fresh_jobs(jobs, 99, 60);
    for (i = 0; i < 99; i++) job_free(jobs[i]);
    free(jobs);

    /* A queue key of another type: refused, naming it, and nothing written; by CQ.ENQUEUE1
     * itself with the module, by the TYPE check without. */
    DO("FLUSHALL");
    DO("SET cq:queue:qa not-a-list");
    jobs = fresh_jobs(1, 1);
    CHECK_EQ(queue_enqueue(&R, &K, jobs, 1, 0, err, sizeof err), -1);
    CHECK_HAS(err,
              R.module ? "key cq:queue:qa is not a list: nothing was enqueued"
                       : "key cq:queue:qa is a string, not a list");
    CHECK_EQ(integer(rconn_commandf(&R, "DBSIZE")), 1);
    job_free(jobs[0]);
    free(jobs);

    /* The same for a call of several chunks on a connection lost since it learnt of the
     * module (its bits outlive it until the next connect): connected again first, so that
     * no chunk goes as a transaction without the TYPE checks. */
    if (R.module) CHECK_EQ(R.module_asked & RCONN_MODULE_ENQUEUE, RCONN_MODULE_ENQUEUE);
    rconn_close(&R);
    jobs = fresh_jobs(N, NA);
    CHECK_EQ(queue_enqueue(&R, &K, jobs, N, 0, err, sizeof err), -1);
    CHECK_HAS(err, "cq:queue:qa");
    CHECK_EQ(integer(rconn_commandf(&R, "DBSIZE")), 1);
    for (i = 0; i < N; i++) job_free(jobs[i]);
    free(jobs);

    /* One job with an id of its own: the whole call as transactions, in order. */
    DO("FLUSHALL");
    DO("CONFIG RESETSTAT");
    jobs = fresh_jobs(N, NA);
    str_copy(jobs[N - 1]->id, sizeof jobs[N - 1]->id, "given-id");
    CHECK_EQ(queue_enqueue(&R, &K, jobs, N, 0, err, sizeof err), 0);
    CHECK_EQ(calls("exec"), 3);
    CHECK_EQ(calls("cq.enqueue1"), 0);
    check_fresh_jobs(jobs, N, NA);
    for (i = 0; i < N; i++) job_free(jobs[i]);
    free(jobs);
}

/* HGETALL key as "field=value " pairs (fields_of), or "". */
static const char *fields(const char *key)
{
    redisReply *rep = rconn_commandf(&R, "HGETALL %s", key);
    const char *out = fields_of(rep);

    discard(rep);
    return out;
}

/* CQ.ENQUEUE1 copies a run's first status hash it made for the others. A job key that exists
 * is updated, as HSET would (COPY does not replace it), and is not what the others copy; one
 * of another type fails its write, and the rest of the call is written; the first one's key
 * again in the run is updated, and the copies go on after it. */
static void test_enqueue_module_copy(void)
{
    static const char want[] = "status=queued queue=q func=noop enqueued_at=1767225600.25 ";
    redisReply *rep;

    if (!R.module) return;
    DO("FLUSHALL");
    DO("HSET cq:job:e1 x 1");
    DO("HSET cq:job:e3 y 2");
    DO("SET cq:job:e5 s");
    DO("CONFIG RESETSTAT");
    rep = rconn_commandf(&R,
                         "CQ.ENQUEUE1 cq:queues q cq:queue:q noop 1767225600.25 7 cq:job:e1 "
                         "r1 cq:job:e2 r2 cq:job:e3 r3 cq:job:e2 r2b cq:job:e4 r4 cq:job:e5 "
                         "r5 cq:job:e6 r6");
    CHECK(rep != NULL && rep->type == REDIS_REPLY_ERROR);
    CHECK_STREQ(rep != NULL && rep->type == REDIS_REPLY_ERROR ? rep->str : "",
                "WRONGTYPE key cq:job:e5 is not a hash: its job was enqueued without its status "
                "(1 such job); the call's other 6 jobs were enqueued with theirs");
    discard(rep);
    CHECK_STREQ(fields("cq:job:e1"),
                "x=1 status=queued queue=q func=noop "
                "enqueued_at=1767225600.25 ");
    CHECK_STREQ(fields("cq:job:e2"), want);
    CHECK_STREQ(fields("cq:job:e3"),
                "y=2 status=queued queue=q func=noop "
                "enqueued_at=1767225600.25 ");
    CHECK_STREQ(fields("cq:job:e4"), want);
    CHECK_STREQ(string(rconn_commandf(&R, "GET cq:job:e5")), "s");
    CHECK_STREQ(fields("cq:job:e6"), want);
    /* tried for e3, e4, e5 and e6: e3's and e5's found the key there (a 0, not an error);
     * not for e2 again (COPY of a key onto itself is an error) */
    CHECK_EQ(calls("copy"), 4);
    CHECK_EQ(cmdstat("copy", "failed_calls"), 0);
    CHECK_STREQ(LINDEX("cq:queue:q", 0), "r6");
    CHECK_EQ(LLEN("cq:queue:q"), 7);
}

/* On the server test_apply_publish_renamed restarted, with COPY renamed: CQ.ENQUEUE1's copies
 * fail, and it makes every status hash field by field, as before. */
static void test_enqueue_copy_renamed(void)
{
    DO("FLUSHALL");
    enqueue_fresh_batch(0);
}

/* SADD under another name (rename-command): CQ.ENQUEUE1's check finds no such command
 * (RedisModule_ACLCheckCommandPermissions: ENOENT) and says so, where it said the user's ACL
 * refused it; nothing is written. It restarts the server (cq's module's run only). */
static void test_enqueue_renamed_sadd(void)
{
    static const char *const renamed[] = {"--rename-command", "SADD", "cqsadd", NULL};
    redisReply *rep;

    if (!R.module) return;
    server_restart(renamed);
    rep = rconn_commandf(&R, "CQ.ENQUEUE1 cq:queues q cq:queue:q noop 1 1 cq:job:x r");
    CHECK_STREQ(rep != NULL && rep->type == REDIS_REPLY_ERROR ? rep->str : "",
                "ERR this Redis has no SADD command (renamed or disabled: rename-command), which "
                "an enqueue needs for cq:queues: nothing was enqueued");
    discard(rep);
    CHECK_EQ(integer(rconn_commandf(&R, "DBSIZE")), 0);
}

/* Whether R may use CQ.ENQUEUE1 now, asked as queue_enqueue asks it (rconn_module_append,
 * then rconn_module_read): 1 or 0, or -1 where the connection failed. */
static int enqueue_module(void)
{
    if (rconn_module_append(&R, RCONN_MODULE_ENQUEUE) != 0 ||
        rconn_module_read(&R, RCONN_MODULE_ENQUEUE) != 0)
        return -1;
    return (R.module & RCONN_MODULE_ENQUEUE) != 0;
}

/* A user whose ACL refuses CQ.ENQUEUE1 enqueues through the transactions; and where the
 * refusal comes after the connection found the module (an ACL changed under it), the chunks
 * refused go again as transactions: every job in once. */
static void test_enqueue_module_refused(void)
{
    enum { N = 2500, NA = 1200 };
    struct job **jobs;
    char err[256] = "";
    size_t i;

    if (R.module)
        DO("ACL SETUSER enq on nopass ~* &* +@all -cq.enqueue1");
    else
        DO("ACL SETUSER enq on nopass ~* &* +@all");
    CHECK_STREQ(string(rconn_commandf(&R, "AUTH enq x")), "OK");
    R.module_asked &= ~RCONN_MODULE_ENQUEUE; /* as a new connection of this user */
    R.module &= ~RCONN_MODULE_ENQUEUE;
    jobs = fresh_jobs(N, NA);
    DO("CONFIG RESETSTAT");
    CHECK_EQ(queue_enqueue(&R, &K, jobs, N, 0, err, sizeof err), 0);
    CHECK_STREQ(err, "");
    CHECK_EQ(calls("exec"), 3);
    CHECK_EQ(R.module & RCONN_MODULE_ENQUEUE, 0u);
    check_fresh_jobs(jobs, N, NA);
    for (i = 0; i < N; i++) job_free(jobs[i]);
    free(jobs);

    if (R.module) {
        DO("FLUSHALL");
        DO("ACL SETUSER enq +cq.enqueue1");
        R.module_asked &= ~RCONN_MODULE_ENQUEUE;
        CHECK_EQ(enqueue_module(), 1);
        DO("ACL SETUSER enq -cq.enqueue1");
        jobs = fresh_jobs(N, NA);
        DO("CONFIG RESETSTAT");
        CHECK_EQ(queue_enqueue(&R, &K, jobs, N, 0, err, sizeof err), 0);
        CHECK_STREQ(err, "");
        CHECK_EQ(R.module & RCONN_MODULE_ENQUEUE, 0u);
        CHECK_EQ(R.module & RCONN_MODULE_WORKER, RCONN_MODULE_WORKER); /* the rest kept */
        /* the first chunk refused, and the one sent behind it; then all three as
         * transactions, in order */
        CHECK_EQ(calls("exec"), 3);
        CHECK_HAS(string(rconn_commandf(&R, "INFO commandstats")),
                  "cmdstat_cq.enqueue1:calls=0,usec=0,usec_per_call=0.00,rejected_calls=2,");
        check_fresh_jobs(jobs, N, NA);
        for (i = 0; i < N; i++) job_free(jobs[i]);
        free(jobs);

        /* The same for one job whose queue key is of another type: the TYPE check that
         * CQ.ENQUEUE1 was to make in its place comes before the transaction, which would
         * otherwise write the status hash of a job in no queue. */
        DO("FLUSHALL");
        DO("ACL SETUSER enq +cq.enqueue1");
        R.module_asked &= ~RCONN_MODULE_ENQUEUE;
        CHECK_EQ(enqueue_module(), 1);
        DO("ACL SETUSER enq -cq.enqueue1");
        DO("SET cq:queue:qa not-a-list");
        jobs = fresh_jobs(1, 1);
        CHECK_EQ(queue_enqueue(&R, &K, jobs, 1, 0, err, sizeof err), -1);
        CHECK_HAS(err, "key cq:queue:qa is a string, not a list");
        CHECK_EQ(R.module & RCONN_MODULE_ENQUEUE, 0u);
        CHECK_EQ(integer(rconn_commandf(&R, "DBSIZE")), 1);
        job_free(jobs[0]);
        free(jobs);
        err[0] = '\0';
    }
    CHECK_STREQ(string(rconn_commandf(&R, "AUTH default x")), "OK");
    DO("ACL DELUSER enq");

    /* A question Redis cannot answer yet (here maxmemory refusing the deny-oom command before
     * the module sees it) is not kept: the next call asks again. */
    if (R.module) {
        R.module_asked &= ~RCONN_MODULE_ENQUEUE;
        R.module &= ~RCONN_MODULE_ENQUEUE;
        DO("CONFIG SET maxmemory 1");
        CHECK_EQ(enqueue_module(), 0);
        CHECK_EQ(R.module_asked & RCONN_MODULE_ENQUEUE, 0u);
        DO("CONFIG SET maxmemory 0");
        CHECK_EQ(enqueue_module(), 1);
    }

    /* CQ.ENQUEUE1 itself checks before it writes (a producer checks the types first, but
     * another client may change a key in between, or call the command directly): a queue key
     * or queues set of another type, or a user whose key patterns leave out a key it would
     * write, gets one error naming it, and nothing is written. */
    if (R.module) {
        static const struct {
            /* string_key: SET to a string first; keys: a user's one key pattern besides
             * ~cq:queues */
            const char *string_key, *keys, *want;
        } refusal[] = {
            {"cq:queue:q", NULL, "WRONGTYPE key cq:queue:q is not a list: nothing was enqueued"},
            {"cq:queues", NULL, "WRONGTYPE the queues set is not a set: nothing was enqueued"},
            {NULL, "~cq:queue:*", "NOPERM this user may not HSET cq:job:x: nothing was enqueued"},
            {NULL, "~cq:job:*",
             "NOPERM this user may not LPUSH to cq:queue:q: nothing was enqueued"},
        };
        size_t k;
        for (k = 0; k < sizeof refusal / sizeof refusal[0]; k++) {
            redisReply *rep;
            DO("FLUSHALL");
            if (refusal[k].string_key != NULL)
                DO("SET %s not-a-list-or-set", refusal[k].string_key);
            if (refusal[k].keys != NULL) {
                const char *ok;
                DO("ACL SETUSER keys reset on nopass &* +@all ~cq:queues %s", refusal[k].keys);
                ok = string(rconn_commandf(&R, "AUTH keys x"));
                REQUIRE(ok != NULL && strcmp(ok, "OK") == 0);
            }
            rep = rconn_commandf(&R, "CQ.ENQUEUE1 cq:queues q cq:queue:q noop 1 1 cq:job:x r");
            CHECK(rep != NULL && rep->type == REDIS_REPLY_ERROR);
            CHECK_STREQ(rep != NULL && rep->type == REDIS_REPLY_ERROR ? rep->str : "",
                        refusal[k].want);
            discard(rep);
            if (refusal[k].keys != NULL) {
                CHECK_STREQ(string(rconn_commandf(&R, "AUTH default x")), "OK");
                DO("ACL DELUSER keys");
            }
            CHECK_EQ(integer(rconn_commandf(&R, "EXISTS cq:job:x")), 0);
            CHECK_EQ(integer(rconn_commandf(&R, "DBSIZE")), refusal[k].string_key != NULL ? 1 : 0);
        }
    }

    /* A user that may not SADD: that is the refusal named, where it was lumped with LPUSH. */
    if (R.module) {
        redisReply *rep;
        DO("FLUSHALL");
        DO("ACL SETUSER nosadd on nopass ~* &* +@all -sadd");
        REQUIRE(as_user("nosadd") == 0);
        rep = rconn_commandf(&R, "CQ.ENQUEUE1 cq:queues q cq:queue:q noop 1 1 cq:job:x r");
        CHECK_STREQ(rep != NULL && rep->type == REDIS_REPLY_ERROR ? rep->str : "",
                    "NOPERM this user may not SADD to cq:queues: nothing was enqueued");
        discard(rep);
        CHECK_STREQ(string(rconn_commandf(&R, "AUTH default x")), "OK");
        DO("ACL DELUSER nosadd");
        CHECK_EQ(integer(rconn_commandf(&R, "DBSIZE")), 0);
    }

    /* From a script, CQ.ENQUEUE1 has no client's user to check: refused, nothing written. */
    if (R.module) {
        redisReply *rep;
        DO("FLUSHALL");
        rep = rconn_commandf(&R, "EVAL %s 0",
                             "return redis.call('cq.enqueue1', 'cq:queues', 'q', 'cq:queue:q', "
                             "'noop', '1', '1', 'cq:job:x', 'r')");
        CHECK(rep != NULL && rep->type == REDIS_REPLY_ERROR &&
              strstr(rep->str, "is for a client") != NULL);
        discard(rep);
        CHECK_EQ(integer(rconn_commandf(&R, "DBSIZE")), 0);
    }

    /* The module unloaded under a connection that found it (MODULE UNLOAD): the same, for a
     * call of several chunks (refused in the loop) and for one of a single chunk (refused
     * when its replies are read after the loop). */
    if (R.module) {
        static const struct {
            size_t n, na;
            long long execs;
        } size[] = {{N, NA, 3}, {150, 100, 1}};
        const char *path = getenv("CQ_TEST_REDIS_MODULE");
        size_t s;
        for (s = 0; s < sizeof size / sizeof size[0]; s++) {
            DO("FLUSHALL");
            R.module_asked &= ~RCONN_MODULE_ENQUEUE;
            CHECK_EQ(enqueue_module(), 1);
            CHECK_STREQ(string(rconn_commandf(&R, "MODULE UNLOAD cq")), "OK");
            jobs = fresh_jobs(size[s].n, size[s].na);
            DO("CONFIG RESETSTAT");
            CHECK_EQ(queue_enqueue(&R, &K, jobs, size[s].n, 0, err, sizeof err), 0);
            CHECK_STREQ(err, "");
            CHECK_EQ(R.module, 0u); /* none of its commands */
            CHECK_EQ(calls("exec"), size[s].execs);
            check_fresh_jobs(jobs, size[s].n, size[s].na);
            for (i = 0; i < size[s].n; i++) job_free(jobs[i]);
            free(jobs);
            CHECK_STREQ(string(rconn_commandf(&R, "MODULE LOAD %s", path)), "OK");
            rconn_close(&R); /* the next command connects, and finds the module again */
            CHECK_STREQ(string(rconn_commandf(&R, "PING")), "PONG");
            CHECK_EQ(R.module, RCONN_MODULE_WORKER);
        }
    }
    R.module_asked &= ~RCONN_MODULE_ENQUEUE;
}

/* A second connection in subscribe mode (how: SUBSCRIBE or PSUBSCRIBE), with Redis's
 * confirmation read. */
static void subscribed(struct rconn *c, const char *how, const char *channel)
{
    redisReply *rep;

    rconn_init(c, &R.url, 5.0);
    REQUIRE(rconn_connect(c) == 0);
    REQUIRE(rconn_appendf(c, "%s %s", how, channel) == 0);
    rep = rconn_read(c);
    REQUIRE(rep != NULL && rep->type == REDIS_REPLY_ARRAY);
    freeReplyObject(rep);
}

/* A batch of 32 ends or more (9 with cq's module) asks Redis who listens (INFO stats): with no channel nothing is
 * published, with up to 64 only the ends whose channel has a subscriber; a smaller batch, more
 * channels, a pattern subscription, or an ACL without INFO publish every end. TTLs are
 * PEXPIREAT from Redis's TIME, or EXPIRE when the ACL refuses TIME. */
static void test_apply_publish(void)
{
    struct rconn sub, psub;
    redisReply *rep;
    char names[70][16];
    const char *argv[71] = {"SUBSCRIBE"};
    long long ttl;
    int i;

    DO("CONFIG RESETSTAT");
    CHECK_EQ(finish_batch("a", PUB_BATCH), 0);
    CHECK_EQ(calls("publish"), 0); /* nobody listens */
    /* cq's module sets a finished job's expiry without the command (finish_direct) */
    CHECK_EQ(calls("pexpireat"), R.module ? 0 : PUB_BATCH);
    ttl = TTL("cq:job:a0");
    CHECK(ttl > 490 && ttl <= 500);
    CHECK_STREQ(HGET("cq:job:a39", "status"), "finished");

    CHECK_EQ(finish_batch("b", 8), 0);
    CHECK_EQ(calls("publish"), 8); /* too few ends to ask */

    subscribed(&sub, "SUBSCRIBE", "cq:ended:c3");
    CHECK_EQ(finish_batch("c", PUB_BATCH), 0);
    CHECK_EQ(calls("publish"), 9); /* c3's alone */
    rep = rconn_read(&sub);
    CHECK(rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3);
    if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3) {
        CHECK_STREQ(rep->element[1]->str, "cq:ended:c3");
        CHECK_STREQ(rep->element[2]->str, "finished");
    }
    if (rep != NULL) freeReplyObject(rep);

    for (i = 0; i < 70; i++) {
        snprintf(names[i], sizeof names[i], "other:%d", i);
        argv[i + 1] = names[i];
    }
    REQUIRE(rconn_append(&sub, 71, argv, NULL) == 0);
    for (i = 0; i < 70; i++) {
        rep = rconn_read(&sub);
        REQUIRE(rep != NULL);
        freeReplyObject(rep);
    }
    CHECK_EQ(finish_batch("d", PUB_BATCH), 0);
    CHECK_EQ(calls("publish"), 9 + PUB_BATCH); /* 71 channels: every end */
    rconn_close(&sub);

    subscribed(&psub, "PSUBSCRIBE", "elsewhere:*");
    CHECK_EQ(finish_batch("e", PUB_BATCH), 0);
    CHECK_EQ(calls("publish"), 9 + 2 * PUB_BATCH); /* a pattern: every end */
    rconn_close(&psub);

    /* A user whose ACL lacks INFO and TIME: EXPIRE, and every end published. */
    DO("ACL SETUSER lim on nopass ~* &* +@all -info -time");
    DO("AUTH lim x");
    CHECK_EQ(finish_batch("f", PUB_BATCH), 0);
    DO("AUTH default x");
    DO("ACL DELUSER lim");
    CHECK_EQ(calls("publish"), 9 + 3 * PUB_BATCH);
    /* The script: PEXPIREAT from TIME where it may, EXPIRE for f. cq's module reads the
     * server's clock itself, without TIME, and sets every expiry without the command. Each
     * of the 6 applies EXPIREs its counts hash. */
    CHECK_EQ(calls("pexpireat"), R.module ? 0 : 4 * PUB_BATCH + 8);
    CHECK_EQ(calls("expire"), (R.module ? 0 : PUB_BATCH) + 6);
    ttl = TTL("cq:job:f7");
    CHECK(ttl > 490 && ttl <= 500);
    CHECK_STREQ(HGET("cq:job:f7", "status"), "finished");
    CHECK_EQ(EXISTS("cq:inflight:w1:q"), 0);

    /* A SUBSCRIBE queued in a MULTI listens from its EXEC on, after an apply that found
     * nobody listening in between (cq's module keeps that answer until a SUBSCRIBE, a
     * PSUBSCRIBE or an EXEC). */
    CHECK_EQ(integer(rconn_commandf(&R, "PUBSUB NUMPAT")), 0); /* the others' gone */
    rep = rconn_commandf(&R, "PUBSUB CHANNELS");
    CHECK(rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 0);
    if (rep != NULL) freeReplyObject(rep);
    rconn_init(&sub, &R.url, 5.0);
    REQUIRE(rconn_connect(&sub) == 0);
    rep = rconn_commandf(&sub, "MULTI");
    CHECK(rep != NULL && rep->type == REDIS_REPLY_STATUS);
    if (rep != NULL) freeReplyObject(rep);
    rep = rconn_commandf(&sub, "SUBSCRIBE cq:ended:h5");
    CHECK(rep != NULL && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "QUEUED") == 0);
    if (rep != NULL) freeReplyObject(rep);
    CHECK_EQ(finish_batch("g", PUB_BATCH), 0);
    CHECK_EQ(calls("publish"), 9 + 3 * PUB_BATCH); /* queued only: nobody listens yet */
    rep = rconn_commandf(&sub, "EXEC");
    CHECK(rep != NULL && rep->type == REDIS_REPLY_ARRAY);
    if (rep != NULL) freeReplyObject(rep);
    CHECK_EQ(finish_batch("h", PUB_BATCH), 0);
    CHECK_EQ(calls("publish"), 10 + 3 * PUB_BATCH); /* h5's */
    rep = rconn_read(&sub);
    CHECK(rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3);
    if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3)
        CHECK_STREQ(rep->element[1]->str, "cq:ended:h5");
    if (rep != NULL) freeReplyObject(rep);
    rconn_close(&sub);
}

/* Whether rep is a pub/sub message on channel with that text. */
static int is_message(const redisReply *rep, const char *channel, const char *text)
{
    return rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
        rep->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(rep->element[0]->str, "message") == 0 &&
        strcmp(rep->element[1]->str, channel) == 0 && strcmp(rep->element[2]->str, text) == 0;
}

/* Take n jobs "<prefix><i>" as w1 and make their finish outcomes (t, j, o of n). 0, or -1. */
static int taken_for_finish(const char *prefix, int n, struct taken *t, struct job **j,
                            struct queue_outcome *o)
{
    const char *queues[] = {"q"};
    char err[256] = "", id[32];
    int i, got;

    memset(t, 0, (size_t)n * sizeof *t);
    for (i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%s%d", prefix, i);
        if (put(id, "q") != 0) return -1;
    }
    got = take("w1", queues, 1, (size_t)n, t, err, sizeof err);
    for (i = 0; i < got; i++) {
        j[i] = decoded(&t[i]);
        if (j[i] != NULL) j[i]->attempts = 1;
        o[i] = outcome(QUEUE_FINISHED, &t[i], j[i], "done", T0 + 1);
    }
    return got == n ? 0 : -1;
}

/* Two applies and a SUBSCRIBE between them, in one MULTI on another connection, after an
 * apply that found nobody listening: the SUBSCRIBE runs inside the EXEC, past cq's module's
 * command filter, so what the first apply finds (nobody, again) must not be kept for the
 * second, whose end of mb5 is heard. The scripts keep nothing and publish it as well. */
static void test_apply_publish_in_multi(void)
{
    struct taken ta[PUB_BATCH], tb[PUB_BATCH];
    struct job *ja[PUB_BATCH], *jb[PUB_BATCH];
    struct queue_outcome oa[PUB_BATCH], ob[PUB_BATCH];
    struct rconn sub;
    redisReply *rep;
    char err[256] = "";
    int na = 0, nb = 0, i;

    CHECK_EQ(integer(rconn_commandf(&R, "PUBSUB NUMPAT")), 0);
    rep = rconn_commandf(&R, "PUBSUB CHANNELS");
    CHECK(rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 0);
    discard(rep);
    DO("CONFIG RESETSTAT");
    CHECK_EQ(finish_batch("m", PUB_BATCH), 0); /* nobody listens: kept by the module */
    REQUIRE(taken_for_finish("ma", PUB_BATCH, ta, ja, oa) == 0);
    REQUIRE(taken_for_finish("mb", PUB_BATCH, tb, jb, ob) == 0);
    rconn_init(&sub, &R.url, 5.0);
    sub.want_module = R.want_module; /* the applies as the worker sends them */
    REQUIRE(rconn_connect(&sub) == 0);
    CHECK_EQ(sub.module, R.module);
    REQUIRE(rconn_appendf(&sub, "MULTI") == 0);
    REQUIRE(queue_apply_append(&sub, &K, "w1", oa, PUB_BATCH, &default_ttls, &na, err,
                               sizeof err) == 0);
    REQUIRE(rconn_appendf(&sub, "SUBSCRIBE cq:ended:mb5") == 0);
    REQUIRE(queue_apply_append(&sub, &K, "w1", ob, PUB_BATCH, &default_ttls, &nb, err,
                               sizeof err) == 0);
    REQUIRE(rconn_appendf(&sub, "EXEC") == 0);
    CHECK_EQ(na + nb, 2);
    for (i = 0; i < 4; i++) { /* MULTI's OK, three QUEUED */
        rep = rconn_read(&sub);
        CHECK(rep != NULL && rep->type == REDIS_REPLY_STATUS);
        discard(rep);
    }
    /* EXEC's reply: the first apply's (nothing lost) and the SUBSCRIBE's; then mb5's end,
     * which Redis writes to this subscribed client as the second apply publishes it, so
     * that it comes inside EXEC's array, and the second apply's reply after it. */
    rep = rconn_read(&sub);
    CHECK(rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3);
    if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3) {
        CHECK(rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements == 0);
        CHECK(is_message(rep->element[2], "cq:ended:mb5", "finished"));
    }
    discard(rep);
    rep = rconn_read(&sub);
    CHECK(rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 0);
    discard(rep);
    rconn_close(&sub);
    CHECK_EQ(calls("publish"), 1);
    CHECK_STREQ(HGET("cq:job:ma0", "status"), "finished");
    CHECK_STREQ(HGET("cq:job:mb39", "status"), "finished");
    CHECK_EQ(EXISTS("cq:inflight:w1:q"), 0);
    for (i = 0; i < PUB_BATCH; i++) {
        job_free(ja[i]);
        job_free(jb[i]);
    }
    free_taken(ta, PUB_BATCH);
    free_taken(tb, PUB_BATCH);
}

/* SUBSCRIBE under another name (rename-command): cq's module's command filter knows the
 * commands that make it forget "nobody listens" by name and would not see this one, so on
 * such a server the module keeps nothing (and says so in the log), and an end a client
 * waits for through the renamed command after an apply that found nobody is published all
 * the same. The scripts keep nothing anyway. It restarts the server: the cases after it run
 * there. */
static void test_apply_publish_renamed(void)
{
    static const char *const renamed[] = {
        "--rename-command", "SUBSCRIBE", "cqsub", "--rename-command", "COPY", "cqcopy", NULL};
    struct taken t[PUB_BATCH];
    struct job *j[PUB_BATCH];
    struct queue_outcome o[PUB_BATCH];
    unsigned char lost[PUB_BATCH] = {0};
    struct rconn sub;
    redisReply *rep;
    char err[256] = "";
    int i;

    server_restart(renamed);
    if (R.module) CHECK(server_log_has("is renamed: each apply asks INFO who listens"));
    /* Taken first: enqueueing is a MULTI/EXEC, which makes the module forget, too. */
    REQUIRE(taken_for_finish("s", PUB_BATCH, t, j, o) == 0);
    CHECK_EQ(finish_batch("r", PUB_BATCH), 0); /* nobody listens */
    rconn_init(&sub, &R.url, 5.0);
    REQUIRE(rconn_connect(&sub) == 0);
    rep = rconn_commandf(&sub, "cqsub cq:ended:s5");
    CHECK(rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3);
    discard(rep);
    CHECK_EQ(apply("w1", o, PUB_BATCH, &default_ttls, lost, err, sizeof err), 0);
    rep = rconn_read(&sub); /* within 5 s */
    CHECK(is_message(rep, "cq:ended:s5", "finished"));
    discard(rep);
    rconn_close(&sub);
    CHECK_STREQ(HGET("cq:job:s39", "status"), "finished");
    for (i = 0; i < PUB_BATCH; i++) job_free(j[i]);
    free_taken(t, PUB_BATCH);
}

/* Whether key is a finished status hash that expires after the result TTL (500 s). */
static int finished_500(const char *key)
{
    const char *s = HGET(key, "status");
    long long ttl = TTL(key);

    return s != NULL && strcmp(s, "finished") == 0 && ttl > 490 && ttl <= 500;
}

/* After finish_as(prefix, 3, ...) as a user who may not write job `refused`'s status hash:
 * that one is named in warn and still queued, the other two finished. */
static void check_one_refused(const char *prefix, int refused)
{
    char key[32];
    int i;

    for (i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "cq:job:%s%d", prefix, i);
        if (i != refused) {
            CHECK(finished_500(key));
            continue;
        }
        CHECK_HAS(warn, key);
        CHECK_STREQ(HGET(key, "status"), "queued");
    }
}

/* cq's module writes a finished job's status hash and its expiry through Redis's key API
 * (finish_direct) where the calling user may run HSET and PEXPIREAT on the key, and calls
 * the commands otherwise; either way the outcome is the script's. Here the cases where it must
 * take the command's path, in a batch with others that do not: a status key of another type,
 * a key the user may not write (first in the batch, and later), a key an ACL selector allows
 * only for another command, no status hash at all. */
static void test_apply_direct(void)
{
    /* A status key of another type: that hash is named, the others are written. */
    warn[0] = '\0';
    CHECK_EQ(finish_as("dw", 3, NULL, "cq:job:dw1", NULL), 0);
    CHECK_HAS(warn, "cq:job:dw1");
    CHECK_HAS(warn, "WRONGTYPE");
    CHECK(finished_500("cq:job:dw0"));
    CHECK(finished_500("cq:job:dw2"));
    CHECK_STREQ(string(rconn_commandf(&R, "GET cq:job:dw1")), "not-a-hash");

    /* A user who may write every key but one status hash: the same, wherever it is. */
    DO("ACL SETUSER part on nopass ~cq:[^j]* ~cq:job:da0 ~cq:job:da2 ~cq:job:db1 ~cq:job:db2 "
       "&* +@all");
    warn[0] = '\0';
    CHECK_EQ(finish_as("da", 3, "part", NULL, NULL), 0);
    check_one_refused("da", 1);
    warn[0] = '\0';
    DO("CONFIG RESETSTAT");
    CHECK_EQ(finish_as("db", 3, "part", NULL, NULL), 0); /* the refused one first */
    CHECK_EQ(calls("pexpireat"), R.module ? 0 : 2);      /* the module: the others direct */
    check_one_refused("db", 0);
    DO("ACL DELUSER part");

    /* A selector that allows the key, but for another command: refused as HSET refuses it. */
    DO("ACL SETUSER sel on nopass ~cq:[^j]* ~cq:job:ds0 ~cq:job:ds2 &* +@all (+get ~cq:job:ds1)");
    warn[0] = '\0';
    CHECK_EQ(finish_as("ds", 3, "sel", NULL, NULL), 0);
    check_one_refused("ds", 1);
    DO("ACL DELUSER sel");

    /* No status hash (a record pushed by hand, or its hash deleted): made whole, as a start
     * makes it, with the record's func, queue and enqueued_at. */
    CHECK_EQ(finish_as("dn", 2, NULL, NULL, "cq:job:dn1"), 0);
    CHECK(finished_500("cq:job:dn1"));
    CHECK_STREQ(HGET("cq:job:dn1", "func"), "noop");
    CHECK_STREQ(HGET("cq:job:dn1", "queue"), "q");
    CHECK_DBL_EQ(number(rconn_commandf(&R, "HGET cq:job:dn1 enqueued_at")), T0);
    CHECK(finished_500("cq:job:dn0"));
    CHECK_EQ(EXISTS("cq:inflight:w1:q"), 0);
}

/* A key prefix with '%' in it (doubled in the templates the scripts get): the finish writes
 * the status hash under the prefix as given. */
static void test_apply_prefix_percent(void)
{
    struct keys saved = K;
    struct taken t;
    struct job *j;
    struct queue_outcome o;
    unsigned char lost[1] = {0};
    char err[256] = "";
    long long ttl;

    REQUIRE(keys_init(&K, "p%s%%:", err, sizeof err) == 0);
    REQUIRE(put("pc", "q") == 0 && take_one("w1", "q", &t, &j) == 0);
    o = outcome(QUEUE_FINISHED, &t, j, "done", T0 + 1);
    CHECK_EQ(apply("w1", &o, 1, &default_ttls, lost, err, sizeof err), 0);
    CHECK_EQ(lost[0], 0);
    CHECK_STREQ(HGET("p%s%%:job:pc", "status"), "finished");
    ttl = TTL("p%s%%:job:pc");
    CHECK(ttl > 490 && ttl <= 500);
    CHECK_EQ(EXISTS("p%s%%:inflight:w1:q"), 0);
    /* Nothing under the prefix as the template spells it (each '%' doubled). */
    CHECK(first(rconn_commandf(&R, "KEYS %s", "p%%s%%%%*")) == NULL);
    CHECK(first(rconn_commandf(&R, "KEYS %s", "p%s%%:*")) != NULL);
    queue_taken_free(&t);
    job_free(j);
    K = saved;
}

/* One apply with the outcomes of two queues interleaved (qa, qb, qa, and a retry and a
 * failure among them): each outcome is applied to its own queue's in-flight list and counts,
 * the queue named again wherever it changes, and a lost one is reported at its own index. */
static void test_apply_queues(void)
{
    const char *queues[] = {"qa", "qb"};
    struct taken t[4];
    struct job *j[4];
    struct queue_outcome o[4];
    unsigned char lost[4] = {0};
    char err[256] = "";
    int i, got;

    memset(t, 0, sizeof t);
    REQUIRE(put("qa1", "qa") == 0 && put("qa2", "qa") == 0 && put("qb1", "qb") == 0 &&
            put("qb2", "qb") == 0);
    got = take("w1", queues, 2, 4, t, err, sizeof err);
    REQUIRE(got == 4);
    for (i = 0; i < 4; i++) REQUIRE((j[i] = decoded(&t[i])) != NULL);
    /* t: qa1, qa2, qb1, qb2 (the take goes queue by queue) */
    o[0] = outcome(QUEUE_FINISHED, &t[0], j[0], "a", T0 + 1);
    o[1] = outcome(QUEUE_RETRY, &t[2], j[2], "again", T0 + 1);
    o[1].retry_at = T0 + 60;
    o[2] = outcome(QUEUE_FAILED, &t[1], j[1], "broke", T0 + 1);
    o[3] = outcome(QUEUE_FINISHED, &t[3], j[3], "b", T0 + 1);
    DO("LREM cq:inflight:w1:qb 0 %s", t[3].record); /* recovered elsewhere meanwhile */
    CHECK_EQ(apply("w1", o, 4, &default_ttls, lost, err, sizeof err), 0);
    CHECK_EQ(lost[0] + lost[1] + lost[2], 0);
    CHECK_EQ(lost[3], 1);
    CHECK_STREQ(HGET("cq:job:qa1", "status"), "finished");
    CHECK_STREQ(HGET("cq:job:qa1", "result"), "a");
    CHECK_STREQ(HGET("cq:job:qa2", "status"), "failed");
    CHECK_STREQ(HGET("cq:job:qb1", "status"), "retrying");
    CHECK_STREQ(HGET("cq:job:qb2", "status"), "queued");
    CHECK_EQ(EXISTS("cq:inflight:w1:qa"), 0);
    CHECK_EQ(EXISTS("cq:inflight:w1:qb"), 0);
    for (i = 0; i < 4; i++) job_free(j[i]);
    free_taken(t, 4);
}

/* A JSON result goes to the field result_json instead of result. */
static void test_apply_json_result(void)
{
    struct taken t;
    struct job *j;
    struct queue_outcome o;
    char err[256] = "";

    REQUIRE(put("js", "q") == 0 && take_one("w1", "q", &t, &j) == 0);
    j->attempts = 1; /* a first attempt: kind J */
    o = outcome(QUEUE_FINISHED, &t, j, "{\"ok\":true,\"n\":2}", T0);
    o.json = 1;
    CHECK_EQ(apply("w1", &o, 1, &default_ttls, NULL, err, sizeof err), 0);
    CHECK_STREQ(HGET("cq:job:js", "result_json"), "{\"ok\":true,\"n\":2}");
    CHECK(HGET("cq:job:js", "result") == NULL);
    CHECK_STREQ(HGET("cq:job:js", "status"), "finished");
    queue_taken_free(&t);
    job_free(j);
}

/* Failed for good: the id into the failed set, the record kept in the status hash. */
static void test_apply_failed(void)
{
    struct taken t;
    struct job *j;
    struct queue_outcome o;
    struct queue_ttls ttls = {500, 3600};
    unsigned char lost[1] = {0};
    char err[256] = "";
    long long ttl;

    REQUIRE(put("fx", "q") == 0 && take_one("w1", "q", &t, &j) == 0);
    o = outcome(QUEUE_FAILED, &t, j, "noop: HTTP 404", T0 + 5);
    CHECK_EQ(apply("w1", &o, 1, &ttls, lost, err, sizeof err), 0);
    CHECK_EQ(lost[0], 0);
    CHECK_STREQ(HGET("cq:job:fx", "status"), "failed");
    CHECK_STREQ(HGET("cq:job:fx", "error"), "noop: HTTP 404");
    CHECK_STREQ(HGET("cq:job:fx", "record"), t.record);
    CHECK_STREQ(HGET("cq:job:fx", "queue"), "q");
    CHECK_STREQ(HGET("cq:job:fx", "worker"), "w1");
    CHECK_STREQ(HGET("cq:job:fx", "func"), "noop");
    CHECK_DBL_EQ(number(rconn_commandf(&R, "HGET cq:job:fx ended_at")), T0 + 5);
    CHECK_DBL_EQ(number(rconn_commandf(&R, "ZSCORE cq:failed fx")), T0 + 5);
    ttl = TTL("cq:job:fx");
    CHECK(ttl > 3590 && ttl <= 3600);
    CHECK_EQ(EXISTS("cq:inflight:w1:q"), 0);
    CHECK_STREQ(HGET("cq:stats", "failed"), "1");
    CHECK_STREQ(HGET("cq:worker:w1", "failed"), "1");
    queue_taken_free(&t);
    job_free(j);
}

/* Retry: a new record carrying the attempts goes to the scheduled set at retry_at; when it
 * is due, schedule_due puts it back in its queue. */
static void test_apply_retry(void)
{
    struct taken t;
    struct job *j, *back = NULL;
    struct queue_outcome o;
    unsigned char lost[1] = {0};
    char err[256] = "", *enc;
    const char *member;

    REQUIRE(put("rt", "q") == 0 && take_one("w1", "q", &t, &j) == 0);
    j->attempts = 1;
    o = outcome(QUEUE_RETRY, &t, j, "noop: HTTP 503", T0 + 6);
    o.retry_at = T0 + 36;
    CHECK_EQ(apply("w1", &o, 1, &default_ttls, lost, err, sizeof err), 0);
    CHECK_EQ(lost[0], 0);
    CHECK_EQ(EXISTS("cq:inflight:w1:q"), 0);
    CHECK_EQ(integer(rconn_commandf(&R, "ZCARD cq:scheduled")), 1);
    member = first(rconn_commandf(&R, "ZRANGE cq:scheduled 0 0"));
    CHECK_NOTNULL(member);
    enc = job_encode(j);
    CHECK_STREQ(member, enc);
    free(enc);
    CHECK(job_decode(member, strlen(member), &back, err, sizeof err) == 0);
    CHECK_NOTNULL(back);
    CHECK_EQ(back->attempts, 1);
    CHECK_STREQ(back->id, "rt");
    CHECK_DBL_EQ(number(rconn_commandf(&R, "ZSCORE cq:scheduled %s", member)), T0 + 36);
    CHECK_STREQ(HGET("cq:job:rt", "status"), "retrying");
    CHECK_STREQ(HGET("cq:job:rt", "error"), "noop: HTTP 503");
    CHECK_DBL_EQ(number(rconn_commandf(&R, "HGET cq:job:rt retry_at")), T0 + 36);
    CHECK_STREQ(HGET("cq:stats", "retried"), "1");
    CHECK(HGET("cq:worker:w1", "retried") == NULL);

    CHECK_EQ(queue_schedule_due(&R, &K, T0 + 35, 100, warn, sizeof warn, err, sizeof err), 0);
    CHECK_EQ(queue_schedule_due(&R, &K, T0 + 36, 100, warn, sizeof warn, err, sizeof err), 1);
    CHECK_HAS(LINDEX("cq:queue:q", 0), "\"attempts\":1");
    CHECK_STREQ(HGET("cq:job:rt", "status"), "queued");
    job_free(back);
    queue_taken_free(&t);
    job_free(j);
}

/* A record too broken to carry an id goes to the dead list as it was. */
static void test_apply_dead(void)
{
    const char *queues[] = {"q"};
    struct taken t;
    struct queue_outcome o;
    unsigned char lost[1] = {0};
    char err[256] = "";

    memset(&t, 0, sizeof t);
    DO("LPUSH cq:queue:q %s", "not json {");
    REQUIRE(take("w1", queues, 1, 1, &t, err, sizeof err) == 1);
    o = outcome(QUEUE_DEAD, &t, NULL, "not valid JSON", T0);
    CHECK_EQ(apply("w1", &o, 1, &default_ttls, lost, err, sizeof err), 0);
    CHECK_EQ(lost[0], 0);
    CHECK_EQ(LLEN("cq:dead"), 1);
    CHECK_STREQ(LINDEX("cq:dead", 0), "not json {");
    CHECK_EQ(EXISTS("cq:inflight:w1:q"), 0);
    CHECK_EQ(EXISTS("cq:job:"), 0);
    CHECK_STREQ(HGET("cq:stats", "dead"), "1");
    queue_taken_free(&t);
}

/* One batch of every kind: the counters in cq:stats and in the worker's hash. */
static void test_apply_counters(void)
{
    const char *queues[] = {"q"};
    struct taken t[5];
    struct job *j[5];
    struct queue_outcome o[5];
    unsigned char lost[5] = {0};
    char err[256] = "";
    int i;

    long long m0 = (long long)(time_now() / 60), m = -1, k;

    memset(t, 0, sizeof t);
    /* The queue's counts hash as a queue with ends every minute for 200 minutes left it */
    for (k = m0 - 200; k < m0; k++) DO("HSET cq:counts:q %lld 1", k);
    REQUIRE(put("c0", "q") == 0 && put("c1", "q") == 0 && put("c2", "q") == 0 &&
            put("c3", "q") == 0);
    DO("LPUSH cq:queue:q %s", "{broken");
    REQUIRE(take("w1", queues, 1, 5, t, err, sizeof err) == 5);
    for (i = 0; i < 5; i++) j[i] = decoded(&t[i]);
    CHECK(j[4] == NULL);
    o[0] = outcome(QUEUE_FINISHED, &t[0], j[0], "ok", T0);
    o[1] = outcome(QUEUE_FINISHED, &t[1], j[1], "ok", T0);
    o[2] = outcome(QUEUE_FAILED, &t[2], j[2], "no", T0);
    o[3] = outcome(QUEUE_RETRY, &t[3], j[3], "later", T0);
    o[3].retry_at = T0 + 60;
    o[4] = outcome(QUEUE_DEAD, &t[4], NULL, "not valid JSON", T0);
    CHECK_EQ(apply("w1", o, 5, &default_ttls, lost, err, sizeof err), 0);
    CHECK_EQ(memchr(lost, 1, 5) == NULL, 1);
    CHECK_STREQ(HGET("cq:stats", "processed"), "2");
    CHECK_STREQ(HGET("cq:stats", "failed"), "1");
    CHECK_STREQ(HGET("cq:stats", "retried"), "1");
    CHECK_STREQ(HGET("cq:stats", "dead"), "1");
    CHECK_STREQ(HGET("cq:worker:w1", "processed"), "2");
    CHECK_STREQ(HGET("cq:worker:w1", "failed"), "1");
    CHECK_EQ(EXISTS("cq:inflight:w1:q"), 0);
    /* Its ends went to the minute of the apply (m0, or the next if one began meanwhile), the
     * minute's first: the minutes from 122 to 61 before it are gone, the rest kept (older
     * ones than those are gone in Redis too: the hash expires 61 minutes after its last
     * ends). Before, it grew a field a minute for as long as the queue had ends. */
    for (k = m0; k <= m0 + 1 && m < 0; k++) {
        char f[32];
        snprintf(f, sizeof f, "%lld", k);
        if (HGET("cq:counts:q", f) != NULL) m = k;
    }
    REQUIRE(m >= 0);
    for (k = m0 - 200; k < m0; k++) {
        char f[32];
        int kept;
        snprintf(f, sizeof f, "%lld", k);
        kept = HGET("cq:counts:q", f) != NULL;
        if (kept != (k < m - 122 || k > m - 61)) fprintf(stderr, "  minute m%+lld\n", k - m);
        CHECK_EQ(kept, k < m - 122 || k > m - 61);
    }
    CHECK(integer(rconn_commandf(&R, "TTL cq:counts:q")) > 3600);
    free_taken(t, 5);
    for (i = 0; i < 5; i++) job_free(j[i]);
}

/* An end for a record no longer in flight here is dropped and flagged: the same batch applied
 * twice (its first reply lost), a record another worker recovered, or one of a mixed batch. */
static void test_apply_lost(void)
{
    const char *queues[] = {"q"};
    struct queue_worker_info wi = {"w1", "host", 1, "q", 4, 0, T0, "noop", ""};
    struct taken t[3];
    struct job *j[3];
    struct queue_outcome o[3];
    unsigned char lost[3];
    char err[256] = "";
    int i;

    memset(t, 0, sizeof t);
    memset(j, 0, sizeof j);
    /* Applied twice. */
    REQUIRE(put("a1", "q") == 0 && take_one("w1", "q", &t[0], &j[0]) == 0);
    o[0] = outcome(QUEUE_STARTED, &t[0], j[0], NULL, T0);
    o[1] = outcome(QUEUE_FINISHED, &t[0], j[0], "ok", T0 + 1);
    memset(lost, 0, sizeof lost);
    CHECK_EQ(apply("w1", o, 2, &default_ttls, lost, err, sizeof err), 0);
    CHECK(lost[0] == 0 && lost[1] == 0);
    CHECK_EQ(apply("w1", o, 2, &default_ttls, lost, err, sizeof err), 0);
    CHECK_EQ(lost[0], 0); /* a start is not an end */
    CHECK_EQ(lost[1], 1);
    CHECK_STREQ(HGET("cq:job:a1", "status"), "finished");
    CHECK_STREQ(HGET("cq:stats", "processed"), "1");
    queue_taken_free(&t[0]);
    job_free(j[0]);
    j[0] = NULL;

    /* Recovered by another worker while w1 was out of touch: its ends change nothing. */
    flushall();
    REQUIRE(queue_register(&R, &K, &wi, 10, NULL, err, sizeof err) == 0);
    REQUIRE(put("r1", "q") == 0 && put("r2", "q") == 0);
    REQUIRE(take("w1", queues, 1, 2, t, err, sizeof err) == 2);
    j[0] = decoded(&t[0]);
    j[1] = decoded(&t[1]);
    DO("DEL cq:worker:w1:lease");
    CHECK_EQ(queue_recover(&R, &K, NULL, warn, sizeof warn, err, sizeof err), 2);
    o[0] = outcome(QUEUE_FINISHED, &t[0], j[0], "ok", T0);
    o[1] = outcome(QUEUE_FAILED, &t[1], j[1], "no", T0);
    memset(lost, 0, sizeof lost);
    CHECK_EQ(apply("w1", o, 2, &default_ttls, lost, err, sizeof err), 0);
    CHECK(lost[0] == 1 && lost[1] == 1);
    CHECK_STREQ(HGET("cq:job:r1", "status"), "queued");
    CHECK_STREQ(HGET("cq:job:r2", "status"), "queued");
    CHECK_EQ(LLEN("cq:queue:q"), 2);
    CHECK_STREQ(HGET("cq:stats", "recovered"), "2"); /* the only counter that moved */
    CHECK(HGET("cq:stats", "processed") == NULL && HGET("cq:stats", "failed") == NULL);
    CHECK_EQ(EXISTS("cq:failed"), 0);
    CHECK_EQ(EXISTS("cq:worker:w1"), 0); /* not brought back by a counter */
    free_taken(t, 2);
    for (i = 0; i < 2; i++) {
        job_free(j[i]);
        j[i] = NULL;
    }

    /* A mixed batch: only the end whose record is gone is dropped. */
    flushall();
    REQUIRE(put("m1", "q") == 0 && put("m2", "q") == 0 && put("m3", "q") == 0);
    REQUIRE(take("w1", queues, 1, 3, t, err, sizeof err) == 3);
    for (i = 0; i < 3; i++) j[i] = decoded(&t[i]);
    DO("LREM cq:inflight:w1:q 0 %s", t[1].record);
    for (i = 0; i < 3; i++) o[i] = outcome(QUEUE_FINISHED, &t[i], j[i], "ok", T0);
    memset(lost, 0, sizeof lost);
    CHECK_EQ(apply("w1", o, 3, &default_ttls, lost, err, sizeof err), 0);
    CHECK(lost[0] == 0 && lost[1] == 1 && lost[2] == 0);
    CHECK_STREQ(HGET("cq:stats", "processed"), "2");
    CHECK_STREQ(HGET("cq:job:m2", "status"), "queued");
    free_taken(t, 3);
    for (i = 0; i < 3; i++) job_free(j[i]);
}

/* take_n: put and take n jobs (ids PREFIX1..n) by w1 from q, the first taken at the in-flight
 * list's tail; their records decoded into j. */
static int take_n(const char *prefix, int n, struct taken *t, struct job **j)
{
    const char *queues[] = {"q"};
    char id[32], err[256];
    int i;

    for (i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%s%d", prefix, i + 1);
        if (put(id, "q") != 0) return -1;
    }
    memset(t, 0, sizeof *t * (size_t)n);
    if (take("w1", queues, 1, (size_t)n, t, err, sizeof err) != n) return -1;
    for (i = 0; i < n; i++)
        if ((j[i] = decoded(&t[i])) == NULL) return -1;
    DO("CONFIG RESETSTAT");
    return 0;
}

/* After an apply of test_apply_tail: the LREMs Redis ran (with cq's module, and with the
 * script), the RPOPs (the module's; the script runs none), and what is left in w1's in-flight
 * list: the one record kept, or nothing. */
static void check_tail(long lrem_module, long lrem_script, long rpop_module,
                       const struct taken *kept)
{
    CHECK_EQ(calls("lrem"), R.module ? lrem_module : lrem_script);
    CHECK_EQ(calls("rpop"), R.module ? rpop_module : 0);
    if (kept == NULL) {
        CHECK_EQ(EXISTS("cq:inflight:w1:q"), 0);
    } else {
        CHECK_EQ(LLEN("cq:inflight:w1:q"), 1);
        CHECK_STREQ(LINDEX("cq:inflight:w1:q", 0), kept->record);
    }
}

static void drop_taken(struct taken *t, struct job **j, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        queue_taken_free(&t[i]);
        job_free(j[i]);
        j[i] = NULL;
    }
}

/* With cq's module, the ends of a run of outcomes leave the in-flight list from its tail in
 * one RPOP where their records are there, and by an LREM each where they are not (module/
 * cqmodule.c's pop_tail): either way what the apply script's LREM each, in order, leaves,
 * and the same outcomes found or dropped. The scripts' path runs the same cases, LREMs
 * only. */
static void test_apply_tail(void)
{
    struct taken t[3];
    struct job *j[3] = {NULL, NULL, NULL};
    struct queue_outcome o[3];
    unsigned char lost[3];
    char err[256] = "";

    /* All at the tail, sent out of take order: one RPOP, no LREM. */
    REQUIRE(take_n("a", 3, t, j) == 0);
    o[0] = outcome(QUEUE_FINISHED, &t[1], j[1], "ok", T0);
    o[1] = outcome(QUEUE_FINISHED, &t[0], j[0], "ok", T0);
    o[2] = outcome(QUEUE_FINISHED, &t[2], j[2], "ok", T0);
    memset(lost, 0, sizeof lost);
    CHECK_EQ(apply("w1", o, 3, &default_ttls, lost, err, sizeof err), 0);
    CHECK(lost[0] == 0 && lost[1] == 0 && lost[2] == 0);
    check_tail(0, 3, 1, NULL);
    CHECK_STREQ(HGET("cq:job:a1", "status"), "finished");
    CHECK_STREQ(HGET("cq:job:a2", "status"), "finished");
    CHECK_STREQ(HGET("cq:job:a3", "status"), "finished");
    CHECK_STREQ(HGET("cq:stats", "processed"), "3");
    drop_taken(t, j, 3);

    /* The oldest still running, at the tail: the ends behind it go by LREM, it stays. */
    flushall();
    REQUIRE(take_n("b", 3, t, j) == 0);
    o[0] = outcome(QUEUE_FINISHED, &t[1], j[1], "ok", T0);
    o[1] = outcome(QUEUE_FINISHED, &t[2], j[2], "ok", T0);
    memset(lost, 0, sizeof lost);
    CHECK_EQ(apply("w1", o, 2, &default_ttls, lost, err, sizeof err), 0);
    CHECK(lost[0] == 0 && lost[1] == 0);
    check_tail(2, 2, 0, &t[0]);
    CHECK_STREQ(HGET("cq:job:b1", "status"), "queued");
    CHECK_STREQ(HGET("cq:job:b3", "status"), "finished");
    drop_taken(t, j, 3);

    /* The oldest ended, the next running, the third ended: the first by the RPOP, the third
     * by an LREM. */
    flushall();
    REQUIRE(take_n("c", 3, t, j) == 0);
    o[0] = outcome(QUEUE_FINISHED, &t[0], j[0], "ok", T0);
    o[1] = outcome(QUEUE_FAILED, &t[2], j[2], "no", T0);
    memset(lost, 0, sizeof lost);
    CHECK_EQ(apply("w1", o, 2, &default_ttls, lost, err, sizeof err), 0);
    CHECK(lost[0] == 0 && lost[1] == 0);
    check_tail(1, 2, 1, &t[1]);
    CHECK_STREQ(HGET("cq:job:c1", "status"), "finished");
    CHECK_STREQ(HGET("cq:job:c3", "status"), "failed");
    drop_taken(t, j, 3);

    /* A start mark between two ends of the run, for the second of them: its record left with
     * the RPOP before the mark was read, but the LREMs in order would have left it there for
     * the mark, so the mark is written. */
    flushall();
    REQUIRE(take_n("d", 2, t, j) == 0);
    j[1]->attempts = 1;
    o[0] = outcome(QUEUE_FINISHED, &t[0], j[0], "ok", T0);
    o[1] = outcome(QUEUE_STARTED, &t[1], j[1], NULL, T0 + 1);
    o[2] = outcome(QUEUE_FINISHED, &t[1], j[1], "ok", T0 + 2);
    memset(lost, 0, sizeof lost);
    CHECK_EQ(apply("w1", o, 3, &default_ttls, lost, err, sizeof err), 0);
    CHECK(lost[0] == 0 && lost[1] == 0 && lost[2] == 0);
    check_tail(0, 2, 1, NULL);
    CHECK_STREQ(HGET("cq:job:d2", "status"), "finished");
    CHECK_STREQ(HGET("cq:job:d2", "worker"), "w1");
    CHECK_DBL_EQ(number(rconn_commandf(&R, "HGET cq:job:d2 started_at")), T0 + 1);
    drop_taken(t, j, 2);

    /* A record twice in the list (pushed again by hand) and three ends for it: two find a
     * copy, the third is dropped, as with three LREMs. */
    flushall();
    REQUIRE(take_n("e", 1, t, j) == 0);
    DO("LPUSH cq:inflight:w1:q %s", t[0].record);
    o[0] = o[1] = o[2] = outcome(QUEUE_FINISHED, &t[0], j[0], "ok", T0);
    memset(lost, 0, sizeof lost);
    CHECK_EQ(apply("w1", o, 3, &default_ttls, lost, err, sizeof err), 0);
    CHECK(lost[0] == 0 && lost[1] == 0 && lost[2] == 1);
    CHECK_EQ(EXISTS("cq:inflight:w1:q"), 0);
    CHECK_STREQ(HGET("cq:stats", "processed"), "2");
    drop_taken(t, j, 1);

    /* A record twice with another between them, and two ends for it: the tail's copy by the
     * RPOP, the other by an LREM; the record between stays. */
    flushall();
    REQUIRE(take_n("g", 2, t, j) == 0);
    DO("LPUSH cq:inflight:w1:q %s", t[0].record);
    o[0] = o[1] = outcome(QUEUE_FINISHED, &t[0], j[0], "ok", T0);
    memset(lost, 0, sizeof lost);
    CHECK_EQ(apply("w1", o, 2, &default_ttls, lost, err, sizeof err), 0);
    CHECK(lost[0] == 0 && lost[1] == 0);
    check_tail(1, 2, 1, &t[1]);
    drop_taken(t, j, 2);

    /* A start mark after the end of its own job, the record gone with the RPOP: not written
     * (the status stays finished); and a dead record taken off by the same RPOP. */
    flushall();
    REQUIRE(take_n("h", 2, t, j) == 0);
    o[0] = outcome(QUEUE_FINISHED, &t[0], j[0], "ok", T0);
    o[1] = outcome(QUEUE_STARTED, &t[0], j[0], NULL, T0 + 1);
    o[2] = outcome(QUEUE_DEAD, &t[1], NULL, "not valid JSON", T0);
    memset(lost, 0, sizeof lost);
    CHECK_EQ(apply("w1", o, 3, &default_ttls, lost, err, sizeof err), 0);
    CHECK(lost[0] == 0 && lost[1] == 0 && lost[2] == 0);
    check_tail(0, 2, 1, NULL);
    CHECK_STREQ(HGET("cq:job:h1", "status"), "finished");
    CHECK_STREQ(LINDEX("cq:dead", 0), t[1].record);
    drop_taken(t, j, 2);
}

/* Runs of ends for two queues, one of them twice in the batch (q, then p, then q again): each
 * run's records off its own list's tail. */
static void test_apply_tail_runs(void)
{
    const char *queues[] = {"q", "p"};
    const char *ids[] = {"q1", "q2", "q3", "q4", "p1", "p2"};
    const int order[] = {0, 1, 4, 5, 2, 3}; /* into t: q's two oldest, p's two, q's others */
    struct taken t[6];
    struct job *j[6] = {NULL};
    struct queue_outcome o[6];
    unsigned char lost[6];
    char err[256] = "";
    int i;

    for (i = 0; i < 6; i++) REQUIRE(put(ids[i], i < 4 ? "q" : "p") == 0);
    memset(t, 0, sizeof t);
    REQUIRE(take("w1", queues, 2, 6, t, err, sizeof err) == 6);
    for (i = 0; i < 6; i++) REQUIRE((j[i] = decoded(&t[i])) != NULL);
    REQUIRE(strcmp(j[4]->id, "p1") == 0); /* q's four first, then p's two */
    DO("CONFIG RESETSTAT");
    for (i = 0; i < 6; i++) o[i] = outcome(QUEUE_FINISHED, &t[order[i]], j[order[i]], "ok", T0);
    memset(lost, 0, sizeof lost);
    CHECK_EQ(apply("w1", o, 6, &default_ttls, lost, err, sizeof err), 0);
    for (i = 0; i < 6; i++) CHECK_EQ(lost[i], 0);
    CHECK_EQ(calls("lrem"), R.module ? 0 : 6);
    CHECK_EQ(calls("rpop"), R.module ? 3 : 0);
    CHECK_EQ(EXISTS("cq:inflight:w1:q"), 0);
    CHECK_EQ(EXISTS("cq:inflight:w1:p"), 0);
    CHECK_STREQ(HGET("cq:stats", "processed"), "6");
    drop_taken(t, j, 6);
}

/* An apply that stops half-way (here a user whose ACL refuses PUBLISH: the first end's
 * PUBLISH fails) leaves the records of the ends it did not reach in flight, in their order,
 * also where cq's module took them off the tail at once, and also when the user may not
 * RPUSH (the module's put-back only undoes its own RPOP): the worker's next try, by a user
 * that may publish, ends them and drops the one already ended. */
static void test_apply_tail_failure(void)
{
    struct taken t[3];
    struct job *j[3] = {NULL, NULL, NULL};
    struct queue_outcome o[3];
    unsigned char lost[3];
    char err[256] = "";
    const char *ok;
    int i;

    REQUIRE(take_n("f", 3, t, j) == 0);
    for (i = 0; i < 3; i++) o[i] = outcome(QUEUE_FINISHED, &t[i], j[i], "ok", T0);
    DO("ACL SETUSER nopub on nopass ~* &* +@all -publish -rpush");
    ok = string(rconn_commandf(&R, "AUTH nopub x"));
    REQUIRE(ok != NULL && strcmp(ok, "OK") == 0);
    memset(lost, 0, sizeof lost);
    CHECK_EQ(apply("w1", o, 3, &default_ttls, lost, err, sizeof err), -1);
    CHECK(err[0] != '\0');                      /* Redis 7.0 names the command only to the module */
    CHECK_EQ(calls("rpop"), R.module ? 1 : 0);  /* the module took all three off at once */
    CHECK_EQ(calls("rpush"), R.module ? 1 : 0); /* and put two back */
    CHECK_STREQ(string(rconn_commandf(&R, "AUTH default x")), "OK");
    CHECK_EQ(LLEN("cq:inflight:w1:q"), 2);
    CHECK_STREQ(LINDEX("cq:inflight:w1:q", -1), t[1].record);
    CHECK_STREQ(LINDEX("cq:inflight:w1:q", 0), t[2].record);
    CHECK_STREQ(HGET("cq:job:f1", "status"), "finished");
    CHECK_STREQ(HGET("cq:job:f2", "status"), "queued");
    memset(lost, 0, sizeof lost);
    CHECK_EQ(apply("w1", o, 3, &default_ttls, lost, err, sizeof err), 0);
    CHECK(lost[0] == 1 && lost[1] == 0 && lost[2] == 0);
    CHECK_EQ(EXISTS("cq:inflight:w1:q"), 0);
    CHECK_STREQ(HGET("cq:job:f2", "status"), "finished");
    CHECK_STREQ(HGET("cq:job:f3", "status"), "finished");
    DO("ACL DELUSER nopub");
    drop_taken(t, j, 3);
}

/* CQ.APPLY1's fixed arguments as a worker sends them, but for the TTLs and the minute. */
static const char *const apply1_head[15] = {
    "CQ.APPLY1",    "w1",          "cq:job:%s",    "cq:inflight:%s:%s", "cq:stats",
    "cq:worker:w1", "cq:failed",   "cq:scheduled", "cq:dead",           "500",
    "500",          "cq:ended:%s", "cq:counts:%s", "cq:cancel",         "29000000"};

/* CQ.APPLY1 by hand, as no worker sends it: the fixed arguments head (apply1_head changed),
 * then outcomes (NULL-terminated). The reply, which the caller frees. */
static redisReply *apply_raw(const char *const *head, ...)
{
    const char *argv[40];
    int argc = 15;
    va_list ap;
    const char *s;

    memcpy(argv, head, sizeof apply1_head);
    va_start(ap, head);
    while ((s = va_arg(ap, const char *)) != NULL && argc < 40) argv[argc++] = s;
    va_end(ap);
    return rconn_command(&R, argc, argv, NULL);
}

/* apply_raw with apply1_head's TTLs and minute replaced. */
#define apply1(rttl, fttl, minute, ...)                                                          \
    apply_raw((const char *const[15]){apply1_head[0], apply1_head[1], apply1_head[2],            \
                                      apply1_head[3], apply1_head[4], apply1_head[5],            \
                                      apply1_head[6], apply1_head[7], apply1_head[8], (rttl),    \
                                      (fttl), apply1_head[11], apply1_head[12], apply1_head[13], \
                                      (minute)},                                                 \
              __VA_ARGS__)

/* CQ.APPLY1's arguments as only a hand-made call sends them. A TTL below LLONG_MIN / 1000
 * seconds, result's and failure's, which cq's module multiplied by 1000 (a signed overflow,
 * undefined behaviour: a build with -ftrapv stops Redis there): a negative TTL keeps the
 * status, as any other. A minute that is no minute since the epoch (near LLONG_MIN, whose
 * 'minute - 122' overflowed; negative; not a number, which went as 0): refused, nothing
 * applied. The script takes them as numbers (Lua's are doubles): the module's case only. */
static void test_apply_extreme_args(void)
{
    static const char *const minutes[] = {"-9223372036854775808", "-1", "x", "", "9e9"};
    struct taken t[2];
    struct job *j[2] = {NULL, NULL};
    redisReply *rep;
    size_t i;

    if (!R.module) return;
    REQUIRE(take_n("x", 2, t, j) == 0);
    rep = apply1("-9223372036854775808", "-9223372036854775807", "29000000", "Q", "q", "F",
                 t[0].record, "x1", "done", "3.0", "", "X", t[1].record, "x2", "bad", "3.0", "",
                 "1", NULL);
    CHECK(rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 0);
    discard(rep);
    CHECK_STREQ(HGET("cq:job:x1", "status"), "finished");
    CHECK_EQ(TTL("cq:job:x1"), -1);
    CHECK_STREQ(HGET("cq:job:x2", "status"), "failed");
    CHECK_EQ(TTL("cq:job:x2"), -1);
    CHECK_EQ(EXISTS("cq:inflight:w1:q"), 0);
    drop_taken(t, j, 2);

    for (i = 0; i < sizeof minutes / sizeof minutes[0]; i++) {
        char id[8];
        snprintf(id, sizeof id, "y%zu", i);
        REQUIRE(put(id, "q") == 0 && take_one("w1", "q", &t[0], &j[0]) == 0);
        rep = apply1("500", "500", minutes[i], "Q", "q", "F", t[0].record, id, "done", "3.0", "",
                     NULL);
        CHECK(rep != NULL && rep->type == REDIS_REPLY_ERROR);
        if (rep != NULL && rep->type == REDIS_REPLY_ERROR) {
            char want[160];
            snprintf(want, sizeof want,
                     "apply: the minute (argument 14), '%s', is not a minute since the epoch (a "
                     "whole number from 0): no outcome applied",
                     minutes[i]);
            CHECK_STREQ(rep->str, want);
        }
        discard(rep);
        {
            char key[16];
            snprintf(key, sizeof key, "cq:job:%s", id);
            CHECK_STREQ(HGET(key, "status"), "queued");
        }
        CHECK_EQ(LLEN("cq:inflight:w1:q"), (long long)i + 1);
        queue_taken_free(&t[0]);
        job_free(j[0]);
    }
    /* the first call's two ends, in its minute, and nothing of the refused calls */
    CHECK_EQ(integer(rconn_commandf(&R, "HLEN cq:counts:q")), 1);
    CHECK_STREQ(HGET("cq:counts:q", "29000000"), "2");
}

/* A template CQ.APPLY1 cannot use (by hand: a worker's are checked before it starts): the
 * error names the template and its argument, shows it (cut at 100 bytes, a byte other than
 * printable ASCII as \xNN) and says why, where it said 'apply: a key template has no %s' or
 * 'apply: bad in-flight list template'; nothing is applied. */
static void test_apply_bad_templates(void)
{
    static const struct {
        int at;
        const char *text, *want;
    } bad[] = {
        {2, "cq:job:",
         "apply: the job key template (argument 2), 'cq:job:', has no %s for the job's id: no "
         "outcome applied"},
        {11, "cq:\nended\\",
         "apply: the ended channel template (argument 11), 'cq:\\x0aended\\x5c', has no %s for "
         "the job's id: no outcome applied"},
        {3, "cq:inflight:%d:%s",
         "apply: the in-flight list template (argument 3), 'cq:inflight:%d:%s', has '%d' at byte "
         "12: it takes the worker and the queue for its two %s, and %% for a '%': no outcome "
         "applied"},
        {3, "cq:inflight:%s:%s:%s",
         "apply: the in-flight list template (argument 3), 'cq:inflight:%s:%s:%s', has more than "
         "2 %s (one at byte 18): it takes the worker and the queue for its two %s, and %% for a "
         "'%': no outcome applied"},
        {3, "cq:inflight:%s:%s%",
         "apply: the in-flight list template (argument 3), 'cq:inflight:%s:%s%', ends in a lone "
         "'%': it takes the worker and the queue for its two %s, and %% for a '%': no outcome "
         "applied"},
        {2,
         "0123456789012345678901234567890123456789012345678901234567890123456789012345678901"
         "23456789012345678901234567890123456789",
         "apply: the job key template (argument 2), '012345678901234567890123456789012345678901"
         "2345678901234567890123456789012345678901234567890123456789...', has no %s for the "
         "job's id: no outcome applied"},
    };
    struct taken t;
    struct job *j;
    redisReply *rep;
    size_t i;

    if (!R.module) return;
    REQUIRE(put("z1", "q") == 0 && take_one("w1", "q", &t, &j) == 0);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *head[15];
        memcpy(head, apply1_head, sizeof head);
        head[bad[i].at] = bad[i].text;
        rep = apply_raw(head, "Q", "q", "F", t.record, "z1", "done", "3.0", "", NULL);
        CHECK_STREQ(rep != NULL && rep->type == REDIS_REPLY_ERROR ? rep->str : "", bad[i].want);
        discard(rep);
        CHECK_STREQ(HGET("cq:job:z1", "status"), "queued");
        CHECK_EQ(LLEN("cq:inflight:w1:q"), 1);
    }
    queue_taken_free(&t);
    job_free(j);
}

/* As the worker does it: the outcomes and the next take in one pipeline, then both reads. */
static void test_apply_then_take_pipelined(void)
{
    const char *queues[] = {"q"};
    struct taken t, more[2];
    struct job *j;
    struct queue_outcome o;
    unsigned char lost[1] = {0};
    char err[256] = "", terr[256] = "x";
    int nrep = 0;

    memset(more, 0, sizeof more);
    REQUIRE(put("p1", "q") == 0 && take_one("w1", "q", &t, &j) == 0);
    REQUIRE(put("p2", "q") == 0 && put("p3", "q") == 0);
    o = outcome(QUEUE_FINISHED, &t, j, "ok", T0);
    CHECK_EQ(queue_apply_append(&R, &K, "w1", &o, 1, &default_ttls, &nrep, err, sizeof err), 0);
    CHECK_EQ(nrep, 1);
    CHECK_EQ(queue_take_append(&R, &K, "w1", queues, 1, 2, err, sizeof err), 0);
    CHECK_EQ(queue_apply_read(&R, nrep, lost, 1, warn, sizeof warn, err, sizeof err), 0);
    CHECK_EQ(queue_take_read(&R, 2, more, NULL, warn, sizeof warn, terr, sizeof terr), 2);
    CHECK_STREQ(warn, "");
    CHECK_EQ(lost[0], 0);
    CHECK_STREQ(HGET("cq:job:p1", "status"), "finished");
    CHECK_HAS(more[0].record, "\"id\":\"p2\"");
    CHECK_EQ(LLEN("cq:inflight:w1:q"), 2);
    /* Nothing to apply: no script call, no reply to read. */
    CHECK_EQ(queue_apply_append(&R, &K, "w1", &o, 0, &default_ttls, &nrep, err, sizeof err), 0);
    CHECK_EQ(nrep, 0);
    CHECK_EQ(queue_apply_read(&R, nrep, lost, 0, warn, sizeof warn, err, sizeof err), 0);
    free_taken(more, 2);
    queue_taken_free(&t);
    job_free(j);
}

/* A destination of another type (the scheduled set here) fails the whole batch before any
 * record leaves the in-flight list; once the key is mended, the same batch applies. */
static void test_apply_wrong_type_destination(void)
{
    struct taken t;
    struct job *j;
    struct queue_outcome o;
    unsigned char lost[1] = {0};
    char err[256] = "";

    REQUIRE(put("wd", "q") == 0 && take_one("w1", "q", &t, &j) == 0);
    DO("SET cq:scheduled not-a-zset");
    o = outcome(QUEUE_RETRY, &t, j, "later", T0);
    o.retry_at = T0 + 60;
    CHECK_EQ(apply("w1", &o, 1, &default_ttls, lost, err, sizeof err), -1);
    CHECK(err[0] != '\0');
    /* The record must still be somewhere: in flight, where the outcome can be applied again
     * once the key is mended. */
    CHECK_EQ(LLEN("cq:inflight:w1:q"), 1);
    DO("DEL cq:scheduled");
    memset(lost, 0, sizeof lost);
    CHECK_EQ(apply("w1", &o, 1, &default_ttls, lost, err, sizeof err), 0);
    CHECK_EQ(lost[0], 0);
    CHECK_EQ(integer(rconn_commandf(&R, "ZCARD cq:scheduled")), 1);
    queue_taken_free(&t);
    job_free(j);
}

/* A command the apply runs unconditionally fails (the cancel set is of another type): the
 * apply fails with Redis's error and the record stays in flight, as the script, which stops
 * there, leaves it; so does the take, before it moves anything. The same with cq's module. */
static void test_apply_cancel_wrong_type(void)
{
    const char *queues[] = {"q"};
    struct taken t, t2;
    struct job *j;
    struct queue_outcome o;
    unsigned char lost[1] = {0};
    char err[256] = "";

    REQUIRE(put("cw", "q") == 0 && take_one("w1", "q", &t, &j) == 0);
    REQUIRE(put("cw2", "q") == 0);
    DO("SET cq:cancel not-a-set");
    o = outcome(QUEUE_FINISHED, &t, j, "r", T0);
    CHECK_EQ(apply("w1", &o, 1, &default_ttls, lost, err, sizeof err), -1);
    CHECK_HAS(err, "WRONGTYPE");
    CHECK_EQ(LLEN("cq:inflight:w1:q"), 1);
    CHECK_STREQ(HGET("cq:job:cw", "status"), "queued");
    memset(&t2, 0, sizeof t2);
    CHECK_EQ(take("w1", queues, 1, 1, &t2, err, sizeof err), -1);
    CHECK_HAS(err, "WRONGTYPE");
    CHECK_EQ(LLEN("cq:queue:q"), 1);
    DO("DEL cq:cancel");
    CHECK_EQ(apply("w1", &o, 1, &default_ttls, lost, err, sizeof err), 0);
    CHECK_STREQ(HGET("cq:job:cw", "status"), "finished");
    queue_taken_free(&t);
    job_free(j);
}

/* cqctl cancel of a job a worker has taken whose status is still queued (its start mark not
 * applied yet: START_MARK_S, or a job shorter than that) says it canceled, publishes it, and
 * writes status canceled, as admin_cancel does it here. The worker's start mark then writes
 * nothing, and its end, whatever it came to, records the cancel's: status canceled, counted
 * canceled, the record out of the in-flight list and the id out of the cancel set, nothing
 * published again, flagged QUEUE_LOST_CANCELED for the worker's log. Before, the start mark
 * wrote started over canceled and the end finished (h20's review). A job whose cancel was only
 * asked (it was started) still ends as its worker says. The same with cq's module. */
static void test_apply_canceled_while_taken(void)
{
    const char *queues[] = {"q"};
    static const char *const ids[] = {"cf", "cx", "cr", "cc", "ok"};
    struct admin a;
    struct admin_cancel out;
    struct taken t[5], ts;
    struct job *j[5] = {NULL}, *js;
    struct queue_outcome o[5], os;
    unsigned char lost[5] = {0};
    char url[256], err[512] = "", key[64];
    long long counted = 0;
    redisReply *rep;
    size_t i;

    snprintf(url, sizeof url, "unix://%s", sock_path);
    REQUIRE(admin_init(&a, url, NULL, err, sizeof err) == 0);
    REQUIRE(admin_connect(&a, err, sizeof err) == 0);

    /* Its start mark: status stays canceled, the record in flight and the id in the cancel
     * set, where the worker's check of its running jobs (check_cancels) finds it and stops the
     * handler; then that canceled end. */
    REQUIRE(put("cs", "q") == 0 && take_one("w1", "q", &ts, &js) == 0);
    js->attempts = 1;
    CHECK_EQ(admin_cancel(&a, "cs", &out, err, sizeof err), ADMIN_CANCELED);
    CHECK_STREQ(out.was, "queued");
    CHECK_STREQ(HGET("cq:job:cs", "status"), "canceled");
    DO("CONFIG RESETSTAT");
    os = outcome(QUEUE_STARTED, &ts, js, NULL, T0 + 1);
    CHECK_EQ(apply("w1", &os, 1, &default_ttls, lost, err, sizeof err), 0);
    CHECK_EQ(lost[0], 0);
    CHECK_STREQ(HGET("cq:job:cs", "status"), "canceled");
    CHECK(HGET("cq:job:cs", "started_at") == NULL);
    CHECK(TTL("cq:job:cs") > 0); /* the cancel's expiry kept (a start mark persists) */
    CHECK_EQ(LLEN("cq:inflight:w1:q"), 1);
    CHECK_EQ(integer(rconn_commandf(&R, "SISMEMBER cq:cancel cs")), 1);
    os = outcome(QUEUE_CANCELED, &ts, js, "canceled", T0 + 2);
    CHECK_EQ(apply("w1", &os, 1, &default_ttls, lost, err, sizeof err), 0);
    CHECK_EQ(lost[0], 0); /* a cancel it was */
    CHECK_STREQ(HGET("cq:job:cs", "status"), "canceled");
    CHECK_EQ(LLEN("cq:inflight:w1:q"), 0);
    CHECK_EQ(integer(rconn_commandf(&R, "SISMEMBER cq:cancel cs")), 0);
    CHECK_STREQ(HGET("cq:stats", "canceled"), "1");
    CHECK_EQ(calls("publish"), 0);

    /* A finish, a failure, a retry and the worker's own cancel of four jobs canceled after
     * their take, and a finish of one not canceled, in one batch. */
    for (i = 0; i < 5; i++) REQUIRE(put(ids[i], "q") == 0);
    REQUIRE(take("w1", queues, 1, 5, t, err, sizeof err) == 5);
    for (i = 0; i < 5; i++) {
        j[i] = decoded(&t[i]);
        REQUIRE(j[i] != NULL && strcmp(j[i]->id, ids[i]) == 0);
        j[i]->attempts = 1;
        if (i < 4) CHECK_EQ(admin_cancel(&a, ids[i], &out, err, sizeof err), ADMIN_CANCELED);
    }
    o[0] = outcome(QUEUE_FINISHED, &t[0], j[0], "done", T0 + 3);
    o[1] = outcome(QUEUE_FAILED, &t[1], j[1], "noop: bad", T0 + 3);
    o[2] = outcome(QUEUE_RETRY, &t[2], j[2], "noop: HTTP 503", T0 + 3);
    o[2].retry_at = T0 + 30;
    o[3] = outcome(QUEUE_CANCELED, &t[3], j[3], "canceled", T0 + 3);
    o[4] = outcome(QUEUE_FINISHED, &t[4], j[4], "done", T0 + 3);
    for (i = 0; i < 5; i++) {
        o[i].with_start = 1;
        o[i].started_at = T0 + 2.5;
    }
    DO("CONFIG RESETSTAT");
    memset(lost, 0, sizeof lost);
    CHECK_EQ(apply("w1", o, 5, &default_ttls, lost, err, sizeof err), 0);
    if (err[0] != '\0') fprintf(stderr, "   apply: %s\n", err);
    for (i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "cq:job:%s", ids[i]);
        CHECK_STREQ(HGET(key, "status"), "canceled");
        CHECK_STREQ(HGET(key, "worker"), "w1"); /* it was taken, and ran */
        CHECK(HGET(key, "result") == NULL && HGET(key, "error") == NULL);
        CHECK(HGET(key, "retry_at") == NULL);
        CHECK(TTL(key) > 500); /* a canceled status's, not a finished one's */
        CHECK_EQ(integer(rconn_commandf(&R, "SISMEMBER cq:cancel %s", ids[i])), 0);
        CHECK_EQ(lost[i], i < 3 ? QUEUE_LOST_CANCELED : 0);
    }
    CHECK_STREQ(HGET("cq:job:ok", "status"), "finished");
    CHECK_EQ(lost[4], 0);
    CHECK_EQ(LLEN("cq:inflight:w1:q"), 0);
    CHECK_EQ(integer(rconn_commandf(&R, "ZCARD cq:scheduled")), 0);
    CHECK_EQ(integer(rconn_commandf(&R, "ZSCORE cq:failed cx")), NO_INT);
    CHECK_EQ(integer(rconn_commandf(&R, "SCARD cq:cancel")), 0);
    CHECK_STREQ(HGET("cq:stats", "canceled"), "5");
    CHECK_STREQ(HGET("cq:stats", "processed"), "1");
    CHECK(HGET("cq:stats", "failed") == NULL && HGET("cq:stats", "retried") == NULL);
    rep = rconn_commandf(&R, "HVALS cq:counts:q");
    for (i = 0; rep != NULL && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++)
        counted += strtoll(rep->element[i]->str, NULL, 10);
    if (rep != NULL) freeReplyObject(rep);
    CHECK_EQ(counted, 6);          /* every end counted in its minute */
    CHECK_EQ(calls("publish"), 1); /* ok's: the others' cancel published theirs */
    for (i = 0; i < 5; i++) job_free(j[i]);
    free_taken(t, 5);

    /* A cancel only asked of a started job (its worker is gone: no lease): the end its worker
     * records stands, as before. */
    REQUIRE(put("as", "q") == 0 && take_one("w1", "q", &t[0], &j[0]) == 0);
    j[0]->attempts = 1;
    o[0] = outcome(QUEUE_STARTED, &t[0], j[0], NULL, T0 + 1);
    CHECK_EQ(apply("w1", o, 1, &default_ttls, lost, err, sizeof err), 0);
    CHECK_STREQ(HGET("cq:job:as", "status"), "started");
    CHECK_EQ(admin_cancel(&a, "as", &out, err, sizeof err), ADMIN_CANCEL_ORPHAN);
    CHECK_STREQ(HGET("cq:job:as", "status"), "started");
    o[0] = outcome(QUEUE_FINISHED, &t[0], j[0], "done", T0 + 2);
    memset(lost, 0, sizeof lost);
    CHECK_EQ(apply("w1", o, 1, &default_ttls, lost, err, sizeof err), 0);
    CHECK_EQ(lost[0], 0);
    CHECK_STREQ(HGET("cq:job:as", "status"), "finished");
    CHECK_EQ(integer(rconn_commandf(&R, "SISMEMBER cq:cancel as")), 0);
    job_free(j[0]);
    free_taken(t, 1);
    queue_taken_free(&ts);
    job_free(js);
    admin_close(&a);
}

/* At maxmemory (noeviction) jobs are still taken and ended: what ends them is what frees
 * memory. The same with cq's module, whose commands are not refused there either. */
static void test_maxmemory(void)
{
    struct taken t;
    struct job *j;
    struct queue_outcome o;
    unsigned char lost[1] = {0};
    char err[256] = "";

    REQUIRE(put("mm", "q") == 0);
    DO("CONFIG SET maxmemory 1");
    CHECK_EQ(take_one("w1", "q", &t, &j), 0);
    o = outcome(QUEUE_FINISHED, &t, j, "r", T0);
    CHECK_EQ(apply("w1", &o, 1, &default_ttls, lost, err, sizeof err), 0);
    CHECK_EQ(lost[0], 0);
    CHECK_EQ(LLEN("cq:inflight:w1:q"), 0);
    DO("CONFIG SET maxmemory 0");
    queue_taken_free(&t);
    job_free(j);
}

/* ---- schedule_due -------------------------------------------------------------------- */

static void test_schedule_due(void)
{
    struct job *a, *b, *c;
    double now = whole_now();
    char err[256] = "x", *enc;

    REQUIRE(put("dx", "q") == 0); /* already queued: stays at the head */
    a = mkjob("da", "q");
    b = mkjob("db", "q");
    c = mkjob("dc", "q");
    CHECK_EQ(queue_enqueue(&R, &K, &a, 1, now + 1000, err, sizeof err), 0);
    CHECK_EQ(queue_enqueue(&R, &K, &b, 1, now + 1001, err, sizeof err), 0);
    CHECK_EQ(queue_enqueue(&R, &K, &c, 1, now + 5000, err, sizeof err), 0);
    /* A record that names no queue goes to "default". */
    DO("ZADD cq:scheduled %.6f %s", now + 10, "{\"id\":\"dn\",\"func\":\"noop\"}");

    CHECK_EQ(queue_schedule_due(&R, &K, now + 999, 100, warn, sizeof warn, err, sizeof err), 1);
    CHECK_STREQ(warn, "");
    CHECK_STREQ(LINDEX("cq:queue:default", 0), "{\"id\":\"dn\",\"func\":\"noop\"}");
    CHECK_STREQ(HGET("cq:job:dn", "status"), "queued");
    CHECK_EQ(integer(rconn_commandf(&R, "SISMEMBER cq:queues default")), 1);

    CHECK_EQ(queue_schedule_due(&R, &K, now + 1001, 100, warn, sizeof warn, err, sizeof err), 2);
    CHECK_EQ(LLEN("cq:queue:q"), 3);
    /* To the tail, in due order: dx is still next, then da, then db. */
    CHECK_HAS(LINDEX("cq:queue:q", -1), "\"id\":\"dx\"");
    enc = job_encode(a);
    CHECK_STREQ(LINDEX("cq:queue:q", 1), enc);
    free(enc);
    enc = job_encode(b);
    CHECK_STREQ(LINDEX("cq:queue:q", 0), enc);
    free(enc);
    CHECK_STREQ(HGET("cq:job:da", "status"), "queued");
    CHECK_STREQ(HGET("cq:job:db", "status"), "queued");
    /* Not due yet: stays. */
    CHECK_STREQ(HGET("cq:job:dc", "status"), "scheduled");
    CHECK_EQ(integer(rconn_commandf(&R, "ZCARD cq:scheduled")), 1);
    CHECK_EQ(queue_schedule_due(&R, &K, now + 4999.75, 100, warn, sizeof warn, err, sizeof err), 0);
    CHECK_EQ(queue_schedule_due(&R, &K, now + 5000, 100, warn, sizeof warn, err, sizeof err), 1);
    CHECK_EQ(EXISTS("cq:scheduled"), 0);
    job_free(a);
    job_free(b);
    job_free(c);
}

static void test_schedule_due_limit(void)
{
    struct job *jobs[5];
    char err[256] = "", id[16];
    int i;

    for (i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "l%d", i);
        jobs[i] = mkjob(id, "q");
    }
    CHECK_EQ(queue_enqueue(&R, &K, jobs, 5, time_now() + 100, err, sizeof err), 0);
    CHECK_EQ(queue_schedule_due(&R, &K, time_now() + 200, 2, warn, sizeof warn, err, sizeof err),
             2);
    CHECK_EQ(integer(rconn_commandf(&R, "ZCARD cq:scheduled")), 3);
    CHECK_EQ(LLEN("cq:queue:q"), 2);
    CHECK_EQ(queue_schedule_due(&R, &K, time_now() + 200, 2, warn, sizeof warn, err, sizeof err),
             2);
    CHECK_EQ(queue_schedule_due(&R, &K, time_now() + 200, 2, warn, sizeof warn, err, sizeof err),
             1);
    CHECK_EQ(queue_schedule_due(&R, &K, time_now() + 200, 2, warn, sizeof warn, err, sizeof err),
             0);
    CHECK_EQ(LLEN("cq:queue:q"), 5);
    for (i = 0; i < 5; i++) job_free(jobs[i]);
}

/* A record whose queue key is of another type stays scheduled; the queue is named. */
static void test_schedule_due_wrong_type(void)
{
    struct job *bad = mkjob("sb", "bad"), *good = mkjob("sg", "good");
    double now = time_now();
    char err[256] = "";

    CHECK_EQ(queue_enqueue(&R, &K, &bad, 1, now + 100, err, sizeof err), 0);
    CHECK_EQ(queue_enqueue(&R, &K, &good, 1, now + 100, err, sizeof err), 0);
    DO("SET cq:queue:bad not-a-list");
    CHECK_EQ(queue_schedule_due(&R, &K, now + 200, 100, warn, sizeof warn, err, sizeof err), 1);
    CHECK_HAS(warn, "queue 'bad' is not a list");
    CHECK_EQ(LLEN("cq:queue:good"), 1);
    CHECK_STREQ(HGET("cq:job:sb", "status"), "scheduled");
    CHECK_EQ(integer(rconn_commandf(&R, "ZCARD cq:scheduled")), 1);
    CHECK_STREQ(string(rconn_commandf(&R, "GET cq:queue:bad")), "not-a-list");

    /* Mended: it moves, and err is emptied. */
    DO("DEL cq:queue:bad");
    CHECK_EQ(queue_schedule_due(&R, &K, now + 200, 100, warn, sizeof warn, err, sizeof err), 1);
    CHECK_STREQ(err, "");
    CHECK_STREQ(HGET("cq:job:sb", "status"), "queued");
    job_free(bad);
    job_free(good);
}

/* ---- recover ------------------------------------------------------------------------- */

static void test_recover_dead_worker(void)
{
    const char *queues[] = {"high", "low"}, *low[] = {"low"};
    struct queue_worker_info w1 = {"w1", "host", 1, "high,low", 4, 0, T0, "noop", ""};
    struct queue_worker_info w2 = {"w2", "host", 2, "low", 4, 0, T0, "noop", ""};
    struct queue_worker_info w3 = {"w3", "host", 3, "high", 4, 0, T0, "noop", ""};
    struct taken t[4], again[4];
    char err[256] = "x";
    int n, i;

    memset(t, 0, sizeof t);
    memset(again, 0, sizeof again);
    REQUIRE(queue_register(&R, &K, &w1, 10, NULL, err, sizeof err) == 0);
    REQUIRE(queue_register(&R, &K, &w2, 10, NULL, err, sizeof err) == 0);
    REQUIRE(queue_register(&R, &K, &w3, 10, NULL, err, sizeof err) == 0);
    REQUIRE(put("h1", "high") == 0 && put("h2", "high") == 0 && put("l1", "low") == 0 &&
            put("l2", "low") == 0 && put("l3", "low") == 0 && put("h3", "high") == 0);
    REQUIRE(take("w1", queues, 2, 3, t, err, sizeof err) == 3); /* h1 h2 h3 */
    free_taken(t, 3);
    REQUIRE(take("w2", low, 1, 1, t, err, sizeof err) == 1); /* l1, w2 stays alive */
    free_taken(t, 1);
    REQUIRE(take("w1", low, 1, 1, t, err, sizeof err) == 1); /* l2 */
    free_taken(t, 1);
    REQUIRE(take("w3", queues, 1, 0, t, err, sizeof err) == 0);

    DO("HSET cq:job:h1 status started started_at 5 worker w1");
    /* w1's lease is gone (DEL); w3's expires (a short one). */
    DO("DEL cq:worker:w1:lease");
    DO("PEXPIRE cq:worker:w3:lease 1");
    sleep_ms(5);
    n = (int)queue_recover(&R, &K, NULL, warn, sizeof warn, err, sizeof err);
    CHECK_EQ(n, 4);
    CHECK_STREQ(warn, "");
    CHECK_EQ(EXISTS("cq:inflight:w1:high"), 0);
    CHECK_EQ(EXISTS("cq:inflight:w1:low"), 0);
    CHECK_EQ(integer(rconn_commandf(&R, "SISMEMBER cq:workers w1")), 0);
    CHECK_EQ(integer(rconn_commandf(&R, "SISMEMBER cq:workers w3")), 0);
    CHECK_EQ(EXISTS("cq:worker:w1"), 0);
    CHECK_EQ(EXISTS("cq:worker:w3"), 0);
    /* The live worker keeps its job and its registration. */
    CHECK_EQ(LLEN("cq:inflight:w2:low"), 1);
    CHECK_EQ(integer(rconn_commandf(&R, "SISMEMBER cq:workers w2")), 1);
    /* Back at the head, in their old order, queued, counted. */
    CHECK_STREQ(HGET("cq:job:h1", "status"), "queued");
    CHECK(HGET("cq:job:h1", "started_at") == NULL); /* no run of it now: none shown */
    CHECK(HGET("cq:job:h1", "worker") == NULL);
    CHECK_STREQ(HGET("cq:job:h1", "recovered"), "1");
    CHECK_STREQ(HGET("cq:job:l2", "recovered"), "1");
    CHECK(HGET("cq:job:l1", "recovered") == NULL);
    CHECK_STREQ(HGET("cq:stats", "recovered"), "4");
    n = take("w4", queues, 2, 4, again, err, sizeof err);
    CHECK_EQ(n, 4);
    REQUIRE(n == 4);
    CHECK_HAS(again[0].record, "\"id\":\"h1\"");
    CHECK_HAS(again[1].record, "\"id\":\"h2\"");
    CHECK_HAS(again[2].record, "\"id\":\"h3\"");
    CHECK_HAS(again[3].record, "\"id\":\"l2\""); /* ahead of l3, which was never taken */
    free_taken(again, 4);
    for (i = 0; i < 2; i++)
        CHECK_EQ(queue_recover(&R, &K, NULL, warn, sizeof warn, err, sizeof err), 0);
}

/* A dead worker's records go back with their recovery counted in them, as strings: the
 * rest of each record byte for byte (its members' order, enqueued_at's digits), the
 * top-level "recovered" and not one among the args; a record whose count no worker would
 * read, or with no id, moves as it was. A worker's own hand-back (only_wid) counts nothing. */
static void test_recover_counts_in_record(void)
{
    static const char *const recs[][2] = {
        {"{\"id\":\"ca\",\"func\":\"noop\",\"args\":[],\"enqueued_at\":1767225600.123456,"
         "\"timeout\":0.1}",
         "{\"id\":\"ca\",\"func\":\"noop\",\"args\":[],\"enqueued_at\":1767225600.123456,"
         "\"timeout\":0.1,\"recovered\":1}"},
        {"{\"id\":\"cb\",\"func\":\"noop\",\"args\":[{\"recovered\":2}],\"recovered\":2,"
         "\"handoffs\":1}",
         "{\"id\":\"cb\",\"func\":\"noop\",\"args\":[{\"recovered\":2}],\"recovered\":3,"
         "\"handoffs\":1}"},
        {"{\"id\":\"cc\", \"func\":\"noop\", \"args\":[], \"recovered\" : 9 }\n",
         "{\"id\":\"cc\", \"func\":\"noop\", \"args\":[], \"recovered\" : 10 }\n"},
        {"{\"id\":\"cd\",\"func\":\"noop\",\"args\":[],\"recovered\":null}",
         "{\"id\":\"cd\",\"func\":\"noop\",\"args\":[],\"recovered\":1}"},
        {"{\"id\":\"ce\",\"func\":\"noop\",\"args\":[],\"recovered\":\"x\"}",
         "{\"id\":\"ce\",\"func\":\"noop\",\"args\":[],\"recovered\":\"x\"}"},
        {"{\"id\":\"cf\",\"func\":\"noop\",\"args\":[],\"recovered\":-1}",
         "{\"id\":\"cf\",\"func\":\"noop\",\"args\":[],\"recovered\":-1}"},
        {"{\"id\":\"bad id!\",\"func\":\"noop\",\"args\":[]}",
         "{\"id\":\"bad id!\",\"func\":\"noop\",\"args\":[]}"},
        {"not json}", "not json}"},
    };
    struct queue_worker_info w1 = {"w1", "host", 1, "q", 4, 0, T0, "noop", ""};
    char err[256] = "";
    size_t i, n = sizeof recs / sizeof recs[0];

    REQUIRE(queue_register(&R, &K, &w1, 10, NULL, err, sizeof err) == 0);
    for (i = 0; i < n; i++) DO("LPUSH cq:inflight:w1:q %s", recs[i][0]);
    DO("DEL cq:worker:w1:lease");
    CHECK_EQ(queue_recover(&R, &K, NULL, warn, sizeof warn, err, sizeof err), (int)n);
    CHECK_EQ(LLEN("cq:queue:q"), (int)n);
    /* The oldest (first pushed) at the head, each rewritten in place. */
    for (i = 0; i < n; i++) CHECK_STREQ(LINDEX("cq:queue:q", -1 - (int)i), recs[i][1]);
    CHECK_STREQ(HGET("cq:job:ca", "recovered"), "1"); /* the hash counts as before */

    /* Again: counted on from the record's count. */
    REQUIRE(queue_register(&R, &K, &w1, 10, NULL, err, sizeof err) == 0);
    DO("DEL cq:queue:q");
    DO("LPUSH cq:inflight:w1:q %s", recs[0][1]);
    DO("DEL cq:worker:w1:lease");
    CHECK_EQ(queue_recover(&R, &K, NULL, warn, sizeof warn, err, sizeof err), 1);
    CHECK_STREQ(LINDEX("cq:queue:q", 0),
                "{\"id\":\"ca\",\"func\":\"noop\",\"args\":[],\"enqueued_at\":1767225600.123456,"
                "\"timeout\":0.1,\"recovered\":2}");

    /* A worker's own hand-back: the record as it was. */
    REQUIRE(queue_register(&R, &K, &w1, 10, NULL, err, sizeof err) == 0);
    DO("DEL cq:queue:q");
    DO("LPUSH cq:inflight:w1:q %s", recs[0][0]);
    CHECK_EQ(queue_recover(&R, &K, "w1", warn, sizeof warn, err, sizeof err), 1);
    CHECK_STREQ(LINDEX("cq:queue:q", 0), recs[0][0]);
}

/* With only_wid: one live worker hands back what it holds and deregisters; not a recovery. */
static void test_recover_only_wid(void)
{
    const char *queues[] = {"q"};
    struct queue_worker_info w1 = {"w1", "host", 1, "q", 4, 0, T0, "noop", ""};
    struct queue_worker_info w2 = {"w2", "host", 2, "q", 4, 0, T0, "noop", ""};
    struct taken t[2];
    char err[256] = "x";

    memset(t, 0, sizeof t);
    REQUIRE(queue_register(&R, &K, &w1, 10, NULL, err, sizeof err) == 0);
    REQUIRE(queue_register(&R, &K, &w2, 10, NULL, err, sizeof err) == 0);
    REQUIRE(put("o1", "q") == 0 && put("o2", "q") == 0 && put("o3", "q") == 0);
    REQUIRE(take("w1", queues, 1, 2, t, err, sizeof err) == 2);
    free_taken(t, 2);
    REQUIRE(take("w2", queues, 1, 1, t, err, sizeof err) == 1);
    free_taken(t, 1);
    DO("DEL cq:worker:w2:lease"); /* dead, but not the one asked for */
    DO("HSET cq:job:o1 status started started_at 5 worker w1");

    CHECK_EQ(queue_recover(&R, &K, "w1", warn, sizeof warn, err, sizeof err), 2);
    CHECK_STREQ(warn, "");
    CHECK_EQ(LLEN("cq:queue:q"), 2);
    CHECK_HAS(LINDEX("cq:queue:q", -1), "\"id\":\"o1\"");
    CHECK_EQ(EXISTS("cq:inflight:w1:q"), 0);
    CHECK_STREQ(HGET("cq:job:o1", "status"), "queued");
    CHECK(HGET("cq:job:o1", "started_at") == NULL); /* handed back: no run of it shown */
    CHECK(HGET("cq:job:o1", "worker") == NULL);
    CHECK(HGET("cq:job:o1", "recovered") == NULL);
    CHECK(HGET("cq:stats", "recovered") == NULL);
    CHECK_EQ(integer(rconn_commandf(&R, "SISMEMBER cq:workers w1")), 0);
    CHECK_EQ(EXISTS("cq:worker:w1"), 0);
    CHECK_EQ(EXISTS("cq:worker:w1:lease"), 0);
    CHECK_EQ(LLEN("cq:inflight:w2:q"), 1);
    CHECK_EQ(integer(rconn_commandf(&R, "SISMEMBER cq:workers w2")), 1);
}

/* A dead worker with a queue whose key is of another type keeps that in-flight list and its
 * registration; its other queues are recovered, and err names the queue. */
static void test_recover_wrong_type(void)
{
    const char *queues[] = {"good", "bad"};
    struct queue_worker_info w1 = {"w1", "host", 1, "good,bad", 4, 0, T0, "noop", ""};
    struct taken t[2];
    char err[256] = "";

    memset(t, 0, sizeof t);
    REQUIRE(queue_register(&R, &K, &w1, 10, NULL, err, sizeof err) == 0);
    REQUIRE(put("rg", "good") == 0 && put("rb", "bad") == 0);
    REQUIRE(take("w1", queues, 2, 2, t, err, sizeof err) == 2);
    free_taken(t, 2);
    DO("SET cq:queue:bad not-a-list");
    DO("DEL cq:worker:w1:lease");
    DO("HSET cq:job:rg status started");
    DO("HSET cq:job:rb status started");

    CHECK_EQ(queue_recover(&R, &K, NULL, warn, sizeof warn, err, sizeof err), 1);
    CHECK_HAS(warn, "queue 'bad' is not a list");
    CHECK_EQ(LLEN("cq:queue:good"), 1);
    CHECK_EQ(EXISTS("cq:inflight:w1:good"), 0);
    CHECK_EQ(LLEN("cq:inflight:w1:bad"), 1);
    CHECK_STREQ(string(rconn_commandf(&R, "GET cq:queue:bad")), "not-a-list");
    CHECK_EQ(integer(rconn_commandf(&R, "SISMEMBER cq:workers w1")), 1);
    CHECK_STREQ(HGET("cq:job:rg", "status"), "queued");
    CHECK_STREQ(HGET("cq:job:rb", "status"), "started"); /* still in flight */
    CHECK(HGET("cq:job:rb", "recovered") == NULL);
    CHECK_STREQ(HGET("cq:stats", "recovered"), "1");

    /* Mended: the rest comes back and the worker goes. */
    DO("DEL cq:queue:bad");
    CHECK_EQ(queue_recover(&R, &K, NULL, warn, sizeof warn, err, sizeof err), 1);
    CHECK_STREQ(err, "");
    CHECK_EQ(LLEN("cq:queue:bad"), 1);
    CHECK_STREQ(HGET("cq:job:rb", "status"), "queued");
    CHECK_STREQ(HGET("cq:job:rb", "recovered"), "1");
    CHECK_EQ(integer(rconn_commandf(&R, "SISMEMBER cq:workers w1")), 0);
}

/* A user whose ACL refuses SREM and SISMEMBER, while the cancel set is not empty: an end is
 * written all the same (no cancel read), where the apply script stopped at the SREM with the
 * record already out of flight and the status never written (cq's module wrote it). */
static void test_apply_cancel_set_refused(void)
{
    struct taken ts;
    struct job *js = NULL;
    struct queue_outcome os;
    unsigned char lost[1] = {0};
    char err[512] = "";

    REQUIRE(put("sr1", "q") == 0 && take_one("w1", "q", &ts, &js) == 0);
    js->attempts = 1;
    DO("SADD cq:cancel someone-else");
    DO("ACL SETUSER nosrem on nopass ~* &* +@all -srem -sismember");
    REQUIRE(as_user("nosrem") == 0);
    os = outcome(QUEUE_FINISHED, &ts, js, "done", T0 + 1);
    (void)apply("w1", &os, 1, &default_ttls, lost, err, sizeof err);
    CHECK_STREQ(string(rconn_commandf(&R, "AUTH default x")), "OK");
    CHECK_STREQ(HGET("cq:job:sr1", "status"), "finished");
    CHECK_EQ(LLEN("cq:inflight:w1:q"), 0);
    DO("ACL DELUSER nosrem");
    DO("DEL cq:cancel cq:job:sr1");
    job_free(js);
    free_taken(&ts, 1);
}

/* A job that a cancel ended while a worker held it (canceled, its id in the cancel set) goes
 * back to its queue on a recovery or a reconcile with its status canceled, where both wrote
 * queued over it: the operator was told canceled, and the next take drops it unrun. */
static void test_recover_keeps_canceled(void)
{
    const char *queues[] = {"q"};
    struct queue_worker_info w1 = {"w1", "host", 1, "q", 4, 0, T0, "noop", ""};
    struct taken t[2];
    const struct taken *held[1];
    struct admin a;
    struct admin_cancel out;
    char url[256], err[512] = "";

    snprintf(url, sizeof url, "unix://%s", sock_path);
    REQUIRE(admin_init(&a, url, NULL, err, sizeof err) == 0);
    REQUIRE(admin_connect(&a, err, sizeof err) == 0);
    memset(t, 0, sizeof t);
    REQUIRE(queue_register(&R, &K, &w1, 10, NULL, err, sizeof err) == 0);
    REQUIRE(put("kc1", "q") == 0 && put("kc2", "q") == 0);
    REQUIRE(take("w1", queues, 1, 2, t, err, sizeof err) == 2);
    CHECK_EQ(admin_cancel(&a, "kc1", &out, err, sizeof err), ADMIN_CANCELED);
    /* A reconcile: the worker knows of kc2 only (the take's reply for kc1 was lost). */
    held[0] = strstr(t[0].record, "\"id\":\"kc2\"") != NULL ? &t[0] : &t[1];
    CHECK_EQ(queue_reconcile(&R, &K, "w1", queues, 1, held, 1, err, sizeof err), 1);
    CHECK_STREQ(HGET("cq:job:kc1", "status"), "canceled");
    CHECK_EQ(LLEN("cq:queue:q"), 1);
    /* A recovery: the worker dies holding kc2, canceled meanwhile. */
    CHECK_EQ(admin_cancel(&a, "kc2", &out, err, sizeof err), ADMIN_CANCELED);
    CHECK_EQ(queue_recover(&R, &K, "w1", warn, sizeof warn, err, sizeof err), 1);
    CHECK_STREQ(HGET("cq:job:kc2", "status"), "canceled");
    CHECK_EQ(LLEN("cq:queue:q"), 2);
    CHECK_EQ(integer(rconn_commandf(&R, "SCARD cq:cancel")), 2); /* for the take to drop */
    free_taken(t, 2);
    DO("DEL cq:queue:q cq:cancel cq:job:kc1 cq:job:kc2");
    admin_close(&a);
}

/* ---- reconcile ----------------------------------------------------------------------- */

static void test_reconcile(void)
{
    const char *queues[] = {"a", "b"}, *only_a[] = {"a"};
    struct taken t[4], other;
    const struct taken *held[2];
    char err[256] = "";

    memset(t, 0, sizeof t);
    memset(&other, 0, sizeof other);
    REQUIRE(put("a1", "a") == 0 && put("a2", "a") == 0 && put("b1", "b") == 0 &&
            put("b2", "b") == 0 && put("c1", "c") == 0);
    REQUIRE(take("w1", queues, 2, 4, t, err, sizeof err) == 4); /* a1 a2 b1 b2 */
    REQUIRE(take("w1", (const char *const[]){"c"}, 1, 1, &other, err, sizeof err) == 1);
    /* The worker knows of a2 and b2 only (a take's reply was lost). */
    held[0] = &t[1];
    held[1] = &t[3];
    DO("HSET cq:job:a1 status started started_at 5 worker w1");
    CHECK_EQ(queue_reconcile(&R, &K, "w1", queues, 2, held, 2, err, sizeof err), 2);
    CHECK_EQ(LLEN("cq:inflight:w1:a"), 1);
    CHECK_STREQ(LINDEX("cq:inflight:w1:a", 0), t[1].record);
    CHECK_EQ(LLEN("cq:inflight:w1:b"), 1);
    CHECK_STREQ(LINDEX("cq:inflight:w1:b", 0), t[3].record);
    /* Back at the head of their queues, queued. */
    CHECK_STREQ(LINDEX("cq:queue:a", -1), t[0].record);
    CHECK_STREQ(LINDEX("cq:queue:b", -1), t[2].record);
    CHECK_STREQ(HGET("cq:job:a1", "status"), "queued");
    CHECK(HGET("cq:job:a1", "started_at") == NULL);
    CHECK(HGET("cq:job:a1", "worker") == NULL);
    /* Queues not named are left alone. */
    CHECK_EQ(LLEN("cq:inflight:w1:c"), 1);
    /* Everything held: nothing moves. */
    CHECK_EQ(queue_reconcile(&R, &K, "w1", queues, 2, held, 2, err, sizeof err), 0);
    /* Nothing held, queue a only: a2 goes back too. */
    CHECK_EQ(queue_reconcile(&R, &K, "w1", only_a, 1, held, 0, err, sizeof err), 1);
    CHECK_EQ(EXISTS("cq:inflight:w1:a"), 0);
    CHECK_EQ(LLEN("cq:queue:a"), 2);
    /* One record byte for byte in two queues' in-flight lists (pushed by hand), held in b's
     * only: a's copy goes back to a, b's stays, whichever queue is looked at first. */
    DO("DEL cq:queue:a cq:queue:b cq:inflight:w1:b");
    DO("LPUSH cq:inflight:w1:a %s", t[3].record);
    DO("LPUSH cq:inflight:w1:b %s", t[3].record);
    held[0] = &t[3]; /* its queue: b */
    CHECK_EQ(queue_reconcile(&R, &K, "w1", queues, 2, held, 1, err, sizeof err), 1);
    CHECK_EQ(EXISTS("cq:inflight:w1:a"), 0);
    CHECK_STREQ(LINDEX("cq:queue:a", 0), t[3].record);
    CHECK_EQ(LLEN("cq:inflight:w1:b"), 1);
    CHECK_EQ(EXISTS("cq:queue:b"), 0);
    free_taken(t, 4);
    queue_taken_free(&other);
}

/* ---- register ------------------------------------------------------------------------ */

static void test_register(void)
{
    struct queue_worker_info w = {"w1", "box-1", 4242, "high,low", 8, 0, T0, "noop", ""};
    char err[256] = "";
    long long ttl;
    double before = time_now();
    int added = -1;

    CHECK_EQ(queue_register(&R, &K, &w, 10, &added, err, sizeof err), 0);
    CHECK_EQ(added, 1); /* its first call */
    CHECK_EQ(integer(rconn_commandf(&R, "SISMEMBER cq:workers w1")), 1);
    CHECK_STREQ(HGET("cq:worker:w1", "host"), "box-1");
    CHECK_STREQ(HGET("cq:worker:w1", "pid"), "4242");
    CHECK_STREQ(HGET("cq:worker:w1", "queues"), "high,low");
    CHECK_STREQ(HGET("cq:worker:w1", "concurrency"), "8");
    CHECK_STREQ(HGET("cq:worker:w1", "busy"), "0");
    CHECK_DBL_EQ(number(rconn_commandf(&R, "HGET cq:worker:w1 started_at")), T0);
    CHECK(number(rconn_commandf(&R, "HGET cq:worker:w1 heartbeat_at")) >= before - 1);
    ttl = TTL("cq:worker:w1:lease");
    CHECK(ttl > 8 && ttl <= 10);
    CHECK_EQ(TTL("cq:worker:w1"), -1);

    /* A heartbeat is the same call: fields refreshed, the lease renewed for its new length. */
    w.busy = 3;
    added = -1;
    CHECK_EQ(queue_register(&R, &K, &w, 30, &added, err, sizeof err), 0);
    CHECK_EQ(added, 0); /* it was registered */
    CHECK_STREQ(HGET("cq:worker:w1", "busy"), "3");
    ttl = TTL("cq:worker:w1:lease");
    CHECK(ttl > 28 && ttl <= 30);
    CHECK_EQ(integer(rconn_commandf(&R, "SCARD cq:workers")), 1);
    /* Taken out of the registry (as the recovery of a dead worker does): added again. */
    DO("SREM cq:workers w1");
    CHECK_EQ(queue_register(&R, &K, &w, 30, &added, err, sizeof err), 0);
    CHECK_EQ(added, 1);
}

/* cq:workers of another type: queue_register fails with the error (a failed command inside
 * EXEC is not taken for success). */
static void test_register_wrong_type(void)
{
    struct queue_worker_info w = {"w1", "box-1", 4242, "q", 8, 0, T0, "noop", ""};
    char err[256] = "";

    DO("SET cq:workers not-a-set");
    CHECK_EQ(queue_register(&R, &K, &w, 10, NULL, err, sizeof err), -1);
    CHECK_HAS(err, "WRONGTYPE");
}

/* ---- main ---------------------------------------------------------------------------- */

int main(void)
{
    char err[256];

    signal(SIGPIPE, SIG_IGN);
    if (keys_init(&K, NULL, err, sizeof err) != 0) fatal(err);
    server_start();

    RUN(test_enqueue_one);
    RUN(test_enqueue_bad_names);
    RUN(test_enqueue_batch);
    RUN(test_enqueue_scheduled);
    RUN(test_enqueue_wrong_type);
    RUN(test_enqueue_fresh_batch);
    RUN(test_enqueue_module_copy);
    RUN(test_enqueue_module_refused);
    RUN(test_take_priority);
    RUN(test_take_max);
    RUN(test_pipelined_takes);
    RUN(test_script_flushed);
    RUN(test_take_wrong_type);
    RUN(test_take_marker_like_records);
    RUN(test_take_two_wrong_types);
    RUN(test_take_large_max);
    RUN(test_take_push_refused);
    RUN(test_take_sets_unreadable);
    RUN(test_apply_started);
    RUN(test_apply_finished);
    RUN(test_apply_huge_ttl);
    RUN(test_apply_extreme_args);
    RUN(test_apply_bad_templates);
    RUN(test_apply_publish);
    RUN(test_apply_publish_in_multi);
    RUN(test_apply_direct);
    RUN(test_apply_prefix_percent);
    RUN(test_apply_queues);
    RUN(test_apply_json_result);
    RUN(test_apply_failed);
    RUN(test_apply_retry);
    RUN(test_apply_dead);
    RUN(test_apply_counters);
    RUN(test_apply_lost);
    RUN(test_apply_tail);
    RUN(test_apply_tail_runs);
    RUN(test_apply_tail_failure);
    RUN(test_apply_then_take_pipelined);
    RUN(test_apply_wrong_type_destination);
    RUN(test_apply_cancel_wrong_type);
    RUN(test_apply_canceled_while_taken);
    RUN(test_apply_cancel_set_refused);
    RUN(test_maxmemory);
    RUN(test_schedule_due);
    RUN(test_schedule_due_limit);
    RUN(test_schedule_due_wrong_type);
    RUN(test_recover_dead_worker);
    RUN(test_recover_counts_in_record);
    RUN(test_recover_only_wid);
    RUN(test_recover_wrong_type);
    RUN(test_recover_keeps_canceled);
    RUN(test_reconcile);
    RUN(test_register);
    RUN(test_register_wrong_type);
    RUN(test_apply_publish_renamed); /* restarts the server */
    RUN(test_enqueue_copy_renamed);
    RUN(test_enqueue_renamed_sadd); /* restarts the server */
    return check_report();
}
