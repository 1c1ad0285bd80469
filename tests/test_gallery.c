/* test_gallery.c - the pure part of common/gallery.c on the recorded Imgur responses in
 * tests/fixtures/imgur/: which links the filters keep, de-duplication, album handling, the
 * one-line explanations of error bodies, the URLs and the option checks. No network: the
 * fetching side is exercised end to end by test_cproducer.sh against fake_imgur.py.
 *
 * Usage: test_gallery [SOURCE_DIR] (default: the CQ_SOURCE_DIR compile definition).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gallery.h"
#include "util.h"

#ifndef CQ_SOURCE_DIR
#define CQ_SOURCE_DIR "."
#endif

#include "check.h"

static const char *srcdir = CQ_SOURCE_DIR;

/* The fixture file name (under tests/fixtures/imgur/) as a malloc'ed string; exits when it
 * cannot be read, since every later check would fail for the same reason. */
static char *load(const char *name, size_t *len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/tests/fixtures/imgur/%s", srcdir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0) break;
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = xrealloc(buf, cap + 1);
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

/* One entry of errors.json, printed back to a string (the caller frees it). */
static char *error_body(const char *entry)
{
    char *all = load("errors.json", NULL);
    cJSON *root = cJSON_Parse(all);
    free(all);
    cJSON *e = cJSON_GetObjectItemCaseSensitive(root, entry);
    char *s = e ? cJSON_PrintUnformatted(e) : NULL;
    cJSON_Delete(root);
    if (!s) {
        fprintf(stderr, "errors.json has no %s\n", entry);
        exit(1);
    }
    return s;
}

static struct gallery_filter filter(const char *types, int expand)
{
    struct gallery_filter f;
    char err[256];
    if (gallery_filter_init(&f, types, expand, err, sizeof err) != 0) {
        fprintf(stderr, "filter %s: %s\n", types ? types : "(lesson)", err);
        exit(1);
    }
    return f;
}

/* Parse a fixture file with a filter; returns the number of links kept. */
static long links_of(const char *file, const char *types)
{
    size_t len;
    char *body = load(file, &len);
    struct gallery_filter f = filter(types, 0);
    struct gallery_links l;
    char err[256];
    gallery_links_init(&l);
    long n = gallery_parse(body, len, 200, &f, &l, NULL, NULL, err, sizeof err);
    CHECK_EQ(n, 60);
    long kept = (long)l.n;
    gallery_links_free(&l);
    free(body);
    return kept;
}

static void test_lesson_rule(void)
{
    size_t len;
    char *body = load("gallery_hot_viral_2015.json", &len);
    struct gallery_filter f = filter(NULL, 0);
    struct gallery_links l;
    struct gallery_stats st;
    char err[256] = "";
    memset(&st, 0, sizeof st);
    gallery_links_init(&l);

    CHECK_EQ(gallery_parse(body, len, 200, &f, &l, NULL, &st, err, sizeof err), 60);
    CHECK_EQ(l.n, 16);
    for (size_t i = 0; i < l.n; i++) {
        size_t n = strlen(l.v[i]);
        CHECK(n > 4 && strcmp(l.v[i] + n - 4, ".jpg") == 0);
        CHECK(strncmp(l.v[i], "http://i.imgur.com/", 19) == 0);
    }
    CHECK_STREQ(l.v[0], "http://i.imgur.com/GK8NXFa.jpg"); /* the first jpeg listed */
    CHECK_EQ(st.items, 60);
    CHECK_EQ(st.albums, 22);
    CHECK_EQ(st.kept, 16);
    CHECK_EQ(st.filtered, 22 + 15 + 7);
    CHECK_EQ(st.duplicates, 0);
    CHECK_EQ(st.skipped, 0);

    /* The same page again (an API that repeats itself) adds nothing. */
    CHECK_EQ(gallery_parse(body, len, 200, &f, &l, NULL, &st, err, sizeof err), 60);
    CHECK_EQ(l.n, 16);
    CHECK_EQ(st.duplicates, 16);
    gallery_links_free(&l);
    free(body);

    /* The random page has 34 jpegs and none in common with the hot one. */
    CHECK_EQ(links_of("gallery_random_2015.json", NULL), 34);
}

static void test_types(void)
{
    CHECK_EQ(links_of("gallery_hot_viral_2015.json", "image/jpeg"), 16);
    CHECK_EQ(links_of("gallery_hot_viral_2015.json", "image/jpeg,image/png"), 16 + 7);
    CHECK_EQ(links_of("gallery_hot_viral_2015.json", "image/gif"), 15);
    CHECK_EQ(links_of("gallery_hot_viral_2015.json", "image/*"), 16 + 15 + 7);
    CHECK_EQ(links_of("gallery_hot_viral_2015.json", " IMAGE/PNG , image/webp"), 7);
    CHECK_EQ(links_of("gallery_hot_viral_2015.json", "video/mp4"), 0);
}

static void test_filter_errors(void)
{
    struct gallery_filter f;
    char err[256];
    const char *bad[] = {"",     "image/jpeg,", ",image/png", "jpeg",     "image/",
                         "/png", "image/jp eg", "a/b/c",      "image/*x", "*/*x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK_EQ(gallery_filter_init(&f, bad[i], 0, err, sizeof err), -1);
        CHECK_HAS(err, "--types");
    }
    char many[1024];
    size_t used = 0;
    for (int i = 0; i <= GALLERY_TYPES_MAX; i++)
        used += (size_t)snprintf(many + used, sizeof many - used, "%simage/png", i ? "," : "");
    CHECK_EQ(gallery_filter_init(&f, many, 0, err, sizeof err), -1);
    CHECK_EQ(gallery_filter_init(&f, "image/jpeg", 1, err, sizeof err), 0);
    CHECK_EQ(f.ntypes, 1);
    CHECK_EQ(f.expand_albums, 1);
    CHECK_EQ(gallery_filter_init(&f, NULL, 0, err, sizeof err), 0);
    CHECK_EQ(f.ntypes, 0);
}

static void test_pages_union(void)
{
    size_t l1, l2;
    char *hot = load("gallery_hot_viral_2015.json", &l1);
    char *rnd = load("gallery_random_2015.json", &l2);
    struct gallery_filter f = filter(NULL, 0);
    struct gallery_links l;
    char err[256];
    gallery_links_init(&l);
    CHECK_EQ(gallery_parse(hot, l1, 200, &f, &l, NULL, NULL, err, sizeof err), 60);
    CHECK_EQ(gallery_parse(rnd, l2, 200, &f, &l, NULL, NULL, err, sizeof err), 60);
    CHECK_EQ(l.n, 16 + 34);
    CHECK_STREQ(l.v[0], "http://i.imgur.com/GK8NXFa.jpg");
    CHECK_STREQ(l.v[16], "http://i.imgur.com/6jPQg1l.jpg"); /* first of the second page */
    CHECK_EQ(gallery_parse(hot, l1, 200, &f, &l, NULL, NULL, err, sizeof err), 60);
    CHECK_EQ(l.n, 16 + 34);
    gallery_links_free(&l);
    free(hot);
    free(rnd);
}

static void test_albums_to_fetch(void)
{
    size_t len;
    char *body = load("gallery_hot_viral_2015.json", &len);
    struct gallery_filter drop = filter(NULL, 0), expand = filter(NULL, 1);
    struct gallery_links l, albums;
    struct gallery_stats st;
    char err[256];
    gallery_links_init(&l);
    gallery_links_init(&albums);

    /* Dropped: nothing to fetch. */
    CHECK_EQ(gallery_parse(body, len, 200, &drop, &l, &albums, NULL, err, sizeof err), 60);
    CHECK_EQ(l.n, 16);
    CHECK_EQ(albums.n, 0);
    gallery_links_free(&l);

    /* Expanded: these albums carry no images[], so all 22 must be fetched, in order. */
    memset(&st, 0, sizeof st);
    CHECK_EQ(gallery_parse(body, len, 200, &expand, &l, &albums, &st, err, sizeof err), 60);
    CHECK_EQ(l.n, 16);
    CHECK_EQ(albums.n, 22);
    CHECK_STREQ(albums.v[0], "tmg2y");
    CHECK_STREQ(albums.v[1], "0oiM1");
    CHECK_EQ(st.albums, 22);
    CHECK_EQ(st.filtered, 15 + 7);
    gallery_links_free(&l);
    gallery_links_free(&albums);
    free(body);
}

/* The hot page with every album given the album fixture's images[] (50 images, 46 jpeg)
 * and images_count set to count. */
static char *hot_with_inline_albums(int count)
{
    char *hot = load("gallery_hot_viral_2015.json", NULL);
    char *alb = load("gallery_album_2020.json", NULL);
    cJSON *page = cJSON_Parse(hot), *album = cJSON_Parse(alb);
    free(hot);
    free(alb);
    const cJSON *images =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(album, "data"), "images");
    cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(page, "data"))
    {
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "is_album"))) continue;
        cJSON_DeleteItemFromObjectCaseSensitive(item, "images_count");
        cJSON_AddNumberToObject(item, "images_count", count);
        cJSON_AddItemToObject(item, "images", cJSON_Duplicate(images, 1));
    }
    char *s = cJSON_PrintUnformatted(page);
    cJSON_Delete(page);
    cJSON_Delete(album);
    return s;
}

static void test_albums_inline(void)
{
    struct gallery_filter lesson = filter(NULL, 1), jp = filter("image/jpeg,image/png", 1);
    struct gallery_filter drop = filter(NULL, 0);
    struct gallery_links l, albums;
    struct gallery_stats st;
    char err[256];
    char *body = hot_with_inline_albums(50);
    gallery_links_init(&l);
    gallery_links_init(&albums);

    /* Complete images[]: expanded in place, nothing left to fetch; the 22 albums share the
     * same 50 images, so each link is kept once. */
    memset(&st, 0, sizeof st);
    CHECK_EQ(gallery_parse(body, strlen(body), 200, &lesson, &l, &albums, &st, err, sizeof err),
             60);
    CHECK_EQ(l.n, 16 + 46);
    CHECK_EQ(albums.n, 0);
    CHECK_EQ(st.duplicates, 21 * 46);
    /* In gallery order: the first item is an album, so its first jpeg comes first. */
    CHECK_STREQ(l.v[0], "https://i.imgur.com/1REuHNL.jpg");
    CHECK_STREQ(l.v[46], "http://i.imgur.com/GK8NXFa.jpg");
    gallery_links_free(&l);

    CHECK_EQ(gallery_parse(body, strlen(body), 200, &jp, &l, &albums, NULL, err, sizeof err), 60);
    CHECK_EQ(l.n, 16 + 7 + 50);
    gallery_links_free(&l);

    /* Dropped albums stay dropped even with images[]. */
    CHECK_EQ(gallery_parse(body, strlen(body), 200, &drop, &l, &albums, NULL, err, sizeof err), 60);
    CHECK_EQ(l.n, 16);
    gallery_links_free(&l);
    free(body);

    /* A preview (images_count larger than images[]) would lose images: fetch instead. */
    body = hot_with_inline_albums(51);
    CHECK_EQ(gallery_parse(body, strlen(body), 200, &lesson, &l, &albums, NULL, err, sizeof err),
             60);
    CHECK_EQ(l.n, 16);
    CHECK_EQ(albums.n, 22);
    gallery_links_free(&l);
    gallery_links_free(&albums);
    free(body);
}

/* /album/{id}/images answers {"data": [images...]}: the same parser reads it. */
static void test_album_images_response(void)
{
    char *alb = load("gallery_album_2020.json", NULL);
    cJSON *album = cJSON_Parse(alb);
    free(alb);
    cJSON *resp = cJSON_CreateObject();
    cJSON_AddItemToObject(
        resp, "data",
        cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(album, "data"), "images"),
                        1));
    cJSON_AddTrueToObject(resp, "success");
    cJSON_AddNumberToObject(resp, "status", 200);
    char *body = cJSON_PrintUnformatted(resp);
    cJSON_Delete(resp);
    cJSON_Delete(album);

    struct gallery_filter lesson = filter(NULL, 1), jp = filter("image/jpeg,image/png", 0);
    struct gallery_links l;
    char err[256];
    gallery_links_init(&l);
    CHECK_EQ(gallery_parse(body, strlen(body), 200, &lesson, &l, NULL, NULL, err, sizeof err), 50);
    CHECK_EQ(l.n, 46);
    CHECK_STREQ(l.v[0], "https://i.imgur.com/1REuHNL.jpg");
    gallery_links_free(&l);
    CHECK_EQ(gallery_parse(body, strlen(body), 200, &jp, &l, NULL, NULL, err, sizeof err), 50);
    CHECK_EQ(l.n, 50);
    gallery_links_free(&l);
    free(body);
}

struct err_case {
    const char *body; /* NULL: use entry of errors.json */
    const char *entry;
    long status;
    const char *want; /* the whole error line */
};

static void test_errors(void)
{
    static const struct err_case cases[] = {
        {NULL, "invalid_client_id_403", 403,
         "imgur: HTTP 403: Invalid client_id; check IMGUR_CLIENT_ID"},
        {NULL, "over_capacity_403", 403,
         "imgur: HTTP 403: Imgur is temporarily over capacity. Please try again later."},
        {NULL, "invalid_access_token_403", 403,
         "imgur: HTTP 403: The access token provided is invalid."},
        {NULL, "too_many_requests_429_new_style", 429, "imgur: HTTP 429: Too Many Requests"},
        {NULL, "too_many_requests_429_fixture", 429, "imgur: HTTP 429: Too Many Requests"},
        {"{\"data\":{\"error\":\"Too Many Requests\",\"request\":\"/3/gallery/\","
         "\"method\":\"GET\"},\"success\":false,\"status\":429}",
         NULL, 429, "imgur: HTTP 429: Too Many Requests"},
        {NULL, "internal_error_500_fixture", 500, "imgur: HTTP 500: Could not complete request"},
        {"<html><body>Bad gateway</body></html>", NULL, 502,
         "imgur: HTTP 502: Bad Gateway (response is not JSON)"},
        {"", NULL, 401, "imgur: HTTP 401: Unauthorized (response is not JSON)"},
        {"{\"data\":{},\"success\":false,\"status\":418}", NULL, 418,
         "imgur: HTTP 418: unexpected response"},
        {"<html><body><h1>Imgur</h1></body></html>", NULL, 200,
         "imgur: HTTP 200: response is not JSON"},
        {"", NULL, 200, "imgur: HTTP 200: response is not JSON"},
        {"{\"data\": [1, 2", NULL, 200, "imgur: HTTP 200: response is not JSON"},
        {"{}", NULL, 200, "imgur: HTTP 200: no data array"},
        {"[]", NULL, 200, "imgur: HTTP 200: no data array"},
        {"{\"success\":true,\"status\":200,\"items\":[]}", NULL, 200,
         "imgur: HTTP 200: no data array"},
        {"{\"data\":{\"id\":\"x\"},\"success\":true}", NULL, 200, "imgur: HTTP 200: no data array"},
        {"{\"data\":{\"error\":\"Invalid client_id\"},\"success\":false,\"status\":403}", NULL, 200,
         "imgur: HTTP 200: Invalid client_id"},
        {"{\"data\":[],\"success\":false}", NULL, 200,
         "imgur: HTTP 200: the API answered success: false"},
        /* Imgur's text is quoted on one line, whatever it holds. */
        {"{\"data\":{\"error\":\"line one\\nline two\\r\\u001b[31m\"}}", NULL, 400,
         "imgur: HTTP 400: line one line two  [31m"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct err_case *c = &cases[i];
        char *owned = c->entry ? error_body(c->entry) : NULL;
        const char *body = owned ? owned : c->body;
        struct gallery_filter f = filter(NULL, 1);
        struct gallery_links l, albums;
        char err[512] = "";
        gallery_links_init(&l);
        gallery_links_init(&albums);
        CHECK_EQ(
            gallery_parse(body, strlen(body), c->status, &f, &l, &albums, NULL, err, sizeof err),
            -1);
        CHECK_STREQ(err, c->want);
        CHECK(strchr(err, '\n') == NULL);
        CHECK_EQ(l.n, 0);
        gallery_links_free(&l);
        gallery_links_free(&albums);
        free(owned);
    }

    /* A very long error text is cut, not dumped. */
    char body[4096];
    char text[3000];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    snprintf(body, sizeof body, "{\"data\":{\"error\":\"%s\"}}", text);
    char err[4096];
    struct gallery_filter f = filter(NULL, 0);
    struct gallery_links l;
    gallery_links_init(&l);
    CHECK_EQ(gallery_parse(body, strlen(body), 403, &f, &l, NULL, NULL, err, sizeof err), -1);
    CHECK(strlen(err) < 300);

    /* An empty data array is the end of the gallery, not an error. */
    const char *empty = "{\"data\":[],\"success\":true,\"status\":200}";
    CHECK_EQ(gallery_parse(empty, strlen(empty), 200, &f, &l, NULL, NULL, err, sizeof err), 0);
    gallery_links_free(&l);
}

static void test_malformed_items(void)
{
    const char *body =
        "{\"data\":[1, \"x\", null, {}, {\"link\": 5},"
        " {\"link\":\"ftp://a/b.jpg\"}, {\"link\":\"javascript:alert(1)//.jpg\"},"
        " {\"link\":\"http://a/b c.jpg\"}, {\"link\":\"http://a/\\u0001.jpg\"},"
        " {\"is_album\":true,\"id\":\"../../x\"}, {\"is_album\":true},"
        " {\"is_album\":true,\"id\":\"ok1\",\"images\":[7, {\"link\":\"http://h/in.jpg\"}],"
        "  \"images_count\":2},"
        " {\"link\":\"http://h/a.JPG\"}, {\"link\":\"http://h/a.jpg?x=1\"},"
        " {\"link\":\"HTTPS://h/ok.jpg\"}, {\"link\":\"http://h/ok2.jpg\",\"type\":5}],"
        " \"success\":true}";
    struct gallery_filter f = filter(NULL, 1);
    struct gallery_links l, albums;
    struct gallery_stats st;
    char err[256];
    memset(&st, 0, sizeof st);
    gallery_links_init(&l);
    gallery_links_init(&albums);
    CHECK_EQ(gallery_parse(body, strlen(body), 200, &f, &l, &albums, &st, err, sizeof err), 16);
    CHECK_EQ(l.n, 3);
    CHECK_STREQ(l.v[0], "http://h/in.jpg");
    CHECK_STREQ(l.v[1], "HTTPS://h/ok.jpg");
    CHECK_STREQ(l.v[2], "http://h/ok2.jpg");
    CHECK_EQ(albums.n, 0);
    /* 1, "x", null, {}, link 5, ftp, javascript, space, control, ../../x, no id, 7 */
    CHECK_EQ(st.skipped, 12);
    CHECK_EQ(st.filtered, 2); /* .JPG and ?x=1: the lesson's rule is exact */
    gallery_links_free(&l);
    gallery_links_free(&albums);

    /* Links that are not UTF-8 text (a raw 0xff, Latin-1, a surrogate, a cut character):
     * malformed, where they were kept and failed cproducer's whole enqueue. A link of UTF-8
     * text with a character beyond ASCII is kept, as libcurl takes it. */
    const char *bytes =
        "{\"data\":[{\"link\":\"http://h/\xffz.jpg\"}, {\"link\":\"http://h/caf\xe9.jpg\"},"
        " {\"link\":\"http://h/\xed\xa0\x80.jpg\"}, {\"link\":\"http://h/a\xc3.jpg\"},"
        " {\"link\":\"http://h/caf\xc3\xa9.jpg\"}, {\"link\":\"http://h/ok.jpg\"}],"
        " \"success\":true}";
    memset(&st, 0, sizeof st);
    gallery_links_init(&l);
    CHECK_EQ(gallery_parse(bytes, strlen(bytes), 200, &f, &l, NULL, &st, err, sizeof err), 6);
    CHECK_EQ(l.n, 2);
    if (l.n == 2) {
        CHECK_STREQ(l.v[0], "http://h/caf\xc3\xa9.jpg");
        CHECK_STREQ(l.v[1], "http://h/ok.jpg");
    }
    CHECK_EQ(st.skipped, 4);
    CHECK_EQ(st.kept, 2);
    gallery_links_free(&l);

    /* With types, an item without a string type is not wanted. */
    struct gallery_filter t = filter("image/jpeg", 0);
    gallery_links_init(&l);
    CHECK_EQ(gallery_parse(body, strlen(body), 200, &t, &l, NULL, NULL, err, sizeof err), 16);
    CHECK_EQ(l.n, 0);
    gallery_links_free(&l);
}

static void test_links_set(void)
{
    struct gallery_links l;
    char s[64];
    gallery_links_init(&l);
    CHECK(!gallery_links_has(&l, "a"));
    for (int i = 0; i < 20000; i++) {
        snprintf(s, sizeof s, "http://h/%d.jpg", i);
        CHECK_EQ(gallery_links_add(&l, s), 1);
    }
    for (int i = 19999; i >= 0; i -= 7) {
        snprintf(s, sizeof s, "http://h/%d.jpg", i);
        CHECK_EQ(gallery_links_add(&l, s), 0);
        CHECK(gallery_links_has(&l, s));
    }
    CHECK(!gallery_links_has(&l, "http://h/20000.jpg"));
    CHECK_EQ(l.n, 20000);
    CHECK_STREQ(l.v[0], "http://h/0.jpg");
    CHECK_STREQ(l.v[12345], "http://h/12345.jpg");
    gallery_links_free(&l);
    CHECK_EQ(l.n, 0);
    CHECK_EQ(gallery_links_add(&l, "again"), 1); /* reusable after free */
    gallery_links_free(&l);
    gallery_links_free(NULL);
}

static void test_urls(void)
{
    struct gallery_opts o;
    char buf[GALLERY_URL_MAX];
    gallery_opts_default(&o);
    o.client_id = "x";

    /* No gallery options: the bare base, as the lesson asks. */
    CHECK_STREQ(gallery_page_url(&o, 0, buf, sizeof buf), "https://api.imgur.com/3/gallery/");
    o.pages = 2;
    CHECK_STREQ(gallery_page_url(&o, 0, buf, sizeof buf),
                "https://api.imgur.com/3/gallery/hot/viral/0");
    CHECK_STREQ(gallery_page_url(&o, 1, buf, sizeof buf),
                "https://api.imgur.com/3/gallery/hot/viral/1");
    o.pages = 1;
    o.section = "top";
    CHECK_STREQ(gallery_page_url(&o, 0, buf, sizeof buf),
                "https://api.imgur.com/3/gallery/top/viral/day/0");
    o.sort = "time";
    o.window = "week";
    CHECK_STREQ(gallery_page_url(&o, 3, buf, sizeof buf),
                "https://api.imgur.com/3/gallery/top/time/week/3");
    o.section = "user";
    o.window = NULL;
    o.sort = NULL;
    o.api_url = "http://127.0.0.1:8080/3/gallery"; /* no trailing slash */
    CHECK_STREQ(gallery_page_url(&o, 2, buf, sizeof buf),
                "http://127.0.0.1:8080/3/gallery/user/viral/2");
    o.section = NULL;
    CHECK_STREQ(gallery_page_url(&o, 0, buf, sizeof buf), "http://127.0.0.1:8080/3/gallery/");
    char tiny[10];
    CHECK(gallery_page_url(&o, 0, tiny, sizeof tiny) == NULL);

    CHECK_STREQ(gallery_api_root("https://api.imgur.com/3/gallery/", buf, sizeof buf),
                "https://api.imgur.com/3/");
    CHECK_STREQ(gallery_api_root("http://h:1/x/gallery", buf, sizeof buf), "http://h:1/x/");
    CHECK(gallery_api_root("http://h/3/", buf, sizeof buf) == NULL);
    CHECK(gallery_api_root("http://h/mygallery/", buf, sizeof buf) == NULL);
    CHECK(gallery_api_root("gallery/", buf, sizeof buf) == NULL);
}

static void test_opts_check(void)
{
    struct gallery_opts o;
    char err[512];
    gallery_opts_default(&o);
    CHECK_EQ(gallery_opts_check(&o, err, sizeof err), -1);
    CHECK_HAS(err, "IMGUR_CLIENT_ID");
    o.client_id = "";
    CHECK_EQ(gallery_opts_check(&o, err, sizeof err), -1);
    CHECK_HAS(err, "IMGUR_CLIENT_ID");
    o.client_id = "abc def";
    CHECK_EQ(gallery_opts_check(&o, err, sizeof err), -1);
    CHECK_HAS(err, "IMGUR_CLIENT_ID");
    o.client_id = "abc\r\nX-Evil: 1";
    CHECK_EQ(gallery_opts_check(&o, err, sizeof err), -1);
    o.client_id = "0123456789abcde";
    CHECK_EQ(gallery_opts_check(&o, err, sizeof err), 0);

    o.section = "cold";
    CHECK_EQ(gallery_opts_check(&o, err, sizeof err), -1);
    CHECK_STREQ(err, "--section: \"cold\" is not one of hot|top|user");
    o.section = "top";
    o.sort = "best";
    CHECK_EQ(gallery_opts_check(&o, err, sizeof err), -1);
    CHECK_HAS(err, "--sort");
    o.sort = "rising";
    o.window = "hour";
    CHECK_EQ(gallery_opts_check(&o, err, sizeof err), -1);
    CHECK_HAS(err, "--window");
    o.window = "all";
    CHECK_EQ(gallery_opts_check(&o, err, sizeof err), 0);
    o.pages = 0;
    CHECK_EQ(gallery_opts_check(&o, err, sizeof err), -1);
    CHECK_HAS(err, "--pages");
    o.pages = 1;
    o.page = -1;
    CHECK_EQ(gallery_opts_check(&o, err, sizeof err), -1);
    CHECK_HAS(err, "--page");
    o.page = 0;

    o.api_url = "ftp://example.com/3/gallery/";
    CHECK_EQ(gallery_opts_check(&o, err, sizeof err), -1);
    CHECK_HAS(err, "--api-url");
    o.api_url = "http://127.0.0.1:1/mirror/";
    CHECK_EQ(gallery_opts_check(&o, err, sizeof err), 0); /* fine until albums are expanded */
    o.filter.expand_albums = 1;
    CHECK_EQ(gallery_opts_check(&o, err, sizeof err), -1);
    CHECK_HAS(err, "/gallery/");
    o.api_url = "http://127.0.0.1:1/mirror/3/gallery/";
    CHECK_EQ(gallery_opts_check(&o, err, sizeof err), 0);
}

int main(int argc, char **argv)
{
    if (argc > 1) srcdir = argv[1];
    test_lesson_rule();
    test_types();
    test_filter_errors();
    test_pages_union();
    test_albums_to_fetch();
    test_albums_inline();
    test_album_images_response();
    test_errors();
    test_malformed_items();
    test_links_set();
    test_urls();
    test_opts_check();
    return check_report();
}
