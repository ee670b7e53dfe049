/* ops_internal.h - the op table: one entry per op, split into shape, forward
 * and backward. Each family file (elementwise.c, reduce.c, ...) defines the
 * entries of its ops as `const tg_op_def tg__def_<name>`; op_table.c gathers
 * them by id.
 *
 * backward builds each input's gradient from tapegrad ops on dout, so it is
 * recorded (and differentiable again) when the engine runs it with grad mode
 * on. It may return a gradient of the broadcast shape; the engine sums it back
 * to the input's shape and accumulates over several uses of one tensor. */
#ifndef TG_OPS_INTERNAL_H
#define TG_OPS_INTERNAL_H

#include "autograd/tape_internal.h"

/* X(ID, name): every op, in no particular order. */
#define TG_OP_LIST(X)                                                           \
    X(ADD, add) X(SUB, sub) X(MUL, mul) X(DIV, div) X(POW, pow)                 \
    X(MAXIMUM, maximum) X(MINIMUM, minimum) X(WHERE, where) X(COMPARE, compare) \
    X(ADD_SCALAR, add_scalar) X(MUL_SCALAR, mul_scalar)                         \
    X(POW_SCALAR, pow_scalar)                                                   \
    X(NEG, neg) X(EXP, exp) X(LOG, log) X(SQRT, sqrt) X(ABS, abs) X(SIGN, sign) \
    X(TANH, tanh) X(SIGMOID, sigmoid) X(RELU, relu) X(LEAKY_RELU, leaky_relu)   \
    X(SOFTPLUS, softplus) X(CLAMP, clamp) X(COPY, copy)                         \
    X(SUM, sum) X(MAX, max) X(LOGSUMEXP, logsumexp)                             \
    X(MATMUL, matmul)                                                           \
    X(RESHAPE, reshape) X(PERMUTE, permute) X(EXPAND, expand) X(SLICE, slice)      \
    X(SLICE_GRAD, slice_grad)       \
    X(CONCAT, concat) X(TAKE, take) X(PUT_ADD, put_add)                         \
    X(SOFTMAX, softmax) X(LOG_SOFTMAX, log_softmax)                             \
    X(CONV2D, conv2d) X(CONV2D_DX, conv2d_dx) X(CONV2D_DW, conv2d_dw)                 \
    X(MAX_POOL2D, max_pool2d) X(AVG_POOL2D, avg_pool2d)                               \
    X(AVG_POOL2D_GRAD, avg_pool2d_grad) X(CROSS_ENTROPY, cross_entropy)               \
    X(USER, user)

typedef enum tg_op_id {
#define TG__OP_ENUM(ID, name) TG_OP_##ID,
    TG_OP_LIST(TG__OP_ENUM)
#undef TG__OP_ENUM
    TG_OP_COUNT
} tg_op_id;

typedef struct tg_op_def {
    const char *name;   /* public name without "tg_", used in messages */
    int n_in;           /* number of inputs; -1 for any number (concat) */
    bool differentiable;/* false: the result never requires grad */
    bool view;          /* the result shares input 0's storage: no data is allocated */
    /* Validates the inputs and parameters and writes the output shape. On
     * failure records a message starting with "tg_<name>:". */
    tg_status (*shape)(const char *fn, tg_tensor *const *in, int n_in, const tg_op_params *p,
                       int *ndim, int64_t *shape);
    /* Computes nd->out's values from nd->in (for views: sets nd->out->data).
     * May allocate nd->saved or index arrays on the tape. */
    tg_status (*forward)(tg_node *nd);
    /* din[i] for every input with tg__needs_grad(nd, i); built from ops. */
    tg_status (*backward)(tg_node *nd, tg_tensor *dout, tg_tensor **din);
} tg_op_def;

#define TG__OP_EXTERN(ID, name) extern const tg_op_def tg__def_##name;
TG_OP_LIST(TG__OP_EXTERN)
#undef TG__OP_EXTERN

extern const tg_op_def *const tg__ops[TG_OP_COUNT];

/* ---- shared shape rules (op_table.c) ---- */
/* numpy broadcasting of n input shapes into (ndim, shape). */
tg_status tg__shape_broadcast(const char *fn, tg_tensor *const *in, int n_in,
                              const tg_op_params *p, int *ndim, int64_t *shape);
tg_status tg__shape_same(const char *fn, tg_tensor *const *in, int n_in, const tg_op_params *p,
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

/* Forward of a one-input elementwise op: kernel map `op` (a tg__unop) with
 * parameters p.f[0], p.f[1] (unary.c). */
tg_status tg__map_forward(tg_node *nd, int op);

/* The message prefix for op id: "tg_add". */
const char *tg__op_fn(int op);

#endif
