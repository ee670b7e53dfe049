/* softmax.c - softmax and log_softmax along one axis (p.i[0]), computed with
 * the maximum subtracted. Kernels: kernels/reduce.c. */
#include "kernels/reduce.h"
#include "ops/ops_internal.h"

static void split(const tg_tensor *x, int axis, int64_t *outer, int64_t *n, int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int d = 0; d < axis; d++)
        *outer *= x->shape[d];
    for (int d = axis + 1; d < x->ndim; d++)
        *inner *= x->shape[d];
    *n = x->ndim ? x->shape[axis] : 1;
}

static tg_status softmax_forward_any(tg_node *nd, int take_log)
{
    const tg_tensor *x = nd->in[0];
    int64_t outer, n, inner;
    split(x, (int)nd->p.i[0], &outer, &n, &inner);
    if (x->dtype == TG_F32)
        tg__softmax_f32(x->data, nd->out->data, outer, n, inner, take_log);
    else
        tg__softmax_f64(x->data, nd->out->data, outer, n, inner, take_log);
    return TG_OK;
}

static tg_status softmax_forward(tg_node *nd) { return softmax_forward_any(nd, 0); }
static tg_status softmax_backward(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    // dx = y * (g - sum(g * y)) along the axis.
    int axis = (int)nd->p.i[0];
    tg_tensor *y = nd->out;
    din[0] = tg_mul(y, tg_sub(g, tg_sum(tg_mul(g, y), &axis, 1, true)));
    return din[0] ? TG_OK : tg_last_status();
}
const tg_op_def tg__def_softmax = {"softmax", 1, true, false, tg__shape_same, softmax_forward,
                                   softmax_backward};

static tg_status log_softmax_forward(tg_node *nd) { return softmax_forward_any(nd, 1); }
static tg_status log_softmax_backward(tg_node *nd, tg_tensor *g, tg_tensor **din)
{
    // dx = g - softmax(x) * sum(g) along the axis, softmax(x) = e^y.
    int axis = (int)nd->p.i[0];
    din[0] = tg_sub(g, tg_mul(tg_exp(nd->out), tg_sum(g, &axis, 1, true)));
    return din[0] ? TG_OK : tg_last_status();
}
const tg_op_def tg__def_log_softmax = {"log_softmax", 1, true, false, tg__shape_same,
                                       log_softmax_forward, log_softmax_backward};

static tg_tensor *normalise(int op, const char *fn, tg_tensor *x, int axis)
{
    if (!x)
        return tg__null_input(fn, 0);
    int a = 0; // a 0-dim tensor takes axis 0 or -1, as in numpy
    if (tg__norm_axis(fn, axis, x->ndim, &a) != TG_OK)
        return NULL;
    tg_op_params p = {.i = {a}, .ni = 1};
    return tg__apply(op, 1, &x, &p);
}

tg_tensor *tg_softmax(tg_tensor *x, int axis)
{
    return normalise(TG_OP_SOFTMAX, "tg_softmax", x, axis);
}

tg_tensor *tg_log_softmax(tg_tensor *x, int axis)
{
    return normalise(TG_OP_LOG_SOFTMAX, "tg_log_softmax", x, axis);
}
