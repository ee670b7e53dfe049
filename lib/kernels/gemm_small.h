/* gemm_small.h - the short entry for tiny products (gemm_small.c), which
 * tg__gemm_f32_epi and tg__gemm_f64_epi try first. Private to lib/kernels. */
#ifndef TG_KERNELS_GEMM_SMALL_H
#define TG_KERNELS_GEMM_SMALL_H

#include <stdbool.h>
#include <stddef.h> /* kernels.h uses size_t */
#include <stdint.h>

#include "kernels/kernels.h"

/* The product of kernels.h's tg__gemm_*_epi, with the same bytes, when it is
 * tiny (one depth block of at most TG__GEMM_TINY multiply-adds, alpha != 0)
 * and the kernel in use has FMA; false, having done nothing, otherwise. */
bool tg__gemm_small_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                        float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                        float beta, float *C, int64_t ldc, const tg__gemm_epi *epi);
bool tg__gemm_small_f64(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                        double alpha, const double *A, int64_t lda, const double *B,
                        int64_t ldb, double beta, double *C, int64_t ldc,
                        const tg__gemm_epi *epi);
/* tg__gemm_f32 / _f64 themselves: the short entry when it takes the product,
 * else tg__gemm_*_epi with no epilogue. */
void tg__gemm_small_first_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                              float alpha, const float *A, int64_t lda, const float *B,
                              int64_t ldb, float beta, float *C, int64_t ldc);
void tg__gemm_small_first_f64(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                              double alpha, const double *A, int64_t lda, const double *B,
                              int64_t ldb, double beta, double *C, int64_t ldc);

#endif
