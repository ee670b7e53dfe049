/* tape.c - the tape: an arena that holds every op result, and the ordered list
 * of recorded nodes. Creation order is already topological, so backward.c
 * only walks the list in reverse. Also the op builder every op goes through. */
#include <string.h>

#include "ops/ops_internal.h"
#include "tg_internal.h"

#define ALIGNMENT 64 /* cache line: kernels get aligned rows for free */
#define FIRST_CHUNK (256 * 1024)

struct arena_chunk {
    arena_chunk *next;
    size_t size, used;
    _Alignas(ALIGNMENT) unsigned char data[];
};

static _Thread_local tg_tape *current_tape;
static _Thread_local const char *api_name;
static _Thread_local bool grad_disabled;

/* ---- arena ---- */

static arena_chunk *chunk_new(size_t size)
{
    arena_chunk *c = tg__malloc(sizeof *c + size);
    if (c) {
        c->next = NULL;
        c->size = size;
        c->used = 0;
    }
    return c;
}

void *tg__arena_alloc(tg_tape *tape, size_t bytes)
{
    bytes = (bytes + ALIGNMENT - 1) & ~(size_t)(ALIGNMENT - 1);
    arena_chunk *c = tape->chunks;
    if (!c || c->size - c->used < bytes) {
        // Grow geometrically so a step needs few chunks; reset folds them into one.
        size_t size = tape->reserved > FIRST_CHUNK ? tape->reserved : FIRST_CHUNK;
        if (size < bytes)
            size = bytes;
        arena_chunk *fresh = chunk_new(size);
        if (!fresh)
            return NULL;
        fresh->next = c;
        tape->chunks = c = fresh;
        tape->reserved += size;
    }
    void *p = c->data + c->used;
    c->used += bytes;
    tape->used += bytes;
    return p;
}

static void free_chunks(arena_chunk *c)
{
    while (c) {
        arena_chunk *next = c->next;
        tg__free(c);
        c = next;
    }
}

/* ---- tapes ---- */

tg_tape *tg_tape_new(void)
{
    tg_tape *tape = tg__calloc(1, sizeof *tape);
    if (!tape)
        return tg__fail_null(TG_ENOMEM, "tg_tape_new: out of memory");
    current_tape = tape;
    return tape;
}

void tg_tape_free(tg_tape *tape)
{
    if (!tape)
        return;
    if (current_tape == tape)
        current_tape = NULL;
    free_chunks(tape->chunks);
    tg__free(tape->nodes);
    tg__free(tape);
}

void tg_tape_reset(tg_tape *tape)
{
    if (!tape)
        return;
    tape->n_nodes = 0;
    tape->used = 0;
    if (tape->chunks && tape->chunks->next) {
        // The step needed several chunks: replace them by one that holds it all,
        // so the next step allocates nothing and memory stays flat.
        size_t total = tape->reserved;
        free_chunks(tape->chunks);
        tape->chunks = chunk_new(total);
        tape->reserved = tape->chunks ? total : 0;
    } else if (tape->chunks) {
        tape->chunks->used = 0;
    }
}

tg_tape *tg_tape_current(void) { return current_tape; }

tg_tape *tg_tape_set_current(tg_tape *tape)
{
    tg_tape *prev = current_tape;
    current_tape = tape;
    return prev;
}

size_t tg_tape_size(const tg_tape *tape) { return tape ? tape->n_nodes : 0; }

size_t tg_tape_bytes(const tg_tape *tape) { return tape ? tape->reserved : 0; }

void tg_tape_explain(tg_tape *tape, FILE *stream)
{
    if (tape)
        tape->explain = stream;
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
    if (!current_tape)
        return tg__fail_null(TG_ESTATE, "%s: no current tape (create one with tg_tape_new)", fn);
    return current_tape;
}

tg_tensor *tg__tape_tensor(const char *fn, tg_dtype dtype, int ndim, const int64_t *shape,
                           bool zero)
{
    tg_tape *tape = tg__tape_for(fn);
    return tape ? tg__tensor_alloc(tape, fn, dtype, ndim, shape, zero) : NULL;
}

const char *tg__node_op_name(const tg_node *node)
{
    if (node->op == TG_OP_USER)
        return node->p.user->name;
    return tg__ops[node->op]->name;
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

static tg_status check_inputs(const char *fn, int n_in, tg_tensor *const *in)
{
    for (int i = 0; i < n_in; i++) {
        if (!in[i]) {
            tg__null_input(fn, i);
            return TG_EINVAL;
        }
        if (in[i]->dtype != in[0]->dtype)
            return tg__fail(TG_EDTYPE, "%s: dtype mismatch, input 0 is %s but input %d is %s", fn,
                            tg_dtype_name(in[0]->dtype), i, tg_dtype_name(in[i]->dtype));
    }
    return TG_OK;
}

static tg_tensor *header_only(tg_tape *tape, const char *fn, tg_dtype dtype, int ndim,
                              const int64_t *shape)
{
    tg_tensor *t = tg__arena_alloc(tape, sizeof *t);
    if (!t)
        return tg__fail_null(TG_ENOMEM, "%s: out of memory", fn);
    *t = (tg_tensor){.dtype = dtype, .tape = tape};
    if (tg__init_shape(t, fn, ndim, shape) != TG_OK)
        return NULL;
    return t;
}

tg_tensor *tg__apply(int op, int n_in, tg_tensor *const *in, const tg_op_params *p)
{
    const tg_op_def *def = tg__ops[op];
    const char *fn = tg__api_fn(tg__op_fn(op));
    char user_fn[96];
    if (op == TG_OP_USER && p) {
        snprintf(user_fn, sizeof user_fn, "tg_apply(%s)", p->user->name);
        fn = user_fn;
    }
    if (n_in < 1 || (def->n_in >= 0 && n_in != def->n_in))
        return tg__fail_null(TG_EINVAL, "%s: takes %d inputs, got %d", fn, def->n_in, n_in);
    if (!in)
        return tg__fail_null(TG_EINVAL, "%s: inputs array is NULL", fn);
    if (check_inputs(fn, n_in, in) != TG_OK)
        return NULL;
    tg_tape *tape = tg__tape_for(fn);
    if (!tape)
        return NULL;
    static const tg_op_params no_params;
    if (!p)
        p = &no_params;
    int ndim = 0;
    int64_t shape[TG_MAX_DIMS];
    if (def->shape(fn, in, n_in, p, &ndim, shape) != TG_OK)
        return NULL;

    tg_node *nd = tg__arena_alloc(tape, sizeof *nd);
    tg_tensor **in_copy = nd ? tg__arena_alloc(tape, (size_t)n_in * sizeof *in_copy) : NULL;
    if (!in_copy)
        return tg__fail_null(TG_ENOMEM, "%s: out of memory", fn);
    memcpy(in_copy, in, (size_t)n_in * sizeof *in_copy);
    // Field by field: a compound literal would zero the whole node first, and
    // this runs for every op.
    nd->op = op;
    nd->n_in = n_in;
    nd->in = in_copy;
    nd->out = NULL;
    nd->p = *p;
    nd->saved = NULL;
    nd->seq = 0;
    nd->released = false;
    nd->out = def->view ? header_only(tape, fn, in[0]->dtype, ndim, shape)
                        : tg__tensor_alloc(tape, fn, in[0]->dtype, ndim, shape, false);
    if (!nd->out || def->forward(nd) != TG_OK)
        return NULL;

    bool record = false;
    if (!grad_disabled && def->differentiable)
        for (int i = 0; i < n_in; i++)
            record |= in[i]->requires_grad;
    if (record) {
        if (tg__tape_push(tape, nd) != TG_OK)
            return NULL;
        nd->out->requires_grad = true;
        nd->out->node = nd;
    }
    return nd->out;
}

/* ---- user ops ---- */

tg_tensor *tg_apply(const tg_op_def_user *def, int n_inputs, tg_tensor *const *inputs, void *ctx)
{
    if (!def || !def->name || !def->forward || !def->backward)
        return tg__fail_null(TG_EINVAL, "tg_apply: op definition%s is incomplete "
                                        "(needs name, forward and backward)",
                             def && def->name ? "" : " (or its name)");
    if (def->n_inputs < 1 || def->n_inputs > 8 || n_inputs != def->n_inputs)
        return tg__fail_null(TG_EINVAL, "tg_apply: op '%s' takes %d inputs (1..8), got %d",
                             def->name, def->n_inputs, n_inputs);
    tg_op_params p = {.user = def, .user_ctx = ctx};
    return tg__apply(TG_OP_USER, n_inputs, inputs, &p);
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

/* ---- graph helpers ---- */

tg_tensor *tg_detach(tg_tensor *x)
{
    if (!x)
        return tg__null_input("tg_detach", 0);
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
    if (!x)
        return tg__null_input("tg_full_like", 0);
    TG__API_CALL("tg_full_like", tg_full(x->dtype, x->ndim, x->shape, value));
}

tg_tensor *tg_scalar(tg_dtype dtype, double value)
{
    TG__API_CALL("tg_scalar", tg_full(dtype, 0, NULL, value));
}
