/* keys.c - builds every Redis key cq uses; see keys.h for the schema and why names are
 * restricted. */
#include "keys.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *keys_default_prefix(const char *given)
{
    const char *env;

    if (given != NULL && *given != '\0') return given; /* "" is not given, as for the URL */
    env = getenv("CQ_PREFIX");
    if (env != NULL && *env != '\0') return env;
    return "cq:";
}

int keys_init(struct keys *k, const char *prefix, char *err, size_t errlen)
{
    const unsigned char *p;
    char shown[STR_SHOWN_LEN];

    if (prefix == NULL || *prefix == '\0') prefix = "cq:";
    for (p = (const unsigned char *)prefix; *p; p++) {
        if (*p <= ' ' || *p == 0x7f) {
            err_set(err, errlen, "key prefix '%s': spaces and control bytes are not allowed",
                    str_shown(prefix, shown, sizeof shown));
            return -1;
        }
    }
    if (str_copy(k->prefix, sizeof k->prefix, prefix) != 0) {
        err_set(err, errlen, "key prefix '%s': longer than %d bytes",
                str_shown(prefix, shown, sizeof shown), KEYS_PREFIX_MAX - 1);
        return -1;
    }
    return 0;
}

int keys_init_default(struct keys *k, const char *given, char *err, size_t errlen)
{
    if (keys_init(k, keys_default_prefix(given), err, errlen) == 0) return 0;
    if (given == NULL || *given == '\0') err_prepend(err, errlen, "$CQ_PREFIX: ");
    return -1;
}

int keys_check_name(const char *what, const char *name, char *err, size_t errlen)
{
    char shown[STR_SHOWN_LEN];

    if (keys_valid_name(name)) return 0;
    err_set(err, errlen, "%s '%s': use 1-%d characters of A-Z a-z 0-9 _ . @ -", what,
            str_shown(name, shown, sizeof shown), KEYS_NAME_MAX);
    return -1;
}

int keys_valid_name(const char *name)
{
    /* A bit per byte value: A-Z a-z 0-9 _ . @ - (bits 45, 46, 48-57; 64-90, 95, 97-122). One
     * load and a shift a character, since every job id and queue name is checked. */
    static const unsigned long long allowed[4] = {0x03ff600000000000ULL, 0x07fffffe87ffffffULL, 0,
                                                  0};
    const unsigned char *p = (const unsigned char *)name;
    size_t n;

    if (name == NULL || *name == '\0') return 0;
    for (n = 0; p[n]; n++)
        if (n >= KEYS_NAME_MAX || !((allowed[p[n] >> 6] >> (p[n] & 63)) & 1)) return 0;
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

/* Fill the kind's format with up to two names: the prefix, then the format's text with
 * each %s replaced by the next name (by hand: snprintf was most of the cost of a key, and a
 * producer makes one a job). NULL when it does not fit. */
static const char *build(const struct keys *k, enum keys_kind kind, const char *a, const char *b,
                         char *buf, size_t len)
{
    const char *names[2] = {a, b}, *f = kind_formats[kind], *s;
    size_t o = strlen(k->prefix), n;
    int next = 0;

    if (o >= len) return NULL;
    memcpy(buf, k->prefix, o);
    while (*f) {
        if (f[0] == '%' && f[1] == 's') {
            s = names[next++];
            if (s == NULL) s = "";
            n = strlen(s);
            f += 2;
        } else {
            s = f;
            n = strcspn(f, "%");
            if (n == 0) n = 1; /* a lone '%' (none in the table) */
            f += n;
        }
        if (n >= len - o) return NULL;
        memcpy(buf + o, s, n);
        o += n;
    }
    buf[o] = '\0';
    return buf;
}

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
