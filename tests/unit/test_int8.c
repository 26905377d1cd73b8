/*
 * test_int8.c - the int8 path of the kernels (kern_int8.c, kern.h).
 *
 *   quantization  kern_i8_quant_rows: the row's range holds 0, every code
 *                 dequantizes to within half a step of its input, the
 *                 padding past K is zero; every table's i8_quant_rows gives
 *                 the same bytes, scales and zero points, NaN and
 *                 infinities included.
 *   packing       kern_i8_pack: per-column scale max|w| / 127, codes in
 *                 [-127, 127] within half a step, sums of the codes, zero
 *                 past N and past K.
 *   GEMM          the reference within 1e-6 * (sum_k |a_k b_k| + |bias|)
 *                 of a double evaluation on the dequantized operands, and
 *                 every GEMM this CPU can run (AVX2, AVX512-VNNI, AMX)
 *                 bit-identical to the reference, over row, column and K
 *                 tails and column ranges, with C's other columns
 *                 untouched.
 *   tables        which GEMM each BGEICL_ISA level hands out.
 */
#include <math.h>
#include <stdint.h>

#include "harness.h"
#include "kernels/kern.h"
#include "kernels/kern_internal.h"
#include "test_rand.h"

#define TOL_I8 1e-6
#define SENTINEL (-12345.5f)

static kern_isa hw_isa;
static double worst_i8;

static void *xmalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

/* Activation-like rows: mostly small, some all zero, one sign only, or
 * with a large outlier, as LayerNorm and GELU outputs are. */
static void fill_rows(float *x, size_t M, size_t K)
{
    for (size_t i = 0; i < M; i++) {
        float *r = x + i * K;
        int kind = (int)(i % 5);
        for (size_t k = 0; k < K; k++)
            r[k] = kind == 0 ? 0.0f : kind == 1 ? rnd(0.0f, 3.0f) : kind == 2 ? rnd(-2.0f, -0.1f)
                                                                            : rnd(-1.0f, 1.0f);
        if (kind == 4 && K > 1)
            r[rnd_u64() % K] = 40.0f;
    }
}

typedef struct act {
    kern_i8_act a;
    float *x;
} act;

static act act_make(size_t M, size_t K, size_t ld_extra)
{
    act t;
    t.x = xmalloc(M * K * sizeof(float));
    t.a.ld = kern_i8_kpad(K) + ld_extra;
    t.a.q = xmalloc(M * t.a.ld + 1);
    t.a.scale = xmalloc(M * sizeof(float));
    t.a.zero = xmalloc(M * sizeof(int32_t));
    memset(t.a.q, 0xAB, M * t.a.ld); /* the quantizer must write the padding */
    return t;
}

static void act_free(act *t) { free(t->x), free(t->a.q), free(t->a.scale), free(t->a.zero); }

typedef struct mat {
    kern_i8_mat m;
    float *w;
} mat;

static mat mat_make(size_t N, size_t K)
{
    mat t;
    t.w = xmalloc(N * K * sizeof(float));
    for (size_t i = 0; i < N * K; i++)
        t.w[i] = rnd(-0.3f, 0.3f);
    if (N > 3)
        memset(t.w + 3 * K, 0, K * sizeof(float)); /* an all-zero column */
    t.m.packed = xmalloc(kern_i8_packed_bytes(N, K));
    t.m.scale = xmalloc(N * sizeof(float));
    t.m.sum = xmalloc(N * sizeof(int32_t));
    kern_i8_pack(t.w, N, K, &t.m);
    return t;
}

static void mat_free(mat *t) { free(t->w), free(t->m.packed), free(t->m.scale), free(t->m.sum); }

static int8_t code_of(const kern_i8_mat *m, size_t K, size_t n, size_t k)
{
    return m->packed[(n / KERN_NR) * kern_i8_kpad(K) * KERN_NR + (k / 4) * 4 * KERN_NR +
                     (n % KERN_NR) * 4 + (k & 3)];
}

/* ---- quantization ------------------------------------------------------------- */

TEST(quant_rows_bounds)
{
    static const size_t Ks[] = {1, 3, 15, 16, 17, 64, 100, 384, 1536};
    for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++) {
        size_t K = Ks[ki], M = 10;
        act t = act_make(M, K, 64);
        fill_rows(t.x, M, K);
        kern_i8_quant_rows(t.x, M, K, K, &t.a);
        for (size_t i = 0; i < M; i++) {
            const float *r = t.x + i * K;
            const uint8_t *q = t.a.q + i * t.a.ld;
            float s = t.a.scale[i];
            int32_t z = t.a.zero[i];
            CHECK(z >= 0 && z <= 255 && s > 0.0f);
            for (size_t k = 0; k < K; k++) {
                double back = (double)s * ((int)q[k] - z);
                if (fabs(back - r[k]) > 0.5001 * s) {
                    fprintf(stderr, "K %zu row %zu k %zu: %g -> %g (step %g)\n", K, i, k, r[k],
                            back, s);
                    CHECK(0);
                    break;
                }
            }
            for (size_t k = K; k < kern_i8_kpad(K); k++)
                CHECK(q[k] == 0);
            if (i % 5 == 0) /* all zero: every code and the zero point 0 */
                CHECK(z == 0 && q[0] == 0);
            if (i % 5 == 1) /* non-negative: the range starts at 0 */
                CHECK(z == 0);
            if (i % 5 == 2) /* negative: it ends at 0 */
                CHECK(z == 255);
        }
        act_free(&t);
    }
}

/* Every table's quantizer is the reference's, byte for byte. */
TEST(quant_rows_tables)
{
    static const size_t Ks[] = {1, 15, 16, 17, 100, 384};
    for (int isa = 0; isa <= (int)hw_isa; isa++) {
        const kern_ops *k = kern_select((kern_isa)isa);
        for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++) {
            size_t K = Ks[ki], M = 12;
            act a = act_make(M, K, 0), b = act_make(M, K, 0);
            fill_rows(a.x, M, K);
            a.x[7 * K] = NAN;           /* a NaN codes as 0 */
            a.x[2 * K + K - 1] = NAN;   /* last in its row: no later value hides it */
            a.x[8 * K] = INFINITY;      /* an infinite range, still defined */
            a.x[9 * K] = -3.4e38f;
            memcpy(b.x, a.x, M * K * sizeof(float));
            kern_i8_quant_rows(a.x, M, K, K, &a.a);
            k->i8_quant_rows(b.x, M, K, K, &b.a);
            CHECK(!memcmp(a.a.q, b.a.q, M * a.a.ld));
            CHECK(!memcmp(a.a.scale, b.a.scale, M * sizeof(float)));
            CHECK(!memcmp(a.a.zero, b.a.zero, M * sizeof(int32_t)));
            act_free(&a), act_free(&b);
        }
    }
}

/* ---- packing ------------------------------------------------------------------ */

TEST(pack_codes)
{
    static const size_t Ns[] = {1, 16, 17, 40};
    static const size_t Ks[] = {1, 5, 64, 100};
    for (size_t ni = 0; ni < 4; ni++)
        for (size_t ki = 0; ki < 4; ki++) {
            size_t N = Ns[ni], K = Ks[ki], Kp = kern_i8_kpad(K);
            mat t = mat_make(N, K);
            size_t Np = (N + KERN_NR - 1) / KERN_NR * KERN_NR;
            for (size_t n = 0; n < Np; n++) {
                int32_t sum = 0;
                float amax = 0.0f;
                for (size_t k = 0; k < K && n < N; k++)
                    amax = fmaxf(amax, fabsf(t.w[n * K + k]));
                for (size_t k = 0; k < Kp; k++) {
                    int8_t c = code_of(&t.m, K, n, k);
                    if (n >= N || k >= K) {
                        CHECK(c == 0);
                        continue;
                    }
                    CHECK(c >= -127); /* never -128: the range is symmetric */
                    float s = t.m.scale[n];
                    CHECK(fabs((double)s * c - t.w[n * K + k]) <= 0.5001 * s);
                    sum += c;
                }
                if (n < N) {
                    CHECK(t.m.sum[n] == sum);
                    CHECK(t.m.scale[n] == (amax > 0.0f ? amax / 127.0f : 1.0f));
                }
            }
            mat_free(&t);
        }
}

/* ---- GEMM --------------------------------------------------------------------- */

typedef void (*i8_gemm_fn)(size_t M, size_t n0, size_t cols, size_t K, const kern_i8_act *A,
                           const kern_i8_mat *B, const float *bias, float *C, size_t ldc);

typedef struct i8_impl {
    const char *name;
    i8_gemm_fn fn;
} i8_impl;

static size_t i8_impls(i8_impl out[4])
{
    size_t n = 0;
    out[n++] = (i8_impl){"scalar", kern_ref_gemm_i8_cols};
#if KERN_X86
    if (hw_isa >= KERN_AVX2)
        out[n++] = (i8_impl){"avx2", kern_avx2_gemm_i8_cols};
    if (kern_has_avx512vnni())
        out[n++] = (i8_impl){"avx512-vnni", kern_avx512vnni_gemm_i8_cols};
    if (kern_amx_usable())
        out[n++] = (i8_impl){"amx-int8", kern_amx_gemm_i8_cols};
#endif
    return n;
}

/* The reference against a double evaluation of the dequantized operands:
 * its integer sums are exact, so only the epilogue's three roundings
 * remain. Returns the largest error in units of sum |a b| + |bias|. */
static double ref_error(size_t M, size_t N, size_t K, const act *A, const mat *B,
                        const float *bias, const float *C, size_t ldc)
{
    double worst = 0.0;
    for (size_t i = 0; i < M; i++)
        for (size_t n = 0; n < N; n++) {
            double ex = bias ? bias[n] : 0.0, sc = bias ? fabs(bias[n]) : 0.0;
            for (size_t k = 0; k < K; k++) {
                double a = (double)A->a.scale[i] * ((int)A->a.q[i * A->a.ld + k] - A->a.zero[i]);
                double b = (double)B->m.scale[n] * code_of(&B->m, K, n, k);
                ex += a * b, sc += fabs(a * b);
            }
            double e = fabs(C[i * ldc + n] - ex) / (sc > 0.0 ? sc : 1.0);
            worst = e > worst ? e : worst;
        }
    return worst;
}

static void gemm_case(size_t M, size_t N, size_t K, int with_bias)
{
    size_t ldc = N + 3;
    act A = act_make(M, K, 64 * (M % 2));
    mat B = mat_make(N, K);
    float *bias = with_bias ? xmalloc(N * sizeof(float)) : NULL;
    float *R = xmalloc(M * ldc * sizeof(float)), *C = xmalloc(M * ldc * sizeof(float));
    for (size_t n = 0; bias && n < N; n++)
        bias[n] = rnd(-2.0f, 2.0f);
    fill_rows(A.x, M, K);
    kern_i8_quant_rows(A.x, M, K, K, &A.a);
    for (size_t i = 0; i < M * ldc; i++)
        R[i] = SENTINEL;
    kern_ref_gemm_i8_cols(M, 0, N, K, &A.a, &B.m, bias, R, ldc);
    double e = ref_error(M, N, K, &A, &B, bias, R, ldc);
    worst_i8 = e > worst_i8 ? e : worst_i8;
    CHECK(e <= TOL_I8);
    i8_impl impls[4];
    size_t ni = i8_impls(impls);
    for (size_t f = 1; f < ni; f++)
        for (size_t n0 = 0; n0 < N; n0 += 16) {
            size_t widths[2] = {n0 ? 16 : N, N - n0};
            for (int w = 0; w < 2; w++) {
                size_t cols = widths[w] < N - n0 ? widths[w] : N - n0;
                for (size_t i = 0; i < M * ldc; i++)
                    C[i] = SENTINEL;
                impls[f].fn(M, n0, cols, K, &A.a, &B.m, bias, C, ldc);
                int same = 1, outside = 1;
                for (size_t i = 0; i < M; i++) {
                    same &= !memcmp(C + i * ldc + n0, R + i * ldc + n0, cols * sizeof *C);
                    for (size_t n = 0; n < ldc; n++)
                        if (n < n0 || n >= n0 + cols)
                            outside &= C[i * ldc + n] == SENTINEL;
                }
                if (!same || !outside)
                    fprintf(stderr, "gemm_i8_cols [%s] (%zu, %zu, %zu) n0 %zu cols %zu: %s\n",
                            impls[f].name, M, N, K, n0, cols,
                            same ? "wrote outside its columns" : "not the reference's bits");
                CHECK(same && outside);
            }
            if (N > 64)
                n0 += 48; /* wide N: every fourth panel is enough */
        }
    free(bias), free(R), free(C);
    act_free(&A), mat_free(&B);
}

TEST(gemm_i8_random)
{
    /* Row tails of every MR (2, 14, 16 and 32 for AMX, 256 per block),
     * N below, at and past a panel, K either side of a quad and a tile. */
    static const size_t Ms[] = {1, 2, 13, 14, 15, 17, 33, 100, 300};
    static const size_t Ns[] = {1, 15, 16, 17, 33, 40, 384};
    static const size_t Ks[] = {1, 3, 4, 63, 64, 65, 100, 384, 1536};
    for (size_t ki = 0; ki < 9; ki++)
        for (size_t ni = 0; ni < 7; ni++)
            for (size_t mi = 0; mi < 9; mi++) {
                size_t M = Ms[mi], N = Ns[ni], K = Ks[ki];
                if (M * N * K > (size_t)100 * 384 * 384)
                    continue;
                gemm_case(M, N, K, (int)((mi + ni) & 1));
            }
}

/* ---- tables -------------------------------------------------------------------- */

TEST(i8_tables)
{
    const kern_ops *s = kern_select(KERN_SCALAR);
    CHECK(s->gemm_i8_cols == kern_ref_gemm_i8_cols && s->i8_quant_rows == kern_i8_quant_rows);
    CHECK(!strcmp(s->i8_impl, "scalar"));
#if KERN_X86
    if (hw_isa >= KERN_AVX2)
        CHECK(kern_select(KERN_AVX2)->gemm_i8_cols == kern_avx2_gemm_i8_cols);
    if (hw_isa == KERN_AVX512) {
        setenv("BGEICL_ISA", "avx512f", 1);
        CHECK(kern_select(KERN_AVX512)->gemm_i8_cols == kern_avx2_gemm_i8_cols);
        setenv("BGEICL_ISA", "avx512", 1);
        CHECK(kern_select(KERN_AVX512)->gemm_i8_cols ==
              (kern_has_avx512vnni() ? kern_avx512vnni_gemm_i8_cols : kern_avx2_gemm_i8_cols));
        setenv("BGEICL_ISA", "amx", 1);
        CHECK_EQ_INT(kern_detect(), KERN_AVX512);
        if (kern_amx_usable())
            CHECK(!strcmp(kern_select(KERN_AVX512)->i8_impl, "amx-int8"));
        unsetenv("BGEICL_ISA");
        printf("int8 GEMM by default: %s\n", kern_select(KERN_AVX512)->i8_impl);
    }
#endif
}

int main(void)
{
    unsetenv("BGEICL_ISA");
    hw_isa = kern_detect();
    RUN(quant_rows_bounds);
    RUN(quant_rows_tables);
    RUN(pack_codes);
    RUN(gemm_i8_random);
    RUN(i8_tables);
    printf("largest reference error: %.2e of sum |a b| + |bias| (bound %.0e)\n", worst_i8, TOL_I8);
    return harness_summary("int8");
}
