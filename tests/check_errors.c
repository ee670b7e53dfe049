/* check_errors.c - the error paths of every public function in status.h,
 * tensor.h, autograd.h and ops.h: NULL arguments, bad shapes, bad axes, bad
 * scalars and mixed dtypes must give NULL or a negative status and a message
 * that starts with the function's own name, never a crash (fork mode turns a
 * crash into one failed test). Also the rules around the message: the first
 * failure of an expression is the one kept, a success does not clear it, and a
 * failed call leaves outputs untouched and records nothing on the tape.
 *
 * The op cases are X-macro tables: one line per call, run by a loop test, so a
 * failure names the case (see the _i in Check's output and the label in the
 * message). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tapegrad/tapegrad.h>
#include "tg_check.h"

/* ---- fixture: a tape and a few caller-owned tensors ---- */

typedef struct fx {
    tg_tape *tape;
    tg_tensor *a;    /* float32 2x3, values 1..6 */
    tg_tensor *d;    /* float64 2x3 */
    tg_tensor *d32;  /* float64 3x2 */
    tg_tensor *m45;  /* float32 4x5 */
    tg_tensor *v4;   /* float32 (4,) */
    tg_tensor *t32;  /* float32 3x2 */
    tg_tensor *s;    /* float32 0-dim */
    tg_tensor *e;    /* float32 (0,), empty */
    tg_tensor *b223; /* float32 2x2x3 */
    tg_tensor *b332; /* float32 3x3x2 */
    tg_tensor *g;    /* float64 2x3, requires grad */
} fx;

static void fx_make(fx *f)
{
    const double v[18] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
    f->tape = tg_tape_new();
    f->a = tg_tensor_from_doubles(TG_F32, TG_SHAPE(2, 3), v);
    f->d = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 3), v);
    f->d32 = tg_tensor_from_doubles(TG_F64, TG_SHAPE(3, 2), v);
    f->m45 = tg_tensor_zeros(TG_F32, TG_SHAPE(4, 5));
    f->v4 = tg_tensor_from_doubles(TG_F32, TG_SHAPE(4), v);
    f->t32 = tg_tensor_from_doubles(TG_F32, TG_SHAPE(3, 2), v);
    f->s = tg_tensor_full(TG_F32, 0, NULL, 2);
    f->e = tg_tensor_zeros(TG_F32, TG_SHAPE(0));
    f->b223 = tg_tensor_from_doubles(TG_F32, TG_SHAPE(2, 2, 3), v);
    f->b332 = tg_tensor_from_doubles(TG_F32, TG_SHAPE(3, 3, 2), v);
    f->g = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 3), v);
    tg_tensor_set_requires_grad(f->g, true);
}

static void fx_free(fx *f)
{
    tg_tensor *all[] = {f->a, f->d, f->d32, f->m45, f->v4, f->t32, f->s, f->e, f->b223, f->b332,
                        f->g};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        tg_tensor_free(all[i]);
    tg_tape_free(f->tape);
}

static const int AX0[] = {0}, AX2[] = {2}, AXM3[] = {-3}, AXDUP[] = {1, -1};
static const int PERM00[] = {0, 0}, PERM02[] = {0, 2}, PERM10[] = {1, 0};
static const int64_t IDX03[] = {0, 3}, IDXM1[] = {-1}, IDX0[] = {0, 0, 0, 0, 0, 0};
static const int64_t IDX5[] = {0, 5};
static const int64_t NINE[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};

/* X(label, call, status, message substring). `f` is the fixture. */
#define OP_ERRORS(X)                                                                           \
    /* NULL inputs: each op names itself and the input. */                                     \
    X(add_null0, tg_add(NULL, f->a), TG_EINVAL, "tg_add: input 0 is NULL")                      \
    X(add_null1, tg_add(f->a, NULL), TG_EINVAL, "tg_add: input 1 is NULL")                      \
    X(sub_null, tg_sub(f->a, NULL), TG_EINVAL, "tg_sub: input 1 is NULL")                       \
    X(mul_null, tg_mul(NULL, f->a), TG_EINVAL, "tg_mul: input 0 is NULL")                       \
    X(div_null, tg_div(f->a, NULL), TG_EINVAL, "tg_div: input 1 is NULL")                       \
    X(pow_null, tg_pow(NULL, f->a), TG_EINVAL, "tg_pow: input 0 is NULL")                       \
    X(maximum_null, tg_maximum(f->a, NULL), TG_EINVAL, "tg_maximum: input 1 is NULL")           \
    X(minimum_null, tg_minimum(NULL, f->a), TG_EINVAL, "tg_minimum: input 0 is NULL")           \
    X(where_null0, tg_where(NULL, f->a, f->a), TG_EINVAL, "tg_where: input 0 is NULL")          \
    X(where_null2, tg_where(f->a, f->a, NULL), TG_EINVAL, "tg_where: input 2 is NULL")          \
    X(gt_null, tg_gt(NULL, f->a), TG_EINVAL, "tg_gt: input 0 is NULL")                          \
    X(ge_null, tg_ge(f->a, NULL), TG_EINVAL, "tg_ge: input 1 is NULL")                          \
    X(lt_null, tg_lt(NULL, f->a), TG_EINVAL, "tg_lt: input 0 is NULL")                          \
    X(le_null, tg_le(NULL, f->a), TG_EINVAL, "tg_le: input 0 is NULL")                          \
    X(eq_null, tg_eq(f->a, NULL), TG_EINVAL, "tg_eq: input 1 is NULL")                          \
    X(add_scalar_null, tg_add_scalar(NULL, 1), TG_EINVAL, "tg_add_scalar: input 0 is NULL")     \
    X(sub_scalar_null, tg_sub_scalar(NULL, 1), TG_EINVAL, "tg_sub_scalar: input 0 is NULL")     \
    X(rsub_scalar_null, tg_rsub_scalar(NULL, 1), TG_EINVAL, "tg_rsub_scalar: input 0 is NULL")  \
    X(mul_scalar_null, tg_mul_scalar(NULL, 1), TG_EINVAL, "tg_mul_scalar: input 0 is NULL")     \
    X(div_scalar_null, tg_div_scalar(NULL, 2), TG_EINVAL, "tg_div_scalar: input 0 is NULL")     \
    X(rdiv_scalar_null, tg_rdiv_scalar(NULL, 2), TG_EINVAL, "tg_rdiv_scalar: input 0 is NULL")  \
    X(pow_scalar_null, tg_pow_scalar(NULL, 2), TG_EINVAL, "tg_pow_scalar: input 0 is NULL")     \
    X(gt_scalar_null, tg_gt_scalar(NULL, 0), TG_EINVAL, "tg_gt_scalar: input 0 is NULL")        \
    X(neg_null, tg_neg(NULL), TG_EINVAL, "tg_neg: input 0 is NULL")                             \
    X(exp_null, tg_exp(NULL), TG_EINVAL, "tg_exp: input 0 is NULL")                             \
    X(log_null, tg_log(NULL), TG_EINVAL, "tg_log: input 0 is NULL")                             \
    X(sqrt_null, tg_sqrt(NULL), TG_EINVAL, "tg_sqrt: input 0 is NULL")                          \
    X(abs_null, tg_abs(NULL), TG_EINVAL, "tg_abs: input 0 is NULL")                             \
    X(sign_null, tg_sign(NULL), TG_EINVAL, "tg_sign: input 0 is NULL")                          \
    X(tanh_null, tg_tanh(NULL), TG_EINVAL, "tg_tanh: input 0 is NULL")                          \
    X(sigmoid_null, tg_sigmoid(NULL), TG_EINVAL, "tg_sigmoid: input 0 is NULL")                 \
    X(relu_null, tg_relu(NULL), TG_EINVAL, "tg_relu: input 0 is NULL")                          \
    X(leaky_relu_null, tg_leaky_relu(NULL, 0.1), TG_EINVAL, "tg_leaky_relu: input 0 is NULL")   \
    X(softplus_null, tg_softplus(NULL), TG_EINVAL, "tg_softplus: input 0 is NULL")              \
    X(clamp_null, tg_clamp(NULL, 0, 1), TG_EINVAL, "tg_clamp: input 0 is NULL")                 \
    X(sum_null, tg_sum(NULL, NULL, 0, false), TG_EINVAL, "tg_sum: input 0 is NULL")             \
    X(mean_null, tg_mean(NULL, NULL, 0, false), TG_EINVAL, "tg_mean: input 0 is NULL")          \
    X(max_null, tg_max(NULL, NULL, 0, false), TG_EINVAL, "tg_max: input 0 is NULL")             \
    X(logsumexp_null, tg_logsumexp(NULL, NULL, 0, false), TG_EINVAL,                            \
      "tg_logsumexp: input 0 is NULL")                                                          \
    X(matmul_null, tg_matmul(f->a, NULL), TG_EINVAL, "tg_matmul: input 1 is NULL")              \
    X(matmul_vec_null, tg_matmul(NULL, f->v4), TG_EINVAL, "tg_matmul: input 0 is NULL")         \
    X(min_null, tg_min(NULL, NULL, 0, false), TG_EINVAL, "tg_min: input 0 is NULL")             \
    X(prod_null, tg_prod(NULL, NULL, 0, false), TG_EINVAL, "tg_prod: input 0 is NULL")          \
    X(var_null, tg_var(NULL, NULL, 0, 1, false), TG_EINVAL, "tg_var: input 0 is NULL")          \
    X(std_null, tg_std(NULL, NULL, 0, 1, false), TG_EINVAL, "tg_std: input 0 is NULL")          \
    X(cumsum_null, tg_cumsum(NULL, 0), TG_EINVAL, "tg_cumsum: input 0 is NULL")                 \
    X(gelu_tanh_null, tg_gelu_tanh(NULL), TG_EINVAL, "tg_gelu_tanh: input 0 is NULL")           \
    X(layer_norm_null, tg_layer_norm(NULL, 1, NULL, NULL, 1e-5), TG_EINVAL,                     \
      "tg_layer_norm: input 0 is NULL")                                                         \
    X(attention_null, tg_scaled_dot_product_attention(f->a, NULL, f->a, false, 0), TG_EINVAL,  \
      "tg_scaled_dot_product_attention: input 1 is NULL")                                       \
    X(reshape_null, tg_reshape(NULL, TG_SHAPE(6)), TG_EINVAL, "tg_reshape: input 0 is NULL")    \
    X(flatten_null, tg_flatten(NULL, 0), TG_EINVAL, "tg_flatten: input 0 is NULL")              \
    X(permute_null, tg_permute(NULL, PERM10), TG_EINVAL, "tg_permute: input 0 is NULL")         \
    X(transpose_null, tg_transpose(NULL, 0, 1), TG_EINVAL, "tg_transpose: input 0 is NULL")     \
    X(expand_null, tg_expand(NULL, TG_SHAPE(2)), TG_EINVAL, "tg_expand: input 0 is NULL")       \
    X(slice_null, tg_slice(NULL, 0, 0, 1, 1), TG_EINVAL, "tg_slice: input 0 is NULL")           \
    X(concat_null, tg_concat(2, (tg_tensor *[]){f->a, NULL}, 0), TG_EINVAL,                     \
      "tg_concat: input 1 is NULL")                                                             \
    X(stack_null, tg_stack(2, (tg_tensor *[]){f->a, NULL}, 0), TG_EINVAL,                       \
      "tg_stack: input 1 is NULL")                                                              \
    X(index_select_null, tg_index_select(NULL, 0, 1, IDX0), TG_EINVAL,                          \
      "tg_index_select: input 0 is NULL")                                                       \
    X(gather_null, tg_gather(NULL, 0, TG_SHAPE(1), IDX0), TG_EINVAL,                            \
      "tg_gather: input 0 is NULL")                                                             \
    X(softmax_null, tg_softmax(NULL, 0), TG_EINVAL, "tg_softmax: input 0 is NULL")              \
    X(log_softmax_null, tg_log_softmax(NULL, 0), TG_EINVAL, "tg_log_softmax: input 0 is NULL")  \
    X(detach_null, tg_detach(NULL), TG_EINVAL, "tg_detach: input 0 is NULL")                    \
    X(copy_null, tg_copy(NULL), TG_EINVAL, "tg_copy: input 0 is NULL")                          \
    X(full_like_null, tg_full_like(NULL, 0), TG_EINVAL, "tg_full_like: input 0 is NULL")        \
    /* float32 with float64. */                                                                 \
    X(add_dtype, tg_add(f->a, f->d), TG_EDTYPE,                                                 \
      "tg_add: dtype mismatch, input 0 is float32 but input 1 is float64")                      \
    X(sub_dtype, tg_sub(f->d, f->a), TG_EDTYPE,                                                 \
      "tg_sub: dtype mismatch, input 0 is float64 but input 1 is float32")                      \
    X(mul_dtype, tg_mul(f->a, f->d), TG_EDTYPE, "tg_mul: dtype mismatch")                       \
    X(div_dtype, tg_div(f->a, f->d), TG_EDTYPE, "tg_div: dtype mismatch")                       \
    X(pow_dtype, tg_pow(f->a, f->d), TG_EDTYPE, "tg_pow: dtype mismatch")                       \
    X(maximum_dtype, tg_maximum(f->a, f->d), TG_EDTYPE, "tg_maximum: dtype mismatch")           \
    X(minimum_dtype, tg_minimum(f->a, f->d), TG_EDTYPE, "tg_minimum: dtype mismatch")           \
    X(where_dtype, tg_where(f->a, f->a, f->d), TG_EDTYPE,                                       \
      "tg_where: dtype mismatch, input 0 is float32 but input 2 is float64")                    \
    X(gt_dtype, tg_gt(f->a, f->d), TG_EDTYPE, "tg_gt: dtype mismatch")                          \
    X(ge_dtype, tg_ge(f->a, f->d), TG_EDTYPE, "tg_ge: dtype mismatch")                          \
    X(lt_dtype, tg_lt(f->a, f->d), TG_EDTYPE, "tg_lt: dtype mismatch")                          \
    X(le_dtype, tg_le(f->a, f->d), TG_EDTYPE, "tg_le: dtype mismatch")                          \
    X(eq_dtype, tg_eq(f->a, f->d), TG_EDTYPE, "tg_eq: dtype mismatch")                          \
    X(matmul_dtype, tg_matmul(f->a, f->d32), TG_EDTYPE, "tg_matmul: dtype mismatch")            \
    X(concat_dtype, tg_concat(2, (tg_tensor *[]){f->a, f->d}, 0), TG_EDTYPE,                    \
      "tg_concat: dtype mismatch, input 0 is float32 but input 1 is float64")                   \
    X(stack_dtype, tg_stack(2, (tg_tensor *[]){f->a, f->d}, 0), TG_EDTYPE,                      \
      "tg_stack: dtype mismatch")                                                               \
    /* Shapes. */                                                                               \
    X(add_shape, tg_add(f->a, f->v4), TG_ESHAPE, "tg_add: shapes 2x3 vs 4 do not broadcast")    \
    X(sub_shape, tg_sub(f->a, f->v4), TG_ESHAPE, "tg_sub: shapes 2x3 vs 4 do not broadcast")    \
    X(mul_shape, tg_mul(f->v4, f->a), TG_ESHAPE, "tg_mul: shapes 4 vs 2x3 do not broadcast")    \
    X(div_shape, tg_div(f->a, f->t32), TG_ESHAPE, "tg_div: shapes 2x3 vs 3x2 do not broadcast") \
    X(pow_shape, tg_pow(f->a, f->v4), TG_ESHAPE, "tg_pow: shapes 2x3 vs 4")                     \
    X(maximum_shape, tg_maximum(f->a, f->v4), TG_ESHAPE, "tg_maximum: shapes 2x3 vs 4")         \
    X(minimum_shape, tg_minimum(f->a, f->v4), TG_ESHAPE, "tg_minimum: shapes 2x3 vs 4")         \
    X(where_shape, tg_where(f->a, f->a, f->v4), TG_ESHAPE,                                      \
      "tg_where: shapes 2x3 vs 2x3 vs 4 do not broadcast")                                      \
    X(gt_shape, tg_gt(f->a, f->v4), TG_ESHAPE, "tg_gt: shapes 2x3 vs 4")                        \
    X(eq_shape, tg_eq(f->a, f->v4), TG_ESHAPE, "tg_eq: shapes 2x3 vs 4")                        \
    X(matmul_inner, tg_matmul(f->a, f->m45), TG_ESHAPE,                                         \
      "tg_matmul: inner dims 3 vs 4 (a 2x3, b 4x5)")                                            \
    X(matmul_1d, tg_matmul(f->v4, f->a), TG_ESHAPE,                                             \
      "tg_matmul: inner dims 4 vs 2 (a 4, b 2x3)")                                              \
    X(matmul_0d, tg_matmul(f->a, f->s), TG_ESHAPE,                                              \
      "tg_matmul: a 0-dim operand has no matrix product (a 2x3, b scalar)")                     \
    X(matmul_batch, tg_matmul(f->b223, f->b332), TG_ESHAPE,                                     \
      "tg_matmul: batch dims do not broadcast (a 2x2x3, b 3x3x2)")                              \
    X(reshape_count, tg_reshape(f->a, TG_SHAPE(4, 2)), TG_ESHAPE,                               \
      "tg_reshape: cannot view 2x3 (6 elements) as 4x2")                                        \
    X(reshape_infer_twice, tg_reshape(f->a, TG_SHAPE(-1, -1)), TG_EINVAL,                       \
      "tg_reshape: dimension 1 is -1 (only one -1 allowed)")                                    \
    X(reshape_negative, tg_reshape(f->a, TG_SHAPE(-2, -3)), TG_EINVAL,                          \
      "tg_reshape: dimension 0 is -2")                                                          \
    X(reshape_ndim9, tg_reshape(f->a, 9, NINE), TG_EINVAL, "tg_reshape: ndim 9 outside 0..8")   \
    X(reshape_null_shape, tg_reshape(f->a, 2, NULL), TG_EINVAL, "tg_reshape: shape is NULL")     \
    X(reshape_huge, tg_reshape(f->a, TG_SHAPE(1LL << 40, 1LL << 40, 0)), TG_ESHAPE,             \
      "tg_reshape: cannot view 2x3")                                                            \
    X(expand_shape, tg_expand(f->a, TG_SHAPE(2, 4)), TG_ESHAPE,                                 \
      "tg_expand: cannot broadcast 2x3 to 2x4")                                                 \
    X(expand_fewer, tg_expand(f->a, TG_SHAPE(6)), TG_EINVAL, "tg_expand: target has 1 dims")    \
    X(expand_null_shape, tg_expand(f->a, 2, NULL), TG_EINVAL, "tg_expand: shape is NULL")       \
    X(expand_overflow, tg_expand(f->s, TG_SHAPE(1LL << 40, 1LL << 40)), TG_ERANGE,              \
      "tg_expand: element count overflows")                                                     \
    X(concat_shape, tg_concat(2, (tg_tensor *[]){f->a, f->m45}, 0), TG_ESHAPE,                  \
      "tg_concat: input 1 has shape 4x5, input 0 2x3 (must match except along axis 0)")         \
    X(concat_ndim, tg_concat(2, (tg_tensor *[]){f->a, f->v4}, 0), TG_ESHAPE,                    \
      "tg_concat: input 1 has shape 4")                                                         \
    X(stack_shape, tg_stack(2, (tg_tensor *[]){f->a, f->t32}, 0), TG_ESHAPE,                    \
      "tg_stack: input 1 has shape 3x2, input 0 2x3")                                           \
    X(gather_ndim, tg_gather(f->a, 1, TG_SHAPE(6), IDX0), TG_ESHAPE,                            \
      "tg_gather: index has 1 dims, x has 2")                                                   \
    X(gather_fit, tg_gather(f->a, 1, TG_SHAPE(3, 1), IDX0), TG_ESHAPE,                          \
      "tg_gather: index shape 3x1 does not fit x 2x3 (dimension 0)")                            \
    X(gather_range, tg_gather(f->a, 1, TG_SHAPE(1, 2), IDX5), TG_ERANGE,                        \
      "tg_gather: index[1] = 5 outside [0, 3)")                                                 \
    X(gather_null_index, tg_gather(f->a, 1, TG_SHAPE(2, 1), NULL), TG_EINVAL,                   \
      "tg_gather: index is NULL")                                                               \
    X(concat_null_array, tg_concat(2, NULL, 0), TG_EINVAL, "tg_concat: xs is NULL (n 2)")          \
    X(stack_null_array, tg_stack(2, NULL, 0), TG_EINVAL, "tg_stack: xs is NULL (n 2)")             \
    X(gather_null_shape, tg_gather(f->a, 1, 2, NULL, IDX0), TG_EINVAL,                          \
      "tg_gather: shape is NULL (ndim 2)")                                                      \
    X(index_select_range, tg_index_select(f->a, 1, 2, IDX03), TG_ERANGE,                        \
      "tg_index_select: index[1] = 3 outside [0, 3)")                                           \
    X(index_select_negative, tg_index_select(f->a, 0, 1, IDXM1), TG_ERANGE,                     \
      "tg_index_select: index[0] = -1 outside [0, 2)")                                          \
    X(index_select_count, tg_index_select(f->a, 0, -1, IDX0), TG_EINVAL,                        \
      "tg_index_select: n is -1 (need n >= 0)")                                                 \
    X(index_select_null_list, tg_index_select(f->a, 0, 2, NULL), TG_EINVAL,                     \
      "tg_index_select: idx is NULL (n 2)")                                                     \
    /* Axes. */                                                                                 \
    X(sum_axis, tg_sum(f->a, AX2, 1, false), TG_EINVAL, "tg_sum: axis 2 out of range for 2 dims") \
    X(sum_axis_negative, tg_sum(f->a, AXM3, 1, true), TG_EINVAL,                                \
      "tg_sum: axis -3 out of range for 2 dims")                                                \
    X(sum_axis_twice, tg_sum(f->a, AXDUP, 2, false), TG_EINVAL, "tg_sum: axis -1 given twice")  \
    X(sum_n_axes_negative, tg_sum(f->a, AX0, -1, false), TG_EINVAL,                             \
      "tg_sum: axes is NULL or n_axes -1 is negative")                                          \
    X(sum_axes_null, tg_sum(f->a, NULL, 1, false), TG_EINVAL, "tg_sum: axes is NULL")           \
    X(sum_scalar_axis, tg_sum(f->s, AX0, 1, false), TG_EINVAL,                                  \
      "tg_sum: axis 0 out of range for 0 dims")                                                 \
    X(mean_axis, tg_mean(f->a, AX2, 1, false), TG_EINVAL, "tg_mean: axis 2 out of range")       \
    X(mean_axis_twice, tg_mean(f->a, AXDUP, 2, true), TG_EINVAL, "tg_mean: axis -1 given twice") \
    X(max_axis, tg_max(f->a, AXM3, 1, false), TG_EINVAL, "tg_max: axis -3 out of range")        \
    X(logsumexp_axis, tg_logsumexp(f->a, AX2, 1, true), TG_EINVAL,                              \
      "tg_logsumexp: axis 2 out of range")                                                      \
    X(softmax_axis, tg_softmax(f->a, 2), TG_EINVAL, "tg_softmax: axis 2 out of range for 2 dims") \
    X(softmax_scalar_axis, tg_softmax(f->s, 5), TG_EINVAL,                                      \
      "tg_softmax: axis 5 out of range for 0 dims")                                             \
    X(log_softmax_axis, tg_log_softmax(f->a, -3), TG_EINVAL,                                    \
      "tg_log_softmax: axis -3 out of range for 2 dims")                                        \
    X(transpose_axis, tg_transpose(f->a, 0, 2), TG_EINVAL,                                      \
      "tg_transpose: axis 2 out of range for 2 dims")                                           \
    X(flatten_axis, tg_flatten(f->a, 3), TG_EINVAL, "tg_flatten: axis 3 out of range for 2 dims") \
    X(flatten_axis_negative, tg_flatten(f->a, -3), TG_EINVAL,                                   \
      "tg_flatten: axis -3 out of range for 2 dims")                                            \
    X(permute_repeat, tg_permute(f->a, PERM00), TG_EINVAL,                                      \
      "tg_permute: perm is not a permutation of 0..1 (entry 1 is 0)")                           \
    X(permute_range, tg_permute(f->a, PERM02), TG_EINVAL, "(entry 1 is 2)")                     \
    X(permute_null_perm, tg_permute(f->a, NULL), TG_EINVAL, "tg_permute: perm is NULL")         \
    X(slice_axis, tg_slice(f->a, 2, 0, 1, 1), TG_EINVAL, "tg_slice: axis 2 out of range")       \
    X(slice_step_zero, tg_slice(f->a, 0, 0, 1, 0), TG_EINVAL, "tg_slice: step 0 must be positive") \
    X(slice_step_negative, tg_slice(f->a, 1, 2, 0, -1), TG_EINVAL,                              \
      "tg_slice: step -1 must be positive")                                                     \
    X(concat_axis, tg_concat(2, (tg_tensor *[]){f->a, f->a}, 2), TG_EINVAL,                     \
      "tg_concat: axis 2 out of range for 2 dims")                                              \
    X(concat_none, tg_concat(0, NULL, 0), TG_EINVAL, "tg_concat: need n >= 1 tensors (got 0)")  \
    X(concat_scalar, tg_concat(1, &f->s, 0), TG_EINVAL, "tg_concat: axis 0 out of range for 0")  \
    X(stack_axis, tg_stack(2, (tg_tensor *[]){f->a, f->a}, 3), TG_EINVAL,                       \
      "tg_stack: axis 3 out of range for 2+1 dims")                                             \
    X(stack_none, tg_stack(0, NULL, 0), TG_EINVAL, "tg_stack: need n >= 1 tensors (got 0)")     \
    X(index_select_axis, tg_index_select(f->a, 2, 1, IDX0), TG_EINVAL,                          \
      "tg_index_select: axis 2 out of range for 2 dims")                                        \
    X(gather_axis, tg_gather(f->a, -3, TG_SHAPE(2, 3), IDX0), TG_EINVAL,                        \
      "tg_gather: axis -3 out of range for 2 dims")                                             \
    /* Scalars and parameters. */                                                               \
    X(add_scalar_nan, tg_add_scalar(f->a, NAN), TG_EINVAL,                                      \
      "tg_add_scalar: scalar nan is not finite")                                                \
    X(sub_scalar_inf, tg_sub_scalar(f->a, INFINITY), TG_EINVAL,                                 \
      "tg_sub_scalar: scalar inf is not finite")                                                \
    X(rsub_scalar_nan, tg_rsub_scalar(f->a, NAN), TG_EINVAL,                                    \
      "tg_rsub_scalar: scalar nan is not finite")                                               \
    X(mul_scalar_inf, tg_mul_scalar(f->a, -INFINITY), TG_EINVAL,                                \
      "tg_mul_scalar: scalar -inf is not finite")                                               \
    X(div_scalar_zero, tg_div_scalar(f->a, 0), TG_EINVAL,                                       \
      "tg_div_scalar: divisor 0 must be finite and nonzero")                                    \
    X(div_scalar_inf, tg_div_scalar(f->a, INFINITY), TG_EINVAL, "tg_div_scalar: divisor inf")   \
    X(rdiv_scalar_inf, tg_rdiv_scalar(f->a, INFINITY), TG_EINVAL,                               \
      "tg_rdiv_scalar: scalar inf is not finite")                                               \
    X(pow_scalar_nan, tg_pow_scalar(f->a, NAN), TG_EINVAL,                                      \
      "tg_pow_scalar: scalar nan is not finite")                                                \
    X(leaky_relu_slope, tg_leaky_relu(f->a, NAN), TG_EINVAL,                                    \
      "tg_leaky_relu: slope nan is not finite")                                                 \
    X(clamp_order, tg_clamp(f->a, 1, 0), TG_EINVAL, "tg_clamp: need lo <= hi (got 1, 0)")        \
    X(clamp_nan, tg_clamp(f->a, NAN, 1), TG_EINVAL, "tg_clamp: need lo <= hi (got nan, 1)")      \
    X(where_condition_grad, tg_where(f->g, f->g, f->g), TG_EINVAL,                              \
      "tg_where: the condition requires grad")                                                  \
    /* Empty tensors. */                                                                        \
    X(max_empty, tg_max(f->e, NULL, 0, false), TG_ESHAPE,                                       \
      "tg_max: cannot take the maximum of an empty tensor")                                     \
    X(logsumexp_empty, tg_logsumexp(f->e, NULL, 0, false), TG_ESHAPE, "tg_logsumexp: empty")    \
    X(mean_empty, tg_mean(f->e, NULL, 0, false), TG_ESHAPE,                                     \
      "tg_mean: no elements to average (input 0)")                                              \
    /* Constants. */                                                                            \
    X(full_dtype, tg_full((tg_dtype)7, TG_SHAPE(2), 0), TG_EINVAL, "tg_full: invalid dtype 7")   \
    X(full_negative, tg_full(TG_F32, TG_SHAPE(2, -1), 0), TG_EINVAL,                             \
      "tg_full: dimension 1 is negative (-1)")                                                  \
    X(full_ndim9, tg_full(TG_F32, 9, NINE, 0), TG_EINVAL, "tg_full: ndim 9 outside 0..8")        \
    X(full_null_shape, tg_full(TG_F32, 2, NULL, 0), TG_EINVAL, "tg_full: shape is NULL")         \
    X(full_overflow, tg_full(TG_F64, TG_SHAPE(1LL << 40, 1LL << 40), 0), TG_ERANGE,              \
      "tg_full: element count overflows")                                                       \
    X(scalar_dtype, tg_scalar((tg_dtype)7, 0), TG_EINVAL, "tg_scalar: invalid dtype 7")

typedef struct op_error {
    const char *label;
    tg_tensor *(*call)(fx *f);
    tg_status code;
    const char *substr;
} op_error;

#define X_FN(label, call, code, substr)                                                        \
    static tg_tensor *err_##label(fx *f) { return call; }
OP_ERRORS(X_FN)
#undef X_FN
#define X_ROW(label, call, code, substr) {#label, err_##label, code, substr},
static const op_error op_errors[] = {OP_ERRORS(X_ROW)};
#undef X_ROW
#define N_OP_ERRORS (int)(sizeof op_errors / sizeof op_errors[0])

START_TEST(test_op_error)
{
    // Everything is collected, then freed, then asserted: a failing case must not
    // also show up as a leak under LeakSanitizer.
    const op_error *c = &op_errors[_i];
    fx f;
    fx_make(&f);
    size_t nodes = tg_tape_size(f.tape);
    tg_clear_error();
    tg_tensor *r = c->call(&f);
    tg_status got = tg_last_status();
    char msg[512];
    snprintf(msg, sizeof msg, "%s", tg_last_error());
    size_t recorded = tg_tape_size(f.tape) - nodes;
    fx_free(&f);
    ck_assert_msg(r == NULL, "%s: returned a tensor", c->label);
    ck_assert_msg(got == c->code, "%s: status %d (%s), expected %d; message: %s", c->label,
                  (int)got, tg_status_str(got), (int)c->code, msg);
    ck_assert_msg(strstr(msg, c->substr), "%s: message \"%s\" lacks \"%s\"", c->label, msg,
                  c->substr);
    ck_assert_msg(recorded == 0, "%s: a failed call recorded %zu nodes", c->label, recorded);
}
END_TEST

/* ---- every op with no current tape: TG_ESTATE naming the op ---- */

#define NO_TAPE(X)                                                                             \
    X(tg_add, tg_add(f->a, f->a))                                                              \
    X(tg_sub, tg_sub(f->a, f->a))                                                              \
    X(tg_mul, tg_mul(f->a, f->a))                                                              \
    X(tg_div, tg_div(f->a, f->a))                                                              \
    X(tg_pow, tg_pow(f->a, f->a))                                                              \
    X(tg_maximum, tg_maximum(f->a, f->a))                                                      \
    X(tg_minimum, tg_minimum(f->a, f->a))                                                      \
    X(tg_where, tg_where(f->a, f->a, f->a))                                                    \
    X(tg_gt, tg_gt(f->a, f->a))                                                                \
    X(tg_ge, tg_ge(f->a, f->a))                                                                \
    X(tg_lt, tg_lt(f->a, f->a))                                                                \
    X(tg_le, tg_le(f->a, f->a))                                                                \
    X(tg_eq, tg_eq(f->a, f->a))                                                                \
    X(tg_add_scalar, tg_add_scalar(f->a, 1))                                                   \
    X(tg_sub_scalar, tg_sub_scalar(f->a, 1))                                                   \
    X(tg_rsub_scalar, tg_rsub_scalar(f->a, 1))                                                 \
    X(tg_mul_scalar, tg_mul_scalar(f->a, 2))                                                   \
    X(tg_div_scalar, tg_div_scalar(f->a, 2))                                                   \
    X(tg_rdiv_scalar, tg_rdiv_scalar(f->a, 2))                                                 \
    X(tg_pow_scalar, tg_pow_scalar(f->a, 2))                                                   \
    X(tg_gt_scalar, tg_gt_scalar(f->a, 0))                                                     \
    X(tg_neg, tg_neg(f->a))                                                                    \
    X(tg_exp, tg_exp(f->a))                                                                    \
    X(tg_log, tg_log(f->a))                                                                    \
    X(tg_sqrt, tg_sqrt(f->a))                                                                  \
    X(tg_abs, tg_abs(f->a))                                                                    \
    X(tg_sign, tg_sign(f->a))                                                                  \
    X(tg_tanh, tg_tanh(f->a))                                                                  \
    X(tg_sigmoid, tg_sigmoid(f->a))                                                            \
    X(tg_relu, tg_relu(f->a))                                                                  \
    X(tg_leaky_relu, tg_leaky_relu(f->a, 0.1))                                                 \
    X(tg_softplus, tg_softplus(f->a))                                                          \
    X(tg_clamp, tg_clamp(f->a, 0, 1))                                                          \
    X(tg_sum, tg_sum(f->a, NULL, 0, false))                                                    \
    X(tg_mean, tg_mean(f->a, NULL, 0, false))                                                  \
    X(tg_max, tg_max(f->a, NULL, 0, false))                                                    \
    X(tg_logsumexp, tg_logsumexp(f->a, NULL, 0, false))                                        \
    X(tg_min, tg_min(f->a, NULL, 0, false))                                                    \
    X(tg_prod, tg_prod(f->a, NULL, 0, false))                                                  \
    X(tg_var, tg_var(f->a, NULL, 0, 1, false))                                                 \
    X(tg_std, tg_std(f->a, NULL, 0, 1, false))                                                 \
    X(tg_cumsum, tg_cumsum(f->a, 1))                                                           \
    X(tg_gelu_tanh, tg_gelu_tanh(f->a))                                                        \
    X(tg_layer_norm, tg_layer_norm(f->a, 1, NULL, NULL, 1e-5))                                 \
    X(tg_scaled_dot_product_attention, tg_scaled_dot_product_attention(f->a, f->a, f->a,       \
                                                                       true, 0))               \
    X(tg_matmul, tg_matmul(f->a, f->t32))                                                      \
    X(tg_reshape, tg_reshape(f->a, TG_SHAPE(6)))                                               \
    X(tg_flatten, tg_flatten(f->a, 0))                                                         \
    X(tg_permute, tg_permute(f->a, PERM10))                                                    \
    X(tg_transpose, tg_transpose(f->a, 0, 1))                                                  \
    X(tg_expand, tg_expand(f->a, TG_SHAPE(2, 2, 3)))                                           \
    X(tg_slice, tg_slice(f->a, 1, 0, 2, 1))                                                    \
    X(tg_concat, tg_concat(2, (tg_tensor *[]){f->a, f->a}, 0))                                 \
    X(tg_stack, tg_stack(2, (tg_tensor *[]){f->a, f->a}, 0))                                   \
    X(tg_index_select, tg_index_select(f->a, 1, 1, IDX0))                                      \
    X(tg_gather, tg_gather(f->a, 1, TG_SHAPE(1, 1), IDX0))                                     \
    X(tg_softmax, tg_softmax(f->a, 1))                                                         \
    X(tg_log_softmax, tg_log_softmax(f->a, 1))                                                 \
    X(tg_detach, tg_detach(f->a))                                                              \
    X(tg_copy, tg_copy(f->a))                                                                  \
    X(tg_full, tg_full(TG_F32, TG_SHAPE(2), 1))                                                \
    X(tg_full_like, tg_full_like(f->a, 1))                                                     \
    X(tg_scalar, tg_scalar(TG_F32, 1))

typedef struct no_tape_case {
    const char *fn;
    tg_tensor *(*call)(fx *f);
} no_tape_case;

#define X_FN(fn, call)                                                                         \
    static tg_tensor *no_tape_##fn(fx *f) { return call; }
NO_TAPE(X_FN)
#undef X_FN
#define X_ROW(fn, call) {#fn, no_tape_##fn},
static const no_tape_case no_tape_cases[] = {NO_TAPE(X_ROW)};
#undef X_ROW
#define N_NO_TAPE (int)(sizeof no_tape_cases / sizeof no_tape_cases[0])

START_TEST(test_op_without_tape)
{
    const no_tape_case *c = &no_tape_cases[_i];
    fx f;
    fx_make(&f);
    // The same call works with the tape current...
    tg_clear_error();
    tg_tensor *ok = c->call(&f);
    // ...and fails cleanly without one.
    tg_tape_set_current(NULL);
    tg_clear_error();
    tg_tensor *r = c->call(&f);
    tg_status got = tg_last_status();
    char msg[512];
    snprintf(msg, sizeof msg, "%s", tg_last_error());
    tg_tape_set_current(f.tape);
    fx_free(&f);
    ck_assert_msg(ok != NULL, "%s with a tape failed", c->fn);
    ck_assert_ptr_null(r);
    char want[96];
    snprintf(want, sizeof want, "%s: no current tape", c->fn);
    ck_assert_msg(got == TG_ESTATE, "%s: status %d, message %s", c->fn, (int)got, msg);
    ck_assert_msg(strstr(msg, want), "message \"%s\" lacks \"%s\"", msg, want);
}
END_TEST

/* ---- the message rules ---- */

START_TEST(test_first_error_is_kept)
{
    fx f;
    fx_make(&f);
    // The innermost failure is what the whole expression reports.
    tg_clear_error();
    tg_tensor *y = tg_add(tg_matmul(f.a, f.m45), f.a);
    ck_assert_ptr_null(y);
    ASSERT_FAIL(tg_last_status(), TG_ESHAPE, "tg_matmul: inner dims 3 vs 4");
    tg_clear_error();
    y = tg_sum(tg_exp(tg_mul(tg_reshape(f.a, TG_SHAPE(5)), f.a)), NULL, 0, false);
    ck_assert_ptr_null(y);
    ASSERT_FAIL(tg_last_status(), TG_ESHAPE, "tg_reshape: cannot view 2x3");
    tg_clear_error();
    tg_tensor *parts[2] = {tg_softmax(f.a, 5), f.a};
    ck_assert_ptr_null(tg_concat(2, parts, 0));
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_softmax: axis 5");
    ck_assert_ptr_null(tg_mul(f.g, f.d32));
    // A success does not clear the message (like errno)...
    ck_assert_ptr_nonnull(tg_exp(f.a));
    ck_assert_int_eq(tg_last_status(), TG_ESHAPE);
    ck_assert(strstr(tg_last_error(), "tg_mul: shapes"));
    // ...a later real failure replaces it, and tg_clear_error forgets it.
    ck_assert_ptr_null(tg_log_softmax(f.a, 9));
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_log_softmax: axis 9");
    tg_clear_error();
    ck_assert_int_eq(tg_last_status(), TG_OK);
    ck_assert_str_eq(tg_last_error(), "");
    // tg_backward and tg_grad at the end of a failed expression keep its cause too.
    // (Results are collected first and asserted after cleanup: these may fail.)
    tg_clear_error();
    tg_status sb = tg_backward(tg_sum(tg_mul(f.g, f.d32), NULL, 0, false));
    char after_backward[256];
    snprintf(after_backward, sizeof after_backward, "%s", tg_last_error());
    tg_clear_error();
    tg_tensor *out = tg_sum(tg_mul(f.g, f.d32), NULL, 0, false), *gr;
    tg_status sg = tg_grad(1, &out, NULL, 1, &f.g, &gr, 0);
    char after_grad[256];
    snprintf(after_grad, sizeof after_grad, "%s", tg_last_error());
    fx_free(&f);
    ck_assert_int_ne(sb, TG_OK);
    ck_assert_int_ne(sg, TG_OK);
    ck_assert_msg(strstr(after_backward, "tg_mul: shapes 2x3 vs 3x2") &&
                      strstr(after_grad, "tg_mul: shapes 2x3 vs 3x2"),
                  "given the NULL of a failed op, tg_backward left \"%s\" and tg_grad \"%s\" "
                  "instead of the cause (tg_mul: shapes 2x3 vs 3x2)", after_backward, after_grad);
}
END_TEST

START_TEST(test_status_codes)
{
    const struct {
        tg_status code;
        const char *text;
    } codes[] = {{TG_OK, "ok"},
                 {TG_EINVAL, "invalid argument"},
                 {TG_ESHAPE, "shape mismatch"},
                 {TG_EDTYPE, "dtype mismatch"},
                 {TG_ENOMEM, "out of memory"},
                 {TG_ESTATE, "invalid state"},
                 {TG_ERANGE, "index or size out of range"},
                 {TG_EIO, "input/output error"},
                 {TG_EFORMAT, "corrupt or unsupported data"},
                 {TG_EGRAD, "gradient check failed"},
                 {TG_ENUMERIC, "NaN or infinity produced"}};
    for (int i = 0; i < 11; i++) {
        ck_assert_str_eq(tg_status_str(codes[i].code), codes[i].text);
        ck_assert_int_eq(codes[i].code, -i); // 0, -1, ..., -10
    }
    ck_assert_str_eq(tg_status_str((tg_status)1), "unknown status");
    ck_assert_str_eq(tg_status_str((tg_status)-11), "unknown status");
    // tg_set_error: user ops report through the same buffer; TG_OK is not a failure.
    ck_assert_int_eq(tg_set_error(TG_ESHAPE, "myop: %d vs %d", 3, 4), TG_ESHAPE);
    ASSERT_FAIL(tg_last_status(), TG_ESHAPE, "myop: 3 vs 4");
    ck_assert_int_eq(tg_set_error(TG_OK, "myop: oops"), TG_EINVAL);
    ck_assert_int_eq(tg_last_status(), TG_EINVAL);
    // A long message is truncated, not overflowed.
    char longer[2000];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    ck_assert_int_eq(tg_set_error(TG_EIO, "%s", longer), TG_EIO);
    ck_assert_uint_lt(strlen(tg_last_error()), sizeof longer - 1);
    ck_assert_uint_gt(strlen(tg_last_error()), 100);
    // Issue 11 item 5: a NULL format crashed in vsnprintf. The code is kept and
    // the message says what happened. (Through a pointer without the format
    // attribute: compilers rightly warn about a NULL format.)
    tg_status (*set_error)(tg_status, const char *, ...) = tg_set_error;
    const char *volatile no_format = NULL;
    ck_assert_int_eq(set_error(TG_ERANGE, no_format), TG_ERANGE);
    ASSERT_FAIL(tg_last_status(), TG_ERANGE, "tg_set_error: NULL format (code -6, index or size");
    ck_assert_int_eq(set_error(TG_OK, no_format), TG_EINVAL);
    tg_clear_error();
}
END_TEST

/* ---- tensor.h ---- */

/* The seven shape-taking constructors behind one signature. */
static tg_tensor *make_with(int which, tg_dtype dt, int ndim, const int64_t *shape)
{
    static const double values[4] = {1, 2, 3, 4};
    static const float raw[4] = {1, 2, 3, 4};
    tg_rng rng = tg_rng_seeded(1);
    switch (which) {
    case 0:
        return tg_tensor_zeros(dt, ndim, shape);
    case 1:
        return tg_tensor_ones(dt, ndim, shape);
    case 2:
        return tg_tensor_full(dt, ndim, shape, 3);
    case 3:
        return tg_tensor_from_data(dt, ndim, shape, raw);
    case 4:
        return tg_tensor_from_doubles(dt, ndim, shape, values);
    case 5:
        return tg_tensor_uniform(dt, ndim, shape, 0, 1, &rng);
    default:
        return tg_tensor_normal(dt, ndim, shape, 0, 1, &rng);
    }
}

static const char *const MAKE_NAMES[7] = {"tg_tensor_zeros", "tg_tensor_ones",
                                          "tg_tensor_full", "tg_tensor_from_data",
                                          "tg_tensor_from_doubles", "tg_tensor_uniform",
                                          "tg_tensor_normal"};

START_TEST(test_constructor_errors)
{
    // _i = 5 * constructor + kind of bad argument.
    int which = _i / 5, kind = _i % 5;
    static const int64_t neg[2] = {2, -1}, huge[2] = {1LL << 40, 1LL << 40};
    static const int64_t ok[1] = {2};
    const char *fn = MAKE_NAMES[which];
    char want[128];
    tg_status code = TG_EINVAL;
    tg_clear_error();
    tg_tensor *t = NULL;
    switch (kind) {
    case 0:
        t = make_with(which, (tg_dtype)7, 1, ok);
        snprintf(want, sizeof want, "%s: invalid dtype 7", fn);
        break;
    case 1:
        t = make_with(which, TG_F32, 9, NINE);
        snprintf(want, sizeof want, "%s: ndim 9 outside 0..8", fn);
        break;
    case 2:
        t = make_with(which, TG_F64, 2, neg);
        snprintf(want, sizeof want, "%s: dimension 1 is negative (-1)", fn);
        break;
    case 3:
        t = make_with(which, TG_F64, 2, NULL);
        snprintf(want, sizeof want, "%s: shape is NULL", fn);
        break;
    default:
        t = make_with(which, TG_F32, 2, huge);
        snprintf(want, sizeof want, "%s: element count overflows at dimension 1", fn);
        code = TG_ERANGE;
        break;
    }
    ck_assert_ptr_null(t);
    ASSERT_FAIL(tg_last_status(), code, want);
    // The same constructor with good arguments works (and is freed).
    tg_tensor *good = make_with(which, TG_F32, 1, ok);
    ck_assert_ptr_nonnull(good);
    tg_tensor_free(good);
}
END_TEST

START_TEST(test_tensor_function_errors)
{
    tg_rng rng = tg_rng_seeded(1);
    tg_tensor *t = tg_tensor_ones(TG_F32, TG_SHAPE(2, 2));
    double v = 5, buf[4];
    // Constructors' own arguments.
    ASSERT_FRESH_NULL_FAIL(tg_tensor_from_data(TG_F32, TG_SHAPE(2), NULL), TG_EINVAL,
                           "tg_tensor_from_data: data is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_from_doubles(TG_F32, TG_SHAPE(2), NULL), TG_EINVAL,
                           "tg_tensor_from_doubles: values is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_arange(TG_F32, 0, 1, 0), TG_EINVAL,
                           "tg_tensor_arange: need finite start/stop and step != 0");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_arange(TG_F32, NAN, 1, 1), TG_EINVAL, "tg_tensor_arange:");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_arange((tg_dtype)7, 0, 1, 1), TG_EINVAL,
                           "tg_tensor_arange: invalid dtype 7");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_uniform(TG_F32, TG_SHAPE(2), 0, 1, NULL), TG_EINVAL,
                           "tg_tensor_uniform: rng is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_uniform(TG_F32, TG_SHAPE(2), 1, 0, &rng), TG_EINVAL,
                           "tg_tensor_uniform: need finite low <= high (got 1, 0)");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_uniform(TG_F32, TG_SHAPE(2), 0, INFINITY, &rng), TG_EINVAL,
                           "tg_tensor_uniform: need finite");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_normal(TG_F32, TG_SHAPE(2), 0, 1, NULL), TG_EINVAL,
                           "tg_tensor_normal: rng is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_normal(TG_F32, TG_SHAPE(2), 0, -1, &rng), TG_EINVAL,
                           "tg_tensor_normal: need finite mean and std >= 0 (got 0, -1)");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_normal(TG_F32, TG_SHAPE(2), NAN, 1, &rng), TG_EINVAL,
                           "tg_tensor_normal: need finite");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_clone(NULL), TG_EINVAL, "tg_tensor_clone: input 0 is NULL");
    // Access.
    ASSERT_FRESH_FAIL(tg_tensor_get(NULL, (const int64_t[]){0, 0}, &v), TG_EINVAL,
                      "tg_tensor_get: NULL tensor");
    ASSERT_FRESH_FAIL(tg_tensor_get(t, (const int64_t[]){0, 2}, &v), TG_ERANGE,
                      "tg_tensor_get: index 2 out of range for dimension 1 of size 2");
    ASSERT_FRESH_FAIL(tg_tensor_set(NULL, (const int64_t[]){0}, 1), TG_EINVAL,
                      "tg_tensor_set: NULL tensor");
    ASSERT_FRESH_FAIL(tg_tensor_set(t, NULL, 1), TG_EINVAL, "tg_tensor_set: NULL index");
    ASSERT_FRESH_FAIL(tg_tensor_set(t, (const int64_t[]){2, 0}, 1), TG_ERANGE,
                      "tg_tensor_set: index 2 out of range for dimension 0 of size 2");
    ASSERT_FRESH_FAIL(tg_tensor_get_flat(NULL, 0, &v), TG_EINVAL,
                      "tg_tensor_get_flat: NULL tensor");
    ASSERT_FRESH_FAIL(tg_tensor_get_flat(t, 4, &v), TG_ERANGE,
                      "tg_tensor_get_flat: flat index 4 outside [0, 4)");
    ASSERT_FRESH_FAIL(tg_tensor_set_flat(NULL, 0, 1), TG_EINVAL,
                      "tg_tensor_set_flat: NULL tensor");
    ASSERT_FRESH_FAIL(tg_tensor_set_flat(t, -1, 1), TG_ERANGE,
                      "tg_tensor_set_flat: flat index -1 outside [0, 4)");
    ck_assert_double_eq(v, 5); // untouched by every failed get
    tg_clear_error();
    ck_assert(isnan(tg_tensor_item(NULL)));
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_tensor_item: input 0 is NULL");
    tg_clear_error();
    ck_assert(isnan(tg_tensor_item(t)));
    ASSERT_FAIL(tg_last_status(), TG_ESHAPE, "tg_tensor_item: tensor of shape 2x2 has 4 elements");
    ASSERT_FRESH_FAIL(tg_tensor_to_doubles(NULL, buf), TG_EINVAL,
                      "tg_tensor_to_doubles: NULL tensor");
    ASSERT_FRESH_FAIL(tg_tensor_to_doubles(t, NULL), TG_EINVAL, "tg_tensor_to_doubles: NULL out");
    ASSERT_FRESH_FAIL(tg_tensor_fill(NULL, 0), TG_EINVAL, "tg_tensor_fill: NULL tensor");
    ASSERT_FRESH_FAIL(tg_tensor_copy_values(t, NULL), TG_EINVAL,
                      "tg_tensor_copy_values: NULL src");
    ASSERT_FRESH_FAIL(tg_tensor_copy_values(NULL, t), TG_EINVAL,
                      "tg_tensor_copy_values: NULL dst");
    tg_tensor *row = tg_tensor_ones(TG_F64, TG_SHAPE(4));
    ASSERT_FRESH_FAIL(tg_tensor_copy_values(t, row), TG_ESHAPE,
                      "tg_tensor_copy_values: dst 2x2 vs src 4");
    // Gradients and printing.
    ASSERT_FRESH_FAIL(tg_tensor_set_requires_grad(NULL, true), TG_EINVAL,
                      "tg_tensor_set_requires_grad: NULL tensor");
    ASSERT_FRESH_FAIL(tg_tensor_print(NULL, stdout), TG_EINVAL, "tg_tensor_print: NULL tensor");
    ASSERT_FRESH_FAIL(tg_tensor_print(t, NULL), TG_EINVAL, "tg_tensor_print: NULL stream");
    char text[16];
    ASSERT_FRESH_FAIL(tg_tensor_format(NULL, text, sizeof text), TG_EINVAL,
                      "tg_tensor_format: NULL tensor");
    ASSERT_FRESH_FAIL(tg_tensor_format(t, NULL, sizeof text), TG_EINVAL,
                      "tg_tensor_format: NULL buffer");
    // Queries on NULL answer neutrally and do not crash.
    ck_assert_int_eq(tg_tensor_ndim(NULL), 0);
    ck_assert_int_eq(tg_tensor_numel(NULL), 0);
    ck_assert_int_eq(tg_tensor_dim(NULL, 0), -1);
    ck_assert_ptr_null(tg_tensor_shape(NULL));
    ck_assert_ptr_null(tg_tensor_strides(NULL));
    ck_assert_ptr_null(tg_tensor_data(NULL));
    ck_assert_ptr_null(tg_tensor_data_const(NULL));
    ck_assert_ptr_null(tg_tensor_grad(NULL));
    ck_assert(!tg_tensor_on_tape(NULL));
    ck_assert(!tg_tensor_requires_grad(NULL));
    (void)tg_tensor_dtype(NULL);
    tg_tensor_zero_grad(NULL);
    tg_tensor_free(NULL);
    ck_assert_str_eq(tg_dtype_name((tg_dtype)7), "?");
    ck_assert_uint_eq(tg_dtype_size((tg_dtype)-1), 0);
    ck_assert_int_eq(tg_tensor_dim(t, 2), -1);
    ck_assert_int_eq(tg_tensor_dim(t, -3), -1);
    tg_tensor_free(row);
    // clone_as names itself, not tg_tensor_clone (last: t is freed by hand if it fails).
    tg_clear_error();
    tg_tensor *c1 = tg_tensor_clone_as(NULL, TG_F64), *c2 = tg_tensor_clone_as(t, (tg_dtype)7);
    char msg1[256];
    snprintf(msg1, sizeof msg1, "%s", tg_last_error());
    tg_tensor_free(t);
    ck_assert_ptr_null(c1);
    ck_assert_ptr_null(c2);
    ck_assert_msg(strstr(msg1, "tg_tensor_clone_as: invalid dtype 7"), "message \"%s\"", msg1);
    ASSERT_FRESH_NULL_FAIL(tg_tensor_clone_as(NULL, TG_F64), TG_EINVAL,
                           "tg_tensor_clone_as: input 0 is NULL");
}
END_TEST

/* The generator functions take a pointer too; NULL must not crash. */
START_TEST(test_rng_null)
{
    tg_clear_error();
    (void)tg_rng_next_u64(NULL);
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "rng is NULL");
    tg_clear_error();
    (void)tg_rng_uniform(NULL);
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "rng is NULL");
    tg_clear_error();
    (void)tg_rng_normal(NULL);
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "rng is NULL");
    tg_clear_error();
    ck_assert_uint_eq(tg_rng_below(NULL, 10), 0);
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "rng is NULL");
}
END_TEST

/* ---- autograd.h ---- */

START_TEST(test_tape_function_errors)
{
    // Tape handles: NULL is ignored or answered neutrally.
    tg_tape_free(NULL);
    tg_tape_reset(NULL);
    tg_tape_explain(NULL, stdout);
    ck_assert_uint_eq(tg_tape_size(NULL), 0);
    ck_assert_uint_eq(tg_tape_bytes(NULL), 0);
    ASSERT_FRESH_FAIL(tg_tape_print(NULL, stdout), TG_EINVAL, "tg_tape_print: NULL tape");
    tg_tape *tape = tg_tape_new();
    ASSERT_FRESH_FAIL(tg_tape_print(tape, NULL), TG_EINVAL, "tg_tape_print: NULL stream");
    ck_assert_ptr_eq(tg_tape_set_current(NULL), tape);
    ck_assert_ptr_null(tg_tape_set_current(tape));
    // backward / backward_ex.
    fx f;
    fx_make(&f); // its own tape, now current
    tg_tensor *loss = tg_sum(tg_exp(f.g), NULL, 0, false);
    tg_tensor *vec = tg_exp(f.g);
    tg_tensor *plain = tg_sum(f.d, NULL, 0, false);
    ASSERT_FRESH_FAIL(tg_backward(NULL), TG_EINVAL, "tg_backward: output is NULL");
    ASSERT_FRESH_FAIL(tg_backward(plain), TG_EINVAL, "tg_backward: output does not require grad");
    ASSERT_FRESH_FAIL(tg_backward(vec), TG_ESHAPE,
                      "tg_backward: output of shape 2x3 is not one element; pass a seed");
    tg_tensor *seed = tg_tensor_ones(TG_F64, TG_SHAPE(3, 2));
    ASSERT_FRESH_FAIL(tg_backward_ex(vec, seed, 0), TG_ESHAPE,
                      "tg_backward: seed shape 3x2 differs from output shape 2x3");
    ASSERT_FRESH_FAIL(tg_backward_ex(NULL, seed, TG_RETAIN_GRAPH), TG_EINVAL,
                      "tg_backward: output is NULL");
    // tg_grad.
    tg_tensor *g[2] = {(tg_tensor *)&f, (tg_tensor *)&f}; // sentinels: untouched on failure
    ASSERT_FRESH_FAIL(tg_grad(0, &loss, NULL, 1, &f.g, g, 0), TG_EINVAL,
                      "tg_grad: need n_outs >= 1, n_inputs >= 1");
    ASSERT_FRESH_FAIL(tg_grad(1, NULL, NULL, 1, &f.g, g, 0), TG_EINVAL, "tg_grad: need");
    ASSERT_FRESH_FAIL(tg_grad(1, &loss, NULL, 0, &f.g, g, 0), TG_EINVAL, "tg_grad: need");
    ASSERT_FRESH_FAIL(tg_grad(1, &loss, NULL, 1, NULL, g, 0), TG_EINVAL, "tg_grad: need");
    ASSERT_FRESH_FAIL(tg_grad(1, &loss, NULL, 1, &f.g, NULL, 0), TG_EINVAL, "tg_grad: need");
    ASSERT_FRESH_FAIL(tg_grad(1, &loss, NULL, 2, (tg_tensor *[]){f.g, NULL}, g, 0), TG_EINVAL,
                      "tg_grad: inputs[1] is NULL");
    ASSERT_FRESH_FAIL(tg_grad(1, &loss, NULL, 2, (tg_tensor *[]){f.g, f.d}, g, 0), TG_EINVAL,
                      "tg_grad: inputs[1] does not require grad");
    ASSERT_FRESH_FAIL(tg_grad(1, (tg_tensor *[]){NULL}, NULL, 1, &f.g, g, 0), TG_EINVAL,
                      "tg_grad: output is NULL");
    ASSERT_FRESH_FAIL(tg_grad(1, &vec, NULL, 1, &f.g, g, 0), TG_ESHAPE,
                      "tg_grad: output of shape 2x3 is not one element");
    ASSERT_FRESH_FAIL(tg_grad(1, &vec, &seed, 1, &f.g, g, 0), TG_ESHAPE,
                      "tg_grad: seed shape 3x2 differs from output shape 2x3");
    tg_tensor *u = tg_tensor_ones(TG_F64, TG_SHAPE(1));
    tg_tensor_set_requires_grad(u, true);
    ASSERT_FRESH_FAIL(tg_grad(1, &loss, NULL, 2, (tg_tensor *[]){f.g, u}, g, TG_RETAIN_GRAPH),
                      TG_EINVAL, "tg_grad: the outputs do not depend on inputs[1]");
    ck_assert(g[0] == (tg_tensor *)&f && g[1] == (tg_tensor *)&f);
    // The graph survived the failures (nothing was released): backward still works.
    ck_assert_int_eq(tg_backward(loss), TG_OK);
    ck_assert_ptr_null(tg_tensor_grad(u));
    tg_tensor_free(u);
    tg_tensor_free(seed);
    fx_free(&f);
    tg_tape_free(tape);
}
END_TEST

/* ---- gradcheck's own errors ---- */

static tg_tensor *fn_exp(tg_tensor *const *x, int n, void *ctx) { return tg_exp(x[0]); }
static tg_tensor *fn_bad_matmul(tg_tensor *const *x, int n, void *ctx)
{
    return tg_matmul(x[0], x[0]); // 2x3 @ 2x3
}
static tg_tensor *fn_null(tg_tensor *const *x, int n, void *ctx) { return NULL; }
static tg_tensor *fn_float32(tg_tensor *const *x, int n, void *ctx)
{
    return tg_full(TG_F32, TG_SHAPE(2), 1); // not what float64 inputs give
}

START_TEST(test_gradcheck_errors)
{
    tg_status (*check[2])(tg_fn, void *, int, tg_tensor *const *, const tg_gradcheck_opts *,
                          tg_gradcheck_report *) = {tg_gradcheck, tg_gradgradcheck};
    const char *names[2] = {"tg_gradcheck", "tg_gradgradcheck"};
    tg_tensor *x = tg_tensor_ones(TG_F64, TG_SHAPE(2, 3));
    tg_tensor *xs65[65];
    for (int i = 0; i < 65; i++)
        xs65[i] = x;
    char want[128];
    for (int k = 0; k < 2; k++) {
        tg_gradcheck_report r;
        memset(&r, 0x5a, sizeof r);
        snprintf(want, sizeof want, "%s: need a function and 1..64 inputs (got 1)", names[k]);
        ASSERT_FRESH_FAIL(check[k](NULL, NULL, 1, &x, NULL, &r), TG_EINVAL, want);
        snprintf(want, sizeof want, "%s: need a function and 1..64 inputs (got 0)", names[k]);
        ASSERT_FRESH_FAIL(check[k](fn_exp, NULL, 0, &x, NULL, &r), TG_EINVAL, want);
        snprintf(want, sizeof want, "%s: need a function and 1..64 inputs (got 65)", names[k]);
        ASSERT_FRESH_FAIL(check[k](fn_exp, NULL, 65, xs65, NULL, &r), TG_EINVAL, want);
        ASSERT_FRESH_FAIL(check[k](fn_exp, NULL, 1, NULL, NULL, &r), TG_EINVAL, names[k]);
        snprintf(want, sizeof want, "%s: inputs[1] is NULL", names[k]);
        ASSERT_FRESH_FAIL(check[k](fn_exp, NULL, 2, (tg_tensor *[]){x, NULL}, NULL, &r),
                          TG_EINVAL, want);
        tg_gradcheck_opts o = tg_gradcheck_defaults();
        o.eps = 0;
        snprintf(want, sizeof want, "%s: need eps > 0", names[k]);
        ASSERT_FRESH_FAIL(check[k](fn_exp, NULL, 1, &x, &o, &r), TG_EINVAL, want);
        o = tg_gradcheck_defaults();
        o.directions = -1;
        ASSERT_FRESH_FAIL(check[k](fn_exp, NULL, 1, &x, &o, &r), TG_EINVAL, "directions >= 0");
        o = tg_gradcheck_defaults();
        o.atol = NAN;
        ASSERT_FRESH_FAIL(check[k](fn_exp, NULL, 1, &x, &o, &r), TG_EINVAL, "atol >= 0");
        // f's own failure comes back with f's message.
        ASSERT_FRESH_FAIL(check[k](fn_bad_matmul, NULL, 1, &x, NULL, &r), TG_ESHAPE,
                          "tg_matmul: inner dims 3 vs 2");
        // The report says so too (issue 7: it used to be left untouched).
        ck_assert_msg(!r.passed && strstr(r.message, "tg_matmul: inner dims 3 vs 2"),
                      "%s: report not written on an error: %s", names[k], r.message);
    }
    ASSERT_FRESH_FAIL(tg_gradcheck(fn_float32, NULL, 1, &x, NULL, NULL), TG_EDTYPE,
                      "tg_gradcheck: the function returned float32 for float64 inputs");
    // A good check with a NULL report is fine; the caller's tape is restored after errors.
    tg_tape *mine = tg_tape_new();
    ck_assert_int_eq(tg_gradcheck(fn_exp, NULL, 1, &x, NULL, NULL), TG_OK);
    tg_clear_error();
    ck_assert_int_eq(tg_gradcheck(fn_bad_matmul, NULL, 1, &x, NULL, NULL), TG_ESHAPE);
    ck_assert_ptr_eq(tg_tape_current(), mine);
    ck_assert(tg_grad_enabled());
    tg_tape_free(mine);
    // f returning NULL without a reason: the check says so (last: may fail).
    char msgs[2][256];
    tg_status st[2];
    for (int k = 0; k < 2; k++) {
        tg_clear_error();
        st[k] = check[k](fn_null, NULL, 1, &x, NULL, NULL);
        snprintf(msgs[k], sizeof msgs[k], "%s", tg_last_error());
    }
    tg_tensor_free(x);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(st[k], TG_EINVAL);
        ck_assert_msg(strstr(msgs[k], "the function returned NULL"),
                      "%s, f returned NULL without a message: message \"%s\"", names[k],
                      msgs[k]);
    }
}
END_TEST

/* ---- user ops ---- */

static tg_status id_forward(tg_tensor *out, tg_tensor *const *in, void *ctx)
{
    return tg_tensor_copy_values(out, in[0]);
}
static tg_status fail_forward(tg_tensor *out, tg_tensor *const *in, void *ctx)
{
    return ctx ? tg_set_error(TG_ERANGE, "myop: value out of range") : TG_ERANGE;
}
static tg_status id_backward(tg_tensor *const *in, tg_tensor *out, tg_tensor *dout,
                             const bool *needs, tg_tensor **din, void *ctx)
{
    int mode = ctx ? *(const int *)ctx : 0;
    if (mode == 1)
        return TG_EINVAL; // fails without a message
    if (mode == 2)
        return TG_OK; // "forgets" the gradient
    if (mode == 3) {
        bool prev = tg_set_grad_enabled(false);
        din[0] = tg_full(TG_F32, tg_tensor_ndim(in[0]), tg_tensor_shape(in[0]), 1);
        tg_set_grad_enabled(prev);
        return TG_OK; // wrong dtype for a float64 input
    }
    din[0] = dout;
    return TG_OK;
}
static tg_status bad_shape(tg_tensor *const *in, int *ndim, int64_t *shape, void *ctx)
{
    int mode = *(const int *)ctx;
    if (mode == 0)
        return tg_set_error(TG_ESHAPE, "myop: wants a square matrix");
    if (mode == 1)
        return TG_ESHAPE; // no message of its own
    *ndim = 9;
    return TG_OK;
}

START_TEST(test_user_op_errors)
{
    fx f;
    fx_make(&f);
    tg_op_def_user def = {.name = "myop", .n_inputs = 1, .forward = id_forward,
                          .backward = id_backward};
    // The definition itself.
    ASSERT_FRESH_NULL_FAIL(tg_apply(NULL, 1, &f.a, NULL), TG_EINVAL,
                           "tg_apply: op definition (or its name) is incomplete");
    tg_op_def_user nameless = def;
    nameless.name = NULL;
    ASSERT_FRESH_NULL_FAIL(tg_apply(&nameless, 1, &f.a, NULL), TG_EINVAL, "incomplete");
    tg_op_def_user no_forward = def;
    no_forward.forward = NULL;
    ASSERT_FRESH_NULL_FAIL(tg_apply(&no_forward, 1, &f.a, NULL), TG_EINVAL,
                           "tg_apply: op definition is incomplete (needs name, forward and "
                           "backward)");
    tg_op_def_user nine = def;
    nine.n_inputs = 9;
    ASSERT_FRESH_NULL_FAIL(tg_apply(&nine, 9, (tg_tensor *[]){f.a, f.a, f.a, f.a, f.a, f.a, f.a,
                                                             f.a, f.a}, NULL),
                           TG_EINVAL, "tg_apply: op 'myop' takes 9 inputs (1..8), got 9");
    ASSERT_FRESH_NULL_FAIL(tg_apply(&def, 2, (tg_tensor *[]){f.a, f.a}, NULL), TG_EINVAL,
                           "tg_apply: op 'myop' takes 1 inputs (1..8), got 2");
    // Its inputs, validated like a built-in op's.
    ASSERT_FRESH_NULL_FAIL(tg_apply(&def, 1, NULL, NULL), TG_EINVAL,
                           "tg_apply(myop): inputs array is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_apply(&def, 1, (tg_tensor *[]){NULL}, NULL), TG_EINVAL,
                           "tg_apply(myop): input 0 is NULL");
    tg_op_def_user two = def;
    two.n_inputs = 2;
    ASSERT_FRESH_NULL_FAIL(tg_apply(&two, 2, (tg_tensor *[]){f.a, f.d}, NULL), TG_EDTYPE,
                           "tg_apply(myop): dtype mismatch, input 0 is float32 but input 1 is "
                           "float64");
    tg_tape_set_current(NULL);
    ASSERT_FRESH_NULL_FAIL(tg_apply(&def, 1, &f.a, NULL), TG_ESTATE,
                           "tg_apply(myop): no current tape");
    tg_tape_set_current(f.tape);
    // The user's shape rule and forward: their message, or a generic one naming the op.
    tg_op_def_user shaped = def;
    shaped.shape = bad_shape;
    int mode = 0;
    ASSERT_FRESH_NULL_FAIL(tg_apply(&shaped, 1, &f.a, &mode), TG_ESHAPE,
                           "myop: wants a square matrix");
    mode = 1;
    ASSERT_FRESH_NULL_FAIL(tg_apply(&shaped, 1, &f.a, &mode), TG_ESHAPE,
                           "tg_apply(myop): shape rule failed");
    mode = 2;
    ASSERT_FRESH_NULL_FAIL(tg_apply(&shaped, 1, &f.a, &mode), TG_EINVAL,
                           "tg_apply(myop): shape rule gave ndim 9");
    tg_op_def_user failing = def;
    failing.forward = fail_forward;
    ASSERT_FRESH_NULL_FAIL(tg_apply(&failing, 1, &f.a, &mode), TG_ERANGE,
                           "myop: value out of range");
    ASSERT_FRESH_NULL_FAIL(tg_apply(&failing, 1, &f.a, NULL), TG_ERANGE,
                           "tg_apply(myop): forward failed");
    // Its backward, reported by the backward pass.
    const char *bw_want[3] = {"tg_apply(myop): backward failed",
                              "tg_apply(myop): backward gave no gradient for input 0",
                              ("tg_apply(myop): backward gave a float32 gradient for a float64 "
                               "input 0")};
    const tg_status bw_code[3] = {TG_EINVAL, TG_ESTATE, TG_EDTYPE};
    for (int m = 1; m <= 3; m++) {
        tg_tensor *y = tg_apply(&def, 1, &f.g, &m);
        ck_assert_ptr_nonnull(y);
        ASSERT_FRESH_FAIL(tg_backward(tg_sum(y, NULL, 0, false)), bw_code[m - 1], bw_want[m - 1]);
        ck_assert_ptr_null(tg_tensor_grad(f.g)); // nothing accumulated
    }
    fx_free(&f);
}
END_TEST

/* ---- a failed call leaves no trace ---- */

START_TEST(test_failed_calls_record_nothing)
{
    fx f;
    fx_make(&f);
    tg_tensor *g32 = tg_tensor_clone_as(f.g, TG_F32);
    tg_tensor_set_requires_grad(g32, true);
    struct {
        const char *what;
        tg_tensor *r;
        size_t recorded;
    } calls[8];
    int n = 0;
#define TRY(label, expr)                                                                       \
    do {                                                                                       \
        size_t before_ = tg_tape_size(f.tape);                                                 \
        calls[n].what = label;                                                                 \
        calls[n].r = (expr);                                                                   \
        calls[n].recorded = tg_tape_size(f.tape) - before_;                                    \
        n++;                                                                                   \
    } while (0)
    tg_tensor *empty = tg_slice(f.g, 0, 0, 0, 1); // 0x3, recorded before the counts
    ck_assert_ptr_nonnull(empty);
    TRY("tg_add bad broadcast", tg_add(f.g, f.d32));
    TRY("tg_matmul inner dims", tg_matmul(f.g, f.g));
    TRY("tg_rsub_scalar(x, NaN)", tg_rsub_scalar(f.g, NAN));
    TRY("tg_rdiv_scalar(x, inf)", tg_rdiv_scalar(f.g, INFINITY));
    TRY("tg_stack dtype mix", tg_stack(2, (tg_tensor *[]){f.g, g32}, 0));
    TRY("tg_stack shape mix", tg_stack(2, (tg_tensor *[]){f.g, f.d32}, 0));
    TRY("tg_mean of an empty tensor", tg_mean(empty, NULL, 0, false));
    TRY("tg_max of an empty tensor", tg_max(empty, NULL, 0, false));
#undef TRY
    tg_tensor_free(g32);
    fx_free(&f);
    // All offenders in one message.
    char report[1024] = "";
    for (int i = 0; i < n; i++) {
        ck_assert_msg(calls[i].r == NULL, "%s succeeded", calls[i].what);
        if (calls[i].recorded)
            snprintf(report + strlen(report), sizeof report - strlen(report),
                     "%s%s (%zu node%s)", report[0] ? "; " : "", calls[i].what,
                     calls[i].recorded, calls[i].recorded == 1 ? "" : "s");
    }
    ck_assert_msg(report[0] == '\0', "failed calls that recorded on the tape: %s", report);
}
END_TEST

/* ---- getters given NULL (issue 11 item 12) ----
 * Each returned a neutral value (tg_tensor_dtype(NULL) is TG_F32) without
 * recording anything, so a caller could not tell an answer from a mistake.
 * One line per getter: the call and the message it must record. */
#define GETTER_CASES(X)                                                                   \
    X(tg_tensor_dtype(NULL), "tg_tensor_dtype: tensor is NULL")                          \
    X(tg_tensor_ndim(NULL), "tg_tensor_ndim: tensor is NULL")                            \
    X(tg_tensor_shape(NULL), "tg_tensor_shape: tensor is NULL")                          \
    X(tg_tensor_strides(NULL), "tg_tensor_strides: tensor is NULL")                      \
    X(tg_tensor_dim(NULL, 0), "tg_tensor_dim: tensor is NULL")                           \
    X(tg_tensor_numel(NULL), "tg_tensor_numel: tensor is NULL")                          \
    X(tg_tensor_on_tape(NULL), "tg_tensor_on_tape: tensor is NULL")                      \
    X(tg_tensor_data(NULL), "tg_tensor_data: tensor is NULL")                            \
    X(tg_tensor_data_const(NULL), "tg_tensor_data_const: tensor is NULL")                \
    X(tg_tensor_requires_grad(NULL), "tg_tensor_requires_grad: tensor is NULL")          \
    X(tg_tensor_grad(NULL), "tg_tensor_grad: tensor is NULL")                            \
    X(tg_tensor_zero_grad(NULL), "tg_tensor_zero_grad: tensor is NULL")                  \
    X(tg_idx_ndim(NULL), "tg_idx_ndim: idx is NULL")                                     \
    X(tg_idx_dims(NULL), "tg_idx_dims: idx is NULL")                                     \
    X(tg_idx_size(NULL), "tg_idx_size: idx is NULL")                                     \
    X(tg_idx_data(NULL), "tg_idx_data: idx is NULL")                                     \
    X(tg_dataset_images(NULL, TG_SPLIT_TRAIN), "tg_dataset_images: dataset is NULL")     \
    X(tg_dataset_labels(NULL, TG_SPLIT_TEST), "tg_dataset_labels: dataset is NULL")      \
    X(tg_dataset_count(NULL, TG_SPLIT_TRAIN), "tg_dataset_count: dataset is NULL")       \
    X(tg_dataset_num_classes(NULL), "tg_dataset_num_classes: dataset is NULL")           \
    X(tg_batcher_num_batches(NULL), "tg_batcher_num_batches: batcher is NULL")           \
    X(tg_batcher_reset_epoch(NULL), "tg_batcher_reset_epoch: batcher is NULL")           \
    X(tg_layer_name(NULL), "tg_layer_name: layer is NULL")                               \
    X(tg_layer_type(NULL), "tg_layer_type: layer is NULL")                               \
    X(tg_layer_output_shape(NULL, &n), "tg_layer_output_shape: layer is NULL")           \
    X(tg_layer_params(NULL, &n), "tg_layer_params: layer is NULL")                       \
    X(tg_layer_param_count(NULL), "tg_layer_param_count: layer is NULL")                 \
    X(tg_model_set_training(NULL, true), "tg_model_set_training: model is NULL")         \
    X(tg_model_training(NULL), "tg_model_training: model is NULL")                       \
    X(tg_model_params(NULL, &n), "tg_model_params: model is NULL")                       \
    X(tg_model_param_count(NULL), "tg_model_param_count: model is NULL")                 \
    X(tg_model_layer_count(NULL), "tg_model_layer_count: model is NULL")                 \
    X(tg_model_layer(NULL, 0), "tg_model_layer: model is NULL")                          \
    X(tg_model_input_shape(NULL, &n), "tg_model_input_shape: model is NULL")             \
    X(tg_model_output_shape(NULL, &n), "tg_model_output_shape: model is NULL")           \
    X(tg_model_dtype(NULL), "tg_model_dtype: model is NULL")
#define GETTER_COUNT(call, msg) +1
enum { N_GETTERS = 0 GETTER_CASES(GETTER_COUNT) };

START_TEST(test_getter_null)
{
    int n = 7, k = 0;
    const char *want = NULL;
    tg_clear_error();
#define GETTER_RUN(call, msg)                                                             \
    if (k++ == _i) {                                                                      \
        (void)(call);                                                                     \
        want = msg;                                                                       \
    }
    GETTER_CASES(GETTER_RUN)
#undef GETTER_RUN
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, want);
    (void)n;
    // A pending failure keeps its message, as ops given NULL do.
    tg_set_error(TG_ESHAPE, "earlier failure");
    k = 0;
#define GETTER_RUN(call, msg)                                                             \
    if (k++ == _i)                                                                        \
        (void)(call);
    GETTER_CASES(GETTER_RUN)
#undef GETTER_RUN
    ASSERT_FAIL(tg_last_status(), TG_ESHAPE, "earlier failure");
    tg_clear_error();
}
END_TEST

/* Out-of-range indices to getters are failures too, not silent -1/NULL. */
START_TEST(test_getter_range)
{
    tg_tensor *t = tg_tensor_zeros(TG_F32, TG_SHAPE(2, 3));
    ck_assert_int_eq(tg_tensor_dim(t, -2), 2);
    ck_assert_int_eq(tg_tensor_dim(t, 1), 3);
    tg_clear_error();
    ck_assert_int_eq(tg_tensor_dim(t, 2), -1);
    ASSERT_FAIL(tg_last_status(), TG_ERANGE, "tg_tensor_dim: axis 2 out of range for 2 dims");
    tg_clear_error();
    ck_assert_int_eq(tg_tensor_dim(t, -3), -1);
    ASSERT_FAIL(tg_last_status(), TG_ERANGE, "tg_tensor_dim: axis -3 out of range");
    tg_tensor_free(t);
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(4), TG_SCHEME_KERAS, 1);
    ck_assert_ptr_nonnull(m);
    ASSERT_FRESH_NULL_FAIL(tg_model_layer(m, 0), TG_ERANGE,
                           "tg_model_layer: index 0 outside 0..-1");
    ASSERT_OK(tg_model_add(m, tg_layer_dense(2, TG_ACT_NONE)));
    ck_assert_ptr_nonnull(tg_model_layer(m, 0));
    ASSERT_FRESH_NULL_FAIL(tg_model_layer(m, -1), TG_ERANGE,
                           "tg_model_layer: index -1 outside 0..0");
    tg_model_free(m);
}
END_TEST

/* Issue 11 item 6: every function that writes to a stream reports a failed
 * write (a read-only stream fails at once, /dev/full when flushed). */
START_TEST(test_stream_write_errors)
{
    tg_tensor *t = tg_tensor_zeros(TG_F32, TG_SHAPE(2, 2));
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(3), TG_SCHEME_KERAS, 1);
    ck_assert_ptr_nonnull(m);
    ASSERT_OK(tg_model_add(m, tg_layer_dense(2, TG_ACT_NONE)));
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        ASSERT_FRESH_FAIL(tg_tensor_print(t, full), TG_EIO, "tg_tensor_print: writing");
        clearerr(full);
        ASSERT_FRESH_FAIL(tg_model_summary(m, full), TG_EIO, "tg_model_summary: writing");
        fclose(full);
    }
    FILE *rd = fopen("/dev/null", "r");
    ck_assert_ptr_nonnull(rd);
    ASSERT_FRESH_FAIL(tg_tensor_print(t, rd), TG_EIO, "tg_tensor_print: writing");
    clearerr(rd);
    ASSERT_FRESH_FAIL(tg_model_summary(m, rd), TG_EIO, "tg_model_summary: writing");
    fclose(rd);
    tg_model_free(m);
    tg_tensor_free(t);
}
END_TEST

/* The longest messages the ops can give (issue 11 item 3: a broadcast message
 * overflowed a stack buffer): shapes with the longest printed form the
 * library accepts, through every kind of shape check. Each message is
 * bounded; under ASan an overflow would fail the test. */
START_TEST(test_longest_messages)
{
    tg_tape *tape = tg_tape_new();
    const int64_t big = INT64_MAX / 8;
    int64_t sa[8] = {0, 0, 0, 0, 0, 0, 0, big}, sb[8] = {0, 0, 0, 0, 0, 0, 0, big - 1};
    tg_tensor *a = tg_full(TG_F32, 8, sa, 0), *b = tg_full(TG_F32, 8, sb, 0);
    tg_tensor *d = tg_full(TG_F64, 8, sb, 0);
    ck_assert_msg(a && b && d, "%s", tg_last_error());
    const int64_t labels[1] = {0};
    tg_pool2d_geom pg = tg_pool2d_geom_square(2);
#define LONGEST(expr)                                                                     \
    do {                                                                                  \
        tg_clear_error();                                                                 \
        ck_assert_msg(!(expr), "%s succeeded", #expr);                                    \
        ck_assert_msg(tg_last_status() != TG_OK && strlen(tg_last_error()) < 512, "%s: %s", \
                      #expr, tg_last_error());                                            \
    } while (0)
    LONGEST(tg_add(a, b));
    LONGEST(tg_where(a, b, a));
    LONGEST(tg_matmul(a, b));
    LONGEST(tg_reshape(a, 8, (const int64_t[]){1, 1, 1, 1, 1, 1, 1, big}));
    LONGEST(tg_expand(a, 8, sb));
    LONGEST(tg_concat(2, (tg_tensor *[]){a, b}, 0));
    LONGEST(tg_stack(2, (tg_tensor *[]){a, b}, 0));
    LONGEST(tg_mul(a, d));
    LONGEST(tg_cross_entropy(a, labels, TG_REDUCE_MEAN));
    LONGEST(tg_conv2d(a, b, NULL, NULL));
    LONGEST(tg_max_pool2d(a, &pg));
    LONGEST(tg_mse_loss(a, b, TG_REDUCE_MEAN));
    LONGEST(tg_gather(a, 0, 8, (const int64_t[]){0, 0, 0, 0, 0, 0, 1, big}, labels));
    LONGEST(tg_softmax(a, 9));
    LONGEST(tg_hypot(a, b));
    LONGEST(tg_sum(a, (const int[]){9}, 1, false));
#undef LONGEST
    tg_tape_free(tape);
}
END_TEST

static Suite *errors_suite(void)
{
    Suite *s = suite_create("errors");
    TCase *ops = tcase_create("ops");
    tcase_add_loop_test(ops, test_op_error, 0, N_OP_ERRORS);
    tcase_add_loop_test(ops, test_op_without_tape, 0, N_NO_TAPE);
    tcase_add_test(ops, test_failed_calls_record_nothing);
    suite_add_tcase(s, ops);
    TCase *status = tcase_create("status");
    tcase_add_test(status, test_first_error_is_kept);
    tcase_add_test(status, test_status_codes);
    tcase_add_test(status, test_longest_messages);
    suite_add_tcase(s, status);
    TCase *tensor = tcase_create("tensor");
    tcase_add_loop_test(tensor, test_constructor_errors, 0, 7 * 5);
    tcase_add_test(tensor, test_tensor_function_errors);
    tcase_add_test(tensor, test_rng_null);
    suite_add_tcase(s, tensor);
    TCase *getters = tcase_create("getters");
    tcase_add_loop_test(getters, test_getter_null, 0, N_GETTERS);
    tcase_add_test(getters, test_getter_range);
    tcase_add_test(getters, test_stream_write_errors);
    suite_add_tcase(s, getters);
    TCase *autograd = tcase_create("autograd");
    tcase_add_test(autograd, test_tape_function_errors);
    tcase_add_test(autograd, test_gradcheck_errors);
    tcase_add_test(autograd, test_user_op_errors);
    suite_add_tcase(s, autograd);
    return s;
}

TG_CHECK_MAIN(errors_suite)
