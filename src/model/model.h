/*
 * model.h - a BERT-family encoder as loaded from a Hugging Face folder:
 * config.json, the pooling config, and model.safetensors.
 *
 * Weights are copied once at load into one 64-byte aligned block, converted
 * to fp32 and pre-packed for the forward pass:
 *   - q, k and v projections are concatenated into one (3*hidden, hidden)
 *     matrix, so that one GEMM over all tokens makes Q, K and V;
 *   - every matrix keeps PyTorch's nn.Linear layout (out, in), row-major,
 *     so y = x W^T + b.
 * After model_load returns, a model_weights is read-only.
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
} layer_weights;

typedef struct model_weights {
    const float *word_emb;   /* (vocab_size, hidden) */
    const float *pos_emb;    /* (max_positions, hidden) */
    const float *type_emb;   /* (type_vocab, hidden); row 0 is used */
    const float *emb_ln_g;   /* (hidden) */
    const float *emb_ln_b;
    layer_weights *layer;    /* (layers) */
    float *block;            /* owns all the arrays above */
    size_t block_floats;
} model_weights;

typedef struct model {
    model_config cfg;
    model_weights w;
} model;

/* Parses config.json (and the optional pooling / sentence-transformers
 * files) in dir. Errors name the file and the field. */
bgeicl_code model_config_load(const char *dir, model_config *cfg, bg_err *err);

/* Loads config and weights. Tensor names may carry a "bert." or "roberta."
 * prefix. A missing tensor, a wrong shape or an unsupported dtype fails with
 * an error naming model.safetensors and the tensor. */
bgeicl_code model_load(const char *dir, model **out, bg_err *err);
void model_free(model *m);

#endif
