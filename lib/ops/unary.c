/* unary.c - one-input elementwise ops: neg, exp, log, sqrt, abs, sign, tanh,
 * sigmoid, relu, leaky_relu, softplus, clamp, copy. Kernels: kernels/pointwise.c.
 * Where the derivative is a function of the output (exp, sqrt, tanh,
 * sigmoid), backward uses the saved output instead of recomputing. */
#include <math.h>

#include "kernels/pointwise.h"
#include "ops/ops_internal.h"

tg_status tg__map_forward(tg_node *nd, int op)
{
    const tg_tensor *x = nd->in[0];
    if (x->dtype == TG_F32)
        tg__unary_f32(op, x->data, nd->out->data, x->numel, nd->p.f[0], nd->p.f[1]);
    else
        tg__unary_f64(op, x->data, nd->out->data, x->numel, nd->p.f[0], nd->p.f[1]);
    return TG_OK;
}

static tg_tensor *unary(int op, tg_tensor *x, double a, double b)
{
    tg_op_params p = {.f = {a, b}};
    return tg__apply(op, 1, &x, &p);
}

/* The fast path of a backward step when no graph of it is wanted: one pass
 * of a fused kernel (g, b same shape) instead of the composed ops. With
 * TG_CREATE_GRAPH the composed form runs, so it can be differentiated again;
 * check_ops compares the two on every op. */
static tg_tensor *fused(const char *fn, tg__binop op, tg_tensor *g, tg_tensor *b)
{
    tg_tensor *out = tg__tape_tensor(fn, g->dtype, g->ndim, g->shape, false);
    if (!out)
        return NULL;
    tg__bcast plan;
    const int64_t *shapes[2] = {g->shape, b->shape};
    tg__bcast_plan(&plan, g->ndim, g->shape, 2, (const int[]){g->ndim, b->ndim}, shapes);
    if (g->dtype == TG_F32)
        tg__binary_f32(op, &plan, g->data, b->data, out->data);
    else
        tg__binary_f64(op, &plan, g->data, b->data, out->data);
    return out;
}

static tg_status result(tg_tensor **din, tg_tensor *g)
{
    din[0] = g;
    return g ? TG_OK : tg_last_status();
}

/* DEFINE_UNARY(name, KERNEL_OP, backward expression in x, y (output), g (dout)) */
#define DEFINE_UNARY(name, ID, KOP, GRAD)                                           \
    static tg_status name##_forward(tg_node *nd) { return tg__map_forward(nd, KOP); }  \
    static tg_status name##_backward(tg_node *nd, tg_tensor *g, tg_tensor **din)   \
    {                                                                              \
        tg_tensor *x = nd->in[0], *y = nd->out;                                    \
        (void)x;                                                                   \
        (void)y;                                                                   \
        return result(din, GRAD);                                                  \
    }                                                                              \
    const tg_op_def tg__def_##name = {#name, 1, true, false, tg__shape_same,        \
                                      name##_forward, name##_backward};

/* d(-x) = -g */
DEFINE_UNARY(neg, NEG, TG__UN_NEG, tg_mul_scalar(g, -1.0))
/* d(e^x) = g e^x = g y */
DEFINE_UNARY(exp, EXP, TG__UN_EXP, tg_mul(g, y))
/* d(ln x) = g / x */
DEFINE_UNARY(log, LOG, TG__UN_LOG, tg_div(g, x))
/* d(sqrt x) = g / (2 sqrt x) = 0.5 g / y */
DEFINE_UNARY(sqrt, SQRT, TG__UN_SQRT, tg_div(tg_mul_scalar(g, 0.5), y))
/* d|x| = g sign(x) (0 at 0) */
DEFINE_UNARY(abs, ABS, TG__UN_ABS, tg_mul(g, tg_sign(x)))
/* d(tanh x) = g (1 - y^2) */
DEFINE_UNARY(tanh, TANH, TG__UN_TANH,
             tg_grad_enabled() ? tg_mul(g, tg_rsub_scalar(tg_mul(y, y), 1.0))
                               : fused("tg_tanh", TG__BIN_TANH_GRAD, g, y))
/* d(sigmoid x) = g y (1 - y) */
DEFINE_UNARY(sigmoid, SIGMOID, TG__UN_SIGMOID,
             tg_grad_enabled() ? tg_mul(g, tg_mul(y, tg_rsub_scalar(y, 1.0)))
                               : fused("tg_sigmoid", TG__BIN_SIGMOID_GRAD, g, y))
/* d(relu x) = g [x > 0] */
DEFINE_UNARY(relu, RELU, TG__UN_RELU,
             tg_grad_enabled() ? tg_mul(g, tg_gt_scalar(x, 0.0))
                               : fused("tg_relu", TG__BIN_RELU_GRAD, g, x))
/* d(softplus x) = g sigmoid(x) */
DEFINE_UNARY(softplus, SOFTPLUS, TG__UN_SOFTPLUS, tg_mul(g, tg_sigmoid(x)))
/* d(copy x) = g */
DEFINE_UNARY(copy, COPY, TG__UN_COPY, g)

/* sign: piecewise constant, so not differentiable (never recorded). */
static tg_status sign_forward(tg_node *nd) { return tg__map_forward(nd, TG__UN_SIGN); }
static tg_status sign_backward(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    return tg__fail(TG_ESTATE, "tg_sign has no gradient");
}
const tg_op_def tg__def_sign = {"sign", 1, false, false, tg__shape_same, sign_forward,
                                sign_backward};

/* d(leaky_relu x) = g (x > 0 ? 1 : slope) = g (slope + (1 - slope)[x > 0]) */
static tg_status leaky_relu_forward(tg_node *nd) { return tg__map_forward(nd, TG__UN_LEAKY_RELU); }
static tg_status leaky_relu_backward(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    double slope = nd->p.f[0];
    tg_tensor *scale = tg_add_scalar(tg_mul_scalar(tg_gt_scalar(nd->in[0], 0.0), 1.0 - slope),
                                     slope);
    return result(din, tg_mul(g, scale));
}
const tg_op_def tg__def_leaky_relu = {"leaky_relu", 1, true, false, tg__shape_same,
                                      leaky_relu_forward, leaky_relu_backward};

/* d(clamp x) = g [lo <= x <= hi] */
static tg_status clamp_forward(tg_node *nd) { return tg__map_forward(nd, TG__UN_CLAMP); }
static tg_status clamp_backward(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    tg_tensor *x = nd->in[0];
    tg_tensor *inside = tg_mul(tg_ge(x, tg_scalar(x->dtype, nd->p.f[0])),
                               tg_le(x, tg_scalar(x->dtype, nd->p.f[1])));
    return result(din, tg_mul(g, inside));
}
const tg_op_def tg__def_clamp = {"clamp", 1, true, false, tg__shape_same, clamp_forward,
                                 clamp_backward};

tg_tensor *tg_neg(tg_tensor *x) { return unary(TG_OP_NEG, x, 0, 0); }
tg_tensor *tg_exp(tg_tensor *x) { return unary(TG_OP_EXP, x, 0, 0); }
tg_tensor *tg_log(tg_tensor *x) { return unary(TG_OP_LOG, x, 0, 0); }
tg_tensor *tg_sqrt(tg_tensor *x) { return unary(TG_OP_SQRT, x, 0, 0); }
tg_tensor *tg_abs(tg_tensor *x) { return unary(TG_OP_ABS, x, 0, 0); }
tg_tensor *tg_sign(tg_tensor *x) { return unary(TG_OP_SIGN, x, 0, 0); }
tg_tensor *tg_tanh(tg_tensor *x) { return unary(TG_OP_TANH, x, 0, 0); }
tg_tensor *tg_sigmoid(tg_tensor *x) { return unary(TG_OP_SIGMOID, x, 0, 0); }
tg_tensor *tg_relu(tg_tensor *x) { return unary(TG_OP_RELU, x, 0, 0); }
tg_tensor *tg_softplus(tg_tensor *x) { return unary(TG_OP_SOFTPLUS, x, 0, 0); }
tg_tensor *tg_copy(tg_tensor *x) { return unary(TG_OP_COPY, x, 0, 0); }

tg_tensor *tg_leaky_relu(tg_tensor *x, double slope)
{
    if (!isfinite(slope))
        return tg__fail_null(TG_EINVAL, "tg_leaky_relu: slope %g is not finite", slope);
    return unary(TG_OP_LEAKY_RELU, x, slope, 0);
}

tg_tensor *tg_clamp(tg_tensor *x, double lo, double hi)
{
    if (!(lo <= hi))
        return tg__fail_null(TG_EINVAL, "tg_clamp: need lo <= hi (got %g, %g)", lo, hi);
    return unary(TG_OP_CLAMP, x, lo, hi);
}
