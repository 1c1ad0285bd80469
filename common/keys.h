/* keys.h - the Redis key schema of cq, in one place.
 *
 * Every key cq reads or writes is built here and documented in docs/PROTOCOL.md; no other
 * file spells a key. With the default prefix "cq:":
 *
 *   cq:queues                       set    names of known queues
 *   cq:queue:<name>                 list   job records; producers LPUSH, workers take from the right
 *   cq:job:<id>                     hash   status of one job (status, func, queue, worker, times,
 *                                          attempts, result or error); finished/failed ones expire
 *   cq:workers                      set    ids of registered workers
 *   cq:worker:<wid>                 hash   host, pid, queues, started_at, counters
 *   cq:worker:<wid>:lease           string the worker's lease; expires when heartbeats stop
 *   cq:inflight:<wid>:<queue>       list   records a worker has taken from <queue> and not ended
 *   cq:scheduled                    zset   records due later (scheduled jobs and retries), score =
 *                                          due time in Unix seconds
 *   cq:failed                       zset   ids of jobs that failed for good, score = when
 *   cq:dead                         list   records too broken to carry a job id
 *   cq:stats                        hash   counters kept by workers (processed, failed, ...)
 *   cq:functions                    hash   function name -> its declaration (JSON), as the
 *                                          workers serving it published it (catalog.c)
 *   cq:functions:seen               hash   function name -> when a live worker last served it
 *   cq:paused                       set    queues no worker takes from (cqctl pause)
 *   cq:cancel                       set    ids of jobs asked to stop (cqctl cancel): a worker
 *                                          drops such a record when it takes it, and stops
 *                                          its handler when it runs it; status canceled
 *   cq:counts:<queue>               hash   minute (Unix seconds / 60) -> jobs ended then, kept
 *                                          an hour (cqctl info's throughput)
 *   cq:durations:<func>             hash   a histogram of run times, kept by workers:
 *                                          le_<bound> -> count, sum, count (cqctl metrics)
 *   cq:ended:<id>                   channel a job's end is PUBLISHed here ("finished",
 *                                          "failed" or "canceled"): a waiter SUBSCRIBEs first,
 *                                          then reads the status hash
 *
 * Names (queues, job ids, worker ids) are restricted to [A-Za-z0-9_.@-] so that a key can
 * always be split back into its parts and never needs quoting in redis-cli.
 */
#ifndef CQ_KEYS_H
#define CQ_KEYS_H

#include <stddef.h>

#define KEYS_PREFIX_MAX 64
#define KEYS_NAME_MAX   128
#define KEYS_KEY_MAX    384
/* What a queue name or a job id may be (keys_valid_name), for messages. */
#define KEYS_NAME_RULE "1-128 of A-Z a-z 0-9 _ . @ -"

struct keys {
    char prefix[KEYS_PREFIX_MAX];
};

/* Set the prefix ("cq:" when NULL or empty). Returns 0, or -1 with err set when the prefix
 * is too long or holds spaces or control bytes. */
int keys_init(struct keys *k, const char *prefix, char *err, size_t errlen);

/* The prefix to use: given when not NULL, else $CQ_PREFIX when set, else "cq:". */
const char *keys_default_prefix(const char *given);

/* keys_init with keys_default_prefix(given); an error from $CQ_PREFIX names the variable. */
int keys_init_default(struct keys *k, const char *given, char *err, size_t errlen);

/* 0 when name is a valid queue name or job id (keys_valid_name), else -1 with err:
 * "WHAT 'NAME': use 1-128 characters of A-Z a-z 0-9 _ . @ -" (what: "queue", "job id"). */
int keys_check_name(const char *what, const char *name, char *err, size_t errlen);

/* 1 when name is a valid queue, job or worker name, else 0. */
int keys_valid_name(const char *name);

/* Each builder writes the key into buf (KEYS_KEY_MAX bytes suffice for valid names) and
 * returns buf, or NULL when it would not fit. */
const char *keys_queues(const struct keys *k, char *buf, size_t len);
const char *keys_queue(const struct keys *k, const char *queue, char *buf, size_t len);
const char *keys_job(const struct keys *k, const char *id, char *buf, size_t len);
const char *keys_workers(const struct keys *k, char *buf, size_t len);
const char *keys_worker(const struct keys *k, const char *wid, char *buf, size_t len);
const char *keys_worker_lease(const struct keys *k, const char *wid, char *buf, size_t len);
const char *keys_inflight(const struct keys *k, const char *wid, const char *queue, char *buf,
                          size_t len);
const char *keys_scheduled(const struct keys *k, char *buf, size_t len);
const char *keys_failed(const struct keys *k, char *buf, size_t len);
const char *keys_dead(const struct keys *k, char *buf, size_t len);
const char *keys_stats(const struct keys *k, char *buf, size_t len);
const char *keys_functions(const struct keys *k, char *buf, size_t len);
const char *keys_functions_seen(const struct keys *k, char *buf, size_t len);
const char *keys_paused(const struct keys *k, char *buf, size_t len);
const char *keys_cancel(const struct keys *k, char *buf, size_t len);
const char *keys_counts(const struct keys *k, const char *queue, char *buf, size_t len);
const char *keys_durations(const struct keys *k, const char *func, char *buf, size_t len);
const char *keys_ended(const struct keys *k, const char *id, char *buf, size_t len);

/* Key kinds, for keys_template. */
enum keys_kind {
    KEYS_QUEUES,
    KEYS_QUEUE,
    KEYS_JOB,
    KEYS_WORKERS,
    KEYS_WORKER,
    KEYS_WORKER_LEASE,
    KEYS_INFLIGHT,
    KEYS_SCHEDULED,
    KEYS_FAILED,
    KEYS_DEAD,
    KEYS_STATS,
    KEYS_FUNCTIONS,
    KEYS_FUNCTIONS_SEEN,
    KEYS_PAUSED,
    KEYS_CANCEL,
    KEYS_COUNTS,
    KEYS_DURATIONS,
    KEYS_ENDED
};

/* The key of a kind as a format with "%s" where names go (any '%' of the prefix doubled),
 * e.g. "cq:inflight:%s:%s". Lua scripts get these and fill them with string.format, so that
 * the schema stays spelled in this one file. Returns buf, or NULL when it does not fit. */
const char *keys_template(const struct keys *k, enum keys_kind kind, char *buf, size_t len);

#endif
