/*
 * ops_x86.h - 256-bit activation quantizers and small operations (AVX2 + FMA + F16C), shared
 * by the AVX2 and AVX-512 levels. Included only by the per-level files.
 *
 * The activation quantizers produce exactly the bytes of the reference ones: the block maximum,
 * d and 1/d are computed with the same scalar operations, x * (1/d) is the same IEEE product
 * lane by lane, and rounding is done the reference's way (roundf: half away from zero, for
 * Q8_0/Q8_1; round-to-nearest-even, which is VCVTPS2DQ's default, for Q8_K).
 */
#ifndef INFERNO_KERNELS_X86_OPS_X86_H
#define INFERNO_KERNELS_X86_OPS_X86_H

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/blocks.h"
#include "kernels/fp16.h"
#include "kernels/internal.h"
#include "kernels/x86/kern_x86.h"

/* roundf() lane by lane: exact, ties away from zero (|v| < 2^23). */
/* 32 int32 lanes (4 vectors, values within int8) to 32 bytes in order. */
static inline __m256i x86_pack32(__m256i i0, __m256i i1, __m256i i2, __m256i i3)
{
    const __m256i a = _mm256_packs_epi32(i0, i1);
    const __m256i b = _mm256_packs_epi32(i2, i3);
    return _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, b),
                                       _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/*
 * The header of a Q8_0 activation block (d) or a Q8_1 one (d, then s = sum * d), as binary16;
 * returns where the block's values go.
 */
static INF__ALWAYS_INLINE uint8_t *x86_q8_head(uint8_t *out, float d, const int with_sum, int sum)
{
    const inf_fp16 dh = inf_fp32_to_fp16(d);
    memcpy(out, &dh, 2);
    if (with_sum) {
        const inf_fp16 sh = inf_fp32_to_fp16((float)sum * d);
        memcpy(out + 2, &sh, 2);
    }
    return out + (with_sum ? 4 : 2);
}

static INF__ALWAYS_INLINE void x86_quant_q8_legacy(const float *x, void *vy, int64_t n,
                                                   const int with_sum)
{
    const size_t bs = with_sum ? sizeof(struct inf_block_q8_1) : sizeof(struct inf_block_q8_0);
    uint8_t *out = vy;
    const __m256 nz = _mm256_set1_ps(-0.0f);
    for (int64_t ib = 0; ib < n / 32; ib++, x += 32, out += bs) {
        __m256 v[4];
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            m = _mm256_max_ps(m, _mm256_andnot_ps(nz, v[k]));
        }
        const float amax = x86_hmax_ps(m);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f; /* see inf__act_q8_0_ref */
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++)
            q[k] = _mm256_cvtps_epi32(_mm256_round_ps(
                _mm256_mul_ps(v[k], vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        int sum = 0;
        if (with_sum) {
            const __m256i s =
                _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
            sum = _mm_cvtsi128_si32(s4);
        }
        _mm256_storeu_si256((__m256i *)(void *)x86_q8_head(out, d, with_sum, sum),
                            x86_pack32(q[0], q[1], q[2], q[3]));
    }
}

static inline void x86_quant_q8_0(const float *x, void *y, int64_t n)
{
    x86_quant_q8_legacy(x, y, n, 0);
}

static inline void x86_quant_q8_1(const float *x, void *y, int64_t n)
{
    x86_quant_q8_legacy(x, y, n, 1);
}

static inline void x86_quant_q8_K(const float *x, void *vy, int64_t n)
{
    struct inf_block_q8_K *y = vy;
    const __m256 nz = _mm256_set1_ps(-0.0f);
    for (int64_t ib = 0; ib < n / INF_QK_K; ib++, x += INF_QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < INF_QK_K / 8; k++)
            m = _mm256_max_ps(m, _mm256_andnot_ps(nz, _mm256_loadu_ps(x + 8 * k)));
        const float amax = x86_hmax_ps(m);
        if (!amax) {
            memset(&y[ib], 0, sizeof(y[ib]));
            continue;
        }
        /* the first value of largest magnitude, with its sign (as the reference picks it) */
        float max = 0;
        for (int j = 0; j < INF_QK_K; j++)
            if (fabsf(x[j]) == amax) {
                max = x[j];
                break;
            }
        const float iscale = -127.f / max;
        const __m256 vs = _mm256_set1_ps(iscale);
        const __m256i ones8 = _mm256_set1_epi8(1);
        for (int k = 0; k < INF_QK_K / 32; k++) {
            __m256i q[4];
            for (int j = 0; j < 4; j++)
                q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 32 * k + 8 * j), vs));
            const __m256i b = x86_pack32(q[0], q[1], q[2], q[3]);
            _mm256_storeu_si256((__m256i *)(void *)(y[ib].qs + 32 * k), b);
            /* two groups of 16: sums of 4 in 8 lanes, then within each 128-bit half */
            __m256i s = x86_sum_pairs(_mm256_maddubs_epi16(ones8, b));
            s = _mm256_hadd_epi32(s, s);
            s = _mm256_hadd_epi32(s, s);
            y[ib].bsums[2 * k] = (int16_t)_mm256_extract_epi32(s, 0);
            y[ib].bsums[2 * k + 1] = (int16_t)_mm256_extract_epi32(s, 4);
        }
        y[ib].d = 1 / iscale;
    }
}

/* ---- exp and friends, attention loops (vec_x86.h) ------------------------------------ */

#define XV_FN(name)        x86_##name
#define XV                 __m256
#define XV_W               8
#define XV_ZERO()          _mm256_setzero_ps()
#define XV_SET1(x)         _mm256_set1_ps(x)
#define XV_LOADU(p)        _mm256_loadu_ps(p)
#define XV_STOREU(p, v)    _mm256_storeu_ps(p, v)
#define XV_ADD(a, b)       _mm256_add_ps(a, b)
#define XV_SUB(a, b)       _mm256_sub_ps(a, b)
#define XV_MUL(a, b)       _mm256_mul_ps(a, b)
#define XV_DIV(a, b)       _mm256_div_ps(a, b)
#define XV_MIN(a, b)       _mm256_min_ps(a, b)
#define XV_MAX(a, b)       _mm256_max_ps(a, b)
#define XV_FMADD(a, b, c)  _mm256_fmadd_ps(a, b, c)
#define XV_FNMADD(a, b, c) _mm256_fnmadd_ps(a, b, c)
#define XV_HSUM(v)         x86_hsum_ps(v)
#define XV_ROUND(x)        _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define XV_SCALE2(p, n)                                                                            \
    _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(                                        \
                         _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23)))
#include "kernels/x86/vec_x86.h"

static inline float x86_silu1(float v)
{
    __m256 r = x86_silu(_mm256_set1_ps(v));
    return _mm256_cvtss_f32(r);
}

static inline float x86_gelu1(float v)
{
    __m256 r = x86_gelu(_mm256_set1_ps(v));
    return _mm256_cvtss_f32(r);
}

/* ---- row operations ---------------------------------------------------------------------- */

static inline float x86_dot_f32(int64_t n, const float *a, const float *b)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float sum = x86_hsum_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++)
        sum += a[i] * b[i];
    return sum;
}

static inline float x86_dot_f16_f32(int64_t n, const uint16_t *a, const float *b)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(x86_load128(a + i)), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_cvtph_ps(x86_load128(a + i + 8)), _mm256_loadu_ps(b + i + 8),
                             s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(x86_load128(a + i)), _mm256_loadu_ps(b + i), s0);
    float sum = x86_hsum_ps(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        sum += inf_fp16_to_fp32(a[i]) * b[i];
    return sum;
}

static inline void x86_axpy_f32(int64_t n, float a, const float *x, float *y)
{
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i,
                         _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

static inline void x86_axpy_f16(int64_t n, float a, const uint16_t *x, float *y)
{
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_cvtph_ps(x86_load128(x + i)),
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * inf_fp16_to_fp32(x[i]);
}

static inline void x86_axpy4_f32(int64_t n, const float *a, const float *const *x, float *y)
{
    const __m256 a0 = _mm256_set1_ps(a[0]), a1 = _mm256_set1_ps(a[1]);
    const __m256 a2 = _mm256_set1_ps(a[2]), a3 = _mm256_set1_ps(a[3]);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(a0, _mm256_loadu_ps(x[0] + i));
        v = _mm256_fmadd_ps(a1, _mm256_loadu_ps(x[1] + i), v);
        v = _mm256_fmadd_ps(a2, _mm256_loadu_ps(x[2] + i), v);
        v = _mm256_fmadd_ps(a3, _mm256_loadu_ps(x[3] + i), v);
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), v));
    }
    for (; i < n; i++)
        y[i] += a[0] * x[0][i] + a[1] * x[1][i] + a[2] * x[2][i] + a[3] * x[3][i];
}

static inline void x86_axpy4_f16(int64_t n, const float *a, const uint16_t *const *x, float *y)
{
    const __m256 a0 = _mm256_set1_ps(a[0]), a1 = _mm256_set1_ps(a[1]);
    const __m256 a2 = _mm256_set1_ps(a[2]), a3 = _mm256_set1_ps(a[3]);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(a0, _mm256_cvtph_ps(x86_load128(x[0] + i)));
        v = _mm256_fmadd_ps(a1, _mm256_cvtph_ps(x86_load128(x[1] + i)), v);
        v = _mm256_fmadd_ps(a2, _mm256_cvtph_ps(x86_load128(x[2] + i)), v);
        v = _mm256_fmadd_ps(a3, _mm256_cvtph_ps(x86_load128(x[3] + i)), v);
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), v));
    }
    for (; i < n; i++)
        y[i] += a[0] * inf_fp16_to_fp32(x[0][i]) + a[1] * inf_fp16_to_fp32(x[1][i]) +
                a[2] * inf_fp16_to_fp32(x[2][i]) + a[3] * inf_fp16_to_fp32(x[3][i]);
}

static inline void x86_f32_to_f16(const float *src, uint16_t *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        dst[i] = inf_fp32_to_fp16(src[i]);
}

static inline void x86_f16_to_f32(const uint16_t *src, float *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) { /* see z_f16_to_f32 for the prefetch */
        _mm_prefetch((const char *)(src + i) + X86_F16_PF, _MM_HINT_T0);
        for (int k = 0; k < 32; k += 8)
            _mm256_storeu_ps(dst + i + k, _mm256_cvtph_ps(x86_load128(src + i + k)));
    }
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(x86_load128(src + i)));
    for (; i < n; i++)
        dst[i] = inf_fp16_to_fp32(src[i]);
}

static inline void x86_rms_norm(int64_t n, const float *x, const float *weight, float eps,
                                float *out)
{
    /* as ggml: each square rounded to float, summed in double, the mean rounded to float */
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 a = _mm256_loadu_ps(x + i);
        const __m256 p = _mm256_mul_ps(a, a);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(p)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(p, 1)));
    }
    s0 = _mm256_add_pd(s0, s1);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s0), _mm256_extractf128_pd(s0, 1));
    double sum = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
    for (; i < n; i++)
        sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    const __m256 vs = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
        if (weight)
            v = _mm256_mul_ps(v, _mm256_loadu_ps(weight + i));
        _mm256_storeu_ps(out + i, v);
    }
    for (; i < n; i++)
        out[i] = x[i] * scale * (weight ? weight[i] : 1.0f);
}

static inline float x86_softmax(int64_t n, float *x, float scale)
{
    const __m256 vsc = _mm256_set1_ps(scale);
    __m256 vm = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        vm = _mm256_max_ps(vm, _mm256_mul_ps(_mm256_loadu_ps(x + i), vsc));
    float max = x86_hmax_ps(vm);
    for (; i < n; i++)
        if (x[i] * scale > max)
            max = x[i] * scale;
    const __m256 vmax = _mm256_set1_ps(max);
    __m256 vsum = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 e = x86_exp(_mm256_fmsub_ps(_mm256_loadu_ps(x + i), vsc, vmax));
        _mm256_storeu_ps(x + i, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    float sum = x86_hsum_ps(vsum);
    for (; i < n; i++) {
        x[i] = expf(x[i] * scale - max);
        sum += x[i];
    }
    const float inv = sum > 0 ? 1.0f / sum : 0.0f;
    const __m256 vinv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv));
    for (; i < n; i++)
        x[i] *= inv;
    return sum;
}

/* x[i] = silu(x[i]), or gelu(x[i]) where gelu. */
static INF__ALWAYS_INLINE void x86_act_row(int64_t n, float *x, const int gelu)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(x + i, gelu ? x86_gelu(v) : x86_silu(v));
    }
    for (; i < n; i++)
        x[i] = gelu ? x86_gelu1(x[i]) : x86_silu1(x[i]);
}

static inline void x86_silu_row(int64_t n, float *x)
{
    x86_act_row(n, x, 0);
}

static inline void x86_gelu_row(int64_t n, float *x)
{
    x86_act_row(n, x, 1);
}

static inline void x86_swiglu(int64_t n, float *gate, const float *up)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(
            gate + i, _mm256_mul_ps(x86_silu(_mm256_loadu_ps(gate + i)), _mm256_loadu_ps(up + i)));
    for (; i < n; i++)
        gate[i] = x86_silu1(gate[i]) * up[i];
}

/* x[i] += y[i], or x[i] *= y[i] where mul. */
static INF__ALWAYS_INLINE void x86_add_mul(int64_t n, float *x, const float *y, const int mul)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(y + i);
        _mm256_storeu_ps(x + i, mul ? _mm256_mul_ps(a, b) : _mm256_add_ps(a, b));
    }
    for (; i < n; i++)
        x[i] = mul ? x[i] * y[i] : x[i] + y[i];
}

static inline void x86_add(int64_t n, float *x, const float *y)
{
    x86_add_mul(n, x, y, 0);
}

static inline void x86_mul(int64_t n, float *x, const float *y)
{
    x86_add_mul(n, x, y, 1);
}

static inline void x86_scale(int64_t n, float *x, float s)
{
    const __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
    for (; i < n; i++)
        x[i] *= s;
}

static inline void x86_rope(enum inf_rope_mode mode, float *x, int n_heads, int head_dim, int n_rot,
                            const float *cache)
{
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * (size_t)head_dim;
        int i = 0;
        if (mode == INF_ROPE_MODE_NEOX) {
            const int half = n_rot / 2;
            for (; i + 8 <= half; i += 8) {
                /* cache pairs (c, s) for i..i+7 -> separate cos and sin vectors */
                const __m256 p0 = _mm256_loadu_ps(cache + 2 * i);
                const __m256 p1 = _mm256_loadu_ps(cache + 2 * i + 8);
                const __m256 cs = _mm256_shuffle_ps(p0, p1, 0x88); /* c0 c1 c4 c5 | c2 c3 c6 c7 */
                const __m256 sn = _mm256_shuffle_ps(p0, p1, 0xdd);
                const __m256 c =
                    _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(cs), 0xd8));
                const __m256 s =
                    _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(sn), 0xd8));
                const __m256 x0 = _mm256_loadu_ps(v + i), x1 = _mm256_loadu_ps(v + i + half);
                _mm256_storeu_ps(v + i, _mm256_fmsub_ps(x0, c, _mm256_mul_ps(x1, s)));
                _mm256_storeu_ps(v + i + half, _mm256_fmadd_ps(x0, s, _mm256_mul_ps(x1, c)));
            }
            for (; i < half; i++) {
                const float c = cache[2 * i], s = cache[2 * i + 1];
                const float x0 = v[i], x1 = v[i + half];
                v[i] = x0 * c - x1 * s;
                v[i + half] = x0 * s + x1 * c;
            }
        } else {
            /* out[2i] = x0 c - x1 s, out[2i+1] = x1 c + x0 s: fmaddsub(x, c, swap(x) * s) */
            for (; i + 8 <= n_rot; i += 8) {
                const __m256 p = _mm256_loadu_ps(cache + i);
                const __m256 c = _mm256_moveldup_ps(p), s = _mm256_movehdup_ps(p);
                const __m256 xv = _mm256_loadu_ps(v + i);
                const __m256 xs = _mm256_permute_ps(xv, 0xb1);
                _mm256_storeu_ps(v + i, _mm256_fmaddsub_ps(xv, c, _mm256_mul_ps(xs, s)));
            }
            for (; i < n_rot; i += 2) {
                const float c = cache[i], s = cache[i + 1];
                const float x0 = v[i], x1 = v[i + 1];
                v[i] = x0 * c - x1 * s;
                v[i + 1] = x0 * s + x1 * c;
            }
        }
    }
}

/* One tile of online-softmax attention (contract: inf_attn_tile), 8 lanes at a time. */
static inline void x86_attn_tile(int hd, int nr, const float *const *q, int nt, const float *k,
                                 const float *v, const int *n_valid, float scale, float *m,
                                 float *l, float *const *acc)
{
    if (hd % 8 != 0 || nt > INF_ATTN_TILE) {
        inf__attn_tile_ref(hd, nr, q, nt, k, v, n_valid, scale, m, l, acc);
        return;
    }
    _Alignas(32) float s[INF_ATTN_TILE + 8];
    const size_t d = (size_t)hd;
    for (int r = 0; r < nr; r++) {
        const int nv = n_valid[r] < nt ? n_valid[r] : nt;
        if (nv <= 0)
            continue;
        x86_attn_scores(q[r], k, d, nv, scale, s);
        float mx = -INFINITY;
        for (int j = 0; j < nv; j++)
            mx = s[j] > mx ? s[j] : mx;
        float *o = acc[r];
        if (mx > m[r]) {
            const float f = m[r] == -INFINITY ? 0.0f : expf(m[r] - mx);
            const __m256 vf = _mm256_set1_ps(f);
            for (size_t c = 0; c < d; c += 8)
                _mm256_storeu_ps(o + c, _mm256_mul_ps(_mm256_loadu_ps(o + c), vf));
            l[r] *= f;
            m[r] = mx;
        }
        /* the tail of s up to a multiple of 8 gives exp(-inf) = 0 */
        for (int j = nv; j < ((nv + 7) & ~7); j++)
            s[j] = -INFINITY;
        const __m256 vm = _mm256_set1_ps(m[r]);
        __m256 vsum = _mm256_setzero_ps();
        for (int j = 0; j < nv; j += 8) {
            const __m256 x = _mm256_sub_ps(_mm256_load_ps(s + j), vm);
            const __m256 live = _mm256_cmp_ps(x, _mm256_set1_ps(-INFINITY), _CMP_NEQ_OQ);
            const __m256 pz = _mm256_and_ps(x86_exp(x), live);
            _mm256_store_ps(s + j, pz);
            vsum = _mm256_add_ps(vsum, pz);
        }
        l[r] += x86_hsum_ps(vsum);
        x86_attn_pv(d, s, nv, v, o);
    }
}

static inline void x86_ops_init_256(struct inf__kern *k)
{
    k->quantize_act[INF_TYPE_Q8_0] = x86_quant_q8_0;
    k->quantize_act[INF_TYPE_Q8_1] = x86_quant_q8_1;
    k->quantize_act[INF_TYPE_Q8_K] = x86_quant_q8_K;
    k->dot_f32 = x86_dot_f32;
    k->dot_f16_f32 = x86_dot_f16_f32;
    k->axpy_f32 = x86_axpy_f32;
    k->axpy_f16 = x86_axpy_f16;
    k->axpy4_f32 = x86_axpy4_f32;
    k->axpy4_f16 = x86_axpy4_f16;
    k->f32_to_f16 = x86_f32_to_f16;
    k->f16_to_f32 = x86_f16_to_f32;
    k->rms_norm = x86_rms_norm;
    k->softmax = x86_softmax;
    k->silu = x86_silu_row;
    k->gelu = x86_gelu_row;
    k->swiglu = x86_swiglu;
    k->add = x86_add;
    k->mul = x86_mul;
    k->scale = x86_scale;
    k->rope = x86_rope;
    k->attn_tile = x86_attn_tile;
}

#endif
