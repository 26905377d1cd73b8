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

/* The 16 horizontal sums of a[0..15], in order, in one vector: fold
 * 512 -> 256 -> 128 bits across pairs, then within 128-bit lanes; that
 * leaves key q + 4e in element 4q + e, which one permute puts in order. */
Z_FN static inline __m512 z_hsum16(const __m512 a[16])
{
    __m512 b[8], c[4], d[2];
#pragma GCC unroll 8
    for (int m = 0; m < 8; m++)
        b[m] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * m], a[2 * m + 1], 0x44),
                             _mm512_shuffle_f32x4(a[2 * m], a[2 * m + 1], 0xEE));
#pragma GCC unroll 4
    for (int m = 0; m < 4; m++)
        c[m] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * m], b[2 * m + 1], 0x88),
                             _mm512_shuffle_f32x4(b[2 * m], b[2 * m + 1], 0xDD));
#pragma GCC unroll 2
    for (int m = 0; m < 2; m++)
        d[m] = _mm512_add_ps(_mm512_shuffle_ps(c[2 * m], c[2 * m + 1], 0x44),
                             _mm512_shuffle_ps(c[2 * m], c[2 * m + 1], 0xEE));
    __m512 r = _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], 0x88),
                             _mm512_shuffle_ps(d[0], d[1], 0xDD));
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(order, r);
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

/* ---- attention: scores ---------------------------------------------------------- */

/* scale-less q.k_j for 16 keys from k0 on, in one vector. */
Z_FN static inline __m512 z_dot16(size_t d, const float *q, const float *k0, size_t ld)
{
    __m512 acc[16];
#pragma GCC unroll 16
    for (int kk = 0; kk < 16; kk++)
        acc[kk] = _mm512_setzero_ps();
    for (size_t t = 0; t < d; t += ZW) {
        __mmask16 m = z_mask(d - t);
        __m512 qv = _mm512_maskz_loadu_ps(m, q + t);
#pragma GCC unroll 16
        for (int kk = 0; kk < 16; kk++)
            acc[kk] = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k0 + kk * ld + t), acc[kk]);
    }
    return z_hsum16(acc);
}

Z_FN static inline float z_dot1(size_t d, const float *q, const float *k)
{
    __m512 acc = _mm512_setzero_ps();
    for (size_t t = 0; t < d; t += ZW) {
        __mmask16 m = z_mask(d - t);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + t), _mm512_maskz_loadu_ps(m, k + t),
                              acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* Fills scores[0..L) with scale * q.k_j and returns their maximum. */
Z_FN static float z_scores(size_t L, size_t d, const float *q, const float *k, size_t ld,
                           float scale, float *scores)
{
    __m512 vmax = _mm512_set1_ps(-INFINITY), vs = _mm512_set1_ps(scale);
    size_t j = 0;
    for (; j + 16 <= L; j += 16) {
        __m512 s = _mm512_mul_ps(z_dot16(d, q, k + j * ld, ld), vs);
        _mm512_storeu_ps(scores + j, s);
        vmax = _mm512_max_ps(vmax, s);
    }
    float mx = _mm512_reduce_max_ps(vmax);
    for (; j < L; j++) {
        scores[j] = z_dot1(d, q, k + j * ld) * scale;
        mx = scores[j] > mx ? scores[j] : mx;
    }
    return mx;
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

/* ---- attention: weighted sum of values ---------------------------------------- */

/* out[c..c+64) = inv * sum_j e_j v_j: 4 column vectors, keys in pairs. */
Z_FN static void z_pv4(size_t L, const float *e, const float *v, size_t ld, float inv, float *out)
{
    __m512 a[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        a[i] = _mm512_setzero_ps();
    size_t j = 0;
    for (; j + 2 <= L; j += 2) {
        __m512 p0 = _mm512_set1_ps(e[j]), p1 = _mm512_set1_ps(e[j + 1]);
        const float *v0 = v + j * ld, *v1 = v0 + ld;
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            a[c] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v0 + c * ZW), a[c]);
            a[4 + c] = _mm512_fmadd_ps(p1, _mm512_loadu_ps(v1 + c * ZW), a[4 + c]);
        }
    }
    if (j < L) {
        __m512 p0 = _mm512_set1_ps(e[j]);
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++)
            a[c] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v + j * ld + c * ZW), a[c]);
    }
    __m512 vi = _mm512_set1_ps(inv);
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++)
        _mm512_storeu_ps(out + c * ZW, _mm512_mul_ps(_mm512_add_ps(a[c], a[4 + c]), vi));
}

/* 2 column vectors (d = 32 in BGE-small), keys in fours. */
Z_FN static void z_pv2(size_t L, const float *e, const float *v, size_t ld, float inv, float *out)
{
    __m512 a[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        a[i] = _mm512_setzero_ps();
    size_t j = 0;
    for (; j + 4 <= L; j += 4) {
#pragma GCC unroll 4
        for (int kk = 0; kk < 4; kk++) {
            __m512 p = _mm512_set1_ps(e[j + kk]);
            const float *vj = v + (j + kk) * ld;
            a[2 * kk] = _mm512_fmadd_ps(p, _mm512_loadu_ps(vj), a[2 * kk]);
            a[2 * kk + 1] = _mm512_fmadd_ps(p, _mm512_loadu_ps(vj + ZW), a[2 * kk + 1]);
        }
    }
    for (; j < L; j++) {
        __m512 p = _mm512_set1_ps(e[j]);
        a[0] = _mm512_fmadd_ps(p, _mm512_loadu_ps(v + j * ld), a[0]);
        a[1] = _mm512_fmadd_ps(p, _mm512_loadu_ps(v + j * ld + ZW), a[1]);
    }
    __m512 vi = _mm512_set1_ps(inv);
    __m512 lo = _mm512_add_ps(_mm512_add_ps(a[0], a[2]), _mm512_add_ps(a[4], a[6]));
    __m512 hi = _mm512_add_ps(_mm512_add_ps(a[1], a[3]), _mm512_add_ps(a[5], a[7]));
    _mm512_storeu_ps(out, _mm512_mul_ps(lo, vi));
    _mm512_storeu_ps(out + ZW, _mm512_mul_ps(hi, vi));
}

/* One (possibly partial, lanes in m) column vector, keys in fours. */
Z_FN static void z_pv1(size_t L, const float *e, const float *v, size_t ld, float inv, float *out,
                       __mmask16 m)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t j = 0;
    for (; j + 4 <= L; j += 4) {
        const float *vj = v + j * ld;
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(e[j]), _mm512_maskz_loadu_ps(m, vj), a0);
        a1 = _mm512_fmadd_ps(_mm512_set1_ps(e[j + 1]), _mm512_maskz_loadu_ps(m, vj + ld), a1);
        a2 = _mm512_fmadd_ps(_mm512_set1_ps(e[j + 2]), _mm512_maskz_loadu_ps(m, vj + 2 * ld), a2);
        a3 = _mm512_fmadd_ps(_mm512_set1_ps(e[j + 3]), _mm512_maskz_loadu_ps(m, vj + 3 * ld), a3);
    }
    for (; j < L; j++)
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(e[j]), _mm512_maskz_loadu_ps(m, v + j * ld), a0);
    __m512 s = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    _mm512_mask_storeu_ps(out, m, _mm512_mul_ps(s, _mm512_set1_ps(inv)));
}

Z_FN static void z_pv(size_t L, size_t d, const float *e, const float *v, size_t ld, float inv,
                      float *out)
{
    size_t c = 0;
    for (; c + 4 * ZW <= d; c += 4 * ZW)
        z_pv4(L, e, v + c, ld, inv, out + c);
    if (c + 2 * ZW <= d) {
        z_pv2(L, e, v + c, ld, inv, out + c);
        c += 2 * ZW;
    }
    for (; c < d; c += ZW)
        z_pv1(L, e, v + c, ld, inv, out + c, z_mask(d - c));
}

Z_FN static void z_attention_head(size_t L, size_t d, const float *q, const float *k,
                                  const float *v, size_t ld, float *out, size_t ldo, float scale,
                                  float *scores)
{
    for (size_t i = 0; i < L; i++) {
        float mx = z_scores(L, d, q + i * ld, k, ld, scale, scores);
        float sum = z_softmax_exp(scores, L, mx);
        z_pv(L, d, scores, v, ld, 1.0f / sum, out + i * ldo);
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

/* Two AVX-512 tables that differ only in the bf16 GEMM: kern_select()
 * hands out the second where the CPU has AVX512_BF16. */
#define Z_OPS(bf16_fn, native)                                                              \
    {.isa = KERN_AVX512,                                                                    \
     .name = "avx512",                                                                      \
     .gemm_bt = kern_ref_gemm_bt,                                                           \
     .gemm_packed = kern_avx512_gemm_packed,                                                \
     .gemm_packed_cols = kern_avx512_gemm_packed_cols,                                      \
     .gelu = z_gelu,                                                                        \
     .add_layernorm = z_add_layernorm,                                                      \
     .attention_head = z_attention_head,                                                    \
     .gemm_bf16_cols = bf16_fn,                                                             \
     .bf16_native = native,                                                                 \
     .bf16_rows = kern_avx512_bf16_rows}

const kern_ops kern_avx512_ops = Z_OPS(kern_avx512_gemm_bf16_cols, 0);
const kern_ops kern_avx512bf16_ops = Z_OPS(kern_avx512bf16_gemm_bf16_cols, 1);

#endif
