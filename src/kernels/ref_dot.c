/*
 * ref_dot.c - reference dot products of each weight format with its activation format (plain
 * C, the ground truth for the SIMD kernels; never optimise these).
 *
 * The meaning is llama.cpp's (ggml-cpu/quants.c, the *_generic functions): integer sums within a
 * block, scaled by the product of the two block scales, accumulated in single precision; the
 * mins of Q4_1/Q5_1 pair with Q8_1's s, those of the K-quants with Q8_K's bsums. F32, F16 and
 * BF16 weights pair with F32 activations (accumulated in double here: the reference is the
 * exact value as nearly as we can get it).
 */
#include <string.h>

#include "kernels/blocks.h"
#include "kernels/fp16.h"
#include "kernels/internal.h"
#include "kernels/ref_levels.h"

/* Value i of an F32, F16 or BF16 row. */
static float float_at(enum inf_type t, const void *w, int64_t i)
{
    if (t == INF_TYPE_F16)
        return inf_fp16_to_fp32(((const inf_fp16 *)w)[i]);
    if (t == INF_TYPE_BF16)
        return inf_bf16_to_fp32(((const inf_bf16 *)w)[i]);
    return ((const float *)w)[i];
}

/* F32, F16, BF16 with F32, accumulated in double. */
static float dot_float(enum inf_type t, int64_t n, const void *vw, const void *va)
{
    const float *a = va;
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)float_at(t, vw, i) * (double)a[i];
    return (float)sum;
}

static int dot_i8(const int8_t *x, const int8_t *y, int n)
{
    int sum = 0;
    for (int j = 0; j < n; j++)
        sum += x[j] * y[j];
    return sum;
}

/* Q4_0, Q5_0, Q8_0 with Q8_0; Q4_1, Q5_1 (the formats with a min) with Q8_1. */
static float dot_legacy(enum inf_type t, int64_t n, const void *vw, const void *va)
{
    float sumf = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        struct ref_legacy x;
        ref_legacy_block(t, vw, i, &x);
        if (x.has_min) {
            const struct inf_block_q8_1 *y = (const struct inf_block_q8_1 *)va + i;
            const int sumi = dot_i8(x.q, y->qs, 32);
            sumf += (x.d * inf_fp16_to_fp32(y->d)) * (float)sumi + x.m * inf_fp16_to_fp32(y->s);
        } else {
            const struct inf_block_q8_0 *y = (const struct inf_block_q8_0 *)va + i;
            const int sumi = dot_i8(x.q, y->qs, 32);
            sumf += (float)sumi * (x.d * inf_fp16_to_fp32(y->d));
        }
    }
    return sumf;
}

/* The K-quants with Q8_K: the mins pair with the sums of the activations' groups (bsums). */
static float dot_kq(enum inf_type t, int64_t n, const void *vw, const void *va)
{
    const struct inf_block_q8_K *y = va;
    float sumf = 0;
    for (int64_t i = 0; i < n / INF_QK_K; i++) {
        struct ref_kq x;
        ref_kq_block(t, vw, i, &x);
        const int ng = INF_QK_K / x.group;
        int isum = 0, summs = 0;
        for (int g = 0; g < ng; g++) {
            isum += x.sc[g] * dot_i8(x.q + x.group * g, y[i].qs + x.group * g, x.group);
            if (x.has_min)
                for (int b = g * x.group / 16; b < (g + 1) * x.group / 16; b++)
                    summs += x.m[g] * y[i].bsums[b];
        }
        const float d = x.d * y[i].d;
        if (x.has_min)
            sumf += d * (float)isum - x.dmin * y[i].d * (float)summs;
        else
            sumf += d * (float)isum;
    }
    return sumf;
}

/* MXFP4 with Q8_0: per block, the integer sum of the values times the activations, scaled by
 * 2^(e - 128) and the activations' scale. */
static float dot_mxfp4_q8_0(int64_t n, const void *vw, const void *va)
{
    const struct inf_block_mxfp4 *x = vw;
    const struct inf_block_q8_0 *y = va;
    float sumf = 0;
    for (int64_t i = 0; i < n / INF_QK_MXFP4; i++) {
        int sumi = 0;
        for (int j = 0; j < INF_QK_MXFP4 / 2; j++)
            sumi += inf__mxfp4_values[x[i].qs[j] & 0xf] * y[i].qs[j] +
                    inf__mxfp4_values[x[i].qs[j] >> 4] * y[i].qs[j + INF_QK_MXFP4 / 2];
        sumf += inf__e8m0_half(x[i].e) * inf_fp16_to_fp32(y[i].d) * (float)sumi;
    }
    return sumf;
}

#define DOT(w, a, family, T)                                                                       \
    static float dot_##w##_##a(int64_t n, const void *vw, const void *va)                          \
    {                                                                                              \
        return dot_##family(INF_TYPE_##T, n, vw, va);                                              \
    }
#define DOT_F32(w, T) DOT(w, f32, float, T)
DOT_F32(f32, F32)
DOT_F32(f16, F16)
DOT_F32(bf16, BF16)
DOT(q4_0, q8_0, legacy, Q4_0)
DOT(q4_1, q8_1, legacy, Q4_1)
DOT(q5_0, q8_0, legacy, Q5_0)
DOT(q5_1, q8_1, legacy, Q5_1)
DOT(q8_0, q8_0, legacy, Q8_0)
DOT(q2_K, q8_K, kq, Q2_K)
DOT(q3_K, q8_K, kq, Q3_K)
DOT(q4_K, q8_K, kq, Q4_K)
DOT(q5_K, q8_K, kq, Q5_K)
DOT(q6_K, q8_K, kq, Q6_K)
#undef DOT_F32
#undef DOT

inf__vec_dot_fn inf__vec_dot_ref(enum inf_type wtype)
{
    switch (wtype) {
    case INF_TYPE_F32:
        return dot_f32_f32;
    case INF_TYPE_F16:
        return dot_f16_f32;
    case INF_TYPE_BF16:
        return dot_bf16_f32;
    case INF_TYPE_Q4_0:
        return dot_q4_0_q8_0;
    case INF_TYPE_Q4_1:
        return dot_q4_1_q8_1;
    case INF_TYPE_Q5_0:
        return dot_q5_0_q8_0;
    case INF_TYPE_Q5_1:
        return dot_q5_1_q8_1;
    case INF_TYPE_Q8_0:
        return dot_q8_0_q8_0;
    case INF_TYPE_Q2_K:
        return dot_q2_K_q8_K;
    case INF_TYPE_Q3_K:
        return dot_q3_K_q8_K;
    case INF_TYPE_Q4_K:
        return dot_q4_K_q8_K;
    case INF_TYPE_Q5_K:
        return dot_q5_K_q8_K;
    case INF_TYPE_Q6_K:
        return dot_q6_K_q8_K;
    case INF_TYPE_MXFP4:
        return dot_mxfp4_q8_0;
    default:
        return NULL;
    }
}

void inf__gemm_ref(enum inf_type wtype, int64_t n, const void *w, size_t ldw, const void *a,
                   size_t lda, float *s, size_t lds, int nr, int nc)
{
    const inf__vec_dot_fn dot = inf__vec_dot_ref(wtype);
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++)
            s[(size_t)c * lds + (size_t)r] =
                dot(n, (const char *)w + (size_t)r * ldw, (const char *)a + (size_t)c * lda);
}
