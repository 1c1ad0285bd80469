/* registry.h - the table of functions a job may name.
 *
 * One table (registry.c) is both what cworker dispatches through and what cenqueue and
 * cproducer check a job against before it is enqueued, so that a job naming an unknown
 * function or the wrong number of args is refused at the door.
 */
#ifndef CQ_REGISTRY_H
#define CQ_REGISTRY_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include "http.h"

/* What a handler gets, and what it reports back. */
struct job_ctx {
    /* in */
    struct http *http;             /* this thread's reusable HTTP handle */
    const char *download_root;     /* where download_link may write */
    struct http_limits limits;     /* HTTP limits; timeout already set from the job's */
    double timeout;                /* seconds this job may run (0 = no limit) */
    const int *stop;               /* non-zero (read it with __atomic_load_n) when the worker
                                      wants handlers to give up */
    /* out */
    char result[4352];             /* one line for the status key when it succeeds */
    char error[1024];              /* one line naming the thing and the cause when it fails */
    int transient;                 /* failure may succeed on a retry */
    double retry_after;            /* seconds the far side asked us to wait; 0 = backoff */
};

/* A handler returns 0 on success or -1 with ctx->error (and ctx->transient) set. args is a
 * JSON array whose length the registry has already checked. */
typedef int (*registry_fn)(struct job_ctx *ctx, const cJSON *args);

struct registry_entry {
    const char *name;
    int min_args, max_args;        /* max_args -1 = any number */
    registry_fn fn;
    int default_retries;
    double default_timeout;        /* seconds */
    const char *usage;             /* "download_link DIRECTORY LINK" */
    const char *summary;           /* one line */
};

/* The entry named name, or NULL. */
const struct registry_entry *registry_find(const char *name);

/* The whole table; *n receives its length. */
const struct registry_entry *registry_all(size_t *n);

/* 0 when func exists and takes nargs args; otherwise -1 with err explaining, listing the
 * known functions when the name is unknown. */
int registry_check(const char *func, int nargs, char *err, size_t errlen);

/* Print the table, one function a line (cworker --list-functions). */
void registry_print(void *stdio_file);

#endif
