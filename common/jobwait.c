/* jobwait.c - waiting for jobs from a command: a line as each ends (see jobwait.h). */
#include "jobwait.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "cli.h"
#include "util.h"

struct waiting {
    const struct jobwait *jw;
    size_t ended;
    volatile size_t unknown;        /* ids not waited for: no status when first read */
    size_t gone;                    /* of those, own ids (own_ids) without a hash */
    volatile unsigned char *done;   /* done[i]: ids[i]'s line is out (read by on_interrupt) */
    volatile sig_atomic_t mid_line; /* a line is being written: on_interrupt ends it first */
    int progress; /* stderr is a terminal: keep a "N/TOTAL jobs ended" line there */
    int lost;     /* a line could not be written: the wait stopped there */
    volatile long long progress_at; /* when it was last drawn (ms), 0 = not on screen */
};

/* The wait under way, for on_interrupt; caught is jobwait_catch's, before the wait (no
 * line out yet: done NULL). */
static struct waiting *volatile waiting_now;
static struct waiting caught;

static char *put(char *p, const char *s)
{
    size_t n = strlen(s);

    memcpy(p, s, n);
    return p + n;
}

/* Write all n bytes of s to fd (a signal handler's: write(2) only): 0, or -1 when they could
 * not all go (a full disk, a reader that left). */
static int write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, s, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

/* SIGINT or SIGTERM during the wait: the ids of the jobs not seen ended, one a line (unless
 * quiet), so that none is lost to the caller; a line on stderr; exit status 1, as for the
 * other ways a wait ends early. Only write(2), strlen and _exit(2) here: libcq is inside a
 * read. Ids are names (keys.h): JSON strings as they are. */
static void on_interrupt(int sig)
{
    struct waiting *w = waiting_now;
    const struct jobwait *jw;
    char line[256], *p;
    size_t i, left = 0, total;
    int lost = 0; /* an id's line that could not be written */

    (void)sig;
    if (w == NULL) _exit(1);
    jw = w->jw;
    total = jw->n - w->unknown;
    if (w->progress_at != 0) (void)!write(STDERR_FILENO, "\r\033[K", 4);
    /* A long result may be half written: the ids go on lines of their own all the same. */
    if (w->mid_line && !jw->quiet) (void)!write(STDOUT_FILENO, "\n", 1);
    for (i = 0; i < jw->n; i++) {
        if (w->done != NULL && w->done[i]) continue;
        left++;
        if (jw->quiet) continue;
        if (lost) continue;
        if ((jw->json && write_all(STDOUT_FILENO, "{\"id\":\"", 7) != 0) ||
            write_all(STDOUT_FILENO, jw->ids[i], strlen(jw->ids[i])) != 0 ||
            (jw->json && write_all(STDOUT_FILENO, "\"}", 2) != 0) ||
            write_all(STDOUT_FILENO, "\n", 1) != 0)
            lost = 1;
    }
    p = line;
    if (strlen(jw->prog) < 64) p = put(p, jw->prog);
    p = put(p, ": interrupted with ");
    p = uint_format(p, left);
    p = put(p, " of ");
    p = uint_format(p, total);
    p = put(p, " jobs not ended: they go on");
    if (!jw->quiet && left > 0)
        p = put(p, lost ? " (their ids not all printed: stdout failed)" : " (their ids printed)");
    p = put(p, "\n");
    (void)!write(STDERR_FILENO, line, (size_t)(p - line));
    _exit(1);
}

/* A copy of s (free it) with each byte that is no part of a UTF-8 character as U+FFFD: cJSON
 * copies bytes as they are, and a JSON line with a command's Latin-1 stderr in it is refused
 * whole by a reader in another language. NULL for NULL. */
static char *utf8_copy(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    char *out, *o;
    size_t k;

    if (s == NULL) return NULL;
    o = out = xmalloc(3 * strlen(s) + 1);
    while (*p) {
        k = *p < 0x80 ? 1 : utf8_char(p, strnlen((const char *)p, 4));
        if (k == 0) {
            o = put(o, "\xef\xbf\xbd");
            p++;
        } else {
            memcpy(o, p, k);
            o += k;
            p += k;
        }
    }
    *o = '\0';
    return out;
}

/* A job's line: "ID STATE TEXT", or its JSON object; text NULL for none. TEXT is one line
 * that writes no terminal escape, as a log line has a message (ctl_escape): a command's
 * stderr, or a hand-written hash, may hold newlines and ESC. */
static void print_line(const struct jobwait *jw, size_t i, const char *state, const char *key,
                       const char *text)
{
    if (jw->json) {
        cJSON *o = xcheck(cJSON_CreateObject(), "a JSON line"), *v = NULL;
        char *s, *utf8_text = utf8_copy(text);

        text = utf8_text;
        cJSON_AddStringToObject(o, "id", jw->ids[i]);
        if (state != NULL) cJSON_AddStringToObject(o, "state", state);
        /* result_json as the JSON it is; text that does not parse, or has more after its
         * value, stays a string */
        if (text != NULL && strcmp(key, "result_json") == 0) v = cJSON_ParseWithOpts(text, NULL, 1);
        if (v != NULL)
            cJSON_AddItemToObject(o, key, v);
        else if (text != NULL)
            cJSON_AddStringToObject(o, strcmp(key, "result_json") == 0 ? "result" : key, text);
        s = xcheck(cJSON_PrintUnformatted(o), "a JSON line");
        puts(s);
        free(s);
        free(utf8_text);
        cJSON_Delete(o);
        return;
    }
    fputs(jw->ids[i], stdout);
    if (state != NULL) {
        putchar(' ');
        fputs(state, stdout);
    }
    if (text != NULL && text[0] != '\0') {
        char esc[4];
        putchar(' ');
        for (; *text; text++) fwrite(esc, 1, ctl_escape((unsigned char)*text, 1, esc), stdout);
    }
    putchar('\n');
}

/* The ids of the jobs not seen ended, one a line: with their state where it is known (st,
 * or NULL), so that every id is on stdout once, however the wait ended. */
static void print_open(const struct waiting *w, cq_status **st)
{
    size_t i;

    if (w->jw->quiet) return;
    for (i = 0; i < w->jw->n; i++) {
        if (w->done[i]) continue;
        print_line(w->jw, i, st != NULL ? cq_status_state_name(cq_status_state(st[i])) : NULL, NULL,
                   NULL);
    }
    cli_stdout_push();
}

/* print_line for job i, pushed out at once: 0, or -1 where it could not all be written.
 * mid_line says that part of the line may be on stdout, for on_interrupt to end it before
 * the ids: none of a line shorter than stdout's buffer is, until the push (the buffer is
 * empty at a line's start: each line is pushed), so that an interrupt there adds no empty
 * line (a JSON-lines reader takes one for a bad line); a longer one may be, once print_line
 * has filled the buffer. A character is 6 bytes at the most, escaped. */
static int put_line(struct waiting *w, size_t i, const char *state, const char *key,
                    const char *text)
{
    size_t len = strlen(w->jw->ids[i]) + 64 + (text != NULL ? 6 * strlen(text) : 0);
    int rc;

    w->mid_line = len >= 1024;
    print_line(w->jw, i, state, key, text);
    w->mid_line = 1;
    rc = cli_stdout_push();
    w->mid_line = 0;
    return rc;
}

static void progress_erase(struct waiting *w)
{
    if (w->progress_at == 0) return;
    fputs("\r\033[K", stderr);
    w->progress_at = 0;
}

/* An id with no status when first read: not waited for (jobwait.h). A hash with a status cq
 * does not write (by hand) is said on stderr as it is, where "no status" would be untrue; an
 * id without a hash is said there too when the caller was given it, and counted for one line
 * at the end when it is the caller's own (own_ids). On stdout, "ID unknown" for the caller's
 * own, where every id it enqueued is; {"id","state":"unknown"} with --json for any (a program
 * reading stdout sees every id it gave). */
static void on_unknown(struct waiting *w, size_t i, const cq_status *st)
{
    const struct jobwait *jw = w->jw;
    const char *raw = cq_status_field(st, "status");
    char shown[STR_SHOWN_LEN];

    if (w->progress) progress_erase(w);
    if (raw != NULL)
        fprintf(stderr,
                "%s: job %s: its status '%s' is none of cq's (queued, scheduled, started, "
                "retrying, finished, failed, canceled); not waited for\n",
                jw->prog, jw->ids[i], str_shown(raw, shown, sizeof shown));
    else if (jw->own_ids)
        w->gone++;
    else
        fprintf(stderr, "%s: " ADMIN_NO_STATUS_FMT "; not waited for\n", jw->prog, jw->ids[i]);
    if ((jw->json || jw->own_ids) && !jw->quiet &&
        put_line(w, i, cq_status_state_name(CQ_UNKNOWN), NULL, NULL) != 0)
        w->lost = 1;
    /* Its line out, then not waited for: an interrupt before this prints its id as one of
     * the jobs not ended, and counts it among them ("N of TOTAL"). */
    w->done[i] = 1;
    w->unknown++;
}

/* cq_wait_each2's callback: the job's line as it ends, then the progress. A line that could
 * not be written (a reader that left: | head -1, a full disk) stops the wait there, as
 * every command stops at its first failed write (cli.h): 1, else 0. */
static int on_end(size_t i, const cq_status *st, void *udata)
{
    struct waiting *w = udata;
    const struct jobwait *jw = w->jw;
    enum cq_state state = cq_status_state(st);
    const char *key;
    long long now;

    if (state == CQ_UNKNOWN) {
        on_unknown(w, i, st);
        return w->lost;
    }
    w->ended++;
    if (!jw->quiet) {
        if (w->progress && isatty(STDOUT_FILENO)) progress_erase(w);
        if (state == CQ_FINISHED)
            key = cq_status_result_is_json(st) ? "result_json" : "result";
        else
            key = "error"; /* why it failed, or was canceled */
        /* as it ends, also through a pipe */
        if (put_line(w, i, cq_status_state_name(state), key, cq_status_field(st, key)) != 0)
            w->lost = 1;
    }
    w->done[i] = 1; /* its line out: an interrupt before this prints its id again, not none */
    now = time_mono_ms();
    if (w->progress && (now - w->progress_at >= 100 || w->ended == jw->n - w->unknown)) {
        fprintf(stderr, "\r%s: %zu/%zu jobs ended", jw->prog, w->ended, jw->n - w->unknown);
        fflush(stderr);
        w->progress_at = now;
    }
    return w->lost;
}

/* SIGINT and SIGTERM to fn, one at a time (on_interrupt ends the process), or SIG_DFL. */
static void catch_signals(void (*fn)(int))
{
    stop_signals_to(fn, 0);
}

void jobwait_catch(const struct jobwait *jw)
{
    caught.jw = jw;
    waiting_now = &caught;
    catch_signals(on_interrupt);
}

void jobwait_release(void)
{
    catch_signals(SIG_DFL);
    waiting_now = NULL;
}

void jobwait_say_gone(const char *prog, size_t gone)
{
    fprintf(stderr,
            "%s: %zu job%s had no status when the wait read %s: a worker with --result-ttl 0 or "
            "--failure-ttl 0 drops a job's at its end, or %s deleted or lost with redis's data; "
            "%s outcome%s unknown (to see %s, keep statuses a while: cworker --result-ttl 60)\n",
            prog, gone, gone == 1 ? "" : "s", gone == 1 ? "it" : "them",
            gone == 1 ? "it was" : "they were", gone == 1 ? "its" : "their",
            gone == 1 ? " is" : "s are", gone == 1 ? "it" : "them");
}

int jobwait_run(const struct jobwait *jw, cq_client *c)
{
    struct waiting w;
    cq_status **out = xcalloc(jw->n ? jw->n : 1, sizeof *out);
    size_t i, n[CQ_CANCELED + 1], open = 0, total;
    char err[1024];
    int rc;

    memset(&w, 0, sizeof w);
    memset(n, 0, sizeof n);
    w.jw = jw;
    w.done = xcalloc(jw->n ? jw->n : 1, 1);
    w.progress = isatty(STDERR_FILENO);
    if (w.progress) {
        fprintf(stderr, "%s: 0/%zu jobs ended", jw->prog, jw->n);
        w.progress_at = time_mono_ms();
    }
    cli_stdout_push(); /* what on_interrupt writes comes after it */
    waiting_now = &w;
    catch_signals(on_interrupt);
    rc = cq_wait_each2(c, (const char *const *)jw->ids, jw->n, jw->timeout, CQ_WAIT_UNKNOWN_ENDS,
                       out, on_end, &w, err, sizeof err);
    jobwait_release();
    progress_erase(&w);
    total = jw->n - w.unknown; /* the jobs waited for */
    if (rc == CQ_WAIT_STOPPED && w.ended < total) {
        /* Its line says which jobs go on without their ids, as cenqueue's when the ids of
         * an enqueue could not be written: said for a reader that left too, whose silence
         * (cli.h) would hide them. Nothing more goes to stdout. */
        cli_stdout_failure("the jobs' outcomes", err, sizeof err);
        fprintf(stderr,
                "%s: %s (stopped waiting with %zu of %zu jobs not ended: they go on, their ids "
                "not printed)\n",
                jw->prog, err, total - w.ended, total);
        cli_stdout_said();
        for (i = 0; i < jw->n; i++) cq_status_free(out[i]);
        free((void *)w.done);
        free(out);
        return 1;
    }
    if (rc < 0) {
        print_open(&w, NULL);
        fprintf(stderr, "%s: %s (%zu of %zu jobs had ended%s)\n", jw->prog, err, w.ended, total,
                jw->quiet || w.ended == total ? "" : "; the others' ids printed");
        free((void *)w.done);
        free(out);
        return 1;
    }
    print_open(&w, out);
    free((void *)w.done);
    for (i = 0; i < jw->n; i++) {
        enum cq_state s = cq_status_state(out[i]);
        n[(unsigned)s <= CQ_CANCELED ? s : CQ_UNKNOWN]++;
        open += !cq_state_ended(s);
        cq_status_free(out[i]);
    }
    free(out);
    n[CQ_UNKNOWN] -= w.unknown; /* those not waited for did not "not end" */
    open -= w.unknown;
    if (open > 0) {
        /* Say where the others are, in the order a job goes. */
        static const enum cq_state order[] = {CQ_UNKNOWN, CQ_SCHEDULED, CQ_QUEUED, CQ_STARTED,
                                              CQ_RETRYING};
        const char *sep = " (";
        fprintf(stderr, "%s: %zu of %zu job%s did not end within %gs", jw->prog, open, total,
                total == 1 ? "" : "s", jw->timeout);
        for (i = 0; i < sizeof order / sizeof order[0]; i++) {
            if (n[order[i]] == 0) continue;
            fprintf(stderr, "%s%zu %s", sep, n[order[i]], cq_status_state_name(order[i]));
            sep = ", ";
        }
        fprintf(stderr, ")\n");
    }
    if (w.gone > 0) jobwait_say_gone(jw->prog, w.gone);
    if (total + w.gone > 1) {
        fprintf(stderr, "%s: %zu finished, %zu failed, %zu canceled", jw->prog, n[CQ_FINISHED],
                n[CQ_FAILED], n[CQ_CANCELED]);
        if (w.gone > 0) fprintf(stderr, ", %zu unknown", w.gone);
        fputc('\n', stderr);
    }
    return n[CQ_FINISHED] == jw->n ? 0 : 1;
}
