/* alloc.c - every allocation of the library goes through here, so a user
 * allocator hook can be added in one place, and tests can make the n-th
 * allocation fail to exercise every out-of-memory path. Sizes of 0 are
 * rounded up so a NULL return always means failure. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/alloc.h"

/* Atomic because the kernels' worker threads allocate too (their scratch,
 * once): a test that injects failures must not race with them. */
static _Atomic long fail_countdown = -1; /* allocations left before one fails; -1: never */
static _Atomic int fail_sticky;
static _Atomic long n_allocs;        /* every successful or failed request, for tests */
static size_t max_single = SIZE_MAX; /* larger requests fail (set before threads start) */

void tg__alloc_fail_after(long n, int sticky)
{
    atomic_store(&fail_sticky, sticky);
    atomic_store(&fail_countdown, n);
}

long tg__alloc_count(void) { return atomic_load_explicit(&n_allocs, memory_order_relaxed); }

void tg__alloc_set_max(size_t bytes) { max_single = bytes ? bytes : SIZE_MAX; }

static int should_fail_size(size_t size) { return size > max_single; }

static int should_fail(void)
{
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    long left = atomic_load(&fail_countdown);
    while (left > 0)
        if (atomic_compare_exchange_weak(&fail_countdown, &left, left - 1))
            return 0;
    if (left < 0)
        return 0;
    if (!atomic_load(&fail_sticky))
        atomic_store(&fail_countdown, -1);
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
