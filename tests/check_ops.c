/* check_ops.c - every op: forward values against hand-computed results in
 * float64 and float32, numerical stability, and the table-driven gradient
 * check: each case below runs tg_gradcheck (and, for smooth ops,
 * tg_gradgradcheck) in float64 on random inputs, including broadcast shapes
 * and reused inputs. test_every_op_has_a_case walks the op table and fails
 * for any op that no case exercises. */
#include <check.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "ops/ops_internal.h"
#include "op_cases.h"
#include "tg_check.h"

/* ---- the gradient-check table ---- */

typedef enum domain { ANY, POSITIVE, AWAY_FROM_ZERO } domain;

typedef struct op_case {
    const char *name;
    const char *covers; /* table op names exercised, space separated */
    int n;
    int ndim[3];
    int64_t shape[3][4];
    domain dom;
    bool second_order;
    tg_tensor *(*f)(tg_tensor *const *x);
} op_case;


static tg_tensor *f_scalars(tg_tensor *const *x)
{
    tg_tensor *a = tg_add_scalar(x[0], 1.5), *b = tg_sub_scalar(x[0], 0.5);
    tg_tensor *c = tg_rsub_scalar(x[0], 2.0), *d = tg_mul_scalar(x[0], -3.0);
    tg_tensor *e = tg_div_scalar(x[0], 4.0);
    return tg_add(tg_add(tg_mul(a, b), tg_mul(c, d)), e);
}
static tg_tensor *f_rdiv(tg_tensor *const *x) { return tg_rdiv_scalar(x[0], 2.0); }
static tg_tensor *f_pow_scalar(tg_tensor *const *x)
{
    return tg_add(tg_add(tg_pow_scalar(x[0], 2.5), tg_pow_scalar(x[0], 2.0)),
                  tg_pow_scalar(x[0], 3.0));
}
static tg_tensor *f_neg(tg_tensor *const *x) { return tg_neg(x[0]); }
static tg_tensor *f_exp(tg_tensor *const *x) { return tg_exp(x[0]); }
static tg_tensor *f_log(tg_tensor *const *x) { return tg_log(x[0]); }
static tg_tensor *f_sqrt(tg_tensor *const *x) { return tg_sqrt(x[0]); }
static tg_tensor *f_abs(tg_tensor *const *x) { return tg_abs(x[0]); }
static tg_tensor *f_tanh(tg_tensor *const *x) { return tg_tanh(x[0]); }
static tg_tensor *f_sigmoid(tg_tensor *const *x) { return tg_sigmoid(x[0]); }
static tg_tensor *f_relu(tg_tensor *const *x) { return tg_relu(x[0]); }
static tg_tensor *f_softplus(tg_tensor *const *x) { return tg_softplus(x[0]); }
static tg_tensor *f_copy(tg_tensor *const *x) { return tg_copy(x[0]); }
static tg_tensor *f_nn(tg_tensor *const *x)
{
    return tg_sum(tg_tanh(tg_add(tg_matmul(x[0], x[1]), x[2])), AX1, 1, false);
}
static tg_tensor *f_mul_sq(tg_tensor *const *x) { return tg_mul(x[0], x[0]); }
static tg_tensor *f_maximum_b(tg_tensor *const *x) { return tg_maximum(x[0], x[1]); }
static tg_tensor *f_sub_scalar(tg_tensor *const *x) { return tg_sub_scalar(x[0], 0.5); }
static tg_tensor *f_rsub_scalar(tg_tensor *const *x) { return tg_rsub_scalar(x[0], 2.0); }
static tg_tensor *f_div_scalar(tg_tensor *const *x) { return tg_div_scalar(x[0], -4.0); }
static tg_tensor *f_pow_0dim(tg_tensor *const *x) { return tg_pow(x[0], x[1]); }
static tg_tensor *f_where_b(tg_tensor *const *x)
{
    // cond (3,1), a (1,4), b (3,1) -> (3,4)
    return tg_where(tg_gt_scalar(tg_detach(x[0]), 0.0), x[1], tg_mul(x[0], x[0]));
}
static tg_tensor *f_sum_axis(tg_tensor *const *x) { return tg_sum(x[0], AXN1, 1, false); }
static tg_tensor *f_sum_0dim(tg_tensor *const *x) { return tg_sum(x[0], NULL, 0, false); }
static tg_tensor *f_mean_all(tg_tensor *const *x) { return tg_mean(x[0], NULL, 0, false); }
static tg_tensor *f_mean_keep(tg_tensor *const *x) { return tg_mean(x[0], AX02, 2, true); }
static tg_tensor *f_max_keep2(tg_tensor *const *x) { return tg_max(x[0], AX02, 2, true); }
static tg_tensor *f_lse_keep(tg_tensor *const *x) { return tg_logsumexp(x[0], AX02, 2, true); }
static tg_tensor *f_flatten(tg_tensor *const *x) { return tg_flatten(x[0], 1); }
static tg_tensor *f_transpose2(tg_tensor *const *x) { return tg_transpose(x[0], 0, -1); }
static tg_tensor *f_expand_new(tg_tensor *const *x) { return tg_expand(x[0], TG_SHAPE(2, 4, 3)); }
static tg_tensor *f_slice3(tg_tensor *const *x) { return tg_slice(x[0], 0, -5, 100, 3); }
static tg_tensor *f_concat0(tg_tensor *const *x) { return tg_concat(2, x, 0); }
static tg_tensor *f_stack_last(tg_tensor *const *x) { return tg_stack(3, x, -1); }
static tg_tensor *f_index_select1(tg_tensor *const *x)
{
    return tg_index_select(x[0], 1, 5, (const int64_t[]){3, 0, 3, 3, 1});
}
static tg_tensor *f_gather0(tg_tensor *const *x)
{
    return tg_gather(x[0], 0, TG_SHAPE(2, 3), (const int64_t[]){2, 0, 1, 1, 1, 0});
}
static tg_tensor *f_min_axis(tg_tensor *const *x) { return tg_min(x[0], AXN1, 1, true); }
static tg_tensor *f_prod_all(tg_tensor *const *x) { return tg_prod(x[0], NULL, 0, true); }
static tg_tensor *f_prod_zeros(tg_tensor *const *x)
{
    // Rows with one zero and with two zeros: the gradient stays exact.
    tg_tensor *mask = tg_full_like(x[0], 1.0);
    if (mask) {
        tg_tensor_set_flat(mask, 1, 0.0);
        tg_tensor_set_flat(mask, 4, 0.0);
        tg_tensor_set_flat(mask, 6, 0.0);
    }
    return tg_prod(tg_mul(x[0], mask), AX1, 1, false);
}
static tg_tensor *f_std(tg_tensor *const *x) { return tg_std(x[0], AX02, 2, 1, true); }
static tg_tensor *f_cumsum_last(tg_tensor *const *x)
{
    return tg_mul(tg_cumsum(x[0], -1), x[0]); // nonlinear, so the second order is not 0
}
static tg_tensor *f_mv(tg_tensor *const *x) { return tg_matmul(x[0], x[1]); }
static tg_tensor *f_vv(tg_tensor *const *x) { return tg_mul(tg_matmul(x[0], x[1]), x[0]); }
static tg_tensor *f_ln_affine2(tg_tensor *const *x) { return tg_layer_norm(x[0], 2, x[1], x[2], 1e-5); }
static tg_tensor *f_ln_plain(tg_tensor *const *x) { return tg_layer_norm(x[0], 1, NULL, NULL, 0.1); }
static tg_tensor *f_ln_beta(tg_tensor *const *x)
{
    // x also feeds the result elsewhere: the gradients of two uses add up.
    return tg_mul(tg_layer_norm(x[0], 1, NULL, x[1], 1e-3), x[0]);
}
static tg_tensor *f_ln_gamma(tg_tensor *const *x) { return tg_layer_norm(x[0], 3, x[1], NULL, 1e-5); }
static tg_tensor *f_attn(tg_tensor *const *x)
{
    return tg_scaled_dot_product_attention(x[0], x[1], x[2], false, 0);
}
static tg_tensor *f_attn_causal(tg_tensor *const *x)
{
    return tg_scaled_dot_product_attention(x[0], x[1], x[2], true, 0.7);
}
static tg_tensor *f_attn_self(tg_tensor *const *x)
{
    // Self-attention: q, k and v are the same tensor.
    return tg_scaled_dot_product_attention(x[0], x[0], x[0], true, 0);
}

static const op_case cases[] = {
    {"add broadcast", "add", 2, {2, 3}, {{3, 1}, {2, 1, 4}}, ANY, true, f_add},
    {"sub broadcast", "sub neg mul_scalar", 2, {1, 3}, {{4}, {2, 3, 4}}, ANY, true, f_sub},
    {"mul broadcast", "mul", 2, {2, 2}, {{2, 3}, {1, 3}}, ANY, true, f_mul},
    {"mul reused x*x*x", "mul", 1, {2}, {{3, 2}}, ANY, true, f_mul_self},
    {"div", "div", 2, {2, 1}, {{2, 3}, {3}}, POSITIVE, true, f_div},
    {"pow", "pow add_scalar log", 2, {2, 2}, {{2, 3}, {1, 3}}, POSITIVE, true, f_pow},
    {"maximum", "maximum compare", 2, {2, 2}, {{2, 3}, {2, 3}}, ANY, false, f_maximum},
    {"minimum", "minimum compare", 2, {2, 1}, {{2, 3}, {3}}, ANY, false, f_minimum},
    {"where", "where compare", 2, {2, 2}, {{2, 3}, {2, 3}}, AWAY_FROM_ZERO, true, f_where},
    {"scalar ops", "add_scalar mul_scalar", 1, {2}, {{2, 3}}, ANY, true, f_scalars},
    {"rdiv", "pow_scalar", 1, {1}, {{5}}, POSITIVE, true, f_rdiv},
    {"pow_scalar", "pow_scalar", 1, {2}, {{2, 3}}, POSITIVE, true, f_pow_scalar},
    {"neg", "neg", 1, {2}, {{2, 3}}, ANY, true, f_neg},
    {"exp", "exp", 1, {2}, {{2, 3}}, ANY, true, f_exp},
    {"log", "log", 1, {2}, {{2, 3}}, POSITIVE, true, f_log},
    {"sqrt", "sqrt", 1, {2}, {{2, 3}}, POSITIVE, true, f_sqrt},
    {"abs", "abs sign", 1, {2}, {{2, 3}}, AWAY_FROM_ZERO, true, f_abs},
    {"tanh", "tanh", 1, {2}, {{2, 3}}, ANY, true, f_tanh},
    {"sigmoid", "sigmoid", 1, {2}, {{2, 3}}, ANY, true, f_sigmoid},
    {"relu", "relu", 1, {2}, {{2, 3}}, AWAY_FROM_ZERO, true, f_relu},
    {"leaky_relu", "leaky_relu", 1, {2}, {{2, 3}}, AWAY_FROM_ZERO, true, f_leaky},
    {"softplus", "softplus", 1, {2}, {{2, 3}}, ANY, true, f_softplus},
    {"clamp", "clamp", 1, {2}, {{3, 4}}, ANY, true, f_clamp},
    {"copy", "copy", 1, {2}, {{2, 3}}, ANY, true, f_copy},
    {"sum all", "sum", 1, {3}, {{2, 3, 2}}, ANY, true, f_sum_all},
    {"sum axes keepdim", "sum expand reshape", 1, {3}, {{2, 3, 4}}, ANY, true, f_sum_axes},
    {"mean", "mean", 1, {3}, {{2, 3, 2}}, ANY, true, f_mean},
    {"max all", "max put_add", 1, {2}, {{3, 4}}, ANY, true, f_max_all},
    {"max axis", "max put_add take", 1, {3}, {{2, 3, 4}}, ANY, true, f_max_axis},
    {"logsumexp", "logsumexp", 1, {3}, {{2, 3, 2}}, ANY, true, f_lse},
    {"logsumexp all", "logsumexp", 1, {2}, {{3, 2}}, ANY, true, f_lse_all},
    {"matmul 2-D", "matmul", 2, {2, 2}, {{3, 4}, {4, 2}}, ANY, true, f_matmul},
    {"matmul batched", "matmul", 2, {3, 3}, {{2, 3, 4}, {2, 4, 2}}, ANY, true, f_matmul},
    {"matmul broadcast batch", "matmul", 2, {4, 3}, {{2, 1, 3, 4}, {5, 4, 2}}, ANY, true,
     f_matmul},
    {"matmul batched @ 2-D", "matmul", 2, {3, 2}, {{2, 3, 4}, {4, 2}}, ANY, true, f_matmul},
    {"reshape/flatten", "reshape", 2, {2, 3}, {{2, 6}, {3, 2, 2}}, ANY, true, f_reshape},
    {"permute/transpose", "permute", 1, {3}, {{2, 3, 4}}, ANY, true, f_permute},
    {"expand", "expand sum", 1, {2}, {{3, 1}}, ANY, true, f_expand},
    {"slice with step", "slice slice_grad", 1, {2}, {{2, 7}}, ANY, true, f_slice},
    {"concat", "concat slice", 3, {2, 2, 2}, {{2, 1}, {2, 3}, {2, 2}}, ANY, true, f_concat},
    {"stack", "concat reshape", 2, {2, 2}, {{2, 3}, {2, 3}}, ANY, true, f_stack},
    {"index_select", "take put_add", 1, {2}, {{3, 2}}, ANY, true, f_index_select},
    {"gather", "take put_add", 1, {2}, {{3, 4}}, ANY, true, f_gather},
    {"softmax", "softmax", 1, {2}, {{3, 4}}, ANY, true, f_softmax},
    {"log_softmax", "log_softmax", 1, {2}, {{3, 4}}, ANY, true, f_log_softmax},
    {"2-layer composition", "matmul tanh add sum", 3, {2, 2, 1}, {{3, 4}, {4, 2}, {2}}, ANY,
     true, f_nn},
    {"mul reused x*x", "mul", 1, {2}, {{2, 3}}, ANY, true, f_mul_sq},
    {"maximum broadcast", "maximum", 2, {2, 1}, {{2, 3}, {3}}, ANY, false, f_maximum_b},
    {"sub_scalar", "add_scalar", 1, {2}, {{2, 3}}, ANY, true, f_sub_scalar},
    {"rsub_scalar", "neg add_scalar", 1, {2}, {{2, 3}}, ANY, true, f_rsub_scalar},
    {"div_scalar", "mul_scalar", 1, {2}, {{2, 3}}, ANY, true, f_div_scalar},
    {"pow by a 0-dim exponent", "pow", 2, {2, 0}, {{2, 3}, {0}}, POSITIVE, true, f_pow_0dim},
    {"where broadcast", "where", 2, {2, 2}, {{3, 1}, {1, 4}}, AWAY_FROM_ZERO, true, f_where_b},
    {"sum one axis", "sum", 1, {3}, {{2, 3, 4}}, ANY, true, f_sum_axis},
    {"sum of a 0-dim", "sum", 1, {0}, {{0}}, ANY, true, f_sum_0dim},
    {"mean all", "mean", 1, {3}, {{2, 3, 2}}, ANY, true, f_mean_all},
    {"mean axes keepdim", "mean", 1, {3}, {{2, 3, 2}}, ANY, true, f_mean_keep},
    {"max axes keepdim", "max", 1, {3}, {{2, 3, 4}}, ANY, true, f_max_keep2},
    {"logsumexp axes keepdim", "logsumexp", 1, {3}, {{2, 3, 2}}, ANY, true, f_lse_keep},
    {"flatten", "reshape", 1, {3}, {{2, 3, 2}}, ANY, true, f_flatten},
    {"transpose 2-D", "permute", 1, {2}, {{3, 4}}, ANY, true, f_transpose2},
    {"expand new dims", "expand", 1, {1}, {{3}}, ANY, true, f_expand_new},
    {"slice negative start step 3", "slice", 1, {2}, {{7, 2}}, ANY, true, f_slice3},
    {"concat axis 0", "concat", 2, {2, 2}, {{1, 3}, {2, 3}}, ANY, true, f_concat0},
    {"stack last axis", "concat reshape", 3, {2, 2, 2}, {{2, 2}, {2, 2}, {2, 2}}, ANY, true,
     f_stack_last},
    {"index_select repeats", "take", 1, {2}, {{2, 4}}, ANY, true, f_index_select1},
    {"gather axis 0", "take", 1, {2}, {{3, 3}}, ANY, true, f_gather0},
    {"softmax axis 0 of 3-D", "softmax", 1, {3}, {{3, 2, 2}}, ANY, true, f_softmax0},
    {"log_softmax last axis", "log_softmax", 1, {2}, {{2, 5}}, ANY, true, f_log_softmax_last},
    {"min axis", "min put_add", 1, {3}, {{2, 3, 4}}, ANY, true, f_min_axis},
    {"min all", "min", 1, {2}, {{3, 4}}, ANY, true, f_min_all},
    {"prod axes", "prod", 1, {3}, {{2, 3, 2}}, ANY, true, f_prod_axes},
    {"prod all keepdim", "prod", 1, {2}, {{2, 3}}, ANY, true, f_prod_all},
    {"prod with zeros", "prod", 1, {2}, {{3, 3}}, ANY, true, f_prod_zeros},
    {"var correction 1", "sum mul_scalar", 1, {3}, {{2, 3, 2}}, ANY, true, f_var},
    {"var all biased", "sum", 1, {2}, {{3, 4}}, ANY, true, f_var_all},
    {"std axes keepdim", "sum sqrt", 1, {3}, {{2, 3, 2}}, ANY, true, f_std},
    {"cumsum", "cumsum", 1, {3}, {{2, 3, 2}}, ANY, true, f_cumsum},
    {"cumsum last axis", "cumsum", 1, {2}, {{3, 4}}, ANY, true, f_cumsum_last},
    {"matmul matrix @ vector", "matmul reshape", 2, {3, 1}, {{2, 3, 4}, {4}}, ANY, true, f_mv},
    {"matmul vector @ matrix", "matmul reshape", 2, {1, 3}, {{3}, {2, 3, 4}}, ANY, true, f_mv},
    {"matmul vector @ vector", "matmul reshape", 2, {1, 1}, {{4}, {4}}, ANY, true, f_vv},
    {"layer_norm 2 dims affine", "layer_norm", 3, {3, 2, 2}, {{2, 3, 4}, {3, 4}, {3, 4}}, ANY,
     true, f_ln_affine2},
    {"layer_norm last axis plain", "layer_norm", 1, {2}, {{3, 5}}, ANY, true, f_ln_plain},
    {"layer_norm beta, x reused", "layer_norm", 2, {2, 1}, {{4, 3}, {3}}, ANY, true, f_ln_beta},
    {"layer_norm all dims gamma", "layer_norm", 2, {3, 3}, {{2, 2, 3}, {2, 2, 3}}, ANY, true,
     f_ln_gamma},
    {"attention", "scaled_dot_product_attention", 3, {3, 3, 3}, {{2, 3, 4}, {2, 5, 4}, {2, 5, 2}},
     ANY, true, f_attn},
    {"attention causal Tq < Tk", "scaled_dot_product_attention", 3, {4, 4, 4},
     {{2, 1, 3, 2}, {2, 1, 4, 2}, {2, 1, 4, 3}}, ANY, true, f_attn_causal},
    {"attention causal Tq > Tk", "scaled_dot_product_attention", 3, {2, 2, 2},
     {{5, 3}, {3, 3}, {3, 2}}, ANY, true, f_attn_causal},
    {"self-attention causal", "scaled_dot_product_attention", 1, {3}, {{2, 4, 3}}, ANY, true,
     f_attn_self},
};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

static tg_tensor *case_fn(tg_tensor *const *x, int n, void *ctx)
{
    (void)n;
    return ((const op_case *)ctx)->f(x);
}

static tg_tensor *case_input(const op_case *c, int k, uint64_t seed, tg_dtype dt)
{
    tg_rng rng = tg_rng_seeded(seed);
    tg_tensor *t = tg_tensor_uniform(dt, c->ndim[k], c->shape[k], -1, 1, &rng);
    double *v = malloc(sizeof(double) * (size_t)tg_tensor_numel(t) + 1);
    tg_tensor_to_doubles(t, v);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) {
        if (c->dom == POSITIVE)
            v[i] = 0.5 + fabs(v[i]);
        else if (c->dom == AWAY_FROM_ZERO) // keep |x| >= 0.2: no kink within eps
            v[i] = v[i] < 0 ? v[i] - 0.2 : v[i] + 0.2;
        tg_tensor_set_flat(t, i, v[i]);
    }
    free(v);
    return t;
}

START_TEST(test_gradcheck_op)
{
    const op_case *c = &cases[_i];
    tg_tensor *in[3];
    for (int k = 0; k < c->n; k++)
        in[k] = case_input(c, k, 100 + (uint64_t)(10 * _i + k), TG_F64);
    tg_gradcheck_report r = {0};
    tg_status s = tg_gradcheck(case_fn, (void *)c, c->n, in, NULL, &r);
    ck_assert_msg(s == TG_OK, "%s: %s | %s", c->name, r.message, tg_last_error());
    ck_assert_int_gt(r.checked, 0);
    if (c->second_order) {
        s = tg_gradgradcheck(case_fn, (void *)c, c->n, in, NULL, &r);
        ck_assert_msg(s == TG_OK, "%s (second order): %s | %s", c->name, r.message,
                      tg_last_error());
    }
    for (int k = 0; k < c->n; k++)
        tg_tensor_free(in[k]);
}
END_TEST

/* float32 runs the same functions: their values agree with float64's. */
START_TEST(test_float32_matches_float64)
{
    const op_case *c = &cases[_i];
    tg_tape *tape = tg_tape_new();
    tg_tensor *a[3], *b[3];
    for (int k = 0; k < c->n; k++) {
        a[k] = case_input(c, k, 7 + (uint64_t)k, TG_F64);
        b[k] = tg_tensor_clone_as(a[k], TG_F32);
    }
    tg_tensor *ya = c->f(a), *yb = c->f(b);
    ck_assert_msg(ya && yb, "%s: %s", c->name, tg_last_error());
    ck_assert_int_eq(tg_tensor_dtype(yb), TG_F32);
    ck_assert_int_eq(tg_tensor_numel(ya), tg_tensor_numel(yb));
    for (int64_t i = 0; i < tg_tensor_numel(ya); i++) {
        double va, vb;
        tg_tensor_get_flat(ya, i, &va);
        tg_tensor_get_flat(yb, i, &vb);
        ck_assert_msg(fabs(va - vb) <= 1e-5 * (1 + fabs(va)), "%s at %lld: %g vs %g", c->name,
                      (long long)i, va, vb);
    }
    for (int k = 0; k < c->n; k++) {
        tg_tensor_free(a[k]);
        tg_tensor_free(b[k]);
    }
    tg_tape_free(tape);
}
END_TEST

/* ---- the one-input ops: every row of TG_UNARY_OPS (include/tapegrad/unary.h)
 * gets its gradient checks, fused-versus-composed check, float32 check, NaN
 * check, error check and docs check from the row itself. ---- */

typedef struct unary_row {
    const char *name, *formula, *derivative;
    tg_tensor *(*f)(tg_tensor *x);
    double lo, hi;
} unary_row;

#define UNARY_TEST_ROW(name, formula, derivative, fwd, fused, backward, lo, hi) \
    {#name, formula, derivative, tg_##name, lo, hi},
static const unary_row unary_rows[] = {TG_UNARY_OPS(UNARY_TEST_ROW)};
#define N_UNARY (int)(sizeof unary_rows / sizeof unary_rows[0])

static tg_tensor *unary_input(const unary_row *u, tg_dtype dt, uint64_t seed)
{
    tg_rng rng = tg_rng_seeded(seed);
    return tg_tensor_uniform(dt, TG_SHAPE(3, 4), u->lo, u->hi, &rng);
}

static tg_tensor *unary_fn(tg_tensor *const *x, int n, void *ctx)
{
    (void)n;
    return ((const unary_row *)ctx)->f(x[0]);
}

START_TEST(test_unary_gradcheck)
{
    const unary_row *u = &unary_rows[_i];
    tg_tensor *x = unary_input(u, TG_F64, 300 + (uint64_t)_i);
    tg_gradcheck_report r = {0};
    ck_assert_msg(tg_gradcheck(unary_fn, (void *)u, 1, &x, NULL, &r) == TG_OK, "tg_%s: %s | %s",
                  u->name, r.message, tg_last_error());
    ck_assert_int_gt(r.checked, 0);
    ck_assert_msg(tg_gradgradcheck(unary_fn, (void *)u, 1, &x, NULL, &r) == TG_OK,
                  "tg_%s (second order): %s | %s", u->name, r.message, tg_last_error());
    tg_tensor_free(x);
}
END_TEST

/* The engine's fused backward (a plain walk) and the row's composed backward
 * (TG_CREATE_GRAPH) agree to rounding, in both dtypes. */
START_TEST(test_unary_fused_matches_composed)
{
    const unary_row *u = &unary_rows[_i / 2];
    tg_dtype dt = _i % 2 ? TG_F32 : TG_F64;
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = unary_input(u, dt, 400 + (uint64_t)_i);
    tg_tensor_set_requires_grad(x, true);
    tg_tensor *y = tg_sum(tg_mul(u->f(x), x), NULL, 0, false); // a nonuniform dL/dy
    tg_tensor *fused, *composed;
    ck_assert_int_eq(tg_grad(1, &y, NULL, 1, &x, &fused, TG_RETAIN_GRAPH), TG_OK);
    ck_assert_int_eq(tg_grad(1, &y, NULL, 1, &x, &composed, TG_CREATE_GRAPH), TG_OK);
    double tol = dt == TG_F32 ? 1e-5 : 1e-13;
    for (int64_t i = 0; i < tg_tensor_numel(x); i++) {
        double a, b;
        tg_tensor_get_flat(fused, i, &a);
        tg_tensor_get_flat(composed, i, &b);
        ck_assert_msg(fabs(a - b) <= tol * (1 + fabs(b)), "tg_%s %s element %lld: fused %.17g, "
                      "composed %.17g", u->name, tg_dtype_name(dt), (long long)i, a, b);
    }
    tg_tensor_free(x);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_unary_float32_and_nan)
{
    const unary_row *u = &unary_rows[_i];
    tg_tape *tape = tg_tape_new();
    tg_tensor *a = unary_input(u, TG_F64, 500 + (uint64_t)_i);
    tg_tensor *b = tg_tensor_clone_as(a, TG_F32);
    tg_tensor *ya = u->f(a), *yb = u->f(b);
    ck_assert_msg(ya && yb, "tg_%s: %s", u->name, tg_last_error());
    ck_assert_int_eq(tg_tensor_dtype(yb), TG_F32);
    for (int64_t i = 0; i < tg_tensor_numel(ya); i++) {
        double va, vb;
        tg_tensor_get_flat(ya, i, &va);
        tg_tensor_get_flat(yb, i, &vb);
        ck_assert_msg(fabs(va - vb) <= 1e-5 * (1 + fabs(va)), "tg_%s at %lld: %g vs %g", u->name,
                      (long long)i, va, vb);
    }
    // NaN in, NaN out, in both dtypes.
    for (int k = 0; k < 2; k++) {
        tg_tensor *nan = tg_full(k ? TG_F32 : TG_F64, TG_SHAPE(2), NAN);
        double v = 0;
        tg_tensor_get_flat(u->f(nan), 1, &v);
        ck_assert_msg(isnan(v), "tg_%s(NaN) = %g, not NaN", u->name, v);
    }
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_unary_errors)
{
    const unary_row *u = &unary_rows[_i];
    tg_tape *tape = tg_tape_new();
    char expected[64];
    snprintf(expected, sizeof expected, "tg_%s: input 0 is NULL", u->name);
    ASSERT_FRESH_NULL_FAIL(u->f(NULL), TG_EINVAL, expected);
    tg_tensor *stale = tg_full(TG_F64, TG_SHAPE(2), 1.0);
    tg_tape_reset(tape);
    snprintf(expected, sizeof expected, "tg_%s: tensor from before tg_tape_reset", u->name);
    ASSERT_FRESH_NULL_FAIL(u->f(stale), TG_ESTATE, expected);
    tg_tape_set_current(NULL);
    tg_tensor *x = tg_tensor_zeros(TG_F32, TG_SHAPE(2));
    snprintf(expected, sizeof expected, "tg_%s: no current tape", u->name);
    ASSERT_FRESH_NULL_FAIL(u->f(x), TG_ESTATE, expected);
    tg_tensor_free(x);
    tg_tape_free(tape);
}
END_TEST

#define OPS_DOC TG_TEST_DATA_DIR "/../../../docs/ops.md"

/* docs/ops.md holds the row's generated line (tools/ops_doc.c writes them:
 * `ninja -C build ops-doc`). */
START_TEST(test_unary_docs_row)
{
    const unary_row *u = &unary_rows[_i];
    FILE *f = fopen(OPS_DOC, "r");
    ck_assert_msg(f, "cannot open %s", OPS_DOC);
    char want[512], line[512];
    snprintf(want, sizeof want, "| `tg_%s(x)` | %s | %s |\n", u->name, u->formula, u->derivative);
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strcmp(line, want) == 0;
    fclose(f);
    ck_assert_msg(found, "docs/ops.md lacks the row of tg_%s (run ninja -C build ops-doc): %s",
                  u->name, want);
}
END_TEST

/* ---- the two-input rows of TG_BINARY_OPS (include/tapegrad/binary.h), with
 * broadcasting: a (3, 4) against b (4) ---- */

typedef struct binary_row {
    const char *name, *formula, *da, *db;
    tg_tensor *(*f)(tg_tensor *a, tg_tensor *b);
    double lo, hi;
} binary_row;

#define BINARY_TEST_ROW(name, formula, da, db, fwd, fa, fb, ba, bb, lo, hi) \
    {#name, formula, da, db, tg_##name, lo, hi},
static const binary_row binary_rows[] = {TG_BINARY_OPS(BINARY_TEST_ROW)};
#define N_BINARY (int)(sizeof binary_rows / sizeof binary_rows[0])

static void binary_inputs(const binary_row *r, tg_dtype dt, uint64_t seed, tg_tensor **ab)
{
    tg_rng rng = tg_rng_seeded(seed);
    ab[0] = tg_tensor_uniform(dt, TG_SHAPE(3, 4), r->lo, r->hi, &rng);
    ab[1] = tg_tensor_uniform(dt, TG_SHAPE(4), r->lo, r->hi, &rng);
}

static tg_tensor *binary_fn(tg_tensor *const *x, int n, void *ctx)
{
    (void)n;
    return ((const binary_row *)ctx)->f(x[0], x[1]);
}

START_TEST(test_binary_gradcheck)
{
    const binary_row *r = &binary_rows[_i];
    tg_tensor *ab[2];
    binary_inputs(r, TG_F64, 600 + (uint64_t)_i, ab);
    tg_gradcheck_report rep = {0};
    ck_assert_msg(tg_gradcheck(binary_fn, (void *)r, 2, ab, NULL, &rep) == TG_OK, "tg_%s: %s",
                  r->name, rep.message);
    ck_assert_msg(tg_gradgradcheck(binary_fn, (void *)r, 2, ab, NULL, &rep) == TG_OK,
                  "tg_%s (second order): %s", r->name, rep.message);
    tg_tensor_free(ab[0]);
    tg_tensor_free(ab[1]);
}
END_TEST

START_TEST(test_binary_fused_matches_composed)
{
    const binary_row *r = &binary_rows[_i / 2];
    tg_dtype dt = _i % 2 ? TG_F32 : TG_F64;
    tg_tape *tape = tg_tape_new();
    tg_tensor *ab[2];
    binary_inputs(r, dt, 700 + (uint64_t)_i, ab);
    tg_tensor_set_requires_grad(ab[0], true);
    tg_tensor_set_requires_grad(ab[1], true);
    tg_tensor *y = tg_sum(tg_mul(r->f(ab[0], ab[1]), ab[0]), NULL, 0, false);
    tg_tensor *fused[2], *composed[2];
    ck_assert_int_eq(tg_grad(1, &y, NULL, 2, ab, fused, TG_RETAIN_GRAPH), TG_OK);
    ck_assert_int_eq(tg_grad(1, &y, NULL, 2, ab, composed, TG_CREATE_GRAPH), TG_OK);
    double tol = dt == TG_F32 ? 1e-5 : 1e-13;
    for (int k = 0; k < 2; k++)
        for (int64_t i = 0; i < tg_tensor_numel(ab[k]); i++) {
            double u, v;
            tg_tensor_get_flat(fused[k], i, &u);
            tg_tensor_get_flat(composed[k], i, &v);
            ck_assert_msg(fabs(u - v) <= tol * (1 + fabs(v)), "tg_%s input %d element %lld: "
                          "fused %.17g, composed %.17g", r->name, k, (long long)i, u, v);
        }
    tg_tensor_free(ab[0]);
    tg_tensor_free(ab[1]);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_binary_values_and_errors)
{
    const binary_row *r = &binary_rows[_i];
    tg_tape *tape = tg_tape_new();
    tg_tensor *a[2], *b[2];
    binary_inputs(r, TG_F64, 800 + (uint64_t)_i, a);
    b[0] = tg_tensor_clone_as(a[0], TG_F32);
    b[1] = tg_tensor_clone_as(a[1], TG_F32);
    tg_tensor *ya = r->f(a[0], a[1]), *yb = r->f(b[0], b[1]);
    ck_assert_msg(ya && yb, "tg_%s: %s", r->name, tg_last_error());
    for (int64_t i = 0; i < 12; i++) {
        double u, v;
        tg_tensor_get_flat(ya, i, &u);
        tg_tensor_get_flat(yb, i, &v);
        ck_assert_msg(fabs(u - v) <= 1e-5 * (1 + fabs(u)), "tg_%s at %lld: %g vs %g", r->name,
                      (long long)i, u, v);
    }
    tg_tensor *nan = tg_full(TG_F64, TG_SHAPE(1), NAN);
    ck_assert(isnan(tg_tensor_item(r->f(nan, tg_full(TG_F64, TG_SHAPE(1), 1)))));
    ck_assert(isnan(tg_tensor_item(r->f(tg_full(TG_F64, TG_SHAPE(1), 1), nan))));
    char want[96];
    snprintf(want, sizeof want, "tg_%s: input 1 is NULL", r->name);
    ASSERT_FRESH_NULL_FAIL(r->f(a[0], NULL), TG_EINVAL, want);
    snprintf(want, sizeof want, "tg_%s: dtype mismatch, input 0 is float64", r->name);
    ASSERT_FRESH_NULL_FAIL(r->f(a[0], b[1]), TG_EDTYPE, want);
    snprintf(want, sizeof want, "tg_%s: shapes 3x4 vs 3 do not broadcast", r->name);
    ASSERT_FRESH_NULL_FAIL(r->f(a[0], tg_full(TG_F64, TG_SHAPE(3), 1)), TG_ESHAPE, want);
    for (int k = 0; k < 2; k++) {
        tg_tensor_free(a[k]);
        tg_tensor_free(b[k]);
    }
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_binary_docs_row)
{
    const binary_row *r = &binary_rows[_i];
    FILE *f = fopen(OPS_DOC, "r");
    ck_assert_msg(f, "cannot open %s", OPS_DOC);
    char want[512], line[512];
    snprintf(want, sizeof want, "| `tg_%s(a, b)` | %s | %s | %s |\n", r->name, r->formula,
             r->da, r->db);
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strcmp(line, want) == 0;
    fclose(f);
    ck_assert_msg(found, "docs/ops.md lacks the row of tg_%s (run ninja -C build ops-doc): %s",
                  r->name, want);
}
END_TEST

START_TEST(test_every_op_has_a_case)
{
    // Ops checked in their own suites: nn ops (check_nn_ops), user ops
    // (check_tape), and the non-differentiable ones, which have no gradient.
    const char *elsewhere = " conv2d conv2d_dx conv2d_dw conv2d_relu conv2d_relu_max_pool2d linear "
                            "linear_relu "
                            "max_pool2d avg_pool2d avg_pool2d_grad "
                            "cross_entropy apply ";
    int n_ops = 0;
    for (const tg_op_def *const *def = tg__op_registry; *def; def++, n_ops++) {
        const char *name = (*def)->name;
        char padded[64];
        snprintf(padded, sizeof padded, " %s ", name);
        bool found = strstr(elsewhere, padded) != NULL;
        for (int k = 0; k < N_UNARY && !found; k++)
            found = strcmp(unary_rows[k].name, name) == 0;
        for (int k = 0; k < N_BINARY && !found; k++)
            found = strcmp(binary_rows[k].name, name) == 0;
        for (int k = 0; k < N_CASES && !found; k++) {
            char covers[128];
            snprintf(covers, sizeof covers, " %s ", cases[k].covers);
            found = strstr(covers, padded) != NULL;
        }
        ck_assert_msg(found, "op '%s' has no gradcheck case", name);
    }
    ck_assert_int_ge(n_ops, N_UNARY + 30);
}
END_TEST

/* Every public op of ops.h (the rows of unary.h are checked above) and the
 * case that checks its gradient. The list is
 * static; test_every_public_op_has_a_case also reads include/tapegrad/ops.h and
 * fails for any TG_API function missing here, so a new op cannot slip through.
 * Ops without a gradient (comparisons, sign, constants, detach) name no case:
 * their forward values are checked in test_forward_values and
 * test_forward_broadcast_and_helpers. */
static const struct {
    const char *fn;
    const char *gradcheck_case; /* a name in cases[], or NULL: not differentiable */
} public_ops[] = {
    {"tg_add", "add broadcast"},
    {"tg_sub", "sub broadcast"},
    {"tg_mul", "mul reused x*x"},
    {"tg_div", "div"},
    {"tg_pow", "pow"},
    {"tg_maximum", "maximum"},
    {"tg_minimum", "minimum"},
    {"tg_where", "where broadcast"},
    {"tg_gt", NULL},
    {"tg_ge", NULL},
    {"tg_lt", NULL},
    {"tg_le", NULL},
    {"tg_eq", NULL},
    {"tg_add_scalar", "scalar ops"},
    {"tg_sub_scalar", "sub_scalar"},
    {"tg_rsub_scalar", "rsub_scalar"},
    {"tg_mul_scalar", "scalar ops"},
    {"tg_div_scalar", "div_scalar"},
    {"tg_rdiv_scalar", "rdiv"},
    {"tg_pow_scalar", "pow_scalar"},
    {"tg_gt_scalar", NULL},
    {"tg_sign", NULL},
    {"tg_leaky_relu", "leaky_relu"},
    {"tg_clamp", "clamp"},
    {"tg_sum", "sum axes keepdim"},
    {"tg_mean", "mean axes keepdim"},
    {"tg_max", "max axes keepdim"},
    {"tg_logsumexp", "logsumexp axes keepdim"},
    {"tg_min", "min axis"},
    {"tg_prod", "prod with zeros"},
    {"tg_var", "var correction 1"},
    {"tg_std", "std axes keepdim"},
    {"tg_cumsum", "cumsum"},
    {"tg_argmax", NULL},
    {"tg_argmin", NULL},
    {"tg_matmul", "matmul broadcast batch"},
    {"tg_reshape", "reshape/flatten"},
    {"tg_flatten", "flatten"},
    {"tg_permute", "permute/transpose"},
    {"tg_transpose", "transpose 2-D"},
    {"tg_expand", "expand"},
    {"tg_slice", "slice with step"},
    {"tg_concat", "concat"},
    {"tg_stack", "stack"},
    {"tg_index_select", "index_select"},
    {"tg_gather", "gather"},
    {"tg_softmax", "softmax"},
    {"tg_log_softmax", "log_softmax"},
    {"tg_detach", NULL},
    {"tg_full", NULL},
    {"tg_full_like", NULL},
    {"tg_scalar", NULL},
};
#define N_PUBLIC_OPS (int)(sizeof public_ops / sizeof public_ops[0])

#ifndef TG_TEST_DATA_DIR
#error "TG_TEST_DATA_DIR (examples/data/mnist-10k) is set in tests/meson.build"
#endif
#define OPS_HEADER TG_TEST_DATA_DIR "/../../../include/tapegrad/ops.h"

START_TEST(test_every_public_op_has_a_case)
{
    // Each entry's case exists.
    for (int i = 0; i < N_PUBLIC_OPS; i++) {
        if (!public_ops[i].gradcheck_case)
            continue;
        bool found = false;
        for (int k = 0; k < N_CASES && !found; k++)
            found = strcmp(cases[k].name, public_ops[i].gradcheck_case) == 0;
        ck_assert_msg(found, "%s: no case named '%s'", public_ops[i].fn,
                      public_ops[i].gradcheck_case);
    }
    // Each TG_API function declared in ops.h has an entry.
    FILE *f = fopen(OPS_HEADER, "r");
    ck_assert_msg(f, "cannot open %s", OPS_HEADER);
    char line[512];
    int declared = 0;
    while (fgets(line, sizeof line, f)) {
        const char *api = strstr(line, "TG_API");
        const char *paren = api ? strchr(api, '(') : NULL;
        if (!paren)
            continue;
        const char *start = paren;
        while (start > api && (isalnum((unsigned char)start[-1]) || start[-1] == '_'))
            start--;
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(paren - start), start);
        bool listed = false;
        for (int i = 0; i < N_PUBLIC_OPS && !listed; i++)
            listed = strcmp(public_ops[i].fn, name) == 0;
        ck_assert_msg(listed, "%s (declared in ops.h) has no entry in public_ops", name);
        declared++;
    }
    fclose(f);
    ck_assert_int_eq(declared, N_PUBLIC_OPS);
}
END_TEST

/* ---- gradcheck itself ---- */

/* swish(x) = x sigmoid(x), a user op whose backward is built from ops:
 * d swish = dout (s + x s (1 - s)), s = sigmoid(x), so it has second derivatives. */
static tg_status swish_forward(tg_tensor *out, tg_tensor *const *in, void *ctx)
{
    for (int64_t i = 0; i < tg_tensor_numel(in[0]); i++) {
        double v;
        tg_tensor_get_flat(in[0], i, &v);
        tg_tensor_set_flat(out, i, v / (1 + exp(-v)));
    }
    return TG_OK;
}

static tg_status swish_backward(tg_tensor *const *in, tg_tensor *out, tg_tensor *dout,
                                const bool *needs, tg_tensor **din, void *ctx)
{
    tg_tensor *sg = tg_sigmoid(in[0]);
    tg_tensor *d = tg_add(sg, tg_mul(in[0], tg_mul(sg, tg_rsub_scalar(sg, 1.0))));
    din[0] = tg_mul(dout, d);
    return din[0] ? TG_OK : tg_last_status();
}

static const tg_op_def_user SWISH = {.name = "swish", .n_inputs = 1, .forward = swish_forward,
                                     .backward = swish_backward};

/* Records the dtype of every input f is called with. */
typedef struct seen {
    int calls, non_f64;
} seen;

static tg_tensor *swish_fn(tg_tensor *const *x, int n, void *ctx)
{
    seen *sn = ctx;
    if (sn) {
        sn->calls++;
        sn->non_f64 += tg_tensor_dtype(x[0]) != TG_F64;
    }
    return tg_apply(&SWISH, 1, x, NULL);
}

START_TEST(test_gradcheck_user_swish)
{
    tg_tape *mine = tg_tape_new(); // the caller's tape stays current afterwards
    tg_rng rng = tg_rng_seeded(21);
    tg_tensor *x = tg_tensor_uniform(TG_F32, TG_SHAPE(2, 3), -3, 3, &rng);
    tg_tensor *before = tg_tensor_clone(x);
    seen sn = {0};
    tg_gradcheck_report r;
    ck_assert_int_eq(tg_gradcheck(swish_fn, &sn, 1, &x, NULL, &r), TG_OK);
    ck_assert(r.passed);
    ck_assert_int_eq(r.checked, 36); // 6 outputs x 6 inputs
    ck_assert(strstr(r.message, "ok"));
    // float32 inputs are run in float64: f never saw a float32 tensor.
    ck_assert_int_gt(sn.calls, 12);
    ck_assert_int_eq(sn.non_f64, 0);
    ck_assert_int_eq(tg_gradgradcheck(swish_fn, &sn, 1, &x, NULL, &r), TG_OK);
    ck_assert(r.passed);
    ck_assert_int_eq(sn.non_f64, 0);
    // The caller's input, tape and grad mode are as before.
    ck_assert_mem_eq(tg_tensor_data(x), tg_tensor_data(before), 6 * sizeof(float));
    ck_assert_ptr_eq(tg_tape_current(), mine);
    ck_assert(tg_grad_enabled());
    ck_assert_uint_eq(tg_tape_size(mine), 0);
    tg_tensor_free(x);
    tg_tensor_free(before);
    tg_tape_free(mine);
}
END_TEST

/* A user backward that hands back a transposed gradient: gradcheck fails with
 * the error, and the report says so (it used to be left untouched). */
static tg_status swish_backward_transposed(tg_tensor *const *in, tg_tensor *out,
                                           tg_tensor *dout, const bool *needs, tg_tensor **din,
                                           void *ctx)
{
    tg_status s = swish_backward(in, out, dout, needs, din, ctx);
    if (s == TG_OK)
        din[0] = tg_transpose(din[0], 0, 1);
    return din[0] ? s : tg_last_status();
}
static const tg_op_def_user SWISH_T = {.name = "swish", .n_inputs = 1, .forward = swish_forward,
                                       .backward = swish_backward_transposed};
static tg_tensor *swish_t_fn(tg_tensor *const *x, int n, void *ctx)
{
    return tg_apply(&SWISH_T, 1, x, NULL);
}

START_TEST(test_gradcheck_reports_errors)
{
    tg_rng rng = tg_rng_seeded(4);
    tg_tensor *x = tg_tensor_uniform(TG_F64, TG_SHAPE(3, 4), -1, 1, &rng);
    const char *want = "tg_apply(swish): backward gave 4x3 for input 0 of shape 3x4";
    for (int second = 0; second < 2; second++) {
        tg_gradcheck_report r;
        memset(&r, 0x5a, sizeof r);
        r.passed = true;
        tg_status s = second ? tg_gradgradcheck(swish_t_fn, NULL, 1, &x, NULL, &r)
                             : tg_gradcheck(swish_t_fn, NULL, 1, &x, NULL, &r);
        ck_assert_int_eq(s, TG_ESHAPE);
        ck_assert(!r.passed);
        ck_assert_msg(strstr(r.message, want), "report: %s", r.message);
        ASSERT_FAIL(s, TG_ESHAPE, want);
        // Bad arguments fill the report too.
        ck_assert_int_eq(tg_gradcheck(NULL, NULL, 1, &x, NULL, &r), TG_EINVAL);
        ck_assert(!r.passed);
        ck_assert(strstr(r.message, "need a function"));
    }
    tg_tensor_free(x);
}
END_TEST

/* prod(a, b) = a * b with a wrong gradient for b (1.5 a instead of a). */
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
    if (needs[1] && !(din[1] = tg_mul(dout, tg_mul_scalar(in[0], 1.5))))
        return tg_last_status();
    return TG_OK;
}

static const tg_op_def_user BAD_PROD = {.name = "bad_prod", .n_inputs = 2,
                                        .forward = prod_forward, .backward = prod_backward};

static tg_tensor *bad_prod_fn(tg_tensor *const *x, int n, void *ctx)
{
    return tg_apply(&BAD_PROD, 2, x, ctx);
}

START_TEST(test_gradcheck_catches_a_wrong_backward)
{
    tg_tensor *in[2] = {
        tg_tensor_from_doubles(TG_F64, TG_SHAPE(3), (const double[]){1, 2, 3}),
        tg_tensor_from_doubles(TG_F64, TG_SHAPE(3), (const double[]){-1, 0.5, 2})};
    tg_gradcheck_report r;
    ASSERT_FRESH_FAIL(tg_gradcheck(bad_prod_fn, NULL, 2, in, NULL, &r), TG_EGRAD,
                      "tg_gradcheck: mismatch: worst at input 1 element 2 (output 2)");
    ck_assert(!r.passed);
    ck_assert_int_eq(r.worst_input, 1); // input 0's gradient is right
    ck_assert_int_eq(r.worst_index, 2); // largest a: largest error 0.5 a
    ck_assert_int_eq(r.worst_output, 2);
    ck_assert_double_eq_tol(r.analytic, 4.5, 1e-12);
    ck_assert_double_eq_tol(r.numeric, 3, 1e-6);
    ck_assert_double_eq_tol(r.abs_error, 1.5, 1e-6);
    ck_assert_int_eq(r.checked, 18);
    ck_assert(strstr(r.message, "input 1 element 2"));
    // Direction mode reports it too (no element there: a direction number).
    tg_gradcheck_opts o = tg_gradcheck_defaults();
    o.directions = 4;
    ASSERT_FRESH_FAIL(tg_gradcheck(bad_prod_fn, NULL, 2, in, &o, &r), TG_EGRAD, "direction");
    ck_assert_int_eq(r.checked, 4);
    ck_assert_int_eq(r.worst_output, -1);
    tg_tensor_free(in[0]);
    tg_tensor_free(in[1]);
}
END_TEST

/* ---- forward values ---- */

static tg_tensor *vec(tg_dtype dt, int n, const double *v)
{
    return tg_tensor_from_doubles(dt, 1, (const int64_t[]){n}, v);
}

static void expect(tg_tensor *t, int n, const double *want, double tol, const char *what)
{
    ck_assert_msg(t, "%s: %s", what, tg_last_error());
    ck_assert_int_eq(tg_tensor_numel(t), n);
    for (int i = 0; i < n; i++) {
        double v;
        tg_tensor_get_flat(t, i, &v);
        bool ok = isnan(want[i]) ? isnan(v) : fabs(v - want[i]) <= tol * (1 + fabs(want[i]));
        ck_assert_msg(ok, "%s[%d]: %.17g vs %.17g", what, i, v, want[i]);
    }
}

/* sin(0.7 i + 0.3) in a (3, 4) matrix: the inputs of the PyTorch lines below. */
static tg_tensor *sin_matrix(tg_dtype dt)
{
    double v[12];
    for (int i = 0; i < 12; i++)
        v[i] = sin(0.7 * i + 0.3);
    return tg_tensor_from_doubles(dt, TG_SHAPE(3, 4), v);
}

/* The reductions of issue 10 against PyTorch 1.13 float64, x = sin(0.7 i + 0.3)
 * reshaped (3, 4): torch.var(x, 1, unbiased=True), torch.var(x, unbiased=False),
 * torch.std(x, 0, unbiased=True), torch.cumsum(x, 1), torch.prod(x, 1),
 * torch.argmax(x, 1), torch.argmin(x, 0), and F.gelu(t, approximate='tanh')
 * with its gradient at t = (-3, -1, 0, 0.5, 1, 2). */
START_TEST(test_reductions_match_torch)
{
    tg_dtype dt = _i ? TG_F32 : TG_F64;
    double tol = _i ? 1e-6 : 1e-14;
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = sin_matrix(dt);
    expect(tg_var(x, AX1, 1, 1, false), 3,
           (const double[]){0.08976137267022671, 0.21146585312966226, 0.38302444680621467}, tol,
           "var correction 1");
    expect(tg_var(x, NULL, 0, 0, false), 1, (const double[]){0.4917336358555157}, tol,
           "var correction 0");
    expect(tg_std(x, (const int[]){0}, 1, 1, false), 4,
           (const double[]){0.33793052897067793, 0.7354880927821532, 1.0984182918203222,
                            1.003010726092009}, tol, "std correction 1");
    expect(tg_cumsum(x, 1), 12,
           (const double[]){0.29552020666133955, 1.136991191469236, 2.128656001921705,
                            2.8041191824728564, 0.041580662433290935, -0.570277228509428,
                            -1.5478073461745248, -2.4312620018946784, -0.37387666483023685,
                            -0.06233530131685899, 0.7881013193117055, 1.7774595659350874},
           tol, "cumsum");
    expect(tg_prod(x, AX1, 1, false), 3,
           (const double[]){0.16656851361896205, -0.021971331663546572, -0.09800305352503293},
           tol, "prod");
    int64_t am[3] = {-1, -1, -1}, an[4] = {-1, -1, -1, -1};
    ASSERT_OK(tg_argmax(x, 1, am, 3));
    ASSERT_OK(tg_argmin(x, 0, an, 4));
    ck_assert(am[0] == 2 && am[1] == 0 && am[2] == 3);
    ck_assert(an[0] == 2 && an[1] == 1 && an[2] == 1 && an[3] == 1);
    tg_tensor *t = vec(dt, 6, (const double[]){-3, -1, 0, 0.5, 1, 2});
    tg_tensor_set_requires_grad(t, true);
    tg_tensor *y = tg_gelu_tanh(t);
    expect(y, 6, (const double[]){-0.0036373920817729943, -0.15880800939172324, 0.0,
                                  0.34571400982514394, 0.8411919906082768, 1.954597694087775},
           tol, "gelu_tanh");
    ck_assert_int_eq(tg_backward(tg_sum(y, NULL, 0, false)), TG_OK);
    expect(tg_tensor_grad(t), 6, (const double[]){-0.011584166630969648, -0.08296408384578252,
                                                  0.5, 0.8673699035346424, 1.0829640838457826,
                                                  1.0860992566236183}, tol, "gelu_tanh'");
    tg_tensor_free(t);
    tg_tensor_free(x);
    tg_tape_free(tape);
}
END_TEST

/* prod's gradient with zeros in a group, on both paths: one zero gets the
 * product of the rest, every other element 0; two zeros give 0 everywhere. */
START_TEST(test_prod_zeros_and_min_ties)
{
    tg_dtype dt = _i % 2 ? TG_F32 : TG_F64;
    int flags = _i / 2 ? TG_CREATE_GRAPH : 0;
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_tensor_from_doubles(dt, TG_SHAPE(3, 3),
                                          (const double[]){2, 0, 3, 0, 0, 5, 1.5, 2, -4});
    tg_tensor_set_requires_grad(x, true);
    tg_tensor *p = tg_prod(x, AX1, 1, false), *g;
    expect(p, 3, (const double[]){0, 0, -12}, 0, "prod with zeros");
    tg_tensor *ps = tg_sum(p, NULL, 0, false);
    ASSERT_OK(tg_grad(1, &ps, NULL, 1, &x, &g, flags));
    expect(g, 9, (const double[]){0, 6, 0, 0, 0, 0, -8, -6, 3}, 1e-15, "d prod");
    // min: the first minimal element gets the gradient; NaN wins.
    tg_tensor *m = tg_tensor_from_doubles(dt, TG_SHAPE(2, 3), (const double[]){1, -2, -2, 3, NAN, -9});
    tg_tensor_set_requires_grad(m, true);
    tg_tensor *mn = tg_min(m, AX1, 1, false);
    expect(mn, 2, (const double[]){-2, NAN}, 0, "min");
    tg_tensor *ms = tg_sum(mn, NULL, 0, false);
    ASSERT_OK(tg_grad(1, &ms, NULL, 1, &m, &g, flags));
    expect(g, 6, (const double[]){0, 1, 0, 0, 1, 0}, 0, "d min (ties to the first)");
    // argmax/argmin: ties to the first, NaN wins.
    int64_t a[2];
    ASSERT_OK(tg_argmin(m, -1, a, 2));
    ck_assert(a[0] == 1 && a[1] == 1);
    ASSERT_OK(tg_argmax(m, 1, a, 2));
    ck_assert(a[0] == 0 && a[1] == 1);
    tg_tensor_free(x);
    tg_tensor_free(m);
    tg_tape_free(tape);
}
END_TEST

/* numpy's 1-D rules: shapes and values of each product. */
START_TEST(test_matmul_vectors)
{
    tg_dtype dt = _i ? TG_F32 : TG_F64;
    tg_tape *tape = tg_tape_new();
    tg_tensor *v = vec(dt, 3, (const double[]){1, 2, 3});
    tg_tensor *m = tg_tensor_from_doubles(dt, TG_SHAPE(2, 3), (const double[]){1, 0, 2, -1, 3, 1});
    tg_tensor *mt = tg_tensor_from_doubles(dt, TG_SHAPE(3, 2), (const double[]){1, 0, 2, -1, 3, 1});
    tg_tensor *vv = tg_matmul(v, v), *mv = tg_matmul(m, v), *vm = tg_matmul(v, mt);
    ck_assert_msg(vv && mv && vm, "%s", tg_last_error());
    ck_assert_int_eq(tg_tensor_ndim(vv), 0);
    expect(vv, 1, (const double[]){14}, 0, "v @ v");
    ck_assert_int_eq(tg_tensor_ndim(mv), 1);
    expect(mv, 2, (const double[]){7, 8}, 0, "m @ v");
    ck_assert_int_eq(tg_tensor_ndim(vm), 1);
    expect(vm, 2, (const double[]){14, 1}, 0, "v @ m");
    tg_tensor *bm = tg_expand(tg_reshape(m, TG_SHAPE(1, 2, 3)), TG_SHAPE(4, 2, 3));
    tg_tensor *bmv = tg_matmul(bm, v);
    ck_assert_msg(bmv, "%s", tg_last_error());
    ck_assert(tg_tensor_ndim(bmv) == 2 && tg_tensor_dim(bmv, 0) == 4 && tg_tensor_dim(bmv, 1) == 2);
    tg_tensor *all[] = {v, m, mt};
    for (int i = 0; i < 3; i++)
        tg_tensor_free(all[i]);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_reduction_errors)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = sin_matrix(TG_F64);
    ASSERT_FRESH_NULL_FAIL(tg_min(NULL, NULL, 0, false), TG_EINVAL, "tg_min: input 0 is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_min(tg_full(TG_F32, TG_SHAPE(0), 0), NULL, 0, false), TG_ESHAPE,
                           "tg_min: cannot take the minimum of an empty tensor");
    ASSERT_FRESH_NULL_FAIL(tg_min(x, (const int[]){2}, 1, false), TG_EINVAL,
                           "tg_min: axis 2 out of range");
    ASSERT_FRESH_NULL_FAIL(tg_prod(NULL, NULL, 0, false), TG_EINVAL, "tg_prod: input 0 is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_prod(x, (const int[]){0, 0}, 2, false), TG_EINVAL,
                           "tg_prod: axis 0 given twice");
    ASSERT_FRESH_NULL_FAIL(tg_var(NULL, NULL, 0, 1, false), TG_EINVAL, "tg_var: input 0 is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_var(x, NULL, 0, -1, false), TG_EINVAL,
                           "tg_var: correction -1 is negative");
    ASSERT_FRESH_NULL_FAIL(tg_std(tg_full(TG_F64, TG_SHAPE(3, 1), 0), AX1, 1, 1, false),
                           TG_ESHAPE, "tg_std: 1 elements per group with correction 1 (input "
                           "3x1): need more than the correction");
    ASSERT_FRESH_NULL_FAIL(tg_std(x, (const int[]){5}, 1, 1, false), TG_EINVAL,
                           "tg_std: axis 5 out of range");
    ASSERT_FRESH_NULL_FAIL(tg_cumsum(NULL, 0), TG_EINVAL, "tg_cumsum: input 0 is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_cumsum(x, 2), TG_EINVAL, "tg_cumsum: axis 2 out of range");
    int64_t out[4] = {7, 7, 7, 7};
    ASSERT_FRESH_FAIL(tg_argmax(NULL, 0, out, 4), TG_EINVAL, "tg_argmax: input 0 is NULL");
    ASSERT_FRESH_FAIL(tg_argmax(x, 2, out, 4), TG_EINVAL, "tg_argmax: axis 2 out of range");
    ASSERT_FRESH_FAIL(tg_argmin(x, 0, out, 3), TG_ESHAPE,
                      "tg_argmin: out holds 3 entries, 3x4 over axis 0 gives 4");
    ASSERT_FRESH_FAIL(tg_argmin(x, 0, NULL, 4), TG_EINVAL, "tg_argmin: out is NULL");
    ASSERT_FRESH_FAIL(tg_argmax(tg_full(TG_F64, TG_SHAPE(2, 0), 0), 1, out, 2), TG_ESHAPE,
                      "tg_argmax: axis 1 of 2x0 is empty");
    ck_assert(out[0] == 7 && out[3] == 7); // untouched on failure
    tg_tensor *stale = tg_full(TG_F64, TG_SHAPE(2), 1);
    tg_tape_reset(tape);
    ASSERT_FRESH_FAIL(tg_argmax(stale, 0, out, 1), TG_ESTATE,
                      "tg_argmax: tensor from before tg_tape_reset");
    ASSERT_FRESH_NULL_FAIL(tg_min(stale, NULL, 0, false), TG_ESTATE, "tg_min: tensor from before");
    ASSERT_FRESH_NULL_FAIL(tg_prod(stale, NULL, 0, false), TG_ESTATE, "tg_prod: tensor from");
    ASSERT_FRESH_NULL_FAIL(tg_var(stale, NULL, 0, 0, false), TG_ESTATE, "tg_var: tensor from");
    ASSERT_FRESH_NULL_FAIL(tg_std(stale, NULL, 0, 0, false), TG_ESTATE, "tg_std: tensor from");
    ASSERT_FRESH_NULL_FAIL(tg_cumsum(stale, 0), TG_ESTATE, "tg_cumsum: tensor from");
    // A 0-dim argmax is index 0 of its one element.
    tg_tensor *s0 = tg_tensor_from_doubles(TG_F32, 0, NULL, (const double[]){4});
    ASSERT_OK(tg_argmax(s0, 0, out, 1));
    ck_assert_int_eq(out[0], 0);
    tg_tensor_free(s0);
    tg_tensor_free(x);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_forward_values)
{
    tg_dtype dt = _i ? TG_F32 : TG_F64;
    double tol = _i ? 1e-6 : 1e-14;
    tg_tape *tape = tg_tape_new();
    tg_tensor *a = vec(dt, 3, (const double[]){1, -2, 4});
    tg_tensor *b = vec(dt, 3, (const double[]){2, 2, -1});
    expect(tg_add(a, b), 3, (const double[]){3, 0, 3}, tol, "add");
    expect(tg_sub(a, b), 3, (const double[]){-1, -4, 5}, tol, "sub");
    expect(tg_mul(a, b), 3, (const double[]){2, -4, -4}, tol, "mul");
    expect(tg_div(a, b), 3, (const double[]){0.5, -1, -4}, tol, "div");
    expect(tg_pow(b, a), 3, (const double[]){2, 0.25, 1}, tol, "pow");
    expect(tg_maximum(a, b), 3, (const double[]){2, 2, 4}, tol, "maximum");
    expect(tg_minimum(a, b), 3, (const double[]){1, -2, -1}, tol, "minimum");
    expect(tg_gt(a, b), 3, (const double[]){0, 0, 1}, tol, "gt");
    expect(tg_ge(a, a), 3, (const double[]){1, 1, 1}, tol, "ge");
    expect(tg_lt(a, b), 3, (const double[]){1, 1, 0}, tol, "lt");
    expect(tg_le(a, b), 3, (const double[]){1, 1, 0}, tol, "le");
    expect(tg_eq(a, b), 3, (const double[]){0, 0, 0}, tol, "eq");
    expect(tg_where(tg_gt(a, b), a, b), 3, (const double[]){2, 2, 4}, tol, "where");
    expect(tg_add_scalar(a, 1), 3, (const double[]){2, -1, 5}, tol, "add_scalar");
    expect(tg_sub_scalar(a, 1), 3, (const double[]){0, -3, 3}, tol, "sub_scalar");
    expect(tg_rsub_scalar(a, 1), 3, (const double[]){0, 3, -3}, tol, "rsub_scalar");
    expect(tg_mul_scalar(a, 2), 3, (const double[]){2, -4, 8}, tol, "mul_scalar");
    expect(tg_div_scalar(a, 2), 3, (const double[]){0.5, -1, 2}, tol, "div_scalar");
    expect(tg_rdiv_scalar(a, 2), 3, (const double[]){2, -1, 0.5}, tol, "rdiv_scalar");
    expect(tg_pow_scalar(a, 2), 3, (const double[]){1, 4, 16}, tol, "pow_scalar");
    expect(tg_gt_scalar(a, 0), 3, (const double[]){1, 0, 1}, tol, "gt_scalar");
    expect(tg_neg(a), 3, (const double[]){-1, 2, -4}, tol, "neg");
    expect(tg_exp(a), 3, (const double[]){exp(1), exp(-2), exp(4)}, tol, "exp");
    expect(tg_log(b), 3, (const double[]){log(2), log(2), NAN}, tol, "log");
    expect(tg_sqrt(b), 3, (const double[]){sqrt(2), sqrt(2), NAN}, tol, "sqrt");
    expect(tg_abs(a), 3, (const double[]){1, 2, 4}, tol, "abs");
    expect(tg_sign(a), 3, (const double[]){1, -1, 1}, tol, "sign");
    expect(tg_tanh(a), 3, (const double[]){tanh(1), tanh(-2), tanh(4)}, tol, "tanh");
    expect(tg_sigmoid(a), 3, (const double[]){1 / (1 + exp(-1)), 1 / (1 + exp(2)),
                                              1 / (1 + exp(-4))}, tol, "sigmoid");
    expect(tg_relu(a), 3, (const double[]){1, 0, 4}, tol, "relu");
    expect(tg_leaky_relu(a, 0.1), 3, (const double[]){1, -0.2, 4}, tol, "leaky_relu");
    expect(tg_softplus(a), 3, (const double[]){log1p(exp(1)), log1p(exp(-2)), log1p(exp(4))},
           tol, "softplus");
    expect(tg_clamp(a, -1, 2), 3, (const double[]){1, -1, 2}, tol, "clamp");
    expect(tg_copy(a), 3, (const double[]){1, -2, 4}, tol, "copy");
    // 2x3 matrix m = [[1, 2, 3], [4, 5, 6]]
    tg_tensor *m = tg_tensor_from_doubles(dt, TG_SHAPE(2, 3), (const double[]){1, 2, 3, 4, 5, 6});
    expect(tg_sum(m, NULL, 0, false), 1, (const double[]){21}, tol, "sum");
    expect(tg_sum(m, (const int[]){0}, 1, false), 3, (const double[]){5, 7, 9}, tol, "sum0");
    expect(tg_mean(m, (const int[]){-1}, 1, true), 2, (const double[]){2, 5}, tol, "mean");
    expect(tg_max(m, (const int[]){1}, 1, false), 2, (const double[]){3, 6}, tol, "max");
    expect(tg_logsumexp(m, (const int[]){1}, 1, false), 2,
           (const double[]){3 + log(1 + exp(-1) + exp(-2)), 6 + log(1 + exp(-1) + exp(-2))},
           tol, "logsumexp");
    expect(tg_matmul(m, tg_transpose(m, 0, 1)), 4, (const double[]){14, 32, 32, 77}, tol,
           "matmul");
    expect(tg_permute(m, (const int[]){1, 0}), 6, (const double[]){1, 4, 2, 5, 3, 6}, tol,
           "permute");
    expect(tg_reshape(m, TG_SHAPE(3, 2)), 6, (const double[]){1, 2, 3, 4, 5, 6}, tol, "reshape");
    expect(tg_expand(a, TG_SHAPE(2, 3)), 6, (const double[]){1, -2, 4, 1, -2, 4}, tol, "expand");
    expect(tg_slice(m, 1, 0, 3, 2), 4, (const double[]){1, 3, 4, 6}, tol, "slice");
    expect(tg_slice(m, -1, -2, 100, 1), 4, (const double[]){2, 3, 5, 6}, tol, "slice neg");
    expect(tg_concat(2, (tg_tensor *[]){m, m}, 0), 12,
           (const double[]){1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}, tol, "concat");
    expect(tg_stack(2, (tg_tensor *[]){a, b}, 1), 6, (const double[]){1, 2, -2, 2, 4, -1}, tol,
           "stack");
    expect(tg_index_select(m, 1, 3, (const int64_t[]){2, 2, 0}), 6,
           (const double[]){3, 3, 1, 6, 6, 4}, tol, "index_select");
    expect(tg_gather(m, 1, TG_SHAPE(2, 1), (const int64_t[]){1, 2}), 2, (const double[]){2, 6},
           tol, "gather");
    double e1 = exp(1), e2 = exp(2), e3 = exp(3), z = e1 + e2 + e3;
    expect(tg_softmax(m, 1), 6, (const double[]){e1 / z, e2 / z, e3 / z, e1 / z, e2 / z, e3 / z},
           tol, "softmax");
    double lz = log(z);
    expect(tg_log_softmax(m, 1), 6,
           (const double[]){1 - lz, 2 - lz, 3 - lz, 1 - lz, 2 - lz, 3 - lz}, tol,
           "log_softmax");
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(m);
    tg_tape_free(tape);
}
END_TEST

/* Broadcasting in forward values, batched matmul, 3-D layouts and the graph
 * helpers (constants, detach). */
START_TEST(test_forward_broadcast_and_helpers)
{
    tg_dtype dt = _i ? TG_F32 : TG_F64;
    double tol = _i ? 1e-6 : 1e-14;
    tg_tape *tape = tg_tape_new();
    tg_tensor *col = tg_tensor_from_doubles(dt, TG_SHAPE(2, 1), (const double[]){10, 20});
    tg_tensor *row = tg_tensor_from_doubles(dt, TG_SHAPE(3), (const double[]){1, 2, 3});
    tg_tensor *s0 = tg_tensor_full(dt, 0, NULL, 2);
    tg_tensor *add = tg_add(col, row);
    ck_assert_int_eq(tg_tensor_ndim(add), 2);
    ck_assert_int_eq(tg_tensor_dim(add, 0), 2);
    ck_assert_int_eq(tg_tensor_dim(add, 1), 3);
    expect(add, 6, (const double[]){11, 12, 13, 21, 22, 23}, tol, "(2,1)+(3,)");
    expect(tg_sub(row, col), 6, (const double[]){-9, -8, -7, -19, -18, -17}, tol, "(3,)-(2,1)");
    expect(tg_div(col, row), 6, (const double[]){10, 5, 10.0 / 3, 20, 10, 20.0 / 3}, tol,
           "(2,1)/(3,)");
    expect(tg_pow(row, s0), 3, (const double[]){1, 4, 9}, tol, "pow by a 0-dim");
    expect(tg_mul(s0, col), 2, (const double[]){20, 40}, tol, "0-dim * (2,1)");
    expect(tg_maximum(tg_mul_scalar(col, 0.1), row), 6, (const double[]){1, 2, 3, 2, 2, 3}, tol,
           "maximum (2,1) vs (3,)");
    expect(tg_minimum(tg_mul_scalar(col, 0.1), row), 6, (const double[]){1, 1, 1, 1, 2, 2}, tol,
           "minimum (2,1) vs (3,)");
    expect(tg_lt(tg_mul_scalar(col, 0.1), row), 6, (const double[]){0, 1, 1, 0, 0, 1}, tol,
           "lt (2,1) vs (3,)");
    expect(tg_eq(tg_mul_scalar(col, 0.1), row), 6, (const double[]){1, 0, 0, 0, 1, 0}, tol,
           "eq (2,1) vs (3,)");
    tg_tensor *cond = tg_tensor_from_doubles(dt, TG_SHAPE(2, 1), (const double[]){1, 0});
    expect(tg_where(cond, row, col), 6, (const double[]){1, 2, 3, 20, 20, 20}, tol,
           "where (2,1) ? (3,) : (2,1)");
    tg_tensor *sg = tg_tensor_from_doubles(dt, TG_SHAPE(3), (const double[]){-0.5, 0, 3});
    expect(tg_sign(sg), 3, (const double[]){-1, 0, 1}, tol, "sign");
    tg_tensor_free(sg);
    // Batched matmul: (2,2,2) @ (2,2) and (1,2,3) @ (2,3,1).
    tg_tensor *a3 = tg_tensor_from_doubles(dt, TG_SHAPE(2, 2, 2), (const double[]){1, 2, 3, 4,
                                                                                  5, 6, 7, 8});
    tg_tensor *b2 = tg_tensor_from_doubles(dt, TG_SHAPE(2, 2), (const double[]){1, 0, 1, 1});
    expect(tg_matmul(a3, b2), 8, (const double[]){3, 2, 7, 4, 11, 6, 15, 8}, tol,
           "(2,2,2)@(2,2)");
    tg_tensor *p = tg_tensor_from_doubles(dt, TG_SHAPE(1, 2, 3),
                                          (const double[]){1, 2, 3, 4, 5, 6});
    tg_tensor *q = tg_tensor_from_doubles(dt, TG_SHAPE(2, 3, 1),
                                          (const double[]){1, 1, 1, 1, 0, -1});
    tg_tensor *pq = tg_matmul(p, q);
    ck_assert_int_eq(tg_tensor_ndim(pq), 3);
    expect(pq, 4, (const double[]){6, 15, -2, -2}, tol, "(1,2,3)@(2,3,1)");
    // 3-D layouts: permute, transpose, flatten, concat along axis 1, gather along 0.
    expect(tg_permute(a3, (const int[]){2, 0, 1}), 8, (const double[]){1, 3, 5, 7, 2, 4, 6, 8},
           tol, "permute (2,0,1)");
    expect(tg_transpose(a3, 0, 2), 8, (const double[]){1, 5, 3, 7, 2, 6, 4, 8}, tol,
           "transpose 0,2");
    tg_tensor *fl = tg_flatten(a3, 1);
    ck_assert_int_eq(tg_tensor_ndim(fl), 2);
    ck_assert_int_eq(tg_tensor_dim(fl, 1), 4);
    expect(tg_concat(2, (tg_tensor *[]){col, tg_mul_scalar(col, 2)}, 1), 4,
           (const double[]){10, 20, 20, 40}, tol, "concat axis 1");
    expect(tg_stack(2, (tg_tensor *[]){row, row}, 0), 6, (const double[]){1, 2, 3, 1, 2, 3}, tol,
           "stack axis 0");
    expect(tg_gather(b2, 0, TG_SHAPE(1, 2), (const int64_t[]){1, 0}), 2, (const double[]){1, 0},
           tol, "gather axis 0");
    expect(tg_softmax(s0, 0), 1, (const double[]){1}, tol, "softmax of a 0-dim");
    expect(tg_sum(a3, (const int[]){0, 2}, 2, false), 2, (const double[]){14, 22}, tol,
           "sum axes 0,2");
    expect(tg_max(a3, NULL, 0, true), 1, (const double[]){8}, tol, "max all keepdim");
    ck_assert_int_eq(tg_tensor_ndim(tg_max(a3, NULL, 0, true)), 3);
    // Constants and detach.
    tg_tensor *k = tg_full(dt, TG_SHAPE(2, 2), -1.5);
    ck_assert(tg_tensor_on_tape(k) && !tg_tensor_requires_grad(k));
    expect(k, 4, (const double[]){-1.5, -1.5, -1.5, -1.5}, tol, "full");
    tg_tensor *kl = tg_full_like(a3, 0.25);
    ck_assert_int_eq(tg_tensor_dtype(kl), dt);
    ck_assert_int_eq(tg_tensor_ndim(kl), 3);
    expect(kl, 8, (const double[]){0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25}, tol,
           "full_like");
    tg_tensor *sc = tg_scalar(dt, 7);
    ck_assert_int_eq(tg_tensor_ndim(sc), 0);
    ck_assert_double_eq(tg_tensor_item(sc), 7);
    tg_tensor_set_requires_grad(row, true);
    tg_tensor *d = tg_detach(tg_exp(row));
    ck_assert(!tg_tensor_requires_grad(d));
    expect(d, 3, (const double[]){exp(1), exp(2), exp(3)}, _i ? 1e-6 : 1e-14, "detach");
    tg_tensor *free_me[] = {col, row, s0, cond, a3, b2, p, q};
    for (int i = 0; i < 8; i++)
        tg_tensor_free(free_me[i]);
    tg_tape_free(tape);
}
END_TEST

/* Valid calls at the edges of the index arithmetic: a step larger than the
 * axis (Python gives the first element), and reductions over a batch of zero
 * rows (numpy and torch give an empty result, not an error). */
START_TEST(test_edge_sizes)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *m = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 3),
                                          (const double[]){1, 2, 3, 4, 5, 6});
    tg_tensor *empty = tg_tensor_zeros(TG_F64, TG_SHAPE(0, 3));
    tg_tensor *r[8];
    tg_status st[8];
    char msg[8][160];
    const int AX_ROWS[] = {1};
    for (int k = 0; k < 8; k++) {
        tg_clear_error();
        switch (k) {
        case 0: r[k] = tg_slice(m, 0, 0, 3, INT64_MAX); break;
        case 1: r[k] = tg_slice(m, 1, 1, 3, INT64_MAX / 2); break;
        case 2: r[k] = tg_slice(m, 1, -100, 100, 5); break;
        case 3: r[k] = tg_sum(empty, AX_ROWS, 1, false); break;
        case 4: r[k] = tg_mean(empty, AX_ROWS, 1, false); break;
        case 5: r[k] = tg_max(empty, AX_ROWS, 1, false); break;
        case 6: r[k] = tg_logsumexp(empty, AX_ROWS, 1, false); break;
        default: r[k] = tg_softmax(empty, 1); break;
        }
        st[k] = tg_last_status();
        snprintf(msg[k], sizeof msg[k], "%s", tg_last_error());
    }
    // Results are checked after everything is released, so a failure leaks nothing.
    int64_t n[8], d0[8];
    double first[8];
    for (int k = 0; k < 8; k++) {
        n[k] = r[k] ? tg_tensor_numel(r[k]) : -1;
        d0[k] = r[k] ? tg_tensor_dim(r[k], 0) : -1;
        first[k] = r[k] && n[k] ? tg_tensor_item(tg_slice(tg_flatten(r[k], 0), 0, 0, 1, 1)) : 0;
    }
    tg_tensor_free(m);
    tg_tensor_free(empty);
    tg_tape_free(tape);
    const char *what[8] = {"slice(axis 0, step INT64_MAX)", "slice(axis 1, step INT64_MAX/2)",
                           "slice(-100, 100, step 5)", "sum over axis 1 of 0x3",
                           "mean over axis 1 of 0x3", "max over axis 1 of 0x3",
                           "logsumexp over axis 1 of 0x3", "softmax over axis 1 of 0x3"};
    const int64_t want_n[8] = {3, 2, 2, 0, 0, 0, 0, 0}, want_d0[8] = {1, 2, 2, 0, 0, 0, 0, 0};
    const double want_first[8] = {1, 2, 1, 0, 0, 0, 0, 0};
    char report[2048] = "";
    for (int k = 0; k < 8; k++)
        if (!(st[k] == TG_OK && n[k] == want_n[k] && d0[k] == want_d0[k] &&
              first[k] == want_first[k]))
            snprintf(report + strlen(report), sizeof report - strlen(report),
                     "\n  %s: status %d (%s), %lld elements, dim 0 %lld, first %g", what[k],
                     (int)st[k], msg[k], (long long)n[k], (long long)d0[k], first[k]);
    ck_assert_msg(report[0] == '\0', "wrong results:%s", report);
}
END_TEST

/* An empty tensor may have other dims as large as int64 allows, with no
 * memory behind them: softmax and log_softmax used to loop over its
 * (outer, inner) groups anyway, 4 x 2^40 of them (found by
 * tools/fuzz/fuzz_ops as a hang). Forward and backward must return at once. */
START_TEST(test_empty_with_huge_dims)
{
    tg_tape *tape = tg_tape_new();
    for (int dt = 0; dt < 2; dt++) {
        tg_tensor *x = tg_tensor_zeros(dt ? TG_F64 : TG_F32, TG_SHAPE(4, 0, (int64_t)1 << 40));
        ck_assert_ptr_nonnull(x);
        ASSERT_OK(tg_tensor_set_requires_grad(x, true));
        for (int k = 0; k < 9; k++) {
            tg_tensor *y = k < 3   ? tg_softmax(x, k)
                           : k < 6 ? tg_log_softmax(x, k - 3)
                                   : tg_cumsum(x, k - 6);
            ck_assert_msg(y, "%s", tg_last_error());
            ck_assert_int_eq(tg_tensor_numel(y), 0);
            ASSERT_OK(tg_backward(tg_sum(y, NULL, 0, false)));
            ck_assert_int_eq(tg_tensor_numel(tg_tensor_grad(x)), 0);
        }
        tg_tape_reset(tape);
        tg_tensor_free(x);
    }
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_numerical_stability)
{
    tg_dtype dt = _i ? TG_F32 : TG_F64;
    tg_tape *tape = tg_tape_new();
    tg_tensor *big = vec(dt, 3, (const double[]){1000, 1001, 1002});
    double z = 1 + exp(-1) + exp(-2);
    expect(tg_softmax(big, 0), 3, (const double[]){exp(-2) / z, exp(-1) / z, 1 / z}, 1e-6,
           "softmax of 1000s");
    expect(tg_log_softmax(big, 0), 3,
           (const double[]){-2 - log(z), -1 - log(z), -log(z)}, 1e-6, "log_softmax of 1000s");
    expect(tg_logsumexp(big, NULL, 0, false), 1, (const double[]){1002 + log(z)}, 1e-6,
           "logsumexp of 1000s");
    tg_tensor *ext = vec(dt, 2, (const double[]){-1000, 1000});
    expect(tg_sigmoid(ext), 2, (const double[]){0, 1}, 1e-12, "sigmoid(+-1000)");
    expect(tg_softplus(ext), 2, (const double[]){0, 1000}, 1e-12, "softplus(+-1000)");
    // Exactly, with no NaN on the way (no inf/inf or inf-inf inside).
    double v;
    tg_tensor_get_flat(tg_sigmoid(ext), 0, &v);
    ck_assert(v == 0.0);
    tg_tensor_get_flat(tg_softplus(ext), 1, &v);
    ck_assert(v == 1000.0);
    tg_tensor *big_lse = tg_logsumexp(big, NULL, 0, false);
    ck_assert(isfinite(tg_tensor_item(big_lse)));
    // Their gradients at the extremes are finite too: sigmoid' -> 0, softplus' -> 0 or 1.
    tg_tensor_set_requires_grad(ext, true);
    tg_tensor *l = tg_sum(tg_add(tg_sigmoid(ext), tg_softplus(ext)), NULL, 0, false), *g;
    ck_assert_int_eq(tg_grad(1, &l, NULL, 1, &ext, &g, 0), TG_OK);
    expect(g, 2, (const double[]){0, 1}, 1e-12, "d(sigmoid + softplus) at +-1000");
    tg_tensor *sm = tg_softmax(big, 0);
    tg_tensor *lsm_in = tg_tensor_clone(big);
    tg_tensor_set_requires_grad(lsm_in, true);
    tg_tensor *l2 = tg_sum(tg_mul(tg_log_softmax(lsm_in, 0), sm), NULL, 0, false);
    ck_assert_int_eq(tg_grad(1, &l2, NULL, 1, &lsm_in, &g, 0), TG_OK);
    for (int i = 0; i < 3; i++) {
        tg_tensor_get_flat(g, i, &v);
        ck_assert_msg(isfinite(v) && fabs(v) < 1e-5, "d(sum softmax * log_softmax) %g", v);
    }
    tg_tensor_free(lsm_in);
    tg_tensor_free(big);
    tg_tensor_free(ext);
    tg_tape_free(tape);
}
END_TEST

/* The fused fast paths and the recorded graph must agree: a plain backward
 * (fused kernels where an op has them) and one with TG_CREATE_GRAPH (every
 * rule recorded as ops) give the same first derivatives, up to rounding (a
 * fused kernel may round once where the ops round twice). */
START_TEST(test_create_graph_matches_plain_backward)
{
    const op_case *c = &cases[_i];
    tg_tape *tape = tg_tape_new();
    tg_tensor *in[3];
    for (int k = 0; k < c->n; k++) {
        in[k] = case_input(c, k, 55 + (uint64_t)k, TG_F64);
        tg_tensor_set_requires_grad(in[k], true);
    }
    tg_tensor *y = tg_sum(c->f(in), NULL, 0, false);
    tg_tensor *g1[3], *g2[3];
    ck_assert_int_eq(tg_grad(1, &y, NULL, c->n, in, g1, TG_RETAIN_GRAPH | TG_ALLOW_UNUSED),
                     TG_OK);
    ck_assert_int_eq(tg_grad(1, &y, NULL, c->n, in, g2, TG_CREATE_GRAPH | TG_ALLOW_UNUSED),
                     TG_OK);
    for (int k = 0; k < c->n; k++)
        for (int64_t i = 0; i < tg_tensor_numel(in[k]); i++) {
            double u, v;
            tg_tensor_get_flat(g1[k], i, &u);
            tg_tensor_get_flat(g2[k], i, &v);
            ck_assert_msg(fabs(u - v) <= 1e-14 * (1 + fabs(u)), "%s: input %d element %lld: "
                          "%.17g vs %.17g", c->name, k, (long long)i, u, v);
        }
    for (int k = 0; k < c->n; k++)
        tg_tensor_free(in[k]);
    tg_tape_free(tape);
}
END_TEST

/* ---- errors of the op layer ---- */

START_TEST(test_op_errors)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *m23 = tg_tensor_zeros(TG_F32, TG_SHAPE(2, 3));
    tg_tensor *m45 = tg_tensor_zeros(TG_F32, TG_SHAPE(4, 5));
    tg_tensor *v4 = tg_tensor_zeros(TG_F32, TG_SHAPE(4));
    tg_tensor *d23 = tg_tensor_zeros(TG_F64, TG_SHAPE(2, 3));
    ASSERT_FRESH_NULL_FAIL(tg_matmul(m23, m45), TG_ESHAPE,
                           "tg_matmul: inner dims 3 vs 4 (a 2x3, b 4x5)");
    ASSERT_FRESH_NULL_FAIL(tg_matmul(v4, m23), TG_ESHAPE,
                           "tg_matmul: inner dims 4 vs 2 (a 4, b 2x3)");
    ASSERT_FRESH_NULL_FAIL(tg_matmul(m23, v4), TG_ESHAPE,
                           "tg_matmul: inner dims 3 vs 4 (a 2x3, b 4)");
    ASSERT_FRESH_NULL_FAIL(tg_matmul(v4, tg_full(TG_F32, 0, NULL, 1)), TG_ESHAPE,
                           "tg_matmul: a 0-dim operand has no matrix product (a 4, b scalar)");
    ASSERT_FRESH_NULL_FAIL(tg_add(m23, v4), TG_ESHAPE, "tg_add: shapes 2x3 vs 4 do not broadcast");
    ASSERT_FRESH_NULL_FAIL(tg_mul(m23, d23), TG_EDTYPE,
                           "tg_mul: dtype mismatch, input 0 is float32");
    ASSERT_FRESH_NULL_FAIL(tg_add(NULL, m23), TG_EINVAL, "tg_add: input 0 is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_sum(m23, (const int[]){2}, 1, false), TG_EINVAL,
                           "axis 2 out of range");
    ASSERT_FRESH_NULL_FAIL(tg_sum(m23, (const int[]){1, -1}, 2, false), TG_EINVAL, "given twice");
    ASSERT_FRESH_NULL_FAIL(tg_reshape(m23, TG_SHAPE(4, 2)), TG_ESHAPE, "cannot view 2x3");
    ASSERT_FRESH_NULL_FAIL(tg_reshape(m23, TG_SHAPE(-1, -1)), TG_EINVAL, "only one -1");
    ASSERT_FRESH_NULL_FAIL(tg_permute(m23, (const int[]){0, 0}), TG_EINVAL, "not a permutation");
    ASSERT_FRESH_NULL_FAIL(tg_expand(m23, TG_SHAPE(2, 4)), TG_ESHAPE,
                           "cannot broadcast 2x3 to 2x4");
    ASSERT_FRESH_NULL_FAIL(tg_slice(m23, 0, 0, 1, 0), TG_EINVAL, "step 0 must be positive");
    ASSERT_FRESH_NULL_FAIL(tg_concat(2, (tg_tensor *[]){m23, m45}, 0), TG_ESHAPE,
                           "must match except");
    ASSERT_FRESH_NULL_FAIL(tg_stack(2, (tg_tensor *[]){m23, d23}, 0), TG_EDTYPE, "dtype mismatch");
    ASSERT_FRESH_NULL_FAIL(tg_index_select(m23, 1, 1, (const int64_t[]){3}), TG_ERANGE,
                           "outside [0, 3)");
    ASSERT_FRESH_NULL_FAIL(tg_gather(m23, 1, TG_SHAPE(3, 1), (const int64_t[]){0, 0, 0}), TG_ESHAPE,
                 "does not fit");
    ASSERT_FRESH_NULL_FAIL(tg_softmax(m23, 3), TG_EINVAL, "axis 3 out of range");
    ASSERT_FRESH_NULL_FAIL(tg_clamp(m23, 1, 0), TG_EINVAL, "lo <= hi");
    ASSERT_FRESH_NULL_FAIL(tg_div_scalar(m23, 0), TG_EINVAL, "nonzero");
    ASSERT_FRESH_NULL_FAIL(tg_add_scalar(m23, NAN), TG_EINVAL, "not finite");
    ASSERT_FRESH_NULL_FAIL(tg_max(tg_full(TG_F32, TG_SHAPE(0), 0), NULL, 0, false), TG_ESHAPE,
                           "empty");
    ASSERT_FRESH_NULL_FAIL(tg_mean(tg_full(TG_F32, TG_SHAPE(0, 2), 0), NULL, 0, false), TG_ESHAPE,
                           "tg_mean: no elements to average (input 0x2)");
    // The first failure's message survives the rest of the expression.
    ASSERT_FRESH_NULL_FAIL(tg_exp(tg_add(tg_matmul(m23, m45), m23)), TG_ESHAPE,
                           "tg_matmul: inner dims");
    // Long broadcast messages (issue 11 item 3: three empty 8-dim shapes of 19-digit
    // dims overflowed a stack buffer). Such shapes are now refused at creation
    // (their strides would overflow); the longest shapes still allowed give a
    // bounded message.
    int64_t refused[8] = {0};
    for (int d = 1; d < 8; d++)
        refused[d] = 1000000000000000000;
    ASSERT_FRESH_NULL_FAIL(tg_full(TG_F32, 8, refused, 0), TG_ERANGE, "strides overflow");
    tg_tensor *huge[3];
    for (int k = 0; k < 3; k++) {
        int64_t shape[8] = {0, INT64_MAX / 8 - k, 1, 1, 1, 1, 1, 1};
        huge[k] = tg_full(TG_F32, 8, shape, 0);
        ck_assert_msg(huge[k], "%s", tg_last_error());
    }
    ASSERT_FRESH_NULL_FAIL(tg_where(huge[0], huge[1], huge[2]), TG_ESHAPE,
                           "tg_where: shapes 0x1152921504606846975x1x1x1x1x1x1 vs "
                           "0x1152921504606846974x1x1x1x1x1x1 vs 0x1152921504606846973");
    ck_assert_uint_lt(strlen(tg_last_error()), 512);
    // No tape: a clear error, not a crash.
    tg_tape_set_current(NULL);
    ASSERT_FRESH_NULL_FAIL(tg_add(m23, m23), TG_ESTATE, "no current tape");
    tg_tape_set_current(tape);
    tg_tensor *all[] = {m23, m45, v4, d23};
    for (int i = 0; i < 4; i++)
        tg_tensor_free(all[i]);
    tg_tape_free(tape);
}
END_TEST

/* Bugs an independent check found (issue 7 item 9); each failed before its fix. */
START_TEST(test_found_bugs)
{
    tg_tape *tape = tg_tape_new();
    // softmax / log_softmax of a 0-dim tensor: axis 0 and -1, gradient 0.
    for (int k = 0; k < 2; k++) {
        tg_tensor *s = tg_tensor_from_doubles(TG_F64, 0, NULL, (double[]){1.5});
        tg_tensor_set_requires_grad(s, true);
        tg_tensor *y0 = k ? tg_log_softmax(s, 0) : tg_softmax(s, 0);
        tg_tensor *y1 = k ? tg_log_softmax(s, -1) : tg_softmax(s, -1);
        ck_assert_msg(y0 && y1, "%s", tg_last_error());
        ck_assert_double_eq(tg_tensor_item(y1), k ? 0.0 : 1.0);
        ck_assert_int_eq(tg_backward(tg_add(y0, y1)), TG_OK);
        ck_assert_double_eq(tg_tensor_item(tg_tensor_grad(s)), 0.0);
        tg_tensor *g;
        tg_tensor *y2 = k ? tg_log_softmax(s, 0) : tg_softmax(s, 0);
        ck_assert_int_eq(tg_grad(1, &y2, NULL, 1, &s, &g, TG_CREATE_GRAPH), TG_OK);
        ck_assert_double_eq(tg_tensor_item(g), 0.0);
        tg_tensor_free(s);
    }
    // pow(a, b) at a = 0: d/da is 0 for b = 0 (not NaN), and the higher
    // derivatives of a^1 and a^2 at 0 are finite (0, 1, 2 ...).
    double expect[3][3] = {{0, 0, 0}, {1, 0, 0}, {0, 2, 0}}; // b = 0, 1, 2: d1, d2, d3
    for (int b = 0; b < 3; b++) {
        tg_tensor *a = tg_tensor_from_doubles(TG_F64, 0, NULL, (double[]){0});
        tg_tensor *e = tg_tensor_from_doubles(TG_F64, 0, NULL, (double[]){b});
        tg_tensor_set_requires_grad(a, true);
        tg_tensor *y = tg_pow(a, e);
        for (int order = 0; order < 3; order++) {
            tg_tensor *g;
            ck_assert_int_eq(tg_grad(1, &y, NULL, 1, &a, &g, TG_CREATE_GRAPH | TG_ALLOW_UNUSED),
                             TG_OK);
            ck_assert_msg(tg_tensor_item(g) == expect[b][order], "d^%d/da^%d 0^%d = %g, want %g",
                          order + 1, order + 1, b, tg_tensor_item(g), expect[b][order]);
            y = g;
            if (!tg_tensor_requires_grad(y))
                break;
        }
        tg_tensor_free(a);
        tg_tensor_free(e);
    }
    // NaN propagates through maximum and minimum, whichever side it is on.
    tg_tensor *nan = tg_full(TG_F32, TG_SHAPE(1), NAN), *zero = tg_full(TG_F32, TG_SHAPE(1), 0);
    ck_assert(isnan(tg_tensor_item(tg_maximum(nan, zero))));
    ck_assert(isnan(tg_tensor_item(tg_maximum(zero, nan))));
    ck_assert(isnan(tg_tensor_item(tg_minimum(nan, zero))));
    ck_assert(isnan(tg_tensor_item(tg_minimum(zero, nan))));
    ck_assert(isnan(tg_tensor_item(tg_relu(nan))));
    // Found by the fuzzer (tools/fuzz/fuzz_ops.c): slicing a 0-dim tensor read
    // past its shape; a batched product with K = 0 divided by zero.
    tg_tensor *s0 = tg_full(TG_F32, 0, NULL, 1);
    ASSERT_FRESH_NULL_FAIL(tg_slice(s0, 0, 0, -1, 5), TG_EINVAL,
                           "tg_slice: a 0-dim tensor has no axis to slice");
    tg_tensor *a0 = tg_tensor_zeros(TG_F64, TG_SHAPE(2, 3, 0));
    tg_tensor *b0 = tg_tensor_zeros(TG_F64, TG_SHAPE(2, 0, 4));
    tg_tensor_set_requires_grad(a0, true);
    tg_tensor_set_requires_grad(b0, true);
    tg_tensor *c0 = tg_matmul(a0, b0);
    ck_assert_msg(c0, "%s", tg_last_error());
    ck_assert_int_eq(tg_tensor_numel(c0), 24);
    for (int64_t i = 0; i < 24; i++) {
        double v = -1;
        tg_tensor_get_flat(c0, i, &v);
        ck_assert(v == 0);
    }
    ck_assert_int_eq(tg_backward(tg_sum(c0, NULL, 0, false)), TG_OK);
    ck_assert_int_eq(tg_tensor_numel(tg_tensor_grad(a0)), 0);
    tg_tensor_free(a0);
    tg_tensor_free(b0);
    tg_tape_free(tape);
}
END_TEST


/* ---- the small-network fast paths: the same bytes as the general ones ---- */

static uint64_t fast_state = 0x9E3779B97F4A7C15ULL;
/* Deterministic values in [-1, 1), with a -0, an exact 0 and a large one now
 * and then (roundings and signs of zero that a different order would show). */
static double fast_value(void)
{
    fast_state ^= fast_state << 13;
    fast_state ^= fast_state >> 7;
    fast_state ^= fast_state << 17;
    uint64_t r = fast_state >> 11;
    if (r % 29 == 0)
        return -0.0;
    if (r % 31 == 0)
        return 0.0;
    if (r % 37 == 0)
        return 1e6 * ((double)(r % 1000) - 500);
    return (double)r * 0x1.0p-52 - 1.0;
}

/* One product with the kernel named, into C (copied from C0 first). */
static void gemm_with(const char *kernel, bool f64, bool ta, bool tb, int64_t M, int64_t N,
                      int64_t K, double alpha, const void *A, int64_t lda, const void *B,
                      int64_t ldb, double beta, const void *C0, void *C, int64_t ldc,
                      size_t c_bytes, const tg__gemm_epi *epi)
{
    ck_assert_int_eq(tg_set_kernel(kernel), TG_OK);
    memcpy(C, C0, c_bytes);
    if (f64 && epi)
        tg__gemm_f64_epi(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epi);
    else if (f64) // the plain entry, which jumps to the short one
        tg__gemm_f64(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else if (epi)
        tg__gemm_f32_epi(ta, tb, M, N, K, (float)alpha, A, lda, B, ldb, (float)beta, C, ldc,
                         epi);
    else
        tg__gemm_f32(ta, tb, M, N, K, (float)alpha, A, lda, B, ldb, (float)beta, C, ldc);
}

/* The short entry for tiny products (kernels/gemm_small.c, taken with the
 * avx2 and avx512 kernels) against the generic kernel's general path, byte
 * for byte: shapes around the vector widths and up to TG__GEMM_TINY, every
 * transpose pair, alpha, beta, padded leading dimensions, each epilogue and
 * none (through tg__gemm_f32/_f64 too), both dtypes. _i: 0 float32, 1 float64. */
START_TEST(test_gemm_small_bits)
{
    const bool f64 = _i == 1;
    const size_t es = f64 ? sizeof(double) : sizeof(float);
    const char *fast = tg_set_kernel("avx2") == TG_OK ? "avx2" : NULL;
    if (!fast) // no AVX2 here: every product takes the general path anyway
        return;
    static const int64_t dims[][3] = {{1, 1, 1},  {4, 8, 2},   {4, 1, 8},  {8, 1, 4},
                                      {4, 8, 1},  {2, 8, 4},   {3, 5, 7},  {5, 3, 2},
                                      {9, 4, 3},  {1, 17, 6},  {17, 1, 6}, {7, 9, 1},
                                      {6, 16, 5}, {16, 2, 64}, {1, 1, 320}, {2, 2, 300},
                                      {32, 8, 8}, {8, 32, 8},  {12, 12, 14}, {1, 64, 32}};
    static const double alphas[] = {1, 0.5, -3}, betas[] = {0, 1, -0.3};
    enum { MAXE = 16 * 1024 };
    void *A = malloc(MAXE * 8), *B = malloc(MAXE * 8), *C0 = malloc(MAXE * 8);
    void *C1 = malloc(MAXE * 8), *C2 = malloc(MAXE * 8), *bias = malloc(MAXE * 8);
    ck_assert(A && B && C0 && C1 && C2 && bias);
    int checked = 0;
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
        for (int t = 0; t < 4; t++)
            for (int v = 0; v < 9; v++) {
                const int64_t M = dims[d][0], N = dims[d][1], K = dims[d][2];
                const bool ta = t & 1, tb = t & 2;
                const double alpha = alphas[v % 3], beta = betas[v / 3];
                const int64_t pad = v % 2 ? 3 : 0;
                const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
                const int64_t na = lda * (ta ? K : M), nb = ldb * (tb ? N : K), nc = ldc * M;
                ck_assert(na <= MAXE && nb <= MAXE && nc <= MAXE);
                for (int64_t i = 0; i < MAXE; i++) {
                    double a = fast_value(), b = fast_value(), c = fast_value(),
                           e = fast_value();
                    if (f64) {
                        ((double *)A)[i] = a, ((double *)B)[i] = b;
                        ((double *)C0)[i] = c, ((double *)bias)[i] = e;
                    } else {
                        ((float *)A)[i] = (float)a, ((float *)B)[i] = (float)b;
                        ((float *)C0)[i] = (float)c, ((float *)bias)[i] = (float)e;
                    }
                }
                const tg__gemm_epi epis[] = {{.bias = NULL}, {.bias = bias},
                                             {.bias = bias, .bias_per_col = true},  {.relu = true},
                                             {.bias = bias, .bias_per_col = true, .relu = true}};
                for (int e = 0; e < 6; e++) {
                    const tg__gemm_epi *epi = e == 5 ? NULL : &epis[e];
                    gemm_with(fast, f64, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0, C1,
                              ldc, (size_t)nc * es, epi);
                    gemm_with("generic", f64, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0,
                              C2, ldc, (size_t)nc * es, epi);
                    ck_assert_msg(memcmp(C1, C2, (size_t)nc * es) == 0,
                                  "%s %lldx%lldx%lld ta%d tb%d alpha %g beta %g pad %lld "
                                  "epilogue %d: the short entry's bytes differ",
                                  f64 ? "f64" : "f32", (long long)M, (long long)N,
                                  (long long)K, ta, tb, alpha, beta, (long long)pad, e);
                    checked++;
                }
            }
    ck_assert_int_eq(tg_set_kernel("auto"), TG_OK);
    ck_assert_int_gt(checked, 1000);
    free(A), free(B), free(C0), free(C1), free(C2), free(bias);
}
END_TEST

static tg_tensor *fast_tensor(tg_dtype dt, int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    double *v = malloc(sizeof(double) * (size_t)(n + 1));
    for (int64_t i = 0; i < n; i++)
        v[i] = fast_value();
    if (n >= 3) // a column of zeros of both signs: 0 + -0 + -0 is +0
        v[0] = -0.0, v[1] = -0.0;
    tg_tensor *t = tg_tensor_from_doubles(dt, ndim, shape, v);
    free(v);
    return t;
}

static bool same_bytes(const tg_tensor *a, const tg_tensor *b)
{
    return a && b && tg_tensor_numel(a) == tg_tensor_numel(b) &&
           tg_tensor_dtype(a) == tg_tensor_dtype(b) &&
           memcmp(tg_tensor_data((tg_tensor *)a), tg_tensor_data((tg_tensor *)b),
                  (size_t)tg_tensor_numel(a) * tg_dtype_size(tg_tensor_dtype(a))) == 0;
}

/* The engine's bias-gradient sum (sum_to.c, sum_rows) against the recorded
 * sum it stands for (tg__sum_to: tg_sum then reshape), byte for byte. */
START_TEST(test_sum_to_rows_bits)
{
    tg_dtype dt = _i ? TG_F64 : TG_F32;
    tg_tape *tape = tg_tape_new();
    static const int64_t Rs[] = {2, 3, 4, 8, 9, 17, 64}, Ks[] = {1, 2, 5, 8, 33};
    for (size_t r = 0; r < sizeof Rs / sizeof Rs[0]; r++)
        for (size_t k = 0; k < sizeof Ks / sizeof Ks[0]; k++)
            for (int form = 0; form < 2; form++) {
                int64_t R = Rs[r], K = Ks[k];
                tg_tensor *g = fast_tensor(dt, 2, (const int64_t[]){R, K});
                int ndim = form ? 2 : 1;
                const int64_t *shape = form ? (const int64_t[]){1, K} : (const int64_t[]){K};
                tg_tensor *fast = tg__sum_to_direct(g, ndim, shape);
                tg_tensor *ref = tg__sum_to(g, ndim, shape);
                ck_assert_msg(same_bytes(fast, ref), "%s (%lld, %lld) -> %s%lld: sums differ",
                              tg_dtype_name(dt), (long long)R, (long long)K, form ? "1x" : "",
                              (long long)K);
                ck_assert_int_eq(tg_tensor_ndim(fast), ndim);
                tg_tensor_free(g);
            }
    tg_tape_free(tape);
}
END_TEST

/* tg_add and tg_sub of a small result whose second operand has the result's
 * shape or is a row of its last dims (elementwise.c, small_add_sub) against
 * the same additions written out, byte for byte, both dtypes; and b + a (a
 * row first: the general broadcast path) agrees with a + b. */
START_TEST(test_add_sub_rows_bits)
{
    tg_dtype dt = _i ? TG_F64 : TG_F32;
    tg_tape *tape = tg_tape_new();
    static const int64_t shapes[][3] = {{4, 8, 0}, {4, 1, 0}, {3, 5, 2}, {1, 9, 0}, {7, 3, 3}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int row_dims = 0; row_dims < 3; row_dims++) {
            int ndim = shapes[s][2] ? 3 : 2;
            int64_t shape[3] = {shapes[s][0], shapes[s][1], shapes[s][2]};
            int bnd = row_dims == 0 ? ndim : row_dims; // all dims, or the last 1 or 2
            tg_tensor *a = fast_tensor(dt, ndim, shape);
            tg_tensor *b = fast_tensor(dt, bnd, shape + (ndim - bnd));
            int64_t n = tg_tensor_numel(a), K = tg_tensor_numel(b);
            for (int op = 0; op < 2; op++) {
                tg_tensor *out = op ? tg_sub(a, b) : tg_add(a, b);
                tg_tensor *swapped = op ? NULL : tg_add(b, a);
                ck_assert_ptr_nonnull(out);
                for (int64_t i = 0; i < n; i++) {
                    double x = tg__get(a, i), y = tg__get(b, i % K), got = tg__get(out, i);
                    double want = dt == TG_F32 ? (double)(op ? (float)x - (float)y
                                                            : (float)x + (float)y)
                                               : (op ? x - y : x + y);
                    ck_assert_msg(memcmp(&got, &want, sizeof got) == 0 ||
                                      (got != got && want != want),
                                  "%s %s at %lld: %a vs %a", tg_dtype_name(dt),
                                  op ? "sub" : "add", (long long)i, got, want);
                }
                if (!op) // x + y and y + x are the same rounding
                    ck_assert(same_bytes(out, swapped));
            }
            tg_tensor_free(a);
            tg_tensor_free(b);
        }
    tg_tape_free(tape);
}
END_TEST


/* tg_mean is one node (reduce.c) with the bytes of the composition it
 * replaced, mul_scalar(sum(x), 1/n): forward, the fused gradient and the
 * recorded one, over all axes, some, and with keepdim, both dtypes. */
START_TEST(test_mean_matches_sum_scaled)
{
    tg_dtype dt = _i ? TG_F64 : TG_F32;
    tg_tape *tape = tg_tape_new();
    static const int axes[][2] = {{0, 0}, {1, 0}, {0, 2}, {-1, 0}};
    static const int n_axes[] = {0, 1, 2, 1};
    for (int a = 0; a < 4; a++)
        for (int keep = 0; keep < 2; keep++) {
            tg_tensor *x = fast_tensor(dt, 3, (const int64_t[]){3, 5, 7});
            tg_tensor_set_requires_grad(x, true);
            const int *ax = n_axes[a] ? axes[a] : NULL;
            int64_t count = 1;
            for (int d = 0; d < 3; d++) {
                bool reduced = !ax;
                for (int k = 0; k < n_axes[a]; k++)
                    reduced |= (ax[k] + 3) % 3 == d;
                count *= reduced ? (int64_t[]){3, 5, 7}[d] : 1;
            }
            tg_tensor *m = tg_mean(x, ax, n_axes[a], keep);
            tg_tensor *r = tg_mul_scalar(tg_sum(x, ax, n_axes[a], keep), 1.0 / (double)count);
            ck_assert_msg(same_bytes(m, r), "%s mean %d keep %d: forward differs",
                          tg_dtype_name(dt), a, keep);
            tg_tensor *seed = fast_tensor(dt, tg_tensor_ndim(m), tg_tensor_shape(m));
            for (int graph = 0; graph < 2; graph++) {
                unsigned flags = TG_RETAIN_GRAPH | (graph ? TG_CREATE_GRAPH : 0);
                tg_tensor *gm = NULL, *gr = NULL;
                ck_assert_int_eq(tg_grad(1, &m, &seed, 1, &x, &gm, flags), TG_OK);
                ck_assert_int_eq(tg_grad(1, &r, &seed, 1, &x, &gr, flags), TG_OK);
                ck_assert_msg(same_bytes(gm, gr), "%s mean %d keep %d%s: gradient differs",
                              tg_dtype_name(dt), a, keep, graph ? " (recorded)" : "");
            }
            tg_tensor_free(seed);
            tg_tensor_free(x);
            tg_tape_reset(tape);
        }
    tg_tape_free(tape);
}
END_TEST

static Suite *ops_suite(void)
{
    Suite *s = suite_create("ops");
    TCase *grad = tcase_create("gradcheck");
    tcase_set_timeout(grad, 120);
    tcase_add_loop_test(grad, test_gradcheck_op, 0, N_CASES);
    tcase_add_loop_test(grad, test_create_graph_matches_plain_backward, 0, N_CASES);
    tcase_add_test(grad, test_every_op_has_a_case);
    tcase_add_loop_test(grad, test_unary_gradcheck, 0, N_UNARY);
    tcase_add_loop_test(grad, test_unary_fused_matches_composed, 0, 2 * N_UNARY);
    tcase_add_loop_test(grad, test_binary_gradcheck, 0, N_BINARY);
    tcase_add_loop_test(grad, test_binary_fused_matches_composed, 0, 2 * N_BINARY);
    tcase_add_test(grad, test_every_public_op_has_a_case);
    suite_add_tcase(s, grad);
    TCase *self = tcase_create("gradcheck_self");
    tcase_add_test(self, test_gradcheck_user_swish);
    tcase_add_test(self, test_gradcheck_reports_errors);
    tcase_add_test(self, test_gradcheck_catches_a_wrong_backward);
    suite_add_tcase(s, self);
    TCase *values = tcase_create("values");
    tcase_add_loop_test(values, test_forward_values, 0, 2);
    tcase_add_loop_test(values, test_numerical_stability, 0, 2);
    tcase_add_loop_test(values, test_forward_broadcast_and_helpers, 0, 2);
    tcase_add_test(values, test_edge_sizes);
    tcase_add_test(values, test_empty_with_huge_dims);
    tcase_add_test(values, test_found_bugs);
    tcase_add_loop_test(values, test_reductions_match_torch, 0, 2);
    tcase_add_loop_test(values, test_prod_zeros_and_min_ties, 0, 4);
    tcase_add_loop_test(values, test_matmul_vectors, 0, 2);
    tcase_add_loop_test(values, test_float32_matches_float64, 0, N_CASES);
    tcase_add_loop_test(values, test_unary_float32_and_nan, 0, N_UNARY);
    tcase_add_loop_test(values, test_unary_docs_row, 0, N_UNARY);
    tcase_add_loop_test(values, test_binary_values_and_errors, 0, N_BINARY);
    tcase_add_loop_test(values, test_binary_docs_row, 0, N_BINARY);
    suite_add_tcase(s, values);
    TCase *fast = tcase_create("fast_paths");
    tcase_set_timeout(fast, 120);
    tcase_add_loop_test(fast, test_gemm_small_bits, 0, 2);
    tcase_add_loop_test(fast, test_sum_to_rows_bits, 0, 2);
    tcase_add_loop_test(fast, test_add_sub_rows_bits, 0, 2);
    tcase_add_loop_test(fast, test_mean_matches_sum_scaled, 0, 2);
    suite_add_tcase(s, fast);
    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, test_op_errors);
    tcase_add_test(errors, test_reduction_errors);
    tcase_add_loop_test(errors, test_unary_errors, 0, N_UNARY);
    suite_add_tcase(s, errors);
    return s;
}

TG_CHECK_MAIN(ops_suite)
