/* sum_to.c - the engine's one broadcast rule: an op's backward may return a
 * gradient of the broadcast (output) shape, and the engine sums it back to the
 * input's shape here, once, instead of every op doing it. */
#include "autograd/engine_ops.h"
#include "autograd/tape_internal.h"
#include "kernels/reduce.h"

/* Whether g's shape sums down to (ndim, shape): the leading dims of g, and
 * dims where shape has 1, are reduced. */
static bool reducible(const tg_tensor *g, int ndim, const int64_t *shape)
{
    int lead = g->ndim - ndim;
    bool ok = lead >= 0;
    for (int d = 0; d < ndim && ok; d++)
        ok = g->shape[d + lead] == shape[d] || shape[d] == 1;
    return ok;
}

tg_tensor *tg__sum_to_direct(tg_tensor *g, int ndim, const int64_t *shape)
{
    if (!g || !reducible(g, ndim, shape))
        return tg__sum_to(g, ndim, shape);
    // The axes tg__sum_to hands tg_sum, as a mask for the same kernel; its
    // output (the kept dims in order) is already laid out as shape.
    int lead = g->ndim - ndim;
    unsigned mask = 0;
    for (int d = 0; d < g->ndim; d++)
        if (d < lead || (shape[d - lead] == 1 && g->shape[d] != 1))
            mask |= 1u << d;
    tg_tensor *s = tg__tape_tensor("tg_sum", g->dtype, ndim, shape, false);
    if (!s)
        return NULL;
    if (g->dtype == TG_F32)
        tg__reduce_sum_f32(g->data, g->ndim, g->shape, mask, s->data);
    else
        tg__reduce_sum_f64(g->data, g->ndim, g->shape, mask, s->data);
    return s;
}

tg_tensor *tg__sum_to(tg_tensor *g, int ndim, const int64_t *shape)
{
    if (!g)
        return NULL;
    int lead = g->ndim - ndim;
    bool reducible_ = reducible(g, ndim, shape);
    // A gradient smaller than its input (a user op may return one that
    // broadcasts) is spread out instead; tg_expand reports real mismatches.
    if (!reducible_)
        return tg_expand(g, ndim, shape);
    int axes[TG_MAX_DIMS], n = 0;
    for (int d = 0; d < g->ndim; d++)
        if (d < lead || (shape[d - lead] == 1 && g->shape[d] != 1))
            axes[n++] = d;
    tg_tensor *s = n ? tg_sum(g, axes, n, true) : g;
    return tg_reshape(s, ndim, shape);
}
