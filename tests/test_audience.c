/* test_audience.c - whom libcq's advice speaks to (audience.h). A program that embeds a worker
 * reads its log lines in the words of cq_worker_set's settings ("exiting (the burst
 * setting)"), never an option it does not have ("--burst"); once the process says it is one
 * of cq's commands (cli_begin does, through cq_private_set_audience), the same lines name the
 * commands' options, as cworker's users have always read them. tests/test_worker.sh checks
 * cworker itself, which links libcq.so; tests/test_tls.sh the TLS advice a program linking
 * libcq.so gets, beside cenqueue's. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "cq/cq.h"

#include "audience.h"
#include "check.h"
#include "redis_server.h"

static char url[256];

/* Run w with stderr into a file; its log, read back into buf. */
static const char *run_logged(cq_worker *w, char *buf, size_t len)
{
    char path[] = "/tmp/cq-test-audience-XXXXXX";
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    ssize_t n;

    buf[0] = '\0';
    if (fd < 0 || saved < 0) {
        CHECK(fd >= 0 && saved >= 0);
        if (fd >= 0) close(fd);
        if (saved >= 0) close(saved);
        return buf;
    }
    unlink(path);
    fflush(stderr);
    dup2(fd, STDERR_FILENO);
    CHECK_EQ(cq_worker_run(w), 0);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    n = pread(fd, buf, len - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    return buf;
}

static void enqueue_noop(const char *queue)
{
    char err[512];
    cq_client *c = cq_client_new(url, NULL, err, sizeof err);
    cq_jobspec *s;

    REQUIRE(c != NULL);
    s = cq_jobspec_new_argv("noop", NULL, 0);
    CHECK_EQ(cq_jobspec_set_queue(s, queue), 0);
    CHECK_EQ(cq_enqueue(c, &s, 1, CQ_NO_CHECK, err, sizeof err), 1);
    cq_jobspec_free(s);
    cq_client_free(c);
}

/* An embedded worker's reasons to stop name its settings; cq's commands' name their options. */
static void test_worker_lines(void)
{
    cq_worker *w = cq_worker_new();
    char err[512], log[16384];

    REQUIRE(w != NULL);
    REQUIRE(cq_worker_set(w, "url", url, err, sizeof err) == 0);
    REQUIRE(cq_worker_set(w, "burst", "1", err, sizeof err) == 0);
    REQUIRE(cq_worker_add_queue(w, "aq", err, sizeof err) == 0);
    run_logged(w, log, sizeof log);
    CHECK_HAS(log, "INFO queues empty, nothing running: exiting (the burst setting)\n");
    CHECK(strstr(log, "--") == NULL); /* no option, in any line */

    REQUIRE(cq_worker_set(w, "burst", "0", err, sizeof err) == 0);
    REQUIRE(cq_worker_set(w, "max-jobs", "1", err, sizeof err) == 0);
    enqueue_noop("aq");
    run_logged(w, log, sizeof log);
    CHECK_HAS(log, "INFO done 1 jobs (the max-jobs setting)\n");
    CHECK(strstr(log, "--") == NULL);

    cq_private_set_audience(AUDIENCE_COMMANDS);
    enqueue_noop("aq");
    run_logged(w, log, sizeof log);
    CHECK_HAS(log, "INFO done 1 jobs (--max-jobs)\n");
    REQUIRE(cq_worker_set(w, "max-jobs", "0", err, sizeof err) == 0);
    REQUIRE(cq_worker_set(w, "burst", "1", err, sizeof err) == 0);
    run_logged(w, log, sizeof log);
    CHECK_HAS(log, "INFO queues empty, nothing running: exiting (--burst)\n");
    cq_private_set_audience(AUDIENCE_PROGRAM);
    cq_worker_free(w);
}

/* A TLS file that is not there, given through the environment (the only way a program that
 * links libcq has): the advice names the variable, and no --tls-* option; to cq's commands,
 * which set the variables from those options, it names both. No server is needed: the files
 * are read before anything connects. */
static void test_tls_advice(void)
{
    char err[1024];

    unsetenv("CQ_TLS_CERT");
    unsetenv("CQ_TLS_KEY");
    setenv("CQ_TLS_CA", "/nonexistent/ca.pem", 1);
    CHECK(cq_client_new("rediss://127.0.0.1:1", NULL, err, sizeof err) == NULL);
    CHECK_STREQ(err,
                "redis 127.0.0.1:1: TLS: CA file '/nonexistent/ca.pem': No such file or "
                "directory; point $CQ_TLS_CA at a PEM file of the CAs to trust");
    cq_private_set_audience(AUDIENCE_COMMANDS);
    CHECK(cq_client_new("rediss://127.0.0.1:1", NULL, err, sizeof err) == NULL);
    CHECK_STREQ(err,
                "redis 127.0.0.1:1: TLS: CA file '/nonexistent/ca.pem': No such file or "
                "directory; give --tls-ca (or $CQ_TLS_CA) a PEM file of the CAs to trust");
    cq_private_set_audience(AUDIENCE_PROGRAM);
    unsetenv("CQ_TLS_CA");

    setenv("CQ_TLS_CERT", "/nonexistent/client.pem", 1);
    CHECK(cq_client_new("rediss://127.0.0.1:1", NULL, err, sizeof err) == NULL);
    CHECK_STREQ(err,
                "redis 127.0.0.1:1: TLS: certificate file '/nonexistent/client.pem': No such "
                "file or directory; point $CQ_TLS_CERT at a PEM file of the client "
                "certificate");
    cq_private_set_audience(AUDIENCE_COMMANDS);
    CHECK(cq_client_new("rediss://127.0.0.1:1", NULL, err, sizeof err) == NULL);
    CHECK_HAS(err, "; give --tls-cert (or $CQ_TLS_CERT) a PEM file of the client certificate");
    cq_private_set_audience(AUDIENCE_PROGRAM);
    unsetenv("CQ_TLS_CERT");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    server_start();
    snprintf(url, sizeof url, "unix://%s", sock_path);
    test_worker_lines();
    test_tls_advice();
    return check_report();
}
