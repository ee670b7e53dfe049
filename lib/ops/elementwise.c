/* elementwise.c - binary ops with numpy broadcasting (add ... minimum, where,
 * comparisons) and ops with a scalar operand. Kernels: kernels/pointwise.c. */
#include <math.h>

#include "kernels/pointwise.h"
#include "ops/ops_internal.h"

/* ---- shared forward plumbing ---- */

static void plan_for(tg__bcast *plan, const tg_node *nd)
{
    bool same = true;
    for (int k = 1; k < nd->n_in && same; k++)
        same = tg__same_shape(nd->in[k], nd->out);
    if (same && tg__same_shape(nd->in[0], nd->out)) {
        // Equal shapes (the common case) are one flat run: no planning needed.
        plan->ndim = 1;
        plan->n_ops = nd->n_in;
        plan->shape[0] = nd->out->numel; // 0 for an empty result: no iteration
        for (int k = 0; k < nd->n_in; k++)
            plan->strides[k][0] = 1;
        return;
    }
    // One operand of the output's shape and one matching its last dims (a
    // bias row): rows of the second repeat, with no general planning.
    if (nd->n_in == 2 && nd->out->numel > 0) {
        int full = tg__same_shape(nd->in[0], nd->out) ? 0 : same ? 1 : -1;
        const tg_tensor *row = full >= 0 ? nd->in[1 - full] : NULL;
        int lead = row ? nd->out->ndim - row->ndim : -1;
        bool suffix = lead >= 0 && row->numel > 0;
        for (int d = 0; suffix && d < row->ndim; d++)
            suffix = row->shape[d] == nd->out->shape[lead + d];
        if (suffix) {
            int64_t inner = row->numel, rows = nd->out->numel / inner;
            plan->n_ops = 2;
            plan->ndim = inner == 1 ? 1 : 2;
            plan->shape[0] = rows;
            plan->strides[full][0] = inner == 1 ? 1 : inner;
            plan->strides[1 - full][0] = 0;
            if (inner > 1) {
                plan->shape[1] = inner;
                plan->strides[0][1] = plan->strides[1][1] = 1;
            }
            return;
        }
    }
    int nds[3];
    const int64_t *shapes[3];
    for (int k = 0; k < nd->n_in; k++) {
        nds[k] = nd->in[k]->ndim;
        shapes[k] = nd->in[k]->shape;
    }
    tg__bcast_plan(plan, nd->out->ndim, nd->out->shape, nd->n_in, nds, shapes);
}

/* a + b or a - b for a of the output's shape and b of it too or a row of its
 * last dims (a layer's bias, a target), small: the kernel's one rounding per
 * element, as a loop here, because planning the broadcast and dispatching on
 * the op cost more than a small network's additions. false: not this case. */
#define ADD_SUB_ROWS(T)                                                            \
    const T *restrict x = a->data, *restrict y = b->data;                          \
    T *restrict o = out->data;                                                     \
    const int64_t n = out->numel;                                                  \
    if (K == 1) { /* a scalar operand: one flat loop */                            \
        const T y0 = y[0];                                                         \
        if (op == TG__BIN_ADD)                                                     \
            for (int64_t i = 0; i < n; i++)                                        \
                o[i] = x[i] + y0;                                                  \
        else                                                                       \
            for (int64_t i = 0; i < n; i++)                                        \
                o[i] = x[i] - y0;                                                  \
    } else if (op == TG__BIN_ADD) {                                                \
        for (int64_t r = 0; r < n; r += K)                                         \
            for (int64_t k = 0; k < K; k++)                                        \
                o[r + k] = x[r + k] + y[k];                                        \
    } else {                                                                       \
        for (int64_t r = 0; r < n; r += K)                                         \
            for (int64_t k = 0; k < K; k++)                                        \
                o[r + k] = x[r + k] - y[k];                                        \
    }

static bool small_add_sub(tg_node *nd, tg__binop op)
{
    const tg_tensor *a = nd->in[0], *b = nd->in[1];
    tg_tensor *out = nd->out;
    if ((op != TG__BIN_ADD && op != TG__BIN_SUB) || out->numel > 4096 || out->numel == 0 ||
        !tg__same_shape(a, out))
        return false;
    int64_t K;
    if (tg__same_shape(b, out)) {
        K = out->numel; // one flat run
    } else {
        int lead = out->ndim - b->ndim;
        if (lead < 0 || b->numel == 0)
            return false;
        for (int d = 0; d < b->ndim; d++)
            if (b->shape[d] != out->shape[lead + d])
                return false;
        K = b->numel;
    }
    if (out->dtype == TG_F32) {
        ADD_SUB_ROWS(float)
    } else {
        ADD_SUB_ROWS(double)
    }
    return true;
}

static tg_status binary_forward(tg_node *nd, tg__binop op)
{
    if (small_add_sub(nd, op))
        return TG_OK;
    tg__bcast plan;
    plan_for(&plan, nd);
    if (nd->out->dtype == TG_F32)
        tg__binary_f32(op, &plan, nd->in[0]->data, nd->in[1]->data, nd->out->data);
    else
        tg__binary_f64(op, &plan, nd->in[0]->data, nd->in[1]->data, nd->out->data);
    return TG_OK;
}

static tg_tensor *binary(const tg_op_def *def, tg_tensor *a, tg_tensor *b)
{
    tg_tensor *in[2] = {a, b};
    return tg__apply(def, 2, in, NULL);
}

static tg_tensor *with_scalar(const tg_op_def *def, tg_tensor *x, double c)
{
    tg__scalar_params p = {c, 0};
    return tg__apply(def, 1, &x, &p);
}

/* compare's parameter: which comparison (a tg__binop). */
typedef struct compare_params {
    tg__binop op;
} compare_params;

#define NEED(i) tg__needs_grad(nd, i)

/* Tangent rules: each input's term is the backward rule of that input at
 * g = its tangent (elementwise, so each Jacobian is diagonal over the
 * broadcast shape); TERM adds one when the tangent is not zero. */
#define TERM(i, expr)                                                              \
    do {                                                                           \
        tg_tensor *t = tin[i];                                                     \
        if (t && tg__tangent_acc(&acc, (expr)) != TG_OK)                           \
            return tg_last_status();                                               \
    } while (0)

/* ---- add, sub, mul, div ---- */

static tg_status add_forward(tg_node *nd) { return binary_forward(nd, TG__BIN_ADD); }
static tg_status add_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    // d(a+b) = dout for both; the engine sums it back over broadcast dims.
    din[0] = NEED(0) ? dout : NULL;
    din[1] = NEED(1) ? dout : NULL;
    return TG_OK;
}
static tg_status add_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    tg_tensor *acc = NULL;
    TERM(0, t);
    TERM(1, t);
    *tout = acc;
    return TG_OK;
}
const tg_op_def tg__def_add = {TG__OP_NAME(add), .n_in = 2, .differentiable = true,
                               .shape = tg__shape_broadcast, .forward = add_forward,
                               .backward = add_backward, .tangent = add_tangent};

static tg_status sub_forward(tg_node *nd) { return binary_forward(nd, TG__BIN_SUB); }
static tg_status sub_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    din[0] = NEED(0) ? dout : NULL;
    din[1] = NEED(1) ? tg_neg(dout) : NULL;
    return NEED(1) && !din[1] ? tg_last_status() : TG_OK;
}
static tg_status sub_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    tg_tensor *acc = NULL;
    if (tin[0] && tin[1])
        return tg__tangent_is(tout, tg_sub(tin[0], tin[1]));
    TERM(0, t);
    TERM(1, tg_neg(t));
    *tout = acc;
    return TG_OK;
}
const tg_op_def tg__def_sub = {TG__OP_NAME(sub), .n_in = 2, .differentiable = true,
                               .shape = tg__shape_broadcast, .forward = sub_forward,
                               .backward = sub_backward, .tangent = sub_tangent};

static tg_status mul_forward(tg_node *nd) { return binary_forward(nd, TG__BIN_MUL); }
static tg_status mul_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    tg_tensor *a = nd->in[0], *b = nd->in[1];
    if (NEED(0) && !(din[0] = tg_mul(dout, b)))
        return tg_last_status();
    if (NEED(1) && !(din[1] = tg_mul(dout, a)))
        return tg_last_status();
    return TG_OK;
}
static tg_status mul_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    tg_tensor *acc = NULL;
    TERM(0, tg_mul(t, nd->in[1]));
    TERM(1, tg_mul(nd->in[0], t));
    *tout = acc;
    return TG_OK;
}
const tg_op_def tg__def_mul = {TG__OP_NAME(mul), .n_in = 2, .differentiable = true,
                               .shape = tg__shape_broadcast, .forward = mul_forward,
                               .backward = mul_backward, .tangent = mul_tangent};

static tg_status div_forward(tg_node *nd) { return binary_forward(nd, TG__BIN_DIV); }
static tg_status div_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    // d(a/b)/da = 1/b; d(a/b)/db = -a/b^2 = -out/b.
    tg_tensor *b = nd->in[1];
    if (NEED(0) && !(din[0] = tg_div(dout, b)))
        return tg_last_status();
    if (NEED(1) && !(din[1] = tg_neg(tg_div(tg_mul(dout, nd->out), b))))
        return tg_last_status();
    return TG_OK;
}
static tg_status div_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    // d(a/b) = (ta - tb a/b) / b
    tg_tensor *acc = NULL, *b = nd->in[1];
    TERM(0, t);
    TERM(1, tg_neg(tg_mul(t, nd->out)));
    return tg__tangent_is(tout, tg_div(acc, b));
}
const tg_op_def tg__def_div = {TG__OP_NAME(div), .n_in = 2, .differentiable = true,
                               .shape = tg__shape_broadcast, .forward = div_forward,
                               .backward = div_backward, .tangent = div_tangent};

/* ---- pow ---- */

static tg_status pow_forward(tg_node *nd) { return binary_forward(nd, TG__BIN_POW); }
/* d(a^b)/da and d(a^b)/db (see pow_backward), given the constants 1 and 0. */
static tg_tensor *pow_da(tg_node *nd, tg_tensor *one, tg_tensor *zero)
{
    tg_tensor *a = nd->in[0], *b = nd->in[1];
    tg_tensor *safe_a = tg_where(tg_eq(b, zero), one, a);
    return tg_mul(b, tg_pow(safe_a, tg_sub_scalar(b, 1.0)));
}
static tg_tensor *pow_db(tg_node *nd, tg_tensor *one, tg_tensor *zero)
{
    tg_tensor *a = nd->in[0];
    tg_tensor *safe_a = tg_where(tg_eq(a, zero), one, a);
    return tg_mul(nd->out, tg_log(safe_a));
}
static tg_status pow_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    // d(a^b)/da = b a^(b-1); d(a^b)/db = a^b ln a. Where b == 0 the first is 0
    // (not 0 * 0^-1), and where a == 0 the second is 0 (not 0 * ln 0): the
    // base is swapped for 1 there, so neither the value nor any higher
    // derivative through it meets an infinity.
    tg_tensor *one = tg_scalar(dout->dtype, 1.0), *zero = tg_scalar(dout->dtype, 0.0);
    if (NEED(0) && !(din[0] = tg_mul(dout, pow_da(nd, one, zero))))
        return tg_last_status();
    if (NEED(1) && !(din[1] = tg_mul(dout, pow_db(nd, one, zero))))
        return tg_last_status();
    return TG_OK;
}
static tg_status pow_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    tg_tensor *acc = NULL, *one = tg_scalar(nd->out->dtype, 1.0);
    tg_tensor *zero = tg_scalar(nd->out->dtype, 0.0);
    TERM(0, tg_mul(t, pow_da(nd, one, zero)));
    TERM(1, tg_mul(t, pow_db(nd, one, zero)));
    *tout = acc;
    return TG_OK;
}
const tg_op_def tg__def_pow = {TG__OP_NAME(pow), .n_in = 2, .differentiable = true,
                               .shape = tg__shape_broadcast, .forward = pow_forward,
                               .backward = pow_backward, .tangent = pow_tangent};

/* ---- maximum, minimum: the mask of the winning side routes the gradient ---- */

static tg_status minmax_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din, bool is_max)
{
    tg_tensor *a = nd->in[0], *b = nd->in[1];
    // Ties go to a: mask_a = a >= b (max) or a <= b (min), mask_b = 1 - mask_a.
    tg_tensor *mask_a = is_max ? tg_ge(a, b) : tg_le(a, b);
    if (NEED(0) && !(din[0] = tg_mul(dout, mask_a)))
        return tg_last_status();
    if (NEED(1) && !(din[1] = tg_mul(dout, tg_rsub_scalar(mask_a, 1.0))))
        return tg_last_status();
    return TG_OK;
}
static tg_status minmax_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    tg_tensor *a = nd->in[0], *b = nd->in[1], *acc = NULL;
    tg_tensor *mask_a = nd->def == &tg__def_maximum ? tg_ge(a, b) : tg_le(a, b);
    TERM(0, tg_mul(t, mask_a));
    TERM(1, tg_mul(t, tg_rsub_scalar(mask_a, 1.0)));
    *tout = acc;
    return TG_OK;
}
static tg_status maximum_forward(tg_node *nd) { return binary_forward(nd, TG__BIN_MAX); }
static tg_status maximum_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    return minmax_backward(nd, dout, din, true);
}
const tg_op_def tg__def_maximum = {TG__OP_NAME(maximum), .n_in = 2, .differentiable = true,
                                   .shape = tg__shape_broadcast, .forward = maximum_forward,
                                   .backward = maximum_backward, .tangent = minmax_tangent};
static tg_status minimum_forward(tg_node *nd) { return binary_forward(nd, TG__BIN_MIN); }
static tg_status minimum_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    return minmax_backward(nd, dout, din, false);
}
const tg_op_def tg__def_minimum = {TG__OP_NAME(minimum), .n_in = 2, .differentiable = true,
                                   .shape = tg__shape_broadcast, .forward = minimum_forward,
                                   .backward = minimum_backward, .tangent = minmax_tangent};

/* ---- where ---- */

static tg_status where_forward(tg_node *nd)
{
    tg__bcast plan;
    plan_for(&plan, nd);
    if (nd->out->dtype == TG_F32)
        tg__where_f32(&plan, nd->in[0]->data, nd->in[1]->data, nd->in[2]->data, nd->out->data);
    else
        tg__where_f64(&plan, nd->in[0]->data, nd->in[1]->data, nd->in[2]->data, nd->out->data);
    return TG_OK;
}
static tg_status where_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    tg_tensor *cond = nd->in[0];
    tg_tensor *zero = tg_scalar(dout->dtype, 0.0);
    if (NEED(0))
        return tg__fail(TG_ESTATE, "tg_where: the condition cannot take a gradient; detach it");
    if (NEED(1) && !(din[1] = tg_where(cond, dout, zero)))
        return tg_last_status();
    if (NEED(2) && !(din[2] = tg_where(cond, zero, dout)))
        return tg_last_status();
    return TG_OK;
}
static tg_status where_shape(const char *fn, tg_tensor *const *in, int n_in,
                             const void *p, int *ndim, int64_t *shape)
{
    if (in[0]->requires_grad && tg_grad_enabled())
        return tg__fail(TG_EINVAL, "%s: the condition requires grad; pass a detached mask "
                                   "(tg_detach) since where has no gradient for it", fn);
    return tg__shape_broadcast(fn, in, n_in, p, ndim, shape);
}
static tg_status where_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    // The condition is piecewise constant: its tangent contributes nothing.
    tg_tensor *zero = tg_scalar(nd->out->dtype, 0.0);
    if (!tin[1] && !tin[2])
        return tg__tangent_is(tout, tg_mul_scalar(tin[0], 0.0));
    return tg__tangent_is(tout, tg_where(nd->in[0], tin[1] ? tin[1] : zero,
                                         tin[2] ? tin[2] : zero));
}
const tg_op_def tg__def_where = {TG__OP_NAME(where), .n_in = 3, .differentiable = true,
                                 .shape = where_shape, .forward = where_forward,
                                 .backward = where_backward, .tangent = where_tangent};

tg_tensor *tg_where(tg_tensor *cond, tg_tensor *a, tg_tensor *b)
{
    tg_tensor *in[3] = {cond, a, b};
    return tg__apply(&tg__def_where, 3, in, NULL);
}

/* ---- comparisons (not differentiable: results never require grad) ---- */

static tg_status compare_forward(tg_node *nd) { return binary_forward(nd, TG__PARAMS(nd, compare_params)->op); }
static tg_status no_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    return tg__fail(TG_ESTATE, "%s has no gradient", tg__node_op_name(nd));
}
const tg_op_def tg__def_compare = {TG__OP_NAME(compare), .n_in = 2,
                                   .params_size = sizeof(compare_params),
                                   .shape = tg__shape_broadcast, .forward = compare_forward,
                                   .backward = no_backward};

static tg_tensor *compare(tg__binop op, tg_tensor *a, tg_tensor *b)
{
    tg_tensor *in[2] = {a, b};
    compare_params p = {op};
    return tg__apply(&tg__def_compare, 2, in, &p);
}

tg_tensor *tg_gt(tg_tensor *a, tg_tensor *b) { TG__API_CALL("tg_gt", compare(TG__BIN_GT, a, b)); }
tg_tensor *tg_ge(tg_tensor *a, tg_tensor *b) { TG__API_CALL("tg_ge", compare(TG__BIN_GE, a, b)); }
tg_tensor *tg_lt(tg_tensor *a, tg_tensor *b) { TG__API_CALL("tg_lt", compare(TG__BIN_LT, a, b)); }
tg_tensor *tg_le(tg_tensor *a, tg_tensor *b) { TG__API_CALL("tg_le", compare(TG__BIN_LE, a, b)); }
tg_tensor *tg_eq(tg_tensor *a, tg_tensor *b) { TG__API_CALL("tg_eq", compare(TG__BIN_EQ, a, b)); }

tg_tensor *tg_add(tg_tensor *a, tg_tensor *b) { return binary(&tg__def_add, a, b); }
tg_tensor *tg_sub(tg_tensor *a, tg_tensor *b) { return binary(&tg__def_sub, a, b); }
tg_tensor *tg_mul(tg_tensor *a, tg_tensor *b) { return binary(&tg__def_mul, a, b); }
tg_tensor *tg_div(tg_tensor *a, tg_tensor *b) { return binary(&tg__def_div, a, b); }
tg_tensor *tg_pow(tg_tensor *a, tg_tensor *b) { return binary(&tg__def_pow, a, b); }
tg_tensor *tg_maximum(tg_tensor *a, tg_tensor *b) { return binary(&tg__def_maximum, a, b); }
tg_tensor *tg_minimum(tg_tensor *a, tg_tensor *b) { return binary(&tg__def_minimum, a, b); }

/* ---- scalar operand ---- */

static tg_status add_scalar_forward(tg_node *nd) { return tg__map_forward(nd, TG__UN_ADD_SCALAR); }
static tg_status add_scalar_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    din[0] = dout;
    return TG_OK;
}
const tg_op_def tg__def_add_scalar = {TG__OP_NAME(add_scalar), .n_in = 1, .differentiable = true,
                                      .params_size = sizeof(tg__scalar_params),
                                      .shape = tg__shape_same, .forward = add_scalar_forward,
                                      .backward = add_scalar_backward,
                                      .tangent = tg__tangent_symmetric};

static tg_status mul_scalar_forward(tg_node *nd) { return tg__map_forward(nd, TG__UN_MUL_SCALAR); }
static tg_status mul_scalar_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    din[0] = tg_mul_scalar(dout, TG__PARAMS(nd, tg__scalar_params)->a);
    return din[0] ? TG_OK : tg_last_status();
}
/* A tape tensor of x's shape and dtype for a fused gradient. */
static tg_tensor *grad_like(const tg_tensor *x, const char *fn)
{
    return tg__tape_tensor(fn, x->dtype, x->ndim, x->shape, false);
}
static tg_status mul_scalar_fused(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    tg_tensor *dx = grad_like(nd->in[0], "tg_mul_scalar");
    if (!dx)
        return tg_last_status();
    double c = TG__PARAMS(nd, tg__scalar_params)->a;
    if (dx->dtype == TG_F32)
        tg__unary_f32(TG__UN_MUL_SCALAR, dout->data, dx->data, dx->numel, c, 0);
    else
        tg__unary_f64(TG__UN_MUL_SCALAR, dout->data, dx->data, dx->numel, c, 0);
    din[0] = dx;
    return TG_OK;
}
const tg_op_def tg__def_mul_scalar = {TG__OP_NAME(mul_scalar), .n_in = 1, .differentiable = true,
                                      .params_size = sizeof(tg__scalar_params),
                                      .shape = tg__shape_same, .forward = mul_scalar_forward,
                                      .backward = mul_scalar_backward,
                                      .fused_backward = mul_scalar_fused,
                                      .tangent = tg__tangent_symmetric};

static tg_status pow_scalar_forward(tg_node *nd) { return tg__map_forward(nd, TG__UN_POW_SCALAR); }
static tg_status pow_scalar_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    // d(x^p) = p x^(p-1); p == 1 is the identity and p == 0 a constant.
    double p = TG__PARAMS(nd, tg__scalar_params)->a;
    tg_tensor *x = nd->in[0];
    if (p == 0)
        din[0] = tg_full_like(x, 0.0);
    else if (p == 1)
        din[0] = dout;
    else if (p == 2)
        din[0] = tg_mul(dout, tg_mul_scalar(x, 2.0));
    else
        din[0] = tg_mul(dout, tg_mul_scalar(tg_pow_scalar(x, p - 1), p));
    return din[0] ? TG_OK : tg_last_status();
}
static tg_status pow_scalar_fused(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    double p = TG__PARAMS(nd, tg__scalar_params)->a;
    tg_tensor *x = nd->in[0];
    if (p == 0 || p == 1)
        return pow_scalar_backward(nd, dout, din); // no arithmetic to fuse
    tg_tensor *dx = grad_like(x, "tg_pow_scalar");
    if (!dx)
        return tg_last_status();
    if (dx->dtype == TG_F32)
        tg__pow_scalar_grad_f32(dout->data, x->data, dx->data, dx->numel, p);
    else
        tg__pow_scalar_grad_f64(dout->data, x->data, dx->data, dx->numel, p);
    din[0] = dx;
    return TG_OK;
}
const tg_op_def tg__def_pow_scalar = {TG__OP_NAME(pow_scalar), .n_in = 1, .differentiable = true,
                                      .params_size = sizeof(tg__scalar_params),
                                      .shape = tg__shape_same, .forward = pow_scalar_forward,
                                      .backward = pow_scalar_backward,
                                      .fused_backward = pow_scalar_fused,
                                      .tangent = tg__tangent_symmetric};

static tg_tensor *nonfinite_scalar(const char *fn, double c)
{
    return tg__fail_null(TG_EINVAL, "%s: scalar %g is not finite", tg__api_fn(fn), c);
}

tg_tensor *tg_add_scalar(tg_tensor *x, double c)
{
    return isfinite(c) ? with_scalar(&tg__def_add_scalar, x, c) : nonfinite_scalar("tg_add_scalar", c);
}
tg_tensor *tg_sub_scalar(tg_tensor *x, double c)
{
    if (!isfinite(c))
        return nonfinite_scalar("tg_sub_scalar", c);
    TG__API_CALL("tg_sub_scalar", tg_add_scalar(x, -c));
}

/* The composites check their scalar first: a call that fails records nothing. */
tg_tensor *tg_rsub_scalar(tg_tensor *x, double c)
{
    if (!isfinite(c))
        return nonfinite_scalar("tg_rsub_scalar", c);
    TG__API_CALL("tg_rsub_scalar", tg_add_scalar(tg_neg(x), c));
}

tg_tensor *tg_mul_scalar(tg_tensor *x, double c)
{
    return isfinite(c) ? with_scalar(&tg__def_mul_scalar, x, c) : nonfinite_scalar("tg_mul_scalar", c);
}
tg_tensor *tg_div_scalar(tg_tensor *x, double c)
{
    if (c == 0 || !isfinite(c))
        return tg__fail_null(TG_EINVAL, "tg_div_scalar: divisor %g must be finite and nonzero", c);
    TG__API_CALL("tg_div_scalar", tg_mul_scalar(x, 1.0 / c));
}
tg_tensor *tg_rdiv_scalar(tg_tensor *x, double c)
{
    if (!isfinite(c))
        return nonfinite_scalar("tg_rdiv_scalar", c);
    TG__API_CALL("tg_rdiv_scalar", tg_mul_scalar(tg_pow_scalar(x, -1.0), c));
}
tg_tensor *tg_pow_scalar(tg_tensor *x, double p)
{
    return isfinite(p) ? with_scalar(&tg__def_pow_scalar, x, p) : nonfinite_scalar("tg_pow_scalar", p);
}
tg_tensor *tg_gt_scalar(tg_tensor *x, double c)
{
    if (tg__bad_input("tg_gt_scalar", x, 0))
        return NULL;
    TG__API_CALL("tg_gt_scalar", compare(TG__BIN_GT, x, tg_scalar(x->dtype, c)));
}
