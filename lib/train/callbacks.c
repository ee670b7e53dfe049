/* callbacks.c - the callbacks tapegrad ships, built on the public callback
 * interface alone (nothing here reaches into tg_fit): early stopping and
 * keeping the best model. Each keeps its settings and its running state in
 * the caller's struct, reset at TG_FIT_BEGIN so that one struct can serve
 * several runs. Saving defaults to lib/io's tg_model_save. */
#include <math.h>
#include <string.h>

#include "train/train_internal.h"

static const char *monitor_name(tg_monitor m, const char *metric, char *buf, size_t size)
{
    switch (m) {
    case TG_MONITOR_VAL_LOSS:
        return "val_loss";
    case TG_MONITOR_LOSS:
        return "loss";
    case TG_MONITOR_VAL_METRIC:
        snprintf(buf, size, "val_%s", metric);
        return buf;
    case TG_MONITOR_METRIC:
        return metric;
    }
    return "?";
}

/* The monitor's value in an epoch's log. */
static double monitored(tg_monitor m, const tg_epoch_log *log)
{
    switch (m) {
    case TG_MONITOR_VAL_LOSS:
        return log->val_loss;
    case TG_MONITOR_LOSS:
        return log->loss;
    case TG_MONITOR_VAL_METRIC:
        return log->val_metric;
    case TG_MONITOR_METRIC:
        return log->metric;
    }
    return NAN;
}

/* Losses and mae improve downwards, accuracy upwards (Keras's mode="auto"). */
static bool higher_is_better(tg_monitor m, const char *metric)
{
    return (m == TG_MONITOR_VAL_METRIC || m == TG_MONITOR_METRIC) &&
           !strcmp(metric, "accuracy");
}

/* current beats best by more than min_delta; NaN never does. */
static bool improves(double current, double best, double min_delta, bool higher)
{
    return higher ? current > best + min_delta : current < best - min_delta;
}

/* The TG_FIT_BEGIN checks the two callbacks share. */
static tg_status check_monitor(const char *who, tg_monitor m, double min_delta,
                               const tg_fit_state *s)
{
    if (m != TG_MONITOR_VAL_LOSS && m != TG_MONITOR_LOSS && m != TG_MONITOR_VAL_METRIC &&
        m != TG_MONITOR_METRIC)
        return tg__fail(TG_EINVAL, "%s: monitor %d unknown", who, (int)m);
    if (!(min_delta >= 0) || isinf(min_delta))
        return tg__fail(TG_EINVAL, "%s: min_delta %g is not a finite value >= 0", who,
                        min_delta);
    char buf[64];
    const char *name = monitor_name(m, s->metric_name, buf, sizeof buf);
    if ((m == TG_MONITOR_VAL_LOSS || m == TG_MONITOR_VAL_METRIC) && !s->has_validation)
        return tg__fail(TG_EINVAL, "%s: monitor %s needs validation data "
                        "(opts.validation_split or opts.validation_data)", who, name);
    if ((m == TG_MONITOR_VAL_METRIC || m == TG_MONITOR_METRIC) && !*s->metric_name)
        return tg__fail(TG_EINVAL, "%s: monitor %s needs a metric (opts.metric is "
                        "TG_METRIC_NONE)", who, m == TG_MONITOR_METRIC ? "metric" : "val_metric");
    return TG_OK;
}

/* ---- early stopping ----------------------------------------------------- */

tg_early_stopping tg_early_stopping_defaults(void)
{
    return (tg_early_stopping){.monitor = TG_MONITOR_VAL_LOSS};
}

static int early_stopping(const tg_fit_state *s, void *ctx)
{
    tg_early_stopping *es = ctx;
    if (s->event == TG_FIT_BEGIN) {
        tg_status st = check_monitor("tg_early_stopping", es->monitor, es->min_delta, s);
        if (st == TG_OK && es->patience < 0)
            st = tg__fail(TG_EINVAL, "tg_early_stopping: patience %d < 0", es->patience);
        if (st != TG_OK)
            return st;
        bool higher = higher_is_better(es->monitor, s->metric_name);
        es->best = higher ? -INFINITY : INFINITY;
        es->best_epoch = es->wait = es->stopped_epoch = 0;
        return TG_FIT_CONTINUE;
    }
    if (s->event != TG_FIT_EPOCH_END)
        return TG_FIT_CONTINUE;
    double v = monitored(es->monitor, s->log);
    if (improves(v, es->best, es->min_delta, higher_is_better(es->monitor, s->metric_name))) {
        es->best = v;
        es->best_epoch = s->epoch;
        es->wait = 0;
        return TG_FIT_CONTINUE;
    }
    // Keras counts this epoch, then stops once the count reaches patience
    // (patience 0 and 1 both stop at the first epoch without improvement).
    if (++es->wait >= es->patience && s->epoch < s->epochs) {
        es->stopped_epoch = s->epoch;
        return TG_FIT_STOP;
    }
    return TG_FIT_CONTINUE;
}

tg_callback tg_early_stopping_callback(tg_early_stopping *es)
{
    return (tg_callback){early_stopping, es};
}

/* ---- the best model ----------------------------------------------------- */

tg_save_best tg_save_best_defaults(const char *path, tg_save_fn save, void *save_ctx)
{
    return (tg_save_best){.monitor = TG_MONITOR_VAL_LOSS, .path = path, .save = save,
                          .save_ctx = save_ctx};
}

static int save_best(const tg_fit_state *s, void *ctx)
{
    tg_save_best *sb = ctx;
    if (s->event == TG_FIT_BEGIN) {
        tg_status st = check_monitor("tg_save_best", sb->monitor, sb->min_delta, s);
        if (st == TG_OK && !sb->path)
            st = tg__fail(TG_EINVAL, "tg_save_best: NULL path");
        if (st != TG_OK)
            return st;
        sb->best = higher_is_better(sb->monitor, s->metric_name) ? -INFINITY : INFINITY;
        sb->best_epoch = sb->saves = 0;
        return TG_FIT_CONTINUE;
    }
    if (s->event != TG_FIT_EPOCH_END)
        return TG_FIT_CONTINUE;
    double v = monitored(sb->monitor, s->log);
    if (!improves(v, sb->best, sb->min_delta, higher_is_better(sb->monitor, s->metric_name)))
        return TG_FIT_CONTINUE;
    tg_status st = sb->save ? sb->save(s->model, sb->path, sb->save_ctx)
                            : tg_model_save(s->model, sb->path);
    if (st != TG_OK) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s", tg_last_status() == st ? tg_last_error() : "");
        return tg__fail(st < 0 ? st : TG_EIO, "tg_save_best: saving %s failed: %s", sb->path,
                        *msg ? msg : tg_status_str(st));
    }
    sb->best = v;
    sb->best_epoch = s->epoch;
    sb->saves++;
    return TG_FIT_CONTINUE;
}

tg_callback tg_save_best_callback(tg_save_best *sb) { return (tg_callback){save_best, sb}; }
