/* alloc.h - the library's allocation entry points (lib/core/alloc.c). Every
 * allocation goes through them, so a user allocator hook, and the tests'
 * out-of-memory injection, act in one place. Kernels include this alone. */
#ifndef TG_CORE_ALLOC_H
#define TG_CORE_ALLOC_H

#include <stddef.h>

void *tg__malloc(size_t size);
void *tg__calloc(size_t n, size_t size);
void *tg__realloc(void *p, size_t size);
void tg__free(void *p);

/* Tests only: make the n-th allocation from now fail (and every later one
 * while `sticky`); n < 0 turns failure injection off. Call it while no
 * kernel runs; allocations by worker threads count like any other. */
void tg__alloc_fail_after(long n, int sticky);
/* Tests only: allocations requested so far (malloc, calloc and realloc, by
 * any thread), to show that a training step allocates nothing. */
long tg__alloc_count(void);

/* Tests and fuzzers only: every single request above `bytes` fails (0: no
 * limit), so huge-tensor requests take the TG_ENOMEM paths without reserving
 * memory a sanitizer or libFuzzer would count. Set it before starting threads. */
void tg__alloc_set_max(size_t bytes);

#endif
