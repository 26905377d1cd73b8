/*
 * gzip.h - gzip bodies in and out of the server, over zlib.
 *
 * Request bodies are inflated with a hard cap on the output, so a small
 * compressed body cannot expand past the payload limit (a "gzip bomb"):
 * inflation stops as soon as the cap is crossed. Response bodies are
 * deflated at a low level: the CPU they would cost is better spent on
 * inference, and JSON floats compress well even then.
 */
#ifndef SRV_GZIP_H
#define SRV_GZIP_H

#include <stddef.h>

enum { GZ_OK = 0, GZ_BAD_DATA = 1, GZ_TOO_LARGE = 2, GZ_NOMEM = 3 };

/* Inflates a gzip (or zlib) stream of n bytes into a bg_malloc'd,
 * NUL-terminated buffer of at most `limit` bytes. Concatenated gzip members
 * are accepted (RFC 1952). Returns GZ_*; *out is set only on GZ_OK. */
int gz_inflate(const char *in, size_t n, size_t limit, char **out, size_t *out_len);

/* Deflates n bytes into a bg_malloc'd gzip stream. Returns GZ_OK or GZ_NOMEM. */
int gz_deflate(const char *in, size_t n, char **out, size_t *out_len);

#endif
