/*
 * forward.c - the transformer forward pass for llama-family models over a batch
 * of tokens from any number of sequences, with the KV cache of the context.
 *
 * Per layer: RMS norm -> Q, K, V projections (+ biases for qwen2) -> per-head
 * RMS norm of Q and K (qwen3, gemma3) -> RoPE -> K and V stored in the cache cells of
 * the batch -> attention of each token over the cells of its own sequence at
 * positions <= its own (and within the window at sliding-window layers) -> output
 * projection (+ post-norm for gemma, x residual_scale for granite) + residual -> RMS
 * norm -> SwiGLU or GeGLU feed-forward, or the selected experts of a mixture (+ the
 * shared expert) -> (post-norm) + residual. Then the final norm and the output matrix
 * for the tokens whose logits are wanted (soft-capped for gemma2, scaled for granite).
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
#include "inferno/log.h"
#include "inferno/threadpool.h"

/*
 * INFERNO_DUMP=DIR (debugging parity): the chunk's intermediate rows, each as DIR/NAME-LAYER.bin
 * (n rows of floats; the router's choices as int32), named as llama.cpp's graph names the same
 * values so that scripts/parity/layer_diff.py can set them beside scripts/parity/llama-dump.cpp's
 * files and show the first operation where the two part. Every chunk overwrites the last one's.
 */
static void dump(const struct inf_context *ctx, const char *name, int il, const void *p,
                 size_t bytes)
{
    if (!ctx->dump_dir)
        return;
    char path[4096];
    const int k = il >= 0 ? snprintf(path, sizeof(path), "%s/%s-%d.bin", ctx->dump_dir, name, il)
                          : snprintf(path, sizeof(path), "%s/%s.bin", ctx->dump_dir, name);
    FILE *f = k > 0 && (size_t)k < sizeof(path) ? fopen(path, "wb") : NULL;
    if (!f) {
        INF_LOG_WARN("engine", "INFERNO_DUMP: cannot write %s", path);
        return;
    }
    if (fwrite(p, 1, bytes, f) != bytes)
        INF_LOG_WARN("engine", "INFERNO_DUMP: short write to %s", path);
    fclose(f);
}

/* Rotate Q (n_head heads) and K (n_head_kv heads) of one token at position pos: the cos/sin
 * cache is built once and used for both. */
static void rope_qk(const struct inf__hparams *hp, const struct inf__layer *L,
                    const float *freq_factors, float *q, float *k, int32_t pos, float *cache)
{
    struct inf_rope_params p = {
        .n_rot = hp->n_rot,
        .freq_base = L->rope_base,
        .freq_scale = L->rope_fscale,
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
    const float *post; /* add_norm: a norm of the branch output before the add (gemma) */
    const float *bias; /* add_norm: a bias of the branch output (granite's attention output) */
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
    const float *ff = ctx->rope_ff;
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
        if (L->q_norm.data && L->q_norm.ne[0] != hd) {
            /* olmoe: one norm over all heads */
            inf__rms_norm(q, (const float *)L->q_norm.data, nq, hp->rms_eps, q);
            inf__rms_norm(k, (const float *)L->k_norm.data, nkv, hp->rms_eps, k);
        } else if (L->q_norm.data) {
            for (int h = 0; h < hp->n_head; h++)
                inf__rms_norm(q + (size_t)h * hd, (const float *)L->q_norm.data, hd, hp->rms_eps,
                              q + (size_t)h * hd);
            for (int h = 0; h < hp->n_head_kv; h++)
                inf__rms_norm(k + (size_t)h * hd, (const float *)L->k_norm.data, hd, hp->rms_eps,
                              k + (size_t)h * hd);
        }
        rope_qk(hp, L, ff, q, k, ctx->b_pos[t], cache);
        inf__kv_store(ctx, j->il, ctx->b_cell[t], k, v);
    }
}

/* x += f(xn) (unless il < 0: the first norm), then xn = rms_norm(x) * norm when norm is given;
 * f adds the bias, applies the post-norm, scales by residual_scale, as the model has them */
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
        if (j->il >= 0) {
            if (j->bias)
                inf__add(xn, j->bias, E);
            if (j->post)
                inf__rms_norm(xn, j->post, E, hp->rms_eps, xn);
            if (hp->residual_scale != 0.0f)
                inf_scale(E, xn, hp->residual_scale);
            inf__add(x, xn, E);
        }
        if (j->norm)
            inf__rms_norm(x, j->norm, E, hp->rms_eps, xn);
    }
}

/* the feed-forward activation over the chunk's rows when it is not fused into the product:
 * biases of gate and up, then SwiGLU or GeGLU into gate */
static void ffn_act_task(void *arg, int ith, int nth)
{
    const struct tok_job *j = arg;
    struct inf_context *ctx = j->ctx;
    const struct inf__hparams *hp = &ctx->model->hp;
    const struct inf__layer *L = j->L;
    struct inf__scratch *s = &ctx->scratch;
    const int F = (int)L->w_gate.ne[1];
    int64_t t0, t1;
    inf_split_rows(j->n, ith, nth, 1, &t0, &t1);
    for (int64_t t = t0; t < t1; t++) {
        float *g = s->gate + (size_t)t * F, *u = s->up + (size_t)t * F;
        if (L->b_gate.data)
            inf__add(g, (const float *)L->b_gate.data, F);
        if (L->b_up.data)
            inf__add(u, (const float *)L->b_up.data, F);
        if (hp->act == INF_FFN_GELU)
            inf__geglu(g, u, (size_t)F);
        else
            inf__swiglu(g, u, (size_t)F);
    }
}

/* the dense feed-forward of the rows in s->xn, into s->xn */
static void ffn_dense(struct inf_context *ctx, const struct inf__layer *L, int n)
{
    struct inf__scratch *s = &ctx->scratch;
    const bool fused = ctx->model->hp.act == INF_FFN_SILU && !L->b_gate.data && !L->b_up.data;
    inf__matmul_gate_up(ctx, L, s->xn, n, s->gate, s->up, fused);
    if (!fused) {
        struct tok_job job = {.ctx = ctx, .L = L, .n = n};
        run_tokens(ctx, ffn_act_task, &job);
    }
    inf__matmul(ctx, &L->w_down, s->gate, n, s->xn);
    if (L->b_down.data)
        for (int t = 0; t < n; t++)
            inf__add(s->xn + (size_t)t * L->w_down.ne[1], (const float *)L->b_down.data,
                     (int)L->w_down.ne[1]);
}

/* Expert e's matrix of a stack of n_expert matrices. */
static struct inf__tensor expert_view(const struct inf__tensor *t, int e)
{
    struct inf__tensor v = *t;
    v.ne[2] = 1;
    v.data = (const char *)t->data + (size_t)e * (size_t)t->ne[1] * t->row_bytes;
    return v;
}

/* The k largest of p[0..n), best first (ties to the lower index), and their values. */
static void top_k(const float *p, int n, int k, int32_t *sel, float *w)
{
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int e = 0; e < n; e++) {
            bool taken = false;
            for (int i = 0; i < j && !taken; i++)
                taken = sel[i] == e;
            if (!taken && (best < 0 || p[e] > p[best]))
                best = e;
        }
        sel[j] = best;
        w[j] = p[best];
    }
}

/* p = softmax(p) over n values as ggml computes it (the sum in double, one scale) */
static void softmax(float *p, int n)
{
    float mx = -INFINITY;
    for (int e = 0; e < n; e++)
        mx = p[e] > mx ? p[e] : mx;
    double sum = 0.0;
    for (int e = 0; e < n; e++) {
        p[e] = expf(p[e] - mx);
        sum += (double)p[e];
    }
    const float inv = (float)(1.0 / sum);
    for (int e = 0; e < n; e++)
        p[e] *= inv;
}

/* The router of one token as llama.cpp computes it: the softmax of its logits (p), the
 * n_used most probable experts best first (ties to the lower index) and their probabilities,
 * renormalized to sum 1 (clamped away from 0) where the model says so; gpt-oss instead takes
 * the k largest logits and the softmax of those k. Then the model's weight scale. */
static void route(const struct inf__hparams *hp, float *p, int32_t *sel, float *w)
{
    const int X = hp->n_expert, K = hp->n_expert_used;
    if (hp->expert_softmax_after) {
        top_k(p, X, K, sel, w);
        softmax(w, K);
    } else {
        softmax(p, X);
        top_k(p, X, K, sel, w);
    }
    if (hp->expert_norm_w) {
        float total = 0.0f;
        for (int j = 0; j < K; j++)
            total += w[j];
        if (total < 6.103515625e-5f)
            total = 6.103515625e-5f;
        for (int j = 0; j < K; j++)
            w[j] /= total;
    }
    if (hp->expert_w_scale != 0.0f && hp->expert_w_scale != 1.0f)
        for (int j = 0; j < K; j++)
            w[j] *= hp->expert_w_scale;
}

/* The activation of expert e's gate and up rows [r0, r1) of one token: the experts' biases
 * (gpt-oss), then SwiGLU, or gpt-oss's clamped form x sigmoid(1.702 x) (y + 1) with
 * x = min(gate, 7), y = clamp(up, -7, 7), into g. */
static void expert_act(const struct inf__hparams *hp, const struct inf__layer *L, int e, float *g,
                       float *u, int64_t r0, int64_t r1)
{
    const size_t FX = (size_t)hp->n_ff_exp;
    if (L->gate_exps_b.data) {
        const float *b = (const float *)L->gate_exps_b.data + (size_t)e * FX;
        for (int64_t r = r0; r < r1; r++)
            g[r] += b[r];
    }
    if (L->up_exps_b.data) {
        const float *b = (const float *)L->up_exps_b.data + (size_t)e * FX;
        for (int64_t r = r0; r < r1; r++)
            u[r] += b[r];
    }
    if (!hp->expert_oai_act) {
        inf_swiglu(r1 - r0, g + r0, u + r0);
        return;
    }
    for (int64_t r = r0; r < r1; r++) {
        const float x = g[r] < 7.0f ? g[r] : 7.0f;
        const float y = u[r] < -7.0f ? -7.0f : u[r] > 7.0f ? 7.0f : u[r];
        g[r] = x / (1.0f + expf(1.702f * -x)) * (y + 1.0f);
    }
}

/* Expert e's down bias added to rows [r0, r1) of its output (gpt-oss). */
static void expert_down_bias(const struct inf__hparams *hp, const struct inf__layer *L, int e,
                             float *y, int64_t r0, int64_t r1)
{
    if (!L->down_exps_b.data)
        return;
    const float *b = (const float *)L->down_exps_b.data + (size_t)e * (size_t)hp->n_embd;
    for (int64_t r = r0; r < r1; r++)
        y[r] += b[r];
}

/* One token's experts in a single pass of the pool (generation): the token's activations are
 * quantized once; the threads share out the gate and up rows of all selected experts (SwiGLU on
 * each finished chunk), quantize the experts' hidden vectors, and share out the down rows.
 * One dispatch instead of two per expert. */
struct moe_job {
    struct inf_context *ctx;
    const struct inf__layer *L;
    const int32_t *sel; /* [K] */
    const void *xact;   /* the token, quantized for the gate/up type */
    char *hact;         /* [K] hidden vectors quantized for the down type */
    size_t hstride;
    float *gate, *up; /* [K][FX] */
    float *out;       /* [K][E] */
    struct inf_chunker c1, c2;
    int64_t chunk_gu, chunk_d, units_gu, units_d; /* rows per unit of work */
};

static void moe_decode_task(void *arg, int ith, int nth)
{
    struct moe_job *j = arg;
    const struct inf__hparams *hp = &j->ctx->model->hp;
    const struct inf__layer *L = j->L;
    const int E = hp->n_embd, FX = hp->n_ff_exp, K = hp->n_expert_used;
    const int64_t cg = j->chunk_gu, cd = j->chunk_d;
    const int64_t per_gu = (FX + cg - 1) / cg, per_d = (E + cd - 1) / cd;
    for (;;) {
        const int64_t u = inf_chunker_next(&j->c1, 1);
        if (u >= j->units_gu)
            break;
        const int slot = (int)(u / per_gu);
        const int64_t r0 = (u % per_gu) * cg;
        const int64_t r1 = r0 + cg < FX ? r0 + cg : FX;
        const struct inf__tensor g = expert_view(&L->gate_exps, j->sel[slot]);
        const struct inf__tensor up = expert_view(&L->up_exps, j->sel[slot]);
        float *gy = j->gate + (size_t)slot * FX, *uy = j->up + (size_t)slot * FX;
        inf_matmul_rows((enum inf_type)g.type, g.data, g.row_bytes, r0, r1, E, j->xact, 1, gy,
                        (size_t)FX);
        inf_matmul_rows((enum inf_type)up.type, up.data, up.row_bytes, r0, r1, E, j->xact, 1, uy,
                        (size_t)FX);
        expert_act(hp, L, j->sel[slot], gy, uy, r0, r1);
    }
    inf_threadpool_barrier(j->ctx->pool);
    for (int slot = ith; slot < K; slot += nth)
        inf_matmul_quantize_row((enum inf_type)L->down_exps.type, j->gate + (size_t)slot * FX,
                                j->hact + (size_t)slot * j->hstride, FX);
    inf_threadpool_barrier(j->ctx->pool);
    for (;;) {
        const int64_t u = inf_chunker_next(&j->c2, 1);
        if (u >= j->units_d)
            break;
        const int slot = (int)(u / per_d);
        const int64_t r0 = (u % per_d) * cd;
        const int64_t r1 = r0 + cd < E ? r0 + cd : E;
        const struct inf__tensor d = expert_view(&L->down_exps, j->sel[slot]);
        inf_matmul_rows((enum inf_type)d.type, d.data, d.row_bytes, r0, r1, FX,
                        j->hact + (size_t)slot * j->hstride, 1, j->out + (size_t)slot * E,
                        (size_t)E);
        expert_down_bias(hp, L, j->sel[slot], j->out + (size_t)slot * E, r0, r1);
    }
}

static int64_t moe_rows_per_unit(size_t row_bytes, int64_t rows)
{
    int64_t r = (int64_t)((128u << 10) / (row_bytes ? row_bytes : 1)) / 16 * 16;
    r = r < 16 ? 16 : r;
    return r < rows ? r : rows;
}

static void moe_decode(struct inf_context *ctx, const struct inf__layer *L, const float *x,
                       const int32_t *sel, float *out)
{
    const struct inf__hparams *hp = &ctx->model->hp;
    struct inf__scratch *s = &ctx->scratch;
    const int E = hp->n_embd, FX = hp->n_ff_exp, K = hp->n_expert_used;
    struct moe_job j = {.ctx = ctx, .L = L, .sel = sel, .gate = s->gate, .up = s->up, .out = out};
    j.hstride = s->moe_act_stride;
    j.xact = s->moe_act;
    j.hact = (char *)s->moe_act + j.hstride;
    inf_matmul_quantize_row((enum inf_type)L->gate_exps.type, x, (void *)j.xact, E);
    /* units of about 128 KiB of weights: smaller ones cost more in per-call set-up and broken
     * prefetch streams than they gain in balance (olmoe-1b-7b Q4_K_M, 2 threads: 32 rows 27.5,
     * 16 rows 24.5, 128-256 rows 29.4 t/s) */
    j.chunk_gu = moe_rows_per_unit(L->gate_exps.row_bytes, FX);
    j.chunk_d = moe_rows_per_unit(L->down_exps.row_bytes, E);
    j.units_gu = (int64_t)K * ((FX + j.chunk_gu - 1) / j.chunk_gu);
    j.units_d = (int64_t)K * ((E + j.chunk_d - 1) / j.chunk_d);
    inf_chunker_init(&j.c1, 0);
    inf_chunker_init(&j.c2, 0);
    inf_threadpool_run(ctx->pool, moe_decode_task, &j);
}

/*
 * The mixture-of-experts feed-forward of the rows in s->xn, into s->xn. Each expert that some
 * row selected runs once over the rows routed to it (gathered), so only the selected experts'
 * weights are read; each slot's output is weighted, and a row's slots are summed best first (as
 * llama.cpp adds them). The shared expert, where there is one, runs on every row first.
 */
static void ffn_moe(struct inf_context *ctx, const struct inf__layer *L, int il, int n)
{
    const struct inf__hparams *hp = &ctx->model->hp;
    struct inf__scratch *s = &ctx->scratch;
    const int E = hp->n_embd, X = hp->n_expert, K = hp->n_expert_used;
    const size_t rowE = (size_t)E * sizeof(float);

    if (L->gate_shexp.data) {
        inf__matmul_pair(ctx, &L->gate_shexp, &L->up_shexp, s->xn, n, s->gate, s->up, true);
        inf__matmul(ctx, &L->down_shexp, s->gate, n, s->shexp);
        if (L->gate_inp_shexp.data) {
            /* qwen2moe: scaled by sigmoid(x . w) */
            struct inf__tensor gi = L->gate_inp_shexp;
            gi.ne[1] = 1;
            inf__matmul(ctx, &gi, s->xn, n, s->router);
            for (int t = 0; t < n; t++) {
                const float g = 1.0f / (1.0f + expf(-s->router[t]));
                inf_scale(E, s->shexp + (size_t)t * E, g);
            }
        }
    }

    inf__matmul(ctx, &L->gate_inp, s->xn, n, s->router);
    dump(ctx, "ffn_moe_logits", il, s->router, (size_t)n * (size_t)X * sizeof(float));
    if (L->gate_inp_b.data)
        for (int t = 0; t < n; t++)
            inf__add(s->router + (size_t)t * X, (const float *)L->gate_inp_b.data, X);
    for (int t = 0; t < n; t++)
        route(hp, s->router + (size_t)t * X, s->sel + (size_t)t * K, s->sel_w + (size_t)t * K);
    dump(ctx, "ffn_moe_topk", il, s->sel, (size_t)n * (size_t)K * sizeof(int32_t));
    if (n == 1 && !ctx->params.deterministic && L->gate_exps.type == L->up_exps.type) {
        moe_decode(ctx, L, s->xn, s->sel, s->moe_out);
        for (int j = 0; j < K; j++)
            inf_scale(E, s->moe_out + (size_t)j * E, s->sel_w[j]);
    } else {
        /* the rows (token * K + slot) grouped by expert: a counting sort */
        int cnt[1024] = {0}, off[1025], fill[1024];
        for (int r = 0; r < n * K; r++)
            cnt[s->sel[r]]++;
        off[0] = 0;
        for (int e = 0; e < X; e++)
            off[e + 1] = off[e] + cnt[e];
        memcpy(fill, off, sizeof(int) * (size_t)X);
        for (int r = 0; r < n * K; r++)
            s->rows[fill[s->sel[r]]++] = r;
        for (int e = 0; e < X; e++) {
            const int m = cnt[e];
            if (!m)
                continue;
            const int32_t *rows = s->rows + off[e];
            for (int i = 0; i < m; i++)
                memcpy(s->moe_in + (size_t)i * E, s->xn + (size_t)(rows[i] / K) * E, rowE);
            const struct inf__tensor g = expert_view(&L->gate_exps, e);
            const struct inf__tensor u = expert_view(&L->up_exps, e);
            const struct inf__tensor d = expert_view(&L->down_exps, e);
            const bool fused = !hp->expert_oai_act && !L->gate_exps_b.data && !L->up_exps_b.data;
            inf__matmul_pair(ctx, &g, &u, s->moe_in, m, s->gate, s->up, fused);
            if (!fused)
                for (int i = 0; i < m; i++)
                    expert_act(hp, L, e, s->gate + (size_t)i * hp->n_ff_exp,
                               s->up + (size_t)i * hp->n_ff_exp, 0, hp->n_ff_exp);
            inf__matmul(ctx, &d, s->gate, m, s->moe_in);
            for (int i = 0; i < m; i++)
                expert_down_bias(hp, L, e, s->moe_in + (size_t)i * E, 0, E);
            for (int i = 0; i < m; i++) {
                const float w = s->sel_w[rows[i]];
                const float *src = s->moe_in + (size_t)i * E;
                float *dst = s->moe_out + (size_t)rows[i] * E;
                for (int c = 0; c < E; c++)
                    dst[c] = src[c] * w;
            }
        }
    }
    for (int t = 0; t < n; t++) {
        float *y = s->xn + (size_t)t * E;
        const float *o = s->moe_out + (size_t)t * K * E;
        memcpy(y, o, rowE);
        for (int j = 1; j < K; j++)
            inf__add(y, o + (size_t)j * E, E);
        if (L->gate_shexp.data)
            inf__add(y, s->shexp + (size_t)t * E, E);
    }
}

/* the token embeddings into the residual stream */
static void embed(struct inf_context *ctx, int n, const inf_token *tokens)
{
    const int E = ctx->model->hp.n_embd;
    const float sc = ctx->model->hp.embd_scale;
    for (int t = 0; t < n; t++) {
        inf__get_row(&ctx->model->tok_embd, tokens[t], ctx->scratch.x + (size_t)t * E);
        if (sc != 0.0f)
            inf_scale(E, ctx->scratch.x + (size_t)t * E, sc);
    }
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
    static const char *const names[INF__ST_COUNT] = {"embed", "qkv",  "qkv_post", "attention",
                                                     "wo",    "norm", "ffn",      "output"};
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
    const size_t rows = (size_t)n * (size_t)E * sizeof(float);
    dump(ctx, "attn_norm", 0, s->xn, rows);
    for (int il = 0; il < hp->n_layer; il++) {
        const struct inf__layer *L = &m->layers[il];

        PROF(INF__ST_QKV, inf__matmul_qkv(ctx, L, s->xn, n, s->q, s->k, s->v));
        job.L = L;
        job.il = il;
        PROF(INF__ST_QKV_POST, run_tokens(ctx, qkv_post_task, &job));
        PROF(INF__ST_ATTN, inf__attention(ctx, il));
        dump(ctx, "kqv_out", il, s->attn, (size_t)n * (size_t)L->wo.ne[0] * sizeof(float));
        PROF(INF__ST_WO, inf__matmul(ctx, &L->wo, s->attn, n, s->xn));
        job.norm = (const float *)L->ffn_norm.data;
        job.post = (const float *)L->attn_post_norm.data;
        job.bias = (const float *)L->bo.data;
        PROF(INF__ST_NORM, run_tokens(ctx, add_norm_task, &job));
        dump(ctx, "ffn_inp", il, s->x, rows);
        dump(ctx, "ffn_norm", il, s->xn, rows);
        if (hp->n_expert > 0)
            PROF(INF__ST_FFN, ffn_moe(ctx, L, il, n));
        else
            PROF(INF__ST_FFN, ffn_dense(ctx, L, n));
        /* the residual, and the next layer's input norm (the last layer's is the output norm,
         * applied below to the wanted rows only) */
        job.norm = il + 1 < hp->n_layer ? (const float *)m->layers[il + 1].attn_norm.data : NULL;
        job.post = (const float *)L->ffn_post_norm.data;
        job.bias = NULL;
        dump(ctx, hp->n_expert > 0 ? "ffn_moe_out" : "ffn_out", il, s->xn, rows);
        PROF(INF__ST_NORM, run_tokens(ctx, add_norm_task, &job));
        dump(ctx, "l_out", il, s->x, rows);
        if (il + 1 < hp->n_layer)
            dump(ctx, "attn_norm", il + 1, s->xn, rows);
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
    if (n_out && (hp->final_softcap != 0.0f || hp->logit_scale != 0.0f)) {
        const size_t nv = (size_t)n_out * (size_t)hp->n_vocab;
        const float cap = hp->final_softcap;
        if (cap != 0.0f)
            for (size_t i = 0; i < nv; i++)
                logits_out[i] = tanhf(logits_out[i] * (1.0f / cap)) * cap;
        if (hp->logit_scale != 0.0f)
            inf_scale((int64_t)nv, logits_out, 1.0f / hp->logit_scale);
    }
}
