/* fuzz_download_filename.c - link-to-file-name derivation (app/download.c):
 * download_filename on any string, called only through its public function so that the
 * target holds whatever parses the URL inside.
 *
 * What must hold:
 *   - a name is only derived from an http or https link;
 *   - the name is one plain file name: not empty, at most NAME_MAX bytes, no '/', no '\',
 *     no control byte, not "." or "..": it cannot leave the job's directory;
 *   - a failure is one line starting "download_filename: ", without control bytes (the
 *     link is a job's, and the line goes to logs);
 *   - a buffer too small for the name is refused, never overrun: with a buffer of k bytes
 *     (made exactly that size, so that ASan sees a byte more) the call succeeds, with the
 *     same name, exactly when the name is shorter than k. */
#include <limits.h>
#include <strings.h>

#include "download.h"
#include "fuzz.h"

static void check_error(const char *err)
{
    FUZZ_CHECK(strncmp(err, "download_filename: ", 19) == 0 && !fuzz_has_ctl(err),
               "error line [%s]", err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = fuzz_cstring(data, size);
    char name[NAME_MAX + 1], err[1024] = "";
    size_t small = 1 + size % 40, n;
    char *buf;
    int rc, rc_small;

    rc = download_filename(url, name, sizeof name, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(rc == -1, "returned %d", rc);
        check_error(err);
    } else {
        n = strlen(name);
        FUZZ_CHECK(strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0,
                   "a name from %s", url);
        FUZZ_CHECK(n >= 1 && n <= NAME_MAX, "name of %zu bytes", n);
        FUZZ_CHECK(strchr(name, '/') == NULL && strchr(name, '\\') == NULL, "name [%s]", name);
        FUZZ_CHECK(!fuzz_has_ctl(name), "name with a control byte from %s", url);
        FUZZ_CHECK(strcmp(name, ".") != 0 && strcmp(name, "..") != 0, "name [%s]", name);
    }

    buf = malloc(small);
    if (buf == NULL) abort();
    rc_small = download_filename(url, buf, small, err, sizeof err);
    if (rc == 0 && strlen(name) < small) {
        FUZZ_CHECK(rc_small == 0 && strcmp(buf, name) == 0, "[%s] in %zu bytes", name, small);
    } else {
        FUZZ_CHECK(rc_small == -1, "a name that does not fit fitted in %zu bytes", small);
        check_error(err);
    }
    free(buf);
    free(url);
    return 0;
}
