/* tls.c - a verified TLS session to Redis behind a socketpair (see tls.h). */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "util.h"

#define RELAY_BUF 65536 /* bytes buffered in each direction */
/* Keep-alive as hiredis 0.14's redisKeepAlive sets it for redis:// (its net.c, with
 * REDIS_KEEPALIVE_INTERVAL 15): the first probe after 15 s idle, then every 5 s, 3 of them,
 * so that a peer gone without a word (a host that lost power, a cut link) is found within
 * 30 s, not after the system's 2 hours. rediss:// gets the same. */
#define KEEPALIVE_IDLE 15

struct tls_session {
    pthread_mutex_t mu;
    pthread_t relay; /* joined by tls_session_release */
    char error[256];
};

struct relay {
    struct tls_session *session;
    SSL *ssl;
    SSL_CTX *ctx;
    int net;   /* the TCP socket under the session (non-blocking) */
    int plain; /* our end of the socketpair (non-blocking) */
    /* up: from hiredis to the server; down: from the server to hiredis */
    char up[RELAY_BUF], down[RELAY_BUF];
    size_t up_len, down_len;
};

/* The OpenSSL error queue's first message, or what fallback says; the queue is emptied. A
 * system error (a file that cannot be opened) is said as the system says it: OpenSSL has no
 * reason string for it. */
static const char *ssl_error(char *buf, size_t len, const char *fallback)
{
    unsigned long e = ERR_get_error();

    if (e == 0) {
        str_copy(buf, len, fallback);
    } else if (ERR_GET_LIB(e) == ERR_LIB_SYS) {
        str_copy(buf, len, strerror(ERR_GET_REASON(e)));
    } else {
        const char *reason = ERR_reason_error_string(e);
        str_copy(buf, len, reason ? reason : fallback);
    }
    ERR_clear_error();
    return buf;
}

/* Whether path can be opened for reading and is no directory: 0, or -1 with the system's
 * reason in buf ("No such file or directory", "Permission denied", "Is a directory"), which
 * OpenSSL's loaders do not give. Nothing is read (a pipe, as --tls-ca <(...) gives, keeps
 * all of its bytes for OpenSSL), and a FIFO with no writer does not block the open. */
static int readable(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    int rc = 0;

    if (fd < 0) {
        str_copy(buf, len, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        str_copy(buf, len, strerror(EISDIR));
        rc = -1;
    }
    close(fd);
    return rc;
}

static int set_nonblocking(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0) return -1;
    return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* poll one fd for events until the deadline (time_mono_ms); 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        long long left = deadline - time_mono_ms();
        int n;

        if (left <= 0) return 0;
        n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR) continue;
        return n < 0 ? -1 : n > 0;
    }
}

/* IPv4 first, IPv6 where a name has no IPv4 address, as hiredis does: a dual-stack name
 * whose IPv6 route drops packets would spend the deadline on it, where its IPv4 address
 * answers at once (h30's review). getaddrinfo's status. */
static int addresses(const char *host, const char *svc, int flags, struct addrinfo **res)
{
    struct addrinfo hints;
    int rc;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = flags;
    rc = getaddrinfo(host, svc, &hints, res);
    if (rc != 0) {
        hints.ai_family = AF_INET6;
        rc = getaddrinfo(host, svc, &hints, res);
    }
    return rc;
}

/* What the lookup thread runs (tls.h): IPv4 first, then IPv6. */
static int lookup_name(const char *host, const char *svc, struct addrinfo **res)
{
    return addresses(host, svc, 0, res);
}

int (*tls_lookup)(const char *host, const char *svc, struct addrinfo **res) = lookup_name;
double tls_lookup_min = 10.0;

/* A name's lookup, run on a thread of its own: getaddrinfo has no time-out, and a DNS server
 * that does not answer holds it for the resolver's own (resolv.conf: 5 s a try, 2 tries a
 * server, a lookup for each family), far past the connect's. The caller waits for it until
 * the deadline only; the caller, the thread and any other caller waiting on it each hold a
 * reference, and the last to let go frees it, so that a thread left behind frees it (and its
 * answer) when getaddrinfo returns. While it runs it is listed (lookups): a connect to the same
 * name waits for it instead of starting another, so that a worker reconnecting to a name the
 * DNS server does not answer holds one thread for it, not one a try; and where it answers in
 * time, that connect takes the same addresses, holding its reference while it connects. */
struct lookup {
    pthread_mutex_t mu;
    pthread_cond_t done_cv; /* on CLOCK_MONOTONIC, as time_mono_ms */
    int refs, done, rc;
    struct addrinfo *res; /* the answer (rc 0), read by those holding a reference once done */
    char *host, svc[16];
    struct lookup *next; /* in lookups while its thread runs */
};

static pthread_mutex_t lookups_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lookup *lookups;

static void lookup_unref(struct lookup *l)
{
    int last;

    pthread_mutex_lock(&l->mu);
    last = --l->refs == 0;
    pthread_mutex_unlock(&l->mu);
    if (!last) return;
    if (l->res != NULL) freeaddrinfo(l->res);
    pthread_cond_destroy(&l->done_cv);
    pthread_mutex_destroy(&l->mu);
    free(l->host);
    free(l);
}

static void lookup_unlist(struct lookup *l)
{
    struct lookup **p;

    pthread_mutex_lock(&lookups_mu);
    for (p = &lookups; *p != NULL; p = &(*p)->next)
        if (*p == l) {
            *p = l->next;
            break;
        }
    pthread_mutex_unlock(&lookups_mu);
}

static void *lookup_main(void *arg)
{
    struct lookup *l = arg;
    struct addrinfo *res = NULL;
    int rc;

    thread_name("cq-resolve");
    rc = tls_lookup(l->host, l->svc, &res);
    lookup_unlist(l);
    pthread_mutex_lock(&l->mu);
    l->rc = rc;
    l->res = rc == 0 ? res : NULL;
    l->done = 1;
    pthread_cond_broadcast(&l->done_cv);
    pthread_mutex_unlock(&l->mu);
    lookup_unref(l);
    return NULL;
}

/* Wait for l until the deadline (until): 1 when it is done, *rc its status (its answer, for
 * rc 0, is l->res, which stays as it is while the caller holds its reference), else 0. */
static int lookup_wait(struct lookup *l, const struct timespec *until, int *rc)
{
    int done;

    pthread_mutex_lock(&l->mu);
    while (!l->done)
        if (pthread_cond_timedwait(&l->done_cv, &l->mu, until) != 0) break; /* ETIMEDOUT */
    done = l->done;
    *rc = l->rc;
    pthread_mutex_unlock(&l->mu);
    return done;
}

/* host's addresses by the deadline (time_mono_ms) into *res, or -1 with err, which says the
 * time the lookup had, timeout s. *res is freed with freeaddrinfo where *held is NULL, else it
 * is the answer of the lookup *held, let go with lookup_unref. An address (127.0.0.1, ::1) is
 * read as it is, without a thread; where no thread can be started, the name is looked up
 * here, without a deadline, as before there was one. */
static int resolve(const char *host, const char *svc, double timeout, long long deadline,
                   struct addrinfo **res, struct lookup **held, char *err, size_t errlen)
{
    struct timespec until = {(time_t)(deadline / 1000), (long)(deadline % 1000) * 1000000L};
    struct lookup *l;
    pthread_condattr_t ca;
    pthread_attr_t ta;
    pthread_t tid;
    sigset_t all, old;
    int made, rc;

    *held = NULL;
    if (addresses(host, svc, AI_NUMERICHOST, res) == 0) return 0;
    /* One under way, started by an earlier connect to this name, or by another thread's at
     * the same time (a worker's watchers): its answer, where it comes in time. */
    pthread_mutex_lock(&lookups_mu);
    for (l = lookups; l != NULL; l = l->next)
        if (strcmp(l->host, host) == 0 && strcmp(l->svc, svc) == 0) {
            pthread_mutex_lock(&l->mu);
            l->refs++;
            pthread_mutex_unlock(&l->mu);
            break;
        }
    pthread_mutex_unlock(&lookups_mu);
    if (l != NULL) {
        made = lookup_wait(l, &until, &rc);
        if (made && rc == 0) {
            *res = l->res;
            *held = l;
            return 0;
        }
        lookup_unref(l);
        if (!made) goto late;
        /* It failed (the resolver's error, or EAI_AGAIN where its thread could not start):
         * a lookup of this connect's own, as before. */
    }
    l = xcalloc(1, sizeof *l);
    l->refs = 2;
    l->host = xstrdup(host);
    str_copy(l->svc, sizeof l->svc, svc);
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&lookups_mu);
    l->next = lookups;
    lookups = l;
    pthread_mutex_unlock(&lookups_mu);
    /* As the relay: no signal of the program's on this thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    made = pthread_create(&tid, &ta, lookup_main, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&ta);
    if (made != 0) { /* a pids limit, RLIMIT_NPROC: the lookup without its deadline */
        /* Listed a moment, another connect may wait on it: ended, it goes on to its own. */
        lookup_unlist(l);
        pthread_mutex_lock(&l->mu);
        l->rc = EAI_AGAIN;
        l->done = 1;
        pthread_cond_broadcast(&l->done_cv);
        pthread_mutex_unlock(&l->mu);
        lookup_unref(l); /* the thread's */
        lookup_unref(l);
        rc = tls_lookup(host, svc, res);
    } else if (!lookup_wait(l, &until, &rc)) {
        lookup_unref(l);
        goto late;
    } else if (rc == 0) {
        *res = l->res;
        *held = l;
    } else {
        lookup_unref(l);
    }
    if (rc != 0) {
        err_set(err, errlen, "%s", gai_strerror(rc));
        return -1;
    }
    return 0;
late:
    err_set(err, errlen,
            "could not resolve %s within %g s (the name service did not answer: check the "
            "nameservers of /etc/resolv.conf, and the hosts line of /etc/nsswitch.conf)",
            host, timeout);
    return -1;
}

/* A TCP connection to host:port; non-blocking. The name's lookup may take timeout s, or
 * tls_lookup_min s where that is more; *deadline is then set timeout s from its answer, for
 * the connect and what follows it (the handshake). -1 with err. */
static int tcp_connect(const char *host, int port, double timeout, long long *deadline, char *err,
                       size_t errlen)
{
    struct addrinfo *res = NULL, *ai;
    struct lookup *held;
    char svc[16];
    int fd = -1, saved = ETIMEDOUT;
    double budget = timeout > tls_lookup_min ? timeout : tls_lookup_min;

    snprintf(svc, sizeof svc, "%d", port);
    if (resolve(host, svc, budget, time_mono_ms() + (long long)(budget * 1000.0), &res, &held, err,
                errlen) != 0)
        return -1;
    *deadline = time_mono_ms() + (long long)(timeout * 1000.0);
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        socklen_t sl = sizeof saved;
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        if (errno != EINPROGRESS) {
            saved = errno;
        } else {
            /* errno is read here, not after the wait: a signal in it left EINTR there */
            int ready = wait_fd(fd, POLLOUT, *deadline);
            if (ready == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &saved, &sl) == 0 && saved == 0)
                break;
            if (ready == 0) saved = ETIMEDOUT;
            if (ready < 0) saved = errno;
        }
        close(fd);
        fd = -1;
    }
    if (held != NULL)
        lookup_unref(held);
    else
        freeaddrinfo(res);
    if (fd < 0) {
        err_set(err, errlen, "%s", saved == ETIMEDOUT ? "Connection timed out" : strerror(saved));
        return -1;
    }
    int one = 1, idle = KEEPALIVE_IDLE, intvl = KEEPALIVE_IDLE / 3, cnt = 3;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    return fd;
}

int tls_tcp_connect(const char *host, int port, double timeout, char *err, size_t errlen)
{
    long long deadline;
    int fd = tcp_connect(host, port, timeout, &deadline, err, errlen);

    if (fd >= 0 && set_nonblocking(fd, 0) != 0) {
        err_set(err, errlen, "fcntl: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static SSL_CTX *make_ctx(const struct tls_opts *o, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char msg[256] = "";

    if (ctx == NULL) {
        err_set(err, errlen, "TLS: %s", ssl_error(msg, sizeof msg, "cannot make a context"));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (o->ca != NULL && o->ca[0] != '\0') {
        if (readable(o->ca, msg, sizeof msg) != 0 ||
            SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
            err_set(err, errlen, "TLS: CA file '%s': %s", o->ca,
                    msg[0] ? msg : ssl_error(msg, sizeof msg, "no certificate in it"));
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        err_set(err, errlen, "TLS: the system's CAs: %s", ssl_error(msg, sizeof msg, "missing"));
        goto fail;
    }
    if (o->cert != NULL && o->cert[0] != '\0') {
        const char *key = o->key != NULL && o->key[0] != '\0' ? o->key : o->cert;
        if (readable(o->cert, msg, sizeof msg) != 0 ||
            SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1) {
            err_set(err, errlen, "TLS: certificate file '%s': %s", o->cert,
                    msg[0] ? msg : ssl_error(msg, sizeof msg, "no certificate in it"));
            goto fail;
        }
        if (readable(key, msg, sizeof msg) != 0 ||
            SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            err_set(err, errlen, "TLS: key file '%s': %s", key,
                    msg[0] ? msg
                           : ssl_error(msg, sizeof msg,
                                       "cannot be read, or does not match the certificate"));
            goto fail;
        }
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* The handshake on fd by the deadline, checking the certificate against host. */
static SSL *handshake(SSL_CTX *ctx, int fd, const char *host, long long deadline, char *err,
                      size_t errlen)
{
    SSL *ssl = SSL_new(ctx);
    unsigned char addr[16];
    char msg[256];
    int rc;

    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        err_set(err, errlen, "TLS: %s", ssl_error(msg, sizeof msg, "cannot make a session"));
        SSL_free(ssl);
        return NULL;
    }
    if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1) {
        /* An address: the certificate must name it (IP SAN); no SNI for addresses. */
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
    } else {
        SSL_set_tlsext_host_name(ssl, host);
        SSL_set1_host(ssl, host);
    }
    while ((rc = SSL_connect(ssl)) != 1) {
        int e = SSL_get_error(ssl, rc), ready = 0;
        if (e == SSL_ERROR_WANT_READ) ready = wait_fd(fd, POLLIN, deadline);
        if (e == SSL_ERROR_WANT_WRITE) ready = wait_fd(fd, POLLOUT, deadline);
        if (ready == 1) continue;
        if (ready == 0 && (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)) {
            err_set(err, errlen, "TLS: no handshake within the time-out (is this a TLS port?)");
        } else if (SSL_get_verify_result(ssl) != X509_V_OK) {
            err_set(err, errlen, "TLS: certificate verify failed: %s",
                    X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
            ERR_clear_error();
        } else {
            err_set(err, errlen, "TLS: handshake failed: %s",
                    ssl_error(msg, sizeof msg, "the server closed the connection"));
        }
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

/* The session ended with SSL_get_error's e: note why for the owner (a clean close_notify is
 * no failure). Returns -1. */
static int relay_failed(struct relay *r, int e)
{
    char msg[200];

    if (e == SSL_ERROR_ZERO_RETURN) return -1;
    if (ERR_peek_error() == 0) {
        /* A write that failed on a reset connection: the server's alert saying why may be
         * waiting to be read (a refused client certificate comes so). */
        char scratch[512];
        ERR_clear_error();
        SSL_read(r->ssl, scratch, sizeof scratch);
    }
    ssl_error(msg, sizeof msg, "the connection was lost");
    pthread_mutex_lock(&r->session->mu);
    snprintf(r->session->error, sizeof r->session->error, "TLS: %s", msg);
    pthread_mutex_unlock(&r->session->mu);
    return -1;
}

int tls_session_error(struct tls_session *s, char *buf, size_t len)
{
    int rc;

    if (s == NULL) return -1;
    pthread_mutex_lock(&s->mu);
    rc = s->error[0] ? 0 : -1;
    if (rc == 0) str_copy(buf, len, s->error);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void tls_session_release(struct tls_session *s)
{
    if (s == NULL) return;
    /* The owner has closed its end: the relay sees it and ends at once. Joining it means
     * nothing of the session (OpenSSL's per-thread state included) outlives this call. */
    pthread_join(s->relay, NULL);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Move what can move now: plain -> up -> TLS, TLS -> down -> plain. Returns 0 to go on, or -1
 * when a side closed or failed. *want_read / *want_write: TLS waits for the socket so. */
static int relay_step(struct relay *r, int *want_read, int *want_write)
{
    ssize_t n;
    int rc, e;

    *want_read = *want_write = 0;
    if (r->up_len < RELAY_BUF) {
        n = read(r->plain, r->up + r->up_len, RELAY_BUF - r->up_len);
        if (n == 0) return -1; /* hiredis closed its end */
        if (n < 0 && errno != EAGAIN && errno != EINTR) return -1;
        if (n > 0) r->up_len += (size_t)n;
    }
    while (r->up_len > 0) {
        rc = SSL_write(r->ssl, r->up, (int)r->up_len);
        if (rc > 0) {
            memmove(r->up, r->up + rc, r->up_len - (size_t)rc);
            r->up_len -= (size_t)rc;
            continue;
        }
        e = SSL_get_error(r->ssl, rc);
        if (e == SSL_ERROR_WANT_WRITE)
            *want_write = 1;
        else if (e == SSL_ERROR_WANT_READ)
            *want_read = 1;
        else
            return relay_failed(r, e);
        break;
    }
    while (r->down_len < RELAY_BUF) {
        rc = SSL_read(r->ssl, r->down + r->down_len, (int)(RELAY_BUF - r->down_len));
        if (rc > 0) {
            r->down_len += (size_t)rc;
            continue;
        }
        e = SSL_get_error(r->ssl, rc);
        if (e == SSL_ERROR_WANT_READ)
            *want_read = 1;
        else if (e == SSL_ERROR_WANT_WRITE)
            *want_write = 1;
        else if (r->down_len == 0)
            return relay_failed(r, e); /* nothing left to hand on */
        break;
    }
    while (r->down_len > 0) {
        n = write(r->plain, r->down, r->down_len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
        if (n < 0) return -1;
        memmove(r->down, r->down + n, r->down_len - (size_t)n);
        r->down_len -= (size_t)n;
    }
    return 0;
}

static void *relay_main(void *arg)
{
    struct relay *r = arg;
    struct sigpipe_hold held;

    thread_name("cq-tls");
    sigpipe_hold(&held); /* for the thread's life: it writes to both sockets */

    for (;;) {
        struct pollfd p[2];
        int want_read, want_write;

        if (relay_step(r, &want_read, &want_write) != 0) break;
        p[0].fd = r->plain;
        p[0].events = (short)((r->up_len < RELAY_BUF ? POLLIN : 0) | (r->down_len ? POLLOUT : 0));
        p[1].fd = r->net;
        p[1].events = (short)((want_read || (r->down_len < RELAY_BUF && !want_write) ? POLLIN : 0) |
                              (want_write ? POLLOUT : 0));
        p[0].revents = p[1].revents = 0;
        if (SSL_pending(r->ssl) > 0 && r->down_len < RELAY_BUF) continue;
        if (poll(p, 2, -1) < 0 && errno != EINTR) break;
        if ((p[0].revents | p[1].revents) & POLLNVAL) break;
        /* The owner closed its end (hiredis's redisFree). Seen by the POLLHUP, which comes
         * whatever was asked: with up full (the server reads nothing) the end is never read,
         * and the loop spun at 100% CPU until the server read again, tls_session_release
         * waiting for it. Where up has room and the end still holds bytes (POLLIN), they are
         * read and sent first, and the read of its end (0) ends the loop (h30's review). */
        if ((p[0].revents & POLLERR) ||
            ((p[0].revents & POLLHUP) && (!(p[0].revents & POLLIN) || r->up_len >= RELAY_BUF)))
            break;
    }
    SSL_shutdown(r->ssl); /* a close_notify, best effort: the socket is non-blocking */
    SSL_free(r->ssl);
    SSL_CTX_free(r->ctx);
    close(r->net);
    close(r->plain);
    free(r);
    return NULL;
}

int tls_connect(const char *host, int port, const struct tls_opts *o, double timeout,
                struct tls_session **session, char *err, size_t errlen)
{
    long long deadline;
    struct relay *r;
    struct tls_session *session_made;
    SSL_CTX *ctx;
    SSL *ssl;
    sigset_t all, old;
    int net, pair[2], made;
    struct sigpipe_hold held;

    ctx = make_ctx(o, err, errlen);
    if (ctx == NULL) return -1;
    net = tcp_connect(host, port, timeout, &deadline, err, errlen);
    if (net < 0) {
        SSL_CTX_free(ctx);
        return -1;
    }
    sigpipe_hold(&held);
    ssl = handshake(ctx, net, host, deadline, err, errlen);
    sigpipe_release(&held);
    if (ssl == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        if (ssl != NULL) err_set(err, errlen, "TLS: socketpair: %s", strerror(errno));
        SSL_free(ssl);
        SSL_CTX_free(ctx);
        close(net);
        return -1;
    }
    r = xcalloc(1, sizeof *r);
    session_made = r->session = xcalloc(1, sizeof *r->session);
    pthread_mutex_init(&r->session->mu, NULL);
    r->ssl = ssl;
    r->ctx = ctx;
    r->net = net;
    r->plain = pair[1];
    set_nonblocking(r->plain, 1);
    /* The relay thread takes no signal: a program's handler (cenqueue's on SIGINT) runs on
     * the thread it expects, never here. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    made = pthread_create(&r->session->relay, NULL, relay_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (made != 0) {
        err_set(err, errlen, "TLS: cannot start the relay thread");
        SSL_free(ssl);
        SSL_CTX_free(ctx);
        close(net);
        close(pair[0]);
        close(pair[1]);
        pthread_mutex_destroy(&r->session->mu);
        free(r->session);
        free(r);
        return -1;
    }
    *session = session_made; /* not r->session: the relay may have freed r already */
    return pair[0];
}
