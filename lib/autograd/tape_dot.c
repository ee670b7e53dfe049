/* tape_dot.c - the recorded graph as Graphviz DOT (tg_tape_dot): ops as
 * boxes, leaves and constants as ellipses, arrows from each input to the op
 * that uses it, so a learner can see the graph a backward pass walks. What is
 * reached, and the leaf numbers, come from tape_graph.c, shared with explain
 * so that the picture and the text name tensors alike. */
#include <stdarg.h>
#include <string.h>

#include "autograd/tape_internal.h"

#define DOT_DIGITS 4

typedef struct dot {
    FILE *f;
    bool failed;     /* a write failed: stop writing, report TG_EIO */
    unsigned flags;
    tg__graph g;
} dot;

static void put(dot *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(dot *d, const char *fmt, ...)
{
    if (d->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (vfprintf(d->f, fmt, ap) < 0)
        d->failed = true;
    va_end(ap);
}

/* Text inside a quoted DOT string: quotes and backslashes escaped (a user
 * op's name may hold either), line breaks as "\n" (centred) or, with left,
 * "\l" so that the rows of a matrix stay aligned. */
static void put_escaped(dot *d, const char *s, bool left)
{
    for (; *s && !d->failed; s++) {
        if (*s == '\n')
            put(d, "%s", left ? "\\l" : "\\n");
        else if (*s == '"' || *s == '\\')
            put(d, "\\%c", *s);
        else if (fputc(*s, d->f) == EOF)
            d->failed = true;
    }
}

/* A tensor's numbers without tensor(...)'s wrapping: "[[ 0.1, -0.3]]" with
 * continuation rows dedented to line up under the first. */
static void put_values(dot *d, const char *caption, const tg_tensor *t)
{
    char small[1024], *buf = small;
    size_t need = (size_t)tg__tensor_format_digits(t, small, sizeof small, DOT_DIGITS) + 1;
    if (need > sizeof small) {
        if (!(buf = tg__malloc(need))) {
            put(d, "\\n%s (no memory to format)", caption);
            return;
        }
        tg__tensor_format_digits(t, buf, need, DOT_DIGITS);
    }
    const char *prefix = "tensor(";
    size_t plen = strlen(prefix);
    char *body = strncmp(buf, prefix, plen) ? buf : buf + plen;
    char *end = strstr(body, ", dtype=");
    if (end)
        *end = '\0';
    put(d, "\\n%s\\n", caption);
    // One left-justified line per row; graphviz ends each line with \l.
    for (char *line = body; line && !d->failed;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        const char *row = line;
        for (size_t k = 0; k < plen && *row == ' '; k++)
            row++;
        put_escaped(d, row, true);
        put(d, "\\l");
        line = nl ? nl + 1 : NULL;
    }
    if (buf != small)
        tg__free(buf);
}

static void shape_text(char *buf, const tg_tensor *t)
{
    tg__shape_str(buf, t->ndim, t->shape);
}

/* DOT id of a tensor: its producer's node, or its leaf or constant number. */
static void tensor_id(const dot *d, const tg_tensor *t, char *buf, size_t size)
{
    const tg_node *nd = tg__graph_producer(&d->g, t);
    const tg__graph_entry *e = nd ? NULL : tg__graph_find(&d->g, t);
    if (nd)
        snprintf(buf, size, "op%zu", nd->seq);
    else if (e && t->requires_grad)
        snprintf(buf, size, "leaf%d", e->id);
    else
        snprintf(buf, size, "const%d", e ? e->id : 0);
}

static bool is_root(int n_roots, tg_tensor *const *roots, const tg_tensor *t)
{
    for (int i = 0; i < n_roots; i++)
        if (roots[i] == t)
            return true;
    return false;
}

/* A leaf or constant, written once, before the first op that uses it. */
static void put_outside(dot *d, const tg_tensor *t, bool root)
{
    tg__graph_entry *e = tg__graph_find(&d->g, t);
    if (!e || e->seen)
        return;
    e->seen = 1;
    char id[32], shape[TG__SHAPE_STR];
    tensor_id(d, t, id, sizeof id);
    shape_text(shape, t);
    if (t->requires_grad)
        put(d, "  %s [shape=ellipse, style=filled, fillcolor=\"#dbe9f6\"%s, label=\"leaf #%d\\n"
               "%s\\nrequires grad", id, root ? ", peripheries=2" : "", e->id, shape);
    else
        put(d, "  %s [shape=ellipse, style=dashed%s, label=\"constant\\n%s", id,
            root ? ", peripheries=2" : "", shape);
    if (d->flags & TG_DOT_VALUES)
        put_values(d, "value", t);
    if ((d->flags & TG_DOT_GRADS) && t->requires_grad && t->grad)
        put_values(d, "grad", t->grad);
    put(d, "\"];\n");
}

static void put_node(dot *d, const tg_node *nd, bool root)
{
    for (int i = 0; i < nd->n_in; i++)
        if (!tg__graph_producer(&d->g, nd->in[i]))
            put_outside(d, nd->in[i], false);
    char shape[TG__SHAPE_STR], id[32];
    shape_text(shape, nd->out);
    put(d, "  op%zu [shape=box, style=rounded%s, label=\"[%zu] ", nd->seq,
        root ? ", peripheries=2" : "", nd->seq);
    put_escaped(d, tg__node_op_name(nd), false);
    put(d, "\\n%s", shape);
    if (d->flags & TG_DOT_VALUES)
        put_values(d, "value", nd->out);
    put(d, "\"];\n");
    for (int i = 0; i < nd->n_in; i++) {
        tensor_id(d, nd->in[i], id, sizeof id);
        if (nd->n_in > 1)
            put(d, "  %s -> op%zu [label=\"%d\"];\n", id, nd->seq, i);
        else
            put(d, "  %s -> op%zu;\n", id, nd->seq);
    }
}

static tg_status check_args(const tg_tape *tape, FILE *stream, int n_roots,
                            tg_tensor *const *roots, unsigned flags)
{
    const char *fn = "tg_tape_dot";
    if (!tape || !stream)
        return tg__fail(TG_EINVAL, "%s: NULL %s", fn, tape ? "stream" : "tape");
    if (n_roots < 0)
        return tg__fail(TG_EINVAL, "%s: n_roots is %d", fn, n_roots);
    if (n_roots > 0 && !roots)
        return tg__fail(TG_EINVAL, "%s: roots is NULL with n_roots %d", fn, n_roots);
    if (flags & ~(unsigned)(TG_DOT_VALUES | TG_DOT_GRADS))
        return tg__fail(TG_EINVAL, "%s: unknown flags 0x%x (TG_DOT_VALUES, TG_DOT_GRADS)", fn,
                        flags);
    for (int i = 0; i < n_roots; i++) {
        if (!roots[i])
            return tg__fail(TG_EINVAL, "%s: roots[%d] is NULL", fn, i);
        if (tg__check_live(fn, roots[i]) != TG_OK)
            return TG_ESTATE;
        const tg_node *nd = roots[i]->node;
        if (nd && !(nd->seq < tape->n_nodes && tape->nodes[nd->seq] == nd))
            return tg__fail(TG_EINVAL, "%s: roots[%d] was not recorded on this tape", fn, i);
    }
    return TG_OK;
}

tg_status tg_tape_dot(const tg_tape *tape, FILE *stream, int n_roots, tg_tensor *const *roots,
                      unsigned flags)
{
    tg_status s = check_args(tape, stream, n_roots, roots, flags);
    if (s != TG_OK)
        return s;
    // The heap, not the tape's arena: writing a picture must not change the
    // tape (its memory figures, its limit).
    size_t bytes = tg__graph_bytes(tape, n_roots, roots);
    void *mem = tg__malloc(bytes);
    if (!mem)
        return tg__fail(TG_ENOMEM, "tg_tape_dot: out of memory for %zu bytes", bytes);
    dot d = {.f = stream, .flags = flags};
    tg__graph_build(&d.g, mem, tape, n_roots, roots, false);
    // Values are matrices: a fixed-width font keeps their columns aligned.
    const char *font = flags & TG_DOT_VALUES ? "Courier" : "Helvetica";
    put(&d, "digraph tape {\n  rankdir=TB;\n");
    put(&d, "  node [fontname=\"%s\", fontsize=11];\n  edge [fontname=\"%s\", fontsize=9];\n",
        font, font);
    for (size_t k = 0; k < d.g.top; k++)
        if (d.g.reach[k])
            put_node(&d, tape->nodes[k], is_root(n_roots, roots, tape->nodes[k]->out));
    // A root that is itself a leaf or constant has no node to hang from.
    for (int i = 0; i < n_roots; i++)
        if (!tg__graph_producer(&d.g, roots[i]))
            put_outside(&d, roots[i], true);
    put(&d, "}\n");
    tg__free(mem);
    if (fflush(stream) != 0 || ferror(stream) || d.failed)
        return tg__fail(TG_EIO, "tg_tape_dot: writing the graph failed");
    return TG_OK;
}
