/*
 * bgeicl.h - the public C API of libbgeicl.
 *
 * libbgeicl loads a BERT-family embedding model (BGE, MiniLM, ...) from a
 * Hugging Face model folder and computes sentence embeddings on the CPU.
 *
 *   bgeicl_model *m;
 *   bgeicl_error err;
 *   if (bgeicl_model_open("models/bge-small-en-v1.5", NULL, &m, &err) != BGEICL_OK)
 *       fprintf(stderr, "%s\n", err.message);
 *   float vec[384];
 *   const char *text = "def add(a, b): return a + b";
 *   bgeicl_embed(m, &text, NULL, 1, 0, vec, NULL, &err);
 *   bgeicl_model_close(m);
 *
 * Conventions
 *   - Every call that can fail returns a bgeicl_code and, when `err` is not
 *     NULL, fills it with the same code and a message naming the file, field
 *     or limit at fault. `err` may always be NULL.
 *   - Handles are opaque. Every *_open / *_new has a matching *_close / *_free
 *     that accepts NULL.
 *   - Text is UTF-8. Invalid UTF-8 is rejected with BGEICL_ERR_ARG.
 *
 * Thread-safety
 *   - A bgeicl_model is immutable after bgeicl_model_open returns.
 *     bgeicl_tokenize, bgeicl_model_info and the accessors are reentrant and
 *     may run concurrently from any number of threads.
 *   - bgeicl_embed may be called from several threads at once; the calls are
 *     serialised on the model's internal thread pool (one forward pass at a
 *     time, each using all of the model's threads).
 */
#ifndef BGEICL_H
#define BGEICL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BGEICL_VERSION "0.1.0"

typedef enum bgeicl_code {
    BGEICL_OK = 0,
    BGEICL_ERR_IO = 1,          /* a file could not be opened, read or mapped */
    BGEICL_ERR_FORMAT = 2,      /* a file is malformed, truncated or inconsistent */
    BGEICL_ERR_UNSUPPORTED = 3, /* an architecture, dtype or setting we do not implement */
    BGEICL_ERR_SHAPE = 4,       /* a tensor's shape disagrees with config.json */
    BGEICL_ERR_NOMEM = 5,       /* an allocation failed */
    BGEICL_ERR_ARG = 6,         /* a bad argument: NULL, invalid UTF-8, empty input, ... */
    BGEICL_ERR_TOO_LONG = 7     /* an input is longer than the model allows, truncation off */
} bgeicl_code;

typedef struct bgeicl_error {
    bgeicl_code code;
    char message[512];
} bgeicl_error;

/* A short stable name for a code, such as "format" or "too_long". */
const char *bgeicl_code_name(bgeicl_code code);

/* Library version string, equal to BGEICL_VERSION of the build. */
const char *bgeicl_version(void);

/* ------------------------------------------------------------------------ */
/* Model                                                                     */

typedef struct bgeicl_model bgeicl_model;

typedef enum bgeicl_dtype {
    BGEICL_DTYPE_FP32 = 0
} bgeicl_dtype;

/* Load-time options. Initialise with bgeicl_options_init, then set fields.
 * New fields are only ever appended. */
typedef struct bgeicl_options {
    int threads;          /* worker threads; 0 = one per online core */
    bgeicl_dtype dtype;   /* weight precision used for inference */
    size_t max_batch_tokens; /* tokens per forward pass; longer batches are split. 0 = 16384 */
} bgeicl_options;

void bgeicl_options_init(bgeicl_options *opts);

/* Loads config.json, the tokenizer files and model.safetensors from `dir`.
 * `opts` may be NULL for defaults. On success *out owns the model. */
bgeicl_code bgeicl_model_open(const char *dir, const bgeicl_options *opts,
                              bgeicl_model **out, bgeicl_error *err);
void bgeicl_model_close(bgeicl_model *model);

typedef enum bgeicl_pooling {
    BGEICL_POOL_CLS = 0,
    BGEICL_POOL_MEAN = 1
} bgeicl_pooling;

/* Read-only facts about a loaded model. Strings live as long as the model. */
typedef struct bgeicl_model_info {
    const char *id;             /* the folder name, e.g. "bge-small-en-v1.5" */
    const char *hf_id;          /* the Hugging Face id if known, else "" */
    const char *architecture;   /* e.g. "BertModel" */
    const char *query_instruction; /* prepended to queries, "" if none */
    const char *isa;            /* kernel set in use: "avx512", "avx2" or "scalar" */
    const char *dtype;          /* "fp32" */
    size_t dim;                 /* embedding dimension */
    size_t max_tokens;          /* max sequence length, special tokens included */
    size_t layers, heads, intermediate, vocab_size;
    bgeicl_pooling pooling;
    int threads;
} bgeicl_model_info;

void bgeicl_model_info_get(const bgeicl_model *model, bgeicl_model_info *info);
size_t bgeicl_model_dim(const bgeicl_model *model);

/* ------------------------------------------------------------------------ */
/* Tokenizer                                                                 */

/* A tokenized text: ids with byte offsets [start, end) into the input.
 * Special tokens have start == end == 0. Free with bgeicl_tokens_free. */
typedef struct bgeicl_tokens {
    int32_t *ids;
    uint32_t *start;
    uint32_t *end;
    size_t n;
    size_t cap;
} bgeicl_tokens;

/* Flags for bgeicl_tokenize and bgeicl_embed. */
enum {
    BGEICL_NO_SPECIAL = 1u << 0,  /* tokenize only: leave out [CLS] and [SEP] */
    BGEICL_NO_TRUNCATE = 1u << 1, /* fail with BGEICL_ERR_TOO_LONG instead of cutting */
    BGEICL_QUERY = 1u << 2,       /* prepend the model's query instruction (offsets then
                                     point into the instruction + text) */
    BGEICL_NO_NORMALIZE = 1u << 3 /* embed only: the pooled vectors, not L2-normalised */
};

/* Tokenizes `len` bytes of `text` (len == (size_t)-1: NUL-terminated) into
 * `out`, reusing its buffers. Truncates to the model's max length unless
 * BGEICL_NO_TRUNCATE is given. */
bgeicl_code bgeicl_tokenize(const bgeicl_model *model, const char *text, size_t len,
                            unsigned flags, bgeicl_tokens *out, bgeicl_error *err);
void bgeicl_tokens_free(bgeicl_tokens *tokens);

/* The vocabulary string of a token id, or NULL if out of range. */
const char *bgeicl_token_text(const bgeicl_model *model, int32_t id);

/* ------------------------------------------------------------------------ */
/* Embedding                                                                 */

/* Optional statistics of one bgeicl_embed call. */
typedef struct bgeicl_embed_stats {
    size_t tokens;          /* tokens processed, special tokens included */
    double tokenize_ms;
    double inference_ms;
} bgeicl_embed_stats;

/* Embeds n texts into out[i * dim .. i * dim + dim), L2-normalised.
 * `lens` may be NULL (all NUL-terminated). `stats` may be NULL.
 * Either every row of `out` is written or the call fails as a whole. */
bgeicl_code bgeicl_embed(bgeicl_model *model, const char *const *texts, const size_t *lens,
                         size_t n, unsigned flags, float *out, bgeicl_embed_stats *stats,
                         bgeicl_error *err);

/* Embeds n pre-tokenized sequences (ids already include [CLS]/[SEP] as the
 * caller wants them). Ids must be in [0, vocab_size); sequences longer than
 * max_tokens are cut unless BGEICL_NO_TRUNCATE. */
bgeicl_code bgeicl_embed_ids(bgeicl_model *model, const int32_t *const *ids,
                             const size_t *lens, size_t n, unsigned flags, float *out,
                             bgeicl_embed_stats *stats, bgeicl_error *err);

#ifdef __cplusplus
}
#endif
#endif /* BGEICL_H */
