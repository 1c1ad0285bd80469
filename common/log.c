/* log.c - one levelled line to stderr, written with a single write so that lines from
 * several threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
static const char *level_json[] = {"error", "warn", "info", "debug"};

/* msg as a JSON string's contents into out (size len, always terminated). Control bytes
 * become \uXXXX; bytes >= 0x80 are copied (the lines are UTF-8 where the input was). */
static size_t json_escape(char *out, size_t len, const char *msg)
{
    size_t n = 0;
    const unsigned char *p;

    for (p = (const unsigned char *)msg; *p && n + 7 < len; p++) {
        if (*p == '"' || *p == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*p;
        } else if (*p < 0x20) {
            n += (size_t)snprintf(out + n, len - n, "\\u%04x", *p);
        } else {
            out[n++] = (char)*p;
        }
    }
    out[n] = '\0';
    return n;
}

void log_emit(const struct logger *lg, int level, int errnum, const char *fmt, ...)
{
    char msg[1536], line[4096], when[32];
    struct timeval tv;
    struct tm tm;
    size_t n;
    int w;
    va_list ap;

    if (level < CQ_LOG_ERROR) level = CQ_LOG_ERROR;
    if (level > CQ_LOG_DEBUG) level = CQ_LOG_DEBUG;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    w = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    n = w < 0 ? 0 : (size_t)w < sizeof msg ? (size_t)w : sizeof msg - 1;
    if (errnum != 0 && n < sizeof msg) {
        char buf[128];
        snprintf(msg + n, sizeof msg - n, ": %s", strerror_r(errnum, buf, sizeof buf));
    }
    if (lg->json) {
        char esc[sizeof line];
        json_escape(esc, sizeof esc - 128, msg);
        w = snprintf(line, sizeof line,
                     "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"program\":\"%s\",\"pid\":%ld,"
                     "\"msg\":\"%s\"}",
                     when, (long)(tv.tv_usec / 1000), level_json[level], lg->prog, (long)getpid(),
                     esc);
    } else {
        w = snprintf(line, sizeof line, "%s.%03ldZ %s[%ld] %s %s", when, (long)(tv.tv_usec / 1000),
                     lg->prog, (long)getpid(), level_names[level], msg);
    }
    n = w < 0 ? 0 : (size_t)w;
    if (n > sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) {
        /* Nowhere left to report a failure to log. */
    }
}
