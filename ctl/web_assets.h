/* web_assets.h - the dashboard's page, script, style sheet and icon, compiled into cqctl from
 * ctl/web/ at build time (ctl/web/embed.cmake writes web_assets.c in the build tree). */
#ifndef CQ_WEB_ASSETS_H
#define CQ_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
    const char *path; /* "/" for index.html, else "/NAME" */
    const char *type; /* its Content-Type */
    const unsigned char *data;
    size_t len;
};

extern const struct web_asset web_assets[];
extern const size_t web_nassets;

#endif
