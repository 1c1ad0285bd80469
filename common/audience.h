/* audience.h - whom libcq's advice speaks to. A message that says what to change names what
 * its reader can change, and that depends on the program libcq runs in:
 *
 *   a program that links libcq (the default) has cq_worker_set's settings ("the burst
 *     setting") and the environment's variables ($CQ_TLS_CA, $CQ_REDIS_URL);
 *   cq's own commands (cworker, cenqueue, cproducer, cqctl) have their command-line options
 *     (--burst, --tls-ca, -u), which they hand to libcq through those very settings and
 *     variables, so that libcq cannot tell them apart by itself.
 *
 * The commands say which they are once, from cli_begin (cli.h), before they start a thread.
 * cworker, cenqueue and cproducer link libcq.so, which exports only cq_ names, so the one
 * call they make is exported, as cq_private_set_audience: in libcq.map's CQ_PRIVATE node,
 * not cq.h's API, for cq's programs built from the same tree. */
#ifndef CQ_AUDIENCE_H
#define CQ_AUDIENCE_H

enum { AUDIENCE_PROGRAM = 0, AUDIENCE_COMMANDS };

/* Whom this process's messages speak to from now on: AUDIENCE_PROGRAM or
 * AUDIENCE_COMMANDS. */
void cq_private_set_audience(int audience);

/* to_commands for cq's commands ("--burst"), else to_programs ("the burst setting"). */
const char *audience_pick(const char *to_commands, const char *to_programs);

#endif
