/* kernels.h - the GEMM kernel every matrix product goes through, plus the
 * convolution and pooling kernels. Raw arrays only; no tape or tensor types. */
#ifndef TG_KERNELS_H
#define TG_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether this CPU runs AVX-512F code (cpuid); false off x86-64. The
 * kernels with an AVX-512 variant ask it before taking that path. */
static inline bool tg__cpu_avx512f(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    return __builtin_cpu_supports("avx512f");
#else
    return false;
#endif
}

/* C (M x N, row stride ldc) = alpha * op(A) op(B) + beta * C, row-major.
 * op(A) is M x K: A is stored M x K (lda >= K), or K x M when trans_a
 * (lda >= M). Likewise op(B) is K x N. As in BLAS, beta == 0 means C is not
 * read (NaN there is overwritten). The same bytes whatever the kernel
 * (tg_set_kernel) and thread count: gemm_kernel.h gives the exact order of
 * the fused multiply-adds. Large products use the thread pool. */
void tg__gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc);
void tg__gemm_f64(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                  const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
                  double *C, int64_t ldc);

/* An epilogue for the product: C = relu?(alpha op(A) op(B) + beta C + bias),
 * bias[i] per row of C (or bias[j] per column when bias_per_col), ReLU
 * keeping NaN (relu: v > 0 || v != v ? v : 0), applied to each tile as its
 * last depth block lands, so C is not read again. The roundings are those of
 * a separate bias add and ReLU after the product: the same bytes. */
typedef struct tg__gemm_epi {
    const void *bias; /* float for _f32, double for _f64; NULL: none */
    bool bias_per_col, relu;
    /* And one fact about B, not C: b_readable columns of each row of
     * untransposed B may be read (0: N), those past N finite (zeros), so
     * that a ragged last strip of B is read in place too. A caller that lays
     * out B itself gets such rows from tg__gemm_b_ld. */
    int64_t b_readable;
} tg__gemm_epi;

/* The row stride for an untransposed B (depth K, N columns) that the caller
 * lays out itself: N rounded up to a whole number of the widest tile (64
 * floats) when the GEMM would read B in place (its rows then 64-byte
 * aligned, and with b_readable set to it and zeros past N, no strip of B is
 * packed), else N. */
int64_t tg__gemm_b_ld_f32(int64_t N, int64_t K);
void tg__gemm_f32_epi(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                      float *C, int64_t ldc, const tg__gemm_epi *epi);
void tg__gemm_f64_epi(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                      double alpha, const double *A, int64_t lda, const double *B, int64_t ldb,
                      double beta, double *C, int64_t ldc, const tg__gemm_epi *epi);

/* A sum of n_seg products as one: C = alpha sum_s op(A_s) op(B_s) + beta C,
 * A_s = A + s*seg_a and B_s = B + s*seg_b (elements), each of depth seg (a
 * convolution's weight gradient: one segment per image, read in place). The
 * depth blocks divide each segment, so the bytes are those of the per-segment
 * products accumulated in order (with beta 1 after the first); threads split
 * C only, as in tg__gemm_f32. */
void tg__gemm_f32_segments(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t seg,
                           int64_t n_seg, float alpha, const float *A, int64_t lda,
                           int64_t seg_a, const float *B, int64_t ldb, int64_t seg_b,
                           float beta, float *C, int64_t ldc);

/* For callers that split work between threads themselves: the scratch bytes
 * tg__gemm_f32_serial needs for this product (0: none), and the product on
 * the calling thread alone with that scratch (64-byte aligned; NULL runs it
 * unpacked), with an optional epilogue (NULL: none). The same bytes as
 * tg__gemm_f32_epi. */
size_t tg__gemm_f32_scratch(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K);
void tg__gemm_f32_serial(void *scratch, bool trans_a, bool trans_b, int64_t M, int64_t N,
                         int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                         int64_t ldb, float beta, float *C, int64_t ldc,
                         const tg__gemm_epi *epi);

/* Convolution geometry shared by im2col and col2im: input (C, H, W), kernel
 * KH x KW, strides, top/left padding (bottom/right follow from OH/OW) and
 * dilations; output OH x OW. */
typedef struct tg__conv_geom {
    int64_t C, H, W, KH, KW, SH, SW, PT, PL, DH, DW, OH, OW;
} tg__conv_geom;

/* img (C, H, W) -> cols (C*KH*KW, OH*OW), zeros where the window is padding. */
void tg__im2col_f32(const float *img, const tg__conv_geom *g, float *cols);
void tg__im2col_f64(const double *img, const tg__conv_geom *g, double *cols);
/* The adjoint: img (C, H, W) += the entries of cols at the positions im2col
 * read them from. */
void tg__col2im_f32(const float *cols, const tg__conv_geom *g, float *img);
void tg__col2im_f64(const double *cols, const tg__conv_geom *g, double *img);
/* tg__im2col_f32 into rows ld floats apart (ld >= OH*OW), zeros past OH*OW. */
void tg__im2col_f32_ld(const float *img, const tg__conv_geom *g, int64_t ld, float *cols);
/* tg__col2im_f32 on cols whose rows are ld floats apart (ld >= OH*OW): an
 * image's columns within the product of a group of images. */
void tg__col2im_f32_ld(const float *cols, int64_t ld, const tg__conv_geom *g, float *img);
/* The float32 ones with a given variant of the row moves (the tests run
 * every variant the CPU has; the two above use tg__conv_rows_best()). */
struct tg__conv_rows;
void tg__im2col_f32_with(const struct tg__conv_rows *moves, const float *img,
                         const tg__conv_geom *g, float *cols);
void tg__col2im_f32_with(const struct tg__conv_rows *moves, const float *cols,
                         const tg__conv_geom *g, float *img);

/* A batch of convolutions, float32, one image per task on the thread pool
 * when the batch is large enough (each image's arithmetic is the same as on
 * one thread, so the bytes do not depend on the thread count):
 *   forward:    y[n] (OC, OH*OW) = w (OC, C*KH*KW) im2col(x[n]) (+ bias[oc]),
 *               then max(0, .) when relu (bias and ReLU in the GEMM epilogue:
 *               the bytes of a separate add and tg_relu)
 *   input grad: dx[n] = col2im(w^T gy[n]), dx cleared first
 * for x, dx (N, C, H, W) and y, gy (N, OC, OH, OW). cols is scratch for one
 * image's im2col (forward: C*KH*KW rows of tg__conv2d_cols_ld floats, the
 * GEMM's B laid out to be read in place; input grad: C*KH*KW x OH*OW), used
 * when the batch runs on this thread; the pool's threads use their own. */
int64_t tg__conv2d_cols_ld(const tg__conv_geom *g);
void tg__conv2d_forward_f32(const float *x, int64_t N, const float *w, const float *bias,
                            bool relu, int64_t OC, const tg__conv_geom *g, float *cols, float *y);
void tg__conv2d_input_grad_f32(const float *gy, int64_t N, const float *w, int64_t OC,
                               const tg__conv_geom *g, float *cols, float *dx);

/* A convolution with ReLU (as tg__conv2d_forward_f32, relu set) whose every
 * image's y[n] is max pooled as soon as it is made, while still in cache,
 * and then dropped: pooled[n] = the max pool of y[n] by pool (one image:
 * planes OC), the bytes of tg__maxpool_f32 on the whole y; codes[n] (when
 * codes is not NULL) the codes of tg__maxpool_codes_f32 (a window of at most
 * 256 elements). scratch holds tg__conv2d_relu_maxpool_scratch bytes, 64-byte
 * aligned: one image's im2col, then its y. */
struct tg__pool_geom;
size_t tg__conv2d_relu_maxpool_scratch(int64_t OC, const tg__conv_geom *g);
void tg__conv2d_relu_maxpool_f32(const float *x, int64_t N, const float *w, const float *bias,
                                 int64_t OC, const tg__conv_geom *g,
                                 const struct tg__pool_geom *pool, void *scratch,
                                 float *pooled, uint8_t *codes);
/* Its backward without a graph, from gp, the gradient at pooled, per group
 * of images (tg__conv_block_group), each image in turn on a thread:
 * dz[n] from the codes (tg__maxpool_codes_relu_backward_f32); its bias
 * partial sums and its im2col; then the group's input gradient (dx, cleared
 * first, when not NULL: one product for the group, col2im per image), its
 * weight gradient (dw when not NULL) and the bias gradient (db when not
 * NULL). The bytes of tg__maxpool_backward_f32, tg__relu_grad_f32,
 * tg__reduce_sum_f32 over (N, H, W), tg__conv2d_input_grad_f32 and
 * tg__conv2d_weight_grad_f32 run one after the other on the whole batch,
 * without reading y: an image's dz is made and used while it is in cache. scratch holds
 * tg__conv_block_scratch floats. */
int64_t tg__conv_block_group(int64_t N, int64_t OC, const tg__conv_geom *g, bool dx);
int64_t tg__conv_block_scratch(int64_t N, int64_t OC, const tg__conv_geom *g, bool dx);
void tg__conv2d_relu_maxpool_backward_f32(const float *x, const float *w, const uint8_t *codes,
                                          const float *pooled, const float *gp, int64_t N,
                                          int64_t OC, const tg__conv_geom *g,
                                          const struct tg__pool_geom *pool, float *scratch,
                                          float *dx, float *dw, float *db);

/* The weight gradient, float32: dw (OC, C*KH*KW) = sum over n of
 * gy[n] (OC, OH*OW) im2col(x[n])^T, made transposed, as one product per
 * group of images, dw^T = im2col(x[n]) gy[n]^T (tg__gemm_f32_segments: the
 * columns read in place, one segment per image, only gy's few rows packed;
 * each element's fmas are those of dw's product, in its order). A group
 * is tg__conv2d_dw_group images (a number that depends on the shapes only,
 * so that the im2col scratch stays near TG__CONV_DW_GROUP_BYTES); threads
 * take whole images for the im2col and output tiles for the product, never
 * depth: the same bytes whatever the thread count or kernel. scratch holds
 * tg__conv2d_dw_scratch(N, OC, g) floats. */
#define TG__CONV_DW_GROUP_BYTES (2 << 20)
int64_t tg__conv2d_dw_group(int64_t N, const tg__conv_geom *g);
static inline int64_t tg__conv2d_dw_scratch(int64_t N, int64_t OC, const tg__conv_geom *g)
{
    int64_t ckk = g->C * g->KH * g->KW;
    return tg__conv2d_dw_group(N, g) * g->OH * g->OW * ckk + ckk * OC; // columns, dw^T
}
void tg__conv2d_weight_grad_f32(const float *x, const float *gy, int64_t N, int64_t OC,
                                const tg__conv_geom *g, float *scratch, float *dw);

/* Pooling geometry over planes of H x W (one per batch x channel). */
typedef struct tg__pool_geom {
    int64_t planes, H, W, KH, KW, SH, SW, PT, PL, OH, OW;
} tg__pool_geom;

/* y (planes, OH, OW) = window maxima of x (planes, H, W); argmax[k] is the
 * flat index into x of y[k]'s element, the first maximal one in row-major
 * window order (a NaN wins, the first one); padding is never chosen.
 * argmax may be NULL: y alone (the same bytes). */
void tg__maxpool_f32(const float *x, const tg__pool_geom *g, float *y, int64_t *argmax);
void tg__maxpool_f64(const double *x, const tg__pool_geom *g, double *y, int64_t *argmax);
/* The gradient of the max pool: dx (planes, H, W) = zeros with
 * dx[argmax[k]] += dy[k] for every k in order (put_add's bytes), for the
 * argmax tg__maxpool_* would write for x and this geometry; y is its output
 * for x (the indices are found again from x and y, not kept). Planes go to
 * threads; the same bytes for any thread count. */
void tg__maxpool_backward_f32(const float *x, const float *y, const float *dy,
                              const tg__pool_geom *g, float *dx);
void tg__maxpool_backward_f64(const double *x, const double *y, const double *dy,
                              const tg__pool_geom *g, double *dx);
/* The ways the float32 max pool (forward and backward) may run, for the test
 * that they agree: variant 0 is the scalar loop, then 16-byte vectors, AVX2
 * and AVX-512, as far as this compiler and CPU (cpuid) have them;
 * tg__pool_f32_variants says how many, and the functions above run the
 * widest. */
int tg__pool_f32_variants(void);
void tg__maxpool_f32_variant(int variant, const float *x, const tg__pool_geom *g, float *y,
                             int64_t *argmax);
void tg__maxpool_backward_f32_variant(int variant, const float *x, const float *y,
                                      const float *dy, const tg__pool_geom *g, float *dx);
/* The max pool with, per window, the place of its chosen element counted
 * from the window's corner: code[k] = (r - y0) * KW + (c - x0) for
 * y0 = i*SH - PT, x0 = j*SW - PL (KH * KW <= 256). y is tg__maxpool_f32's. */
void tg__maxpool_codes_f32(const float *x, const tg__pool_geom *g, float *y, uint8_t *code);
/* From those codes and y, without the pool's input: dx (planes, H, W) =
 * tg__relu_grad_f32(put_add of dy at the codes' places, the pool's input),
 * whose mask there is y > 0 and which is +0 everywhere else: the bytes of
 * tg__maxpool_backward_f32 then tg__relu_grad_f32. dx's planes are ld
 * floats apart (ld >= H*W; the conv block's dz holds an image's channels
 * a group's width apart). code is read up to 16 bytes past its end. */
void tg__maxpool_codes_relu_backward_f32(const uint8_t *code, const float *y, const float *dy,
                                         const tg__pool_geom *g, float *dx, int64_t ld);
/* Whether g is the plain 2x2, stride 2 pool with no top or left padding,
 * whose windows tile the image but for an odd last row or column: the case
 * the max pool's vector code takes. */
bool tg__pool_plain_2x2(const tg__pool_geom *g);
/* The ways these run, for the test that they agree: the forward as the
 * other max pools (tg__pool_f32_variants; the vectors' codes are AVX-512's),
 * the backward scalar (0) or AVX-512 (1) as tg__pool_codes_variants says. */
void tg__maxpool_codes_f32_variant(int variant, const float *x, const tg__pool_geom *g,
                                   float *y, uint8_t *code);
int tg__pool_codes_variants(void);
void tg__maxpool_codes_relu_backward_f32_variant(int variant, const uint8_t *code,
                                                 const float *y, const float *dy,
                                                 const tg__pool_geom *g, float *dx,
                                                 int64_t ld);
/* y = window means, dividing by the whole window (include_pad) or by its
 * unpadded part. */
void tg__avgpool_f32(const float *x, const tg__pool_geom *g, bool include_pad, float *y);
void tg__avgpool_f64(const double *x, const tg__pool_geom *g, bool include_pad, double *y);
/* The adjoint of avgpool: dx (planes, H, W) += each dy spread over its window. */
void tg__avgpool_adjoint_f32(const float *dy, const tg__pool_geom *g, bool include_pad, float *dx);
void tg__avgpool_adjoint_f64(const double *dy, const tg__pool_geom *g, bool include_pad,
                             double *dx);

#endif
