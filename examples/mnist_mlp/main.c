/* mnist_mlp - a 784-128-10 multilayer perceptron on MNIST: Flatten, Dense 128
 * ReLU, Dense 10 softmax, SGD with momentum 0.9, batch 32, sparse categorical
 * cross-entropy, trained with tg_fit. Runs on the embedded digits unless
 * --data says otherwise. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <sys/resource.h>

#include <tapegrad/tapegrad.h>

#include "../common/args.h"

int main(int argc, char **argv)
{
    example_args a = {.epochs = 5, .batch = 32, .lr = 0.01, .seed = 1, .verbose = 1,
                      .patience = -1};
    int parsed = example_parse_args(argc, argv, "Trains a 784-128-10 MLP with SGD+momentum.", &a);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;

    tg_dataset *ds = tg_mnist_load(a.data, TG_F32);
    tg_model *model = NULL;
    if (ds) {
        const int64_t *shape = tg_dataset_shape(ds, TG_SPLIT_TRAIN);
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

    // The 8-bit pixels, converted batch by batch (no float copy of the images).
    tg_data train = {.dataset = ds, .split = TG_SPLIT_TRAIN,
                     .labels = tg_dataset_labels(ds, TG_SPLIT_TRAIN)};
    tg_data test = {.dataset = ds, .split = TG_SPLIT_TEST,
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
    double loss, acc;
    s = tg_fit(model, opt, &train, &fit, &history);
    if (s == TG_OK && es.stopped_epoch)
        printf("Epoch %d: early stopping (best val_loss %.4f at epoch %d)\n", es.stopped_epoch,
               es.best, es.best_epoch);
    if (s == TG_OK)
        s = tg_evaluate(model, &test, &fit, &loss, &acc);
    if (s == TG_OK)
        printf("Test loss: %.4f - Test accuracy: %.4f\n", loss, acc);
    else
        fprintf(stderr, "error: %s\n", tg_last_error());
    for (int e = 0; a.bench && e < tg_history_len(history); e++)
        printf("epoch_seconds %.4f\n", tg_history_epoch(history, e)->seconds);
    if (a.bench) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("max_rss_kib %ld\n", ru.ru_maxrss);
    }
    tg_history_free(history);
    tg_optim_free(opt);
    tg_model_free(model);
    tg_dataset_free(ds);
    return s == TG_OK ? 0 : 1;
}
