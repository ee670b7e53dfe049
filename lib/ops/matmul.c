/* matmul.c - batched matrix product with broadcasting batch dims. Every product
 * goes through the one GEMM kernel (kernels/gemm.c). The op carries transpose
 * flags so that backward needs no transposed copies: the gradients are matmuls
 * with flags, differentiable in turn. */
#include <string.h>

#include "kernels/kernels.h"
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

static tg_status matmul_shape(const char *fn, tg_tensor *const *in, int n_in,
                              const void *params, int *ndim, int64_t *shape)
{
    const matmul_params *p = params;
    const tg_tensor *a = in[0], *b = in[1];
    char sa[TG__SHAPE_STR], sb[TG__SHAPE_STR];
    if (a->ndim < 2 || b->ndim < 2)
        return tg__fail(TG_ESHAPE, "%s: both inputs need at least 2 dims (a %s, b %s)", fn,
                        tg__shape_str(sa, a->ndim, a->shape), tg__shape_str(sb, b->ndim, b->shape));
    int64_t m, ka, kb, n;
    mat_dims(a, p->ta, &m, &ka);
    mat_dims(b, p->tb, &kb, &n);
    if (ka != kb)
        return tg__fail(TG_ESHAPE, "%s: inner dims %lld vs %lld (a %s, b %s)", fn, (long long)ka,
                        (long long)kb, tg__shape_str(sa, a->ndim, a->shape),
                        tg__shape_str(sb, b->ndim, b->shape));
    int nd = (a->ndim > b->ndim ? a->ndim : b->ndim);
    for (int d = 0; d < nd - 2; d++) {
        int ia = d - (nd - a->ndim), ib = d - (nd - b->ndim);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return tg__fail(TG_ESHAPE, "%s: batch dims do not broadcast (a %s, b %s)", fn,
                            tg__shape_str(sa, a->ndim, a->shape),
                            tg__shape_str(sb, b->ndim, b->shape));
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

const tg_op_def tg__def_matmul = {TG__OP_NAME(matmul), .n_in = 2, .differentiable = true,
                                  .params_size = sizeof(matmul_params), .shape = matmul_shape,
                                  .forward = matmul_forward, .backward = matmul_backward,
                                  .fused_backward = matmul_fused};

/* numpy's rule for 1-D operands: a (K) is viewed as (1, K), b (K) as (K, 1),
 * and the added dim is dropped from the product. The views are reshapes, so
 * the gradient flows back through them to the vectors. */
tg_tensor *tg_matmul(tg_tensor *a, tg_tensor *b)
{
    const char *fn = "tg_matmul";
    if (tg__bad_input(fn, a, 0) || tg__bad_input(fn, b, 1))
        return NULL;
    if (a->ndim >= 2 && b->ndim >= 2)
        return matmul_t(a, b, false, false);
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
