/*
 * kern_ref.c - the reference kernels (OpenBLAS for GEMM, portable C for the
 * rest), the ISA detection and the table selection.
 *
 * The reference is kept plain and obviously right: it is the scalar table
 * and what every other ISA table is tested against. Speed lives in
 * kern_avx2.c and kern_avx512.c.
 */
#include "kern_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#if KERN_X86
#include <cpuid.h>
#endif

/* ---- reference kernels ----------------------------------------------------- */

void kern_ref_gemm_bt(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *B,
                      size_t ldb, const float *bias, float *C, size_t ldc)
{
    float beta = 0.0f;
    if (bias) {
        for (size_t i = 0; i < M; i++)
            memcpy(C + i * ldc, bias, N * sizeof(float));
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, A,
                (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

void kern_ref_gelu(float *x, size_t n)
{
    /* BERT's "gelu" is the exact erf form, not the tanh approximation. */
    for (size_t i = 0; i < n; i++)
        x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void kern_ref_add_layernorm(float *x, const float *r, size_t rows, size_t n, const float *g,
                            const float *b, float eps)
{
    for (size_t i = 0; i < rows; i++) {
        float *row = x + i * n;
        if (r) {
            const float *rr = r + i * n;
            for (size_t j = 0; j < n; j++)
                row[j] += rr[j];
        }
        /* Two passes in double keep the variance exact enough for
         * 0.9999 cosine parity; n is only the hidden size. */
        double mean = 0.0, var = 0.0;
        for (size_t j = 0; j < n; j++)
            mean += row[j];
        mean /= (double)n;
        for (size_t j = 0; j < n; j++) {
            double dlt = row[j] - mean;
            var += dlt * dlt;
        }
        var /= (double)n;
        float inv = (float)(1.0 / sqrt(var + eps));
        float m = (float)mean;
        for (size_t j = 0; j < n; j++)
            row[j] = (row[j] - m) * inv * g[j] + b[j];
    }
}

void kern_ref_attention_head(size_t L, size_t d, const float *q, const float *k, const float *v,
                             size_t ld, float *out, size_t ldo, float scale, float *scores)
{
    for (size_t i = 0; i < L; i++) {
        const float *qi = q + i * ld;
        float mx = -INFINITY;
        for (size_t j = 0; j < L; j++) {
            const float *kj = k + j * ld;
            float s = 0.0f;
            for (size_t t = 0; t < d; t++)
                s += qi[t] * kj[t];
            s *= scale;
            scores[j] = s;
            if (s > mx)
                mx = s;
        }
        float sum = 0.0f;
        for (size_t j = 0; j < L; j++) {
            scores[j] = expf(scores[j] - mx);
            sum += scores[j];
        }
        float inv = 1.0f / sum;
        float *oi = out + i * ldo;
        memset(oi, 0, d * sizeof(float));
        for (size_t j = 0; j < L; j++) {
            const float *vj = v + j * ld;
            float p = scores[j] * inv;
            for (size_t t = 0; t < d; t++)
                oi[t] += p * vj[t];
        }
    }
}

/* ---- detection and selection ------------------------------------------------ */

/* gemm_packed stays NULL: the reference multiplies through OpenBLAS. */
static const kern_ops ref_ops = {.isa = KERN_SCALAR,
                                 .name = "scalar",
                                 .gemm_bt = kern_ref_gemm_bt,
                                 .gelu = kern_ref_gelu,
                                 .add_layernorm = kern_ref_add_layernorm,
                                 .attention_head = kern_ref_attention_head,
                                 .gemm_bf16_cols = kern_ref_gemm_bf16_cols,
                                 .bf16_rows = kern_bf16_rows,
                                 .gemm_i8_cols = kern_ref_gemm_i8_cols,
                                 .i8_quant_rows = kern_i8_quant_rows,
                                 .bf16_impl = "scalar",
                                 .i8_impl = "scalar"};

#if KERN_X86
static const kern_ops *const tables[] = {&ref_ops, &kern_avx2_ops, &kern_avx512_ops};
#else
/* Elsewhere there is only the reference; a capped or detected x86 ISA can
 * not occur, but the table stays indexable by every kern_isa. */
static const kern_ops *const tables[] = {&ref_ops, &ref_ops, &ref_ops};
#endif

static const char *const isa_names[] = {"scalar", "avx2", "avx512"};

const char *kern_isa_name(kern_isa isa) { return isa_names[isa]; }

/* What the CPU can run, ignoring BGEICL_ISA. */
static kern_isa hw_isa(void)
{
    kern_isa best = KERN_SCALAR;
#if KERN_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        best = KERN_AVX2;
    if (best == KERN_AVX2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        best = KERN_AVX512;
#endif
    return best;
}

kern_isa kern_detect(void)
{
    kern_isa best = hw_isa();
    const char *cap = getenv("BGEICL_ISA");
    if (cap) {
        kern_isa want = best;
        if (!strcmp(cap, "scalar"))
            want = KERN_SCALAR;
        else if (!strcmp(cap, "avx2"))
            want = KERN_AVX2;
        else if (!strcmp(cap, "avx512") || !strcmp(cap, "avx512f") || !strcmp(cap, "amx"))
            want = KERN_AVX512;
        if (want < best)
            best = want;
    }
    return best;
}

/* CPUID leaf 7 subleaf `sub`, register `reg` (0 EAX .. 3 EDX), bit `bit`,
 * on a CPU with AVX-512 (so that the OS saves the zmm state); older
 * compilers' cpu_supports does not know these names. */
static int avx512_cpuid_bit(unsigned sub, int reg, int bit)
{
#if KERN_X86
    unsigned r[4];
    if (hw_isa() != KERN_AVX512 || __get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, sub, r[0], r[1], r[2], r[3]);
    return (int)((r[reg] >> bit) & 1u);
#else
    (void)sub, (void)reg, (void)bit;
    return 0;
#endif
}

int kern_has_avx512bf16(void) { return avx512_cpuid_bit(1, 0, 5); }
int kern_has_avx512vnni(void) { return avx512_cpuid_bit(0, 2, 11); }

#if KERN_X86
/* The AVX-512 tables by extension level: 0 AVX-512F/BW/VL only
 * (BGEICL_ISA=avx512f), 1 with AVX512_BF16 and AVX512-VNNI where present
 * (BGEICL_ISA=avx512), 2 with AMX too where usable (the default). */
static kern_ops avx512_ext[3];
static pthread_once_t avx512_once = PTHREAD_ONCE_INIT;

static void build_avx512_tables(void)
{
    for (int lvl = 0; lvl < 3; lvl++) {
        kern_ops *t = &avx512_ext[lvl];
        *t = kern_avx512_ops;
        if (lvl >= 1 && kern_has_avx512bf16())
            t->gemm_bf16_cols = kern_avx512bf16_gemm_bf16_cols, t->bf16_native = 1,
            t->bf16_impl = "avx512-bf16";
        if (lvl >= 1 && kern_has_avx512vnni())
            t->gemm_i8_cols = kern_avx512vnni_gemm_i8_cols, t->i8_impl = "avx512-vnni";
        if (lvl >= 2 && kern_amx_usable())
            t->gemm_bf16_cols = kern_amx_gemm_bf16_cols, t->bf16_native = 1,
            t->bf16_impl = "amx-bf16", t->gemm_i8_cols = kern_amx_gemm_i8_cols,
            t->i8_impl = "amx-int8";
    }
}

/* The extension level BGEICL_ISA allows. */
static int avx512_level(void)
{
    const char *cap = getenv("BGEICL_ISA");
    if (cap && !strcmp(cap, "avx512f"))
        return 0;
    if (cap && !strcmp(cap, "avx512"))
        return 1;
    return 2;
}
#endif

const kern_ops *kern_select(kern_isa isa)
{
    /* The engine splits every GEMM across its own pool; OpenBLAS threads on
     * top of that would oversubscribe the cores and spin between calls. */
    openblas_set_num_threads(1);
    /* A table the CPU cannot run would die of SIGILL in the forward pass;
     * lowering the request is the safer failure. */
    kern_isa hw = hw_isa();
    isa = isa > hw ? hw : isa;
#if KERN_X86
    if (isa == KERN_AVX512) {
        pthread_once(&avx512_once, build_avx512_tables);
        return &avx512_ext[avx512_level()];
    }
#endif
    return tables[isa];
}
