/*
 * safetensors.h - a read-only view of a .safetensors file, mapped with mmap.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {...}}
 * then the data block; offsets are relative to its start. st_open checks
 * that every tensor's byte range lies inside the file and matches
 * dtype size * product(shape), so later reads cannot run off the map.
 */
#ifndef SAFETENSORS_H
#define SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../util/util.h"

typedef enum st_dtype { ST_F32, ST_F16, ST_BF16, ST_OTHER } st_dtype;

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    char dtype_name[16];
    int ndim;
    int64_t shape[8];
    const void *data;   /* points into the map */
    size_t nbytes;
} st_tensor;

typedef struct st_file st_file;

bgeicl_code st_open(const char *path, st_file **out, bg_err *err);
void st_close(st_file *f);
size_t st_count(const st_file *f);
const st_tensor *st_at(const st_file *f, size_t i);
const st_tensor *st_find(const st_file *f, const char *name);
/* Converts a F32/F16/BF16 tensor's elements to fp32 into dst (count floats). */
bgeicl_code st_to_f32(const st_file *f, const st_tensor *t, float *dst, size_t count, bg_err *err);

#endif
