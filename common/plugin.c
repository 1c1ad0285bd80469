/* plugin.c - load plugins (see plugin.h and cq.h).
 *
 * A plugin is opened with RTLD_NOW, so that a symbol it needs and the worker lacks (a plugin
 * built for a later API) is an error at start, not a crash at its first job, and with
 * RTLD_LOCAL, so that two plugins' own symbols never clash. Its cq_ calls resolve against
 * libcq, which cworker links as a shared library. The version check reads a data symbol
 * before any of the plugin's code runs. And with RTLD_NODELETE: a plugin may start threads of
 * its own (a timer, a connection pool, an event loop for deferred jobs), which nothing stops
 * when the worker ends, so its code stays mapped until the process exits.
 */
#include "plugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

typedef int (*plugin_init_fn)(cq_registry *reg);

void *plugin_load(struct cq_registry *reg, const char *path, char *err, size_t errlen)
{
    const int *version;
    plugin_init_fn init;
    void *h, *sym;
    struct stat st;
    char *source, *full;
    const char *saved;
    int before = reg->n, rc;

    if (stat(path, &st) != 0) {
        err_set(err, errlen, "plugin %s: %s", path, strerror(errno));
        return NULL;
    }
    /* A bare name would make dlopen search the library path: say what was meant. */
    if (strchr(path, '/') == NULL) {
        err_set(err, errlen, "plugin %s: give a path (./%s)", path, path);
        return NULL;
    }
    h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (h == NULL) {
        const char *why = dlerror();
        err_set(err, errlen, "plugin %s: cannot load: %s", path, why ? why : "unknown error");
        return NULL;
    }
    sym = dlsym(h, "cq_plugin_api_version");
    if (sym == NULL) {
        err_set(err, errlen,
                "plugin %s: not a cq plugin (no cq_plugin_api_version symbol: "
                "build it with CQ_PLUGIN_DECLARE from <cq/cq.h>)",
                path);
        dlclose(h);
        return NULL;
    }
    version = sym;
    if (*version < CQ_API_VERSION_MIN || *version > CQ_API_VERSION) {
        err_set(err, errlen,
                "plugin %s: built for cq API version %d; this worker supports "
                "%d to %d (rebuild it against this cq's <cq/cq.h>)",
                path, *version, CQ_API_VERSION_MIN, CQ_API_VERSION);
        dlclose(h);
        return NULL;
    }
    sym = dlsym(h, "cq_plugin_init");
    if (sym == NULL) {
        err_set(err, errlen, "plugin %s: no cq_plugin_init function", path);
        dlclose(h);
        return NULL;
    }
    /* POSIX's way to turn a data pointer from dlsym into a function pointer. */
    memcpy(&init, &sym, sizeof init);
    /* The catalog names the file loaded, whatever directory the worker was started in. */
    full = realpath(path, NULL);
    source = xstrdup_printf("plugin %s", full != NULL ? full : path);
    free(full);
    saved = reg->source;
    registry_set_source(reg, source);
    reg->error[0] = '\0';
    rc = init(reg);
    registry_set_source(reg, saved);
    if (rc != 0 || reg->error[0] != '\0') {
        err_set(err, errlen, "plugin %s: %s", path,
                reg->error[0] ? reg->error
                              : "its cq_plugin_init returned -1 without a reason (the plugin "
                                "gives one with cq_plugin_fail)");
        /* Take back what it did register: its handlers are about to be unmapped. */
        while (reg->n > before) registry_drop_last(reg);
        free(source);
        dlclose(h);
        return NULL;
    }
    free(source);
    if (reg->n == before) {
        err_set(err, errlen, "plugin %s: registered no function", path);
        dlclose(h);
        return NULL;
    }
    return h;
}

void plugin_close(void *handle)
{
    if (handle != NULL) dlclose(handle);
}
