/*
 * bank.c - loading the per-language example banks and ranking their
 * examples against a query with BM25. bank.h states the file format, the
 * data structure and the tokenizer.
 *
 * Cost: loading tokenizes every example once, sorts the token occurrences
 * of a language (n log n, a few thousand tokens) and builds the inverted
 * index. A selection tokenizes the query, finds each token by binary search
 * (log T) and adds its postings to a score per example; picking the best k
 * is a partial selection sort, O(k n) with n <= ICL_BANK_MAX_EXAMPLES,
 * cheaper than sorting for the few examples a prompt holds.
 */
#define _POSIX_C_SOURCE 200809L
#include "bank.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define BM25_K1 1.2
#define BM25_B 0.75

typedef struct bank_term {
    const char *text;     /* NUL-terminated, inside term_text */
    uint32_t first, count; /* postings post[first .. first + count) */
} bank_term;

typedef struct bank_posting {
    uint32_t ex;   /* example index */
    double weight; /* BM25 weight of the term in that example */
} bank_posting;

typedef struct bank_lang {
    int loaded;
    char *instruction;
    icl_example *ex; /* n_ex examples; both strings owned */
    size_t n_ex;
    bank_term *terms; /* n_terms, sorted by text */
    size_t n_terms;
    char *term_text; /* the terms' text, NUL-separated */
    bank_posting *post;
    size_t n_post;
} bank_lang;

struct icl_bank {
    bank_lang lang[ICL_LANG_COUNT];
};

/* ---- tokenizer ----------------------------------------------------------- */

typedef void (*tok_emit)(void *ctx, const char *tok, size_t n);

/* Sorted for bsearch. */
static const char *const STOP_WORDS[] = {
    "an",   "and",  "are",  "as",    "at",   "be",   "by",    "can",  "do",   "does",
    "for",  "from", "how",  "if",    "in",   "into", "is",    "it",   "its",  "me",
    "my",   "of",   "on",   "or",    "so",   "that", "the",   "then", "this", "to",
    "use",  "using", "via", "way",   "what", "when", "which", "with", "you",  "your",
};

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
static int is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_word(unsigned char c) { return is_upper(c) || is_lower(c) || is_digit(c) || c >= 0x80; }

/* A camelCase boundary between s[j-1] and s[j], inside a word ending at end. */
static int camel_break(const unsigned char *s, size_t j, size_t end)
{
    if ((is_lower(s[j - 1]) || is_digit(s[j - 1])) && is_upper(s[j]))
        return 1; /* readFile, utf8String */
    return is_upper(s[j - 1]) && is_upper(s[j]) && j + 1 < end && is_lower(s[j + 1]); /* HTTPServer */
}

/* Normalizes one piece and hands it to emit, unless it is dropped. */
static void emit_piece(const unsigned char *p, size_t n, tok_emit emit, void *ctx)
{
    char buf[ICL_BANK_MAX_TOKEN + 1];
    if (n > ICL_BANK_MAX_TOKEN)
        n = ICL_BANK_MAX_TOKEN;
    if (n < 2)
        return;
    int digits = 1;
    for (size_t i = 0; i < n; i++) {
        buf[i] = (char)(is_upper(p[i]) ? p[i] + ('a' - 'A') : p[i]);
        digits &= is_digit(p[i]);
    }
    buf[n] = '\0';
    if (digits)
        return;
    const char *key = buf;
    if (bsearch(&key, STOP_WORDS, sizeof STOP_WORDS / sizeof STOP_WORDS[0], sizeof STOP_WORDS[0],
                cmp_cstr))
        return;
    if (n > 3 && buf[n - 1] == 's' && buf[n - 2] != 's' && buf[n - 2] != 'u' && buf[n - 2] != 'i')
        buf[--n] = '\0';
    emit(ctx, buf, n);
}

static void tokenize(const char *text, size_t len, tok_emit emit, void *ctx)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        while (i < len && !is_word(s[i]))
            i++;
        size_t start = i;
        while (i < len && is_word(s[i]))
            i++;
        size_t piece = start;
        for (size_t j = start + 1; j < i; j++) {
            if (camel_break(s, j, i)) {
                emit_piece(s + piece, j - piece, emit, ctx);
                piece = j;
            }
        }
        if (i > piece)
            emit_piece(s + piece, i - piece, emit, ctx);
        if (piece > start) /* a compound: the whole word too */
            emit_piece(s + start, i - start, emit, ctx);
    }
}

/* ---- index --------------------------------------------------------------- */

typedef struct occurrence {
    char tok[ICL_BANK_MAX_TOKEN + 1];
    uint32_t ex;
} occurrence;

typedef struct collect_ctx {
    occurrence *occ; /* NULL: only count */
    size_t n;
    uint32_t ex;
} collect_ctx;

static void collect(void *vctx, const char *tok, size_t n)
{
    collect_ctx *c = vctx;
    if (c->occ) {
        memcpy(c->occ[c->n].tok, tok, n + 1);
        c->occ[c->n].ex = c->ex;
    }
    c->n++;
}

static int cmp_occ(const void *a, const void *b)
{
    const occurrence *x = a, *y = b;
    int r = strcmp(x->tok, y->tok);
    return r ? r : (x->ex > y->ex) - (x->ex < y->ex);
}

static void tokenize_example(const icl_example *e, collect_ctx *c)
{
    tokenize(e->query, strlen(e->query), collect, c);
    tokenize(e->response, strlen(e->response), collect, c);
}

/* Builds terms/post for a slot whose examples are loaded. */
static bgeicl_code build_index(bank_lang *L, const char *path, bg_err *err)
{
    collect_ctx c = {0};
    for (size_t i = 0; i < L->n_ex; i++)
        tokenize_example(&L->ex[i], &c);
    size_t n_occ = c.n;
    uint32_t *doc_len = bg_calloc(L->n_ex, sizeof *doc_len);
    occurrence *occ = bg_malloc((n_occ ? n_occ : 1) * sizeof *occ);
    if (!doc_len || !occ) {
        bg_free(doc_len);
        bg_free(occ);
        return bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory indexing the examples", path);
    }
    c = (collect_ctx){.occ = occ};
    for (size_t i = 0; i < L->n_ex; i++) {
        size_t before = c.n;
        c.ex = (uint32_t)i;
        tokenize_example(&L->ex[i], &c);
        doc_len[i] = (uint32_t)(c.n - before);
    }
    qsort(occ, n_occ, sizeof *occ, cmp_occ);

    /* Sizes: distinct terms, distinct (term, example) pairs, text bytes. */
    size_t n_terms = 0, n_post = 0, text_bytes = 0;
    for (size_t i = 0; i < n_occ; i++) {
        int new_term = i == 0 || strcmp(occ[i].tok, occ[i - 1].tok) != 0;
        if (new_term) {
            n_terms++;
            text_bytes += strlen(occ[i].tok) + 1;
        }
        if (new_term || occ[i].ex != occ[i - 1].ex)
            n_post++;
    }
    L->terms = bg_calloc(n_terms ? n_terms : 1, sizeof *L->terms);
    L->post = bg_calloc(n_post ? n_post : 1, sizeof *L->post);
    L->term_text = bg_malloc(text_bytes ? text_bytes : 1);
    if (!L->terms || !L->post || !L->term_text) {
        bg_free(doc_len);
        bg_free(occ);
        return bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory indexing the examples", path);
    }

    double n_docs = (double)L->n_ex, avg_len = (double)n_occ / n_docs;
    if (avg_len <= 0.0)
        avg_len = 1.0;
    char *text = L->term_text;
    size_t i = 0;
    while (i < n_occ) {
        size_t end = i;
        uint32_t df = 0;
        for (; end < n_occ && strcmp(occ[end].tok, occ[i].tok) == 0; end++)
            df += end == i || occ[end].ex != occ[end - 1].ex;
        double idf = log(1.0 + (n_docs - df + 0.5) / (df + 0.5));
        bank_term *t = &L->terms[L->n_terms++];
        size_t tl = strlen(occ[i].tok);
        memcpy(text, occ[i].tok, tl + 1);
        t->text = text;
        text += tl + 1;
        t->first = (uint32_t)L->n_post;
        for (size_t j = i; j < end;) {
            size_t k = j;
            while (k < end && occ[k].ex == occ[j].ex)
                k++;
            double tf = (double)(k - j);
            double norm = BM25_K1 * (1.0 - BM25_B + BM25_B * doc_len[occ[j].ex] / avg_len);
            L->post[L->n_post++] = (bank_posting){occ[j].ex, idf * tf * (BM25_K1 + 1.0) / (tf + norm)};
            j = k;
        }
        t->count = (uint32_t)(L->n_post - t->first);
        i = end;
    }
    bg_free(doc_len);
    bg_free(occ);
    return BGEICL_OK;
}

/* ---- loading ------------------------------------------------------------- */

static void lang_free(bank_lang *L)
{
    bg_free(L->instruction);
    for (size_t i = 0; i < L->n_ex; i++) {
        bg_free((void *)L->ex[i].query);
        bg_free((void *)L->ex[i].response);
    }
    bg_free(L->ex);
    bg_free(L->terms);
    bg_free(L->term_text);
    bg_free(L->post);
    memset(L, 0, sizeof *L);
}

void icl_bank_free(icl_bank *b)
{
    if (!b)
        return;
    for (int l = 0; l < ICL_LANG_COUNT; l++)
        lang_free(&b->lang[l]);
    bg_free(b);
}

/* Raw NUL bytes are an error (cJSON would cut a string at one, or skip one
 * as whitespace). A \u0000 escape inside a string becomes \u0001, which the
 * per-field check then rejects by name: a decoded NUL would silently cut
 * the string short instead. */
static bgeicl_code prescan(char *buf, size_t len, const char *path, bg_err *err)
{
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\0')
            return bg_fail(err, BGEICL_ERR_FORMAT, "%s: NUL byte at offset %zu", path, i);
        if (!in_str) {
            in_str = buf[i] == '"';
        } else if (buf[i] == '"') {
            in_str = 0;
        } else if (buf[i] == '\\' && i + 1 < len) {
            if (i + 5 < len && buf[i + 1] == 'u' && memcmp(buf + i + 2, "0000", 4) == 0)
                buf[i + 5] = '1';
            i++; /* the escaped character */
        }
    }
    return BGEICL_OK;
}

/* A required, non-empty, valid UTF-8 string without NUL or control bytes. */
static bgeicl_code get_text(const cJSON *obj, const char *key, const char *field, const char *path,
                            const char **out, bg_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: '%s' is required", path, field);
    if (!cJSON_IsString(v) || !v->valuestring)
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: '%s' must be a string", path, field);
    const char *s = v->valuestring;
    size_t n = strlen(s);
    if (n == 0)
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: '%s' must not be empty", path, field);
    if (!bg_utf8_valid(s, n))
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: '%s' is not valid UTF-8", path, field);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            return bg_fail(err, BGEICL_ERR_FORMAT,
                           "%s: '%s' contains a NUL or control character at byte %zu", path,
                           field, i);
    }
    *out = s;
    return BGEICL_OK;
}

static bgeicl_code load_examples(bank_lang *L, const cJSON *arr, const char *path, bg_err *err)
{
    if (!arr)
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: 'examples' is required", path);
    if (!cJSON_IsArray(arr))
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: 'examples' must be an array", path);
    int n = cJSON_GetArraySize(arr);
    if (n <= 0)
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: 'examples' must not be empty", path);
    if (n > ICL_BANK_MAX_EXAMPLES)
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: 'examples' has %d entries, over the limit of %d",
                       path, n, ICL_BANK_MAX_EXAMPLES);
    L->ex = bg_calloc((size_t)n, sizeof *L->ex);
    if (!L->ex)
        return bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory reading 'examples'", path);
    size_t i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        char fq[48], fr[48];
        snprintf(fq, sizeof fq, "examples[%zu].query", i);
        snprintf(fr, sizeof fr, "examples[%zu].response", i);
        if (!cJSON_IsObject(e))
            return bg_fail(err, BGEICL_ERR_FORMAT, "%s: 'examples[%zu]' must be an object", path, i);
        const char *q = NULL, *r = NULL;
        bgeicl_code rc = get_text(e, "query", fq, path, &q, err);
        if (rc == BGEICL_OK)
            rc = get_text(e, "response", fr, path, &r, err);
        if (rc != BGEICL_OK)
            return rc;
        char *qd = bg_strdup(q), *rd = bg_strdup(r);
        if (!qd || !rd) {
            bg_free(qd);
            bg_free(rd);
            return bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory reading '%s'", path, fq);
        }
        L->ex[L->n_ex++] = (icl_example){qd, rd};
    }
    return BGEICL_OK;
}

static bgeicl_code load_root(bank_lang *L, const cJSON *root, const char *want, const char *path,
                             bg_err *err)
{
    if (!cJSON_IsObject(root))
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: the top level must be a JSON object", path);
    const char *lang = NULL, *instr = NULL;
    bgeicl_code rc = get_text(root, "language", "language", path, &lang, err);
    if (rc != BGEICL_OK)
        return rc;
    if (strcmp(lang, want) != 0)
        return bg_fail(err, BGEICL_ERR_FORMAT,
                       "%s: 'language' is \"%.40s\" but the file name says \"%s\"", path, lang,
                       want);
    rc = get_text(root, "instruction", "instruction", path, &instr, err);
    if (rc != BGEICL_OK)
        return rc;
    if (!(L->instruction = bg_strdup(instr)))
        return bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory reading 'instruction'", path);
    rc = load_examples(L, cJSON_GetObjectItemCaseSensitive(root, "examples"), path, err);
    return rc != BGEICL_OK ? rc : build_index(L, path, err);
}

static bgeicl_code load_file(bank_lang *L, const char *path, const char *want, bg_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    bgeicl_code rc = bg_read_file(path, &buf, &len, err);
    if (rc != BGEICL_OK)
        return rc;
    rc = prescan(buf, len, path, err);
    cJSON *root = NULL;
    if (rc == BGEICL_OK) {
        const char *end = NULL;
        root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
        if (!root) {
            size_t at = end && end >= buf ? (size_t)(end - buf) : 0;
            rc = bg_fail(err, BGEICL_ERR_FORMAT, "%s: malformed JSON near byte %zu", path, at);
        } else {
            for (const char *p = end; p < buf + len && rc == BGEICL_OK; p++)
                if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
                    rc = bg_fail(err, BGEICL_ERR_FORMAT,
                                 "%s: malformed JSON: trailing data at byte %zu", path,
                                 (size_t)(p - buf));
        }
    }
    if (rc == BGEICL_OK)
        rc = load_root(L, root, want, path, err);
    cJSON_Delete(root);
    bg_free(buf);
    if (rc == BGEICL_OK)
        L->loaded = 1;
    else
        lang_free(L);
    return rc;
}

/* The *.json names in dir (not hidden), sorted. */
static bgeicl_code list_dir(const char *dir, char ***names, size_t *count, bg_err *err)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return bg_fail(err, BGEICL_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    char **v = NULL;
    size_t n = 0, cap = 0;
    bgeicl_code rc = BGEICL_OK;
    struct dirent *de;
    while (rc == BGEICL_OK && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nv = bg_realloc(v, ncap * sizeof *nv);
            if (!nv) {
                rc = bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory listing the directory", dir);
                break;
            }
            v = nv;
            cap = ncap;
        }
        if (!(v[n] = bg_strdup(de->d_name)))
            rc = bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory listing the directory", dir);
        else
            n++;
    }
    closedir(d);
    if (rc != BGEICL_OK) {
        for (size_t i = 0; i < n; i++)
            bg_free(v[i]);
        bg_free(v);
        return rc;
    }
    if (n)
        qsort(v, n, sizeof *v, cmp_cstr);
    *names = v;
    *count = n;
    return BGEICL_OK;
}

/* The language a file name stands for, or an error naming the file. */
static bgeicl_code lang_of_file(const char *path, const char *name, icl_lang *out, bg_err *err)
{
    char stem[64];
    size_t n = strlen(name) - 5; /* without ".json" */
    int l = -1;
    if (n < sizeof stem) {
        memcpy(stem, name, n);
        stem[n] = '\0';
        l = icl_lang_parse(stem);
    }
    if (l >= 0 && strcmp(icl_lang_name((icl_lang)l), stem) == 0) {
        *out = (icl_lang)l;
        return BGEICL_OK;
    }
    if (l >= 0)
        return bg_fail(err, BGEICL_ERR_FORMAT,
                       "%s: not a language file name; use the canonical name %s.json", path,
                       icl_lang_name((icl_lang)l));
    char known[256];
    size_t at = 0;
    known[0] = '\0';
    for (int i = 0; i < ICL_LANG_COUNT && at < sizeof known; i++)
        at += (size_t)snprintf(known + at, sizeof known - at, "%s%s", i ? ", " : "",
                               icl_lang_name((icl_lang)i));
    return bg_fail(err, BGEICL_ERR_FORMAT,
                   "%s: not a language file name; expected <language>.json, language one of: %s",
                   path, known);
}

bgeicl_code icl_bank_load(const char *dir, icl_bank **out, bgeicl_error *err)
{
    if (out)
        *out = NULL;
    if (!dir || !out)
        return bg_fail(err, BGEICL_ERR_ARG, "icl_bank_load: dir and out must not be NULL");
    char **names;
    size_t n_names;
    bgeicl_code rc = list_dir(dir, &names, &n_names, err);
    if (rc != BGEICL_OK)
        return rc;
    icl_bank *b = bg_calloc(1, sizeof *b);
    if (!b)
        rc = bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory loading the example bank", dir);
    for (size_t i = 0; i < n_names && rc == BGEICL_OK; i++) {
        char *path = bg_path_join(dir, names[i]);
        if (!path) {
            rc = bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory", names[i]);
            break;
        }
        icl_lang l;
        rc = lang_of_file(path, names[i], &l, err);
        if (rc == BGEICL_OK)
            rc = load_file(&b->lang[l], path, icl_lang_name(l), err);
        bg_free(path);
    }
    if (rc == BGEICL_OK && !b->lang[ICL_LANG_GENERIC].loaded)
        rc = bg_fail(err, BGEICL_ERR_FORMAT,
                     "%s/generic.json: missing; the generic bank is required (the fallback for "
                     "every language without a file)",
                     dir);
    for (size_t i = 0; i < n_names; i++)
        bg_free(names[i]);
    bg_free(names);
    if (rc != BGEICL_OK) {
        icl_bank_free(b);
        return rc;
    }
    bg_err_clear(err);
    *out = b;
    return BGEICL_OK;
}

/* ---- lookup and selection ------------------------------------------------ */

static const bank_lang *slot(const icl_bank *b, icl_lang lang)
{
    int l = (int)lang;
    if (l >= 0 && l < ICL_LANG_COUNT && b->lang[l].loaded)
        return &b->lang[l];
    return &b->lang[ICL_LANG_GENERIC];
}

const char *icl_bank_instruction(const icl_bank *b, icl_lang lang)
{
    return b ? slot(b, lang)->instruction : NULL;
}

size_t icl_bank_examples(const icl_bank *b, icl_lang lang, const icl_example **out)
{
    const bank_lang *L = b ? slot(b, lang) : NULL;
    if (out)
        *out = L ? L->ex : NULL;
    return L ? L->n_ex : 0;
}

typedef struct score_ctx {
    const bank_lang *L;
    double score[ICL_BANK_MAX_EXAMPLES];
    uint32_t seen[ICL_BANK_MAX_QUERY_TERMS]; /* term indices already scored */
    size_t n_seen;
} score_ctx;

static int cmp_term(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const bank_term *)elem)->text);
}

static void score_token(void *vctx, const char *tok, size_t n)
{
    (void)n;
    score_ctx *c = vctx;
    const bank_term *t = bsearch(tok, c->L->terms, c->L->n_terms, sizeof *t, cmp_term);
    if (!t || c->n_seen == ICL_BANK_MAX_QUERY_TERMS)
        return;
    uint32_t ti = (uint32_t)(t - c->L->terms);
    for (size_t i = 0; i < c->n_seen; i++)
        if (c->seen[i] == ti)
            return;
    c->seen[c->n_seen++] = ti;
    for (uint32_t p = t->first; p < t->first + t->count; p++)
        c->score[c->L->post[p].ex] += c->L->post[p].weight;
}

size_t icl_bank_select(const icl_bank *b, icl_lang lang, const char *query, size_t len, size_t k,
                       size_t *idx)
{
    if (!b || !idx || k == 0)
        return 0;
    score_ctx c;
    c.L = slot(b, lang);
    c.n_seen = 0;
    size_t n = c.L->n_ex;
    memset(c.score, 0, n * sizeof c.score[0]);
    if (query)
        tokenize(query, len, score_token, &c);
    size_t order[ICL_BANK_MAX_EXAMPLES];
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    if (k > n)
        k = n;
    for (size_t i = 0; i < k; i++) {
        size_t best = i;
        for (size_t j = i + 1; j < n; j++) {
            double sj = c.score[order[j]], sb = c.score[order[best]];
            if (sj > sb || (sj == sb && order[j] < order[best]))
                best = j;
        }
        size_t tmp = order[i];
        order[i] = order[best];
        order[best] = tmp;
        idx[i] = order[i];
    }
    return k;
}
