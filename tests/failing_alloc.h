/* failing_alloc.h - a malloc for json_set_alloc_funcs that fails after `budget` successes, so tests
 * can check that every allocation failure ends cleanly (LeakSanitizer catches leaks). */
#ifndef FAILING_ALLOC_H
#define FAILING_ALLOC_H

#include <stdlib.h>

static long budget = -1; /* < 0: never fail */

static inline void *failing_malloc(size_t n)
{
    if (budget == 0)
        return NULL;
    if (budget > 0)
        budget--;
    return malloc(n);
}

#endif
