/* arena.h - bump allocation for a tape's tensors and nodes, and the
 * generation numbers that let every layer tell a live tape tensor from a
 * stale one without touching freed memory (lib/core/arena.c).
 *
 * A generation is (tape id << 32) | resets. Ids are unique among live arenas
 * and each live arena publishes its current generation in a process-wide
 * table, so a tensor header's generation answers "is my tape alive, and has it
 * been reset since I was made?" with one atomic load. The arena never frees a
 * chunk before tg__arena_free, so a stale header is still readable memory. */
#ifndef TG_CORE_ARENA_H
#define TG_CORE_ARENA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tg__arena_chunk tg__arena_chunk;

#define TG__ARENA_ALIGN 64 /* cache line: kernels get aligned rows for free */

typedef struct tg__arena {
    tg__arena_chunk *first;   /* chunks in the order they were made */
    tg__arena_chunk *current; /* the chunk being filled */
    unsigned char *next, *end; /* its free space: the bump pointer and its end */
    size_t reserved;          /* bytes held by all chunks */
    size_t used;              /* bytes handed out since the last reset */
    size_t high_water;        /* the most `used` has been */
    size_t limit;             /* 0: none; else reserved may not pass it */
    uint64_t generation;
    int limit_hit;            /* the last failed take was refused by the limit */
} tg__arena;

/* A fresh arena with a new id; -1 when every id slot is taken. */
int tg__arena_init(tg__arena *a);
/* The slow path of tg__arena_take: the next chunk, or a new one. */
void *tg__arena_take_slow(tg__arena *a, size_t bytes);

/* A block of `rounded` bytes (a multiple of TG__ARENA_ALIGN) from the current
 * chunk, or NULL when it has no room: for callers that then take their
 * general path (which calls tg__arena_take). */
static inline void *tg__arena_take_here(tg__arena *a, size_t rounded)
{
    if (a->next && (size_t)(a->end - a->next) >= rounded) {
        void *p = a->next;
        a->next += rounded;
        a->used += rounded;
        if (a->used > a->high_water)
            a->high_water = a->used;
        return p;
    }
    return NULL;
}

/* 64-byte aligned block; NULL when memory runs out or the limit would be
 * passed (limit_hit tells which). Inline: every op takes two blocks. */
static inline void *tg__arena_take(tg__arena *a, size_t bytes)
{
    size_t rounded = (bytes + TG__ARENA_ALIGN - 1) & ~(size_t)(TG__ARENA_ALIGN - 1);
    void *p = rounded >= bytes ? tg__arena_take_here(a, rounded) : NULL;
    return p ? p : tg__arena_take_slow(a, bytes);
}
/* Forgets every block (they are reused in order) and starts a new generation. */
void tg__arena_reset(tg__arena *a);
/* Records TG_ENOMEM for a failed take of `bytes` by fn (saying so when the
 * limit refused it) and returns NULL. */
void *tg__arena_fail(const char *fn, const tg__arena *a, size_t bytes);
void tg__arena_free(tg__arena *a);

/* slot (id % TG__ARENA_ID_SLOTS) holds the live arena's generation, 0 when free. */
#define TG__ARENA_ID_SLOTS 4096 /* live arenas at once */
extern _Atomic uint64_t tg__arena_live[TG__ARENA_ID_SLOTS];

/* Whether generation is the current one of a live arena: the common case of
 * tg__gen_check, inline because every op asks it of every input. */
static inline bool tg__gen_is_live(uint64_t generation)
{
    unsigned id = (unsigned)(generation >> 32);
    return id != 0 && atomic_load_explicit(&tg__arena_live[id % TG__ARENA_ID_SLOTS],
                                           memory_order_relaxed) == generation;
}

typedef enum tg__gen_state { TG__GEN_LIVE, TG__GEN_STALE, TG__GEN_DEAD } tg__gen_state;
/* LIVE: its arena lives and was not reset since; STALE: the arena lives but was
 * reset; DEAD: no live arena has that id (freed, or not a generation). */
tg__gen_state tg__gen_check(uint64_t generation);
/* The id part of a generation, for messages ("tape #3"). */
static inline unsigned tg__gen_tape_id(uint64_t generation) { return (unsigned)(generation >> 32); }

#endif
