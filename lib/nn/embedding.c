/* embedding.c - the Embedding layer: integer ids -> rows of a table W
 * (vocab, dim). The lookup is tg_index_select on axis 0, whose gradient is a
 * scatter-add (rows picked several times receive the sum of their output
 * gradients). Ids come as int64 (tg_layer_call_ids) or as a tensor holding
 * whole numbers (tg_layer_call, a Sequential model). */
#include <math.h>

#include "nn/nn_internal.h"
#include "ops/ops_internal.h"

typedef struct embedding_layer {
    tg_layer base;
    int64_t vocab, dim;
} embedding_layer;

static tg_status emb_build(tg_layer *layer, const tg__build_ctx *ctx, int in_ndim,
                           const int64_t *in_shape)
{
    embedding_layer *e = (embedding_layer *)layer;
    if (in_ndim + 1 >= TG_MAX_DIMS)
        return tg__need_shape(layer, ctx->where, "fewer dims of ids", in_ndim, in_shape);
    layer->params[0] = tg__make_param(ctx, 2, (const int64_t[]){e->vocab, e->dim},
                                      TG_INIT(ZEROS), false, e->vocab, e->dim);
    if (!layer->params[0])
        return tg_last_status();
    layer->n_params = 1;
    // Keras's "uniform" (U(-0.05, 0.05)) or torch.nn.Embedding's N(0, 1).
    tg_tensor *w = layer->params[0];
    for (int64_t i = 0; i < w->numel; i++)
        tg__set(w, i, ctx->scheme == TG_SCHEME_PYTORCH ? tg_rng_normal(ctx->rng)
                                                       : 0.05 * (2 * tg_rng_uniform(ctx->rng) - 1));
    layer->out_ndim = in_ndim + 1;
    for (int i = 0; i < in_ndim; i++)
        layer->out_shape[i] = in_shape[i];
    layer->out_shape[in_ndim] = e->dim;
    return TG_OK;
}

/* Any shape of ids that leaves room for the vector axis. */
static tg_status emb_accepts(const tg_layer *layer, int in_ndim, const int64_t *in_shape,
                             const char *where)
{
    if (in_ndim + 1 >= TG_MAX_DIMS)
        return tg__need_shape(layer, where, "fewer dims of ids", in_ndim, in_shape);
    return TG_OK;
}

static tg_tensor *emb_lookup(tg_layer *layer, int ndim, const int64_t *shape, const int64_t *ids,
                             const tg__forward_ctx *ctx)
{
    embedding_layer *e = (embedding_layer *)layer;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    for (int64_t k = 0; k < n; k++)
        if (ids[k] < 0 || ids[k] >= e->vocab)
            return tg__fail_null(TG_ERANGE, "%s: layer '%s' (Embedding): id %lld at position "
                                 "%lld is outside [0, %lld)", ctx->fn, layer->name,
                                 (long long)ids[k], (long long)k, (long long)e->vocab);
    int64_t out[TG_MAX_DIMS];
    for (int i = 0; i < ndim; i++)
        out[i] = shape[i];
    out[ndim] = e->dim;
    return tg_reshape(tg_index_select(layer->params[0], 0, n, ids), ndim + 1, out);
}

static tg_tensor *emb_forward(tg_layer *layer, tg_tensor *x, const tg__forward_ctx *ctx)
{
    if (!x)
        return NULL;
    tg_tape *tape = tg__tape_for(ctx->fn);
    int64_t *ids = tape ? tg__tape_alloc(tape, ctx->fn, (size_t)(x->numel ? x->numel : 1) *
                                                           sizeof *ids)
                        : NULL;
    if (!ids)
        return NULL;
    for (int64_t k = 0; k < x->numel; k++) {
        double v = tg__get(x, k);
        if (!(v == floor(v) && fabs(v) < 9e15))
            return tg__fail_null(TG_EINVAL, "%s: layer '%s' (Embedding): input %g at position "
                                 "%lld is not a whole number (ids)", ctx->fn, layer->name, v,
                                 (long long)k);
        ids[k] = (int64_t)v;
    }
    return emb_lookup(layer, x->ndim, x->shape, ids, ctx);
}

static const tg__layer_vtable emb_vt = {
    .type = "Embedding",
    .base = "embedding",
    .size = sizeof(embedding_layer),
    .build = emb_build,
    .forward = emb_forward,
    .accepts = emb_accepts,
    .forward_ids = emb_lookup,
};

tg_layer *tg_layer_embedding(int64_t vocab, int64_t dim)
{
    static const char fn[] = "tg_layer_embedding";
    const int64_t big = (int64_t)1 << 40;
    if (vocab < 1 || dim < 1 || vocab > big || dim > big)
        return tg__fail_null(TG_EINVAL, "%s: vocab %lld and dim %lld must be in 1..2^40", fn,
                             (long long)vocab, (long long)dim);
    embedding_layer *e = (embedding_layer *)tg__layer_alloc(&emb_vt, fn);
    if (!e)
        return NULL;
    e->vocab = vocab;
    e->dim = dim;
    return &e->base;
}
