/*
 * kern_avx512.c - the AVX-512 kernel table: attention, GELU and LayerNorm
 * with 16-wide intrinsics; the packed GEMM is in kern_gemm.c, gemm_bt
 * stays the reference (OpenBLAS).
 *
 * The structure and the numerics are those of kern_avx2.c (read that file
 * first); what differs is the width, mask registers for every tail, and
 * vscalefps, which scales exp's 2^n with a single rounding (the same
 * rounding that kern_avx2.c gets in two steps), so both tables return
 * identical exp and erf values.
 *
 * Only AVX512F instructions are used (plus AVX2/FMA), matching the
 * F+BW+VL that kern_detect() requires; bitwise float operations therefore
 * go through the integer forms, since the float ones need AVX512DQ.
 */
#include "kern_internal.h"

#if KERN_X86

#include <immintrin.h>
#include <math.h>

#include "kern_erf_poly.h"

#define Z_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define ZW 16 /* floats per vector */

/* ---- small helpers ------------------------------------------------------ */

/* Lanes [0, n) set, for n in [0, 16]. */
Z_FN static inline __mmask16 z_mask(size_t n)
{
    return (__mmask16)(n >= ZW ? 0xFFFFu : (1u << n) - 1u);
}

Z_FN static inline __m512 z_and(__m512 a, __m512 b)
{
    return _mm512_castsi512_ps(_mm512_and_epi32(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}

Z_FN static inline __m512 z_or(__m512 a, __m512 b)
{
    return _mm512_castsi512_ps(_mm512_or_epi32(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}

Z_FN static inline __m512 z_xor(__m512 a, __m512 b)
{
    return _mm512_castsi512_ps(_mm512_xor_epi32(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}

/* The low and high 8 floats of v, widened to double. */
Z_FN static inline __m512d z_lo_pd(__m512 v)
{
    return _mm512_cvtps_pd(_mm512_castps512_ps256(v));
}

Z_FN static inline __m512d z_hi_pd(__m512 v)
{
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

/* ---- exp ------------------------------------------------------------------ */

/* exp(x) with the arithmetic of avx2_exp; see there. */
Z_FN static inline __m512 z_exp(__m512 x)
{
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(y, n);
}

/* ---- erf ------------------------------------------------------------------ */

/* An 8-entry table row, indexable by permutexvar with k in [0, 7]. */
Z_FN static inline __m512 z_row(const float *row)
{
    return _mm512_castps256_ps512(_mm256_load_ps(row));
}

/* erf(a) = *A + *p for a = |t|; see avx2_erf_parts. */
Z_FN static inline void z_erf_parts(__m512 a, __m512 *A, __m512 *p)
{
    a = _mm512_min_ps(_mm512_set1_ps(4.0f), a);
    __m512i k = _mm512_cvttps_epi32(_mm512_add_ps(a, a));
    k = _mm512_min_epi32(k, _mm512_set1_epi32(7));
    __m512 u = _mm512_sub_ps(a, _mm512_permutexvar_ps(k, z_row(KERN_ERF_C)));
    __m512 r = _mm512_permutexvar_ps(k, z_row(KERN_ERF_P[7]));
#pragma GCC unroll 7
    for (int i = 6; i >= 0; i--)
        r = _mm512_fmadd_ps(r, u, _mm512_permutexvar_ps(k, z_row(KERN_ERF_P[i])));
    *p = r;
    *A = _mm512_permutexvar_ps(k, z_row(KERN_ERF_A));
}

Z_FN static inline __m512 z_erf(__m512 t)
{
    __m512 A, p;
    z_erf_parts(_mm512_abs_ps(t), &A, &p);
    return z_or(_mm512_add_ps(A, p), z_and(_mm512_set1_ps(-0.0f), t));
}

/* ---- GELU ------------------------------------------------------------------ */

/* The arithmetic of avx2_gelu_vec; see there. */
Z_FN static inline __m512 z_gelu_vec(__m512 x)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
    __m512 s = z_and(_mm512_set1_ps(-0.0f), t), a = _mm512_abs_ps(t), A, p;
    z_erf_parts(a, &A, &p);
    __m512 onep = _mm512_add_ps(_mm512_add_ps(one, z_xor(A, s)), z_xor(p, s));
    __mmask16 sat = _mm512_cmp_ps_mask(a, _mm512_set1_ps(4.0f), _CMP_GE_OQ);
    onep = _mm512_mask_blend_ps(sat, onep, _mm512_add_ps(one, z_xor(one, s)));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), onep);
}

Z_FN static void z_gelu(float *x, size_t n)
{
    size_t i = 0;
    for (; i + ZW <= n; i += ZW)
        _mm512_storeu_ps(x + i, z_gelu_vec(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = z_mask(n - i);
        _mm512_mask_storeu_ps(x + i, m, z_gelu_vec(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

/* ---- residual + LayerNorm ---------------------------------------------------- */

/* x += r (if r) and returns the row's sum, accumulated in double. */
Z_FN static double z_add_sum(float *x, const float *r, size_t n)
{
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (size_t j = 0; j < n; j += ZW) {
        __mmask16 m = z_mask(n - j);
        __m512 v = _mm512_maskz_loadu_ps(m, x + j);
        if (r) {
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, r + j));
            _mm512_mask_storeu_ps(x + j, m, v);
        }
        s0 = _mm512_add_pd(s0, z_lo_pd(v));
        s1 = _mm512_add_pd(s1, z_hi_pd(v));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
}

/* Sum of (x - mean)^2 in double; masked-off lanes must add 0, not mean^2. */
Z_FN static double z_sq_dev(const float *x, size_t n, double mean)
{
    __m512d vm = _mm512_set1_pd(mean), s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (size_t j = 0; j < n; j += ZW) {
        __mmask16 m = z_mask(n - j);
        __m512 v = _mm512_maskz_loadu_ps(m, x + j);
        __m512d d0 = _mm512_maskz_sub_pd((__mmask8)m, z_lo_pd(v), vm);
        __m512d d1 = _mm512_maskz_sub_pd((__mmask8)(m >> 8), z_hi_pd(v), vm);
        s0 = _mm512_fmadd_pd(d0, d0, s0);
        s1 = _mm512_fmadd_pd(d1, d1, s1);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
}

Z_FN static void z_add_layernorm(float *x, const float *r, size_t rows, size_t n, const float *g,
                                 const float *b, float eps)
{
    for (size_t i = 0; i < rows; i++) {
        float *row = x + i * n;
        double mean = z_add_sum(row, r ? r + i * n : NULL, n) / (double)n;
        double var = z_sq_dev(row, n, mean) / (double)n;
        __m512 vm = _mm512_set1_ps((float)mean);
        __m512 vinv = _mm512_set1_ps((float)(1.0 / sqrt(var + eps)));
        for (size_t j = 0; j < n; j += ZW) {
            __mmask16 m = z_mask(n - j);
            __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, row + j), vm), vinv);
            t = _mm512_fmadd_ps(t, _mm512_maskz_loadu_ps(m, g + j),
                                _mm512_maskz_loadu_ps(m, b + j));
            _mm512_mask_storeu_ps(row + j, m, t);
        }
    }
}

/* ---- attention ---------------------------------------------------------------- */

/*
 * Attention as two small register-blocked GEMMs per block of ZB query rows,
 * with no horizontal reduction in any inner loop.
 *
 * Scratch (kern_attention_scratch(L, d) floats, 64-byte aligned), with Lp =
 * L rounded up to 16 and dp = d rounded up to 16:
 *   S  [ZB][Lp]         scores of the block's rows, then their exps;
 *   Kp [Lp/16][dp][16]  K transposed in panels of 16 keys: Kp[b][t][l] =
 *                       k[16b + l][t], 0 for keys >= L; rows t >= d unused.
 * Panels rather than one Kt[t][Lp] so that a tile's key loads walk t
 * through contiguous 64-byte rows (one stream per panel, not d strided
 * rows).
 *
 * Invariants: a block always computes all ZB rows of S; rows past L reuse
 * the last query row, so S never holds uninitialised data; they skip the
 * softmax and their outputs are never stored. Keys in [L, Lp) score 0
 * (zero panel lanes), and the softmax and P.V stop at L, so they never
 * count. out is written only in columns [0, d), with masked stores.
 *
 * The softmax is that of the reference: max subtracted, exps summed, 1/sum
 * applied to the finished weighted sums.
 */

#define ZB 16 /* query rows per block: S is ZB rows of Lp floats */
#define ZR 8  /* rows per tile: 8 x 2 score or output vectors */
#define Z_INLINE Z_FN __attribute__((always_inline)) static inline

/* Lp or dp: n rounded up to a whole vector. */
Z_FN static inline size_t z_round(size_t n)
{
    return (n + ZW - 1) & ~(size_t)(ZW - 1);
}

/* Kp from k (see above). Scalar: L*d moves against 4*L*L*d flops. */
Z_FN static void z_pack_k(size_t L, size_t d, const float *k, size_t ld, float *kp)
{
    size_t Lp = z_round(L), dp = z_round(d);
    for (size_t j = 0; j < Lp; j++) {
        float *col = kp + (j / ZW) * dp * ZW + j % ZW;
        for (size_t t = 0; t < d; t++)
            col[t * ZW] = j < L ? k[j * ld + t] : 0.0f;
    }
}

/* S[r][16c..16c+16) = scale * q_r . keys of panel c < nv (nv = 1 or 2),
 * for ZR rows: ZR*nv accumulators (16 independent FMA chains) plus nv key
 * vectors and one broadcast of q[r][t]: 0.625 loads per FMA. Always
 * inlined, so that each call's constant nv unrolls it without branches. */
Z_INLINE void z_qk_tile(size_t d, const float *const qr[ZR], const float *kp, size_t pstride,
                        float scale, float *s, size_t Lp, int nv)
{
    __m512 acc[ZR][2];
#pragma GCC unroll 8
    for (int r = 0; r < ZR; r++)
#pragma GCC unroll 2
        for (int c = 0; c < nv; c++)
            acc[r][c] = _mm512_setzero_ps();
    for (size_t t = 0; t < d; t++) {
        /* Two named vectors, not an array: GCC keeps an array in memory. */
        __m512 k0 = _mm512_load_ps(kp + t * ZW);
        __m512 k1 = nv > 1 ? _mm512_load_ps(kp + pstride + t * ZW) : k0;
#pragma GCC unroll 8
        for (int r = 0; r < ZR; r++) {
            __m512 qb = _mm512_set1_ps(qr[r][t]);
            acc[r][0] = _mm512_fmadd_ps(qb, k0, acc[r][0]);
            if (nv > 1)
                acc[r][1] = _mm512_fmadd_ps(qb, k1, acc[r][1]);
        }
    }
    __m512 vs = _mm512_set1_ps(scale);
#pragma GCC unroll 8
    for (int r = 0; r < ZR; r++)
#pragma GCC unroll 2
        for (int c = 0; c < nv; c++)
            _mm512_store_ps(s + r * Lp + c * ZW, _mm512_mul_ps(acc[r][c], vs));
}

/* S for the ZR rows qr over all Lp keys: panels in pairs, then maybe one. */
Z_FN static void z_qk_rows(size_t Lp, size_t d, const float *const qr[ZR], const float *kp,
                           float scale, float *s)
{
    size_t np = Lp / ZW, pstride = z_round(d) * ZW, b = 0;
    for (; b + 2 <= np; b += 2)
        z_qk_tile(d, qr, kp + b * pstride, pstride, scale, s + b * ZW, Lp, 2);
    if (b < np)
        z_qk_tile(d, qr, kp + b * pstride, pstride, scale, s + b * ZW, Lp, 1);
}

/* The maximum of s[0..L). */
Z_FN static float z_max(const float *s, size_t L)
{
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (size_t j = 0; j < L; j += ZW)
        vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(vmax, z_mask(L - j), s + j));
    return _mm512_reduce_max_ps(vmax);
}

/* scores[j] = exp(scores[j] - mx); returns their sum. */
Z_FN static float z_softmax_exp(float *scores, size_t L, float mx)
{
    __m512 vm = _mm512_set1_ps(mx), s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t j = 0;
    for (; j + 2 * ZW <= L; j += 2 * ZW) {
        __m512 e0 = z_exp(_mm512_sub_ps(_mm512_loadu_ps(scores + j), vm));
        __m512 e1 = z_exp(_mm512_sub_ps(_mm512_loadu_ps(scores + j + ZW), vm));
        _mm512_storeu_ps(scores + j, e0);
        _mm512_storeu_ps(scores + j + ZW, e1);
        s0 = _mm512_add_ps(s0, e0);
        s1 = _mm512_add_ps(s1, e1);
    }
    for (; j < L; j += ZW) {
        __mmask16 m = z_mask(L - j);
        __m512 x = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, scores + j), vm);
        __m512 e = _mm512_maskz_mov_ps(m, z_exp(x)); /* lanes past L must add 0 */
        _mm512_mask_storeu_ps(scores + j, m, e);
        s0 = _mm512_add_ps(s0, e);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* out_r = inv[r] * sum_{j<L} P[r][j] v_j for ZR rows of P (stride Lp) and
 * nv column vectors of v (lanes m[c]): ZR*nv accumulators, each v_j vector
 * loaded once for all rows, P[r][j] a broadcast load. Only the first nrows
 * rows are stored. Always inlined, for the constant nv (see z_qk_tile). */
Z_INLINE void z_pv_tile(size_t L, const float *p, size_t Lp, const float *v, size_t ld,
                        const float inv[ZR], float *out, size_t ldo, size_t nrows,
                        const __mmask16 m[2], int nv)
{
    __m512 acc[ZR][2];
#pragma GCC unroll 8
    for (int r = 0; r < ZR; r++)
#pragma GCC unroll 2
        for (int c = 0; c < nv; c++)
            acc[r][c] = _mm512_setzero_ps();
    for (size_t j = 0; j < L; j++) {
        __m512 v0 = _mm512_maskz_loadu_ps(m[0], v + j * ld);
        __m512 v1 = nv > 1 ? _mm512_maskz_loadu_ps(m[1], v + j * ld + ZW) : v0;
#pragma GCC unroll 8
        for (int r = 0; r < ZR; r++) {
            __m512 pb = _mm512_set1_ps(p[r * Lp + j]);
            acc[r][0] = _mm512_fmadd_ps(pb, v0, acc[r][0]);
            if (nv > 1)
                acc[r][1] = _mm512_fmadd_ps(pb, v1, acc[r][1]);
        }
    }
#pragma GCC unroll 8
    for (size_t r = 0; r < ZR; r++)
#pragma GCC unroll 2
        for (int c = 0; c < nv; c++)
            if (r < nrows)
                _mm512_mask_storeu_ps(out + r * ldo + c * ZW, m[c],
                                      _mm512_mul_ps(acc[r][c], _mm512_set1_ps(inv[r])));
}

/* ZR output rows over all d columns: pairs of column vectors (the second
 * maybe partial), then one partial vector if d leaves one. */
Z_FN static void z_pv_rows(size_t L, size_t d, const float *p, size_t Lp, const float *v,
                           size_t ld, const float inv[ZR], float *out, size_t ldo, size_t nrows)
{
    size_t c = 0;
    for (; c + ZW < d; c += 2 * ZW) {
        const __mmask16 m[2] = {0xFFFF, z_mask(d - c - ZW)};
        z_pv_tile(L, p, Lp, v + c, ld, inv, out + c, ldo, nrows, m, 2);
    }
    if (c < d) {
        const __mmask16 m[2] = {z_mask(d - c), 0};
        z_pv_tile(L, p, Lp, v + c, ld, inv, out + c, ldo, nrows, m, 1);
    }
}

Z_FN static void z_attention_head(size_t L, size_t d, const float *q, const float *k,
                                  const float *v, size_t ld, float *out, size_t ldo, float scale,
                                  float *scores)
{
    size_t Lp = z_round(L);
    float *kp = scores + ZB * Lp;
    z_pack_k(L, d, k, ld, kp);
    for (size_t i0 = 0; i0 < L; i0 += ZB) {
        for (size_t g = 0; g < ZB; g += ZR) {
            const float *qr[ZR];
            for (size_t r = 0; r < ZR; r++) /* rows past L: the last row again */
                qr[r] = q + (i0 + g + r < L ? i0 + g + r : L - 1) * ld;
            z_qk_rows(Lp, d, qr, kp, scale, scores + g * Lp);
        }
        float inv[ZB] = {0}; /* rows past L: no softmax, nothing stored */
        for (size_t r = 0; r < ZB && i0 + r < L; r++) {
            float *s = scores + r * Lp;
            inv[r] = 1.0f / z_softmax_exp(s, L, z_max(s, L));
        }
        for (size_t g = 0; g < ZB && i0 + g < L; g += ZR) {
            size_t n = L - i0 - g < ZR ? L - i0 - g : ZR;
            z_pv_rows(L, d, scores + g * Lp, Lp, v, ld, inv + g, out + (i0 + g) * ldo, ldo, n);
        }
    }
}

/* ---- test hooks and the table ------------------------------------------------------ */

Z_FN void kern_avx512_exp_n(const float *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i += ZW) {
        __mmask16 m = z_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, z_exp(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

Z_FN void kern_avx512_erf_n(const float *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i += ZW) {
        __mmask16 m = z_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, z_erf(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

/* The AVX-512F table: bf16 widened to fp32, int8 on 16-bit products.
 * kern_select() copies it and swaps in the AVX512_BF16, AVX512-VNNI and AMX
 * GEMMs where the CPU has them and BGEICL_ISA allows. */
const kern_ops kern_avx512_ops = {.isa = KERN_AVX512,
                                  .name = "avx512",
                                  .gemm_bt = kern_ref_gemm_bt,
                                  .gemm_packed = kern_avx512_gemm_packed,
                                  .gemm_packed_cols = kern_avx512_gemm_packed_cols,
                                  .gelu = z_gelu,
                                  .add_layernorm = z_add_layernorm,
                                  .attention_head = z_attention_head,
                                  .gemm_bf16_cols = kern_avx512_gemm_bf16_cols,
                                  .bf16_rows = kern_avx512_bf16_rows,
                                  .gemm_i8_cols = kern_avx2_gemm_i8_cols,
                                  .i8_quant_rows = kern_avx512_i8_quant_rows,
                                  .bf16_impl = "avx512f",
                                  .i8_impl = "avx2"};

#endif
