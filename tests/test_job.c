/* test_job.c - job records and the key schema: what a producer in another language must be
 * able to rely on (docs/PROTOCOL.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "job.h"
#include "job_cjson.h"
#include "keys.h"
#include "util.h"

static struct job *decode(const char *s, int *rc, char *err, size_t errlen)
{
    struct job *j = NULL;
    *rc = job_decode(s, strlen(s), &j, err, errlen);
    return j;
}

/* Keys: one schema, any prefix. */
static void test_keys(void)
{
    char err[256], buf[KEYS_KEY_MAX];
    struct keys k;

    CHECK(keys_init(&k, NULL, err, sizeof err) == 0);
    CHECK_STREQ(keys_queue(&k, "default", buf, sizeof buf), "cq:queue:default");
    CHECK_STREQ(keys_job(&k, "abc", buf, sizeof buf), "cq:job:abc");
    CHECK_STREQ(keys_inflight(&k, "w1", "high", buf, sizeof buf), "cq:inflight:w1:high");
    CHECK_STREQ(keys_worker_lease(&k, "w1", buf, sizeof buf), "cq:worker:w1:lease");
    CHECK_STREQ(keys_queues(&k, buf, sizeof buf), "cq:queues");
    CHECK_STREQ(keys_scheduled(&k, buf, sizeof buf), "cq:scheduled");
    CHECK_STREQ(keys_template(&k, KEYS_INFLIGHT, buf, sizeof buf), "cq:inflight:%s:%s");
    CHECK(keys_init(&k, "app%1:", err, sizeof err) == 0);
    CHECK_STREQ(keys_template(&k, KEYS_QUEUE, buf, sizeof buf), "app%%1:queue:%s");
    CHECK_STREQ(keys_queue(&k, "q", buf, sizeof buf), "app%1:queue:q");
    CHECK(keys_init(&k, "has space", err, sizeof err) == -1);
    CHECK_HAS(err, "spaces");
    CHECK(keys_queue(&k, "q", buf, 8) == NULL); /* does not fit */
    CHECK(keys_init(&k, NULL, err, sizeof err) == 0);
    CHECK_STREQ(keys_queue(&k, "q", buf, 11), "cq:queue:q"); /* exactly fits */
    CHECK(keys_queue(&k, "q", buf, 10) == NULL);
    CHECK(keys_queue(&k, "q", buf, 3) == NULL);
    CHECK_STREQ(keys_inflight(&k, "w", "q", buf, 16), "cq:inflight:w:q");
    CHECK(keys_inflight(&k, "w", "q", buf, 15) == NULL);
}

/* Queue, job and worker names. */
static void test_valid_names(void)
{
    char buf[KEYS_KEY_MAX];

    CHECK(keys_valid_name("default"));
    CHECK(keys_valid_name("a.b-c_d@e"));
    CHECK(!keys_valid_name(""));
    CHECK(!keys_valid_name("a:b"));
    CHECK(!keys_valid_name("a b"));
    CHECK(!keys_valid_name("a/b"));
    memset(buf, 'x', KEYS_NAME_MAX + 1);
    buf[KEYS_NAME_MAX + 1] = '\0';
    CHECK(!keys_valid_name(buf));
    buf[KEYS_NAME_MAX] = '\0';
    CHECK(keys_valid_name(buf));
    /* Every byte value: exactly A-Z a-z 0-9 _ . @ - are allowed. */
    {
        int c, wrong = 0;
        for (c = 1; c < 256; c++) {
            char one[3] = {'a', (char)c, '\0'};
            int want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '.' || c == '@' || c == '-';
            if (keys_valid_name(one) != want) wrong++;
        }
        CHECK_EQ(wrong, 0);
    }
}

/* A minimal record, as LPUSHed by hand. */
static void test_decode_minimal(void)
{
    char err[256];
    struct job *j;
    int rc;

    j = decode("{\"id\":\"job-1\",\"func\":\"noop\",\"args\":[]}", &rc, err, sizeof err);
    CHECK(rc == 0 && j != NULL);
    CHECK_NOTNULL(j);
    CHECK_STREQ(j->id, "job-1");
    CHECK_STREQ(j->func, "noop");
    CHECK(job_nargs(j) == 0 && j->retries == -1 && j->attempts == 0 && j->queue[0] == '\0');
    job_free(j);
}

/* Every field, and unknown ones ignored; encoding round-trips. */
static void test_decode_every_field(void)
{
    char err[256];
    struct job *j;
    char *enc;
    int rc;

    j = decode("{\"id\":\"x\",\"func\":\"download_link\",\"args\":[\"images\",\"http://h/a.jpg\"],"
               "\"queue\":\"high\",\"enqueued_at\":1767225600.5,\"retries\":2,\"attempts\":1,"
               "\"recovered\":3,\"timeout\":7.5,\"extra\":{\"a\":1}}",
               &rc, err, sizeof err);
    CHECK(rc == 0);
    CHECK_NOTNULL(j);
    CHECK_STREQ(j->queue, "high");
    CHECK(j->enqueued_at == 1767225600.5 && j->retries == 2 && j->attempts == 1);
    CHECK(j->recovered == 3 && j->timeout == 7.5);
    CHECK_STREQ(job_arg_string(j, 1), "http://h/a.jpg");
    CHECK(job_arg_string(j, 2) == NULL);

    /* Encoding round-trips. */
    enc = job_encode(j);
    job_free(j);
    j = decode(enc, &rc, err, sizeof err);
    free(enc);
    CHECK(rc == 0);
    CHECK_NOTNULL(j);
    CHECK_STREQ(j->queue, "high");
    CHECK(j->retries == 2 && j->attempts == 1 && j->timeout == 7.5);
    CHECK_STREQ(job_arg_string(j, 0), "images");
    job_free(j);
}

/* A name given twice: the first member counts (as cJSON's lookup by name has it), for the
 * strings, the numbers and the args alike; members in any order; "a"-names that are not
 * "args" or "attempts" ignored. */
static void test_decode_duplicates(void)
{
    char err[256];
    struct job *j;
    int rc;

    j = decode("{\"attempts\":4,\"args\":[\"first\"],\"aaa\":1,\"queue\":\"q1\",\"id\":\"a\","
               "\"func\":\"noop\",\"id\":\"b\",\"queue\":\"q2\",\"args\":[\"second\",2],"
               "\"attempts\":5,\"handoffs\":2,\"timeout\":1,\"timeout\":2}",
               &rc, err, sizeof err);
    CHECK(rc == 0);
    CHECK_NOTNULL(j);
    if (j == NULL) return;
    CHECK_STREQ(j->id, "a");
    CHECK_STREQ(j->queue, "q1");
    CHECK(job_nargs(j) == 1);
    CHECK_STREQ(job_arg_string(j, 0), "first");
    CHECK(j->attempts == 4 && j->handoffs == 2 && j->timeout == 1);
    job_free(j);
    /* The first "timeout" is wrong: refused, though a later one is right. */
    j = decode("{\"id\":\"c\",\"func\":\"noop\",\"args\":[],\"timeout\":-1,\"timeout\":1}", &rc,
               err, sizeof err);
    CHECK(rc == -1);
    CHECK_HAS(err, "job c: enqueued_at, retries");
    job_free(j);
}

/* One record through job_decode's two paths and job_decode itself: job_decode answers as the
 * full path (cJSON) does, the same error or the same job, and a record the fast path takes is
 * one the full path decodes to the same job. Returns whether the fast path took it. */
static int both_paths(const char *rec)
{
    struct job *jc = NULL, *jf = NULL, *jd = NULL;
    char errc[256] = "", errd[256] = "";
    size_t len = strlen(rec);
    int rc = job_decode_cjson(rec, len, &jc, errc, sizeof errc);
    int rf = job_decode_fast(rec, len, &jf);
    int rd = job_decode(rec, len, &jd, errd, sizeof errd);

    CHECK_EQ(rd, rc);
    if (rd != rc) fprintf(stderr, "  record %s\n", rec);
    if (rc != 0) {
        CHECK_STREQ(errd, errc);
        CHECK(rf != 0 && jf == NULL);
        CHECK((jd == NULL) == (jc == NULL));
        if (jd != NULL && jc != NULL) CHECK_STREQ(jd->id, jc->id);
    } else if (jd != NULL && jc != NULL) {
        CHECK_STREQ(job_differ(jd, jc), "");
        if (rf == 0 && jf != NULL) CHECK_STREQ(job_differ(jf, jc), "");
    }
    job_free(jc);
    job_free(jf);
    job_free(jd);
    return rf == 0;
}

/* "recovered": how often a dead worker's job came back, which the recovery script writes
 * into the record (as its last member, or in place) and the worker's --max-recoveries reads.
 * Absent is 0; a record recovery wrote is a plain one (the fast path takes it); a count that
 * is not a whole number from 0 is a malformed record, on either path. */
static void test_decode_recovered(void)
{
    static const char *const bad[] = {"-1", "\"2\"", "1.5", "2000000", "true", "[]"};
    static const char written[] = "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"enqueued_at\":"
                                  "1767225600.123456,\"timeout\":0.1,\"recovered\":4}";
    char err[256], rec[256];
    struct job *j;
    size_t i;
    int rc;

    j = decode("{\"id\":\"a\",\"func\":\"noop\",\"args\":[]}", &rc, err, sizeof err);
    CHECK(rc == 0 && j != NULL && j->recovered == 0);
    job_free(j);
    j = NULL;
    CHECK(job_decode_fast(written, strlen(written), &j) == 0);
    CHECK(j != NULL && j->recovered == 4 && j->enqueued_at == 1767225600.123456);
    job_free(j);
    j = decode("{\"id\":\"a\",\"func\":\"noop\",\"args\":[], \"recovered\" : 0 }", &rc, err,
               sizeof err);
    CHECK(rc == 0 && j != NULL && j->recovered == 0);
    job_free(j);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(rec, sizeof rec, "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"recovered\":%s}",
                 bad[i]);
        err[0] = '\0';
        j = decode(rec, &rc, err, sizeof err);
        CHECK(rc == -1);
        CHECK_NOTNULL(j); /* its id read, so that it fails under it */
        CHECK(strstr(err, "recovered") != NULL);
        job_free(j);
        j = NULL;
        CHECK(job_decode_cjson(rec, strlen(rec), &j, err, sizeof err) == -1);
        job_free(j);
    }
}

/* The fast path takes what cq's encoder writes, every field present or not; anything else
 * (escapes, unknown or repeated members, null, signs, exponents, leading zeros, long numbers,
 * other whitespace, NULs) is left to cJSON, and job_decode answers as cJSON's path does
 * either way. */
static void test_decode_fast_path(void)
{
    static const char *const taken[] = {
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[]}",
        " { \"args\" :\t[ \"x\\\"y\", {\"k\":[1,2.5e3,null,true]} ] ,\r\n\"func\":\"f\",\"id\":\"b\"}",
        "{\"id\":\"c\",\"func\":\"noop\",\"args\":[],\"enqueued_at\":1767225600.123456,"
        "\"retries\":0,\"attempts\":2,\"recovered\":1,\"handoffs\":3,\"timeout\":0.1}",
        "{\"id\":\"d\",\"func\":\"noop\",\"args\":[],\"enqueued_at\":0.1,\"retries\":1000}",
        "{\"id\":\"e\",\"func\":\"noop\",\"args\":[],\"timeout\":9007199254.740992}",
        "{\"id\":\"f\",\"func\":\"noop\",\"args\":[]} \t\r\n", /* JSON's white space after it */
        "{\"id\":\"g\",\"func\":\"\x01\xff\",\"args\":[],\"queue\":\"q\"}",
        /* brackets inside args' strings do not end args */
        "{\"id\":\"h\",\"func\":\"noop\",\"args\":[\"]\",\"[{\",\"\\\"]\"],\"queue\":\"q\"}",
        /* 0.3 is 3 / 10 rounded once: 3 * 0.1 is 0.30000000000000004 */
        "{\"id\":\"i\",\"func\":\"noop\",\"args\":[],\"timeout\":0.3}",
    };
    static const char *const left[] = {
        "{\"id\":\"a\\u0041\",\"func\":\"noop\",\"args\":[]}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"extra\":1}",
        "{\"id\":\"a\",\"id\":\"b\",\"func\":\"noop\",\"args\":[]}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"queue\":null}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"timeout\":1e2}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"timeout\":-1}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"attempts\":007}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"enqueued_at\":1767225600.1234567}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"timeout\":9007199254.740993}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"timeout\":1.}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"timeout\":.5}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"attempts\":1.5}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"enqueued_at\":100000000000}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"retries\":1001}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"attempts\":1x}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[\"\\u0000\"]}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[1,]}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[\"]\"}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":{}}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
        "{\"id\":\"a\",\"func\":\"noop\"}",
        "{\"id\":\"a b\",\"func\":\"noop\",\"args\":[]}",
        "{\"id\":\"a\",\"func\":\"\",\"args\":[]}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"queue\":\"no space\"}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[]\f}",
        /* bytes after the object (taken, as cJSON ignores them, until both paths refused them) */
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[]}trailing bytes",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[]}{\"id\":\"b\",\"func\":\"noop\",\"args\":[]}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[]}\f",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[]",
        "\xef\xbb\xbf{\"id\":\"a\",\"func\":\"noop\",\"args\":[]}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"timeout\":18446744073709551617}",
        "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"timeout\":0.123456789012345678}",
        "{}",
        "[]",
        "",
    };
    char big[3 * KEYS_NAME_MAX];
    struct job *j;
    char *rec;
    size_t i;

    for (i = 0; i < sizeof taken / sizeof *taken; i++) {
        int fast = both_paths(taken[i]);
        CHECK(fast);
        if (!fast) fprintf(stderr, "  the fast path left %s\n", taken[i]);
    }
    for (i = 0; i < sizeof left / sizeof *left; i++) {
        int fast = both_paths(left[i]);
        CHECK(!fast);
        if (fast) fprintf(stderr, "  the fast path took %s\n", left[i]);
    }
    /* Names one byte too long: an id and a queue of KEYS_NAME_MAX + 1, a func of
     * JOB_FUNC_MAX + 1 (the fast path copies names into buffers of the longest). */
    snprintf(big, sizeof big, "{\"id\":\"%0*d\",\"func\":\"noop\",\"args\":[]}", KEYS_NAME_MAX + 1,
             0);
    CHECK(!both_paths(big));
    snprintf(big, sizeof big, "{\"id\":\"a\",\"func\":\"noop\",\"args\":[],\"queue\":\"%0*d\"}",
             KEYS_NAME_MAX + 1, 0);
    CHECK(!both_paths(big));
    snprintf(big, sizeof big, "{\"id\":\"a\",\"func\":\"%0*d\",\"args\":[]}", JOB_FUNC_MAX + 1, 0);
    CHECK(!both_paths(big));
    snprintf(big, sizeof big, "{\"id\":\"%0*d\",\"func\":\"%0*d\",\"args\":[],\"queue\":\"%0*d\"}",
             KEYS_NAME_MAX, 0, JOB_FUNC_MAX, 0, KEYS_NAME_MAX, 0);
    CHECK(both_paths(big)); /* the longest are taken */

    /* What cq's encoder writes, with and without each field. */
    j = job_new("download_link", NULL);
    str_copy(j->id, sizeof j->id, "00000000-0000-4000-8000-000000000000");
    CHECK(both_paths(rec = job_encode(j)));
    free(rec);
    str_copy(j->queue, sizeof j->queue, "high");
    j->enqueued_at = 1767225600.000001;
    j->retries = 3;
    j->attempts = 1;
    j->recovered = 2;
    j->handoffs = 1;
    j->timeout = 30;
    cJSON_AddItemToArray(j->args, cJSON_CreateString("images"));
    cJSON_AddItemToArray(j->args, cJSON_CreateString("https://i.example/a \"b\".jpg"));
    CHECK(both_paths(rec = job_encode(j)));
    free(rec);
    /* just past 2^53 microseconds (9007199254.740992 s): the fast path leaves it */
    j->enqueued_at = 9007199255.0;
    rec = job_encode(j);
    CHECK(!both_paths(rec));
    free(rec);
    job_free(j);
}

/* job_encode writes the bytes cJSON printed before it wrote records by hand: every escape
 * (each byte value in a string), numbers of every kind in args and in timeout, every field
 * present or not; an encoder reused across records (its buffer and its cached time) writes
 * each as a fresh one would. */
static void test_encode_as_cjson(void)
{
    static const double timeouts[] = {0,
                                      0.5,
                                      7.5,
                                      60,
                                      1.0 / 3,
                                      0.1,
                                      3e9,
                                      2147483647.0,
                                      2147483648.0,
                                      99999999999.5,
                                      1e-7,
                                      123456.789012345678};
    static const char *const args[] = {
        "[]",
        "[\"images\",\"https://i.imgur.com/abc.jpg\"]",
        "[1,-2,0.5,1e300,-0.0,3.14159265358979,123456789012,true,false,null]",
        "[{\"a\":[1,{\"b\":\"c\\\"d\"}]},[],{},\"\\u00e9\\ud83d\\ude00\",\"\\u007f\\/\"]",
    };
    struct job_encoder e = {0};
    char all[256];
    size_t i, a, t;

    for (i = 1; i < 256; i++) all[i - 1] = (char)i;
    all[255] = '\0';
    for (a = 0; a < sizeof args / sizeof args[0]; a++) {
        for (t = 0; t < sizeof timeouts / sizeof timeouts[0]; t++) {
            struct job *j = job_new("noop", cJSON_Parse(args[a]));
            char *want, *got;

            REQUIRE(j != NULL && j->args != NULL);
            str_copy(j->id, sizeof j->id, t % 2 ? "5b1f0c1e-8f0e-4a57-9a55-2b1e3f0c9d11" : "id");
            if (t % 3) str_copy(j->queue, sizeof j->queue, "high");
            j->enqueued_at = t % 4 ? 1767225600.25 + (double)t : 0;
            j->retries = (int)t - 1;
            j->attempts = (int)(t % 3);
            j->recovered = (int)(t % 2) * 7;
            j->handoffs = (int)(t % 5) * 100;
            j->timeout = timeouts[t];
            if (a == 3 && t == 0) cJSON_AddItemToArray(j->args, cJSON_CreateString(all));
            want = job_encode_cjson(j);
            got = job_encode(j);
            CHECK_STREQ(got, want);
            CHECK_STREQ(job_encoder_put(&e, j), want);
            CHECK_EQ(e.len, strlen(want));
            free(got);
            free(want);
            job_free(j);
        }
    }
    /* An args value that is not an array (no decoded record has one) prints as it is. */
    {
        struct job *j = job_new("noop", cJSON_CreateString("x\ny"));
        char *want = job_encode_cjson(j), *got = job_encode(j);
        CHECK_STREQ(got, want);
        free(want);
        free(got);
        job_free(j);
    }
    job_encoder_free(&e);
    CHECK(e.buf == NULL && e.cap == 0);
}

/* Broken records: no id at all gives no job; a bad field under a good id keeps the id. */
static void test_decode_broken(void)
{
    char err[256];
    struct job *j;
    int rc;

    j = decode("not json", &rc, err, sizeof err);
    CHECK(rc == -1 && j == NULL);
    CHECK_HAS(err, "not valid JSON");
    { /* valid JSON nested past cJSON's 1,000 levels: said so (it said 'not valid JSON') */
        char deep[2200] = "{\"id\":\"d\",\"func\":\"noop\",\"args\":", *p = deep + strlen(deep);
        memset(p, '[', 1001);
        memset(p + 1001, ']', 1001);
        strcpy(p + 2002, "}");
        j = decode(deep, &rc, err, sizeof err);
        CHECK(rc == -1 && j == NULL);
        CHECK_HAS(err, "record nests arrays or objects deeper than 1000 levels");
    }
    j = decode("[1,2]", &rc, err, sizeof err);
    CHECK(rc == -1 && j == NULL);
    j = decode("{\"func\":\"noop\",\"args\":[]}", &rc, err, sizeof err);
    CHECK(rc == -1 && j == NULL);
    CHECK_HAS(err, "no valid id");
    j = decode("{\"id\":\"bad id\",\"func\":\"noop\",\"args\":[]}", &rc, err, sizeof err);
    CHECK(rc == -1 && j == NULL);
    j = decode("{\"id\":\"k\",\"func\":\"noop\",\"args\":\"x\"}", &rc, err, sizeof err);
    CHECK(rc == -1 && j != NULL);
    CHECK_STREQ(j ? j->id : NULL, "k");
    CHECK_HAS(err, "'args' must be a JSON array");
    job_free(j);
    j = decode("{\"id\":\"k\",\"func\":5,\"args\":[]}", &rc, err, sizeof err);
    CHECK(rc == -1 && j != NULL);
    job_free(j);
    j = decode("{\"id\":\"k\",\"func\":\"noop\",\"args\":[],\"retries\":-5}", &rc, err, sizeof err);
    CHECK(rc == -1);
    job_free(j);
    j = decode("{\"id\":\"k\",\"func\":\"noop\",\"args\":[],\"queue\":\"a:b\"}", &rc, err,
               sizeof err);
    CHECK(rc == -1);
    CHECK_HAS(err, "queue");
    job_free(j);
    j = decode("{\"id\":\"k\",\"func\":\"noop\"}", &rc, err, sizeof err);
    CHECK(rc == -1 && j != NULL); /* args are required; it fails under its id */
    CHECK_HAS(err, "job k: field 'args' is missing (give [] for none)");
    job_free(j);
    /* Bytes after the record's object: it fails under its id, where cJSON's end of the object
     * was taken as the record's and they were dropped without a word. JSON's own white space
     * after it is taken. */
    j = decode("{\"id\":\"t\",\"func\":\"noop\",\"args\":[]}garbage", &rc, err, sizeof err);
    CHECK(rc == -1 && j != NULL);
    CHECK_STREQ(j ? j->id : NULL, "t");
    CHECK_HAS(err,
              "job t: the record goes on after its JSON object ('garbage'): a record is one "
              "JSON object, with only spaces, tabs, CR or LF after it");
    job_free(j);
    j = decode("{\"id\":\"t\",\"func\":\"noop\",\"args\":[]}\n{\"id\":\"u\",\"func\":\"noop\","
               "\"args\":[]}",
               &rc, err, sizeof err);
    CHECK(rc == -1 && j != NULL);
    CHECK_HAS(err, "job t: the record goes on after its JSON object ('{\"id\":\"u\",");
    job_free(j);
    j = decode("{\"id\":\"t\",\"func\":\"noop\",\"args\":[]} \f", &rc, err, sizeof err);
    CHECK(rc == -1 && j != NULL); /* a form feed is no JSON white space */
    CHECK_HAS(err, "after its JSON object ('\\x0c')");
    job_free(j);
    j = decode(" {\"id\":\"t\",\"func\":\"noop\",\"args\":[1]} \t\r\n", &rc, err, sizeof err);
    CHECK(rc == 0 && j != NULL);
    CHECK_EQ(job_nargs(j), 1);
    job_free(j);
}

/* head, then n '[', in a buffer the caller frees. */
static char *brackets(const char *head, int n)
{
    size_t h = strlen(head);
    char *s = malloc(h + (size_t)n + 1);

    if (s == NULL) abort();
    memcpy(s, head, h);
    memset(s + h, '[', (size_t)n);
    s[h + (size_t)n] = '\0';
    return s;
}

/* Too deep is said only of text that is JSON up to its 1,001st level, as cJSON stops at the
 * first fault; text broken before that is 'not valid JSON' (it was called too deep, of
 * 'x[[[[...' and of a record whose ':' was missing, wherever its brackets came later). */
static void test_too_deep(void)
{
    static const struct {
        const char *head;
        int n, deep;
        int whole; /* head is a whole JSON value, which job_decode reads, and refuses for
                    * what follows it */
    } cases[] = {
        {"", 1001, 1, 0},
        {"", 1000, 0, 0}, /* 1,000 levels, cut short: no JSON, not too deep */
        {"x", 2000, 0, 0},
        {"{\"id\":\"d\",\"func\":", 2000, 1, 0}, /* JSON so far, and deeper than cJSON reads */
        {"{\"id\":\"d\",\"func\" ", 2000, 0, 0}, /* no ':' */
        {"{\"id\":\"d\"} ", 2000, 0, 1},         /* after the whole record */
        {"{\"id\":\"d\",,", 2000, 0, 0},
        {"[1,]", 2000, 0, 0},
        {"[1 2,", 2000, 0, 0},
        {"[tru,", 2000, 0, 0},
        {"[01,", 2000, 0, 0}, /* JSON's numbers have no leading zero */
        {"[1.,", 2000, 0, 0},
        {"[\"\\x\",", 2000, 0, 0}, /* an escape JSON has not */
        {"[\"a\\\"[[\",", 2000, 1, 0},
        {"[\"\\u12g4\",", 2000, 0, 0},
        {"[{\"a\":[true,false,null,-0.5e+3,0,\"\\u00e9\\n\"],\"b\":{}, \"c\":[]},\n", 1000, 1, 0},
        {"[{\"a\":[-1E9,{\"b\":", 997, 1, 0},
        {"[{\"a\":[-1E9,{\"b\":", 996, 0, 0}, /* 1,000 levels: taken */
        {"[[], {}, [[]], ", 1000, 1, 0},
        {"[[], {}, [[]], ", 999, 0, 0},
        {"\"", 2000, 0, 0}, /* all in a string that never ends */
    };
    char err[256];
    size_t i;
    int rc;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = brackets(cases[i].head, cases[i].n);
        struct job *j;

        if (job_json_too_deep(s) != cases[i].deep)
            fprintf(stderr, "case %zu: %s%d '[' read as %s\n", i, cases[i].head, cases[i].n,
                    cases[i].deep ? "not too deep" : "too deep");
        CHECK(job_json_too_deep(s) == cases[i].deep);
        j = decode(s, &rc, err, sizeof err);
        if (cases[i].whole) { /* the record is read, and what follows it refused */
            CHECK(rc == -1 && j != NULL);
            CHECK_HAS(err, "the record goes on after its JSON object ('[[[[");
            job_free(j);
            free(s);
            continue;
        }
        CHECK(rc == -1 && j == NULL);
        CHECK_HAS(err,
                  cases[i].deep ? "record nests arrays or objects deeper than 1000 levels"
                                : "record is not valid JSON");
        job_free(j);
        free(s);
    }
}

/* Over the size limit: refused, but under its id when one can be read, so that it fails with
 * a status instead of going to the dead list. */
static void test_decode_oversize(void)
{
    size_t n = JOB_RECORD_MAX + 100, o;
    char *big = xmalloc(n + 64), err[256];
    struct job *j = NULL;
    int rc;

    o = (size_t)snprintf(big, 64, "{\"id\":\"huge\",\"func\":\"noop\",\"args\":[\"");
    memset(big + o, 'x', n - o - 3);
    memcpy(big + n - 3, "\"]}", 3);
    rc = job_decode(big, n, &j, err, sizeof err);
    CHECK_EQ(rc, -1);
    CHECK_NOTNULL(j);
    CHECK_STREQ(j->id, "huge");
    CHECK_HAS(err, "job huge: record of 1048676 bytes is over the 1048576 byte limit");
    job_free(j);
    j = NULL;
    big[0] = '[';
    CHECK_EQ(job_decode(big, n, &j, err, sizeof err), -1);
    CHECK(j == NULL);
    free(big);
}

/* A NUL inside a string (the \u0000 escape, or a raw byte) would cut a C string short
 * without a word ("h\u0000/../../../x" read as "h"): refused, under the record's id. An
 * escaped backslash before "u0000" is not a NUL. */
static void test_decode_nul(void)
{
    static const char raw[] = "{\"id\":\"r\",\"func\":\"noop\",\"args\":[\"a\0b\"]}";
    char err[256];
    struct job *j;
    int rc;

    j = decode("{\"id\":\"n\",\"func\":\"download_link\",\"args\":[\"h\\u0000/../../../x\","
               "\"http://h/x.jpg\"]}",
               &rc, err, sizeof err);
    CHECK(rc == -1 && j != NULL);
    CHECK_STREQ(j ? j->id : NULL, "n");
    CHECK_HAS(err, "job n: a string in the record holds a NUL character (\\u0000)");
    job_free(j);
    j = decode("{\"id\":\"n\\u0000x\",\"func\":\"noop\",\"args\":[]}", &rc, err, sizeof err);
    CHECK(rc == -1 && j == NULL); /* in the id itself: no id to fail under */
    CHECK_HAS(err, "no valid id");
    j = NULL;
    rc = job_decode(raw, sizeof raw - 1, &j, err, sizeof err);
    CHECK(rc == -1);
    job_free(j);
    j = decode("{\"id\":\"e\",\"func\":\"noop\",\"args\":[\"a\\\\u0000\",\"\\\\\\u0000\"]}", &rc,
               err, sizeof err);
    CHECK(rc == -1); /* the second is \\ then \u0000 */
    job_free(j);
    j = decode("{\"id\":\"e\",\"func\":\"noop\",\"args\":[\"a\\\\u0000\",\"\\u0001\"]}", &rc, err,
               sizeof err);
    CHECK(rc == 0);
    CHECK_STREQ(j ? job_arg_string(j, 0) : NULL, "a\\u0000");
    job_free(j);
    CHECK(job_json_has_nul("[\"x\\u0000\"]", 10));
    CHECK(!job_json_has_nul("[\"x\\\\u0000\"]", 11));
    CHECK(!job_json_has_nul("[\"x\\u00001\"]", 5)); /* the escape is past len */
}

/* New ids are UUIDs and differ. */
static void test_new_ids(void)
{
    char id[JOB_ID_MAX + 1];
    struct job *j;

    job_new_id(id);
    CHECK(strlen(id) == 36 && id[8] == '-' && id[14] == '4');
    j = job_new("noop", NULL);
    CHECK_NOTNULL(j);
    CHECK(j->id[0] == '\0'); /* queue_enqueue gives it one */
    {
        struct job *two[2] = {j, job_new("noop", NULL)};
        str_copy(two[1]->id, sizeof two[1]->id, "mine");
        job_fill_ids(two, 2);
        CHECK(strlen(j->id) == 36 && j->id[14] == '4' && strchr("89ab", j->id[19]) != NULL);
        CHECK(strcmp(j->id, id) != 0 && keys_valid_name(j->id));
        CHECK_STREQ(two[1]->id, "mine");
        job_free(two[1]);
    }
    job_free(j);
    job_free(NULL);
}

/* Every number a record carries reaches the worker as the very double it was: where cJSON
 * prints 15 digits that read back within DBL_EPSILON (6000000000000001 as 6e+15, a job's
 * integer changed), the encoder writes 17; job_json_print (cq_job_arg_json, results,
 * cqctl's JSON) the same; and a nested value's numbers too. */
static void test_encode_exact_numbers(void)
{
    static const char *const args =
        "[6000000000000001,9007199254740991,-9007199254740991,0.30000000000000004,"
        "9.4467440737095512,1e-300,123456.789012345678,-0.0,{\"n\":[6000000000000003]}]";
    cJSON *want = cJSON_Parse(args);
    struct job *j = job_new("noop", cJSON_Parse(args)), *back = NULL;
    char err[256], *rec, *text;
    int i, n;

    REQUIRE(want != NULL && j != NULL);
    str_copy(j->id, sizeof j->id, "exact");
    j->timeout = 9.4467440737095512;
    rec = job_encode(j);
    CHECK_HAS(rec, "[6000000000000001,9007199254740991,-9007199254740991,");
    CHECK_HAS(rec, "{\"n\":[6000000000000003]}");
    REQUIRE(job_decode(rec, strlen(rec), &back, err, sizeof err) == 0);
    CHECK(back->timeout == j->timeout);
    n = cJSON_GetArraySize(want);
    CHECK_EQ(cJSON_GetArraySize(back->args), n);
    for (i = 0; i < n - 1; i++) {
        double a = cJSON_GetArrayItem(want, i)->valuedouble;
        double b = cJSON_GetArrayItem(back->args, i)->valuedouble;
        CHECK(memcmp(&a, &b, sizeof a) == 0);
    }
    text = job_json_print(want);
    CHECK_STREQ(text,
                "[6000000000000001,9007199254740991,-9007199254740991,"
                "0.30000000000000004,9.4467440737095512,1e-300,"
                "123456.78901234567,-0,{\"n\":[6000000000000003]}]");
    free(text);
    free(rec);
    job_free(j);
    job_free(back);
    cJSON_Delete(want);
}

/* UTF-8 as JSON's strings must be: each character's length, and 0 for what is not one. */
static void test_utf8(void)
{
    static const struct {
        const char *s;
        size_t len;
    } cases[] = {
        {"a", 1},
        {"\xc3\xa9", 2},         /* é */
        {"\xe2\x82\xac", 3},     /* € */
        {"\xf0\x9f\x98\x80", 4}, /* U+1F600 */
        {"\xff", 0},             /* no lead byte */
        {"\x80", 0},             /* a stray continuation */
        {"\xc0\x80", 0},         /* an overlong NUL */
        {"\xe0\x80\x80", 0},     /* overlong */
        {"\xed\xa0\x80", 0},     /* a surrogate */
        {"\xf4\x90\x80\x80", 0}, /* beyond U+10FFFF */
        {"\xe2\x82", 0},         /* cut short */
        {"\xe2\x28\xa1", 0},     /* a continuation missing */
    };
    size_t i;
    cJSON *v;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t got = utf8_char((const unsigned char *)cases[i].s, strlen(cases[i].s));
        if (got != cases[i].len) fprintf(stderr, "  case %zu: %zu\n", i, got);
        CHECK_EQ(got, cases[i].len);
    }
    { /* nothing left: 0, and not a byte read (ASan sees a read past the block) */
        unsigned char *end = xmalloc(1);
        end[0] = 0xc3;
        CHECK_EQ(utf8_char(end + 1, 0), 0);
        CHECK_EQ(utf8_char(end, 1), 0);
        free(end);
    }
    v = cJSON_Parse("[\"caf\xc3\xa9\", {\"k\xc3\xa9\": [1, \"\xe2\x82\xac\"]}]");
    CHECK_EQ(job_json_utf8(v), 1);
    cJSON_Delete(v);
    v = cJSON_Parse("[\"ok\", {\"k\": [1, \"a\xff"
                    "b\"]}]");
    CHECK_EQ(job_json_utf8(v), 0);
    cJSON_Delete(v);
    v = cJSON_Parse("{\"\xc0\x80\": 1}"); /* a key */
    CHECK_EQ(job_json_utf8(v), 0);
    cJSON_Delete(v);
    { /* for a reader: what is not UTF-8 as U+FFFD, the rest as job_json_print has it */
        char *s;
        v = cJSON_Parse("{\"k\xff\": [\"err\xff\xfe caf\xc3\xa9 \xe2\x82\", \"\\n\\u001b\", 1]}");
        REQUIRE(v != NULL);
        s = job_json_print_text(v);
        CHECK_STREQ(
            s,
            "{\"k\\ufffd\":[\"err\\ufffd\\ufffd caf\xc3\xa9 \\ufffd\\ufffd\",\"\\n\\u001b\",1]}");
        free(s);
        s = job_json_print(v); /* records keep their bytes */
        CHECK_HAS(s, "err\xff\xfe caf");
        free(s);
        cJSON_Delete(v);
    }
}

int main(void)
{
    test_keys();
    test_valid_names();
    test_decode_minimal();
    test_decode_every_field();
    test_decode_duplicates();
    test_decode_recovered();
    test_decode_fast_path();
    test_encode_as_cjson();
    test_encode_exact_numbers();
    test_decode_nul();
    test_decode_broken();
    test_too_deep();
    test_decode_oversize();
    test_new_ids();
    test_utf8();
    return check_report();
}
