/* test_netpolicy.c - app/netpolicy.c: parsing --deny-networks and --allow-hosts, matching
 * addresses (IPv4, IPv6, IPv4-mapped and NAT64 forms) and host names, and what a refusal
 * says. No network: tests/test_netpolicy.sh runs the policy through cworker against real
 * servers on 127.0.0.1 and 127.0.0.2.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "netpolicy.h"

#include "check.h"

/* 0 when the policy lets a connection go to ip (text), -1 when it refuses; the reason in
 * why. Through netpolicy_check_addr, as libcurl's open-socket hook calls it. */
static int addr_ok(const struct netpolicy *p, const char *ip, char *why, size_t whylen)
{
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;

    memset(&in4, 0, sizeof in4);
    memset(&in6, 0, sizeof in6);
    if (inet_pton(AF_INET, ip, &in4.sin_addr) == 1) {
        in4.sin_family = AF_INET;
        return netpolicy_check_addr(p, (struct sockaddr *)&in4, sizeof in4, why, whylen);
    }
    if (inet_pton(AF_INET6, ip, &in6.sin6_addr) == 1) {
        in6.sin6_family = AF_INET6;
        return netpolicy_check_addr(p, (struct sockaddr *)&in6, sizeof in6, why, whylen);
    }
    fprintf(stderr, "addr_ok: '%s' is no address\n", ip);
    return 99;
}

static int ok(const struct netpolicy *p, const char *ip)
{
    char why[512];

    return addr_ok(p, ip, why, sizeof why) == 0;
}

/* The defaults: link-local and metadata, "this network", multicast, reserved; loopback and
 * private networks pass (the demo and the tests serve images on 127.0.0.1). */
static void test_defaults(void)
{
    struct netpolicy *p = netpolicy_new();
    char why[512];

    CHECK(!ok(p, "169.254.169.254"));
    CHECK(!ok(p, "169.254.0.1"));
    CHECK(!ok(p, "0.0.0.0"));
    CHECK(!ok(p, "0.1.2.3"));
    CHECK(!ok(p, "224.0.0.1"));
    CHECK(!ok(p, "239.255.255.250"));
    CHECK(!ok(p, "255.255.255.255"));
    CHECK(!ok(p, "100.100.100.200"));
    CHECK(!ok(p, "::"));
    CHECK(!ok(p, "fe80::1"));
    CHECK(!ok(p, "febf:ffff::1"));
    CHECK(!ok(p, "fd00:ec2::254"));
    CHECK(!ok(p, "ff02::1"));
    /* The metadata address in IPv6 clothing: mapped, and through NAT64. */
    CHECK(!ok(p, "::ffff:169.254.169.254"));
    CHECK(!ok(p, "64:ff9b::169.254.169.254"));

    CHECK(ok(p, "127.0.0.1"));
    CHECK(ok(p, "127.0.0.2"));
    CHECK(ok(p, "::1"));
    CHECK(ok(p, "10.1.2.3"));
    CHECK(ok(p, "192.168.1.1"));
    CHECK(ok(p, "100.100.100.201"));
    CHECK(ok(p, "169.253.255.255"));
    CHECK(ok(p, "169.255.0.0"));
    CHECK(ok(p, "fec0::1"));
    CHECK(ok(p, "fd00:ec2::253"));
    CHECK(ok(p, "93.184.216.34"));
    CHECK(ok(p, "2001:db8::1"));
    CHECK(ok(p, "::ffff:127.0.0.1"));

    CHECK_EQ(addr_ok(p, "169.254.169.254", why, sizeof why), -1);
    CHECK_STREQ(why,
                "connection to 169.254.169.254 refused by network policy "
                "(169.254.0.0/16, denied by default)");
    CHECK_EQ(addr_ok(p, "::ffff:169.254.169.254", why, sizeof why), -1);
    CHECK_STREQ(why,
                "connection to ::ffff:169.254.169.254 refused by network policy "
                "(169.254.0.0/16, denied by default)");
    netpolicy_free(p);
}

static void test_deny_lists(void)
{
    struct netpolicy *p = netpolicy_new();
    char err[512] = "", why[512];

    CHECK_EQ(netpolicy_deny(p, " 127.0.0.2/32 , 10.0.0.0/8,,fd00::/8", "--deny-networks", err,
                            sizeof err),
             0);
    CHECK(!ok(p, "127.0.0.2"));
    CHECK(ok(p, "127.0.0.1"));
    CHECK(ok(p, "127.0.0.3"));
    CHECK(!ok(p, "10.255.255.255"));
    CHECK(ok(p, "11.0.0.0"));
    CHECK(!ok(p, "fd12:3456::1"));
    CHECK(ok(p, "fc00::1"));
    CHECK(!ok(p, "169.254.169.254")); /* the defaults stay */
    /* The mapped form of a denied IPv4 address. */
    CHECK_EQ(addr_ok(p, "::ffff:127.0.0.2", why, sizeof why), -1);
    CHECK_STREQ(why,
                "connection to ::ffff:127.0.0.2 refused by network policy "
                "(--deny-networks 127.0.0.2/32)");
    CHECK_EQ(addr_ok(p, "10.0.0.1", why, sizeof why), -1);
    CHECK_STREQ(why,
                "connection to 10.0.0.1 refused by network policy "
                "(--deny-networks 10.0.0.0/8)");

    /* A bare address is one host; a mapped rule is the IPv4 rule it means. */
    CHECK_EQ(netpolicy_deny(p, "none,192.0.2.7,::ffff:198.51.100.0/120", "$CQ_DENY_NETWORKS", err,
                            sizeof err),
             0);
    CHECK(!ok(p, "192.0.2.7"));
    CHECK(ok(p, "192.0.2.8"));
    CHECK(!ok(p, "198.51.100.99"));
    CHECK(!ok(p, "::ffff:198.51.100.99"));
    CHECK(ok(p, "198.51.101.0"));
    /* 'none' dropped everything before it, the defaults and the other list too. */
    CHECK(ok(p, "169.254.169.254"));
    CHECK(ok(p, "127.0.0.2"));
    CHECK_EQ(addr_ok(p, "192.0.2.7", why, sizeof why), -1);
    CHECK_STREQ(why,
                "connection to 192.0.2.7 refused by network policy "
                "($CQ_DENY_NETWORKS 192.0.2.7)");

    CHECK_EQ(netpolicy_deny(p, "none", "--deny-networks", err, sizeof err), 0);
    CHECK(ok(p, "192.0.2.7"));
    CHECK(ok(p, "0.0.0.0"));
    CHECK(ok(p, "::"));
    netpolicy_free(p);
}

static void test_words(void)
{
    struct netpolicy *p = netpolicy_new();
    char err[512] = "", why[512];
    const char *priv[] = {
        "127.0.0.1",   "127.255.0.1", "10.0.0.1",        "172.16.0.1",      "172.31.255.255",
        "192.168.0.1", "100.64.0.1",  "100.127.255.255", "169.254.1.1",     "::1",
        "fc00::1",     "fd00::1",     "fe80::1",         "::ffff:10.0.0.1", "::ffff:127.0.0.1"};
    const char *pub[] = {"172.32.0.1", "172.15.255.255",  "100.128.0.1",
                         "8.8.8.8",    "2001:4860::8888", "::2"};

    CHECK_EQ(netpolicy_deny(p, "private", "--deny-networks", err, sizeof err), 0);
    for (size_t i = 0; i < sizeof priv / sizeof priv[0]; i++) {
        if (ok(p, priv[i])) fprintf(stderr, "  private lets %s through\n", priv[i]);
        CHECK(!ok(p, priv[i]));
    }
    for (size_t i = 0; i < sizeof pub / sizeof pub[0]; i++) {
        if (!ok(p, pub[i])) fprintf(stderr, "  private refuses %s\n", pub[i]);
        CHECK(ok(p, pub[i]));
    }
    CHECK_EQ(addr_ok(p, "192.168.7.7", why, sizeof why), -1);
    CHECK_STREQ(why,
                "connection to 192.168.7.7 refused by network policy "
                "(--deny-networks private: 192.168.0.0/16)");
    CHECK(!ok(p, "224.0.0.1")); /* still the defaults */

    /* 'none' then 'default': the defaults again, and only them. */
    CHECK_EQ(netpolicy_deny(p, "none, default", "--deny-networks", err, sizeof err), 0);
    CHECK(ok(p, "10.0.0.1"));
    CHECK(!ok(p, "169.254.169.254"));
    CHECK_EQ(addr_ok(p, "fe80::2", why, sizeof why), -1);
    CHECK_HAS(why, "(--deny-networks default: fe80::/10)");
    netpolicy_free(p);
}

/* Every wrong item is refused with its reason, and leaves the policy as it was. */
static void test_bad_networks(void)
{
    static const struct {
        const char *list, *msg;
    } bad[] = {
        {"10.0.0.1/8", "'10.0.0.1/8' has host bits set: the network is 10.0.0.0/8"},
        {"fd00::1/8", "'fd00::1/8' has host bits set: the network is fd00::/8"},
        {"10.0.0.0/33", "'10.0.0.0/33': the prefix length must be 0 to 32"},
        {"::/129", "'::/129': the prefix length must be 0 to 128"},
        {"10.0.0.0/", "'10.0.0.0/': the prefix length must be 0 to 32"},
        {"10.0.0.0/+8", "'10.0.0.0/+8': the prefix length must be 0 to 32"},
        {"10.0.0.0/ 8", "'10.0.0.0/ 8': the prefix length must be 0 to 32"},
        {"10.0.0/8", "'10.0.0/8' is not an address or a network such as 10.0.0.0/8 or fd00::/8"},
        {"localhost", "'localhost' is not an address or a network"},
        {"fe80::1%eth0", "'fe80::1%eth0' is not an address"},
        {"/8", "'/8' is not an address"},
        {"127.0.0.1,nope", "'nope' is not an address"},
        {"10.0.0.0/8/8", "'10.0.0.0/8/8': the prefix length"},
        {"privat", "'privat' is not an address"},
    };
    struct netpolicy *p = netpolicy_new();
    char err[512];

    CHECK_EQ(netpolicy_deny(p, "192.0.2.1", "--deny-networks", err, sizeof err), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK_EQ(netpolicy_deny(p, bad[i].list, "--deny-networks", err, sizeof err), -1);
        CHECK_HAS(err, bad[i].msg);
    }
    /* "127.0.0.1,nope" added nothing: the list is taken whole or not at all. */
    CHECK(ok(p, "127.0.0.1"));
    CHECK(!ok(p, "192.0.2.1"));
    CHECK(!ok(p, "169.254.169.254"));
    /* A list with no network in it was taken, adding nothing: meant as "deny nothing", the
     * defaults stayed without a word. Refused as an empty --allow-hosts is, naming 'none'. */
    {
        static const char *const empty[] = {"", ",", " , \t,"};
        for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
            err[0] = '\0';
            CHECK_EQ(netpolicy_deny(p, empty[i], "--deny-networks", err, sizeof err), -1);
            CHECK_STREQ(err,
                        "no network in the list; say 'none' to deny nothing (the defaults "
                        "too), or leave --deny-networks out to keep the defaults");
        }
        CHECK_EQ(netpolicy_deny(p, "", "$CQ_DENY_NETWORKS", err, sizeof err), -1);
        CHECK_HAS(err, "or leave $CQ_DENY_NETWORKS out to keep the defaults");
        CHECK(!ok(p, "192.0.2.1")); /* unchanged */
        CHECK(!ok(p, "169.254.169.254"));
        CHECK_EQ(netpolicy_deny(p, ",none,", "--deny-networks", err, sizeof err), 0);
        CHECK(ok(p, "169.254.169.254"));
    }
    netpolicy_free(p);
}

static int host_ok(const struct netpolicy *p, const char *host)
{
    char why[512];

    return netpolicy_check_host(p, host, why, sizeof why) == 0;
}

static void test_hosts(void)
{
    struct netpolicy *p = netpolicy_new();
    char err[512] = "", why[512];

    /* No patterns: any name; an address host is checked against the networks. */
    CHECK(host_ok(p, "anything.example"));
    CHECK(host_ok(p, "127.0.0.1"));
    CHECK(!host_ok(p, "169.254.169.254"));
    CHECK(!host_ok(p, "[::ffff:169.254.169.254]"));
    CHECK(!host_ok(p, "[fe80::1]"));
    CHECK_EQ(netpolicy_check_host(p, "169.254.169.254", why, sizeof why), -1);
    CHECK_STREQ(why,
                "connection to 169.254.169.254 refused by network policy "
                "(169.254.0.0/16, denied by default)");

    CHECK_EQ(netpolicy_allow_hosts(p, "Img.Example.COM., *.cdn.example, 127.0.0.1, [::1]",
                                   "--allow-hosts", err, sizeof err),
             0);
    CHECK(host_ok(p, "img.example.com"));
    CHECK(host_ok(p, "IMG.example.com"));
    CHECK(host_ok(p, "img.example.com."));
    CHECK(!host_ok(p, "example.com"));
    CHECK(!host_ok(p, "evil-img.example.com"));
    CHECK(!host_ok(p, "img.example.com.evil"));
    CHECK(host_ok(p, "a.cdn.example"));
    CHECK(host_ok(p, "a.b.CDN.example"));
    CHECK(!host_ok(p, "cdn.example")); /* *.x is below x, not x itself */
    CHECK(!host_ok(p, "xcdn.example"));
    CHECK(host_ok(p, "127.0.0.1"));
    CHECK(!host_ok(p, "127.0.0.2"));
    CHECK(!host_ok(p, "localhost"));
    CHECK(host_ok(p, "[::1]"));
    CHECK(host_ok(p, "[0:0::1]"));
    CHECK(!host_ok(p, "[::2]"));
    CHECK(!host_ok(p, "caf\xc3\xa9.example"));
    CHECK_EQ(netpolicy_check_host(p, "Evil.Example", why, sizeof why), -1);
    CHECK_STREQ(why, "host 'evil.example' is not in --allow-hosts");

    /* A second source is named too. */
    CHECK_EQ(netpolicy_allow_hosts(p, "second.example", "$CQ_ALLOW_HOSTS", err, sizeof err), 0);
    CHECK(host_ok(p, "second.example"));
    CHECK_EQ(netpolicy_check_host(p, "evil.example", why, sizeof why), -1);
    CHECK_STREQ(why, "host 'evil.example' is not in --allow-hosts, $CQ_ALLOW_HOSTS");

    /* An allowed address is still in a denied network: the networks win. */
    CHECK_EQ(netpolicy_allow_hosts(p, "169.254.169.254", "--allow-hosts", err, sizeof err), 0);
    CHECK(!host_ok(p, "169.254.169.254"));

    CHECK_EQ(netpolicy_allow_hosts(p, "*", "--allow-hosts", err, sizeof err), 0);
    CHECK(host_ok(p, "evil.example"));
    netpolicy_free(p);
}

static void test_bad_hosts(void)
{
    static const char *const bad[] = {"foo*.example", "*.",   "*",    "a..b",  ".a",  "a b",
                                      "http://x",     "x:80", "[::1", "*.*.x", "a/b", "[1.2.3.4]"};
    struct netpolicy *p = netpolicy_new();
    char err[512], long_name[300];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (strcmp(bad[i], "*") == 0) continue; /* "*" is any host: valid */
        CHECK_EQ(netpolicy_allow_hosts(p, bad[i], "--allow-hosts", err, sizeof err), -1);
        CHECK_HAS(err, "is not a host name, a *.domain pattern or an address");
        CHECK_HAS(err, bad[i]);
    }
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    CHECK_EQ(netpolicy_allow_hosts(p, long_name, "--allow-hosts", err, sizeof err), -1);
    CHECK_HAS(err, "is longer than a host name may be");
    /* A list with a bad item adds nothing. */
    CHECK_EQ(
        netpolicy_allow_hosts(p, "good.example,bad..example", "--allow-hosts", err, sizeof err),
        -1);
    CHECK(host_ok(p, "other.example"));
    netpolicy_free(p);
}

/* An allow list with no host in it is refused, not taken as "any host". */
static void test_empty_hosts(void)
{
    static const char *const empty[] = {"", ",", " , ,", "\t"};
    struct netpolicy *p = netpolicy_new();
    char err[512];

    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        err[0] = '\0';
        CHECK_EQ(netpolicy_allow_hosts(p, empty[i], "$CQ_ALLOW_HOSTS", err, sizeof err), -1);
        CHECK_STREQ(err, "no host in the list; leave $CQ_ALLOW_HOSTS out to allow any host");
    }
    CHECK_EQ(netpolicy_allow_hosts(p, "", "--allow-hosts", err, sizeof err), -1);
    CHECK_STREQ(err, "no host in the list; leave --allow-hosts out to allow any host");
    netpolicy_free(p);
}

static void test_urls(void)
{
    struct netpolicy *p = netpolicy_new();
    char err[512], why[512];

    CHECK_EQ(netpolicy_deny(p, "127.0.0.2", "--deny-networks", err, sizeof err), 0);
    CHECK_EQ(netpolicy_check_url(p, "http://127.0.0.1:8080/x.jpg", why, sizeof why), 0);
    CHECK_EQ(netpolicy_check_url(p, "http://127.0.0.2:8080/x.jpg", why, sizeof why), -1);
    CHECK_HAS(why, "connection to 127.0.0.2 refused by network policy");
    CHECK_EQ(netpolicy_check_url(p, "http://[::ffff:127.0.0.2]:8080/x.jpg", why, sizeof why), -1);
    CHECK_EQ(netpolicy_check_url(p, "http://169.254.169.254/latest/meta-data/", why, sizeof why),
             -1);
    CHECK_EQ(netpolicy_check_url(p, "not a url", why, sizeof why), -1);
    CHECK_STREQ(why, "the URL's host cannot be read");
    CHECK_EQ(netpolicy_allow_hosts(p, "*.example.com", "--allow-hosts", err, sizeof err), 0);
    CHECK_EQ(netpolicy_check_url(p, "https://i.EXAMPLE.com/a.jpg", why, sizeof why), 0);
    CHECK_EQ(netpolicy_check_url(p, "https://user:pw@i.example.com:444/a.jpg", why, sizeof why), 0);
    CHECK_EQ(netpolicy_check_url(p, "https://i.example.com@evil.example/a.jpg", why, sizeof why),
             -1);
    CHECK_STREQ(why, "host 'evil.example' is not in --allow-hosts");
    netpolicy_free(p);
}

static void test_check_ip(void)
{
    struct netpolicy *p = netpolicy_new();
    char why[512];

    CHECK_EQ(netpolicy_check_ip(p, "127.0.0.1", why, sizeof why), 0);
    CHECK_EQ(netpolicy_check_ip(p, "fe80::1", why, sizeof why), -1);
    CHECK_EQ(netpolicy_check_ip(p, "", why, sizeof why), -1);
    CHECK_HAS(why, "not an address");
    netpolicy_free(p);
}

int main(void)
{
    test_defaults();
    test_deny_lists();
    test_words();
    test_bad_networks();
    test_hosts();
    test_bad_hosts();
    test_empty_hosts();
    test_urls();
    test_check_ip();
    return check_report();
}
