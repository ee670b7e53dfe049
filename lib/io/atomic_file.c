/* atomic_file.c - write-to-temporary, fsync, rename, fsync-the-directory
 * (atomic_file.h), and the file-system failure injection its tests use. The
 * only POSIX-dependent file of lib/io: everything else reads with stdio. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic_file.h"

/* ---- failure injection ---- */

static long io_countdown = -1;
static long io_calls;
static int io_kill;

long tg__io_fail_after(long n, int kill_instead)
{
    long calls = io_calls;
    io_countdown = n;
    io_kill = kill_instead;
    io_calls = 0;
    return calls;
}

/* True when this call is the one to fail (errno is then EIO). */
static int injected(void)
{
    io_calls++;
    if (io_countdown < 0)
        return 0;
    if (io_countdown > 0) {
        io_countdown--;
        return 0;
    }
    io_countdown = -1;
    if (io_kill)
        raise(SIGKILL);
    errno = EIO;
    return 1;
}

static int x_open(const char *path, int flags, mode_t mode)
{
    return injected() ? -1 : open(path, flags, mode);
}
static ssize_t x_write(int fd, const void *p, size_t n) { return injected() ? -1 : write(fd, p, n); }
static int x_fsync(int fd) { return injected() ? -1 : fsync(fd); }
static int x_close(int fd)
{
    if (injected()) {
        close(fd); // the descriptor must still go: only the report fails
        return -1;
    }
    return close(fd);
}
static int x_rename(const char *a, const char *b) { return injected() ? -1 : rename(a, b); }

/* ---- the file ---- */

/* Where "path"'s directory is: "dir" for "dir/name", "." for "name". */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    if (slash && n == 0)
        n = 1; // "/name": the root
    char *d = tg__malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, slash ? path : ".", n);
    d[n] = '\0';
    return d;
}

tg_status tg__afile_open(tg__afile *af, const char *fn, const char *path)
{
    static unsigned long counter;
    af->fn = fn;
    af->path = path;
    af->fd = -1;
    af->tmp = NULL;
    // ".name.tmp-<pid>-<n>" beside the target: rename is only atomic within
    // one file system, and a hidden name keeps it out of the user's globs.
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    size_t size = strlen(path) + 64;
    char *tmp = tg__malloc(size);
    if (!tmp)
        return tg__fail(TG_ENOMEM, "%s: %s: out of memory", fn, path);
    int fd = -1, err = 0;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        snprintf(tmp, size, "%.*s.%s.tmp-%ld-%lu", (int)dir_len, path, path + dir_len,
                 (long)getpid(), counter++);
        // 0666 and the umask, as fopen(path, "w") would give.
        fd = x_open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        err = fd < 0 ? errno : 0;
        if (fd < 0 && err != EEXIST)
            break;
    }
    if (fd < 0) {
        tg__free(tmp);
        return tg__fail(TG_EIO, "%s: %s: cannot create a temporary file in its directory: %s "
                        "(the previous file, if any, is unchanged)", fn, path, strerror(err));
    }
    af->tmp = tmp;
    af->fd = fd;
    return TG_OK;
}

void tg__afile_abort(tg__afile *af)
{
    if (af->fd >= 0)
        close(af->fd);
    af->fd = -1;
    if (af->tmp)
        unlink(af->tmp);
    tg__free(af->tmp);
    af->tmp = NULL;
}

static tg_status io_fail(tg__afile *af, const char *what, int err)
{
    tg_status st = tg__fail(TG_EIO, "%s: %s: %s failed: %s (the previous file, if any, is "
                            "unchanged)", af->fn, af->path, what, strerror(err));
    tg__afile_abort(af);
    return st;
}

tg_status tg__afile_write(tg__afile *af, const void *data, size_t n)
{
    const char *p = data;
    while (n) {
        // Large single writes may be split by the kernel anyway; a bounded
        // size keeps every call's return value within ssize_t.
        size_t chunk = n > ((size_t)1 << 30) ? (size_t)1 << 30 : n;
        ssize_t w = x_write(af->fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return io_fail(af, "write", errno);
        }
        if (w == 0)
            return io_fail(af, "write", ENOSPC);
        p += w;
        n -= (size_t)w;
    }
    return TG_OK;
}

tg_status tg__afile_commit(tg__afile *af)
{
    // Without the fsync, a crash soon after the rename can leave the new
    // name pointing at a file whose blocks never reached the disk.
    if (x_fsync(af->fd) != 0)
        return io_fail(af, "fsync", errno);
    int fd = af->fd;
    af->fd = -1;
    if (x_close(fd) != 0)
        return io_fail(af, "close", errno);
    if (x_rename(af->tmp, af->path) != 0)
        return io_fail(af, "rename", errno);
    tg__free(af->tmp);
    af->tmp = NULL;
    // The rename itself is durable only once the directory is synced.
    char *dir = dir_of(af->path);
    if (!dir)
        return tg__fail(TG_ENOMEM, "%s: %s: out of memory syncing the directory (the new file "
                        "is in place)", af->fn, af->path);
    tg_status st = TG_OK;
    int dfd = x_open(dir, O_RDONLY | O_CLOEXEC, 0);
    if (dfd < 0) {
        st = tg__fail(TG_EIO, "%s: %s: cannot open the directory to sync it: %s (the new "
                      "file is in place but may not survive a crash)", af->fn, af->path,
                      strerror(errno));
    } else {
        // Some file systems cannot fsync a directory (EINVAL): nothing to do there.
        if (x_fsync(dfd) != 0 && errno != EINVAL)
            st = tg__fail(TG_EIO, "%s: %s: syncing the directory failed: %s (the new file is "
                          "in place but may not survive a crash)", af->fn, af->path,
                          strerror(errno));
        close(dfd);
    }
    tg__free(dir);
    return st;
}
