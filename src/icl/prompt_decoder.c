/*
 * prompt_decoder.c - bge-en-icl query assembly (the steps are in
 * prompt_decoder.h).
 */
#include <string.h>

#include "prompt_decoder.h"

static const char RESPONSE[] = "\n<response>";
#define LIT(s) (sizeof(s) - 1)

/* Tokens of text without special tokens and without a limit. */
static bgeicl_code count(const tok_tokenizer *tok, const char *text, size_t len, size_t *n,
                         bg_err *err)
{
    tok_encoding e = {0};
    bgeicl_code rc = tok_encode(tok, text, len, 0, 0, &e, NULL, err);
    *n = e.n;
    tok_encoding_free(&e);
    return rc;
}

/* Steps 1 and 2: the query part, cut to its budget and decoded back. */
static bgeicl_code cut_query(const tok_tokenizer *tok, const icl_prompt *p, size_t budget,
                             char **decoded, size_t *dlen, int *cut, bg_err *err)
{
    icl_prompt q = *p;
    q.n_examples = 0;
    q.decoder = 0;
    size_t qlen = 0;
    char *qs = icl_prompt_build(&q, &qlen);
    if (!qs)
        return bg_fail(err, BGEICL_ERR_NOMEM, "icl: out of memory");
    tok_encoding e = {0};
    bgeicl_code rc = tok_encode(tok, qs, qlen, 0, budget, &e, cut, err);
    if (rc == BGEICL_OK)
        rc = tok_decode(tok, e.ids, e.n, decoded, dlen, err);
    tok_encoding_free(&e);
    bg_free(qs);
    return rc;
}

/* Step 3: prefix + decoded + "\n<response>". */
static char *join3(const char *a, size_t alen, const char *b, size_t blen, size_t *len)
{
    char *s = bg_malloc(alen + blen + LIT(RESPONSE) + 1);
    if (!s)
        return NULL;
    memcpy(s, a, alen);
    memcpy(s + alen, b, blen);
    memcpy(s + alen + blen, RESPONSE, LIT(RESPONSE) + 1);
    *len = alen + blen + LIT(RESPONSE);
    return s;
}

/* Budget of step 1: query_max_len - len(tok("<s>")) - len(tok("\n<response></s>")). */
static bgeicl_code query_budget(const tok_tokenizer *tok, size_t query_max_len, size_t *budget,
                                bg_err *err)
{
    static const char BOS[] = "<s>", TAIL[] = "\n<response></s>";
    size_t n1 = 0, n2 = 0;
    bgeicl_code rc = count(tok, BOS, LIT(BOS), &n1, err);
    if (rc == BGEICL_OK)
        rc = count(tok, TAIL, LIT(TAIL), &n2, err);
    if (rc != BGEICL_OK)
        return rc;
    if (query_max_len <= n1 + n2)
        return bg_fail(err, BGEICL_ERR_ARG,
                       "icl: query_max_len %zu leaves no room for the query (%zu tokens are "
                       "reserved)", query_max_len, n1 + n2);
    *budget = query_max_len - n1 - n2;
    return BGEICL_OK;
}

bgeicl_code icl_decoder_assemble(const tok_tokenizer *tok, const icl_prompt *p,
                                 size_t query_max_len, icl_decoder_tokens *out, bg_err *err)
{
    if (!tok || !p || !out)
        return bg_fail(err, BGEICL_ERR_ARG, "icl: NULL argument");
    memset(out, 0, sizeof *out);
    size_t budget = 0, plen = 0, dlen = 0, n_prefix = 0, n_suffix = 0;
    char *prefix = NULL, *decoded = NULL;
    bgeicl_code rc = query_budget(tok, query_max_len, &budget, err);
    if (rc == BGEICL_OK)
        rc = cut_query(tok, p, budget, &decoded, &dlen, &out->query_cut, err);
    if (rc == BGEICL_OK && !(prefix = icl_prompt_prefix(p, &plen)))
        rc = bg_fail(err, BGEICL_ERR_NOMEM, "icl: out of memory");
    if (rc == BGEICL_OK)
        rc = count(tok, prefix, plen, &n_prefix, err);
    if (rc == BGEICL_OK)
        rc = count(tok, RESPONSE, LIT(RESPONSE), &n_suffix, err);
    if (rc == BGEICL_OK) {
        out->max_length = (n_prefix + n_suffix + query_max_len + 8) / 8 * 8 + 8;
        out->text = join3(prefix, plen, decoded, dlen, &out->text_len);
        if (!out->text)
            rc = bg_fail(err, BGEICL_ERR_NOMEM, "icl: out of memory");
    }
    if (rc == BGEICL_OK)
        rc = tok_encode(tok, out->text, out->text_len, 1, out->max_length, &out->enc, NULL, err);
    bg_free(prefix);
    bg_free(decoded);
    if (rc != BGEICL_OK)
        icl_decoder_tokens_free(out);
    return rc;
}

void icl_decoder_tokens_free(icl_decoder_tokens *out)
{
    if (!out)
        return;
    tok_encoding_free(&out->enc);
    bg_free(out->text);
    memset(out, 0, sizeof *out);
}
