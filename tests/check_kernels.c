/* check_kernels.c - the raw kernels against naive references: GEMM over random
 * shapes, every transpose combination, alpha/beta and leading dimensions
 * (both the packed path and the small-product path); im2col against a direct
 * read and col2im as its exact adjoint; pooling ties and adjointness. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/conv_rows.h"
#include "kernels/gemm_kernel.h"
#include "kernels/kernels.h"
#include "kernels/layout.h"
#include "kernels/pointwise.h"
#include "kernels/reduce.h"
#include "tg_check.h"

static uint64_t state = 88172645463325252ULL;
static double uniform(void) // xorshift64: deterministic test data
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (double)(state >> 11) * 0x1.0p-53;
}

static void check_gemm(int64_t M, int64_t N, int64_t K, bool ta, bool tb, double alpha,
                       double beta, int64_t extra)
{
    int64_t lda = (ta ? M : K) + extra, ldb = (tb ? K : N) + extra, ldc = N + extra;
    int64_t na = lda * (ta ? K : M), nb = ldb * (tb ? N : K), nc = ldc * M;
    float *A = malloc(sizeof(float) * (size_t)(na + 1)), *B = malloc(sizeof(float) * (size_t)(nb + 1));
    float *C = malloc(sizeof(float) * (size_t)(nc + 1));
    double *Ad = malloc(sizeof(double) * (size_t)(na + 1)), *Bd = malloc(sizeof(double) * (size_t)(nb + 1));
    double *Cd = malloc(sizeof(double) * (size_t)(nc + 1)), *R = malloc(sizeof(double) * (size_t)(nc + 1));
    for (int64_t i = 0; i < na; i++)
        Ad[i] = A[i] = (float)(uniform() - 0.5);
    for (int64_t i = 0; i < nb; i++)
        Bd[i] = B[i] = (float)(uniform() - 0.5);
    for (int64_t i = 0; i < nc; i++)
        R[i] = Cd[i] = C[i] = beta == 0 ? NAN : (float)uniform(); // beta 0 must not read C
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += (ta ? Ad[k * lda + i] : Ad[i * lda + k]) * (tb ? Bd[j * ldb + k] : Bd[k * ldb + j]);
            R[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * R[i * ldc + j]);
        }
    tg__gemm_f32(ta, tb, M, N, K, (float)alpha, A, lda, B, ldb, (float)beta, C, ldc);
    tg__gemm_f64(ta, tb, M, N, K, alpha, Ad, lda, Bd, ldb, beta, Cd, ldc);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double r = R[i * ldc + j];
            ck_assert_msg(fabs(C[i * ldc + j] - r) <= 1e-5 * (double)(K + 1),
                          "f32 %lldx%lldx%lld ta%d tb%d at (%lld,%lld): %g vs %g", (long long)M,
                          (long long)N, (long long)K, ta, tb, (long long)i, (long long)j,
                          C[i * ldc + j], r);
            ck_assert_msg(fabs(Cd[i * ldc + j] - r) <= 1e-12 * (double)(K + 1),
                          "f64 %lldx%lldx%lld ta%d tb%d", (long long)M, (long long)N,
                          (long long)K, ta, tb);
        }
    free(A);
    free(B);
    free(C);
    free(Ad);
    free(Bd);
    free(Cd);
    free(R);
}

START_TEST(test_gemm_random_shapes)
{
    for (int t = 0; t < 60; t++) {
        int64_t M = 1 + (int64_t)(uniform() * 70), N = 1 + (int64_t)(uniform() * 70);
        int64_t K = 1 + (int64_t)(uniform() * 300);
        check_gemm(M, N, K, _i & 1, _i & 2, t % 3 ? 1.0 : -0.5, (double)(t % 3) * 0.5, t % 3);
    }
}
END_TEST

START_TEST(test_gemm_large_and_edges)
{
    bool ta = _i & 1, tb = _i & 2;
    check_gemm(257, 129, 300, ta, tb, 1.0, 0.0, 1);    // several K and M blocks, ragged tiles
    check_gemm(1, 1, 1, ta, tb, 2.0, 1.0, 0);
    check_gemm(7, 2100, 3, ta, tb, 1.0, 0.5, 0);       // more than one N block
    check_gemm(64, 121, 288, ta, tb, 1.0, 0.0, 0);     // the CNN's second convolution
    check_gemm(3, 4, 0, ta, tb, 1.0, 0.0, 0);          // K = 0: C = beta C
}
END_TEST

/* ---- the same bytes from every kernel, thread count and path ---- */

/* C from one configuration of kernel and threads, for memcmp. */
static float *gemm_with(const char *kernel, int threads, int64_t M, int64_t N, int64_t K,
                        bool ta, bool tb, float alpha, float beta, const float *A,
                        const float *B, const float *C0)
{
    ck_assert_int_eq(tg_set_kernel(kernel), TG_OK);
    ck_assert_int_eq(tg_set_num_threads(threads), TG_OK);
    float *C = malloc(sizeof(float) * (size_t)(M * N));
    memcpy(C, C0, sizeof(float) * (size_t)(M * N));
    tg__gemm_f32(ta, tb, M, N, K, alpha, A, ta ? M : K, B, tb ? K : N, beta, C, N);
    return C;
}

static bool have_threads(void) { return tg_set_num_threads(2) == TG_OK; }

START_TEST(test_gemm_same_bytes_every_kernel_and_thread_count)
{
    static const char *const kernels[] = {"generic", "avx2", "avx512"};
    // Small (unpacked) and packed products, ragged tiles, several depth
    // blocks (K > 320), more than one B block, the CNN's shapes; for
    // AVX-512's two tiles, products 32 and 33 columns wide and one of whole
    // 64-column tiles with ragged rows.
    static const int64_t shapes[][3] = {{1, 1, 1},     {3, 5, 7},       {9, 31, 17},
                                        {32, 676, 9},  {64, 121, 288},  {288, 121, 64},
                                        {64, 288, 121}, {33, 65, 700},  {100, 40, 1600},
                                        {7, 2100, 3},  {130, 97, 641},  {17, 4500, 40},
                                        {9, 32, 676},  {13, 33, 129},   {50, 128, 330}};
    int nthreads = have_threads() ? 3 : 1;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        bool ta = _i & 1, tb = _i & 2;
        float *A = malloc(sizeof(float) * (size_t)(M * K));
        float *B = malloc(sizeof(float) * (size_t)(K * N));
        float *C0 = malloc(sizeof(float) * (size_t)(M * N));
        for (int64_t i = 0; i < M * K; i++)
            A[i] = (float)(uniform() - 0.5);
        for (int64_t i = 0; i < K * N; i++)
            B[i] = (float)(uniform() - 0.5);
        for (int64_t i = 0; i < M * N; i++)
            C0[i] = (float)uniform();
        float alpha = s % 3 == 1 ? -0.75f : 1.0f, beta = (float)(s % 3) * 0.5f;
        float *ref = gemm_with("generic", 1, M, N, K, ta, tb, alpha, beta, A, B, C0);
        for (int k = 0; k < 3; k++) {
            if (tg_set_kernel(kernels[k]) != TG_OK)
                continue;
            for (int t = 1; t <= nthreads; t++) {
                float *C = gemm_with(kernels[k], t, M, N, K, ta, tb, alpha, beta, A, B, C0);
                ck_assert_msg(memcmp(C, ref, sizeof(float) * (size_t)(M * N)) == 0,
                              "%s, %d threads, %lldx%lldx%lld ta%d tb%d: not the generic bytes",
                              kernels[k], t, (long long)M, (long long)N, (long long)K, ta, tb);
                free(C);
            }
        }
        free(ref);
        free(A);
        free(B);
        free(C0);
    }
    ck_assert_int_eq(tg_set_num_threads(1), TG_OK);
    ck_assert_int_eq(tg_set_kernel("auto"), TG_OK);
}
END_TEST

/* The epilogue (bias per row or column, ReLU) gives the bytes of a plain
 * product followed by a separate bias add and ReLU, with every kernel and
 * thread count, on both the unpacked and the packed path; likewise a product
 * over depth segments gives the bytes of the per-segment products
 * accumulated in order. */
START_TEST(test_gemm_epilogue_and_segments_same_bytes)
{
    static const char *const kernels[] = {"generic", "avx2", "avx512"};
    static const int64_t shapes[][3] = {{3, 5, 7}, {9, 31, 17}, {64, 121, 288},
                                        {33, 65, 700}, {130, 97, 641}, {32, 9, 676}};
    int nthreads = have_threads() ? 3 : 1;
    bool ta = _i & 1, tb = _i & 2;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], NS = 3;
        int64_t lda = ta ? M : K, ldb = tb ? K : N;
        float *A = malloc(sizeof(float) * (size_t)(M * K * NS));
        float *B = malloc(sizeof(float) * (size_t)(K * N * NS));
        float *bias = malloc(sizeof(float) * (size_t)(M + N));
        float *ref = malloc(sizeof(float) * (size_t)(M * N));
        float *C = malloc(sizeof(float) * (size_t)(M * N));
        for (int64_t i = 0; i < M * K * NS; i++)
            A[i] = (float)(uniform() - 0.5);
        for (int64_t i = 0; i < K * N * NS; i++)
            B[i] = (float)(uniform() - 0.5);
        for (int64_t i = 0; i < M + N; i++)
            bias[i] = (float)(uniform() - 0.5);
        for (int mode = 0; mode < 3; mode++) { // bias per row, per column + ReLU, ReLU only
            tg__gemm_epi epi = {.bias = mode < 2 ? (mode ? bias + M : bias) : NULL,
                                .bias_per_col = mode == 1, .relu = mode > 0};
            ASSERT_OK(tg_set_kernel("generic"));
            ASSERT_OK(tg_set_num_threads(1));
            tg__gemm_f32(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, ref, N);
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    float v = ref[i * N + j];
                    if (epi.bias)
                        v = v + bias[mode ? M + j : i];
                    if (epi.relu)
                        v = v > 0 || v != v ? v : 0;
                    ref[i * N + j] = v;
                }
            for (int k = 0; k < 3; k++) {
                if (tg_set_kernel(kernels[k]) != TG_OK)
                    continue;
                for (int t = 1; t <= nthreads; t++) {
                    ASSERT_OK(tg_set_num_threads(t));
                    tg__gemm_f32_epi(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N, &epi);
                    ck_assert_msg(memcmp(C, ref, sizeof(float) * (size_t)(M * N)) == 0,
                                  "epilogue %d, %s, %d threads, %lldx%lldx%lld ta%d tb%d", mode,
                                  kernels[k], t, (long long)M, (long long)N, (long long)K, ta,
                                  tb);
                }
            }
        }
        // NS segments of depth K, A_s = A + s*M*K, B_s = B + s*K*N.
        ASSERT_OK(tg_set_kernel("generic"));
        ASSERT_OK(tg_set_num_threads(1));
        for (int64_t sg = 0; sg < NS; sg++)
            tg__gemm_f32(ta, tb, M, N, K, 1.0f, A + sg * M * K, lda, B + sg * K * N, ldb,
                         sg ? 1.0f : 0.0f, ref, N);
        for (int k = 0; k < 3; k++) {
            if (tg_set_kernel(kernels[k]) != TG_OK)
                continue;
            for (int t = 1; t <= nthreads; t++) {
                ASSERT_OK(tg_set_num_threads(t));
                tg__gemm_f32_segments(ta, tb, M, N, K, NS, 1.0f, A, lda, M * K, B, ldb, K * N,
                                      0.0f, C, N);
                ck_assert_msg(memcmp(C, ref, sizeof(float) * (size_t)(M * N)) == 0,
                              "segments, %s, %d threads, %lldx%lldx%lld ta%d tb%d", kernels[k],
                              t, (long long)M, (long long)N, (long long)K, ta, tb);
            }
        }
        free(A);
        free(B);
        free(bias);
        free(ref);
        free(C);
    }
    ASSERT_OK(tg_set_num_threads(1));
    ASSERT_OK(tg_set_kernel("auto"));
}
END_TEST

/* B laid out by tg__gemm_b_ld_f32 and marked readable (tg__gemm_epi's
 * b_readable) is read in place, its ragged last strip as whole vectors: the
 * bytes are still the plain product's, whatever the padding holds (finite,
 * here 1e30 or zeros), with every kernel and thread count, and C is written
 * nowhere past its N columns (sentinels in ldc's gap). Rows of B that are
 * far apart stay packed (tg__gemm_b_ld_f32 returns N). */
START_TEST(test_gemm_readable_b_rows_same_bytes)
{
    static const char *const kernels[] = {"generic", "avx2", "avx512"};
    static const int64_t shapes[][3] = {{64, 121, 288}, {32, 676, 9}, {9, 31, 17},
                                        {130, 97, 641}, {6, 200, 40}, {70, 57, 64}};
    int nthreads = have_threads() ? 3 : 1;
    bool ta = _i & 1, relu = _i & 2;
    const float sentinel = -12345.0f;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], lda = ta ? M : K;
        int64_t ldb = tg__gemm_b_ld_f32(N, K), ldc = N + 3;
        ck_assert_int_ge(ldb, N);
        ck_assert(ldb == N || ldb % 64 == 0);
        float *A = malloc(sizeof(float) * (size_t)(M * K));
        float *B = malloc(sizeof(float) * (size_t)(K * N)); // rows N apart
        float *Bp = malloc(sizeof(float) * (size_t)(K * ldb));
        float *bias = malloc(sizeof(float) * (size_t)M);
        float *ref = malloc(sizeof(float) * (size_t)(M * N));
        float *C = malloc(sizeof(float) * (size_t)(M * ldc));
        for (int64_t i = 0; i < M * K; i++)
            A[i] = (float)(uniform() - 0.5);
        for (int64_t i = 0; i < K * N; i++)
            B[i] = (float)(uniform() - 0.5);
        for (int64_t i = 0; i < M; i++)
            bias[i] = (float)(uniform() - 0.5);
        tg__gemm_epi plain = {.bias = bias, .relu = relu};
        ASSERT_OK(tg_set_kernel("generic"));
        ASSERT_OK(tg_set_num_threads(1));
        tg__gemm_f32_epi(ta, false, M, N, K, 1.0f, A, lda, B, N, 0.0f, ref, N, &plain);
        for (int pad = 0; pad < 2; pad++) {
            for (int64_t k = 0; k < K; k++)
                for (int64_t j = 0; j < ldb; j++)
                    Bp[k * ldb + j] = j < N ? B[k * N + j] : pad ? 1e30f : 0.0f;
            tg__gemm_epi epi = {.bias = bias, .relu = relu, .b_readable = ldb};
            for (int k = 0; k < 3; k++) {
                if (tg_set_kernel(kernels[k]) != TG_OK)
                    continue;
                for (int t = 1; t <= nthreads; t++) {
                    ASSERT_OK(tg_set_num_threads(t));
                    for (int64_t i = 0; i < M * ldc; i++)
                        C[i] = sentinel;
                    tg__gemm_f32_epi(ta, false, M, N, K, 1.0f, A, lda, Bp, ldb, 0.0f, C, ldc,
                                     &epi);
                    for (int64_t i = 0; i < M; i++) {
                        ck_assert_msg(memcmp(C + i * ldc, ref + i * N, sizeof(float) * (size_t)N) ==
                                          0,
                                      "%s, %d threads, %lldx%lldx%lld ta%d relu%d pad %d, row %lld",
                                      kernels[k], t, (long long)M, (long long)N, (long long)K, ta,
                                      relu, pad, (long long)i);
                        for (int64_t j = N; j < ldc; j++)
                            ck_assert_msg(C[i * ldc + j] == sentinel, "%s: C written past N",
                                          kernels[k]);
                    }
                }
            }
        }
        free(A);
        free(B);
        free(Bp);
        free(bias);
        free(ref);
        free(C);
    }
    // Rows 4096 floats apart and 320 deep: packed, so not padded.
    ck_assert_int_eq(tg__gemm_b_ld_f32(4000, 320), 4000);
    ASSERT_OK(tg_set_num_threads(1));
    ASSERT_OK(tg_set_kernel("auto"));
}
END_TEST

/* Small products skip packing (the direct path, and below TG__GEMM_TINY
 * multiply-adds its per-element chains): each kernel's small path must give
 * the bytes of its own packed path on the same product, for every transpose,
 * alpha and beta, narrow and one-column shapes (a small network's layers),
 * leading dimensions with padding, and signed zeros (fma(a, b, +0) with
 * a b = -0 is +0, so the chains must start from +0 as the packed tiles do). */
START_TEST(test_gemm_small_path_equals_packed)
{
    static const tg__gemm_kernel *const kerns[] = {&tg__gemm_generic, &tg__gemm_avx2,
                                                   &tg__gemm_avx512};
    static const int64_t shapes[][3] = {{4, 8, 2},  {4, 1, 8},  {4, 8, 1}, {8, 1, 4},
                                        {2, 8, 4},  {1, 1, 1},  {3, 17, 5}, {5, 16, 9},
                                        {9, 7, 30}, {16, 24, 5}, {1, 40, 50}, {2, 3, 320}};
    static const float alphas[] = {1.0f, -0.75f}, betas[] = {0.0f, 1.0f, 0.5f};
    bool ta = _i & 1, tb = _i & 2;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], pad = (int64_t)s % 2;
        int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
        float *A = malloc(sizeof(float) * (size_t)(lda * (ta ? K : M)));
        float *B = malloc(sizeof(float) * (size_t)(ldb * (tb ? N : K)));
        float *C0 = malloc(sizeof(float) * (size_t)(ldc * M));
        float *C1 = malloc(sizeof(float) * (size_t)(ldc * M));
        float *C2 = malloc(sizeof(float) * (size_t)(ldc * M));
        for (int64_t i = 0; i < lda * (ta ? K : M); i++) // every 5th a zero, some negative
            A[i] = i % 5 == 2 ? (i % 2 ? -0.0f : 0.0f) : (float)(uniform() - 0.5);
        for (int64_t i = 0; i < ldb * (tb ? N : K); i++)
            B[i] = i % 7 == 3 ? 0.0f : (float)(uniform() - 0.5);
        for (int64_t i = 0; i < ldc * M; i++)
            C0[i] = i % 3 ? (float)uniform() : -0.0f;
        for (size_t k = 0; k < sizeof kerns / sizeof kerns[0]; k++) {
            const tg__gemm_kernel *kern = kerns[k];
            if (!kern->supported())
                continue;
            for (size_t ab = 0; ab < 6; ab++) {
                tg__gemm_job job = {.trans_a = ta, .trans_b = tb, .M = M, .N = N, .K = K,
                                    .alpha = alphas[ab % 2], .beta = betas[ab / 2], .A = A,
                                    .lda = lda, .B = B, .ldb = ldb, .ldc = ldc, .kcb = K};
                size_t elems = (size_t)tg__gemm_scratch_elems(&job, 4, kern->mr, kern->nr);
                float *ws = aligned_alloc(64, (elems * sizeof(float) + 63) / 64 * 64);
                memcpy(C1, C0, sizeof(float) * (size_t)(ldc * M));
                memcpy(C2, C0, sizeof(float) * (size_t)(ldc * M));
                job.C = C1;
                kern->packed_f32(&job, ws);
                job.C = C2;
                kern->direct_f32(&job);
                ck_assert_msg(memcmp(C1, C2, sizeof(float) * (size_t)(ldc * M)) == 0,
                              "%s %lldx%lldx%lld ta%d tb%d alpha %g beta %g: small path "
                              "differs from packed", kern->name, (long long)M, (long long)N,
                              (long long)K, ta, tb, alphas[ab % 2], betas[ab / 2]);
                free(ws);
            }
        }
        free(A);
        free(B);
        free(C0);
        free(C1);
        free(C2);
    }
}
END_TEST

/* The paths chosen by shape give the bytes of the direct formulation (each
 * element's fma chain in gemm_kernel.h's order, no packing, no transposing),
 * with every kernel and with one and two threads: a narrow product (N below
 * the tile's width, more rows than columns) computed as its transpose, with
 * beta, alpha and a bias on either side; a shallow untransposed B read in
 * place, with a ragged last strip; row counts whose last two strips are
 * balanced (MR + 1, 2 MR + 3, ...); several depth blocks and segments. */
START_TEST(test_gemm_shape_paths_equal_direct)
{
    static const tg__gemm_kernel *const kerns[] = {&tg__gemm_generic, &tg__gemm_avx2,
                                                   &tg__gemm_avx512};
    static const int64_t shapes[][3] = {
        {32, 9, 676}, {100, 7, 50}, {33, 1, 300}, {64, 15, 121}, {200, 20, 90}, // narrow
        {32, 676, 9}, {13, 100, 16}, {40, 33, 5}, {9, 70, 12}, {7, 2100, 3},    // shallow B
        {9, 64, 40},  {17, 50, 30}, {25, 40, 100}, {13, 33, 700}, {151, 40, 20}, // ragged rows
    };
    static const float alphas[] = {1.0f, -0.75f}, betas[] = {0.0f, 1.0f, 0.5f};
    bool ta = _i & 1, tb = _i & 2;
    int nthreads = have_threads() ? 2 : 1;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], pad = (int64_t)s % 2;
        int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
        float *A = malloc(sizeof(float) * (size_t)(lda * (ta ? K : M)));
        float *B = malloc(sizeof(float) * (size_t)(ldb * (tb ? N : K)));
        float *bias = malloc(sizeof(float) * (size_t)(M + N));
        float *C0 = malloc(sizeof(float) * (size_t)(ldc * M));
        float *C1 = malloc(sizeof(float) * (size_t)(ldc * M));
        float *C2 = malloc(sizeof(float) * (size_t)(ldc * M));
        for (int64_t i = 0; i < lda * (ta ? K : M); i++)
            A[i] = (float)(uniform() - 0.5);
        for (int64_t i = 0; i < ldb * (tb ? N : K); i++)
            B[i] = (float)(uniform() - 0.5);
        for (int64_t i = 0; i < M + N; i++)
            bias[i] = (float)(uniform() - 0.5);
        for (int64_t i = 0; i < ldc * M; i++)
            C0[i] = (float)uniform();
        for (size_t k = 0; k < sizeof kerns / sizeof kerns[0]; k++) {
            const tg__gemm_kernel *kern = kerns[k];
            if (!kern->supported())
                continue;
            ASSERT_OK(tg_set_kernel(kern->name));
            for (size_t v = 0; v < 8; v++) {
                float alpha = alphas[v % 2], beta = betas[v % 3];
                // v 6, 7: bias per row, per column, and ReLU
                tg__gemm_epi epi = {.bias = v == 6 ? bias : bias + M, .bias_per_col = v == 7,
                                    .relu = true};
                const tg__gemm_epi *e = v >= 6 ? &epi : NULL;
                tg__gemm_job job = {.trans_a = ta, .trans_b = tb, .M = M, .N = N, .K = K,
                                    .alpha = alpha, .beta = beta, .A = A, .lda = lda, .B = B,
                                    .ldb = ldb, .C = C1, .ldc = ldc,
                                    .kcb = tg__gemm_depth_block(K),
                                    .bias = e ? e->bias : NULL,
                                    .bias_per_col = e && e->bias_per_col, .relu = e != NULL};
                memcpy(C1, C0, sizeof(float) * (size_t)(ldc * M));
                kern->direct_f32(&job);
                for (int t = 1; t <= nthreads; t++) {
                    ASSERT_OK(tg_set_num_threads(t));
                    memcpy(C2, C0, sizeof(float) * (size_t)(ldc * M));
                    tg__gemm_f32_epi(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C2, ldc, e);
                    ck_assert_msg(memcmp(C1, C2, sizeof(float) * (size_t)(ldc * M)) == 0,
                                  "%s, %d threads, %lldx%lldx%lld ta%d tb%d alpha %g beta %g "
                                  "epilogue %d: not the direct bytes", kern->name, t,
                                  (long long)M, (long long)N, (long long)K, ta, tb, alpha,
                                  beta, v >= 6 ? (int)v - 5 : 0);
                }
            }
        }
        // The same through the serial entry (a convolution's per-image call),
        // with the scratch size it reports.
        size_t bytes = tg__gemm_f32_scratch(ta, tb, M, N, K);
        float *ws = bytes ? aligned_alloc(64, (bytes + 63) / 64 * 64) : NULL;
        tg__gemm_job job = {.trans_a = ta, .trans_b = tb, .M = M, .N = N, .K = K, .alpha = 1,
                            .beta = 0.5, .A = A, .lda = lda, .B = B, .ldb = ldb, .C = C1,
                            .ldc = ldc, .kcb = tg__gemm_depth_block(K)};
        memcpy(C1, C0, sizeof(float) * (size_t)(ldc * M));
        tg__gemm_current()->direct_f32(&job);
        memcpy(C2, C0, sizeof(float) * (size_t)(ldc * M));
        tg__gemm_f32_serial(ws, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.5f, C2, ldc, NULL);
        ck_assert_msg(memcmp(C1, C2, sizeof(float) * (size_t)(ldc * M)) == 0,
                      "serial %lldx%lldx%lld ta%d tb%d: not the direct bytes", (long long)M,
                      (long long)N, (long long)K, ta, tb);
        free(ws);
        free(A);
        free(B);
        free(bias);
        free(C0);
        free(C1);
        free(C2);
    }
    ASSERT_OK(tg_set_num_threads(1));
    ASSERT_OK(tg_set_kernel("auto"));
}
END_TEST

/* Without scratch memory the product still runs, unpacked, to the same bytes
 * (the scratch allocation failing is the first one of the process, so this
 * relies on fork mode). */
START_TEST(test_gemm_without_memory_same_bytes)
{
    int64_t M = 70, N = 90, K = 400;
    float *A = malloc(sizeof(float) * (size_t)(M * K));
    float *B = malloc(sizeof(float) * (size_t)(K * N));
    float *C0 = calloc((size_t)(M * N), sizeof(float));
    for (int64_t i = 0; i < M * K; i++)
        A[i] = (float)(uniform() - 0.5);
    for (int64_t i = 0; i < K * N; i++)
        B[i] = (float)(uniform() - 0.5);
    ck_assert_int_eq(tg_set_num_threads(1), TG_OK);
    // First, in this test's fresh process (fork mode), with every allocation
    // failing: the thread has no workspace yet, so the product runs unpacked.
    float *C = malloc(sizeof(float) * (size_t)(M * N));
    memcpy(C, C0, sizeof(float) * (size_t)(M * N));
    tg__alloc_fail_after(0, 1);
    tg__gemm_f32(_i & 1, _i & 2, M, N, K, 1.0f, A, _i & 1 ? M : K, B, _i & 2 ? K : N, 0.0f, C, N);
    tg__alloc_fail_after(-1, 0);
    float *ref = gemm_with("auto", 1, M, N, K, _i & 1, _i & 2, 1.0f, 0.0f, A, B, C0);
    ck_assert(memcmp(C, ref, sizeof(float) * (size_t)(M * N)) == 0);
    free(C);
    free(ref);
    free(A);
    free(B);
    free(C0);
}
END_TEST

/* After the first product of a size, products allocate nothing. */
START_TEST(test_gemm_allocates_once)
{
    int64_t M = 64, N = 121, K = 288;
    float *A = calloc((size_t)(M * K), sizeof(float)), *B = calloc((size_t)(K * N), sizeof(float));
    float *C = calloc((size_t)(M * N), sizeof(float));
    for (int threads = 1; threads <= (have_threads() ? 2 : 1); threads++) {
        ck_assert_int_eq(tg_set_num_threads(threads), TG_OK);
        tg__gemm_f32(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
        tg__gemm_f32(true, true, N, M, K, 1.0f, B, N, A, K, 1.0f, C, M);
        long before = tg__alloc_count();
        for (int rep = 0; rep < 5; rep++) {
            tg__gemm_f32(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
            tg__gemm_f32(true, true, N, M, K, 1.0f, B, N, A, K, 1.0f, C, M);
        }
        ck_assert_int_eq(tg__alloc_count() - before, 0);
    }
    ck_assert_int_eq(tg_set_num_threads(1), TG_OK);
    free(A);
    free(B);
    free(C);
}
END_TEST

/* ---- im2col / col2im ---- */

START_TEST(test_im2col_reads_the_window)
{
    tg__conv_geom g = {.C = 2, .H = 6, .W = 7, .KH = 3, .KW = 2, .SH = 1 + _i % 2,
                       .SW = 1 + _i % 3, .PT = _i % 2, .PL = (_i / 2) % 3, .DH = 1 + _i / 3,
                       .DW = 1 + _i % 2};
    int64_t pb = 1, pr = _i % 2;
    g.OH = (g.H + g.PT + pb - g.DH * (g.KH - 1) - 1) / g.SH + 1;
    g.OW = (g.W + g.PL + pr - g.DW * (g.KW - 1) - 1) / g.SW + 1;
    int64_t ohw = g.OH * g.OW, rows = g.C * g.KH * g.KW;
    double img[2 * 6 * 7], *cols = malloc(sizeof(double) * (size_t)(rows * ohw));
    for (int i = 0; i < 2 * 6 * 7; i++)
        img[i] = uniform();
    tg__im2col_f64(img, &g, cols);
    for (int64_t c = 0; c < g.C; c++)
        for (int64_t u = 0; u < g.KH; u++)
            for (int64_t v = 0; v < g.KW; v++)
                for (int64_t i = 0; i < g.OH; i++)
                    for (int64_t j = 0; j < g.OW; j++) {
                        int64_t y = i * g.SH - g.PT + u * g.DH, x = j * g.SW - g.PL + v * g.DW;
                        double want = y >= 0 && y < g.H && x >= 0 && x < g.W
                                          ? img[(c * g.H + y) * g.W + x]
                                          : 0.0;
                        ck_assert_double_eq(cols[((c * g.KH + u) * g.KW + v) * ohw + i * g.OW + j],
                                            want);
                    }
    // col2im is the adjoint: <im2col(x), y> == <x, col2im(y)>.
    double *y = malloc(sizeof(double) * (size_t)(rows * ohw)), back[2 * 6 * 7] = {0};
    double lhs = 0, rhs = 0;
    for (int64_t k = 0; k < rows * ohw; k++) {
        y[k] = uniform();
        lhs += cols[k] * y[k];
    }
    tg__col2im_f64(y, &g, back);
    for (int i = 0; i < 2 * 6 * 7; i++)
        rhs += img[i] * back[i];
    ck_assert_double_eq_tol(lhs, rhs, 1e-12);
    // Rows ld apart (the forward's padded rows): each row as above, zeros
    // past OH*OW even over garbage.
    int64_t ld = ohw + 1 + _i * 5;
    float imgf[2 * 6 * 7], *colsf = malloc(sizeof(float) * (size_t)(rows * ld));
    for (int i = 0; i < 2 * 6 * 7; i++)
        imgf[i] = (float)img[i];
    for (int64_t k = 0; k < rows * ld; k++)
        colsf[k] = NAN;
    tg__im2col_f32_ld(imgf, &g, ld, colsf);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < ld; j++)
            ck_assert_float_eq(colsf[r * ld + j], j < ohw ? (float)cols[r * ohw + j] : 0.0f);
    free(colsf);
    free(cols);
    free(y);
}
END_TEST

/* The vectorised im2col / col2im (short-row copies, the unpadded stride-1
 * block copy, 16-byte adds) against a plain reading of the definition, byte
 * for byte, in both dtypes: rows shorter than a vector (OW 1-3), odd widths,
 * padding on every side, strides 1-3, dilation, rows long enough for memcpy.
 * col2im starts from an image of random values, signed zeros and a NaN, and
 * the reference adds in the same order (rows (c, u, v), then i, then j), so
 * every rounding and every sign of zero must agree. */
typedef struct conv_case {
    int64_t C, H, W, KH, KW, SH, SW, PT, PB, PL, PR, DH, DW;
} conv_case;

static const conv_case conv_cases[] = {
    {1, 28, 28, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1},  /* the CNN's conv1 */
    {32, 13, 13, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1}, /* conv2: rows of 11 */
    {2, 5, 3, 3, 1, 1, 1, 0, 0, 0, 0, 1, 1},    /* rows of 3, shorter than a vector */
    {2, 4, 2, 2, 2, 1, 1, 0, 0, 0, 0, 1, 1},    /* rows of 1 */
    {3, 9, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},    /* "same" padding, odd width */
    {2, 8, 9, 3, 2, 2, 2, 1, 0, 0, 1, 1, 1},    /* stride 2, uneven padding */
    {2, 11, 12, 3, 3, 1, 3, 2, 1, 2, 2, 2, 1},  /* stride 3 across, dilation down */
    {1, 10, 17, 2, 3, 3, 1, 0, 2, 1, 0, 1, 3},  /* dilated across, stride down */
    {2, 6, 150, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1},  /* rows of 148: the memcpy path */
    {1, 5, 70, 1, 5, 1, 1, 1, 1, 3, 3, 1, 2},   /* long padded rows */
    {2, 7, 6, 3, 3, 1, 1, 2, 2, 2, 2, 1, 1},    /* padding wider than the image rows */
    {1, 3, 4, 3, 4, 1, 1, 0, 0, 0, 0, 1, 1},    /* one output */
    {2, 4, 40, 2, 34, 1, 1, 1, 0, 0, 0, 1, 1},  /* 68 window positions: col2im's taps in groups */
    {3, 9, 20, 3, 3, 2, 1, 1, 1, 2, 1, 2, 1},   /* stride and dilation down, padded, SW 1 */
};
#define N_CONV_CASES (int)(sizeof conv_cases / sizeof conv_cases[0])

static tg__conv_geom conv_case_geom(const conv_case *k)
{
    tg__conv_geom g = {.C = k->C, .H = k->H, .W = k->W, .KH = k->KH, .KW = k->KW, .SH = k->SH,
                       .SW = k->SW, .PT = k->PT, .PL = k->PL, .DH = k->DH, .DW = k->DW};
    g.OH = (g.H + k->PT + k->PB - g.DH * (g.KH - 1) - 1) / g.SH + 1;
    g.OW = (g.W + k->PL + k->PR - g.DW * (g.KW - 1) - 1) / g.SW + 1;
    return g;
}

#define IM2COL_REF_BODY(T)                                                         \
    for (int64_t c = 0; c < g->C; c++)                                             \
        for (int64_t u = 0; u < g->KH; u++)                                        \
            for (int64_t v = 0; v < g->KW; v++)                                    \
                for (int64_t i = 0; i < g->OH; i++)                                \
                    for (int64_t j = 0; j < g->OW; j++) {                          \
                        int64_t y = i * g->SH - g->PT + u * g->DH;                 \
                        int64_t x = j * g->SW - g->PL + v * g->DW;                 \
                        T *e = cols + (((c * g->KH + u) * g->KW + v) * g->OH + i) * g->OW + j; \
                        bool in = y >= 0 && y < g->H && x >= 0 && x < g->W;        \
                        if (MODE == 0)                                             \
                            *e = in ? img[(c * g->H + y) * g->W + x] : 0;          \
                        else if (in)                                               \
                            img[(c * g->H + y) * g->W + x] += *e;                  \
                    }

#define MODE 0
static void im2col_ref_f32(float *img, const tg__conv_geom *g, float *cols) { IM2COL_REF_BODY(float) }
static void im2col_ref_f64(double *img, const tg__conv_geom *g, double *cols) { IM2COL_REF_BODY(double) }
#undef MODE
#define MODE 1
static void col2im_ref_f32(float *img, const tg__conv_geom *g, float *cols) { IM2COL_REF_BODY(float) }
static void col2im_ref_f64(double *img, const tg__conv_geom *g, double *cols) { IM2COL_REF_BODY(double) }
#undef MODE

/* col2im of cols into a copy of img0 with every variant (float32) or the
 * float64 kernel, each compared with img_ref byte for byte. */
static void col2im_every_variant(const tg__conv_geom *g, bool f64, const char *cols,
                                 const char *img0, const char *img_ref, char *img, size_t bytes,
                                 const char *what, int case_i)
{
    int variants = f64 ? 1 : tg__conv_rows_variants();
    for (int v = 0; v < variants; v++) {
        memcpy(img, img0, bytes);
        if (f64)
            tg__col2im_f64((const double *)cols + 1, g, (double *)img + 1);
        else
            tg__col2im_f32_with(tg__conv_rows_variant(v), (const float *)cols + 1, g,
                                (float *)img + 1);
        ck_assert_msg(memcmp(img, img_ref, bytes) == 0, "%s, case %d, variant %d", what, case_i,
                      v);
    }
}

START_TEST(test_im2col_col2im_same_bytes_as_the_rule)
{
    const conv_case *k = &conv_cases[_i % N_CONV_CASES];
    bool f64 = _i >= N_CONV_CASES;
    tg__conv_geom g = conv_case_geom(k);
    ck_assert(g.OH >= 1 && g.OW >= 1);
    size_t es = f64 ? sizeof(double) : sizeof(float);
    int64_t nimg = g.C * g.H * g.W, ncols = g.C * g.KH * g.KW * g.OH * g.OW;
    // One spare element each side: nothing outside the arrays may be touched.
    char *img = malloc(es * (size_t)(nimg + 2)), *img_ref = malloc(es * (size_t)(nimg + 2));
    char *cols = malloc(es * (size_t)(ncols + 2)), *cols_ref = malloc(es * (size_t)(ncols + 2));
    for (int64_t e = 0; e < nimg + 2; e++) {
        double val = e % 23 == 5 ? -0.0 : e % 37 == 3 ? NAN : uniform() - 0.5;
        if (f64)
            ((double *)img)[e] = val;
        else
            ((float *)img)[e] = (float)val;
    }
    for (int64_t e = 0; e < ncols + 2; e++) {
        double val = e % 19 == 7 ? -0.0 : uniform() - 0.5;
        if (f64)
            ((double *)cols)[e] = val;
        else
            ((float *)cols)[e] = (float)val;
    }
    // float32 runs every variant of the row moves the CPU has, float64 the one it uses.
    int variants = f64 ? 1 : tg__conv_rows_variants();
    char *cols0 = malloc(es * (size_t)(ncols + 2)), *img0 = malloc(es * (size_t)(nimg + 2));
    memcpy(cols0, cols, es * (size_t)(ncols + 2));
    memcpy(cols_ref, cols, es * (size_t)(ncols + 2));
    if (f64)
        im2col_ref_f64((double *)img + 1, &g, (double *)cols_ref + 1);
    else
        im2col_ref_f32((float *)img + 1, &g, (float *)cols_ref + 1);
    for (int v = 0; v < variants; v++) {
        memcpy(cols, cols0, es * (size_t)(ncols + 2));
        if (f64)
            tg__im2col_f64((double *)img + 1, &g, (double *)cols + 1);
        else
            tg__im2col_f32_with(tg__conv_rows_variant(v), (float *)img + 1, &g, (float *)cols + 1);
        ck_assert_msg(memcmp(cols, cols_ref, es * (size_t)(ncols + 2)) == 0,
                      "im2col, case %d, variant %d", _i, v);
    }
    // col2im of fresh values into an image that is not zero.
    for (int64_t e = 0; e < ncols + 2; e++) {
        double val = e % 17 == 2 ? -0.0 : e % 29 == 4 ? 1e30 : uniform() - 0.5;
        if (f64)
            ((double *)cols)[e] = val;
        else
            ((float *)cols)[e] = (float)val;
    }
    memcpy(img0, img, es * (size_t)(nimg + 2));
    memcpy(img_ref, img, es * (size_t)(nimg + 2));
    if (f64)
        col2im_ref_f64((double *)img_ref + 1, &g, (double *)cols + 1);
    else
        col2im_ref_f32((float *)img_ref + 1, &g, (float *)cols + 1);
    col2im_every_variant(&g, f64, cols, img0, img_ref, img, es * (size_t)(nimg + 2), "col2im",
                         _i);
    // All -0.0: every sum is -0.0, unless a variant adds a +0 for a term
    // that is not there (an element a window position does not reach).
    for (int64_t e = 0; e < ncols + 2; e++)
        if (f64)
            ((double *)cols)[e] = -0.0;
        else
            ((float *)cols)[e] = -0.0f;
    for (int64_t e = 0; e < nimg + 2; e++)
        if (f64)
            ((double *)img0)[e] = -0.0;
        else
            ((float *)img0)[e] = -0.0f;
    memcpy(img_ref, img0, es * (size_t)(nimg + 2));
    col2im_every_variant(&g, f64, cols, img0, img_ref, img, es * (size_t)(nimg + 2),
                         "col2im of -0.0", _i);
    free(cols0);
    free(img0);
    free(img);
    free(img_ref);
    free(cols);
    free(cols_ref);
}
END_TEST

/* ---- the ReLU's gradient ---- */

/* out = g * (T)(y > 0), that is g where y > 0 and g * 0 elsewhere (-0 for a
 * negative g, NaN for an infinite or NaN g, NaN payloads kept), bit for bit,
 * over every pair of special values and random ones, at lengths that leave
 * every tail size of every vector width (up to 16 floats) and with the
 * arrays at odd offsets, for every variant (scalar, 16-, 32- and 64-byte
 * vectors as this CPU has them) and the default. */
static const double relu_specials[] = {0.0, -0.0, 1.0, -1.0, 0x1p-149, -0x1p-149, 0x1p-1074,
                                       1e30, -1e30, INFINITY, -INFINITY, NAN, -NAN, 2.5, -3.25};
#define N_RELU_SPECIALS (int)(sizeof relu_specials / sizeof relu_specials[0])

START_TEST(test_relu_grad_same_bits)
{
    enum { N = N_RELU_SPECIALS * N_RELU_SPECIALS + 61 };
    volatile float zf = 0.0f;
    volatile double zd = 0.0;
    float *gf = malloc(sizeof(float) * (N + 1)), *yf = malloc(sizeof(float) * (N + 1));
    float *of = malloc(sizeof(float) * (N + 1));
    double *gd = malloc(sizeof(double) * (N + 1)), *yd = malloc(sizeof(double) * (N + 1));
    double *od = malloc(sizeof(double) * (N + 1));
    for (int e = 0; e < N; e++) {
        double a = e < N_RELU_SPECIALS * N_RELU_SPECIALS ? relu_specials[e / N_RELU_SPECIALS]
                                                         : uniform() - 0.5;
        double b = e < N_RELU_SPECIALS * N_RELU_SPECIALS ? relu_specials[e % N_RELU_SPECIALS]
                                                         : uniform() - 0.5;
        gf[e + 1] = (float)a, yf[e + 1] = (float)b, gd[e + 1] = a, yd[e + 1] = b;
    }
    // A NaN with a payload, both dtypes.
    uint32_t pf = 0x7fc12345u;
    uint64_t pd = 0xfff8000000abcdefull;
    memcpy(gf + 5, &pf, sizeof pf);
    memcpy(gd + 5, &pd, sizeof pd);
    yf[5] = -1.0f, yd[5] = -1.0;
    memcpy(gf + 6, &pf, sizeof pf);
    memcpy(gd + 6, &pd, sizeof pd);
    yf[6] = 2.0f, yd[6] = 2.0;
    // Variant -1 is the default (the widest), then every one this CPU runs.
    for (int v = -1; v < tg__relu_grad_variants(); v++) {
        for (int len = 0; len <= N; len += len < 140 ? 1 : 97) {
            memset(of, 0x5a, sizeof(float) * (N + 1));
            memset(od, 0x5a, sizeof(double) * (N + 1));
            if (v < 0) {
                tg__relu_grad_f32(gf + 1, yf + 1, of + 1, len);
                tg__relu_grad_f64(gd + 1, yd + 1, od + 1, len);
            } else {
                tg__relu_grad_f32_variant(v, gf + 1, yf + 1, of + 1, len);
                tg__relu_grad_f64_variant(v, gd + 1, yd + 1, od + 1, len);
            }
            for (int e = 1; e <= N; e++) {
                float wf = e > len ? of[e] : yf[e] > 0 ? gf[e] : gf[e] * zf;
                double wd = e > len ? od[e] : yd[e] > 0 ? gd[e] : gd[e] * zd;
                if (e > len) { // untouched
                    uint32_t b;
                    memcpy(&b, of + e, sizeof b);
                    ck_assert_uint_eq(b, 0x5a5a5a5au);
                }
                ck_assert_msg(memcmp(&wf, of + e, sizeof wf) == 0,
                              "f32 variant %d len %d at %d: %a vs %a", v, len, e - 1, (double)wf,
                              (double)of[e]);
                ck_assert_msg(memcmp(&wd, od + e, sizeof wd) == 0,
                              "f64 variant %d len %d at %d: %a vs %a", v, len, e - 1, wd, od[e]);
            }
            ck_assert_uint_eq(((uint32_t *)(void *)of)[0], 0x5a5a5a5au);
        }
    }
    free(gf);
    free(yf);
    free(of);
    free(gd);
    free(yd);
    free(od);
}
END_TEST

/* ---- pooling ---- */

START_TEST(test_maxpool_first_max_and_2x2_path)
{
    // Equal values everywhere: every window picks its first element, in the
    // 2x2 fast path and in the general path (3x3 windows) alike.
    float x[4 * 6] = {0};
    float y[6];
    int64_t arg[6];
    tg__pool_geom g2 = {.planes = 1, .H = 4, .W = 6, .KH = 2, .KW = 2, .SH = 2, .SW = 2,
                        .OH = 2, .OW = 3};
    tg__maxpool_f32(x, &g2, y, arg);
    ck_assert_int_eq(arg[0], 0);
    ck_assert_int_eq(arg[4], 2 * 6 + 2);
    tg__pool_geom g3 = {.planes = 1, .H = 4, .W = 6, .KH = 3, .KW = 3, .SH = 1, .SW = 3,
                        .OH = 2, .OW = 2};
    tg__maxpool_f32(x, &g3, y, arg);
    ck_assert_int_eq(arg[3], 6 + 3);
    // A NaN wins its window in both paths.
    x[7] = NAN;
    tg__maxpool_f32(x, &g2, y, arg);
    ck_assert(isnan(y[0]) && arg[0] == 7);
}
END_TEST

/* The 2x2 path (vectorised eight windows at a time for float32) against a
 * direct reading of the rule: the first maximum in row-major window order,
 * with many ties; a NaN anywhere still wins its window. */
START_TEST(test_maxpool_2x2_against_the_rule)
{
    enum { P = 3, H = 10, W = 37, OH = 5, OW = 18 };
    float x[P * H * W], y[P * OH * OW];
    int64_t arg[P * OH * OW];
    for (int i = 0; i < P * H * W; i++)
        x[i] = (float)(int)(uniform() * 4) - 1.5f; // four values: ties everywhere
    if (_i)
        x[2 * W + 17] = NAN;
    tg__pool_geom g = {.planes = P, .H = H, .W = W, .KH = 2, .KW = 2, .SH = 2, .SW = 2,
                       .OH = OH, .OW = OW};
    tg__maxpool_f32(x, &g, y, arg);
    int bad = -1;
    for (int p = 0; p < P && bad < 0; p++)
        for (int i = 0; i < OH; i++)
            for (int j = 0; j < OW; j++) {
                int k = (p * OH + i) * OW + j, at = -1;
                for (int r = 2 * i; r < 2 * i + 2; r++)
                    for (int c = 2 * j; c < 2 * j + 2; c++) {
                        int e = (p * H + r) * W + c;
                        if (at < 0 || x[e] > x[at] || (isnan(x[e]) && !isnan(x[at])))
                            at = e;
                    }
                bool same = arg[k] == at && (isnan(x[at]) ? isnan(y[k]) : y[k] == x[at]);
                if (!same && bad < 0)
                    bad = k;
            }
    ck_assert_msg(bad < 0, "window %d: argmax %lld", bad, bad < 0 ? 0LL : (long long)arg[bad]);
}
END_TEST

/* The max pool's direct backward (which finds the argmax again from x and
 * y) against its definition (zeros, then put_add of dy at the forward's
 * argmax), byte for byte, both dtypes, 1 and 3 threads:
 * the plain 2x2 pool with odd and even sizes (a row and a column no window
 * reads), overlapping windows (3x3 stride 1 and 2, 2x2 stride 1), padding,
 * a batch large enough for threads, rows ending at every place against
 * the vectors' widths; dy holds signed zeros (0 + -0 is +0 in put_add),
 * infinities and NaNs with payloads, x ties, signed zeros, infinities, and
 * NaNs in half the runs. The forward's argmax and values are checked
 * against the rule for the same shapes, NaN included, and then every
 * float32 variant of both passes against these bytes. */
typedef struct pool_case {
    int64_t planes, H, W, KH, KW, SH, SW, PT, PB, PL, PR;
} pool_case;

static const pool_case pool_cases[] = {
    {64, 11, 11, 2, 2, 2, 2, 0, 0, 0, 0}, /* the CNN's second pool: odd row and column */
    {1024, 26, 26, 2, 2, 2, 2, 0, 0, 0, 0}, /* the first, a batch of 32: threads */
    {3, 10, 37, 2, 2, 2, 2, 0, 0, 0, 0},
    {2, 9, 7, 2, 2, 2, 2, 0, 0, 0, 0},    /* rows shorter than a vector of windows */
    {2, 5, 2, 2, 2, 2, 2, 0, 0, 0, 0},    /* one window a row */
    {2, 8, 9, 3, 3, 1, 1, 0, 0, 0, 0},    /* overlapping windows */
    {2, 9, 10, 3, 3, 2, 2, 1, 1, 1, 1},   /* overlap and padding */
    {2, 6, 7, 2, 2, 1, 1, 0, 0, 0, 0},
    {2, 7, 7, 2, 2, 2, 2, 0, 1, 0, 1},    /* padding at the bottom and right */
    {1, 60, 70, 2, 2, 2, 2, 0, 0, 0, 0},  /* a larger plane */
    /* Row ends against the vectors' widths (4, 8, 16 windows): */
    {2, 6, 33, 2, 2, 2, 2, 0, 0, 0, 0},   /* 16 windows and the unread column */
    {2, 5, 65, 2, 2, 2, 2, 0, 0, 0, 0},   /* 32 windows and the unread column */
    {3, 4, 47, 2, 2, 2, 2, 0, 0, 0, 0},   /* 23 windows */
    {2, 4, 32, 2, 2, 2, 2, 0, 0, 0, 0},   /* 16 windows, no unread column */
    {2, 7, 18, 2, 2, 2, 2, 0, 0, 0, 0},   /* 9 windows */
    {3, 7, 17, 2, 2, 2, 2, 0, 0, 0, 0},   /* 8 windows: two rows a vector, odd row count */
    {2, 3, 31, 2, 2, 2, 2, 0, 0, 0, 0},   /* 15 windows, one row */
};
#define N_POOL_CASES (int)(sizeof pool_cases / sizeof pool_cases[0])

/* Element e of a float32 or float64 array becomes a quiet NaN, its sign and
 * payload from `bits` (so that which NaN is chosen shows). */
static void set_nan(char *a, int64_t e, bool f64, uint32_t bits)
{
    if (f64) {
        uint64_t u = 0x7ff8000000000000ull | (uint64_t)(bits & 0xfffff) << 20 |
                     (uint64_t)(bits & 1) << 63;
        memcpy(a + 8 * (size_t)e, &u, 8);
    } else {
        uint32_t u = 0x7fc00000u | (bits & 0x3fffff) | (bits & 1) << 31;
        memcpy(a + 4 * (size_t)e, &u, 4);
    }
}

START_TEST(test_maxpool_backward_is_put_add)
{
    const pool_case *k = &pool_cases[_i % N_POOL_CASES];
    // A NaN in x sends the forward's whole range of planes through the
    // general loop, so half the runs have none: the vector paths are checked.
    bool f64 = _i / N_POOL_CASES % 2, nans = _i >= 2 * N_POOL_CASES;
    tg__pool_geom g = {.planes = k->planes, .H = k->H, .W = k->W, .KH = k->KH, .KW = k->KW,
                       .SH = k->SH, .SW = k->SW, .PT = k->PT, .PL = k->PL};
    g.OH = (g.H + k->PT + k->PB - g.KH) / g.SH + 1;
    g.OW = (g.W + k->PL + k->PR - g.KW) / g.SW + 1;
    int64_t nx = g.planes * g.H * g.W, ny = g.planes * g.OH * g.OW;
    size_t es = f64 ? sizeof(double) : sizeof(float);
    char *x = malloc(es * (size_t)nx), *y = malloc(es * (size_t)ny);
    char *dy = malloc(es * (size_t)ny), *dx[3];
    int64_t *arg = malloc(sizeof(int64_t) * (size_t)ny);
    for (int64_t e = 0; e < nx; e++) {
        // Ties, signed zeros among them (-0 == +0: the first of them is
        // chosen), infinities, and NaNs with payloads (the first one wins).
        int q = (int)(uniform() * 7);
        double v = q == 0 ? -0.0 : q == 1 ? 0.0 : q == 5 ? -INFINITY : q == 6 ? INFINITY : q - 3.5;
        if (f64)
            ((double *)x)[e] = v;
        else
            ((float *)x)[e] = (float)v;
        if (nans && e % 53 == 11)
            set_nan(x, e, f64, (uint32_t)e);
    }
    for (int64_t e = 0; e < ny; e++) {
        double v = e % 7 == 3 ? -0.0 : e % 29 == 4 ? -INFINITY : uniform() - 0.5;
        if (f64)
            ((double *)dy)[e] = v;
        else
            ((float *)dy)[e] = (float)v;
        if (e % 31 == 5)
            set_nan(dy, e, f64, (uint32_t)e);
    }
    if (f64)
        tg__maxpool_f64((double *)x, &g, (double *)y, arg);
    else
        tg__maxpool_f32((float *)x, &g, (float *)y, arg);
    // The forward against the rule: first maximum in window order, NaN wins.
    for (int64_t p = 0, o = 0; p < g.planes; p++)
        for (int64_t i = 0; i < g.OH; i++)
            for (int64_t j = 0; j < g.OW; j++, o++) {
                int64_t at = -1;
                double best = 0;
                for (int64_t r = i * g.SH - g.PT; r < i * g.SH - g.PT + g.KH; r++)
                    for (int64_t c = j * g.SW - g.PL; c < j * g.SW - g.PL + g.KW; c++) {
                        if (r < 0 || r >= g.H || c < 0 || c >= g.W)
                            continue;
                        int64_t e = (p * g.H + r) * g.W + c;
                        double v = f64 ? ((double *)x)[e] : ((float *)x)[e];
                        if (at < 0 || v > best || (isnan(v) && !isnan(best)))
                            at = e, best = v;
                    }
                // y is that element, bit for bit (a signed zero, a NaN's payload).
                bool same = memcmp(y + es * (size_t)o, x + es * (size_t)at, es) == 0;
                ck_assert_msg(arg[o] == at && same,
                              "case %d window %lld: argmax %lld, want %lld", _i, (long long)o,
                              (long long)arg[o], (long long)at);
            }
    // Without indices, the same values.
    char *y2 = malloc(es * (size_t)ny);
    if (f64)
        tg__maxpool_f64((double *)x, &g, (double *)y2, NULL);
    else
        tg__maxpool_f32((float *)x, &g, (float *)y2, NULL);
    ck_assert_msg(memcmp(y, y2, es * (size_t)ny) == 0, "case %d: y without argmax", _i);
    free(y2);
    for (int r = 0; r < 3; r++) {
        dx[r] = malloc(es * (size_t)nx);
        memset(dx[r], 0x5a, es * (size_t)nx); // every element must be written
    }
    memset(dx[0], 0, es * (size_t)nx);
    if (f64)
        tg__put_add_f64((double *)dy, arg, ny, (double *)dx[0]);
    else
        tg__put_add_f32((float *)dy, arg, ny, (float *)dx[0]);
    int runs = have_threads() ? 3 : 2; // a build without threads checks 1 thread only
    for (int r = 1; r < runs; r++) {
        ASSERT_OK(tg_set_num_threads(r == 1 ? 1 : 3));
        if (f64)
            tg__maxpool_backward_f64((double *)x, (double *)y, (double *)dy, &g,
                                     (double *)dx[r]);
        else
            tg__maxpool_backward_f32((float *)x, (float *)y, (float *)dy, &g, (float *)dx[r]);
        ck_assert_msg(memcmp(dx[0], dx[r], es * (size_t)nx) == 0, "case %d, %d thread(s)", _i,
                      r == 1 ? 1 : 3);
    }
    ASSERT_OK(tg_set_num_threads(1));
    // Every float32 variant this CPU runs (scalar, 16-byte vectors, AVX2,
    // AVX-512), forward with and without indices and backward: the same
    // bytes as the rule and put_add above.
    int variants = f64 ? 0 : tg__pool_f32_variants();
    char *y3 = malloc(es * (size_t)ny);
    int64_t *arg3 = malloc(sizeof(int64_t) * (size_t)ny);
    for (int v = 0; v < variants; v++) {
        memset(y3, 0x5a, es * (size_t)ny);
        memset(arg3, 0x5a, sizeof(int64_t) * (size_t)ny);
        tg__maxpool_f32_variant(v, (float *)x, &g, (float *)y3, arg3);
        ck_assert_msg(memcmp(y, y3, es * (size_t)ny) == 0, "case %d variant %d: y", _i, v);
        ck_assert_msg(memcmp(arg, arg3, sizeof(int64_t) * (size_t)ny) == 0,
                      "case %d variant %d: argmax", _i, v);
        memset(y3, 0x5a, es * (size_t)ny);
        tg__maxpool_f32_variant(v, (float *)x, &g, (float *)y3, NULL);
        ck_assert_msg(memcmp(y, y3, es * (size_t)ny) == 0, "case %d variant %d: y without argmax",
                      _i, v);
        memset(dx[1], 0x5a, es * (size_t)nx);
        tg__maxpool_backward_f32_variant(v, (float *)x, (float *)y, (float *)dy, &g,
                                         (float *)dx[1]);
        ck_assert_msg(memcmp(dx[0], dx[1], es * (size_t)nx) == 0, "case %d variant %d: dx", _i,
                      v);
    }
    // The pool with codes (conv2d_relu_max_pool2d's), every variant: the same
    // y, codes that name the argmax, and a backward from them that is
    // tg__relu_grad_f32 (mask: the pool's input > 0) of put_add's bytes.
    int code_variants = f64 ? 0 : tg__pool_f32_variants();
    int back_variants = f64 ? 0 : tg__pool_codes_variants();
    uint8_t *code = malloc((size_t)ny + 16);
    if (!f64)
        tg__relu_grad_f32((float *)dx[0], (float *)x, (float *)dx[2], nx);
    for (int v = 0; v < code_variants || v < back_variants; v++) {
        memset(y3, 0x5a, es * (size_t)ny);
        memset(code, 0xff, (size_t)ny + 16);
        tg__maxpool_codes_f32_variant(v < code_variants ? v : -1, (float *)x, &g, (float *)y3,
                                      code);
        ck_assert_msg(memcmp(y, y3, es * (size_t)ny) == 0, "case %d codes variant %d: y", _i, v);
        for (int64_t p = 0, o = 0; p < g.planes; p++)
            for (int64_t i = 0; i < g.OH; i++)
                for (int64_t j = 0; j < g.OW; j++, o++) {
                    int64_t r = i * g.SH - g.PT + code[o] / g.KW;
                    int64_t c = j * g.SW - g.PL + code[o] % g.KW;
                    ck_assert_msg((p * g.H + r) * g.W + c == arg[o],
                                  "case %d codes variant %d: window %lld has code %d", _i, v,
                                  (long long)o, code[o]);
                }
        memset(dx[1], 0x5a, es * (size_t)nx);
        int bv = v < back_variants ? v : -1;
        tg__maxpool_codes_relu_backward_f32_variant(bv, code, (float *)y, (float *)dy, &g,
                                                    (float *)dx[1], g.H * g.W);
        ck_assert_msg(memcmp(dx[2], dx[1], es * (size_t)nx) == 0,
                      "case %d codes variant %d: dx", _i, v);
        // Planes 3 floats apart further (as in the conv block's dz): the
        // same planes, and the gaps between them untouched.
        if (f64)
            continue;
        int64_t ld = g.H * g.W + 3;
        float *spread = malloc(sizeof(float) * (size_t)(g.planes * ld));
        memset(spread, 0x5a, sizeof(float) * (size_t)(g.planes * ld));
        tg__maxpool_codes_relu_backward_f32_variant(bv, code, (float *)y, (float *)dy, &g, spread,
                                                    ld);
        for (int64_t p = 0; p < g.planes; p++) {
            ck_assert_msg(memcmp(spread + p * ld, (float *)dx[2] + p * g.H * g.W,
                                 sizeof(float) * (size_t)(g.H * g.W)) == 0,
                          "case %d codes variant %d: plane %lld at ld %lld", _i, v,
                          (long long)p, (long long)ld);
            uint32_t gap[3], marked;
            memcpy(gap, spread + p * ld + g.H * g.W, sizeof gap);
            memset(&marked, 0x5a, sizeof marked);
            for (int e = 0; e < 3; e++)
                ck_assert_msg(gap[e] == marked, "case %d codes variant %d: gap after plane %lld",
                              _i, v, (long long)p);
        }
        free(spread);
    }
    free(code);
    free(y3);
    free(arg3);
    for (int r = 0; r < 3; r++)
        free(dx[r]);
    free(x);
    free(y);
    free(dy);
    free(arg);
}
END_TEST

START_TEST(test_avgpool_adjoint)
{
    tg__pool_geom g = {.planes = 3, .H = 5, .W = 6, .KH = 3, .KW = 2, .SH = 2, .SW = 2,
                       .PT = 1, .PL = 1, .OH = 3, .OW = 4};
    double x[3 * 5 * 6], y[3 * 3 * 4], dy[3 * 3 * 4], dx[3 * 5 * 6] = {0};
    for (int i = 0; i < 90; i++)
        x[i] = uniform();
    for (int i = 0; i < 36; i++)
        dy[i] = uniform();
    for (int inc = 0; inc < 2; inc++) {
        memset(dx, 0, sizeof dx);
        tg__avgpool_f64(x, &g, inc, y);
        tg__avgpool_adjoint_f64(dy, &g, inc, dx);
        double lhs = 0, rhs = 0;
        for (int i = 0; i < 36; i++)
            lhs += y[i] * dy[i];
        for (int i = 0; i < 90; i++)
            rhs += x[i] * dx[i];
        ck_assert_double_eq_tol(lhs, rhs, 1e-12);
    }
}
END_TEST

/* ---- float32 tanh (kernels/tanh.c) ---- */

/* |t - tanh x| in float ulps at tanh x, against double tanh. */
static double tanh_ulps(float x, float t)
{
    double ref = tanh((double)x);
    float r = fabsf((float)ref);
    double ulp = r == 0 ? 0x1p-149 : r >= 1.0f ? 0x1p-24 : (double)nextafterf(r, 2.0f) - r;
    return fabs((double)t - ref) / ulp;
}

/* Within 0.5 ulp (plus a little, for the reference's own rounding) over a
 * dense sweep of float bit patterns (every 251st, both signs: subnormals,
 * the linear range, the bend, the tails) and every float near the
 * saturation point; exact at the special values. The whole float range
 * measured 0.500 ulp at most (docs/performance.md). */
START_TEST(test_tanhf_accuracy)
{
    double worst = 0;
    float worst_x = 0;
    for (uint32_t u = 0; u < 0x7f800000u; u += 251)
        for (int sign = 0; sign < 2; sign++) {
            float x;
            memcpy(&x, &u, sizeof x);
            x = sign ? -x : x;
            double e = tanh_ulps(x, tg__tanhf(x));
            if (e > worst) {
                worst = e;
                worst_x = x;
            }
        }
    for (float x = 8.0f; x < 11.0f; x = nextafterf(x, 12.0f)) {
        double e = tanh_ulps(x, tg__tanhf(x));
        if (e > worst) {
            worst = e;
            worst_x = x;
        }
    }
    ck_assert_msg(worst <= 0.5001, "tanhf: %.4f ulp at %a", worst, (double)worst_x);
    ck_assert(tg__tanhf(INFINITY) == 1.0f && tg__tanhf(-INFINITY) == -1.0f);
    ck_assert(tg__tanhf(FLT_MAX) == 1.0f && tg__tanhf(-FLT_MAX) == -1.0f);
    ck_assert(isnan(tg__tanhf(NAN)) && isnan(tg__tanhf(-NAN)));
    ck_assert(tg__tanhf(0.0f) == 0.0f && !signbit(tg__tanhf(0.0f)));
    ck_assert(tg__tanhf(-0.0f) == 0.0f && signbit(tg__tanhf(-0.0f)));
    ck_assert(tg__tanhf(0x1p-149f) == 0x1p-149f && tg__tanhf(-0x1p-149f) == -0x1p-149f);
    ck_assert(tg__tanhf(-1.0f) == -tg__tanhf(1.0f)); // odd, exactly
    float xs[5] = {-3, -0.5f, 0, 0.25f, 20}, ys[5];
    tg__tanh_f32(xs, ys, 5);
    for (int i = 0; i < 5; i++)
        ck_assert(ys[i] == tg__tanhf(xs[i]));
}
END_TEST

/* A small sum over the leading axis (the bias gradient of a small layer) adds
 * each column's rows in order, starting from +0: 19 columns (two blocks of
 * eight and a tail), rows with -0.0 in them, float and double. Summing only
 * -0.0 gives +0, as the general walk does. */
/* A sum over an empty axis with a huge kept one and a huge reduced one:
 * zeros at once, not a walk over 2.6e10 empty runs (the ops fuzzer's
 * timeout: the test's timeout before the fix). */
START_TEST(test_sum_of_empty_huge_shape_is_quick)
{
    const int64_t shape[4] = {3, (int64_t)1 << 31, 4, 0};
    float x[1] = {1.0f}, out[12];
    double outd[12];
    memset(out, 0x5a, sizeof out);
    tg__reduce_sum_f32(x, 4, shape, 0xA, out); // axes 1 and 3 reduced: out is 3 x 4
    for (int k = 0; k < 12; k++) {
        uint32_t bits;
        memcpy(&bits, &out[k], 4);
        ck_assert_msg(bits == 0, "out[%d] bits 0x%08x, not +0", k, bits);
    }
    const double xd[1] = {1.0};
    tg__reduce_sum_f64(xd, 4, shape, 0xA, outd);
    for (int k = 0; k < 12; k++)
        ck_assert(outd[k] == 0 && !signbit(outd[k]));
}
END_TEST

START_TEST(test_small_sum_row_order_from_plus_zero)
{
    enum { R = 5, K = 19 };
    const int64_t shape[2] = {R, K}, shape_t[2] = {K, R};
    float xf[R * K], of[K], negf[R * K], onf[K];
    double xd[R * K], od[K];
    tg_rng rng = tg_rng_seeded(11);
    for (int i = 0; i < R * K; i++) {
        xf[i] = i % 7 == 3 ? -0.0f : (float)(tg_rng_uniform(&rng) - 0.5) * 1e3f;
        xd[i] = xf[i] * (1.0 + 1e-9 * i);
        negf[i] = -0.0f;
    }
    tg__reduce_sum_f32(xf, 2, shape, 1u, of);
    tg__reduce_sum_f64(xd, 2, shape, 1u, od);
    for (int k = 0; k < K; k++) {
        float ef = 0.0f;
        double ed = 0.0;
        for (int r = 0; r < R; r++) {
            ef += xf[r * K + k];
            ed += xd[r * K + k];
        }
        ck_assert_msg(memcmp(&ef, &of[k], sizeof ef) == 0, "float column %d", k);
        ck_assert_msg(memcmp(&ed, &od[k], sizeof ed) == 0, "double column %d", k);
    }
    tg__reduce_sum_f32(negf, 2, shape, 1u, onf);
    for (int k = 0; k < K; k++)
        ck_assert(onf[k] == 0 && !signbit(onf[k]));
    tg__reduce_sum_f32(negf, 2, shape_t, 2u, onf);
    for (int k = 0; k < K; k++)
        ck_assert(onf[k] == 0 && !signbit(onf[k]));
}
END_TEST

/* tg__sum_runs (a convolution's bias partials) gives tg__sum_run_f32's
 * bytes for every run, in every variant the CPU runs: run lengths with and
 * without a tail of fewer than eight, counts that leave runs past the last
 * four, a stride wider than a run, signed zeros, a NaN, terms that round. */
START_TEST(test_sum_runs_is_sum_run)
{
    static const int64_t lens[] = {0, 1, 7, 8, 9, 121, 676, 1000};
    static const int64_t counts[] = {1, 3, 4, 5, 64};
    tg_rng rng = tg_rng_seeded(13);
    enum { STRIDE = 1003 };
    float *x = malloc(64 * STRIDE * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (int i = 0; i < 64 * STRIDE; i++)
        x[i] = i % 11 == 5 ? -0.0f : (float)((tg_rng_uniform(&rng) - 0.5) * pow(10, i % 9 - 4));
    x[3 * STRIDE + 50] = NAN;
    for (int v = 0; v < tg__sum_runs_variants(); v++)
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++)
            for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
                double out[64];
                tg__sum_runs_f32_variant(v, x, lens[l], STRIDE, counts[c], out);
                for (int64_t r = 0; r < counts[c]; r++) {
                    double want = tg__sum_run_f32(x + r * STRIDE, lens[l]);
                    ck_assert_msg(memcmp(&want, &out[r], sizeof want) == 0,
                                  "variant %d, run %lld of %lld, length %lld: %.17g, want %.17g",
                                  v, (long long)r, (long long)counts[c], (long long)lens[l],
                                  out[r], want);
                }
            }
    free(x);
}
END_TEST

/* tg__sum_rows (the engine's bias-gradient sum) gives tg__reduce_sum's bytes
 * over axis 0 for every small shape, one column and one row included, with
 * signed zeros, a NaN and large terms that round. */
START_TEST(test_sum_rows_is_reduce_sum)
{
    static const int64_t shapes[][2] = {{4, 8}, {4, 1}, {1, 7}, {1, 1}, {9, 13}, {64, 64},
                                        {3, 17}, {100, 1}, {33, 1}, {2, 2048}};
    tg_rng rng = tg_rng_seeded(12);
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        int64_t R = shapes[c][0], K = shapes[c][1];
        float *xf = malloc(sizeof(float) * (size_t)(R * K));
        double *xd = malloc(sizeof(double) * (size_t)(R * K));
        float *af = malloc(sizeof(float) * (size_t)K), *bf = malloc(sizeof(float) * (size_t)K);
        double *ad = malloc(sizeof(double) * (size_t)K), *bd = malloc(sizeof(double) * (size_t)K);
        for (int64_t i = 0; i < R * K; i++) {
            // Terms of mixed sizes, so that float and double running sums differ.
            double v = i % 11 == 4   ? -0.0
                       : i == 5 && K > 1 ? NAN
                                         : (tg_rng_uniform(&rng) - 0.5) * (i % 3 ? 1e7 : 1e-2);
            xf[i] = (float)v;
            xd[i] = v;
        }
        tg__reduce_sum_f32(xf, 2, shapes[c], 1u, af);
        tg__sum_rows_f32(xf, R, K, bf);
        tg__reduce_sum_f64(xd, 2, shapes[c], 1u, ad);
        tg__sum_rows_f64(xd, R, K, bd);
        ck_assert_msg(memcmp(af, bf, sizeof(float) * (size_t)K) == 0, "float %ldx%ld", (long)R,
                      (long)K);
        ck_assert_msg(memcmp(ad, bd, sizeof(double) * (size_t)K) == 0, "double %ldx%ld",
                      (long)R, (long)K);
        free(xf);
        free(xd);
        free(af);
        free(bf);
        free(ad);
        free(bd);
    }
}
END_TEST

/* Every vector tanh this CPU runs (AVX2, AVX-512) gives the scalar
 * function's bits in every lane: a dense sweep of float bit patterns (every
 * 7th, both signs, so NaNs, infinities, subnormals and the saturation point
 * fall at every lane position), in blocks of odd length so that groups mix
 * saturated and ordinary lanes and tails are exercised. */
START_TEST(test_tanhf_vector_equals_scalar)
{
    int variants = tg__tanh_f32_variants();
    if (variants < 2)
        return;
    enum { N = 4093 };
    static float xs[N], ya[N], yb[N];
    int n = 0;
    uint64_t checked = 0;
    for (uint64_t u = 0; u <= 0xffffffffu; u += 7) {
        uint32_t bits = (uint32_t)u;
        memcpy(&xs[n++], &bits, sizeof bits);
        if (n == N || u + 7 > 0xffffffffu) {
            tg__tanh_f32_scalar(xs, yb, n);
            for (int v = 1; v < variants; v++) {
                tg__tanh_f32_variant(v, xs, ya, n);
                ck_assert_msg(memcmp(ya, yb, (size_t)n * sizeof *ya) == 0,
                              "tanh variant %d differs near bit pattern 0x%08x", v, bits);
            }
            checked += (uint64_t)n;
            n = 0;
        }
    }
    for (float x = 8.0f; x < 11.0f; x = nextafterf(x, 12.0f)) {
        float v[11] = {x, -x, 0.5f, -0.0f, x, 1e-30f, -x, 0.0f, 0.75f, -x, 2.0f}, a[11], b[11];
        tg__tanh_f32_scalar(v, b, 11);
        for (int k = 1; k < variants; k++) {
            tg__tanh_f32_variant(k, v, a, 11);
            ck_assert(memcmp(a, b, sizeof a) == 0);
        }
    }
    ck_assert(checked > 600000000u);
}
END_TEST

/* ---- strided copies ---- */

/* tg__strided_copy's transposes (the blocked path and its ragged edges)
 * against the plain reading of its definition, in both orders of the two
 * dimensions, with rows of either side wider than the copy (sentinels in
 * the gaps must survive), and the patterns it must leave to the general
 * loop: a broadcast source (stride 0) and rows too short for a block. */
START_TEST(test_strided_copy_transposes)
{
    static const int64_t sizes[][2] = {{8, 8}, {9, 17}, {64, 288}, {288, 64}, {7, 40}, {3, 2},
                                       {16, 1}, {33, 8}};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++)
        for (int order = 0; order < 3; order++) {
            int64_t R = sizes[t][0], C = sizes[t][1], ls = R + 3, ld = C + 5;
            // order 0: element (r, c) at src[r + c ls] -> dst[r ld + c];
            // 1: the same with the dimensions listed the other way round;
            // 2: a source column repeated (stride 0 across c).
            int64_t shape[2] = {R, C}, from[2] = {1, order == 2 ? 0 : ls}, to[2] = {ld, 1};
            if (order == 1) {
                shape[0] = C, shape[1] = R;
                from[0] = ls, from[1] = 1, to[0] = 1, to[1] = ld;
            }
            float *src = malloc(sizeof(float) * (size_t)(ls * C));
            float *dst = malloc(sizeof(float) * (size_t)(ld * R));
            for (int64_t e = 0; e < ls * C; e++)
                src[e] = (float)e + 0.5f;
            for (int64_t e = 0; e < ld * R; e++)
                dst[e] = -1.0f;
            tg__strided_copy(sizeof(float), 2, shape, src, from, dst, to);
            for (int64_t r = 0; r < R; r++)
                for (int64_t c = 0; c < ld; c++) {
                    float want = c >= C ? -1.0f : src[r + (order == 2 ? 0 : c * ls)];
                    ck_assert_msg(dst[r * ld + c] == want,
                                  "%lld x %lld, order %d: (%lld, %lld) is %g, not %g",
                                  (long long)R, (long long)C, order, (long long)r,
                                  (long long)c, dst[r * ld + c], want);
                }
            free(src);
            free(dst);
        }
}
END_TEST

static Suite *kernels_suite(void)
{
    Suite *s = suite_create("kernels");
    TCase *gemm = tcase_create("gemm");
    tcase_set_timeout(gemm, 120);
    tcase_add_loop_test(gemm, test_gemm_random_shapes, 0, 4);
    tcase_add_loop_test(gemm, test_gemm_large_and_edges, 0, 4);
    suite_add_tcase(s, gemm);
    TCase *same = tcase_create("gemm_same_bytes");
    tcase_set_timeout(same, 300);
    tcase_add_loop_test(same, test_gemm_same_bytes_every_kernel_and_thread_count, 0, 4);
    tcase_add_loop_test(same, test_gemm_epilogue_and_segments_same_bytes, 0, 4);
    tcase_add_loop_test(same, test_gemm_readable_b_rows_same_bytes, 0, 4);
    tcase_add_loop_test(same, test_gemm_without_memory_same_bytes, 0, 4);
    tcase_add_loop_test(same, test_gemm_small_path_equals_packed, 0, 4);
    tcase_add_loop_test(same, test_gemm_shape_paths_equal_direct, 0, 4);
    tcase_add_loop_test(same, test_gemm_allocates_once, 0, 1);
    suite_add_tcase(s, same);
    TCase *conv = tcase_create("im2col");
    tcase_add_loop_test(conv, test_im2col_reads_the_window, 0, 6);
    tcase_add_loop_test(conv, test_im2col_col2im_same_bytes_as_the_rule, 0, 2 * N_CONV_CASES);
    suite_add_tcase(s, conv);
    TCase *layout = tcase_create("layout");
    tcase_add_test(layout, test_strided_copy_transposes);
    suite_add_tcase(s, layout);
    TCase *relu = tcase_create("relu_grad");
    tcase_add_test(relu, test_relu_grad_same_bits);
    suite_add_tcase(s, relu);
    TCase *pool = tcase_create("pool");
    tcase_add_test(pool, test_maxpool_first_max_and_2x2_path);
    tcase_add_loop_test(pool, test_maxpool_2x2_against_the_rule, 0, 2);
    tcase_add_test(pool, test_avgpool_adjoint);
    tcase_add_loop_test(pool, test_maxpool_backward_is_put_add, 0, 4 * N_POOL_CASES);
    suite_add_tcase(s, pool);
    TCase *sum = tcase_create("sum");
    tcase_add_test(sum, test_small_sum_row_order_from_plus_zero);
    tcase_add_test(sum, test_sum_of_empty_huge_shape_is_quick);
    tcase_add_test(sum, test_sum_rows_is_reduce_sum);
    tcase_add_test(sum, test_sum_runs_is_sum_run);
    suite_add_tcase(s, sum);
    TCase *tanh_tc = tcase_create("tanh");
    tcase_set_timeout(tanh_tc, 300); // exhaustive over every 7th float: 75-143 s on a busy 2-CPU machine
    tcase_add_test(tanh_tc, test_tanhf_accuracy);
    tcase_add_test(tanh_tc, test_tanhf_vector_equals_scalar);
    suite_add_tcase(s, tanh_tc);
    return s;
}

TG_CHECK_MAIN(kernels_suite)
