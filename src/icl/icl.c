/*
 * icl.c - the prompt an input is embedded with (see icl.h).
 */
#include <string.h>

#include "../util/util.h"
#include "icl.h"
#include "prompt.h"

/* When neither the request nor a bank gives an instruction. */
static const char DEFAULT_INSTRUCTION[] =
    "Given a code search query, retrieve the code snippet that answers it.";

#ifndef BGEICL_DATADIR
#define BGEICL_DATADIR "/usr/local/share/bgeicl"
#endif

const char *icl_default_examples_dir(void)
{
    static const char *const candidates[] = {"icl/examples", BGEICL_DATADIR "/icl-examples"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
        if (bg_dir_exists(candidates[i]))
            return candidates[i];
    return NULL;
}

struct icl_engine {
    icl_bank *bank;
    ctx_cache *cache;
    size_t k;
};

bgeicl_code icl_engine_create(const icl_settings *s, icl_engine **out, bgeicl_error *err)
{
    *out = NULL;
    icl_engine *e = bg_calloc(1, sizeof *e);
    if (!e)
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for the ICL engine");
    e->k = s->k > CTX_MAX_EXAMPLES ? CTX_MAX_EXAMPLES : s->k;
    bgeicl_code rc = ctx_cache_create(s->cache_size, s->threshold, &e->cache, err);
    if (rc == BGEICL_OK && s->examples_dir)
        rc = icl_bank_load(s->examples_dir, &e->bank, err);
    if (rc != BGEICL_OK) {
        icl_engine_free(e);
        return rc;
    }
    *out = e;
    return BGEICL_OK;
}

void icl_engine_free(icl_engine *e)
{
    if (!e)
        return;
    icl_bank_free(e->bank);
    ctx_cache_free(e->cache);
    bg_free(e);
}

const icl_bank *icl_engine_bank(const icl_engine *e) { return e->bank; }

void icl_engine_cache_stats(icl_engine *e, ctx_cache_stats *out)
{
    ctx_cache_stats_get(e->cache, out);
}

void icl_output_free(icl_output *o)
{
    bg_free(o->text);
    o->text = NULL;
}

/* ---- helpers -------------------------------------------------------------------- */

static size_t count_tokens(void *ctx, const char *text, size_t len)
{
    bgeicl_tokens t = {0};
    size_t n = (size_t)-1 / 2; /* an input that cannot be tokenized never fits */
    if (bgeicl_tokenize(ctx, text, len, BGEICL_NO_SPECIAL, &t, NULL) == BGEICL_OK)
        n = t.n;
    bgeicl_tokens_free(&t);
    return n;
}

static bgeicl_code copy_text(const icl_input *in, icl_output *out, bgeicl_error *err)
{
    out->text = bg_malloc(in->len + 1);
    if (!out->text)
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for an input");
    memcpy(out->text, in->text, in->len);
    out->text[in->len] = '\0';
    out->len = in->len;
    return BGEICL_OK;
}

/* The bank's examples for a query: from the context cache when a similar
 * query was seen, else ranked now and remembered. */
static void choose_examples(icl_engine *e, const icl_input *in, icl_lang lang, ctx_value *v,
                            int *hit)
{
    ctx_signature sig;
    ctx_signature_of(in->text, in->len, &sig);
    *hit = ctx_cache_lookup(e->cache, (int)lang, &sig, v, NULL);
    if (*hit)
        return;
    v->n = icl_bank_select(e->bank, lang, in->text, in->len, e->k, v->idx);
    ctx_cache_insert(e->cache, (int)lang, &sig, v);
}

/* ---- prepare ------------------------------------------------------------------------ */

bgeicl_code icl_prepare(icl_engine *e, const bgeicl_model *m, const icl_input *in,
                        icl_output *out, bgeicl_error *err)
{
    memset(out, 0, sizeof *out);
    double t0 = bg_now_ms();
    if (in->mode == ICL_NONE || in->mode == ICL_PLAIN_QUERY ||
        (in->mode == ICL_SERVER && !e->bank)) {
        out->flags = in->mode == ICL_NONE ? 0 : BGEICL_QUERY;
        return copy_text(in, out, err);
    }
    icl_lang lang = in->lang >= 0 ? (icl_lang)in->lang : icl_lang_detect(in->text, in->len, in->path);
    const char *qs[CTX_MAX_EXAMPLES], *rs[CTX_MAX_EXAMPLES];
    icl_prompt p = {.query = in->text, .query_len = in->len};
    if (in->mode == ICL_SERVER) {
        ctx_value v;
        choose_examples(e, in, lang, &v, &out->cache_hit);
        const icl_example *ex = NULL;
        icl_bank_examples(e->bank, lang, &ex);
        for (size_t i = 0; i < v.n; i++) {
            qs[i] = ex[v.idx[i]].query;
            rs[i] = ex[v.idx[i]].response;
        }
        p.instruction = icl_bank_instruction(e->bank, lang);
        p.ex_query = qs;
        p.ex_response = rs;
        p.n_examples = v.n;
    } else {
        p.instruction = in->instruction ? in->instruction
                        : e->bank       ? icl_bank_instruction(e->bank, lang)
                                        : DEFAULT_INSTRUCTION;
        p.ex_query = in->ex_query;
        p.ex_response = in->ex_response;
        p.n_examples = in->n_examples;
    }
    bgeicl_model_info info;
    bgeicl_model_info_get(m, &info);
    if (icl_prompt_fit(&p, info.max_tokens - 2, count_tokens, (void *)m) == (size_t)-1 ||
        !(out->text = icl_prompt_build(&p, &out->len)))
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory building an ICL prompt");
    out->applied = 1;
    out->lang = lang;
    out->examples = p.n_examples;
    out->instruction = p.instruction;
    out->prep_ms = bg_now_ms() - t0;
    return BGEICL_OK;
}
