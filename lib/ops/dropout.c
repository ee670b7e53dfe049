/* dropout.c - inverted dropout as a product with a constant mask, so the
 * gradient (g * mask) and every higher one come from tg_mul. */
#include <math.h>

#include "ops/ops_internal.h"

tg_tensor *tg_dropout(tg_tensor *x, double p, bool training, tg_rng *rng)
{
    const char *fn = "tg_dropout";
    if (tg__bad_input(fn, x, 0))
        return NULL;
    if (!(p >= 0 && p < 1))
        return tg__fail_null(TG_EINVAL, "%s: p = %g must be in [0, 1)", fn, p);
    if (tg__check_live(fn, x) != TG_OK) // the pass-through below must not hide it
        return NULL;
    if (!training || p == 0)
        return x;
    if (!rng)
        return tg__fail_null(TG_EINVAL, "%s: rng is NULL", fn);
    const char *prev = tg__api_enter(fn);
    tg_tensor *mask = tg_full_like(x, 0.0), *out = NULL;
    if (mask) {
        double keep = 1.0 / (1.0 - p);
        for (int64_t i = 0; i < mask->numel; i++)
            if (tg_rng_uniform(rng) >= p)
                tg__set(mask, i, keep);
        out = tg_mul(x, mask);
    }
    tg__api_leave(prev);
    return out;
}
