/* mnist_cnn - the classic Keras MNIST convnet, trained with tapegrad:
 *
 *   Conv2D 32 3x3 ReLU -> MaxPool 2 -> Conv2D 64 3x3 ReLU -> MaxPool 2 ->
 *   Flatten -> Dense 64 ReLU -> Dense 10 softmax
 *
 * with Keras's defaults: glorot-uniform weights, zero biases, Adam in its
 * Keras form (lr 1e-3, epsilon 1e-7), batch 32, shuffled, 5 epochs, sparse
 * categorical cross-entropy (fused with the softmax for stability). Runs on
 * the 10,000 digits in examples/data/mnist-10k unless --data says otherwise. */
#include <stdio.h>

#include <tapegrad/tapegrad.h>

#include "../common/train.h"

static tg_model *build_model(const tg_dataset *ds, uint64_t seed)
{
    const int64_t *shape = tg_tensor_shape(tg_dataset_images(ds, TG_SPLIT_TRAIN));
    tg_model *m = tg_model_new(TG_F32, 3, shape + 1, TG_SCHEME_KERAS, seed);
    tg_status s = m ? TG_OK : tg_last_status();
    tg_layer *layers[] = {
        tg_layer_conv2d(32, 3, 3, TG_ACT_RELU),
        tg_layer_maxpool2d(2),
        tg_layer_conv2d(64, 3, 3, TG_ACT_RELU),
        tg_layer_maxpool2d(2),
        tg_layer_flatten(),
        tg_layer_dense(64, TG_ACT_RELU),
        tg_layer_dense(tg_dataset_num_classes(ds), TG_ACT_SOFTMAX),
    };
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
        if (s == TG_OK)
            s = tg_model_add(m, layers[i]);
        else
            tg_layer_free(layers[i]);
    if (s != TG_OK) {
        tg_model_free(m);
        return NULL;
    }
    return m;
}

int main(int argc, char **argv)
{
    example_args a = {.epochs = 5, .batch = 32, .lr = 1e-3, .seed = 1,
                      .data = example_default_data()};
    int parsed = example_parse_args(argc, argv, "Trains the Keras MNIST CNN.", &a);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;

    tg_dataset *ds = tg_mnist_load(a.data, TG_F32);
    tg_model *model = ds ? build_model(ds, a.seed) : NULL;
    if (!model) {
        fprintf(stderr, "error: %s\n", tg_last_error());
        tg_dataset_free(ds);
        return 1;
    }
    printf("Training on %lld images, testing on %lld (%s)\n",
           (long long)tg_dataset_count(ds, TG_SPLIT_TRAIN),
           (long long)tg_dataset_count(ds, TG_SPLIT_TEST), a.data);
    tg_model_summary(model, stdout);

    int n_params;
    tg_tensor *const *params = tg_model_params(model, &n_params);
    tg_adam_opts opts = tg_adam_keras_defaults(); // Keras's update rule, epsilon 1e-7
    opts.lr = a.lr;
    tg_optim *opt = tg_optim_adam(params, n_params, &opts);
    int rc = opt ? example_fit(model, opt, ds, &a) : -1;
    if (!opt)
        fprintf(stderr, "error: %s\n", tg_last_error());
    tg_optim_free(opt);
    tg_model_free(model);
    tg_dataset_free(ds);
    return rc == 0 ? 0 : 1;
}
