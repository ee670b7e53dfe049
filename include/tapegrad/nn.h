/* nn.h - Keras-like layers and a Sequential model built on the graph.
 *
 * A model is a stack of layers. Each layer's forward pass is a composition of
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
} tg_activation;

/* "linear", "relu", "sigmoid", "tanh", "softmax" (Keras's names); "?" when invalid. */
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
 * b (units). The input must be 1-D per sample: put a Flatten before it on an
 * image (Keras would apply Dense to the last axis instead; tapegrad reports
 * the shape so that the NCHW/NHWC difference cannot go unnoticed). */
typedef struct tg_dense_opts {
    bool use_bias;      /* default true */
    tg_init kernel_init; /* default TG_INIT_DEFAULT */
    tg_init bias_init;   /* default TG_INIT_DEFAULT */
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
 * "Flatten", "Dropout", "Activation". */
TG_API const char *tg_layer_type(const tg_layer *layer);
/* Output shape per sample (no batch dim); *ndim receives its length.
 * NULL (and *ndim 0) before the layer is added to a model. */
TG_API const int64_t *tg_layer_output_shape(const tg_layer *layer, int *ndim);
/* The layer's parameters in order (kernel, then bias when used); *n receives
 * the count (0 for layers without parameters, or before tg_model_add). */
TG_API tg_tensor *const *tg_layer_params(const tg_layer *layer, int *n);
/* Number of scalar parameters (0 before tg_model_add). */
TG_API int64_t tg_layer_param_count(const tg_layer *layer);

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

/* Dropout is active only in training mode (the default). */
TG_API void tg_model_set_training(tg_model *m, bool training);
TG_API bool tg_model_training(const tg_model *m);

/* The generator the model drew its initial values from and draws dropout
 * masks from, for saving and restoring it (checkpoint.h). Borrowed, valid
 * until tg_model_free; writable. NULL for NULL. */
TG_API tg_rng *tg_model_rng(tg_model *m);

/* Every parameter of every layer, in layer order (kernel before bias), for an
 * optimizer. *n receives the count. The array is borrowed and valid until the
 * next tg_model_add; the tensors until tg_model_free. NULL model: NULL, *n 0. */
TG_API tg_tensor *const *tg_model_params(const tg_model *m, int *n);
/* Total number of scalar parameters. */
TG_API int64_t tg_model_param_count(const tg_model *m);

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
 * Columns widen for long names. Errors: TG_EINVAL (NULL), TG_EIO (write failed). */
TG_API tg_status tg_model_summary(const tg_model *m, FILE *out);

/* Frees the model, its layers and their parameters. NULL is ignored. */
TG_API void tg_model_free(tg_model *m);

#ifdef __cplusplus
}
#endif
#endif
