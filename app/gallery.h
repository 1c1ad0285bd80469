/* gallery.h - the Imgur gallery client: which links a run should download.
 *
 * This is the lesson's get_links() made robust, shared by cproducer (which enqueues one
 * download_link job per link) and by its local modes (which download the links themselves).
 *
 * It is split in two so that the interesting part can be tested without a network:
 *   - gallery_parse() is pure: one response body and its HTTP status in, links (and the ids
 *     of albums that still have to be fetched) out, or a one-line explanation of what is
 *     wrong with the response ("imgur: HTTP 403: Invalid client_id").
 *   - gallery_get_links() does the I/O: it builds each page URL, GETs it with the client id,
 *     honours rate limits (bounded waits, bounded attempts), expands albums and hands back
 *     the de-duplicated links in the order they were found.
 *
 * Which items become links (struct gallery_filter):
 *   - by default exactly the lesson's rule: the item's link ends in ".jpg" (case matters, as
 *     in the lesson), so albums, GIFs and PNGs fall away;
 *   - with types, an image whose "type" is one of the given MIME types (an entry made of a
 *     type, a slash and a star, as on the command line "image/<star>", takes every subtype);
 *   - album items are dropped, or with expand_albums replaced by their images (the filter
 *     applies to those as well): from the item's own images[] when it holds the whole album
 *     (images_count not larger than images[]), else from GET <api root>/album/<id>/images,
 *     where <api root> is the gallery base URL with its trailing "gallery/" removed
 *     (https://api.imgur.com/3/gallery/ -> https://api.imgur.com/3/). Images of fetched albums
 *     come after the images of the gallery pages.
 *
 * Nothing here prints or exits: progress and warnings go to the caller's notify callback, the
 * rate-limit credits are reported back in struct gallery_credits.
 */
#ifndef CQ_GALLERY_H
#define CQ_GALLERY_H

#include <stddef.h>
#include "http.h"
#include "util.h"

#define GALLERY_DEFAULT_API_URL "https://api.imgur.com/3/gallery/"
#define GALLERY_URL_MAX         2048 /* longer API URLs and links are refused / skipped */
#define GALLERY_TYPES_MAX       16
#define GALLERY_TYPE_MAX        128
#define GALLERY_CLIENT_ID_MAX   128

/* ---- filter -------------------------------------------------------------------------- */

struct gallery_filter {
    int ntypes;                                      /* 0 = the lesson's ".jpg" rule */
    char types[GALLERY_TYPES_MAX][GALLERY_TYPE_MAX]; /* lower-case MIME types */
    int expand_albums;                               /* 0 = drop album items */
};

/* types is a comma-separated list such as "image/jpeg,image/png" or NULL for the lesson's
 * rule. Returns 0, or -1 with err naming the bad entry. */
int gallery_filter_init(struct gallery_filter *f, const char *types, int expand_albums, char *err,
                        size_t errlen);

/* ---- an ordered set of strings ------------------------------------------------------- */

/* Appending a string that is already present does nothing, so the first occurrence keeps its
 * place. v[0..n-1] are owned by the set. */
struct gallery_links {
    char **v;
    size_t n, cap;
    size_t *slots; /* open-addressing index into v (index + 1; 0 = empty) */
    size_t nslots; /* a power of two, or 0 before the first add */
};

void gallery_links_init(struct gallery_links *l);

/* Returns 1 when s was added, 0 when it was already there. */
int gallery_links_add(struct gallery_links *l, const char *s);

/* 1 when s is in the set. */
int gallery_links_has(const struct gallery_links *l, const char *s);

/* Frees the strings and the arrays; the set is empty (and reusable) afterwards. */
void gallery_links_free(struct gallery_links *l);

/* ---- parsing (pure) ------------------------------------------------------------------ */

/* Counters of one run, summed over every response parsed. */
struct gallery_stats {
    long requests;       /* API requests sent, retries included */
    long pages;          /* gallery pages parsed */
    long items;          /* data items seen (gallery items and album images) */
    long albums;         /* album items seen */
    long albums_fetched; /* albums whose images were fetched with an extra request */
    long kept;           /* links added */
    long duplicates;     /* links that were already there */
    long filtered;       /* images the filter did not want, albums dropped */
    long skipped; /* malformed items: no link, not http(s), not UTF-8, too long, bad album id */
};

/* Parse one API response whose data is an array of gallery items or of images (a gallery
 * page, or /album/{id}/images). Links that pass f are added to links; album items that must
 * be fetched (expand_albums without a complete images[]) have their id added to albums
 * (which may be NULL to drop them). st may be NULL.
 *
 * Returns the number of data items (0 means an empty page: there are no more), or -1 with
 * err set to one line: "imgur: HTTP <status>: <what>", quoting Imgur's own error text when
 * the body has one (data.error, or errors[0].detail of the newer 429 body), else saying
 * "response is not JSON" or "no data array". */
long gallery_parse(const char *body, size_t len, long status, const struct gallery_filter *f,
                   struct gallery_links *links, struct gallery_links *albums,
                   struct gallery_stats *st, char *err, size_t errlen);

/* ---- fetching ------------------------------------------------------------------------ */

/* Rate-limit credits from the X-RateLimit-* headers of the last response; -1 (0 for
 * user_reset) when a header was never seen. */
struct gallery_credits {
    long client_limit, client_remaining;
    long user_limit, user_remaining;
    long long user_reset; /* Unix time the user credits come back */
};

/* Called for things a user may want to hear about. level is a log.h level (CQ_LOG_WARN for
 * rate-limit waits and retries, CQ_LOG_INFO for each request and the credits, CQ_LOG_DEBUG for
 * details); line is one line without a newline, valid only during the call. */
typedef void (*gallery_notify_fn)(void *arg, int level, const char *line);

struct gallery_opts {
    const char *api_url;   /* gallery base URL; NULL = GALLERY_DEFAULT_API_URL. A
                                * missing trailing '/' is added. */
    const char *client_id; /* sent as "Authorization: Client-ID <id>"; required */
    const char *section;   /* hot|top|user; NULL = hot */
    const char *sort;      /* viral|top|time|rising; NULL = viral */
    const char *window;    /* day|week|month|year|all; NULL = day for top, else omitted */
    long page;             /* first page, from 0 */
    long pages;            /* pages to fetch, >= 1; fewer when a page comes back empty */
    struct gallery_filter filter;
    double max_wait;  /* seconds the whole run may spend waiting on rate limits and
                                * retries; a wait that would exceed it fails the run at once */
    int max_attempts; /* tries per request (429, 5xx, transient transfer errors) */
    struct http_limits limits;
    const stop_flag *stop;    /* when set, waits end and the run fails "interrupted" */
    gallery_notify_fn notify; /* may be NULL */
    void *notify_arg;
    void (*sleep_ms_fn)(long ms); /* the clock seam for tests; NULL = util.h sleep_ms */
};

/* Defaults: default API URL, section/sort/window NULL, page 0, pages 1, the lesson's filter,
 * max_wait 60 s, max_attempts 5, http_limits_default with a 16 MiB body cap. client_id is
 * NULL and must be set. */
void gallery_opts_default(struct gallery_opts *o);

/* Check the options a user can get wrong (section, sort, window, page, pages, api_url,
 * client_id). Returns 0, or -1 with err naming the option and the allowed values. */
int gallery_opts_check(const struct gallery_opts *o, char *err, size_t errlen);

/* The URL of page number `page`. With every one of section, sort and window NULL and a
 * single page 0 requested this is the bare base URL (what the lesson asks for, the API's
 * default list); otherwise <base><section>/<sort>/[<window>/]<page>. Returns buf, or NULL
 * when it does not fit. */
const char *gallery_page_url(const struct gallery_opts *o, long page, char *buf, size_t len);

/* The API root that album URLs hang off: base with its trailing "gallery/" removed. Returns
 * buf, or NULL when base does not end in "gallery/" (or "gallery"). */
const char *gallery_api_root(const char *base, char *buf, size_t len);

/* The get_links step: fetch the pages, expand albums, filter and de-duplicate. On success
 * returns 0 with the links appended to out (an initialised set; the caller frees it). On
 * failure returns -1 with err set to one line; out then holds whatever was found before the
 * failure. credits and st may be NULL; when given they are filled even on failure. */
int gallery_get_links(struct http *h, const struct gallery_opts *o, struct gallery_links *out,
                      struct gallery_credits *credits, struct gallery_stats *st, char *err,
                      size_t errlen);

#endif
