/* io.h - data loading: DEFLATE/gzip decoding, IDX files, MNIST and a
 * mini-batch iterator.
 *
 * No zlib: the decoder is the library's own (lib/io/inflate.c). Every reader
 * checks its input fully; corrupt or truncated data gives TG_EFORMAT with a
 * message naming the function (and the file, for loaders) and the problem.
 * See docs/io.md for examples and the exact messages.
 */
#ifndef TAPEGRAD_IO_H
#define TAPEGRAD_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- DEFLATE and gzip ----------------------------------------------------
 * On success *out receives a new buffer of *out_len bytes that the caller owns
 * and releases with tg_buffer_free (never NULL, even for empty output). On
 * failure *out and *out_len are untouched. max_out caps the decoded size
 * (0: no cap) so untrusted input cannot exhaust memory.
 * Errors: TG_EINVAL (NULL in, out or out_len), TG_EFORMAT (corrupt or
 * truncated data), TG_ERANGE (output would exceed max_out), TG_ENOMEM. */

/* Decodes a raw DEFLATE stream (RFC 1951: stored, fixed and dynamic Huffman
 * blocks). Input bytes after the final block are ignored. */
TG_API tg_status tg_inflate(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
                            size_t max_out);

/* Decodes gzip data (RFC 1952): one or more concatenated members, whose
 * outputs are joined. Each member's magic, method (8), reserved flags, header
 * CRC (when FHCRC is set), CRC-32 and size are checked; FEXTRA, FNAME and
 * FCOMMENT are skipped. Bytes after the last member that do not start
 * another member are an error (TG_EFORMAT). */
TG_API tg_status tg_gunzip(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
                           size_t max_out);

/* Frees a buffer returned by tg_inflate / tg_gunzip. NULL is ignored. */
TG_API void tg_buffer_free(void *p);

/* ---- IDX files -----------------------------------------------------------
 * The format of the MNIST files: a big-endian header (two zero bytes, the
 * element type, the number of dimensions, then each dimension as uint32)
 * followed by the elements. Only unsigned bytes (type 0x08) with 1 to 4
 * dimensions are read: 0x00000803 is MNIST's N x rows x cols images,
 * 0x00000801 its N labels. */
typedef struct tg_idx tg_idx;

/* The most content an IDX file may describe, 1 GiB (MNIST's largest file is
 * 47 MB). The product of the dims, with zero dims counted as 1, must not
 * exceed it, whatever their order; the file read and the gzip decode are
 * capped by it too. */
#define TG_IDX_MAX_BYTES ((size_t)1 << 30)

/* Loads an IDX file, raw or gzip-compressed (recognised by its 1f 8b magic,
 * whatever the file's name). Returns an owned handle (tg_idx_free), or NULL:
 * TG_EINVAL (NULL path), TG_EIO (cannot open or read: "tg_idx_load: path:
 * strerror"; not a regular file, such as a FIFO, a device or a directory,
 * which is refused without reading), TG_EFORMAT (bad magic, unsupported
 * type, 0 or > 4 dims, payload shorter or longer than the product of the
 * dims, corrupt gzip), TG_ERANGE (dims or file past TG_IDX_MAX_BYTES),
 * TG_ENOMEM. A gzip file is checked against its IDX header as soon as the
 * header is decoded, and decoding stops once the content exceeds the size
 * the header states ("oversized"), so memory use follows the header. */
TG_API tg_idx *tg_idx_load(const char *path);
/* NULL is ignored. The getters below given NULL (or a bad split) return
 * 0/NULL and record TG_EINVAL ("tg_idx_ndim: idx is NULL"). */
TG_API void tg_idx_free(tg_idx *idx);
/* Number of dimensions (1..4), 0 for NULL. */
TG_API int tg_idx_ndim(const tg_idx *idx);
/* Borrowed array of ndim sizes, valid until tg_idx_free; NULL for NULL. */
TG_API const int64_t *tg_idx_dims(const tg_idx *idx);
/* Number of elements (= bytes, the product of the dims); 0 for NULL. */
TG_API size_t tg_idx_size(const tg_idx *idx);
/* Borrowed pointer to the elements in row-major order, valid until
 * tg_idx_free; NULL for NULL. */
TG_API const uint8_t *tg_idx_data(const tg_idx *idx);

/* ---- MNIST-style datasets ----------------------------------------------- */
typedef struct tg_dataset tg_dataset;

typedef enum tg_split { TG_SPLIT_TRAIN = 0, TG_SPLIT_TEST = 1 } tg_split;

/* Loads the four standard files from dir: train-images-idx3-ubyte,
 * train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte,
 * each as name.gz if present, else as the raw name. Works for MNIST and
 * Fashion-MNIST. Images are (N, 1, rows, cols) of dtype with pixel values
 * byte/255 in [0, 1]; labels become int64_t arrays.
 * Memory: the dataset keeps the pixels as the files' bytes, one byte each
 * (47 MB for Fashion-MNIST's 60,000 training images, against 188 MB as
 * float32). tg_dataset_batcher and tg_fit on a tg_data with .dataset convert
 * one batch at a time; only tg_dataset_images makes (and keeps) a whole
 * float tensor of a split.
 * Returns an owned dataset (tg_dataset_free), or NULL: TG_EINVAL (NULL dir,
 * bad dtype), TG_EIO (a file is missing or unreadable), TG_EFORMAT (an IDX
 * error, images not 3-dim or labels not 1-dim, label count differing from
 * image count, train and test image sizes differing), TG_ENOMEM. Messages
 * start with "tg_mnist_load: " followed by the underlying error. */
TG_API tg_dataset *tg_mnist_load(const char *dir, tg_dtype dtype);
/* Frees the dataset and its tensors and labels. NULL is ignored. */
TG_API void tg_dataset_free(tg_dataset *ds);
/* The (N, 1, rows, cols) images of a split as a tensor of the dataset's
 * dtype. The first call for a split converts its pixels into a new tensor
 * (4 or 8 bytes a pixel) that ds keeps: later calls return the same one.
 * Borrowed: owned by ds and valid until tg_dataset_free; never free it. NULL
 * for NULL ds or a bad split (TG_EINVAL), or with TG_ENOMEM. That first call
 * writes to ds: do not make it from two threads at once on one dataset. */
TG_API tg_tensor *tg_dataset_images(const tg_dataset *ds, tg_split split);
/* The split's pixels, N*rows*cols bytes in row-major order (sample, row,
 * column), as stored in the file. Borrowed like the images. NULL for NULL ds
 * or a bad split (TG_EINVAL). */
TG_API const uint8_t *tg_dataset_pixels(const tg_dataset *ds, tg_split split);
/* The split's image shape, 4 entries (N, 1, rows, cols), borrowed like the
 * images; unlike tg_dataset_images it makes no tensor. NULL for NULL ds or a
 * bad split (TG_EINVAL). */
TG_API const int64_t *tg_dataset_shape(const tg_dataset *ds, tg_split split);
/* The dtype given to tg_mnist_load; TG_F32 (and TG_EINVAL) for NULL. */
TG_API tg_dtype tg_dataset_dtype(const tg_dataset *ds);
/* The N labels of a split, each in [0, num_classes). Borrowed like the
 * images. NULL for NULL ds or a bad split. */
TG_API const int64_t *tg_dataset_labels(const tg_dataset *ds, tg_split split);
/* N, the number of samples of a split; 0 for NULL ds or a bad split. */
TG_API int64_t tg_dataset_count(const tg_dataset *ds, tg_split split);
/* 1 + the largest label over both splits (10 for MNIST); 0 for NULL. */
TG_API int tg_dataset_num_classes(const tg_dataset *ds);

/* ---- mini-batches --------------------------------------------------------
 * Iterates over samples 0..n-1 of images (dim 0 indexes samples) and labels
 * in batches of batch_size; the last batch of an epoch holds the remaining
 * n % batch_size samples when that is not 0.
 *
 *     tg_batcher *it = tg_batcher_new(x, y, n, 64, true, 42);
 *     for (int epoch = 0; epoch < 10; epoch++, tg_batcher_reset_epoch(it))
 *         while (tg_batcher_next(it, &xb, &yb, &count))
 *             ...;   // xb is (count, ...rest of x's shape)
 *     tg_batcher_free(it);
 *
 * Order: with shuffle, each epoch (the first included) visits a permutation
 * made by Fisher-Yates on the identity, for i = n-1 down to 1 swapping i with
 * j = tg_rng_below(&rng, i + 1), with one tg_rng = tg_rng_seeded(seed) carried
 * across epochs, so the sequence of epochs depends on the seed alone. Without
 * shuffle the order is 0..n-1 every epoch.
 *
 * The batcher borrows images and labels: both must stay alive and unchanged
 * until tg_batcher_free. */
typedef struct tg_batcher tg_batcher;

/* images: any dtype, shape (N, ...) with N >= n. labels: n entries, or NULL
 * for unlabelled data. Returns an owned batcher, or NULL: TG_EINVAL (NULL
 * images, n < 1 or > N, batch_size < 1, a 0-dim images tensor), TG_ENOMEM. */
TG_API tg_batcher *tg_batcher_new(const tg_tensor *images, const int64_t *labels, int64_t n,
                                  int64_t batch_size, bool shuffle, uint64_t seed);

/* tg_batcher_new(tg_dataset_images(ds, split), tg_dataset_labels(ds, split),
 * tg_dataset_count(ds, split), batch_size, shuffle, seed) without the float
 * tensor of the whole split: each tg_batcher_next converts only the batch's
 * pixels, to the same values bit for bit (same order, shapes, labels). The
 * batcher borrows ds, which must outlive it. Returns an owned batcher, or
 * NULL: TG_EINVAL (NULL ds, bad split, batch_size < 1), TG_ENOMEM; messages
 * start with "tg_dataset_batcher: ". */
TG_API tg_batcher *tg_dataset_batcher(const tg_dataset *ds, tg_split split,
                                      int64_t batch_size, bool shuffle, uint64_t seed);

/* Fills the next batch of the epoch and returns true, or returns false when
 * the epoch is over (and for a NULL batcher, with TG_EINVAL). *x receives a
 * tensor of shape (count, ...) owned by the batcher, *y the count labels
 * (NULL when the batcher has none), *count the batch size; any of x, y, count
 * may be NULL. The tensor and labels are reused buffers: they stay valid until
 * the next tg_batcher_next, tg_batcher_reset_epoch or tg_batcher_free call on
 * this batcher, which overwrite or free them. Never tg_tensor_free *x; if ops
 * recorded on a tape read *x, reset the tape before the next batch (or clone). */
TG_API bool tg_batcher_next(tg_batcher *b, tg_tensor **x, const int64_t **y, int64_t *count);

/* Starts the next epoch: rewinds and, with shuffle, draws a new permutation.
 * NULL records TG_EINVAL and does nothing else. */
TG_API void tg_batcher_reset_epoch(tg_batcher *b);

/* ceil(n / batch_size); 0 for NULL. */
TG_API int64_t tg_batcher_num_batches(const tg_batcher *b);

/* Frees the batcher and its batch buffers. NULL is ignored. */
TG_API void tg_batcher_free(tg_batcher *b);

#ifdef __cplusplus
}
#endif
#endif
