/* unary.c - one-input elementwise ops. The rows of TG_UNARY_OPS
 * (include/tapegrad/unary.h) expand here into everything an op needs: its
 * kernels, entry and public builder. The ops with parameters (leaky_relu,
 * clamp) or without a gradient (sign) are written out below and use the
 * kernels of kernels/pointwise.c. */
#include <math.h>
#include <tgmath.h>

#include "kernels/pointwise.h"
#include "ops/ops_internal.h"
#include "thread/pool.h"

/* ---- generated from the rows ---- */

/* The forward and fused-backward loops of one row, for element type T. The
 * (void) casts let a row's expression ignore x or y. */
#define UNARY_KERNELS(ELEM, sfx, name, FWD, FUSED)                                     \
    static void name##_forward_##sfx(const ELEM *xs, ELEM *ys, int64_t n)              \
    {                                                                                  \
        typedef ELEM T; /* the rows' expressions name the element type T */            \
        for (int64_t i = 0; i < n; i++) {                                              \
            T x = xs[i];                                                               \
            ys[i] = (T)(FWD);                                                          \
        }                                                                              \
    }                                                                                  \
    static void name##_fused_##sfx(const ELEM *gs, const ELEM *xs, const ELEM *ys,     \
                                   ELEM *out, int64_t n)                               \
    {                                                                                  \
        typedef ELEM T;                                                                \
        for (int64_t i = 0; i < n; i++) {                                              \
            T g = gs[i], x = xs[i], y = ys[i];                                         \
            (void)g, (void)x, (void)y;                                                 \
            out[i] = (T)(FUSED);                                                       \
        }                                                                              \
    }

/* Rows whose float32 forward has an array kernel of its own, with the bits of
 * the row's expression (tanh: kernels/tanh.c, vectorised by cpuid): runs it
 * and is true for those rows; false (folded away) for the others. */
#define UNARY_ARRAY_F32(name, xs, ys, n)                                               \
    (__builtin_strcmp(#name, "tanh") == 0 ? (tg__tanh_f32(xs, ys, n), true) : false)

#define UNARY_ROW(name, formula, derivative, FWD, FUSED, BACKWARD, lo, hi)             \
    UNARY_KERNELS(float, f32, name, FWD, FUSED)                                        \
    UNARY_KERNELS(double, f64, name, FWD, FUSED)                                       \
    static void name##_forward_task(void *ctx, int64_t t, void *ws)                    \
    {                                                                                  \
        const map_job *j = ctx;                                                        \
        int64_t i0 = t * j->chunk, n = j->n - i0 < j->chunk ? j->n - i0 : j->chunk;    \
        if (j->f64)                                                                    \
            name##_forward_f64((const double *)j->x + i0, (double *)j->y + i0, n);     \
        else if (!UNARY_ARRAY_F32(name, (const float *)j->x + i0, (float *)j->y + i0, n)) \
            name##_forward_f32((const float *)j->x + i0, (float *)j->y + i0, n);       \
    }                                                                                  \
    static tg_status name##_forward(tg_node *nd)                                       \
    {                                                                                  \
        const tg_tensor *x = nd->in[0];                                                \
        map_run(name##_forward_task, x->data, nd->out->data, x->numel,                 \
                x->dtype == TG_F64);                                                   \
        return TG_OK;                                                                  \
    }                                                                                  \
    static tg_status name##_backward(tg_node *nd, tg_tensor *g, tg_tensor **din)       \
    {                                                                                  \
        tg_tensor *x = nd->in[0], *y = nd->out;                                        \
        (void)x, (void)y;                                                              \
        return result(din, (BACKWARD));                                                \
    }                                                                                  \
    static tg_status name##_fused(tg_node *nd, tg_tensor *g, tg_tensor **din)          \
    {                                                                                  \
        tg_tensor *x = nd->in[0], *y = nd->out;                                        \
        tg_tensor *dx = tg__tape_tensor("tg_" #name, x->dtype, x->ndim, x->shape, false);    \
        if (!dx)                                                                       \
            return tg_last_status();                                                   \
        if (x->dtype == TG_F32)                                                        \
            name##_fused_f32(g->data, x->data, y->data, dx->data, x->numel);           \
        else                                                                           \
            name##_fused_f64(g->data, x->data, y->data, dx->data, x->numel);           \
        din[0] = dx;                                                                   \
        return TG_OK;                                                                  \
    }                                                                                  \
    /* Elementwise, so the Jacobian is diagonal: J t is the composed backward   \
     * rule with g = t. */                                                         \
    static tg_status name##_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout) \
    {                                                                                  \
        tg_tensor *g = tin[0], *x = nd->in[0], *y = nd->out;                           \
        (void)g, (void)x, (void)y;                                                     \
        return result(tout, (BACKWARD));                                               \
    }                                                                                  \
    const tg_op_def tg__def_##name = {TG__OP_NAME(name), .n_in = 1,                    \
                                      .differentiable = true,                         \
                                      .shape = tg__shape_same,                         \
                                      .forward = name##_forward,                       \
                                      .backward = name##_backward,                     \
                                      .fused_backward = name##_fused,                  \
                                      .tangent = name##_tangent};                      \
    tg_tensor *tg_##name(tg_tensor *x) { return tg__apply(&tg__def_##name, 1, &x, NULL); }

/* Large maps run on the kernels' threads, in chunks that do not depend on
 * the thread count (each element's arithmetic is the same either way). */
typedef struct map_job {
    const void *x;
    void *y;
    int64_t n, chunk;
    bool f64;
} map_job;

static void map_run(tg__task_fn task, const void *x, void *y, int64_t n, bool f64)
{
    map_job j = {x, y, n, n > 0 ? n : 1, f64};
    // About 20 multiply-adds an element: most rows call libm.
    int nt = tg__threads_for(20.0 * (double)n);
    if (nt > 1)
        j.chunk = ((n + 2 * nt - 1) / (2 * nt) + 15) / 16 * 16;
    if (nt <= 1 || j.chunk >= n)
        task(&j, 0, NULL);
    else
        tg__parallel_for((n + j.chunk - 1) / j.chunk, 0, task, &j);
}

static tg_status result(tg_tensor **din, tg_tensor *g)
{
    din[0] = g;
    return g ? TG_OK : tg_last_status();
}

TG_UNARY_OPS(UNARY_ROW)

/* ---- written out: parameters, or no gradient ---- */

tg_status tg__map_forward(tg_node *nd, int op)
{
    const tg_tensor *x = nd->in[0];
    const tg__scalar_params *p = TG__PARAMS(nd, tg__scalar_params);
    double a = p ? p->a : 0, b = p ? p->b : 0;
    if (x->dtype == TG_F32)
        tg__unary_f32(op, x->data, nd->out->data, x->numel, a, b);
    else
        tg__unary_f64(op, x->data, nd->out->data, x->numel, a, b);
    return TG_OK;
}

static tg_tensor *with_params(const tg_op_def *def, tg_tensor *x, double a, double b)
{
    tg__scalar_params p = {a, b};
    return tg__apply(def, 1, &x, &p);
}

/* sign: piecewise constant, so not differentiable (never recorded). */
static tg_status sign_forward(tg_node *nd) { return tg__map_forward(nd, TG__UN_SIGN); }
static tg_status sign_backward(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    return tg__fail(TG_ESTATE, "tg_sign has no gradient");
}
const tg_op_def tg__def_sign = {TG__OP_NAME(sign), .n_in = 1, .shape = tg__shape_same,
                                .forward = sign_forward, .backward = sign_backward};

/* d(leaky_relu x) = g (x > 0 ? 1 : slope) = g (slope + (1 - slope)[x > 0]) */
static tg_status leaky_relu_forward(tg_node *nd) { return tg__map_forward(nd, TG__UN_LEAKY_RELU); }
static tg_status leaky_relu_backward(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    double slope = TG__PARAMS(nd, tg__scalar_params)->a;
    tg_tensor *scale = tg_add_scalar(tg_mul_scalar(tg_gt_scalar(nd->in[0], 0.0), 1.0 - slope),
                                     slope);
    return result(din, tg_mul(g, scale));
}
const tg_op_def tg__def_leaky_relu = {TG__OP_NAME(leaky_relu), .n_in = 1,
                                      .differentiable = true,
                                      .params_size = sizeof(tg__scalar_params),
                                      .shape = tg__shape_same, .forward = leaky_relu_forward,
                                      .backward = leaky_relu_backward,
                                      .tangent = tg__tangent_symmetric};

/* d(clamp x) = g [lo <= x <= hi] */
static tg_status clamp_forward(tg_node *nd) { return tg__map_forward(nd, TG__UN_CLAMP); }
static tg_status clamp_backward(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    tg_tensor *x = nd->in[0];
    const tg__scalar_params *p = TG__PARAMS(nd, tg__scalar_params);
    tg_tensor *inside = tg_mul(tg_ge(x, tg_scalar(x->dtype, p->a)),
                               tg_le(x, tg_scalar(x->dtype, p->b)));
    return result(din, tg_mul(g, inside));
}
const tg_op_def tg__def_clamp = {TG__OP_NAME(clamp), .n_in = 1, .differentiable = true,
                                 .params_size = sizeof(tg__scalar_params),
                                 .shape = tg__shape_same, .forward = clamp_forward,
                                 .backward = clamp_backward, .tangent = tg__tangent_symmetric};

tg_tensor *tg_sign(tg_tensor *x) { return tg__apply(&tg__def_sign, 1, &x, NULL); }

tg_tensor *tg_leaky_relu(tg_tensor *x, double slope)
{
    if (!isfinite(slope))
        return tg__fail_null(TG_EINVAL, "tg_leaky_relu: slope %g is not finite", slope);
    return with_params(&tg__def_leaky_relu, x, slope, 0);
}

tg_tensor *tg_clamp(tg_tensor *x, double lo, double hi)
{
    if (!(lo <= hi))
        return tg__fail_null(TG_EINVAL, "tg_clamp: need lo <= hi (got %g, %g)", lo, hi);
    return with_params(&tg__def_clamp, x, lo, hi);
}
