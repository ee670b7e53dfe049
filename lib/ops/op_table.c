/* op_table.c - the table of ops by id, the shape rules several ops share, the
 * broadcast reduction the engine applies to gradients, and user-defined ops. */
#include <string.h>

#include "ops/ops_internal.h"

#define TG__OP_ENTRY(ID, name) [TG_OP_##ID] = &tg__def_##name,
const tg_op_def *const tg__ops[TG_OP_COUNT] = {TG_OP_LIST(TG__OP_ENTRY)};
#undef TG__OP_ENTRY
_Static_assert(sizeof tg__ops / sizeof tg__ops[0] == TG_OP_COUNT, "op table out of sync");

const char *tg__op_fn(int op)
{
    // Built once: "tg_" + name for each op, so messages name the public call.
    static const char *const names[TG_OP_COUNT] = {
#define TG__OP_FN(ID, name) [TG_OP_##ID] = "tg_" #name,
        TG_OP_LIST(TG__OP_FN)
#undef TG__OP_FN
    };
    return op >= 0 && op < TG_OP_COUNT ? names[op] : "tg_?";
}

tg_status tg__norm_axis(const char *fn, int axis, int ndim, int *out)
{
    int a = axis < 0 ? axis + ndim : axis;
    if (a < 0 || a >= (ndim ? ndim : 1) || (ndim == 0 && axis != 0 && axis != -1))
        return tg__fail(TG_EINVAL, "%s: axis %d out of range for %d dims", fn, axis, ndim);
    *out = a;
    return TG_OK;
}

tg_status tg__shape_same(const char *fn, tg_tensor *const *in, int n_in, const tg_op_params *p,
                         int *ndim, int64_t *shape)
{
    *ndim = in[0]->ndim;
    memcpy(shape, in[0]->shape, (size_t)in[0]->ndim * sizeof *shape);
    return TG_OK;
}

tg_status tg__shape_broadcast(const char *fn, tg_tensor *const *in, int n_in,
                              const tg_op_params *p, int *ndim, int64_t *shape)
{
    int nd = 0;
    for (int i = 0; i < n_in; i++)
        if (in[i]->ndim > nd)
            nd = in[i]->ndim;
    for (int d = 0; d < nd; d++) {
        int64_t size = 1;
        for (int i = 0; i < n_in; i++) {
            int k = d - (nd - in[i]->ndim);
            int64_t s = k >= 0 ? in[i]->shape[k] : 1;
            if (s == size || s == 1)
                continue;
            if (size != 1) {
                char buf[TG_MAX_DIMS][TG__SHAPE_STR];
                char all[3 * TG__SHAPE_STR] = "";
                for (int j = 0; j < n_in && j < 3; j++) {
                    strcat(all, j ? " vs " : "");
                    strcat(all, tg__shape_str(buf[j], in[j]->ndim, in[j]->shape));
                }
                return tg__fail(TG_ESHAPE, "%s: shapes %s do not broadcast (dimension %d: %lld "
                                           "vs %lld)", fn, all, d,
                                (long long)size, (long long)s);
            }
            size = s;
        }
        shape[d] = size;
    }
    *ndim = nd;
    return TG_OK;
}

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

/* ---- user-defined ops: the table entry forwards to the user's functions ---- */

static tg_status user_shape(const char *fn, tg_tensor *const *in, int n_in,
                            const tg_op_params *p, int *ndim, int64_t *shape)
{
    const tg_op_def_user *def = p->user;
    if (!def->shape)
        return tg__shape_same(fn, in, n_in, p, ndim, shape);
    tg_clear_error();
    tg_status s = def->shape(in, ndim, shape, p->user_ctx);
    if (s != TG_OK && tg_last_status() == TG_OK)
        return tg__fail(s, "tg_apply(%s): shape rule failed", def->name);
    if (s == TG_OK && (*ndim < 0 || *ndim > TG_MAX_DIMS))
        return tg__fail(TG_EINVAL, "tg_apply(%s): shape rule gave ndim %d", def->name, *ndim);
    return s;
}

static tg_status user_forward(tg_node *nd)
{
    const tg_op_def_user *def = nd->p.user;
    tg_status s = def->forward(nd->out, nd->in, nd->p.user_ctx);
    if (s != TG_OK && tg_last_status() == TG_OK)
        return tg__fail(s, "tg_apply(%s): forward failed", def->name);
    return s;
}

static tg_status user_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    const tg_op_def_user *def = nd->p.user;
    bool needs[8];
    for (int i = 0; i < nd->n_in; i++)
        needs[i] = tg__needs_grad(nd, i);
    tg_status s = def->backward(nd->in, nd->out, dout, needs, din, nd->p.user_ctx);
    if (s != TG_OK)
        return tg_last_status() != TG_OK ? s : tg__fail(s, "tg_apply(%s): backward failed",
                                                        def->name);
    for (int i = 0; i < nd->n_in; i++) {
        if (!needs[i])
            continue;
        if (!din[i])
            return tg__fail(TG_ESTATE, "tg_apply(%s): backward gave no gradient for input %d",
                            def->name, i);
        if (din[i]->dtype != nd->in[i]->dtype)
            return tg__fail(TG_EDTYPE, "tg_apply(%s): backward gave a %s gradient for a %s "
                                       "input %d", def->name, tg_dtype_name(din[i]->dtype),
                            tg_dtype_name(nd->in[i]->dtype), i);
    }
    return TG_OK;
}

const tg_op_def tg__def_user = {"apply", -1, true, false, user_shape, user_forward,
                                user_backward};
