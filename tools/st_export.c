/* st_export.c - the C side of tools/safetensors_interop.py. One small CNN,
 * the same in both directions:
 *
 *   input (1, 8, 8) -> Conv2D 4 3x3 relu -> MaxPooling2D 2 -> Flatten
 *                   -> Dense 16 relu -> Dense 10 softmax
 *
 *   st_export export DIR
 *       trains it for a few steps on random data, then writes
 *       DIR/model.safetensors (tg_model_save), DIR/x.safetensors (a batch of
 *       inputs, "x") and DIR/preds.safetensors (tapegrad's softmax outputs
 *       on x in evaluation mode, "preds").
 *   st_export import WEIGHTS X OUT
 *       loads WEIGHTS (written by another program) with tg_model_load,
 *       predicts on X's "x" and writes the outputs to OUT as "preds".
 *
 * Public API only, like a user's program. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad/tapegrad.h"

static tg_model *build(void)
{
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(1, 8, 8), TG_SCHEME_PYTORCH, 2024);
    tg_status st = m ? TG_OK : tg_last_status();
    if (st == TG_OK)
        st = tg_model_add(m, tg_layer_conv2d(4, 3, 3, TG_ACT_RELU));
    if (st == TG_OK)
        st = tg_model_add(m, tg_layer_maxpool2d(2));
    if (st == TG_OK)
        st = tg_model_add(m, tg_layer_flatten());
    if (st == TG_OK)
        st = tg_model_add(m, tg_layer_dense(16, TG_ACT_RELU));
    if (st == TG_OK)
        st = tg_model_add(m, tg_layer_dense(10, TG_ACT_SOFTMAX));
    if (st != TG_OK) {
        fprintf(stderr, "st_export: %s\n", tg_last_error());
        tg_model_free(m);
        return NULL;
    }
    return m;
}

/* Writes the model's evaluation-mode outputs on x to path as "preds". */
static int predict_to(tg_model *m, tg_tensor *x, const char *path)
{
    tg_tape *tape = tg_tape_new();
    tg_tape *prev = tg_tape_set_current(tape);
    tg_model_set_training(m, false);
    tg_tensor *y = tg_model_forward(m, x, false);
    tg_status st = y ? tg_safetensors_write(path, 1, (const char *[]){"preds"}, &y, NULL)
                     : tg_last_status();
    tg_tape_set_current(prev);
    tg_tape_free(tape);
    if (st != TG_OK)
        fprintf(stderr, "st_export: %s\n", tg_last_error());
    return st == TG_OK ? 0 : 1;
}

static int export_to(const char *dir)
{
    tg_model *m = build();
    if (!m)
        return 1;
    tg_rng rng = tg_rng_seeded(7);
    tg_tensor *x = tg_tensor_uniform(TG_F32, TG_SHAPE(16, 1, 8, 8), 0, 1, &rng);
    int64_t labels[16];
    for (int i = 0; i < 16; i++)
        labels[i] = (int64_t)tg_rng_below(&rng, 10);
    int np;
    tg_tensor *const *ps = tg_model_params(m, &np);
    tg_optim *opt = tg_optim_adam(ps, np, NULL);
    tg_tape *tape = tg_tape_new();
    tg_tape_set_current(tape);
    // A few steps, so that the saved weights are not just the initial ones.
    for (int step = 0; step < 20; step++) {
        tg_tensor *loss = tg_cross_entropy(tg_model_forward(m, x, true), labels, TG_REDUCE_MEAN);
        if (!loss || tg_backward(loss) != TG_OK || tg_optim_step(opt) != TG_OK) {
            fprintf(stderr, "st_export: %s\n", tg_last_error());
            return 1;
        }
        tg_optim_zero_grad(opt);
        tg_tape_reset(tape);
    }
    tg_tape_set_current(NULL);
    tg_tape_free(tape);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    tg_status st = tg_model_save(m, path);
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    if (st == TG_OK)
        st = tg_safetensors_write(path, 1, (const char *[]){"x"}, &x, NULL);
    if (st != TG_OK) {
        fprintf(stderr, "st_export: %s\n", tg_last_error());
        return 1;
    }
    snprintf(path, sizeof path, "%s/preds.safetensors", dir);
    int rc = predict_to(m, x, path);
    if (rc == 0)
        printf("st_export: wrote %s/{model,x,preds}.safetensors (%lld parameters)\n", dir,
               (long long)tg_model_param_count(m));
    tg_optim_free(opt);
    tg_tensor_free(x);
    tg_model_free(m);
    return rc;
}

static int import_from(const char *weights, const char *xpath, const char *out)
{
    tg_model *m = build();
    if (!m)
        return 1;
    tg_safetensors *xf = NULL;
    int rc = 1;
    if (tg_model_load(m, weights) != TG_OK || !(xf = tg_safetensors_read(xpath))) {
        fprintf(stderr, "st_export: %s\n", tg_last_error());
    } else {
        tg_tensor *x = tg_safetensors_find(xf, "x");
        if (!x)
            fprintf(stderr, "st_export: %s\n", tg_last_error());
        else
            rc = predict_to(m, x, out);
    }
    if (rc == 0)
        printf("st_export: loaded %s, wrote %s\n", weights, out);
    tg_safetensors_free(xf);
    tg_model_free(m);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "export") == 0)
        return export_to(argv[2]);
    if (argc == 5 && strcmp(argv[1], "import") == 0)
        return import_from(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: st_export export DIR | st_export import WEIGHTS X OUT\n");
    return 2;
}
