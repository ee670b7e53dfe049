/* unary.h - the one-input elementwise ops, one row each.
 *
 * Each row of TG_UNARY_OPS is the whole definition of an op: the library
 * expands it into the public function tg_<name>(x) declared below, its op
 * entry, its float32 and float64 kernels, its fused backward and its
 * composed backward; the tests expand it into a float64 gradient check (first
 * and second order) on x drawn from [lo, hi], a fused-versus-composed check
 * and an error check; docs/ops.md's table of these ops is generated from it.
 * Adding an op is adding a row (docs/hacking.md walks through one).
 *
 *   X(name, formula, derivative,        what the docs show, with y = f(x)
 *     forward,                          y as C, in x of type T (float or double;
 *                                       <tgmath.h> picks expf or exp)
 *     fused,                            dL/dx as C, in g = dL/dy, x, y (type T):
 *                                       the one-pass fast path, used when no
 *                                       graph of the backward is recorded
 *     backward,                         dL/dx built from tapegrad ops on the
 *                                       tensors g, x, y: recorded, so it can be
 *                                       differentiated again (grad of grad)
 *     lo, hi)                           where the gradient check samples x
 *
 * Every op returns a tensor on the current tape, or NULL with TG_EINVAL when x
 * is NULL (see ops.h for the rules all ops share). NaN in gives NaN out. */
#ifndef TAPEGRAD_UNARY_H
#define TAPEGRAD_UNARY_H

#include "autograd.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 / (1 + e^-x) without overflow for large |x| (a C expression in x). */
#define TG__SIGMOID_OF(x) ((x) >= 0 ? 1 / (1 + exp(-(x))) : exp(x) / (1 + exp(x)))

/* gelu_tanh's t = tanh(√(2/π) (x + 0.044715 x³)), as C and from ops. */
#define TG__GELU_T(x)                                                                      \
    TG__TANH_OF((T)0.7978845608028654 * ((x) + (T)0.044715 * ((x) * (x) * (x))))
#define TG__GELU_T_OPS(x)                                                                  \
    tg_tanh(tg_mul_scalar(tg_add(x, tg_mul_scalar(tg_mul(tg_square(x), x), 0.044715)),     \
                          0.7978845608028654))

/* tanh: in float32 the library's own kernel (lib/kernels/tanh.c: the same bits
 * on every CPU, within 0.5 ulp), in float64 libm's. Only the library expands
 * the rows' C expressions, where tg__tanhf is declared. */
#define TG__TANH_OF(x) _Generic((x), float: tg__tanhf, default: tanh)(x)

#define TG_UNARY_OPS(X)                                                                    \
    X(neg, "−x", "−g",                                                                     \
      -x, -g, tg_neg(g), -2, 2)                                                            \
    X(exp, "e^x", "g · y",                                                                 \
      exp(x), g * y, tg_mul(g, y), -2, 2)                                                  \
    X(log, "ln x", "g / x",                                                                \
      log(x), g / x, tg_div(g, x), 0.2, 3)                                                 \
    X(sqrt, "√x", "g / (2y)",                                                              \
      sqrt(x), (T)0.5 * g / y, tg_div(tg_mul_scalar(g, 0.5), y), 0.2, 3)                   \
    X(abs, "\\|x\\|", "g · sign(x) (0 at 0)",                                              \
      fabs(x), g * (T)((x > 0) - (x < 0)), tg_mul(g, tg_sign(x)), -2, 2)                   \
    X(tanh, "tanh x", "g · (1 − y²)",                                                      \
      TG__TANH_OF(x), g * (1 - y * y), tg_mul(g, tg_rsub_scalar(tg_mul(y, y), 1.0)), -2, 2)       \
    X(sigmoid, "1 / (1 + e^−x)", "g · y · (1 − y)",                                        \
      TG__SIGMOID_OF(x), g * (y * (1 - y)),                                                \
      tg_mul(g, tg_mul(y, tg_rsub_scalar(y, 1.0))), -3, 3)                                 \
    X(relu, "max(0, x)", "g · [x > 0]",                                                    \
      x > 0 || x != x ? x : 0, g * (T)(x > 0), tg_mul(g, tg_gt_scalar(x, 0.0)), -2, 2)     \
    X(softplus, "ln(1 + e^x)", "g · sigmoid(x)",                                           \
      (x > 0 ? x : 0) + log1p(exp(-fabs(x))), g * TG__SIGMOID_OF(x),                       \
      tg_mul(g, tg_sigmoid(x)), -3, 3)                                                     \
    X(copy, "x", "g",                                                                      \
      x, g, g, -2, 2)                                                                      \
    X(log1p, "ln(1 + x)", "g / (1 + x)",                                                   \
      log1p(x), g / (1 + x), tg_div(g, tg_add_scalar(x, 1.0)), -0.5, 2)                    \
    X(expm1, "e^x − 1", "g · (y + 1)",                                                     \
      expm1(x), g * (y + 1), tg_mul(g, tg_add_scalar(y, 1.0)), -2, 2)                      \
    X(sin, "sin x", "g · cos x",                                                           \
      sin(x), g * cos(x), tg_mul(g, tg_cos(x)), -3, 3)                                     \
    X(cos, "cos x", "−g · sin x",                                                          \
      cos(x), -(g * sin(x)), tg_neg(tg_mul(g, tg_sin(x))), -3, 3)                          \
    X(square, "x²", "g · 2x",                                                              \
      x * x, g * (2 * x), tg_mul(g, tg_mul_scalar(x, 2.0)), -2, 2)                         \
    X(rsqrt, "1 / √x", "−g · y³ / 2",                                                      \
      1 / sqrt(x), g * (y * y * y) * (T)-0.5,                                              \
      tg_mul_scalar(tg_mul(g, tg_mul(tg_mul(y, y), y)), -0.5), 0.3, 3)                     \
    X(erf, "erf x", "g · 2/√π · e^(−x²)",                                                  \
      erf(x), g * ((T)1.1283791670955126 * exp(-(x * x))),                                 \
      tg_mul(g, tg_mul_scalar(tg_exp(tg_neg(tg_mul(x, x))), 1.1283791670955126)), -2, 2)   \
    X(silu, "x · sigmoid(x)", "g · s · (1 + x · (1 − s)), s = sigmoid(x)",                 \
      x * TG__SIGMOID_OF(x), g * (TG__SIGMOID_OF(x) * (x * (1 - TG__SIGMOID_OF(x)) + 1)),  \
      tg_mul(g, tg_mul(tg_sigmoid(x), tg_add_scalar(tg_mul(x, tg_rsub_scalar(             \
          tg_sigmoid(x), 1.0)), 1.0))), -3, 3)                                             \
    X(gelu, "x · Φ(x), Φ(x) = (1 + erf(x / √2)) / 2", "g · (Φ(x) + x · e^(−x²/2) / √(2π))", \
      (T)0.5 * x * (1 + erf(x * (T)0.7071067811865476)),                                   \
      g * ((T)0.5 * (1 + erf(x * (T)0.7071067811865476)) +                                 \
           x * ((T)0.3989422804014327 * exp(x * x * (T)-0.5))),                            \
      tg_mul(g, tg_add(tg_mul_scalar(tg_add_scalar(tg_erf(tg_mul_scalar(x,                 \
          0.7071067811865476)), 1.0), 0.5), tg_mul(x, tg_mul_scalar(tg_exp(               \
          tg_mul_scalar(tg_mul(x, x), -0.5)), 0.3989422804014327)))), -3, 3)                \
    X(gelu_tanh, "x · (1 + t) / 2, t = tanh(√(2/π) · (x + 0.044715 x³))",                  \
      "g · ((1 + t) / 2 + x · (1 − t²) · √(2/π) · (1 + 0.134145 x²) / 2)",                 \
      (T)0.5 * x * (1 + TG__GELU_T(x)),                                                     \
      g * ((T)0.5 * (1 + TG__GELU_T(x)) + x * (1 - TG__GELU_T(x) * TG__GELU_T(x)) *       \
           ((T)0.3989422804014327 * (1 + (T)0.134145 * (x * x)))),                         \
      tg_mul(g, tg_add(tg_mul_scalar(tg_add_scalar(TG__GELU_T_OPS(x), 1.0), 0.5),          \
          tg_mul(tg_mul(tg_mul_scalar(x, 0.3989422804014327), tg_rsub_scalar(tg_square(   \
          TG__GELU_T_OPS(x)), 1.0)), tg_add_scalar(tg_mul_scalar(tg_square(x), 0.134145),  \
          1.0)))), -3, 3)

#define TG__UNARY_DECLARE(name, ...) TG_API tg_tensor *tg_##name(tg_tensor *x);
TG_UNARY_OPS(TG__UNARY_DECLARE)
#undef TG__UNARY_DECLARE

#ifdef __cplusplus
}
#endif

#endif
