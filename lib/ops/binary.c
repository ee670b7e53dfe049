/* binary.c - the two-input elementwise ops of TG_BINARY_OPS
 * (include/tapegrad/binary.h), generated from their rows: kernels that walk
 * numpy-broadcast operands, the entry, the fused and composed backward, the
 * public builder. */
#include <math.h>
#include <tgmath.h>

#include "kernels/pointwise.h"
#include "ops/ops_internal.h"

/* Visits every element i of the contiguous output with the offsets oa, ob of
 * the two broadcast operands (plan strides), innermost dimension fastest. */
#define BROADCAST_WALK(plan, ...)                                                      \
    do {                                                                               \
        int nd_ = (plan)->ndim;                                                        \
        int64_t n_ = 1, idx_[TG__KMAX_DIMS] = {0}, oa = 0, ob = 0;                      \
        for (int d_ = 0; d_ < nd_; d_++)                                               \
            n_ *= (plan)->shape[d_];                                                   \
        for (int64_t i = 0; i < n_; i++) {                                             \
            __VA_ARGS__;                                                                    \
            for (int d_ = nd_ - 1; d_ >= 0; d_--) {                                    \
                oa += (plan)->strides[0][d_];                                          \
                ob += (plan)->strides[1][d_];                                          \
                if (++idx_[d_] < (plan)->shape[d_])                                    \
                    break;                                                             \
                oa -= (plan)->strides[0][d_] * (plan)->shape[d_];                      \
                ob -= (plan)->strides[1][d_] * (plan)->shape[d_];                      \
                idx_[d_] = 0;                                                          \
            }                                                                          \
        }                                                                              \
    } while (0)

static void plan_for(tg__bcast *plan, const tg_tensor *a, const tg_tensor *b,
                     const tg_tensor *out)
{
    const int64_t *shapes[2] = {a->shape, b->shape};
    tg__bcast_plan(plan, out->ndim, out->shape, 2, (const int[]){a->ndim, b->ndim}, shapes);
}

#define BINARY_KERNELS(ELEM, sfx, name, FWD, FUSED_A, FUSED_B)                         \
    static void name##_forward_##sfx(const tg__bcast *plan, const ELEM *as,            \
                                     const ELEM *bs, ELEM *ys)                         \
    {                                                                                  \
        typedef ELEM T; /* the rows' expressions name the element type T */            \
        BROADCAST_WALK(plan, {                                                         \
            T a = as[oa], b = bs[ob];                                                  \
            ys[i] = (T)(FWD);                                                          \
        });                                                                            \
    }                                                                                  \
    static void name##_fused_##sfx(const tg__bcast *plan, const ELEM *gs, const ELEM *as, \
                                   const ELEM *bs, const ELEM *ys, ELEM *da, ELEM *db) \
    {                                                                                  \
        typedef ELEM T;                                                                \
        BROADCAST_WALK(plan, {                                                         \
            T g = gs[i], a = as[oa], b = bs[ob], y = ys[i];                            \
            (void)g, (void)a, (void)b, (void)y;                                        \
            if (da)                                                                    \
                da[i] = (T)(FUSED_A);                                                  \
            if (db)                                                                    \
                db[i] = (T)(FUSED_B);                                                  \
        });                                                                            \
    }

#define BINARY_ROW(name, formula, da_doc, db_doc, FWD, FUSED_A, FUSED_B, BACKWARD_A,   \
                   BACKWARD_B, lo, hi)                                                 \
    BINARY_KERNELS(float, f32, name, FWD, FUSED_A, FUSED_B)                            \
    BINARY_KERNELS(double, f64, name, FWD, FUSED_A, FUSED_B)                           \
    static tg_status name##_forward(tg_node *nd)                                       \
    {                                                                                  \
        tg__bcast plan;                                                                \
        plan_for(&plan, nd->in[0], nd->in[1], nd->out);                                \
        if (nd->out->dtype == TG_F32)                                                  \
            name##_forward_f32(&plan, nd->in[0]->data, nd->in[1]->data, nd->out->data); \
        else                                                                           \
            name##_forward_f64(&plan, nd->in[0]->data, nd->in[1]->data, nd->out->data); \
        return TG_OK;                                                                  \
    }                                                                                  \
    static tg_status name##_backward(tg_node *nd, tg_tensor *g, tg_tensor **din)       \
    {                                                                                  \
        tg_tensor *a = nd->in[0], *b = nd->in[1], *y = nd->out;                        \
        (void)a, (void)b, (void)y;                                                     \
        if (tg__needs_grad(nd, 0) && !(din[0] = (BACKWARD_A)))                         \
            return tg_last_status();                                                   \
        if (tg__needs_grad(nd, 1) && !(din[1] = (BACKWARD_B)))                         \
            return tg_last_status();                                                   \
        return TG_OK;                                                                  \
    }                                                                                  \
    static tg_status name##_fused(tg_node *nd, tg_tensor *g, tg_tensor **din)          \
    {                                                                                  \
        return fused(nd, g, din, name##_fused_f32, name##_fused_f64);                  \
    }                                                                                  \
    /* Elementwise: J (ta, tb) is the sum of the two composed backward rules   \
     * at g = ta and g = tb (over the broadcast shape). */                         \
    static tg_status name##_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout) \
    {                                                                                  \
        tg_tensor *a = nd->in[0], *b = nd->in[1], *y = nd->out, *g, *acc = NULL;       \
        (void)a, (void)b, (void)y;                                                     \
        if ((g = tin[0]) && tg__tangent_acc(&acc, (BACKWARD_A)) != TG_OK)              \
            return tg_last_status();                                                   \
        if ((g = tin[1]) && tg__tangent_acc(&acc, (BACKWARD_B)) != TG_OK)              \
            return tg_last_status();                                                   \
        *tout = acc;                                                                   \
        return TG_OK;                                                                  \
    }                                                                                  \
    const tg_op_def tg__def_##name = {TG__OP_NAME(name), .n_in = 2,                    \
                                      .differentiable = true,                         \
                                      .shape = tg__shape_broadcast,                    \
                                      .forward = name##_forward,                       \
                                      .backward = name##_backward,                     \
                                      .fused_backward = name##_fused,                  \
                                      .tangent = name##_tangent};                      \
    tg_tensor *tg_##name(tg_tensor *a, tg_tensor *b)                                   \
    {                                                                                  \
        tg_tensor *in[2] = {a, b};                                                     \
        return tg__apply(&tg__def_##name, 2, in, NULL);                                \
    }

typedef void fused_f32(const tg__bcast *, const float *, const float *, const float *,
                       const float *, float *, float *);
typedef void fused_f64(const tg__bcast *, const double *, const double *, const double *,
                       const double *, double *, double *);

/* The gradients over the output's (broadcast) shape; the engine sums each
 * back to its input's shape. */
static tg_status fused(tg_node *nd, tg_tensor *g, tg_tensor **din, fused_f32 *k32,
                       fused_f64 *k64)
{
    tg_tensor *a = nd->in[0], *b = nd->in[1], *y = nd->out;
    tg_tensor *d[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++)
        if (tg__needs_grad(nd, i) &&
            !(d[i] = tg__tape_tensor(nd->def->fn, y->dtype, y->ndim, y->shape, false)))
            return tg_last_status();
    tg__bcast plan;
    plan_for(&plan, a, b, y);
    if (y->dtype == TG_F32)
        k32(&plan, g->data, a->data, b->data, y->data, d[0] ? d[0]->data : NULL,
            d[1] ? d[1]->data : NULL);
    else
        k64(&plan, g->data, a->data, b->data, y->data, d[0] ? d[0]->data : NULL,
            d[1] ? d[1]->data : NULL);
    din[0] = d[0];
    din[1] = d[1];
    return TG_OK;
}

TG_BINARY_OPS(BINARY_ROW)
