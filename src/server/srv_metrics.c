/*
 * srv_metrics.c - the metric families of the contract, registered once at
 * start, and the accounting of each finished embedding request.
 *
 * Series without labels, and the labelled series whose label values are
 * known at start (provider="bge-in-icl"), are looked up here once; the
 * per-language series are found per request (a short list scan).
 */
#include <string.h>

#include "../util/util.h"
#include "srv_internal.h"

static const double seconds_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                        1,     2.5,  5,     10,   30,  60};
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
static const double token_bounds[] = {16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768};
#define NB(a) ((int)(sizeof a / sizeof a[0]))

/* Registers one family; after a failure, does nothing and returns NULL. */
static met_family *reg(met_registry *r, met_kind kind, const char *name, const char *help,
                       const char *const *labels, int nlabels, const double *bounds, int nbounds,
                       bgeicl_code *rc, bgeicl_error *err)
{
    met_family *f = NULL;
    if (*rc == BGEICL_OK)
        *rc = met_register(r, kind, name, help, labels, nlabels, bounds, nbounds, &f, err);
    return f;
}

#define L0 NULL, 0
#define L1(a) (const char *const[]){a}, 1
#define L2(a, b) (const char *const[]){a, b}, 2
#define L3(a, b, c) (const char *const[]){a, b, c}, 3
#define NOB NULL, 0
#define SECS seconds_bounds, NB(seconds_bounds)
#define FAM(var, kind, name, help, ...) var = reg(m->reg, kind, name, help, __VA_ARGS__, &rc, err)

/* The single series of a family, labelled with the provider or unlabelled. */
static met_series *one(met_family *f, int provider)
{
    if (!f)
        return NULL;
    return provider ? met_get(f, SRV_PROVIDER, NULL) : met_get(f, NULL);
}

bgeicl_code srv_metrics_init(srv *s, bgeicl_error *err)
{
    srv_metrics *m = &s->met;
    memset(m, 0, sizeof *m);
    bgeicl_code rc = met_registry_create(&m->reg);
    if (rc == BGEICL_OK)
        rc = met_registry_create(&m->internal);
    if (rc != BGEICL_OK)
        return bg_fail(err, rc, "out of memory for the metrics registry");
    met_family *f;
    FAM(m->requests, MET_COUNTER, "bge_icl_requests_total", "Embedding requests by outcome.",
        L3("provider", "language", "status"), NOB);
    FAM(m->embeddings, MET_COUNTER, "bge_icl_embeddings_generated_total",
        "Embeddings returned.", L2("provider", "language"), NOB);
    FAM(f, MET_COUNTER, "bge_icl_input_tokens_total", "Tokens embedded, special tokens included.", L0,
        NOB);
    m->input_tokens = one(f, 0);
    FAM(m->duration, MET_HISTOGRAM, "bge_icl_request_duration_seconds",
        "Embedding request time from first byte to response.", L2("provider", "batch_size_range"),
        SECS);
    FAM(m->context_prep, MET_HISTOGRAM, "bge_icl_context_preparation_seconds",
        "Time to build in-context-learning prompts.", L1("language"), SECS);
    FAM(f, MET_HISTOGRAM, "bge_icl_queue_wait_seconds",
        "Time a request waited for its first batch.", L0, SECS);
    m->queue_wait = one(f, 0);
    FAM(f, MET_HISTOGRAM, "bge_icl_tokenization_seconds", "Tokenization time per request.", L0,
        SECS);
    m->tokenization = one(f, 0);
    FAM(f, MET_HISTOGRAM, "bge_icl_inference_seconds", "Forward-pass time per batch.", L0, SECS);
    m->sched.inference = one(f, 0);
    FAM(f, MET_HISTOGRAM, "bge_icl_batch_size", "Texts per executed batch.", L0, batch_bounds,
        NB(batch_bounds));
    m->sched.batch_size = one(f, 0);
    FAM(f, MET_HISTOGRAM, "bge_icl_batch_tokens", "Tokens per executed batch.", L0, token_bounds,
        NB(token_bounds));
    m->sched.batch_tokens = one(f, 0);
    FAM(f, MET_GAUGE, "bge_icl_current_batch_size", "Texts in the last executed batch.",
        L1("provider"), NOB);
    m->current_batch = m->sched.current_batch = one(f, 1);
    FAM(f, MET_GAUGE, "bge_icl_min_batch_size", "Smallest batch the scheduler runs.",
        L1("provider"), NOB);
    m->min_batch = one(f, 1);
    FAM(f, MET_GAUGE, "bge_icl_max_batch_size", "Largest batch the scheduler runs (texts).",
        L1("provider"), NOB);
    m->max_batch = one(f, 1);
    FAM(f, MET_GAUGE, "bge_icl_queue_depth", "Requests queued or running.", L0, NOB);
    m->queue_depth = m->sched.queue_depth = one(f, 0);
    FAM(f, MET_GAUGE, "bge_icl_active_connections", "Open client connections.", L1("provider"), NOB);
    m->connections = one(f, 1);
    FAM(f, MET_GAUGE, "bge_icl_cache_hit_rate", "Context-cache hit rate since start.",
        L1("provider"), NOB);
    m->cache_hit_rate = one(f, 1);
    FAM(f, MET_COUNTER, "bge_icl_context_cache_hits_total", "Context-cache hits.", L0, NOB);
    m->ctx_hits = one(f, 0);
    FAM(f, MET_COUNTER, "bge_icl_context_cache_misses_total", "Context-cache misses.", L0, NOB);
    m->ctx_misses = one(f, 0);
    FAM(f, MET_COUNTER, "bge_icl_embedding_cache_hits_total", "Embedding-cache hits.", L0, NOB);
    m->emb_hits = one(f, 0);
    FAM(f, MET_COUNTER, "bge_icl_embedding_cache_misses_total", "Embedding-cache misses.", L0, NOB);
    m->emb_misses = one(f, 0);
    FAM(f, MET_GAUGE, "bge_icl_embedding_cache_entries", "Vectors in the embedding cache.", L0, NOB);
    m->emb_entries = one(f, 0);
    FAM(f, MET_GAUGE, "bge_icl_embedding_cache_bytes", "Bytes held by the embedding cache.", L0, NOB);
    m->emb_bytes = one(f, 0);
    if (rc == BGEICL_OK)
        rc = met_register_process(m->reg, err);
    if (rc != BGEICL_OK)
        return rc;
    /* The internal registry holds one family; it is not exported. */
    met_family *all = NULL;
    rc = met_register(m->internal, MET_HISTOGRAM, "request_seconds", NULL, NULL, 0,
                      seconds_bounds, NB(seconds_bounds), &all, err);
    m->all_durations = rc == BGEICL_OK ? one(all, 0) : NULL;
    if (rc == BGEICL_OK && (!m->input_tokens || !m->current_batch || !m->all_durations ||
                            !m->connections || !m->cache_hit_rate))
        rc = bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for the metric series");
    return rc;
}

void srv_metrics_free(srv *s)
{
    met_registry_destroy(s->met.reg);
    met_registry_destroy(s->met.internal);
}

void srv_metrics_model_loaded(srv *s)
{
    met_family *f = NULL;
    const char *labels[] = {"version", "model", "dtype", "isa"};
    if (met_register(s->met.reg, MET_GAUGE, "bge_icl_build_info",
                     "Build and model facts; the value is always 1.", labels, 4, NULL, 0, &f,
                     NULL) == BGEICL_OK) {
        met_series *b = met_get(f, bgeicl_version(), s->info.id, s->info.dtype, s->info.isa, NULL);
        if (b)
            met_set(b, 1);
    }
    met_set(s->met.min_batch, 1);
    met_set(s->met.max_batch, (double)s->cfg->max_batch_requests);
}

static const char *size_range(size_t n)
{
    return n <= 10 ? "small" : n <= 50 ? "medium" : "large";
}

void srv_metrics_request(srv *s, const srv_exchange *x, int status, double seconds)
{
    srv_metrics *m = &s->met;
    int ok = status < 400;
    atomic_fetch_add(&s->requests_total, 1);
    if (!ok)
        atomic_fetch_add(&s->errors_total, 1);
    met_series *r = met_get(m->requests, SRV_PROVIDER, x->language, ok ? "success" : "error", NULL);
    if (r)
        met_add(r, 1);
    met_observe(m->all_durations, seconds);
    if (!ok)
        return;
    met_series *e = met_get(m->embeddings, SRV_PROVIDER, x->language, NULL);
    if (e)
        met_add(e, (double)x->n_inputs);
    met_add(m->input_tokens, (double)x->n_tokens);
    met_series *d = met_get(m->duration, SRV_PROVIDER, size_range(x->n_inputs), NULL);
    if (d)
        met_observe(d, seconds);
}
