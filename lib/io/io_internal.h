/* io_internal.h - private helpers shared by lib/io/ (and reachable from tests,
 * which link the static library). Never installed. */
#ifndef TG_IO_INTERNAL_H
#define TG_IO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tg_internal.h"

/* Looks at the first len (>= the `limit_at` it was registered with) decoded
 * bytes and returns a cap on the total output size: a container whose header
 * states its size (IDX) stops the decoder there instead of after a bomb. */
typedef size_t (*tg__out_limit_fn)(void *ctx, const uint8_t *data, size_t len);

/* A growable output buffer with a hard cap. Distances in a DEFLATE stream may
 * only reach back to `base`, where the current stream began, so one buffer can
 * collect several gzip members. */
typedef struct tg__outbuf {
    uint8_t *data; /* tg__malloc'd, NULL until the first byte is needed */
    size_t len;
    size_t cap;
    size_t max;  /* never grow beyond this many bytes (SIZE_MAX: no limit) */
    size_t base; /* offset where the current DEFLATE stream's output starts */
    /* Optional: called once, the first time the buffer must grow while it
     * holds at least limit_at bytes; its answer lowers max (never below len). */
    tg__out_limit_fn limit;
    void *limit_ctx;
    size_t limit_at;
} tg__outbuf;

/* Decodes one raw DEFLATE stream from in[0..in_len) and appends its output to
 * out. *consumed receives the number of input bytes used (the last partial
 * byte included), so a container format can find what follows. Errors are
 * recorded with fn as the message prefix: TG_EFORMAT (corrupt or truncated
 * data), TG_ERANGE (output would exceed out->max), TG_ENOMEM. On failure out
 * may hold partial output; the caller frees out->data either way. */
tg_status tg__inflate_append(const char *fn, const uint8_t *in, size_t in_len,
                             tg__outbuf *out, size_t *consumed);

/* tg_gunzip (messages prefixed "tg_gunzip") with a limit hook as in
 * tg__outbuf: the buffer starts small and limit(ctx, ...) is asked for the
 * real cap once limit_at bytes are decoded; max_out caps it before that. */
tg_status tg__gunzip_limited(const uint8_t *in, size_t in_len, size_t max_out, size_t limit_at,
                             tg__out_limit_fn limit, void *ctx, uint8_t **out, size_t *out_len);

/* CRC-32 (ISO-HDLC, the one gzip and PNG use) of p[0..n), continuing from crc
 * (start with 0). */
uint32_t tg__crc32(uint32_t crc, const uint8_t *p, size_t n);

/* Reads a whole file into a tg__malloc'd buffer (freed with tg__free). Only
 * regular files are read: a FIFO, device (/dev/zero) or directory gives TG_EIO
 * "fn: path: not a regular file" without blocking or reading. TG_EIO with
 * "fn: path: strerror" when it cannot be opened or read, TG_ERANGE when it is
 * larger than max bytes (also when it grows past max while read), TG_ENOMEM. */
tg_status tg__read_file_max(const char *fn, const char *path, size_t max, uint8_t **data,
                            size_t *len);
/* tg__read_file_max with TG__FILE_MAX: 4 GiB (half the address space where
 * size_t is 32 bits). */
#define TG__FILE_MAX \
    (SIZE_MAX / 2 < UINT64_C(1) << 32 ? SIZE_MAX / 2 : (size_t)(UINT64_C(1) << 32))
tg_status tg__read_file(const char *fn, const char *path, uint8_t **data, size_t *len);

/* Hands the buffer that holds idx's file (header included) to the caller, who
 * frees it with tg__free; tg_idx_data(idx) points into it and stays valid
 * after tg_idx_free(idx). Lets a loader keep the bytes without a copy. */
uint8_t *tg__idx_take(tg_idx *idx);

/* ---- batchers over other storage (dataset.c) ----
 * tg_batcher_new's batches, with the same order, shapes and checks, from:
 *   _at: rows [first, first + n) of images (first >= 0, first + n <= N), so a
 *        held-out tail needs no copy;
 *   _u8: 8-bit samples, data holding shape[0] samples of shape[1..ndim)
 *        bytes each, every batch converted to dtype as (float)b / 255.0f (or
 *        (double)b / 255.0): the values tg_mnist_load's images hold.
 * fn prefixes the messages (as "tg_batcher_new" does for the public one). */
tg_batcher *tg__batcher_new_at(const char *fn, const tg_tensor *images, int64_t first,
                               const int64_t *labels, int64_t n, int64_t batch_size,
                               bool shuffle, uint64_t seed);
tg_batcher *tg__batcher_new_u8(const char *fn, const uint8_t *data, tg_dtype dtype, int ndim,
                               const int64_t *shape, const int64_t *labels, int64_t n,
                               int64_t batch_size, bool shuffle, uint64_t seed);

#endif
