/* sum_to.c - the engine's one broadcast rule: an op's backward may return a
 * gradient of the broadcast (output) shape, and the engine sums it back to the
 * input's shape here, once, instead of every op doing it. */
#include "autograd/engine_ops.h"
#include "autograd/tape_internal.h"

tg_tensor *tg__sum_to(tg_tensor *g, int ndim, const int64_t *shape)
{
    if (!g)
        return NULL;
    int lead = g->ndim - ndim;
    bool reducible = lead >= 0;
    for (int d = 0; d < ndim && reducible; d++)
        reducible = g->shape[d + lead] == shape[d] || shape[d] == 1;
    // A gradient smaller than its input (a user op may return one that
    // broadcasts) is spread out instead; tg_expand reports real mismatches.
    if (!reducible)
        return tg_expand(g, ndim, shape);
    int axes[TG_MAX_DIMS], n = 0;
    for (int d = 0; d < g->ndim; d++)
        if (d < lead || (shape[d - lead] == 1 && g->shape[d] != 1))
            axes[n++] = d;
    tg_tensor *s = n ? tg_sum(g, axes, n, true) : g;
    return tg_reshape(s, ndim, shape);
}
