/*
 * tok_encode.c - tok_encode: one pass over the input, writing ids and byte
 * offsets straight into the caller's tok_encoding.
 *
 * The input is cut into segments at added tokens (tok_added.c). Inside a
 * segment, ASCII bytes take a table-driven fast path (class and lowercase
 * precomputed at load); other chars go through tok_normalize.c. All scratch
 * (the current word, the NFD run) lives in a tok_run on this function's
 * stack; only pathological inputs (words over 128 chars when the model
 * allows them, runs of over 16 combining marks) spill to the heap.
 *
 * Truncation keeps the first max_len - specials content tokens, so the pass
 * stops as soon as one token past the limit exists (the remaining bytes are
 * still checked for valid UTF-8).
 */
#include <string.h>

#include "tok_bpe.h"
#include "tok_internal.h"
#include "tok_unicode.h"

static void run_init(tok_run *r, const tok_tokenizer *t, tok_encoding *enc)
{
    memset(&r->word, 0, sizeof r->word);
    r->tok = t;
    r->enc = enc;
    r->stop = 0;
    r->rc = BGEICL_OK;
    r->nfd = r->nfd_inline;
    r->nfd_tmp = r->nfd_tmp_inline;
    r->nfd_src = r->nfd_src_inline;
    r->nfd_cap = TOK_NFD_INLINE;
    r->nfd_n = 0;
    tok_word *w = &r->word;
    w->bytes = r->word_bytes;
    w->ostart = r->word_ostart;
    w->oend = r->word_oend;
    w->hash = r->word_hash;
    /* 4 bytes per allowed char, saturating for absurd limits. */
    w->limit = t->max_word_chars > SIZE_MAX / 8 ? SIZE_MAX / 2 : 4 * t->max_word_chars;
    w->cap = w->limit < TOK_WORD_INLINE_BYTES ? w->limit : TOK_WORD_INLINE_BYTES;
}

static void run_release(tok_run *r)
{
    if (r->word.heap)
        bg_free(r->word.ostart); /* the start of the word's heap block */
    tok_norm_release(r);
}

/* Tokenizes s[pos, end) (no added tokens inside). Returns the position
 * reached: `end`, or less when r->stop was set or the bytes are not UTF-8
 * (then *bad is set). */
static size_t encode_segment(tok_run *r, const unsigned char *s, size_t pos, size_t end,
                             int *bad)
{
    const tok_tokenizer *t = r->tok;
    tok_norm_begin_segment(r, (uint32_t)pos);
    while (pos < end) {
        unsigned b = s[pos];
        if (b < 0x80 && r->nfd_n == 0) {
            switch (t->ascii_class[b]) {
            case TOK_A_WORD:
                tok_word_push1(&r->word, t->ascii_map[b], (uint32_t)pos, (uint32_t)pos + 1);
                break;
            case TOK_A_SPACE:
                tok_pretok_end_word(r);
                break;
            case TOK_A_PUNCT:
                tok_pretok_end_word(r);
                tok_emit(r, t->ascii_punct_id[b], (uint32_t)pos, (uint32_t)pos + 1);
                break;
            default: /* TOK_A_REMOVE */
                break;
            }
            pos++;
        } else {
            int32_t cp;
            size_t n = tok_utf8_decode(s + pos, end - pos, &cp);
            if (n == 0) {
                *bad = 1;
                return pos;
            }
            tok_norm_char(r, cp, (uint32_t)pos, (uint32_t)(pos + n));
            pos += n;
        }
        if (r->stop)
            return pos;
    }
    tok_norm_flush(r);
    tok_pretok_end_word(r);
    return pos;
}

/* Runs over all segments and added tokens. Returns the position reached. */
static size_t encode_all(tok_run *r, const char *text, size_t len, int *bad)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t pos = 0;
    while (pos < len && !r->stop && !*bad) {
        size_t mlen = 0;
        int32_t id = -1;
        size_t next = tok_added_next(&r->tok->added, text, len, pos, &mlen, &id);
        pos = encode_segment(r, s, pos, next, bad);
        if (pos == next && next < len && !r->stop && !*bad) {
            tok_emit(r, id, (uint32_t)next, (uint32_t)(next + mlen));
            pos = next + mlen;
        }
    }
    return pos;
}

/* Position of the first invalid UTF-8 sequence in s[pos, len), or len. */
static size_t utf8_bad_at(const unsigned char *s, size_t pos, size_t len)
{
    while (pos < len) {
        int32_t cp;
        size_t n = s[pos] < 0x80 ? 1 : tok_utf8_decode(s + pos, len - pos, &cp);
        if (n == 0)
            return pos;
        pos += n;
    }
    return len;
}

static bgeicl_code put_ids(tok_encoding *enc, const int32_t *ids, size_t n)
{
    if (tok_enc_reserve(enc, n) != 0)
        return BGEICL_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        enc->ids[enc->n] = ids[i];
        enc->start[enc->n] = 0;
        enc->end[enc->n] = 0;
        enc->n++;
    }
    return BGEICL_OK;
}

bgeicl_code tok_check_args(const tok_tokenizer *t, const char *text, size_t len, size_t n_spec,
                           size_t max_len, const tok_encoding *enc, bg_err *err)
{
    if (!t || !enc || (!text && len))
        return bg_fail(err, BGEICL_ERR_ARG, "tokenize: NULL argument");
    if (len > UINT32_MAX)
        return bg_fail(err, BGEICL_ERR_ARG, "tokenize: text of %zu bytes is over the 4 GiB limit",
                       len);
    if (max_len && max_len < n_spec)
        return bg_fail(err, BGEICL_ERR_ARG,
                       "tokenize: max length %zu leaves no room for the %zu special tokens",
                       max_len, n_spec);
    return BGEICL_OK;
}

bgeicl_code tok_encode(const tok_tokenizer *tok, const char *text, size_t len, int add_special,
                       size_t max_len, tok_encoding *enc, int *truncated, bg_err *err)
{
    tok_run r;
    int bad = 0;
    if (truncated)
        *truncated = 0;
    if (text && len == (size_t)-1)
        len = strlen(text);
    if (tok && tok->bpe) /* SentencePiece-style BPE: tok_bpe.c */
        return tok_bpe_encode(tok, text, len, add_special, max_len, enc, truncated, err);
    size_t n_pre = tok && add_special ? tok->n_pre : 0;
    size_t n_post = tok && add_special ? tok->n_post : 0;
    bgeicl_code rc = tok_check_args(tok, text, len, n_pre + n_post, max_len, enc, err);
    if (rc != BGEICL_OK)
        return rc;
    enc->n = 0;
    run_init(&r, tok, enc);
    if (put_ids(enc, tok->pre_ids, n_pre) != BGEICL_OK) {
        rc = bg_fail(err, BGEICL_ERR_NOMEM, "tokenize: out of memory");
        goto err;
    }
    r.content0 = enc->n;
    r.limit = max_len ? max_len - n_pre - n_post : SIZE_MAX;
    size_t pos = encode_all(&r, text, len, &bad);
    if (!bad && r.stop && r.rc == BGEICL_OK) { /* truncated: check the rest too */
        pos = utf8_bad_at((const unsigned char *)text, pos, len);
        bad = pos < len;
    }
    if (bad) {
        rc = bg_fail(err, BGEICL_ERR_ARG, "tokenize: input is not valid UTF-8 at byte %zu",
                     pos);
        goto err;
    }
    if (r.rc != BGEICL_OK) {
        rc = bg_fail(err, r.rc, "tokenize: out of memory");
        goto err;
    }
    if (enc->n - r.content0 > r.limit) {
        enc->n = r.content0 + r.limit;
        if (truncated)
            *truncated = 1;
    }
    if (put_ids(enc, tok->post_ids, n_post) != BGEICL_OK) {
        rc = bg_fail(err, BGEICL_ERR_NOMEM, "tokenize: out of memory");
        goto err;
    }
    run_release(&r);
    return BGEICL_OK;
err:
    run_release(&r);
    enc->n = 0;
    return rc;
}

void tok_encoding_free(tok_encoding *enc)
{
    if (!enc)
        return;
    bg_free(enc->ids);
    bg_free(enc->start);
    bg_free(enc->end);
    memset(enc, 0, sizeof *enc);
}
