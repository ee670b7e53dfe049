/* adam_internal.h - Adam's float32 update kernel and its per-CPU variants,
 * shared with the tests (check_optim compares the variants byte for byte).
 * Private to lib/optim. */
#ifndef TG_OPTIM_ADAM_INTERNAL_H
#define TG_OPTIM_ADAM_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

/* Loop-invariant coefficients of one parameter's step. */
typedef struct tg__adam_coef {
    double beta1, beta2, eps;
    double l2;       /* Adam's weight decay, added to the gradient (0: none) */
    double shrink;   /* AdamW's decoupled decay factor 1 - lr*wd (1: none) */
    double step_size, bc2_sqrt; /* PyTorch form: lr / (1 - beta1^t), sqrt(1 - beta2^t) */
    double alpha;    /* Keras form: lr * sqrt(1 - beta2^t) / (1 - beta1^t) */
    bool keras;
} tg__adam_coef;

/* One step of n parameters p with gradients g and moments m, v, in place.
 * Variant 0 is the portable loop, 1 AVX-512 where the CPU has it, -1 the
 * widest; all give the same bytes. tg__adam_f32_variants() counts them. */
int tg__adam_f32_variants(void);
void tg__adam_f32_variant(int variant, float *p, const float *g, float *m, float *v, int64_t n,
                          const tg__adam_coef *c);

#endif
