/*
 * kern_int8.c - int8 weights: the packing of B, the quantization of
 * activations, the scalar reference GEMM and the AVX2 and AVX512-VNNI
 * GEMMs. The numbers are defined in kern.h (kern_i8_epilogue).
 *
 * B is packed once by kern_i8_pack: panels of 16 output columns, k quads
 * interleaved, [kpad/4][16][4] int8, so that one k quad of a panel is one
 * 64-byte operand of vpdpbusd (16 dword lanes, 4 byte products each).
 *
 * Every path computes the same exact int32 dot products and then the same
 * epilogue, so the tables agree to the bit; only speed differs.
 *
 * Blocking (per thread): rows in blocks of MC, so that an A block
 * (MC x kpad bytes, 384 KiB at K = 1536) stays in L2 while every column
 * micro-panel of B passes over it; each MR x 32 tile runs the whole K, its
 * int32 sums kept in registers, and is finished by the epilogue.
 * Micro-kernels: AVX512-VNNI 14 x 32 (28 zmm accumulators, A read in
 * place as one broadcast dword per row and quad); AVX2 2 x 16 on 16-bit
 * products (vpmaddwd: vpmaddubsw would saturate 255 * 127 * 2).
 */
#include "kern_internal.h"

#include <math.h>
#include <string.h>

/* ---- packing and quantization (portable) --------------------------------------------- */

size_t kern_i8_packed_bytes(size_t N, size_t K)
{
    return (N + KERN_NR - 1) / KERN_NR * KERN_NR * kern_i8_kpad(K);
}

void kern_i8_pack(const float *B, size_t N, size_t K, kern_i8_mat *dst)
{
    size_t Kp = kern_i8_kpad(K);
    memset(dst->packed, 0, kern_i8_packed_bytes(N, K));
    for (size_t n = 0; n < N; n++) {
        const float *w = B + n * K;
        float amax = 0.0f;
        for (size_t k = 0; k < K; k++) /* ternaries: fmaxf is a libm call */
            amax = fabsf(w[k]) > amax ? fabsf(w[k]) : amax;
        float s = amax > 0.0f ? amax / 127.0f : 1.0f, inv = 1.0f / s;
        int8_t *P = dst->packed + (n / KERN_NR) * Kp * KERN_NR + (n % KERN_NR) * 4;
        int32_t sum = 0;
        for (size_t k = 0; k < K; k++) {
            /* |w inv| <= 127 (+ rounding): adding and taking away 1.5 * 2^23
             * rounds it to nearest even without a libm call. */
            float t = w[k] * inv + 12582912.0f;
            float r = t - 12582912.0f;
            r = r > -127.0f ? r : -127.0f; /* NaN -> -127: defined, if useless */
            r = r < 127.0f ? r : 127.0f;
            int8_t q = (int8_t)r;
            P[(k / 4) * 4 * KERN_NR + (k & 3)] = q;
            sum += q;
        }
        dst->scale[n] = s;
        dst->sum[n] = sum;
    }
}

/* A row's quantization parameters: the range [lo, hi] widened to hold 0. */
static void row_params(float lo, float hi, float *scale, float *inv, float *zero)
{
    lo = fminf(lo, 0.0f);
    hi = fmaxf(hi, 0.0f);
    if (!(hi > lo)) { /* all zeros (or NaN): every code 0 */
        *scale = 1.0f, *inv = 0.0f, *zero = 0.0f;
        return;
    }
    *scale = (hi - lo) / 255.0f;
    *inv = 1.0f / *scale;
    *zero = fminf(fmaxf(nearbyintf(-lo * *inv), 0.0f), 255.0f);
}

/* One code: round(x / s) + z, clamped to [0, 255]; NaN -> 0. */
static inline uint8_t quant1(float x, float inv, float zero)
{
    float r = nearbyintf(x * inv) + zero;
    return (uint8_t)fminf(fmaxf(r, 0.0f), 255.0f);
}

void kern_i8_quant_rows(const float *x, size_t rows, size_t K, size_t ldx, kern_i8_act *dst)
{
    size_t Kp = kern_i8_kpad(K);
    for (size_t i = 0; i < rows; i++) {
        const float *r = x + i * ldx;
        uint8_t *q = dst->q + i * dst->ld;
        float lo = 0.0f, hi = 0.0f, scale, inv, zero;
        for (size_t k = 0; k < K; k++)
            lo = fminf(lo, r[k]), hi = fmaxf(hi, r[k]);
        row_params(lo, hi, &scale, &inv, &zero);
        for (size_t k = 0; k < K; k++)
            q[k] = quant1(r[k], inv, zero);
        memset(q + K, 0, Kp - K);
        dst->scale[i] = scale;
        dst->zero[i] = (int32_t)zero;
    }
}

/* ---- the scalar reference --------------------------------------------------------------- */

void kern_ref_gemm_i8_cols(size_t M, size_t n0, size_t cols, size_t K, const kern_i8_act *A,
                           const kern_i8_mat *B, const float *bias, float *C, size_t ldc)
{
    size_t Kp = kern_i8_kpad(K), n1 = n0 + cols;
    for (size_t i = 0; i < M; i++) {
        const uint8_t *a = A->q + i * A->ld;
        for (size_t n = n0; n < n1; n++) {
            const int8_t *P = B->packed + (n / KERN_NR) * Kp * KERN_NR + (n % KERN_NR) * 4;
            int32_t acc = 0;
            for (size_t k = 0; k < Kp; k++)
                acc += (int32_t)a[k] * P[(k / 4) * 4 * KERN_NR + (k & 3)];
            C[i * ldc + n] = kern_i8_epilogue(acc, A->zero[i], B->sum[n], A->scale[i],
                                              B->scale[n], bias, n);
        }
    }
}

/* Finishes an mr x cols block of C from its int32 sums acc (row stride
 * 32), columns n .. n + cols - 1 of the product. */
void kern_i8_finish(size_t mr, size_t cols, size_t n, const int32_t *acc, const kern_i8_act *A,
                    size_t m, const kern_i8_mat *B, const float *bias, float *C, size_t ldc)
{
    for (size_t i = 0; i < mr; i++)
        for (size_t j = 0; j < cols; j++)
            C[i * ldc + j] = kern_i8_epilogue(acc[i * 32 + j], A->zero[m + i], B->sum[n + j],
                                              A->scale[m + i], B->scale[n + j], bias, n + j);
}

#if KERN_X86

#include <immintrin.h>

#define MC 256 /* rows per A block: 384 KiB at kpad = 1536 */

/* Sums of one MR x (16 np) tile over kq quads into acc (MR rows of 32):
 * A rows at stride lda from quad 0, B's first panel, pstride bytes to the
 * next. Tables hold NC / 16 entries (np = 1 ..) per row count. */
typedef void (*i8_tile_fn)(size_t kq, const uint8_t *A, size_t lda, const int8_t *B,
                           size_t pstride, int32_t *acc);
/* The epilogue over an mr x cols tile (kern_i8_finish or a vector twin). */
typedef void (*i8_finish_fn)(size_t mr, size_t cols, size_t n, const int32_t *acc,
                             const kern_i8_act *A, size_t m, const kern_i8_mat *B,
                             const float *bias, float *C, size_t ldc);

static void i8_driver(size_t M, size_t n0, size_t cols, size_t K, const kern_i8_act *A,
                      const kern_i8_mat *B, const float *bias, float *C, size_t ldc, size_t MR,
                      size_t NC, const i8_tile_fn *tiles, i8_finish_fn finish)
{
    int32_t acc[16 * 32] __attribute__((aligned(64)));
    size_t Kp = kern_i8_kpad(K), n1 = n0 + cols, kq = Kp / 4;
    for (size_t m0 = 0; m0 < M; m0 += MC) {
        size_t mc = M - m0 < MC ? M - m0 : MC;
        for (size_t j = n0; j < n1; j += NC) {
            size_t jc = n1 - j < NC ? n1 - j : NC;
            const int8_t *Bj = B->packed + (j / KERN_NR) * Kp * KERN_NR;
            for (size_t i = 0; i < mc; i += MR) {
                size_t mr = mc - i < MR ? mc - i : MR;
                size_t np = (jc + KERN_NR - 1) / KERN_NR;
                tiles[(mr - 1) * (NC / KERN_NR) + np - 1](kq, A->q + (m0 + i) * A->ld, A->ld, Bj, Kp * KERN_NR, acc);
                finish(mr, jc, j, acc, A, m0 + i, B, bias, C + (m0 + i) * ldc + j, ldc);
            }
        }
    }
}

#define Z_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define ZV_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))

/* The epilogue, 16 columns at a time; the same operations as
 * kern_i8_epilogue in the same order (cvtepi32_ps rounds to nearest as
 * the C conversion does). */
Z_FN void kern_avx512_i8_finish(size_t mr, size_t cols, size_t n, const int32_t *acc,
                                const kern_i8_act *A, size_t m, const kern_i8_mat *B,
                                const float *bias, float *C, size_t ldc)
{
    for (size_t j = 0; j < cols; j += 16) {
        __mmask16 k = (__mmask16)(cols - j >= 16 ? 0xFFFFu : (1u << (cols - j)) - 1u);
        __m512i sum = _mm512_maskz_loadu_epi32(k, B->sum + n + j);
        __m512 sb = _mm512_maskz_loadu_ps(k, B->scale + n + j);
        __m512 bv = bias ? _mm512_maskz_loadu_ps(k, bias + n + j) : _mm512_setzero_ps();
        for (size_t i = 0; i < mr; i++) {
            __m512i a = _mm512_load_si512(acc + i * 32 + j);
            __m512i t = _mm512_sub_epi32(a, _mm512_mullo_epi32(_mm512_set1_epi32(A->zero[m + i]), sum));
            __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(t),
                                     _mm512_mul_ps(_mm512_set1_ps(A->scale[m + i]), sb));
            if (bias)
                v = _mm512_add_ps(v, bv);
            _mm512_mask_storeu_ps(C + i * ldc + j, k, v);
        }
    }
}

/* ---- AVX512-VNNI: 14 x 32 -------------------------------------------------------------- */

#define ZV_MR 14

ZV_FN static inline __attribute__((always_inline)) void
zv_tile(const int mr, const int np, size_t kq, const uint8_t *A, size_t lda, const int8_t *B,
        size_t pstride, int32_t *acc)
{
    __m512i c0[ZV_MR], c1[ZV_MR];
#pragma GCC unroll 14
    for (int i = 0; i < ZV_MR; i++)
        if (i < mr)
            c0[i] = _mm512_setzero_si512(), c1[i] = _mm512_setzero_si512();
    /* np == 1: the last panel of B, whose successor may not exist. */
    const int8_t *B1 = np == 2 ? B + pstride : B;
    for (size_t q = 0; q < kq; q++) {
        __m512i b0 = _mm512_loadu_si512(B + q * 64), b1 = _mm512_loadu_si512(B1 + q * 64);
#pragma GCC unroll 14
        for (int i = 0; i < ZV_MR; i++)
            if (i < mr) {
                int32_t a4;
                memcpy(&a4, A + i * lda + 4 * q, 4);
                __m512i ai = _mm512_set1_epi32(a4);
                c0[i] = _mm512_dpbusd_epi32(c0[i], ai, b0);
                c1[i] = _mm512_dpbusd_epi32(c1[i], ai, b1);
            }
    }
#pragma GCC unroll 14
    for (int i = 0; i < ZV_MR; i++)
        if (i < mr) {
            _mm512_store_si512(acc + i * 32, c0[i]);
            _mm512_store_si512(acc + i * 32 + 16, c1[i]);
        }
}

#define ZV_TILE(mr, np)                                                                       \
    ZV_FN static void zv_tile_##mr##_##np(size_t kq, const uint8_t *A, size_t lda,            \
                                          const int8_t *B, size_t pstride, int32_t *acc)      \
    {                                                                                         \
        zv_tile(mr, np, kq, A, lda, B, pstride, acc);                                         \
    }
#define ZV_TILE2(mr) ZV_TILE(mr, 1) ZV_TILE(mr, 2)
ZV_TILE2(1) ZV_TILE2(2) ZV_TILE2(3) ZV_TILE2(4) ZV_TILE2(5) ZV_TILE2(6) ZV_TILE2(7)
ZV_TILE2(8) ZV_TILE2(9) ZV_TILE2(10) ZV_TILE2(11) ZV_TILE2(12) ZV_TILE2(13) ZV_TILE2(14)
#define ZV_ENT(mr) zv_tile_##mr##_1, zv_tile_##mr##_2

static const i8_tile_fn zv_tiles[ZV_MR * 2] = {
    ZV_ENT(1), ZV_ENT(2), ZV_ENT(3),  ZV_ENT(4),  ZV_ENT(5),  ZV_ENT(6),  ZV_ENT(7),
    ZV_ENT(8), ZV_ENT(9), ZV_ENT(10), ZV_ENT(11), ZV_ENT(12), ZV_ENT(13), ZV_ENT(14)};

void kern_avx512vnni_gemm_i8_cols(size_t M, size_t n0, size_t cols, size_t K,
                                  const kern_i8_act *A, const kern_i8_mat *B, const float *bias,
                                  float *C, size_t ldc)
{
    i8_driver(M, n0, cols, K, A, B, bias, C, ldc, ZV_MR, 32, zv_tiles, kern_avx512_i8_finish);
}

/* kern_i8_quant_rows in AVX-512F: the same min, max, rounding and
 * clamping, 16 lanes at a time. */
Z_FN void kern_avx512_i8_quant_rows(const float *x, size_t rows, size_t K, size_t ldx,
                                    kern_i8_act *dst)
{
    size_t Kp = kern_i8_kpad(K);
    for (size_t i = 0; i < rows; i++) {
        const float *r = x + i * ldx;
        uint8_t *q = dst->q + i * dst->ld;
        __m512 lo = _mm512_setzero_ps(), hi = lo;
        for (size_t k = 0; k < K; k += 16) {
            __mmask16 m = (__mmask16)(K - k >= 16 ? 0xFFFFu : (1u << (K - k)) - 1u);
            __m512 v = _mm512_maskz_loadu_ps(m, r + k);
            /* v first: a NaN lane keeps lo or hi (the second operand), as fminf does */
            lo = _mm512_min_ps(v, lo), hi = _mm512_max_ps(v, hi);
        }
        float scale, inv, zero;
        row_params(_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi), &scale, &inv, &zero);
        __m512 vinv = _mm512_set1_ps(inv), vz = _mm512_set1_ps(zero);
        __m512 v0 = _mm512_setzero_ps(), v255 = _mm512_set1_ps(255.0f);
        for (size_t k = 0; k < K; k += 16) {
            __mmask16 m = (__mmask16)(K - k >= 16 ? 0xFFFFu : (1u << (K - k)) - 1u);
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, r + k), vinv);
            v = _mm512_add_ps(_mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vz);
            v = _mm512_min_ps(_mm512_max_ps(v, v0), v255); /* NaN -> 0, as fmaxf */
            _mm_mask_storeu_epi8(q + k, m, _mm512_cvtusepi32_epi8(_mm512_cvttps_epi32(v)));
        }
        memset(q + K, 0, Kp - K);
        dst->scale[i] = scale;
        dst->zero[i] = (int32_t)zero;
    }
}

/* ---- AVX2: 2 x 16 on 16-bit products ------------------------------------------------------ */

#define Y_FN __attribute__((target("avx2,fma")))
#define Y_MR 2

/* Per row, four accumulators of 4 columns x 2 partial sums (the two k
 * pairs of a quad), added pairwise at the end. */
Y_FN static inline __attribute__((always_inline)) void
y_tile(const int mr, size_t kq, const uint8_t *A, size_t lda, const int8_t *B, int32_t *acc)
{
    __m256i c[Y_MR][4];
    for (int i = 0; i < Y_MR; i++)
        for (int t = 0; t < 4; t++)
            c[i][t] = _mm256_setzero_si256();
    for (size_t q = 0; q < kq; q++) {
        __m256i b[4];
        for (int t = 0; t < 4; t++)
            b[t] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(B + q * 64 + t * 16)));
        for (int i = 0; i < Y_MR; i++)
            if (i < mr) {
                uint32_t a4;
                memcpy(&a4, A + i * lda + 4 * q, 4);
                __m256i ai = _mm256_cvtepu8_epi16(_mm_set1_epi32((int)a4));
                for (int t = 0; t < 4; t++)
                    c[i][t] = _mm256_add_epi32(c[i][t], _mm256_madd_epi16(ai, b[t]));
            }
    }
    for (int i = 0; i < Y_MR; i++)
        if (i < mr)
            for (int t = 0; t < 4; t++) {
                int32_t v[8];
                _mm256_storeu_si256((__m256i *)v, c[i][t]);
                for (int j = 0; j < 4; j++)
                    acc[i * 32 + t * 4 + j] = v[2 * j] + v[2 * j + 1];
            }
}

Y_FN static void y_tile_1(size_t kq, const uint8_t *A, size_t lda, const int8_t *B,
                          size_t pstride, int32_t *acc)
{
    (void)pstride;
    y_tile(1, kq, A, lda, B, acc);
}

Y_FN static void y_tile_2(size_t kq, const uint8_t *A, size_t lda, const int8_t *B,
                          size_t pstride, int32_t *acc)
{
    (void)pstride;
    y_tile(2, kq, A, lda, B, acc);
}

static const i8_tile_fn y_tiles[Y_MR] = {y_tile_1, y_tile_2};

void kern_avx2_gemm_i8_cols(size_t M, size_t n0, size_t cols, size_t K, const kern_i8_act *A,
                            const kern_i8_mat *B, const float *bias, float *C, size_t ldc)
{
    i8_driver(M, n0, cols, K, A, B, bias, C, ldc, Y_MR, 16, y_tiles, kern_i8_finish);
}

#endif
