/* conv_rows.c - strided float32 row copies and adds for im2col and col2im
 * (see conv_rows.h), one variant per instruction set. */
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "kernels/conv_rows.h"

/* ---- the baseline: 16-byte moves (SSE2) ---- */

/* One run of n floats. A memcpy call per run cost as much as the copying, so
 * these are inline 16-byte moves, the last one overlapping the one before it
 * when n is not a multiple of 4: every byte is written with its source value
 * and no byte outside the run is touched. Long runs go to memcpy. */
static inline void copy_run(float *d, const float *s, int64_t n)
{
    size_t bytes = (size_t)n * sizeof(float);
    if (n >= 64) {
        memcpy(d, s, bytes);
    } else if (n >= 4) {
        int64_t k = 0;
        for (; k + 4 <= n; k += 4)
            memcpy(d + k, s + k, 16);
        if (k < n)
            memcpy(d + n - 4, s + n - 4, 16);
    } else if (n >= 2) {
        memcpy(d, s, 8);
        memcpy(d + n - 2, s + n - 2, 8);
    } else if (n == 1) {
        memcpy(d, s, 4); // float64 im2col moves its values as pairs of floats
    }
}

static void copy_rows_base(float *dst, int64_t ds, const float *src, int64_t ss, int64_t rows,
                           int64_t n)
{
    for (int64_t r = 0; r < rows; r++)
        copy_run(dst + r * ds, src + r * ss, n);
}

/* d[0..n) += s[0..n) with 16-byte adds, the last one overlapping the one
 * before when n is not a multiple of 4. Every sum is formed from d's values
 * before any store (the overlapped lanes are computed twice from the same
 * operands, so stored twice with one value). */
typedef float v4f __attribute__((vector_size(16), aligned(4)));

static inline void add_run(float *d, const float *s, int64_t n)
{
    if (n < 4) {
        for (int64_t j = 0; j < n; j++)
            d[j] += s[j];
        return;
    }
    v4f a, b, last;
    memcpy(&a, d + n - 4, sizeof a);
    memcpy(&b, s + n - 4, sizeof b);
    last = a + b;
    int64_t j = 0;
    for (; j + 4 < n; j += 4) {
        memcpy(&a, d + j, sizeof a);
        memcpy(&b, s + j, sizeof b);
        a = a + b;
        memcpy(d + j, &a, sizeof a);
    }
    memcpy(d + n - 4, &last, sizeof last);
}

/* Tap by tap, channel by channel: consecutive runs go to different rows
 * (a tap's run loaded right after the previous tap stored the same bytes
 * shifted by a float could not be forwarded, and stalled). */
static void add_taps_base(float *dst, int64_t ds, int64_t dr, const float *cols, int64_t cs,
                          int64_t cr, int64_t planes, int64_t rows, const tg__conv_taps *taps)
{
    for (int64_t t = 0; t < taps->n; t++) {
        int64_t lo = taps->lo[t], n = taps->hi[t] - lo;
        if (n <= 0)
            continue;
        float *d = dst + taps->shift[t] + lo;
        const float *s = cols + taps->src[t] + lo;
        for (int64_t p = 0; p < planes; p++)
            for (int64_t r = 0; r < rows; r++)
                add_run(d + p * ds + r * dr, s + p * cs + r * cr, n);
    }
}

static const tg__conv_rows base = {"sse2", copy_rows_base, add_taps_base};

/* ---- AVX-512: masked loads and stores, 16 floats at a time ---- */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_AVX512 1

#define AVX512 __attribute__((target("avx512f")))

/* Lanes [0, n % 16) when that is not 0, else all 16. */
AVX512 static inline __mmask16 tail_mask(int64_t n)
{
    int64_t t = n & 15;
    return (__mmask16)(t ? (1u << t) - 1 : 0xFFFFu);
}

AVX512 static void copy_rows_avx512(float *dst, int64_t ds, const float *src, int64_t ss,
                                    int64_t rows, int64_t n)
{
    if (n <= 0)
        return;
    __mmask16 last = tail_mask(n);
    int64_t body = (n - 1) / 16 * 16; // whole vectors before the last, masked one
    for (int64_t r = 0; r < rows; r++) {
        float *d = dst + r * ds;
        const float *s = src + r * ss;
        for (int64_t k = 0; k < body; k += 16)
            _mm512_storeu_ps(d + k, _mm512_loadu_ps(s + k));
        _mm512_mask_storeu_ps(d + body, last, _mm512_maskz_loadu_ps(last, s + body));
    }
}

/* Lanes l of a 16-float block at x0 with a <= x0 + l < b. */
static inline uint32_t lanes_between(int64_t a, int64_t b, int64_t x0)
{
    a -= x0;
    b -= x0;
    a = a < 0 ? 0 : a > 16 ? 16 : a;
    b = b < 0 ? 0 : b > 16 ? 16 : b;
    return b <= a ? 0 : (uint32_t)((1ull << b) - (1ull << a));
}

/* Block by block of 16 columns of the row: each tap's lanes there found
 * once (none for an empty tap), then for each channel and row the block is
 * loaded once, each tap's terms added where the tap reaches (merge-masked,
 * so the other lanes keep their bits: adding a zero would turn -0 into +0),
 * and stored once. Blocks, rows and channels are disjoint, so each element
 * sees its taps in order, as in the baseline. */
AVX512 static void add_taps_avx512(float *dst, int64_t ds, int64_t dr, const float *cols,
                                   int64_t cs, int64_t cr, int64_t planes, int64_t rows,
                                   const tg__conv_taps *taps)
{
    int64_t first = INT64_MAX, end = INT64_MIN; // the columns any tap reaches
    for (int64_t t = 0; t < taps->n; t++)
        if (taps->lo[t] < taps->hi[t]) {
            int64_t a = taps->lo[t] + taps->shift[t], b = taps->hi[t] + taps->shift[t];
            first = a < first ? a : first;
            end = b > end ? b : end;
        }
    __mmask16 m[TG__CONV_TAPS];
    const float *at[TG__CONV_TAPS];
    for (int64_t x0 = first; x0 < end; x0 += 16) {
        __mmask16 all = (__mmask16)lanes_between(first, end, x0);
        for (int64_t t = 0; t < taps->n; t++) {
            m[t] = (__mmask16)lanes_between(taps->lo[t] + taps->shift[t],
                                            taps->hi[t] + taps->shift[t], x0);
            // Lanes outside m[t] are not read: this may point before the run.
            at[t] = cols + taps->src[t] + (x0 - taps->shift[t]);
        }
        for (int64_t p = 0; p < planes; p++)
            for (int64_t r = 0; r < rows; r++) {
                float *d = dst + p * ds + r * dr + x0;
                int64_t from = p * cs + r * cr;
                __m512 acc = _mm512_maskz_loadu_ps(all, d);
                for (int64_t t = 0; t < taps->n; t++) {
                    __m512 v = _mm512_maskz_loadu_ps(m[t], at[t] + from);
                    acc = _mm512_mask_add_ps(acc, m[t], acc, v);
                }
                _mm512_mask_storeu_ps(d, all, acc);
            }
    }
}

static const tg__conv_rows avx512 = {"avx512", copy_rows_avx512, add_taps_avx512};
#endif

/* ---- the choice ---- */

static int supported(const tg__conv_rows *v[2])
{
    int n = 0;
    v[n++] = &base;
#ifdef HAVE_AVX512
    if (__builtin_cpu_supports("avx512f"))
        v[n++] = &avx512;
#endif
    return n;
}

int tg__conv_rows_variants(void)
{
    const tg__conv_rows *v[2];
    return supported(v);
}

const tg__conv_rows *tg__conv_rows_variant(int i)
{
    const tg__conv_rows *v[2];
    int n = supported(v);
    return v[i >= 0 && i < n ? i : 0];
}

static _Atomic(const tg__conv_rows *) best; /* NULL until first use */

const tg__conv_rows *tg__conv_rows_best(void)
{
    const tg__conv_rows *b = atomic_load_explicit(&best, memory_order_relaxed);
    if (!b) {
        const tg__conv_rows *v[2];
        b = v[supported(v) - 1];
        atomic_store_explicit(&best, b, memory_order_relaxed);
    }
    return b;
}
