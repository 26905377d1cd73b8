/*
 * model_load.c - config.json + model.safetensors -> a model with its
 * weights in 64-byte aligned fp32 blocks (layout in model.h).
 */
#include "model.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "safetensors.h"

/* Tensor names are tried bare (BertModel) and then with these prefixes
 * (BertForMaskedLM etc. save "bert.", RoBERTa "roberta.", some exports
 * "model."). */
static const char *const PREFIXES[] = {"", "bert.", "roberta.", "model."};

/* Float offsets of every array in its block, each 64-byte aligned: the
 * vectors in the model's block, the four matrices in the layer's own. */
typedef struct layer_off {
    size_t qkv_w, qkv_b, attn_out_w, attn_out_b, ln1_g, ln1_b;
    size_t ffn_in_w, ffn_in_b, ffn_out_w, ffn_out_b, ln2_g, ln2_b;
    size_t linear_floats; /* size of the layer's matrix block */
} layer_off;

typedef struct layout {
    size_t total; /* floats */
    int overflow;
} layout;

/* Reserves a*b floats, rounded up to a multiple of 16 (64 bytes). */
static size_t reserve(layout *l, size_t a, size_t b)
{
    size_t n, at = l->total;
    if (__builtin_mul_overflow(a, b, &n) || __builtin_add_overflow(n, (size_t)15, &n) ||
        __builtin_add_overflow(l->total, n & ~(size_t)15, &l->total))
        l->overflow = 1;
    return at;
}

static void layer_layout(layout *l, const model_config *c, layer_off *o)
{
    size_t H = c->hidden, I = c->intermediate;
    layout lin = {0, 0};
    o->qkv_w = reserve(&lin, 3 * H, H);
    o->attn_out_w = reserve(&lin, H, H);
    o->ffn_in_w = reserve(&lin, I, H);
    o->ffn_out_w = reserve(&lin, H, I);
    o->linear_floats = lin.total;
    l->overflow |= lin.overflow || lin.total > SIZE_MAX / sizeof(float);
    o->qkv_b = reserve(l, 3 * H, 1);
    o->attn_out_b = reserve(l, H, 1);
    o->ln1_g = reserve(l, H, 1);
    o->ln1_b = reserve(l, H, 1);
    o->ffn_in_b = reserve(l, I, 1);
    o->ffn_out_b = reserve(l, H, 1);
    o->ln2_g = reserve(l, H, 1);
    o->ln2_b = reserve(l, H, 1);
}

/* Looks `base` up under each prefix; LayerNorm weight/bias also under the
 * legacy TF names gamma/beta. On success `found` holds the name used. */
static const st_tensor *find_tensor(const st_file *f, const char *base, char *found, size_t cap)
{
    char legacy[192] = "";
    size_t n = strlen(base);
    static const char LNW[] = "LayerNorm.weight", LNB[] = "LayerNorm.bias";
    if (n >= sizeof LNW - 1 && strcmp(base + n - (sizeof LNW - 1), LNW) == 0)
        snprintf(legacy, sizeof legacy, "%.*sgamma", (int)(n - 6), base);
    else if (n >= sizeof LNB - 1 && strcmp(base + n - (sizeof LNB - 1), LNB) == 0)
        snprintf(legacy, sizeof legacy, "%.*sbeta", (int)(n - 4), base);
    for (int alt = 0; alt < 2; alt++) {
        const char *b = alt ? legacy : base;
        if (!b[0])
            continue;
        for (size_t p = 0; p < sizeof PREFIXES / sizeof PREFIXES[0]; p++) {
            snprintf(found, cap, "%s%s", PREFIXES[p], b);
            const st_tensor *t = st_find(f, found);
            if (t)
                return t;
        }
    }
    return NULL;
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
}

/* Finds `base`, checks its shape is [d0] (d1 == 0) or [d0, d1] and converts
 * it to fp32 at dst. `what` names the config fields behind the shape. */
/* Finds `base` and checks its shape is [d0] (d1 == 0) or [d0, d1]; `what`
 * names the config fields behind the shape. */
static bgeicl_code check_tensor(const st_file *f, const char *path, const char *base, size_t d0,
                                size_t d1, const char *what, const st_tensor **out, bg_err *err)
{
    char name[256];
    const st_tensor *t = find_tensor(f, base, name, sizeof name);
    if (!t)
        return bg_fail(err, BGEICL_ERR_FORMAT,
                       "%s: tensor '%s' is missing (also tried the prefixes 'bert.', 'roberta.', "
                       "'model.')",
                       path, base);
    int ndim = d1 ? 2 : 1;
    int64_t want[2] = {(int64_t)d0, (int64_t)d1};
    int ok = t->ndim == ndim && t->shape[0] == want[0] && (ndim == 1 || t->shape[1] == want[1]);
    if (!ok) {
        char got[160], exp[64];
        shape_str(got, sizeof got, t->ndim, t->shape);
        shape_str(exp, sizeof exp, ndim, want);
        return bg_fail(err, BGEICL_ERR_SHAPE,
                       "%s: tensor '%s' has shape %s, expected %s (config.json %s)", path, name,
                       got, exp, what);
    }
    *out = t;
    return BGEICL_OK;
}

/* check_tensor, then converts the tensor to fp32 at dst. */
static bgeicl_code load_tensor(const st_file *f, const char *path, const char *base, size_t d0,
                               size_t d1, const char *what, float *dst, bg_err *err)
{
    const st_tensor *t;
    bgeicl_code rc = check_tensor(f, path, base, d0, d1, what, &t, err);
    return rc != BGEICL_OK ? rc : st_to_f32(f, t, dst, d1 ? d0 * d1 : d0, err);
}

/* The word embeddings in place in the map, where they are F32 and aligned
 * for floats, else NULL (and they are copied like every other tensor).
 * Only the rows of tokens that occur are then ever read, so only their
 * pages become resident: for bge-small that is a few MiB of the table's
 * 45 MiB. */
static const float *mapped_word_emb(const st_file *f, const char *path, const model_config *c)
{
    const st_tensor *t;
    bg_err ignored;
    if (check_tensor(f, path, "embeddings.word_embeddings.weight", c->vocab_size, c->hidden, "",
                     &t, &ignored) != BGEICL_OK ||
        t->dtype != ST_F32 || (uintptr_t)t->data % sizeof(float) != 0)
        return NULL;
    return t->data;
}

#define LT(suffix, d0, d1, what, dst)                                                      \
    do {                                                                                   \
        snprintf(name, sizeof name, "encoder.layer.%zu.%s", i, suffix);                    \
        if ((rc = load_tensor(f, path, name, d0, d1, what, dst, err)) != BGEICL_OK)         \
            return rc;                                                                     \
    } while (0)

static const char *const QKV[3] = {"query", "key", "value"};

/* Layer i's biases and LayerNorm vectors, into the model's block. */
static bgeicl_code load_layer_vectors(const st_file *f, const char *path, const model_config *c,
                                      size_t i, layer_weights *L, float *block,
                                      const layer_off *o, bg_err *err)
{
    size_t H = c->hidden, I = c->intermediate;
    char name[160];
    bgeicl_code rc;
    for (int k = 0; k < 3; k++) {
        char b[64];
        snprintf(b, sizeof b, "attention.self.%s.bias", QKV[k]);
        LT(b, H, 0, "hidden_size", block + o->qkv_b + (size_t)k * H);
    }
    LT("attention.output.dense.bias", H, 0, "hidden_size", block + o->attn_out_b);
    LT("attention.output.LayerNorm.weight", H, 0, "hidden_size", block + o->ln1_g);
    LT("attention.output.LayerNorm.bias", H, 0, "hidden_size", block + o->ln1_b);
    LT("intermediate.dense.bias", I, 0, "intermediate_size", block + o->ffn_in_b);
    LT("output.dense.bias", H, 0, "hidden_size", block + o->ffn_out_b);
    LT("output.LayerNorm.weight", H, 0, "hidden_size", block + o->ln2_g);
    LT("output.LayerNorm.bias", H, 0, "hidden_size", block + o->ln2_b);
    L->qkv_b = block + o->qkv_b;
    L->attn_out_b = block + o->attn_out_b;
    L->ln1_g = block + o->ln1_g;
    L->ln1_b = block + o->ln1_b;
    L->ffn_in_b = block + o->ffn_in_b;
    L->ffn_out_b = block + o->ffn_out_b;
    L->ln2_g = block + o->ln2_g;
    L->ln2_b = block + o->ln2_b;
    return BGEICL_OK;
}

/* Layer i's four matrices, into a block of their own (L->linear). */
static bgeicl_code load_layer_matrices(const st_file *f, const char *path,
                                       const model_config *c, size_t i, layer_weights *L,
                                       const layer_off *o, bg_err *err)
{
    size_t H = c->hidden, I = c->intermediate;
    char name[160];
    bgeicl_code rc;
    float *lin = bg_malloc_aligned(o->linear_floats * sizeof(float));
    if (!lin)
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory: %s layer %zu needs %zu MiB", path,
                       i, (o->linear_floats * sizeof(float)) >> 20);
    memset(lin, 0, o->linear_floats * sizeof(float));
    L->linear = lin; /* owned from here on, so model_free releases it */
    for (int k = 0; k < 3; k++) {
        char w[64];
        snprintf(w, sizeof w, "attention.self.%s.weight", QKV[k]);
        LT(w, H, H, "hidden_size x hidden_size", lin + o->qkv_w + (size_t)k * H * H);
    }
    LT("attention.output.dense.weight", H, H, "hidden_size x hidden_size", lin + o->attn_out_w);
    LT("intermediate.dense.weight", I, H, "intermediate_size x hidden_size", lin + o->ffn_in_w);
    LT("output.dense.weight", H, I, "hidden_size x intermediate_size", lin + o->ffn_out_w);
    L->qkv_w = lin + o->qkv_w;
    L->attn_out_w = lin + o->attn_out_w;
    L->ffn_in_w = lin + o->ffn_in_w;
    L->ffn_out_w = lin + o->ffn_out_w;
    return BGEICL_OK;
}
#undef LT

/* What a model opened with matrices on demand keeps of its file. */
struct model_src {
    st_file *st;
    char *path;
    layer_off *offs; /* (layers) */
    int word_mapped; /* w.word_emb points into st's map, which must stay */
    int closed;      /* model_close_file ran: no more matrices from the file */
};

static void src_free(struct model_src *src)
{
    if (!src)
        return;
    st_close(src->st);
    bg_free(src->path);
    bg_free(src->offs);
    bg_free(src);
}

bgeicl_code model_open(const char *dir, int lazy, model **out, bg_err *err)
{
    *out = NULL;
    bgeicl_code rc;
    struct model_src *src = bg_calloc(1, sizeof *src);
    model *m = bg_calloc(1, sizeof *m);
    if (!m || !src) {
        bg_free(m);
        bg_free(src);
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory loading %s", dir);
    }
    m->src = src;
    if ((rc = model_config_load(dir, &m->cfg, err)) != BGEICL_OK)
        goto err;
    const model_config *c = &m->cfg;
    size_t H = c->hidden;

    src->path = bg_path_join(dir, "model.safetensors");
    if (!src->path) {
        rc = bg_fail(err, BGEICL_ERR_NOMEM, "out of memory loading %s", dir);
        goto err;
    }
    if ((rc = st_open(src->path, &src->st, err)) != BGEICL_OK)
        goto err;
    const char *path = src->path;
    const st_file *st = src->st;

    /* Sizes first, so that everything but the matrices is one allocation. */
    const float *word_map = lazy ? mapped_word_emb(st, path, c) : NULL;
    layout l = {0, 0};
    size_t o_word = reserve(&l, word_map ? 0 : c->vocab_size, H);
    size_t o_pos = reserve(&l, c->max_positions, H);
    size_t o_type = reserve(&l, c->type_vocab, H);
    size_t o_lng = reserve(&l, H, 1);
    size_t o_lnb = reserve(&l, H, 1);
    src->offs = bg_calloc(c->layers, sizeof *src->offs);
    m->w.layer = bg_calloc(c->layers, sizeof *m->w.layer);
    if (!src->offs || !m->w.layer) {
        rc = bg_fail(err, BGEICL_ERR_NOMEM, "out of memory loading %s", dir);
        goto err;
    }
    for (size_t i = 0; i < c->layers; i++)
        layer_layout(&l, c, &src->offs[i]);
    size_t bytes;
    if (l.overflow || __builtin_mul_overflow(l.total, sizeof(float), &bytes)) {
        rc = bg_fail(err, BGEICL_ERR_NOMEM, "%s: config.json sizes give a model too large to load",
                     dir);
        goto err;
    }
    float *block = bg_malloc_aligned(bytes);
    if (!block) {
        rc = bg_fail(err, BGEICL_ERR_NOMEM, "out of memory: %s needs %zu MiB of fp32 weights", dir,
                     bytes >> 20);
        goto err;
    }
    m->w.block = block;
    m->w.block_floats = l.total;
    /* The padding between arrays is never read, but keep it defined. */
    memset(block, 0, bytes);

    if ((!word_map &&
         (rc = load_tensor(st, path, "embeddings.word_embeddings.weight", c->vocab_size, H,
                           "vocab_size x hidden_size", block + o_word, err))) ||
        (rc = load_tensor(st, path, "embeddings.position_embeddings.weight", c->max_positions, H,
                          "max_position_embeddings x hidden_size", block + o_pos, err)) ||
        (rc = load_tensor(st, path, "embeddings.token_type_embeddings.weight", c->type_vocab, H,
                          "type_vocab_size x hidden_size", block + o_type, err)) ||
        (rc = load_tensor(st, path, "embeddings.LayerNorm.weight", H, 0, "hidden_size",
                          block + o_lng, err)) ||
        (rc = load_tensor(st, path, "embeddings.LayerNorm.bias", H, 0, "hidden_size",
                          block + o_lnb, err)))
        goto err;
    m->w.word_emb = word_map ? word_map : block + o_word;
    src->word_mapped = word_map != NULL;
    m->w.pos_emb = block + o_pos;
    m->w.type_emb = block + o_type;
    m->w.emb_ln_g = block + o_lng;
    m->w.emb_ln_b = block + o_lnb;
    for (size_t i = 0; i < c->layers; i++) {
        if ((rc = load_layer_vectors(st, path, c, i, &m->w.layer[i], block, &src->offs[i],
                                     err)) != BGEICL_OK)
            goto err;
        if (!lazy && (rc = model_load_linear(m, i, err)) != BGEICL_OK)
            goto err;
    }
    if (!lazy)
        model_close_file(m);
    *out = m;
    return BGEICL_OK;
err:
    model_free(m);
    return rc;
}

bgeicl_code model_load(const char *dir, model **out, bg_err *err)
{
    return model_open(dir, 0, out, err);
}

bgeicl_code model_load_linear(model *m, size_t l, bg_err *err)
{
    if (m->w.layer[l].linear)
        return BGEICL_OK;
    if (!m->src || m->src->closed)
        return bg_fail(err, BGEICL_ERR_ARG, "layer %zu's matrices were freed and the file closed",
                       l);
    return load_layer_matrices(m->src->st, m->src->path, &m->cfg, l, &m->w.layer[l],
                               &m->src->offs[l], err);
}

void model_close_file(model *m)
{
    if (!m->src)
        return;
    if (m->src->word_mapped) { /* the map stays for the word embeddings */
        m->src->closed = 1;
        return;
    }
    src_free(m->src);
    m->src = NULL;
}

void model_drop_linear(model *m, size_t l)
{
    layer_weights *L = &m->w.layer[l];
    bg_free_aligned(L->linear);
    L->linear = NULL;
    L->qkv_w = L->attn_out_w = L->ffn_in_w = L->ffn_out_w = NULL;
}

void model_free(model *m)
{
    if (!m)
        return;
    for (size_t l = 0; m->w.layer && l < m->cfg.layers; l++)
        bg_free_aligned(m->w.layer[l].linear);
    src_free(m->src);
    bg_free_aligned(m->w.block);
    bg_free(m->w.layer);
    bg_free(m);
}
