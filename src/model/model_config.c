/*
 * model_config.c - reads a Hugging Face model folder's configuration:
 *
 *   config.json                        architecture and sizes (required)
 *   modules.json, 1_Pooling/config.json  pooling (optional; CLS if absent)
 *   sentence_bert_config.json          max_seq_length (optional)
 *   tokenizer_config.json              model_max_length (optional)
 *   config_sentence_transformers.json  prompts.query (optional)
 *
 * An optional file that is absent is skipped; one that is present but
 * malformed is an error naming it, so a broken download fails loudly
 * instead of silently changing the embeddings.
 */
#include "model.h"

#include <cJSON.h>
#include <fnmatch.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Upper bound for every size field: keeps products of two sizes far from
 * overflowing and rejects nonsense early. */
#define CFG_MAX_INT 2147483647.0

static const char BGE_EN_INSTRUCTION[] =
    "Represent this sentence for searching relevant passages: ";

/* Reads and parses dir/name. *root is NULL (and OK returned) when the file
 * is absent and optional. Errors name the file's path. */
static bgeicl_code read_json(const char *dir, const char *name, int required, cJSON **root,
                             bg_err *err)
{
    *root = NULL;
    char *path = bg_path_join(dir, name);
    if (!path)
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory reading %s", name);
    if (!required && !bg_file_exists(path)) {
        bg_free(path);
        return BGEICL_OK;
    }
    char *buf = NULL;
    size_t len = 0;
    bgeicl_code rc = bg_read_file(path, &buf, &len, err);
    if (rc != BGEICL_OK) {
        bg_free(path);
        return rc;
    }
    const char *endp = NULL;
    *root = cJSON_ParseWithLengthOpts(buf, len, &endp, 0);
    if (!*root) {
        size_t at = endp && endp >= buf ? (size_t)(endp - buf) : 0;
        rc = bg_fail(err, BGEICL_ERR_FORMAT, "%s: malformed JSON near byte %zu", path, at);
    }
    bg_free(buf);
    bg_free(path);
    return rc;
}

/* A JSON number that is an integer in [1, CFG_MAX_INT]. */
static int json_pos_int(const cJSON *v, size_t *out)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    if (!(d >= 1.0) || d > CFG_MAX_INT || floor(d) != d)
        return 0;
    *out = (size_t)d;
    return 1;
}

/* Reads a positive integer field; `def` == 0 means required. */
static bgeicl_code get_size(const cJSON *o, const char *file, const char *field, size_t def,
                            size_t *out, bg_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    if (!v && def) {
        *out = def;
        return BGEICL_OK;
    }
    if (!json_pos_int(v, out))
        return bg_fail(err, BGEICL_ERR_FORMAT,
                       "%s: field '%s' is missing or not a positive integer", file, field);
    return BGEICL_OK;
}

/* Copies src into dst[cap], truncating. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ---- architecture -------------------------------------------------------- */

typedef enum family { FAM_NONE, FAM_BERT, FAM_XLMR } family;

static family family_of_model_type(const char *mt)
{
    if (strcmp(mt, "bert") == 0)
        return FAM_BERT;
    if (strcmp(mt, "xlm-roberta") == 0 || strcmp(mt, "roberta") == 0)
        return FAM_XLMR;
    return FAM_NONE;
}

/* BertModel, BertForMaskedLM, BertForSequenceClassification, ... */
static family family_of_arch(const char *a)
{
    if (strncmp(a, "Bert", 4) == 0)
        return FAM_BERT;
    if (strncmp(a, "XLMRoberta", 10) == 0 || strncmp(a, "Roberta", 7) == 0)
        return FAM_XLMR;
    return FAM_NONE;
}

static bgeicl_code parse_arch(const cJSON *root, const char *file, model_config *cfg,
                              family *fam, bg_err *err)
{
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const char *mts = NULL, *arch = NULL;
    if (mt && !cJSON_IsNull(mt)) {
        if (!cJSON_IsString(mt) || !mt->valuestring)
            return bg_fail(err, BGEICL_ERR_FORMAT, "%s: field 'model_type' is not a string", file);
        mts = mt->valuestring;
    }
    if (archs && !cJSON_IsNull(archs)) {
        const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
        if (!cJSON_IsString(a0) || !a0->valuestring)
            return bg_fail(err, BGEICL_ERR_FORMAT,
                           "%s: field 'architectures' is not an array of strings", file);
        arch = a0->valuestring;
    }
    if (!mts && !arch)
        return bg_fail(err, BGEICL_ERR_FORMAT,
                       "%s: neither field 'model_type' nor 'architectures' is present", file);
    /* model_type decides when present; architectures[0] otherwise. */
    if (mts) {
        *fam = family_of_model_type(mts);
        if (*fam == FAM_NONE)
            return bg_fail(err, BGEICL_ERR_UNSUPPORTED,
                           "%s: model_type '%.64s' is not supported (BERT family only)", file, mts);
    } else {
        *fam = family_of_arch(arch);
        if (*fam == FAM_NONE)
            return bg_fail(err, BGEICL_ERR_UNSUPPORTED,
                           "%s: architectures[0] '%.64s' is not supported (BERT family only)", file,
                           arch);
    }
    copy_str(cfg->model_type, sizeof cfg->model_type,
             mts ? mts : (*fam == FAM_BERT ? "bert" : "xlm-roberta"));
    copy_str(cfg->architecture, sizeof cfg->architecture,
             arch ? arch : (*fam == FAM_BERT ? "BertModel" : "XLMRobertaModel"));
    return BGEICL_OK;
}

/* ---- config.json --------------------------------------------------------- */

static bgeicl_code parse_config(const cJSON *root, const char *file, model_config *cfg,
                                bg_err *err)
{
    if (!cJSON_IsObject(root))
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: not a JSON object", file);
    family fam;
    bgeicl_code rc = parse_arch(root, file, cfg, &fam, err);
    if (rc != BGEICL_OK)
        return rc;

    if ((rc = get_size(root, file, "vocab_size", 0, &cfg->vocab_size, err)) ||
        (rc = get_size(root, file, "hidden_size", 0, &cfg->hidden, err)) ||
        (rc = get_size(root, file, "num_hidden_layers", 0, &cfg->layers, err)) ||
        (rc = get_size(root, file, "num_attention_heads", 0, &cfg->heads, err)) ||
        (rc = get_size(root, file, "intermediate_size", 0, &cfg->intermediate, err)) ||
        (rc = get_size(root, file, "max_position_embeddings", 0, &cfg->max_positions, err)) ||
        (rc = get_size(root, file, "type_vocab_size", 2, &cfg->type_vocab, err)))
        return rc;

    if (cfg->hidden % cfg->heads != 0)
        return bg_fail(err, BGEICL_ERR_FORMAT,
                       "%s: field 'hidden_size' (%zu) is not divisible by field "
                       "'num_attention_heads' (%zu)",
                       file, cfg->hidden, cfg->heads);

    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_eps");
    cfg->ln_eps = 1e-12f;
    if (eps) {
        if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0.0) || eps->valuedouble > 1.0)
            return bg_fail(err, BGEICL_ERR_FORMAT,
                           "%s: field 'layer_norm_eps' is not a number in (0, 1]", file);
        cfg->ln_eps = (float)eps->valuedouble;
    }

    /* HF's BertConfig defaults hidden_act to "gelu" (exact erf GELU). */
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (act) {
        if (!cJSON_IsString(act) || !act->valuestring)
            return bg_fail(err, BGEICL_ERR_FORMAT, "%s: field 'hidden_act' is not a string", file);
        if (strcmp(act->valuestring, "gelu") != 0)
            return bg_fail(err, BGEICL_ERR_UNSUPPORTED,
                           "%s: field 'hidden_act' is '%.32s'; only 'gelu' (exact erf GELU) is "
                           "supported",
                           file, act->valuestring);
    }

    const cJSON *pet = cJSON_GetObjectItemCaseSensitive(root, "position_embedding_type");
    if (pet && !cJSON_IsNull(pet)) {
        if (!cJSON_IsString(pet) || !pet->valuestring)
            return bg_fail(err, BGEICL_ERR_FORMAT,
                           "%s: field 'position_embedding_type' is not a string", file);
        if (strcmp(pet->valuestring, "absolute") != 0)
            return bg_fail(err, BGEICL_ERR_UNSUPPORTED,
                           "%s: field 'position_embedding_type' is '%.32s'; only 'absolute' is "
                           "supported",
                           file, pet->valuestring);
    }

    /* XLM-R / RoBERTa number positions from pad_token_id + 1. */
    cfg->position_offset = 0;
    if (fam == FAM_XLMR) {
        const cJSON *pad = cJSON_GetObjectItemCaseSensitive(root, "pad_token_id");
        double p = 1.0; /* RoBERTa's default */
        if (pad) {
            if (!cJSON_IsNumber(pad) || !(pad->valuedouble >= 0.0) ||
                pad->valuedouble > CFG_MAX_INT || floor(pad->valuedouble) != pad->valuedouble)
                return bg_fail(err, BGEICL_ERR_FORMAT,
                               "%s: field 'pad_token_id' is not a non-negative integer", file);
            p = pad->valuedouble;
        }
        cfg->position_offset = (size_t)p + 1;
    }
    if (cfg->max_positions < cfg->position_offset + 2)
        return bg_fail(err, BGEICL_ERR_FORMAT,
                       "%s: field 'max_position_embeddings' (%zu) leaves fewer than 2 positions "
                       "after the position offset %zu",
                       file, cfg->max_positions, cfg->position_offset);

    /* "_name_or_path" is only an HF id when it looks like "org/name"; local
     * paths ("/root/.cache/...", "./x") are not. */
    cfg->hf_id[0] = '\0';
    const cJSON *nop = cJSON_GetObjectItemCaseSensitive(root, "_name_or_path");
    if (cJSON_IsString(nop) && nop->valuestring) {
        const char *s = nop->valuestring, *slash = strchr(s, '/');
        if (slash && !strchr(slash + 1, '/') && s[0] != '/' && s[0] != '.' && slash != s &&
            slash[1] && strlen(s) < sizeof cfg->hf_id)
            copy_str(cfg->hf_id, sizeof cfg->hf_id, s);
    }
    return BGEICL_OK;
}

/* ---- pooling ------------------------------------------------------------- */

/* The pooling folder named by modules.json, or NULL (*folder untouched) if
 * modules.json is absent or names none. *folder is bg_malloc'd. */
static bgeicl_code pooling_folder(const char *dir, char **folder, bg_err *err)
{
    cJSON *root;
    bgeicl_code rc = read_json(dir, "modules.json", 0, &root, err);
    if (rc != BGEICL_OK || !root)
        return rc;
    if (!cJSON_IsArray(root)) {
        rc = bg_fail(err, BGEICL_ERR_FORMAT, "%s/modules.json: not a JSON array", dir);
        goto out;
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, root) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(m, "type");
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(m, "path");
        if (!cJSON_IsString(type) || !type->valuestring)
            continue;
        const char *t = type->valuestring, *dot = strrchr(t, '.');
        if (strcmp(dot ? dot + 1 : t, "Pooling") != 0)
            continue;
        if (!cJSON_IsString(path) || !path->valuestring || path->valuestring[0] == '/' ||
            strstr(path->valuestring, "..")) {
            rc = bg_fail(err, BGEICL_ERR_FORMAT,
                         "%s/modules.json: the Pooling module's field 'path' is missing or not a "
                         "relative folder",
                         dir);
            goto out;
        }
        *folder = bg_strdup(path->valuestring);
        if (!*folder)
            rc = bg_fail(err, BGEICL_ERR_NOMEM, "out of memory reading %s/modules.json", dir);
        goto out;
    }
out:
    cJSON_Delete(root);
    return rc;
}

static bgeicl_code parse_pooling(const cJSON *root, const char *file, bgeicl_pooling *pool,
                                 bg_err *err)
{
    static const char *const MODES[] = {
        "pooling_mode_cls_token",      "pooling_mode_mean_tokens",
        "pooling_mode_max_tokens",     "pooling_mode_mean_sqrt_len_tokens",
        "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken",
    };
    if (!cJSON_IsObject(root))
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: not a JSON object", file);
    int on = -1, count = 0;
    for (int i = 0; i < (int)(sizeof MODES / sizeof MODES[0]); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, MODES[i]);
        if (v && !cJSON_IsBool(v))
            return bg_fail(err, BGEICL_ERR_FORMAT, "%s: field '%s' is not a boolean", file,
                           MODES[i]);
        if (cJSON_IsTrue(v)) {
            if (on < 0 || i > 1)
                on = i; /* report an unsupported mode over a supported one */
            count++;
        }
    }
    if (count == 0) {
        /* Newer configs may name the mode as a string. */
        const cJSON *pm = cJSON_GetObjectItemCaseSensitive(root, "pooling_mode");
        if (cJSON_IsString(pm) && pm->valuestring) {
            if (strcmp(pm->valuestring, "cls") == 0) {
                *pool = BGEICL_POOL_CLS;
                return BGEICL_OK;
            }
            if (strcmp(pm->valuestring, "mean") == 0) {
                *pool = BGEICL_POOL_MEAN;
                return BGEICL_OK;
            }
            return bg_fail(err, BGEICL_ERR_UNSUPPORTED,
                           "%s: field 'pooling_mode' is '%.32s'; only 'cls' and 'mean' are "
                           "supported",
                           file, pm->valuestring);
        }
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: no pooling_mode_* field is true", file);
    }
    if (on > 1)
        return bg_fail(err, BGEICL_ERR_UNSUPPORTED,
                       "%s: field '%s' is true; only CLS and mean pooling are supported", file,
                       MODES[on]);
    if (count > 1)
        return bg_fail(err, BGEICL_ERR_UNSUPPORTED,
                       "%s: fields 'pooling_mode_cls_token' and 'pooling_mode_mean_tokens' are "
                       "both true; concatenated pooling is not supported",
                       file);
    *pool = on == 0 ? BGEICL_POOL_CLS : BGEICL_POOL_MEAN;
    return BGEICL_OK;
}

static bgeicl_code load_pooling(const char *dir, model_config *cfg, bg_err *err)
{
    cfg->pooling = BGEICL_POOL_CLS; /* the BGE default */
    char *folder = NULL, *rel = NULL, *file = NULL;
    cJSON *root = NULL;
    bgeicl_code rc = pooling_folder(dir, &folder, err);
    if (rc != BGEICL_OK)
        goto out;
    rel = bg_path_join(folder ? folder : "1_Pooling", "config.json");
    file = rel ? bg_path_join(dir, rel) : NULL;
    if (!file) {
        rc = bg_fail(err, BGEICL_ERR_NOMEM, "out of memory reading %s", dir);
        goto out;
    }
    /* A folder named by modules.json must have its config; the
     * conventional 1_Pooling is only looked at if present. */
    rc = read_json(dir, rel, folder != NULL, &root, err);
    if (rc != BGEICL_OK || !root)
        goto out;
    rc = parse_pooling(root, file, &cfg->pooling, err);
out:
    cJSON_Delete(root);
    bg_free(file);
    bg_free(rel);
    bg_free(folder);
    return rc;
}

/* ---- max_seq_len --------------------------------------------------------- */

static bgeicl_code load_max_seq_len(const char *dir, model_config *cfg, bg_err *err)
{
    size_t limit = cfg->max_positions - cfg->position_offset;
    size_t len = 0;
    cJSON *root = NULL;
    bgeicl_code rc = read_json(dir, "sentence_bert_config.json", 0, &root, err);
    if (rc != BGEICL_OK)
        return rc;
    if (root) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "max_seq_length");
        if (v && !cJSON_IsNull(v) && !json_pos_int(v, &len)) {
            cJSON_Delete(root);
            return bg_fail(err, BGEICL_ERR_FORMAT,
                           "%s/sentence_bert_config.json: field 'max_seq_length' is not a "
                           "positive integer",
                           dir);
        }
        cJSON_Delete(root);
    }
    if (!len) {
        rc = read_json(dir, "tokenizer_config.json", 0, &root, err);
        if (rc != BGEICL_OK)
            return rc;
        if (root) {
            /* HF writes int(1e30) for "unlimited": ignore anything absurd. */
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "model_max_length");
            size_t m;
            if (json_pos_int(v, &m) && m <= 1000000)
                len = m;
            cJSON_Delete(root);
        }
    }
    if (!len || len > limit)
        len = limit;
    cfg->max_seq_len = len;
    return BGEICL_OK;
}

/* ---- id and query instruction -------------------------------------------- */

static void folder_id(const char *dir, char *id, size_t cap)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/')
        b--;
    const char *base = dir + b;
    size_t blen = n - b;
    if ((blen == 1 && base[0] == '.') || (blen == 2 && base[0] == '.' && base[1] == '.')) {
        /* "." or "..": the real folder's name is what a person expects. */
        char real[PATH_MAX];
        if (realpath(dir, real)) {
            const char *s = strrchr(real, '/');
            copy_str(id, cap, s && s[1] ? s + 1 : real);
            return;
        }
    }
    if (blen >= cap)
        blen = cap - 1;
    memcpy(id, base, blen);
    id[blen] = '\0';
}

static int is_bge_en(const char *name)
{
    const char *slash = strrchr(name, '/');
    if (slash)
        name = slash + 1;
    return fnmatch("bge-*-en*", name, FNM_CASEFOLD) == 0;
}

static bgeicl_code load_query_instruction(const char *dir, model_config *cfg, bg_err *err)
{
    cfg->query_instruction[0] = '\0';
    cJSON *root = NULL;
    bgeicl_code rc = read_json(dir, "config_sentence_transformers.json", 0, &root, err);
    if (rc != BGEICL_OK)
        return rc;
    const cJSON *prompts = cJSON_GetObjectItemCaseSensitive(root, "prompts");
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(prompts, "query");
    if (cJSON_IsString(q) && q->valuestring && q->valuestring[0]) {
        if (strlen(q->valuestring) >= sizeof cfg->query_instruction)
            rc = bg_fail(err, BGEICL_ERR_UNSUPPORTED,
                         "%s/config_sentence_transformers.json: field 'prompts.query' is longer "
                         "than %zu bytes",
                         dir, sizeof cfg->query_instruction - 1);
        else
            copy_str(cfg->query_instruction, sizeof cfg->query_instruction, q->valuestring);
    } else if (is_bge_en(cfg->id) || (cfg->hf_id[0] && is_bge_en(cfg->hf_id))) {
        copy_str(cfg->query_instruction, sizeof cfg->query_instruction, BGE_EN_INSTRUCTION);
    }
    cJSON_Delete(root);
    return rc;
}

/* ---- entry point --------------------------------------------------------- */

bgeicl_code model_config_load(const char *dir, model_config *cfg, bg_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    cJSON *root = NULL;
    char *file = bg_path_join(dir, "config.json");
    if (!file)
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory reading %s/config.json", dir);
    bgeicl_code rc = read_json(dir, "config.json", 1, &root, err);
    if (rc == BGEICL_OK)
        rc = parse_config(root, file, cfg, err);
    cJSON_Delete(root);
    bg_free(file);
    if (rc != BGEICL_OK)
        return rc;
    folder_id(dir, cfg->id, sizeof cfg->id);
    if ((rc = load_pooling(dir, cfg, err)) != BGEICL_OK ||
        (rc = load_max_seq_len(dir, cfg, err)) != BGEICL_OK ||
        (rc = load_query_instruction(dir, cfg, err)) != BGEICL_OK)
        return rc;
    return BGEICL_OK;
}
