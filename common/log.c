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
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

/* "Z <prog>[<pid>] <LEVEL> ", the part of a text line's prefix after its milliseconds, at p
 * (room for 80 bytes); returns its length. */
static size_t put_tail(char *p0, const char *prog, long pid, const char *level)
{
    char *p = p0;

    *p++ = 'Z';
    *p++ = ' ';
    p = put_str(p, prog, 48);
    *p++ = '[';
    p = uint_format(p, pid > 0 ? (unsigned long long)pid : 0);
    *p++ = ']';
    *p++ = ' ';
    p = put_str(p, level, 8);
    *p++ = ' ';
    return (size_t)(p - p0);
}

/* A text line's prefix, "<when>.<ms>Z <prog>[<pid>] <LEVEL> ", at line (which has room for
 * at least 128 bytes); returns its length. Written without printf, and with a buffer from
 * the parts it keeps (the second's time, and the tail after the milliseconds): every job's
 * line at info begins with it. */
static size_t put_prefix(const struct logger *lg, char *line, const struct timeval *tv, int level)
{
    struct log_buf *b = lg->buf;
    char whenbuf[32];
    long ms = (long)(tv->tv_usec / 1000), pid = my_pid();
    char *p = put_str(line, format_when(lg, tv->tv_sec, whenbuf), 31);

    *p++ = '.';
    *p++ = (char)('0' + ms / 100 % 10);
    *p++ = (char)('0' + ms / 10 % 10);
    *p++ = (char)('0' + ms % 10);
    if (b == NULL) return (size_t)(p - line) + put_tail(p, lg->prog, pid, level_names[level]);
    if (b->tail_len == 0 || b->tail_level != level || b->tail_pid != pid ||
        b->tail_prog != lg->prog) {
        b->tail_len = put_tail(b->tail, lg->prog, pid, level_names[level]);
        b->tail_level = level;
        b->tail_pid = pid;
        b->tail_prog = lg->prog;
    }
    memcpy(p, b->tail, b->tail_len);
    return (size_t)(p - line) + b->tail_len;
}

/* A text line's message (n bytes at msg) with its control bytes made visible, rewritten in
 * place within cap bytes: \n as "\n", \r as "\r", others as "\xHH" (a tab stays). So a
 * message is one line, and writes no terminal escape, whatever a job's error, a command's
 * stderr or a request's URL put in it. Returns the new length. */
static int is_control(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* The index of the first byte of s (n bytes) that text_escape rewrites, or n: sixteen bytes
 * at a time with SSE2 (every x86-64 has it), then eight, while none is below 0x20 or 0x7f
 * (tests that say whether a block holds such a byte, not which), as a job's line at info is a
 * hundred bytes of names and numbers, where the byte-by-byte loop was the largest part of its
 * cost (800 instructions, callgrind; 200 with words of eight, 60 with blocks of sixteen). */
static size_t first_control(const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = 0, k;

#ifdef __SSE2__
    const __m128i low = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f);

    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        /* x <= 0x1f, unsigned, where min(x, 0x1f) is x; or x is 0x7f */
        __m128i c = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(x, low), x), _mm_cmpeq_epi8(x, del));
        if (_mm_movemask_epi8(c) != 0)
            for (k = i; k < i + 16; k++)
                if (is_control((unsigned char)s[k])) return k; /* else a tab */
    }
#endif
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

#define LINE_MAX_BYTES 4096

/* A JSON line of msg. */
static void emit_json(const struct logger *lg, int level, const struct timeval *tv, const char *msg)
{
    char line[LINE_MAX_BYTES], esc[LINE_MAX_BYTES - 128], whenbuf[32];
    int w;
    size_t n;

    json_escape(esc, sizeof esc, msg);
    w = snprintf(line, sizeof line,
                 "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"program\":\"%s\",\"pid\":%ld,"
                 "\"msg\":\"%s\"}",
                 format_when(lg, tv->tv_sec, whenbuf), (long)(tv->tv_usec / 1000),
                 level_json[level], lg->prog, my_pid(), esc);
    n = w < 0 ? 0 : (size_t)w;
    if (n > sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    put_line(lg, line, n);
}

static int clamp_level(int level)
{
    return level < CQ_LOG_ERROR ? CQ_LOG_ERROR : level > CQ_LOG_DEBUG ? CQ_LOG_DEBUG : level;
}

/* A line's start, for log_emit and log_parts alike: its time at *tv, and a text line's
 * prefix at line. Returns where the message goes in line (0 for JSON, which is made around
 * the message once it is there). */
static size_t line_start(const struct logger *lg, int level, struct timeval *tv, char *line)
{
    gettimeofday(tv, NULL);
    return lg->json ? 0 : put_prefix(lg, line, tv, level);
}

/* The line out, once its message (w bytes) is at line + n: as JSON, or as text with the
 * message's control bytes made visible. */
static void line_end(const struct logger *lg, int level, const struct timeval *tv, char *line,
                     size_t n, size_t w)
{
    if (lg->json) {
        emit_json(lg, level, tv, line);
        return;
    }
    n += text_escape(line + n, w, LINE_MAX_BYTES - n - 2);
    if (n > LINE_MAX_BYTES - 2) n = LINE_MAX_BYTES - 2;
    line[n++] = '\n';
    put_line(lg, line, n);
}

void log_emit(const struct logger *lg, int level, int errnum, const char *fmt, ...)
{
    char line[LINE_MAX_BYTES];
    struct timeval tv;
    size_t n, w;
    va_list ap;

    level = clamp_level(level);
    n = line_start(lg, level, &tv, line);
    va_start(ap, fmt);
    w = format_msg(line + n, MSG_MAX, errnum, fmt, ap); /* in place, after the prefix */
    va_end(ap);
    line_end(lg, level, &tv, line, n, w);
}

/* The n strings of parts one after another into dst, at most cap bytes with its terminator;
 * returns the length written. */
static size_t join_parts(char *dst, size_t cap, const char *const *parts, size_t n)
{
    size_t o = 0, i, k;

    for (i = 0; i < n && o + 1 < cap; i++) {
        const char *s = parts[i] != NULL ? parts[i] : "(null)";
        k = strlen(s);
        if (k > cap - 1 - o) k = cap - 1 - o;
        memcpy(dst + o, s, k);
        o += k;
    }
    dst[o] = '\0';
    return o;
}

void log_parts(const struct logger *lg, int level, const char *const *parts, size_t np)
{
    char line[LINE_MAX_BYTES];
    struct timeval tv;
    size_t n, w;

    level = clamp_level(level);
    n = line_start(lg, level, &tv, line);
    w = join_parts(line + n, MSG_MAX, parts, np);
    line_end(lg, level, &tv, line, n, w);
}
