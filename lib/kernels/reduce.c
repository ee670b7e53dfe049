/* reduce.c - reductions over any set of axes and softmax along one axis.
 *
 * A reduction first merges neighbouring axes that are both kept or both
 * reduced (x is contiguous, so they are one run), leaving alternating groups.
 * The walk then steps over every group but the last with a counter and runs a
 * plain loop over the last: either a running accumulator (last group reduced)
 * or an elementwise update of an output row (last group kept). */
#include <math.h>
#include <string.h>
#include <tgmath.h>

#include "kernels/reduce.h"

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
 * oi = output offset, len = run length. */
#define GROUP_WALK(g, ROW)                                                         \
    do {                                                                           \
        int64_t idx_[KMAX] = {0}, xi = 0, oi = 0, runs_ = 1;                       \
        int64_t len = (g)->size[(g)->n - 1];                                       \
        for (int k_ = 0; k_ < (g)->n - 1; k_++)                                    \
            runs_ *= (g)->size[k_];                                                \
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

/* Sums of float32 runs accumulate in double: a 1e6-element sum stays exact
 * to float precision. */
#define SUM_BODY(T, ACC)                                                           \
    groups g;                                                                      \
    make_groups(&g, ndim, shape, reduced);                                         \
    memset(out, 0, (size_t)g.out_numel * sizeof(T));                               \
    if (g.reduced_last) {                                                          \
        GROUP_WALK(&g, {                                                           \
            /* Eight running sums: each addition no longer waits for the      */  \
            /* previous one, and the loop vectorises.                          */  \
            ACC acc[8];                                                            \
            for (int u = 0; u < 8; u++)                                            \
                acc[u] = 0;                                                        \
            const T *xr = x + xi;                                                  \
            int64_t j = 0;                                                         \
            for (; j + 8 <= len; j += 8)                                           \
                for (int u = 0; u < 8; u++)                                        \
                    acc[u] += xr[j + u];                                           \
            for (; j < len; j++)                                                   \
                acc[0] += xr[j];                                                   \
            out[oi] += (T)(((acc[0] + acc[1]) + (acc[2] + acc[3])) +               \
                           ((acc[4] + acc[5]) + (acc[6] + acc[7])));               \
        });                                                                        \
    } else {                                                                       \
        GROUP_WALK(&g, {                                                           \
            for (int64_t j = 0; j < len; j++)                                      \
                out[oi + j] += x[xi + j];                                          \
        });                                                                        \
    }

void tg__reduce_sum_f32(const float *x, int ndim, const int64_t *shape, unsigned reduced,
                        float *out)
{
    SUM_BODY(float, double)
}

void tg__reduce_sum_f64(const double *x, int ndim, const int64_t *shape, unsigned reduced,
                        double *out)
{
    SUM_BODY(double, double)
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
