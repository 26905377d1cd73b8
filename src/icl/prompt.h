/*
 * prompt.h - in-context-learning prompts in BAAI's bge-en-icl format.
 *
 * One worked example:     <instruct>{instruction}\n<query>{query}\n<response>{response}
 * The examples' prefix:   the examples joined by "\n\n", plus a trailing "\n\n"
 * The query itself:       <instruct>{instruction}\n<query>{query}
 * Decoder models (BAAI/bge-en-icl) add the suffix "\n<response>" after the
 * query, as FlagEmbedding's ICLLLMEmbedder does; encoder models (BGE v1.5,
 * CLS pooling) take the query part without it.
 *
 * Length. FlagEmbedding cuts the query part (instruction + query) to the
 * model's length before the prefix and suffix are added, so examples never
 * push the query out. An encoder has no room to spare (512 tokens with the
 * examples included), so icl_prompt_fit keeps the query part whole (cut
 * only if it alone is too long) and keeps the best-ranked examples that
 * still fit, dropping the rest. Every break between parts is "\n\n" or
 * "\n", so token counts of the parts add up to the count of the whole for
 * WordPiece tokenizers, which split on whitespace first.
 */
#ifndef ICL_PROMPT_H
#define ICL_PROMPT_H

#include <stddef.h>

typedef struct icl_prompt {
    const char *instruction;      /* the task, e.g. "Given a code search query, retrieve ..." */
    const char *const *ex_query;  /* n_examples worked examples, best first */
    const char *const *ex_response;
    size_t n_examples;
    const char *query;            /* the input text (not NUL-terminated) */
    size_t query_len;
    int decoder;                  /* 1: add the "\n<response>" suffix */
} icl_prompt;

/* Builds the full prompt as a bg_malloc'd NUL-terminated string; *len gets
 * its length. NULL on allocation failure. */
char *icl_prompt_build(const icl_prompt *p, size_t *len);

/* The examples' prefix alone: the examples joined by "\n\n" plus a trailing
 * "\n\n", "" without examples (FlagEmbedding's examples_prefix). A
 * bg_malloc'd NUL-terminated string; *len gets its length. NULL on
 * allocation failure. */
char *icl_prompt_prefix(const icl_prompt *p, size_t *len);

/* Counts the tokens a text becomes (no special tokens). */
typedef size_t (*icl_token_count)(void *ctx, const char *text, size_t len);

/* Lowers p->n_examples until the prompt fits in `budget` tokens (special
 * tokens excluded), keeping the first (best) examples. Returns the number
 * of examples kept; the query part is always kept (the tokenizer's own
 * truncation cuts it if it alone is over the budget). Returns (size_t)-1 on
 * allocation failure. */
size_t icl_prompt_fit(icl_prompt *p, size_t budget, icl_token_count count, void *ctx);

#endif
