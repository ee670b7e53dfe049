/* fuzz_mnist.c - tg_mnist_load on a directory of four fuzzed files, then
 * one epoch of tg_batcher over the result.
 *
 * Input layout: byte 0 holds flags (bit 0: float64; bits 1..4: file k is
 * named with ".gz"; bits 5..7 pick the batch size), bytes 1..8 four
 * little-endian 16-bit lengths, then the four files in the order
 * train-images, train-labels, t10k-images, t10k-labels (lengths are clipped
 * to what is left). Checks: failures name tg_mnist_load; on success the
 * images are (N, 1, rows, cols) in [0, 1], every label is below
 * num_classes, and the batches cover each sample exactly once. */
#include <stdbool.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

static void check_split(const tg_dataset *ds, tg_split split, int batch)
{
    tg_tensor *im = tg_dataset_images(ds, split);
    if (!im) { // made on first use: only lack of memory under the fuzzer's cap stops it
        FUZZ_CHECK(tg_last_status() == TG_ENOMEM, "tg_dataset_images: %d",
                   (int)tg_last_status());
        return;
    }
    const int64_t *lb = tg_dataset_labels(ds, split);
    int64_t n = tg_dataset_count(ds, split);
    FUZZ_CHECK(lb && n >= 0, "split %d: missing parts", (int)split);
    FUZZ_CHECK(tg_tensor_ndim(im) == 4 && tg_tensor_dim(im, 0) == n && tg_tensor_dim(im, 1) == 1,
               "split %d: image shape", (int)split);
    for (int64_t i = 0; i < tg_tensor_numel(im); i++) {
        double v = -1;
        FUZZ_CHECK(tg_tensor_get_flat(im, i, &v) == TG_OK && v >= 0 && v <= 1, "pixel %g", v);
    }
    for (int64_t i = 0; i < n; i++)
        FUZZ_CHECK(lb[i] >= 0 && lb[i] < tg_dataset_num_classes(ds), "label %lld",
                   (long long)lb[i]);
    if (n < 1)
        return;
    tg_batcher *b = tg_batcher_new(im, lb, n, batch, true, 7);
    if (!b) { // only for lack of memory under the fuzzer's cap
        FUZZ_CHECK(tg_last_status() == TG_ENOMEM, "tg_batcher_new: %d", (int)tg_last_status());
        return;
    }
    int64_t seen = 0, count = 0;
    tg_tensor *x;
    const int64_t *y;
    while (tg_batcher_next(b, &x, &y, &count)) {
        FUZZ_CHECK(count >= 1 && count <= batch && tg_tensor_dim(x, 0) == count && y,
                   "batch of %lld", (long long)count);
        seen += count;
    }
    FUZZ_CHECK(seen == n, "epoch saw %lld of %lld", (long long)seen, (long long)n);
    // The batches converted from the bytes are those of the tensor, bit for bit.
    tg_batcher *u8 = tg_dataset_batcher(ds, split, batch, true, 7);
    if (!u8) {
        FUZZ_CHECK(tg_last_status() == TG_ENOMEM, "tg_dataset_batcher: %d",
                   (int)tg_last_status());
        tg_batcher_free(b);
        return;
    }
    tg_batcher_reset_epoch(b);
    tg_batcher_reset_epoch(u8); // both at their second epoch's order
    tg_tensor *ux;
    const int64_t *uy;
    int64_t ucount;
    while (tg_batcher_next(b, &x, &y, &count)) {
        FUZZ_CHECK(tg_batcher_next(u8, &ux, &uy, &ucount) && ucount == count,
                   "tg_dataset_batcher: batch sizes differ");
        size_t bytes = (size_t)tg_tensor_numel(x) * tg_dtype_size(tg_tensor_dtype(x));
        FUZZ_CHECK(memcmp(tg_tensor_data(x), tg_tensor_data(ux), bytes) == 0 &&
                       memcmp(y, uy, (size_t)count * sizeof *y) == 0,
                   "tg_dataset_batcher: batch contents differ");
    }
    FUZZ_CHECK(!tg_batcher_next(u8, NULL, NULL, NULL), "tg_dataset_batcher: extra batch");
    tg_batcher_free(u8);
    tg_batcher_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg__alloc_set_max(FUZZ_MAX_ALLOC * 2);
    if (size < 9)
        return 0;
    unsigned flags = data[0];
    size_t pos = 9;
    char paths[4][512];
    for (int k = 0; k < 4; k++) {
        size_t len = (size_t)data[1 + 2 * k] | (size_t)data[2 + 2 * k] << 8;
        if (len > size - pos)
            len = size - pos;
        char name[64];
        snprintf(name, sizeof name, "%s%s", names[k], flags & (2u << k) ? ".gz" : "");
        fuzz_write(name, data + pos, len, paths[k], sizeof paths[k]);
        pos += len;
    }
    tg_clear_error();
    tg_dataset *ds = tg_mnist_load(fuzz_scratch_dir(), flags & 1 ? TG_F64 : TG_F32);
    for (int k = 0; k < 4; k++)
        unlink(paths[k]);
    if (!ds) {
        fuzz_check_failure(tg_last_status(), "tg_mnist_load");
        FUZZ_CHECK(strncmp(tg_last_error(), "tg_mnist_load: ", 15) == 0, "message prefix");
        return 0;
    }
    int batch = 1 + (int)(flags >> 5) * 3;
    check_split(ds, TG_SPLIT_TRAIN, batch);
    check_split(ds, TG_SPLIT_TEST, batch);
    tg_dataset_free(ds);
    return 0;
}
