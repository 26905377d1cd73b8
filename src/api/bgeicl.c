/*
 * bgeicl.c - the public API (include/bgeicl.h) over the tokenizer, the
 * model and the engine.
 *
 * A bgeicl_model owns one of each. Tokenizing needs no lock (the tokenizer
 * is immutable); a forward pass holds `lock` because the engine's scratch
 * buffers and thread pool serve one pass at a time.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/engine.h"
#include "../model/model.h"
#include "../tokenizer/tok.h"
#include "../util/util.h"
#include "bgeicl.h"

struct bgeicl_model {
    model *m;
    tok_tokenizer *tok;
    engine *eng;
    pthread_mutex_t lock;
    size_t max_batch_tokens;
    bgeicl_dtype dtype;
};

static const char *const code_names[] = {"ok",    "io",      "format",   "unsupported",
                                         "shape", "nomem",   "invalid",  "too_long",
                                         "http",  "connect", "timeout",  "auth"};

const char *bgeicl_code_name(bgeicl_code code)
{
    if ((unsigned)code < sizeof code_names / sizeof code_names[0])
        return code_names[code];
    return "unknown";
}

const char *bgeicl_version(void) { return BGEICL_VERSION; }

static const char *const dtype_names[] = {"fp32", "bf16", "int8"};

const char *bgeicl_dtype_name(bgeicl_dtype dtype)
{
    if ((unsigned)dtype < sizeof dtype_names / sizeof dtype_names[0])
        return dtype_names[dtype];
    return NULL;
}

int bgeicl_dtype_parse(const char *name, bgeicl_dtype *out)
{
    for (unsigned i = 0; name && i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        if (!strcmp(name, dtype_names[i])) {
            *out = (bgeicl_dtype)i;
            return 0;
        }
    return -1;
}

void bgeicl_options_init(bgeicl_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->dtype = BGEICL_DTYPE_FP32;
}

bgeicl_code bgeicl_model_open(const char *dir, const bgeicl_options *opts, bgeicl_model **out,
                              bgeicl_error *err)
{
    bg_err_clear(err);
    if (!dir || !out)
        return bg_fail(err, BGEICL_ERR_ARG, "bgeicl_model_open: dir and out must not be NULL");
    *out = NULL;
    bgeicl_options def;
    if (!opts) {
        bgeicl_options_init(&def);
        opts = &def;
    }
    if (!bgeicl_dtype_name(opts->dtype))
        return bg_fail(err, BGEICL_ERR_UNSUPPORTED, "dtype %d is not supported (fp32, bf16, int8)",
                       (int)opts->dtype);
    bgeicl_model *bm = bg_calloc(1, sizeof *bm);
    if (!bm)
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory opening %s", dir);
    pthread_mutex_init(&bm->lock, NULL);
    bm->max_batch_tokens = opts->max_batch_tokens ? opts->max_batch_tokens : 16384;
    bm->dtype = opts->dtype;
    /* Matrices on demand: the engine packs them layer by layer. */
    bgeicl_code rc = model_open(dir, 1, &bm->m, err);
    if (rc == BGEICL_OK)
        rc = tok_load(dir, &bm->tok, err);
    if (rc == BGEICL_OK && tok_vocab_size(bm->tok) > bm->m->cfg.vocab_size)
        rc = bg_fail(err, BGEICL_ERR_FORMAT,
                     "%s: the tokenizer has %zu tokens but config.json vocab_size is %zu", dir,
                     tok_vocab_size(bm->tok), bm->m->cfg.vocab_size);
    if (rc == BGEICL_OK)
        rc = engine_create(bm->m, opts->threads, kern_detect(), opts->dtype, &bm->eng, err);
    if (rc == BGEICL_OK)
        model_close_file(bm->m);
    if (rc != BGEICL_OK) {
        bgeicl_model_close(bm);
        return rc;
    }
    if (bm->max_batch_tokens < bm->m->cfg.max_seq_len)
        bm->max_batch_tokens = bm->m->cfg.max_seq_len;
    *out = bm;
    return BGEICL_OK;
}

void bgeicl_model_close(bgeicl_model *bm)
{
    if (!bm)
        return;
    engine_free(bm->eng);
    tok_free(bm->tok);
    model_free(bm->m);
    pthread_mutex_destroy(&bm->lock);
    bg_free(bm);
}

void bgeicl_model_info_get(const bgeicl_model *bm, bgeicl_model_info *info)
{
    const model_config *c = &bm->m->cfg;
    memset(info, 0, sizeof *info);
    info->id = c->id;
    info->hf_id = c->hf_id;
    info->architecture = c->architecture;
    info->query_instruction = c->query_instruction;
    const kern_ops *k = engine_kernels(bm->eng);
    info->isa = k->name;
    info->gemm = bm->dtype == BGEICL_DTYPE_INT8   ? k->i8_impl
                 : bm->dtype == BGEICL_DTYPE_BF16 ? k->bf16_impl
                 : k->gemm_packed                 ? k->name
                                                  : "openblas";
    info->dtype = bgeicl_dtype_name(bm->dtype);
    info->dim = c->hidden;
    info->max_tokens = c->max_seq_len;
    info->layers = c->layers;
    info->heads = c->heads;
    info->intermediate = c->intermediate;
    info->vocab_size = c->vocab_size;
    info->pooling = c->pooling;
    info->threads = engine_threads(bm->eng);
}

size_t bgeicl_model_dim(const bgeicl_model *bm) { return bm->m->cfg.hidden; }

const char *bgeicl_token_text(const bgeicl_model *bm, int32_t id)
{
    return tok_id_to_token(bm->tok, id);
}

/* ---- tokenize --------------------------------------------------------------- */

static size_t text_len(const char *text, size_t len)
{
    return len == (size_t)-1 ? strlen(text) : len;
}

#define NO_INDEX ((size_t)-1)

/* Tokenizes with the model's length cap. With BGEICL_NO_TRUNCATE, a text
 * that had to be cut fails as TOO_LONG instead; the message names input
 * `index` unless it is NO_INDEX. Shared by bgeicl_tokenize and bgeicl_embed. */
static bgeicl_code encode_capped(const bgeicl_model *bm, const char *text, size_t len,
                                 int add_special, unsigned flags, tok_encoding *enc,
                                 size_t index, bg_err *err)
{
    int truncated = 0;
    size_t max = bm->m->cfg.max_seq_len;
    bgeicl_code rc = tok_encode(bm->tok, text, len, add_special, max, enc, &truncated, err);
    if (rc != BGEICL_OK || !truncated || !(flags & BGEICL_NO_TRUNCATE))
        return rc;
    if (index == NO_INDEX)
        return bg_fail(err, BGEICL_ERR_TOO_LONG,
                       "input is longer than the model's maximum of %zu tokens", max);
    return bg_fail(err, BGEICL_ERR_TOO_LONG,
                   "input %zu is longer than the model's maximum of %zu tokens", index, max);
}

/* Tokenizes text i, with the query instruction in front when asked. */
static bgeicl_code encode_one(const bgeicl_model *bm, const char *text, size_t len,
                              int add_special, unsigned flags, size_t i, tok_encoding *enc,
                              bg_err *err)
{
    const char *instr = bm->m->cfg.query_instruction;
    char *joined = NULL;
    if ((flags & BGEICL_QUERY) && instr[0]) {
        size_t il = strlen(instr);
        joined = bg_malloc(il + len + 1);
        if (!joined)
            return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for the query instruction");
        memcpy(joined, instr, il);
        memcpy(joined + il, text, len);
        text = joined;
        len += il;
    }
    bgeicl_code rc = encode_capped(bm, text, len, add_special, flags, enc, i, err);
    bg_free(joined);
    return rc;
}

bgeicl_code bgeicl_tokenize(const bgeicl_model *bm, const char *text, size_t len,
                            unsigned flags, bgeicl_tokens *out, bgeicl_error *err)
{
    bg_err_clear(err);
    if (!bm || !text || !out)
        return bg_fail(err, BGEICL_ERR_ARG, "bgeicl_tokenize: NULL argument");
    return encode_one(bm, text, text_len(text, len), !(flags & BGEICL_NO_SPECIAL), flags, NO_INDEX,
                      out, err);
}

void bgeicl_tokens_free(bgeicl_tokens *t) { tok_encoding_free(t); }

/* ---- embed ------------------------------------------------------------------- */

/* Runs the engine over sequences [0, n) in slices of at most
 * max_batch_tokens tokens, writing rows of out in order. */
static bgeicl_code forward_all(bgeicl_model *bm, const int32_t *const *ids, const size_t *lens,
                               size_t n, unsigned flags, float *out, bg_err *err)
{
    size_t H = bm->m->cfg.hidden, s = 0;
    bgeicl_code rc = BGEICL_OK;
    pthread_mutex_lock(&bm->lock);
    while (s < n && rc == BGEICL_OK) {
        size_t e = s, tokens = 0;
        while (e < n && (e == s || tokens + lens[e] <= bm->max_batch_tokens))
            tokens += lens[e++];
        rc = engine_forward(bm->eng, ids + s, lens + s, e - s, !(flags & BGEICL_NO_NORMALIZE),
                            out + s * H, err);
        s = e;
    }
    pthread_mutex_unlock(&bm->lock);
    return rc;
}

static bgeicl_code check_embed_args(bgeicl_model *bm, const void *texts, size_t n, float *out,
                                    bg_err *err)
{
    if (!bm || !texts || !out)
        return bg_fail(err, BGEICL_ERR_ARG, "bgeicl_embed: NULL argument");
    if (n == 0)
        return bg_fail(err, BGEICL_ERR_ARG, "bgeicl_embed: no inputs");
    return BGEICL_OK;
}

bgeicl_code bgeicl_embed(bgeicl_model *bm, const char *const *texts, const size_t *lens,
                         size_t n, unsigned flags, float *out, bgeicl_embed_stats *stats,
                         bgeicl_error *err)
{
    bg_err_clear(err);
    bgeicl_code rc = check_embed_args(bm, texts, n, out, err);
    if (rc != BGEICL_OK)
        return rc;
    double t0 = bg_now_ms();
    tok_encoding *enc = bg_calloc(n, sizeof *enc);
    const int32_t **ids = bg_malloc(n * sizeof *ids);
    size_t *nl = bg_malloc(n * sizeof *nl);
    if (!enc || !ids || !nl) {
        rc = bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for %zu inputs", n);
        goto done;
    }
    size_t tokens = 0;
    for (size_t i = 0; i < n && rc == BGEICL_OK; i++) {
        if (!texts[i]) {
            rc = bg_fail(err, BGEICL_ERR_ARG, "input %zu is NULL", i);
            break;
        }
        rc = encode_one(bm, texts[i], lens ? lens[i] : strlen(texts[i]), 1, flags, i, &enc[i],
                        err);
        if (rc == BGEICL_OK) {
            ids[i] = enc[i].ids;
            nl[i] = enc[i].n;
            tokens += enc[i].n;
        }
    }
    double t1 = bg_now_ms();
    if (rc == BGEICL_OK)
        rc = forward_all(bm, ids, nl, n, flags, out, err);
    if (rc == BGEICL_OK && stats) {
        stats->tokens = tokens;
        stats->tokenize_ms = t1 - t0;
        stats->inference_ms = bg_now_ms() - t1;
    }
done:
    if (enc)
        for (size_t i = 0; i < n; i++)
            tok_encoding_free(&enc[i]);
    bg_free(enc);
    bg_free(ids);
    bg_free(nl);
    return rc;
}

bgeicl_code bgeicl_embed_ids(bgeicl_model *bm, const int32_t *const *ids, const size_t *lens,
                             size_t n, unsigned flags, float *out, bgeicl_embed_stats *stats,
                             bgeicl_error *err)
{
    bg_err_clear(err);
    bgeicl_code rc = check_embed_args(bm, ids, n, out, err);
    if (rc != BGEICL_OK)
        return rc;
    if (!lens)
        return bg_fail(err, BGEICL_ERR_ARG, "bgeicl_embed_ids: lens must not be NULL");
    size_t max = bm->m->cfg.max_seq_len, vocab = bm->m->cfg.vocab_size, tokens = 0;
    size_t *nl = bg_malloc(n * sizeof *nl);
    if (!nl)
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for %zu inputs", n);
    for (size_t i = 0; i < n && rc == BGEICL_OK; i++) {
        if (!ids[i] || lens[i] == 0)
            rc = bg_fail(err, BGEICL_ERR_ARG, "input %zu has no tokens", i);
        else if (lens[i] > max && (flags & BGEICL_NO_TRUNCATE))
            rc = bg_fail(err, BGEICL_ERR_TOO_LONG,
                         "input %zu has %zu tokens; the model's maximum is %zu", i, lens[i], max);
        for (size_t j = 0; rc == BGEICL_OK && j < lens[i]; j++)
            if (ids[i][j] < 0 || (size_t)ids[i][j] >= vocab)
                rc = bg_fail(err, BGEICL_ERR_ARG,
                             "input %zu: token id %d at position %zu is outside [0, %zu)", i,
                             (int)ids[i][j], j, vocab);
        nl[i] = lens[i] > max ? max : lens[i];
        tokens += nl[i];
    }
    double t0 = bg_now_ms();
    if (rc == BGEICL_OK)
        rc = forward_all(bm, ids, nl, n, flags, out, err);
    if (rc == BGEICL_OK && stats) {
        stats->tokens = tokens;
        stats->tokenize_ms = 0;
        stats->inference_ms = bg_now_ms() - t0;
    }
    bg_free(nl);
    return rc;
}
