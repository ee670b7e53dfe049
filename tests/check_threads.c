/* check_threads.c - results that must not depend on how they were computed:
 * a CNN trained with every GEMM kernel this CPU runs, and with 1, 2 and 3
 * threads, ends with the same weights to the last byte; the thread pool runs
 * every task once, also nested and from two user threads at once; from the
 * second training step on, a step allocates nothing in the kernels; the
 * threaded pooling and elementwise kernels match their serial bytes. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/kernels.h"
#include "kernels/pointwise.h"
#include "kernels/reduce.h"
#include "thread/pool.h"
#include "tg_check.h"

enum { BATCH = 8, STEPS = 3 };

typedef struct counts {
    _Atomic int hits[1000];
    int64_t n;
} counts;

/* The article's CNN (conv 32 3x3 relu, maxpool 2, conv 64 3x3 relu, maxpool 2,
 * dense 64 relu, dense 10), trained STEPS Adam steps on a fixed random
 * batch with cross-entropy; returns every parameter's bytes, concatenated
 * (malloc'd, *len bytes). */
static unsigned char *train_cnn(size_t *len, long *allocs_last_step)
{
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(1, 28, 28), TG_SCHEME_KERAS, 7);
    ck_assert_ptr_nonnull(m);
    ASSERT_OK(tg_model_add(m, tg_layer_conv2d(32, 3, 3, TG_ACT_RELU)));
    ASSERT_OK(tg_model_add(m, tg_layer_maxpool2d(2)));
    ASSERT_OK(tg_model_add(m, tg_layer_conv2d(64, 3, 3, TG_ACT_RELU)));
    ASSERT_OK(tg_model_add(m, tg_layer_maxpool2d(2)));
    ASSERT_OK(tg_model_add(m, tg_layer_flatten()));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(64, TG_ACT_RELU)));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(10, TG_ACT_SOFTMAX)));
    tg_tensor *x = tg_tensor_zeros(TG_F32, TG_SHAPE(BATCH, 1, 28, 28));
    ck_assert_ptr_nonnull(x);
    tg_rng rng = tg_rng_seeded(3);
    float *px = tg_tensor_data(x);
    for (int64_t i = 0; i < tg_tensor_numel(x); i++)
        px[i] = (float)tg_rng_uniform(&rng);
    int64_t labels[BATCH];
    for (int i = 0; i < BATCH; i++)
        labels[i] = (int64_t)tg_rng_below(&rng, 10);
    int n;
    tg_tensor *const *params = tg_model_params(m, &n);
    tg_adam_opts ao = tg_adam_defaults();
    tg_optim *opt = tg_optim_adam(params, n, &ao);
    ck_assert_ptr_nonnull(opt);
    tg_tape *tape = tg_tape_new();
    ck_assert_ptr_nonnull(tape);
    for (int step = 0; step < STEPS; step++) {
        long before = tg__alloc_count();
        tg_tensor *loss = tg_cross_entropy(tg_model_forward(m, x, true), labels, TG_REDUCE_MEAN);
        ck_assert_msg(loss != NULL, "%s", tg_last_error());
        ASSERT_OK(tg_backward(loss));
        ASSERT_OK(tg_optim_step(opt));
        tg_optim_zero_grad(opt);
        tg_tape_reset(tape);
        if (allocs_last_step)
            *allocs_last_step = tg__alloc_count() - before;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += (size_t)tg_tensor_numel(params[i]) * sizeof(float);
    unsigned char *bytes = malloc(total), *p = bytes;
    for (int i = 0; i < n; i++) {
        size_t b = (size_t)tg_tensor_numel(params[i]) * sizeof(float);
        memcpy(p, tg_tensor_data(params[i]), b);
        p += b;
    }
    *len = total;
    tg_tape_free(tape);
    tg_optim_free(opt);
    tg_tensor_free(x);
    tg_model_free(m);
    return bytes;
}

/* A serial build (-Dthreads=disabled) refuses more than one thread. */
static int max_threads(int want) { return tg_set_num_threads(2) == TG_OK ? want : 1; }

/* The first byte where two runs differ, as a message. (One assertion, not
 * one per byte: each Check assertion writes to a pipe in fork mode.) */
static void assert_same(const unsigned char *a, const unsigned char *b, size_t len,
                        const char *what)
{
    size_t i = 0;
    while (i < len && a[i] == b[i])
        i++;
    ck_assert_msg(i == len, "%s: weights differ at byte %zu of %zu", what, i, len);
}

/* Whether every task of c ran `want` times (tasks past c->n: never). */
static bool all_hit(const counts *c, int want)
{
    for (int64_t t = 0; t < 1000; t++)
        if (c->hits[t] != (t < c->n ? want : 0))
            return false;
    return true;
}

START_TEST(test_cnn_same_bytes_every_kernel)
{
    static const char *const names[] = {"generic", "avx2", "avx512"};
    ASSERT_OK(tg_set_num_threads(1));
    size_t len0 = 0, len;
    unsigned char *ref = NULL;
    int ran = 0;
    for (int k = 0; k < 3; k++) {
        if (tg_set_kernel(names[k]) != TG_OK)
            continue; // this CPU lacks it
        ck_assert_str_eq(tg_kernel_name(), names[k]);
        unsigned char *w = train_cnn(&len, NULL);
        if (!ref) {
            ref = w;
            len0 = len;
        } else {
            ck_assert_uint_eq(len, len0);
            assert_same(ref, w, len, names[k]);
            free(w);
        }
        ran++;
    }
    ck_assert_int_ge(ran, 1);
    free(ref);
}
END_TEST

START_TEST(test_cnn_same_bytes_any_thread_count)
{
    // _i: the kernel in use (the automatic choice, then each one by name).
    static const char *const names[] = {"auto", "avx2", "avx512"};
    if (tg_set_kernel(names[_i]) != TG_OK)
        return;
    size_t len1, len;
    ASSERT_OK(tg_set_num_threads(1));
    unsigned char *one = train_cnn(&len1, NULL);
    for (int t = 2; t <= max_threads(3); t++) {
        ASSERT_OK(tg_set_num_threads(t));
        ck_assert_int_eq(tg_num_threads(), t);
        unsigned char *w = train_cnn(&len, NULL);
        ck_assert_uint_eq(len, len1);
        assert_same(one, w, len, t == 2 ? "2 threads" : "3 threads");
        free(w);
    }
    ASSERT_OK(tg_set_num_threads(1));
    free(one);
}
END_TEST

/* From the second step on, what a step allocates comes from outside the
 * kernels (the GEMM scratch is each thread's workspace, grown once): the
 * count is the same whatever the thread count and kernel, and a step with
 * threads allocates no more than one without. */
START_TEST(test_cnn_steps_allocate_nothing_in_kernels)
{
    size_t len;
    long serial, threaded;
    ASSERT_OK(tg_set_num_threads(1));
    free(train_cnn(&len, &serial));
    ASSERT_OK(tg_set_num_threads(max_threads(2)));
    free(train_cnn(&len, &threaded));
    ck_assert_msg(threaded == serial, "a step allocates %ld times with 2 threads, %ld with 1",
                  threaded, serial);
    fprintf(stderr, "allocations per CNN training step after the first: %ld\n", serial);
    // The walk's leaf list used to be the one allocation left; it lives in the
    // tape's arena now, so a step allocates nothing (issue 11 item 13).
    ck_assert_msg(serial == 0, "a training step after the first allocates %ld times", serial);
    ASSERT_OK(tg_set_num_threads(1));
}
END_TEST


static void count_task(void *ctx, int64_t t, void *ws)
{
    (void)ws;
    counts *c = ctx;
    atomic_fetch_add(&c->hits[t], 1);
}

static void nested_task(void *ctx, int64_t t, void *ws)
{
    (void)ws;
    counts *c = ctx;
    // A loop inside a task runs on this thread, serially, and still once each.
    counts inner = {.n = 5};
    tg__parallel_for(5, 0, count_task, &inner);
    atomic_fetch_add(&c->hits[t], all_hit(&inner, 1) ? 1 : 100);
}

START_TEST(test_pool_runs_every_task_once)
{
    for (int threads = 1; threads <= max_threads(4); threads++) {
        ASSERT_OK(tg_set_num_threads(threads));
        for (int64_t n = 0; n <= 1000; n += 37) {
            counts *c = calloc(1, sizeof *c);
            c->n = n;
            tg__parallel_for(n, 0, _i ? nested_task : count_task, c);
            ck_assert_msg(all_hit(c, 1), "%d threads, %lld tasks", threads, (long long)n);
            free(c);
        }
    }
    ASSERT_OK(tg_set_num_threads(1));
}
END_TEST

/* What the atexit hook does: joins every worker, and the next loop starts
 * them again. (Before it, valgrind found each worker's stack and TLS
 * "possibly lost" at the end of check_examples.) */
START_TEST(test_pool_join_workers)
{
    int threads = max_threads(3);
    ASSERT_OK(tg_set_num_threads(threads));
    for (int round = 0; round < 2; round++) {
        counts *c = calloc(1, sizeof *c);
        c->n = 100;
        tg__parallel_for(c->n, 0, count_task, c);
        ck_assert(all_hit(c, 1));
        free(c);
        // Threads may be refused by the system; never more than asked.
        ck_assert_int_le(tg__pool_workers(), threads - 1);
        if (threads > 1)
            ck_assert_int_ge(tg__pool_workers(), 1);
        tg__pool_join_workers();
        ck_assert_int_eq(tg__pool_workers(), 0);
    }
    ASSERT_OK(tg_set_num_threads(1));
}
END_TEST

/* Two user threads use the pool at once: one gets it, the other runs alone. */
static void *user_thread(void *arg)
{
    counts *c = arg;
    for (int rep = 0; rep < 50; rep++)
        tg__parallel_for(c->n, 0, count_task, c);
    return NULL;
}

START_TEST(test_pool_two_callers)
{
    ASSERT_OK(tg_set_num_threads(max_threads(3)));
    counts *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    a->n = 1000;
    b->n = 999;
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, user_thread, a), 0);
    ck_assert_int_eq(pthread_create(&tb, NULL, user_thread, b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert(all_hit(a, 50));
    ck_assert(all_hit(b, 50));
    free(a);
    free(b);
    ASSERT_OK(tg_set_num_threads(1));
}
END_TEST

/* Each task gets its thread's scratch, aligned and writable; the caller grows
 * all of them first, so a second loop of the same size allocates nothing. */
static void scratch_task(void *ctx, int64_t t, void *ws)
{
    counts *c = ctx;
    bool ok = ws && (uintptr_t)ws % 64 == 0;
    if (ok)
        memset(ws, (int)t, 4096);
    atomic_fetch_add(&c->hits[t], ok ? 1 : 100);
}

START_TEST(test_pool_scratch_per_thread)
{
    ASSERT_OK(tg_set_num_threads(max_threads(3)));
    counts *c = calloc(1, sizeof *c);
    c->n = 300;
    tg__parallel_for(c->n, 4096, scratch_task, c);
    long before = tg__alloc_count();
    for (int rep = 0; rep < 20; rep++)
        tg__parallel_for(c->n, 4096, scratch_task, c);
    ck_assert_int_eq(tg__alloc_count(), before);
    ck_assert(all_hit(c, 21));
    free(c);
    ASSERT_OK(tg_set_num_threads(1));
}
END_TEST

START_TEST(test_workspace_grows_once)
{
    void *p = tg__workspace(1000);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % 64, 0);
    long before = tg__alloc_count();
    ck_assert_ptr_eq(tg__workspace(500), p); // smaller: the same buffer, no allocation
    ck_assert_ptr_eq(tg__workspace(1000), p);
    ck_assert_int_eq(tg__alloc_count(), before);
    // Larger than anything the kernels asked for (also with CK_FORK=no): grows.
    ck_assert_ptr_nonnull(tg__workspace((size_t)8 << 20));
    ck_assert_int_eq(tg__alloc_count(), before + 1);
}
END_TEST

/* The elementwise and pooling kernels split their work too: same bytes. */
START_TEST(test_pointwise_and_pool_same_bytes)
{
    enum { PLANES = 64, H = 26, W = 26, NX = PLANES * H * W, NY = PLANES * 13 * 13 };
    float *x = malloc(sizeof(float) * NX), *y[2], *e[2];
    int64_t *arg[2];
    for (int i = 0; i < NX; i++)
        x[i] = (float)((i * 7919) % 1000) / 250.0f - 2.0f;
    tg__pool_geom g = {.planes = PLANES, .H = H, .W = W, .KH = 2, .KW = 2, .SH = 2, .SW = 2,
                       .OH = 13, .OW = 13};
    tg__pool_geom g3 = g; // overlapping 3x3 windows: the general loop
    g3.KH = g3.KW = 3;
    g3.OH = g3.OW = 12;
    for (int r = 0; r < 2; r++) {
        ASSERT_OK(tg_set_num_threads(r ? max_threads(3) : 1));
        y[r] = calloc(NY * 2, sizeof(float)); // the 3x3 pool fills less than NY
        e[r] = malloc(sizeof(float) * NX);
        arg[r] = calloc(NY * 2, sizeof(int64_t));
        tg__maxpool_f32(x, &g, y[r], arg[r]);
        tg__maxpool_f32(x, &g3, y[r] + NY, arg[r] + NY);
        tg__unary_f32(TG__UN_EXP, x, e[r], NX, 0, 0);
    }
    ck_assert(memcmp(y[0], y[1], sizeof(float) * NY * 2) == 0);
    ck_assert(memcmp(arg[0], arg[1], sizeof(int64_t) * NY * 2) == 0);
    ck_assert(memcmp(e[0], e[1], sizeof(float) * NX) == 0);
    for (int r = 0; r < 2; r++) {
        free(y[r]);
        free(e[r]);
        free(arg[r]);
    }
    free(x);
    ASSERT_OK(tg_set_num_threads(1));
}
END_TEST

/* Reductions, broadcast binary maps, where and the ReLU gradient split their
 * work between threads too (outputs by ranges, rows or chunks of a flat row):
 * the same bytes with 1 and 3 threads. */
START_TEST(test_reduce_and_broadcast_same_bytes)
{
    enum { N = 32, C = 32, HW = 26 * 26, NX = N * C * HW };
    const int64_t shape[3] = {N, C, HW}, bshape[3] = {1, C, 1};
    float *x = malloc(sizeof(float) * NX), *y = malloc(sizeof(float) * NX);
    float *bias = malloc(sizeof(float) * C);
    tg_rng rng = tg_rng_seeded(4);
    for (int i = 0; i < NX; i++) {
        x[i] = (float)tg_rng_uniform(&rng) - 0.5f;
        y[i] = (float)tg_rng_uniform(&rng) - 0.5f;
    }
    for (int i = 0; i < C; i++)
        bias[i] = (float)i;
    // Sums over (0, 2), 0, 2, all; binary maps flat, broadcast per channel
    // (rows) and over the last axis; where; the ReLU gradient.
    static const unsigned axes[4] = {5, 1, 4, 7};
    float *out[2][12];
    tg__bcast flat, chan, chan2, where;
    const int64_t *two[2] = {shape, shape}, *withb[2] = {shape, bshape};
    const int64_t *bfirst[2] = {bshape, shape};
    const int64_t *three[3] = {shape, shape, bshape};
    tg__bcast_plan(&flat, 3, shape, 2, (const int[]){3, 3}, two);
    tg__bcast_plan(&chan, 3, shape, 2, (const int[]){3, 3}, withb);
    tg__bcast_plan(&chan2, 3, shape, 2, (const int[]){3, 3}, bfirst);
    tg__bcast_plan(&where, 3, shape, 3, (const int[]){3, 3, 3}, three);
    for (int r = 0; r < 2; r++) {
        ASSERT_OK(tg_set_num_threads(r ? max_threads(3) : 1));
        for (int k = 0; k < 12; k++)
            out[r][k] = calloc(NX, sizeof(float));
        for (int k = 0; k < 4; k++)
            tg__reduce_sum_f32(x, 3, shape, axes[k], out[r][k]);
        tg__binary_f32(TG__BIN_MUL, &flat, x, y, out[r][4]);
        tg__binary_f32(TG__BIN_ADD, &chan, x, bias, out[r][5]);
        tg__binary_f32(TG__BIN_SUB, &chan2, bias, x, out[r][6]);
        tg__binary_f32(TG__BIN_MAX, &flat, x, y, out[r][7]);
        tg__where_f32(&where, x, y, bias, out[r][8]);
        tg__relu_grad_f32(x, y, out[r][9], NX);
    }
    for (int k = 0; k < 10; k++)
        ck_assert_msg(memcmp(out[0][k], out[1][k], sizeof(float) * NX) == 0, "kernel %d", k);
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 12; k++)
            free(out[r][k]);
    free(x);
    free(y);
    free(bias);
    ASSERT_OK(tg_set_num_threads(1));
}
END_TEST

/* The batched convolution kernels (forward and input gradient one image per
 * thread, the weight gradient one segmented product) against the per-image
 * loop, with 1 and 3 threads and with the workers' scratch unavailable (the
 * batch is then redone in order): the same bytes. */
START_TEST(test_conv_batch_same_bytes)
{
    enum { N = 6, C = 4, H = 15, W = 15, OC = 16, KK = 3, OHW = 13 * 13 };
    tg__conv_geom g = {.C = C, .H = H, .W = W, .KH = KK, .KW = KK, .SH = 1, .SW = 1,
                       .DH = 1, .DW = 1, .OH = 13, .OW = 13};
    int64_t ckk = C * KK * KK;
    float *x = malloc(sizeof(float) * N * C * H * W), *w = malloc(sizeof(float) * OC * ckk);
    // Forward columns in the GEMM's padded rows (tg__conv2d_cols_ld), the
    // larger of the two uses.
    int64_t cols_ld = tg__conv2d_cols_ld(&g);
    ck_assert_int_ge(cols_ld, OHW);
    float bias[OC], *cols = malloc(sizeof(float) * ckk * cols_ld);
    float *ref = malloc(sizeof(float) * N * OC * OHW), *y = malloc(sizeof(float) * N * OC * OHW);
    float *dref = calloc(N * C * H * W, sizeof(float)), *dx = malloc(sizeof(float) * N * C * H * W);
    float *wref = calloc(OC * ckk, sizeof(float)), *dw = malloc(sizeof(float) * OC * ckk);
    float *dw_scratch = malloc(sizeof(float) * (size_t)tg__conv2d_dw_scratch(N, OC, &g));
    tg_rng rng = tg_rng_seeded(5);
    for (int i = 0; i < N * C * H * W; i++)
        x[i] = (float)tg_rng_uniform(&rng) - 0.5f;
    for (int i = 0; i < OC * ckk; i++)
        w[i] = (float)tg_rng_uniform(&rng) - 0.5f;
    for (int i = 0; i < OC; i++)
        bias[i] = (float)i * 0.125f;
    ASSERT_OK(tg_set_num_threads(1));
    for (int n = 0; n < N; n++) { // what lib/ops did per image
        float *yn = ref + n * OC * OHW;
        tg__im2col_f32(x + n * C * H * W, &g, cols);
        tg__gemm_f32(false, false, OC, OHW, ckk, 1.0f, w, ckk, cols, OHW, 0.0f, yn, OHW);
        for (int o = 0; o < OC; o++)
            for (int k = 0; k < OHW; k++)
                yn[o * OHW + k] += bias[o];
        tg__gemm_f32(true, false, ckk, OHW, OC, 1.0f, w, ckk, yn, OHW, 0.0f, cols, OHW);
        tg__col2im_f32(cols, &g, dref + n * C * H * W);
        // The weight gradient, per image, accumulated in order (what
        // lib/ops did before the batched product), with y as the gradient.
        tg__im2col_f32(x + n * C * H * W, &g, cols);
        tg__gemm_f32(false, true, OC, ckk, OHW, 1.0f, yn, OHW, cols, OHW, 1.0f, wref, ckk);
    }
    for (int run = 0; run < 3; run++) {
        ASSERT_OK(tg_set_num_threads(run == 0 ? 1 : max_threads(3)));
        if (run == 2)
            tg__alloc_fail_after(0, 1); // fresh workers' scratch cannot grow
        tg__conv2d_forward_f32(x, N, w, bias, false, OC, &g, cols, y);
        tg__conv2d_input_grad_f32(ref, N, w, OC, &g, cols, dx);
        tg__conv2d_weight_grad_f32(x, ref, N, OC, &g, dw_scratch, dw);
        tg__alloc_fail_after(-1, 0);
        ck_assert_msg(memcmp(dw, wref, sizeof(float) * OC * ckk) == 0, "dw, run %d", run);
        ck_assert_msg(memcmp(y, ref, sizeof(float) * N * OC * OHW) == 0, "forward, run %d", run);
        ck_assert_msg(memcmp(dx, dref, sizeof(float) * N * C * H * W) == 0, "dx, run %d", run);
        ASSERT_OK(tg_set_num_threads(1)); // joins the workers: run 2 starts fresh ones
    }
    free(x);
    free(w);
    free(cols);
    free(ref);
    free(y);
    free(dref);
    free(dx);
    free(wref);
    free(dw);
    free(dw_scratch);
}
END_TEST

/* The weight gradient over several groups of images (each image's im2col is
 * large, so a group holds two): per-image bytes with every kernel and 1 or 3
 * threads. */
START_TEST(test_conv_dw_groups_same_bytes)
{
    static const char *const names[] = {"generic", "avx2", "avx512"};
    enum { N = 5, C = 16, H = 40, W = 40, OC = 16, OH = 38, OHW = OH * OH };
    tg__conv_geom g = {.C = C, .H = H, .W = W, .KH = 3, .KW = 3, .SH = 1, .SW = 1,
                       .DH = 1, .DW = 1, .OH = OH, .OW = OH};
    int64_t ckk = C * 9;
    ck_assert_int_gt(N / tg__conv2d_dw_group(N, &g), 1); // more than one group
    float *x = malloc(sizeof(float) * N * C * H * W), *gy = malloc(sizeof(float) * N * OC * OHW);
    float *cols = malloc(sizeof(float) * ckk * OHW), *ref = calloc(OC * ckk, sizeof(float));
    float *dw = malloc(sizeof(float) * OC * ckk);
    float *scratch = malloc(sizeof(float) * (size_t)tg__conv2d_dw_scratch(N, OC, &g));
    tg_rng rng = tg_rng_seeded(9);
    for (int i = 0; i < N * C * H * W; i++)
        x[i] = (float)tg_rng_uniform(&rng) - 0.5f;
    for (int i = 0; i < N * OC * OHW; i++)
        gy[i] = (float)tg_rng_uniform(&rng) - 0.5f;
    ASSERT_OK(tg_set_num_threads(1));
    for (int n = 0; n < N; n++) {
        tg__im2col_f32(x + n * C * H * W, &g, cols);
        tg__gemm_f32(false, true, OC, ckk, OHW, 1.0f, gy + n * OC * OHW, OHW, cols, OHW, 1.0f,
                     ref, ckk);
    }
    for (int k = 0; k < 3; k++) {
        if (tg_set_kernel(names[k]) != TG_OK)
            continue;
        for (int t = 1; t <= max_threads(3); t += 2) {
            ASSERT_OK(tg_set_num_threads(t));
            tg__conv2d_weight_grad_f32(x, gy, N, OC, &g, scratch, dw);
            ck_assert_msg(memcmp(dw, ref, sizeof(float) * OC * ckk) == 0, "%s, %d threads",
                          names[k], t);
        }
    }
    ASSERT_OK(tg_set_num_threads(1));
    ASSERT_OK(tg_set_kernel("auto"));
    free(x);
    free(gy);
    free(cols);
    free(ref);
    free(dw);
    free(scratch);
}
END_TEST

/* ---- the public calls' errors ---- */

START_TEST(test_runtime_errors)
{
    ASSERT_FRESH_FAIL(tg_set_num_threads(0), TG_EINVAL, "tg_set_num_threads: 0 threads");
    ASSERT_FRESH_FAIL(tg_set_num_threads(-3), TG_EINVAL, "1 to 256");
    ASSERT_FRESH_FAIL(tg_set_num_threads(257), TG_EINVAL, "257");
    if (max_threads(2) == 1)
        ASSERT_FRESH_FAIL(tg_set_num_threads(2), TG_EINVAL, "has no threads");
    ck_assert_int_ge(tg_num_threads(), 1);
    const char *before = tg_kernel_name();
    ASSERT_FRESH_FAIL(tg_set_kernel("sse9"), TG_EINVAL, "unknown kernel \"sse9\"");
    ASSERT_FRESH_FAIL(tg_set_kernel(NULL), TG_EINVAL, "tg_set_kernel: name is NULL");
    ck_assert_str_eq(tg_kernel_name(), before); // unchanged by a failure
    ASSERT_OK(tg_set_kernel("generic"));        // runs everywhere
    ck_assert_str_eq(tg_kernel_name(), "generic");
    ASSERT_OK(tg_set_kernel("auto"));
    ck_assert(strcmp(tg_kernel_name(), "generic") == 0 || strcmp(tg_kernel_name(), "avx2") == 0 ||
              strcmp(tg_kernel_name(), "avx512") == 0);
#if defined(__x86_64__)
    if (!__builtin_cpu_supports("avx512f"))
        ASSERT_FRESH_FAIL(tg_set_kernel("avx512"), TG_EINVAL, "cannot run the avx512 kernel");
#else
    ASSERT_FRESH_FAIL(tg_set_kernel("avx2"), TG_EINVAL, "cannot run the avx2 kernel");
#endif
}
END_TEST

static Suite *threads_suite(void)
{
    Suite *s = suite_create("threads");
    TCase *same = tcase_create("same_bytes");
    tcase_set_timeout(same, 300);
    tcase_add_test(same, test_cnn_same_bytes_every_kernel);
    tcase_add_loop_test(same, test_cnn_same_bytes_any_thread_count, 0, 3);
    tcase_add_test(same, test_cnn_steps_allocate_nothing_in_kernels);
    tcase_add_test(same, test_pointwise_and_pool_same_bytes);
    tcase_add_test(same, test_reduce_and_broadcast_same_bytes);
    tcase_add_test(same, test_conv_batch_same_bytes);
    tcase_add_test(same, test_conv_dw_groups_same_bytes);
    suite_add_tcase(s, same);
    TCase *pool = tcase_create("pool");
    tcase_add_loop_test(pool, test_pool_runs_every_task_once, 0, 2);
    tcase_add_test(pool, test_pool_two_callers);
    tcase_add_test(pool, test_pool_join_workers);
    tcase_add_test(pool, test_pool_scratch_per_thread);
    tcase_add_test(pool, test_workspace_grows_once);
    suite_add_tcase(s, pool);
    TCase *api = tcase_create("api");
    tcase_add_test(api, test_runtime_errors);
    suite_add_tcase(s, api);
    return s;
}

TG_CHECK_MAIN(threads_suite)
