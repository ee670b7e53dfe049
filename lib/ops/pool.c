/* pool.c - 2-D max and average pooling (NCHW).
 *
 * max_pool2d keeps, per output, the flat index of the chosen input element
 * (p.idx); its gradient is put_add(g, those indices), whose own gradient is a
 * take: max pooling is take(x, argmax), differentiable to any order.
 * avg_pool2d is linear; its gradient is avg_pool2d_grad (the adjoint, which
 * spreads each value over its window) and the adjoint's gradient is
 * avg_pool2d again. Geometry in p.i: kernel [0,1], stride [2,3], pads
 * top/bottom/left/right [4..7], count_include_pad [8], input shape [9..12]
 * (for the adjoint). Kernels: kernels/pool.c. */
#include <string.h>

#include "kernels/kernels.h"
#include "ops/ops_internal.h"

enum { KH, KW, SH, SW, PT, PB, PL, PR, INCLUDE_PAD, IN_SHAPE };

tg_pool2d_geom tg_pool2d_geom_square(int64_t k)
{
    return (tg_pool2d_geom){.kernel_h = k, .kernel_w = k, .padding = TG_PAD_VALID};
}

static void same_pads(int64_t in, int64_t k, int64_t s, int64_t *p0, int64_t *p1)
{
    int64_t out = (in + s - 1) / s, total = (out - 1) * s + k - in;
    if (total < 0)
        total = 0;
    *p0 = total / 2;
    *p1 = total - *p0;
}

static tg_status geometry(const char *fn, const tg_tensor *x, const tg_pool2d_geom *geom,
                          tg_op_params *p)
{
    char s[TG__SHAPE_STR];
    if (x->ndim != 4)
        return tg__fail(TG_ESHAPE, "%s: x must be 4-D (N, C, H, W), got %s", fn,
                        tg__shape_str(s, x->ndim, x->shape));
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
    int64_t big = x->shape[2] > x->shape[3] ? x->shape[2] : x->shape[3];
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
    int64_t *q = p->i;
    q[KH] = g.kernel_h, q[KW] = g.kernel_w, q[SH] = g.stride_h, q[SW] = g.stride_w;
    q[INCLUDE_PAD] = g.count_include_pad;
    if (g.padding == TG_PAD_VALID) {
        q[PT] = q[PB] = q[PL] = q[PR] = 0;
    } else if (g.padding == TG_PAD_SAME) {
        same_pads(x->shape[2], g.kernel_h, g.stride_h, &q[PT], &q[PB]);
        same_pads(x->shape[3], g.kernel_w, g.stride_w, &q[PL], &q[PR]);
    } else if (g.padding == TG_PAD_EXPLICIT) {
        q[PT] = g.pad_top, q[PB] = g.pad_bottom, q[PL] = g.pad_left, q[PR] = g.pad_right;
    } else {
        return tg__fail(TG_EINVAL, "%s: unknown padding mode %d", fn, (int)g.padding);
    }
    // A window that could lie wholly in the padding would have nothing to pool.
    if (q[PT] < 0 || q[PB] < 0 || q[PL] < 0 || q[PR] < 0 || q[PT] >= q[KH] || q[PB] >= q[KH] ||
        q[PL] >= q[KW] || q[PR] >= q[KW])
        return tg__fail(TG_EINVAL, "%s: padding (%lld, %lld, %lld, %lld) must be >= 0 and "
                                   "smaller than the kernel %lldx%lld", fn, (long long)q[PT],
                        (long long)q[PB], (long long)q[PL], (long long)q[PR], (long long)q[KH],
                        (long long)q[KW]);
    memcpy(q + IN_SHAPE, x->shape, 4 * sizeof *x->shape);
    p->ni = IN_SHAPE + 4;
    return TG_OK;
}

static tg__pool_geom kernel_geom(const tg_op_params *p)
{
    const int64_t *q = p->i, *xs = q + IN_SHAPE;
    tg__pool_geom g = {.planes = xs[0] * xs[1], .H = xs[2], .W = xs[3], .KH = q[KH],
                       .KW = q[KW], .SH = q[SH], .SW = q[SW], .PT = q[PT], .PL = q[PL]};
    g.OH = (g.H + q[PT] + q[PB] - g.KH) / g.SH + 1;
    g.OW = (g.W + q[PL] + q[PR] - g.KW) / g.SW + 1;
    if (g.H + q[PT] + q[PB] < g.KH || g.W + q[PL] + q[PR] < g.KW)
        g.OH = g.OW = 0;
    return g;
}

static tg_status pool_shape(const char *fn, tg_tensor *const *in, int n_in,
                            const tg_op_params *p, int *ndim, int64_t *shape)
{
    tg__pool_geom g = kernel_geom(p);
    if (g.OH < 1 || g.OW < 1)
        return tg__fail(TG_ESHAPE, "%s: window %lldx%lld does not fit the padded input "
                                   "%lldx%lld", fn, (long long)g.KH, (long long)g.KW,
                        (long long)(g.H + p->i[PT] + p->i[PB]),
                        (long long)(g.W + p->i[PL] + p->i[PR]));
    shape[0] = in[0]->shape[0], shape[1] = in[0]->shape[1], shape[2] = g.OH, shape[3] = g.OW;
    *ndim = 4;
    return TG_OK;
}

/* ---- max ---- */

static tg_status max_forward(tg_node *nd)
{
    tg__pool_geom g = kernel_geom(&nd->p);
    tg_tensor *y = nd->out;
    int64_t *argmax = tg__arena_alloc(y->tape, (size_t)y->numel * sizeof *argmax);
    if (!argmax)
        return tg__fail(TG_ENOMEM, "tg_max_pool2d: out of memory");
    if (y->dtype == TG_F32)
        tg__maxpool_f32(nd->in[0]->data, &g, y->data, argmax);
    else
        tg__maxpool_f64(nd->in[0]->data, &g, y->data, argmax);
    nd->p.idx = argmax;
    nd->p.n_idx = y->numel;
    return TG_OK;
}
static tg_status max_backward(tg_node *nd, tg_tensor *gz, tg_tensor **din)
{
    tg_tensor *x = nd->in[0];
    din[0] = tg__put_add(gz, nd->p.n_idx, nd->p.idx, x->ndim, x->shape);
    return din[0] ? TG_OK : tg_last_status();
}
const tg_op_def tg__def_max_pool2d = {"max_pool2d", 1, true, false, pool_shape, max_forward,
                                      max_backward};

/* ---- average and its adjoint ---- */

static tg_status avg_forward(tg_node *nd)
{
    tg__pool_geom g = kernel_geom(&nd->p);
    bool inc = nd->p.i[INCLUDE_PAD];
    if (nd->out->dtype == TG_F32)
        tg__avgpool_f32(nd->in[0]->data, &g, inc, nd->out->data);
    else
        tg__avgpool_f64(nd->in[0]->data, &g, inc, nd->out->data);
    return TG_OK;
}
static tg_status avg_backward(tg_node *nd, tg_tensor *gz, tg_tensor **din)
{
    din[0] = tg__apply(TG_OP_AVG_POOL2D_GRAD, 1, &gz, &nd->p);
    return din[0] ? TG_OK : tg_last_status();
}
const tg_op_def tg__def_avg_pool2d = {"avg_pool2d", 1, true, false, pool_shape, avg_forward,
                                      avg_backward};

static tg_status adjoint_shape(const char *fn, tg_tensor *const *in, int n_in,
                               const tg_op_params *p, int *ndim, int64_t *shape)
{
    memcpy(shape, p->i + IN_SHAPE, 4 * sizeof *shape);
    *ndim = 4;
    return TG_OK;
}
static tg_status adjoint_forward(tg_node *nd)
{
    tg__pool_geom g = kernel_geom(&nd->p);
    bool inc = nd->p.i[INCLUDE_PAD];
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
    din[0] = tg__apply(TG_OP_AVG_POOL2D, 1, &gz, &nd->p);
    return din[0] ? TG_OK : tg_last_status();
}
const tg_op_def tg__def_avg_pool2d_grad = {"avg_pool2d_grad", 1, true, false, adjoint_shape,
                                           adjoint_forward, adjoint_backward};

static tg_tensor *pool(int op, const char *fn, tg_tensor *x, const tg_pool2d_geom *geom)
{
    if (!x)
        return tg__null_input(fn, 0);
    tg_op_params p = {0};
    if (geometry(fn, x, geom, &p) != TG_OK)
        return NULL;
    return tg__apply(op, 1, &x, &p);
}

tg_tensor *tg_max_pool2d(tg_tensor *x, const tg_pool2d_geom *geom)
{
    return pool(TG_OP_MAX_POOL2D, "tg_max_pool2d", x, geom);
}

tg_tensor *tg_avg_pool2d(tg_tensor *x, const tg_pool2d_geom *geom)
{
    return pool(TG_OP_AVG_POOL2D, "tg_avg_pool2d", x, geom);
}
