/* conv.c - im2col and its adjoint col2im (see kernels.h).
 *
 *   img (C, H, W)  <->  cols (C*KH*KW, OH*OW)
 *
 * Row (c, u, v) of cols holds, for every output position (i, j), the input
 * element img[c, i*SH - PT + u*DH, j*SW - PL + v*DW] (0 outside the image).
 * With cols, a convolution is one GEMM: out (OC, OH*OW) = W (OC, C*KH*KW) cols.
 * For each row the valid output columns form one contiguous range, so the
 * inner loops are straight copies (stride 1) or strided gathers without
 * per-element bounds checks. */
#include <string.h>

#include "kernels/kernels.h"

/* Output columns j whose input column j*S - P + off lies in [0, W): [*lo, *hi). */
static void valid_range(int64_t W, int64_t S, int64_t P, int64_t off, int64_t OW, int64_t *lo,
                        int64_t *hi)
{
    int64_t start = P - off; // need j*S >= start
    int64_t a = start <= 0 ? 0 : (start + S - 1) / S;
    int64_t limit = W + P - off; // need j*S < limit
    int64_t b = limit <= 0 ? 0 : (limit + S - 1) / S;
    *lo = a < OW ? a : OW;
    *hi = b < OW ? b : OW;
    if (*hi < *lo)
        *hi = *lo;
}

#define IM2COL_BODY(T)                                                             \
    const int64_t OHW = g->OH * g->OW;                                             \
    for (int64_t c = 0; c < g->C; c++)                                             \
        for (int64_t u = 0; u < g->KH; u++)                                        \
            for (int64_t v = 0; v < g->KW; v++) {                                  \
                T *row = cols + ((c * g->KH + u) * g->KW + v) * OHW;               \
                int64_t lo, hi, off = v * g->DW;                                   \
                valid_range(g->W, g->SW, g->PL, off, g->OW, &lo, &hi);             \
                for (int64_t i = 0; i < g->OH; i++) {                              \
                    T *dst = row + i * g->OW;                                      \
                    int64_t y = i * g->SH - g->PT + u * g->DH;                     \
                    if (y < 0 || y >= g->H) {                                      \
                        memset(dst, 0, (size_t)g->OW * sizeof(T));                 \
                        continue;                                                  \
                    }                                                              \
                    const T *src = img + (c * g->H + y) * g->W - g->PL + off;      \
                    for (int64_t j = 0; j < lo; j++)                               \
                        dst[j] = 0;                                                \
                    if (g->SW == 1)                                                \
                        memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof(T)); \
                    else                                                           \
                        for (int64_t j = lo; j < hi; j++)                          \
                            dst[j] = src[j * g->SW];                               \
                    for (int64_t j = hi; j < g->OW; j++)                           \
                        dst[j] = 0;                                                \
                }                                                                  \
            }

void tg__im2col_f32(const float *img, const tg__conv_geom *g, float *cols) { IM2COL_BODY(float) }

void tg__im2col_f64(const double *img, const tg__conv_geom *g, double *cols)
{
    IM2COL_BODY(double)
}

#define COL2IM_BODY(T)                                                             \
    const int64_t OHW = g->OH * g->OW;                                             \
    for (int64_t c = 0; c < g->C; c++)                                             \
        for (int64_t u = 0; u < g->KH; u++)                                        \
            for (int64_t v = 0; v < g->KW; v++) {                                  \
                const T *row = cols + ((c * g->KH + u) * g->KW + v) * OHW;         \
                int64_t lo, hi, off = v * g->DW;                                   \
                valid_range(g->W, g->SW, g->PL, off, g->OW, &lo, &hi);             \
                for (int64_t i = 0; i < g->OH; i++) {                              \
                    int64_t y = i * g->SH - g->PT + u * g->DH;                     \
                    if (y < 0 || y >= g->H)                                        \
                        continue;                                                  \
                    const T *src = row + i * g->OW;                                \
                    T *dst = img + (c * g->H + y) * g->W - g->PL + off;            \
                    if (g->SW == 1)                                                \
                        for (int64_t j = lo; j < hi; j++)                          \
                            dst[j] += src[j];                                      \
                    else                                                           \
                        for (int64_t j = lo; j < hi; j++)                          \
                            dst[j * g->SW] += src[j];                              \
                }                                                                  \
            }

void tg__col2im_f32(const float *cols, const tg__conv_geom *g, float *img) { COL2IM_BODY(float) }

void tg__col2im_f64(const double *cols, const tg__conv_geom *g, double *img)
{
    COL2IM_BODY(double)
}
