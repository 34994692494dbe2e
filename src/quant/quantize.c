/*
 * quantize.c - re-quantize a GGUF model tensor by tensor. src/quant/ owns whole-model
 * quantization (`inferno quantize`, byte-identical to llama-quantize).
 *
 * The plan (which type each tensor gets) is made first, over the tensors in llama-quantize's
 * order (layer number, then name), because some rules count attn_v / ffn_down tensors as they
 * go. The file is then streamed: header and tensor infos, then each tensor dequantized to F32 in
 * slabs of rows, quantized by the thread pool and appended, so memory stays at one slab.
 */
#define _POSIX_C_SOURCE 200809L
#include "inferno/quantize.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/files.h"
#include "inferno/cpu.h"
#include "inferno/gguf.h"
#include "inferno/kernels.h"
#include "inferno/threadpool.h"

/* llama file types (llama.h enum llama_ftype) used by the presets. */
enum {
    FT_F32 = 0,
    FT_F16 = 1,
    FT_Q4_0 = 2,
    FT_Q4_1 = 3,
    FT_Q8_0 = 7,
    FT_Q5_0 = 8,
    FT_Q5_1 = 9,
    FT_Q2_K = 10,
    FT_Q3_K_S = 11,
    FT_Q3_K_M = 12,
    FT_Q3_K_L = 13,
    FT_Q4_K_S = 14,
    FT_Q4_K_M = 15,
    FT_Q5_K_S = 16,
    FT_Q5_K_M = 17,
    FT_Q6_K = 18,
    FT_BF16 = 32,
    FT_MXFP4_MOE = 38,
};

static const struct inf_quant_preset presets[] = {
    {"Q4_0", FT_Q4_0, INF_GGML_TYPE_Q4_0, "4.5 bpw"},
    {"Q4_1", FT_Q4_1, INF_GGML_TYPE_Q4_1, "5.0 bpw"},
    {"Q5_0", FT_Q5_0, INF_GGML_TYPE_Q5_0, "5.5 bpw"},
    {"Q5_1", FT_Q5_1, INF_GGML_TYPE_Q5_1, "6.0 bpw"},
    {"Q8_0", FT_Q8_0, INF_GGML_TYPE_Q8_0, "8.5 bpw"},
    {"Q2_K", FT_Q2_K, INF_GGML_TYPE_Q2_K, "Q2_K mix"},
    {"Q3_K", FT_Q3_K_M, INF_GGML_TYPE_Q3_K, "alias of Q3_K_M"},
    {"Q3_K_S", FT_Q3_K_S, INF_GGML_TYPE_Q3_K, "Q3_K small mix"},
    {"Q3_K_M", FT_Q3_K_M, INF_GGML_TYPE_Q3_K, "Q3_K medium mix"},
    {"Q3_K_L", FT_Q3_K_L, INF_GGML_TYPE_Q3_K, "Q3_K large mix"},
    {"Q4_K", FT_Q4_K_M, INF_GGML_TYPE_Q4_K, "alias of Q4_K_M"},
    {"Q4_K_S", FT_Q4_K_S, INF_GGML_TYPE_Q4_K, "Q4_K small mix"},
    {"Q4_K_M", FT_Q4_K_M, INF_GGML_TYPE_Q4_K, "Q4_K medium mix"},
    {"Q5_K", FT_Q5_K_M, INF_GGML_TYPE_Q5_K, "alias of Q5_K_M"},
    {"Q5_K_S", FT_Q5_K_S, INF_GGML_TYPE_Q5_K, "Q5_K small mix"},
    {"Q5_K_M", FT_Q5_K_M, INF_GGML_TYPE_Q5_K, "Q5_K medium mix"},
    {"Q6_K", FT_Q6_K, INF_GGML_TYPE_Q6_K, "Q6_K mix"},
    {"F16", FT_F16, INF_GGML_TYPE_F16, "16-bit float"},
    {"BF16", FT_BF16, INF_GGML_TYPE_BF16, "bfloat16"},
    {"F32", FT_F32, INF_GGML_TYPE_F32, "32-bit float"},
    {"MXFP4_MOE", FT_MXFP4_MOE, INF_GGML_TYPE_Q8_0, "MXFP4 experts, Q8_0 elsewhere"},
};
#define N_PRESETS (sizeof(presets) / sizeof(presets[0]))

const struct inf_quant_preset *inf_quant_preset_find(const char *name)
{
    for (size_t i = 0; name && i < N_PRESETS; i++)
        if (strcasecmp(presets[i].name, name) == 0)
            return &presets[i];
    return NULL;
}

const char *const *inf_quant_preset_names(void)
{
    static const char *names[N_PRESETS + 1];
    for (size_t i = 0; i < N_PRESETS; i++)
        names[i] = presets[i].name;
    names[N_PRESETS] = NULL;
    return names;
}

void inf_quant_params_init(struct inf_quant_params *p)
{
    memset(p, 0, sizeof(*p));
    p->output_tensor_type = -1;
    p->token_embedding_type = -1;
}

/* ---- the plan ------------------------------------------------------------------------------ */

enum category {
    CAT_OTHER,
    CAT_OUTPUT,
    CAT_TOKEN_EMBD,
    CAT_ATTN_QKV,
    CAT_ATTN_KV_B,
    CAT_ATTN_V,
    CAT_ATTN_K,
    CAT_ATTN_Q,
    CAT_ATTN_OUTPUT,
    CAT_FFN_UP,
    CAT_FFN_GATE,
    CAT_FFN_DOWN,
};

static enum category category_of(const char *name)
{
    if (strcmp(name, "output.weight") == 0)
        return CAT_OUTPUT;
    if (strcmp(name, "token_embd.weight") == 0 || strcmp(name, "per_layer_token_embd.weight") == 0)
        return CAT_TOKEN_EMBD;
    static const struct {
        const char *part;
        enum category cat;
    } parts[] = {
        {"attn_qkv.weight", CAT_ATTN_QKV},
        {"attn_kv_b.weight", CAT_ATTN_KV_B},
        {"attn_v.weight", CAT_ATTN_V},
        {"attn_k.weight", CAT_ATTN_K},
        {"attn_q.weight", CAT_ATTN_Q},
        {"attn_output.weight", CAT_ATTN_OUTPUT},
        {"ffn_up", CAT_FFN_UP},
        {"ffn_gate", CAT_FFN_GATE},
        {"ffn_down", CAT_FFN_DOWN},
    };
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (strstr(name, parts[i].part))
            return parts[i].cat;
    return CAT_OTHER;
}

static bool is_attn_v_like(enum category c)
{
    return c == CAT_ATTN_V || c == CAT_ATTN_QKV || c == CAT_ATTN_KV_B;
}

/* Dimensions ignoring trailing ones, as ggml counts them. */
static uint32_t real_dims(const struct inf_gguf_tensor *t)
{
    uint32_t n = 1;
    for (uint32_t d = 1; d < INF_GGUF_MAX_DIMS; d++)
        if (t->ne[d] > 1)
            n = d + 1;
    return n;
}

/* Whether a tensor is one llama-quantize would quantize at all (2-D+ weights, not norms...). */
static bool quantizable(const struct inf_gguf_tensor *t)
{
    static const char *const keep[] = {
        "_norm.weight",
        "ffn_gate_inp.weight",
        "ffn_gate_tid2eid.weight",
        "altup",
        "laurel",
        "per_layer_model_proj",
        "ssm_conv1d",
        "shortconv.conv.weight",
        "indexer.k_proj.weight",
        "indexer.q_proj.weight",
        "time_mix_first.weight",
        "time_mix_w0.weight",
        "time_mix_w1.weight",
        "time_mix_w2.weight",
        "time_mix_v0.weight",
        "time_mix_v1.weight",
        "time_mix_v2.weight",
        "time_mix_a0.weight",
        "time_mix_a1.weight",
        "time_mix_a2.weight",
        "time_mix_g1.weight",
        "time_mix_g2.weight",
        "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight",
        "attn_rel_b.weight",
        ".position_embd",
        "sam.pos_embd",
        "sam.neck.",
        "sam.net_",
        ".rel_pos",
        ".patch_embd",
        ".patch_merger",
        "a.rvq.codebook",
        "mm.a.code_embd",
    };
    const char *name = t->name.data;
    size_t len = strlen(name);

    if (real_dims(t) < 2)
        return false;
    if (len < 6 || strcmp(name + len - 6, "weight") != 0)
        return false;
    if (strcmp(name, "position_embd.weight") == 0 || strcmp(name, "token_types.weight") == 0)
        return false;
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        if (strstr(name, keep[i]))
            return false;
    return true;
}

/* What the recipe needs to know about the model. */
struct model_facts {
    bool falcon, is_70b, tied;
    uint32_t n_layer, n_gqa, n_expert;
    int n_attn_v, i_attn_v, i_ffn_down;
};

/* The N of "blk.N." (as sscanf's %d reads it), or -1. */
static int layer_of(const char *name)
{
    char *end;
    long v;
    if (strncmp(name, "blk.", 4) != 0)
        return -1;
    errno = 0;
    v = strtol(name + 4, &end, 10);
    if (end == name + 4 || errno || v < INT_MIN || v > INT_MAX)
        return -1;
    return (int)v;
}

/* Layers that get more bits in the _M mixes: the first and last eighth, and every third. */
static bool more_bits(int i, int n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static uint32_t blck(uint32_t type)
{
    const struct inf_ggml_type_info *ti = inf_ggml_type_info(type);
    return ti ? ti->blck_size : 1;
}

/* The mix rule for one tensor; mirrors the decisions of llama.cpp's recipe for these ftypes. */
static inf_status mix_type(struct model_facts *m, const struct inf_quant_params *p, uint32_t ftype,
                           const struct inf_gguf_tensor *t, enum category cat, uint32_t *type,
                           struct inf_error *err)
{
    uint32_t nt = *type;

    if (ftype == FT_MXFP4_MOE) {
        /* experts (stacks of matrices) in MXFP4, everything else (the output too) Q8_0 */
        if ((cat == CAT_OUTPUT || (m->tied && cat == CAT_TOKEN_EMBD)) && p->output_tensor_type >= 0)
            nt = (uint32_t)p->output_tensor_type;
        else if (cat == CAT_TOKEN_EMBD && p->token_embedding_type >= 0)
            nt = (uint32_t)p->token_embedding_type;
        else
            nt = t->n_dims >= 3 && t->ne[2] > 1 ? INF_GGML_TYPE_MXFP4 : INF_GGML_TYPE_Q8_0;
        *type = nt;
        return INF_OK;
    }
    if (cat == CAT_OUTPUT || (m->tied && cat == CAT_TOKEN_EMBD)) {
        if (p->output_tensor_type >= 0)
            nt = (uint32_t)p->output_tensor_type;
        else if (m->falcon || t->ne[0] % blck(nt) != 0)
            nt = INF_GGML_TYPE_Q8_0;
        else if (nt != INF_GGML_TYPE_Q8_0)
            nt = INF_GGML_TYPE_Q6_K;
    } else if (cat == CAT_TOKEN_EMBD) {
        if (p->token_embedding_type >= 0)
            nt = (uint32_t)p->token_embedding_type;
    } else if (is_attn_v_like(cat)) {
        if (ftype == FT_Q2_K)
            nt = m->n_gqa >= 4 ? INF_GGML_TYPE_Q4_K : INF_GGML_TYPE_Q3_K;
        else if (ftype == FT_Q3_K_M)
            nt = m->i_attn_v < 2 ? INF_GGML_TYPE_Q5_K : INF_GGML_TYPE_Q4_K;
        else if (ftype == FT_Q3_K_L)
            nt = INF_GGML_TYPE_Q5_K;
        else if ((ftype == FT_Q4_K_M || ftype == FT_Q5_K_M) && more_bits(m->i_attn_v, m->n_attn_v))
            nt = INF_GGML_TYPE_Q6_K;
        else if (ftype == FT_Q4_K_S && m->i_attn_v < 4)
            nt = INF_GGML_TYPE_Q5_K;
        if (m->is_70b && (nt == INF_GGML_TYPE_Q3_K || nt == INF_GGML_TYPE_Q4_K))
            nt = INF_GGML_TYPE_Q5_K;
        if (m->n_expert == 8)
            nt = INF_GGML_TYPE_Q8_0;
        m->i_attn_v++;
    } else if (cat == CAT_ATTN_K) {
        if (m->n_expert == 8)
            nt = INF_GGML_TYPE_Q8_0;
    } else if (cat == CAT_ATTN_Q) {
        /* no rule for the presets offered here */
    } else if (cat == CAT_FFN_DOWN) {
        int i = m->i_ffn_down, n = (int)m->n_layer;
        if (m->n_expert > 1) {
            i = layer_of(t->name.data);
            if (i < 0 || i >= n)
                return inf_error_set(err, INF_EFORMAT,
                                     "tensor '%s': cannot tell its layer (block_count %d)",
                                     t->name.data, n);
        }
        if (ftype == FT_Q2_K)
            nt = INF_GGML_TYPE_Q3_K;
        else if (ftype == FT_Q3_K_M)
            nt = i < n / 16                      ? INF_GGML_TYPE_Q5_K
                 : !m->falcon || more_bits(i, n) ? INF_GGML_TYPE_Q4_K
                                                 : INF_GGML_TYPE_Q3_K;
        else if (ftype == FT_Q3_K_L)
            nt = m->falcon ? INF_GGML_TYPE_Q4_K : INF_GGML_TYPE_Q5_K;
        else if (ftype == FT_Q4_K_M) {
            if (m->falcon)
                nt = i < n / 16        ? INF_GGML_TYPE_Q6_K
                     : more_bits(i, n) ? INF_GGML_TYPE_Q5_K
                                       : INF_GGML_TYPE_Q4_K;
            else if (more_bits(i, n))
                nt = INF_GGML_TYPE_Q6_K;
        } else if (ftype == FT_Q5_K_M && more_bits(i, n))
            nt = INF_GGML_TYPE_Q6_K;
        else if (ftype == FT_Q4_K_S && !m->falcon && i < n / 8)
            nt = INF_GGML_TYPE_Q5_K;
        m->i_ffn_down++;
    } else if (cat == CAT_ATTN_OUTPUT) {
        if (!m->falcon) {
            if (m->n_expert == 8) {
                if (ftype == FT_Q2_K || ftype == FT_Q3_K_S || ftype == FT_Q3_K_M ||
                    ftype == FT_Q4_K_S || ftype == FT_Q4_K_M)
                    nt = INF_GGML_TYPE_Q5_K;
            } else if (ftype == FT_Q2_K)
                nt = INF_GGML_TYPE_Q3_K;
            else if (ftype == FT_Q3_K_M)
                nt = INF_GGML_TYPE_Q4_K;
            else if (ftype == FT_Q3_K_L)
                nt = INF_GGML_TYPE_Q5_K;
        } else if (ftype == FT_Q3_K_L)
            nt = INF_GGML_TYPE_Q4_K;
    }
    *type = nt;
    return INF_OK;
}

/* A type that fits a row length that the chosen one does not divide. */
static uint32_t fit_row(uint32_t type, int64_t ncols)
{
    uint32_t nt = type;
    if (ncols % blck(type) == 0)
        return type;
    switch (type) {
    case INF_GGML_TYPE_Q2_K:
    case INF_GGML_TYPE_Q3_K:
        nt = INF_GGML_TYPE_Q4_0;
        break;
    case INF_GGML_TYPE_Q4_K:
        nt = INF_GGML_TYPE_Q5_0;
        break;
    case INF_GGML_TYPE_Q5_K:
        nt = INF_GGML_TYPE_Q5_1;
        break;
    case INF_GGML_TYPE_Q6_K:
        nt = INF_GGML_TYPE_Q8_0;
        break;
    default:
        break;
    }
    if (ncols % blck(nt) != 0)
        nt = INF_GGML_TYPE_F16;
    return nt;
}

static bool ggml_quantized(uint32_t type)
{
    const struct inf_ggml_type_info *ti = inf_ggml_type_info(type);
    return ti && ti->is_quantized;
}

static uint32_t arch_u32(const struct inf_gguf *g, const char *arch, const char *suffix,
                         uint32_t def)
{
    char key[160];
    uint32_t v;
    snprintf(key, sizeof(key), "%s.%s", arch, suffix);
    return inf_gguf_get_u32(g, key, &v, NULL) == INF_OK ? v : def;
}

static void model_facts_init(struct model_facts *m, const struct inf_gguf *g)
{
    const char *arch = "";
    memset(m, 0, sizeof(*m));
    if (inf_gguf_get_str(g, "general.architecture", &arch, NULL, NULL) != INF_OK)
        arch = "";
    uint32_t n_head = arch_u32(g, arch, "attention.head_count", 0);
    uint32_t n_head_kv = arch_u32(g, arch, "attention.head_count_kv", n_head);
    m->falcon = strcmp(arch, "falcon") == 0;
    m->n_layer = arch_u32(g, arch, "block_count", 0);
    m->n_expert = arch_u32(g, arch, "expert_count", 0);
    m->n_gqa = n_head_kv ? n_head / n_head_kv : 0;
    m->is_70b = strcmp(arch, "llama") == 0 && m->n_layer == 80 && n_head != n_head_kv;
    m->tied = !inf_gguf_find_tensor(g, "output.weight");
    for (size_t i = 0; i < inf_gguf_n_tensors(g); i++)
        if (strstr(inf_gguf_tensor_at(g, i)->name.data, "attn_v.weight") ||
            strstr(inf_gguf_tensor_at(g, i)->name.data, "attn_qkv.weight") ||
            strstr(inf_gguf_tensor_at(g, i)->name.data, "attn_kv_b.weight"))
            m->n_attn_v++;
}

static const struct inf_gguf *sort_g;

/* llama-quantize's tensor order: layer number (none first), then name. */
static int cmp_tensor(const void *a, const void *b)
{
    const struct inf_gguf_tensor *ta = inf_gguf_tensor_at(sort_g, *(const size_t *)a);
    const struct inf_gguf_tensor *tb = inf_gguf_tensor_at(sort_g, *(const size_t *)b);
    int la = layer_of(ta->name.data), lb = layer_of(tb->name.data);
    if (la != lb)
        return la < lb ? -1 : 1;
    return strcmp(ta->name.data, tb->name.data);
}

struct plan_item {
    size_t index;   /* in the input */
    uint32_t to;    /* output type */
    uint64_t bytes; /* output bytes */
};

static inf_status make_plan(const struct inf_gguf *g, const struct inf_quant_preset *pr,
                            const struct inf_quant_params *p, struct plan_item *items,
                            struct inf_error *err)
{
    size_t n = inf_gguf_n_tensors(g);
    struct model_facts m;
    model_facts_init(&m, g);

    for (size_t i = 0; i < n; i++)
        items[i].index = i;
    sort_g = g;
    qsort(items, n, sizeof(*items), cmp_tensor);
    for (size_t k = 0; k < n; k++) {
        const struct inf_gguf_tensor *t = inf_gguf_tensor_at(g, items[k].index);
        enum category cat = category_of(t->name.data);
        uint32_t to = t->type;
        if (quantizable(t)) {
            if (p->token_embedding_type >= 0 && cat == CAT_TOKEN_EMBD)
                to = (uint32_t)p->token_embedding_type;
            else if (p->output_tensor_type >= 0 && cat == CAT_OUTPUT)
                to = (uint32_t)p->output_tensor_type;
            else {
                to = pr->default_type;
                if (ggml_quantized(to)) {
                    if (!p->pure) {
                        inf_status rc = mix_type(&m, p, pr->ftype, t, cat, &to, err);
                        if (rc != INF_OK)
                            return rc;
                    }
                    to = fit_row(to, t->ne[0]);
                }
            }
        }
        items[k].to = to;
        if (inf_ggml_nbytes(to, t->n_dims, t->ne, t->name.data, &items[k].bytes, err) != INF_OK)
            return err ? err->code : INF_EFORMAT;
        if (to != t->type) {
            const struct inf_type_traits *src = inf_type_get((enum inf_type)t->type);
            const struct inf_type_traits *dst = inf_type_get((enum inf_type)to);
            if (!src || !src->to_float || !src->is_weight)
                return inf_error_set(err, INF_EUNSUPPORTED,
                                     "tensor '%s': type %s cannot be dequantized", t->name.data,
                                     inf_ggml_type_name(t->type));
            if (!dst || !dst->from_float_ref || !dst->is_weight)
                return inf_error_set(err, INF_EUNSUPPORTED,
                                     "tensor '%s': cannot quantize to type %s", t->name.data,
                                     inf_ggml_type_name(to));
        }
    }
    return INF_OK;
}

/* ---- conversion ---------------------------------------------------------------------------- */

struct dequant_task {
    uint32_t type;
    const uint8_t *src;
    size_t src_row;
    float *dst;
    int64_t n_rows, n_per_row;
};

static void dequant_fn(void *arg, int ith, int nth)
{
    const struct dequant_task *d = arg;
    int64_t r0, r1;
    inf_split_rows(d->n_rows, ith, nth, 1, &r0, &r1);
    for (int64_t r = r0; r < r1; r++)
        inf_dequantize_row((enum inf_type)d->type, d->src + (size_t)r * d->src_row,
                           d->dst + r * d->n_per_row, d->n_per_row, NULL);
}

static inf_status put_bytes(FILE *f, const void *p, size_t n, const char *tmp,
                            struct inf_error *err)
{
    if (n && fwrite(p, 1, n, f) != n)
        return inf_error_set(err, INF_EIO, "cannot write '%s': %s", tmp, strerror(errno));
    return INF_OK;
}

#define SLAB_BYTES (32u << 20) /* F32 values converted per step */

/*
 * Values smaller than this quantize to 0 in every block format (the block scales are F16, whose
 * smallest step is 6e-8), but a block made only of them has a scale d so small that the
 * quantizers' 1/d overflows to infinity, and converting infinity to an integer is undefined
 * (found by fuzz_gguf_commands). They are flushed to 0 first; the output dequantizes the same.
 */
#define QUANT_TINY 1e-30f

static inf_status convert_tensor(struct inf_threadpool *pool, const struct inf_gguf_tensor *t,
                                 uint32_t to, FILE *f, const char *tmp, float *fbuf, void *qbuf,
                                 const struct inf_quant_params *p, struct inf_error *err)
{
    int64_t n_per_row = t->ne[0];
    int64_t n_rows = n_per_row ? (int64_t)(t->n_elements / (uint64_t)n_per_row) : 0;
    size_t src_row = inf_type_row_size((enum inf_type)t->type, n_per_row);
    size_t dst_row = inf_type_row_size((enum inf_type)to, n_per_row);
    int64_t slab = (int64_t)(SLAB_BYTES / sizeof(float)) / (n_per_row ? n_per_row : 1);
    inf_status rc = INF_OK;
    const bool quantized = ggml_quantized(to);

    if (slab < 1)
        slab = 1;
    for (int64_t r = 0; r < n_rows && rc == INF_OK; r += slab) {
        int64_t nr = n_rows - r < slab ? n_rows - r : slab;
        const uint8_t *src = (const uint8_t *)t->data + (size_t)r * src_row;
        const float *x = (const float *)(const void *)src;
        if (p->cancel && *p->cancel)
            return inf_error_set(err, INF_ECANCELED, "interrupted");
        if (t->type != INF_GGML_TYPE_F32 || ((uintptr_t)src % sizeof(float)) != 0) {
            struct dequant_task d = {t->type, src, src_row, fbuf, nr, n_per_row};
            inf_threadpool_run(pool, dequant_fn, &d);
            x = fbuf;
        }
        /* NaN or infinity has no quantized form (converting it to an integer is undefined);
           F16, BF16 and F32 targets carry them as they are */
        bool tiny = false;
        for (int64_t i = 0; quantized && i < nr * n_per_row; i++) {
            if (!isfinite(x[i]))
                return inf_error_set(err, INF_EFORMAT,
                                     "tensor '%s': row %" PRId64 " element %" PRId64
                                     " is %g; a tensor with values that are not finite cannot be "
                                     "quantized",
                                     t->name.data, r + i / n_per_row, i % n_per_row, (double)x[i]);
            tiny |= x[i] != 0.0f && fabsf(x[i]) < QUANT_TINY;
        }
        if (tiny) {
            if (x != fbuf)
                memcpy(fbuf, x, (size_t)(nr * n_per_row) * sizeof(float));
            for (int64_t i = 0; i < nr * n_per_row; i++)
                if (fabsf(fbuf[i]) < QUANT_TINY)
                    fbuf[i] = 0.0f;
            x = fbuf;
        }
        rc = inf_quantize_rows(pool, (enum inf_type)to, x, qbuf, nr, n_per_row, err);
        if (rc == INF_OK)
            rc = put_bytes(f, qbuf, (size_t)nr * dst_row, tmp, err);
    }
    return rc;
}

/* Drop the input mapping's pages of a tensor already written (the page cache keeps them), so
   that the resident set stays at the slab buffers however large the model. */
static void drop_pages(const void *p, uint64_t n)
{
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0 || n == 0)
        return;
    size_t lead = (size_t)((uintptr_t)p % (uintptr_t)pg);
    (void)madvise((char *)(const char *)p - lead, (size_t)n + lead, MADV_DONTNEED);
}

static inf_status same_file(const char *a, const char *b, bool *same)
{
    struct stat sa, sb;
    *same = false;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return INF_OK;
    *same = sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    return INF_OK;
}

static inf_status add_metadata(struct inf_gguf_writer *w, const struct inf_gguf *g, uint32_t ftype,
                               struct inf_error *err)
{
    static const char *const dropped[] = {"general.quantization_version", "general.file_type",
                                          "split.no", "split.count", "split.tensors.count"};
    inf_status rc;
    for (size_t i = 0; i < inf_gguf_n_kv(g); i++) {
        const struct inf_gguf_kv *kv = inf_gguf_kv_at(g, i);
        bool drop = false;
        for (size_t k = 0; k < sizeof(dropped) / sizeof(dropped[0]); k++)
            drop |= strcmp(kv->key.data, dropped[k]) == 0;
        if (drop)
            continue;
        rc = inf_gguf_writer_set(w, kv->key.data, &kv->value, err);
        if (rc != INF_OK)
            return rc;
    }
    rc = inf_gguf_writer_set_u32(w, "general.quantization_version", 2, err);
    if (rc == INF_OK)
        rc = inf_gguf_writer_set_u32(w, "general.file_type", ftype, err);
    return rc;
}

static inf_status check_override(int type, const char *what, struct inf_error *err)
{
    const struct inf_type_traits *tr;
    if (type < 0)
        return INF_OK;
    tr = inf_type_get((enum inf_type)type);
    if (!tr || !tr->is_weight || !tr->from_float_ref)
        return inf_error_set(err, INF_EUSAGE, "%s: cannot quantize to type %s", what,
                             inf_ggml_type_name((uint32_t)type));
    return INF_OK;
}

inf_status inf_quantize_file(const char *in_path, const char *out_path,
                             const struct inf_quant_params *p, struct inf_quant_stats *stats,
                             struct inf_error *err)
{
    const struct inf_quant_preset *pr = inf_quant_preset_find(p->type);
    struct inf_gguf *g = NULL;
    struct inf_gguf_writer *w = NULL;
    struct inf_threadpool *pool = NULL;
    struct plan_item *items = NULL;
    struct inf_quant_stats st = {0};
    float *fbuf = NULL;
    void *qbuf = NULL;
    struct inf__outfile of = {.fd = -1};
    const char *tmp = NULL;
    FILE *f = NULL;
    double t_start = (inf__now_ms() * 1e-3);
    bool same;
    inf_status rc;

    if (!pr)
        return inf_error_set(err, INF_EUSAGE, "unknown type '%s'", p->type ? p->type : "");
    rc = check_override(p->output_tensor_type, "--output-tensor-type", err);
    if (rc == INF_OK)
        rc = check_override(p->token_embedding_type, "--token-embedding-type", err);
    if (rc != INF_OK)
        return rc;
    if (!p->dry_run) {
        same_file(in_path, out_path, &same);
        if (same || strcmp(in_path, out_path) == 0)
            return inf_error_set(err, INF_EINVAL, "the output '%s' is the input file", out_path);
        rc = inf__outfile_check_target(out_path, err);
        if (rc != INF_OK)
            return rc;
        if (!p->force && access(out_path, F_OK) == 0)
            return inf_error_set(err, INF_EEXIST, "'%s' exists; pass --force to overwrite it",
                                 out_path);
    }
    rc = inf_gguf_open_file(in_path, &g, err);
    if (rc != INF_OK)
        return rc;
    if (inf_gguf_is_big_endian(g)) {
        rc = inf_error_set(err, INF_EUNSUPPORTED, "'%s': big-endian files are not supported",
                           in_path);
        goto out;
    }
    size_t n = inf_gguf_n_tensors(g);
    items = calloc(n ? n : 1, sizeof(*items));
    if (!items) {
        rc = inf_error_set(err, INF_ENOMEM, "out of memory");
        goto out;
    }
    rc = make_plan(g, pr, p, items, err);
    if (rc != INF_OK) {
        inf_error_prefix(err, "'%s'", in_path);
        goto out;
    }
    rc = inf_gguf_writer_new(3, &w, err);
    if (rc == INF_OK)
        rc = add_metadata(w, g, pr->ftype, err);
    for (size_t k = 0; k < n && rc == INF_OK; k++) {
        const struct inf_gguf_tensor *t = inf_gguf_tensor_at(g, items[k].index);
        rc = inf_gguf_writer_add_tensor_info(w, t->name.data, items[k].to, t->n_dims, t->ne, err);
    }
    if (rc != INF_OK)
        goto out;
    inf_gguf_bytes(g, &st.in_bytes);
    st.n_tensors = n;
    st.ftype = pr->ftype;
    uint32_t align = inf_gguf_writer_alignment(w);

    if (p->dry_run) {
        for (size_t k = 0; k < n; k++) {
            const struct inf_gguf_tensor *t = inf_gguf_tensor_at(g, items[k].index);
            st.n_converted += items[k].to != t->type;
            if (p->progress) {
                struct inf_quant_event ev = {
                    k,       n,           t->name.data, t->n_dims,      t->ne,
                    t->type, items[k].to, t->n_bytes,   items[k].bytes, 0.0};
                p->progress(p->progress_arg, &ev);
            }
        }
        st.out_bytes = inf_gguf_writer_size(w);
        goto out;
    }

    struct inf_threadpool_params tp;
    inf_threadpool_params_init(&tp);
    tp.n_threads = p->n_threads > 0 ? p->n_threads : inf_cpu_physical_cores();
    if (tp.n_threads < 1)
        tp.n_threads = 1;
    st.n_threads = tp.n_threads;
    rc = inf_threadpool_new(&tp, &pool, err);
    if (rc != INF_OK)
        goto out;

    /* Buffers for one slab: F32 values and their quantized rows (at most 4 bytes a value). */
    fbuf = malloc(SLAB_BYTES + 64 * sizeof(float));
    qbuf = malloc(SLAB_BYTES + 4096);
    size_t max_row = 0;
    for (size_t k = 0; k < n; k++) {
        const struct inf_gguf_tensor *t = inf_gguf_tensor_at(g, items[k].index);
        /* ne[0] < 2^60 (inf_ggml_size); a tensor without elements needs no row buffer */
        size_t row = t->n_elements ? (size_t)t->ne[0] * sizeof(float) : 0;
        max_row = row > max_row ? row : max_row;
    }
    if (max_row > SLAB_BYTES) {
        free(fbuf);
        free(qbuf);
        fbuf = malloc(max_row);
        qbuf = malloc(max_row);
    }
    if (!fbuf || !qbuf) {
        rc = inf_error_set(err, INF_ENOMEM, "out of memory");
        goto out;
    }
    rc = inf__outfile_open(out_path, &of, err);
    if (rc != INF_OK)
        goto out;
    tmp = of.tmp;
    f = fdopen(of.fd, "wb");
    if (!f) {
        rc = inf_error_set(err, INF_EIO, "cannot open '%s': %s", tmp, strerror(errno));
        goto out;
    }
    inf_gguf_prefetch(g);
    rc = inf_gguf_writer_write_header(w, f, &st.out_bytes, err);
    for (size_t k = 0; k < n && rc == INF_OK; k++) {
        static const uint8_t zeros[256];
        const struct inf_gguf_tensor *t = inf_gguf_tensor_at(g, items[k].index);
        double t0 = (inf__now_ms() * 1e-3);
        uint64_t pad = (align - items[k].bytes % align) % align;
        if (p->cancel && *p->cancel) {
            rc = inf_error_set(err, INF_ECANCELED, "interrupted");
            break;
        }
        if (items[k].to == t->type) {
            rc = put_bytes(f, t->data, (size_t)t->n_bytes, tmp, err);
        } else {
            rc = convert_tensor(pool, t, items[k].to, f, tmp, fbuf, qbuf, p, err);
            st.n_converted++;
        }
        if (rc == INF_OK)
            rc = put_bytes(f, zeros, (size_t)pad, tmp, err);
        drop_pages(t->data, t->n_bytes);
        st.out_bytes += items[k].bytes + pad;
        if (rc == INF_OK && p->progress) {
            struct inf_quant_event ev = {
                k,       n,           t->name.data, t->n_dims,      t->ne,
                t->type, items[k].to, t->n_bytes,   items[k].bytes, (inf__now_ms() * 1e-3) - t0};
            p->progress(p->progress_arg, &ev);
        }
    }
    if (rc == INF_OK && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        rc = inf_error_set(err, INF_EIO, "cannot write '%s': %s", tmp, strerror(errno));
    if (rc == INF_OK)
        rc = inf__outfile_commit(&of, out_path, err);

out:
    if (f)
        fclose(f); /* closes of.fd, which drops the lock and, if still unnamed, the file */
    else if (of.fd >= 0)
        close(of.fd);
    if (rc != INF_OK)
        inf__outfile_abandon(&of);
    st.seconds = (inf__now_ms() * 1e-3) - t_start;
    if (stats)
        *stats = st;
    free(of.tmp);
    free(fbuf);
    free(qbuf);
    free(items);
    inf_threadpool_free(pool);
    inf_gguf_writer_free(w);
    inf_gguf_free(g);
    return rc;
}
