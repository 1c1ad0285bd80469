/* cli.c - getopt tables and --help from one option table (see cli.h). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define HELP_COLUMN 27 /* where the help text starts */

void cli_getopt(const struct cli_option *opts, size_t n, int stop_at_arg, struct option **longopts,
                char **shortopts)
{
    struct option *lo = xcalloc(n + 1, sizeof *lo);
    char *so = xcalloc(3 * n + 2, 1);
    size_t i, nl = 0, ns = 0;

    if (stop_at_arg) so[ns++] = '+';
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
    *longopts = lo;
    *shortopts = so;
}

void cli_free(struct option *longopts, char *shortopts)
{
    free(longopts);
    free(shortopts);
}

int cli_standard(int opt, const char *prog, const char *version, void (*usage)(FILE *))
{
    if (opt == 'h') {
        usage(stdout);
        return CLI_DONE;
    }
    if (opt == 'V') {
        printf("%s %s\n", prog, version);
        return CLI_DONE;
    }
    fprintf(stderr, "Try '%s --help' for more information.\n", prog);
    return 2;
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
