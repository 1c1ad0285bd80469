/* tls.h - TLS to Redis, for rconn's rediss:// URLs.
 *
 * Debian 12's hiredis (0.14) speaks plain sockets only. A rediss:// connection is therefore
 * a socketpair: hiredis gets one end (redisConnectFd) and speaks RESP on it as on any
 * socket, while a relay thread joins the other end to a TLS session with the server
 * (OpenSSL). The session is verified as a browser verifies one: the server's chain against
 * the CA file given (else the system's CAs), and its certificate against the URL's host
 * name or address. Nothing about RESP changes, so every hiredis call, pipeline and blocking
 * command works unchanged; the cost is a thread and a copy per connection, small next to a
 * network round trip.
 *
 * The relay moves bytes both ways with a buffer each, never blocking on one direction while
 * the other waits, and ends when either side closes: closing (redisFree) the plain end ends
 * the session.
 */
#ifndef CQ_TLS_H
#define CQ_TLS_H

#include <stddef.h>

struct tls_opts {
    const char *ca;   /* PEM file of the CAs to trust; NULL or "": the system's */
    const char *cert; /* PEM client certificate (chain), for servers that ask; NULL: none */
    const char *key;  /* its private key; NULL: in cert's file */
};

/* What the relay of one session saw go wrong, for the owner of the plain end to read after
 * hiredis reports only "Server closed the connection" (a server that refuses the client's
 * certificate says so after the handshake, in an alert). The owner releases it after closing
 * its end of the socketpair: that waits for the relay thread to end. */
struct tls_session;

/* Connect to host:port within timeout seconds of the name's answer (its lookup bounded as
 * tls_tcp_connect's) and make a verified TLS session. Returns the plain end of a socketpair
 * carrying it (close-on-exec) and *session, or -1 with err saying what failed: "TLS:
 * certificate verify failed: unable to get local issuer certificate". */
int tls_connect(const char *host, int port, const struct tls_opts *o, double timeout,
                struct tls_session **session, char *err, size_t errlen);

/* A plain TCP connection to host:port within timeout seconds of the name's answer (every
 * address the name has, in turn). The lookup of a name has timeout seconds, or
 * tls_lookup_min where that is more: one still going then (a DNS server that does not
 * answer) is left to its thread, and err says "could not resolve HOST within 10 s (...)". As
 * redis:// takes it too: a blocking socket, close-on-exec, TCP_NODELAY and SO_KEEPALIVE set,
 * its probes as hiredis sets them (15 s idle, every 5 s, 3 of them). A signal that interrupts the wait goes on waiting
 * within the same deadline, where hiredis 0.14's connect fails at once ("poll(2): Interrupted
 * system call"). Returns the socket, or -1 with err as the system or the resolver says it
 * ("Connection refused", "Connection timed out", "Name or service not known"). */
int tls_tcp_connect(const char *host, int port, double timeout, char *err, size_t errlen);

/* What tls_tcp_connect's thread runs to resolve a name that is no address: getaddrinfo's
 * status and *res (freeaddrinfo), IPv4 first, IPv6 where the name has none. A test's slow or
 * failing stand-in replaces it before any connect (test_rconn); nothing else does. */
struct addrinfo;
extern int (*tls_lookup)(const char *host, const char *svc, struct addrinfo **res);
/* The seconds a name's lookup may take at the least, whatever the connect's time-out: 10,
 * past a resolver's first try at a nameserver that does not answer (resolv.conf's default
 * time-out, 5 s), after which it asks the next one, which answers. A test sets it shorter. */
extern double tls_lookup_min;

/* The session's failure ("TLS: tlsv13 alert certificate required"), copied into buf; 0 when
 * there is one, -1 when the session saw nothing wrong. */
int tls_session_error(struct tls_session *s, char *buf, size_t len);
void tls_session_release(struct tls_session *s); /* after closing the plain end */

#endif
