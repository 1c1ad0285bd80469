/* registry.c - function sets, argument specs and the built-in functions.
 *
 * An argument spec is parsed once, when a function is added, into an array of declared
 * arguments; checking a job is then a walk over its JSON args. The spec is kept as given
 * (normalised) because it is also what the catalog publishes to producers.
 */
#include "registry.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "util.h"

static const char *const type_names[] = {
    [CQ_ARG_STRING] = "string",     [CQ_ARG_INTEGER] = "integer", [CQ_ARG_NUMBER] = "number",
    [CQ_ARG_DURATION] = "duration", [CQ_ARG_JSON] = "json",       [CQ_ARG_ANY] = "any",
};

/* An argument's type in a sentence: "an integer", "a number", "a JSON value". */
static const char *type_phrase(enum cq_arg_type t)
{
    switch (t) {
    case CQ_ARG_INTEGER: return "an integer";
    case CQ_ARG_NUMBER: return "a number";
    case CQ_ARG_DURATION: return "a duration";
    case CQ_ARG_JSON: return "a JSON value";
    case CQ_ARG_STRING: return "a string";
    default: return "a value";
    }
}

const char *registry_type_name(enum cq_arg_type t)
{
    return (unsigned)t < sizeof type_names / sizeof type_names[0] ? type_names[t] : "?";
}

int registry_type_parse(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (strlen(type_names[i]) == len && strncmp(type_names[i], s, len) == 0) return (int)i;
    return -1;
}

struct cq_registry *registry_new(void)
{
    struct cq_registry *r = xcalloc(1, sizeof *r);

    r->source = "program";
    return r;
}

static void function_free(struct cq_function *f)
{
    if (f == NULL) return;
    if (f->udata_free != NULL) f->udata_free(f->udata);
    free(f->spec);
    free(f->usage);
    free(f->summary);
    free(f->source);
    free(f);
}

void registry_free(struct cq_registry *r)
{
    int i;

    if (r == NULL) return;
    for (i = 0; i < r->n; i++) function_free(r->v[i]);
    free(r->v);
    free(r);
}

void registry_drop_last(struct cq_registry *r)
{
    if (r->n > 0) function_free(r->v[--r->n]);
}

void registry_set_source(struct cq_registry *r, const char *source)
{
    r->source = source;
}

const struct cq_function *registry_find(const struct cq_registry *r, const char *name)
{
    int i;

    for (i = 0; i < r->n; i++)
        if (strcmp(r->v[i]->name, name) == 0) return r->v[i];
    return NULL;
}

int registry_valid_name(const char *s)
{
    size_t n = 0;

    for (; *s; s++, n++) {
        int ok = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
            *s == '_' || *s == '.' || *s == '-';
        if (!ok) return 0;
    }
    return n >= 1 && n <= REGISTRY_NAME_MAX;
}

int registry_check_name(const char *name, char *err, size_t errlen)
{
    char shown[STR_SHOWN_LEN];

    if (name != NULL && registry_valid_name(name)) return 0;
    err_set(err, errlen, "function name '%s': use 1-%d characters of A-Z a-z 0-9 _ . -",
            str_shown(name, shown, sizeof shown), REGISTRY_NAME_MAX);
    return -1;
}

/* Parse spec into f->args, f->min_args, f->max_args, f->spec and f->usage. */
static int parse_spec(struct cq_function *f, const char *spec, char *err, size_t errlen)
{
    const char *p = spec ? spec : "";
    char norm[2048] = "", usage[2048];
    size_t no = 0, uo;
    int seen_optional = 0;

    f->nargs = 0;
    f->min_args = 0;
    f->max_args = 0;
    uo = (size_t)snprintf(usage, sizeof usage, "%s", f->name);
    for (;;) {
        struct registry_arg *a;
        const char *tok, *colon, *end;
        size_t len, namelen;
        int w;

        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\0') break;
        tok = p;
        while (*p && *p != ' ' && *p != '\t') p++;
        len = (size_t)(p - tok);
        if (f->nargs == REGISTRY_ARGS_MAX) {
            err_set(err, errlen, "more than %d arguments declared", REGISTRY_ARGS_MAX);
            return -1;
        }
        if (f->max_args < 0) {
            err_set(err, errlen, "'%.*s' follows a repeated argument (NAME... comes last)",
                    (int)len, tok);
            return -1;
        }
        a = &f->args[f->nargs];
        memset(a, 0, sizeof *a);
        end = tok + len;
        if (*tok == '[') {
            if (end[-1] != ']' || len < 3) {
                err_set(err, errlen, "'%.*s': an optional argument is [NAME] or [NAME:TYPE]",
                        (int)len, tok);
                return -1;
            }
            a->optional = 1;
            tok++;
            end--;
        } else if (seen_optional) {
            err_set(err, errlen, "'%.*s': a required argument follows an optional one", (int)len,
                    tok);
            return -1;
        }
        if (end - tok > 3 && strncmp(end - 3, "...", 3) == 0) {
            a->variadic = 1;
            end -= 3;
        }
        colon = memchr(tok, ':', (size_t)(end - tok));
        namelen = (size_t)((colon ? colon : end) - tok);
        if (namelen == 0 || namelen > REGISTRY_NAME_MAX) {
            err_set(err, errlen, "'%.*s': an argument needs a name of 1-%d characters", (int)len,
                    tok - a->optional, REGISTRY_NAME_MAX);
            return -1;
        }
        memcpy(a->name, tok, namelen);
        a->name[namelen] = '\0';
        if (strspn(a->name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
            namelen) {
            err_set(err, errlen, "'%.*s': argument names use letters, digits, _ and -",
                    (int)namelen, a->name);
            return -1;
        }
        for (int k = 0; k < f->nargs; k++) {
            if (strcmp(f->args[k].name, a->name) == 0) {
                err_set(err, errlen, "'%s': declared twice", a->name);
                return -1;
            }
        }
        a->type = CQ_ARG_STRING;
        if (colon != NULL) {
            int t = registry_type_parse(colon + 1, (size_t)(end - colon - 1));
            if (t < 0) {
                err_set(err, errlen,
                        "argument %s: unknown type '%.*s' (string, integer, "
                        "number, duration, json or any)",
                        a->name, (int)(end - colon - 1), colon + 1);
                return -1;
            }
            a->type = (enum cq_arg_type)t;
        }
        if (a->optional)
            seen_optional = 1;
        else
            f->min_args++;
        f->max_args = a->variadic ? -1 : f->max_args + 1;
        f->nargs++;
        w = snprintf(norm + no, sizeof norm - no, "%s%s%s%s%s%s%s", no ? " " : "",
                     a->optional ? "[" : "", a->name, a->type == CQ_ARG_STRING ? "" : ":",
                     a->type == CQ_ARG_STRING ? "" : registry_type_name(a->type),
                     a->variadic ? "..." : "", a->optional ? "]" : "");
        if (w < 0 || (size_t)w >= sizeof norm - no) {
            err_set(err, errlen, "argument spec too long");
            return -1;
        }
        no += (size_t)w;
        w = snprintf(usage + uo, sizeof usage - uo, " %s%s%s%s", a->optional ? "[" : "", a->name,
                     a->variadic ? "..." : "", a->optional ? "]" : "");
        if (w < 0 || (size_t)w >= sizeof usage - uo) {
            err_set(err, errlen, "argument spec too long");
            return -1;
        }
        uo += (size_t)w;
    }
    f->spec = xstrdup(norm);
    f->usage = xstrdup(usage);
    return 0;
}

int registry_check_free(const struct cq_registry *r, const char *name, char *err, size_t errlen)
{
    const struct cq_function *f = registry_find(r, name);

    if (f == NULL) return 0;
    err_set(err, errlen, "function %s: already registered (by %s)", name, f->source);
    return -1;
}

static struct cq_function *add(struct cq_registry *r, const char *name, const char *spec, char *err,
                               size_t errlen)
{
    struct cq_function *f;
    char why[400];

    if (registry_check_name(name, err, errlen) != 0 ||
        registry_check_free(r, name, err, errlen) != 0)
        return NULL;
    f = xcalloc(1, sizeof *f);
    str_copy(f->name, sizeof f->name, name);
    if (parse_spec(f, spec, why, sizeof why) != 0) {
        err_set(err, errlen, "function %s: arguments \"%s\": %s", name, spec, why);
        function_free(f);
        return NULL;
    }
    f->summary = xstrdup("");
    f->source = xstrdup(r->source ? r->source : "builtin");
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->v = xrealloc(r->v, sizeof *r->v * (size_t)r->cap);
    }
    f->index = r->n;
    r->v[r->n++] = f;
    return f;
}

struct cq_function *registry_describe(struct cq_registry *r, const char *name, const char *spec,
                                      char *err, size_t errlen)
{
    return add(r, name, spec, err, errlen);
}

cq_function *cq_function_add(cq_registry *reg, const char *name, const char *args, cq_handler fn,
                             void *udata)
{
    struct cq_function *f;

    if (fn == NULL && !reg->declarations) {
        err_set(reg->error, sizeof reg->error, "function %s: no handler", name ? name : "");
        return NULL;
    }
    f = add(reg, name, args, reg->error, sizeof reg->error);
    if (f == NULL) return NULL;
    f->fn = fn;
    f->udata = udata;
    return f;
}

int cq_function_set_summary(cq_function *f, const char *summary)
{
    char *s;
    size_t i;

    if (f == NULL || summary == NULL) return -1;
    s = xstrdup(summary);
    for (i = 0; s[i]; i++)
        if ((unsigned char)s[i] < 0x20) s[i] = ' '; /* one line, whatever it was given */
    free(f->summary);
    f->summary = s;
    return 0;
}

int cq_function_set_source(cq_function *f, const char *source)
{
    size_t i, n, len;

    if (f == NULL || source == NULL) return -1;
    len = strlen(source);
    if (len == 0 || len > REGISTRY_SOURCE_MAX) return -1;
    for (i = 0; i < len; i += n) { /* one line of UTF-8, no control character (C0, DEL, C1) */
        const unsigned char *c = (const unsigned char *)source + i;
        n = utf8_char(c, len - i);
        if (n == 0 || c[0] < 0x20 || c[0] == 0x7f || (c[0] == 0xc2 && c[1] >= 0x80 && c[1] <= 0x9f))
            return -1;
    }
    free(f->source);
    f->source = xstrdup(source);
    return 0;
}

int cq_function_set_retries(cq_function *f, int retries)
{
    if (f == NULL || retries < 0 || retries > 1000) return -1;
    f->retries = retries;
    return 0;
}

int cq_function_set_timeout(cq_function *f, double seconds)
{
    if (f == NULL || !isfinite(seconds) || seconds < 0 || seconds > 1e9) return -1;
    f->timeout = seconds;
    return 0;
}

int cq_function_set_thread_hooks(cq_function *f, cq_thread_init init, cq_thread_free fini)
{
    if (f == NULL || init == NULL) return -1;
    f->thread_init = init;
    f->thread_free = fini;
    return 0;
}

const char *cq_registry_error(const cq_registry *reg)
{
    return reg->error;
}

void cq_plugin_fail(cq_registry *reg, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reg->error, sizeof reg->error, fmt, ap);
    va_end(ap);
}

/* ---- checking a job's arguments --------------------------------------------------------- */

/* Whether s is a number as JSON writes one: an optional '-', digits, and (not for an integer)
 * an optional fraction and exponent: "12", "-0.5", "1e3". strtod and strtoll take more, which
 * a producer's text is not meant as: white space before it (" 1", where "1 " was refused), a
 * '+', hex ("0x10" was 16), ".5". 1 when it is; -1 when it would be but for a leading zero
 * ("007", "-00.5"), which JSON writes not and the conversion would drop without a word: a
 * command's MODE:integer given 0755 ran with 755; 0 otherwise. */
static int number_text(const char *s, int integer)
{
    const char *p = s + (*s == '-');
    size_t n = strspn(p, "0123456789");
    int zero = n > 1 && *p == '0';

    if (n == 0) return 0;
    p += n;
    if (integer) return *p != '\0' ? 0 : zero ? -1 : 1;
    if (*p == '.') {
        n = strspn(p + 1, "0123456789");
        if (n == 0) return 0;
        p += 1 + n;
    }
    if (*p == 'e' || *p == 'E') {
        p += 1 + (p[1] == '+' || p[1] == '-');
        n = strspn(p, "0123456789");
        if (n == 0) return 0;
        p += n;
    }
    return *p != '\0' ? 0 : zero ? -1 : 1;
}

/* 1 when s is an integer as JSON writes one, *out its value; number_text's -1 and 0 else. */
static int is_integer_text(const char *s, double *out)
{
    char *end;
    long long v;
    int rc = number_text(s, 1);

    if (rc != 1) return rc;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0) return 0;
    *out = (double)v;
    return 1;
}

static int is_number_text(const char *s, double *out)
{
    char *end;
    double v;
    int rc = number_text(s, 0);

    if (rc != 1) return rc;
    errno = 0;
    v = strtod_c(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

/* s, a number but for its leading zeros (number_text's -1), without them: "-007.5" "-7.5". */
static void without_zeros(const char *s, char *buf, size_t len)
{
    const char *p = s + (*s == '-');

    while (p[0] == '0' && p[1] >= '0' && p[1] <= '9') p++;
    snprintf(buf, len, "%s%.80s", *s == '-' ? "-" : "", p);
}

/* 0 when v is of type t (a string that reads as one counts), -1 when not, -2 for JSON text
 * to convert that holds a NUL, -3 for one nested deeper than cJSON reads, -4 for a number's
 * text with a leading zero, -5 for JSON text that cJSON takes but RFC 8259 does not ('0755',
 * '1.', a raw control byte in a string); with convert, *repl receives the value to put in its place
 * (NULL: keep it). */
static int check_one(enum cq_arg_type t, const cJSON *v, int convert, cJSON **repl)
{
    double d = 0;
    int rc;

    *repl = NULL;
    switch (t) {
    case CQ_ARG_ANY: return 0;
    case CQ_ARG_STRING: return cJSON_IsString(v) ? 0 : -1;
    case CQ_ARG_INTEGER:
        if (cJSON_IsNumber(v))
            return v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 9e15 ? 0 : -1;
        if (!cJSON_IsString(v)) return -1;
        rc = is_integer_text(v->valuestring, &d);
        if (rc != 1 || fabs(d) >= 9e15) return rc == -1 ? -4 : -1;
        if (convert) *repl = cJSON_CreateNumber(d);
        return 0;
    case CQ_ARG_NUMBER:
        if (cJSON_IsNumber(v)) return 0;
        if (!cJSON_IsString(v)) return -1;
        rc = is_number_text(v->valuestring, &d);
        if (rc != 1) return rc == -1 ? -4 : -1;
        if (convert) *repl = cJSON_CreateNumber(d);
        return 0;
    case CQ_ARG_DURATION:
        if (cJSON_IsNumber(v))
            return isfinite(v->valuedouble) && v->valuedouble >= 0 && v->valuedouble <= DURATION_MAX
                ? 0
                : -1;
        return cJSON_IsString(v) && parse_duration(v->valuestring, &d) == 0 ? 0 : -1;
    case CQ_ARG_JSON:
        if (!cJSON_IsString(v)) return 0;
        if (convert) { /* the text is parsed: a \u0000 in it would cut a string there */
            locale_t loc;
            if (job_json_has_nul(v->valuestring, strlen(v->valuestring))) return -2;
            loc = locale_c_enter(); /* numbers read with a point */
            *repl = cJSON_ParseWithOpts(v->valuestring, NULL, 1);
            locale_c_leave(loc);
            if (*repl != NULL && !job_json_finite(*repl)) {
                cJSON_Delete(*repl);
                *repl = NULL;
            }
            if (*repl != NULL && !job_json_strict(v->valuestring)) {
                cJSON_Delete(*repl); /* cJSON's leniency: '0755' would arrive as 755 */
                *repl = NULL;
                return -5;
            }
            if (*repl == NULL && job_json_too_deep(v->valuestring)) return -3;
            return *repl != NULL ? 0 : -1;
        }
        return 0;
    }
    return -1;
}

static const char *kind_of(const cJSON *v)
{
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    return "an object";
}

int registry_check_args(const struct cq_function *f, cJSON *args, int convert, char *err,
                        size_t errlen)
{
    int n = cJSON_IsArray(args) ? cJSON_GetArraySize(args) : -1, i;
    cJSON *v, *next;

    if (n < 0) {
        err_set(err, errlen, "%s: args must be a JSON array (usage: %s)", f->name, f->usage);
        return -1;
    }
    if (n < f->min_args || (f->max_args >= 0 && n > f->max_args)) {
        if (f->min_args == f->max_args)
            err_set(err, errlen, "%s takes %d argument%s, got %d (usage: %s)", f->name, f->min_args,
                    f->min_args == 1 ? "" : "s", n, f->usage);
        else if (n < f->min_args)
            err_set(err, errlen, "%s takes at least %d argument%s, got %d (usage: %s)", f->name,
                    f->min_args, f->min_args == 1 ? "" : "s", n, f->usage);
        else
            err_set(err, errlen, "%s takes at most %d argument%s, got %d (usage: %s)", f->name,
                    f->max_args, f->max_args == 1 ? "" : "s", n, f->usage);
        return -1;
    }
    /* Each argument by its link, not by index (cJSON_GetArrayItem walks from the first):
     * a call of 200,000 arguments takes linear time. */
    for (i = 0, v = args->child; v != NULL; i++, v = next) {
        const struct registry_arg *a = &f->args[i < f->nargs ? i : f->nargs - 1];
        cJSON *repl;
        int rc = check_one(a->type, v, convert, &repl);
        next = v->next;
        if (rc == -2) {
            err_set(err, errlen,
                    "%s: argument %d (%s) holds a NUL character (\\u0000), which a C function "
                    "cannot be passed (usage: %s)",
                    f->name, i + 1, a->name, f->usage);
            return -1;
        }
        if (rc == -3) {
            err_set(err, errlen,
                    "%s: argument %d (%s) nests arrays or objects deeper than %d levels, which "
                    "cq's JSON reader takes (usage: %s)",
                    f->name, i + 1, a->name, CJSON_NESTING_LIMIT, f->usage);
            return -1;
        }
        if (rc == -4) {
            char fix[96];
            without_zeros(v->valuestring, fix, sizeof fix);
            err_set(err, errlen,
                    "%s: argument %d (%s): '%.80s' is not %s: JSON's numbers have no leading "
                    "zero; give %s (a leading 0 does not make it octal) (usage: %s)",
                    f->name, i + 1, a->name, v->valuestring, type_phrase(a->type), fix, f->usage);
            return -1;
        }
        if (rc == -5) {
            err_set(err, errlen,
                    "%s: argument %d (%s): '%.80s' is not a JSON value as RFC 8259 writes one: "
                    "a number has no leading zero (0755 would arrive as 755), a string no raw "
                    "control character (write \\n, \\t), and only space, tab, CR and LF "
                    "separate (usage: %s)",
                    f->name, i + 1, a->name, v->valuestring, f->usage);
            return -1;
        }
        if (rc != 0) {
            if (cJSON_IsString(v))
                err_set(err, errlen, "%s: argument %d (%s): '%.80s' is not %s (usage: %s)", f->name,
                        i + 1, a->name, v->valuestring, type_phrase(a->type), f->usage);
            else
                err_set(err, errlen, "%s: argument %d (%s) must be %s, not %s (usage: %s)", f->name,
                        i + 1, a->name, type_phrase(a->type), kind_of(v), f->usage);
            return -1;
        }
        if (repl != NULL) cJSON_ReplaceItemViaPointer(args, v, repl);
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const struct cq_function *const *)a)->name,
                  (*(const struct cq_function *const *)b)->name);
}

const struct cq_function **registry_sorted(const struct cq_registry *r)
{
    const struct cq_function **v = xcalloc((size_t)r->n + 1, sizeof *v);
    int i;

    for (i = 0; i < r->n; i++) v[i] = r->v[i];
    qsort(v, (size_t)r->n, sizeof *v, by_name);
    return v;
}

void registry_unknown(const struct cq_registry *r, const char *func, char *err, size_t errlen)
{
    const struct cq_function **v = registry_sorted(r);
    char names[1024] = "";
    size_t o = 0;
    int i;

    for (i = 0; i < r->n; i++) {
        int w = snprintf(names + o, sizeof names - o, "%s%s", i ? ", " : "", v[i]->name);
        if (w < 0 || (size_t)w >= sizeof names - o) break;
        o += (size_t)w;
    }
    free(v);
    err_set(err, errlen, "unknown function '%s' (known: %s)", func, r->n ? names : "none");
}

const char *registry_signature(const struct cq_function *f, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s", f->name, f->spec[0] ? " " : "", f->spec);
    return buf;
}

/* A table of functions reads as --help does (cli.c): the summaries in one column, at least two
 * spaces after the signatures, a signature too long for the column alone on its line and its
 * summary on the next, at the column. The column is as wide as the longest signature that fits
 * (so a table of short ones stays narrow), but never past SIG_COLUMN. */
#define SIG_COLUMN 32

int registry_column(const struct cq_function *const *v, int n)
{
    int col = 0, i;

    for (i = 0; i < n; i++) {
        char sig[2200];
        int w = (int)strlen(registry_signature(v[i], sig, sizeof sig)) + 2;
        if (w <= SIG_COLUMN && w > col) col = w;
    }
    return col > 0 ? col : SIG_COLUMN;
}

void registry_lead(FILE *f, int col, const char *sig)
{
    int w = (int)strlen(sig);

    if (w + 2 > col)
        fprintf(f, "%s\n%*s", sig, col, "");
    else
        fprintf(f, "%-*s", col, sig);
}

void registry_print(const struct cq_registry *r, FILE *f)
{
    int col = registry_column((const struct cq_function *const *)r->v, r->n), i;

    for (i = 0; i < r->n; i++) {
        const struct cq_function *e = r->v[i];
        char sig[2200];
        registry_lead(f, col, registry_signature(e, sig, sizeof sig));
        fprintf(f, "%s%s(retries %d", e->summary, e->summary[0] ? " " : "", e->retries);
        if (e->timeout > 0) fprintf(f, ", timeout %gs", e->timeout);
        if (strcmp(e->source, "builtin") != 0) fprintf(f, "; %s", e->source); /* "program", ... */
        fprintf(f, ")\n");
    }
}

void cq_registry_print(const cq_registry *reg, FILE *f)
{
    registry_print(reg, f);
}

/* ---- built-in functions -------------------------------------------------------------- */

static int fn_noop(cq_job *job, void *udata)
{
    (void)job;
    (void)udata;
    return 0;
}

/* Sleeps in short slices so that a job timeout or a worker's hard stop ends it promptly. The
 * clock is read in microseconds and each slice rounded up, so the job never sleeps less than it
 * was asked (a millisecond clock let 250ms end after 249.0). */
static int fn_sleep(cq_job *job, void *udata)
{
    double secs, deadline = cq_job_deadline(job);
    long long end;

    (void)udata;
    if (cq_job_arg_duration(job, 0, &secs) != 0)
        return cq_job_fail(job, CQ_PERMANENT, 0,
                           "sleep: seconds must be a number or a duration like 1.5s");
    /* The duration type's range (the check took it): any duration a producer could enqueue. */
    if (!isfinite(secs) || secs < 0 || secs > DURATION_MAX)
        return cq_job_fail(job, CQ_PERMANENT, 0, "sleep: %g seconds is out of range (0-%.0f)", secs,
                           DURATION_MAX);
    end = time_mono_us() + (long long)ceil(secs * 1e6);
    for (;;) {
        long long left = end - time_mono_us();
        if (left <= 0) break;
        if (deadline > 0 && time_now() >= deadline)
            return cq_job_fail(job, CQ_TRANSIENT, 0, "sleep: job timed out after %.3gs",
                               job->timeout);
        if (cq_job_stopping(job))
            return cq_job_fail(job, CQ_TRANSIENT, 0, "sleep: interrupted by worker shutdown");
        sleep_ms(left < 20000 ? (long)((left + 999) / 1000) : 20);
    }
    {
        char buf[64];
        snprintf(buf, sizeof buf, "slept %gs", secs);
        cq_job_result(job, buf);
    }
    return 0;
}

int registry_add_builtins(struct cq_registry *r)
{
    const char *saved = r->source;
    cq_function *f;

    r->source = "builtin";
    f = cq_function_add(r, "noop", "[ARG:any...]", fn_noop, NULL);
    if (f == NULL) goto fail;
    cq_function_set_summary(f, "do nothing (for tests and benchmarks)");
    f = cq_function_add(r, "sleep", "SECONDS:duration", fn_sleep, NULL);
    if (f == NULL) goto fail;
    cq_function_set_summary(f, "sleep SECONDS (e.g. 2 or 250ms)");
    r->source = saved;
    return 0;
fail:
    r->source = saved;
    return -1;
}
