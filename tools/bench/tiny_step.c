/* tiny_step - nanoseconds per training step of a tiny network (2-8-1, tanh,
 * MSE, plain SGD on 4 samples: XOR), the cost of the tape itself. Prints the
 * median over repeats of steps_per_repeat steps. Compare with tiny_torch.py. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <tapegrad/tapegrad.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* usage: tiny_step [steps per repeat] [repeats]: fewer for valgrind, whose
 * instruction counts do not depend on the machine's load. */
int main(int argc, char **argv)
{
    int STEPS = argc > 1 ? atoi(argv[1]) : 20000, REPEATS = argc > 2 ? atoi(argv[2]) : 15;
    if (STEPS < 1 || REPEATS < 1 || REPEATS > 1000) {
        fprintf(stderr, "usage: %s [steps >= 1] [repeats 1..1000]\n", argv[0]);
        return 2;
    }
    tg_rng rng = tg_rng_seeded(1);
    tg_tensor *x = tg_tensor_from_doubles(TG_F32, TG_SHAPE(4, 2), (double[]){0, 0, 0, 1, 1, 0, 1, 1});
    tg_tensor *y = tg_tensor_from_doubles(TG_F32, TG_SHAPE(4, 1), (double[]){0, 1, 1, 0});
    tg_tensor *p[4] = {tg_tensor_uniform(TG_F32, TG_SHAPE(2, 8), -1, 1, &rng),
                       tg_tensor_zeros(TG_F32, TG_SHAPE(8)),
                       tg_tensor_uniform(TG_F32, TG_SHAPE(8, 1), -1, 1, &rng),
                       tg_tensor_zeros(TG_F32, TG_SHAPE(1))};
    int64_t numel[4]; // asked once: the loop below measures the step, not a getter per element
    for (int i = 0; i < 4; i++) {
        tg_tensor_set_requires_grad(p[i], true);
        numel[i] = tg_tensor_numel(p[i]);
    }
    tg_tape *tape = tg_tape_new();
    double times[1000], loss = 0;
    for (int r = 0; r < REPEATS; r++) {
        double t0 = now();
        for (int s = 0; s < STEPS; s++) {
            tg_tensor *h = tg_tanh(tg_add(tg_matmul(x, p[0]), p[1]));
            tg_tensor *out = tg_add(tg_matmul(h, p[2]), p[3]);
            tg_tensor *l = tg_mean(tg_pow_scalar(tg_sub(out, y), 2), NULL, 0, false);
            if (!l || tg_backward(l) != TG_OK) {
                fprintf(stderr, "error: %s\n", tg_last_error());
                return 1;
            }
            loss = tg_tensor_item(l);
            for (int i = 0; i < 4; i++) {
                float *w = tg_tensor_data(p[i]), *g = tg_tensor_data(tg_tensor_grad(p[i]));
                for (int64_t k = 0; k < numel[i]; k++) {
                    w[k] -= 0.1f * g[k];
                    g[k] = 0;
                }
            }
            tg_tape_reset(tape);
        }
        times[r] = (now() - t0) / STEPS;
    }
    qsort(times, (size_t)REPEATS, sizeof times[0], cmp);
    printf("tiny_step_ns %.0f (median of %d x %d steps; final loss %.4f)\n",
           1e9 * times[REPEATS / 2], REPEATS, STEPS, loss);
    for (int i = 0; i < 4; i++)
        tg_tensor_free(p[i]);
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_tape_free(tape);
    return 0;
}
