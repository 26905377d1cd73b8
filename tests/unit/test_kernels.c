/*
 * test_kernels.c - every kernel table against the reference (kern_ref.c)
 * and against a double-precision evaluation, on random data of many shapes
 * and on the inputs that break naive code.
 *
 * Each ISA the CPU lacks is skipped with a line saying so. Tolerances:
 *   attention   max |got - ref| <= 1e-5 * max |v| (the output is a convex
 *               combination of v rows, so max |v| is its natural scale);
 *               the same bound against the double evaluation.
 *   gelu        |got - ref| <= 2e-7 * max(1, |x|): 2e-7 absolute up to
 *               |x| = 1, relative beyond, where one float ulp of the
 *               result alone exceeds 2e-7.
 *   erf         |got - erff| <= 1e-7 absolute over every float tested.
 *   exp         within 1 ulp of expf on [-104, 89] (softmax needs x <= 0).
 *   layernorm   |got - ref| <= 1e-5 * max(1, |ref|).
 *   gemm_packed |got - exact| <= 1e-5 * (sum_k |a||b| + |bias|) per
 *               element, against a double evaluation.
 *   gemm_bf16   the same bound against a double evaluation on the
 *               bf16-rounded operands; and bit-identical to the scalar
 *               reference for every widening kernel (kern.h says why),
 *               within the bound for vdpbf16ps (it flushes subnormals).
 *   bf16        conversion exactly round-to-nearest-even, checked against
 *               an independent rounding in double and on hand-picked ties,
 *               NaNs, infinities and subnormals.
 * The largest error seen per kernel and ISA is printed at the end.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "harness.h"
#include "test_rand.h"
#include "kernels/kern.h"
#include "kernels/kern_internal.h"

#define TOL_ATTN 1e-5
#define TOL_GELU 2e-7
#define TOL_ERF 1e-7
#define TOL_EXP_ULP 1
#define TOL_LN 1e-5
#define TOL_GEMM 1e-5

static kern_isa hw_isa; /* the CPU's best, without the BGEICL_ISA cap */

/* Largest errors seen, per ISA, for the summary. */
static double worst_attn[3], worst_attn_exact[3], worst_gelu[3], worst_gelu_exact[3];
static double worst_ln[3], worst_erf[3], worst_exp_ulp[3], worst_gemm[3];
static double worst_bf16[4]; /* per bf16 GEMM implementation (bf16_impls) */

/* ---- helpers ------------------------------------------------------------- */

static float *alloc_f(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static void fill(float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = rnd(lo, hi);
}

static double max2(double a, double b) { return a > b ? a : b; }

/* Records a failure with context when err > tol (or err is NaN). */
static void check_tol(double err, double tol, const char *what, const char *isa, size_t a,
                      size_t b)
{
    if (!(err <= tol)) {
        fprintf(stderr, "%s [%s] shape (%zu, %zu): error %.3g > tolerance %.3g\n", what, isa, a, b,
                err, tol);
        harness_failures_in_test++;
    }
}

/* Distance in ulps between two finite floats of the same sign (or zero). */
static int64_t ulp_dist(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    if (ia < 0)
        ia = INT32_MIN - ia;
    if (ib < 0)
        ib = INT32_MIN - ib;
    return ia > ib ? (int64_t)ia - ib : (int64_t)ib - ia;
}

/* The tables to test: every ISA up to what the hardware has. */
static int isa_count(void) { return (int)hw_isa + 1; }
static const kern_ops *table(int i) { return kern_select((kern_isa)i); }

/* ---- ISA detection and tables ------------------------------------------------- */

TEST(isa_cap)
{
    setenv("BGEICL_ISA", "scalar", 1);
    CHECK_EQ_INT(kern_detect(), KERN_SCALAR);
    setenv("BGEICL_ISA", "avx2", 1);
    CHECK_EQ_INT(kern_detect(), hw_isa < KERN_AVX2 ? hw_isa : KERN_AVX2);
    setenv("BGEICL_ISA", "avx512", 1);
    CHECK_EQ_INT(kern_detect(), hw_isa);
    setenv("BGEICL_ISA", "no-such-isa", 1);
    CHECK_EQ_INT(kern_detect(), hw_isa);
    unsetenv("BGEICL_ISA");
    CHECK_EQ_INT(kern_detect(), hw_isa);
}

TEST(tables)
{
    for (int i = 0; i < isa_count(); i++) {
        const kern_ops *k = table(i);
        CHECK_EQ_INT(k->isa, i);
        CHECK(!strcmp(k->name, kern_isa_name((kern_isa)i)));
        CHECK(k->gemm_bt == kern_ref_gemm_bt); /* the OpenBLAS reference */
        CHECK(k->gelu && k->add_layernorm && k->attention_head);
        /* Packed GEMM in every vector table, never in the reference. */
        CHECK((k->gemm_packed != NULL) == (i != KERN_SCALAR));
        CHECK((k->gemm_packed_cols != NULL) == (i != KERN_SCALAR));
        CHECK(k->gemm_bf16_cols != NULL); /* every table, the reference too */
        CHECK(k->bf16_rows != NULL);
        CHECK(k->bf16_native ==
              (i == KERN_AVX512 && (kern_has_avx512bf16() || kern_amx_usable())));
        CHECK(k->gemm_i8_cols && k->i8_quant_rows && k->bf16_impl && k->i8_impl);
    }
    CHECK(table(KERN_SCALAR)->gemm_bf16_cols == kern_ref_gemm_bf16_cols);
#if KERN_X86
    if (hw_isa == KERN_AVX512) {
        /* BGEICL_ISA=avx512f keeps AVX-512 but not the bf16 dot product;
         * avx512 adds it where present; amx (the default) adds AMX. */
        setenv("BGEICL_ISA", "avx512f", 1);
        CHECK_EQ_INT(kern_detect(), KERN_AVX512);
        CHECK(kern_select(KERN_AVX512)->gemm_bf16_cols == kern_avx512_gemm_bf16_cols);
        CHECK(!kern_select(KERN_AVX512)->bf16_native);
        setenv("BGEICL_ISA", "avx512", 1);
        CHECK(kern_select(KERN_AVX512)->gemm_bf16_cols ==
              (kern_has_avx512bf16() ? kern_avx512bf16_gemm_bf16_cols
                                     : kern_avx512_gemm_bf16_cols));
        unsetenv("BGEICL_ISA");
        CHECK(kern_select(KERN_AVX512)->gemm_bf16_cols ==
              (kern_amx_usable() ? kern_amx_gemm_bf16_cols
               : kern_has_avx512bf16() ? kern_avx512bf16_gemm_bf16_cols
                                       : kern_avx512_gemm_bf16_cols));
    }
#endif
    CHECK(table(KERN_SCALAR)->gelu == kern_ref_gelu);
    CHECK(table(KERN_SCALAR)->attention_head == kern_ref_attention_head);
}

/* ---- attention ---------------------------------------------------------------- */

/* The attention of one head in double, for the exactness check. */
static void attention_exact(size_t L, size_t d, const float *q, const float *k, const float *v,
                            size_t ld, double *out, float scale)
{
    double *s = malloc(L * sizeof *s);
    for (size_t i = 0; i < L; i++) {
        double mx = -INFINITY, sum = 0.0;
        for (size_t j = 0; j < L; j++) {
            double dot = 0.0;
            for (size_t t = 0; t < d; t++)
                dot += (double)q[i * ld + t] * k[j * ld + t];
            s[j] = dot * scale;
            mx = s[j] > mx ? s[j] : mx;
        }
        for (size_t j = 0; j < L; j++)
            sum += (s[j] = exp(s[j] - mx));
        for (size_t t = 0; t < d; t++) {
            double o = 0.0;
            for (size_t j = 0; j < L; j++)
                o += s[j] * v[j * ld + t];
            out[i * d + t] = o / sum;
        }
    }
    free(s);
}

/* Runs one head through `k` with a scratch of exactly the size kern.h
 * states and an output whose row padding holds a sentinel; returns 0 if the
 * padding was touched. */
static int run_attention(const kern_ops *k, size_t L, size_t d, const float *qkv, size_t ld,
                         float *out, size_t ldo, float scale)
{
    float *scores = aligned_alloc(64, (kern_attention_scratch(L, d) * sizeof(float) + 63) & ~63);
    for (size_t i = 0; i < L * ldo; i++)
        out[i] = -12345.0f;
    k->attention_head(L, d, qkv, qkv + d, qkv + 2 * d, ld, out, ldo, scale, scores);
    free(scores);
    for (size_t i = 0; i < L; i++)
        for (size_t t = d; t < ldo; t++)
            if (out[i * ldo + t] != -12345.0f)
                return 0;
    return 1;
}

TEST(attention_random)
{
    /* 32 and 64 are the BGE head sizes; 5 and 36 leave a partial vector. */
    static const size_t ds[] = {8, 32, 64, 80, 5, 36}, Ls[] = {1, 2, 7, 128, 512};
    for (size_t di = 0; di < 6; di++) {
        for (size_t li = 0; li < 5; li++) {
            size_t d = ds[di], L = Ls[li], ld = 3 * d + 3, ldo = d + 5;
            float *qkv = alloc_f(L * ld), *ref = alloc_f(L * ldo), *got = alloc_f(L * ldo);
            double *ex = malloc(L * d * sizeof *ex);
            /* uniform(-3, 3) gives scores of standard deviation 3 after
             * the 1/sqrt(d) scale: softmax rows neither flat nor one-hot. */
            fill(qkv, L * ld, -3.0f, 3.0f);
            float scale = 1.0f / sqrtf((float)d), vmax = 0.0f;
            for (size_t j = 0; j < L; j++)
                for (size_t t = 0; t < d; t++)
                    vmax = fmaxf(vmax, fabsf(qkv[j * ld + 2 * d + t]));
            CHECK(run_attention(table(KERN_SCALAR), L, d, qkv, ld, ref, ldo, scale));
            attention_exact(L, d, qkv, qkv + d, qkv + 2 * d, ld, ex, scale);
            for (int isa = 0; isa < isa_count(); isa++) {
                CHECK(run_attention(table(isa), L, d, qkv, ld, got, ldo, scale));
                double e_ref = 0.0, e_ex = 0.0;
                for (size_t i = 0; i < L; i++)
                    for (size_t t = 0; t < d; t++) {
                        e_ref = max2(e_ref, fabs((double)got[i * ldo + t] - ref[i * ldo + t]));
                        e_ex = max2(e_ex, fabs(got[i * ldo + t] - ex[i * d + t]));
                    }
                e_ref /= vmax, e_ex /= vmax;
                check_tol(e_ref, TOL_ATTN, "attention vs reference", kern_isa_name(isa), d, L);
                check_tol(e_ex, TOL_ATTN, "attention vs double", kern_isa_name(isa), d, L);
                worst_attn[isa] = max2(worst_attn[isa], e_ref);
                worst_attn_exact[isa] = max2(worst_attn_exact[isa], e_ex);
            }
            free(qkv), free(ref), free(got), free(ex);
        }
    }
}

/* One key scores ~5e4 above the rest: exp of the raw score would overflow,
 * after max subtraction every other weight underflows to 0 and the output
 * is exactly that key's value row. */
TEST(attention_one_huge_score)
{
    size_t d = 32, ld = 3 * d, hot = 5;
    for (size_t L = 7; L <= 130; L += 123) { /* 7, 130: tails only, and blocks + tail */
        float *qkv = alloc_f(L * ld), *out = alloc_f(L * d);
        fill(qkv, L * ld, -1.0f, 1.0f);
        for (size_t i = 0; i < L; i++)
            for (size_t t = 0; t < d; t++)
                qkv[i * ld + t] = 100.0f; /* every query */
        for (size_t t = 0; t < d; t++)
            qkv[hot * ld + d + t] = 100.0f; /* the hot key */
        for (int isa = 0; isa < isa_count(); isa++) {
            CHECK(run_attention(table(isa), L, d, qkv, ld, out, d, 1.0f / sqrtf((float)d)));
            int exact = 1;
            for (size_t i = 0; i < L; i++)
                for (size_t t = 0; t < d; t++)
                    exact &= out[i * d + t] == qkv[hot * ld + 2 * d + t];
            if (!exact)
                fprintf(stderr, "attention [%s] L=%zu: not the hot value row\n",
                        kern_isa_name(isa), L);
            CHECK(exact);
        }
        free(qkv), free(out);
    }
}

/* Identical keys: a uniform softmax, so every output row is the mean of v. */
TEST(attention_identical_scores)
{
    size_t d = 64, ld = 3 * d + 1;
    for (size_t L = 1; L <= 300; L = L * 3 + 2) {
        float *qkv = alloc_f(L * ld), *out = alloc_f(L * d);
        fill(qkv, L * ld, -2.0f, 2.0f);
        for (size_t j = 1; j < L; j++)
            memcpy(qkv + j * ld + d, qkv + d, d * sizeof(float));
        for (int isa = 0; isa < isa_count(); isa++) {
            CHECK(run_attention(table(isa), L, d, qkv, ld, out, d, 0.125f));
            double err = 0.0;
            for (size_t t = 0; t < d; t++) {
                double mean = 0.0;
                for (size_t j = 0; j < L; j++)
                    mean += qkv[j * ld + 2 * d + t];
                mean /= (double)L;
                for (size_t i = 0; i < L; i++)
                    err = max2(err, fabs(out[i * d + t] - mean) / 2.0);
            }
            check_tol(err, TOL_ATTN, "attention of identical keys", kern_isa_name(isa), d, L);
        }
        free(qkv), free(out);
    }
}

/* ---- GELU ----------------------------------------------------------------------- */

/* 0.5 x (1 + erf(x / sqrt 2)) in double, via erfc so that x << 0 keeps
 * its relative accuracy. */
static double gelu_exact(float x) { return 0.5 * x * erfc(-(double)x * 0.70710678118654752440); }

/* Runs `k`'s GELU over x[0..n) in a buffer starting one float off
 * alignment with guards on both sides, and compares with the reference. */
static void check_gelu(int isa, const float *x, size_t n, size_t shape_a, size_t shape_b)
{
    float *buf = alloc_f(n + 2), *ref = alloc_f(n);
    buf[0] = buf[n + 1] = 777.0f;
    memcpy(buf + 1, x, n * sizeof(float));
    memcpy(ref, x, n * sizeof(float));
    table(isa)->gelu(buf + 1, n);
    kern_ref_gelu(ref, n);
    CHECK(buf[0] == 777.0f && buf[n + 1] == 777.0f);
    double e_ref = 0.0, e_ex = 0.0;
    for (size_t i = 0; i < n; i++) {
        float got = buf[1 + i];
        if (isnan(ref[i]) || isinf(ref[i])) {
            if (!(isnan(ref[i]) ? isnan(got) : got == ref[i])) {
                fprintf(stderr, "gelu [%s] (%a): %a, reference %a\n", kern_isa_name(isa), x[i],
                        got, ref[i]);
                harness_failures_in_test++;
            }
            continue;
        }
        double scale = max2(1.0, fabs(x[i]));
        e_ref = max2(e_ref, fabs((double)got - ref[i]) / scale);
        e_ex = max2(e_ex, fabs(got - gelu_exact(x[i])) / scale);
    }
    check_tol(e_ref, TOL_GELU, "gelu vs reference", kern_isa_name(isa), shape_a, shape_b);
    check_tol(e_ex, TOL_GELU, "gelu vs double", kern_isa_name(isa), shape_a, shape_b);
    worst_gelu[isa] = max2(worst_gelu[isa], e_ref);
    worst_gelu_exact[isa] = max2(worst_gelu_exact[isa], e_ex);
    free(buf), free(ref);
}

TEST(gelu_random)
{
    static const size_t ns[] = {1, 7, 384, 1536}, rows[] = {1, 3, 17};
    for (size_t ni = 0; ni < 4; ni++)
        for (size_t ri = 0; ri < 3; ri++) {
            size_t n = ns[ni] * rows[ri];
            float *x = alloc_f(n);
            fill(x, n, -8.0f, 8.0f);
            for (int isa = 0; isa < isa_count(); isa++)
                check_gelu(isa, x, n, ns[ni], rows[ri]);
            free(x);
        }
}

/* Every 1/1024 over [-12, 12], and both sides of each erf interval edge. */
TEST(gelu_sweep)
{
    size_t n = 24 * 1024 + 1, m = 0;
    float *x = alloc_f(n + 9 * 6);
    for (size_t i = 0; i < n; i++)
        x[m++] = -12.0f + (float)i / 1024.0f;
    for (int e = 1; e <= 9; e++) {
        float edge = (float)(e * 0.5 * 1.41421356237309505);
        x[m++] = nextafterf(edge, 0.0f), x[m++] = edge, x[m++] = nextafterf(edge, 100.0f);
        x[m++] = -nextafterf(edge, 0.0f), x[m++] = -edge, x[m++] = -nextafterf(edge, 100.0f);
    }
    for (int isa = 0; isa < isa_count(); isa++)
        check_gelu(isa, x, m, m, 1);
    free(x);
}

TEST(gelu_special)
{
    const float sub = 1e-40f; /* subnormal */
    float x[] = {0.0f,     -0.0f,     sub,       -sub,        FLT_TRUE_MIN, FLT_MIN,
                 -FLT_MIN, 1e-20f,    -1e-20f,   30.0f,       -30.0f,       1e30f,
                 -1e30f,   FLT_MAX,   -FLT_MAX,  INFINITY,    -INFINITY,    NAN};
    size_t n = sizeof x / sizeof x[0];
    for (int isa = 0; isa < isa_count(); isa++) {
        float y[sizeof x / sizeof x[0]];
        memcpy(y, x, sizeof x);
        table(isa)->gelu(y, n);
        CHECK(y[0] == 0.0f && !signbit(y[0]));
        CHECK(y[1] == 0.0f && signbit(y[1]));
        CHECK(y[2] == 0.5f * sub && y[3] == -0.5f * sub); /* erf(tiny) vanishes in 1 + erf */
        CHECK(y[4] == 0.0f);                              /* 0.5 * FLT_TRUE_MIN rounds to 0 */
        CHECK(y[9] == 30.0f && y[10] == 0.0f);
        CHECK(y[11] == 1e30f && y[12] == 0.0f);
        CHECK(y[13] == FLT_MAX && y[14] == 0.0f); /* 0.5 x * 2, no overflow */
        CHECK(y[15] == INFINITY);
        /* -inf * 0: NaN, as in the reference and in PyTorch's erf GELU. */
        CHECK(isnan(y[16]));
        CHECK(isnan(y[17]));
        check_gelu(isa, x, n, n, 0);
    }
}

/* ---- vector erf and exp --------------------------------------------------------- */

#if KERN_X86
typedef void (*vec_fn)(const float *x, float *y, size_t n);

static vec_fn erf_fn(int isa) { return isa == KERN_AVX2 ? kern_avx2_erf_n : kern_avx512_erf_n; }
static vec_fn exp_fn(int isa) { return isa == KERN_AVX2 ? kern_avx2_exp_n : kern_avx512_exp_n; }

/* Fills x with every 2^-14 over [-6, 6] and, for both signs, 64 points per
 * binade from 1e-45 to 3e38; returns the count. */
static size_t erf_inputs(float *x)
{
    size_t m = 0;
    for (int i = -6 * 16384; i <= 6 * 16384; i++)
        x[m++] = (float)i / 16384.0f;
    for (int e = -149; e < 128; e++)
        for (int s = 0; s < 64; s++) {
            float v = ldexpf(1.0f + (float)s / 64.0f, e);
            if (isfinite(v))
                x[m++] = v, x[m++] = -v;
        }
    return m;
}

TEST(erf_accuracy)
{
    float *x = alloc_f(200000 + 2 * 64 * 280), *y = alloc_f(200000 + 2 * 64 * 280);
    size_t n = erf_inputs(x);
    for (int isa = KERN_AVX2; isa < isa_count(); isa++) {
        erf_fn(isa)(x, y, n);
        double err = 0.0;
        for (size_t i = 0; i < n; i++)
            err = max2(err, fabs((double)y[i] - erff(x[i])));
        check_tol(err, TOL_ERF, "erf vs erff", kern_isa_name(isa), n, 0);
        worst_erf[isa] = err;
        float sx[] = {-0.0f, INFINITY, -INFINITY, NAN, 1e-30f}, sy[5];
        erf_fn(isa)(sx, sy, 5);
        CHECK(sy[0] == 0.0f && signbit(sy[0]));
        CHECK(sy[1] == 1.0f && sy[2] == -1.0f);
        CHECK(isnan(sy[3]));
        CHECK(ulp_dist(sy[4], erff(1e-30f)) <= 1); /* relative accuracy near 0 */
    }
    free(x), free(y);
}

TEST(exp_accuracy)
{
    size_t n = 1u << 21, m = 0;
    float *x = alloc_f(n + 64), *y = alloc_f(n + 64);
    for (size_t i = 0; i < n / 2; i++) /* a fine even grid of the softmax range */
        x[m++] = -104.0f * (float)i / (float)(n / 2);
    while (m < n) { /* random bit patterns in [-104, 89]: every binade */
        uint32_t bits = (uint32_t)rnd_u64();
        float f;
        memcpy(&f, &bits, 4);
        if (f >= -104.0f && f <= 89.0f)
            x[m++] = f;
    }
    for (int isa = KERN_AVX2; isa < isa_count(); isa++) {
        exp_fn(isa)(x, y, m);
        int64_t worst = 0;
        for (size_t i = 0; i < m; i++) {
            int64_t u = ulp_dist(y[i], expf(x[i]));
            if (u > worst)
                worst = u;
        }
        check_tol((double)worst, TOL_EXP_ULP, "exp ulps vs expf", kern_isa_name(isa), m, 0);
        worst_exp_ulp[isa] = (double)worst;
        float sx[] = {0.0f, -INFINITY, INFINITY, NAN, -1000.0f, 1000.0f, -88.0f, -100.0f}, sy[8];
        exp_fn(isa)(sx, sy, 8);
        CHECK(sy[0] == 1.0f && sy[1] == 0.0f && sy[2] == INFINITY && isnan(sy[3]));
        CHECK(sy[4] == 0.0f && sy[5] == INFINITY);
        CHECK(ulp_dist(sy[6], expf(-88.0f)) <= 1 && ulp_dist(sy[7], expf(-100.0f)) <= 1);
    }
    free(x), free(y);
}
#endif

/* ---- residual + LayerNorm -------------------------------------------------------- */

/* LayerNorm(x + r) * g + b for one row in double after the float residual
 * add (as the model specifies it), for the exactness check. Returns the
 * error that rounding the mean to float may add to an output, which grows
 * with |mean| / std: the kernels, like the reference, subtract a float
 * mean, and the random test has rows with mean / std near 1000. */
static double layernorm_exact(const float *x, const float *r, size_t n, const float *g,
                              const float *b, float eps, double *out)
{
    double mean = 0.0, var = 0.0, gmax = 0.0;
    for (size_t j = 0; j < n; j++)
        mean += (out[j] = (float)(x[j] + (r ? r[j] : 0.0f)));
    mean /= (double)n;
    for (size_t j = 0; j < n; j++)
        var += (out[j] - mean) * (out[j] - mean);
    double inv = 1.0 / sqrt(var / (double)n + eps);
    for (size_t j = 0; j < n; j++) {
        out[j] = (out[j] - mean) * inv * g[j] + b[j];
        gmax = max2(gmax, fabs(g[j]));
    }
    return var > 0.0 ? 0.5 * FLT_EPSILON * fabs(mean) * inv * gmax : 0.0;
}

TEST(layernorm_random)
{
    static const size_t ns[] = {1, 7, 384, 1536}, rows_[] = {1, 3, 17};
    const float eps = 1e-12f; /* BGE's layer_norm_eps */
    for (size_t ni = 0; ni < 4; ni++)
        for (size_t ri = 0; ri < 3; ri++)
            for (int with_r = 0; with_r < 2; with_r++) {
                size_t n = ns[ni], rows = rows_[ri], sz = n * rows;
                float *x = alloc_f(sz), *r = alloc_f(sz), *g = alloc_f(n), *b = alloc_f(n);
                float *ref = alloc_f(sz), *got = alloc_f(sz), *r_copy = alloc_f(sz);
                double *ex = malloc(n * sizeof *ex);
                fill(x, sz, -2.0f, 2.0f);
                fill(r, sz, -1.0f, 1.0f);
                fill(g, n, 0.5f, 1.5f);
                fill(b, n, -0.5f, 0.5f);
                for (size_t i = 0; i < rows; i++) /* offsets up to 1000 stress the variance */
                    for (size_t j = 0; j < n; j++)
                        x[i * n + j] += (float)(i % 4) * 333.0f;
                memcpy(r_copy, r, sz * sizeof(float));
                memcpy(ref, x, sz * sizeof(float));
                kern_ref_add_layernorm(ref, with_r ? r : NULL, rows, n, g, b, eps);
                for (int isa = 0; isa < isa_count(); isa++) {
                    memcpy(got, x, sz * sizeof(float));
                    table(isa)->add_layernorm(got, with_r ? r : NULL, rows, n, g, b, eps);
                    double e_ref = 0.0, e_ex = 0.0;
                    for (size_t i = 0; i < rows; i++) {
                        double slack = layernorm_exact(x + i * n, with_r ? r + i * n : NULL, n,
                                                       g, b, eps, ex);
                        for (size_t j = 0; j < n; j++) {
                            double gv = got[i * n + j], rv = ref[i * n + j];
                            e_ref = max2(e_ref, fabs(gv - rv) / max2(1.0, fabs(rv)));
                            e_ex = max2(e_ex, (fabs(gv - ex[j]) - slack) / max2(1.0, fabs(ex[j])));
                        }
                    }
                    check_tol(e_ref, TOL_LN, "layernorm vs reference", kern_isa_name(isa), n,
                              rows);
                    check_tol(e_ex, TOL_LN, "layernorm vs double", kern_isa_name(isa), n, rows);
                    worst_ln[isa] = max2(worst_ln[isa], e_ref);
                    CHECK(!memcmp(r, r_copy, sz * sizeof(float))); /* r is read-only */
                }
                free(x), free(r), free(g), free(b), free(ref), free(got), free(r_copy), free(ex);
            }
}

/* A constant row has variance 0: x - mean is exactly 0, so the output is
 * exactly the bias, whatever the (huge) 1/sqrt(eps). */
TEST(layernorm_constant_row)
{
    static const size_t ns[] = {1, 7, 384, 1536};
    for (size_t ni = 0; ni < 4; ni++) {
        size_t n = ns[ni], rows = 3;
        float *x = alloc_f(n * rows), *r = alloc_f(n * rows), *g = alloc_f(n), *b = alloc_f(n);
        fill(g, n, 0.5f, 1.5f);
        fill(b, n, -0.5f, 0.5f);
        for (int isa = 0; isa < isa_count(); isa++) {
            for (size_t i = 0; i < n * rows; i++)
                x[i] = 2.75f, r[i] = 0.5f + (float)(i / n); /* each row constant */
            table(isa)->add_layernorm(x, r, rows, n, g, b, 1e-12f);
            int exact = 1;
            for (size_t i = 0; i < n * rows; i++)
                exact &= x[i] == b[i % n];
            if (!exact)
                fprintf(stderr, "layernorm [%s] n=%zu: constant row is not the bias\n",
                        kern_isa_name(isa), n);
            CHECK(exact);
        }
        free(x), free(r), free(g), free(b);
    }
}

/* ---- packed GEMM -------------------------------------------------------------------------- */

TEST(pack_layout)
{
    static const size_t Ns[] = {1, 15, 16, 17, 33}, Ks[] = {1, 7, 384};
    for (size_t ni = 0; ni < 5; ni++)
        for (size_t ki = 0; ki < 3; ki++) {
            size_t N = Ns[ni], K = Ks[ki], P = (N + 15) / 16;
            CHECK_EQ_INT(kern_packed_floats(N, K), P * 16 * K);
            float *B = alloc_f(N * K), *Bp = alloc_f(P * 16 * K);
            fill(B, N * K, -1.0f, 1.0f);
            kern_pack_b(B, N, K, Bp);
            int ok = 1;
            for (size_t n = 0; n < P * 16; n++)
                for (size_t k = 0; k < K; k++) {
                    float want = n < N ? B[n * K + k] : 0.0f;
                    ok &= Bp[(n / 16) * K * 16 + k * 16 + n % 16] == want;
                }
            CHECK(ok);
            free(B), free(Bp);
        }
}

/* C = A B^T + bias in double, and the error scale sum_k |a||b| + |bias|. */
static void gemm_exact(size_t M, size_t N, size_t K, const float *A, const float *B,
                       const float *bias, double *C, double *scale)
{
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double s = bias ? bias[j] : 0.0, a = bias ? fabs(bias[j]) : 0.0;
            for (size_t k = 0; k < K; k++) {
                s += (double)A[i * K + k] * B[j * K + k];
                a += fabs((double)A[i * K + k] * B[j * K + k]);
            }
            C[i * N + j] = s;
            scale[i * N + j] = a;
        }
}

/* Largest |got - exact| / scale over columns [c0, c1) of rows; -1 if a
 * sentinel outside those columns (or in the row padding) was touched. */
static double gemm_err(size_t M, size_t N, size_t ldc, const float *C, const double *ex,
                       const double *scale, size_t c0, size_t c1, float sentinel)
{
    double worst = 0.0;
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < ldc; j++) {
            float g = C[i * ldc + j];
            if (j < c0 || j >= c1) {
                if (memcmp(&g, &sentinel, sizeof g))
                    return -1.0;
                continue;
            }
            double e = fabs((double)g - ex[i * N + j]) / max2(scale[i * N + j], 1e-30);
            if (!(e <= worst))
                worst = isnan(e) ? INFINITY : e;
        }
    return worst;
}

TEST(gemm_packed_random)
{
    static const size_t Ms[] = {1, 2, 7, 13, 64, 100, 515};
    static const size_t Ns[] = {1, 15, 16, 17, 33, 384, 1152};
    static const size_t Ks[] = {1, 7, 384, 1536};
    const float sentinel = -12345.5f;
    size_t cases = 0;
    for (size_t ki = 0; ki < 4; ki++)
        for (size_t ni = 0; ni < 7; ni++)
            for (size_t mi = 0; mi < 7; mi++) {
                size_t M = Ms[mi], N = Ns[ni], K = Ks[ki];
                /* Keep the double reference affordable: the largest
                 * shapes only with the smaller partners. */
                if (M * N * K > (size_t)100 * 1152 * 384)
                    continue;
                size_t ldc = N + 3; /* catches writes past column N */
                float *A = alloc_f(M * K), *B = alloc_f(N * K), *bias = alloc_f(N);
                float *Bp = alloc_f(kern_packed_floats(N, K)), *C = alloc_f(M * ldc);
                double *ex = malloc(M * N * sizeof *ex), *sc = malloc(M * N * sizeof *sc);
                double *ex0 = malloc(M * N * sizeof *ex0), *sc0 = malloc(M * N * sizeof *sc0);
                fill(A, M * K, -1.0f, 1.0f);
                fill(B, N * K, -0.5f, 0.5f);
                fill(bias, N, -2.0f, 2.0f);
                kern_pack_b(B, N, K, Bp);
                gemm_exact(M, N, K, A, B, bias, ex, sc);
                gemm_exact(M, N, K, A, B, NULL, ex0, sc0);
                for (int isa = 1; isa < isa_count(); isa++) {
                    const kern_ops *k = table(isa);
                    for (int with_bias = 0; with_bias < 2; with_bias++) {
                        for (size_t i = 0; i < M * ldc; i++)
                            C[i] = sentinel;
                        k->gemm_packed(M, N, K, A, K, Bp, with_bias ? bias : NULL, C, ldc);
                        double e = gemm_err(M, N, ldc, C, with_bias ? ex : ex0,
                                            with_bias ? sc : sc0, 0, N, sentinel);
                        CHECK(e >= 0.0); /* nothing outside C written */
                        check_tol(e, TOL_GEMM, with_bias ? "gemm_packed+bias" : "gemm_packed",
                                  kern_isa_name(isa), M, N * 10000 + K);
                        worst_gemm[isa] = max2(worst_gemm[isa], e);
                        cases++;
                    }
                    /* Column ranges: each 16-aligned start with a few widths,
                     * into a fresh C, so that only [n0, n0 + cols) changes. */
                    for (size_t n0 = 0; n0 < N; n0 += 16) {
                        size_t widths[3] = {1, 16, N - n0};
                        for (int w = 0; w < 3; w++) {
                            size_t cols = widths[w] < N - n0 ? widths[w] : N - n0;
                            for (size_t i = 0; i < M * ldc; i++)
                                C[i] = sentinel;
                            k->gemm_packed_cols(M, n0, cols, K, A, K, Bp, bias, C, ldc);
                            double e = gemm_err(M, N, ldc, C, ex, sc, n0, n0 + cols, sentinel);
                            CHECK(e >= 0.0);
                            check_tol(e, TOL_GEMM, "gemm_packed_cols", kern_isa_name(isa), M,
                                      n0 * 10000 + cols);
                            worst_gemm[isa] = max2(worst_gemm[isa], e);
                            cases++;
                        }
                        if (N > 64)
                            n0 += 48; /* wide N: every fourth panel is enough */
                    }
                }
                free(A), free(B), free(bias), free(Bp), free(C), free(ex), free(sc), free(ex0),
                    free(sc0);
            }
    printf("kernels: gemm_packed checked in %zu calls\n", cases);
}

/* A row stride lda > K and ldc > N, and K = 0 (C = bias). */
TEST(gemm_packed_strides)
{
    size_t M = 29, N = 40, K = 300, lda = 311, ldc = 57;
    float *A = alloc_f(M * lda), *Ad = alloc_f(M * K), *B = alloc_f(N * K), *bias = alloc_f(N);
    float *Bp = alloc_f(kern_packed_floats(N, K)), *C = alloc_f(M * ldc);
    double *ex = malloc(M * N * sizeof *ex), *sc = malloc(M * N * sizeof *sc);
    fill(A, M * lda, -1.0f, 1.0f);
    for (size_t i = 0; i < M; i++)
        memcpy(Ad + i * K, A + i * lda, K * sizeof(float));
    fill(B, N * K, -1.0f, 1.0f);
    fill(bias, N, -1.0f, 1.0f);
    kern_pack_b(B, N, K, Bp);
    gemm_exact(M, N, K, Ad, B, bias, ex, sc);
    for (int isa = 1; isa < isa_count(); isa++) {
        const kern_ops *k = table(isa);
        for (size_t i = 0; i < M * ldc; i++)
            C[i] = -1.0f;
        k->gemm_packed(M, N, K, A, lda, Bp, bias, C, ldc);
        double e = gemm_err(M, N, ldc, C, ex, sc, 0, N, -1.0f);
        CHECK(e >= 0.0);
        check_tol(e, TOL_GEMM, "gemm_packed strided", kern_isa_name(isa), M, N);
        /* K = 0: C = bias, or 0 without one. */
        k->gemm_packed(M, N, 0, A, lda, Bp, bias, C, ldc);
        int ok = 1;
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++)
                ok &= C[i * ldc + j] == bias[j];
        k->gemm_packed(3, N, 0, A, lda, Bp, NULL, C, ldc);
        for (size_t j = 0; j < N; j++)
            ok &= C[j] == 0.0f;
        CHECK(ok);
    }
    free(A), free(Ad), free(B), free(bias), free(Bp), free(C), free(ex), free(sc);
}

/* ---- bf16 ----------------------------------------------------------------------------------- */

static uint32_t f2u(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static float u2f(uint32_t u)
{
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* Round to nearest even by comparing distances in double: independent of
 * the bit trick in kern_f32_to_bf16. Finite x only. */
static uint16_t bf16_by_distance(float x)
{
    uint32_t lo = f2u(x) & 0xFFFF0000u;
    uint32_t hi = lo + 0x10000u; /* away from zero; may be infinity */
    double dl = fabs((double)x - u2f(lo)), dh = fabs((double)u2f(hi) - x);
    if ((lo & 0x7FFFFFFFu) == 0x7F7F0000u) /* above: 2^128, not infinity */
        dh = fabs(ldexp(1.0, 128) * (x < 0 ? -1 : 1) - x);
    if (dl < dh || (dl == dh && !((lo >> 16) & 1u)))
        return (uint16_t)(lo >> 16);
    return (uint16_t)(hi >> 16);
}

static int is_bf16_nan(uint16_t h) { return (h & 0x7F80u) == 0x7F80u && (h & 0x7Fu); }

TEST(bf16_convert_edges)
{
    static const struct {
        uint32_t in;
        uint16_t out;
    } cases[] = {
        {0x3F800000u, 0x3F80}, /* 1.0 */
        {0x3F808000u, 0x3F80}, /* tie, even below */
        {0x3F818000u, 0x3F82}, /* tie, odd below: up */
        {0x3F808001u, 0x3F81}, /* just past the tie */
        {0x3F807FFFu, 0x3F80}, /* just short of it */
        {0xBF808000u, 0xBF80}, /* negative tie */
        {0xBF818000u, 0xBF82},
        {0x7F7FFFFFu, 0x7F80}, /* FLT_MAX rounds to infinity */
        {0x7F7F7FFFu, 0x7F7F}, /* the largest that does not */
        {0x7F7F8000u, 0x7F80}, /* tie at the top, odd below: infinity */
        {0x7F800000u, 0x7F80}, /* +inf */
        {0xFF800000u, 0xFF80}, /* -inf */
        {0x00000000u, 0x0000},
        {0x80000000u, 0x8000}, /* -0 keeps its sign */
        {0x00000001u, 0x0000}, /* the smallest subnormal */
        {0x00008000u, 0x0000}, /* subnormal tie, even below */
        {0x00018000u, 0x0002}, /* subnormal tie, odd below */
        {0x007FFFFFu, 0x0080}, /* the largest subnormal rounds to the smallest normal */
        {0x80018000u, 0x8002},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = kern_f32_to_bf16(u2f(cases[i].in));
        if (got != cases[i].out) {
            fprintf(stderr, "bf16(0x%08x) = 0x%04x, want 0x%04x\n", (unsigned)cases[i].in,
                    (unsigned)got, (unsigned)cases[i].out);
            harness_failures_in_test++;
        }
    }
    /* NaNs stay NaN with their sign, even where rounding would carry the
     * payload into the exponent or the sign. */
    static const uint32_t nans[] = {0x7FC00000u, 0x7F800001u, 0x7F80FFFFu, 0x7FFFFFFFu,
                                    0xFFFFFFFFu, 0xFF800001u};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        uint16_t h = kern_f32_to_bf16(u2f(nans[i]));
        CHECK(is_bf16_nan(h));
        CHECK_EQ_INT(h >> 15, nans[i] >> 31);
        CHECK(isnan(kern_bf16_to_f32(h)));
    }
    /* Widening is exact and converting back is the identity, for every
     * bf16 that is not a NaN. */
    int ok = 1;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        if (is_bf16_nan((uint16_t)h))
            continue;
        float x = kern_bf16_to_f32((uint16_t)h);
        ok &= f2u(x) == h << 16 && kern_f32_to_bf16(x) == h;
    }
    CHECK(ok);
}

TEST(bf16_convert_random)
{
    /* Random bit patterns (every exponent) and random values near 1. */
    int ok = 1;
    for (int i = 0; i < 2000000; i++) {
        float x = i & 1 ? u2f((uint32_t)rnd_u64()) : rnd(-4.0f, 4.0f);
        if (isnan(x) || isinf(x))
            continue;
        uint16_t got = kern_f32_to_bf16(x), want = bf16_by_distance(x);
        if (got != want && ok) {
            fprintf(stderr, "bf16(0x%08x) = 0x%04x, want 0x%04x\n", (unsigned)f2u(x),
                    (unsigned)got, (unsigned)want);
            ok = 0;
        }
    }
    CHECK(ok);
}

/* Every table's bf16_rows against kern_bf16_rows, bit for bit: random
 * bit patterns (NaNs, infinities, subnormals included), every K tail. */
TEST(bf16_rows_tables)
{
    size_t rows = 7, ldx = 70, ldd = 72;
    float *x = alloc_f(rows * ldx);
    uint16_t *want = malloc(rows * ldd * sizeof *want), *got = malloc(rows * ldd * sizeof *got);
    for (size_t i = 0; i < rows * ldx; i++)
        x[i] = i % 3 ? u2f((uint32_t)rnd_u64()) : rnd(-3.0f, 3.0f);
    x[5] = u2f(0x7FFFFFFFu), x[6] = u2f(0xFF800001u), x[7] = u2f(0x3F808000u);
    for (int isa = 0; isa < isa_count(); isa++)
        for (size_t K = 0; K <= 67; K++) {
            memset(want, 0xEE, rows * ldd * sizeof *want);
            memset(got, 0xEE, rows * ldd * sizeof *got);
            kern_bf16_rows(x, rows, K, ldx, want, ldd);
            table(isa)->bf16_rows(x, rows, K, ldx, got, ldd);
            if (memcmp(want, got, rows * ldd * sizeof *got)) {
                fprintf(stderr, "bf16_rows [%s] K=%zu differs\n", kern_isa_name(isa), K);
                harness_failures_in_test++;
            }
        }
    free(x), free(want), free(got);
}

TEST(bf16_rows_and_pack)
{
    /* Rows: an odd K gets a zero partner; the row stride is honoured. */
    float x[2 * 5] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, -1.0f, -2.0f, -3.0f, -4.0f, -5.0f};
    uint16_t d[2 * 8];
    for (size_t i = 0; i < 16; i++)
        d[i] = 0xABCD;
    kern_bf16_rows(x, 2, 3, 5, d, 8); /* K = 3 of each 5-float row */
    CHECK_EQ_INT(kern_bf16_k2(3), 4);
    CHECK_EQ_INT(kern_bf16_k2(4), 4);
    CHECK_EQ_INT(kern_bf16_k2(0), 0);
    CHECK_EQ_INT(d[0], 0x3F80);
    CHECK_EQ_INT(d[2], 0x4040);
    CHECK_EQ_INT(d[3], 0); /* padding */
    CHECK_EQ_INT(d[4], 0xABCD); /* past the padded row: untouched */
    CHECK_EQ_INT(d[8], 0xBF80);
    CHECK_EQ_INT(d[11], 0);
    /* Packing: element (q, j, e) of panel p is B[16p + j][2q + e]. */
    static const size_t Ns[] = {1, 15, 16, 17, 33}, Ks[] = {1, 2, 7, 384};
    for (size_t ni = 0; ni < 5; ni++)
        for (size_t ki = 0; ki < 4; ki++) {
            size_t N = Ns[ni], K = Ks[ki], K2 = kern_bf16_k2(K), P = (N + 15) / 16;
            CHECK_EQ_INT(kern_packed_bf16_elems(N, K), P * 16 * K2);
            float *B = alloc_f(N * K);
            uint16_t *Bp = malloc(P * 16 * K2 * sizeof *Bp);
            fill(B, N * K, -1.0f, 1.0f);
            kern_pack_b_bf16(B, N, K, Bp);
            int ok = 1;
            for (size_t n = 0; n < P * 16; n++)
                for (size_t k = 0; k < K2; k++) {
                    uint16_t want = n < N && k < K ? kern_f32_to_bf16(B[n * K + k]) : 0;
                    ok &= Bp[(n / 16) * K2 * 16 + (k / 2) * 32 + (n % 16) * 2 + k % 2] == want;
                }
            CHECK(ok);
            free(B), free(Bp);
        }
}

typedef void (*bf16_gemm_fn)(size_t M, size_t n0, size_t cols, size_t K, const uint16_t *A,
                             size_t lda, const uint16_t *Bp, const float *bias, float *C,
                             size_t ldc);

/* Every bf16 GEMM this CPU can run; `exact`: must equal the reference to
 * the bit. */
typedef struct bf16_impl {
    const char *name;
    bf16_gemm_fn fn;
    int exact;
} bf16_impl;

static size_t bf16_impls(bf16_impl out[4])
{
    size_t n = 0;
    out[n++] = (bf16_impl){"scalar", kern_ref_gemm_bf16_cols, 1};
#if KERN_X86
    if (hw_isa >= KERN_AVX2)
        out[n++] = (bf16_impl){"avx2", kern_avx2_gemm_bf16_cols, 1};
    if (hw_isa >= KERN_AVX512)
        out[n++] = (bf16_impl){"avx512f", kern_avx512_gemm_bf16_cols, 1};
    if (kern_has_avx512bf16())
        out[n++] = (bf16_impl){"avx512bf16", kern_avx512bf16_gemm_bf16_cols, 0};
#endif
    return n;
}

/* Rounds A (M x K) and B (N x K) to bf16 in place: the exact product of
 * the rounded operands is what the kernels must approximate. */
static void round_bf16(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = kern_bf16_to_f32(kern_f32_to_bf16(x[i]));
}

/* One shape: every implementation, full width and column ranges, checked
 * against the double evaluation and (where exact) the reference's bits. */
static size_t bf16_gemm_case(size_t M, size_t N, size_t K, size_t lda_pad, size_t ldc_pad)
{
    const float sentinel = -12345.5f;
    size_t K2 = kern_bf16_k2(K), lda = K2 + lda_pad, ldc = N + ldc_pad, calls = 0;
    float *A = alloc_f(M * K), *B = alloc_f(N * K), *bias = alloc_f(N);
    float *C = alloc_f(M * ldc), *R = alloc_f(M * ldc);
    uint16_t *A16 = malloc((M * lda + 1) * sizeof *A16);
    uint16_t *Bp = malloc((kern_packed_bf16_elems(N, K) + 1) * sizeof *Bp);
    double *ex = malloc(M * N * sizeof *ex), *sc = malloc(M * N * sizeof *sc);
    fill(A, M * K, -1.0f, 1.0f);
    fill(B, N * K, -0.5f, 0.5f);
    fill(bias, N, -2.0f, 2.0f);
    round_bf16(A, M * K);
    round_bf16(B, N * K);
    kern_bf16_rows(A, M, K, K, A16, lda);
    kern_pack_b_bf16(B, N, K, Bp);
    gemm_exact(M, N, K, A, B, bias, ex, sc);
    for (size_t i = 0; i < M * ldc; i++)
        R[i] = sentinel;
    kern_ref_gemm_bf16_cols(M, 0, N, K, A16, lda, Bp, bias, R, ldc);
    bf16_impl impls[4];
    size_t ni = bf16_impls(impls);
    for (size_t f = 0; f < ni; f++)
        for (size_t n0 = 0; n0 < N; n0 += 16) {
            /* The whole width from 0, else one panel or the rest. */
            size_t widths[2] = {n0 ? 16 : N, N - n0};
            for (int w = 0; w < 2; w++) {
                size_t cols = widths[w] < N - n0 ? widths[w] : N - n0;
                for (size_t i = 0; i < M * ldc; i++)
                    C[i] = sentinel;
                impls[f].fn(M, n0, cols, K, A16, lda, Bp, bias, C, ldc);
                double e = gemm_err(M, N, ldc, C, ex, sc, n0, n0 + cols, sentinel);
                CHECK(e >= 0.0); /* nothing outside the columns written */
                check_tol(e, TOL_GEMM, "gemm_bf16_cols", impls[f].name, M, N * 10000 + K);
                worst_bf16[f] = max2(worst_bf16[f], e);
                if (impls[f].exact) {
                    int same = 1;
                    for (size_t i = 0; i < M; i++)
                        same &= !memcmp(C + i * ldc + n0, R + i * ldc + n0, cols * sizeof *C);
                    if (!same)
                        fprintf(stderr, "gemm_bf16_cols [%s] (%zu, %zu, %zu) n0 %zu: not the "
                                        "reference's bits\n",
                                impls[f].name, M, N, K, n0);
                    CHECK(same);
                }
                calls++;
            }
            if (N > 64)
                n0 += 48; /* wide N: every fourth panel is enough */
        }
    free(A), free(B), free(bias), free(C), free(R), free(A16), free(Bp), free(ex), free(sc);
    return calls;
}

TEST(gemm_bf16_random)
{
    /* M = 1 and the row tails of every MR (4, 12, 14); N below, at and
     * past a panel; K odd, even, and either side of the 128-pair block. */
    static const size_t Ms[] = {1, 2, 5, 13, 15, 29, 57, 100};
    static const size_t Ns[] = {1, 15, 16, 17, 33, 40, 384};
    static const size_t Ks[] = {1, 2, 3, 7, 255, 256, 257, 384, 1536};
    size_t calls = 0;
    for (size_t ki = 0; ki < 9; ki++)
        for (size_t ni = 0; ni < 7; ni++)
            for (size_t mi = 0; mi < 8; mi++) {
                size_t M = Ms[mi], N = Ns[ni], K = Ks[ki];
                if (M * N * K > (size_t)100 * 384 * 384)
                    continue;
                calls += bf16_gemm_case(M, N, K, 0, 3);
            }
    /* Strides: lda past the padded K, ldc past N. */
    calls += bf16_gemm_case(29, 40, 301, 6, 17);
    calls += bf16_gemm_case(3, 17, 1, 2, 1);
    printf("kernels: gemm_bf16_cols checked in %zu calls\n", calls);
}

/* K = 0: C = bias, or 0 without one; and the table entry of each ISA. */
TEST(gemm_bf16_k0)
{
    size_t N = 20, ldc = 23;
    float bias[20], C[3 * 23];
    uint16_t A16[1] = {0}, Bp[1] = {0};
    fill(bias, N, -1.0f, 1.0f);
    for (int isa = 0; isa < isa_count(); isa++) {
        const kern_ops *k = table(isa);
        int ok = 1;
        k->gemm_bf16_cols(3, 0, N, 0, A16, 0, Bp, bias, C, ldc);
        for (size_t i = 0; i < 3; i++)
            for (size_t j = 0; j < N; j++)
                ok &= C[i * ldc + j] == bias[j];
        k->gemm_bf16_cols(3, 16, 4, 0, A16, 0, Bp, NULL, C, ldc);
        for (size_t i = 0; i < 3; i++)
            for (size_t j = 16; j < N; j++)
                ok &= C[i * ldc + j] == 0.0f;
        CHECK(ok);
    }
}

/* Subnormal operands: the widening kernels keep them (bit-identical to
 * the reference), vdpbf16ps may flush them, which moves a result by at
 * most the flushed products: tiny against the scale of the rest. */
TEST(gemm_bf16_subnormal)
{
    size_t M = 3, N = 16, K = 6, K2 = 6;
    float A[3 * 6], B[16 * 6], C[3 * 16], R[3 * 16];
    uint16_t A16[3 * 6], Bp[16 * 6];
    for (size_t i = 0; i < M * K; i++)
        A[i] = i % 2 ? 1e-39f : 0.5f; /* 1e-39 is subnormal in fp32 and bf16 */
    for (size_t i = 0; i < N * K; i++)
        B[i] = i % 3 ? 1.0f : 1e20f;
    kern_bf16_rows(A, M, K, K, A16, K2);
    kern_pack_b_bf16(B, N, K, Bp);
    kern_ref_gemm_bf16_cols(M, 0, N, K, A16, K2, Bp, NULL, R, N);
    bf16_impl impls[4];
    size_t ni = bf16_impls(impls);
    for (size_t f = 1; f < ni; f++) {
        impls[f].fn(M, 0, N, K, A16, K2, Bp, NULL, C, N);
        int ok = 1;
        for (size_t i = 0; i < M * N; i++)
            ok &= impls[f].exact ? C[i] == R[i] : fabsf(C[i] - R[i]) <= 1e-5f * fabsf(R[i]) + 1e-18f;
        if (!ok)
            fprintf(stderr, "gemm_bf16_cols [%s]: subnormal operands\n", impls[f].name);
        CHECK(ok);
    }
}

/* ---- main ----------------------------------------------------------------------------- */

static void print_worst(void)
{
    for (int isa = 0; isa < isa_count(); isa++) {
        printf("kernels [%s] max error: attention %.2g (vs double %.2g), gelu %.2g (vs double "
               "%.2g), layernorm %.2g",
               kern_isa_name(isa), worst_attn[isa], worst_attn_exact[isa], worst_gelu[isa],
               worst_gelu_exact[isa], worst_ln[isa]);
        if (isa != KERN_SCALAR)
            printf(", erf %.2g, exp %.0f ulp, gemm_packed %.2g", worst_erf[isa],
                   worst_exp_ulp[isa], worst_gemm[isa]);
        printf("\n");
    }
    bf16_impl impls[4];
    size_t ni = bf16_impls(impls);
    printf("kernels: gemm_bf16_cols max error (vs double on bf16 operands):");
    for (size_t f = 0; f < ni; f++)
        printf(" %s %.2g", impls[f].name, worst_bf16[f]);
    printf("\n");
}

int main(void)
{
    /* Test every ISA the hardware has, whatever cap the environment sets. */
    unsetenv("BGEICL_ISA");
    hw_isa = kern_detect();
    for (int isa = hw_isa + 1; isa <= KERN_AVX512; isa++)
        printf("kernels: skipped %s (this CPU lacks it)\n", kern_isa_name((kern_isa)isa));

    RUN(isa_cap);
    RUN(tables);
    RUN(attention_random);
    RUN(attention_one_huge_score);
    RUN(attention_identical_scores);
    RUN(gelu_random);
    RUN(gelu_sweep);
    RUN(gelu_special);
#if KERN_X86
    RUN(erf_accuracy);
    RUN(exp_accuracy);
#endif
    RUN(layernorm_random);
    RUN(layernorm_constant_row);
    RUN(pack_layout);
    RUN(gemm_packed_random);
    RUN(gemm_packed_strides);
    RUN(bf16_convert_edges);
    RUN(bf16_convert_random);
    RUN(bf16_rows_and_pack);
    RUN(bf16_rows_tables);
    RUN(gemm_bf16_random);
    RUN(gemm_bf16_k0);
    RUN(gemm_bf16_subnormal);
    if (!kern_has_avx512bf16())
        printf("kernels: skipped the AVX512_BF16 gemm (this CPU lacks it)\n");
    print_worst();
    return harness_summary("kernels");
}
