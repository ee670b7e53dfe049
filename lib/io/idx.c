/* idx.c - IDX files (the MNIST container), raw or gzip-compressed, and the
 * whole-file reader the io/ loaders share. DEFLATE itself is in inflate.c;
 * turning IDX arrays into tensors is dataset.c's job. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "io/io_internal.h"
#include "tapegrad/io.h"

#define IDX_MAX_DIMS 4
#define IDX_UBYTE 0x08

struct tg_idx {
    uint8_t *buf;        /* the whole (decompressed) file */
    const uint8_t *data; /* elements: buf past the header */
    size_t size;         /* number of elements (bytes) */
    int ndim;
    int64_t dims[IDX_MAX_DIMS];
};

/* ---- whole-file reading ----------------------------------------------- */

/* The size from fseek/ftell when the stream is seekable: only a first guess,
 * since the file may change while it is read (the loop below decides). */
static size_t size_guess(FILE *f)
{
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    rewind(f);
    return n > 0 ? (size_t)n : 0;
}

static tg_status read_error(const char *fn, const char *path, int err, uint8_t *buf)
{
    tg__free(buf);
    return tg__fail(TG_EIO, "%s: %s: read error: %s", fn, path,
                    err ? strerror(err) : "unknown error");
}

static tg_status read_all(const char *fn, const char *path, FILE *f, uint8_t **data,
                          size_t *len)
{
    size_t guess = size_guess(f);
    // Probe one byte before trusting the guess: a directory opens on Linux and
    // may report an absurd size, but reading it fails (EISDIR).
    errno = 0;
    int c = fgetc(f);
    if (c == EOF && ferror(f))
        return read_error(fn, path, errno, NULL);
    size_t cap = c == EOF ? 1 : guess + 1; // +1: reaching EOF then needs no growth
    if (cap < 4096 && c != EOF)
        cap = 4096;
    size_t n = 0;
    uint8_t *buf = tg__malloc(cap);
    while (buf) {
        if (n == 0 && c != EOF)
            buf[n++] = (uint8_t)c;
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        uint8_t *grown = cap > SIZE_MAX / 2 ? NULL : tg__realloc(buf, cap * 2);
        if (!grown)
            tg__free(buf);
        buf = grown;
        cap *= 2;
    }
    if (!buf)
        return tg__fail(TG_ENOMEM, "%s: %s: out of memory reading the file", fn, path);
    if (ferror(f))
        return read_error(fn, path, errno, buf);
    *data = buf;
    *len = n;
    return TG_OK;
}

tg_status tg__read_file(const char *fn, const char *path, uint8_t **data, size_t *len)
{
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return tg__fail(TG_EIO, "%s: %s: cannot open: %s", fn, path,
                        errno ? strerror(errno) : "unknown error");
    tg_status st = read_all(fn, path, f, data, len);
    fclose(f);
    return st;
}

/* ---- IDX parsing ------------------------------------------------------ */

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks the magic and reads the dims; *hdr_len receives the header size. */
static tg_status parse_header(const char *path, const uint8_t *buf, size_t len, tg_idx *idx,
                              size_t *hdr_len)
{
    static const char fn[] = "tg_idx_load";
    if (len < 4)
        return tg__fail(TG_EFORMAT, "%s: %s: too short for an IDX header (%zu bytes)", fn,
                        path, len);
    uint32_t magic = load_be32(buf);
    if (buf[0] != 0 || buf[1] != 0)
        return tg__fail(TG_EFORMAT, "%s: %s: bad magic 0x%08x (expected 0x000008NN)", fn, path,
                        (unsigned)magic);
    if (buf[2] != IDX_UBYTE)
        return tg__fail(TG_EFORMAT, "%s: %s: unsupported element type 0x%02x in magic 0x%08x "
                        "(only 0x08, unsigned byte)", fn, path, buf[2], (unsigned)magic);
    int ndim = buf[3];
    if (ndim < 1 || ndim > IDX_MAX_DIMS)
        return tg__fail(TG_EFORMAT, "%s: %s: unsupported number of dims %d (1..%d)", fn, path,
                        ndim, IDX_MAX_DIMS);
    if (len < 4 + 4 * (size_t)ndim)
        return tg__fail(TG_EFORMAT, "%s: %s: truncated header (%zu bytes, %d dims need %d)",
                        fn, path, len, ndim, 4 + 4 * ndim);
    idx->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        idx->dims[i] = load_be32(buf + 4 + 4 * i);
    *hdr_len = 4 + 4 * (size_t)ndim;
    return TG_OK;
}

/* The payload must hold exactly the product of the dims: a short file is a
 * truncated download, a long one a wrong header, and both would silently
 * shift every later sample. */
static tg_status check_payload(const char *path, tg_idx *idx, size_t payload)
{
    static const char fn[] = "tg_idx_load";
    char shape[TG__SHAPE_STR];
    tg__shape_str(shape, idx->ndim, idx->dims);
    size_t prod = 1;
    for (int i = 0; i < idx->ndim; i++) {
        size_t d = (size_t)idx->dims[i];
        if (d != 0 && prod > SIZE_MAX / d)
            return tg__fail(TG_ERANGE, "%s: %s: dims %s overflow the size of memory", fn, path,
                            shape);
        prod *= d;
    }
    if (payload != prod)
        return tg__fail(TG_EFORMAT, "%s: %s: %s: header says %s = %zu bytes, file has %zu", fn,
                        path, payload < prod ? "truncated" : "oversized", shape, prod, payload);
    idx->size = prod;
    return TG_OK;
}

/* Replaces buf by its gzip-decoded content when it starts with 1f 8b. */
static tg_status maybe_gunzip(const char *path, uint8_t **buf, size_t *len)
{
    if (*len < 2 || (*buf)[0] != 0x1f || (*buf)[1] != 0x8b)
        return TG_OK;
    uint8_t *out;
    size_t out_len;
    tg_status st = tg_gunzip(*buf, *len, &out, &out_len, 0);
    if (st != TG_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", tg_last_error());
        return tg__fail(st, "tg_idx_load: %s: %s", path, msg);
    }
    tg__free(*buf);
    *buf = out;
    *len = out_len;
    return TG_OK;
}

tg_idx *tg_idx_load(const char *path)
{
    if (!path)
        return tg__fail_null(TG_EINVAL, "tg_idx_load: NULL path");
    uint8_t *buf;
    size_t len, hdr = 0;
    if (tg__read_file("tg_idx_load", path, &buf, &len) != TG_OK)
        return NULL;
    tg_idx *idx = NULL;
    tg_status st = maybe_gunzip(path, &buf, &len);
    if (st == TG_OK) {
        idx = tg__calloc(1, sizeof *idx);
        if (!idx)
            st = tg__fail(TG_ENOMEM, "tg_idx_load: %s: out of memory", path);
    }
    if (st == TG_OK)
        st = parse_header(path, buf, len, idx, &hdr);
    if (st == TG_OK)
        st = check_payload(path, idx, len - hdr);
    if (st != TG_OK) {
        tg__free(buf);
        tg__free(idx);
        return NULL;
    }
    idx->buf = buf;
    idx->data = buf + hdr;
    return idx;
}

void tg_idx_free(tg_idx *idx)
{
    if (!idx)
        return;
    tg__free(idx->buf);
    tg__free(idx);
}

/* Getters given NULL record TG_EINVAL (see tg__null_arg) besides returning 0/NULL. */
static bool have(const tg_idx *idx, const char *fn)
{
    if (!idx)
        tg__null_arg(fn, "idx");
    return idx != NULL;
}

int tg_idx_ndim(const tg_idx *idx) { return have(idx, "tg_idx_ndim") ? idx->ndim : 0; }

const int64_t *tg_idx_dims(const tg_idx *idx)
{
    return have(idx, "tg_idx_dims") ? idx->dims : NULL;
}

size_t tg_idx_size(const tg_idx *idx) { return have(idx, "tg_idx_size") ? idx->size : 0; }

const uint8_t *tg_idx_data(const tg_idx *idx)
{
    return have(idx, "tg_idx_data") ? idx->data : NULL;
}
