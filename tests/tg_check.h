/* tg_check.h - what every Check suite shares: assertions for the error paths
 * (status and a substring of tg_last_error()) and the main() that runs one
 * suite. Included by tests/check_*.c only. */
#ifndef TG_CHECK_H
#define TG_CHECK_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad/tapegrad.h"

/* Status and a substring of the message, for every error path. */
#define ASSERT_FAIL(status_expr, code, substr)                                               \
    do {                                                                                     \
        tg_status st_ = (status_expr);                                                       \
        ck_assert_msg(st_ == (code), "status %d (%s), expected %d; message: %s", (int)st_, \
                      tg_status_str(st_), (int)(code), tg_last_error());                     \
        ck_assert_msg(strstr(tg_last_error(), (substr)) != NULL,                             \
                      "message \"%s\" lacks \"%s\"", tg_last_error(), (substr));             \
    } while (0)

/* The same for a call that returned NULL. */
#define ASSERT_NULL_FAIL(ptr_expr, code, substr)                                             \
    do {                                                                                     \
        ck_assert_ptr_null(ptr_expr);                                                        \
        ASSERT_FAIL(tg_last_status(), code, substr);                                         \
    } while (0)

/* Both, after clearing any pending failure, so that the message checked is the
 * expression's own (an op given NULL keeps an earlier message by design). */
#define ASSERT_FRESH_FAIL(status_expr, code, substr)                                         \
    do {                                                                                     \
        tg_clear_error();                                                                    \
        ASSERT_FAIL(status_expr, code, substr);                                              \
    } while (0)
#define ASSERT_FRESH_NULL_FAIL(ptr_expr, code, substr)                                       \
    do {                                                                                     \
        tg_clear_error();                                                                    \
        ASSERT_NULL_FAIL(ptr_expr, code, substr);                                            \
    } while (0)

#define ASSERT_OK(expr)                                                                      \
    do {                                                                                     \
        tg_status so_ = (expr);                                                              \
        ck_assert_msg(so_ == TG_OK, "%s failed: %s", #expr, tg_last_error());              \
    } while (0)

/* main() for a file whose suite is built by suite_fn(); fork mode, so a crash
 * fails one test, not the run. */
#define TG_CHECK_MAIN(suite_fn)                                                              \
    int main(void)                                                                           \
    {                                                                                        \
        SRunner *sr = srunner_create(suite_fn());                                            \
        srunner_run_all(sr, CK_NORMAL);                                                      \
        int failed = srunner_ntests_failed(sr);                                              \
        srunner_free(sr);                                                                    \
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;                                         \
    }

#endif
