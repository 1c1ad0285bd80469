/* cli.c - getopt tables, --help and usage errors from one option table (see cli.h). */
#include "cli.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define HELP_COLUMN 27 /* where the help text starts */

void cli_begin(struct cli *c, const char *prog, const char *version, void (*usage)(FILE *),
               const struct cli_option *opts, size_t n, int stop_at_arg)
{
    struct option *lo = xcalloc(n + 1, sizeof *lo);
    char *so = xcalloc(3 * n + 3, 1);
    size_t i, nl = 0, ns = 0;

    memset(c, 0, sizeof *c);
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
    fprintf(stderr, "%s: %s\nTry '%s --help' for more information.\n", c->prog, msg, c->prog);
    return 2;
}

/* The option as the user wrote it, for a message about it: "--bogus", "-x". */
static void as_written(int argc, char **argv, char *buf, size_t len)
{
    const char *a = optind - 1 < argc && optind > 0 ? argv[optind - 1] : "";

    if (optopt > 0 && optopt < 256 && strncmp(a, "--", 2) != 0) {
        snprintf(buf, len, "-%c", optopt);
        return;
    }
    snprintf(buf, len, "%.*s", (int)strcspn(a, "="), a);
}

int cli_next(struct cli *c, int argc, char **argv)
{
    char written[256];
    int key;

    optopt = 0;
    key = getopt_long(argc, argv, c->shortopts, c->longopts, NULL);
    if (key == -1) return -1;
    c->opt = long_name(c, key);
    if (key == '?' || key == ':') {
        as_written(argc, argv, written, sizeof written);
        if (key == '?')
            c->status = cli_error(c, "unknown option '%s'", written);
        else
            c->status = cli_error(c, "option '%s' needs a value", written);
        return CLI_STOP;
    }
    if (key == 'h' && c->usage != NULL) {
        c->usage(stdout);
        c->status = 0;
        return CLI_STOP;
    }
    if (key == 'V') {
        printf("%s %s\n", c->prog, c->version);
        c->status = 0;
        return CLI_STOP;
    }
    return key;
}

int cli_duration(const struct cli *c, const char *val, double *out)
{
    if (parse_duration(val, out) == 0) return 0;
    return cli_error(c, "--%s: '%s' is not " PARSE_DURATION_WHAT, c->opt, val);
}

int cli_size(const struct cli *c, const char *val, long long *out)
{
    if (parse_size(val, out) == 0) return 0;
    return cli_error(c, "--%s: '%s' is not " PARSE_SIZE_WHAT, c->opt, val);
}

int cli_long(const struct cli *c, const char *val, long min, long max, long *out)
{
    char what[128];

    if (parse_long(val, min, max, out) == 0) return 0;
    snprintf(what, sizeof what, PARSE_LONG_WHAT, min, max);
    return cli_error(c, "--%s: '%s' is not %s", c->opt, val, what);
}

int cli_choice(const struct cli *c, const char *val, const char *const *choices, size_t n, int *out)
{
    char list[512] = "";
    size_t i, len = 0;

    for (i = 0; i < n; i++) {
        if (strcmp(val, choices[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    for (i = 0; i < n && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
                                i == 0           ? ""
                                    : i + 1 == n ? " or "
                                                 : ", ",
                                choices[i]);
    return cli_error(c, "--%s: '%s' is not one of %s", c->opt, val, list);
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
        if (w + 1 > HELP_COLUMN) {
            /* A long option name: its help starts on the next line. */
            fputc('\n', f);
            w = 0;
        }
        print_help(f, o->help, w);
    }
}
