/* download.h - the lesson's download_link(directory, link), made safe.
 *
 * download_link saves link as <root>/<directory>/<name>, where:
 *   - directory is relative and confined under root: absolute paths, "..", and symlinks
 *     that lead outside root are refused; missing directories are created (setup_download_dir);
 *   - name is the last segment of the URL's path (query and fragment dropped), percent-
 *     decoded; empty, ".", "..", names with '/' '\\' or control bytes, or over NAME_MAX are
 *     refused;
 *   - the body goes to an unnamed temporary file in the same directory (O_TMPFILE, or a
 *     hidden named one where the filesystem lacks it) that is linked and renamed into place
 *     only when the transfer is complete with a 2xx status, so a reader never sees half a file
 *     and a killed worker leaves nothing behind.
 */
#ifndef CQ_DOWNLOAD_H
#define CQ_DOWNLOAD_H

#include <stddef.h>
#include "http.h"

struct download_result {
    char path[4096];      /* the file written, relative to root */
    long long bytes;
    long status;          /* HTTP status, 0 when none */
    int transient;        /* a retry may help */
    double retry_after;   /* seconds the server asked to wait, 0 when it did not say */
};

/* root must be an existing directory (cworker --download-root). Returns 0 or -1 with err
 * set to a one-line message naming the link or directory and the cause. */
int download_link(struct http *h, const char *root, const char *directory, const char *link,
                  const struct http_limits *lim, struct download_result *res,
                  char *err, size_t errlen);

/* Derive the file name from a URL (exposed for tests). Returns 0/-1. */
int download_filename(const char *url, char *name, size_t namelen, char *err, size_t errlen);

/* Open (creating as needed) directory under root, refusing escapes. Returns an O_DIRECTORY
 * fd, or -1 with err set. Exposed for tests. */
int download_open_dir(const char *root, const char *directory, char *err, size_t errlen);

#endif
