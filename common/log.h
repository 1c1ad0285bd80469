/* log.h - one levelled log line to stderr.
 *
 * There is no global logger: each program owns a `struct logger` (its name and threshold) and
 * passes it down, so that library code in common/ stays free of global state and two
 * workers in one process (tests) could log differently.
 *
 * Line format: "2026-11-27T08:00:00.123Z cworker[1234] INFO message"; with json set, one JSON
 * object a line for log shippers:
 *   {"time":"2026-11-27T08:00:00.123Z","level":"info","program":"cworker","pid":1234,
 *    "msg":"message"}
 */
#ifndef CQ_LOG_H
#define CQ_LOG_H

#include <errno.h>
#include <stddef.h>

/* The levels are cq.h's enum cq_log_level (CQ_LOG_ERROR ... CQ_LOG_DEBUG), which plugins see
 * too; the CQ_ prefix keeps them apart from <syslog.h>'s LOG_ERR, LOG_INFO and friends. */
#include "cq/cq.h"

/* Lines gathered for one write (a logger used by one thread only): a worker logs a line a job,
 * and a write a line was most of what info logging cost it. At most LOG_BUF_MAX bytes go in
 * one write, so that on a pipe (where writes up to PIPE_BUF are atomic) no other thread's line
 * lands inside one of these. */
#define LOG_BUF_MAX 4096
struct log_buf {
    char data[LOG_BUF_MAX];
    size_t len;
    long long sec; /* the second when[] shows */
    char when[32]; /* its "YYYY-MM-DDTHH:MM:SS" */
    /* The rest of the last line's prefix after its milliseconds, "Z <prog>[<pid>] <LEVEL> ",
     * made again only when the level, the pid (a forked child's) or the logger's prog
     * changes. */
    char tail[80];
    size_t tail_len;
    int tail_level;
    long tail_pid;
    const char *tail_prog;
};

struct logger {
    const char *prog;    /* program name shown on every line */
    int level;           /* lines above this level are dropped */
    int json;            /* one JSON object a line instead of text */
    struct log_buf *buf; /* NULL: each line written at once; else gathered until log_flush */
};

/* Write one line; when errnum is not 0, ": strerror(errnum)" is appended. */
void log_emit(const struct logger *lg, int level, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Write one line made of the n strings of parts, one after another: a line without a format
 * to read (a worker's line a job at info), otherwise as log_emit's. */
void log_parts(const struct logger *lg, int level, const char *const *parts, size_t n);

/* Write the lines gathered in lg->buf (nothing without one). */
void log_flush(const struct logger *lg);

#define LOG(lg, lvl, ...)                                                                         \
    do {                                                                                          \
        const struct logger *log_lg_ = (lg);                                                      \
        if (log_lg_ != NULL && (lvl) <= log_lg_->level) log_emit(log_lg_, (lvl), 0, __VA_ARGS__); \
    } while (0)

/* LOG_PARTS(lg, level, "a", str, "b", ...): log_parts of the strings given. */
#define LOG_PARTS(lg, lvl, ...)                                                              \
    do {                                                                                     \
        const struct logger *log_lg_ = (lg);                                                 \
        if (log_lg_ != NULL && (lvl) <= log_lg_->level) {                                    \
            const char *const log_parts_[] = {__VA_ARGS__};                                  \
            log_parts(log_lg_, (lvl), log_parts_, sizeof log_parts_ / sizeof log_parts_[0]); \
        }                                                                                    \
    } while (0)

#define LOG_ERRNO(lg, lvl, ...)                                      \
    do {                                                             \
        const struct logger *log_lg_ = (lg);                         \
        int log_saved_errno_ = errno;                                \
        if (log_lg_ != NULL && (lvl) <= log_lg_->level)              \
            log_emit(log_lg_, (lvl), log_saved_errno_, __VA_ARGS__); \
    } while (0)

#endif
