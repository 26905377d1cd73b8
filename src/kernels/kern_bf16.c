/*
 * kern_bf16.c - bf16 weights: the conversion, the packing of B, the scalar
 * reference GEMM and the AVX2, AVX-512F and AVX512_BF16 GEMMs.
 *
 * C[M, n0:n0+cols] = A[M,K] * B[n0:n0+cols, K]^T + bias, A and B in bf16,
 * sums in fp32. B is packed once by kern_pack_b_bf16 (layout in kern.h):
 * panels of 16 output columns, k pairs interleaved, [K2/2][16][2] bf16, so
 * that one k pair of a panel is one 64-byte vdpbf16ps operand.
 *
 * Numerics. A bf16 holds 8 significant bits, so the product of two is
 * exact in fp32 (16 bits): every path below adds exact products in one
 * fixed order per output, c += a[2q+1] b[2q+1]; c += a[2q] b[2q] for
 * q = 0, 1, ..., the order vdpbf16ps documents. FMA and a plain add of the
 * exact product round the same way, so the scalar reference and the
 * widening AVX2 and AVX-512F kernels agree to the bit; vdpbf16ps agrees
 * except that it flushes subnormal inputs and results to zero.
 *
 * Blocking (per thread, as in kern_gemm.c): blocks of MC = 4 MR rows of A,
 * k blocks of at most KP pairs, micro-panels of NP panels of B reused from
 * L1 across the MR-row tiles. The A block is packed per k block:
 *   native  [kp][MR] u32: each a bf16 pair, broadcast as one dword;
 *   widen   [kp][2][MR] fp32: a[2q+1] then a[2q], widened once here rather
 *           than per use in the micro-kernel.
 * Micro-kernels: AVX512_BF16 14 x 32 (28 zmm accumulators); AVX-512F
 * widen 12 x 32 (24 accumulators and 4 widened B vectors); AVX2 widen
 * 4 x 16 (8 accumulators, 4 widened B vectors).
 */
#include "kern_internal.h"

#include <string.h>

/* ---- conversion and packing (portable) --------------------------------------------- */

uint16_t kern_f32_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    /* A NaN keeps its sign and top payload, quieted so that rounding
     * cannot carry it into an infinity. */
    if ((u & 0x7FFFFFFFu) > 0x7F800000u)
        return (uint16_t)((u >> 16) | 0x0040u);
    /* Round to nearest, ties to even: add 0x7FFF plus the lowest kept bit.
     * The largest finite floats round up to infinity, as they should. */
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float kern_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

void kern_bf16_rows(const float *x, size_t rows, size_t K, size_t ldx, uint16_t *dst, size_t ldd)
{
    for (size_t i = 0; i < rows; i++) {
        const float *src = x + i * ldx;
        uint16_t *d = dst + i * ldd;
        for (size_t k = 0; k < K; k++)
            d[k] = kern_f32_to_bf16(src[k]);
        if (K & 1)
            d[K] = 0; /* the odd K's pair partner: adds 0 * 0 */
    }
}

size_t kern_packed_bf16_elems(size_t N, size_t K)
{
    return (N + KERN_NR - 1) / KERN_NR * KERN_NR * kern_bf16_k2(K);
}

void kern_pack_b_bf16(const float *B, size_t N, size_t K, uint16_t *dst)
{
    size_t panels = (N + KERN_NR - 1) / KERN_NR, K2 = kern_bf16_k2(K);
    for (size_t p = 0; p < panels; p++) {
        uint16_t *P = dst + p * K2 * KERN_NR; /* [K2/2][NR][2] */
        for (size_t j = 0; j < KERN_NR; j++) {
            size_t n = p * KERN_NR + j;
            for (size_t k = 0; k < K2; k++) {
                uint16_t v = n < N && k < K ? kern_f32_to_bf16(B[n * K + k]) : 0;
                P[(k / 2) * 2 * KERN_NR + j * 2 + (k & 1)] = v;
            }
        }
    }
}

/* ---- the scalar reference --------------------------------------------------------------- */

/* A row's 16 columns of one panel at a time: the inner loop runs across
 * the panel's columns (contiguous, so the compiler can vectorise it with
 * plain SSE2) while each column keeps its own sum order. */
static void ref_row_panel(const uint16_t *a, size_t pairs, const uint16_t *P, float c[KERN_NR])
{
    for (size_t q = 0; q < pairs; q++) {
        const uint16_t *bq = P + q * 2 * KERN_NR; /* [NR][2] */
        float ao = kern_bf16_to_f32(a[2 * q + 1]), ae = kern_bf16_to_f32(a[2 * q]);
        for (size_t j = 0; j < KERN_NR; j++) {
            c[j] += ao * kern_bf16_to_f32(bq[2 * j + 1]);
            c[j] += ae * kern_bf16_to_f32(bq[2 * j]);
        }
    }
}

void kern_ref_gemm_bf16_cols(size_t M, size_t n0, size_t cols, size_t K, const uint16_t *A,
                             size_t lda, const uint16_t *Bp, const float *bias, float *C,
                             size_t ldc)
{
    size_t K2 = kern_bf16_k2(K), n1 = n0 + cols;
    for (size_t i = 0; i < M; i++)
        for (size_t p = n0 / KERN_NR; p * KERN_NR < n1; p++) {
            float c[KERN_NR];
            for (size_t j = 0; j < KERN_NR; j++) {
                size_t n = p * KERN_NR + j;
                c[j] = bias && n < n1 ? bias[n] : 0.0f;
            }
            ref_row_panel(A + i * lda, K2 / 2, Bp + p * K2 * KERN_NR, c);
            for (size_t j = 0; j < KERN_NR && p * KERN_NR + j < n1; j++)
                C[i * ldc + p * KERN_NR + j] = c[j];
        }
}

#if KERN_X86

#include <immintrin.h>

#define KP 128     /* k pairs per block: a 2-panel micro-panel is 16 KiB */
#define MC_TILES 4 /* MR-row tiles per A block */
#define MR_MAX 14

/* One MR x NP*16 block of C over kp k pairs. Ap: the packed A tile;
 * B: the first panel at the block's k offset, pstride elements to the next
 * panel; cols: valid columns (1 .. NP*16); first: start from bias (NULL:
 * zero) rather than from C. */
typedef void (*bf_tile_fn)(size_t kp, const void *Ap, const uint16_t *B, size_t pstride,
                           const float *bias, float *C, size_t ldc, size_t cols, int first);

/* Packs rows [0, rows) of A (stride lda, from pair q0 on) for kp pairs
 * into an MR-row tile at dst; rows past `rows` stay unset and unread. */
typedef void (*bf_pack_fn)(const uint16_t *A, size_t lda, size_t rows, size_t kp, size_t MR,
                           void *dst);

/* native: [kp][MR] dwords, each the pair (a[2q], a[2q+1]) as stored. */
static void pack_pairs(const uint16_t *A, size_t lda, size_t rows, size_t kp, size_t MR,
                       void *dst)
{
    uint32_t *d = dst;
    for (size_t i = 0; i < rows; i++) {
        const uint16_t *a = A + i * lda;
        for (size_t q = 0; q < kp; q++)
            d[q * MR + i] = (uint32_t)a[2 * q] | (uint32_t)a[2 * q + 1] << 16;
    }
}

/* widen: [kp][2][MR] floats, the odd k of each pair first (the sum order). */
static void pack_widen(const uint16_t *A, size_t lda, size_t rows, size_t kp, size_t MR,
                       void *dst)
{
    float *d = dst;
    for (size_t i = 0; i < rows; i++) {
        const uint16_t *a = A + i * lda;
        for (size_t q = 0; q < kp; q++) {
            d[q * 2 * MR + i] = kern_bf16_to_f32(a[2 * q + 1]);
            d[q * 2 * MR + MR + i] = kern_bf16_to_f32(a[2 * q]);
        }
    }
}

/* Packed A words (u32 or fp32) per k pair and row: 1 native, 2 widen. */
static void bf_driver(size_t M, size_t n0, size_t cols, size_t K, const uint16_t *A, size_t lda,
                      const uint16_t *Bp, const float *bias, float *C, size_t ldc, size_t MR,
                      size_t NP, bf_pack_fn pack, size_t words, const bf_tile_fn *tiles)
{
    /* MC x KP x 2 words: 56 KiB at most. */
    uint32_t Ap[MR_MAX * MC_TILES * KP * 2] __attribute__((aligned(64)));
    size_t MC = MR * MC_TILES, n1 = n0 + cols, K2 = kern_bf16_k2(K), pairs = K2 / 2;
    if (M == 0 || cols == 0)
        return;
    if (pairs == 0) {
        for (size_t i = 0; i < M; i++)
            for (size_t j = n0; j < n1; j++)
                C[i * ldc + j] = bias ? bias[j] : 0.0f;
        return;
    }
    /* Even k blocks: 768 pairs run as 6 x 128, 192 as 2 x 96. */
    size_t nkb = (pairs + KP - 1) / KP, kpb = (pairs + nkb - 1) / nkb;
    for (size_t m0 = 0; m0 < M; m0 += MC) {
        size_t mc = M - m0 < MC ? M - m0 : MC;
        for (size_t q0 = 0; q0 < pairs; q0 += kpb) {
            size_t kp = pairs - q0 < kpb ? pairs - q0 : kpb;
            for (size_t t = 0; t * MR < mc; t++) {
                size_t rows = mc - t * MR < MR ? mc - t * MR : MR;
                pack(A + (m0 + t * MR) * lda + 2 * q0, lda, rows, kp, MR,
                     Ap + t * MR * kp * words);
            }
            for (size_t j = n0; j < n1; j += NP * KERN_NR) {
                size_t jc = n1 - j < NP * KERN_NR ? n1 - j : NP * KERN_NR;
                size_t np = (jc + KERN_NR - 1) / KERN_NR;
                const uint16_t *B = Bp + (j / KERN_NR) * K2 * KERN_NR + q0 * 2 * KERN_NR;
                for (size_t i = 0; i < mc; i += MR) {
                    size_t mr = mc - i < MR ? mc - i : MR;
                    tiles[(mr - 1) * NP + (np - 1)](kp, Ap + i * kp * words, B, K2 * KERN_NR,
                                                     bias ? bias + j : NULL,
                                                     C + (m0 + i) * ldc + j, ldc, jc, q0 == 0);
                }
            }
        }
    }
}

#define Z_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))

/* ---- AVX-512F rounding of A ------------------------------------------------------------- */

/* kern_f32_to_bf16 on 16 floats: the same integer rounding, NaNs by mask.
 * Lanes outside m read and write nothing. */
Z_FN static inline void z_bf16_16(const float *x, uint16_t *d, __mmask16 m)
{
    __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, x));
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)));
    __m512i mag = _mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF));
    __mmask16 nan = _mm512_cmpgt_epu32_mask(mag, _mm512_set1_epi32(0x7F800000));
    __m512i q = _mm512_or_si512(u, _mm512_set1_epi32(0x00400000)); /* quiet: bit 6 of the top */
    r = _mm512_mask_blend_epi32(nan, r, q);
    _mm256_mask_storeu_epi16(d, m, _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
}

Z_FN void kern_avx512_bf16_rows(const float *x, size_t rows, size_t K, size_t ldx, uint16_t *dst,
                                size_t ldd)
{
    for (size_t i = 0; i < rows; i++) {
        const float *src = x + i * ldx;
        uint16_t *d = dst + i * ldd;
        size_t k = 0;
        for (; k + 16 <= K; k += 16)
            z_bf16_16(src + k, d + k, 0xFFFF);
        if (k < K)
            z_bf16_16(src + k, d + k, (__mmask16)((1u << (K - k)) - 1u));
        if (K & 1)
            d[K] = 0; /* the odd K's pair partner */
    }
}

/* ---- AVX-512 tiles: shared start and store --------------------------------------------- */

#define ZB_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))

/* Column masks of a 32-wide tile with `cols` valid columns. */
Z_FN static inline void z_masks(size_t cols, __mmask16 *m0, __mmask16 *m1)
{
    *m0 = (__mmask16)(cols >= 16 ? 0xFFFFu : (1u << cols) - 1u);
    *m1 = (__mmask16)(cols >= 32 ? 0xFFFFu : cols <= 16 ? 0u : (1u << (cols - 16)) - 1u);
}

/* ---- AVX512_BF16: 14 x 32 ---------------------------------------------------------------- */

#define ZB_MR 14

ZB_FN static inline __attribute__((always_inline)) void
zb_tile(const int mr, const int np, size_t kp, const void *Apv, const uint16_t *B, size_t pstride,
        const float *bias, float *C, size_t ldc, size_t cols, int first)
{
    const uint32_t *Ap = Apv;
    __mmask16 m0, m1;
    z_masks(cols, &m0, &m1);
    __m512 c0[ZB_MR], c1[ZB_MR];
    __m512 s0 = bias && first ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    __m512 s1 = bias && first && np == 2 ? _mm512_maskz_loadu_ps(m1, bias + 16) : s0;
#pragma GCC unroll 14
    for (int i = 0; i < ZB_MR; i++)
        if (i < mr) {
            c0[i] = first ? s0 : _mm512_maskz_loadu_ps(m0, C + i * ldc);
            if (np == 2)
                c1[i] = first ? s1 : _mm512_maskz_loadu_ps(m1, C + i * ldc + 16);
        }
    const uint16_t *B1 = B + pstride;
    for (size_t q = 0; q < kp; q++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(B + q * 32);
        __m512bh b1 = np == 2 ? (__m512bh)_mm512_loadu_si512(B1 + q * 32) : b0;
        const uint32_t *a = Ap + q * ZB_MR;
#pragma GCC unroll 14
        for (int i = 0; i < ZB_MR; i++)
            if (i < mr) {
                __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);
                c0[i] = _mm512_dpbf16_ps(c0[i], ai, b0);
                if (np == 2)
                    c1[i] = _mm512_dpbf16_ps(c1[i], ai, b1);
            }
    }
#pragma GCC unroll 14
    for (int i = 0; i < ZB_MR; i++)
        if (i < mr) {
            _mm512_mask_storeu_ps(C + i * ldc, m0, c0[i]);
            if (np == 2)
                _mm512_mask_storeu_ps(C + i * ldc + 16, m1, c1[i]);
        }
}

#define ZB_TILE(mr, np)                                                                     \
    ZB_FN static void zb_tile_##mr##_##np(size_t kp, const void *Ap, const uint16_t *B,     \
                                          size_t pstride, const float *bias, float *C,      \
                                          size_t ldc, size_t cols, int first)               \
    {                                                                                       \
        zb_tile(mr, np, kp, Ap, B, pstride, bias, C, ldc, cols, first);                     \
    }
#define ZB_TILE2(mr) ZB_TILE(mr, 1) ZB_TILE(mr, 2)
ZB_TILE2(1) ZB_TILE2(2) ZB_TILE2(3) ZB_TILE2(4) ZB_TILE2(5) ZB_TILE2(6) ZB_TILE2(7)
ZB_TILE2(8) ZB_TILE2(9) ZB_TILE2(10) ZB_TILE2(11) ZB_TILE2(12) ZB_TILE2(13) ZB_TILE2(14)
#define ZB_ENT(mr) zb_tile_##mr##_1, zb_tile_##mr##_2

static const bf_tile_fn zb_tiles[ZB_MR * 2] = {
    ZB_ENT(1), ZB_ENT(2), ZB_ENT(3),  ZB_ENT(4),  ZB_ENT(5),  ZB_ENT(6),  ZB_ENT(7),
    ZB_ENT(8), ZB_ENT(9), ZB_ENT(10), ZB_ENT(11), ZB_ENT(12), ZB_ENT(13), ZB_ENT(14)};

void kern_avx512bf16_gemm_bf16_cols(size_t M, size_t n0, size_t cols, size_t K,
                                    const uint16_t *A, size_t lda, const uint16_t *Bp,
                                    const float *bias, float *C, size_t ldc)
{
    bf_driver(M, n0, cols, K, A, lda, Bp, bias, C, ldc, ZB_MR, 2, pack_pairs, 1, zb_tiles);
}

/* ---- AVX-512F, widening: 12 x 32 ----------------------------------------------------------- */

#define ZW_MR 12

/* The odd and even k of 16 interleaved pairs, as fp32. */
Z_FN static inline void z_widen(const uint16_t *p, __m512 *odd, __m512 *even)
{
    __m512i v = _mm512_loadu_si512(p);
    *odd = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xFFFF0000u)));
    *even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

Z_FN static inline __attribute__((always_inline)) void
zw_tile(const int mr, const int np, size_t kp, const void *Apv, const uint16_t *B, size_t pstride,
        const float *bias, float *C, size_t ldc, size_t cols, int first)
{
    const float *Ap = Apv;
    __mmask16 m0, m1;
    z_masks(cols, &m0, &m1);
    __m512 c0[ZW_MR], c1[ZW_MR];
    __m512 s0 = bias && first ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    __m512 s1 = bias && first && np == 2 ? _mm512_maskz_loadu_ps(m1, bias + 16) : s0;
#pragma GCC unroll 12
    for (int i = 0; i < ZW_MR; i++)
        if (i < mr) {
            c0[i] = first ? s0 : _mm512_maskz_loadu_ps(m0, C + i * ldc);
            if (np == 2)
                c1[i] = first ? s1 : _mm512_maskz_loadu_ps(m1, C + i * ldc + 16);
        }
    const uint16_t *B1 = B + pstride;
    for (size_t q = 0; q < kp; q++) {
        __m512 b0o, b0e, b1o, b1e;
        z_widen(B + q * 32, &b0o, &b0e);
        if (np == 2)
            z_widen(B1 + q * 32, &b1o, &b1e);
        else
            b1o = b0o, b1e = b0e;
        const float *a = Ap + q * 2 * ZW_MR;
#pragma GCC unroll 12
        for (int i = 0; i < ZW_MR; i++)
            if (i < mr) {
                __m512 ao = _mm512_set1_ps(a[i]), ae = _mm512_set1_ps(a[ZW_MR + i]);
                c0[i] = _mm512_fmadd_ps(ae, b0e, _mm512_fmadd_ps(ao, b0o, c0[i]));
                if (np == 2)
                    c1[i] = _mm512_fmadd_ps(ae, b1e, _mm512_fmadd_ps(ao, b1o, c1[i]));
            }
    }
#pragma GCC unroll 12
    for (int i = 0; i < ZW_MR; i++)
        if (i < mr) {
            _mm512_mask_storeu_ps(C + i * ldc, m0, c0[i]);
            if (np == 2)
                _mm512_mask_storeu_ps(C + i * ldc + 16, m1, c1[i]);
        }
}

#define ZW_TILE(mr, np)                                                                     \
    Z_FN static void zw_tile_##mr##_##np(size_t kp, const void *Ap, const uint16_t *B,      \
                                         size_t pstride, const float *bias, float *C,       \
                                         size_t ldc, size_t cols, int first)                \
    {                                                                                       \
        zw_tile(mr, np, kp, Ap, B, pstride, bias, C, ldc, cols, first);                     \
    }
#define ZW_TILE2(mr) ZW_TILE(mr, 1) ZW_TILE(mr, 2)
ZW_TILE2(1) ZW_TILE2(2) ZW_TILE2(3) ZW_TILE2(4) ZW_TILE2(5) ZW_TILE2(6)
ZW_TILE2(7) ZW_TILE2(8) ZW_TILE2(9) ZW_TILE2(10) ZW_TILE2(11) ZW_TILE2(12)
#define ZW_ENT(mr) zw_tile_##mr##_1, zw_tile_##mr##_2

static const bf_tile_fn zw_tiles[ZW_MR * 2] = {ZW_ENT(1), ZW_ENT(2),  ZW_ENT(3),  ZW_ENT(4),
                                               ZW_ENT(5), ZW_ENT(6),  ZW_ENT(7),  ZW_ENT(8),
                                               ZW_ENT(9), ZW_ENT(10), ZW_ENT(11), ZW_ENT(12)};

void kern_avx512_gemm_bf16_cols(size_t M, size_t n0, size_t cols, size_t K, const uint16_t *A,
                                size_t lda, const uint16_t *Bp, const float *bias, float *C,
                                size_t ldc)
{
    bf_driver(M, n0, cols, K, A, lda, Bp, bias, C, ldc, ZW_MR, 2, pack_widen, 2, zw_tiles);
}

/* ---- AVX2, widening: 4 x 16 ---------------------------------------------------------------- */

#define Y_FN __attribute__((target("avx2,fma")))
#define Y_MR 4

/* Lanes [0, n) of 8 set, as a maskload/maskstore mask. */
Y_FN static inline __m256i y_mask(size_t n)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n > 8 ? 8 : n)), idx);
}

/* The odd and even k of 8 interleaved pairs, as fp32. */
Y_FN static inline void y_widen(const uint16_t *p, __m256 *odd, __m256 *even)
{
    __m256i v = _mm256_loadu_si256((const __m256i *)p);
    *odd = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32((int)0xFFFF0000u)));
    *even = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

Y_FN static inline __attribute__((always_inline)) void
y_tile(const int mr, size_t kp, const void *Apv, const uint16_t *B, const float *bias, float *C,
       size_t ldc, size_t cols, int first)
{
    const float *Ap = Apv;
    __m256i m0 = y_mask(cols), m1 = y_mask(cols > 8 ? cols - 8 : 0);
    __m256 c0[Y_MR], c1[Y_MR];
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    if (bias && first)
        s0 = _mm256_maskload_ps(bias, m0), s1 = _mm256_maskload_ps(bias + 8, m1);
#pragma GCC unroll 4
    for (int i = 0; i < Y_MR; i++)
        if (i < mr) {
            c0[i] = first ? s0 : _mm256_maskload_ps(C + i * ldc, m0);
            c1[i] = first ? s1 : _mm256_maskload_ps(C + i * ldc + 8, m1);
        }
    for (size_t q = 0; q < kp; q++) {
        __m256 b0o, b0e, b1o, b1e;
        y_widen(B + q * 32, &b0o, &b0e);      /* columns 0..7 */
        y_widen(B + q * 32 + 16, &b1o, &b1e); /* columns 8..15 */
        const float *a = Ap + q * 2 * Y_MR;
#pragma GCC unroll 4
        for (int i = 0; i < Y_MR; i++)
            if (i < mr) {
                __m256 ao = _mm256_broadcast_ss(a + i), ae = _mm256_broadcast_ss(a + Y_MR + i);
                c0[i] = _mm256_fmadd_ps(ae, b0e, _mm256_fmadd_ps(ao, b0o, c0[i]));
                c1[i] = _mm256_fmadd_ps(ae, b1e, _mm256_fmadd_ps(ao, b1o, c1[i]));
            }
    }
#pragma GCC unroll 4
    for (int i = 0; i < Y_MR; i++)
        if (i < mr) {
            _mm256_maskstore_ps(C + i * ldc, m0, c0[i]);
            _mm256_maskstore_ps(C + i * ldc + 8, m1, c1[i]);
        }
}

#define Y_TILE(mr)                                                                          \
    Y_FN static void y_tile_##mr(size_t kp, const void *Ap, const uint16_t *B,              \
                                 size_t pstride, const float *bias, float *C, size_t ldc,   \
                                 size_t cols, int first)                                    \
    {                                                                                       \
        (void)pstride;                                                                      \
        y_tile(mr, kp, Ap, B, bias, C, ldc, cols, first);                                   \
    }
Y_TILE(1) Y_TILE(2) Y_TILE(3) Y_TILE(4)

static const bf_tile_fn y_tiles[Y_MR] = {y_tile_1, y_tile_2, y_tile_3, y_tile_4};

void kern_avx2_gemm_bf16_cols(size_t M, size_t n0, size_t cols, size_t K, const uint16_t *A,
                              size_t lda, const uint16_t *Bp, const float *bias, float *C,
                              size_t ldc)
{
    bf_driver(M, n0, cols, K, A, lda, Bp, bias, C, ldc, Y_MR, 1, pack_widen, 2, y_tiles);
}

#endif
