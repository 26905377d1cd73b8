/*
 * peak.c - the machine's multiply-add peak, so that engine figures can be
 * stated as a share of what the cores can do.
 *
 *   peak [--json] [--threads N] [--seconds S] [--runs R]
 *
 * Each case is a loop of independent multiply-add instructions on values
 * that stay in registers (no memory traffic), with enough accumulators to
 * cover the instruction's latency on both vector ports:
 *
 *   fp32_avx512  vfmadd...ps zmm     16 lanes x 2 flops        32 flop/instr
 *   fp32_avx2    vfmadd...ps ymm      8 lanes x 2 flops        16 flop/instr
 *   bf16_avx512  vdpbf16ps zmm       16 lanes x 2 pairs x 2    64 flop/instr
 *   int8_avx512  vpdpbusd zmm        16 lanes x 4 pairs x 2   128 op/instr
 *   int8_avxvnni vpdpbusd ymm (VEX)   8 lanes x 4 pairs x 2    64 op/instr
 *   bf16_amx     tdpbf16ps           16 x 16 x 32 pairs x 2 16384 flop/instr
 *   int8_amx     tdpbusd             16 x 16 x 64 pairs x 2 32768 op/instr
 *
 * (a multiply-add counts as 2 operations throughout, as GEMM FLOP counts
 * do: 2 M N K). Every case is detected at run time with CPUID and XGETBV
 * (the OS must save the registers too) and compiled with a target
 * attribute, so the file builds with the project's flags on any x86-64 and
 * skips what the CPU or the kernel lacks; AMX also needs Linux's
 * permission for the tile data (arch_prctl ARCH_REQ_XCOMP_PERM).
 *
 * Each case runs on one thread, then on N threads at once (default: the
 * online CPUs), each thread the same loop, for at least S seconds (default
 * 0.3); the best of R runs (default 3) is reported, in GFLOP/s (GOP/s for int8) for
 * the one thread and for all N together. --json prints one JSON object.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#define PEAK_X86 1
#else
#define PEAK_X86 0
#endif

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Results land here so that no loop can be dropped as dead code. */
static volatile float sink_f;
static volatile unsigned sink_i;

/* Loop inputs read through volatiles, so the compiler cannot fold them. */
static volatile float in_mul = 0.999999f, in_add = 1e-7f;
static volatile int in_u8 = 0x01010101, in_s8 = 0x01010101;

typedef void (*kern_fn)(long iters);

typedef struct peak_case {
    const char *name;  /* fp32_avx512, ... */
    const char *instr; /* the instruction timed */
    const char *unit;  /* GFLOP/s or GOP/s */
    double ops_per_iter;
    kern_fn fn;
    int available;
    const char *why; /* when not available */
} peak_case;

#if PEAK_X86

/* ---- detection ------------------------------------------------------------ */

typedef struct cpu_feat {
    int avx2_fma, avx512f, avx512_bf16, avx512_vnni, avx_vnni, amx_tile, amx_bf16, amx_int8;
    int os_avx, os_avx512, os_amx;
    char brand[49];
} cpu_feat;

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect(cpu_feat *f)
{
    memset(f, 0, sizeof *f);
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1;
    if (osxsave) {
        uint64_t xcr0 = xgetbv0();
        f->os_avx = (xcr0 & 0x6) == 0x6;
        f->os_avx512 = f->os_avx && (xcr0 & 0xe0) == 0xe0;
        f->os_amx = (xcr0 & 0x60000) == 0x60000;
    }
    unsigned max = __get_cpuid_max(0, NULL);
    if (max >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        unsigned leaf7_max = a;
        f->avx2_fma = ((b >> 5) & 1) && fma && f->os_avx;
        f->avx512f = ((b >> 16) & 1) && f->os_avx512;
        f->avx512_vnni = f->avx512f && ((c >> 11) & 1);
        f->amx_bf16 = (d >> 22) & 1;
        f->amx_tile = (d >> 24) & 1;
        f->amx_int8 = (d >> 25) & 1;
        if (leaf7_max >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            f->avx_vnni = ((a >> 4) & 1) && f->os_avx;
            f->avx512_bf16 = f->avx512f && ((a >> 5) & 1);
        }
    }
    unsigned ext = __get_cpuid_max(0x80000000, NULL);
    if (ext >= 0x80000004) {
        unsigned *w = (unsigned *)f->brand;
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002 + i, &w[4 * i], &w[4 * i + 1], &w[4 * i + 2], &w[4 * i + 3]);
        f->brand[48] = 0;
    }
}

/* Linux hands out the AMX tile state only on request, once per process. */
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static int amx_permit(void)
{
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

/* ---- kernels -------------------------------------------------------------- */

#define REP16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) \
                 X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define REP12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((target("avx512f,fma"))) static void k_fp32_avx512(long iters)
{
    __m512 m = _mm512_set1_ps(in_mul), ad = _mm512_set1_ps(in_add);
#define DECL(i) __m512 a##i = _mm512_set1_ps((float)(i));
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, m, ad);
#define SUM(i) s = _mm512_add_ps(s, a##i);
    REP16(DECL)
    for (long it = 0; it < iters; it++) {
        REP16(STEP)
        __asm__ volatile("" ::: "memory");
    }
    __m512 s = _mm512_setzero_ps();
    REP16(SUM)
    sink_f = _mm512_reduce_add_ps(s);
#undef DECL
#undef STEP
#undef SUM
}

__attribute__((target("avx2,fma"))) static void k_fp32_avx2(long iters)
{
    __m256 m = _mm256_set1_ps(in_mul), ad = _mm256_set1_ps(in_add);
#define DECL(i) __m256 a##i = _mm256_set1_ps((float)(i));
#define STEP(i) a##i = _mm256_fmadd_ps(a##i, m, ad);
#define SUM(i) s = _mm256_add_ps(s, a##i);
    REP12(DECL)
    for (long it = 0; it < iters; it++) {
        REP12(STEP)
        __asm__ volatile("" ::: "memory");
    }
    __m256 s = _mm256_setzero_ps();
    REP12(SUM)
    float t[8];
    _mm256_storeu_ps(t, s);
    sink_f = t[0] + t[7];
#undef DECL
#undef STEP
#undef SUM
}

__attribute__((target("avx512f,avx512bf16"))) static void k_bf16_avx512(long iters)
{
    /* bf16 pairs of 1.0 (0x3f80) times a small value */
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80);
    __m512bh y = (__m512bh)_mm512_set1_epi16((short)(0x3380 + (in_u8 & 1)));
#define DECL(i) __m512 a##i = _mm512_set1_ps((float)(i));
#define STEP(i) a##i = _mm512_dpbf16_ps(a##i, x, y);
#define SUM(i) s = _mm512_add_ps(s, a##i);
    REP16(DECL)
    for (long it = 0; it < iters; it++) {
        REP16(STEP)
        __asm__ volatile("" ::: "memory");
    }
    __m512 s = _mm512_setzero_ps();
    REP16(SUM)
    sink_f = _mm512_reduce_add_ps(s);
#undef DECL
#undef STEP
#undef SUM
}

__attribute__((target("avx512f,avx512vnni"))) static void k_int8_avx512(long iters)
{
    __m512i u = _mm512_set1_epi32(in_u8), v = _mm512_set1_epi32(in_s8);
#define DECL(i) __m512i a##i = _mm512_set1_epi32(i);
#define STEP(i) a##i = _mm512_dpbusd_epi32(a##i, u, v);
#define SUM(i) s = _mm512_xor_si512(s, a##i);
    REP16(DECL)
    for (long it = 0; it < iters; it++) {
        REP16(STEP)
        __asm__ volatile("" ::: "memory");
    }
    __m512i s = _mm512_setzero_si512();
    REP16(SUM)
    unsigned t[16];
    _mm512_storeu_si512(t, s);
    sink_i = t[0] ^ t[15];
#undef DECL
#undef STEP
#undef SUM
}

__attribute__((target("avx2,avxvnni"))) static void k_int8_avxvnni(long iters)
{
    __m256i u = _mm256_set1_epi32(in_u8), v = _mm256_set1_epi32(in_s8);
#define DECL(i) __m256i a##i = _mm256_set1_epi32(i);
#define STEP(i) a##i = _mm256_dpbusd_avx_epi32(a##i, u, v);
#define SUM(i) s = _mm256_xor_si256(s, a##i);
    REP12(DECL)
    for (long it = 0; it < iters; it++) {
        REP12(STEP)
        __asm__ volatile("" ::: "memory");
    }
    __m256i s = _mm256_setzero_si256();
    REP12(SUM)
    unsigned t[8];
    _mm256_storeu_si256((__m256i *)t, s);
    sink_i = t[0] ^ t[7];
#undef DECL
#undef STEP
#undef SUM
}

/* AMX: tiles 0-3 accumulate (16 rows x 64 bytes of fp32 / int32), tiles
 * 4-5 hold A (16 x 64 bytes) and 6-7 hold B (16 x 64 bytes); four
 * independent products per iteration. The tile configuration is per
 * thread, so every call loads it. */
typedef struct __attribute__((packed, aligned(64))) amx_cfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_cfg;

static void amx_config(amx_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->palette = 1;
    for (int t = 0; t < 8; t++) {
        c->colsb[t] = 64;
        c->rows[t] = 16;
    }
}

static _Alignas(64) uint16_t amx_a[16 * 32], amx_b[16 * 32];

__attribute__((target("amx-tile,amx-bf16"))) static void k_bf16_amx(long iters)
{
    amx_cfg cfg;
    amx_config(&cfg);
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, amx_a, 64);
    _tile_loadd(5, amx_a, 64);
    _tile_loadd(6, amx_b, 64);
    _tile_loadd(7, amx_b, 64);
    for (long it = 0; it < iters; it++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    float out[16 * 16];
    _tile_stored(0, out, 64);
    _tile_release();
    sink_f = out[0] + out[255];
}

__attribute__((target("amx-tile,amx-int8"))) static void k_int8_amx(long iters)
{
    amx_cfg cfg;
    amx_config(&cfg);
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, amx_a, 64);
    _tile_loadd(5, amx_a, 64);
    _tile_loadd(6, amx_b, 64);
    _tile_loadd(7, amx_b, 64);
    for (long it = 0; it < iters; it++) {
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 4, 7);
        _tile_dpbusd(2, 5, 6);
        _tile_dpbusd(3, 5, 7);
    }
    uint32_t out[16 * 16];
    _tile_stored(0, out, 64);
    _tile_release();
    sink_i = out[0] ^ out[255];
}

static int build_cases(peak_case *pc, char *cpu, size_t cpulen)
{
    cpu_feat f;
    detect(&f);
    snprintf(cpu, cpulen, "%s", f.brand[0] ? f.brand : "x86-64");
    for (size_t i = 0; i < 16 * 32; i++) {
        amx_a[i] = 0x3f80;        /* bf16 1.0, int8 bytes 0x80 0x3f */
        amx_b[i] = 0x3380;        /* bf16 ~6e-8, int8 bytes 0x80 0x33 */
    }
    int amx_ok = f.amx_tile && f.os_amx && amx_permit();
    const char *amx_why = !f.amx_tile ? "no AMX on this CPU"
                          : !f.os_amx ? "the OS does not enable AMX state"
                                      : "the kernel refused AMX tile data (arch_prctl)";
    int n = 0;
    pc[n++] = (peak_case){"fp32_avx512", "vfmadd...ps zmm", "GFLOP/s", 16 * 32.0, k_fp32_avx512,
                          f.avx512f, "no AVX-512F"};
    pc[n++] = (peak_case){"fp32_avx2", "vfmadd...ps ymm", "GFLOP/s", 12 * 16.0, k_fp32_avx2,
                          f.avx2_fma, "no AVX2+FMA"};
    pc[n++] = (peak_case){"bf16_avx512", "vdpbf16ps zmm", "GFLOP/s", 16 * 64.0, k_bf16_avx512,
                          f.avx512_bf16, "no AVX512_BF16"};
    pc[n++] = (peak_case){"int8_avx512", "vpdpbusd zmm", "GOP/s", 16 * 128.0, k_int8_avx512,
                          f.avx512_vnni, "no AVX512_VNNI"};
    pc[n++] = (peak_case){"int8_avxvnni", "vpdpbusd ymm (AVX-VNNI)", "GOP/s", 12 * 64.0,
                          k_int8_avxvnni, f.avx_vnni, "no AVX-VNNI"};
    pc[n++] = (peak_case){"bf16_amx", "tdpbf16ps", "GFLOP/s", 4 * 16384.0, k_bf16_amx,
                          amx_ok && f.amx_bf16, f.amx_bf16 ? amx_why : "no AMX-BF16"};
    pc[n++] = (peak_case){"int8_amx", "tdpbusd", "GOP/s", 4 * 32768.0, k_int8_amx,
                          amx_ok && f.amx_int8, f.amx_int8 ? amx_why : "no AMX-INT8"};
    return n;
}

#else /* not x86-64 */

static int build_cases(peak_case *pc, char *cpu, size_t cpulen)
{
    (void)pc;
    snprintf(cpu, cpulen, "not x86-64");
    return 0;
}

#endif

/* ---- harness -------------------------------------------------------------- */

typedef struct worker {
    kern_fn fn;
    long iters;
    pthread_barrier_t *bar;
} worker;

static void *worker_main(void *p)
{
    worker *w = p;
    pthread_barrier_wait(w->bar);
    w->fn(w->iters);
    return NULL;
}

/* Seconds for `threads` threads to run `iters` iterations each. */
static double timed_run(kern_fn fn, long iters, int threads)
{
    if (threads == 1) {
        double t0 = now_s();
        fn(iters);
        return now_s() - t0;
    }
    pthread_t *tid = malloc((size_t)threads * sizeof *tid);
    worker *w = malloc((size_t)threads * sizeof *w);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){fn, iters, &bar};
        if (pthread_create(&tid[i], NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "peak: pthread_create failed\n");
            exit(1);
        }
    }
    pthread_barrier_wait(&bar);
    double t0 = now_s();
    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    double el = now_s() - t0;
    pthread_barrier_destroy(&bar);
    free(tid);
    free(w);
    return el;
}

/* Best ops/s of `runs` runs of at least `seconds` each. */
static double measure(const peak_case *c, int threads, double seconds, int runs,
                      long *iters_io)
{
    long iters = *iters_io;
    if (iters <= 0) {
        iters = 1000;
        for (;;) {
            double t = timed_run(c->fn, iters, 1);
            if (t >= 0.02) {
                iters = (long)((double)iters * seconds / t) + 1;
                break;
            }
            iters *= 4;
        }
        *iters_io = iters;
    }
    double best = 0;
    for (int r = 0; r < runs; r++) {
        double t = timed_run(c->fn, iters, threads);
        double ops = c->ops_per_iter * (double)iters * threads / t;
        if (ops > best)
            best = ops;
    }
    return best;
}

static void usage(void)
{
    fprintf(stderr, "usage: peak [--json] [--threads N] [--seconds S] [--runs R]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int json = 0, threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    double seconds = 0.3;
    int runs = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else
            usage();
    }
    if (threads < 1 || seconds <= 0 || runs < 1)
        usage();

    peak_case pc[16];
    char cpu[64];
    int n = build_cases(pc, cpu, sizeof cpu);
    double one[16] = {0}, all[16] = {0};
    for (int i = 0; i < n; i++) {
        if (!pc[i].available)
            continue;
        long iters = 0;
        one[i] = measure(&pc[i], 1, seconds, runs, &iters);
        all[i] = threads > 1 ? measure(&pc[i], threads, seconds, runs, &iters) : one[i];
    }

    if (json) {
        printf("{\"cpu\":\"%s\",\"threads\":%d,\"seconds\":%.3f,\"runs\":%d,\"cases\":[", cpu,
               threads, seconds, runs);
        for (int i = 0; i < n; i++) {
            printf("%s{\"name\":\"%s\",\"instr\":\"%s\",\"unit\":\"%s\",\"available\":%s", i ? "," : "",
                   pc[i].name, pc[i].instr, pc[i].unit, pc[i].available ? "true" : "false");
            if (pc[i].available)
                printf(",\"one_thread\":%.2f,\"all_threads\":%.2f", one[i] * 1e-9,
                       all[i] * 1e-9);
            else
                printf(",\"why\":\"%s\"", pc[i].why);
            printf("}");
        }
        printf("]}\n");
        return 0;
    }
    printf("cpu: %s; %d threads; every figure the best of %d runs of >= %.2f s\n\n", cpu, threads,
           runs, seconds);
    printf("%-13s %-24s %-8s %12s %14s %10s\n", "case", "instruction", "unit", "1 thread",
           "all threads", "scaling");
    for (int i = 0; i < n; i++) {
        if (!pc[i].available) {
            printf("%-13s %-24s %-8s %12s   (%s)\n", pc[i].name, pc[i].instr, pc[i].unit, "-",
                   pc[i].why);
            continue;
        }
        printf("%-13s %-24s %-8s %12.1f %14.1f %9.2fx\n", pc[i].name, pc[i].instr, pc[i].unit,
               one[i] * 1e-9, all[i] * 1e-9, all[i] / one[i]);
    }
    if (n == 0)
        printf("(no x86-64 cases on this CPU)\n");
    return 0;
}
