/*
 * kern.h - the numeric kernels of the forward pass behind one table.
 *
 * kern_select() picks the best implementation for this CPU once, at model
 * load (AVX-512, then AVX2, then scalar), and the forward pass calls only
 * through the returned table. All matrices are row-major fp32.
 *
 * The scalar table is the reference: GEMM through OpenBLAS, the rest in
 * portable C (kern_ref.c); every other table is tested against it. The
 * AVX2+FMA (kern_avx2.c) and AVX-512 (kern_avx512.c) tables replace
 * attention, GELU and LayerNorm with intrinsics, and add a GEMM on weights
 * packed once (kern_gemm.c): OpenBLAS builds that do not recognise the CPU
 * fall back to SSE3 kernels at a tenth of the AVX-512 peak.
 */
#ifndef KERN_H
#define KERN_H

#include <stddef.h>
#include <stdint.h>

typedef enum kern_isa { KERN_SCALAR = 0, KERN_AVX2 = 1, KERN_AVX512 = 2 } kern_isa;

struct kern_i8_act;
struct kern_i8_mat;

typedef struct kern_ops {
    kern_isa isa;
    const char *name; /* "scalar", "avx2", "avx512" */

    /* C[M,N] = A[M,K] * B[N,K]^T + bias[N] (bias may be NULL).
     * lda/ldb/ldc are row strides in floats. Single-threaded: callers
     * split rows across the pool. */
    void (*gemm_bt)(size_t M, size_t N, size_t K, const float *A, size_t lda,
                    const float *B, size_t ldb, const float *bias, float *C, size_t ldc);

    /* The packed-weight GEMM; NULL in the scalar table (use gemm_bt).
     * C[M,N] = A[M,K] * B[N,K]^T + bias[N] (bias may be NULL), where Bp is
     * kern_pack_b(B, N, K). Single-threaded. */
    void (*gemm_packed)(size_t M, size_t N, size_t K, const float *A, size_t lda,
                        const float *Bp, const float *bias, float *C, size_t ldc);
    /* The same for columns [n0, n0 + cols) only, n0 a multiple of KERN_NR:
     * Bp, bias and C are those of the whole product (C's column n0 is
     * C[n0]), so threads can split N. */
    void (*gemm_packed_cols)(size_t M, size_t n0, size_t cols, size_t K, const float *A,
                             size_t lda, const float *Bp, const float *bias, float *C,
                             size_t ldc);

    /* x[i] = gelu(x[i]) with the exact erf form, for n elements. */
    void (*gelu)(float *x, size_t n);

    /* For each of `rows` rows of width n: x = LayerNorm(x + r) * g + b.
     * r may be NULL (plain LayerNorm). */
    void (*add_layernorm)(float *x, const float *r, size_t rows, size_t n,
                          const float *g, const float *b, float eps);

    /* Attention of one head of one sequence, streaming over keys so that
     * no L x L score matrix is formed.
     *   q, k, v: L rows of width d with row stride ld (they are slices of
     *   the packed QKV matrix); out: L rows of width d, stride ldo.
     *   scores: scratch of kern_attention_scratch(L, d) floats, 64-byte
     *   aligned. */
    void (*attention_head)(size_t L, size_t d, const float *q, const float *k, const float *v,
                           size_t ld, float *out, size_t ldo, float scale, float *scores);

    /* The bf16-weight GEMM, in every table: C[M, n0:n0+cols] = A[M,K] *
     * B[n0:n0+cols, K]^T + bias, with A and B in bf16 and fp32 sums.
     * A: M rows of kern_bf16_k2(K) bf16, stride lda (elements), made by
     * kern_bf16_rows (a zero pads an odd K); Bp: kern_pack_b_bf16(B, N, K);
     * n0 a multiple of KERN_NR; bias and C as for gemm_packed_cols. Each
     * k pair is summed as c += a[2p+1] b[2p+1], then c += a[2p] b[2p], the
     * order of vdpbf16ps; the products are exact in fp32, so the scalar,
     * AVX2 and AVX-512F tables agree to the bit. Single-threaded. */
    void (*gemm_bf16_cols)(size_t M, size_t n0, size_t cols, size_t K, const uint16_t *A,
                           size_t lda, const uint16_t *Bp, const float *bias, float *C,
                           size_t ldc);
    /* 1 when gemm_bf16_cols uses the AVX512_BF16 dot product (vdpbf16ps);
     * it then differs from the others only where inputs or partial sums
     * are subnormal, which that instruction flushes to zero. */
    int bf16_native;
    /* kern_bf16_rows with this table's vectors; bit-identical to it. */
    void (*bf16_rows)(const float *x, size_t rows, size_t K, size_t ldx, uint16_t *dst,
                      size_t ldd);

    /* The int8-weight GEMM, in every table: C[M, n0:n0+cols] from the
     * int8 activations A (kern_i8_quant_rows) and the int8 weights B
     * (kern_i8_pack), exactly as kern_i8_epilogue states: the integer dot
     * products are exact in every path, so all tables agree to the bit.
     * n0 a multiple of KERN_NR; bias and C as for gemm_packed_cols.
     * Single-threaded. */
    void (*gemm_i8_cols)(size_t M, size_t n0, size_t cols, size_t K, const struct kern_i8_act *A,
                         const struct kern_i8_mat *B, const float *bias, float *C, size_t ldc);
    /* kern_i8_quant_rows with this table's vectors; bit-identical to it. */
    void (*i8_quant_rows)(const float *x, size_t rows, size_t K, size_t ldx,
                          struct kern_i8_act *dst);
    /* The reduced-precision GEMMs in use, for /info and the benchmarks:
     * e.g. "avx512-bf16", "amx-bf16"; "avx512-vnni", "amx-int8". */
    const char *bf16_impl, *i8_impl;
} kern_ops;

/* Floats of attention_head's scratch for a sequence of L tokens and head
 * width d, in every table: room for a block of score rows and for K
 * transposed (the AVX-512 table's blocked attention). */
static inline size_t kern_attention_scratch(size_t L, size_t d)
{
    size_t Lp = (L + 15) & ~(size_t)15;
    return Lp * (16 + ((d + 15) & ~(size_t)15)) + 64;
}

/* Packed B for gemm_packed: panels of KERN_NR rows of B (output columns);
 * panel p holds rows p*NR .. p*NR+NR-1 k-major, [K][NR] floats, rows past
 * N zero. kern_packed_floats() is its size in floats, a multiple of NR, so
 * matrices packed back to back in a 64-byte aligned block stay aligned. */
#define KERN_NR 16
size_t kern_packed_floats(size_t N, size_t K);
void kern_pack_b(const float *B, size_t N, size_t K, float *dst);

/* bf16 ("brain float"): the top 16 bits of an fp32. kern_f32_to_bf16
 * rounds to nearest even; NaN stays NaN (quieted), infinities and
 * subnormals round like any other value. Widening is exact. */
uint16_t kern_f32_to_bf16(float x);
float kern_bf16_to_f32(uint16_t h);
/* K rounded up to even: bf16 operands go by k pairs. */
static inline size_t kern_bf16_k2(size_t K) { return (K + 1) & ~(size_t)1; }
/* rows x K fp32 (stride ldx floats) -> rows x kern_bf16_k2(K) bf16
 * (stride ldd elements), a zero after an odd K. */
void kern_bf16_rows(const float *x, size_t rows, size_t K, size_t ldx, uint16_t *dst, size_t ldd);

/* Packed bf16 B for gemm_bf16_cols: panels of KERN_NR rows of B (output
 * columns); panel p holds kern_bf16_k2(K) / 2 k pairs, [K2/2][NR][2] bf16:
 * element (q, j, e) is B[p*NR + j][2q + e], zero past N and past K. One
 * k pair of a panel is 64 bytes, one zmm: vdpbf16ps's operand layout.
 * kern_packed_bf16_elems() is its size in bf16 elements. */
size_t kern_packed_bf16_elems(size_t N, size_t K);
void kern_pack_b_bf16(const float *B, size_t N, size_t K, uint16_t *dst);

/* int8 ("--dtype int8"). Weights: symmetric per output channel, w = s_n q
 * with q in [-127, 127] and s_n = max_k |W[n][k]| / 127. Activations:
 * asymmetric per row (token), x = s_m (q - z_m) with q in [0, 255], the
 * row's range widened to hold 0 so that z_m is exact and a zero row is
 * q = z = 0. u8 x s8 is the operand pair of vpdpbusd and tdpbusd.
 * K is padded to kern_i8_kpad(K), a multiple of 64 (one AMX tile row), with
 * zero weights, so whatever the padded activations hold adds nothing.
 *
 *   C[m][n] = (float)(acc - z_m * sum_n) * (s_m * s_n) + bias[n],
 *   acc = sum_k qa[m][k] qw[n][k],  sum_n = sum_k qw[n][k],
 *
 * int32 arithmetic (|acc| < 255 * 127 * K fits for K < 66000), then three
 * fp32 roundings in that order and no fused multiply-add, so every table
 * gives the same bits (kern_i8_epilogue). */
static inline size_t kern_i8_kpad(size_t K) { return (K + 63) & ~(size_t)63; }

typedef struct kern_i8_act {
    uint8_t *q;     /* rows x ld bytes; row m holds kern_i8_kpad(K) codes, 0 past K */
    size_t ld;      /* bytes between rows, >= kern_i8_kpad(K), a multiple of 64 */
    float *scale;   /* (rows) s_m */
    int32_t *zero;  /* (rows) z_m */
} kern_i8_act;

typedef struct kern_i8_mat {
    int8_t *packed; /* kern_i8_packed_bytes(N, K): panels of KERN_NR columns,
                       [kpad/4][NR][4], element (r, j, e) = q[p*NR + j][4r + e],
                       zero past N and past K; one k quad of a panel is 64
                       bytes: one vpdpbusd operand, one AMX B-tile row */
    float *scale;   /* (N) s_n */
    int32_t *sum;   /* (N) sum_n */
} kern_i8_mat;

size_t kern_i8_packed_bytes(size_t N, size_t K);
/* Quantizes B (N x K fp32, row-major) into dst, whose packed, scale and
 * sum point to room for N columns. */
void kern_i8_pack(const float *B, size_t N, size_t K, kern_i8_mat *dst);
/* Quantizes `rows` rows of x (width K, stride ldx floats) into dst's rows
 * 0 .. rows-1 (dst->q, ld, scale and zero point to room for them). */
void kern_i8_quant_rows(const float *x, size_t rows, size_t K, size_t ldx, kern_i8_act *dst);
/* One output element from its exact integer dot product, as stated above. */
static inline float kern_i8_epilogue(int32_t acc, int32_t zero, int32_t sum, float sa, float sb,
                                     const float *bias, size_t n)
{
    float v = (float)(acc - zero * sum) * (sa * sb);
    return bias ? v + bias[n] : v;
}

/* Detects the CPU's ISA. BGEICL_ISA caps the choice, for tests of every
 * path; a request above what the CPU has is lowered:
 *   scalar   the reference table;
 *   avx2     AVX2 + FMA;
 *   avx512f  AVX-512 (F, BW, VL) with bf16 widened to fp32 and int8 on
 *            16-bit products;
 *   avx512   and the AVX512_BF16 and AVX512-VNNI dot products where present;
 *   amx      (the default) and the AMX tile GEMMs for bf16 and int8 where
 *            the CPU and OS allow them.
 * The reduced-precision GEMMs chosen are named by bf16_impl and i8_impl. */
kern_isa kern_detect(void);
/* The table of `isa`, lowered to what the CPU can run. */
const kern_ops *kern_select(kern_isa isa);
const char *kern_isa_name(kern_isa isa);

#endif
