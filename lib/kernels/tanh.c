/* tanh.c - float32 tanh, tapegrad's own: the same bits on every CPU, and
 * several times cheaper than glibc's tanhf (which goes through expm1f).
 *
 * Computed in double from float input: with e = expm1(2|x|),
 *
 *     tanh |x| = e / (e + 2)
 *
 * has no cancellation anywhere (e has the sign of x, the denominator is at
 * least 2), so the double result is within a few double roundings (about
 * 1e-15 relative) of the true value, and converting it to float rounds once:
 * the float result is at most 0.5 ulp plus about 2^-29 ulp from tanh (x), so
 * correctly rounded but for inputs within 2^-29 ulp of a halfway point
 * (tests/check_kernels.c checks a dense sweep against double tanh; the whole
 * float range measured 0.5 ulp at most, see docs/performance.md).
 *
 * expm1 on [0, 20]: 2|x| = k ln 2 + r with |r| <= ln 2 / 2 (ln 2 split in
 * two so that k ln2_hi is exact), expm1(r) by its Taylor series to r^11
 * (truncation below 1e-14 relative), then expm1(2|x|) = 2^k expm1(r) +
 * (2^k - 1), where both terms have the same sign or the second dominates
 * (no cancellation for k >= 1, and k = 0 leaves expm1(r) itself).
 *
 * Deterministic: only IEEE double additions, multiplications and one
 * division, each correctly rounded, and no libm call. This file is built
 * with -ffp-contract=off (tg_exact_sources, lib/meson.build), so no compiler fuses a
 * multiply-add differently on a CPU with FMA; it assumes double arithmetic
 * is evaluated in double (FLT_EVAL_METHOD 0, as on x86-64 and aarch64). */
#include <math.h> /* signbit only: no libm call */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "kernels/pointwise.h"

/* ln 2 = LN2_HI + LN2_LO; LN2_HI has 32 significant bits, so k * LN2_HI is
 * exact for k < 2^21 (here k <= 29). */
#define LN2_HI 6.93147180369123816490e-01 /* 0x3fe62e42fee00000 */
#define LN2_LO 1.90821492927058770002e-10 /* 0x3dea39ef35793c76 */
#define INV_LN2 1.44269504088896338700e+00

/* At or above this |x|, tanh x rounds to +-1 in float (1 - tanh 10 is
 * 4e-9, below half of float's 6e-8 spacing under 1). */
#define SATURATE 10.0

float tg__tanhf(float xf)
{
    double x = xf, ax = x < 0 ? -x : x;
    if (!(ax < SATURATE)) // also NaN (which is returned as it came) and +-inf
        return xf != xf ? xf : (x < 0 ? -1.0f : 1.0f);
    double y = 2 * ax;
    int k = (int)(y * INV_LN2 + 0.5); // y >= 0: rounds to nearest
    double r = (y - k * LN2_HI) - k * LN2_LO;
    // expm1(r) = r + r^2/2! + ... + r^11/11!, by Horner.
    double p = 1.0 / 39916800;
    p = p * r + 1.0 / 3628800;
    p = p * r + 1.0 / 362880;
    p = p * r + 1.0 / 40320;
    p = p * r + 1.0 / 5040;
    p = p * r + 1.0 / 720;
    p = p * r + 1.0 / 120;
    p = p * r + 1.0 / 24;
    p = p * r + 1.0 / 6;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r;
    uint64_t bits = (uint64_t)(k + 1023) << 52; // 2^k
    double two_k;
    memcpy(&two_k, &bits, sizeof two_k);
    double e = two_k * p + (two_k - 1); // k == 0: 1 * p + 0 is p exactly
    double t = e / (e + 2);
    return (float)(signbit(xf) ? -t : t); // -0 stays -0

}

void tg__tanh_f32_scalar(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = tg__tanhf(x[i]);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* tg__tanhf on four lanes at a time: the same double operations in the same
 * order (separate multiplies and adds, no FMA: this file is built with
 * -ffp-contract=off and the target is avx2 without fma), so every lane gives
 * the scalar function's bits; check_kernels compares the two over a dense
 * sweep of floats. Groups with a lane at or above SATURATE, or NaN, go
 * through the scalar function. */
__attribute__((target("avx2"))) static void tanh_f32_avx2(const float *x, float *y, int64_t n)
{
    const __m256d sign = _mm256_set1_pd(-0.0), sat = _mm256_set1_pd(SATURATE);
    const __m256d inv_ln2 = _mm256_set1_pd(INV_LN2), half = _mm256_set1_pd(0.5);
    const __m256d ln2_hi = _mm256_set1_pd(LN2_HI), ln2_lo = _mm256_set1_pd(LN2_LO);
    const __m256d one = _mm256_set1_pd(1.0), two = _mm256_set1_pd(2.0);
    const __m128i bias = _mm_set1_epi32(1023);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256d xd = _mm256_cvtps_pd(_mm_loadu_ps(x + i));
        __m256d ax = _mm256_andnot_pd(sign, xd);
        if (_mm256_movemask_pd(_mm256_cmp_pd(ax, sat, _CMP_LT_OQ)) != 0xf) {
            for (int64_t j = i; j < i + 4; j++)
                y[j] = tg__tanhf(x[j]);
            continue;
        }
        __m256d yd = _mm256_add_pd(ax, ax); // 2 * ax, exactly
        __m128i k = _mm256_cvttpd_epi32(_mm256_add_pd(_mm256_mul_pd(yd, inv_ln2), half));
        __m256d kd = _mm256_cvtepi32_pd(k);
        __m256d r = _mm256_sub_pd(_mm256_sub_pd(yd, _mm256_mul_pd(kd, ln2_hi)),
                                  _mm256_mul_pd(kd, ln2_lo));
        __m256d p = _mm256_set1_pd(1.0 / 39916800);
#define TANH_STEP(c) p = _mm256_add_pd(_mm256_mul_pd(p, r), _mm256_set1_pd(c))
        TANH_STEP(1.0 / 3628800);
        TANH_STEP(1.0 / 362880);
        TANH_STEP(1.0 / 40320);
        TANH_STEP(1.0 / 5040);
        TANH_STEP(1.0 / 720);
        TANH_STEP(1.0 / 120);
        TANH_STEP(1.0 / 24);
        TANH_STEP(1.0 / 6);
        TANH_STEP(0.5);
        TANH_STEP(1.0);
#undef TANH_STEP
        p = _mm256_mul_pd(p, r);
        __m256d two_k = _mm256_castsi256_pd(
            _mm256_slli_epi64(_mm256_cvtepi32_epi64(_mm_add_epi32(k, bias)), 52));
        __m256d e = _mm256_add_pd(_mm256_mul_pd(two_k, p), _mm256_sub_pd(two_k, one));
        __m256d t = _mm256_div_pd(e, _mm256_add_pd(e, two));
        t = _mm256_xor_pd(t, _mm256_and_pd(sign, xd)); // -t where x has its sign bit set
        _mm_storeu_ps(y + i, _mm256_cvtpd_ps(t));
    }
    for (; i < n; i++)
        y[i] = tg__tanhf(x[i]);
}

/* tanh_f32_avx2 on eight lanes: the same operations in the same order, in
 * 512-bit registers (half the instructions per float; a small tanh layer is a
 * tenth of a tiny network's step). The last n % 8 go through the AVX2 one. */
__attribute__((target("avx512f"))) static void tanh_f32_avx512(const float *x, float *y,
                                                               int64_t n)
{
    const __m512d sign = _mm512_set1_pd(-0.0), sat = _mm512_set1_pd(SATURATE);
    const __m512d inv_ln2 = _mm512_set1_pd(INV_LN2), half = _mm512_set1_pd(0.5);
    const __m512d ln2_hi = _mm512_set1_pd(LN2_HI), ln2_lo = _mm512_set1_pd(LN2_LO);
    const __m512d one = _mm512_set1_pd(1.0), two = _mm512_set1_pd(2.0);
    const __m256i bias = _mm256_set1_epi32(1023);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m512d xd = _mm512_cvtps_pd(_mm256_loadu_ps(x + i));
        __m512d ax = _mm512_castsi512_pd(
            _mm512_andnot_si512(_mm512_castpd_si512(sign), _mm512_castpd_si512(xd)));
        if (_mm512_cmp_pd_mask(ax, sat, _CMP_LT_OQ) != 0xff) {
            for (int64_t j = i; j < i + 8; j++)
                y[j] = tg__tanhf(x[j]);
            continue;
        }
        __m512d yd = _mm512_add_pd(ax, ax);
        __m256i k = _mm512_cvttpd_epi32(_mm512_add_pd(_mm512_mul_pd(yd, inv_ln2), half));
        __m512d kd = _mm512_cvtepi32_pd(k);
        __m512d r = _mm512_sub_pd(_mm512_sub_pd(yd, _mm512_mul_pd(kd, ln2_hi)),
                                  _mm512_mul_pd(kd, ln2_lo));
        __m512d p = _mm512_set1_pd(1.0 / 39916800);
#define TANH_STEP(c) p = _mm512_add_pd(_mm512_mul_pd(p, r), _mm512_set1_pd(c))
        TANH_STEP(1.0 / 3628800);
        TANH_STEP(1.0 / 362880);
        TANH_STEP(1.0 / 40320);
        TANH_STEP(1.0 / 5040);
        TANH_STEP(1.0 / 720);
        TANH_STEP(1.0 / 120);
        TANH_STEP(1.0 / 24);
        TANH_STEP(1.0 / 6);
        TANH_STEP(0.5);
        TANH_STEP(1.0);
#undef TANH_STEP
        p = _mm512_mul_pd(p, r);
        __m512d two_k = _mm512_castsi512_pd(
            _mm512_slli_epi64(_mm512_cvtepi32_epi64(_mm256_add_epi32(k, bias)), 52));
        __m512d e = _mm512_add_pd(_mm512_mul_pd(two_k, p), _mm512_sub_pd(two_k, one));
        __m512d t = _mm512_div_pd(e, _mm512_add_pd(e, two));
        t = _mm512_castsi512_pd(_mm512_xor_si512(
            _mm512_castpd_si512(t),
            _mm512_and_si512(_mm512_castpd_si512(sign), _mm512_castpd_si512(xd))));
        _mm256_storeu_ps(y + i, _mm512_cvtpd_ps(t));
    }
    if (i < n)
        tanh_f32_avx2(x + i, y + i, n - i);
}

typedef void (*tanh_fn)(const float *x, float *y, int64_t n);

/* The implementations this CPU runs, widest last; lanes[0] is the scalar one.
 * The AVX-512 one needs the AVX2 one too, for its last n % 8. */
static int supported(tanh_fn lanes[3])
{
    int n = 0;
    lanes[n++] = tg__tanh_f32_scalar;
    if (__builtin_cpu_supports("avx2"))
        lanes[n++] = tanh_f32_avx2;
    if (n == 2 && __builtin_cpu_supports("avx512f"))
        lanes[n++] = tanh_f32_avx512;
    return n;
}

int tg__tanh_f32_variants(void)
{
    tanh_fn lanes[3];
    return supported(lanes);
}

void tg__tanh_f32_variant(int v, const float *x, float *y, int64_t n)
{
    tanh_fn lanes[3];
    int count = supported(lanes);
    lanes[v >= 0 && v < count ? v : 0](x, y, n);
}

static _Atomic(tanh_fn) widest; /* NULL until first use */

void tg__tanh_f32(const float *x, float *y, int64_t n)
{
    tanh_fn f = atomic_load_explicit(&widest, memory_order_relaxed);
    if (!f) {
        tanh_fn lanes[3];
        f = lanes[supported(lanes) - 1];
        atomic_store_explicit(&widest, f, memory_order_relaxed);
    }
    f(x, y, n);
}
#else
int tg__tanh_f32_variants(void) { return 1; }
void tg__tanh_f32_variant(int v, const float *x, float *y, int64_t n)
{
    (void)v;
    tg__tanh_f32_scalar(x, y, n);
}
void tg__tanh_f32(const float *x, float *y, int64_t n) { tg__tanh_f32_scalar(x, y, n); }
#endif
