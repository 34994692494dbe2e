/*
 * ops.h - the numeric operations the forward pass uses (internal). They route to the kernels
 * (type traits, SIMD dot products, thread pool) so the forward pass stays readable.
 */
#ifndef INFERNO_ENGINE_OPS_H
#define INFERNO_ENGINE_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/context.h"

/* Y[n][rows] = X[n][cols] · Wᵀ for a weight W of ne = {cols, rows}. */
void inf__matmul(struct inf_context *ctx, const struct inf__tensor *w, const float *x, int n,
                 float *y);
/* Row r of a (possibly quantized) matrix as floats. */
/* q, k, v = x Wq, x Wk, x Wv in one pass of the pool */
void inf__matmul_qkv(struct inf_context *ctx, const struct inf__layer *L, const float *x, int n,
                     float *q, float *k, float *v);
/* gate = x Wgate, up = x Wup (gate = silu(gate) * up with swiglu), in one pass of the pool */
void inf__matmul_gate_up(struct inf_context *ctx, const struct inf__layer *L, const float *x, int n,
                         float *gate, float *up, bool swiglu);
/* gate = x Wgate, up = x Wup in one pass (and gate = silu(gate) * up with swiglu) */
void inf__matmul_pair(struct inf_context *ctx, const struct inf__tensor *w_gate,
                      const struct inf__tensor *w_up, const float *x, int n, float *gate, float *up,
                      bool swiglu);
void inf__get_row(const struct inf__tensor *w, int64_t r, float *out);
void inf__rms_norm(const float *x, const float *weight, int n, float eps, float *out);
void inf__add(float *x, const float *y, int n);
/* gate[i] = silu(gate[i]) * up[i] */
void inf__swiglu(float *gate, const float *up, size_t n);
/* gate[i] = gelu_tanh(gate[i]) * up[i], rounded through fp16 as ggml's table does */
void inf__geglu(float *gate, const float *up, size_t n);

/* KV cache element access for the context's kv_type. */
void inf__kv_store(struct inf_context *ctx, int il, int32_t cell, const float *k, const float *v);
size_t inf__kv_row_bytes(enum inf_kv_type type, int n);
/* Where layer il keeps cell's K or V: the cell itself, or at sliding-window layers (with a
 * sliding-window cache) the cell's slot there. */
static inline int32_t inf__kv_index(const struct inf_context *ctx, int il, int32_t cell)
{
    return ctx->n_swa_cells && ctx->model->layers[il].swa ? ctx->swa_slot[cell] : cell;
}

/* The cache is head-major: per layer, KV head h's rows of all cells (or sliding-window slots)
 * one after another, so that attention reads one head's cells as one stream. idx comes from
 * inf__kv_index. */
static inline void *inf__kv_at(const struct inf_context *ctx, int il, void *base, int32_t idx,
                               int head)
{
    const size_t rows =
        ctx->n_swa_cells && ctx->model->layers[il].swa ? ctx->n_swa_cells : ctx->n_ctx;
    return (char *)base + ((size_t)head * rows + (size_t)idx) * ctx->kv_head_bytes;
}

/* Bytes the matrix products need for quantized activations of n rows of length cols. */
size_t inf__act_bytes(const struct inf_model *m, int n_rows_max);

#endif
