/*
 * engine.c - the BERT encoder forward pass, read top to bottom.
 *
 * In PyTorch terms (transformers' BertModel, eval mode):
 *   x = LayerNorm(word_emb[ids] + pos_emb[pos] + type_emb[0])
 *   for each layer:
 *       q, k, v = x Wq^T + bq, x Wk^T + bk, x Wv^T + bv      (one fused GEMM)
 *       ctx     = softmax(q k^T / sqrt(d)) v, per sequence and head
 *       x       = LayerNorm(x + ctx Wo^T + bo)
 *       x       = LayerNorm(x + gelu(x Wi^T + bi) Wo2^T + bo2)
 *   pooled = x[CLS] or mean(x); out = pooled / |pooled|
 *
 * Sequences are packed back to back (no padding), so with a per-sequence
 * attention every token attends exactly to its own sequence, which is what
 * the reference computes with an all-ones attention mask.
 *
 * With dtype BF16 the four GEMMs of a layer use bf16 weights (rounded and
 * packed at engine_create) and round their input activations to bf16 once
 * per GEMM into a16; sums, biases, attention, LayerNorm and pooling stay
 * fp32 (kern.h, gemm_bf16_cols). With dtype INT8 the weights are quantized
 * per output channel at engine_create and each GEMM quantizes its input
 * rows per token into a8 (kern.h, gemm_i8_cols); the rest stays fp32.
 */
#include "engine.h"

#include <math.h>
#include <string.h>

#include "pool.h"

#define ENGINE_CHUNK_TOKENS 2048

struct engine {
    const model *m;
    const kern_ops *k;
    pool *pool;
    size_t cap_tokens;  /* rows the activation buffers hold */
    float *x;           /* (T, hidden) hidden states */
    float *qkv;         /* (T, 3*hidden) */
    float *ctx;         /* (T, hidden) attention output, then scratch */
    float *inter;       /* (T, intermediate) */
    float *scores;      /* (threads, attn_scratch) attention scratch */
    size_t attn_scratch; /* kern_attention_scratch(max_seq_len, head width), rounded to 16 */
    size_t *offset;     /* (cap_seqs) first row of each sequence */
    size_t cap_seqs;
    /* The four weight matrices of every layer (qkv, attn_out, ffn_in,
     * ffn_out) in the form the dtype's GEMM reads, all in one 64-byte
     * aligned block, wblock; each layer's unpacked fp32 matrices are read
     * from the model file and freed as soon as they are packed, so the
     * weights are in memory once (the scalar fp32 table multiplies the
     * model's own). One of three views, by dtype:
     *   FP32  packed_w: kern_pack_b, for gemm_packed;
     *   BF16  packed16_w: kern_pack_b_bf16, for gemm_bf16_cols, half the
     *         bytes; A is rounded once per GEMM into a16 (cap_tokens rows
     *         of a16_ld), shared by the threads;
     *   INT8  packed8_w: kern_i8_pack, for gemm_i8_cols, a quarter of the
     *         bytes; A is quantized once per GEMM into a8 (rows of a8_ld
     *         bytes, a multiple of 64). */
    void *wblock;
    const float *(*packed_w)[4];
    const uint16_t *(*packed16_w)[4];
    uint16_t *a16;
    size_t a16_ld; /* kern_bf16_k2(max(hidden, intermediate)) */
    kern_i8_mat (*packed8_w)[4];
    kern_i8_act a8;
    size_t a8_ld; /* kern_i8_kpad(max(hidden, intermediate)) */
};

/* Bytes of one matrix (N x K) packed for `dtype`, a multiple of 64 so
 * that matrices packed back to back stay 64-byte aligned. */
static size_t packed_bytes(bgeicl_dtype dtype, size_t N, size_t K)
{
    size_t b;
    if (dtype == BGEICL_DTYPE_INT8) /* + its scales and sums */
        b = kern_i8_packed_bytes(N, K) + 2 * N * sizeof(float) + 128;
    else if (dtype == BGEICL_DTYPE_BF16)
        b = kern_packed_bf16_elems(N, K) * sizeof(uint16_t);
    else
        b = kern_packed_floats(N, K) * sizeof(float);
    return (b + 63) & ~(size_t)63;
}

/* Packs matrix w of layer l (N x K fp32) at dst and points the view at it. */
static void pack_one(engine *e, bgeicl_dtype dtype, size_t l, int w, const float *src, size_t N,
                     size_t K, char *dst)
{
    if (dtype == BGEICL_DTYPE_INT8) {
        kern_i8_mat *W = &e->packed8_w[l][w];
        size_t nb = (N * sizeof(float) + 63) & ~(size_t)63;
        W->packed = (int8_t *)dst;
        W->scale = (float *)(dst + kern_i8_packed_bytes(N, K));
        W->sum = (int32_t *)(dst + kern_i8_packed_bytes(N, K) + nb);
        kern_i8_pack(src, N, K, W);
    } else if (dtype == BGEICL_DTYPE_BF16) {
        kern_pack_b_bf16(src, N, K, (uint16_t *)dst);
        e->packed16_w[l][w] = (const uint16_t *)dst;
    } else {
        kern_pack_b(src, N, K, (float *)dst);
        e->packed_w[l][w] = (const float *)dst;
    }
}

/* Reads, packs and frees each layer's matrices in turn, so that at most
 * one layer's fp32 copy is in memory beside the packed weights. */
static bgeicl_code pack_weights(engine *e, model *m, bgeicl_dtype dtype, bg_err *err)
{
    const model_config *c = &m->cfg;
    size_t H = c->hidden, I = c->intermediate, nl = c->layers ? c->layers : 1;
    const size_t rows[4] = {3 * H, H, I, H}, cols[4] = {H, H, H, I};
    size_t per_layer = 0;
    for (int i = 0; i < 4; i++)
        per_layer += packed_bytes(dtype, rows[i], cols[i]);
    e->wblock = bg_malloc_aligned(nl * per_layer);
    if (dtype == BGEICL_DTYPE_INT8)
        e->packed8_w = bg_calloc(nl, sizeof *e->packed8_w);
    else if (dtype == BGEICL_DTYPE_BF16)
        e->packed16_w = bg_calloc(nl, sizeof *e->packed16_w);
    else
        e->packed_w = bg_calloc(nl, sizeof *e->packed_w);
    if (!e->wblock || !(e->packed8_w || e->packed16_w || e->packed_w))
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for the packed weights");
    char *dst = e->wblock;
    for (size_t l = 0; l < c->layers; l++) {
        bgeicl_code rc = model_load_linear(m, l, err);
        if (rc != BGEICL_OK)
            return rc;
        const layer_weights *L = &m->w.layer[l];
        const float *src[4] = {L->qkv_w, L->attn_out_w, L->ffn_in_w, L->ffn_out_w};
        for (int i = 0; i < 4; i++) {
            pack_one(e, dtype, l, i, src[i], rows[i], cols[i], dst);
            dst += packed_bytes(dtype, rows[i], cols[i]);
        }
        model_drop_linear(m, l);
    }
    e->a16_ld = dtype == BGEICL_DTYPE_BF16 ? kern_bf16_k2(H > I ? H : I) : 0;
    e->a8_ld = dtype == BGEICL_DTYPE_INT8 ? kern_i8_kpad(H > I ? H : I) : 0;
    return BGEICL_OK;
}

bgeicl_code engine_create(model *m, int threads, kern_isa isa, bgeicl_dtype dtype,
                          engine **out, bg_err *err)
{
    if (dtype != BGEICL_DTYPE_FP32 && dtype != BGEICL_DTYPE_BF16 && dtype != BGEICL_DTYPE_INT8)
        return bg_fail(err, BGEICL_ERR_UNSUPPORTED, "dtype %d is not supported (fp32, bf16, int8)",
                       (int)dtype);
    engine *e = bg_calloc(1, sizeof *e);
    if (!e)
        goto nomem;
    e->m = m;
    e->k = kern_select(isa);
    e->pool = pool_create(threads > 0 ? threads : bg_cpu_count());
    if (!e->pool)
        goto nomem;
    e->attn_scratch = (kern_attention_scratch(m->cfg.max_seq_len, m->cfg.hidden / m->cfg.heads) +
                       15) & ~(size_t)15;
    e->scores = bg_malloc_aligned((size_t)pool_size(e->pool) * e->attn_scratch * sizeof(float));
    if (!e->scores)
        goto nomem;
    bgeicl_code rc = BGEICL_OK;
    if (dtype != BGEICL_DTYPE_FP32 || e->k->gemm_packed)
        rc = pack_weights(e, m, dtype, err);
    else /* the scalar table multiplies the model's own matrices */
        for (size_t l = 0; l < m->cfg.layers && rc == BGEICL_OK; l++)
            rc = model_load_linear(m, l, err);
    if (rc != BGEICL_OK) {
        engine_free(e);
        return rc;
    }
    *out = e;
    return BGEICL_OK;
nomem:
    engine_free(e);
    return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory creating the inference engine");
}

void engine_free(engine *e)
{
    if (!e)
        return;
    pool_destroy(e->pool);
    bg_free_aligned(e->x);
    bg_free_aligned(e->qkv);
    bg_free_aligned(e->ctx);
    bg_free_aligned(e->inter);
    bg_free_aligned(e->scores);
    bg_free(e->offset);
    bg_free_aligned(e->wblock);
    bg_free(e->packed_w);
    bg_free(e->packed16_w);
    bg_free_aligned(e->a16);
    bg_free(e->packed8_w);
    bg_free_aligned(e->a8.q);
    bg_free(e->a8.scale);
    bg_free(e->a8.zero);
    bg_free(e);
}

int engine_threads(const engine *e) { return pool_size(e->pool); }
const kern_ops *engine_kernels(const engine *e) { return e->k; }

/* Grows the activation buffers to hold T tokens and n sequences. All or
 * nothing: on failure the old buffers stay valid. */
static bgeicl_code reserve(engine *e, size_t T, size_t n, bg_err *err)
{
    const model_config *c = &e->m->cfg;
    if (T > e->cap_tokens) {
        float *x = bg_malloc_aligned(T * c->hidden * sizeof(float));
        float *qkv = bg_malloc_aligned(T * 3 * c->hidden * sizeof(float));
        float *ctx = bg_malloc_aligned(T * c->hidden * sizeof(float));
        float *inter = bg_malloc_aligned(T * c->intermediate * sizeof(float));
        /* bf16 only: (T, a16_ld); a16_ld is 0 otherwise, hence the + 1. */
        uint16_t *a16 = bg_malloc_aligned((T * e->a16_ld + 1) * sizeof(uint16_t));
        /* int8 only, likewise. */
        uint8_t *a8 = bg_malloc_aligned(T * e->a8_ld + 64);
        float *a8s = bg_malloc((e->a8_ld ? T : 1) * sizeof(float));
        int32_t *a8z = bg_malloc((e->a8_ld ? T : 1) * sizeof(int32_t));
        if (!x || !qkv || !ctx || !inter || !a16 || !a8 || !a8s || !a8z) {
            bg_free_aligned(a8);
            bg_free(a8s);
            bg_free(a8z);
            bg_free_aligned(x);
            bg_free_aligned(qkv);
            bg_free_aligned(ctx);
            bg_free_aligned(inter);
            bg_free_aligned(a16);
            return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for a batch of %zu tokens", T);
        }
        bg_free_aligned(e->x);
        bg_free_aligned(e->qkv);
        bg_free_aligned(e->ctx);
        bg_free_aligned(e->inter);
        bg_free_aligned(e->a16);
        bg_free_aligned(e->a8.q);
        bg_free(e->a8.scale);
        bg_free(e->a8.zero);
        e->x = x, e->qkv = qkv, e->ctx = ctx, e->inter = inter, e->a16 = a16;
        e->a8 = (kern_i8_act){a8, e->a8_ld, a8s, a8z};
        e->cap_tokens = T;
    }
    if (n > e->cap_seqs) {
        size_t *off = bg_malloc(n * sizeof *off);
        if (!off)
            return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for a batch of %zu texts", n);
        bg_free(e->offset);
        e->offset = off;
        e->cap_seqs = n;
    }
    return BGEICL_OK;
}

/* ---- fork-join ------------------------------------------------------------ */

/* A fork-join costs a few microseconds even with every thread awake, and
 * much more on a loaded machine; below about 10 us of work (2e5 fp32
 * multiply-adds at this class of machine's speed) the caller runs the
 * tasks alone. `work` is in fp32 multiply-adds or the equivalent. */
#define PAR_MIN_WORK 2e5

static void run(engine *e, size_t ntasks, pool_fn fn, void *ctx, double work)
{
    if (work < PAR_MIN_WORK) {
        for (size_t t = 0; t < ntasks; t++)
            fn(ctx, t, 0);
        return;
    }
    pool_run(e->pool, ntasks, fn, ctx);
}

/* ---- parallel GEMM ------------------------------------------------------ */

/* C = A B^T + bias over T rows, split into tiles across the pool. Large
 * batches split rows (each tile streams all of B once); a short batch
 * splits B's rows instead so that one query still uses every core. With
 * packed weights (Bp) the table's gemm_packed runs, with bf16 ones (Bp16)
 * gemm_bf16_cols on A16, else gemm_bt on B. */
typedef struct gemm_job {
    const kern_ops *k;
    size_t M, N, K;
    const float *A, *B, *Bp, *bias;
    const uint16_t *A16, *Bp16; /* A16: (M, lda16) bf16 copy of A */
    size_t lda16;
    const kern_i8_act *A8;      /* int8 copy of A */
    const kern_i8_mat *B8;
    float *C;
    size_t tile;          /* rows per tile (split M) or columns (split N) */
    int split_n;
    int gelu;             /* apply GELU to each finished tile */
} gemm_job;

/* Rows [r0, r0 + rows), all N columns. */
static void gemm_rows(const gemm_job *j, size_t r0, size_t rows)
{
    float *C = j->C + r0 * j->N;
    if (j->B8) {
        kern_i8_act a = {j->A8->q + r0 * j->A8->ld, j->A8->ld, j->A8->scale + r0,
                         j->A8->zero + r0};
        j->k->gemm_i8_cols(rows, 0, j->N, j->K, &a, j->B8, j->bias, C, j->N);
    } else if (j->Bp16)
        j->k->gemm_bf16_cols(rows, 0, j->N, j->K, j->A16 + r0 * j->lda16, j->lda16, j->Bp16,
                             j->bias, C, j->N);
    else if (j->Bp)
        j->k->gemm_packed(rows, j->N, j->K, j->A + r0 * j->K, j->K, j->Bp, j->bias, C, j->N);
    else
        j->k->gemm_bt(rows, j->N, j->K, j->A + r0 * j->K, j->K, j->B, j->K, j->bias, C, j->N);
    if (j->gelu)
        j->k->gelu(C, rows * j->N);
}

/* Columns [c0, c0 + cols), all M rows; c0 is a multiple of KERN_NR. */
static void gemm_cols(const gemm_job *j, size_t c0, size_t cols)
{
    float *C = j->C + c0;
    if (j->B8)
        j->k->gemm_i8_cols(j->M, c0, cols, j->K, j->A8, j->B8, j->bias, j->C, j->N);
    else if (j->Bp16)
        j->k->gemm_bf16_cols(j->M, c0, cols, j->K, j->A16, j->lda16, j->Bp16, j->bias, j->C,
                             j->N);
    else if (j->Bp)
        j->k->gemm_packed_cols(j->M, c0, cols, j->K, j->A, j->K, j->Bp, j->bias, j->C, j->N);
    else
        j->k->gemm_bt(j->M, cols, j->K, j->A, j->K, j->B + c0 * j->K, j->K,
                      j->bias ? j->bias + c0 : NULL, C, j->N);
    if (j->gelu)
        for (size_t r = 0; r < j->M; r++)
            j->k->gelu(C + r * j->N, cols);
}

static void gemm_task(void *arg, size_t t, int worker)
{
    (void)worker;
    const gemm_job *j = arg;
    size_t n = j->split_n ? j->N : j->M, at = t * j->tile;
    size_t len = n - at < j->tile ? n - at : j->tile;
    if (j->split_n)
        gemm_cols(j, at, len);
    else
        gemm_rows(j, at, len);
}

/* Rounds (bf16) or quantizes (int8) rows of A into the engine's a16 or
 * a8, `tile` rows per task. */
typedef struct lowp_job {
    engine *e;
    const float *A;
    size_t M, K, tile;
} lowp_job;

static void lowp_task(void *arg, size_t t, int worker)
{
    (void)worker;
    const lowp_job *j = arg;
    engine *e = j->e;
    size_t r0 = t * j->tile, rows = j->M - r0 < j->tile ? j->M - r0 : j->tile;
    if (e->packed8_w) {
        kern_i8_act a = {e->a8.q + r0 * e->a8.ld, e->a8.ld, e->a8.scale + r0, e->a8.zero + r0};
        e->k->i8_quant_rows(j->A + r0 * j->K, rows, j->K, j->K, &a);
    } else {
        e->k->bf16_rows(j->A + r0 * j->K, rows, j->K, j->K, e->a16 + r0 * e->a16_ld, e->a16_ld);
    }
}

/* W is layer matrix `w` (0 qkv, 1 attn_out, 2 ffn_in, 3 ffn_out): B in
 * PyTorch layout, and its packed form for the engine's dtype. */
static void par_gemm(engine *e, size_t l, int w, size_t M, size_t N, size_t K, const float *A,
                     const float *B, const float *bias, float *C, int gelu)
{
    size_t nt = (size_t)pool_size(e->pool);
    gemm_job j = {.k = e->k, .M = M, .N = N, .K = K, .A = A, .B = B, .bias = bias, .C = C,
                  .gelu = gelu};
    if (e->packed16_w || e->packed8_w) {
        /* A is converted once per GEMM, not once per tile: with split N
         * every task reads all of it. */
        lowp_job lj = {e, A, M, K, (M + 2 * nt - 1) / (2 * nt)};
        run(e, (M + lj.tile - 1) / lj.tile, lowp_task, &lj, (double)M * K * 4);
    }
    if (e->packed8_w) {
        j.A8 = &e->a8, j.B8 = &e->packed8_w[l][w];
    } else if (e->packed16_w) {
        j.A16 = e->a16, j.lda16 = e->a16_ld, j.Bp16 = e->packed16_w[l][w];
    } else if (e->packed_w) {
        j.Bp = e->packed_w[l][w];
    }
    size_t tasks;
    if (M >= 16 * nt) {
        /* ~4 tiles per thread balances uneven progress without making
         * tiles so thin that B is re-streamed too often. */
        j.tile = (M + 4 * nt - 1) / (4 * nt);
        tasks = (M + j.tile - 1) / j.tile;
    } else {
        j.split_n = 1;
        /* Multiples of KERN_NR, as the packed GEMMs need. */
        j.tile = ((N + nt - 1) / nt + KERN_NR - 1) / KERN_NR * KERN_NR;
        tasks = (N + j.tile - 1) / j.tile;
    }
    /* bf16 and int8 multiply-adds run at least 4x the fp32 rate here. */
    double macs = (double)M * N * K;
    run(e, tasks, gemm_task, &j, e->packed16_w || e->packed8_w ? macs / 4 : macs);
}

/* ---- embeddings ---------------------------------------------------------- */

typedef struct embed_job {
    engine *e;
    const int32_t *const *ids;
    const size_t *lens;
} embed_job;

static void embed_task(void *arg, size_t s, int worker)
{
    (void)worker;
    const embed_job *j = arg;
    const model_config *c = &j->e->m->cfg;
    const model_weights *w = &j->e->m->w;
    size_t H = c->hidden;
    float *x = j->e->x + j->e->offset[s] * H;
    for (size_t p = 0; p < j->lens[s]; p++) {
        const float *we = w->word_emb + (size_t)j->ids[s][p] * H;
        const float *pe = w->pos_emb + (p + c->position_offset) * H;
        const float *te = w->type_emb; /* token_type_ids are all 0 */
        float *row = x + p * H;
        for (size_t i = 0; i < H; i++)
            row[i] = we[i] + pe[i] + te[i];
    }
    j->e->k->add_layernorm(x, NULL, j->lens[s], H, w->emb_ln_g, w->emb_ln_b, c->ln_eps);
}

/* ---- attention ------------------------------------------------------------ */

typedef struct attn_job {
    engine *e;
    const size_t *lens;
} attn_job;

/* Task t = (sequence t / heads, head t % heads). */
static void attn_task(void *arg, size_t t, int worker)
{
    const attn_job *j = arg;
    engine *e = j->e;
    const model_config *c = &e->m->cfg;
    size_t H = c->hidden, d = H / c->heads;
    size_t s = t / c->heads, h = t % c->heads;
    const float *base = e->qkv + e->offset[s] * 3 * H + h * d;
    float *out = e->ctx + e->offset[s] * H + h * d;
    e->k->attention_head(j->lens[s], d, base, base + H, base + 2 * H, 3 * H, out, H,
                         1.0f / sqrtf((float)d), e->scores + (size_t)worker * e->attn_scratch);
}

/* ---- residual + LayerNorm ------------------------------------------------- */

typedef struct ln_job {
    engine *e;
    float *x;
    const float *r;
    const float *g, *b;
    size_t T, tile;
} ln_job;

static void ln_task(void *arg, size_t t, int worker)
{
    (void)worker;
    const ln_job *j = arg;
    const model_config *c = &j->e->m->cfg;
    size_t r0 = t * j->tile, rows = j->T - r0 < j->tile ? j->T - r0 : j->tile;
    j->e->k->add_layernorm(j->x + r0 * c->hidden, j->r + r0 * c->hidden, rows, c->hidden, j->g,
                           j->b, c->ln_eps);
}

static void par_add_layernorm(engine *e, size_t T, const float *r, const float *g,
                              const float *b)
{
    size_t nt = (size_t)pool_size(e->pool);
    ln_job j = {e, e->x, r, g, b, T, (T + 2 * nt - 1) / (2 * nt)};
    run(e, (T + j.tile - 1) / j.tile, ln_task, &j, (double)T * e->m->cfg.hidden * 8);
}

/* ---- pooling ---------------------------------------------------------------- */

static void pool_rows(const engine *e, const size_t *lens, size_t n, int normalize, float *out)
{
    const model_config *c = &e->m->cfg;
    size_t H = c->hidden;
    for (size_t s = 0; s < n; s++) {
        const float *x = e->x + e->offset[s] * H;
        float *o = out + s * H;
        if (c->pooling == BGEICL_POOL_CLS) {
            memcpy(o, x, H * sizeof(float));
        } else {
            /* Mean over every token: the mask is all ones when packed. */
            memset(o, 0, H * sizeof(float));
            for (size_t p = 0; p < lens[s]; p++)
                for (size_t i = 0; i < H; i++)
                    o[i] += x[p * H + i];
            for (size_t i = 0; i < H; i++)
                o[i] /= (float)lens[s];
        }
        if (normalize)
            bg_l2_normalize(o, H);
    }
}

/* ---- the forward pass ------------------------------------------------------- */

/* One pass over n sequences of T tokens in all. */
static bgeicl_code forward_chunk(engine *e, const int32_t *const *ids, const size_t *lens,
                                 size_t n, size_t T, int normalize, float *out, bg_err *err)
{
    const model_config *c = &e->m->cfg;
    const model_weights *w = &e->m->w;
    size_t H = c->hidden, I = c->intermediate;
    bgeicl_code rc = reserve(e, T, n, err);
    if (rc != BGEICL_OK)
        return rc;
    for (size_t s = 0, o = 0; s < n; o += lens[s], s++)
        e->offset[s] = o;

    embed_job ej = {e, ids, lens};
    run(e, n, embed_task, &ej, (double)T * H * 8);
    double attn_work = 0.0; /* QK^T and PV: 2 L^2 H multiply-adds a sequence */
    for (size_t s = 0; s < n; s++)
        attn_work += 2.0 * (double)lens[s] * (double)lens[s] * (double)H;

    for (size_t l = 0; l < c->layers; l++) {
        const layer_weights *L = &w->layer[l];
        par_gemm(e, l, 0, T, 3 * H, H, e->x, L->qkv_w, L->qkv_b, e->qkv, 0);
        attn_job aj = {e, lens};
        run(e, n * c->heads, attn_task, &aj, attn_work);
        /* ctx Wo^T + bo lands in qkv's first T*H floats, free by now. */
        par_gemm(e, l, 1, T, H, H, e->ctx, L->attn_out_w, L->attn_out_b, e->qkv, 0);
        par_add_layernorm(e, T, e->qkv, L->ln1_g, L->ln1_b);
        par_gemm(e, l, 2, T, I, H, e->x, L->ffn_in_w, L->ffn_in_b, e->inter, 1);
        par_gemm(e, l, 3, T, H, I, e->inter, L->ffn_out_w, L->ffn_out_b, e->ctx, 0);
        par_add_layernorm(e, T, e->ctx, L->ln2_g, L->ln2_b);
    }
    pool_rows(e, lens, n, normalize, out);
    return BGEICL_OK;
}

bgeicl_code engine_forward(engine *e, const int32_t *const *ids, const size_t *lens, size_t n,
                           int normalize, float *out, bg_err *err)
{
    const model_config *c = &e->m->cfg;
    for (size_t s = 0; s < n; s++)
        /* The scores scratch and position table hold max_seq_len rows. */
        if (lens[s] == 0 || lens[s] > c->max_seq_len)
            return bg_fail(err, BGEICL_ERR_ARG, "sequence %zu has %zu tokens, outside [1, %zu]",
                           s, lens[s], c->max_seq_len);
    /* Passes of at most ENGINE_CHUNK_TOKENS tokens (or one sequence): the
     * GEMMs are as fast at 2048 rows as at 16384, and the activations,
     * 13.5 KiB a token for bge-small, stay at about 28 MiB instead of
     * growing with the caller's batch (220 MiB at 16384 tokens). */
    for (size_t s0 = 0; s0 < n;) {
        size_t s1 = s0, T = 0;
        while (s1 < n && (s1 == s0 || T + lens[s1] <= ENGINE_CHUNK_TOKENS))
            T += lens[s1++];
        bgeicl_code rc = forward_chunk(e, ids + s0, lens + s0, s1 - s0, T, normalize,
                                       out + s0 * c->hidden, err);
        if (rc != BGEICL_OK)
            return rc;
        s0 = s1;
    }
    return BGEICL_OK;
}
