/*
 * kern_bench.c - single-thread speed of each kernel table on BGE-small
 * shapes (hidden 384, 12 heads of d = 32, intermediate 1536).
 *
 *   kern_bench [SECONDS [nogemm|gemmonly|bf16only|int8only]]
 *
 * Times attention_head over all 12 heads of one sequence (L = 128 and
 * 512), GELU over a 512 x 1536 FFN activation and residual + LayerNorm
 * over 512 x 384, for every ISA up to kern_detect() (so BGEICL_ISA caps
 * it too). Each case runs for at least SECONDS (default 0.2) five times;
 * the best time per call is reported, with GFLOP/s for attention
 * (4 L^2 d per head: q.k and p.v), ns per element for the rest, and the
 * speed-up over the scalar reference. In-place kernels get a fresh copy of
 * their input before every call, outside the timed region, so that every
 * call sees the same data. Tests never time anything; this does.
 *
 * Then GEMM: C[M,N] = A[M,K] B[N,K]^T + bias for M in {1, 32, 512, 4096}
 * and the (N, K) of BGE-small's four matrices, OpenBLAS's cblas_sgemm on
 * one thread (the scalar table's gemm_bt) against each table's
 * gemm_packed, in GFLOP/s (2 M N K per call) and as a share of the FMA
 * peak of one core, measured first with a loop of independent FMAs.
 *
 * Then bf16 weights: the same shapes (M >= 32) through every bf16 GEMM
 * the CPU runs (widening AVX2 and AVX-512F, AVX512_BF16's vdpbf16ps, AMX's
 * tdpbf16ps), next to the fp32 gemm_packed of the best table in the same
 * run, and the cost of rounding A to bf16 (kern_bf16_rows), which the
 * engine pays once per GEMM; GFLOP/s count 2 M N K as for fp32.
 *
 * Last, int8 weights the same way (AVX2 16-bit products, AVX512-VNNI,
 * AMX-INT8), with the cost of quantizing A (i8_quant_rows).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "kernels/kern.h"
#include "kernels/kern_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BENCH_X86 1
#else
#define BENCH_X86 0
#endif

#define HIDDEN 384
#define HEADS 12
#define HEAD_D 32
#define INTER 1536
#define ROWS 512

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *alloc_rand(size_t n, float lo, float hi, unsigned seed)
{
    float *p = aligned_alloc(64, (n * sizeof *p + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "kern_bench: out of memory\n");
        exit(1);
    }
    srand(seed);
    for (size_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * (float)rand() / (float)RAND_MAX;
    return p;
}

/* ---- the cases ------------------------------------------------------------ */

typedef struct bench_case {
    const kern_ops *k;
    size_t L;         /* attention: sequence length */
    float *qkv, *ctx, *scores;
    float *x, *x0, *r, *g, *b; /* element-wise kernels: x is reset from x0 */
    size_t n;
    void *gemm; /* a gemm_case, for run_gemm */
} bench_case;

static void run_attention(bench_case *c)
{
    size_t H = HIDDEN, d = HEAD_D;
    for (size_t h = 0; h < HEADS; h++) {
        const float *base = c->qkv + h * d;
        c->k->attention_head(c->L, d, base, base + H, base + 2 * H, 3 * H, c->ctx + h * d, H,
                             1.0f / sqrtf((float)d), c->scores);
    }
}

static void run_gelu(bench_case *c) { c->k->gelu(c->x, c->n); }

static void run_layernorm(bench_case *c)
{
    c->k->add_layernorm(c->x, c->r, ROWS, HIDDEN, c->g, c->b, 1e-12f);
}

/* Best seconds per call over five runs of at least `secs` each. */
static double time_case(void (*fn)(bench_case *), bench_case *c, double secs)
{
    double best = INFINITY;
    for (int run = 0; run < 5; run++) {
        double spent = 0.0;
        long calls = 0;
        while (spent < secs || calls < 3) {
            if (c->x0)
                memcpy(c->x, c->x0, c->n * sizeof(float));
            double t0 = now_s();
            fn(c);
            spent += now_s() - t0;
            calls++;
        }
        if (spent / (double)calls < best)
            best = spent / (double)calls;
    }
    return best;
}

/* ---- GEMM ------------------------------------------------------------------ */

#if BENCH_X86
/* FLOP/s of one core: 24 independent FMA chains, 16 or 8 lanes. */
__attribute__((target("avx512f,fma"))) static double peak_avx512(void)
{
    __m512 acc[24], m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 24; i++)
        acc[i] = _mm512_set1_ps((float)i);
    long iters = 20000000;
    double t0 = now_s();
    for (long n = 0; n < iters; n++) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], m, a);
    }
    double t = now_s() - t0;
    float sink = 0.0f;
    for (int i = 0; i < 24; i++)
        sink += _mm512_reduce_add_ps(acc[i]);
    if (sink == 12345.0f)
        printf("!");
    return 2.0 * 16 * 24 * (double)iters / t;
}

__attribute__((target("avx2,fma"))) static double peak_avx2(void)
{
    __m256 acc[12], m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++)
        acc[i] = _mm256_set1_ps((float)i);
    long iters = 40000000;
    double t0 = now_s();
    for (long n = 0; n < iters; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], m, a);
    }
    double t = now_s() - t0;
    float out[8], sink = 0.0f;
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_ps(out, acc[i]);
        sink += out[0];
    }
    if (sink == 12345.0f)
        printf("!");
    return 2.0 * 8 * 12 * (double)iters / t;
}
#endif

typedef struct gemm_case {
    const kern_ops *k;
    size_t M, N, K;
    const float *A, *B, *Bp, *bias;
    float *C;
} gemm_case;

static void run_gemm(bench_case *bc)
{
    const gemm_case *g = bc->gemm;
    if (g->k->gemm_packed)
        g->k->gemm_packed(g->M, g->N, g->K, g->A, g->K, g->Bp, g->bias, g->C, g->N);
    else
        g->k->gemm_bt(g->M, g->N, g->K, g->A, g->K, g->B, g->K, g->bias, g->C, g->N);
}

static void bench_gemm(double secs, kern_isa top)
{
    static const size_t Ms[] = {1, 32, 512, 4096};
    static const size_t NKs[][2] = {{1152, 384}, {384, 384}, {1536, 384}, {384, 1536}};
    double peak = 134e9;
#if BENCH_X86
    if (top == KERN_AVX512)
        peak = peak_avx512();
    else if (top == KERN_AVX2)
        peak = peak_avx2();
    printf("\nmeasured FMA peak of one core (%s): %.1f GFLOP/s (nominal AVX-512: 134)\n",
           kern_isa_name(top), peak * 1e-9);
#endif
    openblas_set_num_threads(1);
    printf("%-24s %-7s %12s %12s %9s %9s\n", "gemm M x N x K", "isa", "us/call", "GFLOP/s",
           "% peak", "vs BLAS");
    size_t maxM = 4096, maxN = 1536, maxK = 1536;
    float *A = alloc_rand(maxM * maxK, -1.0f, 1.0f, 11);
    float *B = alloc_rand(maxN * maxK, -1.0f, 1.0f, 12);
    float *bias = alloc_rand(maxN, -1.0f, 1.0f, 13);
    float *C = alloc_rand(maxM * maxN, 0.0f, 0.0f, 14);
    float *Bp = alloc_rand(kern_packed_floats(maxN, maxK), 0.0f, 0.0f, 15);
    for (size_t nk = 0; nk < 4; nk++) {
        size_t N = NKs[nk][0], K = NKs[nk][1];
        kern_pack_b(B, N, K, Bp);
        for (size_t mi = 0; mi < 4; mi++) {
            double base = 0.0;
            for (int isa = 0; isa <= (int)top; isa++) {
                gemm_case g = {kern_select((kern_isa)isa), Ms[mi], N, K, A, B, Bp, bias, C};
                bench_case c = {.k = g.k, .gemm = &g};
                double t = time_case(run_gemm, &c, secs);
                double gf = 2.0 * (double)(g.M * N * K) / t;
                if (isa == 0)
                    base = t;
                char name[48];
                snprintf(name, sizeof name, "%zu x %zu x %zu", g.M, N, K);
                printf("%-24s %-7s %12.1f %12.2f %8.1f%% %8.2fx\n", name,
                       isa == 0 ? "openblas" : kern_isa_name((kern_isa)isa), t * 1e6, gf * 1e-9,
                       100.0 * gf / peak, base / t);
            }
        }
    }
    free(A), free(B), free(bias), free(C), free(Bp);
}

/* ---- bf16 GEMM ------------------------------------------------------------------ */

typedef void (*bf16_fn)(size_t M, size_t n0, size_t cols, size_t K, const uint16_t *A,
                        size_t lda, const uint16_t *Bp, const float *bias, float *C, size_t ldc);

typedef struct bf16_case {
    bf16_fn fn;
    size_t M, N, K;
    const uint16_t *A16, *Bp16;
    const float *A, *bias;
    float *C;
    uint16_t *A16w; /* kern_bf16_rows' output when timing the rounding */
} bf16_case;

static const bf16_case *cur_bf16;

static void run_bf16(bench_case *bc)
{
    (void)bc;
    const bf16_case *g = cur_bf16;
    g->fn(g->M, 0, g->N, g->K, g->A16, kern_bf16_k2(g->K), g->Bp16, g->bias, g->C, g->N);
}

static void run_round(bench_case *bc)
{
    (void)bc;
    const bf16_case *g = cur_bf16;
    kern_select(kern_detect())->bf16_rows(g->A, g->M, g->K, g->K, g->A16w, kern_bf16_k2(g->K));
}

static void bench_bf16(double secs, kern_isa top)
{
    static const size_t Ms[] = {32, 512, 4096};
    static const size_t NKs[][2] = {{1152, 384}, {384, 384}, {1536, 384}, {384, 1536}};
    typedef struct impl {
        const char *name;
        bf16_fn fn;
    } impl;
    impl impls[4];
    size_t ni = 0;
#if BENCH_X86
    if (top >= KERN_AVX2)
        impls[ni++] = (impl){"avx2", kern_avx2_gemm_bf16_cols};
    if (top >= KERN_AVX512)
        impls[ni++] = (impl){"avx512f", kern_avx512_gemm_bf16_cols};
    if (top >= KERN_AVX512 && kern_has_avx512bf16())
        impls[ni++] = (impl){"avx512bf16", kern_avx512bf16_gemm_bf16_cols};
    if (top >= KERN_AVX512 && kern_amx_usable())
        impls[ni++] = (impl){"amx-bf16", kern_amx_gemm_bf16_cols};
#endif
    if (top == KERN_SCALAR)
        return;
    const kern_ops *k = kern_select(top);
    printf("\nbf16 weights, one thread, fp32 gemm_packed (%s) in the same run\n",
           kern_isa_name(top));
    printf("%-24s %-11s %12s %12s %9s\n", "gemm M x N x K", "kernel", "us/call", "GFLOP/s",
           "vs fp32");
    size_t maxM = 4096, maxN = 1536, maxK = 1536;
    float *A = alloc_rand(maxM * maxK, -1.0f, 1.0f, 21);
    float *B = alloc_rand(maxN * maxK, -1.0f, 1.0f, 22);
    float *bias = alloc_rand(maxN, -1.0f, 1.0f, 23);
    float *C = alloc_rand(maxM * maxN, 0.0f, 0.0f, 24);
    float *Bp = alloc_rand(kern_packed_floats(maxN, maxK), 0.0f, 0.0f, 25);
    uint16_t *A16 = malloc(maxM * maxK * sizeof *A16), *A16w = malloc(maxM * maxK * sizeof *A16);
    uint16_t *Bp16 = malloc(kern_packed_bf16_elems(maxN, maxK) * sizeof *Bp16);
    if (!A16 || !A16w || !Bp16) {
        fprintf(stderr, "kern_bench: out of memory\n");
        exit(1);
    }
    for (size_t nk = 0; nk < 4; nk++) {
        size_t N = NKs[nk][0], K = NKs[nk][1];
        kern_pack_b(B, N, K, Bp);
        kern_pack_b_bf16(B, N, K, Bp16);
        for (size_t mi = 0; mi < 3; mi++) {
            size_t M = Ms[mi];
            char name[48];
            snprintf(name, sizeof name, "%zu x %zu x %zu", M, N, K);
            kern_bf16_rows(A, M, K, K, A16, kern_bf16_k2(K));
            gemm_case g = {k, M, N, K, A, B, Bp, bias, C};
            bench_case c = {.k = k, .gemm = &g};
            double base = time_case(run_gemm, &c, secs), flops = 2.0 * (double)(M * N * K);
            printf("%-24s %-11s %12.1f %12.2f %8.2fx\n", name, "fp32", base * 1e6,
                   flops / base * 1e-9, 1.0);
            for (size_t f = 0; f < ni; f++) {
                bf16_case bcase = {impls[f].fn, M, N, K, A16, Bp16, A, bias, C, A16w};
                cur_bf16 = &bcase;
                double t = time_case(run_bf16, &c, secs);
                printf("%-24s %-11s %12.1f %12.2f %8.2fx\n", name, impls[f].name, t * 1e6,
                       flops / t * 1e-9, base / t);
            }
            bf16_case rcase = {NULL, M, N, K, A16, Bp16, A, bias, C, A16w};
            cur_bf16 = &rcase;
            double t = time_case(run_round, &c, secs);
            printf("%-24s %-11s %12.1f %12s %8.2f%%\n", name, "round A", t * 1e6, "-",
                   100.0 * t / base);
        }
    }
    free(A), free(B), free(bias), free(C), free(Bp), free(A16), free(A16w), free(Bp16);
}

/* ---- int8 ---------------------------------------------------------------------- */

typedef void (*i8_fn)(size_t M, size_t n0, size_t cols, size_t K, const kern_i8_act *A,
                      const kern_i8_mat *B, const float *bias, float *C, size_t ldc);

typedef struct i8_case {
    i8_fn fn;
    size_t M, N, K;
    const float *A;
    kern_i8_act *act; /* quantized A, redone by run_quant */
    const kern_i8_mat *B;
    const float *bias;
    float *C;
} i8_case;

static const i8_case *cur_i8;

static void run_i8(bench_case *bc)
{
    (void)bc;
    const i8_case *g = cur_i8;
    g->fn(g->M, 0, g->N, g->K, g->act, g->B, g->bias, g->C, g->N);
}

static void run_quant(bench_case *bc)
{
    (void)bc;
    const i8_case *g = cur_i8;
    kern_select(kern_detect())->i8_quant_rows(g->A, g->M, g->K, g->K, g->act);
}

/* Every int8 GEMM this CPU runs, next to the fp32 packed GEMM in the same
 * run, on the shapes of bge-small's four linear layers; GOP/s counts a
 * multiply-add as 2 operations, as GFLOP/s does. */
static void bench_int8(double secs, kern_isa top)
{
    static const size_t Ms[] = {32, 512, 4096};
    static const size_t NKs[][2] = {{1152, 384}, {384, 384}, {1536, 384}, {384, 1536}};
    typedef struct impl {
        const char *name;
        i8_fn fn;
    } impl;
    impl impls[3];
    size_t ni = 0;
#if BENCH_X86
    if (top >= KERN_AVX2)
        impls[ni++] = (impl){"avx2", kern_avx2_gemm_i8_cols};
    if (top >= KERN_AVX512 && kern_has_avx512vnni())
        impls[ni++] = (impl){"avx512-vnni", kern_avx512vnni_gemm_i8_cols};
    if (top >= KERN_AVX512 && kern_amx_usable())
        impls[ni++] = (impl){"amx-int8", kern_amx_gemm_i8_cols};
#endif
    if (top == KERN_SCALAR)
        return;
    const kern_ops *k = kern_select(top);
    printf("\nint8 weights, one thread, fp32 gemm_packed (%s) in the same run\n",
           kern_isa_name(top));
    printf("%-24s %-11s %12s %12s %9s\n", "gemm M x N x K", "kernel", "us/call", "GOP/s",
           "vs fp32");
    size_t maxM = 4096, maxN = 1536, maxK = 1536;
    float *A = alloc_rand(maxM * maxK, -1.0f, 1.0f, 31);
    float *B = alloc_rand(maxN * maxK, -1.0f, 1.0f, 32);
    float *bias = alloc_rand(maxN, -1.0f, 1.0f, 33);
    float *C = alloc_rand(maxM * maxN, 0.0f, 0.0f, 34);
    float *Bp = alloc_rand(kern_packed_floats(maxN, maxK), 0.0f, 0.0f, 35);
    float *ascale = alloc_rand(maxM, 0.0f, 0.0f, 36), *bscale = alloc_rand(maxN, 0.0f, 0.0f, 37);
    int32_t *azero = malloc(maxM * sizeof *azero), *bsum = malloc(maxN * sizeof *bsum);
    uint8_t *q = aligned_alloc(64, maxM * kern_i8_kpad(maxK));
    int8_t *packed = aligned_alloc(64, kern_i8_packed_bytes(maxN, maxK));
    if (!azero || !bsum || !q || !packed) {
        fprintf(stderr, "kern_bench: out of memory\n");
        exit(1);
    }
    for (size_t nk = 0; nk < 4; nk++) {
        size_t N = NKs[nk][0], K = NKs[nk][1];
        kern_i8_mat W = {packed, bscale, bsum};
        kern_i8_act act = {q, kern_i8_kpad(K), ascale, azero};
        kern_pack_b(B, N, K, Bp);
        kern_i8_pack(B, N, K, &W);
        for (size_t mi = 0; mi < 3; mi++) {
            size_t M = Ms[mi];
            char name[48];
            snprintf(name, sizeof name, "%zu x %zu x %zu", M, N, K);
            kern_i8_quant_rows(A, M, K, K, &act);
            gemm_case g = {k, M, N, K, A, B, Bp, bias, C};
            bench_case c = {.k = k, .gemm = &g};
            double base = time_case(run_gemm, &c, secs), ops = 2.0 * (double)(M * N * K);
            printf("%-24s %-11s %12.1f %12.2f %8.2fx\n", name, "fp32", base * 1e6,
                   ops / base * 1e-9, 1.0);
            i8_case ic = {NULL, M, N, K, A, &act, &W, bias, C};
            for (size_t f = 0; f < ni; f++) {
                ic.fn = impls[f].fn;
                cur_i8 = &ic;
                double t = time_case(run_i8, &c, secs);
                printf("%-24s %-11s %12.1f %12.2f %8.2fx\n", name, impls[f].name, t * 1e6,
                       ops / t * 1e-9, base / t);
            }
            cur_i8 = &ic;
            double t = time_case(run_quant, &c, secs);
            printf("%-24s %-11s %12.1f %12s %8.2f%%\n", name, "quantize A", t * 1e6, "-",
                   100.0 * t / base);
        }
    }
    free(A), free(B), free(bias), free(C), free(Bp), free(ascale), free(bscale), free(azero);
    free(bsum), free(q), free(packed);
}

/* ---- main -------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 0.2;
    kern_isa top = kern_detect();
    float *qkv = alloc_rand((size_t)ROWS * 3 * HIDDEN, -3.0f, 3.0f, 1);
    float *ctx = alloc_rand((size_t)ROWS * HIDDEN, 0.0f, 0.0f, 2);
    float *scores = alloc_rand(kern_attention_scratch(ROWS, HIDDEN / HEADS), 0.0f, 0.0f, 3);
    float *act = alloc_rand((size_t)ROWS * INTER, -6.0f, 6.0f, 4);
    float *hid = alloc_rand((size_t)ROWS * HIDDEN, -2.0f, 2.0f, 5);
    float *res = alloc_rand((size_t)ROWS * HIDDEN, -1.0f, 1.0f, 6);
    float *g = alloc_rand(HIDDEN, 0.5f, 1.5f, 7), *b = alloc_rand(HIDDEN, -0.5f, 0.5f, 8);
    float *work = alloc_rand((size_t)ROWS * INTER, 0.0f, 0.0f, 9);

    printf("kern_bench: one thread, best of 5 runs of >= %.2g s; BGE-small shapes\n", secs);
    printf("%-34s %-7s %12s %16s %9s\n", "kernel", "isa", "us/call", "rate", "vs scalar");
    int only_bf16 = argc > 2 && !strcmp(argv[2], "bf16only");
    int only_int8 = argc > 2 && !strcmp(argv[2], "int8only");
    int only_gemm = only_bf16 || only_int8 || (argc > 2 && !strcmp(argv[2], "gemmonly"));
    for (int which = 0; which < (only_gemm ? 0 : 4); which++) {
        double base = 0.0;
        for (int isa = 0; isa <= (int)top; isa++) {
            bench_case c = {.k = kern_select((kern_isa)isa), .qkv = qkv, .ctx = ctx,
                            .scores = scores, .x = work, .g = g, .b = b};
            char name[64], rate[32];
            double t;
            if (which < 2) {
                c.L = which == 0 ? 128 : 512;
                t = time_case(run_attention, &c, secs);
                double flops = 4.0 * (double)c.L * (double)c.L * HEAD_D * HEADS;
                snprintf(name, sizeof name, "attention L=%zu d=%d x%d heads", c.L, HEAD_D, HEADS);
                snprintf(rate, sizeof rate, "%.2f GFLOP/s", flops / t * 1e-9);
            } else if (which == 2) {
                c.x0 = act, c.n = (size_t)ROWS * INTER;
                t = time_case(run_gelu, &c, secs);
                snprintf(name, sizeof name, "gelu %dx%d", ROWS, INTER);
                snprintf(rate, sizeof rate, "%.3f ns/elem", t / (double)c.n * 1e9);
            } else {
                c.x0 = hid, c.r = res, c.n = (size_t)ROWS * HIDDEN;
                t = time_case(run_layernorm, &c, secs);
                snprintf(name, sizeof name, "residual+layernorm %dx%d", ROWS, HIDDEN);
                snprintf(rate, sizeof rate, "%.3f ns/elem", t / (double)c.n * 1e9);
            }
            if (isa == 0)
                base = t;
            printf("%-34s %-7s %12.1f %16s %8.2fx\n", name, kern_isa_name((kern_isa)isa),
                   t * 1e6, rate, base / t);
        }
    }
    free(qkv), free(ctx), free(scores), free(act), free(hid), free(res), free(g), free(b);
    free(work);
    int gemms = argc <= 2 || strcmp(argv[2], "nogemm");
    if (gemms && !only_bf16 && !only_int8)
        bench_gemm(secs, top);
    if (gemms && !only_int8)
        bench_bf16(secs, top);
    if (gemms && !only_bf16)
        bench_int8(secs, top);
    return 0;
}
