/* audience.c - whom libcq's advice speaks to (see audience.h). */
#include "audience.h"

/* One value a process, set before its threads start (atomic all the same: a read on another
 * thread is then no race, whatever the order). */
static int audience = AUDIENCE_PROGRAM;

void cq_private_set_audience(int a)
{
    __atomic_store_n(&audience, a, __ATOMIC_RELAXED);
}

const char *audience_pick(const char *to_commands, const char *to_programs)
{
    return __atomic_load_n(&audience, __ATOMIC_RELAXED) == AUDIENCE_COMMANDS ? to_commands
                                                                             : to_programs;
}
