/* op_table.c - the registry of every op entry (for tests and generated docs;
 * the engine reaches an op only through its node's def pointer) and the shape
 * rules several ops share. */
#include <string.h>

#include "ops/ops_internal.h"

#define TG__REGISTER(name) &tg__def_##name,
#define TG__REGISTER_UNARY(name, ...) &tg__def_##name,
const tg_op_def *const tg__op_registry[] = {
    TG_UNARY_OPS(TG__REGISTER_UNARY) TG_BINARY_OPS(TG__REGISTER_UNARY)
    TG_OP_ENTRIES(TG__REGISTER) NULL,
};
#undef TG__REGISTER
#undef TG__REGISTER_UNARY

tg_status tg__tangent_acc(tg_tensor **acc, tg_tensor *term)
{
    if (!term)
        return tg_last_status() != TG_OK ? tg_last_status() : TG_EINVAL;
    tg_tensor *sum = *acc ? tg_add(*acc, term) : term;
    if (!sum)
        return tg_last_status();
    *acc = sum;
    return TG_OK;
}

tg_status tg__tangent_symmetric(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    tg_tensor *din[1] = {NULL};
    tg_status s = nd->def->backward(nd, tin[0], din);
    if (s == TG_OK)
        *tout = din[0];
    return s;
}

tg_status tg__norm_axis(const char *fn, int axis, int ndim, int *out)
{
    // A 0-dim tensor takes axis 0 or -1, as in numpy.
    int a = ndim == 0 && axis == -1 ? 0 : (axis < 0 ? axis + ndim : axis);
    if (a < 0 || a >= (ndim ? ndim : 1))
        return tg__fail(TG_EINVAL, "%s: axis %d out of range for %d dims", fn, axis, ndim);
    *out = a;
    return TG_OK;
}

tg_status tg__shape_same(const char *fn, tg_tensor *const *in, int n_in, const void *params,
                         int *ndim, int64_t *shape)
{
    *ndim = in[0]->ndim;
    for (int d = 0; d < in[0]->ndim; d++) // at most 8: a loop costs less than a call
        shape[d] = in[0]->shape[d];
    return TG_OK;
}

tg_status tg__shape_given(const char *fn, tg_tensor *const *in, int n_in, const void *params,
                          int *ndim, int64_t *shape)
{
    const tg__shape_params *p = params;
    *ndim = p->ndim;
    memcpy(shape, p->shape, (size_t)p->ndim * sizeof *shape);
    return TG_OK;
}

/* The message of a failed broadcast, out of line: its buffers would make
 * every call of the rule below set up a large stack frame. */
static __attribute__((noinline, cold)) tg_status
broadcast_error(const char *fn, tg_tensor *const *in, int n_in, int d, int64_t size, int64_t s)
{
    // Every shape string fits its own buffer (TG__SHAPE_STR holds the
    // longest 8-dim shape); snprintf bounds the joined list.
    char buf[TG__SHAPE_STR], all[3 * (TG__SHAPE_STR + 4)];
    size_t used = 0;
    for (int j = 0; j < n_in && j < 3 && used < sizeof all; j++) {
        int w = snprintf(all + used, sizeof all - used, "%s%s", j ? " vs " : "",
                         tg__shape_str(buf, in[j]->ndim, in[j]->shape));
        used += w > 0 ? (size_t)w : 0;
    }
    return tg__fail(TG_ESHAPE, "%s: shapes %s do not broadcast (dimension %d: %lld "
                               "vs %lld)", fn, all, d, (long long)size, (long long)s);
}

tg_status tg__shape_broadcast(const char *fn, tg_tensor *const *in, int n_in,
                              const void *params, int *ndim, int64_t *shape)
{
    bool same = true; // the common case needs no dimension by dimension rule
    for (int i = 1; i < n_in && same; i++)
        same = tg__same_shape(in[i], in[0]);
    if (same)
        return tg__shape_same(fn, in, n_in, params, ndim, shape);
    // Two operands, one shape the other's last dims (a bias row): the longer
    // shape, which the rule below would give, without its per-dim loops.
    if (n_in == 2) {
        const tg_tensor *lo = in[0]->ndim >= in[1]->ndim ? in[0] : in[1];
        const tg_tensor *sh = lo == in[0] ? in[1] : in[0];
        int lead = lo->ndim - sh->ndim;
        bool suffix = true;
        for (int d = 0; d < sh->ndim && suffix; d++)
            suffix = sh->shape[d] == lo->shape[lead + d];
        if (suffix) {
            *ndim = lo->ndim;
            for (int d = 0; d < lo->ndim; d++)
                shape[d] = lo->shape[d];
            return TG_OK;
        }
    }
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
            if (size != 1)
                return broadcast_error(fn, in, n_in, d, size, s);
            size = s;
        }
        shape[d] = size;
    }
    *ndim = nd;
    return TG_OK;
}
