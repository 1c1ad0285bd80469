/* check.h - the small assert macros of cq's C unit tests. A failed check prints one line
 * naming the file, the line and what differed, and the run goes on; check_report() prints
 * the "N passed, N failed" line that closes a test program and gives its exit status.
 *
 * A test program is one function per case (static void test_x(void)), and main calls them
 * in turn. REQUIRE and CHECK_NOTNULL are the exceptions to "the run goes on": they stop the
 * current case with `return;` when a precondition fails, so that the case does not go on to
 * dereference a NULL or index past what it got. Use them only in functions returning void
 * (a `return;` in any other function does not compile cleanly: -Wreturn-type). */
#ifndef CQ_TEST_CHECK_H
#define CQ_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int checks, failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        checks++;                                                                    \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                              \
        }                                                                            \
    } while (0)

/* CHECK_EQ compares integers (as long long). Handing it a float or a double does not
 * compile: the cast would hide a fraction, use CHECK_DBL_EQ. */
#define CHECK_INTEGER_(x)                                                              \
    _Static_assert(_Generic((x), float : 0, double : 0, long double : 0, default : 1), \
                   "CHECK_EQ compares integers; use CHECK_DBL_EQ for " #x)

#define CHECK_EQ(a, b)                                                                            \
    do {                                                                                          \
        CHECK_INTEGER_(a);                                                                        \
        CHECK_INTEGER_(b);                                                                        \
        long long a_ = (long long)(a), b_ = (long long)(b);                                       \
        checks++;                                                                                 \
        if (a_ != b_) {                                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, \
                    #a, #b, a_, b_);                                                              \
            failures++;                                                                           \
        }                                                                                         \
    } while (0)

/* Two doubles are exactly equal (no tolerance: a NaN equals nothing). Both are printed with
 * all 17 significant digits, so that values that differ in the last bit do not look alike. */
#define CHECK_DBL_EQ(a, b)                                                                \
    do {                                                                                  \
        double a_ = (double)(a), b_ = (double)(b);                                        \
        checks++;                                                                         \
        if (!(a_ == b_)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%.17g != %.17g)\n", __FILE__, \
                    __LINE__, #a, #b, a_, b_);                                            \
            failures++;                                                                   \
        }                                                                                 \
    } while (0)

#define CHECK_STREQ(a, b)                                                                  \
    do {                                                                                   \
        const char *a_ = (a), *b_ = (b);                                                   \
        checks++;                                                                          \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                           \
            fprintf(stderr, "%s:%d: CHECK failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)");                               \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

/* The string s contains needle; s is printed when it does not. */
#define CHECK_HAS(s, needle)                                                                   \
    do {                                                                                       \
        const char *s_ = (s), *n_ = (needle);                                                  \
        checks++;                                                                              \
        if (!s_ || strstr(s_, n_) == NULL) {                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: \"%s\" does not contain \"%s\"\n", __FILE__, \
                    __LINE__, s_ ? s_ : "(null)", n_);                                         \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

/* A precondition of the rest of the case: when cond is false, count a failure and leave the
 * case (`return;` - only in a function returning void). */
#define REQUIRE(cond)                                                                        \
    do {                                                                                     \
        checks++;                                                                            \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: REQUIRE failed, case stopped: %s\n", __FILE__, __LINE__, \
                    #cond);                                                                  \
            failures++;                                                                      \
            return;                                                                          \
        }                                                                                    \
    } while (0)

/* p is not NULL; else count a failure and leave the case (`return;` - only in a function
 * returning void). */
#define CHECK_NOTNULL(p)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        if ((p) == NULL) {                                                                         \
            fprintf(stderr, "%s:%d: CHECK failed, case stopped: %s is NULL\n", __FILE__, __LINE__, \
                    #p);                                                                           \
            failures++;                                                                            \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static inline int check_report(void)
{
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}

#endif
