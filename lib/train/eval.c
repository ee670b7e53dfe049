/* eval.c - one batch's loss and metric, and the loops that need no
 * optimizer: tg_evaluate and tg_predict. Both run on a private tape with grad
 * off and the model in evaluation mode, and put all three back as they were,
 * so a caller's tape (and the tensors on it) is never reset under it. */
#include <math.h>
#include <string.h>

#include "train/train_internal.h"

/* mean |pred - t| over the batch times count, i.e. the batch's share of the
 * set's sum of per-sample means (every sample has the same element count). */
static double mae_times_count(const tg_tensor *pred, const tg_tensor *t, int64_t count)
{
    int64_t n = tg_tensor_numel(t);
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += fabs(tg__get(pred, i) - tg__get(t, i));
    return n ? sum / (double)n * (double)count : 0.0;
}

tg_tensor *tg__batch_loss(tg_model *m, tg_tensor *x, const int64_t *y, tg_tensor *t,
                          int64_t count, double *metric_sum)
{
    if (y) {
        // Logits and the fused cross-entropy: stable where softmax then log is not.
        tg_tensor *logits = tg_model_forward(m, x, true);
        tg_tensor *loss = tg_cross_entropy(logits, y, TG_REDUCE_MEAN);
        if (loss && metric_sum)
            *metric_sum += tg_accuracy(logits, y, count) * (double)count;
        return loss;
    }
    tg_tensor *pred = tg_model_forward(m, x, false);
    tg_tensor *loss = tg_mse_loss(pred, t, TG_REDUCE_MEAN);
    if (loss && metric_sum)
        *metric_sum += mae_times_count(pred, t, count);
    return loss;
}

tg_status tg__eval_set(tg_model *m, const tg__fitset *s, int64_t batch_size, bool want_metric,
                       double *loss, double *metric)
{
    tg__batches b;
    tg_status st = tg__batches_open(s, batch_size, false, 0, &b);
    if (st != TG_OK)
        return st;
    tg_tape *tape = tg_tape_current();
    double loss_sum = 0, metric_sum = 0;
    tg_tensor *x, *t;
    const int64_t *y;
    int64_t count;
    while (tg__batches_next(&b, &x, &y, &t, &count)) {
        tg_tensor *l = tg__batch_loss(m, x, y, t, count, want_metric ? &metric_sum : NULL);
        if (!l) {
            st = tg_last_status();
            break;
        }
        loss_sum += tg_tensor_item(l) * (double)count;
        tg_tape_reset(tape);
    }
    tg_tape_reset(tape);
    tg__batches_close(&b);
    if (st != TG_OK)
        return st;
    *loss = loss_sum / (double)s->n;
    *metric = want_metric ? metric_sum / (double)s->n : NAN;
    return TG_OK;
}

/* The modes a call changes, saved so that every exit restores them. */
typedef struct saved_modes {
    tg_tape *tape, *prev_tape;
    bool grad, training;
} saved_modes;

static tg_status enter_eval(const char *fn, tg_model *m, saved_modes *s)
{
    s->prev_tape = tg_tape_current();
    s->tape = tg_tape_new();
    if (!s->tape) {
        tg_tape_set_current(s->prev_tape);
        return tg__fail(TG_ENOMEM, "%s: out of memory for a tape", fn);
    }
    s->grad = tg_set_grad_enabled(false);
    s->training = tg_model_training(m);
    tg_model_set_training(m, false);
    return TG_OK;
}

static void leave_eval(tg_model *m, saved_modes *s)
{
    tg_model_set_training(m, s->training);
    tg_set_grad_enabled(s->grad);
    tg_tape_free(s->tape);
    tg_tape_set_current(s->prev_tape);
}

static tg_status check_opts(const char *fn, const tg_fit_opts *o)
{
    if (o->batch_size < 1)
        return tg__fail(TG_EINVAL, "%s: opts.batch_size %lld < 1", fn, (long long)o->batch_size);
    if (o->metric != TG_METRIC_AUTO && o->metric != TG_METRIC_NONE)
        return tg__fail(TG_EINVAL, "%s: opts.metric %d unknown", fn, (int)o->metric);
    return TG_OK;
}

static tg_status check_model(const char *fn, const tg_model *m)
{
    if (!m)
        return tg__fail(TG_EINVAL, "%s: NULL model", fn);
    if (tg_model_layer_count(m) == 0)
        return tg__fail(TG_ESTATE, "%s: the model has no layers", fn);
    return TG_OK;
}

tg_status tg_evaluate(tg_model *model, const tg_data *data, const tg_fit_opts *opts,
                      double *loss, double *metric)
{
    static const char fn[] = "tg_evaluate";
    tg_fit_opts o = opts ? *opts : tg_fit_defaults();
    tg__fitset s = {0};
    tg_status st = check_model(fn, model);
    if (st == TG_OK)
        st = check_opts(fn, &o);
    if (st == TG_OK)
        st = tg__check_data(fn, "data", model, data, &s);
    saved_modes saved = {0};
    if (st == TG_OK)
        st = enter_eval(fn, model, &saved);
    if (st != TG_OK)
        return st;
    double l, mt;
    st = tg__eval_set(model, &s, o.batch_size, o.metric == TG_METRIC_AUTO, &l, &mt);
    leave_eval(model, &saved);
    if (st != TG_OK)
        return st;
    if (loss)
        *loss = l;
    if (metric)
        *metric = mt;
    return TG_OK;
}

tg_status tg_predict(tg_model *model, const tg_tensor *x, int64_t batch_size, tg_tensor **out)
{
    static const char fn[] = "tg_predict";
    tg_status st = check_model(fn, model);
    if (st == TG_OK && !out)
        st = tg__fail(TG_EINVAL, "%s: NULL out", fn);
    if (st == TG_OK && batch_size < 1)
        st = tg__fail(TG_EINVAL, "%s: batch_size %lld < 1", fn, (long long)batch_size);
    if (st == TG_OK)
        st = tg__check_x(fn, "x", model, x);
    if (st != TG_OK)
        return st;

    int64_t n = tg_tensor_dim(x, 0), shape[TG_MAX_DIMS];
    int out_ndim;
    const int64_t *per = tg_model_output_shape(model, &out_ndim);
    shape[0] = n;
    memcpy(shape + 1, per, (size_t)out_ndim * sizeof *shape);
    tg_tensor *result = tg__tensor_alloc(NULL, fn, tg_model_dtype(model), out_ndim + 1, shape,
                                         false);
    tg__fitset s = {.x = x, .n = n};
    tg__batches b = {NULL, NULL};
    saved_modes saved = {0};
    st = result ? tg__batches_open(&s, batch_size, false, 0, &b) : tg_last_status();
    if (st == TG_OK && (st = enter_eval(fn, model, &saved)) == TG_OK) {
        size_t row = (size_t)(tg_tensor_numel(result) / n) * tg_dtype_size(tg_model_dtype(model));
        char *dst = tg_tensor_data(result);
        tg_tensor *xb, *unused;
        int64_t count;
        while (tg__batches_next(&b, &xb, NULL, &unused, &count)) {
            tg_tensor *y = tg_model_forward(model, xb, false);
            if (!y) {
                st = tg_last_status();
                break;
            }
            // Outputs of the model's ops are contiguous, in row-major order.
            memcpy(dst, tg_tensor_data_const(y), (size_t)count * row);
            dst += (size_t)count * row;
            tg_tape_reset(saved.tape);
        }
        leave_eval(model, &saved);
    }
    tg__batches_close(&b);
    if (st != TG_OK) {
        tg_tensor_free(result);
        return st;
    }
    *out = result;
    return TG_OK;
}
