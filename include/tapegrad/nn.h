/* nn.h - Keras-like layers, a Sequential model and a functional one (layers
 * called as functions on tensors) built on the graph.
 *
 * A Sequential model is a stack of layers. Each layer's forward pass is a composition of
 * differentiable ops (ops.h, nn_ops.h) recorded on the current tape, so
 * tg_backward on a loss fills the gradients of the model's parameters.
 *
 *     tg_model *m = tg_model_new(TG_F32, TG_SHAPE(1, 28, 28), TG_SCHEME_KERAS, 42);
 *     tg_model_add(m, tg_layer_conv2d(32, 3, 3, TG_ACT_RELU));
 *     tg_model_add(m, tg_layer_maxpool2d(2));
 *     tg_model_add(m, tg_layer_flatten());
 *     tg_model_add(m, tg_layer_dense(10, TG_ACT_SOFTMAX));
 *     tg_model_summary(m, stdout);
 *     ...
 *     tg_tensor *logits = tg_model_forward(m, x, true);   // on the current tape
 *
 * Layouts (see docs/layers.md for the mapping to Keras's NHWC):
 *   - images are NCHW: a model's input shape is per sample and has no batch
 *     dimension, e.g. (1, 28, 28) for MNIST; forward takes (N, 1, 28, 28).
 *   - Dense: y = x @ W + b with W (in, units), Keras's layout.
 *   - Conv2D: W (OC, C, KH, KW), b (OC), PyTorch's layout.
 *
 * Ownership:
 *   - tg_layer_* constructors return a layer the caller owns until it is passed
 *     to tg_model_add, which always takes it (and frees it if adding fails).
 *   - A model owns its layers and their parameters. Parameters are caller-side
 *     (not tape) tensors that require grad and survive tg_tape_reset; they are
 *     freed by tg_model_free. Never tg_tensor_free them yourself.
 *   - Every pointer returned by an accessor below is borrowed and stays valid
 *     until tg_model_free (arrays of parameters: until the next tg_model_add).
 *
 * Errors follow status.h: constructors return NULL, other calls a tg_status,
 * with the reason in tg_last_error().
 */
#ifndef TAPEGRAD_NN_H
#define TAPEGRAD_NN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "nn_ops.h"
#include "ops.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- activations ---------------------------------------------------------
 * Applied after a Dense or Conv2D layer's affine map, or by an Activation
 * layer. Softmax runs over axis 1, the feature axis: the last axis of an
 * (N, F) batch, the channel axis of an (N, C, H, W) map (which is what Keras's
 * softmax over the last, channels-last axis means in NCHW). */
typedef enum tg_activation {
    TG_ACT_NONE = 0, /* identity */
    TG_ACT_RELU,     /* max(0, x) */
    TG_ACT_SIGMOID,  /* 1 / (1 + e^-x) */
    TG_ACT_TANH,     /* tanh x */
    TG_ACT_SOFTMAX,  /* e^x / sum(e^x) over axis 1 */
    TG_ACT_GELU,     /* x * Phi(x), the exact form (tg_gelu) */
} tg_activation;

/* "linear", "relu", "sigmoid", "tanh", "softmax", "gelu" (Keras's names); "?" when invalid. */
TG_API const char *tg_activation_name(tg_activation act);

/* ---- initialisers --------------------------------------------------------
 * fan_in and fan_out follow Keras: Dense W (in, units) has fan_in = in,
 * fan_out = units; Conv2D W (OC, C, KH, KW) has fan_in = C*KH*KW and
 * fan_out = OC*KH*KW. A bias uses its layer's fans. In the formulas, a fan
 * below 1 counts as 1 (as in Keras).
 *
 *   ZEROS            0
 *   CONSTANT         value
 *   GLOROT_UNIFORM   U(-l, l),  l = sqrt(6 / (fan_in + fan_out))
 *   GLOROT_NORMAL    TN(sqrt(2 / (fan_in + fan_out)))
 *   HE_UNIFORM       U(-l, l),  l = sqrt(6 / fan_in)
 *   HE_NORMAL        TN(sqrt(2 / fan_in))
 *   LECUN_NORMAL     TN(sqrt(1 / fan_in))
 *   TORCH_UNIFORM    U(-l, l),  l = 1 / sqrt(fan_in) (0 when fan_in is 0):
 *                    PyTorch's nn.Linear / nn.Conv2d default for weights
 *                    (kaiming_uniform with a = sqrt(5)) and biases.
 *
 * TN(s) is Keras's truncated normal: a normal with standard deviation
 * s / 0.87962566103423978, redrawn while it falls outside 2 of those standard
 * deviations. 0.8796... is the standard deviation of a standard normal
 * truncated to [-2, 2], so the values end up with standard deviation s.
 * Uniform draws take one tg_rng_uniform per element, normals one or more
 * tg_rng_normal per element, in row-major order: the result depends only on
 * the generator's state. */
typedef enum tg_init_kind {
    TG_INIT_DEFAULT = 0, /* the model's scheme decides (tg_init_scheme) */
    TG_INIT_ZEROS,
    TG_INIT_CONSTANT,
    TG_INIT_GLOROT_UNIFORM,
    TG_INIT_GLOROT_NORMAL,
    TG_INIT_HE_UNIFORM,
    TG_INIT_HE_NORMAL,
    TG_INIT_LECUN_NORMAL,
    TG_INIT_TORCH_UNIFORM,
} tg_init_kind;

typedef struct tg_init {
    tg_init_kind kind;
    double value; /* TG_INIT_CONSTANT only */
} tg_init;

/* TG_INIT(GLOROT_NORMAL) and TG_INIT_CONST(0.1) build a tg_init. */
#define TG_INIT(kind) ((tg_init){TG_INIT_##kind, 0.0})
#define TG_INIT_CONST(v) ((tg_init){TG_INIT_CONSTANT, (v)})

/* The model-wide defaults that TG_INIT_DEFAULT stands for. */
typedef enum tg_init_scheme {
    TG_SCHEME_KERAS = 0, /* weights GLOROT_UNIFORM, biases ZEROS */
    TG_SCHEME_PYTORCH,   /* weights and biases TORCH_UNIFORM */
} tg_init_scheme;

/* "zeros", "constant", "glorot_uniform", ... ("default" for TG_INIT_DEFAULT). */
TG_API const char *tg_init_name(tg_init_kind kind);

/* Overwrites every element of t (any dtype, any owner) with values drawn as
 * listed above, using rng. Errors (t untouched): TG_EINVAL for NULL t or rng,
 * an unknown kind, TG_INIT_DEFAULT (only a model can resolve it), a negative
 * fan, or a non-finite constant. */
TG_API tg_status tg_init_tensor(tg_tensor *t, tg_init init, int64_t fan_in, int64_t fan_out,
                                tg_rng *rng);

/* ---- layers ----------------------------------------------------------------
 * Every constructor returns an owned layer, or NULL with TG_EINVAL for a bad
 * argument (the message names the constructor and the value) or TG_ENOMEM.
 * Shapes are checked later, by tg_model_add, when the input shape is known. */
typedef struct tg_layer tg_layer;

/* Padding of Conv2D and pooling layers: tg_padding, in nn_ops.h. */

/* Dense (fully connected): y = act(x @ W + b), x (N, in), W (in, units),
 * b (units), applied over the last axis: a 2-D input per sample, a sequence
 * (L, in), gives (L, units) as in Keras. A 3-D or larger input per sample is
 * refused unless opts.last_axis is set: on an NCHW image the last axis is the
 * width, not the channels Keras's (NHWC) Dense would act on, so put a Flatten
 * before it (tapegrad reports the shape so that the difference cannot go
 * unnoticed). */
typedef struct tg_dense_opts {
    bool use_bias;      /* default true */
    tg_init kernel_init; /* default TG_INIT_DEFAULT */
    tg_init bias_init;   /* default TG_INIT_DEFAULT */
    bool last_axis;      /* default false: accept any rank, act on the last axis */
} tg_dense_opts;

TG_API tg_dense_opts tg_dense_defaults(void);
/* units >= 1 and a valid activation, else TG_EINVAL. */
TG_API tg_layer *tg_layer_dense(int64_t units, tg_activation act);
/* opts NULL means tg_dense_defaults(). */
TG_API tg_layer *tg_layer_dense_ex(int64_t units, tg_activation act, const tg_dense_opts *opts);

/* Conv2D: y = act(conv2d(x, W) + b), x (N, C, H, W), W (OC, C, KH, KW), b (OC)
 * -> (N, OC, OH, OW); a cross-correlation like every framework's. With
 * eff_k = dilation*(k-1) + 1, OH follows tg_padding. */
typedef struct tg_conv2d_opts {
    int64_t stride_h, stride_w;     /* default 1 */
    tg_padding padding;             /* default TG_PAD_VALID */
    int64_t pad_h, pad_w;           /* TG_PAD_EXPLICIT only (>= 0) */
    int64_t dilation_h, dilation_w; /* default 1 */
    bool use_bias;                  /* default true */
    tg_init kernel_init, bias_init; /* default TG_INIT_DEFAULT */
} tg_conv2d_opts;

TG_API tg_conv2d_opts tg_conv2d_defaults(void);
/* filters, kh, kw >= 1 and a valid activation, else TG_EINVAL. */
TG_API tg_layer *tg_layer_conv2d(int64_t filters, int64_t kh, int64_t kw, tg_activation act);
/* opts NULL means tg_conv2d_defaults(); strides and dilations must be >= 1,
 * explicit pads >= 0. */
TG_API tg_layer *tg_layer_conv2d_ex(int64_t filters, int64_t kh, int64_t kw, tg_activation act,
                                    const tg_conv2d_opts *opts);

/* MaxPooling2D / AveragePooling2D over each channel of (N, C, H, W). A max
 * pool pads with -infinity and an average pool divides by the number of real
 * (unpadded) elements in each window, as Keras does with padding="same". */
typedef struct tg_pool2d_opts {
    int64_t kh, kw;             /* window (>= 1) */
    int64_t stride_h, stride_w; /* 0 means the window size (Keras's default) */
    tg_padding padding;         /* default TG_PAD_VALID */
    int64_t pad_h, pad_w;       /* TG_PAD_EXPLICIT only; at most half the window */
} tg_pool2d_opts;

/* A size x size window with stride size and no padding (opts for _ex). */
TG_API tg_pool2d_opts tg_pool2d_defaults(int64_t size);
/* size >= 1, else TG_EINVAL. */
TG_API tg_layer *tg_layer_maxpool2d(int64_t size);
TG_API tg_layer *tg_layer_avgpool2d(int64_t size);
/* opts must not be NULL. */
TG_API tg_layer *tg_layer_maxpool2d_ex(const tg_pool2d_opts *opts);
TG_API tg_layer *tg_layer_avgpool2d_ex(const tg_pool2d_opts *opts);

/* Conv1D on (N, C, L): y = act(conv1d(x, W) + b), W (OC, C, K) and b (OC) in
 * PyTorch's layout -> (N, OC, OL), OL by tg_padding as for Conv2D (it runs as
 * a Conv2D of height 1). */
typedef struct tg_conv1d_opts {
    int64_t stride;                 /* default 1 */
    tg_padding padding;             /* default TG_PAD_VALID */
    int64_t pad;                    /* TG_PAD_EXPLICIT only (>= 0) */
    int64_t dilation;               /* default 1 */
    bool use_bias;                  /* default true */
    tg_init kernel_init, bias_init; /* default TG_INIT_DEFAULT */
} tg_conv1d_opts;

TG_API tg_conv1d_opts tg_conv1d_defaults(void);
/* filters, k >= 1 and a valid activation, else TG_EINVAL. */
TG_API tg_layer *tg_layer_conv1d(int64_t filters, int64_t k, tg_activation act);
TG_API tg_layer *tg_layer_conv1d_ex(int64_t filters, int64_t k, tg_activation act,
                                    const tg_conv1d_opts *opts);

/* GlobalAveragePooling2D: (N, C, H, W) -> (N, C), the mean of each channel. */
TG_API tg_layer *tg_layer_global_avgpool2d(void);

/* BatchNorm1D / BatchNorm2D: per channel c (axis 1),
 *   training:   y = (x - mean_B) / sqrt(var_B + eps) * gamma + beta, with the
 *               batch's mean and biased variance over every axis but 1; then
 *               running = momentum * running + (1 - momentum) * batch stat
 *   evaluation: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta
 * BatchNorm1D takes (C) or (C, L) per sample (PyTorch's BatchNorm1d),
 * BatchNorm2D (C, H, W). Parameters "weight" (gamma, ones) and "bias" (beta,
 * zeros) when affine; buffers "running_mean" (zeros) and "running_var"
 * (ones), which are saved in checkpoints and counted as non-trainable.
 * Training needs more than one value per channel (TG_ESHAPE otherwise).
 *
 * momentum follows Keras: the weight of the old running value. PyTorch's
 * momentum p is 1 - p here (its default 0.1 is 0.9). The running variance is
 * the unbiased batch variance (times n/(n-1)) when unbiased is set, as in
 * PyTorch; Keras uses the biased one. */
typedef struct tg_batchnorm_opts {
    double momentum; /* in [0, 1] */
    double eps;      /* > 0 */
    bool affine;     /* learn gamma and beta (Keras's center and scale) */
    bool unbiased;   /* the running variance uses the unbiased batch variance */
} tg_batchnorm_opts;

/* The framework's defaults: TG_SCHEME_KERAS momentum 0.99, eps 1e-3,
 * unbiased false; TG_SCHEME_PYTORCH momentum 0.9 (PyTorch's 0.1), eps 1e-5,
 * unbiased true; affine true in both. An unknown scheme gives Keras's. */
TG_API tg_batchnorm_opts tg_batchnorm_defaults(tg_init_scheme scheme);
/* opts NULL: tg_batchnorm_defaults of the model's scheme, chosen when the
 * layer is built. Otherwise momentum in [0, 1] and a finite eps > 0, else
 * TG_EINVAL. */
TG_API tg_layer *tg_layer_batchnorm1d(const tg_batchnorm_opts *opts);
TG_API tg_layer *tg_layer_batchnorm2d(const tg_batchnorm_opts *opts);

/* LayerNorm over the last n_dims axes of each sample (1 <= n_dims <= the
 * per-sample rank):
 *   y = (x - mean) / sqrt(var + eps) * gamma + beta
 * mean and biased var over those axes; gamma ("weight", ones) and beta
 * ("bias", zeros) have their shape when affine. eps <= 0 means the model's
 * scheme default: 1e-3 (Keras's LayerNormalization), 1e-5 (PyTorch).
 * n_dims >= 1 and a finite eps, else TG_EINVAL. */
TG_API tg_layer *tg_layer_layernorm(int n_dims, double eps, bool affine);

/* Embedding: integer ids -> rows of a table W (vocab, dim) ("weight",
 * initialised like Keras's "uniform" U(-0.05, 0.05) in the Keras scheme and
 * with a standard normal like torch.nn.Embedding in the PyTorch one). Ids of
 * shape (N, d...) give (N, d..., dim). In a Sequential model (or through
 * tg_layer_call) the ids come as a tensor of the model's dtype holding whole
 * numbers; tg_layer_call_ids takes them as int64 directly. Each id must be in
 * [0, vocab) (TG_ERANGE names the first bad one). The gradient of W adds up
 * the output gradients of every position that picked a row (a scatter-add).
 * vocab, dim >= 1, else TG_EINVAL. */
TG_API tg_layer *tg_layer_embedding(int64_t vocab, int64_t dim);

/* Multi-head self-attention on a sequence x (N, L, D) -> (N, L, D): with
 * Q = x Wq + bq, K = x Wk + bk, V = x Wv + bv split into num_heads heads of
 * D / num_heads, each head computes softmax(Q K^T / sqrt(D / num_heads)) V
 * (with causal set, position i attends to positions <= i only); the heads
 * are concatenated and y = heads Wo + bo. W* (D, D) in Dense's layout,
 * b* (D); names "q_weight", "q_bias", "k_weight", ..., "out_weight",
 * "out_bias". Initialised like Dense layers of D -> D. L may differ between
 * calls. num_heads >= 1, else TG_EINVAL; D must be a multiple of num_heads
 * (TG_ESHAPE when built). */
typedef struct tg_attention_opts {
    bool causal;   /* default false */
    bool use_bias; /* default true */
    tg_init kernel_init, bias_init; /* default TG_INIT_DEFAULT */
} tg_attention_opts;

TG_API tg_attention_opts tg_attention_defaults(void);
TG_API tg_layer *tg_layer_attention(int num_heads, const tg_attention_opts *opts);

/* Flatten: (N, d1, d2, ...) -> (N, d1*d2*...), sharing storage. On an NCHW
 * map the order is C, H, W (Keras flattens H, W, C). */
TG_API tg_layer *tg_layer_flatten(void);
/* Dropout: while the model is training, zeroes each element with probability
 * rate and scales the others by 1/(1-rate) (inverted dropout, tg_dropout),
 * drawing from the model's generator; in evaluation the identity.
 * 0 <= rate < 1, else TG_EINVAL. */
TG_API tg_layer *tg_layer_dropout(double rate);
/* An activation on its own (Keras's Activation layer). */
TG_API tg_layer *tg_layer_activation(tg_activation act);

/* Frees a layer that was never added to a model (one that was is owned and
 * freed by its model: passing it here is ignored). NULL is ignored. */
TG_API void tg_layer_free(tg_layer *layer);

/* Layer inspection. All strings and arrays are borrowed (valid as long as the
 * layer). Given NULL, these and the model getters below return "?", NULL, 0
 * or false (*ndim / *n set to 0) and record TG_EINVAL ("tg_layer_name: layer
 * is NULL"), keeping a pending failure's message as ops do. */
/* Unique name within its model, Keras style: "conv2d", "conv2d_1", "dense",
 * "max_pooling2d_1", ...; before tg_model_add, the type's base name. */
TG_API const char *tg_layer_name(const tg_layer *layer);
/* Keras class name: "Dense", "Conv2D", "MaxPooling2D", "AveragePooling2D",
 * "Flatten", "Dropout", "Activation", "Conv1D", "GlobalAveragePooling2D",
 * "BatchNorm1D", "BatchNorm2D", "LayerNormalization", "Embedding",
 * "MultiHeadAttention". */
TG_API const char *tg_layer_type(const tg_layer *layer);
/* Output shape per sample (no batch dim); *ndim receives its length.
 * NULL (and *ndim 0) before the layer is added to a model (for a functional
 * model's layer: before its first call). */
TG_API const int64_t *tg_layer_output_shape(const tg_layer *layer, int *ndim);
/* The layer's parameters in order (kernel, then bias when used); *n receives
 * the count (0 for layers without parameters, or before tg_model_add). */
TG_API tg_tensor *const *tg_layer_params(const tg_layer *layer, int *n);
/* Number of scalar parameters (0 before tg_model_add). */
TG_API int64_t tg_layer_param_count(const tg_layer *layer);
/* Parameter i's name in checkpoints ("weight", "bias", "q_weight", ...;
 * saved as "<layer name>.<name>"); NULL with TG_ERANGE out of range. */
TG_API const char *tg_layer_param_name(const tg_layer *layer, int i);
/* Non-trainable buffers (BatchNorm's running_mean, running_var): tensors
 * that never require grad, updated by the layer's forward in training mode,
 * never given to an optimizer, saved and restored by checkpoints. Borrowed
 * like the parameters. *n receives the count. */
TG_API tg_tensor *const *tg_layer_buffers(const tg_layer *layer, int *n);
TG_API const char *tg_layer_buffer_name(const tg_layer *layer, int i);
/* Number of scalars in the buffers. */
TG_API int64_t tg_layer_buffer_count(const tg_layer *layer);

/* ---- the Sequential model ------------------------------------------------ */
typedef struct tg_model tg_model;

/* A model with no layers yet, for samples of shape input_shape (ndim entries,
 * no batch dim, 1 <= ndim < TG_MAX_DIMS, each >= 1). Parameters are made in
 * dtype and initialised from a tg_rng seeded with seed, in the order they are
 * added, so a seed fixes every initial value; dropout draws from the same
 * generator afterwards. The model starts in training mode. Returns an owned
 * model (tg_model_free), or NULL: TG_EINVAL (bad dtype, ndim, dimension or
 * scheme), TG_ENOMEM. */
TG_API tg_model *tg_model_new(tg_dtype dtype, int ndim, const int64_t *input_shape,
                              tg_init_scheme scheme, uint64_t seed);

/* Appends layer, which the model takes in every case: on failure the layer is
 * freed (a layer already owned by a model is the one exception: TG_ESTATE,
 * nothing is freed). The layer's input shape is the previous layer's output
 * (or the model's input); its parameters are created and initialised here.
 * Errors: TG_EINVAL (NULL model or layer), TG_ESTATE, TG_ESHAPE (the layer
 * cannot take that input, e.g. Conv2D on a 1-D input, a kernel larger than
 * the padded input, Dense after an image without Flatten; the message is
 * "tg_model_add: layer <index> (<name>, <type>): ..." with the shapes in the
 * summary's notation), TG_ERANGE (a parameter count overflows), TG_ENOMEM.
 * On failure the model is unchanged (apart from its generator, which may
 * have advanced). */
TG_API tg_status tg_model_add(tg_model *m, tg_layer *layer);

/* Runs the layers on x (N, input_shape...) with ops on the current tape and
 * returns the output (tape-owned; released by tg_tape_reset). x must have the
 * model's dtype. With logits true the forward stops before a final softmax or
 * sigmoid (the activation of a last Dense/Conv2D, or a last Activation
 * layer), so a loss can use the stable fused form on logits
 * (softmax(forward(x, true)) == forward(x, false)); other models are
 * unaffected. Returns NULL on failure: TG_EINVAL (NULL), TG_EDTYPE,
 * TG_ESHAPE ("tg_model_forward: input 3x1x28x27, expected (N, 1, 28, 28)"),
 * TG_ESTATE (no layers, or no current tape), or an op's error. */
TG_API tg_tensor *tg_model_forward(tg_model *m, tg_tensor *x, bool logits);

/* Dropout is active, and BatchNorm uses and updates batch statistics, only
 * in training mode (the default). */
TG_API void tg_model_set_training(tg_model *m, bool training);
TG_API bool tg_model_training(const tg_model *m);

/* The generator the model drew its initial values from and draws dropout
 * masks from, for saving and restoring it (checkpoint.h). Borrowed, valid
 * until tg_model_free; writable. NULL for NULL. */
TG_API tg_rng *tg_model_rng(tg_model *m);

/* Every parameter of every layer, in layer order (kernel before bias), for an
 * optimizer. *n receives the count. The array is borrowed and valid until the
 * next tg_model_add (or, in a functional model, the next first call of a
 * layer, which builds it); the tensors until tg_model_free. Buffers are not
 * included. NULL model: NULL, *n 0. */
TG_API tg_tensor *const *tg_model_params(const tg_model *m, int *n);
/* Total number of scalar parameters. */
TG_API int64_t tg_model_param_count(const tg_model *m);

/* Every buffer of every layer, in layer order (not for an optimizer), and
 * the number of scalars in them ("Non-trainable params" in the summary).
 * Borrowed like tg_model_params. */
TG_API tg_tensor *const *tg_model_buffers(const tg_model *m, int *n);
TG_API int64_t tg_model_buffer_count(const tg_model *m);

/* Number of layers and the i-th one (borrowed; NULL with TG_ERANGE when out
 * of range). */
TG_API int tg_model_layer_count(const tg_model *m);
TG_API tg_layer *tg_model_layer(const tg_model *m, int i);
/* Per-sample input and output shapes (borrowed; the output is the input
 * while there are no layers). */
TG_API const int64_t *tg_model_input_shape(const tg_model *m, int *ndim);
TG_API const int64_t *tg_model_output_shape(const tg_model *m, int *ndim);
TG_API tg_dtype tg_model_dtype(const tg_model *m);

/* Writes a table like Keras's model.summary() to out, with shapes in
 * tapegrad's layout, (None, 32, 26, 26) for 32 channels of 26x26:
 *
 *   Model: "sequential"
 *   _________________________________________________________________
 *   Layer (type)                 Output Shape              Param #
 *   =================================================================
 *   conv2d (Conv2D)              (None, 32, 26, 26)        320
 *   _________________________________________________________________
 *   ...
 *   =================================================================
 *   Total params: 121,930
 *   Trainable params: 121,930
 *   Non-trainable params: 0
 *   _________________________________________________________________
 *
 * A row counts the layer's parameters and buffers, as Keras does; the
 * buffers are the non-trainable params. A functional model's title is
 * "model" and a layer not yet called shows "(unbuilt)". Columns widen for
 * long names. Errors: TG_EINVAL (NULL), TG_EIO (write failed). */
TG_API tg_status tg_model_summary(const tg_model *m, FILE *out);

/* Frees the model, its layers and their parameters. NULL is ignored. */
TG_API void tg_model_free(tg_model *m);

/* ---- the functional model ------------------------------------------------
 * Layers used as functions on tensors, so that user code can wire any graph:
 * a residual block x + f(x), a transformer block. The model owns the layers
 * registered in it, names them (for the summary and checkpoints), and lists
 * their parameters (for an optimizer) and buffers. A layer is built, its
 * parameters made and initialised from the model's generator, on its first
 * call, from the shape of that input; so run one forward pass before taking
 * tg_model_params for an optimizer or loading a checkpoint.
 *
 *     tg_model *m = tg_model_new_functional(TG_F32, TG_SCHEME_KERAS, 42);
 *     tg_layer *fc = tg_model_register(m, "fc", tg_layer_dense(16, TG_ACT_RELU));
 *     ...
 *     tg_tensor *y = tg_add(x, tg_layer_call(m, fc, x));   // on the current tape
 *
 * tg_model_forward and tg_model_add refuse a functional model (TG_ESTATE),
 * as tg_model_register refuses a Sequential one; its input and output
 * shapes are NULL (ndim 0). Everything else (training mode, params,
 * buffers, summary, save/load, training checkpoints) works on both. */

/* An empty functional model (see tg_model_new for dtype, scheme and seed).
 * NULL: TG_EINVAL (bad dtype or scheme), TG_ENOMEM. */
TG_API tg_model *tg_model_new_functional(tg_dtype dtype, tg_init_scheme scheme, uint64_t seed);
/* Whether m was made by tg_model_new_functional. */
TG_API bool tg_model_functional(const tg_model *m);

/* Registers layer under name (1..63 characters of A-Z a-z 0-9 _ . -, unique
 * in the model; "block0.attn" reads well in checkpoints), or under Keras's
 * automatic name when name is NULL. The model takes the layer in every case
 * (freeing it on failure, as tg_model_add does). Returns the layer (borrowed,
 * valid until tg_model_free), or NULL: TG_EINVAL (NULL model or layer, a bad
 * or taken name), TG_ESTATE (a Sequential model, or a layer already in a
 * model: not freed), TG_ENOMEM. */
TG_API tg_layer *tg_model_register(tg_model *m, const char *name, tg_layer *layer);

/* Runs layer on x (N, ...) with ops on the current tape, in the model's
 * training mode (dropout, BatchNorm), and returns the result (tape-owned).
 * The first call builds the layer for x's per-sample shape; later calls take
 * that shape again, or any the layer accepts (Dense and LayerNorm: the same
 * trailing axes; attention and Conv1D: any sequence length; Embedding: any
 * shape of ids). A layer of a Sequential model can be called too. NULL on
 * failure: TG_EINVAL (NULL), TG_EDTYPE, TG_ESTATE (a layer of another model,
 * or no current tape), TG_ESHAPE ("tg_layer_call: layer 'fc' (Dense): ..."),
 * or an op's error. A failed first call leaves the layer unbuilt. */
TG_API tg_tensor *tg_layer_call(tg_model *m, tg_layer *layer, tg_tensor *x);
/* The same for a layer that takes ids (Embedding): ids of shape
 * (ndim, shape), the first dim the batch (row-major, copied). TG_EINVAL as
 * well for another kind of layer. */
TG_API tg_tensor *tg_layer_call_ids(tg_model *m, tg_layer *layer, int ndim, const int64_t *shape,
                                    const int64_t *ids);

#ifdef __cplusplus
}
#endif
#endif
