/* simple.c - the layers without parameters that are not pools: Flatten,
 * Dropout and Activation, plus the activation helper Dense and Conv2D share. */
#include <math.h>

#include "nn/nn_internal.h"

/* ---- activations ---- */

bool tg__act_valid(tg_activation act)
{
    return (unsigned)act <= (unsigned)TG_ACT_GELU;
}

const char *tg_activation_name(tg_activation act)
{
    switch (act) {
    case TG_ACT_NONE:
        return "linear";
    case TG_ACT_RELU:
        return "relu";
    case TG_ACT_SIGMOID:
        return "sigmoid";
    case TG_ACT_TANH:
        return "tanh";
    case TG_ACT_SOFTMAX:
        return "softmax";
    case TG_ACT_GELU:
        return "gelu";
    }
    return "?";
}

tg_tensor *tg__apply_act(tg_tensor *x, tg_activation act)
{
    if (!x)
        return NULL;
    switch (act) {
    case TG_ACT_NONE:
        return x;
    case TG_ACT_RELU:
        return tg_relu(x);
    case TG_ACT_SIGMOID:
        return tg_sigmoid(x);
    case TG_ACT_TANH:
        return tg_tanh(x);
    case TG_ACT_SOFTMAX:
        // Axis 1 is the feature axis of (N, F) and the channel axis of NCHW maps.
        return tg_softmax(x, 1);
    case TG_ACT_GELU:
        return tg_gelu(x);
    }
    return tg__fail_null(TG_EINVAL, "tg_model_forward: unknown activation %d", (int)act);
}

/* ---- Flatten ---- */

static tg_status flatten_build(tg_layer *layer, const tg__build_ctx *ctx, int in_ndim,
                               const int64_t *in_shape)
{
    int64_t n = 1;
    for (int i = 0; i < in_ndim; i++)
        n *= in_shape[i]; // cannot overflow: the previous layer's tensors exist
    layer->out_ndim = 1;
    layer->out_shape[0] = n;
    return TG_OK;
}

static tg_tensor *flatten_forward(tg_layer *layer, tg_tensor *x, const tg__forward_ctx *ctx)
{
    return tg_flatten(x, 1);
}

static const tg__layer_vtable flatten_vt = {
    .type = "Flatten",
    .base = "flatten",
    .size = sizeof(tg_layer),
    .build = flatten_build,
    .forward = flatten_forward,
};

tg_layer *tg_layer_flatten(void) { return tg__layer_alloc(&flatten_vt, "tg_layer_flatten"); }

/* ---- shared by the shape-preserving layers ---- */

static tg_status same_build(tg_layer *layer, const tg__build_ctx *ctx, int in_ndim,
                            const int64_t *in_shape)
{
    layer->out_ndim = in_ndim;
    for (int i = 0; i < in_ndim; i++)
        layer->out_shape[i] = in_shape[i];
    return TG_OK;
}

/* ---- Dropout ---- */

typedef struct dropout_layer {
    tg_layer base;
    double rate;
} dropout_layer;

static tg_tensor *dropout_forward(tg_layer *layer, tg_tensor *x, const tg__forward_ctx *ctx)
{
    dropout_layer *d = (dropout_layer *)layer;
    // Evaluation (or rate 0) is the identity: nothing to record.
    if (!ctx->training || d->rate == 0.0)
        return x;
    return tg_dropout(x, d->rate, true, ctx->rng);
}

static const tg__layer_vtable dropout_vt = {
    .type = "Dropout",
    .base = "dropout",
    .size = sizeof(dropout_layer),
    .build = same_build,
    .forward = dropout_forward,
};

tg_layer *tg_layer_dropout(double rate)
{
    static const char fn[] = "tg_layer_dropout";
    if (!(rate >= 0.0 && rate < 1.0))
        return tg__fail_null(TG_EINVAL, "%s: rate must be in [0, 1) (got %g)", fn, rate);
    dropout_layer *d = (dropout_layer *)tg__layer_alloc(&dropout_vt, fn);
    if (d)
        d->rate = rate;
    return d ? &d->base : NULL;
}

/* ---- Activation ---- */

typedef struct activation_layer {
    tg_layer base;
    tg_activation act;
} activation_layer;

static tg_tensor *activation_forward(tg_layer *layer, tg_tensor *x, const tg__forward_ctx *ctx)
{
    activation_layer *a = (activation_layer *)layer;
    if (ctx->skip_final_act && tg__act_is_final(a->act))
        return x;
    return tg__apply_act(x, a->act);
}

static const tg__layer_vtable activation_vt = {
    .type = "Activation",
    .base = "activation",
    .size = sizeof(activation_layer),
    .build = same_build,
    .forward = activation_forward,
};

tg_layer *tg_layer_activation(tg_activation act)
{
    static const char fn[] = "tg_layer_activation";
    if (!tg__act_valid(act))
        return tg__fail_null(TG_EINVAL, "%s: unknown activation %d", fn, (int)act);
    activation_layer *a = (activation_layer *)tg__layer_alloc(&activation_vt, fn);
    if (a)
        a->act = act;
    return a ? &a->base : NULL;
}
