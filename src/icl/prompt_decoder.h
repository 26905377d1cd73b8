/*
 * prompt_decoder.h - the token ids of an in-context-learning query for the
 * decoder model BAAI/bge-en-icl, assembled exactly as FlagEmbedding does it
 * (the model card's get_new_queries and ICLLLMEmbedder.encode_queries):
 *
 *   1. query = "<instruct>{task}\n<query>{query}" (icl_prompt with no
 *      examples), tokenized without special tokens and truncated to
 *      query_max_len - len(tok("<s>")) - len(tok("\n<response></s>")) tokens;
 *   2. those ids decoded back to a string (SentencePiece style: "▁" -> " ",
 *      byte-fallback bytes reassembled, special tokens kept);
 *   3. text = examples_prefix + decoded + "\n<response>", where the prefix is
 *      the examples joined by "\n\n" plus "\n\n" ("" without examples), so
 *      examples never count against query_max_len;
 *   4. max_length = (len(tok(prefix)) + len(tok("\n<response>")) +
 *      query_max_len + 8) / 8 * 8 + 8, every len without special tokens;
 *   5. text tokenized with the special tokens (<s>, and </s> when the
 *      tokenizer's template adds it) and truncated to max_length.
 *
 * The decode-and-re-encode of step 2 is kept on purpose: it is what the
 * model saw, including the space the legacy Llama normalizer's "▁" leaves
 * after each special token ("<instruct> Given ...").
 */
#ifndef ICL_PROMPT_DECODER_H
#define ICL_PROMPT_DECODER_H

#include "../tokenizer/tok.h"
#include "prompt.h"

typedef struct icl_decoder_tokens {
    tok_encoding enc;  /* the final ids (offsets index `text`) */
    char *text;        /* the final prompt text, NUL-terminated */
    size_t text_len;
    size_t max_length; /* step 4's max_length */
    int query_cut;     /* step 1 dropped tokens of the query */
} icl_decoder_tokens;

/* Assembles p's query (p->decoder is ignored: the suffix is always added)
 * with a BPE tokenizer from tok_load. query_max_len must leave room for
 * at least one query token. On success *out owns its buffers; free them
 * with icl_decoder_tokens_free. */
bgeicl_code icl_decoder_assemble(const tok_tokenizer *tok, const icl_prompt *p,
                                 size_t query_max_len, icl_decoder_tokens *out, bg_err *err);
void icl_decoder_tokens_free(icl_decoder_tokens *out);

#endif
