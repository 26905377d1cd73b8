/*
 * safetensors.c - a read-only, validated view of a .safetensors file.
 *
 * The file is mapped with mmap (PROT_READ, MAP_PRIVATE). The JSON header is
 * parsed with cJSON and every tensor entry is checked before st_open
 * returns, so that st_tensor.data .. data + nbytes always lies inside the
 * map: callers never need to re-check ranges.
 *
 * cJSON allocates with the C library's malloc (we install no cJSON hooks:
 * they are process-global and other modules use cJSON too). Everything this
 * file allocates itself goes through bg_malloc and friends.
 */
#include "safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host (safetensors data is little-endian)"
#endif

/* The safetensors reference implementation refuses headers over 100 MB. */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
/* Largest integer a JSON number (a double in cJSON) holds exactly. */
#define ST_MAX_JSON_INT 9007199254740992.0 /* 2^53 */

struct st_file {
    char *path;              /* for error messages */
    const unsigned char *map;
    size_t map_len;
    const unsigned char *data; /* start of the data block, map + 8 + header */
    size_t data_len;
    st_tensor *t;
    size_t n;
};

typedef struct dtype_info {
    const char *name;
    st_dtype dtype;
    size_t size;
} dtype_info;

/* Every dtype the safetensors format defines. Only F32/F16/BF16 convert. */
static const dtype_info DTYPES[] = {
    {"F32", ST_F32, 4},     {"F16", ST_F16, 2},     {"BF16", ST_BF16, 2},
    {"F64", ST_OTHER, 8},   {"I64", ST_OTHER, 8},   {"I32", ST_OTHER, 4},
    {"I16", ST_OTHER, 2},   {"I8", ST_OTHER, 1},    {"U64", ST_OTHER, 8},
    {"U32", ST_OTHER, 4},   {"U16", ST_OTHER, 2},   {"U8", ST_OTHER, 1},
    {"BOOL", ST_OTHER, 1},  {"F8_E4M3", ST_OTHER, 1}, {"F8_E5M2", ST_OTHER, 1},
};

static const dtype_info *dtype_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (strcmp(DTYPES[i].name, name) == 0)
            return &DTYPES[i];
    return NULL;
}

/* A JSON number that is a non-negative integer representable exactly. */
static int json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > ST_MAX_JSON_INT || floor(d) != d)
        return 0;
    *out = (uint64_t)d;
    return 1;
}

static void free_tensors(st_tensor *t, size_t n)
{
    if (!t)
        return;
    for (size_t i = 0; i < n; i++)
        bg_free(t[i].name);
    bg_free(t);
}

/* Validates one header entry and fills *t (name not set). */
static bgeicl_code parse_entry(const st_file *f, const cJSON *e, st_tensor *t, bg_err *err)
{
    const char *path = f->path, *name = e->string;
    if (!cJSON_IsObject(e))
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: tensor '%s': header entry is not an object",
                       path, name);

    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(dt) || !dt->valuestring)
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: tensor '%s': field 'dtype' is missing or not a string",
                       path, name);
    const dtype_info *di = dtype_lookup(dt->valuestring);
    if (!di)
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%.32s'", path, name,
                       dt->valuestring);
    t->dtype = di->dtype;
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", di->name);

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(shape))
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: tensor '%s': field 'shape' is missing or not an array",
                       path, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > 8)
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: tensor '%s': shape has %d dimensions (at most 8)",
                       path, name, ndim);
    t->ndim = ndim;
    uint64_t nbytes = di->size;
    int overflow = 0, k = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        uint64_t v;
        if (!json_uint(d, &v))
            return bg_fail(err, BGEICL_ERR_FORMAT,
                           "%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, k);
        t->shape[k++] = (int64_t)v;
        if (__builtin_mul_overflow(nbytes, v, &nbytes))
            overflow = 1;
    }
    if (overflow || nbytes > SIZE_MAX)
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: tensor '%s': shape is too large", path, name);

    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    uint64_t begin, end;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 ||
        !json_uint(cJSON_GetArrayItem(off, 0), &begin) ||
        !json_uint(cJSON_GetArrayItem(off, 1), &end))
        return bg_fail(err, BGEICL_ERR_FORMAT,
                       "%s: tensor '%s': field 'data_offsets' is missing or not [begin, end]", path,
                       name);
    if (begin > end)
        return bg_fail(err, BGEICL_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets [%llu, %llu] has begin > end", path, name,
                       (unsigned long long)begin, (unsigned long long)end);
    if (end > f->data_len)
        return bg_fail(err, BGEICL_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets [%llu, %llu] exceed the file's %zu data "
                       "bytes (truncated?)",
                       path, name, (unsigned long long)begin, (unsigned long long)end, f->data_len);
    if (end - begin != nbytes)
        return bg_fail(err, BGEICL_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets [%llu, %llu] span %llu bytes but dtype %s "
                       "and the shape need %llu",
                       path, name, (unsigned long long)begin, (unsigned long long)end,
                       (unsigned long long)(end - begin), di->name, (unsigned long long)nbytes);
    t->data = f->data + begin;
    t->nbytes = (size_t)nbytes;
    return BGEICL_OK;
}

static bgeicl_code parse_header(st_file *f, const char *json, size_t len, bg_err *err)
{
    const char *endp = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &endp, 0);
    if (!root) {
        size_t at = endp && endp >= json ? (size_t)(endp - json) : 0;
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: header is not valid JSON (near byte %zu of %zu)",
                       f->path, at, len);
    }
    bgeicl_code rc = BGEICL_OK;
    if (!cJSON_IsObject(root)) {
        rc = bg_fail(err, BGEICL_ERR_FORMAT, "%s: header is not a JSON object", f->path);
        goto out;
    }
    size_t n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (strcmp(e->string, "__metadata__") != 0)
            n++;
    }
    f->t = bg_calloc(n ? n : 1, sizeof *f->t);
    if (!f->t) {
        rc = bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory reading the header", f->path);
        goto out;
    }
    cJSON_ArrayForEach(e, root) {
        if (strcmp(e->string, "__metadata__") == 0)
            continue;
        st_tensor *t = &f->t[f->n];
        rc = parse_entry(f, e, t, err);
        if (rc != BGEICL_OK)
            goto out;
        t->name = bg_strdup(e->string);
        if (!t->name) {
            rc = bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory reading the header", f->path);
            goto out;
        }
        f->n++;
    }
out:
    cJSON_Delete(root);
    return rc;
}

bgeicl_code st_open(const char *path, st_file **out, bg_err *err)
{
    *out = NULL;
    bgeicl_code rc;
    st_file *f = bg_calloc(1, sizeof *f);
    if (!f)
        return bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory", path);
    f->path = bg_strdup(path);
    if (!f->path) {
        rc = bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory", path);
        goto err;
    }

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = bg_fail(err, BGEICL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto err;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = bg_fail(err, BGEICL_ERR_IO, "%s: not a regular file", path);
        close(fd);
        goto err;
    }
    if (st.st_size < 8) {
        rc = bg_fail(err, BGEICL_ERR_FORMAT,
                     "%s: file is %lld bytes, too short for the 8-byte header length (truncated?)",
                     path, (long long)st.st_size);
        close(fd);
        goto err;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        rc = bg_fail(err, BGEICL_ERR_IO, "%s: file too large to map", path);
        close(fd);
        goto err;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd); /* the mapping stays valid */
    if (map == MAP_FAILED) {
        rc = bg_fail(err, BGEICL_ERR_IO, "%s: cannot mmap: %s", path, strerror(map_errno));
        goto err;
    }
    f->map = map;
    f->map_len = (size_t)st.st_size;

    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | f->map[i];
    if (hlen == 0 || hlen > ST_MAX_HEADER || hlen > f->map_len - 8) {
        rc = bg_fail(err, BGEICL_ERR_FORMAT,
                     "%s: header length %llu is %s (file is %zu bytes%s)", path,
                     (unsigned long long)hlen,
                     hlen == 0 ? "zero" : hlen > f->map_len - 8 ? "larger than the file" : "too large",
                     f->map_len, hlen > f->map_len - 8 ? "; truncated?" : "");
        goto err;
    }
    f->data = f->map + 8 + hlen;
    f->data_len = f->map_len - 8 - (size_t)hlen;
    rc = parse_header(f, (const char *)f->map + 8, (size_t)hlen, err);
    if (rc != BGEICL_OK)
        goto err;
    *out = f;
    return BGEICL_OK;
err:
    st_close(f);
    return rc;
}

void st_close(st_file *f)
{
    if (!f)
        return;
    if (f->map)
        munmap((void *)f->map, f->map_len);
    free_tensors(f->t, f->n);
    bg_free(f->path);
    bg_free(f);
}

size_t st_count(const st_file *f) { return f->n; }

const st_tensor *st_at(const st_file *f, size_t i) { return i < f->n ? &f->t[i] : NULL; }

/* A linear scan: BERT checkpoints have ~100-400 tensors and model_load looks
 * up each once, so this costs well under a millisecond. Use a hash table if
 * this ever serves files with many thousands of tensors. */
const st_tensor *st_find(const st_file *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0)
            return &f->t[i];
    return NULL;
}

/* IEEE 754 binary16 -> binary32, exact for every input (subnormals, signed
 * zero, infinities; NaN payloads are kept in the high mantissa bits). */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {
            /* subnormal: man * 2^-24, exact in fp32 */
            float v = (float)man * 5.9604644775390625e-8f;
            memcpy(&bits, &v, 4);
            bits |= sign;
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Drops the map's pages that lie wholly inside t's bytes from this
 * process's resident set once they are converted: the copy is what the
 * model keeps, and a model read twice over would otherwise hold the file
 * resident beside it until st_close. The pages stay in the page cache and
 * a later read faults them back in, so this only trims memory. */
static void release_pages(const st_tensor *t)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)t->data + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)t->data + t->nbytes) & ~(page - 1);
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

bgeicl_code st_to_f32(const st_file *f, const st_tensor *t, float *dst, size_t count, bg_err *err)
{
    size_t esize = t->dtype == ST_F32 ? 4 : 2;
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16)
        return bg_fail(err, BGEICL_ERR_UNSUPPORTED,
                       "%s: tensor '%s' has dtype %s, which is not supported (F32, F16, BF16 only)",
                       f->path, t->name, t->dtype_name);
    if (count != t->nbytes / esize)
        return bg_fail(err, BGEICL_ERR_ARG, "%s: tensor '%s' has %zu elements, asked for %zu",
                       f->path, t->name, t->nbytes / esize, count);
    /* The data may sit at any byte offset in the map, so read bytes rather
     * than casting to float* / uint16_t*. */
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case ST_F32:
        memcpy(dst, p, count * 4);
        break;
    case ST_F16:
        for (size_t i = 0; i < count; i++)
            dst[i] = half_to_float((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        break;
    case ST_BF16:
        for (size_t i = 0; i < count; i++) {
            uint32_t bits = ((uint32_t)p[2 * i] << 16) | ((uint32_t)p[2 * i + 1] << 24);
            memcpy(&dst[i], &bits, 4);
        }
        break;
    default:
        break;
    }
    release_pages(t);
    return BGEICL_OK;
}
