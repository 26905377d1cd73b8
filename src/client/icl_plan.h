/*
 * icl_plan.h - in-context learning on the client side (cl_icl_), as
 * ChunkHound's BGE-IN-ICL provider does it: the client keeps the example
 * bank and the context cache, and sends each query's instruction and
 * examples as the request's icl_context.
 *
 * Per query: the language (the call's or the option's, else detected from
 * the text), then its examples: those of a similar earlier query of the
 * same language from the context cache (ctx_cache.h: Jaccard over
 * identifier tokens, at least the threshold), else the bank's top k by
 * BM25 (icl_bank_select), remembered for later queries. These are the
 * very steps of the server's own ICL (icl.c, choose_examples), with the
 * same bank, k, cache and threshold, so the server's ICL_EXPLICIT path
 * builds the same prompt as its ICL_SERVER path would.
 *
 * Queries that share (language, examples) form a group; a group's texts
 * go in requests of their own, each carrying the group's context.
 *
 * Data structure: cl_icl holds the bank (read-only) and the cache (locks
 * itself), so planning may run on many threads. A plan holds `order`, the
 * input indices sorted by group (input order within a group), and the
 * groups as runs of it; the strings a group points at belong to the bank.
 */
#ifndef CL_ICL_PLAN_H
#define CL_ICL_PLAN_H

#include <stddef.h>

#include "../icl/icl.h"

typedef struct cl_icl {
    icl_bank *bank;  /* NULL: no bank; queries ask for the server's ICL */
    ctx_cache *cache;
    size_t k;
} cl_icl;

typedef struct cl_group {
    size_t start, count;    /* order[start .. start + count) */
    icl_lang lang;
    const char *instruction;
    const char *ex_query[CTX_MAX_EXAMPLES], *ex_response[CTX_MAX_EXAMPLES];
    size_t n_examples;
} cl_group;

typedef struct cl_plan {
    size_t *order;    /* n input indices */
    cl_group *groups;
    size_t n_groups;
} cl_plan;

/* dir NULL: no bank. k is clamped to [1, CTX_MAX_EXAMPLES]. */
bgeicl_code cl_icl_init(cl_icl *c, const char *dir, size_t k, size_t cache_size,
                        double threshold, bgeicl_error *err);
void cl_icl_free(cl_icl *c);
/* The context cache's hit rate so far, 0 before any lookup. */
double cl_icl_hit_rate(cl_icl *c);

/* Plans n queries (the bank must be loaded). lang < 0: detect per query. */
bgeicl_code cl_icl_plan(cl_icl *c, const char *const *texts, const size_t *lens, size_t n,
                        int lang, cl_plan *p, bgeicl_error *err);
/* One group over all n inputs in input order (no ICL contexts). */
bgeicl_code cl_plan_single(size_t n, cl_plan *p, bgeicl_error *err);
void cl_plan_free(cl_plan *p);

#endif
