/*
 * tok_internal.h - private structures of the tokenizer module.
 *
 * Pipeline of tok_encode (each stage in its own file):
 *
 *   input bytes
 *     -> tok_added.c      split out added/special tokens ("[CLS]" typed in the
 *                         text), matched on the raw bytes like the tokenizers
 *                         library's AddedVocabulary (leftmost-longest)
 *     -> tok_normalize.c  BertNormalizer per segment: clean_text ->
 *                         handle_chinese_chars -> strip_accents (NFD, drop Mn)
 *                         -> lowercase; every normalized char carries the byte
 *                         span of the original char it came from
 *     -> tok_pretok.c     BertPreTokenizer: split on whitespace, isolate
 *                         punctuation; builds one word at a time
 *     -> tok_wordpiece.c  greedy longest-match-first WordPiece per word
 *     -> tok_encode.c     drives the above, writes ids/offsets, truncates
 *
 * Unicode facts come from utf8proc through tok_unicode.c, which also emulates
 * the older Unicode versions the tokenizers library was built with.
 */
#ifndef TOK_INTERNAL_H
#define TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tok.h"

/* ---- vocabulary (tok_vocab.c) ---------------------------------------- */

/*
 * An open-addressing hash table from token string to id, plus the reverse
 * array from id to string.
 *
 * Invariants:
 *   - arena holds every token string NUL-terminated; str_off[id] is the start
 *     of the string of id (TOK_NO_STR where no token has that id) and
 *     str_len[id] its length without the NUL.
 *   - slots has mask + 1 entries, a power of two at least twice the number of
 *     distinct strings, so probing always ends at an empty slot (id < 0).
 *   - A slot holds the 32-bit final hash of its string, which is compared
 *     before the bytes. Linear probing; no deletion, so no tombstones.
 *   - The same string added twice keeps the later id (as a Rust HashMap
 *     filled in file order does); both ids keep their reverse string.
 */
#define TOK_NO_STR UINT32_MAX

typedef struct tok_slot {
    uint32_t hash;
    int32_t id; /* -1: empty */
} tok_slot;

typedef struct tok_vocab {
    char *arena;
    size_t arena_len, arena_cap;
    uint32_t *str_off;
    uint32_t *str_len;
    size_t n_ids; /* max id + 1 */
    tok_slot *slots;
    size_t mask;
    size_t max_len; /* longest token string in bytes */
} tok_vocab;

/* FNV-1a over bytes, then a final mix so the low bits index well. Callers
 * hash incrementally (WordPiece extends a candidate one byte at a time). */
#define TOK_HASH_INIT 0xcbf29ce484222325ULL
static inline uint64_t tok_hash_step(uint64_t h, unsigned char b)
{
    return (h ^ b) * 0x100000001b3ULL;
}
static inline uint32_t tok_hash_final(uint64_t h)
{
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    return (uint32_t)h;
}
uint32_t tok_hash_bytes(const char *s, size_t len);

/* Sizes the table for n_strings strings, ids below n_ids and str_bytes bytes
 * of string data (without NULs). Returns 0, or -1 when out of memory. */
int tok_vocab_alloc(tok_vocab *v, size_t n_strings, size_t n_ids, size_t str_bytes);
/* Adds a string with its id (id < n_ids; capacity given to tok_vocab_alloc). */
void tok_vocab_put(tok_vocab *v, const char *s, size_t len, int32_t id);
void tok_vocab_free(tok_vocab *v);
/* Id of the string a||b whose final hash is h, or -1. */
int32_t tok_vocab_find2(const tok_vocab *v, uint32_t h, const char *a, size_t alen,
                        const char *b, size_t blen);
int32_t tok_vocab_find(const tok_vocab *v, const char *s, size_t len);
const char *tok_vocab_str(const tok_vocab *v, int32_t id);

/* ---- added tokens (tok_added.c) ---------------------------------------- */

/* Tokens matched on the raw input before normalization (the tokenizers
 * library's non-normalized AddedTokens; BERT's [CLS], [SEP], [MASK], ...).
 * Invariant: first[b] is 1 iff some token starts with byte b; tokens are
 * sorted by decreasing length so the first match at a position is the
 * longest; single_first >= 0 iff all tokens start with that byte. */
typedef struct tok_added {
    size_t n;
    char **str;
    size_t *len;
    int32_t *id;
    unsigned char first[256];
    int single_first; /* the first byte shared by all tokens, or -1 */
} tok_added;

/* Adds one token (copied). Returns 0 or -1 when out of memory. */
int tok_added_add(tok_added *a, const char *s, int32_t id);
void tok_added_finish(tok_added *a);
void tok_added_free(tok_added *a);
/* Finds the first match at or after pos: returns its position (len if none)
 * and sets *mlen / *id. */
size_t tok_added_next(const tok_added *a, const char *s, size_t len, size_t pos,
                      size_t *mlen, int32_t *id);
/* Reverse lookup for ids outside the model vocabulary; NULL if absent. */
const char *tok_added_str(const tok_added *a, int32_t id);

/* ---- the tokenizer ----------------------------------------------------- */

/* Classes of ASCII bytes, precomputed at load from the normalizer flags. */
enum { TOK_A_WORD = 0, TOK_A_REMOVE = 1, TOK_A_SPACE = 2, TOK_A_PUNCT = 3 };

struct tok_tokenizer {
    tok_vocab vocab;
    tok_added added;

    /* BertNormalizer */
    int clean_text, handle_cjk, strip_accents, lowercase;
    unsigned char ascii_class[128];
    unsigned char ascii_map[128]; /* lowercased byte when lowercase is on */
    int32_t ascii_punct_id[128];  /* WordPiece result of a lone ASCII punctuation char */

    /* WordPiece */
    int32_t unk_id;
    char *prefix; /* continuing_subword_prefix */
    size_t prefix_len;
    uint64_t prefix_hash; /* hash state after the prefix bytes */
    size_t max_word_chars; /* max_input_chars_per_word */
    size_t max_first_len;  /* longest vocab string (bytes) */
    size_t max_cont_len;   /* longest vocab string after the prefix, minus the prefix */

    /* Post-processor: specials around the sequence */
    int32_t *pre_ids, *post_ids;
    size_t n_pre, n_post;
    int32_t pad_id;

    /* Set for a SentencePiece-style BPE model (tok_bpe.h); the WordPiece
     * fields above are then unused. */
    struct tok_bpe *bpe;
};

/* Fills the derived fields (ascii tables, prefix hash, max lengths). */
void tok_finish_setup(tok_tokenizer *t);

/* ---- loading (tok_load*.c) --------------------------------------------- */

bgeicl_code tok_load_json(tok_tokenizer *t, const char *path, bg_err *err);
bgeicl_code tok_load_vocab_txt(tok_tokenizer *t, const char *dir, bg_err *err);
/* Fills t->vocab from a tokenizer.json model.vocab object (tok_load_json.c;
 * shared by the WordPiece and BPE models). */
struct tok_jctx;
struct cJSON;
bgeicl_code tok_load_json_vocab(const struct tok_jctx *c, tok_tokenizer *t,
                                const struct cJSON *vocab);
/* Adds a special added token; content must be in the vocabulary or the
 * caller supplies id_if_absent (>= 0). */
bgeicl_code tok_add_special(tok_tokenizer *t, const char *content, int32_t id_if_absent,
                            const char *file, bg_err *err);

/* ---- encoding state (tok_encode.c and the stages) ---------------------- */

typedef struct tok_span {
    uint32_t start, end;
} tok_span;

/* One decomposed char waiting in the canonical-reordering run of NFD. */
typedef struct tok_nfd_ent {
    int32_t cp;
    uint8_t ccc;
    uint8_t inserted; /* 1 unless it is the first char of its source's decomposition */
    tok_span src;     /* span of the source char (used when inserted == 0) */
} tok_nfd_ent;

#define TOK_NFD_INLINE 16
#define TOK_WORD_INLINE_CHARS 128
#define TOK_WORD_INLINE_BYTES (4 * TOK_WORD_INLINE_CHARS)

/* The word being built by the pre-tokenizer. Invariants: for i < len,
 * bytes[i] is a normalized byte whose original char spans [ostart[i],
 * oend[i]); hash has cap + 1 entries of scratch for WordPiece; nchars counts
 * the word's normalized chars, also those not stored. Storage starts in
 * tok_run's inline arrays and grows (one heap block, `heap` set) up to
 * limit = 4 * max_word_chars bytes: a char that does not fit under the
 * limit means the word has more than max_word_chars chars, so it is [UNK]
 * and its bytes are not needed. first_start is where the first char's span
 * starts, last_end where the last one's ends. oom: growing failed. */
typedef struct tok_word {
    unsigned char *bytes;
    uint32_t *ostart, *oend, *hash;
    size_t len, cap, limit, nchars;
    uint32_t first_start, last_end;
    int heap, oom;
} tok_word;

/* Makes room for n more bytes: 0 if there is room, -1 if the word is over
 * its limit or growing failed (then oom is set). */
int tok_word_room(tok_word *w, size_t n);

/* Appends one normalized ASCII byte spanning [s, e). */
static inline void tok_word_push1(tok_word *w, unsigned char b, uint32_t s, uint32_t e)
{
    if (w->nchars == 0)
        w->first_start = s;
    w->last_end = e;
    w->nchars++;
    if (w->len < w->cap || tok_word_room(w, 1) == 0) {
        w->bytes[w->len] = b;
        w->ostart[w->len] = s;
        w->oend[w->len] = e;
        w->len++;
    }
}

/* State of one tok_encode call; lives on its stack. */
typedef struct tok_run {
    const tok_tokenizer *tok;
    tok_encoding *enc;
    size_t content0; /* index in enc of the first content token */
    size_t limit;    /* max content tokens, SIZE_MAX if none */
    int stop;        /* limit exceeded or an error: stop tokenizing */
    bgeicl_code rc;  /* BGEICL_ERR_NOMEM if a stage ran out of memory */

    tok_word word;
    unsigned char word_bytes[TOK_WORD_INLINE_BYTES];
    uint32_t word_ostart[TOK_WORD_INLINE_BYTES], word_oend[TOK_WORD_INLINE_BYTES];
    uint32_t word_hash[TOK_WORD_INLINE_BYTES + 1];

    /* NFD run (strip_accents only): decomposed non-starters waiting for the
     * next starter, then stably sorted by combining class. nfd_tmp and
     * nfd_src are scratch of the same capacity. All three point at the
     * inline arrays until a run outgrows them, then into one heap block. */
    tok_nfd_ent *nfd, *nfd_tmp;
    tok_span *nfd_src;
    size_t nfd_n, nfd_cap;
    tok_nfd_ent nfd_inline[TOK_NFD_INLINE], nfd_tmp_inline[TOK_NFD_INLINE];
    tok_span nfd_src_inline[TOK_NFD_INLINE];
    tok_span nfd_last; /* span given to the last output char of NFD */
} tok_run;

/* Makes room for `extra` more tokens in enc. Returns 0 or -1 (NOMEM). */
int tok_enc_reserve(tok_encoding *enc, size_t extra);
/* tok_encode.c: the checks every model's encode starts with (NULLs, the
 * 4 GiB offset limit, room for the special tokens); fills err. */
bgeicl_code tok_check_args(const tok_tokenizer *t, const char *text, size_t len, size_t n_spec,
                           size_t max_len, const tok_encoding *enc, bg_err *err);

/* tok_normalize.c: one char of the original text spanning [start, end):
 * every non-ASCII char, and ASCII chars while an NFD run is pending. */
void tok_norm_char(tok_run *r, int32_t cp, uint32_t start, uint32_t end);
void tok_norm_begin_segment(tok_run *r, uint32_t seg_start);
/* Flushes the NFD run at the end of a segment. */
void tok_norm_flush(tok_run *r);
void tok_norm_release(tok_run *r);

/* tok_pretok.c: one normalized char with its original span. */
void tok_pretok_char(tok_run *r, int32_t cp, tok_span span);
void tok_pretok_end_word(tok_run *r);
/* Appends one token; sets r->stop once the content exceeds r->limit. */
void tok_emit(tok_run *r, int32_t id, uint32_t start, uint32_t end);

/* tok_wordpiece.c: tokenizes the finished word r->word into r->enc. */
void tok_wordpiece(tok_run *r);

#endif
