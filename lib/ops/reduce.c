/* reduce.c - sum, mean, max and logsumexp over a set of axes. Kernels:
 * kernels/reduce.c. */
#include <math.h>
#include <string.h>

#include "kernels/layout.h"
#include "kernels/pointwise.h"
#include "kernels/reduce.h"
#include "ops/ops_internal.h"

/* Every reduction's parameters: the reduced axes as a bit mask, keepdim, and
 * (max) each group's argmax, found by forward. */
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
                               .fused_backward = sum_fused};

tg_tensor *tg_sum(tg_tensor *x, const int *axes, int n_axes, bool keepdim)
{
    return reduce(&tg__def_sum, "tg_sum", x, axes, n_axes, keepdim);
}

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
    TG__API_CALL("tg_mean", tg_mul_scalar(reduce(&tg__def_sum, "tg_mean", x, axes, n_axes,
                                                  keepdim),
                                           1.0 / (double)count));
}

/* ---- max: the forward keeps each group's argmax; backward scatters to it ---- */

static tg_status max_forward(tg_node *nd)
{
    tg_tensor *x = nd->in[0];
    // No groups (an empty result) is fine; an empty group has no maximum.
    if (x->numel == 0 && nd->out->numel > 0)
        return tg__fail(TG_ESHAPE, "tg_max: cannot take the maximum of an empty tensor");
    if (nd->out->numel == 0)
        return TG_OK;
    int64_t *argmax = tg__tape_alloc(nd->out->tape, "tg_max",
                                     (size_t)nd->out->numel * sizeof *argmax);
    if (!argmax)
        return TG_ENOMEM;
    unsigned mask = MASK(nd);
    if (x->dtype == TG_F32)
        tg__reduce_max_f32(x->data, x->ndim, x->shape, mask, nd->out->data, argmax);
    else
        tg__reduce_max_f64(x->data, x->ndim, x->shape, mask, nd->out->data, argmax);
    TG__PARAMS(nd, reduce_params)->argmax = argmax;
    return TG_OK;
}
static tg_status max_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    tg_tensor *x = nd->in[0];
    din[0] = tg__put_add(dout, nd->out->numel, TG__PARAMS(nd, reduce_params)->argmax, x->ndim,
                         x->shape);
    return din[0] ? TG_OK : tg_last_status();
}
const tg_op_def tg__def_max = {TG__OP_NAME(max), .n_in = 1, .differentiable = true,
                               .params_size = sizeof(reduce_params), .shape = reduce_shape,
                               .forward = max_forward, .backward = max_backward};

tg_tensor *tg_max(tg_tensor *x, const int *axes, int n_axes, bool keepdim)
{
    return reduce(&tg__def_max, "tg_max", x, axes, n_axes, keepdim);
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
const tg_op_def tg__def_logsumexp = {TG__OP_NAME(logsumexp), .n_in = 1, .differentiable = true,
                                     .params_size = sizeof(reduce_params), .shape = reduce_shape,
                                     .forward = logsumexp_forward, .backward = logsumexp_backward};

tg_tensor *tg_logsumexp(tg_tensor *x, const int *axes, int n_axes, bool keepdim)
{
    return reduce(&tg__def_logsumexp, "tg_logsumexp", x, axes, n_axes, keepdim);
}
