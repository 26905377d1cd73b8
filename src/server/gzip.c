/*
 * gzip.c - gzip bodies in and out of the server (see gzip.h).
 */
#include <string.h>
#include <zlib.h>

#include "../util/util.h"
#include "gzip.h"

#define GZIP_WINDOW (15 + 16)      /* gzip framing, 32 KiB window */
#define AUTO_WINDOW (15 + 32)      /* gzip or zlib, detected from the header */
#define RESPONSE_LEVEL 1

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    char *p = bg_realloc(*buf, c);
    if (!p)
        return -1;
    *buf = p;
    *cap = c;
    return 0;
}

int gz_inflate(const char *in, size_t n, size_t limit, char **out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, AUTO_WINDOW) != Z_OK)
        return GZ_NOMEM;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    int rc = GZ_OK;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n; /* bodies are bounded by the payload limit, far below 4 GiB */
    for (;;) {
        if (grow(&buf, &cap, len + 16384 + 1) != 0) {
            rc = GZ_NOMEM;
            break;
        }
        z.next_out = (Bytef *)buf + len;
        z.avail_out = (uInt)(cap - len - 1);
        int zr = inflate(&z, Z_NO_FLUSH);
        len = cap - 1 - z.avail_out;
        if (len > limit) {
            rc = GZ_TOO_LARGE;
            break;
        }
        if (zr == Z_STREAM_END) {
            if (z.avail_in == 0)
                break;
            inflateReset(&z); /* another gzip member follows */
            continue;
        }
        if (zr == Z_OK)
            continue;
        /* Z_BUF_ERROR with input left cannot happen (output always has room);
         * with no input left the stream was truncated. */
        rc = zr == Z_MEM_ERROR ? GZ_NOMEM : GZ_BAD_DATA;
        break;
    }
    inflateEnd(&z);
    if (rc != GZ_OK) {
        bg_free(buf);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return GZ_OK;
}

int gz_deflate(const char *in, size_t n, char **out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, RESPONSE_LEVEL, Z_DEFLATED, GZIP_WINDOW, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return GZ_NOMEM;
    size_t cap = deflateBound(&z, (uLong)n);
    char *buf = bg_malloc(cap);
    if (!buf) {
        deflateEnd(&z);
        return GZ_NOMEM;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)buf;
    z.avail_out = (uInt)cap;
    int zr = deflate(&z, Z_FINISH); /* deflateBound guarantees one call suffices */
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    if (zr != Z_STREAM_END) {
        bg_free(buf);
        return GZ_NOMEM;
    }
    *out = buf;
    *out_len = len;
    return GZ_OK;
}
