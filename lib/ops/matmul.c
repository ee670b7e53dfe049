/* matmul.c - batched matrix product with broadcasting batch dims. Every product
 * goes through the one GEMM kernel (kernels/gemm.c). The op carries transpose
 * flags so that backward needs no transposed copies: the gradients are matmuls
 * with flags, differentiable in turn. */
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/pointwise.h"
#include "ops/ops_internal.h"

/* Whether the op reads a, b transposed. */
typedef struct matmul_params {
    bool ta, tb;
} matmul_params;

/* Rows and columns of op(x) for the last two dims. */
static void mat_dims(const tg_tensor *x, bool trans, int64_t *rows, int64_t *cols)
{
    int64_t r = x->shape[x->ndim - 2], c = x->shape[x->ndim - 1];
    *rows = trans ? c : r;
    *cols = trans ? r : c;
}

/* The messages of matmul_shape, out of line: their buffers would make every
 * call set up a large stack frame. */
enum { BAD_DIMS, BAD_INNER, BAD_BATCH };
static __attribute__((noinline, cold)) tg_status
matmul_shape_error(const char *fn, int why, const tg_tensor *a, const tg_tensor *b, int64_t ka,
                   int64_t kb)
{
    char sa[TG__SHAPE_STR], sb[TG__SHAPE_STR];
    tg__shape_str(sa, a->ndim, a->shape);
    tg__shape_str(sb, b->ndim, b->shape);
    if (why == BAD_DIMS)
        return tg__fail(TG_ESHAPE, "%s: both inputs need at least 2 dims (a %s, b %s)", fn, sa,
                        sb);
    if (why == BAD_INNER)
        return tg__fail(TG_ESHAPE, "%s: inner dims %lld vs %lld (a %s, b %s)", fn, (long long)ka,
                        (long long)kb, sa, sb);
    return tg__fail(TG_ESHAPE, "%s: batch dims do not broadcast (a %s, b %s)", fn, sa, sb);
}

static tg_status matmul_shape(const char *fn, tg_tensor *const *in, int n_in,
                              const void *params, int *ndim, int64_t *shape)
{
    const matmul_params *p = params;
    const tg_tensor *a = in[0], *b = in[1];
    if (a->ndim < 2 || b->ndim < 2)
        return matmul_shape_error(fn, BAD_DIMS, a, b, 0, 0);
    int64_t m, ka, kb, n;
    mat_dims(a, p->ta, &m, &ka);
    mat_dims(b, p->tb, &kb, &n);
    if (ka != kb)
        return matmul_shape_error(fn, BAD_INNER, a, b, ka, kb);
    int nd = (a->ndim > b->ndim ? a->ndim : b->ndim);
    for (int d = 0; d < nd - 2; d++) {
        int ia = d - (nd - a->ndim), ib = d - (nd - b->ndim);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return matmul_shape_error(fn, BAD_BATCH, a, b, 0, 0);
        shape[d] = da == 1 ? db : da;
    }
    shape[nd - 2] = m;
    shape[nd - 1] = n;
    *ndim = nd;
    return TG_OK;
}

/* Offset (in matrices) of batch `k` of the output within x, which may have
 * fewer or broadcast batch dims. */
static int64_t batch_offset(const tg_tensor *x, const tg_tensor *out, int64_t k)
{
    int64_t off = 0, mat = x->shape[x->ndim - 1] * x->shape[x->ndim - 2];
    if (mat == 0) // an empty matrix: nothing is read through the offset
        return 0;
    int lead = out->ndim - x->ndim;
    for (int d = out->ndim - 3; d >= 0; d--) {
        int64_t c = k % out->shape[d];
        k /= out->shape[d];
        int j = d - lead;
        if (j >= 0 && x->shape[j] != 1)
            off += c * (x->strides[j] / mat);
    }
    return off * mat;
}

static tg_status matmul_forward(tg_node *nd)
{
    const tg_tensor *a = nd->in[0], *b = nd->in[1];
    tg_tensor *out = nd->out;
    const matmul_params *p = TG__PARAMS(nd, matmul_params);
    bool ta = p->ta, tb = p->tb;
    int64_t m, k, n, kb;
    mat_dims(a, ta, &m, &k);
    mat_dims(b, tb, &kb, &n);
    int64_t lda = a->shape[a->ndim - 1], ldb = b->shape[b->ndim - 1];
    if (a->ndim == 2 && b->ndim == 2 && out->dtype == TG_F32) {
        // One plain product (a layer's): the loop below without its batch
        // arithmetic. With no depth the GEMM writes zeros; with no rows or
        // columns there is nothing to write.
        tg__gemm_f32(ta, tb, m, n, k, 1.0f, a->data, lda, b->data, ldb, 0.0f, out->data, n);
        return TG_OK;
    }
    int64_t batches = (m * n) != 0 ? out->numel / (m * n) : 0;
    // a (B..., M, K) against a plain matrix b is one tall product: fold the
    // batch into M.
    if (b->ndim == 2 && !ta) {
        m *= batches;
        batches = 1;
    }
    for (int64_t i = 0; i < batches; i++) {
        int64_t oa = batches > 1 ? batch_offset(a, out, i) : 0;
        int64_t ob = batches > 1 ? batch_offset(b, out, i) : 0;
        if (out->dtype == TG_F32)
            tg__gemm_f32(ta, tb, m, n, k, 1.0f, (const float *)a->data + oa, lda,
                         (const float *)b->data + ob, ldb, 0.0f, (float *)out->data + i * m * n, n);
        else
            tg__gemm_f64(ta, tb, m, n, k, 1.0, (const double *)a->data + oa, lda,
                         (const double *)b->data + ob, ldb, 0.0, (double *)out->data + i * m * n,
                         n);
    }
    if (batches == 0 || m * n == 0)
        memset(out->data, 0, (size_t)out->numel * tg_dtype_size(out->dtype));
    return TG_OK;
}

static tg_tensor *matmul_t(tg_tensor *a, tg_tensor *b, bool ta, bool tb)
{
    tg_tensor *in[2] = {a, b};
    matmul_params p = {ta, tb};
    return tg__apply(&tg__def_matmul, 2, in, &p);
}

static tg_status matmul_backward(tg_node *nd, tg_tensor *dc, tg_tensor **din)
{
    // C = op(A) op(B). With op(X)^T spelled by flipping X's flag:
    //   dA = dC op(B)^T           (A plain)   or  (dC op(B)^T)^T = op(B) dC^T  (A transposed)
    //   dB = op(A)^T dC           (B plain)   or  (op(A)^T dC)^T = dC^T op(A)  (B transposed)
    tg_tensor *a = nd->in[0], *b = nd->in[1];
    const matmul_params *p = TG__PARAMS(nd, matmul_params);
    bool ta = p->ta, tb = p->tb;
    if (tg__needs_grad(nd, 0)) {
        din[0] = ta ? matmul_t(b, dc, tb, true) : matmul_t(dc, b, false, !tb);
        if (!din[0])
            return tg_last_status();
    }
    if (tg__needs_grad(nd, 1)) {
        din[1] = tb ? matmul_t(dc, a, true, ta) : matmul_t(a, dc, !ta, false);
        if (!din[1])
            return tg_last_status();
    }
    return TG_OK;
}

/* The fast path for the plain 2-D product (a Dense layer's): each gradient
 * is one GEMM straight into its result, with no nodes or headers built. */
static tg_tensor *gemm_into(const tg_tensor *a, bool ta, const tg_tensor *b, bool tb)
{
    int64_t m, k, n, kb;
    mat_dims(a, ta, &m, &k);
    mat_dims(b, tb, &kb, &n);
    tg_tensor *c = tg__tape_tensor("tg_matmul", a->dtype, 2, (const int64_t[]){m, n}, false);
    if (!c)
        return NULL;
    if (m * n == 0)
        return c;
    int64_t lda = a->shape[1], ldb = b->shape[1];
    if (a->dtype == TG_F32)
        tg__gemm_f32(ta, tb, m, n, k, 1.0f, a->data, lda, b->data, ldb, 0.0f, c->data, n);
    else
        tg__gemm_f64(ta, tb, m, n, k, 1.0, a->data, lda, b->data, ldb, 0.0, c->data, n);
    return c;
}

static tg_status matmul_fused(tg_node *nd, tg_tensor *dc, tg_tensor **din)
{
    tg_tensor *a = nd->in[0], *b = nd->in[1];
    if (a->ndim != 2 || b->ndim != 2)
        return matmul_backward(nd, dc, din);
    const matmul_params *p = TG__PARAMS(nd, matmul_params);
    bool ta = p->ta, tb = p->tb;
    // The same products as matmul_backward, in the same order of arguments.
    if (tg__needs_grad(nd, 0)) {
        din[0] = ta ? gemm_into(b, tb, dc, true) : gemm_into(dc, false, b, !tb);
        if (!din[0])
            return tg_last_status();
    }
    if (tg__needs_grad(nd, 1)) {
        din[1] = tb ? gemm_into(dc, true, a, ta) : gemm_into(a, !ta, dc, false);
        if (!din[1])
            return tg_last_status();
    }
    return TG_OK;
}

/* Bilinear: d(op(A) op(B)) = op(dA) op(B) + op(A) op(dB), with the same flags. */
static tg_status matmul_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    const matmul_params *p = TG__PARAMS(nd, matmul_params);
    tg_tensor *acc = NULL;
    if (tin[0] && tg__tangent_acc(&acc, matmul_t(tin[0], nd->in[1], p->ta, p->tb)) != TG_OK)
        return tg_last_status();
    if (tin[1] && tg__tangent_acc(&acc, matmul_t(nd->in[0], tin[1], p->ta, p->tb)) != TG_OK)
        return tg_last_status();
    *tout = acc;
    return TG_OK;
}

const tg_op_def tg__def_matmul = {TG__OP_NAME(matmul), .n_in = 2, .differentiable = true,
                                  .params_size = sizeof(matmul_params), .shape = matmul_shape,
                                  .forward = matmul_forward, .backward = matmul_backward,
                                  .fused_backward = matmul_fused, .tangent = matmul_tangent};

/* numpy's rule for 1-D operands: a (K) is viewed as (1, K), b (K) as (K, 1),
 * and the added dim is dropped from the product. The views are reshapes, so
 * the gradient flows back through them to the vectors. */
static tg_tensor *matmul_vectors(tg_tensor *a, tg_tensor *b);

tg_tensor *tg_matmul(tg_tensor *a, tg_tensor *b)
{
    const char *fn = "tg_matmul";
    if (tg__bad_input(fn, a, 0) || tg__bad_input(fn, b, 1))
        return NULL;
    if (a->ndim >= 2 && b->ndim >= 2)
        return matmul_t(a, b, false, false);
    return matmul_vectors(a, b);
}

/* tg_matmul with a 0- or 1-dim operand, out of line: its buffers would make
 * every product set up a large stack frame. */
static __attribute__((noinline)) tg_tensor *matmul_vectors(tg_tensor *a, tg_tensor *b)
{
    const char *fn = "tg_matmul";
    char sa[TG__SHAPE_STR], sb[TG__SHAPE_STR];
    if (a->ndim == 0 || b->ndim == 0)
        return tg__fail_null(TG_ESHAPE, "%s: a 0-dim operand has no matrix product (a %s, b %s)",
                             fn, tg__shape_str(sa, a->ndim, a->shape),
                             tg__shape_str(sb, b->ndim, b->shape));
    int64_t ka = a->shape[a->ndim - 1], kb = b->shape[b->ndim == 1 ? 0 : b->ndim - 2];
    if (ka != kb)
        return tg__fail_null(TG_ESHAPE, "%s: inner dims %lld vs %lld (a %s, b %s)", fn,
                             (long long)ka, (long long)kb, tg__shape_str(sa, a->ndim, a->shape),
                             tg__shape_str(sb, b->ndim, b->shape));
    const char *prev = tg__api_enter(fn);
    tg_tensor *a2 = a->ndim == 1 ? tg_reshape(a, 2, (const int64_t[]){1, ka}) : a;
    tg_tensor *b2 = b->ndim == 1 ? tg_reshape(b, 2, (const int64_t[]){kb, 1}) : b;
    tg_tensor *c = matmul_t(a2, b2, false, false);
    tg_tensor *out = NULL;
    if (c) {
        // Drop the added dims: the row's M = 1 (second to last) and the
        // column's N = 1 (last).
        int64_t shape[TG_MAX_DIMS];
        int n = 0;
        for (int d = 0; d < c->ndim; d++)
            if (!(a->ndim == 1 && d == c->ndim - 2) && !(b->ndim == 1 && d == c->ndim - 1))
                shape[n++] = c->shape[d];
        out = tg_reshape(c, n, shape);
    }
    tg__api_leave(prev);
    return out;
}

/* ---- linear, linear_relu: a Dense layer's x @ w + b (then ReLU) in one
 * product, bias and ReLU in the GEMM's epilogue (ops_internal.h) ---- */

static tg_status linear_shape(const char *fn, tg_tensor *const *in, int n_in,
                              const void *params, int *ndim, int64_t *shape)
{
    (void)params;
    char s[TG__SHAPE_STR];
    if (n_in < 2 || n_in > 3)
        return tg__fail(TG_EINVAL, "%s: takes x, w and an optional bias", fn);
    if (in[0]->ndim != 2 || in[1]->ndim != 2)
        return tg__fail(TG_ESHAPE, "%s: x and w must be 2-D (x %s)", fn,
                        tg__shape_str(s, in[0]->ndim, in[0]->shape));
    matmul_params plain = {false, false};
    tg_status st = matmul_shape(fn, in, 2, &plain, ndim, shape);
    if (st != TG_OK)
        return st;
    if (n_in == 3 && (in[2]->ndim != 1 || in[2]->shape[0] != shape[1]))
        return tg__fail(TG_ESHAPE, "%s: bias must have shape (%lld), got %s", fn,
                        (long long)shape[1], tg__shape_str(s, in[2]->ndim, in[2]->shape));
    return TG_OK;
}

static tg_status linear_compute(tg_node *nd, bool relu)
{
    const tg_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->n_in > 2 ? nd->in[2] : NULL;
    tg_tensor *y = nd->out;
    int64_t m = x->shape[0], k = x->shape[1], n = w->shape[1];
    if (y->numel == 0)
        return TG_OK;
    // Bias per column of y; the roundings of tg_matmul, tg_add and tg_relu.
    tg__gemm_epi epi = {.bias = b ? b->data : NULL, .bias_per_col = true, .relu = relu};
    if (y->dtype == TG_F32)
        tg__gemm_f32_epi(false, false, m, n, k, 1.0f, x->data, k, w->data, n, 0.0f, y->data, n,
                         &epi);
    else
        tg__gemm_f64_epi(false, false, m, n, k, 1.0, x->data, k, w->data, n, 0.0, y->data, n,
                         &epi);
    return TG_OK;
}

static tg_status linear_forward(tg_node *nd) { return linear_compute(nd, false); }
static tg_status linear_relu_forward(tg_node *nd) { return linear_compute(nd, true); }

/* The gradients of the composition: dz = g (or g [y > 0] after the ReLU),
 * dx = dz w^T, dw = x^T dz, and dz itself for the bias, which the engine sums
 * over the batch as it does for tg_add's broadcast operand. */
static tg_status linear_grads(tg_node *nd, tg_tensor *dz, tg_tensor **din, bool fused)
{
    tg_tensor *x = nd->in[0], *w = nd->in[1];
    if (!dz)
        return tg_last_status();
    if (tg__needs_grad(nd, 0) &&
        !(din[0] = fused ? gemm_into(dz, false, w, true) : matmul_t(dz, w, false, true)))
        return tg_last_status();
    if (tg__needs_grad(nd, 1) &&
        !(din[1] = fused ? gemm_into(x, true, dz, false) : matmul_t(x, dz, true, false)))
        return tg_last_status();
    if (nd->n_in > 2 && tg__needs_grad(nd, 2))
        din[2] = dz;
    return TG_OK;
}

static tg_status linear_backward(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    return linear_grads(nd, g, din, false);
}

static tg_status linear_fused(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    return linear_grads(nd, g, din, true);
}

static tg_status linear_relu_backward(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    return linear_grads(nd, tg_mul(g, tg_gt_scalar(nd->out, 0.0)), din, false);
}

/* dz in one pass, g * (T)(y > 0) as tg_relu's fused backward computes it. */
static tg_status linear_relu_fused(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    const tg_tensor *y = nd->out;
    tg_tensor *dz = tg__tape_tensor("tg_matmul", y->dtype, y->ndim, y->shape, false);
    if (!dz)
        return tg_last_status();
    if (y->dtype == TG_F32)
        tg__relu_grad_f32(g->data, y->data, dz->data, y->numel);
    else
        tg__relu_grad_f64(g->data, y->data, dz->data, y->numel);
    return linear_grads(nd, dz, din, true);
}

/* Bilinear in (x, w), affine in the bias: tz = tx w + x tw + tb; after the
 * ReLU, tz [y > 0] (the mask is a constant, as in the gradient). */
static tg_status linear_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    tg_tensor *x = nd->in[0], *w = nd->in[1], *acc = NULL;
    if (tin[0] && tg__tangent_acc(&acc, matmul_t(tin[0], w, false, false)) != TG_OK)
        return tg_last_status();
    if (tin[1] && tg__tangent_acc(&acc, matmul_t(x, tin[1], false, false)) != TG_OK)
        return tg_last_status();
    if (nd->n_in > 2 && tin[2] && tg__tangent_acc(&acc, tin[2]) != TG_OK)
        return tg_last_status();
    *tout = acc;
    return TG_OK;
}

static tg_status linear_relu_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    tg_tensor *tz = NULL;
    if (linear_tangent(nd, tin, &tz) != TG_OK)
        return tg_last_status();
    return tg__tangent_is(tout, tg_mul(tz, tg_gt_scalar(nd->out, 0.0)));
}

const tg_op_def tg__def_linear = {.name = "linear", .fn = "tg_matmul", .n_in = -1,
                                  .differentiable = true, .shape = linear_shape,
                                  .forward = linear_forward, .backward = linear_backward,
                                  .fused_backward = linear_fused,
                                  .tangent = linear_tangent};
const tg_op_def tg__def_linear_relu = {.name = "linear_relu", .fn = "tg_matmul", .n_in = -1,
                                       .differentiable = true, .shape = linear_shape,
                                       .forward = linear_relu_forward,
                                       .backward = linear_relu_backward,
                                       .fused_backward = linear_relu_fused,
                                       .tangent = linear_relu_tangent};

tg_tensor *tg__linear(tg_tensor *x, tg_tensor *w, tg_tensor *bias, bool relu)
{
    tg_tensor *in[3] = {x, w, bias};
    return tg__apply(relu ? &tg__def_linear_relu : &tg__def_linear, bias ? 3 : 2, in, NULL);
}
