/* pool.c - 2-D max and average pooling (NCHW).
 *
 * max_pool2d is take(x, argmax), argmax the flat index of each window's
 * chosen element: its gradient is put_add(g, argmax), whose own gradient is
 * a take, so it is differentiable to any order. The indices are not kept by
 * the forward pass (8 bytes an output, more than the output itself): without
 * a graph of the backward, one kernel writes put_add's bytes from x, y and g
 * directly; the recorded backward and the tangent find them again first.
 * avg_pool2d is linear; its gradient is avg_pool2d_grad (the adjoint, which
 * spreads each value over its window) and the adjoint's gradient is
 * avg_pool2d again. The three share pool_params. Kernels: kernels/pool.c. */
#include <string.h>

#include "ops/window_params.h"

#define POOL(nd) TG__PARAMS(nd, pool_params)

tg_pool2d_geom tg_pool2d_geom_square(int64_t k)
{
    return (tg_pool2d_geom){.kernel_h = k, .kernel_w = k, .padding = TG_PAD_VALID};
}

tg_status tg__pool_params_make(const char *fn, int ndim, const int64_t *shape,
                               const tg_pool2d_geom *geom, pool_params *p)
{
    char s[TG__SHAPE_STR];
    if (ndim != 4)
        return tg__fail(TG_ESHAPE, "%s: x must be 4-D (N, C, H, W), got %s", fn,
                        tg__shape_str(s, ndim, shape));
    if (!geom)
        return tg__fail(TG_EINVAL, "%s: geometry is NULL", fn);
    tg_pool2d_geom g = *geom;
    if (g.stride_h == 0)
        g.stride_h = g.kernel_h;
    if (g.stride_w == 0)
        g.stride_w = g.kernel_w;
    if (g.kernel_h < 1 || g.kernel_w < 1 || g.stride_h < 1 || g.stride_w < 1)
        return tg__fail(TG_EINVAL, "%s: kernel and stride must be >= 1 (kernel %lldx%lld, "
                                   "stride %lldx%lld)", fn, (long long)g.kernel_h,
                        (long long)g.kernel_w, (long long)g.stride_h, (long long)g.stride_w);
    // Bounding every size keeps the geometry's arithmetic within int64.
    int64_t big = shape[2] > shape[3] ? shape[2] : shape[3];
    const int64_t sizes[] = {g.kernel_h, g.kernel_w, g.stride_h, g.stride_w,
                             g.padding == TG_PAD_EXPLICIT ? g.pad_top : 0,
                             g.padding == TG_PAD_EXPLICIT ? g.pad_bottom : 0,
                             g.padding == TG_PAD_EXPLICIT ? g.pad_left : 0,
                             g.padding == TG_PAD_EXPLICIT ? g.pad_right : 0};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        big = sizes[k] > big ? sizes[k] : big;
    if (big > INT32_MAX)
        return tg__fail(TG_ERANGE, "%s: image, kernel, stride and padding sizes must be at "
                                   "most %lld (got %lld)", fn, (long long)INT32_MAX,
                        (long long)big);
    if (g.padding != TG_PAD_VALID && g.padding != TG_PAD_SAME && g.padding != TG_PAD_EXPLICIT)
        return tg__fail(TG_EINVAL, "%s: unknown padding mode %d", fn, (int)g.padding);
    p->kernel_h = g.kernel_h, p->kernel_w = g.kernel_w;
    p->stride_h = g.stride_h, p->stride_w = g.stride_w;
    p->count_include_pad = g.count_include_pad;
    tg__window_pads(g.padding, shape[2], g.kernel_h, g.stride_h, 1, g.pad_top, g.pad_bottom,
                    &p->pad_top, &p->pad_bottom);
    tg__window_pads(g.padding, shape[3], g.kernel_w, g.stride_w, 1, g.pad_left, g.pad_right,
                    &p->pad_left, &p->pad_right);
    // A window that could lie wholly in the padding would have nothing to pool.
    if (p->pad_top < 0 || p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0 ||
        p->pad_top >= p->kernel_h || p->pad_bottom >= p->kernel_h ||
        p->pad_left >= p->kernel_w || p->pad_right >= p->kernel_w)
        return tg__fail(TG_EINVAL, "%s: padding (%lld, %lld, %lld, %lld) must be >= 0 and "
                                   "smaller than the kernel %lldx%lld", fn,
                        (long long)p->pad_top, (long long)p->pad_bottom,
                        (long long)p->pad_left, (long long)p->pad_right,
                        (long long)p->kernel_h, (long long)p->kernel_w);
    memcpy(p->in_shape, shape, 4 * sizeof *shape);
    return TG_OK;
}

tg__pool_geom tg__pool_kernel_geom(const pool_params *p)
{
    const int64_t *xs = p->in_shape;
    tg__pool_geom g = {.planes = xs[0] * xs[1], .H = xs[2], .W = xs[3], .KH = p->kernel_h,
                       .KW = p->kernel_w, .SH = p->stride_h, .SW = p->stride_w,
                       .PT = p->pad_top, .PL = p->pad_left};
    g.OH = tg__window_out(g.H, g.KH, g.SH, 1, p->pad_top, p->pad_bottom);
    g.OW = tg__window_out(g.W, g.KW, g.SW, 1, p->pad_left, p->pad_right);
    if (g.OH < 0 || g.OW < 0)
        g.OH = g.OW = 0;
    return g;
}

tg_status tg__pool_fits(const char *fn, const pool_params *p)
{
    tg__pool_geom g = tg__pool_kernel_geom(p);
    if (g.OH < 1 || g.OW < 1)
        return tg__fail(TG_ESHAPE, "%s: window %lldx%lld does not fit the padded input "
                                   "%lldx%lld", fn, (long long)g.KH, (long long)g.KW,
                        (long long)(g.H + p->pad_top + p->pad_bottom),
                        (long long)(g.W + p->pad_left + p->pad_right));
    return TG_OK;
}

static tg_status pool_shape(const char *fn, tg_tensor *const *in, int n_in,
                            const void *params, int *ndim, int64_t *shape)
{
    const pool_params *p = params;
    if (tg__pool_fits(fn, p) != TG_OK)
        return TG_ESHAPE;
    tg__pool_geom g = tg__pool_kernel_geom(p);
    shape[0] = in[0]->shape[0], shape[1] = in[0]->shape[1], shape[2] = g.OH, shape[3] = g.OW;
    *ndim = 4;
    return TG_OK;
}

/* ---- max ---- */

static tg_status max_forward(tg_node *nd)
{
    tg__pool_geom g = tg__pool_kernel_geom(POOL(nd));
    tg_tensor *y = nd->out;
    if (y->dtype == TG_F32)
        tg__maxpool_f32(nd->in[0]->data, &g, y->data, NULL);
    else
        tg__maxpool_f64(nd->in[0]->data, &g, y->data, NULL);
    return TG_OK;
}

/* The forward's indices, found again (with the values, into scratch) on the
 * first call and kept on the tape; NULL with TG_ENOMEM recorded. */
static const int64_t *max_argmax(tg_node *nd)
{
    pool_params *p = POOL(nd);
    if (p->argmax)
        return p->argmax;
    const tg_tensor *x = nd->in[0], *y = nd->out;
    tg__pool_geom g = tg__pool_kernel_geom(p);
    int64_t *argmax = tg__tape_alloc(y->tape, "tg_max_pool2d",
                                     (size_t)y->numel * sizeof *argmax);
    void *values = argmax ? tg__tape_alloc(y->tape, "tg_max_pool2d",
                                           (size_t)y->numel * tg_dtype_size(y->dtype))
                          : NULL;
    if (!values)
        return NULL;
    if (y->dtype == TG_F32)
        tg__maxpool_f32(x->data, &g, values, argmax);
    else
        tg__maxpool_f64(x->data, &g, values, argmax);
    return p->argmax = argmax;
}

static tg_status max_backward(tg_node *nd, tg_tensor *gz, tg_tensor **din)
{
    tg_tensor *x = nd->in[0];
    const int64_t *argmax = max_argmax(nd);
    if (!argmax)
        return tg_last_status();
    din[0] = tg__put_add(gz, nd->out->numel, argmax, x->ndim, x->shape);
    return din[0] ? TG_OK : tg_last_status();
}
/* Without a graph of the backward: put_add's bytes in one pass per plane
 * from x and y (tg__maxpool_backward_*), without the indices and without a
 * separate clearing of the whole input gradient. */
static tg_status max_fused(tg_node *nd, tg_tensor *gz, tg_tensor **din)
{
    tg_tensor *x = nd->in[0];
    tg__pool_geom g = tg__pool_kernel_geom(POOL(nd));
    tg_tensor *dx = tg__tape_tensor("tg_max_pool2d", x->dtype, x->ndim, x->shape, false);
    if (!dx)
        return tg_last_status();
    if (x->dtype == TG_F32)
        tg__maxpool_backward_f32(x->data, nd->out->data, gz->data, &g, dx->data);
    else
        tg__maxpool_backward_f64(x->data, nd->out->data, gz->data, &g, dx->data);
    din[0] = dx;
    return TG_OK;
}
/* max pooling is take(x, argmax): its tangent is take(t, argmax). */
static tg_status max_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    tg_tensor *y = nd->out;
    const int64_t *argmax = max_argmax(nd);
    if (!argmax)
        return tg_last_status();
    return tg__tangent_is(tout, tg__take(tin[0], y->numel, argmax, y->ndim, y->shape));
}
const tg_op_def tg__def_max_pool2d = {TG__OP_NAME(max_pool2d), .n_in = 1, .differentiable = true,
                                      .params_size = sizeof(pool_params), .shape = pool_shape,
                                      .forward = max_forward, .backward = max_backward,
                                      .fused_backward = max_fused, .tangent = max_tangent};

/* ---- average and its adjoint ---- */

/* avg_pool2d and its adjoint are linear: the tangent is the op on the tangent. */
static tg_status linear_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    return tg__tangent_is(tout, tg__apply(nd->def, 1, tin, nd->params));
}


static tg_status avg_forward(tg_node *nd)
{
    tg__pool_geom g = tg__pool_kernel_geom(POOL(nd));
    bool inc = POOL(nd)->count_include_pad;
    if (nd->out->dtype == TG_F32)
        tg__avgpool_f32(nd->in[0]->data, &g, inc, nd->out->data);
    else
        tg__avgpool_f64(nd->in[0]->data, &g, inc, nd->out->data);
    return TG_OK;
}
static tg_status avg_backward(tg_node *nd, tg_tensor *gz, tg_tensor **din)
{
    din[0] = tg__apply(&tg__def_avg_pool2d_grad, 1, &gz, POOL(nd));
    return din[0] ? TG_OK : tg_last_status();
}
const tg_op_def tg__def_avg_pool2d = {TG__OP_NAME(avg_pool2d), .n_in = 1, .differentiable = true,
                                      .params_size = sizeof(pool_params), .shape = pool_shape,
                                      .forward = avg_forward, .backward = avg_backward,
                                      .tangent = linear_tangent};

static tg_status adjoint_shape(const char *fn, tg_tensor *const *in, int n_in,
                               const void *params, int *ndim, int64_t *shape)
{
    memcpy(shape, ((const pool_params *)params)->in_shape, 4 * sizeof *shape);
    *ndim = 4;
    return TG_OK;
}
static tg_status adjoint_forward(tg_node *nd)
{
    tg__pool_geom g = tg__pool_kernel_geom(POOL(nd));
    bool inc = POOL(nd)->count_include_pad;
    tg_tensor *dx = nd->out;
    memset(dx->data, 0, (size_t)dx->numel * tg_dtype_size(dx->dtype));
    if (dx->dtype == TG_F32)
        tg__avgpool_adjoint_f32(nd->in[0]->data, &g, inc, dx->data);
    else
        tg__avgpool_adjoint_f64(nd->in[0]->data, &g, inc, dx->data);
    return TG_OK;
}
static tg_status adjoint_backward(tg_node *nd, tg_tensor *gz, tg_tensor **din)
{
    din[0] = tg__apply(&tg__def_avg_pool2d, 1, &gz, POOL(nd));
    return din[0] ? TG_OK : tg_last_status();
}
const tg_op_def tg__def_avg_pool2d_grad = {TG__OP_NAME(avg_pool2d_grad), .n_in = 1,
                                           .differentiable = true,
                                           .params_size = sizeof(pool_params),
                                           .shape = adjoint_shape, .forward = adjoint_forward,
                                           .backward = adjoint_backward,
                                           .tangent = linear_tangent};

static tg_tensor *pool(const tg_op_def *def, const char *fn, tg_tensor *x, const tg_pool2d_geom *geom)
{
    if (tg__bad_input(fn, x, 0))
        return NULL;
    pool_params p = {0};
    if (tg__pool_params_make(fn, x->ndim, x->shape, geom, &p) != TG_OK)
        return NULL;
    return tg__apply(def, 1, &x, &p);
}

tg_tensor *tg_max_pool2d(tg_tensor *x, const tg_pool2d_geom *geom)
{
    return pool(&tg__def_max_pool2d, "tg_max_pool2d", x, geom);
}

tg_tensor *tg_avg_pool2d(tg_tensor *x, const tg_pool2d_geom *geom)
{
    return pool(&tg__def_avg_pool2d, "tg_avg_pool2d", x, geom);
}
