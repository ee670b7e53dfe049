/* conv_pool.c - conv2d_relu_max_pool2d: a convolution with ReLU and the max
 * pool after it as one node (internal: a Sequential model's Conv2D with a
 * ReLU followed by MaxPool2D, the block of the classic CNN):
 *
 *   conv2d_relu_max_pool2d(x, w [, b]) = max_pool2d(conv2d_relu(x, w, b))
 *
 * Its rules are those of the two ops, run on two nodes made on the stack
 * that describe the parts (conv2d_relu on x, w, b giving y; max_pool2d on y
 * giving the result), with one parameter struct of each op: the recorded
 * backward is max_pool2d's then conv2d_relu's, so every order of derivative
 * is that of the composition, and so is the tangent. y enters those rules
 * only through the ReLU's mask and the pool's choice of element, both
 * constant where the function is differentiable, so a y made again from x,
 * w, b (the same bytes) loses nothing.
 *
 * What the node changes is where the bytes go. In float32 each image's y is
 * pooled while it is in cache and then dropped (tg__conv2d_relu_maxpool_f32);
 * a recorded node keeps, beside the pooled result, one byte per window that
 * says which element the pool chose. Without a graph of the backward, an
 * image's pool and ReLU gradients come from those bytes, and its bias sum,
 * im2col and input gradient follow while its dz is in cache
 * (kernels/conv_block.c), with the ops' bytes throughout. y itself is made
 * only for the float64 forward and for the recorded backward and tangent
 * (nd->saved). */
#include <string.h>

#include "ops/window_params.h"

typedef struct conv_pool_params {
    conv_params conv;
    pool_params pool;
    /* float32: each window's choice (tg__maxpool_codes_f32), made by the
     * forward when the node is recorded (on the tape), for the fused
     * backward; NULL otherwise. */
    uint8_t *codes;
} conv_pool_params;

#define PARAMS(nd) TG__PARAMS(nd, conv_pool_params)

/* The two parts of nd as nodes of their own ops; y_slot holds the pool's
 * input (y) for the pool node's input list. y is made again, once, when the
 * float32 forward did not keep it: the same bytes (one image or the batch,
 * the convolution's are the same). */
static tg_status parts(tg_node *nd, tg_node *conv, tg_node *pool, tg_tensor **y_slot)
{
    conv_pool_params *p = PARAMS(nd);
    if (!nd->saved) {
        const tg_tensor *x = nd->in[0], *w = nd->in[1];
        tg__conv_geom g = tg__conv_kernel_geom(&p->conv, x->shape, w->shape);
        const int64_t ys[4] = {x->shape[0], w->shape[0], g.OH, g.OW};
        tg_tensor *y = tg__tape_tensor("tg_conv2d", x->dtype, 4, ys, false);
        tg_node make = {.def = &tg__def_conv2d_relu, .n_in = nd->n_in, .in = nd->in,
                        .params = &p->conv, .out = y};
        if (!y || tg__def_conv2d_relu.forward(&make) != TG_OK)
            return tg_last_status();
        nd->saved = y;
    }
    *y_slot = nd->saved;
    *conv = (tg_node){.def = &tg__def_conv2d_relu, .n_in = nd->n_in, .in = nd->in,
                      .params = &p->conv, .out = nd->saved};
    *pool = (tg_node){.def = &tg__def_max_pool2d, .n_in = 1, .in = y_slot,
                      .params = &p->pool, .out = nd->out};
    return TG_OK;
}

static tg_status shape(const char *fn, tg_tensor *const *in, int n_in, const void *params,
                       int *ndim, int64_t *out)
{
    const conv_pool_params *p = params;
    int64_t ys[TG_MAX_DIMS];
    if (tg__def_conv2d_relu.shape(fn, in, n_in, &p->conv, ndim, ys) != TG_OK ||
        tg__pool_fits("tg_max_pool2d", &p->pool) != TG_OK)
        return TG_ESHAPE;
    tg__pool_geom g = tg__pool_kernel_geom(&p->pool);
    out[0] = ys[0], out[1] = ys[1], out[2] = g.OH, out[3] = g.OW;
    return TG_OK;
}

static tg_status forward(tg_node *nd)
{
    const tg_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->n_in > 2 ? nd->in[2] : NULL;
    conv_pool_params *p = PARAMS(nd);
    nd->saved = NULL;
    p->codes = NULL;
    tg__conv_geom g = tg__conv_kernel_geom(&p->conv, x->shape, w->shape);
    int64_t N = x->shape[0], OC = w->shape[0];
    if (x->dtype != TG_F32 || nd->out->numel == 0 || x->numel == 0 || w->numel == 0 ||
        p->pool.kernel_h * p->pool.kernel_w > 256) {
        // float64 (the checking dtype) and the edge cases: the two ops'
        // own forwards, y kept.
        tg_node conv, pool;
        tg_tensor *y_slot;
        tg_status s = parts(nd, &conv, &pool, &y_slot);
        return s != TG_OK ? s : tg__def_max_pool2d.forward(&pool);
    }
    const char *fn = "tg_conv2d";
    tg__pool_geom pg = tg__pool_kernel_geom(&p->pool);
    pg.planes = OC; // one image
    bool recorded = tg_grad_enabled() && (x->requires_grad || w->requires_grad ||
                                          (b && b->requires_grad));
    void *scratch = tg__tape_alloc(nd->out->tape, fn, tg__conv2d_relu_maxpool_scratch(OC, &g));
    if (recorded && scratch)
        p->codes = tg__tape_alloc(nd->out->tape, fn, (size_t)nd->out->numel + 16);
    if (!scratch || (recorded && !p->codes))
        return TG_ENOMEM;
    tg__conv2d_relu_maxpool_f32(x->data, N, w->data, b ? b->data : NULL, OC, &g, &pg, scratch,
                                nd->out->data, p->codes);
    return TG_OK;
}

/* max_pool2d's rule then conv2d_relu's: the recorded ones, or (fused) their
 * fast paths. */
static tg_status parts_backward(tg_node *nd, tg_tensor *gz, tg_tensor **din, bool fused)
{
    tg_node conv, pool;
    tg_tensor *y_slot, *gy = NULL;
    tg_status s = parts(nd, &conv, &pool, &y_slot);
    if (s == TG_OK)
        s = (fused ? tg__def_max_pool2d.fused_backward : tg__def_max_pool2d.backward)(&pool, gz,
                                                                                   &gy);
    if (s == TG_OK)
        s = (fused ? tg__def_conv2d_relu.fused_backward : tg__def_conv2d_relu.backward)(&conv, gy,
                                                                                     din);
    return s;
}

/* The composition's rules, recorded (any order of derivative). */
static tg_status backward(tg_node *nd, tg_tensor *gz, tg_tensor **din)
{
    return parts_backward(nd, gz, din, false);
}

/* Without a graph: in float32 (with the forward's codes) the image-by-image
 * pass; else the two ops' fused rules one after the other. */
static tg_status fused(tg_node *nd, tg_tensor *gz, tg_tensor **din)
{
    tg_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->n_in > 2 ? nd->in[2] : NULL;
    conv_pool_params *p = PARAMS(nd);
    if (!p->codes)
        return parts_backward(nd, gz, din, true);
    const char *fn = "tg_conv2d";
    tg__conv_geom g = tg__conv_kernel_geom(&p->conv, x->shape, w->shape);
    tg__pool_geom pg = tg__pool_kernel_geom(&p->pool);
    pg.planes = w->shape[0];
    int64_t N = x->shape[0], OC = w->shape[0];
    if (tg__needs_grad(nd, 0) && !(din[0] = tg__tape_tensor(fn, TG_F32, 4, x->shape, false)))
        return tg_last_status();
    if (tg__needs_grad(nd, 1) && !(din[1] = tg__tape_tensor(fn, TG_F32, 4, w->shape, false)))
        return tg_last_status();
    if (b && tg__needs_grad(nd, 2) && !(din[2] = tg__tape_tensor(fn, TG_F32, 1, b->shape, false)))
        return tg_last_status();
    float *scratch = tg__tape_alloc(nd->out->tape, fn,
                                    (size_t)tg__conv_block_scratch(N, OC, &g, din[0] != NULL) *
                                        sizeof(float));
    if (!scratch)
        return TG_ENOMEM;
    tg__conv2d_relu_maxpool_backward_f32(x->data, w->data, p->codes, nd->out->data,
                                         gz->data, N, OC, &g, &pg, scratch,
                                         din[0] ? din[0]->data : NULL,
                                         din[1] ? din[1]->data : NULL,
                                         b && din[2] ? din[2]->data : NULL);
    return TG_OK;
}

static tg_status tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    tg_node conv, pool;
    tg_tensor *y_slot, *ty = NULL;
    if (parts(nd, &conv, &pool, &y_slot) != TG_OK ||
        tg__def_conv2d_relu.tangent(&conv, tin, &ty) != TG_OK)
        return tg_last_status();
    if (!ty) { // no input had a tangent
        *tout = NULL;
        return TG_OK;
    }
    return tg__def_max_pool2d.tangent(&pool, &ty, tout);
}

const tg_op_def tg__def_conv2d_relu_max_pool2d = {
    .name = "conv2d_relu_max_pool2d", .fn = "tg_conv2d", .n_in = -1, .differentiable = true,
    .params_size = sizeof(conv_pool_params), .shape = shape, .forward = forward,
    .backward = backward, .fused_backward = fused, .tangent = tangent};

tg_tensor *tg__conv2d_relu_max_pool2d(tg_tensor *x, tg_tensor *w, tg_tensor *bias,
                                      const tg_conv2d_geom *conv, const tg_pool2d_geom *pool)
{
    const char *fn = "tg_conv2d";
    if (tg__bad_input(fn, x, 0) || tg__bad_input(fn, w, 1) ||
        (bias && tg__check_live(fn, bias) != TG_OK))
        return NULL;
    conv_pool_params p = {0};
    if (x->ndim != 4 || w->ndim != 4) // conv2d's message
        return tg__conv2d_relu(x, w, bias, conv);
    if (tg__conv_params_make(fn, conv, x->shape[2], x->shape[3], w->shape[2], w->shape[3],
                             &p.conv) != TG_OK)
        return NULL;
    // The pool's geometry is checked on y's shape, as tg_max_pool2d would.
    tg_tensor *in[3] = {x, w, bias};
    int ndim = 0;
    int64_t ys[TG_MAX_DIMS];
    if (tg__def_conv2d_relu.shape(fn, in, bias ? 3 : 2, &p.conv, &ndim, ys) != TG_OK ||
        tg__pool_params_make("tg_max_pool2d", ndim, ys, pool, &p.pool) != TG_OK)
        return NULL;
    return tg__apply(&tg__def_conv2d_relu_max_pool2d, bias ? 3 : 2, in, &p);
}
