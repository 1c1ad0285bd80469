/* health.c - benching functions that fail because of the host (see health.h). */
#include "health.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

struct fn_health {
    int streak;         /* host failures in a row */
    long long until;    /* benched until this time_mono_ms; 0 = not benched */
    long long cooldown; /* the next bench's length, ms; 0 = not benched yet */
    char why[512];      /* the last host failure */
};

struct health {
    struct fn_health *fn;
    int n;
};

struct health *health_new(void)
{
    return xcalloc(1, sizeof(struct health));
}

void health_free(struct health *h)
{
    if (h == NULL) return;
    free(h->fn);
    free(h);
}

static struct fn_health *slot(struct health *h, int fi)
{
    if (fi < 0) return NULL;
    if (fi >= h->n) {
        int n = fi + 8;
        h->fn = xrealloc(h->fn, sizeof *h->fn * (size_t)n);
        memset(h->fn + h->n, 0, sizeof *h->fn * (size_t)(n - h->n));
        h->n = n;
    }
    return &h->fn[fi];
}

long long health_note(struct health *h, int fi, int host, const char *why, long long now)
{
    struct fn_health *f = slot(h, fi);

    if (f == NULL) return 0;
    if (!host) {
        /* It works here: forget the streak and the escalation. */
        f->streak = 0;
        f->cooldown = 0;
        return 0;
    }
    str_copy(f->why, sizeof f->why, why ? why : "");
    if (++f->streak < HEALTH_STREAK || (f->until != 0 && now < f->until)) return 0;
    f->cooldown = f->cooldown == 0 ? HEALTH_COOLDOWN_MIN : f->cooldown * 2;
    if (f->cooldown > HEALTH_COOLDOWN_MAX) f->cooldown = HEALTH_COOLDOWN_MAX;
    f->until = now + f->cooldown;
    /* After the bench one more failure benches it again (at twice the length). */
    f->streak = HEALTH_STREAK - 1;
    return f->cooldown;
}

long long health_benched(const struct health *h, int fi, long long now)
{
    if (fi < 0 || fi >= h->n || h->fn[fi].until == 0 || now >= h->fn[fi].until) return 0;
    return h->fn[fi].until - now;
}

const char *health_why(const struct health *h, int fi)
{
    return fi >= 0 && fi < h->n ? h->fn[fi].why : "";
}
