/*
 * util.h - small shared pieces: errors, allocation with fault injection,
 * whole-file reads, timing.
 *
 * Every allocation in libbgeicl goes through bg_malloc/bg_calloc/bg_realloc
 * so that tests can make the Nth allocation fail (bg_fail_after) and check
 * that each error path cleans up and reports BGEICL_ERR_NOMEM.
 */
#ifndef BG_UTIL_H
#define BG_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "bgeicl.h"

typedef bgeicl_error bg_err;

/* Fills err (if not NULL) with code and a printf-style message; returns code. */
bgeicl_code bg_fail(bg_err *err, bgeicl_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void bg_err_clear(bg_err *err);

/* Allocation. Failures return NULL like malloc; callers report NOMEM. */
void *bg_malloc(size_t n);
void *bg_calloc(size_t count, size_t size);
void *bg_realloc(void *p, size_t n);
void bg_free(void *p);
char *bg_strdup(const char *s);
/* 64-byte aligned allocation, freed with bg_free_aligned. */
void *bg_malloc_aligned(size_t n);
void bg_free_aligned(void *p);

/* Fault injection (tests only): after `n` more successful allocations, every
 * allocation fails until bg_fail_after(-1) is called. */
void bg_fail_after(long n);
/* Number of allocations made so far (for sizing fault-injection loops). */
unsigned long bg_alloc_count(void);

/* Reads a whole file into a NUL-terminated buffer. */
bgeicl_code bg_read_file(const char *path, char **data, size_t *len, bg_err *err);
/* Joins dir and name with '/'. Returns NULL on allocation failure. */
char *bg_path_join(const char *dir, const char *name);
int bg_file_exists(const char *path);
int bg_dir_exists(const char *path);

/* Monotonic clock in milliseconds. */
double bg_now_ms(void);

/* Number of online CPU cores, at least 1. */
int bg_cpu_count(void);

/* Scales v[0..n) to unit L2 norm, as sentence-transformers' Normalize does:
 * the norm is summed in double and clamped below at 1e-12. */
void bg_l2_normalize(float *v, size_t n);

/* Validates UTF-8 (no overlongs, no surrogates, max U+10FFFF). Returns 1 if valid. */
int bg_utf8_valid(const char *s, size_t len);

#endif
