/* cqmodule.c - cq's Redis module: CQ.APPLY1 and CQ.TAKE1, the worker's apply and take
 * scripts in C; CQ.ENQUEUE1, a producer's enqueue transaction as one command.
 *
 * DESIGN. What limits a worker is what a job costs Redis (docs/BENCHMARKS.md), and most of
 * that was the Lua interpreter around the commands of the apply and take scripts (common/
 * queue.c): its tables and strings, and each argument turned into a Lua string and back. Each
 * command here does what its script does, with the same arguments and the same reply, and the
 * same commands in the same order through RedisModule_Call: each as the calling user (ACLs
 * hold as they do for a script), errors returned as replies (the script's pcall), writes
 * propagated to replicas and the AOF (Redis wraps them in one MULTI/EXEC, as it does a
 * script's effects). The arguments Redis parsed are handed on as they are, without a copy.
 * One difference: where the script takes each ended record out of the in-flight list with an
 * LREM, the apply takes those of a run that sit at the list's tail in one LRANGE and one RPOP
 * (pop_tail, which says why that leaves the list, and the outcomes found or dropped, as the
 * LREMs would; in Lua the two replies cost more than the LREMs save). Only the commands seen
 * by replicas, the AOF and keyspace notifications differ, and an apply stopped half-way
 * (unpop) deletes and makes again an in-flight list it had emptied. Another: a finished job's
 * status hash and expiry, most of what an apply writes, go through the key API, not as
 * commands (finish_direct, which says what it keeps of the commands: the ACL, replication,
 * keyspace events), and the cancel set's size is read there too (cancel_asked). And who
 * listens for ends is asked from 9 ends, not 32, and not while a "nobody" is kept
 * (find_listeners): fewer INFO and PUBLISH calls than the script's.
 *
 * A worker uses them when its Redis has them and its user may run both (it asks at connect,
 * rconn.h) and the scripts otherwise, so loading the module changes the cost of a job and
 * nothing else; test_queue runs its cases against both. The "1" is the argument format: a
 * change of queue.c's arguments makes a new command (CQ.APPLY2), so that a worker never talks
 * to a module of another format.
 *
 * CQ.ENQUEUE1 (enqueue_command) is the producers' side, used by any enqueue due now whose
 * ids the producer made (queue.c's enqueue_chunk_module), in place of a transaction of
 * an HSET a job: a run's first status hash through the key API, as finish_direct writes
 * them, and the others, the same four fields, as COPYs of it (copy_status).
 *
 * Load: redis-server --loadmodule /usr/lib/<arch>/cq/cq-redis.so (or a loadmodule line in
 * redis.conf). It needs Redis 7.0 or later, and refuses to load on an older one.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rmapi.h"

#define CQ_MODULE_NAME    "cq"
#define CQ_MODULE_VERSION 1
#define EXPIRE_MAX_S      9000000000000000LL /* the most seconds an EXPIRE is given */

/* Strings every outcome uses, made once at load: handed to RedisModule_Call as they are. */
enum word {
    W_STATUS,
    W_STARTED,
    W_FINISHED,
    W_FAILED,
    W_CANCELED,
    W_RETRYING,
    W_WORKER,
    W_STARTED_AT,
    W_ATTEMPTS,
    W_ENDED_AT,
    W_RESULT,
    W_RESULT_JSON,
    W_ERROR,
    W_RECORD,
    W_RETRY_AT,
    W_SCHEDULED_FOR,
    W_QUEUE,
    W_FUNC,
    W_ENQUEUED_AT,
    W_ONE,
    W_LAST, /* "-1": LREM's count, from the tail */
    W_HSET,
    W_PEXPIREAT,
    W_QUEUED,
    W_SADD,
    W_LPUSH,
    W_SCARD,
    W_N
};
static const char *const word_text[W_N] = {
    [W_STATUS] = "status",
    [W_STARTED] = "started",
    [W_FINISHED] = "finished",
    [W_FAILED] = "failed",
    [W_CANCELED] = "canceled",
    [W_RETRYING] = "retrying",
    [W_WORKER] = "worker",
    [W_STARTED_AT] = "started_at",
    [W_ATTEMPTS] = "attempts",
    [W_ENDED_AT] = "ended_at",
    [W_RESULT] = "result",
    [W_RESULT_JSON] = "result_json",
    [W_ERROR] = "error",
    [W_RECORD] = "record",
    [W_RETRY_AT] = "retry_at",
    [W_SCHEDULED_FOR] = "scheduled_for",
    [W_QUEUE] = "queue",
    [W_FUNC] = "func",
    [W_ENQUEUED_AT] = "enqueued_at",
    [W_ONE] = "1",
    [W_LAST] = "-1",
    [W_HSET] = "HSET",
    [W_PEXPIREAT] = "PEXPIREAT",
    [W_QUEUED] = "queued",
    [W_SADD] = "SADD",
    [W_LPUSH] = "LPUSH",
    [W_SCARD] = "SCARD",
};
static RedisModuleString *word[W_N];

/* The fixed arguments (argv[0] is the command's name): as the apply script's ARGV. */
enum arg {
    A_WID = 1,
    A_JOB_T,    /* a job's key, around "%s" */
    A_INF_T,    /* an in-flight list: worker, queue */
    A_STATS,    /* the stats hash */
    A_WORKER,   /* this worker's hash */
    A_FAILED,   /* the failed set */
    A_SCHED,    /* the scheduled set */
    A_DEAD,     /* the dead list */
    A_RTTL,     /* result ttl, seconds */
    A_FTTL,     /* failure ttl, seconds */
    A_ENDED_T,  /* a job's channel, around "%s" */
    A_COUNTS_T, /* a queue's counts hash */
    A_CANCEL,   /* the cancel requests set */
    A_MINUTE,   /* the minute the batch is counted in */
    A_FIRST     /* the first outcome */
};

/* Arguments an outcome kind takes after its letter (queue.c's apply_args). */
static int arity(char kind)
{
    switch (kind) {
    case 'Q': return 1;
    case 'D': return 1;
    case 'S': return 4;
    case 'F':
    case 'J': return 5;
    case 'f':
    case 'j':
    case 'X':
    case 'C': return 6;
    case 'R':
    case 'H': return 8;
    default: return -1;
    }
}

/* A growable byte buffer from the module allocator. */
struct buf {
    char *p;
    size_t len, cap;
};

static void buf_put(struct buf *b, const char *s, size_t n)
{
    if (b->p != NULL && n == 0) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->len + n + 1) cap *= 2;
        b->p = RedisModule_Realloc(b->p, cap);
        b->cap = cap;
    }
    if (n > 0) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* A string's text into b as a message shows it: at most max bytes of it (then "..."), a byte
 * that is not printable ASCII, or a backslash, as \xNN, so that a key or a template with a
 * newline or a NUL in it reads on one line. */
static void put_shown(struct buf *b, const char *s, size_t n, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
        if (c >= 0x20 && c < 0x7f && c != '\\')
            buf_put(b, s + i, 1);
        else
            buf_put(b, e, 4);
    }
    if (i < n) buf_put(b, "...", 3);
}

static void put_str(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

static void put_key(struct buf *b, RedisModuleString *key)
{
    size_t n;
    const char *s = RedisModule_StringPtrLen(key, &n);

    put_shown(b, s, n, 200);
}

/* A queue's ends in this batch, for its counts hash. */
struct ended {
    RedisModuleString *queue;
    long long n;
};

/* One CQ.APPLY1 call. */
struct apply {
    RedisModuleCtx *ctx;
    RedisModuleString **argv;
    int argc;
    struct buf jpre, jpost, cpre, cpost; /* the job key's and channel's text around the id */
    struct buf tmp;
    long long rttl, fttl;
    RedisModuleString *rexp, *fexp; /* PEXPIREAT times, from the server's clock */
    long long rexp_ms;              /* rexp's value */
    int propagating;                /* propagating(): 0 not asked yet, 1 yes, -1 no */
    RedisModuleUser *user;          /* the calling user, once asked (direct_allowed) */
    int user_asked;
    int asked;     /* cancel requests exist: an end looks its id up, and removes its own */
    int listening; /* -1: publish every end; 0: nobody listens; 1: those heard */
    RedisModuleCallReply *heard;
    /* the reply: the 0-based index of an outcome dropped, -1 - the index of one that ended
     * canceled instead (was_canceled), or a status hash not written */
    struct lost {
        long long index;
        char *text; /* NULL for an index */
    } * lost;
    size_t nlost, caplost;
    struct ended *ended;
    size_t nended, capended;
    long long fin, fail, retr, hand, dead, canc;
    unsigned char *gone;  /* by argument index: that outcome's record left its in-flight list
                           * with the run's tail (pop_tail), so it needs no LREM */
    int *popped, npopped; /* those outcomes' argument indexes, the tail's first */
    int run_end;          /* the argument index where the current run of outcomes ends */
    char failed[512];     /* a command the script runs with redis.call failed: the reply */
};

static const char *arg(const struct apply *a, int i, size_t *len)
{
    return RedisModule_StringPtrLen(a->argv[i], len);
}

static void lost_add(struct apply *a, long long index, const char *text)
{
    if (a->nlost == a->caplost) {
        a->caplost = a->caplost ? a->caplost * 2 : 8;
        a->lost = RedisModule_Realloc(a->lost, a->caplost * sizeof *a->lost);
    }
    a->lost[a->nlost].index = index;
    a->lost[a->nlost].text = NULL;
    if (text != NULL) {
        size_t n = strlen(text);
        a->lost[a->nlost].text = RedisModule_Alloc(n + 1);
        memcpy(a->lost[a->nlost].text, text, n + 1);
    }
    a->nlost++;
}

/* Undo a template's doubled '%' into b. */
static void unescape(struct buf *b, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        buf_put(b, s + i, 1);
        if (s[i] == '%' && i + 1 < n && s[i + 1] == '%') i++;
    }
}

/* A template's text before and after its last "%s" (keys_template's form). -1 without one. */
static int around(const char *t, size_t n, struct buf *pre, struct buf *post)
{
    size_t i, at = n;

    for (i = 0; i + 1 < n; i++)
        if (t[i] == '%' && t[i + 1] == 's') at = i;
    if (at == n) return -1;
    unescape(pre, t, at);
    unescape(post, t + at + 2, n - at - 2);
    return 0;
}

/* A template filled with args in order for its "%s", "%%" made '%'; -1 if it has any other
 * conversion or more "%s" than args. */
static int fill(struct buf *b, const char *t, size_t n, const RedisModuleString *const *args,
                int nargs)
{
    size_t i, len;
    int used = 0;

    b->len = 0;
    buf_put(b, "", 0);
    for (i = 0; i < n; i++) {
        if (t[i] != '%') {
            buf_put(b, t + i, 1);
        } else if (i + 1 < n && t[i + 1] == '%') {
            buf_put(b, "%", 1);
            i++;
        } else if (i + 1 < n && t[i + 1] == 's' && used < nargs) {
            const char *s = RedisModule_StringPtrLen(args[used++], &len);
            buf_put(b, s, len);
            i++;
        } else {
            return -1;
        }
    }
    return 0;
}

/* Why fill() refuses template t (n bytes) for nargs arguments, into why: its first '%' that
 * is neither "%%" nor one of its first nargs "%s". */
static void template_fault(const char *t, size_t n, int nargs, struct buf *why)
{
    char text[128];
    size_t i;
    int used = 0;

    for (i = 0; i < n; i++) {
        if (t[i] != '%') continue;
        if (i + 1 < n && (t[i + 1] == '%' || (t[i + 1] == 's' && used < nargs))) {
            used += t[i + 1] == 's';
            i++;
            continue;
        }
        if (i + 1 == n)
            snprintf(text, sizeof text, "ends in a lone '%%'");
        else if (t[i + 1] == 's')
            snprintf(text, sizeof text, "has more than %d %%s (one at byte %zu)", nargs, i);
        else if ((unsigned char)t[i + 1] >= 0x20 && (unsigned char)t[i + 1] < 0x7f)
            snprintf(text, sizeof text, "has '%%%c' at byte %zu", t[i + 1], i);
        else
            snprintf(text, sizeof text, "has '%%\\x%02x' at byte %zu", (unsigned char)t[i + 1], i);
        put_str(why, text);
        return;
    }
    put_str(why, "cannot be filled");
}

/* Reply that the template of argument argi (the what template) cannot be used, and why:
 * before anything is applied. */
static int reply_template(RedisModuleCtx *ctx, const char *what, int argi, RedisModuleString *tmpl,
                          const char *why)
{
    struct buf m = {0};
    char head[96];
    size_t n;
    const char *t = RedisModule_StringPtrLen(tmpl, &n);

    snprintf(head, sizeof head, "apply: the %s template (argument %d), '", what, argi);
    put_str(&m, head);
    put_shown(&m, t, n, 100);
    put_str(&m, "', ");
    put_str(&m, why);
    put_str(&m, ": no outcome applied");
    RedisModule_ReplyWithError(ctx, m.p);
    RedisModule_Free(m.p);
    return REDISMODULE_OK;
}

/* A key named pre + id + post, which the caller frees. */
static RedisModuleString *key_of(struct apply *a, const struct buf *pre, RedisModuleString *id,
                                 const struct buf *post)
{
    size_t len;
    const char *s = RedisModule_StringPtrLen(id, &len);

    a->tmp.len = 0;
    buf_put(&a->tmp, pre->p, pre->len);
    buf_put(&a->tmp, s, len);
    buf_put(&a->tmp, post->p, post->len);
    return RedisModule_CreateString(a->ctx, a->tmp.p, a->tmp.len);
}

static int is_error(RedisModuleCallReply *r)
{
    return r == NULL || RedisModule_CallReplyType(r) == REDISMODULE_REPLY_ERROR;
}

/* An error reply's text ("" for none). */
static const char *error_text(RedisModuleCallReply *r, char *buf, size_t size)
{
    size_t len = 0;
    const char *s = r != NULL ? RedisModule_CallReplyStringPtr(r, &len) : NULL;

    if (s == NULL) s = "the call was refused", len = strlen(s);
    if (len >= size) len = size - 1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return buf;
}

/* Run a command whose reply does not matter. */
static void run(RedisModuleCallReply *r)
{
    if (r != NULL) RedisModule_FreeCallReply(r);
}

/* A command the script runs with redis.call, whose failure ends the script with an error: the
 * first one is kept for the reply, and no further outcome is applied. */
static void must(struct apply *a, RedisModuleCallReply *r, const char *cmd)
{
    char err[256];

    if (is_error(r) && a->failed[0] == '\0')
        snprintf(a->failed, sizeof a->failed, "apply: %s: %s", cmd, error_text(r, err, sizeof err));
    run(r);
}

/* Whether key is of type want or does not exist. */
static int kind_ok(RedisModuleCtx *ctx, RedisModuleString *key, int want)
{
    RedisModuleKey *k = RedisModule_OpenKey(ctx, key, REDISMODULE_READ);
    int t = RedisModule_KeyType(k);

    RedisModule_CloseKey(k);
    return t == REDISMODULE_KEYTYPE_EMPTY || t == want;
}

/* Expire key at its PEXPIREAT time, or after t seconds where that is refused (an ACL): at
 * most 9e15 seconds, beyond any real time, where EXPIRE would refuse more, as the script. */
static void expire(struct apply *a, RedisModuleString *key, long long t, RedisModuleString *at)
{
    RedisModuleCallReply *r = RedisModule_Call(a->ctx, "PEXPIREAT", "!CEss", key, at);
    int refused = is_error(r);

    run(r);
    if (t > EXPIRE_MAX_S) t = EXPIRE_MAX_S;
    if (refused) must(a, RedisModule_Call(a->ctx, "EXPIRE", "!CEsl", key, t), "EXPIRE");
}

static void ttl(struct apply *a, RedisModuleString *key, long long t, RedisModuleString *at)
{
    if (t > 0)
        expire(a, key, t, at);
    else if (t == 0)
        must(a, RedisModule_Call(a->ctx, "DEL", "!CEs", key), "DEL");
    else
        must(a, RedisModule_Call(a->ctx, "PERSIST", "!CEs", key), "PERSIST");
}

/* A status hash that had none of the fields just written (a record pushed by hand) gets the
 * record's func, queue and enqueued_at too. */
static void record_fields(struct apply *a, RedisModuleString *jk, RedisModuleString *q,
                          RedisModuleString *rec)
{
    size_t len;
    RedisModuleString *f[6];
    char at[64];
    int n = 0;
    const char *s = RedisModule_StringPtrLen(rec, &len);
    char *copy = RedisModule_Alloc(len + 1); /* cJSON reads up to a NUL */
    cJSON *j;

    memcpy(copy, s, len);
    copy[len] = '\0';
    j = cJSON_Parse(copy);
    RedisModule_Free(copy);
    f[n++] = word[W_QUEUE];
    f[n++] = q;
    if (cJSON_IsObject(j)) {
        cJSON *fn = cJSON_GetObjectItemCaseSensitive(j, "func");
        cJSON *eq = cJSON_GetObjectItemCaseSensitive(j, "enqueued_at");
        if (cJSON_IsString(fn)) {
            f[n++] = word[W_FUNC];
            f[n++] = RedisModule_CreateString(a->ctx, fn->valuestring, strlen(fn->valuestring));
        }
        if (cJSON_IsNumber(eq)) {
            int m = snprintf(at, sizeof at, "%.6f", eq->valuedouble);
            f[n++] = word[W_ENQUEUED_AT];
            f[n++] = RedisModule_CreateString(a->ctx, at, m > 0 ? (size_t)m : 0);
        }
    }
    cJSON_Delete(j);
    must(a, RedisModule_Call(a->ctx, "HSET", "!CEsv", jk, f, (size_t)n), "HSET");
    for (; n > 2; n -= 2) RedisModule_FreeString(a->ctx, f[n - 1]);
}

/* After an HSET of nfields fields that replied r (freed here): 0 when the hash could not be
 * written. */
static int hset_done(struct apply *a, RedisModuleString *jk, int nfields, RedisModuleCallReply *r,
                     RedisModuleString *q, RedisModuleString *rec)
{
    char err[256], text[512];
    size_t klen;
    const char *k = RedisModule_StringPtrLen(jk, &klen);

    if (is_error(r) || RedisModule_CallReplyType(r) != REDISMODULE_REPLY_INTEGER) {
        snprintf(text, sizeof text, "status hash %.*s: %s", (int)klen, k,
                 error_text(r, err, sizeof err));
        run(r);
        lost_add(a, 0, text);
        return 0;
    }
    if (RedisModule_CallReplyInteger(r) == nfields) record_fields(a, jk, q, rec);
    run(r);
    return 1;
}

static int hset(struct apply *a, RedisModuleString *jk, RedisModuleString **h, int n,
                RedisModuleString *q, RedisModuleString *rec)
{
    RedisModuleCallReply *r = RedisModule_Call(a->ctx, "HSET", "!CEsv", jk, h, (size_t)n);
    return hset_done(a, jk, n / 2, r, q, rec);
}

/* The fields of a start: worker, started_at, attempts. */
static int starts(struct apply *a, RedisModuleString **h, int n, RedisModuleString *st,
                  RedisModuleString *att)
{
    h[n++] = word[W_WORKER];
    h[n++] = a->argv[A_WID];
    h[n++] = word[W_STARTED_AT];
    h[n++] = st;
    h[n++] = word[W_ATTEMPTS];
    h[n++] = att;
    return n;
}

/* A field's number in an INFO reply, or -1. */
static long long info_count(const char *info, size_t len, const char *name)
{
    size_t n = strlen(name);
    const char *p = info, *end = info + len;

    while (p != NULL && p < end) {
        if ((p == info || p[-1] == '\n') && (size_t)(end - p) > n && memcmp(p, name, n) == 0 &&
            p[n] >= '0' && p[n] <= '9')
            return strtoll(p + n, NULL, 10);
        p = memchr(p, '\n', (size_t)(end - p));
        if (p != NULL) p++;
    }
    return -1;
}

static void glob_escape(struct buf *b, const struct buf *s)
{
    size_t i;

    for (i = 0; i < s->len; i++) {
        if (strchr("*?[]\\", s->p[i]) != NULL) buf_put(b, "\\", 1);
        buf_put(b, s->p + i, 1);
    }
}

/* Answers the module keeps between calls, and what makes it forget them (command_seen,
 * role_changed, below).
 *
 * nobody_listens: INFO stats found no channel and no pattern subscribed on the server. Kept
 * until a SUBSCRIBE, a PSUBSCRIBE or an EXEC. Only "nobody" is kept: which channels are
 * heard, where some are, changes with every waiter.
 *
 * repl_known: what INFO replication said last. 0 nothing known; 1 a replica or a replication
 * backlog (kept until repl_asked_ms + 1 s: a backlog outlives its replicas by
 * repl-backlog-ttl, and a stale yes only costs the writes' copies); -1 neither, kept until
 * one may come. Only two things make one: a SYNC or PSYNC (a replica attaching: the backlog
 * is made and the replica listed as the command runs) and a change of this server's role
 * (REPLICAOF, FAILOVER: a replica keeps a backlog).
 *
 * The command filter and the event see each of those before it takes effect, so a kept
 * answer is never used past one. */
static int nobody_listens;
static int repl_known;
static long long repl_asked_ms;
static int keeping; /* 0 where a command the filter looks for is renamed: nothing is kept */

/* Who listens for ends (the script's comment in queue.c says why it asks), for a batch of
 * LISTENERS_FROM ends or more: from INFO stats, none, or up to 64 channels named by PUBSUB
 * CHANNELS. The script asks from 32 ends; here the question costs Redis less (INFO stats
 * through RedisModule_Call, about 36,000 instructions, against 110,000 in Lua) and a PUBLISH
 * nobody hears about as much (4,200), so it pays from 9 ends. */
#define LISTENERS_FROM 9

static void find_listeners(struct apply *a)
{
    RedisModuleCallReply *r;
    long long nch, npat;
    size_t len;
    const char *s;

    if (nobody_listens) {
        a->listening = 0;
        return;
    }
    r = RedisModule_Call(a->ctx, "INFO", "CEc", "stats");
    a->listening = -1;
    if (is_error(r) || RedisModule_CallReplyType(r) != REDISMODULE_REPLY_STRING) {
        run(r);
        return;
    }
    s = RedisModule_CallReplyStringPtr(r, &len);
    nch = info_count(s, len, "pubsub_channels:");
    npat = info_count(s, len, "pubsub_patterns:");
    run(r);
    if (nch == 0 && npat == 0) {
        a->listening = 0;
        /* Not kept from inside a MULTI or a script: a SUBSCRIBE queued after this apply in
         * the same EXEC runs there, past the filter. */
        if (keeping &&
            !(RedisModule_GetContextFlags(a->ctx) &
              (REDISMODULE_CTX_FLAGS_MULTI | REDISMODULE_CTX_FLAGS_LUA)))
            nobody_listens = 1;
    } else if (nch >= 0 && nch <= 64 && npat == 0) {
        RedisModuleCallReply *ch;
        a->tmp.len = 0;
        glob_escape(&a->tmp, &a->cpre);
        buf_put(&a->tmp, "*", 1);
        glob_escape(&a->tmp, &a->cpost);
        ch = RedisModule_Call(a->ctx, "PUBSUB", "CEcb", "CHANNELS", a->tmp.p, a->tmp.len);
        if (!is_error(ch) && RedisModule_CallReplyType(ch) == REDISMODULE_REPLY_ARRAY) {
            a->listening = 1;
            a->heard = ch;
        } else {
            run(ch);
        }
    }
}

static int heard(const struct apply *a, const char *ch, size_t n)
{
    size_t i, m = RedisModule_CallReplyLength(a->heard), len;

    for (i = 0; i < m; i++) {
        const char *s =
            RedisModule_CallReplyStringPtr(RedisModule_CallReplyArrayElement(a->heard, i), &len);
        if (s != NULL && len == n && memcmp(s, ch, n) == 0) return 1;
    }
    return 0;
}

/* A job ended: its channel told where someone may listen (unless told: the cancel that ended
 * it published it), its queue's count of ends raised. (Its cancel request was dropped before,
 * in was_canceled.) */
static void ends(struct apply *a, RedisModuleString *q, RedisModuleString *id, int status, int told)
{
    size_t i, len, qlen;
    const char *qs;

    if (a->listening != 0 && !told) {
        RedisModuleString *ch = key_of(a, &a->cpre, id, &a->cpost);
        const char *c = RedisModule_StringPtrLen(ch, &len);
        if (a->listening < 0 || heard(a, c, len))
            must(a, RedisModule_Call(a->ctx, "PUBLISH", "!CEss", ch, word[status]), "PUBLISH");
        RedisModule_FreeString(a->ctx, ch);
    }
    qs = RedisModule_StringPtrLen(q, &qlen);
    for (i = 0; i < a->nended; i++) {
        const char *s = RedisModule_StringPtrLen(a->ended[i].queue, &len);
        if (len == qlen && memcmp(s, qs, len) == 0) break;
    }
    if (i == a->nended) {
        if (a->nended == a->capended) {
            a->capended = a->capended ? a->capended * 2 : 4;
            a->ended = RedisModule_Realloc(a->ended, a->capended * sizeof *a->ended);
        }
        a->ended[i].queue = q;
        a->ended[i].n = 0;
        a->nended++;
    }
    a->ended[i].n++;
}

/* The calling client's user, found by its id, or NULL. A call from another module (or a
 * script it started) runs on a client without a user, where RedisModule_GetCurrentUserName
 * would read one that is not there; no call from a script or another module has a client of
 * its own to be found, so none of them gets a user here. Freed with
 * RedisModule_FreeModuleUser. */
static RedisModuleUser *calling_user(RedisModuleCtx *ctx)
{
    unsigned long long id = RedisModule_GetClientId(ctx);
    RedisModuleString *name = id != 0 ? RedisModule_GetClientUserNameById(ctx, id) : NULL;
    RedisModuleUser *u = name != NULL ? RedisModule_GetModuleUserFromUserName(name) : NULL;

    if (name != NULL) RedisModule_FreeString(ctx, name);
    return u;
}

/* The calling user, looked up once a call (calling_user). */
static RedisModuleUser *apply_user(struct apply *a)
{
    if (!a->user_asked) {
        a->user = calling_user(a->ctx); /* none: the commands, checked as the caller */
        a->user_asked = 1;
    }
    return a->user;
}

/* Whether the user u may run the command argv (argc strings, keys included). */
static int user_may(RedisModuleUser *u, RedisModuleString **argv, int argc)
{
    return RedisModule_ACLCheckCommandPermissions(u, argv, argc) == REDISMODULE_OK;
}

/* A finished job's status hash and its TTL, the writes of nearly every outcome, through the
 * key API instead of RedisModule_Call: a call's own cost (a client set up and reset, the
 * arguments copied, the command looked up, the reply made and read) was about 2,400
 * instructions of Redis, and PEXPIREAT's parsing and rewriting of its time 1,300 more
 * (docs/BENCHMARKS.md). What the calls did, this does too:
 * - the ACL: each job's HSET and PEXPIREAT, with its key, are checked as the commands would
 *   be, for the calling user; where either is refused, the caller takes the RedisModule_Call
 *   path, whose error reply (and ACL log entry) are the ones to give;
 * - propagation: HSET and PEXPIREAT with the same arguments go to replicas and the AOF, in
 *   order with the called commands (both go to the same list, wrapped in one MULTI/EXEC);
 * - the expiry: the PEXPIREAT time itself, set as is;
 * - keyspace events ("hset", "expire") and WATCH (the key is signalled when it is closed).
 * What differs: INFO commandstats counts no HSET or PEXPIREAT for these, MONITOR does not
 * show them, and other modules' command filters do not see them; the writes count as changes
 * for `save` points only where they are propagated (the apply's commands count, a few a
 * batch); a status key of another type, left to HSET's WRONGTYPE, is signalled to WATCH. */
static int direct_allowed(struct apply *a, RedisModuleString *jk)
{
    RedisModuleString *h[4] = {word[W_HSET], jk, word[W_STATUS], word[W_FINISHED]};
    RedisModuleString *e[3] = {word[W_PEXPIREAT], jk, a->rexp};
    RedisModuleUser *u = apply_user(a);

    return u != NULL && user_may(u, h, 4) && user_may(u, e, 3);
}

/* Whether the cancel set has members (a->asked: an end then looks its id up), once a call,
 * through the key API as finish_direct writes, without a call's own cost (finish_direct
 * says it). The calling user's ACL is checked as the command's would be; where
 * it refuses, where the call has no user, or where the key is of another type, SCARD runs as a
 * command, whose error stops the apply as the script's redis.call does. */
static void cancel_asked(struct apply *a)
{
    RedisModuleString *c[2] = {word[W_SCARD], a->argv[A_CANCEL]};
    RedisModuleUser *u = apply_user(a);
    RedisModuleCallReply *r;

    if (u != NULL && user_may(u, c, 2)) {
        RedisModuleKey *k = RedisModule_OpenKey(a->ctx, a->argv[A_CANCEL], REDISMODULE_READ);
        int t = RedisModule_KeyType(k);
        a->asked = t == REDISMODULE_KEYTYPE_SET && RedisModule_ValueLength(k) > 0;
        RedisModule_CloseKey(k);
        if (t == REDISMODULE_KEYTYPE_EMPTY || t == REDISMODULE_KEYTYPE_SET) return;
    }
    r = RedisModule_Call(a->ctx, "SCARD", "CEs", a->argv[A_CANCEL]);
    a->asked = !is_error(r) && RedisModule_CallReplyType(r) == REDISMODULE_REPLY_INTEGER &&
        RedisModule_CallReplyInteger(r) > 0;
    must(a, r, "SCARD");
}

/* The command filter: every client command, before it runs (not the module's own calls). It
 * forgets what the module keeps between calls where a command could make it untrue: a SYNC
 * or PSYNC (a replica attaching) forgets repl_known's "no"; a SUBSCRIBE or PSUBSCRIBE, and
 * an EXEC (a SUBSCRIBE queued in a MULTI runs there), forget nobody_listens. Where neither
 * a "no" nor a "nobody" is kept, it returns at once; else it compares the command's name. */
static void command_seen(RedisModuleCommandFilterCtx *f)
{
    size_t len;
    const char *s;

    if ((repl_known >= 0 && !nobody_listens) || RedisModule_CommandFilterArgsCount(f) < 1) return;
    s = RedisModule_StringPtrLen(RedisModule_CommandFilterArgGet(f, 0), &len);
    if ((len == 4 && strncasecmp(s, "sync", 4) == 0) ||
        (len == 5 && strncasecmp(s, "psync", 5) == 0)) {
        if (repl_known < 0) repl_known = 0;
    } else if ((len == 4 && strncasecmp(s, "exec", 4) == 0) ||
               (len == 9 && strncasecmp(s, "subscribe", 9) == 0) ||
               (len == 10 && strncasecmp(s, "psubscribe", 10) == 0)) {
        nobody_listens = 0;
    }
}

static void role_changed(RedisModuleCtx *ctx, RedisModuleEvent e, uint64_t sub, void *data)
{
    (void)ctx;
    (void)e;
    (void)sub;
    (void)data;
    repl_known = 0;
}

/* Whether writes go anywhere beyond this server: the AOF, or replicas (Redis's own test
 * before it propagates, in shouldPropagate: a replication backlog, kept for replicas that
 * reconnect, counts as replicas). Decided once a command (*known: its answer, 0 until asked),
 * from INFO replication where repl_known has no answer: nothing else runs while a command
 * does. Where nothing would receive them, the writes are not handed to
 * RedisModule_Replicate, whose command lookup and argument copies cost 2,900 instructions
 * each and would be thrown away; INFO replication costs 13,000, so it is not asked every
 * command. */
static int propagating(RedisModuleCtx *ctx, int *known)
{
    if (*known == 0) {
        *known = 1;
        if (RedisModule_GetContextFlags(ctx) & REDISMODULE_CTX_FLAGS_AOF) return 1;
        if (repl_known > 0 && RedisModule_Milliseconds() - repl_asked_ms >= 1000) repl_known = 0;
        if (repl_known == 0) {
            /* Not as the calling user: what is asked is the server's business, not the
             * user's. An error leaves it a yes, asked again next time. */
            RedisModuleCallReply *r = RedisModule_Call(ctx, "INFO", "Ec", "replication");
            if (!is_error(r) && RedisModule_CallReplyType(r) == REDISMODULE_REPLY_STRING) {
                size_t len;
                const char *s = RedisModule_CallReplyStringPtr(r, &len);
                int none = info_count(s, len, "connected_slaves:") == 0 &&
                    info_count(s, len, "repl_backlog_active:") == 0;
                if (none) *known = -1;
                if (keeping) {
                    repl_known = none ? -1 : 1;
                    repl_asked_ms = RedisModule_Milliseconds();
                }
            }
            run(r);
        } else if (repl_known < 0) {
            *known = -1;
        }
    }
    return *known > 0;
}

/* The fields h (n strings) set in the open hash k: how many of them it had already. A finish
 * has 6 or 12; those go in one RedisModule_HashSet call, which pays its own cost once. */
static int hash_set(RedisModuleKey *k, RedisModuleString **h, int n)
{
    int i, updated = 0;

    if (n == 6)
        return RedisModule_HashSet(k, REDISMODULE_HASH_NONE, h[0], h[1], h[2], h[3], h[4], h[5],
                                   NULL);
    if (n == 12)
        return RedisModule_HashSet(k, REDISMODULE_HASH_NONE, h[0], h[1], h[2], h[3], h[4], h[5],
                                   h[6], h[7], h[8], h[9], h[10], h[11], NULL);
    for (i = 0; i + 1 < n; i += 2)
        updated += RedisModule_HashSet(k, REDISMODULE_HASH_NONE, h[i], h[i + 1], NULL);
    return updated;
}

/* HSET jk h (n strings) then PEXPIREAT jk at the result TTL, for a job finished on its first
 * run: 1 when done, 0 when nothing was written and the caller must call the commands. */
static int finish_direct(struct apply *a, RedisModuleString *jk, RedisModuleString **h, int n,
                         RedisModuleString *q, RedisModuleString *rec)
{
    RedisModuleKey *k;
    int t, updated;

    if (a->rttl <= 0 || !direct_allowed(a, jk)) return 0;
    k = RedisModule_OpenKey(a->ctx, jk, REDISMODULE_WRITE);
    t = RedisModule_KeyType(k);
    if (t != REDISMODULE_KEYTYPE_EMPTY && t != REDISMODULE_KEYTYPE_HASH) {
        RedisModule_CloseKey(k); /* HSET's WRONGTYPE is the error to report */
        return 0;
    }
    updated = hash_set(k, h, n);
    if (propagating(a->ctx, &a->propagating))
        RedisModule_Replicate(a->ctx, "HSET", "sv", jk, h, (size_t)n);
    RedisModule_NotifyKeyspaceEvent(a->ctx, REDISMODULE_NOTIFY_HASH, "hset", jk);
    if (updated == 0) { /* every field new: HSET's reply would have been n / 2 */
        RedisModule_CloseKey(k);
        record_fields(a, jk, q, rec);
        k = RedisModule_OpenKey(a->ctx, jk, REDISMODULE_WRITE);
    }
    if (a->rexp_ms <= RedisModule_Milliseconds() ||
        RedisModule_KeyType(k) != REDISMODULE_KEYTYPE_HASH) {
        RedisModule_CloseKey(k); /* a PEXPIREAT in the past deletes: the command does that */
        expire(a, jk, a->rttl, a->rexp);
        return 1;
    }
    RedisModule_SetAbsExpire(k, a->rexp_ms);
    if (propagating(a->ctx, &a->propagating))
        RedisModule_Replicate(a->ctx, "PEXPIREAT", "ss", jk, a->rexp);
    RedisModule_NotifyKeyspaceEvent(a->ctx, REDISMODULE_NOTIFY_GENERIC, "expire", jk);
    RedisModule_CloseKey(k);
    return 1;
}

/* The same through the commands, for any finish (first: its first run, whose result fields
 * replace no error of an earlier one). */
static void finish_called(struct apply *a, RedisModuleString *jk, RedisModuleString **h, int n,
                          int first, RedisModuleString *q, RedisModuleString *rec)
{
    RedisModuleCallReply *r = RedisModule_Call(a->ctx, "HSET", "!CEsv", jk, h, (size_t)n);
    int nf = n / 2;

    if ((!is_error(r) && RedisModule_CallReplyType(r) == REDISMODULE_REPLY_INTEGER &&
         RedisModule_CallReplyInteger(r) < nf)
            ? (run(r), 1)
            : hset_done(a, jk, nf, r, q, rec)) {
        if (!first)
            must(a, RedisModule_Call(a->ctx, "HDEL", "!CEsss", jk, word[W_ERROR], word[W_RETRY_AT]),
                 "HDEL");
        if (a->rttl > 0)
            expire(a, jk, a->rttl, a->rexp);
        else
            ttl(a, jk, a->rttl, NULL);
    }
}

/* Whether cqctl cancel ended job id (status hash jk) while this worker held it (taken, its
 * status still queued): its status is canceled, and its id in the cancel set. Asked only where
 * the set is not empty (a->asked). An end's id (ending) leaves the set here, and SREM's reply
 * says whether it was there, so that an end costs no call more; a start's or a retry's stays
 * (SISMEMBER), as in the script. A refused SREM or SISMEMBER stops the apply, as the script's
 * redis.call; the HGET is the script's pcall. */
static int was_canceled(struct apply *a, RedisModuleString *jk, RedisModuleString *id, int ending)
{
    RedisModuleCallReply *r = ending
        ? RedisModule_Call(a->ctx, "SREM", "!CEss", a->argv[A_CANCEL], id)
        : RedisModule_Call(a->ctx, "SISMEMBER", "CEss", a->argv[A_CANCEL], id);
    int yes = !is_error(r) && RedisModule_CallReplyType(r) == REDISMODULE_REPLY_INTEGER &&
        RedisModule_CallReplyInteger(r) == 1;
    size_t len;
    const char *s;

    must(a, r, ending ? "SREM" : "SISMEMBER");
    if (!yes) return 0;
    r = RedisModule_Call(a->ctx, "HGET", "CEss", jk, word[W_STATUS]);
    s = !is_error(r) && RedisModule_CallReplyType(r) == REDISMODULE_REPLY_STRING
        ? RedisModule_CallReplyStringPtr(r, &len)
        : NULL;
    yes = s != NULL && len == 8 && memcmp(s, "canceled", 8) == 0;
    run(r);
    return yes;
}

/* A canceled end: the worker's own (C), or any end of a job was_canceled found, which the
 * cancel published already (told). att: the attempts to write with a start. */
static void cancels(struct apply *a, RedisModuleString *q, RedisModuleString *id,
                    RedisModuleString *jk, int b, RedisModuleString *att, int told)
{
    RedisModuleString *rec = a->argv[b + 1], *at = a->argv[b + 4], *st = a->argv[b + 5], *h[10];
    size_t stlen;
    int n = 0;

    RedisModule_StringPtrLen(st, &stlen);
    h[n++] = word[W_STATUS];
    h[n++] = word[W_CANCELED];
    h[n++] = word[W_ENDED_AT];
    h[n++] = at;
    if (stlen > 0) n = starts(a, h, n, st, att);
    if (hset(a, jk, h, n, q, rec)) {
        must(a,
             RedisModule_Call(a->ctx, "HDEL", "!CEssss", jk, word[W_RETRY_AT], word[W_ERROR],
                              word[W_SCHEDULED_FOR]),
             "HDEL");
        ttl(a, jk, a->fttl, a->fexp);
    }
    a->canc++;
    ends(a, q, id, W_CANCELED, told);
}

/* One outcome other than Q, S and D, whose record has left the in-flight list: its status
 * hash, its sets, its counters. i: its index in the reply. */
static void ended_one(struct apply *a, int b, RedisModuleString *q, long long i)
{
    char kind = RedisModule_StringPtrLen(a->argv[b], NULL)[0];
    RedisModuleString *rec = a->argv[b + 1], *id = a->argv[b + 2], *text = a->argv[b + 3];
    RedisModuleString *at = a->argv[b + 4], *st = a->argv[b + 5], *h[16];
    RedisModuleString *jk = key_of(a, &a->jpre, id, &a->jpost);
    size_t stlen;
    int n = 0;

    RedisModule_StringPtrLen(st, &stlen);
    if (a->asked && was_canceled(a, jk, id, kind != 'R' && kind != 'H')) {
        if (kind != 'C') lost_add(a, -1 - i, NULL);
        if (kind == 'R' || kind == 'H') /* a retry's id was left in the set: it ends here */
            must(a, RedisModule_Call(a->ctx, "SREM", "!CEss", a->argv[A_CANCEL], id), "SREM");
        cancels(a, q, id, jk, b, kind == 'F' || kind == 'J' ? word[W_ONE] : a->argv[b + 6], 1);
    } else if (kind == 'F' || kind == 'f' || kind == 'J' || kind == 'j') {
        int first = kind == 'F' || kind == 'J';
        h[n++] = word[W_STATUS];
        h[n++] = word[W_FINISHED];
        h[n++] = word[W_ENDED_AT];
        h[n++] = at;
        h[n++] = word[kind == 'F' || kind == 'f' ? W_RESULT : W_RESULT_JSON];
        h[n++] = text;
        if (stlen > 0) {
            h[n++] = word[W_WORKER];
            h[n++] = a->argv[A_WID];
            h[n++] = word[W_STARTED_AT];
            h[n++] = st;
            h[n++] = word[W_ATTEMPTS];
            h[n++] = first ? word[W_ONE] : a->argv[b + 6];
        }
        if (!first || !finish_direct(a, jk, h, n, q, rec))
            finish_called(a, jk, h, n, first, q, rec);
        a->fin++;
        ends(a, q, id, W_FINISHED, 0);
    } else if (kind == 'X') {
        h[n++] = word[W_STATUS];
        h[n++] = word[W_FAILED];
        h[n++] = word[W_ENDED_AT];
        h[n++] = at;
        h[n++] = word[W_ERROR];
        h[n++] = text;
        h[n++] = word[W_RECORD];
        h[n++] = rec;
        if (stlen > 0) {
            n = starts(a, h, n, st, a->argv[b + 6]);
        } else {
            h[n++] = word[W_WORKER];
            h[n++] = a->argv[A_WID];
            h[n++] = word[W_ATTEMPTS];
            h[n++] = a->argv[b + 6];
        }
        if (hset(a, jk, h, n, q, rec)) {
            must(a, RedisModule_Call(a->ctx, "HDEL", "!CEss", jk, word[W_RETRY_AT]), "HDEL");
            ttl(a, jk, a->fttl, a->fexp);
        }
        if (a->fttl != 0) /* a status dropped at once leaves nothing for the set to list */
            must(a, RedisModule_Call(a->ctx, "ZADD", "!CEsss", a->argv[A_FAILED], at, id), "ZADD");
        a->fail++;
        ends(a, q, id, W_FAILED, 0);
    } else if (kind == 'C') {
        cancels(a, q, id, jk, b, a->argv[b + 6], 0);
    } else { /* R, H */
        must(a,
             RedisModule_Call(a->ctx, "ZADD", "!CEsss", a->argv[A_SCHED], a->argv[b + 7],
                              a->argv[b + 8]),
             "ZADD");
        h[n++] = word[W_STATUS];
        h[n++] = word[W_RETRYING];
        h[n++] = word[W_ERROR];
        h[n++] = text;
        h[n++] = word[W_RETRY_AT];
        h[n++] = a->argv[b + 7];
        if (stlen > 0) n = starts(a, h, n, st, a->argv[b + 6]);
        hset(a, jk, h, n, q, rec);
        if (kind == 'R')
            a->retr++;
        else
            a->hand++;
    }
    RedisModule_FreeString(a->ctx, jk);
}

/* The outcomes' kinds and arities, and the keys they write: -1 with the error replied. */
static int check(struct apply *a)
{
    static const struct {
        char kind; /* 0: always */
        int arg, type;
        const char *what;
    } dests[] = {
        {'X', A_FAILED, REDISMODULE_KEYTYPE_ZSET, "failed set"},
        {'R', A_SCHED, REDISMODULE_KEYTYPE_ZSET, "scheduled set"},
        {'H', A_SCHED, REDISMODULE_KEYTYPE_ZSET, "scheduled set"},
        {'D', A_DEAD, REDISMODULE_KEYTYPE_LIST, "dead list"},
        {0, A_STATS, REDISMODULE_KEYTYPE_HASH, "stats hash"},
        {0, A_WORKER, REDISMODULE_KEYTYPE_HASH, "worker hash"},
    };
    char need[256] = {0}, msg[512];
    int b, nend = 0;
    size_t i, len;

    for (b = A_FIRST; b < a->argc;) {
        const char *k = arg(a, b, &len);
        int n = len == 1 ? arity(k[0]) : -1;
        if (n < 0) {
            snprintf(msg, sizeof msg, "apply: unknown outcome kind %.*s",
                     (int)(len > 64 ? 64 : len), k);
            RedisModule_ReplyWithError(a->ctx, msg);
            return -1;
        }
        if (b == A_FIRST && k[0] != 'Q') {
            RedisModule_ReplyWithError(a->ctx, "apply: the first outcome names no queue");
            return -1;
        }
        if (b + n >= a->argc) {
            snprintf(msg, sizeof msg, "apply: outcome %c at argument %d lacks arguments", k[0], b);
            RedisModule_ReplyWithError(a->ctx, msg);
            return -1;
        }
        need[(unsigned char)k[0]] = 1;
        nend += strchr("FfJjXC", k[0]) != NULL;
        b += n + 1;
    }
    for (i = 0; i < sizeof dests / sizeof dests[0]; i++) {
        if (dests[i].kind != 0 && !need[(unsigned char)dests[i].kind]) continue;
        if (kind_ok(a->ctx, a->argv[dests[i].arg], dests[i].type)) continue;
        {
            const char *key = arg(a, dests[i].arg, &len);
            snprintf(msg, sizeof msg,
                     "%s %.*s has another type: remove or rename it; no outcome applied",
                     dests[i].what, (int)(len > 300 ? 300 : len), key);
        }
        RedisModule_ReplyWithError(a->ctx, msg);
        return -1;
    }
    return nend;
}

static long long arg_ll(struct apply *a, int i)
{
    return strtoll(RedisModule_StringPtrLen(a->argv[i], NULL), NULL, 10);
}

/* A counts hash's first ends of a minute: its minutes from 122 to 61 before go (HDEL), as the
 * apply script does (queue.c: with the hash's expiry, every minute older than an hour). */
static void prune_counts(struct apply *a, RedisModuleString *ck)
{
    RedisModuleString *old[62];
    long long m = arg_ll(a, A_MINUTE);
    size_t i;

    for (i = 0; i < 62; i++)
        old[i] = RedisModule_CreateStringFromLongLong(a->ctx, m - 122 + (long long)i);
    must(a, RedisModule_Call(a->ctx, "HDEL", "!CEsv", ck, old, (size_t)62), "HDEL");
    for (i = 0; i < 62; i++) RedisModule_FreeString(a->ctx, old[i]);
}

static void counter(struct apply *a, int key, const char *field, long long n)
{
    if (n > 0)
        must(a, RedisModule_Call(a->ctx, "HINCRBY", "!CEscl", a->argv[key], field, n), "HINCRBY");
}

static int is_removal(char kind)
{
    return kind != 'Q' && kind != 'S';
}

/* The outcomes from argument from to the end of their run (the next Q) that take a record out
 * of the in-flight list inf, at once where they can: the records at the list's tail that are
 * theirs go in one RPOP, and those outcomes are marked gone. The worker sends ends in the
 * order it took the jobs, and took them from the tail, so in the common case every one is
 * there: one LRANGE and one RPOP for the run in place of an LREM each (5,400 instructions a
 * job, 2,400 of them RedisModule_Call's). Each tail element, from the last, is matched to the
 * earliest outcome not matched yet with the same record, and the matching stops at the first
 * that has none, so that what leaves the list, and which outcomes find their record, are
 * exactly what the LREMs in order would have done; the rest go by LREM as before. A refused
 * LRANGE or RPOP (an ACL without them) leaves it all to the LREMs. */
static void pop_tail(struct apply *a, RedisModuleString *inf, int from)
{
    RedisModuleCallReply *r;
    int b, k = 0, lo, s = 0, *at;
    size_t n, t;

    for (b = from; b < a->argc && RedisModule_StringPtrLen(a->argv[b], NULL)[0] != 'Q';
         b += arity(RedisModule_StringPtrLen(a->argv[b], NULL)[0]) + 1)
        if (is_removal(RedisModule_StringPtrLen(a->argv[b], NULL)[0])) k++;
    a->run_end = b;
    if (k < 2) return; /* one LREM costs less than an LRANGE and an RPOP */
    r = RedisModule_Call(a->ctx, "LRANGE", "CEsll", inf, (long long)-k, -1LL);
    if (is_error(r) || RedisModule_CallReplyType(r) != REDISMODULE_REPLY_ARRAY) {
        run(r);
        return;
    }
    at = RedisModule_Alloc(sizeof *at * (size_t)k);
    a->popped = RedisModule_Realloc(a->popped, sizeof *a->popped * (size_t)k);
    k = 0;
    for (b = from; b < a->run_end; b += arity(RedisModule_StringPtrLen(a->argv[b], NULL)[0]) + 1)
        if (is_removal(RedisModule_StringPtrLen(a->argv[b], NULL)[0])) at[k++] = b;
    n = RedisModule_CallReplyLength(r);
    for (t = n, lo = 0; t-- > 0;) {
        size_t len, rlen;
        const char *e =
            RedisModule_CallReplyStringPtr(RedisModule_CallReplyArrayElement(r, t), &len);
        int m;
        for (m = lo; m < k; m++) {
            const char *rec;
            if (a->gone[at[m]]) continue;
            rec = RedisModule_StringPtrLen(a->argv[at[m] + 1], &rlen);
            if (e != NULL && rlen == len && memcmp(rec, e, len) == 0) break;
        }
        if (m == k) break;
        a->gone[at[m]] = 1;
        a->popped[s++] = at[m];
        while (lo < k && a->gone[at[lo]]) lo++;
    }
    run(r);
    if (s > 0) {
        r = RedisModule_Call(a->ctx, "RPOP", "!CEsl", inf, (long long)s);
        if (is_error(r)) {
            while (k > 0) a->gone[at[--k]] = 0;
            s = 0;
        }
        run(r);
    }
    a->npopped = s;
    RedisModule_Free(at);
}

/* The apply stops at argument b (a command that must not fail did): the records pop_tail took
 * out for outcomes after b go back to the in-flight list's tail, in their order, where the
 * LREMs not run would have left them, so that the worker's next try finds them. The RPUSH
 * goes without the user's ACL ("C"): it only undoes this command's own RPOP of the same key,
 * and a user whose ACL lacked RPUSH must not lose those records. Nor can it fail otherwise:
 * the key is the list they came from, or gone with them, and a module's call is not refused
 * for memory. */
static void unpop(struct apply *a, RedisModuleString *inf, int b)
{
    RedisModuleString **v;
    int j, n = 0;

    if (a->npopped == 0) return;
    v = RedisModule_Alloc(sizeof *v * (size_t)a->npopped);
    for (j = a->npopped - 1; j >= 0; j--)
        if (a->popped[j] > b) v[n++] = a->argv[a->popped[j] + 1];
    if (n > 0) must(a, RedisModule_Call(a->ctx, "RPUSH", "!Esv", inf, v, (size_t)n), "RPUSH");
    RedisModule_Free(v);
    a->npopped = 0;
}

/* Whether a start mark's record is one that pop_tail took out of the list for an outcome after
 * it (argument b): the LREMs in order would still have left it there for the mark. */
static int popped_later(const struct apply *a, int b, RedisModuleString *rec)
{
    size_t len, rlen;
    const char *s = RedisModule_StringPtrLen(rec, &len);
    int c;

    for (c = b + arity('S') + 1; c < a->run_end;
         c += arity(RedisModule_StringPtrLen(a->argv[c], NULL)[0]) + 1) {
        const char *r;
        if (!a->gone[c]) continue;
        r = RedisModule_StringPtrLen(a->argv[c + 1], &rlen);
        if (rlen == len && memcmp(r, s, len) == 0) return 1;
    }
    return 0;
}

/* Every outcome in order. 0, or -1 with the error replied (a command that must not fail did:
 * the script's redis.call). */
static int apply_all(struct apply *a)
{
    RedisModuleString *q = NULL, *inf = NULL;
    long long i = 0;
    int b;

    for (b = A_FIRST; b < a->argc; b += arity(RedisModule_StringPtrLen(a->argv[b], NULL)[0]) + 1) {
        char kind = RedisModule_StringPtrLen(a->argv[b], NULL)[0];
        RedisModuleString *rec = a->argv[b + 1];
        RedisModuleCallReply *r;
        char err[256], msg[512];
        int removed;

        if (kind == 'Q') {
            const RedisModuleString *fa[2] = {a->argv[A_WID], rec};
            size_t tlen;
            const char *t = arg(a, A_INF_T, &tlen);
            if (inf != NULL) RedisModule_FreeString(a->ctx, inf);
            inf = NULL;
            if (fill(&a->tmp, t, tlen, fa, 2) != 0) {
                struct buf why = {0};
                template_fault(t, tlen, 2, &why);
                put_str(&why,
                        ": it takes the worker and the queue for its two %s, and %% for a '%'");
                reply_template(a->ctx, "in-flight list", A_INF_T, a->argv[A_INF_T], why.p);
                RedisModule_Free(why.p);
                return -1;
            }
            inf = RedisModule_CreateString(a->ctx, a->tmp.p, a->tmp.len);
            q = rec;
            a->run_end = -1; /* the run's tail not looked at yet */
            a->npopped = 0;
            continue; /* names no outcome: i stays */
        }
        if (kind == 'S') {
            r = RedisModule_Call(a->ctx, "LPOS", "CEsscc", inf, rec, "RANK", "-1");
            if (is_error(r)) {
                must(a, r, "LPOS");
                unpop(a, inf, b);
                break;
            }
            if (RedisModule_CallReplyType(r) == REDISMODULE_REPLY_INTEGER ||
                popped_later(a, b, rec)) {
                RedisModuleString *h[8] = {word[W_STATUS],   word[W_STARTED],    word[W_WORKER],
                                           a->argv[A_WID],   word[W_STARTED_AT], a->argv[b + 3],
                                           word[W_ATTEMPTS], a->argv[b + 4]};
                RedisModuleString *jk = key_of(a, &a->jpre, a->argv[b + 2], &a->jpost);
                /* not started over the canceled status of a job cqctl cancel ended */
                if (!(a->asked && was_canceled(a, jk, a->argv[b + 2], 0)) &&
                    hset(a, jk, h, 8, q, rec))
                    must(a, RedisModule_Call(a->ctx, "PERSIST", "!CEs", jk), "PERSIST");
                RedisModule_FreeString(a->ctx, jk);
            }
            run(r);
            i++;
            if (a->failed[0] != '\0') {
                unpop(a, inf, b);
                break;
            }
            continue;
        }
        if (a->run_end < 0) pop_tail(a, inf, b);
        if (a->gone[b]) {
            removed = 1;
        } else {
            r = RedisModule_Call(a->ctx, "LREM", "!CEsss", inf, word[W_LAST], rec);
            if (is_error(r)) {
                snprintf(msg, sizeof msg, "apply: LREM: %s", error_text(r, err, sizeof err));
                run(r);
                unpop(a, inf, b);
                if (inf != NULL) RedisModule_FreeString(a->ctx, inf);
                RedisModule_ReplyWithError(a->ctx, msg);
                return -1;
            }
            removed = RedisModule_CallReplyInteger(r) != 0;
            run(r);
        }
        if (!removed) {
            lost_add(a, i, NULL);
        } else if (kind == 'D') {
            must(a, RedisModule_Call(a->ctx, "LPUSH", "!CEss", a->argv[A_DEAD], rec), "LPUSH");
            a->dead++;
        } else {
            ended_one(a, b, q, i);
        }
        i++;
        if (a->failed[0] != '\0') {
            unpop(a, inf, b);
            break;
        }
    }
    if (inf != NULL) RedisModule_FreeString(a->ctx, inf);
    return 0;
}

static void apply_free(struct apply *a)
{
    size_t i;

    if (a->rexp != NULL) RedisModule_FreeString(a->ctx, a->rexp);
    if (a->user != NULL) RedisModule_FreeModuleUser(a->user);
    if (a->fexp != NULL) RedisModule_FreeString(a->ctx, a->fexp);
    if (a->gone != NULL) RedisModule_Free(a->gone);
    if (a->popped != NULL) RedisModule_Free(a->popped);

    for (i = 0; i < a->nlost; i++) RedisModule_Free(a->lost[i].text);
    RedisModule_Free(a->lost);
    RedisModule_Free(a->ended);
    RedisModule_Free(a->jpre.p);
    RedisModule_Free(a->jpost.p);
    RedisModule_Free(a->cpre.p);
    RedisModule_Free(a->cpost.p);
    RedisModule_Free(a->tmp.p);
    if (a->heard != NULL) RedisModule_FreeCallReply(a->heard);
}

/* The PEXPIREAT time, in ms from now (ms), of a TTL of t seconds: only for a TTL above 0,
 * the one that sets an expiry (0 deletes the status, a negative one keeps it: ttl()), so that
 * t * 1000 cannot overflow for a TTL below LLONG_MIN / 1000, which a CQ.APPLY1 made by hand
 * may send (0 for those: never used). A TTL too long for a time in milliseconds expires at
 * the latest time Redis holds, as in the script (the EXPIRE fallback is capped in
 * expire()). */
static long long expiry_ms(long long ms, long long t)
{
    if (t <= 0) return 0;
    return t < (LLONG_MAX - ms) / 1000 ? ms + t * 1000 : LLONG_MAX;
}

/* The minute the batch is counted in: a whole number from 0 (the worker sends minutes since
 * the epoch), so that prune_counts's minute - 122 cannot overflow. Else 0, the error
 * replied, before anything is applied. */
static int minute_ok(struct apply *a)
{
    size_t len;
    const char *s = arg(a, A_MINUTE, &len);
    char *end;
    long long m;
    struct buf msg = {0};

    errno = 0;
    m = strtoll(s, &end, 10);
    if (len > 0 && end == s + len && errno == 0 && m >= 0 && s[0] != '-' && s[0] != '+' &&
        s[0] != ' ')
        return 1;
    put_str(&msg, "apply: the minute (argument 14), '");
    put_shown(&msg, s, len, 40);
    put_str(&msg, "', is not a minute since the epoch (a whole number from 0): no outcome applied");
    RedisModule_ReplyWithError(a->ctx, msg.p);
    RedisModule_Free(msg.p);
    return 0;
}

/* CQ.APPLY1 wid job-template inflight-template stats worker failed scheduled dead result-ttl
 * failure-ttl ended-template counts-template cancel minute outcome... (queue.c's apply). */
static int apply_command(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    struct apply a;
    size_t len, i;
    const char *t;
    long long ms;
    int nend, rc, rc_t;

    if (argc < A_FIRST) return RedisModule_WrongArity(ctx);
    memset(&a, 0, sizeof a);
    a.ctx = ctx;
    a.argv = argv;
    a.argc = argc;
    a.run_end = -1;
    nend = check(&a);
    if (nend < 0) return REDISMODULE_OK;
    t = arg(&a, A_JOB_T, &len);
    rc = around(t, len, &a.jpre, &a.jpost);
    rc_t = A_JOB_T;
    if (rc == 0) {
        t = arg(&a, A_ENDED_T, &len);
        rc = around(t, len, &a.cpre, &a.cpost);
        rc_t = A_ENDED_T;
    }
    if (rc != 0) {
        apply_free(&a);
        return reply_template(ctx, rc_t == A_JOB_T ? "job key" : "ended channel", rc_t, argv[rc_t],
                              "has no %s for the job's id");
    }
    if (!minute_ok(&a)) {
        apply_free(&a);
        return REDISMODULE_OK;
    }
    a.rttl = arg_ll(&a, A_RTTL);
    a.fttl = arg_ll(&a, A_FTTL);
    ms = RedisModule_Milliseconds();
    a.rexp_ms = expiry_ms(ms, a.rttl);
    a.rexp = RedisModule_CreateStringFromLongLong(ctx, a.rexp_ms);
    a.fexp = RedisModule_CreateStringFromLongLong(ctx, expiry_ms(ms, a.fttl));
    cancel_asked(&a);
    a.listening = -1;
    if (nend >= LISTENERS_FROM) find_listeners(&a);
    a.gone = RedisModule_Alloc((size_t)argc);
    memset(a.gone, 0, (size_t)argc);
    if (a.failed[0] == '\0' && apply_all(&a) != 0) {
        apply_free(&a);
        return REDISMODULE_OK;
    }
    /* What was applied is counted, as far as the script would have got. */
    counter(&a, A_STATS, "processed", a.fin);
    counter(&a, A_WORKER, "processed", a.fin);
    counter(&a, A_STATS, "failed", a.fail);
    counter(&a, A_WORKER, "failed", a.fail);
    counter(&a, A_STATS, "retried", a.retr);
    counter(&a, A_STATS, "handed_back", a.hand);
    counter(&a, A_STATS, "dead", a.dead);
    counter(&a, A_STATS, "canceled", a.canc);
    for (i = 0; i < a.nended; i++) {
        const RedisModuleString *fa[1] = {a.ended[i].queue};
        RedisModuleCallReply *r;
        RedisModuleString *ck;
        t = arg(&a, A_COUNTS_T, &len);
        if (fill(&a.tmp, t, len, fa, 1) != 0) continue;
        ck = RedisModule_CreateString(ctx, a.tmp.p, a.tmp.len);
        r = RedisModule_Call(ctx, "HINCRBY", "!CEssl", ck, argv[A_MINUTE], a.ended[i].n);
        if (!is_error(r) && RedisModule_CallReplyType(r) == REDISMODULE_REPLY_INTEGER &&
            RedisModule_CallReplyInteger(r) == a.ended[i].n)
            prune_counts(&a, ck);
        must(&a, r, "HINCRBY");
        must(&a, RedisModule_Call(ctx, "EXPIRE", "!CEsc", ck, "3660"), "EXPIRE");
        RedisModule_FreeString(ctx, ck);
    }
    if (a.failed[0] != '\0') {
        RedisModule_ReplyWithError(ctx, a.failed);
        apply_free(&a);
        return REDISMODULE_OK;
    }
    RedisModule_ReplyWithArray(ctx, (long)a.nlost);
    for (i = 0; i < a.nlost; i++) {
        if (a.lost[i].text != NULL)
            RedisModule_ReplyWithStringBuffer(ctx, a.lost[i].text, strlen(a.lost[i].text));
        else
            RedisModule_ReplyWithLongLong(ctx, a.lost[i].index);
    }
    apply_free(&a);
    return REDISMODULE_OK;
}

/* ---- CQ.TAKE1 ---------------------------------------------------------------------------- */

/* Reply with a marker and its text: prefix + s (n bytes). */
static void reply_marker(RedisModuleCtx *ctx, struct buf *b, const char *prefix, const char *s,
                         size_t n)
{
    b->len = 0;
    buf_put(b, prefix, strlen(prefix));
    buf_put(b, s, n);
    RedisModule_ReplyWithStringBuffer(ctx, b->p, b->len);
}

static void reply_number(RedisModuleCtx *ctx, long long v)
{
    char num[32];
    int n = snprintf(num, sizeof num, "%lld", v);

    RedisModule_ReplyWithStringBuffer(ctx, num, n > 0 ? (size_t)n : 0);
}

/* The take's LPUSH of m records to the in-flight list inf failed (r, freed here): they go
 * back to the queue's tail, where the RPOP took them from, in their order, so that the next
 * take finds them as the oldest again; why says so, naming the command, the list and the
 * cause. The RPUSH goes without the user's ACL, as unpop's does: it only undoes this
 * command's own RPOP of the same key, and cannot fail otherwise (the key is the list they
 * came from, or gone with them). */
static void put_back(RedisModuleCtx *ctx, RedisModuleString *qkey, RedisModuleString **recs,
                     size_t m, RedisModuleString *inf, RedisModuleCallReply *r, struct buf *why)
{
    RedisModuleString **v = RedisModule_Alloc(sizeof *v * m);
    char err[256], num[64];
    size_t k;

    for (k = 0; k < m; k++) v[k] = recs[m - 1 - k];
    run(RedisModule_Call(ctx, "RPUSH", "!Esv", qkey, v, m));
    RedisModule_Free(v);
    put_str(why, "LPUSH ");
    put_key(why, inf);
    put_str(why, ": ");
    put_str(why, error_text(r, err, sizeof err));
    run(r);
    snprintf(num, sizeof num, " (%zu record%s left in ", m, m == 1 ? "" : "s");
    put_str(why, num);
    put_key(why, qkey);
    put_str(why, ")");
}

/* One queue's records, popped (RPOP with a count: the oldest first) and pushed to the
 * in-flight list in the same command, so that they are never only in the reply (nor, where
 * the LPUSH fails, in neither list: put_back). Replies "=" queue and the count, then the
 * records; or "!" queue and why it was skipped. Returns how many records it took; *len
 * counts the reply's elements. */
static long long take_queue(RedisModuleCtx *ctx, RedisModuleString *q, RedisModuleString *inf,
                            RedisModuleString *qkey, long long want, struct buf *b, long *len)
{
    RedisModuleCallReply *r = RedisModule_Call(ctx, "RPOP", "!CEsl", qkey, want);
    RedisModuleString **recs;
    size_t qlen, m, k;
    const char *qs = RedisModule_StringPtrLen(q, &qlen);
    char err[256];

    if (is_error(r)) {
        error_text(r, err, sizeof err);
        run(r);
        if (strncmp(err, "WRONGTYPE", 9) == 0) { /* said as the script says it */
            RedisModuleCallReply *t = RedisModule_Call(ctx, "TYPE", "CEs", qkey);
            size_t tl = 0, kl;
            const char *ks = RedisModule_StringPtrLen(qkey, &kl);
            const char *ts = is_error(t) ? NULL : RedisModule_CallReplyStringPtr(t, &tl);
            if (ts == NULL) {
                ts = "?";
                tl = 1;
            }
            snprintf(err, sizeof err, "its key %.*s is a %.*s, not a list: remove or rename it",
                     (int)kl, ks, (int)tl, ts);
            run(t);
        }
        reply_marker(ctx, b, "!", qs, qlen);
        RedisModule_ReplyWithStringBuffer(ctx, err, strlen(err));
        *len += 2;
        return 0;
    }
    if (RedisModule_CallReplyType(r) != REDISMODULE_REPLY_ARRAY) { /* nil: an empty queue */
        run(r);
        return 0;
    }
    m = RedisModule_CallReplyLength(r);
    recs = RedisModule_Alloc(sizeof *recs * (m ? m : 1));
    for (k = 0; k < m; k++)
        recs[k] = RedisModule_CreateStringFromCallReply(RedisModule_CallReplyArrayElement(r, k));
    if (m > 0) {
        RedisModuleCallReply *p = RedisModule_Call(ctx, "LPUSH", "!CEsv", inf, recs, m);
        if (is_error(p)) {
            struct buf why = {0};
            put_back(ctx, qkey, recs, m, inf, p, &why);
            reply_marker(ctx, b, "!", qs, qlen);
            RedisModule_ReplyWithStringBuffer(ctx, why.p, why.len);
            RedisModule_Free(why.p);
            for (k = 0; k < m; k++) RedisModule_FreeString(ctx, recs[k]);
            RedisModule_Free(recs);
            run(r);
            *len += 2;
            return 0;
        }
        run(p);
    }
    reply_marker(ctx, b, "=", qs, qlen);
    RedisModule_ReplyWithLongLong(ctx, (long long)m);
    for (k = 0; k < m; k++) {
        RedisModule_ReplyWithCallReply(ctx, RedisModule_CallReplyArrayElement(r, k));
        RedisModule_FreeString(ctx, recs[k]);
    }
    RedisModule_Free(recs);
    run(r);
    *len += 2 + (long)m;
    return (long long)m;
}

/* The take fails before anything moved: cmd on key (and member) replied r (freed here). */
static int take_refused(RedisModuleCtx *ctx, const char *cmd, RedisModuleString *key,
                        RedisModuleString *member, RedisModuleCallReply *r)
{
    struct buf m = {0};
    char err[256];

    put_str(&m, "take: ");
    put_str(&m, cmd);
    put_str(&m, " ");
    put_key(&m, key);
    if (member != NULL) {
        put_str(&m, " ");
        put_key(&m, member);
    }
    put_str(&m, ": ");
    put_str(&m, error_text(r, err, sizeof err));
    run(r);
    RedisModule_ReplyWithError(ctx, m.p);
    RedisModule_Free(m.p);
    return REDISMODULE_OK;
}

/* CQ.TAKE1 queue-template inflight-template wid max paused cancel queue... (queue.c's take
 * script, with the same arguments and reply): up to max records from the queues in priority
 * order; ("#", count) when cancels are asked for, ("~", index) for each paused queue. */
static int take_command(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    struct buf b = {0}, t = {0};
    RedisModuleCallReply *r;
    long long max, n = 0, nc = 0;
    long len = 0;
    size_t tlen;
    unsigned char *paused;
    int i;

    if (argc < 8) return RedisModule_WrongArity(ctx);
    max = strtoll(RedisModule_StringPtrLen(argv[4], NULL), NULL, 10);
    r = RedisModule_Call(ctx, "SCARD", "CEs", argv[6]);
    if (is_error(r)) /* before anything moved, as the script fails */
        return take_refused(ctx, "SCARD", argv[6], NULL, r);
    if (RedisModule_CallReplyType(r) == REDISMODULE_REPLY_INTEGER)
        nc = RedisModule_CallReplyInteger(r);
    run(r);
    /* Which queues are paused, all asked before anything moves: where the paused set cannot
     * be read (another type, an ACL without SISMEMBER) the take fails as the script does,
     * where it took from a paused queue. */
    paused = RedisModule_Alloc((size_t)(argc - 7));
    for (i = 7; i < argc; i++) {
        r = RedisModule_Call(ctx, "SISMEMBER", "CEss", argv[5], argv[i]);
        if (is_error(r)) {
            RedisModule_Free(paused);
            return take_refused(ctx, "SISMEMBER", argv[5], argv[i], r);
        }
        paused[i - 7] = RedisModule_CallReplyType(r) == REDISMODULE_REPLY_INTEGER &&
            RedisModule_CallReplyInteger(r) == 1;
        run(r);
    }
    RedisModule_ReplyWithArray(ctx, REDISMODULE_POSTPONED_LEN);
    if (nc > 0) {
        RedisModule_ReplyWithStringBuffer(ctx, "#", 1);
        reply_number(ctx, nc);
        len += 2;
    }
    for (i = 7; i < argc; i++) {
        const RedisModuleString *fa[2] = {argv[3], argv[i]};
        RedisModuleString *inf, *qkey;
        const char *tp = RedisModule_StringPtrLen(argv[2], &tlen);
        if (fill(&t, tp, tlen, fa, 2) != 0) continue;
        if (paused[i - 7]) {
            RedisModule_ReplyWithStringBuffer(ctx, "~", 1);
            reply_number(ctx, i - 7);
            len += 2;
            continue;
        }
        if (n >= max) continue;
        inf = RedisModule_CreateString(ctx, t.p, t.len);
        if (!kind_ok(ctx, inf, REDISMODULE_KEYTYPE_LIST)) {
            size_t qlen;
            const char *qs = RedisModule_StringPtrLen(argv[i], &qlen);
            reply_marker(ctx, &b, "!", qs, qlen);
            b.len = 0;
            buf_put(&b, "in-flight list ", 15);
            buf_put(&b, t.p, t.len);
            buf_put(&b, " is not a list", 14);
            RedisModule_ReplyWithStringBuffer(ctx, b.p, b.len);
            RedisModule_FreeString(ctx, inf);
            len += 2;
            continue;
        }
        tp = RedisModule_StringPtrLen(argv[1], &tlen);
        if (fill(&t, tp, tlen, fa + 1, 1) == 0) {
            qkey = RedisModule_CreateString(ctx, t.p, t.len);
            n += take_queue(ctx, argv[i], inf, qkey, max - n, &b, &len);
            RedisModule_FreeString(ctx, qkey);
        }
        RedisModule_FreeString(ctx, inf);
    }
    RedisModule_ReplySetArrayLength(ctx, len);
    RedisModule_Free(paused);
    RedisModule_Free(b.p);
    RedisModule_Free(t.p);
    return REDISMODULE_OK;
}

/* ---- CQ.ENQUEUE1 ------------------------------------------------------------------------- */

/* One run of jobs in a CQ.ENQUEUE1 call, of one queue, func and enqueued_at. */
struct run {
    int at;      /* argument index of its head: queue, queue key, func, enqueued_at, count */
    long long n; /* jobs: 2 arguments each (key, record) from at + RUN_HEAD */
};
#define RUN_HEAD 5

/* The runs of a CQ.ENQUEUE1 call (argv from 2): how many, or -1 where the counts do not
 * match the arguments. */
static int enqueue_runs(RedisModuleString **argv, int argc, struct run **out)
{
    struct run *runs = NULL;
    int i = 2, nruns = 0, cap = 0;

    while (i < argc) {
        long long n;
        char *end;
        const char *s;
        if (argc - i < RUN_HEAD) break;
        s = RedisModule_StringPtrLen(argv[i + RUN_HEAD - 1], NULL);
        n = strtoll(s, &end, 10);
        if (*end != '\0' || n < 1 || n > (argc - i - RUN_HEAD) / 2) break;
        if (nruns == cap) {
            cap = cap ? 2 * cap : 4;
            runs = RedisModule_Realloc(runs, (size_t)cap * sizeof *runs);
        }
        runs[nruns].at = i;
        runs[nruns++].n = n;
        i += RUN_HEAD + 2 * (int)n;
    }
    if (i != argc || nruns == 0) {
        RedisModule_Free(runs);
        return -1;
    }
    *out = runs;
    return nruns;
}

static int same_string(RedisModuleString *a, RedisModuleString *b)
{
    size_t la, lb;
    const char *pa = RedisModule_StringPtrLen(a, &la), *pb = RedisModule_StringPtrLen(b, &lb);

    return la == lb && memcmp(pa, pb, la) == 0;
}

/* The error for a write cmd (its name, then its key) that user_may refused: the user's ACL,
 * or (errno ENOENT: RedisModule_ACLCheckCommandPermissions found no such command) a
 * command renamed or disabled (rename-command), which no ACL would change. Into err. */
static const char *enqueue_refused(RedisModuleString **cmd, const char *to, char *err,
                                   size_t errlen)
{
    const char *name = RedisModule_StringPtrLen(cmd[0], NULL);
    const char *key = RedisModule_StringPtrLen(cmd[1], NULL);

    if (errno == ENOENT)
        snprintf(err, errlen,
                 "ERR this Redis has no %s command (renamed or disabled: rename-command), which "
                 "an enqueue needs for %s: nothing was enqueued",
                 name, key);
    else
        snprintf(err, errlen, "NOPERM this user may not %s %s%s: nothing was enqueued", name, to,
                 key);
    return err;
}

/* Before anything is written: the queues set and each queue key of their type, and the user
 * allowed each write. NULL, or the error to reply with. */
static const char *enqueue_check(RedisModuleCtx *ctx, RedisModuleString **argv,
                                 const struct run *runs, int nruns, char *err, size_t errlen)
{
    RedisModuleUser *u = calling_user(ctx);
    const char *bad = NULL;
    int r, j;

    if (u == NULL)
        return "ERR cq.enqueue1 is for a client, not a script or another module: nothing was "
               "enqueued";
    if (!kind_ok(ctx, argv[1], REDISMODULE_KEYTYPE_SET))
        bad = "WRONGTYPE the queues set is not a set: nothing was enqueued";
    for (r = 0; r < nruns && bad == NULL; r++) {
        RedisModuleString **q = argv + runs[r].at; /* queue, queue key, ..., the jobs */
        RedisModuleString *sadd[3] = {word[W_SADD], argv[1], q[0]};
        RedisModuleString *lpush[3] = {word[W_LPUSH], q[1], q[RUN_HEAD + 1]};
        if (!kind_ok(ctx, q[1], REDISMODULE_KEYTYPE_LIST)) {
            snprintf(err, errlen, "WRONGTYPE key %s is not a list: nothing was enqueued",
                     RedisModule_StringPtrLen(q[1], NULL));
            bad = err;
        } else if (!user_may(u, sadd, 3)) {
            bad = enqueue_refused(sadd, "to ", err, errlen);
        } else if (!user_may(u, lpush, 3)) {
            bad = enqueue_refused(lpush, "to ", err, errlen);
        }
        for (j = 0; j < runs[r].n && bad == NULL; j++) {
            RedisModuleString *hset[4] = {word[W_HSET], q[RUN_HEAD + 2 * j], word[W_STATUS],
                                          word[W_QUEUED]};
            if (!user_may(u, hset, 4)) bad = enqueue_refused(hset, "", err, errlen);
        }
    }
    RedisModule_FreeModuleUser(u);
    return bad;
}

/* The status hash of a job in a run (to), as a copy of the run's first one made in this call
 * (from). Their four fields are the same, so a COPY duplicates the first one's encoded
 * value at once, where making it field by field grows it element by element, a realloc
 * each (docs/BENCHMARKS.md, "a bulk enqueue's status hashes as copies"). 1 when done. 0
 * where the key exists (COPY does not replace it: the caller's HashSet updates it, as HSET
 * would), or where COPY failed (renamed or disabled: *copying is cleared, and the rest of
 * the call goes field by field). The caller never passes from as to.
 *
 * It runs without the user's ACL: enqueue_check let the user HSET every job key of the
 * call, and what COPY reads is the hash this call made (unless another module's keyspace
 * callback changed it on its "hset" event). Where anything receives writes, the COPY goes
 * to replicas and the AOF after the first one's HSET: RedisModule_Replicate and a call with
 * "!" add to the same list, in the order they run (Redis 7.0's alsoPropagate; a nested
 * call does not flush it), which test_module's AOF restart checks. Keyspace events: COPY's
 * "copy_to", then "hset" as the HashSet path gives (a replica, replaying the COPY, fires
 * only "copy_to"). What else differs from the HashSet path: the COPY is a command, so INFO
 * commandstats counts it, MONITOR and the slowlog can show it, it counts as a change for
 * save points, and a keyspace hit; and a replica, or a server loading the AOF, needs COPY
 * under its name. */
static int copy_status(RedisModuleCtx *ctx, RedisModuleString *from, RedisModuleString *to,
                       int *known, int *copying)
{
    RedisModuleCallReply *r =
        RedisModule_Call(ctx, "COPY", propagating(ctx, known) ? "!Ess" : "Ess", from, to);
    int done = !is_error(r) && RedisModule_CallReplyType(r) == REDISMODULE_REPLY_INTEGER &&
        RedisModule_CallReplyInteger(r) == 1;

    if (is_error(r)) *copying = 0;
    run(r);
    if (done) RedisModule_NotifyKeyspaceEvent(ctx, REDISMODULE_NOTIFY_HASH, "hset", to);
    return done;
}

/* The error of an enqueue's write, after the checks let it through (so that Redis's words
 * alone are all there is): its code first, as Redis gives it, then the command, its key (and
 * member), Redis's words and what it leaves. Into out. */
static void write_failed(char *out, size_t outlen, const char *cmd, RedisModuleString *key,
                         RedisModuleString *member, RedisModuleCallReply *r, const char *left)
{
    char err[256];
    const char *e = error_text(r, err, sizeof err), *rest = e;
    size_t code = strspn(e, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");

    if (code > 0 && e[code] == ' ')
        rest = e + code + 1;
    else
        code = 0;
    snprintf(out, outlen, "%.*s%s%s %s%s%s: %s (%s)", (int)code, e, code ? " " : "ERR ", cmd,
             RedisModule_StringPtrLen(key, NULL), member ? " " : "",
             member ? RedisModule_StringPtrLen(member, NULL) : "", rest, left);
}

/* CQ.ENQUEUE1 queues (queue queue-key func enqueued-at n (job-key record)*n)...: queue.c's
 * enqueue transaction, for jobs whose ids the client made (no status hash of an earlier run
 * to clear) and that are due now, in runs of jobs that share a queue, a func and an
 * enqueued_at. For each job, its status hash: status queued, queue, func, enqueued_at; for
 * each stretch of runs of one queue, SADD of its name to the queues set and one LPUSH of
 * their records, in order. The keys' types and the user's ACL are checked first, so that a
 * call enqueues all its jobs or none, as the transaction does (a call without a client's
 * user, from a script or another module, is refused); a job key of another type (a
 * made id cannot be one) fails its HSET and the rest is written, as in the transaction. The
 * status hashes go through the key API, not as HSET commands: most of what a job cost Redis
 * in the transaction was each HSET's parsing, queueing and reply, twice (QUEUED, then EXEC's
 * element). What is kept of the commands is finish_direct's: replication (the same HSETs),
 * the "hset" event, WATCH. A run's status hashes after its first one made here are COPYs of
 * it (copy_status), replicated as those COPYs. Reply: the number of jobs. */
static int enqueue_command(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    struct run *runs;
    RedisModuleString **recs = NULL, *notahash = NULL;
    char err[512], failed[640] = "";
    const char *bad;
    long long total = 0, nostatus = 0;
    size_t nrecs = 0;
    int nruns, r, j, known = 0, copying = 1;

    if (argc < 2 + RUN_HEAD + 2 || (nruns = enqueue_runs(argv, argc, &runs)) < 0)
        return RedisModule_WrongArity(ctx);
    bad = enqueue_check(ctx, argv, runs, nruns, err, sizeof err);
    if (bad != NULL) {
        RedisModule_Free(runs);
        return RedisModule_ReplyWithError(ctx, bad);
    }
    for (r = 0; r < nruns; r++) total += runs[r].n;
    recs = RedisModule_Alloc((size_t)total * sizeof *recs);
    for (r = 0; r < nruns; r++) {
        RedisModuleString **q = argv + runs[r].at;
        RedisModuleCallReply *rep;
        RedisModuleString *first = NULL; /* the run's first status hash made in this call */
        for (j = 0; j < runs[r].n; j++) {
            RedisModuleString **job = q + RUN_HEAD + 2 * j; /* key, record */
            RedisModuleKey *k;
            int t;
            recs[nrecs++] = job[1];
            if (first != NULL && copying && !same_string(first, job[0]) &&
                copy_status(ctx, first, job[0], &known, &copying))
                continue;
            k = RedisModule_OpenKey(ctx, job[0], REDISMODULE_WRITE);
            t = RedisModule_KeyType(k);
            if (t != REDISMODULE_KEYTYPE_EMPTY && t != REDISMODULE_KEYTYPE_HASH) {
                RedisModule_CloseKey(k);
                if (nostatus++ == 0) notahash = job[0];
                continue;
            }
            RedisModule_HashSet(k, REDISMODULE_HASH_NONE, word[W_STATUS], word[W_QUEUED],
                                word[W_QUEUE], q[0], word[W_FUNC], q[2], word[W_ENQUEUED_AT], q[3],
                                NULL);
            if (propagating(ctx, &known))
                RedisModule_Replicate(ctx, "HSET", "sssssssss", job[0], word[W_STATUS],
                                      word[W_QUEUED], word[W_QUEUE], q[0], word[W_FUNC], q[2],
                                      word[W_ENQUEUED_AT], q[3]);
            RedisModule_NotifyKeyspaceEvent(ctx, REDISMODULE_NOTIFY_HASH, "hset", job[0]);
            RedisModule_CloseKey(k);
            if (t == REDISMODULE_KEYTYPE_EMPTY && first == NULL) first = job[0];
        }
        /* The records of consecutive runs of one queue go in one LPUSH. */
        if (r + 1 < nruns && same_string(q[0], argv[runs[r + 1].at]) &&
            same_string(q[1], argv[runs[r + 1].at + 1]))
            continue;
        rep = RedisModule_Call(ctx, "SADD", "!CEss", argv[1], q[0]);
        if (is_error(rep) && failed[0] == '\0')
            write_failed(failed, sizeof failed, "SADD", argv[1], q[0], rep,
                         "the queue's jobs were enqueued, but it is not in the queues set");
        run(rep);
        rep = RedisModule_Call(ctx, "LPUSH", "!CEsv", q[1], recs, nrecs);
        if (is_error(rep) && failed[0] == '\0')
            write_failed(failed, sizeof failed, "LPUSH", q[1], NULL, rep,
                         "those jobs' statuses say queued, but they are in no queue");
        run(rep);
        nrecs = 0;
    }
    RedisModule_Free(recs);
    RedisModule_Free(runs);
    if (failed[0] != '\0') return RedisModule_ReplyWithError(ctx, failed);
    if (nostatus > 0) {
        /* The jobs are in their queues, those keys' jobs too, with no status of their own:
         * the call is not to be sent again. */
        snprintf(failed, sizeof failed,
                 "WRONGTYPE key %s is not a hash: its job was enqueued without its status "
                 "(%lld such job%s); the call's other %lld jobs were enqueued with theirs",
                 RedisModule_StringPtrLen(notahash, NULL), nostatus, nostatus == 1 ? "" : "s",
                 total - nostatus);
        return RedisModule_ReplyWithError(ctx, failed);
    }
    return RedisModule_ReplyWithLongLong(ctx, total);
}

/* The one symbol the module exports: the server calls it when it loads the module. */
__attribute__((visibility("default"))) int RedisModule_OnLoad(RedisModuleCtx *ctx,
                                                              RedisModuleString **argv, int argc);
int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    const char *missing;
    int i, version;

    (void)argv;
    (void)argc;
    if (rmapi_init(ctx, CQ_MODULE_NAME, CQ_MODULE_VERSION, &missing) != REDISMODULE_OK) {
        if (missing != NULL && RedisModule_Log != NULL)
            RedisModule_Log(ctx, "warning",
                            "cq: this Redis has no %s: cq's module needs Redis 7.0 or later",
                            missing);
        return REDISMODULE_ERR;
    }
    /* RedisModule_Call's E flag (errors as replies) is 7.0's: without it every call fails. */
    version = RedisModule_GetServerVersion();
    if (version < 0x070000) {
        RedisModule_Log(ctx, "warning",
                        "cq: this is Redis %d.%d.%d: cq's module needs Redis 7.0 or later",
                        version >> 16, (version >> 8) & 255, version & 255);
        return REDISMODULE_ERR;
    }
    for (i = 0; i < W_N; i++)
        word[i] = RedisModule_CreateString(NULL, word_text[i], strlen(word_text[i]));
    /* No keys declared: like the scripts, they compute the keys they touch (cq runs on one
     * primary, not Redis Cluster). The apply and the take are not deny-oom: at maxmemory a
     * script still takes and ends jobs (RPOP and LREM are allowed there), and so must these.
     * The enqueue is, as the transaction's HSET and LPUSH are: refused whole at maxmemory. */
    if (RedisModule_CreateCommand(ctx, "cq.apply1", apply_command, "write", 0, 0, 0) !=
            REDISMODULE_OK ||
        RedisModule_CreateCommand(ctx, "cq.take1", take_command, "write", 0, 0, 0) !=
            REDISMODULE_OK ||
        RedisModule_CreateCommand(ctx, "cq.enqueue1", enqueue_command, "write deny-oom", 0, 0, 0) !=
            REDISMODULE_OK)
        return REDISMODULE_ERR;
    /* What keeps the answers kept between calls true (repl_known, nobody_listens): the
     * filter knows the commands by name, so where one is renamed (rename-command) nothing is
     * kept, and every apply asks. */
    nobody_listens = 0;
    repl_known = 0;
    keeping = 0;
    {
        RedisModuleCallReply *r = RedisModule_Call(ctx, "COMMAND", "cccccc", "INFO", "sync",
                                                   "psync", "subscribe", "psubscribe", "exec");
        if (!is_error(r) && RedisModule_CallReplyType(r) == REDISMODULE_REPLY_ARRAY &&
            RedisModule_CallReplyLength(r) == 5) {
            keeping = 1;
            for (i = 0; i < 5; i++)
                if (RedisModule_CallReplyType(RedisModule_CallReplyArrayElement(r, (size_t)i)) !=
                    REDISMODULE_REPLY_ARRAY)
                    keeping = 0;
        }
        run(r);
        if (!keeping)
            RedisModule_Log(ctx, "notice",
                            "cq: SYNC, PSYNC, SUBSCRIBE, PSUBSCRIBE or EXEC is renamed: each "
                            "apply asks INFO who listens and whether a replica does");
    }
    {
        RedisModuleEvent role = {REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED, 1};
        if (RedisModule_RegisterCommandFilter(ctx, command_seen, REDISMODULE_CMDFILTER_NOSELF) ==
                NULL ||
            RedisModule_SubscribeToServerEvent(ctx, role, role_changed) != REDISMODULE_OK)
            return REDISMODULE_ERR;
    }
    return REDISMODULE_OK;
}
