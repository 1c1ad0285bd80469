/* keys.c - builds every Redis key cq uses; see keys.h for the schema and why names are
 * restricted. */
#include "keys.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *keys_default_prefix(const char *given)
{
    const char *env;

    if (given != NULL) return given;
    env = getenv("CQ_PREFIX");
    if (env != NULL && *env != '\0') return env;
    return "cq:";
}

int keys_init(struct keys *k, const char *prefix, char *err, size_t errlen)
{
    const unsigned char *p;

    if (prefix == NULL || *prefix == '\0') prefix = "cq:";
    for (p = (const unsigned char *)prefix; *p; p++) {
        if (*p <= ' ' || *p == 0x7f) {
            err_set(err, errlen, "key prefix '%s': spaces and control bytes are not allowed",
                    prefix);
            return -1;
        }
    }
    if (str_copy(k->prefix, sizeof k->prefix, prefix) != 0) {
        err_set(err, errlen, "key prefix '%s': longer than %d bytes", prefix, KEYS_PREFIX_MAX - 1);
        return -1;
    }
    return 0;
}

int keys_valid_name(const char *name)
{
    size_t n = 0;
    const char *p;

    if (name == NULL || *name == '\0') return 0;
    for (p = name; *p; p++, n++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '-' || c == '.' || c == '@';
        if (!ok || n >= KEYS_NAME_MAX) return 0;
    }
    return 1;
}

/* The schema: one format per kind, after the prefix. */
static const char *const kind_formats[] = {
    /* queues and jobs */
    [KEYS_QUEUES] = "queues",
    [KEYS_QUEUE] = "queue:%s",
    [KEYS_JOB] = "job:%s",
    /* workers and what they hold */
    [KEYS_WORKERS] = "workers",
    [KEYS_WORKER] = "worker:%s",
    [KEYS_WORKER_LEASE] = "worker:%s:lease",
    [KEYS_INFLIGHT] = "inflight:%s:%s",
    /* where records wait or end */
    [KEYS_SCHEDULED] = "scheduled",
    [KEYS_FAILED] = "failed",
    [KEYS_DEAD] = "dead",
    /* counters and the function catalog */
    [KEYS_STATS] = "stats",
    [KEYS_FUNCTIONS] = "functions",
    [KEYS_FUNCTIONS_SEEN] = "functions:seen",
    /* operators: paused queues, jobs asked to stop; what workers count for them */
    [KEYS_PAUSED] = "paused",
    [KEYS_CANCEL] = "cancel",
    [KEYS_COUNTS] = "counts:%s",
    [KEYS_DURATIONS] = "durations:%s",
    [KEYS_ENDED] = "ended:%s",
};

/* Fill the kind's format with up to two names. The format comes from the table above, never
 * from a caller, which is why the non-literal format is safe here. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static const char *build(const struct keys *k, enum keys_kind kind, const char *a, const char *b,
                         char *buf, size_t len)
{
    size_t plen = strlen(k->prefix);
    int n;

    if (plen >= len) return NULL;
    memcpy(buf, k->prefix, plen);
    n = snprintf(buf + plen, len - plen, kind_formats[kind], a, b);
    if (n < 0 || (size_t)n >= len - plen) return NULL;
    return buf;
}
#pragma GCC diagnostic pop

const char *keys_template(const struct keys *k, enum keys_kind kind, char *buf, size_t len)
{
    size_t o = 0;
    const char *p;

    for (p = k->prefix; *p; p++) {
        if (o + 2 >= len) return NULL;
        if (*p == '%') buf[o++] = '%';
        buf[o++] = *p;
    }
    if (str_copy(buf + o, len - o, kind_formats[kind]) != 0) return NULL;
    return buf;
}

/* The builders: one line each, since each only names its kind and how many names it takes. */
#define KEY0(fn, kind)                                          \
    const char *fn(const struct keys *k, char *buf, size_t len) \
    {                                                           \
        return build(k, kind, NULL, NULL, buf, len);            \
    }
#define KEY1(fn, kind)                                                         \
    const char *fn(const struct keys *k, const char *a, char *buf, size_t len) \
    {                                                                          \
        return build(k, kind, a, NULL, buf, len);                              \
    }

KEY0(keys_queues, KEYS_QUEUES)
KEY1(keys_queue, KEYS_QUEUE)
KEY1(keys_job, KEYS_JOB)
KEY0(keys_workers, KEYS_WORKERS)
KEY1(keys_worker, KEYS_WORKER)
KEY1(keys_worker_lease, KEYS_WORKER_LEASE)
KEY0(keys_scheduled, KEYS_SCHEDULED)
KEY0(keys_failed, KEYS_FAILED)
KEY0(keys_dead, KEYS_DEAD)
KEY0(keys_stats, KEYS_STATS)
KEY0(keys_functions, KEYS_FUNCTIONS)
KEY0(keys_functions_seen, KEYS_FUNCTIONS_SEEN)
KEY0(keys_paused, KEYS_PAUSED)
KEY0(keys_cancel, KEYS_CANCEL)
KEY1(keys_counts, KEYS_COUNTS)
KEY1(keys_durations, KEYS_DURATIONS)
KEY1(keys_ended, KEYS_ENDED)

const char *keys_inflight(const struct keys *k, const char *wid, const char *queue, char *buf,
                          size_t len)
{
    return build(k, KEYS_INFLIGHT, wid, queue, buf, len);
}
