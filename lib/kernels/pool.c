/* pool.c - max and average pooling over planes of H x W (see kernels.h). */
#include <math.h>

#include "kernels/kernels.h"

/* The window of output (i, j) clipped to the image: rows [y0, y1), cols [x0, x1). */
#define WINDOW(g, i, j)                                                            \
    int64_t y0 = (i) * (g)->SH - (g)->PT, x0 = (j) * (g)->SW - (g)->PL;            \
    int64_t y1 = y0 + (g)->KH, x1 = x0 + (g)->KW;                                  \
    int64_t full = (g)->KH * (g)->KW;                                              \
    (void)full;                                                                    \
    if (y0 < 0)                                                                    \
        y0 = 0;                                                                    \
    if (x0 < 0)                                                                    \
        x0 = 0;                                                                    \
    if (y1 > (g)->H)                                                               \
        y1 = (g)->H;                                                               \
    if (x1 > (g)->W)                                                               \
        x1 = (g)->W;

#define MAXPOOL_BODY(T)                                                            \
    for (int64_t p = 0; p < g->planes; p++) {                                      \
        const T *plane = x + p * g->H * g->W;                                      \
        for (int64_t i = 0; i < g->OH; i++)                                        \
            for (int64_t j = 0; j < g->OW; j++) {                                  \
                WINDOW(g, i, j)                                                    \
                T best = -INFINITY;                                                \
                int64_t at = -1;                                                   \
                for (int64_t r = y0; r < y1; r++)                                  \
                    for (int64_t c = x0; c < x1; c++) {                            \
                        T v = plane[r * g->W + c];                                 \
                        if (at < 0 || v > best || (v != v && best == best)) {      \
                            best = v;                                              \
                            at = r * g->W + c;                                     \
                        }                                                          \
                    }                                                              \
                int64_t k = (p * g->OH + i) * g->OW + j;                           \
                y[k] = best;                                                       \
                argmax[k] = p * g->H * g->W + (at < 0 ? 0 : at);                   \
            }                                                                      \
    }

/* NaN wins a window (and propagates), like the other frameworks. */
void tg__maxpool_f32(const float *x, const tg__pool_geom *g, float *y, int64_t *argmax)
{
    MAXPOOL_BODY(float)
}

void tg__maxpool_f64(const double *x, const tg__pool_geom *g, double *y, int64_t *argmax)
{
    MAXPOOL_BODY(double)
}

#define AVGPOOL_BODY(T)                                                            \
    for (int64_t p = 0; p < g->planes; p++) {                                      \
        const T *plane = x + p * g->H * g->W;                                      \
        for (int64_t i = 0; i < g->OH; i++)                                        \
            for (int64_t j = 0; j < g->OW; j++) {                                  \
                WINDOW(g, i, j)                                                    \
                double s = 0;                                                      \
                for (int64_t r = y0; r < y1; r++)                                  \
                    for (int64_t c = x0; c < x1; c++)                              \
                        s += plane[r * g->W + c];                                  \
                int64_t count = include_pad ? full : (y1 - y0) * (x1 - x0);        \
                y[(p * g->OH + i) * g->OW + j] = (T)(count > 0 ? s / (double)count : 0); \
            }                                                                      \
    }

void tg__avgpool_f32(const float *x, const tg__pool_geom *g, bool include_pad, float *y)
{
    AVGPOOL_BODY(float)
}

void tg__avgpool_f64(const double *x, const tg__pool_geom *g, bool include_pad, double *y)
{
    AVGPOOL_BODY(double)
}

#define AVGPOOL_ADJOINT_BODY(T)                                                    \
    for (int64_t p = 0; p < g->planes; p++) {                                      \
        T *plane = dx + p * g->H * g->W;                                           \
        for (int64_t i = 0; i < g->OH; i++)                                        \
            for (int64_t j = 0; j < g->OW; j++) {                                  \
                WINDOW(g, i, j)                                                    \
                int64_t count = include_pad ? full : (y1 - y0) * (x1 - x0);        \
                if (count <= 0)                                                    \
                    continue;                                                      \
                T share = (T)(dy[(p * g->OH + i) * g->OW + j] / (double)count);    \
                for (int64_t r = y0; r < y1; r++)                                  \
                    for (int64_t c = x0; c < x1; c++)                              \
                        plane[r * g->W + c] += share;                              \
            }                                                                      \
    }

void tg__avgpool_adjoint_f32(const float *dy, const tg__pool_geom *g, bool include_pad, float *dx)
{
    AVGPOOL_ADJOINT_BODY(float)
}

void tg__avgpool_adjoint_f64(const double *dy, const tg__pool_geom *g, bool include_pad,
                             double *dx)
{
    AVGPOOL_ADJOINT_BODY(double)
}
