/* gemm_template.h - the blocked GEMM of one kernel and one element type,
 * included by gemm_generic.c, gemm_avx2.c and gemm_avx512.c (never on its
 * own: no include guard). The arithmetic is the one gemm_kernel.h spells out.
 *
 * The classic blocked scheme (Goto/BLIS): op(B) is packed, one kc x nc block
 * at a time, into strips NR columns wide; transposed op(A) is packed into
 * strips MR rows tall (untransposed A is read in place, see tg__gemm_pack_a);
 * a register-blocked micro-kernel then computes each MR x NR tile of C from a
 * pair of strips. Packing absorbs the transposes, so all four transpose
 * combinations run the same micro-kernel. Beta is applied as the first depth
 * block is written, so C is written once instead of cleared and read back;
 * ragged rows run kernels with exactly as many rows, the last two strips
 * sharing them evenly (FN(strip)).
 *
 * Define before including:
 *   T       float or double          FMA    fmaf or fma
 *   FN(x)   a unique name for x      TARGET the ISA attribute (or nothing)
 *   MR, NR  the register tile (NR a multiple of 8)
 *   and either MICRO, the name of a micro-kernel with the signature of
 *   lane_micro below, or LANE_MICRO for the portable one defined here. */
#include <string.h>

#define INL static inline __attribute__((always_inline)) TARGET

/* ---- the portable micro-kernel: NR lanes per row, each an fma chain ---- */
#ifdef LANE_MICRO
INL void FN(lane_tile)(const int rows, int64_t kc, const T *ap, int64_t rsa, int64_t csa,
                       const T *bp, int64_t ldbp, T *C, int64_t ldc, int64_t n, T alpha, T beta)
{
    T acc[MR][NR];
    for (int r = 0; r < rows; r++)
        for (int l = 0; l < NR; l++)
            acc[r][l] = 0;
    for (int64_t k = 0; k < kc; k++) {
        const T *b = bp + k * ldbp, *a = ap + k * csa;
        for (int r = 0; r < rows; r++) {
            T av = a[r * rsa];
            for (int l = 0; l < NR; l++)
                acc[r][l] = FMA(av, b[l], acc[r][l]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++) {
            T v = alpha != 1 ? acc[r][j] * alpha : acc[r][j];
            C[r * ldc + j] = beta == 0 ? v : FMA(beta, C[r * ldc + j], v);
        }
}

/* rows is a constant in each call below, so the loops over rows unroll. */
static TARGET void FN(lane_micro)(int rows, int64_t kc, const T *ap, int64_t rsa, int64_t csa,
                                  const T *bp, int64_t ldbp, T *C, int64_t ldc, int64_t n, T alpha, T beta)
{
    switch (rows) {
#define ROWS_CASE(R)                                                                 \
    case R:                                                                          \
        FN(lane_tile)(R < MR ? R : MR, kc, ap, rsa, csa, bp, ldbp, C, ldc, n, alpha, beta); \
        break;
        ROWS_CASE(1) ROWS_CASE(2) ROWS_CASE(3) ROWS_CASE(4)
        ROWS_CASE(5) ROWS_CASE(6) ROWS_CASE(7) ROWS_CASE(8)
#undef ROWS_CASE
    default:
        break;
    }
}
#define MICRO FN(lane_micro)
#endif

/* ---- packing ---- */

/* Transposed op(A) (A stored K x M) rows [i0, i0+mc), depth [k0, k0+kc) ->
 * strips of MR rows, k-major within a strip: dst[strip][k][r]. A short last
 * strip keeps the MR stride; its missing rows are never read (the kernel for
 * that strip has fewer rows), so they are left unset. */
INL void FN(pack_a)(const T *A, int64_t lda, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                    T *dst)
{
    for (int64_t s = 0; s < mc; s += MR, dst += MR * kc) {
        int64_t rows = mc - s < MR ? mc - s : MR;
        for (int64_t k = 0; k < kc; k++) {
            const T *src = A + (k0 + k) * lda + i0 + s;
            for (int64_t r = 0; r < rows; r++)
                dst[k * MR + r] = src[r];
        }
    }
}

/* The vectorised part of a full transposed strip; returns the depth done. */
INL int64_t FN(pack_bt)(const T *src, int64_t ldb, int64_t kc, T *dst)
{
    int64_t k = 0;
#if defined(TG__TRANSPOSE8X8) && defined(IS_F32)
    for (; k + 8 <= kc; k += 8)
        for (int cb = 0; cb < NR / 8; cb++)
            tg__transpose8x8_f32(src + cb * 8 * ldb + k, ldb, dst + k * NR + cb * 8, NR);
#else
    (void)src, (void)ldb, (void)kc, (void)dst;
#endif
    return k;
}

/* One row of a ragged strip: src's w < NR elements, then zeros up to NR. A
 * kernel may define RAGGED_ROW(src, w, dst) to do it with masked loads. */
INL void FN(copy_ragged_row)(const T *src, int64_t w, T *dst)
{
#ifdef RAGGED_ROW
    RAGGED_ROW(src, w, dst);
#else
    for (int64_t c = 0; c < NR; c++)
        dst[c] = c < w ? src[c] : 0;
#endif
}

/* op(B) depth [k0, k0+kc), columns [j0, j0+nc) -> strips of NR columns:
 * dst[strip][k][c]. Columns past nc are zero: the kernel reads whole
 * vectors, and garbage there (denormals, NaN) could slow it down. */
INL void FN(pack_b)(bool trans_b, const T *B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                    int64_t nc, T *dst)
{
    for (int64_t s = 0; s < nc; s += NR, dst += NR * kc) {
        int64_t w = nc - s < NR ? nc - s : NR;
        if (w < NR && trans_b)
            memset(dst, 0, (size_t)(NR * kc) * sizeof(T));
        if (trans_b && w == NR) {
            const T *src = B + (j0 + s) * ldb + k0;
            for (int64_t k = FN(pack_bt)(src, ldb, kc, dst); k < kc; k++)
                for (int64_t c = 0; c < NR; c++)
                    dst[k * NR + c] = src[c * ldb + k];
        } else if (trans_b) {
            // Eight columns at a time through the transposes, then the
            // rest depth by depth: a pass per column down the strip would
            // stride NR elements a store, and a deep strip of 64 columns
            // leaves L1 before the next pass (9 x 32 x 676 with B
            // transposed: 7 GFLOP/s).
            const T *src = B + (j0 + s) * ldb + k0;
            int64_t c8 = 0;
#if defined(TG__TRANSPOSE8X8) && defined(IS_F32)
            for (int64_t k; c8 + 8 <= w; c8 += 8) {
                for (k = 0; k + 8 <= kc; k += 8)
                    tg__transpose8x8_f32(src + c8 * ldb + k, ldb, dst + k * NR + c8, NR);
                for (; k < kc; k++)
                    for (int64_t c = c8; c < c8 + 8; c++)
                        dst[k * NR + c] = src[c * ldb + k];
            }
#endif
            for (int64_t k = 0; k < kc && c8 < w; k++)
                for (int64_t c = c8; c < w; c++)
                    dst[k * NR + c] = src[c * ldb + k];
        } else if (w == NR) {
            for (int64_t k = 0; k < kc; k++)
                memcpy(dst + k * NR, B + (k0 + k) * ldb + j0 + s, NR * sizeof(T));
        } else {
            // Row by row, the zero columns written with the copied ones: a
            // copy loop of w < NR elements becomes a call to memcpy (or rep
            // movs), which costs more than the copy (CNN per-image products,
            // N = 121: 8% of the GEMM).
            for (int64_t k = 0; k < kc; k++)
                FN(copy_ragged_row)(B + (k0 + k) * ldb + j0 + s, w, dst + k * NR);
        }
    }
}

/* ---- the epilogue (gemm_kernel.h): bias and ReLU on a finished block ---- */

/* C's rows [i0, i0+rows) x columns [j0, j0+cols), relative to the job. */
INL void FN(epilogue)(const tg__gemm_job *job, int64_t i0, int64_t rows, int64_t j0,
                      int64_t cols)
{
    const T *bias = job->bias;
    const bool per_col = job->bias_per_col, relu = job->relu;
    for (int64_t r = 0; r < rows; r++) {
        T *c = (T *)job->C + (i0 + r) * job->ldc + j0;
        if (bias) {
            if (per_col)
                for (int64_t j = 0; j < cols; j++)
                    c[j] = c[j] + bias[j0 + j];
            else {
                const T b = bias[i0 + r];
                for (int64_t j = 0; j < cols; j++)
                    c[j] = c[j] + b;
            }
        }
        if (relu)
            for (int64_t j = 0; j < cols; j++)
                c[j] = c[j] > 0 || c[j] != c[j] ? c[j] : 0;
    }
}

/* ---- depth segments (gemm_kernel.h) ---- */

/* The operands of the block at (global) depth k0: bases *As, *Bs, the depth
 * *kl within them, and the global depth where the segment ends. */
INL int64_t FN(segment)(const tg__gemm_job *job, int64_t k0, const T **As, const T **Bs,
                        int64_t *kl)
{
    if (!job->seg) {
        *As = job->A;
        *Bs = job->B;
        *kl = k0;
        return job->K;
    }
    int64_t s = k0 / job->seg;
    *As = (const T *)job->A + s * job->seg_a;
    *Bs = (const T *)job->B + s * job->seg_b;
    *kl = k0 - s * job->seg;
    return (s + 1) * job->seg;
}

/* ---- the two drivers ---- */

/* Row strip t of an mc-row block: its first row (returned) and *rows. When
 * mc is not a multiple of MR the last two strips share the MR + rest rows
 * evenly (8 + 1 -> 5 + 4): a strip of one to three rows has too few fma
 * chains to hide the fma latency, while four or more keep both units busy. */
INL int64_t FN(strip)(int64_t mc, int64_t t, int64_t *rows)
{
    const int64_t full = mc / MR, rest = mc - full * MR;
    if (rest == 0 || full == 0 || t < full - 1) {
        *rows = mc - t * MR < MR ? mc - t * MR : MR;
        return t * MR;
    }
    const int64_t first = (MR + rest + 1) / 2;
    *rows = t == full - 1 ? first : MR + rest - first;
    return (full - 1) * MR + (t == full ? first : 0);
}

/* The blocked loops. j0 over nc columns of B, k0 over depth blocks (beta
 * applies on the first only, later blocks add with beta 1), i0 over MC rows
 * of A; then B strips outside A strips, so one B strip stays in L1 while the
 * rows of A stream past it from L2. Untransposed B is read in place when
 * its block is shallow or its rows are close (gemm_kernel.h), but for a
 * ragged last strip, which is packed with its zero columns unless B's rows
 * are readable past N (job->b_readable). */
static TARGET void FN(packed)(const tg__gemm_job *job, T *bpack)
{
    T *C = job->C;
    const int64_t M = job->M, N = job->N, K = job->K, lda = job->lda, ldb = job->ldb;
    const int64_t ldc = job->ldc, kcb = job->kcb;
    const T alpha = (T)job->alpha, beta = (T)job->beta;
    const bool trans_a = job->trans_a, pack_a = tg__gemm_pack_a(job);
    const bool epilogue = tg__gemm_has_epilogue(job);
    const int64_t ncb = tg__gemm_ncb(job, (int64_t)sizeof(T), NR);
    T *apack = bpack + kcb * ((ncb + NR - 1) / NR * NR);
    for (int64_t j0 = 0; j0 < N; j0 += ncb) {
        int64_t nc = N - j0 < ncb ? N - j0 : ncb;
        for (int64_t k0 = 0, kc; k0 < K; k0 += kc) {
            const T *A, *B;
            int64_t kl, end = FN(segment)(job, k0, &A, &B, &kl);
            kc = end - k0 < kcb ? end - k0 : kcb;
            T bk = k0 == 0 ? beta : 1;
            const bool b_in_place =
                !job->trans_b && tg__gemm_b_in_place(kc, ldb * (int64_t)sizeof(T));
            const bool ragged_readable = j0 + (nc + NR - 1) / NR * NR <= job->b_readable;
            const int64_t in_place_cols = !b_in_place ? 0 : ragged_readable ? nc : nc / NR * NR;
            if (in_place_cols < nc)
                FN(pack_b)(job->trans_b, B, ldb, kl, kc, j0 + in_place_cols, nc - in_place_cols,
                           bpack + in_place_cols * kc);
            for (int64_t i0 = 0; i0 < M; i0 += TG__GEMM_MC) {
                int64_t mc = M - i0 < TG__GEMM_MC ? M - i0 : TG__GEMM_MC;
                // A's block: start, row stride rsa, depth stride csa, and the
                // start of each strip.
                const T *ablk = trans_a ? A + kl * lda + i0 : A + i0 * lda + kl;
                int64_t rsa = trans_a ? 1 : lda, csa = trans_a ? lda : 1;
                int64_t strips = (mc + MR - 1) / MR, first[TG__GEMM_MC], rows[TG__GEMM_MC];
                const T *astrip[TG__GEMM_MC];
                for (int64_t t = 0; t < strips; t++) {
                    first[t] = FN(strip)(mc, t, &rows[t]);
                    astrip[t] = ablk + first[t] * rsa;
                    if (pack_a) {
                        astrip[t] = apack + t * MR * kc;
                        FN(pack_a)(A, lda, i0 + first[t], rows[t], kl, kc, apack + t * MR * kc);
                    }
                }
                if (pack_a) {
                    rsa = 1;
                    csa = MR;
                }
                for (int64_t js = 0; js < nc; js += NR) {
                    int64_t n = nc - js < NR ? nc - js : NR;
                    const bool here = js < in_place_cols;
                    const T *bp = here ? B + kl * ldb + j0 + js : bpack + js * kc;
                    const int64_t ldbp = here ? ldb : NR;
                    T *c = C + i0 * ldc + j0 + js;
                    for (int64_t t = 0; t < strips; t++) {
                        if (rows[t] == MR)
                            MICRO(MR, kc, astrip[t], rsa, csa, bp, ldbp, c + first[t] * ldc, ldc,
                                  n, alpha, bk);
                        else
                            MICRO((int)rows[t], kc, astrip[t], rsa, csa, bp, ldbp,
                                  c + first[t] * ldc, ldc, n, alpha, bk);
                    }
                    if (epilogue && k0 + kc == K) // this strip of C is final
                        FN(epilogue)(job, i0, mc, j0 + js, n);
                }
            }
        }
    }
}

#ifndef TG__GEMM_TEMPLATE_PACKED_ONLY
/* Products of one depth block and at most TG__GEMM_TINY multiply-adds (a
 * small network's layers): each element's fma chain directly, in the order
 * of gemm_kernel.h, with no accumulator rows to set up and write back. Where
 * op(B)'s columns are adjacent in memory, TINY_W of them run side by side,
 * in the kernel's vector type when it defines TINY_VEC; the lanes are
 * independent chains, so this changes no rounding. */
#define TINY_W 8
INL void FN(tiny_out)(T *c, T s, T alpha, T beta)
{
    T v = alpha != 1 ? s * alpha : s;
    *c = beta == 0 ? v : FMA(beta, *c, v);
}
static __attribute__((noinline)) TARGET void FN(tiny)(const tg__gemm_job *job)
{
    const T *A = job->A, *B = job->B;
    T *C = job->C;
    const int64_t M = job->M, N = job->N, K = job->K, ldc = job->ldc;
    const T alpha = (T)job->alpha, beta = (T)job->beta;
    const int64_t ak = job->trans_a ? job->lda : 1, am = job->trans_a ? 1 : job->lda;
    const int64_t bk = job->trans_b ? 1 : job->ldb, bn = job->trans_b ? job->ldb : 1;
    const int64_t wide = bn == 1 ? N & ~(int64_t)(TINY_W - 1) : 0; // TINY_W: a power of 2
    for (int64_t i = 0; i < M && wide; i++) {
        const T *a = A + i * am;
        T *c = C + i * ldc;
        for (int64_t j = 0; j < wide; j += TINY_W) {
#ifdef TINY_VEC
            TINY_VEC s = TINY_ZERO();
            for (int64_t k = 0; k < K; k++)
                s = TINY_FMA(TINY_SET1(a[k * ak]), TINY_LOAD(B + k * bk + j), s);
            if (alpha != 1)
                s = TINY_MUL(s, TINY_SET1(alpha));
            if (beta != 0)
                s = TINY_FMA(TINY_SET1(beta), TINY_LOAD(c + j), s);
            TINY_STORE(c + j, s);
#else
            T s[TINY_W];
            for (int l = 0; l < TINY_W; l++)
                s[l] = 0;
            for (int64_t k = 0; k < K; k++) {
                const T av = a[k * ak], *b = B + k * bk + j;
                for (int l = 0; l < TINY_W; l++)
                    s[l] = FMA(av, b[l], s[l]);
            }
            for (int l = 0; l < TINY_W; l++)
                FN(tiny_out)(c + j + l, s[l], alpha, beta);
#endif
        }
    }
    // The columns left over (all of them when op(B)'s columns are not
    // adjacent, and the one column of a layer with one output): four rows at
    // a time share each load of b, as four separate chains.
    for (int64_t j = wide; j < N; j++) {
        const T *b = B + j * bn;
        int64_t i = 0;
        for (; i + 4 <= M; i += 4) {
            const T *a = A + i * am;
            T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int64_t k = 0; k < K; k++) {
                const T bv = b[k * bk], *ap = a + k * ak;
                s0 = FMA(ap[0], bv, s0);
                s1 = FMA(ap[am], bv, s1);
                s2 = FMA(ap[2 * am], bv, s2);
                s3 = FMA(ap[3 * am], bv, s3);
            }
            FN(tiny_out)(C + i * ldc + j, s0, alpha, beta);
            FN(tiny_out)(C + (i + 1) * ldc + j, s1, alpha, beta);
            FN(tiny_out)(C + (i + 2) * ldc + j, s2, alpha, beta);
            FN(tiny_out)(C + (i + 3) * ldc + j, s3, alpha, beta);
        }
        for (; i < M; i++) {
            const T *a = A + i * am;
            T s = 0;
            for (int64_t k = 0; k < K; k++)
                s = FMA(a[k * ak], b[k * bk], s);
            FN(tiny_out)(C + i * ldc + j, s, alpha, beta);
        }
    }
    if (tg__gemm_has_epilogue(job))
        FN(epilogue)(job, 0, M, 0, N);
}
#undef TINY_W
#undef TINY_VEC

/* The same sums without packing, for products too small to repay it and
 * when there is no scratch memory. Untransposed B: each row of C is built
 * from rows of B (contiguous, so the lane loop vectorises); transposed B:
 * eight dot products at a time, for eight independent fma chains. */
#define DIRECT_JB 64
static __attribute__((noinline)) TARGET void FN(direct_rows)(const tg__gemm_job *job)
{
    T *C = job->C;
    const int64_t M = job->M, N = job->N, K = job->K, lda = job->lda, ldb = job->ldb;
    const int64_t ldc = job->ldc, kcb = job->kcb;
    const T alpha = (T)job->alpha, beta = (T)job->beta;
    const int64_t ak = job->trans_a ? lda : 1, am = job->trans_a ? 1 : lda; // A strides
    const int64_t bk = job->trans_b ? 1 : ldb, bn = job->trans_b ? ldb : 1; // B strides
    for (int64_t i = 0; i < M; i++) {
        T *c = C + i * ldc;
        for (int64_t j0 = 0; j0 < N; j0 += DIRECT_JB) {
            int64_t nj = N - j0 < DIRECT_JB ? N - j0 : DIRECT_JB;
            for (int64_t g0 = 0, kc; g0 < K; g0 += kc) {
                const T *A, *B;
                int64_t k0, end = FN(segment)(job, g0, &A, &B, &k0);
                kc = end - g0 < kcb ? end - g0 : kcb;
                const T *a = A + i * am;
                T acc[DIRECT_JB];
                for (int64_t j = 0; j < nj; j++)
                    acc[j] = 0;
                if (!job->trans_b) {
                    for (int64_t k = k0; k < k0 + kc; k++) {
                        T av = a[k * ak];
                        const T *b = B + k * bk + j0;
                        for (int64_t j = 0; j < nj; j++)
                            acc[j] = FMA(av, b[j], acc[j]);
                    }
                } else {
                    for (int64_t jg = 0; jg < nj; jg += 8) {
                        int64_t ng = nj - jg < 8 ? nj - jg : 8;
                        T s[8] = {0};
                        const T *b = B + (j0 + jg) * bn;
                        for (int64_t k = k0; k < k0 + kc; k++) {
                            T av = a[k * ak];
                            for (int64_t g = 0; g < ng; g++)
                                s[g] = FMA(av, b[g * bn + k * bk], s[g]);
                        }
                        for (int64_t g = 0; g < ng; g++)
                            acc[jg + g] = s[g];
                    }
                }
                T bb = g0 == 0 ? beta : 1;
                for (int64_t j = 0; j < nj; j++) {
                    T v = alpha != 1 ? acc[j] * alpha : acc[j];
                    c[j0 + j] = bb == 0 ? v : FMA(bb, c[j0 + j], v);
                }
            }
            if (tg__gemm_has_epilogue(job))
                FN(epilogue)(job, i, 1, j0, nj);
        }
    }
}
/* Both call out, so that a tiny product does not pay for the set-up of the
 * row loops. */
static TARGET void FN(direct)(const tg__gemm_job *job)
{
    if (job->K == job->kcb && (double)job->M * (double)job->N * (double)job->K <= TG__GEMM_TINY)
        FN(tiny)(job);
    else
        FN(direct_rows)(job);
}
#undef DIRECT_JB
#endif /* TG__GEMM_TEMPLATE_PACKED_ONLY */
#undef INL
#undef MICRO
#undef RAGGED_ROW
