/* rconn.c - a Redis connection from a URL, closed on any I/O error so that the next use
 * reconnects (see rconn.h). */
#include "rconn.h"

#include <fcntl.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Copy n bytes of s into dst, percent-decoding; -1 when it does not fit or is malformed. */
static int copy_decoded(char *dst, size_t dstlen, const char *s, size_t n)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n) return -1;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= dstlen) return -1;
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return 0;
}

static int parse_db(const char *s, int *db)
{
    long v;

    if (parse_long(s, 0, 100000, &v) != 0) return -1;
    *db = (int)v;
    return 0;
}

int rconn_parse_url(const char *url, struct rconn_url *out, char *err, size_t errlen)
{
    const char *p, *at, *slash, *hostend, *colon;
    char port[16];

    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (strncmp(url, "unix://", 7) == 0) {
        const char *q = strchr(url + 7, '?');
        size_t n = q ? (size_t)(q - (url + 7)) : strlen(url + 7);
        if (n == 0 || n >= sizeof out->unix_path || url[7] != '/') {
            err_set(err, errlen, "redis URL '%s': unix:// needs an absolute socket path", url);
            return -1;
        }
        memcpy(out->unix_path, url + 7, n);
        out->unix_path[n] = '\0';
        if (q != NULL) {
            if (strncmp(q, "?db=", 4) != 0 || parse_db(q + 4, &out->db) != 0) {
                err_set(err, errlen, "redis URL '%s': the only option is ?db=N", url);
                return -1;
            }
        }
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        err_set(err, errlen, "redis URL '%s': must start with redis:// or unix://", url);
        return -1;
    }
    p = url + 8;
    slash = strchr(p, '/');
    at = memrchr(p, '@', slash ? (size_t)(slash - p) : strlen(p));
    if (at != NULL) {
        const char *c = memchr(p, ':', (size_t)(at - p));
        if (c == NULL) {
            /* redis://password@host, as redis-cli accepts. */
            if (copy_decoded(out->pass, sizeof out->pass, p, (size_t)(at - p)) != 0) goto bad_auth;
        } else {
            if (copy_decoded(out->user, sizeof out->user, p, (size_t)(c - p)) != 0 ||
                copy_decoded(out->pass, sizeof out->pass, c + 1, (size_t)(at - c - 1)) != 0)
                goto bad_auth;
        }
        p = at + 1;
    }
    hostend = slash ? slash : p + strlen(p);
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(hostend - p));
        if (rb == NULL || (size_t)(rb - p - 1) >= sizeof out->host) goto bad_host;
        memcpy(out->host, p + 1, (size_t)(rb - p - 1));
        out->host[rb - p - 1] = '\0';
        colon = rb + 1 < hostend && rb[1] == ':' ? rb + 1 : NULL;
        if (rb + 1 < hostend && colon == NULL) goto bad_host;
    } else {
        colon = memchr(p, ':', (size_t)(hostend - p));
        size_t n = (size_t)((colon ? colon : hostend) - p);
        if (n >= sizeof out->host) goto bad_host;
        memcpy(out->host, p, n);
        out->host[n] = '\0';
    }
    if (out->host[0] == '\0') str_copy(out->host, sizeof out->host, "127.0.0.1");
    if (colon != NULL) {
        long v;
        size_t n = (size_t)(hostend - colon - 1);
        if (n == 0 || n >= sizeof port) goto bad_port;
        memcpy(port, colon + 1, n);
        port[n] = '\0';
        if (parse_long(port, 1, 65535, &v) != 0) goto bad_port;
        out->port = (int)v;
    }
    if (slash != NULL && slash[1] != '\0' && parse_db(slash + 1, &out->db) != 0) {
        err_set(err, errlen, "redis URL '%s': database '%s' is not a number", url, slash + 1);
        return -1;
    }
    return 0;
bad_auth:
    err_set(err, errlen, "redis URL '%s': malformed user or password", url);
    return -1;
bad_host:
    err_set(err, errlen, "redis URL '%s': malformed host", url);
    return -1;
bad_port:
    err_set(err, errlen, "redis URL '%s': port must be a number from 1 to 65535", url);
    return -1;
}

const char *rconn_default_url(const char *given)
{
    const char *env;

    if (given != NULL && *given != '\0') return given;
    env = getenv("CQ_REDIS_URL");
    if (env != NULL && *env != '\0') return env;
    return "redis://127.0.0.1:6379";
}

void rconn_init(struct rconn *r, const struct rconn_url *url, double timeout)
{
    memset(r, 0, sizeof *r);
    r->url = *url;
    r->timeout = timeout;
}

static struct timeval tv_of(double s)
{
    struct timeval tv;
    tv.tv_sec = (time_t)s;
    tv.tv_usec = (suseconds_t)((s - (double)tv.tv_sec) * 1e6);
    return tv;
}

static const char *where(const struct rconn *r, char *buf, size_t len)
{
    if (r->url.unix_path[0])
        snprintf(buf, len, "%s", r->url.unix_path);
    else if (strchr(r->url.host, ':'))
        snprintf(buf, len, "[%s]:%d", r->url.host, r->url.port);
    else
        snprintf(buf, len, "%s:%d", r->url.host, r->url.port);
    return buf;
}

struct fix {
    const char *has, *fix; /* a message holding has gets the advice fix */
};

/* What to do when a connection cannot be made, by what the system said. */
static const struct fix connect_fixes[] = {
    {"Connection refused",
     "is redis-server running there? Start it, or point --url (or $CQ_REDIS_URL) at yours"},
    {"No such file or directory",
     "is redis-server running there? Start it, or point --url (or $CQ_REDIS_URL) at yours"},
    {"Name or service not known", "check the host name in the URL"},
    {"Temporary failure in name resolution", "check the host name in the URL"},
    {"timed out", "check the host, the port and any firewall between"},
    {"Resource temporarily unavailable", "check the host, the port and any firewall between"},
};

/* What to do about an error Redis replied. */
static const struct fix reply_fixes[] = {
    {"NOAUTH",
     "this Redis needs a password: put it in the URL, redis://:PASSWORD@host:port "
     "(redis://USER:PASSWORD@host:port for an ACL user)"},
    {"WRONGPASS", "check the user and the password in the URL"},
    {"invalid password", "check the password in the URL"},
    {"NOPERM",
     "this ACL user may not do that: docs/PROTOCOL.md gives the ACL SETUSER line of each "
     "role"},
    {"OOM", "Redis reached its maxmemory: raise it, or free memory"},
    {"READONLY", "this Redis is a replica: point the URL at the primary"},
    {"MISCONF", "Redis cannot save its snapshot: see its log"},
    {"LOADING", "Redis is loading its data set: try again in a moment"},
};

static const char *fix_in(const struct fix *fixes, size_t n, const char *msg)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strstr(msg, fixes[i].has) != NULL) return fixes[i].fix;
    return NULL;
}

/* rconn_error; while connecting, the system's errors get advice too (later, a time-out is a
 * slow command rather than a host that cannot be reached). */
static void format_error(const struct rconn *r, const char *context, const char *msg,
                         int connecting, char *err, size_t errlen)
{
    const char *fix = fix_in(reply_fixes, sizeof reply_fixes / sizeof reply_fixes[0], msg);
    size_t len = strlen(msg);
    char w[300];

    if (fix == NULL && connecting)
        fix = fix_in(connect_fixes, sizeof connect_fixes / sizeof connect_fixes[0], msg);
    /* Redis ends some messages with a period ("NOAUTH Authentication required."). */
    if (fix != NULL && len > 0 && msg[len - 1] == '.') len--;
    err_set(err, errlen, "%s%sredis %s: %.*s%s%s", context ? context : "", context ? ": " : "",
            where(r, w, sizeof w), (int)len, msg, fix ? "; " : "", fix ? fix : "");
}

void rconn_error(const struct rconn *r, const char *context, const char *msg, char *err,
                 size_t errlen)
{
    format_error(r, context, msg, 0, err, errlen);
}

/* Record the context's error (what, or hiredis's) and drop the context. */
static void fail_as(struct rconn *r, const char *what, int connecting)
{
    format_error(r, NULL,
                 what ? what : (r->ctx && r->ctx->errstr[0] ? r->ctx->errstr : "connection lost"),
                 connecting, r->errstr, sizeof r->errstr);
    rconn_close(r);
}

static void fail(struct rconn *r, const char *what)
{
    fail_as(r, what, 0);
}

/* The reply to a command that sets up a new connection (AUTH, SELECT): 0, or -1 with the
 * connection closed and errstr saying what failed. Frees rep. */
static int setup_reply(struct rconn *r, redisReply *rep, const char *what)
{
    char msg[200];

    if (rep == NULL) {
        fail_as(r, NULL, 1);
        return -1;
    }
    if (rep->type != REDIS_REPLY_ERROR) {
        freeReplyObject(rep);
        return 0;
    }
    snprintf(msg, sizeof msg, "%s%s%s", what ? what : "", what ? " failed: " : "", rep->str);
    freeReplyObject(rep);
    fail_as(r, msg, 1);
    return -1;
}

int rconn_connect(struct rconn *r)
{
    double t = r->timeout > 0 ? r->timeout : 5.0;
    redisReply *rep;

    rconn_close(r);
    if (r->url.unix_path[0])
        r->ctx = redisConnectUnixWithTimeout(r->url.unix_path, tv_of(t));
    else
        r->ctx = redisConnectWithTimeout(r->url.host, r->url.port, tv_of(t));
    if (r->ctx == NULL) {
        fail(r, "cannot allocate a connection");
        return -1;
    }
    if (r->ctx->err) {
        fail_as(r, NULL, 1);
        return -1;
    }
    /* The setup commands below get the connect time-out even on a connection whose commands
     * have none (a watcher's blocking one), so that a Redis that stopped answering cannot hang
     * a reconnection. */
    redisSetTimeout(r->ctx, tv_of(t));
    if (!r->url.unix_path[0]) redisEnableKeepAlive(r->ctx);
    /* Command functions fork: their programs must not inherit a connection to Redis. */
    fcntl(r->ctx->fd, F_SETFD, FD_CLOEXEC);
    if (r->url.pass[0]) {
        if (r->url.user[0])
            rep = redisCommand(r->ctx, "AUTH %s %s", r->url.user, r->url.pass);
        else
            rep = redisCommand(r->ctx, "AUTH %s", r->url.pass);
        if (setup_reply(r, rep, "AUTH") != 0) return -1;
    } else {
        /* Without a password, find out now whether this Redis wants one: otherwise the first
         * real command fails with NOAUTH, or Redis drops the connection at once when the
         * command is large, which reads as a network error. Any other error (an ACL user
         * without +ping) means we are in. */
        rep = redisCommand(r->ctx, "PING");
        if (rep != NULL &&
            !(rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOAUTH", 6) == 0)) {
            freeReplyObject(rep);
        } else if (setup_reply(r, rep, NULL) != 0) {
            return -1;
        }
    }
    if (r->url.db != 0) {
        char what[32];
        snprintf(what, sizeof what, "SELECT %d", r->url.db);
        rep = redisCommand(r->ctx, "SELECT %d", r->url.db);
        if (setup_reply(r, rep, what) != 0) return -1;
    }
    redisSetTimeout(r->ctx, tv_of(r->timeout > 0 ? r->timeout : 0));
    return 0;
}

void rconn_close(struct rconn *r)
{
    if (r->ctx != NULL) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
}

static int ensure(struct rconn *r)
{
    if (r->ctx != NULL) return 0;
    return rconn_connect(r);
}

redisReply *rconn_command(struct rconn *r, int argc, const char **argv, const size_t *lens)
{
    redisReply *rep;

    if (ensure(r) != 0) return NULL;
    rep = redisCommandArgv(r->ctx, argc, argv, lens);
    if (rep == NULL) fail(r, NULL);
    return rep;
}

redisReply *rconn_commandf(struct rconn *r, const char *fmt, ...)
{
    redisReply *rep;
    va_list ap;

    if (ensure(r) != 0) return NULL;
    va_start(ap, fmt);
    rep = redisvCommand(r->ctx, fmt, ap);
    va_end(ap);
    if (rep == NULL) fail(r, NULL);
    return rep;
}

int rconn_append(struct rconn *r, int argc, const char **argv, const size_t *lens)
{
    if (ensure(r) != 0) return -1;
    if (redisAppendCommandArgv(r->ctx, argc, argv, lens) != REDIS_OK) {
        fail(r, NULL);
        return -1;
    }
    return 0;
}

int rconn_appendf(struct rconn *r, const char *fmt, ...)
{
    va_list ap;
    int rc;

    if (ensure(r) != 0) return -1;
    va_start(ap, fmt);
    rc = redisvAppendCommand(r->ctx, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        fail(r, NULL);
        return -1;
    }
    return 0;
}

redisReply *rconn_read(struct rconn *r)
{
    void *rep = NULL;

    if (r->ctx == NULL) {
        if (r->errstr[0] == '\0') snprintf(r->errstr, sizeof r->errstr, "redis: not connected");
        return NULL;
    }
    if (redisGetReply(r->ctx, &rep) != REDIS_OK || rep == NULL) {
        fail(r, NULL);
        return NULL;
    }
    return rep;
}

/* hiredis 0.14 marks a blocking context failed when a read times out (EAGAIN is an I/O
 * error to it), so a wait longer than the socket's timeout cannot be a redisGetReply: poll()
 * keeps the time, and the socket is read only once it has something. */
int rconn_read_timed(struct rconn *r, double seconds, redisReply **out)
{
    long long until = time_mono_ms() + (long long)(seconds * 1000.0);
    void *rep = NULL;
    int done = 0;

    *out = NULL;
    if (r->ctx == NULL) {
        if (r->errstr[0] == '\0') snprintf(r->errstr, sizeof r->errstr, "redis: not connected");
        return -1;
    }
    while (!done)
        if (redisBufferWrite(r->ctx, &done) != REDIS_OK) {
            fail(r, NULL);
            return -1;
        }
    for (;;) {
        struct pollfd p;
        long long left;
        int n;

        if (redisGetReplyFromReader(r->ctx, &rep) != REDIS_OK) {
            fail(r, NULL);
            return -1;
        }
        if (rep != NULL) {
            *out = rep;
            return 1;
        }
        left = until - time_mono_ms();
        p.fd = r->ctx->fd;
        p.events = POLLIN;
        p.revents = 0;
        n = poll(&p, 1, left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            fail(r, strerror(errno));
            return -1;
        }
        if (n == 0) return 0;
        if (redisBufferRead(r->ctx) != REDIS_OK) {
            fail(r, NULL);
            return -1;
        }
    }
}
