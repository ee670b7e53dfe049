/* attention.c - scaled dot-product attention, one op:
 *   out = softmax(scale q k^T + mask) v
 * over batches of q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv). The causal
 * mask hides key j from query i when j > i (PyTorch's is_causal, aligned at
 * the top left), and a hidden entry gets exactly zero probability. The
 * forward is three steps per batch (one GEMM for the scores, a max-shifted
 * softmax per row, one GEMM for the output) and keeps the probabilities for
 * the fused backward (four GEMMs and one pass per row); the composed backward
 * rebuilds them from ops so that it is differentiable again. The attention
 * layer (lib/nn) is built on this op. */
#include <float.h>
#include <math.h>
#include <string.h>
#include <tgmath.h>

#include "kernels/kernels.h"
#include "ops/ops_internal.h"

typedef struct attn_params {
    bool causal;
    double scale;        /* resolved: > 0 */
    void *probs;         /* (B, Tq, Tk) in the dtype, filled by forward */
} attn_params;

#define ATTN(nd) TG__PARAMS(nd, attn_params)

typedef struct attn_dims {
    int64_t B, Tq, Tk, D, Dv;
} attn_dims;

static attn_dims dims_of(tg_tensor *const *in)
{
    const tg_tensor *q = in[0], *v = in[2];
    int n = q->ndim;
    attn_dims d = {1, q->shape[n - 2], in[1]->shape[n - 2], q->shape[n - 1], v->shape[n - 1]};
    for (int i = 0; i < n - 2; i++)
        d.B *= q->shape[i];
    return d;
}

static tg_status attn_shape(const char *fn, tg_tensor *const *in, int n_in, const void *params,
                            int *ndim, int64_t *shape)
{
    const tg_tensor *q = in[0], *k = in[1], *v = in[2];
    char sq[TG__SHAPE_STR], sk[TG__SHAPE_STR], sv[TG__SHAPE_STR];
#define SHAPES                                                                             \
    tg__shape_str(sq, q->ndim, q->shape), tg__shape_str(sk, k->ndim, k->shape),            \
        tg__shape_str(sv, v->ndim, v->shape)
    int n = q->ndim;
    if (n < 2 || k->ndim != n || v->ndim != n)
        return tg__fail(TG_ESHAPE, "%s: q, k and v need the same number of dims, at least 2 "
                                   "(q %s, k %s, v %s)", fn, SHAPES);
    if (memcmp(q->shape, k->shape, (size_t)(n - 2) * sizeof *q->shape) ||
        memcmp(q->shape, v->shape, (size_t)(n - 2) * sizeof *q->shape))
        return tg__fail(TG_ESHAPE, "%s: the leading dims of q, k and v differ (q %s, k %s, v %s)",
                        fn, SHAPES);
    if (k->shape[n - 1] != q->shape[n - 1])
        return tg__fail(TG_ESHAPE, "%s: q and k have %lld vs %lld features (q %s, k %s, v %s)",
                        fn, (long long)q->shape[n - 1], (long long)k->shape[n - 1], SHAPES);
    if (v->shape[n - 2] != k->shape[n - 2])
        return tg__fail(TG_ESHAPE, "%s: k and v have %lld vs %lld keys (q %s, k %s, v %s)", fn,
                        (long long)k->shape[n - 2], (long long)v->shape[n - 2], SHAPES);
    if (q->shape[n - 1] < 1 || k->shape[n - 2] < 1)
        return tg__fail(TG_ESHAPE, "%s: need at least one feature and one key (q %s, k %s, v %s)",
                        fn, SHAPES);
#undef SHAPES
    *ndim = n;
    memcpy(shape, q->shape, (size_t)(n - 1) * sizeof *shape);
    shape[n - 1] = v->shape[n - 1];
    return TG_OK;
}

/* Keys query i may see. */
static inline int64_t visible(bool causal, int64_t i, int64_t Tk)
{
    return causal && i + 1 < Tk ? i + 1 : Tk;
}

/* s (Tq, Tk) -> probabilities in place, hidden entries exactly 0. */
#define ATTN_SOFTMAX(T)                                                                    \
    do {                                                                                   \
        for (int64_t i = 0; i < d.Tq; i++) {                                               \
            T *row = s + i * d.Tk;                                                         \
            int64_t nv = visible(p->causal, i, d.Tk);                                      \
            T m = row[0];                                                                  \
            for (int64_t j = 1; j < nv; j++)                                               \
                m = row[j] > m ? row[j] : m;                                               \
            if (!isfinite(m))                                                              \
                m = 0; /* inf or NaN in the scores: let it show in the result */           \
            T sum = 0;                                                                     \
            for (int64_t j = 0; j < nv; j++)                                               \
                sum += row[j] = exp(row[j] - m);                                           \
            for (int64_t j = 0; j < nv; j++)                                               \
                row[j] /= sum;                                                             \
            for (int64_t j = nv; j < d.Tk; j++)                                            \
                row[j] = 0;                                                                \
        }                                                                                  \
    } while (0)

#define ATTN_FORWARD(T, GEMM)                                                              \
    do {                                                                                   \
        const T *qs = nd->in[0]->data, *ks = nd->in[1]->data, *vs = nd->in[2]->data;       \
        T *os = nd->out->data, *ps = p->probs;                                             \
        for (int64_t b = 0; b < d.B; b++) {                                                \
            T *s = ps + b * d.Tq * d.Tk;                                                   \
            GEMM(false, true, d.Tq, d.Tk, d.D, (T)p->scale, qs + b * d.Tq * d.D, d.D,      \
                 ks + b * d.Tk * d.D, d.D, 0, s, d.Tk);                                    \
            ATTN_SOFTMAX(T);                                                               \
            if (d.Dv)                                                                      \
                GEMM(false, false, d.Tq, d.Dv, d.Tk, 1, s, d.Tk, vs + b * d.Tk * d.Dv,     \
                     d.Dv, 0, os + b * d.Tq * d.Dv, d.Dv);                                 \
        }                                                                                  \
    } while (0)

static tg_status attn_forward(tg_node *nd)
{
    attn_params *p = ATTN(nd);
    attn_dims d = dims_of(nd->in);
    size_t n = (size_t)(d.B * d.Tq * d.Tk);
    p->probs = n ? tg__tape_alloc(nd->out->tape, "tg_scaled_dot_product_attention",
                                  n * tg_dtype_size(nd->out->dtype))
                 : NULL;
    if (n && !p->probs)
        return TG_ENOMEM;
    if (!n)
        return TG_OK; // no queries (or no batches): the result is empty
    if (nd->out->dtype == TG_F32)
        ATTN_FORWARD(float, tg__gemm_f32);
    else
        ATTN_FORWARD(double, tg__gemm_f64);
    return TG_OK;
}

/* The probabilities from ops: softmax over the last axis of the scaled
 * scores, the hidden ones replaced by the lowest finite value first (so that
 * anomaly mode sees no infinity, and e^(lowest - max) is exactly 0). */
static tg_tensor *probs_from_ops(tg_node *nd)
{
    const attn_params *p = ATTN(nd);
    tg_tensor *q = nd->in[0], *k = nd->in[1];
    attn_dims d = dims_of(nd->in);
    tg_tensor *s = tg_mul_scalar(tg_matmul(q, tg_transpose(k, -1, -2)), p->scale);
    if (p->causal && s) {
        tg_tensor *mask = tg__tape_tensor("tg_scaled_dot_product_attention", q->dtype, 2,
                                          (const int64_t[]){d.Tq, d.Tk}, false);
        if (!mask)
            return NULL;
        for (int64_t i = 0; i < d.Tq; i++)
            for (int64_t j = 0; j < d.Tk; j++)
                tg__set(mask, i * d.Tk + j, j < visible(true, i, d.Tk));
        double lowest = q->dtype == TG_F32 ? -FLT_MAX : -DBL_MAX;
        s = tg_where(mask, s, tg_scalar(q->dtype, lowest));
    }
    return tg_softmax(s, -1);
}

static tg_status attn_backward(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    // With P the probabilities and S the scaled scores:
    //   dv = P^T g,  dP = g v^T,  dS = P (dP - sum_j dP P),
    //   dq = scale dS k,  dk = scale dS^T q.
    const attn_params *p = ATTN(nd);
    tg_tensor *q = nd->in[0], *k = nd->in[1], *v = nd->in[2];
    int last = -1;
    tg_tensor *P = probs_from_ops(nd);
    if (tg__needs_grad(nd, 2) && !(din[2] = tg_matmul(tg_transpose(P, -1, -2), g)))
        return tg_last_status();
    if (!tg__needs_grad(nd, 0) && !tg__needs_grad(nd, 1))
        return TG_OK;
    tg_tensor *dp = tg_matmul(g, tg_transpose(v, -1, -2));
    tg_tensor *ds = tg_mul_scalar(tg_mul(P, tg_sub(dp, tg_sum(tg_mul(dp, P), &last, 1, true))),
                                  p->scale);
    if (tg__needs_grad(nd, 0) && !(din[0] = tg_matmul(ds, k)))
        return tg_last_status();
    if (tg__needs_grad(nd, 1) && !(din[1] = tg_matmul(tg_transpose(ds, -1, -2), q)))
        return tg_last_status();
    return TG_OK;
}

#define ATTN_GRAD(T, GEMM)                                                                 \
    do {                                                                                   \
        const T *qs = q->data, *ks = k->data, *vs = v->data, *gs = g->data;                \
        const T *ps = p->probs;                                                            \
        T *ds = tmp;                                                                       \
        for (int64_t b = 0; b < d.B; b++) {                                                \
            const T *P = ps + b * d.Tq * d.Tk, *gb = gs + b * d.Tq * d.Dv;                 \
            const T *vb = vs + b * d.Tk * d.Dv;                                            \
            if (dv && d.Dv)                                                                \
                GEMM(true, false, d.Tk, d.Dv, d.Tq, 1, P, d.Tk, gb, d.Dv, 0,               \
                     (T *)dv->data + b * d.Tk * d.Dv, d.Dv);                               \
            if (!dq && !dk)                                                                \
                continue;                                                                  \
            if (d.Dv)                                                                      \
                GEMM(false, true, d.Tq, d.Tk, d.Dv, 1, gb, d.Dv, vb, d.Dv, 0, ds, d.Tk);   \
            else                                                                           \
                memset(ds, 0, (size_t)(d.Tq * d.Tk) * sizeof(T));                          \
            for (int64_t i = 0; i < d.Tq; i++) {                                           \
                T *row = ds + i * d.Tk;                                                    \
                const T *pr = P + i * d.Tk;                                                \
                T acc = 0;                                                                 \
                for (int64_t j = 0; j < d.Tk; j++)                                         \
                    acc += row[j] * pr[j];                                                 \
                for (int64_t j = 0; j < d.Tk; j++)                                         \
                    row[j] = pr[j] * (row[j] - acc);                                       \
            }                                                                              \
            if (dq)                                                                        \
                GEMM(false, false, d.Tq, d.D, d.Tk, (T)p->scale, ds, d.Tk,                 \
                     ks + b * d.Tk * d.D, d.D, 0, (T *)dq->data + b * d.Tq * d.D, d.D);    \
            if (dk)                                                                        \
                GEMM(true, false, d.Tk, d.D, d.Tq, (T)p->scale, ds, d.Tk,                  \
                     qs + b * d.Tq * d.D, d.D, 0, (T *)dk->data + b * d.Tk * d.D, d.D);    \
        }                                                                                  \
    } while (0)

static tg_status attn_fused(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    const char *fn = "tg_scaled_dot_product_attention";
    const attn_params *p = ATTN(nd);
    tg_tensor *q = nd->in[0], *k = nd->in[1], *v = nd->in[2];
    attn_dims d = dims_of(nd->in);
    tg_tensor *dq = NULL, *dk = NULL, *dv = NULL;
    // Zeroed: with no queries the products below are skipped.
    bool empty = d.B * d.Tq == 0;
    if ((tg__needs_grad(nd, 0) &&
         !(dq = tg__tape_tensor(fn, q->dtype, q->ndim, q->shape, empty))) ||
        (tg__needs_grad(nd, 1) &&
         !(dk = tg__tape_tensor(fn, k->dtype, k->ndim, k->shape, empty))) ||
        (tg__needs_grad(nd, 2) &&
         !(dv = tg__tape_tensor(fn, v->dtype, v->ndim, v->shape, empty || d.Dv == 0))))
        return tg_last_status();
    if (!empty) {
        void *tmp = NULL;
        if (dq || dk) {
            tmp = tg__tape_alloc(nd->out->tape, fn,
                                 (size_t)(d.Tq * d.Tk) * tg_dtype_size(q->dtype));
            if (!tmp)
                return TG_ENOMEM;
        }
        if (q->dtype == TG_F32)
            ATTN_GRAD(float, tg__gemm_f32);
        else
            ATTN_GRAD(double, tg__gemm_f64);
    }
    din[0] = dq;
    din[1] = dk;
    din[2] = dv;
    return TG_OK;
}

const tg_op_def tg__def_scaled_dot_product_attention = {
    TG__OP_NAME(scaled_dot_product_attention), .n_in = 3, .differentiable = true,
    .params_size = sizeof(attn_params), .shape = attn_shape, .forward = attn_forward,
    .backward = attn_backward, .fused_backward = attn_fused};

tg_tensor *tg_scaled_dot_product_attention(tg_tensor *q, tg_tensor *k, tg_tensor *v, bool causal,
                                           double scale)
{
    const char *fn = "tg_scaled_dot_product_attention";
    if (tg__bad_input(fn, q, 0) || tg__bad_input(fn, k, 1) || tg__bad_input(fn, v, 2))
        return NULL;
    if (isnan(scale) || isinf(scale))
        return tg__fail_null(TG_EINVAL, "%s: scale %g is not finite (<= 0 means 1/sqrt(D))", fn,
                             scale);
    if (scale <= 0 && q->ndim >= 1 && q->shape[q->ndim - 1] > 0)
        scale = 1 / sqrt((double)q->shape[q->ndim - 1]);
    attn_params p = {causal, scale, NULL};
    tg_tensor *in[3] = {q, k, v};
    return tg__apply(&tg__def_scaled_dot_product_attention, 3, in, &p);
}
