/*
 * client.c - the client's life cycle and its state queries: new/free,
 * metrics, servers, health checks and plain GETs (see client.h; the
 * batches are in embed.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"
#include "client.h"
#include "log.h"
#include "options.h"

/* ---- connection pool for the caller's own requests ---------------------------------------- */

cl_http *cl_pool_get(bgeicl_client *c, bgeicl_error *err)
{
    cl_http *h = NULL;
    pthread_mutex_lock(&c->pool_lock);
    if (c->n_pool)
        h = c->pool[--c->n_pool];
    pthread_mutex_unlock(&c->pool_lock);
    if (!h)
        cl_http_new(&c->hc, &h, err);
    return h;
}

void cl_pool_put(bgeicl_client *c, cl_http *h)
{
    pthread_mutex_lock(&c->pool_lock);
    if (c->n_pool < CL_POOL_MAX) {
        c->pool[c->n_pool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->pool_lock);
    cl_http_free(h);
}

/* ---- new / free ------------------------------------------------------------------------------ */

/* Owned copies of the option strings, so the caller's may go away. */
static bgeicl_code copy_strings(bgeicl_client *c, const bgeicl_client_options *o,
                                bgeicl_error *err)
{
    const char *src[5] = {o->servers ? o->servers : CL_DEFAULT_SERVERS, o->api_key,
                          o->model ? o->model : CL_DEFAULT_MODEL, o->language,
                          o->icl_examples_dir};
    for (int i = 0; i < 5; i++)
        if (src[i] && !(c->str[i] = bg_strdup(src[i])))
            return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for the client options");
    c->o.servers = c->str[0];
    c->o.api_key = c->str[1];
    c->o.model = c->str[2];
    c->o.language = c->str[3];
    c->o.icl_examples_dir = c->str[4];
    c->o.log_level = NULL; /* parsed into c->log */
    return BGEICL_OK;
}

static bgeicl_code start_icl(bgeicl_client *c, bgeicl_error *err)
{
    const char *dir = NULL;
    if (c->o.enable_icl)
        dir = c->o.icl_examples_dir ? c->o.icl_examples_dir : icl_default_examples_dir();
    size_t k = c->o.icl_examples > 0 ? (size_t)c->o.icl_examples : ICL_DEFAULT_K;
    bgeicl_code rc = cl_icl_init(&c->icl, dir, k, (size_t)c->o.context_cache_size,
                                 c->o.similarity_threshold, err);
    if (rc != BGEICL_OK) {
        char m[sizeof err->message];
        snprintf(m, sizeof m, "%s", err ? err->message : "");
        return bg_fail(err, rc, "icl_examples_dir: cannot load the example bank: %s", m);
    }
    return BGEICL_OK;
}

static void start_sync(bgeicl_client *c)
{
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->work, NULL);
    pthread_mutex_init(&c->pool_lock, NULL);
    atomic_init(&c->stop, 0);
    cl_metrics_init(&c->met);
    c->sync_ready = 1;
    cl_adaptive_cfg ac = {.enabled = c->o.adaptive, .start = c->o.batch_size,
                          .min = c->o.min_batch_size, .max = c->o.max_batch_size,
                          .window = c->o.window, .min_points = c->o.min_points,
                          .shrink_above = c->o.shrink_above, .shrink_factor = c->o.shrink_factor,
                          .grow_below = c->o.grow_below, .grow_factor = c->o.grow_factor};
    cl_adaptive_init(&c->ad, &ac);
}

static bgeicl_code start_senders(bgeicl_client *c, bgeicl_error *err)
{
    size_t n = (size_t)c->o.max_concurrency;
    if (!(c->senders = bg_calloc(n, sizeof *c->senders)))
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for %zu senders", n);
    for (size_t i = 0; i < n; i++) {
        cl_sender *w = &c->senders[i];
        w->c = c;
        bgeicl_code rc = cl_http_new(&c->hc, &w->http, err);
        if (rc != BGEICL_OK)
            return rc;
        if (pthread_create(&w->thread, NULL, cl_sender_main, w) != 0) {
            cl_http_free(w->http);
            w->http = NULL;
            return bg_fail(err, BGEICL_ERR_NOMEM, "cannot start sender thread %zu", i);
        }
        c->n_senders++;
    }
    return BGEICL_OK;
}

bgeicl_code bgeicl_client_new(const bgeicl_client_options *o, bgeicl_client **out,
                              bgeicl_error *err)
{
    if (out)
        *out = NULL;
    if (!o || !out)
        return bg_fail(err, BGEICL_ERR_ARG, "bgeicl_client_new: options and out must be given");
    bgeicl_client *c = bg_calloc(1, sizeof *c);
    if (!c)
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for a client");
    c->o = *o;
    bgeicl_code rc = cl_options_check(o, &c->lang, &c->log, err);
    if (rc == BGEICL_OK)
        rc = copy_strings(c, o, err);
    if (rc == BGEICL_OK && (rc = cl_servers_init(&c->servers, c->o.servers, err)) == BGEICL_OK)
        c->servers.log = c->log;
    if (rc == BGEICL_OK)
        rc = start_icl(c, err);
    if (rc == BGEICL_OK) {
        c->hc = (cl_http_cfg){.api_key = c->o.api_key, .connect_timeout_s = c->o.connect_timeout_s,
                              .timeout_s = c->o.timeout_s, .max_connections = (long)c->servers.n};
        start_sync(c);
        rc = start_senders(c, err);
    }
    if (rc == BGEICL_OK)
        rc = cl_servers_start_probe(&c->servers, c->o.health_check_interval_s, &c->hc, err);
    if (rc != BGEICL_OK) {
        bgeicl_client_free(c);
        return rc;
    }
    bg_err_clear(err);
    *out = c;
    return BGEICL_OK;
}

void bgeicl_client_free(bgeicl_client *c)
{
    if (!c)
        return;
    if (c->sync_ready) {
        pthread_mutex_lock(&c->lock);
        atomic_store(&c->stop, 1);
        pthread_cond_broadcast(&c->work);
        pthread_mutex_unlock(&c->lock);
    }
    for (size_t i = 0; i < c->n_senders; i++)
        pthread_join(c->senders[i].thread, NULL);
    for (size_t i = 0; c->senders && i < (size_t)c->o.max_concurrency; i++) {
        cl_http_free(c->senders[i].http);
        cl_buf_free(&c->senders[i].body);
    }
    bg_free(c->senders);
    cl_servers_free(&c->servers); /* stops the probe thread */
    if (c->sync_ready) {
        for (size_t i = 0; i < c->n_pool; i++)
            cl_http_free(c->pool[i]);
        cl_metrics_destroy(&c->met);
        pthread_mutex_destroy(&c->pool_lock);
        pthread_cond_destroy(&c->work);
        pthread_mutex_destroy(&c->lock);
    }
    cl_icl_free(&c->icl);
    for (int i = 0; i < 5; i++)
        bg_free(c->str[i]);
    bg_free(c);
}

/* ---- state -------------------------------------------------------------------------------------- */

void bgeicl_client_metrics_get(bgeicl_client *c, bgeicl_client_metrics *out)
{
    if (!c || !out)
        return;
    cl_metrics_get(&c->met, out);
    out->cache_hit_rate = cl_icl_hit_rate(&c->icl);
    pthread_mutex_lock(&c->lock);
    out->current_batch_size = cl_adaptive_size(&c->ad);
    pthread_mutex_unlock(&c->lock);
    out->adaptive_batching_enabled = c->o.adaptive != 0;
}

size_t bgeicl_client_server_count(const bgeicl_client *c) { return c ? c->servers.n : 0; }

void bgeicl_client_server_get(bgeicl_client *c, size_t i, bgeicl_server_state *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (c && i < c->servers.n)
        cl_servers_state(&c->servers, i, out);
}

bgeicl_code bgeicl_client_check_health(bgeicl_client *c, bgeicl_error *err)
{
    if (!c)
        return bg_fail(err, BGEICL_ERR_ARG, "bgeicl_client_check_health: client is NULL");
    cl_http *h = cl_pool_get(c, err);
    if (!h)
        return BGEICL_ERR_NOMEM;
    cl_abort ab = {.a = &c->stop};
    int any = 0;
    char list[400] = "";
    size_t at = 0;
    for (size_t i = 0; i < c->servers.n; i++) {
        int ok = cl_servers_probe(&c->servers, i, h, &ab);
        any |= ok;
        bgeicl_server_state st;
        cl_servers_state(&c->servers, i, &st);
        if (!ok && at < sizeof list)
            at += (size_t)snprintf(list + at, sizeof list - at, "%s%s (%s)", at ? ", " : "",
                                   st.url, st.status);
    }
    cl_pool_put(c, h);
    if (!any)
        return bg_fail(err, BGEICL_ERR_CONNECT, "no server is healthy: %s", list);
    bg_err_clear(err);
    return BGEICL_OK;
}

/* One GET with retries on connection errors and timeouts. */
static void get_with_retries(bgeicl_client *c, cl_http *h, const char *url, cl_http_reply *r)
{
    cl_abort ab = {.a = &c->stop};
    double delay = c->o.retry_delay_s;
    for (int retry = 0;; retry++) {
        cl_http_get(h, url, 0, &ab, r);
        if (r->net == CL_NET_OK || r->net == CL_NET_ABORTED || r->net == CL_NET_NOMEM ||
            retry == c->o.max_retries)
            return;
        cl_log(c->log, CL_LOG_WARN, "retry", " url=%s attempt=%d error=\"%s\"", url, retry + 1,
               r->error);
        cl_sleep(delay, &ab);
        delay *= c->o.retry_backoff;
    }
}

static bgeicl_code get_result(const char *url, const cl_http_reply *r, long *status, char **body,
                              size_t *len, bgeicl_error *err)
{
    if (r->net != CL_NET_OK)
        return bg_fail(err,
                       r->net == CL_NET_TIMEOUT ? BGEICL_ERR_TIMEOUT
                       : r->net == CL_NET_NOMEM ? BGEICL_ERR_NOMEM
                                                : BGEICL_ERR_CONNECT,
                       "%s: %s", url, r->error);
    if (!(*body = bg_malloc(r->len + 1)))
        return bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory for a reply of %zu bytes", url,
                       r->len);
    memcpy(*body, r->body, r->len);
    (*body)[r->len] = '\0';
    *status = r->status;
    if (len)
        *len = r->len;
    if (r->status == 401) {
        char m[256];
        cl_wire_error_message(r->body, r->len, m, sizeof m);
        return bg_fail(err, BGEICL_ERR_AUTH,
                       "%s rejected the API key (401: %s); set it with --api-key or "
                       "BGE_ICL_API_KEY",
                       url, m);
    }
    bg_err_clear(err);
    return BGEICL_OK;
}

bgeicl_code bgeicl_client_get(bgeicl_client *c, size_t i, const char *path, long *status,
                              char **body, size_t *len, bgeicl_error *err)
{
    if (body)
        *body = NULL;
    if (len)
        *len = 0;
    if (status)
        *status = 0;
    if (!c || !path || path[0] != '/' || !status || !body || i >= c->servers.n)
        return bg_fail(err, BGEICL_ERR_ARG,
                       "bgeicl_client_get: needs a client, a server index below %zu, a path "
                       "starting with '/', status and body",
                       c ? c->servers.n : 0);
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return bg_fail(err, BGEICL_ERR_ARG,
                           "bgeicl_client_get: the path contains a space or control character");
    size_t n = strlen(c->servers.s[i].url) + strlen(path) + 1;
    char *url = bg_malloc(n);
    cl_http *h = url ? cl_pool_get(c, err) : NULL;
    if (!h) {
        bg_free(url);
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for a GET %.100s", path);
    }
    snprintf(url, n, "%s%s", c->servers.s[i].url, path);
    cl_http_reply r;
    get_with_retries(c, h, url, &r);
    bgeicl_code rc = get_result(url, &r, status, body, len, err);
    cl_pool_put(c, h);
    bg_free(url);
    return rc;
}

void bgeicl_free(void *p) { bg_free(p); }
