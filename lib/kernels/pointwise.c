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

/* Maps of at most this many elements run on the calling thread without
 * asking the pool (they are far below a thread's share of work). */
#define SMALL_MAP 4096

static void unary(tg__unop op, const void *x, void *y, int64_t n, double a, double b, bool f64)
{
    if (n <= SMALL_MAP) {
        if (f64)
            unary_f64(op, x, y, n, a, b);
        else
            unary_f32(op, x, y, n, a, b);
        return;
    }
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

/* ---- the ReLU's gradient through its output ---- */

/* g * (T)(y > 0): the expression of tg_relu's fused backward (in terms of its
 * input x; y > 0 exactly where x > 0), so the same bytes. Computed as a
 * select between g (g * 1 is g) and g * 0, both formed for every element, so
 * the loop has no branch (the plain product compiled to a branch per element
 * that mispredicted on half of them: 12% of a CNN epoch). The compiler made
 * that same select of the product, with the multiply by 1 folded away, so
 * these are its bits, signed zeros, infinities and NaN payloads included
 * (g * 0 keeps the sign of g, and is NaN for an infinite or NaN g). BYTES at
 * a time with vector extensions where the compiler has them: 16 (the
 * baseline's SSE2 has every operation; GCC leaves the float64 loop scalar
 * otherwise), 32 and 64 with AVX2 and AVX-512 where cpuid reports them, the
 * same select through the bits for the tail. (On a Xeon with AVX-512 the
 * wider loops run 1.4x as fast on data in L2, but at the CNN's sizes the
 * pass is bound by memory: about 3% at 1 MB an array, nothing at 2.7 MB.) */
#define RELU_GRAD_SCALAR(T, U, i0)                                                 \
    for (int64_t k = (i0); k < len; k++) {                                         \
        T gk = g[k], z = gk * 0;                                                   \
        U a, b, m = y[k] > 0 ? ~(U)0 : 0;                                          \
        memcpy(&a, &gk, sizeof a);                                                 \
        memcpy(&b, &z, sizeof b);                                                  \
        a = (a & m) | (b & ~m);                                                    \
        memcpy(out + k, &a, sizeof a);                                             \
    }

#define RELU_GRAD_VEC(T, U, BYTES)                                                 \
    do {                                                                           \
        typedef T vT __attribute__((vector_size(BYTES)));                          \
        typedef U vU __attribute__((vector_size(BYTES)));                          \
        enum { L = (BYTES) / sizeof(T) };                                          \
        const vT zero = {0};                                                       \
        int64_t i = 0;                                                             \
        for (; i + L <= len; i += L) {                                             \
            vT gv, yv;                                                             \
            memcpy(&gv, g + i, sizeof gv);                                         \
            memcpy(&yv, y + i, sizeof yv);                                         \
            vT z = gv * zero;                                                      \
            vU m = (vU)(yv > zero);                                                \
            vU r = (m & (vU)gv) | (~m & (vU)z);                                    \
            memcpy(out + i, &r, sizeof r);                                         \
        }                                                                          \
        RELU_GRAD_SCALAR(T, U, i)                                                  \
    } while (0)

/* One function per dtype (sfx f32, f64) and kind: relu_grad_<sfx>_<kind>,
 * gathered in relu_grad_<sfx>_kinds in order of width. */
typedef void (*relu_grad_f32_fn)(const float *g, const float *y, float *out, int64_t len);
typedef void (*relu_grad_f64_fn)(const double *g, const double *y, double *out, int64_t len);

#define RELU_GRAD_FN(T, U, sfx, kind, BYTES, attr)                                 \
    attr static void relu_grad_##sfx##_##kind(const T *g, const T *y, T *out,      \
                                              int64_t len)                         \
    {                                                                              \
        RELU_GRAD_VEC(T, U, BYTES);                                                \
    }

#define RELU_GRAD_FNS(T, U, sfx)                                                   \
    static void relu_grad_##sfx##_scalar(const T *g, const T *y, T *out, int64_t len) \
    {                                                                              \
        RELU_GRAD_SCALAR(T, U, 0)                                                  \
    }                                                                              \
    RELU_GRAD_WIDE(T, U, sfx)

#if defined(__GNUC__) && defined(__x86_64__)
#define RELU_GRAD_KINDS 4
#define RELU_GRAD_WIDE(T, U, sfx)                                                  \
    RELU_GRAD_FN(T, U, sfx, v16, 16, )                                             \
    RELU_GRAD_FN(T, U, sfx, avx2, 32, __attribute__((target("avx2"))))             \
    RELU_GRAD_FN(T, U, sfx, avx512, 64, __attribute__((target("avx512f"))))        \
    static const relu_grad_##sfx##_fn relu_grad_##sfx##_kinds[] = {                \
        relu_grad_##sfx##_scalar, relu_grad_##sfx##_v16, relu_grad_##sfx##_avx2,   \
        relu_grad_##sfx##_avx512};
#elif defined(__GNUC__)
#define RELU_GRAD_KINDS 2
#define RELU_GRAD_WIDE(T, U, sfx)                                                  \
    RELU_GRAD_FN(T, U, sfx, v16, 16, )                                             \
    static const relu_grad_##sfx##_fn relu_grad_##sfx##_kinds[] = {                \
        relu_grad_##sfx##_scalar, relu_grad_##sfx##_v16};
#else
#define RELU_GRAD_KINDS 1
#define RELU_GRAD_WIDE(T, U, sfx)                                                  \
    static const relu_grad_##sfx##_fn relu_grad_##sfx##_kinds[] = {relu_grad_##sfx##_scalar};
#endif

RELU_GRAD_FNS(float, uint32_t, f32)
RELU_GRAD_FNS(double, uint64_t, f64)

/* How many of the kinds above this CPU runs (they are in order of width). */
static int relu_grad_supported(void)
{
    int n = RELU_GRAD_KINDS < 2 ? RELU_GRAD_KINDS : 2;
#if defined(__GNUC__) && defined(__x86_64__)
    if (__builtin_cpu_supports("avx2"))
        n = 3;
    if (n == 3 && __builtin_cpu_supports("avx512f"))
        n = 4;
#endif
    return n;
}

static int relu_grad_widest = -1; /* the widest kind, -1 until first use */

typedef struct relu_grad_job {
    const void *g, *y;
    void *out;
    int64_t n, chunk;
    int kind;
    bool f64;
} relu_grad_job;

static void relu_grad_task(void *ctx, int64_t t, void *ws)
{
    (void)ws;
    const relu_grad_job *j = ctx;
    int64_t i0 = t * j->chunk, len = j->n - i0 < j->chunk ? j->n - i0 : j->chunk;
    if (j->f64)
        relu_grad_f64_kinds[j->kind]((const double *)j->g + i0, (const double *)j->y + i0,
                                     (double *)j->out + i0, len);
    else
        relu_grad_f32_kinds[j->kind]((const float *)j->g + i0, (const float *)j->y + i0,
                                     (float *)j->out + i0, len);
}

static void relu_grad(const void *g, const void *y, void *out, int64_t n, bool f64, int kind)
{
    if (kind < 0) {
        kind = __atomic_load_n(&relu_grad_widest, __ATOMIC_RELAXED);
        if (kind < 0) {
            kind = relu_grad_supported() - 1;
            __atomic_store_n(&relu_grad_widest, kind, __ATOMIC_RELAXED);
        }
    }
    int nt = tg__threads_for((double)n);
    relu_grad_job j = {g, y, out, n, n > 0 ? n : 1, kind, f64};
    if (nt > 1)
        j.chunk = ((n + 2 * nt - 1) / (2 * nt) + 15) / 16 * 16;
    if (nt <= 1 || j.chunk >= n)
        relu_grad_task(&j, 0, NULL);
    else
        tg__parallel_for((n + j.chunk - 1) / j.chunk, 0, relu_grad_task, &j);
}

void tg__relu_grad_f32(const float *g, const float *y, float *out, int64_t n)
{
    relu_grad(g, y, out, n, false, -1);
}

void tg__relu_grad_f64(const double *g, const double *y, double *out, int64_t n)
{
    relu_grad(g, y, out, n, true, -1);
}

int tg__relu_grad_variants(void)
{
    return relu_grad_supported();
}

void tg__relu_grad_f32_variant(int v, const float *g, const float *y, float *out, int64_t n)
{
    relu_grad(g, y, out, n, false, v >= 0 && v < relu_grad_supported() ? v : 0);
}

void tg__relu_grad_f64_variant(int v, const double *g, const double *y, double *out, int64_t n)
{
    relu_grad(g, y, out, n, true, v >= 0 && v < relu_grad_supported() ? v : 0);
}

/* ---- broadcast walks ---- */

/* Visits the output rows [r0, r1) (rows: the last plan dim), columns
 * [c0, c1) of each, and runs ROW with pointers pa/pb/pc to the operands' and
 * po to the output's first element there, strides sa/sb/sc and length len. */
#define BCAST_WALK(T, plan, a, b, c, out, r0, r1, c0, c1, ROW)                     \
    do {                                                                           \
        int nd_ = (plan)->ndim;                                                    \
        int64_t rowlen_ = (plan)->shape[nd_ - 1], len = (c1) - (c0);               \
        int64_t sa = (plan)->strides[0][nd_ - 1], sb = (plan)->strides[1][nd_ - 1]; \
        int64_t sc = (plan)->n_ops > 2 ? (plan)->strides[2][nd_ - 1] : 0;          \
        int64_t idx_[TG__KMAX_DIMS] = {0}, off_[3] = {0, 0, 0};                    \
        /* The indices and operand offsets of row r0. */                           \
        for (int64_t d_ = nd_ - 2, q_ = (r0); d_ >= 0; d_--) {                     \
            idx_[d_] = q_ % (plan)->shape[d_];                                     \
            q_ /= (plan)->shape[d_];                                               \
            for (int k_ = 0; k_ < (plan)->n_ops; k_++)                             \
                off_[k_] += idx_[d_] * (plan)->strides[k_][d_];                    \
        }                                                                          \
        for (int64_t r_ = (r0); r_ < (r1); r_++) {                                 \
            const T *pa = (a) + off_[0] + (c0) * sa;                               \
            const T *pb = (b) + off_[1] + (c0) * sb;                               \
            const T *pc = (c) + off_[2] + (c0) * sc;                               \
            T *po = (out) + r_ * rowlen_ + (c0);                                   \
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

/* A share of a broadcast map for one task: rows [r0, r1), columns [c0, c1). */
typedef struct bcast_part {
    int64_t r0, r1, c0, c1;
} bcast_part;

/* Large maps are split between threads by whole rows, or, for a single row
 * (equal shapes: one flat run), by chunks of it. Each element is computed
 * alone, so the split changes no result. */
typedef struct bcast_job {
    const tg__bcast *plan;
    int64_t rows, per_task; /* rows per task, or columns per task when rows == 1 */
    void (*fn)(const struct bcast_job *job, const bcast_part *part);
    int op;
    const void *a, *b, *c;
    void *out;
} bcast_job;

static void bcast_task(void *ctx, int64_t t, void *ws)
{
    (void)ws;
    const bcast_job *j = ctx;
    int64_t rowlen = j->plan->shape[j->plan->ndim - 1];
    bcast_part p = {0, j->rows, 0, rowlen};
    if (j->rows > 1) {
        p.r0 = t * j->per_task;
        p.r1 = p.r0 + j->per_task < j->rows ? p.r0 + j->per_task : j->rows;
    } else {
        p.c0 = t * j->per_task;
        p.c1 = p.c0 + j->per_task < rowlen ? p.c0 + j->per_task : rowlen;
    }
    j->fn(j, &p);
}

static void bcast_run(bcast_job *j)
{
    const tg__bcast *plan = j->plan;
    int64_t rowlen = plan->shape[plan->ndim - 1];
    j->rows = 1;
    for (int d = 0; d < plan->ndim - 1; d++)
        j->rows *= plan->shape[d];
    if (j->rows == 0 || rowlen == 0)
        return;
    int nt = tg__threads_for((double)j->rows * (double)rowlen);
    int64_t tasks = 1;
    if (nt > 1 && j->rows > 1) {
        j->per_task = (j->rows + 2 * nt - 1) / (2 * nt);
        tasks = (j->rows + j->per_task - 1) / j->per_task;
    } else if (nt > 1) {
        j->per_task = ((rowlen + 2 * nt - 1) / (2 * nt) + 15) / 16 * 16;
        tasks = (rowlen + j->per_task - 1) / j->per_task;
    }
    if (tasks > 1) {
        tg__parallel_for(tasks, 0, bcast_task, j);
        return;
    }
    bcast_part all = {0, j->rows, 0, rowlen};
    j->fn(j, &all);
}

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
        BCAST_WALK(T, plan, a, b, b /* no third operand */, out, p->r0, p->r1, p->c0, \
                   p->c1, BIN_ROW(T, EXPR));                                       \
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

static void binary_part_f32(const bcast_job *j, const bcast_part *p)
{
    const tg__bcast *plan = j->plan;
    const float *a = j->a, *b = j->b;
    float *out = j->out;
    tg__binop op = (tg__binop)j->op;
    BINARY_BODY(float)
}

static void binary_part_f64(const bcast_job *j, const bcast_part *p)
{
    const tg__bcast *plan = j->plan;
    const double *a = j->a, *b = j->b;
    double *out = j->out;
    tg__binop op = (tg__binop)j->op;
    BINARY_BODY(double)
}

/* Small maps (at most SMALL_MAP elements) of the four arithmetic ops over at
 * most two plan dims (equal shapes, a bias row, a scalar operand): the rows
 * directly, without the walk's odometer or the thread split (a map this
 * small runs on one thread anyway). Each element is the same expression as
 * in BINARY_BODY, so the same bytes. false: not such a map. */
#define SMALL_CASE(T, OP, EXPR)                                                    \
    case OP:                                                                       \
        for (int64_t r = 0; r < rows; r++) {                                       \
            const T *pa = a + r * ra, *pb = b + r * rb;                            \
            T *po = out + r * len;                                                 \
            BIN_ROW(T, EXPR)                                                       \
        }                                                                          \
        return true;
#define SMALL_BINARY_BODY(T)                                                       \
    if (plan->ndim > 2 || plan->ndim < 1)                                          \
        return false;                                                              \
    const int last = plan->ndim - 1;                                               \
    const int64_t rows = last ? plan->shape[0] : 1, len = plan->shape[last];       \
    if (rows * len > SMALL_MAP)                                                    \
        return false;                                                              \
    const int64_t ra = last ? plan->strides[0][0] : 0, rb = last ? plan->strides[1][0] : 0; \
    const int64_t sa = plan->strides[0][last], sb = plan->strides[1][last];        \
    switch (op) {                                                                  \
        SMALL_CASE(T, TG__BIN_ADD, x + y)                                          \
        SMALL_CASE(T, TG__BIN_SUB, x - y)                                          \
        SMALL_CASE(T, TG__BIN_MUL, x * y)                                          \
        SMALL_CASE(T, TG__BIN_DIV, x / y)                                          \
    default:                                                                       \
        return false;                                                              \
    }

static bool small_binary_f32(tg__binop op, const tg__bcast *plan, const float *a,
                             const float *b, float *out)
{
    SMALL_BINARY_BODY(float)
}

static bool small_binary_f64(tg__binop op, const tg__bcast *plan, const double *a,
                             const double *b, double *out)
{
    SMALL_BINARY_BODY(double)
}

void tg__binary_f32(tg__binop op, const tg__bcast *plan, const float *a, const float *b,
                    float *out)
{
    if (small_binary_f32(op, plan, a, b, out))
        return;
    bcast_job j = {.plan = plan, .fn = binary_part_f32, .op = op, .a = a, .b = b, .out = out};
    bcast_run(&j);
}

void tg__binary_f64(tg__binop op, const tg__bcast *plan, const double *a, const double *b,
                    double *out)
{
    if (small_binary_f64(op, plan, a, b, out))
        return;
    bcast_job j = {.plan = plan, .fn = binary_part_f64, .op = op, .a = a, .b = b, .out = out};
    bcast_run(&j);
}

#define WHERE_ROW                                                                  \
    for (int64_t i = 0; i < len; i++)                                              \
        po[i] = pa[i * sa] != 0 ? pb[i * sb] : pc[i * sc];

static void where_part_f32(const bcast_job *j, const bcast_part *p)
{
    const float *cond = j->a, *a = j->b, *b = j->c;
    float *out = j->out;
    BCAST_WALK(float, j->plan, cond, a, b, out, p->r0, p->r1, p->c0, p->c1, WHERE_ROW);
}

static void where_part_f64(const bcast_job *j, const bcast_part *p)
{
    const double *cond = j->a, *a = j->b, *b = j->c;
    double *out = j->out;
    BCAST_WALK(double, j->plan, cond, a, b, out, p->r0, p->r1, p->c0, p->c1, WHERE_ROW);
}

void tg__where_f32(const tg__bcast *plan, const float *cond, const float *a, const float *b,
                   float *out)
{
    bcast_job j = {.plan = plan, .fn = where_part_f32, .a = cond, .b = a, .c = b, .out = out};
    bcast_run(&j);
}

void tg__where_f64(const tg__bcast *plan, const double *cond, const double *a, const double *b,
                   double *out)
{
    bcast_job j = {.plan = plan, .fn = where_part_f64, .a = cond, .b = a, .c = b, .out = out};
    bcast_run(&j);
}
