/* job.h - the job record: what a producer LPUSHes and a worker takes.
 *
 * On the wire a record is one JSON object, only JSON's white space after it (docs/PROTOCOL.md):
 *   {"id":"...","func":"download_link","args":["images","https://..."],
 *    "queue":"default","enqueued_at":1767225600.5,
 *    "retries":3,"attempts":0,"timeout":30,"recovered":0}
 * Only id, func and args are required; the rest have defaults so that a record LPUSHed by
 * hand from redis-cli works. Unknown fields are ignored (and dropped on re-encoding).
 */
#ifndef CQ_JOB_H
#define CQ_JOB_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include "keys.h"

#define JOB_ID_MAX          KEYS_NAME_MAX
#define JOB_FUNC_MAX        64
#define JOB_RECORD_MAX      (1024 * 1024)      /* larger records are refused by job_decode */
#define JOB_RECORD_READ_MAX (64 * 1024 * 1024) /* ...still read for their id up to this */

struct job {
    char id[JOB_ID_MAX + 1];
    char func[JOB_FUNC_MAX + 1];
    cJSON *args;                   /* a JSON array, owned by the job */
    char queue[KEYS_NAME_MAX + 1]; /* "" when the record did not say */
    double enqueued_at;            /* Unix seconds; 0 when unknown */
    int retries;                   /* retries allowed; -1 = the function's default */
    int attempts;                  /* attempts started so far */
    int recovered;                 /* times taken back from a dead worker */
    int handoffs;   /* times handed back unrun: by workers that lack its function, have it
                   * benched, or failed it for a host reason (health.h) */
    double timeout; /* seconds; 0 = the function's default */
    int enqueued;   /* set by queue_enqueue once the job is in Redis (not encoded) */
    int id_fresh;   /* its id was made by job_fill_ids and no enqueue has sent it yet, so it
                     * names no job in Redis (not encoded) */
};

/* A new job with the given function and args (ownership of args passes to the job; NULL
 * means an empty array) and no id yet: queue_enqueue gives it a UUID, or set your own. */
struct job *job_new(const char *func, cJSON *args);

/* Fill id with a new random UUID (36 characters + NUL). */
void job_new_id(char id[JOB_ID_MAX + 1]);

/* Give every job of jobs[] whose id is empty a new random UUID, cheaply in bulk (id_fresh set:
 * queue_enqueue treats it as one it made, and clears it). */
void job_fill_ids(struct job *const *jobs, size_t n);

/* Decode a record. On success returns 0 and *out holds the job. On failure returns -1 with
 * err set; *out is NULL when not even a usable id could be read, otherwise *out holds the id
 * (and any fields that did decode) so that the caller can record the failure under it. */
int job_decode(const char *buf, size_t len, struct job **out, char *err, size_t errlen);

/* job_decode's two ways, for tests: the fast path for the plain records cq writes, which
 * returns -1 without a word (and *out NULL) on anything else, and the full path through a
 * cJSON object of the record. A record the fast path decodes, the full path decodes to the
 * same job. */
int job_decode_fast(const char *buf, size_t len, struct job **out);
int job_decode_cjson(const char *buf, size_t len, struct job **out, char *err, size_t errlen);

/* Whether JSON text of len bytes holds a NUL character once decoded (a \u0000 escape or a
 * raw NUL byte): C strings cannot carry one, so job_decode and cq_jobspec_new refuse it. */
int job_json_has_nul(const char *text, size_t len);

/* 1 when JSON text nests arrays and objects deeper than cJSON reads (CJSON_NESTING_LIMIT,
 * 1000), which it then refuses as it refuses text that is no JSON at all: for a message that
 * says which it was. Only the levels the text opens while it is still valid JSON count (as
 * cJSON stops at the first fault): 'x[[[[...' is no JSON, not too deep. Strings' brackets do
 * not count. */
int job_json_too_deep(const char *text);

/* 1 when text is one JSON value as RFC 8259 writes it, white space around it allowed, and
 * nests at most CJSON_NESTING_LIMIT levels. cJSON takes more: a number with a leading zero
 * ('0755', read as 755), '1.', a raw control byte in a string, any byte up to ' ' as white
 * space: where those must not pass, a text cJSON took is checked here too. */
int job_json_strict(const char *text);

/* p past JSON's own white space (space, tab, CR, LF): where a text cJSON read a value from
 * (its parse end) goes on, "" when nothing else follows. cJSON ignores what follows a value
 * unless asked, and then skips any byte up to ' ' as white space. */
const char *job_json_rest(const char *p);

/* 1 when every number in v is finite: cJSON reads 1e400 as infinity, which no JSON text can
 * hold (printed, it would be null); 0 otherwise. */
int job_json_finite(const cJSON *v);

/* 1 when every string in v (values and object keys) is UTF-8 text, as JSON's must be for a
 * reader in another language; 0 otherwise. */
int job_json_utf8(const cJSON *v);

/* Encode to a malloc'ed NUL-terminated JSON string; the caller frees it. */
char *job_encode(const struct job *j);

/* v as compact JSON text (free it): cJSON's text, but every number exactly the double it
 * holds (cJSON's own printer may round one: 6000000000000001 as 6e+15). */
char *job_json_print(const cJSON *v);
/* The same for a reader (cqctl's --json, the dashboard's API): each byte of a string that is
 * no part of a UTF-8 character (utf8_char, util.h) as \ufffd, U+FFFD, so that the text is valid
 * JSON whatever Redis held (a command's stderr in an error, a record from elsewhere). */
char *job_json_print_text(const cJSON *v);

/* An encoder kept across records: its buffer, and the last enqueued_at it formatted, are
 * reused, so that encoding a chunk of jobs enqueued at one moment allocates nothing. A
 * zeroed struct is ready; job_encoder_free releases it. */
struct job_encoder {
    char *buf;
    size_t len, cap;
    double t;
    char tbuf[32];
    size_t tlen;
    int text; /* strings' bytes outside UTF-8 as \ufffd (job_json_print_text) */
};

/* Encode j into e: returns e->buf, the record (e->len bytes, NUL-terminated), valid until
 * the next call. */
const char *job_encoder_put(struct job_encoder *e, const struct job *j);
void job_encoder_free(struct job_encoder *e);

/* Number of args (0 when args is not an array). */
int job_nargs(const struct job *j);

/* The i-th arg as a string, or NULL when it is missing or not a string. */
const char *job_arg_string(const struct job *j, int i);

void job_free(struct job *j);

#endif
