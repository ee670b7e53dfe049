/* mnist_bn_cnn - the MNIST CNN of examples/mnist_cnn with BatchNorm after
 * each convolution:
 *
 *   Conv2D 32 3x3 -> BatchNorm2D -> ReLU -> MaxPool 2 ->
 *   Conv2D 64 3x3 -> BatchNorm2D -> ReLU -> MaxPool 2 ->
 *   Flatten -> Dense 64 ReLU -> Dense 10 softmax
 *
 * Keras's init and Adam (lr 1e-3, epsilon 1e-7), batch 32, shuffled, sparse
 * categorical cross-entropy, trained with tg_fit and evaluated with
 * tg_evaluate, which puts the model in evaluation mode: BatchNorm then
 * normalises with its running statistics. The BatchNorm layers use
 * PyTorch's defaults (momentum 0.1 in PyTorch's convention, 0.9 in Keras's
 * and tapegrad's; eps 1e-5; the running variance from the unbiased batch
 * variance), so that tools/bench/bn_cnn_torch.py is the same net with a
 * plain torch.nn.BatchNorm2d; --bn-momentum changes the momentum.
 *
 * After the usual test line it measures the test accuracy once more in
 * training mode, where each batch is normalised with its own statistics: so a
 * prediction depends on which other images share its batch, and with one
 * image per batch on that image alone. The running statistics are restored
 * afterwards (a forward pass in training mode updates them).
 *
 * --train-samples N and --test-samples N use the first N images of a split
 * only (the test in tests/meson.build stays short with them). --bench adds machine-readable
 * lines for tools/bench/bn_cnn_compare.py. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tapegrad/tapegrad.h>

#include "../common/args.h"

static tg_model *build_model(const tg_dataset *ds, uint64_t seed, double bn_momentum)
{
    const int64_t *shape = tg_tensor_shape(tg_dataset_images(ds, TG_SPLIT_TRAIN));
    tg_model *m = tg_model_new(TG_F32, 3, shape + 1, TG_SCHEME_KERAS, seed);
    tg_status s = m ? TG_OK : tg_last_status();
    tg_batchnorm_opts bn = tg_batchnorm_defaults(TG_SCHEME_PYTORCH);
    bn.momentum = bn_momentum;
    // The convolutions keep their bias (as mnist_cnn and PyTorch's Conv2d
    // do); BatchNorm's beta makes it redundant, but it costs 96 parameters.
    tg_layer *layers[] = {
        tg_layer_conv2d(32, 3, 3, TG_ACT_NONE),
        tg_layer_batchnorm2d(&bn),
        tg_layer_activation(TG_ACT_RELU),
        tg_layer_maxpool2d(2),
        tg_layer_conv2d(64, 3, 3, TG_ACT_NONE),
        tg_layer_batchnorm2d(&bn),
        tg_layer_activation(TG_ACT_RELU),
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

/* The first n samples of x (N, ...) as a new tensor (tg_tensor_free). */
static tg_tensor *first_samples(const tg_tensor *x, int64_t n)
{
    int64_t shape[8];
    int ndim = tg_tensor_ndim(x);
    memcpy(shape, tg_tensor_shape(x), (size_t)ndim * sizeof shape[0]);
    shape[0] = n;
    return tg_tensor_from_data(tg_tensor_dtype(x), ndim, shape, tg_tensor_data_const(x));
}

/* The accuracy on (x, labels) with the model in training mode: BatchNorm
 * normalises each batch of `batch` samples with that batch's statistics.
 * Grad mode is off, and the buffers (the running statistics, which a
 * training-mode forward updates) and the modes are restored afterwards. */
static tg_status train_mode_accuracy(tg_model *m, const tg_tensor *x, const int64_t *labels,
                                     int64_t batch, double *acc)
{
    int n_buf;
    tg_tensor *const *buffers = tg_model_buffers(m, &n_buf);
    tg_tensor **saved = calloc((size_t)n_buf + 1, sizeof *saved);
    int64_t n = tg_tensor_dim(x, 0), per = tg_tensor_numel(x) / n;
    int64_t *pred = malloc((size_t)batch * sizeof *pred), shape[8], correct = 0;
    int ndim = tg_tensor_ndim(x);
    memcpy(shape, tg_tensor_shape(x), (size_t)ndim * sizeof shape[0]);
    tg_status s = saved && pred ? TG_OK : tg_set_error(TG_ENOMEM, "train_mode_accuracy: out of "
                                                                "memory");
    for (int i = 0; s == TG_OK && i < n_buf; i++)
        if (!(saved[i] = tg_tensor_clone(buffers[i])))
            s = tg_last_status();
    tg_tape *tape = s == TG_OK ? tg_tape_new() : NULL;
    if (s == TG_OK && !tape)
        s = tg_last_status();
    tg_tape *prev = tg_tape_set_current(tape);
    bool grad = tg_set_grad_enabled(false), training = tg_model_training(m);
    tg_model_set_training(m, true);
    const float *data = tg_tensor_data_const(x);
    for (int64_t start = 0; s == TG_OK && start < n; start += batch) {
        shape[0] = n - start < batch ? n - start : batch;
        tg_tensor *xb = tg_tensor_from_data(TG_F32, ndim, shape, data + start * per);
        tg_tensor *out = xb ? tg_model_forward(m, xb, true) : NULL;
        s = out ? tg_argmax(out, 1, pred, shape[0]) : tg_last_status();
        for (int64_t i = 0; s == TG_OK && i < shape[0]; i++)
            correct += pred[i] == labels[start + i];
        tg_tape_reset(tape);
        tg_tensor_free(xb);
    }
    tg_model_set_training(m, training);
    tg_set_grad_enabled(grad);
    tg_tape_set_current(prev);
    tg_tape_free(tape);
    // Restored even after a failure part-way.
    for (int i = 0; i < n_buf && saved && saved[i]; i++) {
        tg_status r = tg_tensor_copy_values(buffers[i], saved[i]);
        if (s == TG_OK)
            s = r;
        tg_tensor_free(saved[i]);
    }
    free(saved);
    free(pred);
    if (s == TG_OK)
        *acc = (double)correct / (double)n;
    return s;
}

int main(int argc, char **argv)
{
    example_args a = {.epochs = 5, .batch = 32, .lr = 1e-3, .seed = 1, .verbose = 1,
                      .patience = -1, .bn_momentum = 0.9,
                      .extras = EXAMPLE_TRAIN_SAMPLES | EXAMPLE_BN_MOMENTUM};
    int parsed = example_parse_args(argc, argv, "Trains the MNIST CNN with BatchNorm.", &a);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;

    tg_dataset *ds = tg_mnist_load(a.data, TG_F32);
    int64_t n_train = ds ? tg_dataset_count(ds, TG_SPLIT_TRAIN) : 0;
    int64_t n_test = ds ? tg_dataset_count(ds, TG_SPLIT_TEST) : 0;
    if (ds && (a.train_samples > n_train || a.test_samples > n_test)) {
        bool train = a.train_samples > n_train;
        fprintf(stderr, "%s: --%s-samples %lld: the %s set has %lld images (%s)\n", argv[0],
                train ? "train" : "test",
                (long long)(train ? a.train_samples : a.test_samples),
                train ? "training" : "test", (long long)(train ? n_train : n_test), a.data);
        tg_dataset_free(ds);
        return 2;
    }
    if (a.train_samples)
        n_train = a.train_samples;
    if (a.test_samples)
        n_test = a.test_samples;
    tg_tensor *x_train = ds ? first_samples(tg_dataset_images(ds, TG_SPLIT_TRAIN), n_train)
                            : NULL;
    tg_tensor *x_test = x_train ? first_samples(tg_dataset_images(ds, TG_SPLIT_TEST), n_test)
                                : NULL;
    tg_model *model = x_test ? build_model(ds, a.seed, a.bn_momentum) : NULL;
    tg_optim *opt = NULL;
    if (model) {
        int n_params;
        tg_tensor *const *params = tg_model_params(model, &n_params);
        tg_adam_opts opts = tg_adam_keras_defaults(); // Keras's update rule, epsilon 1e-7
        opts.lr = a.lr;
        opt = tg_optim_adam(params, n_params, &opts);
    }
    if (!opt) {
        fprintf(stderr, "error: %s\n", tg_last_error());
        tg_model_free(model);
        tg_tensor_free(x_test);
        tg_tensor_free(x_train);
        tg_dataset_free(ds);
        return 1;
    }
    printf("Training on %lld images, testing on %lld (%s)\n", (long long)n_train,
           (long long)n_test, a.data);
    tg_model_summary(model, stdout);

    tg_data train = {.x = x_train, .labels = tg_dataset_labels(ds, TG_SPLIT_TRAIN)};
    tg_data test = {.x = x_test,
                    .labels = tg_dataset_labels(ds, TG_SPLIT_TEST)};
    tg_fit_opts fit = tg_fit_defaults();
    fit.epochs = a.epochs;
    fit.batch_size = a.batch;
    fit.seed = a.seed;
    fit.verbose = a.verbose;
    fit.validation_split = a.validation_split;
    tg_early_stopping es = tg_early_stopping_defaults();
    es.patience = a.patience;
    tg_callback stop = tg_early_stopping_callback(&es);
    if (a.patience >= 0) {
        fit.callbacks = &stop;
        fit.n_callbacks = 1;
    }
    tg_history *history = NULL;
    double loss, acc, acc_batch = 0, acc_one = 0;
    tg_status s = tg_fit(model, opt, &train, &fit, &history);
    if (s == TG_OK && es.stopped_epoch)
        printf("Epoch %d: early stopping (best val_loss %.4f at epoch %d)\n", es.stopped_epoch,
               es.best, es.best_epoch);
    if (s == TG_OK)
        s = tg_evaluate(model, &test, &fit, &loss, &acc);
    if (s == TG_OK)
        printf("Test loss: %.4f - Test accuracy: %.4f\n", loss, acc);
    if (s == TG_OK)
        s = train_mode_accuracy(model, test.x, test.labels, a.batch, &acc_batch);
    if (s == TG_OK)
        s = train_mode_accuracy(model, test.x, test.labels, 1, &acc_one);
    if (s == TG_OK) {
        char batches[64];
        snprintf(batches, sizeof batches, "training mode, batches of %lld:", (long long)a.batch);
        printf("Test accuracy by BatchNorm mode:\n"
               "  %-42s %.4f\n  %-42s %.4f\n  %-42s %.4f\n",
               "evaluation mode (running statistics):", acc, batches, acc_batch,
               "training mode, one image per batch:", acc_one);
    } else {
        fprintf(stderr, "error: %s\n", tg_last_error());
    }
    // tools/bench/bn_cnn_compare.py reads these.
    for (int e = 0; s == TG_OK && a.bench && e < tg_history_len(history); e++) {
        const tg_epoch_log *log = tg_history_epoch(history, e);
        printf("bench_epoch %d loss %.6f accuracy %.6f seconds %.4f\n", log->epoch, log->loss,
               log->metric, log->seconds);
    }
    if (s == TG_OK && a.bench)
        printf("bench_test loss %.6f accuracy %.6f train_mode_accuracy %.6f\n", loss, acc,
               acc_batch);
    tg_history_free(history);
    tg_optim_free(opt);
    tg_model_free(model);
    tg_tensor_free(x_test);
    tg_tensor_free(x_train);
    tg_dataset_free(ds);
    return s == TG_OK ? 0 : 1;
}
