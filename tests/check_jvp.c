/* check_jvp.c - forward mode (tg_jvp, tg_hvp) and the tangent rule in every
 * op's entry. Every case below is a small float64 function; for each one the
 * JVP is compared with central differences, with the reverse mode through
 * the adjoint identity u . (J v) == (J^T u) . v on random directions (J^T u
 * from tg_backward), differentiated again (reverse-over-forward, checked by
 * tg_gradcheck), and the Hessian-vector product of a scalar made from it is
 * compared between forward-over-reverse (tg_hvp) and reverse-over-reverse.
 * test_every_op_has_a_tangent walks the op registry: it fails, naming the
 * op, for a differentiable op without a tangent rule or one that no case
 * here exercises (the cases are inspected through the nodes they record, so
 * covering an op is running it). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "ops/ops_internal.h"
#include "op_cases.h"
#include "tg_check.h"

/* ---- the cases ---- */

/* Where a case draws its inputs: uniform in [lo, hi], with |x| >= 0.2 when
 * away (no kink within a finite-difference step), and some elements of input 0
 * exactly 0 with zeros. */
#define ANY -1.0, 1.0, false, NULL
#define POSITIVE 0.5, 1.5, false, NULL
#define AWAY_FROM_ZERO -1.0, 1.0, true, NULL
#define ANY_WITH_ZEROS(at) -1.0, 1.0, false, at

typedef struct jvp_case {
    const char *name;
    int n;
    int ndim[3];
    int64_t shape[3][4];
    double lo, hi;
    bool away;
    const int64_t *zeros; /* flat indices of input 0 then set to exactly 0, ended by -1 */
    tg_tensor *(*f)(tg_tensor *const *x);
} jvp_case;

static const int64_t LABELS[] = {2, 0, 1};
/* Rows of a (3, 4) input with one zero, two zeros and none. */
static const int64_t ZEROS_1_2_0[] = {1, 4, 6, -1};

/* The gradients of y with respect to xs[0..n), recorded (TG_CREATE_GRAPH) and
 * joined into one vector: f of these cases runs the backward rules. */
static tg_tensor *grads_of(tg_tensor *y, int n, tg_tensor *const *xs)
{
    tg_tensor *g[3], *flat[3];
    if (!y || tg_grad(1, &y, NULL, n, xs, g, TG_CREATE_GRAPH | TG_ALLOW_UNUSED) != TG_OK)
        return NULL;
    for (int i = 0; i < n; i++)
        flat[i] = tg_reshape(g[i], 1, (int64_t[]){-1});
    return n == 1 ? flat[0] : tg_concat(n, flat, 0);
}

static tg_tensor *f_sub_a(tg_tensor *const *x) { return tg_sub(tg_exp(x[0]), x[0]); }
static tg_tensor *f_where_one(tg_tensor *const *x)
{
    return tg_where(tg_gt_scalar(tg_detach(x[0]), 0.0), tg_scalar(TG_F64, 2.0), x[0]);
}
static tg_tensor *f_scalars(tg_tensor *const *x)
{
    tg_tensor *a = tg_add_scalar(x[0], 1.5), *b = tg_sub_scalar(x[0], 0.5);
    tg_tensor *c = tg_rsub_scalar(x[0], 2.0), *d = tg_mul_scalar(x[0], -3.0);
    return tg_add(tg_add(tg_mul(a, b), tg_mul(c, d)), tg_div_scalar(x[0], 4.0));
}
static tg_tensor *f_pow_scalar(tg_tensor *const *x)
{
    tg_tensor *a = tg_add(tg_pow_scalar(x[0], 2.5), tg_pow_scalar(x[0], 2.0));
    return tg_add(tg_add(a, tg_pow_scalar(x[0], 1.0)), tg_rdiv_scalar(x[0], 2.0));
}
static tg_tensor *f_concat_const(tg_tensor *const *x)
{
    // One part has no tangent: the rule fills in zeros.
    return tg_concat(2, (tg_tensor *[]){tg_full(TG_F64, TG_SHAPE(2, 2), 3.0), x[0]}, 1);
}
static tg_tensor *f_conv_bias(tg_tensor *const *x)
{
    tg_conv2d_geom g = tg_conv2d_geom_default();
    g.stride_w = 2;
    g.padding = TG_PAD_SAME;
    return tg_conv2d(x[0], x[1], x[2], &g);
}
static tg_tensor *f_conv(tg_tensor *const *x)
{
    tg_conv2d_geom g = tg_conv2d_geom_default();
    g.dilation_h = 2;
    return tg_conv2d(x[0], x[1], NULL, &g);
}
static tg_tensor *f_max_pool(tg_tensor *const *x)
{
    tg_pool2d_geom g = tg_pool2d_geom_square(2);
    return tg_max_pool2d(x[0], &g);
}
static tg_tensor *f_avg_pool(tg_tensor *const *x)
{
    tg_pool2d_geom g = {.kernel_h = 3, .kernel_w = 2, .stride_h = 2, .stride_w = 1,
                        .padding = TG_PAD_EXPLICIT, .pad_top = 1, .pad_bottom = 1};
    return tg_avg_pool2d(x[0], &g);
}
static tg_tensor *f_xent(tg_tensor *const *x)
{
    return tg_cross_entropy(x[0], LABELS, TG_REDUCE_NONE);
}
static tg_tensor *f_xent_mean(tg_tensor *const *x)
{
    return tg_cross_entropy(tg_mul(x[0], x[0]), LABELS, TG_REDUCE_MEAN);
}
static tg_tensor *f_mlp(tg_tensor *const *x)
{
    return tg_sum(tg_tanh(tg_add(tg_matmul(x[0], x[1]), x[2])), AX1, 1, false);
}
/* The issue-10 reductions, 1-D matmul, layer_norm and attention (ops10). */
static tg_tensor *f_min_axis(tg_tensor *const *x) { return tg_min(x[0], AX1, 1, true); }
static tg_tensor *f_prod_rows(tg_tensor *const *x) { return tg_prod(x[0], AXN1, 1, true); }
static tg_tensor *f_prod_all(tg_tensor *const *x) { return tg_prod(x[0], NULL, 0, false); }
static tg_tensor *f_std(tg_tensor *const *x) { return tg_std(x[0], AX02, 2, 2, true); }
static tg_tensor *f_cumsum_last(tg_tensor *const *x) { return tg_cumsum(tg_exp(x[0]), -1); }
static tg_tensor *f_ln_affine(tg_tensor *const *x)
{
    return tg_layer_norm(x[0], 2, x[1], x[2], 1e-5);
}
static tg_tensor *f_ln_plain(tg_tensor *const *x)
{
    return tg_layer_norm(x[0], 1, NULL, NULL, 1e-5);
}
static tg_tensor *f_ln_gamma(tg_tensor *const *x)
{
    return tg_layer_norm(x[0], 1, x[1], NULL, 0.1);
}
static tg_tensor *f_ln_beta(tg_tensor *const *x)
{
    return tg_layer_norm(x[0], 1, NULL, x[1], 1e-5);
}
static tg_tensor *f_attention(tg_tensor *const *x)
{
    return tg_scaled_dot_product_attention(x[0], x[1], x[2], false, 0.0);
}
static tg_tensor *f_attention_causal(tg_tensor *const *x)
{
    return tg_scaled_dot_product_attention(x[0], x[1], x[2], true, 0.7);
}
/* speed2's fused ops of the Dense and Conv2D layers. */
static tg_tensor *f_linear(tg_tensor *const *x) { return tg__linear(x[0], x[1], x[2], false); }
static tg_tensor *f_linear_nobias(tg_tensor *const *x)
{
    return tg__linear(x[0], x[1], NULL, false);
}
static tg_tensor *f_linear_relu(tg_tensor *const *x)
{
    return tg__linear(x[0], x[1], x[2], true);
}
static tg_tensor *f_conv_relu(tg_tensor *const *x)
{
    tg_conv2d_geom g = tg_conv2d_geom_default();
    g.padding = TG_PAD_SAME;
    return tg__conv2d_relu(x[0], x[1], x[2], &g);
}
static tg_tensor *f_conv_relu_nobias(tg_tensor *const *x)
{
    tg_conv2d_geom g = tg_conv2d_geom_default();
    g.stride_h = 2;
    return tg__conv2d_relu(x[0], x[1], NULL, &g);
}

static tg_tensor *f_conv_relu_pool(tg_tensor *const *x)
{
    tg_conv2d_geom g = tg_conv2d_geom_default();
    g.padding = TG_PAD_SAME;
    tg_pool2d_geom p = tg_pool2d_geom_square(2);
    return tg__conv2d_relu_max_pool2d(x[0], x[1], x[2], &g, &p);
}
static tg_tensor *f_conv_relu_pool_overlap(tg_tensor *const *x)
{
    tg_conv2d_geom g = tg_conv2d_geom_default();
    tg_pool2d_geom p = {.kernel_h = 3, .kernel_w = 2, .stride_h = 2, .stride_w = 1};
    return tg__conv2d_relu_max_pool2d(x[0], x[1], NULL, &g, &p);
}

/* The backward rules run inside f: JVP through them is forward-over-reverse. */
static tg_tensor *f_grad_conv(tg_tensor *const *x)
{
    tg_conv2d_geom g = tg_conv2d_geom_default();
    g.padding = TG_PAD_SAME;
    return grads_of(tg_sum(tg_tanh(tg_conv2d(x[0], x[1], NULL, &g)), NULL, 0, false), 2, x);
}
static tg_tensor *f_grad_slice(tg_tensor *const *x)
{
    tg_tensor *s = tg_slice(x[0], 1, 1, 6, 2);
    return grads_of(tg_sum(tg_mul(s, tg_mul(s, s)), NULL, 0, false), 1, x);
}
static tg_tensor *f_grad_take(tg_tensor *const *x)
{
    tg_tensor *t = tg_index_select(x[0], 1, 3, (const int64_t[]){2, 0, 2});
    return grads_of(tg_sum(tg_sin(t), NULL, 0, false), 1, x);
}
static tg_tensor *f_grad_max(tg_tensor *const *x)
{
    tg_pool2d_geom g = tg_pool2d_geom_square(2);
    tg_tensor *m = tg_max(tg_max_pool2d(x[0], &g), AXN1, 1, false);
    return grads_of(tg_sum(tg_square(m), NULL, 0, false), 1, x);
}
static tg_tensor *f_grad_avg(tg_tensor *const *x)
{
    tg_pool2d_geom g = {.kernel_h = 2, .kernel_w = 2, .stride_h = 1, .stride_w = 1};
    return grads_of(tg_sum(tg_exp(tg_avg_pool2d(x[0], &g)), NULL, 0, false), 1, x);
}
static tg_tensor *f_grad_xent(tg_tensor *const *x)
{
    return grads_of(tg_cross_entropy(tg_matmul(x[0], x[1]), LABELS, TG_REDUCE_MEAN), 2, x);
}
static tg_tensor *f_grad_cumsum(tg_tensor *const *x)
{
    return grads_of(tg_sum(tg_sin(tg_cumsum(x[0], 0)), NULL, 0, false), 1, x);
}

/* ---- user ops: one with a tangent rule, one relying on the fallback ---- */

static tg_status cube_forward(tg_tensor *out, tg_tensor *const *in, void *ctx)
{
    for (int64_t i = 0; i < tg_tensor_numel(in[0]); i++) {
        double v;
        tg_tensor_get_flat(in[0], i, &v);
        tg_tensor_set_flat(out, i, v * v * v);
    }
    return TG_OK;
}
static tg_status cube_backward(tg_tensor *const *in, tg_tensor *out, tg_tensor *dout,
                               const bool *needs, tg_tensor **din, void *ctx)
{
    din[0] = tg_mul(dout, tg_mul_scalar(tg_square(in[0]), 3.0));
    return din[0] ? TG_OK : tg_last_status();
}
static tg_status cube_tangent(tg_tensor *const *in, tg_tensor *out, tg_tensor *const *tin,
                              tg_tensor **tout, void *ctx)
{
    *tout = tg_mul(tin[0], tg_mul_scalar(tg_square(in[0]), 3.0));
    return *tout ? TG_OK : tg_last_status();
}
static const tg_op_def_user CUBE = {.name = "cube", .n_inputs = 1, .forward = cube_forward,
                                    .backward = cube_backward, .tangent = cube_tangent};

/* a * b (two inputs), no tangent rule: forward mode takes the fallback. */
static tg_status prod_forward(tg_tensor *out, tg_tensor *const *in, void *ctx)
{
    for (int64_t i = 0; i < tg_tensor_numel(out); i++) {
        double a, b;
        tg_tensor_get_flat(in[0], i, &a);
        tg_tensor_get_flat(in[1], i, &b);
        tg_tensor_set_flat(out, i, a * b);
    }
    return TG_OK;
}
static tg_status prod_backward(tg_tensor *const *in, tg_tensor *out, tg_tensor *dout,
                               const bool *needs, tg_tensor **din, void *ctx)
{
    if (needs[0] && !(din[0] = tg_mul(dout, in[1])))
        return tg_last_status();
    if (needs[1] && !(din[1] = tg_mul(dout, in[0])))
        return tg_last_status();
    return TG_OK;
}
static const tg_op_def_user PROD = {.name = "prod", .n_inputs = 2, .forward = prod_forward,
                                    .backward = prod_backward};

static tg_tensor *f_user_cube(tg_tensor *const *x) { return tg_apply(&CUBE, 1, x, NULL); }
static tg_tensor *f_user_fallback(tg_tensor *const *x)
{
    return tg_apply(&PROD, 2, (tg_tensor *[]){tg_sin(x[0]), x[1]}, NULL);
}

#define UNARY_FN(name, ...)                                                                \
    static tg_tensor *u_##name(tg_tensor *const *x) { return tg_##name(x[0]); }
TG_UNARY_OPS(UNARY_FN)
#define BINARY_FN(name, ...)                                                               \
    static tg_tensor *b_##name(tg_tensor *const *x) { return tg_##name(x[0], x[1]); }
TG_BINARY_OPS(BINARY_FN)

#define UNARY_CASE(name, formula, derivative, fwd, fused, backward, lo, hi)                \
    {"tg_" #name, 1, {2}, {{3, 4}}, lo, hi, false, NULL, u_##name},
#define BINARY_CASE(name, formula, da, db, fwd, fa, fb, ba, bb, lo, hi)                    \
    {"tg_" #name " broadcast", 2, {2, 1}, {{3, 4}, {4}}, lo, hi, false, NULL, b_##name},

static const jvp_case cases[] = {
    TG_UNARY_OPS(UNARY_CASE) TG_BINARY_OPS(BINARY_CASE)
    {"add broadcast", 2, {2, 3}, {{3, 1}, {2, 1, 4}}, ANY, f_add},
    {"sub broadcast", 2, {1, 3}, {{4}, {2, 3, 4}}, ANY, f_sub},
    {"sub of one input", 1, {2}, {{2, 3}}, ANY, f_sub_a},
    {"mul broadcast", 2, {2, 2}, {{2, 3}, {1, 3}}, ANY, f_mul},
    {"mul reused x*x*x", 1, {2}, {{3, 2}}, ANY, f_mul_self},
    {"div", 2, {2, 1}, {{2, 3}, {3}}, POSITIVE, f_div},
    {"pow", 2, {2, 2}, {{2, 3}, {1, 3}}, POSITIVE, f_pow},
    {"pow by a 0-dim exponent", 2, {2, 0}, {{2, 3}, {0}}, POSITIVE, f_pow},
    {"maximum", 2, {2, 2}, {{2, 3}, {2, 3}}, ANY, f_maximum},
    {"minimum broadcast", 2, {2, 1}, {{2, 3}, {3}}, ANY, f_minimum},
    {"where", 2, {2, 2}, {{2, 3}, {2, 3}}, AWAY_FROM_ZERO, f_where},
    {"where broadcast", 2, {2, 2}, {{3, 1}, {1, 4}}, AWAY_FROM_ZERO, f_where},
    {"where with a constant side", 1, {2}, {{2, 3}}, AWAY_FROM_ZERO, f_where_one},
    {"scalar ops", 1, {2}, {{2, 3}}, ANY, f_scalars},
    {"pow_scalar", 1, {2}, {{2, 3}}, POSITIVE, f_pow_scalar},
    {"leaky_relu", 1, {2}, {{2, 3}}, AWAY_FROM_ZERO, f_leaky},
    {"clamp", 1, {2}, {{3, 4}}, ANY, f_clamp},
    {"sum all", 1, {3}, {{2, 3, 2}}, ANY, f_sum_all},
    {"sum axes keepdim", 1, {3}, {{2, 3, 4}}, ANY, f_sum_axes},
    {"mean", 1, {3}, {{2, 3, 2}}, ANY, f_mean},
    {"max all", 1, {2}, {{3, 4}}, ANY, f_max_all},
    {"max axis keepdim", 1, {3}, {{2, 3, 4}}, ANY, f_max_axis},
    {"logsumexp", 1, {3}, {{2, 3, 2}}, ANY, f_lse},
    {"logsumexp all keepdim", 1, {2}, {{3, 2}}, ANY, f_lse_all},
    {"matmul 2-D", 2, {2, 2}, {{3, 4}, {4, 2}}, ANY, f_matmul},
    {"matmul broadcast batch", 2, {4, 3}, {{2, 1, 3, 4}, {5, 4, 2}}, ANY, f_matmul},
    {"reshape/flatten", 2, {2, 3}, {{2, 6}, {3, 2, 2}}, ANY, f_reshape},
    {"permute/transpose", 1, {3}, {{2, 3, 4}}, ANY, f_permute},
    {"expand", 1, {2}, {{3, 1}}, ANY, f_expand},
    {"slice with step", 1, {2}, {{2, 7}}, ANY, f_slice},
    {"concat", 3, {2, 2, 2}, {{2, 1}, {2, 3}, {2, 2}}, ANY, f_concat},
    {"concat with a constant", 1, {2}, {{2, 3}}, ANY, f_concat_const},
    {"stack", 2, {2, 2}, {{2, 3}, {2, 3}}, ANY, f_stack},
    {"index_select", 1, {2}, {{3, 2}}, ANY, f_index_select},
    {"gather", 1, {2}, {{3, 4}}, ANY, f_gather},
    {"softmax", 1, {2}, {{3, 4}}, ANY, f_softmax},
    {"softmax axis 0 of 3-D", 1, {3}, {{3, 2, 2}}, ANY, f_softmax0},
    {"log_softmax", 1, {2}, {{3, 4}}, ANY, f_log_softmax},
    {"log_softmax last axis", 1, {2}, {{2, 5}}, ANY, f_log_softmax_last},
    {"conv2d with bias, stride, same", 3, {4, 4, 1}, {{2, 2, 5, 5}, {3, 2, 3, 3}, {3}}, ANY,
     f_conv_bias},
    {"conv2d dilated", 2, {4, 4}, {{1, 2, 6, 5}, {2, 2, 2, 3}}, ANY, f_conv},
    {"max_pool2d", 1, {4}, {{2, 2, 4, 4}}, ANY, f_max_pool},
    {"avg_pool2d padded", 1, {4}, {{1, 2, 5, 4}}, ANY, f_avg_pool},
    {"cross_entropy", 1, {2}, {{3, 4}}, ANY, f_xent},
    {"cross_entropy mean", 1, {2}, {{3, 4}}, ANY, f_xent_mean},
    {"2-layer composition", 3, {2, 2, 1}, {{3, 4}, {4, 2}, {2}}, ANY, f_mlp},
    {"grad of conv2d (conv2d_dx, conv2d_dw)", 2, {4, 4}, {{2, 2, 4, 4}, {2, 2, 3, 3}}, ANY,
     f_grad_conv},
    {"grad of slice (slice_grad)", 1, {2}, {{2, 7}}, ANY, f_grad_slice},
    {"grad of index_select (put_add)", 1, {2}, {{2, 3}}, ANY, f_grad_take},
    {"grad of max pooling and max", 1, {4}, {{1, 2, 4, 4}}, ANY, f_grad_max},
    {"grad of avg_pool2d (avg_pool2d_grad)", 1, {4}, {{1, 2, 3, 4}}, ANY, f_grad_avg},
    {"grad of cross_entropy", 2, {2, 2}, {{3, 2}, {2, 4}}, ANY, f_grad_xent},
    {"min all", 1, {2}, {{3, 4}}, ANY, f_min_all},
    {"min axis keepdim", 1, {3}, {{2, 3, 4}}, ANY, f_min_axis},
    {"prod over two axes", 1, {3}, {{2, 3, 2}}, ANY, f_prod_axes},
    {"prod of rows with one zero, two zeros, none", 1, {2}, {{3, 4}},
     ANY_WITH_ZEROS(ZEROS_1_2_0), f_prod_rows},
    {"prod all with three zeros", 1, {2}, {{3, 4}}, ANY_WITH_ZEROS(ZEROS_1_2_0), f_prod_all},
    {"prod all", 1, {2}, {{2, 3}}, POSITIVE, f_prod_all},
    {"var with correction 1", 1, {3}, {{2, 3, 2}}, ANY, f_var},
    {"var all, correction 0, keepdim", 1, {2}, {{3, 4}}, ANY, f_var_all},
    {"std with correction 2, keepdim", 1, {3}, {{2, 3, 2}}, ANY, f_std},
    {"cumsum", 1, {3}, {{2, 3, 2}}, ANY, f_cumsum},
    {"cumsum last axis", 1, {2}, {{3, 4}}, ANY, f_cumsum_last},
    {"grad of cumsum (reversed cumsum)", 1, {2}, {{4, 2}}, ANY, f_grad_cumsum},
    {"matmul vector . vector", 2, {1, 1}, {{4}, {4}}, ANY, f_matmul},
    {"matmul vector @ matrix", 2, {1, 2}, {{3}, {3, 2}}, ANY, f_matmul},
    {"matmul matrix @ vector", 2, {2, 1}, {{2, 3}, {3}}, ANY, f_matmul},
    {"matmul batch @ vector", 2, {3, 1}, {{2, 3, 4}, {4}}, ANY, f_matmul},
    {"matmul vector @ batch", 2, {1, 3}, {{3}, {2, 3, 2}}, ANY, f_matmul},
    {"layer_norm over 2 dims, gamma and beta", 3, {3, 2, 2}, {{2, 3, 4}, {3, 4}, {3, 4}}, ANY,
     f_ln_affine},
    {"layer_norm, no affine", 1, {2}, {{3, 5}}, ANY, f_ln_plain},
    {"layer_norm, gamma only", 2, {3, 1}, {{2, 2, 3}, {3}}, ANY, f_ln_gamma},
    {"layer_norm, beta only", 2, {2, 1}, {{3, 4}, {4}}, ANY, f_ln_beta},
    {"attention (Tq 3, Tk 5)", 3, {3, 3, 3}, {{2, 3, 4}, {2, 5, 4}, {2, 5, 3}}, ANY,
     f_attention},
    {"attention causal, 4-D", 3, {4, 4, 4}, {{1, 2, 4, 3}, {1, 2, 4, 3}, {1, 2, 4, 2}}, ANY,
     f_attention_causal},
    {"attention causal, Tq 4 > Tk 3", 3, {3, 3, 3}, {{2, 4, 2}, {2, 3, 2}, {2, 3, 3}}, ANY,
     f_attention_causal},
    {"linear", 3, {2, 2, 1}, {{3, 4}, {4, 2}, {2}}, ANY, f_linear},
    {"linear without bias", 2, {2, 2}, {{2, 3}, {3, 4}}, ANY, f_linear_nobias},
    {"linear_relu", 3, {2, 2, 1}, {{4, 3}, {3, 5}, {5}}, ANY, f_linear_relu},
    {"conv2d_relu with bias, same", 3, {4, 4, 1}, {{2, 2, 4, 4}, {3, 2, 3, 3}, {3}}, ANY,
     f_conv_relu},
    {"conv2d_relu, stride 2", 2, {4, 4}, {{1, 2, 5, 4}, {2, 2, 2, 2}}, ANY,
     f_conv_relu_nobias},
    {"conv2d_relu_max_pool2d with bias, same", 3, {4, 4, 1},
     {{2, 2, 6, 5}, {3, 2, 3, 2}, {3}}, ANY, f_conv_relu_pool},
    {"conv2d_relu_max_pool2d, overlapping windows", 2, {4, 4}, {{1, 2, 7, 5}, {2, 2, 2, 2}},
     ANY, f_conv_relu_pool_overlap},
    {"user op with a tangent rule", 1, {2}, {{2, 3}}, ANY, f_user_cube},
    {"user op without one (fallback)", 2, {2, 2}, {{2, 3}, {2, 3}}, ANY, f_user_fallback},
};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

static tg_tensor *case_fn(tg_tensor *const *x, int n, void *ctx)
{
    (void)n;
    return ((const jvp_case *)ctx)->f(x);
}

/* Input k of case c (caller-owned, float64). */
static tg_tensor *case_input(const jvp_case *c, int k, uint64_t seed)
{
    tg_rng rng = tg_rng_seeded(seed);
    tg_tensor *t = tg_tensor_uniform(TG_F64, c->ndim[k], c->shape[k], c->lo, c->hi, &rng);
    double *v = t->data;
    for (int64_t i = 0; i < t->numel && c->away; i++)
        v[i] = v[i] < 0 ? v[i] - 0.2 : v[i] + 0.2;
    for (int i = 0; k == 0 && c->zeros && c->zeros[i] >= 0; i++)
        v[c->zeros[i]] = 0.0;
    return t;
}

static tg_tensor *random_like(const tg_tensor *x, uint64_t seed)
{
    tg_rng rng = tg_rng_seeded(seed);
    return tg_tensor_normal(TG_F64, x->ndim, x->shape, 0.0, 1.0, &rng);
}

static double dot(const tg_tensor *a, const tg_tensor *b)
{
    double s = 0;
    for (int64_t i = 0; i < a->numel; i++)
        s += ((const double *)a->data)[i] * ((const double *)b->data)[i];
    return s;
}

static double abs_dot(const tg_tensor *a, const tg_tensor *b)
{
    double s = 0;
    for (int64_t i = 0; i < a->numel; i++)
        s += fabs(((const double *)a->data)[i] * ((const double *)b->data)[i]);
    return s;
}

typedef struct fixture {
    const jvp_case *c;
    tg_tensor *x[3], *v[3];
} fixture;

static void fixture_make(fixture *fx, int i, bool requires_grad)
{
    fx->c = &cases[i];
    for (int k = 0; k < fx->c->n; k++) {
        fx->x[k] = case_input(fx->c, k, 1000 + 10 * (uint64_t)i + (uint64_t)k);
        fx->v[k] = random_like(fx->x[k], 2000 + 10 * (uint64_t)i + (uint64_t)k);
        tg_tensor_set_requires_grad(fx->x[k], requires_grad);
    }
}

static void fixture_free(fixture *fx)
{
    for (int k = 0; k < fx->c->n; k++) {
        tg_tensor_free(fx->x[k]);
        tg_tensor_free(fx->v[k]);
    }
}

/* f at x + h v, copied into out (m values). The inputs require grad, since
 * some cases differentiate inside f. */
static void eval_at(const fixture *fx, double h, double *out, int64_t m)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *xs[3];
    for (int k = 0; k < fx->c->n; k++) {
        xs[k] = tg_tensor_clone(fx->x[k]);
        double *d = xs[k]->data;
        for (int64_t i = 0; i < xs[k]->numel; i++)
            d[i] += h * ((const double *)fx->v[k]->data)[i];
        tg_tensor_set_requires_grad(xs[k], true);
    }
    tg_tensor *y = fx->c->f(xs);
    ck_assert_msg(y, "%s: %s", fx->c->name, tg_last_error());
    ck_assert_int_eq(y->numel, m);
    memcpy(out, y->data, (size_t)m * sizeof *out);
    for (int k = 0; k < fx->c->n; k++)
        tg_tensor_free(xs[k]);
    tg_tape_free(tape);
}

/* ---- JVP against central differences (inputs that do not require grad:
 * tg_jvp hands f aliases that do) ---- */

START_TEST(test_jvp_matches_finite_differences)
{
    fixture fx;
    fixture_make(&fx, _i, false);
    tg_tape *tape = tg_tape_new();
    tg_tensor *y = NULL, *jv = NULL;
    tg_status s = tg_jvp(case_fn, (void *)fx.c, fx.c->n, fx.x, fx.v, &y, &jv, 0);
    ck_assert_msg(s == TG_OK, "%s: %s", fx.c->name, tg_last_error());
    ck_assert_msg(tg__same_shape(y, jv), "%s: tangent shape differs from the output's",
                  fx.c->name);
    ck_assert_int_eq(jv->dtype, TG_F64);
    for (int k = 0; k < fx.c->n; k++) // the caller's tensors are as they were
        ck_assert(!fx.x[k]->requires_grad);
    int64_t m = y->numel;
    double *plus = malloc(2 * (size_t)m * sizeof *plus + 1), *minus = plus + m;
    const double h = 1e-6;
    eval_at(&fx, h, plus, m);
    eval_at(&fx, -h, minus, m);
    const double *t = jv->data;
    for (int64_t j = 0; j < m; j++) {
        double fd = (plus[j] - minus[j]) / (2 * h);
        ck_assert_msg(fabs(t[j] - fd) <= 1e-6 + 1e-6 * fabs(fd),
                      "%s: element %lld: jvp %.12g vs central difference %.12g", fx.c->name,
                      (long long)j, t[j], fd);
    }
    free(plus);
    fixture_free(&fx);
    tg_tape_free(tape);
}
END_TEST

/* ---- u . (J v) == (J^T u) . v, J^T u by tg_backward (inputs that require
 * grad: tg_jvp passes them to f as they are) ---- */

START_TEST(test_jvp_matches_reverse_mode)
{
    fixture fx;
    fixture_make(&fx, _i, true);
    tg_tape *tape = tg_tape_new();
    tg_tensor *y = NULL, *jv = NULL;
    ASSERT_OK(tg_jvp(case_fn, (void *)fx.c, fx.c->n, fx.x, fx.v, &y, &jv, 0));
    tg_tensor *u = random_like(y, 3000 + (uint64_t)_i);
    ck_assert_msg(y->requires_grad, "%s: output not recorded", fx.c->name);
    ASSERT_OK(tg_backward_ex(y, u, TG_RETAIN_GRAPH));
    double forward = dot(u, jv), reverse = 0, scale = abs_dot(u, jv);
    for (int k = 0; k < fx.c->n; k++) {
        tg_tensor *g = tg_tensor_grad(fx.x[k]);
        if (g) {
            reverse += dot(g, fx.v[k]);
            scale += abs_dot(g, fx.v[k]);
        }
    }
    ck_assert_msg(fabs(forward - reverse) <= 1e-10 * (1 + scale),
                  "%s: u.(Jv) = %.17g but (J^T u).v = %.17g", fx.c->name, forward, reverse);
    // The same tangent as through the aliases of inputs that do not require grad.
    fixture fz;
    fixture_make(&fz, _i, false);
    tg_tensor *jz = NULL;
    ASSERT_OK(tg_jvp(case_fn, (void *)fz.c, fz.c->n, fz.x, fz.v, NULL, &jz, 0));
    for (int64_t j = 0; j < jv->numel; j++) {
        double a = ((double *)jv->data)[j], b = ((double *)jz->data)[j];
        ck_assert_msg(fabs(a - b) <= 1e-14 * (1 + fabs(a)), "%s: %lld: %.17g vs %.17g",
                      fx.c->name, (long long)j, a, b);
    }
    tg_tensor_free(u);
    fixture_free(&fz);
    fixture_free(&fx);
    tg_tape_free(tape);
}
END_TEST

/* ---- the tangent is differentiable: x -> J(x) v with TG_CREATE_GRAPH,
 * gradient-checked (reverse-over-forward) ---- */

typedef struct jvp_ctx {
    const jvp_case *c;
    tg_tensor **v;
} jvp_ctx;

static tg_tensor *jvp_of(tg_tensor *const *x, int n, void *ctx)
{
    const jvp_ctx *j = ctx;
    tg_tensor *jv = NULL;
    if (tg_jvp(case_fn, (void *)j->c, n, x, j->v, NULL, &jv, TG_CREATE_GRAPH) != TG_OK)
        return NULL;
    return jv;
}

START_TEST(test_jvp_is_differentiable)
{
    fixture fx;
    fixture_make(&fx, _i, false);
    jvp_ctx j = {fx.c, fx.v};
    tg_gradcheck_report r = {0};
    tg_status s = tg_gradcheck(jvp_of, &j, fx.c->n, fx.x, NULL, &r);
    ck_assert_msg(s == TG_OK, "%s: %s | %s", fx.c->name, r.message, tg_last_error());
    fixture_free(&fx);
}
END_TEST

/* ---- Hessian-vector products: forward-over-reverse (tg_hvp) against
 * reverse-over-reverse (tg_grad of <grad f, v>) on sum(w * f(x)) ---- */

typedef struct scalar_ctx {
    const jvp_case *c;
    tg_tensor *w;
} scalar_ctx;

static tg_tensor *weighted(tg_tensor *const *x, int n, void *ctx)
{
    const scalar_ctx *sc = ctx;
    return tg_sum(tg_mul(sc->c->f(x), sc->w), NULL, 0, false);
}

START_TEST(test_hvp_matches_reverse_over_reverse)
{
    fixture fx;
    fixture_make(&fx, _i, true);
    tg_tape *tape = tg_tape_new();
    scalar_ctx sc = {fx.c, NULL};
    tg_tensor *y0 = fx.c->f(fx.x);
    ck_assert_msg(y0, "%s: %s", fx.c->name, tg_last_error());
    sc.w = random_like(y0, 4000 + (uint64_t)_i);
    tg_tape_reset(tape);
    tg_tensor *hv[3], *y = NULL;
    ASSERT_OK(tg_hvp(weighted, &sc, fx.c->n, fx.x, fx.v, &y, hv, 0));
    ck_assert_int_eq(y->numel, 1);
    // Reverse-over-reverse.
    tg_tensor *g[3], *rr[3];
    tg_tensor *f = weighted(fx.x, fx.c->n, &sc);
    ASSERT_OK(tg_grad(1, &f, NULL, fx.c->n, fx.x, g, TG_CREATE_GRAPH | TG_ALLOW_UNUSED));
    tg_tensor *gv = NULL;
    for (int k = 0; k < fx.c->n; k++) {
        tg_tensor *term = tg_sum(tg_mul(g[k], fx.v[k]), NULL, 0, false);
        gv = gv ? tg_add(gv, term) : term;
    }
    if (gv->requires_grad)
        ASSERT_OK(tg_grad(1, &gv, NULL, fx.c->n, fx.x, rr, TG_ALLOW_UNUSED));
    else // the gradient is constant: a zero Hessian
        for (int k = 0; k < fx.c->n; k++)
            rr[k] = tg_full_like(fx.x[k], 0.0);
    for (int k = 0; k < fx.c->n; k++) {
        ck_assert(tg__same_shape(hv[k], fx.x[k]));
        for (int64_t i = 0; i < hv[k]->numel; i++) {
            double a = ((double *)hv[k]->data)[i], b = ((double *)rr[k]->data)[i];
            ck_assert_msg(fabs(a - b) <= 1e-10 * (1 + fabs(b)),
                          "%s: input %d element %lld: forward-over-reverse %.17g, "
                          "reverse-over-reverse %.17g", fx.c->name, k, (long long)i, a, b);
        }
    }
    tg_tensor_free(sc.w);
    fixture_free(&fx);
    tg_tape_free(tape);
}
END_TEST

/* ---- every op in the registry has a tangent rule and a case ---- */

START_TEST(test_every_op_has_a_tangent)
{
    size_t n_ops = 0;
    while (tg__op_registry[n_ops])
        n_ops++;
    bool *seen = calloc(n_ops + 1, sizeof *seen);
    tg_tape *tape = tg_tape_new();
    for (int i = 0; i < N_CASES; i++) {
        fixture fx;
        fixture_make(&fx, i, true);
        ck_assert_msg(cases[i].f(fx.x), "%s: %s", cases[i].name, tg_last_error());
        for (size_t k = 0; k < tape->n_nodes; k++)
            for (size_t d = 0; d < n_ops; d++)
                seen[d] |= tape->nodes[k]->def == tg__op_registry[d];
        fixture_free(&fx);
        tg_tape_reset(tape);
    }
    tg_tape_free(tape);
    char lists[3][1024] = {"", "", ""}; // missing, untested, spurious
    for (size_t d = 0; d < n_ops; d++) {
        const tg_op_def *def = tg__op_registry[d];
        int which = !def->differentiable ? (def->tangent ? 2 : -1)
                    : !def->tangent      ? 0
                    : !seen[d]           ? 1
                                         : -1;
        size_t used = which >= 0 ? strlen(lists[which]) : 0;
        if (which >= 0 && used < sizeof lists[0])
            snprintf(lists[which] + used, sizeof lists[0] - used, " %s", def->name);
    }
    char *missing = lists[0], *untested = lists[1], *spurious = lists[2];
    free(seen);
    ck_assert_msg(!*missing, "differentiable ops without a tangent rule (add .tangent to the "
                  "entry; docs/hacking.md):%s", missing);
    ck_assert_msg(!*untested, "ops with a tangent rule that no case in tests/check_jvp.c "
                  "runs (add a case):%s", untested);
    ck_assert_msg(!*spurious, "non-differentiable ops with a tangent rule:%s", spurious);
}
END_TEST

/* ---- behaviour ---- */

static tg_tensor *f_tanh_mul(tg_tensor *const *x, int n, void *ctx)
{
    return tg_mul(tg_tanh(x[0]), x[1]);
}
static tg_tensor *f_identity(tg_tensor *const *x, int n, void *ctx) { return x[0]; }
static tg_tensor *f_constant(tg_tensor *const *x, int n, void *ctx)
{
    return tg_full(TG_F64, TG_SHAPE(2), 5.0);
}
static tg_tensor *f_twice(tg_tensor *const *x, int n, void *ctx) { return tg_mul(x[0], x[1]); }

START_TEST(test_jvp_semantics)
{
    tg_tape *tape = tg_tape_new();
    tg_rng rng = tg_rng_seeded(5);
    tg_tensor *a = tg_tensor_normal(TG_F64, TG_SHAPE(2, 3), 0, 1, &rng);
    tg_tensor *b = tg_tensor_normal(TG_F64, TG_SHAPE(2, 3), 0, 1, &rng);
    tg_tensor *va = tg_tensor_normal(TG_F64, TG_SHAPE(2, 3), 0, 1, &rng);
    tg_tensor *x[2] = {a, b}, *y, *t;
    // A NULL tangent holds that input fixed: d(tanh(a) b) = (1 - tanh^2 a) va b.
    ASSERT_OK(tg_jvp(f_tanh_mul, NULL, 2, x, (tg_tensor *[]){va, NULL}, &y, &t, 0));
    for (int64_t i = 0; i < 6; i++) {
        double ai = ((double *)a->data)[i], th = tanh(ai);
        double want = (1 - th * th) * ((double *)va->data)[i] * ((double *)b->data)[i];
        ck_assert_double_eq_tol(((double *)t->data)[i], want, 1e-14);
        ck_assert_double_eq_tol(((double *)y->data)[i], th * ((double *)b->data)[i], 1e-15);
    }
    ck_assert(!t->requires_grad); // no TG_CREATE_GRAPH: the tangent is not recorded
    // f returning an input gives its tangent; a constant f a zero tangent.
    ASSERT_OK(tg_jvp(f_identity, NULL, 1, &a, &va, &y, &t, 0));
    ck_assert_double_eq(((double *)t->data)[4], ((double *)va->data)[4]);
    ASSERT_OK(tg_jvp(f_constant, NULL, 1, &a, &va, &y, &t, 0));
    ck_assert_int_eq(t->numel, 2);
    ck_assert_double_eq(((double *)t->data)[0], 0.0);
    // A tensor given twice (requires grad, so passed as it is) gets the sum of
    // its tangents: a * a with tangents va and b moves along va + b, 2 a (va + b).
    tg_tensor_set_requires_grad(a, true);
    ASSERT_OK(tg_jvp(f_twice, NULL, 2, (tg_tensor *[]){a, a}, (tg_tensor *[]){va, b}, &y, &t, 0));
    for (int64_t i = 0; i < 6; i++) {
        double ai = ((double *)a->data)[i];
        double s = ((double *)va->data)[i] + ((double *)b->data)[i];
        ck_assert_double_eq_tol(((double *)t->data)[i], 2 * ai * s, 1e-14);
    }
    // Without TG_CREATE_GRAPH the walk records nothing: the tape holds f's nodes.
    tg_tape_reset(tape);
    ck_assert_ptr_nonnull(f_tanh_mul((tg_tensor *[]){a, b}, 2, NULL));
    size_t f_nodes = tg_tape_size(tape);
    tg_tape_reset(tape);
    ASSERT_OK(tg_jvp(f_tanh_mul, NULL, 2, (tg_tensor *[]){a, b}, (tg_tensor *[]){va, NULL}, &y, &t,
                     0));
    ck_assert_uint_eq(tg_tape_size(tape), f_nodes);
    // TG_CREATE_GRAPH records the tangent: it can be differentiated.
    ASSERT_OK(tg_jvp(f_tanh_mul, NULL, 2, (tg_tensor *[]){a, b}, (tg_tensor *[]){va, NULL}, &y, &t,
                     TG_CREATE_GRAPH));
    ck_assert(t->requires_grad);
    ck_assert_uint_gt(tg_tape_size(tape), 2 * f_nodes);
    // float32 runs the same rules: the tangent is float32 and close to float64's.
    double t64[6];
    tg_tensor_to_doubles(t, t64);
    tg_tensor *x32[2] = {tg_tensor_clone_as(a, TG_F32), tg_tensor_clone_as(b, TG_F32)};
    tg_tensor *v32 = tg_tensor_clone_as(va, TG_F32);
    ASSERT_OK(tg_jvp(f_tanh_mul, NULL, 2, x32, (tg_tensor *[]){v32, NULL}, NULL, &t, 0));
    ck_assert_int_eq(t->dtype, TG_F32);
    for (int64_t i = 0; i < 6; i++)
        ck_assert_double_eq_tol(((float *)t->data)[i], t64[i], 1e-5 * (1 + fabs(t64[i])));
    tg_tensor_free(x32[0]);
    tg_tensor_free(x32[1]);
    tg_tensor_free(v32);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(va);
    tg_tape_free(tape);
}
END_TEST

static tg_tensor *f_prod(tg_tensor *const *x, int n, void *ctx)
{
    return tg_apply(&PROD, 2, x, NULL);
}

/* The user-op fallback runs backward walks of its own: a tangent that is
 * itself recorded keeps its graph, and with TG_CREATE_GRAPH the tangent is
 * differentiable in it. */
START_TEST(test_fallback_and_recorded_tangents)
{
    tg_tape *tape = tg_tape_new();
    tg_rng rng = tg_rng_seeded(11);
    tg_tensor *a = tg_tensor_normal(TG_F64, TG_SHAPE(2, 3), 0, 1, &rng);
    tg_tensor *b = tg_tensor_normal(TG_F64, TG_SHAPE(2, 3), 0, 1, &rng);
    tg_tensor *w = tg_tensor_normal(TG_F64, TG_SHAPE(2, 3), 0, 1, &rng);
    tg_tensor_set_requires_grad(w, true);
    tg_tensor *v = tg_mul_scalar(w, 2.0), *t, *dw;
    ASSERT_OK(tg_jvp(f_prod, NULL, 2, (tg_tensor *[]){a, b}, (tg_tensor *[]){v, NULL}, NULL, &t,
                     0));
    for (int64_t i = 0; i < 6; i++) // d(a b) along (v, 0) is v b
        ck_assert_double_eq_tol(((double *)t->data)[i],
                                ((double *)v->data)[i] * ((double *)b->data)[i], 1e-14);
    ASSERT_OK(tg_backward_ex(tg_sum(v, NULL, 0, false), NULL, TG_RETAIN_GRAPH));
    ck_assert_double_eq(((double *)tg_tensor_grad(w)->data)[3], 2.0);
    ASSERT_OK(tg_jvp(f_prod, NULL, 2, (tg_tensor *[]){a, b}, (tg_tensor *[]){v, NULL}, NULL, &t,
                     TG_CREATE_GRAPH));
    tg_tensor *st = tg_sum(t, NULL, 0, false);
    ASSERT_OK(tg_grad(1, &st, NULL, 1, &w, &dw, 0));
    for (int64_t i = 0; i < 6; i++) // sum(2 w b) in w is 2 b
        ck_assert_double_eq_tol(((double *)dw->data)[i], 2 * ((double *)b->data)[i], 1e-14);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(w);
    tg_tape_free(tape);
}
END_TEST

/* ---- errors ---- */

static tg_status raw_backward(tg_tensor *const *in, tg_tensor *out, tg_tensor *dout,
                              const bool *needs, tg_tensor **din, void *ctx)
{
    // Numbers written directly: right for reverse mode, no use to the fallback.
    din[0] = tg_full_like(in[0], 0.0);
    for (int64_t i = 0; i < tg_tensor_numel(in[0]); i++) {
        double x, g;
        tg_tensor_get_flat(in[0], i, &x);
        tg_tensor_get_flat(dout, i, &g);
        tg_tensor_set_flat(din[0], i, 3 * x * x * g);
    }
    return TG_OK;
}
static const tg_op_def_user RAW = {.name = "raw", .n_inputs = 1, .forward = cube_forward,
                                   .backward = raw_backward};
static tg_status bad_tangent(tg_tensor *const *in, tg_tensor *out, tg_tensor *const *tin,
                             tg_tensor **tout, void *ctx)
{
    *tout = tg_full(TG_F64, TG_SHAPE(5), 1.0);
    return TG_OK;
}
static const tg_op_def_user BAD = {.name = "bad", .n_inputs = 1, .forward = cube_forward,
                                   .backward = cube_backward, .tangent = bad_tangent};
static tg_tensor *f_raw(tg_tensor *const *x, int n, void *ctx)
{
    return tg_apply(ctx, 1, x, NULL);
}

/* An op entry with no tangent rule, like one added before forward mode. */
static tg_status fake_forward(tg_node *nd)
{
    memcpy(nd->out->data, nd->in[0]->data, (size_t)nd->out->numel * sizeof(double));
    return TG_OK;
}
static tg_status fake_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    din[0] = dout;
    return TG_OK;
}
static const tg_op_def FAKE = {.name = "fake", .fn = "tg_fake", .n_in = 1,
                               .differentiable = true, .shape = tg__shape_same,
                               .forward = fake_forward, .backward = fake_backward};
static tg_tensor *f_fake(tg_tensor *const *x, int n, void *ctx)
{
    return tg__apply(&FAKE, 1, (tg_tensor *[]){tg_exp(x[0])}, NULL);
}
static tg_tensor *f_null(tg_tensor *const *x, int n, void *ctx) { return NULL; }
static tg_tensor *f_bad_matmul(tg_tensor *const *x, int n, void *ctx)
{
    return tg_matmul(x[0], x[0]);
}
static tg_tensor *f_sum(tg_tensor *const *x, int n, void *ctx)
{
    return tg_sum(tg_mul(x[0], x[0]), NULL, 0, false);
}

START_TEST(test_jvp_errors)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_tensor_zeros(TG_F64, TG_SHAPE(2, 3));
    tg_tensor *v = tg_tensor_zeros(TG_F64, TG_SHAPE(2, 3));
    tg_tensor *v32 = tg_tensor_zeros(TG_F32, TG_SHAPE(2, 3));
    tg_tensor *v3 = tg_tensor_zeros(TG_F64, TG_SHAPE(3));
    tg_tensor *y = (tg_tensor *)&y, *t = (tg_tensor *)&t; // must stay untouched on failure
    tg_tensor *const y0 = y, *const t0 = t;
    ASSERT_FRESH_FAIL(tg_jvp(NULL, NULL, 1, &x, &v, &y, &t, 0), TG_EINVAL,
                      "tg_jvp: need a function, n_inputs >= 1 (got 1) and non-NULL inputs and "
                      "tangents");
    ASSERT_FRESH_FAIL(tg_jvp(f_sum, NULL, 0, &x, &v, &y, &t, 0), TG_EINVAL, "(got 0)");
    ASSERT_FRESH_FAIL(tg_jvp(f_sum, NULL, 1, NULL, &v, &y, &t, 0), TG_EINVAL,
                      "non-NULL inputs");
    ASSERT_FRESH_FAIL(tg_jvp(f_sum, NULL, 1, &x, NULL, &y, &t, 0), TG_EINVAL,
                      "non-NULL inputs and tangents");
    ASSERT_FRESH_FAIL(tg_jvp(f_sum, NULL, 1, &x, &v, &y, NULL, 0), TG_EINVAL,
                      "tg_jvp: out_tangent is NULL");
    ASSERT_FRESH_FAIL(tg_jvp(f_sum, NULL, 1, (tg_tensor *[]){NULL}, &v, &y, &t, 0), TG_EINVAL,
                      "tg_jvp: inputs[0] is NULL");
    ASSERT_FRESH_FAIL(tg_jvp(f_sum, NULL, 1, &x, &v, &y, &t, 4), TG_EINVAL,
                      "tg_jvp: unknown flags 0x4 (only TG_CREATE_GRAPH)");
    ASSERT_FRESH_FAIL(tg_jvp(f_sum, NULL, 1, &x, &v32, &y, &t, 0), TG_EDTYPE,
                      "tg_jvp: tangents[0] is float32, inputs[0] is float64");
    ASSERT_FRESH_FAIL(tg_jvp(f_sum, NULL, 1, &x, &v3, &y, &t, 0), TG_ESHAPE,
                      "tg_jvp: tangents[0] has shape 3, inputs[0] 2x3");
    // The function's own failure is kept; a bare NULL is named.
    ASSERT_FRESH_FAIL(tg_jvp(f_bad_matmul, NULL, 1, &x, &v, &y, &t, 0), TG_ESHAPE,
                      "tg_matmul: inner dims 3 vs 2");
    ASSERT_FRESH_FAIL(tg_jvp(f_null, NULL, 1, &x, &v, &y, &t, 0), TG_EINVAL,
                      "tg_jvp: the function returned NULL");
    // An op without a tangent rule is named, and nothing is left on the tape.
    size_t before = tg_tape_size(tape);
    ASSERT_FRESH_FAIL(tg_jvp(f_fake, NULL, 1, &x, &v, &y, &t, 0), TG_ESTATE,
                      "tg_jvp: op 'fake' (node [1]) has no tangent rule, so forward mode "
                      "cannot pass through it");
    ck_assert_uint_eq(tg_tape_size(tape), before);
    ASSERT_FRESH_FAIL(tg_jvp(f_raw, (void *)&BAD, 1, &x, &v, &y, &t, 0), TG_ESHAPE,
                      "tg_jvp: the tangent rule of op 'bad' gave shape 5 for an output of "
                      "shape 2x3");
    ASSERT_FRESH_FAIL(tg_jvp(f_raw, (void *)&RAW, 1, &x, &v, &y, &t, 0), TG_ESTATE,
                      "tg_jvp: user op 'raw' has no tangent rule, and its backward is not "
                      "built from tapegrad ops on dout, which the fallback needs: give the op "
                      "a .tangent");
    ck_assert_ptr_eq(y, y0);
    ck_assert_ptr_eq(t, t0);
    // Stale tensors and no tape.
    tg_tensor *stale = tg_full(TG_F64, TG_SHAPE(2, 3), 1.0);
    tg_tape_reset(tape);
    ASSERT_FRESH_FAIL(tg_jvp(f_sum, NULL, 1, &x, &stale, &y, &t, 0), TG_ESTATE,
                      "tg_jvp: tensor from before tg_tape_reset");
    tg_tape_set_current(NULL);
    ASSERT_FRESH_FAIL(tg_jvp(f_sum, NULL, 1, &x, &v, &y, &t, 0), TG_ESTATE,
                      "tg_jvp: no current tape");
    ASSERT_FRESH_FAIL(tg_hvp(f_sum, NULL, 1, &x, &v, NULL, &t, 0), TG_ESTATE,
                      "tg_hvp: no current tape");
    tg_tape_set_current(tape);
    // tg_hvp's own checks.
    ASSERT_FRESH_FAIL(tg_hvp(f_sum, NULL, 1, &x, &v, NULL, NULL, 0), TG_EINVAL,
                      "tg_hvp: hv is NULL");
    ASSERT_FRESH_FAIL(tg_hvp(f_sum, NULL, 1, &x, NULL, NULL, &t, 0), TG_EINVAL,
                      "tg_hvp: need a function, n_inputs >= 1 (got 1) and non-NULL inputs and v");
    ASSERT_FRESH_FAIL(tg_hvp(f_sum, NULL, 1, &x, &v3, NULL, &t, 0), TG_ESHAPE,
                      "tg_hvp: v[0] has shape 3, inputs[0] 2x3");
    ASSERT_FRESH_FAIL(tg_hvp(f_tanh_mul, NULL, 2, (tg_tensor *[]){x, x}, (tg_tensor *[]){v, v},
                             NULL, &t, 0), TG_ESHAPE,
                      "tg_hvp: the function returned shape 2x3, not one element");
    ck_assert_ptr_eq(t, t0);
    tg_tensor_free(x);
    tg_tensor_free(v);
    tg_tensor_free(v32);
    tg_tensor_free(v3);
    tg_tape_free(tape);
}
END_TEST

/* H v of a quadratic 1/2 x^T A x (A symmetric) is A v, exactly. */
static tg_tensor *quadratic(tg_tensor *const *x, int n, void *ctx)
{
    tg_tensor *A = ctx;
    tg_tensor *col = tg_reshape(x[0], TG_SHAPE(3, 1));
    return tg_mul_scalar(tg_sum(tg_mul(col, tg_matmul(A, col)), NULL, 0, false), 0.5);
}

START_TEST(test_hvp_of_a_quadratic)
{
    tg_tape *tape = tg_tape_new();
    double a[9] = {2, 1, 0, 1, 3, -1, 0, -1, 4}, xv[3] = {0.3, -0.2, 0.5}, vv[3] = {1, 2, -1};
    tg_tensor *A = tg_tensor_from_doubles(TG_F64, TG_SHAPE(3, 3), a);
    tg_tensor *x = tg_tensor_from_doubles(TG_F64, TG_SHAPE(3), xv);
    tg_tensor *v = tg_tensor_from_doubles(TG_F64, TG_SHAPE(3), vv);
    tg_tensor *hv, *y;
    ASSERT_OK(tg_hvp(quadratic, A, 1, &x, &v, &y, &hv, 0));
    for (int i = 0; i < 3; i++) {
        double want = a[3 * i] * vv[0] + a[3 * i + 1] * vv[1] + a[3 * i + 2] * vv[2];
        ck_assert_double_eq_tol(((double *)hv->data)[i], want, 1e-14);
    }
    ck_assert(!x->requires_grad);
    // A zero direction gives a zero product.
    ASSERT_OK(tg_hvp(quadratic, A, 1, &x, (tg_tensor *[]){NULL}, NULL, &hv, 0));
    ck_assert_double_eq(((double *)hv->data)[1], 0.0);
    tg_tensor_free(A);
    tg_tensor_free(x);
    tg_tensor_free(v);
    tg_tape_free(tape);
}
END_TEST

/* tg_jvp and tg_hvp with the n-th allocation failing, for every n up to
 * where the call goes through: each fails with TG_ENOMEM or succeeds, and
 * nothing on the failure paths touches what was not allocated (found by
 * tools/fuzz/fuzz_ops: the hvp's gradient slots were computed from the NULL
 * block under UBSan). Each try starts on a fresh tape, so the tape's own
 * blocks are among the allocations that fail. */
START_TEST(test_forward_mode_out_of_memory)
{
    double a[9] = {2, 1, 0, 1, 3, -1, 0, -1, 4}, xv[3] = {0.3, -0.2, 0.5}, vv[3] = {1, 2, -1};
    tg_tensor *A = tg_tensor_from_doubles(TG_F64, TG_SHAPE(3, 3), a);
    tg_tensor *x = tg_tensor_from_doubles(TG_F64, TG_SHAPE(3), xv);
    tg_tensor *v = tg_tensor_from_doubles(TG_F64, TG_SHAPE(3), vv);
    for (int hvp = 0; hvp < 2; hvp++) {
        bool went_through = false;
        for (long n = 0; n < 200 && !went_through; n++) {
            tg_tape *tape = tg_tape_new();
            ck_assert_ptr_nonnull(tape);
            tg_tensor *out = NULL, *res = NULL;
            tg_clear_error();
            tg__alloc_fail_after(n, 1);
            tg_status s = hvp ? tg_hvp(quadratic, A, 1, &x, &v, &out, &res, 0)
                              : tg_jvp(quadratic, A, 1, &x, &v, &out, &res, 0);
            tg__alloc_fail_after(-1, 0);
            ck_assert_msg(s == TG_OK || s == TG_ENOMEM, "%s, allocation %ld: %d (%s)",
                          hvp ? "tg_hvp" : "tg_jvp", n, (int)s, tg_last_error());
            if (s == TG_ENOMEM)
                ck_assert_ptr_null(res);
            went_through = s == TG_OK;
            tg_tape_free(tape);
        }
        ck_assert_msg(went_through, "%s makes more than 200 allocations", hvp ? "hvp" : "jvp");
    }
    ck_assert(!x->requires_grad);
    tg_tensor_free(A);
    tg_tensor_free(x);
    tg_tensor_free(v);
}
END_TEST

/* A small CNN through the nn layers: J v along the input, and H v of its
 * loss along the parameters, which f reaches through the model (they require
 * grad, so tg_hvp passes them on as they are and f's ops use them). */
typedef struct net {
    tg_model *m;
    tg_tensor *x;
} net;

static tg_tensor *net_out(tg_tensor *const *x, int n, void *ctx)
{
    return tg_model_forward(((net *)ctx)->m, x[0], false);
}

static tg_tensor *net_loss(tg_tensor *const *p, int n, void *ctx)
{
    net *nt = ctx;
    return tg_cross_entropy(tg_model_forward(nt->m, nt->x, true), LABELS, TG_REDUCE_MEAN);
}

START_TEST(test_jvp_through_a_model)
{
    tg_tape *tape = tg_tape_new();
    net nt = {tg_model_new(TG_F64, 3, (const int64_t[]){1, 6, 6}, TG_SCHEME_PYTORCH, 3), NULL};
    ASSERT_OK(tg_model_add(nt.m, tg_layer_conv2d(2, 3, 3, TG_ACT_TANH)));
    ASSERT_OK(tg_model_add(nt.m, tg_layer_maxpool2d(2)));
    ASSERT_OK(tg_model_add(nt.m, tg_layer_flatten()));
    ASSERT_OK(tg_model_add(nt.m, tg_layer_dense(3, TG_ACT_SOFTMAX)));
    tg_rng rng = tg_rng_seeded(9);
    nt.x = tg_tensor_normal(TG_F64, TG_SHAPE(3, 1, 6, 6), 0, 1, &rng);
    tg_tensor *vx = tg_tensor_normal(TG_F64, TG_SHAPE(3, 1, 6, 6), 0, 1, &rng);
    tg_tensor *y, *jv;
    ASSERT_OK(tg_jvp(net_out, &nt, 1, &nt.x, &vx, &y, &jv, 0));
    const double h = 1e-6;
    for (int64_t j = 0; j < y->numel; j++) {
        double f[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            tg_tensor *xs = tg_add(nt.x, tg_mul_scalar(vx, sgn ? -h : h));
            f[sgn] = ((double *)net_out(&xs, 1, &nt)->data)[j];
        }
        double fd = (f[0] - f[1]) / (2 * h), t = ((double *)jv->data)[j];
        ck_assert_msg(fabs(t - fd) <= 1e-6 + 1e-6 * fabs(fd), "output %lld: %.12g vs %.12g",
                      (long long)j, t, fd);
    }
    // H v over the parameters, against reverse-over-reverse.
    int np;
    tg_tensor *const *params = tg_model_params(nt.m, &np);
    tg_tensor *v[4], *hv[4], *g[4], *rr[4];
    ck_assert_int_eq(np, 4);
    for (int k = 0; k < np; k++)
        v[k] = random_like(params[k], 50 + (uint64_t)k);
    ASSERT_OK(tg_hvp(net_loss, &nt, np, params, v, NULL, hv, 0));
    tg_tensor *l = net_loss(params, np, &nt), *gv = NULL;
    ASSERT_OK(tg_grad(1, &l, NULL, np, params, g, TG_CREATE_GRAPH));
    for (int k = 0; k < np; k++) {
        tg_tensor *term = tg_sum(tg_mul(g[k], v[k]), NULL, 0, false);
        gv = gv ? tg_add(gv, term) : term;
    }
    ASSERT_OK(tg_grad(1, &gv, NULL, np, params, rr, 0));
    for (int k = 0; k < np; k++)
        for (int64_t i = 0; i < hv[k]->numel; i++) {
            double a = ((double *)hv[k]->data)[i], b = ((double *)rr[k]->data)[i];
            ck_assert_msg(fabs(a - b) <= 1e-10 * (1 + fabs(b)), "param %d element %lld: "
                          "%.17g vs %.17g", k, (long long)i, a, b);
        }
    for (int k = 0; k < np; k++)
        tg_tensor_free(v[k]);
    tg_tensor_free(vx);
    tg_tensor_free(nt.x);
    tg_model_free(nt.m);
    tg_tape_free(tape);
}
END_TEST

static Suite *jvp_suite(void)
{
    Suite *s = suite_create("jvp");
    TCase *ops = tcase_create("ops");
    tcase_set_timeout(ops, 240);
    tcase_add_test(ops, test_every_op_has_a_tangent);
    tcase_add_loop_test(ops, test_jvp_matches_finite_differences, 0, N_CASES);
    tcase_add_loop_test(ops, test_jvp_matches_reverse_mode, 0, N_CASES);
    tcase_add_loop_test(ops, test_jvp_is_differentiable, 0, N_CASES);
    tcase_add_loop_test(ops, test_hvp_matches_reverse_over_reverse, 0, N_CASES);
    suite_add_tcase(s, ops);
    TCase *api = tcase_create("api");
    tcase_add_test(api, test_jvp_semantics);
    tcase_add_test(api, test_hvp_of_a_quadratic);
    tcase_add_test(api, test_forward_mode_out_of_memory);
    tcase_add_test(api, test_jvp_through_a_model);
    tcase_add_test(api, test_fallback_and_recorded_tangents);
    tcase_add_test(api, test_jvp_errors);
    suite_add_tcase(s, api);
    return s;
}

TG_CHECK_MAIN(jvp_suite)
