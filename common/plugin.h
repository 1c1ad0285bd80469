/* plugin.h - load shared objects that register functions (cworker --load; cq.h). */
#ifndef CQ_PLUGIN_H
#define CQ_PLUGIN_H

#include <stddef.h>
#include "registry.h"

/* dlopen path, check its API version, and call its cq_plugin_init with reg. Returns the
 * handle, or NULL with err (one line naming the file and the cause); on failure nothing it
 * registered stays in reg. */
void *plugin_load(struct cq_registry *reg, const char *path, char *err, size_t errlen);
void plugin_close(void *handle);

#endif
