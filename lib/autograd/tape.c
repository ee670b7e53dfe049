/* tape.c - the tape: an arena that holds every op result, and the ordered list
 * of recorded nodes. Creation order is already topological, so backward.c
 * only walks the list in reverse. Also the op builder every op goes through. */
#include <string.h>

#include "autograd/tape_internal.h"

/* Read inline by tg__tape_tensor (tape_internal.h). */
_Thread_local tg_tape *tg__current_tape;
static _Thread_local const char *api_name;
static _Thread_local bool grad_disabled;

/* ---- tapes ---- */

tg_tape *tg_tape_new(void)
{
    tg_tape *tape = tg__calloc(1, sizeof *tape);
    if (!tape)
        return tg__fail_null(TG_ENOMEM, "tg_tape_new: out of memory");
    if (tg__arena_init(&tape->arena) != 0) {
        tg__free(tape);
        return tg__fail_null(TG_ENOMEM, "tg_tape_new: too many live tapes");
    }
    tg__current_tape = tape;
    return tape;
}

void tg_tape_free(tg_tape *tape)
{
    if (!tape)
        return;
    if (tg__current_tape == tape)
        tg__current_tape = NULL;
    tg__arena_free(&tape->arena);
    tg__free(tape->nodes);
    tg__free(tape);
}

void tg_tape_reset(tg_tape *tape)
{
    if (!tape)
        return;
    tape->n_nodes = 0;
    // The chunks are kept (and reused in order), so the next step allocates
    // nothing and a stale tensor header is still readable: its generation
    // tells every op that it is stale.
    tg__arena_reset(&tape->arena);
}

tg_tape *tg_tape_current(void) { return tg__current_tape; }

tg_tape *tg_tape_set_current(tg_tape *tape)
{
    tg_tape *prev = tg__current_tape;
    tg__current_tape = tape;
    return prev;
}

size_t tg_tape_size(const tg_tape *tape)
{
    if (!tape)
        tg__null_arg("tg_tape_size", "tape");
    return tape ? tape->n_nodes : 0;
}

size_t tg_tape_bytes(const tg_tape *tape)
{
    if (!tape)
        tg__null_arg("tg_tape_bytes", "tape");
    return tape ? tape->arena.reserved : 0;
}

size_t tg_tape_high_water(const tg_tape *tape)
{
    if (!tape)
        tg__null_arg("tg_tape_high_water", "tape");
    return tape ? tape->arena.high_water : 0;
}

tg_status tg_tape_set_limit(tg_tape *tape, size_t bytes)
{
    if (!tape)
        return tg__fail(TG_EINVAL, "tg_tape_set_limit: tape is NULL");
    tape->arena.limit = bytes;
    return TG_OK;
}

tg_status tg__tape_push(tg_tape *tape, tg_node *node)
{
    if (tape->n_nodes == tape->cap_nodes) {
        size_t cap = tape->cap_nodes ? 2 * tape->cap_nodes : 64;
        tg_node **nodes = tg__realloc(tape->nodes, cap * sizeof *nodes);
        if (!nodes)
            return tg__fail(TG_ENOMEM, "tape: out of memory for %zu nodes", cap);
        tape->nodes = nodes;
        tape->cap_nodes = cap;
    }
    node->seq = tape->n_nodes;
    tape->nodes[tape->n_nodes++] = node;
    return TG_OK;
}

tg_tape *tg__tape_for(const char *fn)
{
    if (!tg__current_tape)
        return tg__fail_null(TG_ESTATE, "%s: no current tape (create one with tg_tape_new)", fn);
    return tg__current_tape;
}

tg_tensor *tg__tape_tensor_slow(const char *fn, tg_dtype dtype, int ndim, const int64_t *shape,
                                bool zero)
{
    tg_tape *tape = tg__tape_for(fn);
    return tape ? tg__tensor_alloc(tape, fn, dtype, ndim, shape, zero) : NULL;
}

const char *tg__node_op_name(const tg_node *node)
{
    return node->def->label ? node->def->label(node) : node->def->name;
}

/* ---- the public call being served (for messages) ---- */

const char *tg__api_enter(const char *fn)
{
    const char *prev = api_name;
    if (!prev)
        api_name = fn;
    return prev;
}

void tg__api_leave(const char *prev) { api_name = prev; }

const char *tg__api_fn(const char *fallback) { return api_name ? api_name : fallback; }

/* ---- grad mode ---- */

bool tg_grad_enabled(void) { return !grad_disabled; }

bool tg_set_grad_enabled(bool enabled)
{
    bool prev = !grad_disabled;
    grad_disabled = !enabled;
    return prev;
}

/* ---- the builder ---- */

static tg_status check_inputs(const char *fn, int n_in, tg_tensor *const *in,
                              const tg_tape *tape)
{
    for (int i = 0; i < n_in; i++) {
        const tg_tensor *x = in[i];
        if (!x) {
            tg__null_input(fn, i);
            return TG_EINVAL;
        }
        if (x->dtype != in[0]->dtype)
            return tg__fail(TG_EDTYPE, "%s: dtype mismatch, input 0 is %s but input %d is %s", fn,
                            tg_dtype_name(in[0]->dtype), i, tg_dtype_name(x->dtype));
        if (tg__check_live(fn, x) != TG_OK)
            return TG_ESTATE;
        if (!x->tape)
            continue;
        // A recorded graph must stay on one tape: the walk follows one tape's
        // nodes, so a gradient through another tape would silently be lost.
        if (x->tape != tape && x->requires_grad)
            return tg__fail(TG_ESTATE, "%s: input %d requires grad and was made on tape #%u, "
                                       "but the current tape is #%u (an expression that is "
                                       "differentiated must stay on one tape)", fn, i,
                            tg__gen_tape_id(x->gen), tg__gen_tape_id(tape->arena.generation));
    }
    return TG_OK;
}

static tg_tensor *header_only(tg_tape *tape, const char *fn, tg_dtype dtype, int ndim,
                              const int64_t *shape)
{
    tg_tensor *t = tg__tape_alloc(tape, fn, sizeof *t);
    if (!t)
        return NULL;
    *t = (tg_tensor){.dtype = dtype, .tape = tape, .gen = tape->arena.generation};
    if (tg__init_shape(t, fn, ndim, shape) != TG_OK)
        return NULL;
    return t;
}

/* Whether x can be read by an op on tape without the full checks of
 * check_inputs: a tensor of tape made since its last reset, or a live
 * caller-owned tensor, of the given dtype. Both tests compare with values at
 * hand, without the process-wide generation table. */
static inline bool quick_input(const tg_tensor *x, const tg_tape *tape, tg_dtype dtype)
{
    return x && x->dtype == dtype &&
           (x->tape == tape ? x->gen == tape->arena.generation
                            : !x->tape && x->gen == TG__GEN_CALLER);
}

static tg_tensor *apply_general(const tg_op_def *def, int n_in, tg_tensor *const *in,
                                const void *params);

/* Builds the node: the op's own parameters are copied, its inputs listed,
 * its result allocated and computed; recorded when grad mode is on and an
 * input requires grad. The inputs have been checked. */
static inline __attribute__((always_inline)) tg_tensor *
build(const tg_op_def *def, const char *fn, tg_tape *tape, int n_in, tg_tensor *const *in,
      const void *params, int ndim, const int64_t *shape);

/* The builder's fast path, for ops of one or two inputs that are all live
 * tensors of the current tape (or caller-owned) of one dtype: those checks
 * in one pass, the inputs and a small parameter struct copied without loops
 * or calls, and the result's header written inline. Anything else, and every
 * failure of a check, takes apply_general, which reports it. */
tg_tensor *tg__apply(const tg_op_def *def, int n_in, tg_tensor *const *in, const void *params)
{
    tg_tape *tape = tg__current_tape;
    if (!tape || n_in != def->n_in || (unsigned)(n_in - 1) > 1 || !in || def->view ||
        !quick_input(in[0], tape, in[0] ? in[0]->dtype : TG_F32) ||
        (n_in == 2 && !quick_input(in[1], tape, in[0]->dtype)))
        return apply_general(def, n_in, in, params);
    const char *fn = api_name ? api_name : def->fn; // as tg__api_fn
    int ndim = 0;
    int64_t shape[TG_MAX_DIMS];
    if (def->shape(fn, in, n_in, params, &ndim, shape) != TG_OK)
        return NULL;
    return build(def, fn, tape, n_in, in, params, ndim, shape);
}

static tg_tensor *apply_general(const tg_op_def *def, int n_in, tg_tensor *const *in,
                                const void *params)
{
    const char *fn = tg__api_fn(def->fn);
    if (n_in < 1 || (def->n_in >= 0 && n_in != def->n_in))
        return tg__fail_null(TG_EINVAL, "%s: takes %d inputs, got %d", fn, def->n_in, n_in);
    if (!in)
        return tg__fail_null(TG_EINVAL, "%s: inputs array is NULL", fn);
    tg_tape *tape = tg__tape_for(fn);
    if (!tape || check_inputs(fn, n_in, in, tape) != TG_OK)
        return NULL;
    int ndim = 0;
    int64_t shape[TG_MAX_DIMS];
    if (def->shape(fn, in, n_in, params, &ndim, shape) != TG_OK)
        return NULL;
    return build(def, fn, tape, n_in, in, params, ndim, shape);
}

static inline __attribute__((always_inline)) tg_tensor *
build(const tg_op_def *def, const char *fn, tg_tape *tape, int n_in, tg_tensor *const *in,
      const void *params, int ndim, const int64_t *shape)
{
    // The node, its parameters and its input list in one block.
    size_t params_at = (sizeof(tg_node) + 15) & ~(size_t)15;
    size_t in_at = params_at + ((def->params_size + 15) & ~(size_t)15);
    size_t bytes = in_at + (size_t)n_in * sizeof(tg_tensor *);
    unsigned char *block = tg__tape_alloc(tape, fn, bytes);
    if (!block)
        return NULL;
    tg_node *nd = (tg_node *)block;
    // Field by field: a compound literal would zero the whole node first, and
    // this runs for every op.
    nd->def = def;
    nd->n_in = n_in;
    nd->in = (tg_tensor **)(block + in_at);
    for (int i = 0; i < n_in; i++) // a call to memcpy costs more for two pointers
        nd->in[i] = in[i];
    nd->params = def->params_size ? block + params_at : NULL;
    switch (def->params_size) { // the small structs of most ops: copies without a call
    case 0:
        break;
    case 2: // matmul's transpose flags
        memcpy(nd->params, params, 2);
        break;
    case 8:
        memcpy(nd->params, params, 8);
        break;
    case 16:
        memcpy(nd->params, params, 16);
        break;
    case 24:
        memcpy(nd->params, params, 24);
        break;
    default:
        memcpy(nd->params, params, def->params_size);
    }
    nd->saved = NULL;
    nd->seq = 0;
    nd->released = false;
    tg_tensor *out = NULL;
    if (def->view)
        out = header_only(tape, fn, in[0]->dtype, ndim, shape);
    else if (!(out = tg__tape_tensor_here(tape, in[0]->dtype, ndim, shape)))
        out = tg__tensor_alloc(tape, fn, in[0]->dtype, ndim, shape, false);
    nd->out = out;
    if (!out || def->forward(nd) != TG_OK)
        return NULL;

    bool record = false;
    if (!grad_disabled && def->differentiable)
        for (int i = 0; i < n_in; i++)
            record |= in[i]->requires_grad;
    if (record && tg__tape_push(tape, nd) != TG_OK)
        return NULL;
    if (tg__anomaly_enabled() && tg__anomaly_check_forward(fn, nd, record) != TG_OK) {
        if (record)
            tape->n_nodes--; // a failed call records nothing
        return NULL;
    }
    if (record) {
        nd->out->requires_grad = true;
        nd->out->node = nd;
    }
    return nd->out;
}

/* ---- graph helpers ---- */

/* Here rather than in lib/tensor: which tensors may be marked is a rule of
 * the graph (only leaves), and the message names the op that made t. */
tg_status tg_tensor_set_requires_grad(tg_tensor *t, bool requires_grad)
{
    if (!t)
        return tg__fail(TG_EINVAL, "tg_tensor_set_requires_grad: NULL tensor");
    if (tg__check_live("tg_tensor_set_requires_grad", t) != TG_OK)
        return TG_ESTATE;
    if (t->node)
        return tg__fail(TG_ESTATE, "tg_tensor_set_requires_grad: tensor was made by op '%s'; "
                                   "only leaves can be marked (use tg_detach first)",
                        tg__node_op_name(t->node));
    t->requires_grad = requires_grad;
    return TG_OK;
}


tg_tensor *tg_detach(tg_tensor *x)
{
    if (tg__bad_input("tg_detach", x, 0))
        return NULL;
    if (tg__check_live("tg_detach", x) != TG_OK)
        return NULL;
    tg_tape *tape = tg__tape_for(tg__api_fn("tg_detach"));
    tg_tensor *t = tape ? header_only(tape, "tg_detach", x->dtype, x->ndim, x->shape) : NULL;
    if (t)
        t->data = x->data;
    return t;
}

tg_tensor *tg_full(tg_dtype dtype, int ndim, const int64_t *shape, double value)
{
    tg_tensor *t = tg__tape_tensor(tg__api_fn("tg_full"), dtype, ndim, shape, false);
    if (t)
        tg_tensor_fill(t, value);
    return t;
}

tg_tensor *tg_full_like(tg_tensor *x, double value)
{
    if (tg__bad_input("tg_full_like", x, 0))
        return NULL;
    TG__API_CALL("tg_full_like", tg_full(x->dtype, x->ndim, x->shape, value));
}

tg_tensor *tg_scalar(tg_dtype dtype, double value)
{
    TG__API_CALL("tg_scalar", tg_full(dtype, 0, NULL, value));
}
