/* test_client.c - the client API of cq.h that a program enqueueing from C calls (common/
 * client.c), against a real Redis: a job made from JSON arguments (cq_jobspec_new) and its
 * refusals, checked against the built-ins and enqueued; then its status read back
 * (cq_status_get, cq_status_get_many), with an id never enqueued and an invalid one. What
 * Redis holds is read back by hand, as a producer in another language would read it
 * (docs/PROTOCOL.md). Redis is private to this program (tests/redis_server.h). */
#include <pthread.h>
#include <signal.h>

#include "check.h"
#include "redis_server.h"

#include "cq/cq.h"

static char url[256];

/* The string reply rep ("" for another reply), copied into out; rep is freed. */
static const char *reply_string(char *out, size_t len, redisReply *rep)
{
    str_copy(out, len, rep != NULL && rep->type == REDIS_REPLY_STRING ? rep->str : "");
    if (rep != NULL) freeReplyObject(rep);
    return out;
}

/* cq_jobspec_new refuses, with a line that names the function and the fix, what no worker
 * could run: a bad function name, args that are no JSON array, a NUL inside them. */
static void test_jobspec_refusals(void)
{
    char err[256], longname[80];

    err[0] = '\0';
    CHECK(cq_jobspec_new("", "[]", err, sizeof err) == NULL);
    CHECK_HAS(err, "function name '': use 1-64 characters of A-Z a-z 0-9 _ . -");
    memset(longname, 'f', 65);
    longname[65] = '\0';
    err[0] = '\0';
    CHECK(cq_jobspec_new(longname, "[]", err, sizeof err) == NULL);
    CHECK_HAS(err, "1-64 characters");
    /* A name no function can have (cq_function_add's rule): refused here, in one line, not
     * enqueued with CQ_NO_CHECK to fail on a worker with an error of two lines. */
    err[0] = '\0';
    CHECK(cq_jobspec_new("bad name\n", "[]", err, sizeof err) == NULL);
    CHECK_STREQ(err, "function name 'bad name\\n': use 1-64 characters of A-Z a-z 0-9 _ . -");
    CHECK(cq_jobspec_new("a/b", NULL, err, sizeof err) == NULL);
    CHECK(cq_jobspec_new_argv("bad name", NULL, 0) == NULL);
    CHECK(cq_jobspec_new_argv("", NULL, 0) == NULL);
    err[0] = '\0';
    CHECK(cq_jobspec_new("noop", "{\"a\": 1}", err, sizeof err) == NULL);
    CHECK_HAS(err, "noop: args must be a JSON array, e.g. [\"a\", 1]");
    err[0] = '\0';
    CHECK(cq_jobspec_new("noop", "[1, 2", err, sizeof err) == NULL);
    CHECK_HAS(err, "noop: args must be a JSON array");
    err[0] = '\0';
    CHECK(cq_jobspec_new("noop", "[1, 2] [3]", err, sizeof err) == NULL); /* one array only */
    CHECK_HAS(err, "noop: args must be a JSON array");
    { /* 10,000 levels: an array all the same, which cJSON does not read past 1,000; it said
       * 'args must be a JSON array'. 1,000 levels are taken, brackets in strings not counted. */
        enum { DEEP = 10000 };
        char *deep = malloc(2 * DEEP + 1);
        cq_jobspec *s;
        REQUIRE(deep != NULL);
        memset(deep, '[', DEEP);
        memset(deep + DEEP, ']', DEEP);
        deep[2 * DEEP] = '\0';
        err[0] = '\0';
        CHECK(cq_jobspec_new("noop", deep, err, sizeof err) == NULL);
        CHECK_STREQ(err,
                    "noop: args nest arrays or objects deeper than 1000 levels, which cq's "
                    "JSON reader takes");
        memset(deep, '[', 1000);
        memset(deep + 1000, ']', 1000);
        deep[2000] = '\0';
        s = cq_jobspec_new("noop", deep, err, sizeof err);
        CHECK(s != NULL);
        cq_jobspec_free(s);
        s = cq_jobspec_new("noop", "[\"[[[[\", {\"a\": \"]]]]\"}]", err, sizeof err);
        CHECK(s != NULL);
        cq_jobspec_free(s);
        free(deep);
    }
    err[0] = '\0';
    CHECK(cq_jobspec_new("noop", "[\"a\\u0000b\"]", err, sizeof err) == NULL);
    CHECK_HAS(err, "noop: args hold a NUL character (\\u0000)");
    CHECK_HAS(err, "send the bytes another way (e.g. base64)");
    { /* What cJSON takes but JSON is not, as a json argument's text (test_registry): [0755]
       * went in as [755], '1.' as 1, a raw tab as a tab; JSON itself is taken as before. */
        static const char *const refused[] = {"[1, 01]", "[-00.5]", "[1.]",      "[\"a\tb\"]",
                                              "[1,\f2]", "[1]\f",   "[\"\x01\"]"};
        static const char *const taken[] = {"[0, -0, 0.5, 0e1, -0.0, 1E+2]",
                                            " \t\r\n[ 1 ,\n2 ]\r\n",
                                            "[\"a\\tb\", {\"k\": [true, null]}, []]"};
        cq_jobspec *s;
        size_t i;

        err[0] = '\0';
        CHECK(cq_jobspec_new("noop", "[0755]", err, sizeof err) == NULL);
        CHECK_STREQ(err,
                    "noop: args '[0755]' are not JSON as RFC 8259 writes it: a number has no "
                    "leading zero ([0755] would arrive as [755]), a string no raw control "
                    "character (write \\n, \\t), and only space, tab, CR and LF separate");
        for (i = 0; i < sizeof refused / sizeof *refused; i++) {
            err[0] = '\0';
            s = cq_jobspec_new("noop", refused[i], err, sizeof err);
            CHECK(s == NULL);
            CHECK_HAS(err, "are not JSON as RFC 8259 writes it");
            if (s != NULL) fprintf(stderr, "  taken: %s\n", refused[i]);
            cq_jobspec_free(s);
        }
        for (i = 0; i < sizeof taken / sizeof *taken; i++) {
            s = cq_jobspec_new("noop", taken[i], err, sizeof err);
            CHECK(s != NULL);
            if (s == NULL) fprintf(stderr, "  refused: %s: %s\n", taken[i], err);
            cq_jobspec_free(s);
        }
    }
}

/* cq_url_check and cq_prefix_check take what cq_client_new takes, without connecting: NULL is
 * the default, from $CQ_REDIS_URL or $CQ_PREFIX when set, whose errors name the variable. */
static void test_settings_check(void)
{
    char err[256];

    err[0] = 'x';
    CHECK_EQ(cq_url_check("redis://127.0.0.1:1", err, sizeof err), 0); /* nothing listens */
    CHECK_EQ(cq_url_check(url, err, sizeof err), 0);
    CHECK_EQ(cq_prefix_check("app:", err, sizeof err), 0);
    CHECK_EQ(cq_url_check("localhost:6379", err, sizeof err), -1);
    CHECK_HAS(err, "redis URL 'localhost:6379': must start with redis://");
    CHECK_EQ(cq_prefix_check("a b", err, sizeof err), -1);
    CHECK_HAS(err, "key prefix 'a b'");
    setenv("CQ_REDIS_URL", "http://x", 1);
    setenv("CQ_PREFIX", "a\tb", 1);
    CHECK_EQ(cq_url_check(NULL, err, sizeof err), -1);
    CHECK_HAS(err, "$CQ_REDIS_URL: redis URL 'http://x'");
    CHECK_EQ(cq_prefix_check(NULL, err, sizeof err), -1);
    CHECK_HAS(err, "$CQ_PREFIX: key prefix");
    CHECK(cq_client_new(NULL, NULL, err, sizeof err) == NULL); /* refused the same way */
    CHECK_HAS(err, "$CQ_PREFIX: key prefix");
    /* "" is no value, for the prefix as for the URL: the variable's (it was "cq:" for the
     * prefix whatever $CQ_PREFIX said, a keyspace of its own beside the workers'). */
    CHECK_EQ(cq_url_check("", err, sizeof err), -1);
    CHECK_HAS(err, "$CQ_REDIS_URL: redis URL 'http://x'");
    err[0] = '\0';
    CHECK_EQ(cq_prefix_check("", err, sizeof err), -1);
    CHECK_HAS(err, "$CQ_PREFIX: key prefix");
    CHECK(cq_client_new(url, "", err, sizeof err) == NULL);
    CHECK_HAS(err, "$CQ_PREFIX: key prefix");
    {
        cq_worker *w = cq_worker_new(); /* an embedded worker takes "" as none too */
        CHECK_EQ(cq_worker_set(w, "url", "", err, sizeof err), 0);
        CHECK_EQ(cq_worker_set(w, "prefix", "", err, sizeof err), 0);
        CHECK_EQ(cq_worker_set(w, "url", "http://x", err, sizeof err), -1);
        cq_worker_free(w);
    }
    CHECK_EQ(cq_url_check("redis://127.0.0.1:1", err, sizeof err), 0); /* given: no variable */
    unsetenv("CQ_REDIS_URL");
    unsetenv("CQ_PREFIX");
    CHECK_EQ(cq_url_check(NULL, err, sizeof err), 0);
    CHECK_EQ(cq_prefix_check(NULL, err, sizeof err), 0);
}

/* An embedded worker's root must exist (cworker makes its --download-root; the setting does
 * not), and a command's program is an absolute path or a bare name, as cq.h says. */
static void test_worker_root_and_command(void)
{
    char err[256];
    cq_worker *w = cq_worker_new();

    CHECK_EQ(cq_worker_set(w, "root", "/nonexistent/cq-root", err, sizeof err), -1);
    CHECK_STREQ(err, "root '/nonexistent/cq-root': No such file or directory");
    CHECK_EQ(cq_worker_set(w, "root", "/tmp", err, sizeof err), 0);
    /* A name guessed wrong (cworker's option name, not the setting's) gets the list, and
     * each name listed is one the worker takes. */
    CHECK_EQ(cq_worker_set(w, "download-root", "/tmp", err, sizeof err), -1);
    CHECK_STREQ(err,
                "unknown setting 'download-root': the settings are url, prefix, root, "
                "concurrency, burst, max-jobs, max-recoveries, shutdown-timeout, retry-base, "
                "lease, summary-interval, result-ttl, failure-ttl, log-level and log-format");
    {
        static const char *const ok[][2] = {{"url", ""},
                                            {"prefix", ""},
                                            {"root", "/tmp"},
                                            {"concurrency", "2"},
                                            {"burst", "0"},
                                            {"max-jobs", "0"},
                                            {"max-recoveries", "3"},
                                            {"shutdown-timeout", "5s"},
                                            {"retry-base", "1s"},
                                            {"lease", "10s"},
                                            {"summary-interval", "0"},
                                            {"result-ttl", "500"},
                                            {"failure-ttl", "500"},
                                            {"log-level", "info"},
                                            {"log-format", "text"}};
        size_t i;
        for (i = 0; i < sizeof ok / sizeof ok[0]; i++)
            CHECK_EQ(cq_worker_set(w, ok[i][0], ok[i][1], err, sizeof err), 0);
    }
    CHECK_EQ(cq_worker_add_command(w, "x=bin/true", err, sizeof err), -1);
    CHECK_HAS(err, "command bin/true: a relative path");
    CHECK_EQ(cq_worker_add_command(w, "x=true", err, sizeof err), 0);
    cq_worker_free(w);
}

/* The integer reply rep (-1 for another reply); rep is freed. */
static long long integer(redisReply *rep)
{
    long long v = rep != NULL && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    if (rep != NULL) freeReplyObject(rep);
    return v;
}

/* A job whose record would be over the 1 MiB a worker reads is refused before anything is
 * sent, with or without the check; one just under goes in. */
static void test_enqueue_oversize(void)
{
    enum { BIG = 1024 * 1024 };
    char err[256], *arg = malloc(BIG + 1);
    const char *argv[1];
    cq_client *c = cq_client_new(url, NULL, err, sizeof err);
    cq_jobspec *s;
    int check;

    REQUIRE(c != NULL && arg != NULL);
    DO("FLUSHALL");
    memset(arg, 'a', BIG);
    arg[BIG] = '\0';
    argv[0] = arg;
    for (check = 0; check < 2; check++) {
        s = cq_jobspec_new_argv("noop", argv, 1);
        REQUIRE(s != NULL);
        /* Said by the checks too, so that a caller checking each job names the one at fault
         * before any goes (cenqueue --stdin's line, exit 2: it was an enqueue's failure). */
        err[0] = '\0';
        CHECK_EQ(check ? cq_client_check(c, s, NULL, 0, err, sizeof err)
                       : cq_jobspec_check(s, err, sizeof err),
                 -1);
        CHECK_HAS(err, "noop: a job record of 1048");
        err[0] = '\0';
        CHECK_EQ(cq_enqueue(c, &s, 1, check ? CQ_CHECK : CQ_NO_CHECK, err, sizeof err), -1);
        CHECK_HAS(err, "noop: a job record of 1048");
        CHECK_HAS(err, "bytes is over the 1048576 bytes a worker reads (less 64 for");
        CHECK_EQ(cq_jobspec_enqueued(s), 0);
        cq_jobspec_free(s);
    }
    CHECK_EQ(integer(rconn_commandf(&R, "LLEN cq:queue:default")), 0);
    /* In one call with a small job due now, the large one due later: neither goes in. */
    {
        const char *small[1] = {"x"};
        cq_jobspec *two[2] = {cq_jobspec_new_argv("noop", small, 1),
                              cq_jobspec_new_argv("noop", argv, 1)};
        REQUIRE(two[0] != NULL && two[1] != NULL);
        CHECK_EQ(cq_jobspec_set_at(two[1], 4000000000.0), 0);
        CHECK_EQ(cq_enqueue(c, two, 2, CQ_NO_CHECK, err, sizeof err), -1);
        CHECK_HAS(err, "bytes is over the 1048576 bytes a worker reads");
        CHECK_EQ(cq_jobspec_enqueued(two[0]), 0);
        cq_jobspec_free(two[0]);
        cq_jobspec_free(two[1]);
    }
    CHECK_EQ(integer(rconn_commandf(&R, "LLEN cq:queue:default")), 0);
    arg[BIG - 200] = '\0'; /* with its id and fields, just under */
    s = cq_jobspec_new_argv("noop", argv, 1);
    REQUIRE(s != NULL);
    CHECK_EQ(cq_jobspec_check(s, err, sizeof err), 0);
    CHECK_EQ(cq_client_check(c, s, NULL, 0, err, sizeof err), 0);
    CHECK_EQ(cq_enqueue(c, &s, 1, CQ_NO_CHECK, err, sizeof err), 1);
    CHECK_EQ(integer(rconn_commandf(&R, "LLEN cq:queue:default")), 1);
    cq_jobspec_free(s);
    DO("FLUSHALL");
    free(arg);
    cq_client_free(c);
}

/* cq_client_queue_workers counts the live workers that serve a queue, and refuses what is no
 * queue name ("" is in every list of queues: it once looped there for ever), NULL too. */
static void test_queue_workers(void)
{
    char err[256];
    cq_client *c = cq_client_new(url, NULL, err, sizeof err);

    REQUIRE(c != NULL);
    DO("FLUSHALL");
    DO("SADD cq:workers w1");
    DO("HSET cq:worker:w1 queues a,default,b");
    DO("SET cq:worker:w1:lease 1");
    CHECK_EQ(cq_client_queue_workers(c, "default", err, sizeof err), 1);
    CHECK_EQ(cq_client_queue_workers(c, "defaul", err, sizeof err), 0);
    CHECK_EQ(cq_client_queue_workers(c, "", err, sizeof err), -1);
    CHECK_HAS(err, "queue '': use 1-128 characters");
    CHECK_EQ(cq_client_queue_workers(c, "a,default", err, sizeof err), -1);
    CHECK_EQ(cq_client_queue_workers(c, NULL, err, sizeof err), -1);
    DO("FLUSHALL");
    cq_client_free(c);
}

/* A function known from the catalog whose workers could not be read (here the user may not
 * SMEMBERS): the check fails naming Redis's refusal, and so does the next one, which asks
 * again rather than read what was never stored; once the right is back, it passes, with
 * the warning that nobody serves the function. */
static void test_check_workers_refused(void)
{
    char err[256], warn[256];
    cq_client *c = cq_client_new(url, NULL, err, sizeof err);
    cq_jobspec *s = cq_jobspec_new("echo", "[1]", err, sizeof err);
    int i;

    REQUIRE(c != NULL && s != NULL);
    DO("FLUSHALL");
    DO("HSET cq:functions echo %s",
       "{\"args\":\"X:integer\",\"usage\":\"echo X\",\"summary\":\"\",\"retries\":0,"
       "\"timeout\":0,\"source\":\"test\"}");
    DO("ACL SETUSER default -smembers");
    for (i = 0; i < 2; i++) {
        err[0] = '\0';
        CHECK_EQ(cq_client_check(c, s, warn, sizeof warn, err, sizeof err), -1);
        CHECK_HAS(err, "reading the workers");
        CHECK_HAS(err, "NOPERM");
    }
    DO("ACL SETUSER default +smembers");
    CHECK_EQ(cq_client_check(c, s, warn, sizeof warn, err, sizeof err), 0);
    CHECK_HAS(warn, "function echo: no live worker serves it now");
    DO("FLUSHALL");
    cq_jobspec_free(s);
    cq_client_free(c);
}

/* A job whose queue is the default one is checked against the workers of "default": one
 * that serves its function there is no cause for a warning (the check asked who serves the
 * queue "", and warned "no live worker of queue  serves it"); on another queue, the warning
 * names that queue. */
static void test_check_default_queue(void)
{
    char err[256], warn[512];
    cq_client *c = cq_client_new(url, NULL, err, sizeof err);
    cq_jobspec *s = cq_jobspec_new("echo", "[1]", err, sizeof err);

    REQUIRE(c != NULL && s != NULL);
    DO("FLUSHALL");
    DO("HSET cq:functions echo %s",
       "{\"args\":\"X:integer\",\"usage\":\"echo X\",\"summary\":\"\",\"retries\":0,"
       "\"timeout\":0,\"source\":\"program\"}");
    DO("SADD cq:workers w1");
    DO("HSET cq:worker:w1 queues default functions noop,sleep,echo");
    DO("SET cq:worker:w1:lease 1");
    CHECK_EQ(cq_client_check(c, s, warn, sizeof warn, err, sizeof err), 0);
    CHECK_STREQ(warn, "");
    CHECK_EQ(cq_jobspec_set_queue(s, "other"), 0);
    CHECK_EQ(cq_client_check(c, s, warn, sizeof warn, err, sizeof err), 0);
    CHECK_HAS(warn,
              "function echo: no live worker of queue other serves it (1 serves it on "
              "other queues");
    cq_jobspec_free(s);
    {
        const char *argv[] = {"2"};
        s = cq_jobspec_new_argv("echo", argv, 1);
    }
    REQUIRE(s != NULL);
    CHECK_EQ(cq_client_check(c, s, warn, sizeof warn, err, sizeof err), 0);
    CHECK_STREQ(warn, "");
    CHECK_EQ(cq_enqueue(c, &s, 1, CQ_CHECK, err, sizeof err), 1);
    CHECK_EQ(integer(rconn_commandf(&R, "LLEN cq:queue:default")), 1);
    DO("FLUSHALL");
    cq_jobspec_free(s);
    cq_client_free(c);
}

/* A client declares its application's functions without a handler, and its jobs are checked
 * against them before any worker has published one; a number no double holds is refused, not
 * sent as null. */
static void test_declarations(void)
{
    char err[256], warn[256];
    cq_client *c = cq_client_new(url, NULL, err, sizeof err);
    cq_jobspec *s;

    REQUIRE(c != NULL);
    DO("FLUSHALL");
    CHECK(cq_function_add(cq_client_registry(c), "appfn", "N:integer", NULL, NULL) != NULL);
    { /* listed before any worker publishes it, as the program's own, not as cq's */
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        CHECK_EQ(cq_client_print_functions(c, f, err, sizeof err), 0);
        fclose(f);
        /* no summary: the signature alone, no spaces after it */
        CHECK_HAS(out,
                  "appfn N:integer\n"
                  "                          program; no live worker; never served\n");
        CHECK_HAS(out,
                  "noop [ARG:any...]       do nothing (for tests and benchmarks)\n"
                  "                          builtin; ");
        free(out);
    }
    {
        const char *argv[] = {"7"};
        s = cq_jobspec_new_argv("appfn", argv, 1); /* as strings: the check converts them */
    }
    REQUIRE(s != NULL);
    CHECK_EQ(cq_client_check(c, s, warn, sizeof warn, err, sizeof err), 0);
    CHECK_STREQ(warn, "");
    CHECK_EQ(cq_enqueue(c, &s, 1, CQ_NO_CHECK, err, sizeof err), 1);
    {
        char rec[1024];
        reply_string(rec, sizeof rec, rconn_commandf(&R, "LINDEX cq:queue:default 0"));
        CHECK_HAS(rec, "\"func\":\"appfn\",\"args\":[7]");
    }
    cq_jobspec_free(s);
    s = cq_jobspec_new("appfn", "[\"x\"]", err, sizeof err);
    REQUIRE(s != NULL);
    CHECK_EQ(cq_client_check(c, s, warn, sizeof warn, err, sizeof err), -1);
    CHECK_HAS(err, "appfn: argument 1 (N): 'x' is not an integer");
    cq_jobspec_free(s);
    CHECK(cq_jobspec_new("noop", "[1, [1e400]]", err, sizeof err) == NULL);
    CHECK_HAS(err, "noop: args hold a number beyond a double's range (such as 1e400)");
    { /* bytes that are not UTF-8 text: refused at cq_enqueue, nothing sent */
        const char *argv[] = {"ok", "caf\xe9"}; /* Latin-1 */
        s = cq_jobspec_new_argv("noop", argv, 2);
        REQUIRE(s != NULL);
        err[0] = '\0';
        CHECK_EQ(cq_jobspec_check(s, err, sizeof err), -1);
        /* its position and its value, shown escaped (it said 'an argument') */
        CHECK_HAS(err, "noop: argument 2, 'caf\\xe9', is not UTF-8 text");
        err[0] = '\0';
        CHECK_EQ(cq_client_check(c, s, warn, sizeof warn, err, sizeof err), -1);
        CHECK_HAS(err, "noop: argument 2, 'caf\\xe9', is not UTF-8 text");
        CHECK_EQ(cq_enqueue(c, &s, 1, CQ_NO_CHECK, err, sizeof err), -1);
        CHECK_HAS(err, "noop: argument 2, 'caf\\xe9', is not UTF-8 text");
        CHECK_EQ(cq_jobspec_enqueued(s), 0);
        CHECK_EQ(integer(rconn_commandf(&R, "LLEN cq:queue:default")), 1); /* appfn's, above */
        cq_jobspec_free(s);
    }
    { /* in an argument that is an object: named by its position */
        s = cq_jobspec_new("noop", "[\"ok\", {\"k\": [\"caf\xe9\"]}]", err, sizeof err);
        REQUIRE(s != NULL);
        err[0] = '\0';
        CHECK_EQ(cq_jobspec_check(s, err, sizeof err), -1);
        CHECK_HAS(err, "noop: argument 2 holds a string that is not UTF-8 text, which JSON's");
        cq_jobspec_free(s);
    }
    { /* in one call with a job due now, the one not UTF-8 due later: neither goes in, as
       * for a record over 1 MiB (test_enqueue_oversize) */
        const char *ok[] = {"ok"}, *latin1[] = {"caf\xe9"};
        cq_jobspec *two[2] = {cq_jobspec_new_argv("noop", ok, 1),
                              cq_jobspec_new_argv("noop", latin1, 1)};
        REQUIRE(two[0] != NULL && two[1] != NULL);
        CHECK_EQ(cq_jobspec_set_at(two[1], 4000000000.0), 0);
        err[0] = '\0';
        CHECK_EQ(cq_enqueue(c, two, 2, CQ_NO_CHECK, err, sizeof err), -1);
        CHECK_HAS(err, "noop: argument 1, 'caf\\xe9', is not UTF-8 text");
        CHECK_EQ(cq_jobspec_enqueued(two[0]), 0);
        CHECK_EQ(integer(rconn_commandf(&R, "LLEN cq:queue:default")), 1); /* appfn's */
        cq_jobspec_free(two[0]);
        cq_jobspec_free(two[1]);
    }
    DO("FLUSHALL");
    cq_client_free(c);
}

/* Whether this thread blocks SIGPIPE. */
static int sigpipe_blocked(void)
{
    sigset_t m;

    pthread_sigmask(SIG_BLOCK, NULL, &m);
    return sigismember(&m, SIGPIPE);
}

/* A program that links libcq need not ignore SIGPIPE: with the signal's default action, a
 * client whose connection Redis closed reads statuses again (20,000 ids: writes that meet
 * the closed socket) and lives, the lost connection an error or a new connection. */
static void test_no_sigpipe(void)
{
    enum { N = 20000 };
    struct sigaction dfl, old;
    static char names[N][16];
    static const char *ids[N];
    static cq_status *out[N];
    cq_status *st = NULL;
    char err[256];
    cq_client *c;
    int i, rc;

    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, &old);
    c = cq_client_new(url, NULL, err, sizeof err);
    REQUIRE(c != NULL);
    for (i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "gone-%d", i);
        ids[i] = names[i];
    }
    DO("CLIENT KILL TYPE normal SKIPME yes"); /* every connection but this test's own */
    rc = cq_status_get_many(c, ids, N, out, err, sizeof err);
    CHECK(rc == 0 || rc == -1); /* and still here */
    for (i = 0; rc == 0 && i < N; i++) cq_status_free(out[i]);
    CHECK(!sigpipe_blocked());                                     /* the thread's mask as it was */
    CHECK_EQ(cq_status_get(c, "gone-1", &st, err, sizeof err), 0); /* connected again */
    cq_status_free(st);
    /* A program that blocks SIGPIPE itself: the signal libcq's write raised is not left
     * pending for it to receive when it unblocks the signal. */
    {
        sigset_t s, pending;
        sigemptyset(&s);
        sigaddset(&s, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &s, NULL);
        DO("CLIENT KILL TYPE normal SKIPME yes");
        rc = cq_status_get_many(c, ids, N, out, err, sizeof err);
        for (i = 0; rc == 0 && i < N; i++) cq_status_free(out[i]);
        CHECK(sigpipe_blocked());
        CHECK(sigpending(&pending) == 0 && !sigismember(&pending, SIGPIPE));
        pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    }
    cq_client_free(c);
    sigaction(SIGPIPE, &old, NULL);
}

/* A connection Redis closed under an open client: the call fails in one line that says the
 * connection was lost and that the next command opens it again (the cause alone, "Server
 * closed the connection" or "Broken pipe", said neither), and the next call succeeds. */
static void test_lost_connection(void)
{
    cq_status *st = NULL;
    char err[512];
    cq_client *c = cq_client_new(url, NULL, err, sizeof err);

    REQUIRE(c != NULL);
    CHECK_EQ(cq_status_get(c, "lost-1", &st, err, sizeof err), 0);
    cq_status_free(st);
    DO("CLIENT KILL TYPE normal SKIPME yes");
    err[0] = '\0';
    CHECK_EQ(cq_status_get(c, "lost-1", &st, err, sizeof err), -1);
    CHECK_HAS(err, "reading job status: redis ");
    CHECK_HAS(err,
              "; the connection was lost (Redis stopped, restarted or closed it); it is "
              "opened again at the next command");
    CHECK(strchr(err, '\n') == NULL);
    CHECK_EQ(cq_status_get(c, "lost-1", &st, err, sizeof err), 0);
    cq_status_free(st);
    cq_client_free(c);
}

/* A job from JSON arguments: checked against the built-ins (sleep takes one duration),
 * enqueued with its JSON values as they were, and its status read back; the same function
 * with arguments of the wrong number is refused by the check, naming the usage. */
static void test_jobspec_json(void)
{
    cq_jobspec *s, *bad;
    cq_status *st = NULL, *many[3] = {NULL, NULL, NULL};
    const char *ids[3];
    char err[256], warn[256], rec[1024];
    cq_client *c = cq_client_new(url, NULL, err, sizeof err);

    REQUIRE(c != NULL);
    DO("FLUSHALL");
    s = cq_jobspec_new("sleep", "[0.25]", err, sizeof err);
    CHECK_NOTNULL(s);
    CHECK_EQ(cq_jobspec_set_id(s, "json-1"), 0);
    CHECK_EQ(cq_jobspec_set_queue(s, "jq"), 0);
    warn[0] = '\0';
    CHECK_EQ(cq_client_check(c, s, warn, sizeof warn, err, sizeof err), 0);
    CHECK_STREQ(warn, ""); /* a built-in: every worker serves it */
    CHECK_EQ(cq_enqueue(c, &s, 1, CQ_NO_CHECK, err, sizeof err), 1);
    CHECK_EQ(cq_jobspec_enqueued(s), 1);
    CHECK_STREQ(cq_jobspec_id(s), "json-1");
    reply_string(rec, sizeof rec, rconn_commandf(&R, "LINDEX cq:queue:jq 0"));
    CHECK_HAS(rec, "\"id\":\"json-1\"");
    CHECK_HAS(rec, "\"func\":\"sleep\"");
    CHECK_HAS(rec, "\"args\":[0.25]");

    bad = cq_jobspec_new("sleep", "[1, 2]", err, sizeof err);
    CHECK_NOTNULL(bad);
    err[0] = '\0';
    CHECK_EQ(cq_enqueue(c, &bad, 1, CQ_CHECK, err, sizeof err), -1);
    CHECK_HAS(err, "sleep takes 1 argument, got 2");
    CHECK_EQ(cq_jobspec_enqueued(bad), 0);
    cq_jobspec_free(bad);

    /* json-1 not ended, due later than a job made here: cq_enqueue makes one call a due
     * time, and the refusal keeps out the jobs of every call, not only its own. */
    {
        cq_jobspec *now = cq_jobspec_new("noop", NULL, err, sizeof err), *again;
        cq_jobspec *both[2];
        again = cq_jobspec_new("noop", NULL, err, sizeof err);
        REQUIRE(now != NULL && again != NULL);
        CHECK_EQ(cq_jobspec_set_id(again, "json-1"), 0);
        CHECK_EQ(cq_jobspec_set_at(again, 4102444800.0), 0); /* 2100 */
        both[0] = now;
        both[1] = again;
        err[0] = '\0';
        CHECK_EQ(cq_enqueue(c, both, 2, CQ_NO_CHECK, err, sizeof err), -1);
        CHECK_HAS(err, "job json-1 is queued, not ended");
        CHECK_EQ(cq_jobspec_enqueued(now), 0);
        CHECK_EQ(cq_jobspec_enqueued(again), 0);
        reply_string(rec, sizeof rec, rconn_commandf(&R, "LINDEX cq:queue:default 0"));
        CHECK_STREQ(rec, ""); /* nothing in the queue of the job due now */
        cq_jobspec_free(now);
        cq_jobspec_free(again);
    }

    /* Its status, alone and among others: one never enqueued is CQ_UNKNOWN, not an error. */
    CHECK_EQ(cq_status_get(c, "json-1", &st, err, sizeof err), 0);
    CHECK_NOTNULL(st);
    CHECK_EQ(cq_status_state(st), CQ_QUEUED);
    CHECK_STREQ(cq_status_state_name(cq_status_state(st)), "queued");
    CHECK_STREQ(cq_status_field(st, "func"), "sleep");
    CHECK_STREQ(cq_status_field(st, "queue"), "jq");
    CHECK(cq_status_field(st, "result") == NULL);
    CHECK_EQ(cq_state_ended(cq_status_state(st)), 0);
    cq_status_free(st);
    DO("HSET cq:job:json-2 status finished result done");
    ids[0] = "json-1";
    ids[1] = "never-enqueued";
    ids[2] = "json-2";
    CHECK_EQ(cq_status_get_many(c, ids, 3, many, err, sizeof err), 0);
    CHECK(many[0] != NULL && cq_status_state(many[0]) == CQ_QUEUED);
    CHECK(many[1] != NULL && cq_status_state(many[1]) == CQ_UNKNOWN);
    CHECK(many[2] != NULL && cq_status_state(many[2]) == CQ_FINISHED);
    CHECK(many[2] != NULL && cq_state_ended(cq_status_state(many[2])) == 1);
    CHECK_STREQ(many[2] ? cq_status_field(many[2], "result") : "", "done");
    cq_status_free(many[0]);
    cq_status_free(many[1]);
    cq_status_free(many[2]);

    /* An invalid id is refused before Redis is asked. */
    st = NULL;
    err[0] = '\0';
    CHECK_EQ(cq_status_get(c, "bad id", &st, err, sizeof err), -1);
    CHECK_HAS(err, "job id 'bad id'");
    CHECK(st == NULL);

    cq_jobspec_free(s);
    cq_client_free(c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    server_start();
    snprintf(url, sizeof url, "unix://%s", sock_path);

    RUN(test_jobspec_refusals);
    RUN(test_settings_check);
    RUN(test_worker_root_and_command);
    RUN(test_no_sigpipe);
    RUN(test_queue_workers);
    RUN(test_check_workers_refused);
    RUN(test_check_default_queue);
    RUN(test_declarations);
    RUN(test_enqueue_oversize);
    RUN(test_jobspec_json);
    RUN(test_lost_connection);
    return check_report();
}
