/* pool_codes.c - the gradient of ReLU-then-max-pool made from the max
 * pool's codes (see kernels.h): one byte per window, the place of the chosen
 * element counted from the window's corner, (r - y0) * KW + (c - x0) with
 * y0 = i*SH - PT and x0 = j*SW - PL, which tg__maxpool_codes_f32 (pool.c)
 * writes with the pool's values. conv2d_relu_max_pool2d keeps these codes
 * instead of the convolution's output, which the backward would otherwise
 * read again from memory only to find each window's maximum. The common 2x2,
 * stride 2, unpadded pool has an AVX-512 path (16 windows at a time, or a
 * whole plane of at most 32); every
 * other case, and any CPU without AVX-512, takes the scalar loop, to the
 * same bytes. */
#include <string.h>

#include "kernels/kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CODES_X86 1
#include <immintrin.h>
#endif

/* Variant 0 is the scalar loop, 1 AVX-512; -1 the widest this CPU runs. */
int tg__pool_codes_variants(void) { return tg__cpu_avx512f() ? 2 : 1; }

static bool use_avx512(int variant) { return variant != 0 && tg__cpu_avx512f(); }

/* ---- scalar: any geometry ---- */

/* put_add of dy at the codes' places into zeros, then the ReLU's gradient:
 * g where the pooled value is > 0, else g * 0 (tg__relu_grad_f32's rule, the
 * pooled value being y at that place); applied again at a place that two
 * windows share, it changes no bit. */
static void back_scalar(const uint8_t *code, const float *y, const float *dy,
                        const tg__pool_geom *g, float *dx, int64_t ld, int64_t p0, int64_t p1)
{
    for (int64_t p = p0; p < p1; p++)
        memset(dx + p * ld, 0, (size_t)(g->H * g->W) * sizeof *dx);
    for (int pass = 0; pass < 2; pass++)
        for (int64_t p = p0; p < p1; p++)
            for (int64_t i = 0; i < g->OH; i++)
                for (int64_t j = 0; j < g->OW; j++) {
                    int64_t k = (p * g->OH + i) * g->OW + j;
                    int64_t r = i * g->SH - g->PT + code[k] / g->KW;
                    int64_t c = j * g->SW - g->PL + code[k] % g->KW;
                    float *d = dx + p * ld + r * g->W + c;
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

#define LOW16 _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0)
#define HIGH16 _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8)

/* The values of 16 windows (lanes m) that their codes' places receive:
 * put_add's dy + 0 (a -0 becomes +0), then the ReLU's select on the pooled
 * y (that value where y > 0, else it times 0). */
static inline __attribute__((always_inline)) TARGET __m512 window_values(const float *dy,
                                                                        const float *y,
                                                                        __mmask16 m)
{
    const __m512 zero = _mm512_setzero_ps();
    __m512 gv = _mm512_add_ps(_mm512_maskz_loadu_ps(m, dy), zero);
    __mmask16 pos = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m, y), zero, _CMP_GT_OQ);
    return _mm512_mask_mov_ps(_mm512_mul_ps(gv, zero), pos, gv);
}

/* back_scalar's bytes for the 2x2 pool: each window's four places written
 * once (its value at the code's place, +0 at the others), rows and columns
 * outside every window set to +0. */
TARGET static void back_avx512(const uint8_t *code, const float *y, const float *dy,
                               const tg__pool_geom *g, float *dx, int64_t ld, int64_t p0,
                               int64_t p1)
{
    const __m512i low16 = LOW16, high16 = HIGH16;
    const __m512i zero_i = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    const __m512i two = _mm512_set1_epi32(2), three = _mm512_set1_epi32(3);
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    for (int64_t p = p0; p < p1; p++) {
        float *plane = dx + p * ld;
        for (int64_t i = 0; i < OH; i++) {
            float *r0 = plane + 2 * i * W, *r1 = r0 + W;
            int64_t k0 = (p * OH + i) * OW;
            for (int64_t j = 0; j < OW; j += 16) {
                __mmask16 out = (__mmask16)first_lanes(OW - j);
                uint32_t in = first_lanes(2 * (OW - j));
                __m512 v = window_values(dy + k0 + j, y + k0 + j, out);
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
            for (int64_t c = 2 * OW; c < W; c++) // columns past the last window
                r0[c] = r1[c] = 0;
        }
        if (H > 2 * OH) // rows past the last window
            memset(plane + 2 * OH * W, 0, (size_t)((H - 2 * OH) * W) * sizeof *plane);
    }
}

/* Planes of at most 32 windows (the CNN's second pool: 25 on 11 x 11, a row
 * of 5 windows in 16 lanes): the plane's windows are loaded once, as two
 * vectors, and each 16 elements of dx are gathered from them, element e
 * taking its window's value where the window's code names e, else +0. The
 * plan is the geometry's (each element's window and the code that would
 * name it; -1, which no code is, outside every window), made once for all
 * planes. */
#define SMALL_WINDOWS 32
#define SMALL_PIECES 16 /* H * W <= 256, more than 32 windows ever cover */

typedef struct small_plan {
    int64_t pieces;
    int32_t window[SMALL_PIECES][16], want[SMALL_PIECES][16];
    uint16_t store[SMALL_PIECES]; /* the lanes inside the plane */
} small_plan;

static bool small_planes(const tg__pool_geom *g)
{
    return g->OH * g->OW <= SMALL_WINDOWS && g->H * g->W <= 16 * SMALL_PIECES;
}

static void plan_small(const tg__pool_geom *g, small_plan *plan)
{
    int64_t n = g->H * g->W;
    plan->pieces = (n + 15) / 16;
    for (int64_t e = 0; e < 16 * plan->pieces; e++) {
        int64_t r = e / g->W, c = e % g->W;
        bool inside = e < n && r < 2 * g->OH && c < 2 * g->OW;
        plan->window[e / 16][e % 16] = inside ? (int32_t)(r / 2 * g->OW + c / 2) : 0;
        plan->want[e / 16][e % 16] = inside ? (int32_t)(r % 2 * 2 + c % 2) : -1;
    }
    for (int64_t k = 0; k < plan->pieces; k++)
        plan->store[k] = (uint16_t)first_lanes(n - 16 * k);
}

TARGET static void back_small_avx512(const uint8_t *code, const float *y, const float *dy,
                                     const tg__pool_geom *g, float *dx, int64_t ld, int64_t p0,
                                     int64_t p1)
{
    small_plan plan;
    plan_small(g, &plan);
    const int64_t nk = g->OH * g->OW;
    const __mmask16 m0 = (__mmask16)first_lanes(nk), m1 = (__mmask16)(first_lanes(nk) >> 16);
    for (int64_t p = p0; p < p1; p++) {
        const int64_t k0 = p * nk;
        __m512 v0 = window_values(dy + k0, y + k0, m0);
        __m512 v1 = window_values(dy + k0 + 16, y + k0 + 16, m1);
        // 16 bytes of codes from k0, and from k0 + 16 only when there are
        // more than 16 windows: at most 15 bytes are read past the plane.
        __m512i c0 = _mm512_cvtepu8_epi32(
            _mm_loadu_si128((const __m128i *)(const void *)(code + k0)));
        __m512i c1 = nk > 16 ? _mm512_cvtepu8_epi32(_mm_loadu_si128(
                                   (const __m128i *)(const void *)(code + k0 + 16)))
                             : _mm512_setzero_si512();
        float *plane = dx + p * ld;
        for (int64_t k = 0; k < plan.pieces; k++) {
            __m512i at = _mm512_loadu_si512((const void *)plan.window[k]);
            __m512i want = _mm512_loadu_si512((const void *)plan.want[k]);
            __mmask16 named =
                _mm512_cmpeq_epi32_mask(_mm512_permutex2var_epi32(c0, at, c1), want);
            _mm512_mask_storeu_ps(plane + 16 * k, plan.store[k],
                                  _mm512_maskz_permutex2var_ps(named, v0, at, v1));
        }
    }
}
#endif

/* ---- entry points ---- */

void tg__maxpool_codes_relu_backward_f32_variant(int variant, const uint8_t *code,
                                                 const float *y, const float *dy,
                                                 const tg__pool_geom *g, float *dx, int64_t ld)
{
#ifdef CODES_X86
    if (use_avx512(variant) && tg__pool_plain_2x2(g)) {
        if (small_planes(g))
            back_small_avx512(code, y, dy, g, dx, ld, 0, g->planes);
        else
            back_avx512(code, y, dy, g, dx, ld, 0, g->planes);
        return;
    }
#endif
    (void)use_avx512; // used only on x86-64
    back_scalar(code, y, dy, g, dx, ld, 0, g->planes);
}

void tg__maxpool_codes_relu_backward_f32(const uint8_t *code, const float *y, const float *dy,
                                         const tg__pool_geom *g, float *dx, int64_t ld)
{
    tg__maxpool_codes_relu_backward_f32_variant(-1, code, y, dy, g, dx, ld);
}
