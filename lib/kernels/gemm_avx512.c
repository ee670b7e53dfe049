/* gemm_avx512.c - the GEMM kernel for x86-64 CPUs with AVX-512F, in two
 * register tiles: 6 x 64 floats (24 of the 32 zmm registers, one broadcast of
 * A and four loads of B per depth step) for products more than 32 columns
 * wide, 8 x 32 (16 registers, two loads) for narrower ones, which would leave
 * most of a 64-column tile empty (conv1's weight gradient, 9 x 32; the last
 * dense layer, 10 columns). The wide tile loads B less often per fma: the
 * CNN's conv2 products run 3-9% faster with it. On a CPU with two 512-bit
 * FMA units (Intel Xeon) this doubles the AVX2 kernel's peak; on Zen 4,
 * which splits each 512-bit operation in two, it is about even, and the
 * calibration in gemm_dispatch.c picks whichever measures faster.
 *
 * Only these functions carry target("avx512f"); float64 uses the AVX2
 * kernel's code (every AVX-512 CPU has AVX2 and FMA). The fma order is
 * gemm_kernel.h's whatever the tile, so the results equal the other
 * kernels' to the bit. */
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

/* The first n lanes of vector v of a tile row (16 lanes a vector). */
static inline __mmask16 lanes(int64_t n, int v)
{
    int64_t m = n - 16 * v;
    return (__mmask16)(m >= 16 ? 0xffff : m <= 0 ? 0 : (1u << m) - 1);
}

/* As tile_avx2: rows x (16 nv) of C from strips of A and B; rows and nv are
 * constants in every call (the loops unroll, the accumulators stay in
 * registers). */
static inline __attribute__((always_inline)) TARGET void
tile_avx512(const int rows, const int nv, int64_t kc, const float *ap, int64_t rsa, int64_t csa,
            const float *bp, int64_t ldbp, float *C, int64_t ldc, int64_t n, float alpha,
            float beta)
{
    __m512 c[8][4];
    for (int r = 0; r < rows; r++) {
        for (int v = 0; v < nv; v++)
            c[r][v] = _mm512_setzero_ps();
        // C's tile is read (or written) only after the whole depth block:
        // ask for its lines now, so they arrive while the fmas run.
        _mm_prefetch((const char *)(C + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(C + r * ldc + n - 1), _MM_HINT_T0);
    }
    // Unrolled: 1024^3 1.17x, the CNN's conv2 products 1.01-1.04x (CPU
    // time, alternating; GCC 12 leaves the loop rolled otherwise).
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
        __m512 b[4];
        for (int v = 0; v < nv; v++)
            b[v] = _mm512_loadu_ps(bp + k * ldbp + 16 * v);
        const float *a = ap + k * csa;
        for (int r = 0; r < rows; r++) {
            __m512 av = _mm512_set1_ps(a[r * rsa]);
            for (int v = 0; v < nv; v++)
                c[r][v] = _mm512_fmadd_ps(av, b[v], c[r][v]);
        }
    }
    if (alpha != 1) {
        __m512 va = _mm512_set1_ps(alpha);
        for (int r = 0; r < rows; r++)
            for (int v = 0; v < nv; v++)
                c[r][v] = _mm512_mul_ps(c[r][v], va);
    }
    __m512 vb = _mm512_set1_ps(beta);
    if (n == 16 * nv) {
        for (int r = 0; r < rows; r++) {
            float *cr = C + r * ldc;
            for (int v = 0; v < nv; v++) {
                if (beta != 0)
                    c[r][v] = _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr + 16 * v), c[r][v]);
                _mm512_storeu_ps(cr + 16 * v, c[r][v]);
            }
        }
        return;
    }
    // A ragged tile is read and written through masks, which touch none of
    // C's elements past n.
    __mmask16 m[4];
    for (int v = 0; v < nv; v++)
        m[v] = lanes(n, v);
    for (int r = 0; r < rows; r++) {
        float *cr = C + r * ldc;
        for (int v = 0; v < nv; v++) {
            if (beta != 0)
                c[r][v] = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m[v], cr + 16 * v), c[r][v]);
            _mm512_mask_storeu_ps(cr + 16 * v, m[v], c[r][v]);
        }
    }
}

/* The micro-kernels of the two tiles (gemm_template.h's MICRO). */
#define MICRO_AVX512(name, MAXR, NV)                                                   \
    static TARGET void name(int rows, int64_t kc, const float *ap, int64_t rsa, int64_t csa, \
                            const float *bp, int64_t ldbp, float *C, int64_t ldc, int64_t n,   \
                            float alpha, float beta)                                   \
    {                                                                                  \
        switch (rows) {                                                                \
        case 1: tile_avx512(1, NV, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break; \
        case 2: tile_avx512(2, NV, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break; \
        case 3: tile_avx512(3, NV, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break; \
        case 4: tile_avx512(4, NV, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break; \
        case 5: tile_avx512(5, NV, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break; \
        case 6: tile_avx512(6, NV, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); break; \
        case 7: tile_avx512(MAXR < 7 ? MAXR : 7, NV, kc, ap, rsa, csa, bp, ldbp, C, ldc, n,    \
                            alpha, beta); break;                                       \
        case 8: tile_avx512(MAXR < 8 ? MAXR : 8, NV, kc, ap, rsa, csa, bp, ldbp, C, ldc, n,    \
                            alpha, beta); break;                                       \
        default: break;                                                                \
        }                                                                              \
    }
MICRO_AVX512(micro_avx512, 8, 2)
MICRO_AVX512(micro_avx512_wide, 6, 4)
#undef MICRO_AVX512

/* A ragged strip's row (gemm_template.h): masked loads, which read nothing
 * past src's w elements, and whole stores. */
static inline __attribute__((always_inline)) TARGET void
ragged_row_avx512(const float *src, int64_t w, float *dst, const int nv)
{
    for (int v = 0; v < nv; v++)
        _mm512_storeu_ps(dst + 16 * v, _mm512_maskz_loadu_ps(lanes(w, v), src + 16 * v));
}

/* The narrow tile, with the small-product paths. */
#define MR 8
#define NR 32
#define RAGGED_ROW(src, w, dst) ragged_row_avx512(src, w, dst, NR / 16)
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
#undef MR
#undef NR
#undef FN

/* The wide tile: the blocked driver only (the direct paths are the narrow
 * tile's). */
#define MR 6
#define NR 64
#define RAGGED_ROW(src, w, dst) ragged_row_avx512(src, w, dst, NR / 16)
#define FN(x) x##_avx512_wide_f32
#define MICRO micro_avx512_wide
#define TG__GEMM_TEMPLATE_PACKED_ONLY
#include "kernels/gemm_template.h"
#undef TG__GEMM_TEMPLATE_PACKED_ONLY

/* Scratch is sized for the larger of each (the kernel's mr 8 and nr 64
 * below), so either driver fits in it. */
static TARGET void packed_f32(const tg__gemm_job *job, float *scratch)
{
    if (job->N > 32)
        packed_avx512_wide_f32(job, scratch);
    else
        packed_avx512_f32(job, scratch);
}

const tg__gemm_kernel tg__gemm_avx512 = {
    .name = "avx512",
    .supported = avx512_supported,
    .mr = 8,
    .nr = 64,
    .mr_f64 = 6,
    .nr_f64 = 8,
    .packed_f32 = packed_f32,
    .direct_f32 = direct_avx512_f32,
    .packed_f64 = tg__gemm_avx2_packed_f64,
    .direct_f64 = tg__gemm_avx2_direct_f64,
};

#else /* not x86-64: never chosen */

static bool never(void) { return false; }
const tg__gemm_kernel tg__gemm_avx512 = {.name = "avx512", .supported = never};

#endif
