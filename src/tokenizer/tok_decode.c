/*
 * tok_decode.c - tok_decode: ids back to text through the tokenizer.json
 * decoder, as the tokenizers library's decode(ids, skip_special_tokens =
 * False) does it.
 *
 * The decoder is a chain of steps over the list of token strings (read by
 * tok_bpe_load.c). For Llama/Mistral files it is Replace("▁" -> " "),
 * ByteFallback (a run of <0xNN> tokens becomes its bytes when they are valid
 * UTF-8, else one U+FFFD per byte), Fuse (one string) and Strip (the one
 * leading space that the normalizer's "▁" prefix became). The result is the
 * concatenation of the final list. Decoding is short work (a query of a few
 * hundred tokens), so the list is plain heap strings.
 */
#include <string.h>

#include "tok_bpe.h"
#include "tok_unicode.h"

typedef struct dstr {
    char *p;
    size_t len;
} dstr;

typedef struct dlist {
    dstr *v;
    size_t n, cap;
} dlist;

static void dlist_free(dlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        bg_free(l->v[i].p);
    bg_free(l->v);
    memset(l, 0, sizeof *l);
}

/* Appends a copy of s[0, len). Returns 0 or -1 (out of memory). */
static int dlist_push(dlist *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        dstr *v = bg_realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    char *p = bg_malloc(len + 1);
    if (!p)
        return -1;
    memcpy(p, s, len);
    p[len] = '\0';
    l->v[l->n].p = p;
    l->v[l->n].len = len;
    l->n++;
    return 0;
}

/* ---- steps: each turns list `in` into list `out` ------------------------- */

/* Every non-overlapping `from` (left to right) -> `to`. memmem, not
 * strstr: a token may hold a NUL byte once ByteFallback has run. */
static int step_replace(const tok_dec_step *s, const dstr *t, dlist *out)
{
    size_t fl = strlen(s->from), tl = strlen(s->to), hits = 0;
    const char *end = t->p + t->len;
    for (const char *p = t->p, *q; (q = memmem(p, (size_t)(end - p), s->from, fl)); p = q + fl)
        hits++;
    char *buf = bg_malloc(t->len - hits * fl + hits * tl + 1);
    if (!buf)
        return -1;
    size_t o = 0;
    const char *p = t->p;
    for (const char *q; (q = memmem(p, (size_t)(end - p), s->from, fl)); p = q + fl) {
        memcpy(buf + o, p, (size_t)(q - p));
        o += (size_t)(q - p);
        memcpy(buf + o, s->to, tl);
        o += tl;
    }
    memcpy(buf + o, p, (size_t)(end - p));
    o += (size_t)(end - p);
    int rc = dlist_push(out, buf, o);
    bg_free(buf);
    return rc;
}

/* The byte of a "<0xNN>" token (either case of hex digits), or -1. */
static int byte_token(const dstr *t)
{
    const char *s = t->p;
    if (t->len != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        int c = (unsigned char)s[i], d = c >= '0' && c <= '9' ? c - '0'
                                         : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static int utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        int32_t cp;
        size_t k = tok_utf8_decode(s + i, n - i, &cp);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

/* Pushes a finished byte run: its text, or U+FFFD per byte. */
static int flush_bytes(const unsigned char *run, size_t n, dlist *out)
{
    if (n == 0 || utf8_ok(run, n))
        return n ? dlist_push(out, (const char *)run, n) : 0;
    for (size_t i = 0; i < n; i++)
        if (dlist_push(out, "\xef\xbf\xbd", 3) != 0)
            return -1;
    return 0;
}

static int step_byte_fallback(const dlist *in, dlist *out)
{
    unsigned char *run = bg_malloc(in->n + 1);
    size_t n = 0;
    if (!run)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < in->n && rc == 0; i++) {
        int b = byte_token(&in->v[i]);
        if (b >= 0) {
            run[n++] = (unsigned char)b;
            continue;
        }
        rc = flush_bytes(run, n, out);
        n = 0;
        if (rc == 0)
            rc = dlist_push(out, in->v[i].p, in->v[i].len);
    }
    if (rc == 0)
        rc = flush_bytes(run, n, out);
    bg_free(run);
    return rc;
}

static int step_fuse(const dlist *in, dlist *out)
{
    size_t n = 0;
    for (size_t i = 0; i < in->n; i++)
        n += in->v[i].len;
    char *buf = bg_malloc(n + 1);
    if (!buf)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < in->n; i++) {
        memcpy(buf + o, in->v[i].p, in->v[i].len);
        o += in->v[i].len;
    }
    int rc = dlist_push(out, buf, o);
    bg_free(buf);
    return rc;
}

/* Up to s->start leading and s->stop trailing copies of the char s->from. */
static int step_strip(const tok_dec_step *s, const dstr *t, dlist *out)
{
    size_t cl = strlen(s->from), a = 0, b = t->len;
    for (size_t i = 0; i < s->start && b - a >= cl && memcmp(t->p + a, s->from, cl) == 0; i++)
        a += cl;
    for (size_t i = 0; i < s->stop && b - a >= cl && memcmp(t->p + b - cl, s->from, cl) == 0; i++)
        b -= cl;
    return dlist_push(out, t->p + a, b - a);
}

/* Metaspace: the replacement -> " ", or dropped in the first token. */
static int step_metaspace(const tok_dec_step *s, const dstr *t, int first, dlist *out)
{
    tok_dec_step r = {TOK_DEC_REPLACE, s->from, first && !s->prepend_never ? "" : " ", 0, 0, 0};
    return step_replace(&r, t, out);
}

static int run_step(const tok_dec_step *s, const dlist *in, dlist *out)
{
    if (s->kind == TOK_DEC_BYTE_FALLBACK)
        return step_byte_fallback(in, out);
    if (s->kind == TOK_DEC_FUSE)
        return step_fuse(in, out);
    for (size_t i = 0; i < in->n; i++) {
        int rc = s->kind == TOK_DEC_REPLACE ? step_replace(s, &in->v[i], out)
                 : s->kind == TOK_DEC_STRIP ? step_strip(s, &in->v[i], out)
                                            : step_metaspace(s, &in->v[i], i == 0, out);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- tok_decode ------------------------------------------------------------ */

static int initial_tokens(const tok_tokenizer *t, const int32_t *ids, size_t n, dlist *l)
{
    for (size_t i = 0; i < n; i++) {
        const char *s = tok_id_to_token(t, ids[i]);
        if (s && dlist_push(l, s, strlen(s)) != 0) /* ids without a token are skipped */
            return -1;
    }
    return 0;
}

static int join(const dlist *l, char **out, size_t *out_len)
{
    dlist one = {0};
    if (step_fuse(l, &one) != 0) {
        dlist_free(&one); /* its array may exist without the string */
        return -1;
    }
    *out = one.v[0].p;
    if (out_len)
        *out_len = one.v[0].len;
    bg_free(one.v);
    return 0;
}

bgeicl_code tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, char **out,
                       size_t *out_len, bg_err *err)
{
    if (!t || !out || (!ids && n))
        return bg_fail(err, BGEICL_ERR_ARG, "decode: NULL argument");
    *out = NULL;
    if (!t->bpe || !t->bpe->has_decoder)
        return bg_fail(err, BGEICL_ERR_UNSUPPORTED,
                       "decode: this tokenizer has no supported decoder (only BPE ones with "
                       "Replace, ByteFallback, Fuse, Strip and Metaspace steps)");
    dlist cur = {0}, next = {0};
    int rc = initial_tokens(t, ids, n, &cur);
    for (size_t i = 0; i < t->bpe->n_dec && rc == 0; i++) {
        rc = run_step(&t->bpe->dec[i], &cur, &next);
        dlist_free(&cur);
        cur = next;
        memset(&next, 0, sizeof next);
    }
    if (rc == 0)
        rc = join(&cur, out, out_len);
    dlist_free(&cur);
    dlist_free(&next);
    if (rc != 0)
        return bg_fail(err, BGEICL_ERR_NOMEM, "decode: out of memory");
    return BGEICL_OK;
}
