/* history.c - the per-epoch record tg_fit hands back (Keras's History). Its
 * entries are allocated up front for every planned epoch, so recording one
 * can never fail in the middle of training. */
#include "train/train_internal.h"

struct tg_history {
    int len, capacity;
    int stopped_epoch;
    const char *metric; /* static string */
    tg_epoch_log *log;
};

tg_history *tg__history_new(int capacity, const char *metric)
{
    tg_history *h = tg__calloc(1, sizeof *h);
    tg_epoch_log *log = h ? tg__calloc((size_t)capacity, sizeof *log) : NULL;
    if (!log) {
        tg__free(h);
        return tg__fail_null(TG_ENOMEM, "tg_fit: out of memory for a history of %d epochs",
                             capacity);
    }
    *h = (tg_history){.capacity = capacity, .metric = metric, .log = log};
    return h;
}

void tg__history_push(tg_history *h, const tg_epoch_log *log)
{
    if (h->len < h->capacity)
        h->log[h->len++] = *log;
}

void tg__history_set_stopped(tg_history *h, int epoch) { h->stopped_epoch = epoch; }

int tg_history_len(const tg_history *h) { return h ? h->len : 0; }

const tg_epoch_log *tg_history_epoch(const tg_history *h, int i)
{
    if (!h)
        return tg__fail_null(TG_EINVAL, "tg_history_epoch: NULL history");
    if (i < 0 || i >= h->len)
        return tg__fail_null(TG_ERANGE, "tg_history_epoch: index %d, the history has %d "
                             "epochs", i, h->len);
    return &h->log[i];
}

const char *tg_history_metric_name(const tg_history *h) { return h ? h->metric : ""; }

int tg_history_stopped_epoch(const tg_history *h) { return h ? h->stopped_epoch : 0; }

void tg_history_free(tg_history *h)
{
    if (!h)
        return;
    tg__free(h->log);
    tg__free(h);
}
