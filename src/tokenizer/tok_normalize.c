/*
 * tok_normalize.c - BertNormalizer, streamed one char at a time.
 *
 * Stages, in the library's order, each passing (char, original span) on:
 *   clean_text       drop U+0000, U+FFFD and control chars (Cc Cf Cs Co but
 *                    \t \n \r); map whitespace to ' '
 *   handle_chinese   a CJK ideograph becomes ' ' c ' ', all three with the
 *                    ideograph's span
 *   strip_accents    NFD, then drop Mn (strip_accents null = lowercase)
 *   lowercase        Rust char::to_lowercase, which may yield 2 chars
 *
 * Alignment rules copied from NormalizedString::transform in the library:
 * a char that replaces a source char takes that source's span, and an
 * inserted char (2nd+ char of an expansion) takes the span of the source
 * consumed last. NFD is applied to the whole segment, so canonical
 * reordering can move marks across source chars; spans are then assigned
 * by POSITION: the k-th non-inserted output char takes the k-th source span
 * even when reordering moved a different char there. tok_nfd_flush keeps
 * that quirk.
 *
 * Invariant of the NFD run (r->nfd): it holds only decomposed chars with a
 * non-zero combining class, in input order, waiting for the next starter.
 */
#include <string.h>

#include "tok_internal.h"
#include "tok_unicode.h"

static void lower_stage(tok_run *r, int32_t cp, tok_span span)
{
    if (!r->tok->lowercase) {
        tok_pretok_char(r, cp, span);
        return;
    }
    int32_t out[2];
    int n = tok_u_lower(cp, out);
    for (int i = 0; i < n; i++)
        tok_pretok_char(r, out[i], span);
}

/* One NFD output char with its final span: drop it if Mn, else lowercase. */
static void nfd_out(tok_run *r, int32_t cp, tok_span span)
{
    if (cp >= 0x300 && (tok_u_flags(cp) & TOK_U_MN))
        return;
    lower_stage(r, cp, span);
}

/* Doubles the run's capacity: nfd, nfd_tmp and nfd_src share one block. */
static int nfd_grow(tok_run *r)
{
    size_t cap = r->nfd_cap * 2;
    size_t ent = cap * sizeof(tok_nfd_ent);
    char *block = bg_malloc(2 * ent + cap * sizeof(tok_span));
    if (!block) {
        r->rc = BGEICL_ERR_NOMEM;
        r->stop = 1;
        return -1;
    }
    memcpy(block, r->nfd, r->nfd_n * sizeof(tok_nfd_ent));
    if (r->nfd != r->nfd_inline)
        bg_free(r->nfd);
    r->nfd = (tok_nfd_ent *)block;
    r->nfd_tmp = (tok_nfd_ent *)(block + ent);
    r->nfd_src = (tok_span *)(block + 2 * ent);
    r->nfd_cap = cap;
    return 0;
}

/* Stable sort of the run by combining class: insertion sort for the usual
 * handful of marks, counting sort (linear) for long runs. */
static void nfd_sort(tok_run *r)
{
    tok_nfd_ent *e = r->nfd;
    size_t n = r->nfd_n;
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            tok_nfd_ent x = e[i];
            size_t j = i;
            for (; j > 0 && e[j - 1].ccc > x.ccc; j--)
                e[j] = e[j - 1];
            e[j] = x;
        }
        return;
    }
    size_t count[257] = {0};
    for (size_t i = 0; i < n; i++)
        count[e[i].ccc + 1]++;
    for (size_t c = 1; c < 257; c++)
        count[c] += count[c - 1];
    for (size_t i = 0; i < n; i++)
        r->nfd_tmp[count[e[i].ccc]++] = e[i];
    memcpy(e, r->nfd_tmp, n * sizeof *e);
}

/* Reorders the pending run and passes it on with positional spans. */
static void nfd_flush(tok_run *r)
{
    size_t n = r->nfd_n, k = 0;
    if (n == 0)
        return;
    /* The sources, in input order, of the chars that consume one. */
    for (size_t i = 0; i < n; i++)
        if (!r->nfd[i].inserted)
            r->nfd_src[k++] = r->nfd[i].src;
    nfd_sort(r);
    k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!r->nfd[i].inserted)
            r->nfd_last = r->nfd_src[k++];
        nfd_out(r, r->nfd[i].cp, r->nfd_last);
    }
    r->nfd_n = 0;
}

static void nfd_push(tok_run *r, int32_t cp, tok_span span)
{
    int32_t d[TOK_U_MAX_DECOMP];
    int n = tok_u_decompose(cp, d);
    for (int i = 0; i < n; i++) {
        int ccc = tok_u_ccc(d[i]);
        if (ccc == 0) {
            nfd_flush(r);
            if (i == 0)
                r->nfd_last = span;
            nfd_out(r, d[i], r->nfd_last);
            continue;
        }
        if (r->nfd_n == r->nfd_cap && nfd_grow(r) != 0)
            return;
        tok_nfd_ent *e = &r->nfd[r->nfd_n++];
        e->cp = d[i];
        e->ccc = (uint8_t)ccc;
        e->inserted = i > 0;
        e->src = span;
    }
}

static void accent_stage(tok_run *r, int32_t cp, tok_span span)
{
    if (r->tok->strip_accents)
        nfd_push(r, cp, span);
    else
        lower_stage(r, cp, span);
}

void tok_norm_char(tok_run *r, int32_t cp, uint32_t start, uint32_t end)
{
    const tok_tokenizer *t = r->tok;
    tok_span span = {start, end};
    unsigned f = tok_u_flags(cp);
    if (t->clean_text) {
        if (cp == 0 || cp == 0xFFFD || (f & TOK_U_CONTROL))
            return; /* \t \n \r are not TOK_U_CONTROL */
        if (f & TOK_U_WS)
            cp = ' ';
    }
    if (t->handle_cjk && (f & TOK_U_CJK)) {
        accent_stage(r, ' ', span);
        accent_stage(r, cp, span);
        accent_stage(r, ' ', span);
        return;
    }
    accent_stage(r, cp, span);
}

void tok_norm_begin_segment(tok_run *r, uint32_t seg_start)
{
    /* An inserted char with no predecessor in its segment gets (0, 0)
     * relative to the segment, i.e. the segment start. */
    r->nfd_last.start = seg_start;
    r->nfd_last.end = seg_start;
    r->nfd_n = 0;
}

void tok_norm_flush(tok_run *r) { nfd_flush(r); }

void tok_norm_release(tok_run *r)
{
    if (r->nfd != r->nfd_inline)
        bg_free(r->nfd);
    r->nfd = r->nfd_inline;
    r->nfd_tmp = r->nfd_tmp_inline;
    r->nfd_src = r->nfd_src_inline;
    r->nfd_cap = TOK_NFD_INLINE;
    r->nfd_n = 0;
}
