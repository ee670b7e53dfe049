/* tensor.h - n-dimensional float32/float64 tensors, creation, access, printing,
 * and the seeded random generator.
 *
 * Layout: row-major and always contiguous; strides are in elements. reshape,
 * flatten and detach share storage with their input; every other op writes a
 * fresh tensor.
 *
 * Ownership (see docs/design.md):
 *   - tg_tensor_* constructors below return a tensor the caller owns and frees
 *     with tg_tensor_free. Use them for parameters, inputs and anything that must
 *     outlive a training step.
 *   - Tensors returned by ops (tapegrad/ops.h) belong to the current tape and are
 *     all released by tg_tape_reset / tg_tape_free. Never free them one by one
 *     (tg_tensor_free ignores them).
 *   - A tensor's .grad belongs to the tensor.
 */
#ifndef TAPEGRAD_TENSOR_H
#define TAPEGRAD_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TG_MAX_DIMS 8

typedef enum tg_dtype { TG_F32 = 0, TG_F64 = 1 } tg_dtype;

typedef struct tg_tensor tg_tensor;

/* TG_SHAPE(2, 3) expands to "2, (const int64_t[]){2, 3}": the (ndim, shape)
 * argument pair every constructor takes. */
#define TG_SHAPE(...)                                                      \
    (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),     \
        (const int64_t[]) { __VA_ARGS__ }

/* "float32" / "float64" ("?" for an invalid value). */
TG_API const char *tg_dtype_name(tg_dtype dtype);
/* 4 or 8 (0 for an invalid value). */
TG_API size_t tg_dtype_size(tg_dtype dtype);

/* ---- the random generator ------------------------------------------------
 * xoshiro256** seeded through splitmix64: the state is s[0..3] =
 * splitmix64(seed) four times in a row. Its integer stream
 * (tg_rng_next_u64) is identical on every platform. Doubles take the top 53
 * bits: (x >> 11) * 2^-53 in [0,1); floats take the top 24 bits. Normals use
 * Box-Muller on two doubles, so their values follow libm's log/cos/sqrt.
 * A NULL generator records TG_EINVAL and the draw returns 0 (NaN for
 * uniform and normal). */
typedef struct tg_rng {
    uint64_t s[4];
} tg_rng;

TG_API tg_rng tg_rng_seeded(uint64_t seed);
TG_API uint64_t tg_rng_next_u64(tg_rng *rng);
/* Uniform in [0, 1). */
TG_API double tg_rng_uniform(tg_rng *rng);
/* Standard normal. */
TG_API double tg_rng_normal(tg_rng *rng);
/* Uniform integer in [0, n); n must be > 0 (returns 0 otherwise). Unbiased. */
TG_API uint64_t tg_rng_below(tg_rng *rng, uint64_t n);

/* ---- constructors: the caller owns the result ----------------------------
 * All return NULL on failure: TG_EINVAL (bad dtype, ndim outside 0..8, a
 * negative dimension, NULL shape with ndim > 0), TG_ERANGE (the product of
 * the dims, with zero dims counted as 1, exceeds INT64_MAX / 8: more elements
 * than memory can hold, or strides too large for byte offsets even when the
 * tensor is empty), TG_ENOMEM. A 0-dim tensor (ndim 0) is a scalar. */
TG_API tg_tensor *tg_tensor_zeros(tg_dtype dtype, int ndim, const int64_t *shape);
TG_API tg_tensor *tg_tensor_ones(tg_dtype dtype, int ndim, const int64_t *shape);
TG_API tg_tensor *tg_tensor_full(tg_dtype dtype, int ndim, const int64_t *shape, double value);
/* Copies numel elements from data, which holds values of `dtype` (float or
 * double) in row-major order. */
TG_API tg_tensor *tg_tensor_from_data(tg_dtype dtype, int ndim, const int64_t *shape,
                                      const void *data);
/* Copies numel doubles, converting them to dtype. */
TG_API tg_tensor *tg_tensor_from_doubles(tg_dtype dtype, int ndim, const int64_t *shape,
                                         const double *values);
/* 1-D [start, start+step, ...) below stop (above it for a negative step). */
TG_API tg_tensor *tg_tensor_arange(tg_dtype dtype, double start, double stop, double step);
/* Uniform in [low, high), drawing one generator number per element in order. */
TG_API tg_tensor *tg_tensor_uniform(tg_dtype dtype, int ndim, const int64_t *shape,
                                    double low, double high, tg_rng *rng);
/* Normal(mean, std), one tg_rng_normal per element in order. */
TG_API tg_tensor *tg_tensor_normal(tg_dtype dtype, int ndim, const int64_t *shape,
                                   double mean, double std, tg_rng *rng);
/* A caller-owned copy of t's values (any owner, any dtype), converted to
 * dtype. It is a leaf with requires_grad false and no grad. */
TG_API tg_tensor *tg_tensor_clone_as(const tg_tensor *t, tg_dtype dtype);
/* tg_tensor_clone_as(t, dtype of t). */
TG_API tg_tensor *tg_tensor_clone(const tg_tensor *t);

/* Frees a caller-owned tensor and its grad. NULL and tape-owned tensors are
 * ignored (the tape releases those). */
TG_API void tg_tensor_free(tg_tensor *t);

/* ---- inspection ----------------------------------------------------------
 * Given NULL, each getter returns TG_F32, 0, false, NULL or -1 (as fits) and
 * records TG_EINVAL ("tg_tensor_ndim: tensor is NULL"), unless a failure is
 * already pending: then its message is kept, as ops do. */
TG_API tg_dtype tg_tensor_dtype(const tg_tensor *t);
TG_API int tg_tensor_ndim(const tg_tensor *t);
/* Borrowed arrays of ndim entries, valid as long as t. */
TG_API const int64_t *tg_tensor_shape(const tg_tensor *t);
TG_API const int64_t *tg_tensor_strides(const tg_tensor *t);
/* Size of dimension `axis` (negative counts from the end); -1 with TG_ERANGE
 * if out of range. */
TG_API int64_t tg_tensor_dim(const tg_tensor *t, int axis);
TG_API int64_t tg_tensor_numel(const tg_tensor *t);
/* True when t belongs to a tape (was made by an op). */
TG_API bool tg_tensor_on_tape(const tg_tensor *t);
/* Borrowed pointer to the first element (float * or double * as dtype says),
 * valid until t is freed or, for tape tensors, until the tape is reset.
 * Writing through it changes the tensor's values in place. */
TG_API void *tg_tensor_data(tg_tensor *t);
TG_API const void *tg_tensor_data_const(const tg_tensor *t);

/* ---- element access (values as double, whatever the dtype) ---------------
 * index holds ndim entries. TG_ERANGE for an index out of bounds, TG_EINVAL
 * for NULL. On failure *out is untouched. */
TG_API tg_status tg_tensor_get(const tg_tensor *t, const int64_t *index, double *out);
TG_API tg_status tg_tensor_set(tg_tensor *t, const int64_t *index, double value);
/* The same with a row-major flat index in [0, numel). */
TG_API tg_status tg_tensor_get_flat(const tg_tensor *t, int64_t i, double *out);
TG_API tg_status tg_tensor_set_flat(tg_tensor *t, int64_t i, double value);
/* The value of a one-element tensor; NaN (with TG_ESHAPE/TG_EINVAL set) otherwise. */
TG_API double tg_tensor_item(const tg_tensor *t);
/* Copies all values into out[numel] as doubles. */
TG_API tg_status tg_tensor_to_doubles(const tg_tensor *t, double *out);
/* Fills every element with value (in place). */
TG_API tg_status tg_tensor_fill(tg_tensor *t, double value);
/* Copies src's values into dst (same shape; dtypes may differ). */
TG_API tg_status tg_tensor_copy_values(tg_tensor *dst, const tg_tensor *src);

/* ---- gradients -----------------------------------------------------------
 * Only leaves (tensors not produced by a recorded op) can be marked:
 * TG_ESTATE otherwise. */
TG_API tg_status tg_tensor_set_requires_grad(tg_tensor *t, bool requires_grad);
TG_API bool tg_tensor_requires_grad(const tg_tensor *t);
/* The accumulated gradient (same shape and dtype as t), or NULL before the
 * first backward reached t. Borrowed: owned by t. */
TG_API tg_tensor *tg_tensor_grad(const tg_tensor *t);
/* Sets t's gradient to zero (keeps the buffer). No-op when it has none;
 * NULL records TG_EINVAL. */
TG_API void tg_tensor_zero_grad(tg_tensor *t);

/* ---- printing ------------------------------------------------------------
 * numpy-like:
 *   tensor([[ 1.0000,  2.0000],
 *           [ 3.0000,  4.0000]], dtype=float64, requires_grad=true)
 * Large tensors (over 1000 elements) show 3 entries at each end of a
 * dimension with "..." between; an empty tensor prints as
 * tensor([], shape=(0, 3), dtype=float64). */
/* The text and a newline go to stream, which is then flushed: TG_EIO when a
 * write or the flush fails (a full disk, a read-only stream), with strerror in
 * the message; TG_EINVAL for NULL. */
TG_API tg_status tg_tensor_print(const tg_tensor *t, FILE *stream);
/* The same text into buf (truncated to size-1, always terminated); returns the
 * length the full text needs, like snprintf, or a negative status. */
TG_API int tg_tensor_format(const tg_tensor *t, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
