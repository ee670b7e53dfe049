/* sum_runs.c - many runs summed at once, each to tg__sum_run_f32's bytes: a
 * convolution's bias gradient (one run a channel and image). One run's sum is
 * bound by the latency of its additions (eight running sums in a fixed
 * order, reduce.c), so the AVX-512 variant keeps four runs in flight, each
 * run's eight sums in the eight double lanes of one register, and combines
 * each run as tg__sum_run_f32 does. Variant 0 is the plain loop over
 * tg__sum_run_f32, the definition both are tested against. */
#include "kernels/kernels.h"
#include "kernels/reduce.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RUNS_X86 1
#include <immintrin.h>
#endif

int tg__sum_runs_variants(void) { return tg__cpu_avx512f() ? 2 : 1; }

/* The end of RUN_SUM_BODY (reduce.c): the tail of the run added to sum 0,
 * then the fixed tree. */
static double finish(double acc[8], const float *x, int64_t j, int64_t n)
{
    for (; j < n; j++)
        acc[0] += x[j];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

#ifdef RUNS_X86
__attribute__((target("avx512f"))) static void four_runs_avx512(const float *x, int64_t n,
                                                                int64_t stride, double *out)
{
    const float *x0 = x, *x1 = x + stride, *x2 = x + 2 * stride, *x3 = x + 3 * stride;
    __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm256_loadu_ps(x0 + j)));
        a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_loadu_ps(x1 + j)));
        a2 = _mm512_add_pd(a2, _mm512_cvtps_pd(_mm256_loadu_ps(x2 + j)));
        a3 = _mm512_add_pd(a3, _mm512_cvtps_pd(_mm256_loadu_ps(x3 + j)));
    }
    double acc[4][8];
    _mm512_storeu_pd(acc[0], a0);
    _mm512_storeu_pd(acc[1], a1);
    _mm512_storeu_pd(acc[2], a2);
    _mm512_storeu_pd(acc[3], a3);
    out[0] = finish(acc[0], x0, j, n);
    out[1] = finish(acc[1], x1, j, n);
    out[2] = finish(acc[2], x2, j, n);
    out[3] = finish(acc[3], x3, j, n);
}
#endif

void tg__sum_runs_f32_variant(int variant, const float *x, int64_t n, int64_t stride,
                              int64_t count, double *out)
{
    int64_t r = 0;
#ifdef RUNS_X86
    if (variant != 0 && tg__cpu_avx512f())
        for (; r + 4 <= count; r += 4)
            four_runs_avx512(x + r * stride, n, stride, out + r);
#else
    (void)variant;
#endif
    for (; r < count; r++)
        out[r] = tg__sum_run_f32(x + r * stride, n);
}

void tg__sum_runs_f32(const float *x, int64_t n, int64_t stride, int64_t count, double *out)
{
    tg__sum_runs_f32_variant(-1, x, n, stride, count, out);
}
