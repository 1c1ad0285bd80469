/* health.h - the functions a worker has stopped taking because this host, not the job, made
 * them fail (cq_job_fail with CQ_HOST: a full or read-only disk, a missing permission).
 *
 * One host failure is only a retry of the job elsewhere. HEALTH_STREAK of them in a row for
 * one function, with no success between, benches the function on this worker for a cooldown
 * (30 s, doubled each time it is benched again without a success between, up to 10 min):
 * its jobs are then handed back untouched for other workers, and the worker says why. After
 * the cooldown the next job is tried again: a disk that was cleaned up heals the worker
 * without a restart.
 *
 * Dispatcher only (no lock): the worker's dispatcher notes every outcome and asks before it
 * runs a job. Functions are known by their registry index.
 */
#ifndef CQ_HEALTH_H
#define CQ_HEALTH_H

#include <stddef.h>

#define HEALTH_STREAK       3
#define HEALTH_COOLDOWN_MIN 30000LL  /* ms */
#define HEALTH_COOLDOWN_MAX 600000LL /* ms */

struct health;

struct health *health_new(void);
void health_free(struct health *h);

/* A job of function index fi ended: host says whether it failed because of the host, why is
 * its error line. Returns the cooldown in ms when this benched the function (then
 * health_why says why), else 0. now is time_mono_ms(). */
long long health_note(struct health *h, int fi, int host, const char *why, long long now);

/* The ms left on fi's bench, or 0 when its jobs may run. */
long long health_benched(const struct health *h, int fi, long long now);

/* The error line of the failure that benched fi ("" when none). */
const char *health_why(const struct health *h, int fi);

#endif
