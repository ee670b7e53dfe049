/* norm.c - the normalisation layers: BatchNorm1D and BatchNorm2D (batch
 * statistics per channel while training, running ones in evaluation, kept in
 * non-trainable buffers), a composition of ops, and LayerNorm (statistics
 * over the last axes of each sample) on the fused tg_layer_norm op. */
#include <math.h>

#include "nn/nn_internal.h"

/* ---- BatchNorm ---- */

typedef struct bn_layer {
    tg_layer base;
    bool have_opts; /* false: the model's scheme decides at build time */
    tg_batchnorm_opts opts;
} bn_layer;

tg_batchnorm_opts tg_batchnorm_defaults(tg_init_scheme scheme)
{
    if (scheme == TG_SCHEME_PYTORCH)
        return (tg_batchnorm_opts){.momentum = 0.9, .eps = 1e-5, .affine = true,
                                   .unbiased = true};
    return (tg_batchnorm_opts){.momentum = 0.99, .eps = 1e-3, .affine = true,
                               .unbiased = false};
}

static bool is_2d(const tg_layer *layer);

static tg_status bn_check(const tg_layer *layer, int in_ndim, const int64_t *in_shape,
                          const char *where)
{
    if (is_2d(layer) ? in_ndim != 3 : (in_ndim != 1 && in_ndim != 2))
        return tg__need_shape(layer, where,
                              is_2d(layer) ? "a 3-D (C, H, W) input" : "a (C) or (C, L) input",
                              in_ndim, in_shape);
    return TG_OK;
}

static tg_status bn_build(tg_layer *layer, const tg__build_ctx *ctx, int in_ndim,
                          const int64_t *in_shape)
{
    bn_layer *b = (bn_layer *)layer;
    tg_status st = bn_check(layer, in_ndim, in_shape, ctx->where);
    if (st != TG_OK)
        return st;
    if (!b->have_opts)
        b->opts = tg_batchnorm_defaults(ctx->scheme);
    int64_t ch = in_shape[0];
    if (b->opts.affine) {
        tg__build_ctx c = *ctx;
        layer->params[0] = tg__make_param(&c, 1, &ch, TG_INIT_CONST(1.0), false, ch, ch);
        if (!layer->params[0])
            return tg_last_status();
        layer->n_params = 1;
        layer->params[1] = tg__make_param(&c, 1, &ch, TG_INIT(ZEROS), true, ch, ch);
        if (!layer->params[1])
            return tg_last_status();
        layer->n_params = 2;
    }
    st = tg__add_buffer(layer, ctx, "running_mean", 1, &ch, 0.0);
    if (st == TG_OK)
        st = tg__add_buffer(layer, ctx, "running_var", 1, &ch, 1.0);
    if (st != TG_OK)
        return st;
    layer->out_ndim = in_ndim;
    for (int i = 0; i < in_ndim; i++)
        layer->out_shape[i] = in_shape[i];
    return TG_OK;
}

/* The same channels; BatchNorm1D any length, BatchNorm2D any image size. */
static tg_status bn_accepts(const tg_layer *layer, int in_ndim, const int64_t *in_shape,
                            const char *where)
{
    tg_status st = bn_check(layer, in_ndim, in_shape, where);
    if (st == TG_OK && (in_ndim != layer->in_ndim || in_shape[0] != layer->in_shape[0])) {
        char a[TG__SHAPE_STR], b[TG__SHAPE_STR];
        return tg__fail(TG_ESHAPE, "%s: input %s, but the layer was built for %s", where,
                        tg__batch_shape_str(a, in_ndim, in_shape),
                        tg__batch_shape_str(b, layer->in_ndim, layer->in_shape));
    }
    return st;
}

/* v (C) as (1, C, 1, ...) to broadcast against x of ndim dims. */
static tg_tensor *per_channel(tg_tensor *v, int ndim)
{
    int64_t shape[TG_MAX_DIMS];
    for (int i = 0; i < ndim; i++)
        shape[i] = 1;
    shape[1] = v->shape[0];
    return tg_reshape(v, ndim, shape);
}

/* x (N, C, ...) -> (N, C, ...). */
static tg_tensor *bn_forward(tg_layer *layer, tg_tensor *x, const tg__forward_ctx *ctx)
{
    bn_layer *b = (bn_layer *)layer;
    const tg_batchnorm_opts *o = &b->opts;
    if (!x)
        return NULL;
    int nd = x->ndim;
    int axes[TG_MAX_DIMS], n_axes = 0;
    int64_t count = 1;
    for (int i = 0; i < nd; i++)
        if (i != 1) {
            axes[n_axes++] = i;
            count *= x->shape[i];
        }
    tg_tensor *rm = layer->buffers[0], *rv = layer->buffers[1];
    tg_tensor *y;
    if (ctx->training) {
        if (count < 2)
            return tg__fail_null(TG_ESHAPE, "%s: layer '%s' (%s): training needs more than "
                                 "one value per channel (input %lldx%lld...); use "
                                 "evaluation mode", ctx->fn, layer->name, layer->vt->type,
                                 (long long)x->shape[0], (long long)x->shape[1]);
        tg_tensor *mean = tg_mean(x, axes, n_axes, true);
        tg_tensor *xc = tg_sub(x, mean);
        tg_tensor *var = tg_mean(tg_mul(xc, xc), axes, n_axes, true);
        y = tg_mul(xc, tg_rsqrt(tg_add_scalar(var, o->eps)));
        if (!y)
            return NULL;
        // The running statistics are state, not graph: updated in place from
        // the values just computed.
        double m = o->momentum, corr = o->unbiased ? (double)count / (double)(count - 1) : 1.0;
        for (int64_t c = 0; c < rm->numel; c++) {
            tg__set(rm, c, m * tg__get(rm, c) + (1 - m) * tg__get(mean, c));
            tg__set(rv, c, m * tg__get(rv, c) + (1 - m) * tg__get(var, c) * corr);
        }
    } else {
        y = tg_mul(tg_sub(x, per_channel(rm, nd)),
                   tg_rsqrt(tg_add_scalar(per_channel(rv, nd), o->eps)));
    }
    if (o->affine)
        y = tg_add(tg_mul(y, per_channel(layer->params[0], nd)),
                   per_channel(layer->params[1], nd));
    return y;
}

static const tg__layer_vtable bn1d_vt = {
    .type = "BatchNorm1D",
    .base = "batch_norm1d",
    .size = sizeof(bn_layer),
    .build = bn_build,
    .forward = bn_forward,
    .accepts = bn_accepts,
};

static const tg__layer_vtable bn2d_vt = {
    .type = "BatchNorm2D",
    .base = "batch_norm2d",
    .size = sizeof(bn_layer),
    .build = bn_build,
    .forward = bn_forward,
    .accepts = bn_accepts,
};

static bool is_2d(const tg_layer *layer) { return layer->vt == &bn2d_vt; }

static tg_layer *bn_new(const tg__layer_vtable *vt, const char *fn, const tg_batchnorm_opts *opts)
{
    if (opts && !(opts->momentum >= 0.0 && opts->momentum <= 1.0))
        return tg__fail_null(TG_EINVAL, "%s: momentum %g outside [0, 1] (Keras's convention: "
                                        "PyTorch's momentum p is 1 - p)", fn, opts->momentum);
    if (opts && !(opts->eps > 0.0 && isfinite(opts->eps)))
        return tg__fail_null(TG_EINVAL, "%s: eps %g (need a finite eps > 0)", fn, opts->eps);
    bn_layer *b = (bn_layer *)tg__layer_alloc(vt, fn);
    if (b && opts) {
        b->have_opts = true;
        b->opts = *opts;
    }
    return b ? &b->base : NULL;
}

tg_layer *tg_layer_batchnorm1d(const tg_batchnorm_opts *opts)
{
    return bn_new(&bn1d_vt, "tg_layer_batchnorm1d", opts);
}

tg_layer *tg_layer_batchnorm2d(const tg_batchnorm_opts *opts)
{
    return bn_new(&bn2d_vt, "tg_layer_batchnorm2d", opts);
}

/* ---- LayerNorm ---- */

typedef struct ln_layer {
    tg_layer base;
    int n_dims;
    double eps; /* <= 0 until build: the scheme's */
    bool affine;
} ln_layer;

static tg_status ln_build(tg_layer *layer, const tg__build_ctx *ctx, int in_ndim,
                          const int64_t *in_shape)
{
    ln_layer *l = (ln_layer *)layer;
    if (l->n_dims > in_ndim) {
        char need[64];
        snprintf(need, sizeof need, "at least %d dims (n_dims) of input", l->n_dims);
        return tg__need_shape(layer, ctx->where, need, in_ndim, in_shape);
    }
    if (l->eps <= 0)
        l->eps = ctx->scheme == TG_SCHEME_PYTORCH ? 1e-5 : 1e-3;
    const int64_t *norm_shape = in_shape + in_ndim - l->n_dims;
    if (l->affine) {
        int64_t fan = 1;
        for (int i = 0; i < l->n_dims; i++)
            fan *= norm_shape[i];
        layer->params[0] = tg__make_param(ctx, l->n_dims, norm_shape, TG_INIT_CONST(1.0), false,
                                          fan, fan);
        if (!layer->params[0])
            return tg_last_status();
        layer->n_params = 1;
        layer->params[1] = tg__make_param(ctx, l->n_dims, norm_shape, TG_INIT(ZEROS), true, fan,
                                          fan);
        if (!layer->params[1])
            return tg_last_status();
        layer->n_params = 2;
    }
    layer->out_ndim = in_ndim;
    for (int i = 0; i < in_ndim; i++)
        layer->out_shape[i] = in_shape[i];
    return TG_OK;
}

/* Any leading axes; the normalised ones as built. */
static tg_status ln_accepts(const tg_layer *layer, int in_ndim, const int64_t *in_shape,
                            const char *where)
{
    const ln_layer *l = (const ln_layer *)layer;
    bool ok = in_ndim >= l->n_dims;
    for (int i = 1; ok && i <= l->n_dims; i++)
        ok = in_shape[in_ndim - i] == layer->in_shape[layer->in_ndim - i];
    if (!ok) {
        char a[TG__SHAPE_STR], b[TG__SHAPE_STR];
        return tg__fail(TG_ESHAPE, "%s: input %s, but the layer normalises the last %d axes of "
                        "%s", where, tg__batch_shape_str(a, in_ndim, in_shape), l->n_dims,
                        tg__batch_shape_str(b, layer->in_ndim, layer->in_shape));
    }
    return TG_OK;
}

/* x (N, ..., d1..dk) -> the same, normalised over d1..dk (the fused op). */
static tg_tensor *ln_forward(tg_layer *layer, tg_tensor *x, const tg__forward_ctx *ctx)
{
    ln_layer *l = (ln_layer *)layer;
    return tg_layer_norm(x, l->n_dims, l->affine ? layer->params[0] : NULL,
                         l->affine ? layer->params[1] : NULL, l->eps);
}

static const tg__layer_vtable ln_vt = {
    .type = "LayerNormalization",
    .base = "layer_normalization",
    .size = sizeof(ln_layer),
    .build = ln_build,
    .forward = ln_forward,
    .accepts = ln_accepts,
};

tg_layer *tg_layer_layernorm(int n_dims, double eps, bool affine)
{
    static const char fn[] = "tg_layer_layernorm";
    if (n_dims < 1 || n_dims >= TG_MAX_DIMS)
        return tg__fail_null(TG_EINVAL, "%s: n_dims %d outside 1..%d", fn, n_dims,
                             TG_MAX_DIMS - 1);
    if (!isfinite(eps))
        return tg__fail_null(TG_EINVAL, "%s: eps %g is not finite", fn, eps);
    ln_layer *l = (ln_layer *)tg__layer_alloc(&ln_vt, fn);
    if (!l)
        return NULL;
    l->n_dims = n_dims;
    l->eps = eps;
    l->affine = affine;
    return &l->base;
}
