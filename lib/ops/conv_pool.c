/* conv_pool.c - conv2d_relu_max_pool2d: a convolution with ReLU and the max
 * pool after it as one node (internal: a Sequential model's Conv2D with a
 * ReLU followed by MaxPool2D, the block of the classic CNN):
 *
 *   conv2d_relu_max_pool2d(x, w [, b]) = max_pool2d(conv2d_relu(x, w, b))
 *
 * The node keeps y = conv2d_relu(x, w, b) (nd->saved) and its own result,
 * the pooled y; it holds one parameter struct of each op. Its rules are those
 * of the two ops, run on two nodes made on the stack that describe the parts
 * (conv2d_relu on x, w, b giving y; max_pool2d on y giving the result): the
 * recorded backward is max_pool2d's then conv2d_relu's, so every order of
 * derivative is that of the composition, and so is the tangent. y enters
 * those rules only through the ReLU's mask and the pool's choice of element,
 * both constant where the function is differentiable, so keeping y as a
 * plain tensor loses nothing.
 *
 * What the node changes is where the bytes go. In float32 each image's y is
 * pooled while it is in cache (tg__conv2d_relu_maxpool_f32), and without a
 * graph of the backward an image's pool gradient, ReLU gradient, bias sum
 * and input gradient run one after the other while its dz is in cache
 * (kernels/conv_block.c), with the ops' bytes throughout. */
#include <string.h>

#include "ops/window_params.h"

typedef struct conv_pool_params {
    conv_params conv;
    pool_params pool;
} conv_pool_params;

#define PARAMS(nd) TG__PARAMS(nd, conv_pool_params)

/* The two parts of nd as nodes of their own ops; y_slot holds the pool's
 * input (y) for the pool node's input list. */
static void parts(tg_node *nd, tg_node *conv, tg_node *pool, tg_tensor **y_slot)
{
    conv_pool_params *p = PARAMS(nd);
    *y_slot = nd->saved;
    *conv = (tg_node){.def = &tg__def_conv2d_relu, .n_in = nd->n_in, .in = nd->in,
                      .params = &p->conv, .out = nd->saved};
    *pool = (tg_node){.def = &tg__def_max_pool2d, .n_in = 1, .in = y_slot,
                      .params = &p->pool, .out = nd->out};
}

static tg_status shape(const char *fn, tg_tensor *const *in, int n_in, const void *params,
                       int *ndim, int64_t *out)
{
    const conv_pool_params *p = params;
    int64_t ys[TG_MAX_DIMS];
    if (tg__def_conv2d_relu.shape(fn, in, n_in, &p->conv, ndim, ys) != TG_OK)
        return TG_ESHAPE;
    tg__pool_geom g = tg__pool_kernel_geom(&p->pool);
    out[0] = ys[0], out[1] = ys[1], out[2] = g.OH, out[3] = g.OW;
    return TG_OK;
}

static tg_status forward(tg_node *nd)
{
    const tg_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->n_in > 2 ? nd->in[2] : NULL;
    conv_pool_params *p = PARAMS(nd);
    tg__conv_geom g = tg__conv_kernel_geom(&p->conv, x->shape, w->shape);
    const int64_t ys[4] = {x->shape[0], w->shape[0], g.OH, g.OW};
    nd->saved = tg__tape_tensor("tg_conv2d", x->dtype, 4, ys, false);
    if (!nd->saved)
        return tg_last_status();
    if (x->dtype != TG_F32 || nd->saved->numel == 0 || x->numel == 0 || w->numel == 0) {
        // float64 (the checking dtype): the two ops' own forwards.
        tg_node conv, pool;
        tg_tensor *y_slot;
        parts(nd, &conv, &pool, &y_slot);
        tg_status s = tg__def_conv2d_relu.forward(&conv);
        return s != TG_OK ? s : tg__def_max_pool2d.forward(&pool);
    }
    int64_t ckk = g.C * g.KH * g.KW, ohw = g.OH * g.OW;
    float *cols = tg__tape_alloc(nd->out->tape, "tg_conv2d", (size_t)(ckk * ohw) * sizeof *cols);
    if (!cols)
        return TG_ENOMEM;
    tg__pool_geom pg = tg__pool_kernel_geom(&p->pool);
    pg.planes = w->shape[0]; // one image
    tg__conv2d_relu_maxpool_f32(x->data, x->shape[0], w->data, b ? b->data : NULL, w->shape[0],
                                &g, &pg, cols, nd->saved->data, nd->out->data);
    return TG_OK;
}

/* The composition's rules, recorded (any order of derivative). */
static tg_status backward(tg_node *nd, tg_tensor *gz, tg_tensor **din)
{
    tg_node conv, pool;
    tg_tensor *y_slot, *gy = NULL;
    parts(nd, &conv, &pool, &y_slot);
    tg_status s = tg__def_max_pool2d.backward(&pool, gz, &gy);
    return s != TG_OK ? s : tg__def_conv2d_relu.backward(&conv, gy, din);
}

/* Without a graph: in float32 the image-by-image pass; in float64 the two
 * ops' fused rules one after the other. */
static tg_status fused(tg_node *nd, tg_tensor *gz, tg_tensor **din)
{
    tg_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->n_in > 2 ? nd->in[2] : NULL;
    tg_node conv, pool;
    tg_tensor *y_slot, *gy = NULL;
    parts(nd, &conv, &pool, &y_slot);
    if (x->dtype != TG_F32 || nd->saved->numel == 0 || x->numel == 0 || w->numel == 0) {
        tg_status s = tg__def_max_pool2d.fused_backward(&pool, gz, &gy);
        return s != TG_OK ? s : tg__def_conv2d_relu.fused_backward(&conv, gy, din);
    }
    const char *fn = "tg_conv2d";
    conv_pool_params *p = PARAMS(nd);
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
                                    (size_t)tg__conv_block_scratch(N, OC, &g) * sizeof(float));
    if (!scratch)
        return TG_ENOMEM;
    tg__conv2d_relu_maxpool_backward_f32(x->data, w->data, nd->saved->data, nd->out->data,
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
    parts(nd, &conv, &pool, &y_slot);
    if (tg__def_conv2d_relu.tangent(&conv, tin, &ty) != TG_OK)
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
    tg__pool_geom pg = tg__pool_kernel_geom(&p.pool);
    if (pg.OH < 1 || pg.OW < 1) // tg_max_pool2d's message
        return tg__fail_null(TG_ESHAPE, "tg_max_pool2d: window %lldx%lld does not fit the "
                                        "padded input %lldx%lld", (long long)pg.KH,
                             (long long)pg.KW,
                             (long long)(pg.H + p.pool.pad_top + p.pool.pad_bottom),
                             (long long)(pg.W + p.pool.pad_left + p.pool.pad_right));
    return tg__apply(&tg__def_conv2d_relu_max_pool2d, bias ? 3 : 2, in, &p);
}
