/* registry.c - the function table and the built-in functions. */
#include "registry.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "download.h"
#include "util.h"

static int fn_download_link(struct job_ctx *ctx, const cJSON *args)
{
    const cJSON *dir = cJSON_GetArrayItem(args, 0), *link = cJSON_GetArrayItem(args, 1);
    struct download_result res;
    char err[sizeof ctx->error];

    if (!cJSON_IsString(dir) || !cJSON_IsString(link)) {
        err_set(ctx->error, sizeof ctx->error,
                "download_link: directory and link must be strings");
        return -1;
    }
    memset(&res, 0, sizeof res);
    if (download_link(ctx->http, ctx->download_root, dir->valuestring, link->valuestring,
                      &ctx->limits, &res, err, sizeof err) != 0) {
        str_copy(ctx->error, sizeof ctx->error, err);
        ctx->transient = res.transient;
        ctx->retry_after = res.retry_after;
        return -1;
    }
    snprintf(ctx->result, sizeof ctx->result, "%s (%lld bytes)", res.path, res.bytes);
    return 0;
}

static int fn_noop(struct job_ctx *ctx, const cJSON *args)
{
    (void)args;
    ctx->result[0] = '\0';
    return 0;
}

/* Sleeps in short slices so that a job timeout or a worker's hard stop ends it promptly. */
static int fn_sleep(struct job_ctx *ctx, const cJSON *args)
{
    const cJSON *a = cJSON_GetArrayItem(args, 0);
    double secs;
    long long start, end, limit = -1;

    if (cJSON_IsNumber(a)) {
        secs = a->valuedouble;
    } else if (!cJSON_IsString(a) || parse_duration(a->valuestring, &secs) != 0) {
        err_set(ctx->error, sizeof ctx->error,
                "sleep: seconds must be a number or a duration like 1.5s");
        return -1;
    }
    if (!isfinite(secs) || secs < 0 || secs > 86400) {
        err_set(ctx->error, sizeof ctx->error, "sleep: %g seconds is out of range (0-86400)",
                secs);
        return -1;
    }
    start = time_mono_ms();
    end = start + (long long)(secs * 1000);
    if (ctx->timeout > 0) limit = start + (long long)(ctx->timeout * 1000);
    for (;;) {
        long long now = time_mono_ms();
        if (now >= end) break;
        if (limit >= 0 && now >= limit) {
            err_set(ctx->error, sizeof ctx->error, "sleep: job timed out after %gs",
                    ctx->timeout);
            ctx->transient = 1;
            return -1;
        }
        if (ctx->stop != NULL && __atomic_load_n(ctx->stop, __ATOMIC_RELAXED)) {
            err_set(ctx->error, sizeof ctx->error, "sleep: interrupted by worker shutdown");
            ctx->transient = 1;
            return -1;
        }
        sleep_ms(end - now < 20 ? (long)(end - now) : 20);
    }
    snprintf(ctx->result, sizeof ctx->result, "slept %gs", secs);
    return 0;
}

static const struct registry_entry table[] = {
    {"download_link", 2, 2, fn_download_link, 3, 60.0, "download_link DIRECTORY LINK",
     "save LINK (http/https) as DIRECTORY/<name from the URL> under the worker's "
     "--download-root"},
    {"noop", 0, -1, fn_noop, 0, 0.0, "noop [ARG...]", "do nothing (for tests and benchmarks)"},
    {"sleep", 1, 1, fn_sleep, 0, 0.0, "sleep SECONDS", "sleep SECONDS (e.g. 2 or 250ms)"},
};

const struct registry_entry *registry_all(size_t *n)
{
    *n = sizeof table / sizeof table[0];
    return table;
}

const struct registry_entry *registry_find(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].name, name) == 0) return &table[i];
    return NULL;
}

int registry_check(const char *func, int nargs, char *err, size_t errlen)
{
    const struct registry_entry *e = registry_find(func);

    if (e == NULL) {
        char names[256] = "";
        size_t i, o = 0;
        for (i = 0; i < sizeof table / sizeof table[0]; i++) {
            int w = snprintf(names + o, sizeof names - o, "%s%s", i ? ", " : "", table[i].name);
            if (w < 0 || (size_t)w >= sizeof names - o) break;
            o += (size_t)w;
        }
        err_set(err, errlen, "unknown function '%s' (known: %s)", func, names);
        return -1;
    }
    if (nargs < e->min_args || (e->max_args >= 0 && nargs > e->max_args)) {
        if (e->min_args == e->max_args)
            err_set(err, errlen, "%s takes %d argument%s, got %d (usage: %s)", func,
                    e->min_args, e->min_args == 1 ? "" : "s", nargs, e->usage);
        else
            err_set(err, errlen, "%s takes at least %d arguments, got %d (usage: %s)", func,
                    e->min_args, nargs, e->usage);
        return -1;
    }
    return 0;
}

void registry_print(void *stdio_file)
{
    FILE *f = stdio_file;
    size_t i;

    for (i = 0; i < sizeof table / sizeof table[0]; i++) {
        const struct registry_entry *e = &table[i];
        fprintf(f, "%-30s %s (retries %d", e->usage, e->summary, e->default_retries);
        if (e->default_timeout > 0) fprintf(f, ", timeout %gs", e->default_timeout);
        fprintf(f, ")\n");
    }
}
