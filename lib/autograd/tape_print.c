/* tape_print.c - text views of the tape: the recorded nodes in order
 * (tg_tape_print) and one node's backward step, used by the walk when
 * tg_tape_explain is on. */
#include <stdio.h>

#include "autograd/tape_internal.h"
#include "tg_internal.h"

void tg__print_labelled(FILE *f, const char *label, const tg_tensor *t)
{
    tg__print_labelled_digits(f, label, t, TG__PRINT_DIGITS);
}

void tg__print_labelled_digits(FILE *f, const char *label, const tg_tensor *t, int digits)
{
    char small[4096], *buf = small;
    size_t need = (size_t)tg__tensor_format_digits(t, small, sizeof small, digits) + 1;
    // More digits make a summarised tensor outgrow the stack buffer; print it
    // whole rather than cut it off mid-row.
    if (need > sizeof small && (buf = tg__malloc(need)) != NULL)
        tg__tensor_format_digits(t, buf, need, digits);
    if (!buf)
        buf = small;
    fprintf(f, "    %-10s ", label);
    // Continuation rows of a matrix line up under its first row.
    for (const char *c = buf; *c; c++) {
        fputc(*c, f);
        if (*c == '\n')
            fprintf(f, "%15s", "");
    }
    fputc('\n', f);
    if (buf != small)
        tg__free(buf);
}

/* "[3]" for a recorded input, "leaf 2x3" or "constant 2x3" otherwise. */
static void describe_input(FILE *f, const tg_tape *tape, const tg_tensor *t)
{
    const tg_node *nd = t->node;
    if (nd && nd->seq < tape->n_nodes && tape->nodes[nd->seq] == nd) {
        fprintf(f, "[%zu]", nd->seq);
        return;
    }
    char s[TG__SHAPE_STR];
    fprintf(f, "%s %s", t->requires_grad ? "leaf" : "constant",
            tg__shape_str(s, t->ndim, t->shape));
}

tg_status tg_tape_print(const tg_tape *tape, FILE *stream)
{
    if (!tape || !stream)
        return tg__fail(TG_EINVAL, "tg_tape_print: NULL %s", tape ? "stream" : "tape");
    fprintf(stream, "tape: %zu recorded ops, %zu bytes reserved\n", tape->n_nodes,
            tape->arena.reserved);
    for (size_t k = 0; k < tape->n_nodes; k++) {
        const tg_node *nd = tape->nodes[k];
        fprintf(stream, "[%zu] %s(", k, tg__node_op_name(nd));
        for (int i = 0; i < nd->n_in; i++) {
            if (i)
                fprintf(stream, ", ");
            describe_input(stream, tape, nd->in[i]);
        }
        fprintf(stream, ")%s\n", nd->released ? "  (released)" : "");
        tg__print_labelled(stream, "out", nd->out);
    }
    if (fflush(stream) != 0 || ferror(stream))
        return tg__fail(TG_EIO, "tg_tape_print: writing to the stream failed");
    return TG_OK;
}
