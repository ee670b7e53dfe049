/* forward_mode - docs/forward-mode.md's program: a Jacobian-vector product
 * by forward mode (tg_jvp) checked against central differences, and a
 * Hessian-vector product by forward-over-reverse (tg_hvp) next to
 * reverse-over-reverse (tg_grad twice). */
#include <math.h>
#include <stdio.h>

#include <tapegrad/tapegrad.h>

/* f(w) = tanh(x w), x a fixed 2x3 batch passed through ctx, w 3x2. */
static tg_tensor *layer(tg_tensor *const *in, int n, void *ctx)
{
    return tg_tanh(tg_matmul(ctx, in[0]));
}

/* loss(w) = mean((tanh(x w) - 0.5)^2): one element, for the HVP. */
static tg_tensor *loss(tg_tensor *const *in, int n, void *ctx)
{
    tg_tensor *y = tg_add_scalar(layer(in, n, ctx), -0.5);
    return tg_mean(tg_square(y), NULL, 0, false);
}

static double get(const tg_tensor *t, int64_t i)
{
    double v = 0;
    tg_tensor_get_flat(t, i, &v);
    return v;
}

int main(void)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 3), (double[]){1, 2, -1, 0.5, -2, 3});
    tg_tensor *w = tg_tensor_from_doubles(TG_F64, TG_SHAPE(3, 2),
                                          (double[]){0.1, -0.2, 0.3, 0.05, -0.1, 0.2});
    tg_tensor *v = tg_tensor_from_doubles(TG_F64, TG_SHAPE(3, 2), (double[]){1, 0.5, 0, 1, -1, 2});

    // J v in one forward pass: f's value and its directional derivative along v.
    tg_tensor *y, *jv;
    if (tg_jvp(layer, x, 1, &w, &v, &y, &jv, 0) != TG_OK) {
        fprintf(stderr, "error: %s\n", tg_last_error());
        return 1;
    }
    printf("f(w)           = ");
    tg_tensor_print(y, stdout);
    printf("J v (tg_jvp)   = ");
    tg_tensor_print(jv, stdout);

    // The same by central differences: (f(w + h v) - f(w - h v)) / 2h.
    const double h = 1e-6;
    double worst = 0;
    for (int64_t i = 0; i < 4; i++) {
        double f[2];
        for (int s = 0; s < 2; s++) {
            tg_tensor *ws = tg_add(w, tg_mul_scalar(v, s ? -h : h));
            f[s] = get(layer(&ws, 1, x), i);
        }
        double diff = fabs((f[0] - f[1]) / (2 * h) - get(jv, i));
        worst = diff > worst ? diff : worst;
    }
    printf("largest difference from central differences: %.1e\n", worst);
    int failed = !(worst < 1e-8); // the test running this program checks both

    // H v by forward-over-reverse, and by reverse-over-reverse.
    tg_tensor *l, *hv, *g, *rr;
    if (tg_hvp(loss, x, 1, &w, &v, &l, &hv, 0) != TG_OK) {
        fprintf(stderr, "error: %s\n", tg_last_error());
        return 1;
    }
    printf("loss           = %.6f\n", tg_tensor_item(l));
    printf("H v (tg_hvp)   = ");
    tg_tensor_print(hv, stdout);
    tg_tensor_set_requires_grad(w, true);
    tg_tensor *lw = loss(&w, 1, x);
    if (tg_grad(1, &lw, NULL, 1, &w, &g, TG_CREATE_GRAPH) != TG_OK) {
        fprintf(stderr, "error: %s\n", tg_last_error());
        return 1;
    }
    tg_tensor *gv = tg_sum(tg_mul(g, v), NULL, 0, false);
    if (tg_grad(1, &gv, NULL, 1, &w, &rr, 0) != TG_OK) {
        fprintf(stderr, "error: %s\n", tg_last_error());
        return 1;
    }
    printf("H v (rev-rev)  = ");
    tg_tensor_print(rr, stdout);
    worst = 0;
    for (int64_t i = 0; i < 6; i++) {
        double diff = fabs(get(hv, i) - get(rr, i));
        worst = diff > worst ? diff : worst;
    }
    printf("largest difference between the two: %.1e\n", worst);
    failed |= !(worst < 1e-12);

    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(v);
    tg_tape_free(tape);
    return failed;
}
