/*
 * test_amx.c - the AMX GEMMs (kern_amx.c) against the references.
 *
 *   int8  kern_amx_gemm_i8_cols bit-identical to kern_ref_gemm_i8_cols
 *         (memcmp of the whole C, sentinels included), on rows that are
 *         all zero, carry outliers, or are of one sign;
 *   bf16  kern_amx_gemm_bf16_cols within |amx - ref| <= 1e-5 * (sum_k
 *         |a_k b_k| + |bias|) + 1e-30 of kern_ref_gemm_bf16_cols (AMX fixes
 *         no sum order and flushes subnormals); where K2 % 32 != 0 it is
 *         the AVX512_BF16 kernel, so bit-identical to that.
 * Every call also leaves C's columns outside [n0, n0 + cols) untouched.
 *
 * AMX loads are invisible to ASan, so A and B end at a PROT_NONE page: a
 * load of a row of A past M or of a panel of B past the last needed one
 * faults. A threaded test runs calls on two threads at once (the tile
 * configuration is per thread).
 *
 * Without AMX (or Linux's permission for it) the tests are skipped with a
 * line saying so.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "test_rand.h"
#include "kernels/kern.h"
#include "kernels/kern_internal.h"

#define TOL_BF16 1e-5
#define SENTINEL (-12345.5f)

static double worst_bf16_rel;

/* ---- helpers ------------------------------------------------------------- */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

/* A block of `size` bytes (a multiple of 64, so 64-byte aligned) that
 * ends where a PROT_NONE page begins. */
typedef struct guarded {
    void *p, *base;
    size_t len;
} guarded;

static guarded guard_alloc(size_t size)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), body = (size + pg - 1) / pg * pg;
    guarded g;
    g.len = body + pg;
    g.base = mmap(NULL, g.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g.base == MAP_FAILED || mprotect((char *)g.base + body, pg, PROT_NONE) != 0) {
        fprintf(stderr, "mmap failed\n");
        exit(2);
    }
    g.p = (char *)g.base + body - size;
    return g;
}

static void guard_free(guarded g) { munmap(g.base, g.len); }

/* Row i of an M x K activation matrix: kind i % 5 is all zero, uniform
 * with an outlier, negative only, positive only, or uniform. */
static void fill_act(float *x, size_t M, size_t K)
{
    for (size_t i = 0; i < M; i++) {
        float *r = x + i * K;
        for (size_t k = 0; k < K; k++) {
            switch (i % 5) {
            case 0: r[k] = 0.0f; break;
            case 1: r[k] = rnd(-1.0f, 1.0f); break;
            case 2: r[k] = rnd(-2.0f, 0.0f); break;
            case 3: r[k] = rnd(0.0f, 3.0f); break;
            default: r[k] = rnd(-0.5f, 0.5f); break;
            }
        }
        if (i % 5 == 1)
            r[rnd_u64() % K] = rnd(-1.0f, 1.0f) > 0 ? 60.0f : -80.0f;
    }
}

/* Weights N x K: uniform, a few outliers, one zero column. */
static void fill_weights(float *w, size_t N, size_t K)
{
    for (size_t n = 0; n < N; n++)
        for (size_t k = 0; k < K; k++)
            w[n * K + k] = n == 3 ? 0.0f : rnd(-0.5f, 0.5f);
    for (size_t n = 0; n < N; n += 7)
        w[n * K + rnd_u64() % K] = n == 3 ? 0.0f : 4.0f;
}

static void fill_c(float *C, size_t n)
{
    for (size_t i = 0; i < n; i++)
        C[i] = SENTINEL;
}

/* Columns outside [n0, n1) of every row still hold the sentinel. */
static int outside_untouched(const float *C, size_t M, size_t ldc, size_t n0, size_t n1)
{
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < ldc; j++)
            if ((j < n0 || j >= n1) && C[i * ldc + j] != SENTINEL)
                return 0;
    return 1;
}

static const size_t Ms[] = {1, 2, 15, 16, 17, 31, 32, 33, 100};
static const size_t Ns[] = {16, 40, 384, 1152};
#define NUM(a) (sizeof(a) / sizeof((a)[0]))

/* Keeps the scalar references (and the bound's sum of |a b|) within a
 * few seconds: shapes above SMALL_WORK multiply-adds run only the whole
 * column range with a bias, and only for M = 1 and M = 17 (one A tile,
 * and one plus a tail). */
#define SMALL_WORK 3000000.0

/* The column ranges of an N-column product: the whole, and splits that
 * start past panel 0, end mid-panel or hold one panel; none when the
 * shape is skipped. */
static size_t col_ranges(size_t N, size_t M, size_t K, size_t r[][2])
{
    size_t n = 0;
    if ((double)M * (double)N * (double)K > SMALL_WORK) {
        if (M == 1 || M == 17)
            r[n][0] = 0, r[n][1] = N, n++;
        return n;
    }
    r[n][0] = 0, r[n][1] = N, n++;
    r[n][0] = 0, r[n][1] = 16, n++;
    if (N > 16)
        r[n][0] = 16, r[n][1] = N, n++;
    if (N > 32)
        r[n][0] = 32, r[n][1] = N, n++;
    if (N > 36)
        r[n][0] = 16, r[n][1] = 36, n++;
    return n;
}

/* ---- int8 ----------------------------------------------------------------- */

typedef struct i8_case {
    size_t M, N, K;
    guarded qa, qb;
    kern_i8_act A;
    kern_i8_mat B;
    float *bias;
} i8_case;

static void i8_case_make(i8_case *c, size_t M, size_t N, size_t K, size_t ld_extra)
{
    size_t kp = kern_i8_kpad(K);
    float *x = xmalloc(M * K * sizeof(float)), *w = xmalloc(N * K * sizeof(float));
    fill_act(x, M, K);
    fill_weights(w, N, K);
    c->M = M, c->N = N, c->K = K;
    c->A.ld = (kp + 63) / 64 * 64 + ld_extra;
    c->qa = guard_alloc(M * c->A.ld);
    c->A.q = c->qa.p;
    memset(c->A.q, 0xA5, M * c->A.ld); /* the bytes past kpad are anything */
    c->A.scale = xmalloc(M * sizeof(float));
    c->A.zero = xmalloc(M * sizeof(int32_t));
    kern_i8_quant_rows(x, M, K, K, &c->A);
    c->qb = guard_alloc(kern_i8_packed_bytes(N, K));
    c->B.packed = c->qb.p;
    c->B.scale = xmalloc(N * sizeof(float));
    c->B.sum = xmalloc(N * sizeof(int32_t));
    kern_i8_pack(w, N, K, &c->B);
    c->bias = xmalloc(N * sizeof(float));
    for (size_t n = 0; n < N; n++)
        c->bias[n] = rnd(-2.0f, 2.0f);
    free(x);
    free(w);
}

static void i8_case_free(i8_case *c)
{
    guard_free(c->qa);
    guard_free(c->qb);
    free(c->A.scale);
    free(c->A.zero);
    free(c->B.scale);
    free(c->B.sum);
    free(c->bias);
}

/* One call against the reference; returns 1 when it matches. */
static int i8_check(const i8_case *c, size_t n0, size_t n1, const float *bias)
{
    size_t ldc = c->N + 5, sz = c->M * ldc;
    float *got = xmalloc(sz * sizeof(float)), *want = xmalloc(sz * sizeof(float));
    fill_c(got, sz);
    fill_c(want, sz);
    kern_amx_gemm_i8_cols(c->M, n0, n1 - n0, c->K, &c->A, &c->B, bias, got, ldc);
    kern_ref_gemm_i8_cols(c->M, n0, n1 - n0, c->K, &c->A, &c->B, bias, want, ldc);
    int ok = memcmp(got, want, sz * sizeof(float)) == 0 &&
             outside_untouched(got, c->M, ldc, n0, n1);
    if (!ok)
        fprintf(stderr, "int8 mismatch: M=%zu N=%zu K=%zu cols [%zu, %zu) bias=%s\n", c->M,
                c->N, c->K, n0, n1, bias ? "yes" : "no");
    free(got);
    free(want);
    return ok;
}

/* Every shape of Ms x Ns x Ks whose column ranges col_ranges keeps: a case
 * is made (ld_extra of row padding on every other M), checked on each range
 * with its bias and, on the first two of several, without; returns the
 * number of checks. Shared by the int8 and bf16 tests through these hooks. */
typedef struct shape_hooks {
    const size_t *Ks;
    size_t nk, ld_extra, case_size;
    void (*make)(void *c, size_t M, size_t N, size_t K, size_t ld_extra);
    int (*check)(const void *c, size_t n0, size_t n1, int with_bias);
    void (*free)(void *c);
} shape_hooks;

static size_t run_shapes(const shape_hooks *h)
{
    size_t ncase = 0;
    void *c = xmalloc(h->case_size);
    for (size_t a = 0; a < NUM(Ms); a++)
        for (size_t b = 0; b < NUM(Ns); b++)
            for (size_t k = 0; k < h->nk; k++) {
                size_t r[8][2], nr = col_ranges(Ns[b], Ms[a], h->Ks[k], r);
                if (!nr)
                    continue;
                h->make(c, Ms[a], Ns[b], h->Ks[k], (a & 1) ? h->ld_extra : 0);
                for (size_t i = 0; i < nr; i++) {
                    CHECK(h->check(c, r[i][0], r[i][1], 1));
                    if (nr > 1 && i < 2)
                        CHECK(h->check(c, r[i][0], r[i][1], 0));
                    ncase++;
                }
                h->free(c);
            }
    free(c);
    return ncase;
}

static void i8_make_hook(void *c, size_t M, size_t N, size_t K, size_t e)
{
    i8_case_make(c, M, N, K, e);
}
static int i8_check_hook(const void *c, size_t n0, size_t n1, int with_bias)
{
    return i8_check(c, n0, n1, with_bias ? ((const i8_case *)c)->bias : NULL);
}
static void i8_free_hook(void *c) { i8_case_free(c); }

TEST(test_amx_i8_exact)
{
    static const size_t Ks[] = {64, 100, 384, 1536};
    shape_hooks h = {Ks, NUM(Ks), 64, sizeof(i8_case), i8_make_hook, i8_check_hook,
                     i8_free_hook};
    size_t ncase = run_shapes(&h);
    printf("amx: int8 bit-identical to the reference on %zu shape/column cases\n", ncase);
}

/* Two threads at once on halves of the columns of one product. */
typedef struct i8_job {
    const i8_case *c;
    size_t n0, n1, ldc;
    float *C;
} i8_job;

static void *i8_thread(void *arg)
{
    i8_job *j = arg;
    for (int it = 0; it < 20; it++)
        kern_amx_gemm_i8_cols(j->c->M, j->n0, j->n1 - j->n0, j->c->K, &j->c->A, &j->c->B,
                              j->c->bias, j->C, j->ldc);
    return NULL;
}

TEST(test_amx_i8_threads)
{
    i8_case c;
    i8_case_make(&c, 33, 384, 384, 0);
    size_t ldc = c.N, sz = c.M * ldc;
    float *got = xmalloc(sz * sizeof(float)), *want = xmalloc(sz * sizeof(float));
    fill_c(got, sz);
    kern_ref_gemm_i8_cols(c.M, 0, c.N, c.K, &c.A, &c.B, c.bias, want, ldc);
    i8_job jobs[2] = {{&c, 0, 176, ldc, got}, {&c, 176, 384, ldc, got}};
    pthread_t t[2];
    int started = 0;
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, i8_thread, &jobs[i]) == 0)
            started++;
    CHECK_EQ_INT(started, 2);
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    CHECK(memcmp(got, want, sz * sizeof(float)) == 0);
    free(got);
    free(want);
    i8_case_free(&c);
}

/* ---- bf16 ----------------------------------------------------------------- */

typedef struct bf_case {
    size_t M, N, K, lda;
    guarded ga, gb;
    uint16_t *A, *Bp;
    float *bias;
} bf_case;

static void bf_case_make(bf_case *c, size_t M, size_t N, size_t K, size_t lda_extra)
{
    size_t K2 = kern_bf16_k2(K);
    float *x = xmalloc(M * K * sizeof(float)), *w = xmalloc(N * K * sizeof(float));
    fill_act(x, M, K);
    fill_weights(w, N, K);
    c->M = M, c->N = N, c->K = K, c->lda = K2 + lda_extra;
    /* The last row ends at the guard page: (M - 1) strides plus K2. */
    size_t elems = (M - 1) * c->lda + K2;
    c->ga = guard_alloc((elems * sizeof(uint16_t) + 63) / 64 * 64);
    c->A = (uint16_t *)((char *)c->ga.p + ((elems * sizeof(uint16_t) + 63) / 64 * 64 -
                                           elems * sizeof(uint16_t)));
    kern_bf16_rows(x, M, K, K, c->A, c->lda);
    c->gb = guard_alloc(kern_packed_bf16_elems(N, K) * sizeof(uint16_t));
    c->Bp = c->gb.p;
    kern_pack_b_bf16(w, N, K, c->Bp);
    c->bias = xmalloc(N * sizeof(float));
    for (size_t n = 0; n < N; n++)
        c->bias[n] = rnd(-2.0f, 2.0f);
    free(x);
    free(w);
}

static void bf_case_free(bf_case *c)
{
    guard_free(c->ga);
    guard_free(c->gb);
    free(c->bias);
}

/* sum_k |a_k b_k| of output (i, n), from the packed operands. */
static double bf_abs_dot(const bf_case *c, size_t i, size_t n)
{
    size_t K2 = kern_bf16_k2(c->K);
    const uint16_t *a = c->A + i * c->lda;
    const uint16_t *P = c->Bp + (n / KERN_NR) * K2 * KERN_NR + (n % KERN_NR) * 2;
    double s = 0.0;
    for (size_t k = 0; k < K2; k++)
        s += fabs((double)kern_bf16_to_f32(a[k]) *
                  (double)kern_bf16_to_f32(P[(k / 2) * 2 * KERN_NR + (k & 1)]));
    return s;
}

static int bf_check(const bf_case *c, size_t n0, size_t n1, const float *bias)
{
    size_t ldc = c->N + 3, sz = c->M * ldc, K2 = kern_bf16_k2(c->K);
    float *got = xmalloc(sz * sizeof(float)), *want = xmalloc(sz * sizeof(float));
    fill_c(got, sz);
    fill_c(want, sz);
    kern_amx_gemm_bf16_cols(c->M, n0, n1 - n0, c->K, c->A, c->lda, c->Bp, bias, got, ldc);
    int ok = outside_untouched(got, c->M, ldc, n0, n1);
    if (K2 % 32) { /* the fallback: the AVX512_BF16 kernel itself */
        kern_avx512bf16_gemm_bf16_cols(c->M, n0, n1 - n0, c->K, c->A, c->lda, c->Bp, bias,
                                       want, ldc);
        ok = ok && memcmp(got, want, sz * sizeof(float)) == 0;
    } else {
        kern_ref_gemm_bf16_cols(c->M, n0, n1 - n0, c->K, c->A, c->lda, c->Bp, bias, want, ldc);
        for (size_t i = 0; i < c->M; i++)
            for (size_t n = n0; n < n1; n++) {
                double scale = bf_abs_dot(c, i, n) + (bias ? fabs((double)bias[n]) : 0.0);
                double err = fabs((double)got[i * ldc + n] - (double)want[i * ldc + n]);
                if (!(err <= TOL_BF16 * scale + 1e-30)) {
                    if (ok)
                        fprintf(stderr, "bf16 (%zu, %zu): amx %.9g ref %.9g scale %g\n", i, n,
                                got[i * ldc + n], want[i * ldc + n], scale);
                    ok = 0;
                }
                if (scale > 0 && err / scale > worst_bf16_rel)
                    worst_bf16_rel = err / scale;
            }
    }
    if (!ok)
        fprintf(stderr, "bf16 mismatch: M=%zu N=%zu K=%zu cols [%zu, %zu) bias=%s\n", c->M,
                c->N, c->K, n0, n1, bias ? "yes" : "no");
    free(got);
    free(want);
    return ok;
}

static void bf_make_hook(void *c, size_t M, size_t N, size_t K, size_t e)
{
    bf_case_make(c, M, N, K, e);
}
static int bf_check_hook(const void *c, size_t n0, size_t n1, int with_bias)
{
    return bf_check(c, n0, n1, with_bias ? ((const bf_case *)c)->bias : NULL);
}
static void bf_free_hook(void *c) { bf_case_free(c); }

TEST(test_amx_bf16)
{
    static const size_t Ks[] = {32, 64, 384, 1536};
    shape_hooks h = {Ks, NUM(Ks), 16, sizeof(bf_case), bf_make_hook, bf_check_hook,
                     bf_free_hook};
    size_t ncase = run_shapes(&h);
    printf("amx: bf16 within %g of the reference on %zu shape/column cases; "
           "largest relative error %.3g\n",
           TOL_BF16, ncase, worst_bf16_rel);
}

/* K2 % 32 != 0: the AVX512_BF16 kernel, bit for bit. */
TEST(test_amx_bf16_fallback)
{
    static const size_t Mf[] = {1, 17, 33};
    for (size_t a = 0; a < NUM(Mf); a++) {
        bf_case c;
        bf_case_make(&c, Mf[a], 40, 100, 0);
        CHECK(bf_check(&c, 0, 40, c.bias));
        CHECK(bf_check(&c, 16, 40, NULL));
        bf_case_free(&c);
    }
}

/* More rows than one A block (MC = 256 in kern_amx.c), ending in a tail. */
TEST(test_amx_many_rows)
{
    i8_case c;
    i8_case_make(&c, 300, 40, 100, 0);
    CHECK(i8_check(&c, 0, 40, c.bias));
    CHECK(i8_check(&c, 32, 40, NULL));
    i8_case_free(&c);
    bf_case b;
    bf_case_make(&b, 300, 40, 64, 16);
    CHECK(bf_check(&b, 0, 40, b.bias));
    CHECK(bf_check(&b, 32, 40, NULL));
    bf_case_free(&b);
}

int main(void)
{
    if (!kern_amx_usable()) {
        printf("amx: AMX is not available on this CPU or OS; the AMX tests are skipped\n");
        return harness_summary("amx");
    }
    RUN(test_amx_i8_exact);
    RUN(test_amx_i8_threads);
    RUN(test_amx_bf16);
    RUN(test_amx_bf16_fallback);
    RUN(test_amx_many_rows);
    return harness_summary("amx");
}
