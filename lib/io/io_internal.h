/* io_internal.h - private helpers shared by lib/io/ (and reachable from tests,
 * which link the static library). Never installed. */
#ifndef TG_IO_INTERNAL_H
#define TG_IO_INTERNAL_H

#include <stdbool.h>
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

/* Compressed input read in pieces, so that a file need not be held whole
 * beside what it decodes to (Fashion-MNIST's 26 MB of training images
 * decode to 47 MB). read fills up to n bytes of dst and returns how many; 0
 * ends the input, and after an error it sets s->status and s->msg (which
 * the decoder then reports instead of the truncation it saw) and returns 0. */
typedef struct tg__instream {
    size_t (*read)(struct tg__instream *s, uint8_t *dst, size_t n);
    void *ctx;
    tg_status status; /* TG_OK until read fails */
    char msg[400];
} tg__instream;

/* DEFLATE's input: bytes in[pos..len) of all or a window of it. Over memory,
 * src is NULL and ended true. Over a stream, in is `window` (cap bytes),
 * which tg__inbits_more refills; base counts the bytes dropped from its
 * front, origin is where the current DEFLATE stream began (both in bytes
 * of the whole input; messages count from origin). buf and cnt are the bit
 * reader's (inflate.c). */
typedef struct tg__inbits {
    const uint8_t *in;
    size_t len, pos;
    uint64_t buf;
    unsigned cnt;
    tg__instream *src;
    uint8_t *window;
    size_t cap, base, origin;
    bool ended;
} tg__inbits;

/* Whether n bytes from pos are in the window, reading from the stream (and
 * moving the unread bytes to the front) as far as needed and the window
 * allows: false when the input ends first (then ended is set) or when n
 * does not fit. */
bool tg__inbits_more(tg__inbits *b, size_t n);

/* Decodes one raw DEFLATE stream from b's byte position (b's bit buffer
 * empty) and appends its output to out, leaving b at the whole byte after
 * it (the last partial byte included), so a container format finds what
 * follows. Errors are recorded with fn as the message prefix, their offsets
 * counted from the stream's start: TG_EFORMAT (corrupt or truncated data),
 * TG_ERANGE (output would exceed out->max), TG_ENOMEM. On failure out may
 * hold partial output; the caller frees out->data either way. */
tg_status tg__inflate_bits(const char *fn, tg__inbits *b, tg__outbuf *out);

/* The output buffer's life, shared by inflate.c and gzip.c: init with a
 * first capacity (clamped to max_out; 0: no limit); finish hands the data
 * to the caller (trimming a large unused tail); decode_args checks the
 * public calls' pointers ("fn: NULL input"). A first guess at the output
 * size: DEFLATE rarely expands more than 4x on real data, and the buffer
 * doubles from there if needed. */
tg_status tg__outbuf_init(const char *fn, tg__outbuf *o, size_t cap, size_t max_out);
tg_status tg__outbuf_finish(const char *fn, tg__outbuf *o, uint8_t **out, size_t *out_len);
tg_status tg__decode_args(const char *fn, const void *in, uint8_t **out, size_t *out_len);
size_t tg__inflate_first_cap(size_t in_len, size_t max);

/* tg_gunzip (messages prefixed "tg_gunzip") from a stream, through a
 * window of window_bytes (at least 64): the compressed bytes are never held
 * whole. A gzip header longer than the window is refused (TG_EFORMAT,
 * "longer than"); an error of the stream itself is the one reported. With
 * a limit hook as in tg__outbuf: the buffer starts small and limit(ctx, ...)
 * is asked for the real cap once limit_at bytes are decoded (limit NULL:
 * none); max_out caps it before that. */
tg_status tg__gunzip_stream(tg__instream *in, size_t window_bytes, size_t max_out,
                            size_t limit_at, tg__out_limit_fn limit, void *ctx, uint8_t **out,
                            size_t *out_len);

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
