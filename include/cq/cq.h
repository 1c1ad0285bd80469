/* cq.h - the public API of libcq, cq's queue library. This is the only header cq installs.
 *
 * Three kinds of programs use it:
 *
 *   plugins   shared objects that cworker loads with --load: they define cq_plugin_init
 *             (with CQ_PLUGIN_DECLARE) and register functions through cq_function_add();
 *   workers   C programs that embed a worker with their own functions (cq_worker_*), as
 *             cworker itself does;
 *   clients   C programs that enqueue jobs and read or wait for their outcome (cq_client_*),
 *             as cenqueue and cproducer do.
 *
 * Every type is opaque and reached through functions, so a plugin built against API version N
 * keeps loading into later workers that support N: no struct layout crosses this boundary.
 * Functions return 0 or a pointer on success and -1 or NULL on failure; where they can fail
 * for a reason worth telling, they take a caller's `char *err, size_t errlen` and write one
 * line naming the thing and the cause. Nothing here prints to stdout or exits, but when
 * memory runs out: then libcq writes one line to stderr and aborts, as Redis does, so that
 * no call fails for want of memory. What libcq writes to Redis, reads back or parses (times,
 * durations, JSON numbers) has a decimal point in any locale the program sets.
 *
 * Build: cc app.c $(pkg-config --cflags --libs cq). docs/EXTENDING.md has examples.
 */
#ifndef CQ_CQ_H
#define CQ_CQ_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The API version this header describes. A plugin records the version it was built against
 * (CQ_PLUGIN_DECLARE); a worker loads plugins built for any version from CQ_API_VERSION_MIN
 * to its own CQ_API_VERSION. New calls may be added within a version; none are changed or
 * removed. */
#define CQ_API_VERSION     1
#define CQ_API_VERSION_MIN 1

#if defined(__GNUC__)
#define CQ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CQ_PRINTF(a, b)
#endif

/* The version of the library this program runs with ("0.2.0"). */
const char *cq_version(void);

/* ---- functions: what a job may name ------------------------------------------------- */

typedef struct cq_registry cq_registry; /* a set of functions */
typedef struct cq_function cq_function; /* one function in it */
typedef struct cq_job cq_job;           /* one run of a function, as its handler sees it */

/* A handler runs one job on one of the worker's threads. It returns 0 when the job finished
 * (its result is what it gave cq_job_result or cq_job_result_json, or none; a 0 after
 * cq_job_fail finishes it too, and the worker's log says what failure went unrecorded), or
 * -1 when it failed (say why with cq_job_fail; a bare -1 is a permanent failure whose error
 * reads "FUNC failed (its handler gave no reason)", or, where cq_job_result_json refused the
 * result last given, "FUNC: its result was refused (cq_job_result_json): WHY").
 * udata is what was given to cq_function_add. */
typedef int (*cq_handler)(cq_job *job, void *udata);

/* Per-thread state of a function: thread_init runs on a worker thread the first time that
 * thread runs the function, and what it returns is cq_job_thread_state() for every later
 * job of that function on that thread; thread_free runs when the thread ends. thread_init
 * returns NULL (with err set) when it cannot: the job then fails transiently with err. */
typedef void *(*cq_thread_init)(void *udata, char *err, size_t errlen);
typedef void (*cq_thread_free)(void *state, void *udata);

/* Add a function named name (1-64 of A-Z a-z 0-9 _ . -) to reg. args declares its
 * arguments, space-separated, each NAME:TYPE (TYPE one of string, integer, number,
 * duration, json, any; a bare NAME is a string):
 *
 *   "DIRECTORY LINK"            two strings
 *   "SECONDS:duration"          one duration: a number of seconds, or "250ms", "5m", ...
 *   "PATH [ALGO]"               one required and one optional
 *   "FILE..."                   one or more; "[ARG:any...]" zero or more (last only)
 *
 * Producers check a job's arguments against this before it is enqueued, and the worker again
 * before it runs it. Returns the function, or NULL with cq_registry_error(reg) saying why (a
 * bad name or spec, or a name already taken: every name is served by one handler). */
cq_function *cq_function_add(cq_registry *reg, const char *name, const char *args, cq_handler fn,
                             void *udata);

/* Optional settings; each returns 0, or -1 for a value out of range. */
int cq_function_set_summary(cq_function *f, const char *summary); /* one line */
int cq_function_set_retries(cq_function *f, int retries);         /* default 0; 0-1000 */
int cq_function_set_timeout(cq_function *f, double seconds);      /* default 0 = none */
int cq_function_set_thread_hooks(cq_function *f, cq_thread_init init, cq_thread_free fini);
/* Where the function comes from, as the catalog shows it (cenqueue --list-functions) and
 * cq_registry_print: "program" for one a program adds to cq_worker_registry or
 * cq_client_registry itself (the default), "builtin" for cq's own (noop, sleep, cworker's
 * download_link), "plugin PATH" and "command PROGRAM" for those cq_worker_load and
 * cq_worker_add_command add. A program may name itself ("program thumbs 2.1"): one line
 * of 1-256 bytes of UTF-8 without control characters; -1 otherwise. */
int cq_function_set_source(cq_function *f, const char *source);

/* Print reg's functions, one a line: the arguments as declared, with their types ("sleep
 * SECONDS:duration"), then in one column the summary, retries, timeout, where it came from
 * (but "builtin"); a signature longer than 30 bytes alone on its line, the rest on the next. */
void cq_registry_print(const cq_registry *reg, FILE *f);

/* The last error of a cq_function_add on reg (a static string while none happened); the
 * cq_function_set_* calls say theirs by their -1 alone. */
const char *cq_registry_error(const cq_registry *reg);

/* ---- inside a handler --------------------------------------------------------------- */

enum cq_arg_type {
    CQ_ARG_STRING,
    CQ_ARG_INTEGER,
    CQ_ARG_NUMBER,
    CQ_ARG_DURATION,
    CQ_ARG_JSON,
    CQ_ARG_ANY
};

const char *cq_job_id(const cq_job *job);
const char *cq_job_func(const cq_job *job);
const char *cq_job_queue(const cq_job *job);
int cq_job_attempt(const cq_job *job); /* 1 on the first attempt */
/* Unix time (seconds) by which this attempt must end, or 0 when it has no time limit. */
double cq_job_deadline(const cq_job *job);
/* Non-zero once the worker wants the job to give up (cqctl cancel, a second signal, a drain
 * that reached --shutdown-timeout, or the job's deadline passed): return soon, with
 * cq_job_fail(job, CQ_TRANSIENT, ...). Its text is the job's error as given: to name a
 * timeout as one, compare the time with cq_job_deadline, as the built-in sleep does ("sleep:
 * job timed out after 1s"). Any thread may call it while the job runs or is deferred. */
int cq_job_stopping(const cq_job *job);

/* Arguments, by index from 0. Each returns 0 with *out set, or -1 when the argument is
 * missing or not of that type (a string is converted where it reads as one: "42" is an
 * integer, "1.5" a number, "250ms" a duration). JSON numbers are doubles: an integer is one
 * below 9e15 in magnitude, where every whole number is exact; pass larger ones as strings. */
int cq_job_nargs(const cq_job *job);
const char *cq_job_arg_string(const cq_job *job, int i); /* NULL unless a JSON string */
int cq_job_arg_integer(const cq_job *job, int i, long long *out);
int cq_job_arg_number(const cq_job *job, int i, double *out);
int cq_job_arg_duration(const cq_job *job, int i, double *out); /* seconds */
/* The argument as JSON text (any type), valid until the handler returns; NULL if missing. */
const char *cq_job_arg_json(cq_job *job, int i);

/* What thread_init returned for this function on this thread (NULL without hooks). */
void *cq_job_thread_state(const cq_job *job);

/* The directory under which the worker's functions may read and write files (cworker
 * --download-root), as an absolute path. */
const char *cq_job_root(const cq_job *job);

enum cq_log_level { CQ_LOG_ERROR = 0, CQ_LOG_WARN = 1, CQ_LOG_INFO = 2, CQ_LOG_DEBUG = 3 };

/* One line in the worker's log, prefixed with the function and job id. */
void cq_job_log(const cq_job *job, int level, const char *fmt, ...) CQ_PRINTF(3, 4);

/* The result of a job that finishes: one line of UTF-8 text (at most CQ_RESULT_MAX bytes;
 * longer is cut, at the start of a character; a byte that is not UTF-8 becomes '?'), or a
 * JSON value, stored compact with its numbers exact (at most CQ_RESULT_MAX bytes of JSON
 * text; -1 when it is not one valid JSON value, with nothing after it but white space, or
 * too long, or holds a \u0000, a string that is not UTF-8 or a number beyond a double's
 * range). The last call accepted wins: a refused one changes nothing. */
#define CQ_RESULT_MAX 65536
int cq_job_result(cq_job *job, const char *text);
int cq_job_result_json(cq_job *job, const char *json);

/* Say why the job failed and return -1, so that a handler can `return cq_job_fail(...)`.
 * A transient failure is retried (while the job has retries left) after the backoff, or
 * after retry_after seconds when that is > 0; a permanent one is not. CQ_HOST says this
 * host, not the job, is at fault (its disk is full or read-only, a permission is missing):
 * the job goes back to its queue without using an attempt, and a worker on which a
 * function fails so several times in a row stops taking that function's jobs for a while
 * and says why (docs/OPERATIONS.md). */
enum cq_failure { CQ_PERMANENT = 0, CQ_TRANSIENT = 1, CQ_HOST = 2 };
int cq_job_fail(cq_job *job, enum cq_failure kind, double retry_after, const char *fmt, ...)
    CQ_PRINTF(4, 5);

/* ---- deferred jobs ------------------------------------------------------------------ */

/* A handler whose work goes on elsewhere (an event loop or a thread of its own) need not hold
 * a worker thread meanwhile. It starts the work, then returns cq_job_defer(job): the thread
 * goes on to other jobs, while the job keeps its place among those the worker runs at once
 * (cworker -c), its deadline and cq_job_stopping. When the work is over, any thread calls
 * cq_job_resume(job, fn, arg), once: fn(job, arg) then runs on a worker thread as a handler
 * does, and returns 0, -1 or cq_job_defer(job) again (cq_job_thread_state is that thread's,
 * or NULL where its thread_init failed: fn runs all the same, so that it may free arg).
 * A deferral cannot be taken back: call cq_job_defer once the work has started, and where
 * it cannot start, return cq_job_fail instead. The work may start before the handler has
 * returned, and cq_job_resume may come before it has. In between, the work may read the job
 * (cq_job_id, cq_job_arg_string and the other cq_job_arg_ readers but cq_job_arg_json,
 * cq_job_root, cq_job_deadline, cq_job_stopping, cq_job_log) but report nothing; after
 * cq_job_resume, only fn touches the job. A job deferred and never resumed holds up its
 * worker's stop, which leaves it behind after a grace of seconds (back in its queue). */
#define CQ_DEFERRED 1
typedef int (*cq_resume_fn)(cq_job *job, void *arg);
int cq_job_defer(cq_job *job); /* returns CQ_DEFERRED */
void cq_job_resume(cq_job *job, cq_resume_fn fn, void *arg);

/* ---- plugins ------------------------------------------------------------------------ */

/* A plugin is a shared object with these two symbols; CQ_PLUGIN_DECLARE defines the first.
 *
 *   #include <cq/cq.h>
 *   CQ_PLUGIN_DECLARE;
 *   int cq_plugin_init(cq_registry *reg) { ... cq_function_add(reg, ...) ...; return 0; }
 *
 * cq_plugin_init returns 0, or -1 to refuse to load (cq_registry_error(reg), or the
 * plugin's own cq_plugin_fail text, says why). A plugin is never unloaded: threads it starts
 * (examples/later.c's timer) may run until the process exits. */
#if defined(__GNUC__)
#define CQ_EXPORT __attribute__((visibility("default")))
#else
#define CQ_EXPORT
#endif
/* Both are exported with C linkage whatever the plugin's compiler, language (C++) or
 * -fvisibility say. */
CQ_EXPORT extern const int cq_plugin_api_version;
CQ_EXPORT int cq_plugin_init(cq_registry *reg);
#ifdef __cplusplus /* with the declaration's C linkage, which keeps the attribute */
#define CQ_PLUGIN_DECLARE extern "C" CQ_EXPORT const int cq_plugin_api_version = CQ_API_VERSION
#else
#define CQ_PLUGIN_DECLARE CQ_EXPORT const int cq_plugin_api_version = CQ_API_VERSION
#endif
void cq_plugin_fail(cq_registry *reg, const char *fmt, ...) CQ_PRINTF(2, 3);

/* ---- an embedded worker ------------------------------------------------------------- */

typedef struct cq_worker cq_worker;

/* A worker with the built-in functions (noop, sleep) registered and every setting at its
 * default. */
cq_worker *cq_worker_new(void);
/* After cq_worker_run, a worker whose handlers ignored the stop and still run is not freed
 * (they may be using its functions); the process is expected to exit. */
void cq_worker_free(cq_worker *w);

/* Settings by name, with the values cworker's options take (cworker --help):
 *   url, prefix, concurrency, burst (0/1), max-jobs, max-recoveries (default 3),
 *   shutdown-timeout, retry-base, result-ttl, failure-ttl, log-level (error, warn, info,
 *   debug), log-format (text, json),
 *   summary-interval (a duration; 0 = no summary lines), lease (a duration, 3s to 1h),
 *   root (the directory cq_job_root names: one that exists, unlike cworker's
 *   --download-root, which is made if missing; default the working directory when
 *   cq_worker_run starts). A url or prefix of "" is none, as for cq_client_new:
 *   $CQ_REDIS_URL or $CQ_PREFIX, else the default.
 * Returns 0, or -1 with err naming the setting and what is wrong. */
int cq_worker_set(cq_worker *w, const char *name, const char *value, char *err, size_t errlen);

/* Serve queue (in priority order of the calls; "default" when none is added). */
int cq_worker_add_queue(cq_worker *w, const char *queue, char *err, size_t errlen);

/* The worker's functions, to add your own to. */
cq_registry *cq_worker_registry(cq_worker *w);

/* Load a plugin (see above). Returns 0, or -1 with err: a missing file or symbol, an API
 * version this worker does not support, a duplicate name, or the plugin's own refusal. */
int cq_worker_load(cq_worker *w, const char *path, char *err, size_t errlen);

/* Serve the function name by running program (an absolute path, or a bare name found in
 * $PATH now; a relative path is refused) with the job's arguments as its argv, never through
 * a shell: see docs/EXTENDING.md for its environment and what its exit status does. The spec
 * "NAME=PROGRAM" or "NAME:ARGS=PROGRAM" (ARGS as for cq_function_add, quoted; default
 * "[ARG:any...]"). The function has 3 retries, where cq_function_add's have 0. Returns 0, or
 * -1 with err. */
int cq_worker_add_command(cq_worker *w, const char *spec, char *err, size_t errlen);
/* What cq_worker_add_command can tell from spec alone (its shape, the name, ARGS, a
 * relative program path), without looking for the program: for a program's option parsing,
 * where a malformed spec is a usage error. Returns 0, or -1 with err worded as
 * cq_worker_add_command words it. */
int cq_command_check(const char *spec, char *err, size_t errlen);
/* cq_command_check, and a name one of w's functions already has (a built-in, a plugin's, a
 * command added before): what cq_worker_add_command would refuse now, but for a program it
 * cannot find. For a program whose options name its commands, where both are usage errors.
 * Returns 0, or -1 with err worded as cq_worker_add_command words it. */
int cq_worker_check_command(cq_worker *w, const char *spec, char *err, size_t errlen);

/* Run until the queues are drained (burst), max-jobs are done, or cq_worker_stop. Returns
 * 0 for a clean stop, 1 when the worker could not start or could not deregister. A Redis
 * that answers LOADING at the start (it reads its data back after a restart) is waited for
 * until the load is done, or until cq_worker_stop (then 0); one that cannot be reached, or
 * refuses the worker otherwise, ends the start at once (1). It logs to
 * stderr, each line named after the program (its argv[0]'s last part), as cworker's are; a
 * line that names a setting names it as cq_worker_set does ("exiting (the burst setting)"),
 * where cworker's name its options ("exiting (--burst)"). */
int cq_worker_run(cq_worker *w);

/* Ask a running worker to stop: the first call drains (running jobs get shutdown-timeout to
 * finish), a second puts everything back at once (handlers still running get the stop and
 * up to 6 s to end first; see docs/DESIGN.md). Safe to call from a signal handler or from
 * another thread; a stop asked before cq_worker_run stops that run as soon as it has
 * started. cq_worker_run may be called again on the same worker afterwards. */
void cq_worker_stop(cq_worker *w);

/* ---- clients: enqueue, read, wait --------------------------------------------------- */

typedef struct cq_client cq_client;

/* Connect to url: redis://[[user]:pass@]host[:port][/db],
 * unix://[[user]:pass@]/path.sock[?db=N], rediss://... (redis:// over TLS: the CAs to trust,
 * else the system's, and a client certificate and its key where the server asks for one,
 * are PEM files named by $CQ_TLS_CA, $CQ_TLS_CERT and $CQ_TLS_KEY, which a TLS error's
 * advice names) or redis+sentinel://[[user]:pass@]host[:port][,host[:port]...]/MASTER[/db]; NULL
 * (or "") means $CQ_REDIS_URL, else redis://127.0.0.1:6379. prefix NULL (or "") means
 * $CQ_PREFIX, else "cq:". Returns the client, or NULL with err. The program need not ignore SIGPIPE: a
 * connection Redis closed is an error of the call that wrote to it, not the signal. */
cq_client *cq_client_new(const char *url, const char *prefix, char *err, size_t errlen);
/* Check a URL or a prefix as cq_client_new and cq_worker_set take them (NULL or "": the
 * default, as above), without connecting: for a program's settings, before it starts work. Returns
 * 0, or -1 with err saying what is wrong, naming $CQ_REDIS_URL or $CQ_PREFIX when the
 * value came from there. */
int cq_url_check(const char *url, char *err, size_t errlen);
int cq_prefix_check(const char *prefix, char *err, size_t errlen);
/* A client holds its connections (one for commands, and from its first wait a second one,
 * kept until cq_client_free): use it from one thread at a time, one client per thread. */
void cq_client_free(cq_client *c);

/* A job to enqueue: a function, its arguments as JSON text of an array ("[\"images\",
 * \"https://...\"]"; NULL for none; nothing but white space after it), and options. Its
 * numbers reach the worker as the doubles they parse to, to the bit; NULL with err for a func
 * that is not a function name (1-64 of A-Z a-z 0-9 _ . -, as cq_function_add takes), or args
 * that hold a NUL (\u0000) or a number beyond a double's range (1e400), or are not JSON as
 * RFC 8259 writes it, as a json argument's text must be: a number with a leading zero ([0755]
 * would arrive as [755]), '1.', a raw control character in a string, a form feed or any white
 * space but space, tab, CR and LF. */
typedef struct cq_jobspec cq_jobspec;
cq_jobspec *cq_jobspec_new(const char *func, const char *args_json, char *err, size_t errlen);
/* The same with string arguments, as from a command line: the first check turns each into
 * its declared type ("42" for an integer becomes 42; for json, the text is parsed, and the
 * check refuses one holding a \u0000 or a number beyond a double). NULL when func is not a
 * function name (1-64 of A-Z a-z 0-9 _ . -, as cq_function_add takes), as cq_jobspec_new
 * refuses one, saying so in err. */
cq_jobspec *cq_jobspec_new_argv(const char *func, const char *const *argv, int argc);
void cq_jobspec_free(cq_jobspec *s);
/* Default: a new UUID. An id whose job has not ended (queued, scheduled, started,
 * retrying), or was canceled while its record still waits in a queue, or that two jobs of
 * one call share, fails cq_enqueue, and nothing of that call is enqueued; one that ended
 * runs again (a failed one leaves the failed set, as a requeue takes it out). */
int cq_jobspec_set_id(cq_jobspec *s, const char *id);
int cq_jobspec_set_queue(cq_jobspec *s, const char *queue); /* default "default" */
int cq_jobspec_set_retries(cq_jobspec *s, int retries);     /* default: the function's */
int cq_jobspec_set_timeout(cq_jobspec *s, double seconds);  /* default: the function's */
int cq_jobspec_set_at(cq_jobspec *s, double unix_time);     /* run no sooner than */
/* Times (Unix, in seconds) and timeouts in a job record are below this (the year 5138), so
 * that they print as whole microseconds; the setters above refuse more (-1). */
#define CQ_TIME_MAX 1e11
/* What cq_enqueue refuses of a job whatever the check (cq_client_check does this too): a
 * record over 1 MiB, which no worker reads, or a string argument that is not UTF-8, which a
 * reader in another language could not decode. 0, or -1 with err (the function, the cause
 * and the fix), for a caller that sends jobs unchecked (CQ_NO_CHECK) to name the one at fault
 * before any goes. */
int cq_jobspec_check(const cq_jobspec *s, char *err, size_t errlen);
/* The job's id (after cq_enqueue, the UUID it was given). */
const char *cq_jobspec_id(const cq_jobspec *s);

/* Print every function the catalog and the client know: the arguments as declared, with their
 * types, summary, where it came from, which live workers serve it and when it was last
 * served. 0, or -1 with err. */
int cq_client_print_functions(cq_client *c, FILE *f, char *err, size_t errlen);

/* How many live workers take jobs from queue now (0: jobs enqueued there wait until one
 * does; a typo in a queue name shows here), or -1 with err. */
int cq_client_queue_workers(cq_client *c, const char *queue, char *err, size_t errlen);
/* 1 when queue is paused (cqctl pause: workers take nothing from it, and jobs enqueued there
 * wait, until cqctl resume), 0 when not, or -1 with err. */
int cq_client_queue_paused(cq_client *c, const char *queue, char *err, size_t errlen);

/* 1 when name is a valid queue name or job id (1-128 of A-Z a-z 0-9 _ . @ -), else 0. */
int cq_valid_name(const char *name);

/* How to check a job before it is enqueued. */
enum cq_check {
    CQ_CHECK = 0,   /* against the function catalog in Redis and the built-ins */
    CQ_NO_CHECK = 1 /* send it as it is (--no-check) */
};

/* Check a job against the catalog (string arguments of other declared types are converted:
 * "42" for an integer becomes 42): 0 when it may be enqueued (*warning, when not NULL,
 * receives a line when no live worker serves the function right now, else "": never for
 * one of cq_client_registry's, below), -1 with
 * err when it may not (an unknown function, naming those that exist; a wrong number or type
 * of arguments, with the usage line; a record cq_enqueue would refuse: cq_jobspec_check). */
int cq_client_check(cq_client *c, cq_jobspec *s, char *warning, size_t warnlen, char *err,
                    size_t errlen);

/* Enqueue n jobs (checked as check says; in transactions of 1,000, pipelined). A job whose
 * record would be over 1 MiB, which no worker reads, or whose arguments hold a string that is
 * not UTF-8, which a reader in another language could not decode, is refused whatever check
 * says. Returns
 * the number enqueued (n on success), or -1 with err when a job was refused (nothing was sent)
 * or Redis failed (then some transactions may have gone in: cq_jobspec_enqueued says which
 * jobs did). */
long cq_enqueue(cq_client *c, cq_jobspec *const *jobs, size_t n, enum cq_check check, char *err,
                size_t errlen);
/* 1 when the job is in Redis (after cq_enqueue). */
int cq_jobspec_enqueued(const cq_jobspec *s);

/* The functions this client knows without the catalog: the built-ins. A program that
 * enqueues its own application's functions before any worker has published them adds
 * their declarations here (cq_function_add, whose handler may be NULL here: a client runs
 * nothing). cq_client_check takes them as served, as it does the built-ins: it gives no
 * warning that no live worker serves one. */
cq_registry *cq_client_registry(cq_client *c);

/* A job's status, as the status hash has it. */
typedef struct cq_status cq_status;
enum cq_state {
    CQ_UNKNOWN = 0, /* no such job (never enqueued, or its status expired) */
    CQ_QUEUED,
    CQ_SCHEDULED,
    CQ_STARTED,
    CQ_RETRYING,
    CQ_FINISHED,
    CQ_FAILED,
    CQ_CANCELED /* stopped by cqctl cancel */
};
/* A job has ended when it is finished, failed or canceled: its status changes no more
 * (unless someone requeues it). */
/* Read id's status: 0 with *out (free with cq_status_free), or -1 with err (Redis failed). */
int cq_status_get(cq_client *c, const char *id, cq_status **out, char *err, size_t errlen);
/* The same for n ids in one round trip: out[i] for ids[i]. */
int cq_status_get_many(cq_client *c, const char *const *ids, size_t n, cq_status **out, char *err,
                       size_t errlen);
/* Wait until every one of the n jobs ids has ended, or timeout seconds pass (0 = forever;
 * below 0 or NaN is refused). Where Redis stops answering, connecting and subscribing give
 * up when the time is up (1 s at least); a read of statuses may take its 5 s, and leaving
 * subscribe mode half a second more.
 * Returns 0 with out[i] (free each with cq_status_free) the last status read of ids[i]: ended
 * (see above) or, after a timeout, not yet (read again when the time is up, so that it says
 * where the job is then, unless that read fails); or -1 with err, and no status to free, for an
 * invalid id, an error reply (e.g. an ACL user without the channels: NOPERM), or Redis
 * unreachable for 30 s in a row or when the timeout passes (a Redis restarted that reads its
 * data back, answering LOADING, is waited for to the timeout, however long the load).
 *
 * No polling: the client opens a second connection the first time it waits and SUBSCRIBEs
 * there to each job's channel (docs/PROTOCOL.md, "Waiting for a job"), 1,000 channels a
 * command, then reads the statuses of those jobs in one pipelined round trip: a job that
 * ended before the call is seen at once, one that ends later as its worker publishes it.
 * A lost connection is opened again, subscribed again and the statuses read again; the
 * statuses still awaited are also read every 30 s, for jobs ended by workers older than the
 * channel. The waiting connection leaves subscribe mode before this returns. */
int cq_wait_many(cq_client *c, const char *const *ids, size_t n, double timeout, cq_status **out,
                 char *err, size_t errlen);
/* The same, calling fn(i, out[i], udata) once for each job as it is seen ended, in the order
 * they end (first those that had ended already), so that a program can report progress. fn
 * may not call the client; out[i] stays the caller's as above. */
typedef void (*cq_ended_fn)(size_t i, const cq_status *st, void *udata);
int cq_wait_each(cq_client *c, const char *const *ids, size_t n, double timeout, cq_status **out,
                 cq_ended_fn fn, void *udata, char *err, size_t errlen);
/* cq_wait_each with a callback that can stop the wait, and flags. fn(i, out[i], udata) is
 * called as cq_wait_each calls it, and returns 0 to go on waiting or anything else to stop:
 * fn is called no more, the waiting connection leaves subscribe mode, and cq_wait_each2
 * returns CQ_WAIT_STOPPED with out[i] the last status read of each job (NULL for one not read
 * yet; free the others), e.g. for a program whose output has nowhere to go any more (a
 * reader that left). flags: 0, or CQ_WAIT_UNKNOWN_ENDS: a job with no status (CQ_UNKNOWN: no
 * hash, or a status cq does not write) when its status is first read, which is after its
 * channel is subscribed (and each read on a new connection, after the waiting one was lost,
 * counts as a first read), is not waited for: fn is called for it, with that status, as for
 * one that ended (a job that ended and whose hash expired before it was read is seen ended,
 * where its message came first; one that is enqueued after that read is not waited for).
 * Without it, such a job is waited for, as cq_wait_each does (it may be enqueued later).
 * Returns 0, CQ_WAIT_STOPPED or -1 as above. */
#define CQ_WAIT_UNKNOWN_ENDS 1u
#define CQ_WAIT_STOPPED      1
typedef int (*cq_seen_fn)(size_t i, const cq_status *st, void *udata);
int cq_wait_each2(cq_client *c, const char *const *ids, size_t n, double timeout, unsigned flags,
                  cq_status **out, cq_seen_fn fn, void *udata, char *err, size_t errlen);
/* cq_wait_many for one job. */
int cq_wait(cq_client *c, const char *id, double timeout, cq_status **out, char *err,
            size_t errlen);
/* For jobs this client is about to enqueue and then wait for: gives each job its id now
 * (cq_jobspec_id), and SUBSCRIBEs the waiting connection to each one's channel, returning once
 * Redis has confirmed it. The next wait of c (cq_wait_*) then sees the end of every such job,
 * also one that ended before that wait began and whose worker dropped its status hash at
 * once (cworker --result-ttl 0 or --failure-ttl 0), which would otherwise leave nothing to
 * see: the client keeps the ends published meanwhile (as many as jobs end) and hands them to
 * that wait only. Call it before each cq_enqueue of those jobs, on the client that will wait
 * (a connection lost in between loses what came after: the wait then reads the statuses, as
 * without this call). 0, or -1 with err (e.g. an ACL user without the channels: NOPERM), where
 * nothing should be enqueued yet. */
int cq_wait_prepare(cq_client *c, cq_jobspec *const *jobs, size_t n, char *err, size_t errlen);
enum cq_state cq_status_state(const cq_status *st);
const char *cq_status_state_name(enum cq_state state); /* "finished", ... */
/* 1 when state is finished, failed or canceled, else 0. */
int cq_state_ended(enum cq_state state);
/* A field of the status hash ("result", "error", "attempts", ...), or NULL (docs/PROTOCOL.md
 * lists them and when each is written). */
const char *cq_status_field(const cq_status *st, const char *name);
/* 1 when the result is JSON (cq_job_result_json), 0 when it is text. */
int cq_status_result_is_json(const cq_status *st);
void cq_status_free(cq_status *st);

#ifdef __cplusplus
}
#endif

#endif
