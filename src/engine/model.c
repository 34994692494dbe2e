/*
 * model.c - building a model from a GGUF file: hyper-parameters from the metadata, weights as
 * views into the mapped file, checked against the shapes the architecture needs.
 *
 * src/engine/ owns running models: loading per architecture (model.c, gguf_adapter.c), contexts
 * with the KV cache and batches (context.c), the forward pass (forward.c, attention.c, ops.c)
 * and the sampler chain (sampling.c).
 */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "engine/encoder.h"
#include "engine/gguf_adapter.h"
#include "engine/internal.h"
#include "inferno/gguf.h"
#include "inferno/kernels.h"
#include "inferno/log.h"
#include "inferno/tokenizer.h"

struct inf_model_params inf_model_default_params(void)
{
    return (struct inf_model_params){.use_mmap = true, .huge_pages = true};
}

/* Metadata key "<arch>.<suffix>". */
static void akey(char *buf, size_t size, const char *arch, const char *suffix)
{
    snprintf(buf, size, "%s.%s", arch, suffix);
}

static inf_status req_u32(const struct inf_gguf *g, const char *arch, const char *suffix,
                          int32_t *out, struct inf_error *err)
{
    char k[128];
    uint32_t v;
    akey(k, sizeof(k), arch, suffix);
    if (!inf__g_u32(g, k, &v))
        return inf_error_set(err, INF_EFORMAT, "metadata key '%s' is missing or not an integer", k);
    if (v == 0 || v > (1u << 30))
        return inf_error_set(err, INF_EFORMAT, "metadata key '%s' = %u is out of range", k, v);
    *out = (int32_t)v;
    return INF_OK;
}

static void opt_u32(const struct inf_gguf *g, const char *arch, const char *suffix, int32_t *out)
{
    char k[128];
    uint32_t v;
    akey(k, sizeof(k), arch, suffix);
    if (inf__g_u32(g, k, &v) && v > 0 && v <= (1u << 30))
        *out = (int32_t)v;
}

static void opt_f32(const struct inf_gguf *g, const char *arch, const char *suffix, float *out)
{
    char k[128];
    float v;
    akey(k, sizeof(k), arch, suffix);
    if (inf__g_f32(g, k, &v))
        *out = v;
}

/*
 * Find a tensor and check its shape: [ne0] when ne1 == 0 (a vector: F32 only, the forward pass
 * reads it directly), [ne0, ne1] when ne2 == 0, else a stack [ne0, ne1, ne2] (the experts of a
 * layer). Missing tensors are an error unless optional; a type the kernels do not compute is an
 * error naming the type. Shared with encoder.c.
 */
inf_status inf__tensor_load(const struct inf_gguf *g, const char *name, int64_t ne0, int64_t ne1,
                            int64_t ne2, bool optional, struct inf__tensor *out,
                            struct inf_error *err)
{
    memset(out, 0, sizeof(*out));
    if (!inf__g_tensor(g, name, out)) {
        if (optional)
            return INF_OK;
        return inf_error_set(err, INF_EFORMAT, "tensor '%s' is missing", name);
    }
    const int64_t want1 = ne1 ? ne1 : 1, want2 = ne2 ? ne2 : 1;
    if (out->ne[0] != ne0 || out->ne[1] != want1 || out->ne[2] != want2 || out->ne[3] != 1) {
        char want[96];
        if (ne2)
            snprintf(want, sizeof(want), "[%lld, %lld, %lld]", (long long)ne0, (long long)want1,
                     (long long)ne2);
        else
            snprintf(want, sizeof(want), "[%lld, %lld]", (long long)ne0, (long long)want1);
        return inf_error_set(err, INF_EFORMAT,
                             "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected %s", name,
                             (long long)out->ne[0], (long long)out->ne[1], (long long)out->ne[2],
                             (long long)out->ne[3], want);
    }
    if (!inf__g_type_computable(out->type))
        return inf_error_set(err, INF_EUNSUPPORTED, "tensor '%s': type %s is not supported yet",
                             name, inf__g_type_name(out->type));
    if (!out->data)
        return inf_error_set(err, INF_EFORMAT,
                             "tensor '%s': data range exceeds the file or is misaligned", name);
    if (ne1 == 0 && out->type != 0 /* F32 */)
        return inf_error_set(err, INF_EUNSUPPORTED,
                             "tensor '%s': 1-D tensors of type %s are not supported (F32 only)",
                             name, inf__g_type_name(out->type));
    return INF_OK;
}

static inf_status tensor(const struct inf_gguf *g, const char *name, int64_t ne0, int64_t ne1,
                         bool optional, struct inf__tensor *out, struct inf_error *err)
{
    return inf__tensor_load(g, name, ne0, ne1, 0, optional, out, err);
}

/* A boolean key that older converters wrote as an integer. */
static void opt_bool(const struct inf_gguf *g, const char *arch, const char *suffix, bool *out)
{
    char k[128];
    akey(k, sizeof(k), arch, suffix);
    const struct inf_gguf_kv *kv = inf_gguf_find_kv(g, k);
    uint64_t u;
    if (!kv)
        return;
    if (kv->value.type == INF_GGUF_TYPE_BOOL)
        *out = kv->value.b;
    else if (inf_gguf_value_as_u64(&kv->value, &u) == INF_OK)
        *out = u != 0;
}

/*
 * What the architectures beyond llama differ in, with llama.cpp's keys and defaults: the
 * feed-forward activation, scalings and soft-caps (gemma2, granite), sliding-window layers
 * (gemma2: every other layer from the first; gemma3: five of every six, with their own RoPE
 * base), and the experts of mixture-of-experts models.
 */
static inf_status load_arch_hparams(struct inf_model *m, const char *arch, struct inf_error *err)
{
    struct inf__hparams *hp = &m->hp;
    const struct inf_gguf *g = m->gguf;
    const enum inf__arch a = hp->arch;

    hp->act = INF_FFN_SILU;
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    if (a == INF_ARCH_GEMMA2 || a == INF_ARCH_GEMMA3) {
        hp->act = INF_FFN_GELU;
        hp->embd_scale = sqrtf((float)hp->n_embd);
        /* gemma's 27B scales queries by the model width per head, the others by the head size */
        const bool is_27b = hp->n_layer == (a == INF_ARCH_GEMMA2 ? 46 : 62);
        hp->attn_scale =
            1.0f / sqrtf(is_27b ? (float)(hp->n_embd / hp->n_head) : (float)hp->head_dim);
    }
    if (a == INF_ARCH_GEMMA2) {
        hp->attn_softcap = 50.0f;
        hp->final_softcap = 30.0f;
        opt_f32(g, arch, "attn_logit_softcapping", &hp->attn_softcap);
        opt_f32(g, arch, "final_logit_softcapping", &hp->final_softcap);
    } else if (a == INF_ARCH_GEMMA3) {
        opt_f32(g, arch, "final_logit_softcapping", &hp->final_softcap);
    }
    if (a == INF_ARCH_GRANITE) {
        char k[128];
        akey(k, sizeof(k), arch, "logit_scale");
        if (!inf__g_f32(g, k, &hp->logit_scale))
            return inf_error_set(err, INF_EFORMAT, "metadata '%s' is missing", k);
        opt_f32(g, arch, "residual_scale", &hp->residual_scale);
        opt_f32(g, arch, "embedding_scale", &hp->embd_scale);
        float s = 0.0f;
        opt_f32(g, arch, "attention.scale", &s);
        if (s != 0.0f)
            hp->attn_scale = s;
    }

    /* sliding windows: gemma2 always (window 4096 unless given), gemma3 when the key is there;
     * phi3's is ignored as llama.cpp ignores it (its converters do not give the layer pattern) */
    int pattern = 0;
    if (a == INF_ARCH_GEMMA2) {
        hp->n_swa = 4096;
        opt_u32(g, arch, "attention.sliding_window", &hp->n_swa);
        pattern = 2;
    } else if (a == INF_ARCH_GEMMA3) {
        opt_u32(g, arch, "attention.sliding_window", &hp->n_swa);
        pattern = hp->n_swa > 0 ? 6 : 0;
    } else if (a == INF_ARCH_GPTOSS) {
        inf_status st = req_u32(g, arch, "attention.sliding_window", &hp->n_swa, err);
        if (st)
            return st;
        pattern = 2;
    }
    for (int il = 0; il < hp->n_layer; il++) {
        m->layers[il].rope_base = hp->rope_base;
        m->layers[il].rope_fscale = hp->rope_freq_scale;
    }
    if (pattern) {
        char k[128];
        akey(k, sizeof(k), arch, "attention.sliding_window_pattern");
        const struct inf_gguf_kv *kv = inf_gguf_find_kv(g, k);
        bool per_layer = kv && kv->value.type == INF_GGUF_TYPE_ARRAY;
        if (per_layer && kv->value.arr.n != (uint64_t)hp->n_layer)
            return inf_error_set(err, INF_EFORMAT, "metadata '%s' has %llu entries for %d layers",
                                 k, (unsigned long long)kv->value.arr.n, hp->n_layer);
        if (!per_layer)
            opt_u32(g, arch, "attention.sliding_window_pattern", &pattern);
        /* the local layers' RoPE: gemma2 the same as the global ones; gemma3 base 10000 (or
         * rope.freq_base_swa) and no scaling */
        float base_swa = a == INF_ARCH_GEMMA2 || a == INF_ARCH_GPTOSS ? hp->rope_base : 10000.0f;
        float fscale_swa =
            a == INF_ARCH_GEMMA2 || a == INF_ARCH_GPTOSS ? hp->rope_freq_scale : 1.0f;
        opt_f32(g, arch, "rope.freq_base_swa", &base_swa);
        for (int il = 0; il < hp->n_layer; il++) {
            struct inf__layer *L = &m->layers[il];
            if (per_layer) {
                struct inf_gguf_value v;
                uint64_t u = 0;
                inf_gguf_array_elem(&kv->value.arr, (uint64_t)il, &v);
                L->swa = v.type == INF_GGUF_TYPE_BOOL
                             ? v.b
                             : inf_gguf_value_as_u64(&v, &u) == INF_OK && u;
            } else {
                L->swa = pattern == 0 || il % pattern < pattern - 1;
            }
            if (L->swa) {
                L->rope_base = base_swa;
                L->rope_fscale = fscale_swa;
                hp->has_swa = true;
            }
        }
        if (hp->has_swa && hp->n_swa <= 0)
            return inf_error_set(err, INF_EFORMAT, "sliding-window layers with a window of %d",
                                 hp->n_swa);
    }

    /* experts */
    opt_u32(g, arch, "expert_count", &hp->n_expert);
    opt_u32(g, arch, "expert_used_count", &hp->n_expert_used);
    if (hp->n_expert < 0 || hp->n_expert > 1024 || hp->n_expert_used < 0 ||
        hp->n_expert_used > hp->n_expert || (hp->n_expert > 0) != (hp->n_expert_used > 0))
        return inf_error_set(err, INF_EFORMAT,
                             "metadata: %d experts with %d used per token is not a valid "
                             "mixture of experts",
                             hp->n_expert, hp->n_expert_used);
    const bool moe_arch = a == INF_ARCH_QWEN2MOE || a == INF_ARCH_QWEN3MOE || a == INF_ARCH_OLMOE ||
                          a == INF_ARCH_GPTOSS;
    if (moe_arch && hp->n_expert == 0)
        return inf_error_set(err, INF_EFORMAT, "'%s' model without '%s.expert_count'", arch, arch);
    if (hp->n_expert > 0 && a != INF_ARCH_LLAMA && a != INF_ARCH_GRANITE && !moe_arch)
        return inf_error_set(err, INF_EUNSUPPORTED, "experts in a '%s' model are not supported",
                             arch);
    hp->n_ff_exp = hp->n_ff;
    opt_u32(g, arch, "expert_feed_forward_length", &hp->n_ff_exp);
    opt_u32(g, arch, "expert_shared_feed_forward_length", &hp->n_ff_shexp);
    /* renormalized top-k weights: mixtral (llama), granite, qwen3moe; not qwen2moe, olmoe */
    hp->expert_norm_w = a == INF_ARCH_LLAMA || a == INF_ARCH_GRANITE || a == INF_ARCH_QWEN3MOE;
    opt_f32(g, arch, "expert_weights_scale", &hp->expert_w_scale);
    opt_bool(g, arch, "expert_weights_norm", &hp->expert_norm_w);
    hp->expert_softmax_after = hp->expert_oai_act = a == INF_ARCH_GPTOSS;
    return INF_OK;
}

/* Rows [r0, r0 + n) of a matrix, as a matrix of its own (the parts of a fused tensor). */
static struct inf__tensor row_view(const struct inf__tensor *t, int64_t r0, int64_t n)
{
    struct inf__tensor v = *t;
    v.ne[1] = n;
    v.data = (const char *)t->data + (size_t)r0 * t->row_bytes;
    return v;
}

static inf_status load_hparams(struct inf_model *m, const char *arch, struct inf_error *err)
{
    struct inf__hparams *hp = &m->hp;
    const struct inf_gguf *g = m->gguf;
    inf_status st;

    static const struct {
        const char *name;
        enum inf__arch arch;
        enum inf__rope_pairing rope;
    } archs[] = {
        {"llama", INF_ARCH_LLAMA, INF_ROPE_ADJACENT},
        {"qwen2", INF_ARCH_QWEN2, INF_ROPE_NEOX},
        {"qwen3", INF_ARCH_QWEN3, INF_ROPE_NEOX},
        {"qwen2moe", INF_ARCH_QWEN2MOE, INF_ROPE_NEOX},
        {"qwen3moe", INF_ARCH_QWEN3MOE, INF_ROPE_NEOX},
        {"olmoe", INF_ARCH_OLMOE, INF_ROPE_NEOX},
        {"gemma2", INF_ARCH_GEMMA2, INF_ROPE_NEOX},
        {"gemma3", INF_ARCH_GEMMA3, INF_ROPE_NEOX},
        {"phi3", INF_ARCH_PHI3, INF_ROPE_NEOX},
        {"granite", INF_ARCH_GRANITE, INF_ROPE_ADJACENT},
        {"gpt-oss", INF_ARCH_GPTOSS, INF_ROPE_NEOX},
    };
    size_t ai = 0;
    while (ai < sizeof(archs) / sizeof(archs[0]) && strcmp(arch, archs[ai].name) != 0)
        ai++;
    if (ai == sizeof(archs) / sizeof(archs[0]))
        return inf_error_set(err, INF_EUNSUPPORTED,
                             "architecture '%s' is not supported (supported: llama, qwen2, qwen3, "
                             "qwen2moe, qwen3moe, olmoe, gemma2, gemma3, phi3, granite, gpt-oss; "
                             "encoders: bert, nomic-bert)",
                             arch);
    hp->arch = archs[ai].arch;
    hp->rope_pairing = archs[ai].rope;
    if ((st = req_u32(g, arch, "embedding_length", &hp->n_embd, err)) ||
        (st = req_u32(g, arch, "block_count", &hp->n_layer, err)) ||
        (st = req_u32(g, arch, "attention.head_count", &hp->n_head, err)) ||
        (st = req_u32(g, arch, "feed_forward_length", &hp->n_ff, err)))
        return st;
    hp->n_ctx_train = 2048;
    opt_u32(g, arch, "context_length", &hp->n_ctx_train);
    hp->n_head_kv = hp->n_head;
    opt_u32(g, arch, "attention.head_count_kv", &hp->n_head_kv);
    hp->head_dim = hp->n_embd / hp->n_head;
    opt_u32(g, arch, "attention.key_length", &hp->head_dim);
    int32_t vlen = hp->head_dim;
    opt_u32(g, arch, "attention.value_length", &vlen);
    if (vlen != hp->head_dim)
        return inf_error_set(err, INF_EUNSUPPORTED,
                             "key length %d differs from value length %d; not supported",
                             hp->head_dim, vlen);
    hp->n_rot = hp->head_dim;
    opt_u32(g, arch, "rope.dimension_count", &hp->n_rot);
    if (hp->n_head % hp->n_head_kv != 0)
        return inf_error_set(err, INF_EFORMAT, "head count %d is not a multiple of kv heads %d",
                             hp->n_head, hp->n_head_kv);
    if (hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return inf_error_set(err, INF_EFORMAT, "rope dimension %d does not fit head size %d",
                             hp->n_rot, hp->head_dim);
    hp->rms_eps = 1e-5f;
    opt_f32(g, arch, "attention.layer_norm_rms_epsilon", &hp->rms_eps);
    hp->rope_base = 10000.0f;
    opt_f32(g, arch, "rope.freq_base", &hp->rope_base);

    /* RoPE scaling as llama.cpp reads it: type (default linear), factor, YaRN parameters */
    char k[128];
    char type[32] = "linear";
    akey(k, sizeof(k), arch, "rope.scaling.type");
    inf__g_str(g, k, type, sizeof(type));
    float factor = 0.0f;
    opt_f32(g, arch, "rope.scaling.factor", &factor);
    if (factor == 0.0f)
        opt_f32(g, arch, "rope.scale_linear", &factor);
    hp->rope_freq_scale = factor == 0.0f ? 1.0f : 1.0f / factor;
    if (strcmp(type, "none") == 0) {
        hp->rope_scaling = INF_ROPE_SCALING_NONE;
        hp->rope_freq_scale = 1.0f;
    } else if (strcmp(type, "linear") == 0) {
        hp->rope_scaling = INF_ROPE_SCALING_LINEAR;
    } else if (strcmp(type, "yarn") == 0) {
        hp->rope_scaling = INF_ROPE_SCALING_YARN;
    } else if (strcmp(type, "longrope") == 0) {
        hp->rope_scaling = INF_ROPE_SCALING_LONGROPE;
    } else {
        return inf_error_set(err, INF_EUNSUPPORTED, "RoPE scaling type '%s' is not supported",
                             type);
    }
    hp->rope_n_ctx_orig = hp->n_ctx_train;
    opt_u32(g, arch, "rope.scaling.original_context_length", &hp->rope_n_ctx_orig);
    hp->yarn_beta_fast = 32.0f;
    hp->yarn_beta_slow = 1.0f;
    hp->yarn_ext_factor = hp->rope_scaling == INF_ROPE_SCALING_YARN ? 1.0f : 0.0f;
    opt_f32(g, arch, "rope.scaling.yarn_beta_fast", &hp->yarn_beta_fast);
    opt_f32(g, arch, "rope.scaling.yarn_beta_slow", &hp->yarn_beta_slow);
    opt_f32(g, arch, "rope.scaling.yarn_ext_factor", &hp->yarn_ext_factor);
    float rope_attn = 1.0f, log_mul = 0.0f;
    opt_f32(g, arch, "rope.scaling.attn_factor", &rope_attn);
    opt_f32(g, arch, "rope.scaling.yarn_log_multiplier", &log_mul);
    hp->yarn_attn_factor = 1.0f;
    if (hp->yarn_ext_factor != 0.0f) {
        /* the rotation multiplies by 1 + 0.1 ln(factor); the attention factor cancels it
           except for the log multiplier's share, as llama.cpp does */
        float f = 1.0f / hp->rope_freq_scale;
        float ms = f <= 1.0f ? 1.0f : 0.1f * logf(f) + 1.0f;
        float ms_all = f <= 1.0f ? 1.0f : 0.1f * log_mul * logf(f) + 1.0f;
        hp->yarn_attn_factor = (log_mul != 0.0f ? ms / ms_all : ms) / (1.0f + 0.1f * logf(f));
    }
    hp->yarn_attn_factor *= rope_attn;
    return INF_OK;
}

static const char *arch_name(int arch)
{
    static const char *const names[] = {
        [INF_ARCH_LLAMA] = "llama",       [INF_ARCH_QWEN2] = "qwen2",
        [INF_ARCH_QWEN3] = "qwen3",       [INF_ARCH_QWEN2MOE] = "qwen2moe",
        [INF_ARCH_QWEN3MOE] = "qwen3moe", [INF_ARCH_OLMOE] = "olmoe",
        [INF_ARCH_GEMMA2] = "gemma2",     [INF_ARCH_GEMMA3] = "gemma3",
        [INF_ARCH_PHI3] = "phi3",         [INF_ARCH_GRANITE] = "granite",
        [INF_ARCH_GPTOSS] = "gpt-oss",
    };
    return names[arch];
}

static inf_status load_tensors(struct inf_model *m, struct inf_error *err)
{
    struct inf__hparams *hp = &m->hp;
    const struct inf_gguf *g = m->gguf;
    const int64_t E = hp->n_embd, nq = (int64_t)hp->n_head * hp->head_dim;
    const int64_t nkv = (int64_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    inf_status st;
    char n[96];

    /* the vocabulary size is the embedding's row count */
    if (!inf__g_tensor(g, "token_embd.weight", &m->tok_embd))
        return inf_error_set(err, INF_EFORMAT, "tensor 'token_embd.weight' is missing");
    if (m->tok_embd.ne[1] <= 0 || m->tok_embd.ne[1] > (1 << 24))
        return inf_error_set(err, INF_EFORMAT, "tensor 'token_embd.weight': bad vocabulary size");
    hp->n_vocab = (int32_t)m->tok_embd.ne[1];
    if ((st = tensor(g, "token_embd.weight", E, hp->n_vocab, false, &m->tok_embd, err)) ||
        (st = tensor(g, "output_norm.weight", E, 0, false, &m->output_norm, err)) ||
        (st = tensor(g, "output.weight", E, hp->n_vocab, true, &m->output, err)) ||
        (st = tensor(g, "rope_freqs.weight", hp->n_rot / 2, 0, true, &m->rope_freqs, err)))
        return st;
    if (!m->output.data)
        m->output = m->tok_embd; /* tied embeddings */

    /* check block_count against the tensor set before allocating for it: every layer has at
     * least LAYER_MIN_TENSORS tensors (two norms, Q K V O or fused QKV and O, gate up down or
     * fused gate-up and down: 6 for phi3), the last one included */
    enum { LAYER_MIN_TENSORS = 6 };
    size_t n_tensors = inf_gguf_n_tensors(g);
    if ((uint64_t)hp->n_layer * LAYER_MIN_TENSORS > n_tensors)
        return inf_error_set(err, INF_EFORMAT,
                             "metadata '%s.block_count' = %d needs at least %llu tensors, but the "
                             "file has %zu",
                             arch_name(hp->arch), hp->n_layer,
                             (unsigned long long)hp->n_layer * LAYER_MIN_TENSORS, n_tensors);
    snprintf(n, sizeof(n), "blk.%d.attn_norm.weight", hp->n_layer - 1);
    if (!inf_gguf_find_tensor(g, n))
        return inf_error_set(err, INF_EFORMAT,
                             "metadata '%s.block_count' = %d, but tensor '%s' is missing",
                             arch_name(hp->arch), hp->n_layer, n);
    m->layers = calloc((size_t)hp->n_layer, sizeof(*m->layers));
    if (!m->layers)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    if ((st = load_arch_hparams(m, arch_name(hp->arch), err)))
        return st;
    const enum inf__arch a = hp->arch;
    if (hp->rope_scaling == INF_ROPE_SCALING_LONGROPE &&
        ((st = tensor(g, "rope_factors_long.weight", hp->n_rot / 2, 0, true, &m->rope_long, err)) ||
         (st =
              tensor(g, "rope_factors_short.weight", hp->n_rot / 2, 0, true, &m->rope_short, err))))
        return st;
    const bool qkv_bias = a == INF_ARCH_QWEN2 || a == INF_ARCH_QWEN2MOE;
    const bool qk_norm = a == INF_ARCH_QWEN3 || a == INF_ARCH_QWEN3MOE || a == INF_ARCH_GEMMA3;
    const bool olmoe = a == INF_ARCH_OLMOE; /* Q/K norms over the whole projection */
    const bool post_norms = a == INF_ARCH_GEMMA2 || a == INF_ARCH_GEMMA3;
    const int64_t X = hp->n_expert, FX = hp->n_ff_exp, FS = hp->n_ff_shexp;
    for (int i = 0; i < hp->n_layer; i++) {
        struct inf__layer *L = &m->layers[i];
#define T(field, suffix, a, b, opt)                                                                \
    do {                                                                                           \
        snprintf(n, sizeof(n), "blk.%d.%s", i, suffix);                                            \
        if ((st = tensor(g, n, a, b, opt, &L->field, err)))                                        \
            return st;                                                                             \
    } while (0)
#define T3(field, suffix, a, b, c)                                                                 \
    do {                                                                                           \
        snprintf(n, sizeof(n), "blk.%d.%s", i, suffix);                                            \
        if ((st = inf__tensor_load(g, n, a, b, c, false, &L->field, err)))                         \
            return st;                                                                             \
    } while (0)
        T(attn_norm, "attn_norm.weight", E, 0, false);
        /* Q, K and V: separate, or fused in one matrix whose rows are Q's, K's, then V's */
        struct inf__tensor qkv;
        snprintf(n, sizeof(n), "blk.%d.attn_qkv.weight", i);
        if ((st = tensor(g, n, E, nq + 2 * nkv, true, &qkv, err)))
            return st;
        if (qkv.data) {
            L->wq = row_view(&qkv, 0, nq);
            L->wk = row_view(&qkv, nq, nkv);
            L->wv = row_view(&qkv, nq + nkv, nkv);
        } else {
            T(wq, "attn_q.weight", E, nq, false);
            T(wk, "attn_k.weight", E, nkv, false);
            T(wv, "attn_v.weight", E, nkv, false);
        }
        T(wo, "attn_output.weight", nq, E, false);
        T(bo, "attn_output.bias", E, 0, true);
        /* Q/K/V biases: required for qwen2, used wherever present (as llama.cpp does) */
        T(bq, "attn_q.bias", nq, 0, !qkv_bias);
        T(bk, "attn_k.bias", nkv, 0, !qkv_bias);
        T(bv, "attn_v.bias", nkv, 0, !qkv_bias);
        T(q_norm, "attn_q_norm.weight", olmoe ? nq : hp->head_dim, 0, !qk_norm && !olmoe);
        T(k_norm, "attn_k_norm.weight", olmoe ? nkv : hp->head_dim, 0, !qk_norm && !olmoe);
        if (post_norms) {
            T(attn_post_norm, "post_attention_norm.weight", E, 0, false);
            T(ffn_post_norm, "post_ffw_norm.weight", E, 0, false);
        }
        if (a == INF_ARCH_GPTOSS) {
            /* gpt-oss names its feed-forward norm post_attention_norm; it has attention sinks */
            T(ffn_norm, "post_attention_norm.weight", E, 0, false);
            T(attn_sinks, "attn_sinks.weight", hp->n_head, 0, false);
        } else {
            T(ffn_norm, "ffn_norm.weight", E, 0, false);
        }
        if (X > 0) {
            T(gate_inp, "ffn_gate_inp.weight", E, X, false);
            T3(gate_exps, "ffn_gate_exps.weight", E, FX, X);
            T3(up_exps, "ffn_up_exps.weight", E, FX, X);
            T3(down_exps, "ffn_down_exps.weight", FX, E, X);
            /* biases (gpt-oss): the router's, and each expert's rows */
            T(gate_inp_b, "ffn_gate_inp.bias", X, 0, true);
            T(gate_exps_b, "ffn_gate_exps.bias", FX, X, true);
            T(up_exps_b, "ffn_up_exps.bias", FX, X, true);
            T(down_exps_b, "ffn_down_exps.bias", E, X, true);
            if ((L->gate_exps_b.data || L->up_exps_b.data || L->down_exps_b.data) &&
                (L->gate_exps_b.type != 0 || L->up_exps_b.type != 0 || L->down_exps_b.type != 0))
                return inf_error_set(err, INF_EUNSUPPORTED, "layer %d: expert biases must be F32",
                                     i);
            if (a == INF_ARCH_QWEN2MOE || FS > 0) {
                const int64_t fs = FS > 0 ? FS : F;
                if (a == INF_ARCH_QWEN2MOE)
                    T(gate_inp_shexp, "ffn_gate_inp_shexp.weight", E, 0, false);
                T(gate_shexp, "ffn_gate_shexp.weight", E, fs, false);
                T(up_shexp, "ffn_up_shexp.weight", E, fs, false);
                T(down_shexp, "ffn_down_shexp.weight", fs, E, false);
            }
        } else if (a == INF_ARCH_PHI3) {
            /* phi3's ffn_up holds the gate's rows, then the up projection's */
            struct inf__tensor gu;
            T(w_down, "ffn_down.weight", F, E, false);
            snprintf(n, sizeof(n), "blk.%d.ffn_up.weight", i);
            if ((st = tensor(g, n, E, 2 * F, false, &gu, err)))
                return st;
            L->w_gate = row_view(&gu, 0, F);
            L->w_up = row_view(&gu, F, F);
        } else {
            T(w_gate, "ffn_gate.weight", E, F, false);
            T(w_up, "ffn_up.weight", E, F, false);
            T(w_down, "ffn_down.weight", F, E, false);
            T(b_gate, "ffn_gate.bias", F, 0, true);
            T(b_up, "ffn_up.bias", F, 0, true);
            T(b_down, "ffn_down.bias", E, 0, true);
        }
#undef T
#undef T3
        if ((L->q_norm.data != NULL) != (L->k_norm.data != NULL))
            return inf_error_set(err, INF_EFORMAT, "layer %d has only one of the Q/K norms", i);
    }
    return INF_OK;
}

/* Every tensor of the model, for walking them all. */
static int model_tensors(struct inf_model *m, struct inf__tensor **out, int cap)
{
    if (m->enc)
        return inf__enc_tensors(m, out, cap);
    int n = 0;
#define ADD(t)                                                                                     \
    do {                                                                                           \
        if ((t)->data && n < cap)                                                                  \
            out[n++] = (t);                                                                        \
    } while (0)
    ADD(&m->tok_embd);
    ADD(&m->output_norm);
    if (m->output.data != m->tok_embd.data)
        ADD(&m->output);
    ADD(&m->rope_freqs);
    for (int i = 0; i < m->hp.n_layer; i++) {
        struct inf__layer *L = &m->layers[i];
        ADD(&L->attn_norm);
        ADD(&L->wq);
        ADD(&L->wk);
        ADD(&L->wv);
        ADD(&L->wo);
        ADD(&L->bq);
        ADD(&L->bk);
        ADD(&L->bv);
        ADD(&L->q_norm);
        ADD(&L->k_norm);
        ADD(&L->ffn_norm);
        ADD(&L->w_gate);
        ADD(&L->w_up);
        ADD(&L->w_down);
        ADD(&L->bo);
        ADD(&L->b_gate);
        ADD(&L->b_up);
        ADD(&L->b_down);
        ADD(&L->attn_post_norm);
        ADD(&L->ffn_post_norm);
        ADD(&L->gate_inp);
        ADD(&L->gate_exps);
        ADD(&L->up_exps);
        ADD(&L->down_exps);
        ADD(&L->gate_inp_shexp);
        ADD(&L->gate_shexp);
        ADD(&L->up_shexp);
        ADD(&L->down_shexp);
        ADD(&L->gate_inp_b);
        ADD(&L->gate_exps_b);
        ADD(&L->up_exps_b);
        ADD(&L->down_exps_b);
        ADD(&L->attn_sinks);
    }
    ADD(&m->rope_long);
    ADD(&m->rope_short);
#undef ADD
    return n;
}

struct copy_job {
    int fd;
    char *dst;
    const char *src;
    int64_t file_off;
    size_t len, chunk;
    int n_parts;
};
struct copy_part {
    struct copy_job *job;
    int part;
};

/* chunks part, part + n_parts, ... of the copy */
static void *copy_part_main(void *arg)
{
    const struct copy_part *p = arg;
    const struct copy_job *j = p->job;
    for (size_t off = (size_t)p->part * j->chunk; off < j->len;
         off += (size_t)j->n_parts * j->chunk) {
        const size_t k = j->len - off < j->chunk ? j->len - off : j->chunk;
        size_t got = 0;
        while (j->fd >= 0 && got < k) {
            const ssize_t r = pread(j->fd, j->dst + off + got, k - got,
                                    (off_t)(j->file_off + (int64_t)(off + got)));
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got < k)
            memcpy(j->dst + off + got, j->src + off + got, k - got);
    }
    return NULL;
}

/*
 * Copy the weights from the file mapping into anonymous memory backed by transparent huge pages
 * (2 MiB pages: 512x fewer TLB entries for the stream of weights every token reads). Chunk by
 * chunk, each copied chunk of the mapping is dropped at once, so peak memory stays one copy.
 * Returns false (the mapping stays in use) when it cannot be done.
 */
static bool weights_to_anon(struct inf_model *m, const char *path, bool huge_pages)
{
    const int cap = 8 + 32 * m->hp.n_layer;
    struct inf__tensor **ts = malloc((size_t)cap * sizeof(*ts));
    if (!ts)
        return false;
    const int n = model_tensors(m, ts, cap);
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < n; i++) {
        const uintptr_t p = (uintptr_t)ts[i]->data;
        const uintptr_t e = p + ts[i]->row_bytes * (uintptr_t)ts[i]->ne[1] *
                                    (uintptr_t)ts[i]->ne[2] * (uintptr_t)ts[i]->ne[3];
        lo = p < lo ? p : lo;
        hi = e > hi ? e : hi;
    }
    const size_t huge = 2u << 20, page = 4096;
    lo &= ~(uintptr_t)(page - 1);
    const size_t len = hi - lo, map_len = (len + 2 * huge - 1) / huge * huge + huge;
    char *raw = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        free(ts);
        return false;
    }
    char *base = (char *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
    if (huge_pages)
        (void)madvise(base, (len + huge - 1) / huge * huge, MADV_HUGEPAGE);
    /* read the file straight into the new pages (no page faults on the mapping), on two threads
     * (faulting in and zeroing the new pages costs as much as the read); where a read fails,
     * copy from the mapping */
    uint64_t map_size = 0;
    const char *map = inf_gguf_bytes(m->gguf, &map_size);
    struct copy_job job = {.fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) : -1,
                           .dst = base,
                           .src = (const char *)lo,
                           .file_off = (int64_t)((const char *)lo - map),
                           .len = len,
                           .chunk = huge,
                           .n_parts = 2};
    pthread_t th;
    struct copy_part part1 = {&job, 1};
    const bool threaded = pthread_create(&th, NULL, copy_part_main, &part1) == 0;
    struct copy_part part0 = {&job, 0};
    if (!threaded)
        job.n_parts = 1;
    copy_part_main(&part0);
    if (threaded)
        pthread_join(th, NULL);
    if (job.fd >= 0)
        close(job.fd);
    (void)mprotect(base, len, PROT_READ);
    for (int i = 0; i < n; i++)
        ts[i]->data = base + ((uintptr_t)ts[i]->data - lo);
    if (m->output.data == NULL || m->tied_output)
        m->output.data = m->tok_embd.data;
    m->anon = raw;
    m->anon_len = map_len;
    free(ts);
    return true;
}

/*
 * The matrix-product weights rewritten, in the private copy of the weights, into the layout the
 * kernels in use multiply fastest (inf_weight_pack_type: Q4_0, Q4_1, Q4_K, Q6_K, Q8_0 in 16-row
 * groups on AVX-512 VNNI, the same but Q6_K on AVX2; docs/performance.md "Weights repacked at
 * load"); the copy is the only one, so memory does not grow. Only tensors read by the matrix
 * products alone: not the token embeddings (rows are looked up) nor an output tied to them; the
 * experts' stacks too (each expert's rows are whole groups, so a stack is one matrix of groups).
 * INFERNO_REPACK=0 turns it off (for measuring).
 */
static void repack_weights(struct inf_model *m)
{
    const char *e = getenv("INFERNO_REPACK");
    if (!m->anon || m->enc || (e && *e == '0'))
        return;
    const int cap = 1 + 13 * m->hp.n_layer;
    struct inf__tensor **ts = malloc((size_t)cap * sizeof(*ts));
    if (!ts)
        return;
    int n = 0;
    if (!m->tied_output && m->output.data && m->output.data != m->tok_embd.data)
        ts[n++] = &m->output;
    for (int i = 0; i < m->hp.n_layer; i++) {
        struct inf__layer *L = &m->layers[i];
        struct inf__tensor *lt[] = {&L->wq,       &L->wk,         &L->wv,        &L->wo,
                                    &L->w_gate,   &L->w_up,       &L->w_down,    &L->gate_shexp,
                                    &L->up_shexp, &L->down_shexp, &L->gate_exps, &L->up_exps,
                                    &L->down_exps};
        for (size_t j = 0; j < sizeof(lt) / sizeof(lt[0]); j++)
            if (lt[j]->data)
                ts[n++] = lt[j];
    }
    if (mprotect(m->anon, m->anon_len, PROT_READ | PROT_WRITE) != 0) {
        free(ts);
        return;
    }
    int n_packed = 0;
    size_t packed_bytes = 0;
    for (int i = 0; i < n; i++) {
        struct inf__tensor *t = ts[i];
        if (t->ne[3] != 1) /* matrices, or experts' matrices stacked along ne[2] */
            continue;
        const enum inf_type to = inf_weight_pack_type((enum inf_type)t->type, t->ne[1], t->ne[0]);
        if ((int)to == t->type)
            continue;
        int seen = -1; /* the same bytes under two names are packed once */
        for (int j = 0; j < i && seen < 0; j++)
            if (ts[j]->data == t->data)
                seen = j;
        if (seen >= 0) {
            t->type = ts[seen]->type;
            continue;
        }
        /* a stack of experts whose matrices are whole 16-row groups is one matrix of groups */
        if (inf_weight_pack((enum inf_type)t->type, to, (void *)(uintptr_t)t->data, t->row_bytes,
                            t->ne[1] * t->ne[2], t->ne[0])) {
            t->type = (int)to;
            n_packed++;
            packed_bytes += t->row_bytes * (size_t)(t->ne[1] * t->ne[2]);
        }
    }
    (void)mprotect(m->anon, m->anon_len, PROT_READ);
    INF_LOG_DEBUG("engine", "repacked %d weight tensors (%zu bytes) for the kernels in use",
                  n_packed, packed_bytes);
    free(ts);
}

inf_status inf_model_load(const char *path, const struct inf_model_params *params,
                          struct inf_model **out, struct inf_error *err)
{
    struct inf_model *m;
    char arch[32];
    double t0 = inf__now_ms();
    inf_status st;

    *out = NULL;
    m = calloc(1, sizeof(*m));
    if (!m)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    st = inf__g_open(path, params, &m->gguf, err);
    if (st)
        goto fail;
    if (!inf__g_str(m->gguf, "general.architecture", arch, sizeof(arch))) {
        st = inf_error_set(err, INF_EFORMAT, "'%s': no general.architecture in the metadata", path);
        goto fail;
    }
    if (inf__enc_arch(arch))
        st = inf__enc_load(m, arch, err); /* bert, nomic-bert */
    else if ((st = load_hparams(m, arch, err)) == INF_OK)
        st = load_tensors(m, err);
    if (st)
        goto fail_named;
    m->tied_output = m->output.data == m->tok_embd.data;
    if (params->huge_pages || !params->use_mmap) {
        /* INFERNO_HUGEPAGES=0 turns the huge-page copy off (for measuring it) */
        const char *e = getenv("INFERNO_HUGEPAGES");
        const bool huge = params->huge_pages && !(e && *e == '0');
        if ((huge || !params->use_mmap) && !weights_to_anon(m, path, huge))
            INF_LOG_WARN("engine", "could not copy the weights of '%s' into memory; mapping them",
                         path);
        repack_weights(m);
    }
    if (params->progress && !params->progress(0.5f, params->progress_user)) {
        st = inf_error_set(err, INF_ECANCELED, "loading canceled");
        goto fail;
    }
    st = inf__g_tokenizer(m->gguf, &m->tokenizer, err);
    if (st)
        goto fail_named;
    m->chat_template = inf__g_strdup(m->gguf, "tokenizer.chat_template");

    struct inf_model_info *info = &m->info;
    snprintf(info->architecture, sizeof(info->architecture), "%s", arch);
    if (!inf__g_str(m->gguf, "general.name", info->name, sizeof(info->name)))
        info->name[0] = '\0';
    info->n_vocab = m->hp.n_vocab;
    info->n_ctx_train = m->hp.n_ctx_train;
    info->n_embd = m->hp.n_embd;
    info->n_layer = m->hp.n_layer;
    info->n_head = m->hp.n_head;
    info->n_head_kv = m->hp.n_head_kv;
    info->head_dim = m->hp.head_dim;
    info->n_ff = m->hp.n_ff;
    info->rope_freq_base = m->hp.rope_base;
    inf__g_weight_totals(m->gguf, &info->n_params, &info->weights_bytes);
    if (params->use_mlock) {
        if (m->anon && mlock(m->anon, m->anon_len) != 0)
            INF_LOG_WARN("engine", "mlock of %zu bytes failed", m->anon_len);
        else if (!m->anon)
            inf__g_mlock(m->gguf);
    }
    if (params->progress)
        params->progress(1.0f, params->progress_user);
    m->load_ms = inf__now_ms() - t0;
    *out = m;
    return INF_OK;
fail_named:
    inf_error_prefix(err, "'%s'", path);
fail:
    inf_model_free(m);
    return st;
}

void inf_model_free(struct inf_model *m)
{
    if (!m)
        return;
    free(m->layers);
    inf__enc_free(m);
    if (m->anon)
        munmap(m->anon, m->anon_len);
    inf_tokenizer_free(m->tokenizer);
    free(m->chat_template);
    inf__g_close(m->gguf);
    free(m);
}

void inf_model_get_info(const struct inf_model *m, struct inf_model_info *out)
{
    *out = m->info;
}

const struct inf_tokenizer *inf_model_tokenizer(const struct inf_model *m)
{
    return m->tokenizer;
}

const char *inf_model_chat_template(const struct inf_model *m, const char *name)
{
    if (!name)
        return m->chat_template;
    return NULL;
}
