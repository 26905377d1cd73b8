/*
 * icl.h - in-context learning for one input: decide the prompt an input is
 * embedded with.
 *
 *   document, no icl_context          -> the text as is
 *   query, ICL off                    -> the model's query instruction + text
 *   query, ICL on (server bank)       -> detect or take the language, pick the
 *                                        bank's instruction and its k examples
 *                                        most similar to the query (context
 *                                        cache first), fit them to the model's
 *                                        length, build the bge-en-icl prompt
 *   any input with an icl_context     -> that instruction and those examples
 *   (enable_context_learning not false)   (ChunkHound's symmetric mode)
 *
 * The icl_engine (bank + context cache + settings) is immutable after
 * creation except for the context cache, which locks itself; icl_prepare
 * may run on many threads at once.
 */
#ifndef ICL_ICL_H
#define ICL_ICL_H

#include <stddef.h>

#include "bank.h"
#include "bgeicl.h"
#include "ctx_cache.h"
#include "lang.h"

/* Defaults chosen from docs/RETRIEVAL.md. With bge-small-en-v1.5, an
 * encoder never trained on ICL prompts, every ICL configuration ranks far
 * below the plain query instruction (2,000 stdlib pairs: MRR@10 0.662 ->
 * 0.031 with one selected example, worse with more): the ICL format and
 * examples dominate the pooled vector. So a query
 * gets ICL only when it asks (enable_icl, --icl on), and then the single
 * best example, the least harmful count measured. */
#define ICL_DEFAULT_ON 0
#define ICL_DEFAULT_K 1

typedef struct icl_engine icl_engine;

/* The example bank to use when none is named: the source tree's
 * icl/examples when run from it, else the installed copy; NULL if neither. */
const char *icl_default_examples_dir(void);

typedef struct icl_settings {
    const char *examples_dir; /* the bank; NULL = no bank (server-side ICL unavailable) */
    size_t k;                 /* examples per query */
    size_t cache_size;        /* context-cache entries */
    double threshold;         /* context-cache similarity threshold */
} icl_settings;

bgeicl_code icl_engine_create(const icl_settings *s, icl_engine **out, bgeicl_error *err);
void icl_engine_free(icl_engine *e);
const icl_bank *icl_engine_bank(const icl_engine *e); /* NULL without a bank */
void icl_engine_cache_stats(icl_engine *e, ctx_cache_stats *out);

typedef enum icl_mode {
    ICL_NONE = 0,     /* the text as is */
    ICL_PLAIN_QUERY,  /* the model's query instruction */
    ICL_SERVER,       /* the server's bank */
    ICL_EXPLICIT      /* the request's own instruction and examples */
} icl_mode;

typedef struct icl_input {
    icl_mode mode;
    const char *text;
    size_t len;
    int lang;                      /* ICL_SERVER: -1 = detect */
    const char *path;              /* detection hint, may be NULL */
    /* ICL_EXPLICIT */
    const char *instruction;       /* NULL: the bank's instruction for the language, else generic */
    const char *const *ex_query;
    const char *const *ex_response;
    size_t n_examples;
} icl_input;

typedef struct icl_output {
    char *text;              /* bg_malloc'd prompt (NUL-terminated) */
    size_t len;
    unsigned flags;          /* extra bgeicl_tokenize flags (BGEICL_QUERY for plain queries) */
    int applied;             /* 1 if an ICL prompt was built */
    icl_lang lang;
    size_t examples;         /* examples in the prompt */
    const char *instruction; /* borrowed: the bank's or the input's */
    int cache_hit;
    double prep_ms;
} icl_output;

/* Builds the prompt for one input. The model gives the length budget and
 * the token counts. On failure (only NOMEM) nothing needs freeing. */
bgeicl_code icl_prepare(icl_engine *e, const bgeicl_model *m, const icl_input *in,
                        icl_output *out, bgeicl_error *err);
void icl_output_free(icl_output *o);

#endif
