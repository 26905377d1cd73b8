/*
 * model.h - a BERT-family encoder as loaded from a Hugging Face folder:
 * config.json, the pooling config, and model.safetensors.
 *
 * Weights are copied once at load, converted to fp32, into 64-byte aligned
 * blocks: one for the embeddings and every vector, and one per layer for
 * its four matrices, so that an engine that keeps its own packed copy can
 * free them layer by layer (model_drop_linear). Pre-arranged for the
 * forward pass:
 *   - q, k and v projections are concatenated into one (3*hidden, hidden)
 *     matrix, so that one GEMM over all tokens makes Q, K and V;
 *   - every matrix keeps PyTorch's nn.Linear layout (out, in), row-major,
 *     so y = x W^T + b.
 * After model_load returns, a model_weights is read-only but for
 * model_drop_linear.
 */
#ifndef MODEL_H
#define MODEL_H

#include <stddef.h>

#include "../util/util.h"

typedef struct model_config {
    char architecture[64];   /* "BertModel" (also accepted: BertForMaskedLM, XLMRobertaModel) */
    char model_type[32];     /* "bert" or "xlm-roberta" */
    size_t vocab_size;
    size_t hidden;           /* hidden_size, e.g. 384 */
    size_t layers;           /* num_hidden_layers */
    size_t heads;            /* num_attention_heads; hidden % heads == 0 */
    size_t intermediate;     /* intermediate_size, e.g. 1536 */
    size_t max_positions;    /* max_position_embeddings */
    size_t type_vocab;       /* type_vocab_size */
    size_t position_offset;  /* 0 for BERT; pad_token_id + 1 for XLM-R */
    float ln_eps;            /* layer_norm_eps */
    bgeicl_pooling pooling;  /* from 1_Pooling/config.json; CLS if absent */
    size_t max_seq_len;      /* sentence_bert_config max_seq_length, else
                                tokenizer model_max_length, else max_positions */
    char id[128];            /* the folder's base name */
    char hf_id[128];         /* config.json "_name_or_path" if it looks like org/name */
    char query_instruction[256]; /* config_sentence_transformers.json prompts.query,
                                    else the BGE English default for bge-*-en* ids */
} model_config;

typedef struct layer_weights {
    const float *qkv_w;      /* (3*hidden, hidden): rows [q; k; v] */
    const float *qkv_b;      /* (3*hidden) */
    const float *attn_out_w; /* (hidden, hidden) */
    const float *attn_out_b; /* (hidden) */
    const float *ln1_g;      /* (hidden) attention.output.LayerNorm */
    const float *ln1_b;
    const float *ffn_in_w;   /* (intermediate, hidden) */
    const float *ffn_in_b;   /* (intermediate) */
    const float *ffn_out_w;  /* (hidden, intermediate) */
    const float *ffn_out_b;  /* (hidden) */
    const float *ln2_g;      /* (hidden) output.LayerNorm */
    const float *ln2_b;
    float *linear;           /* owns the four matrices; NULL once dropped */
} layer_weights;

typedef struct model_weights {
    const float *word_emb;   /* (vocab_size, hidden) */
    const float *pos_emb;    /* (max_positions, hidden) */
    const float *type_emb;   /* (type_vocab, hidden); row 0 is used */
    const float *emb_ln_g;   /* (hidden) */
    const float *emb_ln_b;
    layer_weights *layer;    /* (layers) */
    float *block;            /* owns all the arrays above but the matrices */
    size_t block_floats;
} model_weights;

typedef struct model {
    model_config cfg;
    model_weights w;
    struct model_src *src; /* the open file while matrices load on demand */
} model;

/* Parses config.json (and the optional pooling / sentence-transformers
 * files) in dir. Errors name the file and the field. */
bgeicl_code model_config_load(const char *dir, model_config *cfg, bg_err *err);

/* Loads config and weights. Tensor names may carry a "bert." or "roberta."
 * prefix. A missing tensor, a wrong shape or an unsupported dtype fails with
 * an error naming model.safetensors and the tensor. */
bgeicl_code model_load(const char *dir, model **out, bg_err *err);
/* model_load with lazy = 0. With lazy = 1 the layers' matrices are left
 * in the file, which stays open (mapped, but not resident) until
 * model_close_file, and are read per layer by model_load_linear: an engine
 * that packs them its own way then holds one layer's fp32 copy at a time
 * rather than the whole model's. Lazily, F32 word embeddings are also read
 * in place from the map (only the rows of tokens that occur become
 * resident), and the map then stays until model_free; the file must not
 * change while a model is open. */
bgeicl_code model_open(const char *dir, int lazy, model **out, bg_err *err);
/* Reads layer l's four matrices from the file if they are not in memory;
 * errors as model_load's. */
bgeicl_code model_load_linear(model *m, size_t l, bg_err *err);
/* Frees layer l's four matrices (their pointers become NULL), for an
 * engine that has made its own copy of them. */
void model_drop_linear(model *m, size_t l);
/* Closes the file of a lazy model; its missing matrices stay missing. */
void model_close_file(model *m);
void model_free(model *m);

#endif
