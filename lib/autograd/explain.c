/* explain.c - a backward walk told step by step, for learners: where each
 * input of a step came from, the gradient every input receives before and
 * after the engine sums it back to the input's shape, each contribution to a
 * tensor used more than once with the running total, and at the end the
 * gradients the call hands back. backward.c calls the hooks below only while
 * the tape has an explain stream; the walk itself is left to backward.c. */
#include <string.h>

#include "autograd/tape_internal.h"

#define DESC 256 /* "[12] log_softmax 64x10" and the like */

struct tg__explain {
    tg__graph g;
    FILE *f;
    int digits;
    uint64_t walk_id;
    int n_roots;
    const tg_node *node;   /* the step being told; NULL while seeding */
    int cursor;            /* next input of node (or next root) a delivery is for */
    tg_tensor *pending;    /* a running total, printed once the engine has added it */
};

tg_explain_opts tg_explain_defaults(void) { return (tg_explain_opts){.digits = 4}; }

tg_status tg_tape_explain_ex(tg_tape *tape, FILE *stream, const tg_explain_opts *opts)
{
    tg_explain_opts o = opts ? *opts : tg_explain_defaults();
    if (!tape)
        return tg__fail(TG_EINVAL, "tg_tape_explain_ex: NULL tape");
    if (o.digits < 0 || o.digits > TG__PRINT_MAX_DIGITS)
        return tg__fail(TG_EINVAL, "tg_tape_explain_ex: digits %d out of range 0..%d",
                        o.digits, TG__PRINT_MAX_DIGITS);
    tape->explain = stream;
    tape->explain_digits = o.digits;
    return TG_OK;
}

void tg_tape_explain(tg_tape *tape, FILE *stream)
{
    if (!tape)
        tg__null_arg("tg_tape_explain", "tape");
    else
        tg_tape_explain_ex(tape, stream, NULL);
}

static void labelled(const tg__explain *ex, const char *label, const tg_tensor *t)
{
    tg__print_labelled_digits(ex->f, label, t, ex->digits);
}

/* The engine adds a contribution after the hook has seen it, so its running
 * total is printed at the next event of the walk. */
static void flush(tg__explain *ex)
{
    if (ex->pending)
        labelled(ex, "total", ex->pending->walk_grad);
    ex->pending = NULL;
}

tg__explain *tg__explain_begin(tg_tape *tape, const char *fn, uint64_t walk_id, int n_outs,
                               tg_tensor *const *outs)
{
    FILE *f = tape->explain;
    size_t head = (sizeof(tg__explain) + 63) / 64 * 64;
    size_t bytes = head + tg__graph_bytes(tape, n_outs, outs);
    // Explaining must not make a walk fail: without room, the walk runs
    // untold (the arena records no message, so tg_last_error is unchanged).
    char *mem = tg__arena_take(&tape->arena, bytes);
    if (!mem) {
        fprintf(f, "%s: no room for %zu bytes of explain bookkeeping; this walk is not "
                   "explained\n", fn, bytes);
        return NULL;
    }
    tg__explain *ex = (tg__explain *)(void *)mem;
    *ex = (tg__explain){.f = f, .digits = tape->explain_digits, .walk_id = walk_id,
                        .n_roots = n_outs};
    tg__graph_build(&ex->g, mem + head, tape, n_outs, outs, true);
    char d[DESC];
    fprintf(f, "%s: walking back from ", fn);
    for (int i = 0; i < n_outs; i++) {
        tg__graph_describe(&ex->g, outs[i], d, sizeof d);
        fprintf(f, "%s%s", i ? ", " : "", d);
    }
    fputc('\n', f);
    return ex;
}

void tg__explain_step(tg__explain *ex, const tg_node *nd, const tg_tensor *dout)
{
    flush(ex);
    ex->node = nd;
    ex->cursor = 0;
    char d[DESC], label[32];
    fprintf(ex->f, "[%zu] %s <-", nd->seq, tg__node_op_name(nd));
    for (int i = 0; i < nd->n_in; i++) {
        tg__graph_describe(&ex->g, nd->in[i], d, sizeof d);
        fprintf(ex->f, "%s %s", i ? "," : "", d);
    }
    fputc('\n', ex->f);
    for (int i = 0; i < nd->n_in; i++) {
        snprintf(label, sizeof label, "in[%d]", i);
        labelled(ex, label, nd->in[i]);
    }
    labelled(ex, "out", nd->out);
    labelled(ex, "grad out", dout);
}

/* Which input (or root) this delivery is for: the engine delivers to the
 * inputs that need a gradient, in order, and to the roots in order. */
static int next_index(tg__explain *ex, const tg_tensor *t)
{
    const tg_node *nd = ex->node;
    if (!nd)
        return ex->cursor < ex->n_roots ? ex->cursor++ : -1;
    while (ex->cursor < nd->n_in && !tg__needs_grad(nd, ex->cursor))
        ex->cursor++;
    if (ex->cursor >= nd->n_in || nd->in[ex->cursor] != t)
        return -1;
    return ex->cursor++;
}

void tg__explain_deliver(tg__explain *ex, tg_tensor *t, const tg_tensor *given,
                         const tg_tensor *reduced)
{
    flush(ex);
    int i = next_index(ex, t);
    char label[32], d[DESC], from[TG__SHAPE_STR], to[TG__SHAPE_STR];
    if (ex->node && i >= 0)
        snprintf(label, sizeof label, "grad in[%d]", i);
    else if (!ex->node && ex->n_roots > 1 && i >= 0)
        snprintf(label, sizeof label, "seed[%d]", i);
    else
        snprintf(label, sizeof label, "%s", ex->node ? "grad in" : "seed");
    labelled(ex, label, given);
    tg__graph_describe(&ex->g, t, d, sizeof d);
    if (reduced != given) {
        // The engine, not the op, undoes broadcasting: the op's gradient has
        // the broadcast shape and is summed over the dimensions the input was
        // stretched along (or, for a user op's smaller gradient, spread out).
        bool summed = given->numel >= reduced->numel;
        fprintf(ex->f, "      %s -> %s for %s: %s\n",
                tg__shape_str(from, given->ndim, given->shape),
                tg__shape_str(to, reduced->ndim, reduced->shape), d,
                summed ? "summed over the dimensions it was broadcast along"
                       : "expanded to its shape");
        labelled(ex, summed ? "summed" : "expanded", reduced);
    }
    tg__graph_entry *e = tg__graph_find(&ex->g, t);
    if (!e || e->uses < 2)
        return;
    e->seen++;
    fprintf(ex->f, "      contribution %d of %d to %s%s\n", e->seen, e->uses, d,
            e->seen > 1 ? ", added to the running total:" : "");
    if (e->seen > 1 && t->walk_id == ex->walk_id)
        ex->pending = t;
}

/* The walk's closing lines, then the stream's verdict: a failed write (a full
 * disk, a closed pipe) fails the call that explained, saying the gradients
 * themselves are computed. */
static tg_status stream_status(tg__explain *ex, const char *fn)
{
    if (fflush(ex->f) != 0 || ferror(ex->f))
        return tg__fail(TG_EIO, "%s: writing the explanation to its stream failed (the "
                                "gradients are computed)", fn);
    return TG_OK;
}

tg_status tg__explain_end(tg__explain *ex, int n, tg_tensor *const *inputs,
                          tg_tensor *const *grads)
{
    flush(ex);
    char label[32], d[DESC];
    if (n == 0) {
        fprintf(ex->f, "after the walk, .grad of each leaf it reached (tg_backward adds to "
                       "what .grad held):\n");
        for (int k = 0; k < ex->g.n_leaves; k++) {
            const tg_tensor *leaf = ex->g.leaves[k];
            if (leaf->walk_id != ex->walk_id || !leaf->grad)
                continue;
            snprintf(label, sizeof label, "leaf #%d", k);
            labelled(ex, label, leaf->grad);
        }
        return stream_status(ex, "tg_backward");
    }
    fprintf(ex->f, "tg_grad returns:\n");
    for (int i = 0; i < n; i++) {
        tg__graph_describe(&ex->g, inputs[i], d, sizeof d);
        fprintf(ex->f, "  for inputs[%d], %s:\n", i, d);
        snprintf(label, sizeof label, "grads[%d]", i);
        labelled(ex, label, grads[i]);
    }
    return stream_status(ex, "tg_grad");
}
