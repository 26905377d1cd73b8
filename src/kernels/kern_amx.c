/*
 * kern_amx.c - the int8 and bf16 GEMMs on AMX tiles (tdpbusd, tdpbf16ps).
 *
 * Contracts: those of gemm_i8_cols and gemm_bf16_cols in kern.h. The int8
 * GEMM is bit-identical to kern_ref_gemm_i8_cols (exact int32 sums, then
 * the shared epilogue kern_avx512_i8_finish); the bf16 GEMM agrees with
 * kern_ref_gemm_bf16_cols within the vdpbf16ps bound (AMX fixes no sum
 * order inside a tile product and flushes subnormals).
 *
 * Layouts. The packed B operands of kern.h are already AMX B tiles:
 *   int8  panel p at B->packed + p * kpad * 16, [kpad/4][16][4]: 16
 *         consecutive 64-byte rows (64 k, 16 columns) are one B tile of
 *         tdpbusd, so a k step of 64 advances 1024 bytes in a panel;
 *   bf16  panel p at Bp + p * K2 * 16, [K2/2][16][2]: 16 rows (32 k) are
 *         one B tile of tdpbf16ps, a k step of 32 advances 512 elements.
 * An A tile is 16 rows x 64 bytes of A read in place at A's row stride
 * (64 int8 or 32 bf16 per row); a C tile is 16 x 16 int32 or fp32.
 *
 * Blocking (per call, per thread): rows in blocks of MC so that an A block
 * stays in L2 while every 32-column micro-panel of B passes over it; each
 * 32 x 32 block of C is 2 x 2 C tiles (tmm0-3) fed by 2 A tiles (tmm4-5)
 * and 2 B tiles (tmm6-7) per k step, run over the whole K, stored to an
 * int32/fp32 scratch (row stride 32) and finished from there.
 *
 * Invariants kept because AMX loads are invisible to ASan:
 *   - no row of A past M is read: a block with fewer than 16 rows left in
 *     an A tile copies those rows, per k step, into a zeroed 16-row
 *     scratch (zero rows only make C rows that are never written back);
 *   - no panel of B past the last one the columns need is read: a block
 *     with one panel left uses one B tile;
 *   - columns past n0 + cols are computed (the last panel is zero padded
 *     to 16 columns) but never written.
 * The tile configuration is per thread and the pool runs calls on any
 * thread, so every call loads it and releases the tiles at the end.
 *
 * GCC 12's _tile_loadd is an asm without a memory operand, so the compiler
 * does not know it reads the scratch written just before it: a compiler
 * barrier separates the two. The configuration is a static constant for
 * the same reason (ldtilecfg's asm names only its first 8 bytes).
 */
#include "kern_internal.h"

#if KERN_X86

#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- detection and permission --------------------------------------------------------- */

#define ARCH_REQ_XCOMP_PERM 0x1023 /* Linux: ask for an XSAVE feature's state */
#define XFEATURE_XTILEDATA 18

static int amx_ok;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* AMX-TILE, AMX-INT8 and AMX-BF16, the OS saving the tile state (XCR0
 * bits 17, 18), and Linux granting this process the tile data. The
 * kernels also use AVX-512 (F, BW, VL, BF16) for the epilogue and the
 * bf16 fallback, so that and its OS state are required as well (every
 * AMX CPU has them; a hypervisor might hide them). */
static void amx_probe(void)
{
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7 || !__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1))
        return; /* no leaf 7 or no OSXSAVE */
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x60000) != 0x60000 || (xcr0 & 0xe6) != 0xe6)
        return; /* tile config + data; SSE, AVX and the AVX-512 state */
    __cpuid_count(7, 0, a, b, c, d);
    unsigned leaf7_max = a;
    int amx = ((d >> 22) & 1) && ((d >> 24) & 1) && ((d >> 25) & 1);
    int avx512 = ((b >> 16) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1); /* F, BW, VL */
    if (!amx || !avx512 || leaf7_max < 1)
        return;
    __cpuid_count(7, 1, a, b, c, d);
    if (!((a >> 5) & 1)) /* AVX512_BF16 */
        return;
    amx_ok = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

int kern_amx_usable(void)
{
    pthread_once(&amx_once, amx_probe);
    return amx_ok;
}

/* ---- tiles ------------------------------------------------------------------------------- */

#define AMX_FN                                                                                 \
    __attribute__((target("amx-tile,amx-int8,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16,"  \
                          "avx2,fma")))

/* Makes the scratch stores visible to the asm tile loads that follow. */
#define AMX_MEM_BARRIER() __asm__ volatile("" ::: "memory")

#define MC 256    /* rows per A block */
#define TROW 64   /* bytes per tile row */
#define TILE 1024 /* bytes per 16-row tile */

/* Palette 1: tmm0-7 all 16 rows x 64 bytes. */
typedef struct __attribute__((packed, aligned(64))) amx_cfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_cfg;

static const amx_cfg amx_cfg_16x64 = {
    .palette = 1,
    .colsb = {TROW, TROW, TROW, TROW, TROW, TROW, TROW, TROW},
    .rows = {16, 16, 16, 16, 16, 16, 16, 16},
};

/* Where to load a 16 x 64-byte A tile whose first row is src (rows at
 * stride ld bytes), of which only `rows` exist: in place when all 16 do,
 * else those rows copied into scratch, whose other rows stay zero (the
 * caller zeroes it once; a call copies the same row count every time). */
static inline const uint8_t *a_tile(const uint8_t *src, size_t ld, size_t rows,
                                    uint8_t *scratch, size_t *stride)
{
    if (rows >= 16) {
        *stride = ld;
        return src;
    }
    for (size_t i = 0; i < rows; i++)
        memcpy(scratch + i * TROW, src + i * ld, TROW);
    *stride = TROW;
    return scratch;
}

/* Stores the C tiles in use to acc (32 x 32 elements of 4 bytes). */
#define STORE_C(acc, two_rows, two_panels)                                                     \
    do {                                                                                       \
        _tile_stored(0, (acc), 128);                                                           \
        if (two_panels)                                                                        \
            _tile_stored(1, (acc) + 16, 128);                                                  \
        if (two_rows) {                                                                        \
            _tile_stored(2, (acc) + 16 * 32, 128);                                             \
            if (two_panels)                                                                    \
                _tile_stored(3, (acc) + 16 * 32 + 16, 128);                                    \
        }                                                                                      \
    } while (0)

/* The k loop of a block, ks steps: A tiles from A + s TROW (a_tile copies
 * a tail of fewer than 16 rows), B tiles one TILE of bytes further per
 * step in each panel, then the tile products DP (_tile_dpbusd or
 * _tile_dpbf16ps) into the C tiles the block uses. */
#define AMX_K_LOOP(DP, A, lda, mr, B, B1, ks, scr, two_rows, two_panels)                        \
    for (size_t s = 0; s < (ks); s++) {                                                        \
        size_t st0, st1 = 0;                                                                   \
        const uint8_t *a0 = a_tile((A) + s * TROW, (lda), (mr), (scr), &st0), *a1 = NULL;      \
        if (two_rows)                                                                          \
            a1 = a_tile((A) + 16 * (lda) + s * TROW, (lda), (mr) - 16, (scr) + TILE, &st1);    \
        AMX_MEM_BARRIER();                                                                     \
        _tile_loadd(4, a0, st0);                                                               \
        _tile_loadd(6, (const char *)(B) + s * TILE, TROW);                                    \
        if (two_panels)                                                                        \
            _tile_loadd(7, (const char *)(B1) + s * TILE, TROW);                               \
        if (two_rows)                                                                          \
            _tile_loadd(5, a1, st1);                                                           \
        DP(0, 4, 6);                                                                           \
        if (two_panels)                                                                        \
            DP(1, 4, 7);                                                                       \
        if (two_rows) {                                                                        \
            DP(2, 5, 6);                                                                       \
            if (two_panels)                                                                    \
                DP(3, 5, 7);                                                                   \
        }                                                                                      \
    }

/* ---- int8: tdpbusd ----------------------------------------------------------------------- */

/* The int32 sums of an mr x (16 np) block (mr <= 32, np <= 2) over ks k
 * steps of 64 into acc (row stride 32): A's first row and k 0 at A,
 * B's first panel at B, the next pstride bytes on. */
AMX_FN static void i8_block(size_t mr, size_t np, size_t ks, const uint8_t *A, size_t lda,
                            const int8_t *B, size_t pstride, uint8_t *scr, int32_t *acc)
{
    const int two_rows = mr > 16, two_panels = np == 2;
    const int8_t *B1 = two_panels ? B + pstride : B;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    AMX_K_LOOP(_tile_dpbusd, A, lda, mr, B, B1, ks, scr, two_rows, two_panels);
    STORE_C(acc, two_rows, two_panels);
}

AMX_FN void kern_amx_gemm_i8_cols(size_t M, size_t n0, size_t cols, size_t K,
                                  const kern_i8_act *A, const kern_i8_mat *B, const float *bias,
                                  float *C, size_t ldc)
{
    if (!M || !cols)
        return;
    int32_t acc[32 * 32] __attribute__((aligned(64)));
    uint8_t scr[2 * TILE] __attribute__((aligned(64)));
    size_t Kp = kern_i8_kpad(K), n1 = n0 + cols, ks = Kp / TROW;
    memset(scr, 0, sizeof scr);
    _tile_loadconfig(&amx_cfg_16x64);
    for (size_t m0 = 0; m0 < M; m0 += MC) {
        size_t mc = M - m0 < MC ? M - m0 : MC;
        for (size_t j = n0; j < n1; j += 32) {
            size_t jc = n1 - j < 32 ? n1 - j : 32, np = (jc + KERN_NR - 1) / KERN_NR;
            const int8_t *Bj = B->packed + (j / KERN_NR) * Kp * KERN_NR;
            for (size_t i = 0; i < mc; i += 32) {
                size_t mr = mc - i < 32 ? mc - i : 32, m = m0 + i;
                i8_block(mr, np, ks, A->q + m * A->ld, A->ld, Bj, Kp * KERN_NR, scr, acc);
                kern_avx512_i8_finish(mr, jc, j, acc, A, m, B, bias, C + m * ldc + j, ldc);
            }
        }
    }
    _tile_release();
}

/* ---- bf16: tdpbf16ps --------------------------------------------------------------------- */

/* C of an mr x (16 np) block = its starting value bt (16 rows of 32
 * fp32, each the block's bias) plus the sums over ks k steps of 32, into
 * acc (row stride 32). A: first row, k 0, rows lda bytes apart; B: first
 * panel, the next pstride elements on. */
AMX_FN static void bf_block(size_t mr, size_t np, size_t ks, const uint8_t *A, size_t lda,
                            const uint16_t *B, size_t pstride, const float *bt, uint8_t *scr,
                            float *acc)
{
    const int two_rows = mr > 16, two_panels = np == 2;
    const uint16_t *B1 = two_panels ? B + pstride : B;
    AMX_MEM_BARRIER(); /* bt was just written */
    _tile_loadd(0, bt, 128);
    _tile_loadd(1, bt + 16, 128);
    _tile_loadd(2, bt, 128);
    _tile_loadd(3, bt + 16, 128);
    AMX_K_LOOP(_tile_dpbf16ps, A, lda, mr, B, B1, ks, scr, two_rows, two_panels);
    STORE_C(acc, two_rows, two_panels);
}

AMX_FN void kern_amx_gemm_bf16_cols(size_t M, size_t n0, size_t cols, size_t K,
                                    const uint16_t *A, size_t lda, const uint16_t *Bp,
                                    const float *bias, float *C, size_t ldc)
{
    size_t K2 = kern_bf16_k2(K);
    if (K2 % 32) { /* no whole k steps: vdpbf16ps, present on every AMX CPU */
        kern_avx512bf16_gemm_bf16_cols(M, n0, cols, K, A, lda, Bp, bias, C, ldc);
        return;
    }
    if (!M || !cols)
        return;
    float acc[32 * 32] __attribute__((aligned(64)));
    float bt[16 * 32] __attribute__((aligned(64)));
    uint8_t scr[2 * TILE] __attribute__((aligned(64)));
    size_t n1 = n0 + cols, ks = K2 / 32;
    memset(scr, 0, sizeof scr);
    _tile_loadconfig(&amx_cfg_16x64);
    for (size_t m0 = 0; m0 < M; m0 += MC) {
        size_t mc = M - m0 < MC ? M - m0 : MC;
        for (size_t j = n0; j < n1; j += 32) {
            size_t jc = n1 - j < 32 ? n1 - j : 32, np = (jc + KERN_NR - 1) / KERN_NR;
            const uint16_t *Bj = Bp + (j / KERN_NR) * K2 * KERN_NR;
            /* The sums start from the bias, as in the reference. */
            for (size_t c = 0; c < 32; c++)
                bt[c] = bias && c < jc ? bias[j + c] : 0.0f;
            for (size_t r = 1; r < 16; r++)
                memcpy(bt + r * 32, bt, 32 * sizeof(float));
            for (size_t i = 0; i < mc; i += 32) {
                size_t mr = mc - i < 32 ? mc - i : 32, m = m0 + i;
                bf_block(mr, np, ks, (const uint8_t *)(A + m * lda), lda * sizeof(uint16_t), Bj,
                         K2 * KERN_NR, bt, scr, acc);
                for (size_t r = 0; r < mr; r++)
                    memcpy(C + (m + r) * ldc + j, acc + r * 32, jc * sizeof(float));
            }
        }
    }
    _tile_release();
}

#endif
