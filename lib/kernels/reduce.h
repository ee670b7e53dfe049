/* reduce.h - reduction and normalisation kernels on raw arrays: sum, max, min and
 * prod over a set of axes, softmax/log-softmax along one axis. */
#ifndef TG_KERNELS_REDUCE_H
#define TG_KERNELS_REDUCE_H

#include <stdbool.h>
#include <stdint.h>

/* x (ndim, shape), contiguous; bit d of `reduced` marks axis d. out holds the
 * kept dims in order (contiguous); it is overwritten. */
void tg__reduce_sum_f32(const float *x, int ndim, const int64_t *shape, unsigned reduced,
                        float *out);
void tg__reduce_sum_f64(const double *x, int ndim, const int64_t *shape, unsigned reduced,
                        double *out);
/* The sum of one contiguous run of n values, in double, in the order every
 * reduction of a run (the last axes) takes: out[k] of a sum whose reduced
 * axes come last is (T)(+0 + this), and over several runs, each run's value
 * rounded to T and added in turn. */
double tg__sum_run_f32(const float *x, int64_t n);
double tg__sum_run_f64(const double *x, int64_t n);
/* count runs of n values, run r at x + r * stride: out[r] is
 * tg__sum_run_f32 of run r, to the bit (sum_runs.c). _variant runs one
 * variant (0: the plain loop; 1: AVX-512 where the CPU has it; -1: the
 * widest), of tg__sum_runs_variants(), for the tests. */
void tg__sum_runs_f32(const float *x, int64_t n, int64_t stride, int64_t count, double *out);
void tg__sum_runs_f32_variant(int variant, const float *x, int64_t n, int64_t stride,
                              int64_t count, double *out);
int tg__sum_runs_variants(void);
/* The sum over axis 0 of a small R x K array (R * K <= 4096), out[k] for
 * k < K: tg__reduce_sum's bytes for that case without its shape analysis (a
 * bias gradient in a small network's step). */
void tg__sum_rows_f32(const float *x, int64_t R, int64_t K, float *out);
void tg__sum_rows_f64(const double *x, int64_t R, int64_t K, double *out);
/* The same for the maximum; argmax[k] is the flat index into x of the first
 * (row-major) maximal element of output k. */
void tg__reduce_max_f32(const float *x, int ndim, const int64_t *shape, unsigned reduced,
                        float *out, int64_t *argmax);
void tg__reduce_max_f64(const double *x, int ndim, const int64_t *shape, unsigned reduced,
                        double *out, int64_t *argmax);

/* The minimum, argmin[k] the first minimal element (NaN wins, as above). */
void tg__reduce_min_f32(const float *x, int ndim, const int64_t *shape, unsigned reduced,
                        float *out, int64_t *argmin);
void tg__reduce_min_f64(const double *x, int ndim, const int64_t *shape, unsigned reduced,
                        double *out, int64_t *argmin);
/* The product (1 for an empty group), accumulated in double in scratch
 * (one double per output element). */
void tg__reduce_prod_f32(const float *x, int ndim, const int64_t *shape, unsigned reduced,
                         float *out, double *scratch);
void tg__reduce_prod_f64(const double *x, int ndim, const int64_t *shape, unsigned reduced,
                         double *out, double *scratch);

/* x viewed as (outer, n, inner), normalised along n: y = softmax or
 * log_softmax, with the maximum subtracted so large inputs do not overflow. */
void tg__softmax_f32(const float *x, float *y, int64_t outer, int64_t n, int64_t inner,
                     int take_log);
void tg__softmax_f64(const double *x, double *y, int64_t outer, int64_t n, int64_t inner,
                     int take_log);

#endif
