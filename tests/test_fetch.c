/* test_fetch.c - app/fetch.c: the transfers of many threads on the transfer threads, as
 * cworker runs download_link (download_begin, fetch_start, download_end; the threads here
 * wait for each end, where cworker's executors defer the job),
 * against tests/fixtures/httpd.py over HTTP and over HTTPS (a CA and a certificate made here
 * with openssl). Checked as a user would: the files on disk, the connections the server
 * accepted, the time taken, the error of a certificate nobody trusts.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "download.h"
#include "fetch.h"
#include "http.h"
#include "util.h"

#ifndef CQ_SOURCE_DIR
#define CQ_SOURCE_DIR "."
#endif

#include "check.h"
#include "rmtree.h"

#define THREADS  16
#define PER      4    /* downloads a thread */
#define LATENCY  0.2  /* seconds the plain server waits before each answer */
#define IMG_SIZE 8192 /* bytes of each generated image */

static char fixture[PATH_MAX];
static char tmpdir[] = "/tmp/cq-test-fetch-XXXXXX";
static char root[128];
static char ca[PATH_MAX];

struct server {
    pid_t pid;
    char base[64]; /* http://127.0.0.1:PORT or https://... */
};
static struct server plain = {-1, ""}, tls = {-1, ""};

/* ---- fixtures ---------------------------------------------------------------------------- */

static void stop_server(struct server *s)
{
    if (s->pid <= 0) return;
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->pid = -1;
}

static void cleanup(void)
{
    stop_server(&plain);
    stop_server(&tls);
    if (root[0] != '\0') rmtree(tmpdir);
}

/* Run argv to its end, its output dropped. 0 when it exited 0. */
static int run(char *const argv[])
{
    pid_t pid = fork();
    int status;

    if (pid < 0) return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);

        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* A CA (ca.pem) and a certificate it signed for IP:127.0.0.1 (server.pem, server.key). */
static int make_certs(void)
{
    char key[PATH_MAX], csr[PATH_MAX], crt[PATH_MAX], cakey[PATH_MAX], ext[PATH_MAX];
    FILE *f;

    snprintf(ca, sizeof ca, "%s/ca.pem", tmpdir);
    snprintf(cakey, sizeof cakey, "%s/ca.key", tmpdir);
    snprintf(key, sizeof key, "%s/server.key", tmpdir);
    snprintf(csr, sizeof csr, "%s/server.csr", tmpdir);
    snprintf(crt, sizeof crt, "%s/server.pem", tmpdir);
    snprintf(ext, sizeof ext, "%s/server.ext", tmpdir);
    f = fopen(ext, "w");
    if (f == NULL) return -1;
    fputs("subjectAltName=IP:127.0.0.1\n", f);
    fclose(f);
    {
        char *mk_ca[] = {"openssl", "req",   "-x509", "-newkey", "rsa:2048",
                         "-nodes",  "-days", "2",     "-subj",   "/CN=cq test_fetch CA",
                         "-keyout", cakey,   "-out",  ca,        NULL};
        char *mk_csr[] = {"openssl",       "req",     "-newkey", "rsa:2048", "-nodes", "-subj",
                          "/CN=127.0.0.1", "-keyout", key,       "-out",     csr,      NULL};
        char *sign[] = {
            "openssl",         "x509",  "-req", "-in",      csr, "-CA",  ca,  "-CAkey", cakey,
            "-CAcreateserial", "-days", "2",    "-extfile", ext, "-out", crt, NULL};

        if (run(mk_ca) < 0 || run(mk_csr) < 0 || run(sign) < 0) {
            fprintf(stderr, "test_fetch: openssl could not make the certificates\n");
            return -1;
        }
    }
    return 0;
}

/* Start httpd.py with the extra arguments (NULL-terminated) and read its port. */
static int start_server(struct server *s, const char *scheme, const char *name, char **extra)
{
    char portfile[PATH_MAX];
    char *argv[16];
    int n = 0;

    snprintf(portfile, sizeof portfile, "%s/%s.port", tmpdir, name);
    argv[n++] = "python3";
    argv[n++] = fixture;
    argv[n++] = "--generate";
    argv[n++] = "--port-file";
    argv[n++] = portfile;
    while (*extra != NULL && n < 15) argv[n++] = *extra++;
    argv[n] = NULL;
    s->pid = fork();
    if (s->pid < 0) return -1;
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* do not outlive a crashed test */
        execvp(argv[0], argv);
        _exit(127);
    }
    for (int i = 0; i < 1000; i++) { /* 10 s */
        FILE *f = fopen(portfile, "r");
        long port = 0;

        if (f != NULL) {
            char line[32] = "";

            if (fgets(line, sizeof line, f) != NULL) {
                line[strcspn(line, "\n")] = '\0';
                if (parse_long(line, 1, 65535, &port) != 0) port = 0;
            }
            fclose(f);
        }
        if (port > 0) {
            snprintf(s->base, sizeof s->base, "%s://127.0.0.1:%ld", scheme, port);
            return 0;
        }
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) break;
        sleep_ms(10);
    }
    fprintf(stderr, "test_fetch: the %s fixture did not start\n", name);
    s->pid = -1;
    return -1;
}

/* 1 when <root>/<rel> is a whole generated .jpg: its size, and JPEG's first bytes. */
static int looks_right(const char *rel)
{
    char path[PATH_MAX];
    unsigned char head[4];
    struct stat st;
    int fd, ok;

    snprintf(path, sizeof path, "%s/%s", root, rel);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ok = fstat(fd, &st) == 0 && st.st_size == IMG_SIZE && read(fd, head, 4) == 4 &&
        memcmp(head, "\xff\xd8\xff\xe0", 4) == 0;
    close(fd);
    return ok;
}

/* ---- downloads as cworker runs them ----------------------------------------------------- */

/* One transfer's end, waited for on the thread that started it. */
struct waited {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int done;
    CURLcode rc;
};

static void waited_done(CURLcode rc, void *arg)
{
    struct waited *wt = arg;

    pthread_mutex_lock(&wt->mu);
    wt->rc = rc;
    wt->done = 1;
    pthread_cond_signal(&wt->cond);
    pthread_mutex_unlock(&wt->mu);
}

/* The transfer set up on h, run to its end on a transfer thread (on this one once
 * fetch_stop has ended them, as download_link does). */
static CURLcode fetch_wait(struct http *h)
{
    struct waited wt = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, CURLE_OK};

    if (fetch_start(h, waited_done, &wt) != 0) return http_perform(h);
    pthread_mutex_lock(&wt.mu);
    while (!wt.done) pthread_cond_wait(&wt.cond, &wt.mu);
    pthread_mutex_unlock(&wt.mu);
    pthread_cond_destroy(&wt.cond);
    pthread_mutex_destroy(&wt.mu);
    return wt.rc;
}

/* download_link with the transfer on the transfer thread; cafile, when given, is the CA
 * bundle trusted instead of the system's. */
static int download(struct http *h, const char *dir, const char *link, const char *cafile,
                    struct download_result *res, char *err, size_t errlen)
{
    struct http_limits lim;
    struct download d;

    http_limits_default(&lim);
    memset(res, 0, sizeof *res);
    if (download_begin(&d, h, root, dir, link, &lim, err, errlen) != 0) return -1;
    if (cafile != NULL) curl_easy_setopt(http_curl(h), CURLOPT_CAINFO, cafile);
    return download_end(&d, h, fetch_wait(h), res, err, errlen);
}

struct worker {
    int index;
    int ok; /* downloads that succeeded */
    char err[1024];
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct download_result res;
    char err[1024], link[256], dir[32];
    struct http *h = http_new(err, sizeof err);

    if (h == NULL) return NULL;
    snprintf(dir, sizeof dir, "t%02d", w->index);
    for (int i = 0; i < PER; i++) {
        snprintf(link, sizeof link, "%s/img%d.jpg", plain.base, i);
        if (download(h, dir, link, NULL, &res, err, sizeof err) == 0)
            w->ok++;
        else
            str_copy(w->err, sizeof w->err, err);
        download_result_free(&res);
    }
    http_free(h);
    return NULL;
}

/* The fixture's count of the TCP connections it accepted. */
static long connections(void)
{
    char url[128], err[512], *body = NULL, *at;
    struct http_limits lim;
    struct http_result res;
    struct http *h = http_new(err, sizeof err);
    size_t len;
    long v = -1;

    if (h == NULL) return -1;
    http_limits_default(&lim);
    snprintf(url, sizeof url, "%s/_/connections", plain.base);
    if (http_get(h, url, NULL, &lim, &body, &len, &res, err, sizeof err) == 0) {
        at = strstr(body, "\"connections\": ");
        if (at != NULL) v = strtol(at + strlen("\"connections\": "), NULL, 10);
        free(body);
        http_result_free(&res);
    }
    http_free(h);
    return v;
}

/* ---- the tests ------------------------------------------------------------------------- */

static void *one_download(void *arg)
{
    struct worker *w = arg;
    struct download_result res;
    char err[1024], link[256];
    struct http *h = http_new(err, sizeof err);

    if (h == NULL) return NULL;
    snprintf(link, sizeof link, "%s/shared%d.jpg", plain.base, w->index);
    if (download(h, "shared", link, NULL, &res, err, sizeof err) == 0)
        w->ok++;
    else
        str_copy(w->err, sizeof w->err, err);
    download_result_free(&res);
    http_free(h);
    return NULL;
}

/* 2N threads (N transfer threads), one after the other, each with its own handle: the first
 * N open a connection on each transfer thread (they take turns), the next N reuse them, since
 * the cache is the transfer thread's, not the handle's. */
static void test_shared_connection(void)
{
    int n = fetch_threads();
    struct worker *w = xcalloc((size_t)(2 * n), sizeof *w);
    long before = connections(), after;

    REQUIRE(n > 0 && n <= 64);
    for (int i = 0; i < 2 * n; i++) {
        pthread_t t;
        char rel[64];

        w[i].index = i;
        REQUIRE(pthread_create(&t, NULL, one_download, &w[i]) == 0);
        pthread_join(t, NULL);
        if (w[i].err[0] != '\0') fprintf(stderr, "  thread %d: %s\n", i, w[i].err);
        CHECK_EQ(w[i].ok, 1);
        snprintf(rel, sizeof rel, "shared/shared%d.jpg", i);
        CHECK(looks_right(rel));
    }
    after = connections();
    /* N for the 2N downloads, one for connections() itself. */
    fprintf(stderr, "  %d downloads one after another, %d transfer threads: %ld connections\n",
            2 * n, n, after - before - 1);
    CHECK_EQ(after - before, n + 1);
    free(w);
}

/* THREADS threads each download PER images at once: every file arrives whole, the transfers
 * overlap (the run takes a fraction of their sum), and connections are shared between the
 * threads, the multi handle's cache being one. */
static void test_many_threads(void)
{
    struct worker w[THREADS];
    pthread_t t[THREADS];
    long long t0 = time_mono_ms(), ms;
    long before = connections(), after;
    int ok = 0;

    memset(w, 0, sizeof w);
    for (int i = 0; i < THREADS; i++) {
        w[i].index = i;
        REQUIRE(pthread_create(&t[i], NULL, worker_main, &w[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    ms = time_mono_ms() - t0;
    after = connections();
    for (int i = 0; i < THREADS; i++) {
        char rel[64];

        ok += w[i].ok;
        if (w[i].err[0] != '\0') fprintf(stderr, "  thread %d: %s\n", i, w[i].err);
        for (int k = 0; k < PER; k++) {
            snprintf(rel, sizeof rel, "t%02d/img%d.jpg", i, k);
            CHECK(looks_right(rel));
        }
    }
    CHECK_EQ(ok, THREADS * PER);
    /* One after another they would take THREADS * PER * LATENCY seconds (12.8 s). */
    fprintf(stderr, "  %d downloads by %d threads: %lld ms, %ld connections\n", THREADS * PER,
            THREADS, ms, after - before - 1);
    CHECK(ms < (long long)(THREADS * PER * LATENCY * 1000) / 2);
    /* At most one connection per transfer in flight on each transfer thread (each keeps its
     * own connections: one thread's idle connection does not serve another's transfer), and
     * the one connections() made. */
    CHECK(before > 0 && after - before - 1 <= (long)THREADS * fetch_threads());
}

/* HTTPS on the transfer thread: with the CA trusted, the file arrives; with only the
 * system's CAs (the default), the certificate is refused, for good. */
static void test_https(void)
{
    struct download_result res;
    char err[1024], link[256], path[PATH_MAX];
    struct http *h = http_new(err, sizeof err);

    REQUIRE(h != NULL);
    snprintf(link, sizeof link, "%s/secure.jpg", tls.base);
    CHECK(download(h, "tls", link, ca, &res, err, sizeof err) == 0);
    CHECK(looks_right("tls/secure.jpg"));
    if (res.path != NULL) CHECK_STREQ(res.path, "tls/secure.jpg");
    download_result_free(&res);

    snprintf(link, sizeof link, "%s/untrusted.jpg", tls.base);
    CHECK(download(h, "tls", link, NULL, &res, err, sizeof err) == -1);
    CHECK_HAS(err, "untrusted.jpg: SSL certificate problem");
    CHECK(!res.transient);
    snprintf(path, sizeof path, "%s/tls/untrusted.jpg", root);
    CHECK(access(path, F_OK) != 0);
    http_free(h);
}

/* RssAnon of this process, KiB (-1 unknown). */
static long rss_anon_kb(void)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");

    if (f == NULL) return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "RssAnon:", 8) == 0) v = strtol(line + 8, NULL, 10);
    }
    fclose(f);
    return v;
}

/* The system's CA bundle (libcurl's built-in one) with ours added, in out. 0, or -1 when
 * there is none to copy. */
static int bundle_with_ours(char *out, size_t outlen)
{
    char *sys = NULL, buf[65536];
    CURL *c = curl_easy_init();
    FILE *in, *o;
    size_t n;
    int rc = -1;

    snprintf(out, outlen, "%s/bundle.pem", tmpdir);
    if (c != NULL && curl_easy_getinfo(c, CURLINFO_CAINFO, &sys) == CURLE_OK && sys != NULL) {
        o = fopen(out, "w");
        for (int i = 0; o != NULL && i < 2; i++) {
            in = fopen(i == 0 ? sys : ca, "r");
            if (in == NULL) break;
            while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, o);
            fclose(in);
            rc = i == 1 ? 0 : -1;
        }
        if (o != NULL && fclose(o) != 0) rc = -1;
    }
    curl_easy_cleanup(c);
    return rc;
}

struct tls_worker {
    const char *bundle;
    int index, ok;
    char err[1024];
};

static void *tls_download(void *arg)
{
    struct tls_worker *w = arg;
    struct download_result res;
    char link[256];
    struct http *h = http_new(w->err, sizeof w->err);

    if (h == NULL) return NULL;
    snprintf(link, sizeof link, "%s/bundle%d.jpg", tls.base, w->index);
    if (download(h, "bundle", link, w->bundle, &res, w->err, sizeof w->err) == 0) w->ok = 1;
    download_result_free(&res);
    http_free(h);
    return NULL;
}

/* THREADS https connections at once, verified against the whole system bundle (and our CA):
 * the bundle is parsed once on each transfer thread, not for each connection. Parsed for
 * each connection, as libcurl does when a CA directory is set too (Debian's default),
 * Debian's 144 certificates took about 0.9 MB a connection, 13 MB here; shared, the growth is
 * a bundle a transfer thread and the connections' own TLS state (1.2 MB with one thread,
 * 2.4 MB with two). Checked where there are at most 4 transfer threads (more would parse as
 * many bundles as connections), and not under the sanitizers or valgrind, whose allocators
 * count otherwise. */
static void test_https_bundle_shared(void)
{
    struct tls_worker w[THREADS];
    pthread_t t[THREADS];
    char bundle[PATH_MAX];
    long before, after;
    int ok = 0, n = fetch_threads();

    if (bundle_with_ours(bundle, sizeof bundle) != 0) {
        fprintf(stderr, "  no system CA bundle: the shared-bundle check is skipped\n");
        return;
    }
    before = rss_anon_kb();
    memset(w, 0, sizeof w);
    for (int i = 0; i < THREADS; i++) {
        w[i].bundle = bundle;
        w[i].index = i;
        REQUIRE(pthread_create(&t[i], NULL, tls_download, &w[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ok += w[i].ok;
        if (!w[i].ok) fprintf(stderr, "  thread %d: %s\n", i, w[i].err);
    }
    after = rss_anon_kb();
    CHECK_EQ(ok, THREADS);
    fprintf(stderr, "  %d https downloads at once: RssAnon grew by %ld KiB\n", THREADS,
            after - before);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    /* valgrind preloads its own allocator (vgpreload_*.so), whose memory counts too. */
    if (n <= 4 && strstr(getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "", "vgpreload") == NULL)
        CHECK(before > 0 && after - before < 8 * 1024);
#endif
    (void)n;
}

/* fetch_start from one thread: ASYNC transfers in flight at once, each end told once (on a
 * transfer thread) with its result, every file whole; then ASYNC more, and fetch_stop while
 * they are in flight: it waits for them, and each end is still told. */
#define ASYNC 32

struct async_end {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int told[ASYNC];
    CURLcode rc[ASYNC];
    int ended;
};

struct async_one {
    struct async_end *e;
    int i;
};

static void async_done(CURLcode rc, void *arg)
{
    struct async_one *o = arg;
    struct async_end *e = o->e;

    pthread_mutex_lock(&e->mu);
    e->told[o->i]++;
    e->rc[o->i] = rc;
    e->ended++;
    pthread_cond_signal(&e->cond);
    pthread_mutex_unlock(&e->mu);
}

static void async_round(const char *dir, int stop_meanwhile)
{
    struct async_end e;
    struct async_one o[ASYNC];
    struct http *h[ASYNC];
    struct download d[ASYNC];
    struct http_limits lim;
    char err[1024], link[256], rel[64];
    double t0 = time_now();
    int i, whole = 0, once = 0, started = 0;

    memset(&e, 0, sizeof e);
    pthread_mutex_init(&e.mu, NULL);
    pthread_cond_init(&e.cond, NULL);
    http_limits_default(&lim);
    for (i = 0; i < ASYNC; i++) {
        h[i] = http_new(err, sizeof err);
        REQUIRE(h[i] != NULL);
        snprintf(link, sizeof link, "%s/a%d.jpg", plain.base, i);
        REQUIRE(download_begin(&d[i], h[i], root, dir, link, &lim, err, sizeof err) == 0);
        o[i].e = &e;
        o[i].i = i;
        started += fetch_start(h[i], async_done, &o[i]) == 0;
    }
    CHECK_EQ(started, ASYNC);
    if (stop_meanwhile) {
        fetch_stop(); /* returns once every transfer in flight has ended and been told */
        CHECK_EQ(e.ended, ASYNC);
    }
    pthread_mutex_lock(&e.mu);
    while (e.ended < ASYNC) pthread_cond_wait(&e.cond, &e.mu);
    pthread_mutex_unlock(&e.mu);
    /* all at once: about one LATENCY, not ASYNC of them */
    fprintf(stderr, "  %d transfers started from one thread%s: %.3f s\n", ASYNC,
            stop_meanwhile ? ", fetch_stop meanwhile" : "", time_now() - t0);
    CHECK(time_now() - t0 < LATENCY * ASYNC / 4);
    for (i = 0; i < ASYNC; i++) {
        struct download_result res;

        memset(&res, 0, sizeof res);
        once += e.told[i] == 1;
        if (download_end(&d[i], h[i], e.rc[i], &res, err, sizeof err) == 0) {
            snprintf(rel, sizeof rel, "%s/a%d.jpg", dir, i);
            whole += looks_right(rel);
        } else {
            fprintf(stderr, "  transfer %d: %s\n", i, err);
        }
        download_result_free(&res);
        http_free(h[i]);
    }
    CHECK_EQ(once, ASYNC);
    CHECK_EQ(whole, ASYNC);
    pthread_cond_destroy(&e.cond);
    pthread_mutex_destroy(&e.mu);
}

static void test_start(void)
{
    async_round("async", 0);
    async_round("async-stop", 1);
    /* stopped: fetch_start starts nothing, and says so */
    {
        char err[1024];
        struct http *h = http_new(err, sizeof err);

        REQUIRE(h != NULL);
        CHECK_EQ(fetch_start(h, async_done, NULL), -1);
        http_free(h);
    }
}

/* Whether root/rel holds no file. */
static int dir_empty(const char *rel)
{
    char path[PATH_MAX];
    struct dirent *de;
    DIR *dir;
    int n = 0;

    snprintf(path, sizeof path, "%s/%s", root, rel);
    dir = opendir(path);
    if (dir == NULL) return 0;
    while ((de = readdir(dir)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(dir);
    return n == 0;
}

/* A stop check that answers what *arg holds (enum http_stop), set by the test's thread. */
static enum http_stop flag_set(void *arg)
{
    return (enum http_stop)__atomic_load_n((int *)arg, __ATOMIC_RELAXED);
}

/* A download of path (on the plain server) into root/rel, given a stop check that answers
 * `answer` once the transfer has waited 350 ms: it ends soon after (the transfer thread runs
 * the check every FETCH_STOP_CHECK_MS though the server sends nothing for 30 s), aborted by
 * the check, with an error that holds want, transient as given, and no file put in place. */
static void stop_one(const char *rel, const char *path, enum http_stop answer, const char *want,
                     int transient)
{
    struct async_end e;
    struct async_one o = {&e, 0};
    struct download d;
    struct download_result res;
    struct http_limits lim;
    char err[1024], link[256];
    struct http *h = http_new(err, sizeof err);
    int stop = HTTP_GO_ON;
    double t0, took;

    REQUIRE(h != NULL);
    memset(&e, 0, sizeof e);
    pthread_mutex_init(&e.mu, NULL);
    pthread_cond_init(&e.cond, NULL);
    http_limits_default(&lim);
    snprintf(link, sizeof link, "%s/%s", plain.base, path);
    REQUIRE(download_begin(&d, h, root, rel, link, &lim, err, sizeof err) == 0);
    http_set_stop(h, flag_set, &stop);
    REQUIRE(fetch_start(h, async_done, &o) == 0);
    usleep(350 * 1000);
    pthread_mutex_lock(&e.mu);
    CHECK_EQ(e.ended, 0); /* still waiting for its server */
    pthread_mutex_unlock(&e.mu);
    t0 = time_now();
    __atomic_store_n(&stop, (int)answer, __ATOMIC_RELAXED);
    pthread_mutex_lock(&e.mu);
    while (e.ended < 1) pthread_cond_wait(&e.cond, &e.mu);
    pthread_mutex_unlock(&e.mu);
    took = time_now() - t0;
    fprintf(stderr, "  %s: a stopped transfer ended %.3f s after its check said so\n", path, took);
    /* A poll of 1000 ms would fail it; 800 ms above the 100 ms poll are for the abort and the
     * wake of this thread under ThreadSanitizer on loaded cores. */
    CHECK(took < 9 * FETCH_STOP_CHECK_MS / 1000.0);
    CHECK_EQ(e.rc[0], CURLE_ABORTED_BY_CALLBACK);
    memset(&res, 0, sizeof res);
    CHECK_EQ(download_end(&d, h, e.rc[0], &res, err, sizeof err), -1);
    if (strstr(err, want) == NULL) fprintf(stderr, "  error: %s\n  wanted: %s\n", err, want);
    CHECK(strstr(err, want) != NULL);
    CHECK_EQ(res.transient, transient);
    CHECK(dir_empty(rel)); /* nothing was put in place */
    download_result_free(&res);
    http_free(h);
    pthread_cond_destroy(&e.cond);
    pthread_mutex_destroy(&e.mu);
}

/* The stop check's answers, and each after an error status: the worker's stop is why the
 * transfer ended, not the status; a deadline is a timeout as libcurl's own is, after which
 * the status the server sent is the verdict. */
static void test_stop(void)
{
    stop_one("stop", "_/slow/30/stopped.jpg", HTTP_STOP, "stopped.jpg: stopped by the worker", 1);
    stop_one("late", "_/slow/30/late.jpg", HTTP_TIMED_OUT,
             "late.jpg: timed out (the job's time limit passed)", 1);
    stop_one("gone", "_/status/404/gone.jpg?stall=30", HTTP_STOP,
             "gone.jpg?stall=30: stopped by the worker", 1);
    stop_one("gone", "_/status/404/gone.jpg?stall=30", HTTP_TIMED_OUT,
             "gone.jpg?stall=30: HTTP 404", 0);
}

/* After fetch_stop a transfer runs on its caller's thread, the same way. */
/* A transfer the transfer thread's multi handle refuses (here: its handle is in another
 * multi handle already) ends with libcurl's reason for it, where every refusal was said as
 * 'Out of memory' (CURLE_OUT_OF_MEMORY, whatever the CURLMcode). */
static void test_add_refused(void)
{
    char err[1024], link[256];
    struct http_limits lim;
    struct download_result res;
    struct download d;
    struct http *h = http_new(err, sizeof err);
    CURLM *other = curl_multi_init();
    CURLcode rc;

    REQUIRE(h != NULL && other != NULL);
    http_limits_default(&lim);
    snprintf(link, sizeof link, "%s/refused.jpg", plain.base);
    memset(&res, 0, sizeof res);
    REQUIRE(download_begin(&d, h, root, "add-refused", link, &lim, err, sizeof err) == 0);
    REQUIRE(curl_multi_add_handle(other, http_curl(h)) == CURLM_OK);
    rc = fetch_wait(h);
    curl_multi_remove_handle(other, http_curl(h));
    err[0] = '\0';
    CHECK_EQ(download_end(&d, h, rc, &res, err, sizeof err), -1);
    {
        char want[512];

        snprintf(want, sizeof want, "download_link: %s: curl_multi_add_handle: %s", link,
                 curl_multi_strerror(CURLM_ADDED_ALREADY));
        CHECK_STREQ(err, want);
    }
    CHECK(dir_empty("add-refused"));
    download_result_free(&res);
    curl_multi_cleanup(other);
    http_free(h);
}

static void test_after_stop(void)
{
    struct download_result res;
    char err[1024], link[256];
    struct http *h = http_new(err, sizeof err);

    REQUIRE(h != NULL);
    fetch_stop(); /* again: nothing to do */
    snprintf(link, sizeof link, "%s/after.jpg", plain.base);
    CHECK(download(h, "after", link, NULL, &res, err, sizeof err) == 0);
    CHECK(looks_right("after/after.jpg"));
    download_result_free(&res);
    http_free(h);
}

int main(int argc, char **argv)
{
    const char *src = argc > 1 ? argv[1] : CQ_SOURCE_DIR;
    char err[512], size[32], latency[32], cert[PATH_MAX], key[PATH_MAX];

    signal(SIGPIPE, SIG_IGN);
    snprintf(fixture, sizeof fixture, "%s/tests/fixtures/httpd.py", src);
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(root, sizeof root, "%s/root", tmpdir);
    atexit(cleanup);
    if (mkdir(root, 0755) < 0 || make_certs() < 0) return 2;
    snprintf(size, sizeof size, "%d", IMG_SIZE);
    snprintf(latency, sizeof latency, "%g", LATENCY);
    snprintf(cert, sizeof cert, "%s/server.pem", tmpdir);
    snprintf(key, sizeof key, "%s/server.key", tmpdir);
    {
        char *plain_args[] = {"--size", size, "--latency", latency, NULL};
        char *tls_args[] = {"--size", size, "--tls-cert", cert, "--tls-key", key, NULL};

        if (start_server(&plain, "http", "plain", plain_args) < 0 ||
            start_server(&tls, "https", "tls", tls_args) < 0)
            return 2;
    }
    if (http_global_init(err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }

    test_shared_connection();
    test_many_threads();
    test_https();
    test_https_bundle_shared();
    test_stop();
    test_add_refused();
    test_start(); /* ends with fetch_stop */
    test_after_stop();

    curl_global_cleanup(); /* after fetch_stop: so valgrind reports only what is ours */
    return check_report();
}
