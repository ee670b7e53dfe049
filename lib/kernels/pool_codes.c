/* pool_codes.c - the max pool that remembers its choice in one byte per
 * window, and the gradient of ReLU-then-max-pool made from those bytes (see
 * kernels.h). conv2d_relu_max_pool2d keeps these codes instead of the
 * convolution's output, which the backward would otherwise read again from
 * memory only to find each window's maximum.
 *
 * A window's code is the place of its chosen element counted from the
 * window's corner, (r - y0) * KW + (c - x0) with y0 = i*SH - PT and
 * x0 = j*SW - PL; the choice is tg__maxpool_f32's (the first largest, or the
 * first NaN), so the maxima are its bytes. The common 2x2, stride 2,
 * unpadded pool has an AVX-512 path (16 windows at a time, the compares of
 * kernels/pool.c); every other case, and any CPU without AVX-512, takes the
 * scalar loops, to the same bytes. */
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"

enum { CODES_SCALAR, CODES_AVX512 };

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CODES_X86 1
#include <immintrin.h>
#endif

static int supported_kinds(int kinds[2])
{
    int n = 0;
    kinds[n++] = CODES_SCALAR;
#ifdef CODES_X86
    if (__builtin_cpu_supports("avx512f"))
        kinds[n++] = CODES_AVX512;
#endif
    return n;
}

int tg__pool_codes_variants(void)
{
    int kinds[2];
    return supported_kinds(kinds);
}

static int kind_of(int variant)
{
    int kinds[2], n = supported_kinds(kinds);
    return kinds[variant >= 0 && variant < n ? variant : n - 1];
}

static bool is_2x2(const tg__pool_geom *g)
{
    return g->KH == 2 && g->KW == 2 && g->SH == 2 && g->SW == 2 && g->PT == 0 && g->PL == 0 &&
           g->OH == g->H / 2 && g->OW == g->W / 2;
}

/* ---- scalar: any geometry ---- */

static void codes_scalar(const float *x, const tg__pool_geom *g, float *y, uint8_t *code,
                         int64_t p0, int64_t p1)
{
    for (int64_t p = p0; p < p1; p++) {
        const float *plane = x + p * g->H * g->W;
        for (int64_t i = 0; i < g->OH; i++)
            for (int64_t j = 0; j < g->OW; j++) {
                int64_t y0 = i * g->SH - g->PT, x0 = j * g->SW - g->PL;
                float best = -INFINITY;
                int at = -1;
                for (int64_t u = 0; u < g->KH; u++)
                    for (int64_t v = 0; v < g->KW; v++) {
                        int64_t r = y0 + u, c = x0 + v;
                        if (r < 0 || r >= g->H || c < 0 || c >= g->W)
                            continue;
                        float e = plane[r * g->W + c];
                        if (at < 0 || e > best || (e != e && best == best)) {
                            best = e;
                            at = (int)(u * g->KW + v);
                        }
                    }
                int64_t k = (p * g->OH + i) * g->OW + j;
                y[k] = best;
                code[k] = (uint8_t)(at < 0 ? 0 : at);
            }
    }
}

/* put_add of dy at the codes' places into zeros, then the ReLU's gradient:
 * g where the pooled value is > 0, else g * 0 (tg__relu_grad_f32's rule, the
 * pooled value being y at that place); applied again at a place that two
 * windows share, it changes no bit. */
static void back_scalar(const uint8_t *code, const float *y, const float *dy,
                        const tg__pool_geom *g, float *dx, int64_t p0, int64_t p1)
{
    memset(dx + p0 * g->H * g->W, 0, (size_t)((p1 - p0) * g->H * g->W) * sizeof *dx);
    for (int pass = 0; pass < 2; pass++)
        for (int64_t p = p0; p < p1; p++)
            for (int64_t i = 0; i < g->OH; i++)
                for (int64_t j = 0; j < g->OW; j++) {
                    int64_t k = (p * g->OH + i) * g->OW + j;
                    int64_t r = i * g->SH - g->PT + code[k] / g->KW;
                    int64_t c = j * g->SW - g->PL + code[k] % g->KW;
                    float *d = dx + (p * g->H + r) * g->W + c;
                    if (pass == 0)
                        *d += dy[k];
                    else if (!(y[k] > 0))
                        *d = *d * 0;
                }
}

/* ---- AVX-512: 2x2, stride 2, unpadded ---- */

#ifdef CODES_X86
#define TARGET __attribute__((target("avx512f")))

/* The first n (at most 32) lanes of a pair of 16-lane vectors. */
static inline uint32_t first_lanes(int64_t n)
{
    return n >= 32 ? 0xffffffffu : n <= 0 ? 0 : (1u << n) - 1;
}

#define EVEN16 _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0)
#define ODD16 _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1)
#define LOW16 _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0)
#define HIGH16 _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8)

/* As kernels/pool.c's max16_planes_f32, with codes: of a, b (top row) and
 * c, d, the top's choice is b when b > a, the bottom's d when d > c, and the
 * bottom wins when bottom > top (strict, so the first maximum stays). A NaN
 * makes those compares false; the caller redoes such planes in the scalar
 * loop. Returns whether a NaN was seen. */
TARGET static bool codes_avx512(const float *x, const tg__pool_geom *g, float *y, uint8_t *code,
                                int64_t p0, int64_t p1)
{
    const __m512i even = EVEN16, odd = ODD16, one = _mm512_set1_epi32(1);
    const __m512i two = _mm512_set1_epi32(2), three = _mm512_set1_epi32(3);
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    __mmask16 nan = 0;
    for (int64_t p = p0; p < p1; p++)
        for (int64_t i = 0; i < OH; i++) {
            const float *r0 = x + (p * H + 2 * i) * W, *r1 = r0 + W;
            int64_t k0 = (p * OH + i) * OW;
            for (int64_t j = 0; j < OW; j += 16) {
                uint32_t in = first_lanes(2 * (OW - j));
                __mmask16 lo = (__mmask16)in, hi = (__mmask16)(in >> 16);
                __mmask16 out = (__mmask16)first_lanes(OW - j);
                __m512 p0v = _mm512_maskz_loadu_ps(lo, r0 + 2 * j);
                __m512 p1v = _mm512_maskz_loadu_ps(hi, r0 + 2 * j + 16);
                __m512 q0v = _mm512_maskz_loadu_ps(lo, r1 + 2 * j);
                __m512 q1v = _mm512_maskz_loadu_ps(hi, r1 + 2 * j + 16);
                __m512 a = _mm512_permutex2var_ps(p0v, even, p1v);
                __m512 b = _mm512_permutex2var_ps(p0v, odd, p1v);
                __m512 c = _mm512_permutex2var_ps(q0v, even, q1v);
                __m512 d = _mm512_permutex2var_ps(q0v, odd, q1v);
                __m512 top = _mm512_max_ps(b, a), bottom = _mm512_max_ps(d, c);
                __mmask16 bgt = _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ);
                __mmask16 dgt = _mm512_cmp_ps_mask(d, c, _CMP_GT_OQ);
                __mmask16 low = _mm512_cmp_ps_mask(bottom, top, _CMP_GT_OQ);
                _mm512_mask_storeu_ps(y + k0 + j, out, _mm512_max_ps(bottom, top));
                __m512i ct = _mm512_maskz_mov_epi32(bgt, one);
                __m512i cb = _mm512_mask_mov_epi32(two, dgt, three);
                __m512i cv = _mm512_mask_mov_epi32(ct, low, cb);
                _mm512_mask_cvtepi32_storeu_epi8(code + k0 + j, out, cv);
                nan |= _mm512_cmp_ps_mask(p0v, p1v, _CMP_UNORD_Q) |
                       _mm512_cmp_ps_mask(q0v, q1v, _CMP_UNORD_Q);
            }
        }
    return nan != 0;
}

/* back_scalar's bytes for the 2x2 pool: each window's four places written
 * once (its value at the code's place, +0 at the others), rows and columns
 * outside every window set to +0. put_add adds to +0, so its value is
 * dy + 0 (a -0 becomes +0), then the ReLU's select. */
TARGET static void back_avx512(const uint8_t *code, const float *y, const float *dy,
                               const tg__pool_geom *g, float *dx, int64_t p0, int64_t p1)
{
    const __m512i low16 = LOW16, high16 = HIGH16;
    const __m512i zero_i = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    const __m512i two = _mm512_set1_epi32(2), three = _mm512_set1_epi32(3);
    const __m512 zero = _mm512_setzero_ps();
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    for (int64_t p = p0; p < p1; p++) {
        float *plane = dx + p * H * W;
        for (int64_t i = 0; i < OH; i++) {
            float *r0 = plane + 2 * i * W, *r1 = r0 + W;
            int64_t k0 = (p * OH + i) * OW;
            for (int64_t j = 0; j < OW; j += 16) {
                __mmask16 out = (__mmask16)first_lanes(OW - j);
                uint32_t in = first_lanes(2 * (OW - j));
                __m512 gv = _mm512_add_ps(_mm512_maskz_loadu_ps(out, dy + k0 + j), zero);
                __m512 yv = _mm512_maskz_loadu_ps(out, y + k0 + j);
                __mmask16 pos = _mm512_cmp_ps_mask(yv, zero, _CMP_GT_OQ);
                __m512 v = _mm512_mask_mov_ps(_mm512_mul_ps(gv, zero), pos, gv);
                // The codes as 32-bit lanes: 16 bytes, of which the lanes
                // past `out` are never stored (the array has 16 to spare).
                __m512i cv = _mm512_cvtepu8_epi32(
                    _mm_loadu_si128((const __m128i *)(const void *)(code + k0 + j)));
                __m512 a = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(cv, zero_i), v);
                __m512 b = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(cv, one), v);
                __m512 c = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(cv, two), v);
                __m512 d = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(cv, three), v);
                _mm512_mask_storeu_ps(r0 + 2 * j, (__mmask16)in,
                                      _mm512_permutex2var_ps(a, low16, b));
                _mm512_mask_storeu_ps(r0 + 2 * j + 16, (__mmask16)(in >> 16),
                                      _mm512_permutex2var_ps(a, high16, b));
                _mm512_mask_storeu_ps(r1 + 2 * j, (__mmask16)in,
                                      _mm512_permutex2var_ps(c, low16, d));
                _mm512_mask_storeu_ps(r1 + 2 * j + 16, (__mmask16)(in >> 16),
                                      _mm512_permutex2var_ps(c, high16, d));
            }
            if (W > 2 * OW) { // an odd last column
                r0[W - 1] = 0;
                r1[W - 1] = 0;
            }
        }
        if (H > 2 * OH) // an odd last row
            memset(plane + (H - 1) * W, 0, (size_t)W * sizeof *plane);
    }
}
#endif

/* ---- entry points ---- */

void tg__maxpool_codes_f32_variant(int variant, const float *x, const tg__pool_geom *g,
                                   float *y, uint8_t *code)
{
#ifdef CODES_X86
    if (kind_of(variant) == CODES_AVX512 && is_2x2(g)) {
        for (int64_t p = 0; p < g->planes; p++) // a plane with a NaN: the scalar rule
            if (codes_avx512(x, g, y, code, p, p + 1))
                codes_scalar(x, g, y, code, p, p + 1);
        return;
    }
#endif
    (void)kind_of;
    codes_scalar(x, g, y, code, 0, g->planes);
}

void tg__maxpool_codes_relu_backward_f32_variant(int variant, const uint8_t *code,
                                                 const float *y, const float *dy,
                                                 const tg__pool_geom *g, float *dx)
{
#ifdef CODES_X86
    if (kind_of(variant) == CODES_AVX512 && is_2x2(g)) {
        back_avx512(code, y, dy, g, dx, 0, g->planes);
        return;
    }
#endif
    back_scalar(code, y, dy, g, dx, 0, g->planes);
}

void tg__maxpool_codes_f32(const float *x, const tg__pool_geom *g, float *y, uint8_t *code)
{
    tg__maxpool_codes_f32_variant(-1, x, g, y, code);
}

void tg__maxpool_codes_relu_backward_f32(const uint8_t *code, const float *y, const float *dy,
                                         const tg__pool_geom *g, float *dx)
{
    tg__maxpool_codes_relu_backward_f32_variant(-1, code, y, dy, g, dx);
}
