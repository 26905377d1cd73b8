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

typedef enum kern_isa { KERN_SCALAR = 0, KERN_AVX2 = 1, KERN_AVX512 = 2 } kern_isa;

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
     *   scores: scratch of L floats. */
    void (*attention_head)(size_t L, size_t d, const float *q, const float *k, const float *v,
                           size_t ld, float *out, size_t ldo, float scale, float *scores);
} kern_ops;

/* Packed B for gemm_packed: panels of KERN_NR rows of B (output columns);
 * panel p holds rows p*NR .. p*NR+NR-1 k-major, [K][NR] floats, rows past
 * N zero. kern_packed_floats() is its size in floats, a multiple of NR, so
 * matrices packed back to back in a 64-byte aligned block stay aligned. */
#define KERN_NR 16
size_t kern_packed_floats(size_t N, size_t K);
void kern_pack_b(const float *B, size_t N, size_t K, float *dst);

/* Detects the CPU's ISA. BGEICL_ISA=scalar|avx2|avx512 caps the choice
 * (for tests of every path); a request above what the CPU has is lowered. */
kern_isa kern_detect(void);
/* The table of `isa`, lowered to what the CPU can run. */
const kern_ops *kern_select(kern_isa isa);
const char *kern_isa_name(kern_isa isa);

#endif
