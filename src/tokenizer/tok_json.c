/*
 * tok_json.c - cJSON helpers for the tokenizer loaders (see tok_json.h).
 *
 * cJSON allocates with the C library's malloc (its hooks are process-global
 * and shared with other modules, so they are left alone); a parse failure is
 * therefore reported as a format error.
 */
#include <math.h>
#include <stdint.h>

#include "tok_json.h"

bgeicl_code tok_json_read(const char *path, cJSON **root, bg_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    bgeicl_code rc = bg_read_file(path, &buf, &len, err);
    if (rc != BGEICL_OK)
        return rc;
    const char *end = NULL;
    *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!*root) {
        size_t at = end && end >= buf ? (size_t)(end - buf) : 0;
        rc = bg_fail(err, BGEICL_ERR_FORMAT, "%s: invalid JSON near byte %zu", path, at);
    } else if (!cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        *root = NULL;
        rc = bg_fail(err, BGEICL_ERR_FORMAT, "%s: top level is not a JSON object", path);
    }
    bg_free(buf);
    return rc;
}

static bgeicl_code bad_type(const tok_jctx *c, const char *field, const char *want)
{
    return bg_fail(c->err, BGEICL_ERR_FORMAT, "%s: field %s must be %s", c->path, field, want);
}

bgeicl_code tok_json_missing(const tok_jctx *c, const char *field)
{
    return bg_fail(c->err, BGEICL_ERR_FORMAT, "%s: missing field %s", c->path, field);
}

bgeicl_code tok_json_unsupported(const tok_jctx *c, const char *field, const char *value,
                                 const char *supported)
{
    return bg_fail(c->err, BGEICL_ERR_UNSUPPORTED, "%s: %s %s is not supported (only %s)",
                   c->path, field, value, supported);
}

bgeicl_code tok_json_bool(const tok_jctx *c, const cJSON *obj, const char *key,
                          const char *field, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v))
        return BGEICL_OK;
    if (!cJSON_IsBool(v))
        return bad_type(c, field, "true or false");
    *out = cJSON_IsTrue(v);
    return BGEICL_OK;
}

bgeicl_code tok_json_str(const tok_jctx *c, const cJSON *obj, const char *key,
                         const char *field, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v))
        return BGEICL_OK;
    if (!cJSON_IsString(v))
        return bad_type(c, field, "a string");
    *out = v->valuestring;
    return BGEICL_OK;
}

static int is_count(const cJSON *v, double max)
{
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= max &&
           floor(v->valuedouble) == v->valuedouble;
}

bgeicl_code tok_json_size(const tok_jctx *c, const cJSON *obj, const char *key,
                          const char *field, size_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v))
        return BGEICL_OK;
    if (!is_count(v, 9007199254740992.0))
        return bad_type(c, field, "a non-negative integer");
    *out = v->valuedouble > (double)SIZE_MAX ? SIZE_MAX : (size_t)v->valuedouble;
    return BGEICL_OK;
}

bgeicl_code tok_json_id(const tok_jctx *c, const cJSON *item, const char *field, int32_t *out)
{
    if (!is_count(item, (double)INT32_MAX - 1))
        return bad_type(c, field, "a token id (an integer from 0 to 2^31-2)");
    *out = (int32_t)item->valuedouble;
    return BGEICL_OK;
}

bgeicl_code tok_json_object(const tok_jctx *c, const cJSON *obj, const char *key,
                            const char *field, const cJSON **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v))
        return tok_json_missing(c, field);
    if (!cJSON_IsObject(v))
        return bad_type(c, field, "an object");
    *out = v;
    return BGEICL_OK;
}

bgeicl_code tok_json_type(const tok_jctx *c, const cJSON *obj, const char *field,
                          const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "type");
    if (!v)
        return tok_json_missing(c, field);
    if (!cJSON_IsString(v))
        return bad_type(c, field, "a string");
    *out = v->valuestring;
    return BGEICL_OK;
}

bgeicl_code tok_json_token(const tok_jctx *c, const cJSON *item, const char *field,
                           const char **out)
{
    if (cJSON_IsString(item)) {
        *out = item->valuestring;
        return BGEICL_OK;
    }
    const cJSON *v = cJSON_IsObject(item) ? cJSON_GetObjectItemCaseSensitive(item, "content")
                                          : NULL;
    if (!cJSON_IsString(v))
        return bad_type(c, field, "a string or an object with a string \"content\"");
    *out = v->valuestring;
    return BGEICL_OK;
}
