/* download.h - the lesson's download_link(directory, link), made safe.
 *
 * download_link saves link as <root>/<directory>/<name>, where:
 *   - directory is relative and confined under root: absolute paths, "..", and symlinks
 *     that lead outside root are refused; missing directories are created (setup_download_dir);
 *   - name is the last segment of the URL's path (query and fragment dropped), percent-
 *     decoded; empty, ".", "..", names with '/' '\\' or control characters (C0, DEL, C1),
 *     names that are not UTF-8 text, or over NAME_MAX are
 *     refused;
 *   - the body goes to an unnamed temporary file in the same directory (O_TMPFILE, or a
 *     hidden named one where the filesystem lacks it) that is linked and renamed into place
 *     only when the transfer is complete with status 200 or 203 (a 206 is part of a file, a
 *     204 none: both fail for good), so a reader never sees half a file and a killed worker
 *     leaves nothing behind.
 *
 * download_link is download_begin + http_perform + download_end. A driver that runs many
 * transfers on one thread (cproducer --mode async) calls the same two halves around a curl
 * multi handle instead of http_perform, so both take the same checks and the same steps.
 */
#ifndef CQ_DOWNLOAD_H
#define CQ_DOWNLOAD_H

#include <limits.h>
#include <stddef.h>
#include "http.h"

#define DOWNLOAD_PATH_MAX 4096

/* What a download came to. path is allocated (download_result_free): the result is filled
 * on 64 threads at once in cworker, where a path-sized array in every caller's frame pushes
 * the transfer's own stack a page deeper on each thread. */
struct download_result {
    char *path; /* the file written, relative to root; NULL unless it succeeded */
    long long bytes;
    long status;        /* HTTP status, 0 when none */
    int transient;      /* a retry may help */
    int host;           /* the host failed, not the job: the disk is full or read-only, the
                         * root is not writable (download_host_errno); retry elsewhere */
    double retry_after; /* seconds the server asked to wait, 0 when it did not say */
};

/* root must be an existing directory (cworker --download-root). Returns 0 or -1 with err
 * set to a one-line message naming the link or directory and the cause. res is overwritten:
 * a path it held from an earlier call must be freed first. */
int download_link(struct http *h, const char *root, const char *directory, const char *link,
                  const struct http_limits *lim, struct download_result *res, char *err,
                  size_t errlen);

/* Free res->path (and set it to NULL); res itself is the caller's. */
void download_result_free(struct download_result *res);

/* One download between download_begin and download_end. The caller provides the storage
 * (a struct per transfer in flight); the fields belong to download.c. */
struct download {
    int dirfd;               /* the target directory */
    int fd;                  /* the temporary file the body is written to */
    int named;               /* 1: the temporary file has the name tmp */
    const char *link;        /* the caller's string, for messages */
    char *path;              /* the normalised directory and name, relative to root (owned) */
    char name[NAME_MAX + 1]; /* the final file name */
    char tmp[NAME_MAX + 1];  /* the hidden temporary name, when it has one */
    int host;                /* download_begin failed because of the host */
};

/* The first half of download_link: check the link, open (creating) the directory, create
 * the temporary file and set up h for the transfer into it (http_setup_fd_transfer). Then
 * run the transfer with http_perform(h), or through a multi handle with http_curl(h). On
 * -1 (err set as by download_link) nothing is left open and download_end must not be
 * called; on 0 it must, exactly once. link must stay valid until then. */
int download_begin(struct download *d, struct http *h, const char *root, const char *directory,
                   const char *link, const struct http_limits *lim, char *err, size_t errlen);

/* The second half: rc is how libcurl ended the transfer (http_perform's return or the
 * multi handle's msg->data.result; the handle must be out of the multi handle). Judges it
 * like download_link, then moves the file into place or removes it; res and the return
 * value are download_link's. Always releases what download_begin opened. */
int download_end(struct download *d, struct http *h, CURLcode rc, struct download_result *res,
                 char *err, size_t errlen);

/* Make root (and its missing parents) and check that it is a directory this process can
 * write a file in: cworker and cproducer --mode check it before the first job, so that a
 * misconfigured host refuses to start rather than fail every job. 0, or -1 with err saying
 * what is wrong with it ("'x' is a regular file, not a directory"). */
int download_check_root(const char *root, char *err, size_t errlen);

/* Whether directory is one download_link takes (relative, no '..', no control byte, no
 * component over NAME_MAX), before anything is made: 0, or -1 with err saying what is wrong
 * ("directory '../x' escapes the download root ('..')"), so that a producer refuses what
 * every job of it would fail on. */
int download_check_dir(const char *directory, char *err, size_t errlen);

/* Whether root/directory is a place download_link can write in, as far as it exists,
 * making nothing: directory as download_check_dir takes it, and each of its components that
 * exists a directory, not a symbolic link (download_link never follows one: a --dir that is
 * the user's own symlink fails every link). cproducer --mode checks it once before the
 * first link. 0, or -1 with err ("directory 'images' escapes the download root (symlink at
 * 'images')"). */
int download_check_target(const char *root, const char *directory, char *err, size_t errlen);

/* Whether a failed system call's errno is the host's fault rather than the job's: a full or
 * read-only disk, an I/O error, no file descriptors or memory left. A missing permission is
 * the host's only on the root itself (download_link decides that). */
int download_host_errno(int e);

/* Derive the file name from a URL (exposed for tests). Returns 0/-1. */
int download_filename(const char *url, char *name, size_t namelen, char *err, size_t errlen);

/* Open (creating as needed) directory under root, refusing escapes. Returns an O_DIRECTORY
 * fd, or -1 with err set. Exposed for tests. */
int download_open_dir(const char *root, const char *directory, char *err, size_t errlen);

#endif
