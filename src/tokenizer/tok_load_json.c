/*
 * tok_load_json.c - reads a Hugging Face tokenizer.json.
 *
 * Supported: model WordPiece, or BPE (SentencePiece style: its model,
 * normalizer, pre_tokenizer and decoder are read by tok_bpe_load.c);
 * normalizer BertNormalizer or null; pre_tokenizer BertPreTokenizer;
 * post_processor TemplateProcessing (special tokens around $A),
 * BertProcessing or null; added_tokens that are matched
 * on the raw text (normalized false, no lstrip/rstrip/single_word). Anything
 * else is BGEICL_ERR_UNSUPPORTED naming the field, so a model never silently
 * tokenizes differently from the library.
 */
#include <string.h>

#include "tok_bpe.h"
#include "tok_json.h"

/* Two passes over model.vocab: sizes, then fill. */
bgeicl_code tok_load_json_vocab(const tok_jctx *c, tok_tokenizer *t, const cJSON *vocab)
{
    size_t n = 0, bytes = 0, n_ids = 0;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int32_t id;
        bgeicl_code rc = tok_json_id(c, e, "model.vocab values", &id);
        if (rc != BGEICL_OK)
            return rc;
        n++;
        bytes += strlen(e->string);
        if ((size_t)id + 1 > n_ids)
            n_ids = (size_t)id + 1;
    }
    if (n == 0)
        return bg_fail(c->err, BGEICL_ERR_FORMAT, "%s: model.vocab is empty", c->path);
    if (tok_vocab_alloc(&t->vocab, n, n_ids, bytes) != 0)
        return bg_fail(c->err, BGEICL_ERR_NOMEM, "%s: out of memory for the vocabulary",
                       c->path);
    for (const cJSON *e = vocab->child; e; e = e->next)
        tok_vocab_put(&t->vocab, e->string, strlen(e->string), (int32_t)e->valuedouble);
    return BGEICL_OK;
}

static bgeicl_code load_model(const tok_jctx *c, tok_tokenizer *t, const cJSON *root)
{
    const cJSON *model, *vocab;
    const char *type = NULL, *unk = "[UNK]", *prefix = "##";
    t->max_word_chars = 100;
    bgeicl_code rc = tok_json_object(c, root, "model", "model", &model);
    if (rc == BGEICL_OK)
        rc = tok_json_type(c, model, "model.type", &type);
    if (rc == BGEICL_OK && strcmp(type, "BPE") == 0) {
        if (!(t->bpe = bg_calloc(1, sizeof *t->bpe)))
            return bg_fail(c->err, BGEICL_ERR_NOMEM, "%s: out of memory", c->path);
        return tok_bpe_load_model(c, t, model);
    }
    if (rc == BGEICL_OK && strcmp(type, "WordPiece") != 0)
        return tok_json_unsupported(c, "model.type", type, "WordPiece or BPE");
    if (rc == BGEICL_OK)
        rc = tok_json_object(c, model, "vocab", "model.vocab", &vocab);
    if (rc == BGEICL_OK)
        rc = tok_json_str(c, model, "unk_token", "model.unk_token", &unk);
    if (rc == BGEICL_OK)
        rc = tok_json_str(c, model, "continuing_subword_prefix",
                          "model.continuing_subword_prefix", &prefix);
    if (rc == BGEICL_OK)
        rc = tok_json_size(c, model, "max_input_chars_per_word",
                           "model.max_input_chars_per_word", &t->max_word_chars);
    if (rc == BGEICL_OK)
        rc = tok_load_json_vocab(c, t, vocab);
    if (rc != BGEICL_OK)
        return rc;
    t->unk_id = tok_vocab_find(&t->vocab, unk, strlen(unk));
    if (t->unk_id < 0)
        return bg_fail(c->err, BGEICL_ERR_FORMAT,
                       "%s: model.unk_token \"%s\" is not in model.vocab", c->path, unk);
    t->prefix = bg_strdup(prefix);
    if (!t->prefix)
        return bg_fail(c->err, BGEICL_ERR_NOMEM, "%s: out of memory", c->path);
    t->prefix_len = strlen(prefix);
    return BGEICL_OK;
}

static bgeicl_code load_normalizer(const tok_jctx *c, tok_tokenizer *t, const cJSON *root)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    const char *type = NULL;
    if (!n || cJSON_IsNull(n))
        return BGEICL_OK; /* no normalization at all */
    bgeicl_code rc = tok_json_type(c, n, "normalizer.type", &type);
    if (rc != BGEICL_OK)
        return rc;
    if (strcmp(type, "BertNormalizer") != 0)
        return tok_json_unsupported(c, "normalizer.type", type, "BertNormalizer");
    int strip = -1; /* null: follow lowercase */
    t->clean_text = t->handle_cjk = t->lowercase = 1;
    rc = tok_json_bool(c, n, "clean_text", "normalizer.clean_text", &t->clean_text);
    if (rc == BGEICL_OK)
        rc = tok_json_bool(c, n, "handle_chinese_chars", "normalizer.handle_chinese_chars",
                           &t->handle_cjk);
    if (rc == BGEICL_OK)
        rc = tok_json_bool(c, n, "strip_accents", "normalizer.strip_accents", &strip);
    if (rc == BGEICL_OK)
        rc = tok_json_bool(c, n, "lowercase", "normalizer.lowercase", &t->lowercase);
    t->strip_accents = strip < 0 ? t->lowercase : strip;
    return rc;
}

static bgeicl_code load_pretokenizer(const tok_jctx *c, const cJSON *root)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const char *type = NULL;
    if (!p || cJSON_IsNull(p))
        return tok_json_unsupported(c, "pre_tokenizer", "null", "BertPreTokenizer");
    bgeicl_code rc = tok_json_type(c, p, "pre_tokenizer.type", &type);
    if (rc == BGEICL_OK && strcmp(type, "BertPreTokenizer") != 0)
        rc = tok_json_unsupported(c, "pre_tokenizer.type", type, "BertPreTokenizer");
    return rc;
}

/* Appends the ids of a TemplateProcessing special token to *ids. */
static bgeicl_code template_special(const tok_jctx *c, const cJSON *specials, const cJSON *piece,
                                    int32_t **ids, size_t *n)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(piece, "id");
    const cJSON *sp = cJSON_IsString(name) && cJSON_IsObject(specials)
                          ? cJSON_GetObjectItemCaseSensitive(specials, name->valuestring)
                          : NULL;
    const cJSON *list = sp ? cJSON_GetObjectItemCaseSensitive(sp, "ids") : NULL;
    if (!cJSON_IsArray(list))
        return tok_json_missing(c, "post_processor.special_tokens.<token>.ids");
    for (const cJSON *e = list->child; e; e = e->next) {
        int32_t id;
        if (tok_json_id(c, e, "post_processor.special_tokens.<token>.ids", &id) != BGEICL_OK)
            return BGEICL_ERR_FORMAT;
        int32_t *grown = bg_realloc(*ids, (*n + 1) * sizeof *grown);
        if (!grown)
            return bg_fail(c->err, BGEICL_ERR_NOMEM, "%s: out of memory", c->path);
        *ids = grown;
        (*ids)[(*n)++] = id;
    }
    return BGEICL_OK;
}

/* "single": [SpecialToken..., Sequence A, SpecialToken...]. */
static bgeicl_code load_template(const tok_jctx *c, tok_tokenizer *t, const cJSON *pp)
{
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(pp, "special_tokens");
    int seen_seq = 0;
    if (!cJSON_IsArray(single))
        return tok_json_missing(c, "post_processor.single");
    for (const cJSON *piece = single->child; piece; piece = piece->next) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(piece, "SpecialToken");
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(piece, "Sequence");
        bgeicl_code rc;
        if (sp && seen_seq)
            rc = template_special(c, specials, sp, &t->post_ids, &t->n_post);
        else if (sp)
            rc = template_special(c, specials, sp, &t->pre_ids, &t->n_pre);
        else if (seq && !seen_seq)
            rc = (seen_seq = 1, BGEICL_OK);
        else
            rc = tok_json_unsupported(c, "post_processor.single", "(this template)",
                                      "special tokens around one $A");
        if (rc != BGEICL_OK)
            return rc;
    }
    if (!seen_seq)
        return tok_json_unsupported(c, "post_processor.single", "(without $A)",
                                    "special tokens around one $A");
    return BGEICL_OK;
}

/* BertProcessing: "cls": ["[CLS]", 101], "sep": ["[SEP]", 102]. */
static bgeicl_code load_bert_processing(const tok_jctx *c, tok_tokenizer *t, const cJSON *pp)
{
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(pp, "cls");
    const cJSON *sep = cJSON_GetObjectItemCaseSensitive(pp, "sep");
    int32_t cls_id, sep_id;
    if (cJSON_GetArraySize(cls) != 2)
        return tok_json_missing(c, "post_processor.cls");
    if (cJSON_GetArraySize(sep) != 2)
        return tok_json_missing(c, "post_processor.sep");
    if (tok_json_id(c, cJSON_GetArrayItem(cls, 1), "post_processor.cls[1]", &cls_id) ||
        tok_json_id(c, cJSON_GetArrayItem(sep, 1), "post_processor.sep[1]", &sep_id))
        return BGEICL_ERR_FORMAT;
    t->pre_ids = bg_malloc(sizeof *t->pre_ids);
    t->post_ids = bg_malloc(sizeof *t->post_ids);
    if (!t->pre_ids || !t->post_ids)
        return bg_fail(c->err, BGEICL_ERR_NOMEM, "%s: out of memory", c->path);
    t->pre_ids[0] = cls_id;
    t->post_ids[0] = sep_id;
    t->n_pre = t->n_post = 1;
    return BGEICL_OK;
}

static bgeicl_code load_post(const tok_jctx *c, tok_tokenizer *t, const cJSON *root)
{
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    const char *type = NULL;
    if (!pp || cJSON_IsNull(pp))
        return BGEICL_OK; /* no special tokens */
    bgeicl_code rc = tok_json_type(c, pp, "post_processor.type", &type);
    if (rc != BGEICL_OK)
        return rc;
    if (strcmp(type, "TemplateProcessing") == 0)
        return load_template(c, t, pp);
    if (strcmp(type, "BertProcessing") == 0)
        return load_bert_processing(c, t, pp);
    return tok_json_unsupported(c, "post_processor.type", type,
                                "TemplateProcessing or BertProcessing");
}

/* One added_tokens entry: only raw-text matching is implemented. */
static bgeicl_code load_added_one(const tok_jctx *c, tok_tokenizer *t, const cJSON *e)
{
    static const char *const flags[] = {"single_word", "lstrip", "rstrip"};
    const char *content = NULL;
    int32_t id;
    int normalized = 0;
    bgeicl_code rc = tok_json_str(c, e, "content", "added_tokens[].content", &content);
    if (rc != BGEICL_OK)
        return rc;
    if (!content)
        return tok_json_missing(c, "added_tokens[].content");
    if (tok_json_id(c, cJSON_GetObjectItemCaseSensitive(e, "id"), "added_tokens[].id", &id))
        return BGEICL_ERR_FORMAT;
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        int on = 0;
        if ((rc = tok_json_bool(c, e, flags[i], "added_tokens[] flags", &on)) != BGEICL_OK)
            return rc;
        if (on)
            return tok_json_unsupported(c, "added_tokens[] flag", flags[i],
                                        "tokens without single_word/lstrip/rstrip");
    }
    if ((rc = tok_json_bool(c, e, "normalized", "added_tokens[].normalized", &normalized)))
        return rc;
    if (normalized)
        return tok_json_unsupported(c, "added_tokens[].normalized", "true",
                                    "added tokens with normalized false");
    return tok_add_special(t, content, id, c->path, c->err);
}

static bgeicl_code load_added(const tok_jctx *c, tok_tokenizer *t, const cJSON *root)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!list || cJSON_IsNull(list))
        return BGEICL_OK;
    if (!cJSON_IsArray(list))
        return bg_fail(c->err, BGEICL_ERR_FORMAT, "%s: field added_tokens must be an array",
                       c->path);
    for (const cJSON *e = list->child; e; e = e->next) {
        bgeicl_code rc = load_added_one(c, t, e);
        if (rc != BGEICL_OK)
            return rc;
    }
    return BGEICL_OK;
}

/* [PAD]'s id: padding.pad_id when padding is configured, else the vocab's. */
static bgeicl_code load_pad(const tok_jctx *c, tok_tokenizer *t, const cJSON *root)
{
    const cJSON *pad = cJSON_GetObjectItemCaseSensitive(root, "padding");
    int32_t id = tok_vocab_find(&t->vocab, "[PAD]", 5);
    t->pad_id = id >= 0 ? id : 0;
    if (!cJSON_IsObject(pad) || !cJSON_GetObjectItemCaseSensitive(pad, "pad_id"))
        return BGEICL_OK;
    return tok_json_id(c, cJSON_GetObjectItemCaseSensitive(pad, "pad_id"), "padding.pad_id",
                       &t->pad_id);
}

bgeicl_code tok_load_json(tok_tokenizer *t, const char *path, bg_err *err)
{
    tok_jctx c = {path, err};
    cJSON *root = NULL;
    bgeicl_code rc = tok_json_read(path, &root, err);
    if (rc == BGEICL_OK)
        rc = load_model(&c, t, root);
    if (rc == BGEICL_OK && t->bpe) /* normalizer, pre_tokenizer, decoder */
        rc = tok_bpe_load_pipeline(&c, t, root);
    else if (rc == BGEICL_OK)
        rc = load_normalizer(&c, t, root);
    if (rc == BGEICL_OK && !t->bpe)
        rc = load_pretokenizer(&c, root);
    if (rc == BGEICL_OK)
        rc = load_post(&c, t, root);
    if (rc == BGEICL_OK)
        rc = load_added(&c, t, root);
    if (rc == BGEICL_OK)
        rc = load_pad(&c, t, root);
    cJSON_Delete(root);
    return rc;
}
