/* relay.c - a Sequential model's forward pass with grad mode off, without
 * holding every layer's output on the caller's tape until its reset.
 *
 * With no graph recorded, a layer's input is dead once the layer has run,
 * but a tape frees only all at once. So the layers before the last run on
 * two tapes of the model's own, in turn: each is reset before a layer writes
 * to it, once the activation it held has been consumed. The last layer runs
 * on the caller's tape, which then holds the result alone (at batch 256 the
 * CNN's pass held 78 MiB of activations there; now the relay holds the
 * largest two). The ops and kernels are the same ones, so are the bytes.
 *
 * A layer may return a view of its input (Flatten, Reshape) or the input
 * itself: the view's header is on the tape the layer ran on and its bytes
 * where the input's were. Each activation's two homes are tracked, and a
 * tape holding either is not reset under it; a result whose bytes would be
 * left on a relay tape is copied to the caller's. */
#include <string.h>

#include "nn/nn_internal.h"
#include "ops/ops_internal.h"

enum { CALLER = -1 }; /* the caller's tape, or a caller-owned tensor: never reset */

/* An activation and the relay tape (0, 1 or CALLER) of its header and of
 * its bytes. */
typedef struct held {
    tg_tensor *t;
    int header, bytes;
} held;

static bool within(const tg_tensor *view, const tg_tensor *of)
{
    const char *p = view->data, *lo = of->data;
    size_t n = (size_t)of->numel * tg_dtype_size(of->dtype);
    return p && lo && n && p >= lo && p < lo + n;
}

/* Where out, made from in on tape `on`, keeps its header and bytes. */
static held home_of(tg_tensor *out, const held *in, int on)
{
    if (out == in->t)
        return *in;
    return (held){out, on, within(out, in->t) ? in->bytes : on};
}

static tg_status open_tapes(tg__relay *r, tg_tape *caller)
{
    for (int i = 0; i < 2; i++)
        if (!r->tapes[i]) {
            r->tapes[i] = tg_tape_new(); // made current: put the caller's back
            tg_tape_set_current(caller);
            if (!r->tapes[i])
                return tg_last_status();
        }
    return TG_OK;
}

tg_tensor *tg__relay_forward(tg__relay *r, tg_layer *const *layers, int n, tg_tensor *x,
                             tg__forward_ctx *ctx, bool logits)
{
    tg_tape *caller = tg_tape_current();
    if (open_tapes(r, caller) != TG_OK)
        return NULL;
    held h = {x, CALLER, CALLER};
    for (int i = 0, span; i < n && h.t; i += span) {
        span = tg__layer_span(layers, n, i);
        bool last = i + span == n;
        int on = CALLER;
        if (!last) {
            // A tape that holds neither part of the input, reset; when both
            // do (a view's header on one, its bytes on the other), the
            // header's, appended to.
            for (int k = 0; k < 2 && on == CALLER; k++)
                if (k != h.header && k != h.bytes)
                    on = k;
            if (on != CALLER)
                tg_tape_reset(r->tapes[on]);
            else
                on = h.header;
        }
        tg_tape_set_current(on == CALLER ? caller : r->tapes[on]);
        ctx->skip_final_act = logits && last;
        tg_tensor *out = tg__layer_run(layers, i, span, h.t, ctx);
        tg_tape_set_current(caller);
        h = out ? home_of(out, &h, on) : (held){NULL, CALLER, CALLER};
    }
    if (h.t && (h.header != CALLER || h.bytes != CALLER)) {
        tg_tensor *copy = tg__tape_tensor(ctx->fn, h.t->dtype, h.t->ndim, h.t->shape, false);
        if (copy && h.t->numel) // every tensor is contiguous (views are reshapes)
            memcpy(copy->data, h.t->data, (size_t)h.t->numel * tg_dtype_size(h.t->dtype));
        h.t = copy;
    }
    return h.t;
}

void tg__relay_free(tg__relay *r)
{
    for (int i = 0; i < 2; i++) {
        tg_tape_free(r->tapes[i]); // never current outside tg__relay_forward
        r->tapes[i] = NULL;
    }
}
