/*
 * client.h - the client handle (struct bgeicl_client) and what its files
 * share: client.c (life cycle, queries of state), embed.c (the batches).
 *
 * Data structure:
 *   - the options, with owned copies of their strings;
 *   - servers (servers.h), the ICL bank and context cache (icl_plan.h),
 *     the counters (metrics.h);
 *   - `lock` guards the batch-size controller and the queue of calls;
 *   - the queue: calls that still have batches to form, oldest first. A
 *     sender takes the next batch from the head call, sized by the
 *     controller at that moment; a call leaves the queue when its last
 *     batch is formed or it fails;
 *   - max_concurrency senders (threads), each with its own connection
 *     slot (http.h), waiting on `work`;
 *   - a small pool of connection slots for GETs and health checks made
 *     from the caller's thread.
 *
 * Invariants: a call is freed only by its caller, after it left the queue
 * and no batch of it is in flight (inflight == 0); a call's rows are
 * written under `lock`, each exactly once per successful batch, and every
 * input belongs to exactly one batch.
 */
#ifndef CL_CLIENT_H
#define CL_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>

#include "adaptive.h"
#include "icl_plan.h"
#include "metrics.h"
#include "servers.h"
#include "wire.h"

#define CL_POOL_MAX 8

typedef struct cl_call {
    struct cl_call *next;
    const char *const *texts;
    size_t *lens;          /* n, owned */
    size_t n;
    cl_plan plan;
    cl_kind kind;
    const char *language;  /* CL_KIND_QUERY_SERVER */
    int no_truncate;
    size_t g, pos;         /* the next batch starts at plan.order[pos], in group g */
    size_t inflight;
    int queued;
    float *out;            /* n x dim once the first reply arrived */
    size_t dim;
    atomic_int failed;
    bgeicl_error err;      /* the first failure */
    pthread_cond_t done;
} cl_call;

typedef struct cl_batch {
    cl_call *call;
    const cl_group *group;
    const size_t *idx;     /* input indices, inside call->plan.order */
    size_t n;
} cl_batch;

typedef struct cl_sender {
    struct bgeicl_client *c;
    pthread_t thread;
    cl_http *http;
    cl_buf body;
} cl_sender;

struct bgeicl_client {
    bgeicl_client_options o;
    char *str[5];           /* owned copies: servers, api_key, model, language, examples dir */
    int lang;               /* -1: detect */
    int log;
    cl_servers servers;
    cl_icl icl;
    cl_metrics met;
    cl_http_cfg hc;
    int sync_ready;
    pthread_mutex_t lock;
    pthread_cond_t work;
    cl_adaptive ad;
    cl_call *head, *tail;
    atomic_int stop;
    cl_sender *senders;
    size_t n_senders;
    pthread_mutex_t pool_lock;
    cl_http *pool[CL_POOL_MAX];
    size_t n_pool;
};

/* The sender threads' body (embed.c). */
void *cl_sender_main(void *arg);
/* A connection slot from the pool (NULL on NOMEM, err set), and back. */
cl_http *cl_pool_get(struct bgeicl_client *c, bgeicl_error *err);
void cl_pool_put(struct bgeicl_client *c, cl_http *h);
/* Sleeps up to `s` seconds, waking early when a flag is raised. */
void cl_sleep(double s, const cl_abort *ab);

#endif
