/*
 * routes.c - the GET routes: /health, /v1/models, /info, /metrics.
 */
#include <string.h>
#include <strings.h>

#include "../util/util.h"
#include "sched.h"
#include "srv_internal.h"

void route_health(srv_exchange *x)
{
    srv *s = x->s;
    met_buf *b = &x->res->body;
    int state = atomic_load(&s->state);
    if (state == SRV_READY) {
        met_buf_puts(b, "{\"status\":\"healthy\",\"model\":");
        srv_json_str(b, s->info.id);
        met_buf_puts(b, "}");
        return;
    }
    x->res->status = 503;
    srv_header(x->res, "Retry-After", "1");
    met_buf_printf(b, "{\"status\":\"%s\"}", state == SRV_LOADING ? "loading" : "draining");
}

void route_models(srv_exchange *x)
{
    srv *s = x->s;
    met_buf *b = &x->res->body;
    met_buf_puts(b, "{\"object\":\"list\",\"data\":[{\"id\":");
    srv_json_str(b, s->info.id);
    met_buf_printf(b,
                   ",\"object\":\"model\",\"created\":%ld,\"owned_by\":\"bgeicl\","
                   "\"dimensions\":%zu,\"max_input_tokens\":%zu}]}",
                   s->start_time, s->info.dim, s->info.max_tokens);
}

static void kv_str(met_buf *b, const char *key, const char *v)
{
    met_buf_printf(b, "\"%s\":", key);
    if (v)
        srv_json_str(b, v);
    else
        met_buf_puts(b, "null");
    met_buf_puts(b, ",");
}

void route_info(srv_exchange *x)
{
    srv *s = x->s;
    const srv_config *c = s->cfg;
    const bgeicl_model_info *i = &s->info;
    met_buf *b = &x->res->body;
    met_buf_puts(b, "{");
    kv_str(b, "model", i->id);
    kv_str(b, "hf_id", i->hf_id);
    kv_str(b, "architecture", i->architecture);
    kv_str(b, "pooling", i->pooling == BGEICL_POOL_CLS ? "cls" : "mean");
    kv_str(b, "dtype", i->dtype);
    kv_str(b, "isa", i->isa);
    kv_str(b, "gemm", i->gemm);
    kv_str(b, "version", bgeicl_version());
    kv_str(b, "query_instruction", i->query_instruction);
    met_buf_printf(b,
                   "\"dimensions\":%zu,\"max_input_tokens\":%zu,\"layers\":%zu,\"threads\":%d,",
                   i->dim, i->max_tokens, i->layers, i->threads);
    met_buf_printf(b,
                   "\"batching\":{\"max_batch_tokens\":%zu,\"max_batch_requests\":%zu,"
                   "\"max_concurrent_requests\":%zu,\"max_client_batch_size\":%zu,"
                   "\"payload_limit\":%zu},",
                   c->max_batch_tokens, c->max_batch_requests, c->max_concurrent,
                   c->max_client_batch, c->payload_limit);
    met_buf_printf(b, "\"cache\":{\"size_mb\":%ld,", c->cache_mb);
    kv_str(b, "dir", c->cache_dir);
    b->len--; /* the trailing comma */
    met_buf_printf(b,
                   "},\"icl\":{\"enabled\":%s,\"context_cache_size\":%ld,"
                   "\"similarity_threshold\":%g},",
                   c->icl ? "true" : "false", c->context_cache_size, c->similarity_threshold);
    met_buf_printf(b, "\"auth\":%s}", c->api_key ? "true" : "false");
}

/* ---- /metrics ------------------------------------------------------------------- */

static int wants_json(const srv_exchange *x)
{
    const char *f = srv_query_arg(x, "format");
    if (f)
        return !strcasecmp(f, "json");
    const char *a = srv_header_in(x, "Accept");
    return a && strcasestr(a, "application/json") && !strcasestr(a, "text/plain");
}

static void json_quantile(met_buf *b, const char *key, const met_series *h, double q)
{
    char num[32];
    double v = met_histogram_quantile(h, q);
    met_buf_printf(b, "\"%s\":%s", key, v == v ? met_fmt_double(num, v) : "null");
}

/* The summary members of the JSON form, after the per-family objects. */
static void json_summary(srv *s, met_buf *b)
{
    const srv_metrics *m = &s->met;
    long req = atomic_load(&s->requests_total), errs = atomic_load(&s->errors_total);
    char num[32];
    b->len--; /* reopen the object: drop its closing brace */
    met_buf_printf(b, ",\"queue_depth\":%s", met_fmt_double(num, met_value(m->queue_depth)));
    met_buf_printf(b, ",\"cache_hit_rate\":%s",
                   met_fmt_double(num, met_value(m->cache_hit_rate)));
    met_buf_printf(b, ",\"current_batch_size\":%s",
                   met_fmt_double(num, met_value(m->current_batch)));
    met_buf_printf(b, ",\"active_connections\":%ld", atomic_load(&s->connections));
    met_buf_printf(b, ",\"requests_total\":%ld,\"errors_total\":%ld", req, errs);
    met_buf_printf(b, ",\"error_rate\":%s",
                   met_fmt_double(num, req ? (double)errs / (double)req : 0.0));
    met_buf_puts(b, ",\"latency_seconds\":{");
    json_quantile(b, "p50", m->all_durations, 0.5);
    met_buf_puts(b, ",");
    json_quantile(b, "p95", m->all_durations, 0.95);
    met_buf_puts(b, ",");
    json_quantile(b, "p99", m->all_durations, 0.99);
    met_buf_printf(b, "},\"state\":\"%s\"}",
                   (const char *[]){"loading", "ready", "draining"}[atomic_load(&s->state)]);
}

/* Gauges that mirror state kept elsewhere, refreshed at each scrape. */
static void refresh_gauges(srv *s)
{
    srv_metrics *m = &s->met;
    if (s->icl) {
        ctx_cache_stats cs;
        icl_engine_cache_stats(s->icl, &cs);
        uint64_t looked = cs.hits + cs.misses;
        met_set(m->cache_hit_rate, looked ? (double)cs.hits / (double)looked : 0.0);
    }
    if (s->cache) {
        emb_cache_stats es;
        emb_cache_stats_get(s->cache, &es);
        met_set(m->emb_entries, (double)es.entries);
        met_set(m->emb_bytes, (double)es.bytes);
    }
}

void route_metrics(srv_exchange *x)
{
    srv *s = x->s;
    refresh_gauges(s);
    met_set(s->met.connections, (double)atomic_load(&s->connections));
    if (wants_json(x)) {
        if (met_render_json(s->met.reg, &x->res->body) == BGEICL_OK)
            json_summary(s, &x->res->body);
        return;
    }
    x->res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    met_render_text(s->met.reg, &x->res->body);
}
