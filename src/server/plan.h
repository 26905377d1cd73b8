/*
 * plan.h - an embedding request's inputs on their way to vectors: the
 * prompt of each input (ICL), its tokens, the embedding cache, and the
 * scheduler job for whatever the cache did not have.
 *
 *   plan_inputs   prompts and tokens (or checks token-id inputs)
 *   plan_run      cache lookups, one job for the misses, cache inserts
 *
 * After plan_run, vec holds every input's pooled vector (unnormalised),
 * row i for input i. Every failure sets the exchange's error response and
 * returns -1; plan_free is always safe.
 */
#ifndef SRV_PLAN_H
#define SRV_PLAN_H

#include <stdint.h>

#include "srv_internal.h"

/* How the inputs of one request are prompted. */
typedef struct plan_prompt {
    icl_mode mode;
    int lang;                     /* -1: detect per input */
    const char *instruction;      /* ICL_EXPLICIT, may be NULL */
    const char **ex_query;        /* ICL_EXPLICIT examples */
    const char **ex_response;
    size_t n_examples;
} plan_prompt;

typedef struct embed_plan {
    size_t n;
    bgeicl_tokens *tok;   /* n, for text inputs */
    const int32_t **ids;  /* n sequences */
    size_t *lens;
    float *vec;           /* n x dim */
    size_t tokens;
    double tokenize_ms, icl_ms;
    /* ICL applied to the first input, for the response's icl_info */
    int icl_applied;
    icl_lang lang;
    size_t examples;
    const char *instruction;
    int context_hit;
    size_t cache_hits;    /* inputs the embedding cache answered */
    sched_job job;
} embed_plan;

/* flags: BGEICL_NO_TRUNCATE. `pp` may be NULL (no prompts). */
int plan_inputs(srv_exchange *x, const req_inputs *in, const plan_prompt *pp, unsigned flags,
                embed_plan *p);
int plan_run(srv_exchange *x, embed_plan *p);
void plan_free(embed_plan *p);
/* Sets the answer to a library error on input i (413, 400 or 500); returns -1. */
int plan_fail_input(srv_exchange *x, const bgeicl_error *e, size_t i);

#endif
