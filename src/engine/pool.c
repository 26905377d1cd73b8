/*
 * pool.c - fork-join thread pool (see pool.h).
 *
 * Invariants: `generation` increases by one per pool_run; a worker that has
 * seen generation g takes tasks from `next` until it passes `ntasks`, then
 * counts itself into `done`. pool_run returns once done == threads - 1 and
 * its own share is finished, so fn and ctx outlive every use. generation,
 * done and stop change only under `mu`; they are atomic so that a waiter can
 * also poll them without the lock.
 *
 * Waiting: a forward pass is a chain of short fork-joins (about ten per
 * layer), and waking a thread blocked on a condition variable takes tens of
 * microseconds, far more than a small GEMM. So both sides first poll for up
 * to SPIN_NS, yielding between polls, and block only if nothing happened by
 * then: within a pass nobody sleeps, between passes the workers cost
 * nothing, and on a loaded machine a poller gives way to whoever has work.
 *
 * Affinity: worker i (1 .. threads-1) is pinned to the i-th CPU this
 * process may run on, when there are at least `threads` of them, so that
 * workers do not migrate and share caches by chance; the calling thread
 * (worker 0) is left where its owner put it. BGEICL_AFFINITY=0 turns the
 * pinning off (for several processes on one machine, say).
 */
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../util/util.h"

#define SPIN_NS 50000 /* 50 us */

struct pool {
    int threads;
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t wake;      /* workers wait here for a new generation */
    pthread_cond_t finished;  /* pool_run waits here for done == threads-1 */
    atomic_ulong generation;
    atomic_int done;
    atomic_int stop;
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

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Gives the CPU to any other runnable thread: on a loaded machine a
 * polling thread must not hold up the very thread it waits for. */
static inline void cpu_relax(void) { sched_yield(); }

/* Polls until the generation moves past `seen` or the pool stops, for at
 * most SPIN_NS; 1 if it did. */
static int spin_for_work(pool *p, unsigned long seen)
{
    long long until = now_ns() + SPIN_NS;
    for (int i = 0;; i++) {
        if (atomic_load(&p->generation) != seen || atomic_load(&p->stop))
            return 1;
        if ((i & 7) == 7 && now_ns() > until)
            return 0;
        cpu_relax();
    }
}

/* Pins the calling worker to the id-th CPU of the process's set. */
static void pin_worker(int id, int threads)
{
    const char *env = getenv("BGEICL_AFFINITY");
    cpu_set_t set;
    if ((env && !strcmp(env, "0")) || sched_getaffinity(0, sizeof set, &set) != 0 ||
        CPU_COUNT(&set) < threads)
        return;
    for (int cpu = 0, n = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &set) && n++ == id) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            pthread_setaffinity_np(pthread_self(), sizeof one, &one);
            return;
        }
}

static void *worker_main(void *arg)
{
    worker_arg wa = *(worker_arg *)arg;
    bg_free(arg);
    pool *p = wa.p;
    unsigned long seen = 0;
    pin_worker(wa.id, p->threads);
    for (;;) {
        spin_for_work(p, seen);
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop)
            break;
        seen = atomic_load(&p->generation);
        pthread_mutex_unlock(&p->mu);
        drain(p, wa.id);
        pthread_mutex_lock(&p->mu);
        if (atomic_fetch_add(&p->done, 1) + 1 == p->threads - 1)
            pthread_cond_signal(&p->finished);
        pthread_mutex_unlock(&p->mu);
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
    atomic_store(&p->done, 0);
    atomic_fetch_add(&p->generation, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    drain(p, 0);

    long long until = now_ns() + SPIN_NS;
    for (int i = 0; atomic_load(&p->done) < p->threads - 1; i++) {
        if ((i & 7) == 7 && now_ns() > until)
            break;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->done) < p->threads - 1)
        pthread_cond_wait(&p->finished, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
