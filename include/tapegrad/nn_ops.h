/* nn_ops.h - neural-network ops: 2-D convolution and pooling (NCHW), dropout,
 * losses and the accuracy metric. Like every op (ops.h) they return tensors
 * owned by the current tape, or NULL with the reason in tg_last_error(); all
 * work in float32 and float64, and every gradient is built from ops, so it is
 * differentiable again.
 *
 * Layout: images are (N, C, H, W), convolution weights (OC, C, KH, KW). A
 * Keras Conv2D kernel is stored (KH, KW, C, OC) ("HWIO") and its activations
 * (N, H, W, C): permute a kernel with perm {3, 2, 0, 1} and activations with
 * {0, 3, 1, 2} to bring them here. */
#ifndef TAPEGRAD_NN_OPS_H
#define TAPEGRAD_NN_OPS_H

#include "ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the border is padded (eff_k = dilation*(k-1) + 1). */
typedef enum tg_padding {
    TG_PAD_VALID = 0, /* none: out = floor((in - eff_k) / stride) + 1 (Keras "valid") */
    TG_PAD_SAME,      /* out = ceil(in / stride); the total padding
                         max((out-1)*stride + eff_k - in, 0) is split with the odd element
                         at the bottom/right, as in Keras/TF ("same") */
    TG_PAD_EXPLICIT,  /* the given pads */
} tg_padding;

typedef struct tg_conv2d_geom {
    int64_t stride_h, stride_w;     /* >= 1 (default 1) */
    int64_t dilation_h, dilation_w; /* >= 1 (default 1) */
    tg_padding padding;
    int64_t pad_top, pad_bottom, pad_left, pad_right; /* >= 0, TG_PAD_EXPLICIT only */
} tg_conv2d_geom;

/* Stride 1, dilation 1, no padding. */
TG_API tg_conv2d_geom tg_conv2d_geom_default(void);

/* Cross-correlation, as in every framework:
 *   out[n,o,i,j] = bias[o] + sum_{c,u,v} x[n,c, i*sh - pt + u*dh, j*sw - pl + v*dw] w[o,c,u,v]
 * x (N, C, H, W), w (OC, C, KH, KW), bias (OC) or NULL; geom NULL means the
 * default. Output (N, OC, OH, OW), OH = (H + pt + pb - dh*(KH-1) - 1) / sh + 1.
 * Errors: TG_ESHAPE (not 4-D, channel mismatch, kernel larger than the padded
 * input, bias size), TG_EINVAL (bad geometry), TG_ERANGE (a size, stride,
 * dilation or pad above 2^31 - 1), TG_EDTYPE (mixed dtypes). */
TG_API tg_tensor *tg_conv2d(tg_tensor *x, tg_tensor *w, tg_tensor *bias,
                            const tg_conv2d_geom *geom);

typedef struct tg_pool2d_geom {
    int64_t kernel_h, kernel_w; /* >= 1 */
    int64_t stride_h, stride_w; /* >= 1; 0 means "equal to the kernel" (Keras's default) */
    tg_padding padding;
    int64_t pad_top, pad_bottom, pad_left, pad_right; /* each < the kernel size */
    bool count_include_pad; /* avg only: divide by the full window (PyTorch's default) instead
                               of the valid part (Keras's); default false */
} tg_pool2d_geom;

/* A k x k window with stride k and no padding. */
TG_API tg_pool2d_geom tg_pool2d_geom_square(int64_t k);

/* Maximum over each window of x (N, C, H, W). The gradient goes to the
 * selected element; on ties, the first in window order (row by row). Padding
 * is never selected. Errors (both pools): TG_ESHAPE (not 4-D, window larger
 * than the padded input), TG_EINVAL (NULL geometry, kernel or stride < 1, a
 * pad negative or not smaller than the kernel), TG_ERANGE (a size above
 * 2^31 - 1). */
TG_API tg_tensor *tg_max_pool2d(tg_tensor *x, const tg_pool2d_geom *geom);
/* Mean over each window (see count_include_pad). */
TG_API tg_tensor *tg_avg_pool2d(tg_tensor *x, const tg_pool2d_geom *geom);

/* Inverted dropout: in training, each element is zeroed with probability p
 * and the rest scaled by 1/(1-p), with one tg_rng_uniform draw per element in
 * order (element kept when the draw is >= p); the mask is a constant, so the
 * gradient is g * mask. Not training (or p == 0): returns x itself, no copy.
 * p must be in [0, 1). */
TG_API tg_tensor *tg_dropout(tg_tensor *x, double p, bool training, tg_rng *rng);

/* ---- normalisation and attention ------------------------------------------ */

/* Layer normalisation over the last n_norm_dims axes of x (1 <= n_norm_dims
 * <= ndim), like torch.nn.functional.layer_norm with normalized_shape = those
 * dims:
 *   y = (x - mean) / sqrt(var + eps) * gamma + beta
 * mean and var (biased: divided by N, the number of normalised elements) are
 * taken over each group of the last n_norm_dims axes. gamma and beta have
 * exactly the normalised shape, or are NULL (no scale, no shift). The
 * forward and backward are fused (one pass per group); with TG_CREATE_GRAPH
 * the gradient is built from ops, so it is differentiable again. Errors:
 * TG_EINVAL (NULL x, n_norm_dims out of range, eps negative or not finite),
 * TG_ESHAPE (gamma/beta not of the normalised shape, an empty normalised
 * shape), TG_EDTYPE (gamma or beta of another dtype), TG_ESTATE (a stale
 * tensor). */
TG_API tg_tensor *tg_layer_norm(tg_tensor *x, int n_norm_dims, tg_tensor *gamma,
                                tg_tensor *beta, double eps);

/* Scaled dot-product attention, like
 * torch.nn.functional.scaled_dot_product_attention:
 *   out = softmax(scale q k^T + M) v, softmax over the keys,
 * for q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv) with the same number of
 * dims (at least 2) and equal leading dims (no broadcasting); out is
 * (..., Tq, Dv). scale <= 0 means 1/sqrt(D). With causal, query i sees keys
 * j <= i only (M is -inf above the diagonal, aligned at the top left as
 * PyTorch's is_causal does, so Tq != Tk is allowed and every query sees at
 * least key 0); a hidden key gets exactly zero probability. The softmax
 * subtracts each row's maximum. The forward and backward are fused (GEMMs and
 * one pass per row, keeping the (..., Tq, Tk) probabilities on the tape); with
 * TG_CREATE_GRAPH the gradient is built from ops, so it is differentiable
 * again. Errors: TG_EINVAL (NULL input, scale NaN or infinite), TG_ESHAPE
 * (dims that do not fit, D or Tk of 0), TG_EDTYPE (mixed dtypes), TG_ESTATE
 * (a stale tensor). */
TG_API tg_tensor *tg_scaled_dot_product_attention(tg_tensor *q, tg_tensor *k, tg_tensor *v,
                                                  bool causal, double scale);

/* ---- losses --------------------------------------------------------------- */
typedef enum tg_reduction {
    TG_REDUCE_MEAN = 0, /* mean over samples (the default everywhere) */
    TG_REDUCE_SUM,
    TG_REDUCE_NONE, /* one loss per sample */
} tg_reduction;

/* Mean squared error (pred - target)^2; shapes must be equal (no silent
 * broadcasting). NONE keeps pred's shape; MEAN averages every element. */
TG_API tg_tensor *tg_mse_loss(tg_tensor *pred, tg_tensor *target, tg_reduction red);
/* Binary cross-entropy of probabilities p against targets t (same shape):
 * -(t ln p + (1-t) ln(1-p)), with p and 1-p clamped to [e^-100, 1] so each log
 * is >= -100 (PyTorch's floor): a saturated p gives a large finite loss, and a
 * clamped term passes no gradient. */
TG_API tg_tensor *tg_bce_loss(tg_tensor *prob, tg_tensor *target, tg_reduction red);
/* The same from logits x, stable for any x: softplus(x) - x t. */
TG_API tg_tensor *tg_bce_with_logits_loss(tg_tensor *logits, tg_tensor *target,
                                          tg_reduction red);
/* Sparse categorical cross-entropy from logits (N, K) and integer labels
 * labels[N] in [0, K): logsumexp(x_n) - x_n[label_n], one fused op whose
 * gradient is (softmax(x) - onehot) * g. This is the stable path for a softmax
 * output layer: give it the logits (tg_model_forward(..., true)). TG_ERANGE
 * for a label outside [0, K). */
TG_API tg_tensor *tg_cross_entropy(tg_tensor *logits, const int64_t *labels, tg_reduction red);
/* Categorical cross-entropy from logits (N, K) against one-hot or soft
 * targets (N, K): -sum_k t_k log_softmax(x)_k. */
TG_API tg_tensor *tg_cross_entropy_soft(tg_tensor *logits, tg_tensor *target, tg_reduction red);
/* Negative log-likelihood of log-probabilities (N, K): -logp_n[label_n]. */
TG_API tg_tensor *tg_nll_loss(tg_tensor *log_probs, const int64_t *labels, tg_reduction red);

/* Fraction of rows of scores (N, K) whose first maximal entry is labels[n];
 * n must equal N >= 1. A plain function (no tape). NaN with TG_EINVAL (NULL),
 * TG_ESHAPE (bad shape) or TG_ERANGE (a label outside [0, K)). */
TG_API double tg_accuracy(const tg_tensor *scores, const int64_t *labels, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
