/* geometry.c - the one source of sliding-window geometry: conv2d, the pools
 * and the nn layers' shape inference all pad and size their windows here, so
 * TF's "same" rule cannot drift between them. */
#include "ops/ops_internal.h"

void tg__window_pads(tg_padding mode, int64_t in, int64_t k, int64_t stride, int64_t dilation,
                     int64_t explicit_lo, int64_t explicit_hi, int64_t *lo, int64_t *hi)
{
    if (mode == TG_PAD_EXPLICIT) {
        *lo = explicit_lo;
        *hi = explicit_hi;
    } else if (mode == TG_PAD_SAME) {
        // out = ceil(in / stride); the padding that needs is split, the odd
        // element going last (TF and Keras).
        int64_t out = (in + stride - 1) / stride, span = dilation * (k - 1) + 1;
        int64_t total = (out - 1) * stride + span - in;
        if (total < 0)
            total = 0;
        *lo = total / 2;
        *hi = total - *lo;
    } else {
        *lo = *hi = 0;
    }
}

int64_t tg__window_out(int64_t in, int64_t k, int64_t stride, int64_t dilation, int64_t lo,
                       int64_t hi)
{
    int64_t span = dilation * (k - 1) + 1, padded = in + lo + hi;
    return padded < span ? -1 : (padded - span) / stride + 1;
}
