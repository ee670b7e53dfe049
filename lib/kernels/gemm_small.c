/* gemm_small.c - the short entry for the products a small network is made of
 * (at most TG__GEMM_TINY multiply-adds in one depth block: a 2-8-1 MLP's
 * layers and their gradients). The general entry builds a job, picks a
 * thread split and a depth block and calls through the kernel table, about
 * 150 instructions before the first multiply-add, more than such a product
 * itself costs. Here the arguments go straight to a loop.
 *
 * The arithmetic is gemm_kernel.h's for a single depth block, exactly as the
 * kernels' own tiny path does it (gemm_template.h): per element of C one fma
 * chain from 0 over k in order, then alpha, then beta, then the epilogue.
 * Vectors run over columns (or over rows), each lane its own chain, so the
 * bytes are those of every other kernel. Only the AVX2 and AVX-512 kernels
 * hand products here (both imply FMA); with the generic kernel every product
 * takes the general path, which keeps that kernel's own tiny path tested
 * against this one (check_ops, test_gemm_small_bits). */
#include <math.h>
#include <stdbool.h>

#include "kernels/gemm_kernel.h"
#include "kernels/gemm_small.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))

/* Whether (M, N, K) is small enough and the kernel one that has FMA. */
static inline bool takes(int64_t M, int64_t N, int64_t K)
{
    // One unsigned compare per bound also refuses M, N, K <= 0; the bounds
    // keep M * N * K from overflowing.
    if ((uint64_t)(M - 1) >= TG__GEMM_TINY || (uint64_t)(N - 1) >= TG__GEMM_TINY ||
        (uint64_t)(K - 1) >= TG__GEMM_KC || M * N * K > TG__GEMM_TINY)
        return false;
    const tg__gemm_kernel *k = tg__gemm_current();
    return k == &tg__gemm_avx2 || k == &tg__gemm_avx512;
}

#define T float
#define V __m256
#define W 8
#define FN(x) x##_f32
#include "kernels/gemm_small_template.h"
#undef T
#undef V
#undef W
#undef FN

#define T double
#define V __m256d
#define W 4
#define IS_F64
#define FN(x) x##_f64
#include "kernels/gemm_small_template.h"

TARGET bool tg__gemm_small_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                               float alpha, const float *A, int64_t lda, const float *B,
                               int64_t ldb, float beta, float *C, int64_t ldc,
                               const tg__gemm_epi *epi)
{
    if (alpha == 0 || !takes(M, N, K))
        return false;
    small_f32(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epi);
    return true;
}

/* tg__gemm_f32 (no epilogue) with this entry first, so that a tiny product
 * costs one call from the op: tg__gemm_f32 jumps here (the same arguments)
 * and only a product this entry does not take goes on to the general one. */
TARGET void tg__gemm_small_first_f32(bool trans_a, bool trans_b, int64_t M, int64_t N,
                                     int64_t K, float alpha, const float *A, int64_t lda,
                                     const float *B, int64_t ldb, float beta, float *C,
                                     int64_t ldc)
{
    if (alpha != 0 && takes(M, N, K))
        small_f32(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
    else
        tg__gemm_f32_epi(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

TARGET bool tg__gemm_small_f64(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                               double alpha, const double *A, int64_t lda, const double *B,
                               int64_t ldb, double beta, double *C, int64_t ldc,
                               const tg__gemm_epi *epi)
{
    if (alpha == 0 || !takes(M, N, K))
        return false;
    small_f64(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epi);
    return true;
}

/* tg__gemm_f64 (no epilogue) with this entry first, so that a tiny product
 * costs one call from the op: tg__gemm_f64 jumps here (the same arguments)
 * and only a product this entry does not take goes on to the general one. */
TARGET void tg__gemm_small_first_f64(bool trans_a, bool trans_b, int64_t M, int64_t N,
                                     int64_t K, double alpha, const double *A, int64_t lda,
                                     const double *B, int64_t ldb, double beta, double *C,
                                     int64_t ldc)
{
    if (alpha != 0 && takes(M, N, K))
        small_f64(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
    else
        tg__gemm_f64_epi(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

#else /* not x86-64: every product takes the general path */

bool tg__gemm_small_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                        float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                        float beta, float *C, int64_t ldc, const tg__gemm_epi *epi)
{
    (void)trans_a, (void)trans_b, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda;
    (void)B, (void)ldb, (void)beta, (void)C, (void)ldc, (void)epi;
    return false;
}

bool tg__gemm_small_f64(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                        double alpha, const double *A, int64_t lda, const double *B,
                        int64_t ldb, double beta, double *C, int64_t ldc,
                        const tg__gemm_epi *epi)
{
    (void)trans_a, (void)trans_b, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda;
    (void)B, (void)ldb, (void)beta, (void)C, (void)ldc, (void)epi;
    return false;
}

void tg__gemm_small_first_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                              float alpha, const float *A, int64_t lda, const float *B,
                              int64_t ldb, float beta, float *C, int64_t ldc)
{
    tg__gemm_f32_epi(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

void tg__gemm_small_first_f64(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                              double alpha, const double *A, int64_t lda, const double *B,
                              int64_t ldb, double beta, double *C, int64_t ldc)
{
    tg__gemm_f64_epi(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

#endif
