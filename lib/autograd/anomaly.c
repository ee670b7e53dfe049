/* anomaly.c - anomaly mode: find the first op or backward step that makes a
 * NaN or an infinity, and say which one and from what inputs, instead of
 * letting it spread into a NaN loss many ops later. */
#include <math.h>

#include "autograd/tape_internal.h"

_Thread_local bool tg__anomaly_on;

bool tg_set_anomaly_mode(bool enabled)
{
    bool prev = tg__anomaly_on;
    tg__anomaly_on = enabled;
    return prev;
}

bool tg_anomaly_mode(void) { return tg__anomaly_on; }


/* Index of the first NaN or infinity in t, or -1. */
static int64_t first_bad(const tg_tensor *t)
{
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(tg__get(t, i)))
            return i;
    return -1;
}

/* " from input with min a, max b" (or "inputs ... , ..."), into buf. */
static void describe_inputs(char *buf, size_t size, const tg_node *nd)
{
    size_t used = (size_t)snprintf(buf, size, " from input%s", nd->n_in > 1 ? "s" : "");
    for (int i = 0; i < nd->n_in && used < size; i++) {
        const tg_tensor *x = nd->in[i];
        double lo = INFINITY, hi = -INFINITY;
        bool nan = false;
        for (int64_t k = 0; k < x->numel; k++) {
            double v = tg__get(x, k);
            nan |= v != v;
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        int w = x->numel == 0
                    ? snprintf(buf + used, size - used, "%s empty", i ? "," : "")
                    : snprintf(buf + used, size - used, "%s with min %g, max %g%s",
                               i ? "," : "", lo, hi, nan ? " and NaN" : "");
        used += w > 0 ? (size_t)w : 0;
    }
}

tg_status tg__anomaly_check_forward(const char *fn, const tg_node *nd, bool recorded)
{
    int64_t k = first_bad(nd->out);
    if (k < 0)
        return TG_OK;
    char from[256];
    describe_inputs(from, sizeof from, nd);
    char where[64];
    if (recorded)
        snprintf(where, sizeof where, "node [%zu], op %s", nd->seq, tg__node_op_name(nd));
    else
        snprintf(where, sizeof where, "op %s, not recorded", tg__node_op_name(nd));
    return tg__fail(TG_ENUMERIC, "%s: produced %g at element %lld%s (%s)", fn,
                    tg__get(nd->out, k), (long long)k, from, where);
}

tg_status tg__anomaly_check_backward(const char *fn, const tg_node *nd, int i,
                                     const tg_tensor *din)
{
    int64_t k = first_bad(din);
    if (k < 0)
        return TG_OK;
    char from[256];
    describe_inputs(from, sizeof from, nd);
    return tg__fail(TG_ENUMERIC, "%s: the backward of %s (node [%zu]) produced %g at element "
                                 "%lld of the gradient for input %d%s", fn,
                    tg__node_op_name(nd), nd->seq, tg__get(din, k), (long long)k, i, from);
}
