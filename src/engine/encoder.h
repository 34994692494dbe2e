/*
 * encoder.h - encoder (embedding) models: bert and nomic-bert (internal).
 *
 * An encoder has no KV cache: every inf_decode call is one bidirectional pass over whole
 * sequences (the tokens of a sequence attend to each other, whatever their order in the batch),
 * and nothing is kept between calls. model.c hands an encoder GGUF to inf__enc_load; context.c
 * hands encoder contexts to inf__enc_context_new / inf__enc_decode (encoder.c).
 */
#ifndef INFERNO_ENGINE_ENCODER_H
#define INFERNO_ENGINE_ENCODER_H

#include "engine/internal.h"

/* Per-layer weights, GGUF names "blk.N.<name>" as llama.cpp writes them. */
struct inf__enc_layer {
    struct inf__tensor wq, wk, wv;   /* attn_q/k/v.weight [E] x [E] (bert) */
    struct inf__tensor bq, bk, bv;   /* attn_q/k/v.bias, optional */
    struct inf__tensor wqkv, bqkv;   /* attn_qkv.weight [E] x [3E] (nomic-bert), bias optional */
    struct inf__tensor wo, bo;       /* attn_output.weight / .bias (optional) */
    struct inf__tensor ln1_w, ln1_b; /* attn_output_norm.weight / .bias */
    struct inf__tensor up, up_b;     /* ffn_up.weight [E] x [F], bias optional */
    struct inf__tensor gate;         /* ffn_gate.weight (nomic-bert: SwiGLU) */
    struct inf__tensor down, down_b; /* ffn_down.weight [F] x [E], bias optional */
    struct inf__tensor ln2_w, ln2_b; /* layer_output_norm.weight / .bias */
};

struct inf__encoder {
    struct inf__tensor type_embd;            /* token_types.weight [E] x [n_types], optional */
    struct inf__tensor pos_embd;             /* position_embd.weight [E] x [n_ctx_train] (bert) */
    struct inf__tensor tok_norm, tok_norm_b; /* token_embd_norm.weight / .bias */
    /* rerankers' classification head (pooling rank): cls.weight [E] x [E] + cls.bias, tanh,
       cls.output.weight [E] x [n_cls_out] + cls.output.bias; each optional as in llama.cpp */
    struct inf__tensor cls_w, cls_b, cls_out_w, cls_out_b;
    int32_t n_cls_out;
    struct inf__enc_layer *layers;
    float norm_eps;           /* <arch>.attention.layer_norm_epsilon */
    bool causal;              /* <arch>.attention.causal (false for these models) */
    bool rope;                /* nomic-bert: RoPE (neox pairing) instead of position rows */
    enum inf_pooling pooling; /* <arch>.pooling_type (llama.cpp: 0 none, 1 mean, 2 cls, 3 last;
                                 undeclared: none) */
    int32_t n_token_types;    /* tokenizer.ggml.token_type_count */
};

/* True for the architectures encoder.c builds. */
bool inf__enc_arch(const char *arch);
/* Hyper-parameters and tensors of an encoder GGUF into m (m->hp, m->tok_embd, m->enc). */
inf_status inf__enc_load(struct inf_model *m, const char *arch, struct inf_error *err);
void inf__enc_free(struct inf_model *m);
/* The model's tensors, for the huge-page copy (at most cap). */
int inf__enc_tensors(struct inf_model *m, struct inf__tensor **out, int cap);

/* A context for an encoder model (no KV cache); freed by inf_context_free. */
inf_status inf__enc_context_new(struct inf_model *model, const struct inf_context_params *params,
                                struct inf_context **out, struct inf_error *err);
void inf__enc_context_free(struct inf_context *ctx);
inf_status inf__enc_decode(struct inf_context *ctx, const struct inf_batch *b,
                           struct inf_error *err);

#endif
