/* conv.c - 2-D convolution (NCHW) as three table ops that are each other's
 * gradients:
 *
 *   conv2d(x, w [, b])   y = x (*) w + b              im2col + GEMM per image
 *   conv2d_dx(g, w)      the adjoint in x: <conv2d(x, w), g> = <x, conv2d_dx(g, w)>
 *   conv2d_dw(x, g)      the adjoint in w: <conv2d(x, w), g> = <w, conv2d_dw(x, g)>
 *   conv2d_relu(x, w [, b])   relu(conv2d(x, w, b)) in one pass (internal: the
 *                        Conv2D layer's), bias and ReLU in the GEMM epilogue
 *
 * conv2d is bilinear in (x, w), so with gz the gradient arriving at a result:
 *   conv2d:    dx = conv2d_dx(gz, w)    dw = conv2d_dw(x, gz)    db = sum(gz, N, H, W)
 *   conv2d_dx: dg = conv2d(gz, w)       dw = conv2d_dw(gz, g)
 *   conv2d_dw: dx = conv2d_dx(g, gz)    dg = conv2d(x, gz)
 * (each line follows from moving gz across the inner product above), so every
 * order of derivative is available. conv2d_relu's backward is conv2d's on
 * gz * [y > 0], built from the same ops, so its gradients (of any order) are
 * those of tg_relu(tg_conv2d(...)), and in float32 its forward gives the
 * composition's bytes. All three carry the same geometry
 * (conv_params); the adjoint ops also carry the shape of their result.
 * Kernels: kernels/conv.c, gemm.c. */
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/pointwise.h"
#include "ops/window_params.h"

#define CONV(nd) TG__PARAMS(nd, conv_params)

tg_conv2d_geom tg_conv2d_geom_default(void)
{
    return (tg_conv2d_geom){.stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1,
                            .padding = TG_PAD_VALID};
}

/* Bound on every size that enters the geometry (spatial dims, kernel dims,
 * strides, dilations, pads), so that its arithmetic cannot overflow int64. */
#define GEOM_MAX INT32_MAX

tg_status tg__conv_params_make(const char *fn, const tg_conv2d_geom *g, int64_t H, int64_t W,
                               int64_t KH, int64_t KW, conv_params *p)
{
    tg_conv2d_geom d = g ? *g : tg_conv2d_geom_default();
    if (d.stride_h < 1 || d.stride_w < 1 || d.dilation_h < 1 || d.dilation_w < 1)
        return tg__fail(TG_EINVAL, "%s: strides and dilations must be >= 1 (got %lldx%lld, "
                                   "%lldx%lld)", fn, (long long)d.stride_h, (long long)d.stride_w,
                        (long long)d.dilation_h, (long long)d.dilation_w);
    int64_t big = H > W ? H : W;
    const int64_t sizes[] = {KH, KW, d.stride_h, d.stride_w, d.dilation_h, d.dilation_w,
                             d.padding == TG_PAD_EXPLICIT ? d.pad_top : 0,
                             d.padding == TG_PAD_EXPLICIT ? d.pad_bottom : 0,
                             d.padding == TG_PAD_EXPLICIT ? d.pad_left : 0,
                             d.padding == TG_PAD_EXPLICIT ? d.pad_right : 0};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        big = sizes[k] > big ? sizes[k] : big;
    if (big > GEOM_MAX)
        return tg__fail(TG_ERANGE, "%s: image, kernel, stride, dilation and padding sizes must "
                                   "be at most %lld (got %lld)", fn, (long long)GEOM_MAX,
                        (long long)big);
    if (d.padding != TG_PAD_VALID && d.padding != TG_PAD_SAME && d.padding != TG_PAD_EXPLICIT)
        return tg__fail(TG_EINVAL, "%s: unknown padding mode %d", fn, (int)d.padding);
    if (d.padding == TG_PAD_EXPLICIT &&
        (d.pad_top < 0 || d.pad_bottom < 0 || d.pad_left < 0 || d.pad_right < 0))
        return tg__fail(TG_EINVAL, "%s: negative padding", fn);
    p->stride_h = d.stride_h, p->stride_w = d.stride_w;
    p->dilation_h = d.dilation_h, p->dilation_w = d.dilation_w;
    tg__window_pads(d.padding, H, KH, d.stride_h, d.dilation_h, d.pad_top, d.pad_bottom,
                    &p->pad_top, &p->pad_bottom);
    tg__window_pads(d.padding, W, KW, d.stride_w, d.dilation_w, d.pad_left, d.pad_right,
                    &p->pad_left, &p->pad_right);
    return TG_OK;
}

tg__conv_geom tg__conv_kernel_geom(const conv_params *p, const int64_t *xs, const int64_t *ws)
{
    tg__conv_geom g = {.C = xs[1], .H = xs[2], .W = xs[3], .KH = ws[2], .KW = ws[3],
                       .SH = p->stride_h, .SW = p->stride_w, .PT = p->pad_top,
                       .PL = p->pad_left, .DH = p->dilation_h, .DW = p->dilation_w};
    g.OH = tg__window_out(g.H, g.KH, g.SH, g.DH, p->pad_top, p->pad_bottom);
    g.OW = tg__window_out(g.W, g.KW, g.SW, g.DW, p->pad_left, p->pad_right);
    return g;
}

/* ---- the three ops' shared numeric core ---- */

/* One image's im2col matrix (rows x cols) from the tape's arena, reused for
 * every image of the call; NULL with TG_ENOMEM recorded for fn when it cannot
 * be allocated. */
static void *scratch(tg_tape *tape, const char *fn, int64_t rows, int64_t cols, tg_dtype dt)
{
    int64_t es = (int64_t)tg_dtype_size(dt);
    if (rows > 0 && cols > INT64_MAX / es / rows)
        return tg__fail_null(TG_ENOMEM, "%s: im2col matrix of %lld x %lld is too large", fn,
                             (long long)rows, (long long)cols);
    return tg__tape_alloc(tape, fn, (size_t)(rows * cols * es));
}

/* y = conv2d(x, w, b), then max(0, y) when relu (NaN kept, like tg_relu). */
static tg_status conv_compute(tg_node *nd, bool relu)
{
    const tg_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->n_in > 2 ? nd->in[2] : NULL;
    tg_tensor *y = nd->out;
    tg__conv_geom g = tg__conv_kernel_geom(CONV(nd), x->shape, w->shape);
    int64_t N = x->shape[0], OC = w->shape[0], ckk = g.C * g.KH * g.KW, ohw = g.OH * g.OW;
    if (y->numel == 0)
        return TG_OK;
    int64_t ld = y->dtype == TG_F32 ? tg__conv2d_cols_ld(&g) : ohw;
    void *cols = scratch(y->tape, "tg_conv2d", ckk, ld, y->dtype);
    if (!cols)
        return TG_ENOMEM;
    if (y->dtype == TG_F32) { // the batch in one kernel call: one image per thread
        tg__conv2d_forward_f32(x->data, N, w->data, b ? b->data : NULL, relu, OC, &g, cols,
                               y->data);
        return TG_OK;
    }
    // float64 (the checking dtype): image by image on this thread, bias and
    // ReLU in the GEMM's epilogue as in float32.
    tg__gemm_epi epi = {.bias = b ? b->data : NULL, .relu = relu};
    for (int64_t n = 0; n < N; n++) {
        double *yn = (double *)y->data + n * OC * ohw;
        tg__im2col_f64((const double *)x->data + n * g.C * g.H * g.W, &g, cols);
        tg__gemm_f64_epi(false, false, OC, ohw, ckk, 1.0, w->data, ckk, cols, ohw, 0.0, yn, ohw,
                         &epi);
    }
    return TG_OK;
}

static tg_status conv_forward(tg_node *nd) { return conv_compute(nd, false); }
static tg_status conv_relu_forward(tg_node *nd) { return conv_compute(nd, true); }

/* dx (N,C,H,W) from g (N,OC,OH,OW) and w: per image, W^T g then col2im. */
static tg_status dx_forward(tg_node *nd)
{
    const tg_tensor *gy = nd->in[0], *w = nd->in[1];
    tg_tensor *dx = nd->out;
    tg__conv_geom g = tg__conv_kernel_geom(CONV(nd), dx->shape, w->shape);
    int64_t N = dx->shape[0], OC = w->shape[0], ckk = g.C * g.KH * g.KW, ohw = g.OH * g.OW;
    if (dx->numel == 0)
        return TG_OK;
    size_t bytes = (size_t)dx->numel * tg_dtype_size(dx->dtype);
    if (gy->numel == 0 || ckk == 0) {
        memset(dx->data, 0, bytes);
        return TG_OK;
    }
    void *cols = scratch(dx->tape, "tg_conv2d (input gradient)", ckk, ohw, dx->dtype);
    if (!cols)
        return TG_ENOMEM;
    if (dx->dtype == TG_F32) { // the batch in one kernel call (which clears dx first)
        tg__conv2d_input_grad_f32(gy->data, N, w->data, OC, &g, cols, dx->data);
        return TG_OK;
    }
    // float64 (the checking dtype): image by image on this thread, adding
    // into zeros.
    memset(dx->data, 0, bytes);
    for (int64_t n = 0; n < N; n++) {
        tg__gemm_f64(true, false, ckk, ohw, OC, 1.0, w->data, ckk,
                     (const double *)gy->data + n * OC * ohw, ohw, 0.0, cols, ohw);
        tg__col2im_f64(cols, &g, (double *)dx->data + n * g.C * g.H * g.W);
    }
    return TG_OK;
}

/* dw (OC,C,KH,KW) = sum over images of g[n] (OC, OH*OW) @ im2col(x[n])^T. */
static tg_status dw_forward(tg_node *nd)
{
    const tg_tensor *x = nd->in[0], *gy = nd->in[1];
    tg_tensor *dw = nd->out;
    tg__conv_geom g = tg__conv_kernel_geom(CONV(nd), x->shape, dw->shape);
    int64_t N = x->shape[0], OC = dw->shape[0], ckk = g.C * g.KH * g.KW, ohw = g.OH * g.OW;
    if (dw->numel == 0)
        return TG_OK;
    memset(dw->data, 0, (size_t)dw->numel * tg_dtype_size(dw->dtype));
    if (gy->numel == 0)
        return TG_OK;
    if (dw->dtype == TG_F32) { // a few deep products over groups of images
        float *buf = scratch(dw->tape, "tg_conv2d (weight gradient)", 1,
                             tg__conv2d_dw_scratch(N, OC, &g), TG_F32);
        if (!buf)
            return TG_ENOMEM;
        tg__conv2d_weight_grad_f32(x->data, gy->data, N, OC, &g, buf, dw->data);
        return TG_OK;
    }
    // float64 (the checking dtype): image by image, accumulated in order.
    void *cols = scratch(dw->tape, "tg_conv2d (weight gradient)", ckk, ohw, dw->dtype);
    if (!cols)
        return TG_ENOMEM;
    for (int64_t n = 0; n < N; n++) {
        tg__im2col_f64((const double *)x->data + n * g.C * g.H * g.W, &g, cols);
        tg__gemm_f64(false, true, OC, ckk, ohw, 1.0, (const double *)gy->data + n * OC * ohw,
                     ohw, cols, ohw, 1.0, dw->data, ckk);
    }
    return TG_OK;
}

/* ---- builders ---- */

static tg_tensor *conv_raw(tg_tensor *x, tg_tensor *w, tg_tensor *b, const conv_params *p)
{
    tg_tensor *in[3] = {x, w, b};
    return tg__apply(&tg__def_conv2d, b ? 3 : 2, in, p);
}

static tg_tensor *conv_dx(tg_tensor *g, tg_tensor *w, const conv_params *p, const int64_t *xs)
{
    conv_params q = *p;
    memcpy(q.out_shape, xs, 4 * sizeof *xs);
    tg_tensor *in[2] = {g, w};
    return tg__apply(&tg__def_conv2d_dx, 2, in, &q);
}

static tg_tensor *conv_dw(tg_tensor *x, tg_tensor *g, const conv_params *p, const int64_t *ws)
{
    conv_params q = *p;
    memcpy(q.out_shape, ws, 4 * sizeof *ws);
    tg_tensor *in[2] = {x, g};
    return tg__apply(&tg__def_conv2d_dw, 2, in, &q);
}

/* ---- backward rules (see the top of the file) ---- */

static tg_status conv_backward(tg_node *nd, tg_tensor *gz, tg_tensor **din)
{
    tg_tensor *x = nd->in[0], *w = nd->in[1];
    if (tg__needs_grad(nd, 0) && !(din[0] = conv_dx(gz, w, CONV(nd), x->shape)))
        return tg_last_status();
    if (tg__needs_grad(nd, 1) && !(din[1] = conv_dw(x, gz, CONV(nd), w->shape)))
        return tg_last_status();
    if (nd->n_in > 2 && tg__needs_grad(nd, 2) &&
        !(din[2] = tg_sum(gz, (const int[]){0, 2, 3}, 3, false)))
        return tg_last_status();
    return TG_OK;
}

/* conv2d_relu: conv2d's rules on dz = gz [y > 0] (y > 0 exactly where the
 * pre-activation is, so dz is tg_relu's gradient to the bit). */
static tg_status conv_relu_backward(tg_node *nd, tg_tensor *gz, tg_tensor **din)
{
    tg_tensor *dz = tg_mul(gz, tg_gt_scalar(nd->out, 0.0));
    return dz ? conv_backward(nd, dz, din) : tg_last_status();
}

/* Without a graph of the backward: dz in one pass, g * (T)(y > 0) as
 * tg_relu's own fused backward computes it. */
static tg_status conv_relu_fused(tg_node *nd, tg_tensor *gz, tg_tensor **din)
{
    const tg_tensor *y = nd->out;
    tg_tensor *dz = tg__tape_tensor("tg_conv2d", y->dtype, y->ndim, y->shape, false);
    if (!dz)
        return tg_last_status();
    if (y->dtype == TG_F32)
        tg__relu_grad_f32(gz->data, y->data, dz->data, y->numel);
    else
        tg__relu_grad_f64(gz->data, y->data, dz->data, y->numel);
    return conv_backward(nd, dz, din);
}

static tg_status dx_backward(tg_node *nd, tg_tensor *gz, tg_tensor **din)
{
    tg_tensor *g = nd->in[0], *w = nd->in[1];
    if (tg__needs_grad(nd, 0) && !(din[0] = conv_raw(gz, w, NULL, CONV(nd))))
        return tg_last_status();
    if (tg__needs_grad(nd, 1) && !(din[1] = conv_dw(gz, g, CONV(nd), w->shape)))
        return tg_last_status();
    return TG_OK;
}

static tg_status dw_backward(tg_node *nd, tg_tensor *gz, tg_tensor **din)
{
    tg_tensor *x = nd->in[0], *g = nd->in[1];
    if (tg__needs_grad(nd, 0) && !(din[0] = conv_dx(g, gz, CONV(nd), x->shape)))
        return tg_last_status();
    if (tg__needs_grad(nd, 1) && !(din[1] = conv_raw(x, gz, NULL, CONV(nd))))
        return tg_last_status();
    return TG_OK;
}

/* ---- tangent rules: each op is bilinear (conv2d affine in its bias), so
 * the tangent is the op applied to each input's tangent with the other input
 * as it is, summed ---- */

static tg_status conv_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    tg_tensor *x = nd->in[0], *w = nd->in[1], *acc = NULL;
    if (tin[0] && tg__tangent_acc(&acc, conv_raw(tin[0], w, NULL, CONV(nd))) != TG_OK)
        return tg_last_status();
    if (tin[1] && tg__tangent_acc(&acc, conv_raw(x, tin[1], NULL, CONV(nd))) != TG_OK)
        return tg_last_status();
    if (nd->n_in > 2 && tin[2]) {
        // The bias tangent (OC) as (OC, 1, 1): it broadcasts over the images.
        int64_t oc = tin[2]->shape[0];
        if (tg__tangent_acc(&acc, tg_reshape(tin[2], 3, (const int64_t[]){oc, 1, 1})) != TG_OK)
            return tg_last_status();
    }
    *tout = acc;
    return TG_OK;
}

/* conv2d_relu: conv2d's tangent through the ReLU's constant mask [y > 0]. */
static tg_status conv_relu_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    tg_tensor *tz = NULL;
    if (conv_tangent(nd, tin, &tz) != TG_OK)
        return tg_last_status();
    return tg__tangent_is(tout, tg_mul(tz, tg_gt_scalar(nd->out, 0.0)));
}

static tg_status dx_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    tg_tensor *g = nd->in[0], *w = nd->in[1], *acc = NULL;
    const int64_t *xs = nd->out->shape;
    if (tin[0] && tg__tangent_acc(&acc, conv_dx(tin[0], w, CONV(nd), xs)) != TG_OK)
        return tg_last_status();
    if (tin[1] && tg__tangent_acc(&acc, conv_dx(g, tin[1], CONV(nd), xs)) != TG_OK)
        return tg_last_status();
    *tout = acc;
    return TG_OK;
}

static tg_status dw_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    tg_tensor *x = nd->in[0], *g = nd->in[1], *acc = NULL;
    const int64_t *ws = nd->out->shape;
    if (tin[0] && tg__tangent_acc(&acc, conv_dw(tin[0], g, CONV(nd), ws)) != TG_OK)
        return tg_last_status();
    if (tin[1] && tg__tangent_acc(&acc, conv_dw(x, tin[1], CONV(nd), ws)) != TG_OK)
        return tg_last_status();
    *tout = acc;
    return TG_OK;
}

/* ---- shapes ---- */

static tg_status check_4d(const char *fn, const char *what, const tg_tensor *t)
{
    if (t->ndim == 4)
        return TG_OK;
    char s[TG__SHAPE_STR];
    return tg__fail(TG_ESHAPE, "%s: %s must be 4-D, got %s", fn, what,
                    tg__shape_str(s, t->ndim, t->shape));
}

static tg_status conv_shape(const char *fn, tg_tensor *const *in, int n_in,
                            const void *params, int *ndim, int64_t *shape)
{
    const conv_params *p = params;
    const tg_tensor *x = in[0], *w = in[1];
    char xs[TG__SHAPE_STR], ws[TG__SHAPE_STR];
    if (n_in < 2 || n_in > 3)
        return tg__fail(TG_EINVAL, "%s: takes x, w and an optional bias", fn);
    if (check_4d(fn, "x (N, C, H, W)", x) || check_4d(fn, "w (OC, C, KH, KW)", w))
        return TG_ESHAPE;
    if (x->shape[1] != w->shape[1])
        return tg__fail(TG_ESHAPE, "%s: x has %lld channels but w expects %lld (x %s, w %s)", fn,
                        (long long)x->shape[1], (long long)w->shape[1],
                        tg__shape_str(xs, 4, x->shape), tg__shape_str(ws, 4, w->shape));
    if (n_in == 3 && (in[2]->ndim != 1 || in[2]->shape[0] != w->shape[0]))
        return tg__fail(TG_ESHAPE, "%s: bias must have shape (%lld), got %s", fn,
                        (long long)w->shape[0], tg__shape_str(xs, in[2]->ndim, in[2]->shape));
    tg__conv_geom g = tg__conv_kernel_geom(p, x->shape, w->shape);
    if (g.OH < 1 || g.OW < 1)
        return tg__fail(TG_ESHAPE, "%s: kernel %lldx%lld (dilation %lldx%lld) does not fit the "
                                   "padded input %lldx%lld", fn, (long long)g.KH, (long long)g.KW,
                        (long long)g.DH, (long long)g.DW,
                        (long long)(g.H + p->pad_top + p->pad_bottom),
                        (long long)(g.W + p->pad_left + p->pad_right));
    shape[0] = x->shape[0], shape[1] = w->shape[0], shape[2] = g.OH, shape[3] = g.OW;
    *ndim = 4;
    return TG_OK;
}

static tg_status given_shape(const char *fn, tg_tensor *const *in, int n_in,
                             const void *params, int *ndim, int64_t *shape)
{
    memcpy(shape, ((const conv_params *)params)->out_shape, 4 * sizeof *shape);
    *ndim = 4;
    return TG_OK;
}

const tg_op_def tg__def_conv2d = {TG__OP_NAME(conv2d), .n_in = -1, .differentiable = true,
                                  .params_size = sizeof(conv_params), .shape = conv_shape,
                                  .forward = conv_forward, .backward = conv_backward,
                                  .tangent = conv_tangent};
const tg_op_def tg__def_conv2d_relu = {.name = "conv2d_relu", .fn = "tg_conv2d", .n_in = -1,
                                       .differentiable = true,
                                       .params_size = sizeof(conv_params), .shape = conv_shape,
                                       .forward = conv_relu_forward,
                                       .backward = conv_relu_backward,
                                       .fused_backward = conv_relu_fused,
                                       .tangent = conv_relu_tangent};
const tg_op_def tg__def_conv2d_dx = {TG__OP_NAME(conv2d_dx), .n_in = 2, .differentiable = true,
                                     .params_size = sizeof(conv_params), .shape = given_shape,
                                     .forward = dx_forward, .backward = dx_backward,
                                     .tangent = dx_tangent};
const tg_op_def tg__def_conv2d_dw = {TG__OP_NAME(conv2d_dw), .n_in = 2, .differentiable = true,
                                     .params_size = sizeof(conv_params), .shape = given_shape,
                                     .forward = dw_forward, .backward = dw_backward,
                                     .tangent = dw_tangent};

static tg_tensor *conv_build(const tg_op_def *def, tg_tensor *x, tg_tensor *w, tg_tensor *bias,
                             const tg_conv2d_geom *geom)
{
    const char *fn = "tg_conv2d";
    if (tg__bad_input(fn, x, 0) || tg__bad_input(fn, w, 1) ||
        (bias && tg__check_live(fn, bias) != TG_OK))
        return NULL;
    if (check_4d(fn, "x (N, C, H, W)", x) || check_4d(fn, "w (OC, C, KH, KW)", w))
        return NULL;
    conv_params p = {0};
    if (tg__conv_params_make(fn, geom, x->shape[2], x->shape[3], w->shape[2], w->shape[3],
                             &p) != TG_OK)
        return NULL;
    tg_tensor *in[3] = {x, w, bias};
    return tg__apply(def, bias ? 3 : 2, in, &p);
}

tg_tensor *tg_conv2d(tg_tensor *x, tg_tensor *w, tg_tensor *bias, const tg_conv2d_geom *geom)
{
    return conv_build(&tg__def_conv2d, x, w, bias, geom);
}

tg_tensor *tg__conv2d_relu(tg_tensor *x, tg_tensor *w, tg_tensor *bias,
                           const tg_conv2d_geom *geom)
{
    return conv_build(&tg__def_conv2d_relu, x, w, bias, geom);
}
