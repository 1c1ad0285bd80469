/* job_cjson.h - the record of a job as cJSON prints it: job_encode as it was written before
 * it wrote records by hand (common/job.c). tests/test_job.c and fuzz/fuzz_job.c check that
 * job_encode still writes exactly these bytes, so that what goes to Redis did not change;
 * and, with job_differ, that job_decode's fast path decodes a record to what the full path
 * through cJSON does. */
#ifndef CQ_TEST_JOB_CJSON_H
#define CQ_TEST_JOB_CJSON_H

#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "job.h"
#include "util.h"

static char *job_encode_cjson(const struct job *j)
{
    cJSON *o = cJSON_CreateObject();
    char *s;

    if (o == NULL) abort();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "func", j->func);
    if (j->args != NULL)
        cJSON_AddItemReferenceToObject(o, "args", j->args);
    else
        cJSON_AddItemToObject(o, "args", cJSON_CreateArray());
    if (j->queue[0]) cJSON_AddStringToObject(o, "queue", j->queue);
    if (j->enqueued_at > 0) {
        char t[32];
        time_format(t, j->enqueued_at);
        cJSON_AddRawToObject(o, "enqueued_at", t);
    }
    if (j->retries >= 0) cJSON_AddNumberToObject(o, "retries", j->retries);
    if (j->attempts > 0) cJSON_AddNumberToObject(o, "attempts", j->attempts);
    if (j->recovered > 0) cJSON_AddNumberToObject(o, "recovered", j->recovered);
    if (j->handoffs > 0) cJSON_AddNumberToObject(o, "handoffs", j->handoffs);
    if (j->timeout > 0) cJSON_AddNumberToObject(o, "timeout", j->timeout);
    s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s == NULL) abort();
    return s;
}

/* Where two decoded jobs differ ("" when in nothing): every field, the times to the bit and
 * the args as job_json_print prints them (each number to the bit). */
static const char *job_differ(const struct job *a, const struct job *b)
{
    char *ta, *tb;
    int same;

    if (strcmp(a->id, b->id) != 0) return "id";
    if (strcmp(a->func, b->func) != 0) return "func";
    if (strcmp(a->queue, b->queue) != 0) return "queue";
    if (a->retries != b->retries || a->attempts != b->attempts || a->recovered != b->recovered ||
        a->handoffs != b->handoffs)
        return "counters";
    if (memcmp(&a->enqueued_at, &b->enqueued_at, sizeof a->enqueued_at) != 0) return "enqueued_at";
    if (memcmp(&a->timeout, &b->timeout, sizeof a->timeout) != 0) return "timeout";
    if ((a->args == NULL) != (b->args == NULL)) return "args";
    if (a->args == NULL) return "";
    ta = job_json_print(a->args);
    tb = job_json_print(b->args);
    same = strcmp(ta, tb) == 0;
    free(ta);
    free(tb);
    return same ? "" : "args";
}

#endif
