/* client.c - an example libcq client: enqueue one job per argument, wait for each, print
 * its outcome. A C web backend enqueues and reads results the same way.
 *
 *   cq-example-client FUNC ARG...      e.g.  cq-example-client sha256 images/a.jpg images/b.jpg
 *
 * Redis from $CQ_REDIS_URL (default redis://127.0.0.1:6379); the jobs go to queue "default",
 * with a warning when no live worker takes from it. Waits up to 60 s a job, and prints one
 * line a job: "<id> <state> <result or error>" (not ended by then: "<id> queued ", ...).
 * Exit 0 when every job finished, 1 otherwise, 2 when a job is refused.
 * Build: cc client.c -o cq-example-client $(pkg-config --cflags --libs cq)
 */
#include <cq/cq.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f, const char *prog)
{
    fprintf(f, "usage: %s FUNC ARG...\n", prog);
}

int main(int argc, char **argv)
{
    char err[1024], warning[512];
    cq_jobspec **jobs;
    cq_client *c;
    int i, n = argc - 2, failed = 0, rc = 0;

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout, argv[0]);
        printf(
            "\nEnqueue one job FUNC(ARG) for each ARG to queue \"default\", checked against the\n"
            "functions workers publish; wait up to 60 s for each, and print one line a job:\n"
            "ID STATE RESULT-OR-ERROR. Redis from $CQ_REDIS_URL (default\n"
            "redis://127.0.0.1:6379), keys under $CQ_PREFIX (default cq:), TLS files from\n"
            "$CQ_TLS_CA, $CQ_TLS_CERT and $CQ_TLS_KEY.\n"
            "Exit status: 0 when every job finished; 1 when one did not (failed, canceled,\n"
            "not ended within 60 s) or Redis failed; 2 for a usage error or a job refused.\n");
        return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
    }
    if (argc < 3) {
        usage(stderr, argv[0]);
        return 2;
    }
    c = cq_client_new(NULL, NULL, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "%s: %s\n", argv[0], err);
        return 1;
    }
    jobs = calloc((size_t)n, sizeof *jobs);
    if (jobs == NULL) return 1;
    for (i = 0; i < n; i++) {
        const char *arg[1] = {argv[i + 2]};
        jobs[i] = cq_jobspec_new_argv(argv[1], arg, 1);
        if (jobs[i] == NULL) { /* not a function name: cq_jobspec_new says why, in one line */
            cq_jobspec_free(cq_jobspec_new(argv[1], NULL, err, sizeof err));
            fprintf(stderr, "%s: %s\n", argv[0], err);
            rc = 2;
            n = i;
            goto out;
        }
        /* Checked against the catalog the workers publish: an unknown function or a bad
         * argument is refused here, before anything is sent. */
        if (cq_client_check(c, jobs[i], warning, sizeof warning, err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s\n", argv[0], err);
            rc = 2;
            n = i + 1;
            goto out;
        }
        if (warning[0] && i == 0) fprintf(stderr, "%s: warning: %s\n", argv[0], warning);
    }
    /* The check above warns of a function no live worker serves, not of a queue: without
     * this, jobs sent to a queue no worker takes from would be waited for in silence. */
    if (cq_client_queue_workers(c, "default", err, sizeof err) == 0)
        fprintf(stderr,
                "%s: warning: no live worker takes from queue 'default': the jobs wait there "
                "until one does\n",
                argv[0]);
    if (cq_enqueue(c, jobs, (size_t)n, CQ_NO_CHECK, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], err);
        rc = 1;
        goto out;
    }
    for (i = 0; i < n; i++) {
        cq_status *st;
        const char *id = cq_jobspec_id(jobs[i]), *text;
        if (cq_wait(c, id, 60, &st, err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s\n", argv[0], err);
            rc = 1;
            goto out;
        }
        text = cq_status_state(st) == CQ_FINISHED
            ? cq_status_field(st, cq_status_result_is_json(st) ? "result_json" : "result")
            : cq_status_field(st, "error");
        printf("%s %s %s\n", id, cq_status_state_name(cq_status_state(st)), text ? text : "");
        failed += cq_status_state(st) != CQ_FINISHED;
        cq_status_free(st);
    }
    rc = failed ? 1 : 0;
out:
    for (i = 0; i < n; i++) cq_jobspec_free(jobs[i]);
    free(jobs);
    cq_client_free(c);
    return rc;
}
