/* test_admin.c - common/admin.c against its own redis-server (tests/redis_server.h): what
 * cqctl's changes send to Redis. The commands' text and --json output are test_cqctl.sh's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "check.h"
#include "redis_server.h"

/* The integer of a reply (freed here), or -1 for a reply of another kind. */
static long long integer_of(redisReply *rep)
{
    long long v = rep != NULL && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;

    discard(rep);
    return v;
}

/* The string of a reply (freed here), "" for nil or another kind; good for one check. */
static const char *string_of(redisReply *rep)
{
    static char buf[256];

    buf[0] = '\0';
    if (rep != NULL && rep->type == REDIS_REPLY_STRING) str_copy(buf, sizeof buf, rep->str);
    discard(rep);
    return buf;
}

/* One of Redis's counts for a command since the last CONFIG RESETSTAT (INFO commandstats:
 * "cmdstat_evalsha:calls=3,usec=...,rejected_calls=0,failed_calls=1"), 0 when it has none. */
static long long stat_of(const char *cmd, const char *field)
{
    redisReply *rep = rconn_commandf(&R, "INFO commandstats");
    char needle[64];
    const char *line = NULL, *f = NULL, *eol = NULL;
    long long v = 0;

    snprintf(needle, sizeof needle, "cmdstat_%s:", cmd);
    if (rep != NULL && rep->type == REDIS_REPLY_STRING) line = strstr(rep->str, needle);
    if (line != NULL) {
        eol = strchr(line, '\r');
        snprintf(needle, sizeof needle, "%s=", field);
        f = strstr(line, needle);
    }
    if (f != NULL && (eol == NULL || f < eol)) v = strtoll(f + strlen(needle), NULL, 10);
    discard(rep);
    return v;
}

/* n failed jobs of queue q, as a worker leaves them: status hash with the record, in the
 * failed set. */
static void failed_jobs(const char *prefix, int n, const char *q)
{
    int i;

    for (i = 0; i < n; i++) {
        char id[64], rec[256];
        snprintf(id, sizeof id, "%s-%d", prefix, i);
        snprintf(rec, sizeof rec, "{\"id\":\"%s\",\"func\":\"noop\",\"args\":[],\"queue\":\"%s\"}",
                 id, q);
        rconn_appendf(&R, "HSET cq:job:%s status failed func noop queue %s record %s", id, q, rec);
        rconn_appendf(&R, "ZADD cq:failed 1 %s", id);
    }
    for (i = 0; i < 2 * n; i++) discard(rconn_read(&R));
}

/* ---- scripts by SHA-1 ------------------------------------------------------------ */

/* One of admin.c's scripts, as one admin call makes it run: call(a, i) sets up its own job
 * or queue (numbered i, with R: no script) and makes the call; 1 when the outcome is right.
 * runs: the script calls one admin call makes. */
struct script_case {
    const char *name;
    int runs;
    int (*call)(struct admin *a, int i);
};

static int call_requeue(struct admin *a, int i)
{
    char id[32], err[512], q[KEYS_NAME_MAX + 1];

    snprintf(id, sizeof id, "rq-%d", i);
    DO("HSET cq:job:%s status failed func noop queue rq record {\"id\":\"%s\",\"func\":"
       "\"noop\",\"args\":[]}",
       id, id);
    DO("ZADD cq:failed 1 %s", id);
    return admin_requeue(a, id, q, sizeof q, err, sizeof err) == 0 && strcmp(q, "rq") == 0 &&
        strcmp(string_of(rconn_commandf(&R, "HGET cq:job:%s status", id)), "queued") == 0;
}

static int call_cancel(struct admin *a, int i)
{
    struct admin_cancel out;
    char id[32], err[512];

    snprintf(id, sizeof id, "c-%d", i);
    DO("HSET cq:job:%s status queued queue q", id);
    return admin_cancel(a, id, &out, err, sizeof err) == ADMIN_CANCELED &&
        strcmp(out.was, "queued") == 0 &&
        strcmp(string_of(rconn_commandf(&R, "HGET cq:job:%s status", id)), "canceled") == 0;
}

static int call_delete(struct admin *a, int i)
{
    char id[32], err[512], was[32];

    snprintf(id, sizeof id, "d-%d", i);
    DO("HSET cq:job:%s status finished", id);
    return admin_delete(a, id, was, sizeof was, err, sizeof err) == 0 &&
        strcmp(was, "finished") == 0 && integer_of(rconn_commandf(&R, "EXISTS cq:job:%s", id)) == 0;
}

static int call_empty(struct admin *a, int i)
{
    char q[32], err[512];

    snprintf(q, sizeof q, "e%d", i);
    DO("LPUSH cq:queue:%s {\"id\":\"e-%d\",\"func\":\"noop\",\"args\":[]}", q, i);
    return admin_empty(a, q, err, sizeof err) == 1 &&
        strcmp(string_of(rconn_commandf(&R, "HGET cq:job:e-%d status", i)), "canceled") == 0;
}

static int call_forget(struct admin *a, int i)
{
    char q[32], err[512];
    int known = 0, paused = 0;

    snprintf(q, sizeof q, "f%d", i);
    DO("SADD cq:queues %s", q);
    return admin_forget(a, q, &known, &paused, err, sizeof err) == 0 && known && !paused &&
        integer_of(rconn_commandf(&R, "SISMEMBER cq:queues %s", q)) == 0;
}

/* An id left in the failed set after its status expired leaves it (requeue --all-failed). */
static int call_drop_gone(struct admin *a, int i)
{
    char err[512];
    long requeued, refused, dropped;

    DO("ZADD cq:failed 1 gone-%d", i);
    return admin_requeue_failed(a, NULL, NULL, NULL, &requeued, &refused, &dropped, err,
                                sizeof err) == 0 &&
        requeued == 0 && refused == 0 && dropped == 1 &&
        integer_of(rconn_commandf(&R, "ZCARD cq:failed")) == 0;
}

static const struct script_case script_cases[] = {
    {"requeue", 1, call_requeue}, {"cancel", 1, call_cancel},
    {"delete", 1, call_delete},   {"empty", 2, call_empty}, /* its second finds the queue empty */
    {"forget", 1, call_forget},   {"drop-gone", 1, call_drop_gone},
};
#define NSCRIPT_CASES (sizeof script_cases / sizeof script_cases[0])

/* A new connection of user (NULL: the default user) for each case. */
static void connect_as(struct admin *a, const char *user)
{
    char err[512], url[256];

    if (user != NULL)
        snprintf(url, sizeof url, "unix://%s:pw@%s", user, sock_path);
    else
        snprintf(url, sizeof url, "unix://%s", sock_path);
    REQUIRE(admin_init(a, url, NULL, err, sizeof err) == 0);
    REQUIRE(admin_connect(a, err, sizeof err) == 0);
}

/* Each script sends its body once a connection and its SHA-1 after that; after a SCRIPT
 * FLUSH (or a Redis restarted under the connection), the call that meets NOSCRIPT goes again
 * with the body, and does what it should, once. */
static void test_scripts_by_sha(void)
{
    size_t c;

    for (c = 0; c < NSCRIPT_CASES; c++) {
        const struct script_case *sc = &script_cases[c];
        int before = failures;
        struct admin a;

        connect_as(&a, NULL);
        DO("CONFIG RESETSTAT");
        CHECK(sc->call(&a, 0));
        CHECK(sc->call(&a, 1));
        CHECK_EQ(stat_of("eval", "calls"), 1);
        CHECK_EQ(stat_of("evalsha", "calls"), 2 * sc->runs - 1);
        DO("SCRIPT FLUSH");
        CHECK(sc->call(&a, 2));
        CHECK_EQ(stat_of("eval", "calls"), 2);
        CHECK_EQ(stat_of("evalsha", "failed_calls") + stat_of("evalsha", "rejected_calls"), 1);
        admin_close(&a);
        if (failures != before) fprintf(stderr, "-- ...of the %s script\n", sc->name);
    }
}

/* An operator's user made for EVAL alone (docs/PROTOCOL.md's line had no EVALSHA before
 * requeue sent it): its one EVALSHA refused, every call of the connection goes as EVAL with
 * the body, and does what it should. */
static void test_scripts_without_evalsha(void)
{
    size_t c;

    DO("ACL SETUSER evalonly on >pw ~* &* +@all -evalsha");
    for (c = 0; c < NSCRIPT_CASES; c++) {
        const struct script_case *sc = &script_cases[c];
        int before = failures;
        struct admin a;

        connect_as(&a, "evalonly");
        DO("CONFIG RESETSTAT");
        CHECK(sc->call(&a, 0));
        CHECK(sc->call(&a, 1));
        CHECK(sc->call(&a, 2));
        CHECK_EQ(stat_of("eval", "calls"), 3 * sc->runs);
        CHECK_EQ(stat_of("evalsha", "calls") + stat_of("evalsha", "failed_calls") +
                     stat_of("evalsha", "rejected_calls"),
                 1);
        admin_close(&a);
        if (failures != before) fprintf(stderr, "-- ...of the %s script\n", sc->name);
    }
    DO("ACL DELUSER evalonly");
}

/* requeue --all-failed: a page of 1,000 and one of 500 by SHA-1 alone; flushed before a page,
 * the page's calls all meet NOSCRIPT and go again, the first with the body; for a user
 * without EVALSHA, all with it. Every job is requeued, none twice. */
static void test_requeue_pages(void)
{
    struct admin A, op;
    char err[512];
    long requeued, refused, dropped;

    failed_jobs("page", 1500, "rq");
    connect_as(&A, NULL);
    DO("CONFIG RESETSTAT");
    CHECK_EQ(
        admin_requeue_failed(&A, NULL, NULL, NULL, &requeued, &refused, &dropped, err, sizeof err),
        0);
    CHECK_EQ(requeued, 1500);
    CHECK_EQ(refused, 0);
    CHECK_EQ(stat_of("eval", "calls"), 1);
    CHECK_EQ(stat_of("evalsha", "calls"), 1499);
    CHECK_EQ(integer_of(rconn_commandf(&R, "LLEN cq:queue:rq")), 1500);
    CHECK_EQ(integer_of(rconn_commandf(&R, "ZCARD cq:failed")), 0);

    failed_jobs("again", 1200, "rq");
    DO("SCRIPT FLUSH");
    DO("CONFIG RESETSTAT");
    CHECK_EQ(
        admin_requeue_failed(&A, NULL, NULL, NULL, &requeued, &refused, &dropped, err, sizeof err),
        0);
    CHECK_EQ(requeued, 1200);
    CHECK_EQ(refused, 0);
    CHECK_EQ(stat_of("eval", "calls"), 1);
    CHECK_EQ(integer_of(rconn_commandf(&R, "LLEN cq:queue:rq")), 2700);
    CHECK_EQ(integer_of(rconn_commandf(&R, "ZCARD cq:failed")), 0);
    CHECK_STREQ(string_of(rconn_commandf(&R, "HGET cq:job:again-0 status")), "queued");
    admin_close(&A);

    DO("ACL SETUSER evalonly on >pw ~* &* +@all -evalsha");
    failed_jobs("only", 1200, "rq");
    connect_as(&op, "evalonly");
    DO("CONFIG RESETSTAT");
    CHECK_EQ(
        admin_requeue_failed(&op, NULL, NULL, NULL, &requeued, &refused, &dropped, err, sizeof err),
        0);
    CHECK_EQ(requeued, 1200);
    CHECK_EQ(refused, 0);
    CHECK_EQ(stat_of("eval", "calls"), 1200);
    CHECK_EQ(integer_of(rconn_commandf(&R, "LLEN cq:queue:rq")), 3900);
    admin_close(&op);
    DO("ACL DELUSER evalonly");
}

/* Cancel a running job as user: its outcome, and its err in err. */
static int cancel_as(const char *user, const char *id, struct admin_cancel *out, char *err,
                     size_t errlen)
{
    struct admin a;
    int rc;

    connect_as(&a, user);
    err[0] = '\0';
    rc = admin_cancel(&a, id, out, err, errlen);
    admin_close(&a);
    return rc;
}

/* The cancel of a running job asks whether its worker is gone (HMGET of the job, EXISTS of its
 * worker's lease, HGET of its connections, CLIENT LIST). Redis refusing one of the first
 * three was lost or read as a live worker, and the cancel said 'stopping' (exit 0): now it is an error that says the cancel
 * was asked and why its worker could not be looked at. A user without CLIENT LIST takes the
 * worker for live, as admin.h says. */
static void test_cancel_worker_unknown(void)
{
    static const struct {
        const char *user, *rules[6], *line;
    } refused[] = {
        {"noexists",
         {"~*", "-exists"},
         "job run-1: its cancel is asked (it is running), but whether its worker is there to "
         "stop it could not be told: worker w-1's lease: key cq:worker:w-1:lease: redis "},
        /* kept from the workers' keys: EXISTS is refused the lease's */
        {"nokeys",
         {"~cq:job:*", "~cq:cancel", "~cq:scheduled", "~cq:failed"},
         "could not be told: worker w-1's lease: key cq:worker:w-1:lease: redis "},
        {"nohmget", {"~*", "-hmget"}, "could not be told: cq:job:run-1: redis "},
        /* CLIENT LIST refused, the lease standing: it was taken for live, ASKED, exit 0 */
        {"noclient", {"~*", "-client|list"}, "could not be told: CLIENT LIST: redis "},
    };
    struct admin_cancel out;
    char err[1024];
    size_t i, n;

    DO("HSET cq:job:run-1 status started worker w-1 queue q");
    DO("SET cq:worker:w-1:lease 1");
    DO("HSET cq:worker:w-1 clients 1");
    for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const char *argv[16] = {"ACL", "SETUSER", refused[i].user, "on", ">pw", "&*", "+@all"};
        int argc = 7;
        for (n = 0; n < 6 && refused[i].rules[n] != NULL; n++) argv[argc++] = refused[i].rules[n];
        redisReply *rep = rconn_command(&R, argc, argv, NULL);
        CHECK(rep != NULL && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "OK") == 0);
        discard(rep);
        DO("DEL cq:cancel");
        CHECK_EQ(cancel_as(refused[i].user, "run-1", &out, err, sizeof err), -1);
        CHECK_HAS(err, refused[i].line);
        CHECK_HAS(err, "NOPERM");
        CHECK(strchr(err, '\n') == NULL);
        CHECK_HAS(err, "; this ACL user may not do that: docs/PROTOCOL.md gives the ACL SETUSER");
        CHECK_STREQ(out.was, "started");
        CHECK_EQ(integer_of(rconn_commandf(&R, "SISMEMBER cq:cancel run-1")), 1); /* asked */
        DO("ACL DELUSER %s", refused[i].user);
    }
    /* Its lease gone: the worker is. */
    DO("DEL cq:worker:w-1:lease");
    CHECK_EQ(cancel_as(NULL, "run-1", &out, err, sizeof err), ADMIN_CANCEL_ORPHAN);
    CHECK_STREQ(out.worker, "w-1");
    CHECK_STREQ(out.queue, "q");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    server_start();

    RUN(test_scripts_by_sha);
    RUN(test_scripts_without_evalsha);
    RUN(test_requeue_pages);
    RUN(test_cancel_worker_unknown);
    return check_report();
}
