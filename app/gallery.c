/* gallery.c - the Imgur gallery client; see gallery.h for what it promises.
 *
 * DESIGN. A run is: pages first (stopping at the first empty one), then the albums that
 * have to be fetched, each request through fetch(), which owns every retry decision:
 *   - 429 and 5xx (except 501) are retried after Retry-After when the server sent one, else
 *     until X-RateLimit-UserReset when the user credits are used up, else after an
 *     exponential backoff (1 s, 2 s, 4 s ... 30 s); transient transfer errors likewise;
 *   - a response that says the credits are used up (X-RateLimit-*Remaining: 0) with a reset
 *     time makes the *next* request wait for that reset instead of burning an attempt;
 *   - every wait comes out of one budget for the run (max_wait) and every request has at
 *     most max_attempts tries, so a cron job never hangs on a throttled API: a wait that
 *     would pass the budget fails the run at once, saying how long the API asked for.
 * Everything else (2xx, 4xx) goes to gallery_parse(), which turns it into links or into a
 * one-line explanation; the body is never dumped.
 */
#include "gallery.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "util.h"

#define BACKOFF_MAX_S 30.0
#define TEXT_MAX      200 /* Imgur's error text is quoted up to this many bytes */
#define ALBUM_ID_MAX  32

static const char *const sections[] = {"hot", "top", "user", NULL};
static const char *const sorts[] = {"viral", "top", "time", "rising", NULL};
static const char *const windows[] = {"day", "week", "month", "year", "all", NULL};

static int one_of(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i]; i++) {
        if (strcmp(s, list[i]) == 0) return 1;
    }
    return 0;
}

static void list_join(const char *const *list, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; list[i] && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? "|" : "", list[i]);
        if (n < 0) break;
        used += (size_t)n;
    }
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* 1 when s has no spaces, control bytes or DEL: a client id with one could split the
 * Authorization header, and no real one contains one. (Links are checked by libcurl's URL
 * parser: http_url_parse.) */
static int is_clean(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f) return 0;
    }
    return 1;
}

/* ---- filter -------------------------------------------------------------------------- */

static int mime_char(int c)
{
    return isalnum(c) || strchr("!#$&-^_.+", c) != NULL;
}

/* A MIME type "type/subtype", or "type/" followed by a star for every subtype. */
static int valid_mime(const char *t)
{
    const char *slash = strchr(t, '/');
    if (!slash || slash == t || slash[1] == '\0' || strchr(slash + 1, '/')) return 0;
    for (const char *p = t; p < slash; p++) {
        if (!mime_char((unsigned char)*p)) return 0;
    }
    if (strcmp(slash + 1, "*") == 0) return 1;
    for (const char *p = slash + 1; *p; p++) {
        if (!mime_char((unsigned char)*p)) return 0;
    }
    return 1;
}

int gallery_filter_init(struct gallery_filter *f, const char *types, int expand_albums, char *err,
                        size_t errlen)
{
    memset(f, 0, sizeof *f);
    f->expand_albums = expand_albums ? 1 : 0;
    if (!types) return 0;
    const char *p = types;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n > 0 && isspace((unsigned char)*p)) {
            p++;
            n--;
        }
        while (n > 0 && isspace((unsigned char)p[n - 1])) n--;
        if (n == 0) {
            err_set(err, errlen, "--types: empty entry in \"%s\"", types);
            return -1;
        }
        if (n >= GALLERY_TYPE_MAX) {
            err_set(err, errlen, "--types: \"%.*s...\" is too long", 40, p);
            return -1;
        }
        if (f->ntypes == GALLERY_TYPES_MAX) {
            err_set(err, errlen, "--types: more than %d types", GALLERY_TYPES_MAX);
            return -1;
        }
        char *t = f->types[f->ntypes];
        for (size_t i = 0; i < n; i++) t[i] = (char)tolower((unsigned char)p[i]);
        t[n] = '\0';
        if (!valid_mime(t)) {
            err_set(err, errlen, "--types: \"%s\" is not a MIME type such as image/jpeg", t);
            return -1;
        }
        f->ntypes++;
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

static int type_wanted(const struct gallery_filter *f, const char *type)
{
    for (int i = 0; i < f->ntypes; i++) {
        const char *t = f->types[i];
        size_t n = strlen(t);
        if (n >= 2 && strcmp(t + n - 2, "/*") == 0) {
            if (strncasecmp(type, t, n - 1) == 0) return 1;
        } else if (strcasecmp(type, t) == 0) {
            return 1;
        }
    }
    return 0;
}

/* ---- ordered set --------------------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

/* The slot holding s, or the empty slot where it would go. nslots must be non-zero. */
static size_t find_slot(const struct gallery_links *l, const char *s)
{
    size_t mask = l->nslots - 1;
    size_t i = (size_t)hash_str(s) & mask;
    while (l->slots[i] != 0 && strcmp(l->v[l->slots[i] - 1], s) != 0) i = (i + 1) & mask;
    return i;
}

static void rehash(struct gallery_links *l, size_t nslots)
{
    free(l->slots);
    l->slots = xcalloc(nslots, sizeof *l->slots);
    l->nslots = nslots;
    for (size_t k = 0; k < l->n; k++) l->slots[find_slot(l, l->v[k])] = k + 1;
}

void gallery_links_init(struct gallery_links *l)
{
    memset(l, 0, sizeof *l);
}

int gallery_links_has(const struct gallery_links *l, const char *s)
{
    if (l->nslots == 0) return 0;
    return l->slots[find_slot(l, s)] != 0;
}

int gallery_links_add(struct gallery_links *l, const char *s)
{
    if (gallery_links_has(l, s)) return 0;
    /* Keep the table at most half full so that probes stay short. */
    if ((l->n + 1) * 2 > l->nslots) rehash(l, l->nslots ? l->nslots * 2 : 64);
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n] = xstrdup(s);
    l->slots[find_slot(l, s)] = l->n + 1;
    l->n++;
    return 1;
}

void gallery_links_free(struct gallery_links *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    free(l->slots);
    gallery_links_init(l);
}

/* ---- parsing ------------------------------------------------------------------------- */

static const char *reason(long status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "unexpected response";
    }
}

/* Copy Imgur's text into buf as one short line: its bodies are not ours to trust, so control
 * bytes become spaces and the length is capped. */
static void quote_text(const char *s, char *buf, size_t len)
{
    size_t j = 0;
    for (size_t i = 0; s[i] && j + 1 < len && j < TEXT_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[j++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    buf[j] = '\0';
}

static const char *get_string(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Imgur's own words for an error: data.error (a string, or an object with a message) in the
 * classic envelope, errors[0].detail (or .status) in the newer 429 body. */
static const char *error_text(const cJSON *root)
{
    if (!cJSON_IsObject(root)) return NULL;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (cJSON_IsObject(data)) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(data, "error");
        if (cJSON_IsString(e) && e->valuestring[0]) return e->valuestring;
        if (cJSON_IsObject(e)) {
            const char *m = get_string(e, "message");
            if (m && m[0]) return m;
        }
    }
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(root, "errors");
    const cJSON *first = cJSON_IsArray(errors) ? cJSON_GetArrayItem(errors, 0) : NULL;
    if (cJSON_IsObject(first)) {
        const char *d = get_string(first, "detail");
        if (d && d[0]) return d;
        d = get_string(first, "status");
        if (d && d[0]) return d;
    }
    const char *e = get_string(root, "error");
    if (e && e[0]) return e;
    return NULL;
}

/* The one-line explanation of a response that carries no usable data. what is used when
 * Imgur gave no text of its own. */
static void explain(const cJSON *root, long status, const char *what, char *err, size_t errlen)
{
    const char *text = error_text(root);
    if (text) {
        char q[TEXT_MAX + 1];
        quote_text(text, q, sizeof q);
        /* The usual cause of a 401/403 naming the client is a wrong IMGUR_CLIENT_ID. */
        int hint = (status == 401 || status == 403) && strcasestr(q, "client") != NULL;
        err_set(err, errlen, "imgur: HTTP %ld: %s%s", status, q,
                hint ? "; check IMGUR_CLIENT_ID" : "");
    } else if (what) {
        err_set(err, errlen, "imgur: HTTP %ld: %s", status, what);
    } else if (!root) {
        err_set(err, errlen, "imgur: HTTP %ld: %s (response is not JSON)", status, reason(status));
    } else {
        err_set(err, errlen, "imgur: HTTP %ld: %s", status, reason(status));
    }
}

static void count(long *counter)
{
    (*counter)++;
}

static void add_image(const cJSON *item, const struct gallery_filter *f,
                      struct gallery_links *links, struct gallery_stats *st)
{
    const char *link = get_string(item, "link");
    if (!link) {
        count(&st->skipped);
        return;
    }
    if (f->ntypes == 0) {
        /* The lesson's rule, exactly: keep links that end in ".jpg". */
        if (!ends_with(link, ".jpg")) {
            count(&st->filtered);
            return;
        }
    } else {
        const char *type = get_string(item, "type");
        if (!type || !type_wanted(f, type)) {
            count(&st->filtered);
            return;
        }
    }
    /* A link that is not UTF-8 text could not be enqueued (a job's args are JSON strings):
     * one such link is one link left out, not the whole run failed. */
    if (strlen(link) >= GALLERY_URL_MAX || !utf8_text(link) ||
        http_url_parse(link, NULL, NULL, 0) != 0) {
        count(&st->skipped);
        return;
    }
    if (gallery_links_add(links, link))
        count(&st->kept);
    else
        count(&st->duplicates);
}

/* Album ids go into an URL path, so only what Imgur uses is accepted. */
static int valid_album_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > ALBUM_ID_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)id[i])) return 0;
    }
    return 1;
}

static void add_item(const cJSON *item, const struct gallery_filter *f, struct gallery_links *links,
                     struct gallery_links *albums, struct gallery_stats *st)
{
    count(&st->items);
    if (!cJSON_IsObject(item)) {
        count(&st->skipped);
        return;
    }
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "is_album"))) {
        add_image(item, f, links, st);
        return;
    }
    count(&st->albums);
    if (!f->expand_albums) {
        count(&st->filtered);
        return;
    }
    /* images[] is only a preview unless it holds images_count images; a partial one would
     * silently lose images, so such an album is fetched like one without images[]. */
    const cJSON *images = cJSON_GetObjectItemCaseSensitive(item, "images");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(item, "images_count");
    if (cJSON_IsArray(images) &&
        (!cJSON_IsNumber(n) || n->valuedouble <= (double)cJSON_GetArraySize(images))) {
        const cJSON *im;
        cJSON_ArrayForEach(im, images)
        {
            count(&st->items);
            if (cJSON_IsObject(im))
                add_image(im, f, links, st);
            else
                count(&st->skipped);
        }
        return;
    }
    const char *id = get_string(item, "id");
    if (!id || !valid_album_id(id)) {
        count(&st->skipped);
        return;
    }
    if (albums)
        gallery_links_add(albums, id);
    else
        count(&st->filtered);
}

long gallery_parse(const char *body, size_t len, long status, const struct gallery_filter *f,
                   struct gallery_links *links, struct gallery_links *albums,
                   struct gallery_stats *st, char *err, size_t errlen)
{
    struct gallery_stats scratch;
    if (!st) {
        memset(&scratch, 0, sizeof scratch);
        st = &scratch;
    }
    cJSON *root = (body && len > 0) ? cJSON_ParseWithLength(body, len) : NULL;
    long ret = -1;

    if (status < 200 || status > 299) {
        explain(root, status, NULL, err, errlen);
        goto out;
    }
    if (!root) {
        err_set(err, errlen, "imgur: HTTP %ld: response is not JSON", status);
        goto out;
    }
    if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(root, "success"))) {
        explain(root, status, "the API answered success: false", err, errlen);
        goto out;
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (!cJSON_IsArray(data)) {
        explain(root, status, "no data array", err, errlen);
        goto out;
    }
    ret = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, data)
    {
        add_item(item, f, links, albums, st);
        ret++;
    }
out:
    cJSON_Delete(root);
    return ret;
}

/* ---- options and URLs ---------------------------------------------------------------- */

void gallery_opts_default(struct gallery_opts *o)
{
    memset(o, 0, sizeof *o);
    o->api_url = GALLERY_DEFAULT_API_URL;
    o->page = 0;
    o->pages = 1;
    o->max_wait = 60.0;
    o->max_attempts = 5;
    http_limits_default(&o->limits);
    o->limits.max_bytes = 16LL * 1024 * 1024;
}

static const char *base_url(const struct gallery_opts *o)
{
    return o->api_url ? o->api_url : GALLERY_DEFAULT_API_URL;
}

int gallery_opts_check(const struct gallery_opts *o, char *err, size_t errlen)
{
    char allowed[128], why[600];
    const char *base = base_url(o);

    if (!o->client_id || !o->client_id[0]) {
        err_set(err, errlen,
                "IMGUR_CLIENT_ID is not set: register an application at "
                "https://api.imgur.com/oauth2/addclient and export its client id");
        return -1;
    }
    if (strlen(o->client_id) > GALLERY_CLIENT_ID_MAX || !is_clean(o->client_id)) {
        err_set(err, errlen,
                "IMGUR_CLIENT_ID must be at most %d characters without spaces "
                "or control characters",
                GALLERY_CLIENT_ID_MAX);
        return -1;
    }
    if (base[0] == '\0') {
        err_set(err, errlen,
                "--api-url: empty; give an http(s) URL, or leave it out for "
                "$IMGUR_API_URL, else " GALLERY_DEFAULT_API_URL);
        return -1;
    }
    if (strlen(base) > GALLERY_URL_MAX / 2) {
        err_set(err, errlen, "--api-url: \"%.100s...\" is longer than %d characters", base,
                GALLERY_URL_MAX / 2);
        return -1;
    }
    if (http_url_parse(base, NULL, why, sizeof why) != 0) {
        /* why names the URL and what is wrong with it (a port of 70000, a scheme) */
        err_set(err, errlen, "--api-url: %s", why);
        return -1;
    }
    if (o->filter.expand_albums) {
        char root[GALLERY_URL_MAX];
        if (!gallery_api_root(base, root, sizeof root)) {
            err_set(err, errlen,
                    "--api-url: \"%.100s\" does not end in /gallery/, so the "
                    "album URLs for --albums expand cannot be derived from it",
                    base);
            return -1;
        }
    }
    if (o->section && !one_of(o->section, sections)) {
        list_join(sections, allowed, sizeof allowed);
        err_set(err, errlen, "--section: \"%.40s\" is not one of %s", o->section, allowed);
        return -1;
    }
    if (o->sort && !one_of(o->sort, sorts)) {
        list_join(sorts, allowed, sizeof allowed);
        err_set(err, errlen, "--sort: \"%.40s\" is not one of %s", o->sort, allowed);
        return -1;
    }
    if (o->window && !one_of(o->window, windows)) {
        list_join(windows, allowed, sizeof allowed);
        err_set(err, errlen, "--window: \"%.40s\" is not one of %s", o->window, allowed);
        return -1;
    }
    if (o->page < 0 || o->page > 1000000) {
        err_set(err, errlen, "--page: %ld is not in 0..1000000", o->page);
        return -1;
    }
    if (o->pages < 1 || o->pages > 1000) {
        err_set(err, errlen, "--pages: %ld is not in 1..1000", o->pages);
        return -1;
    }
    if (!(o->max_wait >= 0 && o->max_wait <= 86400)) {
        err_set(err, errlen, "--max-wait: must be 0..86400 seconds");
        return -1;
    }
    if (o->max_attempts < 1 || o->max_attempts > 100) {
        err_set(err, errlen, "max_attempts %d is not in 1..100", o->max_attempts);
        return -1;
    }
    return 0;
}

const char *gallery_page_url(const struct gallery_opts *o, long page, char *buf, size_t len)
{
    const char *base = base_url(o);
    const char *slash = ends_with(base, "/") ? "" : "/";
    int n;
    if (!o->section && !o->sort && !o->window && o->page == 0 && o->pages == 1 && page == 0) {
        n = snprintf(buf, len, "%s%s", base, slash);
    } else {
        const char *section = o->section ? o->section : "hot";
        const char *sort = o->sort ? o->sort : "viral";
        /* The API only reads a window for top; a given one is passed on all the same. */
        const char *window = o->window;
        if (!window && strcmp(section, "top") == 0) window = "day";
        n = snprintf(buf, len, "%s%s%s/%s/%s%s%ld", base, slash, section, sort,
                     window ? window : "", window ? "/" : "", page);
    }
    if (n < 0 || (size_t)n >= len) return NULL;
    return buf;
}

const char *gallery_api_root(const char *base, char *buf, size_t len)
{
    size_t n = strlen(base);
    if (n > 0 && base[n - 1] == '/') n--;
    if (n < 8 || memcmp(base + n - 7, "gallery", 7) != 0 || base[n - 8] != '/') return NULL;
    n -= 7;
    if (n >= len) return NULL;
    memcpy(buf, base, n);
    buf[n] = '\0';
    return buf;
}

/* ---- fetching ------------------------------------------------------------------------ */

struct run {
    struct http *h;
    const struct gallery_opts *o;
    struct gallery_credits *cr;
    struct gallery_stats *st;
    const char *headers[2];
    char auth[GALLERY_CLIENT_ID_MAX + 32];
    double waited;      /* seconds of the max_wait budget used so far */
    double pause_until; /* Unix time before which the next request should not go; 0 = none */
};

static void say(struct run *r, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(struct run *r, int level, const char *fmt, ...)
{
    if (!r->o->notify) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->o->notify(r->o->notify_arg, level, line);
}

static int stopped(const struct run *r)
{
    return stop_requested(r->o->stop);
}

/* Check that seconds more of waiting fit in the run's budget. why explains the failure the
 * wait is for; it becomes the error (with the numbers) when the wait cannot be afforded. */
static int afford(const struct run *r, double seconds, const char *why, char *err, size_t errlen)
{
    double left = r->o->max_wait - r->waited;
    if (seconds > left + 1e-9) {
        err_set(err, errlen, "%s (retrying needs a wait of %.0fs; --max-wait leaves %.0fs)", why,
                ceil(seconds), left > 0 ? floor(left) : 0.0);
        return -1;
    }
    return 0;
}

/* Wait out of the budget, in short naps so that a stop is noticed within 100 ms. */
static int wait_for(struct run *r, double seconds, const char *why, char *err, size_t errlen)
{
    if (seconds <= 0) return 0;
    if (afford(r, seconds, why, err, errlen) != 0) return -1;
    void (*nap)(long) = r->o->sleep_ms_fn ? r->o->sleep_ms_fn : sleep_ms;
    long ms = (long)ceil(seconds * 1000.0);
    while (ms > 0) {
        if (stopped(r)) {
            err_set(err, errlen, "imgur: interrupted");
            return -1;
        }
        long step = ms < 100 ? ms : 100;
        nap(step);
        ms -= step;
    }
    r->waited += seconds;
    return 0;
}

static void read_credit(const struct http_result *res, const char *name, long *out)
{
    char buf[64];
    long v;
    if (http_header(res, name, buf, sizeof buf) && parse_long(buf, 0, LONG_MAX, &v) == 0) *out = v;
}

static void update_credits(struct run *r, const struct http_result *res)
{
    long reset = -1;
    read_credit(res, "X-RateLimit-ClientLimit", &r->cr->client_limit);
    read_credit(res, "X-RateLimit-ClientRemaining", &r->cr->client_remaining);
    read_credit(res, "X-RateLimit-UserLimit", &r->cr->user_limit);
    read_credit(res, "X-RateLimit-UserRemaining", &r->cr->user_remaining);
    read_credit(res, "X-RateLimit-UserReset", &reset);
    if (reset >= 0) r->cr->user_reset = reset;
}

static double backoff(int attempt)
{
    double s = 1.0;
    for (int i = 1; i < attempt && s < BACKOFF_MAX_S; i++) s *= 2;
    return s < BACKOFF_MAX_S ? s : BACKOFF_MAX_S;
}

/* How long to wait before retrying a throttled or failed request. */
static double retry_delay(const struct run *r, const struct http_result *res, int attempt)
{
    if (res && res->retry_after > 0) return res->retry_after;
    double now = time_now();
    if (r->cr->user_remaining == 0 && (double)r->cr->user_reset > now)
        return (double)r->cr->user_reset - now;
    return backoff(attempt);
}

static int retryable(long status)
{
    return status == 429 || (status >= 500 && status <= 599 && status != 501);
}

/* GET url with the client id, retrying as the DESIGN comment says. On success *body (the
 * caller frees it), *len and *status describe a response that is neither a 429 nor a 5xx. */
static int fetch(struct run *r, const char *url, char **body, size_t *len, long *status, char *err,
                 size_t errlen)
{
    const struct gallery_opts *o = r->o;
    for (int attempt = 1;; attempt++) {
        if (stopped(r)) {
            err_set(err, errlen, "imgur: interrupted");
            return -1;
        }
        if (r->pause_until > 0) {
            double d = r->pause_until - time_now();
            r->pause_until = 0;
            if (d > 0) {
                if (afford(r, d, "imgur: rate-limit credits used up", err, errlen) != 0) return -1;
                say(r, CQ_LOG_WARN,
                    "imgur: rate-limit credits used up; waiting %.0fs for "
                    "X-RateLimit-UserReset",
                    ceil(d));
                if (wait_for(r, d, "imgur: rate-limit credits used up", err, errlen) != 0)
                    return -1;
            }
        }

        struct http_result res;
        memset(&res, 0, sizeof res);
        char *b = NULL;
        size_t n = 0;
        char why[512], herr[400];
        double delay;
        r->st->requests++;
        say(r, CQ_LOG_INFO, "GET %s", url);
        herr[0] = '\0';
        if (http_get(r->h, url, r->headers, &o->limits, &b, &n, &res, herr, sizeof herr) != 0) {
            snprintf(why, sizeof why, "imgur: %s", herr);
            int transient = res.transient;
            delay = retry_delay(r, &res, attempt);
            http_result_free(&res);
            free(b);
            if (!transient || attempt >= o->max_attempts) {
                if (attempt > 1)
                    err_set(err, errlen, "%s (after %d attempts)", why, attempt);
                else
                    err_set(err, errlen, "%s", why);
                return -1;
            }
        } else {
            update_credits(r, &res);
            say(r, CQ_LOG_DEBUG,
                "HTTP %ld, %zu bytes; credits: client %ld/%ld, user %ld/%ld, "
                "user reset %lld",
                res.status, n, r->cr->client_remaining, r->cr->client_limit, r->cr->user_remaining,
                r->cr->user_limit, r->cr->user_reset);
            if (!retryable(res.status)) {
                /* Used-up credits will throttle the next request: wait for the reset
                 * before it rather than spend an attempt on a certain 429. */
                if ((r->cr->user_remaining == 0 || r->cr->client_remaining == 0) &&
                    (double)r->cr->user_reset > time_now())
                    r->pause_until = (double)r->cr->user_reset;
                *body = b;
                *len = n;
                *status = res.status;
                http_result_free(&res);
                return 0;
            }
            cJSON *root = n > 0 ? cJSON_ParseWithLength(b, n) : NULL;
            explain(root, res.status, NULL, why, sizeof why);
            cJSON_Delete(root);
            delay = retry_delay(r, &res, attempt);
            http_result_free(&res);
            free(b);
            if (attempt >= o->max_attempts) {
                err_set(err, errlen, "%s (gave up after %d attempts)", why, attempt);
                return -1;
            }
        }
        if (afford(r, delay, why, err, errlen) != 0) return -1;
        say(r, CQ_LOG_WARN, "%s; retrying in %.1fs (attempt %d of %d)", why, delay, attempt + 1,
            o->max_attempts);
        if (wait_for(r, delay, why, err, errlen) != 0) return -1;
    }
}

/* Fetch one URL and parse it into the run's sets. Returns the number of data items or -1;
 * *status is the HTTP status of the last response (0 when none arrived). */
static long fetch_parse(struct run *r, const char *url, struct gallery_links *links,
                        struct gallery_links *albums, long *status, char *err, size_t errlen)
{
    char *body = NULL;
    size_t len = 0;
    *status = 0;
    if (fetch(r, url, &body, &len, status, err, errlen) != 0) return -1;
    long n = gallery_parse(body, len, *status, &r->o->filter, links, albums, r->st, err, errlen);
    free(body);
    return n;
}

static int fetch_albums(struct run *r, const struct gallery_links *albums,
                        struct gallery_links *out, char *err, size_t errlen)
{
    char root[GALLERY_URL_MAX], url[GALLERY_URL_MAX];
    if (albums->n == 0) return 0;
    if (!gallery_api_root(base_url(r->o), root, sizeof root)) {
        err_set(err, errlen, "--api-url: cannot derive the album URLs from \"%.100s\"",
                base_url(r->o));
        return -1;
    }
    for (size_t i = 0; i < albums->n; i++) {
        int n = snprintf(url, sizeof url, "%salbum/%s/images", root, albums->v[i]);
        if (n < 0 || (size_t)n >= sizeof url) {
            err_set(err, errlen, "imgur: album URL too long");
            return -1;
        }
        char aerr[512];
        long status;
        r->st->albums_fetched++;
        if (fetch_parse(r, url, out, NULL, &status, aerr, sizeof aerr) < 0) {
            /* An album deleted since the gallery was listed should not sink the run. */
            if (status == 404) {
                say(r, CQ_LOG_WARN, "album %s skipped: %s", albums->v[i], aerr);
                continue;
            }
            err_set(err, errlen, "%s (album %s)", aerr, albums->v[i]);
            return -1;
        }
    }
    return 0;
}

int gallery_get_links(struct http *h, const struct gallery_opts *o, struct gallery_links *out,
                      struct gallery_credits *credits, struct gallery_stats *st, char *err,
                      size_t errlen)
{
    struct gallery_credits cr_local;
    struct gallery_stats st_local;
    struct run r;
    char url[GALLERY_URL_MAX];
    struct gallery_links albums;
    int rc = -1;

    if (!credits) credits = &cr_local;
    if (!st) st = &st_local;
    credits->client_limit = credits->client_remaining = -1;
    credits->user_limit = credits->user_remaining = -1;
    credits->user_reset = 0;
    memset(st, 0, sizeof *st);
    if (gallery_opts_check(o, err, errlen) != 0) return -1;

    memset(&r, 0, sizeof r);
    r.h = h;
    r.o = o;
    r.cr = credits;
    r.st = st;
    snprintf(r.auth, sizeof r.auth, "Authorization: Client-ID %s", o->client_id);
    r.headers[0] = r.auth;
    r.headers[1] = NULL;
    gallery_links_init(&albums);

    for (long p = o->page; p < o->page + o->pages; p++) {
        if (!gallery_page_url(o, p, url, sizeof url)) {
            err_set(err, errlen, "imgur: page URL too long");
            goto out;
        }
        long status;
        long n = fetch_parse(&r, url, out, &albums, &status, err, errlen);
        if (n < 0) goto out;
        st->pages++;
        if (n == 0) {
            say(&r, CQ_LOG_INFO, "page %ld is empty: no more pages", p);
            break;
        }
    }
    if (fetch_albums(&r, &albums, out, err, errlen) != 0) goto out;
    rc = 0;
out:
    gallery_links_free(&albums);
    return rc;
}
