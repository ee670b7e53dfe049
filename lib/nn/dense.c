/* dense.c - the Dense (fully connected) layer: y = act(x @ W + b) with
 * W (in, units) in Keras's layout, so x @ W needs no transpose; the product,
 * bias and a ReLU are one fused op (tg__linear, lib/ops). Activations
 * are in simple.c. */
#include "nn/nn_internal.h"
#include "ops/ops_internal.h"

typedef struct dense_layer {
    tg_layer base;
    int64_t units;
    tg_activation act;
    tg_dense_opts opts;
} dense_layer;

static tg_status dense_build(tg_layer *layer, const tg__build_ctx *ctx, int in_ndim,
                             const int64_t *in_shape)
{
    dense_layer *d = (dense_layer *)layer;
    if (in_ndim < 1 || (in_ndim > 2 && !d->opts.last_axis)) {
        char s[TG__SHAPE_STR];
        return tg__fail(TG_ESHAPE, "%s: Dense needs a 1-D input per sample, got %s; add a "
                                   "Flatten layer before it", ctx->where,
                        tg__batch_shape_str(s, in_ndim, in_shape));
    }
    int64_t in = in_shape[in_ndim - 1];
    layer->params[0] = tg__make_param(ctx, 2, (const int64_t[]){in, d->units},
                                      d->opts.kernel_init, false, in, d->units);
    if (!layer->params[0])
        return tg_last_status();
    layer->n_params = 1;
    if (d->opts.use_bias) {
        layer->params[1] = tg__make_param(ctx, 1, &d->units, d->opts.bias_init, true, in,
                                          d->units);
        if (!layer->params[1])
            return tg_last_status();
        layer->n_params = 2;
    }
    layer->out_ndim = in_ndim;
    for (int i = 0; i + 1 < in_ndim; i++)
        layer->out_shape[i] = in_shape[i];
    layer->out_shape[in_ndim - 1] = d->units;
    return TG_OK;
}

/* Any leading axes (a sequence of another length), the same last one. */
static tg_status dense_accepts(const tg_layer *layer, int in_ndim, const int64_t *in_shape,
                               const char *where)
{
    const dense_layer *d = (const dense_layer *)layer;
    int64_t in = layer->params[0]->shape[0];
    if (in_ndim < 1 || (in_ndim > 2 && !d->opts.last_axis) || in_shape[in_ndim - 1] != in) {
        char s[TG__SHAPE_STR];
        return tg__fail(TG_ESHAPE, "%s: input %s, but the layer was built for %lld features on "
                        "the last axis%s", where, tg__batch_shape_str(s, in_ndim, in_shape),
                        (long long)in, d->opts.last_axis ? "" : " of a 1-D or 2-D sample");
    }
    return TG_OK;
}

static tg_tensor *dense_forward(tg_layer *layer, tg_tensor *x, const tg__forward_ctx *ctx)
{
    dense_layer *d = (dense_layer *)layer;
    tg_tensor *w = layer->params[0], *b = d->opts.use_bias ? layer->params[1] : NULL, *y;
    // An (N, F) batch: one op for x @ W + b and a ReLU (the GEMM's epilogue
    // adds the bias and clamps), the bytes and gradients of tg_matmul, tg_add
    // and tg_relu. A sequence (N, L, F): tg_matmul over the last axis, then
    // the bias and the activation as ops (tg__linear takes 2-D x only).
    bool fused = x && x->ndim == 2, relu = fused && d->act == TG_ACT_RELU;
    if (fused) {
        y = tg__linear(x, w, b, relu);
    } else {
        y = tg_matmul(x, w);
        if (b)
            y = tg_add(y, b);
    }
    if (relu || (ctx->skip_final_act && tg__act_is_final(d->act)))
        return y;
    // The features are the last axis (axis 1 of an (N, F) batch, as for the
    // other layers; the last of a sequence (N, L, F)).
    if (d->act == TG_ACT_SOFTMAX)
        return tg_softmax(y, -1);
    return tg__apply_act(y, d->act);
}

static const tg__layer_vtable dense_vt = {
    .type = "Dense",
    .base = "dense",
    .size = sizeof(dense_layer),
    .build = dense_build,
    .forward = dense_forward,
    .accepts = dense_accepts,
};

tg_dense_opts tg_dense_defaults(void)
{
    return (tg_dense_opts){.use_bias = true, .kernel_init = TG_INIT(DEFAULT),
                           .bias_init = TG_INIT(DEFAULT)};
}

tg_layer *tg_layer_dense_ex(int64_t units, tg_activation act, const tg_dense_opts *opts)
{
    static const char fn[] = "tg_layer_dense";
    tg_dense_opts o = opts ? *opts : tg_dense_defaults();
    if (units < 1)
        return tg__fail_null(TG_EINVAL, "%s: units must be >= 1 (got %lld)", fn,
                             (long long)units);
    if (!tg__act_valid(act))
        return tg__fail_null(TG_EINVAL, "%s: unknown activation %d", fn, (int)act);
    if (!tg__init_valid(o.kernel_init) || !tg__init_valid(o.bias_init))
        return tg__fail_null(TG_EINVAL, "%s: invalid %s initialiser", fn,
                             tg__init_valid(o.kernel_init) ? "bias" : "kernel");
    dense_layer *d = (dense_layer *)tg__layer_alloc(&dense_vt, fn);
    if (!d)
        return NULL;
    d->units = units;
    d->act = act;
    d->opts = o;
    return &d->base;
}

tg_layer *tg_layer_dense(int64_t units, tg_activation act)
{
    return tg_layer_dense_ex(units, act, NULL);
}
