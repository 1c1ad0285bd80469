/* command.c - run a job's program: fork/exec, read its output with poll(), end its group.
 *
 * DESIGN
 * Starting. The worker is multithreaded, so between fork() and execve() the child makes only
 * async-signal-safe calls; everything it needs (argv, the sigaction it installs, the fds) is
 * prepared before the fork. The parent blocks every signal around fork() so that no handler
 * of the worker's can run in the child before the child has reset all dispositions to
 * SIG_DFL (SIG_IGN, e.g. the worker's SIGPIPE, would otherwise survive execve) and emptied
 * its mask. A failure in the child (setpgid, dup2, chdir, execve) is written as {stage,
 * errno} to a CLOEXEC pipe whose read end the parent reads to EOF: EOF with no report means
 * execve succeeded, so a missing program is a -1 with a clear message instead of an exit 127
 * that looks like the program's own. This read also means the child has run setpgid(0, 0)
 * before the parent sends any group signal; the parent calls setpgid(pid, pid) as well, the
 * usual belt and braces. All pipes are pipe2(O_CLOEXEC), so a command started by another
 * thread never inherits them (at most its child holds them until its own execve).
 *
 * Reading. stdout and stderr are read in one poll() loop, so neither pipe can fill up and
 * stall the child while the parent waits on the other. The poll waits at most TICK_MS so the
 * timeout and the stop flag are noticed promptly; there is no SIGCHLD handler and no global
 * state, so any number of threads may run commands at once.
 *
 * Group signals and pgid reuse. The group's id is the leader's pid. Once the leader is
 * reaped, that number may be handed to a new process, which may be the leader of another
 * job's group started by another thread a moment later, and kill(-pgid) would hit it. So the
 * leader is never reaped while this module may still signal its group: its exit is observed
 * with waitid(..., WNOWAIT), which leaves it a zombie, and a zombie keeps its pid (and so the
 * group id) reserved. Every kill(-pgid, ...) happens before the one waitpid() that reaps it.
 * The price: with the zombie still in the group, kill(-pgid, 0) always succeeds, so "is any
 * process left?" cannot be asked. Instead, once the leader has exited and stdout and stderr
 * are closed (or the lingering bound below has passed), the group gets one SIGKILL as a
 * sweep, harmless when it holds only the zombie, and only then is the leader reaped.
 *
 * Ending. On timeout or stop: SIGTERM to the group, and SIGKILL `grace` seconds later if the
 * leader is still running or a process still holds the pipes; if the leader died of the
 * SIGTERM and the pipes are closed, the sweep comes at once. When the leader exits (by
 * itself or not) while something in its group still holds stdout or stderr open, reading
 * goes on until EOF or for at most `grace` seconds (not past the timeout, not after stop),
 * then the group is killed: a background process cannot hold the job forever.
 */
#include "command.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define TICK_MS        50  /* longest wait before the clocks and the stop flag are looked at */
#define DRAIN_MS       250 /* after the SIGKILL, how long to wait for the pipes to close */
#define READ_CHUNK     16384
#define READS_PER_WAKE 8 /* so that one chatty pipe cannot keep the loop from its clocks */

/* What failed in the child before execve, reported through the CLOEXEC pipe. */
enum stage { STAGE_SETPGID = 1, STAGE_DUP, STAGE_CHDIR, STAGE_EXEC };

struct report {
    int stage;
    int err;
};

/* Everything the child uses, prepared before fork(). */
struct spawn {
    const char *program;
    char *const *argv;
    char *const *envp;
    const char *cwd;
    int in_fd, out_fd, err_fd, rep_fd;
    struct sigaction dfl;
    sigset_t empty;
};

/* The output being collected. */
struct capture {
    char *out;
    size_t len, alloc, cap;
    int truncated;
    char line[COMMAND_ERRLINE_MAX]; /* the stderr line being read */
    size_t linelen;
    char *errline; /* where a finished non-blank line goes */
};

/* ---- the child (async-signal-safe calls only) ------------------------------------------- */

__attribute__((noreturn)) static void child_fail(int fd, int stage)
{
    struct report r;
    ssize_t w;

    r.stage = stage;
    r.err = errno;
    w = write(fd, &r, sizeof r);
    (void)w; /* nothing else can be done with a failure here */
    _exit(127);
}

__attribute__((noreturn)) static void child_exec(const struct spawn *sp)
{
    int sig;

    if (setpgid(0, 0) != 0) child_fail(sp->rep_fd, STAGE_SETPGID);
    /* Every signal is still blocked (see command_run), so nothing runs before this. glibc
     * refuses its two internal signals with EINVAL, which is fine. */
    for (sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &sp->dfl, NULL);
    }
    sigprocmask(SIG_SETMASK, &sp->empty, NULL);
    /* The sources are all >= 3 (lift_fd), so these cannot overwrite one another. */
    if (dup2(sp->in_fd, STDIN_FILENO) < 0 || dup2(sp->out_fd, STDOUT_FILENO) < 0 ||
        dup2(sp->err_fd, STDERR_FILENO) < 0)
        child_fail(sp->rep_fd, STAGE_DUP);
    if (sp->cwd != NULL && chdir(sp->cwd) != 0) child_fail(sp->rep_fd, STAGE_CHDIR);
#ifdef CLOSE_RANGE_CLOEXEC
    /* Every descriptor of the worker should be CLOEXEC already; this catches one that is
     * not (a library's). CLOEXEC rather than close keeps the report pipe open for execve's
     * failure. Older kernels answer EINVAL or ENOSYS: the guarantee is then the callers'. */
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
#endif
    execve(sp->program, sp->argv, sp->envp);
    child_fail(sp->rep_fd, STAGE_EXEC);
}

/* ---- the parent ------------------------------------------------------------------------- */

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* Move a descriptor that landed on 0, 1 or 2 (when the worker runs with some of them
 * closed) to >= 3, so that the child's dup2() onto 0-2 cannot clobber another source. */
static int lift_fd(int *fd)
{
    int nfd;

    if (*fd > STDERR_FILENO) return 0;
    nfd = fcntl(*fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    close(*fd);
    *fd = nfd;
    return nfd < 0 ? -1 : 0;
}

/* "command <name>: <what>: <errno text>" (no "<what>: " when what is NULL), with the
 * thread-safe strerror_r: many threads run commands at once. */
static void sys_err(char *err, size_t errlen, const char *name, const char *what, int errnum)
{
    char buf[128];
    const char *msg = strerror_r(errnum, buf, sizeof buf);

    if (what != NULL)
        err_set(err, errlen, "command %s: %s: %s", name, what, msg);
    else
        err_set(err, errlen, "command %s: %s", name, msg);
}

static long long secs_to_ms(double s)
{
    if (!(s > 0)) return 0; /* also NaN */
    if (s > 1e9) s = 1e9;   /* "forever", without overflowing the clock arithmetic */
    if (s < 0.001) return 1;
    return (long long)(s * 1000.0 + 0.5);
}

static void out_feed(struct capture *c, const char *buf, size_t n)
{
    size_t room = c->cap - c->len, take = n < room ? n : room;

    if (take < n) c->truncated = 1;
    if (take == 0) return;
    if (c->len + take + 1 > c->alloc) {
        size_t na = c->alloc ? c->alloc : 4096;
        while (na < c->len + take + 1) na *= 2;
        if (na > c->cap + 1) na = c->cap + 1;
        c->out = xrealloc(c->out, na);
        c->alloc = na;
    }
    memcpy(c->out + c->len, buf, take);
    c->len += take;
}

/* Length of s[0..n) without a UTF-8 sequence cut short at its end (a long line is cut at
 * the buffer, possibly inside a character). */
static size_t utf8_whole(const char *s, size_t n)
{
    size_t i = n, want;
    unsigned char lead;

    while (i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
    if (i == 0) return n;
    lead = (unsigned char)s[i - 1];
    if ((lead & 0xE0) == 0xC0)
        want = 2;
    else if ((lead & 0xF0) == 0xE0)
        want = 3;
    else if ((lead & 0xF8) == 0xF0)
        want = 4;
    else
        return n; /* ASCII or not UTF-8 at all: leave it */
    return n - (i - 1) < want ? i - 1 : n;
}

static void line_end(struct capture *c)
{
    size_t n = c->linelen;

    c->linelen = 0;
    n = utf8_whole(c->line, n);
    /* Control characters are spaces by now, so this trims a "\r" too. */
    while (n > 0 && c->line[n - 1] == ' ') n--;
    if (n == 0) return; /* a blank line does not hide the message before it */
    memcpy(c->errline, c->line, n);
    c->errline[n] = '\0';
}

static void err_feed(struct capture *c, const char *buf, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\n') {
            line_end(c);
            continue;
        }
        /* Keep the head of an over-long line: that is where a message says what failed. */
        if (c->linelen < sizeof c->line - 1)
            c->line[c->linelen++] = (char)(ch < 0x20 || ch == 0x7F ? ' ' : ch);
    }
}

/* Read what fd has now. Returns 0 while it stays open, -1 at EOF (or an error, which is
 * treated alike: nothing more will come). */
static int drain(int fd, struct capture *c, int is_err, int max_reads)
{
    char buf[READ_CHUNK];
    int i;

    for (i = 0; i < max_reads; i++) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            if (is_err)
                err_feed(c, buf, (size_t)n);
            else
                out_feed(c, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        return -1;
    }
    return 0;
}

/* The loop of the DESIGN comment. fds[0] is stdout, fds[1] stderr; both are closed on
 * return. Returns 0 with res filled in, or -1 when the child was reaped by someone else. */
static int supervise(pid_t pid, int fds[2], long long deadline, long long grace_ms,
                     const stop_flag *stop, struct capture *c, struct command_result *res,
                     const char *program, char *err, size_t errlen)
{
    long long now, kill_at = -1, drain_until = 0;
    int exited = 0, termed = 0, killed = 0, stopping, nap = 1, i, st;
    pid_t w;

    for (;;) {
        struct pollfd pfd[2];
        int nfds = 0, idx[2], tmo = TICK_MS;

        for (i = 0; i < 2; i++) {
            if (fds[i] < 0) continue;
            pfd[nfds].fd = fds[i];
            pfd[nfds].events = POLLIN;
            pfd[nfds].revents = 0;
            idx[nfds++] = i;
        }
        if (nfds == 0) {
            /* Only the exit is left to see, and it usually follows the pipes' EOF within
             * microseconds: look again soon, then back off to the tick. */
            tmo = nap;
            nap = nap * 2 < TICK_MS ? nap * 2 : TICK_MS;
        }
        if (poll(pfd, (nfds_t)nfds, tmo) > 0) {
            for (i = 0; i < nfds; i++) {
                if (pfd[i].revents == 0) continue;
                if (drain(pfd[i].fd, c, idx[i] == 1, READS_PER_WAKE) < 0) close_fd(&fds[idx[i]]);
            }
        }

        now = time_mono_ms();
        if (!exited) {
            siginfo_t si;
            memset(&si, 0, sizeof si);
            if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
                if (errno == ECHILD) {
                    close_fd(&fds[0]);
                    close_fd(&fds[1]);
                    err_set(err, errlen,
                            "command %s: the child was reaped elsewhere "
                            "(SIGCHLD ignored, or a wait for any child?)",
                            program);
                    return -1;
                }
            } else if (si.si_pid == pid) {
                exited = 1;
                if (kill_at < 0) kill_at = now + grace_ms; /* the lingering bound */
            }
        }
        if (exited && !killed && fds[0] < 0 && fds[1] < 0) break;
        /* The timeout and the stop apply to what lingers after the leader too, but only a
         * leader still running counts as timed out or stopped: its exit status is real. */
        stopping = stop_requested(stop);
        if (!termed && !killed && (stopping || (deadline > 0 && now >= deadline))) {
            if (!exited) {
                if (stopping)
                    res->stopped = 1;
                else
                    res->timed_out = 1;
            }
            kill(-pid, SIGTERM);
            termed = 1;
            if (kill_at < 0 || now + grace_ms < kill_at) kill_at = now + grace_ms;
        }
        if (!killed && kill_at >= 0 && now >= kill_at) {
            kill(-pid, SIGKILL);
            killed = 1;
            drain_until = now + DRAIN_MS;
        }
        if (exited && killed && ((fds[0] < 0 && fds[1] < 0) || now >= drain_until)) break;
    }

    /* What is already in the pipes is the command's output even if a writer escaped the
     * group and keeps them open; read it, but not forever. */
    for (i = 0; i < 2; i++) {
        if (fds[i] >= 0) drain(fds[i], c, i == 1, 64);
        close_fd(&fds[i]);
    }
    if (!killed) kill(-pid, SIGKILL); /* the sweep: the leader is a zombie, the id still ours */
    do {
        w = waitpid(pid, &st, 0);
    } while (w < 0 && errno == EINTR);
    if (w != pid) {
        sys_err(err, errlen, program, "waitpid", errno);
        return -1;
    }
    if (WIFEXITED(st)) {
        res->status = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
        res->signal = WTERMSIG(st);
    }
    return 0;
}

static void describe_failure(const struct report *r, const char *program, const char *cwd,
                             char *err, size_t errlen)
{
    char buf[128];
    const char *msg = strerror_r(r->err, buf, sizeof buf);

    switch (r->stage) {
    case STAGE_EXEC: err_set(err, errlen, "command %s: %s", program, msg); break;
    case STAGE_CHDIR:
        err_set(err, errlen, "command %s: cannot enter %s: %s", program, cwd ? cwd : "", msg);
        break;
    case STAGE_SETPGID: err_set(err, errlen, "command %s: setpgid: %s", program, msg); break;
    default: err_set(err, errlen, "command %s: dup2: %s", program, msg); break;
    }
}

/* The child's stdin (/dev/null), stdout and stderr pipes, and the pipe on which it reports
 * a failed exec. 0, or -1 with err. */
static int make_pipes(const char *program, int outp[2], int errp[2], int repp[2], int *nullfd,
                      char *err, size_t errlen)
{
    if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 || pipe2(repp, O_CLOEXEC) != 0) {
        sys_err(err, errlen, program, "pipe", errno);
        return -1;
    }
    *nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (*nullfd < 0) {
        sys_err(err, errlen, program, "/dev/null", errno);
        return -1;
    }
    if (lift_fd(nullfd) != 0 || lift_fd(&outp[1]) != 0 || lift_fd(&errp[1]) != 0) {
        sys_err(err, errlen, program, "fcntl", errno);
        return -1;
    }
    /* Only the parent's read ends: the child's stdout must stay blocking. */
    if (fcntl(outp[0], F_SETFL, O_NONBLOCK) != 0 || fcntl(errp[0], F_SETFL, O_NONBLOCK) != 0) {
        sys_err(err, errlen, program, "fcntl", errno);
        return -1;
    }
    return 0;
}

/* Read the child's exec report and close its pipe. 1 when the exec failed (*rep says how);
 * 0 on EOF without a report: the exec succeeded. */
static int read_report(int *fd, struct report *rep)
{
    size_t got = 0;

    while (got < sizeof *rep) {
        ssize_t n = read(*fd, (char *)rep + got, sizeof *rep - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close_fd(fd);
    return got == sizeof *rep;
}

int command_run(const char *program, const char *const *args, int nargs, const char *const *env,
                const char *cwd, double timeout, double grace, const stop_flag *stop,
                size_t out_cap, struct command_result *res, char *err, size_t errlen)
{
    static const char *const no_env[] = {NULL};
    int outp[2] = {-1, -1}, errp[2] = {-1, -1}, repp[2] = {-1, -1}, nullfd = -1;
    int fds[2], i, saved, rc = -1;
    struct capture *c = NULL;
    struct spawn sp;
    struct report rep;
    sigset_t all, old;
    char **argv;
    long long start = time_mono_ms(), tmo_ms = secs_to_ms(timeout);
    pid_t pid;

    memset(res, 0, sizeof *res);
    res->status = -1;
    if (program == NULL || program[0] != '/') {
        err_set(err, errlen, "command %s: not an absolute path", program ? program : "(null)");
        return -1;
    }
    if (nargs < 0 || (nargs > 0 && args == NULL)) {
        err_set(err, errlen, "command %s: bad argument list", program);
        return -1;
    }

    argv = xmalloc(((size_t)nargs + 2) * sizeof *argv);
    argv[0] = (char *)program; /* execve's prototype predates const; it writes nothing */
    for (i = 0; i < nargs; i++) argv[i + 1] = (char *)args[i];
    argv[nargs + 1] = NULL;

    if (make_pipes(program, outp, errp, repp, &nullfd, err, errlen) != 0) goto out;

    memset(&sp, 0, sizeof sp);
    sp.program = program;
    sp.argv = argv;
    sp.envp = (char *const *)(env ? env : no_env);
    sp.cwd = cwd;
    sp.in_fd = nullfd;
    sp.out_fd = outp[1];
    sp.err_fd = errp[1];
    sp.rep_fd = repp[1];
    sp.dfl.sa_handler = SIG_DFL;
    sigemptyset(&sp.dfl.sa_mask);
    sigemptyset(&sp.empty);

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0) child_exec(&sp);
    saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        sys_err(err, errlen, program, "fork", saved);
        goto out;
    }
    /* Fails harmlessly when the child got there first and has already exec'd (EACCES). */
    setpgid(pid, pid);
    res->pgid = pid;
    close_fd(&nullfd);
    close_fd(&outp[1]);
    close_fd(&errp[1]);
    close_fd(&repp[1]);

    if (read_report(&repp[0], &rep)) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        describe_failure(&rep, program, cwd, err, errlen);
        goto out;
    }

    c = xcalloc(1, sizeof *c);
    /* Room for the NUL and for doubling without overflow. */
    c->cap = out_cap < SIZE_MAX / 4 ? out_cap : SIZE_MAX / 4;
    c->errline = res->errline;
    fds[0] = outp[0];
    fds[1] = errp[0];
    outp[0] = errp[0] = -1;
    rc = supervise(pid, fds, tmo_ms > 0 ? start + tmo_ms : 0, secs_to_ms(grace), stop, c, res,
                   program, err, errlen);
    if (c->linelen > 0) line_end(c); /* a last line without its newline */
    if (rc == 0) {
        if (c->out == NULL) c->out = xmalloc(1);
        c->out[c->len] = '\0';
        res->out = c->out;
        res->outlen = c->len;
        res->out_truncated = c->truncated;
        c->out = NULL;
    }

out:
    if (c != NULL) free(c->out);
    free(c);
    close_fd(&outp[0]);
    close_fd(&outp[1]);
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    close_fd(&repp[0]);
    close_fd(&repp[1]);
    close_fd(&nullfd);
    free(argv);
    return rc;
}

void command_result_free(struct command_result *res)
{
    if (res == NULL) return;
    free(res->out);
    res->out = NULL;
    res->outlen = 0;
}

/* 0 when path is an executable regular file; else -1 with the reason in err, name shown
 * as the caller gives it (str_shown). */
static int check_executable(const char *name, const char *path, char *err, size_t errlen)
{
    struct stat st;

    if (stat(path, &st) != 0) {
        sys_err(err, errlen, name, NULL, errno);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        err_set(err, errlen, "command %s: not a regular file", name);
        return -1;
    }
    if (access(path, X_OK) != 0) {
        /* No x bit at all (a script just written) has a one-command fix; anything else (a
         * noexec mount, another user's mode) keeps the system's reason. */
        if (errno == EACCES && (st.st_mode & 0111) == 0)
            err_set(err, errlen, "command %s: not executable (no x bit): chmod +x it", name);
        else
            sys_err(err, errlen, name, NULL, errno);
        return -1;
    }
    return 0;
}

int command_resolve(const char *name, char *path, size_t pathlen, char *err, size_t errlen)
{
    const char *dirs, *p;
    char shown[STR_SHOWN_LEN];
    size_t nl;

    if (pathlen > 0) path[0] = '\0';
    if (name == NULL || name[0] == '\0') {
        err_set(err, errlen, "command: empty program name");
        return -1;
    }
    nl = strlen(name);
    /* Said escaped and cut (str_shown): a name from a command line, whose newline made the
     * error two lines, and whose length cut off the cause after it. */
    str_shown(name, shown, sizeof shown);
    if (strchr(name, '/') != NULL) {
        if (name[0] != '/') {
            err_set(err, errlen,
                    "command %s: a relative path; give an absolute path or a "
                    "bare name to look up in PATH",
                    shown);
            return -1;
        }
        if (check_executable(shown, name, err, errlen) != 0) return -1;
        if (str_copy(path, pathlen, name) != 0) {
            err_set(err, errlen, "command %s: path too long", shown);
            if (pathlen > 0) path[0] = '\0';
            return -1;
        }
        return 0;
    }

    dirs = getenv("PATH");
    if (dirs == NULL || dirs[0] == '\0') dirs = "/usr/local/bin:/usr/bin:/bin";
    for (p = dirs;;) {
        const char *colon = strchr(p, ':');
        size_t dl = colon ? (size_t)(colon - p) : strlen(p);
        char cand[PATH_MAX];

        /* An empty or relative entry means "relative to the cwd", which is not a place a
         * worker should take programs from. */
        if (dl > 0 && p[0] == '/' && dl + 1 + nl + 1 <= sizeof cand) {
            struct stat st;
            memcpy(cand, p, dl);
            cand[dl] = '/';
            memcpy(cand + dl + 1, name, nl + 1);
            if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) {
                if (str_copy(path, pathlen, cand) != 0) {
                    err_set(err, errlen, "command %s: path too long", shown);
                    if (pathlen > 0) path[0] = '\0';
                    return -1;
                }
                return 0;
            }
        }
        if (colon == NULL) break;
        p = colon + 1;
    }
    /* The likely slip: a script in the working directory, named as a shell would not find
     * it either. */
    if (access(name, F_OK) == 0)
        err_set(err, errlen,
                "command %s: not found in PATH (one in the working directory is named by its "
                "path: ./%s)",
                shown, shown);
    else
        err_set(err, errlen, "command %s: not found in PATH", shown);
    return -1;
}

/* ---- functions served by commands ---------------------------------------------------- */

#include "call.h"

#define EX_TEMPFAIL_CODE  75 /* sysexits.h: "try again later" */
#define EX_CANTCREAT_CODE 73 /* sysexits.h: "can't create (user) output file": the host's */
#define EX_IOERR_CODE     74 /* sysexits.h: "input/output error": the host's */

struct command_fn {
    char program[PATH_MAX];
};

static int fn_command(cq_job *job, void *udata)
{
    const struct command_fn *cf = udata;
    struct command_result res;
    int n = cq_job_nargs(job), i, rc;
    const char **args = xcalloc((size_t)(n ? n : 1), sizeof *args);
    char env_id[200], env_attempt[64], env_func[128], env_queue[200], err[512];
    const char *env[] = {
        "PATH=/usr/local/bin:/usr/bin:/bin", env_id, env_attempt, env_func, env_queue, NULL};
    double deadline = cq_job_deadline(job), timeout = 0;

    for (i = 0; i < n; i++) {
        args[i] = cq_job_arg_string(job, i);
        if (args[i] == NULL) args[i] = cq_job_arg_json(job, i);
    }
    snprintf(env_id, sizeof env_id, "CQ_JOB_ID=%s", cq_job_id(job));
    snprintf(env_attempt, sizeof env_attempt, "CQ_JOB_ATTEMPT=%d", cq_job_attempt(job));
    snprintf(env_func, sizeof env_func, "CQ_JOB_FUNC=%s", cq_job_func(job));
    snprintf(env_queue, sizeof env_queue, "CQ_JOB_QUEUE=%s", cq_job_queue(job));
    if (deadline > 0) {
        timeout = deadline - time_now();
        if (timeout < 0.001) timeout = 0.001;
    }
    rc = command_run(cf->program, args, n, env, cq_job_root(job), timeout, COMMAND_GRACE, job->stop,
                     CQ_RESULT_MAX, &res, err, sizeof err);
    free(args);
    if (rc != 0) {
        command_result_free(&res);
        return cq_job_fail(job, CQ_TRANSIENT, 0, "%s: %s", cq_job_func(job), err);
    }
    if (res.timed_out)
        rc = cq_job_fail(job, CQ_TRANSIENT, 0,
                         "%s: %s timed out after %.3gs (its process "
                         "group was terminated)%s%s",
                         cq_job_func(job), cf->program, timeout, res.errline[0] ? ": " : "",
                         res.errline);
    else if (res.stopped)
        rc = cq_job_fail(job, CQ_TRANSIENT, 0, "%s: %s interrupted by worker shutdown",
                         cq_job_func(job), cf->program);
    else if (res.signal != 0)
        rc = cq_job_fail(job, CQ_TRANSIENT, 0, "%s: %s killed by signal %d%s%s", cq_job_func(job),
                         cf->program, res.signal, res.errline[0] ? ": " : "", res.errline);
    else if (res.status != 0)
        rc = cq_job_fail(job,
                         res.status == EX_TEMPFAIL_CODE ? CQ_TRANSIENT
                             : res.status == EX_CANTCREAT_CODE || res.status == EX_IOERR_CODE
                             ? CQ_HOST
                             : CQ_PERMANENT,
                         0, "%s: %s exited with status %d%s%s", cq_job_func(job), cf->program,
                         res.status, res.errline[0] ? ": " : "", res.errline);
    else {
        /* One line: trailing newlines go, inner ones become spaces (cq_job_result). */
        while (res.outlen > 0 &&
               (res.out[res.outlen - 1] == '\n' || res.out[res.outlen - 1] == '\r'))
            res.out[--res.outlen] = '\0';
        cq_job_result(job, res.out ? res.out : "");
        rc = 0;
    }
    command_result_free(&res);
    return rc;
}

/* A spec's name (into name, REGISTRY_NAME_MAX + 1 bytes) and its ARGS (malloc'ed, NULL when
 * none), once command_check has passed it. */
static void split_spec(const char *spec, char *name, char **args)
{
    const char *eq = strchr(spec, '='), *colon = memchr(spec, ':', (size_t)(eq - spec));
    size_t nl = (size_t)((colon ? colon : eq) - spec);

    memcpy(name, spec, nl);
    name[nl] = '\0';
    *args = NULL;
    if (colon != NULL) {
        *args = xmalloc((size_t)(eq - colon));
        memcpy(*args, colon + 1, (size_t)(eq - colon - 1));
        (*args)[eq - colon - 1] = '\0';
    }
}

int command_check(const struct cq_registry *reg, const char *spec, char *err, size_t errlen)
{
    const char *eq = strchr(spec, '='), *colon;
    char name[REGISTRY_NAME_MAX + 1], why[512], *args = NULL, shown[STR_SHOWN_LEN];
    struct cq_registry *scratch;
    size_t nl;
    int rc = 0;

    /* The spec is quoted escaped and cut (str_shown), so that the cause after it is said, on
     * one line, however long or odd the spec. */
    str_shown(spec, shown, sizeof shown);
    if (eq == NULL) {
        err_set(err, errlen, "'%s': give NAME=PROGRAM or NAME:ARGS=PROGRAM", shown);
        return -1;
    }
    colon = memchr(spec, ':', (size_t)(eq - spec));
    nl = (size_t)((colon ? colon : eq) - spec);
    if (nl == 0 || nl > REGISTRY_NAME_MAX) {
        err_set(err, errlen, "'%s': the function name must have 1-%d characters", shown,
                REGISTRY_NAME_MAX);
        return -1;
    }
    if (eq[1] == '\0') {
        err_set(err, errlen, "'%s': no program after '='", shown);
        return -1;
    }
    if (strchr(eq + 1, '/') != NULL && eq[1] != '/') {
        err_set(err, errlen,
                "'%s': command %s: a relative path; give an absolute path or a bare name to "
                "look up in PATH",
                shown, str_shown(eq + 1, why, sizeof why));
        return -1;
    }
    /* The name and the arguments as the registry will take them, in one of its own. */
    split_spec(spec, name, &args);
    scratch = registry_new();
    if (registry_describe(scratch, name, args ? args : "[ARG:any...]", why, sizeof why) == NULL ||
        (reg != NULL && registry_check_free(reg, name, why, sizeof why) != 0)) {
        err_set(err, errlen, "'%s': %s", shown, why);
        rc = -1;
    }
    registry_free(scratch);
    free(args);
    return rc;
}

int command_add(struct cq_registry *reg, const char *spec, char *err, size_t errlen)
{
    const char *eq = strchr(spec, '=');
    char name[REGISTRY_NAME_MAX + 1], why[512], *args, *source, shown[STR_SHOWN_LEN];
    const char *saved;
    struct command_fn *cf;
    cq_function *f;

    if (command_check(reg, spec, err, errlen) != 0) return -1; /* a taken name before the program */
    str_shown(spec, shown, sizeof shown);
    split_spec(spec, name, &args);
    cf = xcalloc(1, sizeof *cf);
    if (command_resolve(eq + 1, cf->program, sizeof cf->program, why, sizeof why) != 0) {
        err_set(err, errlen, "'%s': %s", shown, why);
        free(args);
        free(cf);
        return -1;
    }
    source = xstrdup_printf("command %s", cf->program);
    saved = reg->source;
    registry_set_source(reg, source);
    f = cq_function_add(reg, name, args ? args : "[ARG:any...]", fn_command, cf);
    registry_set_source(reg, saved);
    free(source);
    free(args);
    if (f == NULL) {
        err_set(err, errlen, "'%s': %s", shown, cq_registry_error(reg));
        free(cf);
        return -1;
    }
    /* cf lives as long as the function: registry_free releases it. */
    f->udata_free = free;
    cq_function_set_retries(f, COMMAND_RETRIES);
    {
        char summary[PATH_MAX + 32];
        snprintf(summary, sizeof summary, "run %s with the job's arguments", cf->program);
        cq_function_set_summary(f, summary);
    }
    return 0;
}
