/* pointwise.h - elementwise kernels on raw arrays: unary maps, and binary or
 * ternary maps over numpy-broadcast operands. No tape or tensor types. */
#ifndef TG_KERNELS_POINTWISE_H
#define TG_KERNELS_POINTWISE_H

#include <stdbool.h>
#include <stdint.h>

#define TG__KMAX_DIMS 8

/* The maps with parameters (or no gradient); the plain one-input ops are
 * generated with their own loops from include/tapegrad/unary.h. */
typedef enum tg__unop {
    TG__UN_EXP, TG__UN_SIGN, TG__UN_LEAKY_RELU, TG__UN_CLAMP, TG__UN_ADD_SCALAR,
    TG__UN_MUL_SCALAR, TG__UN_POW_SCALAR, TG__UN_GT_SCALAR,
} tg__unop;

typedef enum tg__binop {
    TG__BIN_ADD, TG__BIN_SUB, TG__BIN_MUL, TG__BIN_DIV, TG__BIN_POW, TG__BIN_MAX,
    TG__BIN_MIN, TG__BIN_GT, TG__BIN_GE, TG__BIN_LT, TG__BIN_LE, TG__BIN_EQ,
} tg__binop;

/* How to walk up to three broadcast operands against a contiguous output:
 * dims of size 1 dropped and neighbouring dims merged where every operand
 * allows, so equal shapes become one flat loop. strides[k] are operand k's
 * element strides per output dim (0 where it is broadcast). */
typedef struct tg__bcast {
    int ndim;
    int n_ops;
    int64_t shape[TG__KMAX_DIMS];
    int64_t strides[3][TG__KMAX_DIMS];
} tg__bcast;

/* out (ndim, out_shape); operand k has (op_ndim[k], op_shape[k]) aligned at
 * the right and broadcastable to out. */
void tg__bcast_plan(tg__bcast *plan, int ndim, const int64_t *out_shape, int n_ops,
                    const int *op_ndim, const int64_t *const *op_shape);

/* y[i] = f(x[i]) with parameters a, b (scalar, slope, clamp bounds). */
void tg__unary_f32(tg__unop op, const float *x, float *y, int64_t n, double a, double b);
void tg__unary_f64(tg__unop op, const double *x, double *y, int64_t n, double a, double b);

/* out = g (p x^(p-1)), the gradient of x^p for p other than 0 and 1, rounded
 * as the composed ops round it. */
void tg__pow_scalar_grad_f32(const float *g, const float *x, float *out, int64_t n, double p);
void tg__pow_scalar_grad_f64(const double *g, const double *x, double *out, int64_t n,
                             double p);

/* float32 tanh within 0.5 ulp, the same bits on every CPU (tanh.c); for one
 * value and for an array. */
float tg__tanhf(float x);
void tg__tanh_f32(const float *x, float *y, int64_t n);
/* The ways tg__tanh_f32 may run, for the test that they agree: variant 0 is
 * one value at a time, then four lanes of the same double arithmetic (AVX2)
 * and eight (AVX-512), as far as this CPU has them (cpuid);
 * tg__tanh_f32_variants says how many it has, and tg__tanh_f32 runs the
 * widest. */
void tg__tanh_f32_scalar(const float *x, float *y, int64_t n);
int tg__tanh_f32_variants(void);
void tg__tanh_f32_variant(int variant, const float *x, float *y, int64_t n);

/* out[i] = g[i] * [y[i] > 0]: the gradient of a ReLU from its output y
 * (the bytes of tg_relu's own backward). */
void tg__relu_grad_f32(const float *g, const float *y, float *out, int64_t n);
void tg__relu_grad_f64(const double *g, const double *y, double *out, int64_t n);
/* The ways they may run, for the test that they agree: variant 0 is one
 * element at a time, then 16-, 32- (AVX2) and 64-byte (AVX-512) vectors as
 * far as this compiler and CPU (cpuid) have them; tg__relu_grad_variants
 * says how many, and the functions above run the widest. */
int tg__relu_grad_variants(void);
void tg__relu_grad_f32_variant(int variant, const float *g, const float *y, float *out,
                               int64_t n);
void tg__relu_grad_f64_variant(int variant, const double *g, const double *y, double *out,
                               int64_t n);

/* out = a (op) b over the plan (2 operands; large maps use the threads). */
void tg__binary_f32(tg__binop op, const tg__bcast *plan, const float *a, const float *b,
                    float *out);
void tg__binary_f64(tg__binop op, const tg__bcast *plan, const double *a, const double *b,
                    double *out);

/* out = cond != 0 ? a : b over the plan (3 operands: cond, a, b). */
void tg__where_f32(const tg__bcast *plan, const float *cond, const float *a, const float *b,
                   float *out);
void tg__where_f64(const tg__bcast *plan, const double *cond, const double *a, const double *b,
                   double *out);

#endif
