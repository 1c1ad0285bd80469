/* declare.c - the lesson's functions as a producer knows them (see declare.h). */
#include "declare.h"

static int not_here(cq_job *job, void *udata)
{
    (void)udata;
    return cq_job_fail(job, CQ_PERMANENT, 0, "download_link runs in cworker, not in a producer");
}

cq_function *app_declare_download_link(cq_registry *reg, cq_handler fn, void *udata)
{
    cq_function *f = cq_function_add(reg, "download_link", "DIRECTORY LINK", fn, udata);

    if (f == NULL) return NULL;
    cq_function_set_summary(f,
                            "save LINK (http/https) as DIRECTORY/<name from the URL> under "
                            "the worker's --download-root");
    cq_function_set_retries(f, 3);
    cq_function_set_timeout(f, 60);
    cq_function_set_source(f, "builtin"); /* cq's own, though cworker adds it as programs do */
    return f;
}

int app_declare(cq_registry *reg)
{
    return app_declare_download_link(reg, not_here, NULL) != NULL ? 0 : -1;
}
