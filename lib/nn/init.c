/* init.c - weight initialisers (tg_init_tensor) and the helper that makes a
 * layer's parameter tensor. The formulas are listed in nn.h and docs/layers.md;
 * the layers decide the fans. */
#include <math.h>

#include "nn/nn_internal.h"

/* Standard deviation of a standard normal truncated to [-2, 2]. Keras divides
 * by it so that the truncated values keep the intended variance. */
#define TRUNC_STD 0.87962566103423978

const char *tg_init_name(tg_init_kind kind)
{
    switch (kind) {
    case TG_INIT_DEFAULT:
        return "default";
    case TG_INIT_ZEROS:
        return "zeros";
    case TG_INIT_CONSTANT:
        return "constant";
    case TG_INIT_GLOROT_UNIFORM:
        return "glorot_uniform";
    case TG_INIT_GLOROT_NORMAL:
        return "glorot_normal";
    case TG_INIT_HE_UNIFORM:
        return "he_uniform";
    case TG_INIT_HE_NORMAL:
        return "he_normal";
    case TG_INIT_LECUN_NORMAL:
        return "lecun_normal";
    case TG_INIT_TORCH_UNIFORM:
        return "torch_uniform";
    }
    return "?";
}

bool tg__init_valid(tg_init init)
{
    if ((unsigned)init.kind > (unsigned)TG_INIT_TORCH_UNIFORM)
        return false;
    return init.kind != TG_INIT_CONSTANT || isfinite(init.value);
}

static void fill_uniform(tg_tensor *t, double limit, tg_rng *rng)
{
    for (int64_t i = 0; i < t->numel; i++)
        tg__set(t, i, limit * (2.0 * tg_rng_uniform(rng) - 1.0));
}

static void fill_truncated_normal(tg_tensor *t, double std, tg_rng *rng)
{
    double s = std / TRUNC_STD;
    for (int64_t i = 0; i < t->numel; i++) {
        double z;
        do
            z = tg_rng_normal(rng);
        while (fabs(z) > 2.0);
        tg__set(t, i, s * z);
    }
}

tg_status tg_init_tensor(tg_tensor *t, tg_init init, int64_t fan_in, int64_t fan_out,
                         tg_rng *rng)
{
    static const char fn[] = "tg_init_tensor";
    if (!t || !rng)
        return tg__fail(TG_EINVAL, "%s: %s is NULL", fn, !t ? "tensor" : "rng");
    if (fan_in < 0 || fan_out < 0)
        return tg__fail(TG_EINVAL, "%s: negative fan (fan_in %lld, fan_out %lld)", fn,
                        (long long)fan_in, (long long)fan_out);
    if (init.kind == TG_INIT_DEFAULT)
        return tg__fail(TG_EINVAL, "%s: TG_INIT_DEFAULT depends on a model's scheme; "
                                   "pass a concrete kind", fn);
    if (!tg__init_valid(init)) {
        if (init.kind == TG_INIT_CONSTANT)
            return tg__fail(TG_EINVAL, "%s: constant %g is not finite", fn, init.value);
        return tg__fail(TG_EINVAL, "%s: unknown init kind %d", fn, (int)init.kind);
    }
    // Keras clamps the fans to at least 1 so that an empty dimension cannot
    // divide by zero.
    double fi = fan_in > 0 ? (double)fan_in : 1.0;
    double fo = fan_out > 0 ? (double)fan_out : 1.0;
    switch (init.kind) {
    case TG_INIT_ZEROS:
        return tg_tensor_fill(t, 0.0);
    case TG_INIT_CONSTANT:
        return tg_tensor_fill(t, init.value);
    case TG_INIT_GLOROT_UNIFORM:
        fill_uniform(t, sqrt(6.0 / (fi + fo)), rng);
        break;
    case TG_INIT_GLOROT_NORMAL:
        fill_truncated_normal(t, sqrt(2.0 / (fi + fo)), rng);
        break;
    case TG_INIT_HE_UNIFORM:
        fill_uniform(t, sqrt(6.0 / fi), rng);
        break;
    case TG_INIT_HE_NORMAL:
        fill_truncated_normal(t, sqrt(2.0 / fi), rng);
        break;
    case TG_INIT_LECUN_NORMAL:
        fill_truncated_normal(t, sqrt(1.0 / fi), rng);
        break;
    case TG_INIT_TORCH_UNIFORM:
        // PyTorch: bound 1/sqrt(fan_in) for both weight and bias, 0 without inputs.
        fill_uniform(t, fan_in > 0 ? 1.0 / sqrt((double)fan_in) : 0.0, rng);
        break;
    case TG_INIT_DEFAULT:
        break;
    }
    return TG_OK;
}

tg_tensor *tg__make_param(const tg__build_ctx *ctx, int ndim, const int64_t *shape,
                          tg_init init, bool is_bias, int64_t fan_in, int64_t fan_out)
{
    if (init.kind == TG_INIT_DEFAULT) {
        if (ctx->scheme == TG_SCHEME_PYTORCH)
            init = TG_INIT(TORCH_UNIFORM);
        else
            init = is_bias ? TG_INIT(ZEROS) : TG_INIT(GLOROT_UNIFORM);
    }
    tg_tensor *t = tg__tensor_alloc(NULL, ctx->where, ctx->dtype, ndim, shape, false);
    if (!t)
        return NULL;
    if (tg_init_tensor(t, init, fan_in, fan_out, ctx->rng) != TG_OK ||
        tg_tensor_set_requires_grad(t, true) != TG_OK) {
        tg_tensor_free(t);
        return NULL;
    }
    return t;
}
