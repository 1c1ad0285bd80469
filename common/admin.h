/* admin.h - the Redis side of what an operator does to cq (cqctl): read queues, workers, jobs
 * and counters; requeue, cancel and delete jobs; empty, pause and resume queues.
 *
 * Internal to cq (cqctl links libcq.a); not part of the public API. Every function returns 0
 * (or a count) and -1 with err set, one line naming the thing and the cause. Structures
 * filled here are freed with their *_free function; a *_free of a zeroed structure is a
 * no-op. Keys come from keys.h, and each change is one Lua script so that no worker sees it
 * half done.
 */
#ifndef CQ_ADMIN_H
#define CQ_ADMIN_H

#include <stddef.h>

#include "keys.h"
#include "rconn.h"

struct admin {
    struct rconn r;
    struct keys k;
    char where[300]; /* the server, for display: host:port or the socket path, and /db */
};

/* Parse the URL and the prefix (NULL: the defaults of rconn_default_url and
 * keys_default_prefix); no I/O. -1 means the URL or the prefix cannot be used. */
/* What is said of an id without a status hash (printf, with the id). */
#define ADMIN_NO_STATUS_FMT                                                                      \
    "job %s: no status (never enqueued, or its status expired: after the worker's --result-ttl " \
    "when it finished, --failure-ttl when it failed)"

int admin_init(struct admin *a, const char *url, const char *prefix, char *err, size_t errlen);
int admin_connect(struct admin *a, char *err, size_t errlen);
void admin_close(struct admin *a);

/* ---- queues and workers ------------------------------------------------------------- */

struct admin_queue {
    char name[KEYS_NAME_MAX + 1];
    long long depth;       /* LLEN of the queue; -1 when its key is not a list */
    long long inflight;    /* records workers hold from it (a gone one's until recovered) */
    long long last_minute; /* jobs ended in this minute and the one before (counts:<queue>) */
    int paused;
};

struct admin_worker {
    char id[KEYS_NAME_MAX + 1];
    char *host, *queues, *functions; /* "" when the hash lacks them */
    long pid;
    long concurrency, busy;
    long long processed, failed;
    double started_at, heartbeat_at; /* 0 when unknown */
    int live;                        /* its lease key exists */
};

struct admin_info {
    double now; /* this host's clock when read */
    struct admin_queue *queues;
    size_t nqueues; /* the known queues and the paused ones, by name */
    struct admin_worker *workers;
    size_t nworkers;                   /* registered workers, by id */
    size_t live;                       /* ...of which with a lease */
    long long scheduled, failed, dead; /* -1 when the key has another type */
    char warn[512]; /* the first key met on the way that Redis refused (of another type, or
                       an ACL's refusal: key_error's line, as long as an err), or "" */
    size_t nwarn;   /* keys Redis refused, the first included (0 with warn "") */
};

int admin_info_read(struct admin *a, struct admin_info *out, char *err, size_t errlen);
void admin_info_free(struct admin_info *in);

#define ADMIN_MINUTES_MAX 60 /* workers keep an hour of counts:<queue> */

/* The jobs of each queue of in that ended in each of the last `minutes` minutes (1 to
 * ADMIN_MINUTES_MAX), the current one last: out[q * minutes + m] for in->queues[q], 0 for a
 * minute with none. One HMGET per queue, in one round trip. */
int admin_minutes_read(struct admin *a, const struct admin_info *in, int minutes, long long *out,
                       char *err, size_t errlen);

/* The stats hash's counters alone (what admin_metrics_read reads with much else): one HMGET,
 * cheap enough to sample every second. */
struct admin_counters {
    long long processed, failed, retried, recovered, handed_back;
};
int admin_counters_read(struct admin *a, struct admin_counters *out, char *err, size_t errlen);

/* ---- lists of jobs ------------------------------------------------------------------ */

enum admin_list {
    ADMIN_LIST_QUEUE,
    ADMIN_LIST_SCHEDULED,
    ADMIN_LIST_FAILED,
    ADMIN_LIST_DEAD,
    ADMIN_LIST_RUNNING /* the in-flight lists of live workers */
};
#define ADMIN_LISTS 5

struct admin_entry {
    char *record; /* the record as stored (NULL for the failed set, which holds ids) */
    size_t len;
    char *id, *func, *queue; /* from the record, or for failed from the status hash; or NULL */
    char *args;              /* the record's args as compact JSON, or NULL */
    char *error;             /* failed: the status hash's error, or NULL */
    char *worker;            /* running: the worker that holds it */
    double enqueued_at;      /* 0 when unknown */
    double score;            /* scheduled: when due; failed: when it failed; running: when it
                                started (0 when its status does not say) */
};

struct admin_page {
    long long total; /* entries in the whole list or set */
    long offset;
    struct admin_entry *items;
    size_t n;
};

/* One page of a list: a queue from its oldest record (the right end, taken next); the
 * scheduled set soonest first; the failed set and the dead list newest first; the running
 * jobs by worker id and queue, each worker's oldest first. Only the page is read (running:
 * and the lengths of the in-flight lists, one per live worker and queue it serves, so as many
 * as its jobs in hand at most). queue is used for ADMIN_LIST_QUEUE only. */
int admin_list(struct admin *a, enum admin_list which, const char *queue, long offset, long limit,
               struct admin_page *out, char *err, size_t errlen);
void admin_page_free(struct admin_page *p);

/* ---- one job ------------------------------------------------------------------------ */

struct admin_job {
    char **fields; /* the status hash: name, value, name, value, ... */
    size_t nfields;
    long long ttl;                        /* seconds until the hash expires; -1 none */
    int cancel_requested;                 /* its id is in the cancel set */
    char *record;                         /* the record, when found (see admin_job_read), or NULL */
    char record_from[KEYS_KEY_MAX + 32];  /* where it was found */
    char record_note[KEYS_KEY_MAX + 128]; /* why none was found, where that is not plain */
};

/* The status hash of job id and, where it can be found cheaply, its record: the hash's
 * record field (failed jobs); the scheduled set at the due time (scheduled, retrying); the
 * running worker's in-flight list (started); its queue (queued, canceled), of which only
 * the 5,000 records at each end are read (record_note says so when it was not among them). A
 * function or enqueue time the hash lacks (a record
 * pushed by hand) is taken from the record found. An unknown id is an error. */
int admin_job_read(struct admin *a, const char *id, struct admin_job *out, char *err,
                   size_t errlen);
/* The value of a field of the hash, or NULL. */
const char *admin_job_field(const struct admin_job *j, const char *name);
void admin_job_free(struct admin_job *j);

/* ---- operator actions --------------------------------------------------------------- */

/* Put a failed job back at the tail of its queue (the record's queue, else the hash's, else
 * "default"), its attempts at 0 and its hand-offs dropped; it leaves the failed set and is
 * queued again. A job that is not failed is refused. queue receives where it went. */
int admin_requeue(struct admin *a, const char *id, char *queue, size_t qlen, char *err,
                  size_t errlen);

/* Requeue every job of the failed set that failed before this call, or only those of queue
 * only_queue (NULL: all), page by page. each (may be NULL) is told of every job tried: err
 * NULL when it was requeued, else why not. *requeued and *refused count them; *dropped the
 * ids whose status had expired (after --failure-ttl), which leave the set (there is nothing
 * left to requeue: each is not told of them). Returns 0, or -1 when Redis failed. */
int admin_requeue_failed(struct admin *a, const char *only_queue,
                         void (*each)(void *ctx, const char *id, const char *queue,
                                      const char *err),
                         void *ctx, long *requeued, long *refused, long *dropped, char *err,
                         size_t errlen);

enum admin_cancel_outcome {
    ADMIN_CANCELED = 1, /* it had not started: status canceled now */
    ADMIN_CANCEL_ASKED, /* it is running: its worker stops it and records canceled */
    ADMIN_CANCEL_ORPHAN /* it was running on a worker that is gone (named in worker; the job's
                           queue in queue): the live worker whose recovery returns it to its
                           queue, or the one that takes it then, records it canceled without
                           running it */
};

/* What a cancel found. */
struct admin_cancel {
    char was[32];                   /* the status the job had */
    char worker[KEYS_NAME_MAX + 1]; /* ADMIN_CANCEL_ORPHAN: the gone worker */
    char queue[KEYS_NAME_MAX + 1];  /* ADMIN_CANCEL_ORPHAN: the job's queue ("" unknown) */
};

/* Cancel a job that has not ended: one that waits (queued, scheduled, retrying) is canceled
 * at once (status canceled, ended_at now, kept a year as a worker's default --failure-ttl;
 * its id goes into the cancel set, so that a worker that takes the record drops it; a
 * scheduled record is removed outright); for a started one the id goes into the cancel set,
 * which its worker watches, and whether that worker is gone is told: its lease expired (or a
 * live worker deleted it), or none of the connections it registered is open any more (its
 * process died; told by CLIENT LIST, which a user without +client|list cannot ask: the
 * worker is then taken for live). Finished, failed, canceled and unknown jobs are refused.
 * Returns an admin_cancel_outcome, or -1 (err set); -1 also when the cancel of a running job
 * was asked but Redis failed, or refused a command, as its worker was looked at: err says
 * both. */
int admin_cancel(struct admin *a, const char *id, struct admin_cancel *out, char *err,
                 size_t errlen);

/* Cancel the job when it has not ended, then delete its status hash and remove it from the
 * failed set. Returns 0 (was: the status it had, "" when only its failed-set entry was left)
 * or -1 (unknown id, or Redis failed). */
int admin_delete(struct admin *a, const char *id, char *was, size_t wlen, char *err, size_t errlen);

/* Remove every record waiting in the queue, 1,000 a script, and mark each job canceled.
 * Returns how many were removed, or -1 (then some batches may have been). */
long admin_empty(struct admin *a, const char *queue, char *err, size_t errlen);

/* Pause (pause = 1) or resume a queue: workers take nothing from a paused queue. Returns 1
 * when that changed something, 0 when the queue was already so, -1 on failure. */
int admin_pause(struct admin *a, const char *queue, int pause, char *err, size_t errlen);

/* Forget an empty queue that no worker serves: out of the known queues (cq:queues) and the
 * paused set, its throughput counts deleted, so that info, metrics and the dashboard stop
 * showing it (a typo'd name, a queue retired). A producer that enqueues to it makes it known
 * again. Returns 0 (*was_known, *was_paused set), or -1: it holds jobs, a worker serves it,
 * its key is not a list, or Redis failed. */
int admin_forget(struct admin *a, const char *queue, int *was_known, int *was_paused, char *err,
                 size_t errlen);

/* 1 when queue is among the known queues (a job was enqueued to it: cq:queues) or a live
 * worker serves it, 0 when neither (a typo, or none yet), -1 on failure. */
int admin_queue_known(struct admin *a, const char *queue, char *err, size_t errlen);

/* ---- metrics ------------------------------------------------------------------------ */

#define ADMIN_BUCKETS 15

/* The upper bounds of the run-time histogram, as the workers name its fields (le_<bound>),
 * the last "+Inf". */
extern const char *const admin_bucket_bounds[ADMIN_BUCKETS];

struct admin_histogram {
    char *func;
    long long buckets[ADMIN_BUCKETS]; /* cumulative, as stored */
    double sum;
    long long count;
};

struct admin_metrics {
    struct admin_info info;
    long long processed, failed, retried, recovered, handed_back; /* the stats hash */
    struct admin_histogram *hist;
    size_t nhist; /* the catalog's functions that have a durations hash, by name */
};

int admin_metrics_read(struct admin *a, struct admin_metrics *out, char *err, size_t errlen);
void admin_metrics_free(struct admin_metrics *m);

#endif
