/* pointwise.c - elementwise kernels. Each loop is written once as a macro over
 * the element type T; <tgmath.h> picks expf or exp from T. The op switch sits
 * outside the loops so every inner loop is a plain, vectorisable pass. */
#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <tgmath.h>

#include "kernels/pointwise.h"
#include "thread/pool.h"

void tg__bcast_plan(tg__bcast *plan, int ndim, const int64_t *out_shape, int n_ops,
                    const int *op_ndim, const int64_t *const *op_shape)
{
    int64_t shape[TG__KMAX_DIMS], strides[3][TG__KMAX_DIMS];
    for (int k = 0; k < n_ops; k++) {
        int64_t stride = 1;
        for (int d = ndim - 1; d >= 0; d--) {
            int j = d - (ndim - op_ndim[k]);
            int64_t s = j >= 0 ? op_shape[k][j] : 1;
            strides[k][d] = s == 1 ? 0 : stride;
            stride *= s;
        }
    }
    // Drop size-1 dims, then merge dim d into the previous kept one when every
    // operand steps through both as one run.
    int n = 0;
    for (int d = 0; d < ndim; d++) {
        if (out_shape[d] == 1)
            continue;
        bool merge = n > 0;
        for (int k = 0; k < n_ops && merge; k++)
            merge = strides[k][d] * out_shape[d] == plan->strides[k][n - 1];
        if (merge) {
            shape[n - 1] *= out_shape[d];
            for (int k = 0; k < n_ops; k++)
                plan->strides[k][n - 1] = strides[k][d];
            continue;
        }
        shape[n] = out_shape[d];
        for (int k = 0; k < n_ops; k++)
            plan->strides[k][n] = strides[k][d];
        n++;
    }
    if (n == 0) {
        shape[0] = 1;
        for (int k = 0; k < n_ops; k++)
            plan->strides[k][0] = 0;
        n = 1;
    }
    plan->ndim = n;
    plan->n_ops = n_ops;
    memcpy(plan->shape, shape, (size_t)n * sizeof *shape);
}

/* ---- unary ---- */

#define UNARY_LOOP(T, EXPR)                                                    \
    for (int64_t i = 0; i < n; i++) {                                          \
        T v = x[i];                                                            \
        y[i] = (EXPR);                                                         \
    }

#define UNARY_BODY(T)                                                              \
    const T pa = (T)a, pb = (T)b;                                                  \
    switch (op) {                                                                  \
    case TG__UN_EXP: UNARY_LOOP(T, exp(v)) break;                                  \
    case TG__UN_SIGN: UNARY_LOOP(T, (T)((v > 0) - (v < 0))) break;                 \
    case TG__UN_LEAKY_RELU: UNARY_LOOP(T, v > 0 ? v : pa * v) break;               \
    case TG__UN_CLAMP: UNARY_LOOP(T, v < pa ? pa : (v > pb ? pb : v)) break;       \
    case TG__UN_ADD_SCALAR: UNARY_LOOP(T, v + pa) break;                           \
    case TG__UN_MUL_SCALAR: UNARY_LOOP(T, v * pa) break;                           \
    case TG__UN_POW_SCALAR:                                                        \
        if (pa == 2)                                                               \
            UNARY_LOOP(T, v * v)                                                   \
        else                                                                       \
            UNARY_LOOP(T, pow(v, pa))                                              \
        break;                                                                     \
    case TG__UN_GT_SCALAR: UNARY_LOOP(T, (T)(v > pa)) break;                       \
    }

static void unary_f32(tg__unop op, const float *x, float *y, int64_t n, double a, double b)
{
    UNARY_BODY(float)
}

static void unary_f64(tg__unop op, const double *x, double *y, int64_t n, double a, double b)
{
    UNARY_BODY(double)
}

/* Large maps are cut into chunks for the threads (lib/thread). Each element
 * is computed alone, so chunk boundaries change no result; chunks are whole
 * cache lines. */
typedef struct unary_job {
    tg__unop op;
    const void *x;
    void *y;
    int64_t n, chunk;
    double a, b;
    bool f64;
} unary_job;

static void unary_task(void *ctx, int64_t t, void *ws)
{
    (void)ws;
    const unary_job *j = ctx;
    int64_t i0 = t * j->chunk, len = j->n - i0 < j->chunk ? j->n - i0 : j->chunk;
    if (j->f64)
        unary_f64(j->op, (const double *)j->x + i0, (double *)j->y + i0, len, j->a, j->b);
    else
        unary_f32(j->op, (const float *)j->x + i0, (float *)j->y + i0, len, j->a, j->b);
}

/* Work per element, in the pool's units (about a multiply-add): a few for
 * the maps that call libm, one for the rest. */
static double unary_cost(tg__unop op)
{
    switch (op) {
    case TG__UN_EXP: case TG__UN_POW_SCALAR:
        return 20;
    default:
        return 1;
    }
}

static void unary(tg__unop op, const void *x, void *y, int64_t n, double a, double b, bool f64)
{
    int nt = tg__threads_for((double)n * unary_cost(op));
    unary_job j = {op, x, y, n, n, a, b, f64};
    if (nt > 1)
        j.chunk = ((n + 2 * nt - 1) / (2 * nt) + 15) / 16 * 16;
    if (nt <= 1 || j.chunk >= n) {
        unary_task(&j, 0, NULL);
        return;
    }
    tg__parallel_for((n + j.chunk - 1) / j.chunk, 0, unary_task, &j);
}

void tg__unary_f32(tg__unop op, const float *x, float *y, int64_t n, double a, double b)
{
    unary(op, x, y, n, a, b, false);
}

void tg__unary_f64(tg__unop op, const double *x, double *y, int64_t n, double a, double b)
{
    unary(op, x, y, n, a, b, true);
}

/* d(x^p) = g (p x^(p-1)) in one pass, with the roundings of the composed rule
 * (x^(p-1) as pow_scalar computes it, times p, times g); p is not 0 or 1. */
#define POW_GRAD_BODY(T)                                                           \
    const T q = (T)(p - 1), pp = (T)p;                                             \
    if (q == 1)                                                                    \
        for (int64_t i = 0; i < n; i++)                                            \
            out[i] = g[i] * (x[i] * pp);                                           \
    else if (q == 2)                                                               \
        for (int64_t i = 0; i < n; i++)                                            \
            out[i] = g[i] * ((x[i] * x[i]) * pp);                                  \
    else                                                                           \
        for (int64_t i = 0; i < n; i++)                                            \
            out[i] = g[i] * (pow(x[i], q) * pp);

void tg__pow_scalar_grad_f32(const float *g, const float *x, float *out, int64_t n, double p)
{
    POW_GRAD_BODY(float)
}

void tg__pow_scalar_grad_f64(const double *g, const double *x, double *out, int64_t n,
                             double p)
{
    POW_GRAD_BODY(double)
}

/* ---- broadcast walks ---- */

/* Visits every output row (the last plan dim) and runs ROW with pointers
 * pa/pb/pc to the operands' row starts, row strides sa/sb/sc and length len. */
#define BCAST_WALK(T, plan, a, b, c, out, ROW)                                     \
    do {                                                                           \
        int nd_ = (plan)->ndim;                                                    \
        int64_t len = (plan)->shape[nd_ - 1];                                      \
        int64_t sa = (plan)->strides[0][nd_ - 1], sb = (plan)->strides[1][nd_ - 1]; \
        int64_t sc = (plan)->n_ops > 2 ? (plan)->strides[2][nd_ - 1] : 0;          \
        int64_t idx_[TG__KMAX_DIMS] = {0}, off_[3] = {0, 0, 0};                    \
        int64_t rows_ = 1;                                                         \
        for (int d_ = 0; d_ < nd_ - 1; d_++)                                       \
            rows_ *= (plan)->shape[d_];                                            \
        for (int64_t r_ = 0; r_ < rows_; r_++) {                                   \
            const T *pa = (a) + off_[0];                                           \
            const T *pb = (b) + off_[1];                                           \
            const T *pc = (c) + off_[2];                                           \
            T *po = (out) + r_ * len;                                              \
            (void)pc;                                                              \
            (void)sc;                                                              \
            ROW;                                                                   \
            for (int d_ = nd_ - 2; d_ >= 0; d_--) {                                \
                for (int k_ = 0; k_ < (plan)->n_ops; k_++)                         \
                    off_[k_] += (plan)->strides[k_][d_];                           \
                if (++idx_[d_] < (plan)->shape[d_])                                \
                    break;                                                         \
                for (int k_ = 0; k_ < (plan)->n_ops; k_++)                         \
                    off_[k_] -= (plan)->strides[k_][d_] * (plan)->shape[d_];       \
                idx_[d_] = 0;                                                      \
            }                                                                      \
        }                                                                          \
    } while (0)

/* One row of out = EXPR(x, y); the common stride patterns get their own loop
 * so the compiler sees unit strides or a loop-invariant operand. */
#define BIN_ROW(T, EXPR)                                                           \
    if (sa == 1 && sb == 1) {                                                      \
        for (int64_t i = 0; i < len; i++) {                                        \
            T x = pa[i], y = pb[i];                                                \
            po[i] = (EXPR);                                                        \
        }                                                                          \
    } else if (sa == 1 && sb == 0) {                                               \
        T y = pb[0];                                                               \
        for (int64_t i = 0; i < len; i++) {                                        \
            T x = pa[i];                                                           \
            po[i] = (EXPR);                                                        \
        }                                                                          \
    } else if (sa == 0 && sb == 1) {                                               \
        T x = pa[0];                                                               \
        for (int64_t i = 0; i < len; i++) {                                        \
            T y = pb[i];                                                           \
            po[i] = (EXPR);                                                        \
        }                                                                          \
    } else {                                                                       \
        for (int64_t i = 0; i < len; i++) {                                        \
            T x = pa[i * sa], y = pb[i * sb];                                      \
            po[i] = (EXPR);                                                        \
        }                                                                          \
    }

#define BIN_CASE(T, OP, EXPR)                                                      \
    case OP:                                                                       \
        BCAST_WALK(T, plan, a, b, b /* no third operand */, out, BIN_ROW(T, EXPR));         \
        break;

#define BINARY_BODY(T)                                                             \
    switch (op) {                                                                  \
        BIN_CASE(T, TG__BIN_ADD, x + y)                                            \
        BIN_CASE(T, TG__BIN_SUB, x - y)                                            \
        BIN_CASE(T, TG__BIN_MUL, x * y)                                            \
        BIN_CASE(T, TG__BIN_DIV, x / y)                                            \
        BIN_CASE(T, TG__BIN_POW, pow(x, y))                                        \
        BIN_CASE(T, TG__BIN_MAX, x >= y || x != x ? x : y) /* NaN wins */                                   \
        BIN_CASE(T, TG__BIN_MIN, x <= y || x != x ? x : y)                                   \
        BIN_CASE(T, TG__BIN_GT, (T)(x > y))                                        \
        BIN_CASE(T, TG__BIN_GE, (T)(x >= y))                                       \
        BIN_CASE(T, TG__BIN_LT, (T)(x < y))                                        \
        BIN_CASE(T, TG__BIN_LE, (T)(x <= y))                                       \
        BIN_CASE(T, TG__BIN_EQ, (T)(x == y))                                       \
    }

void tg__binary_f32(tg__binop op, const tg__bcast *plan, const float *a, const float *b,
                    float *out)
{
    BINARY_BODY(float)
}

void tg__binary_f64(tg__binop op, const tg__bcast *plan, const double *a, const double *b,
                    double *out)
{
    BINARY_BODY(double)
}

#define WHERE_ROW                                                                  \
    for (int64_t i = 0; i < len; i++)                                              \
        po[i] = pa[i * sa] != 0 ? pb[i * sb] : pc[i * sc];

void tg__where_f32(const tg__bcast *plan, const float *cond, const float *a, const float *b,
                   float *out)
{
    BCAST_WALK(float, plan, cond, a, b, out, WHERE_ROW);
}

void tg__where_f64(const tg__bcast *plan, const double *cond, const double *a, const double *b,
                   double *out)
{
    BCAST_WALK(double, plan, cond, a, b, out, WHERE_ROW);
}
