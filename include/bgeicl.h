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
    BGEICL_ERR_TOO_LONG = 7,    /* an input is longer than the model allows, truncation off */
    /* client */
    BGEICL_ERR_HTTP = 8,        /* a server answered 4xx (not retried) or kept failing */
    BGEICL_ERR_CONNECT = 9,     /* no server could be reached */
    BGEICL_ERR_TIMEOUT = 10,    /* a request ran past timeout_s on every attempt */
    BGEICL_ERR_AUTH = 11        /* 401: missing or wrong API key */
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

/* Precision of the linear layers' weights (Q/K/V, attention output, FFN
 * in and out). Embeddings, LayerNorm, biases, attention and pooling stay
 * fp32 in every dtype.
 *   FP32  fp32 weights and arithmetic: the reference (cosine >= 0.9999 to
 *         sentence-transformers).
 *   BF16  weights rounded to bf16 (nearest even) at load, half the memory;
 *         each GEMM rounds its activations to bf16 and sums in fp32, with
 *         AMX or the AVX512_BF16 dot product where the CPU has them
 *         (cosine >= 0.999 to fp32).
 *   INT8  weights quantized to int8 with one scale per output channel at
 *         load, a quarter of the memory; each GEMM quantizes its
 *         activations to 8 bits per token (scale and zero point from the
 *         token's range) and sums exactly in int32, with AMX or
 *         AVX512-VNNI where the CPU has them (cosine >= 0.99 to fp32). */
typedef enum bgeicl_dtype {
    BGEICL_DTYPE_FP32 = 0,
    BGEICL_DTYPE_BF16 = 1,
    BGEICL_DTYPE_INT8 = 2
} bgeicl_dtype;

/* "fp32", "bf16", "int8"; NULL for a value outside the enum. */
const char *bgeicl_dtype_name(bgeicl_dtype dtype);
/* The dtype named `name` ("fp32", "bf16", "int8") into *out: 0, or -1 if unknown. */
int bgeicl_dtype_parse(const char *name, bgeicl_dtype *out);

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
    const char *dtype;          /* "fp32", "bf16" or "int8" (bgeicl_dtype_name) */
    size_t dim;                 /* embedding dimension */
    size_t max_tokens;          /* max sequence length, special tokens included */
    size_t layers, heads, intermediate, vocab_size;
    bgeicl_pooling pooling;
    int threads;
    /* The linear layers' GEMM for the dtype in use: "openblas", "avx2" or
     * "avx512" (fp32); "amx-bf16", "avx512-bf16", "avx512f", "avx2" or
     * "scalar" (bf16); "amx-int8", "avx512-vnni", "avx2" or "scalar" (int8). */
    const char *gemm;
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

/* ------------------------------------------------------------------------ */
/* Client                                                                    */
/*
 * A client of one or more `bgeicl serve` replicas (or any server speaking
 * the same API). It splits a call's texts into batches, sends up to
 * `max_concurrency` of them at once over reused keep-alive connections,
 * retries and fails over, and returns exactly one vector per input, in
 * input order, or fails as a whole.
 *
 *   bgeicl_client_options o;
 *   bgeicl_client_options_init(&o);                 defaults below
 *   bgeicl_client_options_from_env(&o, &err);       BGE_ICL_* variables
 *   o.servers = "http://a:8080@3,http://b:8080";    flags override env
 *   bgeicl_client *c;
 *   bgeicl_client_new(&o, &c, &err);
 *   bgeicl_vectors v;
 *   bgeicl_client_embed(c, texts, NULL, n, 0, NULL, &v, &err);
 *   ... v.data[i * v.dim ...] ...
 *   bgeicl_vectors_free(&v);
 *   bgeicl_client_free(c);
 *
 * Thread-safety: a client may be used from several threads at once; calls
 * share its connections, batch-size controller, health state and metrics.
 */

typedef struct bgeicl_client bgeicl_client;

/* Client options. Initialise with bgeicl_client_options_init. Strings are
 * copied by bgeicl_client_new. New fields are only ever appended. */
typedef struct bgeicl_client_options {
    /* "URL[@WEIGHT][,URL[@WEIGHT]...]", e.g. "http://a:8080@3,http://b:8080".
     * Weight is a positive number, default 1. Default "http://127.0.0.1:8080". */
    const char *servers;
    const char *api_key;          /* sent as Authorization: Bearer; NULL = none */
    const char *model;            /* the request's "model"; NULL = "bge-in-icl" */
    double connect_timeout_s;     /* 10 */
    double timeout_s;             /* 120: one HTTP request, connect to last byte */

    /* Batching. The controller keeps the last `window` batch times
     * (seconds per text) and acts once it has `min_points` of them: when the
     * mean of the last 3 exceeds shrink_above x the window mean, the size
     * becomes size x shrink_factor; when it is below grow_below x the window
     * mean, size x grow_factor (at least +1, so that small sizes grow too);
     * always within [min_batch_size, max_batch_size]. */
    int batch_size;               /* 50: the starting size */
    int adaptive;                 /* 1 */
    int min_batch_size;           /* 10 */
    int max_batch_size;           /* 100 */
    int window;                   /* 10 */
    int min_points;               /* 3 */
    double shrink_above;          /* 1.5 */
    double shrink_factor;         /* 0.8 */
    double grow_below;            /* 0.7 */
    double grow_factor;           /* 1.2 */

    /* In-context learning, for texts embedded as queries (BGEICL_QUERY).
     * The client keeps the context cache, as ChunkHound's BGE-IN-ICL
     * provider does: per query it detects the language (or takes
     * `language`), takes the examples chosen for a similar earlier query
     * from its cache or selects them from the example bank, and sends them
     * as the request's icl_context; queries sharing a context share
     * requests. Without a bank the server's own bank is used (enable_icl). */
    int enable_icl;               /* 0, as the server: with encoder BGE models ICL
                                     lowered retrieval quality (docs/RETRIEVAL.md) */
    const char *language;         /* "auto" or a language name; NULL = "auto" */
    const char *icl_examples_dir; /* NULL = the installed bank, if any */
    int icl_examples;             /* examples per query: 0 = the library default */
    int context_cache_size;       /* 200 */
    double similarity_threshold;  /* 0.8 */

    int max_concurrency;          /* 4: batches in flight at once, over all servers */

    /* Retries: on connection errors, timeouts, malformed replies and
     * 429/500/502/503/504, up to max_retries more attempts per batch. A
     * batch whose server fails goes at once to another healthy server it
     * has not tried (a failover); when there is none, it waits
     * retry_delay_s x backoff^attempt (or the server's Retry-After, when
     * longer) first. Other 4xx fail the call at once (401: BGEICL_ERR_AUTH). */
    int max_retries;              /* 3 */
    double retry_delay_s;         /* 1 */
    double retry_backoff;         /* 2 */

    /* A background thread probes every server's /health this often; an
     * unhealthy server's weight drops to 1/1000 of its own until a probe
     * succeeds. 0 = no background probes (failures still mark a server down). */
    double health_check_interval_s; /* 30 */

    /* Log lines on stderr (retries, failovers, health changes; at "debug"
     * one line per batch and per batch-size change): "debug", "info",
     * "warn", "error" or "off". NULL = "off". */
    const char *log_level;
} bgeicl_client_options;

void bgeicl_client_options_init(bgeicl_client_options *o);

/* Applies BGE_ICL_BASE_URL, BGE_ICL_API_KEY, BGE_ICL_BATCH_SIZE,
 * BGE_ICL_TIMEOUT, BGE_ICL_LANGUAGE, BGE_ICL_ENABLE_ICL,
 * BGE_ICL_ADAPTIVE_BATCHING, BGE_ICL_MIN_BATCH_SIZE, BGE_ICL_MAX_BATCH_SIZE,
 * BGE_ICL_CONTEXT_CACHE_SIZE, BGE_ICL_SIMILARITY_THRESHOLD,
 * BGE_ICL_HEALTH_CHECK_INTERVAL and BGE_ICL_LOG_LEVEL when set and not
 * empty. Booleans take 1/0, true/false, yes/no, on/off. The strings point
 * into the environment. A bad value fails with BGEICL_ERR_ARG naming the
 * variable, and leaves the other fields as they were. */
bgeicl_code bgeicl_client_options_from_env(bgeicl_client_options *o, bgeicl_error *err);

/* Validates the options (bad URL, weight, bounds: BGEICL_ERR_ARG naming the
 * field), loads the example bank when ICL is on (an unreadable
 * icl_examples_dir fails here) and starts the client: max_concurrency
 * sender threads, each with its own keep-alive connections, and the
 * health-check thread. No request is sent yet. With adaptive batching the
 * starting size is clamped into [min_batch_size, max_batch_size]. */
bgeicl_code bgeicl_client_new(const bgeicl_client_options *o, bgeicl_client **out,
                              bgeicl_error *err);
void bgeicl_client_free(bgeicl_client *c);

/* A matrix of n vectors of dim floats, row i for input i. */
typedef struct bgeicl_vectors {
    float *data;
    size_t n, dim;
} bgeicl_vectors;
void bgeicl_vectors_free(bgeicl_vectors *v);

/* Embeds n >= 1 texts (lens may be NULL: NUL-terminated; each text must be
 * non-empty valid UTF-8). flags: BGEICL_QUERY embeds them as queries (with
 * ICL when enabled); BGEICL_NO_TRUNCATE sends "truncate": false, so that an
 * over-long input fails with BGEICL_ERR_TOO_LONG; other flags are
 * BGEICL_ERR_ARG. `language` overrides the option for this call (NULL =
 * the option). Batches are formed as senders free up, each with the
 * controller's size at that moment. On success *out holds n rows in input
 * order (free with bgeicl_vectors_free); on failure *out is empty and err
 * says which server answered what. */
bgeicl_code bgeicl_client_embed(bgeicl_client *c, const char *const *texts, const size_t *lens,
                                size_t n, unsigned flags, const char *language,
                                bgeicl_vectors *out, bgeicl_error *err);

/* The performance-tuning guide's get_performance_metrics(). */
#define BGEICL_RECENT_BATCHES 10
typedef struct bgeicl_client_metrics {
    uint64_t total_requests;      /* HTTP embedding requests that succeeded */
    uint64_t total_texts;
    double total_time;            /* seconds inside bgeicl_client_embed */
    double avg_texts_per_second;  /* total_texts / total_time */
    double avg_response_time;     /* seconds per successful request */
    double cache_hit_rate;        /* the client's context cache, 0..1 */
    int current_batch_size;
    int adaptive_batching_enabled;
    int recent_batch_sizes[BGEICL_RECENT_BATCHES]; /* oldest first */
    size_t n_recent;
    uint64_t retries;             /* attempts after a failure */
    uint64_t failovers;           /* batches moved to another server */
    uint64_t errors;              /* failed attempts */
} bgeicl_client_metrics;
void bgeicl_client_metrics_get(bgeicl_client *c, bgeicl_client_metrics *out);

/* One server as the client sees it. Strings live as long as the client. */
typedef struct bgeicl_server_state {
    const char *url;
    double weight;                /* configured */
    double effective_weight;      /* weight, or weight/1000 while unhealthy */
    int healthy;
    const char *status;           /* last /health status: "healthy", "draining", "unreachable", ... */
    double last_latency_ms;       /* of the last /health probe or request */
    uint64_t requests, errors;    /* embedding requests sent to it, and failed ones */
} bgeicl_server_state;

size_t bgeicl_client_server_count(const bgeicl_client *c);
/* Snapshot of server i (< count). */
void bgeicl_client_server_get(bgeicl_client *c, size_t i, bgeicl_server_state *out);
/* Probes every server's /health now and updates their state. Returns
 * BGEICL_OK if at least one is healthy. */
bgeicl_code bgeicl_client_check_health(bgeicl_client *c, bgeicl_error *err);

/* GET `path` (such as "/info" or "/metrics?format=json") from server i,
 * with the API key and timeouts, retrying connection errors and timeouts
 * as embedding requests do. Any HTTP answer is BGEICL_OK with *status set,
 * except 401 (BGEICL_ERR_AUTH; *status and *body are still set). *body is
 * malloc'd and NUL-terminated; free with bgeicl_free. `len` may be NULL. */
bgeicl_code bgeicl_client_get(bgeicl_client *c, size_t i, const char *path, long *status,
                              char **body, size_t *len, bgeicl_error *err);
void bgeicl_free(void *p);

#ifdef __cplusplus
}
#endif
#endif /* BGEICL_H */
