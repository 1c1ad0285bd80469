/* serve.h - cqctl serve: the dashboard, a web page and its JSON API over HTTP (libmicrohttpd),
 * on the same admin.c functions and the same documents (render.c) as cqctl's commands. */
#ifndef CQ_SERVE_H
#define CQ_SERVE_H

#include <stddef.h>

struct serve_options {
    const char *url, *prefix; /* Redis, as every cqctl command takes them (NULL: defaults) */
    const char *listen;       /* HOST:PORT, [V6]:PORT; port 0: any free port */
    const char *token;        /* NULL: no token */
    const char *token_from;   /* where token came from: "$CQ_DASHBOARD_TOKEN"; NULL: --token */
    int insecure;             /* serve a non-loopback address without a token */
    const char *origin;       /* a proxy's origin, "https://HOST[:PORT]", accepted besides the
                                 server's own; NULL: none */
    int log_level;            /* CQ_LOG_ERROR ... CQ_LOG_DEBUG */
    int log_json;             /* log lines as JSON objects (log.h) */
    double request_timeout;   /* seconds a connection has for a whole request, headers and
                                 body (SERVE_REQUEST_TIMEOUT) */
    double answer_timeout;    /* seconds it has to take an answer once made
                                 (SERVE_ANSWER_TIMEOUT) */
};

#define SERVE_LISTEN_DEFAULT "127.0.0.1:9181"
#define SERVE_TOKEN_MIN      16 /* characters */
/* The deadlines' defaults, and their range (a sweep once a second enforces them) */
#define SERVE_REQUEST_TIMEOUT 10.0
#define SERVE_ANSWER_TIMEOUT  30.0
#define SERVE_TIMEOUT_MIN     1.0
#define SERVE_TIMEOUT_MAX \
    60.0 /* libmicrohttpd's idle timeout closes a silent
                                            connection after 60 s whatever these say */
#define SERVE_TIMEOUT_RANGE_TEXT "1s to 60s"

/* The token's rule (SERVE_TOKEN_MIN or more characters of A-Z a-z 0-9 - _ . ~):
 * 0, or -1 with err naming from (NULL: "--token") and saying what is wrong. */
int serve_check_token(const char *token, const char *from, char *err, size_t errlen);

/* Serve until SIGINT or SIGTERM, then stop: every connection closed, every thread joined,
 * everything freed. Returns the exit status: 0 after a signal; 1 when the address cannot
 * be listened on; 2 when the options cannot be used (a malformed --listen, a non-loopback
 * address without --token or --insecure, a bad URL or prefix). Each failure is one line on
 * stderr: "cqctl: serve: ..." for 1, and for 2 a usage error's "cqctl: --OPTION ..." and the
 * pointer to --help, as every command's. Redis need not answer at start: /healthz says
 * whether it does. */
int serve_run(const struct serve_options *o);

#endif
