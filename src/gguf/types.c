/*
 * types.c - the ggml tensor-type table and llama's file types, as GGUF files use them.
 *
 * Block sizes and bytes per block are those of ggml (ggml/src/ggml.c type_traits, the block
 * structs of ggml-common.h, gguf-py's GGML_QUANT_SIZES). The layouts of the types the kernels
 * compute live in kernels/blocks.h; static_asserts below tie this table to them so the two
 * cannot drift apart. For the other types the size is spelled out from the block's fields.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gguf/internal.h"
#include "inferno/gguf.h"
#include "kernels/blocks.h"

#define QK_K 256

#define T(id_, name_, gname_, blck_, size_, quant_, compute_)                                      \
    [INF_GGML_TYPE_##id_] = {.name = name_,                                                        \
                             .ggml_name = gname_,                                                  \
                             .id = INF_GGML_TYPE_##id_,                                            \
                             .blck_size = (blck_),                                                 \
                             .type_size = (size_),                                                 \
                             .is_quantized = (quant_),                                             \
                             .compute = (compute_)}

static const struct inf_ggml_type_info types[INF_GGML_TYPE_COUNT] = {
    T(F32, "F32", "f32", 1, 4, false, true),
    T(F16, "F16", "f16", 1, 2, false, true),
    /* d f16, qs[16] */
    T(Q4_0, "Q4_0", "q4_0", 32, 18, true, true),
    /* d, m f16, qs[16] */
    T(Q4_1, "Q4_1", "q4_1", 32, 20, true, true),
    /* d f16, qh[4], qs[16] */
    T(Q5_0, "Q5_0", "q5_0", 32, 22, true, true),
    /* d, m f16, qh[4], qs[16] */
    T(Q5_1, "Q5_1", "q5_1", 32, 24, true, true),
    /* d f16, qs[32] */
    T(Q8_0, "Q8_0", "q8_0", 32, 34, true, true),
    /* d, s f16, qs[32]: an activation format, never a weight */
    T(Q8_1, "Q8_1", "q8_1", 32, 36, true, false),
    /* scales[16], qs[64], d, dmin f16 */
    T(Q2_K, "Q2_K", "q2_K", QK_K, 84, true, true),
    /* hmask[32], qs[64], scales[12], d f16 */
    T(Q3_K, "Q3_K", "q3_K", QK_K, 110, true, true),
    /* d, dmin f16, scales[12], qs[128] */
    T(Q4_K, "Q4_K", "q4_K", QK_K, 144, true, true),
    /* d, dmin f16, scales[12], qh[32], qs[128] */
    T(Q5_K, "Q5_K", "q5_K", QK_K, 176, true, true),
    /* ql[128], qh[64], scales[16], d f16 */
    T(Q6_K, "Q6_K", "q6_K", QK_K, 210, true, true),
    /* d f32, qs[256], bsums i16[16]: an activation format */
    T(Q8_K, "Q8_K", "q8_K", QK_K, 292, true, false),
    /* d f16, qs u16[32] */
    T(IQ2_XXS, "IQ2_XXS", "iq2_xxs", QK_K, 2 + QK_K / 4, true, false),
    /* d f16, qs u16[32], scales[8] */
    T(IQ2_XS, "IQ2_XS", "iq2_xs", QK_K, 2 + QK_K / 4 + QK_K / 32, true, false),
    /* d f16, qs[96] */
    T(IQ3_XXS, "IQ3_XXS", "iq3_xxs", QK_K, 2 + 3 * QK_K / 8, true, false),
    /* d f16, qs[32], qh u16[8] */
    T(IQ1_S, "IQ1_S", "iq1_s", QK_K, 2 + QK_K / 8 + QK_K / 16, true, false),
    /* d f16, qs[16] */
    T(IQ4_NL, "IQ4_NL", "iq4_nl", 32, 2 + 16, true, false),
    /* d f16, qs[64], qh[8], signs[32], scales[4] */
    T(IQ3_S, "IQ3_S", "iq3_s", QK_K, 2 + QK_K / 4 + QK_K / 32 + QK_K / 8 + QK_K / 64, true, false),
    /* d f16, qs[64], qh[8], scales[8] */
    T(IQ2_S, "IQ2_S", "iq2_s", QK_K, 2 + QK_K / 4 + QK_K / 32 + QK_K / 32, true, false),
    /* d f16, scales_h u16, scales_l[4], qs[128] */
    T(IQ4_XS, "IQ4_XS", "iq4_xs", QK_K, 2 + 2 + QK_K / 64 + QK_K / 2, true, false),
    T(I8, "I8", "i8", 1, 1, false, false),
    T(I16, "I16", "i16", 1, 2, false, false),
    T(I32, "I32", "i32", 1, 4, false, false),
    T(I64, "I64", "i64", 1, 8, false, false),
    T(F64, "F64", "f64", 1, 8, false, false),
    /* qs[32], qh[16], scales[8] (no d: the scale is spread over the scales) */
    T(IQ1_M, "IQ1_M", "iq1_m", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32, true, false),
    T(BF16, "BF16", "bf16", 1, 2, false, true),
    /* qs[(256 - 4 * 256 / 64) / 5] = qs[48], qh[4], d f16 */
    T(TQ1_0, "TQ1_0", "tq1_0", QK_K, 48 + 4 + 2, true, false),
    /* qs[64], d f16 */
    T(TQ2_0, "TQ2_0", "tq2_0", QK_K, 64 + 2, true, false),
    /* e (E8M0 scale), qs[16] */
    T(MXFP4, "MXFP4", "mxfp4", 32, 1 + 16, true, true),
    /* d[4] (UE4M3 scales, one per 16 values), qs[32] */
    T(NVFP4, "NVFP4", "nvfp4", 64, 4 + 32, true, false),
    /* d f16, qs[16] (1 bit per value) */
    T(Q1_0, "Q1_0", "q1_0", 128, 2 + 16, true, false),
    /* d f16, qs[16] (2 bits per value) */
    T(Q2_0, "Q2_0", "q2_0", 64, 2 + 16, true, false),
};

/* The table must agree with the block layouts the kernels read. */
static_assert(sizeof(struct inf_block_q4_0) == 18 && INF_QK4_0 == 32, "q4_0");
static_assert(sizeof(struct inf_block_q4_1) == 20 && INF_QK4_1 == 32, "q4_1");
static_assert(sizeof(struct inf_block_q5_0) == 22 && INF_QK5_0 == 32, "q5_0");
static_assert(sizeof(struct inf_block_q5_1) == 24 && INF_QK5_1 == 32, "q5_1");
static_assert(sizeof(struct inf_block_q8_0) == 34 && INF_QK8_0 == 32, "q8_0");
static_assert(sizeof(struct inf_block_q8_1) == 36 && INF_QK8_1 == 32, "q8_1");
static_assert(sizeof(struct inf_block_q2_K) == 84 && INF_QK_K == QK_K, "q2_K");
static_assert(sizeof(struct inf_block_q3_K) == 110, "q3_K");
static_assert(sizeof(struct inf_block_q4_K) == 144, "q4_K");
static_assert(sizeof(struct inf_block_q5_K) == 176, "q5_K");
static_assert(sizeof(struct inf_block_q6_K) == 210, "q6_K");
static_assert(sizeof(struct inf_block_mxfp4) == 17 && INF_QK_MXFP4 == 32, "mxfp4");
static_assert(sizeof(struct inf_block_q8_K) == 292, "q8_K");

/* Ids ggml no longer knows; GGUF files that use them must be converted again. */
static const struct {
    uint32_t id;
    const char *name;
} removed_types[] = {
    {4, "Q4_2"},      {5, "Q4_3"},        {31, "Q4_0_4_4"},   {32, "Q4_0_4_8"},
    {33, "Q4_0_8_8"}, {36, "IQ4_NL_4_4"}, {37, "IQ4_NL_4_8"}, {38, "IQ4_NL_8_8"},
};

const struct inf_ggml_type_info *inf_ggml_type_info(uint32_t id)
{
    if (id >= INF_GGML_TYPE_COUNT || !types[id].name)
        return NULL;
    return &types[id];
}

static const char *removed_name(uint32_t id)
{
    for (size_t i = 0; i < sizeof(removed_types) / sizeof(removed_types[0]); i++)
        if (removed_types[i].id == id)
            return removed_types[i].name;
    return NULL;
}

const char *inf_ggml_type_name(uint32_t id)
{
    const struct inf_ggml_type_info *t = inf_ggml_type_info(id);
    if (t)
        return t->name;
    const char *r = removed_name(id);
    return r ? r : "unknown";
}

bool inf_ggml_type_from_name(const char *name, uint32_t *id)
{
    if (!name)
        return false;
    for (uint32_t i = 0; i < INF_GGML_TYPE_COUNT; i++) {
        if (types[i].name && strcasecmp(types[i].name, name) == 0) {
            *id = i;
            return true;
        }
    }
    return false;
}

inf_status inf_ggml_size(uint32_t type, uint32_t n_dims, const int64_t *ne, const char *what,
                         struct inf_ggml_size *out, struct inf_error *err)
{
    const struct inf_ggml_type_info *t = inf_ggml_type_info(type);
    uint64_t n = 1, extent = 1, row = 1;
    char shape[160];
    size_t len = 0;

    memset(out, 0, sizeof(*out));
    if (!what)
        what = "tensor";
    if (!t) {
        const char *r = removed_name(type);
        if (r)
            return inf_error_set(err, INF_EUNSUPPORTED,
                                 "%s: type %" PRIu32 " (%s) was removed from GGUF; convert the "
                                 "model again with a current llama.cpp",
                                 what, type, r);
        return inf_error_set(err, INF_EUNSUPPORTED, "%s: unknown tensor type %" PRIu32, what, type);
    }
    if (n_dims > INF_GGUF_MAX_DIMS)
        return inf_error_set(err, INF_EFORMAT, "%s: %" PRIu32 " dimensions, at most %d allowed",
                             what, n_dims, INF_GGUF_MAX_DIMS);
    shape[0] = '\0';
    for (uint32_t i = 0; i < n_dims; i++) {
        if (ne[i] < 0)
            return inf_error_set(err, INF_EFORMAT, "%s: dimension %" PRIu32 " is %" PRId64, what, i,
                                 ne[i]);
        if (len < sizeof(shape))
            len += (size_t)snprintf(shape + len, sizeof(shape) - len, "%s%" PRId64, i ? " x " : "",
                                    ne[i]);
    }
    /* the extent bounds every product of dimensions, with or without the zeros */
    for (uint32_t i = 0; i < n_dims; i++) {
        uint64_t d = (uint64_t)ne[i];
        if (!inf__mul_u64(extent, d ? d : 1, &extent) || extent >= INF_GGML_MAX_ELEMENTS)
            return inf_error_set(err, INF_EFORMAT,
                                 "%s: shape %s has more than 2^60 elements; its sizes overflow",
                                 what, shape);
        n *= d; /* n <= extent */
    }
    if (n_dims > 0 && (uint64_t)ne[0] % t->blck_size != 0)
        return inf_error_set(err, INF_EFORMAT,
                             "%s: a row of %" PRId64 " values is not a whole number of %s "
                             "blocks of %" PRIu32,
                             what, ne[0], t->name, t->blck_size);
    if (n_dims == 0 && t->blck_size != 1)
        return inf_error_set(err, INF_EFORMAT, "%s: a scalar cannot be of block type %s", what,
                             t->name);
    if (n_dims > 0)
        row = (uint64_t)ne[0];
    /* with extent < 2^60 and type_size / blck_size <= 8 these cannot overflow; check anyway */
    if (!inf__mul_u64(n / t->blck_size, t->type_size, &out->n_bytes) ||
        !inf__mul_u64(row / t->blck_size, t->type_size, &out->row_bytes) ||
        out->n_bytes > INT64_MAX)
        return inf_error_set(err, INF_EFORMAT, "%s: the byte size of shape %s overflows", what,
                             shape);
    out->n_elements = n;
    out->n_rows = row ? n / row : 0;
    return INF_OK;
}

inf_status inf_ggml_nbytes(uint32_t type, uint32_t n_dims, const int64_t *ne, const char *what,
                           uint64_t *n_bytes, struct inf_error *err)
{
    struct inf_ggml_size sz;
    inf_status rc = inf_ggml_size(type, n_dims, ne, what, &sz, err);
    if (rc == INF_OK)
        *n_bytes = sz.n_bytes;
    return rc;
}

inf_status inf_ggml_type_check_compute(uint32_t type, const char *what, struct inf_error *err)
{
    const struct inf_ggml_type_info *t = inf_ggml_type_info(type);
    if (t && t->compute)
        return INF_OK;
    if (what)
        return inf_error_set(err, INF_EUNSUPPORTED, "%s: type %s is not supported yet", what,
                             inf_ggml_type_name(type));
    return inf_error_set(err, INF_EUNSUPPORTED, "type %s is not supported yet",
                         inf_ggml_type_name(type));
}

/* ---- llama file types ---- */

static const struct {
    uint32_t id;
    const char *name;
    const char *desc;
} ftypes[] = {
    {0, "ALL_F32", "all F32"},
    {1, "MOSTLY_F16", "F16"},
    {2, "MOSTLY_Q4_0", "Q4_0"},
    {3, "MOSTLY_Q4_1", "Q4_1"},
    {7, "MOSTLY_Q8_0", "Q8_0"},
    {8, "MOSTLY_Q5_0", "Q5_0"},
    {9, "MOSTLY_Q5_1", "Q5_1"},
    {10, "MOSTLY_Q2_K", "Q2_K - Medium"},
    {11, "MOSTLY_Q3_K_S", "Q3_K - Small"},
    {12, "MOSTLY_Q3_K_M", "Q3_K - Medium"},
    {13, "MOSTLY_Q3_K_L", "Q3_K - Large"},
    {14, "MOSTLY_Q4_K_S", "Q4_K - Small"},
    {15, "MOSTLY_Q4_K_M", "Q4_K - Medium"},
    {16, "MOSTLY_Q5_K_S", "Q5_K - Small"},
    {17, "MOSTLY_Q5_K_M", "Q5_K - Medium"},
    {18, "MOSTLY_Q6_K", "Q6_K"},
    {19, "MOSTLY_IQ2_XXS", "IQ2_XXS - 2.0625 bpw"},
    {20, "MOSTLY_IQ2_XS", "IQ2_XS - 2.3125 bpw"},
    {21, "MOSTLY_Q2_K_S", "Q2_K - Small"},
    {22, "MOSTLY_IQ3_XS", "IQ3_XS - 3.3 bpw"},
    {23, "MOSTLY_IQ3_XXS", "IQ3_XXS - 3.0625 bpw"},
    {24, "MOSTLY_IQ1_S", "IQ1_S - 1.5625 bpw"},
    {25, "MOSTLY_IQ4_NL", "IQ4_NL - 4.5 bpw"},
    {26, "MOSTLY_IQ3_S", "IQ3_S - 3.4375 bpw"},
    {27, "MOSTLY_IQ3_M", "IQ3_S mix - 3.66 bpw"},
    {28, "MOSTLY_IQ2_S", "IQ2_S - 2.5 bpw"},
    {29, "MOSTLY_IQ2_M", "IQ2_M - 2.7 bpw"},
    {30, "MOSTLY_IQ4_XS", "IQ4_XS - 4.25 bpw"},
    {31, "MOSTLY_IQ1_M", "IQ1_M - 1.75 bpw"},
    {32, "MOSTLY_BF16", "BF16"},
    {36, "MOSTLY_TQ1_0", "TQ1_0 - 1.69 bpw ternary"},
    {37, "MOSTLY_TQ2_0", "TQ2_0 - 2.06 bpw ternary"},
    {38, "MOSTLY_MXFP4_MOE", "MXFP4 MoE"},
    {39, "MOSTLY_NVFP4", "NVFP4"},
    {40, "MOSTLY_Q1_0", "Q1_0"},
    {41, "MOSTLY_Q2_0", "Q2_0"},
};

const char *inf_llama_ftype_name(uint32_t ftype)
{
    ftype &= ~INF_LLAMA_FTYPE_GUESSED;
    for (size_t i = 0; i < sizeof(ftypes) / sizeof(ftypes[0]); i++)
        if (ftypes[i].id == ftype)
            return ftypes[i].name;
    return NULL;
}

const char *inf_llama_ftype_desc(uint32_t ftype)
{
    ftype &= ~INF_LLAMA_FTYPE_GUESSED;
    for (size_t i = 0; i < sizeof(ftypes) / sizeof(ftypes[0]); i++)
        if (ftypes[i].id == ftype)
            return ftypes[i].desc;
    return "unknown";
}

/* ---- metadata value types ---- */

static const char *const value_type_names[INF_GGUF_TYPE_COUNT] = {
    "uint8", "int8",   "uint16", "int16",  "uint32", "int32",   "float32",
    "bool",  "string", "array",  "uint64", "int64",  "float64",
};

const char *inf_gguf_type_name(uint32_t type)
{
    return type < INF_GGUF_TYPE_COUNT ? value_type_names[type] : "unknown";
}

size_t inf_gguf_type_size(uint32_t type)
{
    switch (type) {
    case INF_GGUF_TYPE_UINT8:
    case INF_GGUF_TYPE_INT8:
    case INF_GGUF_TYPE_BOOL:
        return 1;
    case INF_GGUF_TYPE_UINT16:
    case INF_GGUF_TYPE_INT16:
        return 2;
    case INF_GGUF_TYPE_UINT32:
    case INF_GGUF_TYPE_INT32:
    case INF_GGUF_TYPE_FLOAT32:
        return 4;
    case INF_GGUF_TYPE_UINT64:
    case INF_GGUF_TYPE_INT64:
    case INF_GGUF_TYPE_FLOAT64:
        return 8;
    default:
        return 0;
    }
}
