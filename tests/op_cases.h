/* op_cases.h - the small functions of tensors that check_ops (gradient
 * checks) and check_jvp (forward mode) both run, one op each, so that both
 * suites exercise the same compositions. Each takes its inputs as x[0],
 * x[1], ... . Included by those two suites only. */
#ifndef TESTS_OP_CASES_H
#define TESTS_OP_CASES_H

#include <tapegrad/tapegrad.h>

static const int AX1[] = {1}, AX02[] = {0, 2}, AXN1[] = {-1};

static tg_tensor *f_add(tg_tensor *const *x) { return tg_add(x[0], x[1]); }
static tg_tensor *f_sub(tg_tensor *const *x) { return tg_sub(x[0], x[1]); }
static tg_tensor *f_mul(tg_tensor *const *x) { return tg_mul(x[0], x[1]); }
static tg_tensor *f_mul_self(tg_tensor *const *x) { return tg_mul(tg_mul(x[0], x[0]), x[0]); }
static tg_tensor *f_div(tg_tensor *const *x) { return tg_div(x[0], x[1]); }
static tg_tensor *f_pow(tg_tensor *const *x) { return tg_pow(x[0], x[1]); }
static tg_tensor *f_maximum(tg_tensor *const *x) { return tg_maximum(x[0], x[1]); }
static tg_tensor *f_minimum(tg_tensor *const *x) { return tg_minimum(x[0], x[1]); }
static tg_tensor *f_where(tg_tensor *const *x)
{
    return tg_where(tg_gt_scalar(tg_detach(x[0]), 0.0), x[1], tg_exp(x[0]));
}
static tg_tensor *f_leaky(tg_tensor *const *x) { return tg_leaky_relu(x[0], 0.1); }
static tg_tensor *f_clamp(tg_tensor *const *x) { return tg_clamp(x[0], -0.5, 0.5); }
static tg_tensor *f_sum_all(tg_tensor *const *x) { return tg_sum(x[0], NULL, 0, false); }
static tg_tensor *f_sum_axes(tg_tensor *const *x) { return tg_sum(x[0], AX02, 2, true); }
static tg_tensor *f_mean(tg_tensor *const *x) { return tg_mean(x[0], AX1, 1, false); }
static tg_tensor *f_max_all(tg_tensor *const *x) { return tg_max(x[0], NULL, 0, false); }
static tg_tensor *f_max_axis(tg_tensor *const *x) { return tg_max(x[0], AXN1, 1, true); }
static tg_tensor *f_lse(tg_tensor *const *x) { return tg_logsumexp(x[0], AX1, 1, false); }
static tg_tensor *f_lse_all(tg_tensor *const *x) { return tg_logsumexp(x[0], NULL, 0, true); }
static tg_tensor *f_matmul(tg_tensor *const *x) { return tg_matmul(x[0], x[1]); }
static tg_tensor *f_reshape(tg_tensor *const *x)
{
    return tg_mul(tg_reshape(x[0], TG_SHAPE(3, -1)), tg_flatten(x[1], 1));
}
static tg_tensor *f_permute(tg_tensor *const *x)
{
    return tg_transpose(tg_permute(x[0], (const int[]){2, 0, 1}), 0, 2);
}
static tg_tensor *f_expand(tg_tensor *const *x) { return tg_expand(x[0], TG_SHAPE(2, 3, 4)); }
static tg_tensor *f_slice(tg_tensor *const *x) { return tg_slice(x[0], 1, -4, 5, 2); }
static tg_tensor *f_concat(tg_tensor *const *x) { return tg_concat(3, x, 1); }
static tg_tensor *f_stack(tg_tensor *const *x)
{
    return tg_stack(2, (tg_tensor *[]){x[0], tg_exp(x[1])}, 1);
}
static tg_tensor *f_index_select(tg_tensor *const *x)
{
    return tg_index_select(x[0], 0, 4, (const int64_t[]){2, 0, 2, 1});
}
static tg_tensor *f_gather(tg_tensor *const *x)
{
    return tg_gather(x[0], 1, TG_SHAPE(3, 2), (const int64_t[]){0, 3, 1, 1, 3, 2});
}
static tg_tensor *f_softmax(tg_tensor *const *x) { return tg_softmax(x[0], 1); }
static tg_tensor *f_log_softmax(tg_tensor *const *x) { return tg_log_softmax(x[0], 0); }
static tg_tensor *f_softmax0(tg_tensor *const *x) { return tg_softmax(x[0], 0); }
static tg_tensor *f_log_softmax_last(tg_tensor *const *x) { return tg_log_softmax(x[0], -1); }
static tg_tensor *f_min_all(tg_tensor *const *x) { return tg_min(x[0], NULL, 0, false); }
static tg_tensor *f_prod_axes(tg_tensor *const *x) { return tg_prod(x[0], AX02, 2, false); }
static tg_tensor *f_var(tg_tensor *const *x) { return tg_var(x[0], AX1, 1, 1, false); }
static tg_tensor *f_var_all(tg_tensor *const *x) { return tg_var(x[0], NULL, 0, 0, true); }
static tg_tensor *f_cumsum(tg_tensor *const *x) { return tg_cumsum(x[0], 1); }

#endif
