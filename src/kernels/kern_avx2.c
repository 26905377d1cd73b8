/*
 * kern_avx2.c - the AVX2+FMA kernel table: attention, GELU and LayerNorm
 * with 8-wide intrinsics; the packed GEMM is in kern_gemm.c, gemm_bt stays
 * the reference (OpenBLAS).
 *
 * Only these functions carry the avx2/fma target (per function, never the
 * whole build), so the library still runs on any x86-64; kern_select()
 * hands this table out only where kern_detect() found AVX2 and FMA.
 *
 * Numerics, all checked against kern_ref.c by tests/unit/test_kernels.c:
 *   exp   Cephes-style: 2^n * poly(r), scaled in two steps so that results
 *         in the subnormal range are rounded once, like expf.
 *   erf   the piecewise polynomial of kern_erf_poly.h (kern_erf_fit.py).
 *   LN    mean and variance accumulated in double, two passes, as in the
 *         reference.
 * kern_avx512.c follows the same structure 16 wide, with identical exp and
 * erf arithmetic.
 */
#include "kern_internal.h"

#if KERN_X86

#include <immintrin.h>
#include <math.h>

#include "kern_erf_poly.h"

#define AVX2_FN __attribute__((target("avx2,fma")))
#define VW 8 /* floats per vector */

/* ---- small helpers ------------------------------------------------------ */

/* Lanes [0, n) set, for n in [0, 8]. */
AVX2_FN static inline __m256i avx2_mask(size_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

AVX2_FN static inline float avx2_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_FN static inline float avx2_hmax(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_FN static inline double avx2_hsum_pd(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

/* The 8 horizontal sums of a[0..7], in order, in one vector. */
AVX2_FN static inline __m256 avx2_hsum8(const __m256 a[8])
{
    __m256 h01 = _mm256_hadd_ps(a[0], a[1]), h23 = _mm256_hadd_ps(a[2], a[3]);
    __m256 h45 = _mm256_hadd_ps(a[4], a[5]), h67 = _mm256_hadd_ps(a[6], a[7]);
    __m256 lo = _mm256_hadd_ps(h01, h23), hi = _mm256_hadd_ps(h45, h67);
    return _mm256_add_ps(_mm256_permute2f128_ps(lo, hi, 0x20),
                         _mm256_permute2f128_ps(lo, hi, 0x31));
}

/* ---- exp ------------------------------------------------------------------ */

/* exp(x), within 1 ulp of expf for every float (checked once over all
 * 2^32 inputs; the unit test samples [-104, 89]). Below -104 the result
 * rounds to 0 and above 89 to inf anyway; the clamp just keeps n within
 * the two-step scaling. max/min take x second so that NaN passes through. */
AVX2_FN static inline __m256 avx2_exp(__m256 x)
{
    x = _mm256_max_ps(_mm256_set1_ps(-104.0f), x);
    x = _mm256_min_ps(_mm256_set1_ps(89.0f), x);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    /* n in [-150, 128]: 2^n1 and 2^n2 are both normal, y * 2^n1 is exact,
     * and the one rounding happens in the last multiply. */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
}

/* ---- erf ------------------------------------------------------------------ */

/* For a = |t| >= 0 (or NaN): erf(a) = *A + *p, see kern_erf_poly.h. a is
 * clamped to 4, where erf already rounds to 1; NaN gives a NaN p. */
AVX2_FN static inline void avx2_erf_parts(__m256 a, __m256 *A, __m256 *p)
{
    a = _mm256_min_ps(_mm256_set1_ps(4.0f), a);
    __m256i k = _mm256_cvttps_epi32(_mm256_add_ps(a, a));
    k = _mm256_min_epi32(k, _mm256_set1_epi32(7));
    __m256 u = _mm256_sub_ps(a, _mm256_permutevar8x32_ps(_mm256_load_ps(KERN_ERF_C), k));
    __m256 r = _mm256_permutevar8x32_ps(_mm256_load_ps(KERN_ERF_P[7]), k);
#pragma GCC unroll 7
    for (int i = 6; i >= 0; i--)
        r = _mm256_fmadd_ps(r, u, _mm256_permutevar8x32_ps(_mm256_load_ps(KERN_ERF_P[i]), k));
    *p = r;
    *A = _mm256_permutevar8x32_ps(_mm256_load_ps(KERN_ERF_A), k);
}

AVX2_FN static inline __m256 avx2_erf(__m256 t)
{
    __m256 sign = _mm256_set1_ps(-0.0f), A, p;
    avx2_erf_parts(_mm256_andnot_ps(sign, t), &A, &p);
    return _mm256_or_ps(_mm256_add_ps(A, p), _mm256_and_ps(sign, t));
}

/* ---- GELU ------------------------------------------------------------------ */

/* 0.5 x (1 + erf(x / sqrt 2)). 1 + erf(t) is formed as (1 +- A) +- p: one
 * rounding, and for t <= -1 it is just -p, which keeps the relative
 * accuracy that 1 + erf(t) loses to cancellation in the reference. */
AVX2_FN static inline __m256 avx2_gelu_vec(__m256 x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));
    __m256 s = _mm256_and_ps(sign, t), a = _mm256_andnot_ps(sign, t), A, p;
    avx2_erf_parts(a, &A, &p);
    __m256 onep = _mm256_add_ps(_mm256_add_ps(one, _mm256_xor_ps(A, s)), _mm256_xor_ps(p, s));
    /* Past 4, erf is +-1 exactly; the clamped polynomial would leave a
     * 1e-8 residue that 0.5 x turns into a visible error for large -x. */
    __m256 sat = _mm256_add_ps(one, _mm256_xor_ps(one, s));
    onep = _mm256_blendv_ps(onep, sat, _mm256_cmp_ps(a, _mm256_set1_ps(4.0f), _CMP_GE_OQ));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), onep);
}

AVX2_FN static void avx2_gelu(float *x, size_t n)
{
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        _mm256_storeu_ps(x + i, avx2_gelu_vec(_mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i m = avx2_mask(n - i);
        _mm256_maskstore_ps(x + i, m, avx2_gelu_vec(_mm256_maskload_ps(x + i, m)));
    }
}

/* ---- residual + LayerNorm ---------------------------------------------------- */

/* x += r (if r) and returns the row's sum, accumulated in double. */
AVX2_FN static double avx2_add_sum(float *x, const float *r, size_t n)
{
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    size_t j = 0;
    for (; j + VW <= n; j += VW) {
        __m256 v = _mm256_loadu_ps(x + j);
        if (r) {
            v = _mm256_add_ps(v, _mm256_loadu_ps(r + j));
            _mm256_storeu_ps(x + j, v);
        }
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    double sum = avx2_hsum_pd(_mm256_add_pd(s0, s1));
    for (; j < n; j++) {
        if (r)
            x[j] += r[j];
        sum += x[j];
    }
    return sum;
}

/* Sum of (x - mean)^2 in double. */
AVX2_FN static double avx2_sq_dev(const float *x, size_t n, double mean)
{
    __m256d m = _mm256_set1_pd(mean), s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    size_t j = 0;
    for (; j + VW <= n; j += VW) {
        __m256 v = _mm256_loadu_ps(x + j);
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), m);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), m);
        s0 = _mm256_fmadd_pd(d0, d0, s0);
        s1 = _mm256_fmadd_pd(d1, d1, s1);
    }
    double var = avx2_hsum_pd(_mm256_add_pd(s0, s1));
    for (; j < n; j++) {
        double dlt = x[j] - mean;
        var += dlt * dlt;
    }
    return var;
}

AVX2_FN static void avx2_add_layernorm(float *x, const float *r, size_t rows, size_t n,
                                       const float *g, const float *b, float eps)
{
    for (size_t i = 0; i < rows; i++) {
        float *row = x + i * n;
        double mean = avx2_add_sum(row, r ? r + i * n : NULL, n) / (double)n;
        double var = avx2_sq_dev(row, n, mean) / (double)n;
        float inv = (float)(1.0 / sqrt(var + eps));
        float m = (float)mean;
        __m256 vm = _mm256_set1_ps(m), vinv = _mm256_set1_ps(inv);
        size_t j = 0;
        for (; j + VW <= n; j += VW) {
            __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(row + j), vm), vinv);
            _mm256_storeu_ps(row + j,
                             _mm256_fmadd_ps(t, _mm256_loadu_ps(g + j), _mm256_loadu_ps(b + j)));
        }
        for (; j < n; j++)
            row[j] = fmaf((row[j] - m) * inv, g[j], b[j]);
    }
}

/* ---- attention: scores ---------------------------------------------------------- */

/* scores[j] = scale * q.k_j for 8 keys from k0 on; returns them. */
AVX2_FN static inline __m256 avx2_dot8(size_t d, const float *q, const float *k0, size_t ld,
                                        __m256i tail)
{
    __m256 acc[8];
#pragma GCC unroll 8
    for (int kk = 0; kk < 8; kk++)
        acc[kk] = _mm256_setzero_ps();
    size_t t = 0;
    for (; t + VW <= d; t += VW) {
        __m256 qv = _mm256_loadu_ps(q + t);
#pragma GCC unroll 8
        for (int kk = 0; kk < 8; kk++)
            acc[kk] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + kk * ld + t), acc[kk]);
    }
    if (t < d) {
        __m256 qv = _mm256_maskload_ps(q + t, tail);
#pragma GCC unroll 8
        for (int kk = 0; kk < 8; kk++)
            acc[kk] = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k0 + kk * ld + t, tail), acc[kk]);
    }
    return avx2_hsum8(acc);
}

AVX2_FN static inline float avx2_dot1(size_t d, const float *q, const float *k, __m256i tail)
{
    __m256 acc = _mm256_setzero_ps();
    size_t t = 0;
    for (; t + VW <= d; t += VW)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + t), _mm256_loadu_ps(k + t), acc);
    if (t < d)
        acc = _mm256_fmadd_ps(_mm256_maskload_ps(q + t, tail), _mm256_maskload_ps(k + t, tail),
                              acc);
    return avx2_hsum(acc);
}

/* Fills scores[0..L) with scale * q.k_j and returns their maximum. */
AVX2_FN static float avx2_scores(size_t L, size_t d, const float *q, const float *k, size_t ld,
                                 float scale, float *scores, __m256i tail)
{
    __m256 vmax = _mm256_set1_ps(-INFINITY), vs = _mm256_set1_ps(scale);
    size_t j = 0;
    for (; j + 8 <= L; j += 8) {
        __m256 s = _mm256_mul_ps(avx2_dot8(d, q, k + j * ld, ld, tail), vs);
        _mm256_storeu_ps(scores + j, s);
        vmax = _mm256_max_ps(vmax, s);
    }
    float mx = avx2_hmax(vmax);
    for (; j < L; j++) {
        scores[j] = avx2_dot1(d, q, k + j * ld, tail) * scale;
        mx = scores[j] > mx ? scores[j] : mx;
    }
    return mx;
}

/* scores[j] = exp(scores[j] - mx); returns their sum. */
AVX2_FN static float avx2_softmax_exp(float *scores, size_t L, float mx)
{
    __m256 vm = _mm256_set1_ps(mx), s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + 2 * VW <= L; j += 2 * VW) {
        __m256 e0 = avx2_exp(_mm256_sub_ps(_mm256_loadu_ps(scores + j), vm));
        __m256 e1 = avx2_exp(_mm256_sub_ps(_mm256_loadu_ps(scores + j + VW), vm));
        _mm256_storeu_ps(scores + j, e0);
        _mm256_storeu_ps(scores + j + VW, e1);
        s0 = _mm256_add_ps(s0, e0);
        s1 = _mm256_add_ps(s1, e1);
    }
    for (; j < L; j += VW) {
        __m256i m = avx2_mask(L - j < VW ? L - j : VW);
        __m256 e = avx2_exp(_mm256_sub_ps(_mm256_maskload_ps(scores + j, m), vm));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(m)); /* lanes past L must add 0 */
        _mm256_maskstore_ps(scores + j, m, e);
        s0 = _mm256_add_ps(s0, e);
    }
    return avx2_hsum(_mm256_add_ps(s0, s1));
}

/* ---- attention: weighted sum of values ---------------------------------------- */

/* out[c..c+32) = inv * sum_j e_j v_j[c..c+32): 4 column vectors, keys in
 * pairs, 8 independent accumulators to cover the FMA latency. */
AVX2_FN static void avx2_pv4(size_t L, const float *e, const float *v, size_t ld, float inv,
                             float *out)
{
    __m256 a[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        a[i] = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + 2 <= L; j += 2) {
        __m256 p0 = _mm256_broadcast_ss(e + j), p1 = _mm256_broadcast_ss(e + j + 1);
        const float *v0 = v + j * ld, *v1 = v0 + ld;
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            a[c] = _mm256_fmadd_ps(p0, _mm256_loadu_ps(v0 + c * VW), a[c]);
            a[4 + c] = _mm256_fmadd_ps(p1, _mm256_loadu_ps(v1 + c * VW), a[4 + c]);
        }
    }
    if (j < L) {
        __m256 p0 = _mm256_broadcast_ss(e + j);
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++)
            a[c] = _mm256_fmadd_ps(p0, _mm256_loadu_ps(v + j * ld + c * VW), a[c]);
    }
    __m256 vi = _mm256_set1_ps(inv);
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++)
        _mm256_storeu_ps(out + c * VW, _mm256_mul_ps(_mm256_add_ps(a[c], a[4 + c]), vi));
}

/* One (possibly partial, lanes in m) column vector, keys in fours. */
AVX2_FN static void avx2_pv1(size_t L, const float *e, const float *v, size_t ld, float inv,
                             float *out, __m256i m)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t j = 0;
    for (; j + 4 <= L; j += 4) {
        const float *vj = v + j * ld;
        a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(e + j), _mm256_maskload_ps(vj, m), a0);
        a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(e + j + 1), _mm256_maskload_ps(vj + ld, m), a1);
        a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(e + j + 2), _mm256_maskload_ps(vj + 2 * ld, m),
                             a2);
        a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(e + j + 3), _mm256_maskload_ps(vj + 3 * ld, m),
                             a3);
    }
    for (; j < L; j++)
        a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(e + j), _mm256_maskload_ps(v + j * ld, m), a0);
    __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    _mm256_maskstore_ps(out, m, _mm256_mul_ps(s, _mm256_set1_ps(inv)));
}

AVX2_FN static void avx2_pv(size_t L, size_t d, const float *e, const float *v, size_t ld,
                            float inv, float *out)
{
    size_t c = 0;
    for (; c + 4 * VW <= d; c += 4 * VW)
        avx2_pv4(L, e, v + c, ld, inv, out + c);
    for (; c < d; c += VW)
        avx2_pv1(L, e, v + c, ld, inv, out + c, avx2_mask(d - c < VW ? d - c : VW));
}

AVX2_FN static void avx2_attention_head(size_t L, size_t d, const float *q, const float *k,
                                        const float *v, size_t ld, float *out, size_t ldo,
                                        float scale, float *scores)
{
    __m256i tail = avx2_mask(d % VW);
    for (size_t i = 0; i < L; i++) {
        float mx = avx2_scores(L, d, q + i * ld, k, ld, scale, scores, tail);
        float sum = avx2_softmax_exp(scores, L, mx);
        avx2_pv(L, d, scores, v, ld, 1.0f / sum, out + i * ldo);
    }
}

/* ---- test hooks and the table ------------------------------------------------------ */

AVX2_FN void kern_avx2_exp_n(const float *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i += VW) {
        __m256i m = avx2_mask(n - i < VW ? n - i : VW);
        _mm256_maskstore_ps(y + i, m, avx2_exp(_mm256_maskload_ps(x + i, m)));
    }
}

AVX2_FN void kern_avx2_erf_n(const float *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i += VW) {
        __m256i m = avx2_mask(n - i < VW ? n - i : VW);
        _mm256_maskstore_ps(y + i, m, avx2_erf(_mm256_maskload_ps(x + i, m)));
    }
}

const kern_ops kern_avx2_ops = {.isa = KERN_AVX2,
                                .name = "avx2",
                                .gemm_bt = kern_ref_gemm_bt,
                                .gemm_packed = kern_avx2_gemm_packed,
                                .gemm_packed_cols = kern_avx2_gemm_packed_cols,
                                .gelu = avx2_gelu,
                                .add_layernorm = avx2_add_layernorm,
                                .attention_head = avx2_attention_head,
                                .gemm_bf16_cols = kern_avx2_gemm_bf16_cols,
                                .bf16_rows = kern_bf16_rows,
                                .gemm_i8_cols = kern_avx2_gemm_i8_cols,
                                .i8_quant_rows = kern_i8_quant_rows,
                                .bf16_impl = "avx2",
                                .i8_impl = "avx2"};

#endif
