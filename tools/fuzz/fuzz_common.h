/* fuzz_common.h - what the libFuzzer harnesses in tools/fuzz/ share: an
 * invariant check that crashes (so libFuzzer saves the input), the
 * "errors are values" check, and a per-process scratch directory for the
 * loaders, which read files. Built by tools/fuzz/run.sh. */
#ifndef TG_FUZZ_COMMON_H
#define TG_FUZZ_COMMON_H

#define _POSIX_C_SOURCE 200809L /* mkdtemp, unlink, rmdir */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "tapegrad/tapegrad.h"

/* A broken promise: print why, then trap so libFuzzer keeps the input. */
#define FUZZ_CHECK(cond, ...)                                                          \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "fuzz invariant failed at %s:%d: %s\n", __FILE__, __LINE__, \
                    #cond);                                                            \
            fprintf(stderr, __VA_ARGS__);                                              \
            fprintf(stderr, "\nlast error: %s\n", tg_last_error());                    \
            __builtin_trap();                                                          \
        }                                                                              \
    } while (0)

/* A failed call must say so: a negative status and a message that starts
 * with a tg_ function name. */
static inline void fuzz_check_failure(tg_status st, const char *call)
{
    FUZZ_CHECK(st < 0 && tg_last_status() < 0, "%s failed with status %d but recorded %d", call,
               (int)st, (int)tg_last_status());
    const char *msg = tg_last_error();
    FUZZ_CHECK(strncmp(msg, "tg_", 3) == 0, "%s: message does not name a function: \"%s\"",
               call, msg);
}

/* Every single allocation above this fails inside the library: huge shapes
 * then take the TG_ENOMEM paths instead of reserving memory that libFuzzer's
 * malloc limit would report as a crash, and a tape stays a few MiB. */
#define FUZZ_MAX_ALLOC ((size_t)4 << 20)

/* A private scratch directory, made once per process and removed at exit. */
static char fuzz_dir[256];

static void fuzz_remove_dir(void)
{
    // Harnesses unlink their own files; only the directory is left.
    if (fuzz_dir[0])
        rmdir(fuzz_dir);
}

static inline const char *fuzz_scratch_dir(void)
{
    if (!fuzz_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/tg-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(fuzz_dir)) {
            perror("mkdtemp");
            abort();
        }
        atexit(fuzz_remove_dir);
    }
    return fuzz_dir;
}

/* Writes data to dir/name; the path goes into path[size]. */
static inline void fuzz_write(const char *name, const uint8_t *data, size_t n, char *path,
                              size_t size)
{
    snprintf(path, size, "%s/%s", fuzz_scratch_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

#endif
