/* test_util.c - util.c's fixed_format (a job's times in its status hash, a finished job's
 * duration in the worker's line) and uint_format (RESP counts, a record's numbers, a log
 * line's pid), against what printf writes; fd_table_reserve, against the table's size in
 * /proc/self/status. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "check.h"
#include "util.h"

static const char *fixed(double v, int decimals)
{
    static char buf[32];

    CHECK_EQ(fixed_format(buf, v, decimals), strlen(buf));
    return buf;
}

static void test_values(void)
{
    char buf[32];

    CHECK_STREQ(fixed(0, 3), "0.000");
    CHECK_STREQ(fixed(1.2345, 3), "1.234"); /* 1.23449999... in binary, 1234.5 times 1000 */
    CHECK_STREQ(fixed(0.0005, 3), "0.001"); /* 0.000500000000000000010... */
    CHECK_STREQ(fixed(59.9996, 3), "60.000");
    CHECK_STREQ(fixed(-0.25, 3), "-0.250");
    CHECK_STREQ(fixed(-0.0001, 3), "-0.000");
    CHECK_STREQ(fixed(0.0625, 3), "0.062"); /* exact ties go to the even digit */
    CHECK_STREQ(fixed(0.1875, 3), "0.188");
    CHECK_STREQ(fixed(2.5, 0), "2");
    CHECK_STREQ(fixed(7, 0), "7");
    CHECK_STREQ(fixed(1767225600.25, 6), "1767225600.250000");
    CHECK_STREQ(fixed(-1.5e-6, 6), "-0.000002");  /* -1.50000000000000003e-06 */
    CHECK_STREQ(fixed(123.456, 9), "123.456000"); /* at most 6 decimals */
    CHECK_STREQ(fixed(1, -1), "1");
    CHECK_STREQ(fixed(1e12, 3), "0.000"); /* out of range */
    CHECK_STREQ(fixed(-1e13, 6), "0.000000");
    CHECK_STREQ(fixed(0.0 / 0.0, 3), "0.000");
    CHECK_EQ(time_format(buf, 1767225600.0000017), 17);
    CHECK_STREQ(buf, "1767225600.000002");
    /* Beyond 2^52 millionths the product a * 1e6 is rounded: 40702006207.020504 would read
     * back one last place off (found by fuzz_job). */
    CHECK_EQ(time_format(buf, 40702006207.0205), 18);
    CHECK_STREQ(buf, "40702006207.020500");
}

/* 10^-7 to 10^11, one after the other. */
static double magnitude(int i)
{
    static const double p[] = {1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1,    1e1, 1e2,
                               1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11};
    return p[(size_t)i % (sizeof p / sizeof p[0])];
}

/* 700,000 values: from 1e-7 to 1e11 of either sign, and Unix times of this century, with 0
 * to 6 decimals (in units of the last decimal up to 1e17, where a double's last place is 16):
 * the same text as printf's, every one, and with six decimals read back within 1e-6 (what
 * fuzz_job asks of a record's enqueued_at). */
static void test_against_printf(void)
{
    static const double scale[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    unsigned long long x = 0x9e3779b97f4a7c15ULL;
    int i, bad = 0, moved = 0;

    for (i = 0; i < 700000; i++) {
        char ours[32], theirs[64];
        int d = i % 7;
        double v, m;

        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        m = (double)(x >> 11) / 9007199254740992.0; /* [0, 1) */
        if (i % 11 == 3)
            v = 946684800.0 + m * 3155760000.0; /* 2000-01-01 to 2100 */
        else
            v = (x & 1 ? -m : m) * magnitude(i / 7);
        /* Now and then a value next to a tie: an exact one with no decimals (k + 0.5), the
         * double nearest to one with decimals, whose remainder (fma's) decides. */
        if (i % 5 == 0) v = (double)(long long)(v * scale[d]) / scale[d] + 0.5 / scale[d];
        fixed_format(ours, v, d);
        snprintf(theirs, sizeof theirs, "%.*f", d, v);
        if (strcmp(ours, theirs) != 0 && bad++ < 5)
            fprintf(stderr, "  %.17g with %d decimals: %s, printf %s\n", v, d, ours, theirs);
        if (d == 6 && fabs(strtod(ours, NULL) - v) > 1e-6 && moved++ < 5)
            fprintf(stderr, "  %.17g read back as %s\n", v, ours);
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(moved, 0);
}

/* uint_format: the digits printf's %llu writes, for the edges and powers of ten either side,
 * and not a byte past them. */
static void test_uint_format(void)
{
    unsigned long long v[64], p10 = 1;
    size_t n = 0, i;
    int bad = 0;

    v[n++] = 0;
    v[n++] = ~0ULL;
    for (i = 0; i < 20; i++) {
        v[n++] = p10 - 1;
        v[n++] = p10;
        if (i < 19) p10 *= 10;
    }
    for (i = 0; i < n; i++) {
        char ours[32], want[32], *end;
        memset(ours, 'x', sizeof ours);
        end = uint_format(ours, v[i]);
        snprintf(want, sizeof want, "%llu", v[i]);
        if ((size_t)(end - ours) != strlen(want) || memcmp(ours, want, strlen(want)) != 0 ||
            *end != 'x') {
            bad++;
            fprintf(stderr, "  uint_format(%s) wrote %.*s\n", want, (int)(end - ours), ours);
        }
    }
    CHECK_EQ(bad, 0);
}

/* str_shown: what an error line quotes of a name or a value: one line, no terminal escape,
 * at most STR_SHOWN_MAX bytes of it, so that the cause after it shows. */
static void test_str_shown(void)
{
    char buf[STR_SHOWN_LEN], big[700];

    CHECK_STREQ(str_shown("queue-1", buf, sizeof buf), "queue-1");
    CHECK_STREQ(str_shown(NULL, buf, sizeof buf), "");
    CHECK_STREQ(str_shown("a\nb\rc\td\x1b[31me\x7f", buf, sizeof buf),
                "a\\nb\\rc\\td\\x1b[31me\\x7f");
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    str_shown(big, buf, sizeof buf);
    CHECK_EQ(strlen(buf), (size_t)STR_SHOWN_MAX + 3);
    CHECK_STREQ(buf + STR_SHOWN_MAX, "...");
    big[STR_SHOWN_MAX] = '\0'; /* exactly the most: whole, no "..." */
    CHECK_STREQ(str_shown(big, buf, sizeof buf), big);
    memset(big, '\n', sizeof big - 1); /* the worst case fits STR_SHOWN_LEN */
    str_shown(big, buf, sizeof buf);
    CHECK_EQ(strlen(buf), (size_t)STR_SHOWN_MAX * 2 + 3);
    memset(big, 0xff, sizeof big - 1);
    str_shown(big, buf, sizeof buf);
    CHECK_EQ(strlen(buf), (size_t)STR_SHOWN_MAX * 4 + 3);
}

/* str_shown and UTF-8: characters as they are, bytes that are none (Latin-1, a character
 * cut short, an overlong form, a surrogate) as \xHH, never a character cut in two at the
 * limit (the line would end in half a character); C1 controls (U+009B is CSI) escaped. */
static void test_str_shown_utf8(void)
{
    char buf[STR_SHOWN_LEN], big[STR_SHOWN_MAX + 8];
    size_t i;

    CHECK_STREQ(str_shown("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", buf, sizeof buf),
                "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    CHECK_STREQ(str_shown("caf\xe9!", buf, sizeof buf), "caf\\xe9!");
    CHECK_STREQ(str_shown("a\xc3", buf, sizeof buf), "a\\xc3");
    CHECK_STREQ(str_shown("\xe2\x82x", buf, sizeof buf), "\\xe2\\x82x");
    CHECK_STREQ(str_shown("\xc0\xaf \xed\xa0\x80 \xff", buf, sizeof buf),
                "\\xc0\\xaf \\xed\\xa0\\x80 \\xff");
    CHECK_STREQ(str_shown("\xc2\x9b[31m \xc2\xa0", buf, sizeof buf), "\\xc2\\x9b[31m \xc2\xa0");
    /* 62 bytes of 'a', then a 3-byte character crossing the 64th: left out whole, "..." */
    memset(big, 'a', STR_SHOWN_MAX - 2);
    memcpy(big + STR_SHOWN_MAX - 2, "\xe2\x82\xac", 4);
    str_shown(big, buf, sizeof buf);
    CHECK_EQ(strlen(buf), (size_t)STR_SHOWN_MAX - 2 + 3);
    CHECK_STREQ(buf + STR_SHOWN_MAX - 2, "...");
    /* 61 of them: the character ends on the 64th byte, whole, nothing cut */
    memset(big, 'a', STR_SHOWN_MAX - 3);
    memcpy(big + STR_SHOWN_MAX - 3, "\xe2\x82\xac", 4);
    CHECK_STREQ(str_shown(big, buf, sizeof buf), big);
    /* only 4-byte characters: the line is whole characters at every length */
    for (i = 0; i + 4 < sizeof big; i += 4) memcpy(big + i, "\xf0\x9f\x98\x80", 4);
    big[i] = '\0';
    str_shown(big, buf, sizeof buf);
    CHECK_EQ(strlen(buf), (size_t)STR_SHOWN_MAX + 3);
    CHECK_STREQ(buf + STR_SHOWN_MAX - 4, "\xf0\x9f\x98\x80...");
}

/* FDSize: the slots of this process's descriptor table, as the kernel tells. */
static long fd_table_size(void)
{
    char line[256];
    long n = -1;
    FILE *f = fopen("/proc/self/status", "r");

    if (f == NULL) return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "FDSize:", 7) == 0) n = strtol(line + 7, NULL, 10);
    fclose(f);
    return n;
}

/* The table grows to the number asked at once, and never past the soft limit on descriptors,
 * which a descriptor beyond could not be made under anyway. */
static void test_fd_table_reserve(void)
{
    struct rlimit rl, low;

    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (fd_table_size() <= 0 || rl.rlim_max < 600) {
        fprintf(stderr,
                "FAIL: fd_table_reserve: the test needs /proc/self/status and a hard "
                "limit on descriptors of 600 or more (ulimit -Hn: %lu)\n",
                (unsigned long)rl.rlim_max);
        CHECK(0);
        return;
    }
    low = rl;
    low.rlim_cur = 600;
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
    fd_table_reserve(1);
    fd_table_reserve(-5);         /* nothing to do: not the whole limit */
    CHECK(fd_table_size() < 300); /* a test program's few descriptors: 64 */
    fd_table_reserve(300);
    CHECK(fd_table_size() >= 300);
    CHECK(fd_table_size() < 600); /* the kernel's next power of two: 512 */
    fd_table_reserve(100000);
    CHECK(fd_table_size() >= 600);
    CHECK(fd_table_size() <= 1024); /* the limit, rounded up to a power of two */
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
}

/* The calling thread's name, as /proc tells it. */
static void thread_comm(char *out, size_t outlen)
{
    FILE *f = fopen("/proc/thread-self/comm", "r");

    out[0] = '\0';
    if (f == NULL) return;
    if (fgets(out, (int)outlen, f) != NULL) out[strcspn(out, "\n")] = '\0';
    fclose(f);
}

/* A name of 15 bytes or fewer as it is; a longer one cut to 15, where Linux refuses it. */
static void test_thread_name(void)
{
    char comm[64];

    thread_name("cq-exec");
    thread_comm(comm, sizeof comm);
    CHECK_STREQ(comm, "cq-exec");
    thread_name("cq-0123456789abcdef");
    thread_comm(comm, sizeof comm);
    CHECK_STREQ(comm, "cq-0123456789ab");
}

int main(void)
{
    test_fd_table_reserve();
    test_thread_name();
    test_str_shown();
    test_str_shown_utf8();
    test_uint_format();
    test_values();
    test_against_printf();
    return check_report();
}
