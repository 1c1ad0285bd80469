/* rss_floor.c - the resident-set floor of a program that uses Debian's libcurl as cworker
 * does: it links libcurl, calls curl_global_init(CURL_GLOBAL_DEFAULT) (as cworker does) and
 * makes one easy handle, then prints its VmRSS, RssAnon and RssFile in KiB at each step:
 *   "start R A F", "global_init R A F", "easy_init R A F".
 *
 *   rss_floor URL N   then also downloads URL N times at once, the least a program needs for
 *                     N transfers in flight: one thread, one multi handle, N easy handles
 *                     with libcurl's defaults (its 16 KB receive buffer each), the bodies
 *                     dropped. It prints the largest of each seen while they ran (polled
 *                     between calls of curl_multi_poll, at most 2 ms apart):
 *   "downloads_N R A F", then "ok K": how many of the N ended with a 200 (the floor counts
 *   only when all did). It exits 0 either way, so that the steps above are kept; 2 for a
 *   bad N, 1 when libcurl could not start.
 * bench/bench.py builds it in its temp dir (cc rss_floor.c -lcurl) for the memory section. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

struct rss {
    long rss, anon, file;
};

static struct rss now(void)
{
    char line[256];
    struct rss r = {-1, -1, -1};
    FILE *f = fopen("/proc/self/status", "r");

    if (f == NULL) return r;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            sscanf(line + 6, "%ld", &r.rss);
        else if (strncmp(line, "RssAnon:", 8) == 0)
            sscanf(line + 8, "%ld", &r.anon);
        else if (strncmp(line, "RssFile:", 8) == 0)
            sscanf(line + 8, "%ld", &r.file);
    }
    fclose(f);
    return r;
}

static void show(const char *what, struct rss r)
{
    printf("%s %ld %ld %ld\n", what, r.rss, r.anon, r.file);
}

static size_t drop(char *p, size_t size, size_t n, void *data)
{
    (void)p;
    (void)data;
    return size * n;
}

static void peak(struct rss *top)
{
    struct rss r = now();

    if (r.rss > top->rss) top->rss = r.rss;
    if (r.anon > top->anon) top->anon = r.anon;
    if (r.file > top->file) top->file = r.file;
}

/* N transfers of url on one multi handle; 0 when every one ended with a 200, else -1. */
static int downloads(const char *url, int n)
{
    CURLM *m = curl_multi_init();
    CURL **h = calloc((size_t)n, sizeof *h);
    struct rss top = {-1, -1, -1};
    int i, running = 1, ok = 0;
    char label[32];

    if (m == NULL || h == NULL) return -1;
    for (i = 0; i < n; i++) {
        h[i] = curl_easy_init();
        if (h[i] == NULL) return -1;
        curl_easy_setopt(h[i], CURLOPT_URL, url);
        curl_easy_setopt(h[i], CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, drop);
        curl_multi_add_handle(m, h[i]);
    }
    while (running) {
        if (curl_multi_perform(m, &running) != CURLM_OK) break;
        peak(&top);
        if (running && curl_multi_poll(m, NULL, 0, 2, NULL) != CURLM_OK) break;
    }
    for (i = 0; i < n; i++) {
        long code = 0;
        curl_easy_getinfo(h[i], CURLINFO_RESPONSE_CODE, &code);
        ok += code == 200;
        curl_multi_remove_handle(m, h[i]);
        curl_easy_cleanup(h[i]);
    }
    free(h);
    curl_multi_cleanup(m);
    snprintf(label, sizeof label, "downloads_%d", n);
    show(label, top);
    printf("ok %d\n", ok);
    return ok == n ? 0 : -1;
}

int main(int argc, char **argv)
{
    CURL *h;
    long n = 0;
    char *end = NULL;

    if (argc == 3) {
        n = strtol(argv[2], &end, 10);
        if (end == argv[2] || *end != '\0' || n < 1 || n > 10000) {
            fprintf(stderr, "rss_floor: N must be 1 to 10000, not '%s'\n", argv[2]);
            return 2;
        }
    }

    show("start", now());
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
    show("global_init", now());
    h = curl_easy_init();
    if (h == NULL) return 1;
    show("easy_init", now());
    curl_easy_cleanup(h);
    if (n > 0 && downloads(argv[1], (int)n) < 0)
        fprintf(stderr, "rss_floor: not every download ended with a 200\n");
    curl_global_cleanup();
    return 0;
}
