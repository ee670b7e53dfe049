/* softmax.c - softmax and log_softmax along one axis, computed with the
 * maximum subtracted, and their fused backward passes. Kernels:
 * kernels/reduce.c. */
#include <math.h>
#include <tgmath.h>

#include "kernels/reduce.h"
#include "ops/ops_internal.h"

typedef struct axis_params {
    int axis;
} axis_params;

#define AXIS(nd) (TG__PARAMS(nd, axis_params)->axis)

static void split(const tg_tensor *x, int axis, int64_t *outer, int64_t *n, int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int d = 0; d < axis; d++)
        *outer *= x->shape[d];
    for (int d = axis + 1; d < x->ndim; d++)
        *inner *= x->shape[d];
    *n = x->ndim ? x->shape[axis] : 1;
}

static tg_status softmax_forward_any(tg_node *nd, int take_log)
{
    const tg_tensor *x = nd->in[0];
    // Empty: nothing to write, and the other dims may be as large as int64
    // allows (no memory backs them), so the group loops must not run.
    if (x->numel == 0)
        return TG_OK;
    int64_t outer, n, inner;
    split(x, AXIS(nd), &outer, &n, &inner);
    if (x->dtype == TG_F32)
        tg__softmax_f32(x->data, nd->out->data, outer, n, inner, take_log);
    else
        tg__softmax_f64(x->data, nd->out->data, outer, n, inner, take_log);
    return TG_OK;
}

/* One pass per group instead of the composed ops' four temporaries, with the
 * same sums in the same order:
 *   softmax:      dx = y (g - sum(g y))
 *   log_softmax:  dx = g - e^y sum(g)                                  */
#define SOFTMAX_GRAD(T, take_log)                                                      \
    do {                                                                               \
        const T *gs = g->data, *ys = y->data;                                          \
        T *dxs = dx->data;                                                             \
        for (int64_t o = 0; o < outer; o++)                                            \
            for (int64_t i = 0; i < inner; i++) {                                      \
                int64_t base = o * n * inner + i;                                      \
                T acc = 0;                                                             \
                for (int64_t k = 0; k < n; k++) {                                      \
                    int64_t at = base + k * inner;                                     \
                    acc += take_log ? gs[at] : gs[at] * ys[at];                        \
                }                                                                      \
                for (int64_t k = 0; k < n; k++) {                                      \
                    int64_t at = base + k * inner;                                     \
                    dxs[at] = take_log ? gs[at] - exp(ys[at]) * acc                    \
                                       : ys[at] * (gs[at] - acc);                      \
                }                                                                      \
            }                                                                          \
    } while (0)

static tg_status fused_any(tg_node *nd, tg_tensor *g, tg_tensor **din, bool take_log)
{
    tg_tensor *y = nd->out;
    tg_tensor *dx = tg__tape_tensor(take_log ? "tg_log_softmax" : "tg_softmax", y->dtype,
                                    y->ndim, y->shape, y->ndim == 0);
    if (!dx)
        return tg_last_status();
    if (y->ndim > 0 && y->numel > 0) { // empty: as in the forward
        int64_t outer, n, inner;
        split(y, AXIS(nd), &outer, &n, &inner);
        if (y->dtype == TG_F32)
            SOFTMAX_GRAD(float, take_log);
        else
            SOFTMAX_GRAD(double, take_log);
    }
    din[0] = dx;
    return TG_OK;
}
static tg_status softmax_fused(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    return fused_any(nd, g, din, false);
}
static tg_status log_softmax_fused(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    return fused_any(nd, g, din, true);
}

static tg_status softmax_forward(tg_node *nd) { return softmax_forward_any(nd, 0); }
static tg_status softmax_backward(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    // dx = y * (g - sum(g * y)) along the axis; a 0-dim softmax is the
    // constant 1, so its gradient is 0.
    int axis = AXIS(nd);
    tg_tensor *y = nd->out;
    if (y->ndim == 0)
        din[0] = tg_mul_scalar(g, 0.0);
    else
        din[0] = tg_mul(y, tg_sub(g, tg_sum(tg_mul(g, y), &axis, 1, true)));
    return din[0] ? TG_OK : tg_last_status();
}
/* The Jacobian diag(y) - y y^T is symmetric, so the tangent is the backward
 * rule at g = t: y (t - sum(t y)). */
const tg_op_def tg__def_softmax = {TG__OP_NAME(softmax), .n_in = 1, .differentiable = true,
                                   .params_size = sizeof(axis_params), .shape = tg__shape_same,
                                   .forward = softmax_forward, .backward = softmax_backward,
                                   .fused_backward = softmax_fused,
                                   .tangent = tg__tangent_symmetric};

static tg_status log_softmax_forward(tg_node *nd) { return softmax_forward_any(nd, 1); }
static tg_status log_softmax_backward(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    // dx = g - softmax(x) * sum(g) along the axis, softmax(x) = e^y; a 0-dim
    // log_softmax is the constant 0.
    int axis = AXIS(nd);
    if (nd->out->ndim == 0)
        din[0] = tg_mul_scalar(g, 0.0);
    else
        din[0] = tg_sub(g, tg_mul(tg_exp(nd->out), tg_sum(g, &axis, 1, true)));
    return din[0] ? TG_OK : tg_last_status();
}
/* The Jacobian I - 1 softmax^T is not symmetric: t - sum(e^y t), where the
 * backward has g - e^y sum(g). */
static tg_status log_softmax_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    int axis = AXIS(nd);
    tg_tensor *t = tin[0];
    if (nd->out->ndim == 0)
        return tg__tangent_is(tout, tg_mul_scalar(t, 0.0));
    return tg__tangent_is(tout, tg_sub(t, tg_sum(tg_mul(tg_exp(nd->out), t), &axis, 1, true)));
}
const tg_op_def tg__def_log_softmax = {TG__OP_NAME(log_softmax), .n_in = 1, .differentiable = true,
                                       .params_size = sizeof(axis_params), .shape = tg__shape_same,
                                       .forward = log_softmax_forward,
                                       .backward = log_softmax_backward,
                                       .fused_backward = log_softmax_fused,
                                       .tangent = log_softmax_tangent};

static tg_tensor *normalise(const tg_op_def *def, const char *fn, tg_tensor *x, int axis)
{
    if (tg__bad_input(fn, x, 0))
        return NULL;
    int a = 0; // a 0-dim tensor takes axis 0 or -1, as in numpy
    if (tg__norm_axis(fn, axis, x->ndim, &a) != TG_OK)
        return NULL;
    axis_params p = {a};
    return tg__apply(def, 1, &x, &p);
}

tg_tensor *tg_softmax(tg_tensor *x, int axis)
{
    return normalise(&tg__def_softmax, "tg_softmax", x, axis);
}

tg_tensor *tg_log_softmax(tg_tensor *x, int axis)
{
    return normalise(&tg__def_log_softmax, "tg_log_softmax", x, axis);
}
