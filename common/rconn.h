/* rconn.h - one connection to Redis, from a redis:// URL, with reconnection.
 *
 * URL forms: redis://[[user]:pass@]host[:port][/db], unix:///path/to.sock[?db=N],
 *   rediss://... as redis:// over TLS (tls.h: the CA, certificate and key files come from
 *     $CQ_TLS_CA, $CQ_TLS_CERT, $CQ_TLS_KEY, which the commands' --tls-* options set), and
 *   redis+sentinel://[[user]:pass@]host[:port][,host[:port]...]/MASTER[/db]: the sentinels
 *     (port 26379 by default) are asked for MASTER's primary at each connection, and ROLE
 *     must say "master"; a READONLY reply (a primary demoted by a failover) closes the
 *     connection so that the next use asks again. The user and password are the data
 *     nodes'; the sentinels are asked without.
 * Every TCP form takes ?replicas=N: queue.c then follows its writes (enqueues, outcomes)
 * with WAIT for N replicas, which bounds what a failover can lose (docs/OPERATIONS.md).
 * Connecting runs AUTH (with a user name for ACL users) and SELECT as the URL asks.
 * hiredis 0.14 has no redisConnectWithOptions, and its redisConnectWithTimeout fails a connect
 * that a signal interrupts: the socket is connected here (tls.h, tls_tcp_connect) and handed
 * to redisConnectFd, with read/write timeouts and TCP keepalive set on the result (rediss://
 * as redis://: 15 s idle, probes every 5 s, 3 of them). The timeout bounds each stall of a
 * command's send or of its reply, not the whole command: a large one that Redis reads slowly
 * but steadily takes as long as it takes.
 */
#ifndef CQ_RCONN_H
#define CQ_RCONN_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#define RCONN_SENTINELS_MAX 8

struct rconn_node {
    char host[256];
    int port;
};

struct rconn_url {
    char host[256];
    int port;
    char unix_path[256]; /* non-empty for unix:// URLs */
    char user[128];
    char pass[256];
    int db;
    int tls;                                          /* rediss:// */
    char tls_ca[512], tls_cert[512], tls_key[512];    /* $CQ_TLS_CA, ... ("": none) */
    struct rconn_node sentinels[RCONN_SENTINELS_MAX]; /* redis+sentinel:// */
    int nsentinels;
    char master[128];  /* the name the sentinels know the primary by */
    int wait_replicas; /* ?replicas=N: enqueues and outcomes WAIT for N replicas */
    int origin;        /* where the URL came from, for the advice of messages: RCONN_URL_* */
};

/* The URL given by the program (an option, a setting, cq_client_new's argument), or from
 * $CQ_REDIS_URL, or the default: what a message tells to change. */
enum { RCONN_URL_GIVEN = 0, RCONN_URL_ENV, RCONN_URL_DEFAULT };

struct tls_session;

struct rconn {
    redisContext *ctx; /* NULL while disconnected */
    struct rconn_url url;
    double timeout;            /* connect and command timeout in seconds (a stall of a send or
                                * of a reply, not a whole command); 0 = none for commands */
    char errstr[512];          /* the last error, one line */
    int lost;                  /* errstr is that of a connection that was open and is lost
                                * (Redis stopped, restarted or closed it), which says that
                                * the next command opens it again: a caller that reconnects
                                * need not say so. 0 for any other error: a connection that
                                * could not be made, a time-out, a primary demoted */
    char cause[200];           /* what errstr says went wrong, without where or the fix */
    struct rconn_node primary; /* redis+sentinel://: the primary connected to, for messages */
    struct tls_session *tls;   /* rediss://: the session under ctx (tls.h), or NULL */
    unsigned long connects;    /* successful connections so far: a new one is a new client */
    unsigned scripts;          /* bits: scripts Redis has cached, as far as this connection
                                * knows (rconn_script_head sends those with EVALSHA); 0 on
                                * each connect and after a NOSCRIPT reply */
    int evalsha_refused;       /* the user's ACL refused EVALSHA: every script call goes as
                                * EVAL with its body; 0 on each connect */
    unsigned want_module;      /* set by the caller: RCONN_MODULE_* bits, asked at each
                                * connect (rconn_module_append asks for another group
                                * where a caller needs it) */
    unsigned module;           /* the bits of cq's module (module/cqmodule.c) this Redis has
                                * and this user may run: queue.c sends those commands instead
                                * of the scripts (or the enqueue transaction) */
    unsigned module_asked;     /* the bits asked on this connection */
    int pipe_ignored;          /* SIGPIPE ignored by the process when it connected: writes
                                * need no hold (util.h, sigpipe_hold) */
    int explicit_connect;      /* set by the caller: a closed connection is not opened again
                                * by the next command (which fails, "not connected"), only by
                                * rconn_connect: for one whose state a new connection would
                                * lack (a waiter's subscriptions, client.c) */
};

/* The commands of cq's Redis module, in groups asked for together. */
#define RCONN_MODULE_WORKER  1u /* CQ.APPLY1 and CQ.TAKE1 */
#define RCONN_MODULE_ENQUEUE 2u /* CQ.ENQUEUE1 */

/* Whether this Redis has the module commands of group bit and this user may run them, asked
 * in a pipeline, for a group of one command (RCONN_MODULE_ENQUEUE: queue.c's enqueue asks it
 * once a connection, where module_asked lacks it), so that it costs no round trip of its
 * own: rconn_module_append sends it with what is appended next, and rconn_module_read reads
 * its reply in its place among theirs and keeps a yes or a no in module_asked and module (an
 * answer not known yet, LOADING say, is asked again). Each returns 0, or -1 where the
 * connection failed. */
int rconn_module_append(struct rconn *r, unsigned bit);
int rconn_module_read(struct rconn *r, unsigned bit);

/* Ask again, on this connection, the groups of want_module that its connect did not settle:
 * the question got LOADING, say, and Redis had loaded by the command after it, which went
 * in (a worker's registration); asked once more, the module is used from there, where its
 * calls went as the scripts for the connection's life. A round trip a group, only for one
 * unsettled; not while replies are awaited. 0, or -1 where the connection failed. */
int rconn_module_settle(struct rconn *r);

/* The RCONN_MODULE_* groups an error reply says this connection may no longer use: an
 * unknown command of cq's module (MODULE UNLOAD), all of them; a NOPERM for one of its
 * commands (an ACL changed), that one's group; 0 for any other error. */
unsigned rconn_module_refused(const char *err);

/* An error line about Redis: "[context: ]redis HOST:PORT: MSG; FIX", where FIX is what to
 * do about the usual errors (a Redis that is not running, a missing or wrong password, an
 * ACL refusal, maxmemory, a replica) and absent otherwise. msg is a reply's error text or a
 * connection error; context may be NULL. */
void rconn_error(const struct rconn *r, const char *context, const char *msg, char *err,
                 size_t errlen);

/* Where r connects, as its error lines name it: "HOST:PORT", the socket's path, or
 * "HOST:PORT (primary of MASTER)" through sentinels. Returns buf. */
const char *rconn_where(const struct rconn *r, char *buf, size_t len);

/* Parse url into out. Returns 0/-1 with err naming the URL and what is wrong with it. */
int rconn_parse_url(const char *url, struct rconn_url *out, char *err, size_t errlen);

/* The URL when none is given and $CQ_REDIS_URL is not set; the one place it is written
 * (cli.c's checks and every --help say it from here). */
#define RCONN_DEFAULT_URL "redis://127.0.0.1:6379"
/* Where to connect: the URL given, else $CQ_REDIS_URL, else RCONN_DEFAULT_URL. */
const char *rconn_default_url(const char *given);

/* rconn_parse_url of rconn_default_url(given); an error from $CQ_REDIS_URL names the
 * variable, since the user gave no URL. */
int rconn_parse_default_url(const char *given, struct rconn_url *out, char *err, size_t errlen);

/* Prepare r (not connected yet). */
void rconn_init(struct rconn *r, const struct rconn_url *url, double timeout);

/* Connect (or reconnect, closing any old context). Returns 0, or -1 with r->errstr set to
 * e.g. "redis 127.0.0.1:6379: Connection refused". */
int rconn_connect(struct rconn *r);

void rconn_close(struct rconn *r);

/* Close the connection when Redis has closed it already (an end of file or a reset waits
 * on the socket: Redis restarted, CLIENT KILL, its timeout), so that the next command
 * connects afresh instead of failing once. For a connection that sat idle, in a pool; a
 * reply waiting unread is left alone. One non-blocking peek, no round trip. */
void rconn_drop_if_closed(struct rconn *r);

/* Run one command (argv form; lens NULL: each argv[i] is a C string). Returns the reply,
 * which the caller frees with freeReplyObject, or NULL on an I/O error: then r->errstr is set
 * and the connection is closed (r->ctx == NULL), so that the next call reconnects first. An
 * error *reply* from Redis is returned as a reply of type REDIS_REPLY_ERROR. */
redisReply *rconn_command(struct rconn *r, int argc, const char **argv, const size_t *lens);

/* Like rconn_command but printf-style (hiredis format). */
redisReply *rconn_commandf(struct rconn *r, const char *fmt, ...);

/* Pipelining: append commands, then read exactly as many replies. Append never does I/O
 * but to reconnect (never with explicit_connect set: it fails instead).
 * rconn_read returns NULL on an I/O error (connection closed as above). rconn_append takes
 * lens as rconn_command does. */
int rconn_append(struct rconn *r, int argc, const char **argv, const size_t *lens);
int rconn_appendf(struct rconn *r, const char *fmt, ...);
redisReply *rconn_read(struct rconn *r);

/* Many commands formatted in RESP into one buffer, handed to the connection at once: a
 * producer's chunk of a thousand commands costs one append, not one per command. A command
 * is rconn_buf_array(b, argc) followed by argc rconn_buf_arg. A zeroed struct is empty. */
struct rconn_buf {
    char *data;
    size_t len, cap;
};
void rconn_buf_array(struct rconn_buf *b, size_t argc);
void rconn_buf_arg(struct rconn_buf *b, const char *s, size_t len);
void rconn_buf_str(struct rconn_buf *b, const char *s);
/* n bytes already in RESP (say, arguments formatted once into another rconn_buf). */
void rconn_buf_raw(struct rconn_buf *b, const char *s, size_t n);
/* Append b's commands (no I/O, as rconn_append) and empty b. 0, or -1 as rconn_append; b is
 * emptied then too, so that commands that did not go are not sent with the next ones. */
int rconn_append_buf(struct rconn *r, struct rconn_buf *b);
void rconn_buf_free(struct rconn_buf *b);

/* A Lua script that goes as EVAL with its body the first time on a connection and as EVALSHA
 * after that, so that Redis neither receives nor hashes the body at every call (queue.c's
 * are up to 6 KB, admin.c's requeue is sent once a job): a new connection (a restart, a
 * failover) starts with EVAL again, and a NOSCRIPT reply (SCRIPT FLUSH) makes the next call
 * of every script on that connection send its body again; an EVALSHA refused by the user's
 * ACL (a user made for EVAL alone), every call on that connection. Such a call did not run:
 * its caller sends it again (queue.c's by their callers' retries, admin.c's at once).
 * One static struct a script, RCONN_SCRIPT(body); its SHA-1 and its bit of rconn.scripts are
 * set at its first call, once a process, from any thread. */
struct rconn_script {
    const char *body;
    int ready;    /* sha and bit set (read and written atomically) */
    unsigned bit; /* its bit of rconn.scripts */
    char sha[41]; /* the SHA-1 of body, hex, as EVALSHA takes it */
};
#define RCONN_SCRIPT(body) \
    {                      \
        (body), 0, 0, ""   \
    }

/* The first two arguments of a call of s on r into head: "EVALSHA" and the SHA-1 when r has
 * sent the body since it connected (or since its last NOSCRIPT) and may send EVALSHA, else
 * "EVAL" and the body, after which it has. The caller sends numkeys and the rest after them. */
void rconn_script_head(struct rconn *r, struct rconn_script *s, const char *head[2]);

/* Whether rep refuses a script call that did not run and goes again with its body, once r
 * has read it: NOSCRIPT, or EVALSHA not allowed by the user's ACL. */
int rconn_script_again(const redisReply *rep);

/* Send what has been appended now, without reading: the server starts on it while the
 * caller prepares more. Blocks while the socket's buffers are full. 0, or -1 on an I/O error
 * (connection closed, errstr set, as above). */
int rconn_flush(struct rconn *r);

/* Wait up to seconds (0: only what has arrived) for one reply, after sending whatever was
 * appended: for a connection that waits longer than its command timeout, as one in subscribe
 * mode does. Returns 1 with *out (free it with freeReplyObject), 0 when none came in time
 * (the connection stays usable: a reply read in part stays buffered), or -1 on an I/O error
 * (connection closed, errstr set, as above). */
int rconn_read_timed(struct rconn *r, double seconds, redisReply **out);
/* Wait up to timeout_ms for the next reply of a pipeline sent (rconn_flush) and not read yet,
 * or for other (a file descriptor, -1 for none) to become readable, whichever comes first;
 * nothing is read. 1 when bytes of the reply are there (in hiredis's buffer or on the
 * socket: the rest of a reply read in part may still be on its way), or the connection is
 * closed or failed (the read says so); else 0. */
int rconn_poll(struct rconn *r, int other, int timeout_ms);

/* Whether any of ids (client ids as CLIENT ID gives them, separated by commas: a worker's
 * registered connections) has a line in list, the text of CLIENT LIST ("id=N " starts each
 * line): 1 when one has, else 0. A worker none of whose connections is listed has died. */
int rconn_clients_listed(const char *list, const char *ids);

#endif
