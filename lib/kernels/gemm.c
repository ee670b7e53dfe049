/* gemm.c - the one matrix product of the library (see kernels.h).
 *
 * Blocked over K and N so a panel of op(B) stays in cache; op(B) panels are
 * packed row-major (which also removes the transpose), and each row of C is
 * updated with unit-stride axpy loops the compiler vectorises. */
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

#define KC 256
#define NC 1024

#define GEMM_BODY(T)                                                               \
    if (M <= 0 || N <= 0)                                                          \
        return;                                                                    \
    for (int64_t i = 0; i < M; i++) {                                              \
        T *c = C + i * ldc;                                                        \
        if (beta == 0)                                                             \
            memset(c, 0, (size_t)N * sizeof(T));                                   \
        else if (beta != 1)                                                        \
            for (int64_t j = 0; j < N; j++)                                        \
                c[j] *= beta;                                                      \
    }                                                                              \
    if (K <= 0 || alpha == 0)                                                      \
        return;                                                                    \
    /* Small products: packing and scratch would cost more than they save. */     \
    if (M * N * K <= 4096 && !trans_b) {                                           \
        for (int64_t i = 0; i < M; i++)                                            \
            for (int64_t k = 0; k < K; k++) {                                      \
                T a = alpha * (trans_a ? A[k * lda + i] : A[i * lda + k]);         \
                const T *b = B + k * ldb;                                          \
                for (int64_t j = 0; j < N; j++)                                    \
                    C[i * ldc + j] += a * b[j];                                    \
            }                                                                      \
        return;                                                                    \
    }                                                                              \
    T *pack = malloc((size_t)KC * NC * sizeof(T));                                 \
    T *arow = malloc((size_t)KC * sizeof(T));                                      \
    if (!pack || !arow) {                                                          \
        /* Out of scratch memory: fall back to the unblocked loop. */              \
        free(pack);                                                                \
        free(arow);                                                                \
        for (int64_t i = 0; i < M; i++)                                            \
            for (int64_t k = 0; k < K; k++) {                                      \
                T a = alpha * (trans_a ? A[k * lda + i] : A[i * lda + k]);         \
                for (int64_t j = 0; j < N; j++)                                    \
                    C[i * ldc + j] += a * (trans_b ? B[j * ldb + k] : B[k * ldb + j]); \
            }                                                                      \
        return;                                                                    \
    }                                                                              \
    for (int64_t j0 = 0; j0 < N; j0 += NC) {                                       \
        int64_t nc = N - j0 < NC ? N - j0 : NC;                                    \
        for (int64_t k0 = 0; k0 < K; k0 += KC) {                                   \
            int64_t kc = K - k0 < KC ? K - k0 : KC;                                \
            for (int64_t k = 0; k < kc; k++) {                                     \
                T *dst = pack + k * nc;                                            \
                if (trans_b)                                                       \
                    for (int64_t j = 0; j < nc; j++)                               \
                        dst[j] = B[(j0 + j) * ldb + k0 + k];                       \
                else                                                               \
                    memcpy(dst, B + (k0 + k) * ldb + j0, (size_t)nc * sizeof(T));  \
            }                                                                      \
            for (int64_t i = 0; i < M; i++) {                                      \
                for (int64_t k = 0; k < kc; k++)                                   \
                    arow[k] = alpha * (trans_a ? A[(k0 + k) * lda + i]             \
                                               : A[i * lda + k0 + k]);             \
                T *restrict c = C + i * ldc + j0;                                  \
                for (int64_t k = 0; k < kc; k++) {                                 \
                    const T a = arow[k];                                           \
                    const T *restrict b = pack + k * nc;                           \
                    if (a == 0)                                                    \
                        continue;                                                  \
                    for (int64_t j = 0; j < nc; j++)                               \
                        c[j] += a * b[j];                                          \
                }                                                                  \
            }                                                                      \
        }                                                                          \
    }                                                                              \
    free(pack);                                                                    \
    free(arow);

void tg__gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc)
{
    GEMM_BODY(float)
}

void tg__gemm_f64(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                  const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
                  double *C, int64_t ldc)
{
    GEMM_BODY(double)
}
