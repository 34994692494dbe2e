/*
 * encoder.c - encoder (embedding) models: bert (bge, all-MiniLM) and nomic-bert
 * (nomic-embed-text), exact to llama.cpp's graph (src/models/bert.cpp there).
 *
 * Loading: <arch>.* hyper-parameters and the tensors llama.cpp names (token_embd,
 * token_types, position_embd, token_embd_norm, blk.N.attn_q/k/v or attn_qkv, attn_output,
 * attn_output_norm, ffn_up/gate/down, layer_output_norm).
 *
 * The pass, over whole sequences (no KV cache; nothing is kept between calls):
 *   x = LayerNorm(tok_embd[t] + token_types[0] + position_embd[pos])     (bert)
 *   x = LayerNorm(tok_embd[t] + token_types[0])                          (nomic-bert)
 *   per layer:
 *     q, k, v = x Wq + bq, x Wk + bk, x Wv + bv       (nomic-bert: one fused Wqkv, then RoPE
 *                                                      with neox pairing on q and k)
 *     a = softmax(q k^T / sqrt(head_dim)) v           over the tokens of the token's own
 *                                                      sequence, every one (bidirectional)
 *     x = LayerNorm(a Wo + bo + x)
 *     f = GELU(x Wup + bup) Wdown + bdown             (nomic-bert: (silu(x Wgate) * x Wup) Wdown)
 *     x = LayerNorm(f + x)
 * The output is x per token; the context pools it per sequence (mean, CLS = first position,
 * last) into inf_get_embeddings_seq. GELU is ggml's: the tanh form read from a table of half
 * floats (input and output rounded to binary16), so the values are llama.cpp's bit for bit.
 *
 * Batches: tokens are grouped by sequence (a stable counting sort), every per-token step runs
 * over the pool's threads split by token, the products over all tokens of the batch at once,
 * and attention as tasks of (sequence, head, block of 64 queries) handed out by a counter.
 */
#include "engine/encoder.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "engine/context.h"
#include "engine/gguf_adapter.h"
#include "inferno/cpu.h"
#include "inferno/gguf.h"
#include "inferno/kernels.h"
#include "inferno/log.h"
#include "inferno/threadpool.h"

#define QB 64 /* query rows per attention task */

/* ---- loading -------------------------------------------------------------------------------- */

bool inf__enc_arch(const char *arch)
{
    return strcmp(arch, "bert") == 0 || strcmp(arch, "nomic-bert") == 0;
}

static bool get_u32(const struct inf_gguf *g, const char *arch, const char *sfx, uint32_t *v)
{
    char k[128];
    snprintf(k, sizeof(k), "%s.%s", arch, sfx);
    return inf__g_u32(g, k, v);
}

static inf_status req(const struct inf_gguf *g, const char *arch, const char *sfx, int32_t *out,
                      struct inf_error *err)
{
    uint32_t v;
    if (!get_u32(g, arch, sfx, &v))
        return inf_error_set(err, INF_EFORMAT, "metadata key '%s.%s' is missing or not an integer",
                             arch, sfx);
    if (v == 0 || v > (1u << 30))
        return inf_error_set(err, INF_EFORMAT, "metadata key '%s.%s' = %u is out of range", arch,
                             sfx, v);
    *out = (int32_t)v;
    return INF_OK;
}

static inf_status tensor(const struct inf_gguf *g, const char *name, int64_t ne0, int64_t ne1,
                         bool optional, struct inf__tensor *out, struct inf_error *err)
{
    return inf__tensor_load(g, name, ne0, ne1, 0, optional, out, err);
}

inf_status inf__enc_load(struct inf_model *m, const char *arch, struct inf_error *err)
{
    struct inf__hparams *hp = &m->hp;
    const struct inf_gguf *g = m->gguf;
    const bool nomic = strcmp(arch, "nomic-bert") == 0;
    inf_status st;
    char k[128];

    struct inf__encoder *enc = calloc(1, sizeof(*enc));
    if (!enc)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    m->enc = enc;
    hp->arch = nomic ? INF_ARCH_NOMIC_BERT : INF_ARCH_BERT;
    if ((st = req(g, arch, "embedding_length", &hp->n_embd, err)) ||
        (st = req(g, arch, "block_count", &hp->n_layer, err)) ||
        (st = req(g, arch, "attention.head_count", &hp->n_head, err)) ||
        (st = req(g, arch, "feed_forward_length", &hp->n_ff, err)) ||
        (st = req(g, arch, "context_length", &hp->n_ctx_train, err)))
        return st;
    hp->n_head_kv = hp->n_head;
    uint32_t v;
    if (get_u32(g, arch, "attention.head_count_kv", &v) && (int32_t)v != hp->n_head)
        return inf_error_set(err, INF_EUNSUPPORTED,
                             "%s with %u key/value heads for %d query heads is not supported", arch,
                             v, hp->n_head);
    if (hp->n_embd % hp->n_head != 0)
        return inf_error_set(err, INF_EFORMAT, "embedding length %d is not a multiple of %d heads",
                             hp->n_embd, hp->n_head);
    hp->head_dim = hp->n_embd / hp->n_head;
    hp->n_rot = hp->head_dim;
    if (get_u32(g, arch, "rope.dimension_count", &v)) {
        if (v == 0 || v > (uint32_t)hp->head_dim || v % 2)
            return inf_error_set(err, INF_EFORMAT, "rope dimension %u does not fit head size %d", v,
                                 hp->head_dim);
        hp->n_rot = (int32_t)v;
    }
    snprintf(k, sizeof(k), "%s.attention.layer_norm_epsilon", arch);
    if (!inf__g_f32(g, k, &enc->norm_eps))
        return inf_error_set(err, INF_EFORMAT, "metadata key '%s' is missing", k);
    hp->rms_eps = enc->norm_eps;
    hp->rope_base = 10000.0f;
    snprintf(k, sizeof(k), "%s.rope.freq_base", arch);
    inf__g_f32(g, k, &hp->rope_base);
    hp->rope_pairing = INF_ROPE_NEOX;
    hp->rope_scaling = INF_ROPE_SCALING_NONE;
    hp->rope_freq_scale = 1.0f;
    hp->rope_n_ctx_orig = hp->n_ctx_train;
    hp->yarn_attn_factor = 1.0f;
    hp->yarn_beta_fast = 32.0f;
    hp->yarn_beta_slow = 1.0f;
    enc->rope = nomic;

    /* llama.cpp: attention.causal defaults to true; converted BERT models say false */
    enc->causal = true;
    snprintf(k, sizeof(k), "%s.attention.causal", arch);
    const struct inf_gguf_kv *kv = inf_gguf_find_kv(g, k);
    if (kv && kv->value.type == INF_GGUF_TYPE_BOOL)
        enc->causal = kv->value.b;
    /* undeclared (or -1, llama.cpp's "unspecified"): none, as llama.cpp */
    enc->pooling = INF_POOL_NONE;
    snprintf(k, sizeof(k), "%s.pooling_type", arch);
    kv = inf_gguf_find_kv(g, k);
    int64_t pt = -1;
    if (kv && inf_gguf_value_as_i64(&kv->value, &pt) != INF_OK)
        return inf_error_set(err, INF_EFORMAT, "'%s' is not an integer", k);
    if (pt != -1) {
        switch (pt) {
        case 0:
            enc->pooling = INF_POOL_NONE;
            break;
        case 1:
            enc->pooling = INF_POOL_MEAN;
            break;
        case 2:
            enc->pooling = INF_POOL_CLS;
            break;
        case 3:
            enc->pooling = INF_POOL_LAST;
            break;
        case 4:
            enc->pooling = INF_POOL_RANK;
            break;
        default:
            return inf_error_set(err, INF_EFORMAT, "'%s' = %lld is not a pooling type", k,
                                 (long long)pt);
        }
    }
    enc->n_token_types = 0;
    if (inf__g_u32(g, "tokenizer.ggml.token_type_count", &v))
        enc->n_token_types = (int32_t)(v > (1u << 16) ? (1u << 16) : v);

    /* tensors */
    const int64_t E = hp->n_embd, F = hp->n_ff;
    struct inf__tensor te;
    if (!inf__g_tensor(g, "token_embd.weight", &te))
        return inf_error_set(err, INF_EFORMAT, "tensor 'token_embd.weight' is missing");
    if (te.ne[1] <= 0 || te.ne[1] > (1 << 24))
        return inf_error_set(err, INF_EFORMAT, "tensor 'token_embd.weight': bad vocabulary size");
    hp->n_vocab = (int32_t)te.ne[1];
    struct inf__tensor tt;
    const int64_t n_types = inf__g_tensor(g, "token_types.weight", &tt) ? tt.ne[1] : 0;
    if ((st = tensor(g, "token_embd.weight", E, hp->n_vocab, false, &m->tok_embd, err)) ||
        (n_types > 0 &&
         (st = tensor(g, "token_types.weight", E, n_types, false, &enc->type_embd, err))) ||
        (st = tensor(g, "position_embd.weight", E, hp->n_ctx_train, nomic, &enc->pos_embd, err)) ||
        (st = tensor(g, "token_embd_norm.weight", E, 0, false, &enc->tok_norm, err)) ||
        (st = tensor(g, "token_embd_norm.bias", E, 0, false, &enc->tok_norm_b, err)))
        return st;
    /* the classification head: n_cls_out = the labels' count (<arch>.classifier.output_labels),
       1 when there are none, as llama.cpp */
    enc->n_cls_out = 1;
    snprintf(k, sizeof(k), "%s.classifier.output_labels", arch);
    kv = inf_gguf_find_kv(g, k);
    if (kv && kv->value.type == INF_GGUF_TYPE_ARRAY && kv->value.arr.n > 0)
        enc->n_cls_out = kv->value.arr.n > (uint64_t)E ? (int32_t)E : (int32_t)kv->value.arr.n;
    if ((st = tensor(g, "cls.weight", E, E, true, &enc->cls_w, err)) ||
        (st = tensor(g, "cls.bias", E, 0, true, &enc->cls_b, err)) ||
        (st = tensor(g, "cls.output.weight", E, enc->n_cls_out, true, &enc->cls_out_w, err)) ||
        (st = tensor(g, "cls.output.bias", enc->n_cls_out, 0, true, &enc->cls_out_b, err)))
        return st;
    if (enc->pooling != INF_POOL_RANK && (enc->cls_w.data || enc->cls_out_w.data))
        INF_LOG_WARN("engine", "the classification head (cls.*) is not used: the pooling type is "
                               "not rank");

    size_t n_tensors = inf_gguf_n_tensors(g);
    if ((uint64_t)hp->n_layer * 8 > n_tensors)
        return inf_error_set(err, INF_EFORMAT,
                             "metadata '%s.block_count' = %d needs at least %llu tensors, but the "
                             "file has %zu",
                             arch, hp->n_layer, (unsigned long long)hp->n_layer * 8, n_tensors);
    enc->layers = calloc((size_t)hp->n_layer, sizeof(*enc->layers));
    if (!enc->layers)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    char n[96];
    for (int i = 0; i < hp->n_layer; i++) {
        struct inf__enc_layer *L = &enc->layers[i];
#define T(field, suffix, a, b, opt)                                                                \
    do {                                                                                           \
        snprintf(n, sizeof(n), "blk.%d.%s", i, suffix);                                            \
        if ((st = tensor(g, n, a, b, opt, &L->field, err)))                                        \
            return st;                                                                             \
    } while (0)
        snprintf(n, sizeof(n), "blk.%d.attn_qkv.weight", i);
        const bool fused = inf_gguf_find_tensor(g, n) != NULL;
        if (fused) {
            T(wqkv, "attn_qkv.weight", E, 3 * E, false);
            T(bqkv, "attn_qkv.bias", 3 * E, 0, true);
        } else {
            T(wq, "attn_q.weight", E, E, false);
            T(wk, "attn_k.weight", E, E, false);
            T(wv, "attn_v.weight", E, E, false);
        }
        if (!L->bqkv.data) {
            T(bq, "attn_q.bias", E, 0, true);
            T(bk, "attn_k.bias", E, 0, true);
            T(bv, "attn_v.bias", E, 0, true);
        }
        T(wo, "attn_output.weight", E, E, false);
        T(bo, "attn_output.bias", E, 0, true);
        T(ln1_w, "attn_output_norm.weight", E, 0, false);
        T(ln1_b, "attn_output_norm.bias", E, 0, false);
        T(up, "ffn_up.weight", E, F, false);
        T(up_b, "ffn_up.bias", F, 0, true);
        T(gate, "ffn_gate.weight", E, F, !nomic);
        T(down, "ffn_down.weight", F, E, false);
        T(down_b, "ffn_down.bias", E, 0, true);
        T(ln2_w, "layer_output_norm.weight", E, 0, false);
        T(ln2_b, "layer_output_norm.bias", E, 0, false);
#undef T
        if (!nomic && L->gate.data)
            return inf_error_set(err, INF_EUNSUPPORTED,
                                 "bert layer %d has a gated feed-forward (ffn_gate): not supported",
                                 i);
    }
    return INF_OK;
}

void inf__enc_free(struct inf_model *m)
{
    if (!m || !m->enc)
        return;
    free(m->enc->layers);
    free(m->enc);
    m->enc = NULL;
}

int inf__enc_tensors(struct inf_model *m, struct inf__tensor **out, int cap)
{
    struct inf__encoder *enc = m->enc;
    int n = 0;
#define ADD(t)                                                                                     \
    do {                                                                                           \
        if ((t)->data && n < cap)                                                                  \
            out[n++] = (t);                                                                        \
    } while (0)
    ADD(&m->tok_embd);
    ADD(&enc->type_embd);
    ADD(&enc->pos_embd);
    ADD(&enc->tok_norm);
    ADD(&enc->tok_norm_b);
    ADD(&enc->cls_w);
    ADD(&enc->cls_b);
    ADD(&enc->cls_out_w);
    ADD(&enc->cls_out_b);
    for (int i = 0; enc->layers && i < m->hp.n_layer; i++) {
        struct inf__enc_layer *L = &enc->layers[i];
        struct inf__tensor *ts[] = {&L->wq,    &L->wk,     &L->wv,    &L->bq,   &L->bk,
                                    &L->bv,    &L->wqkv,   &L->bqkv,  &L->wo,   &L->bo,
                                    &L->ln1_w, &L->ln1_b,  &L->up,    &L->up_b, &L->gate,
                                    &L->down,  &L->down_b, &L->ln2_w, &L->ln2_b};
        for (size_t j = 0; j < sizeof(ts) / sizeof(ts[0]); j++)
            ADD(ts[j]);
    }
#undef ADD
    return n;
}

bool inf_model_is_encoder(const struct inf_model *m)
{
    return m && m->enc;
}

enum inf_pooling inf_model_pooling(const struct inf_model *m)
{
    return m && m->enc ? m->enc->pooling : INF_POOL_MEAN;
}

/* ---- context -------------------------------------------------------------------------------- */

struct inf__enc_ctx {
    int cap;                    /* most tokens per call */
    float *x, *y;               /* [cap][E]: the residual stream, a product's output */
    float *qkv;                 /* [cap][3E] */
    float *attn;                /* [cap][E] */
    float *ff, *ff2;            /* [cap][F] (ff2: nomic-bert's up) */
    void *act;                  /* quantized activations of the products */
    int32_t *perm;              /* [cap] batch index of the t-th token, grouped by sequence */
    int32_t *tok, *pos;         /* [cap] in that order */
    int32_t *seq_start, *seq_n; /* [n_seq_max] */
    int n_threads;
    float **scores;  /* per thread [QB][cap] */
    uint16_t **half; /* per thread [F] */
    float **tmp;     /* per thread [max(F, n_rot + 2)] */
};

static void *zalloc(size_t n, size_t size, size_t *total)
{
    *total += n * size;
    return calloc(n > 0 ? n : 1, size);
}

static void gelu_init(void);
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;

inf_status inf__enc_context_new(struct inf_model *model, const struct inf_context_params *params,
                                struct inf_context **out, struct inf_error *err)
{
    const struct inf__hparams *hp = &model->hp;
    inf_status st;
    if (!params->embeddings)
        return inf_error_set(err, INF_EUNSUPPORTED,
                             "'%s' is an embedding (encoder) model: it has no logits to generate "
                             "text with; use it for embeddings",
                             model->info.architecture[0] ? model->info.architecture : "bert");
    struct inf_context *ctx = calloc(1, sizeof(*ctx));
    struct inf__enc_ctx *ec = calloc(1, sizeof(*ec));
    if (!ctx || !ec) {
        free(ctx);
        free(ec);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    ctx->model = model;
    ctx->params = *params;
    ctx->enc = ec;
    /* an encoder pass holds whole sequences: up to n_ctx tokens (0: the trained length) or
       n_batch, whichever is larger */
    ctx->n_ctx = params->n_ctx ? params->n_ctx : (uint32_t)hp->n_ctx_train;
    if (ctx->n_ctx < 1 || ctx->n_ctx > (1u << 20)) {
        uint32_t nc = ctx->n_ctx;
        inf_context_free(ctx);
        return inf_error_set(err, INF_EINVAL, "context size %u is out of range", nc);
    }
    ec->cap = (int)(ctx->n_ctx > params->n_batch ? ctx->n_ctx : params->n_batch);
    if (ec->cap > (1 << 20))
        ec->cap = 1 << 20;
    ctx->params.n_batch = (uint32_t)ec->cap;
    const size_t cap = (size_t)ec->cap, E = (size_t)hp->n_embd, F = (size_t)hp->n_ff;
    size_t total = 0;
#define ALLOC(p, n, size) ((p) = zalloc((size_t)(n), size, &total))
    ALLOC(ctx->cells, ctx->n_ctx, sizeof(*ctx->cells));
    ALLOC(ec->x, cap * E, sizeof(float));
    ALLOC(ec->y, cap * E, sizeof(float));
    ALLOC(ec->qkv, cap * 3 * E, sizeof(float));
    ALLOC(ec->attn, cap * E, sizeof(float));
    ALLOC(ec->ff, cap * F, sizeof(float));
    ALLOC(ec->ff2, model->enc->layers[0].gate.data ? cap * F : 0, sizeof(float));
    ALLOC(ec->perm, cap, sizeof(int32_t));
    ALLOC(ec->tok, cap, sizeof(int32_t));
    ALLOC(ec->pos, cap, sizeof(int32_t));
    ALLOC(ec->seq_start, INF__MAX_SEQ, sizeof(int32_t));
    ALLOC(ec->seq_n, INF__MAX_SEQ, sizeof(int32_t));
    /* the activation scratch of the widest product */
    size_t act = 0;
    for (int i = 0; i < hp->n_layer; i++) {
        const struct inf__enc_layer *L = &model->enc->layers[i];
        const struct inf__tensor *w[] = {&L->wq, &L->wk, &L->wv,   &L->wqkv,
                                         &L->wo, &L->up, &L->gate, &L->down};
        for (size_t j = 0; j < sizeof(w) / sizeof(w[0]); j++)
            if (w[j]->data) {
                size_t s =
                    inf_matmul_act_size((enum inf_type)w[j]->type, w[j]->ne[0], (int64_t)cap);
                act = s > act ? s : act;
            }
    }
    const struct inf__tensor *head[] = {&model->enc->cls_w, &model->enc->cls_out_w};
    for (size_t j = 0; j < 2; j++)
        if (head[j]->data) {
            size_t s = inf_matmul_act_size((enum inf_type)head[j]->type, head[j]->ne[0], 64);
            act = s > act ? s : act;
        }
    total += act;
    ec->act = aligned_alloc(64, (act + 63) / 64 * 64 + 64);
    for (uint32_t c = 0; ctx->cells && c < ctx->n_ctx; c++)
        ctx->cells[c].pos = -1;
    if (params->embeddings)
        ALLOC(ctx->embd_seq, (size_t)INF__MAX_SEQ * E, sizeof(float));
    if (!ctx->cells || !ec->x || !ec->y || !ec->qkv || !ec->attn || !ec->ff ||
        (model->enc->layers[0].gate.data && !ec->ff2) || !ec->perm || !ec->tok || !ec->pos ||
        !ec->seq_start || !ec->seq_n || !ec->act || (params->embeddings && !ctx->embd_seq))
        goto oom;

    struct inf_threadpool_params tp;
    inf_threadpool_params_init(&tp);
    tp.n_threads = params->n_threads > 0 ? params->n_threads : inf_cpu_physical_cores();
    if ((st = inf_threadpool_new(&tp, &ctx->pool, err)) != INF_OK) {
        inf_context_free(ctx);
        return st;
    }
    ec->n_threads = inf_threadpool_n_threads(ctx->pool);
    ec->scores = calloc((size_t)ec->n_threads, sizeof(float *));
    ec->half = calloc((size_t)ec->n_threads, sizeof(uint16_t *));
    ec->tmp = calloc((size_t)ec->n_threads, sizeof(float *));
    if (!ec->scores || !ec->half || !ec->tmp)
        goto oom;
    const size_t wide = F > (size_t)hp->n_rot + 2 ? F : (size_t)hp->n_rot + 2;
    for (int i = 0; i < ec->n_threads; i++) {
        ALLOC(ec->scores[i], (size_t)QB * cap, sizeof(float));
        ALLOC(ec->half[i], F, sizeof(uint16_t));
        ALLOC(ec->tmp[i], wide, sizeof(float));
        if (!ec->scores[i] || !ec->half[i] || !ec->tmp[i])
            goto oom;
    }
#undef ALLOC
    ctx->scratch.total_bytes = total;
    pthread_once(&gelu_once, gelu_init);
    *out = ctx;
    return INF_OK;
oom:
    inf_context_free(ctx);
    return inf_error_set(err, INF_ENOMEM, "out of memory creating an encoder context of %d tokens",
                         (int)cap);
}

void inf__enc_context_free(struct inf_context *ctx)
{
    struct inf__enc_ctx *ec = ctx->enc;
    if (!ec)
        return;
    free(ec->x);
    free(ec->y);
    free(ec->qkv);
    free(ec->attn);
    free(ec->ff);
    free(ec->ff2);
    free(ec->act);
    free(ec->perm);
    free(ec->tok);
    free(ec->pos);
    free(ec->seq_start);
    free(ec->seq_n);
    for (int i = 0; i < ec->n_threads; i++) {
        if (ec->scores)
            free(ec->scores[i]);
        if (ec->half)
            free(ec->half[i]);
        if (ec->tmp)
            free(ec->tmp[i]);
    }
    free(ec->scores);
    free(ec->half);
    free(ec->tmp);
    free(ec);
    ctx->enc = NULL;
}

/* ---- the pass ------------------------------------------------------------------------------- */

/* ggml's GELU table: gelu_tanh of every binary16 value, rounded to binary16 */
static uint16_t gelu_table[1 << 16];

static void gelu_init(void)
{
    for (uint32_t i = 0; i < (1u << 16); i++) {
        const uint16_t h = (uint16_t)i;
        float x;
        inf_f16_to_f32_row(&h, &x, 1);
        const float y =
            0.5f * x *
            (1.0f + tanhf(0.79788456080286535587989211986876f * x * (1.0f + 0.044715f * x * x)));
        inf_f32_to_f16_row(&y, &gelu_table[i], 1);
    }
}

/* x = gelu(x) as ggml_vec_gelu_f32 with GGML_GELU_FP16; half/tmp: n scratch values */
static void gelu_row(float *x, int n, uint16_t *half, float *tmp)
{
    inf_f32_to_f16_row(x, half, n);
    for (int i = 0; i < n; i++)
        half[i] = gelu_table[half[i]];
    inf_f16_to_f32_row(half, tmp, n);
    for (int i = 0; i < n; i++)
        x[i] = x[i] <= -10.0f ? 0.0f : x[i] >= 10.0f ? x[i] : tmp[i];
}

/* out = (in - mean) / sqrt(var + eps) * w + b, in ggml_norm's order of operations */
static void layer_norm(const float *in, float *out, int n, const float *w, const float *b,
                       float eps)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += in[i];
    const float mean = (float)sum / (float)n;
    double var = 0;
    for (int i = 0; i < n; i++) {
        const float v = in[i] - mean;
        out[i] = v;
        var += (double)(v * v);
    }
    const float scale = 1.0f / sqrtf((float)(var / n) + eps);
    for (int i = 0; i < n; i++)
        out[i] = out[i] * scale * w[i] + b[i];
}

enum stage { ST_EMBED, ST_QKV_POST, ST_ATTN, ST_ATTN_OUT, ST_UP_POST, ST_FFN_OUT };

struct job {
    struct inf_context *ctx;
    const struct inf__enc_layer *L;
    enum stage stage;
    int n;
    int n_items; /* ST_ATTN: tasks */
    atomic_int next;
};

static void attn_item(struct job *j, int item, int ith)
{
    struct inf_context *ctx = j->ctx;
    const struct inf__hparams *hp = &ctx->model->hp;
    struct inf__enc_ctx *ec = ctx->enc;
    const int E = hp->n_embd, hd = hp->head_dim, H = hp->n_head;
    /* find the item's sequence: items are (sequence, head, block) in order */
    int s = 0, base = 0;
    for (;; s++) {
        const int nb = (ec->seq_n[s] + QB - 1) / QB * H;
        if (item < base + nb)
            break;
        base += nb;
    }
    const int local = item - base, nblk = (ec->seq_n[s] + QB - 1) / QB;
    const int h = local / nblk, b0 = (local % nblk) * QB;
    const int n_s = ec->seq_n[s], t0 = ec->seq_start[s];
    const int nq = n_s - b0 < QB ? n_s - b0 : QB;
    const size_t st3 = 3 * (size_t)E;
    const float *q = ec->qkv + (size_t)(t0 + b0) * st3 + (size_t)h * hd;
    const float *k = ec->qkv + (size_t)t0 * st3 + (size_t)E + (size_t)h * hd;
    const float *v = ec->qkv + (size_t)t0 * st3 + 2 * (size_t)E + (size_t)h * hd;
    float *S = ec->scores[ith];
    inf_attn_qk(nq, n_s, hd, q, st3, INF_TYPE_F32, k, st3, 1.0f / sqrtf((float)hd), S, (size_t)n_s);
    for (int r = 0; r < nq; r++) {
        float *row = S + (size_t)r * n_s;
        if (ctx->model->enc->causal) {
            const int32_t p = ec->pos[t0 + b0 + r];
            for (int c = 0; c < n_s; c++)
                if (ec->pos[t0 + c] > p)
                    row[c] = -INFINITY;
        }
        inf_softmax(n_s, row, 1.0f);
    }
    float *o = ec->attn + (size_t)(t0 + b0) * E + (size_t)h * hd;
    for (int r = 0; r < nq; r++)
        memset(o + (size_t)r * E, 0, (size_t)hd * sizeof(float));
    inf_attn_pv(nq, n_s, hd, S, (size_t)n_s, INF_TYPE_F32, v, st3, o, (size_t)E);
}

static void add_bias(float *x, const struct inf__tensor *b, int n)
{
    if (b->data)
        inf_add(n, x, (const float *)b->data);
}

static void task(void *arg, int ith, int nth)
{
    struct job *j = arg;
    struct inf_context *ctx = j->ctx;
    const struct inf_model *m = ctx->model;
    const struct inf__hparams *hp = &m->hp;
    const struct inf__encoder *enc = m->enc;
    const struct inf__enc_layer *L = j->L;
    struct inf__enc_ctx *ec = ctx->enc;
    const int E = hp->n_embd, F = hp->n_ff;

    if (j->stage == ST_ATTN) {
        for (int it; (it = atomic_fetch_add(&j->next, 1)) < j->n_items;)
            attn_item(j, it, ith);
        return;
    }
    int64_t t0, t1;
    inf_split_rows(j->n, ith, nth, 1, &t0, &t1);
    for (int64_t t = t0; t < t1; t++) {
        float *x = ec->x + (size_t)t * E, *y = ec->y + (size_t)t * E;
        switch (j->stage) {
        case ST_EMBED: {
            /* llama.cpp: (tok + type[0]), then pos + that, then the norm */
            inf_dequantize_row((enum inf_type)m->tok_embd.type,
                               (const char *)m->tok_embd.data +
                                   (size_t)ec->tok[t] * m->tok_embd.row_bytes,
                               y, E, NULL);
            if (enc->type_embd.data) {
                inf_dequantize_row((enum inf_type)enc->type_embd.type, enc->type_embd.data, x, E,
                                   NULL);
                inf_add(E, y, x);
            }
            if (enc->pos_embd.data) {
                inf_dequantize_row((enum inf_type)enc->pos_embd.type,
                                   (const char *)enc->pos_embd.data +
                                       (size_t)ec->pos[t] * enc->pos_embd.row_bytes,
                                   x, E, NULL);
                inf_add(E, y, x);
            }
            layer_norm(y, x, E, (const float *)enc->tok_norm.data,
                       (const float *)enc->tok_norm_b.data, enc->norm_eps);
            break;
        }
        case ST_QKV_POST: {
            float *q = ec->qkv + (size_t)t * 3 * E, *k = q + E, *v = q + 2 * E;
            if (L->bqkv.data) {
                add_bias(q, &L->bqkv, 3 * E);
            } else {
                add_bias(q, &L->bq, E);
                add_bias(k, &L->bk, E);
                add_bias(v, &L->bv, E);
            }
            if (enc->rope) {
                struct inf_rope_params p = {
                    .n_rot = hp->n_rot,
                    .freq_base = hp->rope_base,
                    .freq_scale = hp->rope_freq_scale,
                    .n_ctx_orig = hp->rope_n_ctx_orig,
                    .ext_factor = hp->yarn_ext_factor,
                    .attn_factor = hp->yarn_attn_factor,
                    .beta_fast = hp->yarn_beta_fast,
                    .beta_slow = hp->yarn_beta_slow,
                };
                float *cache = ec->tmp[ith];
                inf_rope_cache(&p, ec->pos[t], cache);
                inf_rope(INF_ROPE_MODE_NEOX, q, hp->n_head, hp->head_dim, hp->n_rot, cache);
                inf_rope(INF_ROPE_MODE_NEOX, k, hp->n_head, hp->head_dim, hp->n_rot, cache);
            }
            break;
        }
        case ST_ATTN_OUT:
            add_bias(y, &L->bo, E);
            inf_add(E, y, x);
            layer_norm(y, x, E, (const float *)L->ln1_w.data, (const float *)L->ln1_b.data,
                       enc->norm_eps);
            break;
        case ST_UP_POST: {
            float *f = ec->ff + (size_t)t * F;
            if (!L->gate.data) {
                add_bias(f, &L->up_b, F);
                gelu_row(f, F, ec->half[ith], ec->tmp[ith]);
            } else {
                /* nomic-bert: f = silu(gate) * (up + bias) */
                float *u = ec->ff2 + (size_t)t * F;
                add_bias(u, &L->up_b, F);
                inf_swiglu(F, f, u);
            }
            break;
        }
        case ST_FFN_OUT:
            add_bias(y, &L->down_b, E);
            inf_add(E, y, x);
            layer_norm(y, x, E, (const float *)L->ln2_w.data, (const float *)L->ln2_b.data,
                       enc->norm_eps);
            break;
        case ST_ATTN:
            break;
        }
    }
}

static void run(struct job *j, enum stage stage)
{
    j->stage = stage;
    if (j->n >= 4 || stage == ST_ATTN)
        inf_threadpool_run(j->ctx->pool, task, j);
    else
        task(j, 0, 1);
}

static void mm(struct inf_context *ctx, const struct inf__tensor *w, const float *x, size_t xs,
               int n, float *y, size_t ys)
{
    inf_matmul(ctx->pool, (enum inf_type)w->type, w->data, w->row_bytes, w->ne[1], w->ne[0], x, xs,
               n, y, ys, ctx->enc->act, ctx->params.deterministic ? INF_MATMUL_INVARIANT : 0);
}

static struct inf_matmul_op mm_op(const struct inf__tensor *w, float *y, size_t ys)
{
    return (struct inf_matmul_op){(enum inf_type)w->type, w->data, w->row_bytes, w->ne[1], y, ys};
}

static void forward(struct inf_context *ctx, int n)
{
    const struct inf_model *m = ctx->model;
    const struct inf__hparams *hp = &m->hp;
    struct inf__enc_ctx *ec = ctx->enc;
    const size_t E = (size_t)hp->n_embd, F = (size_t)hp->n_ff;
    const unsigned flags = ctx->params.deterministic ? INF_MATMUL_INVARIANT : 0;
    struct job j = {.ctx = ctx, .n = n};

    run(&j, ST_EMBED);
    int n_items = 0;
    for (int s = 0; s < (int)ctx->params.n_seq_max; s++)
        n_items += (ec->seq_n[s] + QB - 1) / QB * hp->n_head;
    for (int il = 0; il < hp->n_layer; il++) {
        const struct inf__enc_layer *L = &m->enc->layers[il];
        j.L = L;
        if (L->wqkv.data) {
            mm(ctx, &L->wqkv, ec->x, E, n, ec->qkv, 3 * E);
        } else {
            const struct inf_matmul_op ops[3] = {mm_op(&L->wq, ec->qkv, 3 * E),
                                                 mm_op(&L->wk, ec->qkv + E, 3 * E),
                                                 mm_op(&L->wv, ec->qkv + 2 * E, 3 * E)};
            inf_matmul_multi(ctx->pool, 3, ops, (int64_t)E, ec->x, E, n, ec->act, false, flags);
        }
        run(&j, ST_QKV_POST);
        j.n_items = n_items;
        atomic_store(&j.next, 0);
        run(&j, ST_ATTN);
        mm(ctx, &L->wo, ec->attn, E, n, ec->y, E);
        run(&j, ST_ATTN_OUT);
        if (L->gate.data) {
            const struct inf_matmul_op ops[2] = {mm_op(&L->gate, ec->ff, F),
                                                 mm_op(&L->up, ec->ff2, F)};
            inf_matmul_multi(ctx->pool, 2, ops, (int64_t)E, ec->x, E, n, ec->act, false, flags);
        } else {
            mm(ctx, &L->up, ec->x, E, n, ec->ff, F);
        }
        run(&j, ST_UP_POST);
        mm(ctx, &L->down, ec->ff, F, n, ec->y, E);
        run(&j, ST_FFN_OUT);
    }
}

/*
 * Rerankers: the pooled CLS rows of the pass's sequences through the classification head, as
 * llama.cpp's build_pooling (rank): y = tanh(cls x + b), then cls.output y + b; the n_cls_out
 * results replace the start of each sequence's embd_seq row.
 */
static void rank_head(struct inf_context *ctx)
{
    const struct inf__encoder *enc = ctx->model->enc;
    struct inf__enc_ctx *ec = ctx->enc;
    const int E = ctx->model->hp.n_embd;
    int seqs[INF__MAX_SEQ] = {0}, n = 0;
    for (int s = 0; s < INF__MAX_SEQ; s++)
        if (ctx->embd_seq_valid >> s & 1) {
            memcpy(ec->y + (size_t)n * E, ctx->embd_seq + (size_t)s * E, (size_t)E * sizeof(float));
            seqs[n++] = s;
        }
    float *cur = ec->y;
    if (enc->cls_w.data) {
        mm(ctx, &enc->cls_w, ec->y, (size_t)E, n, ec->attn, (size_t)E);
        for (int i = 0; i < n; i++) {
            float *r = ec->attn + (size_t)i * E;
            add_bias(r, &enc->cls_b, E);
            for (int j = 0; j < E; j++)
                r[j] = tanhf(r[j]);
        }
        cur = ec->attn;
    }
    int n_out = E;
    if (enc->cls_out_w.data) {
        n_out = enc->n_cls_out;
        float *dst = cur == ec->y ? ec->attn : ec->y;
        mm(ctx, &enc->cls_out_w, cur, (size_t)E, n, dst, (size_t)E);
        for (int i = 0; i < n; i++)
            add_bias(dst + (size_t)i * E, &enc->cls_out_b, n_out);
        cur = dst;
    }
    for (int i = 0; i < n; i++)
        memcpy(ctx->embd_seq + (size_t)seqs[i] * E, cur + (size_t)i * E,
               (size_t)n_out * sizeof(float));
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    void *np = realloc(*p, need * elem);
    if (!np)
        return false;
    *p = np;
    *cap = need;
    return true;
}

inf_status inf__enc_decode(struct inf_context *ctx, const struct inf_batch *b,
                           struct inf_error *err)
{
    const struct inf__hparams *hp = &ctx->model->hp;
    const struct inf__encoder *enc = ctx->model->enc;
    struct inf__enc_ctx *ec = ctx->enc;
    const int E = hp->n_embd, n = b->n_tokens;
    const int n_seq = (int)ctx->params.n_seq_max;
    const double t_start = inf__now_ms();

    if (n <= 0)
        return inf_error_set(err, INF_EINVAL, "empty batch");
    if (n > ec->cap)
        return inf_error_set(err, INF_ELIMIT,
                             "an encoder pass holds at most %d tokens (the context size); the "
                             "batch has %d",
                             ec->cap, n);
    memset(ec->seq_n, 0, (size_t)INF__MAX_SEQ * sizeof(int32_t));
    for (int i = 0; i < n; i++) {
        const int32_t s = b->seq_id ? b->seq_id[i] : 0, p = b->pos[i];
        if (s < 0 || s >= n_seq)
            return inf_error_set(err, INF_EINVAL, "token %d: sequence id %d outside [0, %d)", i, s,
                                 n_seq);
        if (b->token[i] < 0 || b->token[i] >= hp->n_vocab)
            return inf_error_set(err, INF_EINVAL, "token %d: id %d outside the vocabulary", i,
                                 b->token[i]);
        if (p < 0 || (enc->pos_embd.data && p >= hp->n_ctx_train))
            return inf_error_set(err, INF_EINVAL,
                                 "token %d: position %d is outside the model's %d positions", i, p,
                                 hp->n_ctx_train);
        ec->seq_n[s]++;
    }
    /* group the tokens by sequence, keeping their order within one */
    int32_t fill[INF__MAX_SEQ];
    for (int s = 0, at = 0; s < INF__MAX_SEQ; s++) {
        ec->seq_start[s] = at;
        fill[s] = at;
        at += ec->seq_n[s];
    }
    for (int i = 0; i < n; i++) {
        const int32_t s = b->seq_id ? b->seq_id[i] : 0;
        const int32_t t = fill[s]++;
        ec->perm[t] = i;
        ec->tok[t] = b->token[i];
        ec->pos[t] = b->pos[i];
    }
    if (!grow((void **)&ctx->logits, &ctx->logits_cap, (size_t)n * (size_t)E, sizeof(float)) ||
        !grow((void **)&ctx->out_index, &ctx->out_index_cap, (size_t)n, sizeof(int32_t)))
        return inf_error_set(err, INF_ENOMEM, "out of memory for %d output rows", n);

    forward(ctx, n);

    for (int t = 0; t < n; t++) {
        const int32_t i = ec->perm[t];
        memcpy(ctx->logits + (size_t)i * E, ec->x + (size_t)t * E, (size_t)E * sizeof(float));
        ctx->out_index[i] = i;
    }
    ctx->n_outputs = n;
    if (ctx->params.embeddings) {
        ctx->embd_seq_valid = 0;
        for (int s = 0; s < n_seq; s++) {
            const int t0 = ec->seq_start[s], ns = ec->seq_n[s];
            float *dst = ctx->embd_seq + (size_t)s * E;
            if (ns == 0)
                continue;
            const enum inf_pooling pool = ctx->params.pooling;
            if (pool == INF_POOL_CLS || pool == INF_POOL_LAST || pool == INF_POOL_RANK) {
                /* CLS (and rank): the first position; last: the last one */
                int best = t0;
                for (int t = t0 + 1; t < t0 + ns; t++)
                    if (pool != INF_POOL_LAST ? ec->pos[t] < ec->pos[best]
                                              : ec->pos[t] >= ec->pos[best])
                        best = t;
                memcpy(dst, ec->x + (size_t)best * E, (size_t)E * sizeof(float));
            } else {
                for (int c = 0; c < E; c++) {
                    double sum = 0;
                    for (int t = t0; t < t0 + ns; t++)
                        sum += ec->x[(size_t)t * E + c];
                    dst[c] = (float)(sum / ns);
                }
            }
            ctx->embd_seq_valid |= 1ull << s;
        }
        if (ctx->params.pooling == INF_POOL_RANK)
            rank_head(ctx);
    }
    ctx->timings.prompt_ms += inf__now_ms() - t_start;
    ctx->timings.n_prompt += n;
    return INF_OK;
}
