/* binary.h - two-input elementwise ops defined by one row each, the way
 * unary.h defines the one-input ones. The inputs broadcast like numpy (see
 * ops.h); each row expands into the public function tg_<name>(a, b), its op
 * entry, its float32 and float64 kernels over broadcast operands, its fused
 * and its composed backward, its tests and its docs/ops.md line.
 *
 *   X(name, formula, da, db,            what the docs show (y = f(a, b))
 *     forward,                          y as C, in a, b of type T
 *     fused_a, fused_b,                 dL/da and dL/db as C, in g, a, b, y,
 *                                       computed over the broadcast shape (the
 *                                       engine sums them back to each input's)
 *     backward_a, backward_b,           the same from tapegrad ops on the
 *                                       tensors g, a, b, y (differentiable)
 *     lo, hi)                           where the gradient check samples a, b
 *
 * The arithmetic ops (tg_add ... tg_minimum) are older hand-written entries
 * with tuned kernels; they are declared in ops.h. */
#ifndef TAPEGRAD_BINARY_H
#define TAPEGRAD_BINARY_H

#include "autograd.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TG_BINARY_OPS(X)                                                                   \
    X(hypot, "√(a² + b²)", "g · a / y", "g · b / y",                                        \
      hypot(a, b), g * a / y, g * b / y,                                                   \
      tg_div(tg_mul(g, a), y), tg_div(tg_mul(g, b), y), 0.3, 2)                            \
    X(atan2, "atan2(a, b), the angle of (b, a)", "g · b / (a² + b²)", "−g · a / (a² + b²)", \
      atan2(a, b), g * b / (a * a + b * b), -(g * a) / (a * a + b * b),                    \
      tg_div(tg_mul(g, b), tg_add(tg_mul(a, a), tg_mul(b, b))),                             \
      tg_div(tg_neg(tg_mul(g, a)), tg_add(tg_mul(a, a), tg_mul(b, b))), 0.3, 2)

#define TG__BINARY_DECLARE(name, ...) TG_API tg_tensor *tg_##name(tg_tensor *a, tg_tensor *b);
TG_BINARY_OPS(TG__BINARY_DECLARE)
#undef TG__BINARY_DECLARE

#ifdef __cplusplus
}
#endif

#endif
