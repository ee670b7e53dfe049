/* loss.c - losses and the accuracy metric. Most losses are compositions of
 * ops (so their gradients come from those ops); sparse cross-entropy is one
 * fused op: its forward is a single pass per row (log-sum-exp minus the
 * label's logit) and its gradient, (softmax(x) - onehot) * g, is built from
 * ops so that it is differentiable again. */
#include <math.h>
#include <string.h>

#include "kernels/reduce.h"
#include "ops/ops_internal.h"

static tg_tensor *reduce(const char *fn, tg_tensor *per_sample, tg_reduction red)
{
    switch (red) {
    case TG_REDUCE_MEAN:
        return tg_mean(per_sample, NULL, 0, false);
    case TG_REDUCE_SUM:
        return tg_sum(per_sample, NULL, 0, false);
    case TG_REDUCE_NONE:
        return per_sample;
    }
    return tg__fail_null(TG_EINVAL, "%s: unknown reduction %d", fn, (int)red);
}

static tg_status same_shapes(const char *fn, const tg_tensor *a, const tg_tensor *b)
{
    if (tg__bad_input(fn, a, 0) || tg__bad_input(fn, b, 1))
        return tg_last_status();
    if (tg__same_shape(a, b))
        return TG_OK;
    char sa[TG__SHAPE_STR], sb[TG__SHAPE_STR];
    return tg__fail(TG_ESHAPE, "%s: prediction %s and target %s must have the same shape", fn,
                    tg__shape_str(sa, a->ndim, a->shape), tg__shape_str(sb, b->ndim, b->shape));
}

static bool valid_reduction(const char *fn, tg_reduction red)
{
    if ((unsigned)red <= TG_REDUCE_NONE)
        return true;
    tg__fail(TG_EINVAL, "%s: unknown reduction %d", fn, (int)red);
    return false;
}

tg_tensor *tg_mse_loss(tg_tensor *pred, tg_tensor *target, tg_reduction red)
{
    const char *fn = "tg_mse_loss";
    if (!valid_reduction(fn, red) || same_shapes(fn, pred, target) != TG_OK)
        return NULL;
    TG__API_CALL(fn, reduce(fn, tg_pow_scalar(tg_sub(pred, target), 2.0), red));
}

tg_tensor *tg_bce_loss(tg_tensor *prob, tg_tensor *target, tg_reduction red)
{
    const char *fn = "tg_bce_loss";
    if (!valid_reduction(fn, red) || same_shapes(fn, prob, target) != TG_OK)
        return NULL;
    if (tg__check_live(fn, prob) != TG_OK)
        return NULL;
    // A probability outside [0, 1] (or NaN) gives a meaningless loss (p = 2
    // would give -100): refused, as PyTorch does.
    for (int64_t i = 0; i < prob->numel; i++) {
        double v = tg__get(prob, i);
        if (!(v >= 0 && v <= 1))
            return tg__fail_null(TG_ERANGE, "%s: prob[%lld] = %g is outside [0, 1]", fn,
                                 (long long)i, v);
    }
    // Clamping p keeps ln p >= -100 (PyTorch's floor) so saturated outputs give a
    // large, finite loss; inside the clamp the gradient is the exact one.
    const double lo = 3.720075976020836e-44; // e^-100
    const char *prev = tg__api_enter(fn);
    tg_tensor *p = tg_clamp(prob, lo, 1.0);
    tg_tensor *q = tg_clamp(tg_rsub_scalar(prob, 1.0), lo, 1.0);
    tg_tensor *pos = tg_mul(target, tg_log(p));
    tg_tensor *neg = tg_mul(tg_rsub_scalar(target, 1.0), tg_log(q));
    tg_tensor *out = reduce(fn, tg_neg(tg_add(pos, neg)), red);
    tg__api_leave(prev);
    return out;
}

tg_tensor *tg_bce_with_logits_loss(tg_tensor *logits, tg_tensor *target, tg_reduction red)
{
    const char *fn = "tg_bce_with_logits_loss";
    if (!valid_reduction(fn, red) || same_shapes(fn, logits, target) != TG_OK)
        return NULL;
    // -(t ln s(x) + (1-t) ln(1-s(x))) = softplus(x) - x t, stable for any x.
    TG__API_CALL(fn, reduce(fn, tg_sub(tg_softplus(logits), tg_mul(logits, target)), red));
}

/* ---- sparse cross-entropy: the fused op ---- */

static tg_status labels_ok(const char *fn, const int64_t *labels, int64_t n, int64_t k)
{
    if (n > 0 && !labels)
        return tg__fail(TG_EINVAL, "%s: labels is NULL", fn);
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= k)
            return tg__fail(TG_ERANGE, "%s: labels[%lld] = %lld outside [0, %lld)", fn,
                            (long long)i, (long long)labels[i], (long long)k);
    return TG_OK;
}

/* cross_entropy's parameters: the labels, copied to the tape. */
typedef struct labels_params {
    const int64_t *labels;
} labels_params;

#define LABELS(nd) (TG__PARAMS(nd, labels_params)->labels)

static tg_status rows_shape(const char *fn, tg_tensor *const *in, int n_in,
                            const void *params, int *ndim, int64_t *shape)
{
    *ndim = 1;
    shape[0] = in[0]->shape[0];
    return TG_OK;
}

#define XENT_ROWS(T)                                                               \
    const T *x = nd->in[0]->data;                                                  \
    T *y = nd->out->data;                                                          \
    for (int64_t r = 0; r < N; r++) {                                              \
        const T *row = x + r * K;                                                  \
        T m = row[0];                                                              \
        for (int64_t k = 1; k < K; k++)                                            \
            m = row[k] > m ? row[k] : m;                                           \
        double s = 0;                                                              \
        for (int64_t k = 0; k < K; k++)                                            \
            s += exp((double)(row[k] - m));                                        \
        y[r] = (T)((double)m + log(s) - (double)row[LABELS(nd)[r]]);                \
    }

static tg_status xent_forward(tg_node *nd)
{
    int64_t N = nd->in[0]->shape[0], K = nd->in[0]->shape[1];
    if (nd->out->dtype == TG_F32) {
        XENT_ROWS(float)
    } else {
        XENT_ROWS(double)
    }
    return TG_OK;
}

/* d loss[r] / d x[r] = softmax(x[r]) - onehot(label[r]), for all rows. */
static tg_tensor *xent_jacobian(tg_node *nd)
{
    tg_tensor *x = nd->in[0];
    int64_t N = x->shape[0], K = x->shape[1];
    tg_tensor *onehot = tg_full_like(x, 0.0);
    if (!onehot)
        return NULL;
    for (int64_t r = 0; r < N; r++)
        tg__set(onehot, r * K + LABELS(nd)[r], 1.0);
    return tg_sub(tg_softmax(x, 1), onehot);
}

static tg_status xent_backward(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    int64_t N = nd->in[0]->shape[0];
    din[0] = tg_mul(xent_jacobian(nd), tg_reshape(g, 2, (int64_t[]){N, 1}));
    return din[0] ? TG_OK : tg_last_status();
}

/* Each row's loss has the gradient above, so its tangent is its dot with t. */
static tg_status xent_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    int axis = 1;
    return tg__tangent_is(tout, tg_sum(tg_mul(xent_jacobian(nd), tin[0]), &axis, 1, false));
}

/* dx[r] = (softmax(x[r]) - onehot(label[r])) g[r]: the composed rule's
 * arithmetic, in the same order (the softmax kernel, then one subtraction and
 * one product per element, in T), without its four temporaries and nodes. */
#define XENT_GRAD(T)                                                               \
    const T *gs = g->data;                                                         \
    T *dxs = dx->data;                                                             \
    for (int64_t r = 0; r < N; r++) {                                              \
        T *row = dxs + r * K;                                                      \
        for (int64_t k = 0; k < K; k++)                                            \
            row[k] = (row[k] - (T)(k == LABELS(nd)[r])) * gs[r];                   \
    }

static tg_status xent_fused(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    const tg_tensor *in = nd->in[0];
    int64_t N = in->shape[0], K = in->shape[1];
    tg_tensor *dx = tg__tape_tensor("tg_cross_entropy", in->dtype, 2, in->shape, false);
    if (!dx)
        return tg_last_status();
    if (dx->dtype == TG_F32) {
        tg__softmax_f32(in->data, dx->data, N, K, 1, 0);
        XENT_GRAD(float)
    } else {
        tg__softmax_f64(in->data, dx->data, N, K, 1, 0);
        XENT_GRAD(double)
    }
    din[0] = dx;
    return TG_OK;
}

const tg_op_def tg__def_cross_entropy = {TG__OP_NAME(cross_entropy), .n_in = 1,
                                         .differentiable = true,
                                         .params_size = sizeof(labels_params), .shape = rows_shape,
                                         .forward = xent_forward, .backward = xent_backward,
                                         .fused_backward = xent_fused, .tangent = xent_tangent};

/* Checks (N, K) scores with N labels in range; copies the labels to the tape. */
static const int64_t *scores_and_labels(const char *fn, const tg_tensor *x, const int64_t *labels)
{
    char s[TG__SHAPE_STR];
    if (x->ndim != 2 || x->shape[1] < 1)
        return tg__fail_null(TG_ESHAPE, "%s: expected scores of shape (N, K), got %s", fn,
                             tg__shape_str(s, x->ndim, x->shape));
    if (labels_ok(fn, labels, x->shape[0], x->shape[1]) != TG_OK)
        return NULL;
    tg_tape *tape = tg__tape_for(fn);
    int64_t *copy = tape ? tg__tape_alloc(tape, fn, (size_t)x->shape[0] * sizeof *copy) : NULL;
    if (copy && x->shape[0])
        memcpy(copy, labels, (size_t)x->shape[0] * sizeof *copy);
    return copy;
}

tg_tensor *tg_cross_entropy(tg_tensor *logits, const int64_t *labels, tg_reduction red)
{
    const char *fn = "tg_cross_entropy";
    if (tg__bad_input(fn, logits, 0))
        return NULL;
    if (!valid_reduction(fn, red))
        return NULL;
    const int64_t *copy = scores_and_labels(fn, logits, labels);
    if (!copy)
        return NULL;
    labels_params p = {copy};
    TG__API_CALL(fn, reduce(fn, tg__apply(&tg__def_cross_entropy, 1, &logits, &p), red));
}

tg_tensor *tg_nll_loss(tg_tensor *log_probs, const int64_t *labels, tg_reduction red)
{
    const char *fn = "tg_nll_loss";
    if (tg__bad_input(fn, log_probs, 0))
        return NULL;
    if (!valid_reduction(fn, red))
        return NULL;
    const int64_t *copy = scores_and_labels(fn, log_probs, labels);
    if (!copy)
        return NULL;
    int64_t n = log_probs->shape[0];
    const char *prev = tg__api_enter(fn);
    tg_tensor *picked = tg_gather(log_probs, 1, 2, (int64_t[]){n, 1}, copy);
    tg_tensor *out = reduce(fn, tg_neg(tg_reshape(picked, 1, &n)), red);
    tg__api_leave(prev);
    return out;
}

tg_tensor *tg_cross_entropy_soft(tg_tensor *logits, tg_tensor *target, tg_reduction red)
{
    const char *fn = "tg_cross_entropy_soft";
    if (!valid_reduction(fn, red) || same_shapes(fn, logits, target) != TG_OK)
        return NULL;
    if (logits->ndim != 2) {
        char s[TG__SHAPE_STR];
        return tg__fail_null(TG_ESHAPE, "%s: expected logits of shape (N, K), got %s", fn,
                             tg__shape_str(s, logits->ndim, logits->shape));
    }
    int axis = 1;
    const char *prev = tg__api_enter(fn);
    tg_tensor *per_row = tg_neg(tg_sum(tg_mul(target, tg_log_softmax(logits, 1)), &axis, 1,
                                       false));
    tg_tensor *out = reduce(fn, per_row, red);
    tg__api_leave(prev);
    return out;
}

double tg_accuracy(const tg_tensor *scores, const int64_t *labels, int64_t n)
{
    const char *fn = "tg_accuracy";
    char s[TG__SHAPE_STR];
    if (!scores || (n > 0 && !labels)) {
        tg__fail(TG_EINVAL, "%s: NULL %s", fn, scores ? "labels" : "scores");
        return NAN;
    }
    if (tg__check_live(fn, scores) != TG_OK)
        return NAN;
    if (scores->ndim != 2 || scores->shape[0] != n || n == 0 || scores->shape[1] < 1) {
        tg__fail(TG_ESHAPE, "%s: expected scores (%lld, K) with K >= 1, got %s", fn,
                 (long long)n, tg__shape_str(s, scores->ndim, scores->shape));
        return NAN;
    }
    int64_t K = scores->shape[1], correct = 0;
    // A label outside [0, K) is a caller's bug, not a miss.
    if (labels_ok(fn, labels, n, K) != TG_OK)
        return NAN;
    for (int64_t r = 0; r < n; r++) {
        int64_t best = 0;
        for (int64_t k = 1; k < K; k++)
            if (tg__get(scores, r * K + k) > tg__get(scores, r * K + best))
                best = k;
        correct += best == labels[r];
    }
    return (double)correct / (double)n;
}
