/* fuzz.h - what every fuzz target shares: the libFuzzer entry point's prototype, the check
 * that turns a broken invariant into a crash, and a NUL-terminated copy of the input.
 *
 * A target is one .c file defining LLVMFuzzerTestOneInput. It is linked twice: with
 * libFuzzer (clang, CQ_FUZZ=ON: scripts/fuzz runs it), and with replay.c (any compiler, a
 * CTest test that runs it on every file of its corpus and regressions). A target checks
 * what must hold of the function's result, not only that it did not crash: FUZZ_CHECK
 * prints the broken invariant and aborts, which libFuzzer reports as a crash and saves the
 * input for, and which fails the replay test. */
#ifndef CQ_FUZZ_H
#define CQ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                            \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* The input as a C string, in a buffer of exactly size + 1 bytes (so that AddressSanitizer
 * sees a read past its end); the caller frees it. The functions fuzzed take C strings, so an
 * input with a NUL byte is cut there: that is what they would see of such an argument. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (s == NULL) abort();
    if (size > 0) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* 1 when s holds a byte below 0x20 or 0x7f (an error line or a file name must not). */
static inline int fuzz_has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f) return 1;
    return 0;
}

#endif
