/* enqueue_one.c - what a web backend does: one client, one job a cq_enqueue call, N calls
 * (bench/enqueue --one N runs it). Prints "median_us p99_us" of the calls' wall times.
 *
 *   cc -O2 -I include bench/enqueue_one.c -o enqueue_one -L build/common -lcq
 *   enqueue_one URL N
 */
#include <cq/cq.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    char err[1024];
    cq_client *c;
    double *t;
    long i, n;

    if (argc != 3 || (n = atol(argv[2])) <= 0) {
        fprintf(stderr, "usage: enqueue_one URL N\n");
        return 2;
    }
    c = cq_client_new(argv[1], NULL, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "enqueue_one: %s\n", err);
        return 1;
    }
    t = calloc((size_t)n, sizeof *t);
    if (t == NULL) return 1;
    for (i = 0; i < n; i++) {
        cq_jobspec *j = cq_jobspec_new("noop", NULL, err, sizeof err);
        double t0 = now_us();
        if (j == NULL || cq_enqueue(c, &j, 1, CQ_NO_CHECK, err, sizeof err) != 1) {
            fprintf(stderr, "enqueue_one: %s\n", err);
            return 1;
        }
        t[i] = now_us() - t0;
        cq_jobspec_free(j);
    }
    qsort(t, (size_t)n, sizeof *t, cmp);
    printf("%.2f %.2f\n", t[n / 2], t[(size_t)((double)n * 0.99)]);
    free(t);
    cq_client_free(c);
    return 0;
}
