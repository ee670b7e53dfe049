/* tape_internal.h - the tape's body, its arena, nodes and the op builder.
 * Private to lib/. */
#ifndef TG_TAPE_INTERNAL_H
#define TG_TAPE_INTERNAL_H

#include <stdio.h>

#include "tg_internal.h"

/* Parameters an op keeps beside its inputs: scalars, small integer lists
 * (axes, permutations, slice bounds, conv geometry) and an optional index
 * array in the arena. */
typedef struct tg_op_params {
    double f[3];
    int64_t i[4 * TG_MAX_DIMS];
    int ni;
    const int64_t *idx;   /* arena-owned index list (gather, take, ...) */
    int64_t n_idx;
    const tg_op_def_user *user; /* user ops: the definition and its context */
    void *user_ctx;
} tg_op_params;

typedef struct tg_node {
    int op;                /* tg_op_id */
    int n_in;
    tg_tensor **in;        /* arena array of n_in inputs */
    tg_tensor *out;
    tg_op_params p;
    tg_tensor *saved;      /* non-differentiable helper made by forward (masks) */
    size_t seq;            /* position on the tape */
    bool released;         /* a backward without TG_RETAIN_GRAPH walked it */
} tg_node;

typedef struct arena_chunk arena_chunk;

struct tg_tape {
    arena_chunk *chunks;   /* newest first */
    size_t reserved;       /* bytes held by all chunks */
    size_t used;           /* bytes handed out since the last reset */
    tg_node **nodes;
    size_t n_nodes, cap_nodes;
    FILE *explain;         /* tg_tape_explain stream */
};

/* 64-byte aligned block from the tape's arena; NULL on exhausted memory. */
void *tg__arena_alloc(tg_tape *tape, size_t bytes);
/* Appends a node; TG_ENOMEM on failure. */
tg_status tg__tape_push(tg_tape *tape, tg_node *node);
/* The tape ops record on, or a recorded TG_ESTATE failure (NULL) naming fn. */
tg_tape *tg__tape_for(const char *fn);
const char *tg__node_op_name(const tg_node *node);

/* The public function a message should name. A public op built from other
 * ops (tg_mean from sum and mul_scalar, tg_gt from compare) wraps its body in
 * TG__API_CALL, so a failure inside names the call the user made; the
 * outermost call wins. tg__api_fn(fallback) is that name, or fallback. */
const char *tg__api_enter(const char *fn);
void tg__api_leave(const char *prev);
const char *tg__api_fn(const char *fallback);
#define TG__API_CALL(fn, expr)                                                     \
    do {                                                                           \
        const char *prev_api_ = tg__api_enter(fn);                                 \
        tg_tensor *api_result_ = (expr);                                           \
        tg__api_leave(prev_api_);                                                  \
        return api_result_;                                                        \
    } while (0)

/* A tape-owned tensor for op results and backward temporaries. */
tg_tensor *tg__tape_tensor(const char *fn, tg_dtype dtype, int ndim, const int64_t *shape,
                           bool zero);

/* Builds op `op` on inputs: checks them, infers the shape, runs forward, and
 * records a node when grad mode is on and an input requires grad. */
tg_tensor *tg__apply(int op, int n_in, tg_tensor *const *in, const tg_op_params *p);

/* Whether backward must produce a gradient for input i of node. */
static inline bool tg__needs_grad(const tg_node *nd, int i) { return nd->in[i]->requires_grad; }

/* g summed over broadcast dimensions down to (ndim, shape); g itself when the
 * shapes match. Differentiable. */
tg_tensor *tg__sum_to(tg_tensor *g, int ndim, const int64_t *shape);

/* "    label      tensor(...)" with matrix rows aligned (tape_print.c). */
void tg__print_labelled(FILE *f, const char *label, const tg_tensor *t);

#endif
