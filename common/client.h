/* client.h - what libcq's own tests reach of client.c, whose API is cq.h's cq_client_*,
 * cq_enqueue, cq_status_* and cq_wait*. Not installed, and not exported by libcq.so
 * (libcq.map): the tests link libcq.a. */
#ifndef CQ_CLIENT_H
#define CQ_CLIENT_H

/* Seconds of silence after which a waiter reads the statuses it awaits again (30, as cq.h
 * says): a seam for tests (tests/test_wait.c sees that read after a few seconds rather than
 * half a minute). Set it before a wait starts, never during one. */
extern double client_wait_recheck;

/* Called, where set, as a wait is about to read the replies pending on its connection, after
 * a status read found a job without a hash (client.c, read_pending): a seam for tests
 * (tests/test_wait.c has the connection killed just there, where h25's review needed gdb).
 * NULL but in tests; set it before a wait starts, never during one. */
extern void (*client_wait_pending_hook)(void);

#endif
