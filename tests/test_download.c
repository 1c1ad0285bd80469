/* test_download.c - download_link, download_filename, download_open_dir and http.c against
 * a local test server (tests/fixtures/httpd.py), checked the way a user would check them:
 * the bytes on disk, the names in the directory, the error text and the retry hints.
 *
 * The fixture is started here with an ephemeral port (written to a port file in a private
 * mkdtemp directory) and stopped at exit; PR_SET_PDEATHSIG stops it too if this program
 * crashes. Usage: test_download [SOURCE_DIR] (default: the CQ_SOURCE_DIR compile definition).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "download.h"
#include "http.h"
#include "util.h"

#ifndef CQ_SOURCE_DIR
#define CQ_SOURCE_DIR "."
#endif

#include "check.h"

static char fixture[PATH_MAX];
static char tmpdir[] = "/tmp/cq-test-download-XXXXXX";
static char root[128];   /* small, so "<root>/<rel>" always fits a PATH_MAX buffer */
static pid_t server_pid = -1;
static int port;
static char base[64];

/* ---- the fixture server ---------------------------------------------------------------- */

static void stop_server(void)
{
    if (server_pid <= 0)
        return;
    kill(server_pid, SIGTERM);
    for (int i = 0; i < 300; i++) {
        if (waitpid(server_pid, NULL, WNOHANG) == server_pid) {
            server_pid = -1;
            return;
        }
        sleep_ms(10);
    }
    kill(server_pid, SIGKILL);
    waitpid(server_pid, NULL, 0);
    server_pid = -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void cleanup(void)
{
    stop_server();
    if (root[0] != '\0')
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int start_server(void)
{
    char portfile[PATH_MAX];

    snprintf(portfile, sizeof(portfile), "%s/port", tmpdir);
    server_pid = fork();
    if (server_pid < 0) {
        perror("fork");
        return -1;
    }
    if (server_pid == 0) {
        /* Do not outlive a crashed test. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execlp("python3", "python3", fixture, "--generate", "--port-file", portfile,
               (char *)NULL);
        perror("exec python3");
        _exit(127);
    }
    for (int i = 0; i < 1000; i++) {   /* 10 s */
        FILE *f = fopen(portfile, "r");

        if (f != NULL) {
            char line[32] = "";
            long v;
            char *nl;

            if (fgets(line, sizeof(line), f) == NULL)
                line[0] = '\0';
            fclose(f);
            nl = strchr(line, '\n');
            if (nl != NULL)
                *nl = '\0';
            if (parse_long(line, 1, 65535, &v) == 0) {
                port = (int)v;
                snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
                return 0;
            }
        }
        if (waitpid(server_pid, NULL, WNOHANG) == server_pid) {
            server_pid = -1;
            fprintf(stderr, "fixture %s exited before writing its port\n", fixture);
            return -1;
        }
        sleep_ms(10);
    }
    fprintf(stderr, "fixture %s wrote no port within 10 s\n", fixture);
    return -1;
}

/* ---- small helpers --------------------------------------------------------------------- */

static char *read_whole(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf = NULL;
    size_t n = 0, cap = 0;

    *len = 0;
    if (fd < 0)
        return NULL;
    for (;;) {
        ssize_t r;

        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            buf = xrealloc(buf, cap);
        }
        r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return buf;
}

/* The generate rule's bytes for name, from the fixture itself (--print-bytes). */
static char *expected_bytes(const char *name, long size, size_t *len)
{
    char out[PATH_MAX], sz[32];
    pid_t pid;
    int status;

    *len = 0;
    snprintf(out, sizeof(out), "%s/expected.bin", tmpdir);
    snprintf(sz, sizeof(sz), "%ld", size);
    pid = fork();
    if (pid < 0)
        return NULL;
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        if (fd < 0 || dup2(fd, 1) < 0)
            _exit(127);
        execlp("python3", "python3", fixture, "--print-bytes", name, "--size", sz,
               (char *)NULL);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return NULL;
    return read_whole(out, len);
}

/* 1 when <root>/<rel> holds exactly the generated bytes of name. */
static int file_matches(const char *rel, const char *name, long size)
{
    char path[PATH_MAX];
    size_t alen, elen;
    char *a, *e;
    int ok;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    a = read_whole(path, &alen);
    e = expected_bytes(name, size, &elen);
    ok = a != NULL && e != NULL && alen == elen && alen == (size_t)size &&
         memcmp(a, e, alen) == 0;
    free(a);
    free(e);
    return ok;
}

static int exists(const char *rel)
{
    char path[PATH_MAX];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    return lstat(path, &st) == 0;
}

static int not_dot(const struct dirent *d)
{
    return strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0;
}

/* The names in <root>/<rel>, sorted, joined with ','; this is what catches stray temp files. */
static void listing(const char *rel, char *out, size_t outlen)
{
    char path[PATH_MAX];
    struct dirent **ents;
    int n;
    size_t used = 0;

    out[0] = '\0';
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    n = scandir(path, &ents, not_dot, alphasort);
    if (n < 0) {
        str_copy(out, outlen, "<unreadable>");
        return;
    }
    for (int i = 0; i < n; i++) {
        int w = snprintf(out + used, outlen - used, "%s%s", i ? "," : "", ents[i]->d_name);

        if (w > 0 && (size_t)w < outlen - used)
            used += (size_t)w;
        free(ents[i]);
    }
    free(ents);
}

static void url_of(char *buf, size_t len, const char *path)
{
    snprintf(buf, len, "%s%s", base, path);
}

/* GET a fixture JSON endpoint on h and return the integer after "key": (or -1). */
static long fixture_number(struct http *h, const char *path, const char *key)
{
    char url[256], err[512], pat[256];
    struct http_limits lim;
    struct http_result res;
    char *body, *at;
    size_t len;
    long v = -1;

    http_limits_default(&lim);
    url_of(url, sizeof(url), path);
    if (http_get(h, url, NULL, &lim, &body, &len, &res, err, sizeof(err)) < 0) {
        fprintf(stderr, "fixture_number: %s\n", err);
        return -1;
    }
    snprintf(pat, sizeof(pat), "\"%s\": ", key);
    at = strstr(body, pat);
    if (at != NULL)
        v = strtol(at + strlen(pat), NULL, 10);
    else
        v = 0;
    free(body);
    http_result_free(&res);
    return v;
}

/* ---- the tests ------------------------------------------------------------------------- */

static void test_filename(void)
{
    char name[NAME_MAX + 1], err[512], url[600];
    char longname[300];

    CHECK(download_filename("https://h/a/b/c.jpg?x=1#frag", name, sizeof(name), err,
                            sizeof(err)) == 0);
    CHECK_STREQ(name, "c.jpg");
    CHECK(download_filename("https://h/x.jpg?a/b.png#c/d.gif", name, sizeof(name), err,
                            sizeof(err)) == 0);
    CHECK_STREQ(name, "x.jpg");
    CHECK(download_filename("HTTP://h:8080/dir/hello%20world%21.png", name, sizeof(name), err,
                            sizeof(err)) == 0);
    CHECK_STREQ(name, "hello world!.png");
    CHECK(download_filename("https://h/%C3%A9t%C3%A9.jpg", name, sizeof(name), err,
                            sizeof(err)) == 0);
    CHECK_STREQ(name, "\xc3\xa9t\xc3\xa9.jpg");

    /* Refused: no name, dot names, separators, control bytes, bad escapes, schemes. */
    const char *bad[] = {
        "https://h/", "https://h", "https://h?x=/y.jpg", "https://h/a/.", "https://h/a/..",
        "https://h/%2e%2E", "https://h/a%2Fb.jpg", "https://h/a%2fb.jpg", "https://h/a%5Cb.jpg",
        "https://h/a\\b.jpg", "https://h/a%00b.jpg", "https://h/a%0Ab.jpg", "https://h/a%7F.jpg",
        "https://h/bad%zz.jpg", "https://h/x%4", "ftp://h/x.jpg", "httpx://h/x.jpg",
        "//h/x.jpg", "x.jpg", "http:/h/x.jpg", "javascript:alert(1)//x.jpg",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (download_filename(bad[i], name, sizeof(name), err, sizeof(err)) == 0) {
            fprintf(stderr, "download_filename accepted %s as '%s'\n", bad[i], name);
            CHECK(!"bad link accepted");
        }
        CHECK_HAS(err, bad[i]);
    }
    CHECK(download_filename("file:///etc/passwd", name, sizeof(name), err, sizeof(err)) < 0);
    CHECK_STREQ(err, "download_filename: file:///etc/passwd: only http and https links are "
                     "allowed");
    CHECK(download_filename("https://h/a%2Fb.jpg", name, sizeof(name), err, sizeof(err)) < 0);
    CHECK_HAS(err, "'/'");

    /* A raw newline in a link is refused and never echoed into the (logged) message. */
    CHECK(download_filename("https://h/x.jpg\n2026-01-01 FAKE", name, sizeof(name), err,
                            sizeof(err)) < 0);
    CHECK(strchr(err, '\n') == NULL);
    CHECK_HAS(err, "https://h/x.jpg?2026-01-01 FAKE");

    /* NAME_MAX is the limit: 255 bytes pass, 256 do not. */
    memset(longname, 'a', 251);
    memcpy(longname + 251, ".jpg", 5);
    snprintf(url, sizeof(url), "https://h/%s", longname);
    CHECK(download_filename(url, name, sizeof(name), err, sizeof(err)) == 0);
    CHECK(strlen(name) == 255);
    memset(longname, 'a', 252);
    memcpy(longname + 252, ".jpg", 5);
    snprintf(url, sizeof(url), "https://h/%s", longname);
    CHECK(download_filename(url, name, sizeof(name), err, sizeof(err)) < 0);
    CHECK_HAS(err, "longer than 255");
}

static void test_open_dir(void)
{
    char err[512], path[PATH_MAX], list[512];
    int fd;

    fd = download_open_dir(root, "a/b/./c//d/", err, sizeof(err));
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    CHECK(exists("a/b/c/d"));
    fd = download_open_dir(root, "a/b", err, sizeof(err));   /* existing: just opened */
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);

    const char *escapes[] = { "../x", "/abs", "a/../../b", "a/..", "..", "/" };
    for (size_t i = 0; i < sizeof(escapes) / sizeof(escapes[0]); i++) {
        err[0] = '\0';
        fd = download_open_dir(root, escapes[i], err, sizeof(err));
        CHECK(fd < 0);
        if (fd >= 0)
            close(fd);
        CHECK_HAS(err, "escapes");
        CHECK_HAS(err, escapes[i]);
    }
    fd = download_open_dir(root, "", err, sizeof(err));
    CHECK(fd < 0);
    fd = download_open_dir(root, "x\ny", err, sizeof(err));
    CHECK(fd < 0);
    CHECK(strchr(err, '\n') == NULL);
    CHECK(!exists("x\ny"));

    /* A symlink inside root that leads out of it: neither the link nor a path through it. */
    snprintf(path, sizeof(path), "%s/out", root);
    CHECK(symlink(tmpdir, path) == 0);
    fd = download_open_dir(root, "out", err, sizeof(err));
    CHECK(fd < 0);
    CHECK_HAS(err, "escapes");
    CHECK_HAS(err, "symlink");
    fd = download_open_dir(root, "out/sub", err, sizeof(err));
    CHECK(fd < 0);
    CHECK_HAS(err, "escapes");
    snprintf(path, sizeof(path), "%s/sub", tmpdir);
    CHECK(access(path, F_OK) < 0);   /* nothing was created outside root */

    /* A regular file in the way is "not a directory", not an escape. */
    snprintf(path, sizeof(path), "%s/plain", root);
    fd = open(path, O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    fd = download_open_dir(root, "plain/x", err, sizeof(err));
    CHECK(fd < 0);
    CHECK_HAS(err, "not a directory");

    listing("", list, sizeof(list));
    CHECK_STREQ(list, "a,out,plain");
}

static void test_success_and_replace(struct http *h)
{
    struct http_limits lim;
    struct download_result res;
    char url[256], err[512], list[512], path[PATH_MAX];
    struct stat before, after;
    char old[16];
    int oldfd;

    http_limits_default(&lim);
    url_of(url, sizeof(url), "/x.jpg");
    CHECK(download_link(h, root, "imgs", url, &lim, &res, err, sizeof(err)) == 0);
    CHECK_STREQ(res.path, "imgs/x.jpg");
    CHECK(res.status == 200);
    CHECK(res.bytes == 32768);
    CHECK(file_matches("imgs/x.jpg", "x.jpg", 32768));

    /* The name comes from the link, not from where redirects or the query lead. */
    url_of(url, sizeof(url), "/deep/er/y.png?size=large#top");
    CHECK(download_link(h, root, "./imgs//", url, &lim, &res, err, sizeof(err)) == 0);
    CHECK_STREQ(res.path, "imgs/y.png");
    CHECK(file_matches("imgs/y.png", "y.png", 32768));

    /* Replace an existing file: a reader holding the old one keeps the old bytes (a new
     * inode was renamed over the name), a new reader sees the whole new file. */
    snprintf(path, sizeof(path), "%s/imgs/r.jpg", root);
    oldfd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(oldfd >= 0);
    CHECK(write(oldfd, "old contents", 12) == 12);
    CHECK(fstat(oldfd, &before) == 0);
    url_of(url, sizeof(url), "/r.jpg");
    CHECK(download_link(h, root, "imgs", url, &lim, &res, err, sizeof(err)) == 0);
    CHECK(file_matches("imgs/r.jpg", "r.jpg", 32768));
    CHECK(stat(path, &after) == 0);
    CHECK(after.st_ino != before.st_ino);
    CHECK(pread(oldfd, old, 12, 0) == 12);
    CHECK(memcmp(old, "old contents", 12) == 0);
    close(oldfd);

    listing("imgs", list, sizeof(list));
    CHECK_STREQ(list, "r.jpg,x.jpg,y.png");
}

/* Each failing download: -1, the expected error text, no file and no temp file. */
static void expect_failure(struct http *h, const struct http_limits *lim, const char *dir,
                           const char *path, const char *needle, int transient)
{
    struct download_result res;
    char url[512], err[1024];

    url_of(url, sizeof(url), path);
    err[0] = '\0';
    CHECK(download_link(h, root, dir, url, lim, &res, err, sizeof(err)) < 0);
    CHECK_HAS(err, "download_link: ");
    CHECK_HAS(err, url);
    CHECK_HAS(err, needle);
    if (res.transient != transient)
        fprintf(stderr, "  %s: transient=%d, expected %d (%s)\n", path, res.transient,
                transient, err);
    CHECK(res.transient == transient);
}

static void test_failures(struct http *h)
{
    struct http_limits lim;
    struct download_result res;
    char url[512], err[1024], list[512];

    http_limits_default(&lim);

    /* 404: permanent, the message is exactly what the worker will log. */
    url_of(url, sizeof(url), "/_/status/404/n.jpg");
    CHECK(download_link(h, root, "fail", url, &lim, &res, err, sizeof(err)) < 0);
    {
        char want[600];

        snprintf(want, sizeof(want), "download_link: %s: HTTP 404", url);
        CHECK_STREQ(err, want);
    }
    CHECK(res.status == 404);
    CHECK(res.transient == 0);

    expect_failure(h, &lim, "fail", "/_/status/403/f.jpg", "HTTP 403", 0);
    expect_failure(h, &lim, "fail", "/_/status/500/s.jpg", "HTTP 500", 1);
    expect_failure(h, &lim, "fail", "/_/status/503/s.jpg", "HTTP 503", 1);
    expect_failure(h, &lim, "fail", "/_/status/408/s.jpg", "HTTP 408", 1);

    /* 429 carries its Retry-After; the next attempt succeeds. */
    url_of(url, sizeof(url), "/_/ratelimit/k1/1/rl.jpg");
    CHECK(download_link(h, root, "fail", url, &lim, &res, err, sizeof(err)) < 0);
    CHECK_HAS(err, "HTTP 429");
    CHECK(res.status == 429);
    CHECK(res.transient == 1);
    CHECK(res.retry_after == 1.0);
    CHECK(download_link(h, root, "fail", url, &lim, &res, err, sizeof(err)) == 0);
    CHECK(res.retry_after == 0);
    CHECK(file_matches("fail/rl.jpg", "rl.jpg", 32768));

    /* Retry-After as an HTTP-date 30 s ahead (second resolution, so allow some slack). */
    url_of(url, sizeof(url), "/_/status/503/d.jpg?retry_date=30");
    CHECK(download_link(h, root, "fail", url, &lim, &res, err, sizeof(err)) < 0);
    CHECK(res.retry_after >= 25 && res.retry_after <= 31);

    /* A transfer cut short after 1000 of 100000 bytes: transient, nothing left behind. */
    expect_failure(h, &lim, "fail", "/_/cut/cut.jpg", "cut.jpg", 1);

    /* Over the size cap, declared (Content-Length) or not (chunked): permanent. */
    lim.max_bytes = 10000;
    expect_failure(h, &lim, "fail", "/_/big/20000/big.jpg", "limit", 0);
    expect_failure(h, &lim, "fail", "/_/big/20000/big.jpg?chunked=1", "limit", 0);
    url_of(url, sizeof(url), "/_/big/10000/exact.jpg?chunked=1");   /* at the cap is fine */
    CHECK(download_link(h, root, "fail", url, &lim, &res, err, sizeof(err)) == 0);
    CHECK(file_matches("fail/exact.jpg", "exact.jpg", 10000));
    http_limits_default(&lim);

    /* Redirects: within the limit they are followed, beyond it or to file:// they fail. */
    url_of(url, sizeof(url), "/_/redirect/5/hop5.jpg");
    CHECK(download_link(h, root, "fail", url, &lim, &res, err, sizeof(err)) == 0);
    CHECK(file_matches("fail/hop5.jpg", "hop5.jpg", 32768));
    expect_failure(h, &lim, "fail", "/_/redirect/6/hop6.jpg", "redirect", 0);
    expect_failure(h, &lim, "fail",
                   "/_/redirect-to/passwd.jpg?url=file%3A%2F%2F%2Fetc%2Fpasswd", "file", 0);
    lim.max_redirects = 0;
    expect_failure(h, &lim, "fail", "/_/redirect/1/hop0.jpg", "HTTP 302", 0);
    http_limits_default(&lim);

    /* Timeouts and refused connections are transient. */
    lim.timeout = 0.3;
    expect_failure(h, &lim, "fail", "/_/slow/2/slow.jpg", "slow.jpg", 1);
    http_limits_default(&lim);
    CHECK(download_link(h, root, "fail", "http://127.0.0.1:1/refused.jpg", &lim, &res, err,
                        sizeof(err)) < 0);
    CHECK_HAS(err, "download_link: http://127.0.0.1:1/refused.jpg: ");
    CHECK_HAS(err, "onnect");
    CHECK(res.transient == 1);
    CHECK(res.status == 0);

    listing("fail", list, sizeof(list));
    CHECK_STREQ(list, "exact.jpg,hop5.jpg,rl.jpg");
}

static void test_flaky(struct http *h)
{
    struct http_limits lim;
    struct download_result res;
    char url[256], err[512];
    long hits;

    http_limits_default(&lim);
    url_of(url, sizeof(url), "/_/flaky/k2/2/flaky.jpg");
    CHECK(download_link(h, root, "flaky", url, &lim, &res, err, sizeof(err)) < 0);
    CHECK(res.transient == 1 && res.status == 500);
    CHECK(download_link(h, root, "flaky", url, &lim, &res, err, sizeof(err)) < 0);
    CHECK(!exists("flaky/flaky.jpg"));
    CHECK(download_link(h, root, "flaky", url, &lim, &res, err, sizeof(err)) == 0);
    CHECK(file_matches("flaky/flaky.jpg", "flaky.jpg", 32768));
    hits = fixture_number(h, "/_/hits", "/_/flaky/k2/2/flaky.jpg");
    CHECK(hits == 3);
}

/* Refused links and directories touch neither the network nor the disk. */
static void test_refused_early(struct http *h)
{
    struct http_limits lim;
    struct download_result res;
    char url[256], err[512], path[PATH_MAX];
    long before, after;

    http_limits_default(&lim);
    before = fixture_number(h, "/_/hits", "/never.jpg");
    CHECK(download_link(h, root, "never", "file:///etc/passwd", &lim, &res, err,
                        sizeof(err)) < 0);
    CHECK_STREQ(err, "download_link: file:///etc/passwd: only http and https links are "
                     "allowed");
    snprintf(url, sizeof(url), "ftp://127.0.0.1:%d/never.jpg", port);
    CHECK(download_link(h, root, "never", url, &lim, &res, err, sizeof(err)) < 0);
    CHECK_HAS(err, "only http and https");
    CHECK(res.transient == 0);
    CHECK(!exists("never"));

    url_of(url, sizeof(url), "/never.jpg");
    const char *dirs[] = { "../x", "/abs", "a/../../b", "out" };
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        err[0] = '\0';
        CHECK(download_link(h, root, dirs[i], url, &lim, &res, err, sizeof(err)) < 0);
        CHECK_HAS(err, "download_link: directory '");
        CHECK_HAS(err, "escapes the download root");
    }
    snprintf(path, sizeof(path), "%s/never.jpg", tmpdir);
    CHECK(access(path, F_OK) < 0);
    after = fixture_number(h, "/_/hits", "/never.jpg");
    CHECK(before == 0 && after == 0);
}

/* http_get keeps only the final response's headers and finds them case-insensitively. */
static void test_http_get(struct http *h)
{
    struct http_limits lim;
    struct http_result res;
    char url[256], err[512], val[128];
    char *body;
    size_t len;
    const char *p;
    int status_lines = 0;

    http_limits_default(&lim);
    url_of(url, sizeof(url), "/_/redirect/2/g.jpg");
    CHECK(http_get(h, url, NULL, &lim, &body, &len, &res, err, sizeof(err)) == 0);
    CHECK(res.status == 200);
    CHECK(len == 32768 && res.bytes == 32768);
    CHECK(res.headers != NULL);
    p = res.headers != NULL ? strstr(res.headers, "HTTP/") : NULL;
    while (p != NULL) {
        status_lines++;
        p = strstr(p + 1, "HTTP/");
    }
    CHECK(status_lines == 1);
    CHECK(http_header(&res, "location", val, sizeof(val)) == NULL);
    CHECK(http_header(&res, "content-LENGTH", val, sizeof(val)) != NULL);
    CHECK_STREQ(val, "32768");
    CHECK(http_header(&res, "Content-Type", val, sizeof(val)) != NULL);
    CHECK_STREQ(val, "image/jpeg");
    free(body);
    http_result_free(&res);

    /* A non-2xx status is not an error for http_get: the caller judges it. */
    url_of(url, sizeof(url), "/_/status/429/g.jpg?retry_after=7");
    CHECK(http_get(h, url, NULL, &lim, &body, &len, &res, err, sizeof(err)) == 0);
    CHECK(res.status == 429);
    CHECK(res.retry_after == 7.0);
    CHECK(http_header(&res, "retry-after", val, sizeof(val)) != NULL);
    CHECK_STREQ(val, "7");
    CHECK_STREQ(body, "status 429\n");
    free(body);
    http_result_free(&res);
}

/* Two downloads on one struct http share one TCP connection: the fixture counts accepted
 * connections, and the count does not move while h is reused. */
static void test_reuse(struct http *h)
{
    struct http_limits lim;
    struct download_result res;
    char url[256], err[512];
    long before, after;

    http_limits_default(&lim);
    before = fixture_number(h, "/_/connections", "connections");
    url_of(url, sizeof(url), "/reuse1.jpg");
    CHECK(download_link(h, root, "reuse", url, &lim, &res, err, sizeof(err)) == 0);
    url_of(url, sizeof(url), "/reuse2.jpg");
    CHECK(download_link(h, root, "reuse", url, &lim, &res, err, sizeof(err)) == 0);
    after = fixture_number(h, "/_/connections", "connections");
    CHECK(before > 0);
    if (after != before)
        fprintf(stderr, "  connections before %ld, after %ld\n", before, after);
    CHECK(after == before);
}

int main(int argc, char **argv)
{
    const char *src = argc > 1 ? argv[1] : CQ_SOURCE_DIR;
    struct http *h;
    char err[512];
    long long t0 = time_mono_ms();

    signal(SIGPIPE, SIG_IGN);
    snprintf(fixture, sizeof(fixture), "%s/tests/fixtures/httpd.py", src);
    if (access(fixture, R_OK) < 0) {
        fprintf(stderr, "test_download: fixture %s: %s\n", fixture, strerror(errno));
        return 2;
    }
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(root, sizeof(root), "%s/root", tmpdir);
    atexit(cleanup);
    if (mkdir(root, 0755) < 0) {
        perror("mkdir root");
        return 2;
    }
    if (http_global_init(err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (start_server() < 0)
        return 2;
    h = http_new(err, sizeof(err));
    if (h == NULL) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }

    test_filename();
    test_open_dir();
    test_reuse(h);
    test_success_and_replace(h);
    test_failures(h);
    test_flaky(h);
    test_refused_early(h);
    test_http_get(h);

    http_free(h);
    curl_global_cleanup();   /* so valgrind reports only what is ours */
    fprintf(stderr, "test_download: %lld ms\n", time_mono_ms() - t0);
    return check_report();
}
