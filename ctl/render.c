/* render.c - cqctl's reads as JSON and as Prometheus text, for its commands and for its web
 * server (see render.h). */
#include "render.h"

#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "util.h"

/* ---- members ---------------------------------------------------------------------- */

void render_str(cJSON *o, const char *name, const char *v)
{
    if (v == NULL)
        xcheck(cJSON_AddNullToObject(o, name), "JSON output");
    else
        xcheck(cJSON_AddStringToObject(o, name, v), "JSON output");
}

void render_num(cJSON *o, const char *name, double v)
{
    xcheck(cJSON_AddNumberToObject(o, name, v), "JSON output");
}

void render_bool(cJSON *o, const char *name, int v)
{
    xcheck(cJSON_AddBoolToObject(o, name, v), "JSON output");
}

void render_time(cJSON *o, const char *name, double t)
{
    if (t > 0)
        render_num(o, name, t);
    else
        render_str(o, name, NULL);
}

void render_raw(cJSON *o, const char *name, const char *text)
{
    /* To the text's end: cJSON_Parse stops at the value's, and what came after was dropped
     * without a word ('{"n":1} and more' was {"n":1}). */
    cJSON *v = text ? cJSON_ParseWithOpts(text, NULL, 1) : NULL;

    if (v != NULL)
        cJSON_AddItemToObject(o, name, v);
    else
        render_str(o, name, text);
}

cJSON *render_array(cJSON *o, const char *name)
{
    return xcheck(cJSON_AddArrayToObject(o, name), "JSON output");
}

cJSON *render_object(void)
{
    return xcheck(cJSON_CreateObject(), "JSON output");
}

/* ---- info and workers --------------------------------------------------------------- */

cJSON *render_workers(const struct admin_info *in)
{
    cJSON *arr = xcheck(cJSON_CreateArray(), "JSON output");
    size_t i;

    for (i = 0; i < in->nworkers; i++) {
        const struct admin_worker *w = &in->workers[i];
        cJSON *o = render_object();
        render_str(o, "id", w->id);
        render_str(o, "host", w->host);
        render_num(o, "pid", (double)w->pid);
        render_str(o, "queues", w->queues);
        render_num(o, "busy", (double)w->busy);
        render_num(o, "concurrency", (double)w->concurrency);
        render_num(o, "processed", (double)w->processed);
        render_num(o, "failed", (double)w->failed);
        render_time(o, "started_at", w->started_at);
        render_time(o, "heartbeat_at", w->heartbeat_at);
        if (w->heartbeat_at > 0)
            render_num(o, "heartbeat_age", in->now - w->heartbeat_at);
        else
            render_str(o, "heartbeat_age", NULL);
        render_bool(o, "lease", w->live);
        render_str(o, "functions", w->functions);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

cJSON *render_info(const struct admin *a, const struct admin_info *in)
{
    cJSON *o = render_object(), *qs;
    size_t i;

    render_str(o, "server", a->where);
    render_str(o, "prefix", a->k.prefix);
    render_num(o, "time", in->now);
    qs = render_array(o, "queues");
    for (i = 0; i < in->nqueues; i++) {
        const struct admin_queue *q = &in->queues[i];
        cJSON *e = render_object();
        render_str(e, "name", q->name);
        if (q->depth >= 0)
            render_num(e, "depth", (double)q->depth);
        else
            render_str(e, "depth", NULL);
        render_num(e, "inflight", (double)q->inflight);
        render_num(e, "last_minute", (double)q->last_minute);
        render_bool(e, "paused", q->paused);
        cJSON_AddItemToArray(qs, e);
    }
    render_num(o, "scheduled", (double)in->scheduled);
    render_num(o, "failed", (double)in->failed);
    render_num(o, "dead", (double)in->dead);
    cJSON_AddItemToObject(o, "workers", render_workers(in));
    render_str(o, "warning", in->warn[0] ? in->warn : NULL);
    return o;
}

/* ---- jobs --------------------------------------------------------------------------- */

const char *const render_list_names[ADMIN_LISTS] = {"queue", "scheduled", "failed", "dead",
                                                    "running"};

static cJSON *entry(enum admin_list which, const struct admin_entry *e)
{
    cJSON *o = render_object();

    if (which == ADMIN_LIST_DEAD) {
        render_str(o, "record", e->record);
        return o;
    }
    render_str(o, "id", e->id);
    render_str(o, "func", e->func);
    render_str(o, "queue", e->queue);
    render_time(o, "enqueued_at", e->enqueued_at);
    if (which == ADMIN_LIST_FAILED) {
        render_num(o, "failed_at", e->score);
        render_str(o, "error", e->error);
        return o;
    }
    if (which == ADMIN_LIST_SCHEDULED) render_num(o, "due", e->score);
    if (which == ADMIN_LIST_RUNNING) {
        render_str(o, "worker", e->worker);
        render_time(o, "started_at", e->score);
    }
    render_raw(o, "args", e->args);
    render_str(o, "record", e->record);
    return o;
}

cJSON *render_page(enum admin_list which, const char *queue, long limit, const struct admin_page *p)
{
    cJSON *o = render_object(), *items;
    size_t i;

    render_str(o, "list", render_list_names[which]);
    if (which == ADMIN_LIST_QUEUE) render_str(o, "queue", queue);
    render_num(o, "total", (double)p->total);
    render_num(o, "offset", (double)p->offset);
    render_num(o, "limit", (double)limit);
    items = render_array(o, "items");
    for (i = 0; i < p->n; i++) cJSON_AddItemToArray(items, entry(which, &p->items[i]));
    return o;
}

/* ---- one job ------------------------------------------------------------------------ */

static const char *const time_fields[] = {"enqueued_at", "started_at", "ended_at", "retry_at",
                                          "scheduled_for"};
static const char *const count_fields[] = {"attempts", "recovered"};

static int in_list(const char *name, const char *const *list, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0) return 1;
    return 0;
}

int render_is_time_field(const char *name)
{
    return in_list(name, time_fields, sizeof time_fields / sizeof time_fields[0]);
}

int render_is_count_field(const char *name)
{
    return in_list(name, count_fields, sizeof count_fields / sizeof count_fields[0]);
}

char *render_job_args(const struct admin_job *j)
{
    cJSON *o = j->record ? cJSON_Parse(j->record) : NULL, *a;
    char *s = NULL;

    a = cJSON_GetObjectItemCaseSensitive(o, "args");
    if (a != NULL) s = job_json_print_text(a);
    cJSON_Delete(o);
    return s;
}

double render_job_time(const struct admin_job *j, const char *name)
{
    const char *v = admin_job_field(j, name);
    return v ? strtod(v, NULL) : 0;
}

double render_job_duration(const struct admin_job *j, double now)
{
    double s = render_job_time(j, "started_at"), e = render_job_time(j, "ended_at");
    const char *st = admin_job_field(j, "status");

    if (s <= 0) return -1;
    if (e >= s) return e - s;
    if (st != NULL && strcmp(st, "started") == 0) return now - s;
    return -1;
}

/* A result_json as the JSON it is; text that is not one JSON value (a hand-written hash)
 * is the result, a string, whole, as cqctl --json wait says it (jobwait.c), unless the hash
 * has a result as well. */
static void result_json(cJSON *o, const struct admin_job *j, const char *text)
{
    cJSON *v = cJSON_ParseWithOpts(text, NULL, 1);

    if (v != NULL)
        cJSON_AddItemToObject(o, "result_json", v);
    else
        render_str(o, admin_job_field(j, "result") != NULL ? "result_json" : "result", text);
}

cJSON *render_job(const char *id, const struct admin_job *j)
{
    cJSON *o = render_object();
    double rt = render_job_duration(j, time_now());
    char *args = render_job_args(j);
    size_t i;

    render_str(o, "id", id);
    for (i = 0; i + 1 < j->nfields; i += 2) {
        const char *name = j->fields[i], *v = j->fields[i + 1];
        if (strcmp(name, "record") == 0) continue;
        if (render_is_time_field(name) || render_is_count_field(name))
            render_num(o, name, strtod(v, NULL));
        else if (strcmp(name, "result_json") == 0)
            result_json(o, j, v);
        else
            render_str(o, name, v);
    }
    render_raw(o, "args", args);
    render_str(o, "record", j->record);
    render_str(o, "record_from", j->record ? j->record_from : NULL);
    render_str(o, "record_note", j->record_note[0] ? j->record_note : NULL);
    if (rt >= 0)
        render_num(o, "duration", rt);
    else
        render_str(o, "duration", NULL);
    render_num(o, "ttl", (double)j->ttl);
    render_bool(o, "cancel_requested", j->cancel_requested);
    free(args);
    return o;
}

/* ---- metrics ------------------------------------------------------------------------ */

/* A label value in the text format: backslash, double quote and newline escaped. */
static void label(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fprintf(f, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(FILE *f, const char *name, long long v)
{
    if (v >= 0) fprintf(f, "%s %lld\n", name, v);
}

static void histograms(FILE *f, const struct admin_metrics *m)
{
    size_t i, b;

    family(f, "cq_job_duration_seconds", "histogram", "Run time of jobs, by function.");
    for (i = 0; i < m->nhist; i++) {
        const struct admin_histogram *h = &m->hist[i];
        for (b = 0; b < ADMIN_BUCKETS; b++) {
            fputs("cq_job_duration_seconds_bucket{function=\"", f);
            label(f, h->func);
            fprintf(f, "\",le=\"%s\"} %lld\n", admin_bucket_bounds[b], h->buckets[b]);
        }
        fputs("cq_job_duration_seconds_sum{function=\"", f);
        label(f, h->func);
        fprintf(f, "\"} %.9g\n", h->sum);
        fputs("cq_job_duration_seconds_count{function=\"", f);
        label(f, h->func);
        fprintf(f, "\"} %lld\n", h->count);
    }
}

void render_metrics_text(FILE *f, const struct admin_metrics *m)
{
    const struct admin_info *in = &m->info;
    size_t i;

    family(f, "cq_queue_depth", "gauge", "Records waiting in the queue.");
    for (i = 0; i < in->nqueues; i++)
        if (in->queues[i].depth >= 0)
            fprintf(f, "cq_queue_depth{queue=\"%s\"} %lld\n", in->queues[i].name,
                    in->queues[i].depth);
    family(f, "cq_queue_inflight", "gauge",
           "Records of the queue that workers hold (a gone one's until recovered).");
    for (i = 0; i < in->nqueues; i++)
        fprintf(f, "cq_queue_inflight{queue=\"%s\"} %lld\n", in->queues[i].name,
                in->queues[i].inflight);
    family(f, "cq_queue_paused", "gauge", "1 when the queue is paused, else 0.");
    for (i = 0; i < in->nqueues; i++)
        fprintf(f, "cq_queue_paused{queue=\"%s\"} %d\n", in->queues[i].name, in->queues[i].paused);
    family(f, "cq_scheduled_jobs", "gauge",
           "Records in the scheduled set (later runs and retries).");
    sample(f, "cq_scheduled_jobs", in->scheduled);
    family(f, "cq_failed_jobs", "gauge", "Jobs in the failed set.");
    sample(f, "cq_failed_jobs", in->failed);
    family(f, "cq_workers_live", "gauge", "Registered workers whose lease is current.");
    sample(f, "cq_workers_live", (long long)in->live);
    family(f, "cq_dead_records", "gauge", "Records in the dead list (unreadable, no job id).");
    sample(f, "cq_dead_records", in->dead);
    family(f, "cq_jobs_processed_total", "counter", "Jobs finished.");
    sample(f, "cq_jobs_processed_total", m->processed);
    family(f, "cq_jobs_failed_total", "counter", "Jobs failed for good.");
    sample(f, "cq_jobs_failed_total", m->failed);
    family(f, "cq_jobs_retried_total", "counter", "Failed attempts scheduled to run again.");
    sample(f, "cq_jobs_retried_total", m->retried);
    family(f, "cq_jobs_handed_back_total", "counter",
           "Jobs a worker sent back unrun or for a host failure, for another worker.");
    sample(f, "cq_jobs_handed_back_total", m->handed_back);
    family(f, "cq_jobs_recovered_total", "counter",
           "Records taken back from workers that died holding them.");
    sample(f, "cq_jobs_recovered_total", m->recovered);
    histograms(f, m);
}

cJSON *render_metrics(const struct admin *a, const struct admin_metrics *m)
{
    cJSON *o = render_info(a, &m->info), *hs;
    size_t i, b;

    render_num(o, "workers_live", (double)m->info.live);
    render_num(o, "jobs_processed_total", (double)m->processed);
    render_num(o, "jobs_failed_total", (double)m->failed);
    render_num(o, "jobs_retried_total", (double)m->retried);
    render_num(o, "jobs_handed_back_total", (double)m->handed_back);
    render_num(o, "jobs_recovered_total", (double)m->recovered);
    hs = render_array(o, "job_duration_seconds");
    for (i = 0; i < m->nhist; i++) {
        cJSON *h = render_object(), *bk;
        render_str(h, "function", m->hist[i].func);
        bk = xcheck(cJSON_AddObjectToObject(h, "buckets"), "JSON output");
        for (b = 0; b < ADMIN_BUCKETS; b++)
            render_num(bk, admin_bucket_bounds[b], (double)m->hist[i].buckets[b]);
        render_num(h, "sum", m->hist[i].sum);
        render_num(h, "count", (double)m->hist[i].count);
        cJSON_AddItemToArray(hs, h);
    }
    return o;
}
