/* ops.c - the forward pass's numeric operations, on top of the kernels. */
#include "engine/ops.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "inferno/kernels.h"

/* INF_MATMUL_INVARIANT for a deterministic context (inf_context_params.deterministic) */
static unsigned mm_flags(const struct inf_context *ctx)
{
    return ctx->params.deterministic ? INF_MATMUL_INVARIANT : 0;
}

void inf__matmul(struct inf_context *ctx, const struct inf__tensor *w, const float *x, int n,
                 float *y)
{
    inf_matmul(ctx->pool, (enum inf_type)w->type, w->data, w->row_bytes, w->ne[1], w->ne[0], x,
               (size_t)w->ne[0], n, y, (size_t)w->ne[1], ctx->scratch.act, mm_flags(ctx));
}

static struct inf_matmul_op mm_op(const struct inf__tensor *w, float *y)
{
    return (struct inf_matmul_op){(enum inf_type)w->type, w->data, w->row_bytes, w->ne[1], y,
                                  (size_t)w->ne[1]};
}

void inf__matmul_qkv(struct inf_context *ctx, const struct inf__layer *L, const float *x, int n,
                     float *q, float *k, float *v)
{
    const struct inf_matmul_op ops[3] = {mm_op(&L->wq, q), mm_op(&L->wk, k), mm_op(&L->wv, v)};
    inf_matmul_multi(ctx->pool, 3, ops, L->wq.ne[0], x, (size_t)L->wq.ne[0], n, ctx->scratch.act,
                     false, mm_flags(ctx));
}

void inf__matmul_gate_up(struct inf_context *ctx, const struct inf__layer *L, const float *x, int n,
                         float *gate, float *up, bool swiglu)
{
    inf__matmul_pair(ctx, &L->w_gate, &L->w_up, x, n, gate, up, swiglu);
}

void inf__matmul_pair(struct inf_context *ctx, const struct inf__tensor *w_gate,
                      const struct inf__tensor *w_up, const float *x, int n, float *gate, float *up,
                      bool swiglu)
{
    const struct inf_matmul_op ops[2] = {mm_op(w_gate, gate), mm_op(w_up, up)};
    inf_matmul_multi(ctx->pool, 2, ops, w_gate->ne[0], x, (size_t)w_gate->ne[0], n,
                     ctx->scratch.act, swiglu, mm_flags(ctx));
}

void inf__get_row(const struct inf__tensor *w, int64_t r, float *out)
{
    const void *row = (const char *)w->data + (size_t)r * w->row_bytes;
    inf_dequantize_row((enum inf_type)w->type, row, out, w->ne[0], NULL);
}

void inf__rms_norm(const float *x, const float *weight, int n, float eps, float *out)
{
    inf_rms_norm(n, x, weight, eps, out);
}

void inf__add(float *x, const float *y, int n)
{
    inf_add(n, x, y);
}

void inf__swiglu(float *gate, const float *up, size_t n)
{
    inf_swiglu((int64_t)n, gate, up);
}

/* GELU with the tanh approximation, looked up as ggml does: the input rounded to fp16, the
 * result of every fp16 input precomputed and itself rounded to fp16 (outside [-10, 10] the
 * function is 0 or x). Matching this rounding is what keeps gemma's tokens equal to llama.cpp's. */
static float gelu_table[65536];
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;

static void gelu_init(void)
{
    static uint16_t h[65536];
    static float f[65536];
    for (int i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    inf_f16_to_f32_row(h, f, 65536);
    for (int i = 0; i < 65536; i++) {
        const float x = f[i];
        f[i] = 0.5f * x *
               (1.0f + tanhf(0.79788456080286535587989211986876f * x * (1.0f + 0.044715f * x * x)));
    }
    inf_f32_to_f16_row(f, h, 65536);
    inf_f16_to_f32_row(h, gelu_table, 65536);
}

void inf__geglu(float *gate, const float *up, size_t n)
{
    uint16_t h[256];
    pthread_once(&gelu_once, gelu_init);
    for (size_t i0 = 0; i0 < n; i0 += 256) {
        const size_t m = n - i0 < 256 ? n - i0 : 256;
        float *g = gate + i0;
        inf_f32_to_f16_row(g, h, (int64_t)m);
        for (size_t i = 0; i < m; i++) {
            const float x = g[i];
            const float y = x <= -10.0f ? 0.0f : x >= 10.0f ? x : gelu_table[h[i]];
            g[i] = y * up[i0 + i];
        }
    }
}

/* Q8_0 rows for the KV cache: blocks of 32 int8 with an fp16 scale (34 bytes), as ggml. */
size_t inf__kv_row_bytes(enum inf_kv_type type, int n)
{
    switch (type) {
    case INF_KV_F32:
        return (size_t)n * 4;
    case INF_KV_F16:
        return (size_t)n * 2;
    case INF_KV_Q8_0:
        return inf_type_row_size(INF_TYPE_Q8_0, n);
    }
    return 0;
}

void inf__kv_store(struct inf_context *ctx, int il, int32_t cell, const float *k, const float *v)
{
    const struct inf__hparams *hp = &ctx->model->hp;
    const int hd = hp->head_dim;
    const int32_t idx = inf__kv_index(ctx, il, cell);
    for (int h = 0; h < hp->n_head_kv; h++) {
        void *kd = inf__kv_at(ctx, il, ctx->k_cache[il], idx, h);
        void *vd = inf__kv_at(ctx, il, ctx->v_cache[il], idx, h);
        const float *kh = k + (size_t)h * (size_t)hd, *vh = v + (size_t)h * (size_t)hd;
        switch (ctx->params.kv_type) {
        case INF_KV_F32:
            memcpy(kd, kh, (size_t)hd * sizeof(float));
            memcpy(vd, vh, (size_t)hd * sizeof(float));
            break;
        case INF_KV_F16:
            inf_f32_to_f16_row(kh, kd, hd);
            inf_f32_to_f16_row(vh, vd, hd);
            break;
        case INF_KV_Q8_0:
            inf_quantize_row(INF_TYPE_Q8_0, kh, kd, hd, NULL);
            inf_quantize_row(INF_TYPE_Q8_0, vh, vd, hd, NULL);
            break;
        }
    }
}

size_t inf__act_bytes(const struct inf_model *m, int n_rows_max)
{
    const struct inf__hparams *hp = &m->hp;
    size_t best = 0;
    /* the largest vec_dot_type row over all weight types used, at the widest input */
    for (int i = 0; i < hp->n_layer; i++) {
        const struct inf__layer *L = &m->layers[i];
        const struct inf__tensor *w[] = {
            &L->wq,        &L->wk,         &L->wv,       &L->wo,         &L->w_gate,
            &L->w_up,      &L->w_down,     &L->gate_inp, &L->gate_exps,  &L->up_exps,
            &L->down_exps, &L->gate_shexp, &L->up_shexp, &L->down_shexp, &L->gate_inp_shexp};
        for (size_t j = 0; j < sizeof(w) / sizeof(w[0]); j++) {
            if (!w[j]->data)
                continue;
            size_t s = inf_matmul_act_size((enum inf_type)w[j]->type, w[j]->ne[0], n_rows_max);
            if (s > best)
                best = s;
        }
    }
    size_t s = inf_matmul_act_size((enum inf_type)m->output.type, m->output.ne[0], n_rows_max);
    return s > best ? s : best;
}
