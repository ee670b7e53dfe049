/* custom_op - defining a new op: swish(x) = x * sigmoid(x).
 *
 * 1. forward fills the output from the input's values (a plain loop);
 * 2. backward returns d swish/dx * dout, built from tapegrad ops so that it is
 *    recorded when a graph of the backward pass is wanted (grad of grad):
 *        swish'(x) = s + x s (1 - s),  s = sigmoid(x)
 * 3. tg_gradcheck and tg_gradgradcheck verify both against finite differences;
 * 4. the op then trains inside a small model (1-16-1, swish hidden layer)
 *    fitting y = sin(x) with plain gradient descent. */
#include <math.h>
#include <stdio.h>

#include <tapegrad/tapegrad.h>

static tg_status swish_forward(tg_tensor *out, tg_tensor *const *in, void *ctx)
{
    (void)ctx;
    int64_t n = tg_tensor_numel(in[0]);
    if (tg_tensor_dtype(in[0]) == TG_F32) {
        const float *x = tg_tensor_data(in[0]);
        float *y = tg_tensor_data(out);
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] / (1.0f + expf(-x[i]));
    } else {
        const double *x = tg_tensor_data(in[0]);
        double *y = tg_tensor_data(out);
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] / (1.0 + exp(-x[i]));
    }
    return TG_OK;
}

static tg_status swish_backward(tg_tensor *const *in, tg_tensor *out, tg_tensor *dout,
                                const bool *needs, tg_tensor **din, void *ctx)
{
    (void)out;
    (void)ctx;
    if (!needs[0])
        return TG_OK;
    tg_tensor *x = in[0];
    tg_tensor *s = tg_sigmoid(x);
    tg_tensor *ds = tg_add(s, tg_mul(x, tg_mul(s, tg_rsub_scalar(s, 1.0))));
    din[0] = tg_mul(dout, ds);
    return din[0] ? TG_OK : tg_last_status();
}

static const tg_op_def_user SWISH = {
    .name = "swish",
    .n_inputs = 1,
    .forward = swish_forward,
    .backward = swish_backward, // .shape NULL: same shape as the input
};

static tg_tensor *swish(tg_tensor *x) { return tg_apply(&SWISH, 1, &x, NULL); }

static tg_tensor *swish_fn(tg_tensor *const *in, int n, void *ctx)
{
    (void)n;
    (void)ctx;
    return swish(in[0]);
}

/* PASS or FAIL with the report, or ERROR with the reason when the check
 * could not run (a wrong-shape gradient, a failing forward...). */
static void print_check(const char *what, tg_status s, const tg_gradcheck_report *rep)
{
    if (s == TG_OK || s == TG_EGRAD)
        printf("%s %s  (%lld values) %s\n", what, s == TG_OK ? "PASS" : "FAIL",
               (long long)rep->checked, rep->message);
    else
        printf("%s ERROR %s\n", what, tg_last_error());
}

static int check_op(void)
{
    tg_rng rng = tg_rng_seeded(7);
    tg_tensor *x = tg_tensor_uniform(TG_F32, TG_SHAPE(3, 4), -3, 3, &rng);
    tg_gradcheck_report rep;
    tg_status s1 = tg_gradcheck(swish_fn, NULL, 1, &x, NULL, &rep);
    print_check("gradcheck:    ", s1, &rep);
    tg_status s2 = tg_gradgradcheck(swish_fn, NULL, 1, &x, NULL, &rep);
    print_check("gradgradcheck:", s2, &rep);
    tg_tensor_free(x);
    return s1 == TG_OK && s2 == TG_OK ? 0 : 1;
}

/* A 1-16-1 network with the custom op as its hidden activation. */
static int train(void)
{
    enum { N = 64, H = 16, STEPS = 2000 };
    tg_rng rng = tg_rng_seeded(1);
    double xs[N], ys[N];
    for (int i = 0; i < N; i++) {
        xs[i] = -3.0 + 6.0 * i / (N - 1);
        ys[i] = sin(xs[i]);
    }
    tg_tensor *x = tg_tensor_from_doubles(TG_F32, TG_SHAPE(N, 1), xs);
    tg_tensor *y = tg_tensor_from_doubles(TG_F32, TG_SHAPE(N, 1), ys);
    tg_tensor *params[4] = {
        tg_tensor_uniform(TG_F32, TG_SHAPE(1, H), -1, 1, &rng),
        tg_tensor_zeros(TG_F32, TG_SHAPE(H)),
        tg_tensor_uniform(TG_F32, TG_SHAPE(H, 1), -0.25, 0.25, &rng),
        tg_tensor_zeros(TG_F32, TG_SHAPE(1)),
    };
    for (int i = 0; i < 4; i++)
        tg_tensor_set_requires_grad(params[i], true);
    tg_tape *tape = tg_tape_new();
    int rc = 0;
    for (int step = 0; step <= STEPS; step++) {
        tg_tensor *h = swish(tg_add(tg_matmul(x, params[0]), params[1]));
        tg_tensor *pred = tg_add(tg_matmul(h, params[2]), params[3]);
        tg_tensor *loss = tg_mean(tg_pow_scalar(tg_sub(pred, y), 2), NULL, 0, false);
        if (!loss || tg_backward(loss) != TG_OK) {
            fprintf(stderr, "error: %s\n", tg_last_error());
            rc = 1;
            break;
        }
        if (step % 500 == 0)
            printf("step %4d  mse %.6f\n", step, tg_tensor_item(loss));
        for (int i = 0; i < 4; i++) {
            float *w = tg_tensor_data(params[i]);
            float *g = tg_tensor_data(tg_tensor_grad(params[i]));
            for (int64_t k = 0; k < tg_tensor_numel(params[i]); k++)
                w[k] -= 0.05f * g[k];
            tg_tensor_zero_grad(params[i]);
        }
        tg_tape_reset(tape);
    }
    tg_tape_free(tape);
    for (int i = 0; i < 4; i++)
        tg_tensor_free(params[i]);
    tg_tensor_free(x);
    tg_tensor_free(y);
    return rc;
}

int main(void)
{
    printf("swish(x) = x * sigmoid(x), defined with tg_apply\n");
    if (check_op() != 0)
        return 1;
    printf("\ntraining 1-16-1 (swish) on y = sin(x), x in [-3, 3]\n");
    return train();
}
