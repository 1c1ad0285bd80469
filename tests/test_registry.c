/* test_registry.c - function registries: argument specs, checks and conversions, the
 * built-ins, and what a handler sees through the cq_job accessors (common/registry.c,
 * common/call.c). No Redis. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "call.h"
#include "check.h"
#include "command.h"
#include "job.h"
#include "registry.h"
#include "util.h"

static int fn_ok(cq_job *job, void *udata)
{
    (void)job;
    (void)udata;
    return 0;
}

/* Check args (JSON text) against f; returns the check's 0/-1 and leaves the error in err. */
static int check(const struct cq_function *f, const char *json, int convert, char *err,
                 size_t errlen, char **after)
{
    cJSON *a = cJSON_Parse(json);
    int rc = registry_check_args(f, a, convert, err, errlen);

    if (after != NULL) *after = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return rc;
}

static void test_specs(void)
{
    struct cq_registry *r = registry_new();
    cq_function *f;
    char err[512];

    f = cq_function_add(r, "download_link", "DIRECTORY LINK", fn_ok, NULL);
    CHECK(f != NULL);
    if (f == NULL) return;
    CHECK_STREQ(f->usage, "download_link DIRECTORY LINK");
    CHECK_EQ(f->min_args, 2);
    CHECK_EQ(f->max_args, 2);
    f = cq_function_add(r, "resize", "FILE WIDTH:integer [SCALE:number] [TAGS:json...]", fn_ok,
                        NULL);
    CHECK(f != NULL);
    if (f == NULL) return;
    CHECK_STREQ(f->usage, "resize FILE WIDTH [SCALE] [TAGS...]");
    CHECK_STREQ(f->spec, "FILE WIDTH:integer [SCALE:number] [TAGS:json...]");
    CHECK_EQ(f->min_args, 2);
    CHECK_EQ(f->max_args, -1);

    /* Bad declarations are refused with the reason. */
    CHECK(cq_function_add(r, "x", "A:float", fn_ok, NULL) == NULL);
    CHECK_HAS(cq_registry_error(r), "unknown type 'float'");
    CHECK(cq_function_add(r, "x", "[A] B", fn_ok, NULL) == NULL);
    CHECK_HAS(cq_registry_error(r), "a required argument follows an optional one");
    CHECK(cq_function_add(r, "x", "A... B", fn_ok, NULL) == NULL);
    CHECK_HAS(cq_registry_error(r), "comes last");
    CHECK(cq_function_add(r, "bad name", "", fn_ok, NULL) == NULL);
    CHECK_HAS(cq_registry_error(r), "function name 'bad name'");
    CHECK(cq_function_add(r, "resize", "", fn_ok, NULL) == NULL);
    CHECK_HAS(cq_registry_error(r), "already registered");
    CHECK(cq_function_add(r, "nohandler", "", NULL, NULL) == NULL);

    /* Arity and types. */
    CHECK_EQ(
        check(registry_find(r, "download_link"), "[\"a\",\"b\",\"c\"]", 0, err, sizeof err, NULL),
        -1);
    CHECK_HAS(err, "download_link takes 2 arguments, got 3 (usage: download_link DIRECTORY LINK)");
    f = (cq_function *)registry_find(r, "resize");
    CHECK_EQ(check(f, "[\"a\"]", 0, err, sizeof err, NULL), -1);
    CHECK_HAS(err, "takes at least 2 arguments, got 1");
    CHECK_EQ(check(f, "[\"a\",\"wide\"]", 0, err, sizeof err, NULL), -1);
    CHECK_HAS(err, "argument 2 (WIDTH): 'wide' is not an integer");
    CHECK_EQ(check(f, "[\"a\",1.5]", 0, err, sizeof err, NULL), -1);
    CHECK_HAS(err, "argument 2 (WIDTH) must be an integer");
    CHECK_EQ(check(f, "[7,1]", 0, err, sizeof err, NULL), -1);
    CHECK_HAS(err, "argument 1 (FILE) must be a string, not a number");
    CHECK_EQ(check(f, "[\"a\",\"640\",\"x\"]", 0, err, sizeof err, NULL), -1);
    CHECK_HAS(err, "'x' is not a number");
    CHECK_EQ(check(f, "[\"a\",\"640\",\"0.5\",\"{nope\"]", 1, err, sizeof err, NULL), -1);
    CHECK_HAS(err, "is not a JSON value");
    /* JSON text that would decode to a string cut at a NUL, or to a number no double holds:
     * refused, not passed on as "x" or null. */
    CHECK_EQ(check(f, "[\"a\",\"640\",\"0.5\",\"\\\"x\\\\u0000y\\\"\"]", 1, err, sizeof err, NULL),
             -1);
    CHECK_HAS(err, "argument 4 (TAGS) holds a NUL character (\\u0000)");
    CHECK_EQ(check(f, "[\"a\",\"640\",\"0.5\",\"[1e400]\"]", 1, err, sizeof err, NULL), -1);
    CHECK_HAS(err, "'[1e400]' is not a JSON value");
    /* JSON text that cJSON takes and JSON has not: '0755' arrived as 755, a raw tab in a
     * string and a form feed between values were taken. Refused, saying why; JSON's own
     * zeros, exponents and white space are taken as before. */
    {
        static const char *const lax[] = {
            "0755", "[1,01]", "-00.5", "1.", "{\\\"a\\\":\\\"x\ty\\\"}", "\f1", "[1,\v2]"};
        static const char *const strict[] = {
            "0", "-0", "0.5", "0e1", "-0.0", "1E+2", " \\t\\n\\r[{},[],\\\"\\\\u00e9\\\"] "};
        char json[128];
        for (size_t i = 0; i < sizeof lax / sizeof lax[0]; i++) {
            snprintf(json, sizeof json, "[\"a\",\"1\",\"1\",\"%s\"]", lax[i]);
            err[0] = '\0';
            CHECK_EQ(check(f, json, 1, err, sizeof err, NULL), -1);
            CHECK_HAS(err, "argument 4 (TAGS): '");
            CHECK_HAS(err,
                      "' is not a JSON value as RFC 8259 writes one: a number has no "
                      "leading zero (0755 would arrive as 755)");
        }
        for (size_t i = 0; i < sizeof strict / sizeof strict[0]; i++) {
            snprintf(json, sizeof json, "[\"a\",\"1\",\"1\",\"%s\"]", strict[i]);
            CHECK_EQ(check(f, json, 1, err, sizeof err, NULL), 0);
        }
    }
    { /* JSON nested deeper than cJSON reads: said so (it said 'is not a JSON value') */
        char deep[2100] = "[\"a\",\"640\",\"0.5\",\"", *p = deep + strlen(deep);
        memset(p, '[', 1001);
        memset(p + 1001, ']', 1001);
        strcpy(p + 2002, "\"]");
        CHECK_EQ(check(f, deep, 1, err, sizeof err, NULL), -1);
        CHECK_HAS(err, "argument 4 (TAGS) nests arrays or objects deeper than 1000 levels");
    }

    /* Text of a number as JSON writes one, not all that strtod and strtoll read: hex was
     * taken as 16, a space before the digits (but not after them), '+' and ".5" too. */
    {
        static const char *const bad[] = {"0x10", " 640", "+640", "640 ", "6e2", "0x1p3"};
        static const char *const badnum[] = {"0x10", " 0.5", "+0.5", ".5", "5.", "1e", "1e+"};
        char json[64];
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            snprintf(json, sizeof json, "[\"a\",\"%s\"]", bad[i]);
            CHECK_EQ(check(f, json, 1, err, sizeof err, NULL), -1);
            CHECK_HAS(err, "argument 2 (WIDTH)");
        }
        for (size_t i = 0; i < sizeof badnum / sizeof badnum[0]; i++) {
            snprintf(json, sizeof json, "[\"a\",\"1\",\"%s\"]", badnum[i]);
            CHECK_EQ(check(f, json, 1, err, sizeof err, NULL), -1);
            CHECK_HAS(err, "is not a number");
        }
        CHECK_EQ(check(f, "[\"a\",\"-640\",\"-1.5e-3\"]", 1, err, sizeof err, NULL), 0);
        CHECK_EQ(check(f, "[\"a\",\"7\",\"2E+2\"]", 1, err, sizeof err, NULL), 0);
        CHECK_EQ(check(f, "[\"a\",\"0\",\"-0\"]", 1, err, sizeof err, NULL), 0);
        CHECK_EQ(check(f, "[\"a\",\"-0\",\"0.05e-07\"]", 1, err, sizeof err, NULL), 0);
    }

    /* A leading zero, which JSON's numbers have not: '007' was taken as 7, and a command's
     * MODE:integer given 0755 ran with 755. Refused, the argument named, the number without
     * its zeros offered; by the worker too (convert 0: a record written by hand). */
    {
        static const struct {
            const char *args, *line;
        } zero[] = {
            {"[\"a\",\"007\"]",
             "resize: argument 2 (WIDTH): '007' is not an integer: JSON's "
             "numbers have no leading zero; give 7 (a leading 0 does not "
             "make it octal) (usage: resize FILE WIDTH [SCALE] [TAGS...])"},
            {"[\"a\",\"-0755\"]",
             "argument 2 (WIDTH): '-0755' is not an integer: JSON's "
             "numbers have no leading zero; give -755 "},
            {"[\"a\",\"00\"]",
             "'00' is not an integer: JSON's numbers have no leading zero; "
             "give 0 "},
            {"[\"a\",\"1\",\"-00.5\"]",
             "argument 3 (SCALE): '-00.5' is not a number: JSON's "
             "numbers have no leading zero; give -0.5 "},
            {"[\"a\",\"1\",\"01e3\"]",
             "argument 3 (SCALE): '01e3' is not a number: "
             "JSON's numbers have no leading zero; give 1e3 "},
        };
        for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++) {
            for (int convert = 0; convert <= 1; convert++) {
                err[0] = '\0';
                CHECK_EQ(check(f, zero[i].args, convert, err, sizeof err, NULL), -1);
                CHECK_HAS(err, zero[i].line);
            }
        }
        /* Not numbers at all, as before: no talk of a zero. */
        CHECK_EQ(check(f, "[\"a\",\"007x\"]", 1, err, sizeof err, NULL), -1);
        CHECK_STREQ(err,
                    "resize: argument 2 (WIDTH): '007x' is not an integer (usage: resize "
                    "FILE WIDTH [SCALE] [TAGS...])");
        CHECK_EQ(check(f, "[\"a\",\"1\",\"00.\"]", 1, err, sizeof err, NULL), -1);
        CHECK_HAS(err, "'00.' is not a number (usage:");
    }

    /* A producer's strings become the declared types. */
    {
        char *after = NULL;
        CHECK_EQ(check(f, "[\"a\",\"640\",\"0.5\",\"{\\\"k\\\":[1]}\",\"true\"]", 1, err,
                       sizeof err, &after),
                 0);
        CHECK_STREQ(after, "[\"a\",640,0.5,{\"k\":[1]},true]");
        free(after);
    }
    registry_free(r);
}

static void test_builtins(void)
{
    struct cq_registry *r = registry_new();
    const struct cq_function *f;
    char err[512];

    CHECK_EQ(registry_add_builtins(r), 0);
    f = registry_find(r, "sleep");
    CHECK(f != NULL && registry_find(r, "nope") == NULL);
    if (f == NULL) return;
    CHECK_EQ(check(f, "[\"abc\"]", 0, err, sizeof err, NULL), -1);
    CHECK_HAS(err, "sleep: argument 1 (SECONDS): 'abc' is not a duration");
    CHECK_EQ(check(f, "[\"250ms\"]", 0, err, sizeof err, NULL), 0);
    CHECK_EQ(check(f, "[2]", 0, err, sizeof err, NULL), 0);
    /* Durations are at most 100 years, as a number too. */
    CHECK_EQ(check(f, "[3153600000]", 0, err, sizeof err, NULL), 0);
    CHECK_EQ(check(f, "[3153600001]", 0, err, sizeof err, NULL), -1);
    CHECK_EQ(check(f, "[1e300]", 0, err, sizeof err, NULL), -1);
    CHECK_EQ(check(f, "[\"36501d\"]", 0, err, sizeof err, NULL), -1);
    CHECK_EQ(check(registry_find(r, "noop"), "[1,\"a\",{}]", 0, err, sizeof err, NULL), 0);
    registry_unknown(r, "rm", err, sizeof err);
    CHECK_STREQ(err, "unknown function 'rm' (known: noop, sleep)");
    registry_free(r);
}

/* What a test of calls made: its thread, its call's buffers, its job, its registry. */
static void calls_free(struct call_thread *ct, struct cq_job *c, struct job *j,
                       struct cq_registry *r)
{
    call_thread_free(ct);
    free(c->argv);
    free(c->scratch);
    free(c->error);
    job_free(j);
    registry_free(r);
}

/* sleep never sleeps less than it was asked, by either clock a worker reads: its job's line
 * gives the wall clock's time between start and end (12.5 ms on a millisecond clock ended
 * after 12, and 250 ms after 249.0). */
static void test_sleep_whole(void)
{
    struct cq_registry *r = registry_new();
    struct job *j = job_new("sleep", cJSON_Parse("[\"12.5ms\"]"));
    struct call_thread ct;
    struct cq_job c;
    long long short_mono = 0;
    int i, rc = 0, stop = 0, short_wall = 0;

    CHECK_EQ(registry_add_builtins(r), 0);
    call_thread_init(&ct, r);
    memset(&c, 0, sizeof c);
    str_copy(j->id, sizeof j->id, "sleep-1");
    for (i = 0; i < 20; i++) {
        double wall = time_now();
        long long mono = time_mono_us();
        rc |= call_run(&c, &ct, j, registry_find(r, "sleep"), "/tmp", &stop, 0, NULL);
        mono = time_mono_us() - mono;
        wall = time_now() - wall;
        if (mono < 12500 && (short_mono == 0 || mono < short_mono)) short_mono = mono;
        if (wall < 0.0125) short_wall++;
        call_end(&c);
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(short_mono, 0); /* the shortest of the short ones, in microseconds */
    CHECK_EQ(short_wall, 0);
    calls_free(&ct, &c, j, r);
}

/* Where each function came from: cq's built-ins say "builtin", a program's own (what it
 * adds to cq_worker_registry or cq_client_registry) "program", and a command its program;
 * adding a command leaves the program's next function the program's. */
static void test_sources(void)
{
    struct cq_registry *r = registry_new();
    cq_function *mine, *other;
    char err[512], *out = NULL;
    size_t len = 0;
    FILE *f;

    CHECK_EQ(registry_add_builtins(r), 0);
    mine = cq_function_add(r, "mine", "X:integer", fn_ok, NULL);
    CHECK(mine != NULL);
    if (mine == NULL) {
        registry_free(r);
        return;
    }
    CHECK_STREQ(registry_find(r, "noop")->source, "builtin");
    CHECK_STREQ(mine->source, "program");
    CHECK_EQ(command_add(r, "tru=/bin/true", err, sizeof err), 0);
    CHECK_STREQ(registry_find(r, "tru")->source, "command /bin/true");
    /* A taken name is told before a missing program (the first a usage error, the second
     * not), by the check as by the add; the check without a registry cannot know it. */
    CHECK_EQ(command_check(r, "tru=/nonexistent/prog", err, sizeof err), -1);
    CHECK_STREQ(err,
                "'tru=/nonexistent/prog': function tru: already registered (by command "
                "/bin/true)");
    CHECK_EQ(command_add(r, "noop=/nonexistent/prog", err, sizeof err), -1);
    CHECK_STREQ(err, "'noop=/nonexistent/prog': function noop: already registered (by builtin)");
    CHECK_EQ(command_check(NULL, "noop=/bin/true", err, sizeof err), 0);
    CHECK_EQ(command_check(r, "fresh=/nonexistent/prog", err, sizeof err), 0);
    {
        cq_worker *w = cq_worker_new(); /* what cworker asks of each --command */
        CHECK_EQ(cq_worker_check_command(w, "noop=/bin/true", err, sizeof err), -1);
        CHECK_STREQ(err, "'noop=/bin/true': function noop: already registered (by builtin)");
        CHECK_EQ(cq_worker_check_command(w, "x=/nonexistent/prog", err, sizeof err), 0);
        CHECK_EQ(cq_worker_add_command(w, "x=/bin/true", err, sizeof err), 0);
        CHECK_EQ(cq_worker_check_command(w, "x=/bin/echo", err, sizeof err), -1);
        CHECK_STREQ(err, "'x=/bin/echo': function x: already registered (by command /bin/true)");
        CHECK_EQ(cq_worker_check_command(w, "x y=/bin/echo", err, sizeof err), -1);
        CHECK_HAS(err, "function name 'x y'");
        cq_worker_free(w);
    }
    other = cq_function_add(r, "other", "", fn_ok, NULL);
    CHECK(other != NULL && strcmp(other->source, "program") == 0);

    /* A program may name itself, in one line. */
    CHECK_EQ(cq_function_set_source(mine, "program thumbs 2.1 \xc3\xa9"), 0);
    CHECK_STREQ(mine->source, "program thumbs 2.1 \xc3\xa9");
    CHECK_EQ(cq_function_set_source(mine, ""), -1);
    CHECK_EQ(cq_function_set_source(mine, "two\nlines"), -1);
    CHECK_EQ(cq_function_set_source(mine, "bad \xff"), -1);
    CHECK_EQ(cq_function_set_source(mine,
                                    "csi \xc2\x9b"
                                    "2J"),
             -1); /* a C1 control: U+009B */
    CHECK_EQ(cq_function_set_source(NULL, "x"), -1);
    CHECK_EQ(cq_function_set_source(mine, NULL), -1);
    CHECK_STREQ(mine->source, "program thumbs 2.1 \xc3\xa9");
    CHECK_EQ(cq_function_set_source(mine, "nbsp \xc2\xa0ok"), 0); /* U+00A0 is no control */
    CHECK_EQ(cq_function_set_source(mine, "program"), 0);

    f = open_memstream(&out, &len);
    cq_registry_print(r, f);
    fclose(f);
    CHECK_HAS(out, "sleep SECONDS:duration  sleep SECONDS (e.g. 2 or 250ms) (retries 0)\n");
    CHECK_HAS(out, "mine X:integer          (retries 0; program)\n");
    CHECK_HAS(out, "(retries 3; command /bin/true)\n");
    free(out);
    registry_free(r);
}

/* Whether some line of s ends in a space. */
static int trailing_space(const char *s)
{
    const char *p;

    for (p = s; (p = strchr(p, '\n')) != NULL; p++)
        if (p > s && p[-1] == ' ') return 1;
    return 0;
}

/* cworker --list-functions reads as --help does: the summaries in one column two spaces past
 * the longest signature that fits (32 at most), a longer signature alone on its line with its
 * summary under the others, and no line ending in spaces (an empty summary left two). */
static void test_print(void)
{
    struct cq_registry *r = registry_new();
    cq_function *f;
    char *out = NULL;
    size_t len = 0;
    FILE *fp;

    CHECK_EQ(registry_add_builtins(r), 0);
    f = cq_function_add(r, "thumbnail", "PATH WIDTH:integer HEIGHT:integer", fn_ok, NULL);
    CHECK(f != NULL && cq_function_set_summary(f, "make a thumbnail") == 0);
    CHECK(cq_function_add(r, "bare", "", fn_ok, NULL) != NULL); /* no summary */
    fp = open_memstream(&out, &len);
    cq_registry_print(r, fp);
    fclose(fp);
    CHECK_STREQ(out,
                "noop [ARG:any...]       do nothing (for tests and benchmarks) (retries 0)\n"
                "sleep SECONDS:duration  sleep SECONDS (e.g. 2 or 250ms) (retries 0)\n"
                "thumbnail PATH WIDTH:integer HEIGHT:integer\n"
                "                        make a thumbnail (retries 0; program)\n"
                "bare                    (retries 0; program)\n");
    CHECK(!trailing_space(out));
    free(out);
    registry_free(r);

    /* Only long signatures: their summaries at the widest column. */
    r = registry_new();
    f = cq_function_add(r, "a_function_with_a_long_name", "FIRST SECOND", fn_ok, NULL);
    CHECK(f != NULL);
    fp = open_memstream(&out, &len);
    cq_registry_print(r, fp);
    fclose(fp);
    CHECK_STREQ(out,
                "a_function_with_a_long_name FIRST SECOND\n"
                "                                (retries 0; program)\n");
    free(out);
    registry_free(r);
}

/* The pattern of docs/EXTENDING.md's handlers, `return cq_job_result_json(job, json)`, with
 * JSON that is not: the job's error says the result was refused and why, not that the
 * handler gave no reason. A result refused, then given again right, leaves no trace. */
static int fn_badjson(cq_job *job, void *udata)
{
    (void)udata;
    return cq_job_result_json(job, "{\"path\": ");
}

static int fn_bigjson(cq_job *job, void *udata)
{
    (void)udata;
    return cq_job_result_json(job, "[1e400]");
}

static int fn_refused_then_ok(cq_job *job, void *udata)
{
    (void)udata;
    CHECK_EQ(cq_job_result_json(job, "nope"), -1);
    CHECK_EQ(cq_job_result_json(job, "[1]"), 0);
    return 0;
}

/* cq_job_fail, then 0: the job finishes (cq.h: 0 is finished), and the log says which failure
 * went unrecorded. */
static int fn_fail_then_ok(cq_job *job, void *udata)
{
    (void)udata;
    cq_job_fail(job, CQ_HOST, 5, "disk full");
    return 0;
}

/* What call_run logs of fn (at info), read back from stderr made a pipe for the call; rc
 * what it returned. */
static const char *logged_run(struct cq_job *c, struct call_thread *ct, const struct job *j,
                              const struct cq_function *fn, int *rc, char *buf, size_t len)
{
    struct logger lg = {"test", CQ_LOG_INFO, 0, NULL};
    int p[2], saved = dup(STDERR_FILENO), stop = 0;
    ssize_t n = 0;

    buf[0] = '\0';
    if (saved < 0 || pipe(p) != 0) return buf;
    fflush(stderr);
    dup2(p[1], STDERR_FILENO);
    *rc = call_run(c, ct, j, fn, "/tmp", &stop, 0, &lg);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(p[1]);
    n = read(p[0], buf, len - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(p[0]);
    return buf;
}

static const char *seen_id;
static long long seen_int;
static double seen_num, seen_dur;
static const char *seen_json;

static int fn_look(cq_job *job, void *udata)
{
    (void)udata;
    seen_id = cq_job_id(job);
    if (cq_job_arg_integer(job, 0, &seen_int) != 0) return cq_job_fail(job, CQ_PERMANENT, 0, "int");
    if (cq_job_arg_number(job, 1, &seen_num) != 0) return cq_job_fail(job, CQ_PERMANENT, 0, "num");
    if (cq_job_arg_duration(job, 2, &seen_dur) != 0)
        return cq_job_fail(job, CQ_PERMANENT, 0, "dur");
    seen_json = cq_job_arg_json(job, 3);
    if (cq_job_arg_string(job, 1) != NULL || cq_job_arg_string(job, 9) != NULL)
        return cq_job_fail(job, CQ_PERMANENT, 0, "str");
    /* One JSON value and nothing after it but white space; no string a NUL would cut, no
     * number beyond a double. */
    if (cq_job_result_json(job, "{\"a\": 1} and more") != -1 ||
        cq_job_result_json(job, "\"a\\u0000b\"") != -1 ||
        cq_job_result_json(job, "[1e400]") != -1 || cq_job_result_json(job, "[\"a\xff\"]") != -1 ||
        cq_job_result_json(job, "[6000000000000001] \n") != 0)
        return cq_job_fail(job, CQ_PERMANENT, 0, "result_json");
    return cq_job_result_json(job, "{\"ok\": true,\n \"n\": 2}");
}

static int fn_fail(cq_job *job, void *udata)
{
    (void)udata;
    return cq_job_fail(job, CQ_TRANSIENT, 7, "remote said no\nsecond line");
}

static int fn_bare(cq_job *job, void *udata)
{
    (void)job;
    (void)udata;
    return -1;
}

static void *thread_init_fails(void *udata, char *err, size_t errlen)
{
    (void)udata;
    err_set(err, errlen, "no handle today");
    return NULL;
}

static void test_calls(void)
{
    struct cq_registry *r = registry_new();
    struct call_thread ct;
    struct cq_job c;
    struct job *j = job_new("look", cJSON_Parse("[\"42\", 1.5, \"250ms\", {\"a\": [1, 2]}]"));
    cq_function *f;
    int stop = 0;

    memset(&c, 0, sizeof c);
    str_copy(j->id, sizeof j->id, "job-1");
    cq_function_add(r, "look", "[A:any...]", fn_look, NULL);
    cq_function_add(r, "fail", "", fn_fail, NULL);
    cq_function_add(r, "bare", "", fn_bare, NULL);
    cq_function_add(r, "badjson", "", fn_badjson, NULL);
    cq_function_add(r, "bigjson", "", fn_bigjson, NULL);
    cq_function_add(r, "refusedok", "", fn_refused_then_ok, NULL);
    cq_function_add(r, "failok", "", fn_fail_then_ok, NULL);
    f = cq_function_add(r, "nothread", "", fn_ok, NULL);
    cq_function_set_thread_hooks(f, thread_init_fails, NULL);
    call_thread_init(&ct, r);

    CHECK_EQ(call_run(&c, &ct, j, registry_find(r, "look"), "/tmp", &stop, 30, NULL), 0);
    CHECK_STREQ(seen_id, "job-1");
    CHECK_EQ(seen_int, 42);
    CHECK(seen_num == 1.5 && seen_dur == 0.25);
    CHECK_STREQ(seen_json, "{\"a\":[1,2]}");
    CHECK_STREQ(c.result, "{\"ok\":true,\"n\":2}");
    CHECK_EQ(c.result_json, 1);
    CHECK(c.deadline > time_now() + 29);
    call_end(&c);

    CHECK_EQ(call_run(&c, &ct, j, registry_find(r, "fail"), "/tmp", &stop, 0, NULL), -1);
    CHECK_STREQ(c.error, "remote said no second line");
    CHECK(c.transient == 1 && c.retry_after == 7 && c.deadline == 0);
    call_end(&c);

    CHECK_EQ(call_run(&c, &ct, j, registry_find(r, "bare"), "/tmp", &stop, 0, NULL), -1);
    CHECK_HAS(c.error, "bare failed");
    CHECK_EQ(c.transient, 0);
    call_end(&c);

    CHECK_EQ(call_run(&c, &ct, j, registry_find(r, "badjson"), "/tmp", &stop, 0, NULL), -1);
    CHECK_STREQ(c.error,
                "badjson: its result was refused (cq_job_result_json): not one valid JSON value");
    CHECK_EQ(c.transient, 0);
    call_end(&c);
    CHECK_EQ(call_run(&c, &ct, j, registry_find(r, "bigjson"), "/tmp", &stop, 0, NULL), -1);
    CHECK_STREQ(c.error,
                "bigjson: its result was refused (cq_job_result_json): a number beyond "
                "a double's range");
    call_end(&c);
    CHECK_EQ(call_run(&c, &ct, j, registry_find(r, "refusedok"), "/tmp", &stop, 0, NULL), 0);
    CHECK_STREQ(c.result, "[1]");
    call_end(&c);
    CHECK_EQ(call_run(&c, &ct, j, registry_find(r, "bare"), "/tmp", &stop, 0, NULL), -1);
    CHECK_STREQ(c.error, "bare failed (its handler gave no reason)"); /* nothing left over */
    call_end(&c);
    {
        char log[1024];
        int rc = -2;
        CHECK_HAS(logged_run(&c, &ct, j, registry_find(r, "failok"), &rc, log, sizeof log),
                  "WARN failok job-1: finished, as its handler returned 0, though it called "
                  "cq_job_fail (disk full): to fail the job, return cq_job_fail's -1");
        CHECK_EQ(rc, 0);
        /* No failure left behind: a CQ_HOST one counted against the host, for a job that
         * finished (three in a row benched the function). */
        CHECK(c.failed == 0 && c.host == 0 && c.transient == 0 && c.retry_after == 0);
        call_end(&c);
        CHECK_STREQ(logged_run(&c, &ct, j, registry_find(r, "look"), &rc, log, sizeof log), "");
        CHECK_EQ(rc, 0);
        call_end(&c);
    }

    CHECK_EQ(call_run(&c, &ct, j, registry_find(r, "nothread"), "/tmp", &stop, 0, NULL), -1);
    CHECK_HAS(c.error, "nothread: cannot set up this worker thread: no handle today");
    CHECK_EQ(c.transient, 1);
    call_end(&c);

    calls_free(&ct, &c, j, r);
}

/* A job of many arguments (200,000, a 1 MiB record's worth): checked and converted, then
 * read one by one by its handler, in time that grows with their number, not its square (the
 * 20,000 the same way is the yardstick: a tenth of the time, where quadratic would be a
 * hundredth). Also a text result cut at CQ_RESULT_MAX bytes, not inside a character. */
static double sum_seen;

static int fn_sum(cq_job *job, void *udata)
{
    int i, n = cq_job_nargs(job);
    (void)udata;
    sum_seen = 0;
    for (i = 0; i < n; i++) {
        double v;
        if (cq_job_arg_number(job, i, &v) != 0) return cq_job_fail(job, CQ_PERMANENT, 0, "arg");
        sum_seen += v;
    }
    return cq_job_arg_string(job, n) == NULL ? 0 : -1;
}

static double many_args_run(const struct cq_function *f, struct call_thread *ct, int n)
{
    cJSON *a = cJSON_CreateArray();
    struct job *j;
    struct cq_job c;
    char err[256], num[24];
    int stop = 0, i;
    double t0;

    memset(&c, 0, sizeof c);
    for (i = 1; i <= n; i++) {
        snprintf(num, sizeof num, "%d", i);
        cJSON_AddItemToArray(a, cJSON_CreateString(num)); /* as cq_jobspec_new_argv makes them */
    }
    j = job_new("sum", a);
    t0 = time_now();
    CHECK_EQ(registry_check_args(f, j->args, 1, err, sizeof err), 0);
    CHECK_EQ(call_run(&c, ct, j, f, "/tmp", &stop, 0, NULL), 0);
    t0 = time_now() - t0;
    CHECK(sum_seen == (double)n * (n + 1) / 2);
    call_end(&c);
    free(c.argv);
    free(c.scratch);
    free(c.error);
    job_free(j);
    return t0;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void test_many_args(void)
{
    struct cq_registry *r = registry_new();
    const struct cq_function *f;
    struct call_thread ct;
    double small[3], large[3];
    int i;

    cq_function_add(r, "sum", "[X:number...]", fn_sum, NULL);
    f = registry_find(r, "sum");
    REQUIRE(f != NULL);
    call_thread_init(&ct, r);
    for (i = 0; i < 3; i++) { /* alternating, medians of 3 */
        small[i] = many_args_run(f, &ct, 20000);
        large[i] = many_args_run(f, &ct, 200000);
    }
    qsort(small, 3, sizeof small[0], by_value);
    qsort(large, 3, sizeof large[0], by_value);
    if (!(large[1] < 30 * small[1]))
        fprintf(stderr, "  200,000 arguments took %.3f s, 20,000 %.3f s\n", large[1], small[1]);
    CHECK(large[1] < 30 * small[1]);
    call_thread_free(&ct);
    registry_free(r);

    { /* "€" is 3 bytes: one that would straddle the limit is left out whole */
        struct cq_job c;
        char *text = malloc(CQ_RESULT_MAX + 8);
        REQUIRE(text != NULL);
        memset(&c, 0, sizeof c);
        memset(text, 'a', CQ_RESULT_MAX - 2);
        strcpy(text + CQ_RESULT_MAX - 2, "\xe2\x82\xac tail");
        CHECK_EQ(cq_job_result(&c, text), 0);
        CHECK_EQ(strlen(c.result), (size_t)CQ_RESULT_MAX - 2);
        strcpy(text + CQ_RESULT_MAX - 3, "\xe2\x82\xac tail");
        CHECK_EQ(cq_job_result(&c, text), 0);
        CHECK_EQ(strlen(c.result), (size_t)CQ_RESULT_MAX);
        free(c.result);
        c.result = NULL;
        /* a byte that is no part of a UTF-8 character: a '?' for it */
        CHECK_EQ(cq_job_result(&c, "caf\xc3\xa9 \xff\xc3 end\n"), 0);
        CHECK_STREQ(c.result, "caf\xc3\xa9 ?? end ");
        free(c.result);
        free(text);
    }
}

/* Deferral, as call.c sees it: a handler that calls cq_job_defer leaves its call deferred
 * whatever it returns; cq_job_resume goes to the owner's requeue, and call_continue runs the
 * continuation it named, which ends the call, fails it, or defers it again. */
static int requeued, continued;
static void *requeued_owner;

static void requeue(void *owner)
{
    requeued++;
    requeued_owner = owner;
}

static int fn_defer(cq_job *job, void *udata)
{
    (void)udata;
    cq_job_defer(job);
    return -1; /* a deferred call is deferred, whatever the handler returns */
}

static int cont_again(cq_job *job, void *arg)
{
    (void)arg;
    continued++;
    return cq_job_defer(job);
}

static int cont_fail(cq_job *job, void *arg)
{
    continued++;
    return cq_job_fail(job, CQ_TRANSIENT, 0, "ended after %s", (const char *)arg);
}

static int cont_bare(cq_job *job, void *arg)
{
    (void)job;
    (void)arg;
    continued++;
    return -1;
}

static int cont_ok(cq_job *job, void *arg)
{
    continued++;
    return cq_job_result(job, arg);
}

static void test_deferral(void)
{
    struct cq_registry *r = registry_new();
    struct call_thread ct;
    struct cq_job *c = xcalloc(1, sizeof *c);
    struct job *j = job_new("later", cJSON_Parse("[]"));
    int stop = 0, owner;

    cq_function_add(r, "later", "", fn_defer, NULL);
    call_thread_init(&ct, r);
    c->requeue = requeue;
    c->owner = &owner;
    CHECK_EQ(call_run(c, &ct, j, registry_find(r, "later"), "/tmp", &stop, 0, NULL), CALL_DEFERRED);
    CHECK_EQ(requeued, 0);
    cq_job_resume(c, cont_again, NULL);
    CHECK(requeued == 1 && requeued_owner == &owner);
    CHECK_EQ(call_continue(c, &ct), CALL_DEFERRED);
    CHECK_EQ(continued, 1);
    cq_job_resume(c, cont_fail, "two waits");
    CHECK_EQ(call_continue(c, &ct), -1);
    CHECK_STREQ(c->error, "ended after two waits");
    CHECK_EQ(c->transient, 1);
    call_end(c);

    CHECK_EQ(call_run(c, &ct, j, registry_find(r, "later"), "/tmp", &stop, 0, NULL), CALL_DEFERRED);
    cq_job_resume(c, cont_bare, NULL);
    CHECK_EQ(call_continue(c, &ct), -1);
    CHECK_STREQ(c->error, "later failed (its handler gave no reason)");
    CHECK_EQ(c->transient, 0);
    call_end(c);

    CHECK_EQ(call_run(c, &ct, j, registry_find(r, "later"), "/tmp", &stop, 0, NULL), CALL_DEFERRED);
    cq_job_resume(c, cont_ok, "done");
    CHECK_EQ(call_continue(c, &ct), 0);
    CHECK_STREQ(c->result, "done");
    CHECK_EQ(continued, 4);
    CHECK_EQ(requeued, 4);

    call_free(c);
    call_thread_free(&ct);
    job_free(j);
    registry_free(r);
}

int main(void)
{
    test_specs();
    test_builtins();
    test_sleep_whole();
    test_sources();
    test_print();
    test_calls();
    test_many_args();
    test_deferral();
    return check_report();
}
