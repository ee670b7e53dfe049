/* gemm_kernel.h - what gemm.c (the driver: threads, scratch, dispatch) shares
 * with the per-CPU GEMM kernels gemm_generic.c, gemm_avx2.c, gemm_avx512.c.
 * Private to lib/kernels.
 *
 * The arithmetic every kernel performs, so that all give identical bytes:
 * the depth K (or each depth segment, see tg__gemm_job) is cut into equal
 * blocks of kcb <= TG__GEMM_KC (kcb depends on K, or the segment, alone), and
 * for each element of C and each depth block in order
 *
 *     s = 0;  for k in the block, in order:  s = fma(a[i][k], b[k][j], s)
 *     v = alpha == 1 ? s : s * alpha
 *     C = first block ? (beta == 0 ? v : fma(beta, C, v)) : fma(1, C, v)
 *
 * and after the last block the optional epilogue (bias add, then ReLU; see
 * tg__gemm_job), with fma rounded once (C99 fmaf/fma, or the FMA
 * instructions). The files are compiled with -ffp-contract=off so that the compiler adds no fused
 * operation of its own; every fma is written out. How rows and columns are
 * tiled, packed or split between threads never enters that sequence. */
#ifndef TG_KERNELS_GEMM_KERNEL_H
#define TG_KERNELS_GEMM_KERNEL_H

#include <stdbool.h>
#include <stdint.h>

/* Depth block: a kc x NR strip of packed B must stay in L1 while the strips
 * of A stream past it; 320 floats x 16 columns is 20 KB of a 32 KB L1. Fixed
 * for all kernels: it decides the order of the additions. */
#define TG__GEMM_KC 320
/* At most this many multiply-adds in one depth block: the direct path computes
 * each element's chain on its own (gemm_template.h, tiny). */
#define TG__GEMM_TINY 2048
/* Rows of A packed at once (a multiple of every MR): the block lives in L2. */
#define TG__GEMM_MC 144
/* Untransposed B is read in place, not packed, when its depth block is at
 * most TG__GEMM_B_IN_PLACE_K deep (its few rows stay in L1 whatever the
 * stride, and packing them would cost about as much as the product:
 * conv1.fwd, K = 9), or when its rows lie at most TG__GEMM_B_IN_PLACE_LD
 * bytes apart: a strip then spans few pages and spreads over the cache sets
 * much as a packed one does, and a product of few rows (conv2.fwd, 64 x 121
 * x 288) no longer spends an eighth of its time packing. Measured on the
 * Xeon, AVX-512, B's rows 128-256 floats apart: 157 -> 177 GFLOP/s; 512
 * apart: 155 -> 144, so the limit. */
#define TG__GEMM_B_IN_PLACE_K 16
#define TG__GEMM_B_IN_PLACE_LD 1024
/* Bytes of packed B per (kc x nc) block: about half of a 1 MB L2. */
#define TG__GEMM_B_BYTES (512 * 1024)

/* One product (or one thread's block of it); alpha and beta are exact copies
 * of the caller's float or double. */
typedef struct tg__gemm_job {
    bool trans_a, trans_b;
    int64_t M, N, K;
    double alpha, beta;
    const void *A;
    int64_t lda;
    const void *B;
    int64_t ldb;
    void *C;
    int64_t ldc;
    int64_t kcb; /* the depth block, from the whole product's K */
    /* The epilogue, applied to each element v of C once its last depth block
     * is in (while the tile is still in cache): v = v + bias[i] (or bias[j]
     * when bias_per_col) when bias is set, then v = v > 0 || v != v ? v : 0
     * when relu: the same two roundings as a separate bias add and ReLU, so
     * the result is the unfused composition's to the bit. bias has the
     * element type of C and is indexed from this job's first row/column. */
    const void *bias;
    bool bias_per_col, relu;
    /* Segments (0: none): the depth is n segments of seg, segment s reading
     * A + s*seg_a and B + s*seg_b (elements) at depths [0, seg) of its own,
     * as in a sum of per-image products; kcb then divides seg into equal
     * blocks, so no block straddles two segments. */
    int64_t seg, seg_a, seg_b;
    /* Columns of each row of untransposed B that may be read, from this
     * job's B (0: N); past N they hold finite values (zeros, say). A ragged
     * last strip they cover is read in place like the full ones, as whole
     * vectors: its lanes past N are chains of their own, never stored. */
    int64_t b_readable;
} tg__gemm_job;

/* Whether a depth block kc deep of untransposed B, rows ldb_bytes apart, is
 * read in place (see TG__GEMM_B_IN_PLACE_K). */
static inline bool tg__gemm_b_in_place(int64_t kc, int64_t ldb_bytes)
{
    return kc <= TG__GEMM_B_IN_PLACE_K || ldb_bytes <= TG__GEMM_B_IN_PLACE_LD;
}

static inline bool tg__gemm_has_epilogue(const tg__gemm_job *job)
{
    return job->bias || job->relu;
}

/* A kernel: its register tile (mr x nr) and two ways to run a job with the
 * same arithmetic. `packed` uses scratch of packed_floats(job) elements
 * (64-byte aligned); `direct` needs none (small products, and the fallback
 * when scratch cannot be had). */
typedef struct tg__gemm_kernel {
    const char *name;
    bool (*supported)(void);
    int mr, nr, mr_f64, nr_f64;
    void (*packed_f32)(const tg__gemm_job *job, float *scratch);
    void (*direct_f32)(const tg__gemm_job *job);
    void (*packed_f64)(const tg__gemm_job *job, double *scratch);
    void (*direct_f64)(const tg__gemm_job *job);
} tg__gemm_kernel;

extern const tg__gemm_kernel tg__gemm_generic;
extern const tg__gemm_kernel tg__gemm_avx2;
extern const tg__gemm_kernel tg__gemm_avx512;

/* The float64 kernels of the AVX2 file, which the AVX-512 kernel shares. */
void tg__gemm_avx2_packed_f64(const tg__gemm_job *job, double *scratch);
void tg__gemm_avx2_direct_f64(const tg__gemm_job *job);

/* Equal depth blocks of at most TG__GEMM_KC for a depth (or segment) K: 288
 * is one block of 288, not 256 + 32, so no pass over C does a sliver of the
 * work. The same for every kernel: it fixes the order of the additions. */
static inline int64_t tg__gemm_depth_block(int64_t K)
{
    if (K <= TG__GEMM_KC)
        return K;
    int64_t blocks = (K + TG__GEMM_KC - 1) / TG__GEMM_KC;
    return (K + blocks - 1) / blocks;
}

/* Whether op(A) is packed. Untransposed A never is: the kernel's broadcasts
 * then read MR rows in place, each along contiguous memory, as fast as from
 * a packed strip, and the copy is saved (measured: 1024^3 94 vs 91 GFLOP/s,
 * the CNN's shapes up to 1.5x). Transposed A is read in place only for
 * shallow blocks: a strip then touches one cache line per depth step, and
 * beyond ~128 steps those lines and the B strip no longer fit in L1 together
 * (1024^3 transposed: 79 in place vs 94 packed). */
static inline bool tg__gemm_pack_a(const tg__gemm_job *job)
{
    return job->trans_a && job->kcb > 128;
}

/* Columns of B packed per block: a multiple of nr, at most N. */
static inline int64_t tg__gemm_ncb(const tg__gemm_job *job, int64_t esize, int nr)
{
    int64_t ncb = TG__GEMM_B_BYTES / (job->kcb * esize) / nr * nr;
    if (ncb < nr)
        ncb = nr;
    return job->N <= ncb ? job->N : ncb;
}

/* Elements of scratch a packed job needs: one B block, rounded up to whole
 * strips, and one A block when A is packed (a short last strip keeps the
 * full MR stride). */
static inline int64_t tg__gemm_scratch_elems(const tg__gemm_job *job, int64_t esize, int mr,
                                             int nr)
{
    int64_t ncb = tg__gemm_ncb(job, esize, nr);
    int64_t bcols = (ncb + nr - 1) / nr * nr;
    int64_t arows = tg__gemm_pack_a(job) ? (job->M < TG__GEMM_MC ? job->M : TG__GEMM_MC) + mr : 0;
    return job->kcb * (bcols + arows);
}

/* The kernel in use, chosen on first call (gemm_dispatch.c). */
const tg__gemm_kernel *tg__gemm_current(void);

#endif
