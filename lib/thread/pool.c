/* pool.c - a small pthread pool for the kernels, and per-thread scratch (see
 * pool.h; tg_set_num_threads and tg_num_threads are in runtime.h).
 *
 * One parallel loop at a time: the caller that finds the pool idle publishes
 * (fn, ctx, n_tasks) under the lock, wakes the workers, and everyone takes
 * task numbers from one atomic counter until none are left. Dynamic taking
 * balances a machine shared with other work; it does not touch determinism,
 * because what a task computes depends on its number only (pool.h). A second
 * user thread that finds the pool busy runs its loop alone instead of
 * waiting, which gives the same bytes.
 *
 * Workers start on the first loop that wants them and sleep on a condition
 * variable between loops, after spinning for SPIN_NS first (the caller
 * spins as long for the last worker to finish): a training step runs
 * products of some tens of microseconds back to back, and waking a sleeping
 * thread on a virtual machine costs about as much as the product (two
 * threads made the CNN's conv2 products slower than one: 62 against 95
 * GFLOP/s). Shrinking the count joins the extra workers, so a
 * program (or a leak checker) that sets one thread has none left over. A
 * fork()ed child starts with no workers (the parent's do not exist there).
 *
 * Built without threads (-Dthreads=disabled), the same calls run serially and
 * the scratch buffer is a plain thread-local pointer. */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "thread/pool.h"
#include "tg_internal.h"

/* Beyond this many threads the pool refuses: more than any box we target,
 * and it bounds the thread array. */
#define MAX_THREADS 256
/* Work units (multiply-adds) per extra thread below which a loop stays on one
 * thread: waking a worker costs some microseconds, ~1e5 multiply-adds. */
#define WORK_PER_THREAD 200000.0
/* How long a worker watches for the next loop, and the caller for the end
 * of its loop, before sleeping on the condition variable. */
#define SPIN_NS 100000

#ifdef TG_HAVE_THREADS
static _Atomic int n_threads; /* 0 until first asked */

/* A positive integer from TAPEGRAD_NUM_THREADS, else the online CPUs. */
static int default_threads(void)
{
    const char *env = getenv("TAPEGRAD_NUM_THREADS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 1)
            return v > MAX_THREADS ? MAX_THREADS : (int)v;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (int)cpus;
}
#endif

int tg_num_threads(void)
{
#ifdef TG_HAVE_THREADS
    int n = atomic_load(&n_threads);
    if (n == 0) {
        int want = default_threads();
        // Racing first callers compute the same value; the first store wins.
        atomic_compare_exchange_strong(&n_threads, &n, want);
        n = atomic_load(&n_threads);
    }
    return n;
#else
    return 1;
#endif
}

int tg__threads_for(double work)
{
    int n = tg_num_threads();
    if (n <= 1 || work < 2 * WORK_PER_THREAD)
        return 1;
    double fit = work / WORK_PER_THREAD;
    return fit < n ? (int)fit : n;
}

#ifdef TG_HAVE_THREADS
#include <pthread.h>
#include <sched.h>
#include <time.h>

static struct {
    pthread_mutex_t lock; /* guards every field below */
    pthread_cond_t wake;  /* a new loop, or workers asked to leave */
    pthread_cond_t done;  /* the last worker of a loop finished */
    pthread_t threads[MAX_THREADS];
    int n_workers;   /* running workers: ids 0 .. n_workers-1 */
    uint64_t seen[MAX_THREADS]; /* the generation a new worker starts after */
    int keep;        /* workers with id >= keep leave */
    bool busy;       /* a loop owns the pool */
    _Atomic uint64_t generation; /* written under the lock; spun on without it */
    int used;        /* workers that take part in the current loop */
    _Atomic int pending; /* of those, not yet finished (decremented under the lock) */
    tg__task_fn fn;
    void *ctx;
    void *ws_raw[MAX_THREADS]; /* each worker's scratch, grown by the caller */
    size_t ws_size[MAX_THREADS];
    int64_t n_tasks;
    _Atomic int64_t next; /* the next task number to hand out */
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static _Thread_local bool in_task; /* nested loops run serially */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t workspace_key;

typedef struct workspace {
    void *raw;
    size_t size;
} workspace;

static void free_workspace(void *p)
{
    workspace *w = p;
    if (w) {
        tg__free(w->raw);
        tg__free(w);
    }
}

/* The child of a fork has only the forking thread: forget the workers. */
static void after_fork_child(void)
{
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.n_workers = 0;
    pool.keep = 0;
    pool.busy = false;
    pool.pending = 0;
}

static void shrink_locked(int keep);

void tg__pool_join_workers(void)
{
    if (in_task)
        return;
    pthread_mutex_lock(&pool.lock);
    if (!pool.busy)
        shrink_locked(0);
    pthread_mutex_unlock(&pool.lock);
}

int tg__pool_workers(void)
{
    pthread_mutex_lock(&pool.lock);
    int n = pool.n_workers;
    pthread_mutex_unlock(&pool.lock);
    return n;
}

static void init_once(void)
{
    pthread_key_create(&workspace_key, free_workspace);
    pthread_atfork(NULL, NULL, after_fork_child);
    // Workers still waiting when the program exits would be reported by a
    // leak checker (valgrind: each thread's stack and TLS "possibly lost").
    atexit(tg__pool_join_workers);
}

static void *align64(void *raw)
{
    return raw ? (char *)raw + (64 - (uintptr_t)raw % 64) % 64 : NULL;
}

static void run_tasks(tg__task_fn fn, void *ctx, int64_t n_tasks, void *ws)
{
    bool outer = in_task;
    in_task = true;
    for (int64_t t; (t = atomic_fetch_add(&pool.next, 1)) < n_tasks;)
        fn(ctx, t, ws);
    in_task = outer;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Spins, without the lock, until *value differs from `from` or SPIN_NS pass;
 * the caller then checks again under the lock, so giving up early is safe. */
static void spin_while_u64(_Atomic uint64_t *value, uint64_t from)
{
    int64_t start = now_ns();
    for (int i = 1; atomic_load_explicit(value, memory_order_acquire) == from; i++)
        if (i % 64 == 0 && now_ns() - start > SPIN_NS)
            return;
        else
            cpu_relax();
}

static void spin_while_positive(_Atomic int *value)
{
    int64_t start = now_ns();
    for (int i = 1; atomic_load_explicit(value, memory_order_acquire) > 0; i++)
        if (i % 64 == 0 && now_ns() - start > SPIN_NS)
            return;
        else
            cpu_relax();
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    pthread_mutex_lock(&pool.lock);
    uint64_t seen = pool.seen[id];
    for (;;) {
        if (pool.generation == seen && id < pool.keep) {
            pthread_mutex_unlock(&pool.lock);
            spin_while_u64(&pool.generation, seen);
            pthread_mutex_lock(&pool.lock);
        }
        while (pool.generation == seen && id < pool.keep)
            pthread_cond_wait(&pool.wake, &pool.lock);
        if (id >= pool.keep)
            break;
        seen = pool.generation;
        if (id >= pool.used)
            continue;
        tg__task_fn fn = pool.fn;
        void *ctx = pool.ctx;
        int64_t n_tasks = pool.n_tasks;
        void *ws = pool.ws_size[id] ? align64(pool.ws_raw[id]) : NULL;
        pthread_mutex_unlock(&pool.lock);
        run_tasks(fn, ctx, n_tasks, ws);
        pthread_mutex_lock(&pool.lock);
        if (atomic_fetch_sub(&pool.pending, 1) == 1)
            pthread_cond_signal(&pool.done);
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

/* Joins workers until at most `keep` remain. Called with the pool idle and
 * the lock held; returns with it held. */
static void shrink_locked(int keep)
{
    if (pool.n_workers <= keep)
        return;
    int from = keep, to = pool.n_workers;
    pool.keep = keep;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    for (int i = from; i < to; i++) {
        pthread_join(pool.threads[i], NULL);
        tg__free(pool.ws_raw[i]);
        pool.ws_raw[i] = NULL;
        pool.ws_size[i] = 0;
    }
    pthread_mutex_lock(&pool.lock);
    pool.n_workers = from;
}

static void run_serially(int64_t n_tasks, size_t ws_bytes, tg__task_fn fn, void *ctx)
{
    void *ws = ws_bytes ? tg__workspace(ws_bytes) : NULL;
    for (int64_t t = 0; t < n_tasks; t++)
        fn(ctx, t, ws);
}

void tg__parallel_for(int64_t n_tasks, size_t ws_bytes, tg__task_fn fn, void *ctx)
{
    int want = tg_num_threads() - 1; // workers beside the caller
    if (want > n_tasks - 1)
        want = (int)(n_tasks - 1);
    if (want <= 0 || in_task) {
        run_serially(n_tasks, ws_bytes, fn, ctx);
        return;
    }
    pthread_once(&once, init_once);
    void *my_ws = ws_bytes ? tg__workspace(ws_bytes) : NULL;
    pthread_mutex_lock(&pool.lock);
    if (pool.busy) {
        pthread_mutex_unlock(&pool.lock);
        run_serially(n_tasks, ws_bytes, fn, ctx);
        return;
    }
    pool.busy = true;
    pool.keep = MAX_THREADS;
    // Start missing workers; if the system refuses one, go on with fewer.
    while (pool.n_workers < want && (pool.seen[pool.n_workers] = pool.generation, 1) &&
           pthread_create(&pool.threads[pool.n_workers], NULL, worker,
                          (void *)(intptr_t)pool.n_workers) == 0)
        pool.n_workers++;
    pool.used = want < pool.n_workers ? want : pool.n_workers;
    // Grow the workers' scratch here, on the caller, so which worker takes
    // which task never decides whether a loop allocates. (A worker whose
    // scratch cannot grow gets none for this loop.)
    for (int i = 0; i < pool.used; i++)
        if (pool.ws_size[i] < ws_bytes) {
            tg__free(pool.ws_raw[i]);
            pool.ws_raw[i] = tg__malloc(ws_bytes + 64);
            pool.ws_size[i] = pool.ws_raw[i] ? ws_bytes : 0;
        }
    pool.pending = pool.used;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n_tasks = n_tasks;
    atomic_store(&pool.next, 0);
    pool.generation++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);

    run_tasks(fn, ctx, n_tasks, my_ws);

    spin_while_positive(&pool.pending);
    pthread_mutex_lock(&pool.lock);
    while (pool.pending > 0)
        pthread_cond_wait(&pool.done, &pool.lock);
    pool.busy = false;
    pthread_mutex_unlock(&pool.lock);
}

tg_status tg_set_num_threads(int n)
{
    if (n < 1 || n > MAX_THREADS)
        return tg__fail(TG_EINVAL, "tg_set_num_threads: %d threads (1 to %d)", n, MAX_THREADS);
    if (in_task)
        return tg__fail(TG_ESTATE, "tg_set_num_threads: called from inside a parallel kernel");
    pthread_mutex_lock(&pool.lock);
    // A loop in flight keeps its workers; wait for it to end before joining.
    while (pool.busy) {
        pthread_mutex_unlock(&pool.lock);
        sched_yield();
        pthread_mutex_lock(&pool.lock);
    }
    atomic_store(&n_threads, n);
    shrink_locked(n - 1);
    pthread_mutex_unlock(&pool.lock);
    return TG_OK;
}

static workspace *this_workspace(void)
{
    pthread_once(&once, init_once);
    workspace *w = pthread_getspecific(workspace_key);
    if (!w) {
        w = tg__calloc(1, sizeof *w);
        if (!w || pthread_setspecific(workspace_key, w) != 0) {
            tg__free(w);
            return NULL;
        }
    }
    return w;
}

#else /* serial build */

typedef struct workspace {
    void *raw;
    size_t size;
} workspace;

void tg__parallel_for(int64_t n_tasks, size_t ws_bytes, tg__task_fn fn, void *ctx)
{
    void *ws = ws_bytes ? tg__workspace(ws_bytes) : NULL;
    for (int64_t t = 0; t < n_tasks; t++)
        fn(ctx, t, ws);
}

tg_status tg_set_num_threads(int n)
{
    if (n < 1 || n > MAX_THREADS)
        return tg__fail(TG_EINVAL, "tg_set_num_threads: %d threads (1 to %d)", n, MAX_THREADS);
    if (n != 1)
        return tg__fail(TG_EINVAL, "tg_set_num_threads: %d threads, but this build of tapegrad "
                                   "has no threads (-Dthreads=disabled)", n);
    return TG_OK;
}

/* No destructor without pthreads: a thread that exits leaves its buffer. */
static _Thread_local workspace serial_workspace;
void tg__pool_join_workers(void) {}
int tg__pool_workers(void) { return 0; }

static workspace *this_workspace(void) { return &serial_workspace; }

#endif

void *tg__workspace(size_t bytes)
{
    workspace *w = this_workspace();
    if (!w)
        return NULL;
    if (w->size < bytes) {
        // To a power of two: the products of a training step need sizes
        // that differ a little with the batch and with how each is split
        // between threads (a tail batch's product, run whole, needs two
        // more rows of packed A than the full batches' halves did), and one
        // of them must not allocate again at every new size.
        size_t size = 4096;
        while (size < bytes && size <= SIZE_MAX / 2)
            size *= 2;
        size = size < bytes ? bytes : size;
        void *raw = size <= SIZE_MAX - 64 ? tg__malloc(size + 64) : NULL;
        if (!raw)
            return NULL;
        tg__free(w->raw);
        w->raw = raw;
        w->size = size;
    }
    return (char *)w->raw + (64 - (uintptr_t)w->raw % 64) % 64;
}
