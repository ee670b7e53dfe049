/* fit.c - tg_fit: Keras's model.fit over lib/nn, lib/optim and lib/io.
 * Everything that can be refused is checked (and every buffer allocated)
 * before the first step, so a bad call leaves the model and optimizer as they
 * were; the loop itself only fails when an op, the optimizer or a callback
 * does. The progress text lives in progress.c, batches in data.c. */
#include <math.h>
#include <stdio.h>

#include "train/train_internal.h"

tg_fit_opts tg_fit_defaults(void)
{
    return (tg_fit_opts){.epochs = 1, .batch_size = 32, .shuffle = true, .verbose = 1};
}

static tg_status check_opts(const tg_fit_opts *o)
{
    if (o->epochs < 1)
        return tg__fail(TG_EINVAL, "tg_fit: opts.epochs %d < 1", o->epochs);
    if (o->initial_epoch < 0 || o->initial_epoch >= o->epochs)
        return tg__fail(TG_EINVAL, "tg_fit: opts.initial_epoch %d outside 0..%d (epochs - 1)",
                        o->initial_epoch, o->epochs - 1);
    if (o->batch_size < 1)
        return tg__fail(TG_EINVAL, "tg_fit: opts.batch_size %lld < 1",
                        (long long)o->batch_size);
    if (o->metric != TG_METRIC_AUTO && o->metric != TG_METRIC_NONE)
        return tg__fail(TG_EINVAL, "tg_fit: opts.metric %d unknown", (int)o->metric);
    if (!(o->validation_split >= 0 && o->validation_split < 1))
        return tg__fail(TG_EINVAL, "tg_fit: opts.validation_split %g outside [0, 1)",
                        o->validation_split);
    if (o->validation_split > 0 && o->validation_data)
        return tg__fail(TG_EINVAL, "tg_fit: opts.validation_split %g and "
                        "opts.validation_data both set (use one)", o->validation_split);
    if (o->verbose < 0 || o->verbose > 2)
        return tg__fail(TG_EINVAL, "tg_fit: opts.verbose %d not 0, 1 or 2", o->verbose);
    if (o->tty != TG_TTY_AUTO && o->tty != TG_TTY_NO && o->tty != TG_TTY_YES)
        return tg__fail(TG_EINVAL, "tg_fit: opts.tty %d unknown", (int)o->tty);
    if (o->n_callbacks < 0 || (o->n_callbacks > 0 && !o->callbacks))
        return tg__fail(TG_EINVAL, "tg_fit: opts.n_callbacks %d with %s callbacks",
                        o->n_callbacks, o->callbacks ? "non-NULL" : "NULL");
    for (int i = 0; i < o->n_callbacks; i++)
        if (!o->callbacks[i].fn)
            return tg__fail(TG_EINVAL, "tg_fit: opts.callbacks[%d].fn is NULL", i);
    return TG_OK;
}

/* An optimizer built over another model's parameters would "train" nothing. */
static tg_status check_optim(const tg_model *m, const tg_optim *opt)
{
    int n;
    tg_tensor *const *params = tg_model_params(m, &n);
    for (int i = 0; i < tg_optim_num_params(opt); i++) {
        const tg_tensor *p = tg_optim_param(opt, i);
        for (int j = 0; j < n; j++)
            if (p == params[j])
                return TG_OK;
    }
    return tg__fail(TG_EINVAL, "tg_fit: the optimizer (%s, %d params) updates none of the "
                    "model's %d parameters", tg_optim_name(opt), tg_optim_num_params(opt), n);
}

/* The training and validation sets, per the options. */
static tg_status make_sets(const tg_model *m, const tg_data *data, const tg_fit_opts *o,
                           tg__fitset *train, tg__fitset *val, bool *has_val)
{
    tg__fitset all;
    tg_status st = tg__check_data("tg_fit", "data", m, data, &all);
    if (st != TG_OK)
        return st;
    *has_val = false;
    if (o->validation_data) {
        // The kinds first: a label/target mix-up explains any shape error that follows.
        const tg_data *vd = o->validation_data;
        if (!vd->labels != !vd->targets && !vd->labels != !all.labels)
            return tg__fail(TG_EINVAL, "tg_fit: data has %s but validation_data has %s",
                            all.labels ? "labels" : "targets", vd->labels ? "labels" : "targets");
        st = tg__check_data("tg_fit", "validation_data", m, vd, val);
        if (st != TG_OK)
            return st;
        *train = all;
        *has_val = true;
        return TG_OK;
    }
    if (o->validation_split > 0) {
        // Keras: the last samples, before any shuffling, are held out.
        int64_t n_train = (int64_t)floor((double)all.n * (1.0 - o->validation_split));
        if (n_train < 1 || n_train >= all.n)
            return tg__fail(TG_EINVAL, "tg_fit: opts.validation_split %g of %lld samples "
                            "leaves %lld for training and %lld for validation (need 1 each)",
                            o->validation_split, (long long)all.n, (long long)n_train,
                            (long long)(all.n - n_train));
        *has_val = true;
        tg__split(&all, n_train, train, val);
        return TG_OK;
    }
    *train = all;
    return TG_OK;
}

/* What one run holds, so that every exit frees the same things. */
typedef struct run {
    tg_model *model;
    tg_optim *optim;
    const tg_fit_opts *o;
    tg__fitset train, val;
    bool has_val, want_metric;
    tg__batches batches;
    tg_history *history;
    tg__progress progress;
    tg_fit_state state;
    bool stop;
} run;

/* Calls every callback with r->state; a stop request is remembered, an error
 * returned with the callback's message prefixed. */
static tg_status notify(run *r)
{
    for (int i = 0; i < r->o->n_callbacks; i++) {
        const tg_callback *cb = &r->o->callbacks[i];
        int rc = cb->fn(&r->state, cb->ctx);
        if (rc == TG_FIT_STOP)
            r->stop = true;
        else if (rc < 0) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s",
                     tg_last_status() == rc ? tg_last_error() : "failed without a message");
            return tg__fail((tg_status)rc, "tg_fit: callback %d at epoch %d: %s", i,
                            r->state.epoch, msg);
        } else if (rc != TG_FIT_CONTINUE)
            return tg__fail(TG_EINVAL, "tg_fit: callback %d returned %d (expected "
                            "TG_FIT_CONTINUE, TG_FIT_STOP or a negative status)", i, rc);
    }
    return TG_OK;
}

static tg_status run_epoch(run *r, int epoch, tg_tape *tape)
{
    tg__progress_epoch(&r->progress, epoch, r->o->epochs);
    int64_t steps = tg_batcher_num_batches(r->batches.x), step = 0, seen = 0;
    double start = tg__now(), loss_sum = 0, metric_sum = 0;
    tg_tensor *x, *t;
    const int64_t *y;
    int64_t count;
    r->state.epoch = epoch;
    tg_model_set_training(r->model, true);
    while (!r->stop && tg__batches_next(&r->batches, &x, &y, &t, &count)) {
        tg_optim_zero_grad(r->optim);
        tg_tensor *loss = tg__batch_loss(r->model, x, y, t, count,
                                         r->want_metric ? &metric_sum : NULL);
        if (!loss || tg_backward(loss) != TG_OK || tg_optim_step(r->optim) != TG_OK)
            return tg_last_status();
        double batch_loss = tg_tensor_item(loss);
        tg_tape_reset(tape);
        loss_sum += batch_loss * (double)count;
        seen += count;
        step++;
        double mean_loss = loss_sum / (double)seen;
        double mean_metric = r->want_metric ? metric_sum / (double)seen : NAN;
        // Redraw a few times a second at most: printing is not free.
        if (step % 10 == 0 && step < steps)
            tg__progress_update(&r->progress, step, steps, tg__now() - start, mean_loss,
                                mean_metric);
        r->state.event = TG_FIT_BATCH_END;
        r->state.batch = step;
        r->state.batch_loss = batch_loss;
        r->state.loss = mean_loss;
        r->state.metric = mean_metric;
        tg_status st = notify(r);
        if (st != TG_OK)
            return st;
    }
    tg_epoch_log log = {.epoch = epoch, .loss = loss_sum / (double)seen,
                        .metric = r->want_metric ? metric_sum / (double)seen : NAN,
                        .val_loss = NAN, .val_metric = NAN};
    if (r->has_val) {
        bool grad = tg_set_grad_enabled(false);
        tg_model_set_training(r->model, false);
        tg_status st = tg__eval_set(r->model, &r->val, r->o->batch_size, r->want_metric,
                                    &log.val_loss, &log.val_metric);
        tg_set_grad_enabled(grad);
        if (st != TG_OK)
            return st;
    }
    log.seconds = tg__now() - start;
    tg__progress_final(&r->progress, step, steps, log.seconds, &log);
    // The progress stream is checked once an epoch: a full disk or a closed
    // pipe stops the run with the reason instead of training on silently.
    FILE *f = r->progress.f;
    if (r->progress.verbose > 0 && f && (fflush(f) != 0 || ferror(f)))
        return tg__fail(TG_EIO, "tg_fit: writing the progress to its stream failed (epoch %d)",
                        epoch);
    tg__history_push(r->history, &log);
    r->state.event = TG_FIT_EPOCH_END;
    r->state.batch = step;
    r->state.loss = log.loss;
    r->state.metric = log.metric;
    r->state.log = &log;
    tg_status st = notify(r);
    r->state.log = NULL;
    if (st == TG_OK && r->stop && epoch < r->o->epochs)
        tg__history_set_stopped(r->history, epoch);
    tg__batches_reset(&r->batches);
    return st;
}

/* The loop, with grad mode on and the run's own tape current; the caller
 * restores both and the model's training mode. */
static tg_status train(run *r, tg_tape *tape)
{
    r->state = (tg_fit_state){.event = TG_FIT_BEGIN, .epochs = r->o->epochs,
                              .batches = tg_batcher_num_batches(r->batches.x),
                              .loss = NAN, .metric = NAN, .has_validation = r->has_val,
                              .metric_name = tg_history_metric_name(r->history),
                              .model = r->model, .optim = r->optim};
    // The shuffled order depends only on the seed and the epoch count, so
    // skipping initial_epoch epochs' orders puts a resumed run where the
    // uninterrupted one would be.
    for (int e = 0; e < r->o->initial_epoch; e++)
        tg__batches_reset(&r->batches);
    r->state.epoch = r->o->initial_epoch;
    tg_status st = notify(r);
    for (int epoch = r->o->initial_epoch + 1; st == TG_OK && !r->stop && epoch <= r->o->epochs;
         epoch++)
        st = run_epoch(r, epoch, tape);
    if (st == TG_OK) {
        r->state.event = TG_FIT_END;
        st = notify(r);
    }
    return st;
}

tg_status tg_fit(tg_model *model, tg_optim *optim, const tg_data *data, const tg_fit_opts *opts,
                 tg_history **history)
{
    tg_fit_opts o = opts ? *opts : tg_fit_defaults();
    if (!model)
        return tg__fail(TG_EINVAL, "tg_fit: NULL model");
    if (!optim)
        return tg__fail(TG_EINVAL, "tg_fit: NULL optim");
    if (tg_model_layer_count(model) == 0)
        return tg__fail(TG_ESTATE, "tg_fit: the model has no layers");
    run r = {.model = model, .optim = optim, .o = &o};
    tg_status st = check_opts(&o);
    if (st == TG_OK)
        st = check_optim(model, optim);
    if (st == TG_OK)
        st = make_sets(model, data, &o, &r.train, &r.val, &r.has_val);
    if (st != TG_OK)
        return st;
    r.want_metric = o.metric == TG_METRIC_AUTO;
    const char *metric = r.want_metric ? tg__metric_name(&r.train) : "";
    FILE *f = o.stream ? o.stream : stdout;
    r.progress = (tg__progress){.f = f, .tty = tg__is_tty(f, o.tty), .verbose = o.verbose,
                                .metric = r.want_metric ? metric : NULL, .val = r.has_val};
    st = tg__batches_open(&r.train, o.batch_size, o.shuffle, o.seed, &r.batches);
    if (st == TG_OK && !(r.history = tg__history_new(o.epochs - o.initial_epoch, metric)))
        st = tg_last_status();
    tg_tape *prev_tape = tg_tape_current();
    tg_tape *tape = st == TG_OK ? tg_tape_new() : NULL;
    if (st == TG_OK && !tape)
        st = tg__fail(TG_ENOMEM, "tg_fit: out of memory for a tape");
    if (st == TG_OK) {
        bool grad = tg_set_grad_enabled(true);
        bool training = tg_model_training(model);
        st = train(&r, tape);
        tg_model_set_training(model, training);
        tg_set_grad_enabled(grad);
    }
    tg_tape_free(tape);
    tg_tape_set_current(prev_tape);
    tg__batches_close(&r.batches);
    if (st != TG_OK || !history)
        tg_history_free(r.history);
    else
        *history = r.history;
    return st;
}
