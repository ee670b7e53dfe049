/* layout.c - strided copies and index gathers/scatters (see layout.h). */
#include <string.h>

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

void tg__strided_copy(size_t esize, int ndim, const int64_t *shape, const void *src,
                      const int64_t *src_strides, void *dst, const int64_t *dst_strides)
{
    for (int k = 0; k < ndim; k++)
        if (shape[k] == 0)
            return;
    if (esize == 4) {
        STRIDED_BODY(float)
    } else {
        STRIDED_BODY(double)
    }
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
