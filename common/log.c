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

void log_emit(const struct logger *lg, int level, int errnum, const char *fmt, ...)
{
    char line[2048];
    char when[32];
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
    w = snprintf(line, sizeof line, "%s.%03ldZ %s[%ld] %s ", when, (long)(tv.tv_usec / 1000),
                 lg->prog, (long)getpid(), level_names[level]);
    n = w < 0 ? 0 : (size_t)w;
    if (n < sizeof line) {
        va_start(ap, fmt);
        w = vsnprintf(line + n, sizeof line - n, fmt, ap);
        va_end(ap);
        if (w > 0) n += (size_t)w;
    }
    if (errnum != 0 && n < sizeof line) {
        char buf[128];
        const char *msg = strerror_r(errnum, buf, sizeof buf);
        w = snprintf(line + n, sizeof line - n, ": %s", msg);
        if (w > 0) n += (size_t)w;
    }
    if (n > sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) {
        /* Nowhere left to report a failure to log. */
    }
}
