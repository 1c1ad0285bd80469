/* sha256.c - an example cq plugin: the SHA-256 of a file under the worker's root, so that a
 * pipeline can verify what download_link wrote.
 *
 *   cworker --load ./libcq_sha256.so
 *   cenqueue sha256 images/abc.jpg
 *   cenqueue sha256 images/abc.jpg 9f86d0...   (fails for good when the digest differs)
 *
 * Its result is JSON: {"path":"images/abc.jpg","bytes":12345,"sha256":"9f86d0..."}.
 * Build: cc -shared -fPIC sha256.c -o libcq_sha256.so $(pkg-config --cflags --libs cq libcrypto)
 */
#include <cq/cq.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

CQ_PLUGIN_DECLARE;

/* Open path below root, refusing absolute paths, ".." and symbolic links anywhere on the way:
 * a job names a file, it does not choose where the worker reads. */
static int open_below(const char *root, const char *path, char *err, size_t errlen)
{
    char part[4096];
    const char *p = path;
    int dir, fd;

    if (path[0] == '/' || path[0] == '\0') {
        snprintf(err, errlen, "'%s': give a path relative to the worker's root", path);
        return -1;
    }
    dir = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        snprintf(err, errlen, "root %s: %s", root, strerror(errno));
        return -1;
    }
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || n >= sizeof part || (n == 2 && p[0] == '.' && p[1] == '.')) {
            snprintf(err, errlen, "'%s': not a plain path below the root", path);
            close(dir);
            return -1;
        }
        memcpy(part, p, n);
        part[n] = '\0';
        fd = openat(dir, part, (slash ? O_DIRECTORY : 0) | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        close(dir);
        if (fd < 0) {
            snprintf(err, errlen, "'%s': %s", path, strerror(errno));
            return -1;
        }
        if (slash == NULL) return fd;
        dir = fd;
        p = slash + 1;
    }
}

/* The worker wants the job to stop: a deadline that passed is named as a timeout (the job's
 * error is this text), any other stop (cqctl cancel, a second signal) as a stop. */
static int stopped(cq_job *job, const char *path, long long bytes)
{
    double deadline = cq_job_deadline(job);
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    if (deadline > 0 && (double)now.tv_sec + (double)now.tv_nsec / 1e9 >= deadline)
        return cq_job_fail(job, CQ_TRANSIENT, 0, "sha256: %s: job timed out after %lld bytes", path,
                           bytes);
    return cq_job_fail(job, CQ_TRANSIENT, 0, "sha256: %s: asked to stop after %lld bytes", path,
                       bytes);
}

static int fn_sha256(cq_job *job, void *udata)
{
    const char *path = cq_job_arg_string(job, 0), *expect = cq_job_arg_string(job, 1);
    unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
    char hex[2 * EVP_MAX_MD_SIZE + 1], err[512], json[8192 + 256];
    unsigned int mdlen = 0, i;
    long long bytes = 0;
    EVP_MD_CTX *ctx;
    ssize_t n;
    int fd;

    (void)udata;
    fd = open_below(cq_job_root(job), path, err, sizeof err);
    if (fd < 0) return cq_job_fail(job, CQ_PERMANENT, 0, "sha256: %s", err);
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        close(fd);
        EVP_MD_CTX_free(ctx);
        return cq_job_fail(job, CQ_TRANSIENT, 0, "sha256: libcrypto cannot start a digest");
    }
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || cq_job_stopping(job)) {
            int e = errno;
            close(fd);
            EVP_MD_CTX_free(ctx);
            if (n >= 0) return stopped(job, path, bytes);
            return cq_job_fail(job, CQ_TRANSIENT, 0, "sha256: %s: %s", path, strerror(e));
        }
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        bytes += n;
    }
    close(fd);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    for (i = 0; i < mdlen; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (expect != NULL && strcmp(expect, hex) != 0)
        return cq_job_fail(job, CQ_PERMANENT, 0, "sha256: %s: digest %s, expected %s", path, hex,
                           expect);
    cq_job_log(job, CQ_LOG_DEBUG, "%s: %lld bytes", path, bytes);
    /* The path was checked to be plain: no quote or backslash can reach the JSON unescaped
     * except through a file name, which is escaped here. */
    {
        char esc[4096 * 2];
        size_t o = 0;
        for (i = 0; path[i] && o + 7 < sizeof esc; i++) {
            unsigned char ch = (unsigned char)path[i];
            if (ch == '"' || ch == '\\') {
                esc[o++] = '\\';
                esc[o++] = (char)ch;
            } else if (ch < 0x20) {
                o += (size_t)snprintf(esc + o, sizeof esc - o, "\\u%04x", ch);
            } else {
                esc[o++] = (char)ch;
            }
        }
        esc[o] = '\0';
        snprintf(json, sizeof json, "{\"path\":\"%s\",\"bytes\":%lld,\"sha256\":\"%s\"}", esc,
                 bytes, hex);
    }
    return cq_job_result_json(job, json);
}

int cq_plugin_init(cq_registry *reg)
{
    cq_function *f = cq_function_add(reg, "sha256", "PATH [EXPECTED]", fn_sha256, NULL);

    if (f == NULL) return -1;
    cq_function_set_summary(f,
                            "the SHA-256 of PATH under the worker's root (JSON result); "
                            "fails when it is not EXPECTED");
    cq_function_set_timeout(f, 60);
    return 0;
}
