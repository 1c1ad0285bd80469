/* fuzz_rconn_url.c - the Redis URL parser (common/rconn.c): rconn_parse_url on any string.
 *
 * What must hold:
 *   - a failure says so in a line that starts "redis URL '";
 *   - a parsed URL is one of the four forms and nothing else: unix:// has an absolute socket
 *     path and no host; redis:// and rediss:// a host and a port from 1 to 65535; TLS exactly
 *     for rediss:// (with the CA file from $CQ_TLS_CA); redis+sentinel:// 1-8 sentinels,
 *     each with a host and a port, and a master name without '/';
 *   - every string of the result is NUL-terminated inside its array, the database is
 *     0-100000 and ?replicas= 0-100;
 *   - parsing is deterministic (the result does not depend on what the struct held). */
#include "fuzz.h"
#include "rconn.h"

#define CA_FILE "/etc/cq/fuzz-ca.pem"

#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

static void check_node(const struct rconn_node *n, const char *url)
{
    FUZZ_CHECK(TERMINATED(n->host) && n->host[0] != '\0', "host of %s", url);
    FUZZ_CHECK(n->port >= 1 && n->port <= 65535, "port %d of %s", n->port, url);
}

static void check_url(const struct rconn_url *u, const char *url)
{
    int i;

    FUZZ_CHECK(TERMINATED(u->host) && TERMINATED(u->unix_path) && TERMINATED(u->user) &&
                   TERMINATED(u->pass) && TERMINATED(u->master) && TERMINATED(u->tls_ca) &&
                   TERMINATED(u->tls_cert) && TERMINATED(u->tls_key),
               "a string of %s is not terminated", url);
    FUZZ_CHECK(u->db >= 0 && u->db <= 100000, "db %d of %s", u->db, url);
    FUZZ_CHECK(u->wait_replicas >= 0 && u->wait_replicas <= 100, "replicas of %s", url);
    FUZZ_CHECK(u->tls == (strncmp(url, "rediss://", 9) == 0), "tls of %s", url);
    FUZZ_CHECK(!u->tls || strcmp(u->tls_ca, CA_FILE) == 0, "CA file of %s", url);
    if (strncmp(url, "unix://", 7) == 0) {
        FUZZ_CHECK(u->unix_path[0] == '/' && u->host[0] == '\0' && u->nsentinels == 0,
                   "unix URL %s", url);
        return;
    }
    FUZZ_CHECK(u->unix_path[0] == '\0', "socket path of %s", url);
    if (strncmp(url, "redis+sentinel://", 17) == 0) {
        FUZZ_CHECK(u->nsentinels >= 1 && u->nsentinels <= RCONN_SENTINELS_MAX, "%d sentinels in %s",
                   u->nsentinels, url);
        for (i = 0; i < u->nsentinels; i++) check_node(&u->sentinels[i], url);
        FUZZ_CHECK(u->master[0] != '\0' && strchr(u->master, '/') == NULL, "master of %s", url);
        return;
    }
    FUZZ_CHECK(strncmp(url, "redis://", 8) == 0 || strncmp(url, "rediss://", 9) == 0,
               "scheme of %s", url);
    FUZZ_CHECK(u->nsentinels == 0 && u->master[0] == '\0', "sentinels in %s", url);
    FUZZ_CHECK(TERMINATED(u->host) && u->host[0] != '\0', "host of %s", url);
    FUZZ_CHECK(u->port >= 1 && u->port <= 65535, "port %d of %s", u->port, url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct rconn_url a, b;
    char *url = fuzz_cstring(data, size);
    char err[512] = "";

    setenv("CQ_TLS_CA", CA_FILE, 1);
    unsetenv("CQ_TLS_CERT");
    unsetenv("CQ_TLS_KEY");
    if (rconn_parse_url(url, &a, err, sizeof err) != 0) {
        FUZZ_CHECK(strncmp(err, "redis URL '", 11) == 0, "error line [%s]", err);
        free(url);
        return 0;
    }
    check_url(&a, url);
    memset(&b, 0xa5, sizeof b);
    FUZZ_CHECK(rconn_parse_url(url, &b, err, sizeof err) == 0, "%s: %s", url, err);
    FUZZ_CHECK(memcmp(&a, &b, sizeof a) == 0, "%s parsed twice differs", url);
    free(url);
    return 0;
}
