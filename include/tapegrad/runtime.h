/* runtime.h - how the library computes: which CPU kernel runs the matrix
 * products, and how many threads the kernels use.
 *
 * Neither choice changes a result: every kernel accumulates each output
 * element in the same order with the same fused multiply-adds, and work is
 * split between threads by output element, never within one. So the same
 * program gives the same bytes with any kernel and any thread count on any
 * x86-64 CPU (the test suite checks a CNN training run both ways).
 */
#ifndef TAPEGRAD_RUNTIME_H
#define TAPEGRAD_RUNTIME_H

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Chooses the kernel for float32 matrix products (GEMM, and so convolutions
 * and dense layers): "generic" (portable C, runs anywhere), "avx2" (AVX2 and
 * FMA), "avx512" (AVX-512F), or "auto" (the fastest this CPU supports, by
 * cpuid and a short timing of each candidate, as at start-up).
 *
 * Without a call, the first product picks: the environment variable
 * TAPEGRAD_KERNEL (same names) if set and usable, else "auto".
 * Returns TG_OK, or TG_EINVAL for an unknown name, NULL, or a kernel this CPU
 * (or this build) cannot run; the kernel in use is then unchanged. Safe to
 * call from any thread; a product already running finishes with its kernel. */
TG_API tg_status tg_set_kernel(const char *name);

/* The name of the kernel in use ("generic", "avx2" or "avx512"), choosing it
 * first if no product has run yet. A static string; never NULL. */
TG_API const char *tg_kernel_name(void);

/* Sets the number of threads the kernels use (the caller's included): 1
 * makes every kernel run on the calling thread. Workers start when a large
 * enough product first wants them; lowering the count stops the extra ones.
 * Returns TG_OK, or TG_EINVAL for n < 1 or above 256, or for n > 1 in a
 * build without threads (-Dthreads=disabled); TG_ESTATE when called from
 * inside a kernel's parallel region.
 *
 * Without a call, the count is TAPEGRAD_NUM_THREADS if it is a positive
 * integer, else the number of online CPUs. The pool is shared by the whole
 * process: while one thread's kernel uses it, kernels called from other
 * threads run on their own thread (with the same results). */
TG_API tg_status tg_set_num_threads(int n);

/* The number of threads the kernels may use (1 in a serial build). */
TG_API int tg_num_threads(void);

#ifdef __cplusplus
}
#endif

#endif
