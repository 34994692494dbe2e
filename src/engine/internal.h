/*
 * internal.h - the engine's model and context structures (not part of the public API).
 *
 * Shapes use GGUF/ggml order: ne[0] is the length of a row (the input dimension of a weight
 * matrix), ne[1] the number of rows (its output dimension).
 */
#ifndef INFERNO_ENGINE_INTERNAL_H
#define INFERNO_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/engine.h"

enum inf__arch {
    INF_ARCH_LLAMA,
    INF_ARCH_QWEN2,
    INF_ARCH_QWEN3,
    /* encoders (encoder.h, encoder.c) */
    INF_ARCH_BERT,
    INF_ARCH_NOMIC_BERT,
};

enum inf__rope_pairing {
    INF_ROPE_ADJACENT, /* (x[2i], x[2i+1]): llama */
    INF_ROPE_NEOX,     /* (x[i], x[i + n_rot/2]): qwen2, qwen3 */
};

enum inf__rope_scaling {
    INF_ROPE_SCALING_NONE,
    INF_ROPE_SCALING_LINEAR,
    INF_ROPE_SCALING_YARN,
};

/* A weight tensor: a view into the mapped file. */
struct inf__tensor {
    int type; /* ggml type id */
    int64_t ne[4];
    const void *data;
    size_t row_bytes; /* bytes of one row of ne[0] elements */
};

struct inf__layer {
    struct inf__tensor attn_norm;      /* [n_embd] */
    struct inf__tensor wq, wk, wv, wo; /* [n_embd] x [n_head*head_dim] etc. */
    struct inf__tensor bq, bk, bv;     /* qwen2 biases, optional */
    struct inf__tensor q_norm, k_norm; /* qwen3 per-head norms [head_dim], optional */
    struct inf__tensor ffn_norm;       /* [n_embd] */
    struct inf__tensor w_gate, w_up;   /* [n_embd] x [n_ff] */
    struct inf__tensor w_down;         /* [n_ff] x [n_embd] */
};

struct inf__hparams {
    enum inf__arch arch;
    int32_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_rot;
    float rms_eps;
    float rope_base;
    enum inf__rope_pairing rope_pairing;
    enum inf__rope_scaling rope_scaling;
    float rope_freq_scale; /* 1 / scaling factor */
    int32_t rope_n_ctx_orig;
    float yarn_ext_factor, yarn_attn_factor, yarn_beta_fast, yarn_beta_slow;
};

struct inf_model {
    struct inf__hparams hp;
    struct inf_model_info info;
    struct inf_gguf *gguf;       /* owns the mapping */
    struct inf__tensor tok_embd; /* [n_embd] x [n_vocab] */
    struct inf__tensor output_norm;
    struct inf__tensor output;     /* tok_embd when tied */
    struct inf__tensor rope_freqs; /* [n_rot/2] frequency divisors (Llama 3), optional */
    struct inf__layer *layers;
    struct inf_tokenizer *tokenizer;
    char *chat_template;
    double load_ms;
    bool tied_output; /* output is tok_embd */
    void *anon;       /* the weights' copy in anonymous memory, when made */
    size_t anon_len;
    struct inf__encoder *enc; /* encoder models (bert, nomic-bert: encoder.h), else NULL */
};

#define INF__MAX_SEQ 64

struct inf__kv_cell {
    int32_t pos;  /* -1 when free */
    uint64_t seq; /* bit s set when sequence s holds this cell */
};

#endif
