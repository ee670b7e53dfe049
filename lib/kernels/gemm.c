/* gemm.c - the one matrix product of the library (see kernels.h): argument
 * handling, the split between threads, and scratch. The arithmetic is in the
 * per-CPU kernels (gemm_generic.c, gemm_avx2.c, gemm_avx512.c, one template
 * gemm_template.h), which gemm_dispatch.c chooses between.
 *
 *   C (M, N) = alpha op(A) (M, K) op(B) (K, N) + beta C, all row-major
 *
 * Threads split C into blocks of whole register tiles, by columns first (each
 * thread then packs only its own columns of B) and by rows when there are
 * too few columns; never the depth K, so each element's sum runs in one order
 * whatever the thread count (gemm_kernel.h), and every kernel and every
 * thread count give the same bytes.
 *
 * Packing scratch is each thread's workspace (lib/thread), grown once to the
 * largest product it has seen: after the first training step a product
 * allocates nothing. Products of at most SMALL_MNK multiply-adds skip packing
 * (it would cost more than it saves); so does a thread that cannot get
 * scratch memory, through the same sums. A larger product narrower than the
 * kernel's tile runs as its transpose (see narrow below), to the same bytes. */
#include <string.h>

#include "kernels/gemm_kernel.h"
#include "kernels/gemm_small.h"
#include "kernels/kernels.h"
#include "thread/pool.h"

#define SMALL_MNK 8192

/* ---- narrow products, computed transposed ----
 * A product with fewer columns than the kernel's tile is wide (N < nr) wastes
 * most of each tile: conv1's weight gradient, 32 x 9 x 676, fills 9 of 32
 * AVX-512 lanes. Its transpose C^T = op(B)^T op(A)^T (9 x 32) fills them
 * all, so such a product with more rows than columns runs as that, into a
 * buffer on the stack, then is transposed into C. Each element's sum is the
 * same sequence of fmas (fma(a, b, s) and fma(b, a, s) are the same
 * rounding of the same exact product), and alpha, beta and the epilogue act
 * on it as before: the bytes are those of the direct formulation. */
#define NARROW_C 4096 /* elements of C: 16 KB of stack */

static bool narrow(const tg__gemm_kernel *kern, bool f64, const tg__gemm_job *job)
{
    return !f64 && job->N < kern->nr && job->M > job->N && job->M * job->N <= NARROW_C;
}

/* The transposed job, writing ct (N x M); C^T is copied in when beta reads
 * it. */
static tg__gemm_job transposed(const tg__gemm_job *job, float *ct)
{
    tg__gemm_job t = *job;
    t.trans_a = !job->trans_b;
    t.trans_b = !job->trans_a;
    t.M = job->N;
    t.N = job->M;
    t.A = job->B;
    t.lda = job->ldb;
    t.B = job->A;
    t.ldb = job->lda;
    t.C = ct;
    t.ldc = job->M;
    t.bias_per_col = !job->bias_per_col;
    t.seg_a = job->seg_b;
    t.seg_b = job->seg_a;
    t.b_readable = 0; // B is A now
    const float *C = job->C;
    for (int64_t i = 0; job->beta != 0 && i < job->M; i++)
        for (int64_t j = 0; j < job->N; j++)
            ct[j * job->M + i] = C[i * job->ldc + j];
    return t;
}

static void untranspose(const tg__gemm_job *job, const float *ct)
{
    float *C = job->C;
    for (int64_t i = 0; i < job->M; i++)
        for (int64_t j = 0; j < job->N; j++)
            C[i * job->ldc + j] = ct[j * job->M + i];
}

/* Bytes of packing scratch for a job (a block of at most its size needs no
 * more), and for its transpose when that is what runs. */
static size_t scratch_bytes(const tg__gemm_kernel *kern, bool f64, const tg__gemm_job *job)
{
    int64_t es = f64 ? 8 : 4, mr = f64 ? kern->mr_f64 : kern->mr;
    int64_t nr = f64 ? kern->nr_f64 : kern->nr;
    int64_t elems = tg__gemm_scratch_elems(job, es, mr, nr);
    if (narrow(kern, f64, job)) {
        tg__gemm_job t = *job;
        t.trans_a = !job->trans_b;
        t.M = job->N;
        t.N = job->M;
        int64_t te = tg__gemm_scratch_elems(&t, es, mr, nr);
        elems = te > elems ? te : elems;
    }
    return (size_t)(es * elems);
}

/* One block of C on the calling thread; ws is its packing scratch (NULL: run
 * unpacked). */
static void run_block(const tg__gemm_kernel *kern, bool f64, const tg__gemm_job *job,
                      bool direct, void *ws)
{
    if (!direct) {
        if (ws) {
            if (f64)
                kern->packed_f64(job, ws);
            else
                kern->packed_f32(job, ws);
            return;
        }
    }
    if (f64)
        kern->direct_f64(job);
    else
        kern->direct_f32(job);
}

typedef struct split {
    const tg__gemm_kernel *kern;
    tg__gemm_job whole;
    bool f64, direct;
    int64_t rows, cols, tn; /* block size, blocks per row of blocks */
} split;

static void split_task(void *ctx, int64_t t, void *ws)
{
    const split *s = ctx;
    const tg__gemm_job *w = &s->whole;
    int64_t i0 = t / s->tn * s->rows, j0 = t % s->tn * s->cols;
    if (i0 >= w->M || j0 >= w->N)
        return;
    tg__gemm_job job = *w;
    size_t es = s->f64 ? 8 : 4;
    job.M = w->M - i0 < s->rows ? w->M - i0 : s->rows;
    job.N = w->N - j0 < s->cols ? w->N - j0 : s->cols;
    job.A = (const char *)w->A + (size_t)(w->trans_a ? i0 : i0 * w->lda) * es;
    job.B = (const char *)w->B + (size_t)(w->trans_b ? j0 * w->ldb : j0) * es;
    job.C = (char *)w->C + (size_t)(i0 * w->ldc + j0) * es;
    if (w->bias)
        job.bias = (const char *)w->bias + (size_t)(w->bias_per_col ? j0 : i0) * es;
    job.b_readable = w->b_readable > j0 ? w->b_readable - j0 : 0;
    run_block(s->kern, s->f64, &job, s->direct, ws);
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static void gemm_packed(const tg__gemm_kernel *kern, bool f64, const tg__gemm_job *job,
                        double work);

static void gemm(bool f64, tg__gemm_job *job)
{
    const tg__gemm_kernel *kern = tg__gemm_current();
    job->kcb = tg__gemm_depth_block(job->seg ? job->seg : job->K);
    double work = (double)job->M * (double)job->N * (double)job->K;
    bool direct = work <= SMALL_MNK;
    if (direct) { // far below any thread's share of work
        run_block(kern, f64, job, true, NULL);
        return;
    }
    if (narrow(kern, f64, job)) {
        _Alignas(64) float ct[NARROW_C];
        tg__gemm_job t = transposed(job, ct);
        gemm_packed(kern, f64, &t, work);
        untranspose(job, ct);
        return;
    }
    gemm_packed(kern, f64, job, work);
}

/* A product above SMALL_MNK, on one thread or split between several. */
static void gemm_packed(const tg__gemm_kernel *kern, bool f64, const tg__gemm_job *job,
                        double work)
{
    int nt = tg__threads_for(work);
    if (nt <= 1) {
        run_block(kern, f64, job, false, tg__workspace(scratch_bytes(kern, f64, job)));
        return;
    }
    // Twice as many blocks as threads, so a thread slowed by other work on
    // the machine does not hold up the rest; whole tiles only.
    int64_t mr = f64 ? kern->mr_f64 : kern->mr, nr = f64 ? kern->nr_f64 : kern->nr;
    int64_t want = 2 * (int64_t)nt, col_tiles = ceil_div(job->N, nr);
    int64_t row_tiles = ceil_div(job->M, mr);
    int64_t tn = col_tiles < want ? col_tiles : want;
    int64_t tm = ceil_div(want, tn) < row_tiles ? ceil_div(want, tn) : row_tiles;
    split s = {.kern = kern, .whole = *job, .f64 = f64, .direct = false};
    s.cols = ceil_div(col_tiles, tn) * nr;
    s.rows = ceil_div(row_tiles, tm) * mr;
    s.tn = ceil_div(job->N, s.cols);
    // Scratch for a whole block, so that every thread's fits any block.
    tg__gemm_job block = *job;
    block.M = s.rows < job->M ? s.rows : job->M;
    block.N = s.cols < job->N ? s.cols : job->N;
    size_t ws_bytes = scratch_bytes(kern, f64, &block);
    tg__parallel_for(ceil_div(job->M, s.rows) * s.tn, ws_bytes, split_task, &s);
}

/* The single-thread entry for callers that split work themselves (a batch of
 * convolutions, one image per task): the same product, on this thread only,
 * with the caller's scratch. */
static tg__gemm_job job_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                            float alpha, const float *A, int64_t lda, const float *B,
                            int64_t ldb, float beta, float *C, int64_t ldc,
                            const tg__gemm_epi *epi)
{
    tg__gemm_job job = {.trans_a = trans_a, .trans_b = trans_b, .M = M, .N = N, .K = K,
                        .alpha = alpha, .beta = beta, .A = A, .lda = lda, .B = B, .ldb = ldb,
                        .C = C, .ldc = ldc, .kcb = tg__gemm_depth_block(K)};
    if (epi) {
        job.bias = epi->bias;
        job.bias_per_col = epi->bias_per_col;
        job.relu = epi->relu;
        job.b_readable = epi->b_readable;
    }
    return job;
}

int64_t tg__gemm_b_ld_f32(int64_t N, int64_t K)
{
    enum { WIDEST = 64 }; // floats: every kernel's nr divides it
    if (N <= 0 || N > INT64_MAX - WIDEST)
        return N;
    int64_t padded = (N + WIDEST - 1) / WIDEST * WIDEST;
    return tg__gemm_b_in_place(tg__gemm_depth_block(K), padded * (int64_t)sizeof(float)) ? padded
                                                                                         : N;
}

size_t tg__gemm_f32_scratch(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K)
{
    if (M <= 0 || N <= 0 || K <= 0 || (double)M * (double)N * (double)K <= SMALL_MNK)
        return 0;
    tg__gemm_job job = job_f32(trans_a, trans_b, M, N, K, 1, NULL, 0, NULL, 0, 0, NULL, 0, NULL);
    return scratch_bytes(tg__gemm_current(), false, &job);
}

void tg__gemm_f32_serial(void *scratch, bool trans_a, bool trans_b, int64_t M, int64_t N,
                         int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                         int64_t ldb, float beta, float *C, int64_t ldc, const tg__gemm_epi *epi)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0 || alpha == 0) {
        tg__gemm_f32_epi(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epi);
        return;
    }
    tg__gemm_job job = job_f32(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                               epi);
    bool direct = (double)M * (double)N * (double)K <= SMALL_MNK;
    const tg__gemm_kernel *kern = tg__gemm_current();
    if (!direct && scratch && narrow(kern, false, &job)) {
        _Alignas(64) float ct[NARROW_C];
        tg__gemm_job t = transposed(&job, ct);
        run_block(kern, false, &t, false, scratch);
        untranspose(&job, ct);
        return;
    }
    run_block(kern, false, &job, direct, scratch);
}

/* C = beta C, for K == 0 or alpha == 0 (C is not read when beta == 0). */
#define SCALE_C(T)                                                                 \
    for (int64_t i = 0; i < M; i++) {                                              \
        T *c = C + i * ldc;                                                        \
        if (beta == 0)                                                             \
            memset(c, 0, (size_t)N * sizeof(T));                                   \
        else if (beta != 1)                                                        \
            for (int64_t j = 0; j < N; j++)                                        \
                c[j] *= beta;                                                      \
    }

/* The epilogue after SCALE_C, in the kernels' arithmetic (gemm_template.h). */
#define EPILOGUE_C(T)                                                              \
    for (int64_t i = 0; epi && i < M; i++) {                                       \
        T *c = C + i * ldc;                                                        \
        const T *bias = epi->bias;                                                 \
        for (int64_t j = 0; bias && j < N; j++)                                    \
            c[j] = c[j] + bias[epi->bias_per_col ? j : i];                         \
        for (int64_t j = 0; epi->relu && j < N; j++)                               \
            c[j] = c[j] > 0 || c[j] != c[j] ? c[j] : 0;                            \
    }

#define GEMM_BODY(T, IS_F64)                                                       \
    if (M <= 0 || N <= 0)                                                          \
        return;                                                                    \
    if (K <= 0 || alpha == 0) {                                                    \
        SCALE_C(T)                                                                 \
        EPILOGUE_C(T)                                                              \
        return;                                                                    \
    }                                                                              \
    tg__gemm_job job = {.trans_a = trans_a, .trans_b = trans_b, .M = M, .N = N, .K = K, \
                        .alpha = alpha, .beta = beta, .A = A, .lda = lda, .B = B,  \
                        .ldb = ldb, .C = C, .ldc = ldc};                           \
    if (epi) {                                                                     \
        job.bias = epi->bias;                                                      \
        job.bias_per_col = epi->bias_per_col;                                      \
        job.relu = epi->relu;                                                      \
        job.b_readable = epi->b_readable;                                          \
    }                                                                              \
    gemm(IS_F64, &job);

void tg__gemm_f32_epi(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                      float *C, int64_t ldc, const tg__gemm_epi *epi)
{
    if (tg__gemm_small_f32(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epi))
        return; // a tiny product: the short entry (gemm_small.c), the same bytes
    GEMM_BODY(float, false)
}

void tg__gemm_f64_epi(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                      double alpha, const double *A, int64_t lda, const double *B, int64_t ldb,
                      double beta, double *C, int64_t ldc, const tg__gemm_epi *epi)
{
    if (tg__gemm_small_f64(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epi))
        return;
    GEMM_BODY(double, true)
}

void tg__gemm_f32_segments(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t seg,
                           int64_t n_seg, float alpha, const float *A, int64_t lda,
                           int64_t seg_a, const float *B, int64_t ldb, int64_t seg_b,
                           float beta, float *C, int64_t ldc)
{
    int64_t K = seg * n_seg;
    if (M <= 0 || N <= 0)
        return;
    if (seg <= 0 || n_seg <= 0 || alpha == 0) {
        const tg__gemm_epi *epi = NULL;
        SCALE_C(float)
        EPILOGUE_C(float)
        return;
    }
    tg__gemm_job job = {.trans_a = trans_a, .trans_b = trans_b, .M = M, .N = N, .K = K,
                        .alpha = alpha, .beta = beta, .A = A, .lda = lda, .B = B, .ldb = ldb,
                        .C = C, .ldc = ldc, .seg = n_seg > 1 ? seg : 0, .seg_a = seg_a,
                        .seg_b = seg_b};
    gemm(false, &job);
}

void tg__gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc)
{
    // The same arguments: a jump, so a tiny product costs one call from the op.
    tg__gemm_small_first_f32(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void tg__gemm_f64(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                  const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
                  double *C, int64_t ldc)
{
    tg__gemm_small_first_f64(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
