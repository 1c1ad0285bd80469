/* queue.h - how a job moves through Redis: the protocol operations of cq.
 *
 * Each operation that moves a record does so atomically (a MULTI/EXEC block or a Lua script)
 * so that at every instant a record is in exactly one place: a queue, a worker's in-flight
 * list, the scheduled set, the failed set (as its job hash), the dead list, or done.
 * Key names come from keys.h; docs/PROTOCOL.md and docs/DESIGN.md describe the moves.
 *
 * Errors, one rule for every function here: it returns -1 and writes err when it failed, and
 * 0 or a count otherwise. What went wrong without stopping it (a queue skipped because its
 * key has another type) is written to warn, left empty when there was nothing to say.
 */
#ifndef CQ_QUEUE_H
#define CQ_QUEUE_H

#include <stddef.h>
#include "job.h"
#include "keys.h"
#include "rconn.h"

/* ---- producers ---------------------------------------------------------------------- */

/* Enqueue n jobs: each record is LPUSHed to its queue (or added to the scheduled set when
 * at > now), its status hash is set to queued (or scheduled), and the queue is added to the
 * known queues. A job with an empty id gets a new UUID, an empty queue gets "default", a zero
 * enqueued_at gets now. The jobs go in chunks of 1,000, each its own MULTI/EXEC (enqueued
 * whole or not at all), pipelined. An id given that names a job not ended (queue_check_ids)
 * is refused before anything is sent. Returns 0, or -1 with err set: then some chunks may
 * have been enqueued all the same, and job->enqueued says which jobs were. */
int queue_enqueue(struct rconn *r, const struct keys *k, struct job *const *jobs, size_t n,
                  double at, char *err, size_t errlen);
/* What queue_enqueue checks of the ids callers gave (the others are empty), for a caller
 * that enqueues one set of jobs in several calls (one a due time): an id whose job has not
 * ended or whose cancel is pending, or that comes twice, is refused. 0, or -1 with err. */
int queue_check_ids(struct rconn *r, const struct keys *k, struct job *const *jobs, size_t n,
                    char *err, size_t errlen);
/* What queue_enqueue refuses of one job's record, whatever the catalog says: over what a
 * worker reads (JOB_RECORD_MAX, less the room a retry takes), or a string that is not UTF-8.
 * 0, or -1 with err naming the function and the fix. */
int queue_check_record(const struct job *j, char *err, size_t errlen);
/* The same for each of jobs (queue_check_record). 0, or -1. */
int queue_check_records(struct job *const *jobs, size_t n, char *err, size_t errlen);

/* ---- workers ------------------------------------------------------------------------ */

struct queue_ttls {
    long result_ttl;  /* seconds a finished job's status is kept (default 500) */
    long failure_ttl; /* seconds a failed job's status is kept (default 1 year) */
};

/* A record a worker has taken: the exact bytes (needed to remove it from the in-flight list)
 * and the queue it came from. */
struct taken {
    char *record;
    size_t len;
    char queue[KEYS_NAME_MAX + 1];
};

/* Take up to max records, in the strict order of queues[], moving each atomically into this
 * worker's in-flight list for that queue (one Lua script). In two halves, so that a worker
 * sends it in one pipeline with queue_apply_append: append (no I/O), then read its one
 * reply. A paused queue (in the paused set) is not taken from, and is named in notes (may be
 * NULL) with the number of jobs asked to stop. queue_take_read returns how many were taken
 * (0..max) into out[], or -1 with err
 * set. Each queue whose key cannot be popped (a key of another type under its name) is
 * skipped and named in warn. */
int queue_take_append(struct rconn *r, const struct keys *k, const char *wid,
                      const char *const *queues, size_t nq, size_t max, char *err, size_t errlen);
struct queue_take_notes {
    unsigned long long paused; /* bit i: queues[i] is paused (cqctl pause; first 64 queues) */
    long cancel;               /* jobs asked to stop (the cancel set's size) */
};
int queue_take_read(struct rconn *r, size_t max, struct taken *out, struct queue_take_notes *notes,
                    char *warn, size_t warnlen, char *err, size_t errlen);

void queue_taken_free(struct taken *t);

enum queue_outcome_kind {
    QUEUE_STARTED,  /* mark the job started (status hash only; the record stays in flight) */
    QUEUE_FINISHED, /* done: status finished, record leaves the in-flight list */
    QUEUE_FAILED,   /* failed for good: status failed, id into the failed set */
    QUEUE_RETRY,    /* failed, will retry: new record into the scheduled set */
    QUEUE_DEAD,     /* unreadable record without an id: into the dead list */
    QUEUE_CANCELED  /* an operator asked it to stop (cqctl cancel): status canceled */
};

struct queue_outcome {
    enum queue_outcome_kind kind;
    const struct taken *taken; /* the in-flight record */
    const struct job *job;     /* decoded job (NULL for QUEUE_DEAD) */
    const char *text;          /* result (finished) or error (failed, retry, dead) */
    int json;                  /* finished: text is a JSON result (field result_json) */
    double at;                 /* when it ended */
    double started_at;         /* QUEUE_STARTED, or with_start: when it started */
    int with_start;            /* an end that also records the start (same batch) */
    double retry_at;           /* QUEUE_RETRY: when it is due again */
    int handback;              /* QUEUE_RETRY: handed back, not a failed attempt (counted
                                * as handed_back, not retried) */
    int give_back;             /* QUEUE_RETRY: the record goes back with this attempt not
                                * counted and one more hand-off (a host failure) */
};

/* What queue_apply_read flags in lost[i] (0: applied as sent). */
enum {
    QUEUE_LOST = 1,         /* dropped: the record was no longer in flight here */
    QUEUE_LOST_CANCELED = 2 /* an end applied as canceled instead: cqctl cancel ended the job
                             * (status canceled, id in the cancel set) after this worker took
                             * it, and published it then */
};

/* Apply outcomes in one Lua script (atomic as a batch). wid names the worker for status and
 * counters. An end takes effect only if its record is still in this worker's in-flight list
 * (else another worker recovered it, or the batch already ran and only its reply was lost):
 * such outcomes are dropped and flagged lost[i] = QUEUE_LOST (lost may be NULL). An end of a
 * job that cqctl cancel ended while this worker held it records that cancel's end (status
 * canceled, counted canceled, its id out of the cancel set, nothing published again), flagged
 * QUEUE_LOST_CANCELED where it was not a cancel itself; its start mark writes nothing. In two
 * halves:
 * append the script call (no I/O; *nreplies receives 1, 2 with ?replicas=N's WAIT behind it,
 * or 0 when n is 0), then read the replies; other commands may be appended between the two.
 * The read returns 0, or -1 with err set (nothing applied, or the reply was lost: applying
 * the batch again is safe); where the batch's reply came and the WAIT's was lost with the
 * connection, 0 with warn saying so (applied). A status
 * hash that could not be written (a key of another type under its name) is named in warn;
 * its record still moved. Before anything moves, the destinations the batch uses (failed
 * set, scheduled set, dead list) are checked: one of another type fails the whole batch
 * (-1, nothing applied), so that no record leaves the in-flight list for nowhere. */
int queue_apply_append(struct rconn *r, const struct keys *k, const char *wid,
                       const struct queue_outcome *o, size_t n, const struct queue_ttls *ttls,
                       int *nreplies, char *err, size_t errlen);
int queue_apply_read(struct rconn *r, int nreplies, unsigned char *lost, size_t n, char *warn,
                     size_t warnlen, char *err, size_t errlen);

/* Move every scheduled record due at or before now to the tail of its queue (at most limit
 * per call). Returns how many moved, or -1. A record whose queue key is not a list stays
 * scheduled, and warn names the queue. */
long queue_schedule_due(struct rconn *r, const struct keys *k, double now, long limit, char *warn,
                        size_t warnlen, char *err, size_t errlen);

/* Put back at the head of their queues the records in this worker's in-flight lists that it
 * does not hold (held[]: every record it has taken and whose end is not recorded, each
 * counted in its own queue's list only, by its queue field). A take
 * whose reply was lost leaves such records, and so does a Redis behind the one before (a
 * failover, a restart that lost its last writes) for jobs whose ends it lacks: the worker,
 * alive and renewing its lease, would otherwise keep them forever. Returns how many were put
 * back, or -1. */
long queue_reconcile(struct rconn *r, const struct keys *k, const char *wid,
                     const char *const *queues, size_t nq, const struct taken *const *held,
                     size_t nheld, char *err, size_t errlen);

/* ---- worker registry and recovery --------------------------------------------------- */

struct queue_worker_info {
    const char *wid;
    const char *host;
    long pid;
    const char *queues; /* comma-separated */
    int concurrency;
    int busy; /* jobs in hand now */
    double started_at;
    const char *functions; /* comma-separated names it serves ("" for none) */
    const char *clients;   /* comma-separated CLIENT IDs of its connections ("" unknown) */
};

/* Register (or refresh) the worker and renew its lease for lease_s seconds. Idempotent, so a
 * heartbeat is a call to this too. *added (when not NULL): 1 when the worker was not in the
 * registry before (its first call, or its lease lapsed and it was recovered as dead). */
int queue_register(struct rconn *r, const struct keys *k, const struct queue_worker_info *w,
                   long lease_s, int *added, char *err, size_t errlen);

/* Put back every in-flight record of every worker whose lease has expired at the head (right
 * end) of its queue, bump each such job's `recovered` count, and remove those workers from
 * the registry. With only_wid, do the same for that one worker whatever its lease, without
 * counting a recovery: this is how a draining worker returns what it will not run and
 * deregisters. Returns the number of records put back, or -1. A worker with a queue whose
 * key is not a list keeps that in-flight list and its registration, and warn names the
 * queue. */
long queue_recover(struct rconn *r, const struct keys *k, const char *only_wid, char *warn,
                   size_t warnlen, char *err, size_t errlen);

#endif
