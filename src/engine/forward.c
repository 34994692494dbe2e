/*
 * forward.c - the transformer forward pass for llama-family models over a batch
 * of tokens from any number of sequences, with the KV cache of the context.
 *
 * Per layer: RMS norm -> Q, K, V projections (+ biases for qwen2) -> per-head
 * RMS norm of Q and K (qwen3) -> RoPE -> K and V stored in the cache cells of
 * the batch -> attention of each token over the cells of its own sequence at
 * positions <= its own -> output projection + residual -> RMS norm -> SwiGLU
 * feed-forward + residual. Then the final norm and the output matrix for the
 * tokens whose logits are wanted.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/context.h"
#include "engine/ops.h"
#include "inferno/kernels.h"

/* Rotate Q (n_head heads) and K (n_head_kv heads) of one token at position pos: the cos/sin
 * cache is built once and used for both. */
static void rope_qk(const struct inf__hparams *hp, const float *freq_factors, float *q, float *k,
                    int32_t pos, float *cache)
{
    struct inf_rope_params p = {
        .n_rot = hp->n_rot,
        .freq_base = hp->rope_base,
        .freq_scale = hp->rope_freq_scale,
        .freq_factors = freq_factors,
        .n_ctx_orig = hp->rope_n_ctx_orig,
        .ext_factor = hp->yarn_ext_factor,
        .attn_factor = hp->yarn_attn_factor,
        .beta_fast = hp->yarn_beta_fast,
        .beta_slow = hp->yarn_beta_slow,
    };
    enum inf_rope_mode mode =
        hp->rope_pairing == INF_ROPE_NEOX ? INF_ROPE_MODE_NEOX : INF_ROPE_MODE_NORM;
    inf_rope_cache(&p, pos, cache);
    inf_rope(mode, q, hp->n_head, hp->head_dim, hp->n_rot, cache);
    inf_rope(mode, k, hp->n_head_kv, hp->head_dim, hp->n_rot, cache);
}

/* One chunk of at most n_batch tokens whose cells are already assigned in
 * ctx->b_cell. */
void inf__forward_chunk(struct inf_context *ctx, int n, const inf_token *tokens, int n_out,
                        const int *out_rows, float *logits_out)
{
    const struct inf_model *m = ctx->model;
    const struct inf__hparams *hp = &m->hp;
    const int E = hp->n_embd, hd = hp->head_dim;
    const int nq = hp->n_head * hd, nkv = hp->n_head_kv * hd;
    struct inf__scratch *s = &ctx->scratch;

    for (int t = 0; t < n; t++)
        inf__get_row(&m->tok_embd, tokens[t], s->x + (size_t)t * E);

    for (int il = 0; il < hp->n_layer; il++) {
        const struct inf__layer *L = &m->layers[il];

        for (int t = 0; t < n; t++)
            inf__rms_norm(s->x + (size_t)t * E, (const float *)L->attn_norm.data, E, hp->rms_eps,
                          s->xn + (size_t)t * E);
        inf__matmul_qkv(ctx, L, s->xn, n, s->q, s->k, s->v);
        for (int t = 0; t < n; t++) {
            float *q = s->q + (size_t)t * nq, *k = s->k + (size_t)t * nkv;
            float *v = s->v + (size_t)t * nkv;
            if (L->bq.data)
                inf__add(q, (const float *)L->bq.data, nq);
            if (L->bk.data)
                inf__add(k, (const float *)L->bk.data, nkv);
            if (L->bv.data)
                inf__add(v, (const float *)L->bv.data, nkv);
            if (L->q_norm.data) {
                for (int h = 0; h < hp->n_head; h++)
                    inf__rms_norm(q + (size_t)h * hd, (const float *)L->q_norm.data, hd,
                                  hp->rms_eps, q + (size_t)h * hd);
                for (int h = 0; h < hp->n_head_kv; h++)
                    inf__rms_norm(k + (size_t)h * hd, (const float *)L->k_norm.data, hd,
                                  hp->rms_eps, k + (size_t)h * hd);
            }
            const float *ff = m->rope_freqs.data ? (const float *)m->rope_freqs.data : NULL;
            rope_qk(hp, ff, q, k, ctx->b_pos[t], s->rope_cache);
            inf__kv_store(ctx, il, ctx->b_cell[t], k, v);
        }
        inf__attention(ctx, il);
        inf__matmul(ctx, &L->wo, s->attn, n, s->xn);
        for (int t = 0; t < n; t++)
            inf__add(s->x + (size_t)t * E, s->xn + (size_t)t * E, E);

        for (int t = 0; t < n; t++)
            inf__rms_norm(s->x + (size_t)t * E, (const float *)L->ffn_norm.data, E, hp->rms_eps,
                          s->xn + (size_t)t * E);
        inf__matmul_gate_up(ctx, L, s->xn, n, s->gate, s->up);
        inf__matmul(ctx, &L->w_down, s->gate, n, s->xn);
        for (int t = 0; t < n; t++)
            inf__add(s->x + (size_t)t * E, s->xn + (size_t)t * E, E);
    }

    /* final norm of the rows that are wanted, gathered, then the output matrix */
    for (int i = 0; i < n_out; i++)
        inf__rms_norm(s->x + (size_t)out_rows[i] * E, (const float *)m->output_norm.data, E,
                      hp->rms_eps, s->xn + (size_t)i * E);
    if (ctx->params.embeddings) {
        for (int i = 0; i < n_out; i++)
            memcpy(logits_out + (size_t)i * E, s->xn + (size_t)i * E, (size_t)E * sizeof(float));
        return;
    }
    if (n_out)
        inf__matmul(ctx, &m->output, s->xn, n_out, logits_out);
}
