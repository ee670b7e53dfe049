/* gemm_generic.c - the portable GEMM kernel: plain C that runs on any CPU.
 *
 * Bitwise equal to the AVX2 and AVX-512 kernels, so every multiply-add is a
 * C99 fmaf/fma (gemm_kernel.h). Where the target has FMA instructions
 * (aarch64, or x86-64 built with -march=native) the compiler inlines and
 * vectorises them; on baseline x86-64 each is a call into libm (glibc's
 * picks the FMA instruction when the CPU has one), slow but exact. This
 * kernel is chosen automatically only on an x86-64 CPU without AVX2+FMA, or
 * on another architecture. */
#include <math.h>
#include <stdbool.h>

#include "kernels/gemm_kernel.h"
#include "kernels/gemm_transpose.h"

static bool always(void) { return true; }

#define TARGET
#define LANE_MICRO
#define MR 6
#define NR 16
#define T float
#define IS_F32
#define FMA fmaf
#define FN(x) x##_generic_f32
#include "kernels/gemm_template.h"
#undef T
#undef IS_F32
#undef FMA
#undef FN
#undef NR

#define NR 8
#define T double
#define FMA fma
#define FN(x) x##_generic_f64
#include "kernels/gemm_template.h"

const tg__gemm_kernel tg__gemm_generic = {
    .name = "generic",
    .supported = always,
    .mr = 6,
    .nr = 16,
    .mr_f64 = 6,
    .nr_f64 = 8,
    .packed_f32 = packed_generic_f32,
    .direct_f32 = direct_generic_f32,
    .packed_f64 = packed_generic_f64,
    .direct_f64 = direct_generic_f64,
};
