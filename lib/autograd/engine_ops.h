/* engine_ops.h - the only ops the autograd engine may call. The engine sits
 * below lib/ops, but accumulating gradients (add), reducing a broadcast
 * gradient (sum, reshape, expand) and seeding a walk (full_like) are op-level
 * work that must itself be recorded under TG_CREATE_GRAPH. The layering test
 * (tools/check_layering.py) allows exactly the functions declared here. */
#ifndef TG_AUTOGRAD_ENGINE_OPS_H
#define TG_AUTOGRAD_ENGINE_OPS_H

#include "tapegrad/tensor.h"

tg_tensor *tg_add(tg_tensor *a, tg_tensor *b);
tg_tensor *tg_sum(tg_tensor *x, const int *axes, int n_axes, bool keepdim);
tg_tensor *tg_reshape(tg_tensor *x, int ndim, const int64_t *shape);
tg_tensor *tg_expand(tg_tensor *x, int ndim, const int64_t *shape);

#endif
