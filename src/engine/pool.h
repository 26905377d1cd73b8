/*
 * pool.h - a fork-join thread pool.
 *
 * pool_run(p, n, fn, ctx) runs fn(ctx, task, worker) for task = 0..n-1 and
 * returns when all are done. Tasks are handed out through one atomic
 * counter, so uneven tasks balance themselves. The calling thread works too
 * (as worker 0), so a pool of N threads starts N-1 of its own. worker is in
 * [0, pool_size) and indexes per-thread scratch.
 *
 * One pool_run at a time: callers serialise (the engine holds its lock).
 */
#ifndef POOL_H
#define POOL_H

#include <stddef.h>

typedef struct pool pool;
typedef void (*pool_fn)(void *ctx, size_t task, int worker);

/* Returns NULL on failure (allocation or thread creation). */
pool *pool_create(int threads);
void pool_destroy(pool *p);
int pool_size(const pool *p);
void pool_run(pool *p, size_t ntasks, pool_fn fn, void *ctx);

#endif
