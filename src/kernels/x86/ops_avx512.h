/*
 * ops_avx512.h - 512-bit activation quantizers and small operations; included only by
 * kern_avx512.c. Same contracts as ops_x86.h (the quantizers write the reference's bytes); row
 * tails use masked loads and stores instead of scalar loops.
 */
#ifndef INFERNO_KERNELS_X86_OPS_AVX512_H
#define INFERNO_KERNELS_X86_OPS_AVX512_H

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/x86/kern_x86.h"
#include "kernels/x86/ops_x86.h"

static inline __mmask16 z_tail(int64_t left)
{
    return left >= 16  ? (__mmask16)0xffff
           : left <= 0 ? (__mmask16)0
                       : (__mmask16)((1u << left) - 1);
}

static INF__ALWAYS_INLINE void z_quant_q8_legacy(const float *x, void *vy, int64_t n,
                                                 const int with_sum)
{
    const size_t bs = with_sum ? sizeof(struct inf_block_q8_1) : sizeof(struct inf_block_q8_0);
    uint8_t *out = vy;
    for (int64_t ib = 0; ib < n / 32; ib++, x += 32, out += bs) {
        const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        const float amax =
            _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f; /* see inf__act_q8_0_ref */
        const __m512 vid = _mm512_set1_ps(id);
        const __m512i q0 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v0, vid),
                                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m512i q1 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v1, vid),
                                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        uint8_t *qs = x86_q8_head(out, d, with_sum,
                                  with_sum ? _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1)) : 0);
        _mm_storeu_si128((__m128i *)(void *)qs, _mm512_cvtsepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(void *)(qs + 16), _mm512_cvtsepi32_epi8(q1));
    }
}

static inline void z_quant_q8_0(const float *x, void *y, int64_t n)
{
    z_quant_q8_legacy(x, y, n, 0);
}

static inline void z_quant_q8_1(const float *x, void *y, int64_t n)
{
    z_quant_q8_legacy(x, y, n, 1);
}

static inline void z_quant_q8_K(const float *x, void *vy, int64_t n)
{
    struct inf_block_q8_K *y = vy;
    for (int64_t ib = 0; ib < n / INF_QK_K; ib++, x += INF_QK_K) {
        __m512 m = _mm512_setzero_ps();
        for (int k = 0; k < INF_QK_K / 16; k++)
            m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + 16 * k)));
        const float amax = _mm512_reduce_max_ps(m);
        if (!amax) {
            memset(&y[ib], 0, sizeof(y[ib]));
            continue;
        }
        /* the first value of largest magnitude, with its sign */
        float max = 0;
        for (int k = 0; k < INF_QK_K / 16; k++) {
            const __mmask16 eq = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * k)),
                                                    _mm512_set1_ps(amax), _CMP_EQ_OQ);
            if (eq) {
                max = x[16 * k + __builtin_ctz((unsigned)eq)];
                break;
            }
        }
        const float iscale = -127.f / max;
        const __m512 vs = _mm512_set1_ps(iscale);
        for (int k = 0; k < INF_QK_K / 16; k++) {
            const __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * k), vs));
            _mm_storeu_si128((__m128i *)(void *)(y[ib].qs + 16 * k), _mm512_cvtsepi32_epi8(q));
            y[ib].bsums[k] = (int16_t)_mm512_reduce_add_epi32(_mm512_max_epi32(
                _mm512_min_epi32(q, _mm512_set1_epi32(127)), _mm512_set1_epi32(-128)));
        }
        y[ib].d = 1 / iscale;
    }
}

#define XV_FN(name)        z_##name
#define XV                 __m512
#define XV_W               16
#define XV_ZERO()          _mm512_setzero_ps()
#define XV_SET1(x)         _mm512_set1_ps(x)
#define XV_LOADU(p)        _mm512_loadu_ps(p)
#define XV_STOREU(p, v)    _mm512_storeu_ps(p, v)
#define XV_ADD(a, b)       _mm512_add_ps(a, b)
#define XV_SUB(a, b)       _mm512_sub_ps(a, b)
#define XV_MUL(a, b)       _mm512_mul_ps(a, b)
#define XV_DIV(a, b)       _mm512_div_ps(a, b)
#define XV_MIN(a, b)       _mm512_min_ps(a, b)
#define XV_MAX(a, b)       _mm512_max_ps(a, b)
#define XV_FMADD(a, b, c)  _mm512_fmadd_ps(a, b, c)
#define XV_FNMADD(a, b, c) _mm512_fnmadd_ps(a, b, c)
#define XV_HSUM(v)         _mm512_reduce_add_ps(v)
#define XV_ROUND(x)        _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define XV_SCALE2(p, n)    _mm512_scalef_ps(p, n)
#include "kernels/x86/vec_x86.h"

static inline float z_dot_f32(int64_t n, const float *a, const float *b)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = z_tail(n - i);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static inline float z_dot_f16_f32(int64_t n, const uint16_t *a, const float *b)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(x86_load256(a + i)), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(x86_load256(a + i + 16)), _mm512_loadu_ps(b + i + 16),
                             s1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = z_tail(n - i);
        s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, a + i)),
                             _mm512_maskz_loadu_ps(m, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static inline void z_axpy_f32(int64_t n, float a, const float *x, float *y)
{
    const __m512 va = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = z_tail(n - i);
        _mm512_mask_storeu_ps(
            y + i, m,
            _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

static inline void z_axpy_f16(int64_t n, float a, const uint16_t *x, float *y)
{
    const __m512 va = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = z_tail(n - i);
        _mm512_mask_storeu_ps(y + i, m,
                              _mm512_fmadd_ps(va,
                                              _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)),
                                              _mm512_maskz_loadu_ps(m, y + i)));
    }
}

static inline void z_axpy4_f32(int64_t n, const float *a, const float *const *x, float *y)
{
    const __m512 a0 = _mm512_set1_ps(a[0]), a1 = _mm512_set1_ps(a[1]);
    const __m512 a2 = _mm512_set1_ps(a[2]), a3 = _mm512_set1_ps(a[3]);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = z_tail(n - i);
        __m512 v = _mm512_mul_ps(a0, _mm512_maskz_loadu_ps(m, x[0] + i));
        v = _mm512_fmadd_ps(a1, _mm512_maskz_loadu_ps(m, x[1] + i), v);
        v = _mm512_fmadd_ps(a2, _mm512_maskz_loadu_ps(m, x[2] + i), v);
        v = _mm512_fmadd_ps(a3, _mm512_maskz_loadu_ps(m, x[3] + i), v);
        _mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), v));
    }
}

static inline void z_axpy4_f16(int64_t n, const float *a, const uint16_t *const *x, float *y)
{
    const __m512 a0 = _mm512_set1_ps(a[0]), a1 = _mm512_set1_ps(a[1]);
    const __m512 a2 = _mm512_set1_ps(a[2]), a3 = _mm512_set1_ps(a[3]);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = z_tail(n - i);
        __m512 v = _mm512_mul_ps(a0, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x[0] + i)));
        v = _mm512_fmadd_ps(a1, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x[1] + i)), v);
        v = _mm512_fmadd_ps(a2, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x[2] + i)), v);
        v = _mm512_fmadd_ps(a3, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x[3] + i)), v);
        _mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), v));
    }
}

static inline void z_f32_to_f16(const float *src, uint16_t *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = z_tail(n - i);
        _mm256_mask_storeu_epi16(dst + i, m,
                                 _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i),
                                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
}

/* The attention's K and V tiles come through here (the F16 cache converted 64 cells at a time,
   K and V of one head in turn): the hardware prefetcher alone left it at about half the read
   bandwidth, which at a depth of 1024 was half the time of a small model's token. A line 4 KiB
   ahead (measured against 1, 2 and 8 KiB on Zen 5) keeps both streams in flight. */
static inline void z_f16_to_f32(const uint16_t *src, float *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm_prefetch((const char *)(src + i) + X86_F16_PF, _MM_HINT_T0);
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
        _mm512_storeu_ps(dst + i + 16,
                         _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i + 16))));
    }
    for (; i < n; i += 16) {
        const __mmask16 m = z_tail(n - i);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + i)));
    }
}

static inline void z_rms_norm(int64_t n, const float *x, const float *weight, float eps, float *out)
{
    /* as ggml: each square rounded to float, summed in double, the mean rounded to float */
    __m512d s0 = _mm512_setzero_pd(), s1 = s0;
    for (int64_t i = 0; i < n; i += 16) {
        const __m512 a = _mm512_maskz_loadu_ps(z_tail(n - i), x + i);
        const __m512 p = _mm512_mul_ps(a, a);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(p)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(p, 1)));
    }
    const float mean = (float)(_mm512_reduce_add_pd(_mm512_add_pd(s0, s1)) / (double)n);
    const __m512 vs = _mm512_set1_ps(1.0f / sqrtf(mean + eps));
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = z_tail(n - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs);
        if (weight)
            v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, weight + i));
        _mm512_mask_storeu_ps(out + i, m, v);
    }
}

static inline float z_softmax(int64_t n, float *x, float scale)
{
    const __m512 vsc = _mm512_set1_ps(scale);
    __m512 vm = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = z_tail(n - i);
        vm = _mm512_mask_max_ps(vm, m, vm, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vsc));
    }
    const __m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(vm));
    __m512 vsum = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = z_tail(n - i);
        const __m512 e = z_exp(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(m, x + i), vsc, vmax));
        _mm512_mask_storeu_ps(x + i, m, e);
        vsum = _mm512_mask_add_ps(vsum, m, vsum, e);
    }
    const float sum = _mm512_reduce_add_ps(vsum);
    const __m512 vinv = _mm512_set1_ps(sum > 0 ? 1.0f / sum : 0.0f);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = z_tail(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vinv));
    }
    return sum;
}

/* x[i] = silu(x[i]), or gelu(x[i]) where gelu. */
static INF__ALWAYS_INLINE void z_act_row(int64_t n, float *x, const int gelu)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = z_tail(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        _mm512_mask_storeu_ps(x + i, m, gelu ? z_gelu(v) : z_silu(v));
    }
}

static inline void z_silu_row(int64_t n, float *x)
{
    z_act_row(n, x, 0);
}

static inline void z_gelu_row(int64_t n, float *x)
{
    z_act_row(n, x, 1);
}

static inline void z_swiglu(int64_t n, float *gate, const float *up)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = z_tail(n - i);
        _mm512_mask_storeu_ps(gate + i, m,
                              _mm512_mul_ps(z_silu(_mm512_maskz_loadu_ps(m, gate + i)),
                                            _mm512_maskz_loadu_ps(m, up + i)));
    }
}

/* x[i] += y[i], or x[i] *= y[i] where mul. */
static INF__ALWAYS_INLINE void z_add_mul(int64_t n, float *x, const float *y, const int mul)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = z_tail(n - i);
        const __m512 a = _mm512_maskz_loadu_ps(m, x + i), b = _mm512_maskz_loadu_ps(m, y + i);
        _mm512_mask_storeu_ps(x + i, m, mul ? _mm512_mul_ps(a, b) : _mm512_add_ps(a, b));
    }
}

static inline void z_add(int64_t n, float *x, const float *y)
{
    z_add_mul(n, x, y, 0);
}

static inline void z_mul(int64_t n, float *x, const float *y)
{
    z_add_mul(n, x, y, 1);
}

static inline void z_scale(int64_t n, float *x, float s)
{
    const __m512 vs = _mm512_set1_ps(s);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = z_tail(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs));
    }
}

static inline void z_rope(enum inf_rope_mode mode, float *x, int n_heads, int head_dim, int n_rot,
                          const float *cache)
{
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd =
        _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * (size_t)head_dim;
        if (mode == INF_ROPE_MODE_NEOX) {
            const int half = n_rot / 2;
            for (int i = 0; i < half; i += 16) {
                const __mmask16 m = z_tail(half - i);
                /* cache pairs (c, s) for i..i+15 -> cos and sin vectors */
                const __m512 p0 = _mm512_maskz_loadu_ps(z_tail(2 * (half - i)), cache + 2 * i);
                const __m512 p1 =
                    _mm512_maskz_loadu_ps(z_tail(2 * (half - i) - 16), cache + 2 * i + 16);
                const __m512 c = _mm512_permutex2var_ps(p0, even, p1);
                const __m512 s = _mm512_permutex2var_ps(p0, odd, p1);
                const __m512 x0 = _mm512_maskz_loadu_ps(m, v + i);
                const __m512 x1 = _mm512_maskz_loadu_ps(m, v + i + half);
                _mm512_mask_storeu_ps(v + i, m, _mm512_fmsub_ps(x0, c, _mm512_mul_ps(x1, s)));
                _mm512_mask_storeu_ps(v + i + half, m,
                                      _mm512_fmadd_ps(x0, s, _mm512_mul_ps(x1, c)));
            }
        } else {
            for (int i = 0; i < n_rot; i += 16) {
                const __mmask16 m = z_tail(n_rot - i);
                const __m512 p = _mm512_maskz_loadu_ps(m, cache + i);
                const __m512 c = _mm512_moveldup_ps(p), s = _mm512_movehdup_ps(p);
                const __m512 xv = _mm512_maskz_loadu_ps(m, v + i);
                const __m512 xs = _mm512_permute_ps(xv, 0xb1);
                _mm512_mask_storeu_ps(v + i, m, _mm512_fmaddsub_ps(xv, c, _mm512_mul_ps(xs, s)));
            }
        }
    }
}

/* The second half of an attention tile for one row: s[0..nv) are its scaled scores; bring the
 * running max m, sum l and output o (hd floats) up to date. */
static inline void z_attn_softmax_pv(size_t d, float *s, int nv, const float *v, float *m, float *l,
                                     float *o)
{
    __m512 vmx = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < nv; j += 16)
        vmx = _mm512_max_ps(vmx, _mm512_mask_loadu_ps(vmx, z_tail(nv - j), s + j));
    const float mx = _mm512_reduce_max_ps(vmx);
    if (mx > *m) {
        const float f = *m == -INFINITY ? 0.0f : expf(*m - mx);
        const __m512 vf = _mm512_set1_ps(f);
        for (size_t c = 0; c < d; c += 16)
            _mm512_storeu_ps(o + c, _mm512_mul_ps(_mm512_loadu_ps(o + c), vf));
        *l *= f;
        *m = mx;
    }
    const __m512 vm = _mm512_set1_ps(*m);
    __m512 vsum = _mm512_setzero_ps();
    for (int j = 0; j < nv; j += 16) {
        const __mmask16 t = z_tail(nv - j);
        const __m512 p = _mm512_maskz_mov_ps(t, z_exp(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm)));
        _mm512_storeu_ps(s + j, p);
        vsum = _mm512_add_ps(vsum, p);
    }
    *l += _mm512_reduce_add_ps(vsum);
    z_attn_pv(d, s, nv, v, o);
}

/* One tile of online-softmax attention (contract: inf_attn_tile). Scores four cells at a time
 * against one query row, exponentials 16 at a time, the weighted values into four accumulators
 * of 16 floats per pass over the tile. */
static inline void z_attn_tile(int hd, int nr, const float *const *q, int nt, const float *k,
                               const float *v, const int *n_valid, float scale, float *m, float *l,
                               float *const *acc)
{
    if (hd % 16 != 0 || nt > INF_ATTN_TILE) {
        inf__attn_tile_ref(hd, nr, q, nt, k, v, n_valid, scale, m, l, acc);
        return;
    }
    _Alignas(64) float s[INF_ATTN_TILE];
    const size_t d = (size_t)hd;
    for (int r = 0; r < nr; r++) {
        const int nv = n_valid[r] < nt ? n_valid[r] : nt;
        if (nv <= 0)
            continue;
        z_attn_scores(q[r], k, d, nv, scale, s);
        z_attn_softmax_pv(d, s, nv, v, &m[r], &l[r], acc[r]);
    }
}

/* The same with K transposed (contract: inf_attn_tile_kt): the scores of 16 cells are one
 * vector, built by hd broadcast-FMAs, two query rows at a time sharing the loads of K. */
static inline void z_attn_tile_kt(int hd, int nr, const float *const *q, int nt, const float *kt,
                                  const float *v, const int *n_valid, float scale, float *m,
                                  float *l, float *const *acc)
{
    if (hd % 16 != 0 || nt > INF_ATTN_TILE) {
        inf__attn_tile_kt_ref(hd, nr, q, nt, kt, v, n_valid, scale, m, l, acc);
        return;
    }
    _Alignas(64) float s[2][INF_ATTN_TILE];
    const size_t d = (size_t)hd;
    const __m512 vs = _mm512_set1_ps(scale);
    for (int r = 0; r < nr; r += 2) {
        const int nv0 = n_valid[r] < nt ? n_valid[r] : nt;
        const int nv1 = r + 1 < nr ? (n_valid[r + 1] < nt ? n_valid[r + 1] : nt) : 0;
        const int nvm = nv0 > nv1 ? nv0 : nv1;
        if (nvm <= 0)
            continue;
        const float *q0 = q[r], *q1 = r + 1 < nr ? q[r + 1] : q[r];
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        const float *kd = kt;
        if (nvm > 32) {
            for (size_t i = 0; i < d; i++, kd += INF_ATTN_TILE) {
                const __m512 x = _mm512_set1_ps(q0[i]), y = _mm512_set1_ps(q1[i]);
                const __m512 k0 = _mm512_load_ps(kd), k1 = _mm512_load_ps(kd + 16);
                const __m512 k2 = _mm512_load_ps(kd + 32), k3 = _mm512_load_ps(kd + 48);
                a0 = _mm512_fmadd_ps(x, k0, a0);
                a1 = _mm512_fmadd_ps(x, k1, a1);
                a2 = _mm512_fmadd_ps(x, k2, a2);
                a3 = _mm512_fmadd_ps(x, k3, a3);
                b0 = _mm512_fmadd_ps(y, k0, b0);
                b1 = _mm512_fmadd_ps(y, k1, b1);
                b2 = _mm512_fmadd_ps(y, k2, b2);
                b3 = _mm512_fmadd_ps(y, k3, b3);
            }
        } else {
            for (size_t i = 0; i < d; i++, kd += INF_ATTN_TILE) {
                const __m512 x = _mm512_set1_ps(q0[i]), y = _mm512_set1_ps(q1[i]);
                const __m512 k0 = _mm512_load_ps(kd), k1 = _mm512_load_ps(kd + 16);
                a0 = _mm512_fmadd_ps(x, k0, a0);
                a1 = _mm512_fmadd_ps(x, k1, a1);
                b0 = _mm512_fmadd_ps(y, k0, b0);
                b1 = _mm512_fmadd_ps(y, k1, b1);
            }
        }
        _mm512_store_ps(s[0], _mm512_mul_ps(a0, vs));
        _mm512_store_ps(s[0] + 16, _mm512_mul_ps(a1, vs));
        _mm512_store_ps(s[0] + 32, _mm512_mul_ps(a2, vs));
        _mm512_store_ps(s[0] + 48, _mm512_mul_ps(a3, vs));
        _mm512_store_ps(s[1], _mm512_mul_ps(b0, vs));
        _mm512_store_ps(s[1] + 16, _mm512_mul_ps(b1, vs));
        _mm512_store_ps(s[1] + 32, _mm512_mul_ps(b2, vs));
        _mm512_store_ps(s[1] + 48, _mm512_mul_ps(b3, vs));
        if (nv0 > 0)
            z_attn_softmax_pv(d, s[0], nv0, v, &m[r], &l[r], acc[r]);
        if (nv1 > 0)
            z_attn_softmax_pv(d, s[1], nv1, v, &m[r + 1], &l[r + 1], acc[r + 1]);
    }
}

static inline void z_ops_init(struct inf__kern *k)
{
    k->quantize_act[INF_TYPE_Q8_0] = z_quant_q8_0;
    k->quantize_act[INF_TYPE_Q8_1] = z_quant_q8_1;
    k->quantize_act[INF_TYPE_Q8_K] = z_quant_q8_K;
    k->dot_f32 = z_dot_f32;
    k->dot_f16_f32 = z_dot_f16_f32;
    k->axpy_f32 = z_axpy_f32;
    k->axpy_f16 = z_axpy_f16;
    k->axpy4_f32 = z_axpy4_f32;
    k->axpy4_f16 = z_axpy4_f16;
    k->f32_to_f16 = z_f32_to_f16;
    k->f16_to_f32 = z_f16_to_f32;
    k->rms_norm = z_rms_norm;
    k->softmax = z_softmax;
    k->silu = z_silu_row;
    k->gelu = z_gelu_row;
    k->swiglu = z_swiglu;
    k->add = z_add;
    k->mul = z_mul;
    k->scale = z_scale;
    k->rope = z_rope;
    k->attn_tile = z_attn_tile;
    k->attn_tile_kt = z_attn_tile_kt;
}

#endif
