/* jobwait.h - waiting for jobs from a command: a line on stdout as each ends, progress on a
 * terminal, every id on stdout once however the wait ends (cenqueue --wait, cqctl wait). */
#ifndef CQ_JOBWAIT_H
#define CQ_JOBWAIT_H

#include <stddef.h>

#include <cq/cq.h>

struct jobwait {
    const char *prog; /* the command, for its messages ("cenqueue") */
    char *const *ids; /* the jobs to wait for */
    size_t n;
    double timeout; /* seconds; 0 = no limit */
    int quiet;      /* nothing on stdout */
    int json;       /* a JSON object a line, instead of "ID STATE [TEXT]" */
    /* An id with no status when first read (after subscribing: CQ_WAIT_UNKNOWN_ENDS) is not
     * waited for: it would be for good. Ids the caller was given (cqctl wait: a typo, an
     * expired status): each is said on stderr, "PROG: job X: no status (...); not waited
     * for", with json also {"id":X,"state":"unknown"} on stdout. The caller's own ids,
     * enqueued just before (own_ids, cenqueue): each had a hash, which went with the job's end
     * (--result-ttl 0 or --failure-ttl 0 drop it at once) or was deleted or lost with Redis's
     * data: "ID unknown" on stdout, one line on stderr for them all, and not counted as
     * finished (exit 1): which of those it was, nothing says. */
    int own_ids;
};

/* Wait through cq_wait_each2 until every job of w has ended or w->timeout passes. On stdout,
 * one line for each job as it ends: "ID STATE RESULT-OR-ERROR" (a control byte in the text
 * shown as \n, \r or \xHH, ctl_escape), or with json {"id":...,"state":...,"result"|
 * "result_json"|"error":...}; after a timeout, the jobs still open as "ID STATE"
 * ({"id","state"}), after a Redis error as "ID" ({"id"}), so that every id is on stdout once.
 * On stderr: a "N/TOTAL jobs ended" line while stderr is a terminal, why the wait ended
 * early, and a count of the outcomes when there is more than one job. A line that cannot be
 * written (a reader that left, a full disk) stops the wait there: with jobs not ended, one
 * line on stderr, "PROG: writing the jobs' outcomes to stdout: REASON (stopped waiting with
 * N of TOTAL jobs not ended: ...)", which the caller's cli_stdout_flush does not repeat.
 * SIGINT or SIGTERM prints the open ids and ends the process (status 1). Returns the exit
 * status: 0 when every job finished, else 1. */
int jobwait_run(const struct jobwait *w, cq_client *c);

/* The caller's own jobs (it wrote each one's status hash as it enqueued it) that had no hash
 * when the wait read them, gone of them: one line on stderr, "PROG: N jobs had no status when
 * the wait read them: ...", with the causes (a worker's --result-ttl 0 or --failure-ttl 0,
 * a deletion, Redis's data lost) and the fix. Their outcomes are unknown: not finished. */
void jobwait_say_gone(const char *prog, size_t gone);

/* For a command that does more before the wait (cqctl wait reads stdin first): from
 * now on, SIGINT or SIGTERM prints every id of w, as jobwait_run prints those not ended, and
 * ends the process (status 1), so that none it was given is lost to an interrupt there. w
 * and its ids stay as they are until jobwait_run, which catches the signals for its own w and
 * lets them go as it returns, or until jobwait_release (the signals' default again). */
void jobwait_catch(const struct jobwait *w);
void jobwait_release(void);

#endif
