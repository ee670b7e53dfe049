/* clip.c - gradient clipping by global L2 norm and by value, as
 * torch.nn.utils.clip_grad_norm_ / clip_grad_value_. They act on the .grad of
 * any caller's tensors and know nothing about optimizers. */
#include "optim_internal.h"

static tg_status check_params(const char *fn, tg_tensor *const *params, int n)
{
    if (!params)
        return tg__fail(TG_EINVAL, "%s: params is NULL", fn);
    if (n <= 0)
        return tg__fail(TG_EINVAL, "%s: n is %d, need at least one param", fn, n);
    for (int i = 0; i < n; i++)
        if (!params[i])
            return tg__fail(TG_EINVAL, "%s: params[%d] is NULL", fn, i);
    return TG_OK;
}

/* Sum of squares times 1/scale^2, in double whatever the dtype; four partial
 * sums because a single one serialises on the add latency (without
 * -ffast-math the compiler may not reassociate it). */
#define SUMSQ_KERNEL(NAME, T)                                                                \
    static double NAME(const T *x, int64_t n, double inv_scale)                              \
    {                                                                                        \
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                               \
        int64_t i = 0;                                                                       \
        for (; i + 4 <= n; i += 4) {                                                         \
            double a = (double)x[i] * inv_scale, b = (double)x[i + 1] * inv_scale;           \
            double c = (double)x[i + 2] * inv_scale, d = (double)x[i + 3] * inv_scale;       \
            s0 += a * a;                                                                     \
            s1 += b * b;                                                                     \
            s2 += c * c;                                                                     \
            s3 += d * d;                                                                     \
        }                                                                                    \
        for (; i < n; i++) {                                                                 \
            double a = (double)x[i] * inv_scale;                                             \
            s0 += a * a;                                                                     \
        }                                                                                    \
        return (s0 + s1) + (s2 + s3);                                                        \
    }

SUMSQ_KERNEL(sumsq_f32, float)
SUMSQ_KERNEL(sumsq_f64, double)

static double sum_squares(tg_tensor *const *params, int n, double inv_scale)
{
    double total = 0;
    for (int i = 0; i < n; i++) {
        const tg_tensor *g = params[i]->grad;
        if (!g)
            continue;
        total += g->dtype == TG_F32 ? sumsq_f32(g->data, g->numel, inv_scale)
                                    : sumsq_f64(g->data, g->numel, inv_scale);
    }
    return total;
}

static double max_abs(tg_tensor *const *params, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++) {
        const tg_tensor *g = params[i]->grad;
        for (int64_t k = 0; g && k < g->numel; k++) {
            double a = fabs(tg__get(g, k));
            if (!(a <= m)) // also catches NaN, which must win
                m = a;
            if (isnan(a))
                return a;
        }
    }
    return m;
}

tg_status tg_clip_grad_norm(tg_tensor *const *params, int n, double max_norm,
                            double *total_norm_out)
{
    static const char fn[] = "tg_clip_grad_norm";
    tg_status st = check_params(fn, params, n);
    if (st != TG_OK)
        return st;
    if (!(max_norm >= 0))
        return tg__fail(TG_EINVAL, "%s: max_norm %g must be >= 0", fn, max_norm);
    double total = sqrt(sum_squares(params, n, 1.0));
    if (!isfinite(total)) {
        // Squares of float64 values above ~1e154 overflow although the norm
        // itself may be representable: retry scaled by the largest |g|.
        double m = max_abs(params, n);
        if (isfinite(m) && m > 0)
            total = m * sqrt(sum_squares(params, n, 1.0 / m));
        if (!isfinite(total))
            return tg__fail(TG_ERANGE, "%s: total gradient norm is %g; gradients left "
                            "unchanged", fn, total);
    }
    double coef = max_norm / (total + 1e-6);
    if (coef < 1) {
        for (int i = 0; i < n; i++) {
            tg_tensor *g = params[i]->grad;
            if (!g)
                continue;
            if (g->dtype == TG_F32) {
                float *x = g->data, c = (float)coef;
                for (int64_t k = 0; k < g->numel; k++)
                    x[k] *= c;
            } else {
                double *x = g->data;
                for (int64_t k = 0; k < g->numel; k++)
                    x[k] *= coef;
            }
        }
    }
    if (total_norm_out)
        *total_norm_out = total;
    return TG_OK;
}

tg_status tg_clip_grad_value(tg_tensor *const *params, int n, double clip)
{
    static const char fn[] = "tg_clip_grad_value";
    tg_status st = check_params(fn, params, n);
    if (st != TG_OK)
        return st;
    if (!(clip >= 0))
        return tg__fail(TG_EINVAL, "%s: clip %g must be >= 0", fn, clip);
    for (int i = 0; i < n; i++) {
        tg_tensor *g = params[i]->grad;
        if (!g)
            continue;
        // Comparisons rather than fmin/fmax: those would turn NaN into the bound.
        if (g->dtype == TG_F32) {
            float *x = g->data, hi = (float)clip, lo = -hi;
            for (int64_t k = 0; k < g->numel; k++)
                x[k] = x[k] > hi ? hi : x[k] < lo ? lo : x[k];
        } else {
            double *x = g->data, hi = clip, lo = -clip;
            for (int64_t k = 0; k < g->numel; k++)
                x[k] = x[k] > hi ? hi : x[k] < lo ? lo : x[k];
        }
    }
    return TG_OK;
}
