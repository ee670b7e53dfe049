/* user_op.c - ops defined by users (tg_apply): one table entry that forwards
 * to the user's shape, forward and backward functions, and checks what they
 * hand back, so a mistake in a user op is reported by name instead of
 * surfacing as a confusing failure deeper in the engine. */
#include <string.h>

#include "ops/ops_internal.h"

typedef struct user_params {
    const tg_op_def_user *user;
    void *ctx;
} user_params;

static tg_status user_shape(const char *fn, tg_tensor *const *in, int n_in, const void *params,
                            int *ndim, int64_t *shape)
{
    const user_params *p = params;
    const tg_op_def_user *def = p->user;
    if (!def->shape)
        return tg__shape_same(fn, in, n_in, params, ndim, shape);
    tg_clear_error();
    tg_status s = def->shape(in, ndim, shape, p->ctx);
    if (s != TG_OK && tg_last_status() == TG_OK)
        return tg__fail(s, "%s: shape rule failed", fn);
    if (s == TG_OK && (*ndim < 0 || *ndim > TG_MAX_DIMS))
        return tg__fail(TG_EINVAL, "%s: shape rule gave ndim %d", fn, *ndim);
    return s;
}

static tg_status user_forward(tg_node *nd)
{
    const user_params *p = TG__PARAMS(nd, user_params);
    tg_status s = p->user->forward(nd->out, nd->in, p->ctx);
    if (s != TG_OK && tg_last_status() == TG_OK)
        return tg__fail(s, "tg_apply(%s): forward failed", p->user->name);
    return s;
}

/* Whether the engine can bring g to (ndim, shape): equal, summed over
 * broadcast dimensions, or spread over them. */
static bool gradient_fits(const tg_tensor *g, int ndim, const int64_t *shape)
{
    int nd = g->ndim > ndim ? g->ndim : ndim;
    for (int d = 0; d < nd; d++) {
        int kg = d - (nd - g->ndim), ks = d - (nd - ndim);
        int64_t a = kg >= 0 ? g->shape[kg] : 1, b = ks >= 0 ? shape[ks] : 1;
        if (a != b && a != 1 && b != 1)
            return false;
    }
    return true;
}

static tg_status user_backward(tg_node *nd, tg_tensor *dout, tg_tensor **din)
{
    const user_params *p = TG__PARAMS(nd, user_params);
    const tg_op_def_user *def = p->user;
    bool needs[8];
    for (int i = 0; i < nd->n_in; i++)
        needs[i] = tg__needs_grad(nd, i);
    tg_status s = def->backward(nd->in, nd->out, dout, needs, din, p->ctx);
    if (s != TG_OK)
        return tg_last_status() != TG_OK ? s : tg__fail(s, "tg_apply(%s): backward failed",
                                                        def->name);
    for (int i = 0; i < nd->n_in; i++) {
        const tg_tensor *x = nd->in[i];
        if (!needs[i])
            continue;
        if (!din[i])
            return tg__fail(TG_ESTATE, "tg_apply(%s): backward gave no gradient for input %d",
                            def->name, i);
        if (din[i]->dtype != x->dtype)
            return tg__fail(TG_EDTYPE, "tg_apply(%s): backward gave a %s gradient for a %s "
                                       "input %d", def->name, tg_dtype_name(din[i]->dtype),
                            tg_dtype_name(x->dtype), i);
        if (!gradient_fits(din[i], x->ndim, x->shape)) {
            char a[TG__SHAPE_STR], b[TG__SHAPE_STR];
            return tg__fail(TG_ESHAPE, "tg_apply(%s): backward gave %s for input %d of shape %s",
                            def->name, tg__shape_str(a, din[i]->ndim, din[i]->shape), i,
                            tg__shape_str(b, x->ndim, x->shape));
        }
    }
    return TG_OK;
}

/* Without a tangent rule: J t = d<J^T u, t>/du (J^T u is linear in u, so any
 * u will do; zeros), two reverse passes through the user's backward. Exact,
 * but only when backward is built from ops on dout. When the tangent itself
 * is not being recorded, the backward runs on detached inputs and tangents
 * so that the second pass stays inside this op instead of walking the graph
 * below it. */
static tg_status user_tangent_fallback(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    const user_params *p = TG__PARAMS(nd, user_params);
    const tg_op_def_user *def = p->user;
    const char *fn = tg__api_fn("tg_jvp");
    bool create = tg_grad_enabled();
    bool prev = tg_set_grad_enabled(true);
    tg_tensor *ins[8], *din[8] = {0}, *dot = NULL, *out = create ? nd->out : tg_detach(nd->out);
    bool needs[8];
    tg_tensor *u = tg_full_like(nd->out, 0.0);
    tg_status s = u && out ? tg_tensor_set_requires_grad(u, true) : tg_last_status();
    for (int i = 0; i < nd->n_in && s == TG_OK; i++) {
        needs[i] = tin[i] != NULL;
        ins[i] = create ? nd->in[i] : tg_detach(nd->in[i]);
        if (!ins[i])
            s = tg_last_status();
    }
    if (s == TG_OK && (s = def->backward(ins, out, u, needs, din, p->ctx)) != TG_OK &&
        tg_last_status() == TG_OK)
        s = tg__fail(s, "tg_apply(%s): backward failed", def->name);
    for (int i = 0; i < nd->n_in && s == TG_OK; i++) {
        if (!needs[i])
            continue;
        if (!din[i])
            s = tg__fail(TG_ESTATE, "tg_apply(%s): backward gave no gradient for input %d",
                         def->name, i);
        else // a tangent that requires grad must not pull its own graph in either
            s = tg__tangent_acc(&dot, tg_sum(tg_mul(din[i], create ? tin[i] : tg_detach(tin[i])),
                                             NULL, 0, false));
    }
    if (s == TG_OK) {
        // dot does not depend on u when backward wrote its numbers directly.
        unsigned flags = create ? TG_CREATE_GRAPH : TG_RETAIN_GRAPH;
        s = dot->requires_grad ? tg_grad(1, &dot, NULL, 1, &u, tout, flags) : TG_EINVAL;
        if (s != TG_OK && s != TG_ENOMEM)
            s = tg__fail(TG_ESTATE, "%s: user op '%s' has no tangent rule, and its backward is "
                                    "not built from tapegrad ops on dout, which the fallback "
                                    "needs: give the op a .tangent", fn, def->name);
    }
    tg_set_grad_enabled(prev);
    return s;
}

static tg_status user_tangent(tg_node *nd, tg_tensor *const *tin, tg_tensor **tout)
{
    const user_params *p = TG__PARAMS(nd, user_params);
    const tg_op_def_user *def = p->user;
    if (!def->tangent)
        return user_tangent_fallback(nd, tin, tout);
    tg_status s = def->tangent(nd->in, nd->out, tin, tout, p->ctx);
    if (s != TG_OK)
        return tg_last_status() != TG_OK ? s : tg__fail(s, "tg_apply(%s): tangent failed",
                                                        def->name);
    if (!*tout)
        return tg__fail(TG_ESTATE, "tg_apply(%s): tangent gave no tangent", def->name);
    return TG_OK; // the engine checks its dtype and shape, naming the op
}

static const char *user_label(const tg_node *nd) { return TG__PARAMS(nd, user_params)->user->name; }

const tg_op_def tg__def_user = {.name = "apply", .fn = "tg_apply", .n_in = -1,
                                .differentiable = true, .params_size = sizeof(user_params),
                                .shape = user_shape, .forward = user_forward,
                                .backward = user_backward, .label = user_label,
                                .tangent = user_tangent};

tg_tensor *tg_apply(const tg_op_def_user *def, int n_inputs, tg_tensor *const *inputs, void *ctx)
{
    if (!def || !def->name || !def->forward || !def->backward)
        return tg__fail_null(TG_EINVAL, "tg_apply: op definition%s is incomplete "
                                        "(needs name, forward and backward)",
                             def && def->name ? "" : " (or its name)");
    if (def->n_inputs < 1 || def->n_inputs > 8 || n_inputs != def->n_inputs)
        return tg__fail_null(TG_EINVAL, "tg_apply: op '%s' takes %d inputs (1..8), got %d",
                             def->name, def->n_inputs, n_inputs);
    user_params p = {def, ctx};
    char fn[96];
    snprintf(fn, sizeof fn, "tg_apply(%s)", def->name);
    const char *prev = tg__api_enter(fn);
    tg_tensor *out = tg__apply(&tg__def_user, n_inputs, inputs, &p);
    tg__api_leave(prev);
    return out;
}

tg_status tg_set_error(tg_status code, const char *fmt, ...)
{
    if (!fmt) // user input: keep the code, say why there is no message
        return tg__fail(code == TG_OK ? TG_EINVAL : code, "tg_set_error: NULL format (code %d, "
                        "%s)", (int)code, tg_status_str(code));
    va_list ap;
    va_start(ap, fmt);
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tg__fail(code == TG_OK ? TG_EINVAL : code, "%s", msg);
}
