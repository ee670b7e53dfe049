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
#include <stdatomic.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/reduce.h"
#include "thread/pool.h"

/* The group buffers (dz and, for the weight gradient, im2col) stay near half
 * of a 2 MB L2. The weight gradient's bytes do not depend on the group: its
 * depth blocks are per image (tg__gemm_f32_segments), added in image order. */
#define BLOCK_GROUP_BYTES (1 << 20)

int64_t tg__conv_block_group(int64_t N, int64_t OC, const tg__conv_geom *g)
{
    double per_image = (double)(g->OH * g->OW) * (double)(OC + g->C * g->KH * g->KW) * 4.0;
    double fit = BLOCK_GROUP_BYTES / (per_image > 1 ? per_image : 1);
    int64_t G = fit < (double)N ? (int64_t)fit : N;
    return G < 1 ? 1 : G;
}

/* The group's dz, its im2col, its bias partials (G x OC each), then one
 * image's im2col for the input gradient on the calling thread. */
int64_t tg__conv_block_scratch(int64_t N, int64_t OC, const tg__conv_geom *g)
{
    int64_t G = tg__conv_block_group(N, OC, g), ohw = g->OH * g->OW;
    int64_t ckk = g->C * g->KH * g->KW;
    return G * OC * ohw + G * ckk * ohw + G * OC + ckk * ohw;
}

typedef struct block {
    const float *x, *w, *pooled, *gp;
    const uint8_t *codes;
    int64_t OC, n0;
    const tg__conv_geom *g;
    const tg__pool_geom *pool; /* one image */
    float *dz, *cols, *partial; /* the group's; cols NULL without dw, partial without db */
    float *dx;                  /* NULL: no input gradient */
    size_t cols_bytes;          /* a task's im2col for dx, rounded up to 64 */
    _Atomic bool missed;        /* a task found no scratch and did nothing */
} block;

/* Image n0 + t of the group; dx_cols: its im2col scratch for the input
 * gradient, with the GEMM's scratch after it when in a task. */
static void block_image(const block *b, int64_t t, float *dx_cols, bool in_task, void *gemm_ws)
{
    const tg__conv_geom *g = b->g;
    int64_t n = b->n0 + t, OC = b->OC, ohw = g->OH * g->OW, ckk = g->C * g->KH * g->KW;
    int64_t chw = g->C * g->H * g->W, phw = b->pool->OH * b->pool->OW;
    const float *pooled = b->pooled + n * OC * phw, *gp = b->gp + n * OC * phw;
    float *dz = b->dz + t * OC * ohw;
    tg__maxpool_codes_relu_backward_f32(b->codes + n * OC * phw, pooled, gp, b->pool, dz);
    if (b->partial)
        for (int64_t c = 0; c < OC; c++)
            b->partial[t * OC + c] = (float)tg__sum_run_f32(dz + c * ohw, ohw);
    if (b->cols)
        tg__im2col_f32(b->x + n * chw, g, b->cols + t * ckk * ohw);
    if (!b->dx)
        return;
    if (in_task)
        tg__gemm_f32_serial(gemm_ws, true, false, ckk, ohw, OC, 1.0f, b->w, ckk, dz, ohw, 0.0f,
                            dx_cols, ohw, NULL);
    else
        tg__gemm_f32_epi(true, false, ckk, ohw, OC, 1.0f, b->w, ckk, dz, ohw, 0.0f, dx_cols, ohw,
                         NULL);
    tg__col2im_f32(dx_cols, g, b->dx + n * chw);
}

static void block_task(void *ctx, int64_t t, void *ws)
{
    block *b = ctx;
    if (b->dx && !ws) { // no scratch for this thread: the caller redoes the group
        atomic_store(&b->missed, true);
        return;
    }
    block_image(b, t, ws, true, (char *)ws + b->cols_bytes);
}

void tg__conv2d_relu_maxpool_backward_f32(const float *x, const float *w, const uint8_t *codes,
                                          const float *pooled, const float *gp, int64_t N,
                                          int64_t OC, const tg__conv_geom *g,
                                          const tg__pool_geom *pool, float *scratch,
                                          float *dx, float *dw, float *db)
{
    int64_t ohw = g->OH * g->OW, ckk = g->C * g->KH * g->KW, chw = g->C * g->H * g->W;
    int64_t G = tg__conv_block_group(N, OC, g);
    block b = {.x = x, .w = w, .codes = codes, .pooled = pooled, .gp = gp, .OC = OC, .g = g,
               .pool = pool, .dz = scratch, .dx = dx};
    b.cols = dw ? scratch + G * OC * ohw : NULL;
    b.partial = db ? scratch + G * OC * ohw + G * ckk * ohw : NULL;
    float *dx_cols = scratch + G * OC * ohw + G * ckk * ohw + G * OC;
    b.cols_bytes = ((size_t)(ckk * ohw) * sizeof(float) + 63) / 64 * 64;
    size_t ws_bytes = dx ? b.cols_bytes + tg__gemm_f32_scratch(true, false, ckk, ohw, OC) : 0;
    if (dx)
        memset(dx, 0, (size_t)(N * chw) * sizeof(float)); // col2im adds
    if (db)
        memset(db, 0, (size_t)OC * sizeof(float));
    for (b.n0 = 0; b.n0 < N; b.n0 += G) {
        int64_t gn = N - b.n0 < G ? N - b.n0 : G;
        double work = (double)gn * (double)OC * (double)ohw * (double)(dx ? ckk : 8);
        bool done = false;
        if (gn > 1 && tg__threads_for(work) > 1) {
            atomic_store(&b.missed, false);
            tg__parallel_for(gn, ws_bytes, block_task, &b);
            done = !atomic_load(&b.missed);
            if (!done && dx) // again in order below: col2im adds, so clear first
                memset(dx + b.n0 * chw, 0, (size_t)(gn * chw) * sizeof(float));
        }
        for (int64_t t = 0; !done && t < gn; t++)
            block_image(&b, t, dx_cols, false, NULL);
        // The bias sums of tg__reduce_sum over (N, H, W): each image's run
        // per channel, rounded, added in image order.
        for (int64_t t = 0; db && t < gn; t++)
            for (int64_t c = 0; c < OC; c++)
                db[c] += b.partial[t * OC + c];
        if (dw)
            tg__gemm_f32_segments(false, true, OC, ckk, ohw, gn, 1.0f, b.dz, ohw, OC * ohw,
                                  b.cols, ohw, ckk * ohw, b.n0 == 0 ? 0.0f : 1.0f, dw, ckk);
    }
}
