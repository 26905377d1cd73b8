/*
 * ctx_cache.c - the context cache (see ctx_cache.h).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"
#include "ctx_cache.h"

typedef struct entry {
    int used;
    int lang;
    ctx_signature sig;
    ctx_value val;
    uint64_t last_use;
    uint64_t hits;
    double sim_sum;
} entry;

struct ctx_cache {
    pthread_mutex_t lock;
    entry *e;
    size_t capacity;
    double threshold;
    uint64_t tick;
    ctx_cache_stats st;
};

/* ---- signatures --------------------------------------------------------------- */

static int is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static int is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
static int is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Adds one token, lower-cased and hashed; single characters carry no signal. */
static void add_token(ctx_signature *s, const char *t, size_t n)
{
    if (n < 2 || s->n == CTX_MAX_TOKENS)
        return;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        h = (h ^ (is_upper(c) ? (unsigned char)(c + 32) : c)) * 16777619u;
    }
    s->tok[s->n++] = h;
}

void ctx_signature_of(const char *text, size_t len, ctx_signature *out)
{
    out->n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && !is_alnum((unsigned char)text[i]))
            i++;
        size_t start = i;
        /* A word ends at a non-alphanumeric, or at a lower-to-upper step
         * (camelCase), so "readJsonFile" gives read, json, file. */
        while (i < len && is_alnum((unsigned char)text[i])) {
            if (i > start && is_upper((unsigned char)text[i]) &&
                is_lower((unsigned char)text[i - 1])) {
                add_token(out, text + start, i - start);
                start = i;
            }
            i++;
        }
        add_token(out, text + start, i - start);
    }
    qsort(out->tok, out->n, sizeof out->tok[0], cmp_u32);
    size_t u = 0;
    for (size_t k = 0; k < out->n; k++)
        if (u == 0 || out->tok[u - 1] != out->tok[k])
            out->tok[u++] = out->tok[k];
    out->n = u;
}

double ctx_similarity(const ctx_signature *a, const ctx_signature *b)
{
    if (a->n == 0 && b->n == 0)
        return 1.0;
    size_t i = 0, j = 0, both = 0;
    while (i < a->n && j < b->n) {
        if (a->tok[i] == b->tok[j]) {
            both++;
            i++;
            j++;
        } else if (a->tok[i] < b->tok[j]) {
            i++;
        } else {
            j++;
        }
    }
    return (double)both / (double)(a->n + b->n - both);
}

/* ---- cache -------------------------------------------------------------------------- */

bgeicl_code ctx_cache_create(size_t capacity, double threshold, ctx_cache **out,
                             bgeicl_error *err)
{
    *out = NULL;
    ctx_cache *c = bg_calloc(1, sizeof *c);
    entry *e = capacity ? bg_calloc(capacity, sizeof *e) : NULL;
    if (!c || (capacity && !e)) {
        bg_free(c);
        bg_free(e);
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for a context cache of %zu entries",
                       capacity);
    }
    pthread_mutex_init(&c->lock, NULL);
    c->e = e;
    c->capacity = capacity;
    c->threshold = threshold;
    *out = c;
    return BGEICL_OK;
}

void ctx_cache_free(ctx_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    bg_free(c->e);
    bg_free(c);
}

int ctx_cache_lookup(ctx_cache *c, int lang, const ctx_signature *sig, ctx_value *out,
                     double *similarity)
{
    pthread_mutex_lock(&c->lock);
    c->tick++;
    entry *best = NULL;
    double best_sim = -1;
    for (size_t i = 0; i < c->capacity; i++) {
        entry *e = &c->e[i];
        if (!e->used || e->lang != lang)
            continue;
        double s = ctx_similarity(sig, &e->sig);
        if (s > best_sim) {
            best_sim = s;
            best = e;
        }
    }
    int hit = best && best_sim >= c->threshold;
    if (hit) {
        best->last_use = c->tick;
        best->hits++;
        best->sim_sum += best_sim;
        *out = best->val;
        if (similarity)
            *similarity = best_sim;
        c->st.hits++;
    } else {
        c->st.misses++;
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

static double keep_score(const ctx_cache *c, const entry *e)
{
    double age = (double)(c->tick - e->last_use);
    double recency = 1.0 - age / (double)c->capacity;
    if (recency < 0)
        recency = 0;
    double usefulness = e->hits ? e->sim_sum / (double)e->hits : 0.0;
    return 0.5 * recency + 0.5 * usefulness;
}

void ctx_cache_insert(ctx_cache *c, int lang, const ctx_signature *sig, const ctx_value *v)
{
    if (c->capacity == 0)
        return;
    pthread_mutex_lock(&c->lock);
    entry *slot = NULL;
    for (size_t i = 0; i < c->capacity && !slot; i++)
        if (!c->e[i].used)
            slot = &c->e[i];
    if (!slot) {
        slot = &c->e[0];
        for (size_t i = 1; i < c->capacity; i++)
            if (keep_score(c, &c->e[i]) < keep_score(c, slot))
                slot = &c->e[i];
        c->st.evictions++;
    } else {
        c->st.entries++;
    }
    *slot = (entry){.used = 1, .lang = lang, .sig = *sig, .val = *v, .last_use = c->tick};
    pthread_mutex_unlock(&c->lock);
}

void ctx_cache_stats_get(ctx_cache *c, ctx_cache_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->st;
    pthread_mutex_unlock(&c->lock);
}
