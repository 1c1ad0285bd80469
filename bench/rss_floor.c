/* rss_floor.c - the resident-set floor of a program that uses Debian's libcurl as cworker
 * does: it links libcurl, calls curl_global_init(CURL_GLOBAL_DEFAULT) (as common/http.c) and
 * makes one easy handle, then prints its VmRSS, RssAnon and RssFile in KiB at each step:
 *   "start R A F", "global_init R A F", "easy_init R A F".
 * bench/bench.py builds it in its temp dir (cc rss_floor.c -lcurl) for the memory section. */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

static void show(const char *what)
{
    char line[256];
    long rss = -1, anon = -1, file = -1;
    FILE *f = fopen("/proc/self/status", "r");

    if (f == NULL) return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            sscanf(line + 6, "%ld", &rss);
        else if (strncmp(line, "RssAnon:", 8) == 0)
            sscanf(line + 8, "%ld", &anon);
        else if (strncmp(line, "RssFile:", 8) == 0)
            sscanf(line + 8, "%ld", &file);
    }
    fclose(f);
    printf("%s %ld %ld %ld\n", what, rss, anon, file);
}

int main(void)
{
    CURL *h;

    show("start");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
    show("global_init");
    h = curl_easy_init();
    if (h == NULL) return 1;
    show("easy_init");
    curl_easy_cleanup(h);
    curl_global_cleanup();
    return 0;
}
