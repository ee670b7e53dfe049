/* tape_graph.c - what explain and DOT export both need to know about the
 * recorded graph behind a set of roots: which nodes lead to them, how many
 * gradients each tensor receives in a backward walk, and a stable number for
 * each leaf and constant (by first use on the tape, so W1 of a model comes
 * before W2). Printing is left to explain.c and tape_dot.c. */
#include <string.h>

#include "autograd/tape_internal.h"

/* Slots for every input of the considered nodes and every root, at most
 * half full, so a probe sequence stays short. */
static size_t table_cap(const tg_tape *tape, size_t top, int n_roots)
{
    size_t keys = (size_t)n_roots + 1;
    for (size_t k = 0; k < top; k++)
        keys += (size_t)tape->nodes[k]->n_in;
    size_t cap = 16;
    while (cap < 2 * keys)
        cap *= 2;
    return cap;
}

static const tg_node *producer_below(const tg_tape *tape, size_t top, const tg_tensor *t)
{
    const tg_node *nd = t->node;
    // A tensor made on another tape, or before a reset, has a node pointer
    // that this tape does not hold: it is an input from outside, like a leaf.
    if (nd && nd->seq < top && nd->seq < tape->n_nodes && tape->nodes[nd->seq] == nd)
        return nd;
    return NULL;
}

static size_t top_of(const tg_tape *tape, int n_roots, tg_tensor *const *roots)
{
    if (n_roots == 0)
        return tape->n_nodes;
    size_t top = 0;
    for (int i = 0; i < n_roots; i++) {
        const tg_node *nd = producer_below(tape, tape->n_nodes, roots[i]);
        if (nd && nd->seq + 1 > top)
            top = nd->seq + 1;
    }
    return top;
}

size_t tg__graph_bytes(const tg_tape *tape, int n_roots, tg_tensor *const *roots)
{
    size_t top = top_of(tape, n_roots, roots);
    size_t cap = table_cap(tape, top, n_roots);
    return cap * (sizeof(tg__graph_entry) + sizeof(const tg_tensor *)) + top;
}

static size_t slot_of(const tg__graph *g, const tg_tensor *t)
{
    uintptr_t h = (uintptr_t)t;
    h ^= h >> 17;
    h *= (uintptr_t)0x9E3779B97F4A7C15u;
    size_t i = (size_t)(h >> 7) & (g->cap - 1);
    while (g->tab[i].t && g->tab[i].t != t)
        i = (i + 1) & (g->cap - 1);
    return i;
}

tg__graph_entry *tg__graph_find(const tg__graph *g, const tg_tensor *t)
{
    tg__graph_entry *e = &g->tab[slot_of(g, t)];
    return e->t ? e : NULL;
}

const tg_node *tg__graph_producer(const tg__graph *g, const tg_tensor *t)
{
    return producer_below(g->tape, g->top, t);
}

/* t's entry, made on first sight; an outside tensor gets the next leaf or
 * constant number. */
static tg__graph_entry *add(tg__graph *g, const tg_tensor *t)
{
    tg__graph_entry *e = &g->tab[slot_of(g, t)];
    if (e->t)
        return e;
    e->t = t;
    e->id = -1;
    if (!tg__graph_producer(g, t)) {
        if (t->requires_grad) {
            e->id = g->n_leaves;
            g->leaves[g->n_leaves++] = t;
        } else {
            e->id = g->n_constants++;
        }
    }
    return e;
}

void tg__graph_build(tg__graph *g, void *mem, const tg_tape *tape, int n_roots,
                     tg_tensor *const *roots, bool grad_only)
{
    size_t top = top_of(tape, n_roots, roots);
    size_t cap = table_cap(tape, top, n_roots);
    *g = (tg__graph){.tape = tape, .top = top, .cap = cap};
    g->tab = mem;
    g->leaves = (const tg_tensor **)(void *)(g->tab + cap);
    g->reach = (bool *)(void *)(g->leaves + cap);
    memset(g->tab, 0, cap * sizeof *g->tab);
    memset(g->reach, n_roots == 0, top);
    for (int i = 0; i < n_roots; i++) {
        const tg_node *nd = tg__graph_producer(g, roots[i]);
        if (nd)
            g->reach[nd->seq] = true;
    }
    // The tape is in creation order, so one pass from the top marks every
    // node a root depends on before it is itself looked at.
    for (size_t k = top; k-- > 0;) {
        if (!g->reach[k])
            continue;
        const tg_node *nd = tape->nodes[k];
        for (int i = 0; i < nd->n_in; i++) {
            const tg_node *p = tg__graph_producer(g, nd->in[i]);
            if (p && (!grad_only || nd->in[i]->requires_grad))
                g->reach[p->seq] = true;
        }
    }
    // Numbers go forward, in the order a reader meets the tensors.
    for (size_t k = 0; k < top; k++) {
        if (!g->reach[k])
            continue;
        const tg_node *nd = tape->nodes[k];
        for (int i = 0; i < nd->n_in; i++) {
            tg__graph_entry *e = add(g, nd->in[i]);
            if (tg__needs_grad(nd, i))
                e->uses++;
        }
    }
    // A root receives its seed, on top of any use inside the graph.
    for (int i = 0; i < n_roots; i++)
        add(g, roots[i])->uses++;
}

void tg__graph_describe(const tg__graph *g, const tg_tensor *t, char *buf, size_t size)
{
    char shape[TG__SHAPE_STR];
    tg__shape_str(shape, t->ndim, t->shape);
    const tg_node *nd = tg__graph_producer(g, t);
    const tg__graph_entry *e = nd ? NULL : tg__graph_find(g, t);
    if (nd)
        snprintf(buf, size, "[%zu] %s %s", nd->seq, tg__node_op_name(nd), shape);
    else if (t->requires_grad && e)
        snprintf(buf, size, "leaf #%d %s", e->id, shape);
    else
        snprintf(buf, size, "%s %s", t->requires_grad ? "leaf" : "constant", shape);
}
