/*
 * test_icl.c - ICL prompts (string by string against the bge-en-icl
 * format) and the context cache (similarity, hits, eviction by recency and
 * similarity).
 */
#include <string.h>

#include "harness.h"
#include "icl/ctx_cache.h"
#include "icl/prompt.h"
#include "util/util.h"

static const char *const qs[] = {"read a file", "sort a list"};
static const char *const rs[] = {"open(p).read()", "sorted(xs)"};

TEST(prompt_formats)
{
    icl_prompt p = {.instruction = "Find code.", .ex_query = qs, .ex_response = rs,
                    .n_examples = 2, .query = "parse json", .query_len = 10};
    size_t n = 0;
    char *s = icl_prompt_build(&p, &n);
    const char *want = "<instruct>Find code.\n<query>read a file\n<response>open(p).read()\n\n"
                       "<instruct>Find code.\n<query>sort a list\n<response>sorted(xs)\n\n"
                       "<instruct>Find code.\n<query>parse json";
    CHECK(s && !strcmp(s, want));
    CHECK_EQ_INT(n, strlen(want));
    bg_free(s);

    p.decoder = 1; /* FlagEmbedding's suffix */
    s = icl_prompt_build(&p, &n);
    CHECK(s && n > 11 && !strcmp(s + n - 11, "\n<response>"));
    bg_free(s);

    p.decoder = 0;
    p.n_examples = 0; /* zero-shot: no prefix at all */
    s = icl_prompt_build(&p, &n);
    CHECK(s && !strcmp(s, "<instruct>Find code.\n<query>parse json"));
    bg_free(s);

    p.query_len = 5; /* the query is a slice, not a C string */
    s = icl_prompt_build(&p, &n);
    CHECK(s && !strcmp(s, "<instruct>Find code.\n<query>parse"));
    bg_free(s);

    bg_fail_after(0);
    CHECK(icl_prompt_build(&p, &n) == NULL);
    bg_fail_after(-1);
}

/* A stand-in tokenizer for fitting: one token per space-separated word. */
static size_t words(void *ctx, const char *t, size_t n)
{
    (void)ctx;
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if ((i == 0 || t[i - 1] == ' ' || t[i - 1] == '\n') && t[i] != ' ' && t[i] != '\n')
            w++;
    return w;
}

TEST(prompt_fit_keeps_query_and_best_examples)
{
    icl_prompt p = {.instruction = "Find code.", .ex_query = qs, .ex_response = rs,
                    .n_examples = 2, .query = "parse json", .query_len = 10};
    /* query part: "<instruct>Find code." "<query>parse" "json" = 4 words;
     * each example: 2 + 3 + 1 = 6 (first) and 6 (second). */
    CHECK_EQ_INT(icl_prompt_fit(&p, 100, words, NULL), 2);
    p.n_examples = 2;
    CHECK_EQ_INT(icl_prompt_fit(&p, 10, words, NULL), 1);
    CHECK_EQ_INT(p.n_examples, 1);
    p.n_examples = 2;
    CHECK_EQ_INT(icl_prompt_fit(&p, 5, words, NULL), 0);
    p.n_examples = 2;
    CHECK_EQ_INT(icl_prompt_fit(&p, 1, words, NULL), 0); /* the query stays, cut by the tokenizer */
    p.n_examples = 2;
    bg_fail_after(0);
    CHECK(icl_prompt_fit(&p, 100, words, NULL) == (size_t)-1);
    bg_fail_after(-1);
}

TEST(ctx_signatures)
{
    ctx_signature a, b, c;
    ctx_signature_of("readJsonFile(path)", 18, &a);
    ctx_signature_of("read the JSON file path", 23, &b);
    CHECK_EQ_INT(a.n, 4); /* read, json, file, path */
    CHECK(ctx_similarity(&a, &b) > 0.79); /* 4 shared of 5 ("the" counts) */
    ctx_signature_of("sort a list of numbers", 22, &c);
    CHECK(ctx_similarity(&a, &c) < 0.01);
    ctx_signature e1, e2;
    ctx_signature_of("", 0, &e1);
    ctx_signature_of("  ++ ", 5, &e2);
    CHECK(ctx_similarity(&e1, &e2) == 1.0);
    CHECK(ctx_similarity(&a, &a) == 1.0);
    char big[4000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (i % 7 == 6) ? ' ' : (char)('a' + (i * 13 % 26));
    ctx_signature d;
    ctx_signature_of(big, sizeof big, &d);
    CHECK(d.n <= CTX_MAX_TOKENS);
}

TEST(ctx_cache_hits_and_language)
{
    ctx_cache *c = NULL;
    CHECK_EQ_INT(ctx_cache_create(4, 0.8, &c, NULL), BGEICL_OK);
    ctx_signature a, b;
    ctx_signature_of("read json file path", 19, &a);
    ctx_signature_of("read json file path now", 23, &b);
    ctx_value v = {{3, 1}, 2}, got;
    double sim = 0;
    CHECK(!ctx_cache_lookup(c, 1, &a, &got, NULL));
    ctx_cache_insert(c, 1, &a, &v);
    CHECK(ctx_cache_lookup(c, 1, &b, &got, &sim)); /* 4 of 5 shared: 0.8 */
    CHECK(sim >= 0.8 && got.n == 2 && got.idx[0] == 3 && got.idx[1] == 1);
    CHECK(!ctx_cache_lookup(c, 2, &a, &got, NULL)); /* other language */
    ctx_cache_stats st;
    ctx_cache_stats_get(c, &st);
    CHECK_EQ_INT(st.hits, 1);
    CHECK_EQ_INT(st.misses, 2);
    CHECK_EQ_INT(st.entries, 1);
    ctx_cache_free(c);

    CHECK_EQ_INT(ctx_cache_create(0, 0.8, &c, NULL), BGEICL_OK); /* disabled */
    ctx_cache_insert(c, 1, &a, &v);
    CHECK(!ctx_cache_lookup(c, 1, &a, &got, NULL));
    ctx_cache_free(c);

    bg_fail_after(0);
    CHECK_EQ_INT(ctx_cache_create(4, 0.8, &c, NULL), BGEICL_ERR_NOMEM);
    bg_fail_after(-1);
}

TEST(ctx_cache_eviction_keeps_useful_entries)
{
    ctx_cache *c = NULL;
    ctx_cache_create(3, 0.8, &c, NULL);
    const char *texts[] = {"alpha beta gamma", "delta epsilon zeta", "eta theta iota",
                           "kappa lambda mu"};
    ctx_signature s[4];
    for (int i = 0; i < 4; i++)
        ctx_signature_of(texts[i], strlen(texts[i]), &s[i]);
    ctx_value v = {{0}, 1}, got;
    for (int i = 0; i < 3; i++)
        ctx_cache_insert(c, 0, &s[i], &v);
    /* The oldest entry keeps serving exact hits; the newer two never do. */
    for (int k = 0; k < 3; k++)
        CHECK(ctx_cache_lookup(c, 0, &s[0], &got, NULL));
    ctx_cache_insert(c, 0, &s[3], &v);
    CHECK(ctx_cache_lookup(c, 0, &s[0], &got, NULL)); /* survived */
    CHECK(ctx_cache_lookup(c, 0, &s[3], &got, NULL)); /* the newcomer is in */
    CHECK(!ctx_cache_lookup(c, 0, &s[1], &got, NULL)); /* the least useful went */
    ctx_cache_stats st;
    ctx_cache_stats_get(c, &st);
    CHECK_EQ_INT(st.evictions, 1);
    ctx_cache_free(c);
}

int main(void)
{
    RUN(prompt_formats);
    RUN(prompt_fit_keeps_query_and_best_examples);
    RUN(ctx_signatures);
    RUN(ctx_cache_hits_and_language);
    RUN(ctx_cache_eviction_keeps_useful_entries);
    return harness_summary("icl");
}
