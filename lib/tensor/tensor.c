/* tensor.c - tensor storage, shape bookkeeping, constructors and element access.
 * Printing lives in print.c; ops live in lib/ops/. */
#include <math.h>
#include <string.h>

#include "autograd/tape_internal.h"
#include "tg_internal.h"

const char *tg_dtype_name(tg_dtype dtype)
{
    switch (dtype) {
    case TG_F32:
        return "float32";
    case TG_F64:
        return "float64";
    }
    return "?";
}

size_t tg_dtype_size(tg_dtype dtype)
{
    switch (dtype) {
    case TG_F32:
        return sizeof(float);
    case TG_F64:
        return sizeof(double);
    }
    return 0;
}

/* The element count of a shape tg__init_shape accepts, or -1 for one it
 * refuses (which it then explains). Strides count a zero dim as 1, so an
 * empty tensor's strides can overflow even though numel is 0, e.g. (0, 1e12,
 * 1e12). One rule covers both: the product with zeros taken as 1 (the span
 * of the strides) must keep 8 bytes per element representable; numel is at
 * most that, so it fits too. The span only grows, so checking its last value
 * covers every step. The checks use the compiler's overflow builtins: a
 * division per dimension would cost more than the rest of a small op. */
static inline int64_t valid_numel(int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > TG_MAX_DIMS || (ndim > 0 && !shape))
        return -1;
    int64_t span = 1, bytes;
    bool empty = false;
    for (int i = 0; i < ndim; i++) {
        int64_t s = shape[i];
        if (s < 0 || __builtin_mul_overflow(span, s ? s : 1, &span))
            return -1;
        empty |= s == 0;
    }
    if (__builtin_mul_overflow(span, (int64_t)8, &bytes))
        return -1;
    return empty ? 0 : span;
}

/* Writes a valid shape (numel from valid_numel) and its strides into t. */
static inline void set_shape(tg_tensor *t, int ndim, const int64_t *shape, int64_t numel)
{
    t->ndim = ndim;
    int64_t stride = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        t->shape[i] = shape[i];
        t->strides[i] = stride;
        stride *= shape[i] ? shape[i] : 1; // bounded by the span: cannot overflow
    }
    t->numel = numel;
}

/* Why valid_numel refused a shape, recorded for fn. */
static tg_status shape_error(const char *fn, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > TG_MAX_DIMS)
        return tg__fail(TG_EINVAL, "%s: ndim %d outside 0..%d", fn, ndim, TG_MAX_DIMS);
    if (ndim > 0 && !shape)
        return tg__fail(TG_EINVAL, "%s: shape is NULL", fn);
    bool empty = false;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return tg__fail(TG_EINVAL, "%s: dimension %d is negative (%lld)", fn, i,
                            (long long)shape[i]);
        empty |= shape[i] == 0;
    }
    int64_t span = 1, bytes;
    char s[TG__SHAPE_STR];
    for (int i = 0; i < ndim; i++)
        if (__builtin_mul_overflow(span, shape[i] ? shape[i] : 1, &span) ||
            __builtin_mul_overflow(span, (int64_t)8, &bytes)) {
            tg__shape_str(s, ndim, shape);
            if (empty)
                return tg__fail(TG_ERANGE, "%s: strides overflow at dimension %d of empty shape "
                                "%s (a zero dim counts as 1 in strides)", fn, i, s);
            return tg__fail(TG_ERANGE, "%s: element count overflows at dimension %d (shape %s)",
                            fn, i, s);
        }
    return tg__fail(TG_EINVAL, "%s: invalid shape", fn); // not reached
}

tg_status tg__init_shape(tg_tensor *t, const char *fn, int ndim, const int64_t *shape)
{
    int64_t numel = valid_numel(ndim, shape);
    if (numel < 0)
        return shape_error(fn, ndim, shape);
    set_shape(t, ndim, shape, numel);
    return TG_OK;
}

/* Header fields other than the shape, for a fresh tensor. */
static inline void init_header(tg_tensor *t, tg_tape *tape, tg_dtype dtype)
{
    t->dtype = dtype;
    t->data = NULL;
    t->tape = tape;
    t->gen = tape ? tg__tape_arena(tape)->generation : TG__GEN_CALLER;
    t->owns_data = false;
    t->requires_grad = false;
    t->node = NULL;
    t->grad = NULL;
    t->walk_grad = NULL;
    t->walk_id = 0;
}

static tg_tensor *tensor_alloc_any(tg_tape *tape, const char *fn, tg_dtype dtype, int ndim,
                                   const int64_t *shape, bool zero);

/* Op results and gradients: a tape tensor of at most 4 dims of at most 2^14
 * each. That shape cannot overflow anything (2^56 elements of 8 bytes), so
 * its checks are one compare a dim; everything else (and every message)
 * goes to tensor_alloc_any. */
#define FAST_DIMS 4
#define FAST_DIM_MAX 16384

tg_tensor *tg__tensor_alloc(tg_tape *tape, const char *fn, tg_dtype dtype, int ndim,
                            const int64_t *shape, bool zero)
{
    if (!tape || (unsigned)ndim > FAST_DIMS || (ndim > 0 && !shape) ||
        (dtype != TG_F32 && dtype != TG_F64))
        return tensor_alloc_any(tape, fn, dtype, ndim, shape, zero);
    tg_tensor *quick = tg__tape_tensor_here(tape, dtype, ndim, shape);
    if (quick) {
        if (zero)
            memset(quick->data, 0, (size_t)quick->numel << (dtype == TG_F32 ? 2 : 3));
        return quick;
    }
    int64_t strides[FAST_DIMS], numel = 1, stride = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        int64_t s = shape[i];
        if ((uint64_t)s > FAST_DIM_MAX)
            return tensor_alloc_any(tape, fn, dtype, ndim, shape, zero);
        strides[i] = stride;
        numel *= s;
        stride *= s ? s : 1;
    }
    size_t bytes = (size_t)numel << (dtype == TG_F32 ? 2 : 3);
    // Header and data in one block: one bump of the arena per tensor.
    tg__arena *arena = tg__tape_arena(tape);
    size_t at = TG__TENSOR_DATA_AT;
    unsigned char *block = tg__arena_take(arena, at + bytes);
    if (!block)
        return tg__arena_fail(fn, arena, at + bytes);
    tg_tensor *t = (tg_tensor *)block;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->strides[i] = strides[i];
    }
    tg__tape_header_finish(t, tape, arena, block + at, numel);
    if (zero)
        memset(t->data, 0, bytes);
    return t;
}

static tg_tensor *tensor_alloc_any(tg_tape *tape, const char *fn, tg_dtype dtype, int ndim,
                                   const int64_t *shape, bool zero)
{
    size_t esize = dtype == TG_F32 ? sizeof(float) : dtype == TG_F64 ? sizeof(double) : 0;
    if (!esize)
        return tg__fail_null(TG_EINVAL, "%s: invalid dtype %d", fn, (int)dtype);
    // Checked first, so a bad shape takes no memory.
    int64_t numel = valid_numel(ndim, shape);
    if (numel < 0) {
        shape_error(fn, ndim, shape);
        return NULL;
    }
    const uint64_t most = esize == 4 ? (SIZE_MAX - 2 * TG__ARENA_ALIGN) / 4
                                     : (SIZE_MAX - 2 * TG__ARENA_ALIGN) / 8;
    if ((uint64_t)numel > most)
        return tg__fail_null(TG_ERANGE, "%s: tensor too large", fn);
    size_t bytes = (size_t)numel * esize;
    tg_tensor *t;
    void *data;
    if (tape) {
        // Header and data in one block: one bump of the arena per tensor.
        tg__arena *arena = tg__tape_arena(tape);
        size_t at = (sizeof *t + TG__ARENA_ALIGN - 1) & ~(size_t)(TG__ARENA_ALIGN - 1);
        unsigned char *block = tg__arena_take(arena, at + bytes);
        if (!block)
            return tg__arena_fail(fn, arena, at + bytes);
        t = (tg_tensor *)block;
        data = block + at;
    } else {
        t = tg__malloc(sizeof *t);
        data = t ? tg__malloc(bytes) : NULL;
        if (!data) {
            tg__free(t);
            return tg__fail_null(TG_ENOMEM, "%s: out of memory for %zu bytes", fn, bytes);
        }
    }
    init_header(t, tape, dtype);
    t->data = data;
    set_shape(t, ndim, shape, numel);
    t->owns_data = !tape;
    if (zero)
        memset(t->data, 0, bytes);
    return t;
}

void tg_tensor_free(tg_tensor *t)
{
    if (!t || t->tape)
        return;
    tg_tensor_free(t->grad);
    if (t->owns_data)
        tg__free(t->data);
    tg__free(t);
}

tg_status tg__check_live_slow(const char *fn, const tg_tensor *t)
{
    if (!t->tape && t->gen == TG__GEN_CALLER)
        return TG_OK;
    switch (t->tape ? tg__gen_check(t->gen) : TG__GEN_DEAD) {
    case TG__GEN_LIVE:
        return TG_OK;
    case TG__GEN_STALE:
        return tg__fail(TG_ESTATE, "%s: tensor from before tg_tape_reset (tape #%u); op "
                                   "results live until the next reset", fn,
                        tg__gen_tape_id(t->gen));
    default:
        return tg__fail(TG_ESTATE, "%s: tensor from a freed tape (or not a tensor)", fn);
    }
}


/* ---- constructors ---- */

tg_tensor *tg_tensor_zeros(tg_dtype dtype, int ndim, const int64_t *shape)
{
    return tg__tensor_alloc(NULL, "tg_tensor_zeros", dtype, ndim, shape, true);
}

static tg_tensor *filled(const char *fn, tg_dtype dtype, int ndim, const int64_t *shape,
                         double value)
{
    tg_tensor *t = tg__tensor_alloc(NULL, fn, dtype, ndim, shape, false);
    if (t)
        tg_tensor_fill(t, value);
    return t;
}

tg_tensor *tg_tensor_ones(tg_dtype dtype, int ndim, const int64_t *shape)
{
    return filled("tg_tensor_ones", dtype, ndim, shape, 1.0);
}

tg_tensor *tg_tensor_full(tg_dtype dtype, int ndim, const int64_t *shape, double value)
{
    return filled("tg_tensor_full", dtype, ndim, shape, value);
}

tg_tensor *tg_tensor_from_data(tg_dtype dtype, int ndim, const int64_t *shape, const void *data)
{
    if (!data)
        return tg__fail_null(TG_EINVAL, "tg_tensor_from_data: data is NULL");
    tg_tensor *t = tg__tensor_alloc(NULL, "tg_tensor_from_data", dtype, ndim, shape, false);
    if (t)
        memcpy(t->data, data, (size_t)t->numel * tg_dtype_size(dtype));
    return t;
}

tg_tensor *tg_tensor_from_doubles(tg_dtype dtype, int ndim, const int64_t *shape,
                                  const double *values)
{
    if (!values)
        return tg__fail_null(TG_EINVAL, "tg_tensor_from_doubles: values is NULL");
    tg_tensor *t = tg__tensor_alloc(NULL, "tg_tensor_from_doubles", dtype, ndim, shape, false);
    if (t)
        for (int64_t i = 0; i < t->numel; i++)
            tg__set(t, i, values[i]);
    return t;
}

tg_tensor *tg_tensor_arange(tg_dtype dtype, double start, double stop, double step)
{
    if (step == 0 || !isfinite(step) || !isfinite(start) || !isfinite(stop))
        return tg__fail_null(TG_EINVAL, "tg_tensor_arange: need finite start/stop and step != 0 "
                                        "(got %g, %g, %g)", start, stop, step);
    double count = ceil((stop - start) / step);
    if (count < 0)
        count = 0;
    if (count > (double)(INT64_MAX / 8))
        return tg__fail_null(TG_ERANGE, "tg_tensor_arange: %g elements is too many", count);
    int64_t n = (int64_t)count;
    tg_tensor *t = tg__tensor_alloc(NULL, "tg_tensor_arange", dtype, 1, &n, false);
    if (t)
        for (int64_t i = 0; i < n; i++)
            tg__set(t, i, start + (double)i * step);
    return t;
}

tg_tensor *tg_tensor_uniform(tg_dtype dtype, int ndim, const int64_t *shape, double low,
                             double high, tg_rng *rng)
{
    if (!rng)
        return tg__fail_null(TG_EINVAL, "tg_tensor_uniform: rng is NULL");
    if (!(low <= high) || !isfinite(low) || !isfinite(high))
        return tg__fail_null(TG_EINVAL, "tg_tensor_uniform: need finite low <= high "
                                        "(got %g, %g)", low, high);
    tg_tensor *t = tg__tensor_alloc(NULL, "tg_tensor_uniform", dtype, ndim, shape, false);
    if (!t)
        return NULL;
    if (dtype == TG_F64) {
        for (int64_t i = 0; i < t->numel; i++)
            tg__set(t, i, low + (high - low) * tg_rng_uniform(rng));
        return t;
    }
    // float32 takes the top 24 bits, as documented; rounding the scaled value
    // to float could still reach high, which the interval excludes.
    float *d = t->data, top = (float)high;
    float below = nextafterf(top, (float)low);
    for (int64_t i = 0; i < t->numel; i++) {
        double u = (double)(tg_rng_next_u64(rng) >> 40) * 0x1.0p-24;
        float v = (float)(low + (high - low) * u);
        d[i] = v >= top && high > low ? below : v;
    }
    return t;
}

tg_tensor *tg_tensor_normal(tg_dtype dtype, int ndim, const int64_t *shape, double mean,
                            double std, tg_rng *rng)
{
    if (!rng)
        return tg__fail_null(TG_EINVAL, "tg_tensor_normal: rng is NULL");
    if (!(std >= 0) || !isfinite(std) || !isfinite(mean))
        return tg__fail_null(TG_EINVAL, "tg_tensor_normal: need finite mean and std >= 0 "
                                        "(got %g, %g)", mean, std);
    tg_tensor *t = tg__tensor_alloc(NULL, "tg_tensor_normal", dtype, ndim, shape, false);
    if (t)
        for (int64_t i = 0; i < t->numel; i++)
            tg__set(t, i, mean + std * tg_rng_normal(rng));
    return t;
}

static tg_tensor *clone(const char *fn, const tg_tensor *t, tg_dtype dtype)
{
    if (tg__bad_input(fn, t, 0))
        return NULL;
    tg_tensor *c = tg__tensor_alloc(NULL, fn, dtype, t->ndim, t->shape, false);
    if (c)
        tg_tensor_copy_values(c, t);
    return c;
}

tg_tensor *tg_tensor_clone_as(const tg_tensor *t, tg_dtype dtype)
{
    return clone("tg_tensor_clone_as", t, dtype);
}

tg_tensor *tg_tensor_clone(const tg_tensor *t)
{
    return clone("tg_tensor_clone", t, t ? t->dtype : TG_F32);
}

/* ---- inspection ---- */

/* Getters given NULL return a neutral value and record TG_EINVAL, so that
 * "tg_tensor_dtype(NULL) is TG_F32" is not a silent answer. */
#define GETTER(fn, t, value, fallback)                          \
    do {                                                        \
        if (t)                                                  \
            return value;                                       \
        tg__null_arg(fn, "tensor");                             \
        return fallback;                                        \
    } while (0)

tg_dtype tg_tensor_dtype(const tg_tensor *t) { GETTER("tg_tensor_dtype", t, t->dtype, TG_F32); }
int tg_tensor_ndim(const tg_tensor *t) { GETTER("tg_tensor_ndim", t, t->ndim, 0); }
const int64_t *tg_tensor_shape(const tg_tensor *t)
{
    GETTER("tg_tensor_shape", t, t->shape, NULL);
}
const int64_t *tg_tensor_strides(const tg_tensor *t)
{
    GETTER("tg_tensor_strides", t, t->strides, NULL);
}
int64_t tg_tensor_numel(const tg_tensor *t) { GETTER("tg_tensor_numel", t, t->numel, 0); }
bool tg_tensor_on_tape(const tg_tensor *t) { GETTER("tg_tensor_on_tape", t, t->tape, false); }
void *tg_tensor_data(tg_tensor *t)
{
    GETTER("tg_tensor_data", t, tg__check_live("tg_tensor_data", t) == TG_OK ? t->data : NULL,
           NULL);
}
const void *tg_tensor_data_const(const tg_tensor *t)
{
    GETTER("tg_tensor_data_const", t,
           tg__check_live("tg_tensor_data_const", t) == TG_OK ? t->data : NULL, NULL);
}

int64_t tg_tensor_dim(const tg_tensor *t, int axis)
{
    if (!t) {
        tg__null_arg("tg_tensor_dim", "tensor");
        return -1;
    }
    int a = axis < 0 ? axis + t->ndim : axis;
    if (a < 0 || a >= t->ndim) {
        tg__fail(TG_ERANGE, "tg_tensor_dim: axis %d out of range for %d dims", axis, t->ndim);
        return -1;
    }
    return t->shape[a];
}

/* ---- element access ---- */

static tg_status flat_index(const tg_tensor *t, const char *fn, const int64_t *index,
                            int64_t *flat)
{
    if (!t || (!index && t->ndim > 0))
        return tg__fail(TG_EINVAL, "%s: NULL %s", fn, t ? "index" : "tensor");
    if (tg__check_live(fn, t) != TG_OK)
        return TG_ESTATE;
    int64_t f = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (index[i] < 0 || index[i] >= t->shape[i])
            return tg__fail(TG_ERANGE, "%s: index %lld out of range for dimension %d of size %lld",
                            fn, (long long)index[i], i, (long long)t->shape[i]);
        f += index[i] * t->strides[i];
    }
    *flat = f;
    return TG_OK;
}

static tg_status check_flat(const tg_tensor *t, const char *fn, int64_t i)
{
    if (!t)
        return tg__fail(TG_EINVAL, "%s: NULL tensor", fn);
    if (tg__check_live(fn, t) != TG_OK)
        return TG_ESTATE;
    if (i < 0 || i >= t->numel)
        return tg__fail(TG_ERANGE, "%s: flat index %lld outside [0, %lld)", fn, (long long)i,
                        (long long)t->numel);
    return TG_OK;
}

tg_status tg_tensor_get(const tg_tensor *t, const int64_t *index, double *out)
{
    int64_t f = 0;
    tg_status s = flat_index(t, "tg_tensor_get", index, &f);
    if (s == TG_OK && !out)
        s = tg__fail(TG_EINVAL, "tg_tensor_get: out is NULL");
    if (s == TG_OK)
        *out = tg__get(t, f);
    return s;
}

tg_status tg_tensor_set(tg_tensor *t, const int64_t *index, double value)
{
    int64_t f = 0;
    tg_status s = flat_index(t, "tg_tensor_set", index, &f);
    if (s == TG_OK)
        tg__set(t, f, value);
    return s;
}

tg_status tg_tensor_get_flat(const tg_tensor *t, int64_t i, double *out)
{
    tg_status s = check_flat(t, "tg_tensor_get_flat", i);
    if (s == TG_OK && !out)
        s = tg__fail(TG_EINVAL, "tg_tensor_get_flat: out is NULL");
    if (s == TG_OK)
        *out = tg__get(t, i);
    return s;
}

tg_status tg_tensor_set_flat(tg_tensor *t, int64_t i, double value)
{
    tg_status s = check_flat(t, "tg_tensor_set_flat", i);
    if (s == TG_OK)
        tg__set(t, i, value);
    return s;
}

double tg_tensor_item(const tg_tensor *t)
{
    if (!t) {
        tg__null_input("tg_tensor_item", 0);
        return NAN;
    }
    if (tg__check_live("tg_tensor_item", t) != TG_OK)
        return NAN;
    if (t->numel != 1) {
        char s[TG__SHAPE_STR];
        tg__fail(TG_ESHAPE, "tg_tensor_item: tensor of shape %s has %lld elements, not 1",
                 tg__shape_str(s, t->ndim, t->shape), (long long)t->numel);
        return NAN;
    }
    return tg__get(t, 0);
}

tg_status tg_tensor_to_doubles(const tg_tensor *t, double *out)
{
    if (!t || !out)
        return tg__fail(TG_EINVAL, "tg_tensor_to_doubles: NULL %s", t ? "out" : "tensor");
    if (tg__check_live("tg_tensor_to_doubles", t) != TG_OK)
        return TG_ESTATE;
    for (int64_t i = 0; i < t->numel; i++)
        out[i] = tg__get(t, i);
    return TG_OK;
}

tg_status tg_tensor_fill(tg_tensor *t, double value)
{
    if (!t)
        return tg__fail(TG_EINVAL, "tg_tensor_fill: NULL tensor");
    if (tg__check_live("tg_tensor_fill", t) != TG_OK)
        return TG_ESTATE;
    if (t->dtype == TG_F32) {
        float v = (float)value, *d = t->data;
        for (int64_t i = 0; i < t->numel; i++)
            d[i] = v;
    } else {
        double *d = t->data;
        for (int64_t i = 0; i < t->numel; i++)
            d[i] = value;
    }
    return TG_OK;
}

tg_status tg_tensor_copy_values(tg_tensor *dst, const tg_tensor *src)
{
    if (!dst || !src)
        return tg__fail(TG_EINVAL, "tg_tensor_copy_values: NULL %s", dst ? "src" : "dst");
    if (tg__check_live("tg_tensor_copy_values", dst) != TG_OK ||
        tg__check_live("tg_tensor_copy_values", src) != TG_OK)
        return TG_ESTATE;
    if (!tg__same_shape(dst, src)) {
        char a[TG__SHAPE_STR], b[TG__SHAPE_STR];
        return tg__fail(TG_ESHAPE, "tg_tensor_copy_values: dst %s vs src %s",
                        tg__shape_str(a, dst->ndim, dst->shape),
                        tg__shape_str(b, src->ndim, src->shape));
    }
    if (dst->data == src->data)
        return TG_OK;
    if (dst->dtype == src->dtype)
        memcpy(dst->data, src->data, (size_t)src->numel * tg_dtype_size(src->dtype));
    else
        for (int64_t i = 0; i < src->numel; i++)
            tg__set(dst, i, tg__get(src, i));
    return TG_OK;
}

/* ---- gradients ---- */

bool tg_tensor_requires_grad(const tg_tensor *t)
{
    GETTER("tg_tensor_requires_grad", t, t->requires_grad, false);
}

tg_tensor *tg_tensor_grad(const tg_tensor *t)
{
    GETTER("tg_tensor_grad", t, tg__check_live("tg_tensor_grad", t) == TG_OK ? t->grad : NULL,
           NULL);
}

void tg_tensor_zero_grad(tg_tensor *t)
{
    if (!t)
        tg__null_arg("tg_tensor_zero_grad", "tensor");
    else if (tg__check_live("tg_tensor_zero_grad", t) == TG_OK && t->grad)
        tg_tensor_fill(t->grad, 0.0); // a live tensor's .grad lives as long as it

}
