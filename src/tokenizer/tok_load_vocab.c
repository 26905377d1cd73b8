/*
 * tok_load_vocab.c - the tokenizer of a model folder without tokenizer.json:
 * vocab.txt (one token per line, id = line number) and, if present,
 * tokenizer_config.json (do_lower_case, tokenize_chinese_chars,
 * strip_accents, special tokens). Missing settings take BertTokenizerFast's
 * defaults. The result equals the tokenizers library's
 * BertWordPieceTokenizer over the same files: BertNormalizer with
 * clean_text, BertPreTokenizer, WordPiece ("##", 100 chars), [CLS] $A [SEP],
 * and the special tokens that exist in the vocabulary matched on the raw
 * text.
 *
 * Lines are read like the library's WordPiece::read_file: split at "\n" (an
 * "\r\n" counts as one), then trailing Unicode whitespace removed.
 */
#include <stdlib.h>
#include <string.h>

#include "tok_json.h"
#include "tok_unicode.h"

typedef struct vocab_cfg {
    int lower, cjk, strip; /* strip: -1 = follow lower */
    const char *unk, *sep, *cls, *pad, *mask;
} vocab_cfg;

/* Length of line s[0, len) without trailing White_Space (Rust trim_end). */
static size_t trim_end(const char *s, size_t len)
{
    while (len > 0) {
        size_t b = len - 1;
        while (b > 0 && len - b < 4 && ((unsigned char)s[b] & 0xC0) == 0x80)
            b--;
        int32_t cp = 0;
        if (tok_utf8_decode((const unsigned char *)s + b, len - b, &cp) != len - b ||
            !(tok_u_flags(cp) & TOK_U_WS))
            break;
        len = b;
    }
    return len;
}

/* Counts the lines and their bytes (after trimming); with v, also adds each
 * line to v with its line number as id. Returns the number of lines. */
static size_t for_lines(const char *data, size_t len, tok_vocab *v, size_t *bytes)
{
    size_t n = 0, pos = 0;
    *bytes = 0;
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len;
        size_t l = trim_end(data + pos, end - pos);
        if (v)
            tok_vocab_put(v, data + pos, l, (int32_t)n);
        *bytes += l;
        n++;
        pos = end + 1;
    }
    return n;
}

static bgeicl_code read_vocab(tok_tokenizer *t, const char *path, bg_err *err)
{
    char *data = NULL;
    size_t len = 0, bytes;
    bgeicl_code rc = bg_read_file(path, &data, &len, err);
    if (rc != BGEICL_OK)
        return rc;
    size_t n = for_lines(data, len, NULL, &bytes);
    if (!bg_utf8_valid(data, len))
        rc = bg_fail(err, BGEICL_ERR_FORMAT, "%s: not valid UTF-8", path);
    else if (n == 0)
        rc = bg_fail(err, BGEICL_ERR_FORMAT, "%s: no tokens", path);
    else if (n > INT32_MAX)
        rc = bg_fail(err, BGEICL_ERR_FORMAT, "%s: too many tokens", path);
    else if (tok_vocab_alloc(&t->vocab, n, n, bytes) != 0)
        rc = bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory for the vocabulary", path);
    else
        for_lines(data, len, &t->vocab, &bytes);
    bg_free(data);
    return rc;
}

static bgeicl_code read_token(const tok_jctx *c, const cJSON *root, const char *key,
                              const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v))
        return BGEICL_OK;
    return tok_json_token(c, v, key, out);
}

static bgeicl_code read_flags(const tok_jctx *c, const cJSON *root, vocab_cfg *cfg)
{
    bgeicl_code rc = tok_json_bool(c, root, "do_lower_case", "do_lower_case", &cfg->lower);
    if (rc == BGEICL_OK)
        rc = tok_json_bool(c, root, "tokenize_chinese_chars", "tokenize_chinese_chars",
                           &cfg->cjk);
    if (rc == BGEICL_OK)
        rc = tok_json_bool(c, root, "strip_accents", "strip_accents", &cfg->strip);
    if (rc == BGEICL_OK)
        rc = read_token(c, root, "unk_token", &cfg->unk);
    if (rc == BGEICL_OK)
        rc = read_token(c, root, "sep_token", &cfg->sep);
    if (rc == BGEICL_OK)
        rc = read_token(c, root, "cls_token", &cfg->cls);
    if (rc == BGEICL_OK)
        rc = read_token(c, root, "pad_token", &cfg->pad);
    if (rc == BGEICL_OK)
        rc = read_token(c, root, "mask_token", &cfg->mask);
    return rc;
}

/* Special tokens beyond the five standard ones: additional_special_tokens
 * (new ids after the vocabulary when absent from it) and the
 * added_tokens_decoder map of newer transformers versions. */
static bgeicl_code read_extra_specials(const tok_jctx *c, tok_tokenizer *t, const cJSON *root)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "additional_special_tokens");
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "added_tokens_decoder");
    int32_t next_id = (int32_t)t->vocab.n_ids;
    for (const cJSON *e = cJSON_IsArray(list) ? list->child : NULL; e; e = e->next) {
        const char *s;
        bgeicl_code rc = tok_json_token(c, e, "additional_special_tokens[]", &s);
        if (rc != BGEICL_OK)
            return rc;
        int absent = s[0] && tok_vocab_find(&t->vocab, s, strlen(s)) < 0;
        if ((rc = tok_add_special(t, s, absent ? next_id : -1, c->path, c->err)) != BGEICL_OK)
            return rc;
        next_id += absent;
    }
    for (const cJSON *e = cJSON_IsObject(dec) ? dec->child : NULL; e; e = e->next) {
        const char *s = NULL;
        char *endp = NULL;
        int normalized = 0, ls = 0, rs = 0, sw = 0;
        long id = strtol(e->string, &endp, 10);
        bgeicl_code rc = tok_json_str(c, e, "content", "added_tokens_decoder.content", &s);
        if (rc == BGEICL_OK && (!s || *endp || id < 0 || id >= INT32_MAX))
            rc = tok_json_missing(c, "added_tokens_decoder.<id>.content");
        if (rc == BGEICL_OK)
            rc = tok_json_bool(c, e, "normalized", "added_tokens_decoder.normalized", &normalized);
        if (rc == BGEICL_OK)
            rc = tok_json_bool(c, e, "lstrip", "added_tokens_decoder.lstrip", &ls);
        if (rc == BGEICL_OK)
            rc = tok_json_bool(c, e, "rstrip", "added_tokens_decoder.rstrip", &rs);
        if (rc == BGEICL_OK)
            rc = tok_json_bool(c, e, "single_word", "added_tokens_decoder.single_word", &sw);
        if (rc == BGEICL_OK && (normalized || ls || rs || sw))
            rc = tok_json_unsupported(c, "added_tokens_decoder entry", s,
                                      "raw-text tokens (normalized/lstrip/rstrip/single_word "
                                      "false)");
        if (rc == BGEICL_OK)
            rc = tok_add_special(t, s, (int32_t)id, c->path, c->err);
        if (rc != BGEICL_OK)
            return rc;
    }
    return BGEICL_OK;
}

/* Reads tokenizer_config.json at cpath if it exists (*root stays NULL if not). */
static bgeicl_code read_config(const char *cpath, vocab_cfg *cfg, cJSON **root, bg_err *err)
{
    if (!bg_file_exists(cpath))
        return BGEICL_OK;
    tok_jctx c = {cpath, err};
    bgeicl_code rc = tok_json_read(cpath, root, err);
    if (rc == BGEICL_OK)
        rc = read_flags(&c, *root, cfg);
    return rc;
}

/* Special tokens, WordPiece settings and the [CLS] $A [SEP] template. */
static bgeicl_code setup(tok_tokenizer *t, const vocab_cfg *cfg, const char *vpath, bg_err *err)
{
    const char *std[] = {cfg->unk, cfg->sep, cfg->cls, cfg->pad, cfg->mask};
    t->clean_text = 1;
    t->handle_cjk = cfg->cjk;
    t->lowercase = cfg->lower;
    t->strip_accents = cfg->strip < 0 ? cfg->lower : cfg->strip;
    t->max_word_chars = 100;
    t->unk_id = tok_vocab_find(&t->vocab, cfg->unk, strlen(cfg->unk));
    int32_t cls = tok_vocab_find(&t->vocab, cfg->cls, strlen(cfg->cls));
    int32_t sep = tok_vocab_find(&t->vocab, cfg->sep, strlen(cfg->sep));
    int32_t pad = tok_vocab_find(&t->vocab, cfg->pad, strlen(cfg->pad));
    const char *missing = t->unk_id < 0 ? cfg->unk : cls < 0 ? cfg->cls : sep < 0 ? cfg->sep : NULL;
    if (missing)
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: special token \"%s\" is not in the vocabulary",
                       vpath, missing);
    t->pad_id = pad >= 0 ? pad : 0;
    for (size_t i = 0; i < sizeof std / sizeof std[0]; i++) {
        if (tok_vocab_find(&t->vocab, std[i], strlen(std[i])) < 0)
            continue; /* only tokens of the vocabulary, as BertWordPieceTokenizer */
        bgeicl_code rc = tok_add_special(t, std[i], -1, vpath, err);
        if (rc != BGEICL_OK)
            return rc;
    }
    t->prefix = bg_strdup("##");
    t->pre_ids = bg_malloc(sizeof *t->pre_ids);
    t->post_ids = bg_malloc(sizeof *t->post_ids);
    if (!t->prefix || !t->pre_ids || !t->post_ids)
        return bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory", vpath);
    t->prefix_len = 2;
    t->pre_ids[0] = cls;
    t->post_ids[0] = sep;
    t->n_pre = t->n_post = 1;
    return BGEICL_OK;
}

bgeicl_code tok_load_vocab_txt(tok_tokenizer *t, const char *dir, bg_err *err)
{
    vocab_cfg cfg = {1, 1, -1, "[UNK]", "[SEP]", "[CLS]", "[PAD]", "[MASK]"};
    cJSON *root = NULL;
    char *vpath = bg_path_join(dir, "vocab.txt");
    char *cpath = bg_path_join(dir, "tokenizer_config.json");
    bgeicl_code rc = BGEICL_OK;
    if (!vpath || !cpath) {
        rc = bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory", dir);
        goto out;
    }
    if (!bg_file_exists(vpath)) {
        rc = bg_fail(err, BGEICL_ERR_IO, "%s: no tokenizer.json or vocab.txt", dir);
        goto out;
    }
    rc = read_config(cpath, &cfg, &root, err);
    if (rc == BGEICL_OK)
        rc = read_vocab(t, vpath, err);
    if (rc == BGEICL_OK)
        rc = setup(t, &cfg, vpath, err);
    if (rc == BGEICL_OK && root) {
        tok_jctx c = {cpath, err};
        rc = read_extra_specials(&c, t, root);
    }
out:
    cJSON_Delete(root);
    bg_free(vpath);
    bg_free(cpath);
    return rc;
}
