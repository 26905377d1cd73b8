/*
 * icl_plan.c - client-side ICL contexts and query groups (see icl_plan.h).
 *
 * Cost: per query a signature and a cache scan (capacity x signature
 * length), or a BM25 selection on a miss; then one sort of n keys,
 * O(n log n), to group the queries.
 */
#include "icl_plan.h"

#include <stdlib.h>
#include <string.h>

#include "../util/util.h"

bgeicl_code cl_icl_init(cl_icl *c, const char *dir, size_t k, size_t cache_size,
                        double threshold, bgeicl_error *err)
{
    memset(c, 0, sizeof *c);
    c->k = k < 1 ? 1 : k > CTX_MAX_EXAMPLES ? CTX_MAX_EXAMPLES : k;
    bgeicl_code rc = ctx_cache_create(cache_size, threshold, &c->cache, err);
    if (rc == BGEICL_OK && dir)
        rc = icl_bank_load(dir, &c->bank, err);
    if (rc != BGEICL_OK)
        cl_icl_free(c);
    return rc;
}

void cl_icl_free(cl_icl *c)
{
    icl_bank_free(c->bank);
    ctx_cache_free(c->cache);
    memset(c, 0, sizeof *c);
}

double cl_icl_hit_rate(cl_icl *c)
{
    if (!c->cache)
        return 0;
    ctx_cache_stats st;
    ctx_cache_stats_get(c->cache, &st);
    return st.hits + st.misses ? (double)st.hits / (double)(st.hits + st.misses) : 0;
}

void cl_plan_free(cl_plan *p)
{
    bg_free(p->order);
    bg_free(p->groups);
    memset(p, 0, sizeof *p);
}

bgeicl_code cl_plan_single(size_t n, cl_plan *p, bgeicl_error *err)
{
    memset(p, 0, sizeof *p);
    p->order = bg_malloc(n * sizeof *p->order);
    p->groups = bg_calloc(1, sizeof *p->groups);
    if (!p->order || !p->groups) {
        cl_plan_free(p);
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory planning %zu inputs", n);
    }
    for (size_t i = 0; i < n; i++)
        p->order[i] = i;
    p->groups[0].count = n;
    p->n_groups = 1;
    return BGEICL_OK;
}

/* One query's context, and its input index (the sort's tie-break). */
typedef struct qkey {
    int lang;
    ctx_value v;
    size_t i;
} qkey;

static int cmp_ctx(const qkey *a, const qkey *b)
{
    if (a->lang != b->lang)
        return a->lang < b->lang ? -1 : 1;
    if (a->v.n != b->v.n)
        return a->v.n < b->v.n ? -1 : 1;
    for (size_t j = 0; j < a->v.n; j++)
        if (a->v.idx[j] != b->v.idx[j])
            return a->v.idx[j] < b->v.idx[j] ? -1 : 1;
    return 0;
}

static int cmp_qkey(const void *x, const void *y)
{
    const qkey *a = x, *b = y;
    int r = cmp_ctx(a, b);
    return r ? r : (a->i > b->i) - (a->i < b->i);
}

/* The steps of the server's choose_examples (icl.c), on the client's cache. */
static void choose(cl_icl *c, const char *text, size_t len, int lang, qkey *q)
{
    ctx_signature sig;
    ctx_signature_of(text, len, &sig);
    q->lang = lang;
    if (ctx_cache_lookup(c->cache, lang, &sig, &q->v, NULL))
        return;
    q->v.n = icl_bank_select(c->bank, (icl_lang)lang, text, len, c->k, q->v.idx);
    ctx_cache_insert(c->cache, lang, &sig, &q->v);
}

static void fill_group(const cl_icl *c, const qkey *q, cl_group *g)
{
    const icl_example *ex = NULL;
    icl_bank_examples(c->bank, (icl_lang)q->lang, &ex);
    g->lang = (icl_lang)q->lang;
    g->instruction = icl_bank_instruction(c->bank, g->lang);
    g->n_examples = q->v.n;
    for (size_t j = 0; j < q->v.n; j++) {
        g->ex_query[j] = ex[q->v.idx[j]].query;
        g->ex_response[j] = ex[q->v.idx[j]].response;
    }
}

bgeicl_code cl_icl_plan(cl_icl *c, const char *const *texts, const size_t *lens, size_t n,
                        int lang, cl_plan *p, bgeicl_error *err)
{
    memset(p, 0, sizeof *p);
    qkey *q = bg_malloc(n * sizeof *q);
    p->order = bg_malloc(n * sizeof *p->order);
    if (!q || !p->order) {
        bg_free(q);
        cl_plan_free(p);
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory planning %zu ICL queries", n);
    }
    for (size_t i = 0; i < n; i++) {
        int l = lang >= 0 ? lang : (int)icl_lang_detect(texts[i], lens[i], NULL);
        choose(c, texts[i], lens[i], l, &q[i]);
        q[i].i = i;
    }
    qsort(q, n, sizeof *q, cmp_qkey);
    size_t groups = 0;
    for (size_t i = 0; i < n; i++)
        groups += i == 0 || cmp_ctx(&q[i - 1], &q[i]) != 0;
    if (!(p->groups = bg_calloc(groups, sizeof *p->groups))) {
        bg_free(q);
        cl_plan_free(p);
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory planning %zu ICL queries", n);
    }
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || cmp_ctx(&q[i - 1], &q[i]) != 0) {
            cl_group *g = &p->groups[p->n_groups++];
            g->start = i;
            fill_group(c, &q[i], g);
        }
        p->groups[p->n_groups - 1].count++;
        p->order[i] = q[i].i;
    }
    bg_free(q);
    return BGEICL_OK;
}
