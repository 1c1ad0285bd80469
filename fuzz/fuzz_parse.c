/* fuzz_parse.c - duration, size and number parsing (common/util.c): parse_duration_msg,
 * parse_size_msg and parse_long_msg on any string, as every command's options, worker
 * settings and job arguments of type duration reach them.
 *
 * What must hold:
 *   - a duration is a finite number of seconds, not negative and at most 100 years:
 *     callers turn it into milliseconds and timeouts, where an infinity, a NaN or a value
 *     past a long's range is undefined behaviour;
 *   - a size is not negative, and a number is inside the range asked for;
 *   - what parses prints back to the same value (sizes and numbers in decimal, durations
 *     in decimal, without an exponent);
 *   - a failure quotes the input and says what was expected. */
#include <limits.h>
#include <math.h>

#include "fuzz.h"
#include "util.h"

static void check_error(const char *err, const char *what)
{
    FUZZ_CHECK(err[0] == '\'' && strstr(err, what) != NULL, "error line [%s]", err);
}

static void check_duration(const char *s)
{
    char err[256] = "", back[400];
    double d, d2;

    if (parse_duration_msg(s, &d, err, sizeof err) != 0) {
        /* Either not a duration at all, or one over DURATION_MAX: one of the two lines
         * whole (cut where err is), not a search in it, which the input itself can fool. */
        char longer[sizeof err], not_one[sizeof err];
        snprintf(longer, sizeof longer, "'%s' is longer than 100 years", s);
        snprintf(not_one, sizeof not_one, "'%s' is not a duration such as 250ms, 30s, 5m or 2h", s);
        FUZZ_CHECK(strcmp(err, longer) == 0 || strcmp(err, not_one) == 0, "error line [%s]", err);
        return;
    }
    FUZZ_CHECK(isfinite(d) && d >= 0 && d <= DURATION_MAX, "'%s' is %g seconds", s, d);
    /* Without an exponent, which a duration does not take: 330 places give the smallest
     * normal double (2.2e-308) 17 digits and more. */
    snprintf(back, sizeof back, "%.330f", d);
    FUZZ_CHECK(parse_duration_msg(back, &d2, err, sizeof err) == 0 && d2 == d,
               "'%s' (%s) parsed back as %.17g", s, back, d2);
}

static void check_size(const char *s)
{
    char err[256] = "", back[32];
    long long v, v2;

    if (parse_size_msg(s, &v, err, sizeof err) != 0) {
        check_error(err, "is not a size");
        return;
    }
    FUZZ_CHECK(v >= 0, "'%s' is %lld bytes", s, v);
    snprintf(back, sizeof back, "%lld", v);
    FUZZ_CHECK(parse_size_msg(back, &v2, err, sizeof err) == 0 && v2 == v,
               "'%s' (%s) parsed back as %lld", s, back, v2);
}

static void check_long(const char *s, long min, long max)
{
    char err[256] = "", back[32];
    long v, v2;

    if (parse_long_msg(s, min, max, &v, err, sizeof err) != 0) {
        check_error(err, "is not a whole number from");
        return;
    }
    FUZZ_CHECK(v >= min && v <= max, "'%s' is %ld, outside %ld..%ld", s, v, min, max);
    snprintf(back, sizeof back, "%ld", v);
    FUZZ_CHECK(parse_long_msg(back, min, max, &v2, err, sizeof err) == 0 && v2 == v,
               "'%s' (%s) parsed back as %ld", s, back, v2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstring(data, size);

    check_duration(s);
    check_size(s);
    check_long(s, 0, 100);
    check_long(s, -5, 5);
    check_long(s, 1, 65535);
    check_long(s, LONG_MIN, LONG_MAX);
    free(s);
    return 0;
}
