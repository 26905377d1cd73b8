/*
 * request.c - parsing and validation of request bodies (see request.h).
 *
 * One pre-scan of the raw body (NUL bytes, \u0000 escapes, nesting depth),
 * one cJSON parse, then field extraction. Inputs are copied into one text
 * arena (or one id arena) in two passes over the array: size, then copy.
 */
#include "server/request.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"

/* ---- errors ------------------------------------------------------------ */

static const char *type_for_status(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

static int verror_set(req_error *e, int status, const char *type, const char *param,
                      const char *code, const char *fmt, va_list ap)
{
    if (!e)
        return status;
    e->status = status;
    e->type = type ? type : type_for_status(status);
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    return status;
}

int req_error_set(req_error *e, int status, const char *type, const char *param,
                  const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror_set(e, status, type, param, code, fmt, ap);
    va_end(ap);
    return status;
}

/* Shorthand for the parsers: 400/413 invalid_request_error. */
static int fail(req_error *e, int status, const char *param, const char *code,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int fail(req_error *e, int status, const char *param, const char *code,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror_set(e, status, NULL, param, code, fmt, ap);
    va_end(ap);
    return status;
}

static int fail_oom(req_error *e)
{
    return req_error_set(e, 500, "server_error", NULL, "out_of_memory",
                         "out of memory while parsing the request");
}

/* Appends s as a JSON string literal (with quotes) at out; returns bytes
 * written. With out NULL only counts. */
static size_t json_str(char *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
#define PUT(c) do { if (out) out[n] = (c); n++; } while (0)
    PUT('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        switch (c) {
        case '"': PUT('\\'); PUT('"'); break;
        case '\\': PUT('\\'); PUT('\\'); break;
        case '\n': PUT('\\'); PUT('n'); break;
        case '\r': PUT('\\'); PUT('r'); break;
        case '\t': PUT('\\'); PUT('t'); break;
        case '\b': PUT('\\'); PUT('b'); break;
        case '\f': PUT('\\'); PUT('f'); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                PUT('\\'); PUT('u'); PUT('0'); PUT('0');
                PUT(hex[c >> 4]); PUT(hex[c & 15]);
            } else {
                PUT((char)c);
            }
        }
    }
    PUT('"');
#undef PUT
    return n;
}

static size_t json_str_or_null(char *out, const char *s)
{
    if (s && *s)
        return json_str(out, s);
    if (out)
        memcpy(out, "null", 4);
    return 4;
}

static size_t render_error(char *out, const req_error *e)
{
    size_t n = 0;
#define LIT(s) do { size_t l_ = strlen(s); if (out) memcpy(out + n, s, l_); n += l_; } while (0)
    LIT("{\"error\":{\"message\":");
    n += json_str(out ? out + n : NULL, e->message);
    LIT(",\"type\":");
    n += json_str(out ? out + n : NULL, e->type ? e->type : type_for_status(e->status));
    LIT(",\"param\":");
    n += json_str_or_null(out ? out + n : NULL, e->param);
    LIT(",\"code\":");
    n += json_str_or_null(out ? out + n : NULL, e->code);
    LIT("}}");
#undef LIT
    return n;
}

char *req_error_json(const req_error *e, size_t *len)
{
    size_t n = render_error(NULL, e);
    char *s = bg_malloc(n + 1);
    if (!s)
        return NULL;
    render_error(s, e);
    s[n] = '\0';
    if (len)
        *len = n;
    return s;
}

/* ---- body: pre-scan and parse ------------------------------------------ */

static int prescan(const char *body, size_t len, req_error *err)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (c == '\0')
            return fail(err, 400, NULL, "invalid_json", "request body contains a NUL byte");
        if (in_str) {
            if (c == '\\') {
                if (i + 5 < len && body[i + 1] == 'u' && memcmp(body + i + 2, "0000", 4) == 0)
                    return fail(err, 400, NULL, "invalid_value",
                                "strings must not contain \\u0000 (NUL)");
                i++; /* the escaped character */
            } else if (c == '"') {
                in_str = 0;
            }
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > REQ_MAX_DEPTH)
                return fail(err, 400, NULL, "nesting_too_deep",
                            "request body is nested deeper than %d levels", REQ_MAX_DEPTH);
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 0;
}

static int parse_body(const char *body, size_t len, cJSON **root, req_error *err)
{
    *root = NULL;
    if (!body)
        len = 0;
    int st = prescan(body, len, err);
    if (st)
        return st;
    const char *end = NULL;
    cJSON *j = len ? cJSON_ParseWithLengthOpts(body, len, &end, 0) : NULL;
    if (!j)
        return fail(err, 400, NULL, "invalid_json", "request body is not valid JSON");
    for (const char *p = end; p < body + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(j);
            return fail(err, 400, NULL, "invalid_json",
                        "request body is not valid JSON (trailing data)");
        }
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return fail(err, 400, NULL, "invalid_type", "request body must be a JSON object");
    }
    *root = j;
    return 0;
}

/* The whole body must be UTF-8 (strings we ignored included). */
static int check_body_utf8(const char *body, size_t len, req_error *err)
{
    if (!bg_utf8_valid(body, len))
        return fail(err, 400, NULL, "invalid_json", "request body is not valid UTF-8");
    return 0;
}

/* ---- field helpers ----------------------------------------------------- */

static const cJSON *field(const cJSON *obj, const char *name)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
    return (f && cJSON_IsNull(f)) ? NULL : f;
}

static int opt_string(const cJSON *obj, const char *name, const char *param, char **out,
                      req_error *err)
{
    const cJSON *f = field(obj, name);
    if (!f)
        return 0;
    if (!cJSON_IsString(f) || !f->valuestring)
        return fail(err, 400, param, "invalid_type", "'%s' must be a string", param);
    size_t n = strlen(f->valuestring);
    if (!bg_utf8_valid(f->valuestring, n))
        return fail(err, 400, param, "invalid_utf8", "'%s' is not valid UTF-8", param);
    char *s = bg_malloc(n + 1);
    if (!s)
        return fail_oom(err);
    memcpy(s, f->valuestring, n + 1);
    *out = s;
    return 0;
}

static int opt_bool(const cJSON *obj, const char *name, const char *param, int *out,
                    req_error *err)
{
    const cJSON *f = field(obj, name);
    if (!f)
        return 0;
    if (!cJSON_IsBool(f))
        return fail(err, 400, param, "invalid_type", "'%s' must be a boolean", param);
    *out = cJSON_IsTrue(f) ? 1 : 0;
    return 0;
}

static int opt_number(const cJSON *obj, const char *name, const char *param, int *has,
                      double *out, req_error *err)
{
    const cJSON *f = field(obj, name);
    if (!f)
        return 0;
    if (!cJSON_IsNumber(f))
        return fail(err, 400, param, "invalid_type", "'%s' must be a number", param);
    double d = f->valuedouble;
    if (!(d - d == 0.0)) /* inf or nan */
        return fail(err, 400, param, "invalid_value", "'%s' is out of range", param);
    *has = 1;
    *out = d;
    return 0;
}

/* 1 if item is an integral number in [lo, hi]. */
static int int_in_range(const cJSON *item, double lo, double hi, long long *out)
{
    if (!cJSON_IsNumber(item))
        return 0;
    double d = item->valuedouble;
    if (!(d >= lo && d <= hi))
        return 0;
    long long v = (long long)d;
    if ((double)v != d)
        return 0;
    *out = v;
    return 1;
}

/* Reads an optional string field that must be one of two values.
 * *out = 0 for a, 1 for b. */
static int opt_enum2(const cJSON *obj, const char *name, const char *a, const char *b,
                     int *out, req_error *err)
{
    const cJSON *f = field(obj, name);
    if (!f)
        return 0;
    if (!cJSON_IsString(f) || !f->valuestring)
        return fail(err, 400, name, "invalid_type", "'%s' must be a string", name);
    if (strcmp(f->valuestring, a) == 0)
        *out = 0;
    else if (strcmp(f->valuestring, b) == 0)
        *out = 1;
    else
        return fail(err, 400, name, "invalid_value", "'%s' must be \"%s\" or \"%s\"", name,
                    a, b);
    return 0;
}

/* ---- inputs ------------------------------------------------------------ */

static void inputs_free(req_inputs *in)
{
    bg_free(in->items);
    bg_free(in->text_arena_);
    bg_free(in->id_arena_);
    memset(in, 0, sizeof *in);
}

static int check_text(const char *s, const char *name, long idx, const req_limits *lim,
                      size_t *n_out, req_error *err)
{
    char where[48];
    if (idx < 0)
        snprintf(where, sizeof where, "'%s'", name);
    else
        snprintf(where, sizeof where, "%s[%ld]", name, idx);
    size_t n = strlen(s);
    if (n == 0)
        return fail(err, 400, name, "invalid_value", "%s must not be an empty string", where);
    if (!bg_utf8_valid(s, n))
        return fail(err, 400, name, "invalid_utf8", "%s is not valid UTF-8", where);
    if (lim && lim->max_input_bytes && n > lim->max_input_bytes)
        return fail(err, 413, name, "input_too_long",
                    "%s is %zu bytes long, over the limit of %zu bytes", where, n,
                    lim->max_input_bytes);
    *n_out = n;
    return 0;
}

/* Parses `f` (not NULL) as string | [string] | ([[id]] when allow_tokens). */
static int parse_inputs(const cJSON *f, const char *name, int allow_tokens,
                        const req_limits *lim, req_inputs *in, req_error *err)
{
    const char *what = allow_tokens
        ? "a string, an array of strings or an array of token-id arrays"
        : "a string or an array of strings";
    if (cJSON_IsString(f) && f->valuestring) {
        size_t n;
        int st = check_text(f->valuestring, name, -1, lim, &n, err);
        if (st)
            return st;
        in->items = bg_calloc(1, sizeof *in->items);
        in->text_arena_ = bg_malloc(n + 1);
        if (!in->items || !in->text_arena_) {
            inputs_free(in);
            return fail_oom(err);
        }
        memcpy(in->text_arena_, f->valuestring, n + 1);
        in->items[0].text = in->text_arena_;
        in->items[0].len = n;
        in->count = 1;
        return 0;
    }
    if (!cJSON_IsArray(f))
        return fail(err, 400, name, "invalid_type", "'%s' must be %s", name, what);

    size_t count = 0;
    for (const cJSON *c = f->child; c; c = c->next)
        count++;
    if (count == 0)
        return fail(err, 400, name, "invalid_value", "'%s' must not be an empty array", name);
    if (lim && lim->max_inputs && count > lim->max_inputs)
        return fail(err, 413, name, "too_many_inputs",
                    "'%s' has %zu inputs, over the limit of %zu", name, count, lim->max_inputs);
    int tokens = allow_tokens && cJSON_IsArray(f->child);

    /* Pass 1: validate and size. */
    size_t total = 0, i = 0;
    for (const cJSON *c = f->child; c; c = c->next, i++) {
        if (!tokens) {
            if (!cJSON_IsString(c) || !c->valuestring)
                return fail(err, 400, name, "invalid_type", "%s[%zu] must be a string", name, i);
            size_t n;
            int st = check_text(c->valuestring, name, (long)i, lim, &n, err);
            if (st)
                return st;
            total += n + 1;
        } else {
            if (!cJSON_IsArray(c))
                return fail(err, 400, name, "invalid_type",
                            "%s[%zu] must be an array of token ids", name, i);
            size_t k = 0;
            for (const cJSON *t = c->child; t; t = t->next, k++) {
                long long v;
                if (!int_in_range(t, 0.0, 2147483647.0, &v))
                    return fail(err, 400, name, cJSON_IsNumber(t) ? "invalid_value" : "invalid_type",
                                "%s[%zu][%zu] must be a token id (an integer from 0 to 2147483647)",
                                name, i, k);
            }
            if (k == 0)
                return fail(err, 400, name, "invalid_value", "%s[%zu] must not be empty", name, i);
            if (lim && lim->max_input_tokens && k > lim->max_input_tokens)
                return fail(err, 413, name, "input_too_long",
                            "%s[%zu] has %zu tokens, over the limit of %zu", name, i, k,
                            lim->max_input_tokens);
            total += k;
        }
    }

    /* Pass 2: copy. */
    in->items = bg_calloc(count, sizeof *in->items);
    if (tokens)
        in->id_arena_ = bg_malloc(total * sizeof(int32_t));
    else
        in->text_arena_ = bg_malloc(total);
    if (!in->items || (tokens ? !in->id_arena_ : !in->text_arena_)) {
        inputs_free(in);
        return fail_oom(err);
    }
    size_t off = 0;
    i = 0;
    for (const cJSON *c = f->child; c; c = c->next, i++) {
        req_input *it = &in->items[i];
        it->index = i;
        if (!tokens) {
            size_t n = strlen(c->valuestring);
            memcpy(in->text_arena_ + off, c->valuestring, n + 1);
            it->text = in->text_arena_ + off;
            it->len = n;
            off += n + 1;
        } else {
            it->ids = in->id_arena_ + off;
            for (const cJSON *t = c->child; t; t = t->next)
                in->id_arena_[off++] = (int32_t)t->valuedouble;
            it->n_ids = (size_t)(in->id_arena_ + off - it->ids);
        }
    }
    in->count = count;
    in->is_tokens = tokens;
    in->was_array = 1;
    return 0;
}

static int required_inputs(const cJSON *root, const char *name, int allow_tokens,
                           const req_limits *lim, req_inputs *in, req_error *err)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!f)
        return fail(err, 400, name, "missing_field", "'%s' is required", name);
    if (cJSON_IsNull(f))
        return fail(err, 400, name, "invalid_type", "'%s' must not be null", name);
    return parse_inputs(f, name, allow_tokens, lim, in, err);
}

/* ---- icl_context ------------------------------------------------------- */

static void icl_free(req_icl_context *c)
{
    bg_free(c->instruction);
    bg_free(c->language);
    for (size_t i = 0; i < c->n_examples; i++) {
        bg_free(c->examples[i].text);
        bg_free(c->examples[i].query);
        bg_free(c->examples[i].response);
    }
    bg_free(c->examples);
    memset(c, 0, sizeof *c);
    c->enable_context_learning = 1;
}

static int parse_examples(const cJSON *f, req_icl_context *c, req_error *err)
{
    const char *P = "icl_context.examples";
    if (!cJSON_IsArray(f))
        return fail(err, 400, P, "invalid_type", "'%s' must be an array", P);
    size_t n = 0;
    for (const cJSON *e = f->child; e; e = e->next)
        n++;
    if (n == 0)
        return 0;
    c->examples = bg_calloc(n, sizeof *c->examples);
    if (!c->examples)
        return fail_oom(err);
    size_t i = 0;
    for (const cJSON *e = f->child; e; e = e->next, i++) {
        req_icl_example *x = &c->examples[i];
        c->n_examples = i + 1; /* so that a partial example gets freed */
        if (cJSON_IsString(e) && e->valuestring) {
            size_t len = strlen(e->valuestring);
            if (!bg_utf8_valid(e->valuestring, len))
                return fail(err, 400, P, "invalid_utf8", "%s[%zu] is not valid UTF-8", P, i);
            if (!(x->text = bg_strdup(e->valuestring)))
                return fail_oom(err);
        } else if (cJSON_IsObject(e)) {
            char pq[64], pr[64];
            snprintf(pq, sizeof pq, "%s[%zu].query", P, i);
            snprintf(pr, sizeof pr, "%s[%zu].response", P, i);
            int st = opt_string(e, "query", pq, &x->query, err);
            if (!st && !x->query)
                st = fail(err, 400, pq, "missing_field", "'%s' is required", pq);
            if (!st)
                st = opt_string(e, "response", pr, &x->response, err);
            if (st) {
                /* param stays the array's name; the message keeps the index */
                if (err)
                    snprintf(err->param, sizeof err->param, "%s", P);
                return st;
            }
        } else {
            return fail(err, 400, P, "invalid_type",
                        "%s[%zu] must be a string or a {query, response} object", P, i);
        }
    }
    return 0;
}

static int parse_icl(const cJSON *root, req_icl_context *c, req_error *err)
{
    const cJSON *f = field(root, "icl_context");
    if (!f)
        return 0;
    if (!cJSON_IsObject(f))
        return fail(err, 400, "icl_context", "invalid_type", "'icl_context' must be an object");
    c->present = 1;
    int st;
    if ((st = opt_string(f, "instruction", "icl_context.instruction", &c->instruction, err)))
        return st;
    const cJSON *ex = field(f, "examples");
    if (ex && (st = parse_examples(ex, c, err)))
        return st;
    if ((st = opt_string(f, "language", "icl_context.language", &c->language, err)))
        return st;
    if ((st = opt_bool(f, "enable_context_learning", "icl_context.enable_context_learning",
                       &c->enable_context_learning, err)))
        return st;
    if ((st = opt_number(f, "similarity_score", "icl_context.similarity_score",
                         &c->has_similarity_score, &c->similarity_score, err)))
        return st;
    return opt_number(f, "context_processing_time", "icl_context.context_processing_time",
                      &c->has_context_processing_time, &c->context_processing_time, err);
}

/* ---- the three bodies -------------------------------------------------- */

void req_free_embeddings(req_embeddings *r)
{
    if (!r)
        return;
    inputs_free(&r->input);
    bg_free(r->model);
    bg_free(r->language);
    icl_free(&r->icl);
    memset(r, 0, sizeof *r);
}

void req_free_embed(req_embed *r)
{
    if (!r)
        return;
    inputs_free(&r->inputs);
    memset(r, 0, sizeof *r);
}

void req_free_tokenize(req_tokenize *r)
{
    if (!r)
        return;
    inputs_free(&r->inputs);
    memset(r, 0, sizeof *r);
}

static int embeddings_fields(const cJSON *root, const req_limits *lim, req_embeddings *out,
                             req_error *err)
{
    int st;
    if ((st = required_inputs(root, "input", 1, lim, &out->input, err)))
        return st;
    if ((st = opt_string(root, "model", "model", &out->model, err)))
        return st;
    int v = 0;
    if ((st = opt_enum2(root, "encoding_format", "float", "base64", &v, err)))
        return st;
    out->encoding_format = v ? REQ_ENC_BASE64 : REQ_ENC_FLOAT;
    const cJSON *d = field(root, "dimensions");
    if (d) {
        if (!cJSON_IsNumber(d))
            return fail(err, 400, "dimensions", "invalid_type", "'dimensions' must be an integer");
        double hi = (lim && lim->max_dimensions > 0) ? (double)lim->max_dimensions : 2147483647.0;
        long long dv;
        if (!int_in_range(d, 1.0, hi, &dv))
            return fail(err, 400, "dimensions", "invalid_value",
                        "'dimensions' must be an integer from 1 to %.0f", hi);
        out->dimensions = (int)dv;
    }
    const cJSON *u = field(root, "user");
    if (u && !cJSON_IsString(u))
        return fail(err, 400, "user", "invalid_type", "'user' must be a string");
    v = 0;
    if ((st = opt_enum2(root, "input_type", "document", "query", &v, err)))
        return st;
    out->input_type = v ? REQ_INPUT_QUERY : REQ_INPUT_DOCUMENT;
    if ((st = opt_bool(root, "truncate", "truncate", &out->truncate, err)))
        return st;
    if ((st = opt_bool(root, "enable_icl", "enable_icl", &out->enable_icl, err)))
        return st;
    if ((st = opt_string(root, "language", "language", &out->language, err)))
        return st;
    return parse_icl(root, &out->icl, err);
}

int req_parse_embeddings(const char *body, size_t len, const req_limits *lim,
                         req_embeddings *out, req_error *err)
{
    memset(out, 0, sizeof *out);
    out->truncate = 1;
    out->enable_icl = -1;
    out->icl.enable_context_learning = 1;
    cJSON *root;
    int st = parse_body(body, len, &root, err);
    if (!st) {
        st = embeddings_fields(root, lim, out, err);
        cJSON_Delete(root);
    }
    if (!st)
        st = check_body_utf8(body, len, err);
    if (st) {
        req_free_embeddings(out);
        return st;
    }
    return 0;
}

int req_parse_embed(const char *body, size_t len, const req_limits *lim, req_embed *out,
                    req_error *err)
{
    memset(out, 0, sizeof *out);
    out->normalize = 1;
    out->truncate = 1;
    cJSON *root;
    int st = parse_body(body, len, &root, err);
    if (!st) {
        st = required_inputs(root, "inputs", 0, lim, &out->inputs, err);
        if (!st)
            st = opt_bool(root, "normalize", "normalize", &out->normalize, err);
        if (!st)
            st = opt_bool(root, "truncate", "truncate", &out->truncate, err);
        if (!st) {
            const cJSON *p = field(root, "prompt_name");
            if (p && !cJSON_IsString(p))
                st = fail(err, 400, "prompt_name", "invalid_type",
                          "'prompt_name' must be a string or null");
            else if (p && strcmp(p->valuestring, "query") != 0)
                st = fail(err, 400, "prompt_name", "invalid_value",
                          "'prompt_name' must be \"query\" or null");
            else if (p)
                out->prompt_query = 1;
        }
        cJSON_Delete(root);
    }
    if (!st)
        st = check_body_utf8(body, len, err);
    if (st) {
        req_free_embed(out);
        return st;
    }
    return 0;
}

int req_parse_tokenize(const char *body, size_t len, const req_limits *lim,
                       req_tokenize *out, req_error *err)
{
    memset(out, 0, sizeof *out);
    out->add_special_tokens = 1;
    cJSON *root;
    int st = parse_body(body, len, &root, err);
    if (!st) {
        st = required_inputs(root, "inputs", 0, lim, &out->inputs, err);
        if (!st)
            st = opt_bool(root, "add_special_tokens", "add_special_tokens",
                          &out->add_special_tokens, err);
        cJSON_Delete(root);
    }
    if (!st)
        st = check_body_utf8(body, len, err);
    if (st) {
        req_free_tokenize(out);
        return st;
    }
    return 0;
}
