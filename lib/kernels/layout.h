/* layout.h - kernels that move elements without arithmetic (beyond put_add's
 * sum): strided copies (permute, expand, slice and their adjoints), and
 * gathers/scatters by a flat index list. Element size is 4 or 8 bytes. */
#ifndef TG_KERNELS_LAYOUT_H
#define TG_KERNELS_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

/* For every index i of (ndim, shape): dst[i . dst_strides] = src[i . src_strides]
 * (strides in elements; 0 repeats an element). */
void tg__strided_copy(size_t esize, int ndim, const int64_t *shape, const void *src,
                      const int64_t *src_strides, void *dst, const int64_t *dst_strides);

/* dst (cols, rows) = src (rows, cols) transposed, both row-major (through
 * tg__strided_copy's blocked transpose). */
void tg__transpose_f32(const float *src, int64_t rows, int64_t cols, float *dst);

/* out[k] = x[idx[k]] for k < n. */
void tg__take_f32(const float *x, const int64_t *idx, int64_t n, float *out);
void tg__take_f64(const double *x, const int64_t *idx, int64_t n, double *out);
/* out[idx[k]] += src[k] for k < n (out is not cleared). */
void tg__put_add_f32(const float *src, const int64_t *idx, int64_t n, float *out);
void tg__put_add_f64(const double *src, const int64_t *idx, int64_t n, double *out);

#endif
