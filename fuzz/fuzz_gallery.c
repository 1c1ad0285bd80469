/* fuzz_gallery.c - the gallery parser (app/gallery.c): gallery_parse on any response body,
 * with each of three filters (the lesson's ".jpg" rule; image/jpeg and image/png with albums
 * expanded and fetched; image/<any> with albums expanded but not fetched), then as an error
 * response (HTTP 403).
 *
 * What must hold:
 *   - an error is one line "imgur: HTTP <status>: ...", without control bytes (Imgur's text
 *     is quoted, not trusted);
 *   - every link kept is an http(s) URL without spaces or control bytes, shorter than
 *     GALLERY_URL_MAX, appears once, and passes the filter (the lesson's rule: ends in
 *     ".jpg"); every album id to fetch is 1-32 letters and digits;
 *   - the counters add up: one link per "kept", no more outcomes than items;
 *   - the same body parsed again into the same set adds nothing: what was kept is now a
 *     duplicate. */
#include <ctype.h>
#include <strings.h>

#include "fuzz.h"
#include "gallery.h"

#define FILTERS 3

static int is_clean(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f) return 0;
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void check_error(long status, const char *err)
{
    char head[64];

    snprintf(head, sizeof head, "imgur: HTTP %ld: ", status);
    FUZZ_CHECK(strncmp(err, head, strlen(head)) == 0 && !fuzz_has_ctl(err), "error line [%s]", err);
}

static void check_links(const struct gallery_links *l, const struct gallery_filter *f)
{
    char **sorted = malloc((l->n + 1) * sizeof *sorted);
    size_t i;

    if (sorted == NULL) abort();
    for (i = 0; i < l->n; i++) {
        const char *s = l->v[i];
        size_t n = strlen(s);

        FUZZ_CHECK(strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0,
                   "link [%s]", s);
        FUZZ_CHECK(is_clean(s) && n < GALLERY_URL_MAX, "link [%s]", s);
        FUZZ_CHECK(f->ntypes > 0 || (n >= 4 && strcmp(s + n - 4, ".jpg") == 0), "link [%s]", s);
        FUZZ_CHECK(gallery_links_has(l, s), "link [%s] not found in its set", s);
        sorted[i] = l->v[i];
    }
    qsort(sorted, l->n, sizeof *sorted, cmp_str);
    for (i = 1; i < l->n; i++)
        FUZZ_CHECK(strcmp(sorted[i - 1], sorted[i]) != 0, "link [%s] twice", sorted[i]);
    free(sorted);
}

static void check_albums(const struct gallery_links *a)
{
    for (size_t i = 0; i < a->n; i++) {
        size_t n = strlen(a->v[i]);

        FUZZ_CHECK(n >= 1 && n <= 32, "album id [%s]", a->v[i]);
        for (size_t k = 0; k < n; k++)
            FUZZ_CHECK(isalnum((unsigned char)a->v[i][k]), "album id [%s]", a->v[i]);
    }
}

static void parse_with(const uint8_t *data, size_t size, const struct gallery_filter *f,
                       int fetch_albums)
{
    struct gallery_links links, albums;
    struct gallery_stats st, st2;
    char err[512] = "";
    long n, n2;
    size_t kept;

    gallery_links_init(&links);
    gallery_links_init(&albums);
    memset(&st, 0, sizeof st);
    n = gallery_parse((const char *)data, size, 200, f, &links, fetch_albums ? &albums : NULL, &st,
                      err, sizeof err);
    if (n < 0) {
        FUZZ_CHECK(n == -1 && links.n == 0 && albums.n == 0, "failure %ld", n);
        check_error(200, err);
        gallery_links_free(&links);
        gallery_links_free(&albums);
        return;
    }
    FUZZ_CHECK(n <= st.items, "%ld data items, %ld counted", n, st.items);
    FUZZ_CHECK((long)links.n == st.kept, "%zu links, %ld kept", links.n, st.kept);
    FUZZ_CHECK(st.kept + st.duplicates + st.filtered + st.skipped <= st.items,
               "more outcomes than the %ld items", st.items);
    FUZZ_CHECK((long)albums.n <= st.albums, "%zu albums to fetch of %ld", albums.n, st.albums);
    check_links(&links, f);
    check_albums(&albums);

    kept = links.n;
    memset(&st2, 0, sizeof st2);
    n2 = gallery_parse((const char *)data, size, 200, f, &links, NULL, &st2, err, sizeof err);
    FUZZ_CHECK(n2 == n && links.n == kept && st2.kept == 0, "a second parse added links");
    FUZZ_CHECK(st2.duplicates == st.kept + st.duplicates, "%ld duplicates the second time",
               st2.duplicates);
    gallery_links_free(&links);
    gallery_links_free(&albums);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct gallery_filter filters[FILTERS];
    static int ready;
    struct gallery_links links;
    char err[512] = "";
    int i;

    if (!ready) {
        if (gallery_filter_init(&filters[0], NULL, 0, err, sizeof err) != 0 ||
            gallery_filter_init(&filters[1], "image/jpeg,image/png", 1, err, sizeof err) != 0 ||
            gallery_filter_init(&filters[2], "image/*", 1, err, sizeof err) != 0) {
            fprintf(stderr, "fuzz_gallery: %s\n", err);
            abort();
        }
        ready = 1;
    }
    for (i = 0; i < FILTERS; i++) parse_with(data, size, &filters[i], i == 1);

    gallery_links_init(&links);
    FUZZ_CHECK(gallery_parse((const char *)data, size, 403, &filters[0], &links, NULL, NULL, err,
                             sizeof err) == -1 &&
                   links.n == 0,
               "an HTTP 403 parsed as links");
    check_error(403, err);
    gallery_links_free(&links);
    return 0;
}
