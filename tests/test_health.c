/* test_health.c - benching a function the host keeps failing (common/health.c): only
 * HEALTH_STREAK host failures in a row bench it, a success forgets them, benches grow from
 * HEALTH_COOLDOWN_MIN to HEALTH_COOLDOWN_MAX while it keeps failing after each, and a
 * function's bench is its own. No Redis. */
#include <string.h>

#include "check.h"
#include "health.h"

static void test_streak(void)
{
    struct health *h = health_new();
    long long t = 1000000;
    int i;

    CHECK(health_benched(h, 0, t) == 0);
    CHECK(health_benched(h, 7, t) == 0); /* never noted */
    /* Host failures below the streak, then a success: nothing benched, streak forgotten. */
    for (i = 0; i < HEALTH_STREAK - 1; i++) CHECK(health_note(h, 0, 1, "disk full", t) == 0);
    CHECK(health_note(h, 0, 0, "", t) == 0);
    for (i = 0; i < HEALTH_STREAK - 1; i++) CHECK(health_note(h, 0, 1, "disk full", t) == 0);
    CHECK(health_benched(h, 0, t) == 0);
    /* The streak's last failure benches it, and says why. */
    CHECK(health_note(h, 0, 1, "read-only", t) == HEALTH_COOLDOWN_MIN);
    CHECK(health_benched(h, 0, t) == HEALTH_COOLDOWN_MIN);
    CHECK(health_benched(h, 0, t + 1000) == HEALTH_COOLDOWN_MIN - 1000);
    CHECK_STREQ(health_why(h, 0), "read-only");
    /* Other functions are not benched by it. */
    CHECK(health_benched(h, 1, t) == 0);
    /* Failures of jobs that ran while it was benched do not extend the bench. */
    CHECK(health_note(h, 0, 1, "read-only", t + 10) == 0);
    CHECK(health_benched(h, 0, t + 10) == HEALTH_COOLDOWN_MIN - 10);
    health_free(h);
}

static void test_escalation(void)
{
    struct health *h = health_new();
    long long t = 5000, want = HEALTH_COOLDOWN_MIN;
    int i, rounds = 0;

    for (i = 0; i < HEALTH_STREAK - 1; i++) health_note(h, 3, 1, "EROFS", t);
    CHECK(health_note(h, 3, 1, "EROFS", t) == want);
    /* After each bench one more host failure benches it again, twice as long, up to the cap. */
    while (want < HEALTH_COOLDOWN_MAX && rounds++ < 20) {
        t += want;
        CHECK(health_benched(h, 3, t) == 0);
        want = want * 2 > HEALTH_COOLDOWN_MAX ? HEALTH_COOLDOWN_MAX : want * 2;
        CHECK(health_note(h, 3, 1, "EROFS", t) == want);
    }
    t += want;
    CHECK(health_note(h, 3, 1, "EROFS", t) == HEALTH_COOLDOWN_MAX);
    /* A success after the bench resets it all: a full streak again, and the shortest bench. */
    t += HEALTH_COOLDOWN_MAX;
    CHECK(health_note(h, 3, 0, "", t) == 0);
    for (i = 0; i < HEALTH_STREAK - 1; i++) CHECK(health_note(h, 3, 1, "EROFS", t) == 0);
    CHECK(health_note(h, 3, 1, "EROFS", t) == HEALTH_COOLDOWN_MIN);
    health_free(h);
}

int main(void)
{
    test_streak();
    test_escalation();
    health_free(NULL);
    return check_report();
}
