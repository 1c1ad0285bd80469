/* fuzz_job.c - the job-record decoder (common/job.c): job_decode on any bytes, then the
 * argument accessors, then job_encode.
 *
 * What must hold:
 *   - a failure says why in one line; when it still hands back a job (a record with a usable
 *     id that fails later), that id is a valid name;
 *   - a decoded job has a valid id, a function name of 1-64 bytes and an args array, and
 *     job_arg_string gives each string argument and NULL for anything else or out of range;
 *   - job_encode's record decodes again to the same job (enqueued_at to the microsecond the
 *     encoder writes, the timeout and every number in the args to the bit), and a second
 *     round trip changes nothing: a record a worker hands on
 *     (to the scheduled set, the dead list, another queue) means what it meant;
 *   - job_encode writes the bytes cJSON printed before records were written by hand
 *     (tests/job_cjson.h), but where cJSON's record would not decode to the same job (it
 *     prints a number with 15 digits that read back within DBL_EPSILON of it, not to it);
 *   - job_decode answers as its full path through cJSON (job_decode_cjson) does, the same
 *     error or the same job to the bit, and its fast path (job_decode_fast) decodes nothing
 *     that path would refuse or decode otherwise. */
#include <float.h>
#include <math.h>

#include <cjson/cJSON.h>

#include "../tests/job_cjson.h"
#include "fuzz.h"
#include "job.h"
#include "keys.h"

static void check_args(const struct job *j)
{
    int n = job_nargs(j), i;

    FUZZ_CHECK(n == cJSON_GetArraySize(j->args), "%d arguments", n);
    for (i = 0; i < n; i++) {
        const cJSON *a = cJSON_GetArrayItem(j->args, i);
        const char *s = job_arg_string(j, i);

        if (cJSON_IsString(a)) {
            FUZZ_CHECK(s == a->valuestring, "argument %d", i);
            FUZZ_CHECK(strlen(s) < JOB_RECORD_READ_MAX, "argument %d", i);
        } else {
            FUZZ_CHECK(s == NULL, "argument %d is not a string", i);
        }
    }
    FUZZ_CHECK(job_arg_string(j, n) == NULL, "argument %d of %d", n, n);
    FUZZ_CHECK(job_arg_string(j, -1) == NULL, "argument -1");
}

/* The args printed, for comparing two jobs' (each number to the bit; a non-finite one prints
 * as null, as the encoder writes it). */
static char *args_text(const struct job *j)
{
    return job_json_print(j->args);
}

static void check_same(const struct job *a, const struct job *b, const char *record)
{
    char *ta = args_text(a), *tb = args_text(b);

    FUZZ_CHECK(strcmp(a->id, b->id) == 0, "id in %s", record);
    FUZZ_CHECK(strcmp(a->func, b->func) == 0, "func in %s", record);
    FUZZ_CHECK(strcmp(a->queue, b->queue) == 0, "queue in %s", record);
    FUZZ_CHECK(strcmp(ta, tb) == 0, "args %s became %s", ta, tb);
    FUZZ_CHECK(a->retries == b->retries && a->attempts == b->attempts &&
                   a->recovered == b->recovered && a->handoffs == b->handoffs,
               "counters in %s", record);
    /* A number is written with 15 digits only when they read back as the same double, so
     * 9.4467440737095512 stays itself (cJSON's "9.44674407370955" read back one unit off). */
    FUZZ_CHECK(a->timeout == b->timeout, "timeout %.17g became %.17g", a->timeout, b->timeout);
    FUZZ_CHECK(fabs(a->enqueued_at - b->enqueued_at) <= 1e-6, "enqueued_at %.17g became %.17g",
               a->enqueued_at, b->enqueued_at);
    free(ta);
    free(tb);
}

/* Decode what job_encode wrote: it must succeed. */
static struct job *decode_encoded(const char *record)
{
    struct job *j;
    char err[256];

    FUZZ_CHECK(job_decode(record, strlen(record), &j, err, sizeof err) == 0, "%s: %s", record, err);
    return j;
}

/* job_decode against its two paths (tests/test_job.c's both_paths, for any bytes). */
static void check_paths(const char *rec, size_t len)
{
    struct job *jc = NULL, *jf = NULL, *jd = NULL;
    char errc[256] = "", errd[256] = "";
    int rc = job_decode_cjson(rec, len, &jc, errc, sizeof errc);
    int rf = job_decode_fast(rec, len, &jf);
    int rd = job_decode(rec, len, &jd, errd, sizeof errd);

    FUZZ_CHECK(rd == rc, "job_decode %d, its cJSON path %d (%s)", rd, rc, errc);
    if (rc != 0) {
        FUZZ_CHECK(strcmp(errd, errc) == 0, "error [%s], its cJSON path [%s]", errd, errc);
        FUZZ_CHECK(rf != 0 && jf == NULL, "the fast path decoded what cJSON's refuses: %s", errc);
        FUZZ_CHECK((jd == NULL) == (jc == NULL) && (jd == NULL || strcmp(jd->id, jc->id) == 0),
                   "the failed record's id");
    } else {
        FUZZ_CHECK(*job_differ(jd, jc) == '\0', "%s differs from the cJSON path's",
                   job_differ(jd, jc));
        FUZZ_CHECK(rf != 0 || *job_differ(jf, jc) == '\0', "the fast path's %s differs",
                   job_differ(jf, jc));
    }
    job_free(jc);
    job_free(jf);
    job_free(jd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct job *j, *j2, *j3;
    char err[256] = "";
    char *s1, *s2, *s3;

    check_paths((const char *)data, size);
    if (job_decode((const char *)data, size, &j, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != '\0' && !fuzz_has_ctl(err), "error line [%s]", err);
        if (j != NULL) FUZZ_CHECK(keys_valid_name(j->id), "id of a failed record");
        job_free(j);
        return 0;
    }
    FUZZ_CHECK(j != NULL && keys_valid_name(j->id), "id");
    FUZZ_CHECK(j->func[0] != '\0' && strlen(j->func) <= JOB_FUNC_MAX, "func");
    FUZZ_CHECK(j->queue[0] == '\0' || keys_valid_name(j->queue), "queue");
    FUZZ_CHECK(cJSON_IsArray(j->args), "args");
    FUZZ_CHECK(j->retries >= -1 && j->attempts >= 0 && j->recovered >= 0 && j->handoffs >= 0,
               "counters");
    FUZZ_CHECK(isfinite(j->timeout) && j->timeout >= 0 && isfinite(j->enqueued_at) &&
                   j->enqueued_at >= 0,
               "times");
    check_args(j);

    s1 = job_encode(j);
    {
        char *ref = job_encode_cjson(j);
        if (strcmp(s1, ref) != 0) { /* only where cJSON's record changes a number */
            struct job *jr = decode_encoded(ref);
            char *ta = args_text(j), *tr = args_text(jr);
            FUZZ_CHECK(strcmp(ta, tr) != 0 || j->timeout != jr->timeout,
                       "encoded as %s, cJSON prints %s", s1, ref);
            free(ta);
            free(tr);
            job_free(jr);
        }
        free(ref);
    }
    j2 = decode_encoded(s1);
    check_same(j, j2, s1);
    check_args(j2);
    s2 = job_encode(j2);
    j3 = decode_encoded(s2);
    s3 = job_encode(j3);
    FUZZ_CHECK(strcmp(s2, s3) == 0, "%s re-encoded as %s", s2, s3);

    free(s1);
    free(s2);
    free(s3);
    job_free(j);
    job_free(j2);
    job_free(j3);
    return 0;
}
