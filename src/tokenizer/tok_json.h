/*
 * tok_json.h - small cJSON helpers for the tokenizer loaders: typed field
 * reads with defaults, and errors that name the file and the field.
 *
 * Every helper takes a tok_jctx naming the file (its path) and returns
 * BGEICL_OK or the error it reported through ctx->err.
 */
#ifndef TOK_JSON_H
#define TOK_JSON_H

#include <cJSON.h>

#include "tok_internal.h"

typedef struct tok_jctx {
    const char *path; /* file being read, for messages */
    bg_err *err;
} tok_jctx;

/* Reads and parses a whole JSON file. */
bgeicl_code tok_json_read(const char *path, cJSON **root, bg_err *err);

/* A field that is absent or JSON null leaves *out at its default. `field`
 * is the dotted name used in messages, e.g. "normalizer.lowercase". */
bgeicl_code tok_json_bool(const tok_jctx *c, const cJSON *obj, const char *key,
                          const char *field, int *out);
bgeicl_code tok_json_str(const tok_jctx *c, const cJSON *obj, const char *key,
                         const char *field, const char **out);
bgeicl_code tok_json_size(const tok_jctx *c, const cJSON *obj, const char *key,
                          const char *field, size_t *out);
/* An id: an integer in [0, INT32_MAX). */
bgeicl_code tok_json_id(const tok_jctx *c, const cJSON *item, const char *field, int32_t *out);
/* A required object field ("missing field" when absent). */
bgeicl_code tok_json_object(const tok_jctx *c, const cJSON *obj, const char *key,
                            const char *field, const cJSON **out);
/* The "type" string of a component object. */
bgeicl_code tok_json_type(const tok_jctx *c, const cJSON *obj, const char *field,
                          const char **out);
/* A token given as a string or as {"content": "..."} (AddedToken form). */
bgeicl_code tok_json_token(const tok_jctx *c, const cJSON *item, const char *field,
                           const char **out);

bgeicl_code tok_json_missing(const tok_jctx *c, const char *field);
bgeicl_code tok_json_unsupported(const tok_jctx *c, const char *field, const char *value,
                                 const char *supported);

#endif
