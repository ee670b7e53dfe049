/* nn_internal.h - the layer vtable shared by lib/nn/. A layer is a struct
 * whose first member is `tg_layer`; the vtable says how to build it (check the
 * input shape, compute the output shape, create parameters), run it (ops on the
 * current tape) and free its private part. model.c drives them. Private. */
#ifndef TG_NN_INTERNAL_H
#define TG_NN_INTERNAL_H

#include "tapegrad/nn.h"
#include "tg_internal.h"

/* Parameters per layer (kernel, bias; attention has four of each) and
 * non-trainable buffers (BatchNorm's running mean and variance). */
#define TG__LAYER_MAX_PARAMS 8
#define TG__LAYER_MAX_BUFFERS 2
#define TG__LAYER_NAME 64

/* What build gets from the model. */
typedef struct tg__build_ctx {
    tg_dtype dtype;
    tg_init_scheme scheme;
    tg_rng *rng;
    const char *where; /* "tg_model_add: layer 3 (dense_1, Dense)", for messages */
} tg__build_ctx;

/* What forward gets from the model. */
typedef struct tg__forward_ctx {
    bool training;
    bool skip_final_act; /* logits: leave out a final softmax/sigmoid */
    tg_rng *rng;
    const char *fn; /* "tg_model_forward" or "tg_layer_call", for messages */
} tg__forward_ctx;

typedef struct tg__layer_vtable {
    const char *type; /* Keras class name: "Dense" */
    const char *base; /* Keras base name for automatic names: "dense" */
    size_t size;      /* sizeof the concrete struct */
    /* Validates in (per sample, no batch dim), writes the output shape into
     * layer->out_ndim/out_shape and creates layer->params (caller-owned,
     * requires grad, initialised from ctx->rng) and layer->buffers
     * (tg__add_buffer). On failure records a message starting with
     * ctx->where; the caller drops what was made. */
    tg_status (*build)(tg_layer *layer, const tg__build_ctx *ctx, int in_ndim,
                       const int64_t *in_shape);
    /* The output for a batch x (N, in_shape...), with ops on the current tape.
     * When ctx->skip_final_act is set the layer is the model's last and
     * leaves out a trailing softmax/sigmoid (tg__act_is_final). */
    tg_tensor *(*forward)(tg_layer *layer, tg_tensor *x, const tg__forward_ctx *ctx);
    /* tg_layer_call on a built layer: whether it takes a per-sample input
     * shape other than the one it was built for (a sequence of another
     * length, say); records a message starting with where otherwise. NULL:
     * only the build shape is accepted. */
    tg_status (*accepts)(const tg_layer *layer, int in_ndim, const int64_t *in_shape,
                         const char *where);
    /* Layers that look up integer ids (Embedding): the output for ids of
     * (ndim, shape), the first dim the batch. NULL for the others. */
    tg_tensor *(*forward_ids)(tg_layer *layer, int ndim, const int64_t *shape,
                              const int64_t *ids, const tg__forward_ctx *ctx);
    /* Optional, for a Sequential model: whether this layer and the next one
     * run as one op (Conv2D with ReLU, then MaxPool2D), and the pair's
     * output for x, which must be that of the two forwards in turn (the same
     * values and gradients; the op may keep fewer tensors or pass over
     * memory fewer times). */
    bool (*pairs_with)(const tg_layer *layer, const tg_layer *next);
    tg_tensor *(*forward_pair)(tg_layer *layer, tg_layer *next, tg_tensor *x,
                               const tg__forward_ctx *ctx);
} tg__layer_vtable;

struct tg_layer {
    const tg__layer_vtable *vt;
    char name[TG__LAYER_NAME];
    bool owned; /* added to a model */
    bool built;
    int out_ndim;
    int64_t out_shape[TG_MAX_DIMS];
    int n_params;
    tg_tensor *params[TG__LAYER_MAX_PARAMS];
    /* Names in checkpoints ("<layer>.<name>"); NULL means "weight" for the
     * first parameter and "bias" for the second. */
    const char *param_names[TG__LAYER_MAX_PARAMS];
    /* Non-trainable state: caller-side tensors that never require grad. */
    int n_buffers;
    tg_tensor *buffers[TG__LAYER_MAX_BUFFERS];
    const char *buffer_names[TG__LAYER_MAX_BUFFERS];
    /* The per-sample input shape it was built for. */
    int in_ndim;
    int64_t in_shape[TG_MAX_DIMS];
    const tg_model *model; /* owner, once added or registered */
};

/* A zeroed layer of vt->size bytes with vt set and the base name; NULL with
 * TG_ENOMEM naming fn. */
tg_layer *tg__layer_alloc(const tg__layer_vtable *vt, const char *fn);

/* Makes a parameter for a layer: a caller-owned tensor of (ndim, shape) in
 * ctx->dtype, filled by init (TG_INIT_DEFAULT resolved with the scheme: a
 * weight when is_bias is false), requiring grad. NULL on failure. */
tg_tensor *tg__make_param(const tg__build_ctx *ctx, int ndim, const int64_t *shape,
                          tg_init init, bool is_bias, int64_t fan_in, int64_t fan_out);
/* Makes a buffer of (ndim, shape) in ctx->dtype filled with value and
 * appends it to layer->buffers under name. TG_OK or a recorded failure. */
tg_status tg__add_buffer(tg_layer *layer, const tg__build_ctx *ctx, const char *name, int ndim,
                         const int64_t *shape, double value);
/* Frees the layer's parameters and buffers (used when build fails half way). */
void tg__layer_drop_params(tg_layer *layer);
/* Records TG_ESHAPE "<where>: <type> needs <need> per sample, got (None, ...)". */
tg_status tg__need_shape(const tg_layer *layer, const char *where, const char *need, int in_ndim,
                         const int64_t *in_shape);

/* A Sequential model's step at layer i of n (model.c): how many layers it
 * runs (2 when layers[i] pairs with the next, else 1), and their output. */
int tg__layer_span(tg_layer *const *layers, int n, int i);
tg_tensor *tg__layer_run(tg_layer *const *layers, int i, int span, tg_tensor *x,
                         const tg__forward_ctx *ctx);
/* The geometry tg_max_pool2d gets from a MaxPool2D layer (pool.c); false for
 * any other layer. */
bool tg__max_pool_layer_geom(const tg_layer *layer, tg_pool2d_geom *geom);

/* act(x); softmax over the feature axis (see nn.h). NULL passes through. */
tg_tensor *tg__apply_act(tg_tensor *x, tg_activation act);
bool tg__act_valid(tg_activation act);
/* Whether tg__apply_act may be skipped in logits mode. */
static inline bool tg__act_is_final(tg_activation act)
{
    return act == TG_ACT_SOFTMAX || act == TG_ACT_SIGMOID;
}

/* A Sequential model's forward pass with grad mode off (relay.c): the
 * layers before the last on two tapes of the relay's own, reset in turn as
 * each activation is consumed, the last on the current tape, which receives
 * the result alone. busy: held by the thread running it (others take the
 * ordinary path). */
typedef struct tg__relay {
    tg_tape *tapes[2]; /* made on first use */
    _Atomic int busy;
} tg__relay;
/* layers[0..n) on x, as tg_model_forward runs them (ctx->skip_final_act set
 * for the last when logits); the caller holds r->busy. */
tg_tensor *tg__relay_forward(tg__relay *r, tg_layer *const *layers, int n, tg_tensor *x,
                             tg__forward_ctx *ctx, bool logits);
void tg__relay_free(tg__relay *r);

/* "(None, 32, 26, 26)" for a per-sample shape; buf of TG__SHAPE_STR bytes. */
const char *tg__batch_shape_str(char *buf, int ndim, const int64_t *shape);
/* Validates an init (kind known, constant finite) for constructors. */
bool tg__init_valid(tg_init init);

/* Output size of one spatial axis: in, kernel k, stride s, dilation d and
 * padding mode; pad_lo and pad_hi receive the padding each side. Returns -1
 * when the effective kernel is larger than the padded input. */
int64_t tg__out_size(int64_t in, int64_t k, int64_t s, int64_t d, tg_padding mode,
                     int64_t pad, int64_t *pad_lo, int64_t *pad_hi);

#endif
