/* status.h - error codes and the per-thread error message.
 *
 * Every call that can fail either returns a tg_status (TG_OK is 0, failures are
 * negative) or, for calls that build something, NULL. The reason is kept in a
 * per-thread buffer read by tg_last_error(). Ops given a NULL input return NULL
 * and keep the message of the first failure, so a whole expression can be
 * checked once at its end:
 *
 *     tg_tensor *y = tg_sum(tg_mul(tg_exp(a), b), NULL, 0, false);
 *     if (!y) fprintf(stderr, "%s\n", tg_last_error());
 *
 * Like errno, a successful call does not clear the message; tg_clear_error() does.
 */
#ifndef TAPEGRAD_STATUS_H
#define TAPEGRAD_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define TG_API __declspec(dllexport)
#elif defined(__GNUC__)
#define TG_API __attribute__((visibility("default")))
#else
#define TG_API
#endif

/* X(name, value, description): the one list of codes and their descriptions. */
#define TG_STATUS_MAP(X)                                                  \
    X(TG_OK, 0, "ok")                                                     \
    X(TG_EINVAL, -1, "invalid argument")                                  \
    X(TG_ESHAPE, -2, "shape mismatch")                                    \
    X(TG_EDTYPE, -3, "dtype mismatch")                                    \
    X(TG_ENOMEM, -4, "out of memory")                                     \
    X(TG_ESTATE, -5, "invalid state")                                     \
    X(TG_ERANGE, -6, "index or size out of range")                        \
    X(TG_EIO, -7, "input/output error")                                   \
    X(TG_EFORMAT, -8, "corrupt or unsupported data")                      \
    X(TG_EGRAD, -9, "gradient check failed")                              \
    X(TG_ENUMERIC, -10, "NaN or infinity produced")

typedef enum tg_status {
#define TG__STATUS_ENUM(name, value, text) name = value,
    TG_STATUS_MAP(TG__STATUS_ENUM)
#undef TG__STATUS_ENUM
} tg_status;

/* Short fixed description of a code ("shape mismatch"); never NULL. */
TG_API const char *tg_status_str(tg_status status);

/* The message of the most recent failure on this thread, e.g.
 * "tg_matmul: inner dims 3 vs 4 (a 2x3, b 4x5)". "" when none. The pointer is
 * borrowed and valid until the next failing call on this thread. */
TG_API const char *tg_last_error(void);

/* The code of the most recent failure on this thread (TG_OK when none). */
TG_API tg_status tg_last_status(void);

/* Forget the pending failure on this thread. */
TG_API void tg_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
