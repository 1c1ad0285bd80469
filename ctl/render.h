/* render.h - what cqctl's reads look like to programs: the JSON documents of info, workers,
 * jobs, job and metrics --json, and the Prometheus text of metrics. cqctl's commands print
 * them and `cqctl serve` sends them over HTTP (serve.c), so that the command line, the web
 * page's API and /metrics say the same thing in the same shape.
 *
 * Every render_* that returns a cJSON gives the caller a new tree to cJSON_Delete. Running
 * out of memory aborts (xcheck), as everywhere in cq.
 */
#ifndef CQ_RENDER_H
#define CQ_RENDER_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "admin.h"

/* Members of a JSON object: a string (NULL: null), a number, a boolean, a time (null when
 * not known, <= 0), text that holds JSON as its value (a string, whole, when it is not one
 * JSON value: it does not parse, or has more after its value). */
void render_str(cJSON *o, const char *name, const char *v);
void render_num(cJSON *o, const char *name, double v);
void render_bool(cJSON *o, const char *name, int v);
void render_time(cJSON *o, const char *name, double t);
void render_raw(cJSON *o, const char *name, const char *text);
cJSON *render_array(cJSON *o, const char *name);
cJSON *render_object(void);

/* info --json: {server, prefix, time, queues: [...], scheduled, failed, dead, workers: [...],
 * warning}. The server is where a.where says: host and port or socket, never a password. */
cJSON *render_info(const struct admin *a, const struct admin_info *in);
/* The workers array of info. */
cJSON *render_workers(const struct admin_info *in);

/* The list names of jobs --json, by enum admin_list: queue, scheduled, failed, dead,
 * running. */
extern const char *const render_list_names[ADMIN_LISTS];
/* jobs --json: {list, queue (a queue only), total, offset, limit, items: [...]}. */
cJSON *render_page(enum admin_list which, const char *queue, long limit,
                   const struct admin_page *p);

/* job --json: the status hash's fields (times and counts as numbers, result_json as JSON),
 * args, record, record_from, duration, ttl, cancel_requested. */
cJSON *render_job(const char *id, const struct admin_job *j);
/* A time field of the status hash, 0 when it has none. */
double render_job_time(const struct admin_job *j, const char *name);
/* The run time: started -> ended, or so far for a running job; < 0 when unknown. */
double render_job_duration(const struct admin_job *j, double now);
/* The args of the job's record as compact JSON (malloc'ed; the caller frees), or NULL. */
char *render_job_args(const struct admin_job *j);
/* 1 when the hash field is a time, or a count, as render_job shows it. */
int render_is_time_field(const char *name);
int render_is_count_field(const char *name);

/* metrics --json: info's document and the counters and run-time histograms. */
cJSON *render_metrics(const struct admin *a, const struct admin_metrics *m);
/* metrics: the Prometheus text exposition format 0.0.4, written to f (the caller checks
 * ferror). */
void render_metrics_text(FILE *f, const struct admin_metrics *m);

#endif
