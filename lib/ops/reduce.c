/* reduce.c - sum, mean, max, min, prod, var, std and logsumexp over a set of
 * axes, and argmax/argmin along one axis. Kernels: kernels/reduce.c. */
#include <math.h>
#include <string.h>

#include "kernels/layout.h"
#include "kernels/pointwise.h"
#include "kernels/reduce.h"
#include "ops/ops_internal.h"

/* Every reduction's parameters: the reduced axes as a bit mask, keepdim, and
 * (max, min) each group's winner, found by forward. */
typedef struct reduce_params {
    unsigned mask;
    bool keepdim;
    const int64_t *argmax;
} reduce_params;

#define MASK(nd) (TG__PARAMS(nd, reduce_params)->mask)

static tg_status axes_mask(const char *fn, const tg_tensor *x, const int *axes, int n_axes,
                           unsigned *mask)
{
    if (n_axes < 0 || (n_axes > 0 && !axes))
        return tg__fail(TG_EINVAL, "%s: axes is NULL or n_axes %d is negative", fn, n_axes);
    if (n_axes == 0) {
        *mask = (1u << x->ndim) - 1;
        return TG_OK;
    }
    unsigned m = 0;
    for (int i = 0; i < n_axes; i++) {
        int a;
        if (x->ndim == 0 || tg__norm_axis(fn, axes[i], x->ndim, &a) != TG_OK)
            return tg__fail(TG_EINVAL, "%s: axis %d out of range for %d dims", fn, axes[i],
                            x->ndim);
        if (m & (1u << a))
            return tg__fail(TG_EINVAL, "%s: axis %d given twice", fn, axes[i]);
        m |= 1u << a;
    }
    *mask = m;
    return TG_OK;
}

/* The output shape of a reduction; with keep, reduced axes stay as 1. */
static int reduced_shape(const tg_tensor *x, unsigned mask, bool keep, int64_t *shape)
{
    int n = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (!(mask & (1u << d)))
            shape[n++] = x->shape[d];
        else if (keep)
            shape[n++] = 1;
    }
    return n;
}

static tg_status reduce_shape(const char *fn, tg_tensor *const *in, int n_in,
                              const void *params, int *ndim, int64_t *shape)
{
    const reduce_params *p = params;
    *ndim = reduced_shape(in[0], p->mask, p->keepdim, shape);
    return TG_OK;
}

/* dout spread back over x: reshape to the keepdim shape, then expand. */
static tg_tensor *spread(tg_node *nd, tg_tensor *t)
{
    int64_t keep[TG_MAX_DIMS];
    tg_tensor *x = nd->in[0];
    int n = reduced_shape(x, MASK(nd), true, keep);
    return tg_expand(tg_reshape(t, n, keep), x->ndim, x->shape);
}

static tg_tensor *reduce(const tg_op_def *def, const char *fn, tg_tensor *x, const int *axes, int n_axes,
                         bool keepdim)
{
    if (tg__bad_input(fn, x, 0))
        return NULL;
    unsigned mask = 0;
    if (axes_mask(fn, x, axes, n_axes, &mask) != TG_OK)
        return NULL;
    reduce_params p = {mask, keepdim, NULL};
    return tg__apply(def, 1, &x, &p);
}

/* ---- sum ---- */

static tg_status sum_forward(tg_node *nd)
{
    tg_tensor *x = nd->in[0];
    unsigned mask = MASK(nd);
    if (x->dtype == TG_F32)
        tg__reduce_sum_f32(x->data, x->ndim, x->shape, mask, nd->out->data);
    else
        tg__reduce_sum_f64(x->data, x->ndim, x->shape, mask, nd->out->data);
    return TG_OK;
}
static tg_status sum_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    din[0] = spread(nd, dout);
    return din[0] ? TG_OK : tg_last_status();
}
/* Linear: the tangent is the same sum of the tangent. */
static tg_status sum_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    return tg__tangent_is(tout, tg__apply(&tg__def_sum, 1, tin, nd->params));
}

/* The same spread as one copy into a tensor of x's shape: dout is contiguous
 * over the kept dims, so its stride along a reduced dim is 0. */
static tg_status sum_fused(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    tg_tensor *x = nd->in[0];
    tg_tensor *dx = tg__tape_tensor("tg_sum", x->dtype, x->ndim, x->shape, false);
    if (!dx)
        return tg_last_status();
    size_t es = tg_dtype_size(x->dtype);
    if (dout->numel == 1) { // every axis reduced (or only 1s kept): a fill
        if (x->dtype == TG_F32)
            for (int64_t i = 0; i < dx->numel; i++)
                ((float *)dx->data)[i] = *(const float *)dout->data;
        else
            for (int64_t i = 0; i < dx->numel; i++)
                ((double *)dx->data)[i] = *(const double *)dout->data;
    } else {
        unsigned mask = MASK(nd);
        int64_t src[TG_MAX_DIMS], stride = 1;
        for (int d = x->ndim - 1; d >= 0; d--) {
            bool reduced = mask & (1u << d);
            src[d] = reduced ? 0 : stride;
            stride *= reduced ? 1 : x->shape[d];
        }
        tg__strided_copy(es, x->ndim, x->shape, dout->data, src, dx->data, dx->strides);
    }
    din[0] = dx;
    return TG_OK;
}
const tg_op_def tg__def_sum = {TG__OP_NAME(sum), .n_in = 1, .differentiable = true,
                               .params_size = sizeof(reduce_params), .shape = reduce_shape,
                               .forward = sum_forward, .backward = sum_backward,
                               .fused_backward = sum_fused, .tangent = sum_tangent};

tg_tensor *tg_sum(tg_tensor *x, const int *axes, int n_axes, bool keepdim)
{
    return reduce(&tg__def_sum, "tg_sum", x, axes, n_axes, keepdim);
}

/* ---- mean: the sum scaled by 1/n, one node ----
 * The bytes of mul_scalar(sum(x), 1/n), the composition it replaces (one
 * node instead of two: a small network's loss is a mean, and each node costs
 * a build and a visit): the sum kernel, then the mul_scalar kernel with the
 * same double 1/n; backward scales dout by it, then spreads as sum does. */

/* 1/n, n the number of elements averaged into each output (> 0: tg_mean
 * refuses empty groups). */
static double mean_scale(const tg_node *nd)
{
    const tg_tensor *x = nd->in[0];
    int64_t count = 1;
    for (int d = 0; d < x->ndim; d++)
        if (MASK(nd) & (1u << d))
            count *= x->shape[d];
    return 1.0 / (double)count;
}

static void scale(tg_dtype dtype, const void *x, void *y, int64_t n, double c)
{
    if (dtype == TG_F32)
        tg__unary_f32(TG__UN_MUL_SCALAR, x, y, n, c, 0);
    else
        tg__unary_f64(TG__UN_MUL_SCALAR, x, y, n, c, 0);
}

static tg_status mean_forward(tg_node *nd)
{
    sum_forward(nd);
    tg_tensor *out = nd->out;
    const double c = mean_scale(nd);
    if (out->numel != 1) // (one output, the usual loss: v * (T)c as the kernel rounds it)
        scale(out->dtype, out->data, out->data, out->numel, c);
    else if (out->dtype == TG_F32)
        *(float *)out->data *= (float)c;
    else
        *(double *)out->data *= c;
    return TG_OK;
}
static tg_status mean_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    din[0] = spread(nd, tg_mul_scalar(dout, mean_scale(nd)));
    return din[0] ? TG_OK : tg_last_status();
}
static tg_status mean_fused(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    const double c = mean_scale(nd);
    if (dout->numel != 1) {
        tg_tensor *g = tg__tape_tensor("tg_mean", dout->dtype, dout->ndim, dout->shape, false);
        if (!g)
            return tg_last_status();
        scale(dout->dtype, dout->data, g->data, dout->numel, c);
        return sum_fused(nd, g, din);
    }
    // One output (the usual loss): dout times 1/n, rounded as the mul_scalar
    // kernel rounds it (v * (T)c), filled over x's shape as sum_fused does.
    tg_tensor *x = nd->in[0];
    tg_tensor *dx = tg__tape_tensor("tg_mean", x->dtype, x->ndim, x->shape, false);
    if (!dx)
        return tg_last_status();
    if (x->dtype == TG_F32) {
        const float v = *(const float *)dout->data * (float)c;
        for (int64_t i = 0; i < dx->numel; i++)
            ((float *)dx->data)[i] = v;
    } else {
        const double v = *(const double *)dout->data * c;
        for (int64_t i = 0; i < dx->numel; i++)
            ((double *)dx->data)[i] = v;
    }
    din[0] = dx;
    return TG_OK;
}
static tg_status mean_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    return tg__tangent_is(tout, tg__apply(&tg__def_mean, 1, tin, nd->params));
}
const tg_op_def tg__def_mean = {TG__OP_NAME(mean), .n_in = 1, .differentiable = true,
                                .params_size = sizeof(reduce_params), .shape = reduce_shape,
                                .forward = mean_forward, .backward = mean_backward,
                                .fused_backward = mean_fused, .tangent = mean_tangent};

tg_tensor *tg_mean(tg_tensor *x, const int *axes, int n_axes, bool keepdim)
{
    if (tg__bad_input("tg_mean", x, 0))
        return NULL;
    // The count is known before anything is recorded, so an empty mean fails cleanly.
    unsigned mask = 0;
    if (axes_mask("tg_mean", x, axes, n_axes, &mask) != TG_OK)
        return NULL;
    int64_t count = 1;
    for (int d = 0; d < x->ndim; d++)
        if (mask & (1u << d))
            count *= x->shape[d];
    if (count == 0) {
        char shape[TG__SHAPE_STR];
        return tg__fail_null(TG_ESHAPE, "tg_mean: no elements to average (input %s)",
                             tg__shape_str(shape, x->ndim, x->shape));
    }
    reduce_params p = {mask, keepdim, NULL};
    return tg__apply(&tg__def_mean, 1, &x, &p);
}

/* ---- max and min: the forward keeps each group's winner; backward scatters
 * to it ---- */

static tg_status extreme_forward(tg_node *nd, bool is_min)
{
    const char *fn = is_min ? "tg_min" : "tg_max";
    tg_tensor *x = nd->in[0];
    // No groups (an empty result) is fine; an empty group has no extreme.
    if (x->numel == 0 && nd->out->numel > 0)
        return tg__fail(TG_ESHAPE, "%s: cannot take the %s of an empty tensor", fn,
                        is_min ? "minimum" : "maximum");
    if (nd->out->numel == 0)
        return TG_OK;
    int64_t *arg = tg__tape_alloc(nd->out->tape, fn, (size_t)nd->out->numel * sizeof *arg);
    if (!arg)
        return TG_ENOMEM;
    unsigned mask = MASK(nd);
    if (x->dtype == TG_F32)
        (is_min ? tg__reduce_min_f32 : tg__reduce_max_f32)(x->data, x->ndim, x->shape, mask,
                                                           nd->out->data, arg);
    else
        (is_min ? tg__reduce_min_f64 : tg__reduce_max_f64)(x->data, x->ndim, x->shape, mask,
                                                           nd->out->data, arg);
    TG__PARAMS(nd, reduce_params)->argmax = arg;
    return TG_OK;
}
static tg_status max_forward(tg_node *nd) { return extreme_forward(nd, false); }
static tg_status min_forward(tg_node *nd) { return extreme_forward(nd, true); }
static tg_status max_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    tg_tensor *x = nd->in[0];
    din[0] = tg__put_add(dout, nd->out->numel, TG__PARAMS(nd, reduce_params)->argmax, x->ndim,
                         x->shape);
    return din[0] ? TG_OK : tg_last_status();
}
/* The tangent at each group's winner (piecewise linear, like the gradient);
 * min's winners are its argmins, kept in the same place. */
static tg_status max_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    tg_tensor *y = nd->out;
    if (y->numel == 0)
        return tg__tangent_is(tout, tg_full_like(y, 0.0));
    return tg__tangent_is(tout, tg__take(tin[0], y->numel, TG__PARAMS(nd, reduce_params)->argmax,
                                         y->ndim, y->shape));
}
const tg_op_def tg__def_max = {TG__OP_NAME(max), .n_in = 1, .differentiable = true,
                               .params_size = sizeof(reduce_params), .shape = reduce_shape,
                               .forward = max_forward, .backward = max_backward,
                               .tangent = max_tangent};
const tg_op_def tg__def_min = {TG__OP_NAME(min), .n_in = 1, .differentiable = true,
                               .params_size = sizeof(reduce_params), .shape = reduce_shape,
                               .forward = min_forward, .backward = max_backward,
                               .tangent = max_tangent};

tg_tensor *tg_max(tg_tensor *x, const int *axes, int n_axes, bool keepdim)
{
    return reduce(&tg__def_max, "tg_max", x, axes, n_axes, keepdim);
}

tg_tensor *tg_min(tg_tensor *x, const int *axes, int n_axes, bool keepdim)
{
    return reduce(&tg__def_min, "tg_min", x, axes, n_axes, keepdim);
}

/* ---- prod ---- */

static tg_status prod_forward(tg_node *nd)
{
    tg_tensor *x = nd->in[0], *out = nd->out;
    if (out->numel == 0)
        return TG_OK;
    double *acc = tg__tape_alloc(out->tape, "tg_prod", (size_t)out->numel * sizeof *acc);
    if (!acc)
        return TG_ENOMEM;
    if (x->dtype == TG_F32)
        tg__reduce_prod_f32(x->data, x->ndim, x->shape, MASK(nd), out->data, acc);
    else
        tg__reduce_prod_f64(x->data, x->ndim, x->shape, MASK(nd), out->data, acc);
    return TG_OK;
}

static tg_status prod_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    // d prod / dx_i is the product of the other elements of x_i's group. With
    // no zero in x that is y / x_i (as PyTorch computes it). With zeros, ops
    // that stay right: move the reduced axes last as one axis of n, (m, n);
    // spread each row to (m, n, n) with the diagonal replaced by 1; the product
    // over the last axis is then "all but x_i", and prod's own backward handles
    // the next order the same way (n times the memory of x, only with zeros).
    tg_tensor *x = nd->in[0];
    unsigned mask = MASK(nd);
    bool zero = false;
    for (int64_t i = 0; i < x->numel && !zero; i++)
        zero = tg__get(x, i) == 0;
    if (!zero) {
        din[0] = tg_div(tg_mul(spread(nd, dout), spread(nd, nd->out)), x);
        return din[0] ? TG_OK : tg_last_status();
    }
    int perm[TG_MAX_DIMS], inv[TG_MAX_DIMS], np = 0;
    int64_t pshape[TG_MAX_DIMS], m = 1, n = 1;
    for (int pass = 0; pass < 2; pass++)
        for (int d = 0; d < x->ndim; d++)
            if (((mask >> d) & 1) == (unsigned)pass) {
                inv[d] = np;
                pshape[np] = x->shape[d];
                perm[np++] = d;
                *(pass ? &n : &m) *= x->shape[d];
            }
    bool moved = false;
    for (int d = 0; d < x->ndim; d++)
        moved |= perm[d] != d;
    tg_tensor *xp = moved ? tg_permute(x, perm) : x;
    tg_tensor *eye = tg__tape_tensor("tg_prod", x->dtype, 2, (const int64_t[]){n, n}, true);
    if (!eye)
        return tg_last_status();
    for (int64_t i = 0; i < n; i++)
        tg__set(eye, i * n + i, 1.0);
    tg_tensor *rows = tg_expand(tg_reshape(xp, 3, (const int64_t[]){m, 1, n}), 3,
                                (const int64_t[]){m, n, n});
    tg_tensor *others = tg_prod(tg_where(eye, tg_scalar(x->dtype, 1.0), rows),
                                (const int[]){2}, 1, false);
    tg_tensor *d = tg_mul(others, tg_reshape(dout, 2, (const int64_t[]){m, 1}));
    d = tg_reshape(d, x->ndim, pshape);
    din[0] = moved ? tg_permute(d, inv) : d;
    return din[0] ? TG_OK : tg_last_status();
}

/* The same in one pass: per group the product of its nonzero elements and
 * the count of zeros give "all but x_i" (prod / x_i without zeros; the
 * nonzero product at the one zero; 0 with two zeros or more), as PyTorch's
 * fast path computes it. */
static tg_status prod_fused(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    const char *fn = "tg_prod";
    tg_tensor *x = nd->in[0], *out = nd->out;
    unsigned mask = MASK(nd);
    tg_tensor *dx = tg__tape_tensor(fn, x->dtype, x->ndim, x->shape, false);
    if (!dx)
        return tg_last_status();
    if (x->numel == 0) {
        din[0] = dx;
        return TG_OK;
    }
    size_t no = (size_t)out->numel;
    double *nonzero = tg__tape_alloc(out->tape, fn, no * sizeof *nonzero);
    int64_t *zeros = nonzero ? tg__tape_alloc(out->tape, fn, no * sizeof *zeros) : NULL;
    if (!zeros)
        return TG_ENOMEM;
    for (size_t k = 0; k < no; k++) {
        nonzero[k] = 1;
        zeros[k] = 0;
    }
    // Output index of every input element: strides of the kept dims, 0 on reduced ones.
    int64_t ostride[TG_MAX_DIMS], st = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        ostride[d] = (mask >> d) & 1 ? 0 : st;
        st *= (mask >> d) & 1 ? 1 : x->shape[d];
    }
    for (int pass = 0; pass < 2; pass++) {
        int64_t idx[TG_MAX_DIMS] = {0}, o = 0;
        for (int64_t i = 0; i < x->numel; i++) {
            double v = tg__get(x, i);
            if (pass == 0) {
                if (v == 0)
                    zeros[o]++;
                else
                    nonzero[o] *= v;
            } else {
                double others = zeros[o] == 0 ? nonzero[o] / v
                                : zeros[o] == 1 && v == 0 ? nonzero[o] : 0.0;
                tg__set(dx, i, tg__get(dout, o) * others);
            }
            for (int d = x->ndim - 1; d >= 0; d--) {
                o += ostride[d];
                if (++idx[d] < x->shape[d])
                    break;
                o -= ostride[d] * x->shape[d];
                idx[d] = 0;
            }
        }
    }
    din[0] = dx;
    return TG_OK;
}

/* t_out = sum_i t_i prod_{j != i} x_j over each group: the composed gradient
 * at dout = 1 gives the "all but x_i" products (y / x_i, or with zeros the
 * products of the others; built from ops, so the tangent is differentiable
 * to any order too). */
static tg_status prod_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    tg_tensor *others[1] = {NULL};
    tg_tensor *ones = tg_full_like(nd->out, 1.0);
    if (!ones || prod_backward(nd, ones, others) != TG_OK)
        return tg_last_status();
    tg_tensor *w = tg_mul(tin[0], others[0]);
    return tg__tangent_is(tout, w ? tg__apply(&tg__def_sum, 1, &w, nd->params) : NULL);
}

const tg_op_def tg__def_prod = {TG__OP_NAME(prod), .n_in = 1, .differentiable = true,
                                .params_size = sizeof(reduce_params), .shape = reduce_shape,
                                .forward = prod_forward, .backward = prod_backward,
                                .fused_backward = prod_fused, .tangent = prod_tangent};

tg_tensor *tg_prod(tg_tensor *x, const int *axes, int n_axes, bool keepdim)
{
    return reduce(&tg__def_prod, "tg_prod", x, axes, n_axes, keepdim);
}

/* ---- var and std: compositions of mean, sub, square and sum ---- */

static tg_tensor *variance(const char *fn, tg_tensor *x, const int *axes, int n_axes,
                           int correction, bool keepdim, bool take_sqrt)
{
    if (tg__bad_input(fn, x, 0))
        return NULL;
    unsigned mask = 0;
    if (axes_mask(fn, x, axes, n_axes, &mask) != TG_OK)
        return NULL;
    if (correction < 0)
        return tg__fail_null(TG_EINVAL, "%s: correction %d is negative", fn, correction);
    int64_t count = 1;
    for (int d = 0; d < x->ndim; d++)
        if (mask & (1u << d))
            count *= x->shape[d];
    if (count - correction <= 0) {
        char shape[TG__SHAPE_STR];
        return tg__fail_null(TG_ESHAPE, "%s: %lld elements per group with correction %d "
                                        "(input %s): need more than the correction", fn,
                             (long long)count, correction,
                             tg__shape_str(shape, x->ndim, x->shape));
    }
    const char *prev = tg__api_enter(fn);
    tg_tensor *xc = tg_sub(x, tg_mean(x, axes, n_axes, true));
    tg_tensor *v = tg_mul_scalar(tg_sum(tg_square(xc), axes, n_axes, keepdim),
                                 1.0 / (double)(count - correction));
    tg_tensor *out = take_sqrt ? tg_sqrt(v) : v;
    tg__api_leave(prev);
    return out;
}

tg_tensor *tg_var(tg_tensor *x, const int *axes, int n_axes, int correction, bool keepdim)
{
    return variance("tg_var", x, axes, n_axes, correction, keepdim, false);
}

tg_tensor *tg_std(tg_tensor *x, const int *axes, int n_axes, int correction, bool keepdim)
{
    return variance("tg_std", x, axes, n_axes, correction, keepdim, true);
}

/* ---- argmax and argmin: plain functions, no tape ---- */

static tg_status arg_extreme(const char *fn, const tg_tensor *x, int axis, int64_t *out,
                             int64_t n_out, bool is_min)
{
    if (tg__bad_input(fn, x, 0))
        return tg_last_status();
    int a;
    if (tg__norm_axis(fn, axis, x->ndim, &a) != TG_OK)
        return TG_EINVAL;
    int64_t outer = 1, n = x->ndim ? x->shape[a] : 1, inner = 1;
    for (int d = 0; d < a; d++)
        outer *= x->shape[d];
    for (int d = a + 1; d < x->ndim; d++)
        inner *= x->shape[d];
    char s[TG__SHAPE_STR];
    if (n == 0)
        return tg__fail(TG_ESHAPE, "%s: axis %d of %s is empty", fn, axis,
                        tg__shape_str(s, x->ndim, x->shape));
    if (n_out != outer * inner)
        return tg__fail(TG_ESHAPE, "%s: out holds %lld entries, %s over axis %d gives %lld", fn,
                        (long long)n_out, tg__shape_str(s, x->ndim, x->shape), axis,
                        (long long)(outer * inner));
    if (n_out > 0 && !out)
        return tg__fail(TG_EINVAL, "%s: out is NULL", fn);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * n * inner + i, best = 0;
            double bv = tg__get(x, base);
            for (int64_t k = 1; k < n && bv == bv; k++) {
                double v = tg__get(x, base + k * inner);
                if (v != v || (is_min ? v < bv : v > bv)) {
                    bv = v;
                    best = k;
                }
            }
            out[o * inner + i] = best;
        }
    return TG_OK;
}

tg_status tg_argmax(const tg_tensor *x, int axis, int64_t *out, int64_t n_out)
{
    return arg_extreme("tg_argmax", x, axis, out, n_out, false);
}

tg_status tg_argmin(const tg_tensor *x, int axis, int64_t *out, int64_t n_out)
{
    return arg_extreme("tg_argmin", x, axis, out, n_out, true);
}

/* ---- logsumexp = m + ln(sum(e^(x - m))), m the maximum ---- */

static tg_status logsumexp_forward(tg_node *nd)
{
    tg_tensor *x = nd->in[0], *out = nd->out;
    if (x->numel == 0 && out->numel > 0)
        return tg__fail(TG_ESHAPE, "tg_logsumexp: empty tensor");
    if (out->numel == 0)
        return TG_OK;
    unsigned mask = MASK(nd);
    size_t es = tg_dtype_size(x->dtype);
    tg_tape *tape = out->tape;
    const char *fn = "tg_logsumexp";
    void *m = tg__tape_alloc(tape, fn, (size_t)out->numel * es);
    int64_t *argmax = m ? tg__tape_alloc(tape, fn, (size_t)out->numel * sizeof *argmax) : NULL;
    void *shifted = argmax ? tg__tape_alloc(tape, fn, (size_t)x->numel * es) : NULL;
    if (!shifted)
        return TG_ENOMEM;
    int64_t keep[TG_MAX_DIMS];
    int nk = reduced_shape(x, mask, true, keep);
    tg__bcast plan;
    const int64_t *shapes[2] = {x->shape, keep};
    tg__bcast_plan(&plan, x->ndim, x->shape, 2, (const int[]){x->ndim, nk}, shapes);
    if (x->dtype == TG_F32) {
        float *mf = m, *o = out->data;
        tg__reduce_max_f32(x->data, x->ndim, x->shape, mask, mf, argmax);
        for (int64_t k = 0; k < out->numel; k++)
            if (!isfinite(mf[k]))
                mf[k] = 0; // an all -inf (or inf) group: leave x unshifted
        tg__binary_f32(TG__BIN_SUB, &plan, x->data, mf, shifted);
        tg__unary_f32(TG__UN_EXP, shifted, shifted, x->numel, 0, 0);
        tg__reduce_sum_f32(shifted, x->ndim, x->shape, mask, o);
        for (int64_t k = 0; k < out->numel; k++)
            o[k] = mf[k] + logf(o[k]);
    } else {
        double *mf = m, *o = out->data;
        tg__reduce_max_f64(x->data, x->ndim, x->shape, mask, mf, argmax);
        for (int64_t k = 0; k < out->numel; k++)
            if (!isfinite(mf[k]))
                mf[k] = 0;
        tg__binary_f64(TG__BIN_SUB, &plan, x->data, mf, shifted);
        tg__unary_f64(TG__UN_EXP, shifted, shifted, x->numel, 0, 0);
        tg__reduce_sum_f64(shifted, x->ndim, x->shape, mask, o);
        for (int64_t k = 0; k < out->numel; k++)
            o[k] = mf[k] + log(o[k]);
    }
    return TG_OK;
}
static tg_status logsumexp_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    // d lse / dx = e^(x - lse): the softmax over each group.
    tg_tensor *x = nd->in[0];
    din[0] = tg_mul(spread(nd, dout), tg_exp(tg_sub(x, spread(nd, nd->out))));
    return din[0] ? TG_OK : tg_last_status();
}
/* t_out = sum(t e^(x - lse)) over each group: the softmax-weighted tangent. */
static tg_status logsumexp_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    tg_tensor *x = nd->in[0];
    tg_tensor *w = tg_mul(tin[0], tg_exp(tg_sub(x, spread(nd, nd->out))));
    return tg__tangent_is(tout, tg__apply(&tg__def_sum, 1, &w, nd->params));
}
const tg_op_def tg__def_logsumexp = {TG__OP_NAME(logsumexp), .n_in = 1, .differentiable = true,
                                     .params_size = sizeof(reduce_params), .shape = reduce_shape,
                                     .forward = logsumexp_forward, .backward = logsumexp_backward,
                                     .tangent = logsumexp_tangent};

tg_tensor *tg_logsumexp(tg_tensor *x, const int *axes, int n_axes, bool keepdim)
{
    return reduce(&tg__def_logsumexp, "tg_logsumexp", x, axes, n_axes, keepdim);
}
