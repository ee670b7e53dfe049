/* first_gradient - the README's program: build an expression, call backward,
 * print the gradients. */
#include <stdio.h>

#include <tapegrad/tapegrad.h>

int main(void)
{
    tg_tape *tape = tg_tape_new(); // op results live here until reset/free
    tg_tensor *x = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 2), (double[]){1, 2, 3, 4});
    tg_tensor *w = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2), (double[]){0.5, -1});
    tg_tensor_set_requires_grad(x, true);
    tg_tensor_set_requires_grad(w, true);

    // loss = sum(tanh(x * w)) + mean(x^2): w broadcasts across the rows of x
    tg_tensor *loss = tg_add(tg_sum(tg_tanh(tg_mul(x, w)), NULL, 0, false),
                             tg_mean(tg_pow_scalar(x, 2), NULL, 0, false));
    if (!loss || tg_backward(loss) != TG_OK) {
        fprintf(stderr, "error: %s\n", tg_last_error());
        return 1;
    }
    printf("loss = %.6f\n", tg_tensor_item(loss));
    printf("dloss/dx = ");
    tg_tensor_print(tg_tensor_grad(x), stdout);
    printf("dloss/dw = ");
    tg_tensor_print(tg_tensor_grad(w), stdout);

    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tape_free(tape);
    return 0;
}
