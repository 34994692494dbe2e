/*
 * gen-synthetic.c - write a GGUF model of a given llama-family architecture and shape with
 * random weights, the vocabulary copied from another GGUF file. For benchmarks and parity
 * tests on realistic shapes; quantize the result with `inferno quantize` or llama-quantize.
 *
 *   gen-synthetic --arch ARCH --vocab FROM.gguf --out OUT.gguf
 *                 [--router-std S: spread of MoE routers (default: --std)]
 *                 [--shape tiny|small-110m|tinyllama-1.1b|gemma-2-2b|gemma-3-1b|phi-3-mini|
 *                          qwen3-30b-a3b|olmoe-1b-7b|mixtral|granite-3-2b]
 *                 [--n-embd N] [--n-layer N] [--n-head N] [--n-head-kv N] [--n-ff N]
 *                 [--head-dim N] [--ctx N] [--rope-theta X] [--n-expert N] [--n-expert-used N]
 *                 [--n-ff-exp N] [--n-swa N] [--longrope N_CTX_ORIG] [--type f32|f16] [--std X]
 *                 [--out-std X]
 *                 [--seed N] [--chat-template FILE] [--n-vocab N]
 *                 [--hf-out DIR [--hf-shards N] [--hf-dtype bf16|f16]]
 *
 * --longrope (phi3) adds LongRoPE: per-dimension long and short frequency factors, an
 * attention factor, and the original context length past which the long ones apply.
 *
 * ARCH: llama (with --n-expert: Mixtral-style experts), qwen2, qwen3, qwen2moe (with a shared
 * expert), qwen3moe, olmoe, gemma2, gemma3, phi3 (fused QKV and gate-up), granite (its four
 * multipliers), gpt-oss (attention sinks, every other layer a sliding window, biased experts
 * with the clamped SwiGLU, softmax over the selected experts). The shapes are those of the named
 * models (layers cut down where noted in docs/parity.md); the vocabulary is always the one of
 * FROM.gguf.
 *
 *   gen-synthetic --arch bert|nomic-bert --vocab FROM-SPM.gguf --out OUT.gguf
 *                 [--shape tiny|bge-small|nomic-embed-v1.5] [--n-embd N] [--n-layer N]
 *                 [--n-head N] [--n-ff N] [--ctx N] [--pooling none|mean|cls|last|rank]
 *                 [--rope-theta X] [--type f32|f16] [--std X] [--seed N] [--vocab-max N]
 *
 * Encoders (bert: bge-small's layout; nomic-bert: fused QKV, SwiGLU, RoPE) get a WordPiece
 * vocabulary derived from an SPM one (see wpm_vocab) and llama.cpp's metadata
 * (attention.causal false, pooling_type, token_type_count 2, [CLS]/[SEP] ids). bert with a
 * Unigram FROM.gguf ("t5": XLM-RoBERTa, bge-m3) keeps that vocabulary's tokenizer keys as they
 * are, with token_type_count 1, and --hf-out writes it as XLMRobertaModel (position embeddings
 * with pad_token_id + 1 = 2 rows in front).
 *
 * --hf-out DIR also writes the same weights as a Hugging Face directory (config.json and
 * model.safetensors, or --hf-shards N files with model.safetensors.index.json; tokenizer files
 * are the caller's to add), in transformers' names and layouts (see export_hf), with
 * --hf-dtype bf16 or f16 every tensor rounded to that type (to nearest even, as torch does), so
 * that `inferno convert DIR` can be checked against the GGUF written here.
 *
 * --chat-template sets tokenizer.chat_template to the file's text (replacing the vocabulary
 * file's), so that server tests can run a real model family's template on a tiny model.
 * Weights are normal with std --std (0.08), the output matrix --out-std (0.3): with the usual
 * 0.02 the logits of a random model are nearly uniform and greedy parity tests would compare
 * near-ties. Norm weights are 1 + N(0, 0.05); biases N(0, 0.05).
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "inferno/gguf.h"
#include "inferno/kernels.h"

enum { T_U32 = 4, T_F32 = 6, T_STR = 8, T_ARR = 9 };

struct tensor {
    char name[64];
    int n_dims;
    uint64_t ne[3];
    int kind; /* 0 matrix, 1 output matrix, 2 norm, 3 bias */
    uint32_t type;
    uint64_t offset, bytes;
};

static uint64_t rng = 0x853c49e6748fea9bULL;

static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static float normal(void)
{
    static int have;
    static double spare;
    if (have) {
        have = 0;
        return (float)spare;
    }
    double u = uniform(), v = uniform();
    double r = sqrt(-2.0 * log(u));
    spare = r * sin(2 * M_PI * v);
    have = 1;
    return (float)(r * cos(2 * M_PI * v));
}

static void w_u32(FILE *f, uint32_t v)
{
    fwrite(&v, 4, 1, f);
}

static void w_u64(FILE *f, uint64_t v)
{
    fwrite(&v, 8, 1, f);
}

static void w_str(FILE *f, const char *s)
{
    w_u64(f, strlen(s));
    fwrite(s, 1, strlen(s), f);
}

static unsigned n_kv_written; /* metadata pairs written by kv_* */

static void kv_u32(FILE *f, const char *k, uint32_t v)
{
    n_kv_written++;
    w_str(f, k);
    w_u32(f, T_U32);
    w_u32(f, v);
}

static void kv_f32(FILE *f, const char *k, float v)
{
    n_kv_written++;
    w_str(f, k);
    w_u32(f, T_F32);
    fwrite(&v, 4, 1, f);
}

static void kv_str(FILE *f, const char *k, const char *v)
{
    n_kv_written++;
    w_str(f, k);
    w_u32(f, T_STR);
    w_str(f, v);
}

/* Serialize a metadata value as GGUF stores it (little-endian). */
static void w_value(FILE *f, const struct inf_gguf_value *v)
{
    switch (v->type) {
    case INF_GGUF_TYPE_STRING:
        w_u64(f, v->str.len);
        fwrite(v->str.data, 1, (size_t)v->str.len, f);
        break;
    case INF_GGUF_TYPE_ARRAY:
        w_u32(f, (uint32_t)v->arr.type);
        w_u64(f, v->arr.n);
        for (uint64_t i = 0; i < v->arr.n; i++) {
            struct inf_gguf_value e;
            inf_gguf_array_elem(&v->arr, i, &e);
            w_value(f, &e);
        }
        break;
    default:
        fwrite(&v->u8, 1, inf_gguf_type_size(v->type), f);
        break;
    }
}

static long long opt_int(int argc, char **argv, const char *name, long long def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return atoll(argv[i + 1]);
    return def;
}

static const char *opt_str(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return def;
}

static int export_hf(const char *gguf_path, const char *dir, int n_shards, const char *dtype);

/* ---- encoders: bert, nomic-bert ---------------------------------------------------------- */

/*
 * A WordPiece vocabulary derived from an SPM one (FROM.gguf's tokenizer.ggml.tokens): [PAD]
 * [UNK] [CLS] [SEP] [MASK] first, then every normal SPM piece in order. llama.cpp's BERT GGUFs
 * store a word-start piece with the U+2581 prefix and a continuation ("##x") without it, which
 * is what SPM pieces already are. Returns the number of tokens (strs/types filled, strs borrowed
 * from g except the five specials).
 */
static uint64_t wpm_vocab(const struct inf_gguf *g, uint64_t max, const char ***strs_out,
                          int32_t **types_out)
{
    static const char *const specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    const struct inf_gguf_array *toks = NULL, *types = NULL;
    if (inf_gguf_get_arr(g, "tokenizer.ggml.tokens", INF_GGUF_TYPE_STRING, &toks, NULL) != INF_OK)
        return 0;
    (void)inf_gguf_get_arr(g, "tokenizer.ggml.token_type", INF_GGUF_TYPE_INT32, &types, NULL);
    const char **strs = calloc((size_t)toks->n + 5, sizeof(*strs));
    int32_t *tt = calloc((size_t)toks->n + 5, sizeof(*tt));
    if (!strs || !tt)
        return 0;
    uint64_t n = 0;
    for (int i = 0; i < 5; i++) {
        strs[n] = specials[i];
        tt[n++] = 3; /* control */
    }
    for (uint64_t i = 0; i < toks->n && n < max; i++) {
        struct inf_gguf_value v;
        if (types) {
            inf_gguf_array_elem(types, i, &v);
            if (v.i32 != 1) /* normal pieces only: no <unk>, <s>, </s>, <0xNN> */
                continue;
        }
        inf_gguf_array_elem(toks, i, &v);
        char *str = malloc((size_t)v.str.len + 1);
        if (!str)
            return 0;
        memcpy(str, v.str.data, (size_t)v.str.len);
        str[v.str.len] = '\0';
        if (strlen(str) != v.str.len || v.str.len == 0) {
            free(str);
            continue;
        }
        strs[n] = str;
        tt[n++] = 1;
    }
    *strs_out = strs;
    *types_out = tt;
    return n;
}

static int gen_encoder(int argc, char **argv, const char *arch)
{
    const char *vocab = opt_str(argc, argv, "--vocab", NULL);
    const char *out = opt_str(argc, argv, "--out", NULL);
    const char *shape = opt_str(argc, argv, "--shape", "tiny");
    const char *type = opt_str(argc, argv, "--type", "f32");
    const bool nomic = strcmp(arch, "nomic-bert") == 0;
    long long E = 64, L = 2, H = 4, F = 128, ctx = 512;
    if (!vocab || !out) {
        fprintf(stderr, "usage: gen-synthetic --arch bert|nomic-bert --vocab FROM-SPM.gguf --out "
                        "OUT.gguf [--shape tiny|bge-small|nomic-embed-v1.5] [options]\n");
        return 2;
    }
    if (strcmp(shape, "bge-small") == 0) {
        E = 384, L = 12, H = 12, F = 1536, ctx = 512;
    } else if (strcmp(shape, "nomic-embed-v1.5") == 0) {
        E = 768, L = 12, H = 12, F = 3072, ctx = 2048;
    } else if (strcmp(shape, "tiny") != 0) {
        fprintf(stderr, "gen-synthetic: unknown encoder shape '%s'\n", shape);
        return 2;
    }
    E = opt_int(argc, argv, "--n-embd", E);
    L = opt_int(argc, argv, "--n-layer", L);
    H = opt_int(argc, argv, "--n-head", H);
    F = opt_int(argc, argv, "--n-ff", F);
    ctx = opt_int(argc, argv, "--ctx", ctx);
    float theta = (float)atof(opt_str(argc, argv, "--rope-theta", nomic ? "1000" : "10000"));
    /* 0.64 / sqrt(n_embd) (0.08 at the tiny shape's 64): a product's output keeps about the
       scale of its input, so the 12 post-norm layers of the real shapes stay far from chaos
       (with 0.08 there, attention is near argmax and llama.cpp's own two attention paths
       disagree) */
    const char *std_s = opt_str(argc, argv, "--std", NULL);
    float std = std_s ? (float)atof(std_s) : (float)(0.64 / sqrt((double)E));
    /* llama.cpp's pooling_type: 1 mean (nomic-embed), 2 cls (bge) */
    const char *pool = opt_str(argc, argv, "--pooling", nomic ? "mean" : "cls");
    uint32_t pooling = strcmp(pool, "none") == 0   ? 0
                       : strcmp(pool, "mean") == 0 ? 1
                       : strcmp(pool, "cls") == 0  ? 2
                       : strcmp(pool, "last") == 0 ? 3
                       : strcmp(pool, "rank") == 0 ? 4
                                                   : 99;
    rng ^= (uint64_t)opt_int(argc, argv, "--seed", 1) * 0x9e3779b97f4a7c15ULL;
    uint32_t wtype = strcmp(type, "f16") == 0 ? INF_TYPE_F16 : INF_TYPE_F32;
    if (pooling == 99 || E <= 0 || L <= 0 || H <= 0 || F <= 0 || ctx <= 0 || E % H) {
        fprintf(stderr, "gen-synthetic: bad encoder options\n");
        return 2;
    }

    struct inf_error err = {0};
    struct inf_gguf *g;
    if (inf_gguf_open_file(vocab, &g, &err) != INF_OK) {
        fprintf(stderr, "gen-synthetic: %s\n", err.msg);
        return 1;
    }
    const char **strs = NULL;
    int32_t *ttypes = NULL;
    const long long vmax = opt_int(argc, argv, "--vocab-max", 0);
    /* a Unigram ("t5") vocabulary is kept as it is: an XLM-RoBERTa model (bge-m3's layout) */
    const char *src_model = NULL;
    (void)inf_gguf_get_str(g, "tokenizer.ggml.model", &src_model, NULL, NULL);
    const bool xlmr = !nomic && src_model && strcmp(src_model, "t5") == 0;
    const struct inf_gguf_array *src_toks = NULL;
    uint64_t V;
    if (xlmr)
        V = inf_gguf_get_arr(g, "tokenizer.ggml.tokens", INF_GGUF_TYPE_STRING, &src_toks, NULL) ==
                    INF_OK
                ? src_toks->n
                : 0;
    else
        V = wpm_vocab(g, vmax > 5 ? (uint64_t)vmax : UINT64_MAX, &strs, &ttypes);
    if (V <= 5) {
        fprintf(stderr, "gen-synthetic: '%s' has no usable tokenizer.ggml.tokens\n", vocab);
        return 1;
    }

    struct inf_gguf_writer *w;
    if (inf_gguf_writer_new(3, &w, &err) != INF_OK) {
        fprintf(stderr, "gen-synthetic: %s\n", err.msg);
        return 1;
    }
    char key[128];
    inf_status st = INF_OK;
#define EKEY(s) (snprintf(key, sizeof(key), "%s.%s", arch, s), key)
#define CHK(call)                                                                                  \
    do {                                                                                           \
        if (st == INF_OK)                                                                          \
            st = (call);                                                                           \
    } while (0)
    CHK(inf_gguf_writer_set_str(w, "general.architecture", arch, &err));
    CHK(inf_gguf_writer_set_str(w, "general.name", "synthetic", &err));
    CHK(inf_gguf_writer_set_u32(w, "general.file_type", wtype == INF_TYPE_F16 ? 1 : 0, &err));
    CHK(inf_gguf_writer_set_u32(w, EKEY("context_length"), (uint32_t)ctx, &err));
    CHK(inf_gguf_writer_set_u32(w, EKEY("embedding_length"), (uint32_t)E, &err));
    CHK(inf_gguf_writer_set_u32(w, EKEY("block_count"), (uint32_t)L, &err));
    CHK(inf_gguf_writer_set_u32(w, EKEY("feed_forward_length"), (uint32_t)F, &err));
    CHK(inf_gguf_writer_set_u32(w, EKEY("attention.head_count"), (uint32_t)H, &err));
    CHK(inf_gguf_writer_set_f32(w, EKEY("attention.layer_norm_epsilon"), 1e-12f, &err));
    CHK(inf_gguf_writer_set_bool(w, EKEY("attention.causal"), false, &err));
    CHK(inf_gguf_writer_set_u32(w, EKEY("pooling_type"), pooling, &err));
    if (nomic)
        CHK(inf_gguf_writer_set_f32(w, EKEY("rope.freq_base"), theta, &err));
    for (size_t i = 0; xlmr && i < inf_gguf_n_kv(g); i++) {
        const struct inf_gguf_kv *kv = inf_gguf_kv_at(g, i);
        if (kv->key.len > 10 && !memcmp(kv->key.data, "tokenizer.", 10) &&
            strcmp(kv->key.data, "tokenizer.ggml.token_type_count") != 0)
            CHK(inf_gguf_writer_set(w, kv->key.data, &kv->value, &err));
    }
    if (xlmr)
        CHK(inf_gguf_writer_set_u32(w, "tokenizer.ggml.token_type_count", 1, &err));
    if (!xlmr) {
        CHK(inf_gguf_writer_set_str(w, "tokenizer.ggml.model", "bert", &err));
        CHK(inf_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, V, &err));
        CHK(inf_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", INF_GGUF_TYPE_INT32, ttypes, V,
                                    &err));
        CHK(inf_gguf_writer_set_u32(w, "tokenizer.ggml.token_type_count", 2, &err));
        CHK(inf_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 0, &err));
        CHK(inf_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 1, &err));
        CHK(inf_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 2, &err));
        CHK(inf_gguf_writer_set_u32(w, "tokenizer.ggml.cls_token_id", 2, &err));
        CHK(inf_gguf_writer_set_u32(w, "tokenizer.ggml.seperator_token_id", 3, &err));
        CHK(inf_gguf_writer_set_u32(w, "tokenizer.ggml.mask_token_id", 4, &err));
    }

    /* the tensors: kind 0 matrix (wtype), 2 norm, 3 bias, 4 F32 matrix */
    struct tensor *ts = calloc((size_t)(8 + L * 20), sizeof(*ts));
    int n = 0;
#define EADD(nm, d0, d1, kind_)                                                                    \
    do {                                                                                           \
        snprintf(ts[n].name, sizeof(ts[n].name), "%s", nm);                                        \
        ts[n].ne[0] = (uint64_t)(d0);                                                              \
        ts[n].ne[1] = (uint64_t)(d1);                                                              \
        ts[n].n_dims = ((d1) != 0) ? 2 : 1;                                                        \
        ts[n].kind = kind_;                                                                        \
        ts[n].type = (kind_) == 0 ? wtype : INF_TYPE_F32;                                          \
        n++;                                                                                       \
    } while (0)
    EADD("token_embd.weight", E, V, 0);
    EADD("token_types.weight", E, xlmr ? 1 : 2, 4); /* F32 as converted models have it (llama.cpp
                                             adds its row to F32 activations, which F16 cannot) */
    if (!nomic)
        EADD("position_embd.weight", E, ctx, 0);
    EADD("token_embd_norm.weight", E, 0, 2);
    EADD("token_embd_norm.bias", E, 0, 3);
    if (pooling == 4) { /* a reranker's classification head, one output */
        EADD("cls.weight", E, E, 0);
        EADD("cls.bias", E, 0, 3);
        EADD("cls.output.weight", E, 1, 4);
        EADD("cls.output.bias", 1, 0, 3);
    }
    for (long long l = 0; l < L; l++) {
        char nm[64];
#define ELADD(sfx, d0, d1, kind_)                                                                  \
    do {                                                                                           \
        snprintf(nm, sizeof(nm), "blk.%lld.%s", l, sfx);                                           \
        EADD(nm, d0, d1, kind_);                                                                   \
    } while (0)
        if (nomic) {
            ELADD("attn_qkv.weight", E, 3 * E, 0);
        } else {
            ELADD("attn_q.weight", E, E, 0);
            ELADD("attn_q.bias", E, 0, 3);
            ELADD("attn_k.weight", E, E, 0);
            ELADD("attn_k.bias", E, 0, 3);
            ELADD("attn_v.weight", E, E, 0);
            ELADD("attn_v.bias", E, 0, 3);
        }
        ELADD("attn_output.weight", E, E, 0);
        if (!nomic)
            ELADD("attn_output.bias", E, 0, 3);
        ELADD("attn_output_norm.weight", E, 0, 2);
        ELADD("attn_output_norm.bias", E, 0, 3);
        ELADD("ffn_up.weight", E, F, 0);
        if (nomic) {
            ELADD("ffn_gate.weight", E, F, 0);
        } else {
            ELADD("ffn_up.bias", F, 0, 3);
        }
        ELADD("ffn_down.weight", F, E, 0);
        if (!nomic)
            ELADD("ffn_down.bias", E, 0, 3);
        ELADD("layer_output_norm.weight", E, 0, 2);
        ELADD("layer_output_norm.bias", E, 0, 3);
    }
    for (int i = 0; i < n; i++) {
        int64_t ne[2] = {(int64_t)ts[i].ne[0], (int64_t)(ts[i].ne[1] ? ts[i].ne[1] : 1)};
        CHK(inf_gguf_writer_add_tensor_info(w, ts[i].name, ts[i].type, (uint32_t)ts[i].n_dims, ne,
                                            &err));
    }
    FILE *f = st == INF_OK ? fopen(out, "wb") : NULL;
    if (st != INF_OK || !f) {
        fprintf(stderr, "gen-synthetic: %s\n", st != INF_OK ? err.msg : out);
        return 1;
    }
    CHK(inf_gguf_writer_write_header(w, f, NULL, &err));
    const uint32_t align = inf_gguf_writer_alignment(w);
    size_t widest = (size_t)(3 * E > F ? 3 * E : F);
    float *row = malloc(widest * sizeof(float));
    uint16_t *row16 = malloc(widest * sizeof(uint16_t));
    static const char zeros[64];
    for (int i = 0; i < n && st == INF_OK; i++) {
        uint64_t rows = ts[i].ne[1] ? ts[i].ne[1] : 1, cols = ts[i].ne[0], bytes = 0;
        for (uint64_t r = 0; r < rows; r++) {
            for (uint64_t c = 0; c < cols; c++) {
                float x = normal();
                row[c] = ts[i].kind == 0 || ts[i].kind == 4 ? x * std
                         : ts[i].kind == 2                  ? 1.0f + 0.05f * x
                                                            : 0.05f * x;
            }
            if (ts[i].type == INF_TYPE_F16) {
                inf_f32_to_f16_row(row, row16, (int64_t)cols);
                fwrite(row16, 2, cols, f);
                bytes += 2 * cols;
            } else {
                fwrite(row, 4, cols, f);
                bytes += 4 * cols;
            }
        }
        fwrite(zeros, 1, (size_t)((align - bytes % align) % align), f);
    }
#undef CHK
#undef EKEY
    if (fclose(f) != 0 || st != INF_OK) {
        fprintf(stderr, "gen-synthetic: %s\n", st != INF_OK ? err.msg : out);
        return 1;
    }
    const char *hf_out = opt_str(argc, argv, "--hf-out", NULL);
    if (hf_out && export_hf(out, hf_out, (int)opt_int(argc, argv, "--hf-shards", 1),
                            opt_str(argc, argv, "--hf-dtype", "same")) != 0)
        return 1;
    printf("wrote %s: %s, n_embd %lld, n_layer %lld, heads %lld, n_ff %lld, ctx %lld, vocab %llu "
           "(%s), pooling %s, %s\n",
           out, arch, E, L, H, F, ctx, (unsigned long long)V, xlmr ? "Unigram" : "WordPiece", pool,
           type);
    for (uint64_t i = 5; strs && i < V; i++)
        free((void *)strs[i]);
    free(strs);
    free(ttypes);
    free(row);
    free(row16);
    free(ts);
    inf_gguf_writer_free(w);
    inf_gguf_free(g);
    return 0;
}

/* ---- the same weights as a Hugging Face directory (--hf-out) ------------------------------ */

/*
 * What llama.cpp's converter undoes, done here: GGUF names back to transformers' names, llama's
 * and granite's Q/K rows back to the halves layout (the inverse of the permutation
 * convert_hf_to_gguf.py applies), gemma's norms stored as w - 1, experts one tensor each, and
 * the hyperparameters as config.json. So `inferno convert DIR` must give back the GGUF's tensors.
 */
struct hf_tensor {
    char name[128];
    const struct inf_gguf_tensor *t;
    int expert; /* -1, or the expert taken from a stacked tensor */
    int xform;  /* 0 copy, 1 unpermute (heads in perm_heads), 2 minus one, 3 two rows in front */
    int64_t perm_heads;
    int n_dims;
    int64_t shape[3]; /* outermost first */
    uint64_t bytes, offset;
};

/* "blk.<n>." at the start of s: n and what follows; false otherwise. */
static bool blk_index(const char *s, int *idx, const char **rest)
{
    char *end;
    if (strncmp(s, "blk.", 4) != 0 || s[4] < '0' || s[4] > '9')
        return false;
    long v = strtol(s + 4, &end, 10);
    if (v < 0 || v > 1 << 20 || *end != '.')
        return false;
    *idx = (int)v;
    *rest = end + 1;
    return true;
}

static float inf_fp16_to_fp32_row_one(const uint8_t *p)
{
    uint16_t h;
    float x;
    memcpy(&h, p, 2);
    inf_f16_to_f32_row(&h, &x, 1);
    return x;
}

static int cmp_hf(const void *a, const void *b)
{
    return strcmp(((const struct hf_tensor *)a)->name, ((const struct hf_tensor *)b)->name);
}

static bool gu32(const struct inf_gguf *g, const char *arch, const char *k, uint32_t *v)
{
    char key[128];
    snprintf(key, sizeof(key), "%s.%s", arch, k);
    return inf_gguf_get_u32(g, key, v, NULL) == INF_OK;
}

static bool gf32(const struct inf_gguf *g, const char *arch, const char *k, float *v)
{
    char key[128];
    snprintf(key, sizeof(key), "%s.%s", arch, k);
    return inf_gguf_get_f32(g, key, v, NULL) == INF_OK;
}

static int export_hf(const char *gguf_path, const char *dir, int n_shards, const char *dtype)
{
    const bool bf16 = !strcmp(dtype, "bf16"), to_f16 = !strcmp(dtype, "f16");
    struct inf_error err = {0};
    struct inf_gguf *g;
    const char *arch;
    if (inf_gguf_open_file(gguf_path, &g, &err) != INF_OK ||
        inf_gguf_get_str(g, "general.architecture", &arch, NULL, &err) != INF_OK) {
        fprintf(stderr, "gen-synthetic: %s\n", err.msg);
        return 1;
    }
    const bool llama = !strcmp(arch, "llama"), granite = !strcmp(arch, "granite");
    const bool gemma = !strcmp(arch, "gemma2") || !strcmp(arch, "gemma3");
    const bool phi3 = !strcmp(arch, "phi3"),
               qmoe = !strncmp(arch, "qwen", 4) && strstr(arch, "moe");
    static const char *const hf_arch[][2] = {
        {"llama", "LlamaForCausalLM"},       {"qwen2", "Qwen2ForCausalLM"},
        {"qwen3", "Qwen3ForCausalLM"},       {"qwen2moe", "Qwen2MoeForCausalLM"},
        {"qwen3moe", "Qwen3MoeForCausalLM"}, {"gemma2", "Gemma2ForCausalLM"},
        {"gemma3", "Gemma3ForCausalLM"},     {"phi3", "Phi3ForCausalLM"},
        {"granite", "GraniteForCausalLM"},   {"bert", "BertModel"},
        {"nomic-bert", "NomicBertModel"}};
    const bool bert = !strcmp(arch, "bert"), nomic = !strcmp(arch, "nomic-bert");
    const char *tok_model = NULL;
    (void)inf_gguf_get_str(g, "tokenizer.ggml.model", &tok_model, NULL, NULL);
    /* a bert GGUF with a Unigram vocabulary: XLMRobertaModel, whose position embeddings have
       pad_token_id + 1 = 2 rows in front that llama.cpp's converter drops */
    const bool xlmr = bert && tok_model && !strcmp(tok_model, "t5");
    const char *cls = NULL;
    for (size_t i = 0; i < sizeof(hf_arch) / sizeof(hf_arch[0]); i++)
        if (!strcmp(arch, hf_arch[i][0]))
            cls = hf_arch[i][1];
    if (!cls) {
        fprintf(stderr, "gen-synthetic: --hf-out does not know architecture '%s'\n", arch);
        return 2;
    }
    uint32_t E = 0, L = 0, H = 0, HKV = 0, F = 0, ctx = 0, HD = 0, X = 0, XU = 0, FX = 0, FS = 0,
             SWA = 0, orig = 0;
    float eps = 1e-5f, theta = 10000.0f, theta_swa = 0, v;
    gu32(g, arch, "embedding_length", &E);
    gu32(g, arch, "block_count", &L);
    gu32(g, arch, "attention.head_count", &H);
    gu32(g, arch, "attention.head_count_kv", &HKV);
    gu32(g, arch, "feed_forward_length", &F);
    gu32(g, arch, "context_length", &ctx);
    if (!gu32(g, arch, "attention.key_length", &HD))
        HD = E / H;
    gu32(g, arch, "expert_count", &X);
    gu32(g, arch, "expert_used_count", &XU);
    gu32(g, arch, "expert_feed_forward_length", &FX);
    gu32(g, arch, "expert_shared_feed_forward_length", &FS);
    gu32(g, arch, "attention.sliding_window", &SWA);
    gu32(g, arch, "rope.scaling.original_context_length", &orig);
    gf32(g, arch, "attention.layer_norm_rms_epsilon", &eps);
    gf32(g, arch, "rope.freq_base", &theta);
    gf32(g, arch, "rope.freq_base_swa", &theta_swa);
    const struct inf_gguf_tensor *embd = inf_gguf_find_tensor(g, "token_embd.weight");
    if (!embd) {
        fprintf(stderr, "gen-synthetic: no token_embd.weight\n");
        return 1;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        perror(dir);
        return 1;
    }

    /* config.json */
    char path[4096];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    FILE *cf = fopen(path, "w");
    if (!cf) {
        perror(path);
        return 1;
    }
    if (bert || nomic) {
        float lne = 1e-12f;
        const struct inf_gguf_tensor *tt = inf_gguf_find_tensor(g, "token_types.weight");
        long long ntt = tt ? (long long)tt->ne[1] : 2, nv = (long long)embd->ne[1];
        gf32(g, arch, "attention.layer_norm_epsilon", &lne);
        if (xlmr)
            fprintf(cf,
                    "{\"architectures\": [\"XLMRobertaModel\"], \"model_type\": \"xlm-roberta\", "
                    "\"hidden_size\": %u, \"num_hidden_layers\": %u, \"num_attention_heads\": %u, "
                    "\"intermediate_size\": %u, \"max_position_embeddings\": %u, "
                    "\"layer_norm_eps\": %.9g, \"type_vocab_size\": %lld, \"vocab_size\": %lld, "
                    "\"pad_token_id\": 1, \"bos_token_id\": 0, \"eos_token_id\": 2}\n",
                    E, L, H, F, ctx + 2, (double)lne, ntt, nv);
        else if (bert)
            fprintf(cf,
                    "{\"architectures\": [\"BertModel\"], \"model_type\": \"bert\", "
                    "\"hidden_size\": %u, \"num_hidden_layers\": %u, \"num_attention_heads\": %u, "
                    "\"intermediate_size\": %u, \"max_position_embeddings\": %u, "
                    "\"layer_norm_eps\": %.9g, \"type_vocab_size\": %lld, \"vocab_size\": %lld}\n",
                    E, L, H, F, ctx, (double)lne, ntt, nv);
        else /* n_positions as nomic-embed's, so that llama.cpp's rule gives ctx back */
            fprintf(cf,
                    "{\"architectures\": [\"NomicBertModel\"], \"model_type\": \"nomic_bert\", "
                    "\"n_embd\": %u, \"n_layer\": %u, \"n_head\": %u, \"n_inner\": %u, "
                    "\"n_positions\": %u, \"max_trained_positions\": 2048, "
                    "\"layer_norm_epsilon\": %.9g, \"rotary_emb_base\": %.9g, "
                    "\"rotary_emb_fraction\": 1.0, \"type_vocab_size\": %lld, \"vocab_size\": "
                    "%lld, \"activation_function\": \"swiglu\", \"causal\": false}\n",
                    E, L, H, F,
                    ctx == 2048  ? 8192
                    : ctx == 512 ? 2048
                                 : ctx,
                    (double)lne, (double)theta, ntt, nv);
        goto config_done;
    }
    fprintf(cf, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n", cls, arch);
    fprintf(cf, "  \"hidden_size\": %u,\n  \"num_hidden_layers\": %u,\n", E, L);
    fprintf(cf, "  \"num_attention_heads\": %u,\n  \"num_key_value_heads\": %u,\n", H, HKV);
    fprintf(cf, "  \"intermediate_size\": %u,\n  \"max_position_embeddings\": %u,\n", F, ctx);
    fprintf(cf, "  \"rms_norm_eps\": %.9g,\n  \"rope_theta\": %.9g,\n", (double)eps, (double)theta);
    fprintf(cf, "  \"vocab_size\": %lld,\n  \"tie_word_embeddings\": false,\n",
            (long long)embd->ne[1]);
    if (!granite && (HD != E / H || !strcmp(arch, "qwen3") || !strcmp(arch, "qwen3moe") || gemma))
        fprintf(cf, "  \"head_dim\": %u,\n", HD);
    if (X) {
        fprintf(cf, "  \"%s\": %u,\n  \"num_experts_per_tok\": %u,\n",
                qmoe ? "num_experts" : "num_local_experts", X, XU);
        if (qmoe)
            fprintf(cf, "  \"moe_intermediate_size\": %u,\n", FX);
        if (FS)
            fprintf(cf, "  \"shared_expert_intermediate_size\": %u,\n", FS);
    }
    if (gemma) {
        fprintf(cf, "  \"sliding_window\": %u,\n", SWA);
        if (gf32(g, arch, "attn_logit_softcapping", &v))
            fprintf(cf, "  \"attn_logit_softcapping\": %.9g,\n", (double)v);
        if (gf32(g, arch, "final_logit_softcapping", &v))
            fprintf(cf, "  \"final_logit_softcapping\": %.9g,\n", (double)v);
        if (theta_swa > 0)
            fprintf(cf, "  \"rope_local_base_freq\": %.9g,\n", (double)theta_swa);
        if (!strcmp(arch, "gemma3") && SWA == 0)
            fprintf(cf, "  \"sliding_window_pattern\": 1,\n");
    }
    if (granite) {
        if (gf32(g, arch, "attention.scale", &v))
            fprintf(cf, "  \"attention_multiplier\": %.9g,\n", (double)v);
        if (gf32(g, arch, "embedding_scale", &v))
            fprintf(cf, "  \"embedding_multiplier\": %.9g,\n", (double)v);
        if (gf32(g, arch, "residual_scale", &v))
            fprintf(cf, "  \"residual_multiplier\": %.9g,\n", (double)v);
        if (gf32(g, arch, "logit_scale", &v))
            fprintf(cf, "  \"logits_scaling\": %.9g,\n", (double)v);
    }
    if (phi3) {
        const struct inf_gguf_tensor *lf = inf_gguf_find_tensor(g, "rope_factors_long.weight");
        const struct inf_gguf_tensor *sf = inf_gguf_find_tensor(g, "rope_factors_short.weight");
        fprintf(cf, "  \"original_max_position_embeddings\": %u,\n", orig ? orig : ctx);
        if (lf && sf) {
            fprintf(cf, "  \"rope_scaling\": {\"type\": \"longrope\", \"long_factor\": [");
            for (int64_t i = 0; i < lf->ne[0]; i++)
                fprintf(cf, "%s%.9g", i ? ", " : "", (double)((const float *)lf->data)[i]);
            fprintf(cf, "], \"short_factor\": [");
            for (int64_t i = 0; i < sf->ne[0]; i++)
                fprintf(cf, "%s%.9g", i ? ", " : "", (double)((const float *)sf->data)[i]);
            fprintf(cf, "]},\n");
        }
    }
    fprintf(cf, "  \"torch_dtype\": \"float32\"\n}\n");
config_done:
    if (fclose(cf) != 0) {
        perror(path);
        return 1;
    }

    /* the tensor list, in transformers' names */
    size_t nt = inf_gguf_n_tensors(g), n = 0;
    struct hf_tensor *ts = calloc(nt * (X ? X : 1) + 1, sizeof(*ts));
    for (size_t i = 0; i < nt; i++) {
        const struct inf_gguf_tensor *t = inf_gguf_tensor_at(g, i);
        const char *nm = t->name.data;
        struct hf_tensor *h = &ts[n];
        char sfx[96];
        int bid = -1;
        const char *bsfx = NULL;
        memset(h, 0, sizeof(*h));
        h->t = t;
        h->expert = -1;
        h->n_dims = (int)t->n_dims;
        for (int d = 0; d < h->n_dims; d++)
            h->shape[d] = t->ne[h->n_dims - 1 - d];
        if (!strcmp(nm, "rope_factors_long.weight") || !strcmp(nm, "rope_factors_short.weight"))
            continue; /* in config.json */
        if (bert || nomic) {
            static const char *const eg[][3] = {
                /* GGUF, bert, nomic-bert */
                {"token_embd.weight", "embeddings.word_embeddings.weight", NULL},
                {"position_embd.weight", "embeddings.position_embeddings.weight", NULL},
                {"token_types.weight", "embeddings.token_type_embeddings.weight", NULL},
                {"token_embd_norm.weight", "embeddings.LayerNorm.weight", "emb_ln.weight"},
                {"token_embd_norm.bias", "embeddings.LayerNorm.bias", "emb_ln.bias"},
                {"attn_q.weight", "attention.self.query.weight", NULL},
                {"attn_q.bias", "attention.self.query.bias", NULL},
                {"attn_k.weight", "attention.self.key.weight", NULL},
                {"attn_k.bias", "attention.self.key.bias", NULL},
                {"attn_v.weight", "attention.self.value.weight", NULL},
                {"attn_v.bias", "attention.self.value.bias", NULL},
                {"attn_qkv.weight", NULL, "attn.Wqkv.weight"},
                {"attn_output.weight", "attention.output.dense.weight", "attn.out_proj.weight"},
                {"attn_output.bias", "attention.output.dense.bias", NULL},
                {"attn_output_norm.weight", "attention.output.LayerNorm.weight", "norm1.weight"},
                {"attn_output_norm.bias", "attention.output.LayerNorm.bias", "norm1.bias"},
                {"ffn_up.weight", "intermediate.dense.weight", "mlp.fc11.weight"},
                {"ffn_up.bias", "intermediate.dense.bias", NULL},
                {"ffn_gate.weight", NULL, "mlp.fc12.weight"},
                {"ffn_down.weight", "output.dense.weight", "mlp.fc2.weight"},
                {"ffn_down.bias", "output.dense.bias", NULL},
                {"layer_output_norm.weight", "output.LayerNorm.weight", "norm2.weight"},
                {"layer_output_norm.bias", "output.LayerNorm.bias", "norm2.bias"},
            };
            int eb = -1;
            const char *part = nm;
            if (!blk_index(nm, &eb, &part))
                part = nm;
            const char *hfn = NULL;
            for (size_t k = 0; k < sizeof(eg) / sizeof(eg[0]) && !hfn; k++)
                if (!strcmp(part, eg[k][0]) && (eb >= 0) == (k >= 5))
                    hfn = nomic && eg[k][2] ? eg[k][2] : eg[k][1];
            if (!hfn) {
                fprintf(stderr, "gen-synthetic: --hf-out: no transformers name for '%s'\n", nm);
                return 1;
            }
            if (eb >= 0)
                snprintf(h->name, sizeof(h->name), "encoder.%s.%d.%s", nomic ? "layers" : "layer",
                         eb, hfn);
            else
                snprintf(h->name, sizeof(h->name), "%s", hfn);
            if (xlmr && !strcmp(nm, "position_embd.weight")) {
                h->xform = 3; /* two padding rows in front (copies of row 0) */
                h->shape[0] += 2;
            }
            n++;
            continue;
        }
        if (!strcmp(nm, "token_embd.weight")) {
            snprintf(h->name, sizeof(h->name), "model.embed_tokens.weight");
        } else if (!strcmp(nm, "output_norm.weight")) {
            snprintf(h->name, sizeof(h->name), "model.norm.weight");
            h->xform = gemma ? 2 : 0;
        } else if (!strcmp(nm, "output.weight")) {
            snprintf(h->name, sizeof(h->name), "lm_head.weight");
        } else if (blk_index(nm, &bid, &bsfx) && strlen(bsfx) < sizeof(sfx)) {
            snprintf(sfx, sizeof(sfx), "%s", bsfx);
            static const char *const m[][2] = {
                {"attn_norm.weight", "input_layernorm.weight"},
                {"attn_q.weight", "self_attn.q_proj.weight"},
                {"attn_q.bias", "self_attn.q_proj.bias"},
                {"attn_k.weight", "self_attn.k_proj.weight"},
                {"attn_k.bias", "self_attn.k_proj.bias"},
                {"attn_v.weight", "self_attn.v_proj.weight"},
                {"attn_v.bias", "self_attn.v_proj.bias"},
                {"attn_output.weight", "self_attn.o_proj.weight"},
                {"attn_qkv.weight", "self_attn.qkv_proj.weight"},
                {"attn_q_norm.weight", "self_attn.q_norm.weight"},
                {"attn_k_norm.weight", "self_attn.k_norm.weight"},
                {"post_attention_norm.weight", "post_attention_layernorm.weight"},
                {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"},
                {"ffn_gate.weight", "mlp.gate_proj.weight"},
                {"ffn_down.weight", "mlp.down_proj.weight"},
                {"ffn_gate_shexp.weight", "mlp.shared_expert.gate_proj.weight"},
                {"ffn_up_shexp.weight", "mlp.shared_expert.up_proj.weight"},
                {"ffn_down_shexp.weight", "mlp.shared_expert.down_proj.weight"},
                {"ffn_gate_inp_shexp.weight", "mlp.shared_expert_gate.weight"},
            };
            const char *hf = NULL;
            for (size_t k = 0; k < sizeof(m) / sizeof(m[0]) && !hf; k++)
                if (!strcmp(sfx, m[k][0]))
                    hf = m[k][1];
            if (!strcmp(sfx, "ffn_norm.weight"))
                hf = gemma ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight";
            if (!strcmp(sfx, "ffn_up.weight"))
                hf = phi3 ? "mlp.gate_up_proj.weight" : "mlp.up_proj.weight";
            if (!strcmp(sfx, "ffn_gate_inp.weight"))
                hf = qmoe ? "mlp.gate.weight" : "block_sparse_moe.gate.weight";
            if (!strcmp(sfx, "ffn_gate_inp_shexp.weight")) { /* [1, n_embd] in transformers */
                h->n_dims = 2;
                h->shape[0] = 1;
                h->shape[1] = t->ne[0];
            }
            const char *exps = !strcmp(sfx, "ffn_gate_exps.weight")   ? (qmoe ? "gate_proj" : "w1")
                               : !strcmp(sfx, "ffn_up_exps.weight")   ? (qmoe ? "up_proj" : "w3")
                               : !strcmp(sfx, "ffn_down_exps.weight") ? (qmoe ? "down_proj" : "w2")
                                                                      : NULL;
            if (exps) {
                for (uint32_t x = 0; x < X; x++) {
                    struct hf_tensor *e = &ts[n++];
                    memset(e, 0, sizeof(*e));
                    e->t = t;
                    e->expert = (int)x;
                    e->n_dims = 2;
                    e->shape[0] = t->ne[1];
                    e->shape[1] = t->ne[0];
                    snprintf(e->name, sizeof(e->name), "model.layers.%d.%s.%u.%s.weight", bid,
                             qmoe ? "mlp.experts" : "block_sparse_moe.experts", x, exps);
                }
                continue;
            }
            if (!hf) {
                fprintf(stderr, "gen-synthetic: --hf-out: no transformers name for '%s'\n", nm);
                return 1;
            }
            snprintf(h->name, sizeof(h->name), "model.layers.%d.%s", bid, hf);
            if ((llama || granite) && !strncmp(sfx, "attn_q.", 7))
                h->xform = 1, h->perm_heads = H;
            if ((llama || granite) && !strncmp(sfx, "attn_k.", 7))
                h->xform = 1, h->perm_heads = HKV;
            if (gemma && strstr(sfx, "norm.weight"))
                h->xform = 2;
        } else {
            fprintf(stderr, "gen-synthetic: --hf-out: no transformers name for '%s'\n", nm);
            return 1;
        }
        n++;
    }
    qsort(ts, n, sizeof(*ts), cmp_hf);
    if (n_shards < 1)
        n_shards = 1;
    if ((size_t)n_shards > n)
        n_shards = (int)n;

    /* shards: contiguous runs of the sorted list */
    FILE *idx = NULL;
    if (n_shards > 1) {
        snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
        idx = fopen(path, "w");
        if (!idx) {
            perror(path);
            return 1;
        }
        fprintf(idx, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    }
    size_t first = 0;
    for (int s = 0; s < n_shards; s++) {
        size_t last = n * (size_t)(s + 1) / (size_t)n_shards;
        char fname[128];
        if (n_shards > 1)
            snprintf(fname, sizeof(fname), "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        else
            snprintf(fname, sizeof(fname), "model.safetensors");
        /* the header */
        size_t hcap = 4096 + (last - first) * 256, hl = 0;
        char *hdr = malloc(hcap);
        uint64_t off = 0;
        hl += (size_t)snprintf(hdr + hl, hcap - hl, "{\"__metadata__\":{\"format\":\"pt\"}");
        for (size_t i = first; i < last; i++) {
            struct hf_tensor *h = &ts[i];
            uint64_t elems = 1;
            for (int d = 0; d < h->n_dims; d++)
                elems *= (uint64_t)h->shape[d];
            const bool f16 = h->t->type == INF_TYPE_F16;
            h->bytes = elems * (f16 || bf16 || to_f16 ? 2 : 4);
            h->offset = off;
            off += h->bytes;
            hl += (size_t)snprintf(hdr + hl, hcap - hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                                   h->name,
                                   bf16            ? "BF16"
                                   : f16 || to_f16 ? "F16"
                                                   : "F32");
            for (int d = 0; d < h->n_dims; d++)
                hl += (size_t)snprintf(hdr + hl, hcap - hl, "%s%lld", d ? "," : "",
                                       (long long)h->shape[d]);
            hl += (size_t)snprintf(hdr + hl, hcap - hl, "],\"data_offsets\":[%llu,%llu]}",
                                   (unsigned long long)h->offset,
                                   (unsigned long long)h->offset + (unsigned long long)h->bytes);
            if (idx)
                fprintf(idx, "%s\"%s\": \"%s\"", i ? ", " : "", h->name, fname);
        }
        hl += (size_t)snprintf(hdr + hl, hcap - hl, "}");
        while (hl % 8)
            hdr[hl++] = ' ';
        snprintf(path, sizeof(path), "%s/%s", dir, fname);
        FILE *f = fopen(path, "wb");
        if (!f) {
            perror(path);
            return 1;
        }
        uint64_t hlen = hl;
        fwrite(&hlen, 8, 1, f);
        fwrite(hdr, 1, hl, f);
        free(hdr);
        for (size_t i = first; i < last; i++) {
            const struct hf_tensor *h = &ts[i];
            const size_t esz = h->t->type == INF_TYPE_F16 ? 2 : 4;
            const uint8_t *data = h->t->data;
            int64_t rows = h->shape[0], cols = h->n_dims == 1 ? 1 : h->shape[1];
            if (h->expert >= 0)
                data += (uint64_t)(rows * cols) * esz * (uint64_t)h->expert;
            /* row o of the transformers layout is GGUF row h*hd + 2i + j, o = h*hd + j*half + i */
            int64_t hd = h->xform == 1 ? rows / h->perm_heads : 1, half = hd / 2;
            for (int64_t o = 0; o < rows; o++) {
                int64_t src = o;
                if (h->xform == 1) {
                    int64_t hh = o / hd, rem = o % hd, j = rem / half, ii = rem % half;
                    src = hh * hd + 2 * ii + j;
                } else if (h->xform == 3) {
                    src = o < 2 ? 0 : o - 2;
                }
                const uint8_t *row = data + (size_t)(src * cols) * esz;
                if (h->xform != 2 && !bf16 && !(to_f16 && esz == 4)) {
                    fwrite(row, esz, (size_t)cols, f);
                    continue;
                }
                for (int64_t c = 0; c < cols; c++) {
                    float x = esz == 2 ? inf_fp16_to_fp32_row_one(row + 2 * c)
                                       : ((const float *)(const void *)row)[c];
                    if (h->xform == 2) /* gemma: w - 1 */
                        x -= 1.0f;
                    if (bf16) {
                        uint32_t u;
                        memcpy(&u, &x, 4);
                        uint16_t b = (u & 0x7fffffff) > 0x7f800000
                                         ? (uint16_t)((u >> 16) | 64)
                                         : (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
                        fwrite(&b, 2, 1, f);
                    } else if (esz == 2 || to_f16) {
                        uint16_t hbits;
                        inf_f32_to_f16_row(&x, &hbits, 1);
                        fwrite(&hbits, 2, 1, f);
                    } else {
                        fwrite(&x, 4, 1, f);
                    }
                }
            }
        }
        if (fclose(f) != 0) {
            perror(path);
            return 1;
        }
        first = last;
    }
    if (idx) {
        fprintf(idx, "}}\n");
        fclose(idx);
    }
    printf("wrote %s: %zu tensors in %d file(s), config.json\n", dir, n, n_shards);
    free(ts);
    inf_gguf_free(g);
    return 0;
}

int main(int argc, char **argv)
{
    const char *arch = opt_str(argc, argv, "--arch", "llama");
    const char *vocab = opt_str(argc, argv, "--vocab", NULL);
    const char *out = opt_str(argc, argv, "--out", NULL);
    const char *shape = opt_str(argc, argv, "--shape", "tiny");
    const char *type = opt_str(argc, argv, "--type", "f32");
    long long E = 256, L = 4, H = 8, HKV = 4, F = 704, ctx = 2048, HD = 0, X = 0, XU = 0, FX = 0,
              SWA = 0;
    static const char *const archs[] = {"llama",    "qwen2",   "qwen3",  "qwen2moe",
                                        "qwen3moe", "olmoe",   "gemma2", "gemma3",
                                        "phi3",     "granite", "gpt-oss"};
    if (strcmp(arch, "bert") == 0 || strcmp(arch, "nomic-bert") == 0)
        return gen_encoder(argc, argv, arch);
    bool known = false;
    for (size_t i = 0; i < sizeof(archs) / sizeof(archs[0]); i++)
        known |= strcmp(arch, archs[i]) == 0;
    if (!vocab || !out || !known) {
        fprintf(stderr, "usage: gen-synthetic --arch llama|qwen2|qwen3|qwen2moe|qwen3moe|olmoe|"
                        "gemma2|gemma3|phi3|granite|gpt-oss|bert|nomic-bert --vocab FROM.gguf "
                        "--out OUT.gguf [--shape "
                        "NAME] [options]\n");
        return 2;
    }
    const bool is_moe_arch = !strcmp(arch, "qwen2moe") || !strcmp(arch, "qwen3moe") ||
                             !strcmp(arch, "olmoe") || !strcmp(arch, "gpt-oss");
    const bool gptoss = !strcmp(arch, "gpt-oss");
    const bool gemma2 = !strcmp(arch, "gemma2"), gemma3 = !strcmp(arch, "gemma3");
    const bool phi3 = !strcmp(arch, "phi3"), granite = !strcmp(arch, "granite");
    const bool olmoe = !strcmp(arch, "olmoe"), qwen2moe = !strcmp(arch, "qwen2moe");
    if (is_moe_arch) /* tiny experts: 8, 2 used, of width 128 */
        X = 8, XU = 2, FX = 128;
    if (gemma2)
        SWA = 64; /* small, so that short tests cross the window */
    if (gemma3)
        SWA = 32, L = 6;
    if (gptoss)
        SWA = 16;
    if (strcmp(shape, "small-110m") == 0) {
        E = 768, L = 12, H = 12, HKV = 12, F = 2048;
    } else if (strcmp(shape, "tinyllama-1.1b") == 0) {
        E = 2048, L = 22, H = 32, HKV = 4, F = 5632;
    } else if (strcmp(shape, "gemma-2-2b") == 0) {
        E = 2304, L = 26, H = 8, HKV = 4, HD = 256, F = 9216, ctx = 8192, SWA = 4096;
    } else if (strcmp(shape, "gemma-3-1b") == 0) {
        E = 1152, L = 26, H = 4, HKV = 1, HD = 256, F = 6912, ctx = 32768, SWA = 512;
    } else if (strcmp(shape, "phi-3-mini") == 0) {
        E = 3072, L = 32, H = 32, HKV = 32, F = 8192, ctx = 4096;
    } else if (strcmp(shape, "qwen3-30b-a3b") == 0) { /* 48 layers in the real model */
        E = 2048, L = 12, H = 32, HKV = 4, HD = 128, F = 6144, X = 128, XU = 8, FX = 768;
        ctx = 40960;
    } else if (strcmp(shape, "olmoe-1b-7b") == 0) {
        E = 2048, L = 16, H = 16, HKV = 16, F = 1024, X = 64, XU = 8, FX = 1024, ctx = 4096;
    } else if (strcmp(shape, "mixtral") == 0) { /* Mixtral 8x7B cut to 4 layers of 1024 */
        E = 1024, L = 4, H = 8, HKV = 2, F = 3584, X = 8, XU = 2, FX = 3584, ctx = 4096;
    } else if (strcmp(shape, "granite-3-2b") == 0) {
        E = 2048, L = 40, H = 32, HKV = 8, F = 8192, ctx = 4096;
    } else if (strcmp(shape, "tiny") != 0) {
        fprintf(stderr, "gen-synthetic: unknown shape '%s'\n", shape);
        return 2;
    }
    X = opt_int(argc, argv, "--n-expert", X);
    XU = opt_int(argc, argv, "--n-expert-used", XU ? XU : (X ? 2 : 0));
    FX = opt_int(argc, argv, "--n-ff-exp", FX ? FX : F);
    SWA = opt_int(argc, argv, "--n-swa", SWA);
    const long long longrope = opt_int(argc, argv, "--longrope", 0);
    if (is_moe_arch && X == 0) {
        fprintf(stderr, "gen-synthetic: %s needs experts (--n-expert)\n", arch);
        return 2;
    }
    if (X > 0 && !is_moe_arch && strcmp(arch, "llama") && !granite) {
        fprintf(stderr, "gen-synthetic: experts are for llama, granite and the moe archs\n");
        return 2;
    }
    if (olmoe) {
        FX = F;  /* olmoe's experts use feed_forward_length */
        HKV = H; /* and its K norm spans n_embd: no grouped-query attention */
    }
    E = opt_int(argc, argv, "--n-embd", E);
    L = opt_int(argc, argv, "--n-layer", L);
    H = opt_int(argc, argv, "--n-head", H);
    HKV = opt_int(argc, argv, "--n-head-kv", HKV);
    F = opt_int(argc, argv, "--n-ff", F);
    ctx = opt_int(argc, argv, "--ctx", ctx);
    HD = opt_int(argc, argv, "--head-dim", HD ? HD : E / H);
    float theta = (float)atof(opt_str(argc, argv, "--rope-theta", "10000"));
    float std = (float)atof(opt_str(argc, argv, "--std", "0.08"));
    float out_std = (float)atof(opt_str(argc, argv, "--out-std", "0.3"));
    /* the routers' spread: larger makes each token's expert choice clear-cut (random routers of
       --std give near-uniform choices, where the last bits of any computation flip experts) */
    const char *rs = opt_str(argc, argv, "--router-std", "");
    float router_std = *rs ? (float)atof(rs) : std;
    rng ^= (uint64_t)opt_int(argc, argv, "--seed", 1) * 0x9e3779b97f4a7c15ULL;
    uint32_t wtype = strcmp(type, "f16") == 0 ? INF_TYPE_F16 : INF_TYPE_F32;
    bool qwen2 = strcmp(arch, "qwen2") == 0 || qwen2moe;
    bool qwen3 = strcmp(arch, "qwen3") == 0 || strcmp(arch, "qwen3moe") == 0 || gemma3;
    const long long FS = qwen2moe ? FX * 2 : 0; /* the shared expert's width */

    struct inf_error err = {0};
    struct inf_gguf *g;
    if (inf_gguf_open_file(vocab, &g, &err) != INF_OK) {
        fprintf(stderr, "gen-synthetic: %s\n", err.msg);
        return 1;
    }
    /* vocabulary size: the length of tokenizer.ggml.tokens */
    uint64_t V = 0;
    size_t n_copy = 0;
    const char *tpl_path = opt_str(argc, argv, "--chat-template", NULL);
    char *tpl = NULL;
    if (tpl_path) {
        FILE *tf = fopen(tpl_path, "rb");
        long tl = -1;
        if (tf && fseek(tf, 0, SEEK_END) == 0)
            tl = ftell(tf);
        if (tl >= 0 && fseek(tf, 0, SEEK_SET) == 0 && (tpl = calloc((size_t)tl + 1, 1)) &&
            fread(tpl, 1, (size_t)tl, tf) != (size_t)tl) {
            free(tpl);
            tpl = NULL;
        }
        if (tf)
            fclose(tf);
        if (!tpl) {
            fprintf(stderr, "gen-synthetic: cannot read '%s'\n", tpl_path);
            return 1;
        }
    }
#define IS_TPL_KEY(kv)                                                                             \
    ((kv)->key.len == 23 && memcmp((kv)->key.data, "tokenizer.chat_template", 23) == 0)
    for (size_t i = 0; i < inf_gguf_n_kv(g); i++) {
        const struct inf_gguf_kv *kv = inf_gguf_kv_at(g, i);
        if (kv->key.len > 10 && memcmp(kv->key.data, "tokenizer.", 10) == 0 &&
            !(tpl && IS_TPL_KEY(kv))) {
            n_copy++;
            if (kv->key.len == 21 && memcmp(kv->key.data, "tokenizer.ggml.tokens", 21) == 0 &&
                kv->value.type == INF_GGUF_TYPE_ARRAY)
                V = kv->value.arr.n;
        }
    }
    if (V == 0) {
        fprintf(stderr, "gen-synthetic: '%s' has no tokenizer.ggml.tokens\n", vocab);
        return 1;
    }
    /* --n-vocab: embedding rows other than the vocabulary's (for --hf-out directories that
       take another tokenizer; the GGUF itself is then not runnable) */
    V = (uint64_t)opt_int(argc, argv, "--n-vocab", (long long)V);

    /* the tensor list */
    struct tensor *ts = calloc((size_t)(3 + L * 24), sizeof(*ts));
    int n = 0;
#define ADD3(nm, d0, d1, d2, kind_)                                                                \
    do {                                                                                           \
        snprintf(ts[n].name, sizeof(ts[n].name), "%s", nm);                                        \
        ts[n].ne[0] = (uint64_t)(d0);                                                              \
        ts[n].ne[1] = (uint64_t)(d1);                                                              \
        ts[n].ne[2] = (uint64_t)(d2);                                                              \
        ts[n].n_dims = (d2) != 0 ? 3 : ((d1) != 0) ? 2 : 1;                                        \
        ts[n].kind = kind_;                                                                        \
        ts[n].type = (kind_) <= 1 ? wtype : INF_TYPE_F32;                                          \
        n++;                                                                                       \
    } while (0)
#define ADD(nm, d0, d1, kind_) ADD3(nm, d0, d1, 0, kind_)
    ADD("token_embd.weight", E, V, 0);
    ADD("output_norm.weight", E, 0, 2);
    if (longrope) {
        ADD("rope_factors_long.weight", HD / 2, 0, 5);
        ADD("rope_factors_short.weight", HD / 2, 0, 6);
    }
    if (!gemma2) /* gemma2's output matrix is always the embedding (llama.cpp reads no other) */
        ADD("output.weight", E, V, 1);
    for (long long l = 0; l < L; l++) {
        char nm[64];
#define LADD(sfx, d0, d1, kind_)                                                                   \
    do {                                                                                           \
        snprintf(nm, sizeof(nm), "blk.%lld.%s", l, sfx);                                           \
        ADD(nm, d0, d1, kind_);                                                                    \
    } while (0)
#define LADD3(sfx, d0, d1, d2, kind_)                                                              \
    do {                                                                                           \
        snprintf(nm, sizeof(nm), "blk.%lld.%s", l, sfx);                                           \
        ADD3(nm, d0, d1, d2, kind_);                                                               \
    } while (0)
        LADD("attn_norm.weight", E, 0, 2);
        if (phi3) {
            LADD("attn_qkv.weight", E, (H + 2 * HKV) * HD, 0);
        } else {
            LADD("attn_q.weight", E, H * HD, 0);
            LADD("attn_k.weight", E, HKV * HD, 0);
            LADD("attn_v.weight", E, HKV * HD, 0);
        }
        if (qwen2 || gptoss) {
            LADD("attn_q.bias", H * HD, 0, 3);
            LADD("attn_k.bias", HKV * HD, 0, 3);
            LADD("attn_v.bias", HKV * HD, 0, 3);
        }
        if (qwen3) {
            LADD("attn_q_norm.weight", HD, 0, 2);
            LADD("attn_k_norm.weight", HD, 0, 2);
        }
        if (olmoe) {
            LADD("attn_q_norm.weight", H * HD, 0, 2);
            LADD("attn_k_norm.weight", HKV * HD, 0, 2);
        }
        LADD("attn_output.weight", H * HD, E, 0);
        if (gptoss) {
            LADD("attn_output.bias", E, 0, 3);
            LADD("attn_sinks.weight", H, 0, 7);
        }
        if (gemma2 || gemma3)
            LADD("post_attention_norm.weight", E, 0, 2);
        LADD(gptoss ? "post_attention_norm.weight" : "ffn_norm.weight", E, 0, 2);
        if (X > 0) {
            LADD("ffn_gate_inp.weight", E, X, 4); /* F32, as converters keep it */
            LADD3("ffn_gate_exps.weight", E, FX, X, 0);
            LADD3("ffn_up_exps.weight", E, FX, X, 0);
            LADD3("ffn_down_exps.weight", FX, E, X, 0);
            if (gptoss) {
                LADD("ffn_gate_inp.bias", X, 0, 3);
                LADD("ffn_gate_exps.bias", FX, X, 3);
                LADD("ffn_up_exps.bias", FX, X, 3);
                LADD("ffn_down_exps.bias", E, X, 3);
            }
            if (qwen2moe) {
                LADD("ffn_gate_inp_shexp.weight", E, 0, 4);
                LADD("ffn_gate_shexp.weight", E, FS, 0);
                LADD("ffn_up_shexp.weight", E, FS, 0);
                LADD("ffn_down_shexp.weight", FS, E, 0);
            }
        } else if (phi3) {
            LADD("ffn_up.weight", E, 2 * F, 0);
            LADD("ffn_down.weight", F, E, 0);
        } else {
            LADD("ffn_gate.weight", E, F, 0);
            LADD("ffn_up.weight", E, F, 0);
            LADD("ffn_down.weight", F, E, 0);
        }
        if (gemma2 || gemma3)
            LADD("post_ffw_norm.weight", E, 0, 2);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint64_t elems =
            ts[i].ne[0] * (ts[i].ne[1] ? ts[i].ne[1] : 1) * (ts[i].ne[2] ? ts[i].ne[2] : 1);
        ts[i].offset = off;
        ts[i].bytes = elems * (ts[i].type == INF_TYPE_F16 ? 2 : 4);
        off += (ts[i].bytes + 31) / 32 * 32;
    }

    FILE *f = fopen(out, "wb");
    if (!f) {
        perror(out);
        return 1;
    }
    char key[128];
    /* the architecture's metadata, counted, into a buffer file first */
    FILE *kf = tmpfile();
    if (!kf) {
        perror("tmpfile");
        return 1;
    }
    kv_str(kf, "general.architecture", arch);
    kv_str(kf, "general.name", "synthetic");
    kv_u32(kf, "general.file_type", wtype == INF_TYPE_F16 ? 1 : 0);
#define AKEY(s) (snprintf(key, sizeof(key), "%s.%s", arch, s), key)
    kv_u32(kf, AKEY("context_length"), (uint32_t)ctx);
    kv_u32(kf, AKEY("embedding_length"), (uint32_t)E);
    kv_u32(kf, AKEY("block_count"), (uint32_t)L);
    kv_u32(kf, AKEY("feed_forward_length"), (uint32_t)F);
    kv_u32(kf, AKEY("attention.head_count"), (uint32_t)H);
    kv_u32(kf, AKEY("attention.head_count_kv"), (uint32_t)HKV);
    kv_f32(kf, AKEY("attention.layer_norm_rms_epsilon"), 1e-5f);
    kv_f32(kf, AKEY("rope.freq_base"),
           gemma3 && !opt_str(argc, argv, "--rope-theta", NULL) ? 1000000.0f : theta);
    if (HD != E / H || qwen3) {
        kv_u32(kf, AKEY("attention.key_length"), (uint32_t)HD);
        kv_u32(kf, AKEY("attention.value_length"), (uint32_t)HD);
    }
    if (X > 0) {
        kv_u32(kf, AKEY("expert_count"), (uint32_t)X);
        kv_u32(kf, AKEY("expert_used_count"), (uint32_t)XU);
        if (!olmoe)
            kv_u32(kf, AKEY("expert_feed_forward_length"), (uint32_t)FX);
        if (qwen2moe)
            kv_u32(kf, AKEY("expert_shared_feed_forward_length"), (uint32_t)FS);
    }
    if (gemma2) {
        kv_f32(kf, AKEY("attn_logit_softcapping"), 50.0f);
        kv_f32(kf, AKEY("final_logit_softcapping"), 30.0f);
    }
    if ((gemma2 || gemma3 || gptoss) && SWA > 0)
        kv_u32(kf, AKEY("attention.sliding_window"), (uint32_t)SWA);
    if (gemma3)
        kv_f32(kf, AKEY("rope.freq_base_swa"), 10000.0f);
    if (longrope) {
        kv_str(kf, AKEY("rope.scaling.type"), "longrope");
        kv_f32(kf, AKEY("rope.scaling.attn_factor"), 1.19f);
        kv_u32(kf, AKEY("rope.scaling.original_context_length"), (uint32_t)longrope);
    }
    if (granite) {
        kv_f32(kf, AKEY("logit_scale"), 8.0f);
        kv_f32(kf, AKEY("residual_scale"), 0.22f);
        kv_f32(kf, AKEY("embedding_scale"), 12.0f);
        kv_f32(kf, AKEY("attention.scale"), 0.015625f);
    }
    const long kv_len = ftell(kf);
    char *kv_bytes = malloc((size_t)kv_len + 1);
    rewind(kf);
    if (!kv_bytes || fread(kv_bytes, 1, (size_t)kv_len, kf) != (size_t)kv_len) {
        fprintf(stderr, "gen-synthetic: cannot read back the metadata\n");
        return 1;
    }
    fclose(kf);
    fwrite("GGUF", 1, 4, f);
    w_u32(f, 3);
    w_u64(f, (uint64_t)n);
    w_u64(f, n_kv_written + n_copy + (tpl ? 1 : 0));
    fwrite(kv_bytes, 1, (size_t)kv_len, f);
    free(kv_bytes);
    for (size_t i = 0; i < inf_gguf_n_kv(g); i++) {
        const struct inf_gguf_kv *kv = inf_gguf_kv_at(g, i);
        if (kv->key.len > 10 && memcmp(kv->key.data, "tokenizer.", 10) == 0 &&
            !(tpl && IS_TPL_KEY(kv))) {
            w_u64(f, kv->key.len);
            fwrite(kv->key.data, 1, (size_t)kv->key.len, f);
            w_u32(f, (uint32_t)kv->value.type);
            w_value(f, &kv->value);
        }
    }
    if (tpl)
        kv_str(f, "tokenizer.chat_template", tpl);
    free(tpl);
    for (int i = 0; i < n; i++) {
        w_str(f, ts[i].name);
        w_u32(f, (uint32_t)ts[i].n_dims);
        for (int d = 0; d < ts[i].n_dims; d++)
            w_u64(f, ts[i].ne[d]);
        w_u32(f, ts[i].type);
        w_u64(f, ts[i].offset);
    }
    long pos = ftell(f);
    static const char zeros[32];
    fwrite(zeros, 1, (size_t)((32 - pos % 32) % 32), f);
    size_t widest = (size_t)(E > 2 * F ? E : 2 * F);
    if ((size_t)FX > widest)
        widest = (size_t)FX;
    if ((size_t)FS > widest) /* qwen2moe's shared expert (ffn_down_shexp rows) */
        widest = (size_t)FS;
    if ((size_t)(H * HD) > widest)
        widest = (size_t)(H * HD);
    float *row = malloc(widest * sizeof(float));
    uint16_t *row16 = malloc(widest * sizeof(uint16_t));
    for (int i = 0; i < n; i++) {
        uint64_t rows = (ts[i].ne[1] ? ts[i].ne[1] : 1) * (ts[i].ne[2] ? ts[i].ne[2] : 1);
        uint64_t cols = ts[i].ne[0];
        for (uint64_t r = 0; r < rows; r++) {
            for (uint64_t c = 0; c < cols; c++) {
                float x = normal();
                row[c] = ts[i].kind == 0   ? x * std
                         : ts[i].kind == 1 ? x * out_std
                         : ts[i].kind == 2 ? 1.0f + 0.05f * x
                         : ts[i].kind == 4 ? x * router_std
                         : ts[i].kind == 5 ? 1.0f + 10.0f * fabsf(x) /* LongRoPE long */
                         : ts[i].kind == 6 ? 1.0f + 0.1f * fabsf(x)  /* and short factors */
                         : ts[i].kind == 7 ? x                       /* attention sinks */
                                           : 0.05f * x;
            }
            if (ts[i].type == INF_TYPE_F16) {
                inf_f32_to_f16_row(row, row16, (int64_t)cols);
                fwrite(row16, 2, cols, f);
            } else {
                fwrite(row, 4, cols, f);
            }
        }
        fwrite(zeros, 1, (size_t)((32 - ts[i].bytes % 32) % 32), f);
    }
    if (fclose(f) != 0) {
        perror(out);
        return 1;
    }
    printf("wrote %s: %s, n_embd %lld, n_layer %lld, heads %lld/%lld, head_dim %lld, n_ff %lld, "
           "experts %lld/%lld of %lld, window %lld, vocab %llu, %s\n",
           out, arch, E, L, H, HKV, HD, F, XU, X, FX, SWA, (unsigned long long)V, type);
    free(row);
    free(row16);
    free(ts);
    inf_gguf_free(g);
    const char *hf_out = opt_str(argc, argv, "--hf-out", NULL);
    if (hf_out)
        return export_hf(out, hf_out, (int)opt_int(argc, argv, "--hf-shards", 1),
                         opt_str(argc, argv, "--hf-dtype", "same"));
    return 0;
}
