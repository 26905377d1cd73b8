/*
 * plan.c - prompts, tokens, cache and scheduling of one embedding request
 * (see plan.h).
 *
 * The embedding cache is keyed by the token ids the model would see (with
 * the model id and dtype): the ids already capture the prompt, the
 * instruction, the examples and the truncation, so two requests share an
 * entry exactly when the forward pass would be the same. Tokenizing costs
 * well under 1% of a forward pass, so keying after it is cheap.
 */
#include <string.h>

#include "../util/util.h"
#include "log.h"
#include "plan.h"

void plan_free(embed_plan *p)
{
    if (p->tok)
        for (size_t i = 0; i < p->n; i++)
            bgeicl_tokens_free(&p->tok[i]);
    bg_free(p->tok);
    bg_free(p->ids);
    bg_free(p->lens);
    bg_free(p->vec);
    memset(p, 0, sizeof *p);
}

static int fail_nomem(srv_exchange *x)
{
    srv_fail(x->res, 500, NULL, NULL, "out_of_memory", "out of memory");
    return -1;
}

/* Maps a library error on input i to its HTTP answer. */
int plan_fail_input(srv_exchange *x, const bgeicl_error *e, size_t i)
{
    if (e->code == BGEICL_ERR_TOO_LONG)
        srv_fail(x->res, 413, NULL, "input", "input_too_long",
                 "input %zu: %s (set truncate to true to cut it)", i, e->message);
    else if (e->code == BGEICL_ERR_NOMEM)
        return fail_nomem(x);
    else
        srv_fail(x->res, 400, NULL, "input", "invalid_value", "input %zu: %s", i, e->message);
    return -1;
}

/* ---- inputs ----------------------------------------------------------------------- */

/* Token-id inputs: ids must be in the vocabulary; long ones are cut unless
 * truncation is off. */
static int plan_ids(srv_exchange *x, const req_inputs *in, int truncate, embed_plan *p)
{
    size_t vocab = x->s->info.vocab_size, max = x->s->info.max_tokens;
    for (size_t i = 0; i < in->count; i++) {
        const req_input *it = &in->items[i];
        if (it->n_ids > max && !truncate) {
            srv_fail(x->res, 413, NULL, "input", "input_too_long",
                     "input %zu has %zu tokens; the model's maximum is %zu (set truncate to true "
                     "to cut it)",
                     i, it->n_ids, max);
            return -1;
        }
        for (size_t j = 0; j < it->n_ids; j++)
            if ((size_t)it->ids[j] >= vocab) {
                srv_fail(x->res, 400, NULL, "input", "invalid_value",
                         "input %zu: token id %d is outside the vocabulary [0, %zu)", i,
                         (int)it->ids[j], vocab);
                return -1;
            }
        p->ids[i] = it->ids;
        p->lens[i] = it->n_ids > max ? max : it->n_ids;
        p->tokens += p->lens[i];
    }
    return 0;
}

/* Keeps what the response and the metrics report about ICL. */
static void note_icl(srv_exchange *x, embed_plan *p, icl_mode mode, const icl_output *o,
                     size_t i)
{
    if (!o->applied)
        return;
    p->icl_ms += o->prep_ms;
    srv_metrics *m = &x->s->met;
    if (mode == ICL_SERVER)
        met_add(o->cache_hit ? m->ctx_hits : m->ctx_misses, 1);
    met_series *prep = met_get(m->context_prep, icl_lang_name(o->lang), NULL);
    if (prep)
        met_observe(prep, o->prep_ms / 1000.0);
    if (i == 0) {
        p->icl_applied = 1;
        p->lang = o->lang;
        p->examples = o->examples;
        p->instruction = o->instruction;
        p->context_hit = o->cache_hit;
    }
}

static int plan_texts(srv_exchange *x, const req_inputs *in, const plan_prompt *pp,
                      unsigned flags, embed_plan *p)
{
    srv *s = x->s;
    p->tok = bg_calloc(p->n, sizeof *p->tok);
    if (!p->tok)
        return fail_nomem(x);
    for (size_t i = 0; i < in->count; i++) {
        icl_input ii = {.mode = pp ? pp->mode : ICL_NONE,
                        .text = in->items[i].text,
                        .len = in->items[i].len,
                        .lang = pp ? pp->lang : -1};
        if (pp && pp->mode == ICL_EXPLICIT) {
            ii.instruction = pp->instruction;
            ii.ex_query = pp->ex_query;
            ii.ex_response = pp->ex_response;
            ii.n_examples = pp->n_examples;
        }
        icl_output o;
        bgeicl_error e;
        if (icl_prepare(s->icl, s->model, &ii, &o, &e) != BGEICL_OK)
            return fail_nomem(x);
        note_icl(x, p, ii.mode, &o, i);
        bgeicl_code rc = bgeicl_tokenize(s->model, o.text, o.len, flags | o.flags, &p->tok[i], &e);
        icl_output_free(&o);
        if (rc != BGEICL_OK)
            return plan_fail_input(x, &e, i);
        p->ids[i] = p->tok[i].ids;
        p->lens[i] = p->tok[i].n;
        p->tokens += p->tok[i].n;
    }
    return 0;
}

int plan_inputs(srv_exchange *x, const req_inputs *in, const plan_prompt *pp, unsigned flags,
                embed_plan *p)
{
    memset(p, 0, sizeof *p);
    p->n = in->count;
    p->ids = bg_calloc(p->n, sizeof *p->ids);
    p->lens = bg_calloc(p->n, sizeof *p->lens);
    if (!p->ids || !p->lens)
        return fail_nomem(x);
    double t0 = bg_now_ms();
    int rc = in->is_tokens ? plan_ids(x, in, !(flags & BGEICL_NO_TRUNCATE), p)
                           : plan_texts(x, in, pp, flags, p);
    p->tokenize_ms = bg_now_ms() - t0 - p->icl_ms;
    x->n_inputs = p->n;
    x->n_tokens = p->tokens;
    return rc;
}

/* ---- cache and scheduler ---------------------------------------------------------------- */

static void cache_key(const srv *s, const int32_t *ids, size_t n, uint8_t key[32])
{
    const char *parts[3] = {s->info.id, s->info.dtype, (const char *)ids};
    size_t lens[3] = {strlen(s->info.id), strlen(s->info.dtype), n * sizeof *ids};
    emb_cache_key(parts, lens, 3, key);
}

/* The sequences the cache did not answer, gathered for one job. */
typedef struct misses {
    size_t n;
    size_t *idx;          /* input index of each miss */
    const int32_t **ids;
    size_t *lens;
    uint8_t (*keys)[32];
    float *vec;           /* n x dim */
} misses;

static void misses_free(misses *m)
{
    bg_free(m->idx);
    bg_free(m->ids);
    bg_free(m->lens);
    bg_free(m->keys);
    bg_free(m->vec);
}

/* Looks every sequence up; fills the hits' rows, lists the misses. */
static int lookup(srv *s, embed_plan *p, misses *m)
{
    size_t n = p->n, dim = s->info.dim;
    m->idx = bg_malloc(n * sizeof *m->idx);
    m->ids = bg_malloc(n * sizeof *m->ids);
    m->lens = bg_malloc(n * sizeof *m->lens);
    m->keys = bg_malloc(n * sizeof *m->keys);
    if (!m->idx || !m->ids || !m->lens || !m->keys)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s->cache) {
            cache_key(s, p->ids[i], p->lens[i], m->keys[m->n]);
            if (emb_cache_get(s->cache, m->keys[m->n], p->vec + i * dim)) {
                p->cache_hits++;
                continue;
            }
        }
        m->idx[m->n] = i;
        m->ids[m->n] = p->ids[i];
        m->lens[m->n] = p->lens[i];
        m->n++;
    }
    m->vec = m->n ? bg_malloc(m->n * dim * sizeof *m->vec) : NULL;
    return m->n && !m->vec ? -1 : 0;
}

static int submit_and_wait(srv_exchange *x, embed_plan *p, misses *m)
{
    srv *s = x->s;
    p->job = (sched_job){.ids = m->ids, .lens = m->lens, .n = m->n, .out = m->vec};
    int rc = sched_submit(s->sched, &p->job);
    if (rc == SCHED_FULL) {
        srv_fail(x->res, 429, "rate_limit_error", NULL, "queue_full",
                 "the server has %zu requests in progress, its limit; retry shortly",
                 s->cfg->max_concurrent);
        return -1;
    }
    if (rc == SCHED_CLOSED) {
        srv_fail(x->res, 503, "server_error", NULL, "draining", "the server is shutting down");
        return -1;
    }
    if (rc != SCHED_OK)
        return fail_nomem(x);
    sched_wait(s->sched, &p->job);
    if (p->job.rc != BGEICL_OK) {
        log_event(LOG_ERROR, "inference failed", (log_field[]){LOG_S("error", p->job.err.message)},
                  1);
        srv_fail(x->res, 500, NULL, NULL, "inference_failed", "%s", p->job.err.message);
        return -1;
    }
    size_t dim = s->info.dim;
    for (size_t k = 0; k < m->n; k++) {
        memcpy(p->vec + m->idx[k] * dim, m->vec + k * dim, dim * sizeof(float));
        if (s->cache)
            emb_cache_put(s->cache, m->keys[k], m->vec + k * dim);
    }
    return 0;
}

int plan_run(srv_exchange *x, embed_plan *p)
{
    srv *s = x->s;
    p->vec = bg_malloc(p->n * s->info.dim * sizeof *p->vec);
    misses m = {0};
    if (!p->vec || lookup(s, p, &m) != 0) {
        misses_free(&m);
        return fail_nomem(x);
    }
    if (s->cache) {
        met_add(s->met.emb_hits, (double)p->cache_hits);
        met_add(s->met.emb_misses, (double)m.n);
    }
    int rc = m.n ? submit_and_wait(x, p, &m) : 0;
    misses_free(&m);
    if (rc != 0)
        return rc;
    met_observe(s->met.queue_wait, p->job.queue_ms / 1000.0);
    met_observe(s->met.tokenization, p->tokenize_ms / 1000.0);
    srv_header(x->res, "x-queue-time", "%.3f", p->job.queue_ms);
    srv_header(x->res, "x-tokenization-time", "%.3f", p->tokenize_ms);
    srv_header(x->res, "x-inference-time", "%.3f", p->job.inference_ms);
    if (p->icl_ms > 0)
        srv_header(x->res, "x-icl-time", "%.3f", p->icl_ms);
    if (s->cache)
        srv_header(x->res, "x-cache-hits", "%zu", p->cache_hits);
    return 0;
}
