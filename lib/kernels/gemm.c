/* gemm.c - the one matrix product of the library (see kernels.h).
 *
 * The classic blocked scheme (Goto/BLIS): op(B) is packed, one KC x NC block
 * at a time, into strips NR columns wide; op(A) is packed, scaled by alpha,
 * into strips MR rows tall; a register-blocked micro-kernel then computes
 * each MR x NR tile of C from a pair of strips with MR*NR/VL vector
 * accumulators. Packing also absorbs the transposes, so all four transpose
 * combinations run the same kernel.
 *
 * The micro-kernel uses GCC/clang vector extensions (no intrinsics). On
 * x86-64 with ifunc support it is compiled twice, for AVX2+FMA and for the
 * baseline, and the loader picks the best the CPU has: one binary runs
 * everywhere and uses the wide units where they exist. Tiny products skip
 * packing altogether. */
#include <string.h>

#include "core/alloc.h"
#include "kernels/kernels.h"

#if defined(__x86_64__) && defined(__linux__) &&                                        \
    (!defined(__clang__) || __clang_major__ >= 14)
/* x86-64-v3: AVX2, FMA, BMI2, ... (Haswell and later, Zen). */
#define TG_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define TG_MULTIVERSION
#endif

#define KC 256
#define MC 72
#define NC 2048

/* Vectors of 32 bytes; aligned(sizeof(T)) so loads from packed buffers and C
 * need no particular alignment. */
typedef float vf32 __attribute__((vector_size(32), aligned(4)));
typedef double vf64 __attribute__((vector_size(32), aligned(8)));

#define MR 6
#define NR_F32 16 /* two vectors of 8 floats */
#define NR_F64 8  /* two vectors of 4 doubles */

/* ---- packing ---- */

/* op(A) rows [i0, i0+mc), depth [k0, k0+kc) -> strips of MR rows, k-major
 * within a strip: dst[strip][k][r], scaled by alpha; rows past mc are zero.
 * The transpose decides which side of the copy is contiguous. */
#define PACK_A(T)                                                                  \
    for (int64_t s = 0; s < mc; s += MR, dst += MR * kc) {                         \
        int64_t rows = mc - s < MR ? mc - s : MR;                                  \
        if (rows < MR)                                                             \
            memset(dst, 0, (size_t)(MR * kc) * sizeof(T));                         \
        if (trans_a) {                                                             \
            for (int64_t k = 0; k < kc; k++) {                                     \
                const T *src = A + (k0 + k) * lda + i0 + s;                        \
                for (int64_t r = 0; r < rows; r++)                                 \
                    dst[k * MR + r] = alpha * src[r];                              \
            }                                                                      \
        } else {                                                                   \
            for (int64_t r = 0; r < rows; r++) {                                   \
                const T *src = A + (i0 + s + r) * lda + k0;                        \
                for (int64_t k = 0; k < kc; k++)                                   \
                    dst[k * MR + r] = alpha * src[k];                              \
            }                                                                      \
        }                                                                          \
    }

/* op(B) depth [k0, k0+kc), columns [j0, j0+nc) -> strips of NR columns:
 * dst[strip][k][c]; columns past nc are zero. */
#define PACK_B(T, NR)                                                              \
    for (int64_t s = 0; s < nc; s += NR, dst += NR * kc) {                         \
        int64_t w = nc - s < NR ? nc - s : NR;                                     \
        if (w < NR)                                                                \
            memset(dst, 0, (size_t)(NR * kc) * sizeof(T));                         \
        if (trans_b) {                                                             \
            for (int64_t c = 0; c < w; c++) {                                      \
                const T *src = B + (j0 + s + c) * ldb + k0;                        \
                for (int64_t k = 0; k < kc; k++)                                   \
                    dst[k * NR + c] = src[k];                                      \
            }                                                                      \
        } else {                                                                   \
            /* A strip row is at most 64 bytes: a loop beats a memcpy call. */    \
            for (int64_t k = 0; k < kc; k++) {                                     \
                const T *src = B + (k0 + k) * ldb + j0 + s;                        \
                for (int64_t c = 0; c < w; c++)                                    \
                    dst[k * NR + c] = src[c];                                      \
            }                                                                      \
        }                                                                          \
    }

static void pack_a_f32(bool trans_a, const float *A, int64_t lda, int64_t i0, int64_t mc,
                       int64_t k0, int64_t kc, float alpha, float *dst)
{
    PACK_A(float)
}

static void pack_a_f64(bool trans_a, const double *A, int64_t lda, int64_t i0, int64_t mc,
                       int64_t k0, int64_t kc, double alpha, double *dst)
{
    PACK_A(double)
}

static void pack_b_f32(bool trans_b, const float *B, int64_t ldb, int64_t k0, int64_t kc,
                       int64_t j0, int64_t nc, float *dst)
{
    PACK_B(float, NR_F32)
}

static void pack_b_f64(bool trans_b, const double *B, int64_t ldb, int64_t k0, int64_t kc,
                       int64_t j0, int64_t nc, double *dst)
{
    PACK_B(double, NR_F64)
}

/* ---- micro-kernels: C[MR x NR] += Ap (kc x MR) * Bp (kc x NR) ----
 * m x n is the valid part of the tile (edges go through a buffer). */
#define MICRO(T, V, NR)                                                            \
    V acc[MR][2];                                                                  \
    memset(acc, 0, sizeof acc);                                                    \
    for (int64_t k = 0; k < kc; k++) {                                             \
        V b0, b1;                                                                  \
        memcpy(&b0, bp + k * NR, sizeof b0);                                       \
        memcpy(&b1, bp + k * NR + NR / 2, sizeof b1);                              \
        const T *a = ap + k * MR;                                                  \
        for (int r = 0; r < MR; r++) {                                             \
            acc[r][0] += a[r] * b0;                                                \
            acc[r][1] += a[r] * b1;                                                \
        }                                                                          \
    }                                                                              \
    if (m == MR && n == NR) {                                                      \
        for (int r = 0; r < MR; r++) {                                             \
            V c0, c1;                                                              \
            memcpy(&c0, C + r * ldc, sizeof c0);                                   \
            memcpy(&c1, C + r * ldc + NR / 2, sizeof c1);                          \
            c0 += acc[r][0];                                                       \
            c1 += acc[r][1];                                                       \
            memcpy(C + r * ldc, &c0, sizeof c0);                                   \
            memcpy(C + r * ldc + NR / 2, &c1, sizeof c1);                          \
        }                                                                          \
    } else {                                                                       \
        T tile[MR][NR];                                                            \
        memcpy(tile, acc, sizeof tile);                                            \
        for (int64_t r = 0; r < m; r++)                                            \
            for (int64_t c = 0; c < n; c++)                                        \
                C[r * ldc + c] += tile[r][c];                                      \
    }

TG_MULTIVERSION
static void micro_f32(int64_t kc, const float *ap, const float *bp, float *C, int64_t ldc,
                      int64_t m, int64_t n)
{
    MICRO(float, vf32, NR_F32)
}

TG_MULTIVERSION
static void micro_f64(int64_t kc, const double *ap, const double *bp, double *C, int64_t ldc,
                      int64_t m, int64_t n)
{
    MICRO(double, vf64, NR_F64)
}

/* ---- drivers ---- */

#define SCALE_C(T)                                                                 \
    if (beta == 0 && ldc == N) {                                                   \
        memset(C, 0, (size_t)(M * N) * sizeof(T)); /* one call for a dense C */   \
    } else {                                                                       \
        for (int64_t i = 0; i < M; i++) {                                          \
            T *c = C + i * ldc;                                                    \
            if (beta == 0)                                                         \
                memset(c, 0, (size_t)N * sizeof(T));                               \
            else if (beta != 1)                                                    \
                for (int64_t j = 0; j < N; j++)                                    \
                    c[j] *= beta;                                                  \
        }                                                                          \
    }

/* Products this small cost less than packing them. The transpose of B picks
 * the loop order so the innermost loop always runs along contiguous memory. */
#define SMALL_GEMM(T)                                                              \
    if (!trans_b) {                                                                \
        for (int64_t i = 0; i < M; i++) {                                          \
            T *c = C + i * ldc;                                                    \
            const T *a = trans_a ? A + i : A + i * lda;                            \
            int64_t ak = trans_a ? lda : 1; /* step between a's k entries */       \
            for (int64_t k = 0; k < K; k++) {                                      \
                T av = alpha * a[k * ak];                                          \
                const T *b = B + k * ldb;                                          \
                for (int64_t j = 0; j < N; j++)                                    \
                    c[j] += av * b[j];                                             \
            }                                                                      \
        }                                                                          \
    } else {                                                                       \
        for (int64_t i = 0; i < M; i++)                                            \
            for (int64_t j = 0; j < N; j++) {                                      \
                const T *b = B + j * ldb;                                          \
                T s = 0;                                                           \
                for (int64_t k = 0; k < K; k++)                                    \
                    s += (trans_a ? A[k * lda + i] : A[i * lda + k]) * b[k];       \
                C[i * ldc + j] += alpha * s;                                       \
            }                                                                      \
    }

#define GEMM_BODY(T, NR, SUFFIX)                                                   \
    if (M <= 0 || N <= 0)                                                          \
        return;                                                                    \
    SCALE_C(T)                                                                     \
    if (K <= 0 || alpha == 0)                                                      \
        return;                                                                    \
    if (M * N * K <= 8192) {                                                       \
        SMALL_GEMM(T)                                                              \
        return;                                                                    \
    }                                                                              \
    int64_t ncap = N < NC ? ((N + NR - 1) / NR) * NR : NC;                         \
    T *bpack = tg__malloc((size_t)KC * ncap * sizeof(T));                              \
    T *apack = tg__malloc((size_t)KC * (MC + MR) * sizeof(T));                         \
    if (!bpack || !apack) {                                                        \
        tg__free(bpack);                                                           \
        tg__free(apack);                                                           \
        SMALL_GEMM(T) /* no scratch memory: slow but correct */                    \
        return;                                                                    \
    }                                                                              \
    for (int64_t j0 = 0; j0 < N; j0 += NC) {                                       \
        int64_t nc = N - j0 < NC ? N - j0 : NC;                                    \
        for (int64_t k0 = 0; k0 < K; k0 += KC) {                                   \
            int64_t kc = K - k0 < KC ? K - k0 : KC;                                \
            pack_b_##SUFFIX(trans_b, B, ldb, k0, kc, j0, nc, bpack);               \
            for (int64_t i0 = 0; i0 < M; i0 += MC) {                               \
                int64_t mc = M - i0 < MC ? M - i0 : MC;                            \
                pack_a_##SUFFIX(trans_a, A, lda, i0, mc, k0, kc, alpha, apack);    \
                for (int64_t js = 0; js < nc; js += NR)                            \
                    for (int64_t is = 0; is < mc; is += MR)                        \
                        micro_##SUFFIX(kc, apack + is * kc, bpack + js * kc,       \
                                       C + (i0 + is) * ldc + j0 + js, ldc,         \
                                       mc - is < MR ? mc - is : MR,                \
                                       nc - js < NR ? nc - js : NR);               \
            }                                                                      \
        }                                                                          \
    }                                                                              \
    tg__free(bpack);                                                               \
    tg__free(apack);

void tg__gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc)
{
    GEMM_BODY(float, NR_F32, f32)
}

void tg__gemm_f64(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                  const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
                  double *C, int64_t ldc)
{
    GEMM_BODY(double, NR_F64, f64)
}
