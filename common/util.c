/* util.c - allocation wrappers, string and number parsing, clocks. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static void oom(size_t n)
{
    fprintf(stderr, "cq: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xcheck(void *p, const char *what)
{
    if (p == NULL) {
        fprintf(stderr, "cq: out of memory making %s\n", what);
        abort();
    }
    return p;
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) oom(n);
    return p;
}

void *xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (p == NULL) oom(count * n);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

char *xstrdup_printf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    s = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

size_t utf8_char(const unsigned char *s, size_t n)
{
    unsigned c;
    size_t len, i;
    unsigned long cp;

    if (n == 0) return 0;
    c = s[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (len > n) return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

int utf8_text(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), k;

    while (n > 0) {
        if (*p < 0x80) { /* the common case: ASCII */
            p++;
            n--;
            continue;
        }
        if ((k = utf8_char(p, n)) == 0) return 0;
        p += k;
        n -= k;
    }
    return 1;
}

/* c as \xHH into out: 4 bytes. */
static size_t hex_escape(unsigned char c, char *out)
{
    static const char hex[] = "0123456789abcdef";

    out[0] = '\\';
    out[1] = 'x';
    out[2] = hex[c >> 4];
    out[3] = hex[c & 15];
    return 4;
}

size_t ctl_escape(unsigned char c, int keep_tab, char *out)
{
    if (c == '\n' || c == '\r' || (c == '\t' && !keep_tab)) {
        out[0] = '\\';
        out[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        return 2;
    }
    if ((c < 0x20 && c != '\t') || c == 0x7f) return hex_escape(c, out);
    out[0] = (char)c;
    return 1;
}

const char *str_shown(const char *s, char *buf, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, o = 0, k;

    if (len == 0) return buf;
    while (s != NULL && s[i] != '\0' && i < STR_SHOWN_MAX && o + 5 < len) {
        k = u[i] < 0x80 ? 1 : utf8_char(u + i, strnlen(s + i, 4));
        /* A C1 control (U+0080-U+009F, C2 80-9F) is a character, but one a terminal may
         * take for an escape (U+009B is CSI): its two bytes are shown as any stray byte. */
        if (k == 2 && u[i] == 0xC2 && u[i + 1] < 0xA0) k = 0;
        if (k == 0) {
            o += hex_escape(u[i++], buf + o); /* no part of a UTF-8 character */
            continue;
        }
        if (k == 1) {
            o += ctl_escape(u[i++], 0, buf + o);
            continue;
        }
        if (i + k > STR_SHOWN_MAX) break; /* whole or not at all: no character cut in two */
        memcpy(buf + o, s + i, k);
        o += k;
        i += k;
    }
    if (s != NULL && s[i] != '\0' && o + 3 < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

int str_copy(char *dst, size_t dstlen, const char *src)
{
    size_t n;

    if (dstlen == 0) return -1;
    n = strlen(src);
    if (n >= dstlen) {
        memcpy(dst, src, dstlen - 1);
        dst[dstlen - 1] = '\0';
        return -1;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

void err_set(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0) return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void err_prepend(char *err, size_t errlen, const char *prefix)
{
    size_t pl = strlen(prefix), el;

    if (err == NULL || errlen <= pl) return;
    el = strnlen(err, errlen - 1);
    if (el > errlen - 1 - pl) el = errlen - 1 - pl; /* the end of the message gives way */
    memmove(err + pl, err, el);
    memcpy(err, prefix, pl);
    err[pl + el] = '\0';
}

double time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

long long time_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long time_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int cpus_usable(void)
{
    cpu_set_t set;
    long n;

    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 4096 ? 4096 : (int)n;
}

void fd_table_reserve(int n)
{
    struct rlimit rl;
    int src, fd;

    /* Before the limit's test, where a negative n would be a huge rlim_t: the whole limit. */
    if (n < 2) return;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)n > rl.rlim_cur)
        n = (int)rl.rlim_cur;
    if (n < 2) return;
    /* Any descriptor serves as the source of the copy that makes the table grow: one of our
     * own, since the standard ones may be closed. */
    src = eventfd(0, EFD_CLOEXEC);
    if (src < 0) return;
    fd = fcntl(src, F_DUPFD_CLOEXEC, n - 1);
    if (fd >= 0) close(fd);
    close(src);
}

void stop_signals_to(void (*fn)(int), int flags)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void thread_name(const char *name)
{
    char n[16];

    (void)str_copy(n, sizeof n, name);
    (void)pthread_setname_np(pthread_self(), n);
}

char *uint_format(char *p, unsigned long long v)
{
    char digits[20];
    size_t n = 0;

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0) *p++ = digits[--n];
    return p;
}

size_t fixed_format(char *buf, double v, int decimals)
{
    static const double scale[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    char tmp[32], *p = tmp + sizeof tmp;
    double a, x, e, f;
    long long u;
    int neg, i;
    size_t n;

    if (decimals < 0) decimals = 0;
    if (decimals > 6) decimals = 6;
    /* Far outside any real time (and the range of a long long in millionths). */
    if (!(v > -1e12 && v < 1e12)) v = 0;
    neg = signbit(v) != 0;
    a = fabs(v);
    /* a * scale is x + e exactly (fma), and an exact tie goes to the even digit, as printf
     * rounds it. Below 2^52, x's fraction f is exact, and f, 0.5 and x are multiples of x's
     * last place: only where f is 0.5 does e decide. Where x is a whole number (always from
     * 2^52 on, where its last place is 1 to 128), the rounding of e alone decides; e is a
     * multiple of a's last place, so e + 0.5 is exact. */
    x = a * scale[decimals];
    e = fma(a, scale[decimals], -x);
    u = (long long)x;
    f = x - (double)u;
    if (f == 0) {
        double k = floor(e + 0.5);

        if (k == e + 0.5 && ((u + (long long)k) & 1)) k -= 1;
        u += (long long)k;
    } else if (f > 0.5 || (f == 0.5 && (e > 0 || (e == 0 && (u & 1))))) {
        u++;
    }
    for (i = 0; i < decimals; i++) {
        *--p = (char)('0' + u % 10);
        u /= 10;
    }
    if (decimals > 0) *--p = '.';
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (neg) *--p = '-';
    n = (size_t)(tmp + sizeof tmp - p);
    memcpy(buf, p, n);
    buf[n] = '\0';
    return n;
}

size_t time_format(char *buf, double t)
{
    return fixed_format(buf, t, 6);
}

/* The C locale, made once; (locale_t)0 where newlocale failed, which uselocale takes as "no
 * change" (and strtod_c then reads with the thread's own). */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_make(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static locale_t c_locale_get(void)
{
    pthread_once(&c_locale_once, c_locale_make);
    return c_locale;
}

double strtod_c(const char *s, char **end)
{
    locale_t c = c_locale_get();
    return c != (locale_t)0 ? strtod_l(s, end, c) : strtod(s, end);
}

locale_t locale_c_enter(void)
{
    /* Where the thread's decimal point is already '.' (cworker, and most programs), there is
     * nothing to change: a job's records are read without switching locales. */
    const char *point = nl_langinfo(RADIXCHAR);

    if (point[0] == '.' && point[1] == '\0') return (locale_t)0;
    return uselocale(c_locale_get());
}

void locale_c_leave(locale_t old)
{
    if (old != (locale_t)0) uselocale(old);
}

/* How many bytes of s are a plain decimal number, digits with an optional fraction ("30",
 * "1.5"); 0 when s does not start with one. */
static size_t decimal_len(const char *s)
{
    size_t n = strspn(s, "0123456789"), f;

    if (n == 0 || s[n] != '.') return n;
    f = strspn(s + n + 1, "0123456789");
    return f > 0 ? n + 1 + f : 0;
}

int parse_duration_unbounded(const char *s, double *out)
{
    char *end;
    double v, mult = 1.0;
    size_t n;

    if (s == NULL) return -1;
    /* Only what people write for a duration: strtod alone would take hex ("0x10"), "inf",
     * "nan", exponents ("1e3"), signs and leading spaces. */
    n = decimal_len(s);
    if (n == 0) return -1;
    errno = 0;
    v = strtod_c(s, &end);
    if (errno != 0 || end != s + n || v < 0 || v != v) return -1;
    if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
        mult = 1.0;
    else if (strcmp(end, "ms") == 0)
        mult = 0.001;
    else if (strcmp(end, "m") == 0)
        mult = 60.0;
    else if (strcmp(end, "h") == 0)
        mult = 3600.0;
    else if (strcmp(end, "d") == 0)
        mult = 86400.0;
    else
        return -1;
    /* 400 digits of hours overflow: a duration is finite, as a number given for one must be
     * (registry.c), since callers make milliseconds of it. */
    if (!isfinite(v * mult)) return -1;
    /* strtod refuses a result too small for a normal double (ERANGE), so a product that lands
     * there ("0.000...0019ms", 310 zeros) is refused too: it could not be read back. */
    if (fpclassify(v * mult) == FP_SUBNORMAL) return -1;
    *out = v * mult;
    return 0;
}

int parse_duration(const char *s, double *out)
{
    double d;

    if (parse_duration_unbounded(s, &d) != 0 || d > DURATION_MAX) return -1;
    *out = d;
    return 0;
}

int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    if (s == NULL || *s == '\0' || isspace((unsigned char)*s)) return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) return -1;
    *out = v;
    return 0;
}

int parse_size(const char *s, long long *out)
{
    char *end;
    long long v, mult = 1;

    if (s == NULL || *s == '\0' || isspace((unsigned char)*s) || *s == '-') return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s) return -1;
    if (*end == 'K' || *end == 'k')
        mult = 1024LL, end++;
    else if (*end == 'M' || *end == 'm')
        mult = 1024LL * 1024, end++;
    else if (*end == 'G' || *end == 'g')
        mult = 1024LL * 1024 * 1024, end++;
    /* The units are 1024's: KiB, MiB and GiB say so, as K, KB, M, MB, G and GB do here. */
    if (mult > 1 && *end == 'i' && (end[1] == 'B' || end[1] == 'b')) end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end != '\0') return -1;
    if (v > LLONG_MAX / mult) return -1;
    *out = v * mult;
    return 0;
}

int parse_duration_msg(const char *s, double *out, char *err, size_t errlen)
{
    double d;

    if (parse_duration(s, out) == 0) return 0;
    if (parse_duration_unbounded(s, &d) == 0)
        err_set(err, errlen, "'%s' is longer than 100 years", s);
    else
        err_set(err, errlen, "'%s' is not a duration such as 250ms, 30s, 5m or 2h", s);
    return -1;
}

int parse_size_msg(const char *s, long long *out, char *err, size_t errlen)
{
    if (parse_size(s, out) == 0) return 0;
    err_set(err, errlen, "'%s' is not a size such as 512K, 50M or 1G", s);
    return -1;
}

int parse_long_msg(const char *s, long min, long max, long *out, char *err, size_t errlen)
{
    if (parse_long(s, min, max, out) == 0) return 0;
    err_set(err, errlen, "'%s' is not a whole number from %ld to %ld", s, min, max);
    return -1;
}

int parse_choice(const char *s, const char *const *choices, size_t n, int *out, char *err,
                 size_t errlen)
{
    size_t i, len;

    for (i = 0; i < n; i++) {
        if (strcmp(s, choices[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    err_set(err, errlen, "'%s' is not one of ", s);
    for (i = 0; i < n && (len = strlen(err)) + 1 < errlen; i++)
        snprintf(err + len, errlen - len, "%s%s",
                 i == 0           ? ""
                     : i + 1 == n ? " or "
                                  : ", ",
                 choices[i]);
    return -1;
}

void sleep_ms(long ms)
{
    struct timespec ts;

    if (ms <= 0) return;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

void sigpipe_hold(struct sigpipe_hold *h)
{
    sigset_t s;

    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &s, &h->old);
    h->was_pending = 0;
    if (sigismember(&h->old, SIGPIPE) && sigpending(&s) == 0)
        h->was_pending = sigismember(&s, SIGPIPE);
}

void sigpipe_release(const struct sigpipe_hold *h)
{
    const struct timespec none = {0, 0};
    sigset_t s;

    if (!h->was_pending) {
        sigemptyset(&s);
        sigaddset(&s, SIGPIPE);
        while (sigtimedwait(&s, NULL, &none) > 0) continue;
    }
    pthread_sigmask(SIG_SETMASK, &h->old, NULL);
}

int sigpipe_ignored(void)
{
    struct sigaction sa;

    return sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
}
