/* gemm_dispatch.c - which GEMM kernel runs: tg_set_kernel, tg_kernel_name
 * (runtime.h) and the choice made on first use.
 *
 * A function-pointer table read through an atomic pointer, set on first use,
 * rather than target_clones or an ifunc: an ifunc resolver runs during
 * relocation, before the sanitizer runtimes are ready, and crashed every
 * ThreadSanitizer build before main (issue 11). Here the choice is ordinary
 * code that runs inside the first product.
 *
 * The choice: TAPEGRAD_KERNEL when it names a kernel this CPU runs; else,
 * among the kernels cpuid allows, the fastest on a short timing of the CNN's
 * two convolution products (under a millisecond, once per process). Timing rather
 * than a fixed preference because AVX-512 doubles the peak on CPUs with two
 * 512-bit FMA units (Intel Xeon) and gains nothing on those that split 512-bit
 * operations (Zen 4), and cpuid does not say which. The kernels give
 * identical bytes, so the choice changes only the speed. */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/gemm_kernel.h"
#include "tg_internal.h"

/* Fastest first: on a tie in calibration the earlier one wins. */
static const tg__gemm_kernel *const kernels[] = {&tg__gemm_avx512, &tg__gemm_avx2,
                                                 &tg__gemm_generic};
enum { N_KERNELS = sizeof kernels / sizeof kernels[0] };

static _Atomic(const tg__gemm_kernel *) current;
static _Atomic(const tg__gemm_kernel *) calibrated; /* the "auto" choice, once made */

static const tg__gemm_kernel *by_name(const char *name)
{
    for (int i = 0; i < N_KERNELS; i++)
        if (strcmp(kernels[i]->name, name) == 0)
            return kernels[i];
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best of a few timings of one kernel on the CNN's two convolutions: the
 * second (64 x 128 x 288, deep) and the first (32 x 676 x 9, so shallow
 * that the tile's stores and the packing weigh as much as the multiply-adds;
 * on Zen 4 the AVX-512 tiles lose there what they win on the deep one).
 * About 0.2 ms per kernel at AVX2 speed. buf holds operands and scratch. */
static double time_kernel(const tg__gemm_kernel *k, float *buf)
{
    static const int64_t shapes[2][3] = {{64, 128, 288}, {32, 676, 9}};
    double total = 0;
    for (int s = 0; s < 2; s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = buf, *B = A + M * K, *C = B + K * N;
        float *scratch = C + M * N;
        scratch += (64 - (uintptr_t)scratch % 64) % 64 / sizeof(float);
        tg__gemm_job job = {.M = M, .N = N, .K = K, .alpha = 1, .beta = 0, .A = A, .lda = K,
                            .B = B, .ldb = N, .C = C, .ldc = N, .kcb = K};
        double best = 1e30;
        for (int rep = 0; rep < 4; rep++) { // the first warms caches and clocks
            double t0 = now();
            k->packed_f32(&job, scratch);
            double t = now() - t0;
            if (rep > 0 && t < best)
                best = t;
        }
        total += best;
    }
    return total;
}

static const tg__gemm_kernel *calibrate(void)
{
    const tg__gemm_kernel *cand[N_KERNELS];
    int n = 0;
    for (int i = 0; i < N_KERNELS; i++)
        if (kernels[i] != &tg__gemm_generic && kernels[i]->supported())
            cand[n++] = kernels[i];
    if (n == 0)
        return &tg__gemm_generic;
    if (n == 1)
        return cand[0];
    // Operands, product and the widest kernel's scratch in one block, for
    // the larger of the two products (the second needs 7,200 + 6,336).
    size_t floats = 64 * 288 + 288 * 128 + 64 * 128 + 288 * 160 + 16;
    float *buf = tg__malloc(floats * sizeof(float));
    if (!buf)
        return cand[0]; // no memory to measure: the widest
    for (size_t i = 0; i < floats; i++)
        buf[i] = (float)(i % 17) * 0.0625f - 0.5f;
    float *aligned = (float *)((char *)buf + (64 - (uintptr_t)buf % 64) % 64);
    const tg__gemm_kernel *best = cand[0];
    double best_t = time_kernel(cand[0], aligned);
    for (int i = 1; i < n; i++) {
        double t = time_kernel(cand[i], aligned);
        // A wider kernel must win clearly: within 3% it is noise, and the
        // narrower one leaves the CPU's clocks alone.
        if (t < best_t * 0.97 || (best == &tg__gemm_avx512 && t < best_t * 1.03)) {
            best = cand[i];
            best_t = t;
        }
    }
    tg__free(buf);
    return best;
}

static const tg__gemm_kernel *auto_choice(void)
{
    const tg__gemm_kernel *k = atomic_load(&calibrated);
    if (!k) {
        // Racing first callers may both measure; either answer is right.
        k = calibrate();
        atomic_store(&calibrated, k);
    }
    return k;
}

const tg__gemm_kernel *tg__gemm_current(void)
{
    const tg__gemm_kernel *k = atomic_load_explicit(&current, memory_order_acquire);
    if (k)
        return k;
    const char *env = getenv("TAPEGRAD_KERNEL");
    k = env ? by_name(env) : NULL;
    if (!k || !k->supported())
        k = auto_choice();
    const tg__gemm_kernel *expected = NULL;
    // Keep a choice tg_set_kernel made meanwhile.
    if (!atomic_compare_exchange_strong(&current, &expected, k))
        k = expected;
    return k;
}

tg_status tg_set_kernel(const char *name)
{
    if (!name)
        return tg__fail(TG_EINVAL, "tg_set_kernel: name is NULL");
    const tg__gemm_kernel *k = strcmp(name, "auto") == 0 ? auto_choice() : by_name(name);
    if (!k)
        return tg__fail(TG_EINVAL, "tg_set_kernel: unknown kernel \"%.40s\" (generic, avx2, "
                                   "avx512 or auto)", name);
    if (!k->supported())
        return tg__fail(TG_EINVAL, "tg_set_kernel: this CPU cannot run the %s kernel",
                        k->name);
    atomic_store_explicit(&current, k, memory_order_release);
    return TG_OK;
}

const char *tg_kernel_name(void) { return tg__gemm_current()->name; }
