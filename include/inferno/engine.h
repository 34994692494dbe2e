/*
 * inferno/engine.h - models, contexts with a multi-sequence KV cache, batched decoding.
 *
 * A model is loaded once (weights are views into a read-only mmap of the GGUF file) and may
 * back several contexts. A context owns a KV cache of n_ctx cells shared by up to n_seq_max
 * sequences; inf_decode() runs one forward pass over a batch of tokens that may belong to
 * different sequences (prompts of several requests and the next token of many), which is what
 * a server's continuous batching needs. Contexts are not thread-safe: one thread drives one
 * context (the engine uses its own worker threads inside inf_decode).
 */
#ifndef INFERNO_ENGINE_H
#define INFERNO_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/sampling.h"
#include "inferno/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct inf_model;
struct inf_context;
struct inf_tokenizer;

struct inf_model_params {
    bool use_mmap;   /* map the file (default); false copies the weights into memory */
    bool use_mlock;  /* lock the weights in RAM */
    bool huge_pages; /* copy the weights into transparent huge pages (default: fewer TLB misses
                      * on the stream of weights each token reads; costs a copy at load) */
    /* called with 0..1 while loading; return false to cancel (INF_ECANCELED) */
    bool (*progress)(float fraction, void *user);
    void *progress_user;
};

struct inf_model_params inf_model_default_params(void);

/*
 * Load a GGUF model. Unsupported architectures or tensor types are refused with a message
 * naming them ("architecture 'gpt2' is not supported", "tensor 'x': type IQ2_XS is not
 * supported yet"); nothing is ever computed with a tensor the engine cannot handle.
 */
inf_status inf_model_load(const char *path, const struct inf_model_params *params,
                          struct inf_model **out, struct inf_error *err);
void inf_model_free(struct inf_model *model);

struct inf_model_info {
    char architecture[32];
    char name[128];
    int32_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    uint64_t n_params;
    uint64_t weights_bytes;
    float rope_freq_base;
};
void inf_model_get_info(const struct inf_model *model, struct inf_model_info *out);

/* The model's tokenizer, borrowed until the model is freed (NULL when the file has none). */
const struct inf_tokenizer *inf_model_tokenizer(const struct inf_model *model);

/* The chat template text from the GGUF (name NULL: the default one), borrowed; NULL if none. */
const char *inf_model_chat_template(const struct inf_model *model, const char *name);

enum inf_kv_type {
    INF_KV_F16,
    INF_KV_F32,
    INF_KV_Q8_0,
};

enum inf_pooling {
    INF_POOL_NONE,
    INF_POOL_MEAN,
    INF_POOL_LAST,
    INF_POOL_CLS,
    /* rerankers (encoders with pooling_type rank): the CLS row through the classification head;
     * inf_get_embeddings_seq's first value is the relevance score (not normalized) */
    INF_POOL_RANK,
};

/*
 * Encoder (embedding) models: bert (bge, all-MiniLM) and nomic-bert. Their contexts must be
 * embeddings contexts and keep no KV cache: each inf_decode call is one bidirectional pass over
 * whole sequences (every token of a sequence sees every other token of it in the same call;
 * nothing is kept between calls, so a sequence's tokens must all be in one call), of at most
 * max(n_ctx, n_batch) tokens.
 */
bool inf_model_is_encoder(const struct inf_model *model);
/* The pooling an encoder declares (<arch>.pooling_type; INF_POOL_NONE when it declares none, as
 * llama.cpp); INF_POOL_MEAN for decoders. */
enum inf_pooling inf_model_pooling(const struct inf_model *model);

struct inf_context_params {
    uint32_t n_ctx;     /* KV cells; 0 = the model's training context */
    uint32_t n_batch;   /* most tokens per forward pass; larger batches are split */
    uint32_t n_seq_max; /* sequences that may share the cache (<= 64) */
    int n_threads;      /* 0 = physical cores */
    enum inf_kv_type kv_type;
    bool embeddings; /* keep pooled embeddings instead of logits */
    enum inf_pooling pooling;
    /*
     * Batch invariance: the logits of a token are bit for bit the same whatever else is in its
     * batch, however its sequence's tokens were split into inf_decode calls and chunks, whether
     * its prefix was decoded earlier (or copied with inf_kv_seq_cp), and whatever n_threads is;
     * only the weights, the token's own sequence, n_batch-independent settings (kv_type) and the
     * CPU's kernel level matter. Costs prompt throughput (docs/performance.md); generation of one
     * sequence is unchanged. Off by default; see inf_context_set_deterministic.
     */
    bool deterministic;
};

struct inf_context_params inf_context_default_params(void);

inf_status inf_context_new(struct inf_model *model, const struct inf_context_params *params,
                           struct inf_context **out, struct inf_error *err);
void inf_context_free(struct inf_context *ctx);
/*
 * Switch batch invariance (inf_context_params.deterministic) on or off for the following
 * inf_decode calls. A token's logits are invariant when every call that computed its sequence's
 * cells (its prefix included) ran with it on: a server turns it on for the passes that carry a
 * temperature-0 request, and reuses a cached prefix for such a request only when it was computed
 * that way.
 */
void inf_context_set_deterministic(struct inf_context *ctx, bool on);
bool inf_context_deterministic(const struct inf_context *ctx);
uint32_t inf_context_n_ctx(const struct inf_context *ctx);

/*
 * A batch of tokens: token i goes to sequence seq_id[i] at position pos[i]; logits[i] non-zero
 * asks for its output row. Positions of one sequence must follow the ones already in the cache.
 */
struct inf_batch {
    int32_t n_tokens;
    const inf_token *token;
    const int32_t *pos;
    const int32_t *seq_id;
    const int8_t *logits;
};

/*
 * Run the forward pass. On success the logits of the marked tokens are available through
 * inf_get_logits_ith. INF_ELIMIT when the cache has no room (nothing is changed then).
 */
inf_status inf_decode(struct inf_context *ctx, const struct inf_batch *batch,
                      struct inf_error *err);

/* Logits of the i-th token of the last batch (which must have been marked), n_vocab floats. */
const float *inf_get_logits_ith(const struct inf_context *ctx, int32_t i);
/* Pooled embedding of a sequence of the last batch (embeddings contexts), n_embd floats.
 * INF_POOL_NONE pools as mean here; the tokens' own vectors are inf_get_embeddings_ith's. */
const float *inf_get_embeddings_seq(const struct inf_context *ctx, int32_t seq_id);
/* The output vector (hidden state) of the i-th token of the last batch (embeddings contexts),
 * n_embd floats: after the final norm for decoders, the last layer's output for encoders. */
const float *inf_get_embeddings_ith(const struct inf_context *ctx, int32_t i);

/* KV cache per sequence. p1 < 0 means "to the end". */
void inf_kv_seq_rm(struct inf_context *ctx, int32_t seq_id, int32_t p0, int32_t p1);
void inf_kv_seq_cp(struct inf_context *ctx, int32_t src, int32_t dst, int32_t p0, int32_t p1);
void inf_kv_seq_keep(struct inf_context *ctx, int32_t seq_id);
void inf_kv_clear(struct inf_context *ctx);
/* Highest / lowest position held for a sequence; -1 when it holds none. */
int32_t inf_kv_seq_pos_max(const struct inf_context *ctx, int32_t seq_id);
int32_t inf_kv_seq_pos_min(const struct inf_context *ctx, int32_t seq_id);
/* Free cells. */
uint32_t inf_kv_n_free(const struct inf_context *ctx);
/*
 * Where a sequence can go on after keeping positions [0, n_keep) (inf_kv_seq_rm of the rest):
 * n_keep, or 0 when a sliding-window layer's cache no longer holds the window the token at
 * n_keep needs (its older slots were given back to other tokens). Use it before reusing a
 * cached prefix; models without sliding windows always return n_keep.
 */
int32_t inf_kv_seq_resume_max(const struct inf_context *ctx, int32_t seq_id, int32_t n_keep);

struct inf_timings {
    double load_ms;
    double prompt_ms, gen_ms; /* time in decode calls with >1 / ==1 tokens */
    int64_t n_prompt, n_gen;  /* tokens processed in those calls */
};
void inf_context_timings(const struct inf_context *ctx, struct inf_timings *out);
void inf_context_reset_timings(struct inf_context *ctx);

struct inf_memory {
    uint64_t weights_bytes, kv_bytes, scratch_bytes;
};
void inf_context_memory(const struct inf_context *ctx, struct inf_memory *out);

#ifdef __cplusplus
}
#endif
#endif
