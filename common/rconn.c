/* rconn.c - a Redis connection from a URL, closed on any I/O error so that the next use
 * reconnects (see rconn.h). */
#include "rconn.h"

#include <fcntl.h>
#include <pthread.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <hiredis/sds.h>
#include <openssl/evp.h>

#include "audience.h"
#include "tls.h"
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

/* host[:port] or [v6]:port, the n bytes at p, into host and *port (defport when none).
 * 0, or -1 naming what is wrong in err. */
static int parse_hostport(const char *url, const char *p, size_t n, char *host, size_t hostlen,
                          int *port, int defport, char *err, size_t errlen)
{
    const char *end = p + n, *colon;
    char num[16];
    long v;

    *port = defport;
    if (*p == '[') {
        const char *rb = memchr(p, ']', n);
        if (rb == NULL || (size_t)(rb - p - 1) >= hostlen) goto bad_host;
        memcpy(host, p + 1, (size_t)(rb - p - 1));
        host[rb - p - 1] = '\0';
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
        if (rb + 1 < end && colon == NULL) goto bad_host;
    } else {
        size_t hn;
        colon = memchr(p, ':', n);
        hn = (size_t)((colon ? colon : end) - p);
        if (hn >= hostlen) goto bad_host;
        memcpy(host, p, hn);
        host[hn] = '\0';
    }
    if (host[0] == '\0') str_copy(host, hostlen, "127.0.0.1");
    if (colon != NULL) {
        size_t pn = (size_t)(end - colon - 1);
        if (pn == 0 || pn >= sizeof num) goto bad_port;
        memcpy(num, colon + 1, pn);
        num[pn] = '\0';
        if (parse_long(num, 1, 65535, &v) != 0) goto bad_port;
        *port = (int)v;
    }
    return 0;
bad_host:
    err_set(err, errlen, "redis URL '%s': malformed host", url);
    return -1;
bad_port:
    err_set(err, errlen, "redis URL '%s': port must be a number from 1 to 65535", url);
    return -1;
}

/* [user[:pass]@] at the start of the n bytes at p: copied into out; returns where the hosts
 * begin, or NULL (err set) when malformed. */
static const char *parse_auth(const char *url, const char *p, size_t n, struct rconn_url *out,
                              char *err, size_t errlen)
{
    const char *at = memrchr(p, '@', n), *c;

    if (at == NULL) return p;
    c = memchr(p, ':', (size_t)(at - p));
    if (c == NULL) {
        /* redis://password@host, as redis-cli accepts. */
        if (copy_decoded(out->pass, sizeof out->pass, p, (size_t)(at - p)) != 0) goto bad;
    } else if (copy_decoded(out->user, sizeof out->user, p, (size_t)(c - p)) != 0 ||
               copy_decoded(out->pass, sizeof out->pass, c + 1, (size_t)(at - c - 1)) != 0) {
        goto bad;
    }
    if (out->user[0] != '\0' && out->pass[0] == '\0') {
        /* AUTH goes only with a password: the user would be dropped, and the connection run
         * as the default user, without a word */
        err_set(err, errlen, "redis URL '%s': a user name needs a password (USER:PASSWORD@)", url);
        return NULL;
    }
    return at + 1;
bad:
    err_set(err, errlen, "redis URL '%s': malformed user or password", url);
    return NULL;
}

/* redis+sentinel://...: the sentinels, comma-separated, then /MASTER[/db]. */
static int parse_sentinels(const char *url, const char *p, const char *end, const char *path,
                           struct rconn_url *out, char *err, size_t errlen)
{
    const char *slash;

    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        struct rconn_node *s = &out->sentinels[out->nsentinels];
        if (stop == p || (comma != NULL && comma + 1 == end)) {
            /* parse_hostport would make it 127.0.0.1:26379, a sentinel nobody named */
            err_set(err, errlen, "redis URL '%s': an empty sentinel address in the list", url);
            return -1;
        }
        if (out->nsentinels == RCONN_SENTINELS_MAX) {
            err_set(err, errlen, "redis URL '%s': at most %d sentinels", url, RCONN_SENTINELS_MAX);
            return -1;
        }
        if (parse_hostport(url, p, (size_t)(stop - p), s->host, sizeof s->host, &s->port, 26379,
                           err, errlen) != 0)
            return -1;
        out->nsentinels++;
        p = comma ? comma + 1 : end;
    }
    if (out->nsentinels == 0 || path == NULL || path[1] == '\0' || path[1] == '/') {
        err_set(err, errlen,
                "redis URL '%s': give the sentinels and the master's name: "
                "redis+sentinel://host:port[,host:port...]/MASTER[/db]",
                url);
        return -1;
    }
    slash = strchr(path + 1, '/');
    if ((size_t)((slash ? slash : path + strlen(path)) - path - 1) >= sizeof out->master) {
        err_set(err, errlen, "redis URL '%s': the master's name is too long", url);
        return -1;
    }
    memcpy(out->master, path + 1, (size_t)((slash ? slash : path + strlen(path)) - path - 1));
    if (slash != NULL && slash[1] != '\0' && parse_db(slash + 1, &out->db) != 0) {
        err_set(err, errlen, "redis URL '%s': database '%s' is not a number", url, slash + 1);
        return -1;
    }
    return 0;
}

/* A rediss:// connection's files, from the environment (the commands' --tls-* options set
 * it). */
static void tls_from_env(struct rconn_url *out)
{
    const char *v;

    if ((v = getenv("CQ_TLS_CA")) != NULL) str_copy(out->tls_ca, sizeof out->tls_ca, v);
    if ((v = getenv("CQ_TLS_CERT")) != NULL) str_copy(out->tls_cert, sizeof out->tls_cert, v);
    if ((v = getenv("CQ_TLS_KEY")) != NULL) str_copy(out->tls_key, sizeof out->tls_key, v);
}

static int parse_url(const char *url, size_t at, int need_host, const char *shown,
                     struct rconn_url *out, char *err, size_t errlen);

/* The query of a TCP URL: ?replicas=N is the only option. */
static int parse_query(const char *url, const char *q, struct rconn_url *out, char *err,
                       size_t errlen)
{
    long v;

    if (strncmp(q, "?replicas=", 10) == 0 && parse_long(q + 10, 0, 100, &v) == 0) {
        out->wait_replicas = (int)v;
        return 0;
    }
    err_set(err, errlen, "redis URL '%s': the only option is ?replicas=N (0 to 100)", url);
    return -1;
}

/* Where a URL's credentials end, its '@', or NULL where it has none. A socket's path may
 * hold an '@': its credentials end at the first "@/" (unix://[USER:]PASSWORD@/path), else at
 * its last '@' (unix://:x@relative.sock, refused later). Any other URL's, at the last '@' of
 * its authority (up to the first '/' or '?' after "://"), as RFC 3986 reads one. */
static const char *creds_end(const char *url)
{
    const char *p = strstr(url, "://"), *at;

    if (p == NULL) return NULL;
    p += 3;
    if (strncmp(url, "unix://", 7) == 0) {
        if (*p == '/') return NULL;
        at = strstr(p, "@/");
        return at != NULL ? at : strrchr(p, '@');
    }
    return memrchr(p, '@', strcspn(p, "/?"));
}

/* An '@' after the authority of a URL whose authority holds none: either no credentials (a
 * master's name or an option may hold an '@': redis+sentinel://h/my@master) or a password
 * with a raw '/' or '?' (redis://:s3cr/3t@host). The URL's last '@', or NULL. */
static const char *late_at(const char *url)
{
    const char *p = strstr(url, "://");

    if (p == NULL || strncmp(url, "unix://", 7) == 0 || creds_end(url) != NULL) return NULL;
    return strrchr(p + 3, '@');
}

/* The URL as error messages show it: its password, if any, as "***" (the line may go to a
 * log or a web page); where an '@' comes after the authority, everything before the last one
 * (it may be a password's). */
static void redact(const char *url, char *out, size_t outlen)
{
    const char *at = creds_end(url), *p, *colon;

    if (at == NULL) at = late_at(url);
    if (at == NULL) {
        str_copy(out, outlen, url);
        return;
    }
    p = strstr(url, "://") + 3;
    colon = memchr(p, ':', (size_t)(at - p)); /* a user name holds no ':' */
    snprintf(out, outlen, "%.*s***%s", (int)((colon ? colon + 1 : p) - url), url, at);
}

/* The URL whose credentials end at its at (NULL: none); need_host: the credentials were read
 * up to a late '@' (late_at), after which a host must follow. */
static int parse_reading(const char *url, const char *at, int need_host, const char *shown,
                         struct rconn_url *out, char *err, size_t errlen)
{
    char copy[2048];
    const char *q;
    size_t off = at != NULL ? (size_t)(at - url + 1) : 0; /* where the hosts begin, or 0 */

    /* The query apart: the first '?' after the credentials (a socket's URL parses its own). */
    q = strncmp(url, "unix://", 7) == 0 ? NULL : strchr(url + off, '?');
    if (q == NULL) return parse_url(url, off, need_host, shown, out, err, errlen);
    if ((size_t)(q - url) >= sizeof copy) {
        err_set(err, errlen, "redis URL '%.64s...': too long", shown);
        return -1;
    }
    memcpy(copy, url, (size_t)(q - url));
    copy[q - url] = '\0';
    if (parse_url(copy, off, need_host, shown, out, err, errlen) != 0) return -1;
    return parse_query(shown, q, out, err, errlen);
}

int rconn_parse_url(const char *url, struct rconn_url *out, char *err, size_t errlen)
{
    char shown[2048];
    const char *late = late_at(url);

    redact(url, shown, sizeof shown);
    /* An '@' after the authority: read first as no credentials, and only where that does
     * not parse, as the end of a password that holds a '/' or '?'. */
    if (late != NULL && parse_reading(url, NULL, 0, shown, out, err, errlen) == 0) return 0;
    if (late != NULL) return parse_reading(url, late, 1, shown, out, err, errlen);
    return parse_reading(url, creds_end(url), 0, shown, out, err, errlen);
}

/* A URL without its query, its credentials before url + at - 1 where at > 0 (at: where its
 * hosts begin; need_host: one must); shown is the whole URL as messages show it. */
static int parse_url(const char *url, size_t at_off, int need_host, const char *shown,
                     struct rconn_url *out, char *err, size_t errlen)
{
    const char *p, *at, *slash, *hostend;
    int sentinel = 0;

    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (strncmp(url, "unix://", 7) == 0) {
        const char *path = url + 7, *q;
        size_t n;

        at = *path == '/' ? NULL : strstr(path, "@/");
        /* unix://[USER:]PASSWORD@/path.sock: as redis://, the credentials before an '@' */
        if (at != NULL &&
            parse_auth(shown, path, (size_t)(at + 1 - path), out, err, errlen) == NULL)
            return -1;
        if (at != NULL) path = at + 1;
        q = strchr(path, '?');
        n = q ? (size_t)(q - path) : strlen(path);
        if (n == 0 || n >= sizeof out->unix_path || path[0] != '/') {
            err_set(err, errlen,
                    "redis URL '%s': unix:// needs an absolute socket path "
                    "(unix://[[USER]:PASSWORD@]/path.sock)",
                    shown);
            return -1;
        }
        memcpy(out->unix_path, path, n);
        out->unix_path[n] = '\0';
        if (q != NULL) {
            if (strncmp(q, "?db=", 4) != 0 || parse_db(q + 4, &out->db) != 0) {
                err_set(err, errlen, "redis URL '%s': the only option is ?db=N", shown);
                return -1;
            }
        }
        return 0;
    }
    if (strncmp(url, "redis://", 8) == 0) {
        p = url + 8;
    } else if (strncmp(url, "rediss://", 9) == 0) {
        p = url + 9;
        out->tls = 1;
        tls_from_env(out);
    } else if (strncmp(url, "redis+sentinel://", 17) == 0) {
        p = url + 17;
        sentinel = 1;
    } else {
        err_set(err, errlen,
                "redis URL '%s': must start with redis://, rediss:// (TLS), "
                "redis+sentinel:// or unix://",
                shown);
        return -1;
    }
    at = at_off > 0 ? url + at_off - 1 : NULL;
    if (at != NULL && parse_auth(shown, p, (size_t)(at + 1 - p), out, err, errlen) == NULL)
        return -1;
    if (at != NULL) p = at + 1;
    slash = strchr(p, '/');
    hostend = slash ? slash : p + strlen(p);
    if (need_host && hostend == p) {
        err_set(err, errlen, "redis URL '%s': no host after the credentials' '@'", shown);
        return -1;
    }
    if (sentinel) return parse_sentinels(shown, p, hostend, slash, out, err, errlen);
    if (parse_hostport(shown, p, (size_t)(hostend - p), out->host, sizeof out->host, &out->port,
                       6379, err, errlen) != 0)
        return -1;
    if (slash != NULL && slash[1] != '\0' && parse_db(slash + 1, &out->db) != 0) {
        err_set(err, errlen, "redis URL '%s': database '%s' is not a number", shown, slash + 1);
        return -1;
    }
    return 0;
}

const char *rconn_default_url(const char *given)
{
    const char *env;

    if (given != NULL && *given != '\0') return given;
    env = getenv("CQ_REDIS_URL");
    if (env != NULL && *env != '\0') return env;
    return RCONN_DEFAULT_URL;
}

int rconn_parse_default_url(const char *given, struct rconn_url *out, char *err, size_t errlen)
{
    const char *env = getenv("CQ_REDIS_URL");

    if (rconn_parse_url(rconn_default_url(given), out, err, errlen) == 0) {
        out->origin = given != NULL && *given != '\0' ? RCONN_URL_GIVEN
            : env != NULL && *env != '\0'             ? RCONN_URL_ENV
                                                      : RCONN_URL_DEFAULT;
        return 0;
    }
    if (given == NULL || *given == '\0') err_prepend(err, errlen, "$CQ_REDIS_URL: ");
    return -1;
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

static void node_name(char *buf, size_t len, const char *host, int port)
{
    snprintf(buf, len, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

const char *rconn_where(const struct rconn *r, char *buf, size_t len)
{
    char node[300];

    if (r->url.unix_path[0]) {
        snprintf(buf, len, "%s", r->url.unix_path);
    } else if (r->url.nsentinels > 0 && r->primary.port == 0) {
        snprintf(buf, len, "primary of %s", r->url.master);
    } else if (r->url.nsentinels > 0) {
        node_name(node, sizeof node, r->primary.host, r->primary.port);
        snprintf(buf, len, "%s (primary of %s)", node, r->url.master);
    } else {
        node_name(buf, len, r->url.host, r->url.port);
    }
    return buf;
}

/* A message holding has gets the advice fix; where lib is set too, fix is said to cq's
 * commands and lib to a program that links libcq (audience_pick, audience.h): the options
 * that a command's user gives, the variables that a program's user sets. Where the advice
 * depends on the connection's URL, pick says it (fix and lib NULL). */
struct fix {
    const char *has, *fix, *lib;
    const char *(*pick)(const struct rconn_url *u);
};

/* Nothing listens where the URL points. The advice names what set the URL: a program that
 * links libcq has no --url, and a URL it gave is not $CQ_REDIS_URL; the default is changed
 * with -u or the variable in cq's commands, with the variable in another program. */
static const char *no_server_fix(const struct rconn_url *u)
{
    switch (u->origin) {
    case RCONN_URL_ENV:
        return "is redis-server running there? Start it, or point $CQ_REDIS_URL at yours";
    case RCONN_URL_DEFAULT:
        return audience_pick("is redis-server running there? Start it, or give the URL of "
                             "yours (-u URL, or $CQ_REDIS_URL)",
                             "is redis-server running there? Start it, or point $CQ_REDIS_URL "
                             "at yours");
    default: return "is redis-server running there? Start it, or point the URL at yours";
    }
}

/* A password is needed: where it goes in the URL, which a socket's carries differently. */
static const char *noauth_fix(const struct rconn_url *u)
{
    return u->unix_path[0] ? "this Redis needs a password: put it in the URL, "
                             "unix://:PASSWORD@/path.sock (unix://USER:PASSWORD@/path.sock for "
                             "an ACL user)"
                           : "this Redis needs a password: put it in the URL, "
                             "redis://:PASSWORD@host:port (redis://USER:PASSWORD@host:port for "
                             "an ACL user)";
}

/* The server closed the connection as it opened: most often a plain client on a TLS port,
 * whose bytes are no TLS handshake. */
static const char *closed_fix(const struct rconn_url *u)
{
    return u->tls ? "is this the right port?" : "is this a TLS port? Use rediss:// for one";
}

/* What to do when a connection cannot be made, by what the system said.
 * The TLS files (tls.h) come from $CQ_TLS_CA, $CQ_TLS_CERT and $CQ_TLS_KEY, which cq's
 * commands set from their --tls-* options: the advice names the options to a command's
 * user, and only the variables to a program that links libcq. */
static const struct fix connect_fixes[] = {
    /* tls.c's files, first: a file that is not there is not a socket that is not there */
    {"TLS: CA file '", "give --tls-ca (or $CQ_TLS_CA) a PEM file of the CAs to trust",
     "point $CQ_TLS_CA at a PEM file of the CAs to trust", NULL},
    {"TLS: certificate file '",
     "give --tls-cert (or $CQ_TLS_CERT) a PEM file of the client certificate",
     "point $CQ_TLS_CERT at a PEM file of the client certificate", NULL},
    {"TLS: key file '", "give --tls-key (or $CQ_TLS_KEY) the certificate's private key, PEM",
     "point $CQ_TLS_KEY at the certificate's private key, PEM", NULL},
    {"not a socket", "point the URL at the socket redis-server listens on (its unixsocket)", NULL,
     NULL},
    {"Connection refused", NULL, NULL, no_server_fix},
    {"No such file or directory", NULL, NULL, no_server_fix},
    {"Name or service not known", "check the host name in the URL", NULL, NULL},
    {"Temporary failure in name resolution", "check the host name in the URL", NULL, NULL},
    {"timed out", "check the host, the port and any firewall between", NULL, NULL},
    {"Resource temporarily unavailable", "check the host, the port and any firewall between", NULL,
     NULL},
    {"no reply within", "is it stopped, or busy with a long command (SLOWLOG GET)?", NULL, NULL},
    {"could not send within", "is it stopped, or busy with a long command (SLOWLOG GET)?", NULL,
     NULL},
    {"certificate verify failed",
     "give the CA that signed the server's certificate with --tls-ca (or $CQ_TLS_CA), "
     "and connect by a name or address the certificate holds",
     "point $CQ_TLS_CA at the CA that signed the server's certificate, and connect by a "
     "name or address the certificate holds",
     NULL},
    {"is this a TLS port", "use redis:// for a port without TLS", NULL, NULL},
    {"Connection reset by peer", NULL, NULL, closed_fix},
    {"Server closed the connection", NULL, NULL, closed_fix},
    {"wrong version number", "is this a TLS port? Use redis:// for a port without TLS", NULL, NULL},
};

/* A connection that was open and is no more: what hiredis or the system said of it. */
#define LOST_FIX                                                                              \
    "the connection was lost (Redis stopped, restarted or closed it); it is opened again at " \
    "the next command"

/* What a connection that had been made says when it goes (not one that never worked: a
 * plain client on a TLS port reads "Server closed the connection" too). */
static const struct fix lost_fixes[] = {
    {"Server closed the connection", LOST_FIX, NULL, NULL},
    {"Broken pipe", LOST_FIX, NULL, NULL},
    {"Connection reset by peer", LOST_FIX, NULL, NULL},
};

/* What to do about an error Redis replied. */
static const struct fix reply_fixes[] = {
    /* cq's module's commands refused (seen() goes back to the scripts): said once */
    {"unknown command 'CQ.",
     "cq's Redis module is gone from this Redis (MODULE UNLOAD?): back to the Lua scripts, "
     "which do the same, slower",
     NULL, NULL},
    {"permissions to run the 'cq.",
     "this ACL user may no longer run cq's Redis module (+cq.apply1 +cq.take1): back to the "
     "Lua scripts, which do the same, slower",
     NULL, NULL},
    {"NOAUTH", NULL, NULL, noauth_fix},
    {"WRONGPASS", "check the user and the password in the URL", NULL, NULL},
    {"called without any password configured", "this Redis has no password: remove it from the URL",
     NULL, NULL},
    {"Protocol error, got", "this server does not speak Redis: is it the right port?", NULL, NULL},
    {"invalid password", "check the password in the URL", NULL, NULL},
    {"NOPERM",
     "this ACL user may not do that: docs/PROTOCOL.md gives the ACL SETUSER line of each "
     "role",
     NULL, NULL},
    {"OOM", "Redis reached its maxmemory: raise it, or free memory", NULL, NULL},
    {"READONLY",
     "this Redis is a replica: point the URL at the primary, or at its sentinels "
     "(redis+sentinel://)",
     NULL, NULL},
    {"MISCONF", "Redis cannot save its snapshot: see its log", NULL, NULL},
    {"LOADING",
     "try again when the load is done (after a restart Redis reads its AOF or RDB back; "
     "INFO persistence's loading_loaded_perc says how far it is)",
     NULL, NULL},
    {"alert certificate required",
     "this server wants a client certificate: give --tls-cert and --tls-key",
     "this server wants a client certificate: set $CQ_TLS_CERT and $CQ_TLS_KEY", NULL},
    {"alert unknown ca", "the server does not trust the CA of the client certificate", NULL, NULL},
};

/* Through sentinels, a replica where the primary was is a failover under way, which the
 * sentinels resolve: the URL is right. Looked at before reply_fixes. */
#define FAILOVER_FIX "a failover is under way: the sentinels name the new primary when it ends"
static const struct fix sentinel_fixes[] = {
    {"READONLY", FAILOVER_FIX, NULL, NULL},
    {"ROLE says", FAILOVER_FIX, NULL, NULL},
};

static const char *fix_in(const struct fix *fixes, size_t n, const char *msg,
                          const struct rconn_url *u)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strstr(msg, fixes[i].has) != NULL)
            return fixes[i].pick != NULL ? fixes[i].pick(u)
                : fixes[i].lib != NULL   ? audience_pick(fixes[i].fix, fixes[i].lib)
                                         : fixes[i].fix;
    return NULL;
}

/* rconn_error; while connecting, the system's errors get advice too (later, a time-out is a
 * slow command rather than a host that cannot be reached). Returns 1 when the message is a
 * lost connection's (LOST_FIX: rconn.lost), else 0. */
static int format_error(const struct rconn *r, const char *context, const char *msg, int connecting,
                        char *err, size_t errlen)
{
    const char *fix = NULL;
    size_t len = strlen(msg);
    char w[600];
    int lost = 0;

#define FIX_IN(table) fix_in(table, sizeof table / sizeof table[0], msg, &r->url)
    if (r->url.nsentinels > 0) fix = FIX_IN(sentinel_fixes);
    if (fix == NULL) fix = FIX_IN(reply_fixes);
    if (fix == NULL && connecting) {
        fix = FIX_IN(connect_fixes);
    } else if (fix == NULL) {
        fix = FIX_IN(lost_fixes);
        lost = fix != NULL;
    }
#undef FIX_IN
    /* Redis ends some messages with a period ("NOAUTH Authentication required."). */
    if (fix != NULL && len > 0 && msg[len - 1] == '.') len--;
    err_set(err, errlen, "%s%sredis %s: %.*s%s%s", context ? context : "", context ? ": " : "",
            rconn_where(r, w, sizeof w), (int)len, msg, fix ? "; " : "", fix ? fix : "");
    return lost;
}

void rconn_error(const struct rconn *r, const char *context, const char *msg, char *err,
                 size_t errlen)
{
    format_error(r, context, msg, 0, err, errlen);
}

/* Record the context's error (what, or hiredis's) and drop the context. */
static void fail_as(struct rconn *r, const char *what, int connecting)
{
    char tls[256], late[80];

    /* Under TLS, hiredis sees only the socketpair close: the relay knows why. */
    if (what == NULL && tls_session_error(r->tls, tls, sizeof tls) == 0) what = tls;
    /* A read or a write past the socket's time-out is EAGAIN to hiredis: say what it means.
     * The time-out bounds a stall, not the command: a write that stalled (hiredis still holds
     * bytes to send: Redis reads nothing, stopped or busy) is not a reply that did not come. */
    if (what == NULL && r->ctx != NULL &&
        strcmp(r->ctx->errstr, "Resource temporarily unavailable") == 0) {
        double t = r->timeout > 0 ? r->timeout : 5.0;
        if (r->ctx->obuf != NULL && sdslen(r->ctx->obuf) > 0)
            snprintf(late, sizeof late, "could not send within %g s (Redis reads nothing)", t);
        else
            snprintf(late, sizeof late, "no reply within %g s", t);
        what = late;
    }
    if (what == NULL) what = r->ctx && r->ctx->errstr[0] ? r->ctx->errstr : "connection lost";
    str_copy(r->cause, sizeof r->cause, what);
    r->lost = format_error(r, NULL, what, connecting, r->errstr, sizeof r->errstr);
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

/* Whether the context just made is connected: 0, or -1 with errstr set. */
static int connected(struct rconn *r)
{
    if (r->ctx == NULL) {
        fail(r, "cannot allocate a connection");
        return -1;
    }
    if (r->ctx->err) {
        fail_as(r, NULL, 1);
        return -1;
    }
    return 0;
}

/* A TCP (or TLS) connection to host:port in r->ctx. 0, or -1 with errstr set. */
static int open_node(struct rconn *r, const char *host, int port, double t)
{
    if (r->url.tls) {
        struct tls_opts o = {r->url.tls_ca, r->url.tls_cert, r->url.tls_key};
        char msg[512];
        int fd = tls_connect(host, port, &o, t, &r->tls, msg, sizeof msg);

        if (fd < 0) {
            fail_as(r, msg, 1);
            return -1;
        }
        r->ctx = redisConnectFd(fd);
        if (r->ctx == NULL) close(fd);
    } else {
        /* Not redisConnectWithTimeout: hiredis 0.14 fails a connect that a signal interrupts
         * (its poll's EINTR), and a program's SIGALRM or SIGCHLD would do it. */
        char msg[256];
        int fd = tls_tcp_connect(host, port, t, msg, sizeof msg);

        if (fd < 0) {
            fail_as(r, msg, 1);
            return -1;
        }
        r->ctx = redisConnectFd(fd);
        if (r->ctx == NULL) close(fd);
    }
    /* tls_tcp_connect set TCP keep-alive on the socket (TLS's too), as hiredis would */
    return connected(r);
}

/* What a sentinel answered that is not [host, port], into why: said as it is (cut at 80
 * bytes), not as "no answer". */
static void odd_answer(const redisReply *rep, char *why, size_t whylen)
{
    switch (rep->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS: snprintf(why, whylen, "answered '%.80s'", rep->str); break;
    case REDIS_REPLY_INTEGER: snprintf(why, whylen, "answered %lld", rep->integer); break;
    case REDIS_REPLY_ARRAY:
        if (rep->elements == 2 && rep->element[0]->type == REDIS_REPLY_STRING &&
            rep->element[1]->type == REDIS_REPLY_STRING)
            snprintf(why, whylen, "answered host '%.80s' port '%.20s', not a port or host",
                     rep->element[0]->str, rep->element[1]->str);
        else
            snprintf(why, whylen, "answered an array of %zu, not [host, port]", rep->elements);
        break;
    default: snprintf(why, whylen, "answered a reply of type %d", rep->type); break;
    }
}

/* Ask sentinel i where MASTER's primary is: r->primary. 0, or -1 with why saying what it
 * answered. */
static int ask_sentinel(struct rconn *r, int i, double t, char *why, size_t whylen)
{
    const struct rconn_node *s = &r->url.sentinels[i];
    char msg[256];
    int fd = tls_tcp_connect(s->host, s->port, t, msg, sizeof msg); /* as open_node's */
    redisContext *c = fd >= 0 ? redisConnectFd(fd) : NULL;
    redisReply *rep = NULL;
    long v;
    int rc = -1;

    if (fd >= 0 && c == NULL) close(fd);
    memset(&r->primary, 0, sizeof r->primary);
    str_copy(why, whylen, "no answer");
    if (c != NULL && !c->err) {
        redisSetTimeout(c, tv_of(t));
        rep = redisCommand(c, "SENTINEL get-master-addr-by-name %s", r->url.master);
    }
    if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_STRING &&
        rep->element[1]->type == REDIS_REPLY_STRING &&
        parse_long(rep->element[1]->str, 1, 65535, &v) == 0 &&
        str_copy(r->primary.host, sizeof r->primary.host, rep->element[0]->str) == 0) {
        r->primary.port = (int)v;
        rc = 0;
    } else if (c == NULL || c->err) {
        str_copy(why, whylen, c ? c->errstr : fd < 0 ? msg : "cannot allocate a connection");
    } else if (rep != NULL && rep->type == REDIS_REPLY_ERROR) {
        str_copy(why, whylen, rep->str);
    } else if (rep != NULL && rep->type == REDIS_REPLY_NIL) {
        str_copy(why, whylen, "knows no master of that name");
    } else if (rep != NULL) {
        odd_answer(rep, why, whylen);
    } else {
        str_copy(why, whylen, c->errstr[0] ? c->errstr : "no answer");
    }
    if (rc != 0) memset(&r->primary, 0, sizeof r->primary);
    if (rep != NULL) freeReplyObject(rep);
    if (c != NULL) redisFree(c);
    return rc;
}

/* After a failover the sentinels may still name the old primary for a moment: only a node
 * whose ROLE is master will do. An ACL that forbids ROLE is taken as a yes. */
static int check_role(struct rconn *r)
{
    redisReply *rep = redisCommand(r->ctx, "ROLE");
    char msg[200];

    if (rep == NULL) {
        fail_as(r, NULL, 1);
        return -1;
    }
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
        rep->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(rep->element[0]->str, "master") != 0) {
        snprintf(msg, sizeof msg, "ROLE says %s, not master", rep->element[0]->str);
        freeReplyObject(rep);
        fail(r, msg);
        return -1;
    }
    freeReplyObject(rep);
    return 0;
}

/* The commands of cq's module, in the groups asked for together (rconn.h). */
static const struct {
    unsigned bit;
    const char *cmd[2];
} module_groups[] = {
    {RCONN_MODULE_WORKER, {"CQ.APPLY1", "CQ.TAKE1"}},
    {RCONN_MODULE_ENQUEUE, {"CQ.ENQUEUE1", NULL}},
};

/* What a question's reply says: 1 the command is there for this user, 0 it is not, -1 not
 * known yet. Only a yes or a no is kept: another error (LOADING, BUSY, a maxmemory refusal
 * of a deny-oom command) leaves it to be asked again. */
static int module_answer(const redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ERROR) return -1;
    if (strncmp(rep->str, "ERR wrong number of arguments", 29) == 0) return 1;
    return strncmp(rep->str, "ERR unknown command", 19) == 0 || strncmp(rep->str, "NOPERM", 6) == 0
        ? 0
        : -1;
}

/* Ask whether Redis has the module commands of the groups bits (RCONN_MODULE_*): each
 * command without its arguments, where "wrong number of arguments" from the module itself
 * means it is there and this user may run it; without the module Redis says "unknown
 * command", and NOPERM where the user's ACL leaves it out (its calls then go as the scripts,
 * which its ACL allows). One after the other, not pipelined: the first refusal of a group
 * ends its probe, so that a user without the rights leaves one entry in ACL LOG a connect,
 * not two. Asked while connecting (rconn.want_module): 0, or -1 where the connection failed. */
static int ask_module(struct rconn *r, unsigned bits)
{
    size_t g, i;

    for (g = 0; g < sizeof module_groups / sizeof module_groups[0]; g++) {
        int answer = 1;
        if (!(bits & module_groups[g].bit)) continue;
        for (i = 0; i < 2 && module_groups[g].cmd[i] != NULL && answer == 1; i++) {
            redisReply *rep = redisCommand(r->ctx, "%s", module_groups[g].cmd[i]);
            if (rep == NULL) {
                fail_as(r, NULL, 1);
                return -1;
            }
            answer = module_answer(rep);
            freeReplyObject(rep);
        }
        if (answer >= 0) r->module_asked |= module_groups[g].bit;
        if (answer == 1) r->module |= module_groups[g].bit;
    }
    return 0;
}

/* The question of a group of one command, in a pipeline: its command and its reply. */
static const char *module_question(unsigned bit)
{
    size_t g;

    for (g = 0; g < sizeof module_groups / sizeof module_groups[0]; g++)
        if (module_groups[g].bit == bit && module_groups[g].cmd[1] == NULL)
            return module_groups[g].cmd[0];
    return NULL;
}

int rconn_module_append(struct rconn *r, unsigned bit)
{
    const char *cmd = module_question(bit);

    return cmd != NULL ? rconn_appendf(r, "%s", cmd) : -1;
}

int rconn_module_read(struct rconn *r, unsigned bit)
{
    redisReply *rep = rconn_read(r);
    int answer;

    if (rep == NULL) return -1;
    answer = module_answer(rep);
    freeReplyObject(rep);
    if (answer >= 0) r->module_asked |= bit;
    if (answer == 1) r->module |= bit;
    return 0;
}

/* hiredis 0.14 writes with write(2), which raises SIGPIPE on a socket Redis has closed, and
 * the signal's default kills the process. cq's programs ignore it; another program that
 * links libcq may not, so each call that may write holds the signal off on its thread
 * (the write then fails with EPIPE, a lost connection), unless the process ignored it when
 * this connection was made. */
static int pipe_hold(const struct rconn *r, struct sigpipe_hold *h)
{
    if (r->pipe_ignored) return 0;
    sigpipe_hold(h);
    return 1;
}

static void pipe_release(int held, const struct sigpipe_hold *h)
{
    if (held) sigpipe_release(h);
}

static int connect_held(struct rconn *r);

/* A socket path that is something else (a directory, the server's data file) is refused by
 * connect() as a socket nobody listens on would be: say what it is instead. 1 with what, or
 * 0. */
static int not_socket(const char *path, char *what, size_t len)
{
    struct stat st;

    if (stat(path, &st) != 0 || S_ISSOCK(st.st_mode)) return 0;
    snprintf(what, len, "%s, not a socket",
             S_ISDIR(st.st_mode)       ? "a directory"
                 : S_ISREG(st.st_mode) ? "a regular file"
                                       : "a file");
    return 1;
}

int rconn_connect(struct rconn *r)
{
    struct sigpipe_hold old;
    int held, rc;

    r->pipe_ignored = sigpipe_ignored();
    held = pipe_hold(r, &old);
    rc = connect_held(r);
    pipe_release(held, &old);
    return rc;
}

int rconn_module_settle(struct rconn *r)
{
    unsigned left = r->want_module & ~r->module_asked;
    struct sigpipe_hold old;
    int held, rc;

    if (left == 0 || r->ctx == NULL) return 0;
    held = pipe_hold(r, &old);
    rc = ask_module(r, left);
    pipe_release(held, &old);
    return rc;
}

/* AUTH on a connection just made, or, without a password, the PING that finds whether this
 * Redis wants one: otherwise the first real command fails with NOAUTH, or Redis drops the
 * connection at once when the command is large, which reads as a network error. Any other
 * error to the PING (an ACL user without +ping) means we are in. 0, or -1 (closed). */
static int authenticate(struct rconn *r)
{
    redisReply *rep;

    if (r->url.pass[0]) {
        if (r->url.user[0])
            rep = redisCommand(r->ctx, "AUTH %s %s", r->url.user, r->url.pass);
        else
            rep = redisCommand(r->ctx, "AUTH %s", r->url.pass);
        return setup_reply(r, rep, "AUTH");
    }
    rep = redisCommand(r->ctx, "PING");
    if (rep != NULL && !(rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOAUTH", 6) == 0)) {
        freeReplyObject(rep);
        return 0;
    }
    return setup_reply(r, rep, NULL);
}

/* The primary just named, connected to, authenticated and its ROLE master. 0, or -1
 * (closed, errstr and cause set). The setup commands get the connect time-out even on a
 * connection whose commands have none (a watcher's blocking one), so that a Redis that
 * stopped answering cannot hang a reconnection. */
static int open_primary(struct rconn *r, double t)
{
    if (open_node(r, r->primary.host, r->primary.port, t) != 0) return -1;
    redisSetTimeout(r->ctx, tv_of(t));
    return authenticate(r) != 0 || check_role(r) != 0 ? -1 : 0;
}

/* errstr: head, then the sentinels' answers in parentheses (said, n of them, each ending at
 * ends[i]: "s1:26379: Connection refused; s2:26379: ..."), then tail. As many answers as leave
 * room for the tail are said whole and the others counted, "and 3 more": a long list
 * (eight sentinels, long host names or errors) cut the line short and lost the advice at its
 * end, errstr being one line a caller copies as it is. A first answer too long for the line
 * by itself is cut, "...", so that the count and the advice still come after it. */
static void say_answers(struct rconn *r, const char *head, const char *said, const size_t *ends,
                        int n, const char *tail)
{
    size_t fixed = strlen(head) + strlen(" ()") + strlen(tail);
    size_t room = fixed < sizeof r->errstr ? sizeof r->errstr - 1 - fixed : 0, shown;
    char more[32] = "";
    const char *dots = "";
    int kept = n;

    while (kept > 1) {
        snprintf(more, sizeof more, "; and %d more", n - kept);
        if (ends[kept - 1] + (kept < n ? strlen(more) : 0) <= room) break;
        kept--;
    }
    if (kept < n)
        snprintf(more, sizeof more, "; and %d more", n - kept);
    else
        more[0] = '\0';
    shown = n > 0 ? ends[kept - 1] : 0;
    if (shown + strlen(more) > room) { /* the first answer alone: cut, "..." */
        shown = room > strlen(more) + 3 ? room - strlen(more) - 3 : 0;
        dots = "...";
    }
    err_set(r->errstr, sizeof r->errstr, "%s (%.*s%s%s)%s", head, (int)shown, said, dots, more,
            tail);
}

/* Through sentinels: each in turn names the primary, until one names a primary that can be
 * reached, takes the password and says ROLE master. A sentinel's answer is not final: one
 * listed first may be stale (it names a dead primary, or a demoted one) where the next knows
 * the live one. A primary named again is not tried again. When none works, errstr says so:
 * the primary's own error when the sentinels that named one all named the same (a failover
 * under way: ROLE says slave), else each sentinel's answer, in one line. 0, or -1. */
static int connect_sentinels(struct rconn *r, double t)
{
    struct rconn_node tried[RCONN_SENTINELS_MAX]; /* each primary tried, once */
    char said[RCONN_SENTINELS_MAX * 256] = "";    /* every answer, whole: say_answers cuts */
    char first[sizeof r->errstr], node[300], named[300], why[600], head[300], tail[300];
    size_t len = 0, ends[RCONN_SENTINELS_MAX]; /* ends[i]: said's length with answer i */
    int i, k, ntried = 0, others = 0, first_lost = 0, n;
    const char *fix;

    for (i = 0; i < r->url.nsentinels; i++) {
        if (ask_sentinel(r, i, t, why, sizeof why) == 0) {
            node_name(named, sizeof named, r->primary.host, r->primary.port);
            for (k = 0; k < ntried; k++)
                if (strcmp(tried[k].host, r->primary.host) == 0 && tried[k].port == r->primary.port)
                    break;
            if (k < ntried) {
                snprintf(why, sizeof why, "named %s too", named);
            } else {
                if (open_primary(r, t) == 0) return 0;
                tried[ntried] = r->primary;
                if (ntried++ == 0) {
                    str_copy(first, sizeof first, r->errstr);
                    first_lost = r->lost;
                } else {
                    others = 1;
                }
                snprintf(why, sizeof why, "named %s: %s", named, r->cause);
            }
        }
        node_name(node, sizeof node, r->url.sentinels[i].host, r->url.sentinels[i].port);
        /* Whole answers only: one that does not fit is counted with the rest (say_answers). */
        n = snprintf(said + len, sizeof said - len, "%s%s: %s", len ? "; " : "", node, why);
        if (n > 0 && (size_t)n < sizeof said - len) len += (size_t)n;
        said[len] = '\0';
        ends[i] = len;
    }
    r->lost = 0;
    if (ntried > 0 && !others) {
        r->primary = tried[0];
        str_copy(r->errstr, sizeof r->errstr, first);
        r->lost = first_lost;
        return -1;
    }
    memset(&r->primary, 0, sizeof r->primary);
    if (ntried == 0) {
        snprintf(head, sizeof head, "redis sentinels of %s: none gave its primary", r->url.master);
        snprintf(tail, sizeof tail, "; check that the sentinels run and monitor %s", r->url.master);
    } else {
        fix =
            fix_in(sentinel_fixes, sizeof sentinel_fixes / sizeof sentinel_fixes[0], said, &r->url);
        if (fix == NULL)
            fix = fix_in(reply_fixes, sizeof reply_fixes / sizeof reply_fixes[0], said, &r->url);
        snprintf(head, sizeof head, "redis sentinels of %s: no primary they named works",
                 r->url.master);
        snprintf(tail, sizeof tail, "; %s", fix ? fix : "check that the primaries they name run");
    }
    say_answers(r, head, said, ends, r->url.nsentinels, tail);
    return -1;
}

static int connect_held(struct rconn *r)
{
    double t = r->timeout > 0 ? r->timeout : 5.0;
    redisReply *rep;

    rconn_close(r);
    if (r->url.unix_path[0]) {
        char what[64];
        r->ctx = redisConnectUnixWithTimeout(r->url.unix_path, tv_of(t));
        if (r->ctx != NULL && r->ctx->err && not_socket(r->url.unix_path, what, sizeof what)) {
            fail_as(r, what, 1);
            return -1;
        }
        if (connected(r) != 0) return -1;
    } else if (r->url.nsentinels > 0) {
        if (connect_sentinels(r, t) != 0) return -1;
    } else if (open_node(r, r->url.host, r->url.port, t) != 0) {
        return -1;
    }
    /* As open_primary's (done there through sentinels). */
    redisSetTimeout(r->ctx, tv_of(t));
    /* Command functions fork: their programs must not inherit a connection to Redis. */
    fcntl(r->ctx->fd, F_SETFD, FD_CLOEXEC);
    if (r->url.nsentinels == 0 && authenticate(r) != 0) return -1;
    if (r->url.db != 0) {
        char what[32];
        snprintf(what, sizeof what, "SELECT %d", r->url.db);
        rep = redisCommand(r->ctx, "SELECT %d", r->url.db);
        if (setup_reply(r, rep, what) != 0) return -1;
    }
    r->module = 0;
    r->module_asked = 0;
    if (r->want_module != 0 && ask_module(r, r->want_module) != 0) return -1;
    redisSetTimeout(r->ctx, tv_of(r->timeout > 0 ? r->timeout : 0));
    r->connects++;
    r->scripts = 0;
    r->evalsha_refused = 0;
    return 0;
}

void rconn_close(struct rconn *r)
{
    if (r->ctx != NULL) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
    tls_session_release(r->tls);
    r->tls = NULL;
}

void rconn_drop_if_closed(struct rconn *r)
{
    char c;
    ssize_t n;

    if (r->ctx == NULL) return;
    n = recv(r->ctx->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        rconn_close(r);
}

/* ---- scripts sent by their SHA-1 (rconn.h) ------------------------------------------ */

static pthread_mutex_t script_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned script_bits; /* the bits given out so far (under script_lock) */

/* s's SHA-1 and bit, once a process: the first caller computes them under the lock, every
 * later one sees ready (acquire) and reads what it published. */
static void script_prepare(struct rconn_script *s)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n, i;

    pthread_mutex_lock(&script_lock);
    if (!s->ready) {
        if (EVP_Digest(s->body, strlen(s->body), md, &n, EVP_sha1(), NULL) != 1 || n != 20)
            xcheck(NULL, "a script's SHA-1");
        for (i = 0; i < n; i++) {
            s->sha[2 * i] = hex[md[i] >> 4];
            s->sha[2 * i + 1] = hex[md[i] & 15];
        }
        s->sha[40] = '\0';
        for (i = 0; i < 8 * sizeof script_bits && (script_bits & (1u << i)); i++) continue;
        if (i == 8 * sizeof script_bits) xcheck(NULL, "a bit of rconn.scripts for a script");
        script_bits |= 1u << i;
        s->bit = 1u << i;
        __atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&script_lock);
}

void rconn_script_head(struct rconn *r, struct rconn_script *s, const char *head[2])
{
    if (!__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE)) script_prepare(s);
    if ((r->scripts & s->bit) && !r->evalsha_refused) {
        head[0] = "EVALSHA";
        head[1] = s->sha;
    } else {
        head[0] = "EVAL";
        head[1] = s->body;
        r->scripts |= s->bit;
    }
}

static int noscript(const redisReply *rep)
{
    return rep != NULL && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0;
}

/* "NOPERM this user has no permissions to run the 'evalsha' command" */
static int evalsha_refused(const redisReply *rep)
{
    return rep != NULL && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOPERM", 6) == 0 &&
        strcasestr(rep->str, "'evalsha'") != NULL;
}

int rconn_script_again(const redisReply *rep)
{
    return noscript(rep) || evalsha_refused(rep);
}

/* A reply seen: NOSCRIPT means Redis's script cache was emptied under this connection, an
 * unknown command or a NOPERM for one of cq's module's commands that the module (or that
 * group of its commands) is no longer to be used.
 * Through sentinels, READONLY means the primary was demoted by a failover, so
 * the connection is dropped (errstr says why) and the next use asks the sentinels again. The
 * reply still goes to the caller. */
static redisReply *seen(struct rconn *r, redisReply *rep)
{
    if (noscript(rep)) r->scripts = 0; /* SCRIPT FLUSH: the next calls send their bodies again */
    if (evalsha_refused(rep)) r->evalsha_refused = 1; /* ...and with this ACL, every call */
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR && r->module)
        r->module &= ~rconn_module_refused(rep->str); /* the next calls send the scripts */
    if (rep != NULL && r->url.nsentinels > 0 && rep->type == REDIS_REPLY_ERROR &&
        strncmp(rep->str, "READONLY", 8) == 0)
        fail(r, "READONLY: this node was the primary and is a replica now");
    return rep;
}

static int ensure(struct rconn *r)
{
    if (r->ctx != NULL) return 0;
    if (r->explicit_connect) {
        /* errstr keeps why it was closed, if it says */
        if (r->errstr[0] == '\0') snprintf(r->errstr, sizeof r->errstr, "redis: not connected");
        return -1;
    }
    return rconn_connect(r);
}

unsigned rconn_module_refused(const char *err)
{
    if (strncasecmp(err, "ERR unknown command 'cq.", 24) == 0)
        return RCONN_MODULE_WORKER | RCONN_MODULE_ENQUEUE; /* MODULE UNLOAD: all of them */
    if (strncmp(err, "NOPERM", 6) != 0) return 0;
    if (strcasestr(err, "'cq.enqueue") != NULL) return RCONN_MODULE_ENQUEUE;
    return strcasestr(err, "'cq.") != NULL ? RCONN_MODULE_WORKER : 0;
}

redisReply *rconn_command(struct rconn *r, int argc, const char **argv, const size_t *lens)
{
    if (rconn_append(r, argc, argv, lens) != 0) return NULL;
    return rconn_read(r);
}

redisReply *rconn_commandf(struct rconn *r, const char *fmt, ...)
{
    redisReply *rep;
    struct sigpipe_hold old;
    locale_t loc;
    va_list ap;
    int held;

    if (ensure(r) != 0) return NULL;
    held = pipe_hold(r, &old);
    va_start(ap, fmt);
    loc = locale_c_enter(); /* a %f or %g with a point, whatever the program's locale */
    rep = redisvCommand(r->ctx, fmt, ap);
    locale_c_leave(loc);
    va_end(ap);
    pipe_release(held, &old);
    if (rep == NULL) fail(r, NULL);
    return seen(r, rep);
}

/* "<c><v>\r\n" at p; returns the end. */
static char *put_count(char *p, char c, size_t v)
{
    *p++ = c;
    p = uint_format(p, v);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static size_t count_len(size_t v)
{
    size_t n = 3; /* the type byte and CRLF */

    do {
        n++;
        v /= 10;
    } while (v != 0);
    return n;
}

/* Room for n more bytes. */
static void buf_reserve(struct rconn_buf *b, size_t n)
{
    size_t cap;

    if (b->cap - b->len >= n) return;
    cap = b->cap ? b->cap * 2 : 4096;
    if (cap - b->len < n) cap = b->len + n;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void rconn_buf_array(struct rconn_buf *b, size_t argc)
{
    buf_reserve(b, count_len(argc));
    b->len = (size_t)(put_count(b->data + b->len, '*', argc) - b->data);
}

/* "$<n>\r\n<s>\r\n" at p; returns the end. */
static char *put_arg(char *p, const char *s, size_t n)
{
    p = put_count(p, '$', n);
    memcpy(p, s, n);
    p += n;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

void rconn_buf_arg(struct rconn_buf *b, const char *s, size_t len)
{
    buf_reserve(b, count_len(len) + len + 2);
    b->len = (size_t)(put_arg(b->data + b->len, s, len) - b->data);
}

void rconn_buf_str(struct rconn_buf *b, const char *s)
{
    rconn_buf_arg(b, s, strlen(s));
}

void rconn_buf_raw(struct rconn_buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

void rconn_buf_free(struct rconn_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

int rconn_append_buf(struct rconn *r, struct rconn_buf *b)
{
    int rc;

    if (ensure(r) != 0) {
        b->len = 0; /* as below: a caller that tries again formats its commands again */
        return -1;
    }
    rc = redisAppendFormattedCommand(r->ctx, b->data, b->len);
    b->len = 0;
    if (rc != REDIS_OK) {
        fail(r, NULL);
        return -1;
    }
    return 0;
}

int rconn_append(struct rconn *r, int argc, const char **argv, const size_t *lens)
{
    struct rconn_buf b;
    size_t total = count_len((size_t)argc), i;
    char *p;
    int rc;

    /* The request in RESP, formatted here in one buffer: hiredis 0.14's argv formatting
     * (sdscatfmt per argument) was half of a worker's instructions a job. */
    for (i = 0; i < (size_t)argc; i++) {
        size_t n = lens != NULL ? lens[i] : strlen(argv[i]);
        total += count_len(n) + n + 2;
    }
    b.data = xmalloc(total);
    b.cap = total;
    p = put_count(b.data, '*', (size_t)argc);
    for (i = 0; i < (size_t)argc; i++)
        p = put_arg(p, argv[i], lens != NULL ? lens[i] : strlen(argv[i]));
    b.len = (size_t)(p - b.data);
    rc = rconn_append_buf(r, &b);
    free(b.data);
    return rc;
}

int rconn_flush(struct rconn *r)
{
    struct sigpipe_hold old;
    int done = 0, held, rc = 0;

    if (r->ctx == NULL) {
        if (r->errstr[0] == '\0') snprintf(r->errstr, sizeof r->errstr, "redis: not connected");
        return -1;
    }
    held = pipe_hold(r, &old);
    while (!done && rc == 0)
        if (redisBufferWrite(r->ctx, &done) != REDIS_OK) rc = -1;
    pipe_release(held, &old);
    if (rc != 0) fail(r, NULL);
    return rc;
}

int rconn_appendf(struct rconn *r, const char *fmt, ...)
{
    locale_t loc;
    va_list ap;
    int rc;

    if (ensure(r) != 0) return -1;
    va_start(ap, fmt);
    loc = locale_c_enter(); /* as rconn_commandf */
    rc = redisvAppendCommand(r->ctx, fmt, ap);
    locale_c_leave(loc);
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
    struct sigpipe_hold old;
    int held, rc;

    if (r->ctx == NULL) {
        if (r->errstr[0] == '\0') snprintf(r->errstr, sizeof r->errstr, "redis: not connected");
        return NULL;
    }
    held = pipe_hold(r, &old); /* what was appended goes out first */
    rc = redisGetReply(r->ctx, &rep);
    pipe_release(held, &old);
    if (rc != REDIS_OK || rep == NULL) {
        fail(r, NULL);
        return NULL;
    }
    return seen(r, rep);
}

/* hiredis 0.14 marks a blocking context failed when a read times out (EAGAIN is an I/O
 * error to it), so a wait longer than the socket's timeout cannot be a redisGetReply: poll()
 * keeps the time, and the socket is read only once it has something. */
int rconn_read_timed(struct rconn *r, double seconds, redisReply **out)
{
    long long until = time_mono_ms() + (long long)(seconds * 1000.0);
    void *rep = NULL;

    *out = NULL;
    if (rconn_flush(r) != 0) return -1;
    for (;;) {
        struct pollfd p;
        long long left;
        int n;

        if (redisGetReplyFromReader(r->ctx, &rep) != REDIS_OK) {
            fail(r, NULL);
            return -1;
        }
        if (rep != NULL) {
            *out = seen(r, rep);
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

int rconn_poll(struct rconn *r, int other, int timeout_ms)
{
    struct pollfd p[2];
    int n;

    if (r->ctx == NULL || r->ctx->reader->pos < r->ctx->reader->len) return 1;
    p[0].fd = r->ctx->fd;
    p[0].events = POLLIN;
    p[1].fd = other;
    p[1].events = POLLIN;
    p[0].revents = p[1].revents = 0;
    n = poll(p, other >= 0 ? 2 : 1, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : 1; /* a read then says what is wrong */
    return p[0].revents != 0;
}

int rconn_clients_listed(const char *list, const char *ids)
{
    const char *p;

    for (p = ids; *p != '\0'; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
        char pat[40];
        int len = (int)strcspn(p, ",");
        if (len == 0 || len > 30) continue;
        snprintf(pat, sizeof pat, "\nid=%.*s ", len, p);
        if (strncmp(list, pat + 1, strlen(pat + 1)) == 0 || strstr(list, pat) != NULL) return 1;
    }
    return 0;
}
