/* context.h - the context structure shared by the engine's files (internal). */
#ifndef INFERNO_ENGINE_CONTEXT_H
#define INFERNO_ENGINE_CONTEXT_H

#include "engine/internal.h"

struct inf_threadpool;

/* Per-chunk work buffers, sized for n_batch tokens at context creation. */
struct inf__scratch {
    float *x;          /* [n_batch][n_embd] residual stream */
    float *xn;         /* [n_batch][max(n_embd, n_head*head_dim)] normed input / projections */
    float *q;          /* [n_batch][n_head*head_dim] */
    float *k, *v;      /* [n_batch][n_head_kv*head_dim] */
    float *attn;       /* [n_batch][n_head*head_dim] */
    float *gate;       /* [n_batch][n_ff] */
    float *up;         /* [n_batch][n_ff] */
    float *scores;     /* [n_ctx] */
    float *rope_cache; /* [n_rot] */
    void *act;         /* quantized activations for the matrix products */
    size_t act_bytes;
    size_t total_bytes;
};

struct inf_context {
    struct inf_model *model;
    struct inf_context_params params;
    uint32_t n_ctx;
    struct inf__kv_cell *cells; /* [n_ctx] */
    int32_t *visible;           /* [n_ctx] scratch for attention */
    void **k_cache, **v_cache;  /* per layer: [n_ctx][n_head_kv*head_dim] of kv_type */
    size_t kv_row_bytes;
    size_t kv_bytes;
    struct inf__scratch scratch;
    struct inf_threadpool *pool;

    /* the chunk being processed */
    int32_t *b_pos, *b_seq, *b_cell; /* [n_batch] */

    /* outputs of the last inf_decode */
    float *logits;      /* [n_outputs][n_vocab] (or n_embd rows for embeddings) */
    size_t logits_cap;  /* rows */
    int32_t *out_index; /* [batch n_tokens] row of token i in logits, or -1 */
    size_t out_index_cap;
    int32_t n_outputs;
    float *embd_seq; /* [INF__MAX_SEQ][n_embd] pooled embeddings */
    uint64_t embd_seq_valid;

    struct inf_timings timings;
};

void inf__forward_chunk(struct inf_context *ctx, int n, const inf_token *tokens, int n_out,
                        const int *out_rows, float *logits_out);

#endif
