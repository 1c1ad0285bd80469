/* declare.h - what the lesson's functions are (name, arguments, summary, retries, timeout),
 * apart from running them: a producer checks jobs against the declarations and so needs
 * neither the handlers nor libcurl, whose libraries took two thirds of cenqueue's start-up
 * (30 ms against 11 ms with libcq alone, here). */
#ifndef CQ_APP_DECLARE_H
#define CQ_APP_DECLARE_H

#include <cq/cq.h>

/* Add download_link to reg, run by fn (functions.c passes the real handler). Returns it, or
 * NULL with cq_registry_error(reg). */
cq_function *app_declare_download_link(cq_registry *reg, cq_handler fn, void *udata);

/* Declare the lesson's functions in a producer's registry, for checking jobs: a handler that
 * refuses stands in for each, since a producer runs none. Returns 0, or -1 with
 * cq_registry_error(reg). */
int app_declare(cq_registry *reg);

#endif
