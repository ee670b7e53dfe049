/* alloc.c - every allocation of the library goes through here, so a user
 * allocator hook can be added in one place, and tests can make the n-th
 * allocation fail to exercise every out-of-memory path. Sizes of 0 are
 * rounded up so a NULL return always means failure. */
#include <stdint.h>
#include <stdlib.h>

#include "core/alloc.h"

static long fail_countdown = -1; /* allocations left before one fails; -1: never */
static unsigned long n_allocations; /* successful or not; tests read it */
static int fail_sticky;
static size_t max_single = SIZE_MAX; /* larger requests fail */

void tg__alloc_fail_after(long n, int sticky)
{
    fail_countdown = n;
    fail_sticky = sticky;
}

unsigned long tg__alloc_count(void) { return n_allocations; }

void tg__alloc_set_max(size_t bytes) { max_single = bytes ? bytes : SIZE_MAX; }

static int should_fail_size(size_t size) { return size > max_single; }

static int should_fail(void)
{
    n_allocations++;
    if (fail_countdown < 0)
        return 0;
    if (fail_countdown > 0) {
        fail_countdown--;
        return 0;
    }
    if (!fail_sticky)
        fail_countdown = -1;
    return 1;
}

void *tg__malloc(size_t size)
{
    return should_fail_size(size) || should_fail() ? NULL : malloc(size ? size : 1);
}

void *tg__calloc(size_t n, size_t size)
{
    size_t total = n && size > SIZE_MAX / n ? SIZE_MAX : n * size;
    return should_fail_size(total) || should_fail() ? NULL : calloc(n ? n : 1, size ? size : 1);
}

void *tg__realloc(void *p, size_t size)
{
    return should_fail_size(size) || should_fail() ? NULL : realloc(p, size ? size : 1);
}

void tg__free(void *p) { free(p); }
