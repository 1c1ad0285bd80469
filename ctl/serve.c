/* serve.c - cqctl serve: the dashboard (see serve.h).
 *
 * DESIGN. libmicrohttpd runs the HTTP side with a thread per connection; this file owns
 * what a request may do and what it is sent:
 *
 *   GET  /  /app.js  /app.css  /favicon.svg    the page, compiled in (web_assets.c)
 *   GET  /api/overview                         info + metrics --json, each queue's jobs per
 *                                              minute (30 min), the jobs per second of the
 *                                              last 5 minutes (sampled here)
 *   GET  /api/jobs?list=L&queue=Q&offset=N&limit=M   jobs --json: one page, never a list
 *   GET  /api/job/ID                           job --json
 *   POST /api/job/ID/requeue|cancel|delete     the actions of cqctl, one job each
 *   POST /api/failed/requeue[?queue=Q]         requeue --all-failed [--queue Q]
 *   POST /api/queue/Q/pause|resume|empty
 *   GET  /metrics                              metrics (Prometheus text)
 *   GET  /healthz                              200 "ok" when Redis answers, else 503
 *
 * Every read and action is the admin.c call cqctl's command makes, rendered by render.c, so
 * the page, the API and the command line cannot disagree. Redis is reached through a pool
 * of POOL_SIZE connections, each lent to one request at a time under a mutex; a sampler
 * thread with its own connection reads the stats hash once a second into a ring of
 * RING_SIZE samples, the page's throughput chart. Nothing reads a whole list or scans keys:
 * pages are LRANGE/ZRANGE windows and counts are LLEN/ZCARD (admin.c).
 *
 * Safety, in the order a request meets it:
 *   1. Host: on a loopback address only 127.0.0.1:PORT, localhost:PORT and [::1]:PORT are
 *      served, so that a web page whose DNS name was pointed at 127.0.0.1 (DNS rebinding)
 *      cannot read the API as same-origin.
 *   2. Token (--token): every request carries it, as "Authorization: Bearer T" or in the
 *      cookie that GET /?token=T sets (HttpOnly, SameSite=Strict) before it redirects to /;
 *      else 401. A non-loopback --listen refuses to start without one (or --insecure).
 *   3. Actions are POST only, and a POST must carry "X-CQ-Action: 1" (which no cross-site
 *      form can send, and no cross-site script without a CORS preflight this server never
 *      grants) and, where the browser sends them, Sec-Fetch-Site: same-origin and an Origin
 *      naming this Host.
 *   4. Every response: a Content-Security-Policy of 'self' only and frame-ancestors 'none'
 *      (no inline script, no framing), X-Frame-Options DENY, nosniff, no referrer, no store.
 *   Before all of them, the connections: CONNS_MAX at once, CONNS_PER_IP from one address,
 *   each must bring a whole request, headers and body, within --request-timeout of its
 *   accept or of its last answer, and take the whole answer within --answer-timeout of its
 *   making
 *   (conns_sweep: libmicrohttpd 0.9.75 has only an idle timeout, which a client sending or
 *   reading a byte now and then never meets).
 *   The page's script puts every value into the document as text (textContent), never as
 *   markup. The Redis URL's password is never shown: the page and the log name the server
 *   by admin's `where` (host and port or socket) and rconn's errors, which carry no
 *   password.
 */
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "admin.h"
#include "job.h"
#include "keys.h"
#include "log.h"
#include "render.h"
#include "util.h"
#include "web_assets.h"

#define POOL_SIZE      4 /* Redis connections lent to requests */
#define POOL_SIZE_TEXT "4"
#define POOL_WAIT_MS   3000 /* how long a request waits for one of them */
#define RING_SIZE      300  /* seconds of throughput the server keeps */
#define MINUTES        30   /* per-minute history of each queue */
#define PAGE_MAX       1000
#define CONNS_MAX      256 /* HTTP connections at once */
#define CONNS_PER_IP   32  /* of them from one address: no one client holds every slot */
#define IDLE_SECS      60  /* an idle HTTP connection is closed after this */
#define ACTION_HDR     "X-CQ-Action"
#define COOKIE_BASE    "cq_token_"

/* ---- state ------------------------------------------------------------------------ */

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t free;
    struct admin conn[POOL_SIZE];
    int busy[POOL_SIZE];
};

struct sample {
    double t;
    long long processed, failed;
};

struct sampler {
    pthread_t thread;
    int running;
    stop_flag stop;
    pthread_mutex_t mu;
    struct sample ring[RING_SIZE];
    size_t n, next; /* samples held; where the next one goes */
    struct admin a;
};

/* Where an HTTP connection is: waiting for the whole of a request (--request-timeout), its
 * answer being made (by this server's own thread: no deadline), or sent (--answer-timeout to
 * be taken). */
enum conn_state { CONN_WAITING, CONN_MAKING, CONN_SENDING };

/* An HTTP connection, from its accept to its close. */
struct conn {
    struct conn *prev, *next;
    int fd;
    long long since;       /* time_mono_ms(): when it came to its state */
    enum conn_state state; /* see above */
    int answered;          /* answers it has been sent */
    int cut;               /* shut down for being too slow */
};

/* The connections open, for the deadlines (--request-timeout, --answer-timeout). libmicrohttpd 0.9.75
 * has only an idle timeout: a client sending a byte of its headers (or of a body) now and then
 * kept its connection for good, and 8 addresses doing so held the server's 256; so did a
 * client that asked for a large answer and read a byte of it now and then. */
struct conns {
    pthread_mutex_t mu;
    struct conn *head;
    long long next_sweep;
};

#define SERVE_HOSTS_MAX 8

struct server {
    const struct serve_options *o;
    struct logger log;
    int loopback, port;
    char hosts[SERVE_HOSTS_MAX][320]; /* the Host values served on loopback */
    int nhosts;
    char cookie[32]; /* the token cookie's name: one per port, so dashboards on one host
                           do not overwrite each other's */
    char where[300]; /* the Redis server, as admin shows it */
    struct pool pool;
    struct sampler sampler;
    struct conns conns;
};

/* One request, across libmicrohttpd's calls of the handler: its being there tells the first
 * call (headers only) from the later ones (the body, then the end). */
struct request {
    int started;
};

static stop_flag stopping;

static void on_signal(int sig)
{
    (void)sig;
    __atomic_store_n(&stopping, 1, __ATOMIC_RELAXED); /* any thread may take the signal */
}

/* ---- the Redis pool --------------------------------------------------------------- */

static int pool_init(struct pool *p, const struct serve_options *o, char *err, size_t errlen)
{
    pthread_condattr_t ca;
    size_t i;

    memset(p, 0, sizeof *p);
    for (i = 0; i < POOL_SIZE; i++)
        if (admin_init(&p->conn[i], o->url, o->prefix, err, errlen) != 0) return -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* pool_take's wait: no wall-clock jumps */
    pthread_cond_init(&p->free, &ca);
    pthread_condattr_destroy(&ca);
    return 0;
}

/* A connection for this request alone, waiting up to POOL_WAIT_MS for one to be given back
 * when all are lent; NULL when none was, or the server is stopping. It is connected on first
 * use (rconn reconnects after any I/O error), and dropped here when Redis has closed it while
 * it was idle (a restart), so that the request connects afresh instead of failing with a 503
 * once. */
static struct admin *pool_take(struct pool *p)
{
    struct admin *a = NULL;
    struct timespec until;
    size_t i;
    int timed_out = 0;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += POOL_WAIT_MS / 1000;
    until.tv_nsec += POOL_WAIT_MS % 1000 * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    for (;;) { /* a last look after the time is up: a give at that instant is not lost */
        for (i = 0; i < POOL_SIZE && a == NULL; i++)
            if (!p->busy[i]) {
                p->busy[i] = 1;
                a = &p->conn[i];
            }
        if (a != NULL || timed_out || __atomic_load_n(&stopping, __ATOMIC_RELAXED)) break;
        timed_out = pthread_cond_timedwait(&p->free, &p->mu, &until) != 0;
    }
    pthread_mutex_unlock(&p->mu);
    if (a != NULL) rconn_drop_if_closed(&a->r);
    return a;
}

static void pool_give(struct pool *p, struct admin *a)
{
    pthread_mutex_lock(&p->mu);
    p->busy[a - p->conn] = 0;
    pthread_cond_signal(&p->free);
    pthread_mutex_unlock(&p->mu);
}

static void pool_free(struct pool *p)
{
    size_t i;

    for (i = 0; i < POOL_SIZE; i++) admin_close(&p->conn[i]);
    pthread_cond_destroy(&p->free);
    pthread_mutex_destroy(&p->mu);
}

/* ---- the throughput sampler ------------------------------------------------------- */

static void *sampler_main(void *arg)
{
    struct server *s = arg;
    struct sampler *sm = &s->sampler;
    int down = 0;

    thread_name("cq-sample");
    while (!stop_requested(&sm->stop)) {
        long long next = time_mono_ms() + 1000;
        struct admin_counters c;
        char err[512];
        if (admin_counters_read(&sm->a, &c, err, sizeof err) == 0) {
            pthread_mutex_lock(&sm->mu);
            sm->ring[sm->next] = (struct sample){time_now(), c.processed, c.failed};
            sm->next = (sm->next + 1) % RING_SIZE;
            if (sm->n < RING_SIZE) sm->n++;
            pthread_mutex_unlock(&sm->mu);
            if (down) LOG(&s->log, CQ_LOG_INFO, "redis %s answers again", s->where);
            down = 0;
        } else {
            if (!down) LOG(&s->log, CQ_LOG_WARN, "%s (the page says so until it answers)", err);
            down = 1;
        }
        while (!stop_requested(&sm->stop) && time_mono_ms() < next) sleep_ms(50);
    }
    return NULL;
}

static int sampler_start(struct server *s, char *err, size_t errlen)
{
    struct sampler *sm = &s->sampler;

    if (admin_init(&sm->a, s->o->url, s->o->prefix, err, errlen) != 0) return -1;
    sm->a.r.timeout = 2.0; /* a stop waits for at most one attempt of this length */
    errno = pthread_create(&sm->thread, NULL, sampler_main, s);
    if (errno != 0) {
        err_set(err, errlen, "a thread: %s", strerror(errno));
        return -1;
    }
    sm->running = 1;
    return 0;
}

static void sampler_stop(struct sampler *sm)
{
    if (sm->running) {
        __atomic_store_n(&sm->stop, 1, __ATOMIC_RELAXED);
        pthread_join(sm->thread, NULL);
    }
    admin_close(&sm->a);
    pthread_mutex_destroy(&sm->mu);
}

/* {"interval": 1, "points": [[time, finished per second, failed per second], ...]}, oldest
 * first: the rate between each two samples in a row. A counter that went down (the stats
 * hash was reset) counts 0 there. */
static cJSON *throughput_json(struct sampler *sm)
{
    cJSON *o = render_object(), *pts = render_array(o, "points");
    struct sample *ring = xcalloc(RING_SIZE, sizeof *ring);
    size_t n, i;

    pthread_mutex_lock(&sm->mu);
    n = sm->n;
    for (i = 0; i < n; i++) ring[i] = sm->ring[(sm->next + RING_SIZE - n + i) % RING_SIZE];
    pthread_mutex_unlock(&sm->mu);
    render_num(o, "interval", 1);
    for (i = 1; i < n; i++) {
        double dt = ring[i].t - ring[i - 1].t;
        long long dp = ring[i].processed - ring[i - 1].processed;
        long long df = ring[i].failed - ring[i - 1].failed;
        cJSON *p = xcheck(cJSON_CreateArray(), "JSON output");
        if (dt <= 0) dt = 1;
        cJSON_AddItemToArray(p, xcheck(cJSON_CreateNumber(ring[i].t), "JSON output"));
        cJSON_AddItemToArray(p, xcheck(cJSON_CreateNumber(dp > 0 ? (double)dp / dt : 0), "JSON"));
        cJSON_AddItemToArray(p, xcheck(cJSON_CreateNumber(df > 0 ? (double)df / dt : 0), "JSON"));
        cJSON_AddItemToArray(pts, p);
    }
    free(ring);
    return o;
}

/* ---- responses -------------------------------------------------------------------- */

static const char csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
                          "img-src 'self'; connect-src 'self'; object-src 'none'; "
                          "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/* Queue a response with the headers every one carries; data is copied or, with take, freed
 * by libmicrohttpd. */
static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type,
                               const void *data, size_t len, int take, const char *cache)
{
    struct MHD_Response *r;
    enum MHD_Result rc;

    r = MHD_create_response_from_buffer(len, (void *)data,
                                        take ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        if (take) free((void *)data);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Content-Security-Policy", csp);
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
    MHD_add_response_header(r, "Cache-Control", cache ? cache : "no-store");
    rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return respond(c, status, "text/plain; charset=utf-8", msg, strlen(msg), 0, NULL);
}

/* A JSON document (deleted here). */
static enum MHD_Result json(struct MHD_Connection *c, unsigned status, cJSON *o)
{
    char *s = job_json_print_text(o);

    cJSON_Delete(o);
    return respond(c, status, "application/json", s, strlen(s), 1, NULL);
}

/* {"error": msg} */
static enum MHD_Result json_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    cJSON *o = render_object();

    render_str(o, "error", msg);
    return json(c, status, o);
}

/* A refusal before any route: for /api/ as {"error": msg} (the API's errors, OPERATIONS.md),
 * elsewhere as the text msg is (one line ending in a newline). */
static enum MHD_Result refuse(struct MHD_Connection *c, const char *url, unsigned status,
                              const char *msg)
{
    char line[512];
    size_t n;

    if (strncmp(url, "/api/", 5) != 0) return text(c, status, msg);
    str_copy(line, sizeof line, msg);
    n = strlen(line);
    if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
    return json_error(c, status, line);
}

/* The status for a failed admin call: 503 when the connection is gone (Redis down or
 * unreachable), else what the caller says the refusal is. */
static unsigned failed_status(const struct admin *a, unsigned refused)
{
    return a->r.ctx == NULL ? MHD_HTTP_SERVICE_UNAVAILABLE : refused;
}

/* ---- reads ------------------------------------------------------------------------ */

/* Each queue of the overview gets "per_minute": its ended jobs per minute, oldest first. */
static void add_minutes(struct admin *a, const struct admin_info *in, cJSON *o)
{
    long long *mins;
    cJSON *qs = cJSON_GetObjectItemCaseSensitive(o, "queues"), *q;
    char err[512];
    size_t i = 0;
    int m;

    if (in->nqueues == 0) return;
    mins = xcalloc(in->nqueues * MINUTES, sizeof *mins);
    if (admin_minutes_read(a, in, MINUTES, mins, err, sizeof err) != 0) {
        free(mins);
        return; /* the page shows no chart: the rest is still worth sending */
    }
    cJSON_ArrayForEach(q, qs)
    {
        cJSON *arr;
        if (i >= in->nqueues) break;
        arr = render_array(q, "per_minute");
        for (m = 0; m < MINUTES; m++)
            cJSON_AddItemToArray(
                arr, xcheck(cJSON_CreateNumber((double)mins[i * MINUTES + m]), "JSON output"));
        i++;
    }
    free(mins);
}

static enum MHD_Result get_overview(struct server *s, struct MHD_Connection *c, struct admin *a)
{
    struct admin_metrics m;
    char err[512];
    cJSON *o;

    if (admin_metrics_read(a, &m, err, sizeof err) != 0)
        return json_error(c, failed_status(a, MHD_HTTP_INTERNAL_SERVER_ERROR), err);
    o = render_metrics(a, &m);
    add_minutes(a, &m.info, o);
    cJSON_AddItemToObject(o, "throughput", throughput_json(&s->sampler));
    render_str(o, "version", CQ_VERSION);
    render_bool(o, "token", s->o->token != NULL);
    admin_metrics_free(&m);
    return json(c, MHD_HTTP_OK, o);
}

/* A whole number query argument in [min, max], dflt when absent; -1 when malformed. */
static int arg_long(struct MHD_Connection *c, const char *name, long min, long max, long dflt,
                    long *out, char *err, size_t errlen)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    char why[256];

    *out = dflt;
    if (v == NULL || *v == '\0') return 0;
    if (parse_long_msg(v, min, max, out, why, sizeof why) == 0) return 0;
    err_set(err, errlen, "%s: %s", name, why);
    return -1;
}

/* The queue parameter: 0 with *out (NULL when absent or empty), or -1 with err. */
static int arg_queue(struct MHD_Connection *c, const char **out, char *err, size_t errlen)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "queue");
    char shown[STR_SHOWN_LEN];

    *out = v != NULL && *v != '\0' ? v : NULL;
    if (*out == NULL || keys_valid_name(*out)) return 0;
    err_set(err, errlen, "queue: '%s' is not a queue name (" KEYS_NAME_RULE ")",
            str_shown(v, shown, sizeof shown));
    return -1;
}

static enum MHD_Result get_jobs(struct MHD_Connection *c, struct admin *a)
{
    const char *list = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "list");
    const char *queue;
    enum admin_list which;
    struct admin_page p;
    long offset, limit;
    char err[512];
    cJSON *o;
    size_t i;

    for (i = 0; i < ADMIN_LISTS; i++)
        if (list != NULL && strcmp(list, render_list_names[i]) == 0) break;
    if (i == ADMIN_LISTS)
        return json_error(c, MHD_HTTP_BAD_REQUEST,
                          "list: one of queue (with queue=NAME), running, scheduled, failed, dead");
    which = (enum admin_list)i;
    if (arg_queue(c, &queue, err, sizeof err) != 0) return json_error(c, MHD_HTTP_BAD_REQUEST, err);
    if (which == ADMIN_LIST_QUEUE && queue == NULL)
        return json_error(c, MHD_HTTP_BAD_REQUEST, "queue: missing: list=queue needs queue=NAME");
    if (arg_long(c, "offset", 0, 1000000000L, 0, &offset, err, sizeof err) != 0 ||
        arg_long(c, "limit", 1, PAGE_MAX, 50, &limit, err, sizeof err) != 0)
        return json_error(c, MHD_HTTP_BAD_REQUEST, err);
    if (admin_list(a, which, queue, offset, limit, &p, err, sizeof err) != 0)
        return json_error(c, failed_status(a, MHD_HTTP_INTERNAL_SERVER_ERROR), err);
    o = render_page(which, queue, limit, &p);
    admin_page_free(&p);
    return json(c, MHD_HTTP_OK, o);
}

static enum MHD_Result get_job(struct MHD_Connection *c, struct admin *a, const char *id)
{
    struct admin_job j;
    char err[512];
    cJSON *o;

    if (admin_job_read(a, id, &j, err, sizeof err) != 0)
        return json_error(c, failed_status(a, MHD_HTTP_NOT_FOUND), err);
    o = render_job(id, &j);
    admin_job_free(&j);
    return json(c, MHD_HTTP_OK, o);
}

static enum MHD_Result get_metrics(struct MHD_Connection *c, struct admin *a)
{
    struct admin_metrics m;
    char err[512], *buf = NULL;
    size_t len = 0;
    FILE *f;

    if (admin_metrics_read(a, &m, err, sizeof err) != 0) {
        char line[600];
        snprintf(line, sizeof line, "%s\n", err);
        return text(c, failed_status(a, MHD_HTTP_INTERNAL_SERVER_ERROR), line);
    }
    f = xcheck(open_memstream(&buf, &len), "a buffer");
    render_metrics_text(f, &m);
    fclose(f);
    admin_metrics_free(&m);
    return respond(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", buf, len, 1, NULL);
}

/* Redis answers, to this server's user: one EXISTS of a key of cq's (the operator's ACL line
 * in docs/PROTOCOL.md allows it, where it may not allow PING). */
static enum MHD_Result get_health(struct MHD_Connection *c, struct admin *a)
{
    char key[KEYS_KEY_MAX], why[512], line[600];
    redisReply *rep = rconn_commandf(&a->r, "EXISTS %s", keys_workers(&a->k, key, sizeof key));

    if (rep != NULL && rep->type != REDIS_REPLY_ERROR) {
        freeReplyObject(rep);
        return text(c, MHD_HTTP_OK, "ok\n");
    }
    if (rep != NULL)
        rconn_error(&a->r, NULL, rep->str, why, sizeof why);
    else
        str_copy(why, sizeof why, a->r.errstr);
    if (rep != NULL) freeReplyObject(rep);
    snprintf(line, sizeof line, "%s\n", why);
    return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, line);
}

/* ---- actions ---------------------------------------------------------------------- */

/* {"id", "outcome", key: value}: as cqctl --json reports each job. */
static cJSON *outcome(const char *id, const char *what, const char *key, const char *value)
{
    cJSON *o = render_object();

    render_str(o, "id", id);
    render_str(o, "outcome", what);
    if (key != NULL) render_str(o, key, value);
    return o;
}

static enum MHD_Result job_action(struct server *s, struct MHD_Connection *c, struct admin *a,
                                  const char *id, const char *action)
{
    /* A cancel's error names the job, its worker twice and the fix: 1,024 bytes, as cqctl's. */
    char err[1024], out[KEYS_NAME_MAX + 1];
    cJSON *o = NULL;
    int rc;

    if (strcmp(action, "requeue") == 0) {
        rc = admin_requeue(a, id, out, sizeof out, err, sizeof err);
        if (rc == 0) o = outcome(id, "requeued", "queue", out);
    } else if (strcmp(action, "cancel") == 0) {
        struct admin_cancel ac;
        rc = admin_cancel(a, id, &ac, err, sizeof err);
        /* As cqctl cancel says: a running job whose worker is gone ends canceled, unrun, once
         * a live worker returns it to its queue ("canceling"); another is "stopping". */
        if (rc == ADMIN_CANCELED)
            o = outcome(id, "canceled", "was", ac.was);
        else if (rc == ADMIN_CANCEL_ORPHAN)
            o = outcome(id, "canceling", "was", ac.was);
        else if (rc == ADMIN_CANCEL_ASKED)
            o = outcome(id, "stopping", "was", ac.was);
    } else if (strcmp(action, "delete") == 0) {
        rc = admin_delete(a, id, out, sizeof out, err, sizeof err);
        if (rc == 0) o = outcome(id, "deleted", "was", out);
    } else {
        return json_error(c, MHD_HTTP_NOT_FOUND, "a job's actions: requeue, cancel, delete");
    }
    if (o == NULL) {
        LOG(&s->log, CQ_LOG_WARN, "%s %s: %s", action, id, err);
        return json_error(c, failed_status(a, MHD_HTTP_CONFLICT), err);
    }
    LOG(&s->log, CQ_LOG_INFO, "%s %s: %s", action, id,
        cJSON_GetObjectItemCaseSensitive(o, "outcome")->valuestring);
    return json(c, MHD_HTTP_OK, o);
}

static enum MHD_Result queue_action(struct server *s, struct MHD_Connection *c, struct admin *a,
                                    const char *q, const char *action)
{
    char err[512];
    cJSON *o = render_object();
    long removed;
    int changed;

    render_str(o, "queue", q);
    if (strcmp(action, "pause") == 0 || strcmp(action, "resume") == 0) {
        changed = admin_pause(a, q, action[0] == 'p', err, sizeof err);
        if (changed < 0) goto failed;
        render_bool(o, "paused", action[0] == 'p');
        render_bool(o, "changed", changed);
        LOG(&s->log, CQ_LOG_INFO, "%s queue %s%s", action[0] == 'p' ? "paused" : "resumed", q,
            changed ? "" : ": it was so already");
    } else if (strcmp(action, "empty") == 0) {
        removed = admin_empty(a, q, err, sizeof err);
        if (removed < 0) goto failed;
        render_num(o, "removed", (double)removed);
        LOG(&s->log, CQ_LOG_INFO, "emptied queue %s: %ld jobs removed and canceled", q, removed);
    } else {
        cJSON_Delete(o);
        return json_error(c, MHD_HTTP_NOT_FOUND, "a queue's actions: pause, resume, empty");
    }
    return json(c, MHD_HTTP_OK, o);
failed:
    cJSON_Delete(o);
    LOG(&s->log, CQ_LOG_WARN, "%s queue %s: %s", action, q, err);
    return json_error(c, failed_status(a, MHD_HTTP_CONFLICT), err);
}

static enum MHD_Result requeue_failed(struct server *s, struct MHD_Connection *c, struct admin *a)
{
    const char *q;
    long done = 0, refused = 0, dropped = 0;
    char err[512];
    cJSON *o;

    if (arg_queue(c, &q, err, sizeof err) != 0) return json_error(c, MHD_HTTP_BAD_REQUEST, err);
    if (admin_requeue_failed(a, q, NULL, NULL, &done, &refused, &dropped, err, sizeof err) != 0) {
        LOG(&s->log, CQ_LOG_WARN, "requeue failed jobs: %s", err);
        return json_error(c, failed_status(a, MHD_HTTP_INTERNAL_SERVER_ERROR), err);
    }
    LOG(&s->log, CQ_LOG_INFO, "requeued %ld failed jobs%s%s; %ld refused", done,
        q ? " of queue " : "", q ? q : "", refused);
    o = render_object();
    render_str(o, "queue", q);
    render_num(o, "requeued", (double)done);
    render_num(o, "refused", (double)refused);
    render_num(o, "dropped", (double)dropped);
    return json(c, MHD_HTTP_OK, o);
}

/* ---- safety ----------------------------------------------------------------------- */

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* The client's address, for the log. */
static const char *peer(struct MHD_Connection *c, char *buf, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    str_copy(buf, len, "?");
    if (sa != NULL && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    else if (sa != NULL && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)len);
    return buf;
}

/* On loopback: the Host header is one of this server's own names. */
static int host_ok(const struct server *s, struct MHD_Connection *c)
{
    const char *h = header(c, "Host");
    size_t i;

    if (!s->loopback) return 1;
    if (h == NULL) return 0;
    for (i = 0; i < (size_t)s->nhosts; i++)
        if (strcasecmp(h, s->hosts[i]) == 0) return 1;
    return 0;
}

/* Whether origin is http:// or https:// and then host: the page's own origin, also when a
 * TLS proxy serves it. */
static int origin_is(const char *origin, const char *host)
{
    const char *rest = NULL;

    if (host == NULL) return 0;
    if (strncmp(origin, "http://", 7) == 0) rest = origin + 7;
    if (strncmp(origin, "https://", 8) == 0) rest = origin + 8;
    return rest != NULL && strcasecmp(rest, host) == 0;
}

/* Equal strings, in a time that does not depend on where they first differ. */
static int same_secret(const char *x, const char *y)
{
    size_t nx = strlen(x), ny = strlen(y), i;
    unsigned char d = nx != ny;

    for (i = 0; i < nx; i++) d |= (unsigned char)(x[i] ^ y[ny ? i % ny : 0]);
    return d == 0;
}

static int token_ok(const struct server *s, struct MHD_Connection *c)
{
    const char *auth = header(c, "Authorization");
    const char *cookie = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, s->cookie);

    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0 && same_secret(auth + 7, s->o->token))
        return 1;
    return cookie != NULL && same_secret(cookie, s->o->token);
}

static const char unauthorized[] =
    "401 Unauthorized: this cq dashboard needs its token. Open /?token=TOKEN once in this "
    "browser (a cookie keeps it), or send the header 'Authorization: Bearer TOKEN'.\n";

/* GET ...?token=T with the right token: the cookie, and a redirect to the page. */
static enum MHD_Result login(struct server *s, struct MHD_Connection *c)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    char *cookie;
    enum MHD_Result rc;

    if (r == NULL) return MHD_NO;
    cookie = xstrdup_printf("%s=%s; Path=/; HttpOnly; SameSite=Strict", s->cookie, s->o->token);
    MHD_add_response_header(r, "Set-Cookie", cookie);
    MHD_add_response_header(r, "Location", "/");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    rc = MHD_queue_response(c, MHD_HTTP_SEE_OTHER, r);
    MHD_destroy_response(r);
    free(cookie);
    LOG(&s->log, CQ_LOG_INFO, "a browser logged in with the token");
    return rc;
}

/* Why a POST is refused as cross-site, or NULL when it is this server's page's own: from
 * the origin its Host names, or the one --origin gives (a proxy's). */
static const char *cross_site(const struct server *s, struct MHD_Connection *c, char *why,
                              size_t len)
{
    const char *action = header(c, ACTION_HDR), *site = header(c, "Sec-Fetch-Site");
    const char *origin = header(c, "Origin"), *host = header(c, "Host");

    if (action == NULL || strcmp(action, "1") != 0)
        return "403 Forbidden: an action needs the header '" ACTION_HDR ": 1' (the page sends it)";
    if (site != NULL && strcmp(site, "same-origin") != 0) {
        snprintf(why, len, "403 Forbidden: a cross-site request (Sec-Fetch-Site: %.64s)", site);
        return why;
    }
    if (origin != NULL && !origin_is(origin, host) &&
        !(s->o->origin != NULL && strcasecmp(origin, s->o->origin) == 0)) {
        snprintf(why, len, "403 Forbidden: Origin '%.100s' is not this server's", origin);
        return why;
    }
    return NULL;
}

/* ---- the request deadline --------------------------------------------------------- */

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct conns *cs = &((struct server *)cls)->conns;
    struct conn *k = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci == NULL) return;
        k = xcalloc(1, sizeof *k);
        k->fd = ci->connect_fd;
        k->since = time_mono_ms();
        pthread_mutex_lock(&cs->mu);
        k->next = cs->head;
        if (cs->head != NULL) cs->head->prev = k;
        cs->head = k;
        pthread_mutex_unlock(&cs->mu);
        *socket_context = k;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && k != NULL) {
        /* Called before libmicrohttpd closes the socket: under the lock, a sweep never shuts
         * down a descriptor that another connection has been given since. */
        pthread_mutex_lock(&cs->mu);
        if (k->prev != NULL)
            k->prev->next = k->next;
        else
            cs->head = k->next;
        if (k->next != NULL) k->next->prev = k->prev;
        pthread_mutex_unlock(&cs->mu);
        free(k);
        *socket_context = NULL;
    }
}

/* A connection comes to state: CONN_MAKING when its request came whole, CONN_SENDING when its
 * answer is made (then it has --answer-timeout from now to take it), CONN_WAITING when the
 * answer went (then it has --request-timeout from now for its next request). */
static void conn_state(struct server *s, struct MHD_Connection *c, enum conn_state state)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn *k = ci != NULL ? ci->socket_context : NULL;

    if (k == NULL) return;
    pthread_mutex_lock(&s->conns.mu);
    k->state = state;
    k->answered += state == CONN_SENDING;
    k->since = time_mono_ms();
    pthread_mutex_unlock(&s->conns.mu);
}

/* Once a second: the connections that have waited --request-timeout for a whole request, or
 * --answer-timeout for their answer to be taken, are shut down, which ends their libmicrohttpd
 * threads as a client's close would. A client between two requests of a keep-alive connection
 * counts as waiting (the page asks every second): those are told only at debug level, being
 * what a browser leaves open. */
static void conns_sweep(struct server *s)
{
    long long now = time_mono_ms();
    long long request_ms = (long long)(s->o->request_timeout * 1000.0);
    long long answer_ms = (long long)(s->o->answer_timeout * 1000.0);
    struct conn *k;
    int cut = 0, idle = 0, slow = 0;

    if (now < s->conns.next_sweep) return;
    s->conns.next_sweep = now + 1000;
    pthread_mutex_lock(&s->conns.mu);
    for (k = s->conns.head; k != NULL; k = k->next) {
        if (k->cut || k->state == CONN_MAKING ||
            now - k->since < (k->state == CONN_SENDING ? answer_ms : request_ms))
            continue;
        if (k->state == CONN_SENDING) {
            /* Its close then resets it: what the kernel holds of the answer is dropped, not
             * sent on for as long as the client takes to read it. */
            struct linger l = {1, 0};
            setsockopt(k->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
            slow++;
        } else if (k->answered > 0) {
            idle++;
        } else {
            cut++;
        }
        shutdown(k->fd, SHUT_RDWR);
        k->cut = 1;
    }
    pthread_mutex_unlock(&s->conns.mu);
    if (cut > 0)
        LOG(&s->log, CQ_LOG_INFO, "closed %d connection%s that sent no whole request within %gs",
            cut, cut == 1 ? "" : "s", s->o->request_timeout);
    if (slow > 0)
        LOG(&s->log, CQ_LOG_INFO, "closed %d connection%s that did not take an answer within %gs",
            slow, slow == 1 ? "" : "s", s->o->answer_timeout);
    if (idle > 0)
        LOG(&s->log, CQ_LOG_DEBUG, "closed %d keep-alive connection%s idle for %gs", idle,
            idle == 1 ? "" : "s", s->o->request_timeout);
}

/* ---- routing ---------------------------------------------------------------------- */

/* /PREFIX/NAME[/ACTION]: NAME (a valid cq name) and ACTION into the buffers; 0, or -1. */
static int split_path(const char *rest, char *name, size_t nlen, char *action, size_t alen)
{
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);

    if (n == 0 || n >= nlen) return -1;
    memcpy(name, rest, n);
    name[n] = '\0';
    if (!keys_valid_name(name)) return -1;
    return str_copy(action, alen, slash ? slash + 1 : "");
}

/* Everything under /api/, /metrics and /healthz, with a connection of the pool. */
static enum MHD_Result route_redis(struct server *s, struct MHD_Connection *c, struct admin *a,
                                   const char *url, int post)
{
    char name[KEYS_NAME_MAX + 1], action[32];

    if (!post) {
        if (strcmp(url, "/healthz") == 0) return get_health(c, a);
        if (strcmp(url, "/metrics") == 0) return get_metrics(c, a);
        if (strcmp(url, "/api/overview") == 0) return get_overview(s, c, a);
        if (strcmp(url, "/api/jobs") == 0) return get_jobs(c, a);
        if (strncmp(url, "/api/job/", 9) == 0 &&
            split_path(url + 9, name, sizeof name, action, sizeof action) == 0 && !action[0])
            return get_job(c, a, name);
        return json_error(c, MHD_HTTP_NOT_FOUND, "no such page");
    }
    if (strncmp(url, "/api/job/", 9) == 0 &&
        split_path(url + 9, name, sizeof name, action, sizeof action) == 0 && action[0])
        return job_action(s, c, a, name, action);
    if (strncmp(url, "/api/queue/", 11) == 0 &&
        split_path(url + 11, name, sizeof name, action, sizeof action) == 0 && action[0])
        return queue_action(s, c, a, name, action);
    if (strcmp(url, "/api/failed/requeue") == 0) return requeue_failed(s, c, a);
    return json_error(c, MHD_HTTP_NOT_FOUND, "no such action");
}

/* The paths that take POST; every other path takes GET (and HEAD). */
static int is_action(const char *url)
{
    return (strncmp(url, "/api/job/", 9) == 0 && strchr(url + 9, '/') != NULL) ||
        strncmp(url, "/api/queue/", 11) == 0 || strcmp(url, "/api/failed/requeue") == 0;
}

/* What needs no Redis, on the first call of a request (its headers, before any body is
 * read): 1 when it goes on to Redis, 0 when *rc is its answer (a refusal, the login, a page
 * asset, a 404). */
static int admit(struct server *s, struct MHD_Connection *c, const char *url, const char *method,
                 enum MHD_Result *rc)
{
    int post = strcmp(method, "POST") == 0,
        get = !post && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
    char why[256], from[INET6_ADDRSTRLEN];
    const char *refusal;
    size_t i;

#define ANSWER(x) return (*rc = (x), conn_state(s, c, CONN_SENDING), 0)
    LOG(&s->log, CQ_LOG_DEBUG, "%s %s from %s", method, url, peer(c, from, sizeof from));
    if (!host_ok(s, c)) {
        LOG(&s->log, CQ_LOG_WARN, "%s %s from %s refused: Host '%.100s' is not this server's",
            method, url, peer(c, from, sizeof from), header(c, "Host") ? header(c, "Host") : "");
        ANSWER(refuse(c, url, MHD_HTTP_FORBIDDEN,
                      "403 Forbidden: the Host header is not this server's address (a loopback "
                      "dashboard answers to 127.0.0.1, localhost and [::1] with its port)\n"));
    }
    if (s->o->token != NULL) {
        const char *given = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
        int right = given != NULL && same_secret(given, s->o->token);
        if (get && right) ANSWER(login(s, c));
        if (given != NULL && !right)
            LOG(&s->log, CQ_LOG_WARN, "a login from %s with a wrong token",
                peer(c, from, sizeof from));
        if (!token_ok(s, c)) ANSWER(refuse(c, url, MHD_HTTP_UNAUTHORIZED, unauthorized));
    }
    if ((post && !is_action(url)) || (get && is_action(url)) || (!post && !get))
        ANSWER(refuse(c, url, MHD_HTTP_METHOD_NOT_ALLOWED,
                      is_action(url) ? "405 Method Not Allowed: actions are POST\n"
                                     : "405 Method Not Allowed: use GET\n"));
    refusal = post ? cross_site(s, c, why, sizeof why) : NULL;
    if (refusal != NULL) {
        LOG(&s->log, CQ_LOG_WARN, "POST %s from %s refused: %s", url, peer(c, from, sizeof from),
            refusal);
        ANSWER(refuse(c, url, MHD_HTTP_FORBIDDEN, refusal));
    }
    for (i = 0; get && i < web_nassets; i++)
        if (strcmp(url, web_assets[i].path) == 0)
            ANSWER(respond(c, MHD_HTTP_OK, web_assets[i].type, web_assets[i].data,
                           web_assets[i].len, 0, "no-cache"));
    if (strncmp(url, "/api/", 5) != 0 && strcmp(url, "/metrics") != 0 &&
        strcmp(url, "/healthz") != 0)
        ANSWER(text(c, MHD_HTTP_NOT_FOUND, "404 Not Found\n"));
#undef ANSWER
    return 1;
}

/* A request admitted: its answer from Redis, on a connection of the pool, or a 503 when none
 * is free in time (Redis slow or stopped holds each for its timeout). */
static enum MHD_Result route(struct server *s, struct MHD_Connection *c, const char *url,
                             const char *method)
{
    struct admin *a = pool_take(&s->pool);
    enum MHD_Result rc;

    if (a == NULL) {
        const char *msg = "all " POOL_SIZE_TEXT " Redis connections of this server are busy "
                          "(Redis slow or not answering): try again";
        return strncmp(url, "/api/", 5) == 0 ? json_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg)
                                             : text(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
    }
    rc = route_redis(s, c, a, url, strcmp(method, "POST") == 0);
    pool_give(&s->pool, a);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **req_cls)
{
    struct request *rq = *req_cls;
    enum MHD_Result rc;

    (void)version;
    (void)upload_data;
    if (rq == NULL) { /* the headers: answered now where Redis is not needed */
        if (!admit(cls, c, url, method, &rc)) return rc;
        *req_cls = xcalloc(1, sizeof *rq);
        return MHD_YES;
    }
    if (*upload_size > 0) { /* no action reads a body: it is read and dropped */
        *upload_size = 0;
        return MHD_YES;
    }
    /* The request came whole, its body too, in time. Making its answer may take longer than a
     * client is given to take it (a requeue of every failed job), and runs on this thread. */
    conn_state(cls, c, CONN_MAKING);
    rc = route(cls, c, url, method);
    conn_state(cls, c, CONN_SENDING);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    conn_state(cls, c, CONN_WAITING);
    free(*req_cls);
    *req_cls = NULL;
}

/* libmicrohttpd's line for a connection that a client closed in the middle of its request, or
 * of its answer (or that a deadline shut down): the client's doing, not the server's. */
static int client_gone(const char *line)
{
    static const char closed[] = "Connection was closed by remote side",
                      unsent[] = "Failed to send the response";

    if (strncmp(line, closed, sizeof closed - 1) == 0) return 1;
    return strncmp(line, unsent, sizeof unsent - 1) == 0 &&
        (strstr(line, "closed by remote peer") != NULL ||
         strstr(line, "no longer available for sending") != NULL);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct server *s = cls;
    char line[512];
    size_t n;

    vsnprintf(line, sizeof line, fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    LOG(&s->log, client_gone(line) ? CQ_LOG_DEBUG : CQ_LOG_WARN, "libmicrohttpd: %s", line);
}

/* ---- the listening socket --------------------------------------------------------- */

int serve_check_token(const char *token, const char *from, char *err, size_t errlen)
{
    /* What a URL carries as it is (?token=) and a cookie value may hold. */
    static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";

    if (strlen(token) < SERVE_TOKEN_MIN || token[strspn(token, ok)] != '\0') {
        err_set(err, errlen,
                "%s: use %d or more characters of A-Z a-z 0-9 - _ . ~ (such as the output of "
                "'openssl rand -hex 16')",
                from ? from : "--token", SERVE_TOKEN_MIN);
        return -1;
    }
    return 0;
}

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a6)) return 1;
        return IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127;
    }
    return 0;
}

/* HOST:PORT or [V6]:PORT into an address; 0, or -1 with err. */
static int parse_listen(const char *spec, struct sockaddr_storage *out, socklen_t *outlen,
                        char *err, size_t errlen)
{
    char host[256], port[16];
    const char *colon = strrchr(spec, ':'), *given = spec;
    struct addrinfo hints, *res = NULL;
    size_t hn;
    long pn;
    int rc;

    if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) >= sizeof port) goto malformed;
    hn = (size_t)(colon - spec);
    if (hn >= 2 && spec[0] == '[' && spec[hn - 1] == ']') {
        spec++;
        hn -= 2;
    } else if (hn > 0 && (spec[0] == '[' || spec[hn - 1] == ']')) {
        goto malformed; /* "[::1": its last ':' is no port's */
    }
    if (hn == 0 || hn >= sizeof host) goto malformed;
    memcpy(host, spec, hn);
    host[hn] = '\0';
    str_copy(port, sizeof port, colon + 1);
    if (port[strspn(port, "0123456789")] != '\0') goto malformed;
    /* getaddrinfo would take 99999 as 99999 % 65536. */
    if (parse_long(port, 0, 65535, &pn) != 0) {
        err_set(err, errlen, "--listen '%s': the port must be a number from 0 to 65535", given);
        return -1;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        err_set(err, errlen, "--listen '%s': host '%s': %s", given, host, gai_strerror(rc));
        return -1;
    }
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *outlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
malformed:
    err_set(err, errlen, "--listen '%s': give HOST:PORT, such as 127.0.0.1:9181 or [::1]:9181",
            given);
    return -1;
}

/* A listening socket on addr; its port (the one the kernel chose for port 0) in *port.
 * -1 with err. */
static int listen_on(const char *spec, const struct sockaddr_storage *addr, socklen_t len,
                     int *port, char *err, size_t errlen)
{
    struct sockaddr_storage got;
    socklen_t glen = sizeof got;
    int fd, one = 1;

    fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err_set(err, errlen, "--listen %s: socket: %s", spec, strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)addr, len) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&got, &glen) != 0) {
        int e = errno;
        /* In use: a second cqctl serve on the default port is the likely cause; say the
         * way out, as the Redis errors do. */
        err_set(err, errlen, "--listen %s: %s%s", spec, strerror(e),
                e == EADDRINUSE ? "; another program listens there (cqctl serve?): stop it, or "
                                  "give another port (port 0: any free one, logged)"
                                : "");
        close(fd);
        return -1;
    }
    *port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                           : ((struct sockaddr_in6 *)&got)->sin6_port);
    return fd;
}

/* ---- run -------------------------------------------------------------------------- */

static struct MHD_Daemon *start_daemon(struct server *s, int fd)
{
    return MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNS_MAX,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)CONNS_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)IDLE_SECS, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_END);
}

/* The address the log shows: http://HOST:PORT/ as a browser would be given it. */
static void page_url(const struct sockaddr_storage *addr, int port, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (addr->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)addr)->sin6_addr, ip, sizeof ip);
        snprintf(out, len, "http://[%s]:%d/", ip, port);
    } else {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr, ip, sizeof ip);
        snprintf(out, len, "http://%s:%d/", ip, port);
    }
}

/* The Host values a loopback server answers: its names with the port (and without it on port
 * 80, as browsers send them), the address it listens on, and --origin's host. */
static void set_hosts(struct server *s, const struct sockaddr_storage *addr)
{
    char url[128];
    size_t n;

    s->nhosts = 0;
#define HOST(...) snprintf(s->hosts[s->nhosts++], sizeof s->hosts[0], __VA_ARGS__)
    HOST("127.0.0.1:%d", s->port);
    HOST("localhost:%d", s->port);
    HOST("[::1]:%d", s->port);
    page_url(addr, s->port, url, sizeof url); /* "http://IP:PORT/" */
    n = strlen(url);
    if (n > 8) HOST("%.*s", (int)(n - 8), url + 7);
    if (s->port == 80) {
        HOST("127.0.0.1");
        HOST("localhost");
        HOST("[::1]");
    }
    if (s->o->origin != NULL) HOST("%s", strstr(s->o->origin, "://") + 3);
#undef HOST
}

/* --origin: "http(s)://HOST[:PORT]" and nothing more, as a browser sends Origin. */
static int check_origin(const char *o, char *err, size_t errlen)
{
    const char *rest = strncmp(o, "https://", 8) == 0 ? o + 8
        : strncmp(o, "http://", 7) == 0               ? o + 7
                                                      : NULL;

    if (rest == NULL || rest[0] == '\0' || strlen(o) > 256 || strpbrk(rest, "/?#@ ") != NULL) {
        err_set(err, errlen,
                "--origin '%.100s' is not an origin such as https://dash.example.com (a scheme and "
                "a host, no path)",
                o);
        return -1;
    }
    for (; *rest != '\0'; rest++)
        if ((unsigned char)*rest < 0x21 || *rest == 0x7f) {
            err_set(err, errlen, "--origin holds a control character");
            return -1;
        }
    return 0;
}

static void wait_for_signal(struct server *s)
{
    while (!stop_requested(&stopping)) {
        sleep_ms(100);
        conns_sweep(s);
    }
}

int serve_run(const struct serve_options *o)
{
    struct sockaddr_storage addr;
    socklen_t alen = sizeof addr;
    struct server s;
    struct MHD_Daemon *d = NULL;
    char err[512], url[128];
    int fd = -1, rc = 2;

    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.sampler.mu, NULL);
    pthread_mutex_init(&s.conns.mu, NULL);
    s.o = o;
    s.log = (struct logger){"cqctl serve", o->log_level, o->log_json, NULL};
    if (o->token != NULL && serve_check_token(o->token, o->token_from, err, sizeof err) != 0)
        goto usage;
    if (parse_listen(o->listen, &addr, &alen, err, sizeof err) != 0) goto usage;
    if (o->origin != NULL && check_origin(o->origin, err, sizeof err) != 0) goto usage;
    s.loopback = is_loopback((struct sockaddr *)&addr);
    if (!s.loopback && o->token == NULL && !o->insecure) {
        err_set(err, sizeof err,
                "--listen %s is not a loopback address: give --token T (or --insecure to serve "
                "it to anyone who can reach it)",
                o->listen);
        goto usage;
    }
    if (pool_init(&s.pool, o, err, sizeof err) != 0) goto usage;
    str_copy(s.where, sizeof s.where, s.pool.conn[0].where);
    rc = 1;
    fd = listen_on(o->listen, &addr, alen, &s.port, err, sizeof err);
    if (fd < 0) goto out;
    set_hosts(&s, &addr);
    snprintf(s.cookie, sizeof s.cookie, COOKIE_BASE "%d", s.port);
    if (sampler_start(&s, err, sizeof err) != 0) goto out;
    d = start_daemon(&s, fd);
    if (d == NULL) {
        err_set(err, sizeof err, "--listen %s: libmicrohttpd could not start", o->listen);
        goto out;
    }
    fd = -1; /* the daemon's now: MHD_stop_daemon closes it */
    page_url(&addr, s.port, url, sizeof url);
    /* Before the line that says where it is: a supervisor or a script that stops it once it
     * has read the line stops it cleanly (exit 0, "stopping"), not by the default action. */
    stop_signals_to(on_signal, 0);
    LOG(&s.log, CQ_LOG_INFO, "the dashboard of redis %s (prefix %s) is at %s%s", s.where,
        s.pool.conn[0].k.prefix, url, o->token ? " (with its token)" : "");
    wait_for_signal(&s);
    LOG(&s.log, CQ_LOG_INFO, "stopping");
    rc = 0;
out:
    if (d != NULL) MHD_stop_daemon(d);
    if (fd >= 0) close(fd);
    sampler_stop(&s.sampler);
    pool_free(&s.pool);
    pthread_mutex_destroy(&s.conns.mu); /* MHD_stop_daemon closed every connection */
    if (rc != 0) fprintf(stderr, "cqctl: serve: %s\n", err);
    return rc;
usage: /* in the words of every other usage error (cli.h): the option, then --help */
    pthread_mutex_destroy(&s.sampler.mu);
    pthread_mutex_destroy(&s.conns.mu);
    fprintf(stderr, "cqctl: %s\nTry 'cqctl serve --help' for more information.\n", err);
    return 2;
}
