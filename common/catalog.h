/* catalog.h - the functions workers serve, published in Redis for producers.
 *
 *   cq:functions        hash  name -> {"args":"DIRECTORY LINK","usage":"...","summary":"...",
 *                                       "retries":3,"timeout":60,"source":"builtin"}
 *   cq:functions:seen   hash  name -> Unix time a live worker last said it serves it
 *   cq:worker:<wid>     hash  field "functions": the names this worker serves, comma-separated
 *
 * A worker publishes its declarations when it starts and renews "seen" with every heartbeat.
 * Whether a live worker serves a function now is read from the workers themselves (their
 * "functions" field and lease), so a worker that stopped cleanly counts at once; one
 * published but not served now had a worker once: producers may still enqueue it (a deploy
 * or a restart) with a warning. The catalog is never pruned by workers: an operator removes
 * a function for good with HDEL on both hashes.
 */
#ifndef CQ_CATALOG_H
#define CQ_CATALOG_H

#include <stdio.h>

#include "keys.h"
#include "rconn.h"
#include "registry.h"

/* Publish reg's declarations and mark them seen now. Returns 0, or -1 with err. (The names a
 * worker serves go into its hash with every heartbeat: queue_register, catalog_names.) */
int catalog_publish(struct rconn *r, const struct keys *k, const struct cq_registry *reg, char *err,
                    size_t errlen);

/* reg's function names, comma-separated, malloc'ed. */
char *catalog_names(const struct cq_registry *reg);

/* Mark reg's functions seen now (one HSET). Append only (pipelined with a heartbeat): the
 * caller reads one reply. Returns 0/-1 (nothing appended when reg is empty: *appended 0). */
int catalog_seen_append(struct rconn *r, const struct keys *k, const struct cq_registry *reg,
                        int *appended);

/* Look func up: 1 with its declaration added to into (when into does not have it yet) and
 * *seen set (0 = never), 0 when no worker ever published it, -1 with err (Redis failed or
 * the entry is unreadable). */
int catalog_get(struct rconn *r, const struct keys *k, const char *func, struct cq_registry *into,
                double *seen, char *err, size_t errlen);

/* How many live workers (lease present) serve func now, their ids comma-separated into
 * names (may be NULL); or -1 with err. */
int catalog_live(struct rconn *r, const struct keys *k, const char *func, char *names, size_t len,
                 char *err, size_t errlen);

/* How many live workers serve func and take from queue now (those that could run a job of
 * func enqueued there), with in *elsewhere how many serve it on other queues only (one walk
 * of the workers); or -1 with err. */
int catalog_live_on(struct rconn *r, const struct keys *k, const char *func, const char *queue,
                    int *elsewhere, char *err, size_t errlen);

/* How many live workers take from queue now, or -1 with err. */
int catalog_queue_live(struct rconn *r, const struct keys *k, const char *queue, char *err,
                       size_t errlen);

/* Print every function of the catalog and of builtins (not published yet), with the live
 * workers serving it and when it was last served (cenqueue --list-functions). */
int catalog_print(struct rconn *r, const struct keys *k, const struct cq_registry *builtins,
                  FILE *f, char *err, size_t errlen);

#endif
