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
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "kernels/conv_rows.h"
#include "kernels/kernels.h"
#include "kernels/layout.h"
#include "thread/pool.h"

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

/* Zeros for padding: n bytes, a multiple of 4. */
static inline void zero_bytes(const tg__conv_rows *moves, void *dst, size_t n)
{
    static const float zeros[64];
    for (char *d = dst; n > 0;) {
        size_t m = n < sizeof zeros ? n : sizeof zeros;
        moves->copy((float *)(void *)d, 0, zeros, 0, 1, (int64_t)(m / sizeof(float)));
        d += m;
        n -= m;
    }
}

/* Rows (c, u, v) for every c, u, v; within one, output row i reads image row
 * y = i*SH - PT + u*DH from column j*SW - PL + v*DW: zeros where y is outside
 * the image, else zeros before lo, the valid range [lo, hi), zeros after.
 * When the window never leaves the image rows and columns (the CNN's
 * unpadded convolutions) and SW is 1, a row is OH runs of OW values, one
 * call; the general loop handles everything else and gives the same bytes
 * there too. Values move as bits (F: floats per element), so float64 uses
 * the same copies. Rows are LD elements apart (LD >= OH*OW), zeros past
 * OH*OW (tg__gemm_b_ld_f32's rows). The valid ranges of the first kernel
 * columns are found once, not once per channel (their divisions were a
 * tenth of the conv2 im2col). */
#define IM2COL_BODY(T)                                                             \
    if (g->KH == 0 || g->KW == 0) /* no rows (C may still be 2^31) */              \
        return;                                                                    \
    const int64_t OHW = g->OH * g->OW, F = (int64_t)(sizeof(T) / sizeof(float));   \
    int64_t vlo[TG__CONV_TAPS], vhi[TG__CONV_TAPS];                                \
    for (int64_t v = 0; v < g->KW && v < TG__CONV_TAPS; v++)                       \
        valid_range(g->W, g->SW, g->PL, v * g->DW, g->OW, &vlo[v], &vhi[v]);       \
    for (int64_t c = 0; c < g->C; c++)                                             \
        for (int64_t u = 0; u < g->KH; u++)                                        \
            for (int64_t v = 0; v < g->KW; v++) {                                  \
                T *row = cols + ((c * g->KH + u) * g->KW + v) * LD;                \
                for (int64_t j = OHW; j < LD; j++) /* a few: no call */            \
                    row[j] = 0;                                                    \
                int64_t lo, hi, off = v * g->DW;                                   \
                if (v < TG__CONV_TAPS)                                             \
                    lo = vlo[v], hi = vhi[v];                                      \
                else                                                               \
                    valid_range(g->W, g->SW, g->PL, off, g->OW, &lo, &hi);         \
                int64_t y0 = u * g->DH - g->PT, ylast = y0 + (g->OH - 1) * g->SH;  \
                if (g->SW == 1 && lo == 0 && hi == g->OW && y0 >= 0 && ylast < g->H) { \
                    const T *src = img + (c * g->H + y0) * g->W - g->PL + off;     \
                    moves->copy((float *)row, F * g->OW, (const float *)src,       \
                                F * g->SH * g->W, g->OH, F * g->OW);               \
                    continue;                                                      \
                }                                                                  \
                for (int64_t i = 0; i < g->OH; i++) {                              \
                    T *dst = row + i * g->OW;                                      \
                    int64_t y = i * g->SH - g->PT + u * g->DH;                     \
                    if (y < 0 || y >= g->H) {                                      \
                        zero_bytes(moves, dst, (size_t)g->OW * sizeof(T));         \
                        continue;                                                  \
                    }                                                              \
                    const T *src = img + (c * g->H + y) * g->W - g->PL + off;      \
                    for (int64_t j = 0; j < lo; j++)                               \
                        dst[j] = 0;                                                \
                    if (g->SW == 1)                                                \
                        moves->copy((float *)(dst + lo), 0, (const float *)(src + lo), 0, 1, \
                                    F * (hi - lo));                                \
                    else                                                           \
                        for (int64_t j = lo; j < hi; j++)                          \
                            dst[j] = src[j * g->SW];                               \
                    for (int64_t j = hi; j < g->OW; j++)                           \
                        dst[j] = 0;                                                \
                }                                                                  \
            }

static void im2col_f32(const tg__conv_rows *moves, const float *img, const tg__conv_geom *g,
                       int64_t LD, float *cols)
{
    IM2COL_BODY(float)
}

void tg__im2col_f32_with(const tg__conv_rows *moves, const float *img, const tg__conv_geom *g,
                         float *cols)
{
    im2col_f32(moves, img, g, g->OH * g->OW, cols);
}

void tg__im2col_f32(const float *img, const tg__conv_geom *g, float *cols)
{
    im2col_f32(tg__conv_rows_best(), img, g, g->OH * g->OW, cols);
}

void tg__im2col_f32_ld(const float *img, const tg__conv_geom *g, int64_t ld, float *cols)
{
    im2col_f32(tg__conv_rows_best(), img, g, ld, cols);
}

void tg__im2col_f64(const double *img, const tg__conv_geom *g, double *cols)
{
    const tg__conv_rows *moves = tg__conv_rows_best();
    const int64_t LD = g->OH * g->OW;
    IM2COL_BODY(double)
}

/* The adds one term at a time, SW apart in the image row: float64, and
 * float32 with SW > 1. */
#define STRIDED_TAPS_BODY                                                          \
    for (int64_t p = 0; p < planes; p++)                                           \
        for (int64_t r = 0; r < rows; r++)                                         \
            for (int64_t t = 0; t < taps->n; t++)                                  \
                for (int64_t j = taps->lo[t]; j < taps->hi[t]; j++)                \
                    dst[p * ds + r * dr + taps->shift[t] + j * SW] +=              \
                        cols[p * cs + r * cr + taps->src[t] + j];

static void add_taps_f64(double *dst, int64_t ds, int64_t dr, const double *cols, int64_t cs,
                         int64_t cr, int64_t planes, int64_t rows, const tg__conv_taps *taps,
                         int64_t SW)
{
    STRIDED_TAPS_BODY
}

static void add_taps_f32(const tg__conv_rows *moves, float *dst, int64_t ds, int64_t dr,
                         const float *cols, int64_t cs, int64_t cr, int64_t planes, int64_t rows,
                         const tg__conv_taps *taps, int64_t SW)
{
    if (SW == 1) {
        moves->add_taps(dst, ds, dr, cols, cs, cr, planes, rows, taps);
        return;
    }
    STRIDED_TAPS_BODY
}
#define ADD_TAPS_float(...) add_taps_f32(moves, __VA_ARGS__)
#define ADD_TAPS_double(...) add_taps_f64(__VA_ARGS__)

/* With SH = 1 the window rows u that reach image row y are a range,
 * [*ua, *ub), and rows with the same range read output rows one apart: one
 * call adds such a run of image rows. */
static void rows_reaching(const tg__conv_geom *g, int64_t y, int64_t *ua, int64_t *ub)
{
    *ua = *ub = 0;
    for (int64_t u = 0; u < g->KH; u++) {
        int64_t at = y + g->PT - u * g->DH;
        if (at >= 0 && at < g->OH) {
            if (*ua == *ub)
                *ua = u;
            *ub = u + 1;
        }
    }
}

/* The adjoint: img += each entry of cols at the place im2col read it from,
 * image row by image row. Each element's terms are added in im2col's order
 * of the rows (c, u, v), one rounding each. Image row y is read by the
 * window positions (u, v) whose output row i has y = i*SH - PT + u*DH: the
 * same for every channel, so they are listed once per y (tg__conv_taps, in
 * that order) and added to row y of every channel by one call (float32:
 * tg__conv_rows' add_taps, which keeps the row in registers across the
 * taps), and to the run of rows after y that the same window rows reach
 * (conv1's input gradient: a call per row cost twice the old per-column
 * loop). Gathering each element's terms one by one was slower: scalar work
 * at every row's edges.
 *
 * Runs of image rows (one row each when SH > 1) of all channels; taps of
 * more than TG__CONV_TAPS positions are added in groups, in order. */
#define COL2IM_BODY(T)                                                             \
    if (g->KH == 0 || g->KW == 0 || g->H == 0 || g->W == 0 || g->C == 0)           \
        return; /* nothing to add */                                               \
    const int64_t HW = g->H * g->W, per_channel = g->KH * g->KW * LD;              \
    tg__conv_taps taps;                                                            \
    /* The valid output columns of the first kernel columns, found once. */        \
    int64_t vlo[TG__CONV_TAPS], vhi[TG__CONV_TAPS];                                \
    for (int64_t v = 0; v < g->KW && v < TG__CONV_TAPS; v++)                       \
        valid_range(g->W, g->SW, g->PL, v * g->DW, g->OW, &vlo[v], &vhi[v]);       \
    for (int64_t y = 0, rows = 1; y < g->H; y += rows) {                           \
        rows = 1;                                                                  \
        if (g->SH == 1) {                                                          \
            int64_t ua, ub, na, nb;                                                \
            rows_reaching(g, y, &ua, &ub);                                         \
            while (y + rows < g->H &&                                              \
                   (rows_reaching(g, y + rows, &na, &nb), na == ua && nb == ub))   \
                rows++;                                                            \
        }                                                                          \
        taps.n = 0;                                                                \
        for (int64_t u = 0; u < g->KH; u++) {                                      \
            int64_t at = y + g->PT - u * g->DH; /* = i * SH */                     \
            int64_t i = g->SH == 1 ? at : at / g->SH;                              \
            if (at < 0 || i >= g->OH || (g->SH != 1 && at % g->SH != 0))           \
                continue;                                                          \
            for (int64_t v = 0; v < g->KW; v++) {                                  \
                int64_t t = taps.n++, off = v * g->DW;                             \
                if (v < TG__CONV_TAPS) {                                           \
                    taps.lo[t] = vlo[v];                                           \
                    taps.hi[t] = vhi[v];                                           \
                } else {                                                           \
                    valid_range(g->W, g->SW, g->PL, off, g->OW, &taps.lo[t], &taps.hi[t]); \
                }                                                                  \
                taps.src[t] = (u * g->KW + v) * LD + i * g->OW;                    \
                taps.shift[t] = off - g->PL;                                       \
                if (taps.n == TG__CONV_TAPS) {                                     \
                    ADD_TAPS_##T(img + y * g->W, HW, g->W, cols, per_channel, g->OW, g->C, \
                                 rows, &taps, g->SW);                              \
                    taps.n = 0;                                                    \
                }                                                                  \
            }                                                                      \
        }                                                                          \
        if (taps.n > 0)                                                            \
            ADD_TAPS_##T(img + y * g->W, HW, g->W, cols, per_channel, g->OW, g->C, rows,  \
                         &taps, g->SW);                                            \
    }

static void col2im_f32(const tg__conv_rows *moves, const float *cols, int64_t LD,
                       const tg__conv_geom *g, float *img)
{
    COL2IM_BODY(float)
}

void tg__col2im_f32_with(const tg__conv_rows *moves, const float *cols, const tg__conv_geom *g,
                         float *img)
{
    col2im_f32(moves, cols, g->OH * g->OW, g, img);
}

void tg__col2im_f32(const float *cols, const tg__conv_geom *g, float *img)
{
    col2im_f32(tg__conv_rows_best(), cols, g->OH * g->OW, g, img);
}

void tg__col2im_f32_ld(const float *cols, int64_t ld, const tg__conv_geom *g, float *img)
{
    col2im_f32(tg__conv_rows_best(), cols, ld, g, img);
}

void tg__col2im_f64(const double *cols, const tg__conv_geom *g, double *img)
{
    const int64_t LD = g->OH * g->OW;
    COL2IM_BODY(double)
}

/* ---- a batch of convolutions, one image per task ---- */

typedef struct conv_batch {
    const float *in, *w, *bias;
    int64_t OC;
    const tg__conv_geom *g;
    float *out;
    /* Forward with pool: each image's y goes to scratch (after the
     * im2col's, at pool_at in a task's) and is pooled into pooled[n], with
     * its codes (tg__maxpool_codes_f32) unless codes is NULL. */
    const tg__pool_geom *pool;
    float *pooled;
    uint8_t *codes;
    size_t cols_bytes; /* rounded up to 64: the GEMM's scratch follows */
    size_t pool_at;    /* in a task's scratch, past the GEMM's */
    bool input_grad, relu;
    _Atomic bool missed; /* a task found no scratch and did nothing */
} conv_batch;

/* One GEMM, either split by the GEMM itself (gemm_scratch unused) or, inside
 * a task, on this thread with the given scratch: the same bytes either way. */
static void conv_gemm(bool in_task, void *gemm_scratch, bool ta, int64_t M, int64_t N, int64_t K,
                      const float *A, int64_t lda, const float *B, int64_t ldb, float *C,
                      const tg__gemm_epi *epi)
{
    if (in_task)
        tg__gemm_f32_serial(gemm_scratch, ta, false, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N,
                            epi);
    else
        tg__gemm_f32_epi(ta, false, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N, epi);
}

static size_t round64(size_t n) { return (n + 63) / 64 * 64; }

int64_t tg__conv2d_cols_ld(const tg__conv_geom *g)
{
    return tg__gemm_b_ld_f32(g->OH * g->OW, g->C * g->KH * g->KW);
}

/* One image's forward columns, rounded up to 64 bytes. */
static size_t forward_cols_bytes(const tg__conv_geom *g)
{
    return round64((size_t)(g->C * g->KH * g->KW * tg__conv2d_cols_ld(g)) * sizeof(float));
}

size_t tg__conv2d_relu_maxpool_scratch(int64_t OC, const tg__conv_geom *g)
{
    return forward_cols_bytes(g) + (size_t)(OC * g->OH * g->OW) * sizeof(float);
}

/* y of image n, in ybuf, pooled while it is in cache. */
static void pool_image(const conv_batch *b, int64_t n, float *ybuf)
{
    int64_t k = n * b->OC * b->pool->OH * b->pool->OW;
    if (b->codes)
        tg__maxpool_codes_f32(ybuf, b->pool, b->pooled + k, b->codes + k);
    else
        tg__maxpool_f32(ybuf, b->pool, b->pooled + k, NULL);
}

/* pool_buf: the pool's scratch (forward with pool only). */
static void conv_image(const conv_batch *b, int64_t n, float *cols, bool in_task, void *scratch,
                       float *pool_buf)
{
    const tg__conv_geom *g = b->g;
    int64_t ckk = g->C * g->KH * g->KW, ohw = g->OH * g->OW, chw = g->C * g->H * g->W;
    if (!b->input_grad) {
        // Bias (per row: output channel) and ReLU in the GEMM's epilogue;
        // the columns in rows the GEMM reads in place, packing none.
        int64_t ld = tg__conv2d_cols_ld(g);
        tg__gemm_epi epi = {.bias = b->bias, .relu = b->relu, .b_readable = ld};
        tg__im2col_f32_ld(b->in + n * chw, g, ld, cols);
        conv_gemm(in_task, scratch, false, b->OC, ohw, ckk, b->w, ckk, cols, ld,
                  b->pool ? pool_buf : b->out + n * b->OC * ohw, &epi);
        if (b->pool)
            pool_image(b, n, pool_buf);
    } else {
        conv_gemm(in_task, scratch, true, ckk, ohw, b->OC, b->w, ckk, b->in + n * b->OC * ohw,
                  ohw, cols, NULL);
        tg__col2im_f32(cols, g, b->out + n * chw);
    }
}

static void conv_task(void *ctx, int64_t n, void *ws)
{
    conv_batch *b = ctx;
    if (!ws) { // this thread's scratch could not grow: the caller redoes the batch
        atomic_store(&b->missed, true);
        return;
    }
    conv_image(b, n, ws, true, (char *)ws + b->cols_bytes,
               (float *)(void *)((char *)ws + b->pool_at));
}

/* One image per task when the batch has several images and enough work; else
 * the images run in order here and each GEMM may split itself. cols: the
 * caller's scratch (tg__conv2d_relu_maxpool_scratch bytes with a pool). */
static void conv_batch_run(conv_batch *b, int64_t N, float *cols)
{
    const tg__conv_geom *g = b->g;
    int64_t ckk = g->C * g->KH * g->KW, ohw = g->OH * g->OW;
    size_t out_bytes = (size_t)(N * g->C * g->H * g->W) * sizeof(float);
    if (b->input_grad)
        memset(b->out, 0, out_bytes);
    double work = (double)N * (double)b->OC * (double)ckk * (double)ohw;
    if (N > 1 && tg__threads_for(work) > 1) {
        size_t gemm_bytes = b->input_grad ? tg__gemm_f32_scratch(true, false, ckk, ohw, b->OC)
                                          : tg__gemm_f32_scratch(false, false, b->OC, ohw, ckk);
        b->cols_bytes = b->input_grad ? round64((size_t)(ckk * ohw) * sizeof(float))
                                      : forward_cols_bytes(g);
        b->pool_at = b->cols_bytes + round64(gemm_bytes);
        size_t ws = b->pool ? b->pool_at + (size_t)(b->OC * ohw) * sizeof(float)
                            : b->cols_bytes + gemm_bytes;
        atomic_store(&b->missed, false);
        tg__parallel_for(N, ws, conv_task, b);
        if (!atomic_load(&b->missed))
            return;
        // Out of memory for some thread's scratch: all again, in order, with
        // the caller's buffer (the same bytes; col2im adds, so clear first).
        if (b->input_grad)
            memset(b->out, 0, out_bytes);
    }
    size_t y_at = forward_cols_bytes(g); // the caller's y after cols (forward with pool)
    float *pool_buf = (float *)(void *)((char *)cols + y_at);
    for (int64_t n = 0; n < N; n++)
        conv_image(b, n, cols, false, NULL, pool_buf);
}

void tg__conv2d_forward_f32(const float *x, int64_t N, const float *w, const float *bias,
                            bool relu, int64_t OC, const tg__conv_geom *g, float *cols, float *y)
{
    conv_batch b = {.in = x, .w = w, .bias = bias, .relu = relu, .OC = OC, .g = g, .out = y};
    conv_batch_run(&b, N, cols);
}

void tg__conv2d_relu_maxpool_f32(const float *x, int64_t N, const float *w, const float *bias,
                                 int64_t OC, const tg__conv_geom *g, const tg__pool_geom *pool,
                                 void *scratch, float *pooled, uint8_t *codes)
{
    conv_batch b = {.in = x, .w = w, .bias = bias, .relu = true, .OC = OC, .g = g,
                    .pool = pool, .pooled = pooled, .codes = codes};
    conv_batch_run(&b, N, scratch);
}

void tg__conv2d_input_grad_f32(const float *gy, int64_t N, const float *w, int64_t OC,
                               const tg__conv_geom *g, float *cols, float *dx)
{
    conv_batch b = {.in = gy, .w = w, .OC = OC, .g = g, .out = dx, .input_grad = true};
    conv_batch_run(&b, N, cols);
}

/* ---- the weight gradient: one product per group of images ---- */

typedef struct dw_cols {
    const float *x;
    const tg__conv_geom *g;
    int64_t n0;
    float *cols;
} dw_cols;

static void dw_cols_task(void *ctx, int64_t t, void *ws)
{
    (void)ws;
    const dw_cols *d = ctx;
    const tg__conv_geom *g = d->g;
    int64_t ckk = g->C * g->KH * g->KW, ohw = g->OH * g->OW;
    tg__im2col_f32(d->x + (d->n0 + t) * g->C * g->H * g->W, g, d->cols + t * ckk * ohw);
}

int64_t tg__conv2d_dw_group(int64_t N, const tg__conv_geom *g)
{
    double per_image = (double)(g->OH * g->OW) * (double)(g->C * g->KH * g->KW) * sizeof(float);
    double fit = (double)TG__CONV_DW_GROUP_BYTES / (per_image > 1 ? per_image : 1);
    int64_t G = fit < (double)N ? (int64_t)fit : N;
    return G < 1 ? 1 : G;
}

void tg__conv2d_weight_grad_f32(const float *x, const float *gy, int64_t N, int64_t OC,
                                const tg__conv_geom *g, float *scratch, float *dw)
{
    int64_t ckk = g->C * g->KH * g->KW, ohw = g->OH * g->OW;
    int64_t G = tg__conv2d_dw_group(N, g);
    float *dw_t = scratch + G * ckk * ohw;
    for (int64_t n0 = 0; n0 < N; n0 += G) {
        int64_t gn = N - n0 < G ? N - n0 : G;
        dw_cols d = {.x = x, .g = g, .n0 = n0, .cols = scratch};
        if (gn > 1 && tg__threads_for((double)(gn * ckk * ohw)) > 1)
            tg__parallel_for(gn, 0, dw_cols_task, &d);
        else
            for (int64_t t = 0; t < gn; t++)
                dw_cols_task(&d, t, NULL);
        // Image n: its im2col times gy[n] (OC x ohw, row stride ohw)
        // transposed; later groups add to the earlier ones (beta 1), which
        // continues the same sequence of depth blocks.
        tg__gemm_f32_segments(false, true, ckk, OC, ohw, gn, 1.0f, scratch, ohw, ckk * ohw,
                              gy + n0 * OC * ohw, ohw, OC * ohw, n0 == 0 ? 0.0f : 1.0f, dw_t, OC);
    }
    tg__transpose_f32(dw_t, ckk, OC, dw); // dw (OC, ckk) from dw^T
}
