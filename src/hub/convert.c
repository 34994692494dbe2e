/*
 * convert.c - Hugging Face safetensors directories to GGUF (`inferno convert HF_DIR -o OUT`).
 * src/hub/ owns getting models; this file the architectures (config.json -> metadata, tensor
 * names and layouts) and the streaming write; convert_vocab.c the tokenizer metadata.
 *
 * The plan is made first: every safetensors tensor is mapped to its GGUF name (or skipped, or
 * refused when unknown), its shape checked against config.json, experts gathered into one
 * stacked tensor per layer and projection, and each output given its type (llama.cpp's rule: 1-D
 * tensors, norms, biases and router weights F32, the rest the output type). Then the header is
 * written and the tensors streamed in the safetensors' order from the mapping, converted row by
 * row when their type or layout changes; pages already read are dropped from the mapping (the
 * page cache keeps them), so the resident set stays at the buffers.
 */
#include "inferno/convert.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/files.h"
#include "hub/convert_internal.h"
#include "inferno/kernels.h"
#include "inferno/quantize.h"
#include "inferno/safetensors.h"

void inf_convert_params_init(struct inf_convert_params *p)
{
    memset(p, 0, sizeof(*p));
}

/* ---- architectures -------------------------------------------------------------------------- */

enum arch_id {
    A_LLAMA,
    A_QWEN2,
    A_QWEN3,
    A_QWEN2MOE,
    A_QWEN3MOE,
    A_GEMMA2,
    A_GEMMA3,
    A_PHI3,
    A_GRANITE,
    A_BERT,
    A_NOMIC,
    A_XLMR /* XLMRobertaModel: "bert" with position rows shifted past the padding id */
};

static const struct {
    const char *hf; /* config.json "architectures"[0] */
    enum arch_id id;
    const char *name; /* general.architecture */
} archs[] = {
    {"LlamaForCausalLM", A_LLAMA, "llama"},
    {"LLaMAForCausalLM", A_LLAMA, "llama"},
    {"MistralForCausalLM", A_LLAMA, "llama"},
    {"MixtralForCausalLM", A_LLAMA, "llama"},
    {"Qwen2ForCausalLM", A_QWEN2, "qwen2"},
    {"Qwen3ForCausalLM", A_QWEN3, "qwen3"},
    {"Qwen2MoeForCausalLM", A_QWEN2MOE, "qwen2moe"},
    {"Qwen3MoeForCausalLM", A_QWEN3MOE, "qwen3moe"},
    {"Gemma2ForCausalLM", A_GEMMA2, "gemma2"},
    {"Gemma3ForCausalLM", A_GEMMA3, "gemma3"},
    {"Gemma3ForConditionalGeneration", A_GEMMA3, "gemma3"},
    {"Phi3ForCausalLM", A_PHI3, "phi3"},
    {"GraniteForCausalLM", A_GRANITE, "granite"},
    {"BertModel", A_BERT, "bert"},
    {"BertForMaskedLM", A_BERT, "bert"},
    {"NomicBertModel", A_NOMIC, "nomic-bert"},
    {"XLMRobertaModel", A_XLMR, "bert"},
};
#define IS_ENCODER(id) ((id) == A_BERT || (id) == A_NOMIC || (id) == A_XLMR)
#define N_ARCHS        (sizeof(archs) / sizeof(archs[0]))

/* The hyperparameters the tensors are checked against. */
struct hp {
    enum arch_id id;
    const char *arch;
    int64_t n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_expert, n_vocab;
    bool permute; /* llama's Q/K rows reordered for the adjacent-pair RoPE */
    bool norm_plus1;
    int64_t pos_offset; /* XLM-R: position rows dropped in front (pad_token_id + 1) */
};

static const json_t *cfg_get(const json_t *cfg, const char *const *keys)
{
    for (; *keys; keys++) {
        const json_t *v = json_object_get(cfg, *keys);
        if (v && !json_is_null(v))
            return v;
    }
    return NULL;
}

#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* An integer hyperparameter in [lo, hi]; absent: *out = dflt (or an error when required). */
static inf_status hp_int(const json_t *cfg, const char *const *keys, int64_t lo, int64_t hi,
                         int64_t dflt, bool required, int64_t *out, struct inf_error *err)
{
    const json_t *v = cfg_get(cfg, keys);
    *out = dflt;
    if (!v) {
        if (required)
            return inf_error_set(err, INF_EFORMAT, "config.json: '%s' is missing", keys[0]);
        return INF_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return inf_error_set(err, INF_EFORMAT,
                             "config.json: '%s' must be an integer in [%" PRId64 ", %" PRId64 "]",
                             keys[0], lo, hi);
    *out = json_integer_value(v);
    return INF_OK;
}

static bool hp_num(const json_t *cfg, const char *const *keys, double *out)
{
    const json_t *v = cfg_get(cfg, keys);
    if (!v || !json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

/* rope_parameters (transformers >= 5) or rope_scaling, as llama.cpp's TextModel reads them. */
struct rope {
    const json_t *params; /* the full-attention parameters (may be NULL) */
    const json_t *sliding;
    double theta, theta_swa;
    bool has_theta, has_theta_swa;
    const char *type;
};

static void read_rope(const json_t *cfg, struct rope *r)
{
    const json_t *rp = json_object_get(cfg, "rope_parameters");
    memset(r, 0, sizeof(*r));
    if (!json_is_object(rp))
        rp = json_object_get(cfg, "rope_scaling");
    if (!json_is_object(rp))
        rp = NULL;
    r->params = rp;
    if (rp && json_is_object(json_object_get(rp, "full_attention"))) {
        r->sliding = json_object_get(rp, "sliding_attention");
        r->params = json_object_get(rp, "full_attention");
    } else if (rp && json_is_object(json_object_get(rp, "sliding_attention"))) {
        r->sliding = json_object_get(rp, "sliding_attention");
    }
    r->has_theta = hp_num(r->params, KEYS("rope_theta"), &r->theta) ||
                   hp_num(cfg, KEYS("rope_theta", "rotary_emb_base"), &r->theta);
    r->has_theta_swa = hp_num(r->sliding, KEYS("rope_theta"), &r->theta_swa) ||
                       hp_num(cfg,
                              KEYS("local_rope_theta", "rope_local_theta", "rope_theta_local",
                                   "swa_rope_theta", "rope_local_base_freq"),
                              &r->theta_swa);
    r->type = json_string_value(json_object_get(r->params, "rope_type"));
    if (!r->type)
        r->type = json_string_value(json_object_get(r->params, "type"));
}

/* ---- metadata ------------------------------------------------------------------------------- */

struct kw {
    struct inf_gguf_writer *w;
    const char *arch;
    inf_status rc;
    struct inf_error *err;
};

static const char *akey(const struct kw *k, const char *sfx, char *buf, size_t n)
{
    snprintf(buf, n, "%s.%s", k->arch, sfx);
    return buf;
}

static void put_u32(struct kw *k, const char *sfx, int64_t v)
{
    char key[128];
    if (k->rc == INF_OK)
        k->rc = inf_gguf_writer_set_u32(k->w, akey(k, sfx, key, sizeof(key)), (uint32_t)v, k->err);
}

static void put_f32(struct kw *k, const char *sfx, double v)
{
    char key[128];
    if (k->rc == INF_OK)
        k->rc = inf_gguf_writer_set_f32(k->w, akey(k, sfx, key, sizeof(key)), (float)v, k->err);
}

static void put_bool(struct kw *k, const char *sfx, bool v)
{
    char key[128];
    if (k->rc == INF_OK)
        k->rc = inf_gguf_writer_set_bool(k->w, akey(k, sfx, key, sizeof(key)), v, k->err);
}

static void put_str(struct kw *k, const char *sfx, const char *v)
{
    char key[128];
    if (k->rc == INF_OK)
        k->rc = inf_gguf_writer_set_str(k->w, akey(k, sfx, key, sizeof(key)), v, k->err);
}

/* An integer from config.json written as u32 when present (and within u32). */
static void opt_u32(struct kw *k, const json_t *cfg, const char *const *keys, const char *sfx)
{
    const json_t *v = cfg_get(cfg, keys);
    if (json_is_integer(v) && json_integer_value(v) >= 0 &&
        json_integer_value(v) <= (json_int_t)UINT32_MAX)
        put_u32(k, sfx, json_integer_value(v));
}

static void opt_f32(struct kw *k, const json_t *cfg, const char *const *keys, const char *sfx)
{
    double d;
    if (hp_num(cfg, keys, &d))
        put_f32(k, sfx, d);
}

/* The hyperparameters every architecture's shapes depend on, checked. */
static inf_status read_hp(const json_t *cfg, enum arch_id id, const char *arch, struct hp *h,
                          struct inf_error *err)
{
    inf_status rc;
    memset(h, 0, sizeof(*h));
    h->id = id;
    h->arch = arch;
    h->permute = id == A_LLAMA || id == A_GRANITE;
    h->norm_plus1 = id == A_GEMMA2 || id == A_GEMMA3;
    int64_t dflt_heads = id == A_GEMMA3 ? 8 : 0;
    if ((rc = hp_int(cfg, KEYS("num_hidden_layers", "n_layers", "num_layers", "n_layer"), 1, 4096,
                     0, true, &h->n_layer, err)) ||
        (rc = hp_int(cfg, KEYS("hidden_size", "n_embd", "dim"), 1, 1 << 20, 0, true, &h->n_embd,
                     err)) ||
        (rc = hp_int(cfg, KEYS("num_attention_heads", "n_head", "n_heads"), 1, 65536, dflt_heads,
                     dflt_heads == 0, &h->n_head, err)) ||
        (rc = hp_int(cfg, KEYS("num_key_value_heads", "n_kv_heads", "n_head_kv"), 1, h->n_head,
                     id == A_GEMMA3 ? 4 : h->n_head, false, &h->n_head_kv, err)) ||
        (rc = hp_int(cfg, KEYS("intermediate_size", "n_inner", "hidden_dim"), 1, 1 << 24, 0, false,
                     &h->n_ff, err)) ||
        (rc = hp_int(cfg, KEYS("num_local_experts", "num_experts", "n_routed_experts"), 0, 4096, 0,
                     false, &h->n_expert, err)) ||
        (rc = hp_int(cfg, KEYS("vocab_size"), 1, INF__CONV_MAX_VOCAB, 0, false, &h->n_vocab, err)))
        return rc;
    /* XLMRobertaModel: positions start after the padding id (XLMRobertaModel's
       _position_offset); without pad_token_id llama.cpp keeps every row */
    if (id == A_XLMR &&
        (rc = hp_int(cfg, KEYS("pad_token_id"), 0, 1 << 20, -1, false, &h->pos_offset, err)))
        return rc;
    h->pos_offset = id == A_XLMR ? h->pos_offset + 1 : 0;
    int64_t hd_dflt = id == A_GEMMA3 ? 256 : h->n_embd / h->n_head;
    if (id == A_GRANITE) /* llama.cpp drops head_dim for granite */
        h->head_dim = hd_dflt;
    else if ((rc = hp_int(cfg, KEYS("head_dim"), 1, 1 << 16, hd_dflt, false, &h->head_dim, err)))
        return rc;
    if (h->head_dim < 1)
        return inf_error_set(err, INF_EFORMAT,
                             "config.json: hidden_size %" PRId64
                             " is smaller than num_attention_heads %" PRId64,
                             h->n_embd, h->n_head);
    if (h->permute && h->head_dim % 2)
        return inf_error_set(err, INF_EFORMAT, "config.json: head_dim %" PRId64 " is odd",
                             h->head_dim);
    if ((id == A_QWEN2MOE || id == A_QWEN3MOE) && h->n_expert == 0)
        return inf_error_set(err, INF_EFORMAT, "config.json: '%s' needs num_experts", arch);
    return INF_OK;
}

/* llama.cpp's TextModel.set_gguf_parameters, with gemma3's defaults where it overrides them. */
static void common_params(struct kw *k, const json_t *cfg, const struct hp *h, const struct rope *r)
{
    bool g3 = h->id == A_GEMMA3;
    put_u32(k, "block_count", h->n_layer);
    if (g3) {
        int64_t ctx = 131072;
        hp_int(cfg, KEYS("max_position_embeddings"), 0, UINT32_MAX, 131072, false, &ctx, NULL);
        put_u32(k, "context_length", ctx);
    } else if (h->id == A_NOMIC) {
        /* NomicBertModel: nomic-embed-text v1/v1.5 are trained for 2048 positions */
        int64_t npos = 0, mtp = 2048;
        hp_int(cfg, KEYS("n_positions"), 0, UINT32_MAX, 0, false, &npos, NULL);
        hp_int(cfg, KEYS("max_trained_positions"), 0, UINT32_MAX, 2048, false, &mtp, NULL);
        put_u32(k, "context_length",
                npos == 8192 && mtp == 2048   ? 2048
                : npos == 2048 && mtp == 2048 ? 512
                                              : npos);
    } else if (h->pos_offset > 0) {
        int64_t npos = 0;
        if (hp_int(cfg, KEYS("max_position_embeddings"), 0, UINT32_MAX, 0, false, &npos, NULL) ==
                INF_OK &&
            npos > h->pos_offset)
            put_u32(k, "context_length", npos - h->pos_offset);
    } else {
        opt_u32(k, cfg,
                KEYS("max_position_embeddings", "n_ctx", "n_positions", "max_length",
                     "max_sequence_length", "model_max_length"),
                "context_length");
    }
    put_u32(k, "embedding_length", h->n_embd);
    if (h->n_ff)
        put_u32(k, "feed_forward_length", h->n_ff);
    put_u32(k, "attention.head_count", h->n_head);
    if (g3 || cfg_get(cfg, KEYS("num_key_value_heads", "n_kv_heads")))
        put_u32(k, "attention.head_count_kv", h->n_head_kv);
    if (r->type && strcmp(r->type, "linear") == 0 && cfg_get(r->params, KEYS("factor"))) {
        put_str(k, "rope.scaling.type", "linear");
        opt_f32(k, r->params, KEYS("factor"), "rope.scaling.factor");
    } else if (r->type && strcmp(r->type, "yarn") == 0 && cfg_get(r->params, KEYS("factor"))) {
        put_str(k, "rope.scaling.type", "yarn");
        opt_f32(k, r->params, KEYS("factor"), "rope.scaling.factor");
        opt_u32(k, r->params, KEYS("original_max_position_embeddings"),
                "rope.scaling.original_context_length");
        opt_f32(k, r->params, KEYS("extrapolation_factor"), "rope.scaling.yarn_ext_factor");
        opt_f32(k, r->params, KEYS("attention_factor", "attn_factor"),
                "rope.scaling.yarn_attn_factor");
        opt_f32(k, r->params, KEYS("beta_fast"), "rope.scaling.yarn_beta_fast");
        opt_f32(k, r->params, KEYS("beta_slow"), "rope.scaling.yarn_beta_slow");
    } else if (r->type && (strcmp(r->type, "su") == 0 || strcmp(r->type, "longrope") == 0)) {
        put_str(k, "rope.scaling.type", "longrope");
    }
    if (g3)
        put_f32(k, "rope.freq_base", r->has_theta ? r->theta : 1000000.0);
    else if (r->has_theta)
        put_f32(k, "rope.freq_base", r->theta);
    if (r->has_theta_swa)
        put_f32(k, "rope.freq_base_swa", r->theta_swa);
    if (g3) {
        double eps = 1e-6;
        hp_num(cfg, KEYS("rms_norm_eps"), &eps);
        put_f32(k, "attention.layer_norm_rms_epsilon", eps);
    } else {
        opt_f32(k, cfg, KEYS("rms_norm_eps", "norm_eps"), "attention.layer_norm_rms_epsilon");
    }
    opt_f32(k, cfg, KEYS("layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"),
            "attention.layer_norm_epsilon");
    if (h->n_expert)
        put_u32(k, "expert_count", h->n_expert);
    opt_u32(k, cfg, KEYS("num_experts_per_tok", "num_experts_per_token", "top_k_experts"),
            "expert_used_count");
    if (g3 || (h->id != A_GRANITE && cfg_get(cfg, KEYS("head_dim")))) {
        put_u32(k, "attention.key_length", h->head_dim);
        put_u32(k, "attention.value_length", h->head_dim);
    }
}

static inf_status arch_params(struct kw *k, const json_t *cfg, const struct hp *h, uint32_t ftype,
                              int pooling, struct inf_error *err)
{
    struct rope r;
    read_rope(cfg, &r);
    switch (h->id) {
    case A_GEMMA2: { /* Gemma2Model.set_gguf_parameters: no TextModel defaults */
        double eps;
        int64_t ctx, swa;
        inf_status rc;
        if ((rc =
                 hp_int(cfg, KEYS("max_position_embeddings"), 1, UINT32_MAX, 0, true, &ctx, err)) ||
            (rc = hp_int(cfg, KEYS("sliding_window"), 0, UINT32_MAX, 0, true, &swa, err)))
            return rc;
        if (!hp_num(cfg, KEYS("rms_norm_eps"), &eps))
            return inf_error_set(err, INF_EFORMAT, "config.json: 'rms_norm_eps' is missing");
        put_u32(k, "context_length", ctx);
        put_u32(k, "embedding_length", h->n_embd);
        put_u32(k, "block_count", h->n_layer);
        put_u32(k, "feed_forward_length", h->n_ff);
        put_u32(k, "attention.head_count", h->n_head);
        put_u32(k, "attention.head_count_kv", h->n_head_kv);
        put_f32(k, "attention.layer_norm_rms_epsilon", eps);
        put_u32(k, "attention.key_length", h->head_dim);
        put_u32(k, "attention.value_length", h->head_dim);
        opt_f32(k, cfg, KEYS("attn_logit_softcapping"), "attn_logit_softcapping");
        opt_f32(k, cfg, KEYS("final_logit_softcapping"), "final_logit_softcapping");
        put_u32(k, "attention.sliding_window", swa);
        if (k->rc == INF_OK)
            k->rc = inf_gguf_writer_set_u32(k->w, "general.file_type", ftype, k->err);
        return k->rc;
    }
    case A_PHI3: {
        double eps, theta = r.has_theta ? r.theta : 10000.0, rot = 1.0;
        int64_t ctx, orig, swa;
        inf_status rc;
        if (!hp_num(r.params, KEYS("partial_rotary_factor"), &rot))
            hp_num(cfg, KEYS("partial_rotary_factor"), &rot);
        if ((rc = hp_int(cfg, KEYS("max_position_embeddings", "n_positions"), 1, UINT32_MAX, 0,
                         true, &ctx, err)))
            return rc;
        if ((rc = hp_int(r.params, KEYS("original_max_position_embeddings"), 1, UINT32_MAX, 0,
                         false, &orig, err)))
            return rc;
        if (!orig && (rc = hp_int(cfg, KEYS("original_max_position_embeddings"), 1, UINT32_MAX, 0,
                                  true, &orig, err)))
            return rc;
        if (!hp_num(cfg, KEYS("rms_norm_eps"), &eps))
            return inf_error_set(err, INF_EFORMAT, "config.json: 'rms_norm_eps' is missing");
        hp_int(cfg, KEYS("sliding_window"), 0, UINT32_MAX, 0, false, &swa, NULL);
        put_u32(k, "context_length", ctx);
        put_u32(k, "rope.scaling.original_context_length", orig);
        put_u32(k, "embedding_length", h->n_embd);
        put_u32(k, "feed_forward_length", h->n_ff);
        put_u32(k, "block_count", h->n_layer);
        put_u32(k, "attention.head_count", h->n_head);
        put_u32(k, "attention.head_count_kv", h->n_head_kv);
        put_f32(k, "attention.layer_norm_rms_epsilon", eps);
        put_u32(k, "rope.dimension_count", (int64_t)(rot * (double)h->n_embd) / h->n_head);
        put_f32(k, "rope.freq_base", theta);
        if (k->rc == INF_OK)
            k->rc = inf_gguf_writer_set_u32(k->w, "general.file_type", ftype, k->err);
        put_u32(k, "attention.sliding_window", swa);
        const json_t *lf = json_object_get(r.params, "long_factor");
        if (json_is_array(lf) && json_array_size(lf) > 0) {
            double scale = (double)ctx / (double)orig;
            const char *t = r.type ? r.type : "";
            double af = 1.0;
            if (strcmp(t, "su") == 0 || strcmp(t, "longrope") == 0)
                af = scale > 1.0 ? sqrt(1 + log(scale) / log((double)orig)) : 1.0;
            else if (strcmp(t, "yarn") == 0)
                af = scale > 1.0 ? 0.1 * log(scale) + 1.0 : 1.0;
            else
                return inf_error_set(err, INF_EUNSUPPORTED,
                                     "config.json: rope scaling type '%s' is not supported", t);
            put_f32(k, "rope.scaling.attn_factor", af);
        }
        return k->rc;
    }
    default:
        break;
    }
    common_params(k, cfg, h, &r);
    if (h->id == A_GEMMA3) {
        double cap;
        if (hp_num(cfg, KEYS("final_logit_softcapping"), &cap) && cap != 0.0)
            put_f32(k, "final_logit_softcapping", cap);
        const json_t *pat = json_object_get(cfg, "sliding_window_pattern");
        if (!(json_is_integer(pat) && json_integer_value(pat) == 1))
            opt_u32(k, cfg, KEYS("sliding_window"), "attention.sliding_window");
    }
    if (k->rc == INF_OK)
        k->rc = inf_gguf_writer_set_u32(k->w, "general.file_type", ftype, k->err);
    if (h->id == A_LLAMA || h->id == A_GRANITE) {
        if (h->n_vocab)
            put_u32(k, "vocab_size", h->n_vocab);
        put_u32(k, "rope.dimension_count", h->head_dim);
    }
    if (IS_ENCODER(h->id)) {
        put_bool(k, "attention.causal", false);
        if (pooling >= 0)
            put_u32(k, "pooling_type", pooling);
    }
    if (h->id == A_QWEN2MOE || h->id == A_QWEN3MOE) {
        opt_u32(k, cfg, KEYS("moe_intermediate_size"), "expert_feed_forward_length");
        opt_u32(k, cfg, KEYS("shared_expert_intermediate_size"),
                "expert_shared_feed_forward_length");
    }
    if (h->id == A_GRANITE) {
        double v;
        if (hp_num(cfg, KEYS("attention_multiplier"), &v) && v != 0.0)
            put_f32(k, "attention.scale", v);
        if (hp_num(cfg, KEYS("embedding_multiplier"), &v) && v != 0.0)
            put_f32(k, "embedding_scale", v);
        if (hp_num(cfg, KEYS("residual_multiplier"), &v) && v != 0.0)
            put_f32(k, "residual_scale", v);
        if (hp_num(cfg, KEYS("logits_scaling"), &v) && v != 0.0)
            put_f32(k, "logit_scale", v);
    }
    return k->rc;
}

/* general.sampling.* from generation_config.json, as gguf-py's Metadata does. */
static inf_status sampling_params(struct inf_gguf_writer *w, const json_t *gen,
                                  struct inf_error *err)
{
    static const struct {
        const char *const keys[3];
        const char *gguf;
        bool integer;
    } rows[] = {
        {{"top_k", NULL}, "general.sampling.top_k", true},
        {{"top_p", NULL}, "general.sampling.top_p", false},
        {{"min_p", NULL}, "general.sampling.min_p", false},
        {{"temperature", NULL}, "general.sampling.temp", false},
        {{"penalty_repeat", "repetition_penalty", NULL}, "general.sampling.penalty_repeat", false},
    };
    inf_status rc = INF_OK;
    for (size_t i = 0; gen && i < sizeof(rows) / sizeof(rows[0]) && rc == INF_OK; i++) {
        const json_t *v = cfg_get(gen, rows[i].keys);
        if (!v || !json_is_number(v))
            continue;
        if (rows[i].integer) {
            if (json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
                json_integer_value(v) <= INT32_MAX)
                rc = inf_gguf_writer_set_i32(w, rows[i].gguf, (int32_t)json_integer_value(v), err);
        } else {
            rc = inf_gguf_writer_set_f32(w, rows[i].gguf, (float)json_number_value(v), err);
        }
    }
    return rc;
}

static inf_status find_arch(const json_t *cfg, enum arch_id *id, const char **name,
                            struct inf_error *err)
{
    const json_t *a = json_object_get(cfg, "architectures");
    const char *hf = json_string_value(json_array_get(a, 0));
    if (!hf)
        return inf_error_set(err, INF_EFORMAT,
                             "config.json: 'architectures' is missing (a list naming the model "
                             "class, such as [\"LlamaForCausalLM\"])");
    for (size_t i = 0; i < N_ARCHS; i++)
        if (strcmp(archs[i].hf, hf) == 0) {
            *id = archs[i].id;
            *name = archs[i].name;
            return INF_OK;
        }
    return inf_error_set(err, INF_EUNSUPPORTED,
                         "config.json: architecture '%.80s' is not supported; known: Llama, "
                         "Mistral, Mixtral, Qwen2, Qwen3, Qwen2-MoE, Qwen3-MoE, Gemma2, Gemma3, "
                         "Phi3, Granite (*ForCausalLM)",
                         hf);
}

/* config.json with text_config's keys moved to the top, as llama.cpp does. */
static inf_status flatten_config(json_t *cfg, struct inf_error *err)
{
    json_t *tc = json_object_get(cfg, "text_config");
    if (json_is_object(tc) && json_object_update(cfg, json_incref(tc)) != 0) {
        json_decref(tc);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    if (json_is_object(tc))
        json_decref(tc);
    return INF_OK;
}

/* Everything but the tensors: general.*, the architecture's keys, the tokenizer. */
static inf_status write_metadata(struct inf__conv_json *j, const struct hp *h, const char *name,
                                 uint32_t ftype, struct inf_gguf_writer *w, struct inf_error *err)
{
    struct kw k = {w, h->arch, INF_OK, err};
    inf_status rc = inf_gguf_writer_set_str(w, "general.architecture", h->arch, err);
    if (rc == INF_OK)
        rc = inf_gguf_writer_set_str(w, "general.type", "model", err);
    if (rc == INF_OK)
        rc = sampling_params(w, j->gen_cfg, err);
    if (rc == INF_OK)
        rc = inf_gguf_writer_set_str(w, "general.name", name, err);
    if (rc == INF_OK)
        rc = arch_params(&k, j->config, h, ftype, j->pooling, err);
    if (rc == INF_OK) {
        j->arch = h->arch;
        j->n_vocab = h->n_vocab;
        /* llama.cpp's LlamaModel: granite's small vocabularies add no BOS */
        j->no_bos = h->id == A_GRANITE && h->n_vocab == 49152;
        rc = inf__conv_vocab(j, w, err);
    }
    if (rc == INF_OK)
        rc = inf_gguf_writer_set_u32(w, "general.quantization_version", 2, err);
    return rc;
}

inf_status inf_convert_metadata_from_memory(const struct inf_convert_files *in,
                                            struct inf_gguf_writer *w, struct inf_error *err)
{
    struct inf__conv_json j = {.pooling = -1};
    struct hp h;
    enum arch_id id;
    const char *arch;
    inf_status rc = inf__conv_parse_json(in->config ? in->config : "", in->config_len,
                                         "config.json", &j.config, err);
    if (rc == INF_OK)
        rc = flatten_config(j.config, err);
    if (rc == INF_OK && in->tokenizer)
        rc = inf__conv_parse_json(in->tokenizer, in->tokenizer_len, "tokenizer.json", &j.tok, err);
    if (rc == INF_OK && in->tokenizer_config)
        rc = inf__conv_parse_json(in->tokenizer_config, in->tokenizer_config_len,
                                  "tokenizer_config.json", &j.tok_cfg, err);
    j.sp_model = in->sp_model;
    j.sp_model_len = in->sp_model_len;
    if (rc == INF_OK)
        rc = find_arch(j.config, &id, &arch, err);
    if (rc == INF_OK)
        rc = read_hp(j.config, id, arch, &h, err);
    if (rc == INF_OK)
        rc = write_metadata(&j, &h, "model", 1, w, err);
    json_decref(j.config);
    json_decref(j.tok);
    json_decref(j.tok_cfg);
    return rc;
}

/* ---- the tensor plan ------------------------------------------------------------------------ */

enum xform { X_NONE, X_PERMUTE_Q, X_PERMUTE_K, X_ADD1 };

struct item {
    char name[96];
    uint32_t type; /* output ggml type */
    uint32_t n_dims;
    int64_t ne[4];
    const struct inf_st_tensor **src; /* n_src sources stacked (experts), or one */
    size_t n_src;
    int64_t rows; /* rows taken from each source (gemma3 cuts token_embd to the vocabulary) */
    int64_t skip; /* rows skipped in front of them (XLM-R's position embeddings) */
    enum xform xform;
    float *gen; /* generated F32 data (rope factors), owned */
    uint64_t bytes;
};

struct plan {
    struct item *items;
    size_t n, cap;
};

static void plan_release(struct plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->items[i].gen);
        free((void *)p->items[i].src);
    }
    free(p->items);
    memset(p, 0, sizeof(*p));
}

static struct item *plan_add(struct plan *p, struct inf_error *err)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        struct item *ni = realloc(p->items, cap * sizeof(*ni));
        if (!ni) {
            inf_error_set(err, INF_ENOMEM, "out of memory");
            return NULL;
        }
        p->items = ni;
        p->cap = cap;
    }
    struct item *it = &p->items[p->n++];
    memset(it, 0, sizeof(*it));
    return it;
}

static const char *st_name(enum inf_st_dtype d)
{
    const struct inf_st_dtype_info *i = inf_st_dtype_info(d);
    return i ? i->name : "?";
}

static uint32_t st_ggml(enum inf_st_dtype d)
{
    return d == INF_ST_F32   ? INF_GGML_TYPE_F32
           : d == INF_ST_F16 ? INF_GGML_TYPE_F16
                             : INF_GGML_TYPE_BF16;
}

static bool ends_with(const char *s, const char *sfx)
{
    size_t n = strlen(s), m = strlen(sfx);
    return n >= m && strcmp(s + n - m, sfx) == 0;
}

/* The output type by llama.cpp's rule; outtype UINT32_MAX: keep the source's float type. */
static uint32_t out_type(const char *name, uint32_t n_dims, uint32_t outtype, uint32_t src)
{
    if (n_dims <= 1 || ends_with(name, "_norm.weight") || strstr(name, "ffn_gate_inp") ||
        !strcmp(name, "position_embd.weight") || !strcmp(name, "token_types.weight") ||
        !ends_with(name, ".weight"))
        return INF_GGML_TYPE_F32;
    return outtype == UINT32_MAX ? src : outtype;
}

/* Per-layer HF suffix -> GGUF suffix. */
static const struct {
    const char *hf, *gguf;
} layer_map[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.o_proj.bias", "attn_output.bias"},
    {"self_attn.qkv_proj.weight", "attn_qkv.weight"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"}, /* post_attention_norm in gemma */
    {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
    {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"mlp.gate_up_proj.weight", "ffn_up.weight"},
    {"mlp.gate.weight", "ffn_gate_inp.weight"},
    {"block_sparse_moe.gate.weight", "ffn_gate_inp.weight"},
    {"mlp.shared_expert.gate_proj.weight", "ffn_gate_shexp.weight"},
    {"mlp.shared_expert.up_proj.weight", "ffn_up_shexp.weight"},
    {"mlp.shared_expert.down_proj.weight", "ffn_down_shexp.weight"},
    {"mlp.shared_expert_gate.weight", "ffn_gate_inp_shexp.weight"},
};

/* Expert projections: HF "mlp.experts.E.<p>.weight" / "block_sparse_moe.experts.E.<w>.weight". */
static const struct {
    const char *base, *proj, *gguf;
} expert_map[] = {
    {"mlp.experts.", "gate_proj.weight", "ffn_gate_exps.weight"},
    {"mlp.experts.", "up_proj.weight", "ffn_up_exps.weight"},
    {"mlp.experts.", "down_proj.weight", "ffn_down_exps.weight"},
    {"block_sparse_moe.experts.", "w1.weight", "ffn_gate_exps.weight"},
    {"block_sparse_moe.experts.", "w3.weight", "ffn_up_exps.weight"},
    {"block_sparse_moe.experts.", "w2.weight", "ffn_down_exps.weight"},
};

/* Strip the multimodal wrappers' prefixes; NULL for tensors to skip. */
static const char *normalize_name(const char *name, char *buf, size_t n)
{
    static const char *const skip[] = {"vision_tower.",          "model.vision_tower.",
                                       "multi_modal_projector.", "model.multi_modal_projector.",
                                       "vision_model.",          "audio_tower."};
    for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
        if (strncmp(name, skip[i], strlen(skip[i])) == 0)
            return NULL;
    if (ends_with(name, ".rotary_emb.inv_freq") || ends_with(name, ".attention.masked_bias"))
        return NULL;
    if (strncmp(name, "model.language_model.", 21) == 0) {
        snprintf(buf, n, "model.%s", name + 21);
        return buf;
    }
    if (strncmp(name, "language_model.", 15) == 0) {
        snprintf(buf, n, "%s", name + 15);
        return buf;
    }
    return name;
}

/* The expected shape of a mapped tensor (outermost first), or n = 0 when not checked. */
static int expected_shape(const struct hp *h, const char *g, int64_t *s)
{
    const int64_t E = h->n_embd, Q = h->n_head * h->head_dim, KV = h->n_head_kv * h->head_dim;
#define S2(a, b) (s[0] = (a), s[1] = (b), 2)
#define S1(a)    (s[0] = (a), 1)
    if (!strcmp(g, "attn_q.weight"))
        return S2(Q, E);
    if (!strcmp(g, "attn_k.weight") || !strcmp(g, "attn_v.weight"))
        return S2(KV, E);
    if (!strcmp(g, "attn_q.bias"))
        return S1(Q);
    if (!strcmp(g, "attn_k.bias") || !strcmp(g, "attn_v.bias"))
        return S1(KV);
    if (!strcmp(g, "attn_output.weight"))
        return S2(E, Q);
    if (!strcmp(g, "attn_qkv.weight"))
        return S2(Q + 2 * KV, E);
    if (!strcmp(g, "attn_norm.weight") || !strcmp(g, "ffn_norm.weight") ||
        !strcmp(g, "post_attention_norm.weight") || !strcmp(g, "post_ffw_norm.weight"))
        return S1(E);
    if (h->n_ff && h->n_expert == 0) {
        if (!strcmp(g, "ffn_gate.weight"))
            return S2(h->n_ff, E);
        if (!strcmp(g, "ffn_up.weight"))
            return S2(h->id == A_PHI3 ? 2 * h->n_ff : h->n_ff, E);
        if (!strcmp(g, "ffn_down.weight"))
            return S2(E, h->n_ff);
    }
    if (!strcmp(g, "ffn_gate_inp.weight") && h->n_expert)
        return S2(h->n_expert, E);
    return 0;
#undef S1
#undef S2
}

static void shape_str(char *buf, size_t n, const int64_t *s, int nd)
{
    size_t len = 0;
    buf[0] = '\0';
    len += (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < nd && len < n; d++)
        len += (size_t)snprintf(buf + len, n - len, "%s%" PRId64, d ? ", " : "", s[d]);
    if (len < n)
        snprintf(buf + len, n - len, "]");
}

static inf_status check_shape(const struct hp *h, const struct inf_st_tensor *t, const char *g,
                              struct inf_error *err)
{
    int64_t s[4];
    int nd = expected_shape(h, g, s);
    bool ok = nd == 0 || (int)t->n_dims == nd;
    for (int d = 0; ok && d < nd; d++)
        ok = t->shape[d] == s[d];
    if (!ok) {
        char got[96], want[96];
        shape_str(got, sizeof(got), t->shape, (int)t->n_dims);
        shape_str(want, sizeof(want), s, nd);
        return inf_error_set(
            err, INF_EFORMAT,
            "tensor '%s': shape %s, but config.json gives %s (hidden_size %" PRId64 ", %" PRId64
            " heads, %" PRId64 " KV heads of %" PRId64 ", intermediate_size %" PRId64 ")",
            t->name, got, want, h->n_embd, h->n_head, h->n_head_kv, h->head_dim, h->n_ff);
    }
    if (t->n_dims < 1 || t->n_dims > 3)
        return inf_error_set(err, INF_EFORMAT, "tensor '%s': %u dimensions (1 to 3 expected)",
                             t->name, t->n_dims);
    return INF_OK;
}

static inf_status check_dtype(const struct inf_st_tensor *t, struct inf_error *err)
{
    if (t->dtype != INF_ST_F32 && t->dtype != INF_ST_F16 && t->dtype != INF_ST_BF16)
        return inf_error_set(err, INF_EUNSUPPORTED,
                             "tensor '%s': dtype %s is not supported (F32, F16 and BF16 are; "
                             "pre-quantized checkpoints cannot be converted)",
                             t->name, st_name(t->dtype));
    return INF_OK;
}

/* Fill it's GGUF shape (reversed) from a source. */
static void set_shape(struct item *it, const struct inf_st_tensor *t, int64_t rows, size_t n_stack)
{
    it->n_dims = t->n_dims;
    for (uint32_t d = 0; d < t->n_dims; d++)
        it->ne[d] = t->shape[t->n_dims - 1 - d];
    it->ne[t->n_dims - 1] = rows;
    for (uint32_t d = t->n_dims; d < 4; d++)
        it->ne[d] = 1;
    if (n_stack > 1)
        it->ne[it->n_dims++] = (int64_t)n_stack;
    it->rows = rows;
}

static inf_status add_single(struct plan *p, const struct hp *h, const struct inf_st_tensor *t,
                             const char *gname, enum xform xf, int64_t max_rows, uint32_t outtype,
                             struct inf_error *err)
{
    inf_status rc = check_dtype(t, err);
    if (rc != INF_OK)
        return rc;
    const char *base = strncmp(gname, "blk.", 4) == 0 ? strchr(gname + 4, '.') + 1 : gname;
    if ((rc = check_shape(h, t, base, err)) != INF_OK)
        return rc;
    struct item *it = plan_add(p, err);
    if (!it)
        return INF_ENOMEM;
    snprintf(it->name, sizeof(it->name), "%s", gname);
    const struct inf_st_tensor **one = malloc(sizeof(const struct inf_st_tensor *));
    if (!one) {
        p->n--;
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    one[0] = t;
    it->src = one;
    it->n_src = 1;
    it->xform = xf;
    int64_t rows = t->shape[0];
    if (max_rows > 0 && rows > max_rows)
        rows = max_rows;
    set_shape(it, t, rows, 1);
    it->type = out_type(it->name, it->n_dims, outtype, st_ggml(t->dtype));
    return INF_OK;
}

/* Gather experts 0..n-1 of one layer and projection into one stacked item. */
static inf_status add_experts(struct plan *p, const struct hp *h, const struct inf_safetensors *st,
                              const char *prefix, int bid, size_t e, uint32_t outtype,
                              uint8_t *used, struct inf_error *err)
{
    size_t n = (size_t)h->n_expert;
    const struct inf_st_tensor **src = calloc(n ? n : 1, sizeof(const struct inf_st_tensor *));
    char nm[256];
    if (!src)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    for (size_t x = 0; x < n; x++) {
        snprintf(nm, sizeof(nm), "%smodel.layers.%d.%s%zu.%s", prefix, bid, expert_map[e].base, x,
                 expert_map[e].proj);
        src[x] = inf_safetensors_find_tensor(st, nm);
        if (!src[x]) {
            free(src);
            return inf_error_set(err, INF_EFORMAT,
                                 "tensor '%s' is missing (config.json gives %zu experts)", nm, n);
        }
        inf_status rc = check_dtype(src[x], err);
        if (rc == INF_OK &&
            (src[x]->n_dims != 2 || src[x]->dtype != src[0]->dtype ||
             src[x]->shape[0] != src[0]->shape[0] || src[x]->shape[1] != src[0]->shape[1]))
            rc = inf_error_set(err, INF_EFORMAT,
                               "tensor '%s': shape or dtype differs from expert 0's", nm);
        if (rc != INF_OK) {
            free(src);
            return rc;
        }
        used[src[x] - inf_safetensors_tensor_at(st, 0)] = 1;
    }
    int64_t want_e = h->n_embd;
    bool down = strstr(expert_map[e].gguf, "down") != NULL;
    if ((down ? src[0]->shape[0] : src[0]->shape[1]) != want_e) {
        inf_status rc = inf_error_set(err, INF_EFORMAT,
                                      "tensor '%s': shape [%" PRId64 ", %" PRId64
                                      "] does not match hidden_size %" PRId64,
                                      src[0]->name, src[0]->shape[0], src[0]->shape[1], want_e);
        free(src);
        return rc;
    }
    struct item *it = plan_add(p, err);
    if (!it) {
        free(src);
        return INF_ENOMEM;
    }
    snprintf(it->name, sizeof(it->name), "blk.%d.%s", bid, expert_map[e].gguf);
    it->src = src;
    it->n_src = n;
    set_shape(it, src[0], src[0]->shape[0], n);
    it->type = out_type(it->name, it->n_dims, outtype, st_ggml(src[0]->dtype));
    return INF_OK;
}

static inf_status add_generated(struct plan *p, const char *name, float *data, int64_t n,
                                struct inf_error *err)
{
    struct item *it = plan_add(p, err);
    if (!it) {
        free(data);
        return INF_ENOMEM;
    }
    snprintf(it->name, sizeof(it->name), "%s", name);
    it->gen = data;
    it->n_dims = 1;
    it->ne[0] = n;
    it->ne[1] = it->ne[2] = it->ne[3] = 1;
    it->rows = 1;
    it->type = INF_GGML_TYPE_F32;
    return INF_OK;
}

/* Tensors computed from config.json: llama3's rope_freqs, phi3's LongRoPE factors. */
static inf_status generated_tensors(struct plan *p, const json_t *cfg, const struct hp *h,
                                    struct inf_error *err)
{
    struct rope r;
    read_rope(cfg, &r);
    if ((h->id == A_LLAMA || h->id == A_GRANITE) && r.type && strcasecmp(r.type, "llama3") == 0) {
        int64_t dim = h->head_dim, n = dim / 2;
        double base = r.has_theta ? r.theta : 10000.0, factor = 8.0, lo = 1.0, hi = 4.0;
        double old = 8192;
        hp_num(r.params, KEYS("factor"), &factor);
        hp_num(r.params, KEYS("low_freq_factor"), &lo);
        hp_num(r.params, KEYS("high_freq_factor"), &hi);
        hp_num(r.params, KEYS("original_max_position_embeddings"), &old);
        float *f = malloc((size_t)n * sizeof(float));
        if (!f)
            return inf_error_set(err, INF_ENOMEM, "out of memory");
        float lo_wl = (float)(old / lo), hi_wl = (float)(old / hi);
        for (int64_t i = 0; i < n; i++) {
            /* torch float32 arithmetic, as llama.cpp computes it */
            float freq = (float)(1.0 / pow(base, (double)(float)(2 * i) / (double)dim));
            float wl = (float)(2 * M_PI) / freq;
            if (wl < hi_wl) {
                f[i] = 1.0f;
            } else if (wl > lo_wl) {
                f[i] = (float)factor;
            } else {
                float smooth = ((float)old / wl - (float)lo) / ((float)hi - (float)lo);
                f[i] = 1.0f / ((1 - smooth) / (float)factor + smooth);
            }
        }
        return add_generated(p, "rope_freqs.weight", f, n, err);
    }
    if (h->id == A_PHI3) {
        const json_t *lf = json_object_get(r.params, "long_factor");
        const json_t *sf = json_object_get(r.params, "short_factor");
        if (!json_is_array(lf) || json_array_size(lf) == 0)
            return INF_OK;
        double rot = 1.0;
        if (!hp_num(r.params, KEYS("partial_rotary_factor"), &rot))
            hp_num(cfg, KEYS("partial_rotary_factor"), &rot);
        int64_t rope_dims = (int64_t)(rot * (double)h->n_embd) / h->n_head;
        if (!json_is_array(sf) || (int64_t)json_array_size(lf) * 2 != rope_dims ||
            json_array_size(sf) != json_array_size(lf))
            return inf_error_set(err, INF_EFORMAT,
                                 "config.json: rope_scaling long_factor and short_factor must "
                                 "both have %" PRId64 " values",
                                 rope_dims / 2);
        for (int which = 0; which < 2; which++) {
            const json_t *arr = which ? sf : lf;
            size_t n = json_array_size(arr), i;
            const json_t *el;
            float *f = malloc(n * sizeof(float));
            if (!f)
                return inf_error_set(err, INF_ENOMEM, "out of memory");
            json_array_foreach(arr, i, el)
            {
                f[i] = (float)json_number_value(el);
            }
            inf_status rc =
                add_generated(p, which ? "rope_factors_short.weight" : "rope_factors_long.weight",
                              f, (int64_t)n, err);
            if (rc != INF_OK)
                return rc;
        }
    }
    return INF_OK;
}

/* BERT's and nomic-bert's names (after "bert." is stripped, gamma/beta renamed). */
static const struct {
    const char *hf, *gguf;
} enc_global[] =
    {
        {"embeddings.word_embeddings.weight", "token_embd.weight"},
        {"embeddings.position_embeddings.weight", "position_embd.weight"},
        {"embeddings.token_type_embeddings.weight", "token_types.weight"},
        {"embeddings.LayerNorm.weight", "token_embd_norm.weight"},
        {"embeddings.LayerNorm.bias", "token_embd_norm.bias"},
        {"emb_ln.weight", "token_embd_norm.weight"},
        {"emb_ln.bias", "token_embd_norm.bias"},
},
  enc_layer[] = {
      {"attention.self.query.weight", "attn_q.weight"},
      {"attention.self.query.bias", "attn_q.bias"},
      {"attention.self.key.weight", "attn_k.weight"},
      {"attention.self.key.bias", "attn_k.bias"},
      {"attention.self.value.weight", "attn_v.weight"},
      {"attention.self.value.bias", "attn_v.bias"},
      {"attention.output.dense.weight", "attn_output.weight"},
      {"attention.output.dense.bias", "attn_output.bias"},
      {"attention.output.LayerNorm.weight", "attn_output_norm.weight"},
      {"attention.output.LayerNorm.bias", "attn_output_norm.bias"},
      {"intermediate.dense.weight", "ffn_up.weight"},
      {"intermediate.dense.bias", "ffn_up.bias"},
      {"output.dense.weight", "ffn_down.weight"},
      {"output.dense.bias", "ffn_down.bias"},
      {"output.LayerNorm.weight", "layer_output_norm.weight"},
      {"output.LayerNorm.bias", "layer_output_norm.bias"},
      {"attn.Wqkv.weight", "attn_qkv.weight"},
      {"attn.out_proj.weight", "attn_output.weight"},
      {"norm1.weight", "attn_output_norm.weight"},
      {"norm1.bias", "attn_output_norm.bias"},
      {"mlp.fc11.weight", "ffn_up.weight"},
      {"mlp.fc12.weight", "ffn_gate.weight"},
      {"mlp.fc2.weight", "ffn_down.weight"},
      {"norm2.weight", "layer_output_norm.weight"},
      {"norm2.bias", "layer_output_norm.bias"},
};

/* "<prefix><digits>." at the start of s: the number (below 2^20) and what follows the dot. */
static bool parse_index(const char *s, const char *prefix, int *idx, const char **rest)
{
    size_t n = strlen(prefix);
    char *end;
    if (strncmp(s, prefix, n) != 0 || s[n] < '0' || s[n] > '9')
        return false;
    errno = 0;
    long v = strtol(s + n, &end, 10);
    if (errno || v < 0 || v >= (1L << 20) || *end != '.')
        return false;
    *idx = (int)v;
    *rest = end + 1;
    return true;
}

/* An encoder tensor's GGUF name into g: 1 mapped, 0 skipped (pooler, MLM head), -1 unknown.
 *bid gets the layer (-1 for global tensors). */
static int encoder_name(const char *name, char *g, size_t n, int *bid)
{
    char buf[512];
    *bid = -1;
    if (!strncmp(name, "bert.", 5))
        name += 5;
    else if (!strncmp(name, "roberta.", 8))
        name += 8;
    snprintf(buf, sizeof(buf), "%s", name);
    size_t len = strlen(buf);
    if (len > 6 && !strcmp(buf + len - 6, ".gamma"))
        snprintf(buf + len - 6, sizeof(buf) - (len - 6), ".weight");
    else if (len > 5 && !strcmp(buf + len - 5, ".beta"))
        snprintf(buf + len - 5, sizeof(buf) - (len - 5), ".bias");
    if (!strcmp(buf, "embeddings.position_ids") || !strncmp(buf, "pooler.", 7) ||
        !strncmp(buf, "cls.predictions", 15) || !strncmp(buf, "cls.seq_relationship", 20))
        return 0;
    for (size_t i = 0; i < sizeof(enc_global) / sizeof(enc_global[0]); i++)
        if (!strcmp(buf, enc_global[i].hf)) {
            snprintf(g, n, "%s", enc_global[i].gguf);
            return 1;
        }
    const char *rest;
    if (parse_index(buf, "encoder.layer.", bid, &rest) ||
        parse_index(buf, "encoder.layers.", bid, &rest)) {
        for (size_t i = 0; i < sizeof(enc_layer) / sizeof(enc_layer[0]); i++)
            if (!strcmp(rest, enc_layer[i].hf)) {
                snprintf(g, n, "blk.%d.%s", *bid, enc_layer[i].gguf);
                return 1;
            }
    }
    *bid = -1;
    return -1;
}

static inf_status make_plan(const struct inf_safetensors *st, const json_t *cfg, const struct hp *h,
                            int64_t n_tokens, uint32_t outtype, struct plan *p,
                            struct inf_error *err)
{
    size_t n = inf_safetensors_n_tensors(st);
    uint8_t *used = calloc(n ? n : 1, 1);
    uint8_t *layer_seen = calloc((size_t)h->n_layer, 1);
    bool have_embd = false;
    char buf[512];
    inf_status rc = INF_OK;
    if (!used || !layer_seen) {
        free(used);
        free(layer_seen);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    rc = generated_tensors(p, cfg, h, err);
    for (size_t i = 0; i < n && rc == INF_OK; i++) {
        const struct inf_st_tensor *t = inf_safetensors_tensor_at(st, i);
        if (used[i])
            continue;
        if (IS_ENCODER(h->id)) {
            char g[160];
            int bid, m = encoder_name(t->name, g, sizeof(g), &bid);
            if (m == 0)
                continue;
            if (m < 0) {
                rc = inf_error_set(err, INF_EUNSUPPORTED,
                                   "tensor '%s' has no GGUF name for architecture '%s'", t->name,
                                   h->arch);
                break;
            }
            if (bid >= h->n_layer) {
                rc =
                    inf_error_set(err, INF_EFORMAT,
                                  "tensor '%s': layer %d, but config.json gives %" PRId64 " layers",
                                  t->name, bid, h->n_layer);
                break;
            }
            if (!strcmp(g, "token_embd.weight")) {
                have_embd = true;
                if (t->n_dims != 2 || t->shape[1] != h->n_embd) {
                    rc = inf_error_set(err, INF_EFORMAT,
                                       "tensor '%s': not a matrix of hidden_size %" PRId64
                                       " columns",
                                       t->name, h->n_embd);
                    break;
                }
            }
            if (bid >= 0 && ends_with(g, ".attn_output_norm.weight"))
                layer_seen[bid] = 1;
            rc = add_single(p, h, t, g, X_NONE, 0, outtype, err);
            if (rc == INF_OK && h->pos_offset > 0 && !strcmp(g, "position_embd.weight")) {
                if (t->n_dims != 2 || t->shape[0] <= h->pos_offset) {
                    rc = inf_error_set(err, INF_EFORMAT,
                                       "tensor '%s': %" PRId64 " rows, not more than the %" PRId64
                                       " padding positions (pad_token_id + 1)",
                                       t->name, t->shape[0], h->pos_offset);
                    break;
                }
                struct item *it = &p->items[p->n - 1];
                set_shape(it, t, t->shape[0] - h->pos_offset, 1);
                it->skip = h->pos_offset;
            }
            continue;
        }
        const char *name = normalize_name(t->name, buf, sizeof(buf));
        if (!name)
            continue;
        const bool prefixed = name == buf; /* a multimodal wrapper's language model */
        if (!strcmp(name, "model.embed_tokens.weight")) {
            have_embd = true;
            rc = add_single(p, h, t, "token_embd.weight", X_NONE, h->id == A_GEMMA3 ? n_tokens : 0,
                            outtype, err);
            if (rc == INF_OK && t->shape[1] != h->n_embd)
                rc = inf_error_set(err, INF_EFORMAT,
                                   "tensor '%s': %" PRId64 " columns but hidden_size is %" PRId64,
                                   t->name, t->shape[1], h->n_embd);
            continue;
        }
        if (!strcmp(name, "model.norm.weight")) {
            rc = add_single(p, h, t, "output_norm.weight", h->norm_plus1 ? X_ADD1 : X_NONE, 0,
                            outtype, err);
            if (rc == INF_OK && (t->n_dims != 1 || t->shape[0] != h->n_embd))
                rc = inf_error_set(err, INF_EFORMAT, "tensor '%s': not a vector of hidden_size",
                                   t->name);
            continue;
        }
        if (!strcmp(name, "lm_head.weight")) {
            if (h->id == A_GEMMA2)
                continue; /* tied to the embedding; llama.cpp's Gemma2Model drops it */
            rc = add_single(p, h, t, "output.weight", X_NONE, 0, outtype, err);
            if (rc == INF_OK && (t->n_dims != 2 || t->shape[1] != h->n_embd))
                rc = inf_error_set(err, INF_EFORMAT,
                                   "tensor '%s': not a matrix of hidden_size columns", t->name);
            continue;
        }
        int bid = -1;
        const char *rest;
        if (parse_index(name, "model.layers.", &bid, &rest)) {
            if (bid < 0 || bid >= h->n_layer) {
                rc =
                    inf_error_set(err, INF_EFORMAT,
                                  "tensor '%s': layer %d, but config.json gives %" PRId64 " layers",
                                  t->name, bid, h->n_layer);
                break;
            }
            char g[128];
            bool mapped = false;
            for (size_t e = 0; e < sizeof(expert_map) / sizeof(expert_map[0]) && !mapped; e++) {
                int x;
                const char *proj;
                if (parse_index(rest, expert_map[e].base, &x, &proj) &&
                    !strcmp(proj, expert_map[e].proj)) {
                    mapped = true;
                    if (h->n_expert == 0) {
                        rc = inf_error_set(err, INF_EFORMAT,
                                           "tensor '%s': an expert, but config.json gives no "
                                           "num_experts",
                                           t->name);
                        break;
                    }
                    if (x >= h->n_expert) {
                        rc = inf_error_set(err, INF_EFORMAT,
                                           "tensor '%s': expert %d, but config.json gives %" PRId64
                                           " experts",
                                           t->name, x, h->n_expert);
                        break;
                    }
                    if (prefixed) {
                        rc = inf_error_set(err, INF_EUNSUPPORTED,
                                           "tensor '%s': experts under a multimodal prefix are "
                                           "not supported",
                                           t->name);
                        break;
                    }
                    rc = add_experts(p, h, st, "", bid, e, outtype, used, err);
                }
            }
            if (mapped)
                continue;
            for (size_t m = 0; m < sizeof(layer_map) / sizeof(layer_map[0]); m++) {
                if (strcmp(rest, layer_map[m].hf) != 0)
                    continue;
                const char *gs = layer_map[m].gguf;
                if (h->norm_plus1 && !strcmp(layer_map[m].hf, "post_attention_layernorm.weight"))
                    gs = "post_attention_norm.weight";
                snprintf(g, sizeof(g), "blk.%d.%s", bid, gs);
                enum xform xf = X_NONE;
                if (h->permute && !strncmp(gs, "attn_q.", 7))
                    xf = X_PERMUTE_Q;
                else if (h->permute && !strncmp(gs, "attn_k.", 7))
                    xf = X_PERMUTE_K;
                else if (h->norm_plus1 && ends_with(gs, "norm.weight"))
                    xf = X_ADD1;
                rc = add_single(p, h, t, g, xf, 0, outtype, err);
                mapped = true;
                if (!strcmp(gs, "attn_norm.weight"))
                    layer_seen[bid] = 1;
                break;
            }
            if (mapped)
                continue;
        }
        rc = inf_error_set(err, INF_EUNSUPPORTED,
                           "tensor '%s' has no GGUF name for architecture '%s' (llama.cpp's "
                           "converter would refuse it too)",
                           t->name, h->arch);
    }
    const bool enc = IS_ENCODER(h->id);
    if (rc == INF_OK && !have_embd)
        rc = inf_error_set(err, INF_EFORMAT, "no tensor '%s' in the safetensors",
                           enc ? "embeddings.word_embeddings.weight" : "model.embed_tokens.weight");
    for (int64_t l = 0; rc == INF_OK && l < h->n_layer; l++)
        if (!layer_seen[l])
            rc = inf_error_set(err, INF_EFORMAT,
                               "no tensor '%s%" PRId64 "%s': config.json gives %" PRId64 " layers",
                               enc ? "encoder.layer." : "model.layers.", l,
                               enc ? h->id == A_NOMIC ? ".norm1.weight"
                                                      : ".attention.output.LayerNorm.weight"
                                   : ".input_layernorm.weight",
                               h->n_layer);
    /* duplicate GGUF names (two HF spellings of one tensor) */
    for (size_t a = 0; rc == INF_OK && a < p->n; a++)
        for (size_t b = a + 1; rc == INF_OK && b < p->n; b++)
            if (!strcmp(p->items[a].name, p->items[b].name))
                rc = inf_error_set(err, INF_EFORMAT, "two tensors map to '%s'", p->items[a].name);
    free(used);
    free(layer_seen);
    return rc;
}

/* ---- streaming ------------------------------------------------------------------------------ */

#define OUT_SLAB (8u << 20)

struct writer {
    FILE *f;
    const char *path; /* for messages */
    uint8_t *obuf;    /* OUT_SLAB (or one row when larger) */
    size_t ocap, olen;
    float *fbuf; /* one row of F32 */
    uint64_t written;
};

static inf_status w_flush(struct writer *w, struct inf_error *err)
{
    if (w->olen && fwrite(w->obuf, 1, w->olen, w->f) != w->olen)
        return inf_error_set(err, INF_EIO, "cannot write '%s': %s", w->path, strerror(errno));
    w->written += w->olen;
    w->olen = 0;
    return INF_OK;
}

static inf_status w_direct(struct writer *w, const void *p, size_t n, struct inf_error *err)
{
    inf_status rc = w_flush(w, err);
    if (rc == INF_OK && n && fwrite(p, 1, n, w->f) != n)
        rc = inf_error_set(err, INF_EIO, "cannot write '%s': %s", w->path, strerror(errno));
    w->written += n;
    return rc;
}

/* Drop the mapping's pages of [p, p + n) from this process (the page cache keeps them). */
static void drop_pages(const void *p, size_t n)
{
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0 || n == 0)
        return;
    size_t lead = (size_t)((uintptr_t)p % (uintptr_t)pg);
    (void)madvise((char *)(const char *)p - lead, n + lead, MADV_DONTNEED);
}

static void prefetch_pages(const void *p, size_t n)
{
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0 || n == 0)
        return;
    size_t lead = (size_t)((uintptr_t)p % (uintptr_t)pg);
    char *a = (char *)(const char *)p - lead;
    (void)madvise(a, n + lead, MADV_SEQUENTIAL);
    (void)madvise(a, n + lead, MADV_WILLNEED);
}

/* The source row for output row r of a permuted Q (heads = n_head) or K (n_head_kv) tensor:
   llama.cpp's permute reshapes the rows to (heads, 2, half) and swaps the last two. */
static int64_t perm_row(int64_t r, int64_t rows, int64_t heads)
{
    int64_t hd = rows / heads, half = hd / 2;
    int64_t h = r / hd, rem = r % hd;
    return h * hd + (rem % 2) * half + rem / 2;
}

static inf_status write_source(struct writer *w, const struct item *it,
                               const struct inf_st_tensor *t, const struct hp *h,
                               struct inf_error *err)
{
    const size_t esz = t->dtype == INF_ST_F32 ? 4 : 2;
    const uint32_t st = st_ggml(t->dtype);
    int64_t rows = it->rows, cols = 1;
    for (uint32_t d = 1; d < t->n_dims; d++)
        cols *= t->shape[d];
    if (t->n_dims == 1) { /* a bias (or norm): permuted as a column */
        cols = 1;
        rows = t->shape[0];
    }
    const size_t in_row = (size_t)cols * esz;
    const uint8_t *data = (const uint8_t *)t->data + (size_t)it->skip * in_row;
    inf_status rc = INF_OK;

    prefetch_pages(data, (size_t)rows * in_row);
    if (it->xform == X_NONE && it->type == st) {
        rc = w_direct(w, data, (size_t)rows * in_row, err);
        drop_pages(data, (size_t)rows * in_row);
        return rc;
    }
    int64_t heads = it->xform == X_PERMUTE_Q ? h->n_head : h->n_head_kv;
    const bool perm = it->xform == X_PERMUTE_Q || it->xform == X_PERMUTE_K;
    /* a 1-D tensor converts as one row; a permuted one row by row */
    if (t->n_dims == 1 && !perm) {
        cols = rows;
        rows = 1;
    }
    const size_t in_r = (size_t)cols * esz,
                 out_r = inf_type_row_size((enum inf_type)it->type, cols);
    for (int64_t r = 0; r < rows && rc == INF_OK; r++) {
        int64_t sr = perm ? perm_row(r, rows, heads) : r;
        const uint8_t *src = data + (size_t)sr * in_r;
        if (w->olen + out_r > w->ocap && (rc = w_flush(w, err)) != INF_OK)
            break;
        uint8_t *dst = w->obuf + w->olen;
        if (it->type == st && it->xform != X_ADD1) {
            memcpy(dst, src, in_r);
        } else {
            if (st == INF_GGML_TYPE_F32)
                memcpy(w->fbuf, src, (size_t)cols * sizeof(float));
            else
                rc = inf_dequantize_row((enum inf_type)st, src, w->fbuf, cols, err);
            if (it->xform == X_ADD1) {
                /* llama.cpp adds the 1 in torch with the checkpoint's type: BF16 is widened to
                   F32 first, F16 is not, so an F16 sum is rounded to F16 */
                for (int64_t c = 0; c < cols; c++) {
                    w->fbuf[c] += 1.0f;
                    if (st == INF_GGML_TYPE_F16) {
                        uint16_t hv;
                        inf_f32_to_f16_row(&w->fbuf[c], &hv, 1);
                        inf_f16_to_f32_row(&hv, &w->fbuf[c], 1);
                    }
                }
            }
            if (rc == INF_OK)
                rc = inf_quantize_row((enum inf_type)it->type, w->fbuf, dst, cols, err);
        }
        w->olen += out_r;
        if ((r & 4095) == 4095)
            drop_pages(data, (size_t)sr * in_r);
    }
    drop_pages(data, (size_t)rows * in_r);
    return rc;
}

static inf_status write_item(struct writer *w, const struct item *it, const struct hp *h,
                             uint32_t align, volatile sig_atomic_t *cancel, struct inf_error *err)
{
    static const uint8_t zeros[256];
    inf_status rc = INF_OK;
    uint64_t start = w->written + w->olen;
    if (it->gen) {
        if (w->olen + (size_t)it->ne[0] * 4 > w->ocap)
            rc = w_flush(w, err);
        if (rc == INF_OK)
            rc = w_direct(w, it->gen, (size_t)it->ne[0] * sizeof(float), err);
    }
    for (size_t s = 0; s < it->n_src && rc == INF_OK; s++) {
        if (cancel && *cancel)
            return inf_error_set(err, INF_ECANCELED, "interrupted");
        rc = write_source(w, it, it->src[s], h, err);
    }
    uint64_t n = w->written + w->olen - start;
    if (rc == INF_OK && n != it->bytes)
        rc = inf_error_set(err, INF_EFORMAT,
                           "tensor '%s': wrote %" PRIu64 " bytes, planned %" PRIu64, it->name, n,
                           it->bytes);
    uint64_t pad = (align - it->bytes % align) % align;
    if (rc == INF_OK && pad) {
        if (w->olen + pad > w->ocap)
            rc = w_flush(w, err);
        if (rc == INF_OK) {
            memcpy(w->obuf + w->olen, zeros, (size_t)pad);
            w->olen += (size_t)pad;
        }
    }
    return rc;
}

/* ---- files ---------------------------------------------------------------------------------- */

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Read dir/name (at most max bytes) into *out; *out = NULL when the file is absent. */
static inf_status read_file(const char *dir, const char *name, size_t max, char **out, size_t *len,
                            struct inf_error *err)
{
    char *p = path_join(dir, name);
    *out = NULL;
    *len = 0;
    if (!p)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    FILE *f = fopen(p, "rb");
    if (!f) {
        int e = errno;
        free(p);
        if (e == ENOENT)
            return INF_OK;
        return inf_error_set(err, INF_EIO, "cannot open '%s/%s': %s", dir, name, strerror(e));
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && !S_ISREG(sb.st_mode)) {
        fclose(f);
        free(p);
        return inf_error_set(err, INF_EINVAL, "'%s/%s' is not a regular file", dir, name);
    }
    *out = inf__read_stream(f, max, len);
    int e = errno;
    fclose(f);
    free(p);
    if (!*out)
        return inf_error_set(err, e == EFBIG ? INF_ELIMIT : INF_EIO, "cannot read '%s/%s': %s", dir,
                             name, e == EFBIG ? "too large" : strerror(e));
    return INF_OK;
}

static inf_status load_json(const char *dir, const char *name, size_t max, bool required,
                            json_t **out, struct inf_error *err)
{
    char *text;
    size_t len;
    *out = NULL;
    inf_status rc = read_file(dir, name, max, &text, &len, err);
    if (rc != INF_OK)
        return rc;
    if (!text)
        return required ? inf_error_set(err, INF_ENOTFOUND, "'%s' has no %s", dir, name) : INF_OK;
    rc = inf__conv_parse_json(text, len, name, out, err);
    free(text);
    return rc;
}

/* sentence-transformers' pooling (modules.json -> the Pooling module's config.json), as
   llama.cpp's _try_set_pooling_type reads it: 1 mean, 2 cls, 3 last; -1 when absent. */
static inf_status read_pooling(const char *dir, int *pooling, struct inf_error *err)
{
    json_t *mods = NULL, *pc = NULL;
    size_t i;
    const json_t *m;
    const char *path = NULL;
    *pooling = -1;
    char *text;
    size_t len;
    inf_status rc = read_file(dir, "modules.json", INF__CONV_MAX_CONFIG, &text, &len, err);
    if (rc != INF_OK || !text)
        return rc;
    json_error_t je;
    mods = json_loadb(text, len, 0, &je);
    free(text);
    json_array_foreach(mods, i, m)
    {
        const char *type = json_string_value(json_object_get(m, "type"));
        if (type && ends_with(type, "Pooling")) {
            path = json_string_value(json_object_get(m, "path"));
            break;
        }
    }
    if (path && !strstr(path, "..") && path[0] != '/') {
        char sub[512];
        snprintf(sub, sizeof(sub), "%s/config.json", path);
        rc = load_json(dir, sub, INF__CONV_MAX_CONFIG, false, &pc, err);
        if (rc == INF_OK && pc) {
            const char *mode = json_string_value(json_object_get(pc, "pooling_mode"));
            if (json_is_true(json_object_get(pc, "pooling_mode_mean_tokens")))
                *pooling = 1;
            else if (json_is_true(json_object_get(pc, "pooling_mode_cls_token")))
                *pooling = 2;
            else if (json_is_true(json_object_get(pc, "pooling_mode_lasttoken")))
                *pooling = 3;
            else if (mode && !strcmp(mode, "mean"))
                *pooling = 1;
            else if (mode && !strcmp(mode, "cls"))
                *pooling = 2;
            else if (mode && !strcmp(mode, "lasttoken"))
                *pooling = 3;
            else
                rc = inf_error_set(err, INF_EUNSUPPORTED,
                                   "'%s/%s': only mean, cls and last-token pooling are supported",
                                   dir, sub);
        }
    }
    json_decref(pc);
    json_decref(mods);
    return rc;
}

static inf_status open_weights(const char *dir, struct inf_safetensors **st, struct inf_error *err)
{
    char *p = path_join(dir, "model.safetensors.index.json");
    inf_status rc;
    if (!p)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    if (access(p, F_OK) == 0) {
        rc = inf_safetensors_open_index(p, st, err);
        free(p);
        return rc;
    }
    free(p);
    p = path_join(dir, "model.safetensors");
    if (!p)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    if (access(p, F_OK) == 0) {
        rc = inf_safetensors_open_file(p, st, err);
        free(p);
        return rc;
    }
    free(p);
    p = path_join(dir, "pytorch_model.bin");
    bool pt = p && access(p, F_OK) == 0;
    free(p);
    if (pt)
        return inf_error_set(err, INF_EUNSUPPORTED,
                             "'%s' has PyTorch weights (pytorch_model.bin); only safetensors "
                             "(model.safetensors or model.safetensors.index.json) can be converted",
                             dir);
    return inf_error_set(err, INF_ENOTFOUND,
                         "'%s' has no model.safetensors nor model.safetensors.index.json", dir);
}

/* An unlinked temporary file in path's directory, for the quantizer's input. */
static int temp_fd(const char *out_path)
{
    const char *slash = strrchr(out_path, '/');
    char dir[4096];
    if (slash) {
        size_t n = (size_t)(slash - out_path);
        if (n >= sizeof(dir))
            return -1;
        memcpy(dir, out_path, n ? n : 1);
        dir[n ? n : 1] = '\0';
    } else {
        snprintf(dir, sizeof(dir), ".");
    }
#ifdef O_TMPFILE
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
#endif
    char tmpl[4200];
    snprintf(tmpl, sizeof(tmpl), "%s/.inferno-convert.XXXXXX", dir);
    int f2 = mkstemp(tmpl);
    if (f2 >= 0)
        unlink(tmpl);
    return f2;
}

static uint32_t ftype_of(uint32_t type)
{
    return type == INF_GGML_TYPE_F32 ? 0 : type == INF_GGML_TYPE_BF16 ? 32 : 1;
}

inf_status inf_convert_hf(const char *dir, const char *out_path, const struct inf_convert_params *p,
                          struct inf_convert_stats *stats, struct inf_error *err)
{
    struct inf__conv_json j = {.pooling = -1};
    struct inf_safetensors *st = NULL;
    struct inf_gguf_writer *w = NULL;
    struct plan plan = {0};
    struct writer wr = {0};
    struct inf__outfile of = {.fd = -1};
    struct inf_convert_stats s = {0};
    const struct inf_quant_preset *qp = NULL;
    struct hp h;
    enum arch_id id;
    const char *arch, *outtype = p->outtype ? p->outtype : "f16";
    uint32_t otype;
    bool quant = false;
    int tfd = -1;
    char *jinja = NULL, *spm = NULL, nbuf[256];
    size_t jlen, spm_len = 0;
    double t0 = inf__now_ms() * 1e-3;
    inf_status rc;

    if (!strcasecmp(outtype, "f32")) {
        otype = INF_GGML_TYPE_F32;
    } else if (!strcasecmp(outtype, "f16")) {
        otype = INF_GGML_TYPE_F16;
    } else if (!strcasecmp(outtype, "bf16")) {
        otype = INF_GGML_TYPE_BF16;
    } else if ((qp = inf_quant_preset_find(outtype))) {
        otype = UINT32_MAX;
        quant = true;
    } else {
        return inf_error_set(err, INF_EUSAGE,
                             "unknown output type '%s' (f32, f16, bf16, or a quantize type such "
                             "as q8_0, q4_k_m)",
                             outtype);
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return inf_error_set(err, INF_ENOTFOUND, "'%s' is not a directory", dir);
    rc = inf__outfile_check_target(out_path, err);
    if (rc != INF_OK)
        return rc;
    if (!p->force && access(out_path, F_OK) == 0)
        return inf_error_set(err, INF_EEXIST, "'%s' exists; pass --force to overwrite it",
                             out_path);

    if ((rc = load_json(dir, "config.json", INF__CONV_MAX_CONFIG, true, &j.config, err)) ||
        (rc = flatten_config(j.config, err)) || (rc = find_arch(j.config, &id, &arch, err)) ||
        (rc = read_hp(j.config, id, arch, &h, err)) || (rc = open_weights(dir, &st, err)) ||
        (rc = load_json(dir, "tokenizer.json", INF__CONV_MAX_TOKENIZER, false, &j.tok, err)) ||
        (rc = load_json(dir, "tokenizer_config.json", INF__CONV_MAX_CONFIG, false, &j.tok_cfg,
                        err)) ||
        (rc = load_json(dir, "generation_config.json", INF__CONV_MAX_CONFIG, false, &j.gen_cfg,
                        err)) ||
        (rc = read_file(dir, "chat_template.jinja", INF__CONV_MAX_CONFIG, &jinja, &jlen, err)) ||
        (rc = read_file(dir, "tokenizer.model", INF__CONV_MAX_TOKENIZER, &spm, &spm_len, err)) ||
        (rc = load_json(dir, "added_tokens.json", INF__CONV_MAX_CONFIG, false, &j.added_tokens,
                        err)))
        goto out;
    if ((IS_ENCODER(id)) && (rc = read_pooling(dir, &j.pooling, err)) != INF_OK)
        goto out;
    j.chat_jinja = jinja;
    j.sp_model = (const uint8_t *)spm;
    j.sp_model_len = spm_len;
    if (!j.tok && !spm) {
        rc = inf_error_set(err, INF_ENOTFOUND, "'%s' has no tokenizer.json nor tokenizer.model",
                           dir);
        goto out;
    }
    snprintf(s.arch, sizeof(s.arch), "%s", arch);

    const char *name = p->name;
    if (!name) {
        const char *e = dir + strlen(dir);
        while (e > dir && e[-1] == '/')
            e--;
        const char *b = e;
        while (b > dir && b[-1] != '/')
            b--;
        snprintf(nbuf, sizeof(nbuf), "%.*s", (int)(e - b), b);
        name = nbuf[0] ? nbuf : "model";
    }
    if ((rc = inf_gguf_writer_new(3, &w, err)) != INF_OK)
        goto out;
    rc = write_metadata(&j, &h, name, quant ? 1 : ftype_of(otype), w, err);
    if (rc == INF_OK)
        rc = make_plan(st, j.config, &h, j.n_tokens, otype, &plan, err);
    if (rc != INF_OK)
        goto out;

    size_t max_cols = 1;
    for (size_t i = 0; i < plan.n && rc == INF_OK; i++) {
        struct item *it = &plan.items[i];
        rc = inf_gguf_writer_add_tensor_info(w, it->name, it->type, it->n_dims, it->ne, err);
        if (rc == INF_OK)
            rc = inf_ggml_nbytes(it->type, it->n_dims, it->ne, it->name, &it->bytes, err);
        for (size_t k = 0; k < it->n_src; k++)
            s.in_bytes += it->src[k]->n_bytes;
        int64_t cols = it->ne[0];
        if ((size_t)cols > max_cols)
            max_cols = (size_t)cols;
    }
    if (rc != INF_OK)
        goto out;
    s.n_tensors = plan.n;

    wr.ocap = OUT_SLAB > max_cols * 4 ? OUT_SLAB : max_cols * 4;
    wr.obuf = malloc(wr.ocap);
    wr.fbuf = malloc(max_cols * sizeof(float));
    if (!wr.obuf || !wr.fbuf) {
        rc = inf_error_set(err, INF_ENOMEM, "out of memory");
        goto out;
    }
    if (quant) {
        tfd = temp_fd(out_path);
        if (tfd < 0) {
            rc = inf_error_set(err, INF_EIO, "cannot create a temporary file beside '%s': %s",
                               out_path, strerror(errno));
            goto out;
        }
        wr.f = fdopen(tfd, "w+b");
        wr.path = "(temporary file)";
    } else {
        rc = inf__outfile_open(out_path, &of, err);
        if (rc != INF_OK)
            goto out;
        wr.f = fdopen(of.fd, "wb");
        wr.path = of.tmp;
    }
    if (!wr.f) {
        rc = inf_error_set(err, INF_EIO, "cannot open the output: %s", strerror(errno));
        goto out;
    }
    uint64_t hdr = 0;
    rc = inf_gguf_writer_write_header(w, wr.f, &hdr, err);
    wr.written = hdr;
    uint32_t align = inf_gguf_writer_alignment(w);
    for (size_t i = 0; i < plan.n && rc == INF_OK; i++) {
        if (p->cancel && *p->cancel) {
            rc = inf_error_set(err, INF_ECANCELED, "interrupted");
            break;
        }
        rc = write_item(&wr, &plan.items[i], &h, align, p->cancel, err);
        if (rc == INF_OK && p->progress) {
            const struct item *it = &plan.items[i];
            struct inf_convert_event ev = {
                i,        plan.n,   it->name, it->gen ? "generated" : st_name(it->src[0]->dtype),
                it->type, it->bytes};
            p->progress(p->progress_arg, &ev);
        }
    }
    if (rc == INF_OK)
        rc = w_flush(&wr, err);
    if (rc == INF_OK && fflush(wr.f) != 0)
        rc = inf_error_set(err, INF_EIO, "cannot write '%s': %s", wr.path, strerror(errno));
    if (rc != INF_OK)
        goto out;
    if (quant) {
        /* the lossless file, quantized as `inferno quantize` does it */
        struct inf_quant_params q;
        struct inf_quant_stats qs;
        char in[64];
        inf_quant_params_init(&q);
        q.type = qp->name;
        q.n_threads = p->n_threads;
        q.force = true;
        q.cancel = p->cancel;
        snprintf(in, sizeof(in), "/proc/self/fd/%d", fileno(wr.f));
        rc = inf_quantize_file(in, out_path, &q, &qs, err);
        if (rc == INF_OK)
            s.out_bytes = qs.out_bytes;
    } else {
        if (fsync(fileno(wr.f)) != 0)
            rc = inf_error_set(err, INF_EIO, "cannot write '%s': %s", wr.path, strerror(errno));
        if (rc == INF_OK)
            rc = inf__outfile_commit(&of, out_path, err);
        s.out_bytes = wr.written;
    }

out:
    if (wr.f)
        fclose(wr.f);
    else if (of.fd >= 0)
        close(of.fd);
    else if (tfd >= 0)
        close(tfd);
    if (rc != INF_OK && !quant)
        inf__outfile_abandon(&of);
    free(of.tmp);
    free(wr.obuf);
    free(wr.fbuf);
    plan_release(&plan);
    inf_gguf_writer_free(w);
    inf_safetensors_free(st);
    json_decref(j.config);
    json_decref(j.tok);
    json_decref(j.tok_cfg);
    json_decref(j.gen_cfg);
    json_decref(j.added_tokens);
    free(jinja);
    free(spm);
    s.seconds = inf__now_ms() * 1e-3 - t0;
    if (stats)
        *stats = s;
    if (rc != INF_OK && !strstr(inf_error_message(err), dir))
        inf_error_prefix(err, "'%s'", dir);
    return rc;
}
