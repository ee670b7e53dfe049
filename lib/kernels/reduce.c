/* reduce.c - reductions over any set of axes and softmax along one axis.
 *
 * A reduction first merges neighbouring axes that are both kept or both
 * reduced (x is contiguous, so they are one run), leaving alternating groups.
 * The walk then steps over every group but the last with a counter and runs a
 * plain loop over the last: either a running accumulator (last group reduced)
 * or an elementwise update of an output row (last group kept). */
#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <tgmath.h>

#include "kernels/reduce.h"
#include "thread/pool.h"

#define KMAX 8

typedef struct groups {
    int n;
    int64_t size[KMAX];
    int64_t in_stride[KMAX];  /* input stride of the group */
    int64_t out_stride[KMAX]; /* output stride (0 for reduced groups) */
    int reduced_last;
    int64_t out_numel;
} groups;

static void make_groups(groups *g, int ndim, const int64_t *shape, unsigned reduced)
{
    int n = 0, red[KMAX];
    int64_t size[KMAX];
    for (int d = 0; d < ndim; d++) {
        int r = (reduced >> d) & 1;
        if (shape[d] == 1)
            continue; // size-1 axes change nothing whether kept or reduced
        if (n > 0 && red[n - 1] == r) {
            size[n - 1] *= shape[d];
            continue;
        }
        red[n] = r;
        size[n++] = shape[d];
    }
    if (n == 0) {
        red[0] = 0;
        size[0] = 1;
        n = 1;
    }
    int64_t in_stride = 1, out_stride = 1;
    for (int k = n - 1; k >= 0; k--) {
        g->size[k] = size[k];
        g->in_stride[k] = in_stride;
        g->out_stride[k] = red[k] ? 0 : out_stride;
        in_stride *= size[k];
        if (!red[k])
            out_stride *= size[k];
    }
    g->n = n;
    g->reduced_last = red[n - 1];
    g->out_numel = out_stride;
}

/* Calls ROW for each run of the last group: xi = flat input offset of the run,
 * oi = output offset, len = run length. Runs of length 0 are not walked: an
 * empty input's reduction leaves the outputs as they start, and walking its
 * empty runs took as long as their count (shape 3 x 2^31 x 4 x 0: 2.6e10). */
#define GROUP_WALK(g, ROW)                                                         \
    do {                                                                           \
        int64_t idx_[KMAX] = {0}, xi = 0, oi = 0, runs_ = 1;                       \
        int64_t len = (g)->size[(g)->n - 1];                                       \
        for (int k_ = 0; k_ < (g)->n - 1; k_++)                                    \
            runs_ *= (g)->size[k_];                                                \
        if (len == 0)                                                              \
            runs_ = 0;                                                             \
        for (int64_t r_ = 0; r_ < runs_; r_++) {                                   \
            ROW;                                                                   \
            for (int k_ = (g)->n - 2; k_ >= 0; k_--) {                             \
                xi += (g)->in_stride[k_];                                          \
                oi += (g)->out_stride[k_];                                         \
                if (++idx_[k_] < (g)->size[k_])                                    \
                    break;                                                         \
                xi -= (g)->in_stride[k_] * (g)->size[k_];                          \
                oi -= (g)->out_stride[k_] * (g)->size[k_];                         \
                idx_[k_] = 0;                                                      \
            }                                                                      \
        }                                                                          \
    } while (0)

/* One run's sum (reduce.h): eight running sums, so that each addition no
 * longer waits for the previous one and the loop vectorises, combined in a
 * fixed tree. Float32 runs accumulate in double: a 1e6-element sum stays
 * exact to float precision. */
#define RUN_SUM_BODY                                                               \
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                      \
    int64_t j = 0;                                                                 \
    for (; j + 8 <= n; j += 8)                                                     \
        for (int u = 0; u < 8; u++)                                                \
            acc[u] += x[j + u];                                                    \
    for (; j < n; j++)                                                             \
        acc[0] += x[j];                                                            \
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));

double tg__sum_run_f32(const float *x, int64_t n) { RUN_SUM_BODY }
double tg__sum_run_f64(const double *x, int64_t n) { RUN_SUM_BODY }

/* Outputs [o0, o1) only: a thread's share (below). */
#define SUM_BODY(T, RUN)                                                           \
    memset(out + o0, 0, (size_t)(o1 - o0) * sizeof(T));                            \
    if (g->reduced_last) {                                                         \
        GROUP_WALK(g, {                                                            \
            if (oi >= o0 && oi < o1)                                               \
                out[oi] += (T)RUN(x + xi, len);                                    \
        });                                                                        \
    } else {                                                                       \
        GROUP_WALK(g, {                                                            \
            int64_t j0 = o0 > oi ? o0 - oi : 0;                                    \
            int64_t j1 = o1 - oi < len ? o1 - oi : len;                            \
            for (int64_t j = j0; j < j1; j++)                                      \
                out[oi + j] += x[xi + j];                                          \
        });                                                                        \
    }

static void sum_f32(const float *x, const groups *g, float *out, int64_t o0, int64_t o1)
{
    SUM_BODY(float, tg__sum_run_f32)
}

static void sum_f64(const double *x, const groups *g, double *out, int64_t o0, int64_t o1)
{
    SUM_BODY(double, tg__sum_run_f64)
}

/* Threads take ranges of outputs: each output's sum runs over the same
 * elements in the same order whichever thread computes it, so the bytes do
 * not depend on the thread count. */
typedef struct sum_job {
    const void *x;
    const groups *g;
    void *out;
    int64_t per_task;
    bool f64;
} sum_job;

static void sum_task(void *ctx, int64_t t, void *ws)
{
    (void)ws;
    const sum_job *j = ctx;
    int64_t o0 = t * j->per_task, o1 = o0 + j->per_task;
    if (o1 > j->g->out_numel)
        o1 = j->g->out_numel;
    if (j->f64)
        sum_f64(j->x, j->g, j->out, o0, o1);
    else
        sum_f32(j->x, j->g, j->out, o0, o1);
}

/* Small sums whose axes (size-1 axes aside) form at most two groups: one
 * reduced run and one kept run, in either order (a bias gradient, a sum of
 * everything). They run SUM_BODY's additions in its order without the group
 * walk: kept last, each out[k] from +0 adds x[r K + k] row by row in T (eight
 * columns held in registers across the rows); reduced last, each output's
 * run summed by tg__sum_run_* and added to +0 in T, as SUM_BODY does (a
 * double too small for a float rounds to -0.0f, and +0 + -0 is +0). Returns
 * false for the other cases (and for large sums, which may thread). */
#define SMALL_SUM_BODY(T, RUN)                                                     \
    const T *restrict xs = x;                                                      \
    T *restrict o = out;                                                           \
    if (!reduced_last) {                                                           \
        int64_t k = 0;                                                             \
        for (; k + 8 <= K; k += 8) {                                               \
            T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                   \
            for (int64_t r = 0; r < R; r++)                                        \
                for (int u = 0; u < 8; u++)                                        \
                    acc[u] += xs[r * K + k + u];                                   \
            memcpy(o + k, acc, sizeof acc);                                        \
        }                                                                          \
        for (; k < K; k++) {                                                       \
            T acc = 0;                                                             \
            for (int64_t r = 0; r < R; r++)                                        \
                acc += xs[r * K + k];                                              \
            o[k] = acc;                                                            \
        }                                                                          \
    } else {                                                                       \
        for (int64_t k = 0; k < K; k++)                                            \
            o[k] = (T)0 + (T)RUN(xs + k * R, R);                                   \
    }

/* The two cases above on R x K: reduced last (K outputs of R each) or kept
 * last (R rows of K). */
static void small_sum_of(const void *x, int64_t R, int64_t K, bool reduced_last, void *out,
                         bool f64)
{
    if (f64) {
        SMALL_SUM_BODY(double, tg__sum_run_f64)
    } else {
        SMALL_SUM_BODY(float, tg__sum_run_f32)
    }
}

static bool small_sum(const void *x, int ndim, const int64_t *shape, unsigned reduced,
                      void *out, bool f64)
{
    int n = 0, last = 0;
    int64_t size[2] = {1, 1}, numel = 1;
    for (int d = 0; d < ndim; d++) {
        int r = (reduced >> d) & 1;
        numel *= shape[d];
        if (shape[d] == 1)
            continue;
        if (n == 0 || r != last) {
            if (n == 2)
                return false;
            n++;
            last = r;
        }
        size[n - 1] *= shape[d];
    }
    if (numel > 4096)
        return false;
    bool reduced_last = n > 0 && last;
    // Kept last: R reduced rows of K (R = 1 without a reduced group); reduced
    // last: K outputs of R each.
    int64_t K, R;
    if (reduced_last) {
        R = size[n - 1];
        K = n == 2 ? size[0] : 1;
    } else {
        K = n > 0 ? size[n - 1] : 1;
        R = n == 2 ? size[0] : 1;
    }
    small_sum_of(x, R, K, reduced_last, out, f64);
    return true;
}

/* Axis 0 of R x K, as tg__reduce_sum would classify it: one column (K = 1,
 * R > 1) is a reduced-last run, anything else kept-last rows. */
void tg__sum_rows_f32(const float *x, int64_t R, int64_t K, float *out)
{
    small_sum_of(x, R, K, K == 1 && R > 1, out, false);
}

void tg__sum_rows_f64(const double *x, int64_t R, int64_t K, double *out)
{
    small_sum_of(x, R, K, K == 1 && R > 1, out, true);
}

static void reduce_sum(const void *x, int ndim, const int64_t *shape, unsigned reduced,
                       void *out, bool f64)
{
    if (small_sum(x, ndim, shape, reduced, out, f64))
        return;
    groups g;
    make_groups(&g, ndim, shape, reduced);
    if (g.out_numel == 0)
        return;
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++)
        numel *= shape[d];
    sum_job j = {x, &g, out, g.out_numel, f64};
    int nt = tg__threads_for((double)numel);
    if (nt > 1 && g.out_numel > 1) {
        // Twice as many ranges as threads (a busy machine), whole cache lines.
        int64_t per = (g.out_numel + 2 * nt - 1) / (2 * nt);
        j.per_task = per < 16 ? per : (per + 15) / 16 * 16;
    }
    int64_t tasks = (g.out_numel + j.per_task - 1) / j.per_task;
    if (tasks > 1)
        tg__parallel_for(tasks, 0, sum_task, &j);
    else
        sum_task(&j, 0, NULL);
}

void tg__reduce_sum_f32(const float *x, int ndim, const int64_t *shape, unsigned reduced,
                        float *out)
{
    reduce_sum(x, ndim, shape, reduced, out, false);
}

void tg__reduce_sum_f64(const double *x, int ndim, const int64_t *shape, unsigned reduced,
                        double *out)
{
    reduce_sum(x, ndim, shape, reduced, out, true);
}

/* The maximum (BETTER is >) or minimum (<) with the first winner's index. */
#define EXTREME_BODY(T, BETTER, START)                                             \
    groups g;                                                                      \
    make_groups(&g, ndim, shape, reduced);                                         \
    for (int64_t k = 0; k < g.out_numel; k++) {                                    \
        out[k] = START;                                                            \
        argmax[k] = -1;                                                            \
    }                                                                              \
    if (g.reduced_last) {                                                          \
        GROUP_WALK(&g, {                                                           \
            for (int64_t j = 0; j < len; j++) {                                    \
                T v = x[xi + j];                                                   \
                if (argmax[oi] < 0 || v BETTER out[oi] ||                          \
                    (v != v && out[oi] == out[oi])) {                              \
                    out[oi] = v;                                                   \
                    argmax[oi] = xi + j;                                           \
                }                                                                  \
            }                                                                      \
        });                                                                        \
    } else {                                                                       \
        GROUP_WALK(&g, {                                                           \
            for (int64_t j = 0; j < len; j++) {                                    \
                T v = x[xi + j];                                                   \
                if (argmax[oi + j] < 0 || v BETTER out[oi + j] ||                  \
                    (v != v && out[oi + j] == out[oi + j])) {                      \
                    out[oi + j] = v;                                               \
                    argmax[oi + j] = xi + j;                                       \
                }                                                                  \
            }                                                                      \
        });                                                                        \
    }

/* NaN wins (and propagates) like numpy's max. */
void tg__reduce_max_f32(const float *x, int ndim, const int64_t *shape, unsigned reduced,
                        float *out, int64_t *argmax)
{
    EXTREME_BODY(float, >, -INFINITY)
}

void tg__reduce_max_f64(const double *x, int ndim, const int64_t *shape, unsigned reduced,
                        double *out, int64_t *argmax)
{
    EXTREME_BODY(double, >, -INFINITY)
}

/* NaN wins here too, like numpy's min. */
void tg__reduce_min_f32(const float *x, int ndim, const int64_t *shape, unsigned reduced,
                        float *out, int64_t *argmin)
{
    int64_t *argmax = argmin;
    EXTREME_BODY(float, <, INFINITY)
}

void tg__reduce_min_f64(const double *x, int ndim, const int64_t *shape, unsigned reduced,
                        double *out, int64_t *argmin)
{
    int64_t *argmax = argmin;
    EXTREME_BODY(double, <, INFINITY)
}

/* Products in the walk order, float32 ones in double (the product of an empty
 * group is 1). */
#define PROD_BODY(T)                                                               \
    groups g;                                                                      \
    make_groups(&g, ndim, shape, reduced);                                         \
    double *acc = scratch;                                                         \
    for (int64_t k = 0; k < g.out_numel; k++)                                      \
        acc[k] = 1;                                                                \
    if (g.reduced_last) {                                                          \
        GROUP_WALK(&g, {                                                           \
            for (int64_t j = 0; j < len; j++)                                      \
                acc[oi] *= x[xi + j];                                              \
        });                                                                        \
    } else {                                                                       \
        GROUP_WALK(&g, {                                                           \
            for (int64_t j = 0; j < len; j++)                                      \
                acc[oi + j] *= x[xi + j];                                          \
        });                                                                        \
    }                                                                              \
    for (int64_t k = 0; k < g.out_numel; k++)                                      \
        out[k] = (T)acc[k];

void tg__reduce_prod_f32(const float *x, int ndim, const int64_t *shape, unsigned reduced,
                         float *out, double *scratch)
{
    PROD_BODY(float)
}

void tg__reduce_prod_f64(const double *x, int ndim, const int64_t *shape, unsigned reduced,
                         double *out, double *scratch)
{
    PROD_BODY(double)
}

/* Rows along n are strided by inner; each (outer, inner) pair is one row. */
#define SOFTMAX_BODY(T)                                                            \
    for (int64_t o = 0; o < outer; o++) {                                          \
        for (int64_t i = 0; i < inner; i++) {                                      \
            const T *xr = x + o * n * inner + i;                                   \
            T *yr = y + o * n * inner + i;                                         \
            T m = -INFINITY;                                                       \
            for (int64_t k = 0; k < n; k++)                                        \
                if (xr[k * inner] > m)                                             \
                    m = xr[k * inner];                                             \
            if (m == -INFINITY)                                                    \
                m = 0; /* all -inf: avoid inf - inf */                             \
            double s = 0;                                                          \
            for (int64_t k = 0; k < n; k++) {                                      \
                T e = exp(xr[k * inner] - m);                                      \
                s += e;                                                            \
                if (!take_log)                                                          \
                    yr[k * inner] = e;                                             \
            }                                                                      \
            if (take_log) {                                                        \
                /* (x - m) - ln s: no large lse to cancel against x */              \
                T ls = (T)log(s);                                                  \
                for (int64_t k = 0; k < n; k++)                                    \
                    yr[k * inner] = (xr[k * inner] - m) - ls;                      \
            } else {                                                               \
                T inv = (T)(1.0 / s);                                              \
                for (int64_t k = 0; k < n; k++)                                    \
                    yr[k * inner] *= inv;                                          \
            }                                                                      \
        }                                                                          \
    }

void tg__softmax_f32(const float *x, float *y, int64_t outer, int64_t n, int64_t inner,
                     int take_log)
{
    SOFTMAX_BODY(float)
}

void tg__softmax_f64(const double *x, double *y, int64_t outer, int64_t n, int64_t inner,
                     int take_log)
{
    SOFTMAX_BODY(double)
}
