/* fuzz_ops.c - random op sequences over the public API: the input is a small
 * program. Each step reads an opcode byte and its operands: make a leaf
 * (random dtype, shape, values, requires_grad), apply an op to tensors picked
 * from eight slots (a ninth pick is NULL), run backward / tg_grad, reset,
 * switch or free tapes, toggle grad mode, read, write and print tensors.
 * The toolbox step reaches every row of TG_UNARY_OPS and TG_BINARY_OPS by
 * expanding the lists (a new row is fuzzed with no edit here), the newer
 * reductions, argmax/argmin, layer norm, attention, tape constructors and
 * forward mode (tg_jvp, tg_hvp of one chosen op).
 *
 * Promises checked beyond "no crash, no sanitizer report, no leak":
 *   - an op that returns NULL (or a call that returns a negative status)
 *     recorded a failure whose message names a tg_ function;
 *   - a tensor an op returns has numel equal to the product of its shape,
 *     and all its values can be read (ASan checks the bounds).
 *
 * What the harness does not do, because the API forbids it (it would be a
 * bug in the harness, not in the library): use a tape tensor after its tape
 * is reset or freed (every slot holding one is cleared), free a caller-owned
 * tensor while a tape may still refer to it (they are freed at the end), or
 * pass arrays (labels, indices, values) shorter than the call reads.
 * Two switches (CFLAGS) explore what issue 11 items 1 and 2 make detectable,
 * once they land: -DFUZZ_STALE=1 keeps tape tensors in their slots after a
 * reset, -DFUZZ_CROSS_TAPE=1 lets one expression use tensors of two
 * tapes. Both report crashes today (see docs/reliability.md). */
#include "fuzz_common.h" /* first: it sets _POSIX_C_SOURCE */

#include <limits.h>
#include <math.h>
#include <stdbool.h>

#ifndef FUZZ_STALE
#define FUZZ_STALE 0
#endif
#ifndef FUZZ_CROSS_TAPE
#define FUZZ_CROSS_TAPE 0
#endif
/* Calls that hit bugs found by this harness and reported to the owners of
 * lib/ops and lib/autograd (docs/reliability.md lists them with
 * reproducers) are skipped, so that CI keeps looking for new ones;
 * -DFUZZ_OPEN_BUGS=1 makes them again. */
#ifndef FUZZ_OPEN_BUGS
#define FUZZ_OPEN_BUGS 1
#endif
#define OPEN_BUG(cond) (!FUZZ_OPEN_BUGS && (cond))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSLOT 8
#define NOWNED 48
#define MAX_LEAF 64  /* elements of a leaf made from input bytes */
#define NARRAY 64    /* entries of every label/index array handed to the library */
#define MAX_STEPS 64 /* opcodes per input, so one input stays fast */

typedef struct reader {
    const uint8_t *p;
    size_t n, pos;
} reader;

static unsigned u8(reader *r) { return r->pos < r->n ? r->p[r->pos++] : 0; }
static bool more(const reader *r) { return r->pos < r->n; }

typedef struct state {
    tg_tape *tapes[2];
    tg_tensor *slot[NSLOT];
    tg_tape *tape_of[NSLOT]; /* noted when stored (a freed tensor cannot be asked) */
    tg_tensor *owned[NOWNED]; /* caller-owned, freed at the end */
    int n_owned;
    tg_rng rng;
    FILE *sink; /* /dev/null for the printers */
} state;

/* ---- operands ---- */

static double scalar(reader *r)
{
    static const double table[] = {0,   1,      -1,     0.5,      2,    -2.5,  3,   1e-300,
                                   1e300, INFINITY, -INFINITY, NAN, -0.0, 1e-7, 100, 0.9999};
    return table[u8(r) % (sizeof table / sizeof table[0])];
}

static int axis(reader *r)
{
    static const int table[] = {0, 1, -1, 2, -2, 3, 4, -5, 8, INT_MIN, INT_MAX, 1};
    return table[u8(r) % (sizeof table / sizeof table[0])];
}

static const int64_t index_table[] = {0, 1, 2, 3, -1, 4, 5, 0, 1, INT64_MIN, INT64_MAX,
                                      1LL << 40};
#define N_INDEX (sizeof index_table / sizeof index_table[0])

static int64_t index_value(reader *r) { return index_table[u8(r) % N_INDEX]; }

/* NARRAY labels or indices from two bytes (a start and a stride in the
 * table), so that an op that needs an array costs the input little. */
static void index_array(reader *r, int64_t *a)
{
    unsigned start = u8(r), step = u8(r);
    for (unsigned i = 0; i < NARRAY; i++)
        a[i] = index_table[(start + i * step) % N_INDEX];
}

/* A shape for an argument (reshape, expand, full ...): mostly small dims,
 * sometimes 0, negative or huge ones. Huge shapes are refused or run out of
 * the fuzzer's allocation cap (TG_ENOMEM): neither may crash. */
static int shape_arg(reader *r, int64_t *shape)
{
    static const int64_t huge[] = {1LL << 31, 1LL << 40, 1LL << 62, INT64_MAX, -1, -7, 0};
    int nd = (int)(u8(r) % 6); // 0..5; 9 is tried elsewhere
    for (int i = 0; i < nd; i++) {
        unsigned b = u8(r);
        shape[i] = b >= 240 ? huge[b % 7] : (int64_t)(b % 5);
    }
    return nd;
}

static tg_tensor *pick(state *s, reader *r)
{
    unsigned k = u8(r) % (NSLOT + 1);
    if (k == NSLOT)
        return NULL;
    // Mixing tapes in one expression is issue 11 item 1 (open): a tensor of
    // another tape is picked as NULL unless FUZZ_CROSS_TAPE is set.
    if (!FUZZ_CROSS_TAPE && s->tape_of[k] && s->tape_of[k] != tg_tape_current())
        return NULL;
    return s->slot[k];
}

/* Reads every value of t (ASan checks the bounds) and the shape invariant. */
static void check_tensor(const tg_tensor *t, const char *what)
{
    int nd = tg_tensor_ndim(t);
    const int64_t *shape = tg_tensor_shape(t);
    FUZZ_CHECK(nd >= 0 && nd <= TG_MAX_DIMS && (nd == 0 || shape), "%s: ndim %d", what, nd);
    int64_t prod = 1;
    bool empty = false;
    for (int i = 0; i < nd; i++) {
        FUZZ_CHECK(shape[i] >= 0, "%s: dim %d is %lld", what, i, (long long)shape[i]);
        empty |= shape[i] == 0;
        if (!empty)
            prod *= shape[i];
    }
    int64_t n = tg_tensor_numel(t);
    FUZZ_CHECK(n == (empty ? 0 : prod), "%s: numel %lld, shape product %lld", what,
               (long long)n, (long long)prod);
    const void *d = tg_tensor_data_const(t);
    double sum = 0;
    if (tg_tensor_dtype(t) == TG_F32)
        for (int64_t i = 0; i < n; i++)
            sum += ((const float *)d)[i];
    else
        for (int64_t i = 0; i < n; i++)
            sum += ((const double *)d)[i];
    (void)sum;
}

static void store(state *s, reader *r, tg_tensor *t)
{
    unsigned k = u8(r) % NSLOT;
    s->slot[k] = t;
    // An op's result is made on the current tape.
    s->tape_of[k] = tg_tensor_on_tape(t) ? tg_tape_current() : NULL;
}

/* An op's result: checked, then stored in a slot (or its failure checked). */
static void put(state *s, reader *r, tg_tensor *t, const char *what)
{
    if (!t) {
        fuzz_check_failure(tg_last_status(), what);
        return;
    }
    check_tensor(t, what);
    store(s, r, t);
}

static void status_ok_or_failed(tg_status st, const char *what)
{
    if (st != TG_OK)
        fuzz_check_failure(st, what);
}

/* After a reset or free, tape tensors must not be used: forget them all.
 * With FUZZ_STALE, tensors from before a reset stay (the library is to
 * detect them); after tg_tape_free their memory is gone, so they always go. */
static void drop_tape_tensors(state *s, bool freed)
{
    if (FUZZ_STALE && !freed)
        return;
    for (int i = 0; i < NSLOT; i++)
        if (s->tape_of[i])
            s->slot[i] = NULL, s->tape_of[i] = NULL;
}

static void own(state *s, reader *r, tg_tensor *t, const char *what)
{
    if (!t) {
        fuzz_check_failure(tg_last_status(), what);
        return;
    }
    check_tensor(t, what);
    FUZZ_CHECK(!tg_tensor_on_tape(t), "%s: a constructor returned a tape tensor", what);
    s->owned[s->n_owned++] = t;
    store(s, r, t);
}

/* ---- steps ---- */

static void make_leaf(state *s, reader *r)
{
    if (s->n_owned == NOWNED)
        return;
    unsigned kind = u8(r);
    tg_dtype dt = kind & 1 ? TG_F64 : TG_F32;
    if ((kind & 0x1e) == 0x1e)
        dt = (tg_dtype)7; // invalid
    int64_t shape[TG_MAX_DIMS];
    int nd = (int)(u8(r) % 5);
    int64_t n = 1;
    for (int i = 0; i < nd; i++) {
        shape[i] = (int64_t)(u8(r) % 5);
        n *= shape[i];
    }
    if (n > MAX_LEAF)
        return;
    double values[MAX_LEAF];
    for (int64_t i = 0; i < n; i++)
        values[i] = ((int)u8(r) - 128) / 16.0;
    tg_tensor *t;
    switch ((kind >> 5) & 7) {
    case 0:
        t = tg_tensor_zeros(dt, nd, shape);
        break;
    case 1:
        t = tg_tensor_uniform(dt, nd, shape, -2, 2, &s->rng);
        break;
    case 2:
        t = tg_tensor_normal(dt, nd, shape, 0, 1, &s->rng);
        break;
    case 3:
        t = tg_tensor_arange(dt, scalar(r), scalar(r), scalar(r));
        if (t && tg_tensor_numel(t) > 4096) { // a legal but slow request: skip it
            tg_tensor_free(t);
            return;
        }
        break;
    default:
        t = tg_tensor_from_doubles(dt, nd, shape, values);
        break;
    }
    own(s, r, t, "constructor");
    if (t && (kind & 0x80))
        status_ok_or_failed(tg_tensor_set_requires_grad(t, true), "tg_tensor_set_requires_grad");
}

static void unary(state *s, reader *r)
{
    tg_tensor *x = pick(s, r), *y = NULL;
    unsigned op = u8(r);
    int axes[4];
    int n_axes = (int)(u8(r) % 4);
    for (int i = 0; i < n_axes; i++)
        axes[i] = axis(r);
    int64_t shape[TG_MAX_DIMS + 1];
    int64_t idx[NARRAY];
    switch (op % 40) {
    case 0: y = tg_neg(x); break;
    case 1: y = tg_exp(x); break;
    case 2: y = tg_log(x); break;
    case 3: y = tg_sqrt(x); break;
    case 4: y = tg_abs(x); break;
    case 5: y = tg_sign(x); break;
    case 6: y = tg_tanh(x); break;
    case 7: y = tg_sigmoid(x); break;
    case 8: y = tg_relu(x); break;
    case 9: y = tg_softplus(x); break;
    case 10: y = tg_leaky_relu(x, scalar(r)); break;
    case 11: y = tg_clamp(x, scalar(r), scalar(r)); break;
    case 12: y = tg_add_scalar(x, scalar(r)); break;
    case 13: y = tg_rsub_scalar(x, scalar(r)); break;
    case 14: y = tg_mul_scalar(x, scalar(r)); break;
    case 15: y = tg_div_scalar(x, scalar(r)); break;
    case 16: y = tg_rdiv_scalar(x, scalar(r)); break;
    case 17: y = tg_pow_scalar(x, scalar(r)); break;
    case 18: y = tg_gt_scalar(x, scalar(r)); break;
    case 19: y = tg_softmax(x, axis(r)); break;
    case 20: y = tg_log_softmax(x, axis(r)); break;
    case 21: y = tg_detach(x); break;
    case 22: y = tg_copy(x); break;
    case 23: y = tg_full_like(x, scalar(r)); break;
    case 24: y = tg_flatten(x, axis(r)); break;
    case 25: y = tg_transpose(x, axis(r), axis(r)); break;
    case 26:
        // Open bug 1: tg_slice accepts axis 0 of a 0-dim tensor and reads its
        // (nonexistent) shape[0] and strides[0].
        if (OPEN_BUG(x && tg_tensor_ndim(x) == 0))
            return;
        y = tg_slice(x, axis(r), index_value(r), index_value(r), index_value(r));
        break;
    case 27: y = tg_sum(x, n_axes ? axes : NULL, n_axes, op & 64); break;
    case 28: y = tg_mean(x, n_axes ? axes : NULL, n_axes, op & 64); break;
    case 29: y = tg_max(x, n_axes ? axes : NULL, n_axes, op & 64); break;
    case 30: y = tg_logsumexp(x, n_axes ? axes : NULL, n_axes, op & 64); break;
    case 31: {
        int perm[TG_MAX_DIMS];
        for (int i = 0; i < TG_MAX_DIMS; i++)
            perm[i] = axis(r);
        y = tg_permute(x, perm);
        break;
    }
    case 32: {
        int nd = shape_arg(r, shape);
        if (op & 64)
            shape[u8(r) % (nd ? nd : 1)] = -1; // inferred
        y = tg_reshape(x, op & 128 ? 9 : nd, shape);
        break;
    }
    case 33: y = tg_expand(x, shape_arg(r, shape), shape); break;
    case 34:
        index_array(r, idx);
        y = tg_index_select(x, axis(r), (int64_t)(u8(r) % 9), idx);
        break;
    case 35: {
        int nd = shape_arg(r, shape);
        int64_t prod = 1;
        for (int i = 0; i < nd; i++)
            if (shape[i] > 0) // saturates past NARRAY
                prod = shape[i] > NARRAY || prod * shape[i] > NARRAY ? NARRAY + 1
                                                                      : prod * shape[i];
        if (prod > NARRAY)
            return; // the index array must hold prod entries
        index_array(r, idx);
        y = tg_gather(x, axis(r), nd, shape, idx);
        break;
    }
    case 36: y = tg_dropout(x, scalar(r), op & 64, op & 128 ? &s->rng : NULL); break;
    case 37:
    case 38: {
        tg_pool2d_geom g = tg_pool2d_geom_square(1 + u8(r) % 3);
        g.stride_h = u8(r) % 3;
        g.padding = (tg_padding)(u8(r) % 4);
        g.pad_top = u8(r) % 2;
        g.count_include_pad = op & 64;
        y = op % 40 == 37 ? tg_max_pool2d(x, op & 128 ? NULL : &g) : tg_avg_pool2d(x, &g);
        break;
    }
    default: y = tg_sub_scalar(x, scalar(r)); break;
    }
    put(s, r, y, "unary op");
}

static void binary(state *s, reader *r)
{
    tg_tensor *a = pick(s, r), *b = pick(s, r), *c = pick(s, r), *y = NULL;
    unsigned op = u8(r);
    int64_t labels[NARRAY];
    if (op % 24 >= 19 && op % 24 <= 22)
        index_array(r, labels);
    bool rows_ok = a && (tg_tensor_ndim(a) < 1 || tg_tensor_dim(a, 0) <= NARRAY);
    tg_reduction red = (tg_reduction)(u8(r) % 4);
    switch (op % 24) {
    case 0: y = tg_add(a, b); break;
    case 1: y = tg_sub(a, b); break;
    case 2: y = tg_mul(a, b); break;
    case 3: y = tg_div(a, b); break;
    case 4: y = tg_pow(a, b); break;
    case 5: y = tg_maximum(a, b); break;
    case 6: y = tg_minimum(a, b); break;
    case 7: y = tg_gt(a, b); break;
    case 8: y = tg_ge(a, b); break;
    case 9: y = tg_lt(a, b); break;
    case 10: y = tg_le(a, b); break;
    case 11: y = tg_eq(a, b); break;
    case 12:
        // Open bug 2: a batched matmul whose inner dim is 0 divides by the
        // (empty) matrix size in batch_offset: SIGFPE.
        if (OPEN_BUG(a && b && (tg_tensor_ndim(a) > 2 || tg_tensor_ndim(b) > 2) &&
                     (tg_tensor_numel(a) == 0 || tg_tensor_numel(b) == 0)))
            return;
        y = tg_matmul(a, b);
        break;
    case 13: y = tg_where(a, b, c); break;
    case 14: {
        tg_tensor *xs[3] = {a, b, c};
        int n = (int)(u8(r) % 4);
        y = op & 64 ? tg_concat(n, n ? xs : NULL, axis(r)) : tg_stack(n, xs, axis(r));
        break;
    }
    case 15: y = tg_mse_loss(a, b, red); break;
    case 16: y = tg_bce_loss(a, b, red); break;
    case 17: y = tg_bce_with_logits_loss(a, b, red); break;
    case 18: y = tg_cross_entropy_soft(a, b, red); break;
    case 19:
        if (!a || rows_ok)
            y = tg_cross_entropy(a, op & 64 ? NULL : labels, red);
        else
            return;
        break;
    case 20:
        if (!a || rows_ok)
            y = tg_nll_loss(a, op & 64 ? NULL : labels, red);
        else
            return;
        break;
    case 21: {
        tg_conv2d_geom g = tg_conv2d_geom_default();
        g.stride_h = 1 + u8(r) % 2;
        g.dilation_w = 1 + u8(r) % 2;
        g.padding = (tg_padding)(u8(r) % 4);
        g.pad_left = u8(r) % 3;
        y = tg_conv2d(a, b, op & 64 ? c : NULL, op & 128 ? NULL : &g);
        break;
    }
    case 22: {
        int64_t n = a && tg_tensor_ndim(a) >= 1 ? tg_tensor_dim(a, 0) : 1;
        if (n > NARRAY)
            return;
        tg_clear_error();
        double acc = tg_accuracy(a, labels, op & 64 ? n : (int64_t)(u8(r) % 4));
        if (isnan(acc))
            fuzz_check_failure(tg_last_status(), "tg_accuracy");
        else
            FUZZ_CHECK(acc >= 0 && acc <= 1, "tg_accuracy gave %g", acc);
        return;
    }
    default: y = tg_mul(a, tg_add(b, c)); break;
    }
    put(s, r, y, "binary op");
}

/* Every row of the unary and binary op lists, so that an op added as a row
 * is fuzzed without an edit here. */
#define FUZZ_ROW_FN(name, ...) tg_##name,
static tg_tensor *(*const unary_rows[])(tg_tensor *) = {TG_UNARY_OPS(FUZZ_ROW_FN)};
static tg_tensor *(*const binary_rows[])(tg_tensor *, tg_tensor *) = {
    TG_BINARY_OPS(FUZZ_ROW_FN)};
#undef FUZZ_ROW_FN
#define N_UNARY_ROWS (sizeof unary_rows / sizeof unary_rows[0])
#define N_BINARY_ROWS (sizeof binary_rows / sizeof binary_rows[0])

/* The function tg_jvp and tg_hvp differentiate: one op of the lists above,
 * chosen by the input, then a sum to one element (tg_hvp needs a scalar). */
typedef struct fn_choice {
    unsigned op;
} fn_choice;

static tg_tensor *chosen_fn(tg_tensor *const *in, int n, void *ctx)
{
    unsigned op = ((const fn_choice *)ctx)->op;
    tg_tensor *y = n > 1 && op & 1 ? binary_rows[(op >> 1) % N_BINARY_ROWS](in[0], in[1])
                                   : unary_rows[(op >> 1) % N_UNARY_ROWS](in[0]);
    if (n > 1 && op & 2)
        y = tg_mul(y, in[1]);
    return tg_sum(y, NULL, 0, false);
}

/* Forward mode on the chosen function: the tangents are the picked tensors
 * themselves or others from the slots (so shapes and dtypes often differ,
 * which must fail cleanly). */
static void forward_mode(state *s, reader *r)
{
    fn_choice c = {u8(r)};
    tg_tensor *in[2] = {pick(s, r), pick(s, r)}, *dirs[2] = {pick(s, r), pick(s, r)};
    int n = 1 + (int)(u8(r) % 2);
    unsigned flags = u8(r) & 1 ? TG_CREATE_GRAPH : 0;
    tg_tensor *out = NULL, *res[2] = {NULL, NULL};
    tg_status st = c.op & 128 ? tg_hvp(chosen_fn, &c, n, in, dirs, &out, res, flags)
                              : tg_jvp(chosen_fn, &c, n, in, dirs, &out, res, flags);
    status_ok_or_failed(st, c.op & 128 ? "tg_hvp" : "tg_jvp");
    for (int i = 0; st == TG_OK && i < (c.op & 128 ? n : 1); i++)
        if (res[i]) {
            check_tensor(res[i], "forward-mode result");
            store(s, r, res[i]);
        }
}

/* The ops that arrived after the first version of this harness: every row
 * of the op lists, the newer reductions, argmax/argmin, layer norm,
 * attention, tape constructors, and forward mode. */
static void toolbox(state *s, reader *r)
{
    tg_tensor *a = pick(s, r), *b = pick(s, r), *c = pick(s, r), *y = NULL;
    unsigned op = u8(r);
    int axes[4];
    int n_axes = (int)(u8(r) % 4);
    for (int i = 0; i < n_axes; i++)
        axes[i] = axis(r);
    const int *ax = n_axes ? axes : NULL;
    bool keep = op & 64;
    int64_t shape[TG_MAX_DIMS];
    switch (op % 14) {
    case 0: y = unary_rows[u8(r) % N_UNARY_ROWS](a); break;
    case 1: y = binary_rows[u8(r) % N_BINARY_ROWS](a, b); break;
    case 2: y = tg_min(a, ax, n_axes, keep); break;
    case 3: y = tg_prod(a, ax, n_axes, keep); break;
    case 4: y = tg_var(a, ax, n_axes, (int)(u8(r) % 4) - 1, keep); break;
    case 5: y = tg_std(a, ax, n_axes, (int)(u8(r) % 4) - 1, keep); break;
    case 6: y = tg_cumsum(a, axis(r)); break;
    case 7: {
        int64_t idx[NARRAY];
        int64_t n_out = (int64_t)(u8(r) % (NARRAY + 1)); // never more than idx holds
        tg_status st = op & 128 ? tg_argmax(a, axis(r), idx, n_out)
                                : tg_argmin(a, axis(r), idx, n_out);
        status_ok_or_failed(st, op & 128 ? "tg_argmax" : "tg_argmin");
        return;
    }
    case 8: {
        static const double eps[] = {1e-5, 0, -1, NAN, INFINITY, 1e-300};
        y = tg_layer_norm(a, axis(r), op & 128 ? NULL : b, op & 32 ? NULL : c,
                          eps[u8(r) % (sizeof eps / sizeof eps[0])]);
        break;
    }
    case 9: y = tg_scaled_dot_product_attention(a, b, c, op & 128, scalar(r)); break;
    case 10: {
        tg_dtype dt = op & 128 ? TG_F64 : TG_F32;
        if ((op & 0x30) == 0x30)
            dt = (tg_dtype)5; // invalid
        y = op & 32 ? tg_scalar(dt, scalar(r)) : tg_full(dt, shape_arg(r, shape), shape, scalar(r));
        break;
    }
    case 11: forward_mode(s, r); return;
    case 12: y = tg_matmul(a, tg_flatten(b, 0)); break; // 1-D operands
    default: y = tg_logsumexp(tg_cumsum(a, axis(r)), ax, n_axes, keep); break;
    }
    put(s, r, y, "toolbox op");
}

static void backward(state *s, reader *r)
{
    tg_tensor *out = pick(s, r);
    unsigned op = u8(r);
    unsigned flags = u8(r) & 7;
    switch (op % 3) {
    case 0:
        status_ok_or_failed(tg_backward(out), "tg_backward");
        break;
    case 1:
        status_ok_or_failed(tg_backward_ex(out, pick(s, r), flags), "tg_backward_ex");
        break;
    default: {
        tg_tensor *outs[2] = {out, pick(s, r)}, *seeds[2] = {pick(s, r), pick(s, r)};
        tg_tensor *inputs[3] = {pick(s, r), pick(s, r), pick(s, r)};
        tg_tensor *grads[3] = {NULL, NULL, NULL};
        int n_outs = 1 + (int)(u8(r) % 2), n_in = 1 + (int)(u8(r) % 3);
        tg_status st = tg_grad(n_outs, outs, op & 8 ? seeds : NULL, n_in, inputs, grads, flags);
        status_ok_or_failed(st, "tg_grad");
        for (int i = 0; st == TG_OK && i < n_in; i++)
            if (grads[i]) {
                check_tensor(grads[i], "tg_grad result");
                store(s, r, grads[i]);
            }
        break;
    }
    }
}

static void tape_step(state *s, reader *r)
{
    unsigned op = u8(r), k = (op >> 4) & 1;
    tg_tape *cur = tg_tape_current();
    switch (op % 7) {
    case 0:
        if (cur) {
            tg_tape_reset(cur);
            drop_tape_tensors(s, false);
        }
        break;
    case 1: // make tape k current, creating it if needed
        if (!s->tapes[k]) {
            s->tapes[k] = tg_tape_new();
            FUZZ_CHECK(s->tapes[k] || tg_last_status() == TG_ENOMEM, "tg_tape_new");
        } else {
            tg_tape_set_current(s->tapes[k]);
        }
        break;
    case 2:
        tg_tape_set_current(NULL);
        break;
    case 3:
        if (s->tapes[k]) {
            // The other tape's nodes may read this tape's tensors (a constant
            // used across tapes), which must outlive them, as documented for
            // tg_tape_free: reset it first.
            if (s->tapes[!k])
                tg_tape_reset(s->tapes[!k]);
            tg_tape_free(s->tapes[k]);
            s->tapes[k] = NULL;
            drop_tape_tensors(s, true);
        }
        break;
    case 4:
        tg_set_grad_enabled(op & 32);
        break;
    case 5:
        status_ok_or_failed(tg_tape_print(cur, s->sink), "tg_tape_print");
        break;
    default:
        tg_tape_explain(cur, op & 32 ? s->sink : NULL);
        break;
    }
}

static void access_step(state *s, reader *r)
{
    tg_tensor *t = pick(s, r);
    unsigned op = u8(r);
    int64_t index[TG_MAX_DIMS], all[NARRAY];
    index_array(r, all);
    memcpy(index, all, sizeof index);
    double v = 0;
    char buf[64];
    switch (op % 12) {
    case 0:
        status_ok_or_failed(tg_tensor_get(t, op & 64 ? NULL : index, &v), "tg_tensor_get");
        break;
    case 1:
        status_ok_or_failed(tg_tensor_set(t, index, scalar(r)), "tg_tensor_set");
        break;
    case 2:
        status_ok_or_failed(tg_tensor_get_flat(t, index[0], &v), "tg_tensor_get_flat");
        break;
    case 3:
        status_ok_or_failed(tg_tensor_set_flat(t, index[0], scalar(r)), "tg_tensor_set_flat");
        break;
    case 4:
        status_ok_or_failed(tg_tensor_fill(t, scalar(r)), "tg_tensor_fill");
        break;
    case 5:
        status_ok_or_failed(tg_tensor_copy_values(t, pick(s, r)), "tg_tensor_copy_values");
        break;
    case 6:
        status_ok_or_failed(tg_tensor_print(t, s->sink), "tg_tensor_print");
        break;
    case 7: {
        int n = tg_tensor_format(t, op & 64 ? NULL : buf, op & 64 ? 0 : u8(r) % sizeof buf);
        if (n < 0)
            fuzz_check_failure((tg_status)n, "tg_tensor_format");
        break;
    }
    case 8:
        (void)tg_tensor_item(t);
        break;
    case 9:
        status_ok_or_failed(tg_tensor_set_requires_grad(t, op & 64),
                            "tg_tensor_set_requires_grad");
        break;
    case 10: {
        tg_tensor *g = tg_tensor_grad(t);
        if (g)
            check_tensor(g, "tg_tensor_grad");
        if (op & 64)
            tg_tensor_zero_grad(t);
        break;
    }
    default:
        if (s->n_owned < NOWNED && t)
            own(s, r, op & 64 ? tg_tensor_clone(t) : tg_tensor_clone_as(t, (tg_dtype)(op >> 7)),
                "tg_tensor_clone");
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink)
        sink = fopen("/dev/null", "w");
    tg__alloc_set_max(FUZZ_MAX_ALLOC);
    // Thread state left by the previous input.
    tg_tape_set_current(NULL);
    tg_set_grad_enabled(true);

    state s = {.rng = tg_rng_seeded(size), .sink = sink};
    reader r = {data, size, 0};
    s.tapes[0] = tg_tape_new();
    for (int step = 0; step < MAX_STEPS && more(&r); step++) {
        tg_clear_error();
        switch (u8(&r) % 9) {
        case 0:
        case 1: make_leaf(&s, &r); break;
        case 2:
        case 3: unary(&s, &r); break;
        case 4: binary(&s, &r); break;
        case 5: backward(&s, &r); break;
        case 6: tape_step(&s, &r); break;
        case 7: toolbox(&s, &r); break;
        default: access_step(&s, &r); break;
        }
    }
    tg_tape_free(s.tapes[0]);
    tg_tape_free(s.tapes[1]);
    for (int i = 0; i < s.n_owned; i++)
        tg_tensor_free(s.owned[i]);
    tg_tape_set_current(NULL);
    return 0;
}
