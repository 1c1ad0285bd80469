/* dlopts.c - --deny-networks, --allow-hosts and --content for cworker and cproducer --mode
 * (see dlopts.h). */
#include "dlopts.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

void dlopts_init(struct dlopts *o)
{
    memset(o, 0, sizeof *o);
    o->images_only = 1;
}

/* Append value to list (of DLOPTS_MAX_LISTS) for the current option. 0, or 2. */
static int add_to(const struct cli *cli, const char **list, int *n, const char *value)
{
    if (*n == DLOPTS_MAX_LISTS)
        return cli_error(cli, "--%s: at most %d", cli->opt, DLOPTS_MAX_LISTS);
    list[(*n)++] = value;
    return 0;
}

int dlopts_take(const struct cli *cli, struct dlopts *o, int key, const char *value)
{
    static const char *const kinds[] = {"any", "image"};
    int rc;

    switch (key) {
    case DLOPTS_O_DENY_NETWORKS: rc = add_to(cli, o->denies, &o->ndenies, value); break;
    case DLOPTS_O_ALLOW_HOSTS: rc = add_to(cli, o->allows, &o->nallows, value); break;
    case DLOPTS_O_CONTENT:
        rc = cli_choice(cli, value, kinds, 2, &o->images_only) != 0 ? 2 : 0;
        break;
    default: return 1;
    }
    if (o->given == NULL)
        o->given = key == DLOPTS_O_DENY_NETWORKS ? "--deny-networks"
            : key == DLOPTS_O_ALLOW_HOSTS        ? "--allow-hosts"
                                                 : "--content";
    return rc;
}

int dlopts_finish(const struct cli *cli, struct dlopts *o, struct http_limits *lim)
{
    const char *env_deny = getenv("CQ_DENY_NETWORKS"), *env_allow = getenv("CQ_ALLOW_HOSTS");
    char err[512];
    int i;

    lim->images_only = o->images_only;
    if (o->policy == NULL) o->policy = netpolicy_new();
    lim->policy = o->policy;
    if (env_deny != NULL &&
        netpolicy_deny(o->policy, env_deny, "$CQ_DENY_NETWORKS", err, sizeof err) != 0)
        return cli_error(cli, "$CQ_DENY_NETWORKS: %s", err);
    if (env_allow != NULL &&
        netpolicy_allow_hosts(o->policy, env_allow, "$CQ_ALLOW_HOSTS", err, sizeof err) != 0)
        return cli_error(cli, "$CQ_ALLOW_HOSTS: %s", err);
    for (i = 0; i < o->ndenies; i++) {
        if (netpolicy_deny(o->policy, o->denies[i], "--deny-networks", err, sizeof err) != 0)
            return cli_error(cli, "--deny-networks: %s", err);
    }
    for (i = 0; i < o->nallows; i++) {
        if (netpolicy_allow_hosts(o->policy, o->allows[i], "--allow-hosts", err, sizeof err) != 0)
            return cli_error(cli, "--allow-hosts: %s", err);
    }
    return 0;
}

void dlopts_free(struct dlopts *o)
{
    netpolicy_free(o->policy);
    o->policy = NULL;
}
