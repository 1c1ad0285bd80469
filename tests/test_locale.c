/* test_locale.c - libcq in a program whose locale writes numbers its own way.
 *
 * A C program that calls setlocale(LC_ALL, "") in Germany gets a decimal comma from printf
 * and strtod; in ps_AF the point is U+066B, two bytes. What libcq sends to Redis and reads
 * back (times, durations, a job's numbers) is the wire's and must not follow it. Each
 * locale is made here with localedef (Debian's package locales holds the sources), and one
 * process, in that locale, runs an embedded worker and a client through the public API:
 * settings with fractions, jobs scheduled, timed, retried after a fraction of a second, a
 * number argument, the waits, the statuses read back and the worker's metrics. */
#include <cq/cq.h>

#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>

#include "redis_server.h"

static char locdir[256];

static void make_locale(const char *name, const char *source)
{
    char cmd[1024], path[512];
    int rc;

    snprintf(path, sizeof path, "%s/%s", locdir, name);
    snprintf(cmd, sizeof cmd, "localedef -i %s -f UTF-8 %s 2>&1", source, path);
    rc = system(cmd);
    /* localedef exits 1 for warnings with the locale written */
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) > 1 || access(path, F_OK) != 0) {
        fprintf(stderr,
                "test_locale: localedef could not make %s from %s: install Debian's package "
                "locales (scripts/deps --test does)\n",
                name, source);
        exit(1);
    }
}

/* "half": the half of its number argument, as text with a point; fails transiently with a
 * retry after 0.25 s on its first attempt. */
static int half(cq_job *job, void *udata)
{
    double x;
    char buf[64];
    (void)udata;
    if (cq_job_arg_number(job, 0, &x) != 0) return cq_job_fail(job, CQ_PERMANENT, 0, "no number");
    if (cq_job_attempt(job) == 1) return cq_job_fail(job, CQ_TRANSIENT, 0.25, "first attempt");
    if (cq_job_deadline(job) <= 0) return cq_job_fail(job, CQ_PERMANENT, 0, "no deadline");
    /* the handler's own formatting is the program's: in C's locale to compare */
    {
        locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0), old = uselocale(c);
        snprintf(buf, sizeof buf, "%.17g", x / 2);
        uselocale(old);
        freelocale(c);
    }
    return cq_job_result(job, buf);
}

static void *worker_main(void *arg)
{
    cq_worker *w = arg;
    long rc = cq_worker_run(w);
    return (void *)rc;
}

/* A status field that must be a Unix time written with a point. */
static void check_time(const cq_status *st, const char *field, double lo, double hi)
{
    const char *v = cq_status_field(st, field);
    char *end;
    double t;
    locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0);

    CHECK(v != NULL);
    if (v == NULL) return;
    t = strtod_l(v, &end, c);
    freelocale(c);
    if (*end != '\0' || !(t >= lo && t <= hi))
        fprintf(stderr, "  field %s = '%s', not a time in [%.0f, %.0f]\n", field, v, lo, hi);
    CHECK(*end == '\0' && t >= lo && t <= hi);
}

static void scenario(const char *locale_name, const char *point)
{
    char url[256], err[1024], warning[256];
    cq_worker *w;
    cq_client *c;
    cq_function *f;
    cq_jobspec *jobs[3];
    cq_status *st[3];
    const char *ids[3];
    pthread_t th;
    void *wrc;
    double t0 = (double)time(NULL) - 1;
    int i;

    CHECK(setlocale(LC_ALL, locale_name) != NULL);
    CHECK(strcmp(nl_langinfo(RADIXCHAR), point) == 0);
    { /* what the program itself now prints */
        char buf[32];
        snprintf(buf, sizeof buf, "%.1f", 1.5);
        CHECK(strstr(buf, point) != NULL);
    }
    DO("FLUSHALL");
    snprintf(url, sizeof url, "unix://%s", sock_path);

    w = cq_worker_new();
    CHECK(w != NULL);
    CHECK_EQ(cq_worker_set(w, "url", url, err, sizeof err), 0);
    CHECK_EQ(cq_worker_set(w, "lease", "3.5", err, sizeof err), 0);
    CHECK_EQ(cq_worker_set(w, "shutdown-timeout", "2.5", err, sizeof err), 0);
    CHECK_EQ(cq_worker_set(w, "retry-base", "0.5", err, sizeof err), 0);
    CHECK_EQ(cq_worker_set(w, "summary-interval", "1.5", err, sizeof err), 0);
    CHECK_EQ(cq_worker_set(w, "log-level", "warn", err, sizeof err), 0);
    f = cq_function_add(cq_worker_registry(w), "half", "X:number", half, NULL);
    CHECK(f != NULL);
    CHECK_EQ(cq_function_set_retries(f, 2), 0);
    CHECK_EQ(cq_function_set_timeout(f, 7.5), 0);
    CHECK_EQ(pthread_create(&th, NULL, worker_main, w), 0);

    c = cq_client_new(url, NULL, err, sizeof err);
    if (c == NULL) fprintf(stderr, "  client: %s\n", err);
    CHECK(c != NULL);
    jobs[0] = cq_jobspec_new("half", "[3.25]", err, sizeof err);
    jobs[1] = cq_jobspec_new("half", "[0.5]", err, sizeof err);
    jobs[2] = cq_jobspec_new("sleep", "[\"0.05s\"]", err, sizeof err);
    for (i = 0; i < 3; i++) CHECK(jobs[i] != NULL);
    CHECK_EQ(cq_jobspec_set_at(jobs[1], (double)time(NULL) + 0.75), 0);
    CHECK_EQ(cq_jobspec_set_timeout(jobs[2], 2.5), 0);
    /* the catalog the worker publishes, once it has (its functions' timeouts) */
    for (i = 0; i < 200 && cq_client_queue_workers(c, "default", err, sizeof err) <= 0; i++)
        sleep_ms(10);
    for (i = 0; i < 3; i++) {
        int rc = cq_client_check(c, jobs[i], warning, sizeof warning, err, sizeof err);
        if (rc != 0) fprintf(stderr, "  check: %s\n", err);
        CHECK_EQ(rc, 0);
    }
    if (cq_enqueue(c, jobs, 3, CQ_NO_CHECK, err, sizeof err) != 3)
        fprintf(stderr, "  enqueue: %s\n", err);
    for (i = 0; i < 3; i++) ids[i] = cq_jobspec_id(jobs[i]);
    if (cq_wait_many(c, ids, 3, 20.5, st, err, sizeof err) != 0) {
        fprintf(stderr, "  wait: %s\n", err);
        CHECK(0);
    } else {
        for (i = 0; i < 3; i++) {
            const char *e = cq_status_field(st[i], "error");
            if (cq_status_state(st[i]) != CQ_FINISHED)
                fprintf(stderr, "  job %d: %s (%s)\n", i,
                        cq_status_state_name(cq_status_state(st[i])), e ? e : "-");
            CHECK_EQ(cq_status_state(st[i]), CQ_FINISHED);
            check_time(st[i], "enqueued_at", t0, t0 + 60);
            check_time(st[i], "started_at", t0, t0 + 60);
            check_time(st[i], "ended_at", t0, t0 + 60);
        }
        CHECK_STREQ(cq_status_field(st[0], "result"), "1.625");
        CHECK_STREQ(cq_status_field(st[1], "result"), "0.25");
        CHECK_STREQ(cq_status_field(st[0], "attempts"), "2");
        for (i = 0; i < 3; i++) cq_status_free(st[i]);
    }
    /* the worker writes its metrics as it stops */
    cq_worker_stop(w);
    CHECK_EQ(pthread_join(th, &wrc), 0);
    CHECK_EQ((long)wrc, 0);
    { /* the two jobs of half ran twice each: the histogram's bounds are field names, its
         * sum went by HINCRBYFLOAT */
        redisReply *r = rconn_commandf(&R, "HMGET cq:durations:half count sum le_0.005 le_+Inf");
        CHECK(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 4);
        if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
            CHECK(r->element[0]->type == REDIS_REPLY_STRING && atoi(r->element[0]->str) == 4);
            CHECK(r->element[1]->type == REDIS_REPLY_STRING);
            CHECK(r->element[2]->type == REDIS_REPLY_STRING && atoi(r->element[2]->str) >= 1);
            CHECK(r->element[3]->type == REDIS_REPLY_STRING && atoi(r->element[3]->str) == 4);
        }
        if (r != NULL) freeReplyObject(r);
    }
    for (i = 0; i < 3; i++) cq_jobspec_free(jobs[i]);
    cq_client_free(c);
    cq_worker_free(w);
    setlocale(LC_ALL, "C");
}

int main(void)
{
    const char *base = getenv("TMPDIR");

    if (base == NULL || base[0] == '\0') base = "/tmp";
    snprintf(locdir, sizeof locdir, "%s/cq-test-locale.XXXXXX", base);
    if (mkdtemp(locdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    make_locale("de_DE.UTF-8", "de_DE");
    make_locale("ps_AF.UTF-8", "ps_AF");
    setenv("LOCPATH", locdir, 1);
    server_start();
    scenario("de_DE.UTF-8", ",");
    scenario("ps_AF.UTF-8", "\xd9\xab");
    {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", locdir);
        if (system(cmd) != 0) fprintf(stderr, "test_locale: could not remove %s\n", locdir);
    }
    return check_report();
}
