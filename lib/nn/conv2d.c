/* conv2d.c - the Conv2D layer: y = act(conv2d(x, W) + b) on NCHW batches,
 * W (OC, C, KH, KW), and the Conv1D layer on (N, C, L), which runs as a
 * Conv2D of height 1. The convolution itself is tg_conv2d (nn_ops.h), or
 * with a ReLU the fused tg__conv2d_relu (lib/ops); this file checks shapes,
 * resolves the padding mode, owns W and b. */
#include "nn/nn_internal.h"
#include "ops/ops_internal.h"

typedef struct conv_layer {
    tg_layer base;
    int64_t filters, kh, kw;
    tg_activation act;
    tg_conv2d_opts opts;
    // Resolved at build time: padding above, below, left, right.
    int64_t pad_t, pad_b, pad_l, pad_r;
} conv_layer;

static tg_status conv_build(tg_layer *layer, const tg__build_ctx *ctx, int in_ndim,
                            const int64_t *in_shape)
{
    conv_layer *c = (conv_layer *)layer;
    const tg_conv2d_opts *o = &c->opts;
    char s[TG__SHAPE_STR];
    if (in_ndim != 3)
        return tg__fail(TG_ESHAPE, "%s: Conv2D needs a 3-D (C, H, W) input per sample, got %s",
                        ctx->where, tg__batch_shape_str(s, in_ndim, in_shape));
    int64_t ch = in_shape[0];
    int64_t oh = tg__out_size(in_shape[1], c->kh, o->stride_h, o->dilation_h, o->padding,
                              o->pad_h, &c->pad_t, &c->pad_b);
    int64_t ow = tg__out_size(in_shape[2], c->kw, o->stride_w, o->dilation_w, o->padding,
                              o->pad_w, &c->pad_l, &c->pad_r);
    if (oh < 1 || ow < 1)
        return tg__fail(TG_ESHAPE, "%s: kernel %lldx%lld (dilation %lldx%lld, padding %lldx%lld) "
                                   "is larger than the input %s", ctx->where, (long long)c->kh,
                        (long long)c->kw, (long long)o->dilation_h, (long long)o->dilation_w,
                        (long long)(o->padding == TG_PAD_EXPLICIT ? o->pad_h : 0),
                        (long long)(o->padding == TG_PAD_EXPLICIT ? o->pad_w : 0),
                        tg__batch_shape_str(s, in_ndim, in_shape));
    // Keras's receptive-field rule: fans count the kernel's spatial extent.
    int64_t fan_in = ch * c->kh * c->kw, fan_out = c->filters * c->kh * c->kw;
    layer->params[0] = tg__make_param(ctx, 4, (const int64_t[]){c->filters, ch, c->kh, c->kw},
                                      o->kernel_init, false, fan_in, fan_out);
    if (!layer->params[0])
        return tg_last_status();
    layer->n_params = 1;
    if (o->use_bias) {
        layer->params[1] = tg__make_param(ctx, 1, &c->filters, o->bias_init, true, fan_in,
                                          fan_out);
        if (!layer->params[1])
            return tg_last_status();
        layer->n_params = 2;
    }
    layer->out_ndim = 3;
    layer->out_shape[0] = c->filters;
    layer->out_shape[1] = oh;
    layer->out_shape[2] = ow;
    return TG_OK;
}

/* The layer's stride, dilation and resolved padding. */
static tg_conv2d_geom conv_geom(const conv_layer *c)
{
    const tg_conv2d_opts *o = &c->opts;
    return (tg_conv2d_geom){.stride_h = o->stride_h, .stride_w = o->stride_w,
                            .dilation_h = o->dilation_h, .dilation_w = o->dilation_w,
                            .padding = TG_PAD_EXPLICIT, .pad_top = c->pad_t,
                            .pad_bottom = c->pad_b, .pad_left = c->pad_l, .pad_right = c->pad_r};
}

/* x (N,C,H,W), w (OC,C,KH,KW), b (OC) or NULL -> (N,OC,OH,OW). */
static tg_tensor *conv_op(tg_tensor *x, tg_tensor *w, tg_tensor *b, const conv_layer *c,
                          bool relu)
{
    tg_conv2d_geom g = conv_geom(c);
    // ReLU fused into the convolution (its GEMM's epilogue): the same bytes
    // and gradients as tg_relu after it, one pass and one tensor fewer.
    return relu ? tg__conv2d_relu(x, w, b, &g) : tg_conv2d(x, w, b, &g);
}

static tg_tensor *conv_forward(tg_layer *layer, tg_tensor *x, const tg__forward_ctx *ctx)
{
    conv_layer *c = (conv_layer *)layer;
    const tg_conv2d_opts *o = &c->opts;
    bool relu = c->act == TG_ACT_RELU;
    tg_tensor *y = conv_op(x, layer->params[0], o->use_bias ? layer->params[1] : NULL, c, relu);
    if (relu || (ctx->skip_final_act && tg__act_is_final(c->act)))
        return y;
    return tg__apply_act(y, c->act);
}

/* With a ReLU and a MaxPool2D next, the classic CNN block: one op that pools
 * each image's output while it is in cache, and whose backward makes each
 * image's gradient there too (lib/ops/conv_pool.c); the same bytes. */
static bool conv_pairs_with(const tg_layer *layer, const tg_layer *next)
{
    tg_pool2d_geom g;
    return ((const conv_layer *)layer)->act == TG_ACT_RELU && tg__max_pool_layer_geom(next, &g);
}

static tg_tensor *conv_forward_pair(tg_layer *layer, tg_layer *next, tg_tensor *x,
                                    const tg__forward_ctx *ctx)
{
    (void)ctx;
    const conv_layer *c = (const conv_layer *)layer;
    tg_conv2d_geom g = conv_geom(c);
    tg_pool2d_geom pg;
    tg__max_pool_layer_geom(next, &pg);
    return tg__conv2d_relu_max_pool2d(x, layer->params[0],
                                      c->opts.use_bias ? layer->params[1] : NULL, &g, &pg);
}

static const tg__layer_vtable conv_vt = {
    .type = "Conv2D",
    .base = "conv2d",
    .size = sizeof(conv_layer),
    .build = conv_build,
    .forward = conv_forward,
    .pairs_with = conv_pairs_with,
    .forward_pair = conv_forward_pair,
};

tg_conv2d_opts tg_conv2d_defaults(void)
{
    return (tg_conv2d_opts){.stride_h = 1, .stride_w = 1, .padding = TG_PAD_VALID,
                            .dilation_h = 1, .dilation_w = 1, .use_bias = true,
                            .kernel_init = TG_INIT(DEFAULT), .bias_init = TG_INIT(DEFAULT)};
}

tg_layer *tg_layer_conv2d_ex(int64_t filters, int64_t kh, int64_t kw, tg_activation act,
                             const tg_conv2d_opts *opts)
{
    static const char fn[] = "tg_layer_conv2d";
    tg_conv2d_opts o = opts ? *opts : tg_conv2d_defaults();
    if (filters < 1)
        return tg__fail_null(TG_EINVAL, "%s: filters must be >= 1 (got %lld)", fn,
                             (long long)filters);
    if (kh < 1 || kw < 1)
        return tg__fail_null(TG_EINVAL, "%s: kernel %lldx%lld (need >= 1)", fn, (long long)kh,
                             (long long)kw);
    if (o.stride_h < 1 || o.stride_w < 1)
        return tg__fail_null(TG_EINVAL, "%s: stride %lldx%lld (need >= 1)", fn,
                             (long long)o.stride_h, (long long)o.stride_w);
    if (o.dilation_h < 1 || o.dilation_w < 1)
        return tg__fail_null(TG_EINVAL, "%s: dilation %lldx%lld (need >= 1)", fn,
                             (long long)o.dilation_h, (long long)o.dilation_w);
    if ((unsigned)o.padding > (unsigned)TG_PAD_EXPLICIT)
        return tg__fail_null(TG_EINVAL, "%s: unknown padding %d", fn, (int)o.padding);
    if (o.padding == TG_PAD_EXPLICIT && (o.pad_h < 0 || o.pad_w < 0))
        return tg__fail_null(TG_EINVAL, "%s: padding %lldx%lld (need >= 0)", fn,
                             (long long)o.pad_h, (long long)o.pad_w);
    // Keep dilation*(k-1)+1 and the fans far from overflow.
    const int64_t big = (int64_t)1 << 30;
    if (kh > big || kw > big || o.dilation_h > big || o.dilation_w > big || filters > big ||
        (o.padding == TG_PAD_EXPLICIT && (o.pad_h > big || o.pad_w > big)))
        return tg__fail_null(TG_EINVAL, "%s: sizes beyond 2^30 are not supported", fn);
    if (!tg__act_valid(act))
        return tg__fail_null(TG_EINVAL, "%s: unknown activation %d", fn, (int)act);
    if (!tg__init_valid(o.kernel_init) || !tg__init_valid(o.bias_init))
        return tg__fail_null(TG_EINVAL, "%s: invalid %s initialiser", fn,
                             tg__init_valid(o.kernel_init) ? "bias" : "kernel");
    conv_layer *c = (conv_layer *)tg__layer_alloc(&conv_vt, fn);
    if (!c)
        return NULL;
    c->filters = filters;
    c->kh = kh;
    c->kw = kw;
    c->act = act;
    c->opts = o;
    return &c->base;
}

tg_layer *tg_layer_conv2d(int64_t filters, int64_t kh, int64_t kw, tg_activation act)
{
    return tg_layer_conv2d_ex(filters, kh, kw, act, NULL);
}

/* ---- Conv1D ---- */

typedef struct conv1d_layer {
    tg_layer base;
    int64_t filters, k;
    tg_activation act;
    tg_conv1d_opts opts;
    int64_t pad_l, pad_r; /* resolved at build time */
} conv1d_layer;

static tg_status conv1d_shape(const conv1d_layer *c, int in_ndim, const int64_t *in_shape,
                              const char *where, int64_t *ol, int64_t *pad_l, int64_t *pad_r)
{
    const tg_conv1d_opts *o = &c->opts;
    char s[TG__SHAPE_STR];
    if (in_ndim != 2)
        return tg__need_shape(&c->base, where, "a 2-D (C, L) input", in_ndim, in_shape);
    *ol = tg__out_size(in_shape[1], c->k, o->stride, o->dilation, o->padding, o->pad, pad_l,
                       pad_r);
    if (*ol < 1)
        return tg__fail(TG_ESHAPE, "%s: kernel %lld (dilation %lld, padding %lld) is larger "
                                   "than the input %s", where, (long long)c->k,
                        (long long)o->dilation,
                        (long long)(o->padding == TG_PAD_EXPLICIT ? o->pad : 0),
                        tg__batch_shape_str(s, in_ndim, in_shape));
    return TG_OK;
}

static tg_status conv1d_build(tg_layer *layer, const tg__build_ctx *ctx, int in_ndim,
                              const int64_t *in_shape)
{
    conv1d_layer *c = (conv1d_layer *)layer;
    const tg_conv1d_opts *o = &c->opts;
    int64_t ol = 0;
    tg_status st = conv1d_shape(c, in_ndim, in_shape, ctx->where, &ol, &c->pad_l, &c->pad_r);
    if (st != TG_OK)
        return st;
    int64_t ch = in_shape[0];
    int64_t fan_in = ch * c->k, fan_out = c->filters * c->k;
    layer->params[0] = tg__make_param(ctx, 3, (const int64_t[]){c->filters, ch, c->k},
                                      o->kernel_init, false, fan_in, fan_out);
    if (!layer->params[0])
        return tg_last_status();
    layer->n_params = 1;
    if (o->use_bias) {
        layer->params[1] = tg__make_param(ctx, 1, &c->filters, o->bias_init, true, fan_in,
                                          fan_out);
        if (!layer->params[1])
            return tg_last_status();
        layer->n_params = 2;
    }
    layer->out_ndim = 2;
    layer->out_shape[0] = c->filters;
    layer->out_shape[1] = ol;
    return TG_OK;
}

/* The same channels, any length the kernel fits (SAME padding is resolved
 * again for each length, so it is the build's only when the length is). */
static tg_status conv1d_accepts(const tg_layer *layer, int in_ndim, const int64_t *in_shape,
                                const char *where)
{
    const conv1d_layer *c = (const conv1d_layer *)layer;
    int64_t ol, pl, pr;
    tg_status st = conv1d_shape(c, in_ndim, in_shape, where, &ol, &pl, &pr);
    if (st == TG_OK && in_shape[0] != layer->in_shape[0]) {
        char s[TG__SHAPE_STR];
        return tg__fail(TG_ESHAPE, "%s: input %s, but the layer was built for %lld channels",
                        where, tg__batch_shape_str(s, in_ndim, in_shape),
                        (long long)layer->in_shape[0]);
    }
    return st;
}

/* x (N,C,L), w (OC,C,K), b (OC) -> (N,OC,OL) through x (N,C,1,L), w (OC,C,1,K). */
static tg_tensor *conv1d_forward(tg_layer *layer, tg_tensor *x, const tg__forward_ctx *ctx)
{
    conv1d_layer *c = (conv1d_layer *)layer;
    const tg_conv1d_opts *o = &c->opts;
    if (!x)
        return NULL;
    int64_t n = x->shape[0], ch = x->shape[1], len = x->shape[2];
    int64_t pad_l = c->pad_l, pad_r = c->pad_r;
    if (len != layer->in_shape[1]) // SAME padding depends on the length
        tg__out_size(len, c->k, o->stride, o->dilation, o->padding, o->pad, &pad_l, &pad_r);
    tg_conv2d_geom g = {.stride_h = 1, .stride_w = o->stride, .dilation_h = 1,
                        .dilation_w = o->dilation, .padding = TG_PAD_EXPLICIT,
                        .pad_left = pad_l, .pad_right = pad_r};
    tg_tensor *w = layer->params[0];
    tg_tensor *x4 = tg_reshape(x, 4, (const int64_t[]){n, ch, 1, len});
    tg_tensor *w4 = tg_reshape(w, 4, (const int64_t[]){w->shape[0], w->shape[1], 1, c->k});
    tg_tensor *y = tg_conv2d(x4, w4, o->use_bias ? layer->params[1] : NULL, &g);
    if (y)
        y = tg_reshape(y, 3, (const int64_t[]){n, y->shape[1], y->shape[3]});
    if (ctx->skip_final_act && tg__act_is_final(c->act))
        return y;
    return tg__apply_act(y, c->act);
}

static const tg__layer_vtable conv1d_vt = {
    .type = "Conv1D",
    .base = "conv1d",
    .size = sizeof(conv1d_layer),
    .build = conv1d_build,
    .forward = conv1d_forward,
    .accepts = conv1d_accepts,
};

tg_conv1d_opts tg_conv1d_defaults(void)
{
    return (tg_conv1d_opts){.stride = 1, .padding = TG_PAD_VALID, .dilation = 1,
                            .use_bias = true, .kernel_init = TG_INIT(DEFAULT),
                            .bias_init = TG_INIT(DEFAULT)};
}

tg_layer *tg_layer_conv1d_ex(int64_t filters, int64_t k, tg_activation act,
                             const tg_conv1d_opts *opts)
{
    static const char fn[] = "tg_layer_conv1d";
    tg_conv1d_opts o = opts ? *opts : tg_conv1d_defaults();
    const int64_t big = (int64_t)1 << 30;
    if (filters < 1 || filters > big)
        return tg__fail_null(TG_EINVAL, "%s: filters must be in 1..2^30 (got %lld)", fn,
                             (long long)filters);
    if (k < 1 || k > big)
        return tg__fail_null(TG_EINVAL, "%s: kernel %lld (need 1..2^30)", fn, (long long)k);
    if (o.stride < 1 || o.stride > big)
        return tg__fail_null(TG_EINVAL, "%s: stride %lld (need 1..2^30)", fn,
                             (long long)o.stride);
    if (o.dilation < 1 || o.dilation > big)
        return tg__fail_null(TG_EINVAL, "%s: dilation %lld (need 1..2^30)", fn,
                             (long long)o.dilation);
    if ((unsigned)o.padding > (unsigned)TG_PAD_EXPLICIT)
        return tg__fail_null(TG_EINVAL, "%s: unknown padding %d", fn, (int)o.padding);
    if (o.padding == TG_PAD_EXPLICIT && (o.pad < 0 || o.pad > big))
        return tg__fail_null(TG_EINVAL, "%s: padding %lld (need 0..2^30)", fn,
                             (long long)o.pad);
    if (!tg__act_valid(act))
        return tg__fail_null(TG_EINVAL, "%s: unknown activation %d", fn, (int)act);
    if (!tg__init_valid(o.kernel_init) || !tg__init_valid(o.bias_init))
        return tg__fail_null(TG_EINVAL, "%s: invalid %s initialiser", fn,
                             tg__init_valid(o.kernel_init) ? "bias" : "kernel");
    conv1d_layer *c = (conv1d_layer *)tg__layer_alloc(&conv1d_vt, fn);
    if (!c)
        return NULL;
    c->filters = filters;
    c->k = k;
    c->act = act;
    c->opts = o;
    return &c->base;
}

tg_layer *tg_layer_conv1d(int64_t filters, int64_t k, tg_activation act)
{
    return tg_layer_conv1d_ex(filters, k, act, NULL);
}
