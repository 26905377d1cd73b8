/*
 * engine.h - the forward pass of a BERT encoder over a packed batch.
 *
 * A batch of n token sequences is packed without padding into one
 * (T, hidden) activation matrix, T = sum of lengths. The dense layers run
 * as GEMMs over all T rows at once; attention runs per (sequence, head).
 * Scratch buffers are owned by the engine and grow only between passes, so
 * the pass itself does not allocate.
 */
#ifndef ENGINE_H
#define ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/kern.h"
#include "../model/model.h"

typedef struct engine engine;

/* The engine borrows `m`, which must outlive it. threads <= 0: all cores.
 * dtype: the linear layers' weights are packed for the table's
 * gemm_packed (FP32), converted to bf16 and packed for gemm_bf16_cols
 * (BF16) or quantized and packed for gemm_i8_cols (INT8); anything else
 * fails as UNSUPPORTED. Once packed, the model's own copy of a layer's
 * matrices is freed (model_drop_linear), so one model serves one engine,
 * and after a failed engine_create only model_free is safe. */
bgeicl_code engine_create(model *m, int threads, kern_isa isa, bgeicl_dtype dtype,
                          engine **out, bg_err *err);
void engine_free(engine *e);
int engine_threads(const engine *e);
const kern_ops *engine_kernels(const engine *e);

/* Runs the encoder over n sequences (each 1..max_seq_len ids, ids valid)
 * and writes the pooled vectors to out (n x hidden), L2-normalised when
 * `normalize` is set.
 * Not reentrant: callers serialise (bgeicl_embed holds a lock). */
bgeicl_code engine_forward(engine *e, const int32_t *const *ids, const size_t *lens, size_t n,
                           int normalize, float *out, bg_err *err);

#endif
