/* gemm_transpose.h - packing eight columns x eight depths of a transposed B
 * into a strip (dst[k * dst_stride + c] = src[c * ldb + k]) with three rounds
 * of shuffles (pairs, quads, 128-bit halves) instead of 64 scalar loads and
 * stores. Plain vector extensions, no ISA of its own: inlined into each
 * kernel it becomes that kernel's shuffles. Without __builtin_shufflevector
 * (GCC < 12) TG__TRANSPOSE8X8 stays undefined and the scalar loop packs. */
#ifndef TG_KERNELS_GEMM_TRANSPOSE_H
#define TG_KERNELS_GEMM_TRANSPOSE_H

#include <stdint.h>
#include <string.h>

#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define TG__TRANSPOSE8X8 1
typedef float tg__v8f __attribute__((vector_size(32), aligned(4)));
#define TG__SHUF __builtin_shufflevector
static inline __attribute__((always_inline)) void
tg__transpose8x8_f32(const float *src, int64_t ldb, float *dst, int64_t dst_stride)
{
    tg__v8f r[8], t[8], u[8];
    for (int i = 0; i < 8; i++)
        memcpy(&r[i], src + i * ldb, sizeof r[i]);
    for (int i = 0; i < 8; i += 2) {
        t[i] = TG__SHUF(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[i + 1] = TG__SHUF(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = TG__SHUF(t[i], t[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 1] = TG__SHUF(t[i], t[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[i + 2] = TG__SHUF(t[i + 1], t[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 3] = TG__SHUF(t[i + 1], t[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int i = 0; i < 4; i++) {
        tg__v8f lo = TG__SHUF(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        tg__v8f hi = TG__SHUF(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
        memcpy(dst + i * dst_stride, &lo, sizeof lo);
        memcpy(dst + (i + 4) * dst_stride, &hi, sizeof hi);
    }
}
#endif

#endif
