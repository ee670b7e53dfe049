/* pool.c - max and average pooling over planes of H x W (see kernels.h), and
 * the max pool's gradient. Max pooling, the CNN's, splits its planes between
 * threads (lib/thread), forward and backward. */
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "thread/pool.h"

/* The window of output (i, j) clipped to the image: rows [y0, y1), cols [x0, x1). */
#define WINDOW(g, i, j)                                                            \
    int64_t y0 = (i) * (g)->SH - (g)->PT, x0 = (j) * (g)->SW - (g)->PL;            \
    int64_t y1 = y0 + (g)->KH, x1 = x0 + (g)->KW;                                  \
    int64_t full = (g)->KH * (g)->KW;                                              \
    (void)full;                                                                    \
    if (y0 < 0)                                                                    \
        y0 = 0;                                                                    \
    if (x0 < 0)                                                                    \
        x0 = 0;                                                                    \
    if (y1 > (g)->H)                                                               \
        y1 = (g)->H;                                                               \
    if (x1 > (g)->W)                                                               \
        x1 = (g)->W;

/* The window's maximum `best` and its offset `at` in the plane src (-1 for
 * an empty window): the first largest element, or the first NaN, so that
 * forward and backward choose the same element. Follows WINDOW. */
#define WINDOW_MAX(T, src, g)                                                      \
    T best = -INFINITY;                                                            \
    int64_t at = -1;                                                               \
    for (int64_t r = y0; r < y1; r++)                                              \
        for (int64_t c = x0; c < x1; c++) {                                        \
            T v = (src)[r * (g)->W + c];                                           \
            if (at < 0 || v > best || (v != v && best == best)) {                  \
                best = v;                                                          \
                at = r * (g)->W + c;                                               \
            }                                                                      \
        }

#define MAXPOOL_BODY(T)                                                            \
    for (int64_t p = p0; p < p1; p++) {                                      \
        const T *plane = x + p * g->H * g->W;                                      \
        for (int64_t i = 0; i < g->OH; i++)                                        \
            for (int64_t j = 0; j < g->OW; j++) {                                  \
                WINDOW(g, i, j)                                                    \
                WINDOW_MAX(T, plane, g)                                            \
                int64_t k = (p * g->OH + i) * g->OW + j;                           \
                y[k] = best;                                                       \
                if (argmax)                                                        \
                    argmax[k] = p * g->H * g->W + (at < 0 ? 0 : at);               \
            }                                                                      \
    }

/* The common 2x2, stride 2, unpadded pool: no clipping, four compares. The
 * order of the compares keeps the first maximum (strict >), like the general
 * loop; NaNs are handled by the general loop (a NaN makes every compare false,
 * so such a window is redone there). Without argmax (training keeps none)
 * no indices are formed at all. */
#define MAXPOOL_2X2_BODY(T)                                                        \
    for (int64_t p = p0; p < p1; p++) {                                      \
        const T *plane = x + p * g->H * g->W;                                      \
        int64_t base = p * g->H * g->W;                                            \
        for (int64_t i = 0; i < g->OH; i++) {                                      \
            const T *r0 = plane + 2 * i * g->W, *r1 = r0 + g->W;                   \
            T *yo = y + (p * g->OH + i) * g->OW;                                   \
            int64_t *ao = argmax ? argmax + (p * g->OH + i) * g->OW : NULL;        \
            int64_t j = VEC_2X2_##T(r0, r1, g, base + 2 * i * g->W, yo, ao, &nan_seen, kind); \
            for (; j < g->OW; j++) {                                               \
                T a = r0[2 * j], b = r0[2 * j + 1];                                \
                T c = r1[2 * j], d = r1[2 * j + 1];                                \
                /* Branch-free; strict > keeps the first maximum on ties. */       \
                T top = b > a ? b : a, bottom = d > c ? d : c;                     \
                int64_t ti = b > a ? 1 : 0, bi = d > c ? g->W + 1 : g->W;          \
                yo[j] = bottom > top ? bottom : top;                               \
                if (ao)                                                            \
                    ao[j] = base + 2 * i * g->W + 2 * j + (bottom > top ? bi : ti); \
                nan_seen |= (a != a) | (b != b) | (c != c) | (d != d);             \
            }                                                                      \
        }                                                                          \
    }

/* The vector code the 2x2 pools may run, forward and backward, each giving
 * the scalar loop's bytes: 16-byte vectors (the baseline's SSE2 has every
 * operation), then AVX2 and AVX-512 as far as cpuid reports them. The
 * widest is chosen once; the tests run every one (tg__pool_f32_variant). */
enum { POOL_SCALAR, POOL_V16, POOL_AVX2, POOL_AVX512 };

/* The vectors need __builtin_shufflevector (GCC 12+, clang). */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define POOL_VECTORS 1
#if defined(__x86_64__)
#define POOL_X86 1
#include <immintrin.h>
#endif
#endif

/* The kinds this CPU runs, widest last. The AVX-512 forward pass leaves the
 * indices (when wanted) to the AVX2 code, so it needs that too. */
static int supported_kinds(int kinds[4])
{
    int n = 0;
    kinds[n++] = POOL_SCALAR;
#ifdef POOL_VECTORS
    kinds[n++] = POOL_V16;
#ifdef POOL_X86
    if (__builtin_cpu_supports("avx2"))
        kinds[n++] = POOL_AVX2;
    if (n == 3 && __builtin_cpu_supports("avx512f"))
        kinds[n++] = POOL_AVX512;
#endif
#endif
    return n;
}

static int pool_kind = -1; /* the widest kind, -1 until first use */

static int widest_kind(void)
{
    int kind = __atomic_load_n(&pool_kind, __ATOMIC_RELAXED);
    if (kind < 0) {
        int kinds[4];
        kind = kinds[supported_kinds(kinds) - 1];
        __atomic_store_n(&pool_kind, kind, __ATOMIC_RELAXED);
    }
    return kind;
}

int tg__pool_f32_variants(void)
{
    int kinds[4];
    return supported_kinds(kinds);
}

static int variant_kind(int v)
{
    int kinds[4], n = supported_kinds(kinds);
    return kinds[v >= 0 && v < n ? v : 0];
}

/* Four windows at a time for float32 (after eight at a time with AVX2;
 * without indices AVX-512 takes whole planes, max16_planes_f32): the same
 * compares as the scalar loop above, on vectors (even and odd columns split
 * by shuffles), so the result and the chosen indices are the same bytes.
 * Returns the outputs done; the scalar loop finishes the row. The indices
 * need offsets that fit in 32 bits. */
#ifdef POOL_VECTORS
/* 16-byte vectors (32-byte ones were split badly and ran 3x slower than the
 * scalar loop). */
typedef float v8f __attribute__((vector_size(16), aligned(4)));
typedef int32_t v8i __attribute__((vector_size(16), aligned(4)));
typedef int64_t v2l __attribute__((vector_size(16), aligned(8)));
#define EVEN(u, v) __builtin_shufflevector(u, v, 0, 2, 4, 6)
#define ODD(u, v) __builtin_shufflevector(u, v, 1, 3, 5, 7)
/* m ? yes : no, lane by lane (m all ones or zeros), as bits. */
#define PICK(m, yes, no) ((v8f)(((m) & (v8i)(yes)) | (~(m) & (v8i)(no))))

#ifdef POOL_X86
/* Eight windows at a time with AVX2: the same compares and selects on
 * 32-byte vectors (max_ps(u, v) is u > v ? u : v, bit for bit, NaN
 * included). The in-lane shuffles leave the windows in the order
 * 0 1 4 5 2 3 6 7, which one 64-bit permute of the maxima and one of the
 * offsets undo. ao NULL: no indices. Returns the outputs done. */
__attribute__((target("avx2"))) static int64_t vec8_2x2_f32(const float *r0, const float *r1,
                                                             int32_t W, int64_t OW, int64_t at,
                                                             float *yo, int64_t *ao,
                                                             bool *nan_seen)
{
    const __m256i one = _mm256_set1_epi32(1), wv = _mm256_set1_epi32(W);
    const __m256i four = _mm256_set1_epi64x(8), step = _mm256_set1_epi64x(16);
    __m256i first = _mm256_set_epi64x(at + 6, at + 4, at + 2, at);
    __m256 nan = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= OW; j += 8) {
        __m256 p0 = _mm256_loadu_ps(r0 + 2 * j), p1 = _mm256_loadu_ps(r0 + 2 * j + 8);
        __m256 q0 = _mm256_loadu_ps(r1 + 2 * j), q1 = _mm256_loadu_ps(r1 + 2 * j + 8);
        __m256 a = _mm256_shuffle_ps(p0, p1, _MM_SHUFFLE(2, 0, 2, 0));
        __m256 b = _mm256_shuffle_ps(p0, p1, _MM_SHUFFLE(3, 1, 3, 1));
        __m256 c = _mm256_shuffle_ps(q0, q1, _MM_SHUFFLE(2, 0, 2, 0));
        __m256 d = _mm256_shuffle_ps(q0, q1, _MM_SHUFFLE(3, 1, 3, 1));
        __m256 top = _mm256_max_ps(b, a), bottom = _mm256_max_ps(d, c);
        __m256 best = _mm256_max_ps(bottom, top);
        best = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(best), 0xD8));
        _mm256_storeu_ps(yo + j, best);
        __m256 na = _mm256_cmp_ps(p0, p1, _CMP_UNORD_Q), nc = _mm256_cmp_ps(q0, q1, _CMP_UNORD_Q);
        nan = _mm256_or_ps(nan, _mm256_or_ps(na, nc));
        if (!ao)
            continue;
        __m256 bgt = _mm256_cmp_ps(b, a, _CMP_GT_OQ), dgt = _mm256_cmp_ps(d, c, _CMP_GT_OQ);
        __m256 low = _mm256_cmp_ps(bottom, top, _CMP_GT_OQ);
        __m256i ti = _mm256_and_si256(_mm256_castps_si256(bgt), one);
        __m256i bi = _mm256_add_epi32(wv, _mm256_and_si256(_mm256_castps_si256(dgt), one));
        __m256i off = _mm256_castps_si256(
            _mm256_blendv_ps(_mm256_castsi256_ps(ti), _mm256_castsi256_ps(bi), low));
        off = _mm256_permute4x64_epi64(off, 0xD8);
        __m256i lo = _mm256_add_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(off)), first);
        __m256i hi = _mm256_add_epi64(_mm256_cvtepu32_epi64(_mm256_extracti128_si256(off, 1)),
                                      _mm256_add_epi64(first, four));
        _mm256_storeu_si256((__m256i *)(void *)(ao + j), lo);
        _mm256_storeu_si256((__m256i *)(void *)(ao + j + 4), hi);
        first = _mm256_add_epi64(first, step);
    }
    *nan_seen |= _mm256_movemask_ps(nan) != 0;
    return j;
}

/* The first n lanes (none for n <= 0) of a pair of 16-lane vectors. */
static inline uint32_t first_lanes(int64_t n)
{
    return n >= 32 ? 0xffffffffu : n <= 0 ? 0 : (1u << n) - 1;
}

/* The even and odd elements of a pair of 16-float vectors. */
#define EVEN16 _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0)
#define ODD16 _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1)

/* Sixteen 2x2 windows from a pair of vectors of their top row (p0v, p1v)
 * and of their bottom row (q0v, q1v), ev and od picking each window's left
 * and right elements: the maxima and, when `codes`, the codes, by the
 * compares max16_planes_f32 describes. */
typedef struct windows16 {
    __m512 best;
    __m512i code;
} windows16;

static inline __attribute__((always_inline, target("avx512f"))) windows16
windows_2x2(__m512 p0v, __m512 p1v, __m512 q0v, __m512 q1v, __m512i ev, __m512i od, bool codes)
{
    __m512 a = _mm512_permutex2var_ps(p0v, ev, p1v);
    __m512 b = _mm512_permutex2var_ps(p0v, od, p1v);
    __m512 c = _mm512_permutex2var_ps(q0v, ev, q1v);
    __m512 d = _mm512_permutex2var_ps(q0v, od, q1v);
    __m512 top = _mm512_max_ps(b, a), bottom = _mm512_max_ps(d, c);
    windows16 w = {.best = _mm512_max_ps(bottom, top), .code = _mm512_setzero_si512()};
    if (codes) {
        const __m512i one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2);
        __mmask16 bgt = _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ);
        __mmask16 dgt = _mm512_cmp_ps_mask(d, c, _CMP_GT_OQ);
        __mmask16 low = _mm512_cmp_ps_mask(bottom, top, _CMP_GT_OQ);
        __m512i ct = _mm512_maskz_mov_epi32(bgt, one);
        __m512i cb = _mm512_mask_mov_epi32(two, dgt, _mm512_add_epi32(two, one));
        w.code = _mm512_mask_mov_epi32(ct, low, cb);
    }
    return w;
}

/* max16_planes_f32 for rows of at most 8 windows (the CNN's second pool: 5),
 * two rows to a vector: lanes 0-7 take row i's windows, 8-15 row i+1's,
 * and one permute closes the gap before the store (the two rows are
 * adjacent in y and in the codes). Each window sees the same maxima and
 * compares as there. */
__attribute__((target("avx512f"))) static bool max16_row_pairs_f32(const float *x,
                                                                   const tg__pool_geom *g,
                                                                   float *y, uint8_t *code,
                                                                   int64_t p0, int64_t p1)
{
    const __m512i one = _mm512_set1_epi32(1);
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    // Lane l of a row pair's vectors: element 2l of the first row's run
    // (l < 8), or 2(l - 8) of the second's, and its right neighbour.
    int32_t even[16], close[16];
    for (int l = 0; l < 16; l++) {
        even[l] = l < 8 ? 2 * l : 16 + 2 * (l - 8);
        close[l] = l < OW ? l : (int32_t)(8 + l - OW); // lanes past 2 OW unused
    }
    const __m512i ev = _mm512_loadu_si512(even), od = _mm512_add_epi32(ev, one);
    const __m512i shut = _mm512_loadu_si512(close);
    const __mmask16 run = (__mmask16)first_lanes(2 * OW);
    __mmask16 nan = 0;
    for (int64_t p = p0; p < p1; p++)
        for (int64_t i = 0; i < OH; i += 2) {
            const float *r0 = x + (p * H + 2 * i) * W, *r1 = r0 + W;
            bool both = i + 1 < OH;
            __mmask16 second = both ? run : 0;
            __m512 p0v = _mm512_maskz_loadu_ps(run, r0);
            __m512 q0v = _mm512_maskz_loadu_ps(run, r1);
            __m512 p1v = _mm512_maskz_loadu_ps(second, both ? r0 + 2 * W : r0);
            __m512 q1v = _mm512_maskz_loadu_ps(second, both ? r1 + 2 * W : r1);
            windows16 w = windows_2x2(p0v, p1v, q0v, q1v, ev, od, code != NULL);
            int64_t at = (p * OH + i) * OW;
            __mmask16 out = (__mmask16)first_lanes((both ? 2 : 1) * OW);
            _mm512_mask_storeu_ps(y + at, out, _mm512_permutexvar_ps(shut, w.best));
            if (code)
                _mm512_mask_cvtepi32_storeu_epi8(code + at, out,
                                                 _mm512_permutexvar_epi32(shut, w.code));
            nan |= _mm512_cmp_ps_mask(p0v, p1v, _CMP_UNORD_Q) |
                   _mm512_cmp_ps_mask(q0v, q1v, _CMP_UNORD_Q);
        }
    return nan != 0;
}

/* Planes [p0, p1) sixteen windows at a time with AVX-512, values and, when
 * code is not NULL, codes (tg__maxpool_codes_f32; no indices): the same
 * maxima by max_ps, a row's end by masks (the zeros read past it are no
 * NaNs), so no scalar tail; whole planes in one call, as the CNN's rows are
 * short (13 and 5 windows) and a call per row cost a third of the time. Of
 * a, b (top row) and c, d, the top's choice is b when b > a, the bottom's d
 * when d > c, and the bottom wins when bottom > top (strict: the first
 * maximum stays). Returns whether a NaN was seen (then the caller redoes the
 * planes in the general loop). */
__attribute__((target("avx512f"))) static bool max16_planes_f32(const float *x,
                                                                const tg__pool_geom *g,
                                                                float *y, uint8_t *code,
                                                                int64_t p0, int64_t p1)
{
    if (g->OW <= 8)
        return max16_row_pairs_f32(x, g, y, code, p0, p1);
    const __m512i even = EVEN16, odd = ODD16;
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    __mmask16 nan = 0;
    for (int64_t p = p0; p < p1; p++)
        for (int64_t i = 0; i < OH; i++) {
            const float *r0 = x + (p * H + 2 * i) * W, *r1 = r0 + W;
            float *yo = y + (p * OH + i) * OW;
            for (int64_t j = 0; j < OW; j += 16) {
                uint32_t in = first_lanes(2 * (OW - j));
                __mmask16 lo = (__mmask16)in, hi = (__mmask16)(in >> 16);
                __m512 p0v = _mm512_maskz_loadu_ps(lo, r0 + 2 * j);
                __m512 p1v = _mm512_maskz_loadu_ps(hi, r0 + 2 * j + 16);
                __m512 q0v = _mm512_maskz_loadu_ps(lo, r1 + 2 * j);
                __m512 q1v = _mm512_maskz_loadu_ps(hi, r1 + 2 * j + 16);
                windows16 w = windows_2x2(p0v, p1v, q0v, q1v, even, odd, code != NULL);
                __mmask16 out = (__mmask16)first_lanes(OW - j);
                _mm512_mask_storeu_ps(yo + j, out, w.best);
                if (code)
                    _mm512_mask_cvtepi32_storeu_epi8(code + (yo - y) + j, out, w.code);
                nan |= _mm512_cmp_ps_mask(p0v, p1v, _CMP_UNORD_Q) |
                       _mm512_cmp_ps_mask(q0v, q1v, _CMP_UNORD_Q);
            }
        }
    return nan != 0;
}
#endif

static int64_t vec_2x2_f32(const float *r0, const float *r1, const tg__pool_geom *g,
                           int64_t at, float *yo, int64_t *ao, bool *nan_seen, int kind)
{
    if (kind == POOL_SCALAR || (ao && g->W >= (1 << 30)))
        return 0;
    int32_t W = ao ? (int32_t)g->W : 0;
    int64_t j = 0;
#ifdef POOL_X86
    if (kind >= POOL_AVX2) // AVX-512 here only for the indices
        j = vec8_2x2_f32(r0, r1, W, g->OW, at, yo, ao, nan_seen);
#endif
    v8i nan = {0}, zero = {0};
    v2l first = {at + 2 * j, at + 2 * j + 2};
    for (; j + 4 <= g->OW; j += 4) {
        v8f p0, p1, q0, q1;
        memcpy(&p0, r0 + 2 * j, sizeof p0);
        memcpy(&p1, r0 + 2 * j + 4, sizeof p1);
        memcpy(&q0, r1 + 2 * j, sizeof q0);
        memcpy(&q1, r1 + 2 * j + 4, sizeof q1);
        v8f a = EVEN(p0, p1), b = ODD(p0, p1), c = EVEN(q0, q1), d = ODD(q0, q1);
        v8i bgt = b > a, dgt = d > c;
        v8f top = PICK(bgt, b, a), bottom = PICK(dgt, d, c);
        v8i low = bottom > top;
        v8f best = PICK(low, bottom, top);
        memcpy(yo + j, &best, sizeof best);
        nan |= (a != a) | (b != b) | (c != c) | (d != d);
        if (!ao)
            continue;
        v8i off = (low & (W + (dgt & 1))) | (~low & (bgt & 1));
        // The indices at + 2 (j + l) + off[l] as two pairs of int64 (off is
        // at most W + 1, so widening is interleaving with zeros).
        v2l a01 = (v2l)__builtin_shufflevector(off, zero, 0, 4, 1, 5) + first;
        v2l a23 = (v2l)__builtin_shufflevector(off, zero, 2, 6, 3, 7) + first + 4;
        memcpy(ao + j, &a01, sizeof a01);
        memcpy(ao + j + 2, &a23, sizeof a23);
        first += 8;
    }
    for (int l = 0; l < 4; l++)
        *nan_seen |= nan[l] != 0;
    return j;
}
#define VEC_2X2_float(r0, r1, g, at, yo, ao, nan, kind)                            \
    vec_2x2_f32(r0, r1, g, at, yo, ao, nan, kind)
#else
#define VEC_2X2_float(r0, r1, g, at, yo, ao, nan, kind) 0
#endif
#define VEC_2X2_double(r0, r1, g, at, yo, ao, nan, kind) 0

bool tg__pool_plain_2x2(const tg__pool_geom *g)
{
    // Bottom/right padding shows as OH or OW reaching past the image.
    return g->KH == 2 && g->KW == 2 && g->SH == 2 && g->SW == 2 && g->PT == 0 && g->PL == 0 &&
           2 * g->OH <= g->H && 2 * g->OW <= g->W;
}

/* Planes [p0, p1), with the vector code of `kind`. NaN wins a window (and
 * propagates), like the other frameworks. argmax may be NULL (no indices
 * wanted). */
static void maxpool_planes_f32(const float *x, const tg__pool_geom *g, float *y, int64_t *argmax,
                               int kind, int64_t p0, int64_t p1)
{
    bool nan_seen = false;
    if (tg__pool_plain_2x2(g)) {
#ifdef POOL_X86
        if (kind == POOL_AVX512 && !argmax)
            nan_seen = max16_planes_f32(x, g, y, NULL, p0, p1);
        else
#endif
        {
            MAXPOOL_2X2_BODY(float)
        }
        if (!nan_seen)
            return;
    }
    MAXPOOL_BODY(float)
}

static void maxpool_planes_f64(const double *x, const tg__pool_geom *g, double *y,
                               int64_t *argmax, int kind, int64_t p0, int64_t p1)
{
    (void)kind; // float32 only has vector code
    bool nan_seen = false;
    if (tg__pool_plain_2x2(g)) {
        MAXPOOL_2X2_BODY(double)
        if (!nan_seen)
            return;
    }
    MAXPOOL_BODY(double)
}

/* ---- with codes (kernels.h) ---- */

/* The general loop's choice, as a place in the window. */
static void codes_planes(const float *x, const tg__pool_geom *g, float *y, uint8_t *code,
                         int64_t p0, int64_t p1)
{
    for (int64_t p = p0; p < p1; p++) {
        const float *plane = x + p * g->H * g->W;
        for (int64_t i = 0; i < g->OH; i++)
            for (int64_t j = 0; j < g->OW; j++) {
                WINDOW(g, i, j)
                WINDOW_MAX(float, plane, g)
                int64_t k = (p * g->OH + i) * g->OW + j, r = at / g->W, c = at % g->W;
                y[k] = best;
                code[k] = (uint8_t)(at < 0 ? 0
                                           : (r - (i * g->SH - g->PT)) * g->KW +
                                                 (c - (j * g->SW - g->PL)));
            }
    }
}

void tg__maxpool_codes_f32_variant(int variant, const float *x, const tg__pool_geom *g,
                                   float *y, uint8_t *code)
{
    int kind = variant < 0 ? widest_kind() : variant_kind(variant);
#ifdef POOL_X86
    if (kind == POOL_AVX512 && tg__pool_plain_2x2(g) &&
        !max16_planes_f32(x, g, y, code, 0, g->planes))
        return;
#endif
    (void)kind;
    codes_planes(x, g, y, code, 0, g->planes);
}

void tg__maxpool_codes_f32(const float *x, const tg__pool_geom *g, float *y, uint8_t *code)
{
    tg__maxpool_codes_f32_variant(-1, x, g, y, code);
}

/* Threads take whole planes: every output is one plane's, computed the same
 * way by whichever thread, so any thread count gives the same bytes. */
typedef struct maxpool_job {
    const void *x;
    const tg__pool_geom *g;
    void *y;
    int64_t *argmax;
    int64_t per_task;
    int kind;
    bool f64;
} maxpool_job;

static void maxpool_task(void *ctx, int64_t t, void *ws)
{
    (void)ws;
    const maxpool_job *j = ctx;
    int64_t p0 = t * j->per_task, p1 = p0 + j->per_task;
    if (p1 > j->g->planes)
        p1 = j->g->planes;
    if (j->f64)
        maxpool_planes_f64(j->x, j->g, j->y, j->argmax, j->kind, p0, p1);
    else
        maxpool_planes_f32(j->x, j->g, j->y, j->argmax, j->kind, p0, p1);
}

static void maxpool(const void *x, const tg__pool_geom *g, void *y, int64_t *argmax, bool f64,
                    int kind)
{
    if (g->planes <= 0)
        return;
    // About one unit of work per input element a window reads.
    double work = (double)g->planes * (double)(g->OH * g->OW) * (double)(g->KH * g->KW);
    int nt = tg__threads_for(work);
    maxpool_job j = {x, g, y, argmax, g->planes, kind, f64};
    if (nt > 1)
        j.per_task = (g->planes + 2 * nt - 1) / (2 * nt);
    tg__parallel_for((g->planes + j.per_task - 1) / j.per_task, 0, maxpool_task, &j);
}

void tg__maxpool_f32(const float *x, const tg__pool_geom *g, float *y, int64_t *argmax)
{
    maxpool(x, g, y, argmax, false, widest_kind());
}

void tg__maxpool_f32_variant(int v, const float *x, const tg__pool_geom *g, float *y,
                             int64_t *argmax)
{
    maxpool(x, g, y, argmax, false, variant_kind(v));
}

void tg__maxpool_f64(const double *x, const tg__pool_geom *g, double *y, int64_t *argmax)
{
    maxpool(x, g, y, argmax, true, POOL_SCALAR);
}

/* ---- the max pool's gradient: dy sent to each window's chosen element ---- */

/* dx = zeros, then dx[argmax[k]] += dy[k] for every k in order: put_add's
 * bytes for the forward's argmax, which is not kept but found again, one
 * plane at a time while the plane is in cache (a plane's windows choose
 * elements of that plane only, so each element sees the same adds in the
 * same order whichever thread takes the plane).
 *
 * The plain 2x2 pool reads x and y: its windows do not overlap, and the
 * forward's choice is the first of the four elements (row-major) that
 * equals y or is a NaN (a NaN wins its window, the first one; otherwise the
 * first maximum: -0 == +0 in the forward's compares as here). All four are
 * written at once, 0 + dy (put_add's add into zeros: -0 becomes +0) for the
 * chosen one and +0 for the others; the row and column that no window reads
 * are cleared. Other geometries run the forward's general search per
 * window and add. */
#define CHOSEN(v, m) ((v) == (m) || (v) != (v))

#define MAXPOOL_BACK_2X2_ROW(T)                                                    \
    for (; j < g->OW; j++) {                                                       \
        T a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j]; /* else the fourth */   \
        T m = yr[j], v = (T)0 + dr[j];                                             \
        int at = CHOSEN(a, m) ? 0 : CHOSEN(b, m) ? 1 : CHOSEN(c, m) ? 2 : 3;       \
        d0[2 * j] = at == 0 ? v : (T)0;                                            \
        d0[2 * j + 1] = at == 1 ? v : (T)0;                                        \
        d1[2 * j] = at == 2 ? v : (T)0;                                            \
        d1[2 * j + 1] = at == 3 ? v : (T)0;                                        \
    }

#define MAXPOOL_BACK_BODY(T)                                                       \
    int64_t hw = g->H * g->W, ohw = g->OH * g->OW;                                 \
    bool plain = tg__pool_plain_2x2(g);                                                  \
    for (int64_t p = p0; p < p1; p++) {                                            \
        const T *xp = x + p * hw, *yp = y + p * ohw, *dyp = dy + p * ohw;          \
        T *plane = dx + p * hw;                                                    \
        if (plain) {                                                               \
            for (int64_t i = 0; i < g->OH; i++) {                                  \
                const T *r0 = xp + 2 * i * g->W, *r1 = r0 + g->W;                  \
                const T *yr = yp + i * g->OW, *dr = dyp + i * g->OW;               \
                T *d0 = plane + 2 * i * g->W, *d1 = d0 + g->W;                     \
                int64_t j = BACK_2X2_##T(r0, r1, yr, dr, g->OW, d0, d1, kind);     \
                MAXPOOL_BACK_2X2_ROW(T)                                            \
                /* A loop, not memset: the column is 0 or 1 wide (a call */        \
                /* per row cost more than the CNN's 5 windows a row). */           \
                for (int64_t c = 2 * g->OW; c < g->W; c++)                         \
                    d0[c] = d1[c] = 0;                                             \
            }                                                                      \
            memset(plane + 2 * g->OH * g->W, 0,                                    \
                   (size_t)((g->H - 2 * g->OH) * g->W) * sizeof(T));               \
            continue;                                                              \
        }                                                                          \
        memset(plane, 0, (size_t)hw * sizeof(T));                                  \
        for (int64_t i = 0; i < g->OH; i++)                                        \
            for (int64_t j = 0; j < g->OW; j++) {                                  \
                WINDOW(g, i, j)                                                    \
                WINDOW_MAX(T, xp, g)                                               \
                plane[at < 0 ? 0 : at] += dyp[i * g->OW + j];                      \
            }                                                                      \
    }

/* Four windows at a time for float32 (after eight with AVX2; AVX-512 takes
 * whole planes, back16_planes_f32): the scalar row's rule on vectors, the
 * four results interleaved back into the two rows. Returns the windows
 * done. */
#ifdef POOL_VECTORS
#ifdef POOL_X86
/* The in-lane shuffles give the windows in the order 0 1 4 5 2 3 6 7; y and
 * dy are permuted to match, and then unpacking the a/b (c/d) results pairs
 * them back in order without a cross-lane step. */
#define PAIRS_0213(u) _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(u), 0xD8))
#define CHOSEN8(u, m)                                                              \
    _mm256_or_ps(_mm256_cmp_ps(u, m, _CMP_EQ_OQ), _mm256_cmp_ps(u, u, _CMP_UNORD_Q))
__attribute__((target("avx2"))) static int64_t back8_2x2_f32(const float *r0, const float *r1,
                                                              const float *yr, const float *dr,
                                                              int64_t OW, float *d0, float *d1)
{
    const __m256 zero = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= OW; j += 8) {
        __m256 p0 = _mm256_loadu_ps(r0 + 2 * j), p1 = _mm256_loadu_ps(r0 + 2 * j + 8);
        __m256 q0 = _mm256_loadu_ps(r1 + 2 * j), q1 = _mm256_loadu_ps(r1 + 2 * j + 8);
        __m256 m = PAIRS_0213(_mm256_loadu_ps(yr + j));
        __m256 v = _mm256_add_ps(PAIRS_0213(_mm256_loadu_ps(dr + j)), zero);
        __m256 a = _mm256_shuffle_ps(p0, p1, _MM_SHUFFLE(2, 0, 2, 0));
        __m256 b = _mm256_shuffle_ps(p0, p1, _MM_SHUFFLE(3, 1, 3, 1));
        __m256 c = _mm256_shuffle_ps(q0, q1, _MM_SHUFFLE(2, 0, 2, 0)); // else the fourth
        __m256 ea = CHOSEN8(a, m), eb = CHOSEN8(b, m), ec = CHOSEN8(c, m);
        __m256 ab = _mm256_or_ps(ea, eb);
        __m256 da = _mm256_and_ps(ea, v), db = _mm256_andnot_ps(ea, _mm256_and_ps(eb, v));
        __m256 dc = _mm256_andnot_ps(ab, _mm256_and_ps(ec, v));
        __m256 dd = _mm256_andnot_ps(_mm256_or_ps(ab, ec), v);
        _mm256_storeu_ps(d0 + 2 * j, _mm256_unpacklo_ps(da, db));
        _mm256_storeu_ps(d0 + 2 * j + 8, _mm256_unpackhi_ps(da, db));
        _mm256_storeu_ps(d1 + 2 * j, _mm256_unpacklo_ps(dc, dd));
        _mm256_storeu_ps(d1 + 2 * j + 8, _mm256_unpackhi_ps(dc, dd));
    }
    return j;
}

/* Planes [p0, p1) with AVX-512, whole rows by masks: past a row's windows
 * zeros are read, so there the results are +0, and the stores go on to the
 * row's end, clearing the column no window reads; the row no window reads
 * is cleared too, all without a call (the CNN's planes are small). */
__attribute__((target("avx512f"))) static void back16_planes_f32(const float *x, const float *y,
                                                                 const float *dy,
                                                                 const tg__pool_geom *g,
                                                                 float *dx, int64_t p0,
                                                                 int64_t p1)
{
    const __m512i even = EVEN16, odd = ODD16;
    // Element l of the first (second) half of the row pairs a[l] with b[l]
    // (a[8 + l] with b[8 + l]).
    const __m512i lo_ab = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi_ab = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                           24, 8);
    const __m512 zero = _mm512_setzero_ps();
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    for (int64_t p = p0; p < p1; p++) {
        for (int64_t i = 0; i < OH; i++) {
            const float *r0 = x + (p * H + 2 * i) * W, *r1 = r0 + W;
            const float *yr = y + (p * OH + i) * OW, *dr = dy + (p * OH + i) * OW;
            float *d0 = dx + (p * H + 2 * i) * W, *d1 = d0 + W;
            int64_t j = 0;
            for (; j < OW; j += 16) {
                uint32_t in = first_lanes(2 * (OW - j)), st = first_lanes(W - 2 * j);
                __mmask16 lo = (__mmask16)in, hi = (__mmask16)(in >> 16);
                __mmask16 out = (__mmask16)first_lanes(OW - j);
                __m512 p0v = _mm512_maskz_loadu_ps(lo, r0 + 2 * j);
                __m512 p1v = _mm512_maskz_loadu_ps(hi, r0 + 2 * j + 16);
                __m512 q0v = _mm512_maskz_loadu_ps(lo, r1 + 2 * j);
                __m512 q1v = _mm512_maskz_loadu_ps(hi, r1 + 2 * j + 16);
                __m512 m = _mm512_maskz_loadu_ps(out, yr + j);
                __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(out, dr + j), zero);
                __m512 a = _mm512_permutex2var_ps(p0v, even, p1v);
                __m512 b = _mm512_permutex2var_ps(p0v, odd, p1v);
                __m512 c = _mm512_permutex2var_ps(q0v, even, q1v); // else the fourth
                __mmask16 ea = _mm512_cmp_ps_mask(a, m, _CMP_EQ_OQ) |
                               _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
                __mmask16 eb = _mm512_cmp_ps_mask(b, m, _CMP_EQ_OQ) |
                               _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q);
                __mmask16 ec = _mm512_cmp_ps_mask(c, m, _CMP_EQ_OQ) |
                               _mm512_cmp_ps_mask(c, c, _CMP_UNORD_Q);
                __m512 da = _mm512_maskz_mov_ps(ea, v), db = _mm512_maskz_mov_ps(~ea & eb, v);
                __m512 dc = _mm512_maskz_mov_ps(~(ea | eb) & ec, v);
                __m512 dd = _mm512_maskz_mov_ps(~(ea | eb | ec), v);
                __mmask16 s0 = (__mmask16)st, s1 = (__mmask16)(st >> 16);
                _mm512_mask_storeu_ps(d0 + 2 * j, s0, _mm512_permutex2var_ps(da, lo_ab, db));
                _mm512_mask_storeu_ps(d0 + 2 * j + 16, s1, _mm512_permutex2var_ps(da, hi_ab, db));
                _mm512_mask_storeu_ps(d1 + 2 * j, s0, _mm512_permutex2var_ps(dc, lo_ab, dd));
                _mm512_mask_storeu_ps(d1 + 2 * j + 16, s1, _mm512_permutex2var_ps(dc, hi_ab, dd));
            }
            // What the last vector did not reach (rare: a whole vector of
            // windows and more than one unread column, or no windows).
            for (int64_t c = 2 * (j - 16) + 32; c < W; c++)
                d0[c] = d1[c] = 0;
        }
        for (float *row = dx + (p * H + 2 * OH) * W; row < dx + (p + 1) * H * W; row += W)
            for (int64_t c = 0; c < W; c += 16)
                _mm512_mask_storeu_ps(row + c, (__mmask16)first_lanes(W - c), zero);
    }
}
#endif

static int64_t back_2x2_f32(const float *r0, const float *r1, const float *yr, const float *dr,
                            int64_t OW, float *d0, float *d1, int kind)
{
    if (kind == POOL_SCALAR)
        return 0;
    int64_t j = 0;
#ifdef POOL_X86
    if (kind >= POOL_AVX2) // AVX-512 takes whole planes elsewhere
        j = back8_2x2_f32(r0, r1, yr, dr, OW, d0, d1);
#endif
    const v8f zero = {0};
    for (; j + 4 <= OW; j += 4) {
        v8f p0, p1, q0, q1, m, v;
        memcpy(&p0, r0 + 2 * j, sizeof p0);
        memcpy(&p1, r0 + 2 * j + 4, sizeof p1);
        memcpy(&q0, r1 + 2 * j, sizeof q0);
        memcpy(&q1, r1 + 2 * j + 4, sizeof q1);
        memcpy(&m, yr + j, sizeof m);
        memcpy(&v, dr + j, sizeof v);
        v = v + zero;
        v8f a = EVEN(p0, p1), b = ODD(p0, p1), c = EVEN(q0, q1); // else the fourth
        v8i ea = (a == m) | (a != a), eb = (b == m) | (b != b), ec = (c == m) | (c != c);
        v8f da = PICK(ea, v, zero), db = PICK(~ea & eb, v, zero);
        v8f dc = PICK(~(ea | eb) & ec, v, zero), dd = PICK(~(ea | eb | ec), v, zero);
        v8f o0 = __builtin_shufflevector(da, db, 0, 4, 1, 5);
        v8f o1 = __builtin_shufflevector(da, db, 2, 6, 3, 7);
        v8f o2 = __builtin_shufflevector(dc, dd, 0, 4, 1, 5);
        v8f o3 = __builtin_shufflevector(dc, dd, 2, 6, 3, 7);
        memcpy(d0 + 2 * j, &o0, sizeof o0);
        memcpy(d0 + 2 * j + 4, &o1, sizeof o1);
        memcpy(d1 + 2 * j, &o2, sizeof o2);
        memcpy(d1 + 2 * j + 4, &o3, sizeof o3);
    }
    return j;
}
#define BACK_2X2_float(r0, r1, yr, dr, OW, d0, d1, kind)                           \
    back_2x2_f32(r0, r1, yr, dr, OW, d0, d1, kind)
#else
#define BACK_2X2_float(r0, r1, yr, dr, OW, d0, d1, kind) 0
#endif
#define BACK_2X2_double(r0, r1, yr, dr, OW, d0, d1, kind) 0

static void maxpool_back_planes_f32(const float *x, const float *y, const float *dy,
                                    const tg__pool_geom *g, float *dx, int kind, int64_t p0,
                                    int64_t p1)
{
#ifdef POOL_X86
    if (kind == POOL_AVX512 && tg__pool_plain_2x2(g)) {
        back16_planes_f32(x, y, dy, g, dx, p0, p1);
        return;
    }
#endif
    MAXPOOL_BACK_BODY(float)
}

static void maxpool_back_planes_f64(const double *x, const double *y, const double *dy,
                                    const tg__pool_geom *g, double *dx, int kind, int64_t p0,
                                    int64_t p1)
{
    (void)kind; // float32 only has vector code
    MAXPOOL_BACK_BODY(double)
}

/* Threads take whole planes, as in the forward pass. */
typedef struct maxpool_back_job {
    const void *x, *y, *dy;
    const tg__pool_geom *g;
    void *dx;
    int64_t per_task;
    int kind;
    bool f64;
} maxpool_back_job;

static void maxpool_back_task(void *ctx, int64_t t, void *ws)
{
    (void)ws;
    const maxpool_back_job *j = ctx;
    int64_t p0 = t * j->per_task, p1 = p0 + j->per_task;
    if (p1 > j->g->planes)
        p1 = j->g->planes;
    if (j->f64)
        maxpool_back_planes_f64(j->x, j->y, j->dy, j->g, j->dx, j->kind, p0, p1);
    else
        maxpool_back_planes_f32(j->x, j->y, j->dy, j->g, j->dx, j->kind, p0, p1);
}

static void maxpool_back(const void *x, const void *y, const void *dy, const tg__pool_geom *g,
                         void *dx, bool f64, int kind)
{
    if (g->planes <= 0)
        return;
    // About one unit of work per element of dx written.
    int nt = tg__threads_for((double)g->planes * (double)(g->H * g->W));
    maxpool_back_job j = {x, y, dy, g, dx, g->planes, kind, f64};
    if (nt > 1)
        j.per_task = (g->planes + 2 * nt - 1) / (2 * nt);
    tg__parallel_for((g->planes + j.per_task - 1) / j.per_task, 0, maxpool_back_task, &j);
}

void tg__maxpool_backward_f32(const float *x, const float *y, const float *dy,
                              const tg__pool_geom *g, float *dx)
{
    maxpool_back(x, y, dy, g, dx, false, widest_kind());
}

void tg__maxpool_backward_f32_variant(int v, const float *x, const float *y, const float *dy,
                                      const tg__pool_geom *g, float *dx)
{
    maxpool_back(x, y, dy, g, dx, false, variant_kind(v));
}

void tg__maxpool_backward_f64(const double *x, const double *y, const double *dy,
                              const tg__pool_geom *g, double *dx)
{
    maxpool_back(x, y, dy, g, dx, true, POOL_SCALAR);
}

#define AVGPOOL_BODY(T)                                                            \
    for (int64_t p = 0; p < g->planes; p++) {                                      \
        const T *plane = x + p * g->H * g->W;                                      \
        for (int64_t i = 0; i < g->OH; i++)                                        \
            for (int64_t j = 0; j < g->OW; j++) {                                  \
                WINDOW(g, i, j)                                                    \
                double s = 0;                                                      \
                for (int64_t r = y0; r < y1; r++)                                  \
                    for (int64_t c = x0; c < x1; c++)                              \
                        s += plane[r * g->W + c];                                  \
                int64_t count = include_pad ? full : (y1 - y0) * (x1 - x0);        \
                y[(p * g->OH + i) * g->OW + j] = (T)(count > 0 ? s / (double)count : 0); \
            }                                                                      \
    }

void tg__avgpool_f32(const float *x, const tg__pool_geom *g, bool include_pad, float *y)
{
    AVGPOOL_BODY(float)
}

void tg__avgpool_f64(const double *x, const tg__pool_geom *g, bool include_pad, double *y)
{
    AVGPOOL_BODY(double)
}

#define AVGPOOL_ADJOINT_BODY(T)                                                    \
    for (int64_t p = 0; p < g->planes; p++) {                                      \
        T *plane = dx + p * g->H * g->W;                                           \
        for (int64_t i = 0; i < g->OH; i++)                                        \
            for (int64_t j = 0; j < g->OW; j++) {                                  \
                WINDOW(g, i, j)                                                    \
                int64_t count = include_pad ? full : (y1 - y0) * (x1 - x0);        \
                if (count <= 0)                                                    \
                    continue;                                                      \
                T share = (T)(dy[(p * g->OH + i) * g->OW + j] / (double)count);    \
                for (int64_t r = y0; r < y1; r++)                                  \
                    for (int64_t c = x0; c < x1; c++)                              \
                        plane[r * g->W + c] += share;                              \
            }                                                                      \
    }

void tg__avgpool_adjoint_f32(const float *dy, const tg__pool_geom *g, bool include_pad, float *dx)
{
    AVGPOOL_ADJOINT_BODY(float)
}

void tg__avgpool_adjoint_f64(const double *dy, const tg__pool_geom *g, bool include_pad,
                             double *dx)
{
    AVGPOOL_ADJOINT_BODY(double)
}
