/* tape_internal.h - the tape's body, its arena, nodes and the op builder.
 * Private to lib/. */
#ifndef TG_TAPE_INTERNAL_H
#define TG_TAPE_INTERNAL_H

#include <stdio.h>

#include "tg_internal.h"

typedef struct tg_node tg_node;

/* One op: how to check its inputs and infer its shape, compute its result, and
 * turn the gradient at its result into gradients of its inputs. The engine
 * (tape.c, backward.c) works only through this interface; the entries live in
 * lib/ops, one file per family (see docs/hacking.md).
 *
 * backward builds each input's gradient from tapegrad ops on dout, so it is
 * recorded (and differentiable again) when the engine runs it with grad mode
 * on. It may return a gradient of the broadcast shape; the engine sums it back
 * to the input's shape and accumulates over several uses of one tensor.
 * fused_backward, when present, computes the same gradients directly (one
 * pass, no temporaries); the engine uses it whenever no graph of the backward
 * is being recorded. */
typedef struct tg_op_def {
    const char *name;      /* "add": the node's name in explain, print and DOT */
    const char *fn;        /* "tg_add": the public call that messages name */
    int n_in;              /* number of inputs; -1 for any number (concat) */
    bool differentiable;   /* false: the result never requires grad */
    bool view;             /* the result shares input 0's storage: no data is allocated */
    size_t params_size;    /* bytes of the op's own parameter struct (0: none) */
    /* Validates the inputs and parameters and writes the output shape. On
     * failure records a message starting with fn. */
    tg_status (*shape)(const char *fn, tg_tensor *const *in, int n_in, const void *params,
                       int *ndim, int64_t *shape);
    /* Computes nd->out's values from nd->in (for views: sets nd->out->data).
     * May allocate nd->saved or index arrays on the tape. */
    tg_status (*forward)(tg_node *nd);
    /* din[i] for every input with tg__needs_grad(nd, i); built from ops. */
    tg_status (*backward)(tg_node *nd, tg_tensor *dout, tg_tensor **din);
    /* Optional fast path of backward, used when no graph is recorded. */
    tg_status (*fused_backward)(tg_node *nd, tg_tensor *dout, tg_tensor **din);
    /* Optional: a name that depends on the parameters (user ops). */
    const char *(*label)(const tg_node *nd);
    /* Forward mode (tg_jvp, jvp.c): the tangent of nd->out from the tangents
     * tin[i] of the inputs (NULL: zero; the engine calls it only when one is
     * not, and each has its input's exact shape and dtype). Built from ops,
     * like backward, so the tangent is recorded (and differentiable) when the
     * walk records; may have any shape that broadcasts to the output's (the
     * engine expands it). Every differentiable op has one (check_jvp fails
     * otherwise); NULL for ops that are not differentiable. */
    tg_status (*tangent)(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout);
} tg_op_def;

/* A recorded op. Its parameter struct (def->params_size bytes) and its input
 * list sit right after it in the tape's arena. */
struct tg_node {
    const tg_op_def *def;
    tg_tensor **in;        /* n_in inputs */
    tg_tensor *out;
    tg_tensor *saved;      /* non-differentiable helper made by forward (masks) */
    void *params;          /* the op's parameter struct, NULL when it has none */
    size_t seq;            /* position on the tape */
    int n_in;
    bool released;         /* a backward without TG_RETAIN_GRAPH walked it */
};

/* The parameters of node nd as the op's own struct type. */
#define TG__PARAMS(nd, type) ((type *)(nd)->params)

struct tg_tape {
    tg__arena arena;       /* first: see tg__tape_arena */
    tg_node **nodes;
    size_t n_nodes, cap_nodes;
    FILE *explain;         /* tg_tape_explain stream, kept across resets */
    int explain_digits;    /* decimals explain prints (tg_explain_opts) */
};

/* 64-byte aligned block from the tape's arena. NULL when memory runs out or
 * the limit (tg_tape_set_limit) is reached, with TG_ENOMEM recorded for fn
 * (the message says which of the two). */
static inline void *tg__tape_alloc(tg_tape *tape, const char *fn, size_t bytes)
{
    void *p = tg__arena_take(&tape->arena, bytes);
    return p ? p : tg__arena_fail(fn, &tape->arena, bytes);
}
/* Appends a node; TG_ENOMEM on failure. */
tg_status tg__tape_push(tg_tape *tape, tg_node *node);
/* The tape ops record on, or a recorded TG_ESTATE failure (NULL) naming fn. */
tg_tape *tg__tape_for(const char *fn);
/* The op's name for explain, print and DOT ("add", or a user op's name). */
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

/* The current tape (tg_tape_current), for the inline path below. */
extern _Thread_local tg_tape *tg__current_tape;
/* tg__tape_tensor's general case (and every failure). */
tg_tensor *tg__tape_tensor_slow(const char *fn, tg_dtype dtype, int ndim, const int64_t *shape,
                                bool zero);
/* A tape-owned tensor for op results and backward temporaries. Inline for
 * the fused gradients, whose results are mostly small matrices. */
static inline tg_tensor *tg__tape_tensor(const char *fn, tg_dtype dtype, int ndim,
                                         const int64_t *shape, bool zero)
{
    tg_tape *tape = tg__current_tape;
    tg_tensor *t = tape && !zero ? tg__tape_tensor_here(tape, dtype, ndim, shape) : NULL;
    return t ? t : tg__tape_tensor_slow(fn, dtype, ndim, shape, zero);
}

/* Builds op def on inputs with its parameter struct params (def->params_size
 * bytes, copied; NULL when the op has none): checks the inputs, infers the
 * shape, runs forward, and records a node when grad mode is on and an input
 * requires grad. */
tg_tensor *tg__apply(const tg_op_def *def, int n_in, tg_tensor *const *in, const void *params);

/* Whether backward must produce a gradient for input i of node. */
static inline bool tg__needs_grad(const tg_node *nd, int i) { return nd->in[i]->requires_grad; }

/* g summed over broadcast dimensions down to (ndim, shape); g itself when the
 * shapes match. Differentiable (sum_to.c). */
tg_tensor *tg__sum_to(tg_tensor *g, int ndim, const int64_t *shape);
/* The same sums as one kernel call into a tensor of (ndim, shape), recording
 * nothing: for walks that build no graph of the backward. */
tg_tensor *tg__sum_to_direct(tg_tensor *g, int ndim, const int64_t *shape);

/* ---- anomaly mode (anomaly.c) ---- */
/* Read inline by the builder and the walk: off, anomaly mode costs one
 * thread-local load per op. */
extern _Thread_local bool tg__anomaly_on;
static inline bool tg__anomaly_enabled(void) { return tg__anomaly_on; }
/* TG_ENUMERIC naming fn and the node when nd->out holds a NaN or an Inf. */
tg_status tg__anomaly_check_forward(const char *fn, const tg_node *nd, bool recorded);
/* The same for the gradient din that nd's backward gave input i. */
tg_status tg__anomaly_check_backward(const char *fn, const tg_node *nd, int i,
                                     const tg_tensor *din);

/* "    label      tensor(...)" with matrix rows aligned (tape_print.c), with
 * the printer's 4 decimals or with digits. */
void tg__print_labelled(FILE *f, const char *label, const tg_tensor *t);
void tg__print_labelled_digits(FILE *f, const char *label, const tg_tensor *t, int digits);

/* ---- the recorded graph behind a set of roots (tape_graph.c) ---- */
/* What explain and DOT export know about one tensor of the graph. */
typedef struct tg__graph_entry {
    const tg_tensor *t;    /* NULL: free slot */
    int id;                /* not recorded: leaf or constant number, by first use; else -1 */
    int uses;              /* gradients a backward walk from the roots delivers to it */
    int seen;              /* scratch for the user: explain counts deliveries, DOT marks */
} tg__graph_entry;

typedef struct tg__graph {
    const tg_tape *tape;
    size_t top;            /* nodes [0, top) may be reached */
    bool *reach;           /* reach[k]: node k lies on a path to a root */
    tg__graph_entry *tab;  /* inputs of reached nodes and the roots, by pointer */
    size_t cap;            /* slots in tab, a power of two */
    const tg_tensor **leaves; /* leaves (not recorded, requires grad) by number */
    int n_leaves, n_constants;
} tg__graph;

/* Bytes tg__graph_build needs (n_roots == 0: the whole tape). */
size_t tg__graph_bytes(const tg_tape *tape, int n_roots, tg_tensor *const *roots);
/* Fills g, its arrays in mem (tg__graph_bytes bytes, pointer-aligned). With
 * grad_only it follows only inputs that require grad, as a backward walk
 * does; otherwise every input. roots that are not recorded on tape are kept
 * as lone tensors. */
void tg__graph_build(tg__graph *g, void *mem, const tg_tape *tape, int n_roots,
                     tg_tensor *const *roots, bool grad_only);
/* t's entry, or NULL when t is not an input of a reached node nor a root. */
tg__graph_entry *tg__graph_find(const tg__graph *g, const tg_tensor *t);
/* The node that produced t, when it is recorded on the tape below top. */
const tg_node *tg__graph_producer(const tg__graph *g, const tg_tensor *t);
/* "[3] matmul 1x2", "leaf #0 3x2" or "constant 2" into buf. */
void tg__graph_describe(const tg__graph *g, const tg_tensor *t, char *buf, size_t size);

/* ---- explaining a walk (explain.c); the walk calls these only while the
 * tape's explain stream is set, so they cost nothing otherwise ---- */
typedef struct tg__explain tg__explain;
/* Starts explaining a walk of fn from outs; NULL (after saying so on the
 * stream) when the bookkeeping does not fit in the tape's arena. */
tg__explain *tg__explain_begin(tg_tape *tape, const char *fn, uint64_t walk_id, int n_outs,
                               tg_tensor *const *outs);
/* Node nd is about to pass its gradient dout on to its inputs. */
void tg__explain_step(tg__explain *ex, const tg_node *nd, const tg_tensor *dout);
/* The gradient given (from a backward or a seed) arrives at t as reduced
 * (given summed to t's shape, or given itself); called before it is added to
 * what t already holds. */
void tg__explain_deliver(tg__explain *ex, tg_tensor *t, const tg_tensor *given,
                         const tg_tensor *reduced);
/* The walk succeeded: prints the leaves' .grad (n == 0, tg_backward) or the n
 * gradients tg_grad returns for inputs. */
tg_status tg__explain_end(tg__explain *ex, int n, tg_tensor *const *inputs,
                          tg_tensor *const *grads);

#endif
