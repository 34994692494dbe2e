/*
 * ref_ops.c - reference versions of the small per-token operations and the F32/F16 row helpers
 * (plain C, the ground truth for the SIMD versions; never optimise these). Sums are taken in
 * double so the reference is as close to the exact value as it cheaply can be.
 */
#include <math.h>

#include "kernels/fp16.h"
#include "kernels/internal.h"

float inf__dot_f32_ref(int64_t n, const float *a, const float *b)
{
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)a[i] * (double)b[i];
    return (float)sum;
}

float inf__dot_f16_f32_ref(int64_t n, const uint16_t *a, const float *b)
{
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)inf_fp16_to_fp32(a[i]) * (double)b[i];
    return (float)sum;
}

void inf__axpy_f32_ref(int64_t n, float a, const float *x, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

void inf__axpy_f16_ref(int64_t n, float a, const uint16_t *x, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a * inf_fp16_to_fp32(x[i]);
}

void inf__axpy4_f32_ref(int64_t n, const float *a, const float *const *x, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a[0] * x[0][i] + a[1] * x[1][i] + a[2] * x[2][i] + a[3] * x[3][i];
}

void inf__axpy4_f16_ref(int64_t n, const float *a, const uint16_t *const *x, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a[0] * inf_fp16_to_fp32(x[0][i]) + a[1] * inf_fp16_to_fp32(x[1][i]) +
                a[2] * inf_fp16_to_fp32(x[2][i]) + a[3] * inf_fp16_to_fp32(x[3][i]);
}

void inf__f32_to_f16_ref(const float *src, uint16_t *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = inf_fp32_to_fp16(src[i]);
}

void inf__f16_to_f32_ref(const uint16_t *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = inf_fp16_to_fp32(src[i]);
}

void inf__rms_norm_ref(int64_t n, const float *x, const float *weight, float eps, float *out)
{
    /* as ggml: each square rounded to float, summed in double, the mean rounded to float */
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(x[i] * x[i]);
    const float scale = 1.0f / sqrtf((float)(sum / (double)n) + eps);
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] * scale * (weight ? weight[i] : 1.0f);
}

float inf__softmax_ref(int64_t n, float *x, float scale)
{
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] * scale > max)
            max = x[i] * scale;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] * scale - max);
        sum += x[i];
    }
    const float inv = sum > 0 ? (float)(1.0 / sum) : 0.0f;
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
    return (float)sum;
}

void inf__silu_ref(int64_t n, float *x)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = x[i] / (1.0f + expf(-x[i]));
}

void inf__gelu_ref(int64_t n, float *x)
{
    const float sqrt_2_over_pi = 0.79788456080286535587989211986876f;
    const float coef_a = 0.044715f;
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(sqrt_2_over_pi * v * (1.0f + coef_a * v * v)));
    }
}

void inf__swiglu_ref(int64_t n, float *gate, const float *up)
{
    for (int64_t i = 0; i < n; i++)
        gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void inf__add_ref(int64_t n, float *x, const float *y)
{
    for (int64_t i = 0; i < n; i++)
        x[i] += y[i];
}

void inf__mul_ref(int64_t n, float *x, const float *y)
{
    for (int64_t i = 0; i < n; i++)
        x[i] *= y[i];
}

void inf__scale_ref(int64_t n, float *x, float s)
{
    for (int64_t i = 0; i < n; i++)
        x[i] *= s;
}

void inf__rope_ref(enum inf_rope_mode mode, float *x, int n_heads, int head_dim, int n_rot,
                   const float *cache)
{
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * (size_t)head_dim;
        for (int i = 0; i < n_rot / 2; i++) {
            const float c = cache[2 * i], s = cache[2 * i + 1];
            /* the pair: adjacent values, or the two halves of the rotated part */
            const int i0 = mode == INF_ROPE_MODE_NEOX ? i : 2 * i;
            const int i1 = mode == INF_ROPE_MODE_NEOX ? i + n_rot / 2 : 2 * i + 1;
            const float x0 = v[i0], x1 = v[i1];
            v[i0] = x0 * c - x1 * s;
            v[i1] = x0 * s + x1 * c;
        }
    }
}

void inf__attn_tile_ref(int hd, int nr, const float *const *q, int nt, const float *k,
                        const float *v, const int *n_valid, float scale, float *m, float *l,
                        float *const *acc)
{
    float s[INF_ATTN_TILE];
    for (int r = 0; r < nr; r++) {
        const int nv = n_valid[r] < nt ? n_valid[r] : nt;
        if (nv <= 0)
            continue;
        float mx = -INFINITY;
        for (int j = 0; j < nv; j++) {
            double d = 0;
            for (int i = 0; i < hd; i++)
                d += (double)q[r][i] * (double)k[(size_t)j * (size_t)hd + (size_t)i];
            s[j] = (float)d * scale;
            if (s[j] > mx)
                mx = s[j];
        }
        float *o = acc[r];
        if (mx > m[r]) {
            /* a new maximum: rescale what was summed so far */
            const float f = m[r] == -INFINITY ? 0.0f : expf(m[r] - mx);
            for (int i = 0; i < hd; i++)
                o[i] *= f;
            l[r] *= f;
            m[r] = mx;
        }
        double sum = 0;
        for (int j = 0; j < nv; j++) {
            const float p = expf(s[j] - m[r]);
            sum += p;
            const float *vj = v + (size_t)j * (size_t)hd;
            for (int i = 0; i < hd; i++)
                o[i] += p * vj[i];
        }
        l[r] += (float)sum;
    }
}

void inf__attn_tile_kt_ref(int hd, int nr, const float *const *q, int nt, const float *kt,
                           const float *v, const int *n_valid, float scale, float *m, float *l,
                           float *const *acc)
{
    float k[INF_ATTN_TILE * 256];
    if (hd > 256) {
        /* no level passes such heads here (the engine uses inf_attn_tile for them) */
        for (int r = 0; r < nr; r++)
            l[r] = NAN;
        return;
    }
    for (int j = 0; j < nt; j++)
        for (int i = 0; i < hd; i++)
            k[(size_t)j * (size_t)hd + (size_t)i] = kt[(size_t)i * INF_ATTN_TILE + (size_t)j];
    inf__attn_tile_ref(hd, nr, q, nt, k, v, n_valid, scale, m, l, acc);
}
