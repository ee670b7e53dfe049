/* data.c - the checks that tg_fit, tg_evaluate and tg_predict run on their
 * data before touching anything, the held-out part of a validation split,
 * and batches of inputs together with labels or float targets.
 *
 * Batching itself is lib/io's tg_batcher: targets get a second batcher with
 * the same seed, so no second shuffling scheme exists to drift from the
 * documented one. */
#include <string.h>

#include "io/io_internal.h"
#include "train/train_internal.h"

/* "(N, 1, 28, 28)" for a per-sample shape, the notation of tg_model_forward. */
static const char *batch_shape_str(char *buf, size_t size, const char *first, int ndim,
                                   const int64_t *shape)
{
    size_t len = (size_t)snprintf(buf, size, "(%s", first);
    for (int i = 0; i < ndim && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, ", %lld", (long long)shape[i]);
    if (len < size)
        snprintf(buf + len, size - len, ")");
    return buf;
}

static bool rest_equal(const tg_tensor *t, int ndim, const int64_t *shape)
{
    if (tg_tensor_ndim(t) != ndim + 1)
        return false;
    for (int i = 0; i < ndim; i++)
        if (tg_tensor_shape(t)[i + 1] != shape[i])
            return false;
    return true;
}

tg_status tg__check_x(const char *fn, const char *name, const tg_model *m, const tg_tensor *x)
{
    char got[TG__SHAPE_STR], want[TG__SHAPE_STR];
    if (!x)
        return tg__fail(TG_EINVAL, "%s: %s is NULL", fn, name);
    if (tg_tensor_dtype(x) != tg_model_dtype(m))
        return tg__fail(TG_EDTYPE, "%s: %s is %s but the model is %s", fn, name,
                        tg_dtype_name(tg_tensor_dtype(x)), tg_dtype_name(tg_model_dtype(m)));
    int in_ndim;
    const int64_t *in = tg_model_input_shape(m, &in_ndim);
    if (!rest_equal(x, in_ndim, in))
        return tg__fail(TG_ESHAPE, "%s: %s is %s, expected %s", fn, name,
                        tg__shape_str(got, tg_tensor_ndim(x), tg_tensor_shape(x)),
                        batch_shape_str(want, sizeof want, "N", in_ndim, in));
    if (tg_tensor_dim(x, 0) < 1)
        return tg__fail(TG_EINVAL, "%s: %s has 0 samples", fn, name);
    return TG_OK;
}

static tg_status check_labels(const char *fn, const char *what, const tg_model *m,
                              const int64_t *labels, int64_t n)
{
    char buf[TG__SHAPE_STR];
    int out_ndim;
    const int64_t *out = tg_model_output_shape(m, &out_ndim);
    if (out_ndim != 1)
        return tg__fail(TG_ESHAPE, "%s: %s.labels need a model output of shape (N, K), got %s",
                        fn, what, batch_shape_str(buf, sizeof buf, "N", out_ndim, out));
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= out[0])
            return tg__fail(TG_EINVAL, "%s: %s.labels[%lld] = %lld outside [0, %lld) (the "
                            "model's %lld outputs)", fn, what, (long long)i,
                            (long long)labels[i], (long long)out[0], (long long)out[0]);
    return TG_OK;
}

static tg_status check_targets(const char *fn, const char *what, const tg_model *m,
                               const tg_tensor *t, int64_t n)
{
    char got[TG__SHAPE_STR], want[TG__SHAPE_STR], first[32];
    if (tg_tensor_dtype(t) != tg_model_dtype(m))
        return tg__fail(TG_EDTYPE, "%s: %s.targets are %s but the model is %s", fn, what,
                        tg_dtype_name(tg_tensor_dtype(t)), tg_dtype_name(tg_model_dtype(m)));
    int out_ndim;
    const int64_t *out = tg_model_output_shape(m, &out_ndim);
    if (!rest_equal(t, out_ndim, out) || tg_tensor_dim(t, 0) != n) {
        snprintf(first, sizeof first, "%lld", (long long)n);
        return tg__fail(TG_ESHAPE, "%s: %s.targets are %s, expected %s (x's samples, the "
                        "model's output)", fn, what,
                        tg__shape_str(got, tg_tensor_ndim(t), tg_tensor_shape(t)),
                        batch_shape_str(want, sizeof want, first, out_ndim, out));
    }
    return TG_OK;
}

/* The dataset form of tg__check_x: dtype and (1, rows, cols) against the model. */
static tg_status check_dataset(const char *fn, const char *what, const tg_model *m,
                               const tg_data *d, tg__fitset *out)
{
    char got[TG__SHAPE_STR], want[TG__SHAPE_STR];
    if (d->x)
        return tg__fail(TG_EINVAL, "%s: %s has both x and dataset (set one)", fn, what);
    if (d->split != TG_SPLIT_TRAIN && d->split != TG_SPLIT_TEST)
        return tg__fail(TG_EINVAL, "%s: %s.split %d is neither TG_SPLIT_TRAIN nor "
                        "TG_SPLIT_TEST", fn, what, (int)d->split);
    tg_dtype dt = tg_dataset_dtype(d->dataset);
    if (dt != tg_model_dtype(m))
        return tg__fail(TG_EDTYPE, "%s: %s.dataset is %s but the model is %s", fn, what,
                        tg_dtype_name(dt), tg_dtype_name(tg_model_dtype(m)));
    const int64_t *shape = tg_dataset_shape(d->dataset, d->split);
    int in_ndim;
    const int64_t *in = tg_model_input_shape(m, &in_ndim);
    if (in_ndim != 3 || shape[1] != in[0] || shape[2] != in[1] || shape[3] != in[2])
        return tg__fail(TG_ESHAPE, "%s: %s.dataset's images are %s, expected %s", fn, what,
                        tg__shape_str(got, 4, shape),
                        batch_shape_str(want, sizeof want, "N", in_ndim, in));
    if (shape[0] < 1)
        return tg__fail(TG_EINVAL, "%s: %s.dataset has 0 samples", fn, what);
    *out = (tg__fitset){.px = tg_dataset_pixels(d->dataset, d->split), .px_dtype = dt};
    memcpy(out->px_shape, shape, sizeof out->px_shape);
    return TG_OK;
}

tg_status tg__check_data(const char *fn, const char *what, const tg_model *m, const tg_data *d,
                         tg__fitset *out)
{
    if (!d)
        return tg__fail(TG_EINVAL, "%s: NULL %s", fn, what);
    tg__fitset s = {0};
    tg_status st;
    if (d->dataset) {
        st = check_dataset(fn, what, m, d, &s);
    } else {
        char name[64];
        snprintf(name, sizeof name, "%s.x", what);
        st = tg__check_x(fn, name, m, d->x);
        s.x = d->x;
    }
    if (st != TG_OK)
        return st;
    if (!d->labels == !d->targets)
        return tg__fail(TG_EINVAL, "%s: %s has %s labels and targets (set exactly one)", fn,
                        what, d->labels ? "both" : "neither");
    int64_t n = s.x ? tg_tensor_dim(s.x, 0) : s.px_shape[0];
    st = d->labels ? check_labels(fn, what, m, d->labels, n)
                   : check_targets(fn, what, m, d->targets, n);
    if (st != TG_OK)
        return st;
    s.labels = d->labels;
    s.targets = d->targets;
    s.n = n;
    *out = s;
    return TG_OK;
}

void tg__split(const tg__fitset *all, int64_t n_train, tg__fitset *train, tg__fitset *val)
{
    *train = *all;
    train->n = n_train;
    *val = *all;
    val->first = all->first + n_train;
    val->n = all->n - n_train;
    if (all->labels)
        val->labels = all->labels + n_train;
}

const char *tg__metric_name(const tg__fitset *s) { return s->labels ? "accuracy" : "mae"; }

tg_status tg__batches_open(const tg__fitset *s, int64_t batch_size, bool shuffle, uint64_t seed,
                           tg__batches *b)
{
    static const char fn[] = "tg_batcher_new";
    tg__batches r = {NULL, NULL};
    if (s->x) {
        r.x = tg__batcher_new_at(fn, s->x, s->first, s->labels, s->n, batch_size, shuffle,
                                 seed);
    } else {
        // The held-out part starts first samples into the pixels.
        int64_t shape[4];
        memcpy(shape, s->px_shape, sizeof shape);
        shape[0] -= s->first;
        size_t row = (size_t)(shape[1] * shape[2] * shape[3]);
        r.x = tg__batcher_new_u8(fn, s->px + (size_t)s->first * row, s->px_dtype, 4, shape,
                                 s->labels, s->n, batch_size, shuffle, seed);
    }
    if (r.x && s->targets)
        r.t = tg__batcher_new_at(fn, s->targets, s->first, NULL, s->n, batch_size, shuffle,
                                 seed);
    if (!r.x || (s->targets && !r.t)) {
        tg__batches_close(&r);
        return tg_last_status();
    }
    *b = r;
    return TG_OK;
}

bool tg__batches_next(tg__batches *b, tg_tensor **x, const int64_t **y, tg_tensor **t,
                      int64_t *count)
{
    *t = NULL;
    if (!tg_batcher_next(b->x, x, y, count))
        return false;
    // Same n, batch size and seed: the second batcher yields the same samples.
    return !b->t || tg_batcher_next(b->t, t, NULL, NULL);
}

void tg__batches_reset(tg__batches *b)
{
    tg_batcher_reset_epoch(b->x);
    tg_batcher_reset_epoch(b->t);
}

void tg__batches_close(tg__batches *b)
{
    tg_batcher_free(b->x);
    tg_batcher_free(b->t);
    b->x = b->t = NULL;
}
