/* fit_arrays - a 2-layer MLP fitted to the caller's own float arrays with
 * tg_fit: y = sin(3 x0) x1 on a 16 x 16 grid, Dense 32 tanh -> Dense 1,
 * Adam, mean squared error. The block between the markers is the one
 * docs/training.md shows (tests/check_train.c checks that they agree). */
#include <math.h>
#include <stdio.h>

#include <tapegrad/tapegrad.h>

int main(void)
{
    enum { N = 256 };
    static float X[N][2], Y[N][1];
    for (int i = 0; i < N; i++) {
        X[i][0] = (float)(i % 16) / 7.5f - 1;
        X[i][1] = (float)(i / 16) / 7.5f - 1;
        Y[i][0] = sinf(3 * X[i][0]) * X[i][1];
    }

    // docs/training.md:begin
    tg_tensor *x = tg_tensor_from_data(TG_F32, TG_SHAPE(N, 2), X);
    tg_tensor *y = tg_tensor_from_data(TG_F32, TG_SHAPE(N, 1), Y);
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(2), TG_SCHEME_KERAS, 1);
    tg_model_add(m, tg_layer_dense(32, TG_ACT_TANH));
    tg_model_add(m, tg_layer_dense(1, TG_ACT_NONE));
    int n;
    tg_tensor *const *params = tg_model_params(m, &n);
    tg_optim *opt = tg_optim_adam(params, n, &(tg_adam_opts){.lr = 0.01, .beta1 = 0.9,
                                                             .beta2 = 0.999, .eps = 1e-8});
    tg_fit_opts o = tg_fit_defaults();
    o.epochs = 200;
    o.verbose = 0;
    tg_history *h = NULL;
    tg_status s = tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, &h);
    // docs/training.md:end

    if (s != TG_OK) {
        fprintf(stderr, "error: %s\n", tg_last_error());
        return 1;
    }
    for (int e = 0; e < tg_history_len(h); e += 199) {
        const tg_epoch_log *l = tg_history_epoch(h, e);
        printf("epoch %3d: loss %.5f, mae %.4f\n", l->epoch, l->loss, l->metric);
    }
    tg_tensor *pred = NULL;
    s = tg_predict(m, x, 64, &pred);
    for (int i = 0; s == TG_OK && i < N; i += 51) {
        double p;
        tg_tensor_get_flat(pred, i, &p);
        printf("f(%5.2f, %5.2f) = %7.4f, predicted %7.4f\n", X[i][0], X[i][1], Y[i][0], p);
    }
    tg_tensor_free(pred);
    tg_history_free(h);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    tg_tensor_free(y);
    return s == TG_OK ? 0 : 1;
}
