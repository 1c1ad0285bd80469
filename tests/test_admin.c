/* test_admin.c - common/admin.c against its own redis-server (tests/redis_server.h): what
 * cqctl's changes send to Redis. The commands' text and --json output are test_cqctl.sh's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "check.h"
#include "redis_server.h"

static struct admin A;

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

/* A requeue sends the script's body once a connection and its SHA-1 after that, one job or a
 * page of them; after a SCRIPT FLUSH (or a Redis restarted under the connection), the calls
 * that meet NOSCRIPT go again with the body: every job is requeued, none twice. */
static void test_requeue_evalsha(void)
{
    char err[512], q[KEYS_NAME_MAX + 1];
    long requeued, refused, dropped;

    failed_jobs("one", 3, "rq");
    failed_jobs("page", 1500, "rq");
    REQUIRE(admin_connect(&A, err, sizeof err) == 0);
    DO("CONFIG RESETSTAT");
    CHECK_EQ(admin_requeue(&A, "one-0", q, sizeof q, err, sizeof err), 0);
    CHECK_STREQ(q, "rq");
    CHECK_EQ(admin_requeue(&A, "one-1", q, sizeof q, err, sizeof err), 0);
    CHECK_EQ(stat_of("eval", "calls"), 1);
    CHECK_EQ(stat_of("evalsha", "calls"), 1);

    /* Flushed: the next call meets NOSCRIPT, and goes again with the body. */
    DO("SCRIPT FLUSH");
    CHECK_EQ(admin_requeue(&A, "one-2", q, sizeof q, err, sizeof err), 0);
    CHECK_EQ(stat_of("eval", "calls"), 2);
    CHECK_EQ(stat_of("evalsha", "failed_calls") + stat_of("evalsha", "rejected_calls"), 1);

    /* A page of 1,000 and one of 500: by SHA-1 alone. */
    DO("CONFIG RESETSTAT");
    CHECK_EQ(
        admin_requeue_failed(&A, NULL, NULL, NULL, &requeued, &refused, &dropped, err, sizeof err),
        0);
    CHECK_EQ(requeued, 1500);
    CHECK_EQ(refused, 0);
    CHECK_EQ(stat_of("eval", "calls"), 0);
    CHECK_EQ(stat_of("evalsha", "calls"), 1500);
    CHECK_EQ(integer_of(rconn_commandf(&R, "LLEN cq:queue:rq")), 1503);
    CHECK_EQ(integer_of(rconn_commandf(&R, "ZCARD cq:failed")), 0);

    /* Flushed before a page: the page's calls all meet NOSCRIPT and go again, the first
     * with the body. */
    failed_jobs("again", 1200, "rq");
    DO("SCRIPT FLUSH");
    DO("CONFIG RESETSTAT");
    CHECK_EQ(
        admin_requeue_failed(&A, NULL, NULL, NULL, &requeued, &refused, &dropped, err, sizeof err),
        0);
    CHECK_EQ(requeued, 1200);
    CHECK_EQ(refused, 0);
    CHECK_EQ(stat_of("eval", "calls"), 1);
    CHECK_EQ(integer_of(rconn_commandf(&R, "LLEN cq:queue:rq")), 2703);
    CHECK_EQ(integer_of(rconn_commandf(&R, "ZCARD cq:failed")), 0);
    CHECK_STREQ(string_of(rconn_commandf(&R, "HGET cq:job:again-0 status")), "queued");
    admin_close(&A);
}

/* An operator's user made for EVAL alone (docs/PROTOCOL.md's line had no EVALSHA before
 * requeue sent it): its EVALSHA refused, the connection's calls go as EVAL with the body, and
 * every job is requeued, one at a time and in pages. */
static void test_requeue_without_evalsha(void)
{
    struct admin op;
    char err[512], url[256], q[KEYS_NAME_MAX + 1];
    long requeued, refused, dropped;

    DO("ACL SETUSER evalonly on >pw ~* &* +@all -evalsha");
    failed_jobs("one", 3, "rq");
    failed_jobs("page", 1200, "rq");
    snprintf(url, sizeof url, "unix://evalonly:pw@%s", sock_path);
    REQUIRE(admin_init(&op, url, NULL, err, sizeof err) == 0);
    REQUIRE(admin_connect(&op, err, sizeof err) == 0);
    DO("CONFIG RESETSTAT");
    CHECK_EQ(admin_requeue(&op, "one-0", q, sizeof q, err, sizeof err), 0);
    CHECK_EQ(admin_requeue(&op, "one-1", q, sizeof q, err, sizeof err), 0);
    CHECK_EQ(admin_requeue(&op, "one-2", q, sizeof q, err, sizeof err), 0);
    CHECK_EQ(stat_of("eval", "calls"), 3);
    CHECK_EQ(
        admin_requeue_failed(&op, NULL, NULL, NULL, &requeued, &refused, &dropped, err, sizeof err),
        0);
    CHECK_EQ(requeued, 1200);
    CHECK_EQ(refused, 0);
    CHECK_EQ(stat_of("eval", "calls"), 1203);
    CHECK_EQ(integer_of(rconn_commandf(&R, "LLEN cq:queue:rq")), 1203);
    admin_close(&op);
    DO("ACL DELUSER evalonly");
}

int main(void)
{
    char err[512], url[256];

    signal(SIGPIPE, SIG_IGN);
    server_start();
    snprintf(url, sizeof url, "unix://%s", sock_path);
    if (admin_init(&A, url, NULL, err, sizeof err) != 0) fatal(err);

    RUN(test_requeue_evalsha);
    RUN(test_requeue_without_evalsha);
    return check_report();
}
