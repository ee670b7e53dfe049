/* status.c - error codes and the per-thread failure message (see status.h). */
#include <stdio.h>
#include <string.h>

#include "tg_internal.h"

#define MESSAGE_SIZE 512

static _Thread_local tg_status last_status = TG_OK;
static _Thread_local char last_message[MESSAGE_SIZE];

const char *tg_status_str(tg_status status)
{
    switch (status) {
#define TG__STATUS_CASE(name, value, text) \
    case name:                             \
        return text;
        TG_STATUS_MAP(TG__STATUS_CASE)
#undef TG__STATUS_CASE
    }
    return "unknown status";
}

const char *tg_last_error(void) { return last_message; }

tg_status tg_last_status(void) { return last_status; }

void tg_clear_error(void)
{
    last_status = TG_OK;
    last_message[0] = '\0';
}

static void record(tg_status code, const char *fmt, va_list ap)
{
    last_status = code;
    vsnprintf(last_message, sizeof last_message, fmt, ap);
}

tg_status tg__fail(tg_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(code, fmt, ap);
    va_end(ap);
    return code;
}

void *tg__fail_null(tg_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(code, fmt, ap);
    va_end(ap);
    return NULL;
}

void *tg__null_input(const char *fn, int which)
{
    // An earlier op in the same expression already failed and said why; its
    // message is the useful one, so it is kept.
    if (last_status != TG_OK)
        return NULL;
    return tg__fail_null(TG_EINVAL, "%s: input %d is NULL", fn, which);
}

tg_status tg__null_arg(const char *fn, const char *what)
{
    // Same rule as tg__null_input: tg_tensor_ndim(tg_matmul(a, b)) should
    // report why the matmul failed, not that the getter saw NULL.
    if (last_status != TG_OK)
        return TG_EINVAL;
    return tg__fail(TG_EINVAL, "%s: %s is NULL", fn, what);
}

const char *tg__shape_str(char *buf, int ndim, const int64_t *shape)
{
    if (ndim == 0) {
        snprintf(buf, TG__SHAPE_STR, "scalar");
        return buf;
    }
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < ndim && used < TG__SHAPE_STR; i++)
        used += (size_t)snprintf(buf + used, TG__SHAPE_STR - used, i ? "x%lld" : "%lld",
                                 (long long)shape[i]);
    return buf;
}
