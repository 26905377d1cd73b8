/*
 * util.c - errors, counted allocation with fault injection, file helpers.
 */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

bgeicl_code bg_fail(bg_err *err, bgeicl_code code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

void bg_err_clear(bg_err *err)
{
    if (err) {
        err->code = BGEICL_OK;
        err->message[0] = '\0';
    }
}

/* ---- allocation -------------------------------------------------------- */

static atomic_long fail_countdown = -1; /* <0: never fail */
static atomic_ulong alloc_count;

void bg_fail_after(long n) { atomic_store(&fail_countdown, n); }
unsigned long bg_alloc_count(void) { return atomic_load(&alloc_count); }

/* Returns 1 if this allocation should be refused. */
static int should_fail(void)
{
    atomic_fetch_add(&alloc_count, 1);
    long c = atomic_load(&fail_countdown);
    if (c < 0)
        return 0;
    if (c == 0)
        return 1;
    atomic_fetch_sub(&fail_countdown, 1);
    return 0;
}

void *bg_malloc(size_t n) { return should_fail() ? NULL : malloc(n ? n : 1); }

void *bg_calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *bg_realloc(void *p, size_t n) { return should_fail() ? NULL : realloc(p, n ? n : 1); }

void bg_free(void *p) { free(p); }

char *bg_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = bg_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void *bg_malloc_aligned(size_t n)
{
    if (should_fail())
        return NULL;
    void *p = NULL;
    n = (n + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, n ? n : 64) != 0)
        return NULL;
    return p;
}

void bg_free_aligned(void *p) { free(p); }

/* ---- files ------------------------------------------------------------- */

bgeicl_code bg_read_file(const char *path, char **data, size_t *len, bg_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return bg_fail(err, BGEICL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *nb = bg_realloc(buf, ncap);
            if (!nb) {
                bg_free(buf);
                fclose(f);
                return bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory reading file", path);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        bg_free(buf);
        return bg_fail(err, BGEICL_ERR_IO, "%s: read error", path);
    }
    buf[n] = '\0';
    *data = buf;
    if (len)
        *len = n;
    return BGEICL_OK;
}

char *bg_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = bg_malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    size_t o = a;
    if (a && dir[a - 1] != '/')
        p[o++] = '/';
    memcpy(p + o, name, b + 1);
    return p;
}

int bg_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int bg_dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

double bg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int bg_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int bg_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            need = 1; cp = c & 0x1F; min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            need = 2; cp = c & 0x0F; min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            need = 3; cp = c & 0x07; min = 0x10000;
        } else {
            return 0;
        }
        if ((size_t)(end - p) <= need)
            return 0;
        for (size_t i = 1; i <= need; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        p += need + 1;
    }
    return 1;
}

void bg_l2_normalize(float *v, size_t n)
{
    double ss = 0.0;
    for (size_t i = 0; i < n; i++)
        ss += (double)v[i] * v[i];
    float inv = (float)(1.0 / fmax(sqrt(ss), 1e-12));
    for (size_t i = 0; i < n; i++)
        v[i] *= inv;
}
