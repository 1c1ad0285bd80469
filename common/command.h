/* command.h - run an external program for a job ("distributed xargs").
 *
 * command_run starts program with the job's arguments, never through a shell, in a process
 * group of its own, collects its stdout (up to a cap) and the last line of its stderr, and
 * ends the whole group on a timeout or a hard stop. It keeps no global state and installs no
 * signal handler, so any number of threads may run commands at once. Two things the rest of
 * the process must not do (they would steal the exit status this module waits for): set
 * SIGCHLD to SIG_IGN, or call wait()/waitpid(-1, ...).
 *
 * What becomes of the group: the command is over when its first process (the group leader)
 * has exited and its stdout and stderr are closed. Whatever is then left in its group is
 * killed, so no background process of a job outlives it. A process that leaves the group
 * (setsid, setpgid) has opted out and is not tracked.
 */
#ifndef CQ_COMMAND_H
#define CQ_COMMAND_H

#include <stddef.h>
#include <sys/types.h>

#include "util.h"

#define COMMAND_ERRLINE_MAX 1024

struct command_result {
    int status;    /* exit code when it exited normally, else -1 */
    int signal;    /* the signal that ended it, else 0 */
    int timed_out; /* it was still running at the timeout and was terminated */
    int stopped;   /* it was still running when *stop became non-zero and was terminated */
    pid_t pgid;    /* its process group (= its pid); gone by the time command_run returns */
    char *out;     /* stdout, NUL-terminated (it may contain NULs too: use outlen); owned
                          * by the result, freed by command_result_free */
    size_t outlen;
    int out_truncated; /* stdout was longer than out_cap; the rest was read and discarded */
    char errline[COMMAND_ERRLINE_MAX]; /* the last non-blank line of stderr, control characters
                          * turned into spaces, trailing white space trimmed; "" when none */
};

/* Run program, an absolute path (see command_resolve), with argv[0] = program followed by
 * args[0..nargs-1], each passed verbatim.
 *   env      the child's whole environment, a NULL-terminated list of "K=V"; NULL = empty.
 *   cwd      the directory to run in; NULL = this process's.
 *   timeout  seconds, 0 = none. When it passes the group gets SIGTERM, and SIGKILL `grace`
 *            seconds later unless it has ended by then.
 *   grace    seconds between SIGTERM and SIGKILL; also how long output is still read after
 *            the leader exited while a background process holds stdout or stderr open.
 *   stop     NULL, or a flag another thread may set (read with a relaxed atomic load) when
 *            the worker shuts down hard: the group is then ended as on a timeout.
 *   out_cap  the most bytes of stdout kept.
 * Returns 0 when the program was started and reaped, whatever its exit (res says how it
 * ended); -1 with err (e.g. "command /x/y: No such file or directory") when it could not be
 * started. res needs no setup; call command_result_free on it after either return. */
int command_run(const char *program, const char *const *args, int nargs, const char *const *env,
                const char *cwd, double timeout, double grace, const stop_flag *stop,
                size_t out_cap, struct command_result *res, char *err, size_t errlen);

/* Free what command_run allocated in res (not res itself). NULL is a no-op. */
void command_result_free(struct command_result *res);

/* Turn a program name into the absolute path command_run takes: an absolute path is checked
 * to be an executable regular file; a bare name (no '/') is looked up in $PATH now (empty
 * and relative PATH entries skipped). A relative path with a '/' is refused: it would mean
 * different programs in different cwds. Returns 0, or -1 with err. Reads the environment,
 * so call it at start-up, not while another thread may call setenv. */
int command_resolve(const char *name, char *path, size_t pathlen, char *err, size_t errlen);

/* ---- functions served by commands (cworker --command) ---------------------------------- */

#include "registry.h"

#define COMMAND_GRACE   5.0 /* seconds between TERM and KILL */
#define COMMAND_RETRIES 3   /* default retries of a command function */

/* Add to reg the function a spec names: "NAME=PROGRAM" or "NAME:ARGS=PROGRAM" (ARGS as for
 * cq_function_add; default "[ARG:any...]"). PROGRAM is resolved now (command_resolve). A job
 * of it runs PROGRAM with the job's args as argv (non-string args as their JSON text), in
 * the worker's root, with only PATH=/usr/local/bin:/usr/bin:/bin and CQ_JOB_ID,
 * CQ_JOB_ATTEMPT, CQ_JOB_FUNC, CQ_JOB_QUEUE in its environment. Exit 0: finished, stdout
 * (up to CQ_RESULT_MAX bytes, as one line) is the result; 75 (EX_TEMPFAIL), a timeout, a
 * stop or a death by signal: a transient failure; any other status: a permanent one; the
 * error is the last line of stderr. Returns 0, or -1 with err, which starts with the spec in
 * quotes. */
int command_add(struct cq_registry *reg, const char *spec, char *err, size_t errlen);

/* What command_add can tell without the file system: from spec alone, its shape, the
 * function's name, its ARGS, a relative PROGRAM path; and with reg (NULL: none), a name one of
 * reg's functions has. 0, or -1 with err as command_add words it: a malformed --command or
 * one whose name is taken is a usage error, a program that is not there is not. */
int command_check(const struct cq_registry *reg, const char *spec, char *err, size_t errlen);

#endif
