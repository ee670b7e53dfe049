/* arena.c - see arena.h. Chunks grow geometrically so one step needs few of
 * them; a reset reuses them in order, so from the second identical step on a
 * training loop takes no memory from the system. */
#include <stdatomic.h>
#include <stdbool.h>

#include "tg_internal.h"

#define ALIGNMENT TG__ARENA_ALIGN
#define FIRST_CHUNK (256 * 1024)
#define ID_SLOTS TG__ARENA_ID_SLOTS

struct tg__arena_chunk {
    tg__arena_chunk *next;
    size_t size, used;
    _Alignas(ALIGNMENT) unsigned char data[];
};

_Atomic uint64_t tg__arena_live[ID_SLOTS];
#define live tg__arena_live
static _Atomic uint32_t next_id = 1;

int tg__arena_init(tg__arena *a)
{
    *a = (tg__arena){0};
    for (int tries = 0; tries < ID_SLOTS; tries++) {
        uint32_t id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
        if (id == 0)
            continue;
        uint64_t expected = 0, gen = (uint64_t)id << 32;
        if (atomic_compare_exchange_strong(&live[id % ID_SLOTS], &expected, gen)) {
            a->generation = gen;
            return 0;
        }
    }
    return -1;
}

static tg__arena_chunk *chunk_new(size_t size)
{
    tg__arena_chunk *c = tg__malloc(sizeof *c + size);
    if (c) {
        c->next = NULL;
        c->size = size;
        c->used = 0;
    }
    return c;
}

/* The chunk's own count of what it gave out catches up with the bump pointer
 * before the arena moves on from it. */
static void sync_current(tg__arena *a)
{
    if (a->current && a->next)
        a->current->used = (size_t)(a->next - a->current->data);
}

void *tg__arena_take_slow(tg__arena *a, size_t bytes)
{
    a->limit_hit = 0;
    if (bytes > SIZE_MAX - ALIGNMENT)
        return NULL;
    bytes = (bytes + ALIGNMENT - 1) & ~(size_t)(ALIGNMENT - 1);
    sync_current(a);
    tg__arena_chunk *c = a->current;
    // Move on to the chunks kept from earlier steps before making a new one.
    while (c && c->size - c->used < bytes && c->next) {
        c = c->next;
        c->used = 0;
    }
    if (!c || c->size - c->used < bytes) {
        size_t size = a->reserved > FIRST_CHUNK ? a->reserved : FIRST_CHUNK;
        if (size < bytes)
            size = bytes;
        if (a->limit && (a->reserved > a->limit || size > a->limit - a->reserved)) {
            // Past the limit: try the smallest chunk that would do.
            size = bytes;
            if (a->reserved > a->limit || size > a->limit - a->reserved) {
                a->limit_hit = 1;
                return NULL;
            }
        }
        tg__arena_chunk *fresh = chunk_new(size);
        if (!fresh)
            return NULL;
        if (c)
            c->next = fresh;
        else
            a->first = fresh;
        c = fresh;
        a->reserved += size;
    }
    a->current = c;
    void *p = c->data + c->used;
    c->used += bytes;
    a->next = c->data + c->used;
    a->end = c->data + c->size;
    a->used += bytes;
    if (a->used > a->high_water)
        a->high_water = a->used;
    return p;
}

void *tg__arena_fail(const char *fn, const tg__arena *a, size_t bytes)
{
    if (a->limit_hit)
        return tg__fail_null(TG_ENOMEM, "%s: the tape's memory limit of %zu bytes is reached "
                                        "(%zu bytes in use); call tg_tape_reset after each "
                                        "step, or raise the limit with tg_tape_set_limit", fn,
                             a->limit, a->used);
    return tg__fail_null(TG_ENOMEM, "%s: out of memory for %zu bytes", fn, bytes);
}

void tg__arena_reset(tg__arena *a)
{
    a->used = 0;
    a->current = a->first;
    if (a->first) {
        a->first->used = 0;
        a->next = a->first->data;
        a->end = a->first->data + a->first->size;
    }
    uint32_t id = tg__gen_tape_id(a->generation);
    a->generation = ((uint64_t)id << 32) | (uint32_t)(a->generation + 1);
    atomic_store_explicit(&live[id % ID_SLOTS], a->generation, memory_order_relaxed);
}

void tg__arena_free(tg__arena *a)
{
    for (tg__arena_chunk *c = a->first; c;) {
        tg__arena_chunk *next = c->next;
        tg__free(c);
        c = next;
    }
    if (a->generation)
        atomic_store_explicit(&live[tg__gen_tape_id(a->generation) % ID_SLOTS], 0,
                              memory_order_relaxed);
    *a = (tg__arena){0};
}

tg__gen_state tg__gen_check(uint64_t generation)
{
    unsigned id = tg__gen_tape_id(generation);
    uint64_t now = atomic_load_explicit(&live[id % ID_SLOTS], memory_order_relaxed);
    if (id == 0 || tg__gen_tape_id(now) != id)
        return TG__GEN_DEAD;
    return now == generation ? TG__GEN_LIVE : TG__GEN_STALE;
}
