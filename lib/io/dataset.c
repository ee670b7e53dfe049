/* dataset.c - MNIST-style datasets as tensors, and the mini-batch iterator.
 * Reading IDX files (and gzip) is idx.c's job; this file only turns the bytes
 * into caller-facing tensors and label arrays, and gathers batches. */
#define _POSIX_C_SOURCE 200809L /* stat */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "io/io_internal.h"
#include "tapegrad/checkpoint.h"
#include "tapegrad/io.h"

/* ---- MNIST ------------------------------------------------------------- */

/* The pixels stay the IDX files' bytes (a quarter of float32's size, an
 * eighth of float64's): batches convert them (tg_dataset_batcher, tg_fit on a
 * dataset), and the float tensor is only made when tg_dataset_images asks. */
struct tg_dataset {
    tg_dtype dtype;
    uint8_t *file[2];         /* indexed by tg_split: the IDX buffers, header included */
    const uint8_t *pixels[2]; /* N*rows*cols bytes inside file[] */
    int64_t shape[2][4];      /* (N, 1, rows, cols) */
    tg_tensor *images[2];     /* NULL until the first tg_dataset_images */
    int64_t *labels[2];
    int64_t count[2];
    int num_classes;
};

static const char *const image_names[2] = {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"};
static const char *const label_names[2] = {"train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"};
static const char *const split_names[2] = {"train", "test"};

/* "dir/name" plus suffix, tg__malloc'd. */
static char *join_path(const char *dir, const char *name, const char *suffix)
{
    size_t n = strlen(dir) + 1 + strlen(name) + strlen(suffix) + 1;
    char *p = tg__malloc(n);
    if (p)
        snprintf(p, n, "%s/%s%s", dir, name, suffix);
    return p;
}

/* 0 when path can be opened for reading, else the errno of the attempt. A
 * path that exists but is not a regular file also gives 0, without being
 * opened (a FIFO would block): tg_idx_load then refuses it by name. */
static int open_errno(const char *path)
{
    struct stat st;
    errno = 0;
    if (stat(path, &st) != 0)
        return errno ? errno : ENOENT;
    if (!S_ISREG(st.st_mode))
        return 0;
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno ? errno : EINVAL;
    fclose(f);
    return 0;
}

/* Prefixes the pending message with "tg_mnist_load: " and returns its code. */
static tg_status rewrap(void)
{
    char msg[400];
    snprintf(msg, sizeof msg, "%s", tg_last_error());
    return tg__fail(tg_last_status(), "tg_mnist_load: %s", msg);
}

/* Loads dir/name.gz when it can be opened, else dir/name. A .gz that opens
 * but is corrupt is reported as such rather than hidden by the fallback. */
static tg_status open_idx(const char *dir, const char *name, tg_idx **out)
{
    char *gz = join_path(dir, name, ".gz");
    char *raw = join_path(dir, name, "");
    tg_status st = TG_OK;
    int gz_err = 0, raw_err = 0;
    if (!gz || !raw)
        st = tg__fail(TG_ENOMEM, "tg_mnist_load: out of memory");
    else if ((gz_err = open_errno(gz)) == 0)
        st = (*out = tg_idx_load(gz)) ? TG_OK : rewrap();
    else if ((raw_err = open_errno(raw)) == 0)
        st = (*out = tg_idx_load(raw)) ? TG_OK : rewrap();
    else {
        // strerror may reuse one buffer, so the first text is copied out.
        char gz_msg[128];
        snprintf(gz_msg, sizeof gz_msg, "%s", strerror(gz_err));
        st = tg__fail(TG_EIO, "tg_mnist_load: %s: cannot open %s.gz (%s) or %s (%s)", dir,
                      name, gz_msg, name, strerror(raw_err));
    }
    tg__free(gz);
    tg__free(raw);
    return st;
}

/* Pixel bytes b as dtype: (float)b / 255.0f or (double)b / 255.0, in [0, 1].
 * Every path that makes float pixels goes through this table, so the tensor of
 * tg_dataset_images and a converted batch hold the same bits. */
static void pixel_table(tg_dtype dtype, void *table)
{
    for (int b = 0; b < 256; b++)
        if (dtype == TG_F32)
            ((float *)table)[b] = (float)b / 255.0f;
        else
            ((double *)table)[b] = (double)b / 255.0;
}

static void convert_pixels(tg_dtype dtype, const void *table, const uint8_t *px, size_t n,
                           void *dst)
{
    if (dtype == TG_F32) {
        const float *t = table;
        float *d = dst;
        for (size_t i = 0; i < n; i++)
            d[i] = t[px[i]];
    } else {
        const double *t = table;
        double *d = dst;
        for (size_t i = 0; i < n; i++)
            d[i] = t[px[i]];
    }
}

/* Keeps the image bytes of idx (taking its buffer: no copy). */
static void keep_pixels(tg_idx *idx, tg_split split, tg_dataset *ds)
{
    const int64_t *d = tg_idx_dims(idx);
    int64_t *shape = ds->shape[split];
    shape[0] = d[0];
    shape[1] = 1;
    shape[2] = d[1];
    shape[3] = d[2];
    ds->pixels[split] = tg_idx_data(idx);
    ds->file[split] = tg__idx_take(idx);
}

static tg_status labels_to_array(const tg_idx *idx, int64_t **out, int *num_classes)
{
    size_t n = tg_idx_size(idx);
    int64_t *labels = n > SIZE_MAX / sizeof *labels ? NULL : tg__malloc(n * sizeof *labels);
    if (!labels)
        return tg__fail(TG_ENOMEM, "tg_mnist_load: out of memory for %zu labels", n);
    const uint8_t *src = tg_idx_data(idx);
    // Labels are unsigned bytes, so every class id is below 256 by construction.
    for (size_t i = 0; i < n; i++) {
        labels[i] = src[i];
        if (src[i] + 1 > *num_classes)
            *num_classes = src[i] + 1;
    }
    *out = labels;
    return TG_OK;
}

/* Checks that images are N x rows x cols and labels hold N entries. */
static tg_status check_pair(const char *dir, tg_split split, const tg_idx *im,
                            const tg_idx *lb)
{
    const char *s = split_names[split];
    if (tg_idx_ndim(im) != 3)
        return tg__fail(TG_EFORMAT, "tg_mnist_load: %s/%s: expected 3 dims (N x rows x cols), "
                        "got %d", dir, image_names[split], tg_idx_ndim(im));
    if (tg_idx_ndim(lb) != 1)
        return tg__fail(TG_EFORMAT, "tg_mnist_load: %s/%s: expected 1 dim (N), got %d", dir,
                        label_names[split], tg_idx_ndim(lb));
    if (tg_idx_dims(im)[0] != tg_idx_dims(lb)[0])
        return tg__fail(TG_EFORMAT, "tg_mnist_load: %s: %s split has %lld images but %lld "
                        "labels", dir, s, (long long)tg_idx_dims(im)[0],
                        (long long)tg_idx_dims(lb)[0]);
    return TG_OK;
}

static tg_status load_split(const char *dir, tg_split split, tg_dataset *ds)
{
    tg_idx *im = NULL, *lb = NULL;
    tg_status st = open_idx(dir, image_names[split], &im);
    if (st == TG_OK)
        st = open_idx(dir, label_names[split], &lb);
    if (st == TG_OK)
        st = check_pair(dir, split, im, lb);
    if (st == TG_OK)
        st = labels_to_array(lb, &ds->labels[split], &ds->num_classes);
    if (st == TG_OK) {
        ds->count[split] = tg_idx_dims(lb)[0];
        keep_pixels(im, split, ds);
    }
    tg_idx_free(im);
    tg_idx_free(lb);
    return st;
}

tg_dataset *tg_mnist_load(const char *dir, tg_dtype dtype)
{
    if (!dir)
        return tg__fail_null(TG_EINVAL, "tg_mnist_load: NULL dir");
    if (dtype != TG_F32 && dtype != TG_F64)
        return tg__fail_null(TG_EINVAL, "tg_mnist_load: invalid dtype %d", (int)dtype);
    tg_dataset *ds = tg__calloc(1, sizeof *ds);
    if (!ds)
        return tg__fail_null(TG_ENOMEM, "tg_mnist_load: out of memory");
    ds->dtype = dtype;
    tg_status st = load_split(dir, TG_SPLIT_TRAIN, ds);
    if (st == TG_OK)
        st = load_split(dir, TG_SPLIT_TEST, ds);
    if (st == TG_OK) {
        // A model trained on one image size cannot be evaluated on another.
        const int64_t *a = ds->shape[0], *b = ds->shape[1];
        if (a[2] != b[2] || a[3] != b[3])
            st = tg__fail(TG_EFORMAT, "tg_mnist_load: %s: train images are %lldx%lld but test "
                          "images %lldx%lld", dir, (long long)a[2], (long long)a[3],
                          (long long)b[2], (long long)b[3]);
    }
    if (st != TG_OK) {
        tg_dataset_free(ds);
        return NULL;
    }
    return ds;
}

void tg_dataset_free(tg_dataset *ds)
{
    if (!ds)
        return;
    for (int s = 0; s < 2; s++) {
        tg_tensor_free(ds->images[s]);
        tg__free(ds->file[s]);
        tg__free(ds->labels[s]);
    }
    tg__free(ds);
}

/* Getters record TG_EINVAL for a NULL dataset or a split that is neither
 * train nor test, besides returning NULL/0. */
static bool valid_split(const tg_dataset *ds, tg_split split, const char *fn)
{
    if (!ds) {
        tg__null_arg(fn, "dataset");
        return false;
    }
    if (split != TG_SPLIT_TRAIN && split != TG_SPLIT_TEST) {
        tg__fail(TG_EINVAL, "%s: split %d is neither TG_SPLIT_TRAIN nor TG_SPLIT_TEST", fn,
                 (int)split);
        return false;
    }
    return true;
}

/* Made on first use and cached: the dataset is logically const (the tensor is
 * a function of the pixels), hence the cast. */
tg_tensor *tg_dataset_images(const tg_dataset *ds, tg_split split)
{
    if (!valid_split(ds, split, "tg_dataset_images"))
        return NULL;
    if (ds->images[split])
        return ds->images[split];
    tg_tensor *t = tg__tensor_alloc(NULL, "tg_dataset_images", ds->dtype, 4, ds->shape[split],
                                    false);
    if (!t)
        return NULL;
    double table[256];
    pixel_table(ds->dtype, table);
    convert_pixels(ds->dtype, table, ds->pixels[split], (size_t)tg_tensor_numel(t),
                   tg_tensor_data(t));
    ((tg_dataset *)ds)->images[split] = t;
    return t;
}

const uint8_t *tg_dataset_pixels(const tg_dataset *ds, tg_split split)
{
    return valid_split(ds, split, "tg_dataset_pixels") ? ds->pixels[split] : NULL;
}

const int64_t *tg_dataset_shape(const tg_dataset *ds, tg_split split)
{
    return valid_split(ds, split, "tg_dataset_shape") ? ds->shape[split] : NULL;
}

tg_dtype tg_dataset_dtype(const tg_dataset *ds)
{
    if (!ds)
        tg__null_arg("tg_dataset_dtype", "dataset");
    return ds ? ds->dtype : TG_F32;
}

const int64_t *tg_dataset_labels(const tg_dataset *ds, tg_split split)
{
    return valid_split(ds, split, "tg_dataset_labels") ? ds->labels[split] : NULL;
}

int64_t tg_dataset_count(const tg_dataset *ds, tg_split split)
{
    return valid_split(ds, split, "tg_dataset_count") ? ds->count[split] : 0;
}

int tg_dataset_num_classes(const tg_dataset *ds)
{
    if (!ds)
        tg__null_arg("tg_dataset_num_classes", "dataset");
    return ds ? ds->num_classes : 0;
}

/* ---- mini-batches ------------------------------------------------------ */

struct tg_batcher {
    const tg_tensor *images; /* borrowed; NULL for 8-bit samples */
    const uint8_t *bytes;    /* borrowed 8-bit samples, or NULL */
    int64_t first;           /* images: the row of sample 0 */
    const int64_t *labels;   /* borrowed, may be NULL */
    int64_t n, batch_size, pos;
    bool shuffle;
    tg_rng rng;
    tg_rng epoch_rng;  /* rng before this epoch's shuffle (tg_batcher_get_state) */
    int64_t *order;    /* sample index of each position in the epoch */
    size_t row_bytes;  /* bytes of one sample in the source */
    size_t row_elems;  /* elements of one sample */
    tg_dtype dtype;    /* of the batches */
    tg_tensor *full;   /* (batch_size, ...) or NULL when n < batch_size */
    tg_tensor *tail;   /* (n % batch_size, ...) or NULL when that is 0 */
    int64_t *ybuf;     /* labels of the current batch */
    double table[256]; /* bytes: byte -> value (pixel_table), float or double */
};

/* Fisher-Yates from the identity, so an epoch's order depends only on the
 * generator's state, not on the previous epoch's order. */
static void new_order(tg_batcher *b)
{
    b->epoch_rng = b->rng;
    for (int64_t i = 0; i < b->n; i++)
        b->order[i] = i;
    if (!b->shuffle)
        return;
    for (int64_t i = b->n - 1; i > 0; i--) {
        int64_t j = (int64_t)tg_rng_below(&b->rng, (uint64_t)i + 1);
        int64_t t = b->order[i];
        b->order[i] = b->order[j];
        b->order[j] = t;
    }
}

/* A batch tensor of `rows` samples shaped like the source otherwise. */
static tg_tensor *batch_tensor(const char *fn, tg_dtype dtype, int ndim, const int64_t *src,
                               int64_t rows)
{
    int64_t shape[TG_MAX_DIMS];
    memcpy(shape, src, (size_t)ndim * sizeof *shape);
    shape[0] = rows;
    return tg__tensor_alloc(NULL, fn, dtype, ndim, shape, true);
}

static tg_status check_batcher_args(const char *fn, int ndim, int64_t avail, int64_t n,
                                    int64_t batch_size)
{
    if (ndim < 1)
        return tg__fail(TG_EINVAL, "%s: images must have a sample dimension (got a 0-dim "
                        "tensor)", fn);
    if (n < 1 || n > avail)
        return tg__fail(TG_EINVAL, "%s: n %lld outside 1..%lld (images' dim 0)", fn,
                        (long long)n, (long long)avail);
    if (batch_size < 1)
        return tg__fail(TG_EINVAL, "%s: batch_size %lld < 1", fn, (long long)batch_size);
    return TG_OK;
}

/* The part every constructor shares, once the source is checked and set in
 * proto: index and label buffers, the batch tensors, the first order. */
static tg_batcher *batcher_finish(const char *fn, const tg_batcher *proto, int ndim,
                                  const int64_t *shape)
{
    int64_t n = proto->n, batch_size = proto->batch_size;
    tg_batcher *b = tg__calloc(1, sizeof *b);
    if (!b)
        return tg__fail_null(TG_ENOMEM, "%s: out of memory", fn);
    *b = *proto;
    b->order = tg__malloc((size_t)n * sizeof *b->order);
    b->ybuf = tg__malloc((size_t)batch_size * sizeof *b->ybuf);
    if (!b->order || !b->ybuf) {
        tg_batcher_free(b);
        return tg__fail_null(TG_ENOMEM, "%s: out of memory for %lld indices", fn,
                             (long long)n);
    }
    b->full = batch_tensor(fn, b->dtype, ndim, shape, batch_size);
    if (b->full && n % batch_size)
        b->tail = batch_tensor(fn, b->dtype, ndim, shape, n % batch_size);
    if (!b->full || (n % batch_size && !b->tail)) {
        tg_batcher_free(b);
        return NULL;
    }
    new_order(b);
    return b;
}

tg_batcher *tg__batcher_new_at(const char *fn, const tg_tensor *images, int64_t first,
                               const int64_t *labels, int64_t n, int64_t batch_size,
                               bool shuffle, uint64_t seed)
{
    if (!images)
        return tg__fail_null(TG_EINVAL, "%s: NULL images", fn);
    int ndim = tg_tensor_ndim(images);
    int64_t rows = ndim ? tg_tensor_dim(images, 0) : 0;
    if (check_batcher_args(fn, ndim, rows - first, n, batch_size) != TG_OK)
        return NULL;
    tg_batcher p = {.images = images, .first = first, .labels = labels, .n = n,
                    .batch_size = batch_size > n ? n : batch_size, .shuffle = shuffle,
                    .rng = tg_rng_seeded(seed), .dtype = tg_tensor_dtype(images)};
    // batch_size > n: one batch of all n; the full-size buffer would never be used.
    p.row_elems = rows ? (size_t)(tg_tensor_numel(images) / rows) : 0;
    p.row_bytes = p.row_elems * tg_dtype_size(p.dtype);
    return batcher_finish(fn, &p, ndim, tg_tensor_shape(images));
}

tg_batcher *tg__batcher_new_u8(const char *fn, const uint8_t *data, tg_dtype dtype, int ndim,
                               const int64_t *shape, const int64_t *labels, int64_t n,
                               int64_t batch_size, bool shuffle, uint64_t seed)
{
    if (!data)
        return tg__fail_null(TG_EINVAL, "%s: NULL data", fn);
    if (check_batcher_args(fn, ndim, ndim ? shape[0] : 0, n, batch_size) != TG_OK)
        return NULL;
    tg_batcher p = {.bytes = data, .labels = labels, .n = n,
                    .batch_size = batch_size > n ? n : batch_size, .shuffle = shuffle,
                    .rng = tg_rng_seeded(seed), .dtype = dtype};
    p.row_elems = 1;
    for (int i = 1; i < ndim; i++)
        p.row_elems *= (size_t)shape[i];
    p.row_bytes = p.row_elems;
    pixel_table(dtype, p.table);
    return batcher_finish(fn, &p, ndim, shape);
}

tg_batcher *tg_batcher_new(const tg_tensor *images, const int64_t *labels, int64_t n,
                           int64_t batch_size, bool shuffle, uint64_t seed)
{
    return tg__batcher_new_at("tg_batcher_new", images, 0, labels, n, batch_size, shuffle,
                              seed);
}

tg_batcher *tg_dataset_batcher(const tg_dataset *ds, tg_split split, int64_t batch_size,
                               bool shuffle, uint64_t seed)
{
    static const char fn[] = "tg_dataset_batcher";
    if (!valid_split(ds, split, fn))
        return NULL;
    return tg__batcher_new_u8(fn, ds->pixels[split], ds->dtype, 4, ds->shape[split],
                              ds->labels[split], ds->count[split], batch_size, shuffle, seed);
}

bool tg_batcher_next(tg_batcher *b, tg_tensor **x, const int64_t **y, int64_t *count)
{
    if (!b) {
        tg__fail(TG_EINVAL, "tg_batcher_next: NULL batcher");
        return false;
    }
    if (b->pos >= b->n)
        return false;
    int64_t m = b->n - b->pos < b->batch_size ? b->n - b->pos : b->batch_size;
    tg_tensor *t = m == b->batch_size ? b->full : b->tail;
    const uint8_t *src = b->bytes ? b->bytes : tg_tensor_data_const(b->images);
    src += (size_t)b->first * b->row_bytes;
    uint8_t *dst = tg_tensor_data(t);
    size_t out_row = b->row_elems * tg_dtype_size(b->dtype);
    for (int64_t i = 0; i < m; i++) {
        int64_t k = b->order[b->pos + i];
        const uint8_t *row = src + (size_t)k * b->row_bytes;
        if (b->bytes)
            convert_pixels(b->dtype, b->table, row, b->row_elems, dst + (size_t)i * out_row);
        else
            memcpy(dst + (size_t)i * out_row, row, b->row_bytes);
        if (b->labels)
            b->ybuf[i] = b->labels[k];
    }
    b->pos += m;
    if (x)
        *x = t;
    if (y)
        *y = b->labels ? b->ybuf : NULL;
    if (count)
        *count = m;
    return true;
}

void tg_batcher_reset_epoch(tg_batcher *b)
{
    if (!b) {
        tg__null_arg("tg_batcher_reset_epoch", "batcher");
        return;
    }
    b->pos = 0;
    new_order(b);
}

int64_t tg_batcher_num_batches(const tg_batcher *b)
{
    if (!b)
        tg__null_arg("tg_batcher_num_batches", "batcher");
    return b ? (b->n + b->batch_size - 1) / b->batch_size : 0;
}

void tg_batcher_free(tg_batcher *b)
{
    if (!b)
        return;
    tg_tensor_free(b->full);
    tg_tensor_free(b->tail);
    tg__free(b->order);
    tg__free(b->ybuf);
    tg__free(b);
}

/* Resumable position (checkpoint.h): the order is redrawn from the saved
 * generator, so only a few integers need saving. */
tg_status tg_batcher_get_state(const tg_batcher *b, tg_batcher_state *out)
{
    if (!b || !out)
        return tg__fail(TG_EINVAL, "tg_batcher_get_state: %s is NULL", !b ? "batcher" : "out");
    *out = (tg_batcher_state){b->n, b->batch_size, b->shuffle, b->pos, b->epoch_rng};
    return TG_OK;
}

tg_status tg_batcher_set_state(tg_batcher *b, const tg_batcher_state *s)
{
    static const char fn[] = "tg_batcher_set_state";
    if (!b || !s)
        return tg__fail(TG_EINVAL, "%s: %s is NULL", fn, !b ? "batcher" : "state");
    if (s->n != b->n || s->batch_size != b->batch_size || s->shuffle != b->shuffle)
        return tg__fail(TG_ESTATE, "%s: the state is for n %lld, batch_size %lld, shuffle %d; "
                        "this batcher has n %lld, batch_size %lld, shuffle %d", fn,
                        (long long)s->n, (long long)s->batch_size, (int)s->shuffle,
                        (long long)b->n, (long long)b->batch_size, (int)b->shuffle);
    if (s->pos < 0 || s->pos > b->n)
        return tg__fail(TG_ESTATE, "%s: pos %lld outside 0..%lld", fn, (long long)s->pos,
                        (long long)b->n);
    b->rng = s->epoch_rng;
    new_order(b);
    b->pos = s->pos;
    return TG_OK;
}
