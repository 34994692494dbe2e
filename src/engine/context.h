/* context.h - the context structure shared by the engine's files (internal). */
#ifndef INFERNO_ENGINE_CONTEXT_H
#define INFERNO_ENGINE_CONTEXT_H

#include "engine/internal.h"

struct inf_threadpool;

/* Per-chunk work buffers, sized for n_batch tokens at context creation. */
struct inf__scratch {
    float *x;     /* [n_batch][n_embd] residual stream */
    float *xn;    /* [n_batch][max(n_embd, n_head*head_dim)] normed input / projections */
    float *q;     /* [n_batch][n_head*head_dim] */
    float *k, *v; /* [n_batch][n_head_kv*head_dim] */
    float *attn;  /* [n_batch][n_head*head_dim] */
    float *gate;  /* [n_batch][n_ff] */
    float *up;    /* [n_batch][n_ff] */
    /* mixture of experts (NULL for dense models) */
    float *router;  /* [n_batch][n_expert] the router's probabilities */
    int32_t *sel;   /* [n_batch][n_expert_used] the selected experts, best first */
    float *sel_w;   /* [n_batch][n_expert_used] their weights */
    int32_t *rows;  /* [n_batch * n_expert_used] (token * n_expert_used + slot) per expert */
    float *moe_in;  /* [n_batch][n_embd] the rows routed to one expert */
    float *moe_out; /* [n_batch][n_expert_used][n_embd] each slot's expert output */
    float *shexp;   /* [n_batch][n_embd] the shared expert's output */
    void *moe_act;  /* one token's activations and its experts' hidden vectors, quantized */
    size_t moe_act_stride;
    void *act; /* quantized activations for the matrix products */
    size_t act_bytes;
    size_t total_bytes;
};

/* The attention plan of the chunk being processed (attention.c). */
struct inf__attn_item {
    int64_t key0;        /* first of its group's sorted cells in keys */
    int32_t tok0, n_tok; /* its tokens: tok[tok0 .. tok0 + n_tok) */
    int32_t max_vis;     /* the most cells any of them sees */
    int32_t min_first;   /* at sliding-window layers: the first cell any of them sees, */
    int32_t max_first;   /* and the last of their first cells */
};
struct inf__attn_ws { /* per thread */
    float *kt, *vt;   /* [INF_ATTN_TILE][head_dim] */
    float *ktt;       /* [head_dim][INF_ATTN_TILE]: kt transposed */
    float *m, *l;     /* [rows_max] */
    int *nv;          /* [rows_max] */
    float *rope;      /* [n_rot + 2]: this thread's RoPE cos/sin (forward.c) */
    float *sc;        /* [group][INF_ATTN_TILE]: one token's scores (the general path) */
    const float **q;  /* [rows_max] */
    float **acc;      /* [rows_max] */
};
struct inf__attn {
    uint64_t *keys; /* per group: (position << 32 | cell) of its visible cells, sorted */
    size_t keys_cap;
    int32_t *tok;  /* [n_batch] the chunk's tokens grouped by sequence */
    int32_t *nvis; /* [n_batch] cells seen by token t: a prefix of its group's keys */
    struct inf__attn_item *items; /* [n_batch] */
    int32_t *first;               /* [n_batch] first key token t sees at a sliding-window layer */
    int n_items, qb, rows_max, n_threads;
    struct inf__attn_ws *ws; /* [n_threads] */
};

/* Per-stage wall time of the forward pass (INFERNO_PROFILE=1; printed when the context is freed).
 * Single-token chunks (generation) and larger chunks (prompts, or several sequences decoded
 * together) are kept apart. */
enum inf__stage {
    INF__ST_EMBED,
    INF__ST_QKV,
    INF__ST_QKV_POST,
    INF__ST_ATTN,
    INF__ST_WO,
    INF__ST_NORM,
    INF__ST_FFN,
    INF__ST_OUTPUT,
    INF__ST_COUNT
};
struct inf__prof {
    bool on;
    uint64_t ns[2][INF__ST_COUNT];
    uint64_t chunks[2], tokens[2];
};

struct inf_context {
    struct inf_model *model;
    struct inf_context_params params;
    uint32_t n_ctx;
    struct inf__kv_cell *cells; /* [n_ctx] */
    void **k_cache, **v_cache;  /* per layer: [n_head_kv][n_ctx][head_dim] of kv_type */
    size_t kv_head_bytes;       /* one head of one cell */
    size_t kv_bytes;
    /* Sliding-window layers keep K and V in a smaller cache of n_swa_cells slots (0: no such
     * cache, every layer uses the cells): a cell gets a slot when it is filled, and gives it back
     * when no sequence holding it can see it any more, or when it is freed. */
    uint32_t n_swa_cells;
    int32_t *swa_slot; /* [n_ctx] the cell's slot, or -1 */
    int32_t *swa_cell; /* [n_swa_cells] the slot's cell, or -1 */
    uint32_t swa_cursor;
    struct inf__scratch scratch;
    const float *rope_ff; /* RoPE frequency factors: Llama 3's, or phi3's long or short ones */
    struct inf__attn attn;
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
    struct inf__prof prof;
    /* INFERNO_DUMP: where each chunk's intermediate rows are written under llama.cpp's graph
     * names (forward.c, scripts/parity/layer_diff.py), or NULL */
    char *dump_dir;
    struct inf__enc_ctx *enc; /* encoder models' pass state (encoder.c), else NULL */
};

inf_status inf__attn_init(struct inf_context *ctx, struct inf_error *err);
void inf__attn_free(struct inf_context *ctx);
/* Plan the attention of the n tokens in b_seq/b_pos (their cells already assigned). */
inf_status inf__attn_plan(struct inf_context *ctx, int n, struct inf_error *err);
/* Attention of the planned tokens at layer il: s->q, the cache -> s->attn. */
void inf__attention(struct inf_context *ctx, int il);

/* The per-stage table of ctx->prof on stderr (nothing when profiling is off). */
void inf__prof_report(const struct inf_context *ctx);

void inf__forward_chunk(struct inf_context *ctx, int n, const inf_token *tokens, int n_out,
                        const int *out_rows, float *logits_out);

#endif
