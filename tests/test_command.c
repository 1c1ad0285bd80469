/* test_command.c - command_run and command_resolve, checked as a user would: the output and
 * exit status seen, the error text, the time taken, and that no process of a command's group
 * is left behind once command_run has returned.
 *
 * This program makes itself a child subreaper, so the orphans of a command (its background
 * processes) become its children and group_gone() can reap their zombies instead of relying
 * on whatever runs as PID 1 in a container to do it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "command.h"
#include "util.h"

#define NARGS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const base_env[] = {"PATH=/usr/bin:/bin", NULL};

/* 1 when no process of group pgid is left (zombies of ours are reaped on the way), within
 * two seconds: a SIGKILLed process takes a moment to be gone. */
static int group_gone(pid_t pgid)
{
    long long until = time_mono_ms() + 2000;

    if (pgid <= 0) return 0;
    while (time_mono_ms() < until) {
        if (kill(-pgid, 0) != 0 && errno == ESRCH) return 1;
        while (waitpid(-pgid, NULL, WNOHANG) > 0) {
        }
        sleep_ms(10);
    }
    return 0;
}

/* A shell script with arguments: the way a test gets a process tree; command_run itself
 * never involves a shell. */
static int run_sh(const char *script, double timeout, double grace, const stop_flag *stop,
                  size_t cap, struct command_result *r, char *err, size_t errlen)
{
    const char *const args[] = {"-c", script};
    return command_run("/bin/sh", args, NARGS(args), base_env, NULL, timeout, grace, stop, cap, r,
                       err, errlen);
}

static void test_exit0_stdout(void)
{
    const char *const args[] = {"hello", "world"};
    struct command_result r;
    char err[256] = "";

    CHECK_EQ(command_run("/bin/echo", args, NARGS(args), base_env, NULL, 5, 1, NULL, 1024, &r, err,
                         sizeof err),
             0);
    CHECK_STREQ(r.out, "hello world\n");
    CHECK_EQ(r.outlen, 12);
    CHECK_EQ(r.status, 0);
    CHECK_EQ(r.signal, 0);
    CHECK(!r.timed_out && !r.stopped && !r.out_truncated);
    CHECK_STREQ(r.errline, "");
    CHECK(group_gone(r.pgid));
    command_result_free(&r);
    command_result_free(&r); /* twice is harmless */
    command_result_free(NULL);
}

static void test_exit75(void)
{
    struct command_result r;
    char err[256];

    CHECK_EQ(run_sh("exit 75", 5, 1, NULL, 1024, &r, err, sizeof err), 0);
    CHECK_EQ(r.status, 75);
    CHECK_EQ(r.signal, 0);
    CHECK_STREQ(r.out, "");
    CHECK_EQ(r.outlen, 0);
    command_result_free(&r);

    /* Killed by a signal: no exit code. */
    CHECK_EQ(run_sh("kill -USR1 $$", 5, 1, NULL, 1024, &r, err, sizeof err), 0);
    CHECK_EQ(r.status, -1);
    CHECK_EQ(r.signal, SIGUSR1);
    command_result_free(&r);
}

static void test_exit3_stderr(void)
{
    struct command_result r;
    char err[256];

    /* Blank lines and white space after the message do not hide it; \r is trimmed. */
    CHECK_EQ(
        run_sh("echo out; echo first >&2; printf 'the\\tsecond\\033[0m one \\r\\n\\n  \\n' >&2;"
               " exit 3",
               5, 1, NULL, 1024, &r, err, sizeof err),
        0);
    CHECK_EQ(r.status, 3);
    CHECK_STREQ(r.out, "out\n");
    CHECK_STREQ(r.errline, "the second [0m one");
    command_result_free(&r);

    /* A last line without its newline counts. */
    CHECK_EQ(
        run_sh("echo one >&2; printf 'two' >&2; exit 1", 5, 1, NULL, 1024, &r, err, sizeof err), 0);
    CHECK_STREQ(r.errline, "two");
    command_result_free(&r);

    /* An over-long line keeps its head, within the buffer. */
    CHECK_EQ(run_sh("head -c 5000 /dev/zero | tr '\\0' e >&2; echo >&2", 5, 1, NULL, 1024, &r, err,
                    sizeof err),
             0);
    CHECK_EQ(strlen(r.errline), sizeof r.errline - 1);
    CHECK(r.errline[0] == 'e' && r.errline[sizeof r.errline - 2] == 'e');
    command_result_free(&r);

    /* Much more stderr than a pipe holds is read to the end, not left to block the child. */
    CHECK_EQ(run_sh("i=0; while [ $i -lt 20000 ]; do echo \"line $i\"; i=$((i+1)); done >&2;"
                    " echo done",
                    10, 1, NULL, 1024, &r, err, sizeof err),
             0);
    CHECK_STREQ(r.errline, "line 19999");
    CHECK_STREQ(r.out, "done\n");
    command_result_free(&r);
}

static void test_truncated(void)
{
    const char *const args[] = {"-c", "200000", "/dev/zero"};
    struct command_result r;
    char err[256];

    /* The child writes far more than a pipe holds and still finishes normally. */
    CHECK_EQ(command_run("/usr/bin/head", args, NARGS(args), base_env, NULL, 5, 1, NULL, 1000, &r,
                         err, sizeof err),
             0);
    CHECK_EQ(r.status, 0);
    CHECK_EQ(r.outlen, 1000);
    CHECK(r.out_truncated);
    CHECK(r.out[0] == '\0' && r.out[1000] == '\0');
    command_result_free(&r);

    /* Exactly the cap is not truncated. */
    CHECK_EQ(run_sh("printf 12345", 5, 1, NULL, 5, &r, err, sizeof err), 0);
    CHECK_STREQ(r.out, "12345");
    CHECK(!r.out_truncated);
    command_result_free(&r);

    CHECK_EQ(run_sh("printf 123456", 5, 1, NULL, 5, &r, err, sizeof err), 0);
    CHECK_STREQ(r.out, "12345");
    CHECK(r.out_truncated);
    command_result_free(&r);

    CHECK_EQ(run_sh("printf x", 5, 1, NULL, 0, &r, err, sizeof err), 0);
    CHECK_STREQ(r.out, "");
    CHECK(r.out_truncated);
    command_result_free(&r);
}

static void test_verbatim(void)
{
    char dir[] = "/tmp/cq-test-command-XXXXXX", m[64];
    const char *const args[] = {"[%s]\n",     "a b",       "'single'",   "\"double\"",
                                "$(touch M)", "`touch M`", "x; touch M", "*",
                                "",           "\\n",       "a\nb"};
    struct command_result r;
    struct stat st;
    char err[256];

    CHECK(mkdtemp(dir) != NULL);
    snprintf(m, sizeof m, "%s/M", dir);
    CHECK_EQ(command_run("/usr/bin/printf", args, NARGS(args), base_env, dir, 5, 1, NULL, 4096, &r,
                         err, sizeof err),
             0);
    CHECK_STREQ(r.out,
                "[a b]\n['single']\n[\"double\"]\n[$(touch M)]\n[`touch M`]\n"
                "[x; touch M]\n[*]\n[]\n[\\n]\n[a\nb]\n");
    CHECK_EQ(r.status, 0);
    CHECK(stat(m, &st) != 0); /* nothing ran the substitutions */
    command_result_free(&r);
    rmdir(dir);
}

/* The worker ignores SIGPIPE and blocks signals in its threads (main does the same here);
 * the command must start with neither, or a writer to a closed pipe would not die of it. */
static void test_signals_reset(void)
{
    const char *const args[] = {"-E", "^(SigIgn|SigBlk)", "/proc/self/status"};
    struct command_result r;
    char err[256];

    CHECK_EQ(command_run("/bin/grep", args, NARGS(args), base_env, NULL, 5, 1, NULL, 4096, &r, err,
                         sizeof err),
             0);
    CHECK_HAS(r.out, "SigIgn:\t0000000000000000\n");
    CHECK_HAS(r.out, "SigBlk:\t0000000000000000\n");
    command_result_free(&r);
}

static void test_env(void)
{
    const char *const env[] = {"A=1", "B=two words", "C=", NULL};
    struct command_result r;
    char err[256];

    CHECK_EQ(command_run("/usr/bin/env", NULL, 0, env, NULL, 5, 1, NULL, 4096, &r, err, sizeof err),
             0);
    CHECK_STREQ(r.out, "A=1\nB=two words\nC=\n");
    command_result_free(&r);

    /* NULL is an empty environment, not this process's. */
    CHECK_EQ(
        command_run("/usr/bin/env", NULL, 0, NULL, NULL, 5, 1, NULL, 4096, &r, err, sizeof err), 0);
    CHECK_STREQ(r.out, "");
    CHECK_EQ(r.status, 0);
    command_result_free(&r);
}

static void test_cwd(void)
{
    char dir[] = "/tmp/cq-test-command-XXXXXX", real[PATH_MAX], want[PATH_MAX + 2];
    struct command_result r;
    char err[256];

    CHECK(mkdtemp(dir) != NULL);
    CHECK(realpath(dir, real) != NULL);
    snprintf(want, sizeof want, "%s\n", real);
    CHECK_EQ(command_run("/bin/pwd", NULL, 0, base_env, dir, 5, 1, NULL, 4096, &r, err, sizeof err),
             0);
    CHECK_STREQ(r.out, want);
    command_result_free(&r);
    rmdir(dir);

    /* A directory that is not there is a start failure naming it. */
    CHECK_EQ(command_run("/bin/pwd", NULL, 0, base_env, dir, 5, 1, NULL, 4096, &r, err, sizeof err),
             -1);
    CHECK_HAS(err, "cannot enter");
    CHECK_HAS(err, dir);
    CHECK_HAS(err, "No such file or directory");
    command_result_free(&r);
}

static void test_missing(void)
{
    char path[] = "/tmp/cq-test-command-XXXXXX";
    struct command_result r;
    char err[256] = "";
    int fd;

    CHECK_EQ(command_run("/nonexistent/prog", NULL, 0, base_env, NULL, 5, 1, NULL, 4096, &r, err,
                         sizeof err),
             -1);
    CHECK_STREQ(err, "command /nonexistent/prog: No such file or directory");
    CHECK(r.out == NULL);
    command_result_free(&r);

    /* Not executable. */
    fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    CHECK_EQ(command_run(path, NULL, 0, base_env, NULL, 5, 1, NULL, 4096, &r, err, sizeof err), -1);
    CHECK_HAS(err, path);
    CHECK_HAS(err, "Permission denied");
    command_result_free(&r);
    unlink(path);

    /* A bare name is for command_resolve. */
    CHECK_EQ(command_run("echo", NULL, 0, base_env, NULL, 5, 1, NULL, 4096, &r, err, sizeof err),
             -1);
    CHECK_HAS(err, "not an absolute path");
    command_result_free(&r);
}

static void test_resolve(void)
{
    char path[PATH_MAX], small[4], err[256];
    size_t n;

    CHECK_EQ(command_resolve("sh", path, sizeof path, err, sizeof err), 0);
    n = strlen(path);
    CHECK(path[0] == '/' && n > 3 && strcmp(path + n - 3, "/sh") == 0);
    CHECK_EQ(command_resolve("/bin/sh", path, sizeof path, err, sizeof err), 0);
    CHECK_STREQ(path, "/bin/sh");
    CHECK_EQ(command_resolve("/bin/sh", small, sizeof small, err, sizeof err), -1);
    CHECK_HAS(err, "too long");
    CHECK_EQ(command_resolve("cq-no-such-program", path, sizeof path, err, sizeof err), -1);
    CHECK_STREQ(err, "command cq-no-such-program: not found in PATH");
    CHECK_STREQ(path, "");
    {
        /* One in the working directory, named without ./: the way to it is said. */
        char dir[] = "/tmp/cq-cmd-here.XXXXXX", back[PATH_MAX];
        CHECK(getcwd(back, sizeof back) != NULL);
        CHECK(mkdtemp(dir) != NULL);
        CHECK_EQ(chdir(dir), 0);
        fclose(fopen("cq-here.sh", "w"));
        CHECK_EQ(command_resolve("cq-here.sh", path, sizeof path, err, sizeof err), -1);
        CHECK_STREQ(err,
                    "command cq-here.sh: not found in PATH (one in the working directory is "
                    "named by its path: ./cq-here.sh)");
        unlink("cq-here.sh");
        CHECK_EQ(chdir(back), 0);
        rmdir(dir);
    }
    CHECK_EQ(command_resolve("/no/such/prog", path, sizeof path, err, sizeof err), -1);
    CHECK_STREQ(err, "command /no/such/prog: No such file or directory");
    CHECK_EQ(command_resolve("/tmp", path, sizeof path, err, sizeof err), -1);
    CHECK_HAS(err, "not a regular file");
    CHECK_EQ(command_resolve("./sh", path, sizeof path, err, sizeof err), -1);
    CHECK_HAS(err, "relative path");
    CHECK_EQ(command_resolve("", path, sizeof path, err, sizeof err), -1);
    { /* a file without any x bit, as a script just written: refused with the fix */
        char noexec[] = "/tmp/cq-test-command-XXXXXX", want[128];
        int fd = mkstemp(noexec);
        CHECK(fd >= 0);
        if (fd >= 0) close(fd);
        CHECK_EQ(command_resolve(noexec, path, sizeof path, err, sizeof err), -1);
        snprintf(want, sizeof want, "command %s: not executable (no x bit): chmod +x it", noexec);
        CHECK_STREQ(err, want);
        unlink(noexec);
    }
    if (getuid() != 0) { /* root may execute anything with an x bit, and read anything */
        CHECK_EQ(command_resolve("/etc/passwd", path, sizeof path, err, sizeof err), -1);
        CHECK_HAS(err, "not executable (no x bit)");
    }
}

static void test_timeout_group(void)
{
    struct command_result r;
    long long t0 = time_mono_ms(), ms;
    char err[256];

    /* Both sleeps die of the SIGTERM, so the end comes at once, not after the grace. */
    CHECK_EQ(run_sh("sleep 30 & sleep 30", 0.3, 3, NULL, 1024, &r, err, sizeof err), 0);
    ms = time_mono_ms() - t0;
    CHECK(r.timed_out && !r.stopped);
    CHECK_EQ(r.signal, SIGTERM);
    CHECK_EQ(r.status, -1);
    CHECK(ms >= 250 && ms < 2000);
    CHECK(group_gone(r.pgid));
    command_result_free(&r);
}

static void test_ignores_term(void)
{
    struct command_result r;
    long long t0 = time_mono_ms(), ms;
    char err[256];

    /* A timeout of 1 s: the shell has run its trap before the SIGTERM, on loaded cores too. */
    CHECK_EQ(run_sh("trap '' TERM; sleep 30", 1, 0.5, NULL, 1024, &r, err, sizeof err), 0);
    ms = time_mono_ms() - t0;
    CHECK(r.timed_out);
    CHECK_EQ(r.signal, SIGKILL);
    CHECK(ms >= 1450 && ms < 3500);
    CHECK(group_gone(r.pgid));
    command_result_free(&r);

    /* The leader dies of the SIGTERM but a grandchild ignoring it holds stdout: it is
     * killed after the grace. */
    t0 = time_mono_ms();
    CHECK_EQ(
        run_sh("(trap '' TERM; exec sleep 30) & sleep 30", 1, 0.5, NULL, 1024, &r, err, sizeof err),
        0);
    ms = time_mono_ms() - t0;
    CHECK(r.timed_out);
    CHECK_EQ(r.signal, SIGTERM);
    CHECK(ms >= 1450 && ms < 3500);
    CHECK(group_gone(r.pgid));
    command_result_free(&r);
}

struct stopper {
    stop_flag *flag;
    long ms;
};

static void *set_stop(void *arg)
{
    struct stopper *s = arg;
    sleep_ms(s->ms);
    __atomic_store_n(s->flag, 1, __ATOMIC_RELAXED);
    return NULL;
}

static void test_stop(void)
{
    stop_flag stop = 0;
    struct stopper s = {&stop, 1000}; /* the shell has written its line by then */
    struct command_result r;
    long long t0 = time_mono_ms(), ms;
    pthread_t th;
    char err[256];

    CHECK_EQ(pthread_create(&th, NULL, set_stop, &s), 0);
    CHECK_EQ(run_sh("echo begun; sleep 30", 0, 3, &stop, 1024, &r, err, sizeof err), 0);
    ms = time_mono_ms() - t0;
    pthread_join(th, NULL);
    CHECK(r.stopped && !r.timed_out);
    CHECK_EQ(r.signal, SIGTERM);
    CHECK_STREQ(r.out, "begun\n");
    CHECK(ms >= 950 && ms < 3000);
    CHECK(group_gone(r.pgid));
    command_result_free(&r);
}

static void test_background_holder(void)
{
    struct command_result r;
    long long t0 = time_mono_ms(), ms;
    char err[256];

    /* The leader is done at once; the sleeper keeps stdout open and is killed after the
     * grace instead of holding command_run for 30 s. */
    CHECK_EQ(run_sh("sleep 30 & echo started", 0, 0.5, NULL, 1024, &r, err, sizeof err), 0);
    ms = time_mono_ms() - t0;
    CHECK_EQ(r.status, 0);
    CHECK(!r.timed_out && !r.stopped);
    CHECK_STREQ(r.out, "started\n");
    CHECK(ms >= 400 && ms < 2000);
    CHECK(group_gone(r.pgid));
    command_result_free(&r);

    /* A background process that does not hold the pipes costs no wait, and is swept too. */
    t0 = time_mono_ms();
    CHECK_EQ(
        run_sh("sleep 30 >/dev/null 2>&1 & echo started", 0, 3, NULL, 1024, &r, err, sizeof err),
        0);
    ms = time_mono_ms() - t0;
    CHECK_EQ(r.status, 0);
    CHECK_STREQ(r.out, "started\n");
    CHECK(ms < 1500);
    CHECK(group_gone(r.pgid));
    command_result_free(&r);
}

#define NTHREADS 16
#define ROUNDS   4
#define LINES    2000

struct worker {
    int id;
    int bad; /* failed checks, counted here: check.h's counters are not thread-safe */
};

static void *worker(void *arg)
{
    struct worker *w = arg;
    char id[16], code[16], first[32], last[32], errl[32];
    const char *const args[] = {"-c",
                                "i=0; while [ $i -lt 2000 ]; do echo \"$1-$i\"; i=$((i+1)); done;"
                                " echo \"err $1\" >&2; exit $2",
                                "sh", id, code};
    int round;

    snprintf(id, sizeof id, "t%d", w->id);
    snprintf(code, sizeof code, "%d", w->id % 7);
    snprintf(first, sizeof first, "t%d-0\n", w->id);
    snprintf(last, sizeof last, "t%d-%d\n", w->id, LINES - 1);
    snprintf(errl, sizeof errl, "err t%d", w->id);
    for (round = 0; round < ROUNDS; round++) {
        struct command_result r;
        char err[256];
        size_t fl = strlen(first), ll = strlen(last);

        if (command_run("/bin/sh", args, NARGS(args), base_env, NULL, 20, 1, NULL, 1 << 20, &r, err,
                        sizeof err) != 0) {
            fprintf(stderr, "worker %d: %s\n", w->id, err);
            w->bad++;
            continue;
        }
        if (r.status != w->id % 7 || strcmp(r.errline, errl) != 0 || r.outlen < fl + ll ||
            memcmp(r.out, first, fl) != 0 || memcmp(r.out + r.outlen - ll, last, ll) != 0 ||
            strlen(r.out) != r.outlen)
            w->bad++;
        command_result_free(&r);
    }
    return NULL;
}

static void test_threads(void)
{
    pthread_t th[NTHREADS];
    struct worker w[NTHREADS];
    int i;

    for (i = 0; i < NTHREADS; i++) {
        w[i].id = i;
        w[i].bad = 0;
        CHECK_EQ(pthread_create(&th[i], NULL, worker, &w[i]), 0);
    }
    for (i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(w[i].bad, 0);
    }
}

int main(void)
{
    sigset_t set;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    prctl(PR_SET_CHILD_SUBREAPER, 1);

    test_exit0_stdout();
    test_exit75();
    test_exit3_stderr();
    test_truncated();
    test_verbatim();
    test_signals_reset();
    test_env();
    test_cwd();
    test_missing();
    test_resolve();
    test_timeout_group();
    test_ignores_term();
    test_stop();
    test_background_holder();
    test_threads();
    return check_report();
}
