/*
 * kern_gemm.c - the packed-weight GEMM of the AVX2 and AVX-512 tables:
 * C[M, n0:n0+cols] = A[M,K] * B[n0:n0+cols, K]^T + bias, with B packed once
 * by kern_pack_b().
 *
 * Layout (kern.h): B is cut into panels of KERN_NR = 16 rows (output
 * columns); panel p holds B rows 16p..16p+15 k-major, [K][16] floats, rows
 * past N zero. One panel k-step is one zmm or two ymm.
 *
 * Blocking (BLIS order, for one thread):
 *   for each block of MC rows of A        (A block and C rows stay in L2)
 *     for each block of kc <= KC columns of K
 *       pack the MC x kc slice of A into MR-row tiles, [kc][MR] each
 *       for each micro-panel of B (NP panels = NP*16 columns; kc x NP*16
 *       is reused from L1 by the MC/MR tiles below)
 *         for each MR-row tile: the micro-kernel, an MR x NP*16 block of C
 *         held in registers over kc rank-1 updates.
 * The first k block starts the accumulators from the bias (or zero), the
 * next ones from C. Micro-kernels:
 *   AVX-512  MR = 14, NP = 2 (14 x 32): 28 zmm accumulators, 2 B loads
 *            and 14 broadcasts per 28 FMAs.
 *   AVX2     MR = 6,  NP = 1 (6 x 16): 12 ymm accumulators.
 * Each (mr, np) pair for the row and panel tails is its own function, made
 * by inlining one body with constant mr and np; column tails inside a
 * panel are computed on the zero padding and cut off by masked stores.
 * The A slice is packed on the stack (MC * KC floats = 56 KiB at most).
 */
#include "kern_internal.h"

#include <string.h>

/* ---- packing B (portable) ------------------------------------------------------ */

size_t kern_packed_floats(size_t N, size_t K)
{
    return (N + KERN_NR - 1) / KERN_NR * KERN_NR * K;
}

void kern_pack_b(const float *B, size_t N, size_t K, float *dst)
{
    size_t panels = (N + KERN_NR - 1) / KERN_NR;
    for (size_t p = 0; p < panels; p++) {
        float *P = dst + p * K * KERN_NR;
        for (size_t j = 0; j < KERN_NR; j++) {
            size_t n = p * KERN_NR + j;
            if (n < N) {
                const float *row = B + n * K;
                for (size_t k = 0; k < K; k++)
                    P[k * KERN_NR + j] = row[k];
            } else {
                for (size_t k = 0; k < K; k++)
                    P[k * KERN_NR + j] = 0.0f;
            }
        }
    }
}

#if KERN_X86

#include <immintrin.h>

#define KC 256      /* k block: a 14 x 32 micro-panel pair of B is 32 KiB */
#define MC_TILES 4  /* MR-row tiles per A block */
#define MR_MAX 14

/* One MR x NP*16 block of C over kc k-steps. Ap: [kc][MR] packed A;
 * B: the first panel at the block's k offset, pstride floats to the next
 * panel; cols: valid columns of C (1 .. NP*16); first: start from bias
 * (NULL: zero) instead of C. */
typedef void (*tile_fn)(size_t kc, const float *Ap, const float *B, size_t pstride,
                        const float *bias, float *C, size_t ldc, size_t cols, int first);

/* The shared driver: blocking and A packing are plain C; the ISA is in the
 * tiles[mr - 1][np - 1] micro-kernels. */
static void gemm_driver(size_t M, size_t n0, size_t cols, size_t K, const float *A, size_t lda,
                        const float *Bp, const float *bias, float *C, size_t ldc, size_t MR,
                        size_t NP, const tile_fn *tiles)
{
    float Ap[MR_MAX * MC_TILES * KC] __attribute__((aligned(64)));
    size_t MC = MR * MC_TILES, n1 = n0 + cols;
    if (M == 0 || cols == 0)
        return;
    if (K == 0) {
        for (size_t i = 0; i < M; i++)
            for (size_t j = n0; j < n1; j++)
                C[i * ldc + j] = bias ? bias[j] : 0.0f;
        return;
    }
    /* Even k blocks: K = 384 runs as 2 x 192, not 256 + 128. */
    size_t nkb = (K + KC - 1) / KC, kcb = (K + nkb - 1) / nkb;
    for (size_t m0 = 0; m0 < M; m0 += MC) {
        size_t mc = M - m0 < MC ? M - m0 : MC;
        for (size_t k0 = 0; k0 < K; k0 += kcb) {
            size_t kc = K - k0 < kcb ? K - k0 : kcb;
            /* Tile t holds rows m0 + t*MR .. ; rows past mc stay unset and
             * are never read (the tail kernel has mr < MR). */
            for (size_t t = 0; t * MR < mc; t++) {
                float *dst = Ap + t * MR * kc;
                size_t rows = mc - t * MR < MR ? mc - t * MR : MR;
                for (size_t i = 0; i < rows; i++) {
                    const float *a = A + (m0 + t * MR + i) * lda + k0;
                    for (size_t k = 0; k < kc; k++)
                        dst[k * MR + i] = a[k];
                }
            }
            for (size_t j = n0; j < n1; j += NP * KERN_NR) {
                size_t jc = n1 - j < NP * KERN_NR ? n1 - j : NP * KERN_NR;
                size_t np = (jc + KERN_NR - 1) / KERN_NR;
                const float *B = Bp + (j / KERN_NR) * K * KERN_NR + k0 * KERN_NR;
                for (size_t i = 0; i < mc; i += MR) {
                    size_t mr = mc - i < MR ? mc - i : MR;
                    tiles[(mr - 1) * NP + (np - 1)](kc, Ap + i * kc, B, K * KERN_NR,
                                                     bias ? bias + j : NULL,
                                                     C + (m0 + i) * ldc + j, ldc, jc, k0 == 0);
                }
            }
        }
    }
}

/* ---- AVX-512: 14 x 32 ---------------------------------------------------------------- */

#define Z_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define Z_MR 14

Z_FN static inline __attribute__((always_inline)) void
z_tile(const int mr, const int np, size_t kc, const float *Ap, const float *B, size_t pstride,
       const float *bias, float *C, size_t ldc, size_t cols, int first)
{
    __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xFFFFu : (1u << cols) - 1u);
    __mmask16 m1 = (__mmask16)(cols >= 32 ? 0xFFFFu : cols <= 16 ? 0u : (1u << (cols - 16)) - 1u);
    __m512 c0[Z_MR], c1[Z_MR];
    if (first) {
        __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
        __m512 b1 = bias && np == 2 ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 14
        for (int i = 0; i < Z_MR; i++)
            if (i < mr)
                c0[i] = b0, c1[i] = b1;
    } else {
#pragma GCC unroll 14
        for (int i = 0; i < Z_MR; i++)
            if (i < mr) {
                c0[i] = _mm512_maskz_loadu_ps(m0, C + i * ldc);
                if (np == 2)
                    c1[i] = _mm512_maskz_loadu_ps(m1, C + i * ldc + 16);
            }
    }
    const float *B1 = B + pstride;
    for (size_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(B + k * 16);
        __m512 b1 = np == 2 ? _mm512_loadu_ps(B1 + k * 16) : b0;
        const float *a = Ap + k * Z_MR;
#pragma GCC unroll 14
        for (int i = 0; i < Z_MR; i++)
            if (i < mr) {
                __m512 ai = _mm512_set1_ps(a[i]);
                c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
                if (np == 2)
                    c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
            }
    }
#pragma GCC unroll 14
    for (int i = 0; i < Z_MR; i++)
        if (i < mr) {
            _mm512_mask_storeu_ps(C + i * ldc, m0, c0[i]);
            if (np == 2)
                _mm512_mask_storeu_ps(C + i * ldc + 16, m1, c1[i]);
        }
}

#define Z_TILE(mr, np)                                                                      \
    Z_FN static void z_tile_##mr##_##np(size_t kc, const float *Ap, const float *B,        \
                                        size_t pstride, const float *bias, float *C,       \
                                        size_t ldc, size_t cols, int first)                \
    {                                                                                       \
        z_tile(mr, np, kc, Ap, B, pstride, bias, C, ldc, cols, first);                      \
    }
#define Z_TILE2(mr) Z_TILE(mr, 1) Z_TILE(mr, 2)
Z_TILE2(1) Z_TILE2(2) Z_TILE2(3) Z_TILE2(4) Z_TILE2(5) Z_TILE2(6) Z_TILE2(7)
Z_TILE2(8) Z_TILE2(9) Z_TILE2(10) Z_TILE2(11) Z_TILE2(12) Z_TILE2(13) Z_TILE2(14)
#define Z_ENT(mr) z_tile_##mr##_1, z_tile_##mr##_2

static const tile_fn z_tiles[Z_MR * 2] = {Z_ENT(1),  Z_ENT(2),  Z_ENT(3),  Z_ENT(4),  Z_ENT(5),
                                          Z_ENT(6),  Z_ENT(7),  Z_ENT(8),  Z_ENT(9),  Z_ENT(10),
                                          Z_ENT(11), Z_ENT(12), Z_ENT(13), Z_ENT(14)};

void kern_avx512_gemm_packed_cols(size_t M, size_t n0, size_t cols, size_t K, const float *A,
                                  size_t lda, const float *Bp, const float *bias, float *C,
                                  size_t ldc)
{
    gemm_driver(M, n0, cols, K, A, lda, Bp, bias, C, ldc, Z_MR, 2, z_tiles);
}

void kern_avx512_gemm_packed(size_t M, size_t N, size_t K, const float *A, size_t lda,
                             const float *Bp, const float *bias, float *C, size_t ldc)
{
    gemm_driver(M, 0, N, K, A, lda, Bp, bias, C, ldc, Z_MR, 2, z_tiles);
}

/* ---- AVX2: 6 x 16 ------------------------------------------------------------------------ */

#define Y_FN __attribute__((target("avx2,fma")))
#define Y_MR 6

/* Lanes [0, n) of 8 set, as a maskload/maskstore mask. */
Y_FN static inline __m256i y_mask(size_t n)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n > 8 ? 8 : n)), idx);
}

Y_FN static inline __attribute__((always_inline)) void
y_tile(const int mr, size_t kc, const float *Ap, const float *B, const float *bias, float *C,
       size_t ldc, size_t cols, int first)
{
    int full = cols >= 16;
    __m256i m0 = y_mask(cols), m1 = y_mask(cols > 8 ? cols - 8 : 0);
    __m256 c0[Y_MR], c1[Y_MR];
    if (first) {
        __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
        if (bias && full)
            b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + 8);
        else if (bias)
            b0 = _mm256_maskload_ps(bias, m0), b1 = _mm256_maskload_ps(bias + 8, m1);
#pragma GCC unroll 6
        for (int i = 0; i < Y_MR; i++)
            if (i < mr)
                c0[i] = b0, c1[i] = b1;
    } else {
#pragma GCC unroll 6
        for (int i = 0; i < Y_MR; i++)
            if (i < mr) {
                c0[i] = _mm256_maskload_ps(C + i * ldc, m0);
                c1[i] = _mm256_maskload_ps(C + i * ldc + 8, m1);
            }
    }
    for (size_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(B + k * 16), b1 = _mm256_loadu_ps(B + k * 16 + 8);
        const float *a = Ap + k * Y_MR;
#pragma GCC unroll 6
        for (int i = 0; i < Y_MR; i++)
            if (i < mr) {
                __m256 ai = _mm256_broadcast_ss(a + i);
                c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
                c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
            }
    }
    if (full) {
#pragma GCC unroll 6
        for (int i = 0; i < Y_MR; i++)
            if (i < mr) {
                _mm256_storeu_ps(C + i * ldc, c0[i]);
                _mm256_storeu_ps(C + i * ldc + 8, c1[i]);
            }
    } else {
#pragma GCC unroll 6
        for (int i = 0; i < Y_MR; i++)
            if (i < mr) {
                _mm256_maskstore_ps(C + i * ldc, m0, c0[i]);
                _mm256_maskstore_ps(C + i * ldc + 8, m1, c1[i]);
            }
    }
}

#define Y_TILE(mr)                                                                          \
    Y_FN static void y_tile_##mr(size_t kc, const float *Ap, const float *B, size_t pstride, \
                                 const float *bias, float *C, size_t ldc, size_t cols,       \
                                 int first)                                                  \
    {                                                                                       \
        (void)pstride;                                                                      \
        y_tile(mr, kc, Ap, B, bias, C, ldc, cols, first);                                   \
    }
Y_TILE(1) Y_TILE(2) Y_TILE(3) Y_TILE(4) Y_TILE(5) Y_TILE(6)

static const tile_fn y_tiles[Y_MR] = {y_tile_1, y_tile_2, y_tile_3, y_tile_4, y_tile_5, y_tile_6};

void kern_avx2_gemm_packed_cols(size_t M, size_t n0, size_t cols, size_t K, const float *A,
                                size_t lda, const float *Bp, const float *bias, float *C,
                                size_t ldc)
{
    gemm_driver(M, n0, cols, K, A, lda, Bp, bias, C, ldc, Y_MR, 1, y_tiles);
}

void kern_avx2_gemm_packed(size_t M, size_t N, size_t K, const float *A, size_t lda,
                           const float *Bp, const float *bias, float *C, size_t ldc)
{
    gemm_driver(M, 0, N, K, A, lda, Bp, bias, C, ldc, Y_MR, 1, y_tiles);
}

#endif
