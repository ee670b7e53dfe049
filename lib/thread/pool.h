/* pool.h - the library's worker threads (lib/thread/pool.c): one parallel
 * loop over independent tasks, and a scratch buffer per thread.
 *
 * Determinism is the caller's part of the contract: a task must write outputs
 * no other task writes, with arithmetic that does not depend on which thread
 * runs it or how many threads there are. Then any thread count gives the same
 * bytes. Never installed. */
#ifndef TG_THREAD_POOL_H
#define TG_THREAD_POOL_H

#include <stddef.h>
#include <stdint.h>

/* Runs fn(ctx, task, ws) for every task in [0, n_tasks) and returns when all
 * are done. The calling thread takes part. Runs the tasks in order on the
 * calling thread when there is one thread, when called from inside a task,
 * when another thread's loop holds the pool, or in a serial build.
 *
 * ws is scratch of at least ws_bytes (64-byte aligned) that belongs to the
 * thread running the task, or NULL when ws_bytes is 0 or memory ran out (the
 * task must then manage without). The caller grows every participating
 * thread's scratch before the loop starts, so a loop that asks for no more
 * than an earlier one allocates nothing, whichever thread takes which task. */
typedef void (*tg__task_fn)(void *ctx, int64_t task, void *ws);
void tg__parallel_for(int64_t n_tasks, size_t ws_bytes, tg__task_fn fn, void *ctx);

/* How many threads a loop over `work` units (about one multiply-add each)
 * should use: 1 below a size where waking threads costs more than it saves,
 * at most tg_num_threads(). */
int tg__threads_for(double work);

/* The calling thread's own scratch buffer (the one a loop's caller uses): at
 * least `bytes`, 64-byte aligned, grown (never shrunk) through tg__malloc,
 * so after the first use at a size it costs no allocation. Valid until the
 * next call on this thread; freed when the thread exits (never, in a serial
 * build: there it is a thread-local pointer). NULL when out of memory. */
void *tg__workspace(size_t bytes);

/* Joins every worker (the next loop starts them again); does nothing when
 * called from inside a task or while a loop runs, where joining could wait
 * forever. Registered with atexit when the pool first starts, so a program
 * ends with no thread of ours left for a leak checker to report. */
void tg__pool_join_workers(void);
/* Running workers (0 in a serial build): for tests. */
int tg__pool_workers(void);

#endif
