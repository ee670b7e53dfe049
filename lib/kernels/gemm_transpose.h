/* gemm_transpose.h - packing eight columns x eight depths of a transposed B
 * into a strip (dst[k * dst_stride + c] = src[c * ldb + k]) with shuffles
 * instead of 64 scalar loads and stores. Plain vector extensions, no ISA of its own: inlined into each
 * kernel it becomes that kernel's shuffles. Without __builtin_shufflevector
 * (GCC < 12) TG__TRANSPOSE8X8 stays undefined and the scalar loop packs. */
#ifndef TG_KERNELS_GEMM_TRANSPOSE_H
#define TG_KERNELS_GEMM_TRANSPOSE_H

#include <stdint.h>
#include <string.h>

#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define TG__TRANSPOSE8X8 1
typedef float tg__v4f __attribute__((vector_size(16), aligned(4)));
typedef float tg__v8f __attribute__((vector_size(32), aligned(4)));
#define TG__SHUF __builtin_shufflevector
/* Two rounds of in-lane shuffles (unpack pairs, then select pairs), the
 * 128-bit halves put in place by the loads themselves: row c's half h and row
 * c+4's half h make one vector (a load and an insert from memory, which use
 * the load ports), so 16 shuffles instead of 24, and no lane-crossing one.
 * On Intel every shuffle issues on one port, which bounded the old three
 * rounds (AVX-512, CPU time alternating: conv1.dw 1.06x, conv2.dw 1.02x,
 * dense1.dx 1.01-1.08x). */
static inline __attribute__((always_inline)) void
tg__transpose8x8_f32(const float *src, int64_t ldb, float *dst, int64_t dst_stride)
{
    for (int h = 0; h < 2; h++) { // depths 4h .. 4h+3
        tg__v8f r[4];
        for (int c = 0; c < 4; c++) {
            tg__v4f lo, hi;
            memcpy(&lo, src + c * ldb + 4 * h, sizeof lo);
            memcpy(&hi, src + (c + 4) * ldb + 4 * h, sizeof hi);
            r[c] = TG__SHUF(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7);
        }
        // t0 = c0k0 c1k0 c0k1 c1k1 | c4k0 c5k0 c4k1 c5k1, t1 the same for k2, k3;
        // t2, t3 for rows 2, 3 | 6, 7.
        tg__v8f t0 = TG__SHUF(r[0], r[1], 0, 8, 1, 9, 4, 12, 5, 13);
        tg__v8f t1 = TG__SHUF(r[0], r[1], 2, 10, 3, 11, 6, 14, 7, 15);
        tg__v8f t2 = TG__SHUF(r[2], r[3], 0, 8, 1, 9, 4, 12, 5, 13);
        tg__v8f t3 = TG__SHUF(r[2], r[3], 2, 10, 3, 11, 6, 14, 7, 15);
        tg__v8f o[4] = {TG__SHUF(t0, t2, 0, 1, 8, 9, 4, 5, 12, 13),
                        TG__SHUF(t0, t2, 2, 3, 10, 11, 6, 7, 14, 15),
                        TG__SHUF(t1, t3, 0, 1, 8, 9, 4, 5, 12, 13),
                        TG__SHUF(t1, t3, 2, 3, 10, 11, 6, 7, 14, 15)};
        for (int k = 0; k < 4; k++)
            memcpy(dst + (4 * h + k) * dst_stride, &o[k], sizeof o[k]);
    }
}
#endif

#endif
