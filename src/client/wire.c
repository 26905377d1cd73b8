/*
 * wire.c - request bodies and reply parsing (see wire.h).
 */
#include "wire.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../util/util.h"

/* ---- buffer ---------------------------------------------------------------------- */

void cl_buf_free(cl_buf *b)
{
    bg_free(b->p);
    memset(b, 0, sizeof *b);
}

void cl_buf_put(cl_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = bg_realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void cl_buf_puts(cl_buf *b, const char *s) { cl_buf_put(b, s, strlen(s)); }

void cl_buf_json_str(cl_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    cl_buf_put(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed before each escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        cl_buf_put(b, s + run, i - run);
        run = i + 1;
        char e[6] = {'\\', (char)c, 0};
        size_t k = 2;
        if (c == '\n')
            e[1] = 'n';
        else if (c == '\t')
            e[1] = 't';
        else if (c == '\r')
            e[1] = 'r';
        else if (c < 0x20) {
            memcpy(e, "\\u00", 4);
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            k = 6;
        }
        cl_buf_put(b, e, k);
    }
    cl_buf_put(b, s + run, n - run);
    cl_buf_put(b, "\"", 1);
}

/* ---- request ---------------------------------------------------------------------- */

static void put_context(cl_buf *b, const cl_context *c)
{
    cl_buf_puts(b, ",\"icl_context\":{\"instruction\":");
    cl_buf_json_str(b, c->instruction, strlen(c->instruction));
    cl_buf_puts(b, ",\"examples\":[");
    for (size_t i = 0; i < c->n_examples; i++) {
        cl_buf_puts(b, i ? ",{\"query\":" : "{\"query\":");
        cl_buf_json_str(b, c->ex_query[i], strlen(c->ex_query[i]));
        cl_buf_puts(b, ",\"response\":");
        cl_buf_json_str(b, c->ex_response[i], strlen(c->ex_response[i]));
        cl_buf_puts(b, "}");
    }
    cl_buf_puts(b, "],\"language\":");
    cl_buf_json_str(b, c->language, strlen(c->language));
    cl_buf_puts(b, ",\"enable_context_learning\":true}");
}

void cl_wire_body(cl_buf *b, const char *model, const cl_context *ctx, const char *const *texts,
                  const size_t *lens, const size_t *idx, size_t n)
{
    b->n = 0;
    cl_buf_puts(b, "{\"model\":");
    cl_buf_json_str(b, model, strlen(model));
    cl_buf_puts(b, ",\"encoding_format\":\"base64\",\"input\":[");
    for (size_t k = 0; k < n; k++) {
        if (k)
            cl_buf_put(b, ",", 1);
        cl_buf_json_str(b, texts[idx[k]], lens[idx[k]]);
    }
    cl_buf_puts(b, "]");
    switch (ctx->kind) {
    case CL_KIND_DOCUMENT:
        break;
    case CL_KIND_QUERY_PLAIN:
        cl_buf_puts(b, ",\"input_type\":\"query\",\"enable_icl\":false");
        break;
    case CL_KIND_QUERY_SERVER:
        cl_buf_puts(b, ",\"input_type\":\"query\",\"enable_icl\":true,\"language\":");
        cl_buf_json_str(b, ctx->language, strlen(ctx->language));
        break;
    case CL_KIND_QUERY_CONTEXT:
        cl_buf_puts(b, ",\"input_type\":\"query\"");
        put_context(b, ctx);
        break;
    }
    if (ctx->no_truncate)
        cl_buf_puts(b, ",\"truncate\":false");
    cl_buf_puts(b, "}");
}

/* ---- reply -------------------------------------------------------------------------- */

static signed char b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (signed char)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (signed char)(c - 'a' + 26);
    if (c >= '0' && c <= '9')
        return (signed char)(c - '0' + 52);
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes base64 s into out (room for `cap` bytes); returns the byte count
 * or -1 if s is not canonical padded base64 or does not fit. */
static long b64_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
    if (n % 4)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int pad = (s[i + 3] == '=') + (s[i + 2] == '=' && s[i + 3] == '=');
        if (pad && i + 4 != n)
            return -1;
        uint32_t w = 0;
        for (int k = 0; k < 4 - pad; k++) {
            signed char v = b64_value((unsigned char)s[i + k]);
            if (v < 0)
                return -1;
            w |= (uint32_t)v << (18 - 6 * k);
        }
        size_t bytes = 3 - (size_t)pad;
        if (o + bytes > cap)
            return -1;
        for (size_t k = 0; k < bytes; k++)
            out[o++] = (unsigned char)(w >> (16 - 8 * k));
    }
    return (long)o;
}

/* The dimension an embedding field carries, or 0 if it is malformed. */
static size_t dim_of(const cJSON *e)
{
    if (cJSON_IsArray(e))
        return (size_t)cJSON_GetArraySize(e);
    if (!cJSON_IsString(e))
        return 0;
    size_t n = strlen(e->valuestring);
    if (n % 4 || !n)
        return 0;
    size_t bytes = n / 4 * 3 - (e->valuestring[n - 1] == '=') - (e->valuestring[n - 2] == '=');
    return bytes % 4 ? 0 : bytes / 4;
}

/* Writes one embedding into row (dim floats); returns 0 or -1. */
static int decode_row(const cJSON *e, float *row, size_t dim)
{
    if (cJSON_IsString(e)) {
        const char *s = e->valuestring;
        long got = b64_decode(s, strlen(s), (unsigned char *)row, dim * sizeof *row);
        if (got != (long)(dim * sizeof *row))
            return -1;
        for (size_t j = 0; j < dim; j++) { /* the wire is little-endian */
            const unsigned char *p = (const unsigned char *)&row[j];
            uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                         (uint32_t)p[3] << 24;
            memcpy(&row[j], &u, sizeof u);
        }
    } else {
        size_t j = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, e)
        {
            if (!cJSON_IsNumber(x) || j >= dim)
                return -1;
            row[j++] = (float)x->valuedouble;
        }
        if (j != dim)
            return -1;
    }
    for (size_t j = 0; j < dim; j++)
        if (!isfinite(row[j]))
            return -1;
    return 0;
}

static int bad(char *why, size_t len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(char *why, size_t len, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return rc;
}

static int parse_items(const cJSON *data, size_t n, size_t *dim, float *vecs, unsigned char *seen,
                       char *why, size_t wl)
{
    size_t k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, data)
    {
        const cJSON *ix = cJSON_GetObjectItemCaseSensitive(it, "index");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(it, "embedding");
        double d = cJSON_IsNumber(ix) ? ix->valuedouble : -1;
        if (!(d >= 0 && d < (double)n && d == floor(d)))
            return bad(why, wl, CL_WIRE_BAD, "data[%zu]: 'index' is missing or not in [0, %zu)",
                       k, n);
        size_t i = (size_t)d;
        if (seen[i]++)
            return bad(why, wl, CL_WIRE_BAD, "data[%zu]: index %zu appears twice", k, i);
        size_t dm = dim_of(e);
        if (!dm)
            return bad(why, wl, CL_WIRE_BAD, "data[%zu]: 'embedding' is missing or malformed", k);
        if (dm != *dim)
            return bad(why, wl, CL_WIRE_BAD, "data[%zu]: dimension %zu differs from the others", k,
                       dm);
        if (decode_row(e, vecs + i * *dim, *dim) != 0)
            return bad(why, wl, CL_WIRE_BAD, "data[%zu]: 'embedding' does not decode to %zu finite floats",
                       k, *dim);
        k++;
    }
    return CL_WIRE_OK;
}

int cl_wire_parse(const char *body, size_t len, size_t n, size_t *dim, float **vecs, char *why,
                  size_t why_len)
{
    *vecs = NULL;
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!root)
        return bad(why, why_len, CL_WIRE_BAD, "the reply is not JSON (%zu bytes)", len);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    int rc = CL_WIRE_OK;
    size_t got = cJSON_IsArray(data) ? (size_t)cJSON_GetArraySize(data) : 0;
    size_t dm = got ? dim_of(cJSON_GetObjectItemCaseSensitive(data->child, "embedding")) : 0;
    unsigned char *seen = NULL;
    if (!cJSON_IsArray(data) || got != n)
        rc = bad(why, why_len, CL_WIRE_BAD, "'data' has %zu items for %zu inputs", got, n);
    else if (!dm)
        rc = bad(why, why_len, CL_WIRE_BAD, "data[0]: 'embedding' is missing or malformed");
    else if (*dim && dm != *dim)
        rc = bad(why, why_len, CL_WIRE_DIM,
                 "its vectors have %zu dimensions where earlier replies had %zu", dm, *dim);
    else if (!(*vecs = bg_malloc(n * dm * sizeof **vecs)) || !(seen = bg_calloc(n, 1)))
        rc = bad(why, why_len, CL_WIRE_NOMEM, "out of memory for %zu x %zu floats", n, dm);
    if (rc == CL_WIRE_OK) {
        *dim = dm;
        rc = parse_items(data, n, dim, *vecs, seen, why, why_len);
    }
    bg_free(seen);
    cJSON_Delete(root);
    if (rc != CL_WIRE_OK) {
        bg_free(*vecs);
        *vecs = NULL;
    }
    return rc;
}

void cl_wire_error_message(const char *body, size_t len, char *out, size_t out_len)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *e = root ? cJSON_GetObjectItemCaseSensitive(root, "error") : NULL;
    const cJSON *m = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : e;
    if (cJSON_IsString(m))
        snprintf(out, out_len, "%s", m->valuestring);
    else {
        size_t k = len < 200 ? len : 200;
        snprintf(out, out_len, "%.*s", (int)k, body ? body : "");
        for (char *p = out; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = ' ';
    }
    cJSON_Delete(root);
}
