/* ops_internal.h - what the op families in lib/ops share: the entries they
 * define (one `const tg_op_def tg__def_<name>` each, see tape_internal.h for
 * the interface), the registry that lists them for tests and docs, the shape
 * rules several ops share, and the internal index ops.
 *
 * The row-defined elementwise ops are not written here: each is one row of
 * TG_UNARY_OPS (include/tapegrad/unary.h) or TG_BINARY_OPS (binary.h), which
 * generates its entry, kernels, fused backward, public builder, gradient-check
 * row, error row and docs row (unary.c and binary.c expand them;
 * docs/hacking.md walks through adding one). */
#ifndef TG_OPS_INTERNAL_H
#define TG_OPS_INTERNAL_H

#include "autograd/tape_internal.h"

/* Designated-initialiser head of an entry: .name and .fn from one token. */
#define TG__OP_NAME(op) .name = #op, .fn = "tg_" #op

/* The hand-written entries (every op that is not a TG_UNARY_OPS row). */
#define TG_OP_ENTRIES(X)                                                         \
    X(add) X(sub) X(mul) X(div) X(pow) X(maximum) X(minimum) X(where) X(compare) \
    X(add_scalar) X(mul_scalar) X(pow_scalar) X(sign) X(leaky_relu) X(clamp)    \
    X(sum) X(mean) X(max) X(min) X(prod) X(logsumexp) X(cumsum) X(matmul)      \
    X(reshape) X(permute) X(expand) X(slice) X(slice_grad) X(concat) X(take)    \
    X(put_add) X(softmax) X(log_softmax) X(conv2d) X(conv2d_dx) X(conv2d_dw)    \
    X(conv2d_relu) X(conv2d_relu_max_pool2d) X(linear) X(linear_relu)          \
    X(max_pool2d) X(avg_pool2d) X(avg_pool2d_grad) X(cross_entropy)             \
    X(layer_norm) X(scaled_dot_product_attention) X(user)

#define TG__OP_EXTERN(name) extern const tg_op_def tg__def_##name;
TG_OP_ENTRIES(TG__OP_EXTERN)
#define TG__UNARY_EXTERN(name, ...) extern const tg_op_def tg__def_##name;
TG_UNARY_OPS(TG__UNARY_EXTERN)
TG_BINARY_OPS(TG__UNARY_EXTERN)
#undef TG__OP_EXTERN
#undef TG__UNARY_EXTERN

/* Every entry, NULL-terminated: for tests (each op needs a gradient-check
 * case) and generated docs. The engine never indexes it. */
extern const tg_op_def *const tg__op_registry[];

/* ---- tangent rules (forward mode, see tg_op_def.tangent) ---- */
/* Adds one input's term to a tangent that sums a term per input: *acc is
 * term when it is still NULL, else acc + term. term NULL means the op that
 * built it failed: its status is returned. */
tg_status tg__tangent_acc(tg_tensor **acc, tg_tensor *term);
/* The tangent rule of a one-input op whose Jacobian is symmetric (diagonal
 * for an elementwise op; softmax's diag(y) - y y^T): J t = J^T t, the op's
 * own composed backward rule at dout = t. */
tg_status tg__tangent_symmetric(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout);
/* *tout = t, or the failure of the op that should have built it. */
static inline tg_status tg__tangent_is(tg_tensor **tout, tg_tensor *t)
{
    *tout = t;
    return t ? TG_OK : tg_last_status();
}

/* ---- shared shape rules (op_table.c) ---- */
/* numpy broadcasting of n input shapes into (ndim, shape). */
tg_status tg__shape_broadcast(const char *fn, tg_tensor *const *in, int n_in,
                              const void *params, int *ndim, int64_t *shape);
tg_status tg__shape_same(const char *fn, tg_tensor *const *in, int n_in, const void *params,
                         int *ndim, int64_t *shape);
/* The output shape stored at the start of the parameters (tg__shape_params). */
typedef struct tg__shape_params {
    int ndim;
    int64_t shape[TG_MAX_DIMS];
} tg__shape_params;
tg_status tg__shape_given(const char *fn, tg_tensor *const *in, int n_in, const void *params,
                          int *ndim, int64_t *shape);
/* Normalises a possibly negative axis for a tensor of ndim dims; records a
 * TG_EINVAL naming fn when out of range. */
tg_status tg__norm_axis(const char *fn, int axis, int ndim, int *out);

/* Internal index ops (shape.c). idx must live in the tape's arena (it is kept
 * by the node). take: out (ndim, shape) with out[k] = x[idx[k]], n == numel.
 * put_add: zeros (ndim, shape) with out[idx[k]] += src[k], n == src numel. */
tg_tensor *tg__take(tg_tensor *x, int64_t n, const int64_t *idx, int ndim, const int64_t *shape);
tg_tensor *tg__put_add(tg_tensor *src, int64_t n, const int64_t *idx, int ndim,
                       const int64_t *shape);

/* Parameters of the one-input ops with up to two scalars (leaky_relu, clamp,
 * the scalar ops) and their forward: kernel map `op` (a tg__unop). */
typedef struct tg__scalar_params {
    double a, b;
} tg__scalar_params;
tg_status tg__map_forward(tg_node *nd, int op);

/* The fused ops of the nn layers (conv.c, matmul.c): one pass where the
 * composition takes two or three, the composition's bytes in float32, and a
 * backward built from the composition's own ops (any order of derivative).
 *   tg__conv2d_relu(x, w, b, g)  = tg_relu(tg_conv2d(x, w, b, g))
 *   tg__linear(x, w, b, relu)    = x @ w + b, then tg_relu when relu;
 *                                  x (N, in), w (in, out), b (out) or NULL
 * Errors name tg_conv2d and tg_matmul. */
tg_tensor *tg__conv2d_relu(tg_tensor *x, tg_tensor *w, tg_tensor *bias,
                           const tg_conv2d_geom *geom);
tg_tensor *tg__linear(tg_tensor *x, tg_tensor *w, tg_tensor *bias, bool relu);
/* And a Conv2D with ReLU followed by MaxPool2D (conv_pool.c):
 *   tg__conv2d_relu_max_pool2d(x, w, b, c, p)
 *       = tg_max_pool2d(tg__conv2d_relu(x, w, b, c), p)
 * the composition's bytes in float32 (forward and both backwards). Errors
 * name tg_conv2d and tg_max_pool2d. */
tg_tensor *tg__conv2d_relu_max_pool2d(tg_tensor *x, tg_tensor *w, tg_tensor *bias,
                                      const tg_conv2d_geom *conv, const tg_pool2d_geom *pool);

/* Sliding-window geometry shared by conv2d, the pools and the nn layers'
 * shape inference (geometry.c): the pads before and after one axis for a
 * padding mode (TF's "same": out = ceil(in / stride), the odd pad last), and
 * the output size, -1 when the window does not fit. */
void tg__window_pads(tg_padding mode, int64_t in, int64_t k, int64_t stride, int64_t dilation,
                     int64_t explicit_lo, int64_t explicit_hi, int64_t *lo, int64_t *hi);
int64_t tg__window_out(int64_t in, int64_t k, int64_t stride, int64_t dilation, int64_t lo,
                       int64_t hi);

#endif
