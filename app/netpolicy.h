/* netpolicy.h - where download_link may connect: denied networks and allowed hosts.
 *
 * A job names the link a worker fetches, so whoever can enqueue can point a worker at the
 * networks it sits in (cloud metadata at 169.254.169.254, admin ports on localhost). A
 * policy says which addresses a connection may never go to (CIDRs, checked on the address
 * actually connected to, after DNS) and, optionally, which host names a link or a redirect
 * may name. http.c applies it to every connection and every redirect hop (see its DESIGN).
 *
 * The lists:
 *   deny     CIDRs ("10.0.0.0/8", "fd00::/8") or addresses ("127.0.0.2" = /32); the words
 *            "default" (NETPOLICY_DEFAULT), "private" (NETPOLICY_PRIVATE) and "none" (drop
 *            everything denied so far, the defaults included). A new policy starts with the
 *            default list; each netpolicy_deny adds to it, in order.
 *   hosts    exact names ("img.example.com"), "*.example.com" for any name below
 *            example.com (not example.com itself), "*" for any host, or IP addresses;
 *            case-insensitive, a trailing dot ignored. Empty (the start) allows any host.
 * An IPv4 address in IPv6 clothing (::ffff:a.b.c.d, NAT64's 64:ff9b::a.b.c.d) is checked
 * as the IPv4 address it reaches as well, and an IPv6 rule inside ::ffff:0:0/96 is kept as
 * the IPv4 rule it means, so 127.0.0.2/32 also refuses ::ffff:127.0.0.2.
 *
 * A policy is built once, before threads start, and only read afterwards: the checks may be
 * called from any thread at once.
 */
#ifndef CQ_NETPOLICY_H
#define CQ_NETPOLICY_H

#include <stddef.h>
#include <sys/socket.h>

/* Denied unless dropped with "none": nothing a worker should ever reach by a job's link.
 * "This network", link-local (the cloud metadata services of AWS, GCP, Azure, Oracle and
 * DigitalOcean answer on 169.254.169.254; AWS's IPv6 one is fd00:ec2::254), Alibaba Cloud's
 * metadata address, multicast, reserved and broadcast. */
#define NETPOLICY_DEFAULT                                                         \
    "0.0.0.0/8,169.254.0.0/16,100.100.100.200/32,224.0.0.0/4,240.0.0.0/4,::/128," \
    "fe80::/10,fd00:ec2::254/128,ff00::/8"
/* "private": this host and the private networks: loopback, RFC 1918, carrier-grade NAT
 * (RFC 6598), link-local, IPv6 unique-local (fc00::/7). */
#define NETPOLICY_PRIVATE                                                \
    "127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10," \
    "169.254.0.0/16,::1/128,fc00::/7,fe80::/10"

/* At most this many networks and this many host patterns. */
#define NETPOLICY_MAX_RULES 256
#define NETPOLICY_MAX_HOSTS 256

struct netpolicy;

/* A policy denying NETPOLICY_DEFAULT and allowing any host. Free with netpolicy_free. */
struct netpolicy *netpolicy_new(void);
void netpolicy_free(struct netpolicy *p);

/* Add a comma-separated list of networks (see above) to the denied ones. source names where
 * the list came from ("--deny-networks", "$CQ_DENY_NETWORKS"); refusals quote it. Returns
 * 0, or -1 with err saying which item is wrong and how ("'10.0.0.1/8' has host bits set:
 * the network is 10.0.0.0/8"); p is then unchanged. A list with no item in it ("", ",") is
 * refused, as by netpolicy_allow_hosts: "none" is the word for denying nothing. */
int netpolicy_deny(struct netpolicy *p, const char *list, const char *source, char *err,
                   size_t errlen);

/* Add a comma-separated list of host patterns (see above) to the allowed ones; as
 * netpolicy_deny. A list with no host in it ("", ",") is refused: it would otherwise leave
 * every host allowed. */
int netpolicy_allow_hosts(struct netpolicy *p, const char *list, const char *source, char *err,
                          size_t errlen);

/* Whether a connection may go to this address (AF_INET or AF_INET6; len its size). 0, or
 * -1 with why set: "connection to 127.0.0.2 refused by network policy (--deny-networks
 * 127.0.0.2/32)". Another family is refused. */
int netpolicy_check_addr(const struct netpolicy *p, const struct sockaddr *sa, size_t len,
                         char *why, size_t whylen);

/* The same for an address in text ("127.0.0.1", "::1"); text that is no address is
 * refused. */
int netpolicy_check_ip(const struct netpolicy *p, const char *ip, char *why, size_t whylen);

/* Whether a link or a redirect may name this host (as a URL has it: "Img.Example.com",
 * "[::1]"): it must match an allowed pattern when there are any, and a host that is an IP
 * address must not be in a denied network. 0, or -1 with why set ("host 'x.test' is not in
 * --allow-hosts"). */
int netpolicy_check_host(const struct netpolicy *p, const char *host, char *why, size_t whylen);

/* The host of an absolute http(s) URL, checked as by netpolicy_check_host; a URL whose host
 * cannot be read is refused. */
int netpolicy_check_url(const struct netpolicy *p, const char *url, char *why, size_t whylen);

#endif
