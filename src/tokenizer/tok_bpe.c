/*
 * tok_bpe.c - tok_encode for SentencePiece-style BPE tokenizers (data
 * structures and invariants in tok_bpe.h).
 *
 * Pipeline, as the tokenizers library runs it:
 *
 *   input bytes
 *     -> added tokens split out on the raw text (tok_added.c, shared)
 *     -> per segment, the normalizer: Prepend(p) puts p before the first
 *        char, Replace(" ", r) turns each space into r; every normalized char
 *        keeps the byte span of the original char it came from (a prepended
 *        char takes the span of the first char, as the library aligns it)
 *     -> the Metaspace pre-tokenizer, if any: spaces -> replacement, the
 *        replacement prepended (always, or only at input offset 0 for
 *        "first") unless the segment already starts with it, and with split
 *        on, a new word before every replacement char
 *     -> per word: one symbol per char in the vocabulary, else one per byte
 *        (<0xNN>) with byte_fallback, else [unk] (consecutive ones fused with
 *        fuse_unk); then merges by rank (heap, tok_bpe.h)
 *     -> ids with offsets = span of the first symbol's char .. last one's.
 *
 * A segment is merged as a whole (without a pre-tokenizer the library treats
 * it as one word), so truncation can only stop between segments; the tokens
 * past the limit are then dropped from the end.
 */
#include <string.h>

#include "tok_bpe.h"
#include "tok_unicode.h"

typedef struct bpe_sym {
    int32_t id; /* -1: merged into its left neighbour */
    int32_t prev, next;
    uint32_t start, end; /* original byte span */
} bpe_sym;

typedef struct bpe_qent {
    uint32_t rank, pos;
    int32_t merged;
} bpe_qent;

typedef struct bpe_run {
    const tok_tokenizer *t;
    const tok_bpe *b;
    bpe_sym *sy;
    size_t n, cap, word0; /* word0: first symbol of the current word */
    bpe_qent *q;
    size_t qn, qcap;
    int have_unk, oom;
    uint32_t unk_start, unk_end;
    int seg_first;      /* no normalized char seen yet in this segment */
    uint32_t seg_start; /* original offset of the segment */
} bpe_run;

/* ---- symbols --------------------------------------------------------------- */

static void push_sym(bpe_run *r, int32_t id, uint32_t start, uint32_t end)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 256;
        bpe_sym *grown = cap > INT32_MAX ? NULL : bg_realloc(r->sy, cap * sizeof *grown);
        if (!grown) {
            r->oom = 1;
            return;
        }
        r->sy = grown;
        r->cap = cap;
    }
    bpe_sym *s = &r->sy[r->n];
    s->id = id;
    s->start = start;
    s->end = end;
    s->prev = r->n > r->word0 ? (int32_t)r->n - 1 : -1;
    s->next = (int32_t)r->n + 1; /* closed by end_word */
    r->n++;
}

static void flush_unk(bpe_run *r)
{
    if (r->have_unk)
        push_sym(r, r->t->unk_id, r->unk_start, r->unk_end);
    r->have_unk = 0;
}

static void end_word(bpe_run *r)
{
    flush_unk(r);
    if (r->n > r->word0)
        r->sy[r->n - 1].next = -1;
    r->word0 = r->n;
}

/* One char of a word, as the model's initial split does it. */
static void put_char(bpe_run *r, const unsigned char *s, size_t n, uint32_t start, uint32_t end)
{
    const tok_bpe *b = r->b;
    int32_t id = n == 1 && s[0] < 0x80 ? b->ascii_id[s[0]]
                                       : tok_vocab_find(&r->t->vocab, (const char *)s, n);
    if (id >= 0) {
        flush_unk(r);
        push_sym(r, id, start, end);
    } else if (b->byte_fallback) { /* all 256 byte tokens exist (checked at load) */
        flush_unk(r);
        for (size_t i = 0; i < n; i++)
            push_sym(r, b->byte_id[s[i]], start, end);
    } else if (r->t->unk_id < 0) {
        return; /* no unk token: the library drops the char */
    } else if (r->have_unk && b->fuse_unk) {
        r->unk_end = end;
    } else {
        flush_unk(r);
        r->have_unk = 1;
        r->unk_start = start;
        r->unk_end = end;
    }
}

static size_t char_len(const unsigned char *s, size_t n)
{
    int32_t cp;
    size_t k = tok_utf8_decode(s, n, &cp);
    return k ? k : 1;
}

static int is_str(const unsigned char *s, size_t n, const char *lit)
{
    return lit && strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* ---- normalizer and pre-tokenizer ------------------------------------------- */

/* One normalized char: the Metaspace pre-tokenizer's part, then the model. */
static void pretok_char(bpe_run *r, const unsigned char *s, size_t n, uint32_t start,
                        uint32_t end)
{
    const tok_bpe *b = r->b;
    const unsigned char *rep = (const unsigned char *)b->ms_rep;
    size_t rep_len = rep ? strlen(b->ms_rep) : 0;
    if (rep && n == 1 && s[0] == ' ')
        s = rep, n = rep_len;
    if (r->seg_first && rep) {
        int prepend = b->ms_prepend == TOK_MS_ALWAYS ||
                      (b->ms_prepend == TOK_MS_FIRST && r->seg_start == 0);
        if (prepend && !is_str(s, n, b->ms_rep))
            put_char(r, rep, rep_len, start, end);
    }
    r->seg_first = 0;
    if (rep && b->ms_split && is_str(s, n, b->ms_rep))
        end_word(r); /* the replacement starts a new word */
    put_char(r, s, n, start, end);
}

/* Every char of a short UTF-8 string, all with one span. */
static void pretok_str(bpe_run *r, const char *str, uint32_t start, uint32_t end)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    for (size_t i = 0; i < n;) {
        size_t k = char_len(s + i, n - i);
        pretok_char(r, s + i, k, start, end);
        i += k;
    }
}

/* The normalizer over text[pos, end) (valid UTF-8, no added tokens). */
static void normalize_segment(bpe_run *r, const unsigned char *text, size_t pos, size_t end)
{
    const tok_bpe *b = r->b;
    r->seg_first = 1;
    r->seg_start = (uint32_t)pos;
    if (b->prepend && pos < end)
        pretok_str(r, b->prepend, (uint32_t)pos, (uint32_t)(pos + char_len(text + pos, end - pos)));
    while (pos < end && !r->oom) {
        size_t k = char_len(text + pos, end - pos);
        if (text[pos] == ' ' && b->space_rep)
            pretok_str(r, b->space_rep, (uint32_t)pos, (uint32_t)pos + 1);
        else
            pretok_char(r, text + pos, k, (uint32_t)pos, (uint32_t)(pos + k));
        pos += k;
    }
    end_word(r);
}

/* ---- merges ---------------------------------------------------------------- */

static int q_less(const bpe_qent *a, const bpe_qent *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void q_push(bpe_run *r, uint32_t rank, uint32_t pos, int32_t merged)
{
    size_t i = r->qn++; /* room reserved by merge_all */
    bpe_qent e = {rank, pos, merged};
    while (i > 0 && q_less(&e, &r->q[(i - 1) / 2])) {
        r->q[i] = r->q[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    r->q[i] = e;
}

static bpe_qent q_pop(bpe_run *r)
{
    bpe_qent top = r->q[0], last = r->q[--r->qn];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= r->qn)
            break;
        if (c + 1 < r->qn && q_less(&r->q[c + 1], &r->q[c]))
            c++;
        if (!q_less(&r->q[c], &last))
            break;
        r->q[i] = r->q[c];
        i = c;
    }
    if (r->qn)
        r->q[i] = last;
    return top;
}

/* Queues the pair starting at symbol pos, if it has a merge. */
static void queue_pair(bpe_run *r, int32_t pos)
{
    int32_t nx = r->sy[pos].next;
    if (nx < 0)
        return;
    const tok_merge_slot *m = tok_merges_get(&r->b->merges, r->sy[pos].id, r->sy[nx].id);
    if (m)
        q_push(r, m->rank, (uint32_t)pos, m->merged);
}

static void merge_all(bpe_run *r)
{
    /* n initial pairs at most, and each merge queues at most two more. */
    size_t need = 3 * r->n + 1;
    if (need > r->qcap) {
        bpe_qent *q = bg_realloc(r->q, need * sizeof *q);
        if (!q) {
            r->oom = 1;
            return;
        }
        r->q = q;
        r->qcap = need;
    }
    r->qn = 0;
    for (size_t i = 0; i < r->n; i++)
        queue_pair(r, (int32_t)i);
    while (r->qn) {
        bpe_qent top = q_pop(r);
        bpe_sym *a = &r->sy[top.pos];
        if (a->id < 0 || a->next < 0)
            continue;
        bpe_sym *c = &r->sy[a->next];
        const tok_merge_slot *m = tok_merges_get(&r->b->merges, a->id, c->id);
        if (!m || m->merged != top.merged)
            continue; /* stale: a neighbour changed since it was queued */
        a->id = top.merged;
        a->end = c->end;
        a->next = c->next;
        c->id = -1;
        if (a->next >= 0)
            r->sy[a->next].prev = (int32_t)top.pos;
        if (a->prev >= 0)
            queue_pair(r, a->prev);
        queue_pair(r, (int32_t)top.pos);
    }
}

/* ---- encode ---------------------------------------------------------------- */

static int emit_symbols(bpe_run *r, tok_encoding *enc)
{
    size_t live = 0;
    for (size_t i = 0; i < r->n; i++)
        live += r->sy[i].id >= 0;
    if (tok_enc_reserve(enc, live) != 0)
        return -1;
    for (size_t i = 0; i < r->n; i++) {
        if (r->sy[i].id < 0)
            continue;
        enc->ids[enc->n] = r->sy[i].id;
        enc->start[enc->n] = r->sy[i].start;
        enc->end[enc->n] = r->sy[i].end;
        enc->n++;
    }
    return 0;
}

static int encode_segment(bpe_run *r, const unsigned char *text, size_t pos, size_t end,
                          tok_encoding *enc)
{
    r->n = r->word0 = 0;
    r->have_unk = 0;
    normalize_segment(r, text, pos, end);
    if (!r->oom)
        merge_all(r);
    return r->oom || emit_symbols(r, enc) != 0 ? -1 : 0;
}

static int emit_one(tok_encoding *enc, int32_t id, uint32_t start, uint32_t end)
{
    if (tok_enc_reserve(enc, 1) != 0)
        return -1;
    enc->ids[enc->n] = id;
    enc->start[enc->n] = start;
    enc->end[enc->n] = end;
    enc->n++;
    return 0;
}

/* Segments and added tokens until the content passes `limit` tokens. */
static int encode_all(bpe_run *r, const char *text, size_t len, tok_encoding *enc,
                      size_t content0, size_t limit)
{
    size_t pos = 0;
    while (pos < len && enc->n - content0 <= limit) {
        size_t mlen = 0;
        int32_t id = -1;
        size_t next = tok_added_next(&r->t->added, text, len, pos, &mlen, &id);
        if (encode_segment(r, (const unsigned char *)text, pos, next, enc) != 0)
            return -1;
        if (next < len && emit_one(enc, id, (uint32_t)next, (uint32_t)(next + mlen)) != 0)
            return -1;
        pos = next + mlen;
    }
    return 0;
}

static size_t utf8_bad_at(const unsigned char *s, size_t len)
{
    for (size_t pos = 0; pos < len;) {
        int32_t cp;
        size_t n = tok_utf8_decode(s + pos, len - pos, &cp);
        if (n == 0)
            return pos;
        pos += n;
    }
    return len;
}

static bgeicl_code put_specials(tok_encoding *enc, const int32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (emit_one(enc, ids[i], 0, 0) != 0)
            return BGEICL_ERR_NOMEM;
    return BGEICL_OK;
}

/* The shared argument checks, plus UTF-8: the byte-level merges would
 * otherwise carry invalid bytes into <0xNN> tokens silently. */
static bgeicl_code check_args(const tok_tokenizer *t, const char *text, size_t len,
                              size_t n_spec, size_t max_len, tok_encoding *enc, bg_err *err)
{
    bgeicl_code rc = tok_check_args(t, text, len, n_spec, max_len, enc, err);
    if (rc != BGEICL_OK)
        return rc;
    size_t bad = utf8_bad_at((const unsigned char *)text, len);
    if (bad < len)
        return bg_fail(err, BGEICL_ERR_ARG, "tokenize: input is not valid UTF-8 at byte %zu",
                       bad);
    return BGEICL_OK;
}

bgeicl_code tok_bpe_encode(const tok_tokenizer *t, const char *text, size_t len,
                           int add_special, size_t max_len, tok_encoding *enc, int *truncated,
                           bg_err *err)
{
    size_t n_pre = add_special ? t->n_pre : 0, n_post = add_special ? t->n_post : 0;
    bgeicl_code rc = check_args(t, text, len, n_pre + n_post, max_len, enc, err);
    if (rc != BGEICL_OK)
        return rc;
    bpe_run r;
    memset(&r, 0, sizeof r);
    r.t = t;
    r.b = t->bpe;
    enc->n = 0;
    size_t limit = max_len ? max_len - n_pre - n_post : SIZE_MAX - 1;
    rc = put_specials(enc, t->pre_ids, n_pre);
    if (rc == BGEICL_OK && encode_all(&r, text, len, enc, n_pre, limit) != 0)
        rc = BGEICL_ERR_NOMEM;
    if (rc == BGEICL_OK && enc->n - n_pre > limit) {
        enc->n = n_pre + limit;
        if (truncated)
            *truncated = 1;
    }
    if (rc == BGEICL_OK)
        rc = put_specials(enc, t->post_ids, n_post);
    bg_free(r.sy);
    bg_free(r.q);
    if (rc != BGEICL_OK) {
        enc->n = 0;
        return bg_fail(err, rc, "tokenize: out of memory");
    }
    return BGEICL_OK;
}
