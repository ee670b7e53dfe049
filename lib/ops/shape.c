/* shape.c - ops that rearrange elements: reshape and flatten (views),
 * permute/transpose, expand, slice (strided reads), concat, stack, and the
 * index ops take/put_add behind index_select, gather and max's gradient.
 * Kernels: kernels/layout.c. */
#include <string.h>

#include "kernels/layout.h"
#include "ops/ops_internal.h"

/* The strided reads (permute, expand, slice) and slice's adjoint: the output
 * shape first (so tg__shape_given reads it), the strides read in the input,
 * in elements, and the start offset. permute keeps its permutation; the
 * slice pair keeps the full (unsliced) shape. */
typedef struct strided_params {
    tg__shape_params out;
    int64_t strides[TG_MAX_DIMS];
    int64_t offset;
    int perm[TG_MAX_DIMS];
    int64_t full[TG_MAX_DIMS];
} strided_params;

/* take and put_add: the output shape first, then the flat index list. */
typedef struct index_params {
    tg__shape_params out;
    const int64_t *idx;
    int64_t n;
} index_params;

typedef struct concat_params {
    int axis;
} concat_params;

#define STRIDED(nd) TG__PARAMS(nd, strided_params)
#define INDEX(nd) TG__PARAMS(nd, index_params)

/* Every op here is linear and its parameters describe the map itself (the
 * tangent has the input's shape, hence its strides): the tangent is the same
 * op, with the same parameters, applied to the tangent. */
static tg_status same_op_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    return tg__tangent_is(tout, tg__apply(nd->def, 1, tin, nd->params));
}

static tg_status result(tg_tensor **din, tg_tensor *g)
{
    din[0] = g;
    return g ? TG_OK : tg_last_status();
}

/* ---- reshape and flatten: views ---- */

static tg_status reshape_forward(tg_node *nd)
{
    nd->out->data = nd->in[0]->data;
    return TG_OK;
}
static tg_status reshape_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    return result(din, tg_reshape(dout, nd->in[0]->ndim, nd->in[0]->shape));
}
const tg_op_def tg__def_reshape = {TG__OP_NAME(reshape), .n_in = 1, .differentiable = true,
                                   .view = true, .params_size = sizeof(tg__shape_params),
                                   .shape = tg__shape_given, .forward = reshape_forward,
                                   .backward = reshape_backward,
        .tangent = same_op_tangent};

tg_tensor *tg_reshape(tg_tensor *x, int ndim, const int64_t *shape)
{
    if (tg__bad_input("tg_reshape", x, 0))
        return NULL;
    if (ndim && !shape)
        return tg__fail_null(TG_EINVAL, "tg_reshape: shape is NULL (ndim %d)", ndim);
    if (ndim < 0 || ndim > TG_MAX_DIMS)
        return tg__fail_null(TG_EINVAL, "tg_reshape: ndim %d outside 0..%d", ndim, TG_MAX_DIMS);
    tg__shape_params p = {.ndim = ndim};
    int infer = -1;
    int64_t known = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == -1 && infer < 0) {
            infer = d;
            continue;
        }
        if (shape[d] < 0)
            return tg__fail_null(TG_EINVAL, "tg_reshape: dimension %d is %lld (only one -1 "
                                            "allowed)", d, (long long)shape[d]);
        // Saturate instead of overflowing: any product this large cannot match.
        known = shape[d] && known > INT64_MAX / shape[d] ? INT64_MAX : known * shape[d];
        p.shape[d] = shape[d];
    }
    if (infer >= 0)
        p.shape[infer] = known ? x->numel / known : 0;
    int64_t inferred = infer >= 0 ? p.shape[infer] : 1;
    int64_t total = inferred && known > INT64_MAX / inferred ? INT64_MAX : known * inferred;
    if (total != x->numel) {
        char a[TG__SHAPE_STR], b[TG__SHAPE_STR];
        return tg__fail_null(TG_ESHAPE, "tg_reshape: cannot view %s (%lld elements) as %s",
                             tg__shape_str(a, x->ndim, x->shape), (long long)x->numel,
                             tg__shape_str(b, ndim, shape));
    }
    return tg__apply(&tg__def_reshape, 1, &x, &p);
}

tg_tensor *tg_flatten(tg_tensor *x, int axis)
{
    if (tg__bad_input("tg_flatten", x, 0))
        return NULL;
    int a = axis < 0 ? axis + x->ndim : axis;
    if (a < 0 || a > x->ndim)
        return tg__fail_null(TG_EINVAL, "tg_flatten: axis %d out of range for %d dims", axis,
                             x->ndim);
    int64_t shape[TG_MAX_DIMS], rest = 1;
    for (int d = 0; d < a; d++)
        shape[d] = x->shape[d];
    for (int d = a; d < x->ndim; d++)
        rest *= x->shape[d];
    shape[a] = rest;
    TG__API_CALL("tg_flatten", tg_reshape(x, a + 1, shape));
}

/* ---- strided reads: permute, expand, slice ---- */

static tg_status strided_forward(tg_node *nd)
{
    const tg_tensor *x = nd->in[0];
    size_t es = tg_dtype_size(x->dtype);
    const strided_params *p = STRIDED(nd);
    const char *src = (const char *)x->data + (size_t)p->offset * es;
    tg__strided_copy(es, nd->out->ndim, nd->out->shape, src, p->strides, nd->out->data,
                     nd->out->strides);
    return TG_OK;
}

static tg_status permute_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    int inverse[TG_MAX_DIMS];
    const strided_params *p = STRIDED(nd);
    for (int d = 0; d < p->out.ndim; d++)
        inverse[p->perm[d]] = d;
    return result(din, tg_permute(dout, inverse));
}
const tg_op_def tg__def_permute = {TG__OP_NAME(permute), .n_in = 1, .differentiable = true,
                                   .params_size = sizeof(strided_params), .shape = tg__shape_given,
                                   .forward = strided_forward, .backward = permute_backward,
        .tangent = same_op_tangent};

tg_tensor *tg_permute(tg_tensor *x, const int *perm)
{
    if (tg__bad_input("tg_permute", x, 0))
        return NULL;
    if (!perm && x->ndim)
        return tg__fail_null(TG_EINVAL, "tg_permute: perm is NULL");
    strided_params p = {.out.ndim = x->ndim};
    unsigned seen = 0;
    for (int d = 0; d < x->ndim; d++) {
        int a = perm[d];
        if (a < 0)
            a += x->ndim;
        if (a < 0 || a >= x->ndim || (seen & (1u << a)))
            return tg__fail_null(TG_EINVAL, "tg_permute: perm is not a permutation of 0..%d "
                                            "(entry %d is %d)", x->ndim - 1, d, perm[d]);
        seen |= 1u << a;
        p.out.shape[d] = x->shape[a];
        p.strides[d] = x->strides[a];
        p.perm[d] = a;
    }
    return tg__apply(&tg__def_permute, 1, &x, &p);
}

tg_tensor *tg_transpose(tg_tensor *x, int axis0, int axis1)
{
    if (tg__bad_input("tg_transpose", x, 0))
        return NULL;
    int a, b, perm[TG_MAX_DIMS];
    if (tg__norm_axis("tg_transpose", axis0, x->ndim, &a) != TG_OK ||
        tg__norm_axis("tg_transpose", axis1, x->ndim, &b) != TG_OK)
        return NULL;
    for (int d = 0; d < x->ndim; d++)
        perm[d] = d;
    perm[a] = b;
    perm[b] = a;
    TG__API_CALL("tg_transpose", tg_permute(x, perm));
}

static tg_status expand_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    return result(din, tg__sum_to(dout, nd->in[0]->ndim, nd->in[0]->shape));
}
const tg_op_def tg__def_expand = {TG__OP_NAME(expand), .n_in = 1, .differentiable = true,
                                  .params_size = sizeof(strided_params), .shape = tg__shape_given,
                                  .forward = strided_forward, .backward = expand_backward,
        .tangent = same_op_tangent};

tg_tensor *tg_expand(tg_tensor *x, int ndim, const int64_t *shape)
{
    if (tg__bad_input("tg_expand", x, 0))
        return NULL;
    if (ndim && !shape)
        return tg__fail_null(TG_EINVAL, "tg_expand: shape is NULL (ndim %d)", ndim);
    if (ndim < x->ndim || ndim > TG_MAX_DIMS)
        return tg__fail_null(TG_EINVAL, "tg_expand: target has %d dims, input %d", ndim,
                             x->ndim);
    strided_params p = {.out.ndim = ndim};
    int lead = ndim - x->ndim;
    for (int d = 0; d < ndim; d++) {
        int64_t s = d >= lead ? x->shape[d - lead] : 1;
        if (s != shape[d] && s != 1) {
            char a[TG__SHAPE_STR], b[TG__SHAPE_STR];
            return tg__fail_null(TG_ESHAPE, "tg_expand: cannot broadcast %s to %s",
                                 tg__shape_str(a, x->ndim, x->shape),
                                 tg__shape_str(b, ndim, shape));
        }
        p.out.shape[d] = shape[d];
        p.strides[d] = s == 1 ? 0 : x->strides[d - lead];
    }
    return tg__apply(&tg__def_expand, 1, &x, &p);
}

static tg_status slice_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    // The adjoint writes dout back into zeros of the input's shape; slice_grad
    // takes the same geometry.
    return result(din, tg__apply(&tg__def_slice_grad, 1, &dout, STRIDED(nd)));
}
const tg_op_def tg__def_slice = {TG__OP_NAME(slice), .n_in = 1, .differentiable = true,
                                 .params_size = sizeof(strided_params), .shape = tg__shape_given,
                                 .forward = strided_forward, .backward = slice_backward,
        .tangent = same_op_tangent};

/* slice_grad: the full (input) shape is its output; shape, strides and
 * offset describe where its input, the slice, sits inside it. */
static tg_status slice_grad_shape(const char *fn, tg_tensor *const *in, int n_in,
                                  const void *params, int *ndim, int64_t *shape)
{
    const strided_params *p = params;
    *ndim = p->out.ndim;
    memcpy(shape, p->full, (size_t)p->out.ndim * sizeof *shape);
    return TG_OK;
}
static tg_status slice_grad_forward(tg_node *nd)
{
    const tg_tensor *g = nd->in[0];
    size_t es = tg_dtype_size(g->dtype);
    memset(nd->out->data, 0, (size_t)nd->out->numel * es);
    const strided_params *p = STRIDED(nd);
    char *dst = (char *)nd->out->data + (size_t)p->offset * es;
    tg__strided_copy(es, g->ndim, g->shape, g->data, g->strides, dst, p->strides);
    return TG_OK;
}
static tg_status slice_grad_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    return result(din, tg__apply(&tg__def_slice, 1, &dout, STRIDED(nd)));
}
const tg_op_def tg__def_slice_grad = {TG__OP_NAME(slice_grad), .n_in = 1, .differentiable = true,
                                      .params_size = sizeof(strided_params),
                                      .shape = slice_grad_shape, .forward = slice_grad_forward,
                                      .backward = slice_grad_backward,
        .tangent = same_op_tangent};

tg_tensor *tg_slice(tg_tensor *x, int axis, int64_t start, int64_t stop, int64_t step)
{
    if (tg__bad_input("tg_slice", x, 0))
        return NULL;
    if (x->ndim == 0)
        return tg__fail_null(TG_EINVAL, "tg_slice: a 0-dim tensor has no axis to slice");
    int a;
    if (tg__norm_axis("tg_slice", axis, x->ndim, &a) != TG_OK)
        return NULL;
    if (step <= 0)
        return tg__fail_null(TG_EINVAL, "tg_slice: step %lld must be positive", (long long)step);
    int64_t n = x->shape[a];
    // Python's rules: negative bounds count from the end, then clip to [0, n].
    if (start < 0)
        start += n;
    if (stop < 0)
        stop += n;
    start = start < 0 ? 0 : (start > n ? n : start);
    stop = stop < 0 ? 0 : (stop > n ? n : stop);
    // Written so that no step (up to INT64_MAX) can overflow: with two or more
    // elements, step < n and stride * step stays inside the tensor.
    int64_t len = stop > start ? 1 + (stop - start - 1) / step : 0;
    strided_params p = {.out.ndim = x->ndim};
    for (int d = 0; d < x->ndim; d++) {
        p.out.shape[d] = d == a ? len : x->shape[d];
        p.strides[d] = d == a && len > 1 ? x->strides[d] * step : x->strides[d];
        p.full[d] = x->shape[d];
    }
    p.offset = len ? start * x->strides[a] : 0;
    return tg__apply(&tg__def_slice, 1, &x, &p);
}

/* ---- concat and stack ---- */

static tg_status concat_shape(const char *fn, tg_tensor *const *in, int n_in,
                              const void *params, int *ndim, int64_t *shape)
{
    int a = ((const concat_params *)params)->axis;
    const tg_tensor *x0 = in[0];
    *ndim = x0->ndim;
    memcpy(shape, x0->shape, (size_t)x0->ndim * sizeof *shape);
    shape[a] = 0;
    for (int k = 0; k < n_in; k++) {
        bool ok = in[k]->ndim == x0->ndim;
        for (int d = 0; d < x0->ndim && ok; d++)
            ok = d == a || in[k]->shape[d] == x0->shape[d];
        if (!ok) {
            char s0[TG__SHAPE_STR], sk[TG__SHAPE_STR];
            return tg__fail(TG_ESHAPE, "%s: input %d has shape %s, input 0 %s (must match "
                                       "except along axis %d)", fn, k,
                            tg__shape_str(sk, in[k]->ndim, in[k]->shape),
                            tg__shape_str(s0, x0->ndim, x0->shape), a);
        }
        shape[a] += in[k]->shape[a];
    }
    return TG_OK;
}
static tg_status concat_forward(tg_node *nd)
{
    int a = TG__PARAMS(nd, concat_params)->axis;
    size_t es = tg_dtype_size(nd->out->dtype);
    int64_t offset = 0;
    for (int k = 0; k < nd->n_in; k++) {
        const tg_tensor *x = nd->in[k];
        char *dst = (char *)nd->out->data + (size_t)(offset * nd->out->strides[a]) * es;
        tg__strided_copy(es, x->ndim, x->shape, x->data, x->strides, dst, nd->out->strides);
        offset += x->shape[a];
    }
    return TG_OK;
}
static tg_status concat_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    int a = TG__PARAMS(nd, concat_params)->axis;
    int64_t offset = 0;
    for (int k = 0; k < nd->n_in; k++) {
        int64_t len = nd->in[k]->shape[a];
        if (tg__needs_grad(nd, k) && !(din[k] = tg_slice(dout, a, offset, offset + len, 1)))
            return tg_last_status();
        offset += len;
    }
    return TG_OK;
}
/* The tangents joined the same way, zeros standing in for zero tangents. */
static tg_status concat_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    tg_tape *tape = nd->out->tape;
    tg_tensor **ts = tg__tape_alloc(tape, "tg_concat", (size_t)nd->n_in * sizeof *ts);
    if (!ts)
        return TG_ENOMEM;
    for (int k = 0; k < nd->n_in; k++)
        if (!(ts[k] = tin[k] ? tin[k] : tg_full_like(nd->in[k], 0.0)))
            return tg_last_status();
    return tg__tangent_is(tout, tg__apply(&tg__def_concat, nd->n_in, ts, nd->params));
}
const tg_op_def tg__def_concat = {TG__OP_NAME(concat), .n_in = -1, .differentiable = true,
                                  .params_size = sizeof(concat_params), .shape = concat_shape,
                                  .forward = concat_forward, .backward = concat_backward,
                                  .tangent = concat_tangent};

tg_tensor *tg_concat(int n, tg_tensor *const *xs, int axis)
{
    if (n >= 1 && !xs)
        return tg__fail_null(TG_EINVAL, "tg_concat: xs is NULL (n %d)", n);
    if (n < 1)
        return tg__fail_null(TG_EINVAL, "tg_concat: need n >= 1 tensors (got %d)", n);
    for (int k = 0; k < n; k++)
        if (tg__bad_input("tg_concat", xs[k], k))
            return NULL;
    int a;
    if (tg__norm_axis("tg_concat", axis, xs[0]->ndim, &a) != TG_OK || xs[0]->ndim == 0)
        return tg__fail_null(TG_EINVAL, "tg_concat: axis %d out of range for %d dims", axis,
                             xs[0]->ndim);
    concat_params p = {a};
    return tg__apply(&tg__def_concat, n, xs, &p);
}

tg_tensor *tg_stack(int n, tg_tensor *const *xs, int axis)
{
    if (n >= 1 && !xs)
        return tg__fail_null(TG_EINVAL, "tg_stack: xs is NULL (n %d)", n);
    if (n < 1)
        return tg__fail_null(TG_EINVAL, "tg_stack: need n >= 1 tensors (got %d)", n);
    for (int k = 0; k < n; k++)
        if (tg__bad_input("tg_stack", xs[k], k))
            return NULL;
    int nd = xs[0]->ndim, a;
    if (nd >= TG_MAX_DIMS || tg__norm_axis("tg_stack", axis, nd + 1, &a) != TG_OK)
        return tg__fail_null(TG_EINVAL, "tg_stack: axis %d out of range for %d+1 dims", axis,
                             nd);

    // Every input is checked before any is reshaped: a failing call records nothing.
    for (int k = 0; k < n; k++) {
        if (xs[k]->dtype != xs[0]->dtype)
            return tg__fail_null(TG_EDTYPE, "tg_stack: dtype mismatch, input 0 is %s but "
                                            "input %d is %s", tg_dtype_name(xs[0]->dtype), k,
                                 tg_dtype_name(xs[k]->dtype));
        if (!tg__same_shape(xs[k], xs[0])) {
            char s0[TG__SHAPE_STR], sk[TG__SHAPE_STR];
            return tg__fail_null(TG_ESHAPE, "tg_stack: input %d has shape %s, input 0 %s", k,
                                 tg__shape_str(sk, xs[k]->ndim, xs[k]->shape),
                                 tg__shape_str(s0, nd, xs[0]->shape));
        }
    }
    tg_tape *tape = tg__tape_for("tg_stack");
    tg_tensor **parts = tape ? tg__tape_alloc(tape, "tg_stack", (size_t)n * sizeof *parts) : NULL;
    if (!parts)
        return NULL;
    const char *prev = tg__api_enter("tg_stack");
    tg_tensor *out = NULL;
    int k = 0;
    for (; k < n; k++) {
        int64_t shape[TG_MAX_DIMS];
        for (int d = 0, j = 0; d <= nd; d++)
            shape[d] = d == a ? 1 : xs[k]->shape[j++];
        if (!(parts[k] = tg_reshape(xs[k], nd + 1, shape)))
            break;
    }
    if (k == n)
        out = tg_concat(n, parts, a);
    tg__api_leave(prev);
    return out;
}

/* ---- take and put_add ---- */

static tg_status take_forward(tg_node *nd)
{
    if (nd->out->dtype == TG_F32)
        tg__take_f32(nd->in[0]->data, INDEX(nd)->idx, INDEX(nd)->n, nd->out->data);
    else
        tg__take_f64(nd->in[0]->data, INDEX(nd)->idx, INDEX(nd)->n, nd->out->data);
    return TG_OK;
}
static tg_status take_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    tg_tensor *x = nd->in[0];
    return result(din, tg__put_add(dout, INDEX(nd)->n, INDEX(nd)->idx, x->ndim, x->shape));
}
const tg_op_def tg__def_take = {TG__OP_NAME(take), .n_in = 1, .differentiable = true,
                                .params_size = sizeof(index_params), .shape = tg__shape_given,
                                .forward = take_forward, .backward = take_backward,
        .tangent = same_op_tangent};

static tg_status put_add_forward(tg_node *nd)
{
    memset(nd->out->data, 0, (size_t)nd->out->numel * tg_dtype_size(nd->out->dtype));
    if (nd->out->dtype == TG_F32)
        tg__put_add_f32(nd->in[0]->data, INDEX(nd)->idx, INDEX(nd)->n, nd->out->data);
    else
        tg__put_add_f64(nd->in[0]->data, INDEX(nd)->idx, INDEX(nd)->n, nd->out->data);
    return TG_OK;
}
static tg_status put_add_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    tg_tensor *src = nd->in[0];
    return result(din, tg__take(dout, INDEX(nd)->n, INDEX(nd)->idx, src->ndim, src->shape));
}
const tg_op_def tg__def_put_add = {TG__OP_NAME(put_add), .n_in = 1, .differentiable = true,
                                   .params_size = sizeof(index_params), .shape = tg__shape_given,
                                   .forward = put_add_forward, .backward = put_add_backward,
        .tangent = same_op_tangent};

static tg_tensor *index_op(const tg_op_def *def, tg_tensor *x, int64_t n, const int64_t *idx, int ndim,
                           const int64_t *shape)
{
    index_params p = {.out.ndim = ndim, .idx = idx, .n = n};
    memcpy(p.out.shape, shape, (size_t)ndim * sizeof *shape);
    return tg__apply(def, 1, &x, &p);
}

tg_tensor *tg__take(tg_tensor *x, int64_t n, const int64_t *idx, int ndim, const int64_t *shape)
{
    return index_op(&tg__def_take, x, n, idx, ndim, shape);
}

tg_tensor *tg__put_add(tg_tensor *src, int64_t n, const int64_t *idx, int ndim,
                       const int64_t *shape)
{
    if (src && src->numel != n)
        return tg__fail_null(TG_ESHAPE, "tg_put_add: %lld values for %lld indices",
                             (long long)src->numel, (long long)n);
    return index_op(&tg__def_put_add, src, n, idx, ndim, shape);
}

/* Flat source indices for an output of (ndim, shape) that reads x at the
 * output's coordinates except along axis, where `along(k, coord)` decides. */
static int64_t *flat_indices(tg_tape *tape, const tg_tensor *x, int axis, int ndim,
                             const int64_t *shape, const int64_t *index, bool per_element)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    int64_t *flat = tg__tape_alloc(tape, tg__api_fn("tg_gather"), (size_t)n * sizeof *flat);
    if (!flat)
        return NULL;
    int64_t coord[TG_MAX_DIMS] = {0};
    for (int64_t k = 0; k < n; k++) {
        int64_t f = 0;
        for (int d = 0; d < ndim; d++) {
            int64_t c = coord[d];
            if (d == axis)
                c = per_element ? index[k] : index[c];
            f += c * x->strides[d];
        }
        flat[k] = f;
        for (int d = ndim - 1; d >= 0; d--) {
            if (++coord[d] < shape[d])
                break;
            coord[d] = 0;
        }
    }
    return flat;
}

static tg_status check_index_values(const char *fn, const int64_t *index, int64_t n,
                                    int64_t size)
{
    for (int64_t k = 0; k < n; k++)
        if (index[k] < 0 || index[k] >= size)
            return tg__fail(TG_ERANGE, "%s: index[%lld] = %lld outside [0, %lld)", fn,
                            (long long)k, (long long)index[k], (long long)size);
    return TG_OK;
}

tg_tensor *tg_index_select(tg_tensor *x, int axis, int64_t n, const int64_t *idx)
{
    const char *fn = "tg_index_select";
    if (tg__bad_input(fn, x, 0))
        return NULL;
    int a;
    if (x->ndim == 0 || tg__norm_axis(fn, axis, x->ndim, &a) != TG_OK)
        return tg__fail_null(TG_EINVAL, "%s: axis %d out of range for %d dims", fn, axis,
                             x->ndim);
    if (n > 0 && !idx)
        return tg__fail_null(TG_EINVAL, "%s: idx is NULL (n %lld)", fn, (long long)n);
    if (n < 0)
        return tg__fail_null(TG_EINVAL, "%s: n is %lld (need n >= 0)", fn, (long long)n);
    if (check_index_values(fn, idx, n, x->shape[a]) != TG_OK)
        return NULL;
    tg_tape *tape = tg__tape_for(fn);
    if (!tape)
        return NULL;
    int64_t shape[TG_MAX_DIMS];
    memcpy(shape, x->shape, (size_t)x->ndim * sizeof *shape);
    shape[a] = n;
    int64_t *flat = flat_indices(tape, x, a, x->ndim, shape, idx, false);
    if (!flat)
        return NULL;
    TG__API_CALL("tg_index_select",
                 tg__take(x, n * (x->shape[a] ? x->numel / x->shape[a] : 0), flat, x->ndim, shape));
}

tg_tensor *tg_gather(tg_tensor *x, int axis, int ndim, const int64_t *shape, const int64_t *index)
{
    const char *fn = "tg_gather";
    if (tg__bad_input(fn, x, 0))
        return NULL;
    int a;
    if (x->ndim == 0 || tg__norm_axis(fn, axis, x->ndim, &a) != TG_OK)
        return tg__fail_null(TG_EINVAL, "%s: axis %d out of range for %d dims", fn, axis,
                             x->ndim);
    if (ndim > 0 && !shape)
        return tg__fail_null(TG_EINVAL, "%s: shape is NULL (ndim %d)", fn, ndim);
    if (ndim != x->ndim)
        return tg__fail_null(TG_ESHAPE, "%s: index has %d dims, x has %d", fn, ndim, x->ndim);
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || (d != a && shape[d] > x->shape[d])) {
            char s[TG__SHAPE_STR], xs[TG__SHAPE_STR];
            return tg__fail_null(TG_ESHAPE, "%s: index shape %s does not fit x %s "
                                            "(dimension %d)", fn, tg__shape_str(s, ndim, shape),
                                 tg__shape_str(xs, x->ndim, x->shape), d);
        }
        n *= shape[d];
    }
    if (n > 0 && !index)
        return tg__fail_null(TG_EINVAL, "%s: index is NULL", fn);
    if (check_index_values(fn, index, n, x->shape[a]) != TG_OK)
        return NULL;
    tg_tape *tape = tg__tape_for(fn);
    int64_t *flat = tape ? flat_indices(tape, x, a, ndim, shape, index, true) : NULL;
    if (!flat)
        return NULL;
    TG__API_CALL("tg_gather", tg__take(x, n, flat, ndim, shape));
}
