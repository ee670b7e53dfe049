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

/* The bias gradient: g (R, K) summed over its rows to shape (K) or (1, K),
 * at most 4096 elements: straight to the sum kernel's small-sum loop
 * (tg__sum_rows: tg__reduce_sum's bytes), without reducible()'s, the mask's
 * and the kernel's shape walks, which cost more than the sum in a small
 * network's step (once per layer). NULL:
 * not this case (nothing recorded). */
static tg_tensor *sum_rows(tg_tensor *g, int ndim, const int64_t *shape)
{
    if (g->ndim != 2)
        return NULL;
    int64_t R = g->shape[0], K = g->shape[1];
    if (R < 2 || K < 1 || R * K > 4096 || !(ndim == 1 || (ndim == 2 && shape[0] == 1)) ||
        shape[ndim - 1] != K)
        return NULL;
    tg_tensor *s = tg__tape_tensor("tg_sum", g->dtype, ndim, shape, false);
    if (!s)
        return NULL;
    if (g->dtype == TG_F32)
        tg__sum_rows_f32(g->data, R, K, s->data);
    else
        tg__sum_rows_f64(g->data, R, K, s->data);
    return s;
}

tg_tensor *tg__sum_to_direct(tg_tensor *g, int ndim, const int64_t *shape)
{
    tg_tensor *rows = g ? sum_rows(g, ndim, shape) : NULL;
    if (rows)
        return rows;
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
