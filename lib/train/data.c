/* data.c - the checks that tg_fit, tg_evaluate and tg_predict run on their
 * data before touching anything, the held-out part of a validation split,
 * and batches of inputs together with labels or float targets.
 *
 * Batching itself is lib/io's tg_batcher: targets get a second batcher with
 * the same seed, so no second shuffling scheme exists to drift from the
 * documented one. */
#include <string.h>

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

tg_status tg__check_data(const char *fn, const char *what, const tg_model *m, const tg_data *d,
                         tg__fitset *out)
{
    if (!d)
        return tg__fail(TG_EINVAL, "%s: NULL %s", fn, what);
    char name[64];
    snprintf(name, sizeof name, "%s.x", what);
    tg_status st = tg__check_x(fn, name, m, d->x);
    if (st != TG_OK)
        return st;
    if (!d->labels == !d->targets)
        return tg__fail(TG_EINVAL, "%s: %s has %s labels and targets (set exactly one)", fn,
                        what, d->labels ? "both" : "neither");
    int64_t n = tg_tensor_dim(d->x, 0);
    st = d->labels ? check_labels(fn, what, m, d->labels, n)
                   : check_targets(fn, what, m, d->targets, n);
    if (st != TG_OK)
        return st;
    *out = (tg__fitset){.x = d->x, .labels = d->labels, .targets = d->targets, .n = n};
    return TG_OK;
}

/* Rows [start, start + count) of t as a new caller-owned tensor. */
static tg_tensor *copy_rows(const char *fn, const tg_tensor *t, int64_t start, int64_t count)
{
    int64_t shape[TG_MAX_DIMS];
    int ndim = tg_tensor_ndim(t);
    memcpy(shape, tg_tensor_shape(t), (size_t)ndim * sizeof *shape);
    size_t row = (size_t)(tg_tensor_numel(t) / shape[0]) * tg_dtype_size(tg_tensor_dtype(t));
    shape[0] = count;
    tg_tensor *c = tg__tensor_alloc(NULL, fn, tg_tensor_dtype(t), ndim, shape, false);
    if (c && row)
        memcpy(tg_tensor_data(c), (const char *)tg_tensor_data_const(t) + (size_t)start * row,
               (size_t)count * row);
    return c;
}

tg_status tg__split(const char *fn, const tg__fitset *all, int64_t n_train, tg__fitset *train,
                    tg__fitset *val)
{
    int64_t n_val = all->n - n_train;
    tg__fitset v = {.labels = all->labels ? all->labels + n_train : NULL, .n = n_val};
    v.own_x = copy_rows(fn, all->x, n_train, n_val);
    if (v.own_x && all->targets)
        v.own_targets = copy_rows(fn, all->targets, n_train, n_val);
    if (!v.own_x || (all->targets && !v.own_targets)) {
        tg__fitset_release(&v);
        return tg_last_status();
    }
    v.x = v.own_x;
    v.targets = v.own_targets;
    *train = *all;
    train->n = n_train;
    *val = v;
    return TG_OK;
}

void tg__fitset_release(tg__fitset *s)
{
    tg_tensor_free(s->own_x);
    tg_tensor_free(s->own_targets);
    s->own_x = s->own_targets = NULL;
}

const char *tg__metric_name(const tg__fitset *s) { return s->labels ? "accuracy" : "mae"; }

tg_status tg__batches_open(const tg__fitset *s, int64_t batch_size, bool shuffle, uint64_t seed,
                           tg__batches *b)
{
    tg__batches r = {tg_batcher_new(s->x, s->labels, s->n, batch_size, shuffle, seed), NULL};
    if (r.x && s->targets)
        r.t = tg_batcher_new(s->targets, NULL, s->n, batch_size, shuffle, seed);
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
