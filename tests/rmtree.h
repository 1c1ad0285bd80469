/* rmtree.h - remove a test's temporary directory and everything below it. */
#ifndef CQ_TEST_RMTREE_H
#define CQ_TEST_RMTREE_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static inline int rmtree_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Depth first, not following symbolic links; what cannot be removed stays. */
static inline void rmtree(const char *dir)
{
    nftw(dir, rmtree_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
