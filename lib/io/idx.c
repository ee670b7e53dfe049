/* idx.c - IDX files (the MNIST container), raw or gzip-compressed, and the
 * whole-file reader the io/ loaders share. DEFLATE itself is in inflate.c;
 * turning IDX arrays into tensors is dataset.c's job.
 *
 * Untrusted input is bounded three ways: only regular files are read (a FIFO
 * or /dev/zero would block or never end), files and decoded contents are
 * capped (TG_IDX_MAX_BYTES), and a gzip stream stops as soon as it exceeds
 * the size its IDX header states, so a bomb costs what its header admits. */
#define _POSIX_C_SOURCE 200809L /* stat, fstat, fileno */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "io/io_internal.h"
#include "tapegrad/io.h"

#define IDX_MAX_DIMS 4
#define IDX_MAX_HEADER (4 + 4 * IDX_MAX_DIMS)
#define IDX_UBYTE 0x08
/* A gzip file may be a little larger than its content (stored blocks add 5
 * bytes per 64 KiB), so the file cap leaves room above the content cap. */
#define IDX_MAX_FILE (TG_IDX_MAX_BYTES + TG_IDX_MAX_BYTES / 1024 + 4096)

struct tg_idx {
    uint8_t *buf;        /* the whole (decompressed) file */
    const uint8_t *data; /* elements: buf past the header */
    size_t size;         /* number of elements (bytes) */
    int ndim;
    int64_t dims[IDX_MAX_DIMS];
};

/* ---- whole-file reading ----------------------------------------------- */

static const char *file_kind(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode) || S_ISBLK(mode))
        return "a device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a regular file";
}

static tg_status not_regular(const char *fn, const char *path, mode_t mode)
{
    return tg__fail(TG_EIO, "%s: %s: not a regular file (%s)", fn, path, file_kind(mode));
}

static tg_status too_large(const char *fn, const char *path, const char *what,
                           unsigned long long size, size_t max)
{
    return tg__fail(TG_ERANGE, "%s: %s: %s %llu bytes, over the limit of %zu", fn, path, what,
                    size, max);
}

static tg_status read_error(const char *fn, const char *path, int err, uint8_t *buf)
{
    tg__free(buf);
    return tg__fail(TG_EIO, "%s: %s: read error: %s", fn, path,
                    err ? strerror(err) : "unknown error");
}

/* Reads f to its end into a buffer of at most max bytes. guess is the size
 * fstat reported: only a first guess, since the file may change while it is
 * read (the loop decides, and refuses to grow past max). */
static tg_status read_all(const char *fn, const char *path, FILE *f, size_t guess, size_t max,
                          uint8_t **data, size_t *len)
{
    // +1: reaching EOF then needs no growth, and reading max + 1 bytes detects
    // a file that grew past the cap.
    size_t cap = guess < max ? guess + 1 : max + 1;
    if (cap < 4096)
        cap = max < 4096 ? max + 1 : 4096;
    size_t n = 0;
    uint8_t *buf = tg__malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap || n > max)
            break;
        size_t grown_cap = cap > max / 2 ? max + 1 : cap * 2;
        uint8_t *grown = tg__realloc(buf, grown_cap);
        if (!grown)
            tg__free(buf);
        buf = grown;
        cap = grown_cap;
    }
    if (!buf)
        return tg__fail(TG_ENOMEM, "%s: %s: out of memory reading the file", fn, path);
    if (ferror(f))
        return read_error(fn, path, errno, buf);
    if (n > max) {
        tg__free(buf);
        return too_large(fn, path, "file grew past", (unsigned long long)max, max);
    }
    *data = buf;
    *len = n;
    return TG_OK;
}

/* Opens path for reading if it is a regular file of at most max bytes;
 * *size is what fstat says of the file opened. */
static tg_status open_regular(const char *fn, const char *path, size_t max, FILE **file,
                              size_t *size)
{
    // stat before fopen: opening a FIFO for reading blocks until a writer comes.
    struct stat st;
    errno = 0;
    if (stat(path, &st) != 0)
        return tg__fail(TG_EIO, "%s: %s: cannot open: %s", fn, path,
                        errno ? strerror(errno) : "unknown error");
    if (!S_ISREG(st.st_mode))
        return not_regular(fn, path, st.st_mode);
    if ((unsigned long long)st.st_size > max)
        return too_large(fn, path, "file of", (unsigned long long)st.st_size, max);
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return tg__fail(TG_EIO, "%s: %s: cannot open: %s", fn, path,
                        errno ? strerror(errno) : "unknown error");
    // The path may have been replaced between stat and fopen: check what was opened.
    tg_status status = TG_OK;
    if (fstat(fileno(f), &st) != 0)
        status = read_error(fn, path, errno, NULL);
    else if (!S_ISREG(st.st_mode))
        status = not_regular(fn, path, st.st_mode);
    if (status != TG_OK) {
        fclose(f);
        return status;
    }
    *file = f;
    *size = (size_t)st.st_size;
    return TG_OK;
}

tg_status tg__read_file_max(const char *fn, const char *path, size_t max, uint8_t **data,
                            size_t *len)
{
    FILE *f = NULL;
    size_t size = 0;
    tg_status status = open_regular(fn, path, max, &f, &size);
    if (status != TG_OK)
        return status;
    status = read_all(fn, path, f, size, max, data, len);
    fclose(f);
    return status;
}

tg_status tg__read_file(const char *fn, const char *path, uint8_t **data, size_t *len)
{
    return tg__read_file_max(fn, path, TG__FILE_MAX, data, len);
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

/* One rule for the dims, whatever their order: their product with zero dims
 * counted as 1 must stay within TG_IDX_MAX_BYTES. That bounds the content
 * and also the strides of the tensor the array becomes (a zero dim empties
 * the tensor but leaves the other dims' strides in place). *size receives
 * the real product (0 when a dim is 0). */
static tg_status payload_size(const char *path, const tg_idx *idx, size_t *size)
{
    bool empty = false;
    for (int i = 0; i < idx->ndim; i++)
        empty |= idx->dims[i] == 0;
    size_t span = 1;
    for (int i = 0; i < idx->ndim; i++) {
        size_t d = idx->dims[i] ? (size_t)idx->dims[i] : 1;
        if (span > TG_IDX_MAX_BYTES / d) {
            char shape[TG__SHAPE_STR];
            tg__shape_str(shape, idx->ndim, idx->dims);
            return tg__fail(TG_ERANGE, "tg_idx_load: %s: dims %s exceed the limit of %zu bytes "
                            "(TG_IDX_MAX_BYTES)%s", path, shape, (size_t)TG_IDX_MAX_BYTES,
                            empty ? ", zero dims counted as 1" : "");
        }
        span *= d;
    }
    *size = empty ? 0 : span;
    return TG_OK;
}

/* The payload must hold exactly the product of the dims: a short file is a
 * truncated download, a long one a wrong header, and both would silently
 * shift every later sample. */
static tg_status check_payload(const char *path, tg_idx *idx, size_t payload)
{
    size_t prod = 0;
    tg_status st = payload_size(path, idx, &prod);
    if (st != TG_OK)
        return st;
    if (payload != prod) {
        char shape[TG__SHAPE_STR];
        tg__shape_str(shape, idx->ndim, idx->dims);
        return tg__fail(TG_EFORMAT, "tg_idx_load: %s: %s: header says %s = %zu bytes, file has "
                        "%zu", path, payload < prod ? "truncated" : "oversized", shape, prod,
                        payload);
    }
    idx->size = prod;
    return TG_OK;
}

/* What the gzip decoder learns from the IDX header once its bytes are out. */
typedef struct header_peek {
    const char *path;
    bool seen;       /* the hook ran */
    tg_status st;    /* the header's verdict */
    size_t limit;    /* header + payload size it states */
    char msg[400];   /* the verdict's message when st != TG_OK */
} header_peek;

static size_t peek_header(void *ctx, const uint8_t *data, size_t len)
{
    header_peek *p = ctx;
    tg_idx tmp = {0};
    size_t hdr = 0, prod = 0;
    p->seen = true;
    p->st = parse_header(p->path, data, len, &tmp, &hdr);
    if (p->st == TG_OK)
        p->st = payload_size(p->path, &tmp, &prod);
    if (p->st != TG_OK) {
        snprintf(p->msg, sizeof p->msg, "%s", tg_last_error());
        return 0; // a bad header: stop decoding at once
    }
    p->limit = hdr + prod;
    return p->limit;
}

/* A file as a stream for the gzip decoder, held to read_all's rules: at
 * most max bytes (a file that grows while read is refused), errors worded
 * as read_all's. */
typedef struct file_stream {
    tg__instream s;
    FILE *f;
    size_t total, max;
    const char *path;
} file_stream;

static size_t read_piece(tg__instream *s, uint8_t *dst, size_t n)
{
    file_stream *fs = s->ctx;
    size_t got = fread(dst, 1, n, fs->f);
    fs->total += got;
    if (fs->total > fs->max) {
        s->status = TG_ERANGE;
        snprintf(s->msg, sizeof s->msg, "tg_idx_load: %s: file grew past %zu bytes, over the "
                 "limit of %zu", fs->path, fs->max, fs->max);
        return 0;
    }
    if (got == 0 && ferror(fs->f)) {
        int err = errno;
        s->status = TG_EIO;
        snprintf(s->msg, sizeof s->msg, "tg_idx_load: %s: read error: %s", fs->path,
                 err ? strerror(err) : "unknown error");
    }
    return got;
}

/* Compressed files are read through a window of this many bytes, so the
 * compressed bytes are never held whole beside the decoded ones: loading
 * Fashion-MNIST's training images (26 MB of gzip, 47 MB decoded) peaked
 * above training itself (mnist_cnn's whole run: 73,656 -> 65,092 KiB). */
#define IDX_GZ_WINDOW (256 * 1024)

/* Decodes the gzip file f (at its start) into *buf. */
static tg_status gunzip_file(const char *path, FILE *f, uint8_t **buf, size_t *len)
{
    file_stream fs = {.f = f, .max = IDX_MAX_FILE, .path = path};
    fs.s = (tg__instream){.read = read_piece, .ctx = &fs};
    header_peek peek = {.path = path};
    tg_status st = tg__gunzip_stream(&fs.s, IDX_GZ_WINDOW, TG_IDX_MAX_BYTES + IDX_MAX_HEADER,
                                     IDX_MAX_HEADER, peek_header, &peek, buf, len);
    if (st == TG_OK || fs.s.status != TG_OK) // the file's own error is worded already
        return st;
    // The decoder stopped because of what the header said: report that.
    if (peek.seen && peek.st != TG_OK)
        return tg__fail(peek.st, "%s", peek.msg);
    if (peek.seen && st == TG_ERANGE)
        return tg__fail(TG_EFORMAT, "tg_idx_load: %s: oversized: the header states %zu "
                        "bytes in all, the gzip data decodes to more", path, peek.limit);
    char msg[256];
    snprintf(msg, sizeof msg, "%s", tg_last_error());
    return tg__fail(st, "tg_idx_load: %s: %s", path, msg);
}

/* Whether f starts with the gzip magic 1f 8b; f is back at its start. */
static bool gzip_magic(FILE *f)
{
    uint8_t m[2];
    bool gz = fread(m, 1, 2, f) == 2 && m[0] == 0x1f && m[1] == 0x8b;
    rewind(f);
    return gz;
}

tg_idx *tg_idx_load(const char *path)
{
    static const char fn[] = "tg_idx_load";
    if (!path)
        return tg__fail_null(TG_EINVAL, "tg_idx_load: NULL path");
    FILE *f = NULL;
    size_t size = 0;
    if (open_regular(fn, path, IDX_MAX_FILE, &f, &size) != TG_OK)
        return NULL;
    uint8_t *buf = NULL;
    size_t len = 0, hdr = 0;
    tg_status st = gzip_magic(f) ? gunzip_file(path, f, &buf, &len)
                                 : read_all(fn, path, f, size, IDX_MAX_FILE, &buf, &len);
    fclose(f);
    if (st != TG_OK)
        return NULL;
    tg_idx *idx = tg__calloc(1, sizeof *idx);
    if (!idx)
        st = tg__fail(TG_ENOMEM, "tg_idx_load: %s: out of memory", path);
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

uint8_t *tg__idx_take(tg_idx *idx)
{
    uint8_t *buf = idx->buf;
    idx->buf = NULL;
    return buf;
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
