/* kernels.h - the GEMM kernel every matrix product goes through, plus the
 * convolution and pooling kernels. Raw arrays only; no tape or tensor types. */
#ifndef TG_KERNELS_H
#define TG_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

/* C (M x N, row stride ldc) = alpha * op(A) op(B) + beta * C, row-major.
 * op(A) is M x K: A is stored M x K (lda >= K), or K x M when trans_a
 * (lda >= M). Likewise op(B) is K x N. As in BLAS, beta == 0 means C is not
 * read (NaN there is overwritten). */
void tg__gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc);
void tg__gemm_f64(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                  const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
                  double *C, int64_t ldc);

#endif
