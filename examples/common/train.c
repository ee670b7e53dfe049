/* train.c - the training loop of the MNIST examples (see train.h). One step:
 * forward to logits on the tape, fused sparse cross-entropy, backward, the
 * optimizer's update, and a tape reset that frees the step's tensors at once. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifndef EXAMPLES_DATA_DIR
#define EXAMPLES_DATA_DIR "examples/data/mnist-10k"
#endif

const char *example_default_data(void) { return EXAMPLES_DATA_DIR; }

static void usage(FILE *f, const char *prog, const char *what, const example_args *d)
{
    fprintf(f,
            "usage: %s [options]\n"
            "  %s\n\n"
            "  --epochs N    passes over the training data (default %d)\n"
            "  --batch N     samples per step (default %lld)\n"
            "  --lr X        learning rate (default %g)\n"
            "  --seed N      seed for initial weights and shuffling (default %llu)\n"
            "  --data DIR    directory with the four MNIST-format IDX files, raw or .gz\n"
            "                (default: the 10,000 digits shipped in %s;\n"
            "                 full Fashion-MNIST: /usr/share/datasets/fashion-mnist)\n"
            "  --bench       also print epoch_seconds and max_rss_kib lines\n"
            "  --help        this text\n",
            prog, what, d->epochs, (long long)d->batch, d->lr, (unsigned long long)d->seed,
            EXAMPLES_DATA_DIR);
}

static bool parse_number(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

int example_parse_args(int argc, char **argv, const char *what, example_args *a)
{
    example_args d = *a;
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        double v;
        if (!strcmp(flag, "--help") || !strcmp(flag, "-h")) {
            usage(stdout, argv[0], what, &d);
            return 1;
        }
        if (!strcmp(flag, "--bench")) {
            a->bench = true;
            continue;
        }
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = value != NULL;
        if (ok && !strcmp(flag, "--epochs") && (ok = parse_number(value, 1, 1e6, &v)))
            a->epochs = (int)v;
        else if (ok && !strcmp(flag, "--batch") && (ok = parse_number(value, 1, 1e9, &v)))
            a->batch = (int64_t)v;
        else if (ok && !strcmp(flag, "--lr") && (ok = parse_number(value, 0, 1e6, &v)))
            a->lr = v;
        else if (ok && !strcmp(flag, "--seed") && (ok = parse_number(value, 0, 1.8e19, &v)))
            a->seed = (uint64_t)v;
        else if (ok && !strcmp(flag, "--data"))
            a->data = value;
        else
            ok = false;
        if (!ok) {
            fprintf(stderr, "%s: bad or unknown option '%s%s%s'\n\n", argv[0], flag,
                    value ? " " : "", value ? value : "");
            usage(stderr, argv[0], what, &d);
            return -1;
        }
        i++;
    }
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Keras's line: "250/250 [==============================] - 9s 36ms/step - loss: ..." */
static void progress(FILE *f, bool tty, int64_t done, int64_t total, double elapsed, double loss,
                     double acc, bool final)
{
    char bar[31];
    int filled = (int)(30 * done / total);
    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '=' : '.';
    if (!final && filled < 30)
        bar[filled] = '>';
    bar[30] = '\0';
    double per_step = elapsed / (double)done;
    fprintf(f, "%s%lld/%lld [%s] - ", tty ? "\r" : "", (long long)done, (long long)total, bar);
    if (final && per_step >= 1e-3)
        fprintf(f, "%.0fs %.0fms/step", elapsed, 1e3 * per_step);
    else if (final)
        fprintf(f, "%.0fs %.0fus/step", elapsed, 1e6 * per_step);
    else
        fprintf(f, "ETA: %.0fs", per_step * (double)(total - done));
    fprintf(f, " - loss: %.4f - accuracy: %.4f%s", loss, acc, final ? "\n" : "");
    fflush(f);
}

static int fail(void)
{
    fprintf(stderr, "error: %s\n", tg_last_error());
    return -1;
}

/* Mean loss and accuracy of the model on a split, in batches (of the training
 * size, as Keras's evaluate does), without grad. */
static int evaluate(tg_model *model, const tg_dataset *ds, tg_split split, int64_t batch,
                    double *loss, double *acc)
{
    tg_tensor *images = tg_dataset_images(ds, split);
    const int64_t *labels = tg_dataset_labels(ds, split);
    int64_t n = tg_dataset_count(ds, split);
    tg_batcher *it = tg_batcher_new(images, labels, n, batch, false, 0);
    if (!it)
        return fail();
    bool was_training = tg_model_training(model);
    bool grad = tg_set_grad_enabled(false);
    tg_model_set_training(model, false);
    double total_loss = 0, correct = 0;
    tg_tensor *x;
    const int64_t *y;
    int64_t count;
    int rc = 0;
    while (rc == 0 && tg_batcher_next(it, &x, &y, &count)) {
        tg_tensor *logits = tg_model_forward(model, x, true);
        tg_tensor *l = tg_cross_entropy(logits, y, TG_REDUCE_SUM);
        if (!l) {
            rc = fail();
            break;
        }
        total_loss += tg_tensor_item(l);
        correct += tg_accuracy(logits, y, count) * (double)count;
        tg_tape_reset(tg_tape_current());
    }
    tg_set_grad_enabled(grad);
    tg_model_set_training(model, was_training);
    tg_batcher_free(it);
    *loss = total_loss / (double)n;
    *acc = correct / (double)n;
    return rc;
}

int example_fit(tg_model *model, tg_optim *opt, const tg_dataset *ds, const example_args *a)
{
    tg_tensor *images = tg_dataset_images(ds, TG_SPLIT_TRAIN);
    const int64_t *labels = tg_dataset_labels(ds, TG_SPLIT_TRAIN);
    int64_t n = tg_dataset_count(ds, TG_SPLIT_TRAIN);
    tg_batcher *it = tg_batcher_new(images, labels, n, a->batch, true, a->seed);
    tg_tape *tape = tg_tape_new();
    if (!it || !tape) {
        tg_batcher_free(it);
        tg_tape_free(tape);
        return fail();
    }
    bool tty = isatty(fileno(stdout));
    int64_t steps = tg_batcher_num_batches(it);
    int rc = 0;
    for (int epoch = 1; epoch <= a->epochs && rc == 0; epoch++) {
        printf("Epoch %d/%d\n", epoch, a->epochs);
        double start = now(), loss_sum = 0, correct = 0;
        int64_t seen = 0, step = 0;
        tg_tensor *x;
        const int64_t *y;
        int64_t count;
        while (tg_batcher_next(it, &x, &y, &count)) {
            tg_tensor *logits = tg_model_forward(model, x, true);
            tg_tensor *loss = tg_cross_entropy(logits, y, TG_REDUCE_MEAN);
            if (!loss || tg_backward(loss) != TG_OK || tg_optim_step(opt) != TG_OK) {
                rc = fail();
                break;
            }
            tg_optim_zero_grad(opt);
            loss_sum += tg_tensor_item(loss) * (double)count;
            correct += tg_accuracy(logits, y, count) * (double)count;
            seen += count;
            tg_tape_reset(tape);
            // Redraw a few times a second at most: printing is not free.
            if (tty && (++step % 10 == 0) && step < steps)
                progress(stdout, tty, step, steps, now() - start, loss_sum / (double)seen,
                         correct / (double)seen, false);
        }
        if (rc != 0)
            break;
        double elapsed = now() - start;
        progress(stdout, tty, steps, steps, elapsed, loss_sum / (double)seen,
                 correct / (double)seen, true);
        if (a->bench)
            printf("epoch_seconds %.4f\n", elapsed);
        tg_batcher_reset_epoch(it);
    }
    double test_loss = 0, test_acc = 0;
    if (rc == 0 && (rc = evaluate(model, ds, TG_SPLIT_TEST, a->batch, &test_loss, &test_acc)) == 0)
        printf("Test loss: %.4f - Test accuracy: %.4f\n", test_loss, test_acc);
    if (a->bench) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("max_rss_kib %ld\n", ru.ru_maxrss);
    }
    tg_batcher_free(it);
    tg_tape_free(tape);
    return rc;
}
