/*
 * srv_internal.h - what the server's files share: the server state, one
 * HTTP exchange (request in, response out) and the route handlers.
 *
 * Files: server.c (life cycle: listen, load, signals, drain), http.c (the
 * libmicrohttpd glue: body reading, gzip, auth, routing, sending),
 * routes.c (GET routes), routes_embed.c (POST routes), srv_metrics.c
 * (the contract's metric families).
 */
#ifndef SRV_INTERNAL_H
#define SRV_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "../cache/emb_cache.h"
#include "../icl/icl.h"
#include "bgeicl.h"
#include "metrics.h"
#include "request.h"
#include "sched.h"
#include "server.h"

#define SRV_PROVIDER "bge-in-icl"

typedef enum srv_state { SRV_LOADING = 0, SRV_READY = 1, SRV_DRAINING = 2 } srv_state;

/* The contract's metric families, and the series the hot paths keep. */
typedef struct srv_metrics {
    met_registry *reg;
    met_family *requests, *embeddings, *duration, *context_prep;
    met_series *input_tokens, *queue_wait, *tokenization;
    met_series *current_batch, *min_batch, *max_batch, *queue_depth, *connections;
    met_series *cache_hit_rate, *ctx_hits, *ctx_misses, *emb_hits, *emb_misses;
    met_series *emb_entries, *emb_bytes;
    sched_metrics sched;
    /* Not exported: every request's duration, for the JSON quantiles. */
    met_registry *internal;
    met_series *all_durations;
} srv_metrics;

typedef struct srv {
    const srv_config *cfg;
    _Atomic int state;           /* srv_state */
    bgeicl_model *model;         /* NULL while loading */
    bgeicl_model_info info;
    sched *sched;
    icl_engine *icl;
    emb_cache *cache;            /* NULL with --cache-size 0 */
    srv_metrics met;
    long start_time;             /* Unix seconds */
    atomic_long connections;
    atomic_long requests_total, errors_total;

    /* Admitted work requests not yet answered; drain waits for zero. */
    pthread_mutex_t inflight_lock;
    pthread_cond_t inflight_zero;
    long inflight;
} srv;

/* Up to SRV_MAX_HEADERS extra response headers. */
#define SRV_MAX_HEADERS 8

typedef struct srv_response {
    int status;
    met_buf body;
    const char *content_type;    /* static; NULL = application/json */
    struct {
        const char *name;        /* static */
        char value[96];
    } headers[SRV_MAX_HEADERS];
    int n_headers;
} srv_response;

/* One exchange, as the route handlers see it. */
typedef struct srv_exchange {
    srv *s;
    void *conn;                  /* struct MHD_Connection * */
    const char *path;
    const char *body;            /* NUL-terminated, inflated */
    size_t body_len;
    double t_start;              /* bg_now_ms at the first byte */
    /* set by handlers for the request log line */
    size_t n_inputs, n_tokens;
    const char *language;        /* metrics label; NULL for non-embedding routes */
    srv_response *res;
} srv_exchange;

/* ---- responses ------------------------------------------------------------- */

void srv_header(srv_response *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets an OpenAI-style error response from a filled req_error. */
void srv_error(srv_response *r, const req_error *e);
/* Shorthand: builds the req_error and sets it. */
void srv_fail(srv_response *r, int status, const char *type, const char *param,
              const char *code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Appends s as a JSON string literal (quoted, escaped). */
void srv_json_str(met_buf *b, const char *s);
/* Looks up a request header (case-insensitive) or query argument. */
const char *srv_header_in(const srv_exchange *x, const char *name);
const char *srv_query_arg(const srv_exchange *x, const char *name);

/* ---- routes ------------------------------------------------------------------- */

void route_health(srv_exchange *x);
void route_models(srv_exchange *x);
void route_info(srv_exchange *x);
void route_metrics(srv_exchange *x);
void route_embeddings(srv_exchange *x);
void route_embed(srv_exchange *x);
void route_tokenize(srv_exchange *x);

/* ---- metrics -------------------------------------------------------------------- */

bgeicl_code srv_metrics_init(srv *s, bgeicl_error *err);
void srv_metrics_free(srv *s);
/* After the model loaded: build info and batch-size bounds. */
void srv_metrics_model_loaded(srv *s);
/* Accounts one finished embedding request. */
void srv_metrics_request(srv *s, const srv_exchange *x, int status, double seconds);

/* ---- http --------------------------------------------------------------------- */

/* Starts libmicrohttpd on cfg->host:cfg->port; *port gets the bound port. */
void *srv_http_start(srv *s, int *port, bgeicl_error *err);
void srv_http_stop(void *daemon);

#endif
