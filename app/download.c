/* download.c - download_link(directory, link): save one URL under the download root.
 *
 * DESIGN. Two things come from the job and are not trusted: the directory and the link.
 *
 * The directory is walked one component at a time with openat(O_DIRECTORY|O_NOFOLLOW)
 * starting from an fd of the root, so the kernel, not string matching, decides where each
 * step lands: ".." and absolute paths are refused before any lookup, and a component that is
 * a symlink fails to open instead of being followed out of the root. Missing components are
 * created on the way (mode 0755).
 *
 * The file name is the last segment of the link's path, percent-decoded, and must be one
 * plain name (no '/', no "..", no control bytes). Scheme and name are checked before any
 * directory is made or any byte is fetched.
 *
 * The body is written to an unnamed O_TMPFILE in the target directory. Only after a complete
 * 200 (or 203) transfer is it given a name: the final one at once (linkat) where no file has it, or
 * else a hidden temporary name renamed over the final name, so an existing file is replaced
 * atomically and a reader sees the old file or the new one, never half of either; if the
 * worker dies mid-transfer the unnamed file simply vanishes.
 * Where the filesystem has no O_TMPFILE the hidden name is created up front (O_EXCL) and
 * unlinked on every failure path instead.
 *
 * download_link is three steps with a transfer in the middle: prepare (name, directory,
 * temporary file), the transfer (http.c), commit (fsync, link, rename) or release. The
 * steps are exported as download_begin/download_end so that a driver of many concurrent
 * transfers on one thread (a curl multi handle) runs exactly the same code as
 * download_link, which is nothing but begin + http_perform + end.
 */
#include "download.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* The part of the file name kept in a temporary name, so that ".<name>.cq-<pid>-<rand>.tmp"
 * stays under NAME_MAX (255) even for a 255-byte name. */
#define TMP_NAME_KEEP 200

/* Build "<prefix>: <msg>" in err from a message made by a helper. */
static void err_prefix(char *err, size_t errlen, const char *prefix, const char *msg)
{
    err_set(err, errlen, "%s: %s", prefix, msg);
}

static int is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static int has_ctl(const char *s)
{
    for (; *s != '\0'; s++) {
        if (is_ctl((unsigned char)*s)) return 1;
    }
    return 0;
}

/* Links and directories are echoed in error messages that end up in logs; a newline in one
 * could forge log lines, so they are shown with '?' for each control byte. */
static void printable(char *dst, size_t len, const char *src)
{
    size_t i = 0;

    for (; src[i] != '\0' && i + 1 < len; i++)
        dst[i] = is_ctl((unsigned char)src[i]) ? '?' : src[i];
    dst[i] = '\0';
}

/* The directory a job names, checked and normalised before anything is made on disk: a
 * refused job must leave no trace, so '..', an absolute path or an overlong component is
 * found here, not halfway through making the path. Writes "a/b" (or "" for the root) into
 * norm. */
static int normalise_dir(const char *directory, char *norm, size_t normlen, char *err,
                         size_t errlen)
{
    const char *p = directory;
    size_t nlen = 0;

    if (directory == NULL || directory[0] == '\0') {
        err_set(err, errlen, "empty directory");
        return -1;
    }
    if (has_ctl(directory)) {
        char shown[256];

        printable(shown, sizeof(shown), directory);
        err_set(err, errlen, "directory '%s' contains a control character", shown);
        return -1;
    }
    if (directory[0] == '/') {
        err_set(err, errlen, "directory '%s' escapes the download root (absolute path)", directory);
        return -1;
    }
    norm[0] = '\0';
    for (; *p != '\0'; p += *p == '/') {
        size_t clen = strcspn(p, "/");

        if (clen == 0 || (clen == 1 && p[0] == '.')) {
            /* "a//b" and "a/./b" name the same directory as "a/b". */
            p += clen;
            continue;
        }
        if (clen == 2 && p[0] == '.' && p[1] == '.') {
            err_set(err, errlen, "directory '%s' escapes the download root ('..')", directory);
            return -1;
        }
        if (clen > NAME_MAX) {
            err_set(err, errlen, "directory '%s': a component is longer than %d bytes", directory,
                    NAME_MAX);
            return -1;
        }
        if (nlen + (nlen > 0) + clen + 1 > normlen) {
            err_set(err, errlen, "directory '%s' is too long", directory);
            return -1;
        }
        if (nlen > 0) norm[nlen++] = '/';
        memcpy(norm + nlen, p, clen);
        nlen += clen;
        norm[nlen] = '\0';
        p += clen;
    }
    return 0;
}

int download_check_dir(const char *directory, char *err, size_t errlen)
{
    char norm[PATH_MAX];

    return normalise_dir(directory, norm, sizeof norm, err, errlen);
}

/* Open the normalised directory norm under root, making what is missing (with make; without,
 * stopping at the first component missing, whose fd is returned), never following a symbolic
 * link. Returns an O_DIRECTORY fd, or -1 with err set (and *host when the host's state is to
 * blame). directory is the job's own spelling, for messages. */
static int open_dir(const char *root, const char *directory, const char *norm, int make, int *host,
                    char *err, size_t errlen)
{
    const char *p = norm;
    int cur;

    *host = 0;
    cur = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0) {
        /* The root is the host's: it was there when the worker started. */
        *host = 1;
        err_set(err, errlen, "download root '%s': %s", root, strerror(errno));
        return -1;
    }
    while (*p != '\0') {
        char comp[NAME_MAX + 1];
        size_t clen = strcspn(p, "/");
        int next;

        memcpy(comp, p, clen);
        comp[clen] = '\0';
        p += clen;
        next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT && !make) return cur;
        if (next < 0 && errno == ENOENT) {
            /* EEXIST: another worker made it between our open and our mkdir; open it. */
            if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST) {
                *host = download_host_errno(errno);
                err_set(err, errlen, "directory '%s': mkdir '%.*s': %s", directory, (int)(p - norm),
                        norm, strerror(errno));
                goto fail;
            }
            next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (next < 0) {
            int saved = errno;
            struct stat st;

            if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                err_set(err, errlen, "directory '%s' escapes the download root (symlink at '%.*s')",
                        directory, (int)(p - norm), norm);
            else if (saved == ENOTDIR)
                err_set(err, errlen, "directory '%s': '%.*s' is not a directory", directory,
                        (int)(p - norm), norm);
            else {
                *host = download_host_errno(saved);
                err_set(err, errlen, "directory '%s': open '%.*s': %s", directory, (int)(p - norm),
                        norm, strerror(saved));
            }
            goto fail;
        }
        close(cur);
        cur = next;
        if (*p == '/') p++;
    }
    return cur;

fail:
    close(cur);
    return -1;
}

int download_open_dir(const char *root, const char *directory, char *err, size_t errlen)
{
    char norm[PATH_MAX];
    char msg[512];
    int host;
    int fd = -1;

    if (normalise_dir(directory, norm, sizeof(norm), msg, sizeof(msg)) == 0)
        fd = open_dir(root, directory, norm, 1, &host, msg, sizeof(msg));
    if (fd < 0) err_prefix(err, errlen, "download_open_dir", msg);
    return fd;
}

int download_check_target(const char *root, const char *directory, char *err, size_t errlen)
{
    char norm[PATH_MAX];
    int host, fd;

    if (normalise_dir(directory, norm, sizeof norm, err, errlen) != 0) return -1;
    fd = open_dir(root, directory, norm, 0, &host, err, errlen);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

/* The message of download_filename without a function prefix. The link is parsed by
 * libcurl (http_url_parse), so the name comes from the very path curl will request: dot
 * segments resolved, without query or fragment, userinfo and IPv6 hosts understood as curl
 * understands them. What libcurl does not check is cq's to check: that the last segment is
 * a safe file name once decoded (UTF-8 text, no '/', '\\', control character, C1 ones
 * included, "." or ".."; at most NAME_MAX bytes), and that its percent-encoding is well
 * formed (curl decodes "%zz" as itself). */
static int filename_of(const char *url, char *name, size_t namelen, char *err, size_t errlen)
{
    char *path, *dec = NULL;
    const char *seg;
    size_t slen, i, clen;
    int dlen = 0, rc = -1;

    if (http_url_parse(url, &path, err, errlen) < 0) return -1;
    seg = strrchr(path, '/');
    seg = seg != NULL ? seg + 1 : path;
    slen = strlen(seg);
    for (i = 0; i < slen; i++) {
        if (seg[i] != '%') continue;
        if (i + 2 >= slen || !isxdigit((unsigned char)seg[i + 1]) ||
            !isxdigit((unsigned char)seg[i + 2])) {
            err_set(err, errlen, "%s: malformed percent-encoding in the file name", url);
            goto done;
        }
    }
    if (slen == 0) {
        err_set(err, errlen, "%s: the link has no file name", url);
        goto done;
    }
    dec = xcheck(curl_easy_unescape(NULL, seg, (int)slen, &dlen), "a file name");
    /* UTF-8 text, character by character: a name that is not (%FF) would be one thing on disk
     * and another in the job's result and every line that shows it (as '?' or \xff), and a
     * C1 control (U+0080-U+009F, %C2%85) is a control as the C0 ones are. */
    for (i = 0; i < (size_t)dlen; i += clen) {
        unsigned char c = (unsigned char)dec[i];

        clen = utf8_char((const unsigned char *)dec + i, (size_t)dlen - i);
        if (clen == 0) {
            err_set(err, errlen, "%s: the file name is not UTF-8 text", url);
            goto done;
        }
        if (c == '\0' || is_ctl(c) || (c == 0xC2 && (unsigned char)dec[i + 1] < 0xA0)) {
            err_set(err, errlen, "%s: the file name contains a control character", url);
            goto done;
        }
        if (c == '/' || c == '\\') {
            err_set(err, errlen, "%s: the file name contains '%c'", url, c);
            goto done;
        }
    }
    if (dlen > NAME_MAX) {
        err_set(err, errlen, "%s: the file name is longer than %d bytes", url, NAME_MAX);
    } else if ((size_t)dlen + 1 > namelen) {
        err_set(err, errlen, "%s: the file name does not fit in %zu bytes", url, namelen);
    } else if (strcmp(dec, ".") == 0 || strcmp(dec, "..") == 0) {
        err_set(err, errlen, "%s: '%s' is not a file name", url, dec);
    } else {
        memcpy(name, dec, (size_t)dlen + 1);
        rc = 0;
    }
done:
    curl_free(dec);
    curl_free(path);
    return rc;
}

int download_host_errno(int e)
{
    switch (e) {
    case EROFS:
    case ENOSPC:
    case EDQUOT:
    case EIO:
    case EMFILE:
    case ENFILE:
    case ENOMEM: return 1;
    default: return 0;
    }
}

int download_check_root(const char *root, char *err, size_t errlen)
{
    char path[PATH_MAX], probe[PATH_MAX];
    struct stat st;
    size_t i, len = strlen(root);
    int fd;

    if (len == 0 || len >= sizeof(path) - 64) {
        err_set(err, errlen, "'%s': %s", root, len ? "path too long" : "empty path");
        return -1;
    }
    memcpy(path, root, len + 1);
    /* mkdir -p: each missing component in turn, so that the error names the one that
     * cannot be made. */
    for (i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        path[i] = '\0';
        if (stat(path, &st) != 0) {
            if (errno != ENOENT || mkdir(path, 0755) != 0) {
                if (errno == EEXIST) goto next; /* made by someone else meanwhile */
                err_set(err, errlen, "cannot make '%s': %s", path, strerror(errno));
                return -1;
            }
        } else if (!S_ISDIR(st.st_mode)) {
            err_set(err, errlen, "'%s' is %s, not a directory", path,
                    S_ISREG(st.st_mode) ? "a regular file" : "not a directory either");
            return -1;
        }
    next:
        if (i < len) path[i] = '/';
    }
    /* Writable: a file made and written (access(W_OK) says yes to root on a read-only
     * mount's files, and nothing about a full disk). Unnamed where the filesystem allows,
     * so that a worker killed right now leaves nothing behind; else named, and removed. */
    probe[0] = '\0';
    fd = open(root, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        snprintf(probe, sizeof(probe), "%s/.cq-probe-%ld.tmp", root, (long)getpid());
        fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
    if (fd < 0 || write(fd, "cq", 2) != 2 || fsync(fd) != 0) {
        int saved = errno;
        if (fd >= 0) close(fd);
        if (fd >= 0 && probe[0]) unlink(probe);
        err_set(err, errlen, "'%s' is not writable: %s", root, strerror(saved));
        return -1;
    }
    close(fd);
    if (probe[0]) unlink(probe);
    return 0;
}

int download_filename(const char *url, char *name, size_t namelen, char *err, size_t errlen)
{
    char msg[512];

    if (filename_of(url, name, namelen, msg, sizeof(msg)) < 0) {
        err_prefix(err, errlen, "download_filename", msg);
        return -1;
    }
    return 0;
}

/* ".<name>.cq-<pid>-<random>.tmp": hidden, so a directory listing or a glob for "*.jpg" does
 * not pick it up, and unique across processes and threads. */
static void tmp_name(char *buf, size_t len, const char *name)
{
    uint64_t r;

    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        static unsigned counter; /* only when getrandom fails; uniqueness still comes from O_EXCL */
        r = (uint64_t)time_mono_ms() ^
            ((uint64_t)__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) << 40);
    }
    snprintf(buf, len, ".%.*s.cq-%ld-%016llx.tmp", TMP_NAME_KEEP, name, (long)getpid(),
             (unsigned long long)r);
}

/* An unnamed file in dirfd. Built with CQ_DOWNLOAD_NO_TMPFILE (one of the tests is) this
 * behaves as on a filesystem without O_TMPFILE, so that the named fallback is tested too. */
static int open_unnamed(int dirfd)
{
#ifdef CQ_DOWNLOAD_NO_TMPFILE
    (void)dirfd;
    errno = EOPNOTSUPP;
    return -1;
#else
    return openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
#endif
}

/* Give the O_TMPFILE fd the name `as` in dirfd, which must not exist. Returns 0 or -1 with
 * errno set (EEXIST: the name is taken). */
static int link_fd(int fd, int dirfd, const char *as)
{
    char proc[64];

    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, dirfd, as, AT_SYMLINK_FOLLOW) == 0) return 0;
    /* No /proc in this mount namespace: AT_EMPTY_PATH does the same but needs
     * CAP_DAC_READ_SEARCH, which is why it is only the second choice. */
    if (errno == ENOENT && linkat(fd, "", dirfd, as, AT_EMPTY_PATH) == 0) return 0;
    return -1;
}

/* Give the O_TMPFILE fd a hidden name in dirfd. Returns 0 or -1 with errno set. */
static int link_tmpfile(int fd, int dirfd, const char *name, char *tmp, size_t tmplen)
{
    for (int tries = 0; tries < 5; tries++) {
        tmp_name(tmp, tmplen, name);
        if (link_fd(fd, dirfd, tmp) == 0) return 0;
        if (errno != EEXIST) return -1;
    }
    return -1;
}

/* Close what a prepared download holds; a temporary file that has a name (the fallback, or
 * a link made before a failed rename) is removed. Safe to call twice. */
static void release(struct download *d)
{
    if (d->fd >= 0) close(d->fd);
    if (d->dirfd >= 0 && d->named && d->tmp[0] != '\0') unlinkat(d->dirfd, d->tmp, 0);
    if (d->dirfd >= 0) close(d->dirfd);
    d->fd = -1;
    d->dirfd = -1;
    free(d->path);
    d->path = NULL;
}

/* Everything before the first byte is fetched: the name, the directory, the temporary file.
 * On failure returns -1 with a message (without prefix) in msg and nothing left open.
 *
 * The normalised directory is built in d->path (never longer than the job's spelling of it),
 * which then becomes "<directory>/<name>": no path-sized array in a frame, since this runs
 * on every executor thread of cworker, where such a frame pushes what runs below it (all of
 * libcurl's transfer) a page deeper on each thread. */
static int prepare(struct download *d, const char *root, const char *directory, const char *link,
                   char *msg, size_t msglen)
{
    size_t cap, len;

    d->dirfd = -1;
    d->fd = -1;
    d->named = 0;
    d->link = link;
    d->path = NULL;
    d->tmp[0] = '\0';
    d->host = 0;
    /* Every check that can refuse the job comes before anything is made on disk. */
    if (filename_of(link, d->name, sizeof(d->name), msg, msglen) < 0) return -1;
    cap = directory != NULL ? strlen(directory) + 1 : 1;
    if (cap > DOWNLOAD_PATH_MAX) cap = DOWNLOAD_PATH_MAX;
    d->path = xmalloc(cap + 1 + strlen(d->name));
    if (normalise_dir(directory, d->path, cap, msg, msglen) < 0) goto fail;
    len = strlen(d->path);
    if (len + 1 + strlen(d->name) + 1 > DOWNLOAD_PATH_MAX) {
        err_set(msg, msglen, "directory '%s': path too long", directory);
        goto fail;
    }
    d->dirfd = open_dir(root, directory, d->path, 1, &d->host, msg, msglen);
    if (d->dirfd < 0) goto fail;

    d->fd = open_unnamed(d->dirfd);
    if (d->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        for (int tries = 0; tries < 5 && d->fd < 0; tries++) {
            tmp_name(d->tmp, sizeof(d->tmp), d->name);
            d->fd = openat(d->dirfd, d->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                           0644);
            if (d->fd < 0 && errno != EEXIST) break;
        }
        d->named = d->fd >= 0;
    }
    if (d->fd < 0) {
        /* No permission in the root itself is the host's doing; in a directory a job
         * named, it may be that directory's (someone made it read-only), so not. */
        d->host = download_host_errno(errno) || (len == 0 && (errno == EACCES || errno == EPERM));
        err_set(msg, msglen, "%s: temporary file in '%s': %s", link, len > 0 ? d->path : ".",
                strerror(errno));
        d->tmp[0] = '\0'; /* nothing was created, nothing to remove */
        goto fail;
    }
    if (len > 0) d->path[len++] = '/';
    memcpy(d->path + len, d->name, strlen(d->name) + 1);
    return 0;

fail:
    release(d);
    return -1;
}

/* The body is complete and 2xx: put the file in place under its final name and fill
 * res->path. Releases d either way. Returns 0, or -1 with err set. */
static int commit(struct download *d, struct download_result *res, char *err, size_t errlen)
{
    /* fsync before the rename: without it a power loss shortly after could leave the final
     * name pointing at an empty or partly written file (delayed allocation), which is exactly
     * what the rename is meant to rule out. One flush per file is small next to a network
     * download. The directory itself is not fsynced: after a crash the file may be missing,
     * which a retry repairs, but it is never half there. */
    if (fsync(d->fd) < 0) {
        res->host = download_host_errno(errno);
        err_set(err, errlen, "download_link: %s: fsync: %s", d->link, strerror(errno));
        goto fail;
    }
    /* Where the final name is free, the file is linked there at once: no temporary name ever
     * exists, so a worker killed at any point leaves the whole file or none. Only a file
     * replaced goes through a hidden name and a rename. */
    if (!d->named && link_fd(d->fd, d->dirfd, d->name) == 0) goto placed;
    if (!d->named &&
        (errno != EEXIST || link_tmpfile(d->fd, d->dirfd, d->name, d->tmp, sizeof(d->tmp)) < 0)) {
        res->host = download_host_errno(errno);
        err_set(err, errlen, "download_link: %s: linkat: %s", d->link, strerror(errno));
        d->tmp[0] = '\0'; /* nothing was linked, nothing to remove */
        goto fail;
    }
    d->named = 1;
    if (renameat(d->dirfd, d->tmp, d->dirfd, d->name) < 0) {
        res->host = download_host_errno(errno);
        err_set(err, errlen, "download_link: %s: rename to '%s': %s", d->link, d->name,
                strerror(errno));
        goto fail;
    }
placed:
    d->named = 0;        /* the name is the final one now: keep it */
    res->path = d->path; /* handed over: release() must not free it */
    d->path = NULL;
    release(d);
    return 0;

fail:
    release(d);
    return -1;
}

void download_result_free(struct download_result *res)
{
    if (res == NULL) return;
    free(res->path);
    res->path = NULL;
}

int download_begin(struct download *d, struct http *h, const char *root, const char *directory,
                   const char *link, const struct http_limits *lim, char *err, size_t errlen)
{
    /* The helpers write their message right after the prefix in err. A message buffer in
     * this frame would sit above the deepest call of an executor's job (prepare's URL parse,
     * 6.5 KB of libcurl's stack) and take most of the page left to spare on each thread. */
    static const char prefix[] = "download_link: ";
    size_t n = errlen > sizeof prefix ? sizeof prefix - 1 : 0;
    char *msg = err + n;

    memcpy(err, prefix, n);
    if (prepare(d, root, directory, link, msg, errlen - n) < 0) return -1;
    if (http_setup_fd_transfer(h, link, d->fd, lim, msg, errlen - n) < 0) {
        release(d);
        return -1;
    }
    err[0] = '\0';
    return 0;
}

int download_end(struct download *d, struct http *h, CURLcode rc, struct download_result *res,
                 char *err, size_t errlen)
{
    char msg[1024];
    struct http_result hres;

    memset(res, 0, sizeof(*res));
    if (http_finish_fd_transfer(h, rc, &hres, msg, sizeof(msg)) < 0) {
        res->status = hres.status;
        res->bytes = hres.bytes;
        res->transient = hres.transient;
        res->retry_after = hres.retry_after;
        res->host = hres.write_errno != 0 && download_host_errno(hres.write_errno);
        err_prefix(err, errlen, "download_link", msg);
        release(d);
        return -1;
    }
    res->status = hres.status;
    res->bytes = hres.bytes;
    return commit(d, res, err, errlen);
}

int download_link(struct http *h, const char *root, const char *directory, const char *link,
                  const struct http_limits *lim, struct download_result *res, char *err,
                  size_t errlen)
{
    struct download d;

    memset(res, 0, sizeof(*res));
    if (download_begin(&d, h, root, directory, link, lim, err, errlen) < 0) {
        res->host = d.host;
        return -1;
    }
    return download_end(&d, h, http_perform(h), res, err, errlen);
}
