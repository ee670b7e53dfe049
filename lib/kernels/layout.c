/* layout.c - strided copies and index gathers/scatters (see layout.h). */
#include <stdbool.h>
#include <string.h>

#include "kernels/gemm_transpose.h"
#include "kernels/layout.h"

#define KMAX 8

#define STRIDED_BODY(T)                                                            \
    const T *s = src;                                                              \
    T *d = dst;                                                                    \
    int64_t inner = ndim ? shape[ndim - 1] : 1;                                    \
    int64_t ss = ndim ? src_strides[ndim - 1] : 0, ds = ndim ? dst_strides[ndim - 1] : 0; \
    int64_t rows = 1, idx[KMAX] = {0}, so = 0, dof = 0;                            \
    for (int k = 0; k < ndim - 1; k++)                                             \
        rows *= shape[k];                                                          \
    for (int64_t r = 0; r < rows; r++) {                                           \
        if (ss == 1 && ds == 1)                                                    \
            memcpy(d + dof, s + so, (size_t)inner * sizeof(T));                    \
        else                                                                       \
            for (int64_t j = 0; j < inner; j++)                                    \
                d[dof + j * ds] = s[so + j * ss];                                  \
        for (int k = ndim - 2; k >= 0; k--) {                                      \
            so += src_strides[k];                                                  \
            dof += dst_strides[k];                                                 \
            if (++idx[k] < shape[k])                                               \
                break;                                                             \
            so -= src_strides[k] * shape[k];                                       \
            dof -= dst_strides[k] * shape[k];                                      \
            idx[k] = 0;                                                            \
        }                                                                          \
    }

/* A float32 transpose, element (r, c) read from src[r + c * ls] and written
 * to dst[r * ld + c], in 8 x 8 blocks through registers: the general loop
 * wrote a column at a time, a cache line per element (the conv block's
 * weights, 64 x 288, took 2 ns an element). Returns false for any other
 * pattern, or without the vector shuffles. */
static bool transpose_f32(const int64_t *shape, const float *src, const int64_t *ss, float *dst,
                          const int64_t *ds)
{
#ifdef TG__TRANSPOSE8X8
    int64_t R = shape[0], C = shape[1], ls = ss[1], ld = ds[0];
    // Rows and columns that do not overlap (else the order of the writes
    // would show), and enough of them for a block.
    if (ss[0] != 1 || ds[1] != 1 || ls < R || ld < C || R < 8 || C < 8)
        return false;
    int64_t R8 = R / 8 * 8, C8 = C / 8 * 8;
    for (int64_t c = 0; c < C8; c += 8)
        for (int64_t r = 0; r < R8; r += 8)
            tg__transpose8x8_f32(src + c * ls + r, ls, dst + r * ld + c, ld);
    for (int64_t r = 0; r < R; r++) // the ragged edges
        for (int64_t c = r < R8 ? C8 : 0; c < C; c++)
            dst[r * ld + c] = src[r + c * ls];
    return true;
#else
    (void)shape, (void)src, (void)ss, (void)dst, (void)ds;
    return false;
#endif
}

void tg__strided_copy(size_t esize, int ndim, const int64_t *shape, const void *src,
                      const int64_t *src_strides, void *dst, const int64_t *dst_strides)
{
    for (int k = 0; k < ndim; k++)
        if (shape[k] == 0)
            return;
    if (esize == 4 && ndim == 2) {
        // Either order of the two dimensions may be the transpose's.
        const int64_t swapped[2] = {shape[1], shape[0]};
        const int64_t ss[2] = {src_strides[1], src_strides[0]};
        const int64_t ds[2] = {dst_strides[1], dst_strides[0]};
        if (transpose_f32(shape, src, src_strides, dst, dst_strides) ||
            transpose_f32(swapped, src, ss, dst, ds))
            return;
    }
    if (esize == 4) {
        STRIDED_BODY(float)
    } else {
        STRIDED_BODY(double)
    }
}

void tg__transpose_f32(const float *src, int64_t rows, int64_t cols, float *dst)
{
    const int64_t shape[2] = {rows, cols}, from[2] = {cols, 1}, to[2] = {1, rows};
    tg__strided_copy(sizeof(float), 2, shape, src, from, dst, to);
}

void tg__take_f32(const float *x, const int64_t *idx, int64_t n, float *out)
{
    for (int64_t k = 0; k < n; k++)
        out[k] = x[idx[k]];
}

void tg__take_f64(const double *x, const int64_t *idx, int64_t n, double *out)
{
    for (int64_t k = 0; k < n; k++)
        out[k] = x[idx[k]];
}

void tg__put_add_f32(const float *src, const int64_t *idx, int64_t n, float *out)
{
    for (int64_t k = 0; k < n; k++)
        out[idx[k]] += src[k];
}

void tg__put_add_f64(const double *src, const int64_t *idx, int64_t n, double *out)
{
    for (int64_t k = 0; k < n; k++)
        out[idx[k]] += src[k];
}
