/* netpolicy.c - denied networks and allowed hosts for download_link (see netpolicy.h).
 *
 * DESIGN. The question a policy answers is asked of the address a socket is about to
 * connect to, not of a host name: names resolve to anything (a DNS answer of 169.254.169.254,
 * a rebinding server that answers differently the second time), and only the address the
 * kernel is handed says where the packets go. http.c asks it from libcurl's open-socket hook,
 * which gets every address libcurl tries (both families of happy eyeballs, every redirect
 * hop), and again before each request, which also covers a connection reused from the cache.
 * Host patterns are the coarser, optional second list: they are checked on the host each hop
 * names.
 *
 * Rules are kept as (family, network bytes, prefix length) and matched by a linear scan:
 * lists are short and a connection is made far less often than a byte is copied. Each rule
 * carries the text a refusal quotes, so an operator reading "refused by network policy
 * (--deny-networks 127.0.0.2/32)" knows which option to change. IPv4-mapped IPv6 rules are
 * stored as the IPv4 rules they are, and IPv6 addresses that embed an IPv4 address (mapped,
 * NAT64) are checked against the IPv4 rules too: otherwise ::ffff:169.254.169.254 would walk
 * past a 169.254.0.0/16 rule to the same host.
 */
#include "netpolicy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "util.h"

#define ITEM_MAX 260 /* the longest list item: "*." and a 253-byte name, and some slack */

struct rule {
    int family;            /* AF_INET or AF_INET6 */
    unsigned char net[16]; /* the network; the bits past prefix are zero */
    int prefix;
    char why[128]; /* what a refusal quotes: "--deny-networks 10.0.0.0/8" */
};

enum { HOST_NAME, HOST_SUFFIX, HOST_ANY, HOST_ADDR };

struct hostpat {
    int kind;
    char name[ITEM_MAX]; /* lower case, no trailing dot; HOST_SUFFIX: ".example.com" */
    int family;          /* HOST_ADDR */
    unsigned char addr[16];
};

struct netpolicy {
    struct rule rules[NETPOLICY_MAX_RULES];
    int nrules;
    struct hostpat hosts[NETPOLICY_MAX_HOSTS];
    int nhosts;
    char hosts_source[64]; /* "--allow-hosts", "$CQ_ALLOW_HOSTS, --allow-hosts" */
};

static int addr_len(int family)
{
    return family == AF_INET ? 4 : 16;
}

/* Whether addr lies in net/prefix (both of one family). */
static int in_net(const unsigned char *addr, const unsigned char *net, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;
    unsigned char mask;

    if (memcmp(addr, net, (size_t)full) != 0) return 0;
    if (rest == 0) return 1;
    mask = (unsigned char)(0xff << (8 - rest));
    return (addr[full] & mask) == net[full];
}

/* The IPv4 address an IPv6 one stands for: ::ffff:a.b.c.d (mapped, what a dual-stack socket
 * connects to as IPv4) or 64:ff9b::a.b.c.d (NAT64's well-known prefix, RFC 6052). */
static const unsigned char *embedded_v4(const unsigned char *a6)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};

    if (memcmp(a6, mapped, 12) == 0 || memcmp(a6, nat64, 12) == 0) return a6 + 12;
    return NULL;
}

static const struct rule *find_rule(const struct netpolicy *p, int family,
                                    const unsigned char *addr)
{
    for (int i = 0; i < p->nrules; i++) {
        const struct rule *r = &p->rules[i];

        if (r->family == family && in_net(addr, r->net, r->prefix)) return r;
    }
    if (family == AF_INET6) {
        const unsigned char *v4 = embedded_v4(addr);

        if (v4 != NULL) return find_rule(p, AF_INET, v4);
    }
    return NULL;
}

/* 0 when addr (of family) may be connected to; else -1 with why. */
static int check_bytes(const struct netpolicy *p, int family, const unsigned char *addr, char *why,
                       size_t whylen)
{
    const struct rule *r = find_rule(p, family, addr);
    char shown[INET6_ADDRSTRLEN];

    if (r == NULL) return 0;
    if (inet_ntop(family, addr, shown, sizeof shown) == NULL) str_copy(shown, sizeof shown, "?");
    err_set(why, whylen, "connection to %s refused by network policy (%s)", shown, r->why);
    return -1;
}

int netpolicy_check_addr(const struct netpolicy *p, const struct sockaddr *sa, size_t len,
                         char *why, size_t whylen)
{
    struct sockaddr_storage ss;

    /* Copied: the caller's buffer may be shorter than a struct sockaddr_in6 says. */
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, sa, len < sizeof ss ? len : sizeof ss);
    if (ss.ss_family == AF_INET && len >= sizeof(struct sockaddr_in))
        return check_bytes(
            p, AF_INET, (const unsigned char *)&((struct sockaddr_in *)&ss)->sin_addr, why, whylen);
    if (ss.ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
        return check_bytes(p, AF_INET6,
                           (const unsigned char *)&((struct sockaddr_in6 *)&ss)->sin6_addr, why,
                           whylen);
    err_set(why, whylen, "connection refused by network policy (address family %d)",
            (int)ss.ss_family);
    return -1;
}

/* text as an address of either family: its family, or 0 when it is none. */
static int parse_ip(const char *text, unsigned char *addr)
{
    if (inet_pton(AF_INET, text, addr) == 1) return AF_INET;
    if (inet_pton(AF_INET6, text, addr) == 1) return AF_INET6;
    return 0;
}

int netpolicy_check_ip(const struct netpolicy *p, const char *ip, char *why, size_t whylen)
{
    unsigned char addr[16];
    int family = parse_ip(ip, addr);

    if (family == 0) {
        err_set(why, whylen, "connection to '%.64s' refused by network policy (not an address)",
                ip);
        return -1;
    }
    return check_bytes(p, family, addr, why, whylen);
}

/* ---- parsing the lists ----------------------------------------------------------------- */

/* One list item, trimmed of blanks, into item. 0 when there is one; *list moves past it. */
static int next_item(const char **list, char *item, size_t len, int *too_long)
{
    const char *s = *list, *end;
    size_t n;

    *too_long = 0;
    while (*s != '\0') {
        while (*s == ' ' || *s == '\t' || *s == ',') s++;
        end = s + strcspn(s, ",");
        *list = *end == ',' ? end + 1 : end;
        n = (size_t)(end - s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
        if (n == 0) {
            s = *list;
            continue;
        }
        if (n >= len) {
            n = len - 1;
            *too_long = 1;
        }
        memcpy(item, s, n);
        item[n] = '\0';
        return 1;
    }
    *list = s;
    return 0;
}

static int all_digits(const char *s)
{
    if (*s == '\0') return 0;
    for (; *s != '\0'; s++) {
        if (!isdigit((unsigned char)*s)) return 0;
    }
    return 1;
}

/* "10.0.0.0/8", "fd00::/8" or a bare address into r (without its why). */
static int parse_cidr(const char *item, struct rule *r, char *err, size_t errlen)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(item, '/');
    size_t alen = slash != NULL ? (size_t)(slash - item) : strlen(item);
    int max;
    long prefix;

    memset(r, 0, sizeof *r);
    if (alen == 0 || alen >= sizeof addr) goto bad;
    memcpy(addr, item, alen);
    addr[alen] = '\0';
    r->family = parse_ip(addr, r->net);
    if (r->family == 0) goto bad;
    max = r->family == AF_INET ? 32 : 128;
    prefix = max;
    if (slash != NULL) {
        if (strlen(slash + 1) > 3 || !all_digits(slash + 1) ||
            parse_long(slash + 1, 0, max, &prefix) < 0) {
            err_set(err, errlen, "'%s': the prefix length must be 0 to %d", item, max);
            return -1;
        }
    }
    r->prefix = (int)prefix;
    for (int bit = r->prefix; bit < max; bit++) {
        if (r->net[bit / 8] & (0x80 >> (bit % 8))) {
            unsigned char masked[16];
            char shown[INET6_ADDRSTRLEN];

            memset(masked, 0, sizeof masked);
            memcpy(masked, r->net, (size_t)(r->prefix / 8));
            if (r->prefix % 8)
                masked[r->prefix / 8] =
                    (unsigned char)(r->net[r->prefix / 8] & (0xff << (8 - r->prefix % 8)));
            inet_ntop(r->family, masked, shown, sizeof shown);
            err_set(err, errlen, "'%s' has host bits set: the network is %s/%d", item, shown,
                    r->prefix);
            return -1;
        }
    }
    if (r->family == AF_INET6 && r->prefix >= 96 && embedded_v4(r->net) == r->net + 12 &&
        r->net[10] == 0xff) {
        /* ::ffff:a.b.c.d/N is the IPv4 network a.b.c.d/(N-96): kept so, it refuses both
         * spellings of each of its addresses. */
        memmove(r->net, r->net + 12, 4);
        memset(r->net + 4, 0, 12);
        r->family = AF_INET;
        r->prefix -= 96;
    }
    return 0;

bad:
    err_set(err, errlen, "'%s' is not an address or a network such as 10.0.0.0/8 or fd00::/8",
            item);
    return -1;
}

/* Add the networks of a built-in list (NETPOLICY_DEFAULT or NETPOLICY_PRIVATE), quoted in
 * refusals as "<source> <word>: <network>", or as "<network>, denied by default" when
 * source is NULL (the start of every policy). */
static int add_builtin(struct netpolicy *p, const char *list, const char *source, const char *word,
                       char *err, size_t errlen)
{
    char item[ITEM_MAX];
    int too_long;

    while (next_item(&list, item, sizeof item, &too_long)) {
        struct rule *r;

        if (p->nrules == NETPOLICY_MAX_RULES) {
            err_set(err, errlen, "more than %d networks", NETPOLICY_MAX_RULES);
            return -1;
        }
        r = &p->rules[p->nrules];
        if (parse_cidr(item, r, err, errlen) < 0) return -1; /* a bug in the lists above */
        if (source == NULL)
            snprintf(r->why, sizeof r->why, "%.60s, denied by default", item);
        else
            snprintf(r->why, sizeof r->why, "%.40s %.8s: %.60s", source, word, item);
        p->nrules++;
    }
    return 0;
}

struct netpolicy *netpolicy_new(void)
{
    struct netpolicy *p = xcalloc(1, sizeof *p);
    char err[256];

    if (add_builtin(p, NETPOLICY_DEFAULT, NULL, NULL, err, sizeof err) < 0) abort();
    return p;
}

void netpolicy_free(struct netpolicy *p)
{
    free(p);
}

/* netpolicy_deny on a copy of the policy (the caller keeps or drops it). */
static int deny_into(struct netpolicy *p, const char *list, const char *source, char *err,
                     size_t errlen)
{
    char item[ITEM_MAX];
    int too_long, n = 0;

    while (next_item(&list, item, sizeof item, &too_long)) {
        struct rule *r;

        n++;
        if (too_long) {
            err_set(err, errlen, "'%s...' is not an address or a network", item);
            return -1;
        }
        if (strcmp(item, "none") == 0) {
            p->nrules = 0;
            continue;
        }
        if (strcmp(item, "default") == 0 || strcmp(item, "private") == 0) {
            if (add_builtin(p, item[0] == 'd' ? NETPOLICY_DEFAULT : NETPOLICY_PRIVATE, source, item,
                            err, errlen) < 0)
                return -1;
            continue;
        }
        if (p->nrules == NETPOLICY_MAX_RULES) {
            err_set(err, errlen, "more than %d networks", NETPOLICY_MAX_RULES);
            return -1;
        }
        r = &p->rules[p->nrules];
        if (parse_cidr(item, r, err, errlen) < 0) return -1;
        snprintf(r->why, sizeof r->why, "%.60s %.60s", source, item);
        p->nrules++;
    }
    /* "" or ",": meant as "deny nothing" it would keep the defaults, and as a variable that
     * came out empty it would go unnoticed; refused as an empty --allow-hosts is. */
    if (n == 0) {
        err_set(err, errlen,
                "no network in the list; say 'none' to deny nothing (the defaults too), or "
                "leave %s out to keep the defaults",
                source);
        return -1;
    }
    return 0;
}

int netpolicy_deny(struct netpolicy *p, const char *list, const char *source, char *err,
                   size_t errlen)
{
    struct netpolicy *copy = xmalloc(sizeof *copy);
    int rc;

    memcpy(copy, p, sizeof *copy);
    rc = deny_into(copy, list, source, err, errlen);
    if (rc == 0) memcpy(p, copy, sizeof *p);
    free(copy);
    return rc;
}

/* A host name as a pattern or a URL has it: lower case, one trailing dot dropped. Labels of
 * letters, digits, '-' and '_' (some hosts have one), none empty. 0, or -1 when name is no
 * host name. */
static int normalize_name(const char *in, char *out, size_t len)
{
    size_t n = strlen(in), label = 0;

    if (n > 0 && in[n - 1] == '.') n--;
    if (n == 0 || n > 253 || n >= len) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];

        if (c == '.') {
            if (label == 0) return -1;
            label = 0;
        } else if (isalnum(c) || c == '-' || c == '_') {
            if (++label > 63) return -1;
        } else {
            return -1;
        }
        out[i] = (char)tolower(c);
    }
    out[n] = '\0';
    return label == 0 ? -1 : 0;
}

/* "[::1]" or "::1" -> the address; 0 when text is no address. */
static int parse_host_ip(const char *text, unsigned char *addr)
{
    char inner[INET6_ADDRSTRLEN + 1];
    size_t n = strlen(text);

    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        if (n - 2 >= sizeof inner) return 0;
        memcpy(inner, text + 1, n - 2);
        inner[n - 2] = '\0';
        return inet_pton(AF_INET6, inner, addr) == 1 ? AF_INET6 : 0;
    }
    return parse_ip(text, addr);
}

static int parse_pattern(const char *item, struct hostpat *hp, char *err, size_t errlen)
{
    memset(hp, 0, sizeof *hp);
    if (strcmp(item, "*") == 0) {
        hp->kind = HOST_ANY;
        str_copy(hp->name, sizeof hp->name, "*");
        return 0;
    }
    hp->family = parse_host_ip(item, hp->addr);
    if (hp->family != 0) {
        hp->kind = HOST_ADDR;
        inet_ntop(hp->family, hp->addr, hp->name, sizeof hp->name);
        return 0;
    }
    if (strncmp(item, "*.", 2) == 0) {
        hp->kind = HOST_SUFFIX;
        hp->name[0] = '.';
        if (normalize_name(item + 2, hp->name + 1, sizeof hp->name - 1) == 0) return 0;
    } else {
        hp->kind = HOST_NAME;
        if (normalize_name(item, hp->name, sizeof hp->name) == 0) return 0;
    }
    err_set(err, errlen,
            "'%s' is not a host name, a *.domain pattern or an address (such as "
            "img.example.com, *.example.com, 192.0.2.7)",
            item);
    return -1;
}

int netpolicy_allow_hosts(struct netpolicy *p, const char *list, const char *source, char *err,
                          size_t errlen)
{
    struct hostpat *pats = xcalloc(NETPOLICY_MAX_HOSTS, sizeof *pats);
    char item[ITEM_MAX];
    int n = 0, too_long, rc = 0;

    while (rc == 0 && next_item(&list, item, sizeof item, &too_long)) {
        if (too_long) {
            err_set(err, errlen, "'%.40s...' is longer than a host name may be", item);
            rc = -1;
        } else if (p->nhosts + n == NETPOLICY_MAX_HOSTS) {
            err_set(err, errlen, "more than %d host patterns", NETPOLICY_MAX_HOSTS);
            rc = -1;
        } else {
            rc = parse_pattern(item, &pats[n], err, errlen);
            n += rc == 0;
        }
    }
    if (rc == 0 && n == 0) { /* "" or ",": no host at all, which must not mean any host */
        err_set(err, errlen, "no host in the list; leave %s out to allow any host", source);
        rc = -1;
    }
    if (rc == 0) {
        size_t used = strlen(p->hosts_source);

        memcpy(&p->hosts[p->nhosts], pats, (size_t)n * sizeof *pats);
        p->nhosts += n;
        if (strstr(p->hosts_source, source) == NULL)
            snprintf(p->hosts_source + used, sizeof p->hosts_source - used, "%s%s",
                     used > 0 ? ", " : "", source);
    }
    free(pats);
    return rc;
}

static int host_allowed(const struct netpolicy *p, const char *name, int family,
                        const unsigned char *addr)
{
    size_t n = strlen(name);

    for (int i = 0; i < p->nhosts; i++) {
        const struct hostpat *hp = &p->hosts[i];
        size_t sn = strlen(hp->name);

        switch (hp->kind) {
        case HOST_ANY: return 1;
        case HOST_ADDR:
            if (family == hp->family && memcmp(addr, hp->addr, (size_t)addr_len(family)) == 0)
                return 1;
            break;
        case HOST_NAME:
            if (family == 0 && strcmp(name, hp->name) == 0) return 1;
            break;
        case HOST_SUFFIX:
            if (family == 0 && n > sn && strcmp(name + n - sn, hp->name) == 0) return 1;
            break;
        }
    }
    return 0;
}

int netpolicy_check_host(const struct netpolicy *p, const char *host, char *why, size_t whylen)
{
    unsigned char addr[16];
    char name[ITEM_MAX];
    int family = parse_host_ip(host, addr);

    if (family != 0) {
        if (check_bytes(p, family, addr, why, whylen) < 0) return -1;
        inet_ntop(family, addr, name, sizeof name);
    } else if (normalize_name(host, name, sizeof name) < 0) {
        /* Nothing a pattern could match; with no patterns, DNS will say what it is. */
        if (p->nhosts == 0) return 0;
        err_set(why, whylen, "host '%.64s' is not in %s", host, p->hosts_source);
        return -1;
    }
    if (p->nhosts > 0 && !host_allowed(p, name, family, addr)) {
        err_set(why, whylen, "host '%s' is not in %s", name, p->hosts_source);
        return -1;
    }
    return 0;
}

int netpolicy_check_url(const struct netpolicy *p, const char *url, char *why, size_t whylen)
{
    CURLU *u = curl_url();
    char *host = NULL;
    int rc = -1;

    if (u == NULL) {
        err_set(why, whylen, "out of memory");
        return -1;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        err_set(why, whylen, "the URL's host cannot be read");
    else
        rc = netpolicy_check_host(p, host, why, whylen);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}
