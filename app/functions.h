/* functions.h - the lesson's job functions (download_link), registered into a cq registry
 * through the public API, as a plugin would register its own. */
#ifndef CQ_APP_FUNCTIONS_H
#define CQ_APP_FUNCTIONS_H

#include <cq/cq.h>
#include "http.h"

/* Register download_link into reg. lim (copied) caps every download; a job's own timeout
 * replaces lim->timeout. Call http_global_init first. Returns 0, or -1 with
 * cq_registry_error(reg). */
int app_register(cq_registry *reg, const struct http_limits *lim);

#endif
