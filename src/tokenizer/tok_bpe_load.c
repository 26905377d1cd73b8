/*
 * tok_bpe_load.c - reads the BPE parts of a tokenizer.json (see tok_bpe.h):
 * model (vocab, merges, unk_token, byte_fallback, fuse_unk), normalizer,
 * pre_tokenizer and decoder.
 *
 * Supported, so that a file never silently tokenizes differently from the
 * library: SentencePiece-style BPE (no continuing_subword_prefix, no
 * end_of_word_suffix, no dropout, no ignore_merges) whose byte_fallback, when
 * on, finds all 256 <0xNN> tokens; normalizer null, Prepend, Replace(" ") or
 * a Sequence of them; pre_tokenizer null or Metaspace. Anything else is
 * BGEICL_ERR_UNSUPPORTED naming the field. A decoder we do not implement
 * only makes tok_decode unsupported: encoding does not need it.
 */
#include <stdio.h>
#include <string.h>

#include "tok_bpe.h"
#include "tok_unicode.h"

/* ---- the merge table ----------------------------------------------------- */

/* A 64-bit mix of the pair, then the low bits (the table is a power of two). */
static size_t merge_hash(uint64_t key, size_t mask)
{
    key ^= key >> 31;
    key *= 0x9e3779b97f4a7c15ULL;
    key ^= key >> 29;
    return (size_t)key & mask;
}

int tok_merges_alloc(tok_merges *m, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    memset(m, 0, sizeof *m);
    m->slots = bg_malloc(cap * sizeof *m->slots);
    if (!m->slots)
        return -1;
    for (size_t i = 0; i < cap; i++)
        m->slots[i].key = TOK_MERGE_EMPTY;
    m->mask = cap - 1;
    return 0;
}

void tok_merges_put(tok_merges *m, int32_t left, int32_t right, uint32_t rank, int32_t merged)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t i = merge_hash(key, m->mask);
    while (m->slots[i].key != TOK_MERGE_EMPTY && m->slots[i].key != key)
        i = (i + 1) & m->mask;
    if (m->slots[i].key == TOK_MERGE_EMPTY)
        m->n++;
    m->slots[i].key = key;
    m->slots[i].rank = rank;
    m->slots[i].merged = merged;
}

const tok_merge_slot *tok_merges_get(const tok_merges *m, int32_t left, int32_t right)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t i = merge_hash(key, m->mask);
    for (;;) {
        const tok_merge_slot *s = &m->slots[i];
        if (s->key == key)
            return s;
        if (s->key == TOK_MERGE_EMPTY)
            return NULL;
        i = (i + 1) & m->mask;
    }
}

void tok_merges_free(tok_merges *m)
{
    bg_free(m->slots);
    memset(m, 0, sizeof *m);
}

void tok_bpe_free(tok_bpe *b)
{
    if (!b)
        return;
    tok_merges_free(&b->merges);
    bg_free(b->prepend);
    bg_free(b->space_rep);
    bg_free(b->ms_rep);
    for (size_t i = 0; i < b->n_dec; i++) {
        bg_free(b->dec[i].from);
        bg_free(b->dec[i].to);
    }
    bg_free(b->dec);
    bg_free(b);
}

/* ---- model --------------------------------------------------------------- */

static bgeicl_code nomem(const tok_jctx *c)
{
    return bg_fail(c->err, BGEICL_ERR_NOMEM, "%s: out of memory", c->path);
}

/* One merge: "a b" (exactly one space, the older format) or ["a", "b"]. */
static bgeicl_code merge_parts(const tok_jctx *c, const cJSON *e, size_t rank, const char **a,
                               size_t *alen, const char **b, size_t *blen)
{
    if (cJSON_IsString(e)) {
        const char *s = e->valuestring, *sp = strchr(s, ' ');
        if (sp && !strchr(sp + 1, ' ')) {
            *a = s, *alen = (size_t)(sp - s), *b = sp + 1, *blen = strlen(sp + 1);
            return BGEICL_OK;
        }
    } else if (cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) &&
               cJSON_IsString(e->child->next)) {
        *a = e->child->valuestring, *alen = strlen(*a);
        *b = e->child->next->valuestring, *blen = strlen(*b);
        return BGEICL_OK;
    }
    return bg_fail(c->err, BGEICL_ERR_FORMAT,
                   "%s: model.merges[%zu] must be \"left right\" or [\"left\", \"right\"]",
                   c->path, rank);
}

static bgeicl_code merge_token(const tok_jctx *c, const tok_vocab *v, size_t rank, const char *s,
                               size_t len, int32_t *id)
{
    *id = tok_vocab_find(v, s, len);
    if (*id >= 0)
        return BGEICL_OK;
    return bg_fail(c->err, BGEICL_ERR_FORMAT, "%s: model.merges[%zu]: \"%.*s\" is not in model.vocab",
                   c->path, rank, (int)(len > 200 ? 200 : len), s);
}

static bgeicl_code load_merges(const tok_jctx *c, tok_tokenizer *t, const cJSON *list)
{
    if (!cJSON_IsArray(list))
        return bg_fail(c->err, BGEICL_ERR_FORMAT, "%s: field model.merges must be an array",
                       c->path);
    if (tok_merges_alloc(&t->bpe->merges, (size_t)cJSON_GetArraySize(list)) != 0)
        return nomem(c);
    size_t rank = 0;
    for (const cJSON *e = list->child; e; e = e->next, rank++) {
        const char *a = "", *b = "";
        size_t alen = 0, blen = 0;
        int32_t left, right;
        bgeicl_code rc = merge_parts(c, e, rank, &a, &alen, &b, &blen);
        if (rc == BGEICL_OK)
            rc = merge_token(c, &t->vocab, rank, a, alen, &left);
        if (rc == BGEICL_OK)
            rc = merge_token(c, &t->vocab, rank, b, blen, &right);
        if (rc != BGEICL_OK)
            return rc;
        uint64_t h = TOK_HASH_INIT;
        for (size_t i = 0; i < alen; i++)
            h = tok_hash_step(h, (unsigned char)a[i]);
        for (size_t i = 0; i < blen; i++)
            h = tok_hash_step(h, (unsigned char)b[i]);
        int32_t merged = tok_vocab_find2(&t->vocab, tok_hash_final(h), a, alen, b, blen);
        if (merged < 0)
            return bg_fail(c->err, BGEICL_ERR_FORMAT,
                           "%s: model.merges[%zu]: the merged token \"%.*s%.*s\" is not in "
                           "model.vocab", c->path, rank, (int)(alen > 100 ? 100 : alen), a,
                           (int)(blen > 100 ? 100 : blen), b);
        tok_merges_put(&t->bpe->merges, left, right, (uint32_t)rank, merged);
    }
    return BGEICL_OK;
}

/* Settings of the library's BPE that change results and that we do not
 * implement must be absent, null or neutral. */
static bgeicl_code check_unsupported(const tok_jctx *c, const cJSON *model)
{
    static const char *const strs[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, strs[i]);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !v->valuestring[0]))
            return tok_json_unsupported(c, "model", strs[i], "BPE without it");
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (d && !cJSON_IsNull(d) && !(cJSON_IsNumber(d) && d->valuedouble == 0))
        return tok_json_unsupported(c, "model", "dropout", "BPE without dropout");
    int ignore = 0;
    bgeicl_code rc = tok_json_bool(c, model, "ignore_merges", "model.ignore_merges", &ignore);
    if (rc == BGEICL_OK && ignore)
        rc = tok_json_unsupported(c, "model.ignore_merges", "true", "false");
    return rc;
}

static bgeicl_code load_byte_ids(const tok_jctx *c, tok_tokenizer *t)
{
    tok_bpe *b = t->bpe;
    for (int i = 0; i < 256; i++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", i);
        b->byte_id[i] = tok_vocab_find(&t->vocab, name, 6);
        if (b->byte_fallback && b->byte_id[i] < 0)
            return tok_json_unsupported(c, "model.byte_fallback", "with a missing <0xNN> token",
                                        "byte_fallback with all 256 byte tokens");
    }
    for (int i = 0; i < 128; i++) {
        char ch = (char)i;
        b->ascii_id[i] = tok_vocab_find(&t->vocab, &ch, 1);
    }
    return BGEICL_OK;
}

bgeicl_code tok_bpe_load_model(const tok_jctx *c, tok_tokenizer *t, const cJSON *model)
{
    const cJSON *vocab = NULL;
    const char *unk = NULL;
    bgeicl_code rc = check_unsupported(c, model);
    if (rc == BGEICL_OK)
        rc = tok_json_bool(c, model, "byte_fallback", "model.byte_fallback",
                           &t->bpe->byte_fallback);
    if (rc == BGEICL_OK)
        rc = tok_json_bool(c, model, "fuse_unk", "model.fuse_unk", &t->bpe->fuse_unk);
    if (rc == BGEICL_OK)
        rc = tok_json_str(c, model, "unk_token", "model.unk_token", &unk);
    if (rc == BGEICL_OK)
        rc = tok_json_object(c, model, "vocab", "model.vocab", &vocab);
    if (rc == BGEICL_OK)
        rc = tok_load_json_vocab(c, t, vocab);
    if (rc != BGEICL_OK)
        return rc;
    t->unk_id = unk ? tok_vocab_find(&t->vocab, unk, strlen(unk)) : -1;
    if (unk && t->unk_id < 0)
        return bg_fail(c->err, BGEICL_ERR_FORMAT,
                       "%s: model.unk_token \"%s\" is not in model.vocab", c->path, unk);
    rc = load_byte_ids(c, t);
    if (rc == BGEICL_OK)
        rc = load_merges(c, t, cJSON_GetObjectItemCaseSensitive(model, "merges"));
    return rc;
}

/* ---- normalizer and pre-tokenizer ---------------------------------------- */

static bgeicl_code dup_field(const tok_jctx *c, const cJSON *obj, const char *key,
                             const char *field, char **out)
{
    const char *s = NULL;
    bgeicl_code rc = tok_json_str(c, obj, key, field, &s);
    if (rc != BGEICL_OK)
        return rc;
    if (!s)
        return tok_json_missing(c, field);
    if (!(*out = bg_strdup(s)))
        return nomem(c);
    return BGEICL_OK;
}

/* Replace's pattern: {"String": "x"}; *lit is NULL for a Regex pattern. */
static bgeicl_code replace_pattern(const tok_jctx *c, const cJSON *n, const char *field,
                                   const char **lit)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(n, "pattern");
    const cJSON *s = cJSON_IsObject(p) ? cJSON_GetObjectItemCaseSensitive(p, "String") : NULL;
    *lit = cJSON_IsString(s) ? s->valuestring : NULL;
    if (!cJSON_IsObject(p))
        return tok_json_missing(c, field);
    return BGEICL_OK;
}

static bgeicl_code load_norm_one(const tok_jctx *c, tok_bpe *b, const cJSON *n)
{
    const char *type = NULL, *lit = NULL;
    bgeicl_code rc = tok_json_type(c, n, "normalizer.type", &type);
    if (rc != BGEICL_OK)
        return rc;
    if (strcmp(type, "Prepend") == 0 && !b->prepend) {
        rc = dup_field(c, n, "prepend", "normalizer.prepend", &b->prepend);
        if (rc == BGEICL_OK && strchr(b->prepend, ' '))
            rc = tok_json_unsupported(c, "normalizer.prepend", "with a space",
                                      "a prefix without spaces");
        return rc;
    }
    if (strcmp(type, "Replace") == 0 && !b->space_rep) {
        if ((rc = replace_pattern(c, n, "normalizer.pattern", &lit)) != BGEICL_OK)
            return rc;
        if (!lit || strcmp(lit, " ") != 0)
            return tok_json_unsupported(c, "normalizer.pattern", "(not \" \")",
                                        "Replace of \" \"");
        rc = dup_field(c, n, "content", "normalizer.content", &b->space_rep);
        if (rc == BGEICL_OK && !b->space_rep[0])
            rc = tok_json_unsupported(c, "normalizer.content", "\"\"", "a non-empty content");
        return rc;
    }
    return tok_json_unsupported(c, "normalizer.type", type,
                                "Prepend and Replace(\" \"), once each, for BPE");
}

static bgeicl_code load_normalizer(const tok_jctx *c, tok_bpe *b, const cJSON *root)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    const char *type = NULL;
    if (!n || cJSON_IsNull(n))
        return BGEICL_OK;
    bgeicl_code rc = tok_json_type(c, n, "normalizer.type", &type);
    if (rc != BGEICL_OK || strcmp(type, "Sequence") != 0)
        return rc != BGEICL_OK ? rc : load_norm_one(c, b, n);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
    if (!cJSON_IsArray(list))
        return tok_json_missing(c, "normalizer.normalizers");
    for (const cJSON *e = list->child; e && rc == BGEICL_OK; e = e->next)
        rc = load_norm_one(c, b, e);
    return rc;
}

/* Metaspace's prepend_scheme, with the older add_prefix_space spelling. */
static bgeicl_code prepend_scheme(const tok_jctx *c, const cJSON *p, const char *field, int *out)
{
    const char *s = NULL;
    int add_prefix = 1;
    bgeicl_code rc = tok_json_str(c, p, "prepend_scheme", field, &s);
    if (rc == BGEICL_OK)
        rc = tok_json_bool(c, p, "add_prefix_space", field, &add_prefix);
    if (rc != BGEICL_OK)
        return rc;
    *out = !s ? TOK_MS_ALWAYS
              : strcmp(s, "first") == 0 ? TOK_MS_FIRST
              : strcmp(s, "never") == 0 ? TOK_MS_NEVER
              : strcmp(s, "always") == 0 ? TOK_MS_ALWAYS : -1;
    if (*out < 0)
        return tok_json_unsupported(c, field, s, "always, first or never");
    if (!add_prefix && s && *out != TOK_MS_NEVER)
        return bg_fail(c->err, BGEICL_ERR_FORMAT,
                       "%s: %s contradicts add_prefix_space false", c->path, field);
    if (!add_prefix)
        *out = TOK_MS_NEVER;
    return BGEICL_OK;
}

/* A replacement that is exactly one UTF-8 char, as the library's `char`. */
static bgeicl_code one_char(const tok_jctx *c, const char *s, const char *field)
{
    int32_t cp;
    size_t n = s[0] ? tok_utf8_decode((const unsigned char *)s, strlen(s), &cp) : 0;
    if (n == 0 || s[n] != '\0')
        return bg_fail(c->err, BGEICL_ERR_FORMAT, "%s: field %s must be one character",
                       c->path, field);
    return BGEICL_OK;
}

static bgeicl_code load_pretok(const tok_jctx *c, tok_bpe *b, const cJSON *root)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const char *type = NULL;
    if (!p || cJSON_IsNull(p))
        return BGEICL_OK;
    bgeicl_code rc = tok_json_type(c, p, "pre_tokenizer.type", &type);
    if (rc == BGEICL_OK && strcmp(type, "Metaspace") != 0)
        return tok_json_unsupported(c, "pre_tokenizer.type", type, "Metaspace or null for BPE");
    b->ms_split = 1;
    if (rc == BGEICL_OK)
        rc = dup_field(c, p, "replacement", "pre_tokenizer.replacement", &b->ms_rep);
    if (rc == BGEICL_OK)
        rc = one_char(c, b->ms_rep, "pre_tokenizer.replacement");
    if (rc == BGEICL_OK)
        rc = prepend_scheme(c, p, "pre_tokenizer.prepend_scheme", &b->ms_prepend);
    if (rc == BGEICL_OK)
        rc = tok_json_bool(c, p, "split", "pre_tokenizer.split", &b->ms_split);
    return rc;
}

/* ---- decoder -------------------------------------------------------------- */

/* Reads one decoder step. Returns BGEICL_OK with *known 0 for a step we do
 * not implement (decoding is then unsupported, loading still succeeds). */
static bgeicl_code load_dec_step(const tok_jctx *c, const cJSON *d, tok_dec_step *s, int *known)
{
    const char *type = NULL, *lit = NULL;
    bgeicl_code rc = tok_json_type(c, d, "decoder.type", &type);
    *known = 1;
    memset(s, 0, sizeof *s);
    if (rc != BGEICL_OK)
        return rc;
    if (strcmp(type, "ByteFallback") == 0 || strcmp(type, "Fuse") == 0) {
        s->kind = type[0] == 'B' ? TOK_DEC_BYTE_FALLBACK : TOK_DEC_FUSE;
    } else if (strcmp(type, "Replace") == 0) {
        s->kind = TOK_DEC_REPLACE;
        rc = replace_pattern(c, d, "decoder.pattern", &lit);
        if (rc == BGEICL_OK && (!lit || !lit[0]))
            return *known = 0, BGEICL_OK;
        if (rc == BGEICL_OK && !(s->from = bg_strdup(lit)))
            rc = nomem(c);
        if (rc == BGEICL_OK)
            rc = dup_field(c, d, "content", "decoder.content", &s->to);
    } else if (strcmp(type, "Strip") == 0) {
        s->kind = TOK_DEC_STRIP;
        rc = dup_field(c, d, "content", "decoder.content", &s->from);
        if (rc == BGEICL_OK)
            rc = one_char(c, s->from, "decoder.content");
        if (rc == BGEICL_OK)
            rc = tok_json_size(c, d, "start", "decoder.start", &s->start);
        if (rc == BGEICL_OK)
            rc = tok_json_size(c, d, "stop", "decoder.stop", &s->stop);
    } else if (strcmp(type, "Metaspace") == 0) {
        int scheme = TOK_MS_ALWAYS;
        s->kind = TOK_DEC_METASPACE;
        rc = dup_field(c, d, "replacement", "decoder.replacement", &s->from);
        if (rc == BGEICL_OK)
            rc = one_char(c, s->from, "decoder.replacement");
        if (rc == BGEICL_OK)
            rc = prepend_scheme(c, d, "decoder.prepend_scheme", &scheme);
        s->prepend_never = scheme == TOK_MS_NEVER;
    } else {
        *known = 0;
    }
    return rc;
}

static bgeicl_code load_decoder(const tok_jctx *c, tok_bpe *b, const cJSON *root)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    const char *type = NULL;
    if (!d || cJSON_IsNull(d))
        return BGEICL_OK;
    bgeicl_code rc = tok_json_type(c, d, "decoder.type", &type);
    if (rc != BGEICL_OK)
        return rc;
    const cJSON *list = strcmp(type, "Sequence") == 0
                            ? cJSON_GetObjectItemCaseSensitive(d, "decoders") : NULL;
    size_t n = list ? (size_t)cJSON_GetArraySize(list) : 1;
    if (list && !cJSON_IsArray(list))
        return tok_json_missing(c, "decoder.decoders");
    if (!(b->dec = bg_calloc(n ? n : 1, sizeof *b->dec)))
        return nomem(c);
    int all_known = 1;
    for (const cJSON *e = list ? list->child : d; e && b->n_dec < n; e = e->next) {
        int known;
        rc = load_dec_step(c, e, &b->dec[b->n_dec], &known);
        b->n_dec++; /* counted even on failure, so tok_bpe_free releases it */
        if (rc != BGEICL_OK)
            return rc;
        all_known &= known;
    }
    b->has_decoder = all_known;
    return BGEICL_OK;
}

bgeicl_code tok_bpe_load_pipeline(const tok_jctx *c, tok_tokenizer *t, const cJSON *root)
{
    bgeicl_code rc = load_normalizer(c, t->bpe, root);
    if (rc == BGEICL_OK)
        rc = load_pretok(c, t->bpe, root);
    if (rc == BGEICL_OK)
        rc = load_decoder(c, t->bpe, root);
    return rc;
}
