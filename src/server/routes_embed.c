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
#include "plan.h"
#include "srv_internal.h"

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

/* The metrics label for a request's language: a known name or "generic",
 * so that clients cannot grow the label set without bound. */
static const char *language_label(const char *l)
{
    int lang = l ? icl_lang_parse(l) : -1;
    return icl_lang_name(lang < 0 ? ICL_LANG_GENERIC : (icl_lang)lang);
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
    met_buf_printf(b, "],\"usage\":{\"prompt_tokens\":%zu,\"total_tokens\":%zu}", p->tokens,
                   p->tokens);
    if (p->icl_applied) {
        met_buf_printf(b, ",\"icl_info\":{\"language\":\"%s\",\"examples\":%zu,\"instruction\":",
                       icl_lang_name(p->lang), p->examples);
        srv_json_str(b, p->instruction ? p->instruction : "");
        met_buf_printf(b, ",\"context_cache_hit\":%s}", p->context_hit ? "true" : "false");
    }
    met_buf_puts(b, "}");
}

/* The prompt of the request's inputs, in the contract's order: an enabled
 * icl_context wins for every input; else a query gets server-side ICL
 * (enable_icl, defaulting to --icl) or the plain query instruction; else a
 * document goes as it is. The example arrays are bg_malloc'd into *pp. */
static int prompt_of(srv_exchange *x, const req_embeddings *r, plan_prompt *pp)
{
    memset(pp, 0, sizeof *pp);
    pp->lang = -1;
    const char *lang = r->language ? r->language : r->icl.language;
    if (lang && strcasecmp(lang, "auto") != 0) {
        pp->lang = icl_lang_parse(lang);
        if (pp->lang < 0 && r->language) {
            srv_fail(x->res, 400, NULL, "language", "invalid_value",
                     "unknown language '%.40s'; use \"auto\" or a name such as \"python\"", lang);
            return -1;
        }
    }
    if (r->icl.present && r->icl.enable_context_learning) {
        size_t n = r->icl.n_examples;
        pp->mode = ICL_EXPLICIT;
        pp->instruction = r->icl.instruction;
        pp->n_examples = n;
        pp->ex_query = bg_malloc((n ? n : 1) * sizeof *pp->ex_query);
        pp->ex_response = bg_malloc((n ? n : 1) * sizeof *pp->ex_response);
        if (!pp->ex_query || !pp->ex_response) {
            srv_fail(x->res, 500, NULL, NULL, "out_of_memory", "out of memory");
            return -1;
        }
        /* A bare string is a code snippet (ChunkHound sends those): a
         * response without a query. */
        for (size_t i = 0; i < n; i++) {
            const req_icl_example *e = &r->icl.examples[i];
            pp->ex_query[i] = e->text ? "" : e->query;
            pp->ex_response[i] = e->text ? e->text : e->response ? e->response : "";
        }
    } else if (r->input_type == REQ_INPUT_QUERY) {
        int on = r->enable_icl >= 0 ? r->enable_icl : x->s->cfg->icl;
        pp->mode = on ? ICL_SERVER : ICL_PLAIN_QUERY;
    }
    return 0;
}

void route_embeddings(srv_exchange *x)
{
    srv *s = x->s;
    req_embeddings r;
    req_error e;
    req_limits lim = limits_of(s);
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
    plan_prompt pp;
    if (prompt_of(x, &r, &pp) == 0 &&
        plan_inputs(x, &r.input, &pp, r.truncate ? 0 : BGEICL_NO_TRUNCATE, &p) == 0 &&
        plan_run(x, &p) == 0) {
        if (p.icl_applied)
            x->language = icl_lang_name(p.lang);
        render_openai(x, &r, &p);
        total_time_header(x);
    }
    bg_free(pp.ex_query);
    bg_free(pp.ex_response);
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
    if (req_parse_embed(x->body, x->body_len, &lim, &r, &e) != 0) {
        srv_error(x->res, &e);
        return;
    }
    embed_plan p;
    plan_prompt pp = {.mode = r.prompt_query ? ICL_PLAIN_QUERY : ICL_NONE, .lang = -1};
    if (plan_inputs(x, &r.inputs, &pp, r.truncate ? 0 : BGEICL_NO_TRUNCATE, &p) == 0 &&
        plan_run(x, &p) == 0) {
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
            plan_fail_input(x, &err, i);
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
