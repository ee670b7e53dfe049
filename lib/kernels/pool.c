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
 * so such a window is redone there). */
#define MAXPOOL_2X2_BODY(T)                                                        \
    for (int64_t p = p0; p < p1; p++) {                                      \
        const T *plane = x + p * g->H * g->W;                                      \
        int64_t base = p * g->H * g->W;                                            \
        for (int64_t i = 0; i < g->OH; i++) {                                      \
            const T *r0 = plane + 2 * i * g->W, *r1 = r0 + g->W;                   \
            T *yo = y + (p * g->OH + i) * g->OW;                                   \
            int64_t *ao = argmax ? argmax + (p * g->OH + i) * g->OW : row_scratch; \
            int64_t j = VEC_2X2_##T(r0, r1, g, base + 2 * i * g->W, yo, ao, &nan_seen); \
            for (; j < g->OW; j++) {                                               \
                T a = r0[2 * j], b = r0[2 * j + 1];                                \
                T c = r1[2 * j], d = r1[2 * j + 1];                                \
                /* Branch-free; strict > keeps the first maximum on ties. */       \
                T top = b > a ? b : a, bottom = d > c ? d : c;                     \
                int64_t ti = b > a ? 1 : 0, bi = d > c ? g->W + 1 : g->W;          \
                yo[j] = bottom > top ? bottom : top;                               \
                ao[j] = base + 2 * i * g->W + 2 * j + (bottom > top ? bi : ti);    \
                nan_seen |= (a != a) | (b != b) | (c != c) | (d != d);             \
            }                                                                      \
        }                                                                          \
    }

/* Four windows at a time for float32 (after eight at a time with AVX2 where
 * the CPU has it): the same compares as the scalar loop above, on vectors
 * (even and odd columns split by shuffles), so the result and the chosen
 * indices are the same bytes. Returns the outputs done; the scalar loop
 * finishes the row. Needs __builtin_shufflevector (GCC 12+, clang) and
 * offsets that fit in 32 bits. */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
/* 16-byte vectors: the baseline's SSE2 has every operation used here (32-byte
 * ones were split badly and ran 3x slower than the scalar loop). */
typedef float v8f __attribute__((vector_size(16), aligned(4)));
typedef int32_t v8i __attribute__((vector_size(16), aligned(4)));
typedef int64_t v2l __attribute__((vector_size(16), aligned(8)));
#define EVEN(u, v) __builtin_shufflevector(u, v, 0, 2, 4, 6)
#define ODD(u, v) __builtin_shufflevector(u, v, 1, 3, 5, 7)
/* m ? yes : no, lane by lane (m all ones or zeros), as bits. */
#define PICK(m, yes, no) ((v8f)(((m) & (v8i)(yes)) | (~(m) & (v8i)(no))))

#if defined(__x86_64__) && (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12))
#include <immintrin.h>
/* Eight windows at a time with AVX2 (chosen by cpuid): the same compares
 * and selects on 32-byte vectors. The in-lane shuffles leave the windows in
 * the order 0 1 4 5 2 3 6 7, which one 64-bit permute of the maxima and one
 * of the offsets undo. Returns the outputs done. */
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
        __m256 bgt = _mm256_cmp_ps(b, a, _CMP_GT_OQ), dgt = _mm256_cmp_ps(d, c, _CMP_GT_OQ);
        __m256 top = _mm256_blendv_ps(a, b, bgt), bottom = _mm256_blendv_ps(c, d, dgt);
        __m256 low = _mm256_cmp_ps(bottom, top, _CMP_GT_OQ);
        __m256 best = _mm256_blendv_ps(top, bottom, low);
        __m256i ti = _mm256_and_si256(_mm256_castps_si256(bgt), one);
        __m256i bi = _mm256_add_epi32(wv, _mm256_and_si256(_mm256_castps_si256(dgt), one));
        __m256i off = _mm256_castps_si256(
            _mm256_blendv_ps(_mm256_castsi256_ps(ti), _mm256_castsi256_ps(bi), low));
        best = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(best), 0xD8));
        off = _mm256_permute4x64_epi64(off, 0xD8);
        _mm256_storeu_ps(yo + j, best);
        __m256i lo = _mm256_add_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(off)), first);
        __m256i hi = _mm256_add_epi64(_mm256_cvtepu32_epi64(_mm256_extracti128_si256(off, 1)),
                                      _mm256_add_epi64(first, four));
        _mm256_storeu_si256((__m256i *)(void *)(ao + j), lo);
        _mm256_storeu_si256((__m256i *)(void *)(ao + j + 4), hi);
        first = _mm256_add_epi64(first, step);
        __m256 na = _mm256_or_ps(_mm256_cmp_ps(a, a, _CMP_UNORD_Q), _mm256_cmp_ps(b, b, _CMP_UNORD_Q));
        __m256 nc = _mm256_or_ps(_mm256_cmp_ps(c, c, _CMP_UNORD_Q), _mm256_cmp_ps(d, d, _CMP_UNORD_Q));
        nan = _mm256_or_ps(nan, _mm256_or_ps(na, nc));
    }
    *nan_seen |= _mm256_movemask_ps(nan) != 0;
    return j;
}

static int pool_kind; /* 0: not chosen yet, 1: SSE2 only, 2: AVX2 */

static bool pool_has_avx2(void)
{
    int kind = __atomic_load_n(&pool_kind, __ATOMIC_RELAXED);
    if (!kind) {
        kind = __builtin_cpu_supports("avx2") ? 2 : 1;
        __atomic_store_n(&pool_kind, kind, __ATOMIC_RELAXED);
    }
    return kind == 2;
}
#define VEC8_2X2(r0, r1, W, OW, at, yo, ao, nan)                                   \
    (pool_has_avx2() ? vec8_2x2_f32(r0, r1, W, OW, at, yo, ao, nan) : 0)
#else
#define VEC8_2X2(r0, r1, W, OW, at, yo, ao, nan) 0
#endif

static int64_t vec_2x2_f32(const float *r0, const float *r1, const tg__pool_geom *g,
                           int64_t at, float *yo, int64_t *ao, bool *nan_seen)
{
    if (g->W >= (1 << 30))
        return 0;
    int32_t W = (int32_t)g->W;
    int64_t j = VEC8_2X2(r0, r1, W, g->OW, at, yo, ao, nan_seen);
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
        v8i off = (low & (W + (dgt & 1))) | (~low & (bgt & 1));
        memcpy(yo + j, &best, sizeof best);
        // The indices at + 2 (j + l) + off[l] as two pairs of int64 (off is
        // at most W + 1, so widening is interleaving with zeros).
        v2l a01 = (v2l)__builtin_shufflevector(off, zero, 0, 4, 1, 5) + first;
        v2l a23 = (v2l)__builtin_shufflevector(off, zero, 2, 6, 3, 7) + first + 4;
        memcpy(ao + j, &a01, sizeof a01);
        memcpy(ao + j + 2, &a23, sizeof a23);
        first += 8;
        nan |= (a != a) | (b != b) | (c != c) | (d != d);
    }
    for (int l = 0; l < 4; l++)
        *nan_seen |= nan[l] != 0;
    return j;
}
#define VEC_2X2_float(r0, r1, g, at, yo, ao, nan) vec_2x2_f32(r0, r1, g, at, yo, ao, nan)
#else
#define VEC_2X2_float(r0, r1, g, at, yo, ao, nan) 0
#endif
#define VEC_2X2_double(r0, r1, g, at, yo, ao, nan) 0

static bool is_plain_2x2(const tg__pool_geom *g)
{
    // Bottom/right padding shows as OH or OW reaching past the image.
    return g->KH == 2 && g->KW == 2 && g->SH == 2 && g->SW == 2 && g->PT == 0 && g->PL == 0 &&
           2 * g->OH <= g->H && 2 * g->OW <= g->W;
}

/* Planes [p0, p1). NaN wins a window (and propagates), like the other
 * frameworks. argmax may be NULL (no indices wanted): the 2x2 path then
 * writes a row's indices to row_scratch (OW of them), or when that is NULL
 * too, the general loop does the work. */
static void maxpool_planes_f32(const float *x, const tg__pool_geom *g, float *y, int64_t *argmax,
                               int64_t *row_scratch, int64_t p0, int64_t p1)
{
    bool nan_seen = false;
    if (is_plain_2x2(g) && (argmax || row_scratch)) {
        MAXPOOL_2X2_BODY(float)
        if (!nan_seen)
            return;
    }
    MAXPOOL_BODY(float)
}

static void maxpool_planes_f64(const double *x, const tg__pool_geom *g, double *y,
                               int64_t *argmax, int64_t *row_scratch, int64_t p0, int64_t p1)
{
    bool nan_seen = false;
    if (is_plain_2x2(g) && (argmax || row_scratch)) {
        MAXPOOL_2X2_BODY(double)
        if (!nan_seen)
            return;
    }
    MAXPOOL_BODY(double)
}

/* Threads take whole planes: every output is one plane's, computed the same
 * way by whichever thread, so any thread count gives the same bytes. */
typedef struct maxpool_job {
    const void *x;
    const tg__pool_geom *g;
    void *y;
    int64_t *argmax;
    int64_t per_task;
    bool f64;
} maxpool_job;

static void maxpool_task(void *ctx, int64_t t, void *ws)
{
    const maxpool_job *j = ctx;
    int64_t p0 = t * j->per_task, p1 = p0 + j->per_task;
    if (p1 > j->g->planes)
        p1 = j->g->planes;
    if (j->f64)
        maxpool_planes_f64(j->x, j->g, j->y, j->argmax, ws, p0, p1);
    else
        maxpool_planes_f32(j->x, j->g, j->y, j->argmax, ws, p0, p1);
}

static void maxpool(const void *x, const tg__pool_geom *g, void *y, int64_t *argmax, bool f64)
{
    // About one unit of work per input element a window reads.
    double work = (double)g->planes * (double)(g->OH * g->OW) * (double)(g->KH * g->KW);
    int nt = tg__threads_for(work);
    maxpool_job j = {x, g, y, argmax, g->planes, f64};
    if (nt > 1)
        j.per_task = (g->planes + 2 * nt - 1) / (2 * nt);
    // Without argmax, one row of indices per thread (the 2x2 path forms them).
    size_t ws = argmax ? 0 : (size_t)g->OW * sizeof *argmax;
    tg__parallel_for((g->planes + j.per_task - 1) / j.per_task, ws, maxpool_task, &j);
}

void tg__maxpool_f32(const float *x, const tg__pool_geom *g, float *y, int64_t *argmax)
{
    if (g->planes > 0)
        maxpool(x, g, y, argmax, false);
}

void tg__maxpool_f64(const double *x, const tg__pool_geom *g, double *y, int64_t *argmax)
{
    if (g->planes > 0)
        maxpool(x, g, y, argmax, true);
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
    bool plain = is_plain_2x2(g);                                                  \
    for (int64_t p = p0; p < p1; p++) {                                            \
        const T *xp = x + p * hw, *yp = y + p * ohw, *dyp = dy + p * ohw;          \
        T *plane = dx + p * hw;                                                    \
        if (plain) {                                                               \
            for (int64_t i = 0; i < g->OH; i++) {                                  \
                const T *r0 = xp + 2 * i * g->W, *r1 = r0 + g->W;                  \
                const T *yr = yp + i * g->OW, *dr = dyp + i * g->OW;               \
                T *d0 = plane + 2 * i * g->W, *d1 = d0 + g->W;                     \
                int64_t j = BACK_2X2_##T(r0, r1, yr, dr, g->OW, d0, d1);           \
                MAXPOOL_BACK_2X2_ROW(T)                                            \
                size_t rest = (size_t)(g->W - 2 * g->OW) * sizeof(T);              \
                memset(d0 + 2 * g->OW, 0, rest);                                   \
                memset(d1 + 2 * g->OW, 0, rest);                                   \
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

/* Four windows at a time for float32: the scalar row's rule on 16-byte
 * vectors, the four results interleaved back into the two rows. Returns the
 * windows done. */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
static int64_t back_2x2_f32(const float *r0, const float *r1, const float *yr, const float *dr,
                            int64_t OW, float *d0, float *d1)
{
    const v8f zero = {0};
    int64_t j = 0;
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
#define BACK_2X2_float(r0, r1, yr, dr, OW, d0, d1) back_2x2_f32(r0, r1, yr, dr, OW, d0, d1)
#else
#define BACK_2X2_float(r0, r1, yr, dr, OW, d0, d1) 0
#endif
#define BACK_2X2_double(r0, r1, yr, dr, OW, d0, d1) 0

static void maxpool_back_planes_f32(const float *x, const float *y, const float *dy,
                                    const tg__pool_geom *g, float *dx, int64_t p0, int64_t p1)
{
    MAXPOOL_BACK_BODY(float)
}

static void maxpool_back_planes_f64(const double *x, const double *y, const double *dy,
                                    const tg__pool_geom *g, double *dx, int64_t p0, int64_t p1)
{
    MAXPOOL_BACK_BODY(double)
}

/* Threads take whole planes, as in the forward pass. */
typedef struct maxpool_back_job {
    const void *x, *y, *dy;
    const tg__pool_geom *g;
    void *dx;
    int64_t per_task;
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
        maxpool_back_planes_f64(j->x, j->y, j->dy, j->g, j->dx, p0, p1);
    else
        maxpool_back_planes_f32(j->x, j->y, j->dy, j->g, j->dx, p0, p1);
}

static void maxpool_back(const void *x, const void *y, const void *dy, const tg__pool_geom *g,
                         void *dx, bool f64)
{
    if (g->planes <= 0)
        return;
    // About one unit of work per element of dx written.
    int nt = tg__threads_for((double)g->planes * (double)(g->H * g->W));
    maxpool_back_job j = {x, y, dy, g, dx, g->planes, f64};
    if (nt > 1)
        j.per_task = (g->planes + 2 * nt - 1) / (2 * nt);
    tg__parallel_for((g->planes + j.per_task - 1) / j.per_task, 0, maxpool_back_task, &j);
}

void tg__maxpool_backward_f32(const float *x, const float *y, const float *dy,
                              const tg__pool_geom *g, float *dx)
{
    maxpool_back(x, y, dy, g, dx, false);
}

void tg__maxpool_backward_f64(const double *x, const double *y, const double *dy,
                              const tg__pool_geom *g, double *dx)
{
    maxpool_back(x, y, dy, g, dx, true);
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
