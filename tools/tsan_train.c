/* tsan_train.c - two threads train two models at once, each on its own tape,
 * for tools/tsan.sh (ThreadSanitizer). It checks the thread rules of
 * docs/reliability.md: tapes, models, optimizers and the error message are
 * per thread or per object, so two independent trainings neither race nor
 * disturb each other. Each thread also decodes gzip data and provokes errors,
 * checking that the message it reads is its own.
 *
 * Besides TSan's verdict, the results must be bitwise identical to the same
 * two trainings run one after the other: a hidden shared state would show as
 * a difference even where TSan sees no race. Exit status 0 when all agree.
 *
 * usage: tsan_train [steps]   (default 30) */
#define _POSIX_C_SOURCE 200809L /* pthreads */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tapegrad/tapegrad.h>

typedef struct job {
    int kind;     /* 0: CNN with Adam, 1: MLP with SGD + momentum */
    uint64_t seed;
    int steps;
    double loss;  /* last step's loss */
    double sum;   /* sum of all parameters after training */
    int failed;   /* a check in the thread failed */
} job;

/* A small model on 1x8x8 "images" with 10 classes. */
static tg_model *make_model(int kind, uint64_t seed)
{
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(1, 8, 8), TG_SCHEME_KERAS, seed);
    tg_status s = m ? TG_OK : tg_last_status();
    if (kind == 0) {
        if (s == TG_OK)
            s = tg_model_add(m, tg_layer_conv2d(4, 3, 3, TG_ACT_RELU));
        if (s == TG_OK)
            s = tg_model_add(m, tg_layer_maxpool2d(2));
    }
    if (s == TG_OK)
        s = tg_model_add(m, tg_layer_flatten());
    if (s == TG_OK)
        s = tg_model_add(m, tg_layer_dense(16, TG_ACT_RELU));
    if (s == TG_OK)
        s = tg_model_add(m, tg_layer_dense(10, TG_ACT_SOFTMAX));
    if (s != TG_OK) {
        fprintf(stderr, "model: %s\n", tg_last_error());
        tg_model_free(m);
        return NULL;
    }
    return m;
}

/* The error message is per thread: a failure here must read back as this
 * thread's own text, whatever the other thread is doing. */
static int check_own_error(int kind, int step)
{
    char want[64];
    snprintf(want, sizeof want, "thread %d step %d", kind, step);
    tg_set_error(TG_ERANGE, "%s", want);
    tg_tensor *bad = tg_tensor_zeros(TG_F32, TG_SHAPE(-1)); // fails: the message changes
    if (bad || tg_last_status() != TG_EINVAL || !strstr(tg_last_error(), "negative")) {
        fprintf(stderr, "thread %d: unexpected error state: %s\n", kind, tg_last_error());
        return 1;
    }
    tg_set_error(TG_ERANGE, "%s", want);
    return strcmp(tg_last_error(), want) != 0;
}

/* gzip decoding keeps no global state (its CRC tables are per call). */
static int check_gunzip(void)
{
    static const uint8_t gz[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
                                 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0x28, 0xcf, 0x2f, 0xca,
                                 0x49, 0xe1, 0x02, 0x00, 0x2d, 0x3b, 0x08, 0xaf, 0x0c, 0x00,
                                 0x00, 0x00}; // "hello world\n"
    uint8_t *out = NULL;
    size_t n = 0;
    if (tg_gunzip(gz, sizeof gz, &out, &n, 0) != TG_OK)
        return 1;
    int bad = n != 12 || memcmp(out, "hello world\n", 12) != 0;
    tg_buffer_free(out);
    return bad;
}

static void *train(void *arg)
{
    job *j = arg;
    tg_rng rng = tg_rng_seeded(j->seed);
    const int batch = 16;
    tg_tensor *x = tg_tensor_uniform(TG_F32, TG_SHAPE(batch, 1, 8, 8), 0, 1, &rng);
    int64_t labels[16];
    for (int i = 0; i < batch; i++)
        labels[i] = (int64_t)tg_rng_below(&rng, 10);
    tg_model *m = make_model(j->kind, j->seed);
    tg_tape *tape = tg_tape_new(); // current on this thread only
    tg_optim *opt = NULL;
    if (m) {
        int n;
        tg_tensor *const *params = tg_model_params(m, &n);
        if (j->kind == 0) {
            tg_adam_opts o = tg_adam_defaults();
            opt = tg_optim_adam(params, n, &o);
        } else {
            tg_sgd_opts o = tg_sgd_defaults();
            o.lr = 0.05;
            o.momentum = 0.9;
            opt = tg_optim_sgd(params, n, &o);
        }
    }
    if (!x || !m || !tape || !opt) {
        fprintf(stderr, "thread %d: setup failed: %s\n", j->kind, tg_last_error());
        j->failed = 1;
    }
    for (int step = 0; !j->failed && step < j->steps; step++) {
        tg_optim_zero_grad(opt);
        tg_tensor *logits = tg_model_forward(m, x, true);
        tg_tensor *loss = tg_cross_entropy(logits, labels, TG_REDUCE_MEAN);
        if (!loss || tg_backward(loss) != TG_OK || tg_optim_step(opt) != TG_OK) {
            fprintf(stderr, "thread %d step %d: %s\n", j->kind, step, tg_last_error());
            j->failed = 1;
            break;
        }
        j->loss = tg_tensor_item(loss);
        tg_tape_reset(tape);
        j->failed |= check_own_error(j->kind, step) | check_gunzip();
    }
    j->sum = 0;
    int n = 0;
    tg_tensor *const *params = m ? tg_model_params(m, &n) : NULL;
    for (int i = 0; i < n; i++)
        for (int64_t k = 0; k < tg_tensor_numel(params[i]); k++) {
            double v = 0;
            tg_tensor_get_flat(params[i], k, &v);
            j->sum += v;
        }
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tape_free(tape);
    tg_tensor_free(x);
    return NULL;
}

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 30;
    job together[2] = {{0, 11, steps, 0, 0, 0}, {1, 22, steps, 0, 0, 0}};
    job alone[2] = {together[0], together[1]};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&th[i], NULL, train, &together[i]) != 0) {
            perror("pthread_create");
            return 1;
        }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) { // the same work, one thread at a time
        pthread_create(&th[i], NULL, train, &alone[i]);
        pthread_join(th[i], NULL);
    }
    int bad = 0;
    for (int i = 0; i < 2; i++) {
        printf("model %d (%s): loss %.6f -> params sum %.9g; alone: %.6f, %.9g\n", i,
               i == 0 ? "CNN, Adam" : "MLP, SGD", together[i].loss, together[i].sum,
               alone[i].loss, alone[i].sum);
        bad |= together[i].failed || alone[i].failed || !isfinite(together[i].loss);
        // Bitwise: the concurrent run must compute exactly what the lone one did.
        bad |= memcmp(&together[i].loss, &alone[i].loss, sizeof(double)) != 0 ||
               memcmp(&together[i].sum, &alone[i].sum, sizeof(double)) != 0;
    }
    printf("%s\n", bad ? "FAILED: the concurrent run differs or a check failed" : "ok");
    return bad;
}
