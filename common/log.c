/* log.c - one levelled line to stderr, written with a single write so that lines from
 * several threads never interleave; a logger with a buffer gathers its lines into one write. */
#include "log.h"
#include "util.h"

#include <limits.h>
#include <pthread.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MSG_MAX 1536 /* a line's message, with its ": strerror" */

static const char *level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

/* getpid() is a system call every time (glibc 2.36), and a worker logs a line a job: the pid
 * is kept, and forgotten in a forked child. */
static long log_pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void pid_forget(void)
{
    __atomic_store_n(&log_pid, 0, __ATOMIC_RELAXED);
}

static void pid_hook(void)
{
    pthread_atfork(NULL, NULL, pid_forget);
}

static long my_pid(void)
{
    long pid;

    pthread_once(&pid_once, pid_hook);
    pid = __atomic_load_n(&log_pid, __ATOMIC_RELAXED);
    if (pid == 0) {
        pid = (long)getpid();
        __atomic_store_n(&log_pid, pid, __ATOMIC_RELAXED);
    }
    return pid;
}
static const char *level_json[] = {"error", "warn", "info", "debug"};

/* msg as a JSON string's contents into out (size len, always terminated), whole characters
 * only: control bytes become \uXXXX, and bytes that are not UTF-8 (a server's Latin-1 error
 * text, say) U+FFFD, so that every line parses. */
static void json_escape(char *out, size_t len, const char *msg)
{
    const unsigned char *p = (const unsigned char *)msg;
    size_t n = 0, k;

    while (*p) {
        k = *p < 0x80 ? 1 : utf8_char(p, strnlen((const char *)p, 4));
        if (n + 7 >= len) break; /* room for the longest: "\u0001" or U+FFFD's 3 bytes */
        if (k == 0) {
            memcpy(out + n, "\xef\xbf\xbd", 3);
            n += 3;
            p++;
        } else if (*p == '"' || *p == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*p++;
        } else if (*p < 0x20 || *p == 0x7f) {
            n += (size_t)snprintf(out + n, len - n, "\\u%04x", *p++);
        } else {
            memcpy(out + n, p, k);
            n += k;
            p += k;
        }
    }
    out[n] = '\0';
}

static void write_all(const char *p, size_t n)
{
    if (write(STDERR_FILENO, p, n) < 0) {
        /* Nowhere left to report a failure to log. */
    }
}

void log_flush(const struct logger *lg)
{
    if (lg->buf == NULL || lg->buf->len == 0) return;
    write_all(lg->buf->data, lg->buf->len);
    lg->buf->len = 0;
}

/* The line into lg's buffer, or out at once. */
static void put_line(const struct logger *lg, const char *line, size_t n)
{
    struct log_buf *b = lg->buf;

    if (b == NULL) {
        write_all(line, n);
        return;
    }
    if (b->len + n > sizeof b->data) log_flush(lg);
    if (n > sizeof b->data) {
        write_all(line, n);
        return;
    }
    memcpy(b->data + b->len, line, n);
    b->len += n;
}

/* "YYYY-MM-DDTHH:MM:SS" of sec into when (32 bytes); with a buffer, made once a second. */
static const char *format_when(const struct logger *lg, time_t sec, char *when)
{
    struct tm tm;

    if (lg->buf != NULL && lg->buf->sec == (long long)sec && lg->buf->when[0] != '\0')
        return lg->buf->when;
    gmtime_r(&sec, &tm);
    strftime(when, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    if (lg->buf != NULL) {
        memcpy(lg->buf->when, when, 32);
        lg->buf->sec = (long long)sec;
    }
    return when;
}

/* The message (fmt, ap and, when errnum is not 0, ": strerror(errnum)") into dst, at most
 * cap bytes with its terminator. Returns its length. */
static size_t format_msg(char *dst, size_t cap, int errnum, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* fmt into dst (cap bytes with its terminator) when its only conversions are %s and %%: what
 * vsnprintf writes, with its length, without printf's machinery (most lines are made of
 * strings: a job's line at info is six). Returns -1 at the first other conversion, having
 * read some of ap: the caller passes a copy. */
static int format_strings(char *dst, size_t cap, const char *fmt, va_list ap)
{
    const char *f;
    size_t n = 0;

    for (f = fmt; *f;) {
        const char *s;
        size_t k;
        if (f[0] == '%' && f[1] == 's') {
            s = va_arg(ap, const char *);
            if (s == NULL) s = "(null)";
            k = strlen(s);
            f += 2;
        } else if (f[0] == '%') {
            if (f[1] != '%') return -1; /* another conversion: vsnprintf's */
            s = f + 1;
            k = 1;
            f += 2;
        } else {
            const char *pct = strchr(f, '%');
            s = f;
            k = pct != NULL ? (size_t)(pct - f) : strlen(f);
            f += k;
        }
        if (n + 1 < cap) memcpy(dst + n, s, k < cap - 1 - n ? k : cap - 1 - n);
        n += k;
    }
    dst[n < cap - 1 ? n : cap - 1] = '\0';
    return n > INT_MAX ? INT_MAX : (int)n;
}

static size_t format_msg(char *dst, size_t cap, int errnum, const char *fmt, va_list ap)
{
    va_list aq;
    int w;

    va_copy(aq, ap);
    w = format_strings(dst, cap, fmt, aq);
    va_end(aq);
    if (w < 0) w = vsnprintf(dst, cap, fmt, ap);
    size_t n = w < 0 ? 0 : (size_t)w < cap ? (size_t)w : cap - 1;

    if (errnum != 0 && n + 1 < cap) {
        char buf[128];
        w = snprintf(dst + n, cap - n, ": %s", strerror_r(errnum, buf, sizeof buf));
        n += w < 0 ? 0 : (size_t)w < cap - n ? (size_t)w : cap - n - 1;
    }
    return n;
}

/* s (at most max bytes of it) at p; returns the end. */
static char *put_str(char *p, const char *s, size_t max)
{
    size_t n = strnlen(s, max);

    memcpy(p, s, n);
    return p + n;
}

/* A text line's prefix, "<when>.<ms>Z <prog>[<pid>] <LEVEL> ", at line (which has room for
 * at least 128 bytes); returns its length. Written without printf: every job's line at info
 * begins with it, and snprintf made it a fifth of the line's cost. */
static size_t put_prefix(char *line, const char *when, long ms, const char *prog, long pid,
                         const char *level)
{
    char *p = put_str(line, when, 31);

    *p++ = '.';
    *p++ = (char)('0' + ms / 100 % 10);
    *p++ = (char)('0' + ms / 10 % 10);
    *p++ = (char)('0' + ms % 10);
    *p++ = 'Z';
    *p++ = ' ';
    p = put_str(p, prog, 48);
    *p++ = '[';
    p = uint_format(p, pid > 0 ? (unsigned long long)pid : 0);
    *p++ = ']';
    *p++ = ' ';
    p = put_str(p, level, 8);
    *p++ = ' ';
    return (size_t)(p - line);
}

/* A text line's message (n bytes at msg) with its control bytes made visible, rewritten in
 * place within cap bytes: \n as "\n", \r as "\r", others as "\xHH" (a tab stays). So a
 * message is one line, and writes no terminal escape, whatever a job's error, a command's
 * stderr or a request's URL put in it. Returns the new length. */
static int is_control(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* The index of the first byte of s (n bytes) that text_escape rewrites, or n: eight bytes at
 * a time while none is below 0x20 or 0x7f (bit tricks that say whether a word holds such a
 * byte, not which), as a job's line at info is a hundred bytes of names and numbers, where the
 * byte-by-byte loop was the largest part of its cost (800 instructions, callgrind). */
static size_t first_control(const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = 0, k;

    for (; i + 8 <= n; i += 8) {
        uint64_t x, d;
        memcpy(&x, s + i, 8);
        d = x ^ (0x7f * ones);
        if ((((x - 0x20 * ones) & ~x) | ((d - ones) & ~d)) & highs) /* below 0x20, or 0x7f */
            for (k = i; k < i + 8; k++)
                if (is_control((unsigned char)s[k])) return k; /* else a tab */
    }
    for (; i < n; i++)
        if (is_control((unsigned char)s[i])) return i;
    return n;
}

static size_t text_escape(char *msg, size_t n, size_t cap)
{
    char src[MSG_MAX];
    size_t i = first_control(msg, n), o;

    if (i == n) return n; /* the common case: nothing to do */
    if (n > sizeof src) n = sizeof src;
    memcpy(src, msg, n);
    for (o = i; i < n && o + 4 < cap; i++) o += ctl_escape((unsigned char)src[i], 1, msg + o);
    return o;
}

void log_emit(const struct logger *lg, int level, int errnum, const char *fmt, ...)
{
    char line[4096], whenbuf[32];
    const char *when;
    struct timeval tv;
    size_t n;
    int w;
    va_list ap;

    if (level < CQ_LOG_ERROR) level = CQ_LOG_ERROR;
    if (level > CQ_LOG_DEBUG) level = CQ_LOG_DEBUG;
    gettimeofday(&tv, NULL);
    when = format_when(lg, tv.tv_sec, whenbuf);
    if (lg->json) {
        char msg[MSG_MAX], esc[sizeof line];
        va_start(ap, fmt);
        format_msg(msg, sizeof msg, errnum, fmt, ap);
        va_end(ap);
        json_escape(esc, sizeof esc - 128, msg);
        w = snprintf(line, sizeof line,
                     "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"program\":\"%s\",\"pid\":%ld,"
                     "\"msg\":\"%s\"}",
                     when, (long)(tv.tv_usec / 1000), level_json[level], lg->prog, my_pid(), esc);
        n = w < 0 ? 0 : (size_t)w;
    } else {
        /* The prefix, then the message formatted in place after it. */
        n = put_prefix(line, when, (long)(tv.tv_usec / 1000), lg->prog, my_pid(),
                       level_names[level]);
        va_start(ap, fmt);
        w = (int)format_msg(line + n, MSG_MAX, errnum, fmt, ap);
        va_end(ap);
        n += text_escape(line + n, (size_t)w, sizeof line - n - 2);
    }
    if (n > sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    put_line(lg, line, n);
}
