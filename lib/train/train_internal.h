/* train_internal.h - what the files of lib/train share: checked data sets,
 * batches of inputs with their labels or targets, one batch's loss, the
 * evaluation loop and the progress line. Never installed. */
#ifndef TG_TRAIN_INTERNAL_H
#define TG_TRAIN_INTERNAL_H

#include "tapegrad/train.h"
#include "tg_internal.h"

/* A tg_data that passed the checks, with its sample count: samples
 * [first, first + n) of x and targets (first > 0 for the held-out part of a
 * validation split, which is never copied), or of px, a dataset's 8-bit
 * pixels (px_shape: the whole split's (N, 1, rows, cols), converted to
 * px_dtype per batch) when x is NULL. labels point at sample first's label. */
typedef struct tg__fitset {
    const tg_tensor *x;
    const uint8_t *px;
    tg_dtype px_dtype;
    int64_t px_shape[4];
    const int64_t *labels;
    const tg_tensor *targets;
    int64_t first, n;
} tg__fitset;

/* Checks d against the model (dtype, shapes, labels in range); what names the
 * data in messages ("data", "validation_data"). On success fills *out. */
tg_status tg__check_data(const char *fn, const char *what, const tg_model *m, const tg_data *d,
                         tg__fitset *out);
/* Checks that x is (N >= 1, input_shape...) in the model's dtype; name is
 * how messages call it ("data.x"). */
tg_status tg__check_x(const char *fn, const char *name, const tg_model *m, const tg_tensor *x);
/* The first n_train samples of all as *train and the rest as *val, both
 * borrowing all's storage. */
void tg__split(const tg__fitset *all, int64_t n_train, tg__fitset *train, tg__fitset *val);

/* Batches of a set: one tg_batcher over x (with the labels) and, for targets,
 * a second one over the targets with the same n, batch size and seed, which
 * visits the samples in the same order (the order depends only on those). */
typedef struct tg__batches {
    tg_batcher *x, *t;
} tg__batches;

tg_status tg__batches_open(const tg__fitset *s, int64_t batch_size, bool shuffle, uint64_t seed,
                           tg__batches *b);
bool tg__batches_next(tg__batches *b, tg_tensor **x, const int64_t **y, tg_tensor **t,
                      int64_t *count);
void tg__batches_reset(tg__batches *b);
void tg__batches_close(tg__batches *b);

/* The mean loss of one batch on the current tape (NULL on failure) and, when
 * metric_sum is not NULL, adds the batch's metric times count to it. */
tg_tensor *tg__batch_loss(tg_model *m, tg_tensor *x, const int64_t *y, tg_tensor *t,
                          int64_t count, double *metric_sum);

/* Mean loss and metric (NaN when !want_metric) over a set, on the current
 * tape, reset after each batch. The caller sets grad and training mode. */
tg_status tg__eval_set(tg_model *m, const tg__fitset *s, int64_t batch_size, bool want_metric,
                       double *loss, double *metric);

/* "accuracy" for labels, "mae" for targets. */
const char *tg__metric_name(const tg__fitset *s);

/* ---- progress (progress.c) ---- */
typedef struct tg__progress {
    FILE *f;
    bool tty;
    int verbose;
    const char *metric; /* NULL: no metric column */
    bool val;           /* print val_ columns on the final line */
} tg__progress;

double tg__now(void);
/* Whether stream is a terminal, per mode. */
bool tg__is_tty(FILE *f, tg_tty mode);
void tg__progress_epoch(const tg__progress *p, int epoch, int epochs);
/* The in-place line (terminal only): "\r12/250 [=>....] - ETA: 3s - loss: ..." */
void tg__progress_update(const tg__progress *p, int64_t done, int64_t total, double elapsed,
                         double loss, double metric);
/* The epoch's last line (verbose 1: the full bar; verbose 2: the summary). */
void tg__progress_final(const tg__progress *p, int64_t done, int64_t total, double elapsed,
                        const tg_epoch_log *log);

/* ---- history (history.c) ---- */
tg_history *tg__history_new(int capacity, const char *metric);
/* Appends (capacity is never exceeded by tg_fit). */
void tg__history_push(tg_history *h, const tg_epoch_log *log);
void tg__history_set_stopped(tg_history *h, int epoch);

#endif
