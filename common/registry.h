/* registry.h - a set of functions a job may name (struct cq_registry of cq.h).
 *
 * A worker's registry is what it dispatches through: the built-ins (noop, sleep), the
 * application's (cworker's download_link), plugins' and commands', all added by
 * cq_function_add. A client builds the same structures from the catalog in Redis
 * (catalog.c) to check a job's arguments before it is enqueued, so one parser of argument
 * specs and one checker serve both sides.
 */
#ifndef CQ_REGISTRY_H
#define CQ_REGISTRY_H

#include <stdio.h>
#include <cjson/cJSON.h>

#include "cq/cq.h"

#define REGISTRY_NAME_MAX 64
/* The longest source cq_function_set_source takes. */
#define REGISTRY_SOURCE_MAX 256
#define REGISTRY_ARGS_MAX   32 /* declared arguments of one function */

struct registry_arg {
    char name[REGISTRY_NAME_MAX + 1];
    enum cq_arg_type type;
    int optional; /* [NAME] */
    int variadic; /* NAME... (last only) */
};

struct cq_function {
    char name[REGISTRY_NAME_MAX + 1];
    char *spec; /* the argument spec as given, normalised */
    struct registry_arg args[REGISTRY_ARGS_MAX];
    int nargs;              /* declared */
    int min_args, max_args; /* max_args -1 = any number */
    char *usage;            /* "download_link DIRECTORY LINK" */
    char *summary;
    int retries;
    double timeout; /* seconds; 0 = none */
    cq_handler fn;
    void *udata;
    void (*udata_free)(void *); /* set by internal users that own udata (commands) */
    cq_thread_init thread_init;
    cq_thread_free thread_free;
    int index;    /* position in the registry: per-thread state slot */
    char *source; /* "program", "builtin", "plugin PATH", "command PROGRAM", "catalog" */
};

struct cq_registry {
    struct cq_function **v;
    int n, cap;
    const char *source; /* stamped on functions added from now on */
    int declarations;   /* a client's: functions may come without a handler */
    char error[512];
};

struct cq_registry *registry_new(void);
void registry_free(struct cq_registry *r);

/* Remove the function added last (a plugin that failed to load). */
void registry_drop_last(struct cq_registry *r);

/* The source stamped on functions added next ("program", a program's own, until set: what a
 * program adds to cq_worker_registry or cq_client_registry); each function keeps a copy. */
void registry_set_source(struct cq_registry *r, const char *source);

const struct cq_function *registry_find(const struct cq_registry *r, const char *name);

/* 1 when s is a function name cq_function_add takes (1-64 of A-Z a-z 0-9 _ . -), else 0. */
int registry_valid_name(const char *s);

/* 0 when name (NULL too) is a function name; else -1 with err saying so, the name shown as
 * str_shown shows it (one line, cut). */
int registry_check_name(const char *name, char *err, size_t errlen);
/* 0 when r has no function name, else -1 with err "function NAME: already registered (by
 * SOURCE)": every name is served by one handler. */
int registry_check_free(const struct cq_registry *r, const char *name, char *err, size_t errlen);

/* Add a function that only describes (no handler): what a client knows from the catalog. */
struct cq_function *registry_describe(struct cq_registry *r, const char *name, const char *spec,
                                      char *err, size_t errlen);

/* Check args (a JSON array) against f's declaration: count and types. With convert, string
 * arguments of other declared types are replaced by the value they read as (integer and
 * number: a JSON number; json: the parsed value), as a producer given strings on a command
 * line wants. 0, or -1 with err naming the argument and the usage. */
int registry_check_args(const struct cq_function *f, cJSON *args, int convert, char *err,
                        size_t errlen);

/* err receives "unknown function 'x' (known: a, b, c)". */
void registry_unknown(const struct cq_registry *r, const char *func, char *err, size_t errlen);
/* The functions of r by name (free the array, not its functions), as the lists say them. */
const struct cq_function **registry_sorted(const struct cq_registry *r);

/* "NAME SPEC": its arguments as declared, with their types ("resize PATH WIDTH:integer"), in
 * buf; for the lists of functions, where errors show the shorter usage. */
const char *registry_signature(const struct cq_function *f, char *buf, size_t len);

/* Where the summaries of a table of these n functions start (a column of at most 32). */
int registry_column(const struct cq_function *const *v, int n);
/* The start of one row of such a table: sig, and spaces up to column col, where the caller
 * writes the row's text (never nothing: no line may end in spaces); a sig too long for the
 * column goes alone on its line, the text on the next at the column. */
void registry_lead(FILE *f, int col, const char *sig);

/* One function a line (two for a long signature): signature, summary, retries, timeout, source
 * (cworker --list-functions). */
void registry_print(const struct cq_registry *r, FILE *f);

/* The type's name in specs ("string"), and back (-1 when unknown). */
const char *registry_type_name(enum cq_arg_type t);
int registry_type_parse(const char *s, size_t len);

/* noop and sleep, through cq_function_add like any plugin. */
int registry_add_builtins(struct cq_registry *r);

#endif
