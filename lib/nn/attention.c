/* attention.c - the multi-head self-attention layer on sequences (N, L, D):
 * four D x D projections (query, key, value, output) around the fused
 * tg_scaled_dot_product_attention op per head, optionally causal. */
#include <math.h>

#include "nn/nn_internal.h"

typedef struct attention_layer {
    tg_layer base;
    int heads;
    tg_attention_opts opts;
} attention_layer;

static const char *const names_bias[] = {"q_weight", "q_bias", "k_weight", "k_bias",
                                         "v_weight", "v_bias", "out_weight", "out_bias"};
static const char *const names_nobias[] = {"q_weight", "k_weight", "v_weight", "out_weight"};

static tg_status att_check(const tg_layer *layer, int in_ndim, const int64_t *in_shape,
                           const char *where)
{
    const attention_layer *a = (const attention_layer *)layer;
    if (in_ndim != 2)
        return tg__need_shape(layer, where, "a 2-D (L, D) sequence", in_ndim, in_shape);
    if (in_shape[1] % a->heads != 0) {
        char s[TG__SHAPE_STR];
        return tg__fail(TG_ESHAPE, "%s: the model dim D = %lld of %s is not a multiple of "
                        "num_heads %d", where, (long long)in_shape[1],
                        tg__batch_shape_str(s, in_ndim, in_shape), a->heads);
    }
    return TG_OK;
}

static tg_status att_build(tg_layer *layer, const tg__build_ctx *ctx, int in_ndim,
                           const int64_t *in_shape)
{
    attention_layer *a = (attention_layer *)layer;
    tg_status st = att_check(layer, in_ndim, in_shape, ctx->where);
    if (st != TG_OK)
        return st;
    int64_t d = in_shape[1];
    const char *const *names = a->opts.use_bias ? names_bias : names_nobias;
    for (int p = 0; p < 4; p++) {
        tg_tensor *w = tg__make_param(ctx, 2, (const int64_t[]){d, d}, a->opts.kernel_init,
                                      false, d, d);
        if (!w)
            return tg_last_status();
        layer->params[layer->n_params] = w;
        layer->param_names[layer->n_params] = names[layer->n_params];
        layer->n_params++;
        if (a->opts.use_bias) {
            tg_tensor *b = tg__make_param(ctx, 1, &d, a->opts.bias_init, true, d, d);
            if (!b)
                return tg_last_status();
            layer->params[layer->n_params] = b;
            layer->param_names[layer->n_params] = names[layer->n_params];
            layer->n_params++;
        }
    }
    layer->out_ndim = 2;
    layer->out_shape[0] = in_shape[0];
    layer->out_shape[1] = d;
    return TG_OK;
}

/* Any length, the same D. */
static tg_status att_accepts(const tg_layer *layer, int in_ndim, const int64_t *in_shape,
                             const char *where)
{
    tg_status st = att_check(layer, in_ndim, in_shape, where);
    if (st == TG_OK && in_shape[1] != layer->in_shape[1]) {
        char s[TG__SHAPE_STR];
        return tg__fail(TG_ESHAPE, "%s: input %s, but the layer was built for D = %lld", where,
                        tg__batch_shape_str(s, in_ndim, in_shape), (long long)layer->in_shape[1]);
    }
    return st;
}

/* x (N, L, D) @ w (D, D) + b, as heads (N, H, L, dh). */
static tg_tensor *project_heads(tg_tensor *x, tg_tensor *w, tg_tensor *b, int heads)
{
    tg_tensor *y = tg_matmul(x, w);
    if (b)
        y = tg_add(y, b);
    if (!y)
        return NULL;
    int64_t n = x->shape[0], len = x->shape[1], d = x->shape[2];
    y = tg_reshape(y, 4, (const int64_t[]){n, len, heads, d / heads});
    return tg_permute(y, (const int[]){0, 2, 1, 3});
}

static tg_tensor *att_forward(tg_layer *layer, tg_tensor *x, const tg__forward_ctx *ctx)
{
    attention_layer *a = (attention_layer *)layer;
    if (!x)
        return NULL;
    bool bias = a->opts.use_bias;
    int stride = bias ? 2 : 1;
    tg_tensor *const *p = layer->params;
    tg_tensor *q = project_heads(x, p[0], bias ? p[1] : NULL, a->heads);
    tg_tensor *k = project_heads(x, p[stride], bias ? p[stride + 1] : NULL, a->heads);
    tg_tensor *v = project_heads(x, p[2 * stride], bias ? p[2 * stride + 1] : NULL, a->heads);
    int64_t n = x->shape[0], len = x->shape[1], d = x->shape[2];
    double scale = 1.0 / sqrt((double)(d / a->heads));
    // Fused, with a stable softmax; causal hides the keys after each query.
    tg_tensor *h = tg_scaled_dot_product_attention(q, k, v, a->opts.causal, scale);
    h = tg_reshape(tg_permute(h, (const int[]){0, 2, 1, 3}), 3, (const int64_t[]){n, len, d});
    tg_tensor *y = tg_matmul(h, p[3 * stride]);
    return bias ? tg_add(y, p[3 * stride + 1]) : y;
}

static const tg__layer_vtable att_vt = {
    .type = "MultiHeadAttention",
    .base = "multi_head_attention",
    .size = sizeof(attention_layer),
    .build = att_build,
    .forward = att_forward,
    .accepts = att_accepts,
};

tg_attention_opts tg_attention_defaults(void)
{
    return (tg_attention_opts){.causal = false, .use_bias = true,
                               .kernel_init = TG_INIT(DEFAULT), .bias_init = TG_INIT(DEFAULT)};
}

tg_layer *tg_layer_attention(int num_heads, const tg_attention_opts *opts)
{
    static const char fn[] = "tg_layer_attention";
    tg_attention_opts o = opts ? *opts : tg_attention_defaults();
    if (num_heads < 1)
        return tg__fail_null(TG_EINVAL, "%s: num_heads must be >= 1 (got %d)", fn, num_heads);
    if (!tg__init_valid(o.kernel_init) || !tg__init_valid(o.bias_init))
        return tg__fail_null(TG_EINVAL, "%s: invalid %s initialiser", fn,
                             tg__init_valid(o.kernel_init) ? "bias" : "kernel");
    attention_layer *a = (attention_layer *)tg__layer_alloc(&att_vt, fn);
    if (!a)
        return NULL;
    a->heads = num_heads;
    a->opts = o;
    return &a->base;
}
