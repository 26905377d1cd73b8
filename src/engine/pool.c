/*
 * pool.c - fork-join thread pool (see pool.h).
 *
 * Invariants: `generation` increases by one per pool_run; a worker that has
 * seen generation g takes tasks from `next` until it passes `ntasks`, then
 * counts itself into `done`. pool_run returns once done == threads - 1 and
 * its own share is finished, so fn and ctx outlive every use.
 */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>

#include "../util/util.h"

struct pool {
    int threads;
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t wake;      /* workers wait here for a new generation */
    pthread_cond_t finished;  /* pool_run waits here for done == threads-1 */
    unsigned long generation;
    int done;
    int stop;
    pool_fn fn;
    void *ctx;
    size_t ntasks;
    atomic_size_t next;
};

typedef struct worker_arg {
    pool *p;
    int id;
} worker_arg;

static void drain(pool *p, int id)
{
    for (;;) {
        size_t t = atomic_fetch_add(&p->next, 1);
        if (t >= p->ntasks)
            break;
        p->fn(p->ctx, t, id);
    }
}

static void *worker_main(void *arg)
{
    worker_arg wa = *(worker_arg *)arg;
    bg_free(arg);
    pool *p = wa.p;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        drain(p, wa.id);
        pthread_mutex_lock(&p->mu);
        if (++p->done == p->threads - 1)
            pthread_cond_signal(&p->finished);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void stop_workers(pool *p, int started)
{
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < started; i++)
        pthread_join(p->tids[i], NULL);
}

pool *pool_create(int threads)
{
    if (threads < 1)
        threads = 1;
    pool *p = bg_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->threads = threads;
    p->tids = bg_calloc((size_t)threads, sizeof *p->tids);
    if (!p->tids) {
        bg_free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->finished, NULL);
    for (int i = 1; i < threads; i++) {
        worker_arg *wa = bg_malloc(sizeof *wa);
        if (wa) {
            wa->p = p;
            wa->id = i;
        }
        if (!wa || pthread_create(&p->tids[i - 1], NULL, worker_main, wa) != 0) {
            bg_free(wa);
            stop_workers(p, i - 1);
            p->threads = 0;
            pool_destroy(p);
            return NULL;
        }
    }
    return p;
}

void pool_destroy(pool *p)
{
    if (!p)
        return;
    if (p->threads > 1)
        stop_workers(p, p->threads - 1);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->finished);
    bg_free(p->tids);
    bg_free(p);
}

int pool_size(const pool *p) { return p->threads; }

void pool_run(pool *p, size_t ntasks, pool_fn fn, void *ctx)
{
    if (ntasks == 0)
        return;
    if (p->threads == 1 || ntasks == 1) {
        for (size_t t = 0; t < ntasks; t++)
            fn(ctx, t, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->ntasks = ntasks;
    atomic_store(&p->next, 0);
    p->done = 0;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    drain(p, 0);

    pthread_mutex_lock(&p->mu);
    while (p->done < p->threads - 1)
        pthread_cond_wait(&p->finished, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
