/* cumsum.c - the running sum along one axis. Its gradient is the running sum
 * of g taken from the other end, so the op carries a direction flag and its
 * backward is the same op reversed (differentiable to any order). */
#include "ops/ops_internal.h"

typedef struct cumsum_params {
    int axis;
    bool reverse; /* y_i = sum_{j >= i} x_j instead of sum_{j <= i} */
} cumsum_params;

/* x (outer, n, inner) -> y of the same shape, sums in double. */
#define CUMSUM(T)                                                                  \
    do {                                                                           \
        const T *xs = x->data;                                                     \
        T *ys = nd->out->data;                                                     \
        for (int64_t o = 0; o < outer; o++)                                        \
            for (int64_t i = 0; i < inner; i++) {                                  \
                double acc = 0;                                                    \
                for (int64_t s = 0; s < n; s++) {                                  \
                    int64_t k = p->reverse ? n - 1 - s : s;                        \
                    int64_t at = (o * n + k) * inner + i;                          \
                    acc += xs[at];                                                 \
                    ys[at] = (T)acc;                                               \
                }                                                                  \
            }                                                                      \
    } while (0)

static tg_status cumsum_forward(tg_node *nd)
{
    const cumsum_params *p = TG__PARAMS(nd, cumsum_params);
    const tg_tensor *x = nd->in[0];
    // An empty tensor can have huge other dims (4 x 0 x 2^40): the loops
    // below would walk every (outer, inner) pair for nothing.
    if (tg_tensor_numel(x) == 0)
        return TG_OK;
    int64_t outer = 1, inner = 1, n = x->ndim ? x->shape[p->axis] : 1;
    for (int d = 0; d < p->axis; d++)
        outer *= x->shape[d];
    for (int d = p->axis + 1; d < x->ndim; d++)
        inner *= x->shape[d];
    if (x->dtype == TG_F32)
        CUMSUM(float);
    else
        CUMSUM(double);
    return TG_OK;
}

static tg_tensor *cumsum_dir(tg_tensor *x, int axis, bool reverse)
{
    cumsum_params p = {axis, reverse};
    return tg__apply(&tg__def_cumsum, 1, &x, &p);
}

static tg_status cumsum_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    // dx_j = sum_{i >= j} g_i: the running sum of g from the other end.
    const cumsum_params *p = TG__PARAMS(nd, cumsum_params);
    din[0] = cumsum_dir(dout, p->axis, !p->reverse);
    return din[0] ? TG_OK : tg_last_status();
}

/* Linear: the tangent is the same running sum (same axis and direction) of t. */
static tg_status cumsum_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    return tg__tangent_is(tout, tg__apply(&tg__def_cumsum, 1, tin, nd->params));
}

const tg_op_def tg__def_cumsum = {TG__OP_NAME(cumsum), .n_in = 1, .differentiable = true,
                                  .params_size = sizeof(cumsum_params),
                                  .shape = tg__shape_same, .forward = cumsum_forward,
                                  .backward = cumsum_backward, .tangent = cumsum_tangent};

tg_tensor *tg_cumsum(tg_tensor *x, int axis)
{
    if (tg__bad_input("tg_cumsum", x, 0))
        return NULL;
    int a = 0;
    if (tg__norm_axis("tg_cumsum", axis, x->ndim, &a) != TG_OK)
        return NULL;
    return cumsum_dir(x, a, false);
}
