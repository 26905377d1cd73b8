/*
 * routes_embed.c - the POST routes: /v1/embeddings (OpenAI), /embed and
 * /tokenize (TEI).
 *
 * An embedding request runs in four steps on its connection's thread:
 * parse and validate (request.c), tokenize every input here (so that
 * tokenization of concurrent requests overlaps inference), queue one job
 * and wait for the scheduler to fill its rows (sched.c), then normalise and
 * render. The scheduler returns pooled vectors unnormalised, so that
 * `dimensions` can cut them first and TEI's normalize=false has them as is.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../util/util.h"
#include "log.h"
#include "srv_internal.h"

/* ---- inputs to sequences -------------------------------------------------- */

typedef struct embed_plan {
    size_t n;
    bgeicl_tokens *tok;  /* n, for text inputs */
    const int32_t **ids; /* n sequences */
    size_t *lens;
    float *vec;          /* n x dim */
    size_t tokens;
    double tokenize_ms;
    sched_job job;
} embed_plan;

static void plan_free(embed_plan *p)
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
static int fail_input(srv_exchange *x, const bgeicl_error *e, size_t i)
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

static int plan_texts(srv_exchange *x, const req_inputs *in, unsigned flags, embed_plan *p)
{
    p->tok = bg_calloc(p->n, sizeof *p->tok);
    if (!p->tok)
        return fail_nomem(x);
    for (size_t i = 0; i < in->count; i++) {
        bgeicl_error e;
        if (bgeicl_tokenize(x->s->model, in->items[i].text, in->items[i].len, flags, &p->tok[i],
                            &e) != BGEICL_OK)
            return fail_input(x, &e, i);
        p->ids[i] = p->tok[i].ids;
        p->lens[i] = p->tok[i].n;
        p->tokens += p->tok[i].n;
    }
    return 0;
}

/* Tokenizes (or checks) every input. flags: BGEICL_QUERY, BGEICL_NO_TRUNCATE. */
static int plan_inputs(srv_exchange *x, const req_inputs *in, unsigned flags, embed_plan *p)
{
    memset(p, 0, sizeof *p);
    p->n = in->count;
    p->ids = bg_calloc(p->n, sizeof *p->ids);
    p->lens = bg_calloc(p->n, sizeof *p->lens);
    if (!p->ids || !p->lens)
        return fail_nomem(x);
    double t0 = bg_now_ms();
    int rc = in->is_tokens ? plan_ids(x, in, !(flags & BGEICL_NO_TRUNCATE), p)
                           : plan_texts(x, in, flags, p);
    p->tokenize_ms = bg_now_ms() - t0;
    x->n_inputs = p->n;
    x->n_tokens = p->tokens;
    return rc;
}

/* Queues the sequences and waits for their rows. */
static int plan_run(srv_exchange *x, embed_plan *p)
{
    srv *s = x->s;
    p->vec = bg_malloc(p->n * s->info.dim * sizeof *p->vec);
    if (!p->vec)
        return fail_nomem(x);
    p->job = (sched_job){.ids = p->ids, .lens = p->lens, .n = p->n, .out = p->vec};
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
    met_observe(s->met.queue_wait, p->job.queue_ms / 1000.0);
    met_observe(s->met.tokenization, p->tokenize_ms / 1000.0);
    srv_header(x->res, "x-queue-time", "%.3f", p->job.queue_ms);
    srv_header(x->res, "x-tokenization-time", "%.3f", p->tokenize_ms);
    srv_header(x->res, "x-inference-time", "%.3f", p->job.inference_ms);
    return 0;
}

/* ---- rendering -------------------------------------------------------------------- */

static void put_floats(met_buf *b, const float *v, size_t n)
{
    char num[24];
    met_buf_append(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        /* 9 significant digits round-trip every float32. */
        int k = snprintf(num, sizeof num, "%s%.9g", i ? "," : "", (double)v[i]);
        met_buf_append(b, num, (size_t)k);
    }
    met_buf_append(b, "]", 1);
}

static void put_base64(met_buf *b, const float *v, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)v; /* x86-64: already little-endian */
    size_t len = n * sizeof(float);
    char out[4];
    met_buf_append(b, "\"", 1);
    for (size_t i = 0; i < len; i += 3) {
        unsigned a = p[i], c1 = i + 1 < len ? p[i + 1] : 0, c2 = i + 2 < len ? p[i + 2] : 0;
        unsigned w = a << 16 | c1 << 8 | c2;
        out[0] = tab[w >> 18 & 63];
        out[1] = tab[w >> 12 & 63];
        out[2] = i + 1 < len ? tab[w >> 6 & 63] : '=';
        out[3] = i + 2 < len ? tab[w & 63] : '=';
        met_buf_append(b, out, 4);
    }
    met_buf_append(b, "\"", 1);
}

static void total_time_header(srv_exchange *x)
{
    srv_header(x->res, "x-total-time", "%.3f", bg_now_ms() - x->t_start);
}

/* ---- shared checks -------------------------------------------------------------------- */

static const char *const languages[] = {"python", "javascript", "typescript", "java", "csharp",
                                        "go",     "rust",       "c",          "cpp",  "ruby",
                                        "php",    "shell",      "sql"};

/* The metrics label for a request's language: a known name or "generic",
 * so that clients cannot grow the label set without bound. */
static const char *language_label(const char *l)
{
    for (size_t i = 0; l && i < sizeof languages / sizeof languages[0]; i++)
        if (!strcasecmp(l, languages[i]))
            return languages[i];
    return "generic";
}

static int model_accepted(const srv *s, const char *name)
{
    static const char *const aliases[] = {"bge-in-icl", "BAAI/bge-in-icl", "BAAI/bge-en-icl"};
    if (!name || !s->cfg->strict_model || !strcmp(name, s->info.id) ||
        (s->info.hf_id[0] && !strcmp(name, s->info.hf_id)))
        return 1;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (!strcmp(name, aliases[i]))
            return 1;
    return 0;
}

static req_limits limits_of(const srv *s)
{
    return (req_limits){.max_inputs = s->cfg->max_client_batch,
                        .max_dimensions = (int)s->info.dim};
}

/* ---- POST /v1/embeddings ----------------------------------------------------------- */

static void render_openai(srv_exchange *x, const req_embeddings *r, embed_plan *p)
{
    srv *s = x->s;
    size_t dim = s->info.dim, out_dim = r->dimensions > 0 ? (size_t)r->dimensions : dim;
    met_buf *b = &x->res->body;
    met_buf_puts(b, "{\"object\":\"list\",\"model\":");
    srv_json_str(b, s->info.id);
    met_buf_puts(b, ",\"data\":[");
    for (size_t i = 0; i < p->n; i++) {
        float *v = p->vec + i * dim;
        bg_l2_normalize(v, out_dim); /* `dimensions` cuts first, then normalises */
        met_buf_printf(b, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "",
                       i);
        if (r->encoding_format == REQ_ENC_BASE64)
            put_base64(b, v, out_dim);
        else
            put_floats(b, v, out_dim);
        met_buf_puts(b, "}");
    }
    met_buf_printf(b, "],\"usage\":{\"prompt_tokens\":%zu,\"total_tokens\":%zu}}", p->tokens,
                   p->tokens);
}

void route_embeddings(srv_exchange *x)
{
    srv *s = x->s;
    req_embeddings r;
    req_error e;
    req_limits lim = limits_of(s);
    x->language = "generic";
    if (req_parse_embeddings(x->body, x->body_len, &lim, &r, &e) != 0) {
        srv_error(x->res, &e);
        return;
    }
    x->language = language_label(r.language ? r.language : r.icl.language);
    embed_plan p;
    memset(&p, 0, sizeof p);
    if (!model_accepted(s, r.model)) {
        srv_fail(x->res, 404, "not_found_error", "model", "model_not_found",
                 "the model '%.100s' is not served here; this server serves '%s'", r.model,
                 s->info.id);
        goto done;
    }
    unsigned flags = (r.input_type == REQ_INPUT_QUERY ? BGEICL_QUERY : 0) |
                     (r.truncate ? 0 : BGEICL_NO_TRUNCATE);
    if (plan_inputs(x, &r.input, flags, &p) == 0 && plan_run(x, &p) == 0) {
        render_openai(x, &r, &p);
        total_time_header(x);
    }
done:
    plan_free(&p);
    req_free_embeddings(&r);
}

/* ---- POST /embed (TEI) ------------------------------------------------------------------ */

void route_embed(srv_exchange *x)
{
    srv *s = x->s;
    req_embed r;
    req_error e;
    req_limits lim = limits_of(s);
    x->language = "generic";
    if (req_parse_embed(x->body, x->body_len, &lim, &r, &e) != 0) {
        srv_error(x->res, &e);
        return;
    }
    embed_plan p;
    unsigned flags = (r.prompt_query ? BGEICL_QUERY : 0) | (r.truncate ? 0 : BGEICL_NO_TRUNCATE);
    if (plan_inputs(x, &r.inputs, flags, &p) == 0 && plan_run(x, &p) == 0) {
        size_t dim = s->info.dim;
        met_buf *b = &x->res->body;
        met_buf_puts(b, "[");
        for (size_t i = 0; i < p.n; i++) {
            if (r.normalize)
                bg_l2_normalize(p.vec + i * dim, dim);
            if (i)
                met_buf_puts(b, ",");
            put_floats(b, p.vec + i * dim, dim);
        }
        met_buf_puts(b, "]");
        total_time_header(x);
    }
    plan_free(&p);
    req_free_embed(&r);
}

/* ---- POST /tokenize (TEI) ------------------------------------------------------------------ */

static void render_tokens(srv_exchange *x, const req_input *in, const bgeicl_tokens *t)
{
    met_buf *b = &x->res->body;
    met_buf_puts(b, "[");
    for (size_t k = 0; k < t->n; k++) {
        int special = t->start[k] == t->end[k];
        met_buf_printf(b, "%s{\"id\":%d,\"text\":", k ? "," : "", (int)t->ids[k]);
        if (special) {
            const char *tt = bgeicl_token_text(x->s->model, t->ids[k]);
            srv_json_str(b, tt ? tt : "");
        } else {
            /* The covered bytes of the input; offsets fall on character
             * boundaries, so the slice is valid UTF-8. */
            size_t n = t->end[k] - t->start[k];
            char *slice = bg_malloc(n + 1);
            if (!slice) {
                b->oom = 1;
                return;
            }
            memcpy(slice, in->text + t->start[k], n);
            slice[n] = '\0';
            srv_json_str(b, slice);
            bg_free(slice);
        }
        met_buf_printf(b, ",\"start\":%u,\"stop\":%u,\"special\":%s}", t->start[k], t->end[k],
                       special ? "true" : "false");
    }
    met_buf_puts(b, "]");
}

void route_tokenize(srv_exchange *x)
{
    srv *s = x->s;
    req_tokenize r;
    req_error e;
    req_limits lim = limits_of(s);
    if (req_parse_tokenize(x->body, x->body_len, &lim, &r, &e) != 0) {
        srv_error(x->res, &e);
        return;
    }
    if (r.inputs.is_tokens) {
        srv_fail(x->res, 400, NULL, "inputs", "invalid_type", "inputs must be text to tokenize");
        req_free_tokenize(&r);
        return;
    }
    bgeicl_tokens t = {0};
    met_buf *b = &x->res->body;
    met_buf_puts(b, "[");
    for (size_t i = 0; i < r.inputs.count; i++) {
        const req_input *in = &r.inputs.items[i];
        bgeicl_error err;
        if (bgeicl_tokenize(s->model, in->text, in->len, r.add_special_tokens ? 0 : BGEICL_NO_SPECIAL,
                            &t, &err) != BGEICL_OK) {
            met_buf_free(b);
            met_buf_init(b);
            fail_input(x, &err, i);
            break;
        }
        if (i)
            met_buf_puts(b, ",");
        render_tokens(x, in, &t);
        x->n_tokens += t.n;
    }
    if (x->res->status == 200)
        met_buf_puts(b, "]");
    x->n_inputs = r.inputs.count;
    bgeicl_tokens_free(&t);
    req_free_tokenize(&r);
}
