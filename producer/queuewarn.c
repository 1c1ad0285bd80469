/* queuewarn.c - the producers' warnings about a queue their jobs would wait in for good. */
#include "queuewarn.h"

#include <stdio.h>

void queue_warn(const char *prog, cq_client *cl, const char *queue)
{
    char err[256];

    if (cq_client_queue_workers(cl, queue, err, sizeof err) == 0)
        fprintf(stderr,
                "%s: warning: no live worker takes from queue '%s': the jobs wait there until "
                "one does (cqctl workers lists what each serves)\n",
                prog, queue);
    if (cq_client_queue_paused(cl, queue, err, sizeof err) == 1)
        fprintf(stderr,
                "%s: warning: queue '%s' is paused: workers take nothing from it, and the jobs "
                "wait there until 'cqctl resume %s'\n",
                prog, queue, queue);
}
