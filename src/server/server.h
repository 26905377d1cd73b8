/*
 * server.h - `bgeicl serve`: the HTTP embedding service.
 *
 * srv_run starts the HTTP listener first (so /health can say "loading"),
 * then loads the model and the scheduler, serves until SIGTERM or SIGINT,
 * and then drains: new requests get 503, requests already admitted finish,
 * and the process exits 0.
 */
#ifndef SRV_SERVER_H
#define SRV_SERVER_H

#include <stddef.h>

typedef struct srv_config {
    const char *model_dir;
    const char *host;           /* address to bind; "0.0.0.0" = every IPv4 interface */
    int port;                   /* 0 = any free port (logged at start) */
    int threads;                /* inference threads; 0 = one per core */
    const char *dtype;          /* "fp32" */
    size_t max_batch_tokens;    /* tokens per forward pass */
    size_t max_batch_requests;  /* texts per forward pass */
    size_t max_concurrent;      /* requests queued or running before 429 */
    size_t max_client_batch;    /* inputs per request before 413 */
    size_t payload_limit;       /* body bytes (after gzip inflation) before 413 */
    const char *api_key;        /* NULL = no auth */
    int metrics_public;         /* /metrics without the key */
    int strict_model;           /* unknown model names are 404 */
    long cache_mb;              /* embedding cache budget; 0 = no cache */
    const char *cache_dir;      /* NULL = memory only */
    int icl;                    /* default of a query's enable_icl */
    const char *icl_examples;   /* the example bank directory */
    long icl_k;                 /* examples per ICL query */
    long context_cache_size;
    double similarity_threshold;
    int log_level;              /* log_level from log.h */
    int log_json;
    double read_timeout_s;      /* whole request body */
    unsigned idle_timeout_s;    /* keep-alive connection without traffic */
    double drain_timeout_s;     /* SIGTERM: longest wait for admitted requests */
    unsigned max_connections;
    int debug_delay_ms;         /* test-only: sleep before each forward pass */
} srv_config;

void srv_config_init(srv_config *c);

/* Runs the server; returns the process exit code (0 after a clean drain,
 * 1 on a runtime failure such as a model that does not load). */
int srv_run(const srv_config *c);

#endif
