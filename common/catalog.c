/* catalog.c - publish and read the function catalog (see catalog.h). */
#include "catalog.h"

#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "util.h"

/* The declaration of f as the JSON the catalog holds. Caller frees. */
static char *declaration(const struct cq_function *f)
{
    cJSON *o = cJSON_CreateObject();
    locale_t loc;
    char *s;

    cJSON_AddStringToObject(o, "args", f->spec);
    cJSON_AddStringToObject(o, "usage", f->usage);
    cJSON_AddStringToObject(o, "summary", f->summary);
    cJSON_AddNumberToObject(o, "retries", f->retries);
    cJSON_AddNumberToObject(o, "timeout", f->timeout);
    cJSON_AddStringToObject(o, "source", f->source);
    loc = locale_c_enter(); /* the timeout printed with a point */
    s = cJSON_PrintUnformatted(o);
    locale_c_leave(loc);
    cJSON_Delete(o);
    return xcheck(s, "a function declaration");
}

/* Run one command built from argv; 0 or -1 with err naming what. */
static int run(struct rconn *r, int argc, const char **argv, const char *what, char *err,
               size_t errlen)
{
    redisReply *rep = rconn_command(r, argc, argv, NULL);

    if (rep == NULL) {
        err_set(err, errlen, "%s: %s", what, r->errstr);
        return -1;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        rconn_error(r, what, rep->str, err, errlen);
        freeReplyObject(rep);
        return -1;
    }
    freeReplyObject(rep);
    return 0;
}

char *catalog_names(const struct cq_registry *reg)
{
    size_t o = 0, cap = 1;
    char *names;
    int i;

    for (i = 0; i < reg->n; i++) cap += strlen(reg->v[i]->name) + 1;
    names = xcalloc(cap, 1);
    for (i = 0; i < reg->n; i++)
        o += (size_t)snprintf(names + o, cap - o, "%s%s", i ? "," : "", reg->v[i]->name);
    return names;
}

int catalog_publish(struct rconn *r, const struct keys *k, const struct cq_registry *reg, char *err,
                    size_t errlen)
{
    char kf[KEYS_KEY_MAX];
    const char **argv;
    char **decl;
    int i, rc = 0;

    if (reg->n == 0) return 0;
    argv = xcalloc((size_t)reg->n * 2 + 4, sizeof *argv);
    decl = xcalloc((size_t)reg->n, sizeof *decl);
    argv[0] = "HSET";
    argv[1] = keys_functions(k, kf, sizeof kf);
    for (i = 0; i < reg->n; i++) {
        decl[i] = declaration(reg->v[i]);
        argv[2 + 2 * i] = reg->v[i]->name;
        argv[3 + 2 * i] = decl[i];
    }
    rc = run(r, 2 + 2 * reg->n, argv, "publishing functions", err, errlen);
    if (rc == 0) {
        int appended;
        redisReply *rep = NULL;
        if (catalog_seen_append(r, k, reg, &appended) != 0 || (rep = rconn_read(r)) == NULL) {
            err_set(err, errlen, "publishing functions: %s", r->errstr);
            rc = -1;
        } else if (rep->type == REDIS_REPLY_ERROR) {
            rconn_error(r, "publishing functions", rep->str, err, errlen);
            rc = -1;
        }
        if (rep) freeReplyObject(rep);
    }
    for (i = 0; i < reg->n; i++) cJSON_free(decl[i]);
    free(decl);
    free(argv);
    return rc;
}

int catalog_seen_append(struct rconn *r, const struct keys *k, const struct cq_registry *reg,
                        int *appended)
{
    char kf[KEYS_KEY_MAX], now[32];
    const char **argv;
    int i, rc;

    *appended = 0;
    if (reg->n == 0) return 0;
    argv = xcalloc((size_t)reg->n * 2 + 2, sizeof *argv);
    argv[0] = "HSET";
    argv[1] = keys_functions_seen(k, kf, sizeof kf);
    time_format(now, time_now());
    for (i = 0; i < reg->n; i++) {
        argv[2 + 2 * i] = reg->v[i]->name;
        argv[3 + 2 * i] = now;
    }
    rc = rconn_append(r, 2 + 2 * reg->n, argv, NULL);
    free(argv);
    if (rc == 0) *appended = 1;
    return rc;
}

static double reply_time(const redisReply *e)
{
    return e != NULL && e->type == REDIS_REPLY_STRING ? strtod_c(e->str, NULL) : 0;
}

/* Add the declaration decl (catalog JSON, from the hash key) of name to into. */
static int describe(struct cq_registry *into, const char *key, const char *name, const char *decl,
                    char *err, size_t errlen)
{
    locale_t loc = locale_c_enter(); /* the timeout read with a point */
    cJSON *o = cJSON_Parse(decl), *v;
    struct cq_function *f;
    char why[512];

    locale_c_leave(loc);
    if (!cJSON_IsObject(o) || !cJSON_IsString(cJSON_GetObjectItem(o, "args"))) {
        cJSON_Delete(o);
        err_set(err, errlen,
                "function catalog: the entry of %s is not a declaration "
                "(mend or delete it: HDEL %s %s)",
                name, key, name);
        return -1;
    }
    f = registry_describe(into, name, cJSON_GetObjectItem(o, "args")->valuestring, why, sizeof why);
    if (f == NULL) {
        cJSON_Delete(o);
        err_set(err, errlen, "function catalog: %s", why);
        return -1;
    }
    v = cJSON_GetObjectItem(o, "summary");
    if (cJSON_IsString(v)) cq_function_set_summary(f, v->valuestring);
    v = cJSON_GetObjectItem(o, "retries");
    /* set_retries and set_timeout check their ranges; the cast must not overflow first. */
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1000)
        cq_function_set_retries(f, (int)v->valuedouble);
    v = cJSON_GetObjectItem(o, "timeout");
    if (cJSON_IsNumber(v)) cq_function_set_timeout(f, v->valuedouble);
    v = cJSON_GetObjectItem(o, "source");
    if (cJSON_IsString(v)) {
        free(f->source);
        f->source = xstrdup(v->valuestring);
    }
    cJSON_Delete(o);
    return 0;
}

int catalog_get(struct rconn *r, const struct keys *k, const char *func, struct cq_registry *into,
                double *seen, char *err, size_t errlen)
{
    char kf[KEYS_KEY_MAX], ks[KEYS_KEY_MAX];
    redisReply *a, *b;
    int rc = -1;

    if (rconn_appendf(r, "HGET %s %s", keys_functions(k, kf, sizeof kf), func) != 0 ||
        rconn_appendf(r, "HGET %s %s", keys_functions_seen(k, ks, sizeof ks), func) != 0) {
        err_set(err, errlen, "reading the function catalog: %s", r->errstr);
        return -1;
    }
    a = rconn_read(r);
    b = a ? rconn_read(r) : NULL;
    if (a == NULL || b == NULL) {
        err_set(err, errlen, "reading the function catalog: %s", r->errstr);
    } else if (a->type == REDIS_REPLY_ERROR || b->type == REDIS_REPLY_ERROR) {
        rconn_error(r, "reading the function catalog",
                    a->type == REDIS_REPLY_ERROR ? a->str : b->str, err, errlen);
    } else if (a->type != REDIS_REPLY_STRING) {
        rc = 0;
    } else {
        *seen = reply_time(b);
        rc = registry_find(into, func) != NULL                   ? 1
            : describe(into, kf, func, a->str, err, errlen) == 0 ? 1
                                                                 : -1;
    }
    if (a) freeReplyObject(a);
    if (b) freeReplyObject(b);
    return rc;
}

/* "no live worker; last served 5m ago" */
static void print_age(FILE *f, double seen)
{
    double age = time_now() - seen;

    fprintf(f, "no live worker; ");
    if (seen <= 0)
        fprintf(f, "never served");
    else if (age < 120)
        fprintf(f, "last served %.0fs ago", age);
    else if (age < 7200)
        fprintf(f, "last served %.0fm ago", age / 60);
    else if (age < 172800)
        fprintf(f, "last served %.0fh ago", age / 3600);
    else
        fprintf(f, "last served %.0fd ago", age / 86400);
}

/* Whether name is an item of list (a worker hash's comma-separated functions or queues). */
static int listed(const redisReply *list, const char *name)
{
    size_t nl = strlen(name);
    const char *p;

    if (list == NULL || list->type != REDIS_REPLY_STRING || nl == 0) return 0;
    for (p = list->str; (p = strstr(p, name)) != NULL; p += nl)
        if ((p == list->str || p[-1] == ',') && (p[nl] == ',' || p[nl] == '\0')) return 1;
    return 0;
}

/* The live workers (lease present) whose hash lists func among its functions and queue
 * among its queues (either NULL: any), comma-separated, into buf. funcs[i] and queues[i]
 * (NULL where queue is) are worker i's two fields, leases[i] its lease's EXISTS. *others (may
 * be NULL) counts the live ones that list func but not queue. */
static void live_workers(const redisReply *wids, const redisReply *const *funcs,
                         const redisReply *const *queues, const redisReply *const *leases,
                         const char *func, const char *queue, char *buf, size_t len, int *count,
                         int *others)
{
    size_t i, o = 0;

    buf[0] = '\0';
    *count = 0;
    if (others != NULL) *others = 0;
    for (i = 0; i < wids->elements; i++) {
        int w;
        if (leases[i] == NULL || leases[i]->type != REDIS_REPLY_INTEGER ||
            leases[i]->integer != 1 || (func != NULL && !listed(funcs[i], func)))
            continue;
        if (queue != NULL && !listed(queues[i], queue)) {
            if (others != NULL) (*others)++;
            continue;
        }
        (*count)++;
        w = snprintf(buf + o, len - o, "%s%s", o ? ", " : "", wids->element[i]->str);
        if (w > 0 && (size_t)w < len - o) o += (size_t)w;
    }
}

/* How many live workers serve func (NULL: any) and take from queue (NULL: any); *others (may
 * be NULL) those that serve func on other queues only. */
static int live_count(struct rconn *r, const struct keys *k, const char *func, const char *queue,
                      int *others, char *names, size_t len, char *err, size_t errlen)
{
    char kw[KEYS_KEY_MAX], kl[KEYS_KEY_MAX];
    redisReply *wids, **funcs, **queues, **leases;
    size_t i, got;
    int n = 0, rc = 0;

    if (names != NULL && len > 0) names[0] = '\0';
    wids = rconn_commandf(r, "SMEMBERS %s", keys_workers(k, kw, sizeof kw));
    if (wids == NULL || wids->type != REDIS_REPLY_ARRAY) {
        if (wids != NULL && wids->type == REDIS_REPLY_ERROR) /* NOPERM: the right to add */
            rconn_error(r, "reading the workers", wids->str, err, errlen);
        else
            err_set(err, errlen, "reading the workers: %s",
                    wids ? "redis: wrong type (see docs/PROTOCOL.md)" : r->errstr);
        if (wids) freeReplyObject(wids);
        return -1;
    }
    funcs = xcalloc(wids->elements + 1, sizeof *funcs);
    queues = xcalloc(wids->elements + 1, sizeof *queues);
    leases = xcalloc(wids->elements + 1, sizeof *leases);
    /* HGETs, not an HMGET: the producer's ACL line (docs/PROTOCOL.md) has HGET alone. */
    for (i = 0; i < wids->elements; i++) {
        const char *wid = wids->element[i]->str;
        keys_worker(k, wid, kw, sizeof kw);
        if (rconn_appendf(r, "HGET %s functions", kw) != 0 ||
            rconn_appendf(r, "HGET %s queues", kw) != 0 ||
            rconn_appendf(r, "EXISTS %s", keys_worker_lease(k, wid, kl, sizeof kl)) != 0)
            break;
    }
    for (got = 0; got < i; got++) {
        funcs[got] = rconn_read(r);
        queues[got] = funcs[got] ? rconn_read(r) : NULL;
        leases[got] = queues[got] ? rconn_read(r) : NULL;
        if (leases[got] == NULL) {
            err_set(err, errlen, "reading the workers: %s", r->errstr);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && got < wids->elements) {
        err_set(err, errlen, "reading the workers: %s", r->errstr);
        rc = -1;
    }
    if (rc == 0) {
        char buf[1024];
        live_workers(wids, (const redisReply *const *)funcs, (const redisReply *const *)queues,
                     (const redisReply *const *)leases, func, queue, buf, sizeof buf, &n, others);
        if (names != NULL) str_copy(names, len, buf);
    }
    for (i = 0; i < wids->elements; i++) {
        if (funcs[i]) freeReplyObject(funcs[i]);
        if (queues[i]) freeReplyObject(queues[i]);
        if (leases[i]) freeReplyObject(leases[i]);
    }
    free(funcs);
    free(queues);
    free(leases);
    freeReplyObject(wids);
    return rc == 0 ? n : -1;
}

int catalog_live(struct rconn *r, const struct keys *k, const char *func, char *names, size_t len,
                 char *err, size_t errlen)
{
    return live_count(r, k, func, NULL, NULL, names, len, err, errlen);
}

int catalog_live_on(struct rconn *r, const struct keys *k, const char *func, const char *queue,
                    int *elsewhere, char *err, size_t errlen)
{
    return live_count(r, k, func, queue, elsewhere, NULL, 0, err, errlen);
}

int catalog_queue_live(struct rconn *r, const struct keys *k, const char *queue, char *err,
                       size_t errlen)
{
    return live_count(r, k, NULL, queue, NULL, NULL, 0, err, errlen);
}

int catalog_print(struct rconn *r, const struct keys *k, const struct cq_registry *builtins,
                  FILE *f, char *err, size_t errlen)
{
    char kf[KEYS_KEY_MAX], ks[KEYS_KEY_MAX], kw[KEYS_KEY_MAX];
    redisReply *all = NULL, *seen = NULL, *wids = NULL, **funcs = NULL, **leases = NULL;
    struct cq_registry *reg = registry_new();
    const struct cq_function **order = NULL;
    size_t i;
    int rc = -1, j, col;

    all = rconn_commandf(r, "HGETALL %s", keys_functions(k, kf, sizeof kf));
    seen = all ? rconn_commandf(r, "HGETALL %s", keys_functions_seen(k, ks, sizeof ks)) : NULL;
    wids = seen ? rconn_commandf(r, "SMEMBERS %s", keys_workers(k, kw, sizeof kw)) : NULL;
    if (wids == NULL || all->type != REDIS_REPLY_ARRAY || seen->type != REDIS_REPLY_ARRAY ||
        wids->type != REDIS_REPLY_ARRAY) {
        err_set(err, errlen, "reading the function catalog: %s",
                wids == NULL ? r->errstr : "redis: wrong type (see docs/PROTOCOL.md)");
        goto out;
    }
    funcs = xcalloc(wids->elements + 1, sizeof *funcs);
    leases = xcalloc(wids->elements + 1, sizeof *leases);
    for (i = 0; i < wids->elements; i++) {
        const char *wid = wids->element[i]->str;
        char kl[KEYS_KEY_MAX];
        funcs[i] = rconn_commandf(r, "HGET %s functions", keys_worker(k, wid, kw, sizeof kw));
        leases[i] = rconn_commandf(r, "EXISTS %s", keys_worker_lease(k, wid, kl, sizeof kl));
        if (funcs[i] == NULL || leases[i] == NULL) {
            err_set(err, errlen, "reading the workers: %s", r->errstr);
            goto out;
        }
    }
    for (i = 0; i + 1 < all->elements; i += 2) {
        char why[512];
        if (describe(reg, kf, all->element[i]->str, all->element[i + 1]->str, why, sizeof why) != 0)
            fprintf(f, "%s: %s\n", all->element[i]->str, why);
    }
    for (j = 0; builtins != NULL && j < builtins->n; j++)
        if (registry_find(reg, builtins->v[j]->name) == NULL) {
            struct cq_function *d =
                registry_describe(reg, builtins->v[j]->name, builtins->v[j]->spec, NULL, 0);
            if (d != NULL) {
                cq_function_set_summary(d, builtins->v[j]->summary);
                free(d->source); /* "builtin", or "program": one of the program's own */
                d->source = xstrdup(builtins->v[j]->source);
            }
        }
    order = registry_sorted(reg); /* as the errors' "known:" lists */
    col = registry_column(order, reg->n);
    for (j = 0; j < reg->n; j++) {
        const struct cq_function *fn = order[j];
        double t = 0;
        char live[1024], sig[2200];
        int nlive;
        for (i = 0; i + 1 < seen->elements; i += 2)
            if (strcmp(seen->element[i]->str, fn->name) == 0) t = reply_time(seen->element[i + 1]);
        live_workers(wids, (const redisReply *const *)funcs, NULL,
                     (const redisReply *const *)leases, fn->name, NULL, live, sizeof live, &nlive,
                     NULL);
        registry_signature(fn, sig, sizeof sig);
        if (fn->summary[0] != '\0') { /* else the signature alone, no spaces after it */
            registry_lead(f, col, sig);
            fprintf(f, "%s\n", fn->summary);
        } else {
            fprintf(f, "%s\n", sig);
        }
        fprintf(f, "%*s%s; ", col + 2, "", fn->source);
        if (nlive > 0)
            fprintf(f, "served now by %s", live);
        else
            print_age(f, t);
        fprintf(f, "\n");
    }
    rc = 0;
out:
    for (i = 0; wids != NULL && wids->type == REDIS_REPLY_ARRAY && i < wids->elements; i++) {
        if (funcs && funcs[i]) freeReplyObject(funcs[i]);
        if (leases && leases[i]) freeReplyObject(leases[i]);
    }
    free(funcs);
    free(leases);
    free(order);
    if (all) freeReplyObject(all);
    if (seen) freeReplyObject(seen);
    if (wids) freeReplyObject(wids);
    registry_free(reg);
    return rc;
}
