/*
 * tok_bpe.h - the SentencePiece-style BPE model of Llama/Mistral
 * tokenizer.json files, bit-exact with the Hugging Face `tokenizers`
 * library (model BPE with byte_fallback and fuse_unk, the Llama normalizer
 * Prepend("▁") + Replace(" ", "▁") or the Metaspace pre-tokenizer,
 * TemplateProcessing "<s> $A </s>"), plus its decoder (ids -> text).
 *
 * A tokenizer with a BPE model has tok_tokenizer.bpe set; tok_encode and
 * tok_decode dispatch on it. The vocabulary (t->vocab), the added tokens
 * (t->added) and the special tokens around a sequence (pre_ids/post_ids)
 * are shared with the WordPiece path.
 *
 * Data structures and invariants
 *
 *   Merge table (tok_merges): open addressing from the pair (left id, right
 *   id), packed as the 64-bit key left << 32 | right, to (rank, merged id).
 *   Ids are below 2^31 so no key equals TOK_MERGE_EMPTY. The slot count is
 *   a power of two at least twice the number of pairs (linear probing
 *   always reaches an empty slot). Rank is the merge's line in the file; a
 *   pair listed twice keeps the later rank, as the library's HashMap does.
 *
 *   Symbols (during one encode): the normalized text of a word becomes one
 *   symbol per char (or one per byte through byte fallback), each carrying
 *   its id and the byte span [start, end) of the original char(s) it came
 *   from. Live symbols form a doubly linked list (prev/next, -1 at a word's
 *   ends, so merges never cross words); a merged-away symbol has id -1.
 *
 *   Merge queue: a binary min-heap of (rank, position, merged id). Popping
 *   the minimum rank, then the leftmost position, and skipping entries whose
 *   pair no longer yields the same merged id, applies the merges in exactly
 *   the library's order. Each merge pushes at most two new pairs, so a word
 *   of n symbols costs O(n log n), however long.
 */
#ifndef TOK_BPE_H
#define TOK_BPE_H

#include "tok_json.h"

#define TOK_MERGE_EMPTY UINT64_MAX

typedef struct tok_merge_slot {
    uint64_t key; /* left << 32 | right, or TOK_MERGE_EMPTY */
    uint32_t rank;
    int32_t merged;
} tok_merge_slot;

typedef struct tok_merges {
    tok_merge_slot *slots;
    size_t mask; /* slot count - 1 */
    size_t n;    /* pairs stored */
} tok_merges;

/* Sizes the table for n pairs. Returns 0, or -1 when out of memory. */
int tok_merges_alloc(tok_merges *m, size_t n);
/* Adds or replaces (a later duplicate wins). Capacity from tok_merges_alloc. */
void tok_merges_put(tok_merges *m, int32_t left, int32_t right, uint32_t rank, int32_t merged);
/* The slot of the pair, or NULL. */
const tok_merge_slot *tok_merges_get(const tok_merges *m, int32_t left, int32_t right);
void tok_merges_free(tok_merges *m);

/* Decoder steps (tokenizer.json "decoder"), applied in order to the list
 * of token strings. */
enum {
    TOK_DEC_REPLACE,       /* every `from` in each token -> `to` */
    TOK_DEC_BYTE_FALLBACK, /* runs of <0xNN> tokens -> their bytes (U+FFFD each if not UTF-8) */
    TOK_DEC_FUSE,          /* all tokens -> one */
    TOK_DEC_STRIP,         /* up to `start` leading / `stop` trailing `from` chars per token */
    TOK_DEC_METASPACE      /* `from` -> " " (dropped in the first token unless never prepended) */
};

typedef struct tok_dec_step {
    int kind;
    char *from, *to; /* NUL-terminated; `from` is one char for STRIP and METASPACE */
    size_t start, stop;
    int prepend_never; /* METASPACE: prepend_scheme "never" */
} tok_dec_step;

enum { TOK_MS_NEVER = 0, TOK_MS_ALWAYS = 1, TOK_MS_FIRST = 2 };

typedef struct tok_bpe {
    tok_merges merges;
    int byte_fallback, fuse_unk;
    int32_t byte_id[256];  /* id of "<0xNN>" (all present when byte_fallback) */
    int32_t ascii_id[128]; /* id of each one-byte token, -1 if absent */

    /* Normalizer: Prepend(prepend) and Replace(" " -> space_rep); NULL = absent. */
    char *prepend, *space_rep;

    /* Metaspace pre-tokenizer (ms_rep NULL = none). */
    char *ms_rep;
    int ms_prepend; /* TOK_MS_* */
    int ms_split;

    /* Decoder; has_decoder 0 = none or one we do not implement. */
    tok_dec_step *dec;
    size_t n_dec;
    int has_decoder;
} tok_bpe;

/* tok_bpe_load.c: the BPE parts of tokenizer.json, called by tok_load_json
 * with t->bpe already allocated. model is root["model"] (type BPE). */
bgeicl_code tok_bpe_load_model(const tok_jctx *c, tok_tokenizer *t, const cJSON *model);
/* normalizer, pre_tokenizer and decoder. */
bgeicl_code tok_bpe_load_pipeline(const tok_jctx *c, tok_tokenizer *t, const cJSON *root);
void tok_bpe_free(tok_bpe *b);

/* tok_bpe.c: tok_encode for BPE tokenizers (same contract). */
bgeicl_code tok_bpe_encode(const tok_tokenizer *t, const char *text, size_t len,
                           int add_special, size_t max_len, tok_encoding *enc, int *truncated,
                           bg_err *err);

#endif
