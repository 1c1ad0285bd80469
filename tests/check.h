/* check.h - the small assert macros of cq's C unit tests. Each test program counts its
 * checks, prints one line per failure, and ends with CHECK_DONE(), which prints the
 * "N passed, N failed" line and returns non-zero when anything failed. */
#ifndef CQ_TEST_CHECK_H
#define CQ_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                               \
    do {                                                                          \
        if (cond) {                                                               \
            check_passed++;                                                       \
        } else {                                                                  \
            check_failed++;                                                       \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
        }                                                                         \
    } while (0)

#define CHECK_STR(a, b)                                                           \
    do {                                                                          \
        const char *check_a_ = (a), *check_b_ = (b);                              \
        if (check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0) {            \
            check_passed++;                                                       \
        } else {                                                                  \
            check_failed++;                                                       \
            fprintf(stderr, "FAIL %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, \
                    __LINE__, #a, check_a_ ? check_a_ : "(null)",                 \
                    check_b_ ? check_b_ : "(null)");                              \
        }                                                                         \
    } while (0)

#define CHECK_CONTAINS(hay, needle) CHECK(strstr((hay), (needle)) != NULL)

#define CHECK_DONE()                                                              \
    do {                                                                          \
        printf("%d passed, %d failed\n", check_passed, check_failed);            \
        return check_failed ? 1 : 0;                                              \
    } while (0)

#endif
