/* gemm_avx2.c - the GEMM kernel for x86-64 CPUs with AVX2 and FMA (Haswell
 * and later, every Zen): a 6 x 16 float32 tile in 12 of the 16 ymm
 * registers, one broadcast of A and two loads of B per depth step.
 *
 * Compiled for the baseline like the rest of the library; only these
 * functions carry target("avx2,fma"), and gemm_dispatch.c calls them only
 * when cpuid reports both. The fma order is gemm_kernel.h's, so the results
 * equal the generic and AVX-512 kernels' to the bit. */
#include <math.h>
#include <stdbool.h>

#include "kernels/gemm_kernel.h"
#include "kernels/gemm_transpose.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))

static bool avx2_supported(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* C[rows x n] = alpha A[rows x kc] Bp + beta C (beta 0: C not read). rows is
 * a constant in every call, so the accumulators stay in registers. A tile
 * narrower than 16 is read and written through masks. */
static inline __attribute__((always_inline)) TARGET void
tile_avx2(const int rows, int64_t kc, const float *ap, int64_t rsa, int64_t csa, const float *bp, int64_t ldbp,
          float *C, int64_t ldc, int64_t n, float alpha, float beta)
{
    __m256 c0[6], c1[6];
    for (int r = 0; r < rows; r++)
        c0[r] = c1[r] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(bp + k * ldbp), b1 = _mm256_loadu_ps(bp + k * ldbp + 8);
        const float *a = ap + k * csa;
        for (int r = 0; r < rows; r++) {
            __m256 av = _mm256_broadcast_ss(a + r * rsa);
            c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
        }
    }
    if (alpha != 1) {
        __m256 va = _mm256_set1_ps(alpha);
        for (int r = 0; r < rows; r++) {
            c0[r] = _mm256_mul_ps(c0[r], va);
            c1[r] = _mm256_mul_ps(c1[r], va);
        }
    }
    if (n == 16) {
        __m256 vb = _mm256_set1_ps(beta);
        for (int r = 0; r < rows; r++) {
            float *c = C + r * ldc;
            if (beta != 0) {
                c0[r] = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), c0[r]);
                c1[r] = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), c1[r]);
            }
            _mm256_storeu_ps(c, c0[r]);
            _mm256_storeu_ps(c + 8, c1[r]);
        }
        return;
    }
    // A ragged tile through masks (lane j < n), which read and write none
    // of C's elements past n.
    const __m256i nv = _mm256_set1_epi32((int)n);
    const __m256i m0 = _mm256_cmpgt_epi32(nv, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256i m1 = _mm256_cmpgt_epi32(nv, _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15));
    __m256 vb = _mm256_set1_ps(beta);
    for (int r = 0; r < rows; r++) {
        float *c = C + r * ldc;
        if (beta != 0) {
            c0[r] = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c, m0), c0[r]);
            c1[r] = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c + 8, m1), c1[r]);
        }
        _mm256_maskstore_ps(c, m0, c0[r]);
        _mm256_maskstore_ps(c + 8, m1, c1[r]);
    }
}

static TARGET void micro_avx2(int rows, int64_t kc, const float *ap, int64_t rsa, int64_t csa,
                              const float *bp, int64_t ldbp, float *C, int64_t ldc, int64_t n, float alpha,
                              float beta)
{
    switch (rows) {
    case 6: tile_avx2(6, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break;
    case 5: tile_avx2(5, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break;
    case 4: tile_avx2(4, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break;
    case 3: tile_avx2(3, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break;
    case 2: tile_avx2(2, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break;
    case 1: tile_avx2(1, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break;
    default: break;
    }
}

#define MR 6
#define NR 16
#define T float
#define IS_F32
#define FMA fmaf
#define FN(x) x##_avx2_f32
#define MICRO micro_avx2
#define TINY_VEC __m256
#define TINY_ZERO _mm256_setzero_ps
#define TINY_SET1 _mm256_set1_ps
#define TINY_LOAD _mm256_loadu_ps
#define TINY_STORE _mm256_storeu_ps
#define TINY_FMA _mm256_fmadd_ps
#define TINY_MUL _mm256_mul_ps
#include "kernels/gemm_template.h"
#undef T
#undef IS_F32
#undef FMA
#undef FN
#undef NR

/* float64 (gradient checks more than speed): the portable lane kernel, which
 * the compiler vectorises for this target. */
#define LANE_MICRO
#define NR 8
#define T double
#define FMA fma
#define FN(x) x##_avx2_f64
#include "kernels/gemm_template.h"

void tg__gemm_avx2_packed_f64(const tg__gemm_job *job, double *scratch)
{
    packed_avx2_f64(job, scratch);
}

void tg__gemm_avx2_direct_f64(const tg__gemm_job *job) { direct_avx2_f64(job); }

const tg__gemm_kernel tg__gemm_avx2 = {
    .name = "avx2",
    .supported = avx2_supported,
    .mr = 6,
    .nr = 16,
    .mr_f64 = 6,
    .nr_f64 = 8,
    .packed_f32 = packed_avx2_f32,
    .direct_f32 = direct_avx2_f32,
    .packed_f64 = tg__gemm_avx2_packed_f64,
    .direct_f64 = tg__gemm_avx2_direct_f64,
};

#else /* not x86-64: never chosen */

static bool never(void) { return false; }
const tg__gemm_kernel tg__gemm_avx2 = {.name = "avx2", .supported = never};

#endif
