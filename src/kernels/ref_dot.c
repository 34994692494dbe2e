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

static float dot_f32_f32(int64_t n, const void *vw, const void *va)
{
    const float *w = vw, *a = va;
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)w[i] * (double)a[i];
    return (float)sum;
}

static float dot_f16_f32(int64_t n, const void *vw, const void *va)
{
    const inf_fp16 *w = vw;
    const float *a = va;
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)inf_fp16_to_fp32(w[i]) * (double)a[i];
    return (float)sum;
}

static float dot_bf16_f32(int64_t n, const void *vw, const void *va)
{
    const inf_bf16 *w = vw;
    const float *a = va;
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)inf_bf16_to_fp32(w[i]) * (double)a[i];
    return (float)sum;
}

static uint32_t qh32(const uint8_t qh[4])
{
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

static float dot_q4_0_q8_0(int64_t n, const void *vw, const void *va)
{
    const struct inf_block_q4_0 *x = vw;
    const struct inf_block_q8_0 *y = va;
    float sumf = 0;
    for (int64_t i = 0; i < n / INF_QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            sumi += ((x[i].qs[j] & 0x0f) - 8) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
        }
        sumf += (float)sumi * (inf_fp16_to_fp32(x[i].d) * inf_fp16_to_fp32(y[i].d));
    }
    return sumf;
}

static float dot_q4_1_q8_1(int64_t n, const void *vw, const void *va)
{
    const struct inf_block_q4_1 *x = vw;
    const struct inf_block_q8_1 *y = va;
    float sumf = 0;
    for (int64_t i = 0; i < n / INF_QK8_1; i++) {
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            sumi += (x[i].qs[j] & 0x0f) * y[i].qs[j];
            sumi += (x[i].qs[j] >> 4) * y[i].qs[j + 16];
        }
        sumf += (inf_fp16_to_fp32(x[i].d) * inf_fp16_to_fp32(y[i].d)) * (float)sumi +
                inf_fp16_to_fp32(x[i].m) * inf_fp16_to_fp32(y[i].s);
    }
    return sumf;
}

static float dot_q5_0_q8_0(int64_t n, const void *vw, const void *va)
{
    const struct inf_block_q5_0 *x = vw;
    const struct inf_block_q8_0 *y = va;
    float sumf = 0;
    for (int64_t i = 0; i < n / INF_QK8_0; i++) {
        const uint32_t qh = qh32(x[i].qh);
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            const int q0 = (x[i].qs[j] & 0x0f) | (int)(((qh >> j) & 1u) << 4);
            const int q1 = (x[i].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            sumi += (q0 - 16) * y[i].qs[j] + (q1 - 16) * y[i].qs[j + 16];
        }
        sumf += (float)sumi * (inf_fp16_to_fp32(x[i].d) * inf_fp16_to_fp32(y[i].d));
    }
    return sumf;
}

static float dot_q5_1_q8_1(int64_t n, const void *vw, const void *va)
{
    const struct inf_block_q5_1 *x = vw;
    const struct inf_block_q8_1 *y = va;
    float sumf = 0;
    for (int64_t i = 0; i < n / INF_QK8_1; i++) {
        const uint32_t qh = qh32(x[i].qh);
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            const int q0 = (x[i].qs[j] & 0x0f) | (int)(((qh >> j) & 1u) << 4);
            const int q1 = (x[i].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            sumi += q0 * y[i].qs[j] + q1 * y[i].qs[j + 16];
        }
        sumf += (inf_fp16_to_fp32(x[i].d) * inf_fp16_to_fp32(y[i].d)) * (float)sumi +
                inf_fp16_to_fp32(x[i].m) * inf_fp16_to_fp32(y[i].s);
    }
    return sumf;
}

static float dot_q8_0_q8_0(int64_t n, const void *vw, const void *va)
{
    const struct inf_block_q8_0 *x = vw;
    const struct inf_block_q8_0 *y = va;
    float sumf = 0;
    for (int64_t i = 0; i < n / INF_QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < INF_QK8_0; j++)
            sumi += x[i].qs[j] * y[i].qs[j];
        sumf += (float)sumi * (inf_fp16_to_fp32(x[i].d) * inf_fp16_to_fp32(y[i].d));
    }
    return sumf;
}

/* q of value k (0..255) of a Q2_K/Q3_K block's 2-bit planes. */
static inline int q2_at(const uint8_t *qs, int k)
{
    return (qs[32 * (k / 128) + k % 32] >> (2 * ((k % 128) / 32))) & 3;
}

static float dot_q2_K_q8_K(int64_t n, const void *vw, const void *va)
{
    const struct inf_block_q2_K *x = vw;
    const struct inf_block_q8_K *y = va;
    float sumf = 0;
    for (int64_t i = 0; i < n / INF_QK_K; i++) {
        int summs = 0;
        for (int g = 0; g < 16; g++)
            summs += y[i].bsums[g] * (x[i].scales[g] >> 4);
        int isum = 0;
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++)
                s += y[i].qs[16 * g + l] * q2_at(x[i].qs, 16 * g + l);
            isum += (x[i].scales[g] & 0x0f) * s;
        }
        const float dall = y[i].d * inf_fp16_to_fp32(x[i].d);
        const float dmin = y[i].d * inf_fp16_to_fp32(x[i].dmin);
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    return sumf;
}

static float dot_q3_K_q8_K(int64_t n, const void *vw, const void *va)
{
    const struct inf_block_q3_K *x = vw;
    const struct inf_block_q8_K *y = va;
    float sumf = 0;
    for (int64_t i = 0; i < n / INF_QK_K; i++) {
        int8_t sc[16];
        for (int j = 0; j < 16; j++) {
            const int lo = j < 8 ? (x[i].scales[j] & 0x0f) : (x[i].scales[j - 8] >> 4);
            const int hi = (x[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3;
            sc[j] = (int8_t)((lo | (hi << 4)) - 32);
        }
        int isum = 0;
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++) {
                const int k = 16 * g + l;
                const int q = q2_at(x[i].qs, k) + 4 * ((x[i].hmask[k % 32] >> (k / 32)) & 1) - 4;
                s += y[i].qs[k] * q;
            }
            isum += sc[g] * s;
        }
        sumf += inf_fp16_to_fp32(x[i].d) * y[i].d * (float)isum;
    }
    return sumf;
}

static void scale_min_k4(int j, const uint8_t *q, int *d, int *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

static float dot_q4_K_q8_K(int64_t n, const void *vw, const void *va)
{
    const struct inf_block_q4_K *x = vw;
    const struct inf_block_q8_K *y = va;
    float sumf = 0;
    for (int64_t i = 0; i < n / INF_QK_K; i++) {
        int isum = 0, summs = 0;
        for (int g = 0; g < 8; g++) {
            int sc, m;
            scale_min_k4(g, x[i].scales, &sc, &m);
            int s = 0;
            for (int l = 0; l < 32; l++) {
                const uint8_t b = x[i].qs[32 * (g / 2) + l];
                s += y[i].qs[32 * g + l] * ((g & 1) ? b >> 4 : b & 0x0f);
            }
            isum += sc * s;
            summs += m * (y[i].bsums[2 * g] + y[i].bsums[2 * g + 1]);
        }
        const float d = inf_fp16_to_fp32(x[i].d) * y[i].d;
        const float dmin = inf_fp16_to_fp32(x[i].dmin) * y[i].d;
        sumf += d * (float)isum - dmin * (float)summs;
    }
    return sumf;
}

static float dot_q5_K_q8_K(int64_t n, const void *vw, const void *va)
{
    const struct inf_block_q5_K *x = vw;
    const struct inf_block_q8_K *y = va;
    float sumf = 0;
    for (int64_t i = 0; i < n / INF_QK_K; i++) {
        int isum = 0, summs = 0;
        for (int g = 0; g < 8; g++) {
            int sc, m;
            scale_min_k4(g, x[i].scales, &sc, &m);
            int s = 0;
            for (int l = 0; l < 32; l++) {
                const uint8_t b = x[i].qs[32 * (g / 2) + l];
                const int q = ((g & 1) ? b >> 4 : b & 0x0f) + 16 * ((x[i].qh[l] >> g) & 1);
                s += y[i].qs[32 * g + l] * q;
            }
            isum += sc * s;
            summs += m * (y[i].bsums[2 * g] + y[i].bsums[2 * g + 1]);
        }
        const float d = inf_fp16_to_fp32(x[i].d) * y[i].d;
        const float dmin = inf_fp16_to_fp32(x[i].dmin) * y[i].d;
        sumf += d * (float)isum - dmin * (float)summs;
    }
    return sumf;
}

static float dot_q6_K_q8_K(int64_t n, const void *vw, const void *va)
{
    const struct inf_block_q6_K *x = vw;
    const struct inf_block_q8_K *y = va;
    float sumf = 0;
    for (int64_t i = 0; i < n / INF_QK_K; i++) {
        int isum = 0;
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++) {
                const int k = 16 * g + l;
                const int h = k / 128, r = k % 128, sub = r / 32, p = r % 32;
                const uint8_t lb = x[i].ql[64 * h + 32 * (sub & 1) + p];
                const int lo = (sub & 2) ? lb >> 4 : lb & 0x0f;
                const int hi = (x[i].qh[32 * h + p] >> (2 * sub)) & 3;
                s += y[i].qs[k] * ((lo | (hi << 4)) - 32);
            }
            isum += x[i].scales[g] * s;
        }
        sumf += inf_fp16_to_fp32(x[i].d) * y[i].d * (float)isum;
    }
    return sumf;
}

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
