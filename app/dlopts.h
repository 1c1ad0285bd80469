/* dlopts.h - what download_link may fetch, as the commands that run it take it on their
 * command line: --deny-networks, --allow-hosts and --content, with $CQ_DENY_NETWORKS and
 * $CQ_ALLOW_HOSTS. cworker and cproducer's local modes (--mode) take them from here, so that
 * both start from the same defaults (netpolicy.h's default deny list, --content image), read
 * the same words and print the same help (and so the same man pages).
 * For the programs (producer/, worker/), as cli.h. */
#ifndef CQ_DLOPTS_H
#define CQ_DLOPTS_H

#include "cli.h"
#include "http.h"
#include "netpolicy.h"

/* The options' keys, apart from every program's own (256...) and cli.h's (1001...). */
#define DLOPTS_O_DENY_NETWORKS 1101
#define DLOPTS_O_ALLOW_HOSTS   1102
#define DLOPTS_O_CONTENT       1103
#define DLOPTS_MAX_LISTS       16 /* --deny-networks, --allow-hosts: each at most this often */

/* The three entries of an option table (cli.h), in this order. */
/* clang-format off */
#define DLOPTS_CLI_OPTIONS                                                  \
    {"deny-networks", DLOPTS_O_DENY_NETWORKS, "LIST",                       \
     "download_link connects to no address in these networks,\n"            \
     "checked after DNS on every connection and every redirect;\n"          \
     "a refused link fails for good, not retried. LIST: networks or\n"      \
     "addresses, comma-separated (10.0.0.0/8,fd00::/8,127.0.0.2),\n"        \
     "'private' (loopback, 10.0.0.0/8, 172.16.0.0/12,\n"                    \
     "192.168.0.0/16, 100.64.0.0/10, fc00::/7 and link-local),\n"           \
     "'none' (drops what was listed before it, the defaults too;\n"         \
     "an empty LIST is refused) or 'default'. Adds to\n"                    \
     "$CQ_DENY_NETWORKS and to the default: link-local and cloud\n"         \
     "metadata (169.254.0.0/16, fe80::/10, fd00:ec2::254/128,\n"            \
     "100.100.100.200/32), 0.0.0.0/8, ::/128, multicast and\n"              \
     "reserved (224.0.0.0/4, 240.0.0.0/4, ff00::/8).\n"                     \
     "::ffff:a.b.c.d counts as a.b.c.d (repeatable)"},                      \
    {"allow-hosts", DLOPTS_O_ALLOW_HOSTS, "LIST",                           \
     "download_link fetches only from these hosts, the link's\n"            \
     "and every redirect's: comma-separated names\n"                        \
     "(img.example.com), *.example.com for any name below\n"                \
     "example.com, or addresses; * alone for any host;\n"                   \
     "case-insensitive (repeatable; adds to $CQ_ALLOW_HOSTS;\n"             \
     "default: any host)"},                                                 \
    {"content", DLOPTS_O_CONTENT, "KIND",                                   \
     "image: download_link keeps a body only when its first bytes\n"        \
     "are an image's (JPEG, PNG, GIF, WebP, BMP, TIFF, ICO,\n"              \
     "AVIF/HEIF, JPEG XL), whatever its Content-Type; otherwise\n"          \
     "the link fails for good and nothing is saved; any: keeps any\n"       \
     "body (default: image)"}
/* clang-format on */

/* The options as given, until dlopts_finish builds the policy from them. */
struct dlopts {
    const char *denies[DLOPTS_MAX_LISTS], *allows[DLOPTS_MAX_LISTS]; /* in order */
    int ndenies, nallows;
    int images_only;          /* --content: 1 image (the default), 0 any */
    const char *given;        /* the first of the options given ("--content"), or NULL */
    struct netpolicy *policy; /* made by dlopts_finish; dlopts_free frees it */
};

/* Defaults: nothing listed, --content image. */
void dlopts_init(struct dlopts *o);

/* The option cli_next returned (key, its value): 0 when taken, 1 when key is none of these
 * three, 2 after a usage error (cli_error: "--content: 'x' is not ...", "--allow-hosts: at
 * most 16"). */
int dlopts_take(const struct cli *cli, struct dlopts *o, int key, const char *value);

/* After the options: the policy, from the defaults, then $CQ_DENY_NETWORKS and
 * $CQ_ALLOW_HOSTS, then the options in the order given (so that 'none' on the command line
 * forgets the environment's networks too), into lim->policy, and --content into
 * lim->images_only. Read after the options, so that a bad variable does not stop --help.
 * 0, or 2 after a usage error naming the variable or the option. */
int dlopts_finish(const struct cli *cli, struct dlopts *o, struct http_limits *lim);

/* The policy, where nothing may read it any more; NULL-safe, and again after. */
void dlopts_free(struct dlopts *o);

#endif
