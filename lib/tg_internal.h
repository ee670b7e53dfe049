/* tg_internal.h - private declarations shared across lib/: the tensor body,
 * error reporting, allocation. Never installed. */
#ifndef TG_INTERNAL_H
#define TG_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tapegrad/tapegrad.h"

struct tg_node;

struct tg_tensor {
    tg_dtype dtype;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    int64_t strides[TG_MAX_DIMS];
    int64_t numel;
    void *data;              /* first element; owned per `tape` below */
    tg_tape *tape;           /* owning tape, NULL for caller-owned tensors */
    uint64_t gen;            /* the tape's generation when made (core/arena.h), or
                                TG__GEN_CALLER for a caller-owned tensor */
    bool owns_data;          /* caller-owned only: data is ours to free */
    bool requires_grad;
    struct tg_node *node;    /* op that produced this tensor, NULL for leaves */
    tg_tensor *grad;         /* accumulated .grad (leaves), owned like the tensor */
    /* Scratch for one backward walk: the gradient arriving at this tensor. */
    tg_tensor *walk_grad;
    uint64_t walk_id;
};

/* ---- errors (lib/core/status.c) ---- */
/* Records a failure and returns code, so `return tg__fail(...)` reads well. */
tg_status tg__fail(tg_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Like tg__fail but returns NULL, for constructors. */
void *tg__fail_null(tg_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An op got a NULL input: keep a pending failure's message (the first one) or
 * report this one. Returns NULL. */
void *tg__null_input(const char *fn, int which);
/* A getter or other non-op call got NULL for `what` ("tensor", "model"):
 * records TG_EINVAL "fn: what is NULL" unless a failure is pending, whose
 * message is kept (as above). Returns TG_EINVAL. */
tg_status tg__null_arg(const char *fn, const char *what);
/* "2x3x4" (or "scalar") into buf of at least TG__SHAPE_STR bytes. */
#define TG__SHAPE_STR 192 /* the longest 8-dim shape: 8 x 19 digits + 7 x "x" */
const char *tg__shape_str(char *buf, int ndim, const int64_t *shape);

/* ---- allocation (lib/core/alloc.c, arena.c) ---- */
#include "core/alloc.h"
#include "core/arena.h"

/* A tape starts with its arena (struct tg_tape in autograd/tape_internal.h),
 * so the tensor layer can allocate on a tape, and check a tensor's
 * generation, without knowing the rest of the tape. */
static inline tg__arena *tg__tape_arena(tg_tape *tape) { return (tg__arena *)(void *)tape; }

/* The generation of every caller-owned tensor header: a pattern, not 0, so
 * that a stale tape tensor whose header memory now holds zeros (or other
 * data) is not taken for a caller-owned one. */
#define TG__GEN_CALLER UINT64_C(0xca11e40000ca11e4)

/* TG_OK, or a recorded TG_ESTATE naming fn when t lives on a tape that was
 * reset or freed since t was made (or t is no tensor header at all). Inline
 * for the live case; the rest (and every message) is tg__check_live_slow. */
tg_status tg__check_live_slow(const char *fn, const tg_tensor *t);
static inline tg_status tg__check_live(const char *fn, const tg_tensor *t)
{
    if (t->tape ? tg__gen_is_live(t->gen) : t->gen == TG__GEN_CALLER)
        return TG_OK;
    return tg__check_live_slow(fn, t);
}

/* ---- tensors (lib/tensor/tensor.c) ---- */
/* Validates ndim/shape, fills shape/strides/numel. TG_OK or a recorded error
 * prefixed with fn. */
tg_status tg__init_shape(tg_tensor *t, const char *fn, int ndim, const int64_t *shape);
/* A fresh tensor of the given shape: on `tape` (its arena) or, when tape is
 * NULL, caller-owned. Data is zeroed only when zero is true. */
tg_tensor *tg__tensor_alloc(tg_tape *tape, const char *fn, tg_dtype dtype, int ndim,
                            const int64_t *shape, bool zero);
/* Where a tape tensor's data starts in its block: after the header, on a
 * cache line of its own. */
#define TG__TENSOR_DATA_AT \
    ((sizeof(tg_tensor) + TG__ARENA_ALIGN - 1) & ~(size_t)(TG__ARENA_ALIGN - 1))

/* Every tape tensor's fields beyond dtype, shape and strides: the data at
 * `data` in its block, owned by the tape, not yet on the graph. Shared by
 * tg__tensor_alloc (lib/tensor) and its inline common case below. */
static inline void tg__tape_header_finish(tg_tensor *t, tg_tape *tape, const tg__arena *arena,
                                          unsigned char *data, int64_t numel)
{
    t->numel = numel;
    t->data = data;
    t->tape = tape;
    t->gen = arena->generation;
    t->owns_data = false;
    t->requires_grad = false;
    t->node = NULL;
    t->grad = NULL;
    t->walk_grad = NULL;
    t->walk_id = 0;
}

/* The common case of tg__tensor_alloc, inline for the op builder and the
 * fused gradients, whose results are mostly small matrices: a tape tensor
 * (float32 or float64, data not zeroed) of at most 2 dims below 2^14 each,
 * from the room left in the arena's current chunk. Such a shape cannot
 * overflow, so its check is one compare of the dims OR-ed together (a dim of
 * 2^14 or more, or a negative one, sets a bit at or above 2^14). NULL means
 * "not this case" and records nothing: the caller then calls
 * tg__tensor_alloc, which handles every shape and reports failures. */
static inline tg_tensor *tg__tape_tensor_here(tg_tape *tape, tg_dtype dtype, int ndim,
                                              const int64_t *shape)
{
    int64_t s0 = 1, s1 = 1;
    if (ndim > 0 && !shape)
        return NULL;
    if (ndim == 2)
        s0 = shape[0], s1 = shape[1];
    else if (ndim == 1)
        s1 = shape[0];
    else if (ndim != 0)
        return NULL;
    if ((uint64_t)(s0 | s1) >= 16384 || (dtype != TG_F32 && dtype != TG_F64))
        return NULL;
    int64_t numel = s0 * s1;
    size_t bytes = (size_t)numel << (dtype == TG_F32 ? 2 : 3);
    bytes = (bytes + TG__ARENA_ALIGN - 1) & ~(size_t)(TG__ARENA_ALIGN - 1);
    tg__arena *arena = tg__tape_arena(tape);
    unsigned char *block = tg__arena_take_here(arena, TG__TENSOR_DATA_AT + bytes);
    if (!block)
        return NULL;
    tg_tensor *t = (tg_tensor *)(void *)block;
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim == 2) {
        t->shape[0] = s0, t->strides[0] = s1 ? s1 : 1;
        t->shape[1] = s1, t->strides[1] = 1;
    } else if (ndim == 1) {
        t->shape[0] = s1, t->strides[0] = 1;
    }
    tg__tape_header_finish(t, tape, arena, block + TG__TENSOR_DATA_AT, numel);
    return t;
}

/* Value access by flat index as double. */
static inline double tg__get(const tg_tensor *t, int64_t i)
{
    return t->dtype == TG_F32 ? (double)((const float *)t->data)[i] : ((const double *)t->data)[i];
}
static inline void tg__set(tg_tensor *t, int64_t i, double v)
{
    if (t->dtype == TG_F32)
        ((float *)t->data)[i] = (float)v;
    else
        ((double *)t->data)[i] = v;
}
/* Inline: the builder and the backward walk ask it of every operand. */
static inline bool tg__same_shape(const tg_tensor *a, const tg_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

/* A builder's first check of an input it is about to read: true, with the
 * reason recorded, when x is NULL (a pending failure's message is kept) or
 * stale (from before a reset of its tape). */
static inline bool tg__bad_input(const char *fn, const tg_tensor *x, int which)
{
    if (!x) {
        tg__null_input(fn, which);
        return true;
    }
    return tg__check_live(fn, x) != TG_OK;
}

/* ---- printing (lib/tensor/print.c) ---- */
#define TG__PRINT_DIGITS 4      /* decimals tg_tensor_print and tg_tensor_format show */
#define TG__PRINT_MAX_DIGITS 17 /* enough to tell any two doubles apart */
/* tg_tensor_format with digits decimals (clamped to 0..TG__PRINT_MAX_DIGITS);
 * t must not be NULL. Returns the length the full text needs. */
int tg__tensor_format_digits(const tg_tensor *t, char *buf, size_t size, int digits);

#endif
