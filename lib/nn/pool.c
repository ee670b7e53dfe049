/* pool.c - the MaxPooling2D and AveragePooling2D layers on NCHW batches. The
 * pooling ops are tg_max_pool2d / tg_avg_pool2d (nn_ops.h); this file checks
 * shapes and resolves Keras's padding modes. */
#include "nn/nn_internal.h"

typedef struct pool_layer {
    tg_layer base;
    tg_pool2d_opts opts; /* strides resolved (never 0) */
    int64_t pad_t, pad_b, pad_l, pad_r;
} pool_layer;

static tg_status pool_build(tg_layer *layer, const tg__build_ctx *ctx, int in_ndim,
                            const int64_t *in_shape)
{
    pool_layer *p = (pool_layer *)layer;
    const tg_pool2d_opts *o = &p->opts;
    char s[TG__SHAPE_STR];
    if (in_ndim != 3)
        return tg__fail(TG_ESHAPE, "%s: %s needs a 3-D (C, H, W) input per sample, got %s",
                        ctx->where, layer->vt->type, tg__batch_shape_str(s, in_ndim, in_shape));
    int64_t oh = tg__out_size(in_shape[1], o->kh, o->stride_h, 1, o->padding, o->pad_h,
                              &p->pad_t, &p->pad_b);
    int64_t ow = tg__out_size(in_shape[2], o->kw, o->stride_w, 1, o->padding, o->pad_w,
                              &p->pad_l, &p->pad_r);
    if (oh < 1 || ow < 1)
        return tg__fail(TG_ESHAPE, "%s: window %lldx%lld is larger than the input %s",
                        ctx->where, (long long)o->kh, (long long)o->kw,
                        tg__batch_shape_str(s, in_ndim, in_shape));
    layer->out_ndim = 3;
    layer->out_shape[0] = in_shape[0];
    layer->out_shape[1] = oh;
    layer->out_shape[2] = ow;
    return TG_OK;
}

static tg_pool2d_geom pool_geom(const pool_layer *p)
{
    const tg_pool2d_opts *o = &p->opts;
    // Keras averages over the real (unpadded) part of each window.
    return (tg_pool2d_geom){.kernel_h = o->kh, .kernel_w = o->kw, .stride_h = o->stride_h,
                            .stride_w = o->stride_w, .padding = TG_PAD_EXPLICIT,
                            .pad_top = p->pad_t, .pad_bottom = p->pad_b, .pad_left = p->pad_l,
                            .pad_right = p->pad_r, .count_include_pad = false};
}

/* x (N,C,H,W) -> (N,C,OH,OW). */
static tg_tensor *pool_op(tg_tensor *x, bool max, const pool_layer *p)
{
    tg_pool2d_geom g = pool_geom(p);
    return max ? tg_max_pool2d(x, &g) : tg_avg_pool2d(x, &g);
}

static const tg__layer_vtable maxpool_vt;

bool tg__max_pool_layer_geom(const tg_layer *layer, tg_pool2d_geom *geom)
{
    if (layer->vt != &maxpool_vt)
        return false;
    const pool_layer *p = (const pool_layer *)layer;
    *geom = pool_geom(p);
    return true;
}

static tg_tensor *maxpool_forward(tg_layer *layer, tg_tensor *x, const tg__forward_ctx *ctx)
{
    return pool_op(x, true, (const pool_layer *)layer);
}

static tg_tensor *avgpool_forward(tg_layer *layer, tg_tensor *x, const tg__forward_ctx *ctx)
{
    return pool_op(x, false, (const pool_layer *)layer);
}

static const tg__layer_vtable maxpool_vt = {
    .type = "MaxPooling2D",
    .base = "max_pooling2d",
    .size = sizeof(pool_layer),
    .build = pool_build,
    .forward = maxpool_forward,
};

static const tg__layer_vtable avgpool_vt = {
    .type = "AveragePooling2D",
    .base = "average_pooling2d",
    .size = sizeof(pool_layer),
    .build = pool_build,
    .forward = avgpool_forward,
};

tg_pool2d_opts tg_pool2d_defaults(int64_t size)
{
    return (tg_pool2d_opts){.kh = size, .kw = size, .stride_h = size, .stride_w = size,
                            .padding = TG_PAD_VALID};
}

static tg_layer *pool_new(const tg__layer_vtable *vt, const char *fn, const tg_pool2d_opts *opts)
{
    if (!opts)
        return tg__fail_null(TG_EINVAL, "%s: opts is NULL", fn);
    tg_pool2d_opts o = *opts;
    if (o.kh < 1 || o.kw < 1)
        return tg__fail_null(TG_EINVAL, "%s: window %lldx%lld (need >= 1)", fn, (long long)o.kh,
                             (long long)o.kw);
    if (o.stride_h < 0 || o.stride_w < 0)
        return tg__fail_null(TG_EINVAL, "%s: stride %lldx%lld (need >= 1, or 0 for the window)",
                             fn, (long long)o.stride_h, (long long)o.stride_w);
    if ((unsigned)o.padding > (unsigned)TG_PAD_EXPLICIT)
        return tg__fail_null(TG_EINVAL, "%s: unknown padding %d", fn, (int)o.padding);
    // Every window must hold a real element, or max and average have nothing
    // to work on (PyTorch's rule).
    if (o.padding == TG_PAD_EXPLICIT &&
        (o.pad_h < 0 || o.pad_w < 0 || o.pad_h > o.kh / 2 || o.pad_w > o.kw / 2))
        return tg__fail_null(TG_EINVAL, "%s: padding %lldx%lld must be >= 0 and at most half "
                                        "the window %lldx%lld", fn, (long long)o.pad_h,
                             (long long)o.pad_w, (long long)o.kh, (long long)o.kw);
    const int64_t big = (int64_t)1 << 30;
    if (o.kh > big || o.kw > big || o.stride_h > big || o.stride_w > big)
        return tg__fail_null(TG_EINVAL, "%s: sizes beyond 2^30 are not supported", fn);
    if (o.stride_h == 0)
        o.stride_h = o.kh;
    if (o.stride_w == 0)
        o.stride_w = o.kw;
    pool_layer *p = (pool_layer *)tg__layer_alloc(vt, fn);
    if (!p)
        return NULL;
    p->opts = o;
    return &p->base;
}

tg_layer *tg_layer_maxpool2d_ex(const tg_pool2d_opts *opts)
{
    return pool_new(&maxpool_vt, "tg_layer_maxpool2d", opts);
}

tg_layer *tg_layer_avgpool2d_ex(const tg_pool2d_opts *opts)
{
    return pool_new(&avgpool_vt, "tg_layer_avgpool2d", opts);
}

tg_layer *tg_layer_maxpool2d(int64_t size)
{
    tg_pool2d_opts o = tg_pool2d_defaults(size);
    return tg_layer_maxpool2d_ex(&o);
}

tg_layer *tg_layer_avgpool2d(int64_t size)
{
    tg_pool2d_opts o = tg_pool2d_defaults(size);
    return tg_layer_avgpool2d_ex(&o);
}

/* ---- GlobalAveragePooling2D ---- */

static tg_status gap_build(tg_layer *layer, const tg__build_ctx *ctx, int in_ndim,
                           const int64_t *in_shape)
{
    if (in_ndim != 3)
        return tg__need_shape(layer, ctx->where, "a 3-D (C, H, W) input", in_ndim, in_shape);
    layer->out_ndim = 1;
    layer->out_shape[0] = in_shape[0];
    return TG_OK;
}

/* Any image size with the same channels. */
static tg_status gap_accepts(const tg_layer *layer, int in_ndim, const int64_t *in_shape,
                             const char *where)
{
    if (in_ndim != 3 || in_shape[0] != layer->in_shape[0]) {
        char s[TG__SHAPE_STR];
        return tg__fail(TG_ESHAPE, "%s: input %s, but the layer was built for %lld channels "
                        "(C, H, W)", where, tg__batch_shape_str(s, in_ndim, in_shape),
                        (long long)layer->in_shape[0]);
    }
    return TG_OK;
}

/* x (N,C,H,W) -> (N,C). */
static tg_tensor *gap_forward(tg_layer *layer, tg_tensor *x, const tg__forward_ctx *ctx)
{
    return tg_mean(x, (const int[]){2, 3}, 2, false);
}

static const tg__layer_vtable gap_vt = {
    .type = "GlobalAveragePooling2D",
    .base = "global_average_pooling2d",
    .size = sizeof(tg_layer),
    .build = gap_build,
    .forward = gap_forward,
    .accepts = gap_accepts,
};

tg_layer *tg_layer_global_avgpool2d(void)
{
    return tg__layer_alloc(&gap_vt, "tg_layer_global_avgpool2d");
}
