/* tls_stall.c - test_tls.sh's helper: one command that Redis stops reading midway, over the
 * URL given. Connects (timeout 2 s), stops Redis (SIGSTOP to PID) once the connection is
 * made, then sends a SET of MB MiB, more than the sockets between hold: the send stalls. Prints
 * one line: "failed after S s, CPU C s: ERROR", the time until the command failed and the
 * connection was closed, and the process's CPU time meanwhile (a TLS relay that spins shows
 * there). Redis is left stopped. Usage: tls_stall URL PID MB */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rconn.h"
#include "util.h"

static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    struct rconn_url u;
    struct rconn r;
    char err[512];
    redisReply *rep;
    size_t n;
    char *big;
    long long t0;
    double c0;

    if (argc != 4) {
        fprintf(stderr, "usage: tls_stall URL PID MB\n");
        return 2;
    }
    n = (size_t)atol(argv[3]) << 20;
    big = xmalloc(n);
    memset(big, 'a', n);
    if (rconn_parse_url(argv[1], &u, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    rconn_init(&r, &u, 2.0);
    if (rconn_connect(&r) != 0) {
        fprintf(stderr, "%s\n", r.errstr);
        return 2;
    }
    if (kill((pid_t)atoi(argv[2]), SIGSTOP) != 0) {
        perror("kill");
        return 2;
    }
    t0 = time_mono_ms();
    c0 = cpu_now();
    rep = rconn_commandf(&r, "SET tls_stall %b", big, n);
    printf("failed after %.2f s, CPU %.2f s: %s\n", (double)(time_mono_ms() - t0) / 1000.0,
           cpu_now() - c0, rep != NULL ? "a reply" : r.errstr);
    if (rep != NULL) freeReplyObject(rep);
    free(big);
    return rep != NULL;
}
