/* redis_server.h - a private redis-server for a C test program, as hiredis's tests have:
 * no TCP, a Unix socket in a mkdtemp directory, stopped on every way out (at exit; from
 * SIGTERM/SIGINT/SIGHUP through an async-signal-safe handler; by the kernel with
 * PR_SET_PDEATHSIG when the test dies without either). server_start() connects R to it and
 * sets sock_path; DO(fmt, ...) runs a command on R whose reply does not matter, and
 * RUN(fn) a case on an empty server. The includer declares nothing else of these names.
 * Header-only: each test program is one translation unit. With $CQ_TEST_REDIS_MODULE the
 * path of cq's Redis module, the server loads it and R must find it (so the outcomes go
 * through CQ.APPLY1); without, R asks and must not. */
#ifndef CQ_TEST_REDIS_SERVER_H
#define CQ_TEST_REDIS_SERVER_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "rconn.h"
#include "util.h"

static char tmpdir[128], sock_path[192], log_path[192];
static volatile pid_t server_pid = -1; /* read by the signal handler */
static struct rconn R;

/* Async-signal-safe: kill, waitpid, unlink and rmdir only. */
static void server_kill(int sig)
{
    if (server_pid > 0) {
        kill(server_pid, sig);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
    if (tmpdir[0] != '\0') {
        unlink(sock_path);
        unlink(log_path);
        rmdir(tmpdir);
    }
}

static void on_signal(int sig)
{
    server_kill(SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void cleanup(void)
{
    DIR *d;
    struct dirent *e;

    rconn_close(&R);
    server_kill(SIGTERM);
    if (tmpdir[0] == '\0') return;
    /* Whatever else the server may have left (it is told to write nothing). */
    d = opendir(tmpdir);
    for (e = d != NULL ? readdir(d) : NULL; e != NULL; e = readdir(d)) {
        char p[PATH_MAX];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        unlink(p);
    }
    if (d != NULL) closedir(d);
    rmdir(tmpdir);
    tmpdir[0] = '\0';
}

static void fatal(const char *what)
{
    char line[256];
    FILE *f;

    fprintf(stderr, "%s: %s\n", program_invocation_short_name, what);
    f = fopen(log_path, "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL) fprintf(stderr, "  redis: %s", line);
    if (f != NULL) fclose(f);
    exit(1);
}

/* More redis-server arguments, NULL-terminated (server_restart). */
#define SERVER_EXTRA_MAX 8
#define SERVER_BASE_ARGS 11 /* the fixed ones of server_launch's argv */
static const char *server_extra[SERVER_EXTRA_MAX + 1];

/* Start redis-server with the arguments of server_start and server_extra, and connect R. */
static void server_launch(void)
{
    const char *module = getenv("CQ_TEST_REDIS_MODULE");
    struct rconn_url u;
    char err[256], url[256];
    pid_t parent = getpid();
    int i;

    server_pid = fork();
    if (server_pid < 0) fatal("fork failed");
    if (server_pid == 0) {
        /* SERVER_BASE_ARGS below, 4 for the module, the extra ones, the NULL */
        const char *argv[SERVER_BASE_ARGS + 4 + SERVER_EXTRA_MAX + 1] = {
            "redis-server", "--port", "0",     "--unixsocket", sock_path, "--save", "",
            "--appendonly", "no",     "--dir", tmpdir};
        int n = SERVER_BASE_ARGS, fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (module != NULL && module[0] != '\0') {
            /* MODULE LOAD and UNLOAD from the socket too: test_queue unloads cq's module
             * under a connection that uses it (the option is Redis 7.0's, as the module) */
            argv[n++] = "--loadmodule";
            argv[n++] = module;
            argv[n++] = "--enable-module-command";
            argv[n++] = "local";
        }
        for (i = 0; server_extra[i] != NULL; i++) argv[n++] = server_extra[i];
        argv[n] = NULL;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "exec redis-server: %s\n", strerror(errno));
        _exit(127);
    }

    snprintf(url, sizeof url, "unix://%s", sock_path);
    if (rconn_parse_url(url, &u, err, sizeof err) != 0) fatal(err);
    rconn_init(&R, &u, 2.0);
    R.want_module = RCONN_MODULE_WORKER;
    for (i = 0; i < 500; i++) { /* 5 s */
        int st;
        if (waitpid(server_pid, &st, WNOHANG) == server_pid) {
            server_pid = -1;
            fatal("redis-server exited at start");
        }
        if (access(sock_path, F_OK) == 0 && rconn_connect(&R) == 0) {
            redisReply *rep = rconn_commandf(&R, "PING");
            int up =
                rep != NULL && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
            if (rep != NULL) freeReplyObject(rep);
            if (up && (R.module != 0) != (module != NULL && module[0] != '\0'))
                fatal(R.module ? "Redis has cq's module, which it was not given"
                               : "Redis did not load cq's module ($CQ_TEST_REDIS_MODULE)");
            if (up) return;
        }
        sleep_ms(10);
    }
    fatal("redis-server did not answer PING within 5 s");
}

static void server_start(void)
{
    const char *base = getenv("TMPDIR");
    struct sigaction sa;

    /* A Unix socket path has room for about 100 bytes: a long $TMPDIR would not do. */
    if (base == NULL || base[0] == '\0' || strlen(base) > 60) base = "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/cq-test-redis.XXXXXX", base);
    if (mkdtemp(tmpdir) == NULL) {
        fprintf(stderr, "%s: mkdtemp %s: %s\n", program_invocation_short_name, tmpdir,
                strerror(errno));
        tmpdir[0] = '\0';
        exit(1);
    }
    snprintf(sock_path, sizeof sock_path, "%s/redis.sock", tmpdir);
    snprintf(log_path, sizeof log_path, "%s/redis.log", tmpdir);
    atexit(cleanup);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    server_launch();
}

/* Stop the server and start another, empty, in its place with the redis-server arguments
 * extra (NULL-terminated, at most SERVER_EXTRA_MAX) added; R is connected to it. Its log
 * follows the first one's in log_path. */
static inline void server_restart(const char *const *extra)
{
    sigset_t stop, old;
    int i;

    for (i = 0; extra[i] != NULL; i++)
        if (i == SERVER_EXTRA_MAX) fatal("server_restart: more arguments than SERVER_EXTRA_MAX");
    rconn_close(&R);
    /* The signal handlers kill server_pid: not while it is being waited for. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop, &old);
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    unlink(sock_path);
    for (i = 0; extra[i] != NULL; i++) server_extra[i] = extra[i];
    server_extra[i] = NULL;
    server_launch();
}

/* Whether the server's log (both servers', after a restart) has text. */
static inline int server_log_has(const char *text)
{
    char line[512];
    int found = 0;
    FILE *f = fopen(log_path, "r");

    while (f != NULL && !found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, text) != NULL;
    if (f != NULL) fclose(f);
    return found;
}

/* Free a reply that does not matter. */
static inline void discard(redisReply *rep)
{
    if (rep != NULL) freeReplyObject(rep);
}

/* Run a command whose reply does not matter (setting up a case), on the test's connection. */
#define DO(...) discard(rconn_commandf(&R, __VA_ARGS__))

/* Empty the server between cases. */
static inline void flushall(void)
{
    redisReply *rep = rconn_commandf(&R, "FLUSHALL");
    if (rep == NULL) fatal(R.errstr);
    freeReplyObject(rep);
}

/* Run one case on an empty Redis; name it in the log when it fails or is slow. */
static inline void run_case(const char *name, void (*fn)(void))
{
    int before = failures;
    double t = time_now();

    flushall();
    fn();
    if (failures != before)
        fprintf(stderr, "-- %s: %d failed\n", name, failures - before);
    else if (time_now() - t > 1.5)
        fprintf(stderr, "-- %s: %.1f s\n", name, time_now() - t);
}

#define RUN(fn) run_case(#fn, fn)

#endif
