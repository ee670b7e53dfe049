/* atomic_file.h - replace a file all at once (lib/io/atomic_file.c). The new
 * contents go to a temporary file in the target's directory, which is
 * fsync'd and renamed over the target, and the directory is fsync'd: a
 * reader, a crash or a kill sees the old file or the new one, never a mix.
 * Private; never installed. */
#ifndef TG_IO_ATOMIC_FILE_H
#define TG_IO_ATOMIC_FILE_H

#include <stddef.h>

#include "tg_internal.h"

typedef struct tg__afile {
    const char *fn;   /* public function, for messages */
    const char *path; /* the target (borrowed) */
    char *tmp;        /* the temporary file's path (owned) */
    int fd;           /* -1 once closed */
} tg__afile;

/* Creates the temporary file next to path. TG_EIO ("fn: path: cannot create
 * a temporary file in its directory: strerror"), TG_ENOMEM; on failure
 * nothing is left on disk and af needs no cleanup. */
tg_status tg__afile_open(tg__afile *af, const char *fn, const char *path);

/* Writes all n bytes (retrying short writes and EINTR). TG_EIO on failure;
 * call tg__afile_abort then. */
tg_status tg__afile_write(tg__afile *af, const void *data, size_t n);

/* fsync, close, rename over the target, fsync the directory. On TG_EIO
 * before the rename, the temporary file is removed and the target is as it
 * was; when only the final directory fsync fails the new file is in place
 * (the message says so). af is finished either way. */
tg_status tg__afile_commit(tg__afile *af);

/* Closes and removes the temporary file. Safe after a failed call. */
void tg__afile_abort(tg__afile *af);

/* Tests only: the n-th file-system call from now (open, write, fsync, close,
 * rename, the directory's open and fsync) fails with EIO, once; with
 * kill_instead the process kills itself with SIGKILL at that call, as a crash
 * mid-save would. n < 0 turns the injection off. Returns how many calls were
 * made since the last setting (to size a loop over every call). Not
 * thread-safe, like tg__alloc_fail_after. */
long tg__io_fail_after(long n, int kill_instead);

#endif
