/* backward.c - the reverse walk. Gradients arriving at a tensor are kept in its
 * walk_grad slot, valid while walk_id matches the walk; each visited node turns
 * the gradient at its output into gradients for its inputs (op table
 * backward), which the engine sums back over broadcast dimensions and
 * accumulates over every use of the input. */
#include <string.h>

#include "autograd/engine_ops.h"
#include "autograd/tape_internal.h"

static _Thread_local uint64_t walk_counter;

typedef struct walk {
    const char *fn; /* the public call, for messages */
    uint64_t id;
    tg_tape *tape;
    bool create_graph;
    tg_tensor **leaves; /* leaves reached, in first-reached order */
    size_t n_leaves, cap_leaves;
    tg__explain *ex; /* NULL unless the tape is explaining (explain.c) */
} walk;

static tg_status note_leaf(walk *w, tg_tensor *t)
{
    // The list lives in the tape's arena, so a training step takes no memory
    // from the system once the arena has grown to the step's size.
    if (w->n_leaves == w->cap_leaves) {
        size_t cap = w->cap_leaves ? 2 * w->cap_leaves : 16;
        tg_tensor **l = tg__tape_alloc(w->tape, w->fn, cap * sizeof *l);
        if (!l)
            return TG_ENOMEM;
        if (w->n_leaves)
            memcpy(l, w->leaves, w->n_leaves * sizeof *l);
        w->leaves = l;
        w->cap_leaves = cap;
    }
    w->leaves[w->n_leaves++] = t;
    return TG_OK;
}

static tg_status deliver(walk *w, tg_tensor *t, tg_tensor *g)
{
    if (!g)
        return tg_last_status() != TG_OK ? tg_last_status() : TG_EINVAL;
    tg_tensor *given = g;
    if (!tg__same_shape(g, t)) {
        // Recorded as ops when a graph of the backward is built, or when
        // anomaly mode is to check the sum as an op result.
        g = w->create_graph || tg__anomaly_enabled() ? tg__sum_to(g, t->ndim, t->shape)
                                                     : tg__sum_to_direct(g, t->ndim, t->shape);
        if (!g)
            return tg_last_status();
    }
    if (w->ex)
        tg__explain_deliver(w->ex, t, given, g);
    if (t->walk_id == w->id) {
        g = tg_add(t->walk_grad, g);
        if (!g)
            return tg_last_status();
        t->walk_grad = g;
        return TG_OK;
    }
    t->walk_id = w->id;
    t->walk_grad = g;
    return t->node ? TG_OK : note_leaf(w, t);
}

static tg_status visit(walk *w, tg_node *nd)
{
    const tg_op_def *def = nd->def;
    if (nd->released)
        return tg__fail(TG_ESTATE, "%s: the graph through op '%s' was released by an "
                                   "earlier backward; pass TG_RETAIN_GRAPH to walk it twice",
                        w->fn, tg__node_op_name(nd));
    tg_tensor *dout = nd->out->walk_grad;
    tg_tensor *small[4] = {0}, **din = small;
    if (nd->n_in > 4) {
        din = tg__tape_alloc(w->tape, w->fn, (size_t)nd->n_in * sizeof *din);
        if (!din)
            return TG_ENOMEM;
        memset(din, 0, (size_t)nd->n_in * sizeof *din);
    }
    // The engine picks the fast path: a fused backward computes the same
    // gradients in one pass, but records nothing, so it runs only when no
    // graph of the backward is wanted.
    bool fused = def->fused_backward && !w->create_graph;
    tg_status s = (fused ? def->fused_backward : def->backward)(nd, dout, din);
    if (s != TG_OK)
        return s;
    if (tg__anomaly_enabled())
        for (int i = 0; i < nd->n_in && s == TG_OK; i++)
            if (din[i])
                s = tg__anomaly_check_backward(w->fn, nd, i, din[i]);
    if (s != TG_OK)
        return s;
    if (w->ex)
        tg__explain_step(w->ex, nd, dout);
    for (int i = 0; i < nd->n_in && s == TG_OK; i++) {
        if (!tg__needs_grad(nd, i))
            continue;
        // The common case inline: the first gradient to reach a recorded
        // tensor, of its shape, with nothing to explain, is just kept.
        tg_tensor *t = nd->in[i], *g = din[i];
        if (g && t->node && t->walk_id != w->id && !w->ex && tg__same_shape(g, t)) {
            t->walk_id = w->id;
            t->walk_grad = g;
        } else {
            s = deliver(w, t, g);
        }
    }
    return s;
}

static tg_status check_root(const char *fn, tg_tensor *out, tg_tensor *seed)
{
    if (!out) // the end of a failed expression: keep its cause, like an op would
        return tg_last_status() != TG_OK ? tg_last_status()
                                         : tg__fail(TG_EINVAL, "%s: output is NULL", fn);
    if (tg__check_live(fn, out) != TG_OK || (seed && tg__check_live(fn, seed) != TG_OK))
        return TG_ESTATE;
    if (!out->requires_grad)
        return tg__fail(TG_EINVAL, "%s: output does not require grad (no input of it requires "
                                   "grad, or it was computed with grad mode off)", fn);
    char a[TG__SHAPE_STR], b[TG__SHAPE_STR];
    if (!seed && out->numel != 1)
        return tg__fail(TG_ESHAPE, "%s: output of shape %s is not one element; pass a seed "
                                   "gradient", fn, tg__shape_str(a, out->ndim, out->shape));
    if (seed && !tg__same_shape(seed, out))
        return tg__fail(TG_ESHAPE, "%s: seed shape %s differs from output shape %s", fn,
                        tg__shape_str(a, seed->ndim, seed->shape),
                        tg__shape_str(b, out->ndim, out->shape));
    if (seed && seed->dtype != out->dtype)
        return tg__fail(TG_EDTYPE, "%s: seed is %s, output is %s", fn,
                        tg_dtype_name(seed->dtype), tg_dtype_name(out->dtype));
    return TG_OK;
}

/* Runs one walk from outs (seeded) down to the start of the tape. On return
 * every tensor reached has walk_id == w->id and its gradient in walk_grad. */
static tg_status run_walk(walk *w, const char *fn, int n_outs, tg_tensor *const *outs,
                          tg_tensor *const *seeds, unsigned flags)
{
    for (int i = 0; i < n_outs; i++) {
        tg_status s = check_root(fn, outs[i], seeds ? seeds[i] : NULL);
        if (s != TG_OK)
            return s;
    }
    w->fn = fn;
    w->tape = tg__tape_for(fn);
    if (!w->tape)
        return TG_ESTATE;
    w->id = ++walk_counter;
    w->create_graph = flags & TG_CREATE_GRAPH;
    w->ex = w->tape->explain ? tg__explain_begin(w->tape, fn, w->id, n_outs, outs) : NULL;
    bool prev_mode = tg_set_grad_enabled(w->create_graph);
    tg_status s = TG_OK;
    size_t top = 0;
    for (int i = 0; i < n_outs && s == TG_OK; i++) {
        tg_tensor *seed = seeds && seeds[i] ? seeds[i] : NULL;
        if (!seed && outs[i]->numel == 1) {
            // The usual seed, a one-element 1 of the root's shape, without
            // tg_full_like's fill loop (the same tensor, the same name in a
            // message).
            seed = tg__tape_tensor("tg_full_like", outs[i]->dtype, outs[i]->ndim,
                                   outs[i]->shape, false);
            if (seed)
                tg__set(seed, 0, 1.0);
        } else if (!seed) {
            seed = tg_full_like(outs[i], 1.0);
        }
        s = deliver(w, outs[i], seed);
        if (outs[i]->node) {
            if (outs[i]->node->seq >= w->tape->n_nodes ||
                w->tape->nodes[outs[i]->node->seq] != outs[i]->node)
                s = tg__fail(TG_ESTATE, "%s: output was recorded on another tape or before a "
                                        "reset", fn);
            else if (outs[i]->node->seq + 1 > top)
                top = outs[i]->node->seq + 1;
        }
    }
    // Nodes appended during the walk (TG_CREATE_GRAPH) lie above top and are
    // not visited; tape->nodes may move as they are appended, so index anew.
    // A node is marked released as soon as it has been walked (visit refuses
    // one that already is), instead of in a second pass over the tape; a walk
    // that fails takes the marks back, so that it releases nothing.
    bool release = !(flags & (TG_RETAIN_GRAPH | TG_CREATE_GRAPH));
    size_t k = top;
    while (s == TG_OK && k > 0) {
        tg_node *nd = w->tape->nodes[--k];
        if (nd->out->walk_id == w->id && (s = visit(w, nd)) == TG_OK && release)
            nd->released = true;
    }
    // After a failure at node k: the nodes walked before it (none of them was
    // released before, or visit would have refused it).
    if (s != TG_OK && release)
        for (size_t j = k + 1; j < top; j++)
            if (w->tape->nodes[j]->out->walk_id == w->id)
                w->tape->nodes[j]->released = false;
    tg_set_grad_enabled(prev_mode);
    return s;
}

static tg_status accumulate_leaf(tg_tensor *leaf)
{
    tg_tensor *g = leaf->walk_grad;
    if (!leaf->grad) {
        leaf->grad = tg__tensor_alloc(leaf->tape, "tg_backward", leaf->dtype, leaf->ndim,
                                      leaf->shape, true);
        if (!leaf->grad)
            return TG_ENOMEM;
    }
    tg_tensor *acc = leaf->grad;
    if (acc->dtype == TG_F32) {
        float *d = acc->data;
        const float *s = g->data;
        for (int64_t i = 0; i < acc->numel; i++)
            d[i] += s[i];
    } else {
        double *d = acc->data;
        const double *s = g->data;
        for (int64_t i = 0; i < acc->numel; i++)
            d[i] += s[i];
    }
    return TG_OK;
}

tg_status tg_backward_ex(tg_tensor *out, tg_tensor *seed, unsigned flags)
{
    walk w = {0};
    tg_tensor *seeds[1] = {seed};
    if (flags & ~(unsigned)TG_RETAIN_GRAPH)
        return tg__fail(TG_EINVAL, "tg_backward_ex: unknown flags 0x%x (only TG_RETAIN_GRAPH; "
                                   "use tg_grad for TG_CREATE_GRAPH)", flags);
    tg_status s = run_walk(&w, "tg_backward", 1, &out, seeds, flags);
    for (size_t i = 0; i < w.n_leaves && s == TG_OK; i++)
        if (w.leaves[i]->requires_grad)
            s = accumulate_leaf(w.leaves[i]);
    if (s == TG_OK && w.ex)
        s = tg__explain_end(w.ex, 0, NULL, NULL);
    return s;
}

tg_status tg_backward(tg_tensor *loss) { return tg_backward_ex(loss, NULL, 0); }

tg_status tg_grad(int n_outs, tg_tensor *const *outs, tg_tensor *const *seeds, int n_inputs,
                  tg_tensor *const *inputs, tg_tensor **grads, unsigned flags)
{
    if (n_outs < 1 || !outs || n_inputs < 1 || !inputs || !grads)
        return tg__fail(TG_EINVAL, "tg_grad: need n_outs >= 1, n_inputs >= 1 and non-NULL "
                                   "outs, inputs and grads");
    for (int i = 0; i < n_inputs; i++) {
        if (!inputs[i])
            return tg__fail(TG_EINVAL, "tg_grad: inputs[%d] is NULL", i);
        if (!inputs[i]->requires_grad)
            return tg__fail(TG_EINVAL, "tg_grad: inputs[%d] does not require grad", i);
    }
    if (flags & ~(unsigned)(TG_RETAIN_GRAPH | TG_CREATE_GRAPH | TG_ALLOW_UNUSED))
        return tg__fail(TG_EINVAL, "tg_grad: unknown flags 0x%x", flags);
    walk w = {0};
    tg_status s = run_walk(&w, "tg_grad", n_outs, outs, seeds, flags);
    if (s != TG_OK)
        return s;
    tg_tensor *result[64], **res = result;
    if (n_inputs > 64)
        res = tg__malloc((size_t)n_inputs * sizeof *res);
    if (!res)
        return tg__fail(TG_ENOMEM, "tg_grad: out of memory");
    for (int i = 0; i < n_inputs && s == TG_OK; i++) {
        tg_tensor *in = inputs[i];
        if (in->walk_id == w.id)
            res[i] = in->walk_grad;
        else if (flags & TG_ALLOW_UNUSED)
            s = (res[i] = tg_full_like(in, 0.0)) ? TG_OK : tg_last_status();
        else
            s = tg__fail(TG_EINVAL, "tg_grad: the outputs do not depend on inputs[%d] (pass "
                                    "TG_ALLOW_UNUSED for a zero gradient)", i);
    }
    if (s == TG_OK && w.ex)
        s = tg__explain_end(w.ex, n_inputs, inputs, res);
    if (s == TG_OK)
        memcpy(grads, res, (size_t)n_inputs * sizeof *grads);
    if (res != result)
        tg__free(res);
    return s;
}
