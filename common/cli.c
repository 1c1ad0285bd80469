/* cli.c - getopt tables, --help and usage errors from one option table (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audience.h"
#include "cq/cq.h"
#include "rconn.h"
#include "util.h"

#define HELP_COLUMN 27 /* where the help text starts */

/* The --tls-* option given last (cli_tls), for cli_check_settings; NULL when none was. Not
 * in struct cli: cenqueue checks the settings where its struct cli (parse_options') is gone,
 * and what cli_tls records is the process's as the variable it sets is. */
static const char *tls_given;
/* errno of the first write to stdout that failed (-1: its reason lost), for every message
 * about it (cli.h). */
static int stdout_errno;
static int stdout_said; /* the failure's line is out (cli_stdout_flush, or cli_stdout_said) */

/* A closed stdout or stderr would be the next descriptor opened, a Redis connection, whose
 * socket would then get the ids or the log lines (cworker 2>&- hung, its lines sent to Redis
 * as commands): each is /dev/null instead. stdin is left to the command (cenqueue --stdin
 * refuses a closed one; the others do not read it). Returns whether stdout was closed. */
static int std_fds_open(void)
{
    int fd, stdout_closed = 0;

    for (fd = STDOUT_FILENO; fd <= STDERR_FILENO; fd++) {
        int null;
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
        if (fd == STDOUT_FILENO) stdout_closed = 1;
        null = open("/dev/null", O_WRONLY);
        if (null >= 0 && null != fd) {
            dup2(null, fd);
            close(null);
        }
    }
    return stdout_closed;
}

void cli_begin(struct cli *c, const char *prog, const char *version, void (*usage)(FILE *),
               const struct cli_option *opts, size_t n, int stop_at_arg)
{
    struct option *lo = xcalloc(n + 1, sizeof *lo);
    char *so = xcalloc(3 * n + 3, 1);
    size_t i, nl = 0, ns = 0;
    int stdout_closed = std_fds_open();

    /* A reader of stdout that left is a write that fails (EPIPE, cli.h), not a signal that
     * ends the program: --help | head -1 too, before a command sets up its signals. */
    signal(SIGPIPE, SIG_IGN);
    /* This is one of cq's commands: libcq's advice names its options (audience.h). */
    cq_private_set_audience(AUDIENCE_COMMANDS);
    memset(c, 0, sizeof *c);
    c->stdout_closed = stdout_closed;
    c->prog = prog;
    c->version = version;
    c->usage = usage;
    c->opts = opts;
    c->n = n;
    c->opt = "";
    if (stop_at_arg) so[ns++] = '+';
    so[ns++] = ':'; /* a missing argument is ':', not '?': the two get different messages */
    for (i = 0; i < n; i++) {
        if (opts[i].name == NULL) continue;
        lo[nl].name = opts[i].name;
        lo[nl].has_arg = opts[i].arg ? required_argument : no_argument;
        lo[nl].val = opts[i].key;
        nl++;
        if (opts[i].key > 0 && opts[i].key < 256) {
            so[ns++] = (char)opts[i].key;
            if (opts[i].arg) so[ns++] = ':';
        }
    }
    c->longopts = lo;
    c->shortopts = so;
    opterr = 0; /* the messages are ours: one line, naming the program, not argv[0]'s path */
}

void cli_end(struct cli *c)
{
    free(c->longopts);
    free(c->shortopts);
    c->longopts = NULL;
    c->shortopts = NULL;
}

static const char *long_name(const struct cli *c, int key)
{
    size_t i;

    for (i = 0; i < c->n; i++)
        if (c->opts[i].name != NULL && c->opts[i].key == key) return c->opts[i].name;
    return "";
}

int cli_error(const struct cli *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\nTry '%s%s%s --help' for more information.\n", c->prog, msg, c->prog,
            c->command ? " " : "", c->command ? c->command : "");
    return 2;
}

int cli_check_settings(const char *url, const char *prefix, char *err, size_t errlen)
{
    /* Given but empty: a mistake ("-u $UNSET_VAR"), not a wish for the default. An empty
     * variable is still taken as unset. */
    if (prefix != NULL && *prefix == '\0') {
        err_set(err, errlen, "--prefix: empty; leave it out for $CQ_PREFIX, else \"cq:\"");
        return -1;
    }
    if (url != NULL && *url == '\0') {
        err_set(err, errlen,
                "--url: empty; leave it out for $CQ_REDIS_URL, else " RCONN_DEFAULT_URL);
        return -1;
    }
    if (cq_prefix_check(prefix, err, errlen) != 0) { /* in cq_client_new's order */
        if (prefix != NULL) err_prepend(err, errlen, "--prefix: ");
        return -1;
    }
    if (cq_url_check(url, err, errlen) != 0) {
        if (url != NULL) err_prepend(err, errlen, "--url: ");
        return -1;
    }
    /* A TLS file given for a URL without TLS was read by nothing: most often the 's' of
     * rediss:// left out. The variables are not asked about: one set for every program may
     * serve a rediss:// URL of some. */
    if (tls_given != NULL) {
        const char *env = getenv("CQ_REDIS_URL"), *u = url, *from = "--url";
        if (u == NULL && env != NULL && *env != '\0') {
            u = env;
            from = "$CQ_REDIS_URL";
        } else if (u == NULL) {
            u = RCONN_DEFAULT_URL;
            from = "the default, " RCONN_DEFAULT_URL;
        }
        if (strncmp(u, "rediss://", 9) != 0) {
            err_set(err, errlen,
                    "%s: TLS files are for a rediss:// URL, and the URL (%s) is not one: "
                    "give rediss://, or leave %s out",
                    tls_given, from, tls_given);
            return -1;
        }
    }
    return 0;
}

const char *cli_first_operand(struct cli *c, int argc, char **argv)
{
    char **copy = xcalloc((size_t)argc + 1, sizeof *copy);
    const char *first = NULL;
    int i;

    for (i = 0; i < argc; i++) copy[i] = argv[i];
    optind = 0; /* glibc: start over, its permutation state too */
    while (getopt_long(argc, copy, c->shortopts, c->longopts, NULL) != -1) continue;
    if (optind < argc) first = copy[optind];
    free(copy);
    optind = 0;
    return first;
}

/* The options whose long name is name (exactly: -1 when none is; or its first len bytes,
 * an abbreviation): how many match, and in *key the key of the exact one or the last. */
static int matches(const struct cli *c, const char *name, size_t len, int *key)
{
    size_t i;
    int n = 0;

    for (i = 0; i < c->n; i++) {
        const char *o = c->opts[i].name;
        if (o == NULL || strncmp(o, name, len) != 0) continue;
        *key = c->opts[i].key;
        if (o[len] == '\0') return 1;
        n++;
    }
    return n;
}

/* "unknown option 'OPT'" (the first len bytes of opt), with the program's hint for it. */
static int unknown(const struct cli *c, const char *opt, size_t len)
{
    const struct cli_hint *h;

    for (h = c->hints; h != NULL && h->opt != NULL; h++)
        if (strlen(h->opt) == len && strncmp(h->opt, opt, len) == 0)
            return cli_error(c, "unknown option '%.*s'; %s", (int)len, opt, h->hint);
    return cli_error(c, "unknown option '%.*s'", (int)len, opt);
}

/* Why getopt refused an option (it returned '?' or ':'), said as the user wrote it: unknown,
 * ambiguous, a value given to a flag, or a value missing. Returns 2. */
static int bad_option(const struct cli *c, int key, int argc, char **argv)
{
    /* After a long option optind has moved past it; inside a cluster of short ones (-xb) it
     * has not, and argv[optind - 1] is the argument before: the long form is only right
     * when that argument is a long option getopt was looking at. */
    const char *a = optind > 0 && optind - 1 < argc ? argv[optind - 1] : "";
    size_t len = strcspn(a + (a[0] ? 2 : 0), "=");
    int found = 0, n = strncmp(a, "--", 2) == 0 ? matches(c, a + 2, len, &found) : 0;
    char all[512] = "";
    size_t i, used = 0;

    if (strncmp(a, "--", 2) != 0 || (optopt != 0 && (n != 1 || found != optopt))) {
        char shortopt[3] = {'-', (char)optopt, '\0'};
        return key == ':' ? cli_error(c, "option '-%c' needs a value", optopt)
                          : unknown(c, shortopt, 2);
    }
    if (key == ':') return cli_error(c, "option '%.*s' needs a value", (int)len + 2, a);
    if (optopt != 0) return cli_error(c, "option '%.*s' takes no value", (int)len + 2, a);
    if (n < 2) return unknown(c, a, len + 2);
    for (i = 0; i < c->n && used < sizeof all; i++)
        if (c->opts[i].name != NULL && strncmp(c->opts[i].name, a + 2, len) == 0)
            used += (size_t)snprintf(all + used, sizeof all - used, "%s--%s", used ? ", " : "",
                                     c->opts[i].name);
    return cli_error(c, "option '%.*s' is ambiguous: %s", (int)len + 2, a, all);
}

int cli_next(struct cli *c, int argc, char **argv)
{
    int key;

    optopt = 0;
    key = getopt_long(argc, argv, c->shortopts, c->longopts, NULL);
    if (key == -1) return -1;
    c->opt = long_name(c, key);
    if (key == '?' || key == ':') {
        c->status = bad_option(c, key, argc, argv);
        return CLI_STOP;
    }
    if (key == 'h' && c->usage != NULL) {
        cli_help_buffer();
        c->usage(stdout);
        c->status = cli_stdout_flush(c->prog, "the help") < 0 ? 1 : 0;
        return CLI_STOP;
    }
    if (key == 'V') {
        printf("%s %s\n", c->prog, c->version);
        c->status = cli_stdout_flush(c->prog, "the version") < 0 ? 1 : 0;
        return CLI_STOP;
    }
    return key;
}

void cli_help_buffer(void)
{
    /* glibc takes a size only with a buffer of the caller's */
    static char buf[65536];

    setvbuf(stdout, buf, _IOFBF, sizeof buf);
}

/* Whether stdout is a pipe or a socket whose reader has left, for a failed write whose errno
 * is gone: poll says POLLERR (Linux: a pipe without a reader) or POLLHUP there. */
static int stdout_reader_left(void)
{
    struct pollfd p = {STDOUT_FILENO, POLLOUT, 0};
    struct stat st;

    if (fstat(STDOUT_FILENO, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) return 0;
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)) != 0;
}

int cli_stdout_push(void)
{
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout)) return 0;
    /* The first failure's reason; where stdio's own write lost it, the reader that left is
     * still seen, else there is none to give (-1). */
    if (stdout_errno == 0) stdout_errno = errno != 0 ? errno : stdout_reader_left() ? EPIPE : -1;
    return -1;
}

int cli_stdout_failure(const char *what, char *buf, size_t len)
{
    if (stdout_errno > 0)
        err_set(buf, len, "writing %s to stdout: %s", what, strerror(stdout_errno));
    else
        err_set(buf, len, "writing %s to stdout failed", what);
    return stdout_errno == EPIPE ? CLI_STDOUT_GONE : -1;
}

int cli_stdout_flush(const char *prog, const char *what)
{
    char msg[256];

    if (cli_stdout_push() == 0) return 0;
    if (cli_stdout_failure(what, msg, sizeof msg) == CLI_STDOUT_GONE) return CLI_STDOUT_GONE;
    if (!stdout_said) fprintf(stderr, "%s: %s\n", prog, msg);
    stdout_said = 1;
    return -1;
}

void cli_stdout_said(void)
{
    stdout_said = 1;
}

int cli_duration(const struct cli *c, const char *val, double *out)
{
    char msg[256];

    return parse_duration_msg(val, out, msg, sizeof msg) == 0
        ? 0
        : cli_error(c, "--%s: %s", c->opt, msg);
}

int cli_size(const struct cli *c, const char *val, long long *out)
{
    char msg[256];

    return parse_size_msg(val, out, msg, sizeof msg) == 0 ? 0
                                                          : cli_error(c, "--%s: %s", c->opt, msg);
}

int cli_long(const struct cli *c, const char *val, long min, long max, long *out)
{
    char msg[256];

    return parse_long_msg(val, min, max, out, msg, sizeof msg) == 0
        ? 0
        : cli_error(c, "--%s: %s", c->opt, msg);
}

int cli_choice(const struct cli *c, const char *val, const char *const *choices, size_t n, int *out)
{
    char msg[512];

    return parse_choice(val, choices, n, out, msg, sizeof msg) == 0
        ? 0
        : cli_error(c, "--%s: %s", c->opt, msg);
}

void cli_tls(int key, const char *file)
{
    setenv(key == CLI_O_TLS_CA         ? "CQ_TLS_CA"
               : key == CLI_O_TLS_CERT ? "CQ_TLS_CERT"
                                       : "CQ_TLS_KEY",
           file, 1);
    tls_given = key == CLI_O_TLS_CA ? "--tls-ca"
        : key == CLI_O_TLS_CERT     ? "--tls-cert"
                                    : "--tls-key";
}

/* Print help's lines, the first from column col, the rest from HELP_COLUMN. */
static void print_help(FILE *f, const char *help, int col)
{
    const char *p = help;

    while (*p) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        fprintf(f, "%*s%.*s\n", HELP_COLUMN - col, "", len, p);
        col = 0;
        p += len + (nl ? 1 : 0);
    }
}

void cli_print(FILE *f, const struct cli_option *opts, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        const struct cli_option *o = &opts[i];
        char flag[64];
        int w;
        if (o->name == NULL) {
            fprintf(f, "\n%s\n", o->help);
            continue;
        }
        if (o->key > 0 && o->key < 256)
            w = snprintf(flag, sizeof flag, "  -%c, --%s%s%s", o->key, o->name, o->arg ? " " : "",
                         o->arg ? o->arg : "");
        else
            w = snprintf(flag, sizeof flag, "      --%s%s%s", o->name, o->arg ? " " : "",
                         o->arg ? o->arg : "");
        fputs(flag, f);
        if (w + 2 > HELP_COLUMN) { /* at least two spaces between an option and its help */
            /* A long option name: its help starts on the next line. */
            fputc('\n', f);
            w = 0;
        }
        print_help(f, o->help, w);
    }
}
