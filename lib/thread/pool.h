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

/* Runs fn(ctx, task) for every task in [0, n_tasks) and returns when all are
 * done. The calling thread takes part. Runs the tasks in order on the calling
 * thread when there is one thread, when called from inside a task, when
 * another thread's loop holds the pool, or in a serial build. */
void tg__parallel_for(int64_t n_tasks, void (*fn)(void *ctx, int64_t task), void *ctx);

/* How many threads a loop over `work` units (about one multiply-add each)
 * should use: 1 below a size where waking threads costs more than it saves,
 * at most tg_num_threads(). */
int tg__threads_for(double work);

/* The calling thread's scratch buffer: at least `bytes`, 64-byte aligned,
 * grown (never shrunk) through tg__malloc, so after the first use at a size
 * it costs no allocation. Valid until the next call on this thread; freed
 * when the thread exits. NULL when out of memory. */
void *tg__workspace(size_t bytes);

#endif
