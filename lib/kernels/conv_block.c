/* conv_block.c - the backward pass of a convolution with ReLU and the max
 * pool after it (see kernels.h), a group of images at a time.
 *
 * Done op by op, the batch's gradients go through memory five times: the
 * pool's backward reads y and writes the gradient at y (conv1: 2.7 MB a
 * batch each), the ReLU gradient reads it with y and writes dz, the bias sum
 * reads dz, and the weight and input gradients read it again. Here an
 * image's dz is made from the pool's codes (kernels/pool_codes.c), without
 * y, into a group buffer and, while it is in cache, summed for the bias and
 * multiplied for the input gradient; the group's weight gradient follows.
 * Each value is computed by the same arithmetic in the same order as op by
 * op, so the bytes are those of the ops. */
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/layout.h"
#include "kernels/reduce.h"
#include "thread/pool.h"

/* The group buffers (dz, the weight gradient's im2col, the input gradient's
 * product) stay near half of a 2 MB L2. No bytes depend on the group: the
 * weight gradient's depth blocks are per image (tg__gemm_f32_segments),
 * added in image order, and the input gradient's product has depth OC
 * whatever its width. */
#define BLOCK_GROUP_BYTES (1 << 20)

int64_t tg__conv_block_group(int64_t N, int64_t OC, const tg__conv_geom *g, bool dx)
{
    int64_t ckk = g->C * g->KH * g->KW;
    double per_image = (double)(g->OH * g->OW) * (double)(OC + ckk + (dx ? ckk : 0)) * 4.0;
    double fit = BLOCK_GROUP_BYTES / (per_image > 1 ? per_image : 1);
    int64_t G = fit < (double)N ? (int64_t)fit : N;
    return G < 1 ? 1 : G;
}

/* The group's dz, its im2col, its input gradient's columns (G x OC x OH*OW,
 * G x ckk x OH*OW twice), its bias partials (G x OC), then the weight
 * gradient transposed (ckk x OC) and, with dx, the weights transposed
 * (ckk x OC). */
int64_t tg__conv_block_scratch(int64_t N, int64_t OC, const tg__conv_geom *g, bool dx)
{
    int64_t G = tg__conv_block_group(N, OC, g, dx), ohw = g->OH * g->OW;
    int64_t ckk = g->C * g->KH * g->KW;
    return G * OC * ohw + G * ckk * ohw * (dx ? 2 : 1) + G * OC + ckk * OC * (dx ? 2 : 1);
}

/* A group of gn images, n0 first. dz is (OC, gn * OH*OW): image t's
 * channel c at c * gn*OH*OW + t * OH*OW, so that the input gradient is one
 * product for the group; dx_cols is that product's result, in the same
 * layout with ckk rows. cols is image-major (the weight gradient's
 * segments). */
typedef struct block {
    const float *x, *pooled, *gp;
    const uint8_t *codes;
    int64_t OC, n0, gn;
    const tg__conv_geom *g;
    const tg__pool_geom *pool; /* one image's OC planes */
    float *dz, *cols, *partial; /* cols NULL without dw, partial without db */
    float *dx, *dx_cols;        /* NULL: no input gradient */
} block;

/* Image n0 + t: its dz, bias partials and im2col. */
static void dz_task(void *ctx, int64_t t, void *ws)
{
    (void)ws;
    const block *b = ctx;
    const tg__conv_geom *g = b->g;
    int64_t n = b->n0 + t, OC = b->OC, ohw = g->OH * g->OW, ckk = g->C * g->KH * g->KW;
    int64_t phw = b->pool->OH * b->pool->OW, S = b->gn * ohw;
    int64_t k = n * OC * phw;
    tg__maxpool_codes_relu_backward_f32(b->codes + k, b->pooled + k, b->gp + k, b->pool,
                                        b->dz + t * ohw, S);
    // The channels' bias partials together, while dz is still in cache: a
    // run's sum waits on its own additions, several runs' overlap.
    for (int64_t c0 = 0; b->partial && c0 < OC; c0 += 64) {
        double sums[64];
        int64_t m = OC - c0 < 64 ? OC - c0 : 64;
        tg__sum_runs_f32(b->dz + c0 * S + t * ohw, ohw, S, m, sums);
        for (int64_t c = 0; c < m; c++)
            b->partial[t * OC + c0 + c] = (float)sums[c];
    }
    if (b->cols)
        tg__im2col_f32(b->x + n * g->C * g->H * g->W, g, b->cols + t * ckk * ohw);
}

/* Image n0 + t's input gradient from its columns of the group's product. */
static void col2im_task(void *ctx, int64_t t, void *ws)
{
    (void)ws;
    const block *b = ctx;
    const tg__conv_geom *g = b->g;
    int64_t ohw = g->OH * g->OW;
    tg__col2im_f32_ld(b->dx_cols + t * ohw, b->gn * ohw, g,
                      b->dx + (b->n0 + t) * g->C * g->H * g->W);
}

/* Images in turn on this thread, or one a task. */
static void each_image(block *b, double work, tg__task_fn fn)
{
    if (b->gn > 1 && tg__threads_for(work) > 1)
        tg__parallel_for(b->gn, 0, fn, b);
    else
        for (int64_t t = 0; t < b->gn; t++)
            fn(b, t, NULL);
}

void tg__conv2d_relu_maxpool_backward_f32(const float *x, const float *w, const uint8_t *codes,
                                          const float *pooled, const float *gp, int64_t N,
                                          int64_t OC, const tg__conv_geom *g,
                                          const tg__pool_geom *pool, float *scratch,
                                          float *dx, float *dw, float *db)
{
    int64_t ohw = g->OH * g->OW, ckk = g->C * g->KH * g->KW, chw = g->C * g->H * g->W;
    int64_t G = tg__conv_block_group(N, OC, g, dx != NULL);
    tg__pool_geom image = *pool; // one image's channels
    image.planes = OC;
    block b = {.x = x, .codes = codes, .pooled = pooled, .gp = gp, .OC = OC, .g = g,
               .pool = &image, .dz = scratch, .dx = dx};
    b.cols = dw ? scratch + G * OC * ohw : NULL;
    b.dx_cols = dx ? scratch + G * OC * ohw + G * ckk * ohw : NULL;
    b.partial = db ? scratch + G * OC * ohw + G * ckk * ohw * (dx ? 2 : 1) : NULL;
    float *dw_t = scratch + G * OC * ohw + G * ckk * ohw * (dx ? 2 : 1) + G * OC;
    // The input gradient's product reads w^T; transposed once here, it is
    // read in place by every group's product instead of packed by each
    // (conv2, 288 x 363 x 64: 151 -> 157 GFLOP/s). The same values, so the
    // same bytes.
    float *w_t = dw_t + ckk * OC;
    if (dx) {
        tg__transpose_f32(w, OC, ckk, w_t);
        memset(dx, 0, (size_t)(N * chw) * sizeof(float)); // col2im adds
    }
    if (db)
        memset(db, 0, (size_t)OC * sizeof(float));
    for (b.n0 = 0; b.n0 < N; b.n0 += G) {
        b.gn = N - b.n0 < G ? N - b.n0 : G;
        int64_t S = b.gn * ohw;
        each_image(&b, (double)b.gn * (double)(OC + ckk) * (double)ohw * 8, dz_task);
        // The bias sums of tg__reduce_sum over (N, H, W): each image's run
        // per channel, rounded, added in image order.
        for (int64_t t = 0; db && t < b.gn; t++)
            for (int64_t c = 0; c < OC; c++)
                db[c] += b.partial[t * OC + c];
        if (dx) {
            tg__gemm_f32_epi(false, false, ckk, S, OC, 1.0f, w_t, OC, b.dz, S, 0.0f, b.dx_cols,
                             S, NULL);
            each_image(&b, (double)b.gn * (double)ckk * (double)ohw * 4, col2im_task);
        }
        // The weight gradient transposed, dw^T = sum over images of cols dz^T
        // (image t's dz: OC rows S apart, from t * OH*OW): each element's
        // fmas are dw = dz cols^T's, in the same order, but only dz's few
        // rows are packed, and the columns are read in place (the CNN's
        // conv2: 141 -> 164 GFLOP/s).
        if (dw)
            tg__gemm_f32_segments(false, true, ckk, OC, ohw, b.gn, 1.0f, b.cols, ohw, ckk * ohw,
                                  b.dz, S, ohw, b.n0 == 0 ? 0.0f : 1.0f, dw_t, OC);
    }
    if (dw)
        tg__transpose_f32(dw_t, ckk, OC, dw); // dw (OC, ckk) from dw^T
}
