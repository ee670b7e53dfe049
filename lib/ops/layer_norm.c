/* layer_norm.c - layer normalisation over the last n_norm_dims axes, with an
 * optional elementwise affine (gamma, beta) of the normalised shape:
 *   y = (x - mean) / sqrt(var + eps) * gamma + beta
 * with the biased variance (divided by N, as PyTorch and Keras do). The forward
 * is one pass per row (a row is one group of N normalised elements) that keeps
 * each row's mean and 1/sqrt(var + eps) for the fused backward; the composed
 * backward rebuilds the statistics from ops so that it is differentiable
 * again. The LayerNorm layer (lib/nn) is built on this op. */
#include <math.h>
#include <string.h>

#include "ops/ops_internal.h"

typedef struct ln_params {
    int n_norm;          /* the last n_norm axes are normalised */
    bool has_gamma, has_beta;
    double eps;
    double *stats;       /* per row: mean, rstd (forward fills it) */
} ln_params;

#define LN(nd) TG__PARAMS(nd, ln_params)

/* Rows and elements per row of x for the last n axes. */
static void ln_split(const tg_tensor *x, int n, int64_t *rows, int64_t *cols)
{
    int64_t c = 1;
    for (int d = x->ndim - n; d < x->ndim; d++)
        c *= x->shape[d];
    *cols = c;
    *rows = c ? x->numel / c : 0;
}

static tg_status ln_shape(const char *fn, tg_tensor *const *in, int n_in, const void *params,
                          int *ndim, int64_t *shape)
{
    const ln_params *p = params;
    const tg_tensor *x = in[0];
    char sx[TG__SHAPE_STR], sa[TG__SHAPE_STR], sn[TG__SHAPE_STR];
    if (p->n_norm < 1 || p->n_norm > x->ndim)
        return tg__fail(TG_EINVAL, "%s: n_norm_dims %d outside [1, %d] for x of shape %s", fn,
                        p->n_norm, x->ndim, tg__shape_str(sx, x->ndim, x->shape));
    const int64_t *norm = x->shape + (x->ndim - p->n_norm);
    for (int i = 1; i < n_in; i++) {
        const tg_tensor *a = in[i];
        const char *what = i == 1 && p->has_gamma ? "gamma" : "beta";
        if (a->ndim != p->n_norm || memcmp(a->shape, norm, (size_t)p->n_norm * sizeof *norm))
            return tg__fail(TG_ESHAPE, "%s: %s has shape %s, expected the normalised shape %s "
                                       "(the last %d dim%s of x %s)", fn, what,
                            tg__shape_str(sa, a->ndim, a->shape),
                            tg__shape_str(sn, p->n_norm, norm), p->n_norm, p->n_norm == 1 ? "" : "s",
                            tg__shape_str(sx, x->ndim, x->shape));
    }
    int64_t rows, cols;
    ln_split(x, p->n_norm, &rows, &cols);
    if (cols == 0)
        return tg__fail(TG_ESHAPE, "%s: the normalised shape %s has no elements", fn,
                        tg__shape_str(sx, p->n_norm, norm));
    *ndim = x->ndim;
    memcpy(shape, x->shape, (size_t)x->ndim * sizeof *shape);
    return TG_OK;
}

/* x (R, N) -> y (R, N), stats (R, 2): two passes per row (mean, then the
 * centred sum of squares) in double, whatever T. */
#define LN_FORWARD(T)                                                                 \
    do {                                                                              \
        const T *xs = x->data, *gs = gamma ? gamma->data : NULL;                      \
        const T *bs = beta ? beta->data : NULL;                                       \
        T *ys = nd->out->data;                                                        \
        for (int64_t r = 0; r < R; r++) {                                             \
            const T *xr = xs + r * N;                                                 \
            T *yr = ys + r * N;                                                       \
            double mean = 0, ss = 0;                                                  \
            for (int64_t j = 0; j < N; j++)                                           \
                mean += xr[j];                                                        \
            mean /= (double)N;                                                        \
            for (int64_t j = 0; j < N; j++) {                                         \
                double c = xr[j] - mean;                                              \
                ss += c * c;                                                          \
            }                                                                         \
            double rstd = 1 / sqrt(ss / (double)N + p->eps);                          \
            for (int64_t j = 0; j < N; j++) {                                         \
                double v = (xr[j] - mean) * rstd;                                     \
                if (gs)                                                               \
                    v *= gs[j];                                                       \
                if (bs)                                                               \
                    v += bs[j];                                                       \
                yr[j] = (T)v;                                                         \
            }                                                                         \
            p->stats[2 * r] = mean;                                                   \
            p->stats[2 * r + 1] = rstd;                                               \
        }                                                                             \
    } while (0)

static tg_status ln_forward(tg_node *nd)
{
    ln_params *p = LN(nd);
    const tg_tensor *x = nd->in[0];
    const tg_tensor *gamma = p->has_gamma ? nd->in[1] : NULL;
    const tg_tensor *beta = p->has_beta ? nd->in[1 + p->has_gamma] : NULL;
    int64_t R, N;
    ln_split(x, p->n_norm, &R, &N);
    p->stats = R ? tg__tape_alloc(nd->out->tape, "tg_layer_norm", (size_t)R * 2 * sizeof(double))
                 : NULL;
    if (R && !p->stats)
        return TG_ENOMEM;
    if (x->dtype == TG_F32)
        LN_FORWARD(float);
    else
        LN_FORWARD(double);
    return TG_OK;
}

/* The last n axes of an ndim-dim tensor, for the reductions. */
static int norm_axes(int ndim, int n, int *axes)
{
    for (int i = 0; i < n; i++)
        axes[i] = ndim - n + i;
    return n;
}

static tg_status ln_backward(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    // With xhat = (x - mu) rstd and gx = g gamma (g without gamma):
    //   dx = rstd (gx - mean(gx) - xhat mean(gx xhat)),  dgamma = g xhat,  dbeta = g
    // (dgamma and dbeta over x's shape; the engine sums them to gamma's).
    const ln_params *p = LN(nd);
    tg_tensor *x = nd->in[0];
    tg_tensor *gamma = p->has_gamma ? nd->in[1] : NULL;
    int ig = 1, ib = 1 + p->has_gamma;
    int axes[TG_MAX_DIMS];
    int n = norm_axes(x->ndim, p->n_norm, axes);
    tg_tensor *xc = tg_sub(x, tg_mean(x, axes, n, true));
    tg_tensor *rstd = tg_rsqrt(tg_add_scalar(tg_mean(tg_square(xc), axes, n, true), p->eps));
    tg_tensor *xhat = tg_mul(xc, rstd);
    if (tg__needs_grad(nd, 0)) {
        tg_tensor *gx = gamma ? tg_mul(g, gamma) : g;
        tg_tensor *a = tg_mean(gx, axes, n, true);
        tg_tensor *b = tg_mean(tg_mul(gx, xhat), axes, n, true);
        if (!(din[0] = tg_mul(rstd, tg_sub(tg_sub(gx, a), tg_mul(xhat, b)))))
            return tg_last_status();
    }
    if (gamma && tg__needs_grad(nd, ig) && !(din[ig] = tg_mul(g, xhat)))
        return tg_last_status();
    if (p->has_beta && tg__needs_grad(nd, ib))
        din[ib] = g;
    return TG_OK;
}

/* The same rules in one pass per row from the saved statistics; dgamma and
 * dbeta are summed over the rows here, in double. */
#define LN_GRAD(T)                                                                     \
    do {                                                                               \
        const T *xs = x->data, *gs = g->data, *ws = gamma ? gamma->data : NULL;        \
        T *dxs = dx ? dx->data : NULL;                                                 \
        for (int64_t r = 0; r < R; r++) {                                              \
            const T *xr = xs + r * N, *gr = gs + r * N;                                \
            double mean = p->stats[2 * r], rstd = p->stats[2 * r + 1];                 \
            if (dxs) {                                                                 \
                double a = 0, b = 0;                                                   \
                for (int64_t j = 0; j < N; j++) {                                      \
                    double gx = ws ? (double)gr[j] * ws[j] : gr[j];                    \
                    a += gx;                                                           \
                    b += gx * ((xr[j] - mean) * rstd);                                 \
                }                                                                      \
                a /= (double)N;                                                        \
                b /= (double)N;                                                        \
                for (int64_t j = 0; j < N; j++) {                                      \
                    double gx = ws ? (double)gr[j] * ws[j] : gr[j];                    \
                    double xh = (xr[j] - mean) * rstd;                                 \
                    dxs[r * N + j] = (T)(rstd * (gx - a - xh * b));                    \
                }                                                                      \
            }                                                                          \
            for (int64_t j = 0; dg && j < N; j++)                                      \
                dg[j] += (double)gr[j] * ((xr[j] - mean) * rstd);                      \
            for (int64_t j = 0; db && j < N; j++)                                      \
                db[j] += gr[j];                                                        \
        }                                                                              \
    } while (0)

static tg_status ln_fused(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    const char *fn = "tg_layer_norm";
    const ln_params *p = LN(nd);
    tg_tensor *x = nd->in[0];
    tg_tensor *gamma = p->has_gamma ? nd->in[1] : NULL;
    int ig = 1, ib = 1 + p->has_gamma;
    int64_t R, N;
    ln_split(x, p->n_norm, &R, &N);
    tg_tensor *dx = NULL;
    if (tg__needs_grad(nd, 0) && !(dx = tg__tape_tensor(fn, x->dtype, x->ndim, x->shape, false)))
        return tg_last_status();
    bool want_g = gamma && tg__needs_grad(nd, ig), want_b = p->has_beta && tg__needs_grad(nd, ib);
    double *dg = NULL, *db = NULL;
    if (want_g || want_b) {
        // Parameter gradients accumulate in double, then round once.
        double *acc = tg__tape_alloc(nd->out->tape, fn, (size_t)(2 * N) * sizeof *acc);
        if (!acc)
            return TG_ENOMEM;
        memset(acc, 0, (size_t)(2 * N) * sizeof *acc);
        dg = want_g ? acc : NULL;
        db = want_b ? acc + N : NULL;
    }
    if (x->dtype == TG_F32)
        LN_GRAD(float);
    else
        LN_GRAD(double);
    if (dx)
        din[0] = dx;
    const int64_t *norm = x->shape + (x->ndim - p->n_norm);
    for (int k = 0; k < 2; k++) {
        double *src = k ? db : dg;
        if (!src)
            continue;
        tg_tensor *t = tg__tape_tensor(fn, x->dtype, p->n_norm, norm, false);
        if (!t)
            return tg_last_status();
        for (int64_t j = 0; j < N; j++)
            tg__set(t, j, src[j]);
        din[k ? ib : ig] = t;
    }
    return TG_OK;
}

const tg_op_def tg__def_layer_norm = {TG__OP_NAME(layer_norm), .n_in = -1,
                                      .differentiable = true, .params_size = sizeof(ln_params),
                                      .shape = ln_shape, .forward = ln_forward,
                                      .backward = ln_backward, .fused_backward = ln_fused};

tg_tensor *tg_layer_norm(tg_tensor *x, int n_norm_dims, tg_tensor *gamma, tg_tensor *beta,
                         double eps)
{
    const char *fn = "tg_layer_norm";
    if (tg__bad_input(fn, x, 0) || (gamma && tg__check_live(fn, gamma) != TG_OK) ||
        (beta && tg__check_live(fn, beta) != TG_OK))
        return NULL;
    if (!(eps >= 0) || !isfinite(eps))
        return tg__fail_null(TG_EINVAL, "%s: eps %g must be finite and >= 0", fn, eps);
    const tg_tensor *aff[2] = {gamma, beta};
    for (int k = 0; k < 2; k++)
        if (aff[k] && aff[k]->dtype != x->dtype)
            return tg__fail_null(TG_EDTYPE, "%s: %s is %s but x is %s", fn,
                                 k ? "beta" : "gamma", tg_dtype_name(aff[k]->dtype),
                                 tg_dtype_name(x->dtype));
    tg_tensor *in[3] = {x};
    int n_in = 1;
    if (gamma)
        in[n_in++] = gamma;
    if (beta)
        in[n_in++] = beta;
    ln_params p = {n_norm_dims, gamma != NULL, beta != NULL, eps, NULL};
    return tg__apply(&tg__def_layer_norm, n_in, in, &p);
}
