/* safetensors.c - the generic safetensors reader and writer (checkpoint.h).
 * The header's JSON is parsed by json.c and written here by hand; the file
 * is replaced atomically through atomic_file.c; the data's CRC-32 is
 * inflate.c's. What the tensors mean (model, optimizer) is checkpoint.c's. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "io/io_internal.h"
#include "io/json.h"
#include "tapegrad/checkpoint.h"

/* The reference implementation refuses larger headers too; a real one is a
 * few hundred bytes per tensor. */
#define MAX_HEADER 100000000u
#define CRC_KEY "tapegrad.crc32"

/* ---- dtypes ---- */

typedef struct dtype_info {
    const char *name;
    size_t size;
    int tg; /* tg_dtype, or -1 when tapegrad does not compute in it */
} dtype_info;

/* Every dtype the safetensors format defines. */
static const dtype_info dtypes[] = {
    {"F64", 8, TG_F64},  {"F32", 4, TG_F32}, {"F16", 2, -1},     {"BF16", 2, -1},
    {"I64", 8, -1},      {"I32", 4, -1},     {"I16", 2, -1},     {"I8", 1, -1},
    {"U64", 8, -1},      {"U32", 4, -1},     {"U16", 2, -1},     {"U8", 1, -1},
    {"BOOL", 1, -1},     {"F8_E4M3", 1, -1}, {"F8_E5M2", 1, -1},
};

static const dtype_info *find_dtype(const char *name)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtypes[i].name, name) == 0)
            return &dtypes[i];
    return NULL;
}

static bool host_is_le(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

static void swap_bytes(uint8_t *p, size_t bytes, size_t elem)
{
    for (size_t i = 0; i + elem <= bytes; i += elem)
        for (size_t a = 0, b = elem - 1; a < b; a++, b--) {
            uint8_t t = p[i + a];
            p[i + a] = p[i + b];
            p[i + b] = t;
        }
}

/* ---- the handle ---- */

typedef struct entry {
    char *name;
    tg_tensor *t;
    const dtype_info *dt;
    int64_t shape[TG_MAX_DIMS];
    int ndim;
    uint64_t begin, end;
} entry;

struct tg_safetensors {
    char *path;
    int n;
    entry *e;       /* n, in data order */
    struct name_ref {
        const char *name;
        int i;
    } *by_name;     /* n (name, index into e), sorted by name */
    int n_meta;
    char **meta;    /* 2 * n_meta: key, value, ... */
};

void tg_safetensors_free(tg_safetensors *f)
{
    if (!f)
        return;
    for (int i = 0; f->e && i < f->n; i++) {
        tg__free(f->e[i].name);
        tg_tensor_free(f->e[i].t);
    }
    for (int i = 0; f->meta && i < 2 * f->n_meta; i++)
        tg__free(f->meta[i]);
    tg__free(f->e);
    tg__free(f->by_name);
    tg__free(f->meta);
    tg__free(f->path);
    tg__free(f);
}

static char *dup_str(const char *s, size_t n)
{
    char *d = tg__malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* ---- reading ---- */

typedef struct reader {
    const char *path;
    FILE *fp;
    uint64_t file_size, header_len, data_len;
    char prefix[300]; /* "tg_safetensors_read: path" */
} reader;

static tg_status bad(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static tg_status bad(reader *r, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return tg__fail(TG_EFORMAT, "%s: %s", r->prefix, what);
}

static tg_status read_exact(reader *r, void *p, size_t n, const char *what)
{
    if (n && fread(p, 1, n, r->fp) != n)
        return ferror(r->fp) ? tg__fail(TG_EIO, "%s: reading the %s failed", r->prefix, what)
                             : bad(r, "the file ended inside the %s", what);
    return TG_OK;
}

static tg_status open_file(reader *r)
{
    r->fp = fopen(r->path, "rb");
    if (!r->fp)
        return tg__fail(TG_EIO, "%s: cannot open: %s", r->prefix, strerror(errno));
    long size = -1;
    if (fseek(r->fp, 0, SEEK_END) == 0)
        size = ftell(r->fp);
    if (size < 0 || fseek(r->fp, 0, SEEK_SET) != 0)
        return tg__fail(TG_EIO, "%s: cannot determine the file's size (not a regular file?)",
                        r->prefix);
    r->file_size = (uint64_t)size;
    if (r->file_size < 8)
        return bad(r, "the file has %llu bytes, fewer than the 8 of the header length",
                   (unsigned long long)r->file_size);
    uint8_t b[8];
    tg_status st = read_exact(r, b, 8, "header length");
    if (st != TG_OK)
        return st;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | b[i];
    if (n > r->file_size - 8)
        return bad(r, "header length %llu runs past the end of the file (%llu bytes after "
                   "the length)", (unsigned long long)n, (unsigned long long)(r->file_size - 8));
    if (n > MAX_HEADER)
        return bad(r, "header length %llu is above the limit of %u bytes",
                   (unsigned long long)n, MAX_HEADER);
    if (n < 2)
        return bad(r, "header length %llu is too short for a JSON object",
                   (unsigned long long)n);
    r->header_len = n;
    r->data_len = r->file_size - 8 - n;
    return TG_OK;
}

/* One name -> {dtype, shape, data_offsets} entry of the header. */
static tg_status parse_entry(reader *r, const tg__json *key, const tg__json *val, entry *e)
{
    const char *name = key->u.str;
    if (val->kind != TG__JSON_OBJECT)
        return bad(r, "tensor \"%s\": expected an object, got %s", name,
                   tg__json_kind_name(val->kind));
    const tg__json *dt = tg__json_get(val, "dtype"), *sh = tg__json_get(val, "shape");
    const tg__json *off = tg__json_get(val, "data_offsets");
    if (!dt || !sh || !off)
        return bad(r, "tensor \"%s\": missing \"%s\"", name,
                   !dt ? "dtype" : !sh ? "shape" : "data_offsets");
    if (val->len != 3) {
        for (uint32_t i = 0; i < val->len; i++) {
            const char *k = val->u.items[2 * (size_t)i].u.str;
            if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets"))
                return bad(r, "tensor \"%s\": unexpected key \"%s\"", name, k);
        }
    }
    if (dt->kind != TG__JSON_STRING)
        return bad(r, "tensor \"%s\": dtype is %s, expected a string", name,
                   tg__json_kind_name(dt->kind));
    e->dt = find_dtype(dt->u.str);
    if (!e->dt || strlen(dt->u.str) != dt->len)
        return bad(r, "tensor \"%s\": unknown dtype \"%.40s\"", name, dt->u.str);
    if (sh->kind != TG__JSON_ARRAY)
        return bad(r, "tensor \"%s\": shape is %s, expected an array", name,
                   tg__json_kind_name(sh->kind));
    if (sh->len > TG_MAX_DIMS)
        return bad(r, "tensor \"%s\": %u dimensions; tapegrad tensors have at most %d", name,
                   (unsigned)sh->len, TG_MAX_DIMS);
    e->ndim = (int)sh->len;
    // The product of the nonzero dimensions is bounded even when another one
    // is 0 (and the tensor empty): its strides are still that large, and the
    // bound keeps every stride and byte count representable.
    uint64_t span = e->dt->size;
    bool zero = false;
    for (int i = 0; i < e->ndim; i++) {
        int64_t d;
        if (!tg__json_int64(&sh->u.items[i], &d) || d < 0)
            return bad(r, "tensor \"%s\": dimension %d is not a non-negative integer", name, i);
        e->shape[i] = d;
        zero = zero || d == 0;
        if (d > 0 && span > ((uint64_t)INT64_MAX / 8) / (uint64_t)d)
            return bad(r, "tensor \"%s\": the shape's size overflows", name);
        span *= d > 0 ? (uint64_t)d : 1;
    }
    uint64_t bytes = zero ? 0 : span;
    if (off->kind != TG__JSON_ARRAY || off->len != 2)
        return bad(r, "tensor \"%s\": data_offsets must be an array of 2 integers", name);
    int64_t b, en;
    if (!tg__json_int64(&off->u.items[0], &b) || !tg__json_int64(&off->u.items[1], &en) ||
        b < 0 || en < 0)
        return bad(r, "tensor \"%s\": data_offsets must be non-negative integers", name);
    if (en < b)
        return bad(r, "tensor \"%s\": data_offsets [%lld, %lld] end before they begin", name,
                   (long long)b, (long long)en);
    if ((uint64_t)en > r->data_len)
        return bad(r, "tensor \"%s\": data_offsets [%lld, %lld] run past the end of the data "
                   "(%llu bytes)", name, (long long)b, (long long)en,
                   (unsigned long long)r->data_len);
    if ((uint64_t)(en - b) != bytes) {
        char s[TG__SHAPE_STR];
        return bad(r, "tensor \"%s\": data_offsets [%lld, %lld] hold %lld bytes but shape %s "
                   "of %s needs %llu", name, (long long)b, (long long)en, (long long)(en - b),
                   tg__shape_str(s, e->ndim, e->shape), e->dt->name,
                   (unsigned long long)bytes);
    }
    e->begin = (uint64_t)b;
    e->end = (uint64_t)en;
    return TG_OK;
}

static tg_status parse_metadata(reader *r, tg_safetensors *f, const tg__json *m)
{
    if (m->kind != TG__JSON_OBJECT)
        return bad(r, "__metadata__ is %s, expected an object of strings",
                   tg__json_kind_name(m->kind));
    f->meta = tg__calloc(2 * (size_t)m->len + 1, sizeof *f->meta);
    if (!f->meta)
        return tg__fail(TG_ENOMEM, "%s: out of memory", r->prefix);
    for (uint32_t i = 0; i < m->len; i++) {
        const tg__json *k = &m->u.items[2 * (size_t)i], *v = k + 1;
        if (v->kind != TG__JSON_STRING)
            return bad(r, "__metadata__ \"%s\" is %s; safetensors metadata values are strings",
                       k->u.str, tg__json_kind_name(v->kind));
        // C callers get NUL-terminated strings: an embedded NUL would cut them.
        if (strlen(k->u.str) != k->len || strlen(v->u.str) != v->len)
            return bad(r, "__metadata__ \"%s\" contains a NUL character", k->u.str);
        f->meta[2 * i] = dup_str(k->u.str, k->len);
        f->meta[2 * i + 1] = dup_str(v->u.str, v->len);
        if (!f->meta[2 * i] || !f->meta[2 * i + 1])
            return tg__fail(TG_ENOMEM, "%s: out of memory", r->prefix);
        f->n_meta = (int)i + 1;
    }
    return TG_OK;
}

static int by_offset(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct name_ref *)a)->name, ((const struct name_ref *)b)->name);
}

/* Entries sorted by offset must tile the data section exactly. */
static tg_status check_layout(reader *r, tg_safetensors *f)
{
    if (f->n > 1) // qsort's array may not be NULL, even when empty
        qsort(f->e, (size_t)f->n, sizeof *f->e, by_offset);
    uint64_t at = 0;
    for (int i = 0; i < f->n; i++) {
        const entry *e = &f->e[i];
        if (e->begin < at)
            return bad(r, "tensor \"%s\" (bytes %llu..%llu) overlaps \"%s\" (bytes %llu..%llu)",
                       e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                       f->e[i - 1].name, (unsigned long long)f->e[i - 1].begin,
                       (unsigned long long)f->e[i - 1].end);
        if (e->begin > at)
            return bad(r, "bytes %llu..%llu of the data belong to no tensor (a gap before "
                       "\"%s\")", (unsigned long long)at, (unsigned long long)e->begin, e->name);
        at = e->end;
    }
    if (at != r->data_len)
        return bad(r, "bytes %llu..%llu of the data belong to no tensor (after the last one)",
                   (unsigned long long)at, (unsigned long long)r->data_len);
    return TG_OK;
}

static tg_status parse_header(reader *r, tg_safetensors *f, const char *text)
{
    if (text[0] != '{')
        return bad(r, "the header does not start with '{' (not a safetensors file?)");
    char prefix[320];
    snprintf(prefix, sizeof prefix, "%s: header", r->prefix);
    // Depth 3 is all a header has (root, entry, shape), and its longest array
    // is a shape; one more of each is refused below with a clearer message.
    // A real header's tree takes under 4 bytes per header byte; with arrays
    // capped, hostile JSON cannot do much worse than that either.
    tg__json_limits lim = {.max_depth = 4, .max_bytes = 8 * (size_t)r->header_len + 4096,
                           .max_array = TG_MAX_DIMS + 1};
    tg__json *root = NULL;
    tg_status st = tg__json_parse(prefix, text, (size_t)r->header_len, &lim, &root);
    if (st != TG_OK)
        return st;
    const tg__json *meta = tg__json_get(root, "__metadata__");
    uint32_t n = root->len - (meta ? 1 : 0);
    if (n > INT_MAX)
        st = bad(r, "too many tensors (%u)", (unsigned)n);
    if (st == TG_OK && n) {
        f->e = tg__calloc(n, sizeof *f->e);
        f->by_name = tg__malloc(n * sizeof *f->by_name);
        if (!f->e || !f->by_name)
            st = tg__fail(TG_ENOMEM, "%s: out of memory for %u tensors", r->prefix,
                          (unsigned)n);
    }
    if (st == TG_OK && meta)
        st = parse_metadata(r, f, meta);
    for (uint32_t i = 0; st == TG_OK && i < root->len; i++) {
        const tg__json *k = &root->u.items[2 * (size_t)i];
        if (k->len == 12 && strcmp(k->u.str, "__metadata__") == 0)
            continue;
        if (strlen(k->u.str) != k->len) {
            st = bad(r, "a tensor name contains a NUL character");
            break;
        }
        entry *e = &f->e[f->n];
        st = parse_entry(r, k, k + 1, e);
        if (st == TG_OK && !(e->name = dup_str(k->u.str, k->len)))
            st = tg__fail(TG_ENOMEM, "%s: out of memory", r->prefix);
        if (st == TG_OK)
            f->n++;
    }
    tg__json_free(root);
    if (st == TG_OK)
        st = check_layout(r, f);
    return st;
}

static uint32_t parse_crc(const char *s, bool *ok)
{
    uint32_t v = 0;
    *ok = strlen(s) == 8;
    for (int i = 0; *ok && i < 8; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        *ok = d >= 0;
        v = v << 4 | (uint32_t)(d < 0 ? 0 : d);
    }
    return v;
}

/* Tensors are made, and filled in data order, only once the whole header
 * has been checked, so that every allocation is backed by bytes that are
 * really in the file. */
static tg_status read_data(reader *r, tg_safetensors *f)
{
    for (int i = 0; i < f->n; i++) {
        const entry *e = &f->e[i];
        if (e->dt->tg < 0)
            return tg__fail(TG_EDTYPE, "%s: tensor \"%s\" has dtype %s; tapegrad reads F32 and "
                            "F64 only (convert it, e.g. with numpy's astype)", r->prefix,
                            e->name, e->dt->name);
    }
    const char *crc_text = tg_safetensors_metadata(f, CRC_KEY);
    bool crc_ok = true;
    uint32_t want = crc_text ? parse_crc(crc_text, &crc_ok) : 0;
    if (!crc_ok)
        return bad(r, "__metadata__ \"" CRC_KEY "\" is \"%.20s\", expected 8 lowercase hex "
                   "digits", crc_text);
    uint32_t crc = 0;
    for (int i = 0; i < f->n; i++) {
        entry *e = &f->e[i];
        e->t = tg__tensor_alloc(NULL, "tg_safetensors_read", (tg_dtype)e->dt->tg, e->ndim,
                                e->shape, false);
        if (!e->t)
            return tg_last_status();
        size_t bytes = (size_t)(e->end - e->begin);
        uint8_t *p = tg_tensor_data(e->t);
        tg_status st = read_exact(r, p, bytes, "tensor data");
        if (st != TG_OK)
            return st;
        crc = tg__crc32(crc, p, bytes);
        if (!host_is_le())
            swap_bytes(p, bytes, e->dt->size);
    }
    if (crc_text && crc != want)
        return bad(r, "the data's CRC-32 is %08x but the header says %08x: the file is "
                   "corrupt", (unsigned)crc, (unsigned)want);
    return TG_OK;
}

tg_safetensors *tg_safetensors_read(const char *path)
{
    if (!path)
        return tg__fail_null(TG_EINVAL, "tg_safetensors_read: path is NULL");
    reader r = {.path = path};
    snprintf(r.prefix, sizeof r.prefix, "tg_safetensors_read: %s", path);
    tg_safetensors *f = tg__calloc(1, sizeof *f);
    char *header = NULL;
    tg_status st = f ? TG_OK : tg__fail(TG_ENOMEM, "%s: out of memory", r.prefix);
    if (st == TG_OK && !(f->path = dup_str(path, strlen(path))))
        st = tg__fail(TG_ENOMEM, "%s: out of memory", r.prefix);
    if (st == TG_OK)
        st = open_file(&r);
    if (st == TG_OK && !(header = tg__malloc((size_t)r.header_len + 1)))
        st = tg__fail(TG_ENOMEM, "%s: out of memory for a %llu-byte header", r.prefix,
                      (unsigned long long)r.header_len);
    if (st == TG_OK)
        st = read_exact(&r, header, (size_t)r.header_len, "header");
    if (st == TG_OK) {
        header[r.header_len] = '\0';
        st = parse_header(&r, f, header);
    }
    tg__free(header);
    if (st == TG_OK)
        st = read_data(&r, f);
    if (r.fp)
        fclose(r.fp);
    if (st == TG_OK) {
        for (int i = 0; i < f->n; i++)
            f->by_name[i] = (struct name_ref){f->e[i].name, i};
        if (f->n > 1)
            qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, by_name);
        return f;
    }
    tg_safetensors_free(f);
    return NULL;
}

/* ---- accessors ---- */

int tg_safetensors_count(const tg_safetensors *f) { return f ? f->n : 0; }

static bool check_index(const tg_safetensors *f, int i, const char *fn)
{
    if (!f) {
        tg__fail(TG_EINVAL, "%s: file is NULL", fn);
        return false;
    }
    if (i < 0 || i >= f->n) {
        tg__fail(TG_ERANGE, "%s: index %d outside [0, %d)", fn, i, f->n);
        return false;
    }
    return true;
}

const char *tg_safetensors_name(const tg_safetensors *f, int i)
{
    return check_index(f, i, "tg_safetensors_name") ? f->e[i].name : NULL;
}

tg_tensor *tg_safetensors_tensor(const tg_safetensors *f, int i)
{
    return check_index(f, i, "tg_safetensors_tensor") ? f->e[i].t : NULL;
}

tg_tensor *tg_safetensors_find(const tg_safetensors *f, const char *name)
{
    if (!f || !name)
        return tg__fail_null(TG_EINVAL, "tg_safetensors_find: %s is NULL", !f ? "file" : "name");
    int lo = 0, hi = f->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(f->by_name[mid].name, name);
        if (c == 0)
            return f->e[f->by_name[mid].i].t;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return tg__fail_null(TG_ERANGE, "tg_safetensors_find: no tensor \"%s\" in %s", name,
                         f->path);
}

const char *tg_safetensors_metadata(const tg_safetensors *f, const char *key)
{
    if (!f || !key)
        return tg__fail_null(TG_EINVAL, "tg_safetensors_metadata: %s is NULL",
                             !f ? "file" : "key");
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[2 * i], key) == 0)
            return f->meta[2 * i + 1];
    return NULL;
}

int tg_safetensors_metadata_count(const tg_safetensors *f) { return f ? f->n_meta : 0; }

static const char *meta_at(const tg_safetensors *f, int i, int which, const char *fn)
{
    if (!f)
        return tg__fail_null(TG_EINVAL, "%s: file is NULL", fn);
    if (i < 0 || i >= f->n_meta)
        return tg__fail_null(TG_ERANGE, "%s: index %d outside [0, %d)", fn, i, f->n_meta);
    return f->meta[2 * i + which];
}

const char *tg_safetensors_metadata_key(const tg_safetensors *f, int i)
{
    return meta_at(f, i, 0, "tg_safetensors_metadata_key");
}

const char *tg_safetensors_metadata_value(const tg_safetensors *f, int i)
{
    return meta_at(f, i, 1, "tg_safetensors_metadata_value");
}

/* ---- writing ---- */

/* A growing text buffer; `failed` sticks after the first allocation failure
 * so that building the header needs one check at the end. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool failed;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = tg__realloc(b->p, cap);
        if (!q) {
            b->failed = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* s as a JSON string literal: quotes, backslashes and control characters
 * escaped; other bytes (checked UTF-8) as they are. */
static void sb_json(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (const char *c = s; *c; c++) {
        unsigned char u = (unsigned char)*c;
        char esc[8];
        if (u == '"' || u == '\\') {
            esc[0] = '\\';
            esc[1] = (char)u;
            sb_put(b, esc, 2);
        } else if (u < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", u);
            sb_put(b, esc, 6);
        } else {
            sb_put(b, c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static int str_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first string of list[0..n) that appears twice, or NULL. */
static const char *duplicate_of(const char *const *list, size_t n, bool *oom)
{
    *oom = false;
    if (n < 2)
        return NULL;
    const char **s = tg__malloc(n * sizeof *s);
    if (!s) {
        *oom = true;
        return NULL;
    }
    memcpy(s, list, n * sizeof *s);
    qsort(s, n, sizeof *s, str_ptr_cmp);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(s[i - 1], s[i]) == 0)
            dup = s[i];
    tg__free(s);
    return dup;
}

static bool utf8_str(const char *s) { return tg__utf8_valid((const uint8_t *)s, strlen(s)); }

static tg_status check_write_args(const char *fn, const char *path, int n,
                                  const char *const *names, tg_tensor *const *tensors,
                                  const char *const *metadata, size_t *n_meta)
{
    if (!path)
        return tg__fail(TG_EINVAL, "%s: path is NULL", fn);
    if (n < 0)
        return tg__fail(TG_EINVAL, "%s: n is %d", fn, n);
    if (n > 0 && (!names || !tensors))
        return tg__fail(TG_EINVAL, "%s: %s is NULL", fn, !names ? "names" : "tensors");
    for (int i = 0; i < n; i++) {
        if (!names[i] || !tensors[i])
            return tg__fail(TG_EINVAL, "%s: %s[%d] is NULL", fn, !names[i] ? "names" : "tensors",
                            i);
        if (!names[i][0])
            return tg__fail(TG_EINVAL, "%s: names[%d] is empty", fn, i);
        if (strcmp(names[i], "__metadata__") == 0)
            return tg__fail(TG_EINVAL, "%s: names[%d] is \"__metadata__\", which safetensors "
                            "reserves", fn, i);
        if (!utf8_str(names[i]))
            return tg__fail(TG_EINVAL, "%s: names[%d] is not valid UTF-8", fn, i);
    }
    bool oom;
    const char *dup = duplicate_of(names, (size_t)n, &oom);
    if (oom)
        return tg__fail(TG_ENOMEM, "%s: out of memory", fn);
    if (dup)
        return tg__fail(TG_EINVAL, "%s: the name \"%s\" is used twice", fn, dup);
    size_t m = 0;
    for (; metadata && metadata[2 * m]; m++) {
        const char *k = metadata[2 * m], *v = metadata[2 * m + 1];
        if (!v)
            return tg__fail(TG_EINVAL, "%s: metadata value for \"%s\" is NULL", fn, k);
        if (strcmp(k, CRC_KEY) == 0)
            return tg__fail(TG_EINVAL, "%s: metadata key \"" CRC_KEY "\" is tapegrad's own", fn);
        if (!utf8_str(k) || !utf8_str(v))
            return tg__fail(TG_EINVAL, "%s: metadata \"%s\" is not valid UTF-8", fn,
                            utf8_str(k) ? k : "(key)");
    }
    // Keys sit at the even positions: compare them through a compact copy.
    if (m > 1) {
        const char **keys = tg__malloc(m * sizeof *keys);
        if (!keys)
            return tg__fail(TG_ENOMEM, "%s: out of memory", fn);
        for (size_t i = 0; i < m; i++)
            keys[i] = metadata[2 * i];
        dup = duplicate_of(keys, m, &oom);
        tg__free(keys);
        if (oom)
            return tg__fail(TG_ENOMEM, "%s: out of memory", fn);
        if (dup)
            return tg__fail(TG_EINVAL, "%s: metadata key \"%s\" is given twice", fn, dup);
    }
    *n_meta = m;
    return TG_OK;
}

static size_t tensor_bytes(const tg_tensor *t)
{
    return (size_t)tg_tensor_numel(t) * tg_dtype_size(tg_tensor_dtype(t));
}

/* Hands the little-endian bytes of t to sink, in order: on a little-endian
 * host its storage in one piece, otherwise swapped through a bounce buffer.
 * Writing and checksumming both go through here, so they see the same bytes. */
typedef tg_status (*le_sink)(void *ctx, const uint8_t *p, size_t n);

static tg_status le_bytes(const tg_tensor *t, le_sink sink, void *ctx)
{
    const uint8_t *p = tg_tensor_data_const(t);
    size_t bytes = tensor_bytes(t);
    if (host_is_le())
        return sink(ctx, p, bytes);
    size_t elem = tg_dtype_size(tg_tensor_dtype(t));
    uint8_t buf[4096];
    for (size_t at = 0; at < bytes; at += sizeof buf) {
        size_t n = bytes - at < sizeof buf ? bytes - at : sizeof buf;
        memcpy(buf, p + at, n);
        swap_bytes(buf, n, elem);
        tg_status st = sink(ctx, buf, n);
        if (st != TG_OK)
            return st;
    }
    return TG_OK;
}

static tg_status write_sink(void *ctx, const uint8_t *p, size_t n)
{
    return tg__afile_write(ctx, p, n);
}

static tg_status crc_sink(void *ctx, const uint8_t *p, size_t n)
{
    uint32_t *crc = ctx;
    *crc = tg__crc32(*crc, p, n);
    return TG_OK;
}

static tg_status write_tensor(tg__afile *af, const tg_tensor *t)
{
    return le_bytes(t, write_sink, af);
}

static uint32_t tensor_crc(uint32_t crc, const tg_tensor *t)
{
    le_bytes(t, crc_sink, &crc); // crc_sink cannot fail
    return crc;
}

static void build_header(sbuf *b, int n, const char *const *names, tg_tensor *const *tensors,
                         const char *const *metadata, size_t n_meta, uint32_t crc)
{
    char num[64];
    sb_str(b, "{\"__metadata__\":{");
    for (size_t i = 0; i < n_meta; i++) {
        sb_json(b, metadata[2 * i]);
        sb_str(b, ":");
        sb_json(b, metadata[2 * i + 1]);
        sb_str(b, ",");
    }
    snprintf(num, sizeof num, "\"" CRC_KEY "\":\"%08x\"}", (unsigned)crc);
    sb_str(b, num);
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        const tg_tensor *t = tensors[i];
        sb_str(b, ",");
        sb_json(b, names[i]);
        sb_str(b, tg_tensor_dtype(t) == TG_F32 ? ":{\"dtype\":\"F32\",\"shape\":["
                                               : ":{\"dtype\":\"F64\",\"shape\":[");
        for (int d = 0; d < tg_tensor_ndim(t); d++) {
            snprintf(num, sizeof num, d ? ",%lld" : "%lld", (long long)tg_tensor_shape(t)[d]);
            sb_str(b, num);
        }
        uint64_t end = at + tensor_bytes(t);
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)at,
                 (unsigned long long)end);
        sb_str(b, num);
        at = end;
    }
    sb_str(b, "}");
    // Padding to a multiple of 8 keeps the data aligned for memory-mapping
    // readers (the reference writer does the same, with spaces).
    while (!b->failed && (8 + b->len) % 8)
        sb_str(b, " ");
}

tg_status tg_safetensors_write(const char *path, int n, const char *const *names,
                               tg_tensor *const *tensors, const char *const *metadata)
{
    static const char fn[] = "tg_safetensors_write";
    size_t n_meta = 0;
    tg_status st = check_write_args(fn, path, n, names, tensors, metadata, &n_meta);
    if (st != TG_OK)
        return st;
    uint32_t crc = 0;
    for (int i = 0; i < n; i++)
        crc = tensor_crc(crc, tensors[i]);
    sbuf hdr = {0};
    build_header(&hdr, n, names, tensors, metadata, n_meta, crc);
    if (hdr.failed) {
        tg__free(hdr.p);
        return tg__fail(TG_ENOMEM, "%s: %s: out of memory for the header", fn, path);
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)hdr.len >> (8 * i));
    tg__afile af;
    st = tg__afile_open(&af, fn, path);
    if (st == TG_OK)
        st = tg__afile_write(&af, len8, 8);
    if (st == TG_OK)
        st = tg__afile_write(&af, hdr.p, hdr.len);
    for (int i = 0; st == TG_OK && i < n; i++)
        st = write_tensor(&af, tensors[i]);
    if (st == TG_OK)
        st = tg__afile_commit(&af);
    // A failed write has already removed the temporary file.
    tg__free(hdr.p);
    return st;
}
