/* mnist_mlp - a 784-128-10 multilayer perceptron on MNIST: Flatten, Dense 128
 * ReLU, Dense 10 softmax, SGD with momentum 0.9, batch 32, sparse categorical
 * cross-entropy. Runs on the embedded digits unless --data says otherwise. */
#include <stdio.h>

#include <tapegrad/tapegrad.h>

#include "../common/train.h"

int main(int argc, char **argv)
{
    example_args a = {.epochs = 5, .batch = 32, .lr = 0.01, .seed = 1,
                      .data = example_default_data()};
    int parsed = example_parse_args(argc, argv, "Trains a 784-128-10 MLP with SGD+momentum.", &a);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;

    tg_dataset *ds = tg_mnist_load(a.data, TG_F32);
    tg_model *model = NULL;
    if (ds) {
        const int64_t *shape = tg_tensor_shape(tg_dataset_images(ds, TG_SPLIT_TRAIN));
        model = tg_model_new(TG_F32, 3, shape + 1, TG_SCHEME_KERAS, a.seed);
    }
    tg_status s = model ? tg_model_add(model, tg_layer_flatten()) : tg_last_status();
    if (s == TG_OK)
        s = tg_model_add(model, tg_layer_dense(128, TG_ACT_RELU));
    if (s == TG_OK)
        s = tg_model_add(model, tg_layer_dense(tg_dataset_num_classes(ds), TG_ACT_SOFTMAX));
    tg_optim *opt = NULL;
    if (s == TG_OK) {
        int n;
        tg_tensor *const *params = tg_model_params(model, &n);
        tg_sgd_opts opts = tg_sgd_defaults();
        opts.lr = a.lr;
        opts.momentum = 0.9;
        opt = tg_optim_sgd(params, n, &opts);
    }
    if (!opt) {
        fprintf(stderr, "error: %s\n", tg_last_error());
        tg_model_free(model);
        tg_dataset_free(ds);
        return 1;
    }
    tg_model_summary(model, stdout);
    int rc = example_fit(model, opt, ds, &a);
    tg_optim_free(opt);
    tg_model_free(model);
    tg_dataset_free(ds);
    return rc == 0 ? 0 : 1;
}
