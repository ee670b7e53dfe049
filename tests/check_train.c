/* check_train.c - tg_fit, tg_evaluate, tg_predict, the History, callbacks,
 * early stopping, save-best and the progress text, on problems small enough
 * to train in milliseconds. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tapegrad/tapegrad.h>

#include "tg_check.h"
#include "train/train_internal.h"

#ifndef TG_TEST_SOURCE_DIR
#define TG_TEST_SOURCE_DIR "."
#endif

/* ---- fixtures ------------------------------------------------------------ */

/* n samples of 2 features in [-1, 1); y = 0.5 x0 - x1 + 0.25 (regression). */
static void regression(int64_t n, uint64_t seed, tg_tensor **x, tg_tensor **y)
{
    tg_rng rng = tg_rng_seeded(seed);
    *x = tg_tensor_uniform(TG_F32, TG_SHAPE(n, 2), -1, 1, &rng);
    *y = tg_tensor_zeros(TG_F32, TG_SHAPE(n, 1));
    ck_assert(*x && *y);
    const float *xv = tg_tensor_data(*x);
    float *yv = tg_tensor_data(*y);
    for (int64_t i = 0; i < n; i++)
        yv[i] = 0.5f * xv[2 * i] - xv[2 * i + 1] + 0.25f;
}

/* Two classes by the sign of x0 + x1. labels is malloc'd. */
static void classification(int64_t n, uint64_t seed, tg_tensor **x, int64_t **labels)
{
    tg_rng rng = tg_rng_seeded(seed);
    *x = tg_tensor_uniform(TG_F32, TG_SHAPE(n, 2), -1, 1, &rng);
    *labels = malloc((size_t)n * sizeof **labels);
    ck_assert(*x && *labels);
    const float *xv = tg_tensor_data(*x);
    for (int64_t i = 0; i < n; i++)
        (*labels)[i] = xv[2 * i] + xv[2 * i + 1] > 0;
}

/* 2 -> 8 tanh -> out (act), and an optimizer over it. */
static tg_model *mlp(int64_t out, tg_activation act)
{
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(2), TG_SCHEME_KERAS, 7);
    ck_assert_ptr_nonnull(m);
    ASSERT_OK(tg_model_add(m, tg_layer_dense(8, TG_ACT_TANH)));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(out, act)));
    return m;
}

static tg_optim *adam(tg_model *m, double lr)
{
    int n;
    tg_tensor *const *p = tg_model_params(m, &n);
    tg_adam_opts o = tg_adam_defaults();
    o.lr = lr;
    tg_optim *opt = tg_optim_adam(p, n, &o);
    ck_assert_ptr_nonnull(opt);
    return opt;
}

static tg_fit_opts quiet(int epochs)
{
    tg_fit_opts o = tg_fit_defaults();
    o.epochs = epochs;
    o.batch_size = 8;
    o.verbose = 0;
    o.seed = 3;
    return o;
}

/* Everything a fit could change, as one flat copy: parameters and the
 * optimizer's step count. */
typedef struct snapshot {
    double values[256];
    int64_t count, steps;
} snapshot;

static snapshot snap(const tg_model *m, const tg_optim *opt)
{
    snapshot s = {.steps = tg_optim_step_count(opt)};
    int n;
    tg_tensor *const *p = tg_model_params(m, &n);
    for (int i = 0; i < n; i++)
        for (int64_t k = 0; k < tg_tensor_numel(p[i]) && s.count < 256; k++)
            ASSERT_OK(tg_tensor_get_flat(p[i], k, &s.values[s.count++]));
    return s;
}

static void assert_unchanged(const snapshot *before, const tg_model *m, const tg_optim *opt)
{
    snapshot after = snap(m, opt);
    ck_assert_int_eq(after.steps, before->steps);
    ck_assert_int_eq(after.count, before->count);
    for (int64_t i = 0; i < after.count; i++)
        ck_assert_msg(after.values[i] == before->values[i], "parameter value %lld changed",
                      (long long)i);
}

static char *read_stream(FILE *f)
{
    long size = ftell(f);
    rewind(f);
    char *text = calloc((size_t)size + 1, 1);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(fread(text, 1, (size_t)size, f), (size_t)size);
    return text;
}

/* ---- fit ------------------------------------------------------------------ */

START_TEST(test_fit_regression_decreases_loss)
{
    tg_tensor *x, *y;
    regression(64, 1, &x, &y);
    tg_model *m = mlp(1, TG_ACT_NONE);
    tg_optim *opt = adam(m, 0.02);
    tg_fit_opts o = quiet(30);
    tg_history *h = NULL;
    ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, &h));
    ck_assert_int_eq(tg_history_len(h), 30);
    ck_assert_str_eq(tg_history_metric_name(h), "mae");
    ck_assert_int_eq(tg_history_stopped_epoch(h), 0);
    const tg_epoch_log *first = tg_history_epoch(h, 0), *last = tg_history_epoch(h, 29);
    ck_assert_int_eq(first->epoch, 1);
    ck_assert_int_eq(last->epoch, 30);
    ck_assert_msg(last->loss < 0.1 * first->loss, "loss %g -> %g", first->loss, last->loss);
    ck_assert(last->metric < first->metric);
    ck_assert(isnan(last->val_loss) && isnan(last->val_metric));
    ck_assert(last->seconds >= 0);
    // 64 / 8 = 8 steps per epoch.
    ck_assert_int_eq(tg_optim_step_count(opt), 30 * 8);
    // The History's loss is the mean over the epoch while the model changed;
    // evaluating the final model gives a loss of the same size.
    double loss, mae;
    ASSERT_OK(tg_evaluate(m, &(tg_data){.x = x, .targets = y}, &o, &loss, &mae));
    ck_assert_double_eq_tol(loss, last->loss, 0.5 * last->loss + 1e-3);
    tg_history_free(h);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

/* The loop is dtype-agnostic: a float64 model on float64 data trains too. */
START_TEST(test_fit_float64)
{
    tg_tensor *x32, *y32;
    regression(32, 24, &x32, &y32);
    tg_tensor *x = tg_tensor_clone_as(x32, TG_F64), *y = tg_tensor_clone_as(y32, TG_F64);
    tg_model *m = tg_model_new(TG_F64, TG_SHAPE(2), TG_SCHEME_KERAS, 7);
    ASSERT_OK(tg_model_add(m, tg_layer_dense(4, TG_ACT_TANH)));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(1, TG_ACT_NONE)));
    tg_optim *opt = adam(m, 0.02);
    tg_fit_opts o = quiet(10);
    tg_history *h = NULL;
    ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, &h));
    ck_assert(tg_history_epoch(h, 9)->loss < tg_history_epoch(h, 0)->loss);
    tg_tensor *p = NULL;
    ASSERT_OK(tg_predict(m, x, 5, &p));
    ck_assert_int_eq(tg_tensor_dtype(p), TG_F64);
    tg_tensor_free(p);
    tg_history_free(h);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_tensor_free(x32);
    tg_tensor_free(y32);
}
END_TEST

START_TEST(test_fit_classification_learns)
{
    tg_tensor *x;
    int64_t *labels;
    classification(128, 2, &x, &labels);
    tg_model *m = mlp(2, TG_ACT_SOFTMAX);
    tg_optim *opt = adam(m, 0.05);
    tg_fit_opts o = quiet(20);
    tg_history *h = NULL;
    ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .labels = labels}, &o, &h));
    ck_assert_str_eq(tg_history_metric_name(h), "accuracy");
    const tg_epoch_log *last = tg_history_epoch(h, 19);
    ck_assert_msg(last->metric > 0.9, "accuracy %g", last->metric);
    ck_assert(last->loss < tg_history_epoch(h, 0)->loss);
    tg_history_free(h);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    free(labels);
}
END_TEST

/* The same seeds give the same History, bit for bit; the epoch count and
 * history may be NULL. */
START_TEST(test_fit_deterministic_and_history_optional)
{
    tg_tensor *x, *y;
    regression(40, 4, &x, &y);
    double losses[2];
    for (int run = 0; run < 2; run++) {
        tg_model *m = mlp(1, TG_ACT_NONE);
        tg_optim *opt = adam(m, 0.01);
        tg_fit_opts o = quiet(3);
        tg_history *h = NULL;
        ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, &h));
        losses[run] = tg_history_epoch(h, 2)->loss;
        ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, NULL));
        tg_history_free(h);
        tg_optim_free(opt);
        tg_model_free(m);
    }
    ck_assert(losses[0] == losses[1]);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

START_TEST(test_fit_validation_split_and_data)
{
    tg_tensor *x;
    int64_t *labels;
    classification(100, 5, &x, &labels);
    tg_model *m = mlp(2, TG_ACT_SOFTMAX);
    tg_optim *opt = adam(m, 0.05);
    tg_fit_opts o = quiet(2);
    o.validation_split = 0.2; // 80 train (10 steps), the last 20 held out
    tg_history *h = NULL;
    tg_data all = {.x = x, .labels = labels};
    ASSERT_OK(tg_fit(m, opt, &all, &o, &h));
    ck_assert_int_eq(tg_optim_step_count(opt), 2 * 10);
    const tg_epoch_log *e = tg_history_epoch(h, 1);
    ck_assert(!isnan(e->val_loss) && e->val_metric >= 0 && e->val_metric <= 1);
    // The held-out part evaluated on its own gives the same numbers.
    tg_tensor *xv = tg_tensor_zeros(TG_F32, TG_SHAPE(20, 2));
    memcpy(tg_tensor_data(xv), (const float *)tg_tensor_data(x) + 160, 40 * sizeof(float));
    tg_data val = {.x = xv, .labels = labels + 80};
    double loss, acc;
    ASSERT_OK(tg_evaluate(m, &val, &o, &loss, &acc));
    ck_assert_double_eq_tol(loss, e->val_loss, 1e-6);
    ck_assert_double_eq_tol(acc, e->val_metric, 1e-12);
    tg_history_free(h);
    // validation_data instead: all 100 samples train (13 steps).
    o.validation_split = 0;
    o.validation_data = &val;
    ASSERT_OK(tg_fit(m, opt, &all, &o, &h));
    ck_assert_int_eq(tg_optim_step_count(opt), 2 * 10 + 2 * 13);
    ASSERT_OK(tg_evaluate(m, &val, &o, &loss, &acc));
    ck_assert_double_eq_tol(loss, tg_history_epoch(h, 1)->val_loss, 1e-6);
    tg_history_free(h);
    tg_tensor_free(xv);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    free(labels);
}
END_TEST

/* Issue 8 item 4: a dataset's 8-bit pixels, converted per batch, train and
 * evaluate to the same bits as the float tensor of tg_dataset_images. */
static tg_model *mnist_linear(tg_dtype dt)
{
    tg_model *m = tg_model_new(dt, TG_SHAPE(1, 28, 28), TG_SCHEME_KERAS, 5);
    ck_assert_ptr_nonnull(m);
    ASSERT_OK(tg_model_add(m, tg_layer_flatten()));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(10, TG_ACT_SOFTMAX)));
    return m;
}

static bool same_params(const tg_model *a, const tg_model *b)
{
    int na, nb;
    tg_tensor *const *pa = tg_model_params(a, &na), *const *pb = tg_model_params(b, &nb);
    bool same = na == nb;
    for (int i = 0; same && i < na; i++)
        same = memcmp(tg_tensor_data(pa[i]), tg_tensor_data(pb[i]),
                      (size_t)tg_tensor_numel(pa[i]) *
                          tg_dtype_size(tg_tensor_dtype(pa[i]))) == 0;
    return same;
}

START_TEST(test_fit_dataset_bytes)
{
    tg_dtype dt = _i ? TG_F64 : TG_F32;
    tg_dataset *ds = tg_mnist_load(TG_TEST_DATA_DIR, dt);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    const int64_t *labels = tg_dataset_labels(ds, TG_SPLIT_TEST);
    tg_model *m[2] = {mnist_linear(dt), mnist_linear(dt)};
    tg_optim *opt[2] = {adam(m[0], 1e-3), adam(m[1], 1e-3)};
    tg_fit_opts o = quiet(1); // small enough for ASan on a loaded machine
    o.batch_size = 64;
    o.validation_split = 0.1; // the held-out tail of the bytes, without a copy
    tg_data bytes = {.dataset = ds, .split = TG_SPLIT_TEST, .labels = labels};
    tg_data floats = {.x = tg_dataset_images(ds, TG_SPLIT_TEST), .labels = labels};
    tg_history *h[2] = {NULL, NULL};
    ASSERT_OK(tg_fit(m[0], opt[0], &bytes, &o, &h[0]));
    ASSERT_OK(tg_fit(m[1], opt[1], &floats, &o, &h[1]));
    ck_assert(same_params(m[0], m[1]));
    const tg_epoch_log *a = tg_history_epoch(h[0], 0), *b = tg_history_epoch(h[1], 0);
    ck_assert(a->loss == b->loss && a->metric == b->metric);
    ck_assert(a->val_loss == b->val_loss && a->val_metric == b->val_metric);
    double l[2], acc[2];
    ASSERT_OK(tg_evaluate(m[0], &bytes, &o, &l[0], &acc[0]));
    ASSERT_OK(tg_evaluate(m[1], &floats, &o, &l[1], &acc[1]));
    ck_assert(l[0] == l[1] && acc[0] == acc[1]);
    ck_assert(acc[0] > 0.3); // it learnt (chance is 0.1)
    // validation_data in the dataset form too.
    o.validation_split = 0;
    o.validation_data = &bytes;
    tg_history_free(h[0]);
    ASSERT_OK(tg_fit(m[0], opt[0], &bytes, &o, &h[0]));
    ck_assert(tg_history_epoch(h[0], 0)->val_metric > 0.3);
    for (int i = 0; i < 2; i++) {
        tg_history_free(h[i]);
        tg_optim_free(opt[i]);
        tg_model_free(m[i]);
    }
    tg_dataset_free(ds);
}
END_TEST

START_TEST(test_fit_dataset_errors)
{
    tg_dataset *ds = tg_mnist_load(TG_TEST_DATA_DIR, TG_F32);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    const int64_t *labels = tg_dataset_labels(ds, TG_SPLIT_TEST);
    tg_model *m = mnist_linear(TG_F32);
    tg_optim *opt = adam(m, 1e-3);
    tg_fit_opts o = quiet(1);
    snapshot before = snap(m, opt);
    tg_data d = {.dataset = ds, .split = TG_SPLIT_TEST, .labels = labels,
                 .x = tg_dataset_images(ds, TG_SPLIT_TEST)};
    ASSERT_FAIL(tg_fit(m, opt, &d, &o, NULL), TG_EINVAL,
                "tg_fit: data has both x and dataset (set one)");
    d.x = NULL;
    d.split = (tg_split)4;
    ASSERT_FAIL(tg_fit(m, opt, &d, &o, NULL), TG_EINVAL,
                "tg_fit: data.split 4 is neither TG_SPLIT_TRAIN nor TG_SPLIT_TEST");
    d.split = TG_SPLIT_TEST;
    d.labels = NULL;
    ASSERT_FAIL(tg_evaluate(m, &d, &o, NULL, NULL), TG_EINVAL,
                "tg_evaluate: data has neither labels and targets");
    d.labels = labels;
    tg_model *m64 = mnist_linear(TG_F64);
    ASSERT_FAIL(tg_evaluate(m64, &d, &o, NULL, NULL), TG_EDTYPE,
                "tg_evaluate: data.dataset is float32 but the model is float64");
    tg_model *small = tg_model_new(TG_F32, TG_SHAPE(1, 14, 14), TG_SCHEME_KERAS, 5);
    ASSERT_OK(tg_model_add(small, tg_layer_flatten()));
    ASSERT_OK(tg_model_add(small, tg_layer_dense(10, TG_ACT_SOFTMAX)));
    ASSERT_FAIL(tg_evaluate(small, &d, &o, NULL, NULL), TG_ESHAPE,
                "tg_evaluate: data.dataset's images are 2000x1x28x28, expected "
                "(N, 1, 14, 14)");
    tg_fit_opts ov = o;
    tg_data bad = {.dataset = ds, .split = (tg_split)-1, .labels = labels};
    ov.validation_data = &bad;
    ASSERT_FAIL(tg_fit(m, opt, &d, &ov, NULL), TG_EINVAL, "tg_fit: validation_data.split -1");
    assert_unchanged(&before, m, opt);
    tg_model_free(small);
    tg_model_free(m64);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_dataset_free(ds);
}
END_TEST

/* Allocations per step of tg_fit on a dataset's bytes: none after the first
 * (the batch buffers are the batcher's, the conversion table its own). */
typedef struct alloc_watch {
    long last;
    int64_t steps, steps_allocating;
} alloc_watch;

static int watch_allocs(const tg_fit_state *s, void *ctx)
{
    alloc_watch *w = ctx;
    if (s->event != TG_FIT_BATCH_END)
        return TG_FIT_CONTINUE;
    long now = tg__alloc_count();
    if (w->steps++ > 0 && now != w->last)
        w->steps_allocating++;
    w->last = tg__alloc_count();
    return TG_FIT_CONTINUE;
}

START_TEST(test_fit_dataset_no_allocs_per_step)
{
    tg_dataset *ds = tg_mnist_load(TG_TEST_DATA_DIR, TG_F32);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    tg_model *m = mnist_linear(TG_F32);
    tg_optim *opt = adam(m, 1e-3);
    tg_fit_opts o = quiet(2);
    o.batch_size = 64; // 31 full batches and a tail of 16 per epoch
    alloc_watch w = {0};
    tg_callback cb = {watch_allocs, &w};
    o.callbacks = &cb;
    o.n_callbacks = 1;
    tg_data d = {.dataset = ds, .split = TG_SPLIT_TEST,
                 .labels = tg_dataset_labels(ds, TG_SPLIT_TEST)};
    ASSERT_OK(tg_fit(m, opt, &d, &o, NULL));
    ck_assert_int_eq(w.steps, 2 * 32);
    ck_assert_int_eq(w.steps_allocating, 0);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_dataset_free(ds);
}
END_TEST

START_TEST(test_fit_metric_none)
{
    tg_tensor *x, *y;
    regression(16, 6, &x, &y);
    tg_model *m = mlp(1, TG_ACT_NONE);
    tg_optim *opt = adam(m, 0.01);
    tg_fit_opts o = quiet(1);
    o.metric = TG_METRIC_NONE;
    tg_history *h = NULL;
    ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, &h));
    ck_assert_str_eq(tg_history_metric_name(h), "");
    ck_assert(isnan(tg_history_epoch(h, 0)->metric));
    double loss = 0, metric = 0;
    ASSERT_OK(tg_evaluate(m, &(tg_data){.x = x, .targets = y}, &o, &loss, &metric));
    ck_assert(isnan(metric) && loss > 0);
    tg_history_free(h);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

/* ---- callbacks ------------------------------------------------------------- */

typedef struct counter {
    int begin, batches, epochs, end;
    int stop_at_epoch;  /* 0: never */
    int64_t stop_at_batch; /* in epoch 1; 0: never */
    int fail_at_epoch;  /* 0: never */
    int bad_return;
    double last_batch_loss;
} counter;

static int count_cb(const tg_fit_state *s, void *ctx)
{
    counter *c = ctx;
    switch (s->event) {
    case TG_FIT_BEGIN:
        c->begin++;
        ck_assert_int_eq(s->epoch, 0);
        ck_assert_ptr_null(s->log);
        break;
    case TG_FIT_BATCH_END:
        c->batches++;
        ck_assert(s->batch >= 1 && s->batch <= s->batches);
        c->last_batch_loss = s->batch_loss;
        if (c->stop_at_batch && s->batch == c->stop_at_batch)
            return TG_FIT_STOP;
        break;
    case TG_FIT_EPOCH_END:
        c->epochs++;
        ck_assert_ptr_nonnull(s->log);
        ck_assert_int_eq(s->log->epoch, s->epoch);
        if (c->fail_at_epoch == s->epoch)
            return tg_set_error(TG_EIO, "disk full at epoch %d", s->epoch);
        if (c->bad_return)
            return c->bad_return;
        if (c->stop_at_epoch == s->epoch)
            return TG_FIT_STOP;
        break;
    case TG_FIT_END:
        c->end++;
        break;
    }
    return TG_FIT_CONTINUE;
}

START_TEST(test_callbacks_called_and_stop_at_epoch)
{
    tg_tensor *x, *y;
    regression(20, 7, &x, &y);
    tg_model *m = mlp(1, TG_ACT_NONE);
    tg_optim *opt = adam(m, 0.01);
    counter c = {.stop_at_epoch = 2};
    tg_callback cb = {count_cb, &c};
    tg_fit_opts o = quiet(5);
    o.callbacks = &cb;
    o.n_callbacks = 1;
    tg_history *h = NULL;
    ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, &h));
    // 20 / 8: 3 batches an epoch, two epochs.
    ck_assert_int_eq(c.begin, 1);
    ck_assert_int_eq(c.batches, 6);
    ck_assert_int_eq(c.epochs, 2);
    ck_assert_int_eq(c.end, 1);
    ck_assert_int_eq(tg_history_len(h), 2);
    ck_assert_int_eq(tg_history_stopped_epoch(h), 2);
    ck_assert(isfinite(c.last_batch_loss));
    tg_history_free(h);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

START_TEST(test_callbacks_stop_at_batch)
{
    tg_tensor *x, *y;
    regression(40, 8, &x, &y);
    tg_model *m = mlp(1, TG_ACT_NONE);
    tg_optim *opt = adam(m, 0.01);
    counter c = {.stop_at_batch = 2};
    tg_callback cb = {count_cb, &c};
    tg_fit_opts o = quiet(3);
    o.callbacks = &cb;
    o.n_callbacks = 1;
    FILE *f = tmpfile();
    o.stream = f;
    o.verbose = 1;
    tg_history *h = NULL;
    ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, &h));
    ck_assert_int_eq(c.batches, 2);
    ck_assert_int_eq(tg_optim_step_count(opt), 2);
    ck_assert_int_eq(tg_history_len(h), 1);
    ck_assert_int_eq(tg_history_stopped_epoch(h), 1);
    char *text = read_stream(f);
    ck_assert_msg(strstr(text, "Epoch 1/3\n2/5 [============..................] - "), "%s", text);
    ck_assert_ptr_null(strstr(text, "Epoch 2/3"));
    free(text);
    fclose(f);
    tg_history_free(h);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

START_TEST(test_callbacks_error_and_bad_return)
{
    tg_tensor *x, *y;
    regression(16, 9, &x, &y);
    tg_model *m = mlp(1, TG_ACT_NONE);
    tg_optim *opt = adam(m, 0.01);
    counter c = {.fail_at_epoch = 2};
    tg_callback cbs[2] = {{count_cb, &(counter){0}}, {count_cb, &c}};
    tg_fit_opts o = quiet(4);
    o.callbacks = cbs;
    o.n_callbacks = 2;
    tg_history *h = (tg_history *)&c; // a sentinel: must stay untouched
    ASSERT_FRESH_FAIL(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, &h), TG_EIO,
                      "tg_fit: callback 1 at epoch 2: disk full at epoch 2");
    ck_assert_ptr_eq(h, (tg_history *)&c);
    ck_assert_int_eq(c.end, 0);
    c = (counter){.bad_return = 7};
    ASSERT_FRESH_FAIL(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, &h), TG_EINVAL,
                      "tg_fit: callback 1 returned 7 (expected TG_FIT_CONTINUE, TG_FIT_STOP "
                      "or a negative status)");
    ck_assert_ptr_eq(h, (tg_history *)&c);
    // Grad mode and training mode are back after a failure too.
    ck_assert(tg_grad_enabled());
    ck_assert(tg_model_training(m));
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

/* ---- early stopping and save-best -------------------------------------------- */

/* With lr 0 nothing improves after the first epoch. */
START_TEST(test_early_stopping_patience)
{
    tg_tensor *x, *y;
    regression(16, 10, &x, &y);
    tg_model *m = mlp(1, TG_ACT_NONE);
    tg_optim *opt = adam(m, 0.0);
    for (int patience = 0; patience <= 3; patience++) {
        tg_early_stopping es = tg_early_stopping_defaults();
        es.monitor = TG_MONITOR_LOSS;
        es.patience = patience;
        tg_callback cb = tg_early_stopping_callback(&es);
        tg_fit_opts o = quiet(10);
        o.shuffle = false; // the same batches every epoch: the same loss
        o.callbacks = &cb;
        o.n_callbacks = 1;
        tg_history *h = NULL;
        ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, &h));
        int expect = 1 + (patience > 1 ? patience : 1);
        ck_assert_int_eq(tg_history_len(h), expect);
        ck_assert_int_eq(es.stopped_epoch, expect);
        ck_assert_int_eq(es.best_epoch, 1);
        ck_assert_int_eq(tg_history_stopped_epoch(h), expect);
        ck_assert(es.best == tg_history_epoch(h, 0)->loss);
        tg_history_free(h);
    }
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

/* While the validation loss improves, training runs to the end; a huge
 * min_delta turns every epoch after the first into "no improvement". */
START_TEST(test_early_stopping_val_loss_min_delta)
{
    tg_tensor *x, *y;
    regression(64, 11, &x, &y);
    tg_model *m = mlp(1, TG_ACT_NONE);
    tg_optim *opt = adam(m, 0.01);
    tg_early_stopping es = tg_early_stopping_defaults();
    es.patience = 2;
    tg_callback cb = tg_early_stopping_callback(&es);
    tg_fit_opts o = quiet(4);
    o.validation_split = 0.25;
    o.callbacks = &cb;
    o.n_callbacks = 1;
    tg_history *h = NULL;
    ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, &h));
    ck_assert_int_eq(tg_history_len(h), 4);
    ck_assert_int_eq(es.stopped_epoch, 0);
    ck_assert_int_eq(es.best_epoch, 4);
    tg_history_free(h);
    es.min_delta = 1e9;
    ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, &h));
    ck_assert_int_eq(tg_history_len(h), 3);
    ck_assert_int_eq(es.best_epoch, 1);
    tg_history_free(h);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

/* Accuracy is watched upwards. */
START_TEST(test_early_stopping_accuracy_mode)
{
    tg_tensor *x;
    int64_t *labels;
    classification(64, 12, &x, &labels);
    tg_model *m = mlp(2, TG_ACT_SOFTMAX);
    tg_optim *opt = adam(m, 0.0);
    tg_early_stopping es = tg_early_stopping_defaults();
    es.monitor = TG_MONITOR_METRIC;
    tg_callback cb = tg_early_stopping_callback(&es);
    tg_fit_opts o = quiet(5);
    o.shuffle = false; // the same sums in the same order: exactly the same accuracy
    o.callbacks = &cb;
    o.n_callbacks = 1;
    ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .labels = labels}, &o, NULL));
    ck_assert_int_eq(es.stopped_epoch, 2);
    ck_assert(es.best >= 0 && es.best <= 1); // not -inf: the first epoch counted
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    free(labels);
}
END_TEST

START_TEST(test_early_stopping_errors)
{
    tg_tensor *x, *y;
    regression(16, 13, &x, &y);
    tg_model *m = mlp(1, TG_ACT_NONE);
    tg_optim *opt = adam(m, 0.01);
    snapshot before = snap(m, opt);
    tg_early_stopping es = tg_early_stopping_defaults();
    tg_callback cb = tg_early_stopping_callback(&es);
    tg_fit_opts o = quiet(2);
    o.callbacks = &cb;
    o.n_callbacks = 1;
    tg_data d = {.x = x, .targets = y};
    ASSERT_FRESH_FAIL(tg_fit(m, opt, &d, &o, NULL), TG_EINVAL,
                      "tg_fit: callback 0 at epoch 0: tg_early_stopping: monitor val_loss "
                      "needs validation data (opts.validation_split or opts.validation_data)");
    es.monitor = TG_MONITOR_VAL_METRIC;
    ASSERT_FRESH_FAIL(tg_fit(m, opt, &d, &o, NULL), TG_EINVAL, "monitor val_mae needs validation");
    es.monitor = TG_MONITOR_METRIC;
    o.metric = TG_METRIC_NONE;
    ASSERT_FRESH_FAIL(tg_fit(m, opt, &d, &o, NULL), TG_EINVAL,
                      "tg_early_stopping: monitor metric needs a metric (opts.metric is "
                      "TG_METRIC_NONE)");
    o.metric = TG_METRIC_AUTO;
    es.monitor = (tg_monitor)9;
    ASSERT_FRESH_FAIL(tg_fit(m, opt, &d, &o, NULL), TG_EINVAL, "tg_early_stopping: monitor 9 unknown");
    es.monitor = TG_MONITOR_LOSS;
    es.patience = -1;
    ASSERT_FRESH_FAIL(tg_fit(m, opt, &d, &o, NULL), TG_EINVAL, "tg_early_stopping: patience -1 < 0");
    es.patience = 0;
    es.min_delta = -0.5;
    ASSERT_FRESH_FAIL(tg_fit(m, opt, &d, &o, NULL), TG_EINVAL,
                      "tg_early_stopping: min_delta -0.5 is not a finite value >= 0");
    es.min_delta = NAN;
    ASSERT_FRESH_FAIL(tg_fit(m, opt, &d, &o, NULL), TG_EINVAL, "min_delta nan");
    assert_unchanged(&before, m, opt);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

typedef struct saver {
    int calls;
    int fail_at_call; /* 1-based; 0 never */
    double saved_first_param;
} saver;

static tg_status save_fn(tg_model *model, const char *path, void *ctx)
{
    saver *s = ctx;
    ck_assert_str_eq(path, "best.safetensors");
    if (++s->calls == s->fail_at_call)
        return tg_set_error(TG_EIO, "cannot write %s", path);
    int n;
    ASSERT_OK(tg_tensor_get_flat(tg_model_params(model, &n)[0], 0, &s->saved_first_param));
    return TG_OK;
}

START_TEST(test_save_best)
{
    tg_tensor *x, *y;
    regression(64, 14, &x, &y);
    tg_model *m = mlp(1, TG_ACT_NONE);
    tg_optim *opt = adam(m, 0.01);
    saver sv = {0};
    tg_save_best sb = tg_save_best_defaults("best.safetensors", save_fn, &sv);
    sb.monitor = TG_MONITOR_LOSS;
    tg_callback cb = tg_save_best_callback(&sb);
    tg_fit_opts o = quiet(3);
    o.callbacks = &cb;
    o.n_callbacks = 1;
    tg_data d = {.x = x, .targets = y};
    ASSERT_OK(tg_fit(m, opt, &d, &o, NULL));
    // Improving every epoch: saved every epoch, the last save the final model.
    ck_assert_int_eq(sv.calls, 3);
    ck_assert_int_eq(sb.saves, 3);
    ck_assert_int_eq(sb.best_epoch, 3);
    double now;
    int n;
    ASSERT_OK(tg_tensor_get_flat(tg_model_params(m, &n)[0], 0, &now));
    ck_assert(now == sv.saved_first_param);
    // No improvement after the first epoch: one save.
    ASSERT_OK(tg_optim_set_lr(opt, 0));
    sv = (saver){0};
    o.shuffle = false;
    ASSERT_OK(tg_fit(m, opt, &d, &o, NULL));
    ck_assert_int_eq(sv.calls, 1);
    ck_assert_int_eq(sb.best_epoch, 1);
    // A failing save fails the fit with its message.
    ASSERT_OK(tg_optim_set_lr(opt, 0.01));
    sv = (saver){.fail_at_call = 2};
    ASSERT_FRESH_FAIL(tg_fit(m, opt, &d, &o, NULL), TG_EIO,
                      "tg_fit: callback 0 at epoch 2: tg_save_best: saving best.safetensors "
                      "failed: cannot write best.safetensors");
    // Bad settings, before anything trains.
    snapshot before = snap(m, opt);
    sb.path = NULL;
    ASSERT_FRESH_FAIL(tg_fit(m, opt, &d, &o, NULL), TG_EINVAL, "tg_save_best: NULL path");
    sb.path = "best.safetensors";
    sb.monitor = TG_MONITOR_VAL_LOSS;
    ASSERT_FRESH_FAIL(tg_fit(m, opt, &d, &o, NULL), TG_EINVAL,
                      "tg_save_best: monitor val_loss needs validation data");
    assert_unchanged(&before, m, opt);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

/* With no save function the best model goes to a safetensors file
 * (tg_model_save) that tg_model_load reads back. */
START_TEST(test_save_best_default_writes_safetensors)
{
    tg_tensor *x, *y;
    regression(64, 22, &x, &y);
    tg_model *m = mlp(1, TG_ACT_NONE);
    tg_optim *opt = adam(m, 0.01);
    const char *path = TG_TEST_BUILD_DIR "/check_train_best.safetensors";
    remove(path);
    tg_save_best sb = tg_save_best_defaults(path, NULL, NULL);
    sb.monitor = TG_MONITOR_LOSS;
    tg_callback cb = tg_save_best_callback(&sb);
    tg_fit_opts o = quiet(2);
    o.callbacks = &cb;
    o.n_callbacks = 1;
    ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, NULL));
    ck_assert_int_eq(sb.best_epoch, 2);
    tg_model *back = mlp(1, TG_ACT_NONE);
    ASSERT_OK(tg_model_load(back, path));
    tg_tensor *p1 = NULL, *p2 = NULL;
    ASSERT_OK(tg_predict(m, x, 64, &p1));
    ASSERT_OK(tg_predict(back, x, 64, &p2));
    ck_assert_mem_eq(tg_tensor_data(p1), tg_tensor_data(p2), 64 * sizeof(float));
    remove(path);
    tg_tensor_free(p1);
    tg_tensor_free(p2);
    tg_model_free(back);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

/* ---- resuming ---------------------------------------------------------------------- */

static tg_model *dropout_mlp(void)
{
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(2), TG_SCHEME_KERAS, 9);
    ASSERT_OK(tg_model_add(m, tg_layer_dense(8, TG_ACT_RELU)));
    ASSERT_OK(tg_model_add(m, tg_layer_dropout(0.25)));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(1, TG_ACT_NONE)));
    return m;
}

/* Three epochs in one go equal one epoch, a training checkpoint, and two
 * more epochs with initial_epoch 1 on freshly made objects, bit for bit
 * (shuffling, dropout and Adam's state included). */
START_TEST(test_fit_resume_bitwise)
{
    tg_tensor *x, *y;
    regression(40, 23, &x, &y);
    tg_data d = {.x = x, .targets = y};
    tg_fit_opts o = quiet(3);
    tg_model *whole = dropout_mlp();
    tg_optim *whole_opt = adam(whole, 0.01);
    tg_history *hw = NULL;
    ASSERT_OK(tg_fit(whole, whole_opt, &d, &o, &hw));

    const char *path = TG_TEST_BUILD_DIR "/check_train_resume.safetensors";
    tg_model *first = dropout_mlp();
    tg_optim *first_opt = adam(first, 0.01);
    o.epochs = 1;
    ASSERT_OK(tg_fit(first, first_opt, &d, &o, NULL));
    ASSERT_OK(tg_checkpoint_save(path, &(tg_train_state){.model = first, .optim = first_opt,
                                                         .epoch = 1}));
    tg_model *rest = dropout_mlp();
    tg_optim *rest_opt = adam(rest, 0.01);
    tg_train_state st = {.model = rest, .optim = rest_opt};
    ASSERT_OK(tg_checkpoint_load(path, &st));
    ck_assert_int_eq(st.epoch, 1);
    o.epochs = 3;
    o.initial_epoch = (int)st.epoch;
    tg_history *hr = NULL;
    ASSERT_OK(tg_fit(rest, rest_opt, &d, &o, &hr));
    ck_assert_int_eq(tg_history_len(hr), 2);
    ck_assert_int_eq(tg_history_epoch(hr, 0)->epoch, 2);
    ck_assert(tg_history_epoch(hr, 1)->loss == tg_history_epoch(hw, 2)->loss);
    snapshot a = snap(whole, whole_opt), b = snap(rest, rest_opt);
    ck_assert_int_eq(a.steps, b.steps);
    ck_assert_mem_eq(a.values, b.values, (size_t)a.count * sizeof a.values[0]);
    remove(path);
    tg_history_free(hw);
    tg_history_free(hr);
    tg_optim_free(whole_opt);
    tg_optim_free(first_opt);
    tg_optim_free(rest_opt);
    tg_model_free(whole);
    tg_model_free(first);
    tg_model_free(rest);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

/* ---- evaluate / predict --------------------------------------------------------- */

START_TEST(test_evaluate_and_predict_restore_modes)
{
    tg_tensor *x, *y;
    regression(10, 15, &x, &y);
    tg_model *m = mlp(1, TG_ACT_NONE);
    tg_optim *opt = adam(m, 0.01);
    // The caller's tape, with a tensor on it, and no-grad, evaluation mode.
    tg_tape *mine = tg_tape_new();
    tg_tensor *kept = tg_add_scalar(x, 1.0);
    ck_assert_ptr_nonnull(kept);
    double kept0;
    ASSERT_OK(tg_tensor_get_flat(kept, 0, &kept0));
    for (int grad = 0; grad <= 1; grad++)
        for (int training = 0; training <= 1; training++) {
            tg_set_grad_enabled(grad);
            tg_model_set_training(m, training);
            double loss, mae;
            ASSERT_OK(tg_evaluate(m, &(tg_data){.x = x, .targets = y}, NULL, &loss, &mae));
            ck_assert(tg_grad_enabled() == (bool)grad);
            ck_assert(tg_model_training(m) == (bool)training);
            tg_tensor *p = NULL;
            ASSERT_OK(tg_predict(m, x, 3, &p));
            ck_assert(tg_grad_enabled() == (bool)grad);
            ck_assert(tg_model_training(m) == (bool)training);
            tg_tensor_free(p);
            tg_fit_opts o = quiet(1);
            ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, NULL));
            ck_assert(tg_grad_enabled() == (bool)grad);
            ck_assert(tg_model_training(m) == (bool)training);
            ck_assert_ptr_eq(tg_tape_current(), mine);
        }
    double again;
    ASSERT_OK(tg_tensor_get_flat(kept, 0, &again));
    ck_assert(again == kept0);
    tg_set_grad_enabled(true);
    tg_tape_free(mine);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

/* Dropout shows whether evaluation mode is on: predictions must be the
 * deterministic forward in evaluation mode, whatever mode the model was in. */
START_TEST(test_predict_matches_forward)
{
    tg_tensor *x;
    int64_t *labels;
    classification(11, 16, &x, &labels);
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(2), TG_SCHEME_KERAS, 7);
    ASSERT_OK(tg_model_add(m, tg_layer_dense(8, TG_ACT_RELU)));
    ASSERT_OK(tg_model_add(m, tg_layer_dropout(0.5)));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(3, TG_ACT_SOFTMAX)));
    tg_tensor *p = NULL;
    ASSERT_OK(tg_predict(m, x, 4, &p));
    ck_assert_int_eq(tg_tensor_ndim(p), 2);
    ck_assert_int_eq(tg_tensor_dim(p, 0), 11);
    ck_assert_int_eq(tg_tensor_dim(p, 1), 3);
    ck_assert(!tg_tensor_on_tape(p));
    tg_tape *tape = tg_tape_new();
    tg_model_set_training(m, false);
    tg_tensor *want = tg_model_forward(m, (tg_tensor *)x, false);
    ck_assert_ptr_nonnull(want);
    for (int64_t i = 0; i < 33; i++) {
        double a, b;
        ASSERT_OK(tg_tensor_get_flat(p, i, &a));
        ASSERT_OK(tg_tensor_get_flat(want, i, &b));
        ck_assert_double_eq_tol(a, b, 1e-6);
    }
    // evaluate's accuracy is tg_accuracy on those predictions.
    double loss, acc;
    for (int64_t i = 0; i < 11; i++)
        labels[i] = i % 3;
    ASSERT_OK(tg_evaluate(m, &(tg_data){.x = x, .labels = labels}, NULL, &loss, &acc));
    ck_assert_double_eq_tol(acc, tg_accuracy(want, labels, 11), 1e-12);
    tg_tape_free(tape);
    tg_tensor_free(p);
    tg_model_free(m);
    tg_tensor_free(x);
    free(labels);
}
END_TEST

START_TEST(test_evaluate_predict_errors)
{
    tg_tensor *x, *y;
    regression(6, 17, &x, &y);
    tg_model *m = mlp(1, TG_ACT_NONE);
    tg_model *empty = tg_model_new(TG_F32, TG_SHAPE(2), TG_SCHEME_KERAS, 1);
    tg_data d = {.x = x, .targets = y};
    double loss = 42, metric = 43;
    ASSERT_FRESH_FAIL(tg_evaluate(NULL, &d, NULL, &loss, &metric), TG_EINVAL,
                      "tg_evaluate: NULL model");
    ASSERT_FRESH_FAIL(tg_evaluate(empty, &d, NULL, &loss, &metric), TG_ESTATE,
                      "tg_evaluate: the model has no layers");
    ASSERT_FRESH_FAIL(tg_evaluate(m, NULL, NULL, &loss, &metric), TG_EINVAL,
                      "tg_evaluate: NULL data");
    tg_fit_opts o = tg_fit_defaults();
    o.batch_size = 0;
    ASSERT_FRESH_FAIL(tg_evaluate(m, &d, &o, &loss, &metric), TG_EINVAL,
                      "tg_evaluate: opts.batch_size 0 < 1");
    o = tg_fit_defaults();
    o.metric = (tg_metric)5;
    ASSERT_FRESH_FAIL(tg_evaluate(m, &d, &o, &loss, &metric), TG_EINVAL,
                      "tg_evaluate: opts.metric 5 unknown");
    ASSERT_FRESH_FAIL(tg_evaluate(m, &(tg_data){.x = y, .targets = y}, NULL, &loss, &metric),
                      TG_ESHAPE, "tg_evaluate: data.x is 6x1, expected (N, 2)");
    ck_assert(loss == 42 && metric == 43);
    ASSERT_OK(tg_evaluate(m, &d, NULL, NULL, NULL));

    tg_tensor *out = (tg_tensor *)&d; // sentinel
    ASSERT_FRESH_FAIL(tg_predict(NULL, x, 4, &out), TG_EINVAL, "tg_predict: NULL model");
    ASSERT_FRESH_FAIL(tg_predict(empty, x, 4, &out), TG_ESTATE,
                      "tg_predict: the model has no layers");
    ASSERT_FRESH_FAIL(tg_predict(m, x, 4, NULL), TG_EINVAL, "tg_predict: NULL out");
    ASSERT_FRESH_FAIL(tg_predict(m, x, 0, &out), TG_EINVAL, "tg_predict: batch_size 0 < 1");
    ASSERT_FRESH_FAIL(tg_predict(m, NULL, 4, &out), TG_EINVAL, "tg_predict: x is NULL");
    tg_tensor *x64 = tg_tensor_clone_as(x, TG_F64);
    ASSERT_FRESH_FAIL(tg_predict(m, x64, 4, &out), TG_EDTYPE,
                      "tg_predict: x is float64 but the model is float32");
    tg_tensor *none = tg_tensor_zeros(TG_F32, TG_SHAPE(0, 2));
    ASSERT_FRESH_FAIL(tg_predict(m, none, 4, &out), TG_EINVAL, "tg_predict: x has 0 samples");
    ck_assert_ptr_eq(out, (tg_tensor *)&d);
    tg_tensor_free(none);
    tg_tensor_free(x64);
    tg_model_free(empty);
    tg_model_free(m);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

/* ---- fit's error paths ------------------------------------------------------------- */

START_TEST(test_fit_errors)
{
    tg_tensor *x, *y;
    regression(8, 18, &x, &y);
    int64_t labels[8] = {0, 1, 0, 1, 5, 1, 0, 1};
    tg_model *m = mlp(1, TG_ACT_NONE);
    tg_model *cls = mlp(2, TG_ACT_SOFTMAX);
    tg_model *other = mlp(1, TG_ACT_NONE);
    tg_model *empty = tg_model_new(TG_F32, TG_SHAPE(2), TG_SCHEME_KERAS, 1);
    tg_optim *opt = adam(m, 0.01), *opt_cls = adam(cls, 0.01), *opt_other = adam(other, 0.1);
    snapshot before = snap(m, opt), before_cls = snap(cls, opt_cls);
    tg_data d = {.x = x, .targets = y};
    tg_fit_opts o = quiet(1);
    tg_history *h = (tg_history *)&d; // sentinel
#define FIT_FAILS(model, optim, data, code, text)                                            \
    ASSERT_FRESH_FAIL(tg_fit(model, optim, data, &o, &h), code, text)
    FIT_FAILS(NULL, opt, &d, TG_EINVAL, "tg_fit: NULL model");
    FIT_FAILS(m, NULL, &d, TG_EINVAL, "tg_fit: NULL optim");
    FIT_FAILS(empty, opt, &d, TG_ESTATE, "tg_fit: the model has no layers");
    FIT_FAILS(m, opt, NULL, TG_EINVAL, "tg_fit: NULL data");
    FIT_FAILS(m, opt_other, &d, TG_EINVAL,
              "tg_fit: the optimizer (adam, 4 params) updates none of the model's 4 parameters");
    FIT_FAILS(m, opt, &((tg_data){.targets = y}), TG_EINVAL, "tg_fit: data.x is NULL");
    FIT_FAILS(m, opt, &((tg_data){.x = x}), TG_EINVAL,
              "tg_fit: data has neither labels and targets (set exactly one)");
    FIT_FAILS(m, opt, &((tg_data){.x = x, .targets = y, .labels = labels}), TG_EINVAL,
              "tg_fit: data has both labels and targets");
    tg_tensor *x64 = tg_tensor_clone_as(x, TG_F64), *y64 = tg_tensor_clone_as(y, TG_F64);
    FIT_FAILS(m, opt, &((tg_data){.x = x64, .targets = y}), TG_EDTYPE,
              "tg_fit: data.x is float64 but the model is float32");
    FIT_FAILS(m, opt, &((tg_data){.x = x, .targets = y64}), TG_EDTYPE,
              "tg_fit: data.targets are float64 but the model is float32");
    FIT_FAILS(m, opt, &((tg_data){.x = y, .targets = y}), TG_ESHAPE,
              "tg_fit: data.x is 8x1, expected (N, 2)");
    FIT_FAILS(m, opt, &((tg_data){.x = x, .targets = x}), TG_ESHAPE,
              "tg_fit: data.targets are 8x2, expected (8, 1) (x's samples, the model's output)");
    tg_tensor *y7 = tg_tensor_zeros(TG_F32, TG_SHAPE(7, 1));
    FIT_FAILS(m, opt, &((tg_data){.x = x, .targets = y7}), TG_ESHAPE,
              "tg_fit: data.targets are 7x1, expected (8, 1)");
    tg_tensor *none = tg_tensor_zeros(TG_F32, TG_SHAPE(0, 2));
    FIT_FAILS(m, opt, &((tg_data){.x = none, .targets = y}), TG_EINVAL,
              "tg_fit: data.x has 0 samples");
    FIT_FAILS(cls, opt_cls, &((tg_data){.x = x, .labels = labels}), TG_EINVAL,
              "tg_fit: data.labels[4] = 5 outside [0, 2) (the model's 2 outputs)");
    labels[4] = -1;
    FIT_FAILS(cls, opt_cls, &((tg_data){.x = x, .labels = labels}), TG_EINVAL,
              "tg_fit: data.labels[4] = -1 outside [0, 2)");
    labels[4] = 0;
    // Labels need (N, K) outputs: a conv output is (N, C, H, W).
    tg_model *conv = tg_model_new(TG_F32, TG_SHAPE(1, 3, 3), TG_SCHEME_KERAS, 1);
    ASSERT_OK(tg_model_add(conv, tg_layer_conv2d(2, 2, 2, TG_ACT_NONE)));
    int np;
    tg_tensor *const *conv_params = tg_model_params(conv, &np);
    tg_optim *opt_conv = tg_optim_sgd(conv_params, np, NULL);
    tg_tensor *img = tg_tensor_zeros(TG_F32, TG_SHAPE(8, 1, 3, 3));
    FIT_FAILS(conv, opt_conv, &((tg_data){.x = img, .labels = labels}), TG_ESHAPE,
              "tg_fit: data.labels need a model output of shape (N, K), got (N, 2, 2, 2)");

    // Options.
#define OPT_FAILS(field, value, text)                                                        \
    do {                                                                                     \
        o = quiet(1);                                                                        \
        o.field = value;                                                                     \
        FIT_FAILS(m, opt, &d, TG_EINVAL, text);                                              \
    } while (0)
    OPT_FAILS(epochs, 0, "tg_fit: opts.epochs 0 < 1");
    OPT_FAILS(initial_epoch, 1, "tg_fit: opts.initial_epoch 1 outside 0..0 (epochs - 1)");
    OPT_FAILS(initial_epoch, -1, "tg_fit: opts.initial_epoch -1 outside 0..0");
    OPT_FAILS(batch_size, -3, "tg_fit: opts.batch_size -3 < 1");
    OPT_FAILS(metric, (tg_metric)4, "tg_fit: opts.metric 4 unknown");
    OPT_FAILS(validation_split, 1.0, "tg_fit: opts.validation_split 1 outside [0, 1)");
    OPT_FAILS(validation_split, -0.1, "tg_fit: opts.validation_split -0.1 outside [0, 1)");
    OPT_FAILS(validation_split, NAN, "tg_fit: opts.validation_split nan outside [0, 1)");
    OPT_FAILS(validation_split, 0.9,
              "tg_fit: opts.validation_split 0.9 of 8 samples leaves 0 for training and 8 "
              "for validation (need 1 each)");
    OPT_FAILS(validation_split, 1e-17,
              "tg_fit: opts.validation_split 1e-17 of 8 samples leaves 8 for training and 0 "
              "for validation");
    OPT_FAILS(verbose, 3, "tg_fit: opts.verbose 3 not 0, 1 or 2");
    OPT_FAILS(verbose, -1, "tg_fit: opts.verbose -1 not 0, 1 or 2");
    OPT_FAILS(tty, (tg_tty)7, "tg_fit: opts.tty 7 unknown");
    OPT_FAILS(n_callbacks, -1, "tg_fit: opts.n_callbacks -1");
    OPT_FAILS(n_callbacks, 2, "tg_fit: opts.n_callbacks 2 with NULL callbacks");
    tg_callback null_fn = {NULL, NULL};
    o = quiet(1);
    o.callbacks = &null_fn;
    o.n_callbacks = 1;
    FIT_FAILS(m, opt, &d, TG_EINVAL, "tg_fit: opts.callbacks[0].fn is NULL");
    tg_data val_bad = {.x = y, .targets = y}, val_kind = {.x = x, .labels = labels};
    o = quiet(1);
    o.validation_data = &val_bad;
    FIT_FAILS(m, opt, &d, TG_ESHAPE, "tg_fit: validation_data.x is 8x1, expected (N, 2)");
    o.validation_data = &val_kind;
    FIT_FAILS(m, opt, &d, TG_EINVAL, "tg_fit: data has targets but validation_data has labels");
    FIT_FAILS(cls, opt_cls, &((tg_data){.x = x, .targets = y}), TG_ESHAPE,
              "tg_fit: data.targets are 8x1, expected (8, 2)");
    tg_tensor *y2 = tg_tensor_zeros(TG_F32, TG_SHAPE(8, 2));
    tg_data d2 = {.x = x, .targets = y2};
    o.validation_data = &d2;
    FIT_FAILS(cls, opt_cls, &val_kind, TG_EINVAL,
              "tg_fit: data has labels but validation_data has targets");
    o.validation_data = &((tg_data){.x = x, .labels = labels, .targets = y});
    FIT_FAILS(cls, opt_cls, &val_kind, TG_EINVAL,
              "tg_fit: validation_data has both labels and targets");
    o.validation_split = 0.5;
    FIT_FAILS(cls, opt_cls, &val_kind, TG_EINVAL,
              "tg_fit: opts.validation_split 0.5 and opts.validation_data both set (use one)");
#undef OPT_FAILS
#undef FIT_FAILS
    ck_assert_ptr_eq(h, (tg_history *)&d);
    assert_unchanged(&before, m, opt);
    assert_unchanged(&before_cls, cls, opt_cls);
    tg_tensor_free(y2);
    tg_tensor_free(img);
    tg_optim_free(opt_conv);
    tg_model_free(conv);
    tg_tensor_free(none);
    tg_tensor_free(y7);
    tg_tensor_free(x64);
    tg_tensor_free(y64);
    tg_optim_free(opt);
    tg_optim_free(opt_cls);
    tg_optim_free(opt_other);
    tg_model_free(m);
    tg_model_free(cls);
    tg_model_free(other);
    tg_model_free(empty);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

START_TEST(test_history_errors)
{
    ASSERT_FRESH_NULL_FAIL(tg_history_epoch(NULL, 0), TG_EINVAL,
                           "tg_history_epoch: NULL history");
    ck_assert_int_eq(tg_history_len(NULL), 0);
    ck_assert_str_eq(tg_history_metric_name(NULL), "");
    ck_assert_int_eq(tg_history_stopped_epoch(NULL), 0);
    tg_history_free(NULL);
    tg_tensor *x, *y;
    regression(8, 19, &x, &y);
    tg_model *m = mlp(1, TG_ACT_NONE);
    tg_optim *opt = adam(m, 0.01);
    tg_fit_opts o = quiet(2);
    tg_history *h = NULL;
    ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, &h));
    ASSERT_FRESH_NULL_FAIL(tg_history_epoch(h, 2), TG_ERANGE,
                           "tg_history_epoch: index 2, the history has 2 epochs");
    ASSERT_FRESH_NULL_FAIL(tg_history_epoch(h, -1), TG_ERANGE, "index -1");
    tg_history_free(h);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

/* ---- progress text --------------------------------------------------------------- */

static char *capture_final(const tg__progress *proto, int64_t done, int64_t total,
                           double elapsed, const tg_epoch_log *log)
{
    FILE *f = tmpfile();
    tg__progress p = *proto;
    p.f = f;
    tg__progress_final(&p, done, total, elapsed, log);
    char *s = read_stream(f);
    fclose(f);
    return s;
}

START_TEST(test_progress_exact_text)
{
    tg_epoch_log log = {.epoch = 1, .loss = 0.46634, .metric = 0.86213, .val_loss = 0.08871,
                        .val_metric = 0.97204, .seconds = 2.75};
    tg__progress p = {.verbose = 1, .metric = "accuracy"};
    char *s = capture_final(&p, 250, 250, 2.75, &log);
    ck_assert_str_eq(s, "250/250 [==============================] - 3s 11ms/step - loss: 0.4663 "
                        "- accuracy: 0.8621\n");
    free(s);
    s = capture_final(&p, 250, 250, 0.1, &log);
    ck_assert_str_eq(s, "250/250 [==============================] - 0s 400us/step - loss: 0.4663 "
                        "- accuracy: 0.8621\n");
    free(s);
    s = capture_final(&p, 1000, 1000, 0.9996, &log);
    ck_assert_str_eq(s, "1000/1000 [==============================] - 1s 1ms/step - loss: 0.4663 "
                        "- accuracy: 0.8621\n");
    free(s);
    p.val = true;
    s = capture_final(&p, 250, 250, 2.75, &log);
    ck_assert_str_eq(s, "250/250 [==============================] - 3s 11ms/step - loss: 0.4663 "
                        "- accuracy: 0.8621 - val_loss: 0.0887 - val_accuracy: 0.9720\n");
    free(s);
    p.metric = NULL;
    s = capture_final(&p, 250, 250, 2.75, &log);
    ck_assert_str_eq(s, "250/250 [==============================] - 3s 11ms/step - loss: 0.4663 "
                        "- val_loss: 0.0887\n");
    free(s);
    p = (tg__progress){.verbose = 2, .metric = "mae"};
    s = capture_final(&p, 250, 250, 2.75, &log);
    ck_assert_str_eq(s, "250/250 - 3s - loss: 0.4663 - mae: 0.8621 - 3s/epoch - 11ms/step\n");
    free(s);
    p.verbose = 0;
    s = capture_final(&p, 250, 250, 2.75, &log);
    ck_assert_str_eq(s, "");
    free(s);
    // A stop after 100 of 250 batches: the bar shows where it stopped.
    p = (tg__progress){.verbose = 1, .metric = "accuracy", .tty = true};
    s = capture_final(&p, 100, 250, 1.1, &log);
    ck_assert_str_eq(s, "\r100/250 [============..................] - 1s 11ms/step - loss: 0.4663 "
                        "- accuracy: 0.8621\n");
    free(s);

    // The in-place line, only on a terminal.
    FILE *f = tmpfile();
    p.f = f;
    tg__progress_update(&p, 10, 250, 0.11, 0.5, 0.75);
    tg__progress_epoch(&p, 2, 5);
    p.tty = false;
    tg__progress_update(&p, 20, 250, 0.22, 0.5, 0.75);
    s = read_stream(f);
    ck_assert_str_eq(s, "\r10/250 [=>............................] - ETA: 3s - loss: 0.5000 - "
                        "accuracy: 0.7500Epoch 2/5\n");
    free(s);
    fclose(f);
}
END_TEST

/* The line tg_fit writes, with its times checked for form. */
static void check_fit_line(const char *line, const char *prefix, const char *suffix)
{
    size_t lp = strlen(prefix), ls = strlen(suffix), n = strlen(line);
    ck_assert_msg(n > lp + ls && !strncmp(line, prefix, lp), "line '%s'", line);
    ck_assert_msg(!strcmp(line + n - ls, suffix), "line '%s' lacks '%s'", line, suffix);
    char mid[64];
    snprintf(mid, sizeof mid, "%.*s", (int)(n - lp - ls), line + lp);
    unsigned secs, per;
    char unit[3];
    int used = 0;
    ck_assert_msg(sscanf(mid, "%us %u%2[mu]s/step%n", &secs, &per, unit, &used) == 3 &&
                  used == (int)strlen(mid), "time part '%s'", mid);
}

START_TEST(test_fit_output_non_tty)
{
    tg_tensor *x, *y;
    regression(32, 20, &x, &y);
    tg_model *m = mlp(1, TG_ACT_NONE);
    tg_optim *opt = adam(m, 0.01);
    tg_fit_opts o = quiet(2);
    o.verbose = 1;
    o.validation_split = 0.25;
    FILE *f = tmpfile();
    o.stream = f;
    tg_history *h = NULL;
    ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, &h));
    char *text = read_stream(f), *save = NULL;
    ck_assert_ptr_null(strchr(text, '\r'));
    const char *lines[4];
    int k = 0;
    for (char *t = strtok_r(text, "\n", &save); t && k < 4; t = strtok_r(NULL, "\n", &save))
        lines[k++] = t;
    ck_assert_int_eq(k, 4);
    ck_assert_str_eq(lines[0], "Epoch 1/2");
    ck_assert_str_eq(lines[2], "Epoch 2/2");
    for (int e = 0; e < 2; e++) {
        const tg_epoch_log *l = tg_history_epoch(h, e);
        char suffix[200];
        snprintf(suffix, sizeof suffix, " - loss: %.4f - mae: %.4f - val_loss: %.4f - "
                 "val_mae: %.4f", l->loss, l->metric, l->val_loss, l->val_metric);
        check_fit_line(lines[2 * e + 1], "3/3 [==============================] - ", suffix);
    }
    free(text);
    fclose(f);
    // verbose 2 and 0.
    f = tmpfile();
    o.stream = f;
    o.verbose = 2;
    o.validation_split = 0;
    tg_history_free(h);
    ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, &h));
    text = read_stream(f);
    const tg_epoch_log *l = tg_history_epoch(h, 0);
    char want[200];
    snprintf(want, sizeof want, "Epoch 1/2\n4/4 - %.0fs - loss: %.4f - mae: %.4f - ", l->seconds,
             l->loss, l->metric);
    ck_assert_msg(!strncmp(text, want, strlen(want)), "'%s' vs '%s'", text, want);
    free(text);
    fclose(f);
    f = tmpfile();
    o.stream = f;
    o.verbose = 0;
    ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, NULL));
    ck_assert_int_eq(ftell(f), 0);
    fclose(f);
    // A progress stream that cannot be written stops the run with the reason.
    f = fopen("/dev/full", "w");
    if (f) {
        o.stream = f;
        o.verbose = 2;
        ASSERT_FAIL(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, NULL), TG_EIO,
                    "tg_fit: writing the progress to its stream failed (epoch 1)");
        fclose(f);
    }
    tg_history_free(h);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

/* On a terminal the line is redrawn every 10 batches, then overwritten by the
 * final one. */
START_TEST(test_fit_output_tty)
{
    tg_tensor *x, *y;
    regression(25, 21, &x, &y);
    tg_model *m = mlp(1, TG_ACT_NONE);
    tg_optim *opt = adam(m, 0.01);
    tg_fit_opts o = quiet(1);
    o.batch_size = 1;
    o.verbose = 1;
    o.tty = TG_TTY_YES;
    FILE *f = tmpfile();
    o.stream = f;
    ASSERT_OK(tg_fit(m, opt, &(tg_data){.x = x, .targets = y}, &o, NULL));
    char *text = read_stream(f);
    const char *a = strstr(text, "Epoch 1/1\n\r10/25 [============>.................] - ETA: ");
    const char *b = strstr(text, "\r20/25 [========================>.....] - ETA: ");
    const char *c = strstr(text, "\r25/25 [==============================] - ");
    ck_assert_msg(a == text && b > a && c > b, "%s", text);
    ck_assert_int_eq(text[strlen(text) - 1], '\n');
    ck_assert_ptr_null(strstr(text, "\r30/"));
    free(text);
    fclose(f);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

/* ---- the docs' 15-line example ------------------------------------------------------ */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    char *s = read_stream(f);
    fclose(f);
    return s;
}

/* The text between the first line containing begin and the next containing
 * end (both excluded), malloc'd. */
static char *between(const char *text, const char *begin, const char *end)
{
    const char *b = strstr(text, begin);
    ck_assert_msg(b, "no '%s'", begin);
    b = strchr(b, '\n') + 1;
    const char *e = strstr(b, end);
    ck_assert_msg(e, "no '%s'", end);
    while (e > b && e[-1] != '\n')
        e--;
    char *s = calloc((size_t)(e - b) + 1, 1);
    memcpy(s, b, (size_t)(e - b));
    return s;
}

/* docs/training.md shows examples/fit_arrays/main.c's fit block verbatim (the
 * example itself is built, and run as the test fit_arrays). */
START_TEST(test_docs_snippet_is_the_example)
{
    char *doc = slurp(TG_TEST_SOURCE_DIR "/docs/training.md");
    char *src = slurp(TG_TEST_SOURCE_DIR "/examples/fit_arrays/main.c");
    char *in_doc = between(doc, "<!-- fit_arrays:begin -->", "<!-- fit_arrays:end -->");
    char *in_src = between(src, "// docs/training.md:begin", "// docs/training.md:end");
    // In the doc the block sits in a ```c fence; the source is indented by 4.
    char *body = between(in_doc, "```c", "```");
    char *p = in_src, *q = in_src;
    int lines = 0;
    for (; *p; p++) {
        if ((p == in_src || p[-1] == '\n') && !strncmp(p, "    ", 4))
            p += 3;
        else
            *q++ = *p;
        lines += *p == '\n';
    }
    *q = '\0';
    ck_assert_str_eq(body, in_src);
    ck_assert_msg(lines <= 15, "the example takes %d lines", lines);
    free(body);
    free(in_doc);
    free(in_src);
    free(src);
    free(doc);
}
END_TEST

static Suite *train_suite(void)
{
    Suite *s = suite_create("train");
    TCase *fit = tcase_create("fit");
    tcase_set_timeout(fit, 60); // the MNIST cases, under ASan on a loaded machine
    tcase_add_test(fit, test_fit_regression_decreases_loss);
    tcase_add_test(fit, test_fit_classification_learns);
    tcase_add_test(fit, test_fit_float64);
    tcase_add_test(fit, test_fit_deterministic_and_history_optional);
    tcase_add_test(fit, test_fit_validation_split_and_data);
    tcase_add_test(fit, test_fit_metric_none);
    tcase_add_test(fit, test_fit_errors);
    tcase_add_loop_test(fit, test_fit_dataset_bytes, 0, 2);
    tcase_add_test(fit, test_fit_dataset_errors);
    tcase_add_test(fit, test_fit_dataset_no_allocs_per_step);
    suite_add_tcase(s, fit);
    TCase *history = tcase_create("history");
    tcase_add_test(history, test_history_errors);
    suite_add_tcase(s, history);
    TCase *cb = tcase_create("callbacks");
    tcase_add_test(cb, test_callbacks_called_and_stop_at_epoch);
    tcase_add_test(cb, test_callbacks_stop_at_batch);
    tcase_add_test(cb, test_callbacks_error_and_bad_return);
    suite_add_tcase(s, cb);
    TCase *es = tcase_create("early_stopping_save_best");
    tcase_add_test(es, test_early_stopping_patience);
    tcase_add_test(es, test_early_stopping_val_loss_min_delta);
    tcase_add_test(es, test_early_stopping_accuracy_mode);
    tcase_add_test(es, test_early_stopping_errors);
    tcase_add_test(es, test_save_best);
    tcase_add_test(es, test_save_best_default_writes_safetensors);
    suite_add_tcase(s, es);
    TCase *resume = tcase_create("resume");
    tcase_add_test(resume, test_fit_resume_bitwise);
    suite_add_tcase(s, resume);
    TCase *ev = tcase_create("evaluate_predict");
    tcase_add_test(ev, test_evaluate_and_predict_restore_modes);
    tcase_add_test(ev, test_predict_matches_forward);
    tcase_add_test(ev, test_evaluate_predict_errors);
    suite_add_tcase(s, ev);
    TCase *pr = tcase_create("progress");
    tcase_add_test(pr, test_progress_exact_text);
    tcase_add_test(pr, test_fit_output_non_tty);
    tcase_add_test(pr, test_fit_output_tty);
    suite_add_tcase(s, pr);
    TCase *docs = tcase_create("docs");
    tcase_add_test(docs, test_docs_snippet_is_the_example);
    suite_add_tcase(s, docs);
    return s;
}

TG_CHECK_MAIN(train_suite)
