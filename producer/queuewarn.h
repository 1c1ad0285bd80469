/* queuewarn.h - the producers' warnings about a queue their jobs would wait in for good. */
#ifndef CQ_PRODUCER_QUEUEWARN_H
#define CQ_PRODUCER_QUEUEWARN_H

#include <cq/cq.h>

/* To stderr, as "PROG: warning: ...": no live worker takes from queue (a typo such as
 * "defualt", or workers not started yet), or it is paused. Nothing when Redis cannot say. */
void queue_warn(const char *prog, cq_client *cl, const char *queue);

#endif
