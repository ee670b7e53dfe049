/* model_bench - the tapegrad side of tools/bench/run_all.py: three small
 * workloads timed through the public API, each the median of repeats.
 *
 *     model_bench infer   [data-dir]  CNN inference, batch 256, images/s
 *     model_bench mlp     [data-dir]  784-128-10 MLP, Adam, batch 64, us/step
 *     model_bench step321             3-2-1 sigmoid MLP, BCE, SGD, ns/step
 *
 * tools/bench/torch_models.py runs the same three in PyTorch. Output, one
 * "key value" pair a line: kernel, threads, result <value> <unit>, repeats,
 * tape_high_water_bytes, tape_bytes (tg_tape_high_water and tg_tape_bytes of
 * the tape the workload ran on), max_rss_kib. TAPEGRAD_NUM_THREADS and
 * TAPEGRAD_KERNEL choose the threads and the kernel. A benchmark, not a test:
 * nothing here asserts a time. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <tapegrad/tapegrad.h>

#ifndef TG_BENCH_DATA_DIR
#define TG_BENCH_DATA_DIR "examples/data/mnist-10k"
#endif

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

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int fail(const char *what)
{
    fprintf(stderr, "model_bench: %s: %s\n", what, tg_last_error());
    return 1;
}

static void report(const char *unit, double value, int repeats, const tg_tape *tape)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("kernel %s\nthreads %d\nresult %.6g %s\nrepeats %d\n", tg_kernel_name(),
           tg_num_threads(), value, unit, repeats);
    printf("tape_high_water_bytes %zu\ntape_bytes %zu\nmax_rss_kib %ld\n",
           tg_tape_high_water(tape), tg_tape_bytes(tape), ru.ru_maxrss);
}

/* The article's CNN, as examples/mnist_cnn builds it (Keras init, seed 1). */
static tg_model *cnn(void)
{
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(1, 28, 28), TG_SCHEME_KERAS, 1);
    tg_layer *layers[] = {
        tg_layer_conv2d(32, 3, 3, TG_ACT_RELU), tg_layer_maxpool2d(2),
        tg_layer_conv2d(64, 3, 3, TG_ACT_RELU), tg_layer_maxpool2d(2),
        tg_layer_flatten(),
        tg_layer_dense(64, TG_ACT_RELU),        tg_layer_dense(10, TG_ACT_SOFTMAX),
    };
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
        if (!m || tg_model_add(m, layers[i]) != TG_OK) {
            for (size_t j = i + 1; j < sizeof layers / sizeof layers[0]; j++)
                tg_layer_free(layers[j]);
            tg_model_free(m);
            return NULL;
        }
    return m;
}

/* Forward passes (grad off, softmax probabilities) over the full batches of
 * 256 of the training split: 31 batches, 7,936 images a pass. */
static int bench_infer(const char *dir)
{
    enum { BATCH = 256, REPEATS = 7 };
    tg_dataset *ds = tg_mnist_load(dir, TG_F32);
    tg_model *m = ds ? cnn() : NULL;
    tg_batcher *b = m ? tg_dataset_batcher(ds, TG_SPLIT_TRAIN, BATCH, false, 0) : NULL;
    tg_tape *tape = tg_tape_new();
    if (!b || !tape)
        return fail("infer setup");
    tg_set_grad_enabled(false);
    tg_model_set_training(m, false);
    double rates[REPEATS], checksum = 0;
    for (int r = -1; r < REPEATS; r++) { // r = -1: warm-up (scratch, calibration)
        int64_t images = 0, count;
        tg_tensor *x;
        double t0 = now();
        while (tg_batcher_next(b, &x, NULL, &count) && count == BATCH) {
            tg_tensor *p = tg_model_forward(m, x, false);
            if (!p)
                return fail("infer forward");
            checksum += ((const float *)tg_tensor_data(p))[0];
            images += count;
            tg_tape_reset(tape);
        }
        if (r >= 0)
            rates[r] = (double)images / (now() - t0);
        tg_batcher_reset_epoch(b);
    }
    report("images/s", median(rates, REPEATS), REPEATS, tape);
    printf("checksum %.6f\n", checksum);
    tg_tape_free(tape);
    tg_batcher_free(b);
    tg_model_free(m);
    tg_dataset_free(ds);
    return 0;
}

/* Epochs of 784-128-10 (ReLU, logits into the fused cross-entropy) with Adam
 * (PyTorch's form, lr 1e-3) in batches of 64 over the 8,000 training images:
 * 125 steps an epoch; the time is per step. */
static int bench_mlp(const char *dir)
{
    enum { BATCH = 64, REPEATS = 5 };
    tg_dataset *ds = tg_mnist_load(dir, TG_F32);
    tg_model *m = ds ? tg_model_new(TG_F32, TG_SHAPE(1, 28, 28), TG_SCHEME_KERAS, 1) : NULL;
    if (!m || tg_model_add(m, tg_layer_flatten()) != TG_OK ||
        tg_model_add(m, tg_layer_dense(128, TG_ACT_RELU)) != TG_OK ||
        tg_model_add(m, tg_layer_dense(10, TG_ACT_SOFTMAX)) != TG_OK)
        return fail("mlp model");
    int n_params;
    tg_tensor *const *params = tg_model_params(m, &n_params);
    tg_adam_opts ao = tg_adam_defaults();
    ao.lr = 1e-3;
    tg_optim *opt = tg_optim_adam(params, n_params, &ao);
    tg_batcher *b = opt ? tg_dataset_batcher(ds, TG_SPLIT_TRAIN, BATCH, true, 1) : NULL;
    tg_tape *tape = tg_tape_new();
    if (!b || !tape)
        return fail("mlp setup");
    double per_step[REPEATS], loss = 0;
    for (int r = -1; r < REPEATS; r++) {
        int64_t steps = 0, count;
        tg_tensor *x;
        const int64_t *y;
        double t0 = now();
        while (tg_batcher_next(b, &x, &y, &count)) {
            tg_tensor *l = tg_cross_entropy(tg_model_forward(m, x, true), y, TG_REDUCE_MEAN);
            tg_optim_zero_grad(opt);
            if (!l || tg_backward(l) != TG_OK || tg_optim_step(opt) != TG_OK)
                return fail("mlp step");
            loss = tg_tensor_item(l);
            tg_tape_reset(tape);
            steps++;
        }
        if (r >= 0)
            per_step[r] = (now() - t0) / (double)steps * 1e6;
        tg_batcher_reset_epoch(b);
    }
    report("us/step", median(per_step, REPEATS), REPEATS, tape);
    printf("final_loss %.4f\n", loss);
    tg_tape_free(tape);
    tg_batcher_free(b);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_dataset_free(ds);
    return 0;
}

/* The worked example's network (examples/worked_backprop: x (1x3) ->
 * sigmoid(x W1 + b1) (1x2) -> sigmoid(h W2 + b2) -> binary cross-entropy
 * against y = 1) in float32, one plain SGD step (lr 0.5) at a time. */
static int bench_step321(void)
{
    enum { STEPS = 20000, REPEATS = 15 };
    tg_tensor *x = tg_tensor_from_doubles(TG_F32, TG_SHAPE(1, 3), (double[]){0.5, -0.2, 0.1});
    tg_tensor *y = tg_tensor_from_doubles(TG_F32, TG_SHAPE(1, 1), (double[]){1});
    tg_tensor *p[4] = {
        tg_tensor_from_doubles(TG_F32, TG_SHAPE(3, 2), (double[]){0.15, -0.3, 0.2, 0.1, -0.1, 0.25}),
        tg_tensor_from_doubles(TG_F32, TG_SHAPE(2), (double[]){0.05, -0.05}),
        tg_tensor_from_doubles(TG_F32, TG_SHAPE(2, 1), (double[]){0.4, -0.6}),
        tg_tensor_from_doubles(TG_F32, TG_SHAPE(1), (double[]){0.1}),
    };
    for (int i = 0; i < 4; i++)
        tg_tensor_set_requires_grad(p[i], true);
    tg_sgd_opts so = tg_sgd_defaults();
    so.lr = 0.5;
    tg_optim *opt = tg_optim_sgd(p, 4, &so);
    tg_tape *tape = tg_tape_new();
    if (!opt || !tape)
        return fail("step321 setup");
    double per_step[REPEATS], loss = 0;
    for (int r = -1; r < REPEATS; r++) {
        double t0 = now();
        for (int s = 0; s < STEPS; s++) {
            tg_tensor *h = tg_sigmoid(tg_add(tg_matmul(x, p[0]), p[1]));
            tg_tensor *out = tg_sigmoid(tg_add(tg_matmul(h, p[2]), p[3]));
            tg_tensor *l = tg_bce_loss(out, y, TG_REDUCE_MEAN);
            tg_optim_zero_grad(opt);
            if (!l || tg_backward(l) != TG_OK || tg_optim_step(opt) != TG_OK)
                return fail("step321 step");
            loss = tg_tensor_item(l);
            tg_tape_reset(tape);
        }
        if (r >= 0)
            per_step[r] = (now() - t0) / STEPS * 1e9;
    }
    report("ns/step", median(per_step, REPEATS), REPEATS, tape);
    printf("final_loss %.6f\n", loss);
    tg_tape_free(tape);
    tg_optim_free(opt);
    for (int i = 0; i < 4; i++)
        tg_tensor_free(p[i]);
    tg_tensor_free(x);
    tg_tensor_free(y);
    return 0;
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    const char *dir = argc > 2 ? argv[2] : TG_BENCH_DATA_DIR;
    if (strcmp(what, "infer") == 0)
        return bench_infer(dir);
    if (strcmp(what, "mlp") == 0)
        return bench_mlp(dir);
    if (strcmp(what, "step321") == 0)
        return bench_step321();
    fprintf(stderr, "usage: %s infer|mlp [data-dir] | step321\n", argv[0]);
    return 2;
}
