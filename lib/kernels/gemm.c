/* gemm.c - the one matrix product of the library (see kernels.h).
 *
 *   C (M, N) = alpha op(A) (M, K) op(B) (K, N) + beta C, all row-major
 *
 * The classic blocked scheme (Goto/BLIS): op(B) is packed, one kc x nc block
 * at a time, into strips NR columns wide; op(A) is packed, scaled by alpha,
 * into strips MR rows tall; a register-blocked micro-kernel then computes
 * each MR x NR tile of C from a pair of strips with 2*MR vector accumulators.
 * Packing also absorbs the transposes, so all four transpose combinations
 * run the same kernel.
 *
 * Choices that matter for the CNN's small products (K of 9 to 1600, M and N
 * of 9 to 1600), measured with tools/bench/gemm_bench.c:
 *   - beta is applied by the micro-kernel as it writes the first depth
 *     block, so C is written once instead of being cleared (or scaled) in a
 *     separate pass and then read back;
 *   - the depth is cut into equal blocks (288 is one block of 288, not
 *     256 + 32), so no pass over C does a sliver of the work;
 *   - the ragged last strip of rows runs a kernel with only that many rows
 *     instead of multiplying zero padding.
 *
 * The micro-kernel uses GCC/clang vector extensions (no intrinsics). On
 * x86-64 Linux the whole blocked driver, kernels and packing inlined into it,
 * is compiled twice, for x86-64-v3 (AVX2+FMA) and for the baseline, and the
 * loader picks one when the library is loaded: one binary runs everywhere and
 * uses the wide units where they exist. Tiny products skip packing. */
#include <string.h>

#include "core/alloc.h"
#include "kernels/kernels.h"

#if defined(__x86_64__) && defined(__linux__) &&                                        \
    (!defined(__clang__) || __clang_major__ >= 14)
/* x86-64-v3: AVX2, FMA, BMI2, ... (Haswell and later, Zen). */
#define TG_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define TG_MULTIVERSION
#endif

/* Inlined into the multiversioned driver, so each copy gets the driver's ISA. */
#define INLINE static inline __attribute__((always_inline))

/* Depth block: a kc x NR strip of B (kc * 64 bytes) must stay in L1 while
 * the MR-row strips of A stream past it; 320 floats is 20 KB of a 32 KB L1. */
#define KC_MAX 320
/* Rows of A packed at once (multiple of MR): the packed block (MC x kc)
 * lives in L2. */
#define MC 144
/* Bytes of packed B per (kc x nc) block: about half of a 1 MB L2. */
#define B_BLOCK_BYTES (512 * 1024)
/* Products of at most this many multiply-adds cost less than packing. */
#define SMALL_MNK 8192

/* Vectors of 32 bytes; aligned(sizeof(T)) so loads from C need no particular
 * alignment (and memcpy keeps them free of aliasing questions). */
typedef float vf32 __attribute__((vector_size(32), aligned(4)));
typedef double vf64 __attribute__((vector_size(32), aligned(8)));

#define MR 6
#define NR_F32 16 /* two vectors of 8 floats */
#define NR_F64 8  /* two vectors of 4 doubles */

/* ---- packing ---- */

/* Transposed op(A) (A stored K x M) rows [i0, i0+mc), depth [k0, k0+kc) ->
 * strips of MR rows, k-major within a strip: dst[strip][k][r]. A short last
 * strip keeps the MR stride; its missing rows are never read (the kernel for
 * that strip has fewer rows), so they are left unset. Untransposed A is never
 * packed: see pack_a_rule. */
#define PACK_A(T)                                                                  \
    for (int64_t s = 0; s < mc; s += MR, dst += MR * kc) {                         \
        int64_t rows = mc - s < MR ? mc - s : MR;                                  \
        for (int64_t k = 0; k < kc; k++) {                                         \
            const T *src = A + (k0 + k) * lda + i0 + s;                            \
            for (int64_t r = 0; r < rows; r++)                                     \
                dst[k * MR + r] = src[r];                                          \
        }                                                                          \
    }

/* Eight columns x eight depths of a transposed B into a packed strip:
 * dst[k * NR + c] = src[c * ldb + k], as three rounds of shuffles (pairs,
 * quads, 128-bit halves) instead of 64 scalar loads and stores. Without
 * __builtin_shufflevector (GCC < 12) the scalar loop does it all. */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define SHUF __builtin_shufflevector
INLINE void transpose8x8_f32(const float *src, int64_t ldb, float *dst)
{
    vf32 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++)
        memcpy(&r[i], src + i * ldb, sizeof r[i]);
    for (int i = 0; i < 8; i += 2) {
        t[i] = SHUF(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[i + 1] = SHUF(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = SHUF(t[i], t[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 1] = SHUF(t[i], t[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[i + 2] = SHUF(t[i + 1], t[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 3] = SHUF(t[i + 1], t[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int i = 0; i < 4; i++) {
        vf32 lo = SHUF(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        vf32 hi = SHUF(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
        memcpy(dst + i * NR_F32, &lo, sizeof lo);
        memcpy(dst + (i + 4) * NR_F32, &hi, sizeof hi);
    }
}
#endif

/* The vectorised part of a full transposed strip; returns the depth done. */
INLINE int64_t pack_bt_f32(const float *src, int64_t ldb, int64_t kc, float *dst)
{
    int64_t k = 0;
#ifdef SHUF
    for (; k + 8 <= kc; k += 8) {
        transpose8x8_f32(src + k, ldb, dst + k * NR_F32);
        transpose8x8_f32(src + 8 * ldb + k, ldb, dst + k * NR_F32 + 8);
    }
#else
    (void)src, (void)ldb, (void)kc, (void)dst;
#endif
    return k;
}

/* float64 is for gradient checks more than speed: scalar. */
INLINE int64_t pack_bt_f64(const double *src, int64_t ldb, int64_t kc, double *dst)
{
    (void)src, (void)ldb, (void)kc, (void)dst;
    return 0;
}

/* op(B) depth [k0, k0+kc), columns [j0, j0+nc) -> strips of NR columns:
 * dst[strip][k][c]. Columns past nc are zero: the kernel reads whole
 * vectors, and garbage there (denormals, NaN) could slow it down. */
#define PACK_B(T, V, NR, SUFFIX)                                                      \
    for (int64_t s = 0; s < nc; s += NR, dst += NR * kc) {                         \
        int64_t w = nc - s < NR ? nc - s : NR;                                     \
        if (w < NR)                                                                \
            memset(dst, 0, (size_t)(NR * kc) * sizeof(T));                         \
        if (trans_b && w == NR) {                                                  \
            const T *src = B + (j0 + s) * ldb + k0;                                \
            for (int64_t k = pack_bt_##SUFFIX(src, ldb, kc, dst); k < kc; k++)     \
                for (int64_t c = 0; c < NR; c++)                                   \
                    dst[k * NR + c] = src[c * ldb + k];                            \
        } else if (trans_b) {                                                      \
            for (int64_t c = 0; c < w; c++) {                                      \
                const T *src = B + (j0 + s + c) * ldb + k0;                        \
                for (int64_t k = 0; k < kc; k++)                                   \
                    dst[k * NR + c] = src[k];                                      \
            }                                                                      \
        } else if (w == NR) {                                                      \
            /* Through vector registers: memcpy of 64 bytes became four        \
             * 16-byte moves. */                                                   \
            for (int64_t k = 0; k < kc; k++) {                                     \
                V v0, v1;                                                          \
                memcpy(&v0, B + (k0 + k) * ldb + j0 + s, sizeof v0);               \
                memcpy(&v1, B + (k0 + k) * ldb + j0 + s + NR / 2, sizeof v1);      \
                memcpy(dst + k * NR, &v0, sizeof v0);                              \
                memcpy(dst + k * NR + NR / 2, &v1, sizeof v1);                     \
            }                                                                      \
        } else {                                                                   \
            for (int64_t k = 0; k < kc; k++) {                                     \
                const T *src = B + (k0 + k) * ldb + j0 + s;                        \
                for (int64_t c = 0; c < w; c++)                                    \
                    dst[k * NR + c] = src[c];                                      \
            }                                                                      \
        }                                                                          \
    }

INLINE void pack_a_f32(const float *A, int64_t lda, int64_t i0, int64_t mc, int64_t k0,
                       int64_t kc, float *dst)
{
    PACK_A(float)
}

INLINE void pack_a_f64(const double *A, int64_t lda, int64_t i0, int64_t mc, int64_t k0,
                       int64_t kc, double *dst)
{
    PACK_A(double)
}

INLINE void pack_b_f32(bool trans_b, const float *B, int64_t ldb, int64_t k0, int64_t kc,
                       int64_t j0, int64_t nc, float *dst)
{
    PACK_B(float, vf32, NR_F32, f32)
}

INLINE void pack_b_f64(bool trans_b, const double *B, int64_t ldb, int64_t k0, int64_t kc,
                       int64_t j0, int64_t nc, double *dst)
{
    PACK_B(double, vf64, NR_F64, f64)
}

/* ---- micro-kernels ----
 * C[ROWS x n] = alpha A[ROWS x kc] Bp (kc x NR) + beta C, with beta == 0
 * meaning C is not read. A is read in place or from a packed strip: element
 * (r, k) is ap[r * rsa + k * csa]. Bp is a packed strip of B. ROWS is a
 * constant in each instance, so the 2 * ROWS accumulators live in registers
 * (12 of the 16 vector registers for ROWS = 6). A tile narrower than NR goes
 * through a buffer. */
#define MICRO(T, V, NR, ROWS)                                                      \
    V acc0[ROWS], acc1[ROWS];                                                      \
    for (int r = 0; r < ROWS; r++)                                                 \
        acc0[r] = acc1[r] = (V){0};                                                \
    for (int64_t k = 0; k < kc; k++) {                                             \
        V b0, b1;                                                                  \
        memcpy(&b0, bp + k * NR, sizeof b0);                                       \
        memcpy(&b1, bp + k * NR + NR / 2, sizeof b1);                              \
        const T *a = ap + k * csa;                                                 \
        for (int r = 0; r < ROWS; r++) {                                           \
            acc0[r] += a[r * rsa] * b0;                                            \
            acc1[r] += a[r * rsa] * b1;                                            \
        }                                                                          \
    }                                                                              \
    if (alpha != 1)                                                                \
        for (int r = 0; r < ROWS; r++) {                                           \
            acc0[r] *= alpha;                                                      \
            acc1[r] *= alpha;                                                      \
        }                                                                          \
    /* Copies of the accumulators are stored, never their addresses taken, \
     * or the compiler keeps them in memory throughout. */                     \
    if (n == NR) {                                                                 \
        for (int r = 0; r < ROWS; r++) {                                           \
            T *c = C + r * ldc;                                                    \
            V v0 = acc0[r], v1 = acc1[r];                                          \
            if (beta != 0) {                                                       \
                V c0, c1;                                                          \
                memcpy(&c0, c, sizeof c0);                                         \
                memcpy(&c1, c + NR / 2, sizeof c1);                                \
                v0 += beta * c0;                                                   \
                v1 += beta * c1;                                                   \
            }                                                                      \
            memcpy(c, &v0, sizeof v0);                                             \
            memcpy(c + NR / 2, &v1, sizeof v1);                                    \
        }                                                                          \
    } else {                                                                       \
        T tile[ROWS][NR];                                                          \
        for (int r = 0; r < ROWS; r++) {                                           \
            V v0 = acc0[r], v1 = acc1[r];                                          \
            memcpy(tile[r], &v0, sizeof v0);                                       \
            memcpy(tile[r] + NR / 2, &v1, sizeof v1);                              \
        }                                                                          \
        for (int r = 0; r < ROWS; r++)                                             \
            for (int64_t j = 0; j < n; j++)                                        \
                C[r * ldc + j] = beta != 0 ? tile[r][j] + beta * C[r * ldc + j]    \
                                           : tile[r][j];                           \
    }

#define DEFINE_MICRO(T, V, NR, ROWS, SUFFIX)                                       \
    INLINE void micro##ROWS##_##SUFFIX(int64_t kc, const T *ap, int64_t rsa,       \
                                       int64_t csa, const T *bp, T *C, int64_t ldc, \
                                       int64_t n, T alpha, T beta)                 \
    {                                                                              \
        MICRO(T, V, NR, ROWS)                                                      \
    }

DEFINE_MICRO(float, vf32, NR_F32, 1, f32)
DEFINE_MICRO(float, vf32, NR_F32, 2, f32)
DEFINE_MICRO(float, vf32, NR_F32, 3, f32)
DEFINE_MICRO(float, vf32, NR_F32, 4, f32)
DEFINE_MICRO(float, vf32, NR_F32, 5, f32)
DEFINE_MICRO(float, vf32, NR_F32, 6, f32)
DEFINE_MICRO(double, vf64, NR_F64, 1, f64)
DEFINE_MICRO(double, vf64, NR_F64, 2, f64)
DEFINE_MICRO(double, vf64, NR_F64, 3, f64)
DEFINE_MICRO(double, vf64, NR_F64, 4, f64)
DEFINE_MICRO(double, vf64, NR_F64, 5, f64)
DEFINE_MICRO(double, vf64, NR_F64, 6, f64)

/* ---- drivers ---- */

/* Whether op(A) is packed. Untransposed A never is: the kernel's six
 * broadcasts then read six rows in place, each along contiguous memory, as
 * fast as from a packed strip, and the copy is saved (measured: 1024^3
 * 94 vs 91 GFLOP/s, the CNN's shapes up to 1.5x). Transposed A is read in
 * place only for shallow blocks: a strip then touches one cache line per
 * depth step, and beyond ~128 steps those lines and the B strip no longer
 * fit in L1 together (1024^3 transposed: 79 in place vs 94 packed). */
static bool pack_a_rule(bool trans_a, int64_t kcb) { return trans_a && kcb > 128; }

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

/* Products this small cost less than packing them; also the fallback when
 * there is no memory for the packed panels. C is scaled first; the transpose
 * of B picks the loop order so the innermost loop runs along contiguous
 * memory. */
#define SMALL_GEMM(T)                                                              \
    SCALE_C(T)                                                                     \
    if (!trans_b) {                                                                \
        for (int64_t i = 0; i < M; i++) {                                          \
            T *c = C + i * ldc;                                                    \
            const T *a = trans_a ? A + i : A + i * lda;                            \
            int64_t ak = trans_a ? lda : 1; /* step between a's k entries */       \
            for (int64_t k = 0; k < K; k++) {                                      \
                T av = alpha * a[k * ak];                                          \
                const T *b = B + k * ldb;                                          \
                for (int64_t j = 0; j < N; j++)                                    \
                    c[j] += av * b[j];                                             \
            }                                                                      \
        }                                                                          \
    } else {                                                                       \
        for (int64_t i = 0; i < M; i++)                                            \
            for (int64_t j = 0; j < N; j++) {                                      \
                const T *b = B + j * ldb;                                          \
                T s = 0;                                                           \
                for (int64_t k = 0; k < K; k++)                                    \
                    s += (trans_a ? A[k * lda + i] : A[i * lda + k]) * b[k];       \
                C[i * ldc + j] += alpha * s;                                       \
            }                                                                      \
    }

/* The blocked loops. j0 over nc columns of B, k0 over depth blocks (beta
 * applies on the first only, later blocks add), i0 over MC rows of A; then B
 * strips outside A strips, so one B strip stays in L1 while the rows of A
 * stream past it from L2. Full MR-row strips first, then the remainder rows
 * with a kernel of exactly that height. */
#define PACKED_GEMM(T, NR, SUFFIX)                                                 \
    for (int64_t j0 = 0; j0 < N; j0 += ncb) {                                      \
        int64_t nc = N - j0 < ncb ? N - j0 : ncb;                                  \
        for (int64_t k0 = 0; k0 < K; k0 += kcb) {                                  \
            int64_t kc = K - k0 < kcb ? K - k0 : kcb;                              \
            T bk = k0 == 0 ? beta : 1;                                             \
            pack_b_##SUFFIX(trans_b, B, ldb, k0, kc, j0, nc, bpack);               \
            for (int64_t i0 = 0; i0 < M; i0 += MC) {                               \
                int64_t mc = M - i0 < MC ? M - i0 : MC;                            \
                /* A's block: start, row stride rsa, depth stride csa and   \
                 * the distance between strips. */                             \
                const T *ablk = trans_a ? A + k0 * lda + i0 : A + i0 * lda + k0;   \
                int64_t rsa = trans_a ? 1 : lda, csa = trans_a ? lda : 1;          \
                int64_t step = MR * rsa;                                           \
                if (pack_a) {                                                      \
                    pack_a_##SUFFIX(A, lda, i0, mc, k0, kc, apack);                \
                    ablk = apack;                                                  \
                    rsa = 1;                                                       \
                    csa = MR;                                                      \
                    step = MR * kc;                                                \
                }                                                                  \
                int64_t full = mc / MR;                                            \
                const T *arest = ablk + full * step;                               \
                for (int64_t js = 0; js < nc; js += NR) {                          \
                    int64_t n = nc - js < NR ? nc - js : NR;                       \
                    const T *bp = bpack + js * kc;                                 \
                    T *c = C + i0 * ldc + j0 + js;                                 \
                    for (int64_t s = 0; s < full; s++)                             \
                        micro6_##SUFFIX(kc, ablk + s * step, rsa, csa, bp,         \
                                        c + s * MR * ldc, ldc, n, alpha, bk);      \
                    T *crest = c + full * MR * ldc;                                \
                    switch (mc - full * MR) {                                      \
                    case 5:                                                        \
                        micro5_##SUFFIX(kc, arest, rsa, csa, bp, crest, ldc, n, alpha, bk); \
                        break;                                                     \
                    case 4:                                                        \
                        micro4_##SUFFIX(kc, arest, rsa, csa, bp, crest, ldc, n, alpha, bk); \
                        break;                                                     \
                    case 3:                                                        \
                        micro3_##SUFFIX(kc, arest, rsa, csa, bp, crest, ldc, n, alpha, bk); \
                        break;                                                     \
                    case 2:                                                        \
                        micro2_##SUFFIX(kc, arest, rsa, csa, bp, crest, ldc, n, alpha, bk); \
                        break;                                                     \
                    case 1:                                                        \
                        micro1_##SUFFIX(kc, arest, rsa, csa, bp, crest, ldc, n, alpha, bk); \
                        break;                                                     \
                    default:                                                       \
                        break;                                                     \
                    }                                                              \
                }                                                                  \
            }                                                                      \
        }                                                                          \
    }

TG_MULTIVERSION
static void packed_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                       float *C, int64_t ldc, int64_t kcb, int64_t ncb, float *bpack,
                       float *apack)
{
    bool pack_a = pack_a_rule(trans_a, kcb);
    PACKED_GEMM(float, NR_F32, f32)
}

TG_MULTIVERSION
static void packed_f64(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                       const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
                       double *C, int64_t ldc, int64_t kcb, int64_t ncb, double *bpack,
                       double *apack)
{
    bool pack_a = pack_a_rule(trans_a, kcb);
    PACKED_GEMM(double, NR_F64, f64)
}

/* Block sizes for this product, then one scratch allocation for both packed
 * panels (apack is left unused when A is read in place), its start rounded
 * up to 64 bytes so that no vector load from a packed strip straddles two
 * cache lines. */
#define GEMM_BODY(T, NR, SUFFIX)                                                   \
    if (M <= 0 || N <= 0)                                                          \
        return;                                                                    \
    if (K <= 0 || alpha == 0) {                                                    \
        SCALE_C(T)                                                                 \
        return;                                                                    \
    }                                                                              \
    if ((double)M * (double)N * (double)K <= SMALL_MNK) {                          \
        SMALL_GEMM(T)                                                              \
        return;                                                                    \
    }                                                                              \
    int64_t kblocks = (K + KC_MAX - 1) / KC_MAX;                                   \
    int64_t kcb = (K + kblocks - 1) / kblocks; /* equal depth blocks */            \
    int64_t ncb = B_BLOCK_BYTES / (kcb * (int64_t)sizeof(T)) / NR * NR;            \
    if (N <= ncb)                                                                  \
        ncb = N;                                                                   \
    int64_t bcols = (ncb + NR - 1) / NR * NR;                                      \
    int64_t arows = pack_a_rule(trans_a, kcb) ? (M < MC ? M : MC) + MR : 0;        \
    void *raw = tg__malloc((size_t)(kcb * (bcols + arows)) * sizeof(T) + 64);      \
    if (!raw) {                                                                    \
        SMALL_GEMM(T) /* no scratch memory: slow but correct */                    \
        return;                                                                    \
    }                                                                              \
    T *bpack = (T *)((char *)raw + (64 - (uintptr_t)raw % 64) % 64);               \
    packed_##SUFFIX(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, kcb, ncb, \
                    bpack, bpack + kcb * bcols);                                   \
    tg__free(raw);

void tg__gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc)
{
    GEMM_BODY(float, NR_F32, f32)
}

void tg__gemm_f64(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                  const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
                  double *C, int64_t ldc)
{
    GEMM_BODY(double, NR_F64, f64)
}
