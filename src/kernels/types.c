/*
 * types.c - the type-trait table: one entry per format, indexed by ggml's type id.
 */
#include <string.h>

#include "inferno/threadpool.h"
#include "kernels/blocks.h"
#include "kernels/internal.h"

#define QUANT(t, blck, block, dot_type, weight)                                                    \
    {                                                                                              \
        .name = #t, .blck_size = (blck), .type_size = sizeof(block), .is_quantized = true,         \
        .is_weight = (weight), .vec_dot_type = (dot_type), .to_float = inf__to_float_##t##_ref,    \
        .from_float_ref = inf__from_float_##t##_ref,                                               \
    }

#define PACKED(t, blck, block, dot_type)                                                           \
    {                                                                                              \
        .name = #t, .blck_size = (blck), .type_size = sizeof(block), .is_quantized = true,         \
        .is_weight = false, .vec_dot_type = (dot_type),                                            \
    }

/* The unquantized weight formats: products with F32 activations. */
#define FLOAT(t, ctype)                                                                            \
    {                                                                                              \
        .name = #t, .blck_size = 1, .type_size = sizeof(ctype), .is_quantized = false,             \
        .is_weight = true, .vec_dot_type = INF_TYPE_F32, .to_float = inf__to_float_##t##_ref,      \
        .from_float_ref = inf__from_float_##t##_ref,                                               \
    }

static const struct inf_type_traits type_traits[INF_TYPE_COUNT] = {
    [INF_TYPE_F32] = FLOAT(f32, float),
    [INF_TYPE_F16] = FLOAT(f16, inf_fp16),
    [INF_TYPE_BF16] = FLOAT(bf16, inf_bf16),
    [INF_TYPE_Q4_0] = QUANT(q4_0, INF_QK4_0, struct inf_block_q4_0, INF_TYPE_Q8_0, true),
    [INF_TYPE_Q4_1] = QUANT(q4_1, INF_QK4_1, struct inf_block_q4_1, INF_TYPE_Q8_1, true),
    [INF_TYPE_Q5_0] = QUANT(q5_0, INF_QK5_0, struct inf_block_q5_0, INF_TYPE_Q8_0, true),
    [INF_TYPE_Q5_1] = QUANT(q5_1, INF_QK5_1, struct inf_block_q5_1, INF_TYPE_Q8_1, true),
    [INF_TYPE_Q8_0] = QUANT(q8_0, INF_QK8_0, struct inf_block_q8_0, INF_TYPE_Q8_0, true),
    [INF_TYPE_Q8_1] = QUANT(q8_1, INF_QK8_1, struct inf_block_q8_1, INF_TYPE_Q8_1, false),
    [INF_TYPE_Q2_K] = QUANT(q2_K, INF_QK_K, struct inf_block_q2_K, INF_TYPE_Q8_K, true),
    [INF_TYPE_Q3_K] = QUANT(q3_K, INF_QK_K, struct inf_block_q3_K, INF_TYPE_Q8_K, true),
    [INF_TYPE_Q4_K] = QUANT(q4_K, INF_QK_K, struct inf_block_q4_K, INF_TYPE_Q8_K, true),
    [INF_TYPE_Q5_K] = QUANT(q5_K, INF_QK_K, struct inf_block_q5_K, INF_TYPE_Q8_K, true),
    [INF_TYPE_Q6_K] = QUANT(q6_K, INF_QK_K, struct inf_block_q6_K, INF_TYPE_Q8_K, true),
    [INF_TYPE_MXFP4] = QUANT(mxfp4, INF_QK_MXFP4, struct inf_block_mxfp4, INF_TYPE_Q8_0, true),
    [INF_TYPE_Q8_K] = QUANT(q8_K, INF_QK_K, struct inf_block_q8_K, INF_TYPE_Q8_K, false),
    /* in-memory layouts of the kernels (internal.h): a source type's bytes per row, no row
     * functions, not a weight format of files */
    [INF_TYPE_Q4_0_X16] = PACKED(q4_0x16, INF_QK4_0, struct inf_block_q4_0, INF_TYPE_Q8_0),
    [INF_TYPE_Q4_K_X16] = PACKED(q4_Kx16, INF_QK_K, struct inf_block_q4_K, INF_TYPE_Q8_K),
    [INF_TYPE_Q8_0_X16] = PACKED(q8_0x16, INF_QK8_0, struct inf_block_q8_0, INF_TYPE_Q8_0),
    [INF_TYPE_Q6_K_X16] = PACKED(q6_Kx16, INF_QK_K, struct inf_block_q6_K, INF_TYPE_Q8_K),
    [INF_TYPE_Q4_1_X16] = PACKED(q4_1x16, INF_QK4_1, struct inf_block_q4_1, INF_TYPE_Q8_1),
};

const struct inf_type_traits *inf_type_get(enum inf_type type)
{
    if ((unsigned)type >= INF_TYPE_COUNT || !type_traits[type].name)
        return NULL;
    return &type_traits[type];
}

const char *inf_type_name(enum inf_type type)
{
    const struct inf_type_traits *t = inf_type_get(type);
    return t ? t->name : "?";
}

size_t inf_type_row_size(enum inf_type type, int64_t n)
{
    const struct inf_type_traits *t = inf_type_get(type);
    if (!t || n < 0)
        return 0;
    return (size_t)(n / t->blck_size) * t->type_size;
}

static inf_status check_row(enum inf_type type, int64_t n, const struct inf_type_traits **out,
                            struct inf_error *err)
{
    const struct inf_type_traits *t = inf_type_get(type);
    if (!t)
        return inf_error_set(err, INF_EUNSUPPORTED, "unsupported tensor type %d", (int)type);
    if (n < 0 || n % t->blck_size != 0)
        return inf_error_set(err, INF_EINVAL,
                             "row of %lld values is not a whole number of '%s' blocks of %d",
                             (long long)n, t->name, t->blck_size);
    *out = t;
    return INF_OK;
}

/* One row from F32 to type (quantize) or back. */
static inf_status convert_row(enum inf_type type, bool quantize, const void *src, void *dst,
                              int64_t n, struct inf_error *err)
{
    const struct inf_type_traits *t;
    inf_status rc = check_row(type, n, &t, err);
    if (rc != INF_OK)
        return rc;
    if (quantize) {
        t->from_float_ref(src, dst, n);
    } else if ((uintptr_t)src % 4 != 0) {
        /* a GGUF may place a tensor at any offset (general.alignment 1): blocks and halves are
           read from an aligned copy, a few blocks at a time (found by fuzz_gguf_commands) */
        _Alignas(64) unsigned char buf[4096];
        const int64_t per = (int64_t)(sizeof(buf) / t->type_size); /* blocks per copy */
        const char *s = src;
        float *d = dst;
        for (int64_t done = 0; done < n;) {
            int64_t k = (n - done) / t->blck_size;
            k = k < per ? k : per;
            memcpy(buf, s, (size_t)k * t->type_size);
            t->to_float(buf, d, k * t->blck_size);
            s += (size_t)k * t->type_size;
            d += k * t->blck_size;
            done += k * t->blck_size;
        }
    } else {
        t->to_float(src, dst, n);
    }
    return INF_OK;
}

inf_status inf_quantize_row(enum inf_type type, const float *src, void *dst, int64_t n,
                            struct inf_error *err)
{
    return convert_row(type, true, src, dst, n, err);
}

inf_status inf_dequantize_row(enum inf_type type, const void *src, float *dst, int64_t n,
                              struct inf_error *err)
{
    return convert_row(type, false, src, dst, n, err);
}

struct quant_task {
    const struct inf_type_traits *t;
    const float *src;
    uint8_t *dst;
    int64_t n_per_row;
    size_t row_bytes;
    struct inf_chunker rows;
    int64_t n_rows;
};

static void quant_rows_fn(void *arg, int ith, int nth)
{
    struct quant_task *q = arg;
    (void)ith;
    (void)nth;
    for (;;) {
        const int64_t r = inf_chunker_next(&q->rows, 1);
        if (r >= q->n_rows)
            break;
        q->t->from_float_ref(q->src + r * q->n_per_row, q->dst + (size_t)r * q->row_bytes,
                             q->n_per_row);
    }
}

inf_status inf_quantize_rows(struct inf_threadpool *pool, enum inf_type type, const float *src,
                             void *dst, int64_t n_rows, int64_t n_per_row, struct inf_error *err)
{
    const struct inf_type_traits *t;
    inf_status rc = check_row(type, n_per_row, &t, err);
    if (rc != INF_OK)
        return rc;
    if (n_rows < 0)
        return inf_error_set(err, INF_EINVAL, "negative row count %lld", (long long)n_rows);
    struct quant_task q = {.t = t,
                           .src = src,
                           .dst = dst,
                           .n_per_row = n_per_row,
                           .row_bytes = inf_type_row_size(type, n_per_row),
                           .n_rows = n_rows};
    inf_chunker_init(&q.rows, 0);
    inf_threadpool_run(pool, quant_rows_fn, &q);
    return INF_OK;
}
