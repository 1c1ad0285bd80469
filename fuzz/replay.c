/* replay.c - the main of a fuzz target built without libFuzzer: runs the target's
 * LLVMFuzzerTestOneInput once on every file of its seed corpus and of its regressions (the
 * inputs that once crashed it), so that plain CTest, with any compiler and under ASan, checks
 * every one of them on every run.
 *
 *   replay_<target> CORPUS_DIR [REGRESS_DIR]
 *
 * CORPUS_DIR must hold at least one input; REGRESS_DIR may be missing (no crash found yet).
 * Files whose names start with '.' are not inputs. Each input is read into a buffer of
 * exactly its size, as libFuzzer hands it, so that a read past its end is seen by ASan. A
 * broken invariant aborts (fuzz.h) after the name of the input was printed. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Read path into a malloc'ed buffer of exactly its size (1 byte for an empty file, so that
 * the pointer is never NULL). Returns 0, or -1 after printing why. */
static int read_input(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    uint8_t *buf;

    if (f == NULL || fstat(fileno(f), &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        if (f != NULL) fclose(f);
        return -1;
    }
    buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (buf == NULL) abort();
    if (st.st_size > 0 && fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        fprintf(stderr, "replay: %s: short read\n", path);
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    *out = buf;
    *len = (size_t)st.st_size;
    return 0;
}

static int not_hidden(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Run every input in dir, in name order. Returns how many, or -1 on an error. */
static int replay_dir(const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, not_hidden, alphasort), i, ran = 0, failed = 0;

    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (i = 0; i < n; i++) {
        char path[4096];
        uint8_t *buf;
        size_t len;

        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (!failed && read_input(path, &buf, &len) == 0) {
            printf("replay: %s (%zu bytes)\n", path, len);
            fflush(stdout);
            LLVMFuzzerTestOneInput(buf, len);
            free(buf);
            ran++;
        } else {
            failed = 1;
        }
        free(names[i]);
    }
    free(names);
    return failed ? -1 : ran;
}

int main(int argc, char **argv)
{
    struct stat st;
    int corpus, regress = 0;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s CORPUS_DIR [REGRESS_DIR]\n", argv[0]);
        return 2;
    }
    corpus = replay_dir(argv[1]);
    if (corpus < 0) return 1;
    if (corpus == 0) {
        fprintf(stderr, "replay: %s: no inputs (the seed corpus is missing)\n", argv[1]);
        return 1;
    }
    if (argc == 3 && stat(argv[2], &st) == 0) regress = replay_dir(argv[2]);
    if (regress < 0) return 1;
    printf("replay: %d corpus inputs and %d regressions ran without a failed check\n", corpus,
           regress);
    return 0;
}
