/* mnist_cnn - the classic Keras MNIST convnet, trained with tapegrad:
 *
 *   Conv2D 32 3x3 ReLU -> MaxPool 2 -> Conv2D 64 3x3 ReLU -> MaxPool 2 ->
 *   Flatten -> Dense 64 ReLU -> Dense 10 softmax
 *
 * with Keras's defaults: glorot-uniform weights, zero biases, Adam in its
 * Keras form (lr 1e-3, epsilon 1e-7), batch 32, shuffled, 5 epochs, sparse
 * categorical cross-entropy (fused with the softmax for stability), through
 * tg_fit and tg_evaluate. Runs on the 10,000 digits in examples/data/mnist-10k
 * unless --data says otherwise.
 *
 * --save PATH writes a training checkpoint (model, optimizer, epoch; a
 * safetensors file, replaced atomically) after every epoch; --resume PATH
 * loads one and trains on up to --epochs. "--epochs 2" and "--epochs 1
 * --save c" then "--epochs 2 --resume c" give the same numbers. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <sys/resource.h>

#include <tapegrad/tapegrad.h>

#include "../common/args.h"

/* --bench: tg_fit's tape is current while its callbacks run; its arena's
 * size after the first step is what every later step reuses. */
static int note_tape(const tg_fit_state *s, void *ctx)
{
    size_t *bytes = ctx;
    tg_tape *tape = tg_tape_current();
    if (s->event == TG_FIT_BATCH_END && tape) {
        if (tg_tape_high_water(tape) > bytes[0])
            bytes[0] = tg_tape_high_water(tape);
        bytes[1] = tg_tape_bytes(tape);
    }
    return TG_FIT_CONTINUE;
}

/* A callback: the checkpoint after each epoch, so that a run killed in epoch
 * k + 1 can go on from the end of epoch k. */
static int save_checkpoint(const tg_fit_state *s, void *ctx)
{
    if (s->event != TG_FIT_EPOCH_END)
        return TG_FIT_CONTINUE;
    tg_train_state st = {.model = s->model, .optim = s->optim, .epoch = s->epoch};
    return tg_checkpoint_save(ctx, &st);
}

static tg_model *build_model(const tg_dataset *ds, uint64_t seed)
{
    const int64_t *shape = tg_dataset_shape(ds, TG_SPLIT_TRAIN);
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
    example_args a = {.epochs = 5, .batch = 32, .lr = 1e-3, .seed = 1, .verbose = 1,
                      .patience = -1, .extras = EXAMPLE_CHECKPOINTS};
    int parsed = example_parse_args(argc, argv, "Trains the Keras MNIST CNN.", &a);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;

    tg_dataset *ds = tg_mnist_load(a.data, TG_F32);
    tg_model *model = ds ? build_model(ds, a.seed) : NULL;
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
        tg_dataset_free(ds);
        return 1;
    }
    // The same seed makes the same model and optimizer; the checkpoint then
    // overwrites their values and the epoch count.
    tg_train_state resumed = {.model = model, .optim = opt};
    if (a.resume && tg_checkpoint_load(a.resume, &resumed) != TG_OK) {
        fprintf(stderr, "error: %s\n", tg_last_error());
        tg_optim_free(opt);
        tg_model_free(model);
        tg_dataset_free(ds);
        return 1;
    }
    if (a.resume)
        printf("Resuming from %s after epoch %lld\n", a.resume, (long long)resumed.epoch);
    printf("Training on %lld images, testing on %lld (%s)\n",
           (long long)tg_dataset_count(ds, TG_SPLIT_TRAIN),
           (long long)tg_dataset_count(ds, TG_SPLIT_TEST), a.data);
    tg_model_summary(model, stdout);

    // The dataset's 8-bit pixels, converted batch by batch: a float copy of
    // the images would take four times their memory.
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
    fit.initial_epoch = (int)resumed.epoch;
    tg_early_stopping es = tg_early_stopping_defaults();
    es.patience = a.patience;
    tg_callback callbacks[3];
    size_t tape_bytes[2] = {0, 0}; // high-water mark, bytes held
    if (a.bench)
        callbacks[fit.n_callbacks++] = (tg_callback){note_tape, tape_bytes};
    if (a.patience >= 0)
        callbacks[fit.n_callbacks++] = tg_early_stopping_callback(&es);
    if (a.save)
        callbacks[fit.n_callbacks++] = (tg_callback){save_checkpoint, (void *)a.save};
    fit.callbacks = callbacks;
    tg_history *history = NULL;
    double loss, acc;
    tg_status s = TG_OK;
    if (fit.initial_epoch < fit.epochs)
        s = tg_fit(model, opt, &train, &fit, &history);
    else
        printf("Nothing to train: the checkpoint is at epoch %d of %d\n", fit.initial_epoch,
               fit.epochs);
    if (s == TG_OK && es.stopped_epoch)
        printf("Epoch %d: early stopping (best val_loss %.4f at epoch %d)\n", es.stopped_epoch,
               es.best, es.best_epoch);
    if (s == TG_OK)
        s = tg_evaluate(model, &test, &fit, &loss, &acc);
    if (s == TG_OK)
        printf("Test loss: %.4f - Test accuracy: %.4f\n", loss, acc);
    else
        fprintf(stderr, "error: %s\n", tg_last_error());
    // tools/bench/cnn_bench.py reads these.
    for (int e = 0; a.bench && e < tg_history_len(history); e++)
        printf("epoch_seconds %.4f\n", tg_history_epoch(history, e)->seconds);
    if (a.bench) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("max_rss_kib %ld\n", ru.ru_maxrss);
        printf("tape_high_water_bytes %zu\ntape_bytes %zu\n", tape_bytes[0], tape_bytes[1]);
        printf("kernel %s\nthreads %d\n", tg_kernel_name(), tg_num_threads());
    }
    tg_history_free(history);
    tg_optim_free(opt);
    tg_model_free(model);
    tg_dataset_free(ds);
    return s == TG_OK ? 0 : 1;
}
