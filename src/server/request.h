/*
 * request.h - parsing and validation of HTTP request bodies.
 *
 * Each req_parse_* takes a raw JSON body (not necessarily NUL-terminated),
 * fills a plain struct on success and returns 0; on failure it returns the
 * HTTP status, fills a req_error (status + OpenAI error fields) and leaves the
 * output struct zeroed, so req_free_* is always safe to call.
 *
 *   400 invalid_request_error  malformed JSON/UTF-8, wrong type or value
 *   413 invalid_request_error  too many inputs, an input too long
 *   500 server_error           out of memory (code "out_of_memory")
 *
 * Codes used: invalid_json, nesting_too_deep, invalid_type, invalid_value,
 * invalid_utf8, missing_field, too_many_inputs, input_too_long, out_of_memory.
 *
 * Unknown fields are ignored; null counts as absent for optional fields.
 * A body containing the escape \u0000 anywhere is rejected (400).
 */
#ifndef BG_SERVER_REQUEST_H
#define BG_SERVER_REQUEST_H

#include <stddef.h>
#include <stdint.h>

/* Maximum bracket nesting depth of a request body. */
#define REQ_MAX_DEPTH 64

typedef struct req_error {
    int status;         /* HTTP status */
    const char *type;   /* "invalid_request_error", "server_error", ... (static) */
    char param[64];     /* "" = null */
    char code[48];      /* "" = null */
    char message[512];
} req_error;

/* Fills an error (type chosen from status unless `type` is not NULL). `param`
 * and `code` may be NULL for null. Returns status. Usable for any route. */
int req_error_set(req_error *e, int status, const char *type, const char *param,
                  const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Renders {"error":{"message":...,"type":...,"param":...|null,"code":...|null}}
 * as a NUL-terminated bg_malloc'd string (free with bg_free); *len gets its
 * length when len is not NULL. Returns NULL on allocation failure. */
char *req_error_json(const req_error *e, size_t *len);

typedef struct req_limits {
    size_t max_inputs;       /* inputs per request; 0 = no limit */
    size_t max_input_bytes;  /* bytes per string input; 0 = no limit */
    size_t max_input_tokens; /* ids per token-id input; 0 = no limit */
    int max_dimensions;      /* upper bound of `dimensions`; 0 = no bound */
} req_limits;

/* One input, in request order (index == position). */
typedef struct req_input {
    size_t index;
    const char *text;   /* NUL-terminated UTF-8; NULL for token-id inputs */
    size_t len;         /* bytes of text */
    const int32_t *ids; /* token ids (0 .. 2^31-1); NULL for text inputs */
    size_t n_ids;
} req_input;

typedef struct req_inputs {
    req_input *items;
    size_t count;       /* >= 1 after a successful parse */
    int is_tokens;      /* 1: every item is a token-id array */
    int was_array;      /* 0: the field was a single string */
    char *text_arena_;  /* private storage */
    int32_t *id_arena_;
} req_inputs;

typedef struct req_icl_example {
    char *text;     /* plain-string form; NULL for the object form */
    char *query;    /* object form; NULL for the string form */
    char *response; /* object form; NULL when not given */
} req_icl_example;

typedef struct req_icl_context {
    int present;                 /* icl_context was an object */
    char *instruction;           /* NULL when not given */
    req_icl_example *examples;
    size_t n_examples;
    char *language;              /* NULL when not given */
    int enable_context_learning; /* default 1 */
    int has_similarity_score;
    double similarity_score;
    int has_context_processing_time;
    double context_processing_time;
} req_icl_context;

typedef enum { REQ_ENC_FLOAT = 0, REQ_ENC_BASE64 = 1 } req_encoding;
typedef enum { REQ_INPUT_DOCUMENT = 0, REQ_INPUT_QUERY = 1 } req_input_type;

/* POST /v1/embeddings */
typedef struct req_embeddings {
    req_inputs input;
    char *model;                 /* NULL when not given */
    req_encoding encoding_format;
    int dimensions;              /* 0 when not given */
    req_input_type input_type;
    int truncate;                /* default 1 */
    int enable_icl;              /* -1 not given, else 0/1 */
    char *language;              /* NULL when not given */
    req_icl_context icl;
} req_embeddings;

/* POST /embed (TEI) */
typedef struct req_embed {
    req_inputs inputs;
    int normalize;    /* default 1 */
    int truncate;     /* default 1 */
    int prompt_query; /* 1 when prompt_name is "query" */
} req_embed;

/* POST /tokenize (TEI) */
typedef struct req_tokenize {
    req_inputs inputs;
    int add_special_tokens; /* default 1 */
} req_tokenize;

/* `lim` may be NULL (no limits). Return 0 or the error's HTTP status. */
int req_parse_embeddings(const char *body, size_t len, const req_limits *lim,
                         req_embeddings *out, req_error *err);
int req_parse_embed(const char *body, size_t len, const req_limits *lim,
                    req_embed *out, req_error *err);
int req_parse_tokenize(const char *body, size_t len, const req_limits *lim,
                       req_tokenize *out, req_error *err);

/* Free what a parse filled and zero the struct; NULL is accepted. */
void req_free_embeddings(req_embeddings *r);
void req_free_embed(req_embed *r);
void req_free_tokenize(req_tokenize *r);

#endif
