/*
 * wire.h - the client's side of POST /v1/embeddings (cl_wire_): request
 * bodies out, vectors and error messages in.
 *
 * Requests ask for "encoding_format":"base64" (little-endian float32): a
 * vector is then 4 bytes per dimension and a memcpy to decode, where the
 * float form costs ~10 bytes per dimension and a strtod each.
 *
 * Replies are checked, never trusted: `data` must hold exactly one item
 * per input, each `index` in range and seen once, every embedding the same
 * positive dimension (and the call's dimension, when one is known), every
 * value finite. A float array is accepted in place of base64 (a server
 * that ignores encoding_format).
 */
#ifndef CL_WIRE_H
#define CL_WIRE_H

#include <stddef.h>

/* A growable byte buffer; `oom` sticks once an append fails. */
typedef struct cl_buf {
    char *p;
    size_t n, cap;
    int oom;
} cl_buf;

void cl_buf_free(cl_buf *b);
void cl_buf_put(cl_buf *b, const char *s, size_t n);
void cl_buf_puts(cl_buf *b, const char *s);
/* s[0..n) as a JSON string literal, quotes included. */
void cl_buf_json_str(cl_buf *b, const char *s, size_t n);

/* How a request's inputs are to be embedded. */
typedef enum cl_kind {
    CL_KIND_DOCUMENT = 0, /* plain */
    CL_KIND_QUERY_PLAIN,  /* input_type query, enable_icl false */
    CL_KIND_QUERY_SERVER, /* input_type query, enable_icl true, language: the server's bank */
    CL_KIND_QUERY_CONTEXT /* input_type query with an icl_context built here */
} cl_kind;

typedef struct cl_context {
    cl_kind kind;
    const char *language;     /* QUERY_SERVER, QUERY_CONTEXT: a name or "auto" */
    const char *instruction;  /* QUERY_CONTEXT */
    const char *const *ex_query, *const *ex_response;
    size_t n_examples;
    int no_truncate;          /* "truncate": false */
} cl_context;

/* Writes the request body for inputs texts[idx[k]] (lens[idx[k]] bytes), k < n. */
void cl_wire_body(cl_buf *b, const char *model, const cl_context *ctx, const char *const *texts,
                  const size_t *lens, const size_t *idx, size_t n);

enum { CL_WIRE_OK = 0, CL_WIRE_BAD = -1, CL_WIRE_DIM = -2, CL_WIRE_NOMEM = -3 };

/* Parses a 200 reply for n inputs into *vecs (bg_malloc'd, n x *dim, row k
 * for input k of the request). *dim: in, the expected dimension or 0; out,
 * the reply's. Returns CL_WIRE_*, with a message in why. */
int cl_wire_parse(const char *body, size_t len, size_t n, size_t *dim, float **vecs, char *why,
                  size_t why_len);

/* The message of an OpenAI-shaped error body, or the start of the body. */
void cl_wire_error_message(const char *body, size_t len, char *out, size_t out_len);

#endif
