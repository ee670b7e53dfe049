/* ops.h - differentiable operations on tensors.
 *
 * Every op returns a new tensor owned by the current tape (tg_tape_new makes
 * one current), released by tg_tape_reset/tg_tape_free, or NULL on failure
 * with the reason in tg_last_error(). All inputs of one op share a dtype
 * (TG_EDTYPE otherwise); the result has that dtype. An op given a NULL input
 * returns NULL and keeps the first failure's message, so an expression can be
 * checked once, at its end.
 *
 * When grad mode is on (the default) and an input requires grad, the op is
 * recorded on the tape and its result requires grad. Elementwise binary ops
 * broadcast like numpy: shapes are aligned at the right; each pair of
 * dimensions must be equal or one of them 1.
 *
 * Axes may be negative (counted from the end). Reductions take an array of
 * axes; axes == NULL with n_axes == 0 reduces over every element.
 *
 * The formula of each op's gradient is listed in docs/ops.md.
 */
#ifndef TAPEGRAD_OPS_H
#define TAPEGRAD_OPS_H

#include "autograd.h"
#include "tensor.h"
#include "binary.h"
#include "unary.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- elementwise, two tensors (broadcasting) ---- */
TG_API tg_tensor *tg_add(tg_tensor *a, tg_tensor *b);     /* a + b */
TG_API tg_tensor *tg_sub(tg_tensor *a, tg_tensor *b);     /* a - b */
TG_API tg_tensor *tg_mul(tg_tensor *a, tg_tensor *b);     /* a * b */
TG_API tg_tensor *tg_div(tg_tensor *a, tg_tensor *b);     /* a / b */
TG_API tg_tensor *tg_pow(tg_tensor *a, tg_tensor *b);     /* a ^ b (a > 0 for d/db) */
TG_API tg_tensor *tg_maximum(tg_tensor *a, tg_tensor *b); /* max(a, b); ties send grad to a */
TG_API tg_tensor *tg_minimum(tg_tensor *a, tg_tensor *b); /* min(a, b); ties send grad to a */
/* where(cond, a, b): a where cond != 0, else b. cond gets no gradient. */
TG_API tg_tensor *tg_where(tg_tensor *cond, tg_tensor *a, tg_tensor *b);

/* Comparisons: 1 where true, 0 where false. Piecewise constant, so their
 * results never require grad (their gradient is zero almost everywhere). */
TG_API tg_tensor *tg_gt(tg_tensor *a, tg_tensor *b); /* a > b */
TG_API tg_tensor *tg_ge(tg_tensor *a, tg_tensor *b); /* a >= b */
TG_API tg_tensor *tg_lt(tg_tensor *a, tg_tensor *b); /* a < b */
TG_API tg_tensor *tg_le(tg_tensor *a, tg_tensor *b); /* a <= b */
TG_API tg_tensor *tg_eq(tg_tensor *a, tg_tensor *b); /* a == b */

/* ---- elementwise with a scalar ---- */
TG_API tg_tensor *tg_add_scalar(tg_tensor *x, double c);  /* x + c */
TG_API tg_tensor *tg_sub_scalar(tg_tensor *x, double c);  /* x - c */
TG_API tg_tensor *tg_rsub_scalar(tg_tensor *x, double c); /* c - x */
TG_API tg_tensor *tg_mul_scalar(tg_tensor *x, double c);  /* x * c */
TG_API tg_tensor *tg_div_scalar(tg_tensor *x, double c);  /* x / c (c != 0) */
TG_API tg_tensor *tg_rdiv_scalar(tg_tensor *x, double c); /* c / x */
TG_API tg_tensor *tg_pow_scalar(tg_tensor *x, double p);  /* x ^ p */
TG_API tg_tensor *tg_gt_scalar(tg_tensor *x, double c);   /* x > c as 1/0, no grad */

/* ---- elementwise, one tensor ----
 * tg_neg, tg_exp, tg_log, tg_relu, tg_tanh, tg_gelu and the rest: one row each
 * in unary.h, with their formulas. These take parameters or have no gradient: */
TG_API tg_tensor *tg_sign(tg_tensor *x);     /* -1, 0, 1; no grad */
TG_API tg_tensor *tg_leaky_relu(tg_tensor *x, double slope); /* x > 0 ? x : slope*x */
/* min(max(x, lo), hi); gradient 1 inside [lo, hi], 0 outside. lo <= hi. */
TG_API tg_tensor *tg_clamp(tg_tensor *x, double lo, double hi);

/* ---- reductions ---- */
TG_API tg_tensor *tg_sum(tg_tensor *x, const int *axes, int n_axes, bool keepdim);
TG_API tg_tensor *tg_mean(tg_tensor *x, const int *axes, int n_axes, bool keepdim);
/* Maximum; the gradient goes to the first maximal element (row-major order)
 * of each reduced group. */
TG_API tg_tensor *tg_max(tg_tensor *x, const int *axes, int n_axes, bool keepdim);
/* Minimum; the gradient goes to the first minimal element (row-major order)
 * of each reduced group, as tg_max's does. NaN wins (and propagates), as in
 * numpy. TG_ESHAPE for an empty group. */
TG_API tg_tensor *tg_min(tg_tensor *x, const int *axes, int n_axes, bool keepdim);
/* Product (1 for an empty group). The gradient to x_i is g times the product
 * of the other elements of its group, exact when some elements are 0: without
 * zeros it is g y / x_i; with zeros the recorded gradient (TG_CREATE_GRAPH)
 * multiplies the others directly, which takes n times the memory of x for
 * groups of n, and the fused one counts the zeros. */
TG_API tg_tensor *tg_prod(tg_tensor *x, const int *axes, int n_axes, bool keepdim);
/* Variance sum((x - mean)^2) / (N - correction) over each group of N
 * elements, like torch.var(x, dim, correction=c): correction 0 is the biased
 * (population) variance, 1 Bessel's unbiased one. TG_EINVAL for a negative
 * correction, TG_ESHAPE when N <= correction. */
TG_API tg_tensor *tg_var(tg_tensor *x, const int *axes, int n_axes, int correction,
                         bool keepdim);
/* sqrt(tg_var(...)); its gradient is infinite where the variance is 0. */
TG_API tg_tensor *tg_std(tg_tensor *x, const int *axes, int n_axes, int correction,
                         bool keepdim);
/* ln(sum(e^x)), computed as m + ln(sum(e^(x-m))) with m the maximum. */
TG_API tg_tensor *tg_logsumexp(tg_tensor *x, const int *axes, int n_axes, bool keepdim);
/* Running sum along axis: y_i = x_0 + ... + x_i. The gradient is the running
 * sum of g from the other end, dx_j = g_j + ... + g_(n-1). */
TG_API tg_tensor *tg_cumsum(tg_tensor *x, int axis);

/* Index along axis of the first maximal (minimal) element of each group, like
 * numpy's argmax (a NaN counts as the extreme: the first NaN wins). Not an op:
 * nothing goes on a tape and no gradient exists; x may be any live tensor.
 * out receives n_out int64 indices in [0, size of axis), laid out as x's
 * shape without that axis (row-major); n_out must equal that count (the
 * numel of x divided by the size of axis). Returns TG_OK, or TG_EINVAL (NULL
 * x or out, axis out of range), TG_ESHAPE (an empty axis, n_out wrong),
 * TG_ESTATE (a stale tensor); out is untouched on failure. For the index over
 * every element, pass tg_flatten(x, 0) with axis 0. */
TG_API tg_status tg_argmax(const tg_tensor *x, int axis, int64_t *out, int64_t n_out);
TG_API tg_status tg_argmin(const tg_tensor *x, int axis, int64_t *out, int64_t n_out);

/* ---- linear algebra ---- */
/* a (..., M, K) @ b (..., K, N) -> (..., M, N); the batch dims broadcast.
 * 1-D operands follow numpy: a 1-D a (K) is a row (1, K) and a 1-D b (K) a
 * column (K, 1), and that added dim is dropped from the result, so (K) @ (K)
 * is a 0-dim dot product, (K) @ (..., K, N) is (..., N) and (..., M, K) @ (K)
 * is (..., M). TG_ESHAPE for a 0-dim operand or mismatched inner dims. */
TG_API tg_tensor *tg_matmul(tg_tensor *a, tg_tensor *b);

/* ---- shape ---- */
/* Same elements, new shape; one entry may be -1 (inferred). Shares storage. */
TG_API tg_tensor *tg_reshape(tg_tensor *x, int ndim, const int64_t *shape);
/* Keeps dims before `axis` and folds the rest into one: (N, C, H, W) with
 * axis 1 -> (N, C*H*W). Shares storage. */
TG_API tg_tensor *tg_flatten(tg_tensor *x, int axis);
/* perm[i] is the input axis that becomes output axis i. */
TG_API tg_tensor *tg_permute(tg_tensor *x, const int *perm);
TG_API tg_tensor *tg_transpose(tg_tensor *x, int axis0, int axis1);
/* Broadcasts x to shape (numpy rules); the gradient is summed back. */
TG_API tg_tensor *tg_expand(tg_tensor *x, int ndim, const int64_t *shape);
/* Elements start, start+step, ... below stop along axis (step > 0). start and
 * stop may be negative (counted from the end) and are clipped like Python's. */
TG_API tg_tensor *tg_slice(tg_tensor *x, int axis, int64_t start, int64_t stop, int64_t step);
/* Joins n tensors along an existing axis (other dims equal). */
TG_API tg_tensor *tg_concat(int n, tg_tensor *const *xs, int axis);
/* Joins n same-shape tensors along a new axis. */
TG_API tg_tensor *tg_stack(int n, tg_tensor *const *xs, int axis);
/* Picks entries idx[0..n) (each in [0, size)) along axis. */
TG_API tg_tensor *tg_index_select(tg_tensor *x, int axis, int64_t n, const int64_t *idx);
/* out[i][j][k] = x[i][index[i][j][k]][k] for axis 1 (likewise for any axis),
 * like torch.gather: index has x's ndim, shape (ndim, shape) with every dim
 * except axis at most x's, and holds shape's product entries. */
TG_API tg_tensor *tg_gather(tg_tensor *x, int axis, int ndim, const int64_t *shape,
                            const int64_t *index);

/* ---- normalisation ---- */
/* e^x / sum(e^x) along axis, computed with the maximum subtracted. */
TG_API tg_tensor *tg_softmax(tg_tensor *x, int axis);
/* x - logsumexp(x) along axis. */
TG_API tg_tensor *tg_log_softmax(tg_tensor *x, int axis);

/* ---- graph helpers ---- */
/* The same values (shared storage), cut from the graph: requires_grad false. */
TG_API tg_tensor *tg_detach(tg_tensor *x);
/* Tape-owned constants (never require grad). */
TG_API tg_tensor *tg_full(tg_dtype dtype, int ndim, const int64_t *shape, double value);
TG_API tg_tensor *tg_full_like(tg_tensor *x, double value);
TG_API tg_tensor *tg_scalar(tg_dtype dtype, double value);

#ifdef __cplusplus
}
#endif
#endif
