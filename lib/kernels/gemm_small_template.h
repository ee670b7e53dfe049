/* gemm_small_template.h - gemm_small.c's loops for one element type, included
 * once for float and once for double (no include guard). Define T, V (the
 * AVX2 vector of T), W (its lanes), FN(x), and IS_F64 for double. */

#ifdef IS_F64
#define VZERO() _mm256_setzero_pd()
#define VSET1(x) _mm256_set1_pd(x)
#define VFMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define VMUL(a, b) _mm256_mul_pd(a, b)
#define VADD(a, b) _mm256_add_pd(a, b)
#define VLOAD(p) _mm256_loadu_pd(p)
#define VSTORE(p, v) _mm256_storeu_pd(p, v)
#define VLOADM(p, m) _mm256_maskload_pd(p, m)
#define VSTOREM(p, m, v) _mm256_maskstore_pd(p, m, v)
#define VKEEP(v) _mm256_and_pd(_mm256_cmp_pd(v, _mm256_setzero_pd(), _CMP_NLE_UQ), v)
#define LANES_BELOW(n) _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3))
#define SFMA fma
#else
#define VZERO() _mm256_setzero_ps()
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#define VLOADM(p, m) _mm256_maskload_ps(p, m)
#define VSTOREM(p, m, v) _mm256_maskstore_ps(p, m, v)
#define VKEEP(v) _mm256_and_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NLE_UQ), v)
#define LANES_BELOW(n)                                                             \
    _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define SFMA fmaf
#endif

/* One finished sum s of C's element *c: alpha, beta, then bias and ReLU (the
 * ReLU keeps NaN: v > 0 || v != v). bias NULL: none. */
static inline __attribute__((always_inline)) TARGET void
FN(finish)(T *c, T s, T alpha, T beta, const T *bias, bool relu)
{
    T v = alpha != 1 ? s * alpha : s;
    v = beta == 0 ? v : SFMA(beta, *c, v);
    if (bias)
        v = v + *bias;
    if (relu)
        v = v > 0 || v != v ? v : 0;
    *c = v;
}

/* The same for W sums at once, stored to c (all lanes when whole, else those
 * in mask). bias: W values at bias, or one for all lanes when bias_one;
 * NULL: none. */
static inline __attribute__((always_inline)) TARGET void
FN(vfinish)(T *c, V s, bool whole, __m256i mask, T alpha, T beta, const T *bias, bool bias_one,
            bool relu)
{
    if (alpha != 1)
        s = VMUL(s, VSET1(alpha));
    if (beta != 0)
        s = VFMA(VSET1(beta), whole ? VLOAD(c) : VLOADM(c, mask), s);
    if (bias)
        s = VADD(s, bias_one ? VSET1(*bias) : whole ? VLOAD(bias) : VLOADM(bias, mask));
    if (relu)
        s = VKEEP(s);
    if (whole)
        VSTORE(c, s);
    else
        VSTOREM(c, mask, s);
}

/* op(B)'s rows contiguous (bn == 1): W columns of a row of C per vector,
 * four rows at a time sharing each load of B; a short last group of columns
 * loads and stores only its lanes. */
static inline __attribute__((always_inline)) TARGET void
FN(by_cols)(int64_t M, int64_t N, int64_t K, T alpha, const T *A, int64_t ak, int64_t am,
            const T *B, int64_t bk, T beta, T *C, int64_t ldc, const tg__gemm_epi *epi)
{
    const T *bias = epi ? epi->bias : NULL;
    const bool per_col = epi && epi->bias_per_col, relu = epi && epi->relu;
    const int64_t full = N / W * W;
    const __m256i mask = LANES_BELOW(N - full);
    int64_t i = 0;
    for (; i + 4 <= M; i += 4) {
        const T *a = A + i * am;
        T *c = C + i * ldc;
        for (int64_t j = 0; j < N; j += W) {
            const bool whole = j < full;
            V s0 = VZERO(), s1 = s0, s2 = s0, s3 = s0;
            for (int64_t k = 0; k < K; k++) {
                const V b = whole ? VLOAD(B + k * bk + j) : VLOADM(B + k * bk + j, mask);
                const T *ap = a + k * ak;
                s0 = VFMA(VSET1(ap[0]), b, s0);
                s1 = VFMA(VSET1(ap[am]), b, s1);
                s2 = VFMA(VSET1(ap[2 * am]), b, s2);
                s3 = VFMA(VSET1(ap[3 * am]), b, s3);
            }
            const T *bj = bias ? bias + (per_col ? j : i) : NULL;
            FN(vfinish)(c + j, s0, whole, mask, alpha, beta, bj, !per_col, relu);
            FN(vfinish)(c + ldc + j, s1, whole, mask, alpha, beta, bj && !per_col ? bj + 1 : bj,
                        !per_col, relu);
            FN(vfinish)(c + 2 * ldc + j, s2, whole, mask, alpha, beta,
                        bj && !per_col ? bj + 2 : bj, !per_col, relu);
            FN(vfinish)(c + 3 * ldc + j, s3, whole, mask, alpha, beta,
                        bj && !per_col ? bj + 3 : bj, !per_col, relu);
        }
    }
    for (; i < M; i++) {
        const T *a = A + i * am;
        T *c = C + i * ldc;
        for (int64_t j = 0; j < N; j += W) {
            const bool whole = j < full;
            V s = VZERO();
            for (int64_t k = 0; k < K; k++)
                s = VFMA(VSET1(a[k * ak]),
                         whole ? VLOAD(B + k * bk + j) : VLOADM(B + k * bk + j, mask), s);
            FN(vfinish)(c + j, s, whole, mask, alpha, beta,
                        bias ? bias + (per_col ? j : i) : NULL, !per_col, relu);
        }
    }
}

/* The n <= W sums in s for a column of C from c down (stride ldc), one at a
 * time; out of line, so that its buffer does not give the short entry a
 * realigned stack frame. */
static __attribute__((noinline)) TARGET void
FN(finish_column)(T *c, int64_t ldc, V s, int64_t n, T alpha, T beta, const T *bias,
                  bool bias_one, bool relu)
{
    T lane[W];
    VSTORE(lane, s);
    for (int64_t l = 0; l < n; l++)
        FN(finish)(c + l * ldc, lane[l], alpha, beta, bias ? bias + (bias_one ? 0 : l) : NULL,
                   relu);
}

/* op(A)'s columns contiguous (am == 1) and few columns of C: W rows of a
 * column of C per vector; stored as a vector when C is one column (ldc 1),
 * else finished one element at a time. */
static inline __attribute__((always_inline)) TARGET void
FN(by_rows)(int64_t M, int64_t N, int64_t K, T alpha, const T *A, int64_t ak, const T *B,
            int64_t bk, int64_t bn, T beta, T *C, int64_t ldc, const tg__gemm_epi *epi)
{
    const T *bias = epi ? epi->bias : NULL;
    const bool per_col = epi && epi->bias_per_col, relu = epi && epi->relu;
    const int64_t full = M / W * W;
    const __m256i mask = LANES_BELOW(M - full);
    for (int64_t j = 0; j < N; j++) {
        const T *b = B + j * bn;
        for (int64_t i = 0; i < M; i += W) {
            const bool whole = i < full;
            V s = VZERO();
            for (int64_t k = 0; k < K; k++)
                s = VFMA(whole ? VLOAD(A + k * ak + i) : VLOADM(A + k * ak + i, mask),
                         VSET1(b[k * bk]), s);
            if (ldc == 1) {
                FN(vfinish)(C + i + j, s, whole, mask, alpha, beta,
                            bias ? bias + (per_col ? j : i) : NULL, per_col, relu);
                continue;
            }
            FN(finish_column)(C + i * ldc + j, ldc, s, M - i < W ? M - i : W, alpha, beta,
                              bias ? bias + (per_col ? j : i) : NULL, per_col, relu);
        }
    }
}

/* Neither operand contiguous along C (a column of C from rows of A, or B
 * transposed with depth > 1): scalar chains, four rows at a time sharing
 * each load of B. */
static inline __attribute__((always_inline)) TARGET void
FN(by_element)(int64_t M, int64_t N, int64_t K, T alpha, const T *A, int64_t ak, int64_t am,
               const T *B, int64_t bk, int64_t bn, T beta, T *C, int64_t ldc,
               const tg__gemm_epi *epi)
{
    const T *bias = epi ? epi->bias : NULL;
    const bool per_col = epi && epi->bias_per_col, relu = epi && epi->relu;
    for (int64_t j = 0; j < N; j++) {
        const T *b = B + j * bn;
        int64_t i = 0;
        for (; i + 4 <= M; i += 4) {
            const T *a = A + i * am;
            T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int64_t k = 0; k < K; k++) {
                const T bv = b[k * bk], *ap = a + k * ak;
                s0 = SFMA(ap[0], bv, s0);
                s1 = SFMA(ap[am], bv, s1);
                s2 = SFMA(ap[2 * am], bv, s2);
                s3 = SFMA(ap[3 * am], bv, s3);
            }
            const T *bj = bias ? bias + (per_col ? j : i) : NULL;
            FN(finish)(C + i * ldc + j, s0, alpha, beta, bj, relu);
            FN(finish)(C + (i + 1) * ldc + j, s1, alpha, beta, bj && !per_col ? bj + 1 : bj, relu);
            FN(finish)(C + (i + 2) * ldc + j, s2, alpha, beta, bj && !per_col ? bj + 2 : bj, relu);
            FN(finish)(C + (i + 3) * ldc + j, s3, alpha, beta, bj && !per_col ? bj + 3 : bj, relu);
        }
        for (; i < M; i++) {
            const T *a = A + i * am;
            T s = 0;
            for (int64_t k = 0; k < K; k++)
                s = SFMA(a[k * ak], b[k * bk], s);
            FN(finish)(C + i * ldc + j, s, alpha, beta, bias ? bias + (per_col ? j : i) : NULL,
                       relu);
        }
    }
}

static inline __attribute__((always_inline)) TARGET void
FN(small)(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T *A,
          int64_t lda, const T *B, int64_t ldb, T beta, T *C, int64_t ldc,
          const tg__gemm_epi *epi)
{
    // Strides of op(A) along depth (ak) and rows (am), of op(B) along depth
    // (bk) and columns (bn).
    const int64_t ak = trans_a ? lda : 1, am = trans_a ? 1 : lda;
    const int64_t bk = trans_b ? 1 : ldb, bn = trans_b ? ldb : 1;
    // The plain product (alpha 1, beta 0, no epilogue: every product of a
    // layer and its gradients) with those as constants, so that finishing a
    // vector is one store.
    const bool plain = alpha == 1 && beta == 0 && !epi;
    if (am == 1 && (bn != 1 || (N < W && M > N))) {
        if (plain)
            FN(by_rows)(M, N, K, 1, A, ak, B, bk, bn, 0, C, ldc, NULL);
        else
            FN(by_rows)(M, N, K, alpha, A, ak, B, bk, bn, beta, C, ldc, epi);
    } else if (bn == 1 && N >= W / 2) {
        if (plain)
            FN(by_cols)(M, N, K, 1, A, ak, am, B, bk, 0, C, ldc, NULL);
        else
            FN(by_cols)(M, N, K, alpha, A, ak, am, B, bk, beta, C, ldc, epi);
    } else {
        if (plain)
            FN(by_element)(M, N, K, 1, A, ak, am, B, bk, bn, 0, C, ldc, NULL);
        else
            FN(by_element)(M, N, K, alpha, A, ak, am, B, bk, bn, beta, C, ldc, epi);
    }
}

#undef VZERO
#undef VSET1
#undef VFMA
#undef VMUL
#undef VADD
#undef VLOAD
#undef VSTORE
#undef VLOADM
#undef VSTOREM
#undef VKEEP
#undef LANES_BELOW
#undef SFMA
