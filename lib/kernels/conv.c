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

#include "kernels/kernels.h"
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

/* Row copies. The CNN's rows are short (conv2: 11 floats, conv1: 26), so a
 * memcpy call per row cost as much as the copying; these are inline 16-byte
 * moves (SSE2, the baseline), the last one overlapping the one before it when
 * n is not a multiple of 16, so every byte is written with its source value
 * and no byte outside the row is touched. Long rows go to memcpy. n is a
 * multiple of 4 (whole floats or doubles). */
static inline void copy_row(void *dst, const void *src, size_t n)
{
    char *d = dst;
    const char *s = src;
    if (n >= 256) {
        memcpy(d, s, n);
    } else if (n >= 16) {
        size_t k = 0;
        for (; k + 16 <= n; k += 16)
            memcpy(d + k, s + k, 16);
        if (k < n)
            memcpy(d + n - 16, s + n - 16, 16);
    } else if (n >= 8) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n == 4) {
        memcpy(d, s, 4);
    }
}

static inline void zero_row(void *dst, size_t n)
{
    static const char zeros[256];
    for (char *d = dst; n > 0;) {
        size_t m = n < sizeof zeros ? n : sizeof zeros;
        copy_row(d, zeros, m);
        d += m;
        n -= m;
    }
}

/* Rows (c, u, v) for every c, u, v; within one, output row i reads image row
 * y = i*SH - PT + u*DH from column j*SW - PL + v*DW: zeros where y is outside
 * the image, else zeros before lo, the valid range [lo, hi), zeros after. The
 * unpadded stride-1 case (the CNN's) is a copy of OH image rows of OW values
 * each; the general loop handles everything else and gives the same bytes
 * there too. */
#define IM2COL_BODY(T)                                                             \
    if (g->KH == 0 || g->KW == 0) /* no rows (C may still be 2^31) */              \
        return;                                                                    \
    const int64_t OHW = g->OH * g->OW;                                             \
    const size_t rowb = (size_t)g->OW * sizeof(T);                                 \
    for (int64_t c = 0; c < g->C; c++)                                             \
        for (int64_t u = 0; u < g->KH; u++)                                        \
            for (int64_t v = 0; v < g->KW; v++) {                                  \
                T *row = cols + ((c * g->KH + u) * g->KW + v) * OHW;               \
                int64_t lo, hi, off = v * g->DW;                                   \
                valid_range(g->W, g->SW, g->PL, off, g->OW, &lo, &hi);             \
                int64_t y0 = u * g->DH - g->PT, ylast = y0 + (g->OH - 1) * g->SH;  \
                if (g->SW == 1 && lo == 0 && hi == g->OW && y0 >= 0 && ylast < g->H) { \
                    const T *src = img + (c * g->H + y0) * g->W - g->PL + off;     \
                    for (int64_t i = 0; i < g->OH; i++)                            \
                        copy_row(row + i * g->OW, src + i * g->SH * g->W, rowb);   \
                    continue;                                                      \
                }                                                                  \
                for (int64_t i = 0; i < g->OH; i++) {                              \
                    T *dst = row + i * g->OW;                                      \
                    int64_t y = i * g->SH - g->PT + u * g->DH;                     \
                    if (y < 0 || y >= g->H) {                                      \
                        zero_row(dst, rowb);                                       \
                        continue;                                                  \
                    }                                                              \
                    const T *src = img + (c * g->H + y) * g->W - g->PL + off;      \
                    for (int64_t j = 0; j < lo; j++)                               \
                        dst[j] = 0;                                                \
                    if (g->SW == 1)                                                \
                        copy_row(dst + lo, src + lo, (size_t)(hi - lo) * sizeof(T)); \
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

/* The adjoint, row by row of cols, in im2col's order (every element's adds
 * form one chain in that order, so it is kept). The float32 rows are added
 * with add_row_f32 (conv2's 11-float rows: three 16-byte adds, no
 * scalar tail and no alias check; 35% fewer instructions than the
 * compiler's loop). Gathering each image element's terms in a register was
 * slower: scalar work at every row's edges. */
/* d[0..n) += s[0..n) for float32 rows: 16-byte adds, the last one
 * overlapping the one before when n is not a multiple of 4. Every sum is
 * formed from d's values before any store (the overlapped lanes are
 * computed twice from the same operands, so stored twice with one value);
 * d and s do not overlap. */
typedef float v4f __attribute__((vector_size(16), aligned(4)));

static inline void add_row_f32(float *d, const float *s, int64_t n)
{
    if (n < 4) {
        for (int64_t j = 0; j < n; j++)
            d[j] += s[j];
        return;
    }
    v4f a, b, last;
    memcpy(&a, d + n - 4, sizeof a);
    memcpy(&b, s + n - 4, sizeof b);
    last = a + b;
    int64_t j = 0;
    for (; j + 4 < n; j += 4) {
        memcpy(&a, d + j, sizeof a);
        memcpy(&b, s + j, sizeof b);
        a = a + b;
        memcpy(d + j, &a, sizeof a);
    }
    memcpy(d + n - 4, &last, sizeof last);
}
#define ADD_ROW_float(d, s, n) add_row_f32(d, s, n)
#define ADD_ROW_double(d, s, n)                                                    \
    for (int64_t j = 0; j < (n); j++)                                              \
        (d)[j] += (s)[j]

#define COL2IM_BODY(T)                                                             \
    if (g->KH == 0 || g->KW == 0 || g->H == 0 || g->W == 0) /* nothing to add */   \
        return;                                                                    \
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
                        ADD_ROW_##T(dst + lo, src + lo, hi - lo);                  \
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

/* ---- a batch of convolutions, one image per task ---- */

typedef struct conv_batch {
    const float *in, *w, *bias;
    int64_t OC;
    const tg__conv_geom *g;
    float *out;
    size_t cols_bytes; /* rounded up to 64: the GEMM's scratch follows */
    bool input_grad, relu;
    _Atomic bool missed; /* a task found no scratch and did nothing */
} conv_batch;

/* One GEMM, either split by the GEMM itself (gemm_scratch unused) or, inside
 * a task, on this thread with the given scratch: the same bytes either way. */
static void conv_gemm(bool in_task, void *gemm_scratch, bool ta, int64_t M, int64_t N, int64_t K,
                      const float *A, int64_t lda, const float *B, float *C,
                      const tg__gemm_epi *epi)
{
    if (in_task)
        tg__gemm_f32_serial(gemm_scratch, ta, false, M, N, K, 1.0f, A, lda, B, N, 0.0f, C, N, epi);
    else
        tg__gemm_f32_epi(ta, false, M, N, K, 1.0f, A, lda, B, N, 0.0f, C, N, epi);
}

static void conv_image(const conv_batch *b, int64_t n, float *cols, bool in_task, void *scratch)
{
    const tg__conv_geom *g = b->g;
    int64_t ckk = g->C * g->KH * g->KW, ohw = g->OH * g->OW, chw = g->C * g->H * g->W;
    if (!b->input_grad) {
        // Bias (per row: output channel) and ReLU in the GEMM's epilogue.
        tg__gemm_epi epi = {.bias = b->bias, .relu = b->relu};
        tg__im2col_f32(b->in + n * chw, g, cols);
        conv_gemm(in_task, scratch, false, b->OC, ohw, ckk, b->w, ckk, cols,
                  b->out + n * b->OC * ohw, &epi);
    } else {
        conv_gemm(in_task, scratch, true, ckk, ohw, b->OC, b->w, ckk, b->in + n * b->OC * ohw,
                  cols, NULL);
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
    conv_image(b, n, ws, true, (char *)ws + b->cols_bytes);
}

/* One image per task when the batch has several images and enough work; else
 * the images run in order here and each GEMM may split itself. */
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
        b->cols_bytes = ((size_t)(ckk * ohw) * sizeof(float) + 63) / 64 * 64;
        atomic_store(&b->missed, false);
        tg__parallel_for(N, b->cols_bytes + gemm_bytes, conv_task, b);
        if (!atomic_load(&b->missed))
            return;
        // Out of memory for some thread's scratch: all again, in order, with
        // the caller's buffer (the same bytes; col2im adds, so clear first).
        if (b->input_grad)
            memset(b->out, 0, out_bytes);
    }
    for (int64_t n = 0; n < N; n++)
        conv_image(b, n, cols, false, NULL);
}

void tg__conv2d_forward_f32(const float *x, int64_t N, const float *w, const float *bias,
                            bool relu, int64_t OC, const tg__conv_geom *g, float *cols, float *y)
{
    conv_batch b = {.in = x, .w = w, .bias = bias, .relu = relu, .OC = OC, .g = g, .out = y};
    conv_batch_run(&b, N, cols);
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
    for (int64_t n0 = 0; n0 < N; n0 += G) {
        int64_t gn = N - n0 < G ? N - n0 : G;
        dw_cols d = {.x = x, .g = g, .n0 = n0, .cols = scratch};
        if (gn > 1 && tg__threads_for((double)(gn * ckk * ohw)) > 1)
            tg__parallel_for(gn, 0, dw_cols_task, &d);
        else
            for (int64_t t = 0; t < gn; t++)
                dw_cols_task(&d, t, NULL);
        // Image n: gy[n] (OC x ohw, row stride ohw) times its im2col
        // transposed; later groups add to the earlier ones (beta 1), which
        // continues the same sequence of depth blocks.
        tg__gemm_f32_segments(false, true, OC, ckk, ohw, gn, 1.0f, gy + n0 * OC * ohw, ohw,
                              OC * ohw, scratch, ohw, ckk * ohw, n0 == 0 ? 0.0f : 1.0f, dw, ckk);
    }
}
