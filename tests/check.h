/* check.h - the small assert macros of cq's C unit tests. A failed check prints one line
 * naming the file, the line and what differed, and the run goes on; check_report() prints
 * the "N passed, N failed" line that closes a test program and gives its exit status. */
#ifndef CQ_TEST_CHECK_H
#define CQ_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int checks, failures;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        checks++;                                                                   \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                             \
        }                                                                           \
    } while (0)

#define CHECK_EQ(a, b)                                                              \
    do {                                                                            \
        long long a_ = (long long)(a), b_ = (long long)(b);                         \
        checks++;                                                                   \
        if (a_ != b_) {                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n",       \
                    __FILE__, __LINE__, #a, #b, a_, b_);                            \
            failures++;                                                             \
        }                                                                           \
    } while (0)

#define CHECK_STREQ(a, b)                                                           \
    do {                                                                            \
        const char *a_ = (a), *b_ = (b);                                            \
        checks++;                                                                   \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                    \
            fprintf(stderr, "%s:%d: CHECK failed: \"%s\" != \"%s\"\n", __FILE__,    \
                    __LINE__, a_ ? a_ : "(null)", b_ ? b_ : "(null)");              \
            failures++;                                                             \
        }                                                                           \
    } while (0)

/* The string s contains needle; s is printed when it does not. */
#define CHECK_HAS(s, needle)                                                        \
    do {                                                                            \
        const char *s_ = (s), *n_ = (needle);                                       \
        checks++;                                                                   \
        if (!s_ || strstr(s_, n_) == NULL) {                                        \
            fprintf(stderr, "%s:%d: CHECK failed: \"%s\" does not contain \"%s\"\n", \
                    __FILE__, __LINE__, s_ ? s_ : "(null)", n_);                    \
            failures++;                                                             \
        }                                                                           \
    } while (0)

static inline int check_report(void)
{
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}

#endif
