/*
 * kern_internal.h - what the kernel files share with each other and with
 * tests/unit/test_kernels.c, but not with the rest of the library.
 *
 * The reference kernels are exported so that the ISA tables can reuse the
 * ones they do not replace (GEMM), and the vector exp and erf are exported
 * so that the unit test can measure their accuracy directly rather than
 * only through softmax and GELU.
 */
#ifndef KERN_INTERNAL_H
#define KERN_INTERNAL_H

#include "kern.h"

#if defined(__x86_64__) || defined(__i386__)
#define KERN_X86 1
#else
#define KERN_X86 0
#endif

/* ---- reference kernels (kern_ref.c) -------------------------------------- */

void kern_ref_gemm_bt(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *B,
                      size_t ldb, const float *bias, float *C, size_t ldc);
void kern_ref_gelu(float *x, size_t n);
void kern_ref_add_layernorm(float *x, const float *r, size_t rows, size_t n, const float *g,
                            const float *b, float eps);
void kern_ref_attention_head(size_t L, size_t d, const float *q, const float *k, const float *v,
                             size_t ld, float *out, size_t ldo, float scale, float *scores);
/* The bf16 GEMM by widening to fp32, in plain C (kern_bf16.c). */
void kern_ref_gemm_bf16_cols(size_t M, size_t n0, size_t cols, size_t K, const uint16_t *A,
                             size_t lda, const uint16_t *Bp, const float *bias, float *C,
                             size_t ldc);

/* The int8 GEMM in plain C, and its epilogue over a tile of int32 sums
 * (row stride 32) at rows m.., columns n.. (kern_int8.c). */
void kern_ref_gemm_i8_cols(size_t M, size_t n0, size_t cols, size_t K, const kern_i8_act *A,
                           const kern_i8_mat *B, const float *bias, float *C, size_t ldc);
void kern_i8_finish(size_t mr, size_t cols, size_t n, const int32_t *acc, const kern_i8_act *A,
                    size_t m, const kern_i8_mat *B, const float *bias, float *C, size_t ldc);

/* ---- ISA tables ------------------------------------------------------------ */

#if KERN_X86
extern const kern_ops kern_avx2_ops;   /* kern_avx2.c */
extern const kern_ops kern_avx512_ops; /* kern_avx512.c */
/* 1 where the CPU has AVX512_BF16 (kern_ref.c), whatever BGEICL_ISA says. */
int kern_has_avx512bf16(void);

/* y[i] = exp(x[i]) and y[i] = erf(x[i]) with the vector code the kernels
 * use, for the accuracy tests. Call only where the ISA is supported. */
/* The packed GEMMs of the two tables (kern_gemm.c). */
void kern_avx2_gemm_packed(size_t M, size_t N, size_t K, const float *A, size_t lda,
                           const float *Bp, const float *bias, float *C, size_t ldc);
void kern_avx2_gemm_packed_cols(size_t M, size_t n0, size_t cols, size_t K, const float *A,
                                size_t lda, const float *Bp, const float *bias, float *C,
                                size_t ldc);
void kern_avx512_gemm_packed(size_t M, size_t N, size_t K, const float *A, size_t lda,
                             const float *Bp, const float *bias, float *C, size_t ldc);
void kern_avx512_gemm_packed_cols(size_t M, size_t n0, size_t cols, size_t K, const float *A,
                                  size_t lda, const float *Bp, const float *bias, float *C,
                                  size_t ldc);

/* The bf16 GEMMs (kern_bf16.c): widening to fp32 with FMA (AVX2,
 * AVX-512F) and vdpbf16ps (AVX512_BF16; call only where it exists). */
void kern_avx2_gemm_bf16_cols(size_t M, size_t n0, size_t cols, size_t K, const uint16_t *A,
                              size_t lda, const uint16_t *Bp, const float *bias, float *C,
                              size_t ldc);
void kern_avx512_gemm_bf16_cols(size_t M, size_t n0, size_t cols, size_t K, const uint16_t *A,
                                size_t lda, const uint16_t *Bp, const float *bias, float *C,
                                size_t ldc);
void kern_avx512bf16_gemm_bf16_cols(size_t M, size_t n0, size_t cols, size_t K,
                                    const uint16_t *A, size_t lda, const uint16_t *Bp,
                                    const float *bias, float *C, size_t ldc);

/* The int8 GEMMs (kern_int8.c): 16-bit products (AVX2) and vpdpbusd
 * (AVX512-VNNI; call only where it exists); the AVX-512F epilogue and
 * quantization of rows. */
void kern_avx2_gemm_i8_cols(size_t M, size_t n0, size_t cols, size_t K, const kern_i8_act *A,
                            const kern_i8_mat *B, const float *bias, float *C, size_t ldc);
void kern_avx512vnni_gemm_i8_cols(size_t M, size_t n0, size_t cols, size_t K,
                                  const kern_i8_act *A, const kern_i8_mat *B, const float *bias,
                                  float *C, size_t ldc);
void kern_avx512_i8_finish(size_t mr, size_t cols, size_t n, const int32_t *acc,
                           const kern_i8_act *A, size_t m, const kern_i8_mat *B,
                           const float *bias, float *C, size_t ldc);
void kern_avx512_i8_quant_rows(const float *x, size_t rows, size_t K, size_t ldx,
                               kern_i8_act *dst);

/* AMX (kern_amx.c). kern_amx_usable(): the CPU has AMX-TILE, AMX-INT8 and
 * AMX-BF16, the OS saves the tile state and has granted this process the
 * tile data (arch_prctl ARCH_REQ_XCOMP_PERM, asked once). The GEMMs have
 * the signatures and results of gemm_i8_cols (bit-identical) and
 * gemm_bf16_cols (within the vdpbf16ps bound: AMX fixes no sum order);
 * call them only where kern_amx_usable(). */
int kern_amx_usable(void);
void kern_amx_gemm_i8_cols(size_t M, size_t n0, size_t cols, size_t K, const kern_i8_act *A,
                           const kern_i8_mat *B, const float *bias, float *C, size_t ldc);
void kern_amx_gemm_bf16_cols(size_t M, size_t n0, size_t cols, size_t K, const uint16_t *A,
                             size_t lda, const uint16_t *Bp, const float *bias, float *C,
                             size_t ldc);
/* 1 where the CPU has AVX512_VNNI (kern_ref.c). */
int kern_has_avx512vnni(void);

/* kern_bf16_rows in AVX-512F (kern_bf16.c). */
void kern_avx512_bf16_rows(const float *x, size_t rows, size_t K, size_t ldx, uint16_t *dst,
                           size_t ldd);

void kern_avx2_exp_n(const float *x, float *y, size_t n);
void kern_avx2_erf_n(const float *x, float *y, size_t n);
void kern_avx512_exp_n(const float *x, float *y, size_t n);
void kern_avx512_erf_n(const float *x, float *y, size_t n);
#endif

#endif
