/*
 * tok_pretok.c - BertPreTokenizer: words end at whitespace (which is
 * dropped) and every punctuation char is a word of its own. Each finished
 * word goes straight to WordPiece, so no list of words is ever built.
 *
 * The word under construction is r->word (invariants in tok_internal.h).
 */
#include <string.h>

#include "tok_internal.h"
#include "tok_unicode.h"

int tok_enc_reserve(tok_encoding *enc, size_t extra)
{
    size_t need = enc->n + extra;
    if (need <= enc->cap)
        return 0;
    size_t cap = enc->cap ? enc->cap : 64;
    while (cap < need)
        cap *= 2;
    /* Grow each array; on failure the ones already grown stay valid and cap
     * keeps its old (smaller) value, so the encoding remains consistent. */
    int32_t *ids = bg_realloc(enc->ids, cap * sizeof *ids);
    if (!ids)
        return -1;
    enc->ids = ids;
    uint32_t *st = bg_realloc(enc->start, cap * sizeof *st);
    if (!st)
        return -1;
    enc->start = st;
    uint32_t *en = bg_realloc(enc->end, cap * sizeof *en);
    if (!en)
        return -1;
    enc->end = en;
    enc->cap = cap;
    return 0;
}

static void check_limit(tok_run *r)
{
    if (r->enc->n - r->content0 > r->limit)
        r->stop = 1;
}

void tok_emit(tok_run *r, int32_t id, uint32_t start, uint32_t end)
{
    tok_encoding *enc = r->enc;
    if (enc->n == enc->cap && tok_enc_reserve(enc, 1) != 0) {
        r->rc = BGEICL_ERR_NOMEM;
        r->stop = 1;
        return;
    }
    enc->ids[enc->n] = id;
    enc->start[enc->n] = start;
    enc->end[enc->n] = end;
    enc->n++;
    check_limit(r);
}

void tok_pretok_end_word(tok_run *r)
{
    if (r->word.nchars == 0)
        return;
    tok_wordpiece(r);
    r->word.nchars = 0;
    r->word.len = 0;
    check_limit(r);
}

/* Moves the word into a heap block of `cap` bytes (see tok_word). */
static int word_grow(tok_word *w, size_t cap)
{
    size_t per = 1 + 3 * sizeof(uint32_t); /* bytes, ostart, oend, hash */
    char *block = bg_malloc(cap * per + sizeof(uint32_t));
    if (!block) {
        w->oom = 1;
        return -1;
    }
    uint32_t *ostart = (uint32_t *)block, *oend = ostart + cap, *hash = oend + cap;
    unsigned char *bytes = (unsigned char *)(hash + cap + 1);
    memcpy(bytes, w->bytes, w->len);
    memcpy(ostart, w->ostart, w->len * sizeof *ostart);
    memcpy(oend, w->oend, w->len * sizeof *oend);
    if (w->heap)
        bg_free(w->ostart);
    w->bytes = bytes;
    w->ostart = ostart;
    w->oend = oend;
    w->hash = hash;
    w->cap = cap;
    w->heap = 1;
    return 0;
}

int tok_word_room(tok_word *w, size_t n)
{
    if (w->len + n <= w->cap)
        return 0;
    if (w->oom || w->len + n > w->limit)
        return -1;
    size_t cap = 2 * w->cap > w->len + n ? 2 * w->cap : w->len + n;
    return word_grow(w, cap < w->limit ? cap : w->limit);
}

/* Appends a char to the word (its bytes only while it has room). */
static void word_push(tok_word *w, int32_t cp, tok_span span)
{
    unsigned char buf[4];
    size_t n = tok_utf8_encode(cp, buf);
    if (w->nchars == 0)
        w->first_start = span.start;
    w->last_end = span.end;
    w->nchars++;
    if (tok_word_room(w, n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        w->bytes[w->len + i] = buf[i];
        w->ostart[w->len + i] = span.start;
        w->oend[w->len + i] = span.end;
    }
    w->len += n;
}

void tok_pretok_char(tok_run *r, int32_t cp, tok_span span)
{
    unsigned f = tok_u_flags(cp);
    if (f & TOK_U_WS) {
        tok_pretok_end_word(r);
    } else if (f & TOK_U_PUNCT) {
        tok_pretok_end_word(r);
        word_push(&r->word, cp, span);
        tok_pretok_end_word(r);
    } else {
        word_push(&r->word, cp, span);
    }
}
