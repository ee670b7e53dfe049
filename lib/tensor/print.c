/* print.c - numpy-like text for tensors: nested brackets, aligned columns,
 * "..." past 6 entries per dimension. One writer serves both FILE* and buffers. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tg_internal.h"

#define EDGE 3 /* entries shown at each end of a summarised dimension */

typedef struct writer {
    FILE *stream;
    char *buf;
    size_t size;
    size_t len; /* total length the full text needs */
    int err;    /* errno of the first failed write to stream (-1: unknown), else 0 */
} writer;

static void emit(writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(writer *w, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (w->stream && !w->err) {
        errno = 0;
        if (fputs(tmp, w->stream) == EOF)
            w->err = errno ? errno : -1;
    }
    if (w->buf && w->len < w->size) {
        size_t room = w->size - 1 - w->len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(w->buf + w->len, tmp, take);
        w->buf[w->len + take] = '\0';
    }
    w->len += (size_t)n;
}

typedef struct style {
    bool scientific;
    int width;
    int digits; /* after the decimal point */
} style;

static bool summarised(const tg_tensor *t, int d)
{
    return t->numel > 1000 && t->shape[d] > 2 * EDGE;
}

static void format_value(char *out, size_t size, double v, style st)
{
    if (st.scientific)
        snprintf(out, size, "%.*e", st.digits, v);
    else
        snprintf(out, size, "%.*f", st.digits, v);
}

static style choose_style(const tg_tensor *t, int digits)
{
    double big = 0, small = INFINITY;
    for (int64_t i = 0; i < t->numel; i++) {
        double a = fabs(tg__get(t, i));
        if (!isfinite(a))
            continue;
        if (a > big)
            big = a;
        if (a > 0 && a < small)
            small = a;
    }
    style st = {.scientific = big >= 1e5 || (small < 1e-4 && small != INFINITY), .width = 1,
                .digits = digits};
    char tmp[64];
    for (int64_t i = 0; i < t->numel; i++) {
        format_value(tmp, sizeof tmp, tg__get(t, i), st);
        int n = (int)strlen(tmp);
        if (n > st.width)
            st.width = n;
    }
    return st;
}

/* Between entries of dimension d: ", " in the last dimension; otherwise a
 * comma, one line break per remaining dimension (numpy's blank lines between
 * blocks), and the indent. */
static void separator(writer *w, const tg_tensor *t, int d, int indent)
{
    if (d == t->ndim - 1) {
        emit(w, ", ");
        return;
    }
    emit(w, ",");
    for (int k = d; k < t->ndim - 1; k++)
        emit(w, "\n");
    emit(w, "%*s", indent + 1, "");
}

static void print_dim(writer *w, const tg_tensor *t, int d, int64_t offset, style st, int indent)
{
    if (d == t->ndim) {
        char tmp[64];
        format_value(tmp, sizeof tmp, tg__get(t, offset), st);
        emit(w, "%*s", st.width, tmp);
        return;
    }
    emit(w, "[");
    int64_t n = t->shape[d];
    bool cut = summarised(t, d);
    for (int64_t i = 0; i < n; i++) {
        if (cut && i == EDGE) {
            emit(w, "...");
            separator(w, t, d, indent);
            i = n - EDGE;
        }
        print_dim(w, t, d + 1, offset + i * t->strides[d], st, indent + 1);
        if (i + 1 < n)
            separator(w, t, d, indent);
    }
    emit(w, "]");
}

static void write_tensor(writer *w, const tg_tensor *t, int digits)
{
    const char *prefix = "tensor(";
    emit(w, "%s", prefix);
    if (t->numel == 0 && t->ndim > 0) {
        // Like numpy: no entries to show, so the shape says what it is.
        emit(w, "[], shape=(");
        for (int d = 0; d < t->ndim; d++)
            emit(w, d ? ", %lld" : "%lld", (long long)t->shape[d]);
        emit(w, t->ndim == 1 ? ",)" : ")");
    } else {
        print_dim(w, t, 0, 0, choose_style(t, digits), (int)strlen(prefix));
    }
    emit(w, ", dtype=%s%s)", tg_dtype_name(t->dtype),
         t->requires_grad ? ", requires_grad=true" : "");
}

tg_status tg_tensor_print(const tg_tensor *t, FILE *stream)
{
    if (!t || !stream)
        return tg__fail(TG_EINVAL, "tg_tensor_print: NULL %s", t ? "stream" : "tensor");
    if (tg__check_live("tg_tensor_print", t) != TG_OK)
        return TG_ESTATE;
    writer w = {.stream = stream};
    write_tensor(&w, t, TG__PRINT_DIGITS);
    emit(&w, "\n");
    // A full disk or a read-only stream often shows only when the buffer is
    // flushed, so the text is not reported as written before that succeeds.
    if (!w.err) {
        errno = 0;
        if (fflush(stream) != 0)
            w.err = errno ? errno : -1;
    }
    if (w.err)
        return tg__fail(TG_EIO, "tg_tensor_print: writing to the stream failed: %s",
                        w.err > 0 ? strerror(w.err) : "unknown error");
    return TG_OK;
}

int tg_tensor_format(const tg_tensor *t, char *buf, size_t size)
{
    if (!t || (!buf && size))
        return tg__fail(TG_EINVAL, "tg_tensor_format: NULL %s", t ? "buffer" : "tensor");
    if (tg__check_live("tg_tensor_format", t) != TG_OK)
        return TG_ESTATE;
    writer w = {.buf = buf, .size = size};
    if (buf && size)
        buf[0] = '\0';
    write_tensor(&w, t, TG__PRINT_DIGITS);
    return (int)w.len;
}

int tg__tensor_format_digits(const tg_tensor *t, char *buf, size_t size, int digits)
{
    writer w = {.buf = buf, .size = size};
    if (buf && size)
        buf[0] = '\0';
    // The callers (explain, DOT export) check the range; clamp anyway so a
    // bad value cannot reach printf as a huge precision.
    write_tensor(&w, t, digits < 0 ? 0 : digits > TG__PRINT_MAX_DIGITS ? TG__PRINT_MAX_DIGITS
                                                                       : digits);
    return (int)w.len;
}
