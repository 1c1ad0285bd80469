/* test_log.c - log.c: a line's format, and a logger with a buffer, whose lines go out in one
 * write at log_flush, or earlier when the next line would not fit in LOG_BUF_MAX. stderr is
 * a non-blocking pipe here, so that what was written can be read back write by write. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "log.h"

static int out = -1; /* the read end of the pipe that stderr writes to */

/* What has been written since the last call (at most len - 1 bytes), or "" when nothing. */
static const char *written(char *buf, size_t len)
{
    size_t n = 0;

    for (;;) {
        ssize_t r = read(out, buf + n, len - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return buf;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;

    for (; *s; s++) n += *s == '\n';
    return n;
}

static void test_unbuffered(void)
{
    struct logger lg = {"test", CQ_LOG_INFO, 0, NULL};
    char buf[8192];

    LOG(&lg, CQ_LOG_INFO, "hello %d", 42);
    written(buf, sizeof buf);
    CHECK_HAS(buf, " test[");
    CHECK_HAS(buf, "] INFO hello 42\n");
    CHECK_EQ(count_lines(buf), 1);
    {
        /* the whole prefix: "YYYY-MM-DDTHH:MM:SS.mmmZ test[PID] INFO " */
        const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
        char rest[64];
        size_t i;
        int ok = strlen(buf) > strlen(shape);
        for (i = 0; ok && shape[i]; i++)
            ok = shape[i] == 'd' ? buf[i] >= '0' && buf[i] <= '9' : buf[i] == shape[i];
        CHECK(ok);
        snprintf(rest, sizeof rest, " test[%ld] INFO hello 42\n", (long)getpid());
        CHECK_STREQ(buf + strlen(shape), rest);
    }
    LOG(&lg, CQ_LOG_DEBUG, "dropped");
    CHECK_STREQ(written(buf, sizeof buf), "");
}

static void test_buffered(void)
{
    static struct log_buf b;
    struct logger lg = {"test", CQ_LOG_INFO, 0, &b};
    char buf[16384], line[200];
    int i;

    LOG(&lg, CQ_LOG_INFO, "first");
    LOG(&lg, CQ_LOG_INFO, "second");
    CHECK_STREQ(written(buf, sizeof buf), ""); /* gathered, not written */
    log_flush(&lg);
    written(buf, sizeof buf);
    CHECK_EQ(count_lines(buf), 2);
    CHECK_HAS(buf, "] INFO first\n");
    CHECK_HAS(buf, "] INFO second\n");
    log_flush(&lg);
    CHECK_STREQ(written(buf, sizeof buf), ""); /* nothing left */

    /* 100 lines of about 150 bytes: whole writes of at most LOG_BUF_MAX bytes, lines intact. */
    memset(line, 'x', 120);
    line[120] = '\0';
    for (i = 0; i < 100; i++) {
        LOG(&lg, CQ_LOG_INFO, "%03d %s", i, line);
        written(buf, sizeof buf);
        if (buf[0] == '\0') continue;
        CHECK(strlen(buf) <= LOG_BUF_MAX);
        CHECK(buf[strlen(buf) - 1] == '\n');
        CHECK(strlen(buf) > LOG_BUF_MAX - 200); /* written only once nearly full */
    }
    log_flush(&lg);
    written(buf, sizeof buf);
    CHECK_HAS(buf, "] INFO 099 ");
}

/* The pid in a line is the writer's: a forked child's lines carry the child's, though the
 * parent's was kept before the fork (and, with a buffer, in its prefix's tail). */
static void test_pid_after_fork(void)
{
    static struct log_buf b;
    struct logger lg = {"test", CQ_LOG_INFO, 0, NULL}, blg = {"test", CQ_LOG_INFO, 0, &b};
    char buf[8192], want[64];
    pid_t child;
    int status = -1;

    LOG(&lg, CQ_LOG_INFO, "parent");
    snprintf(want, sizeof want, " test[%ld] INFO parent\n", (long)getpid());
    CHECK_HAS(written(buf, sizeof buf), want);
    /* A buffered logger's prefix tail, kept with the parent's pid in it. */
    LOG(&blg, CQ_LOG_INFO, "buffered");
    log_flush(&blg);
    written(buf, sizeof buf);
    child = fork();
    if (child == 0) {
        LOG(&lg, CQ_LOG_INFO, "child");
        LOG(&blg, CQ_LOG_INFO, "child buffered");
        log_flush(&blg);
        _exit(0);
    }
    CHECK(child > 0);
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status));
    snprintf(want, sizeof want, " test[%ld] INFO child\n", (long)child);
    CHECK_HAS(written(buf, sizeof buf), want);
    snprintf(want, sizeof want, " test[%ld] INFO child buffered\n", (long)child);
    CHECK_HAS(buf, want);
    LOG(&lg, CQ_LOG_INFO, "parent again");
    snprintf(want, sizeof want, " test[%ld] INFO parent again\n", (long)getpid());
    CHECK_HAS(written(buf, sizeof buf), want);
}

/* A message of %s and %% conversions only is written without printf: the same bytes as
 * printf writes, a NULL string as "(null)", and a message over the limit cut where printf's
 * would be; any other conversion still goes through printf. */
static void test_strings_only(void)
{
    struct logger lg = {"test", CQ_LOG_INFO, 0, NULL};
    static char buf[8192], big[3000], want[3000];
    const char *volatile none = NULL;
    const char *msg;

    LOG(&lg, CQ_LOG_INFO, "%s: %s %% %s%%s end%%", "q", none, "b");
    CHECK_HAS(written(buf, sizeof buf), "] INFO q: (null) % b%s end%\n");
    LOG(&lg, CQ_LOG_INFO, "%s%s", "", "");
    CHECK_HAS(written(buf, sizeof buf), "] INFO \n");
    LOG(&lg, CQ_LOG_INFO, "%s and %5s", "padded", "x");
    CHECK_HAS(written(buf, sizeof buf), "] INFO padded and     x\n");
    memset(big, 'x', sizeof big - 1);
    LOG(&lg, CQ_LOG_INFO, "%s|%s", big, "tail");
    msg = strstr(written(buf, sizeof buf), "] INFO ");
    REQUIRE(msg != NULL);
    /* cut to log.c's MSG_MAX less the terminator, as vsnprintf cuts it: 1,535 x's */
    memset(want, 'x', 1535);
    want[1535] = '\n';
    CHECK_STREQ(msg + 7, want);
}

/* What a message holds from outside (a job's error, a command's stderr, a request's URL) is
 * one line in the text log, with no terminal escape: control bytes made visible. */
static void test_control_bytes(void)
{
    struct logger lg = {"test", CQ_LOG_INFO, 0, NULL};
    static char buf[16384], big[1600];
    const char *msg;

    LOG(&lg, CQ_LOG_WARN, "GET %s refused",
        "/x\n2026-12-05T10:02:00.000Z cqctl INFO forged\r\x1b[31m\tred\x7f");
    written(buf, sizeof buf);
    CHECK_EQ(count_lines(buf), 1);
    CHECK_HAS(buf,
              "] WARN GET /x\\n2026-12-05T10:02:00.000Z cqctl INFO forged\\r\\x1b[31m\tred\\x7f "
              "refused\n");
    /* four bytes for each, the line still ends with its newline */
    memset(big, '\x1b', sizeof big - 1);
    LOG(&lg, CQ_LOG_INFO, "%s", big);
    msg = strstr(written(buf, sizeof buf), "] INFO ");
    REQUIRE(msg != NULL);
    CHECK_EQ(count_lines(buf), 1);
    CHECK_HAS(msg, "\\x1b\\x1b");
    CHECK_EQ(buf[strlen(buf) - 1], '\n');
    CHECK(strlen(buf) < 4096);
    /* the JSON format escapes them as JSON does */
    lg.json = 1;
    LOG(&lg, CQ_LOG_INFO, "a\nb\x1b");
    CHECK_HAS(written(buf, sizeof buf), "\"msg\":\"a\\u000ab\\u001b\"}\n");
}

/* Every byte value at every place of a 43-byte message (the scan goes sixteen bytes at a
 * time, then eight, then one): a control byte is made visible wherever it is, a tab and every
 * other byte stay. */
static void test_control_anywhere(void)
{
    struct logger lg = {"test", CQ_LOG_INFO, 0, NULL};
    static char buf[16384];
    char msg[44], want[32];
    int b, at, bad = 0;

    for (b = 1; b < 256; b++)
        for (at = 0; at < 43; at++) {
            memset(msg, 'a', 43);
            msg[43] = '\0';
            msg[at] = (char)b;
            LOG(&lg, CQ_LOG_INFO, "%s", msg);
            written(buf, sizeof buf);
            if (b == '\n')
                snprintf(want, sizeof want, "\\n");
            else if (b == '\r')
                snprintf(want, sizeof want, "\\r");
            else if ((b < 0x20 && b != '\t') || b == 0x7f)
                snprintf(want, sizeof want, "\\x%02x", b);
            else
                snprintf(want, sizeof want, "%c", b);
            if (strstr(buf, want) == NULL || count_lines(buf) != 1) bad++;
        }
    CHECK_EQ(bad, 0);
}

/* A line from parts (LOG_PARTS, the worker's line a job): the strings one after another, a
 * NULL one as "(null)", control bytes made visible, cut at the message's limit; the prefix's
 * level and pid right when a buffered logger's lines change level; JSON as log_emit's. */
static void test_parts(void)
{
    static struct log_buf b;
    struct logger lg = {"test", CQ_LOG_INFO, 0, &b};
    static char buf[16384], big[2000], want[64];
    const char *volatile none = NULL;
    const char *msg;

    LOG_PARTS(&lg, CQ_LOG_INFO, "default", ": ", "noop", " ", "id-1", " finished in ", "0.001",
              "s");
    LOG_PARTS(&lg, CQ_LOG_WARN, "a", none, "b\nc");
    LOG_PARTS(&lg, CQ_LOG_INFO, "");
    LOG_PARTS(&lg, CQ_LOG_DEBUG, "dropped");
    log_flush(&lg);
    written(buf, sizeof buf);
    CHECK_EQ(count_lines(buf), 3);
    snprintf(want, sizeof want, "Z test[%ld] INFO default: noop id-1 finished in 0.001s\n",
             (long)getpid());
    CHECK_HAS(buf, want);
    snprintf(want, sizeof want, "Z test[%ld] WARN a(null)b\\nc\n", (long)getpid());
    CHECK_HAS(buf, want);
    snprintf(want, sizeof want, "Z test[%ld] INFO \n", (long)getpid());
    CHECK_HAS(buf, want);
    CHECK(strstr(buf, "dropped") == NULL);
    /* another prog on the same buffer (a logger copied and renamed): its own name */
    lg.prog = "other";
    LOG_PARTS(&lg, CQ_LOG_INFO, "renamed");
    log_flush(&lg);
    snprintf(want, sizeof want, "Z other[%ld] INFO renamed\n", (long)getpid());
    CHECK_HAS(written(buf, sizeof buf), want);
    lg.prog = "test";
    memset(big, 'y', sizeof big - 1);
    LOG_PARTS(&lg, CQ_LOG_INFO, big, "tail");
    log_flush(&lg);
    msg = strstr(written(buf, sizeof buf), "] INFO ");
    REQUIRE(msg != NULL);
    CHECK_EQ(strlen(msg + 7), 1536); /* MSG_MAX less its terminator, and the newline */
    CHECK(strstr(msg, "tail") == NULL);
    lg.json = 1;
    LOG_PARTS(&lg, CQ_LOG_INFO, "a\"", "b");
    log_flush(&lg);
    CHECK_HAS(written(buf, sizeof buf), "\"level\":\"info\",\"program\":\"test\"");
    CHECK_HAS(buf, "\"msg\":\"a\\\"b\"}\n");
}

int main(void)
{
    int p[2];

    if (pipe(p) != 0 || dup2(p[1], STDERR_FILENO) < 0) return 99;
    out = p[0];
    fcntl(out, F_SETFL, fcntl(out, F_GETFL) | O_NONBLOCK);
    test_unbuffered();
    test_buffered();
    test_strings_only();
    test_control_bytes();
    test_control_anywhere();
    test_parts();
    test_pid_after_fork();
    /* The report goes to stdout's terminal: stderr is the pipe. */
    dup2(STDOUT_FILENO, STDERR_FILENO);
    return check_report();
}
