/* train.h - the training loop in the library: tg_fit, tg_evaluate and
 * tg_predict, Keras style, with a History, callbacks, early stopping and
 * "save the best model".
 *
 *     tg_data train = {.x = images, .labels = labels};     // or .targets = y
 *     tg_fit_opts o = tg_fit_defaults();
 *     o.epochs = 5;
 *     o.validation_split = 0.1;
 *     tg_history *h = NULL;
 *     if (tg_fit(model, opt, &train, &o, &h) != TG_OK)
 *         fprintf(stderr, "%s\n", tg_last_error());
 *     ...
 *     tg_history_free(h);
 *
 * The loss follows the data: int labels train with the sparse categorical
 * cross-entropy on the model's logits (tg_model_forward(m, x, true), fused
 * with a final softmax), float targets with the mean squared error on the
 * model's output. The metric is accuracy for labels and the mean absolute
 * error ("mae") for targets.
 *
 * Each call uses its own tape, made current only while it runs (the caller's
 * current tape and its tensors are left alone), and restores grad mode
 * (tg_set_grad_enabled) and the model's training mode before it returns.
 * See docs/training.md for output and a worked example.
 */
#ifndef TAPEGRAD_TRAIN_H
#define TAPEGRAD_TRAIN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "io.h"
#include "nn.h"
#include "optim.h"
#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- data ------------------------------------------------------------------
 * x holds N samples along dim 0, (N, input_shape...) in the model's dtype.
 * Exactly one of labels and targets is set:
 *   labels   N class ids in [0, K), K the model's output size (shape (K));
 *   targets  (N, output_shape...) in the model's dtype.
 * Instead of x, dataset may name a split of a tg_mnist_load dataset (x NULL):
 * its 8-bit pixels are then converted one batch at a time, to the values
 * tg_dataset_images(dataset, split) holds, so the numbers are the same as with
 * .x = tg_dataset_images(...) but the float copy of the split is never made.
 * Its labels are still given: .labels = tg_dataset_labels(dataset, split).
 * Everything is borrowed: it must stay alive and unchanged during the call. */
typedef struct tg_data {
    const tg_tensor *x;
    const int64_t *labels;
    const tg_tensor *targets;
    const tg_dataset *dataset; /* instead of x (NULL: use x) */
    tg_split split;            /* the dataset's split (default TG_SPLIT_TRAIN) */
} tg_data;

/* ---- History ---------------------------------------------------------------
 * One entry per completed epoch. The val_ fields are NaN without validation
 * data, metric and val_metric NaN with TG_METRIC_NONE. */
typedef struct tg_epoch_log {
    int epoch;         /* 1-based */
    double loss;       /* mean training loss over the epoch's samples */
    double metric;     /* training metric over the same samples */
    double val_loss;   /* on the validation data, after the epoch */
    double val_metric;
    double seconds;    /* wall time of the epoch, validation included */
} tg_epoch_log;

typedef struct tg_history tg_history;

/* Number of completed epochs (0 for NULL). */
TG_API int tg_history_len(const tg_history *h);
/* Entry i (0-based), borrowed until tg_history_free; NULL with TG_ERANGE
 * (TG_EINVAL for NULL h). */
TG_API const tg_epoch_log *tg_history_epoch(const tg_history *h, int i);
/* "accuracy", "mae" or "" (TG_METRIC_NONE); "" for NULL. */
TG_API const char *tg_history_metric_name(const tg_history *h);
/* The epoch (1-based) after which a callback stopped training, 0 when every
 * planned epoch ran (and for NULL). */
TG_API int tg_history_stopped_epoch(const tg_history *h);
/* NULL is ignored. */
TG_API void tg_history_free(tg_history *h);

/* ---- callbacks -------------------------------------------------------------
 * A callback is called with the state of the run at each event below. It
 * returns TG_FIT_CONTINUE, TG_FIT_STOP (end training after this batch's epoch
 * or this epoch; tg_fit then succeeds), or a negative tg_status, which makes
 * tg_fit fail with that code (set a message with tg_set_error: tg_fit
 * prefixes it with "tg_fit: callback <i> at epoch <e>: "). At TG_FIT_BEGIN
 * nothing has been trained yet, so a callback that refuses its settings there
 * leaves the model and optimizer untouched. Stopping at a batch ends the epoch
 * early: its line, validation and History entry cover the batches run. */
enum { TG_FIT_CONTINUE = 0, TG_FIT_STOP = 1 };

typedef enum tg_fit_event {
    TG_FIT_BEGIN = 0,  /* before the first epoch */
    TG_FIT_BATCH_END,  /* after each optimizer step */
    TG_FIT_EPOCH_END,  /* after each epoch's validation; state.log is set */
    TG_FIT_END,        /* after the last epoch (not called when tg_fit fails) */
} tg_fit_event;

typedef struct tg_fit_state {
    tg_fit_event event;
    int epoch;            /* 1-based; opts.initial_epoch (0) at TG_FIT_BEGIN */
    int epochs;           /* planned */
    int64_t batch;        /* 1-based batch of the epoch (TG_FIT_BATCH_END) */
    int64_t batches;      /* per epoch */
    double batch_loss;    /* TG_FIT_BATCH_END: this batch's mean loss */
    double loss, metric;  /* running means over the epoch so far */
    bool has_validation;
    const char *metric_name;  /* as tg_history_metric_name */
    const tg_epoch_log *log;  /* TG_FIT_EPOCH_END: this epoch's entry, else NULL */
    tg_model *model;
    tg_optim *optim;
} tg_fit_state;

typedef int (*tg_callback_fn)(const tg_fit_state *state, void *ctx);

typedef struct tg_callback {
    tg_callback_fn fn;
    void *ctx; /* passed back; borrowed */
} tg_callback;

/* The value a built-in callback watches, and which way is better: losses and
 * mae lower, accuracy higher. */
typedef enum tg_monitor {
    TG_MONITOR_VAL_LOSS = 0, /* Keras's default */
    TG_MONITOR_LOSS,
    TG_MONITOR_VAL_METRIC,
    TG_MONITOR_METRIC,
} tg_monitor;

/* Early stopping (keras.callbacks.EarlyStopping): after each epoch the
 * monitored value counts as an improvement when it beats the best so far by
 * more than min_delta; after `patience` epochs in a row without one, training
 * stops. Configure the first fields, then pass tg_early_stopping_callback(&es)
 * in opts.callbacks; the callback resets the rest at TG_FIT_BEGIN and fills
 * them in. es is borrowed and must outlive tg_fit.
 * At TG_FIT_BEGIN it fails with TG_EINVAL for patience < 0, min_delta
 * negative or not finite, an unknown monitor, a val_ monitor without
 * validation data, or a metric monitor with TG_METRIC_NONE. */
typedef struct tg_early_stopping {
    tg_monitor monitor;  /* default TG_MONITOR_VAL_LOSS */
    double min_delta;    /* >= 0 (default 0) */
    int patience;        /* >= 0 (default 0: stop at the first epoch without improvement) */
    /* filled in by the callback */
    double best;         /* best monitored value */
    int best_epoch;      /* its epoch (1-based), 0 before the first */
    int wait;            /* epochs since the last improvement */
    int stopped_epoch;   /* the epoch it stopped training after, 0 if it did not */
} tg_early_stopping;

TG_API tg_early_stopping tg_early_stopping_defaults(void);
TG_API tg_callback tg_early_stopping_callback(tg_early_stopping *es);

/* Keeps the best model (keras.callbacks.ModelCheckpoint with
 * save_best_only): after each epoch whose monitored value beats the best so
 * far by more than min_delta (the first epoch always does), calls
 * save(model, path, save_ctx): by default (save NULL) tg_model_save, which
 * writes the parameters as a safetensors file atomically (checkpoint.h), or
 * a function of the caller's. A failing save (negative status) makes tg_fit
 * fail with its message. Fields after save_ctx are filled in. Errors at
 * TG_FIT_BEGIN as tg_early_stopping, plus TG_EINVAL for a NULL path. */
typedef tg_status (*tg_save_fn)(tg_model *model, const char *path, void *ctx);

typedef struct tg_save_best {
    tg_monitor monitor;  /* default TG_MONITOR_VAL_LOSS */
    double min_delta;    /* >= 0 (default 0) */
    const char *path;    /* borrowed */
    tg_save_fn save;     /* NULL: tg_model_save */
    void *save_ctx;
    /* filled in by the callback */
    double best;
    int best_epoch;      /* the epoch last saved, 0 before the first save */
    int saves;           /* number of saves */
} tg_save_best;

TG_API tg_save_best tg_save_best_defaults(const char *path, tg_save_fn save, void *save_ctx);
TG_API tg_callback tg_save_best_callback(tg_save_best *sb);

/* ---- fit ------------------------------------------------------------------- */
typedef enum tg_metric {
    TG_METRIC_AUTO = 0, /* accuracy for labels, mae for targets */
    TG_METRIC_NONE,     /* no metric: NaN in the History, nothing printed */
} tg_metric;

/* Whether the progress line is redrawn in place with '\r' (a terminal) or
 * only printed whole at the end of each epoch (a file or pipe). */
typedef enum tg_tty {
    TG_TTY_AUTO = 0, /* isatty(fileno(stream)) */
    TG_TTY_NO,
    TG_TTY_YES,
} tg_tty;

typedef struct tg_fit_opts {
    int epochs;               /* the last epoch's number, >= 1 (default 1) */
    /* Epochs already done (Keras's initial_epoch, default 0): training runs
     * epochs initial_epoch + 1 .. epochs, and the shuffling is first moved on
     * by initial_epoch epochs, so that a run resumed from a checkpoint taken
     * after epoch k (tg_checkpoint_save of the model and optimizer, with
     * initial_epoch = k) visits the batches the uninterrupted run would have,
     * and gives the same numbers bit for bit. 0 <= initial_epoch < epochs. */
    int initial_epoch;
    int64_t batch_size;       /* >= 1 (default 32); also the validation batch */
    bool shuffle;             /* reshuffle the training samples every epoch (default true) */
    uint64_t seed;            /* for the shuffling (default 0): tg_batcher's order */
    tg_metric metric;         /* default TG_METRIC_AUTO */
    /* Validation: at most one of the two (default neither). A split holds
     * out the last floor(N * split) samples before any shuffling, as Keras
     * does; both parts must keep at least one sample. */
    double validation_split;  /* in [0, 1) */
    const tg_data *validation_data; /* borrowed; same kind (labels/targets) as the data */
    /* Output, as Keras's verbose: 0 silent, 1 "Epoch i/n" and a progress
     * bar per epoch, 2 "Epoch i/n" and one summary line per epoch. */
    int verbose;              /* 0, 1 or 2 (default 1) */
    FILE *stream;             /* default NULL: stdout */
    tg_tty tty;               /* default TG_TTY_AUTO */
    const tg_callback *callbacks; /* n_callbacks entries, called in order; borrowed */
    int n_callbacks;
} tg_fit_opts;

/* epochs 1, initial_epoch 0, batch_size 32, shuffle true, seed 0, TG_METRIC_AUTO, no
 * validation, verbose 1 on stdout, TG_TTY_AUTO, no callbacks. */
TG_API tg_fit_opts tg_fit_defaults(void);

/* Trains model with optim on data for opts->epochs epochs (opts NULL means
 * tg_fit_defaults()). Each step: forward on a batch, the mean loss, backward,
 * tg_optim_step; grads are zeroed before each backward. With verbose 1 each
 * epoch prints, exactly:
 *
 *   Epoch 1/5
 *   250/250 [==============================] - 3s 11ms/step - loss: 0.4663 - accuracy: 0.8621
 *
 * (" - val_loss: ... - val_accuracy: ..." appended with validation; a time
 * per step below 1 ms is printed in us). On a terminal the line is redrawn
 * every 10 batches with "ETA: 2s" in place of the times. With verbose 2 the
 * second line is
 * "250/250 - 3s - loss: 0.4663 - accuracy: 0.8621 - 3s/epoch - 11ms/step".
 *
 * On success *history (history may be NULL) receives an owned History
 * (tg_history_free). On failure *history is untouched and the status says why:
 *   TG_EINVAL  NULL model, optim or data; no x; both x and dataset; a split
 *              that is neither TG_SPLIT_TRAIN nor TG_SPLIT_TEST; neither or both
 *              of labels and targets; bad options (the message names the field
 *              and value);
 *              an optimizer that updates none of the model's parameters;
 *              a label outside [0, K); a model whose output is not (K) with
 *              labels; the data (or a split's part) empty
 *   TG_EDTYPE  x, the dataset or targets not in the model's dtype
 *   TG_ESHAPE  x (or the dataset's images) not (N, input_shape...), targets
 *              not (N, output_shape...)
 *   TG_ENOMEM, or an op's, the optimizer's or a callback's error.
 * Errors in the arguments are found before anything is trained: the model and
 * optimizer are then unchanged. An error during training (out of memory, a
 * callback's) leaves them as the last completed step made them. */
TG_API tg_status tg_fit(tg_model *model, tg_optim *optim, const tg_data *data,
                        const tg_fit_opts *opts, tg_history **history);

/* The mean loss and metric of the model on data, in batches of
 * opts->batch_size (opts NULL: tg_fit_defaults(); only batch_size and metric
 * are used), with grad mode off and the model in evaluation mode (dropout
 * off), both restored afterwards. Prints nothing. loss and metric may be NULL;
 * *metric is NaN with TG_METRIC_NONE. On failure both are untouched: the
 * data errors of tg_fit, TG_ENOMEM, an op's error. */
TG_API tg_status tg_evaluate(tg_model *model, const tg_data *data, const tg_fit_opts *opts,
                             double *loss, double *metric);

/* The model's output (tg_model_forward(m, x, false): probabilities after a
 * final softmax) for every sample of x (N, input_shape...), computed in
 * batches of batch_size (>= 1) with grad off and in evaluation mode, both
 * restored. *out receives a new caller-owned (N, output_shape...) tensor in
 * the model's dtype (tg_tensor_free). On failure *out is untouched:
 * TG_EINVAL (NULL model, x or out, batch_size < 1, x with 0 samples),
 * TG_EDTYPE, TG_ESHAPE as tg_fit, TG_ENOMEM. */
TG_API tg_status tg_predict(tg_model *model, const tg_tensor *x, int64_t batch_size,
                            tg_tensor **out);

#ifdef __cplusplus
}
#endif
#endif
