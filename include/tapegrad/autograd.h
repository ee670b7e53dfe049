/* autograd.h - the tape, grad mode, backward, the functional gradient,
 * gradient checking and user-defined ops.
 *
 * A tape is both the record of the ops and the arena their results live in.
 * Typical step:
 *
 *     tg_tape *tape = tg_tape_new();          // current on this thread
 *     for (step...) {
 *         tg_tensor *loss = model(x, params);  // ops record on the tape
 *         tg_backward(loss);                   // fills tg_tensor_grad(param)
 *         update(params);
 *         tg_tape_reset(tape);                 // frees every op result at once
 *     }
 *     tg_tape_free(tape);
 */
#ifndef TAPEGRAD_AUTOGRAD_H
#define TAPEGRAD_AUTOGRAD_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_tape tg_tape;

/* ---- tapes ---- */
/* A new empty tape, made current on the calling thread. Caller owns it.
 * NULL with TG_ENOMEM. */
TG_API tg_tape *tg_tape_new(void);
/* Frees the tape and every tensor on it; if it was current, no tape is
 * current afterwards. NULL is ignored. An op recorded on another tape may
 * read a constant from this one (a tensor that does not require grad); like a
 * caller-owned input, it must outlive that tape's next reset. */
TG_API void tg_tape_free(tg_tape *tape);
/* Releases every tensor and node on the tape but keeps its memory for the
 * next step, so a training loop runs without growing. Tensors returned by ops
 * before the reset must not be used after it. Leaves' .grad are untouched. */
TG_API void tg_tape_reset(tg_tape *tape);
/* The current tape of this thread (NULL if none). */
TG_API tg_tape *tg_tape_current(void);
/* Makes tape current on this thread (NULL: none); returns the previous one. */
TG_API tg_tape *tg_tape_set_current(tg_tape *tape);
/* Number of recorded nodes. */
TG_API size_t tg_tape_size(const tg_tape *tape);
/* Bytes the tape's arena holds (in use or reserved): what it took from the
 * allocator, kept across tg_tape_reset. After the first step of a loop it
 * stays constant. 0 for a new tape; 0 with TG_EINVAL for NULL. */
TG_API size_t tg_tape_bytes(const tg_tape *tape);
/* The most bytes the tape has had in use at once (its high-water mark, 64-byte
 * rounded blocks of tensors, nodes and scratch; never lowered by a reset):
 * the part of tg_tape_bytes a step touches, and so what it adds to the
 * process's resident memory. At most tg_tape_bytes. 0 with TG_EINVAL for NULL. */
TG_API size_t tg_tape_high_water(const tg_tape *tape);
/* Caps the bytes the tape's arena may hold (0: no cap, the default). A loop
 * that forgets tg_tape_reset then fails with TG_ENOMEM and a message saying
 * so, instead of growing until the machine runs out of memory. Lowering the
 * cap below what is held already only stops further growth.
 * Errors: TG_EINVAL (NULL tape). */
TG_API tg_status tg_tape_set_limit(tg_tape *tape, size_t bytes);

/* ---- anomaly mode ---- */
/* When on (off by default, for this thread), every op result and every
 * gradient a backward step produces is checked for NaN and infinity; the
 * first one fails the call with TG_ENUMERIC and a message naming the public
 * call, the node and the range of the input values, e.g.
 * "tg_log: produced -nan from input with min -1, max 2 (node [4])".
 * Costs one branch per op when off. Returns the previous setting. */
TG_API bool tg_set_anomaly_mode(bool enabled);
/* Whether anomaly mode is on for this thread. */
TG_API bool tg_anomaly_mode(void);

/* ---- grad mode ---- */
/* Whether ops record on the tape on this thread (true by default). */
TG_API bool tg_grad_enabled(void);
/* Turns recording on or off for this thread; returns the previous setting,
 * so a no-grad scope is:
 *     bool prev = tg_set_grad_enabled(false); ...; tg_set_grad_enabled(prev); */
TG_API bool tg_set_grad_enabled(bool enabled);

/* ---- backward ---- */
/* Flags for tg_backward_ex and tg_grad. */
enum {
    /* Keep the recorded graph so that backward can run over it again. */
    TG_RETAIN_GRAPH = 1u << 0,
    /* Record the backward pass itself on the tape, so that the gradients it
     * returns can be differentiated again (implies TG_RETAIN_GRAPH). */
    TG_CREATE_GRAPH = 1u << 1,
    /* tg_grad: an input the outputs do not depend on gets a zero gradient
     * instead of TG_EINVAL. */
    TG_ALLOW_UNUSED = 1u << 2,
};

/* Backpropagates from a one-element tensor (seed 1) and adds the gradients
 * into .grad of every leaf that requires grad (tg_tensor_grad). The graph is
 * released afterwards: a second backward over it fails with TG_ESTATE.
 * Errors: TG_EINVAL (NULL, loss does not require grad), TG_ESHAPE (not one
 * element), TG_ESTATE (no tape, graph already released). */
TG_API tg_status tg_backward(tg_tensor *loss);
/* The general form: seed (same shape as out; NULL means ones for a
 * one-element out) and flags (TG_RETAIN_GRAPH). .grad values are accumulated
 * numerically; for differentiable gradients use tg_grad with TG_CREATE_GRAPH. */
TG_API tg_status tg_backward_ex(tg_tensor *out, tg_tensor *seed, unsigned flags);

/* The functional gradient, like torch.autograd.grad: grads[i] =
 * d(sum_j <seeds[j], outs[j]>)/d(inputs[i]), as tape-owned tensors; .grad is
 * not touched. seeds may be NULL (each out must then have one element).
 * With TG_CREATE_GRAPH the grads are themselves recorded and differentiable.
 * On failure grads is untouched. */
TG_API tg_status tg_grad(int n_outs, tg_tensor *const *outs, tg_tensor *const *seeds,
                         int n_inputs, tg_tensor *const *inputs, tg_tensor **grads,
                         unsigned flags);

/* ---- explaining a backward pass ---- */
/* While a stream is set, every backward walk (tg_backward, tg_backward_ex,
 * tg_grad) on this tape tells on it what it does, for learners:
 *   - the call and its roots, and the seed each root starts with;
 *   - for each recorded op it visits, "[3] matmul <- [2] sigmoid 1x2, leaf #2 2x1":
 *     where each input came from (a recorded op by id, a leaf that requires
 *     grad, numbered by first use on the tape, or a constant, with shapes),
 *     then the inputs' values, the output, the gradient arriving at the
 *     output ("grad out") and the gradient passed to each input ("grad in[i]");
 *   - when that gradient has the broadcast shape, both shapes and the
 *     gradient after the engine sums it back to the input's shape;
 *   - for a tensor that receives several gradients (used more than once),
 *     each contribution and the running total;
 *   - at the end, the .grad of every leaf reached (tg_backward) or the
 *     gradients tg_grad returns.
 * NULL turns it off. The setting belongs to the tape and persists across
 * tg_tape_reset, so a training loop explains every step until it is turned
 * off. The stream is borrowed and must stay open while it is set. Costs one
 * branch per step when off. A NULL tape is ignored. */
TG_API void tg_tape_explain(tg_tape *tape, FILE *stream);

typedef struct tg_explain_opts {
    int digits; /* decimals of every number shown, 0..17 (default 4) */
} tg_explain_opts;

/* Defaults: 4 digits, as tg_tensor_print shows. */
TG_API tg_explain_opts tg_explain_defaults(void);
/* tg_tape_explain with options (NULL: defaults); replaces earlier options.
 * Errors: TG_EINVAL (NULL tape, digits out of range), leaving the setting
 * as it was. */
TG_API tg_status tg_tape_explain_ex(tg_tape *tape, FILE *stream, const tg_explain_opts *opts);

/* Prints the recorded nodes in order (op, input ids, output shape, value). */
TG_API tg_status tg_tape_print(const tg_tape *tape, FILE *stream);

/* Flags for tg_tape_dot. */
enum {
    /* Show every tensor's value (4 decimals) in its box. */
    TG_DOT_VALUES = 1u << 0,
    /* Show each leaf's accumulated .grad, when it has one. */
    TG_DOT_GRADS = 1u << 1,
};
/* Writes the recorded graph behind roots[0..n_roots) to stream as Graphviz
 * DOT (render with `dot -Tsvg graph.dot -o graph.svg`): a box per recorded
 * op with its id, name and output shape, an ellipse per leaf ("leaf #k",
 * shape, "requires grad", numbered as tg_tape_explain numbers them) and per
 * constant, an arrow from each input to the op using it (labelled with the
 * input's position when the op has several), and the roots drawn with a
 * double border. n_roots == 0 (roots may be NULL) writes the whole tape.
 * flags: TG_DOT_VALUES, TG_DOT_GRADS, or 0. Nothing is recorded; the tape
 * is not changed. Errors: TG_EINVAL (NULL tape or stream, n_roots < 0, NULL
 * roots or roots[i], a root recorded on another tape, unknown flags),
 * TG_ESTATE (a root from before a reset), TG_ENOMEM, TG_EIO (a write to
 * stream failed; what was written is incomplete). */
TG_API tg_status tg_tape_dot(const tg_tape *tape, FILE *stream, int n_roots,
                             tg_tensor *const *roots, unsigned flags);

/* ---- gradient checking ---- */
/* A function of tensors to check: builds its result from inputs with ops
 * (on the current tape) and returns it, or NULL on failure. */
typedef tg_tensor *(*tg_fn)(tg_tensor *const *inputs, int n_inputs, void *ctx);

typedef struct tg_gradcheck_opts {
    double eps;      /* finite-difference step (default 1e-6) */
    double atol;     /* pass when |analytic - numeric| <= atol + rtol*|numeric| */
    double rtol;     /* defaults 1e-5 and 1e-3 */
    int directions;  /* 0: full Jacobian, element by element; k > 0: k random
                        directions (for large inputs) */
    uint64_t seed;   /* for random directions and output weights (default 1) */
} tg_gradcheck_opts;

/* Defaults: eps 1e-6, atol 1e-5, rtol 1e-3, full Jacobian, seed 1. */
TG_API tg_gradcheck_opts tg_gradcheck_defaults(void);

typedef struct tg_gradcheck_report {
    bool passed;
    int worst_input;       /* input holding the worst mismatch (-1 if none) */
    int64_t worst_index;   /* flat element index in it (or direction number) */
    int64_t worst_output;  /* flat output element index (-1 in direction mode) */
    double analytic, numeric; /* the two values there */
    double abs_error;      /* |analytic - numeric| */
    double allowed;        /* atol + rtol*|numeric| */
    int64_t checked;       /* number of values compared */
    char message[256];     /* one line describing the worst case */
} tg_gradcheck_report;

/* Compares the tape's gradients of f against central differences, in
 * float64: inputs (any dtype) are copied to float64 leaves first, so float32
 * code is checked by running it in float64. opts NULL means defaults; report
 * may be NULL. Returns TG_OK when every value is within tolerance, TG_EGRAD
 * when not (message names input, element, analytic and numeric values), or
 * the error f or backward failed with. Uses its own temporary tape; the
 * current tape is restored. */
TG_API tg_status tg_gradcheck(tg_fn f, void *ctx, int n_inputs, tg_tensor *const *inputs,
                              const tg_gradcheck_opts *opts, tg_gradcheck_report *report);
/* The same for second derivatives: checks the gradient of
 * g(x) = d<r, f(x)>/dx (built with TG_CREATE_GRAPH, r random) against central
 * differences of g. */
TG_API tg_status tg_gradgradcheck(tg_fn f, void *ctx, int n_inputs, tg_tensor *const *inputs,
                                  const tg_gradcheck_opts *opts, tg_gradcheck_report *report);

/* ---- forward mode ---- */
/* The Jacobian-vector product J v of f at inputs, by forward mode: f runs
 * once on the current tape, then the nodes it recorded are walked in tape
 * order, each op's tangent rule turning the tangents of its inputs into the
 * tangent of its result (docs/forward-mode.md). f is a tg_fn, as for
 * tg_gradcheck. tangents[i] is the direction for inputs[i] (same dtype and
 * shape), or NULL for an input that is held fixed (a zero tangent; pass NULL
 * for masks and labels). An input given a tangent that does not require grad
 * is handed to f as a tape alias of it that does (so f's ops are recorded);
 * the caller's tensor is not changed. A tensor given twice gets the sum of
 * its tangents. *out (may be NULL) receives f's result and *out_tangent
 * J v, of the same shape; both belong to the current tape. flags: 0 or
 * TG_CREATE_GRAPH, which records the tangent computation too, so that
 * *out_tangent can be differentiated again (reverse-over-forward). Grad mode
 * is on while f runs and restored after.
 * Ops without a tangent rule (a user op gets a fallback: see
 * tg_op_def_user.tangent) fail the call naming the op. Errors: TG_EINVAL
 * (NULL f, inputs, tangents or out_tangent, n_inputs < 1, a NULL inputs[i],
 * unknown flags, f returned NULL without a message; f's own failure is kept
 * otherwise), TG_EDTYPE / TG_ESHAPE (a tangent that does not match its
 * input), TG_ESTATE (no current tape, a stale tensor, an op with no tangent
 * rule), TG_ENOMEM. On failure the outputs are untouched and the tape holds
 * no node of the call. */
TG_API tg_status tg_jvp(tg_fn f, void *ctx, int n_inputs, tg_tensor *const *inputs,
                        tg_tensor *const *tangents, tg_tensor **out, tg_tensor **out_tangent,
                        unsigned flags);
/* The Hessian-vector product H v of a function with a one-element result,
 * by forward-over-reverse: the gradient g(x) = df/dx is built with
 * TG_CREATE_GRAPH and tg_jvp's walk pushes v through it, so hv[i] =
 * sum_j d^2 f / dx_i dx_j v[j] (n_inputs tensors, shaped as the inputs). Every
 * input is differentiated; v[i] NULL means a zero direction for inputs[i].
 * Costs about one forward and two backward passes, like reverse-over-reverse
 * (tg_grad of <g, v>), which it equals to rounding. *out (may be NULL)
 * receives f's result. flags: 0 or TG_CREATE_GRAPH (hv differentiable).
 * Errors as tg_jvp, and TG_ESHAPE when f's result has more than one
 * element. */
TG_API tg_status tg_hvp(tg_fn f, void *ctx, int n_inputs, tg_tensor *const *inputs,
                        tg_tensor *const *v, tg_tensor **out, tg_tensor **hv, unsigned flags);

/* ---- user-defined ops ---- */
/* A user op: forward computes out's values from the inputs' values; backward
 * returns the gradient of each input that needs one, built from tapegrad ops
 * on dout (and the inputs and out), so that it is recorded when a graph of
 * the backward pass is wanted. All tensors passed in are borrowed. */
typedef struct tg_op_def_user {
    const char *name;
    int n_inputs; /* 1..8 */
    /* Output shape from the inputs; NULL means "same shape as input 0". On a
     * bad input return TG_ESHAPE (message set with tg_set_error). */
    tg_status (*shape)(tg_tensor *const *inputs, int *ndim, int64_t *shape, void *ctx);
    /* Fill out (already allocated, same dtype as the inputs). */
    tg_status (*forward)(tg_tensor *out, tg_tensor *const *inputs, void *ctx);
    /* din[i] = gradient for inputs[i], or leave NULL when needs[i] is false.
     * din[i] must have inputs[i]'s shape or broadcast to it. */
    tg_status (*backward)(tg_tensor *const *inputs, tg_tensor *out, tg_tensor *dout,
                          const bool *needs, tg_tensor **din, void *ctx);
    /* Optional, for forward mode (tg_jvp, tg_hvp): *tout = the tangent of out
     * from the inputs' tangents tin[i] (NULL: zero; at least one is not),
     * built from tapegrad ops so that it can be differentiated; its shape
     * must broadcast to out's. When NULL, forward mode falls back to two
     * reverse passes through backward (J v = d<J^T u, v>/du), which is exact
     * but needs backward to be built from ops on dout; a backward that
     * writes its numbers directly fails tg_jvp with a message saying so. */
    tg_status (*tangent)(tg_tensor *const *inputs, tg_tensor *out, tg_tensor *const *tin,
                         tg_tensor **tout, void *ctx);
} tg_op_def_user;

/* Applies a user op: validated like a built-in op (same dtype, non-NULL),
 * recorded on the tape. def and ctx are borrowed and must outlive the tape's
 * next reset. */
TG_API tg_tensor *tg_apply(const tg_op_def_user *def, int n_inputs, tg_tensor *const *inputs,
                           void *ctx);

/* For user ops: records a failure (code, printf message) and returns code. */
TG_API tg_status tg_set_error(tg_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
