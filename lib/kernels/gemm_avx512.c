/* gemm_avx512.c - the GEMM kernel for x86-64 CPUs with AVX-512F: an 8 x 32
 * float32 tile in 16 of the 32 zmm registers, one broadcast of A and two
 * loads of B per depth step. On a CPU with two 512-bit FMA units (Intel
 * Xeon) this doubles the AVX2 kernel's peak; on Zen 4, which splits each
 * 512-bit operation in two, it is about even, and the calibration in
 * gemm_dispatch.c picks whichever measures faster.
 *
 * Only these functions carry target("avx512f"); float64 uses the AVX2
 * kernel's code (every AVX-512 CPU has AVX2 and FMA). The fma order is
 * gemm_kernel.h's, so the results equal the other kernels' to the bit. */
#include <math.h>
#include <stdbool.h>

#include "kernels/gemm_kernel.h"
#include "kernels/gemm_transpose.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx2,fma")))

static bool avx512_supported(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma");
}

/* As tile_avx2, for 32 columns. */
static inline __attribute__((always_inline)) TARGET void
tile_avx512(const int rows, int64_t kc, const float *ap, int64_t rsa, int64_t csa,
            const float *bp, int64_t ldbp, float *C, int64_t ldc, int64_t n, float alpha, float beta)
{
    __m512 c0[8], c1[8];
    for (int r = 0; r < rows; r++) {
        c0[r] = c1[r] = _mm512_setzero_ps();
        // C's tile is read (or written) only after the whole depth block:
        // ask for its lines now, so they arrive while the fmas run.
        _mm_prefetch((const char *)(C + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(C + r * ldc + n - 1), _MM_HINT_T0);
    }
    // Unrolled: 1024^3 1.17x, the CNN's conv2 products 1.01-1.04x (CPU
    // time, alternating; GCC 12 leaves the loop rolled otherwise).
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(bp + k * ldbp), b1 = _mm512_loadu_ps(bp + k * ldbp + 16);
        const float *a = ap + k * csa;
        for (int r = 0; r < rows; r++) {
            __m512 av = _mm512_set1_ps(a[r * rsa]);
            c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
        }
    }
    if (alpha != 1) {
        __m512 va = _mm512_set1_ps(alpha);
        for (int r = 0; r < rows; r++) {
            c0[r] = _mm512_mul_ps(c0[r], va);
            c1[r] = _mm512_mul_ps(c1[r], va);
        }
    }
    // A ragged tile (n < 32) is read and written through masks, which touch
    // none of C's elements past n.
    const __mmask16 lo = (__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1);
    const __mmask16 hi = (__mmask16)(n >= 32 ? 0xffff : n <= 16 ? 0 : (1u << (n - 16)) - 1);
    __m512 vb = _mm512_set1_ps(beta);
    for (int r = 0; r < rows; r++) {
        float *c = C + r * ldc;
        if (beta != 0) {
            c0[r] = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(lo, c), c0[r]);
            c1[r] = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(hi, c + 16), c1[r]);
        }
        _mm512_mask_storeu_ps(c, lo, c0[r]);
        _mm512_mask_storeu_ps(c + 16, hi, c1[r]);
    }
}

static TARGET void micro_avx512(int rows, int64_t kc, const float *ap, int64_t rsa, int64_t csa,
                                const float *bp, int64_t ldbp, float *C, int64_t ldc, int64_t n, float alpha,
                                float beta)
{
    switch (rows) {
    case 8: tile_avx512(8, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break;
    case 7: tile_avx512(7, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break;
    case 6: tile_avx512(6, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break;
    case 5: tile_avx512(5, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break;
    case 4: tile_avx512(4, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break;
    case 3: tile_avx512(3, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break;
    case 2: tile_avx512(2, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break;
    case 1: tile_avx512(1, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break;
    default: break;
    }
}

/* A ragged strip's row (gemm_template.h): two masked loads, which read
 * nothing past src's w elements, and two whole stores. */
static inline __attribute__((always_inline)) TARGET void ragged_row_avx512(const float *src,
                                                                         int64_t w, float *dst)
{
    __mmask16 lo = (__mmask16)(w >= 16 ? 0xffff : (1u << w) - 1);
    __mmask16 hi = (__mmask16)(w <= 16 ? 0 : (1u << (w - 16)) - 1);
    _mm512_storeu_ps(dst, _mm512_maskz_loadu_ps(lo, src));
    _mm512_storeu_ps(dst + 16, _mm512_maskz_loadu_ps(hi, src + 16));
}

#define MR 8
#define NR 32
#define RAGGED_ROW ragged_row_avx512
#define T float
#define IS_F32
#define FMA fmaf
#define FN(x) x##_avx512_f32
#define MICRO micro_avx512
/* 8 lanes as in the AVX2 kernel: a small network's layers are that narrow. */
#define TINY_VEC __m256
#define TINY_ZERO _mm256_setzero_ps
#define TINY_SET1 _mm256_set1_ps
#define TINY_LOAD _mm256_loadu_ps
#define TINY_STORE _mm256_storeu_ps
#define TINY_FMA _mm256_fmadd_ps
#define TINY_MUL _mm256_mul_ps
#include "kernels/gemm_template.h"

const tg__gemm_kernel tg__gemm_avx512 = {
    .name = "avx512",
    .supported = avx512_supported,
    .mr = 8,
    .nr = 32,
    .mr_f64 = 6,
    .nr_f64 = 8,
    .packed_f32 = packed_avx512_f32,
    .direct_f32 = direct_avx512_f32,
    .packed_f64 = tg__gemm_avx2_packed_f64,
    .direct_f64 = tg__gemm_avx2_direct_f64,
};

#else /* not x86-64: never chosen */

static bool never(void) { return false; }
const tg__gemm_kernel tg__gemm_avx512 = {.name = "avx512", .supported = never};

#endif
