/*
 * tok_wordpiece.c - WordPiece, greedy longest-match-first, as the
 * tokenizers library does it:
 *   - a word of more than max_input_chars_per_word chars is one [UNK];
 *   - from each start, try the longest remaining piece first, shortening by
 *     one char at a time; pieces after the first carry the continuing
 *     prefix ("##");
 *   - if some start has no match, the whole word is one [UNK].
 * Offsets of a piece [s, e) of normalized bytes are (ostart[s], oend[e-1]),
 * of a whole-word [UNK] (first char's start, last char's end).
 *
 * Two exact shortcuts: a candidate longer than the longest vocabulary string
 * cannot match, so candidates start at that length; and the hash of every
 * candidate from one start is built in one incremental pass (word.hash).
 */
#include "tok_internal.h"

static int is_boundary(const tok_word *w, size_t i)
{
    return i == w->len || (w->bytes[i] & 0xC0) != 0x80;
}

/* Longest vocabulary match starting at byte `start`: returns its end, or 0. */
static size_t longest_match(const tok_tokenizer *t, tok_word *w, size_t start, int32_t *id)
{
    const char *pre = start ? t->prefix : "";
    size_t pre_len = start ? t->prefix_len : 0;
    size_t max = start ? t->max_cont_len : t->max_first_len;
    size_t lim = w->len - start < max ? w->len : start + max;
    uint64_t h = start ? t->prefix_hash : TOK_HASH_INIT;
    for (size_t i = start; i < lim; i++) {
        h = tok_hash_step(h, w->bytes[i]);
        w->hash[i + 1] = tok_hash_final(h);
    }
    for (size_t end = lim; end > start; end--) {
        if (!is_boundary(w, end))
            continue;
        *id = tok_vocab_find2(&t->vocab, w->hash[end], pre, pre_len,
                              (const char *)w->bytes + start, end - start);
        if (*id >= 0)
            return end;
    }
    return 0;
}

void tok_wordpiece(tok_run *r)
{
    const tok_tokenizer *t = r->tok;
    tok_word *w = &r->word;
    tok_encoding *enc = r->enc;
    if (w->oom) {
        r->rc = BGEICL_ERR_NOMEM;
        r->stop = 1;
        return;
    }
    if (w->nchars > t->max_word_chars) {
        tok_emit(r, t->unk_id, w->first_start, w->last_end);
        return;
    }
    /* Every piece has at least one byte. */
    if (tok_enc_reserve(enc, w->len) != 0) {
        r->rc = BGEICL_ERR_NOMEM;
        r->stop = 1;
        return;
    }
    size_t n0 = enc->n;
    for (size_t start = 0; start < w->len;) {
        int32_t id;
        size_t end = longest_match(t, w, start, &id);
        if (end == 0) {
            enc->n = n0;
            tok_emit(r, t->unk_id, w->first_start, w->last_end);
            return;
        }
        enc->ids[enc->n] = id;
        enc->start[enc->n] = w->ostart[start];
        enc->end[enc->n] = w->oend[end - 1];
        enc->n++;
        start = end;
    }
}
