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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "engine/context.h"
#include "engine/ops.h"
#include "inferno/kernels.h"
#include "inferno/threadpool.h"

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

/* Per-token work between the products, split over the pool's threads by token (inline for a
 * few tokens, where a dispatch would cost more than the work). */
struct tok_job {
    struct inf_context *ctx;
    const struct inf__layer *L;
    int il, n;
    const float *norm; /* add_norm: the RMS norm weight, NULL for the add alone */
};

static void run_tokens(struct inf_context *ctx, inf_task_fn fn, struct tok_job *job)
{
    if (job->n >= 4)
        inf_threadpool_run(ctx->pool, fn, job);
    else
        fn(job, 0, 1);
}

/* biases, Q/K norms, RoPE, and K, V into the cache */
static void qkv_post_task(void *arg, int ith, int nth)
{
    const struct tok_job *j = arg;
    struct inf_context *ctx = j->ctx;
    const struct inf_model *m = ctx->model;
    const struct inf__hparams *hp = &m->hp;
    const struct inf__layer *L = j->L;
    struct inf__scratch *s = &ctx->scratch;
    const int hd = hp->head_dim, nq = hp->n_head * hd, nkv = hp->n_head_kv * hd;
    const float *ff = m->rope_freqs.data ? (const float *)m->rope_freqs.data : NULL;
    float *cache = ctx->attn.ws[ith].rope;
    int64_t t0, t1;
    inf_split_rows(j->n, ith, nth, 1, &t0, &t1);
    for (int64_t t = t0; t < t1; t++) {
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
                inf__rms_norm(q + (size_t)h * hd, (const float *)L->q_norm.data, hd, hp->rms_eps,
                              q + (size_t)h * hd);
            for (int h = 0; h < hp->n_head_kv; h++)
                inf__rms_norm(k + (size_t)h * hd, (const float *)L->k_norm.data, hd, hp->rms_eps,
                              k + (size_t)h * hd);
        }
        rope_qk(hp, ff, q, k, ctx->b_pos[t], cache);
        inf__kv_store(ctx, j->il, ctx->b_cell[t], k, v);
    }
}

/* x += xn (unless il < 0: the first norm), then xn = rms_norm(x) * norm when norm is given */
static void add_norm_task(void *arg, int ith, int nth)
{
    const struct tok_job *j = arg;
    struct inf_context *ctx = j->ctx;
    const struct inf__hparams *hp = &ctx->model->hp;
    struct inf__scratch *s = &ctx->scratch;
    const int E = hp->n_embd;
    int64_t t0, t1;
    inf_split_rows(j->n, ith, nth, 1, &t0, &t1);
    for (int64_t t = t0; t < t1; t++) {
        float *x = s->x + (size_t)t * E, *xn = s->xn + (size_t)t * E;
        if (j->il >= 0)
            inf__add(x, xn, E);
        if (j->norm)
            inf__rms_norm(x, j->norm, E, hp->rms_eps, xn);
    }
}

/* the token embeddings into the residual stream */
static void embed(struct inf_context *ctx, int n, const inf_token *tokens)
{
    const int E = ctx->model->hp.n_embd;
    for (int t = 0; t < n; t++)
        inf__get_row(&ctx->model->tok_embd, tokens[t], ctx->scratch.x + (size_t)t * E);
}

/* ---- per-stage timers (INFERNO_PROFILE=1) ------------------------------------------------- */

/* Run stmt; with profiling on, add its wall time to stage st of the chunk's kind (gen). */
#define PROF(st, stmt)                                                                             \
    do {                                                                                           \
        const uint64_t t_ = ctx->prof.on ? inf__now_ns() : 0;                                      \
        stmt;                                                                                      \
        if (ctx->prof.on)                                                                          \
            ctx->prof.ns[gen][st] += inf__now_ns() - t_;                                           \
    } while (0)

void inf__prof_report(const struct inf_context *ctx)
{
    static const char *const names[INF__ST_COUNT] = {
        "embed", "qkv", "qkv_post", "attention", "wo", "norm", "gate_up", "down", "output"};
    const struct inf__prof *p = &ctx->prof;
    if (!p->on)
        return;
    for (int g = 0; g < 2; g++) {
        if (!p->chunks[g])
            continue;
        uint64_t total = 0;
        for (int i = 0; i < INF__ST_COUNT; i++)
            total += p->ns[g][i];
        fprintf(stderr, "profile: %s, %llu chunks, %llu tokens, %.3f ms per chunk\n",
                g ? "generation (1-token chunks)"
                  : "multi-token chunks (prompts, batched sequences)",
                (unsigned long long)p->chunks[g], (unsigned long long)p->tokens[g],
                (double)total / 1e6 / (double)p->chunks[g]);
        for (int i = 0; i < INF__ST_COUNT; i++)
            fprintf(stderr, "  %-10s %9.3f ms per chunk %5.1f %%\n", names[i],
                    (double)p->ns[g][i] / 1e6 / (double)p->chunks[g],
                    total ? 100.0 * (double)p->ns[g][i] / (double)total : 0.0);
    }
}

/* One chunk of at most n_batch tokens whose cells are already assigned in
 * ctx->b_cell. */
void inf__forward_chunk(struct inf_context *ctx, int n, const inf_token *tokens, int n_out,
                        const int *out_rows, float *logits_out)
{
    const struct inf_model *m = ctx->model;
    const struct inf__hparams *hp = &m->hp;
    const int E = hp->n_embd;
    struct inf__scratch *s = &ctx->scratch;

    const int gen = n == 1;
    if (ctx->prof.on) {
        ctx->prof.chunks[gen]++;
        ctx->prof.tokens[gen] += (uint64_t)n;
    }

    PROF(INF__ST_EMBED, embed(ctx, n, tokens));

    struct tok_job job = {
        .ctx = ctx, .n = n, .il = -1, .norm = (const float *)m->layers[0].attn_norm.data};
    PROF(INF__ST_NORM, run_tokens(ctx, add_norm_task, &job));
    for (int il = 0; il < hp->n_layer; il++) {
        const struct inf__layer *L = &m->layers[il];

        PROF(INF__ST_QKV, inf__matmul_qkv(ctx, L, s->xn, n, s->q, s->k, s->v));
        job.L = L;
        job.il = il;
        PROF(INF__ST_QKV_POST, run_tokens(ctx, qkv_post_task, &job));
        PROF(INF__ST_ATTN, inf__attention(ctx, il));
        PROF(INF__ST_WO, inf__matmul(ctx, &L->wo, s->attn, n, s->xn));
        job.norm = (const float *)L->ffn_norm.data;
        PROF(INF__ST_NORM, run_tokens(ctx, add_norm_task, &job));
        PROF(INF__ST_GATE_UP, inf__matmul_gate_up(ctx, L, s->xn, n, s->gate, s->up));
        PROF(INF__ST_DOWN, inf__matmul(ctx, &L->w_down, s->gate, n, s->xn));
        /* the residual, and the next layer's input norm (the last layer's is the output norm,
         * applied below to the wanted rows only) */
        job.norm = il + 1 < hp->n_layer ? (const float *)m->layers[il + 1].attn_norm.data : NULL;
        PROF(INF__ST_NORM, run_tokens(ctx, add_norm_task, &job));
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
        PROF(INF__ST_OUTPUT, inf__matmul(ctx, &m->output, s->xn, n_out, logits_out));
}
