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
    INF_ARCH_QWEN2MOE,
    INF_ARCH_QWEN3MOE,
    INF_ARCH_OLMOE,
    INF_ARCH_GEMMA2,
    INF_ARCH_GEMMA3,
    INF_ARCH_PHI3,
    INF_ARCH_GRANITE,
    INF_ARCH_GPTOSS,
    /* encoders (encoder.h, encoder.c) */
    INF_ARCH_BERT,
    INF_ARCH_NOMIC_BERT,
};

/* the feed-forward activation: SwiGLU (silu(gate) * up) or GeGLU (gelu_tanh(gate) * up) */
enum inf__ffn_act {
    INF_FFN_SILU,
    INF_FFN_GELU,
};

enum inf__rope_pairing {
    INF_ROPE_ADJACENT, /* (x[2i], x[2i+1]): llama */
    INF_ROPE_NEOX,     /* (x[i], x[i + n_rot/2]): qwen2, qwen3 */
};

enum inf__rope_scaling {
    INF_ROPE_SCALING_NONE,
    INF_ROPE_SCALING_LINEAR,
    INF_ROPE_SCALING_YARN,
    INF_ROPE_SCALING_LONGROPE, /* per-dimension factors (rope_factors_long/short), phi3 */
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
    struct inf__tensor w_gate, w_up;   /* [n_embd] x [n_ff]; views of a fused ffn_up (phi3) */
    struct inf__tensor w_down;         /* [n_ff] x [n_embd] */
    struct inf__tensor bo;             /* output projection bias [n_embd], optional (granite) */
    struct inf__tensor b_gate, b_up, b_down;          /* feed-forward biases, optional (granite) */
    struct inf__tensor attn_post_norm, ffn_post_norm; /* gemma2/3: norms of the branch outputs */
    /* mixture of experts: the router [n_embd] x [n_expert], and the experts' matrices stacked
     * along ne[2] ([n_embd] x [n_ff_exp] x [n_expert]; down [n_ff_exp] x [n_embd] x [n_expert]) */
    struct inf__tensor gate_inp, gate_exps, up_exps, down_exps;
    /* the shared expert (qwen2moe): a plain SwiGLU feed-forward scaled by
     * sigmoid(gate_inp_shexp . x) */
    struct inf__tensor gate_inp_shexp, gate_shexp, up_shexp, down_shexp;
    /* gpt-oss: router and expert biases ([n_expert]; [n_ff_exp] x [n_expert]; down
     * [n_embd] x [n_expert]), and per-head attention sinks [n_head] */
    struct inf__tensor gate_inp_b, gate_exps_b, up_exps_b, down_exps_b, attn_sinks;
    bool swa;          /* sliding-window layer */
    float rope_base;   /* this layer's RoPE base and frequency scale (gemma3: local layers */
    float rope_fscale; /* have their own) */
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
    enum inf__ffn_act act;
    float attn_scale;     /* multiplies q.k: 1/sqrt(head_dim) unless the model says otherwise */
    float attn_softcap;   /* gemma2: scores s -> c tanh(s / c); 0 = none */
    float final_softcap;  /* gemma2: logits likewise; 0 = none */
    float embd_scale;     /* token embeddings multiplied by this; 0 = none */
    float residual_scale; /* granite: branch outputs multiplied before the residual add; 0 = none */
    float logit_scale;    /* granite: logits divided by this; 0 = none */
    int32_t n_swa;        /* sliding window (a key at p0 is seen from p1 when p1 - p0 < n_swa) */
    bool has_swa;         /* some layer is a sliding-window layer */
    /* mixture of experts (n_expert == 0: dense) */
    int32_t n_expert, n_expert_used, n_ff_exp, n_ff_shexp;
    bool expert_norm_w;        /* the selected experts' weights renormalized to sum to 1 */
    bool expert_softmax_after; /* gpt-oss: top-k of the logits, then a softmax of those k */
    bool expert_oai_act;       /* gpt-oss: clamped SwiGLU, x sigmoid(1.702 x) (y + 1) */
    float expert_w_scale;      /* and multiplied by this (0 or 1: not) */
};

struct inf_model {
    struct inf__hparams hp;
    struct inf_model_info info;
    struct inf_gguf *gguf;       /* owns the mapping */
    struct inf__tensor tok_embd; /* [n_embd] x [n_vocab] */
    struct inf__tensor output_norm;
    struct inf__tensor output;                /* tok_embd when tied */
    struct inf__tensor rope_freqs;            /* [n_rot/2] frequency divisors (Llama 3), optional */
    struct inf__tensor rope_long, rope_short; /* LongRoPE factors (phi3), optional */
    struct inf__layer *layers;
    struct inf_tokenizer *tokenizer;
    char *chat_template;
    double load_ms;
    bool tied_output; /* output is tok_embd */
    void *anon;       /* the weights' copy in anonymous memory, when made */
    size_t anon_len;
    struct inf__encoder *enc; /* encoder models (bert, nomic-bert: encoder.h), else NULL */
};

struct inf_gguf;
struct inf_error;
/* A tensor of the file checked for shape and type (model.c; the loaders of model.c, encoder.c):
 * [ne0] when ne1 == 0 (F32 only), [ne0, ne1] when ne2 == 0, else [ne0, ne1, ne2]. */
inf_status inf__tensor_load(const struct inf_gguf *g, const char *name, int64_t ne0, int64_t ne1,
                            int64_t ne2, bool optional, struct inf__tensor *out,
                            struct inf_error *err);

#define INF__MAX_SEQ 64

struct inf__kv_cell {
    int32_t pos;  /* -1 when free */
    uint64_t seq; /* bit s set when sequence s holds this cell */
};

#endif
