/*
 * embed.c - bgeicl_client_embed: a call's inputs cut into batches, sent by
 * the sender threads with retries and failover, and their vectors written
 * into the call's rows by input index (see client.h for the structure).
 *
 * A batch's life: formed under the client's lock from the head call (the
 * controller's size, never crossing an ICL group); its body built once;
 * then attempts. Each attempt picks a server (the ones the batch already
 * tried are avoided), posts, and classifies the outcome:
 *   200 with a valid reply   rows written, controller and metrics updated
 *   connection error, 503    retry; the server is marked unhealthy
 *   timeout, 429, 500, 502,
 *   504, malformed reply     retry
 *   401                      the call fails: BGEICL_ERR_AUTH
 *   other 4xx, a dimension
 *   unlike earlier replies   the call fails: BGEICL_ERR_HTTP (413 for a
 *                            too-long input: BGEICL_ERR_TOO_LONG)
 * A retry goes at once to a healthy server the batch has not tried; when
 * none is left it first waits retry_delay_s x backoff^attempt, or the
 * Retry-After of the answer when longer. After max_retries retries the
 * call fails with the last attempt's error. A failing call stops forming
 * batches and raises its flag, which aborts its transfers in flight.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../util/util.h"
#include "client.h"
#include "log.h"

/* ---- the queue (under c->lock) ----------------------------------------------------------- */

static void dequeue(bgeicl_client *c, cl_call *k)
{
    cl_call **p = &c->head, *prev = NULL;
    while (*p && *p != k)
        prev = *p, p = &(*p)->next;
    if (!*p)
        return;
    *p = k->next;
    if (c->tail == k)
        c->tail = prev;
    k->next = NULL;
    k->queued = 0;
}

static int next_batch(bgeicl_client *c, cl_batch *b)
{
    cl_call *k = c->head;
    if (!k)
        return 0;
    const cl_group *g = &k->plan.groups[k->g];
    size_t end = g->start + g->count, size = (size_t)cl_adaptive_size(&c->ad);
    *b = (cl_batch){.call = k, .group = g, .idx = k->plan.order + k->pos,
                    .n = end - k->pos < size ? end - k->pos : size};
    k->pos += b->n;
    k->inflight++;
    if (k->pos == end && ++k->g == k->plan.n_groups)
        dequeue(c, k);
    return 1;
}

/* Records the call's first failure; it forms no more batches. */
static void call_fail(bgeicl_client *c, cl_call *k, bgeicl_code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void call_fail(bgeicl_client *c, cl_call *k, bgeicl_code code, const char *fmt, ...)
{
    pthread_mutex_lock(&c->lock);
    if (!atomic_load(&k->failed)) {
        va_list ap;
        va_start(ap, fmt);
        k->err.code = code;
        vsnprintf(k->err.message, sizeof k->err.message, fmt, ap);
        va_end(ap);
        atomic_store(&k->failed, 1);
        dequeue(c, k);
    }
    pthread_mutex_unlock(&c->lock);
}

/* ---- one attempt -------------------------------------------------------------------------- */

typedef enum { ATT_OK, ATT_RETRY, ATT_FATAL, ATT_ABORTED } att_kind;

typedef struct att {
    att_kind kind;
    bgeicl_code code;    /* for the call's error, if this is the last word */
    int down;            /* mark the server unhealthy */
    cl_status status;
    double retry_after_s;
    char msg[400];
} att;

/* Writes a reply's rows into the call. */
static int store_rows(bgeicl_client *c, const cl_batch *b, const float *v, size_t dim, att *a,
                      const char *url)
{
    cl_call *k = b->call;
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    if (!k->out && !(k->out = bg_malloc(k->n * dim * sizeof *k->out))) {
        snprintf(a->msg, sizeof a->msg, "out of memory for %zu vectors of %zu floats", k->n, dim);
        a->code = BGEICL_ERR_NOMEM;
        rc = -1;
    } else if (k->dim && k->dim != dim) {
        snprintf(a->msg, sizeof a->msg,
                 "%s sent vectors of %zu dimensions where earlier replies had %zu (do the servers "
                 "serve different models?)",
                 url, dim, k->dim);
        a->code = BGEICL_ERR_HTTP;
        rc = -1;
    } else {
        k->dim = dim;
        for (size_t j = 0; j < b->n; j++)
            memcpy(k->out + b->idx[j] * dim, v + j * dim, dim * sizeof *v);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static void on_success(cl_sender *w, const cl_batch *b, size_t si, double ms)
{
    bgeicl_client *c = w->c;
    pthread_mutex_lock(&c->lock);
    int before = cl_adaptive_size(&c->ad);
    int after = cl_adaptive_record(&c->ad, ms / 1000.0, (int)b->n);
    pthread_mutex_unlock(&c->lock);
    cl_metrics_batch(&c->met, (int)b->n, ms / 1000.0);
    cl_servers_note(&c->servers, si, 1, 0, CL_ST_HEALTHY, ms);
    cl_log(c->log, CL_LOG_DEBUG, "batch", " server=%s size=%zu ms=%.1f ms_per_text=%.3f",
           c->servers.s[si].url, b->n, ms, ms / (double)b->n);
    if (after != before)
        cl_log(c->log, CL_LOG_DEBUG, "batch_size", " from=%d to=%d ms_per_text=%.3f", before,
               after, ms / (double)b->n);
}

/* The outcome of a 200 reply. */
static void parse_ok(cl_sender *w, const cl_batch *b, const cl_http_reply *r, const char *url,
                     att *a)
{
    bgeicl_client *c = w->c;
    pthread_mutex_lock(&c->lock);
    size_t dim = b->call->dim;
    pthread_mutex_unlock(&c->lock);
    float *v = NULL;
    char why[256];
    int pr = cl_wire_parse(r->body, r->len, b->n, &dim, &v, why, sizeof why);
    if (pr == CL_WIRE_OK && store_rows(c, b, v, dim, a, url) == 0)
        a->kind = ATT_OK;
    else if (pr == CL_WIRE_OK)
        a->kind = ATT_FATAL;
    else if (pr == CL_WIRE_BAD) {
        a->kind = ATT_RETRY;
        a->code = BGEICL_ERR_HTTP;
        a->status = CL_ST_ERROR;
        snprintf(a->msg, sizeof a->msg, "%s sent a malformed reply: %s", url, why);
    } else {
        a->kind = ATT_FATAL;
        a->code = pr == CL_WIRE_NOMEM ? BGEICL_ERR_NOMEM : BGEICL_ERR_HTTP;
        snprintf(a->msg, sizeof a->msg, "%s: %s", url, why);
    }
    bg_free(v);
}

static int retried_status(long s) { return s == 429 || s == 500 || s == 502 || s == 503 || s == 504; }

/* The outcome of an HTTP answer other than 200. */
static void classify_status(const cl_http_reply *r, const char *url, att *a)
{
    char m[256];
    cl_wire_error_message(r->body, r->len, m, sizeof m);
    a->retry_after_s = r->retry_after_s;
    a->code = BGEICL_ERR_HTTP;
    a->kind = retried_status(r->status) ? ATT_RETRY : ATT_FATAL;
    a->down = r->status == 503;
    a->status = r->status == 429                          ? CL_ST_OVERLOADED
                : r->status == 503 && strstr(m, "loading") ? CL_ST_LOADING
                : r->status == 503                         ? CL_ST_DRAINING
                                                           : CL_ST_ERROR;
    if (r->status == 401) {
        a->code = BGEICL_ERR_AUTH;
        snprintf(a->msg, sizeof a->msg,
                 "%s rejected the API key (401: %s); set it with --api-key or BGE_ICL_API_KEY",
                 url, m);
        return;
    }
    if (r->status == 413 && strstr(r->body, "input_too_long"))
        a->code = BGEICL_ERR_TOO_LONG;
    snprintf(a->msg, sizeof a->msg, "%s answered %ld: %s", url, r->status, m);
}

static void attempt(cl_sender *w, const cl_batch *b, size_t si, const cl_abort *ab, att *a)
{
    bgeicl_client *c = w->c;
    char url[2100];
    snprintf(url, sizeof url, "%s/v1/embeddings", c->servers.s[si].url);
    memset(a, 0, sizeof *a);
    a->retry_after_s = -1;
    cl_http_reply r;
    cl_http_post_json(w->http, url, w->body.p, w->body.n, ab, &r);
    if (r.net == CL_NET_ABORTED) {
        a->kind = ATT_ABORTED;
        return;
    }
    if (r.net == CL_NET_OK && r.status == 200)
        parse_ok(w, b, &r, c->servers.s[si].url, a);
    else if (r.net == CL_NET_OK)
        classify_status(&r, c->servers.s[si].url, a);
    else {
        a->kind = r.net == CL_NET_NOMEM ? ATT_FATAL : ATT_RETRY;
        a->code = r.net == CL_NET_NOMEM    ? BGEICL_ERR_NOMEM
                  : r.net == CL_NET_TIMEOUT ? BGEICL_ERR_TIMEOUT
                                           : BGEICL_ERR_CONNECT;
        a->down = r.net == CL_NET_CONNECT;
        a->status = r.net == CL_NET_TIMEOUT ? CL_ST_TIMEOUT : CL_ST_UNREACHABLE;
        snprintf(a->msg, sizeof a->msg, "%s: %s", c->servers.s[si].url, r.error);
    }
    cl_servers_count(&c->servers, si, a->kind != ATT_OK);
    if (a->kind == ATT_OK)
        on_success(w, b, si, r.ms);
    else if (a->kind == ATT_RETRY)
        cl_servers_note(&c->servers, si, 0, a->down, a->status, -1);
}

/* ---- one batch ------------------------------------------------------------------------------ */

void cl_sleep(double s, const cl_abort *ab)
{
    double end = bg_now_ms() + s * 1000;
    for (double left; (left = end - bg_now_ms()) > 0;) {
        if ((ab->a && atomic_load(ab->a)) || (ab->b && atomic_load(ab->b)))
            return;
        double ms = left < 20 ? left : 20;
        nanosleep(&(struct timespec){0, (long)(ms * 1e6)}, NULL);
    }
}

static cl_context context_of(const cl_batch *b)
{
    const cl_call *k = b->call;
    cl_context x = {.kind = k->kind, .language = k->language, .no_truncate = k->no_truncate};
    if (k->kind == CL_KIND_QUERY_CONTEXT) {
        const cl_group *g = b->group;
        x.language = icl_lang_name(g->lang);
        x.instruction = g->instruction;
        x.ex_query = g->ex_query;
        x.ex_response = g->ex_response;
        x.n_examples = g->n_examples;
    }
    return x;
}

/* The wait before the next attempt; 0 for a failover to a healthy server. */
static double backoff(bgeicl_client *c, const unsigned char *tried, int retry, const att *a)
{
    if (cl_servers_untried_healthy(&c->servers, tried))
        return 0;
    double d = c->o.retry_delay_s;
    for (int i = 1; i < retry; i++)
        d *= c->o.retry_backoff;
    return a->retry_after_s > d ? a->retry_after_s : d;
}

static void run_batch(cl_sender *w, const cl_batch *b)
{
    bgeicl_client *c = w->c;
    cl_call *k = b->call;
    cl_context ctx = context_of(b);
    cl_wire_body(&w->body, c->o.model, &ctx, k->texts, k->lens, b->idx, b->n);
    if (w->body.oom) {
        w->body.oom = 0;
        call_fail(c, k, BGEICL_ERR_NOMEM, "out of memory building a request of %zu inputs", b->n);
        return;
    }
    unsigned char tried[CL_MAX_SERVERS] = {0};
    cl_abort ab = {.a = &k->failed, .b = &c->stop};
    size_t prev = 0;
    att a;
    for (int retry = 0;; retry++) {
        size_t si = cl_servers_pick(&c->servers, retry ? tried : NULL);
        if (retry)
            cl_metrics_retry(&c->met, si != prev);
        if (retry && si != prev)
            cl_log(c->log, CL_LOG_INFO, "failover", " from=%s to=%s inputs=%zu",
                   c->servers.s[prev].url, c->servers.s[si].url, b->n);
        attempt(w, b, si, &ab, &a);
        if (a.kind == ATT_OK || a.kind == ATT_ABORTED)
            return;
        cl_metrics_error(&c->met);
        if (a.kind == ATT_FATAL || retry == c->o.max_retries)
            break;
        tried[si] = 1;
        prev = si;
        double wait = backoff(c, tried, retry + 1, &a);
        cl_log(c->log, CL_LOG_WARN, "retry", " attempt=%d wait_s=%.2f error=\"%s\"", retry + 1,
               wait, a.msg);
        cl_sleep(wait, &ab);
        if (atomic_load(&k->failed) || atomic_load(&c->stop))
            return;
    }
    if (a.kind == ATT_RETRY)
        call_fail(c, k, a.code, "gave up after %d attempts: %s", c->o.max_retries + 1, a.msg);
    else
        call_fail(c, k, a.code, "%s", a.msg);
}

void *cl_sender_main(void *arg)
{
    cl_sender *w = arg;
    bgeicl_client *c = w->c;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        cl_batch b;
        while (!atomic_load(&c->stop) && !next_batch(c, &b))
            pthread_cond_wait(&c->work, &c->lock);
        if (atomic_load(&c->stop))
            break;
        pthread_mutex_unlock(&c->lock);
        run_batch(w, &b);
        pthread_mutex_lock(&c->lock);
        if (--b.call->inflight == 0 && !b.call->queued)
            pthread_cond_broadcast(&b.call->done);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---- the call --------------------------------------------------------------------------------- */

static bgeicl_code check_inputs(const char *const *texts, const size_t *lens, size_t n,
                                size_t *out, bgeicl_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!texts[i])
            return bg_fail(err, BGEICL_ERR_ARG, "input %zu is NULL", i);
        out[i] = lens ? lens[i] : strlen(texts[i]);
        if (!out[i])
            return bg_fail(err, BGEICL_ERR_ARG, "input %zu is empty", i);
        if (!bg_utf8_valid(texts[i], out[i]))
            return bg_fail(err, BGEICL_ERR_ARG, "input %zu is not valid UTF-8", i);
    }
    return BGEICL_OK;
}

static bgeicl_code call_lang(const bgeicl_client *c, const char *language, int *lang,
                             bgeicl_error *err)
{
    *lang = c->lang;
    if (!language)
        return BGEICL_OK;
    *lang = strcmp(language, "auto") ? icl_lang_parse(language) : -1;
    if (*lang < 0 && strcmp(language, "auto"))
        return bg_fail(err, BGEICL_ERR_ARG,
                       "language '%.60s' is unknown; use auto or a name such as python", language);
    return BGEICL_OK;
}

/* How the call's inputs go, and their grouping. */
static bgeicl_code plan_call(bgeicl_client *c, cl_call *k, unsigned flags, int lang,
                             bgeicl_error *err)
{
    k->kind = !(flags & BGEICL_QUERY) ? CL_KIND_DOCUMENT
              : !c->o.enable_icl      ? CL_KIND_QUERY_PLAIN
              : c->icl.bank           ? CL_KIND_QUERY_CONTEXT
                                      : CL_KIND_QUERY_SERVER;
    k->language = lang >= 0 ? icl_lang_name((icl_lang)lang) : "auto";
    k->no_truncate = (flags & BGEICL_NO_TRUNCATE) != 0;
    if (k->kind == CL_KIND_QUERY_CONTEXT)
        return cl_icl_plan(&c->icl, k->texts, k->lens, k->n, lang, &k->plan, err);
    return cl_plan_single(k->n, &k->plan, err);
}

/* Queues the call and waits until every batch of it is done or it failed. */
static void run_call(bgeicl_client *c, cl_call *k)
{
    pthread_mutex_lock(&c->lock);
    k->queued = 1;
    if (c->tail)
        c->tail->next = k;
    else
        c->head = k;
    c->tail = k;
    pthread_cond_broadcast(&c->work);
    while (k->queued || k->inflight)
        pthread_cond_wait(&k->done, &c->lock);
    pthread_mutex_unlock(&c->lock);
}

static void call_free(cl_call *k)
{
    bg_free(k->lens);
    bg_free(k->out);
    cl_plan_free(&k->plan);
    pthread_cond_destroy(&k->done);
    bg_free(k);
}

bgeicl_code bgeicl_client_embed(bgeicl_client *c, const char *const *texts, const size_t *lens,
                                size_t n, unsigned flags, const char *language,
                                bgeicl_vectors *out, bgeicl_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!c || !texts || !out || n == 0)
        return bg_fail(err, BGEICL_ERR_ARG, "bgeicl_client_embed: client, texts and out must be "
                                            "given, and n at least 1");
    if (flags & ~(unsigned)(BGEICL_QUERY | BGEICL_NO_TRUNCATE))
        return bg_fail(err, BGEICL_ERR_ARG,
                       "bgeicl_client_embed: only BGEICL_QUERY and BGEICL_NO_TRUNCATE apply");
    int lang;
    bgeicl_code rc = call_lang(c, language, &lang, err);
    if (rc != BGEICL_OK)
        return rc;
    double t0 = bg_now_ms();
    cl_call *k = bg_calloc(1, sizeof *k);
    if (!k)
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for a call of %zu inputs", n);
    pthread_cond_init(&k->done, NULL);
    k->texts = texts;
    k->n = n;
    if (!(k->lens = bg_malloc(n * sizeof *k->lens)))
        rc = bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for a call of %zu inputs", n);
    if (rc == BGEICL_OK)
        rc = check_inputs(texts, lens, n, k->lens, err);
    if (rc == BGEICL_OK)
        rc = plan_call(c, k, flags, lang, err);
    if (rc == BGEICL_OK) {
        run_call(c, k);
        if (atomic_load(&k->failed)) {
            rc = bg_fail(err, k->err.code, "%s", k->err.message);
        } else {
            *out = (bgeicl_vectors){.data = k->out, .n = n, .dim = k->dim};
            k->out = NULL;
            bg_err_clear(err);
        }
    }
    call_free(k);
    cl_metrics_call(&c->met, (bg_now_ms() - t0) / 1000.0);
    return rc;
}

void bgeicl_vectors_free(bgeicl_vectors *v)
{
    if (!v)
        return;
    bg_free(v->data);
    memset(v, 0, sizeof *v);
}
