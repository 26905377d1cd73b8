/*
 * server.c - the life cycle of `bgeicl serve` (see server.h).
 *
 *   LOADING   listening; /health answers 503 "loading", work routes 503
 *   READY     serving
 *   DRAINING  after SIGTERM/SIGINT: /health 503 "draining", new work 503,
 *             admitted requests finish (up to --drain-timeout), then exit 0
 *
 * Signals are blocked in every thread and taken synchronously by the main
 * thread with sigwait, so no handler runs in an arbitrary thread's context.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../util/util.h"
#include "log.h"
#include "srv_internal.h"

void srv_config_init(srv_config *c)
{
    *c = (srv_config){
        .model_dir = "models/bge-small-en-v1.5",
        .host = "0.0.0.0",
        .port = 8080,
        .threads = 0,
        .dtype = "fp32",
        .max_batch_tokens = 16384,
        .max_batch_requests = 256,
        .max_concurrent = 512,
        .max_client_batch = 2048,
        .payload_limit = 16u << 20,
        .cache_mb = 512,
        .icl = ICL_DEFAULT_ON,
        .icl_k = ICL_DEFAULT_K,
        .context_cache_size = 200,
        .similarity_threshold = 0.8,
        .log_level = LOG_INFO,
        .read_timeout_s = 30,
        .idle_timeout_s = 60,
        .drain_timeout_s = 30,
        .max_connections = 1024,
    };
}

/* Without an example bank, ICL queries get the plain query instruction
 * (and a warning says so). */
static int start_icl(srv *s)
{
    const srv_config *c = s->cfg;
    icl_settings st = {.examples_dir = c->icl_examples ? c->icl_examples : icl_default_examples_dir(),
                       .k = (size_t)c->icl_k,
                       .cache_size = (size_t)c->context_cache_size,
                       .threshold = c->similarity_threshold};
    if (!st.examples_dir)
        log_event(LOG_WARN, "no ICL example bank; ICL queries get the plain query instruction",
                  NULL, 0);
    bgeicl_error err;
    if (icl_engine_create(&st, &s->icl, &err) != BGEICL_OK) {
        log_event(LOG_ERROR, "cannot load the ICL example bank",
                  (log_field[]){LOG_S("dir", st.examples_dir), LOG_S("error", err.message)}, 2);
        return -1;
    }
    return 0;
}

static int open_cache(srv *s)
{
    const srv_config *c = s->cfg;
    if (c->cache_mb <= 0)
        return 0;
    char tag[256];
    snprintf(tag, sizeof tag, "%s/%s/%zu", s->info.id, s->info.dtype, s->info.dim);
    bgeicl_error err;
    if (emb_cache_open((size_t)c->cache_mb << 20, s->info.dim, c->cache_dir, tag, &s->cache,
                       &err) != BGEICL_OK) {
        log_event(LOG_ERROR, "cannot open the embedding cache",
                  (log_field[]){LOG_S("dir", c->cache_dir), LOG_S("error", err.message)}, 2);
        return -1;
    }
    emb_cache_stats st;
    emb_cache_stats_get(s->cache, &st);
    log_event(LOG_INFO, "embedding cache",
              (log_field[]){LOG_I("budget_mb", c->cache_mb), LOG_S("dir", c->cache_dir),
                            LOG_I("loaded", st.loaded), LOG_I("discarded", st.discarded)},
              4);
    return 0;
}

static int load_model(srv *s)
{
    const srv_config *c = s->cfg;
    bgeicl_options opts;
    bgeicl_options_init(&opts);
    opts.threads = c->threads;
    opts.max_batch_tokens = c->max_batch_tokens;
    /* cli_serve validated the name; an unknown one keeps fp32. */
    bgeicl_dtype_parse(c->dtype, &opts.dtype);
    bgeicl_error err;
    double t0 = bg_now_ms();
    if (bgeicl_model_open(c->model_dir, &opts, &s->model, &err) != BGEICL_OK) {
        log_event(LOG_ERROR, "cannot load model",
                  (log_field[]){LOG_S("dir", c->model_dir), LOG_S("error", err.message)}, 2);
        return -1;
    }
    bgeicl_model_info_get(s->model, &s->info);
    sched_config sc = {.max_batch_tokens = c->max_batch_tokens,
                       .max_batch_seqs = c->max_batch_requests,
                       .max_jobs = c->max_concurrent,
                       .debug_delay_ms = c->debug_delay_ms};
    if (sched_create(s->model, &sc, &s->met.sched, &s->sched, &err) != BGEICL_OK) {
        log_event(LOG_ERROR, "cannot start the scheduler", (log_field[]){LOG_S("error", err.message)},
                  1);
        return -1;
    }
    if (start_icl(s) != 0 || open_cache(s) != 0)
        return -1;
    srv_metrics_model_loaded(s);
    log_field f[] = {LOG_S("model", s->info.id),   LOG_I("dim", s->info.dim),
                     LOG_S("isa", s->info.isa),    LOG_S("dtype", s->info.dtype),
                     LOG_I("threads", s->info.threads), LOG_N("load_ms", bg_now_ms() - t0)};
    log_event(LOG_INFO, "model loaded", f, sizeof f / sizeof f[0]);
    return 0;
}

/* Stops admitting work and waits for what was admitted. */
static void drain(srv *s)
{
    pthread_mutex_lock(&s->inflight_lock);
    atomic_store(&s->state, SRV_DRAINING);
    log_event(LOG_INFO, "draining", (log_field[]){LOG_I("in_flight", s->inflight)}, 1);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    double secs = s->cfg->drain_timeout_s;
    deadline.tv_sec += (time_t)secs;
    deadline.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while (s->inflight > 0)
        if (pthread_cond_timedwait(&s->inflight_zero, &s->inflight_lock, &deadline) == ETIMEDOUT) {
            log_event(LOG_WARN, "drain timeout", (log_field[]){LOG_I("in_flight", s->inflight)}, 1);
            break;
        }
    pthread_mutex_unlock(&s->inflight_lock);
    if (s->sched)
        sched_close(s->sched);
}

/* A stop signal that arrived while the model loaded (it stays pending). */
static int pending_stop(void)
{
    sigset_t pend;
    sigpending(&pend);
    return sigismember(&pend, SIGTERM) || sigismember(&pend, SIGINT);
}

int srv_run(const srv_config *c)
{
    log_setup((log_level)c->log_level, c->log_json);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by every thread created below */
    signal(SIGPIPE, SIG_IGN);

    srv s;
    memset(&s, 0, sizeof s);
    s.cfg = c;
    atomic_store(&s.state, SRV_LOADING);
    s.start_time = (long)time(NULL);
    pthread_mutex_init(&s.inflight_lock, NULL);
    pthread_cond_init(&s.inflight_zero, NULL);

    int rc = 1, port = 0, sig = 0;
    void *http = NULL;
    bgeicl_error err;
    if (srv_metrics_init(&s, &err) != BGEICL_OK) {
        log_event(LOG_ERROR, "cannot set up metrics", (log_field[]){LOG_S("error", err.message)}, 1);
        goto out;
    }
    http = srv_http_start(&s, &port, &err);
    if (!http) {
        log_event(LOG_ERROR, "cannot listen", (log_field[]){LOG_S("error", err.message)}, 1);
        goto out;
    }
    log_event(LOG_INFO, "listening",
              (log_field[]){LOG_S("host", c->host), LOG_I("port", port),
                            LOG_S("version", bgeicl_version())},
              3);
    if (load_model(&s) != 0)
        goto out;
    if (!pending_stop()) {
        atomic_store(&s.state, SRV_READY);
        log_event(LOG_INFO, "ready", NULL, 0);
    }
    sigwait(&set, &sig); /* returns at once for a signal that came while loading */
    log_event(LOG_INFO, "signal",
              (log_field[]){LOG_S("name", sig == SIGINT ? "SIGINT" : "SIGTERM")}, 1);
    drain(&s);
    rc = 0;
out:
    srv_http_stop(http); /* joins every connection thread */
    sched_destroy(s.sched);
    emb_cache_close(s.cache);
    icl_engine_free(s.icl);
    bgeicl_model_close(s.model);
    srv_metrics_free(&s);
    pthread_cond_destroy(&s.inflight_zero);
    pthread_mutex_destroy(&s.inflight_lock);
    log_event(rc == 0 ? LOG_INFO : LOG_ERROR, "stopped", (log_field[]){LOG_I("exit", rc)}, 1);
    return rc;
}
