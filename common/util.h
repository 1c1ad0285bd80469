/* util.h - small helpers shared by every cq module.
 *
 * Allocation failure is not something cq can recover from in a useful way, so the x*
 * wrappers abort with a message instead of making every caller test for NULL (redis zmalloc).
 */
#ifndef CQ_UTIL_H
#define CQ_UTIL_H

#include <locale.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* p, or abort naming what could not be made when p is NULL: for the allocations other
 * libraries make (cJSON_Create*, vasprintf). */
void *xcheck(void *p, const char *what);
/* A new string formatted as printf would. */
char *xstrdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copy src into dst (size dstlen), always NUL-terminating. Returns 0, or -1 when src was
 * truncated. */
int str_copy(char *dst, size_t dstlen, const char *src);

/* s as an error line quotes it: each control byte shown (\n, \r, \t, \xHH), and each byte
 * that is no part of a UTF-8 character (utf8_char) and the two of a C1 control as \xHH, so
 * the line stays one line of UTF-8 and writes no terminal escape; UTF-8 characters as they
 * are. Only its first STR_SHOWN_MAX bytes, then "...", so the cause and the fix after it are
 * not cut off; a character that would cross that limit is left out whole, not cut. Into buf
 * (STR_SHOWN_LEN bytes are enough for any s); returns buf. NULL is shown as "". */
#define STR_SHOWN_MAX 64
#define STR_SHOWN_LEN (STR_SHOWN_MAX * 4 + 4)
const char *str_shown(const char *s, char *buf, size_t len);
/* The length of the UTF-8 character at s (at most n bytes there): 1-4, or 0 where the bytes
 * are not one (a stray continuation byte, an overlong form, a surrogate, a character cut
 * short, or n 0). */
size_t utf8_char(const unsigned char *s, size_t n);
/* 1 when s is UTF-8 text throughout (each character one utf8_char takes), else 0. */
int utf8_text(const char *s);

/* c into out as a log line or an error line shows it: \n, \r and \t (unless keep_tab) as
 * two characters, other control bytes as \xHH, the rest as it is. Returns the bytes written,
 * 1-4. */
size_t ctl_escape(unsigned char c, int keep_tab, char *out);

/* snprintf into an error buffer; a no-op when err is NULL or errlen is 0. */
void err_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Put prefix before the message in err, cutting the message's end if it no longer fits. */
void err_prepend(char *err, size_t errlen, const char *prefix);

/* Wall-clock time in seconds (with fractions) and a monotonic clock in milliseconds. */
double time_now(void);
long long time_mono_ms(void);
long long time_mono_us(void);

/* The CPUs this process may run on (its affinity: taskset, a container's cpuset), at least 1:
 * what one-per-CPU thread pools are sized by. */
int cpus_usable(void);

/* Grow this process's table of file descriptors to hold n of them (at most its soft
 * RLIMIT_NOFILE), now; best effort. Linux grows the table when a descriptor beyond it is
 * made, and in a process with threads each growth waits for an RCU grace period
 * (milliseconds) while every thread that makes a descriptor waits with it. Called before the
 * threads start, it makes no thread wait later. */
void fd_table_reserve(int n);

/* SIGINT and SIGTERM both to fn (or SIG_DFL, SIG_IGN), each held off while fn runs for the
 * other; flags as sigaction's sa_flags (SA_RESTART). Safe in a signal handler. */
void stop_signals_to(void (*fn)(int), int flags);

/* Name the calling thread (at most 15 bytes; more is cut) for top -H, ps -L, perf and gdb:
 * each of cq's threads says what it is for ("cq-exec", "cq-fetch"), where all were named
 * after the program. Best effort. */
void thread_name(const char *name);

/* v with `decimals` (0 to 6) decimals, the text printf's "%.*f" writes (ties to even, "-0.000"
 * for a small negative), without printf's floating-point path, which costs thousands of
 * instructions a call; cq writes several per job. Exact for every |v| < 1e12, so a time
 * written with six decimals reads back as the same double. buf must hold 32 bytes. Returns
 * the length. Values beyond +-1e12 print as 0. */
size_t fixed_format(char *buf, double v, int decimals);

/* v's decimal digits at p (at most 20 bytes, no terminator), without printf: for the counts
 * and numbers written once a command, a job or a line. Returns the end. */
char *uint_format(char *p, unsigned long long v);

/* A Unix time as seconds with six decimals ("1767225600.250000"): fixed_format(buf, t, 6). */
size_t time_format(char *buf, double t);

/* Numbers with a point whatever locale the program chose (setlocale: de_DE's decimal comma,
 * ps_AF's two-byte point): what libcq sends to Redis, reads back from it or parses for a
 * setting. strtod_c is strtod in the C locale; between locale_c_enter and locale_c_leave
 * (printf, strtod, cJSON, hiredis's formatting) the calling thread is in the C locale, or
 * left in its own where that already writes a point, and then back in the one it had.
 * fixed_format and uint_format need neither. */
double strtod_c(const char *s, char **end);
locale_t locale_c_enter(void);
void locale_c_leave(locale_t old);

/* The parsers below, saying what is wrong in err ("'x' is not a duration such as 250ms, 30s,
 * 5m or 2h"), so that every command's options and every worker setting say it alike. Each
 * returns 0, or -1 with err set. parse_choice takes one of choices[0..n-1]: its index. */
int parse_duration_msg(const char *s, double *out, char *err, size_t errlen);
int parse_size_msg(const char *s, long long *out, char *err, size_t errlen);
int parse_long_msg(const char *s, long min, long max, long *out, char *err, size_t errlen);
int parse_choice(const char *s, const char *const *choices, size_t n, int *out, char *err,
                 size_t errlen);

/* Parse a duration such as "30", "30s", "1.5s", "250ms", "5m", "2h", "30d" into seconds, at
 * most DURATION_MAX: a decimal number (digits, an optional fraction; no sign, exponent, hex,
 * "inf" or "nan") and an optional unit. Leading zeros are decimal, as Go's time.ParseDuration
 * and systemd read them: "007s" is 7 s, "010s" 10 s (not octal 8). Returns 0/-1. */
#define DURATION_MAX (100.0 * 365 * 86400) /* 100 years */
int parse_duration(const char *s, double *out);
/* parse_duration without its upper bound: for a caller that words "too long" itself. */
int parse_duration_unbounded(const char *s, double *out);

/* Parse a whole decimal number in [min, max]. Returns 0/-1. */
int parse_long(const char *s, long min, long max, long *out);

/* Parse a byte size such as "50M", "512K", "1G" or a plain number of bytes; K, M and G are
 * 1024's, also written KB or KiB (MB, MiB, ...). Returns 0/-1. */
int parse_size(const char *s, long long *out);

/* SIGPIPE held off on this thread while it writes to a socket the peer may have closed: the
 * write fails with EPIPE instead of killing a program that did not ignore the signal. A
 * SIGPIPE raised meanwhile is taken off before the old mask returns (sigpipe_release), also
 * where the caller blocked the signal itself, unless one was pending already then. */
struct sigpipe_hold {
    sigset_t old;
    int was_pending; /* a SIGPIPE pending (and blocked) before the hold: not ours */
};
void sigpipe_hold(struct sigpipe_hold *h);
void sigpipe_release(const struct sigpipe_hold *h);
/* 1 when the process ignores SIGPIPE (cq's programs do), so that a write needs no hold. */
int sigpipe_ignored(void);

/* The one stop flag of cq: set by a signal handler or by another thread (with
 * __atomic_store_n), read with stop_requested from any thread. A NULL flag is never set. */
typedef volatile sig_atomic_t stop_flag;

static inline int stop_requested(const stop_flag *f)
{
    return f != NULL && __atomic_load_n(f, __ATOMIC_RELAXED) != 0;
}

/* Sleep for the given number of milliseconds (restarting on EINTR is the caller's choice:
 * this returns early when a signal arrives so that a drain is noticed at once). */
void sleep_ms(long ms);

#endif
