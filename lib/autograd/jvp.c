/* jvp.c - forward mode. tg_jvp runs the user's function on the current tape,
 * then walks the nodes it recorded in tape order (already topological),
 * turning the tangents of each node's inputs into the tangent of its output
 * with the op's tangent rule (tg_op_def.tangent, written with ops in each op's
 * file). tg_hvp runs the same walk over a gradient built with
 * TG_CREATE_GRAPH: forward-over-reverse.
 *
 * Tangents are kept in an array indexed by node position, not in the
 * tensors' walk scratch (walk_grad), so a tangent rule may itself run a
 * backward walk, as the user-op fallback does. Nothing here touches the
 * reverse path: the builder and the node are unchanged. */
#include <string.h>

#include "autograd/engine_ops.h"
#include "autograd/tape_internal.h"

typedef struct fwd {
    const char *fn;   /* the public call, for messages */
    tg_tape *tape;
    size_t top0, top1; /* the nodes f recorded: [top0, top1) */
    tg_tensor **tan;  /* tan[k - top0]: the tangent of node k's output, or NULL (zero) */
    int n_seeds;      /* tensors given a tangent by the caller */
    tg_tensor **seed_t, **seed_v;
} fwd;

/* The tangent of t: from the node that made it when f recorded it, from the
 * caller when t is a seeded input, else zero (NULL). */
static tg_tensor *tangent_of(const fwd *w, const tg_tensor *t)
{
    const tg_node *nd = t->node;
    if (nd && nd->seq >= w->top0 && nd->seq < w->top1 && w->tape->nodes[nd->seq] == nd)
        return w->tan[nd->seq - w->top0];
    for (int i = 0; i < w->n_seeds; i++)
        if (w->seed_t[i] == t)
            return w->seed_v[i];
    return NULL;
}

/* Brings the tangent rule's result t to nd's output (same dtype, the
 * output's shape, expanded when it broadcasts). */
static tg_status fit(const fwd *w, const tg_node *nd, tg_tensor **t)
{
    const tg_tensor *out = nd->out;
    char a[TG__SHAPE_STR], b[TG__SHAPE_STR];
    if ((*t)->dtype != out->dtype)
        return tg__fail(TG_EDTYPE, "%s: the tangent rule of op '%s' gave %s for a %s output",
                        w->fn, tg__node_op_name(nd), tg_dtype_name((*t)->dtype),
                        tg_dtype_name(out->dtype));
    if (tg__same_shape(*t, out))
        return TG_OK;
    tg_tensor *e = tg_expand(*t, out->ndim, out->shape);
    if (!e)
        return tg__fail(TG_ESHAPE, "%s: the tangent rule of op '%s' gave shape %s for an "
                                   "output of shape %s", w->fn, tg__node_op_name(nd),
                        tg__shape_str(a, (*t)->ndim, (*t)->shape),
                        tg__shape_str(b, out->ndim, out->shape));
    *t = e;
    return TG_OK;
}

static tg_status visit(fwd *w, size_t k)
{
    tg_node *nd = w->tape->nodes[k];
    tg_tensor *small[4], **tin = small;
    if (nd->n_in > 4 && !(tin = tg__tape_alloc(w->tape, w->fn, (size_t)nd->n_in * sizeof *tin)))
        return TG_ENOMEM;
    bool any = false;
    for (int i = 0; i < nd->n_in; i++)
        any |= (tin[i] = tangent_of(w, nd->in[i])) != NULL;
    w->tan[k - w->top0] = NULL;
    if (!any) // no input depends on the seeded ones: a zero tangent, no work
        return TG_OK;
    if (!nd->def->tangent)
        return tg__fail(TG_ESTATE, "%s: op '%s' (node [%zu]) has no tangent rule, so forward "
                                   "mode cannot pass through it", w->fn, tg__node_op_name(nd), k);
    tg_tensor *t = NULL;
    tg_status s = nd->def->tangent(nd, tin, &t);
    if (s == TG_OK && !t)
        s = tg_last_status() != TG_OK
                ? tg_last_status()
                : tg__fail(TG_ESTATE, "%s: the tangent rule of op '%s' gave no tangent", w->fn,
                           tg__node_op_name(nd));
    if (s == TG_OK)
        s = fit(w, nd, &t);
    if (s == TG_OK)
        w->tan[k - w->top0] = t;
    return s;
}

/* Records (x, v) as a seed; a tensor given twice gets the sum of its tangents. */
static tg_status add_seed(fwd *w, tg_tensor *x, tg_tensor *v)
{
    for (int i = 0; i < w->n_seeds; i++)
        if (w->seed_t[i] == x) {
            tg_tensor *sum = tg_add(w->seed_v[i], v);
            if (!sum)
                return tg_last_status();
            w->seed_v[i] = sum;
            return TG_OK;
        }
    w->seed_t[w->n_seeds] = x;
    w->seed_v[w->n_seeds++] = v;
    return TG_OK;
}

static tg_status check_args(const char *fn, tg_fn f, int n, tg_tensor *const *inputs,
                            tg_tensor *const *tangents, const char *tname, unsigned flags)
{
    if (!f || n < 1 || !inputs || !tangents)
        return tg__fail(TG_EINVAL, "%s: need a function, n_inputs >= 1 (got %d) and non-NULL "
                                   "inputs and %s", fn, n, tname);
    if (flags & ~(unsigned)TG_CREATE_GRAPH)
        return tg__fail(TG_EINVAL, "%s: unknown flags 0x%x (only TG_CREATE_GRAPH)", fn, flags);
    for (int i = 0; i < n; i++) {
        const tg_tensor *x = inputs[i], *v = tangents[i];
        if (!x)
            return tg__fail(TG_EINVAL, "%s: inputs[%d] is NULL", fn, i);
        if (tg__check_live(fn, x) != TG_OK || (v && tg__check_live(fn, v) != TG_OK))
            return TG_ESTATE;
        if (!v)
            continue;
        if (v->dtype != x->dtype)
            return tg__fail(TG_EDTYPE, "%s: %s[%d] is %s, inputs[%d] is %s", fn, tname, i,
                            tg_dtype_name(v->dtype), i, tg_dtype_name(x->dtype));
        if (!tg__same_shape(v, x)) {
            char a[TG__SHAPE_STR], b[TG__SHAPE_STR];
            return tg__fail(TG_ESHAPE, "%s: %s[%d] has shape %s, inputs[%d] %s", fn, tname, i,
                            tg__shape_str(a, v->ndim, v->shape), i,
                            tg__shape_str(b, x->ndim, x->shape));
        }
    }
    return TG_OK;
}

/* The shared body of tg_jvp and tg_hvp. Runs f on inputs (each input in
 * `differentiate` that does not require grad is replaced by a tape alias that
 * does, so that f's ops are recorded), seeds the tangents, for hvp builds the
 * gradient of f's one-element result, and walks. results[i] (n_results of
 * them) receive the tangents of roots[i]: f's result for jvp, the gradients
 * for hvp. */
typedef struct request {
    const char *fn;
    tg_fn f;
    void *ctx;
    int n;
    tg_tensor *const *inputs, *const *tangents;
    bool hvp;
    unsigned flags;
} request;

static tg_status run(const request *r, tg_tensor **out, tg_tensor **results)
{
    tg_tape *tape = tg__tape_for(r->fn);
    if (!tape)
        return TG_ESTATE;
    fwd w = {.fn = r->fn, .tape = tape, .top0 = tape->n_nodes};
    bool prev_mode = tg_set_grad_enabled(true);
    tg_status s = TG_OK;
    int n = r->n;
    tg_tensor **xs = tg__tape_alloc(tape, r->fn, 4 * (size_t)n * sizeof *xs);
    if (!xs)
        s = TG_ENOMEM;
    else {
        w.seed_t = xs + n;
        w.seed_v = xs + 2 * n;
    }
    for (int i = 0; i < n && s == TG_OK; i++) {
        tg_tensor *x = r->inputs[i], *v = r->tangents[i];
        if ((v || r->hvp) && !x->requires_grad) {
            // A leaf alias sharing x's data: f's ops on it are recorded, and
            // the caller's tensor is left as it was.
            if (!(x = tg_detach(x)) || tg_tensor_set_requires_grad(x, true) != TG_OK)
                s = tg_last_status();
        }
        xs[i] = x;
        if (s == TG_OK && v)
            s = add_seed(&w, x, v);
    }
    // xs is NULL when its block could not be had (s is TG_ENOMEM then).
    tg_tensor *y = NULL, **grads = xs ? xs + 3 * n : NULL;
    if (s == TG_OK && !(y = r->f(xs, n, r->ctx)))
        s = tg_last_status() != TG_OK // the function's own message says why; keep it
                ? tg_last_status()
                : tg__fail(TG_EINVAL, "%s: the function returned NULL", r->fn);
    if (s == TG_OK && tg__check_live(r->fn, y) != TG_OK)
        s = TG_ESTATE;
    if (s == TG_OK && r->hvp) {
        char sh[TG__SHAPE_STR];
        if (y->numel != 1)
            s = tg__fail(TG_ESHAPE, "%s: the function returned shape %s, not one element",
                         r->fn, tg__shape_str(sh, y->ndim, y->shape));
        else if (y->requires_grad)
            s = tg_grad(1, &y, NULL, n, xs, grads, TG_CREATE_GRAPH | TG_ALLOW_UNUSED);
        else // f does not depend on its inputs through recorded ops: zero gradients
            for (int i = 0; i < n && s == TG_OK; i++)
                s = (grads[i] = tg_full_like(xs[i], 0.0)) ? TG_OK : tg_last_status();
    }
    w.top1 = tape->n_nodes;
    if (s == TG_OK && w.top1 > w.top0 &&
        !(w.tan = tg__tape_alloc(tape, r->fn, (w.top1 - w.top0) * sizeof *w.tan)))
        s = TG_ENOMEM;
    // The tangent ops are recorded only when a graph of them is wanted.
    tg_set_grad_enabled(r->flags & TG_CREATE_GRAPH);
    const char *prev_api = tg__api_enter(r->fn);
    for (size_t k = w.top0; k < w.top1 && s == TG_OK; k++)
        s = visit(&w, k);
    int n_results = r->hvp ? n : 1;
    tg_tensor *const *roots = r->hvp ? grads : &y;
    tg_tensor *res[64], **rs = res;
    if (s == TG_OK && n_results > 64 &&
        !(rs = tg__tape_alloc(tape, r->fn, (size_t)n_results * sizeof *rs)))
        s = TG_ENOMEM;
    for (int i = 0; i < n_results && s == TG_OK; i++) {
        tg_tensor *t = tangent_of(&w, roots[i]);
        if (!t) // not reached from the seeded inputs: a zero tangent
            t = tg_full_like(roots[i], 0.0);
        s = (rs[i] = t) ? TG_OK : tg_last_status();
    }
    tg__api_leave(prev_api);
    tg_set_grad_enabled(prev_mode);
    if (s != TG_OK) {
        tape->n_nodes = w.top0; // a failed call records nothing
        return s;
    }
    if (out)
        *out = y;
    memcpy(results, rs, (size_t)n_results * sizeof *results);
    return TG_OK;
}

tg_status tg_jvp(tg_fn f, void *ctx, int n_inputs, tg_tensor *const *inputs,
                 tg_tensor *const *tangents, tg_tensor **out, tg_tensor **out_tangent,
                 unsigned flags)
{
    const char *fn = "tg_jvp";
    tg_status s = check_args(fn, f, n_inputs, inputs, tangents, "tangents", flags);
    if (s == TG_OK && !out_tangent)
        s = tg__fail(TG_EINVAL, "%s: out_tangent is NULL", fn);
    if (s != TG_OK)
        return s;
    request r = {fn, f, ctx, n_inputs, inputs, tangents, false, flags};
    return run(&r, out, out_tangent);
}

tg_status tg_hvp(tg_fn f, void *ctx, int n_inputs, tg_tensor *const *inputs,
                 tg_tensor *const *v, tg_tensor **out, tg_tensor **hv, unsigned flags)
{
    const char *fn = "tg_hvp";
    tg_status s = check_args(fn, f, n_inputs, inputs, v, "v", flags);
    if (s == TG_OK && !hv)
        s = tg__fail(TG_EINVAL, "%s: hv is NULL", fn);
    if (s != TG_OK)
        return s;
    request r = {fn, f, ctx, n_inputs, inputs, v, true, flags};
    return run(&r, out, hv);
}
