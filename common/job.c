/* job.c - encode and decode job records (see job.h and docs/PROTOCOL.md). */
#include "job.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uuid/uuid.h>

#include "cq/cq.h"
#include "util.h"

/* Fill buf with n random bytes from the kernel. Returns 0/-1. */
static int getrandom_all(unsigned char *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

void job_new_id(char id[JOB_ID_MAX + 1])
{
    uuid_t u;

    uuid_generate_random(u);
    uuid_unparse_lower(u, id);
}

/* 16 bytes as a UUID: 8-4-4-4-12 lowercase hex digits, as uuid_unparse_lower writes them. */
static void uuid_format(const unsigned char *u, char *out)
{
    static const char hex[] = "0123456789abcdef";
    int i;

    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *out++ = '-';
        *out++ = hex[u[i] >> 4];
        *out++ = hex[u[i] & 15];
    }
    *out = '\0';
}

/* Random (version 4) UUIDs from one getrandom() per 64 ids: uuid_generate_random costs
 * several system calls per id (it re-seeds itself each time), which bulk enqueueing feels. */
void job_fill_ids(struct job *const *jobs, size_t n)
{
    unsigned char rnd[64 * 16];
    size_t i = 0;

    while (i < n) {
        size_t k, m = 0, need = 0;
        for (k = i; k < n && need < 64; k++)
            if (jobs[k]->id[0] == '\0') need++;
        if (need > 0 && getrandom_all(rnd, need * 16) != 0) {
            /* No getrandom (very old kernel): libuuid finds another source. */
            for (; i < k; i++)
                if (jobs[i]->id[0] == '\0') {
                    job_new_id(jobs[i]->id);
                    jobs[i]->id_fresh = 1;
                }
            continue;
        }
        for (; i < k; i++) {
            unsigned char *u;
            if (jobs[i]->id[0] != '\0') continue;
            u = rnd + 16 * m++;
            u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
            u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
            uuid_format(u, jobs[i]->id);
            jobs[i]->id_fresh = 1;
        }
    }
}

struct job *job_new(const char *func, cJSON *args)
{
    struct job *j = xcalloc(1, sizeof *j);

    str_copy(j->func, sizeof j->func, func);
    j->args = args ? args : xcheck(cJSON_CreateArray(), "job arguments");
    j->retries = -1;
    return j;
}

void job_free(struct job *j)
{
    if (j == NULL) return;
    cJSON_Delete(j->args);
    free(j);
}

int job_nargs(const struct job *j)
{
    return cJSON_IsArray(j->args) ? cJSON_GetArraySize(j->args) : 0;
}

const char *job_arg_string(const struct job *j, int i)
{
    const cJSON *a = cJSON_GetArrayItem(j->args, i);
    return cJSON_IsString(a) ? a->valuestring : NULL;
}

/* A whole number in [min, max] into *out. Returns 0, or -1 when d is not one. */
static int whole_in(double d, int min, int max, int *out)
{
    if (d != floor(d) || d < min || d > max) return -1;
    *out = (int)d;
    return 0;
}

/* Times and timeouts: finite, not negative, and below CQ_TIME_MAX (1e11 s, the year 5138),
 * which keeps them printable as microseconds. */
static int time_ok(double d)
{
    return isfinite(d) && d >= 0 && d < CQ_TIME_MAX;
}

/* The limits of the counters (job_decode and its fast path check the same). */
#define RETRIES_MIN  (-1)
#define RETRIES_MAX  1000
#define COUNTERS_MAX 1000000

/* Read an optional whole number field. Returns 0 when absent or valid, -1 when wrong. */
static int get_int(const cJSON *v, int min, int max, int *out)
{
    if (v == NULL || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) return -1;
    return whole_in(v->valuedouble, min, max, out);
}

/* Read an optional time field (time_ok). Returns 0 when absent or valid, -1 when wrong. */
static int get_double(const cJSON *v, double *out)
{
    if (v == NULL || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || !time_ok(v->valuedouble)) return -1;
    *out = v->valuedouble;
    return 0;
}

/* The members of a record that job_decode reads, found in one pass over the object: cJSON's
 * lookup by name walks the members every time, and ten lookups a record were about 1,500
 * instructions of a worker's 27,500 a job. As with cJSON_GetObjectItemCaseSensitive, the
 * first member of a name counts. */
enum {
    M_ID,
    M_FUNC,
    M_ARGS,
    M_QUEUE,
    M_ENQUEUED_AT,
    M_RETRIES,
    M_ATTEMPTS,
    M_RECOVERED,
    M_HANDOFFS,
    M_TIMEOUT,
    M_N
};

static const char *const member_names[M_N] = {
    [M_ID] = "id",
    [M_FUNC] = "func",
    [M_ARGS] = "args",
    [M_QUEUE] = "queue",
    [M_ENQUEUED_AT] = "enqueued_at",
    [M_RETRIES] = "retries",
    [M_ATTEMPTS] = "attempts",
    [M_RECOVERED] = "recovered",
    [M_HANDOFFS] = "handoffs",
    [M_TIMEOUT] = "timeout",
};

static void find_members(const cJSON *o, cJSON *m[M_N])
{
    cJSON *c;
    int i;

    for (i = 0; i < M_N; i++) m[i] = NULL;
    for (c = o->child; c != NULL; c = c->next) {
        if (c->string == NULL) continue;
        for (i = 0; i < M_N; i++) {
            if (c->string[0] == member_names[i][0] && strcmp(c->string, member_names[i]) == 0) {
                if (m[i] == NULL) m[i] = c;
                break;
            }
        }
    }
}

/* Where the next NUL that text would decode to is, at or after from: a raw NUL byte or a
 * \u0000 escape (one not itself escaped, as in "\\u0000"). Returns its offset, or -1. */
static long next_nul(const char *text, size_t len, size_t from)
{
    size_t i;

    for (i = from; i < len; i++) {
        size_t slashes = 0;

        if (text[i] == '\0') return (long)i;
        if (text[i] != '\\' || i + 6 > len || memcmp(text + i + 1, "u0000", 5) != 0) continue;
        while (slashes < i && text[i - 1 - slashes] == '\\') slashes++;
        if (slashes % 2 == 0) return (long)i;
    }
    return -1;
}

int job_json_has_nul(const char *text, size_t len)
{
    /* The common case, no escape at all, costs one memchr. */
    if (memchr(text, '\\', len) == NULL && memchr(text, '\0', len) == NULL) return 0;
    return next_nul(text, len, 0) >= 0;
}

/* JSON's own white space (RFC 8259), past p. */
static const char *json_space(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* The end of the JSON string at p (its opening quote), past its closing quote, or NULL
 * when it is no valid string: no closing quote, a control byte, an unknown escape. */
static const char *json_string_end(const char *p)
{
    for (p++; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20) return NULL; /* the text's end among them */
        if (*p != '\\') continue;
        p++;
        if (*p == 'u') {
            int i;
            for (i = 1; i <= 4; i++)
                if (!isxdigit((unsigned char)p[i])) return NULL;
            p += 4;
        } else if (*p == '\0' || strchr("\"\\/bfnrt", *p) == NULL) {
            return NULL;
        }
    }
    return p + 1;
}

/* The end of the number, true, false or null at p, or NULL when there is none. */
static const char *json_scalar_end(const char *p)
{
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0) return p + 4;
    if (strncmp(p, "false", 5) == 0) return p + 5;
    if (*p == '-') p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (isdigit((unsigned char)*p)) p++;
    else
        return NULL;
    if (*p == '.') {
        if (!isdigit((unsigned char)*++p)) return NULL;
        while (isdigit((unsigned char)*p)) p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!isdigit((unsigned char)*p)) return NULL;
        while (isdigit((unsigned char)*p)) p++;
    }
    return p;
}

/* The text is read as JSON's grammar has it, without recursion and without building
 * anything, up to where it opens its 1,001st level (1: too deep), is no JSON (0) or has
 * read one whole value (2, *end past it and the white space after), so that
 * text broken before that ('x[[[[...', '{"a" [[[[...') is not called too deep: cJSON stopped
 * at the first fault, and so does this. It is stricter than cJSON (a number '01', a raw
 * control byte in a string, a form feed between values), which only makes it say 'not valid
 * JSON' of text that is not. */
static int json_read(const char *text, const char **end)
{
    char open[CJSON_NESTING_LIMIT]; /* '[' or '{' of each level */
    int depth = 0;
    enum { VALUE, VALUE_OR_END, KEY, KEY_OR_END, COLON, NEXT } want = VALUE;
    const char *p = text;

    for (;;) {
        p = json_space(p);
        switch (want) {
        case VALUE_OR_END: /* just after '[' */
            if (*p == ']') {
                depth--;
                p++;
                want = NEXT;
                continue;
            }
            /* fall through */
        case VALUE:
            if (*p == '[' || *p == '{') {
                if (depth == CJSON_NESTING_LIMIT) return 1;
                open[depth++] = *p;
                want = *p == '[' ? VALUE_OR_END : KEY_OR_END;
                p++;
                continue;
            }
            p = *p == '"' ? json_string_end(p) : json_scalar_end(p);
            if (p == NULL) return 0;
            want = NEXT;
            continue;
        case KEY_OR_END: /* just after '{' */
            if (*p == '}') {
                depth--;
                p++;
                want = NEXT;
                continue;
            }
            /* fall through */
        case KEY:
            if (*p != '"') return 0;
            p = json_string_end(p);
            if (p == NULL) return 0;
            want = COLON;
            continue;
        case COLON:
            if (*p != ':') return 0;
            p++;
            want = VALUE;
            continue;
        case NEXT: /* after a value: the whole text's (nothing deeper can follow) or a member */
            if (depth == 0) {
                *end = p;
                return 2;
            }
            if (*p == ',') {
                want = open[depth - 1] == '[' ? VALUE : KEY;
            } else if (*p == (open[depth - 1] == '[' ? ']' : '}')) {
                depth--;
                want = NEXT;
            } else {
                return 0;
            }
            p++;
            continue;
        }
    }
}

int job_json_too_deep(const char *text)
{
    const char *end;

    return json_read(text, &end) == 1;
}

int job_json_strict(const char *text)
{
    const char *end;

    return json_read(text, &end) == 2 && *end == '\0';
}

const char *job_json_rest(const char *p)
{
    return json_space(p);
}

int job_json_finite(const cJSON *v)
{
    const cJSON *c;

    if (cJSON_IsNumber(v)) return isfinite(v->valuedouble);
    for (c = v != NULL ? v->child : NULL; c != NULL; c = c->next)
        if (!job_json_finite(c)) return 0;
    return 1;
}

int job_json_utf8(const cJSON *v)
{
    const cJSON *c;

    if (v == NULL) return 1;
    if (v->string != NULL && !utf8_text(v->string)) return 0;
    if (cJSON_IsString(v) && v->valuestring != NULL) return utf8_text(v->valuestring);
    for (c = v->child; c != NULL; c = c->next)
        if (!job_json_utf8(c)) return 0;
    return 1;
}

/* A NUL-terminated copy of text for cJSON, which the caller frees: cJSON 1.7.15 without
 * Debian's fix for CVE-2023-53154 reads a byte past a text that ends right after a comma.
 * With mask, each NUL the text would decode to is turned into \u001f (a raw 0x1f for a raw
 * NUL): the same JSON but for characters that no id or name may hold, so that a record with
 * a NUL still decodes far enough to fail under its own id. */
static char *cjson_copy(const char *text, size_t len, int mask)
{
    char *m = xmalloc(len + 1);
    long at;

    memcpy(m, text, len);
    m[len] = '\0';
    for (at = mask ? next_nul(m, len, 0) : -1; at >= 0; at = next_nul(m, len, (size_t)at)) {
        if (m[at] == '\0')
            m[at] = 0x1f;
        else
            memcpy(m + at + 1, "u001f", 5);
    }
    return m;
}

/* ---- the fast path ------------------------------------------------------------------- */

/* The records cq writes itself (job_encoder_put) are decoded without building a cJSON object
 * of the whole record: cJSON's parse, its allocations and their frees were about 10,000 of
 * a worker's 24,500 instructions a job. The fast path reads only the plainest JSON: the
 * known members, each once, strings without escapes, numbers of at most 17 digits without a
 * sign or an exponent, the standard whitespace, and args parsed by cJSON on its own. On
 * anything else (and on anything job_decode would refuse) it gives up, leaving nothing
 * allocated, and the record goes through cJSON as before, so it can only ever decode a record
 * to what cJSON's path decodes it to (fuzz_job and test_job check this against
 * job_decode_cjson). */

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* A string without escapes at p (its opening quote): its bytes in *s, *n, and the position
 * after its closing quote, or NULL. */
static const char *plain_string(const char *p, const char *end, const char **s, size_t *n)
{
    const char *q;

    if (p >= end || *p != '"') return NULL;
    q = memchr(p + 1, '"', (size_t)(end - p - 1));
    if (q == NULL || memchr(p + 1, '\\', (size_t)(q - p - 1)) != NULL) return NULL;
    *s = p + 1;
    *n = (size_t)(q - p - 1);
    return q + 1;
}

/* A number of digits, with or without a fraction, whose digits as a whole number are at most
 * 2^53: the quotient of two doubles that are exact, rounded once, which is what strtod
 * (cJSON's reader) rounds the decimal to (Clinger's fast path). Returns the position after
 * it, or NULL. */
static const char *plain_number(const char *p, const char *end, double *out)
{
    static const double pow10[] = {1e0, 1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,
                                   1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17};
    unsigned long long m = 0;
    int digits = 0, frac = -1;

    if (p + 1 < end && p[0] == '0' && p[1] >= '0' && p[1] <= '9') return NULL;
    for (; p < end; p++) {
        if (*p >= '0' && *p <= '9') {
            if (++digits > 17) return NULL;
            m = m * 10 + (unsigned)(*p - '0');
            if (frac >= 0) frac++;
        } else if (*p == '.' && frac < 0 && digits > 0) {
            frac = 0;
        } else {
            break;
        }
    }
    if (digits == 0 || frac == 0 || m > (1ULL << 53)) return NULL;
    *out = frac > 0 ? (double)m / pow10[frac] : (double)m;
    return p;
}

/* The end of the array that opens at p (just after its closing bracket), found by counting
 * brackets and braces outside strings; NULL when it does not close, or nests deeper than 32.
 * Any depth well below cJSON's limit of 1,000 would do: that limit counts from the record
 * and parsing args alone counts from args, so near it the two could differ. Whether what
 * lies between is JSON is cJSON's to say. */
static const char *array_end(const char *p, const char *end)
{
    int depth = 0;

    for (; p < end; p++) {
        switch (*p) {
        case '[':
        case '{':
            if (++depth > 32) return NULL;
            break;
        case ']':
        case '}':
            if (--depth == 0) return p + 1;
            break;
        case '"':
            for (p++; p < end && *p != '"'; p++)
                if (*p == '\\' && ++p >= end) return NULL;
            if (p >= end) return NULL;
            break;
        default: break;
        }
    }
    return NULL;
}

/* Which member a name is, or -1. */
static int member_of(const char *s, size_t n)
{
    int i;

    for (i = 0; i < M_N; i++)
        if (n == strlen(member_names[i]) && memcmp(s, member_names[i], n) == 0) return i;
    return -1;
}

int job_decode_fast(const char *buf, size_t len, struct job **out)
{
    const char *p = buf, *end = buf + len, *str[M_N] = {0};
    size_t slen[M_N] = {0};
    double num[M_N] = {0};
    unsigned seen = 0;
    cJSON *args = NULL;
    struct job *j;
    char name[KEYS_NAME_MAX + 1];
    locale_t loc;
    int i;

    *out = NULL;
    if (len > JOB_RECORD_MAX || job_json_has_nul(buf, len)) return -1;
    p = skip_space(p, end);
    if (p >= end || *p != '{') return -1;
    p = skip_space(p + 1, end);
    for (;;) {
        const char *k, *q, *parsed = NULL;
        size_t kn;

        p = plain_string(p, end, &k, &kn);
        if (p == NULL || (i = member_of(k, kn)) < 0 || (seen & (1u << i))) goto fail;
        seen |= 1u << i;
        p = skip_space(p, end);
        if (p >= end || *p != ':') goto fail;
        p = skip_space(p + 1, end);
        switch (i) {
        case M_ID:
        case M_FUNC:
        case M_QUEUE: p = plain_string(p, end, &str[i], &slen[i]); break;
        case M_ARGS:
            q = p < end && *p == '[' ? array_end(p, end) : NULL;
            if (q == NULL) goto fail;
            loc = locale_c_enter(); /* cJSON reads numbers with the locale's point */
            args = cJSON_ParseWithLengthOpts(p, (size_t)(q - p), &parsed, 0);
            locale_c_leave(loc);
            if (args == NULL || parsed != q || !cJSON_IsArray(args)) goto fail;
            p = q;
            break;
        default: p = p < end ? plain_number(p, end, &num[i]) : NULL; break;
        }
        if (p == NULL) goto fail;
        p = skip_space(p, end);
        if (p < end && *p == ',') {
            p = skip_space(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') break;
        goto fail;
    }
    if (skip_space(p + 1, end) != end) goto fail; /* bytes after the object: the full path says */
    /* What job_decode checks, in the same terms; a record that fails any of it is left to
     * the full path, which says why. */
    if (args == NULL || str[M_ID] == NULL || str[M_FUNC] == NULL || slen[M_ID] >= sizeof name ||
        slen[M_FUNC] == 0 || slen[M_FUNC] > JOB_FUNC_MAX || slen[M_QUEUE] >= sizeof name)
        goto fail;
    memcpy(name, str[M_ID], slen[M_ID]);
    name[slen[M_ID]] = '\0';
    if (!keys_valid_name(name)) goto fail;
    j = xcalloc(1, sizeof *j);
    memcpy(j->id, name, slen[M_ID] + 1);
    memcpy(j->func, str[M_FUNC], slen[M_FUNC]);
    j->args = args;
    j->retries = -1;
    if (str[M_QUEUE] != NULL) {
        memcpy(j->queue, str[M_QUEUE], slen[M_QUEUE]);
        if (!keys_valid_name(j->queue)) goto fail_job;
    }
    if (!time_ok(num[M_ENQUEUED_AT]) || !time_ok(num[M_TIMEOUT]) ||
        ((seen & (1u << M_RETRIES)) &&
         whole_in(num[M_RETRIES], RETRIES_MIN, RETRIES_MAX, &j->retries) != 0) ||
        whole_in(num[M_ATTEMPTS], 0, COUNTERS_MAX, &j->attempts) != 0 ||
        whole_in(num[M_RECOVERED], 0, COUNTERS_MAX, &j->recovered) != 0 ||
        whole_in(num[M_HANDOFFS], 0, COUNTERS_MAX, &j->handoffs) != 0)
        goto fail_job;
    j->enqueued_at = num[M_ENQUEUED_AT];
    j->timeout = num[M_TIMEOUT];
    *out = j;
    return 0;
fail_job:
    j->args = NULL;
    free(j);
fail:
    cJSON_Delete(args);
    return -1;
}

int job_decode(const char *buf, size_t len, struct job **out, char *err, size_t errlen)
{
    if (job_decode_fast(buf, len, out) == 0) return 0;
    return job_decode_cjson(buf, len, out, err, errlen);
}

int job_decode_cjson(const char *buf, size_t len, struct job **out, char *err, size_t errlen)
{
    cJSON *o, *v, *m[M_N];
    struct job *j;
    char *text, shown[STR_SHOWN_LEN];
    const char *end = NULL;
    locale_t loc;
    int rc = -1, has_nul;

    *out = NULL;
    /* An oversize record is still read for its id (it is in memory already), so that it
     * fails under that id, with a status a poller sees, rather than vanish into the dead
     * list; only one past JOB_RECORD_READ_MAX is not parsed at all. */
    if (len > JOB_RECORD_READ_MAX) {
        err_set(err, errlen, "record of %zu bytes is over the %d byte limit", len, JOB_RECORD_MAX);
        return -1;
    }
    /* cJSON, like any C JSON library, would decode "h\u0000/../x" into a string that ends
     * at "h": an argument cut short without a word. Such a record is refused. */
    has_nul = job_json_has_nul(buf, len);
    text = cjson_copy(buf, len, has_nul);
    loc = locale_c_enter();
    o = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    locale_c_leave(loc);
    if (o == NULL) {
        if (job_json_too_deep(text))
            err_set(err, errlen,
                    "record nests arrays or objects deeper than %d levels, which cq's JSON "
                    "reader takes",
                    CJSON_NESTING_LIMIT);
        else
            err_set(err, errlen, "record is not valid JSON");
        free(text);
        return -1;
    }
    if (!cJSON_IsObject(o)) {
        err_set(err, errlen, "record is not a JSON object");
        goto done;
    }
    find_members(o, m);
    v = m[M_ID];
    if (!cJSON_IsString(v) || !keys_valid_name(v->valuestring)) {
        err_set(err, errlen, "record has no valid id (1-%d characters of A-Z a-z 0-9 _ . @ -)",
                KEYS_NAME_MAX);
        goto done;
    }
    j = xcalloc(1, sizeof *j);
    str_copy(j->id, sizeof j->id, v->valuestring);
    j->retries = -1;
    *out = j;
    if (has_nul) {
        err_set(err, errlen,
                "job %s: a string in the record holds a NUL character (\\u0000), which a C "
                "function cannot be passed; send the bytes another way (e.g. base64)",
                j->id);
        goto done;
    }
    /* cJSON stops at the object's end and says nothing of what follows: '{...}garbage', or
     * two records run together, would run as the first. A record is one JSON value, JSON's
     * own white space (json_space) around it. */
    if (*job_json_rest(end) != '\0') { /* the text ends at len: it holds no NUL */
        err_set(err, errlen,
                "job %s: the record goes on after its JSON object ('%s'): a record is one JSON "
                "object, with only spaces, tabs, CR or LF after it",
                j->id, str_shown(job_json_rest(end), shown, sizeof shown));
        goto done;
    }

    v = m[M_FUNC];
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0' || strlen(v->valuestring) > JOB_FUNC_MAX) {
        err_set(err, errlen, "job %s: field 'func' must be a function name", j->id);
        goto done;
    }
    str_copy(j->func, sizeof j->func, v->valuestring);
    if (len > JOB_RECORD_MAX) {
        err_set(err, errlen, "job %s: record of %zu bytes is over the %d byte limit", j->id, len,
                JOB_RECORD_MAX);
        goto done;
    }

    v = m[M_ARGS] != NULL ? cJSON_DetachItemViaPointer(o, m[M_ARGS]) : NULL;
    if (v == NULL) {
        err_set(err, errlen, "job %s: field 'args' is missing (give [] for none)", j->id);
        goto done;
    } else if (!cJSON_IsArray(v)) {
        cJSON_Delete(v);
        err_set(err, errlen, "job %s: field 'args' must be a JSON array", j->id);
        goto done;
    }
    j->args = v;

    v = m[M_QUEUE];
    if (v != NULL && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v) || !keys_valid_name(v->valuestring)) {
            err_set(err, errlen, "job %s: field 'queue' is not a valid queue name", j->id);
            goto done;
        }
        str_copy(j->queue, sizeof j->queue, v->valuestring);
    }
    if (get_double(m[M_ENQUEUED_AT], &j->enqueued_at) != 0 ||
        get_int(m[M_RETRIES], RETRIES_MIN, RETRIES_MAX, &j->retries) != 0 ||
        get_int(m[M_ATTEMPTS], 0, COUNTERS_MAX, &j->attempts) != 0 ||
        get_int(m[M_RECOVERED], 0, COUNTERS_MAX, &j->recovered) != 0 ||
        get_int(m[M_HANDOFFS], 0, COUNTERS_MAX, &j->handoffs) != 0 ||
        get_double(m[M_TIMEOUT], &j->timeout) != 0) {
        err_set(err, errlen,
                "job %s: enqueued_at, retries, attempts, recovered, handoffs and timeout must be "
                "non-negative numbers (times below 1e11)",
                j->id);
        goto done;
    }
    rc = 0;
done:
    cJSON_Delete(o);
    free(text);
    return rc;
}

/* ---- encoding ------------------------------------------------------------------------ */

/* Records are written here directly, not through a cJSON object: building and printing one
 * was most of a producer's instructions a job. The bytes are those cJSON printed (the same
 * escapes, the same numbers), which tests/test_job.c checks against cJSON itself. */

static void grow(struct job_encoder *e, size_t n)
{
    size_t cap = e->cap ? e->cap * 2 : 256;

    while (cap - e->len < n + 1) cap *= 2;
    e->buf = xrealloc(e->buf, cap);
    e->cap = cap;
}

/* n bytes; room is kept for the NUL that job_encoder_put ends with. */
static inline void put(struct job_encoder *e, const char *s, size_t n)
{
    if (e->cap - e->len < n + 1) grow(e, n);
    memcpy(e->buf + e->len, s, n);
    e->len += n;
}

#define PUT_LIT(e, s) put(e, s, sizeof s - 1)

/* What put_escaped does with a byte: ESC_COPY, copy it as it is (ASCII from 0x20 up, but '"'
 * and '\\'); ESC_HIGH, from 0x80 up, part of a UTF-8 character (checked in text mode);
 * ESC_STOP, escape it (below 0x20, '"', '\\'), or end the string (NUL). One look-up a byte,
 * where three comparisons and a fourth for 0x80 cost a producer 12 instructions a byte, 5%
 * of cenqueue's instructions a job. */
enum { ESC_COPY = 0, ESC_HIGH, ESC_STOP };
/* clang-format off */
#define ESC_ROW(c) c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c
static const unsigned char esc_class[256] = {
    ESC_ROW(ESC_STOP), ESC_ROW(ESC_STOP),                  /* 0x00-0x1f */
    0, 0, ESC_STOP, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20-0x2f: '"' */
    ESC_ROW(ESC_COPY), ESC_ROW(ESC_COPY),                  /* 0x30-0x4f */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ESC_STOP, 0, 0, 0, /* 0x50-0x5f: '\\' */
    ESC_ROW(ESC_COPY), ESC_ROW(ESC_COPY),                  /* 0x60-0x7f */
    ESC_ROW(ESC_HIGH), ESC_ROW(ESC_HIGH), ESC_ROW(ESC_HIGH), ESC_ROW(ESC_HIGH),
    ESC_ROW(ESC_HIGH), ESC_ROW(ESC_HIGH), ESC_ROW(ESC_HIGH), ESC_ROW(ESC_HIGH),
};
#undef ESC_ROW
/* clang-format on */

/* The inside of a JSON string, escaped as cJSON escapes it: \" \\ \b \f \n \r \t, other
 * bytes below 0x20 as \u00XX; everything else (UTF-8 included) as it is, but in e->text
 * mode a byte that is no part of a UTF-8 character, as \ufffd. */
static void put_escaped(struct job_encoder *e, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *run = p;

    for (;; p++) {
        char esc[6] = {'\\', 'u', '0', '0', 0, 0};
        size_t n = 2, k;

        for (;;) {
            while (esc_class[*p] == ESC_COPY) p++;
            if (esc_class[*p] == ESC_STOP) break;
            if (!e->text) {
                p++;
            } else if ((k = utf8_char(p, strnlen((const char *)p, 4))) > 0) {
                p += k;
            } else {
                put(e, (const char *)run, (size_t)(p - run));
                PUT_LIT(e, "\\ufffd");
                run = ++p;
            }
        }
        put(e, (const char *)run, (size_t)(p - run));
        if (*p == '\0') return;
        switch (*p) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            n = 6;
        }
        put(e, esc, n);
        run = p + 1;
    }
}

/* A JSON string. */
static void put_string(struct job_encoder *e, const char *s)
{
    PUT_LIT(e, "\"");
    put_escaped(e, s);
    PUT_LIT(e, "\"");
}

static void put_int(struct job_encoder *e, long long v)
{
    char digits[24], *p = digits;

    if (v < 0) *p++ = '-';
    p = uint_format(p, v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v);
    put(e, digits, (size_t)(p - digits));
}

/* A number as cJSON prints one, a whole number that fits an int as one, otherwise %1.15g,
 * but only where that reads back as the very same double: else %1.17g, which always does.
 * (cJSON keeps %1.15g where it reads back within DBL_EPSILON, so that 6000000000000001, a
 * double, came back as 6e+15: a job's integer argument changed on its way to the worker.) */
static void put_number(struct job_encoder *e, double d)
{
    char buf[32];
    int vi = d >= INT_MAX ? INT_MAX : d <= (double)INT_MIN ? INT_MIN : (int)d, n;
    locale_t loc;

    if (isnan(d) || isinf(d)) {
        put(e, "null", 4);
        return;
    }
    if (d == (double)vi && !(d == 0 && signbit(d))) { /* -0.0 prints as "-0", as cJSON's */
        put_int(e, vi);
        return;
    }
    loc = locale_c_enter(); /* "1,5" would be two numbers */
    n = snprintf(buf, sizeof buf, "%1.15g", d);
    if (strtod(buf, NULL) != d) n = snprintf(buf, sizeof buf, "%1.17g", d);
    locale_c_leave(loc);
    put(e, buf, (size_t)n);
}

/* Any JSON value, compact, as cJSON prints it but for the numbers (put_number). cJSON's
 * parser nests at most 1,000 deep, and so does this. */
static void put_json(struct job_encoder *e, const cJSON *v)
{
    const cJSON *c;

    if (cJSON_IsString(v)) {
        put_string(e, v->valuestring ? v->valuestring : "");
    } else if (cJSON_IsNumber(v)) {
        put_number(e, v->valuedouble);
    } else if (cJSON_IsTrue(v)) {
        PUT_LIT(e, "true");
    } else if (cJSON_IsFalse(v)) {
        PUT_LIT(e, "false");
    } else if (cJSON_IsRaw(v) && v->valuestring != NULL) {
        put(e, v->valuestring, strlen(v->valuestring));
    } else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        int obj = cJSON_IsObject(v);
        put(e, obj ? "{" : "[", 1);
        for (c = v->child; c != NULL; c = c->next) {
            if (c != v->child) PUT_LIT(e, ",");
            if (obj) {
                put_string(e, c->string ? c->string : "");
                PUT_LIT(e, ":");
            }
            put_json(e, c);
        }
        put(e, obj ? "}" : "]", 1);
    } else {
        PUT_LIT(e, "null");
    }
}

char *job_json_print(const cJSON *v)
{
    struct job_encoder e = {0};

    put_json(&e, v);
    e.buf[e.len] = '\0';
    return e.buf;
}

char *job_json_print_text(const cJSON *v)
{
    struct job_encoder e = {0};

    e.text = 1;
    put_json(&e, v);
    e.buf[e.len] = '\0';
    return e.buf;
}

/* One argument. */
static void put_value(struct job_encoder *e, const cJSON *v)
{
    put_json(e, v);
}

static void put_field_int(struct job_encoder *e, const char *name, long long v)
{
    put(e, ",\"", 2);
    put(e, name, strlen(name));
    put(e, "\":", 2);
    put_int(e, v);
}

const char *job_encoder_put(struct job_encoder *e, const struct job *j)
{
    e->len = 0;
    PUT_LIT(e, "{\"id\":\"");
    put_escaped(e, j->id);
    PUT_LIT(e, "\",\"func\":\"");
    put_escaped(e, j->func);
    PUT_LIT(e, "\",\"args\":");
    if (j->args == NULL) {
        PUT_LIT(e, "[]");
    } else if (cJSON_IsArray(j->args)) {
        const cJSON *a;
        PUT_LIT(e, "[");
        for (a = j->args->child; a != NULL; a = a->next) {
            if (a != j->args->child) PUT_LIT(e, ",");
            put_value(e, a);
        }
        PUT_LIT(e, "]");
    } else {
        put_value(e, j->args);
    }
    if (j->queue[0]) {
        PUT_LIT(e, ",\"queue\":\"");
        put_escaped(e, j->queue);
        PUT_LIT(e, "\"");
    }
    if (j->enqueued_at > 0) {
        /* Microseconds, as time_format prints them: cJSON's %1.17g and round-trip check cost
         * far more. A chunk's jobs share one time, formatted once. */
        if (e->tlen == 0 || e->t != j->enqueued_at) {
            e->t = j->enqueued_at;
            e->tlen = time_format(e->tbuf, e->t);
        }
        PUT_LIT(e, ",\"enqueued_at\":");
        put(e, e->tbuf, e->tlen);
    }
    if (j->retries >= 0) put_field_int(e, "retries", j->retries);
    if (j->attempts > 0) put_field_int(e, "attempts", j->attempts);
    if (j->recovered > 0) put_field_int(e, "recovered", j->recovered);
    if (j->handoffs > 0) put_field_int(e, "handoffs", j->handoffs);
    if (j->timeout > 0) {
        PUT_LIT(e, ",\"timeout\":");
        put_number(e, j->timeout);
    }
    PUT_LIT(e, "}");
    e->buf[e->len] = '\0';
    return e->buf;
}

void job_encoder_free(struct job_encoder *e)
{
    free(e->buf);
    memset(e, 0, sizeof *e);
}

char *job_encode(const struct job *j)
{
    struct job_encoder e = {0};

    job_encoder_put(&e, j);
    return e.buf;
}
