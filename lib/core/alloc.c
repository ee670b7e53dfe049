/* alloc.c - every allocation of the library goes through here, so a user
 * allocator hook can be added in one place. Sizes of 0 are rounded up so a
 * NULL return always means failure. */
#include <stdlib.h>

#include "tg_internal.h"

void *tg__malloc(size_t size) { return malloc(size ? size : 1); }

void *tg__calloc(size_t n, size_t size) { return calloc(n ? n : 1, size ? size : 1); }

void *tg__realloc(void *p, size_t size) { return realloc(p, size ? size : 1); }

void tg__free(void *p) { free(p); }
